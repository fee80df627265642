"""Displacement-rank algebra: compression, sums, products, scaling, inverses."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from lowdisp._validation import as_array, check_int, check_option, check_positive, ldexp
from lowdisp.exceptions import LowdispError, SingularOperatorError
from lowdisp.structured import families
from lowdisp.structured._common import compress_generators, discarded, pow2, truncate
from lowdisp.structured._ldr import KINDS, LDRMatrix, add, product, scale
from lowdisp.structured._ldr import _dtype as _ldr_dtype
from lowdisp.structured._operators import DisplacementOperator
from lowdisp.structured._solve import solve

__all__ = [
    "add",
    "compress",
    "displacement",
    "displacement_rank",
    "inv",
    "product",
    "recompress",
    "scale",
]


def _dense(M: Any, name: str, where: str) -> np.ndarray:
    if isinstance(M, LDRMatrix):
        return M.toarray()
    if isinstance(M, LinearOperator):
        return M @ np.eye(M.shape[1], dtype=M.dtype)
    return as_array(M, name, where=where, ndim=2)


def _check_ops(M: np.ndarray, A: Any, B: Any, where: str) -> None:
    for name, op in (("A", A), ("B", B)):
        if not isinstance(op, DisplacementOperator):
            raise TypeError(f"{where}: {name} must be a displacement operator; got {type(op)}")
    if A.n != M.shape[0] or B.n != M.shape[1]:
        raise ValueError(
            f"{where}: operators of the wrong size: M is {M.shape[0]} x {M.shape[1]} but "
            f"A.n = {A.n}, B.n = {B.n}"
        )


def displacement(M: Any, A: DisplacementOperator, B: DisplacementOperator, *, kind="sylvester"):
    """The dense displacement ``A M - M B`` (Sylvester) or ``M - A M B`` (Stein).

    Parameters
    ----------
    M : (m, n) array_like or LinearOperator
    A, B : DisplacementOperator
        Of orders m and n.
    kind : {"sylvester", "stein"}

    Returns
    -------
    ndarray
        O(m n) work beyond forming M (the operators are applied, never densified).

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import lowdisp as ld
    >>> T = scipy.linalg.toeplitz([1.0, 2.0, 3.0])
    >>> D = ld.displacement(T, ld.Shift(3, 1.0), ld.Shift(3, -1.0))
    >>> int(np.linalg.matrix_rank(D))
    2
    """
    w = "displacement"
    check_option(kind, "kind", KINDS, where=w)
    Md = _dense(M, "M", w)
    _check_ops(Md, A, B, w)
    dt = _ldr_dtype(Md, Md, A, B)
    e = pow2(Md)
    D = _displacement_core(ldexp(Md.astype(dt, copy=False), -e), A, B, kind)
    with np.errstate(over="ignore", under="ignore"):
        return ldexp(D.astype(dt, copy=False), e)


def _displacement_core(Md: np.ndarray, A: Any, B: Any, kind: str) -> np.ndarray:
    AM = A._apply(Md)
    if kind == "sylvester":
        return AM - np.conj(B._apply_adjoint(np.conj(Md).T)).T
    return Md - np.conj(B._apply_adjoint(np.conj(AM).T)).T


def _default_rtol(dtype: np.dtype) -> float:
    return 1e3 * float(np.finfo(np.empty(0, dtype).real.dtype).eps)


def displacement_rank(
    M: Any,
    A: DisplacementOperator,
    B: DisplacementOperator,
    *,
    kind: str = "sylvester",
    rtol: float | None = None,
) -> int:
    """The numerical rank of the displacement of ``M``.

    Parameters
    ----------
    M : (m, n) array_like or LinearOperator
    A, B : DisplacementOperator
    kind : {"sylvester", "stein"}
    rtol : float, optional
        Singular values ``<= rtol * sigma_max`` count as zero (default
        ``1000 eps``).

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import lowdisp as ld
    >>> T = scipy.linalg.toeplitz(np.arange(1.0, 9.0), np.arange(2.0, 10.0))
    >>> ld.displacement_rank(np.linalg.inv(T), ld.Shift(8, -1.0), ld.Shift(8, 1.0))
    2
    """
    w = "displacement_rank"
    check_option(kind, "kind", KINDS, where=w)
    tol_in = None if rtol is None else check_positive(rtol, "rtol", where=w, strict=False)
    Md = _dense(M, "M", w)
    _check_ops(Md, A, B, w)
    dt = _ldr_dtype(Md, Md, A, B)
    # scale-invariant: the rank of D(2**-e M) = 2**-e D(M), computed without overflow
    D = _displacement_core(ldexp(Md.astype(dt, copy=False), -pow2(Md)), A, B, kind)
    tol = _default_rtol(D.dtype) if tol_in is None else tol_in
    s = np.linalg.svd(D, compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return 0
    return int(np.count_nonzero(s > tol * s[0]))


def compress(
    M: Any,
    A: DisplacementOperator,
    B: DisplacementOperator,
    *,
    rank: int | None = None,
    rtol: float = 1e-12,
    kind: str = "sylvester",
) -> LDRMatrix:
    r"""Dense matrix -> LDRMatrix by a truncated SVD of its displacement.

    Parameters
    ----------
    M : (m, n) array_like or LinearOperator
    A, B : DisplacementOperator
        The operator pair (must be a supported pair, see :class:`LDRMatrix`).
    rank : int, optional
        Keep this many singular triplets; by default all singular values
        ``> rtol * sigma_max``.
    rtol : float
        Relative truncation threshold.
    kind : {"sylvester", "stein"}

    Returns
    -------
    LDRMatrix
        With ``compression_error`` = the discarded relative Frobenius norm of
        the displacement, :math:`\|\sigma_{r:}\| / \|\sigma\|`.

    Notes
    -----
    With :math:`\nabla[M] = U\Sigma V^H`, :math:`G = U_r\Sigma_r^{1/2}`,
    :math:`H = \bar V_r \Sigma_r^{1/2}` (so that :math:`GH^T = U_r\Sigma_r V_r^H`).
    The error in M is at most
    :math:`\|\nabla^{-1}\|\,\sigma_{r+1}` (Pan 2001, Ch. 4). For the tridiagonal
    Krylov-sum family the displacement is replaced by the source matrix C with
    :math:`\sum_k A^k C (B'^T)^k = M` (a dense Kronecker solve, small n only).

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import lowdisp as ld
    >>> T = scipy.linalg.toeplitz([4.0, 1.0, 0.5, 0.2])
    >>> M = ld.compress(T, ld.Shift(4, 1.0), ld.Shift(4, -1.0))
    >>> M.rank, bool(np.allclose(M.toarray(), T)), M.compression_error < 1e-12
    (2, True, True)
    """
    w = "compress"
    check_option(kind, "kind", KINDS, where=w)
    rtol = check_positive(rtol, "rtol", where=w, strict=False)
    Md = _dense(M, "M", w)
    _check_ops(Md, A, B, w)
    if rank is not None:
        rank = check_int(rank, "rank", where=w, low=1, high=min(Md.shape))
    dt = _ldr_dtype(Md, Md, A, B)
    # exact power-of-two normalization: compress 2**-e M, put 2**e back into G and H
    e = pow2(Md)
    D = _displacement_core(ldexp(Md.astype(dt, copy=False), -e), A, B, kind)
    found = families.recognise(A, B, kind)
    if found is not None:  # the family may fit another source than D (else LDRMatrix refuses)
        fam, transposed = found
        if transposed:  # the family describes M^T, whose displacement is -D^T / D^T
            Dt = -D.T if kind == "sylvester" else D.T
            src = fam.compress_source(Dt, B.T, A.T, w)
            D = -src.T if kind == "sylvester" else src.T
        else:
            D = fam.compress_source(D, A, B, w)
    # the SVD in double precision (the generators are cast back to M's precision)
    U, s, Vh = np.linalg.svd(
        D.astype(np.result_type(D, np.float64), copy=False), full_matrices=False
    )
    k = truncate(s, rank, rtol)
    sq = np.sqrt(s[:k])
    eg = e // 2
    with np.errstate(over="ignore", under="ignore"):
        G = ldexp((U[:, :k] * sq).astype(dt, copy=False), eg)
        H = ldexp((Vh[:k].T * sq).astype(dt, copy=False), e - eg)
    return LDRMatrix(A, B, G, H, kind=kind, compression_error=discarded(s, k), _where=w)


def recompress(M: LDRMatrix, *, rtol: float = 1e-12) -> LDRMatrix:
    r"""Orthogonalize the generators and drop redundant rank.

    Parameters
    ----------
    M : LDRMatrix
    rtol : float
        Singular values of :math:`G H^T` below ``rtol * sigma_max`` are dropped.

    Returns
    -------
    LDRMatrix
        Same operators, rank = numerical rank of :math:`G H^T` (at most
        ``min(m, n)``), balanced generators, ``compression_error`` set.

    Notes
    -----
    :math:`G = Q_G R_G`, :math:`H = Q_H R_H`, :math:`R_G R_H^T = U\Sigma V^H`,
    then :math:`G \leftarrow Q_G U_r\Sigma_r^{1/2}`,
    :math:`H \leftarrow Q_H \bar V_r \Sigma_r^{1/2}`: O((m + n) r^2).

    Examples
    --------
    >>> import lowdisp as ld
    >>> M = ld.random_ldr("toeplitz_like", 8, 2, rng=0)
    >>> (M + M).rank, ld.recompress(M + M).rank
    (4, 2)
    """
    w = "recompress"
    if not isinstance(M, LDRMatrix):
        raise TypeError(f"{w}: M must be an LDRMatrix; got {type(M).__name__}")
    rtol = check_positive(rtol, "rtol", where=w, strict=False)
    G, H = M.generators
    G1, H1, err = compress_generators(G, H, rtol, min(M.shape))
    return LDRMatrix(M.A, M.B, G1, H1, kind=M.kind, compression_error=err, _where=w)


def inv(M: LDRMatrix) -> LDRMatrix:
    r"""The inverse as an LDRMatrix of the same rank with the operators swapped.

    :math:`\nabla_{B,A}[M^{-1}] = -M^{-1}\nabla_{A,B}[M]M^{-1}`, so the
    generators are :math:`(-M^{-1}G, M^{-T}H)`, computed with :func:`solve`
    (GKO, O(r n^2)). Sylvester pairs only (for Toeplitz-like matrices use the
    default (Z_1, Z_-1) pair; the inverse is then (Z_-1, Z_1)-like, the
    Gohberg-Semencul fact).

    Parameters
    ----------
    M : (n, n) LDRMatrix
        Nonsingular, ``kind="sylvester"``.

    Returns
    -------
    LDRMatrix

    Raises
    ------
    numpy.linalg.LinAlgError
        (SingularOperatorError) if M is singular.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> T = ld.toeplitz([4.0, 1.0, 0.5], [4.0, 2.0, 0.1])
    >>> Ti = ld.inv(T)
    >>> Ti.rank, bool(np.allclose(Ti.toarray(), np.linalg.inv(T.toarray())))
    (2, True)
    """
    w = "inv"
    if not isinstance(M, LDRMatrix):
        raise TypeError(f"{w}: M must be an LDRMatrix; got {type(M).__name__}")
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{w}: M must be square; got shape {M.shape}")
    if M.kind not in type(M.family_object).inverse_kinds:
        raise LowdispError(
            f"{w}: only Sylvester pairs are supported (got kind={M.kind!r}); build the "
            "matrix with a Sylvester pair, e.g. compress(M.toarray(), Shift(n, 1), Shift(n, -1))"
        )
    G, H = M.generators
    try:
        Gi = -solve(M, G)
        Hi = solve(M.T, H)
    except SingularOperatorError as exc:
        raise SingularOperatorError(f"{w}: M is not invertible ({exc})") from exc
    return LDRMatrix(M.B, M.A, Gi, Hi, kind="sylvester", _where=w)
