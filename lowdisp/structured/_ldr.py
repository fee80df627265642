"""The LDRMatrix linear operator and its per-family plans."""

from __future__ import annotations

import numbers
from collections import namedtuple
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from lowdisp._config import result_dtype
from lowdisp._validation import (
    as_array,
    check_option,
    ldexp,
    max_abs,
    pow2_exponent,
    safe_exponent,
)
from lowdisp.exceptions import RankError, SingularOperatorError
from lowdisp.structured import _engine as E
from lowdisp.structured._fast import _alpha_beta
from lowdisp.structured._operators import (
    Diagonal,
    DisplacementOperator,
    Shift,
    Subdiagonal,
    TransposedOperator,
    Tridiagonal,
)

__all__ = ["Generators", "LDRMatrix"]

#: The generator pair of an LDR matrix: ``G`` is (m, r), ``H`` is (n, r).
Generators = namedtuple("Generators", ["G", "H"])
Generators.__doc__ = """Generators ``(G, H)`` of an LDR matrix (``G @ H.T`` is the displacement).

Examples
--------
>>> import numpy as np
>>> from lowdisp.structured import Generators
>>> Generators(np.ones((3, 1)), np.ones((3, 1))).G.shape
(3, 1)
"""

KINDS = ("sylvester", "stein")

SUPPORTED_PAIRS = (
    "toeplitz: (Shift(n, e), Shift(n, f)) sylvester with e != f, or "
    "(Shift(n, e), Shift(n, f).T) stein with e*f != 1, rectangular (Shift(m), Shift(n).T) stein; "
    "hankel: (Shift(n, e).T, Shift(n, f)) or (Shift(n, e), Shift(n, f).T) sylvester, "
    "(Shift(n, e).T, Shift(n, f).T) or (Shift(n, e), Shift(n, f)) stein; "
    "cauchy: (Diagonal(s), Diagonal(t)) sylvester; "
    "vandermonde: (Diagonal(v), Shift(n, 0).T) stein; "
    "subdiagonal: (Subdiagonal(a, fa), Subdiagonal(b, fb).T) stein; "
    "tridiagonal: (Tridiagonal(...), Tridiagonal(...).T) stein; "
    "and the transposes of these pairs"
)


def _fcirc_dense(v: np.ndarray, f: complex) -> np.ndarray:
    """The f-circulant ``Z_f(v)``: entries ``v_{i-j}`` (i >= j) and ``f v_{n+i-j}`` (i < j)."""
    n = v.shape[0]
    i, j = np.indices((n, n))
    out = v[(i - j) % n]
    return np.where(i >= j, out, f * out)


# --------------------------------------------------------------------------
# family plans (the "original view" of a pair; transposed pairs wrap one)
# --------------------------------------------------------------------------


class _ToeplitzFamily:
    family = "toeplitz"

    def __init__(self, A, B, G, H, kind):
        self.e = A.f
        self.f = B.f if kind == "sylvester" else B.base.f
        self.kind, self.G, self.H = kind, G, H
        self.plan = E.ToeplitzPlan(G, H, self.e, self.f, kind)

    def matmat(self, X):
        return self.plan.matmat(X)

    def rmatmat(self, Y):
        return self.plan.rmatmat(Y)

    def toarray(self):
        G, H, e, f = self.G, self.H, self.e, self.f
        out = np.zeros((G.shape[0], H.shape[0]), dtype=result_dtype(G, H, e, f))
        for i in range(G.shape[1]):
            if self.kind == "sylvester":
                out += _fcirc_dense(G[:, i], e) @ _fcirc_dense(H[::-1, i], f)
            else:
                out += _fcirc_dense(G[:, i], e) @ _fcirc_dense(H[:, i], f).T
        c = 1.0 / (e - f) if self.kind == "sylvester" else 1.0 / (1.0 - e * f)
        out *= c
        if not np.isfinite(out).all():
            # a corner near the overflow threshold: e * g overflows in the dense
            # f-circulants although M itself is moderate; the FFT plan scales it
            out = self.matmat(np.eye(H.shape[0], dtype=out.dtype))
        return out

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(X, dY)
        return {"G": dG, "H": dH, "X": dX}


class _RectToeplitzFamily:
    """Rectangular Stein Toeplitz-like, pair (Z_0 (m), Z_0^T (n)).

    ``M`` is the leading m x n block of the N x N (N = max(m, n)) Stein
    Toeplitz-like matrix with zero-padded generators, because truncation
    commutes with the down-shift: ``(Z_0^k [G; 0])[:m] = Z_0^k G``.
    """

    family = "toeplitz"

    def __init__(self, A, B, G, H, kind):
        self.m, self.n = G.shape[0], H.shape[0]
        self.N = max(self.m, self.n)
        self.G, self.H, self.e, self.f, self.kind = G, H, 0.0, 0.0, kind
        self.plan = E.ToeplitzPlan(self._pad(G), self._pad(H), 0.0, 0.0, "stein")

    def _pad(self, X):
        if X.shape[0] == self.N:
            return X
        out = np.zeros((self.N, *X.shape[1:]), dtype=X.dtype)
        out[: X.shape[0]] = X
        return out

    def matmat(self, X):
        return self.plan.matmat(self._pad(X))[: self.m]

    def rmatmat(self, Y):
        return self.plan.rmatmat(self._pad(Y))[: self.n]

    def toarray(self):
        G, H = self.G, self.H
        out = np.zeros((self.m, self.n), dtype=result_dtype(G, H))
        for i in range(G.shape[1]):
            out += (
                _fcirc_dense(self._pad(G[:, i]), 0.0)[: self.m]
                @ _fcirc_dense(self._pad(H[:, i]), 0.0)[: self.n].T
            )
        return out

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(self._pad(X), self._pad(dY))
        return {"G": dG[: self.m], "H": dH[: self.n], "X": dX[: self.n]}


