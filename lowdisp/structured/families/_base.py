"""The family protocol: what an LDR family must provide to be registered.

A family is a class. Its *class* methods recognise the operator pair, check that
the displacement map is invertible, give an example member (for the
registry-driven tests) and declare what the algebra may do with its members;
an *instance* is bound to one matrix (plan once, apply many: FFT spectra,
divide-and-conquer geometry, ...) and provides the products, the gradient,
the dense reconstruction and the solve. See ``docs/structured.md``.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from lowdisp.structured._gko import dense_lu_solve
from lowdisp.structured._operators import DisplacementOperator, TransposedOperator

__all__ = ["LDRFamily", "is_op"]


def is_op(op: Any, cls: type, transposed: bool = False) -> bool:
    """Whether ``op`` is exactly a ``cls`` (``transposed=True``: the transpose of one).

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import is_op
    >>> is_op(ld.Shift(3).T, ld.Shift, transposed=True), is_op(ld.Shift(3).T, ld.Shift)
    (True, False)
    """
    if transposed:
        return isinstance(op, TransposedOperator) and type(op.base) is cls
    return type(op) is cls


class LDRFamily(abc.ABC):
    r"""Base class of the LDR families (the family protocol).

    A subclass describes one operator pair ``(A, B)`` and kind in its
    *original orientation*; the registry also recognises the transposed pair
    ``(B^T, A^T)`` (then :class:`~lowdisp.structured.LDRMatrix` applies the
    family to ``M^T``), so a family never handles transposition itself.

    Attributes
    ----------
    name : str
        The family's name (``LDRMatrix.family``).
    pairs : str
        The recognised operator pairs, in words (for error messages).
    square : bool
        Whether ``A`` and ``B`` must have the same order.
    product_rule : {"displacement", "closed"}
        How ``M1 @ M2`` is formed for two members: ``"displacement"``, the
        Sylvester product rule (an LDRMatrix of rank <= r1 + r2 when both
        kinds are Sylvester, the inner operators match and the outer pair is a
        registered family with an invertible map; otherwise a lazy
        ``LinearOperator``); ``"closed"``, the family's own
        :meth:`closed_product` (an LDRMatrix when it returns data, else the
        lazy product).
    inverse_kinds : tuple of str
        Kinds for which ``inv(M)`` is an LDRMatrix with the operators swapped
        (``(-M^{-1} G, M^{-T} H)``); other kinds raise a ``LowdispError``.

    Notes
    -----
    The attributes above are class attributes, declared up front (the algebra
    reads them before it computes anything). Transposes, adjoints, sums (same
    operators and kind) and scalar multiples of members are LDRMatrix for every
    family (by the pair's transposition and stacked or scaled generators) and
    need nothing from the family.

    Instance protocol (bound to one matrix, original orientation, generators
    normalized by powers of two): ``matmat(X)`` (``M X``), ``rmatmat(Y)``
    (``M^H Y``), ``vjp(X, dY)`` (dict with ``"G"``, ``"H"``, ``"X"`` and, for
    operators with learnable parameters, ``"A"`` / ``"B"``: gradients of the
    real loss ``Re sum(conj(dY) * (M X))``), ``toarray()`` and
    ``solve(B, transposed=..., where=...)`` (default: dense LU of
    ``toarray()``, O(n^3), the documented fallback).

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import LDRFamily
    >>> M = ld.circulant([1.0, 2.0, 3.0])
    >>> isinstance(M.family_object, LDRFamily), M.family_object.name
    (True, 'toeplitz')
    """

    name: ClassVar[str]
    pairs: ClassVar[str]
    square: ClassVar[bool] = True
    product_rule: ClassVar[str] = "displacement"
    inverse_kinds: ClassVar[tuple[str, ...]] = ("sylvester",)

    # ---- class level: recognition, invertibility, examples, algebra -------
    @classmethod
    @abc.abstractmethod
    def recognises(cls, A: DisplacementOperator, B: DisplacementOperator, kind: str) -> bool:
        """Whether ``(A, B, kind)`` is this family's pair in its original orientation."""

    @classmethod
    def singular_reason(
        cls, A: DisplacementOperator, B: DisplacementOperator, kind: str
    ) -> str | None:
        """Why the displacement map of the (recognised) pair is singular, or None."""
        return None

    @classmethod
    def normalize_operators(
        cls, A: DisplacementOperator, B: DisplacementOperator
    ) -> tuple[DisplacementOperator, DisplacementOperator, int]:
        """``(A', B', e)`` with ``M(A, B, G, H) = 2**-e M(A', B', G, H)``, exactly.

        A scale-safety hook: a family whose operators carry a scale (Cauchy
        nodes near 1e300) rescales them by a power of two; default: unchanged.
        """
        return A, B, 0

    @classmethod
    @abc.abstractmethod
    def example(
        cls, rng: np.random.Generator, n: int, r: int, dtype: Any
    ) -> tuple[DisplacementOperator, DisplacementOperator, np.ndarray, np.ndarray, str]:
        """A well-conditioned random member ``(A, B, G, H, kind)`` of order n and rank r
        (the registry-driven tests build every registered family from it)."""

    @classmethod
    def compress_source(
        cls, D: np.ndarray, A: DisplacementOperator, B: DisplacementOperator, where: str
    ) -> np.ndarray:
        """The matrix whose truncated SVD gives ``G H^T`` in :func:`compress`
        (default: the displacement ``D`` itself)."""
        return D

    @classmethod
    def closed_product(cls, M1: Any, M2: Any) -> tuple | None:
        """``(A, B, G, H, kind)`` of ``M1 @ M2`` for ``product_rule = "closed"``, or None."""
        return None

    # ---- instance level: one bound matrix -----------------------------------
    def __init__(
        self,
        A: DisplacementOperator,
        B: DisplacementOperator,
        G: np.ndarray,
        H: np.ndarray,
        kind: str,
    ) -> None:
        self.A, self.B, self.G, self.H, self.kind = A, B, G, H, kind

    @abc.abstractmethod
    def matmat(self, X: np.ndarray) -> np.ndarray:
        """``M @ X`` for ``X`` of shape (n, k)."""

    @abc.abstractmethod
    def rmatmat(self, Y: np.ndarray) -> np.ndarray:
        """``M^H @ Y`` for ``Y`` of shape (m, k)."""

    @abc.abstractmethod
    def vjp(self, X: np.ndarray, dY: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``Re sum(conj(dY) * (M X))``: ``G``, ``H``, ``X`` (and ``A``, ``B``)."""

    @abc.abstractmethod
    def toarray(self) -> np.ndarray:
        """The dense (m, n) matrix by the family's reconstruction formula."""

    def solve(self, B: np.ndarray, *, transposed: bool, where: str) -> np.ndarray:
        """``M^{-1} B`` (``transposed``: ``(M^T)^{-1} B``); default: dense LU of ``toarray()``."""
        Md = self.toarray()
        if transposed:
            Md = np.ascontiguousarray(Md.T)
        return dense_lu_solve(Md, B, where)
