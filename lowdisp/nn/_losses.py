"""Losses returning the value and the gradient with respect to the prediction.

Every loss has ``forward(pred, target, mask=None) -> (value, cache)``,
``backward(cache, dloss=1.0) -> dpred`` and ``__call__`` returning
``(value, dpred)`` in one go (what the Trainer uses).

Input contract: ``pred`` is a float32 or float64 array (the gradient keeps its
dtype; ``np.matrix`` becomes a plain array, masked arrays are refused: use
``mask=``); the target has exactly the shape of ``pred`` (class ids: the shape
of ``pred`` without its class axis), never reshaped. An empty batch has no
mean: ``reduction="mean"`` refuses it with a ``ValueError``, ``"sum"``
returns 0.0 and a zero gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_plain_ndarray, check_option, check_real

__all__ = ["MSE", "Loss", "SigmoidBinaryCrossEntropy", "SoftmaxCrossEntropy", "make_loss"]

_REDUCTIONS = ("mean", "sum")


def _plain(x: Any, name: str, where: str) -> np.ndarray:
    x = as_plain_ndarray(x, name, where=where)
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {name} must be array_like; got {type(x).__name__}") from exc


def _pred(pred: Any, where: str) -> np.ndarray:
    arr = _plain(pred, "pred", where)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: pred must be a float32/float64 array; got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{where}: pred must have at least 1 dimension; got a scalar")
    return arr


def _real_target(target: Any, shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
    """A real target of exactly ``shape`` (never reshaped), cast to ``dtype``."""
    t = _plain(target, "target", where)
    if t.dtype == object or t.dtype.kind not in "biuf":
        raise TypeError(f"{where}: target must hold real numbers; got dtype {t.dtype}")
    if t.shape != shape:
        raise ValueError(
            f"{where}: target must have the shape of pred {shape}; got {t.shape} "
            f"(a target is never reshaped or broadcast)"
        )
    return t.astype(dtype, copy=False)


def _mask(mask: Any, shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray | None:
    if mask is None:
        return None
    m = _plain(mask, "mask", where)
    if m.dtype == object or m.dtype.kind not in "biuf":
        raise TypeError(f"{where}: mask must hold real numbers or booleans; got dtype {m.dtype}")
    if m.shape != shape:
        raise ValueError(f"{where}: mask must have shape {shape}; got {m.shape}")
    m = m.astype(dtype)
    if m.size and (not np.isfinite(m).all() or m.min() < 0):
        raise ValueError(f"{where}: mask must hold finite weights >= 0")
    return m


def _row_max(z2: np.ndarray) -> np.ndarray:
    """Row maxima of an ``(m, C)`` array; a loop over few columns beats ``max(axis=1)``."""
    C = z2.shape[1]
    if C > 32:
        return z2.max(axis=1)
    m = z2[:, 0].copy()
    for j in range(1, C):
        np.maximum(m, z2[:, j], out=m)
    return m


class Loss:
    """Base class of the losses (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import MSE
    >>> value, grad = MSE()(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    >>> value, grad
    (2.0, array([0., 2.]))
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        self.reduction = check_option(
            reduction, "reduction", _REDUCTIONS, where=type(self).__name__
        )

    def _workspace(self) -> Any:
        from lowdisp.nn._layers import Workspace

        ws = self.__dict__.get("_ws")
        if ws is None:
            ws = self._ws = Workspace()
        return ws

    @staticmethod
    def _dloss(dloss: Any, where: str) -> float:
        if isinstance(dloss, float) and dloss == 1.0:
            return dloss
        return check_real(dloss, "dloss", where=where)

    def __call__(self, pred: Any, target: Any, mask: Any = None) -> tuple[float, np.ndarray]:
        value, cache = self.forward(pred, target, mask)
        return value, self.backward(cache)

    def forward(self, pred: Any, target: Any, mask: Any = None) -> tuple[float, Any]:
        raise NotImplementedError

    def backward(self, cache: Any, dloss: float = 1.0) -> np.ndarray:
        raise NotImplementedError

    def _scale(self, per: np.ndarray, m: np.ndarray | None) -> tuple[float, np.ndarray | float]:
        """Reduce per-element losses; returns (value, weight array or scalar for the gradient)."""
        if per.size == 0:
            if self.reduction == "mean":
                raise ValueError(
                    f"{type(self).__name__}: empty batch (no elements): the mean loss is "
                    f"undefined; got {per.shape} per-element losses"
                )
            return 0.0, 0.0
        if m is not None:
            per = per * m
            count = max(float(m.sum()), 1.0)
        else:
            count = float(per.size)
        if self.reduction == "sum":
            return float(per.sum()), (m if m is not None else 1.0)
        w = (m / count) if m is not None else 1.0 / count
        return float(per.sum() / count), w

    def get_config(self) -> dict[str, Any]:
        """``{"class": name, "reduction": ...}``: what rebuilds the loss (see
        :func:`lowdisp.nn.load`).

        Examples
        --------
        >>> from lowdisp.nn import MSE
        >>> MSE(reduction="sum").get_config()
        {'class': 'MSE', 'reduction': 'sum'}
        """
        return {"class": type(self).__name__, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy on logits ``(..., C)`` with integer targets ``(...)``.

    Works per step (logits ``(T, B, C)``, targets ``(T, B)``) or at the last
    step (``(B, C)`` and ``(B,)``); ``mask`` (shape of targets) weights the
    elements, and the mean is over the unmasked ones.

    Notes
    -----
    ``ℓ = logsumexp(z) − z_y``; ``∂ℓ/∂z = softmax(z) − onehot(y)``, fused and
    computed with the maximum subtracted (no overflow).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import SoftmaxCrossEntropy
    >>> value, grad = SoftmaxCrossEntropy()(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(value, 6) == round(np.log(4), 6)
    True
    """

    def forward(self, pred: Any, target: Any, mask: Any = None) -> tuple[float, Any]:
        where = "SoftmaxCrossEntropy"
        z = _pred(pred, where)
        if z.shape[-1] == 0:
            raise ValueError(f"{where}: pred must have at least one class; got shape {z.shape}")
        y = _plain(target, "target", where)
        if y.dtype.kind not in "iu":
            raise TypeError(f"{where}: target must hold integer class ids; got dtype {y.dtype}")
        if y.shape != z.shape[:-1]:
            raise ValueError(
                f"{where}: target must have shape {z.shape[:-1]} (pred without its class "
                f"axis); got {y.shape}"
            )
        C = z.shape[-1]
        if y.size and (y.min() < 0 or y.max() >= C):
            raise ValueError(
                f"{where}: target ids must be in [0, {C - 1}]; got [{y.min()}, {y.max()}]"
            )
        m = _mask(mask, y.shape, z.dtype, where)
        z2 = z.reshape(-1, C)
        y2 = y.reshape(-1)
        ws = self._workspace()
        e = np.subtract(z2, _row_max(z2)[:, None], out=ws.get("e", z2.shape, z2.dtype))
        rows = np.arange(z2.shape[0])
        picked = e[rows, y2]
        np.exp(e, out=e)
        s = e @ np.ones(C, dtype=e.dtype)  # a GEMV: faster than a short-axis sum
        per = np.log(s) - picked
        value, w = self._scale(per.reshape(y.shape), m)
        return value, (e, s, y2, rows, w, z.shape)

    def backward(self, cache: Any, dloss: float = 1.0) -> np.ndarray:
        dloss = self._dloss(dloss, "SoftmaxCrossEntropy.backward")
        e, s, y2, rows, w, shape = cache
        g = np.divide(e, s[:, None], out=self._workspace().get("g", e.shape, e.dtype))
        g[rows, y2] -= 1
        if isinstance(w, np.ndarray):
            g *= w.reshape(-1, 1)
        else:
            g *= w
        if dloss != 1.0:
            g *= dloss
        return g.reshape(shape)


class MSE(Loss):
    """Mean squared error ``mean((pred − target)²)`` over all elements.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import MSE
    >>> MSE()(np.zeros(4), np.ones(4))[0]
    1.0
    """

    def forward(self, pred: Any, target: Any, mask: Any = None) -> tuple[float, Any]:
        where = "MSE"
        p = _pred(pred, where)
        t = _real_target(target, p.shape, p.dtype, where)
        m = _mask(mask, p.shape, p.dtype, where)
        r = p - t
        value, w = self._scale(r * r, m)
        return value, (r, w)

    def backward(self, cache: Any, dloss: float = 1.0) -> np.ndarray:
        dloss = self._dloss(dloss, "MSE.backward")
        r, w = cache
        return (2 * dloss) * r * w


class SigmoidBinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits, for multi-label frames (targets in [0, 1]).

    Notes
    -----
    ``ℓ = softplus(z) − y z`` (stable form); ``∂ℓ/∂z = σ(z) − y``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import SigmoidBinaryCrossEntropy
    >>> value, grad = SigmoidBinaryCrossEntropy()(np.zeros(2), np.array([0.0, 1.0]))
    >>> round(value, 6) == round(np.log(2), 6)
    True
    """

    def forward(self, pred: Any, target: Any, mask: Any = None) -> tuple[float, Any]:
        where = "SigmoidBinaryCrossEntropy"
        z = _pred(pred, where)
        y = _real_target(target, z.shape, z.dtype, where)
        if y.size and not np.isfinite(y).all():
            raise ValueError(f"{where}: target must be finite")
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{where}: targets must be in [0, 1]")
        m = _mask(mask, z.shape, z.dtype, where)
        per = np.logaddexp(0, z) - y * z
        value, w = self._scale(per, m)
        return value, (z, y, w)

    def backward(self, cache: Any, dloss: float = 1.0) -> np.ndarray:
        from scipy.special import expit

        dloss = self._dloss(dloss, "SigmoidBinaryCrossEntropy.backward")
        z, y, w = cache
        return dloss * (expit(z) - y) * w


LOSSES = {
    "cross_entropy": SoftmaxCrossEntropy,
    "mse": MSE,
    "binary_cross_entropy": SigmoidBinaryCrossEntropy,
}


def make_loss(name: str, **kw: Any) -> Loss:
    """A loss by name: ``"cross_entropy"``, ``"mse"``, ``"binary_cross_entropy"``.

    Examples
    --------
    >>> from lowdisp.nn import make_loss
    >>> make_loss("mse")
    MSE(reduction='mean')
    """
    check_option(name, "loss", LOSSES, where="make_loss")
    bad = set(kw) - {"reduction"}
    if bad:
        raise TypeError(f"make_loss: unknown keyword(s) {sorted(bad)}; valid: 'reduction'")
    return LOSSES[name](**kw)
