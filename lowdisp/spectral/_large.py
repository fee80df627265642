"""Pseudospectra of large operators: shift-and-invert Lanczos and Krylov projection (private).

The routes of :func:`lowdisp.spectral.pseudospectra` that never form a Schur
factor:

- ``"shift-invert"``: per grid point z, a factorization of zI − A (sparse LU
  for a sparse matrix or a banded Toeplitz LDR matrix; the pivoted GKO solve
  of the shifted LDR matrix for the other Toeplitz-like matrices), then
  Lanczos on (zI − A)⁻¹(zI − A)⁻ᴴ, whose largest eigenvalue is σ_min⁻².
- ``"projection"``: one Arnoldi factorization A V_k = V_{k+1} H̃ of size k,
  then σ_min(zĨ − H̃) with the (k + 1) x k Hessenberg H̃ and Ĩ = [I_k; 0].
  Since (zI − A) V_k = V_{k+1}(zĨ − H̃) with orthonormal V_{k+1},
  σ_min(zĨ − H̃) ≥ σ_min(zI − A): an upper bound on σ_min, i.e. a lower
  bound on the resolvent norm ‖(zI − A)⁻¹‖ (Toh & Trefethen 1996).

Both work on row tiles of the grid; each grid row has its own random stream
spawned from the caller's ``rng``, so the result does not depend on how the
rows are grouped into tiles nor on where the tiles run (threads, or the
workers of a ``dask.distributed.Client``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lowdisp._config import blas_threads
from lowdisp.spectral._common import safe_norm

__all__ = [
    "SHIFTED_KINDS",
    "arnoldi",
    "input_kind",
    "projection_rows",
    "run_tiles",
    "shift_invert_rows",
    "shifted_factory",
]

#: bandwidth (lower + upper + 1) up to which a Toeplitz LDR matrix is solved by sparse LU
_BAND_MAX = 64
#: entries of a Toeplitz matrix's first column/row at or below this times the largest are zero
_BAND_DROP = 1e-14
#: input kinds with a shifted solver (the "shift-invert" route)
SHIFTED_KINDS = ("sparse", "ldr-toeplitz")


def input_kind(A: Any) -> str:
    """``"dense"``, ``"sparse"``, ``"ldr-toeplitz"``, ``"ldr"`` or ``"operator"``."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import LinearOperator

    if sp.issparse(A):
        return "sparse"
    from lowdisp.structured._ldr import LDRMatrix

    if isinstance(A, LDRMatrix):
        return "ldr-toeplitz" if A.family == "toeplitz" else "ldr"
    if isinstance(A, LinearOperator):
        return "operator"
    return "dense"


# --------------------------------------------------------------------------
# shifted solvers: z -> (solve with zI − A, solve with (zI − A)ᴴ)
# --------------------------------------------------------------------------

Solver = Callable[[complex], tuple[Callable[[np.ndarray], np.ndarray], ...]]


@dataclass(frozen=True)
class _SparseShift:
    """zI − A for a sparse A (CSC), factorized by ``splu`` per point."""

    A: Any  # scipy.sparse CSC matrix, complex128
    sparse = True

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    def __call__(self, z: complex) -> tuple[Callable[[np.ndarray], np.ndarray], ...]:
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        n = self.A.shape[0]
        S = (sp.identity(n, dtype=np.complex128, format="csc") * z - self.A).tocsc()
        lu = splu(S)
        return (lambda b: lu.solve(b), lambda b: lu.solve(b, trans="H"))