class _HankelFamily(_ToeplitzFamily):
    family = "hankel"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A.base, B, G[::-1], H, kind)

    def matmat(self, X):
        return self.plan.matmat(X)[::-1]

    def rmatmat(self, Y):
        return self.plan.rmatmat(Y[::-1])

    def toarray(self):
        return super().toarray()[::-1].copy()

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(X, dY[::-1])
        return {"G": dG[::-1].copy(), "H": dH, "X": dX}


class _HankelRightFamily(_ToeplitzFamily):
    """M = T J (T Toeplitz-like with generators (G, J H)): pairs (Z_e, Z_f^T) / Stein (Z_e, Z_f)."""

    family = "hankel"

    def __init__(self, A, B, G, H, kind):
        Bt = B.base if kind == "sylvester" else B.T
        super().__init__(A, Bt, G, H[::-1], kind)

    def matmat(self, X):
        return self.plan.matmat(X[::-1])

    def rmatmat(self, Y):
        return self.plan.rmatmat(Y)[::-1]

    def toarray(self):
        return super().toarray()[:, ::-1].copy()

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(X[::-1], dY)
        return {"G": dG, "H": dH[::-1].copy(), "X": dX[::-1].copy()}


class _CauchyFamily:
    family = "cauchy"

    def __init__(self, A, B, G, H, kind):
        self.s, self.t, self.G, self.H = A.d, B.d, G, H

    def matmat(self, X):
        return E.cauchy_matmat(self.s, self.t, self.G, self.H, X)

    def rmatmat(self, Y):
        return E.cauchy_rmatmat(self.s, self.t, self.G, self.H, Y)

    def toarray(self):
        return (self.G @ self.H.T) / (self.s[:, None] - self.t[None, :])

    def vjp(self, X, dY):
        d = E.cauchy_vjp(self.s, self.t, self.G, self.H, X, dY)
        return {"G": d["G"], "H": d["H"], "A": d["s"], "B": d["t"], "X": d["X"]}


class _VandermondeFamily:
    family = "vandermonde"

    def __init__(self, A, B, G, H, kind):
        self.v, self.G, self.H = A.d, G, H

    def matmat(self, X):
        return E.vandermonde_matmat(self.v, self.G, self.H, X)

    def rmatmat(self, Y):
        return E.vandermonde_rmatmat(self.v, self.G, self.H, Y)

    def toarray(self):
        n = self.H.shape[0]
        V = E._vander(self.v, n)
        out = np.zeros((self.G.shape[0], n), dtype=result_dtype(self.G, self.H, V))
        for i in range(self.G.shape[1]):
            out += (self.G[:, i, None] * V) @ _fcirc_dense(self.H[:, i], 0.0).T
        return out

    def vjp(self, X, dY):
        d = E.vandermonde_vjp(self.v, self.G, self.H, X, dY)
        return {"G": d["G"], "H": d["H"], "A": d["v"], "X": d["X"]}


class _KrylovFamily:
    """M = c sum_k A^k G H^T (B'^T)^k (B' = B^T), the Krylov-sum families."""

    def __init__(self, A, B, G, H, kind):
        self.Aop, self.Bp, self.G, self.H = A, B.base, G, H

    def _c(self):
        return 1.0

    def toarray(self):
        n = self.G.shape[0]
        Gs, Hs = [self.G], [self.H]
        for _ in range(n - 1):
            Gs.append(self.Aop._apply(Gs[-1]))
            Hs.append(self.Bp._apply(Hs[-1]))
        return self._c() * (np.hstack(Gs) @ np.hstack(Hs).T)


class _SubdiagonalFamily(_KrylovFamily):
    family = "subdiagonal"

    def _args(self):
        return (self.Aop.s, self.Aop.f, self.Bp.s, self.Bp.f)

    def _c(self):
        return E._krylov_scale(*self._args())[2]

    def matmat(self, X):
        return E.subdiag_matmat(*self._args(), self.G, self.H, X)

    def rmatmat(self, Y):
        return E.subdiag_rmatmat(*self._args(), self.G, self.H, Y)

    def vjp(self, X, dY):
        d = E.subdiag_vjp(*self._args(), self.G, self.H, X, dY)
        return {"G": d["G"], "H": d["H"], "A": d["a"], "B": d["b"], "X": d["X"]}


