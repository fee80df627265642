"""Numba kernels for LDR-SD (private): the stable Stein scan that materializes M (small n),
and the leaf blocks and spectral contractions of the divide-and-conquer products.

``M = A M B'^T + G H^T`` with subdiagonal ``A``, ``B'`` (corners ``fa``, ``fb``)
reads ``M_ij = wA_i wB_j M_{i-1, j-1} + R_ij`` (indices mod n), where
``wA = (fa, a_0, ..., a_{n-2})`` is the entry of A in row i. Each wrapped
diagonal is a cyclic first-order recurrence whose coefficients multiply to
``alpha beta``; a first pass with zero initial value, then a correction by the
exact cycle value ``x / (1 - alpha beta)``. Only products of actual entries,
no division except by ``1 - alpha beta``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "sd_half_add",
    "sd_half_fill",
    "sd_km_contract",
    "sd_km_mirror",
    "sd_kt_contract",
    "sd_kt_contract2",
    "sd_leaf_matrix",
    "sd_leaf_shift",
    "sd_stein_scan",
]


@njit(cache=True, nogil=True)
def sd_stein_scan(wA, wB, R, ab):  # pragma: no cover - jitted
    """Overwrite ``R`` (n, n) with the solution M of ``M = A M B'^T + R``."""
    n = R.shape[0]
    for i in range(1, n):
        ai = wA[i]
        R[i, 0] += ai * wB[0] * R[i - 1, n - 1]
        for j in range(1, n):
            R[i, j] += ai * wB[j] * R[i - 1, j - 1]
    if wA[0] == 0:  # row 0 has no wrapped term: the first pass is exact
        return
    # x_d = true value at row n-1 of diagonal d; row n-1, column j has d = (n-1-j) mod n
    xt = np.empty(n, R.dtype)
    for j in range(n):
        xt[n - 1 - j] = R[n - 1, j] / (1 - ab)
    q = np.empty(n, R.dtype)
    qn = np.empty(n, R.dtype)
    for j in range(n):
        q[j] = wA[0] * wB[j]
        d = -j % n
        R[0, j] += q[j] * xt[d]
    for i in range(1, n):
        qn[0] = wA[i] * wB[0] * q[n - 1]
        for j in range(1, n):
            qn[j] = wA[i] * wB[j] * q[j - 1]
        for j in range(n):
            q[j] = qn[j]
            d = (i - j) % n
            R[i, j] += q[j] * xt[d]


@njit(cache=True, nogil=True)
def sd_leaf_matrix(V, Wend, s0, L):  # pragma: no cover - jitted
    """Leaf Krylov rows: ``L[v, k, m] = V[v, m - k] Wend[k, m]`` for ``k <= m % s0``, else 0.

    ``V`` is (nv, N), ``Wend[k, m] = w(m - k, m)`` (the product of the ``k``
    subdiagonal entries ending at row ``m``, zero across a leaf boundary),
    ``L`` is (nv, s0, N).
    """
    nv, N = V.shape
    for v in range(nv):
        for k in range(s0):
            row = L[v, k]
            x = V[v]
            w = Wend[k]
            for m in range(k):
                row[m] = 0
            for m in range(k, N):
                row[m] = x[m - k] * w[m]


@njit(cache=True, nogil=True)
def sd_kt_contract(Vh, Uh, out):  # pragma: no cover - jitted
    """``out[v, u, f] = sum_b Vh[v, b, f] Uh[u, b, f]`` (block sums of spectra)."""
    nv, nb, q = Vh.shape
    nu = Uh.shape[0]
    for u in range(nu):
        y = Uh[u, 0]
        for v in range(nv):
            x = Vh[v, 0]
            o = out[v, u]
            for f in range(q):
                o[f] = x[f] * y[f]
        for b in range(1, nb):
            y = Uh[u, b]
            for v in range(nv):
                x = Vh[v, b]
                o = out[v, u]
                for f in range(q):
                    o[f] += x[f] * y[f]


