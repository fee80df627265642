"""Pruning masks for lowdisp.nn models: set, report, remove (and the criteria).

Convention (``torch.nn.utils.prune``'s, adapted to a params dict): a pruned
parameter keeps its path and its array in ``model.params()``; its mask is a
boolean array of the same shape in a dict keyed by the same path, ``True``
for a kept entry (torch's ``weight_mask``), held by the model
(:func:`pruning_masks` returns a copy). Unlike torch, which keeps the raw
values in ``weight_orig`` and recomputes ``weight = weight_orig * mask`` in a
forward pre-hook, the pruned entries are set to zero in the parameter array
itself when the mask is set: the layers read their parameters directly, so
the forward pass sees the masked weights with no hook. A
:class:`~lowdisp.nn.Trainer` built on the model shares its mask dict with
the optimizer, which masks the gradients, the search direction and the state
(momentum buffers, Adam's moments, RMSprop's averages) of every masked
parameter and writes exact zeros at its pruned entries after each step;
checkpoints hold the masks (``masks/<path>``) and restore them bit for bit.
:func:`remove_pruning` makes pruning permanent (the zeros stay, the masks go,
and the entries may grow again in later training).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_option, check_real
from lowdisp.nn._curvature import n_examples
from lowdisp.nn._optim import model_masks

__all__ = [
    "predicted_loss_change",
    "prune",
    "pruning_masks",
    "pruning_scores",
    "remove_pruning",
    "set_mask",
    "sparsity_report",
]

# ---------------------------------------------------------------------------
# the mask store (private helpers shared with the trainer, optimizer, checkpoint)
# ---------------------------------------------------------------------------


def _resolve(target: Any, where: str) -> tuple[Any, Any]:
    """``(model, optimizer or None)`` of a model or a trainer."""
    from lowdisp.nn._layers import Layer
    from lowdisp.nn._trainer import Trainer

    if isinstance(target, Trainer):
        return target.model, target.optimizer
    if isinstance(target, Layer):
        return target, None
    raise TypeError(
        f"{where}: target must be a lowdisp.nn Layer (a model) or a Trainer; "
        f"got {type(target).__name__}"
    )


def _param_paths(paths: Any, params: Mapping[str, np.ndarray], where: str) -> list[str]:
    """Validate one path or a list of paths against the model's parameters."""
    if isinstance(paths, str):
        paths = [paths]
    elif not isinstance(paths, Iterable):
        raise TypeError(
            f"{where}: paths must be a parameter path (str) or a list of paths; got {paths!r}"
        )
    out = []
    for p in paths:
        if not isinstance(p, str):
            raise TypeError(f"{where}: a parameter path must be a str; got {p!r}")
        if p not in params:
            raise ValueError(
                f"{where}: the model has no parameter {p!r}; its parameters are "
                f"{', '.join(map(repr, sorted(params)))}"
            )
        if p in out:
            raise ValueError(f"{where}: parameter {p!r} is listed twice")
        out.append(p)
    if not out:
        raise ValueError(f"{where}: no parameter path given")
    return out


def _check_prunable(model: Any, path: str, where: str) -> None:
    if path in model.manifolds():
        raise ValueError(
            f"{where}: parameter {path!r} lives on a manifold (a Riemannian step keeps it "
            f"there, which a mask would break); it cannot be pruned"
        )
    a = model.params()[path]
    if a.dtype.kind not in "fc":
        raise TypeError(f"{where}: parameter {path!r} is {a.dtype}, not a float array")


def apply_mask(model: Any, optimizer: Any, path: str, keep: np.ndarray) -> None:
    """AND ``keep`` into the mask of ``path``, zero the pruned entries of the
    parameter and of the optimizer state of that path (private core)."""
    masks = model_masks(model)
    old = masks.get(path)
    new = keep.copy() if old is None else (old & keep)
    masks[path] = new
    off = ~new
    np.copyto(model.params()[path], 0, where=off)
    if optimizer is not None:
        zero_state(optimizer, path, off)


def zero_state(optimizer: Any, path: str, off: np.ndarray) -> None:
    """Zero the optimizer state entries of ``path`` where ``off`` (wrapped optimizers too)."""
    from lowdisp.nn._optim import Optimizer

    opt = optimizer
    seen = set()
    while isinstance(opt, Optimizer) and id(opt) not in seen:
        seen.add(id(opt))
        suffix = "/" + path
        for key, buf in opt.state.items():
            if key.endswith(suffix) and buf.shape == off.shape:
                np.copyto(buf, 0, where=off)
        opt = getattr(opt, "inner", None)


