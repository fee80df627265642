"""The LDRMatrix linear operator and its per-family plans."""

from __future__ import annotations

import numbers
from collections import namedtuple
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from lowdisp._config import result_dtype
from lowdisp._validation import as_array, check_option, ldexp, max_abs, pow2_exponent
from lowdisp.exceptions import LowdispError, RankError, SingularOperatorError
from lowdisp.structured import families
from lowdisp.structured._common import (
    balance,
    compress_generators,
    norm_exponent,
    overflow_checked,
    scale_back,
)
from lowdisp.structured._operators import DisplacementOperator

__all__ = ["Generators", "LDRMatrix", "add", "product", "scale"]

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
    family_object : LDRFamily
        The family instance the matrix is bound to (the registry's answer for
        its operator pair, see :mod:`lowdisp.structured.families`).

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
        found = families.recognise(A, B, kind)
        if found is None:
            raise ValueError(
                f"{w}: unsupported operator pair ({A!r}, {B!r}) for kind={kind!r}; "
                f"supported: {families.describe_pairs()}"
            )
        fam, transposed = found
        if fam.square and m != n:
            raise ValueError(
                f"{w}: the {fam.name} family needs operators of the same size; "
                f"got A.n = {m}, B.n = {n}"
            )
        # the family works on the pair in its original orientation (M^T when transposed)
        pA, pB = (B.T, A.T) if transposed else (A, B)
        reason = fam.singular_reason(pA, pB, kind)
        if reason is not None:
            raise SingularOperatorError(f"{w}: the displacement map is singular: {reason}")
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
        else:
            G0, H0 = Ga, Ha
        # the family works on power-of-two normalized data (exact): M = 2**_pexp M_family
        eG, eH, S = balance(G0, H0)
        pA, pB, eN = fam.normalize_operators(pA, pB)
        self._pe = (eG, eH, eN)
        self._pexp = S - eN
        scaled = S != 0 or eG.any() or eH.any()
        G0, H0 = (ldexp(G0, -eG), ldexp(H0, -eH)) if scaled else (G0, H0)
        self._family = fam(pA, pB, G0, H0, kind)
        self.family = fam.name
        super().__init__(dtype, (m, n))

    @property
    def family_object(self) -> families.LDRFamily:
        """The family instance this matrix is bound to (see :mod:`lowdisp.structured.families`).

        It works in the family's original orientation (on ``M.T`` when the pair
        was recognised transposed) and on generators normalized by powers of
        two; use the methods of the matrix, not of this object, for products.

        Examples
        --------
        >>> import lowdisp as ld
        >>> type(ld.cauchy([1.0, 2.0], [0.0]).family_object).__name__
        'CauchyFamily'
        """
        return self._family

    def _solve_scaled(self, Bn: np.ndarray, eb: int, dtype: np.dtype, where: str) -> np.ndarray:
        """``M^{-1} (2**eb Bn)`` by the family's solver (``Bn`` normalized, of ``dtype``):
        ``M = 2**_pexp M_family``, so ``x = 2**(eb - _pexp) M_family^{-1} Bn``."""
        x = self._family.solve(Bn, transposed=self._transposed, where=where)
        if dtype.kind != "c":
            x = x.real
        x = np.ascontiguousarray(x, dtype=dtype)
        return scale_back(x, eb - self._pexp, where, (Bn,))

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
        ex = norm_exponent(X)
        Xn = ldexp(X, -ex) if ex else X
        with overflow_checked():  # a non-representable result is reported below
            if self._transposed:
                Y = np.conj(self._family.rmatmat(np.conj(Xn)))
            else:
                Y = self._family.matmat(Xn)
        return scale_back(Y, self._pexp + ex, "LDRMatrix.matmat", (X,))

    def _rmatmat(self, Y: np.ndarray) -> np.ndarray:
        Y = self._prep(Y)
        if Y.shape[1] == 0:
            return np.zeros((self.shape[1], 0), dtype=Y.dtype)
        ey = norm_exponent(Y)
        Yn = ldexp(Y, -ey) if ey else Y
        with overflow_checked():
            if self._transposed:
                X = np.conj(self._family.matmat(np.conj(Yn)))
            else:
                X = self._family.rmatmat(Yn)
        return scale_back(X, self._pexp + ey, "LDRMatrix.rmatmat", (Y,))

    def _plan_vjp(self, X: np.ndarray, dY: np.ndarray) -> dict[str, np.ndarray]:
        """The plan's vjp (plan orientation) on normalized data, scaled back exactly.

        ``L = 2**S L_n`` with ``S = _pexp + ex + ey``; a block normalized by
        ``2**e`` gets the factor ``2**(S - e)``.
        """
        if X.shape[1] == 0:  # k = 0: zero gradients of the right shapes and dtypes
            d = dict(
                self._family.vjp(
                    np.zeros((X.shape[0], 1), X.dtype), np.zeros((dY.shape[0], 1), dY.dtype)
                )
            )
            d["X"] = d["X"][:, :0]
            return d
        ex, ey = norm_exponent(X), norm_exponent(dY)
        with overflow_checked():
            d = dict(self._family.vjp(ldexp(X, -ex) if ex else X, ldexp(dY, -ey) if ey else dY))
        S = self._pexp + ex + ey
        eG, eH, eN = self._pe
        shifts = {"G": S - eG, "H": S - eH, "X": S - ex, "A": S - eN, "B": S - eN}
        w = "LDRMatrix.vjp"
        return {k: scale_back(np.asarray(v), shifts.get(k, S), w, (X, dY)) for k, v in d.items()}

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
        with overflow_checked():
            M = self._family.toarray()
        M = scale_back(M, self._pexp, "LDRMatrix.toarray")
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
        if vec:
            out["X"] = out["X"][:, 0]
        for key in ("G", "H"):
            out[key] = np.asarray(out[key]).astype(self.dtype, copy=False)
        return out

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

    # -- algebra (the closed-form operations are below this class) -------
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
        if isinstance(x, LDRMatrix):
            return product(self, x)
        if _is_scalar(x):
            return scale(self, x)
        if not isinstance(x, LinearOperator):  # before scipy's np.asarray drops a mask
            x = self._operand(x, "dot", rows=self.shape[1])
        return super().dot(x)

    def __matmul__(self, other: Any) -> Any:
        if _is_scalar(other):  # 0-d arrays too (dot would scale by them)
            raise ValueError("LDRMatrix @: Scalar operands are not allowed, use '*' instead")
        return self.dot(other)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, str | bytes | bool | np.bool_):  # M * "a": a bad scalar
            return scale(self, other)
        return self.dot(other)

    def __rmul__(self, other: Any) -> Any:
        if isinstance(other, numbers.Number):
            return scale(self, other)
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
        if isinstance(other, LDRMatrix):
            return add(self, other)
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


