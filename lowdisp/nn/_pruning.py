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

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "pruning_masks",
    "remove_pruning",
    "set_mask",
    "sparsity_report",
]

#: attribute of a model holding its live mask dict
_ATTR = "_pruning_masks"


# ---------------------------------------------------------------------------
# the mask store (private helpers shared with the trainer, optimizer, checkpoint)
# ---------------------------------------------------------------------------


def model_masks(model: Any) -> dict[str, np.ndarray]:
    """The live ``{path: keep-mask}`` dict of ``model`` (created empty on first use)."""
    masks = model.__dict__.get(_ATTR)
    if masks is None:
        masks = {}
        setattr(model, _ATTR, masks)
    return masks


def bind_masks(optimizer: Any, masks: dict[str, np.ndarray]) -> None:
    """Share ``masks`` with ``optimizer`` (and the optimizer it wraps, e.g. KFAC's)."""
    from lowdisp.nn._optim import Optimizer

    seen = set()
    opt = optimizer
    while isinstance(opt, Optimizer) and id(opt) not in seen:
        seen.add(id(opt))
        opt.masks = masks
        opt = getattr(opt, "inner", None)


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
    >>> model.params()["fc.W"][0, 1], lnn.sparsity_report(model)["fc.W"]["sparsity"]
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