def check_mask_array(mask: Any, param: np.ndarray, name: str, where: str) -> np.ndarray:
    """A boolean array of the parameter's shape (0/1 integers accepted), as bool."""
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        if m.dtype.kind in "iuf" and np.all((m == 0) | (m == 1)):
            m = m.astype(bool)
        else:
            raise TypeError(
                f"{where}: {name} must be a boolean array (True = keep) or of 0/1 values; "
                f"got dtype {m.dtype}"
            )
    if m.shape != param.shape:
        raise ValueError(
            f"{where}: {name} must have the parameter's shape {param.shape}; got {m.shape}"
        )
    return np.ascontiguousarray(m)


# ---------------------------------------------------------------------------
# public mask API
# ---------------------------------------------------------------------------


def set_mask(target: Any, path: str, mask: Any) -> np.ndarray:
    """Prune one parameter by a given boolean mask (``True`` keeps the entry).

    The mask composes with an existing one (logical AND, like torch's
    ``custom_from_mask``). The pruned entries of the parameter are set to
    zero; with a trainer, the optimizer state of those entries too. From then
    on, training, checkpoints and resumes keep them exactly zero.

    Parameters
    ----------
    target : Layer or Trainer
        The model, or a trainer (its model and optimizer state).
    path : str
        A parameter path of ``model.params()`` (e.g. ``"fc0.W"``).
    mask : array of bool (or 0/1)
        The parameter's shape; ``True`` (1) keeps the entry.

    Returns
    -------
    ndarray of bool
        The combined mask now in force (a copy).

    Raises
    ------
    ValueError
        Unknown path, a wrong shape, or a manifold parameter (orthogonal maps).
    TypeError
        A mask that is not boolean or 0/1.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> model = lnn.Sequential({"fc": lnn.Dense(3, 2, dtype=np.float64, rng=0)})
    >>> keep = np.array([[True, False, True], [False, True, True]])
    >>> _ = lnn.set_mask(model, "fc.W", keep)
    >>> float(model.params()["fc.W"][0, 1]), lnn.sparsity_report(model)["fc.W"]["sparsity"]
    (0.0, 0.3333333333333333)
    """
    where = "set_mask"
    model, opt = _resolve(target, where)
    params = model.params()
    (path,) = _param_paths([path] if isinstance(path, str) else path, params, where)
    _check_prunable(model, path, where)
    keep = check_mask_array(mask, params[path], "mask", where)
    apply_mask(model, opt, path, keep)
    return model_masks(model)[path].copy()


def pruning_masks(target: Any) -> dict[str, np.ndarray]:
    """The masks in force, ``{path: bool array}`` (copies; ``True`` = kept).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> model = lnn.Sequential({"fc": lnn.Dense(2, 2, dtype=np.float64, rng=0)})
    >>> lnn.pruning_masks(model)
    {}
    >>> _ = lnn.set_mask(model, "fc.W", np.eye(2, dtype=bool))
    >>> lnn.pruning_masks(model)["fc.W"]
    array([[ True, False],
           [False,  True]])
    """
    model, _ = _resolve(target, "pruning_masks")
    return {k: v.copy() for k, v in model_masks(model).items()}


def remove_pruning(target: Any, paths: Any = None) -> list[str]:
    """Make pruning permanent: drop the masks, keep the zeros (torch's ``prune.remove``).

    Parameters
    ----------
    target : Layer or Trainer
    paths : str or list of str, optional
        The parameters to release (default: every masked one).

    Returns
    -------
    list of str
        The paths whose masks were removed.

    Raises
    ------
    ValueError
        A path that does not exist or has no mask.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> model = lnn.Sequential({"fc": lnn.Dense(2, 2, dtype=np.float64, rng=0)})
    >>> _ = lnn.set_mask(model, "fc.W", np.eye(2, dtype=bool))
    >>> lnn.remove_pruning(model), lnn.pruning_masks(model), float(model.params()["fc.W"][0, 1])
    (['fc.W'], {}, 0.0)
    """
    where = "remove_pruning"
    model, _ = _resolve(target, where)
    masks = model_masks(model)
    if paths is None:
        chosen = sorted(masks)
    else:
        chosen = _param_paths(paths, model.params(), where)
        missing = [p for p in chosen if p not in masks]
        if missing:
            raise ValueError(
                f"{where}: {', '.join(map(repr, missing))} not pruned (masked: "
                f"{', '.join(map(repr, sorted(masks))) or 'none'})"
            )
    for p in chosen:
        del masks[p]
    return chosen


