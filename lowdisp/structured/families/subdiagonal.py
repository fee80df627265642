"""The LDR-SD family: learnable subdiagonal operators with corners (Thomas et al. 2018).

Stein ``(A, B'^T)``, ``A = Subdiagonal(a, fa)``, ``B' = Subdiagonal(b, fb)``:
``M = (1 - alpha beta)^{-1} sum_i K(A, g_i) K(B', h_i)^T`` with
``alpha = fa prod(a)``, ``beta = fb prod(b)``.

The engine functions :func:`subdiag_matmat`, :func:`subdiag_rmatmat` and
:func:`subdiag_vjp` (arrays in, arrays out, no validation) come first, the
family class after them. Divide-and-conquer Krylov products,
``O((b + r) n log^2 n + b r n log n)``, stable (only products of actual
subdiagonal entries are formed, never their quotients); for n <= 2048 and
enough columns, ``M`` itself by the stable Stein scan and one GEMM.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft

from lowdisp._validation import prod_pow2
from lowdisp.structured._common import (
    complex_data_only,
    krylov_sum_dense,
    prod_except,
    py_scalar,
    randn,
    real_params_complex_data,
)
from lowdisp.structured._fft import Fft
from lowdisp.structured._operators import Subdiagonal
from lowdisp.structured.families._base import LDRFamily, is_op

__all__ = ["SubdiagonalFamily", "subdiag_matmat", "subdiag_rmatmat", "subdiag_vjp"]

# --------------------------------------------------------------------------
# LDR-SD: divide-and-conquer Krylov products for a subdiagonal operator A
# (entries a_0..a_{n-2}, corner fa at (0, n-1)). The weight of the path
# j -> m (m >= j) is w(j, m) = a_j ... a_{m-1}; only such products are formed.
# --------------------------------------------------------------------------

_SD_LEAF = 32


class _SDGeometry:
    """Padded length N (a power of two), leaf weights and per-level products for one A."""

    def __init__(self, a: np.ndarray, fa: complex, n: int, dtype: np.dtype) -> None:
        self.n, self.dtype = n, np.dtype(dtype)
        N = 1
        while n > N:
            N *= 2
        self.N = N
        self.s0 = min(_SD_LEAF, N)
        ap = np.zeros(N, dtype)
        ap[: n - 1] = a
        self.ap = ap
        self.fa = fa
        # leaf weights W[k, j] = w(j, j + k) for j, j + k in the same leaf
        s0 = self.s0
        W = np.zeros((s0, N), dtype)
        W[0] = 1
        pos = np.arange(N) % s0
        for k in range(1, s0):
            W[k, : N - k] = W[k - 1, : N - k] * ap[k - 1 : N - 1]
            W[k, pos + k >= s0] = 0
        self.W = W
        self.levels = []
        s = 2 * s0
        while s <= N:
            h, nb = s // 2, N // s
            blk = ap.reshape(nb, s)
            alpha = np.cumprod(blk[:, :h][:, ::-1], axis=1)[:, ::-1]  # w(j, mid)
            beta = np.ones((nb, h), dtype)
            if h > 1:
                beta[:, 1:] = np.cumprod(blk[:, h : s - 1], axis=1)  # w(mid, m)
            self.levels.append((s, h, nb, alpha, beta))
            s *= 2
        if fa != 0:
            # corner paths j -> n-1 -> 0 -> m: fa * w(j, n-1) * w(0, m)
            suf = np.ones(n, dtype)
            if n > 1:
                suf[:-1] = np.cumprod(a[::-1])[::-1]
            self.calpha = fa * suf
            pre = np.ones(n, dtype)
            if n > 1:
                pre[1:] = np.cumprod(a)
            self.cbeta = pre
            self.cL = int(sfft.next_fast_len(2 * n, real=self.dtype.kind != "c"))


def _sd_kt(geo: _SDGeometry, V: np.ndarray, U: np.ndarray) -> np.ndarray:
    """T[k, v, u] = (A^k V[:, v])^T U[:, u] for k < n: the Krylov transpose multiply.

    ``V`` is (n, nv), ``U`` is (n, nu); returns (n, nv, nu). Column layouts
    throughout, FFTs along axis 0, block sums as batched GEMMs over frequencies.
    """
    n, N, s0 = geo.n, geo.N, geo.s0
    dtype = np.result_type(geo.dtype, V, U)
    ft = Fft(np.dtype(dtype).kind == "c")
    nu, nv = U.shape[1], V.shape[1]
    Up = np.zeros((N, nu), dtype)
    Up[:n] = U
    Vp = np.zeros((N, nv), dtype)
    Vp[:n] = V
    T = np.zeros((N, nv, nu), dtype)
    for k in range(s0):
        T[k] = (Vp[: N - k] * geo.W[k, : N - k, None]).T @ Up[k:]
    for s, h, nb, alpha, beta in geo.levels:
        ub = np.zeros((s, nb, nu), dtype)
        np.multiply(Up.reshape(nb, s, nu)[:, h:].transpose(1, 0, 2), beta.T[:, :, None], out=ub[h:])
        vb = np.zeros((s, nb, nv), dtype)
        np.multiply(
            Vp.reshape(nb, s, nv)[:, :h].transpose(1, 0, 2), alpha.T[:, :, None], out=vb[:h]
        )
        Uh = ft.fwd(ub)  # (q, nb, nu)
        Vh = ft.rev(ft.fwd(vb))  # (q, nb, nv)
        Th = np.matmul(Vh.transpose(0, 2, 1), Uh)  # (q, nv, nu)
        T[:s] += ft.inv(Th, s)
    T = T[:n]
    if geo.fa != 0:
        L = geo.cL
        ub = np.zeros((L, nu), dtype)
        np.multiply(U, geo.cbeta[:, None], out=ub[n : 2 * n])
        Uh = ft.fwd(ub)
        Vh = ft.rev(ft.fwd(V * geo.calpha[:, None], L))
        for v in range(nv):
            T[:, v, :] += ft.inv(Uh * Vh[:, v, None], L)[:n]
    return T


def _sd_km(geo: _SDGeometry, V: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Y[:, o] = sum_v K(A, V[:, v]) C[:, v, o]: the Krylov multiply.

    ``V`` is (n, nv), ``C`` is (n, nv, no); returns (n, no).
    """
    n, N, s0 = geo.n, geo.N, geo.s0
    dtype = np.result_type(geo.dtype, V, C)
    ft = Fft(np.dtype(dtype).kind == "c")
    nv, no = C.shape[1], C.shape[2]
    Vp = np.zeros((N, nv), dtype)
    Vp[:n] = V
    if n < N:
        Cp = np.zeros((N, nv, no), dtype)
        Cp[:n] = C
    else:
        Cp = np.asarray(C, dtype)
    Y = np.zeros((N, no), dtype)
    for k in range(s0):
        Y[k:] += (Vp[: N - k] * geo.W[k, : N - k, None]) @ Cp[k]
    for s, h, nb, alpha, beta in geo.levels:
        vb = np.zeros((s, nb, nv), dtype)
        np.multiply(
            Vp.reshape(nb, s, nv)[:, :h].transpose(1, 0, 2), alpha.T[:, :, None], out=vb[:h]
        )
        Vh = ft.fwd(vb)  # (q, nb, nv)
        Ch = ft.fwd(Cp[:s])  # (q, nv, no)
        P = ft.inv(np.matmul(Vh, Ch), s)  # (s, nb, no)
        Y3 = Y.reshape(nb, s, no)
        Y3[:, h:] += P[h:].transpose(1, 0, 2) * beta[:, :, None]
    Y = Y[:n]
    if geo.fa != 0:
        L = geo.cL
        Vh = ft.fwd(V * geo.calpha[:, None], L)  # (q, nv)
        Yh = np.zeros((Vh.shape[0], no), Vh.dtype)
        for v in range(nv):
            Yh += Vh[:, v, None] * ft.fwd(C[:, v, :], L)
        Y += ft.inv(Yh, L)[n : 2 * n] * geo.cbeta[:, None]
    return Y


