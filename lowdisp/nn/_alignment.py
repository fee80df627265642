"""Tangent-kernel alignment (Baratin et al., AISTATS 2021): per-layer and total centred
tangent kernels on a sample, kernel-target alignment, the trace of the tangent second
moment, step norms and the complexity measure, a :class:`~lowdisp.nn.Trainer` callback
that logs them on the paper's geometric schedule, and a plot.

**Tangent features.** For a model with ``C`` outputs ``f_c`` (logits) and
parameters ``θ``, ``Φ_c(x) = ∂f_c(x)/∂θ``. On ``n`` examples the tangent kernel
is the ``(C n) x (C n)`` Gram matrix ``K[(c, i), (c', j)] = ⟨Φ_c(x_i), Φ_c'(x_j)⟩``
(rows ordered ``[c, i]``, as nngeometry's ``FMatDense``), and restricting ``θ`` to
the parameters of one layer ``l`` gives ``K_l`` with ``K = Σ_l K_l``. Centring
(the paper's default) subtracts the mean tangent feature over the ``n`` examples
of each output: ``K ← (I_C ⊗ H) K (I_C ⊗ H)``, ``H = I − 11ᵀ/n``.

**Two exact routes, no autograd.** One forward pass on the ``n`` examples tiled
``C`` times and one backward pass of the unit cotangents ``e_c`` give every
layer its input rows ``a_i`` and output gradients ``g_i^c = ∂f_c(x_i)/∂z_i``
(the same per-example statistics the curvature hook of
:mod:`lowdisp.nn._curvature` reads; here the cotangent is a unit vector on one
output, so no loss scale enters).

- :class:`~lowdisp.nn.Dense` (``z = W ã``, ``ã = [a; 1]``): the per-example
  gradient is ``g ãᵀ``, so ``⟨g_i ã_iᵀ, g_j ã_jᵀ⟩ = (ã_i·ã_j)(g_i·g_j)`` and
  each ``(c, c')`` block is the Hadamard product ``(ÃÃᵀ) ⊙ (G_c G_c'ᵀ)``:
  ``O(n² d_in + C² n² d_out)``, no Jacobian is formed.
- every other layer with parameters (:class:`~lowdisp.nn.StructuredDense`,
  :class:`~lowdisp.nn.DiagonalCirculant`, :class:`~lowdisp.nn.Fastfood`, ...):
  the exact per-example Jacobian ``J_l`` ``(C n, P_l)`` from the layer's own
  backward pass on one example and one output at a time (``n`` forward and
  ``C n`` backward calls of batch 1), then ``K_l = J_l J_lᵀ``. ``P_l`` is small
  for structured layers (``2 r s`` for Toeplitz-like), which is what makes the
  exact kernel cheap; memory ``C n P_l`` floats.

Sequence models (inputs ``(T, B, d)``, examples along axis 1) whose output is
``(B, C)`` (a recurrent layer returning its last state, then a readout) work
the same way: a recurrent layer (or a dense layer applied at every time step)
takes the per-example Jacobian route, one BPTT of one sequence per output
(``C n`` of them); its parameters are the cell's raw parameters (for the
orthogonal maps, their parametrisation, e.g. ``theta``). Models whose output
is a sequence are refused.

**Alignment.** With ``Y = onehot(y) − mean(onehot(y))`` over the examples and
``v = vec(Yᵀ)`` ordered ``[c, i]``, ``A(K) = vᵀ K v / (‖K‖_F ‖v‖²)`` (centred
kernel-target alignment, as ``‖vvᵀ‖_F = ‖v‖²``), the authors' ``alignment.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp._validation import as_array, check_bool, check_int, check_option
from lowdisp.nn._trainer import Callback

__all__ = [
    "AlignmentLogger",
    "TangentKernels",
    "alignment",
    "alignment_schedule",
    "plot_alignment",
    "tangent_kernels",
]

#: schedules of :func:`alignment_schedule`
SCHEDULES = ("paper", "authors_code")


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TangentKernels:
    """Per-layer tangent kernels of a model on ``n`` examples.

    Attributes
    ----------
    kernels : dict of str to (C n, C n) ndarray
        ``K_l`` per layer (float64), keyed by the layer's path in the model
        (``"fc0"``, ``"readout"``), rows and columns ordered ``[c, i]``.
    traces : dict of str to float
        ``tr(F_l) = (1/n) Σ_{c,i} ‖Φ_c^l(x_i)‖²``, the trace of the layer's
        (uncentred) tangent second moment ``F_l = (1/n) Σ_i J_iᵀ J_i``; the
        authors' ``trK``.
    routes : dict of str to str
        ``"hadamard"`` (dense layers) or ``"jacobian"`` (per-example Jacobian).
    n_examples, n_outputs : int
    centered : bool

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> net = lnn.Sequential({"fc": lnn.Dense(4, 6, dtype=np.float64, rng=0),
    ...                       "act": lnn.Tanh(dtype=np.float64),
    ...                       "out": lnn.Dense(6, 3, dtype=np.float64, rng=1)})
    >>> x = np.random.default_rng(0).normal(size=(5, 4))
    >>> tk = lnn.tangent_kernels(net, x)
    >>> tk.layers, tk.total.shape
    (('fc', 'out'), (15, 15))
    >>> A = tk.alignment([0, 1, 2, 0, 1])
    >>> sorted(A)
    ['fc', 'out', 'total']
    """

    kernels: dict[str, np.ndarray]
    traces: dict[str, float]
    routes: dict[str, str]
    n_examples: int
    n_outputs: int
    centered: bool
    _total: list = field(default_factory=list, repr=False, compare=False)

    @property
    def layers(self) -> tuple[str, ...]:
        """Layer paths, in the model's order."""
        return tuple(self.kernels)

    @property
    def total(self) -> np.ndarray:
        """``K = Σ_l K_l`` (the kernel of all parameters)."""
        if not self._total:
            self._total.append(sum(self.kernels.values()))
        return self._total[0]

    @property
    def trace(self) -> float:
        """``Σ_l tr(F_l)``: the trace of the whole tangent second moment."""
        return float(sum(self.traces.values()))

    def tensor(self, layer: str | None = None) -> np.ndarray:
        """A kernel as a ``(C, n, C, n)`` array (``layer=None``: the total).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp.nn as lnn
        >>> net = lnn.Dense(3, 2, dtype=np.float64, rng=0)
        >>> lnn.tangent_kernels(net, np.ones((4, 3))).tensor().shape
        (2, 4, 2, 4)
        """
        K = self.total if layer is None else self.kernels[self._layer(layer)]
        C, n = self.n_outputs, self.n_examples
        return K.reshape(C, n, C, n)

    def _layer(self, layer: Any) -> str:
        return check_option(layer, "layer", self.kernels, where="TangentKernels")

    def alignment(self, y: Any) -> dict[str, float]:
        """Kernel-target alignment of every layer's kernel and of the total (``"total"``).

        Parameters
        ----------
        y : (n,) array_like of int
            Class labels in ``[0, C)`` of the ``n`` examples.

        Returns
        -------
        dict of str to float
            ``{layer: A(K_l), ..., "total": A(K)}``.

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp.nn as lnn
        >>> net = lnn.Dense(3, 2, dtype=np.float64, rng=0)
        >>> x = np.random.default_rng(1).normal(size=(6, 3))
        >>> round(lnn.tangent_kernels(net, x).alignment([0, 1, 0, 1, 1, 0])["total"], 6)
        0.179439
        """
        v = _target_vector(y, self.n_examples, self.n_outputs, "TangentKernels.alignment")
        out = {k: _alignment_core(K, v) for k, K in self.kernels.items()}
        out["total"] = _alignment_core(self.total, v)
        return out