def sparsity_report(target: Any, paths: Any = None) -> dict[str, dict[str, Any]]:
    """Per-parameter and overall sparsity: masked-out entries and exact zeros.

    Parameters
    ----------
    target : Layer or Trainer
    paths : str or list of str, optional
        Parameters to report (default: all).

    Returns
    -------
    dict
        ``{path: {"size", "pruned", "zeros", "sparsity"}, ..., "overall": {...}}``:
        ``pruned`` counts masked-out entries, ``zeros`` exact zeros (pruned
        or not), ``sparsity = pruned / size``.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> model = lnn.Sequential({"fc": lnn.Dense(2, 2, dtype=np.float64, rng=0)})
    >>> _ = lnn.set_mask(model, "fc.W", np.eye(2, dtype=bool))
    >>> r = lnn.sparsity_report(model)
    >>> r["fc.W"]["pruned"], r["overall"]["size"], r["overall"]["sparsity"]
    (2, 6, 0.3333333333333333)
    """
    where = "sparsity_report"
    model, _ = _resolve(target, where)
    params = model.params()
    chosen = sorted(params) if paths is None else _param_paths(paths, params, where)
    masks = model_masks(model)
    out: dict[str, dict[str, Any]] = {}
    tot = {"size": 0, "pruned": 0, "zeros": 0}
    for p in chosen:
        a = params[p]
        m = masks.get(p)
        row = {
            "size": int(a.size),
            "pruned": 0 if m is None else int(a.size - np.count_nonzero(m)),
            "zeros": int(a.size - np.count_nonzero(a)),
        }
        row["sparsity"] = row["pruned"] / max(row["size"], 1)
        out[p] = row
        for k in tot:
            tot[k] += row[k]
    out["overall"] = {**tot, "sparsity": tot["pruned"] / max(tot["size"], 1)}
    return out


# ---------------------------------------------------------------------------
# criteria: gradient and Fisher diagonal of the loss on data
# ---------------------------------------------------------------------------

#: pruning criteria (the smallest score is pruned first)
CRITERIA = ("magnitude", "random", "obd", "lm", "qm", "lm_abs", "qm_abs")
#: models of the loss change of a pruning step (:func:`predicted_loss_change`)
LOSS_MODELS = ("lm", "obd", "qm", "quadratic")
#: Fisher representations of the full quadratic model
CURVATURES = ("kfac", "ekfac", "diag", "dense", "block")


def _batch_counts(z: np.ndarray, loss: Any, where: str) -> tuple[int, int]:
    """``(examples, elements)`` of one batch from the model output ``z``: the examples
    (sequences) are :func:`~lowdisp.nn._curvature.n_examples` of ``(B, C)`` or
    ``(T, B, C)`` (the batch axis, as :func:`~lowdisp.nn.fisher_matrix` counts them),
    the elements the loss terms of one example that a mean averages (its ``C``
    outputs, not for softmax, at each of its ``T`` positions)."""
    from lowdisp.nn._losses import SoftmaxCrossEntropy

    if z.ndim not in (2, 3):
        raise ValueError(
            f"{where}: the loss statistics need a model output (batch, outputs) or (time, "
            f"batch, outputs); got shape {z.shape}"
        )
    B = n_examples(z)
    per = z.size // max(B, 1)
    return B, per // z.shape[-1] if isinstance(loss, SoftmaxCrossEntropy) else per