@njit(cache=True, nogil=True)
def sd_km_contract(Vh, Ch, out):  # pragma: no cover - jitted
    """``out[o, b, f] = sum_v Vh[v, b, f] Ch[v, o, f]`` (rank sums of spectra).

    Loops so that the larger of ``Vh`` and ``Ch`` is read once.
    """
    nv, nb, q = Vh.shape
    no = Ch.shape[1]
    if nv <= no:
        for o in range(no):
            for b in range(nb):
                z = out[o, b]
                x = Vh[0, b]
                y = Ch[0, o]
                for f in range(q):
                    z[f] = x[f] * y[f]
                for v in range(1, nv):
                    x = Vh[v, b]
                    y = Ch[v, o]
                    for f in range(q):
                        z[f] += x[f] * y[f]
    else:
        for b in range(nb):
            x = Vh[0, b]
            for o in range(no):
                z = out[o, b]
                y = Ch[0, o]
                for f in range(q):
                    z[f] = x[f] * y[f]
            for v in range(1, nv):
                x = Vh[v, b]
                for o in range(no):
                    z = out[o, b]
                    y = Ch[v, o]
                    for f in range(q):
                        z[f] += x[f] * y[f]


@njit(cache=True, nogil=True)
def sd_km_mirror(Uh, coef, ChT, out):  # pragma: no cover - jitted
    """``out[o, b, f] = coef[b, f] sum_v conj(Uh[v, nb - 1 - b, f]) ChT[o, v, f]``: the rank
    sums of :func:`sd_km_contract` over mirrored spectra ``conj(Uh[v, nb - 1 - b]) coef[b]``
    without forming them. ``ChT`` is the coefficient spectra as (no, nv, q), the layout
    the vjp has them in (C-contiguous: 4% faster than a transposed view)."""
    nv, nb, q = Uh.shape
    no = ChT.shape[0]
    for b in range(nb):
        c = coef[b]
        for o in range(no):
            z = out[o, b]
            x = Uh[0, nb - 1 - b]
            y = ChT[o, 0]
            for f in range(q):
                z[f] = x[f].conjugate() * y[f]
            for v in range(1, nv):
                x = Uh[v, nb - 1 - b]
                y = ChT[o, v]
                for f in range(q):
                    z[f] += x[f].conjugate() * y[f]
            for f in range(q):
                z[f] *= c[f]


@njit(cache=True, nogil=True)
def sd_leaf_shift(Z, Wend, s0, Y):  # pragma: no cover - jitted
    """``Y[o, m] = sum_{k <= m % s0} Wend[k, m] Z[k, o, m - k]``; ``Z`` is (s0, no, N)."""
    no, N = Y.shape
    for o in range(no):
        for m in range(N):
            p = m % s0
            acc = Z[0, o, m] * Wend[0, m]
            for k in range(1, p + 1):
                acc += Wend[k, m] * Z[k, o, m - k]
            Y[o, m] = acc


@njit(cache=True, nogil=True)
def sd_kt_contract2(V1, U1, V2, U2, out):  # pragma: no cover - jitted
    """``out[v, u, f] = V1[v, f] U1[u, f] + V2[v, f] U2[u, f]`` (a level of one block plus
    the corner term, in one pass over the output)."""
    nv, q = V1.shape
    nu = U1.shape[0]
    for u in range(nu):
        y1 = U1[u]
        y2 = U2[u]
        for v in range(nv):
            x1 = V1[v]
            x2 = V2[v]
            o = out[v, u]
            for f in range(q):
                o[f] = x1[f] * y1[f] + x2[f] * y2[f]


@njit(cache=True, nogil=True)
def sd_half_fill(U, beta, buf):  # pragma: no cover - jitted
    """``buf[u, b, :h] = U[u, b, h:] beta[b]``, ``buf[u, b, h:] = 0``: the weighted second
    halves of the blocks, zero padded (``U``, ``buf`` (nu, nb, s); ``beta`` (nb, h))."""
    nu, nb, s = buf.shape
    h = s // 2
    for u in range(nu):
        for b in range(nb):
            x = U[u, b]
            w = beta[b]
            z = buf[u, b]
            for t in range(h):
                z[t] = x[h + t] * w[t]
            for t in range(h, s):
                z[t] = 0


@njit(cache=True, nogil=True)
def sd_half_add(R, beta, Y):  # pragma: no cover - jitted
    """``Y[o, b, h:] += R[o, b, h:] beta[b]`` (``R``, ``Y`` (no, nb, s); ``beta`` (nb, h))."""
    no, nb, s = Y.shape
    h = s // 2
    for o in range(no):
        for b in range(nb):
            x = R[o, b]
            w = beta[b]
            z = Y[o, b]
            for t in range(h):
                z[h + t] += x[h + t] * w[t]
