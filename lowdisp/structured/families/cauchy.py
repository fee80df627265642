"""The Cauchy-like family: ``D(s) M - M D(t) = G H^T``, ``M_jk = g_j^T h_k / (s_j - t_k)``.

Products, adjoints and gradients tile by tile (``O(m n (r + k))`` time, one
``128 x 1024`` tile of memory: the ``m x n`` matrix never exists); solve by GKO.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import ldexp, max_abs, pow2_exponent
from lowdisp.structured._common import (
    complex_data_only,
    norm_exponent,
    promote,
    randn,
    real_params_complex_data,
    tiles,
)
from lowdisp.structured._gko import gko
from lowdisp.structured._operators import Diagonal
from lowdisp.structured.families._base import LDRFamily, is_op

__all__ = ["CauchyFamily", "cauchy_matmat", "cauchy_rmatmat", "cauchy_vjp"]


# --------------------------------------------------------------------------
# Cauchy-like: M_jk = sum_i G_ji H_ki / (s_j - t_k), built tile by tile
# --------------------------------------------------------------------------


def _cauchy_tile(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, J: slice, K: slice
) -> tuple[np.ndarray, np.ndarray]:
    """(C, M) tiles: C = 1 / (s_j - t_k), M = (G H^T) * C on rows J, columns K."""
    C = np.subtract.outer(s[J], t[K])
    np.reciprocal(C, out=C)
    M = G[J] @ H[K].T
    M *= C
    return C, M


def cauchy_matmat(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray
) -> np.ndarray:
    """``M @ X`` for the Cauchy-like ``M_jk = sum_i G_ji H_ki / (s_j - t_k)``.

    ``O(m n (r + k))`` time (the tile entries, then one GEMM per tile), memory
    one ``128 x 1024`` tile: the ``m x n`` matrix never exists.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.cauchy import cauchy_matmat
    >>> s, t = np.array([0.0, 1.0]), np.array([0.5, 2.0, 3.0])
    >>> G, H = np.ones((2, 1)), np.ones((3, 1))
    >>> cauchy_matmat(s, t, G, H, np.eye(3))[0]
    array([-2.    , -0.5   , -0.3333])
    """
    dtype = np.result_type(s, t, G, H, X)
    s, t, G, H, X = promote(dtype, s, t, G, H, X)
    Y = np.zeros((G.shape[0], X.shape[1]), dtype)
    for J, K in tiles(G.shape[0], H.shape[0]):
        Y[J] += _cauchy_tile(s, t, G, H, J, K)[1] @ X[K]
    return Y


def cauchy_rmatmat(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, Y: np.ndarray
) -> np.ndarray:
    """``M^H @ Y`` for the Cauchy-like matrix (same cost as :func:`cauchy_matmat`).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.cauchy import cauchy_rmatmat
    >>> s, t = np.array([0.0, 1.0]), np.array([0.5, 2.0, 3.0])
    >>> cauchy_rmatmat(s, t, np.ones((2, 1)), np.ones((3, 1)), np.eye(2)).shape
    (3, 2)
    """
    dtype = np.result_type(s, t, G, H, Y)
    s, t, G, H, Y = promote(dtype, s, t, G, H, Y)
    out = np.zeros((H.shape[0], Y.shape[1]), dtype)
    for J, K in tiles(G.shape[0], H.shape[0]):
        out[K] += _cauchy_tile(s, t, G, H, J, K)[1].conj().T @ Y[J]
    return out


def cauchy_vjp(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, s, t, X`` of ``L = Re sum(conj(dY) * (M X))`` for the Cauchy-like M.

    With ``W = dY X^H`` taken tile by tile: ``dG = (W * C) H``,
    ``dH = (W * C)^T G``, ``ds = -rowsum(W * M * C)``, ``dt = colsum(W * M * C)``
    (conjugated for complex data), ``dX = M^H dY``; ``O(m n (r + k))``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.cauchy import cauchy_vjp
    >>> s, t = np.array([0.0, 1.0]), np.array([0.5, 2.0, 3.0])
    >>> g = cauchy_vjp(s, t, np.ones((2, 1)), np.ones((3, 1)), np.ones((3, 1)), np.ones((2, 1)))
    >>> sorted(g)
    ['G', 'H', 'X', 's', 't']
    """
    if complex_data_only((s, t, G, H), X, dY):
        return real_params_complex_data(lambda x, d: cauchy_vjp(s, t, G, H, x, d), X, dY)

    dtype = np.result_type(s, t, G, H, X, dY)
    s, t, G, H, X = promote(dtype, s, t, G, H, X)
    dYc = np.conj(np.asarray(dY, dtype))  # bilinear form, conjugated at the end
    dG, dH = np.zeros_like(G), np.zeros_like(H)
    ds, dt = np.zeros_like(s), np.zeros_like(t)
    dX = np.zeros_like(X)
    for J, K in tiles(G.shape[0], H.shape[0]):
        C, M = _cauchy_tile(s, t, G, H, J, K)
        dX[K] += M.T @ dYc[J]
        W = dYc[J] @ X[K].T
        W *= C
        dG[J] += W @ H[K]
        dH[K] += W.T @ G[J]
        W *= M
        ds[J] -= W.sum(axis=1)
        dt[K] += W.sum(axis=0)
    out = {"G": dG, "H": dH, "s": ds, "t": dt, "X": dX}
    if np.dtype(dtype).kind == "c":
        out = {k: np.conj(v) for k, v in out.items()}
    return out


