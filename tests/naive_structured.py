"""Slow, obviously correct LDR products: the oracles of the fast family engines.

The straightforward implementations the fast engines of
``lowdisp/structured/families/`` are checked against (the stumpy ``naive.py``
idea): the same signatures and conventions, never used by the package.

Conventions: ``X`` is ``(n, k)``, outputs ``(m, k)``, ``G`` is ``(m, r)``,
``H`` is ``(n, r)``; ``rmatmat`` means ``M^H Y``; gradients are those of the
real loss ``L = Re sum(conj(dY) * (M X))`` (complex: dL/dRe + i dL/dIm).
Toeplitz-like apply by FFT convolution (never an n x n matrix), Cauchy- and
Vandermonde-like with the dense kernel, subdiagonal / tridiagonal by the
O(r n^2) Krylov recurrences.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from lowdisp.structured.families.subdiagonal import _alpha_beta
from lowdisp.structured.families.vandermonde import vandermonde_rmatmat

# --------------------------------------------------------------------------
# f-circulant products through linear convolution (any f, no D_f scaling)
# --------------------------------------------------------------------------
#
# Z_f(v) x = fold_f(v * x) where * is the full linear convolution (length
# 2n - 1) and fold_f(c)_i = c_i + f c_{n+i}. With J the flip, the transpose is
# Z_f(v)^T = J Z_f(v) J (Toeplitz matrices are persymmetric) and the adjoint is
# Z_f(v)^H = J Z_conj(f)(conj v) J.


def _sconj(x):
    """Conjugate of a scalar, keeping Python scalars Python (so float32 data stays float32)."""
    return x.conjugate() if isinstance(x, int | float | complex) else np.conj(x)


def _is_real(*arrays: object) -> bool:
    return all(np.asarray(a).dtype.kind != "c" for a in arrays)


class _FFT:
    """Forward/inverse transforms of one length, real (rfft) or complex."""

    def __init__(self, n: int, real: bool) -> None:
        self.n = n
        self.N = sfft.next_fast_len(max(2 * n - 1, 1), real=real)
        self.real = real

    def fwd(self, x: np.ndarray) -> np.ndarray:
        if self.real:
            return sfft.rfft(x, self.N, axis=0)
        return sfft.fft(x, self.N, axis=0)

    def inv(self, xh: np.ndarray) -> np.ndarray:
        if self.real:
            return sfft.irfft(xh, self.N, axis=0)
        return sfft.ifft(xh, self.N, axis=0)

    def fold(self, c: np.ndarray, f: complex) -> np.ndarray:
        n = self.n
        out = c[:n].copy() if f == 0 else c[:n] + 0 * f
        if f != 0 and n > 1:
            out[: n - 1] += f * c[n : 2 * n - 1]
        return out


def _fcirc_grad(fft: _FFT, U: np.ndarray, Y: np.ndarray, f: complex) -> np.ndarray:
    """``sum_b Z_f(u_b)^H y_b`` for blocks U (n, r, k), Y (n, k) -> (n, r).

    Z_f(u)^H y = J Z_conj(f)(conj u) J y, and the batch sum is taken in the
    frequency domain.
    """
    Uh = fft.fwd(np.conj(U))
    Yh = fft.fwd(Y[::-1])
    S = np.einsum("wrk,wk->wr", Uh, Yh)
    return fft.fold(fft.inv(S), _sconj(f))[::-1]


class RefToeplitzPlan:
    """Toeplitz-like apply with the generator spectra cached (plan once, apply many).

    ``kind="sylvester"``: ``Z_e M - M Z_f = G H^T`` (e != f) and
    ``M = (e - f)^{-1} sum_i Z_e(g_i) Z_f(J h_i)``.
    ``kind="stein"``: ``M - Z_e M Z_f^T = G H^T`` (e f != 1) and
    ``M = (1 - e f)^{-1} sum_i Z_e(g_i) Z_f(h_i)^T``.
    """

    def __init__(self, G: np.ndarray, H: np.ndarray, e: complex, f: complex, kind: str) -> None:
        self.G, self.H, self.e, self.f, self.kind = G, H, e, f, kind
        self.n, self.r = G.shape
        if kind == "sylvester":
            self.c = 1.0 / (e - f)
            self.R = H[::-1]  # right factor vectors J h_i, not flipped
            self.rflip = False
        else:
            self.c = 1.0 / (1.0 - e * f)
            self.R = H  # right factor J Z_f(h_i) J
            self.rflip = True
        self._cache: dict = {}

    def _fft(self, real: bool) -> _FFT:
        key = ("fft", real)
        if key not in self._cache:
            self._cache[key] = _FFT(self.n, real)
        return self._cache[key]

    def _spec(self, name: str, real: bool) -> np.ndarray:
        key = (name, real)
        if key not in self._cache:
            fft = self._fft(real)
            vec = {"G": self.G, "R": self.R, "Gc": np.conj(self.G), "Rc": np.conj(self.R)}[name]
            self._cache[key] = fft.fwd(vec)
        return self._cache[key]

    def _real(self, X: np.ndarray) -> bool:
        return _is_real(self.G, self.H, self.e, self.f, X)

    def _right(self, X: np.ndarray, real: bool) -> tuple[_FFT, np.ndarray]:
        """U_i = Q_i X for every i: (n, r, k)."""
        fft = self._fft(real)
        Xs = X[::-1] if self.rflip else X
        U = fft.fold(fft.inv(self._spec("R", real)[:, :, None] * fft.fwd(Xs)[:, None, :]), self.f)
        return fft, (U[::-1] if self.rflip else U)

    def _left_adjoint(self, Y: np.ndarray, real: bool) -> np.ndarray:
        """V_i = P_i^H Y = J Z_conj(e)(conj g_i) J Y for every i: (n, r, k)."""
        fft = self._fft(real)
        V = fft.inv(self._spec("Gc", real)[:, :, None] * fft.fwd(Y[::-1])[:, None, :])
        return fft.fold(V, _sconj(self.e))[::-1]

    def matmat(self, X: np.ndarray) -> np.ndarray:
        fft, U = self._right(X, self._real(X))
        S = np.einsum("wr,wrk->wk", self._spec("G", fft.real), fft.fwd(U))
        return self.c * fft.fold(fft.inv(S), self.e)

    def rmatmat(self, Y: np.ndarray) -> np.ndarray:
        # M^H = conj(c) sum_i Q_i^H P_i^H.
        real = self._real(Y)
        fft = self._fft(real)
        V = self._left_adjoint(Y, real)
        fc = _sconj(self.f)
        if self.rflip:  # Q^H = Z_conj(f)(conj h)
            S = np.einsum("wr,wrk->wk", self._spec("Rc", real), fft.fwd(V))
            out = fft.fold(fft.inv(S), fc)
        else:  # Q^H = J Z_conj(f)(conj J h) J
            S = np.einsum("wr,wrk->wk", self._spec("Rc", real), fft.fwd(V[::-1]))
            out = fft.fold(fft.inv(S), fc)[::-1]
        return _sconj(self.c) * out

    def vjp(self, X: np.ndarray, dY: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        real = self._real(X) and _is_real(dY)
        fft, U = self._right(X, real)
        cc = _sconj(self.c)
        # P_i U_i = Z_e(U_i) g_i  ->  dg_i = conj(c) sum_b Z_e(u_ib)^H dY_b
        dG = cc * _fcirc_grad(fft, U, dY, self.e)
        W = cc * self._left_adjoint(dY, real)  # W_i = conj(c) P_i^H dY
        if self.rflip:  # Q x = J Z_f(J x) h
            dH = _fcirc_grad_pairs(fft, X[::-1], W[::-1], self.f)
        else:  # Q x = Z_f(x) J h
            dH = _fcirc_grad_pairs(fft, X, W, self.f)[::-1]
        return dG, dH, self.rmatmat(dY)


def _fcirc_grad_pairs(fft: _FFT, X: np.ndarray, W: np.ndarray, f: complex) -> np.ndarray:
    """``out_i = sum_b Z_f(x_b)^H w_ib`` for X (n, k), W (n, r, k) -> (n, r)."""
    Xh = fft.fwd(np.conj(X))
    Wh = fft.fwd(W[::-1])
    S = np.einsum("wk,wrk->wr", Xh, Wh)
    return fft.fold(fft.inv(S), _sconj(f))[::-1]


# --------------------------------------------------------------------------
# Cauchy-like: M_jk = sum_i G_ji H_ki / (s_j - t_k)
# --------------------------------------------------------------------------


def _cauchy_kernel(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    return 1.0 / (s[:, None] - t[None, :])


def _cauchy_parts(C: np.ndarray, H: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Z[:, i, :] = C (h_i * X): (m, r, k)."""
    n, r = H.shape
    k = X.shape[1]
    return (C @ (H[:, :, None] * X[:, None, :]).reshape(n, r * k)).reshape(-1, r, k)


