"""Numba kernel of the KFAC/EKFAC factor moving averages (private).

``M[:n, :n] <- rho M[:n, :n] + s X`` in one pass over the float64 average
instead of NumPy's ``M *= rho`` then a mixed-dtype ``M[:n, :n] += X`` (two full
reads and writes of a matrix that no longer sits in cache after the batch's
SYRK, and a strided float32 -> float64 cast). ``X`` is the batch Gram matrix in
the training dtype, accumulated in float64 here. No validation.
"""

from __future__ import annotations

from numba import njit

__all__ = ["ema_update"]


@njit(cache=True, nogil=True)
def ema_update(M, X, rho, s):  # pragma: no cover - compiled
    """``M[:n, :n] = rho * M[:n, :n] + s * X`` in place, ``n = X.shape[0]``."""
    n = X.shape[0]
    for i in range(n):
        for j in range(n):
            M[i, j] = rho * M[i, j] + s * X[i, j]