# ---------------------------------------------------------------------------
# Alignment of a kernel
# ---------------------------------------------------------------------------


def _target_vector(y: Any, n: int, C: int, where: str) -> np.ndarray:
    """``vec(Yᵀ)`` of the centred one-hot targets, ordered ``[c, i]``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{where}: y must hold one label per example, shape ({n},); got {arr.shape}"
        )
    if arr.dtype.kind not in "iu" and not (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    ):
        raise TypeError(f"{where}: y must hold integer class labels; got dtype {arr.dtype}")
    lab = arr.astype(np.int64)
    if lab.size and (lab.min() < 0 or lab.max() >= C):
        raise ValueError(
            f"{where}: labels must be in [0, {C}) (the model has {C} outputs); "
            f"got min {lab.min()}, max {lab.max()}"
        )
    Y = np.zeros((n, C))
    Y[np.arange(n), lab] = 1.0
    Y -= Y.mean(axis=0)
    return Y.T.reshape(-1)


def _alignment_core(K: np.ndarray, v: np.ndarray) -> float:
    nk = np.linalg.norm(K)
    nv = float(v @ v)
    if nk == 0 or nv == 0:
        return float("nan")
    return float(v @ (K @ v) / (nk * nv))


def alignment(K: Any, y: Any) -> float:
    """Centred kernel-target alignment ``A = vᵀ K v / (‖K‖_F ‖v‖²)``.

    Parameters
    ----------
    K : (C n, C n) or (C, n, C, n) array_like
        A tangent kernel with rows ordered ``[c, i]`` (output-major).
    y : (n,) array_like of int
        Class labels in ``[0, C)``.

    Returns
    -------
    float
        In ``[-1, 1]`` for a positive semi-definite ``K`` (in ``[0, 1]``);
        NaN when ``K = 0`` or all labels are equal (``v = 0``).

    Notes
    -----
    ``v = vec(Yᵀ)`` with ``Y = onehot(y) − 1 ȳᵀ`` the one-hot targets centred
    over the examples, as in the authors' ``alignment.py``. Centring the
    kernel (:func:`tangent_kernels`, ``centering=True``) is separate.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import alignment
    >>> y = np.array([0, 1, 1, 0])
    >>> Y = np.eye(2)[y] - 0.5
    >>> v = Y.T.reshape(-1)
    >>> round(alignment(np.outer(v, v), y), 12)  # the ideal kernel
    1.0
    """
    where = "alignment"
    Karr = as_array(K, "K", where=where, ndim=(2, 4), dtype=np.float64, allow_complex=False)
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"{where}: y must be a 1-D array of labels; got shape {labels.shape}")
    n = labels.shape[0]
    if Karr.ndim == 4:
        C, n4, C2, n5 = Karr.shape
        if (C, n4) != (C2, n5):
            raise ValueError(f"{where}: a 4-D K must have shape (C, n, C, n); got {Karr.shape}")
        Karr = Karr.reshape(C * n4, C * n4)
    m = Karr.shape[0]
    if Karr.shape[1] != m or n == 0 or m % n:
        raise ValueError(
            f"{where}: K must be square (C n, C n) with n = len(y) = {n}; got {Karr.shape}"
        )
    v = _target_vector(labels, n, m // n, where)
    return _alignment_core(Karr, v)


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------


def _forward_taps(layer: Any, x: Any, prefix: str, taps: dict) -> tuple[Any, Any]:
    """Forward (eval mode) recording the input of every layer with parameters."""
    from lowdisp.nn._layers import Sequential

    if isinstance(layer, Sequential):
        caches = []
        for name, child in layer.layers.items():
            x, c = _forward_taps(child, x, f"{prefix}{name}.", taps)
            caches.append(c)
        return x, caches
    if layer.params():
        if np.ndim(x) not in (2, 3):
            raise ValueError(
                f"tangent_kernels: layer {prefix[:-1] or '(model)'!r} ({layer!r}) gets input "
                f"of shape {np.shape(x)}; only (batch, features) and (time, batch, features) "
                f"inputs are supported"
            )
        taps[prefix[:-1] or "(model)"] = [layer, x, None]
    return layer._forward(x, False, None)


def _backward_taps(layer: Any, cache: Any, dy: Any, prefix: str, taps: dict) -> Any:
    """Backward of ``dy`` recording the output cotangent of every tapped layer."""
    from lowdisp.nn._layers import Sequential

    if isinstance(layer, Sequential):
        items = list(layer.layers.items())
        for i in range(len(items) - 1, -1, -1):
            name, child = items[i]
            dy = _backward_taps(child, cache[i], dy, f"{prefix}{name}.", taps)
        return dy
    key = prefix[:-1] or "(model)"
    if key in taps:
        taps[key][2] = dy
    if dy is None:  # below an integer-input layer: nothing is tapped there
        return None
    dx, _ = layer._backward(cache, dy, False)
    return dx


def _centre(K: np.ndarray, C: int, n: int) -> np.ndarray:
    """``(I_C ⊗ H) K (I_C ⊗ H)`` in place (block-wise double centring)."""
    T = K.reshape(C, n, C, n)
    T -= T.mean(axis=1, keepdims=True)
    T -= T.mean(axis=3, keepdims=True)
    return K


def _dense_kernel(layer: Any, a: np.ndarray, G: np.ndarray, C: int, n: int):
    """``K_l`` of a Dense layer by the Hadamard identity, and ``tr(K_l)`` uncentred."""
    a64 = np.asarray(a[:n], dtype=np.float64)
    AA = a64 @ a64.T
    if "b" in layer.params():
        AA += 1.0
    G64 = np.asarray(G, dtype=np.float64)
    K = G64 @ G64.T  # (C n, C n)
    K.reshape(C, n, C, n)[...] *= AA[None, :, None, :]
    return K, float(np.trace(K))


def _rows(arr: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Examples ``lo:hi`` of a layer input/output: rows of ``(B, d)``, axis 1 of ``(T, B, d)``."""
    return arr[lo:hi] if arr.ndim <= 2 else arr[:, lo:hi]