class _Stats:
    """Gradient and Fisher diagonal of the loss ``L`` at the current parameters.

    Over several batches ``L = Σ_b (B_b/N) L_b`` (the example-weighted mean of
    the batch losses, ``N = Σ_b B_b``) for ``reduction="mean"``, ``Σ_b L_b`` for
    ``"sum"``; ``B_b`` counts examples (sequences: the batch axis of a
    time-major ``(T, B, ...)`` batch, never its length ``T``).
    """

    def __init__(self, model: Any, loss: Any, batches: list, where: str) -> None:
        self.where = where
        self.model = model
        self.loss = loss
        self.batches = batches
        self._counts: list[tuple[int, int]] | None = None
        self._grad: dict[str, np.ndarray] | None = None
        self._fdiag: dict[str, np.ndarray] | None = None
        self._fishers: dict[tuple[str, str], list[tuple[Any, float]]] = {}

    def counts(self) -> list[tuple[int, int]]:
        """``(B_b, elements per example)`` of every batch (:func:`_batch_counts`)."""
        if self._counts is None:
            self._counts = [
                _batch_counts(self.model.forward(x, train=False)[0], self.loss, self.where)
                for x, _ in self.batches
            ]
        return self._counts

    @property
    def n(self) -> int:
        """``N``: the examples (sequences) of all batches."""
        return sum(b for b, _ in self.counts())

    def groups(self) -> list[tuple[list, float]]:
        """``[(batches, w)]`` with the Fisher of ``L`` equal to ``Σ w · F(batches)``,
        ``F`` being :func:`fisher_matrix`'s ``(1/N_g) Σ_i ∇ℓ_i ∇ℓ_iᵀ`` over the
        ``N_g`` examples of the group. A sum: ``w = N`` (one group). A mean over
        ``k`` elements per example: ``Σ_i ∇ℓ_i ∇ℓ_iᵀ/(N k)``, one group per ``k``
        (batches of different lengths ``T``), ``w = N_g/(N k)``."""
        counts = self.counts()
        n = self.n
        if self.loss.reduction == "sum":
            return [(self.batches, float(n))]
        bs: dict[int, list] = {}
        m: dict[int, int] = {}
        for b, (B, per) in zip(self.batches, counts, strict=True):
            bs.setdefault(per, []).append(b)
            m[per] = m.get(per, 0) + B
        return [(bs[per], m[per] / (n * per)) for per in bs]

    def scale(self) -> float:
        """The one factor turning a Fisher object built on all the batches into the
        Fisher of ``L`` (1 for a mean cross-entropy; ``1/(T C)`` for a mean MSE/BCE
        of ``T`` positions and ``C`` outputs; ``N`` for a sum)."""
        groups = self.groups()
        if len(groups) > 1:
            raise ValueError(
                f"{self.where}: the batches' examples have different numbers of loss elements "
                f"({sorted({k for _, k in self.counts()})}: sequences of different lengths "
                f"under a mean), so no single factor scales one Fisher object to the loss; "
                f"give curvature as a fisher_matrix kind ({', '.join(CURVATURES)})"
            )
        return groups[0][1]

    def grad(self) -> dict[str, np.ndarray]:
        """``∇L`` over all the data (float64), every parameter."""
        if self._grad is None:
            mean = self.loss.reduction == "mean"
            acc: dict[str, np.ndarray] = {}
            counts = []
            for x, y in self.batches:
                z, cache = self.model.forward(x, train=False)
                counts.append(_batch_counts(z, self.loss, self.where))
                _, dz = self.loss(z, y)
                _, g = self.model.backward(cache, dz)
                w = float(counts[-1][0]) if mean else 1.0  # B_b ∇L_b, divided by N below
                for k, v in g.items():
                    v = np.asarray(v, dtype=np.float64) * w
                    acc[k] = acc[k] + v if k in acc else v
            self._counts = counts
            if mean:
                n = self.n
                for v in acc.values():
                    v /= n
            self._grad = acc
        return self._grad

    def fishers(self, kind: str, flavour: str, rng: Any) -> list[tuple[Any, float]]:
        """``[(F_g, w_g)]`` of :meth:`groups`, ``F_g`` a :func:`fisher_matrix` of ``kind``."""
        key = (kind, flavour)
        if key not in self._fishers:
            import warnings

            from lowdisp.nn._curvature import CurvatureWarning
            from lowdisp.nn._fisher import fisher_matrix

            pairs = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CurvatureWarning)
                for bs, w in self.groups():
                    F = fisher_matrix(self.model, self.loss, bs, kind=kind, fisher=flavour, rng=rng)
                    pairs.append((F, w))
            self._fishers[key] = pairs
        return self._fishers[key]

    def fdiag(self, flavour: str, rng: Any) -> dict[str, np.ndarray]:
        """The Fisher diagonal of ``L`` per dense-layer parameter path."""
        if self._fdiag is None:
            params = self.model.params()
            out: dict[str, np.ndarray] = {}
            for F, w in self.fishers("diag", flavour, rng):
                d = F.mv({p: np.ones(params[p].shape) for p in F.paths})
                for k, v in d.items():
                    out[k] = out[k] + w * v if k in out else w * v
            self._fdiag = out
        return self._fdiag


def _data_batches(target: Any, data: Any, where: str) -> list:
    from lowdisp.nn._trainer import Trainer

    if data is None:
        if isinstance(target, Trainer) and target.task.train_data() is not None:
            data = target.task.train_data()
        else:
            raise ValueError(
                f"{where}: this criterion needs data=(x, y) (or a list of (x, y) batches) "
                f"to estimate the gradient and the Fisher; a Trainer of a dataset task "
                f"supplies its training set"
            )
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        batches = [data]
    elif isinstance(data, Iterable):
        batches = list(data)
    else:
        raise TypeError(f"{where}: data must be a pair (x, y) or a list of (x, y) batches")
    out = []
    for i, b in enumerate(batches):
        if not (isinstance(b, tuple | list) and len(b) == 2):
            raise TypeError(f"{where}: data[{i}] must be a pair (x, y); got {type(b).__name__}")
        x = np.asarray(b[0])
        if x.ndim < 1 or x.size == 0:
            raise ValueError(f"{where}: data[{i}] holds no example")
        out.append((x, b[1]))
    if not out:
        raise ValueError(f"{where}: data holds no batch")
    return out


def _loss_of(target: Any, loss: Any, where: str) -> Any:
    from lowdisp.nn._losses import Loss
    from lowdisp.nn._trainer import Trainer

    if loss is None:
        if isinstance(target, Trainer):
            return target.loss
        raise ValueError(f"{where}: this criterion needs loss= (e.g. task.loss())")
    if not isinstance(loss, Loss):
        raise TypeError(f"{where}: loss must be a lowdisp.nn Loss; got {type(loss).__name__}")
    return loss


