"""The Vandermonde-like family: Stein ``M - D(v) M Z_0^T = G H^T``.

``M = sum_i diag(g_i) V(v) L(h_i)^T`` with ``V_jk = v_j^k``: ``L(h_i)^T X`` by
FFT, ``V`` (cumulative products in double precision, no subnormal powers)
built whole up to ``2**22`` entries and kept on the family for the vjp, tile
by tile beyond; one FFT when the nodes are roots of unity. Solve: the
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


#: V is built whole (one block, reused by the three passes of the vjp) up to this many
#: entries (V and V': 64 MB in float64); a layer step at n = 1024-2048 is 1.3-1.6x
#: faster than tile by tile (``_common.tiles``), used beyond
_WHOLE_MAX = 1 << 22


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """Double precision of the same kind: the powers are built in it (range and accuracy)."""
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def _cutoff(v: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """Per node, the first power ``k`` with ``|v_j|^k <= tiny`` (``n`` if none below n).

    Powers of nodes inside the unit disk decay into the subnormal range, where
    arithmetic is 10-100x slower (a float32 GEMM with V at n = 784, nodes
    U(-0.7, 0.7): 0.23 s instead of 11 ms). Zero multipliers from this power
    on make them exact zeros: below ``tiny`` relative to the ``k = 0`` column
    (all ones), nothing representable changes.
    """
    a = np.abs(v).astype(np.float64)
    cut = np.full(v.shape[0], n, np.int64)
    small = a < 1.0
    with np.errstate(divide="ignore"):  # v = 0: log 0 = -inf, cut 0
        la = np.log(a[small])
    cut[small] = np.minimum(n, np.ceil(np.log(np.finfo(dtype).tiny) / la))
    return cut


def _needs_double(v: np.ndarray, n: int, dtype: np.dtype) -> bool:
    """Single precision whose powers ``n v^(n-1)`` (the derivative's largest) leave its range.

    Such products run in double precision and are cast back (checked): a
    float32 ``M X`` is often representable although ``V`` is not.
    """
    if np.dtype(dtype).itemsize >= _work_dtype(dtype).itemsize or v.size == 0 or n < 2:
        return False
    amax = float(np.max(np.abs(v)))
    if not np.isfinite(amax) or amax <= 1.0:
        return False
    return (n - 1) * np.log(amax) + np.log(n) > np.log(np.finfo(dtype).max)


def _vander_blocks(v: np.ndarray, n: int, dtype: np.dtype, power: bool, deriv: bool):
    """Yield ``(J, K, T, D)``: tiles of ``V`` (if ``power``) and ``V'`` (if ``deriv``).

    ``V_jk = v_j^k`` and ``V'_jk = k v_j^(k-1)`` on rows J, columns K, built in
    double precision by cumulative products (carried across column tiles) and
    handed back in ``dtype`` (no subnormals: see :func:`_cutoff`); one block when ``m n`` is at
    most ``_WHOLE_MAX``.
    """
    m = v.shape[0]
    wd = _work_dtype(dtype)
    v = v.astype(wd, copy=False)
    cut = _cutoff(v, n, dtype)
    last = np.zeros(m, wd)  # v^(k0 - 1), carried across column tiles
    base = np.ones(m, wd)  # v^k0
    blocks = [(slice(0, m), slice(0, n))] if m * n <= _WHOLE_MAX else tiles(m, n)
    for J, K in blocks:
        w = K.stop - K.start
        ks = np.arange(K.start, K.stop)
        Tt = np.empty((w, J.stop - J.start), wd)  # built transposed: cumprod over rows
        Tt[0] = base[J]  # is 2x faster than along the contiguous axis
        if w > 1:
            np.copyto(Tt[1:], np.where(ks[1:, None] < cut[J], v[J], 0))  # see _cutoff
            np.cumprod(Tt, axis=0, out=Tt)
        D = None
        if deriv:
            Dt = np.empty_like(Tt)
            Dt[0] = last[J] * K.start
            np.multiply(Tt[:-1], ks[1:, None], out=Dt[1:])
            D = Dt.astype(dtype, copy=False).T
        last[J] = Tt[-1]
        base[J] = np.where(K.stop < cut[J], Tt[-1] * v[J], 0)
        yield J, K, (Tt.astype(dtype, copy=False).T if power else None), D


def _whole_blocks(v: np.ndarray, n: int, dtype: np.dtype, deriv: bool, cache: dict | None):
    """``[(J, K, V, V')]`` built once when ``V`` is small (else None: tile by tile per pass).

    ``cache`` (a family's dict, or None) keeps them across the products and
    the vjp of one matrix (a layer's forward and backward); ``V'`` is made from
    ``V`` when first asked for.
    """
    if v.shape[0] * n > _WHOLE_MAX or _roots_of_unity(v) is not None:
        return None
    key = np.dtype(dtype)
    ent = cache.get(key) if cache is not None else None
    with np.errstate(over="ignore", invalid="ignore"):  # reported by _checked
        if ent is None:
            ent = next(_vander_blocks(v, n, dtype, power=True, deriv=deriv))
        elif deriv and ent[3] is None:
            J, K, T, _ = ent
            D = np.zeros_like(T)
            np.multiply(T[:, :-1], np.arange(1, n, dtype=T.real.dtype), out=D[:, 1:])
            ent = (J, K, T, D)
    if cache is not None:
        cache[key] = ent
    return [ent]


def _checked(out: np.ndarray, dtype: np.dtype, v: np.ndarray, n: int, where: str, *inputs):
    """``out`` in ``dtype``; an overflow caused by the powers of the nodes is a clear error."""
    with np.errstate(over="ignore"):
        res = out.astype(dtype, copy=False)
    if not np.isfinite(res).all() and all(np.isfinite(x).all() for x in (v, *inputs)):
        amax = float(np.max(np.abs(v))) if v.size else 0.0
        big = (n - 1) * np.log10(amax) if amax > 0 else -np.inf
        raise OverflowError(
            f"{where}: the Vandermonde-like result is not representable in {np.dtype(dtype)}: "
            f"the node powers v_j^k, k < n = {n}, reach max|v|^(n-1) = 10^{big:.1f} "
            f"(max|v| = {amax:.6g}); keep the nodes in the closed unit disk |v| <= 1 "
            "(or compute in double precision)"
        )
    return res


def _vander_apply(
    v: np.ndarray, U: np.ndarray, deriv: bool = False, blocks=None, where: str = "vandermonde"
) -> np.ndarray:
    """``V(v) @ U`` (or ``V'(v) @ U`` with ``V'_jk = k v_j^(k-1)``), block by block, O(m n k).

    ``blocks`` (a list from :func:`_vander_blocks`) reuses built powers.
    """
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
    if blocks is None:
        blocks = _vander_blocks(v, n, dtype, power=not deriv, deriv=deriv)
    out = None
    with np.errstate(over="ignore", invalid="ignore"):  # reported by _checked
        for J, K, T, D in blocks:
            B = D if deriv else T
            P = B @ (U[K] if B.dtype == dtype else U[K].astype(B.dtype))
            if out is None:
                out = np.zeros((m, U.shape[1]), np.result_type(P, dtype))
            out[J] += P
    if out is None:
        out = np.zeros((m, U.shape[1]), dtype)
    return _checked(out, dtype, v, n, where, U)


def _vander_tapply(
    v: np.ndarray, W: np.ndarray, n: int, blocks=None, where: str = "vandermonde"
) -> np.ndarray:
    """``V(v)^T @ W`` (plain transpose), ``V`` of shape ``(m, n)``."""
    dtype = np.result_type(v, W)
    ru = _roots_of_unity(v)
    if ru is not None:
        N, p = ru
        acc = np.zeros((N, W.shape[1]), dtype)
        np.add.at(acc, p, W)
        full = sfft.ifft(acc, axis=0, workers=WORKERS) * N
        return full[np.arange(n) % N].astype(dtype, copy=False)
    if blocks is None:
        blocks = _vander_blocks(v, n, dtype, power=True, deriv=False)
    out = None
    with np.errstate(over="ignore", invalid="ignore"):  # reported by _checked
        for J, K, T, _ in blocks:
            P = T.T @ (W[J] if T.dtype == dtype else W[J].astype(T.dtype))
            if out is None:
                out = np.zeros((n, W.shape[1]), np.result_type(P, dtype))
            out[K] += P
    if out is None:
        out = np.zeros((n, W.shape[1]), dtype)
    return _checked(out, dtype, v, n, where, W)


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

    ``L(h_i)^T X`` by FFT, then ``V`` times the ``r k`` columns in one GEMM
    (``V`` built whole by cumulative products in double precision up to
    ``m n = 2**22`` entries (1.3-1.6x faster than tiles at n = 1024-2048; the cap is
    memory), tile by tile beyond): ``O(r k (m n + n log n))``.
    Powers below the smallest normal number are set to 0 (subnormal
    arithmetic is 10-100x slower). Nodes that are the ``m``-th roots of unity
    (in any order) use one FFT instead of ``V``.

    Raises ``OverflowError`` naming ``max|v|`` when the powers of the nodes
    make the result non-representable (nodes with ``|v| > 1`` at large n:
    float32 at n = 784 holds ``|v| <= 1.12``, float64 ``|v| <= 2.48``).

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
    return _vandermonde_matmat(v, G, H, X, "vandermonde_matmat")


def _vandermonde_matmat(v, G, H, X, where, cache=None):
    dtype, v, G, H, X = _vdm_bilinear(v, G, H, X)
    if _needs_double(v, H.shape[0], dtype):
        Y = _vandermonde_matmat(*promote(_work_dtype(dtype), v, G, H, X), where)
        return _checked(Y, dtype, v, H.shape[0], where, G, H, X)
    k, r = X.shape[1], G.shape[1]
    U, _ = _LowerToeplitzT(H).apply_T(X)
    VU = _vander_apply(v, U, blocks=_whole_blocks(v, H.shape[0], dtype, False, cache), where=where)
    Y = np.zeros((G.shape[0], k), dtype)
    for i in range(r):
        Y += G[:, i, None] * VU[:, i * k : (i + 1) * k]
    return Y


def _vandermonde_tmatmat(v, G, H, Y, where, cache=None):
    dtype, v, G, H, Y = _vdm_bilinear(v, G, H, Y)
    k, r, n = Y.shape[1], G.shape[1], H.shape[0]
    if _needs_double(v, n, dtype):
        X = _vandermonde_tmatmat(*promote(_work_dtype(dtype), v, G, H, Y), where)
        return _checked(X, dtype, v, n, where, G, H, Y)
    W = np.concatenate([G[:, i, None] * Y for i in range(r)], axis=1)
    return (
        _LowerToeplitzT(H)
        .apply_N_sum(_vander_tapply(v, W, n, _whole_blocks(v, n, dtype, False, cache), where), k)[0]
        .astype(dtype)
    )


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
    return _vandermonde_rmatmat(v, G, H, Y, "vandermonde_rmatmat")


def _vandermonde_rmatmat(v, G, H, Y, where, cache=None):
    if np.iscomplexobj(v) or np.iscomplexobj(G) or np.iscomplexobj(H):
        return _vandermonde_tmatmat(np.conj(v), np.conj(G), np.conj(H), Y, where)
    return _vandermonde_tmatmat(v, G, H, Y, where, cache)


def vandermonde_vjp(
    v: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, v, X`` of ``L = Re sum(conj(dY) * (M X))``, Vandermonde-like M.

    With ``U_i = L(h_i)^T X``, ``W_i = diag(g_i) dY``: ``dG_i = rowsum(dY * V U_i)``,
    ``dU_i = V^T W_i``, ``dX = sum_i L(h_i) dU_i``, ``dh_i`` the correlation of
    ``X`` with ``dU_i``, ``dv = rowsum(sum_i W_i * V' U_i)`` with
    ``V'_jk = k v_j^(k-1)`` (complex data: conjugated, the convention of
    :func:`lowdisp.testing.check_vjp`). Three passes over ``V`` (built once
    when it has at most ``2**22`` entries).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.vandermonde import vandermonde_vjp
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> g = vandermonde_vjp(v, np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 2)), np.ones((3, 2)))
    >>> g["v"].shape, g["H"].shape
    ((3,), (3, 1))
    """
    return _vandermonde_vjp(v, G, H, X, dY, "vandermonde_vjp")


def _vandermonde_vjp(v, G, H, X, dY, where, cache=None):
    if complex_data_only((v, G, H), X, dY):
        return real_params_complex_data(
            lambda x, d: _vandermonde_vjp(v, G, H, x, d, where, cache), X, dY
        )

    dtype, v, G, H, X = _vdm_bilinear(v, G, H, X)
    if _needs_double(v, H.shape[0], dtype):
        wd = _work_dtype(dtype)
        d = _vandermonde_vjp(*promote(wd, v, G, H, X, dY), where)
        return {
            key: _checked(val, dtype, v, H.shape[0], where, G, H, X, dY) for key, val in d.items()
        }
    dYc = np.conj(np.asarray(dY, dtype))
    n, k = X.shape
    r = G.shape[1]
    lt = _LowerToeplitzT(H)
    U, Xs = lt.apply_T(X)
    blocks = _whole_blocks(v, n, dtype, True, cache)  # None: tile by tile per pass
    VU = _vander_apply(v, U, blocks=blocks, where=where)
    dG = np.empty_like(G)
    for i in range(r):
        dG[:, i] = np.einsum("jb,jb->j", dYc, VU[:, i * k : (i + 1) * k])
    del VU
    W = np.concatenate([G[:, i, None] * dYc for i in range(r)], axis=1)
    dv = np.einsum("jc,jc->j", W, _vander_apply(v, U, True, blocks, where))
    dU = _vander_tapply(v, W, n, blocks, where)
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
        self._powers: dict = {}  # V (and V') by dtype when small, see _whole_blocks

    def matmat(self, X):
        return _vandermonde_matmat(self.v, self.G, self.H, X, "LDRMatrix.matmat", self._powers)

    def rmatmat(self, Y):
        return _vandermonde_rmatmat(self.v, self.G, self.H, Y, "LDRMatrix.rmatmat", self._powers)

    def toarray(self):
        n = self.H.shape[0]
        V = vander(self.v, n)
        out = np.zeros((self.G.shape[0], n), dtype=result_dtype(self.G, self.H, V))
        for i in range(self.G.shape[1]):
            out += (self.G[:, i, None] * V) @ fcirc_dense(self.H[:, i], 0.0).T
        return out

    def vjp(self, X, dY):
        d = _vandermonde_vjp(self.v, self.G, self.H, X, dY, "LDRMatrix.vjp", self._powers)
        return {"G": d["G"], "H": d["H"], "A": d["v"], "X": d["X"]}

    def solve(self, B, *, transposed, where):
        if np.any(self.v == 0):
            return super().solve(B, transposed=transposed, where=where)
        return _vandermonde_solve(self, B, transposed, where)