# --------------------------------------------------------------------------
# closed-form algebra: sums, scalar multiples, products
# --------------------------------------------------------------------------


def _both_ldr(M1: Any, M2: Any, where: str, hint: str = "") -> None:
    for name, M in (("M1", M1), ("M2", M2)):
        if not isinstance(M, LDRMatrix):
            raise TypeError(
                f"{where}: both operands must be LDRMatrix; {name} is {type(M).__name__}{hint}"
            )


def _finish(A, B, G, H, kind, where):
    """Build the result, recompressing when the stacked rank exceeds min(m, n)."""
    if G.shape[1] > min(A.n, B.n):
        G, H, _ = compress_generators(G, H, 1e-14, min(A.n, B.n))
    return LDRMatrix(A, B, G, H, kind=kind, _where=where)


def add(M1: LDRMatrix, M2: LDRMatrix) -> LDRMatrix:
    """``M1 + M2`` for the same operators: generators ``[G1, G2]``, ``[H1, H2]``.

    Rank guarantee: <= r1 + r2 (and <= min(m, n): larger stacks are recompressed).

    Parameters
    ----------
    M1, M2 : LDRMatrix
        Same operators and kind.

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> T1, T2 = ld.toeplitz([1.0, 2.0, 3.0]), ld.circulant([0.0, 1.0, 0.0])
    >>> S = T1 + T2
    >>> S.rank, bool(np.allclose(S.toarray(), T1.toarray() + T2.toarray()))
    (3, True)
    """
    w = "add"
    _both_ldr(M1, M2, w)
    if M1.A != M2.A or M1.B != M2.B or M1.kind != M2.kind:
        raise ValueError(
            f"{w}: LDR sums need the same operators and kind; got ({M1.A!r}, {M1.B!r}, "
            f"{M1.kind}) and ({M2.A!r}, {M2.B!r}, {M2.kind})"
        )
    (G1, H1), (G2, H2) = M1.generators, M2.generators
    dt = result_dtype(G1, G2)
    G = np.hstack([G1, G2]).astype(dt)
    H = np.hstack([H1, H2]).astype(dt)
    return _finish(M1.A, M1.B, G, H, M1.kind, w)