def _stats_for(target, model, data, loss, where) -> _Stats:
    loss = _loss_of(target, loss, where)
    return _Stats(model, loss, _data_batches(target, data, where), where)


def _dense_only(paths: list[str], fd: Mapping[str, np.ndarray], what: str, where: str) -> None:
    bad = [p for p in paths if p not in fd]
    if bad:
        raise ValueError(
            f"{where}: {what} needs the Fisher diagonal, which covers the Dense layers' "
            f"parameters only ({', '.join(map(repr, sorted(fd)))}); not {', '.join(map(repr, bad))}"
            f" (use 'magnitude', 'random' or 'lm' there)"
        )


def _scores(
    model: Any,
    paths: list[str],
    criterion: str,
    stats: _Stats | None,
    fisher: str,
    rng: Any,
    where: str,
) -> dict[str, np.ndarray]:
    params = model.params()
    if criterion == "magnitude":
        return {p: np.abs(params[p]).astype(np.float64) for p in paths}
    if criterion == "random":
        return {p: rng.random(params[p].shape) for p in paths}
    assert stats is not None
    out = {}
    base = criterion.removesuffix("_abs")
    g = stats.grad() if base in ("lm", "qm") else None
    fd = stats.fdiag(fisher, rng) if base in ("obd", "qm") else None
    if fd is not None:
        _dense_only(paths, fd, repr(criterion), where)
    for p in paths:
        th = np.asarray(params[p], dtype=np.float64)
        s = np.zeros(th.shape)
        if g is not None:
            s -= g[p] * th
        if fd is not None:
            s += 0.5 * fd[p] * th * th
        out[p] = np.abs(s) if base != criterion else s
    return out


def pruning_scores(
    target: Any,
    paths: Any = None,
    *,
    criterion: str = "magnitude",
    data: Any = None,
    loss: Any = None,
    fisher: str = "empirical",
    rng: Any = None,
) -> dict[str, np.ndarray]:
    """The saliency of every entry under a criterion; the smallest is pruned first.

    Parameters
    ----------
    target : Layer or Trainer
    paths : str or list of str, optional
        Parameters to score (default: every ``*.W`` weight matrix).
    criterion : {"magnitude", "random", "obd", "lm", "qm", "lm_abs", "qm_abs"}
        ``|θ_i|``; uniform noise; OBD ``½ F_ii θ_i²``; LM ``−g_i θ_i``; QM
        ``−g_i θ_i + ½ F_ii θ_i²``, with ``g = ∇L`` and ``F_ii`` the Fisher
        diagonal of the loss ``L`` (each the loss change a Taylor model
        predicts for removing entry ``i`` alone). LM and QM are signed (prune
        what the model says lowers the loss most); ``lm_abs``/``qm_abs`` are
        their absolute values (prune what changes the loss least, the
        loss-preservation reading; Molchanov et al.'s Taylor criterion is
        ``|g_i θ_i|``).
    data : (x, y) or list of (x, y), optional
        Where ``g`` and ``F`` are estimated (OBD/LM/QM); default the training
        set of a trainer's dataset task.
    loss : Loss, optional
        Default the trainer's loss.
    fisher : {"empirical", "mc", "exact"}
        Flavour of the Fisher diagonal (:func:`~lowdisp.nn.fisher_matrix`):
        the empirical Fisher by default (as in OBD practice); ``"exact"`` is
        the generalised Gauss-Newton matrix.
    rng : seed or Generator, optional
        For ``"random"`` and ``fisher="mc"``.

    Returns
    -------
    dict of path -> float64 array

    Notes
    -----
    An example is a row of a ``(B, C)`` model output or a sequence of a
    ``(T, B, C)`` one (its batch axis ``B``, not the length ``T`` of a
    time-major batch). Over several batches ``L = Σ_b (B_b/N) L_b`` (the
    example-weighted mean of the batch losses, ``N = Σ_b B_b``) for
    ``reduction="mean"``, ``Σ_b L_b`` for ``"sum"``.
    :func:`~lowdisp.nn.fisher_matrix` averages ``∇ℓ_i ∇ℓ_iᵀ`` of the
    per-example losses ``ℓ_i`` (summed over outputs and positions); it is
    rescaled to the loss ``L`` (×1 for a mean cross-entropy, ×1/(T C) for a
    mean MSE over C outputs at T positions, ×N for a sum; batches of
    different lengths under a mean are estimated per length and weighted),
    so ``fisher="exact"`` gives the Gauss-Newton matrix of ``L`` itself. OBD
    and QM need the Fisher diagonal, which covers the parameters of
    :class:`~lowdisp.nn.Dense` layers and dense tanh/ReLU RNN cells.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> model = lnn.Sequential({"fc": lnn.Dense(4, 3, dtype=np.float64, rng=0)})
    >>> data = (rng.normal(size=(30, 4)), rng.integers(0, 3, 30))
    >>> s = lnn.pruning_scores(model, criterion="obd", data=data, loss=lnn.SoftmaxCrossEntropy())
    >>> s["fc.W"].shape, bool((s["fc.W"] >= 0).all())
    ((3, 4), True)
    """
    where = "pruning_scores"
    model, _ = _resolve(target, where)
    chosen = _default_paths(model, paths, where)
    return _criterion_scores(target, model, chosen, criterion, data, loss, fisher, rng, where)