def _jacobian_rows(layer: Any, a: np.ndarray, G: np.ndarray, C: int, n: int) -> np.ndarray:
    """The exact per-example Jacobian ``J`` ``(C n, P)`` of a layer's parameters: for
    each example one forward pass of batch 1, then one backward pass per output
    (for a recurrent layer: one BPTT per example and output)."""
    names = sorted(layer.params())
    sizes = [layer.params()[k].size for k in names]
    J = np.empty((C * n, sum(sizes)))
    for i in range(n):
        _, cache = layer._forward(_rows(a, i, i + 1), False, None)
        for c in range(C):
            r = c * n + i
            _, grads = layer._backward(cache, _rows(G, r, r + 1), False)
            J[r] = np.concatenate([np.ravel(grads[k]) for k in names])
    return J


def _tangent_kernels_core(model: Any, x: np.ndarray, centering: bool) -> TangentKernels:
    ax = 0 if x.ndim == 2 else 1  # sequences: (time, batch, features)
    n = x.shape[ax]
    probe, _ = model._forward(_rows(x, 0, 1), False, None)
    if np.ndim(probe) != 2:
        raise ValueError(
            f"tangent_kernels: the model's output must be (batch, outputs); got shape "
            f"{np.shape(probe)} for one example"
        )
    C = int(probe.shape[1])
    taps: dict[str, list] = {}
    xt = np.concatenate([x] * C, axis=ax)  # examples [c, i]
    out, cache = _forward_taps(model, xt, "", taps)
    if not taps:
        raise ValueError("tangent_kernels: the model has no parameters")
    dY = np.zeros(out.shape, dtype=out.dtype)
    dY.reshape(C, n, C)[np.arange(C), :, np.arange(C)] = 1.0
    _backward_taps(model, cache, dY, "", taps)
    from lowdisp.nn._layers import Dense

    kernels: dict[str, np.ndarray] = {}
    traces: dict[str, float] = {}
    routes: dict[str, str] = {}
    for name, (layer, a, G) in taps.items():
        if G is None:  # pragma: no cover - every tapped layer sits above the input
            raise ValueError(f"tangent_kernels: layer {name!r} received no gradient")
        G = np.asarray(G)
        if type(layer) is Dense and a.ndim == 2:
            K, tr = _dense_kernel(layer, a, G, C, n)
            routes[name] = "hadamard"
        else:
            J = _jacobian_rows(layer, a, G, C, n)
            tr = float(np.einsum("ij,ij->", J, J))
            if centering:
                Jr = J.reshape(C, n, -1)
                Jr -= Jr.mean(axis=1, keepdims=True)
            K = J @ J.T
            routes[name] = "jacobian"
        if centering and routes[name] == "hadamard":
            _centre(K, C, n)
        kernels[name] = K
        traces[name] = tr / n
    return TangentKernels(
        kernels=kernels,
        traces=traces,
        routes=routes,
        n_examples=n,
        n_outputs=C,
        centered=centering,
    )