def _alpha_beta(a: np.ndarray, fa: complex, b: np.ndarray, fb: complex) -> complex:
    """``alpha beta = fa prod(a) fb prod(b)`` without overflow of the partial products
    (``prod(a)`` alone overflows for n ~ 1100 subdiagonal entries of 2); an
    ``alpha beta`` beyond the range becomes inf or 0, its correct limit."""
    if fa == 0 or fb == 0:
        return 0.0
    ma, ea = prod_pow2(a)
    mb, eb = prod_pow2(b)
    m = complex(fa) * complex(fb) * ma * mb
    with np.errstate(over="ignore", under="ignore"):
        re, im = np.ldexp(m.real, ea + eb), np.ldexp(m.imag, ea + eb)
    return py_scalar(complex(re, im))


def _sd_scale(a: np.ndarray, fa: complex, b: np.ndarray, fb: complex) -> complex:
    """1 / (1 - alpha beta) with alpha = fa prod(a), beta = fb prod(b)."""
    if fa == 0 or fb == 0:
        return 1.0
    ab = _alpha_beta(a, fa, b, fb)
    if not np.isfinite(ab):
        return 0.0
    return py_scalar(1.0 / (1.0 - ab))


def _sd_dtype(*arrays: Any) -> np.dtype:
    return np.result_type(*arrays)


