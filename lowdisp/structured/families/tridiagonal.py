"""The LDR-TD family: learnable tridiagonal operators (Krylov-sum definition).

``(A, B'^T)`` with tridiagonal A, B' (with corners), ``kind="stein"``:
``M = sum_i K(A, g_i) K(B', h_i)^T`` (Thomas et al. 2018). This is *not* the
Stein solution: ``M - A M B'^T = G H^T - A^n G H^T (B'^T)^n``, so the Stein
displacement rank is at most 2r.

The engine functions :func:`tridiag_matmat`, :func:`tridiag_rmatmat` and
:func:`tridiag_vjp` (arrays in, arrays out, no validation) come first, the
family class after them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg.blas as sla_blas

from lowdisp.exceptions import SingularOperatorError
from lowdisp.structured._common import (
    complex_data_only,
    krylov_sum_dense,
    randn,
    real_params_complex_data,
)
from lowdisp.structured._operators import Tridiagonal
from lowdisp.structured.families._base import LDRFamily, is_op

__all__ = ["TridiagonalFamily", "tridiag_matmat", "tridiag_rmatmat", "tridiag_vjp"]

# --------------------------------------------------------------------------
# LDR-TD: M = sum_i K(A, g_i) K(B, h_i)^T, A and B tridiagonal with corners.
# M X = sum_k (A^k G) ((B^k H)^T X), taken over chunks of K steps: the two
# Krylov chunks (n, K r) come from three-term recurrences and meet X in two
# GEMMs; no Krylov matrix and no n x n array exists. When ||A|| ||B|| < 1 the
# sum stops where its tail is provably below the rounding of its first term.
# --------------------------------------------------------------------------

_TD_CHUNK = 16


def _td_parts(P: Any, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    lower, main, upper, f = P
    cast = [np.array(x, dtype=dtype, order="C") for x in (lower, main, upper)]  # writeable
    fz = complex(f) if np.dtype(dtype).kind == "c" else float(np.real(f))
    return cast[0], cast[1], cast[2], fz


def _td_norm_bound(P: Any) -> float:
    """An upper bound of ``||A||_2`` for a tridiagonal ``A`` with corner:
    ``sqrt(||A||_1 ||A||_inf)`` from the absolute row and column sums."""
    lower, main, upper = (np.abs(np.asarray(x)).astype(np.float64) for x in P[:3])
    f = abs(complex(P[3]))
    rows, cols = main.copy(), main.copy()
    if main.shape[0] > 1:
        rows[1:] += lower
        rows[:-1] += upper
        cols[:-1] += lower
        cols[1:] += upper
    rows[0] += f
    cols[-1] += f
    return float(np.sqrt(rows.max() * cols.max()))


def _td_terms(Ap: Any, Bp: Any, n: int, dtype: np.dtype, grad: bool = False) -> int:
    """How many Krylov terms ``A^k G H^T (B^T)^k`` matter: ``n`` unless ``q = ||A|| ||B|| < 1``.

    Term ``k`` has norm at most ``q^k ||G|| ||H||``, so the terms from ``K`` on
    sum to at most ``q^K / (1 - q)`` times ``||G|| ||H||``, and their share of
    the gradients (the derivative of ``A^k`` has ``k`` terms) to at most
    ``(K + 1) q^K / (1 - q)^2`` times the same scale. The sum stops at the first
    ``K`` where that bound is below a quarter of the unit roundoff: what is
    dropped is smaller than the rounding error of the first term alone (and
    would only underflow into subnormal numbers, which are slow: 25x the dense
    time at n = 4096 for ``A = B = tridiag(0.2, 0.5, 0.2)``). Nothing is
    dropped for ``q >= 1``.
    """
    q = _td_norm_bound(Ap) * _td_norm_bound(Bp)
    if not q < 1:
        return n
    if q == 0:
        return min(n, 1)
    leps, lq, l1q = np.log(np.finfo(np.dtype(dtype)).eps / 4), np.log(q), np.log1p(-q)
    if not grad:
        terms = int(np.ceil((leps + l1q) / lq))
    else:
        terms = int(np.ceil((leps + 2 * l1q) / lq))
        while terms < n and np.log(terms + 1) + terms * lq > leps + 2 * l1q:
            terms += 8
    return int(min(n, max(terms, 1)))


def _td_sum(
    Ap: Any, Bp: Any, G: np.ndarray, H: np.ndarray, X: np.ndarray, chunk: int
) -> np.ndarray:
    """sum_k (A^k G)((B^k H)^T X), bilinear (no conjugation)."""
    from lowdisp.kernels.ldr_tridiag import td_krylov_chunk

    dtype = np.result_type(G, H, X, Ap[1], Bp[1])
    A, B = _td_parts(Ap, dtype), _td_parts(Bp, dtype)
    n, r = H.shape
    nk = _td_terms(Ap, Bp, n, dtype)
    X = np.asarray(X, dtype)
    Ps, Rs = np.array(G.T, dtype=dtype, order="C"), np.array(H.T, dtype=dtype, order="C")
    Pbuf = np.empty((chunk * r, G.shape[0]), dtype)
    Rbuf = np.empty((chunk * r, n), dtype)
    Y = np.zeros((G.shape[0], X.shape[1]), dtype, order="F")
    (gemm,) = sla_blas.get_blas_funcs(("gemm",), (Pbuf, Y))
    for k0 in range(0, nk, chunk):
        K = min(chunk, nk - k0)
        td_krylov_chunk(*A, False, Ps, Pbuf, K)
        td_krylov_chunk(*B, False, Rs, Rbuf, K)
        # Y += P_chunk^T C_chunk in place (BLAS beta = 1, no temporary)
        Y = gemm(1.0, Pbuf[: K * r].T, Rbuf[: K * r] @ X, beta=1.0, c=Y, overwrite_c=True)
    return Y  # Fortran order (no copy)


def tridiag_matmat(
    A_params: Any, B_params: Any, G: np.ndarray, H: np.ndarray, X: np.ndarray
) -> np.ndarray:
    """``M @ X`` for the LDR-TD matrix ``M = sum_i K(A, g_i) K(B, h_i)^T``.

    ``A_params = (lower, main, upper, f)`` (tridiagonal plus corner ``f`` at
    (0, n-1)); ``B_params`` likewise.

    Notes
    -----
    ``M X = sum_k (A^k G)((B^k H)^T X)``. The Krylov vectors are generated
    ``K = 16`` steps at a time by the three-term recurrence (a Numba kernel)
    into two ``(n, K r)`` buffers, which meet ``X`` in two GEMMs. Time
    ``O(k r n^2)`` (``O(r n^2)`` per column, the cost of the recurrences is
    ``O(r n^2)`` once), memory ``O(K r n)``: no Krylov matrix and no
    ``n x n`` array is formed (structured-nets builds both, ``O(r n^2)``
    memory). Two GEMMs of ``2 r n^2 k`` flops each: ``2r`` times the dense
    product's, the floor of any method that forms the Krylov vectors.

    When ``q = ||A||_2 ||B||_2 < 1`` (bounded by the row and column sums), the
    sum stops after ``K = O(log(eps) / log(q))`` terms, where the bound of the
    rest falls below a quarter of the unit roundoff relative to the first
    term (``_td_terms``): ``O(k r n K)`` time. At n = 4096 with
    ``A = B = tridiag(0.2, 0.5, 0.2)`` (corner 0.1): 186 terms.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.tridiagonal import tridiag_matmat
    >>> n = 4
    >>> Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)  # A = B = Z_0
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]
    >>> tridiag_matmat(Z, Z, G, H, np.eye(n))[:, 0]
    array([1., 1., 1., 1.])
    """
    return _td_sum(A_params, B_params, G, H, X, _TD_CHUNK)


def _conj_params(P: Any) -> Any:
    return (*(np.conj(x) for x in P[:3]), np.conj(P[3]))


def tridiag_rmatmat(
    A_params: Any, B_params: Any, G: np.ndarray, H: np.ndarray, Y: np.ndarray
) -> np.ndarray:
    """``M^H @ Y`` for the LDR-TD matrix (``sum_k (B^k H)((A^k G)^H Y)``).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.tridiagonal import tridiag_rmatmat
    >>> n = 4
    >>> Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]
    >>> tridiag_rmatmat(Z, Z, G, H, np.eye(n))[0]
    array([1., 1., 1., 1.])
    """
    cplx = any(np.iscomplexobj(x) for x in (*A_params, *B_params, G, H))
    if cplx:
        return _td_sum(
            _conj_params(B_params), _conj_params(A_params), np.conj(H), np.conj(G), Y, _TD_CHUNK
        )
    return _td_sum(B_params, A_params, H, G, Y, _TD_CHUNK)


def tridiag_vjp(
    A_params: Any, B_params: Any, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, A, B, X`` of ``L = Re sum(conj(dY) * (M X))`` for the LDR-TD M.

    ``A`` and ``B`` are the gradients of the concatenated parameter vectors
    ``[lower, main, upper]`` (length 3n-2; the corners are fixed).

    Notes
    -----
    With ``P_k = A^k G``, ``C_k = (B^k H)^T X`` and ``E_k = dY C_k^T``:
    ``dG = sum_k (A^T)^k E_k`` and ``dA = sum_q pattern(Psi_q P_q^T)`` with
    ``Psi_q = sum_p (A^T)^p E_{p+q+1}``, both by one backward Horner sweep
    ``Psi_{q-1} = E_q + A^T Psi_q`` (Numba); the same with the roles of
    (A, G, dY) and (B, H, X) swapped gives ``dH`` and ``dB``. The sweep runs
    over chunks in reverse order from checkpoints of the forward
    recurrences (one ``(n, r)`` state per chunk). ``O(k r n^2)`` time, or
    ``O(k r n K)`` when ``||A|| ||B|| < 1`` (see :func:`tridiag_matmat`; the
    gradient's tail bound carries the extra factor ``(K + 1) / (1 - q)``).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.tridiagonal import tridiag_vjp
    >>> n = 4
    >>> Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)
    >>> g = tridiag_vjp(Z, Z, np.ones((n, 1)), np.ones((n, 1)), np.ones((n, 2)), np.ones((n, 2)))
    >>> sorted(g), g["A"].shape
    (['A', 'B', 'G', 'H', 'X'], (10,))
    """
    if complex_data_only((*A_params, *B_params, G, H), X, dY):
        return real_params_complex_data(
            lambda x, d: tridiag_vjp(A_params, B_params, G, H, x, d), X, dY
        )

    from lowdisp.kernels.ldr_tridiag import td_backward_chunk, td_krylov_chunk

    cplx = any(np.iscomplexobj(x) for x in (*A_params, *B_params, G, H, X, dY))
    dtype = np.result_type(G, H, X, dY, A_params[1], B_params[1])
    if cplx:
        dtype = np.result_type(dtype, np.complex64)
    A, B = _td_parts(A_params, dtype), _td_parts(B_params, dtype)
    G, H, X = (np.asarray(x, dtype) for x in (G, H, X))
    dY = np.asarray(dY, dtype)
    if cplx:
        dY = np.conj(dY)
    n, r = H.shape
    nk = _td_terms(A_params, B_params, n, dtype, grad=True)
    K = 64
    nchunks = -(-nk // K)
    # forward: checkpoints of both recurrences, and dX = sum_k R_k (P_k^T dY)
    Ps, Rs = np.array(G.T, order="C"), np.array(H.T, order="C")  # mutated: own copies
    ckP = np.empty((nchunks, r, n), dtype)
    ckR = np.empty((nchunks, r, n), dtype)
    Pbuf = np.empty((K * r, n), dtype)
    Rbuf = np.empty((K * r, n), dtype)
    dX = np.zeros_like(X)
    for c in range(nchunks):
        k0 = c * K
        Kc = min(K, nk - k0)
        ckP[c], ckR[c] = Ps, Rs
        td_krylov_chunk(*A, False, Ps, Pbuf, Kc)
        td_krylov_chunk(*B, False, Rs, Rbuf, Kc)
        dX += Rbuf[: Kc * r].T @ (Pbuf[: Kc * r] @ dY)
    # backward sweeps
    psiA, psiB = np.zeros((r, n), dtype), np.zeros((r, n), dtype)
    tmp = np.empty((r, n), dtype)
    dA = [np.zeros(n - 1, dtype), np.zeros(n, dtype), np.zeros(n - 1, dtype)]
    dB = [np.zeros(n - 1, dtype), np.zeros(n, dtype), np.zeros(n - 1, dtype)]
    for c in range(nchunks - 1, -1, -1):
        k0 = c * K
        Kc = min(K, nk - k0)
        Ps, Rs = ckP[c].copy(), ckR[c].copy()
        td_krylov_chunk(*A, False, Ps, Pbuf, Kc)
        td_krylov_chunk(*B, False, Rs, Rbuf, Kc)
        Pc, Rc = Pbuf[: Kc * r], Rbuf[: Kc * r]
        E = np.ascontiguousarray((Rc @ X) @ dY.T)  # rows E_k = (dY C_k^T)^T, (Kc r, n)
        F = np.ascontiguousarray((Pc @ dY) @ X.T)  # rows F_k = (X D_k^T)^T
        td_backward_chunk(*A, Pc, E, psiA, tmp, dA[0], dA[1], dA[2], Kc)
        td_backward_chunk(*B, Rc, F, psiB, tmp, dB[0], dB[1], dB[2], Kc)
    out = {
        "G": np.ascontiguousarray(psiA.T),
        "H": np.ascontiguousarray(psiB.T),
        "A": np.concatenate(dA),
        "B": np.concatenate(dB),
        "X": dX,
    }
    if cplx:
        out = {k: np.conj(v) for k, v in out.items()}
    return out


# --------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------

#: largest order compress accepts for the tridiagonal Krylov-sum family (its dense
#: Kronecker solve takes ~40 s and 2 GiB at n = 128, hours and 65 GiB at n = 300)
_KRON_MAX = 128


def _params(T: Tridiagonal) -> tuple:
    return (T.lower, T.main, T.upper, T.f)


class TridiagonalFamily(LDRFamily):
    r"""LDR-TD: ``(Tridiagonal(...), Tridiagonal(...).T)``, ``kind="stein"``, Krylov sum.

    :math:`M = \sum_i K(A, g_i) K(B', h_i)^T`; ``vjp`` gives the gradients of
    ``A.params`` and ``B'.params`` (``[lower, main, upper]``) as ``"A"`` and
    ``"B"``. Solve: dense-LU fallback. :func:`compress` fits the source
    ``C`` with ``sum_k A^k C (B'^T)^k = M`` (dense Kronecker solve, n <= 128).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import TridiagonalFamily
    >>> A = ld.Tridiagonal(np.ones(2), np.zeros(3), np.zeros(2))
    >>> TridiagonalFamily.recognises(A, A.T, "stein")
    True
    """

    name = "tridiagonal"
    pairs = "tridiagonal: (Tridiagonal(...), Tridiagonal(...).T) stein"
    inverse_kinds = ()

    @classmethod
    def recognises(cls, A, B, kind):
        return kind == "stein" and is_op(A, Tridiagonal) and is_op(B, Tridiagonal, True)

    @classmethod
    def example(cls, rng, n, r, dtype):
        def op():
            return Tridiagonal(
                1 + 0.1 * randn(rng, (n - 1,), dtype),
                0.1 * randn(rng, (n,), dtype),
                0.1 * randn(rng, (n - 1,), dtype),
                0.3,
            )

        A, Bp = op(), op()
        return A, Bp.T, randn(rng, (n, r), dtype), randn(rng, (n, r), dtype), "stein"

    @classmethod
    def compress_source(cls, D, A, B, where):
        """The C with ``sum_k A^k C (B'^T)^k = M``, from ``D = M - A M B'^T =
        C - A^n C (B'^T)^n`` (a Stein equation in C, dense Kronecker solve)."""
        n = A.n
        if n > _KRON_MAX:
            gib = (n * n) ** 2 * 8 / 2**30
            raise ValueError(
                f"{where}: the tridiagonal Krylov-sum family is compressed by a dense "
                f"(n^2 x n^2) solve, which needs {gib:.0f} GiB and O(n^6) time at n = {n}; "
                f"supported up to n = {_KRON_MAX}"
            )
        P = np.linalg.matrix_power(A.toarray(), n)
        Q = np.linalg.matrix_power(B.base.toarray().T, n)
        K = np.eye(n * n) - np.kron(Q.T, P)
        try:
            return np.linalg.solve(K, D.reshape(-1, order="F")).reshape((n, n), order="F")
        except np.linalg.LinAlgError as exc:
            raise SingularOperatorError(
                f"{where}: C - A^n C (B'^T)^n = D is singular for these tridiagonal operators"
            ) from exc

    def __init__(self, A, B, G, H, kind):
        super().__init__(A, B, G, H, kind)
        self.args = (_params(A), _params(B.base))

    def matmat(self, X):
        return tridiag_matmat(*self.args, self.G, self.H, X)

    def rmatmat(self, Y):
        return tridiag_rmatmat(*self.args, self.G, self.H, Y)

    def toarray(self):
        return krylov_sum_dense(self.A, self.B.base, self.G, self.H, 1.0)

    def vjp(self, X, dY):
        return tridiag_vjp(*self.args, self.G, self.H, X, dY)