def ref_cauchy_matmat(s, t, G, H, X):
    """``M X`` for the Cauchy-like matrix (straightforward: O(m n) kernel)."""
    C = _cauchy_kernel(s, t)
    return np.einsum("mr,mrk->mk", G, _cauchy_parts(C, H, X))


def ref_cauchy_rmatmat(s, t, G, H, Y):
    """``M^H Y``."""
    C = _cauchy_kernel(s, t)
    return np.einsum("nr,nrk->nk", np.conj(H), _cauchy_parts(C.conj().T, np.conj(G), Y))


def ref_cauchy_vjp(s, t, G, H, X, dY):
    """Gradients of ``Re sum(conj(dY) M X)``: dict ``G, H, s, t, X``."""
    C = _cauchy_kernel(s, t)
    Z = _cauchy_parts(C, H, X)  # (m, r, k)
    dG = np.einsum("mk,mrk->mr", dY, np.conj(Z))
    Wt = _cauchy_parts(C.conj().T, np.conj(G), dY)  # (n, r, k): C^H (conj g_i * dY)
    dH = np.einsum("nk,nrk->nr", np.conj(X), Wt)
    dX = np.einsum("nr,nrk->nk", np.conj(H), Wt)
    C2 = C * C
    Z2 = _cauchy_parts(C2, H, X)  # C2 (h_i x_b)
    ds = -np.conj(np.einsum("mk,mr,mrk->m", np.conj(dY), G, Z2))
    W2 = _cauchy_parts(C2.T, G, np.conj(dY))  # C2^T (g_i conj dY_b)
    dt = np.conj(np.einsum("nk,nr,nrk->n", X, H, W2))
    if _is_real(s):
        ds = ds.real
    if _is_real(t):
        dt = dt.real
    return {"G": dG, "H": dH, "s": ds, "t": dt, "X": dX}