def tangent_kernels(model: Any, x: Any, *, centering: bool = True) -> TangentKernels:
    """Per-layer tangent kernels of ``model`` on the examples ``x`` (exact, no autograd).

    Parameters
    ----------
    model : Layer
        A model (usually a :class:`~lowdisp.nn.Sequential`) whose output is
        ``(batch, C)``; evaluated in eval mode (no dropout).
    x : (n, d) or (T, n, d) array_like
        The examples (e.g. 100 training images, as the paper), or ``n``
        sequences of length ``T`` for a recurrent classifier.
    centering : bool
        Subtract each output's mean tangent feature over the examples
        (``K ← (I_C ⊗ H) K (I_C ⊗ H)``), the paper's default.

    Returns
    -------
    TangentKernels
        ``K_l`` per layer with parameters, their traces, and the total.

    Raises
    ------
    ValueError
        A layer with parameters receives input that is neither ``(batch,
        features)`` nor ``(time, batch, features)``, or the model's output is
        not ``(batch, C)`` (e.g. a recurrent layer returning sequences).

    Notes
    -----
    Dense layers use ``K_l = (ÃÃᵀ) ⊙ (G_c G_c'ᵀ)`` blockwise; other layers
    the exact per-example Jacobian built from their own backward pass (see
    the module notes). Both are computed in float64 from the model's
    activations (float32 models give float32-accurate kernels). Cost for the
    784-256-256-10 MLP at n = 100: see ``benchmarks/bench_alignment.py``.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> net = lnn.Sequential({"fc": lnn.StructuredDense(8, 8, structure="toeplitz",
    ...                                                 dtype=np.float64, rng=0),
    ...                       "act": lnn.ReLU(dtype=np.float64),
    ...                       "out": lnn.Dense(8, 3, dtype=np.float64, rng=1)})
    >>> x = np.random.default_rng(0).normal(size=(10, 8))
    >>> tk = lnn.tangent_kernels(net, x)
    >>> tk.routes
    {'fc': 'jacobian', 'out': 'hadamard'}
    >>> bool(np.allclose(tk.total, tk.total.T))
    True
    """
    from lowdisp.nn._layers import Layer

    where = "tangent_kernels"
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a lowdisp.nn Layer; got {type(model).__name__}")
    centering = check_bool(centering, "centering", where=where)
    xa = as_array(x, "x", where=where, ndim=(2, 3), dtype=model.dtype, allow_complex=False)
    if xa.shape[xa.ndim - 2] < 1:
        raise ValueError(f"{where}: x must hold at least one example; got shape {xa.shape}")
    return _tangent_kernels_core(model, xa, centering)