@dataclass(frozen=True)
class _LDRShift:
    """zI − M for a Toeplitz-like LDRMatrix M, kept in the family; GKO solves."""

    M: Any  # LDRMatrix
    Q: np.ndarray  # the displacement of the identity: D(I) = Q Wᴴ
    W: np.ndarray
    sparse = False

    @property
    def n(self) -> int:
        return int(self.M.shape[0])

    def __call__(self, z: complex) -> tuple[Callable[[np.ndarray], np.ndarray], ...]:
        from lowdisp.structured import LDRMatrix, solve

        M = self.M
        G, H = M.generators
        # Sylvester: A(zI − M) − (zI − M)B = z(A − B) − GHᵀ; Stein: the same with I − A B
        Gs = np.hstack([z * self.Q, -G]).astype(np.complex128)
        Hs = np.hstack([self.W.conj(), H]).astype(np.complex128)
        S = LDRMatrix(M.A, M.B, Gs, Hs, kind=M.kind)
        SH = S.H
        return (lambda b: solve(S, b), lambda b: solve(SH, b))


def _identity_displacement(M: Any) -> tuple[np.ndarray, np.ndarray]:
    """D(I) = A − B (Sylvester) or I − A B (Stein) as Q Wᴴ, from O(n) products.

    For the Toeplitz-like pairs D(I) has rank <= 1 (e.g. (e − f) e_0 e_{n−1}ᵀ);
    a random range finder of width 4 recovers it exactly.
    """
    A, B = M.A, M.B
    n = M.shape[0]
    rng = np.random.default_rng(0)
    Om = rng.standard_normal((n, 4))

    def D(X: np.ndarray) -> np.ndarray:
        if M.kind == "sylvester":
            return A.matmat(X) - B.matmat(X)
        return X - A.matmat(B.matmat(X))

    def DH(X: np.ndarray) -> np.ndarray:
        if M.kind == "sylvester":
            return A.rmatmat(X) - B.rmatmat(X)
        return X - B.rmatmat(A.rmatmat(X))

    Y = np.asarray(D(Om.astype(np.result_type(Om, A.dtype, B.dtype))))
    U, s, _ = np.linalg.svd(Y, full_matrices=False)
    r = int((s > 1e-12 * max(float(s[0]) if s.size else 0.0, 1e-300)).sum())
    Q = U[:, :r]
    W = np.asarray(DH(Q))  # D = Q Qᴴ D = Q (Dᴴ Q)ᴴ
    return Q, W


def _banded_toeplitz(M: Any) -> Any:
    """M as a sparse CSC matrix if it is a banded Toeplitz matrix, else None.

    The first column and row come from two products; entries at or below
    1e-14 of the largest are zero. The Toeplitz form is accepted only if
    its product with a random vector matches M's to 1e-12 relative.
    """
    import scipy.sparse as sp

    n = M.shape[0]
    e0 = np.zeros(n)
    e0[0] = 1.0
    c = np.asarray(M.matvec(e0)).ravel()
    r = np.asarray(M.rmatvec(e0)).ravel().conj()
    big = max(float(np.abs(c).max()), float(np.abs(r).max()))
    if big == 0:
        return None
    lo = np.flatnonzero(np.abs(c) > _BAND_DROP * big)
    up = np.flatnonzero(np.abs(r) > _BAND_DROP * big)
    p = int(lo.max()) if lo.size else 0
    q = int(up.max()) if up.size else 0
    if p + q + 1 > _BAND_MAX:
        return None
    offsets = list(range(-p, q + 1))
    vals = [c[-k] if k < 0 else r[k] for k in offsets]
    T = sp.diags(vals, offsets, shape=(n, n), format="csc")
    x = np.random.default_rng(1).standard_normal(n)
    y = np.asarray(M.matvec(x)).ravel()
    if safe_norm(T @ x - y) > 1e-12 * max(safe_norm(y), 1e-300):
        return None
    return T


def shifted_factory(A: Any, kind: str) -> Solver:
    """The shifted solver of A (``kind`` from :func:`input_kind`, in ``SHIFTED_KINDS``)."""
    if kind == "sparse":
        return _SparseShift(A.tocsc().astype(np.complex128))
    band = _banded_toeplitz(A)
    if band is not None:
        return _SparseShift(band.astype(np.complex128))
    Q, W = _identity_displacement(A)
    return _LDRShift(A, Q, W)