#: LDR-SD: materializing M by the stable Stein scan (O(r n^2), Numba) and one
#: GEMM beats the divide-and-conquer products for n <= 2048 when the batch is
#: at least n/32 (products) or n/16 (vjp, which also scans the adjoint).
#: Measured, float64, one thread: n = 1024, batch 64: 5 ms against 13 ms;
#: n = 2048, batch 64: 33 ms against 48 ms (docs/performance.md).
_SD_DENSE_MAX_N = 2048


def _sd_use_dense(n: int, k: int, vjp: bool = False) -> bool:
    return n <= _SD_DENSE_MAX_N and k >= max(8, n // (16 if vjp else 32))


def _sd_weights(a: np.ndarray, fa: complex, dtype: np.dtype) -> np.ndarray:
    """Row weights of a subdiagonal operator: (fa, a_0, ..., a_{n-2})."""
    w = np.empty(a.shape[0] + 1, dtype)
    w[0] = fa
    w[1:] = a
    return w


def _sd_dense(a, fa, b, fb, G, H, dtype):
    """M itself (n x n) by the stable Stein scan (Numba), O(r n^2)."""
    from lowdisp.kernels.ldr_subdiag import sd_stein_scan

    dtype = np.dtype(dtype)
    wA, wB = _sd_weights(a, fa, dtype), _sd_weights(b, fb, dtype)
    R = np.ascontiguousarray(np.asarray(G, dtype) @ np.asarray(H, dtype).T)
    ab = dtype.type(fa * np.prod(a) * fb * np.prod(b)) if fa != 0 and fb != 0 else dtype.type(0)
    sd_stein_scan(wA, wB, R, ab)
    return R, wA, wB, ab


def _sd_dense_vjp(a, fa, b, fb, G, H, X, dY, dtype):
    """Bilinear vjp through the materialized M and the adjoint scan (small n)."""
    from lowdisp.kernels.ldr_subdiag import sd_stein_scan

    M, wA, wB, ab = _sd_dense(a, fa, b, fb, G, H, dtype)
    # Lambda = A^T Lambda B' + W, W = dY X^T: the same scan on J Lambda J
    L = np.ascontiguousarray((dY @ X.T)[::-1, ::-1])
    sd_stein_scan(np.roll(wA[::-1], 1), np.roll(wB[::-1], 1), L, ab)
    Lam = np.ascontiguousarray(L[::-1, ::-1])
    # da_l = sum_j Lam[l+1, j] wB_j M[l, j-1], db_l = sum_i Lam[i, l+1] wA_i M[i-1, l]
    # (indices mod n); both share Lam[1:, 1:] * M[:-1, :-1]
    n = M.shape[0]
    P = Lam[1:, 1:] * M[:-1, :-1]
    da = P @ wB[1:] + Lam[1:, 0] * (wB[0] * M[:-1, n - 1])
    db = wA[1:] @ P + Lam[0, 1:] * (wA[0] * M[n - 1, :-1])
    return {"G": Lam @ H, "H": Lam.T @ G, "a": da, "b": db, "X": M.T @ dY}


def _sd_forward(a, fa, b, fb, G, H, X):
    """Bilinear pieces of M X: (geoA, geoB, c = K(B,h)^T X blocks, scale)."""
    n = H.shape[0]
    fa, fb = py_scalar(fa), py_scalar(fb)
    dtype = _sd_dtype(a, b, G, H, X, fa, fb)
    geoA = _SDGeometry(np.asarray(a, dtype), fa, G.shape[0], dtype)
    geoB = _SDGeometry(np.asarray(b, dtype), fb, n, dtype)
    c = _sd_kt(geoB, H, X)  # (n, r, k)
    return dtype, geoA, geoB, c, _sd_scale(a, fa, b, fb)


def _sd_tmatmat(a, fa, b, fb, G, H, Y):
    if _sd_use_dense(H.shape[0], Y.shape[1]):
        dtype = _sd_dtype(a, b, G, H, Y, py_scalar(fa), py_scalar(fb))
        M = _sd_dense(a, py_scalar(fa), b, py_scalar(fb), G, H, dtype)[0]
        return M.T @ np.asarray(Y, dtype)
    _, geoB, _, z, scale = _sd_forward(b, fb, a, fa, H, G, Y)
    return _sd_km(geoB, H, z) * scale


def subdiag_matmat(
    a: np.ndarray,
    fa: complex,
    b: np.ndarray,
    fb: complex,
    G: np.ndarray,
    H: np.ndarray,
    X: np.ndarray,
) -> np.ndarray:
    """``M @ X`` for ``M = (1 - alpha beta)^{-1} sum_i K(A, g_i) K(B, h_i)^T`` (LDR-SD).

    ``A`` has subdiagonal ``a`` (n-1,) and corner ``fa`` at (0, n-1); ``B``
    likewise with ``b``, ``fb``; ``alpha = fa prod(a)``, ``beta = fb prod(b)``.

    Notes
    -----
    Two divide-and-conquer Krylov products (Thomas et al. 2018):
    ``C = K(B, H)^T X`` (the transpose multiply), then
    ``Y = sum_i K(A, g_i) C_i``. Indices are split in halves recursively; a
    pair (j in the first half, m in the second) has path weight
    ``w(j, m) = a_j ... a_{m-1} = alpha_j beta_m`` with ``alpha`` the suffix
    products of the first half and ``beta`` the prefix products of the
    second, so every cross term is one FFT correlation (or convolution) of
    the block length, the blocks summed in the frequency domain. Leaves of
    32 are done with weights ``w(j, j + k)`` and GEMMs; corner paths (through
    ``fa``) are one more correlation of length ``2n``. Only products of
    actual entries are formed, never quotients (the cumulative-product
    shortcut ``diag(P) L(v / P)`` loses all digits once ``P`` spans many
    decades). Cost ``O((k + r) n log^2 n + k r n log n)``.

    For ``n <= 2048`` with at least ``max(8, n/32)`` columns, ``M`` itself is
    formed instead by the stable Stein scan ``M_ij = wA_i wB_j M_{i-1,j-1} +
    (G H^T)_ij`` (Numba; wrapped diagonals closed exactly through
    ``1 - alpha beta``) and applied by one GEMM: faster there (5 ms against
    13 ms at n = 1024, batch 64).

    References
    ----------
    A. T. Thomas, A. Gu, T. Dao, A. Rudra, C. Ré, "Learning compressed
    transforms with low displacement rank", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.subdiagonal import subdiag_matmat
    >>> n = 4
    >>> a = b = np.ones(n - 1)  # A = B = Z_0: M = sum_i L(g_i) L(h_i)^T
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]  # M = L(1) = lower triangle of ones
    >>> subdiag_matmat(a, 0.0, b, 0.0, G, H, np.eye(n))[:, 0]
    array([1., 1., 1., 1.])
    """
    if _sd_use_dense(H.shape[0], X.shape[1]):
        dtype = _sd_dtype(a, b, G, H, X, py_scalar(fa), py_scalar(fb))
        M = _sd_dense(a, py_scalar(fa), b, py_scalar(fb), G, H, dtype)[0]
        return M @ np.asarray(X, dtype)
    dtype, geoA, _, c, scale = _sd_forward(a, fa, b, fb, G, H, X)
    return (_sd_km(geoA, G, c) * scale).astype(dtype, copy=False)


def subdiag_rmatmat(
    a: np.ndarray,
    fa: complex,
    b: np.ndarray,
    fb: complex,
    G: np.ndarray,
    H: np.ndarray,
    Y: np.ndarray,
) -> np.ndarray:
    """``M^H @ Y`` for the LDR-SD matrix (same algorithm with the roles of A and B swapped).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.subdiagonal import subdiag_rmatmat
    >>> n = 4
    >>> a = np.ones(n - 1)
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]
    >>> subdiag_rmatmat(a, 0.0, a, 0.0, G, H, np.eye(n))[0]
    array([1., 1., 1., 1.])
    """
    if any(np.iscomplexobj(x) for x in (a, b, G, H, fa, fb)):
        c = np.conj
        return _sd_tmatmat(c(a), c(fa), c(b), c(fb), c(G), c(H), Y)
    return _sd_tmatmat(a, fa, b, fb, G, H, Y)


def _sd_param_grad(
    geo: _SDGeometry,
    a: np.ndarray,
    D: np.ndarray,
    Y0: np.ndarray,
    V: np.ndarray,
    dV: np.ndarray,
    Z: np.ndarray,
    C: np.ndarray,
) -> np.ndarray:
    """d/da of l0 = <D, Y0>, Y0 = KM(a, V, C) (bilinear, rows = outputs).

    Diagonal similarity ``A -> S A S^{-1}`` with ``S = I + eps E_l``
    (``E_l`` = indicator of indices > l) scales ``a_l`` by ``1 + eps`` and the
    corner by ``1/(1 + eps)``; since ``K(S A S^{-1}, v) = S K(A, S^{-1} v)``,
    ``a_l dl0/da_l - T_c = sum_{m > l} (D * Y0)_m - sum_{j > l} (V * dV)_j``
    with ``T_c = fa dl0/dfa``; scaling all of A by ``1 + eps`` gives
    ``sum_l a_l dl0/da_l + T_c = sum k Z_k C_k``. Entries with ``|a_l|``
    below 1e-3 of the largest use the exact secant (l0 is affine in each
    ``a_l``: paths shorter than n cross each edge at most once).
    """
    n = geo.n
    if n == 1:
        return np.zeros(0, geo.dtype)
    p = np.einsum("mo,mo->m", D, Y0) - np.einsum("mv,mv->m", V, dV)
    sigma = np.cumsum(p[::-1])[::-1][1:]  # sigma_l = sum_{m > l} p_m, l = 0..n-2
    if geo.fa != 0:
        kappa = np.einsum("kvo,kvo,k->", Z, C, np.arange(n, dtype=geo.dtype.type))
        tc = (kappa - sigma.sum()) / n
    else:
        tc = 0.0
    T = sigma + tc
    amax = np.max(np.abs(a)) if a.size else 0.0
    small = np.abs(a) < 1e-3 * amax if amax > 0 else np.ones(a.shape, bool)
    grad = np.empty_like(T)
    big = ~small
    grad[big] = T[big] / a[big]
    if np.any(small):
        l0 = np.vdot(np.conj(D), Y0) if np.iscomplexobj(D) else np.sum(D * Y0)
        for l in np.flatnonzero(small):
            a2 = np.array(a, copy=True)
            a2[l] += 1
            g2 = _SDGeometry(a2, geo.fa, n, geo.dtype)
            Y2 = _sd_km(g2, V, C)
            grad[l] = np.sum(D * Y2) - l0
    return grad


def subdiag_vjp(
    a: np.ndarray,
    fa: complex,
    b: np.ndarray,
    fb: complex,
    G: np.ndarray,
    H: np.ndarray,
    X: np.ndarray,
    dY: np.ndarray,
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, a, b, X`` of ``L = Re sum(conj(dY) * (M X))`` for the LDR-SD M.

    ``dX = M^H dY``; ``dg_i = s sum_b K(A^T, dy_b) c_{b,i}`` and
    ``dh_i = s sum_b K(B^T, x_b) (K(A, g_i)^T dy_b)``, Krylov products with the
    superdiagonal ``A^T = J Ã J`` (``Ã`` = reversed subdiagonal, same corner),
    so the same divide-and-conquer kernels apply after flips; ``da`` and
    ``db`` by the diagonal-similarity identity (see ``_sd_param_grad``) plus
    the derivative of ``s = 1/(1 - alpha beta)``. Same order as the product
    (about 3x its time). Corners are fixed scalars.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.subdiagonal import subdiag_vjp
    >>> n = 4
    >>> a = np.ones(n - 1)
    >>> g = subdiag_vjp(a, 0.0, a, 0.0, np.ones((n, 1)), np.ones((n, 1)), np.ones((n, 2)),
    ...                 np.ones((n, 2)))
    >>> sorted(g), g["a"].shape
    (['G', 'H', 'X', 'a', 'b'], (3,))
    """
    if complex_data_only((a, b, G, H, fa, fb), X, dY):
        return real_params_complex_data(lambda x, d: subdiag_vjp(a, fa, b, fb, G, H, x, d), X, dY)

    cplx = any(np.iscomplexobj(x) for x in (a, b, G, H, X, dY, fa, fb))
    if cplx:
        dtype = np.result_type(a, b, G, H, X, dY, np.complex64)
        a, b, G, H, X = (np.asarray(x, dtype) for x in (a, b, G, H, X))
        dY = np.conj(np.asarray(dY, dtype))
    if _sd_use_dense(H.shape[0], X.shape[1], vjp=True):
        dtype = _sd_dtype(a, b, G, H, X, dY, py_scalar(fa), py_scalar(fb))
        a, b, G, H, X, dY = (np.asarray(x, dtype) for x in (a, b, G, H, X, dY))
        out = _sd_dense_vjp(a, py_scalar(fa), b, py_scalar(fb), G, H, X, dY, dtype)
        out = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}
        return {k: np.conj(v) for k, v in out.items()} if cplx else out
    dtype, geoA, geoB, c, scale = _sd_forward(a, fa, b, fb, G, H, X)
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    dY = np.asarray(dY, dtype)
    Y0 = _sd_km(geoA, G, c)  # (m, k), M X = scale * Y0
    z = _sd_kt(geoA, G, dY)  # (m, r, k): K(A, g_i)^T dy_b
    X0 = _sd_km(geoB, H, z)  # (n, k): M^T dY = scale * X0
    ra = _SDGeometry(a[::-1], fa, geoA.n, dtype)
    rb = _SDGeometry(b[::-1], fb, geoB.n, dtype)
    dG0 = _sd_km(ra, dY[::-1], c.transpose(0, 2, 1))[::-1]  # (m, r)
    dH0 = _sd_km(rb, X[::-1], z.transpose(0, 2, 1))[::-1]  # (n, r)
    da = _sd_param_grad(geoA, a, dY, Y0, G, dG0, z, c) * scale
    db = _sd_param_grad(geoB, b, X, X0, H, dH0, c, z) * scale
    if scale != 1.0:
        # s = 1/(1 - alpha beta): ds/da_l = s^2 beta fa prod_{p != l} a_p
        l0 = np.sum(dY * Y0)
        alpha_b, beta_b = fa * np.prod(a), fb * np.prod(b)
        da = da + l0 * scale**2 * beta_b * fa * prod_except(a)
        db = db + l0 * scale**2 * alpha_b * fb * prod_except(b)
    out = {"G": dG0 * scale, "H": dH0 * scale, "a": da, "b": db, "X": X0 * scale}
    out = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}
    if cplx:
        out = {k: np.conj(v) for k, v in out.items()}
    return out


# --------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------


class SubdiagonalFamily(LDRFamily):
    r"""LDR-SD: Stein ``(Subdiagonal(a, fa), Subdiagonal(b, fb).T)``, ``alpha beta != 1``.

    :math:`(1-\alpha\beta) M = \sum_i K(A, g_i) K(B', h_i)^T`; ``vjp`` gives the
    gradients of ``a`` and ``b`` as ``"A"`` and ``"B"``. Solve: dense-LU fallback.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import SubdiagonalFamily
    >>> A = ld.Subdiagonal(np.ones(3))
    >>> SubdiagonalFamily.recognises(A, A.T, "stein")
    True
    """

    name = "subdiagonal"
    pairs = "subdiagonal: (Subdiagonal(a, fa), Subdiagonal(b, fb).T) stein"
    inverse_kinds = ()

    @classmethod
    def recognises(cls, A, B, kind):
        return kind == "stein" and is_op(A, Subdiagonal) and is_op(B, Subdiagonal, True)

    @classmethod
    def singular_reason(cls, A, B, kind):
        ab = _alpha_beta(A.s, A.f, B.base.s, B.base.f)  # no overflow of prod(s)
        if abs(1 - ab) <= 64 * np.finfo(float).eps:
            return (
                f"A^n = alpha I and B^n = beta I with alpha * beta = {ab:.6g} == 1, "
                "so eigenvalues of A and B multiply to 1; the Stein map M - A M B needs "
                "alpha * beta != 1 (change a corner fa or fb)"
            )
        return None

    @classmethod
    def example(cls, rng, n, r, dtype):
        a = 1 + 0.1 * randn(rng, (n - 1,), dtype)
        b = 1 + 0.1 * randn(rng, (n - 1,), dtype)
        G, H = randn(rng, (n, r), dtype), randn(rng, (n, r), dtype)
        return Subdiagonal(a, 0.5), Subdiagonal(b, -0.5).T, G, H, "stein"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A, B, G, H, kind)
        self.args = (A.s, A.f, B.base.s, B.base.f)

    def matmat(self, X):
        return subdiag_matmat(*self.args, self.G, self.H, X)

    def rmatmat(self, Y):
        return subdiag_rmatmat(*self.args, self.G, self.H, Y)

    def toarray(self):
        return krylov_sum_dense(self.A, self.B.base, self.G, self.H, _sd_scale(*self.args))

    def vjp(self, X, dY):
        d = subdiag_vjp(*self.args, self.G, self.H, X, dY)
        return {"G": d["G"], "H": d["H"], "A": d["a"], "B": d["b"], "X": d["X"]}