def _nearest_collision(s: np.ndarray, t: np.ndarray, tiny: float) -> tuple[int, int] | None:
    """``(j, k)`` of the closest pair ``|s_j - t_k| <= tiny * max(|s|, |t|)``, else None.

    The threshold is relative to the node scale (so nodes near 1e-20 or 1e300
    are judged like nodes near 1). O((m + n) log n) time and O(m + n) memory:
    sorted ``t`` and ``searchsorted`` for real nodes, a k-d tree on
    ``(Re, Im)`` for complex ones (the m x n distance matrix is never formed).
    """
    scale = max(float(max_abs(s)), float(max_abs(t)))
    if scale == 0.0:
        return (0, 0)
    e = int(pow2_exponent(scale))
    sn, tn = ldexp(s, -e), ldexp(t, -e)  # exact; |nodes| <= 1, no overflow in |s - t|
    if sn.dtype.kind != "c" and tn.dtype.kind != "c":
        order = np.argsort(tn, kind="stable")
        ts = tn[order]
        i = np.searchsorted(ts, sn)
        lo, hi = np.clip(i - 1, 0, ts.size - 1), np.clip(i, 0, ts.size - 1)
        dlo, dhi = np.abs(sn - ts[lo]), np.abs(sn - ts[hi])
        near = np.where(dlo <= dhi, lo, hi)
        gap = np.minimum(dlo, dhi)
        j = int(np.argmin(gap))
        k = int(order[near[j]])
        best = float(gap[j])
    else:
        from scipy.spatial import cKDTree

        pts = lambda z: np.column_stack([np.real(z), np.imag(z)]).astype(np.float64)  # noqa: E731
        dist, idx = cKDTree(pts(tn)).query(pts(sn), k=1)
        j = int(np.argmin(dist))
        k = int(idx[j])
        best = float(np.abs(sn[j] - tn[k]))
    return (j, k) if best <= tiny else None


def interlaced_nodes(rng: np.random.Generator, m: int, n: int, dtype: Any):
    """Random nodes ``s`` (m,), ``t`` (n,) interlaced on [0, 1]: ``s_j`` within
    ``0.25 / N`` of ``j / N``, ``t_k`` within ``0.25 / N`` of ``(k + 1/2) / N``
    (``N = max(m, n)``; complex dtype: plus imaginary parts in [-0.1, 0.1]).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.cauchy import interlaced_nodes
    >>> s, t = interlaced_nodes(np.random.default_rng(0), 3, 3, np.float64)
    >>> s.shape, t.shape, bool(np.all(np.abs(s[:, None] - t[None, :]) > 0))
    ((3,), (3,), True)
    """
    N = max(m, n)
    s = (np.arange(m) + 0.25 * rng.uniform(-1, 1, m)) / N
    t = (np.arange(n) + 0.5 + 0.25 * rng.uniform(-1, 1, n)) / N
    if np.dtype(dtype).kind == "c":
        s = s + 0.1j * rng.uniform(-1, 1, m)
        t = t + 0.1j * rng.uniform(-1, 1, n)
    return s, t


class CauchyFamily(LDRFamily):
    r"""Cauchy-like: Sylvester ``(D(s), D(t))``, all ``s_j != t_k``.

    :math:`M_{jk} = \sum_i G_{ji} H_{ki} / (s_j - t_k)`; any m x n. Solve: GKO.

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import CauchyFamily
    >>> CauchyFamily.recognises(ld.Diagonal([1.0]), ld.Diagonal([0.0]), "sylvester")
    True
    """

    name = "cauchy"
    pairs = "cauchy: (Diagonal(s), Diagonal(t)) sylvester"
    square = False

    @classmethod
    def recognises(cls, A, B, kind):
        return kind == "sylvester" and is_op(A, Diagonal) and is_op(B, Diagonal)

    @classmethod
    def singular_reason(cls, A, B, kind):
        hit = _nearest_collision(A.d, B.d, 64 * np.finfo(float).eps)
        if hit is None:
            return None
        j, k = hit
        s, t = A.d, B.d
        return (
            f"the eigenvalues collide: s[{j}] = {s[j].item()!r} equals "
            f"t[{k}] = {t[k].item()!r} (relative to max(|s|, |t|)); "
            "the Cauchy (Sylvester) map D(s) M - M D(t) needs s_j != t_k for all j, k"
        )

    @classmethod
    def normalize_operators(cls, A, B):
        # nodes near 1e300 (or 1e-300): M(2**-e s, 2**-e t) = 2**e M(s, t), exactly
        eN = norm_exponent(np.concatenate([A.d, B.d]))
        if eN:
            return Diagonal(ldexp(A.d, -eN)), Diagonal(ldexp(B.d, -eN)), eN
        return A, B, 0

    @classmethod
    def example(cls, rng, n, r, dtype):
        s, t = interlaced_nodes(rng, n, n, dtype)
        G, H = randn(rng, (n, r), dtype), randn(rng, (n, r), dtype)
        return Diagonal(s), Diagonal(t), G, H, "sylvester"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A, B, G, H, kind)
        self.s, self.t = A.d, B.d

    def matmat(self, X):
        return cauchy_matmat(self.s, self.t, self.G, self.H, X)

    def rmatmat(self, Y):
        return cauchy_rmatmat(self.s, self.t, self.G, self.H, Y)

    def toarray(self):
        return (self.G @ self.H.T) / (self.s[:, None] - self.t[None, :])

    def vjp(self, X, dY):
        d = cauchy_vjp(self.s, self.t, self.G, self.H, X, dY)
        return {"G": d["G"], "H": d["H"], "A": d["s"], "B": d["t"], "X": d["X"]}

    def solve(self, B, *, transposed, where):
        if transposed:  # M^T is Cauchy-like with nodes (t, s), generators (-H, G)
            return gko(self.t, self.s, -self.H, self.G, B, where)
        return gko(self.s, self.t, self.G, self.H, B, where)
