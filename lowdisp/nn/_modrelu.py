"""modReLU: the maths shared by the ``ModReLU`` layer and the recurrent cells.

Real features: ``y = sign(x) relu(|x| + b)``. Complex pairs (the first half of
the features are real parts, the second half imaginary parts):
``y = z relu(|z| + b) / (|z| + eps)``. The cells' fused loops call the kernels in
:mod:`lowdisp.kernels.rnn_modrelu` with the same :data:`MODRELU_EPS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__: list[str] = []

#: Denominator guard of the complex modReLU (Arjovsky et al.'s code uses 1e-5).
MODRELU_EPS = 1e-5


def modrelu_forward(x: np.ndarray, b: np.ndarray, pairs: bool) -> tuple[np.ndarray, Any]:
    """Real or complex-pair modReLU; returns ``(y, aux)`` for :func:`modrelu_backward`."""
    if not pairs:
        a = np.abs(x) + b
        np.maximum(a, 0, out=a)
        return np.copysign(a, x), None
    n = b.shape[0]
    zr, zi = x[..., :n], x[..., n:]
    r = np.sqrt(zr * zr + zi * zi)
    s = np.maximum(r + b, 0) / (r + MODRELU_EPS)
    return x * np.concatenate([s, s], axis=-1), (r, s)


def modrelu_backward(
    x: np.ndarray, aux: Any, dy: np.ndarray, pairs: bool, b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(dx, db)`` of :func:`modrelu_forward`; ``db`` summed over leading axes."""
    lead = tuple(range(x.ndim - 1))
    if not pairs:
        # y = copysign(relu(|x| + b), x): dy/dx = [|x| + b > 0], dy/db = sign(x) [|x| + b > 0]
        active = (np.abs(x) + b) > 0
        dx = dy * active
        db = (dx * np.copysign(np.ones((), x.dtype), x)).sum(axis=lead)
        return dx, db
    n = x.shape[-1] // 2
    r, s = aux
    active = _pair_active(r, s)
    q = dy[..., :n] * x[..., :n] + dy[..., n:] * x[..., n:]
    qP = q * _pair_P(r, s, active)
    dx = dy * np.concatenate([s, s], axis=-1) + x * np.concatenate([qP, qP], axis=-1)
    db = (q * active / (r + MODRELU_EPS)).sum(axis=lead)
    return dx, db


def _pair_active(r: np.ndarray, s: np.ndarray) -> np.ndarray:
    # s > 0 exactly when r + b > 0
    return (s > 0).astype(r.dtype)


def _pair_P(r: np.ndarray, s: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``s'(r) / r`` with ``s(r) = relu(r + b)/(r + eps)``; 0 where ``r = 0``."""
    re = r + MODRELU_EPS
    ds = active / re - s / re
    return np.divide(ds, r, out=np.zeros_like(r), where=r > 0)
