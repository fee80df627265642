"""The LDR-SD family: learnable subdiagonal operators with corners (Thomas et al. 2018).

Stein ``(A, B'^T)``, ``A = Subdiagonal(a, fa)``, ``B' = Subdiagonal(b, fb)``:
``M = (1 - alpha beta)^{-1} sum_i K(A, g_i) K(B', h_i)^T`` with
``alpha = fa prod(a)``, ``beta = fb prod(b)``.

The engine functions :func:`subdiag_matmat`, :func:`subdiag_rmatmat` and
:func:`subdiag_vjp` (arrays in, arrays out, no validation) come first, the
family class after them. Divide-and-conquer Krylov products,
``O((b + r) n log^2 n + b r n log n)``, stable (only products of actual
subdiagonal entries are formed, never their quotients): every level is one
batched real FFT over its blocks, leaves are GEMMs, the corner rides on the
top level's transform; for n <= 1024 and enough columns, ``M`` itself by the
stable Stein scan and one GEMM.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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
from lowdisp.structured._fft import WORKERS, irfft_last, rfft_last
from lowdisp.structured._operators import Subdiagonal
from lowdisp.structured.families._base import LDRFamily, is_op

__all__ = ["SubdiagonalFamily", "subdiag_matmat", "subdiag_rmatmat", "subdiag_vjp"]

# --------------------------------------------------------------------------
# LDR-SD: divide-and-conquer Krylov products for a subdiagonal operator A
# (entries a_0..a_{n-2}, corner fa at (0, n-1)). The weight of the path
# j -> m (m >= j) is w(j, m) = a_j ... a_{m-1}; only such products are formed.
# Layout: vectors are rows, (count, N) with N = 2^p >= n, transforms along the
# last (contiguous) axis.
# --------------------------------------------------------------------------

_SD_LEAF = 32


class _SDPlan:
    """Divide-and-conquer geometry of one subdiagonal operator ``A`` (entries ``a``,
    corner ``fa``) padded to ``N = 2^p >= n``.

    Leaves of ``s0 = 32``: ``We[k, m] = w(m - k, m)`` for ``m - k`` in the leaf
    of ``m``. Level ``s`` (blocks of ``s``, halves of ``h``): ``alpha = w(j, mid)``
    on the first half of each block and ``beta = w(mid, m)`` on the second,
    so that a cross pair weighs ``w(j, m) = alpha_j beta_m``.

    Corner: a path ``j -> n-1 -> 0 -> m`` (``m < j``) weighs
    ``calpha_j cbeta_m = fa w(j, n-1) w(0, m)``. With ``alpha_c = fa prod(a)``,
    ``|alpha_c| <= 1`` (``mode`` "fused" for ``n = N``, else "cyclic"), one cyclic
    transform of length ``n`` carries it: its unwanted (non-wrapping) part is
    exactly ``alpha_c`` times the corner-free product (``calpha_j cbeta_m =
    alpha_c w(j, m)`` for ``m >= j``), so the result is ``(1 - alpha_c)`` times
    the corner-free product plus the cyclic one (``dscale = 1 - alpha_c``; the
    subtraction costs at most ``eps |alpha_c|`` relative). For ``n = N`` it
    shares the top level's transforms. Otherwise (``mode`` "linear") a linear
    transform of length ``>= 2n``.
    """

    def __init__(self, a: np.ndarray, fa: Any, n: int, dtype: np.dtype) -> None:
        dtype = np.dtype(dtype)
        self.n, self.dtype = n, dtype
        self.cplx = dtype.kind == "c"
        N = 1 << max(n - 1, 0).bit_length()  # the power of two >= n
        self.N = N
        s0 = self.s0 = min(_SD_LEAF, N)
        ap = np.zeros(N, dtype)
        ap[: n - 1] = a
        We = np.zeros((s0, N), dtype)
        We[0] = 1
        pos = np.arange(N) % s0
        for k in range(1, s0):
            We[k, k:] = We[k - 1, k - 1 : N - 1] * ap[k - 1 : N - 1]
            We[k, pos < k] = 0
        self.We = We
        self.levels: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []
        s = 2 * s0
        while s <= N:
            h, nb = s // 2, N // s
            blk = ap.reshape(nb, s)
            alpha = np.ascontiguousarray(np.cumprod(blk[:, :h][:, ::-1], axis=1)[:, ::-1])
            beta = np.ones((nb, h), dtype)
            if h > 1:
                beta[:, 1:] = np.cumprod(blk[:, h : s - 1], axis=1)
            self.levels.append((s, h, nb, alpha, beta))
            s *= 2
        self.fa = fa
        self.mode = "none"
        self.dscale: Any = 1.0
        if fa != 0:
            a = np.asarray(a, dtype)
            suf = np.ones(n, dtype)
            pre = np.ones(n, dtype)
            if n > 1:
                suf[:-1] = np.cumprod(a[::-1])[::-1]
                pre[1:] = np.cumprod(a)
            self.calpha, self.cbeta = fa * suf, pre
            with np.errstate(all="ignore"):  # non-finite entries: ac is NaN, "linear"
                m, e = prod_pow2(a)
                ac = complex(fa) * complex(m) * np.ldexp(1.0, e) if e < 2000 else np.inf
            if np.isfinite(ac) and abs(ac) <= 1:
                self.mode = "fused" if n == N and self.levels else "cyclic"
                self.cL = n
                self.dscale = 1 - (ac if self.cplx else ac.real)
            else:
                self.mode = "linear"
                self.cL = int(sfft.next_fast_len(2 * n, real=not self.cplx))

    def fft(self, x: np.ndarray, L: int) -> np.ndarray:
        if self.cplx:
            return sfft.fft(x, L, axis=-1, workers=WORKERS)
        return rfft_last(x, L)

    def ifft(self, S: np.ndarray, L: int) -> np.ndarray:
        if self.cplx:
            return sfft.ifft(S, L, axis=-1, workers=WORKERS)
        return irfft_last(S, L)

    def rspec(self, x: np.ndarray, L: int) -> np.ndarray:
        """``conj(F(conj(x)))``: ``ifft(rspec(x) * F(y))[k] = sum_j x_j y_{j + k}`` (cyclic)."""
        if self.cplx:
            return np.conj(sfft.fft(np.conj(x), L, axis=-1, workers=WORKERS))
        return np.conj(rfft_last(x, L))

    def lin(self, V: np.ndarray) -> np.ndarray:
        """``V`` scaled for the corner-free part (``1 - alpha_c``, see the class)."""
        return V * self.dscale if self.dscale != 1.0 else V


def _sd_sign(q: int, dtype: np.dtype) -> np.ndarray:
    """``(-1)^f``: the spectrum factor of a shift by half the transform length."""
    sg = np.ones(q, np.dtype(dtype).type(0).real.dtype)
    sg[1::2] = -1
    return sg


def _sd_leaf_rows(p: _SDPlan, V: np.ndarray) -> np.ndarray:
    """(nv s0, N): row (v, k) holds ``V[v, m - k] w(m - k, m)`` at column m (same leaf)."""
    from lowdisp.kernels.ldr_subdiag import sd_leaf_matrix

    L = np.empty((V.shape[0], p.s0, p.N), V.dtype)
    sd_leaf_matrix(np.ascontiguousarray(V), p.We, p.s0, L)
    return L.reshape(-1, p.N)


class _SDKrylovT:
    """``U -> T[v, u, k] = (A^k V[v])^T U[u]`` (k < N) for fixed rows ``V`` (nv, N):
    the Krylov transpose multiply, bilinear."""

    def __init__(self, p: _SDPlan, V: np.ndarray) -> None:
        self.p, self.nv = p, V.shape[0]
        Vd = p.lin(V)
        self.LT = _sd_leaf_rows(p, Vd)
        self.Vh = []
        for s, h, nb, alpha, _ in p.levels:
            Vh = p.rspec(Vd.reshape(self.nv, nb, s)[:, :, :h] * alpha, s)
            Vh *= _sd_sign(Vh.shape[-1], Vh.dtype)  # the U data sits at offset h
            self.Vh.append(Vh)
        if p.mode != "none":
            L = p.N if p.mode == "fused" else p.cL
            self.Vc = p.rspec(V[:, : p.n] * p.calpha, L)[:, None]

    def leaf(self, U: np.ndarray) -> np.ndarray:
        """The leaf lags ``T[:, :, :s0]`` of the rows ``U`` (nu, N): (nv, nu, s0), one GEMM."""
        nv, s0, nu = self.nv, self.p.s0, U.shape[0]
        return (self.LT @ U.T).reshape(nv, s0, nu).transpose(0, 2, 1)

    def __call__(
        self, U: np.ndarray, keep: dict | None = None, leaf: np.ndarray | None = None
    ) -> np.ndarray:
        """``U`` (nu, N) rows; ``keep``, if given, receives the data spectra by level size
        (and the corner's under ``"c"``); ``leaf``, if given, is ``self.leaf(U)`` computed
        beforehand (for more rows at once: one GEMM reads the leaf rows once). Returns
        (nv, nu, N)."""
        from lowdisp.kernels.ldr_subdiag import sd_half_fill, sd_kt_contract, sd_kt_contract2

        p, nv, nu = self.p, self.nv, U.shape[0]
        N, s0, n, mode = p.N, p.s0, p.n, p.mode
        U = np.ascontiguousarray(U, p.dtype)
        T = None
        buf = np.empty((nu, N), p.dtype)
        for (s, _, nb, _, beta), Vh in zip(reversed(p.levels), reversed(self.Vh)):
            bufs = buf.reshape(nu, nb, s)
            sd_half_fill(U.reshape(nu, nb, s), beta, bufs)
            Uh = p.fft(bufs, s)
            if keep is not None:
                keep[s] = Uh
            Th = np.empty((nv, nu, Uh.shape[-1]), Uh.dtype)
            if T is None and mode == "fused":  # the corner joins the top level's spectrum
                Uc = p.fft(U * p.cbeta, N)
                if keep is not None:
                    keep["c"] = Uc
                sd_kt_contract2(Vh[:, 0], Uh[:, 0], self.Vc[:, 0], Uc, Th)
            else:
                sd_kt_contract(Vh, Uh, Th)
            if T is None:
                T = p.ifft(Th, s)
                if s < N:
                    T = np.concatenate([T, np.zeros((nv, nu, N - s), T.dtype)], axis=-1)
            else:
                T[:, :, :s] += p.ifft(Th, s)
        if leaf is None:
            leaf = self.leaf(U)
        if T is None:
            T = np.zeros((nv, nu, N), leaf.dtype)
        T[:, :, :s0] += leaf
        if mode in ("cyclic", "linear"):
            cL = p.cL
            Uc = p.fft(U[:, :n] * p.cbeta, cL)
            Th = np.empty((nv, nu, Uc.shape[-1]), Uc.dtype)
            sd_kt_contract(self.Vc, Uc[:, None], Th)
            c = p.ifft(Th, cL)
            if mode == "cyclic":
                T[:, :, :n] += c
            else:  # the negative lags k - n of the linear correlation
                T[:, :, 1:n] += c[:, :, cL - n + 1 :]
        return T


class _SDCoefSpectra:
    """Spectra of the coefficients ``C[..., :s]`` by transform length, computed once and
    shared by the Krylov multiplies that read the same ``C`` (product and gradient)."""

    def __init__(self, p: _SDPlan, C: np.ndarray) -> None:
        self.p, self.C = p, C
        self.spec: dict[int, np.ndarray] = {}

    def __call__(self, s: int, swap: bool = False) -> np.ndarray:
        if s not in self.spec:
            self.spec[s] = self.p.fft(self.C[:, :, : min(s, self.C.shape[-1])], s)
        S = self.spec[s]
        return S.transpose(1, 0, 2) if swap else S


def _sd_lag_coef(C: np.ndarray, s0: int) -> np.ndarray:
    """The leaf lags of coefficients ``C`` (nv, no, >= 1) in the per-lag GEMM layout
    (s0, no, nv), zero padded."""
    out = np.zeros((s0, C.shape[1], C.shape[0]), C.dtype)
    w = min(s0, C.shape[-1])
    out[:w] = C[:, :, :w].transpose(2, 1, 0)
    return out


def _sd_lag_leaf(p: _SDPlan, Ck: np.ndarray, Vd: np.ndarray) -> np.ndarray:
    """Leaf part ``Y[o, m] = sum_{k <= m % s0} w(m - k, m) sum_v Ck[k, o, v] Vd[v, m - k]``
    of a Krylov multiply: one GEMM over the rows ``v``, then the shifted weighted sums;
    ``Ck`` from :func:`_sd_lag_coef` (for any number of rows at once). Returns (no, N)."""
    from lowdisp.kernels.ldr_subdiag import sd_leaf_shift

    s0, no, nv = Ck.shape
    Z = Ck.reshape(s0 * no, nv) @ Vd
    Y = np.empty((no, p.N), Z.dtype)
    sd_leaf_shift(Z.reshape(s0, no, p.N), p.We, s0, Y)
    return Y


class _SDKrylov:
    """``C -> Y[o] = sum_v K(A, V[v]) C[v, o]`` for fixed rows ``V`` (nv, N): the
    Krylov multiply, bilinear. ``leaf_rows``: leaves by the (nv s0, N) leaf rows
    of ``V`` (few rows) or by per-lag GEMMs over ``v`` (many rows); ``spectra``:
    the level spectra of ``V``, if already known."""

    def __init__(
        self, p: _SDPlan, V: np.ndarray, leaf_rows: bool = True, spectra: Any = None
    ) -> None:
        self.p, self.nv = p, V.shape[0]
        Vd = self.Vd = p.lin(V)
        self.LT = _sd_leaf_rows(p, Vd) if leaf_rows else None
        if spectra is not None:
            self.Vh, self.Vc = spectra
            return
        self.Vh = [
            p.fft(Vd.reshape(self.nv, nb, s)[:, :, :h] * alpha, s)
            for s, h, nb, alpha, _ in p.levels
        ]
        if p.mode != "none":
            L = p.N if p.mode == "fused" else p.cL
            self.Vc = p.fft(V[:, : p.n] * p.calpha, L)[:, None]

    def leaf_coef(self, cs: _SDCoefSpectra, swap: bool = False) -> np.ndarray:
        """The leaf lags of the coefficients as (no, nv s0) rows: ``leaf_coef(cs) @ self.LT``
        is the leaf part of ``self(cs)`` (needs the leaf rows)."""
        C = cs.C.transpose(1, 0, 2) if swap else cs.C
        nv, no, s0 = C.shape[0], C.shape[1], self.p.s0
        Ck = np.zeros((no, nv, s0), C.dtype)
        Ck[:, :, : min(s0, C.shape[-1])] = C[:, :, :s0].transpose(1, 0, 2)
        return Ck.reshape(no, nv * s0)

    def __call__(self, cs: _SDCoefSpectra, swap: bool = False, leaf: bool = True) -> np.ndarray:
        """Coefficients ``cs.C`` (``C[o, v]`` if ``swap``); returns (no, N). With ``leaf``
        False the leaf part is left out: the caller adds ``leaf_coef(cs) @ self.LT``
        (leaf rows) or ``_sd_lag_leaf`` of ``_sd_lag_coef`` (per-lag GEMMs), for more
        columns at once."""
        from lowdisp.kernels.ldr_subdiag import sd_half_add, sd_km_contract, sd_km_mirror

        p = self.p
        N, n, mode = p.N, p.n, p.mode
        C = cs.C.transpose(1, 0, 2) if swap else cs.C
        no = C.shape[1]
        if not leaf:
            Y = np.zeros((no, N), np.result_type(C, self.Vd))
        elif self.LT is not None:
            Y = self.leaf_coef(cs, swap) @ self.LT
        else:  # Z[k, o, j] = sum_v C[v, o, k] V[v, j], then the shifted weighted sums
            Y = _sd_lag_leaf(p, _sd_lag_coef(C, p.s0), self.Vd)
        for (s, _, nb, _, beta), Vh in zip(p.levels, self.Vh):
            Ch = cs(s, swap)
            if isinstance(Vh, tuple):  # mirrored spectra, see _sd_mirror_spectra
                P = np.empty((no, nb, Vh[0].shape[-1]), np.result_type(Vh[0], Ch))
                sd_km_mirror(Vh[0], Vh[1], cs(s, not swap), P)  # (no, nv, q) layout
            else:
                P = np.empty((no, nb, Vh.shape[-1]), np.result_type(Vh, Ch))
                sd_km_contract(Vh, Ch, P)
            sd_half_add(p.ifft(P, s), beta, Y.reshape(no, nb, s))
            if mode == "fused" and s == N:  # the corner reuses the top level's spectrum
                sd_km_contract(self.Vc, Ch, P)
                R = p.ifft(P[:, 0], N)
                R *= p.cbeta
                Y += R
        if mode in ("cyclic", "linear"):
            cL = p.cL
            Cc = cs(cL, swap)
            P = np.empty((no, 1, Cc.shape[-1]), np.result_type(self.Vc, Cc))
            sd_km_contract(self.Vc, Cc, P)
            w = p.ifft(P[:, 0], cL)
            if mode == "cyclic":
                Y[:, :n] += w * p.cbeta
            else:
                Y[:, :n] += w[:, n : 2 * n] * p.cbeta
        return Y


def _sd_mirror_spectra(p: _SDPlan, a: np.ndarray, keep: dict) -> Any:
    """Level spectra of the reversed rows under the reversed operator (real data,
    ``n = N``), from the spectra ``keep`` of the transpose multiply of ``p``.

    Mirrored, the first-half weights of the reversed operator are ``a_{mid - 1}``
    times the second-half weights of ``p`` read backwards, and reading a block
    backwards conjugates its spectrum and multiplies it by ``-e^{2 pi i f / s}``
    per odd ``f``; no transform is needed. A level's spectra are returned as the
    pair ``(U, coef)``, block ``b`` being ``conj(U[:, nb - 1 - b]) coef[b]``:
    the contraction applies it on the fly (``sd_km_mirror``).
    """
    Vh = []
    for s, h, nb, _, _ in p.levels:
        q = h + 1
        U = keep[s]
        ph = np.exp(2j * np.pi * np.arange(q) / s) * _sd_sign(q, np.float64)
        c = a[np.arange(nb)[::-1] * s + h - 1] * p.dscale  # a_{mid - 1} of the mirrored block
        Vh.append((U, np.multiply.outer(c, ph).astype(U.dtype)))
    Vc = None
    if p.mode == "fused":
        ph = (p.fa * np.exp(2j * np.pi * np.arange(p.N // 2 + 1) / p.N)).astype(keep["c"].dtype)
        Vc = (np.conj(keep["c"]) * ph)[:, None]
    return Vh, Vc


def _sd_rows(X: np.ndarray, N: int, dtype: np.dtype) -> np.ndarray:
    """(n, k) columns -> (k, N) rows, zero padded."""
    n, k = X.shape
    out = np.zeros((k, N), dtype)
    out[:, :n] = X.T
    return out


def _sd_chunk(k: int, r: int, N: int) -> int:
    """Columns per pass: the (r, chunk, N) Krylov coefficients stay near 1 MB, at least
    8 columns. n = 4096 and 16384, batch 64, r = 4, with the leaves of all passes in
    one GEMM: 8 columns a pass, 7-13% (n = 4096) and 10-20% (n = 16384) faster than
    16, which was 7% and 30% faster than all at once (CPU time, load ~8)."""
    return int(max(8, min(k, (1 << 17) // max(r * N, 1))))


#: Parameter-side state (plans, leaf rows and level spectra of G or H) of recent
#: calls, keyed by the exact bytes of the parameters, so that a product, its
#: transpose and the vjp of the same parameters (one training step), or repeated
#: products with fixed parameters, build it once (about 12% of a product at
#: n = 4096, r = 4, batch 64). At most ``_SD_CACHE_BYTES`` in all; larger objects
#: are not kept.
_SD_CACHE: OrderedDict = OrderedDict()
_SD_CACHE_BYTES = 48 << 20
_SD_CACHE_LOCK = threading.Lock()


def _sd_nbytes(obj: Any) -> int:
    total = 0
    for v in vars(obj).values():
        for x in v if isinstance(v, (list, tuple)) else (v,):
            for y in x if isinstance(x, tuple) else (x,):
                total += y.nbytes if isinstance(y, np.ndarray) else 0
    return total


def _sd_cached(key: tuple, build: Any) -> Any:
    with _SD_CACHE_LOCK:
        hit = _SD_CACHE.get(key)
        if hit is not None:
            _SD_CACHE.move_to_end(key)
            return hit[0]
    obj = build()
    size = _sd_nbytes(obj) + sum(len(k) for k in key if isinstance(k, bytes))
    if size <= _SD_CACHE_BYTES // 4:
        with _SD_CACHE_LOCK:
            _SD_CACHE[key] = (obj, size)
            total = sum(v[1] for v in _SD_CACHE.values())
            while total > _SD_CACHE_BYTES:
                total -= _SD_CACHE.popitem(last=False)[1][1]
    return obj


def _sd_plan(a: np.ndarray, fa: Any, n: int, dtype: np.dtype) -> _SDPlan:
    """The (cached) plan of the operator ``(a, fa)`` of size ``n``."""
    a = np.ascontiguousarray(a, dtype)
    key = ("plan", n, dtype.str, complex(fa), a.tobytes())
    return _sd_cached(key, lambda: _SDPlan(a, fa, n, dtype))


def _sd_krylov(kind: str, a: np.ndarray, fa: Any, V: np.ndarray, dtype: np.dtype) -> Any:
    """The (cached) ``_SDKrylovT`` (``kind`` "kt") or ``_SDKrylov`` ("km") of the columns
    ``V`` (n, r) under the operator ``(a, fa)``."""
    n = V.shape[0]
    a, V = np.ascontiguousarray(a, dtype), np.ascontiguousarray(V, dtype)
    key = (kind, n, dtype.str, complex(fa), a.tobytes(), V.shape, V.tobytes())

    def build() -> Any:
        p = _sd_plan(a, fa, n, dtype)
        return (_SDKrylovT if kind == "kt" else _SDKrylov)(p, _sd_rows(V, p.N, dtype))

    return _sd_cached(key, build)


def _sd_products(a, fa, b, fb, G, H, X, dtype):
    """``sum_i K(A, g_i) K(B, h_i)^T X`` (unscaled, bilinear), as columns (m, k)."""
    m, k = G.shape[0], X.shape[1]
    kt = _sd_krylov("kt", b, fb, H, dtype)
    km = _sd_krylov("km", a, fa, G, dtype)
    pa, pb = km.p, kt.p
    Xr = _sd_rows(X, pb.N, dtype)
    Y = np.empty((k, m), dtype)
    ch = _sd_chunk(k, G.shape[1], max(pa.N, pb.N))
    # the leaves of all passes in one GEMM each, reading the (s0 r, N) leaf rows once
    # (n = 4096, batch 64: ~3 of the ~50 ms of a product in passes of 16)
    leaf = kt.leaf(Xr)
    Ck = np.empty((k, G.shape[1] * pa.s0), np.result_type(dtype, km.Vd))
    for c0 in range(0, k, ch):
        sl = slice(c0, c0 + ch)
        cs = _SDCoefSpectra(pa, kt(Xr[sl], leaf=leaf[:, sl]))
        Ck[sl] = km.leaf_coef(cs)
        Y[sl] = km(cs, leaf=False)[:, :m]
    Y += (Ck @ km.LT)[:, :m]
    return Y.T


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
#: GEMM beats the divide-and-conquer products for n <= 1024 when the batch is
#: at least n/32 (products) or n/16 (vjp, which also scans the adjoint).
#: Measured, float64, one thread, batch 64 (issue 11 engine): n = 1024: 12 ms
#: against 16 ms (vjp 38 against 68); n = 2048: 53 ms against 42 (vjp 156
#: against 130), so the divide and conquer from n = 2048 on.
_SD_DENSE_MAX_N = 1024


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


def _sd_matmat(a, fa, b, fb, G, H, X, transpose: bool = False):
    """``M @ X``, or ``M^T @ X`` when ``transpose`` (the roles of A and B swapped)."""
    fa, fb = py_scalar(fa), py_scalar(fb)
    dtype = _sd_dtype(a, b, G, H, X, fa, fb)
    if _sd_use_dense(H.shape[0], X.shape[1]):
        M = _sd_dense(a, fa, b, fb, G, H, dtype)[0]
        return (M.T if transpose else M) @ np.asarray(X, dtype)
    sides = (b, fb, a, fa, H, G) if transpose else (a, fa, b, fb, G, H)
    Y = _sd_products(*sides, X, dtype)
    scale = _sd_scale(a, fa, b, fb)
    if scale != 1.0:  # no corner: no pass over the result
        Y = Y * scale
    return Y.astype(dtype, copy=False)


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
    the block length; all blocks of a level go through one batched real FFT
    along the contiguous axis and are summed in the frequency domain (Numba).
    Leaves of 32 are one GEMM against a (32 r, n) matrix of weighted shifts.
    Corner paths (through ``fa``) ride on one cyclic transform of length
    ``n`` (for ``n`` a power of two, the top level's own) when
    ``|fa prod(a)| <= 1``: the non-wrapping half of that cyclic product is
    exactly ``fa prod(a)`` times the corner-free product and is taken out by
    scaling; otherwise one linear correlation of length ``>= 2n - 1``. Only
    products of actual entries are formed, never quotients (the
    cumulative-product shortcut ``diag(P) L(v / P)`` loses all digits once
    ``P`` spans many decades). Columns go in passes of 8 (about 1 MB of Krylov
    coefficients at n = 4096, r = 4), the leaves of all passes in one GEMM each;
    the parameter-side state (plans, leaf
    rows, spectra of ``G`` and ``H``) is cached by the parameters' bytes, so
    products, transposes and the vjp of the same parameters share it. Cost
    ``O((k + r) n log^2 n + k r n log n)``.

    For ``n <= 1024`` with at least ``max(8, n/32)`` columns, ``M`` itself is
    formed instead by the stable Stein scan ``M_ij = wA_i wB_j M_{i-1,j-1} +
    (G H^T)_ij`` (Numba; wrapped diagonals closed exactly through
    ``1 - alpha beta``) and applied by one GEMM: faster there.

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
    return _sd_matmat(a, fa, b, fb, G, H, X)


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
        return _sd_matmat(c(a), c(fa), c(b), c(fb), c(G), c(H), Y, transpose=True)
    return _sd_matmat(a, fa, b, fb, G, H, Y, transpose=True)


def _sd_param_grad(p: _SDPlan, a: np.ndarray, pm: np.ndarray, zc: np.ndarray, secant: Any):
    """``d l0 / d a`` for ``l0 = <D, Y0>``, ``Y0 = KM(a, V, C)`` (bilinear).

    Diagonal similarity ``A -> S A S^{-1}`` with ``S = I + eps E_l`` (``E_l`` =
    indicator of indices > l) scales ``a_l`` by ``1 + eps`` and the corner by
    ``1/(1 + eps)``; since ``K(S A S^{-1}, v) = S K(A, S^{-1} v)``,
    ``a_l dl0/da_l - T_c = sum_{m > l} pm_m`` with ``pm = (D * Y0 - V * dV)``
    summed over columns and ``T_c = fa dl0/dfa``; scaling all of A by
    ``1 + eps`` gives ``sum_l a_l dl0/da_l + T_c = sum_k k zc_k`` with
    ``zc_k = sum Z_k C_k``. Entries with ``|a_l|`` below 1e-3 of the largest
    use the exact secant ``secant(l)`` (l0 is affine in each ``a_l``: paths
    shorter than n cross each edge at most once).
    """
    n = p.n
    if n == 1:
        return np.zeros(0, p.dtype)
    sigma = np.cumsum(pm[::-1])[::-1][1:]  # sigma_l = sum_{m > l} pm_m, l = 0..n-2
    tc = 0.0
    if p.fa != 0:
        kappa = zc @ np.arange(zc.shape[0], dtype=p.dtype.type(0).real.dtype)
        tc = (kappa - sigma.sum()) / n
    T = sigma + tc
    amax = np.max(np.abs(a)) if a.size else 0.0
    small = np.abs(a) < 1e-3 * amax if amax > 0 else np.ones(a.shape, bool)
    grad = np.empty_like(T)
    big = ~small
    grad[big] = T[big] / a[big]
    for l in np.flatnonzero(small):
        grad[l] = secant(l)
    return grad


def _sd_secant(p: _SDPlan, a: np.ndarray, D: np.ndarray, V: np.ndarray, coef: Any) -> Any:
    """``l -> l0(a + e_l) - l0(a)``, ``l0 = <D, KM(a, V, coef())>`` (rows)."""

    def f(l: int) -> Any:
        a2 = np.array(a, copy=True)
        a2[l] += 1
        cs = _SDCoefSpectra(p, coef())
        Y2 = _SDKrylov(_SDPlan(a2, p.fa, p.n, p.dtype), V)(cs)[:, : p.n]
        Y1 = _SDKrylov(p, V)(cs)[:, : p.n]
        return np.sum(D[:, : p.n] * (Y2 - Y1))

    return f


def _sd_vjp_core(a, fa, b, fb, G, H, X, dY, dtype):
    """Unscaled bilinear gradient pieces ``(l0, X0, dG0, dH0, da0, db0)``:
    ``M X = s Y0``, ``l0 = <dY, Y0>``, ``M^T dY = s X0``, ``dG = s dG0`` and so on.

    Per pass of columns: ``c = K(B, H)^T X``, ``Y0 = K(A, G) c``,
    ``z = K(A, G)^T dY``, ``X0 = K(B, H) z``, and the superdiagonal products
    ``dG0 = J K(Ã, J dY) c^T``, ``dH0 = J K(B̃, J X) z^T`` (reversed operators),
    which reuse the coefficient spectra of ``c`` and ``z`` and, for real data
    and ``n`` a power of two, the data spectra of the transpose multiplies
    (see ``_sd_mirror_spectra``). 2.8-3x the product (n = 4096, batch 64).
    """
    m, n = G.shape[0], H.shape[0]
    k, r = X.shape[1], G.shape[1]
    ktA, ktB = _sd_krylov("kt", a, fa, G, dtype), _sd_krylov("kt", b, fb, H, dtype)
    kmA, kmB = _sd_krylov("km", a, fa, G, dtype), _sd_krylov("km", b, fb, H, dtype)
    pa, pb = ktA.p, ktB.p
    rpa, rpb = _sd_plan(a[::-1], fa, m, dtype), _sd_plan(b[::-1], fb, n, dtype)
    Gr, Hr = _sd_rows(G, pa.N, dtype), _sd_rows(H, pb.N, dtype)
    Xr, dYr = _sd_rows(X, pb.N, dtype), _sd_rows(dY, pa.N, dtype)
    share = not pa.cplx and m == pa.N and n == pb.N and bool(pa.levels and pb.levels)
    share = share and pa.mode in ("none", "fused") and pb.mode in ("none", "fused")
    L = min(m, n)
    pmA, pmB, zc = np.zeros(m, dtype), np.zeros(n, dtype), np.zeros(L, dtype)
    l0 = dtype.type(0)
    dG0, dH0 = np.zeros((r, m), dtype), np.zeros((r, n), dtype)
    X0, Y0 = np.empty((k, n), dtype), np.empty((k, m), dtype)
    # the leaves of all passes in one GEMM each (see _sd_products)
    leafX, leafY = ktB.leaf(Xr), ktA.leaf(dYr)
    CkA, CkB = np.empty((k, r * pa.s0), dtype), np.empty((k, r * pb.s0), dtype)
    LkG, LkH = np.empty((rpa.s0, r, k), dtype), np.empty((rpb.s0, r, k), dtype)
    # 16 columns at n = 4096: 8-10% faster than 32 (CPU time, load ~8)
    ch = 2 * _sd_chunk(k, r, max(pa.N, pb.N))
    for c0 in range(0, k, ch):
        sl = slice(c0, c0 + ch)
        keepX, keepY = ({}, {}) if share else (None, None)
        c = ktB(Xr[sl], keepX, leafX[:, sl])  # (r, kc, Nb): K(B, h_i)^T x_b
        csc = _SDCoefSpectra(pa, c)
        CkA[sl] = kmA.leaf_coef(csc)
        Y0[sl] = kmA(csc, leaf=False)[:, :m]
        z = ktA(dYr[sl], keepY, leafY[:, sl])  # (r, kc, Na): K(A, g_i)^T dy_b
        csz = _SDCoefSpectra(pb, z)
        CkB[sl] = kmB.leaf_coef(csz)
        X0[sl] = kmB(csz, leaf=False)[:, :n]
        # the leaves of the flipped products: one per-lag GEMM each after the passes
        LkG[:, :, sl] = _sd_lag_coef(c.transpose(1, 0, 2), rpa.s0)
        LkH[:, :, sl] = _sd_lag_coef(z.transpose(1, 0, 2), rpb.s0)
        if share:
            sA, sB = _sd_mirror_spectra(pa, a, keepY), _sd_mirror_spectra(pb, b, keepX)
            dYs, Xs = dYr[sl, ::-1], Xr[sl, ::-1]
        else:
            sA = sB = None
            dYs, Xs = _sd_rows(dY[::-1, sl], pa.N, dtype), _sd_rows(X[::-1, sl], pb.N, dtype)
        kmG = _SDKrylov(rpa, np.ascontiguousarray(dYs), False, sA)
        kmH = _SDKrylov(rpb, np.ascontiguousarray(Xs), False, sB)
        dG0 += kmG(csc, True, leaf=False)[:, :m][:, ::-1]
        dH0 += kmH(csz, True, leaf=False)[:, :n][:, ::-1]
        if fa != 0 or fb != 0:
            zc += np.einsum("vok,vok->k", z[:, :, :L], c[:, :, :L])
    Y0 += (CkA @ kmA.LT)[:, :m]
    X0 += (CkB @ kmB.LT)[:, :n]
    dG0 += _sd_lag_leaf(rpa, LkG, rpa.lin(_sd_rows(dY[::-1], rpa.N, dtype)))[:, :m][:, ::-1]
    dH0 += _sd_lag_leaf(rpb, LkH, rpb.lin(_sd_rows(X[::-1], rpb.N, dtype)))[:, :n][:, ::-1]
    dYm = dYr[:, :m]
    pmA += np.einsum("om,om->m", dYm, Y0)
    pmB += np.einsum("om,om->m", Xr[:, :n], X0)
    l0 += np.sum(dYm * Y0)
    pmA -= np.einsum("vm,vm->m", G.T, dG0)
    pmB -= np.einsum("vm,vm->m", H.T, dH0)
    da = _sd_param_grad(pa, a, pmA, zc, _sd_secant(pa, a, dYr, Gr, lambda: ktB(Xr)))
    db = _sd_param_grad(pb, b, pmB, zc, _sd_secant(pb, b, Xr, Hr, lambda: ktA(dYr)))
    return l0, X0.T, dG0.T, dH0.T, da, db


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
    the derivative of ``s = 1/(1 - alpha beta)``. 2.8-3x the product's time
    (the flipped products reuse its transforms). Corners are fixed scalars.

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
    fa, fb = py_scalar(fa), py_scalar(fb)
    if _sd_use_dense(H.shape[0], X.shape[1], vjp=True):
        dtype = _sd_dtype(a, b, G, H, X, dY, fa, fb)
        a, b, G, H, X, dY = (np.asarray(x, dtype) for x in (a, b, G, H, X, dY))
        out = _sd_dense_vjp(a, fa, b, fb, G, H, X, dY, dtype)
        out = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}
        return {k: np.conj(v) for k, v in out.items()} if cplx else out
    dtype = _sd_dtype(a, b, G, H, X, fa, fb)
    a, b, G, H, X, dY = (np.asarray(x, dtype) for x in (a, b, G, H, X, dY))
    scale = _sd_scale(a, fa, b, fb)
    l0, X0, dG0, dH0, da, db = _sd_vjp_core(a, fa, b, fb, G, H, X, dY, dtype)
    da, db = da * scale, db * scale
    if scale != 1.0:
        # s = 1/(1 - alpha beta): ds/da_l = s^2 beta fa prod_{p != l} a_p
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
