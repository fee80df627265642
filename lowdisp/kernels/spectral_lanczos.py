"""Numba kernels of the batched multi-shift inverse Lanczos (private).

Arrays in, arrays out, no validation. Used by :mod:`lowdisp.spectral._pseudo`:

- :func:`upper_block_solve_planar` and :func:`lower_adjoint_block_solve_planar`
  solve the diagonal blocks of the shifted triangular systems
  ``(T - z_p I) x_p = b_p`` and ``(T - z_p I)^H x_p = b_p`` for many shifts at
  once. Data are planar (real and imaginary parts in separate C-ordered
  ``(n, P)`` arrays), so the inner loop over the shifts vectorizes with plain
  FMAs; the off-diagonal panel products are real GEMMs done by the caller.
- :func:`lanczos_recurrence` is the three-term step for every column.
- :func:`tridiagonal_top` gives, for each of ``P`` symmetric tridiagonal
  Lanczos matrices, the largest eigenvalue (bisection on Sturm counts) and
  its eigenvector (inverse iteration), which the caller turns into a
  residual bound and a Ritz vector.

``error_model="numpy"`` keeps IEEE semantics (inf/NaN instead of exceptions);
an exactly zero pivot is replaced by ``floor`` (u·max|T|).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "lanczos_recurrence",
    "lower_adjoint_block_solve_planar",
    "tridiagonal_top",
    "upper_block_solve_planar",
]


@njit(cache=True, nogil=True)
def _sturm_count(a, b, l, x):  # pragma: no cover - compiled
    """Number of eigenvalues < x of the l x l tridiagonal (diag a, off-diagonal b)."""
    count = 0
    q = a[0] - x
    if q < 0:
        count += 1
    for k in range(1, l):
        if q == 0:
            q = 1e-300
        q = a[k] - x - b[k - 1] * b[k - 1] / q
        if q < 0:
            count += 1
    return count


@njit(cache=True, nogil=True)
def _kth_from_top(a, b, l, k, lo, hi, rtol):  # pragma: no cover - compiled
    """The k-th largest eigenvalue (k = 1 is the largest) by bisection in [lo, hi]."""
    target = l - k  # the eigenvalue has exactly l - k eigenvalues below it
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if hi - lo <= rtol * max(abs(lo), abs(hi)):
            break
        if _sturm_count(a, b, l, mid) <= target:
            lo = mid
        else:
            hi = mid
    return hi


@njit(cache=True, nogil=True)
def tridiagonal_top(alpha, beta, l, rtol, theta, svec):  # pragma: no cover - compiled
    """Top eigenpair of each of ``P`` symmetric tridiagonals of order ``l``.

    ``alpha`` is ``(P, >= l)`` (diagonals), ``beta`` ``(P, >= l - 1)``
    (off-diagonals). Writes the largest eigenvalue (relative accuracy
    ``rtol``, at least 2u) to ``theta[p]`` and the unit eigenvector of the
    largest to ``svec[p, :l]``. ``theta[p]`` on entry
    is a lower bound when ``l > 1`` (the previous, interlacing, Ritz value).
    """
    P = alpha.shape[0]
    w = np.empty(l)
    c = np.empty(l)
    d = np.empty(l)
    for p in range(P):
        a = alpha[p]
        b = beta[p]
        lo = a[0]
        hi = a[0]
        for k in range(l):
            r = 0.0
            if k > 0:
                r += abs(b[k - 1])
            if k < l - 1:
                r += abs(b[k])
            lo = min(lo, a[k] - r)
            hi = max(hi, a[k] + r)
        span = max(hi - lo, 1e-300 + 1e-15 * max(abs(hi), abs(lo)))
        lo -= 1e-3 * span
        hi += 1e-3 * span
        if l > 1 and theta[p] < hi:
            # interlacing: the previous top Ritz value is below the new one
            lo = max(lo, theta[p] - 1e-12 * span)
        t1 = _kth_from_top(a, b, l, 1, lo, hi, rtol)
        theta[p] = t1
        # inverse iteration with the shift just above t1: (T - mu I) is negative
        # definite, so elimination without pivoting is stable
        mu = t1 + 2 * rtol * max(abs(t1), span) + 1e-300
        for k in range(l):
            w[k] = 1.0
        for _ in range(3):
            # LU of the tridiagonal T - mu I: c = pivots, d = multipliers
            c[0] = a[0] - mu
            for k in range(1, l):
                d[k] = b[k - 1] / c[k - 1]
                c[k] = a[k] - mu - d[k] * b[k - 1]
            for k in range(1, l):
                w[k] -= d[k] * w[k - 1]
            w[l - 1] /= c[l - 1]
            for k in range(l - 2, -1, -1):
                w[k] = (w[k] - b[k] * w[k + 1]) / c[k]
            nrm = 0.0
            for k in range(l):
                nrm += w[k] * w[k]
            nrm = np.sqrt(nrm)
            for k in range(l):
                w[k] /= nrm
        for k in range(l):
            svec[p, k] = w[k]


@njit(cache=True, nogil=True, error_model="numpy")
def lanczos_recurrence(w, q, q_old, b_old, a, b):  # pragma: no cover - compiled
    """One three-term step for every column, in place on ``w`` (n, P).

    ``w <- w - b_old q_old``, ``a = Re(qᴴw)``, ``w <- w - a q``, ``b = ‖w‖``
    (column-wise), in two passes over the block.
    """
    n, P = w.shape
    for p in range(P):
        a[p] = 0.0
        b[p] = 0.0
    for i in range(n):
        for p in range(P):
            v = w[i, p] - b_old[p] * q_old[i, p]
            w[i, p] = v
            x = q[i, p]
            a[p] += x.real * v.real + x.imag * v.imag
    for i in range(n):
        for p in range(P):
            v = w[i, p] - a[p] * q[i, p]
            w[i, p] = v
            b[p] += v.real * v.real + v.imag * v.imag
    for p in range(P):
        b[p] = np.sqrt(b[p])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _divide_row(Xr, Xi, i, dr, di, zr, zi, zsign, floor):  # pragma: no cover - compiled
    """Row ``i`` of X divided by the shifted diagonal ``(dr - zr) + i (di - zsign zi)``.

    A zero pivot (``z`` exactly on an eigenvalue) is replaced by ``floor``.
    Smith's division: no ``c² + d²``, which underflows to 0 for a pivot below
    1e-154 (it was then taken for a zero pivot and floored, a σ_min far too
    large and not flagged); a quotient that overflows gives inf, which the
    Lanczos loop flags as under the clamp.
    """
    for p in range(Xr.shape[1]):
        c = dr - zr[p]
        d = di - zsign * zi[p]
        if c == 0.0 and d == 0.0:
            c = floor
        a = Xr[i, p]
        b = Xi[i, p]
        if abs(c) >= abs(d):
            r = d / c
            t = 1.0 / (c + d * r)
            Xr[i, p] = (a + b * r) * t
            Xi[i, p] = (b - a * r) * t
        else:
            r = c / d
            t = 1.0 / (c * r + d)
            Xr[i, p] = (a * r + b) * t
            Xi[i, p] = (b * r - a) * t


@njit(cache=True, nogil=True, error_model="numpy")
def upper_block_solve_planar(Tr, Ti, s, e, zr, zi, floor, Xr, Xi):  # pragma: no cover
    """:func:`upper_block_solve` on planar data: X = Xr + i·Xi, T = Tr + i·Ti, z = zr + i·zi.

    Separate real and imaginary planes let the inner loop over the shifts
    vectorize with plain FMAs.
    """
    P = Xr.shape[1]
    for i in range(e - 1, s - 1, -1):
        for j in range(i + 1, e):
            tr = Tr[i, j]
            ti = Ti[i, j]
            for p in range(P):
                xr = Xr[j, p]
                xi = Xi[j, p]
                Xr[i, p] -= tr * xr - ti * xi
                Xi[i, p] -= tr * xi + ti * xr
        _divide_row(Xr, Xi, i, Tr[i, i], Ti[i, i], zr, zi, 1.0, floor)


@njit(cache=True, nogil=True, error_model="numpy")
def lower_adjoint_block_solve_planar(Tr, Ti, s, e, zr, zi, floor, Xr, Xi):  # pragma: no cover
    """:func:`lower_adjoint_block_solve` on planar data (entries conj(T[j, i]))."""
    P = Xr.shape[1]
    for i in range(s, e):
        for j in range(s, i):
            tr = Tr[j, i]
            ti = -Ti[j, i]
            for p in range(P):
                xr = Xr[j, p]
                xi = Xi[j, p]
                Xr[i, p] -= tr * xr - ti * xi
                Xi[i, p] -= tr * xi + ti * xr
        _divide_row(Xr, Xi, i, Tr[i, i], -Ti[i, i], zr, zi, -1.0, floor)