# --------------------------------------------------------------------------
# Vandermonde-like (Stein D(v), Z_0^T): M = sum_i diag(g_i) V(v) L(h_i)^T
# --------------------------------------------------------------------------


def _vander(v: np.ndarray, n: int) -> np.ndarray:
    return np.power.outer(v, np.arange(n, dtype=np.result_type(v.real.dtype, np.float32)))


def _lower_toeplitz(fft: _FFT, vecs: np.ndarray, X: np.ndarray, flip: bool) -> np.ndarray:
    """``L(vec_i) X`` (flip=False) or ``L(vec_i)^T X`` (flip=True): (n, r, k)."""
    Xs = X[::-1] if flip else X
    U = fft.fold(fft.inv(fft.fwd(vecs)[:, :, None] * fft.fwd(Xs)[:, None, :]), 0.0)
    return U[::-1] if flip else U


def ref_vandermonde_matmat(v, G, H, X):
    """``M X`` (straightforward: the m x n Vandermonde matrix is formed)."""
    n = H.shape[0]
    fft = _FFT(n, _is_real(H, X))
    U = _lower_toeplitz(fft, H, X, flip=True)  # (n, r, k)
    VU = np.einsum("mn,nrk->mrk", _vander(v, n), U)
    return np.einsum("mr,mrk->mk", G, VU)