# ---------------------------------------------------------------------------
# Schedule, callback, plot
# ---------------------------------------------------------------------------


def alignment_schedule(max_step: int, *, style: str = "paper") -> list[int]:
    """The logging steps ``≤ max_step`` of the paper: ``{0} ∪ {⌊5 · 1.15^k⌋, k ≥ 0}``.

    Parameters
    ----------
    max_step : int
    style : {"paper", "authors_code"}
        ``"paper"``: ``⌊5 · 1.15^k⌋`` (5, 5, 6, 7, 8, 10, 11, 13, ...);
        ``"authors_code"``: the authors' ``train.py`` evaluates
        ``5 * (1.15 ** k).astype('int')``, which by operator precedence is
        ``5 ⌊1.15^k⌋`` (multiples of 5: 5, 10, 15, 20, 25, 30, 35, 40, ...).

    Returns
    -------
    list of int
        Sorted, without duplicates.

    Examples
    --------
    >>> from lowdisp.nn import alignment_schedule
    >>> alignment_schedule(20)
    [0, 5, 6, 7, 8, 10, 11, 13, 15, 17, 20]
    >>> alignment_schedule(60, style="authors_code")
    [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60]
    """
    where = "alignment_schedule"
    m = check_int(max_step, "max_step", where=where, low=0)
    check_option(style, "style", SCHEDULES, where=where)
    k_max = math.ceil(math.log(max(m, 1) + 1) / math.log(1.15)) + 2
    p = 1.15 ** np.arange(k_max)
    steps = np.floor(5 * p) if style == "paper" else 5 * np.floor(p)
    out = sorted({0, *(int(s) for s in steps if s <= m)})
    return out