class _TridiagonalFamily(_KrylovFamily):
    family = "tridiagonal"

    def _args(self):
        p = lambda T: (T.lower, T.main, T.upper, T.f)  # noqa: E731
        return (p(self.Aop), p(self.Bp))

    def matmat(self, X):
        return E.tridiag_matmat(*self._args(), self.G, self.H, X)

    def rmatmat(self, Y):
        return E.tridiag_rmatmat(*self._args(), self.G, self.H, Y)

    def vjp(self, X, dY):
        return E.tridiag_vjp(*self._args(), self.G, self.H, X, dY)


def _is(op: Any, cls: type, transposed: bool) -> bool:
    if transposed:
        return isinstance(op, TransposedOperator) and type(op.base) is cls
    return type(op) is cls


def _detect(A: Any, B: Any, kind: str) -> type | None:
    """The family plan class of the pair (A, B) in its original orientation."""
    if (
        A.n != B.n
        and kind == "stein"
        and _is(A, Shift, False)
        and _is(B, Shift, True)
        and A.f == 0
        and B.base.f == 0
    ):
        return _RectToeplitzFamily
    if kind == "sylvester":
        if _is(A, Shift, False) and _is(B, Shift, False):
            return _ToeplitzFamily
        if _is(A, Shift, True) and _is(B, Shift, False):
            return _HankelFamily
        if _is(A, Shift, False) and _is(B, Shift, True):
            return _HankelRightFamily
        if _is(A, Diagonal, False) and _is(B, Diagonal, False):
            return _CauchyFamily
        return None
    if _is(A, Shift, False) and _is(B, Shift, True):
        return _ToeplitzFamily
    if _is(A, Shift, True) and _is(B, Shift, True):
        return _HankelFamily
    if _is(A, Shift, False) and _is(B, Shift, False):
        return _HankelRightFamily
    if _is(A, Diagonal, False) and _is(B, Shift, True) and B.base.f == 0:
        return _VandermondeFamily
    if _is(A, Subdiagonal, False) and _is(B, Subdiagonal, True):
        return _SubdiagonalFamily
    if _is(A, Tridiagonal, False) and _is(B, Tridiagonal, True):
        return _TridiagonalFamily
    return None


_SQUARE = (
    _ToeplitzFamily,
    _HankelFamily,
    _HankelRightFamily,
    _SubdiagonalFamily,
    _TridiagonalFamily,
)


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


def _check_invertible(family: type, A: Any, B: Any, kind: str, where: str) -> None:
    """Raise SingularOperatorError when the displacement map of the pair is singular."""
    pre = f"{where}: the displacement map is singular: "
    tiny = 64 * np.finfo(float).eps
    if family in (_ToeplitzFamily, _HankelFamily, _HankelRightFamily):
        Aop: Any = A.base if isinstance(A, TransposedOperator) else A
        Bop: Any = B.base if isinstance(B, TransposedOperator) else B
        e, f = Aop.f, Bop.f
        # |e - f| relative to max(1, |e|, |f|), computed on e / s, f / s (no overflow)
        sc = max(1.0, *(max(abs(float(np.real(z))), abs(float(np.imag(z)))) for z in (e, f)))
        es, fs = e / sc, f / sc
        if kind == "sylvester" and abs(es - fs) <= tiny * max(1.0 / sc, abs(es), abs(fs)):
            raise SingularOperatorError(
                f"{pre}Z_e and Z_f have the same eigenvalues (the n-th roots of e = f = {e!r}); "
                "the Sylvester map Z_e M - M Z_f needs e != f"
            )
        if kind == "stein" and abs(1 - e * f) <= tiny:
            raise SingularOperatorError(
                f"{pre}the eigenvalues of Z_e and Z_f multiply to 1 (e * f = {e * f!r}); "
                "the Stein map M - Z_e M Z_f^T needs e * f != 1"
            )
    elif family is _CauchyFamily:
        hit = _nearest_collision(A.d, B.d, tiny)
        if hit is not None:
            j, k = hit
            s, t = A.d, B.d
            raise SingularOperatorError(
                f"{pre}the eigenvalues collide: s[{j}] = {s[j].item()!r} equals "
                f"t[{k}] = {t[k].item()!r} (relative to max(|s|, |t|)); "
                "the Cauchy (Sylvester) map D(s) M - M D(t) needs s_j != t_k for all j, k"
            )
    elif family is _SubdiagonalFamily:
        ab = _alpha_beta(A.s, A.f, B.base.s, B.base.f)  # no overflow of prod(s)
        if abs(1 - ab) <= tiny:
            raise SingularOperatorError(
                f"{pre}A^n = alpha I and B^n = beta I with alpha * beta = {ab:.6g} == 1, "
                "so eigenvalues of A and B multiply to 1; the Stein map M - A M B needs "
                "alpha * beta != 1 (change a corner fa or fb)"
            )