def ref_vandermonde_rmatmat(v, G, H, Y):
    """``M^H Y = sum_i L(conj h_i) V^H (conj g_i * Y)``."""
    n = H.shape[0]
    W = np.einsum("mn,mr,mk->nrk", np.conj(_vander(v, n)), np.conj(G), Y)
    fft = _FFT(n, _is_real(H, W))
    Hh = fft.fwd(np.conj(H))
    S = np.einsum("wr,wrk->wk", Hh, fft.fwd(W))
    return fft.fold(fft.inv(S), 0.0)


def ref_vandermonde_vjp(v, G, H, X, dY):
    """Gradients of ``Re sum(conj(dY) M X)``: dict ``G, H, v, X``."""
    n = H.shape[0]
    fft = _FFT(n, _is_real(H, X, dY, v, G))
    V = _vander(v, n)
    U = _lower_toeplitz(fft, H, X, flip=True)  # L(h_i)^T X
    VU = np.einsum("mn,nrk->mrk", V, U)
    dG = np.einsum("mk,mrk->mr", dY, np.conj(VU))
    W = np.einsum("mn,mr,mk->nrk", np.conj(V), np.conj(G), dY)  # V^H (conj g_i dY)
    dH = _fcirc_grad_pairs(fft, X[::-1], W[::-1], 0.0)
    k = np.arange(n, dtype=V.real.dtype)
    Vp = np.zeros_like(V)
    if n > 1:
        Vp[:, 1:] = k[1:] * np.power.outer(v, k[1:] - 1)
    VpU = np.einsum("mn,nrk->mrk", Vp, U)
    dv = np.conj(np.einsum("mk,mr,mrk->m", np.conj(dY), G, VpU))
    if _is_real(v):
        dv = dv.real
    dX = vandermonde_rmatmat(v, G, H, dY)
    return {"G": dG, "H": dH, "v": dv, "X": dX}


# --------------------------------------------------------------------------
# Krylov sums: M = c sum_k A^k G H^T (B'^T)^k  (subdiagonal, tridiagonal)
# --------------------------------------------------------------------------


def _sub_apply(a, f, X):
    Y = np.empty(X.shape, dtype=np.result_type(a, f, X))
    Y[1:] = a.reshape((-1,) + (1,) * (X.ndim - 1)) * X[:-1]
    Y[0] = f * X[-1]
    return Y


def _sub_adjoint(a, f, X):
    Y = np.empty(X.shape, dtype=np.result_type(a, f, X))
    Y[:-1] = np.conj(a).reshape((-1,) + (1,) * (X.ndim - 1)) * X[1:]
    Y[-1] = _sconj(f) * X[0]
    return Y


def _sub_pgrad(a, aK, K):
    """Gradient of Re<aK, A K> w.r.t. the subdiagonal of A."""
    return np.sum(aK[1:] * np.conj(K[:-1]), axis=1)


def _tri_apply(p, X):
    lo, mi, up, f = p
    shp = (-1,) + (1,) * (X.ndim - 1)
    Y = mi.reshape(shp) * X
    Y = Y.astype(np.result_type(Y, lo, up, f), copy=False)
    Y[1:] += lo.reshape(shp) * X[:-1]
    Y[:-1] += up.reshape(shp) * X[1:]
    Y[0] += f * X[-1]
    return Y