# --------------------------------------------------------------------------
# shift-and-invert Lanczos, one point at a time
# --------------------------------------------------------------------------


def _inverse_lanczos_point(
    solve: Callable[[np.ndarray], np.ndarray],
    solve_h: Callable[[np.ndarray], np.ndarray],
    q: np.ndarray,
    tol: float,
    maxiter: int,
) -> tuple[float, int, bool]:
    """Largest eigenvalue θ of K = S⁻¹S⁻ᴴ by Lanczos; returns (θ^(-1/2), iterations, converged).

    The three-term recurrence without reorthogonalization (as EigTool's
    inverse Lanczos: the extreme eigenvalue needs none; lost orthogonality
    only adds ghost copies of converged Ritz values). A point stops when the
    Ritz residual of θ is at most 2·tol·θ (the rule of the dense route); the
    top Ritz pair of the tridiagonal matrix costs O(k) per step.
    """
    from scipy.linalg import eigh_tridiagonal

    n = q.size
    kmax = min(maxiter, n)
    q = q / safe_norm(q)
    q_old = np.zeros_like(q)
    al = np.empty(kmax)
    be = np.empty(kmax)
    b_old = 0.0
    theta = 0.0
    for k in range(kmax):
        w = solve(solve_h(q))
        if not np.isfinite(w).all():
            return 0.0, k + 1, True  # z is an eigenvalue to working precision
        a = float(np.vdot(q, w).real)
        w -= a * q
        w -= b_old * q_old
        b = safe_norm(w)
        al[k] = a
        be[k] = b
        if k == 0:
            theta, last = a, 1.0
        else:
            ev, vec = eigh_tridiagonal(
                al[: k + 1], be[:k], select="i", select_range=(k, k), check_finite=False
            )
            theta, last = float(ev[0]), float(vec[-1, 0])
        res = b * abs(last)
        if theta > 0 and (res <= 2 * tol * theta or b <= 1e-300 * theta):
            return theta**-0.5, k + 1, True
        if b == 0:
            break
        q_old, q = q, w / b
        b_old = b
    return (theta**-0.5 if theta > 0 else np.inf), kmax, False