def _criterion_scores(
    target: Any,
    model: Any,
    chosen: list[str],
    criterion: Any,
    data: Any,
    loss: Any,
    fisher: Any,
    rng: Any,
    where: str,
) -> dict[str, np.ndarray]:
    """Check ``criterion``, ``fisher`` and ``rng``, estimate the loss statistics the
    criterion needs (none for magnitude/random) and score the ``chosen`` paths."""
    check_criterion(criterion, where)
    check_flavour(fisher, where)
    gen = as_rng(rng, where=where)
    stats = None
    if criterion not in ("magnitude", "random"):
        stats = _stats_for(target, model, data, loss, where)
    return _scores(model, chosen, criterion, stats, fisher, gen, where)


def check_criterion(criterion: Any, where: str) -> str:
    return check_option(criterion, "criterion", CRITERIA, where=where)


def check_flavour(fisher: Any, where: str) -> str:
    from lowdisp.nn._fisher import FLAVOURS

    return check_option(fisher, "fisher", FLAVOURS, where=where)


def _default_paths(model: Any, paths: Any, where: str) -> list[str]:
    params = model.params()
    if paths is None:
        chosen = [p for p in params if p.endswith(".W") or p == "W"]
        if not chosen:
            raise ValueError(
                f"{where}: the model has no '*.W' weight matrix; give paths= (its parameters: "
                f"{', '.join(map(repr, sorted(params)))})"
            )
    else:
        chosen = _param_paths(paths, params, where)
    for p in chosen:
        _check_prunable(model, p, where)
    return chosen


# ---------------------------------------------------------------------------
# prune
# ---------------------------------------------------------------------------


def _count(amount: Any, remaining: int, what: str, where: str) -> int:
    """torch's rule: a float is a fraction of the remaining entries (rounded), an int a count."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(
            f"{where}: amount must be a fraction in [0, 1] (float) or a count (int); got {amount!r}"
        )
    if isinstance(amount, numbers.Integral):
        k = int(amount)
        if k < 0 or k > remaining:
            raise ValueError(
                f"{where}: amount={k} entries must be in [0, {remaining}], the remaining "
                f"(unpruned) entries of {what}"
            )
        return k
    a = float(amount)
    if not (0.0 <= a <= 1.0):
        raise ValueError(
            f"{where}: amount must be a fraction in [0, 1] of the remaining entries (or an int "
            f"count); got {amount!r}"
        )
    return round(a * remaining)  # Python's round, as torch's _compute_nparams_toprune


def _smallest(scores: np.ndarray, alive: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the ``k`` smallest scores among the alive entries (ties: lowest index)."""
    idx = np.flatnonzero(alive)
    if k == 0:
        return idx[:0]
    order = np.argsort(scores[idx], kind="stable")
    return idx[order[:k]]


def apply_scores(
    model: Any, opt: Any, chosen: list[str], scores: dict, scope: str, count: Any
) -> None:
    """Prune the smallest scores among the remaining entries: ``count(remaining, size,
    what)`` entries per parameter (``"layer"``) or over all of them (``"global"``)."""
    params = model.params()
    masks = model_masks(model)
    alive = {p: masks[p] if p in masks else np.ones(params[p].shape, dtype=bool) for p in chosen}
    if scope == "layer":
        for p in chosen:
            k = count(int(np.count_nonzero(alive[p])), params[p].size, repr(p))
            keep = alive[p].copy()
            keep.reshape(-1)[_smallest(scores[p].reshape(-1), alive[p].reshape(-1), k)] = False
            apply_mask(model, opt, p, keep)
        return
    flat_s = np.concatenate([scores[p].reshape(-1) for p in chosen])
    flat_a = np.concatenate([alive[p].reshape(-1) for p in chosen])
    k = count(int(np.count_nonzero(flat_a)), flat_a.size, f"the {len(chosen)} parameters")
    drop = np.zeros(flat_a.shape, dtype=bool)
    drop[_smallest(flat_s, flat_a, k)] = True
    i = 0
    for p in chosen:
        n = params[p].size
        keep = alive[p] & ~drop[i : i + n].reshape(params[p].shape)
        apply_mask(model, opt, p, keep)
        i += n