def _tri_adjoint(p, X):
    lo, mi, up, f = p
    shp = (-1,) + (1,) * (X.ndim - 1)
    Y = np.conj(mi).reshape(shp) * X
    Y = Y.astype(np.result_type(Y, lo, up, f), copy=False)
    Y[:-1] += np.conj(lo).reshape(shp) * X[1:]
    Y[1:] += np.conj(up).reshape(shp) * X[:-1]
    Y[-1] += _sconj(f) * X[0]
    return Y


def _tri_pgrad(aK, K):
    cK = np.conj(K)
    lo = np.sum(aK[1:] * cK[:-1], axis=1)
    mi = np.sum(aK * cK, axis=1)
    up = np.sum(aK[:-1] * cK[1:], axis=1)
    return np.concatenate([lo, mi, up])


def _ksum_matmat(apA, apB, c, G, H, X):
    """``c sum_k (A^k G)((B'^k H)^T X)`` by running both recurrences, O(r n^2 k)."""
    n = H.shape[0]
    Gk, Hk = G, H
    Y = np.zeros((G.shape[0], X.shape[1]), dtype=np.result_type(G, H, X, c))
    for k in range(n):
        Y += Gk @ (Hk.T @ X)
        if k + 1 < n:
            Gk, Hk = apA(Gk), apB(Hk)
    return c * Y


def _ksum_vjp(apA, adA, pgA, apB, adB, pgB, c, G, H, X, dY):
    n = H.shape[0]
    Gs = [G]
    Hs = [H]
    for _ in range(n - 1):
        Gs.append(apA(Gs[-1]))
        Hs.append(apB(Hs[-1]))
    cc = _sconj(c)
    S = np.zeros(dY.shape, dtype=np.result_type(G, H, X))
    aG = aH = None
    dA = dB = 0.0
    dX = np.zeros(X.shape, dtype=np.result_type(X, dY, G, H, c))
    for k in range(n - 1, -1, -1):
        w = Hs[k].T @ X  # (r, k)
        S += Gs[k] @ w
        dGk = cc * (dY @ np.conj(w).T)
        dw = cc * (np.conj(Gs[k]).T @ dY)
        dHk = np.conj(X) @ dw.T
        dX += np.conj(Hs[k]) @ dw
        if aG is None:
            aG, aH = dGk, dHk
        else:
            dA = dA + pgA(aG, Gs[k])
            dB = dB + pgB(aH, Hs[k])
            aG = dGk + adA(aG)
            aH = dHk + adB(aH)
    wS = np.sum(dY * np.conj(S))  # gradient w.r.t. the scalar c
    if n == 1:
        dA = pgA(np.zeros_like(G), G)
        dB = pgB(np.zeros_like(H), H)
    return aG, aH, dA, dB, dX, wS


def _krylov_scale(a, fa, b, fb):
    with np.errstate(over="ignore", under="ignore"):  # only the reference vjp uses these
        alpha = fa * np.prod(a) if fa != 0 else 0.0
        beta = fb * np.prod(b) if fb != 0 else 0.0
    ab = _alpha_beta(a, fa, b, fb)  # without overflow of the partial products
    if not np.isfinite(ab):
        return alpha, beta, 0.0
    d = 1.0 - ab
    return alpha, beta, (1.0 / d if d != 0 else np.inf)


def _prod_except(a: np.ndarray) -> np.ndarray:
    """``out_i = prod_{j != i} a_j`` without division."""
    if not a.size:
        return a
    one = np.ones(1, dtype=a.dtype)
    pre = np.concatenate([one, np.cumprod(a[:-1])])
    suf = np.concatenate([np.cumprod(a[::-1][:-1])[::-1], one])
    return pre * suf