def shift_invert_rows(
    factory: Solver,
    re: np.ndarray,
    rows: np.ndarray,
    gens: list[np.random.Generator],
    tol: float,
    maxiter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """σ_min(zI − A) on the grid re × rows·i; (sigma, unconverged), each (len(rows), len(re))."""
    n = factory.n  # type: ignore[attr-defined]
    S = np.empty((rows.size, re.size))
    uncon = np.zeros((rows.size, re.size), dtype=bool)
    with blas_threads(1):
        for j, y in enumerate(rows):
            g = gens[j]
            for i, x in enumerate(re):
                z = complex(x, y)
                q = g.standard_normal(n) + 1j * g.standard_normal(n)
                try:
                    solve, solve_h = factory(z)
                    s, _, ok = _inverse_lanczos_point(solve, solve_h, q, tol, maxiter)
                except (RuntimeError, np.linalg.LinAlgError):
                    # splu "exactly singular", GKO's SingularOperatorError: zI − A is
                    # singular to working precision, σ_min is below the rounding floor
                    s, ok = 0.0, True
                S[j, i], uncon[j, i] = s, not ok
    return S, uncon


# --------------------------------------------------------------------------
# Krylov projection
# --------------------------------------------------------------------------


def arnoldi(
    matvec: Callable[[np.ndarray], np.ndarray], v: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Arnoldi: A V_k = V_{k+1} H̃ with orthonormal rows of ``V`` ((k+1) x n) and H̃ (k+1) x k.

    Classical Gram–Schmidt applied twice (BLAS-2). On breakdown (an invariant
    subspace of dimension j < k) H̃ is returned as (j+1) x j with a zero last row.
    """
    n = v.size
    dt = np.result_type(v.dtype, np.float64)
    V = np.zeros((k + 1, n), dtype=dt)
    H = np.zeros((k + 1, k), dtype=dt)
    V[0] = v / safe_norm(v)
    scale = 0.0
    for j in range(k):
        w = np.asarray(matvec(V[j])).ravel()
        w = w.astype(np.result_type(w.dtype, dt), copy=False)
        if w.dtype != dt:  # a real start on a complex operator
            V = V.astype(w.dtype)
            H = H.astype(w.dtype)
            dt = w.dtype
        Vj = V[: j + 1]
        Vc = Vj.conj() if dt.kind == "c" else Vj
        h = Vc @ w
        w = w - h @ Vj
        h2 = Vc @ w
        w -= h2 @ Vj
        H[: j + 1, j] = h + h2
        b = safe_norm(w)
        scale = max(scale, safe_norm(H[: j + 1, j]), b)
        if b <= 64 * np.finfo(float).eps * scale:
            return V[: j + 2], H[: j + 2, : j + 1]  # invariant subspace: H[j+1, j] = 0
        H[j + 1, j] = b
        V[j + 1] = w / b
    return V, H


def projection_rows(
    Hbar: np.ndarray, re: np.ndarray, rows: np.ndarray, gens: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """σ_min(zĨ − H̃) on the grid re × rows·i (batched dense SVDs); (sigma, unconverged)."""
    kp1, k = Hbar.shape
    Itil = np.eye(kp1, k)
    Z = (re[None, :] + 1j * rows[:, None]).ravel()
    out = np.empty(Z.size)
    chunk = max(1, min(Z.size, 2_000_000 // max(1, kp1 * k)))
    with blas_threads(1):
        for s in range(0, Z.size, chunk):
            zz = Z[s : s + chunk]
            Mz = zz[:, None, None] * Itil - Hbar
            out[s : s + chunk] = np.linalg.svd(Mz, compute_uv=False)[:, -1]
    return out.reshape(rows.size, re.size), np.zeros((rows.size, re.size), dtype=bool)


# --------------------------------------------------------------------------
# tiles: serial, or the workers of a dask.distributed.Client
# --------------------------------------------------------------------------


def run_tiles(
    fn: Callable[..., tuple[np.ndarray, ...]],
    shared: Any,
    tiles: list[tuple[Any, ...]],
    *,
    client: Any = None,
    progress: Callable[[int], None] | None = None,
    sizes: list[int] | None = None,
    threads: int = 1,
) -> list[tuple[np.ndarray, ...]]:
    """``[fn(shared, *t) for t in tiles]``, on ``threads`` threads or on a Dask client.

    With a client, ``shared`` (the Schur factor, the operator or the
    Hessenberg matrix) is scattered once to every worker and each tile is a
    task; the results come back in tile order. ``progress(size)`` is called
    as each tile finishes.
    """
    if client is None:

        def one(i: int) -> tuple[np.ndarray, ...]:
            r = fn(shared, *tiles[i])
            if progress is not None:
                progress(sizes[i] if sizes else 1)
            return r

        if threads <= 1 or len(tiles) == 1:
            return [one(i) for i in range(len(tiles))]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(threads, len(tiles))) as pool:
            return list(pool.map(one, range(len(tiles))))
    from lowdisp._dask import import_distributed

    dd = import_distributed("pseudospectra")
    [handle] = client.scatter([shared], broadcast=True, hash=False)
    futures = [client.submit(fn, handle, *t, pure=False) for t in tiles]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for fut in dd.as_completed(futures):
        i = index[fut.key]
        results[i] = fut.result()
        if progress is not None:
            progress(sizes[i] if sizes else 1)
    return results


def check_client(client: Any, *, where: str) -> Any:
    """``None`` or a ``dask.distributed.Client`` (dask imported only when one is given)."""
    if client is None:
        return None
    from lowdisp._dask import import_distributed

    dd = import_distributed(where)
    if not isinstance(client, dd.Client):
        raise TypeError(
            f"{where}: client must be a dask.distributed.Client (or None for a serial "
            f"run); got {type(client).__name__}"
        )
    return client