class AlignmentLogger(Callback):
    """Log tangent-kernel alignment per layer, the trace of the tangent second moment,
    step norms and the complexity measure along training.

    At every step of ``steps`` (default the paper's geometric schedule, step 0
    being the model before training) the callback computes
    :func:`tangent_kernels` on the sample ``(x, y)`` (and on ``(x_test,
    y_test)`` if given) and appends one record to ``trainer.history.records``
    (``"kind": "alignment"``) and to :attr:`records`; with ``directory`` it
    also (re)writes ``alignment.json`` and ``alignment.csv`` there (atomic), so
    a run folder holds them.

    Parameters
    ----------
    x : (n, d) or (T, n, d) array_like
        The examples of the kernels (the paper: 100 training examples).
    y : (n,) array_like of int
        Their labels (the training labels, noisy ones included).
    x_test, y_test : array_like, optional
        A second sample (the paper's 100 test examples).
    steps : sequence of int, optional
        Steps at which to log; default ``alignment_schedule(10**7, style=schedule)``.
    schedule : {"paper", "authors_code"}
        See :func:`alignment_schedule`.
    centering : bool
    directory : path, optional
        Where to write ``alignment.json`` / ``alignment.csv``.

    Attributes
    ----------
    records : list of dict
        ``{"kind": "alignment", "step", "alignment": {layer: A}, "alignment_total",
        "trace", "traces": {layer: tr}, "step_norm", "complexity"}`` (plus
        ``"alignment_test"`` and ``"alignment_test_total"`` with a test sample).

    Notes
    -----
    ``step_norm`` is ``‖θ_t − θ_s‖`` over all parameters between this log
    (step t) and the previous one (step s; 0 at the first). ``complexity``
    accumulates ``Σ_t ‖θ_t − θ_s‖ √(tr K_t) / n`` over the logs, with
    ``tr K_t = n · trace`` the trace of the uncentred tangent kernel on the
    ``n`` training examples: the Rademacher bound ``B √(tr K) / n`` of a
    linear class of norm ``B`` in the tangent features, summed along the path
    (our reading of the paper's heuristic; the authors' code logs the two
    ingredients, ``norm_dw`` and ``trK``, and combines them offline).
    Callbacks are not checkpointed: a resumed run starts a new sum.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(80, 6)); y = (x[:, 0] > 0).astype(int)
    >>> task = lnn.array_task(x[:60], y[:60], x[60:], y[60:], flat=True)
    >>> net = lnn.build_mlp(task, hidden=(8, 8), dtype=np.float64, rng=0)
    >>> log = lnn.AlignmentLogger(x[:20], y[:20])
    >>> tr = lnn.Trainer(net, task.loss(), lnn.SGD(0.1), task, batch_size=10, rng=0,
    ...                  callbacks=[log])
    >>> _ = tr.fit(12, progress=False)
    >>> [r["step"] for r in log.records]
    [0, 5, 6, 7, 8, 10, 11]
    >>> sorted(log.records[-1]["alignment"])
    ['fc0', 'fc1', 'readout']
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        *,
        x_test: Any = None,
        y_test: Any = None,
        steps: Iterable[int] | None = None,
        schedule: str = "paper",
        centering: bool = True,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        where = "AlignmentLogger"
        self.x = as_array(x, "x", where=where, ndim=(2, 3), allow_complex=False)
        self.y = np.asarray(y)
        n = self.x.shape[self.x.ndim - 2]  # (batch, d) or (time, batch, d)
        if self.y.shape != (n,):
            raise ValueError(
                f"{where}: y must have one label per example of x, shape ({n},); got {self.y.shape}"
            )
        if (x_test is None) != (y_test is None):
            raise ValueError(f"{where}: give both x_test and y_test, or neither")
        self.x_test: np.ndarray | None = None
        self.y_test: np.ndarray | None = None
        if x_test is not None:
            xt = as_array(x_test, "x_test", where=where, ndim=(2, 3), allow_complex=False)
            yt = np.asarray(y_test)
            if yt.shape != (xt.shape[xt.ndim - 2],):
                raise ValueError(
                    f"{where}: y_test must have one label per example of x_test; got {yt.shape}"
                )
            self.x_test, self.y_test = xt, yt
        check_option(schedule, "schedule", SCHEDULES, where=where)
        if steps is None:
            self.steps = set(alignment_schedule(10**7, style=schedule))
        else:
            if isinstance(steps, str | bytes) or not isinstance(steps, Iterable):
                raise TypeError(f"{where}: steps must be a sequence of ints; got {steps!r}")
            self.steps = {
                check_int(s, f"steps[{i}]", where=where, low=0) for i, s in enumerate(steps)
            }
        self.centering = check_bool(centering, "centering", where=where)
        if directory is not None and not isinstance(directory, str | os.PathLike):
            raise TypeError(f"{where}: directory must be None or a path; got {directory!r}")
        self.directory = None if directory is None else os.fspath(directory)
        self.records: list[dict[str, Any]] = []
        self._prev: dict[str, np.ndarray] | None = None
        self._complexity = 0.0

    def on_fit_start(self, trainer: Any) -> None:
        logged = {r["step"] for r in self.records}
        if trainer.step_count in self.steps and trainer.step_count not in logged:
            self._log(trainer)

    def on_step_end(self, trainer: Any, loss: float) -> None:
        if trainer.step_count in self.steps:
            self._log(trainer)

    def _log(self, trainer: Any) -> None:
        model = trainer.model
        params = model.params()
        if self._prev is None:
            step_norm = 0.0
        else:
            step_norm = math.sqrt(
                sum(float(np.sum((params[k] - self._prev[k]) ** 2.0)) for k in params)
            )
        self._prev = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        x = self.x.astype(model.dtype, copy=False)
        tk = _tangent_kernels_core(model, x, self.centering)
        al = tk.alignment(self.y)
        n = tk.n_examples
        self._complexity += step_norm * math.sqrt(max(tk.trace, 0.0) * n) / n
        rec: dict[str, Any] = {
            "kind": "alignment",
            "step": int(trainer.step_count),
            "alignment": {k: v for k, v in al.items() if k != "total"},
            "alignment_total": al["total"],
            "trace": tk.trace,
            "traces": dict(tk.traces),
            "step_norm": step_norm,
            "complexity": self._complexity,
        }
        if self.x_test is not None:
            tt = _tangent_kernels_core(
                model, self.x_test.astype(model.dtype, copy=False), self.centering
            )
            at = tt.alignment(self.y_test)
            rec["alignment_test"] = {k: v for k, v in at.items() if k != "total"}
            rec["alignment_test_total"] = at["total"]
        self.records.append(rec)
        trainer.history.records.append(rec)
        if self.directory is not None:
            self.write(self.directory)

    def write(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write ``alignment.json`` (all records) and ``alignment.csv`` (one row per
        log, one column per layer) into ``directory``; returns the paths.

        Examples
        --------
        >>> import tempfile
        >>> from lowdisp.nn import AlignmentLogger
        >>> AlignmentLogger([[0.0]], [0]).write(tempfile.mkdtemp())[0].endswith("alignment.json")
        True
        """
        from lowdisp.nn._cli import _write_json

        d = os.fspath(directory)
        os.makedirs(d, exist_ok=True)
        pj = os.path.join(d, "alignment.json")
        _write_json(pj, self.records)
        pc = os.path.join(d, "alignment.csv")
        tmp = pc + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(alignment_csv(self.records))
        os.replace(tmp, pc)
        return [pj, pc]