def _norm_exponent(X: np.ndarray) -> int:
    """Power-of-two exponent that brings ``max|X|`` near 1, or 0 in the safe range.

    Dividing by ``2**e`` is exact, so the fast paths run on O(1) data
    (no overflow or underflow inside FFTs, Krylov recurrences or GEMMs) and
    the result is scaled back; moderate inputs are left untouched.
    """
    if X.size == 0:
        return 0
    m = float(max_abs(X))
    if m == 0.0 or not np.isfinite(m):
        return 0
    e = int(pow2_exponent(m))
    return e if abs(e) > safe_exponent(np.empty(0, X.dtype).real.dtype) // 2 else 0


def _balance(G: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-column power-of-two exponents ``(a, b, S)`` with ``a + b = S`` for every column.

    ``M`` is a sum of terms bilinear in the column pairs ``(g_i, h_i)``, so
    ``g_i 2**-a_i`` and ``h_i 2**-b_i`` define ``2**-S M`` exactly. The columns
    are balanced: both factors of the largest term come near 1, a smaller
    term keeps its true relative size (a column of G at 1e300 next to one at
    1e-300, as in a product of scaled matrices, no longer underflows to 0).
    All zero in the safe range (moderate inputs are left bit-for-bit alone).
    """
    r = G.shape[1]
    zero = np.zeros(r, dtype=np.int64)
    if G.size == 0 or H.size == 0:
        return zero, zero, 0
    cg, ch = max_abs(G, axis=0), max_abs(H, axis=0)
    eg, eh = pow2_exponent(cg), pow2_exponent(ch)
    thr = safe_exponent(np.empty(0, G.dtype).real.dtype) // 2
    if max(int(np.abs(eg).max()), int(np.abs(eh).max())) <= thr:
        return zero, zero, 0
    live = (cg > 0) & (ch > 0)
    p = eg + eh
    S = int(p[live].max()) if live.any() else 0
    half = (p - S) // 2  # <= 0: the term's relative size, split between the factors
    a = eg - half
    # a zero column: the other factor still carries the gradient; bring it near 1
    a = np.where(live, a, np.where(cg > 0, eg, S - eh))
    return a.astype(np.int64), (S - a).astype(np.int64), S


#: inside the plans, overflow is not warned about: _scale_back checks the result and
#: raises OverflowError when it is not representable for finite input
def _overflow_checked() -> Any:
    return np.errstate(over="ignore", invalid="ignore")


def _scale_back(Y: np.ndarray, e: Any, where: str, inputs: tuple = ()) -> np.ndarray:
    """``Y * 2**e``, exactly; a result that is not representable is an error.

    Raises ``OverflowError`` when the result has NaN/Inf although ``inputs``
    (the operands; the generators are finite by construction) are finite:
    the true result exceeds the range of its dtype (the scaling overflowed,
    or e.g. Vandermonde powers of large nodes did).
    """
    if np.all(np.asarray(e) == 0):
        out = Y
    else:
        with np.errstate(over="ignore", under="ignore"):
            out = ldexp(Y, e)
    if not np.isfinite(out).all() and all(np.isfinite(x).all() for x in inputs):
        raise OverflowError(
            f"{where}: the result is not representable in {Y.dtype} (entries beyond "
            f"{np.finfo(Y.dtype).max:.3g} for finite input); rescale the operands"
        )
    return out


def _dtype(G: np.ndarray, H: np.ndarray, *ops: DisplacementOperator) -> np.dtype:
    """Result dtype: generators and learnable operator parameters decide the
    precision; a fixed operator (Shift) only contributes complexness (its corner
    is a Python scalar, which must not upcast float32 generators)."""
    parts: list[Any] = [G, H]
    for op in ops:
        if op.params.size:
            parts.append(op.params)
        if op.dtype.kind == "c":
            parts.append(np.complex64)
    return result_dtype(*parts)


def _is_scalar(x: Any) -> bool:
    """A number or a 0-d numeric array (strings and other objects are not scalars)."""
    if isinstance(x, bool | np.bool_):
        return False
    if isinstance(x, numbers.Number):
        return True
    return isinstance(x, np.ndarray | np.generic) and x.ndim == 0 and x.dtype.kind in "iufc"


class LDRMatrix(LinearOperator):
    r"""A matrix of low displacement rank, stored by its operators and generators.

    ``M`` is the (m, n) matrix with ``A M - M B = G H^T`` (``kind="sylvester"``)
    or ``M - A M B = G H^T`` (``kind="stein"``). It is a
    :class:`scipy.sparse.linalg.LinearOperator`: products, transposes and
    gradients never form the dense matrix.

    Parameters
    ----------
    A : DisplacementOperator
        Left operator, order m.
    B : DisplacementOperator
        Right operator, order n.
    G : (m, r) array_like
        Left generator (a 1-D array counts as one column).
    H : (n, r) array_like
        Right generator.
    kind : {"sylvester", "stein"}
        The displacement equation.

    Attributes
    ----------
    A, B : DisplacementOperator
    generators : Generators
        The named tuple ``(G, H)``.
    rank : int
        The number of generator columns r (an upper bound on the displacement rank).
    kind : str
    family : str
        ``"toeplitz"``, ``"hankel"``, ``"cauchy"``, ``"vandermonde"``,
        ``"subdiagonal"`` or ``"tridiagonal"`` (the operator pair).
    compression_error : float or None
        Relative error discarded by :func:`compress` / :func:`recompress`.

    Notes
    -----
    Supported pairs and their reconstruction formulas (``toarray``, and the
    matrix every fast product applies); J is the flip, ``Z_f(v)`` the
    f-circulant with first column v, ``L(v) = Z_0(v)``, ``K(A, v)`` the Krylov
    matrix:

    * Toeplitz-like, Sylvester ``(Z_e, Z_f)``, e != f:
      :math:`M = (e-f)^{-1}\sum_i Z_e(g_i) Z_f(J h_i)` (Pan 2001, Thm 4.5.1;
      Sindhwani et al. 2015).
    * Toeplitz-like, Stein ``(Z_e, Z_f^T)``, e f != 1:
      :math:`M = (1-ef)^{-1}\sum_i Z_e(g_i) Z_f(h_i)^T` (Kailath-Kung-Morf 1979).
      Rectangular (m != n) with ``(Z_0, Z_0^T)``: the leading m x n block of the
      square case with zero-padded generators.
    * Hankel-like ``(Z_e^T, Z_f)`` (or Stein ``(Z_e^T, Z_f^T)``): ``M = J T`` with T
      Toeplitz-like with generators ``(J G, H)``.
    * Cauchy-like ``(D(s), D(t))``: :math:`M_{jk} = g_j^T h_k / (s_j - t_k)`.
    * Vandermonde-like, Stein ``(D(v), Z_0^T)``:
      :math:`M = \sum_i \mathrm{diag}(g_i) V(v) L(h_i)^T`, :math:`V_{jk} = v_j^k`.
    * Subdiagonal, Stein ``(A, B'^T)`` with :math:`A^n=\alpha I, B'^n=\beta I`:
      :math:`M = (1-\alpha\beta)^{-1}\sum_i K(A, g_i) K(B', h_i)^T`.
    * Tridiagonal ``(A, B'^T)``: the Krylov sum
      :math:`M = \sum_i K(A, g_i) K(B', h_i)^T` of Thomas et al. (2018). This is
      *not* the Stein solution: :math:`M - A M B'^T = GH^T - A^n G H^T (B'^T)^n`,
      so its Stein displacement rank is at most 2r.

    The transpose of each pair is supported too (``M.T`` has operators
    ``(B^T, A^T)`` and generators ``(-H, G)`` (Sylvester) or ``(H, G)``
    (Stein)).

    References
    ----------
    T. Kailath, S.-Y. Kung, M. Morf, "Displacement ranks of matrices and linear
    equations", J. Math. Anal. Appl. 68 (1979). V. Pan, *Structured Matrices and
    Polynomials*, Birkhäuser 2001. A. Thomas, A. Gu, T. Dao, A. Rudra, C. Ré,
    "Learning compressed transforms with low displacement rank", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> n = 4
    >>> G, H = np.ones((n, 1)), np.arange(1.0, n + 1)[:, None]
    >>> M = ld.LDRMatrix(ld.Shift(n, 1.0), ld.Shift(n, -1.0), G, H)
    >>> M.family, M.rank, M.shape
    ('toeplitz', 1, (4, 4))
    >>> D = M.displacement()
    >>> bool(np.allclose(D, G @ H.T))
    True
    >>> bool(np.allclose(M @ np.ones(n), M.toarray() @ np.ones(n)))
    True
    """

    def __init__(
        self,
        A: DisplacementOperator,
        B: DisplacementOperator,
        G: Any,
        H: Any,
        *,
        kind: str = "sylvester",
        compression_error: float | None = None,
        _where: str = "LDRMatrix",
    ) -> None:
        w = _where
        check_option(kind, "kind", KINDS, where=w)
        for name, op in (("A", A), ("B", B)):
            if not isinstance(op, DisplacementOperator):
                raise TypeError(
                    f"{w}: {name} must be a displacement operator (Shift, Diagonal, "
                    f"Subdiagonal, Tridiagonal or their .T); got {type(op).__name__}"
                )
        Ga = as_array(G, "G", where=w, ndim=(1, 2))
        Ha = as_array(H, "H", where=w, ndim=(1, 2))
        Ga = Ga[:, None] if Ga.ndim == 1 else Ga
        Ha = Ha[:, None] if Ha.ndim == 1 else Ha
        m, n = A.n, B.n
        if Ga.shape[0] != m:
            raise ValueError(
                f"{w}: G must have A.n = {m} rows (the row count of M); got G.shape={Ga.shape}"
            )
        if Ha.shape[0] != n:
            raise ValueError(
                f"{w}: H must have B.n = {n} rows (the column count of M); got H.shape={Ha.shape}"
            )
        if Ga.shape[1] != Ha.shape[1]:
            raise ValueError(
                f"{w}: G and H must have the same number of columns (the displacement rank); "
                f"got G.shape={Ga.shape}, H.shape={Ha.shape}"
            )
        r = Ga.shape[1]
        if not 1 <= r <= min(m, n):
            raise RankError(
                f"{w}: the rank (number of generator columns) must be in [1, min(m, n) = "
                f"{min(m, n)}]; got {r}"
            )
        plan_cls, transposed = _detect(A, B, kind), False
        if plan_cls is None:
            plan_cls, transposed = _detect(B.T, A.T, kind), True
        if plan_cls is None:
            raise ValueError(
                f"{w}: unsupported operator pair ({A!r}, {B!r}) for kind={kind!r}; "
                f"supported: {SUPPORTED_PAIRS}"
            )
        if plan_cls in _SQUARE and m != n:
            raise ValueError(
                f"{w}: the {plan_cls.family} family needs operators of the same size; "
                f"got A.n = {m}, B.n = {n}"
            )
        if transposed:
            _check_invertible(plan_cls, B.T, A.T, kind, w)
        else:
            _check_invertible(plan_cls, A, B, kind, w)
        dtype = _dtype(Ga, Ha, A, B)
        Ga, Ha = Ga.astype(dtype, copy=True), Ha.astype(dtype, copy=True)
        Ga.setflags(write=False)
        Ha.setflags(write=False)
        self.A, self.B, self.kind = A, B, kind
        self.generators = Generators(Ga, Ha)
        self.rank = r
        self.compression_error = compression_error
        self._transposed = transposed
        if transposed:
            G0, H0 = (-Ha, Ga) if kind == "sylvester" else (Ha, Ga)
            pA, pB = B.T, A.T
        else:
            G0, H0, pA, pB = Ga, Ha, A, B
        # the plan works on power-of-two normalized data (exact): M = 2**_pexp M_plan
        eG, eH, S = _balance(G0, H0)
        eN = 0
        if plan_cls is _CauchyFamily:
            eN = _norm_exponent(np.concatenate([pA.d, pB.d]))
            if eN:
                pA, pB = Diagonal(ldexp(pA.d, -eN)), Diagonal(ldexp(pB.d, -eN))
        self._pe = (eG, eH, eN)
        self._pexp = S - eN
        scaled = S != 0 or eG.any() or eH.any()
        G0, H0 = (ldexp(G0, -eG), ldexp(H0, -eH)) if scaled else (G0, H0)
        self._plan = plan_cls(pA, pB, G0, H0, kind)
        self.family = self._plan.family
        super().__init__(dtype, (m, n))

    # -- products -------------------------------------------------------
    # One input conversion for every product entry point (issue 10): ndarray
    # subclasses become plain arrays (np.matrix would otherwise come back as a
    # matrix), masked arrays are refused (np.asarray would expose the masked
    # values), non-numeric input is a TypeError naming the method. NaN/Inf in
    # the operand propagate like in a dense product.
    def _operand(
        self, x: Any, method: str, ndim: Any = (1, 2), rows: int | None = None
    ) -> np.ndarray:
        w = f"LDRMatrix.{method}"
        arr = as_array(x, "x", where=w, ndim=ndim, finite=False)
        if rows is not None and arr.shape[0] != rows:
            m, n = self.shape
            raise ValueError(
                f"{w}: x must have {rows} rows (M is {m} x {n}); got shape {arr.shape}"
            )
        if method.endswith("matvec") and arr.ndim == 2 and arr.shape[1] != 1:
            raise ValueError(f"{w}: x must have shape ({rows},) or ({rows}, 1); got {arr.shape}")
        return arr

    def matvec(self, x: Any) -> np.ndarray:
        return super().matvec(self._operand(x, "matvec", rows=self.shape[1]))

    def rmatvec(self, x: Any) -> np.ndarray:
        return super().rmatvec(self._operand(x, "rmatvec", rows=self.shape[0]))

    def matmat(self, X: Any) -> np.ndarray:
        return super().matmat(self._operand(X, "matmat", ndim=2, rows=self.shape[1]))

    def rmatmat(self, X: Any) -> np.ndarray:
        return super().rmatmat(self._operand(X, "rmatmat", ndim=2, rows=self.shape[0]))

    def _prep(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        dt = result_dtype(X.dtype, self.dtype)
        return X.astype(dt, copy=False)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        X = self._prep(X)
        if X.shape[1] == 0:
            return np.zeros((self.shape[0], 0), dtype=X.dtype)
        ex = _norm_exponent(X)
        Xn = ldexp(X, -ex) if ex else X
        with _overflow_checked():  # a non-representable result is reported below
            if self._transposed:
                Y = np.conj(self._plan.rmatmat(np.conj(Xn)))
            else:
                Y = self._plan.matmat(Xn)
        return _scale_back(Y, self._pexp + ex, "LDRMatrix.matmat", (X,))

    def _rmatmat(self, Y: np.ndarray) -> np.ndarray:
        Y = self._prep(Y)
        if Y.shape[1] == 0:
            return np.zeros((self.shape[1], 0), dtype=Y.dtype)
        ey = _norm_exponent(Y)
        Yn = ldexp(Y, -ey) if ey else Y
        with _overflow_checked():
            if self._transposed:
                X = np.conj(self._plan.matmat(np.conj(Yn)))
            else:
                X = self._plan.rmatmat(Yn)
        return _scale_back(X, self._pexp + ey, "LDRMatrix.rmatmat", (Y,))

    def _plan_vjp(self, X: np.ndarray, dY: np.ndarray) -> dict[str, np.ndarray]:
        """The plan's vjp (plan orientation) on normalized data, scaled back exactly.

        ``L = 2**S L_n`` with ``S = _pexp + ex + ey``; a block normalized by
        ``2**e`` gets the factor ``2**(S - e)``.
        """
        if X.shape[1] == 0:  # k = 0: zero gradients of the right shapes and dtypes
            d = dict(
                self._plan.vjp(
                    np.zeros((X.shape[0], 1), X.dtype), np.zeros((dY.shape[0], 1), dY.dtype)
                )
            )
            d["X"] = d["X"][:, :0]
            return d
        ex, ey = _norm_exponent(X), _norm_exponent(dY)
        with _overflow_checked():
            d = dict(self._plan.vjp(ldexp(X, -ex) if ex else X, ldexp(dY, -ey) if ey else dY))
        S = self._pexp + ex + ey
        eG, eH, eN = self._pe
        shifts = {"G": S - eG, "H": S - eH, "X": S - ex, "A": S - eN, "B": S - eN}
        w = "LDRMatrix.vjp"
        return {k: _scale_back(np.asarray(v), shifts.get(k, S), w, (X, dY)) for k, v in d.items()}

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(x).reshape(-1, 1))[:, 0]

    def _rmatvec(self, y: np.ndarray) -> np.ndarray:
        return self._rmatmat(np.asarray(y).reshape(-1, 1))[:, 0]

    def _transpose(self) -> LDRMatrix:
        G, H = self.generators
        G1, H1 = (-H, G) if self.kind == "sylvester" else (H, G)
        return LDRMatrix(self.B.T, self.A.T, G1, H1, kind=self.kind)

    def _adjoint(self) -> LDRMatrix:
        G, H = self.generators
        G1, H1 = (-H, G) if self.kind == "sylvester" else (H, G)
        return LDRMatrix(self.B.T.conj(), self.A.T.conj(), np.conj(G1), np.conj(H1), kind=self.kind)

    def conj(self) -> LDRMatrix:
        """The entrywise complex conjugate (an LDRMatrix with conjugated operators).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> M = ld.circulant([1.0 + 1j, 2.0, 3.0])
        >>> bool(np.allclose(M.conj().toarray(), M.toarray().conj()))
        True
        """
        G, H = self.generators
        return LDRMatrix(self.A.conj(), self.B.conj(), np.conj(G), np.conj(H), kind=self.kind)

    # -- dense views ----------------------------------------------------
    def toarray(self) -> np.ndarray:
        """The dense (m, n) matrix by the family's reconstruction formula (see Notes).

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.toeplitz([1.0, 2.0], [1.0, 3.0]).toarray()
        array([[1., 3.],
               [2., 1.]])
        """
        with _overflow_checked():
            M = self._plan.toarray()
        M = _scale_back(M, self._pexp, "LDRMatrix.toarray")
        return np.ascontiguousarray(M.T) if self._transposed else M

    def displacement(self) -> np.ndarray:
        """The dense residual ``A M - M B`` (Sylvester) or ``M - A M B`` (Stein).

        Equals ``G @ H.T`` up to rounding (for the tridiagonal Krylov-sum family
        it differs by a term of rank <= r, see the class Notes).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> M = ld.cauchy([1.0, 2.0], [0.0, -1.0])
        >>> bool(np.allclose(M.displacement(), np.ones((2, 2))))
        True
        """
        M = self.toarray()
        AM = self.A._apply(M)
        MB = np.conj(self.B._apply_adjoint(np.conj(M).T)).T  # M B = (B^T M^T)^T
        if self.kind == "sylvester":
            return AM - MB
        return M - np.conj(self.B._apply_adjoint(np.conj(AM).T)).T

    # -- gradients ------------------------------------------------------
    def _prep_pair(self, X: Any, dY: Any, where: str) -> tuple[np.ndarray, np.ndarray, bool]:
        m, n = self.shape
        Xa = as_array(X, "X", where=where, ndim=(1, 2))
        dYa = as_array(dY, "dY", where=where, ndim=(1, 2))
        vec = Xa.ndim == 1
        Xa = Xa[:, None] if Xa.ndim == 1 else Xa
        dYa = dYa[:, None] if dYa.ndim == 1 else dYa
        if Xa.shape[0] != n or dYa.shape != (m, Xa.shape[1]):
            raise ValueError(
                f"{where}: X must be ({n}, k) and dY ({m}, k); got X.shape={Xa.shape}, "
                f"dY.shape={dYa.shape}"
            )
        dt = result_dtype(Xa, dYa, self.dtype)
        return Xa.astype(dt, copy=False), dYa.astype(dt, copy=False), vec

    def vjp(self, X: Any, dY: Any) -> dict[str, np.ndarray]:
        """Gradients of the real loss ``L = Re sum(conj(dY) * (M @ X))``.

        Parameters
        ----------
        X : (n,) or (n, k) array_like
        dY : (m,) or (m, k) array_like
            The cotangent of ``Y = M @ X``.

        Returns
        -------
        dict
            ``"G"`` (m, r), ``"H"`` (n, r), ``"X"`` (like X) and, for operators
            with learnable parameters (Diagonal, Subdiagonal, Tridiagonal),
            ``"A"`` / ``"B"``: gradients of ``A.params`` / ``B.params``. Complex
            gradients are ``dL/dRe + i dL/dIm``.

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> M = ld.random_ldr("subdiagonal", 5, 2, rng=0)
        >>> g = M.vjp(np.ones(5), np.ones(5))
        >>> sorted(g), g["A"].shape
        (['A', 'B', 'G', 'H', 'X'], (4,))
        """
        Xa, dYa, vec = self._prep_pair(X, dY, "LDRMatrix.vjp")
        if self._transposed:
            d0 = self._plan_vjp(np.conj(dYa), np.conj(Xa))
            out = {"G": d0["H"], "H": -d0["G"] if self.kind == "sylvester" else d0["G"]}
            if "B" in d0:
                out["A"] = d0["B"]
            if "A" in d0:
                out["B"] = d0["A"]
            out["X"] = self._rmatmat(dYa)
        else:
            out = self._plan_vjp(Xa, dYa)
        out = {k: v for k, v in out.items() if k in ("G", "H", "X") or self._learnable(k)}
        if vec:
            out["X"] = out["X"][:, 0]
        for key in ("G", "H"):
            out[key] = np.asarray(out[key]).astype(self.dtype, copy=False)
        return out

    def _learnable(self, key: str) -> bool:
        op = self.A if key == "A" else self.B
        op = op.base if isinstance(op, TransposedOperator) else op
        return isinstance(op, Diagonal | Subdiagonal | Tridiagonal)

    def grad_generators(self, X: Any, dY: Any) -> Generators:
        """Gradient of ``Re sum(conj(dY) * (M @ X))`` with respect to ``G`` and ``H``.

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> M = ld.random_ldr("toeplitz_like", 6, 2, rng=0)
        >>> dG, dH = M.grad_generators(np.ones(6), np.ones(6))
        >>> dG.shape, dH.shape
        ((6, 2), (6, 2))
        """
        d = self.vjp(X, dY)
        return Generators(d["G"], d["H"])

    # -- algebra (implemented in _algebra) ------------------------------
    def dot(self, x: Any) -> Any:
        """``M @ x``: an LDRMatrix for LDR operands and scalars (see :func:`product`,
        :func:`scale`), else scipy's ``LinearOperator.dot`` (arrays are multiplied).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> C = ld.circulant([1.0, 2.0, 3.0])
        >>> C.dot(np.ones(3))
        array([6., 6., 6.])
        """
        from lowdisp.structured import _algebra

        if isinstance(x, LDRMatrix):
            return _algebra.product(self, x)
        if _is_scalar(x):
            return _algebra.scale(self, x)
        if not isinstance(x, LinearOperator):  # before scipy's np.asarray drops a mask
            x = self._operand(x, "dot", rows=self.shape[1])
        return super().dot(x)

    def __matmul__(self, other: Any) -> Any:
        if _is_scalar(other):  # 0-d arrays too (dot would scale by them)
            raise ValueError("LDRMatrix @: Scalar operands are not allowed, use '*' instead")
        return self.dot(other)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, str | bytes | bool | np.bool_):  # M * "a": a bad scalar
            from lowdisp.structured import _algebra

            return _algebra.scale(self, other)
        return self.dot(other)

    def __rmul__(self, other: Any) -> Any:
        if isinstance(other, numbers.Number):
            from lowdisp.structured import _algebra

            return _algebra.scale(self, other)
        return NotImplemented

    def __truediv__(self, other: Any) -> Any:
        if not isinstance(other, numbers.Number):
            raise ValueError("LDRMatrix can only be divided by a scalar")
        if other == 0:
            raise ValueError("LDRMatrix: division by zero (the divisor must be nonzero)")
        divisor: Any = other
        return self * (1.0 / divisor)

    def __neg__(self) -> LDRMatrix:
        return self * -1.0

    def __add__(self, other: Any) -> Any:
        from lowdisp.structured import _algebra

        if isinstance(other, LDRMatrix):
            return _algebra.add(self, other)
        return super().__add__(other)

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, LDRMatrix):
            return self + (-other)
        return self + (-other)

    def __repr__(self) -> str:
        m, n = self.shape
        return (
            f"<{m}x{n} LDRMatrix family={self.family} kind={self.kind} rank={self.rank} "
            f"dtype={self.dtype}>"
        )