def prune(
    target: Any,
    paths: Any = None,
    *,
    criterion: str = "magnitude",
    amount: float | int = 0.5,
    scope: str = "layer",
    data: Any = None,
    loss: Any = None,
    importance_scores: Mapping[str, Any] | None = None,
    fisher: str = "empirical",
    rng: Any = None,
) -> dict[str, np.ndarray]:
    """Prune parameters by a criterion, per layer or globally, on the remaining entries.

    Parameters
    ----------
    target : Layer or Trainer
        The model, or a trainer (its optimizer state is masked too; its
        loss and training set are the defaults of ``loss``/``data``).
    paths : str or list of str, optional
        Parameters to prune (default: every ``*.W`` weight matrix).
    criterion : {"magnitude", "random", "obd", "lm", "qm", "lm_abs", "qm_abs"}
        See :func:`pruning_scores`.
    amount : float or int
        A float in [0, 1]: the fraction of the *remaining* (unpruned) entries
        to prune, rounded (pruning 0.5 twice leaves 25%); an int: a count, at
        most the remaining entries. Per parameter (``scope="layer"``) or over
        all of them (``"global"``).
    scope : {"layer", "global"}
        ``"global"`` ranks the entries of all ``paths`` together (torch's
        ``global_unstructured``).
    data, loss, fisher, rng
        See :func:`pruning_scores`.
    importance_scores : dict of path -> array, optional
        Scores to use instead of the criterion's (torch's argument; the
        smallest is pruned); ``criterion`` is then ignored.

    Returns
    -------
    dict of path -> bool array
        The masks now in force on ``paths`` (copies; ``True`` = kept).

    Raises
    ------
    ValueError
        ``amount`` outside [0, 1] or above the remaining count, an unknown
        criterion or scope (the valid names are listed), a missing
        parameter, or OBD/QM on a parameter outside the Dense layers.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> model = lnn.Sequential({"fc": lnn.Dense(10, 10, dtype=np.float64, rng=0)})
    >>> _ = lnn.prune(model, "fc.W", amount=0.5)
    >>> _ = lnn.prune(model, "fc.W", amount=0.5)
    >>> lnn.sparsity_report(model)["fc.W"]["sparsity"]
    0.75
    """
    where = "prune"
    model, opt = _resolve(target, where)
    chosen = _default_paths(model, paths, where)
    check_option(scope, "scope", ("layer", "global"), where=where)
    params = model.params()
    live = model_masks(model)
    rem = {p: int(np.count_nonzero(live[p])) if p in live else params[p].size for p in chosen}
    if scope == "layer":  # every amount is checked before anything is computed or pruned
        for p in chosen:
            _count(amount, rem[p], repr(p), where)
    else:
        _count(amount, sum(rem.values()), f"the {len(chosen)} parameters", where)
    if importance_scores is not None:
        if not isinstance(importance_scores, Mapping):
            raise TypeError(f"{where}: importance_scores must be a dict of path -> array")
        scores = {}
        for p in chosen:
            if p not in importance_scores:
                raise ValueError(f"{where}: importance_scores has no entry for {p!r}")
            s = np.asarray(importance_scores[p], dtype=np.float64)
            if s.shape != params[p].shape:
                raise ValueError(
                    f"{where}: importance_scores[{p!r}] must have shape {params[p].shape}; "
                    f"got {s.shape}"
                )
            scores[p] = s
    else:
        scores = _criterion_scores(target, model, chosen, criterion, data, loss, fisher, rng, where)

    def count(remaining: int, size: int, what: str) -> int:
        return _count(amount, remaining, what, where)

    apply_scores(model, opt, chosen, scores, scope, count)
    masks = model_masks(model)
    return {p: masks[p].copy() for p in chosen}


# ---------------------------------------------------------------------------
# loss models of a pruning step
# ---------------------------------------------------------------------------