def alignment_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """The alignment records as CSV text: step, total, one column per layer, trace,
    step norm, complexity (and the test sample's columns when present)."""
    from lowdisp.nn._reproduce import csv_text

    recs = [r for r in records if r.get("kind", "alignment") == "alignment"]
    layers = list(dict.fromkeys(k for r in recs for k in r["alignment"]))
    test_layers = list(dict.fromkeys(k for r in recs for k in r.get("alignment_test", {})))
    cols = ["step", "alignment_total", *(f"alignment.{k}" for k in layers)]
    if test_layers:
        cols += ["alignment_test_total", *(f"alignment_test.{k}" for k in test_layers)]
    cols += ["trace", "step_norm", "complexity"]
    rows = []
    for r in recs:
        row = {k: r[k] for k in ("step", "alignment_total", "trace", "step_norm", "complexity")}
        row.update({f"alignment.{k}": v for k, v in r["alignment"].items()})
        if test_layers:
            row["alignment_test_total"] = r.get("alignment_test_total")
            row.update({f"alignment_test.{k}": v for k, v in r.get("alignment_test", {}).items()})
        rows.append(row)
    return csv_text(rows, cols)


def _records_of(source: Any, where: str) -> list[Mapping[str, Any]]:
    recs = getattr(source, "records", source)
    if not isinstance(recs, Sequence) or not all(isinstance(r, Mapping) for r in recs):
        raise TypeError(
            f"{where}: source must be an AlignmentLogger, a History or a list of records; "
            f"got {type(source).__name__}"
        )
    out = [r for r in recs if r.get("kind") == "alignment" and "alignment" in r]
    if not out:
        raise ValueError(f"{where}: no alignment records (run an AlignmentLogger first)")
    return out


