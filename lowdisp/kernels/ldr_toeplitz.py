"""Numba kernels for the Toeplitz-like FFT engine: the fused unpack of the real
odd DFT and the frequency-domain rank sum (private; arrays in, outputs preallocated).

The odd DFT of a real ``x`` (length n, even) is carried by the half-length
complex FFT of ``z_j = (x_j - i x_{j+n/2}) tw_j``, ``tw_j = exp(-i pi j / n)``
(packed with NumPy once per column block; unpacked here r times per block).
"""

from __future__ import annotations

from numba import njit

__all__ = [
    "cols_to_rows",
    "odd_pack_cols",
    "odd_unpack",
    "odd_unpack_cols",
    "rows_to_cols",
    "spec_mac",
    "spec_mul",
]


@njit(cache=True, nogil=True)
def odd_unpack(z, ctw, u):  # pragma: no cover - jitted
    """``u[c, :h] = Re(z ctw)``, ``u[c, h:] = -Im(z ctw)`` (inverse of ``odd_pack``)."""
    cb, h = z.shape
    for c in range(cb):
        for j in range(h):
            w = z[c, j] * ctw[j]
            u[c, j] = w.real
            u[c, j + h] = -w.imag


@njit(cache=True, nogil=True)
def spec_mac(acc, S, Q):  # pragma: no cover - jitted
    """``acc += S * Q`` (Q broadcast over the rows), in one pass."""
    cb, nb = S.shape
    for c in range(cb):
        for q in range(nb):
            acc[c, q] += S[c, q] * Q[q]


@njit(cache=True, nogil=True)
def cols_to_rows(X, j0, out):  # pragma: no cover - jitted
    """``out[c, j] = X[j, j0 + c]`` for the ``cb = out.shape[0]`` columns from ``j0``."""
    cb, n = out.shape
    for j in range(n):
        for c in range(cb):
            out[c, j] = X[j, j0 + c]


@njit(cache=True, nogil=True)
def rows_to_cols(y, Y, j0):  # pragma: no cover - jitted
    """``Y[j, j0 + c] = y[c, j]`` (the inverse of :func:`cols_to_rows`)."""
    cb, n = y.shape
    for j in range(n):
        for c in range(cb):
            Y[j, j0 + c] = y[c, j]


@njit(cache=True, nogil=True)
def odd_pack_cols(X, j0, tw, z):  # pragma: no cover - jitted
    """``z[c, j] = (X[j, j0 + c] - i X[j + h, j0 + c]) tw[j]``: the packed input of the
    odd DFT, read straight from the columns of ``X`` (n, k)."""
    cb, h = z.shape
    for j in range(h):
        t = tw[j]
        for c in range(cb):
            z[c, j] = complex(X[j, j0 + c], -X[j + h, j0 + c]) * t


@njit(cache=True, nogil=True)
def odd_unpack_cols(z, ctw, Y, j0):  # pragma: no cover - jitted
    """``Y[j, j0 + c] = Re(z[c, j] ctw[j])``, ``Y[j + h, j0 + c] = -Im(z[c, j] ctw[j])``:
    :func:`odd_unpack` written straight into the columns of ``Y`` (n, k)."""
    cb, h = z.shape
    for j in range(h):
        t = ctw[j]
        for c in range(cb):
            w = z[c, j] * t
            Y[j, j0 + c] = w.real
            Y[j + h, j0 + c] = -w.imag


@njit(cache=True, nogil=True)
def spec_mul(S, P, out):  # pragma: no cover - jitted
    """``out = S * P`` (P broadcast over the rows)."""
    cb, nb = S.shape
    for c in range(cb):
        for q in range(nb):
            out[c, q] = S[c, q] * P[q]
