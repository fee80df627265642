"""Numba kernels of the optimizers' element-wise updates (private).

One pass over the arrays instead of the three or four NumPy ufunc calls (each
a full read and write of a weight-sized array, and a temporary) of
``v *= mu; v += g; p -= lr * v``. Flat contiguous arrays of one dtype in,
updated in place, no validation. The scalars arrive in the arrays' dtype and
there is no ``fastmath`` (no FMA contraction), so every entry is rounded
exactly as the NumPy expressions round it.
"""

from __future__ import annotations

from numba import njit

__all__ = ["sgd_momentum_update"]


@njit(cache=True, nogil=True)
def sgd_momentum_update(p, v, g, lr, mu):  # pragma: no cover - compiled
    """``v <- mu v + g``, then ``p <- p - lr v`` (heavy-ball momentum, PyTorch's form)."""
    for i in range(p.shape[0]):
        vi = mu * v[i] + g[i]
        v[i] = vi
        p[i] = p[i] - lr * vi
