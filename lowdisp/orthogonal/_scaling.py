"""Exact power-of-two rescaling and the real Schur form of skew matrices (private).

Scaling by ``2**e`` is exact in binary floating point (barring underflow to
subnormals), so a computation done on ``X * 2**-e`` and scaled back gives
the same rounding as on ``X`` while keeping every intermediate (norms, Gram
matrices, LAPACK's internal scaling) far from overflow and underflow.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

__all__ = [
    "column_exponents",
    "ldexp",
    "max_abs",
    "pow2_exponent",
    "safe_exponent",
    "skew_schur",
]


def safe_exponent(dtype: np.dtype) -> int:
    """|exponent| of ``max|x|`` below which no rescaling is needed in ``dtype``.

    Squares of such numbers, and sums of up to ``2**40`` of them, stay far
    inside the normal range: 200 for double, 20 for single precision.
    """
    return 20 if np.finfo(dtype).bits <= 32 else 200


def max_abs(X: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``max(|Re x|, |Im x|)`` (no overflow of ``|x|`` for huge complex entries)."""
    if X.size == 0:
        shape = () if axis is None else tuple(s for i, s in enumerate(X.shape) if i != axis)
        return np.zeros(shape)
    if np.iscomplexobj(X):
        return np.maximum(np.abs(X.real).max(axis=axis), np.abs(X.imag).max(axis=axis))
    return np.abs(X).max(axis=axis)


def pow2_exponent(m: float | np.ndarray) -> np.ndarray:
    """Exponent ``e`` with ``m = f 2**e``, ``0.5 <= f < 1`` (0 for ``m == 0``)."""
    return np.frexp(np.asarray(m, dtype=np.float64))[1].astype(np.int64)


def ldexp(X: np.ndarray, e: int | np.ndarray) -> np.ndarray:
    """``X * 2**e`` exactly (complex-safe; ``e`` broadcasts against ``X``)."""
    if np.iscomplexobj(X):
        out = np.empty_like(X)
        out.real = np.ldexp(X.real, e)
        out.imag = np.ldexp(X.imag, e)
        return out
    return np.ldexp(X, e).astype(X.dtype, copy=False)


def column_exponents(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column max-abs entries of ``V`` and their power-of-two exponents."""
    cmax = max_abs(V, axis=0)
    return cmax, pow2_exponent(cmax)


def skew_schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real Schur form of a real skew-symmetric ``A``: ``(Q, s, b)``.

    ``A = Q T Q^T`` with ``T`` block diagonal: ``[[0, b_j], [-b_j, 0]]`` at
    rows/columns ``(s_j, s_j + 1)`` and zero elsewhere (rounding-level
    entries of ``T`` outside these blocks are dropped). ``A`` is rescaled by
    a power of two first, so any finite ``A`` works; the eigenvalues of
    ``A`` are ``+-i b_j`` and zeros. Computed in float64.
    """
    n = A.shape[0]
    Ad = A.astype(np.float64)
    amax = float(max_abs(Ad)) if n else 0.0
    if amax == 0.0:
        return np.eye(n), np.zeros(0, dtype=np.intp), np.zeros(0)
    e = int(pow2_exponent(amax))
    T, Q = sla.schur(np.ldexp(Ad, -e), output="real", check_finite=False)
    s = np.flatnonzero(np.diagonal(T, -1) != 0)  # first index of each 2 x 2 block
    with np.errstate(over="ignore"):  # |b| > 1.8e308 becomes inf; callers decide
        b = np.ldexp(0.5 * (T[s, s + 1] - T[s + 1, s]), e)
    return Q, s, b
