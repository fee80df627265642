"""Displacement-rank algebra: compression, sums, products, scaling, inverses."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from lowdisp._config import result_dtype
from lowdisp._validation import (
    as_array,
    check_int,
    check_option,
    check_positive,
    ldexp,
    max_abs,
    pow2_exponent,
)
from lowdisp.exceptions import LowdispError, SingularOperatorError
from lowdisp.structured._ldr import KINDS, LDRMatrix
from lowdisp.structured._ldr import _dtype as _ldr_dtype
from lowdisp.structured._operators import DisplacementOperator, Tridiagonal

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


def _pow2(M: np.ndarray) -> int:
    """Exponent e with ``max|M| = f 2**e``, ``0.5 <= f < 1`` (0 for a zero or empty M)."""
    m = float(max_abs(M)) if M.size else 0.0
    return int(pow2_exponent(m)) if m > 0 and np.isfinite(m) else 0


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
    e = _pow2(Md)
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
    D = _displacement_core(ldexp(Md.astype(dt, copy=False), -_pow2(Md)), A, B, kind)
    tol = _default_rtol(D.dtype) if tol_in is None else tol_in
    s = np.linalg.svd(D, compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return 0
    return int(np.count_nonzero(s > tol * s[0]))


def _truncate(s: np.ndarray, rank: int | None, rtol: float) -> int:
    if rank is not None:
        return rank
    if s.size == 0 or s[0] == 0:
        return 1
    return max(1, int(np.count_nonzero(s > rtol * s[0])))


def _discarded(s: np.ndarray, k: int) -> float:
    tot = float(np.linalg.norm(s))
    return float(np.linalg.norm(s[k:]) / tot) if tot > 0 else 0.0


#: largest order compress accepts for the tridiagonal Krylov-sum family (its dense
#: Kronecker solve takes ~40 s and 2 GiB at n = 128, hours and 65 GiB at n = 300)
_KRON_MAX = 128


def _tridiagonal_source(D: np.ndarray, A: Tridiagonal, Bp: Tridiagonal) -> np.ndarray:
    """For the Krylov-sum family: the C with ``sum_k A^k C (B'^T)^k = M``, from
    ``D = M - A M B'^T = C - A^n C (B'^T)^n`` (a Stein equation in C)."""
    n = A.n
    if n > _KRON_MAX:
        gib = (n * n) ** 2 * 8 / 2**30
        raise ValueError(
            f"compress: the tridiagonal Krylov-sum family is compressed by a dense "
            f"(n^2 x n^2) solve, which needs {gib:.0f} GiB and O(n^6) time at n = {n}; "
            f"supported up to n = {_KRON_MAX}"
        )
    P = np.linalg.matrix_power(A.toarray(), n)
    Q = np.linalg.matrix_power(Bp.toarray().T, n)
    K = np.eye(n * n) - np.kron(Q.T, P)
    try:
        return np.linalg.solve(K, D.reshape(-1, order="F")).reshape((n, n), order="F")
    except np.linalg.LinAlgError as exc:
        raise SingularOperatorError(
            "compress: C - A^n C (B'^T)^n = D is singular for these tridiagonal operators"
        ) from exc


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
    e = _pow2(Md)
    D = _displacement_core(ldexp(Md.astype(dt, copy=False), -e), A, B, kind)
    Bbase: Any = getattr(B, "base", None)
    if isinstance(A, Tridiagonal) and isinstance(Bbase, Tridiagonal):
        D = _tridiagonal_source(D, A, Bbase)
    # the SVD in double precision (the generators are cast back to M's precision)
    U, s, Vh = np.linalg.svd(
        D.astype(np.result_type(D, np.float64), copy=False), full_matrices=False
    )
    k = _truncate(s, rank, rtol)
    sq = np.sqrt(s[:k])
    eg = e // 2
    with np.errstate(over="ignore", under="ignore"):
        G = ldexp((U[:, :k] * sq).astype(dt, copy=False), eg)
        H = ldexp((Vh[:k].T * sq).astype(dt, copy=False), e - eg)
    return LDRMatrix(A, B, G, H, kind=kind, compression_error=_discarded(s, k), _where=w)


def _compress_generators(G: np.ndarray, H: np.ndarray, rtol: float, cap: int):
    """Pan's generator compression: QR of G and H, SVD of R_G R_H^T, truncate.

    G and H are normalized by powers of two first (exact), so generators near
    1e-300 or 1e300 neither overflow nor underflow in ``R_G R_H^T``.
    """
    eg, eh = _pow2(G), _pow2(H)
    Qg, Rg = np.linalg.qr(ldexp(G, -eg))
    Qh, Rh = np.linalg.qr(ldexp(H, -eh))
    U, s, Vh = np.linalg.svd(Rg @ Rh.T)
    k = min(_truncate(s, None, rtol), cap)
    sq = np.sqrt(s[:k])
    e = eg + eh
    with np.errstate(over="ignore", under="ignore"):
        G1 = ldexp(Qg @ (U[:, :k] * sq), e // 2)
        H1 = ldexp(Qh @ (Vh[:k].T * sq), e - e // 2)
    return G1, H1, _discarded(s, k)


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
    G1, H1, err = _compress_generators(G, H, rtol, min(M.shape))
    return LDRMatrix(M.A, M.B, G1, H1, kind=M.kind, compression_error=err, _where=w)


def _both_ldr(M1: Any, M2: Any, where: str, hint: str = "") -> None:
    for name, M in (("M1", M1), ("M2", M2)):
        if not isinstance(M, LDRMatrix):
            raise TypeError(
                f"{where}: both operands must be LDRMatrix; {name} is {type(M).__name__}{hint}"
            )


def _finish(A, B, G, H, kind, where):
    """Build the result, recompressing when the stacked rank exceeds min(m, n)."""
    if G.shape[1] > min(A.n, B.n):
        G, H, _ = _compress_generators(G, H, 1e-14, min(A.n, B.n))
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
    products (no densification). When the operators do not match, the pair
    (A, C) is not supported, or the map :math:`\nabla_{A,C}` is singular (e.g.
    two Toeplitz-like (Z_1, Z_-1) factors), the result is a lazy product
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
    if M1.kind == "sylvester" and M2.kind == "sylvester" and M1.B == M2.A:
        (G1, H1), (G2, H2) = M1.generators, M2.generators
        G = np.hstack([G1, M1.matmat(G2)])
        H = np.hstack([np.conj(M2.rmatmat(np.conj(H1))), H2])
        dt = result_dtype(G, H)
        try:
            return _finish(M1.A, M2.B, G.astype(dt), H.astype(dt), "sylvester", w)
        except (ValueError, np.linalg.LinAlgError):
            pass  # unsupported or singular outer pair: fall back to the lazy product
    return LinearOperator.dot(M1, M2)


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
    from lowdisp.structured._solve import solve

    w = "inv"
    if not isinstance(M, LDRMatrix):
        raise TypeError(f"{w}: M must be an LDRMatrix; got {type(M).__name__}")
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{w}: M must be square; got shape {M.shape}")
    if M.kind != "sylvester":
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