def ref_subdiag_matmat(a, fa, b, fb, G, H, X):
    """``M X``, ``M = (1 - alpha beta)^{-1} sum_i K(A, g_i) K(B', h_i)^T``."""
    _, _, c = _krylov_scale(a, fa, b, fb)
    return _ksum_matmat(lambda Z: _sub_apply(a, fa, Z), lambda Z: _sub_apply(b, fb, Z), c, G, H, X)


def ref_subdiag_rmatmat(a, fa, b, fb, G, H, Y):
    """``M^H Y = conj(c) sum_i K(B', h_i)^* K(A, g_i)^H Y`` (roles of the chains swapped)."""
    _, _, c = _krylov_scale(a, fa, b, fb)
    return _ksum_matmat(
        lambda Z: _sub_apply(np.conj(b), _sconj(fb), Z),
        lambda Z: _sub_apply(np.conj(a), _sconj(fa), Z),
        _sconj(c),
        np.conj(H),
        np.conj(G),
        Y,
    )


def ref_subdiag_vjp(a, fa, b, fb, G, H, X, dY):
    """Gradients of ``Re sum(conj(dY) M X)``: dict ``G, H, a, b, X``."""
    alpha, beta, c = _krylov_scale(a, fa, b, fb)
    dG, dH, da, db, dX, wS = _ksum_vjp(
        lambda Z: _sub_apply(a, fa, Z),
        lambda Z: _sub_adjoint(a, fa, Z),
        lambda aK, K: _sub_pgrad(a, aK, K),
        lambda Z: _sub_apply(b, fb, Z),
        lambda Z: _sub_adjoint(b, fb, Z),
        lambda aK, K: _sub_pgrad(b, aK, K),
        c,
        G,
        H,
        X,
        dY,
    )
    # c = 1 / (1 - alpha beta) depends on a and b through alpha = fa prod(a), beta = fb prod(b).
    if alpha != 0 or beta != 0:
        dc_dalpha, dc_dbeta = c * c * beta, c * c * alpha
        da = da + wS * np.conj(dc_dalpha * fa * _prod_except(a))
        db = db + wS * np.conj(dc_dbeta * fb * _prod_except(b))
    if _is_real(a):
        da = np.real(da)
    if _is_real(b):
        db = np.real(db)
    return {"G": dG, "H": dH, "a": da, "b": db, "X": dX}


def ref_tridiag_matmat(A_params, B_params, G, H, X):
    """``M X``, ``M = sum_i K(A, g_i) K(B', h_i)^T`` (Krylov-sum definition)."""
    return _ksum_matmat(
        lambda Z: _tri_apply(A_params, Z), lambda Z: _tri_apply(B_params, Z), 1.0, G, H, X
    )


def _conj_params(p):
    return (*(np.conj(x) for x in p[:3]), _sconj(p[3]))


def ref_tridiag_rmatmat(A_params, B_params, G, H, Y):
    """``M^H Y``."""
    Bc, Ac = _conj_params(B_params), _conj_params(A_params)
    return _ksum_matmat(
        lambda Z: _tri_apply(Bc, Z),
        lambda Z: _tri_apply(Ac, Z),
        1.0,
        np.conj(H),
        np.conj(G),
        Y,
    )


def ref_tridiag_vjp(A_params, B_params, G, H, X, dY):
    """Gradients: dict ``G, H, A, B, X`` (A, B: gradients of ``[lower, main, upper]``)."""
    dG, dH, dA, dB, dX, _ = _ksum_vjp(
        lambda Z: _tri_apply(A_params, Z),
        lambda Z: _tri_adjoint(A_params, Z),
        _tri_pgrad,
        lambda Z: _tri_apply(B_params, Z),
        lambda Z: _tri_adjoint(B_params, Z),
        _tri_pgrad,
        1.0,
        G,
        H,
        X,
        dY,
    )
    if _is_real(*A_params[:3]):
        dA = np.real(dA)
    if _is_real(*B_params[:3]):
        dB = np.real(dB)
    return {"G": dG, "H": dH, "A": dA, "B": dB, "X": dX}
