"""The Vandermonde-like family: Stein ``M - D(v) M Z_0^T = G H^T``.

``M = sum_i diag(g_i) V(v) L(h_i)^T`` with ``V_jk = v_j^k``: ``L(h_i)^T X`` by
FFT, ``V`` applied tile by tile (powers by repeated multiplication, never the
m x n matrix), one FFT when the nodes are roots of unity. Solve: the
Sylvester form with ``(D(v)^{-1}, Z_f^T)`` converted to a Cauchy-like matrix, GKO.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from lowdisp._config import result_dtype
from lowdisp.structured._common import (
    complex_data_only,
    fcirc_dense,
    promote,
    randn,
    real_params_complex_data,
    tiles,
)
from lowdisp.structured._fft import WORKERS, Embed
from lowdisp.structured._gko import gko, roots
from lowdisp.structured._operators import Diagonal, Shift
from lowdisp.structured.families._base import LDRFamily, is_op

__all__ = ["VandermondeFamily", "vandermonde_matmat", "vandermonde_rmatmat", "vandermonde_vjp"]


# --------------------------------------------------------------------------
# Vandermonde-like: M = sum_i diag(g_i) V(v) L(h_i)^T, V_jk = v_j^k
# --------------------------------------------------------------------------


def _roots_of_unity(v: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(N, p) if every node is exp(2 pi i p_j / N) for N = len(v) (else None)."""
    N = v.shape[0]
    if N < 2 or v.dtype.kind != "c" or not np.allclose(np.abs(v), 1.0, rtol=0, atol=1e-13):
        return None
    q = np.angle(v) * (N / (2 * np.pi))
    p = np.rint(q)
    if np.max(np.abs(q - p)) > 1e-9:
        return None
    return N, (p.astype(np.int64) % N)


def _vander_apply(v: np.ndarray, U: np.ndarray, deriv: bool = False) -> np.ndarray:
    """``V(v) @ U`` (or ``V'(v) @ U`` with ``V'_jk = k v_j^(k-1)``), tile by tile, O(m n k)."""
    m, n = v.shape[0], U.shape[0]
    dtype = np.result_type(v, U)
    ru = _roots_of_unity(v)
    if ru is not None:
        N, p = ru
        Uw = U * np.arange(n)[:, None] if deriv else U
        if n > N:  # fold: v^k is N-periodic in k
            pad = (-n) % N
            Uw = np.concatenate([Uw, np.zeros((pad, Uw.shape[1]), Uw.dtype)])
            Uw = Uw.reshape(-1, N, Uw.shape[1]).sum(axis=0)
        full = sfft.ifft(Uw, n=N, axis=0, workers=WORKERS) * N
        out = full[p]
        if deriv:
            out /= v[:, None]
        return out.astype(dtype, copy=False)
    out = np.zeros((m, U.shape[1]), dtype)
    v = v.astype(dtype, copy=False)
    last = np.zeros(m, dtype)  # v^(k0 - 1), carried across column tiles
    base = np.ones(m, dtype)  # v^k0
    for J, K in tiles(m, n):
        w = K.stop - K.start
        T = np.empty((J.stop - J.start, w), dtype)
        T[:, 0] = base[J]
        if w > 1:
            T[:, 1:] = v[J, None]
            np.cumprod(T, axis=1, out=T)
        if deriv:
            D = np.empty_like(T)
            D[:, 0] = last[J]
            D[:, 1:] = T[:, :-1]
            D *= np.arange(K.start, K.stop)
            out[J] += D @ U[K]
        else:
            out[J] += T @ U[K]
        last[J] = T[:, -1]
        base[J] = T[:, -1] * v[J]
    return out