def plot_alignment(
    source: Any, *, ax: Any = None, test: bool = False, total: bool = True, label: str = ""
) -> Any:
    """Alignment of every layer (and the total) against the iteration, log-scaled.

    Parameters
    ----------
    source : AlignmentLogger, History or list of records
    ax : matplotlib Axes, optional
    test : bool
        Plot the test sample's alignment (needs ``x_test`` in the logger).
    total : bool
        Also plot the total kernel's alignment (black).
    label : str
        Prefix of the legend entries.

    Returns
    -------
    matplotlib Axes
        The x axis is ``symlog`` (linear below 1), so step 0 shows.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> recs = [{"kind": "alignment", "step": s, "alignment": {"fc0": 0.1 * s},
    ...          "alignment_total": 0.2 * s} for s in (0, 5, 10)]
    >>> ax = lnn.plot_alignment(recs)
    >>> ax.get_xscale()
    'symlog'
    """
    where = "plot_alignment"
    recs = _records_of(source, where)
    check_bool(test, "test", where=where)
    check_bool(total, "total", where=where)
    key = "alignment_test" if test else "alignment"
    if any(key not in r for r in recs):
        raise ValueError(f"{where}: test=True needs records with a test sample (x_test=)")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    steps = np.array([r["step"] for r in recs])
    layers = list(dict.fromkeys(k for r in recs for k in r[key]))
    pre = f"{label} " if label else ""
    for name in layers:
        ax.plot(steps, [r[key].get(name, np.nan) for r in recs], marker=".", label=pre + name)
    if total:
        ax.plot(steps, [r[f"{key}_total"] for r in recs], "k-", lw=2, label=pre + "total")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("centred kernel-target alignment" if recs else "alignment")
    ax.legend(fontsize=8)
    return ax