def predicted_loss_change(
    target: Any,
    keep: Mapping[str, Any],
    *,
    model: str = "qm",
    data: Any = None,
    loss: Any = None,
    fisher: str = "empirical",
    curvature: Any = "kfac",
    scale: float = 1.0,
    rng: Any = None,
) -> float:
    """The loss change a Taylor model predicts for pruning to candidate masks.

    The step is ``Δθ = −t·(1 − keep)⊙θ`` (``t = scale``; entries already zero
    contribute nothing) and

    - ``"lm"``: ``gᵀΔθ``;
    - ``"obd"``: ``½ Σ_i F_ii Δθ_i²``;
    - ``"qm"``: ``gᵀΔθ + ½ Σ_i F_ii Δθ_i²`` (the separable model whose
      one-entry terms are the QM scores);
    - ``"quadratic"``: ``gᵀΔθ + ½ ΔθᵀFΔθ`` with the full curvature ``F``
      (``curvature``: a :func:`~lowdisp.nn.fisher_matrix` kind such as
      ``"kfac"``/``"ekfac"``/``"dense"``, or a Fisher object built on the same
      loss), which is not separable.

    Parameters
    ----------
    target : Layer or Trainer
    keep : dict of path -> bool array
        Candidate masks (``True`` = kept), e.g. from :func:`prune` on a copy.
    model : {"lm", "obd", "qm", "quadratic"}
    data, loss, fisher, rng
        See :func:`pruning_scores`.
    curvature : str or Fisher object
        For ``"quadratic"``. An object is taken as built on ``data`` with
        ``loss`` and scaled like the Fisher diagonal (see
        :func:`pruning_scores`); refused under a mean over sequences of
        different lengths, which no single factor scales (give a kind).
    scale : float
        ``t`` (1: remove the entries; small: the Taylor regime).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> net = lnn.Sequential({"fc": lnn.Dense(4, 3, dtype=np.float64, rng=0)})
    >>> data = (rng.normal(size=(30, 4)), rng.integers(0, 3, 30))
    >>> keep = {"fc.W": rng.random((3, 4)) > 0.5}
    >>> ce = lnn.SoftmaxCrossEntropy()
    >>> lm = lnn.predicted_loss_change(net, keep, model="lm", data=data, loss=ce, scale=1e-3)
    >>> x, y = data
    >>> before = ce(net.forward(x)[0], y)[0]
    >>> W = net.params()["fc.W"]; W -= 1e-3 * np.where(keep["fc.W"], 0, W)
    >>> bool(abs(ce(net.forward(x)[0], y)[0] - before - lm) < 1e-3 * abs(lm))
    True
    """
    where = "predicted_loss_change"
    net, _ = _resolve(target, where)
    check_option(model, "model", LOSS_MODELS, where=where)
    check_flavour(fisher, where)
    t = check_real(scale, "scale", where=where)
    delta = _delta(net, keep, t, where)
    stats = _stats_for(target, net, data, loss, where)
    return _predict(stats, delta, model, fisher, curvature, as_rng(rng, where=where), where)


def _delta(net: Any, keep: Any, t: float, where: str) -> dict[str, np.ndarray]:
    if not isinstance(keep, Mapping):
        raise TypeError(f"{where}: keep must be a dict of path -> bool array (True = kept)")
    params = net.params()
    paths = _param_paths(list(keep), params, where)
    out = {}
    for p in paths:
        k = check_mask_array(keep[p], params[p], f"keep[{p!r}]", where)
        out[p] = -t * np.where(k, 0.0, np.asarray(params[p], dtype=np.float64))
    return out


def _predict(
    stats: _Stats, delta: dict, model: str, fisher: str, curvature: Any, rng: Any, where: str
) -> float:
    total = 0.0
    if model in ("lm", "qm", "quadratic"):
        g = stats.grad()
        total += sum(float(np.vdot(g[p], d)) for p, d in delta.items())
    if model in ("obd", "qm"):
        fd = stats.fdiag(fisher, rng)
        _dense_only(list(delta), fd, f"model={model!r}", where)
        total += 0.5 * sum(float(np.sum(fd[p] * d * d)) for p, d in delta.items())
    if model == "quadratic":
        if isinstance(curvature, str):
            pairs = stats.fishers(curvature, fisher, rng)
        elif hasattr(curvature, "mv") and hasattr(curvature, "paths"):
            pairs = [(curvature, stats.scale())]
        else:
            raise TypeError(
                f"{where}: curvature must be a fisher_matrix kind "
                f"({', '.join(CURVATURES)}) or a Fisher object; got {curvature!r}"
            )
        covered = set(pairs[0][0].paths)
        bad = [p for p, d in delta.items() if p not in covered and np.any(d)]
        if bad:
            raise ValueError(
                f"{where}: the curvature covers {sorted(covered)}; the step moves {bad} too"
            )
        params = stats.model.params()
        for F, w in pairs:
            v = {p: delta.get(p, np.zeros(params[p].shape)) for p in F.paths}
            Fv = F.mv(v)
            total += 0.5 * w * sum(float(np.vdot(v[p], Fv[p])) for p in F.paths)
    return total


def loss_on(model: Any, loss: Any, batches: list, n: int) -> float:
    """The loss ``L`` over all batches: the mean of the batch losses weighted by their
    examples ``B_b`` (sequences of a ``(T, B, ...)`` batch) over ``n = Σ_b B_b``, or
    their sum for ``"sum"``."""
    total = 0.0
    for x, y in batches:
        z, _ = model.forward(x, train=False)
        v, _ = loss.forward(z, y)
        total += v if loss.reduction == "sum" else v * _batch_counts(z, loss, "loss_on")[0] / n
    return total