def _vander_tapply(v: np.ndarray, W: np.ndarray, n: int) -> np.ndarray:
    """``V(v)^T @ W`` (plain transpose), ``V`` of shape ``(m, n)``."""
    m = v.shape[0]
    dtype = np.result_type(v, W)
    ru = _roots_of_unity(v)
    if ru is not None:
        N, p = ru
        acc = np.zeros((N, W.shape[1]), dtype)
        np.add.at(acc, p, W)
        full = sfft.ifft(acc, axis=0, workers=WORKERS) * N
        return full[np.arange(n) % N].astype(dtype, copy=False)
    out = np.zeros((n, W.shape[1]), dtype)
    v = v.astype(dtype, copy=False)
    base = np.ones(m, dtype)
    for J, K in tiles(m, n):
        w = K.stop - K.start
        T = np.empty((J.stop - J.start, w), dtype)
        T[:, 0] = base[J]
        if w > 1:
            T[:, 1:] = v[J, None]
            np.cumprod(T, axis=1, out=T)
        out[K] += T.T @ W[J]
        base[J] = T[:, -1] * v[J]
    return out


class _LowerToeplitzT:
    """``L(h_i)^T X`` for all i (one transform of X) and the adjoint pieces."""

    def __init__(self, H: np.ndarray) -> None:
        self.n, self.r = H.shape
        self.tr = Embed(self.n, 1.0, 0.0, H.dtype)
        self.spec = self.tr.fwd_N(np.ascontiguousarray(H.T))  # (r, nb)
        self.rspec = self.tr.rev(self.spec)

    def apply_T(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """U with U[:, i*k:(i+1)*k] = L(h_i)^T X, and the spectra of X."""
        n, k = X.shape
        Xs = self.tr.fwd_T(np.ascontiguousarray(X.T))
        U = np.empty((n, self.r * k), np.result_type(X, self.spec.real))
        for i in range(self.r):
            U[:, i * k : (i + 1) * k] = self.tr.inv_T(Xs * self.rspec[i]).T
        return U, Xs

    def apply_N_sum(self, Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """sum_i L(h_i) Z[:, i*k:(i+1)*k], and the spectra of every block of Z."""
        Zs = self.tr.fwd_N(np.ascontiguousarray(Z.T))  # (r*k, nb)
        acc = np.zeros((k, self.tr.nb), Zs.dtype)
        for i in range(self.r):
            acc += Zs[i * k : (i + 1) * k] * self.spec[i]
        return np.ascontiguousarray(self.tr.inv_N(acc).T), Zs


def _vdm_bilinear(v, G, H, X):
    dtype = np.result_type(v, G, H, X)
    v, G, H, X = promote(dtype, v, G, H, X)
    return dtype, v, G, H, X


def vandermonde_matmat(v: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``M @ X`` for ``M = sum_i diag(g_i) V(v) L(h_i)^T`` with ``V_jk = v_j^k`` (m x n).

    ``L(h_i)^T X`` by FFT, then ``V`` times the ``r k`` columns tile by tile
    (powers by repeated multiplication, never the ``m x n`` matrix):
    ``O(r k (m n + n log n))``. Nodes that are the ``m``-th roots of unity
    (in any order) use one FFT instead of ``V``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.vandermonde import vandermonde_matmat
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> G, H = np.ones((3, 1)), np.eye(3)[:, :1]  # M = V(v)
    >>> vandermonde_matmat(v, G, H, np.eye(3))
    array([[1., 1., 1.],
           [1., 2., 4.],
           [1., 3., 9.]])
    """
    dtype, v, G, H, X = _vdm_bilinear(v, G, H, X)
    k, r = X.shape[1], G.shape[1]
    U, _ = _LowerToeplitzT(H).apply_T(X)
    VU = _vander_apply(v, U)
    Y = np.zeros((G.shape[0], k), dtype)
    for i in range(r):
        Y += G[:, i, None] * VU[:, i * k : (i + 1) * k]
    return Y


def _vandermonde_tmatmat(v, G, H, Y):
    dtype, v, G, H, Y = _vdm_bilinear(v, G, H, Y)
    k, r, n = Y.shape[1], G.shape[1], H.shape[0]
    W = np.concatenate([G[:, i, None] * Y for i in range(r)], axis=1)
    return _LowerToeplitzT(H).apply_N_sum(_vander_tapply(v, W, n), k)[0].astype(dtype)


def vandermonde_rmatmat(v: np.ndarray, G: np.ndarray, H: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``M^H @ Y`` for the Vandermonde-like matrix (same cost as the product).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.vandermonde import vandermonde_rmatmat
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> vandermonde_rmatmat(v, np.ones((3, 1)), np.eye(3)[:, :1], np.eye(3))[2]
    array([1., 4., 9.])
    """
    if np.iscomplexobj(v) or np.iscomplexobj(G) or np.iscomplexobj(H):
        return _vandermonde_tmatmat(np.conj(v), np.conj(G), np.conj(H), Y)
    return _vandermonde_tmatmat(v, G, H, Y)


def vandermonde_vjp(
    v: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, v, X`` of ``L = Re sum(conj(dY) * (M X))``, Vandermonde-like M.

    With ``U_i = L(h_i)^T X``, ``W_i = diag(g_i) dY``: ``dG_i = rowsum(dY * V U_i)``,
    ``dU_i = V^T W_i``, ``dX = sum_i L(h_i) dU_i``, ``dh_i`` the correlation of
    ``X`` with ``dU_i``, ``dv = rowsum(sum_i W_i * V' U_i)`` with
    ``V'_jk = k v_j^(k-1)`` (complex data: conjugated, the convention of
    :func:`lowdisp.testing.check_vjp`). Three passes over ``V``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.vandermonde import vandermonde_vjp
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> g = vandermonde_vjp(v, np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 2)), np.ones((3, 2)))
    >>> g["v"].shape, g["H"].shape
    ((3,), (3, 1))
    """
    if complex_data_only((v, G, H), X, dY):
        return real_params_complex_data(lambda x, d: vandermonde_vjp(v, G, H, x, d), X, dY)

    dtype, v, G, H, X = _vdm_bilinear(v, G, H, X)
    dYc = np.conj(np.asarray(dY, dtype))
    n, k = X.shape
    r = G.shape[1]
    lt = _LowerToeplitzT(H)
    U, Xs = lt.apply_T(X)
    VU = _vander_apply(v, U)
    dG = np.empty_like(G)
    for i in range(r):
        dG[:, i] = np.einsum("jb,jb->j", dYc, VU[:, i * k : (i + 1) * k])
    del VU
    W = np.concatenate([G[:, i, None] * dYc for i in range(r)], axis=1)
    dv = np.einsum("jc,jc->j", W, _vander_apply(v, U, deriv=True))
    dU = _vander_tapply(v, W, n)
    dX, dUs = lt.apply_N_sum(dU, k)
    dH = np.empty_like(H)
    for i in range(r):
        acc = np.einsum("bq,bq->q", Xs, lt.tr.rev(dUs[i * k : (i + 1) * k]))
        dH[:, i] = lt.tr.inv_T(acc[None])[0]
    out = {"G": dG, "H": dH, "v": dv, "X": dX.astype(dtype, copy=False)}
    if np.dtype(dtype).kind == "c":
        out = {key: np.conj(val) for key, val in out.items()}
    return out


def vander(v: np.ndarray, n: int) -> np.ndarray:
    """The dense m x n Vandermonde matrix ``V_jk = v_j^k`` (reconstruction only).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.vandermonde import vander
    >>> vander(np.array([2.0]), 3)
    array([[1., 2., 4.]])
    """
    return np.power.outer(v, np.arange(n, dtype=np.result_type(v.real.dtype, np.float32)))


def _vandermonde_solve(fam: VandermondeFamily, B: np.ndarray, transposed: bool, where: str):
    r"""Vandermonde-like ``M - D(v) M Z_0^T = G H^T`` (square, all v_j != 0) via GKO.

    With a unimodular f, :math:`Z_f^T = Z_0^T + f e_{n-1}e_0^T` gives
    :math:`D^{-1}M - M Z_f^T = [D^{-1}G, -f M e_{n-1}] [H, e_0]^T` (rank r + 1),
    and :math:`Z_f^T = P_f^T \Lambda_f P_f^{-T}` (:math:`P_f = F D_f`) turns
    :math:`C = M P_f^T` into a Cauchy-like matrix with nodes :math:`1/v_j` and
    :math:`f^{1/n}\omega^k`; f is chosen to keep the two node sets apart.
    """
    v, G, H = fam.v, fam.G, fam.H
    n = v.shape[0]
    s = 1.0 / v.astype(np.complex128)
    best, f = -1.0, 1.0 + 0j
    theta = np.angle(s)
    for phi in np.linspace(0.0, 2 * np.pi, 17)[:-1]:
        # roots t_k = exp(i (phi - 2 pi k) / n); the nearest one to s_j is the nearest in angle
        k = np.rint((phi - n * theta) / (2 * np.pi)).astype(np.int64) % n
        gap = np.abs(s - np.exp(1j * (phi - 2 * np.pi * k) / n)).min()
        if gap > best:
            best, f = gap, np.exp(1j * phi)
    Df, t = roots(f, n)
    E = np.zeros((n, 1), dtype=np.complex128)
    E[n - 1, 0] = 1.0
    last_col = fam.matmat(E.astype(np.result_type(E, G)))
    Gs = np.column_stack([G / v[:, None], -f * last_col])
    Hs = np.column_stack([H, np.eye(n, 1)])
    Hc = sfft.fft(Df[:, None] * Hs, axis=0)
    if not transposed:
        y = gko(s, t, Gs, Hc, B, where)
        return Df[:, None] * sfft.fft(y, axis=0)
    return gko(t, s, -Hc, Gs, sfft.fft(Df[:, None] * B, axis=0), where)


class VandermondeFamily(LDRFamily):
    r"""Vandermonde-like: Stein ``(D(v), Z_0^T)``, any m x n; always invertible (Z_0 nilpotent).

    :math:`M = \sum_i \mathrm{diag}(g_i) V(v) L(h_i)^T`. Solve (square, nonzero
    nodes): Cauchy-like conversion and GKO; a zero node: the dense-LU fallback.

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import VandermondeFamily
    >>> VandermondeFamily.recognises(ld.Diagonal([1.0, 2.0]), ld.Shift(2).T, "stein")
    True
    """

    name = "vandermonde"
    pairs = "vandermonde: (Diagonal(v), Shift(n, 0).T) stein"
    square = False
    inverse_kinds = ()

    @classmethod
    def recognises(cls, A, B, kind):
        return kind == "stein" and is_op(A, Diagonal) and is_op(B, Shift, True) and B.base.f == 0

    @classmethod
    def example(cls, rng, n, r, dtype):
        v = rng.uniform(-1, 1, n)
        if np.dtype(dtype).kind == "c":
            v = np.exp(2j * np.pi * rng.uniform(0, 1, n)) * rng.uniform(0.5, 1, n)
        G, H = randn(rng, (n, r), dtype), randn(rng, (n, r), dtype)
        return Diagonal(v), Shift(n, 0.0).T, G, H, "stein"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A, B, G, H, kind)
        self.v = A.d

    def matmat(self, X):
        return vandermonde_matmat(self.v, self.G, self.H, X)

    def rmatmat(self, Y):
        return vandermonde_rmatmat(self.v, self.G, self.H, Y)

    def toarray(self):
        n = self.H.shape[0]
        V = vander(self.v, n)
        out = np.zeros((self.G.shape[0], n), dtype=result_dtype(self.G, self.H, V))
        for i in range(self.G.shape[1]):
            out += (self.G[:, i, None] * V) @ fcirc_dense(self.H[:, i], 0.0).T
        return out

    def vjp(self, X, dY):
        d = vandermonde_vjp(self.v, self.G, self.H, X, dY)
        return {"G": d["G"], "H": d["H"], "A": d["v"], "X": d["X"]}

    def solve(self, B, *, transposed, where):
        if np.any(self.v == 0):
            return super().solve(B, transposed=transposed, where=where)
        return _vandermonde_solve(self, B, transposed, where)