def scale(M: LDRMatrix, alpha: Any) -> LDRMatrix:
    """``alpha * M`` (same operators and rank; G is scaled).

    Parameters
    ----------
    M : LDRMatrix
    alpha : scalar

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> T = ld.toeplitz([1.0, 2.0])
    >>> bool(np.allclose((3 * T).toarray(), 3 * T.toarray()))
    True
    """
    w = "scale"
    if not isinstance(M, LDRMatrix):
        raise TypeError(f"{w}: M must be an LDRMatrix; got {type(M).__name__}")
    if not isinstance(alpha, numbers.Number) or isinstance(alpha, bool):
        try:
            arr = np.asarray(alpha) if alpha is not None else np.asarray(None)
        except (TypeError, ValueError):  # ragged sequences
            arr = np.asarray(None)
        if arr.ndim != 0 or arr.dtype.kind not in "iufc":
            raise TypeError(
                f"{w}: alpha must be a real or complex scalar; got {type(alpha).__name__} "
                f"{alpha!r:.60}"
            )
        alpha = arr.item()
    if not np.isfinite(alpha):
        raise ValueError(f"{w}: alpha must be finite; got {alpha!r}")
    G, H = M.generators
    if alpha == 0:
        raise LowdispError("scale: 0 * M has displacement rank 0, which an LDRMatrix cannot hold")
    e = int(pow2_exponent(abs(alpha)))
    if abs(e) <= 100:
        return LDRMatrix(M.A, M.B, alpha * G, H, kind=M.kind, _where="scale")
    # an extreme alpha is split exactly between G and H (alpha * G alone may overflow
    # or underflow although alpha * M is representable)
    # or underflow although alpha * M is representable): per column, the term
    # g_i h_i^T 2**e is rebalanced so that both factors get half of its exponent
    mant = ldexp(np.asarray(alpha), -e).item()  # |mantissa| in [0.5, 1) (exact)
    Gm = np.asarray(mant * G)
    cg, ch = max_abs(Gm, axis=0), max_abs(H, axis=0)
    eg, eh = pow2_exponent(cg), pow2_exponent(ch)
    p = eg + eh + e
    sg = np.where((cg > 0) & (ch > 0), p // 2 - eg, e)
    with np.errstate(over="ignore", under="ignore"):
        G1, H1 = ldexp(Gm, sg), ldexp(H, e - sg)
    return LDRMatrix(M.A, M.B, G1, H1, kind=M.kind, _where="scale")


def product(M1: LDRMatrix, M2: LDRMatrix) -> Any:
    r"""``M1 @ M2`` as an LDRMatrix when the inner operators match (rank <= r1 + r2).

    For Sylvester pairs :math:`(A, B)` and :math:`(B, C)`,
    :math:`\nabla_{A,C}[M_1M_2] = \nabla_{A,B}[M_1]M_2 + M_1\nabla_{B,C}[M_2]`, so
    :math:`G = [G_1, M_1G_2]`, :math:`H = [M_2^TH_1, H_2]`, computed with fast
    products (no densification).

    The result type is decided up front: (1) when both factors belong to a
    family with ``product_rule = "closed"`` and its ``closed_product`` gives
    the data, an LDRMatrix by that formula; (2) when both kinds are Sylvester,
    ``M1.B == M2.A`` and ``(M1.A, M2.B)`` is a registered pair with an
    invertible map, an LDRMatrix by the rule above (rank <= r1 + r2, stacks
    beyond ``min(m, n)`` recompressed); (3) otherwise (operators that do not
    match, an unsupported or singular outer pair, e.g. two Toeplitz-like
    (Z_1, Z_-1) factors) a lazy product
    :class:`~scipy.sparse.linalg.LinearOperator` that applies both factors.

    Parameters
    ----------
    M1 : (m, p) LDRMatrix
    M2 : (p, n) LDRMatrix

    Returns
    -------
    LDRMatrix or LinearOperator

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> rng = np.random.default_rng(0)
    >>> M1 = ld.toeplitz_like(rng.standard_normal((6, 2)), rng.standard_normal((6, 2)))
    >>> M2 = ld.toeplitz_like(rng.standard_normal((6, 1)), rng.standard_normal((6, 1)),
    ...                       e=-1.0, f=0.5)
    >>> P = M1 @ M2
    >>> P.rank, bool(np.allclose(P.toarray(), M1.toarray() @ M2.toarray()))
    (3, True)
    """
    w = "product"
    _both_ldr(M1, M2, w, hint=" (use M @ X to multiply by an array)")
    if M1.shape[1] != M2.shape[0]:
        raise ValueError(f"{w}: shapes {M1.shape} and {M2.shape} do not align")
    fam = type(M1.family_object)
    if fam is type(M2.family_object) and fam.product_rule == "closed":
        data = fam.closed_product(M1, M2)
        if data is not None:
            A, C, G, H, kind = data
            return _finish(A, C, np.asarray(G), np.asarray(H), kind, w)
    if (
        M1.kind == "sylvester"
        and M2.kind == "sylvester"
        and M1.B == M2.A
        and _invertible_pair(M1.A, M2.B, "sylvester")
    ):
        (G1, H1), (G2, H2) = M1.generators, M2.generators
        G = np.hstack([G1, M1.matmat(G2)])
        H = np.hstack([np.conj(M2.rmatmat(np.conj(H1))), H2])
        dt = result_dtype(G, H)
        return _finish(M1.A, M2.B, G.astype(dt), H.astype(dt), "sylvester", w)
    return LinearOperator.dot(M1, M2)


def _invertible_pair(A: Any, C: Any, kind: str) -> bool:
    """Whether ``(A, C, kind)`` is a registered pair with an invertible displacement map."""
    found = families.recognise(A, C, kind)
    if found is None:
        return False
    fam, transposed = found
    if fam.square and A.n != C.n:
        return False
    pA, pC = (C.T, A.T) if transposed else (A, C)
    return fam.singular_reason(pA, pC, kind) is None
