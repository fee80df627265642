"""ε-pseudospectra on a grid: one Schur form, batched multi-shift inverse Lanczos (private).

The public entry point is :func:`pseudospectra`; :func:`sigma_min_points` is
the engine, shared with the Kreiss-constant search and the transient bounds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from lowdisp._config import blas_threads
from lowdisp._validation import (
    as_array,
    as_plain_ndarray,
    as_rng,
    check_bool,
    check_int,
    check_option,
    check_positive,
    ldexp,
    unit_scale,
)
from lowdisp.exceptions import ConvergenceWarning, UnderflowWarning
from lowdisp.spectral._common import MAX_DENSIFY, as_dense_square, complex_schur

__all__ = [
    "UNDERFLOW_CLAMP",
    "Pseudospectra",
    "plot_pseudospectra",
    "pseudospectra",
    "sigma_min_points",
]

#: σ_min below this cannot be represented through the resolvent (θ = σ⁻² would
#: overflow); such points are reported as this value with an UnderflowWarning.
UNDERFLOW_CLAMP = 1e-150

#: column block of the blocked triangular solves (diagonal blocks in Numba,
#: off-diagonal updates as GEMMs over all shifts)
_BLOCK = 24
#: grid points handled together (at most; see _batch_size)
_MAX_BATCH = 1024
#: bytes the stored Lanczos vectors of one batch may take (about 40 steps)
_BATCH_BYTES = 2**28


def _batch_size(n: int) -> int:
    """Points per batch: large batches make big GEMMs, bounded by memory."""
    return int(min(_MAX_BATCH, max(32, _BATCH_BYTES // (16 * 40 * max(n, 1)))))


#: relative size of the random component added to a warm start
_WARM_MIX = 0.3
#: orders at or below which method="auto" uses a dense SVD per point
_SVD_BELOW = 12


@dataclass(frozen=True, eq=False)
class Pseudospectra:
    """σ_min(zI − A) on a rectangular grid, with the eigenvalues of A.

    Attributes
    ----------
    re : (nx,) ndarray
        Real parts of the grid (increasing).
    im : (ny,) ndarray
        Imaginary parts of the grid (increasing).
    sigma_min : (ny, nx) ndarray
        ``sigma_min[j, i]`` = σ_min((re[i] + 1j·im[j]) I − A), the layout of
        ``numpy.meshgrid(re, im)``, so ``contour(re, im, sigma_min)`` works.
    eigenvalues : (n,) complex ndarray
        Eigenvalues of A (the diagonal of its Schur factor).

    Notes
    -----
    The ε-pseudospectrum is σ_ε(A) = {z : σ_min(zI − A) ≤ ε}: the set of
    eigenvalues of all A + E with ‖E‖₂ ≤ ε. It is nested in ε.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import pseudospectra
    >>> ps = pseudospectra(np.diag([1.0, 2.0]), re=np.linspace(0, 3, 7), im=np.linspace(-1, 1, 5))
    >>> ps.sigma_min.shape
    (5, 7)
    >>> bool(ps.contains(1.0, 0.1)), bool(ps.contains(1.5, 0.1))
    (True, False)
    """

    re: np.ndarray
    im: np.ndarray
    sigma_min: np.ndarray
    eigenvalues: np.ndarray

    def contains(self, z: Any, eps: float) -> Any:
        """Whether ``z`` lies in the ε-pseudospectrum (σ_min(zI − A) ≤ ε).

        σ_min at ``z`` is interpolated bilinearly in log10 σ_min between the
        four surrounding grid points (exact at grid points).

        Parameters
        ----------
        z : complex or array_like of complex
            Points inside the grid's box.
        eps : float
            ε > 0.

        Returns
        -------
        bool or ndarray of bool
            The shape of ``z``.

        Raises
        ------
        ValueError
            If ``eps <= 0`` or a point lies outside the grid.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.spectral import pseudospectra
        >>> ps = pseudospectra(np.zeros((1, 1)), re=np.linspace(-1, 1, 5), im=np.linspace(-1, 1, 5))
        >>> ps.contains([0.0, 0.5j], 0.25).tolist()
        [True, False]
        """
        from lowdisp.spectral._common import check_eps

        eps = check_eps(eps, where="Pseudospectra.contains")
        s = self._sigma_at(z, where="Pseudospectra.contains")
        return s <= eps

    def sigma_at(self, z: Any) -> Any:
        """σ_min at ``z``, interpolated bilinearly in log10 σ_min on the grid.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.spectral import pseudospectra
        >>> ps = pseudospectra(np.zeros((1, 1)), re=np.linspace(-1, 1, 3), im=np.linspace(-1, 1, 3))
        >>> float(ps.sigma_at(1.0))
        1.0
        """
        return self._sigma_at(z, where="Pseudospectra.sigma_at")

    def _sigma_at(self, z: Any, *, where: str) -> Any:
        zz = np.asarray(as_plain_ndarray(z, "z", where=where))
        if zz.dtype.kind not in "iufc":
            raise TypeError(f"{where}: z must be real or complex numbers; got {z!r}")
        if not np.isfinite(zz).all():
            raise ValueError(f"{where}: z must be finite; got {z!r}")
        x = np.real(zz).astype(float)
        y = np.imag(zz).astype(float)
        re, im = self.re, self.im
        # relative to the grid (a grid at scale 1e-20 has its own rounding)
        tol_x = 1e-12 * max(float(np.abs(re).max()), float(re[-1] - re[0]))
        tol_y = 1e-12 * max(float(np.abs(im).max()), float(im[-1] - im[0]))
        if (
            (x < re[0] - tol_x).any()
            or (x > re[-1] + tol_x).any()
            or (y < im[0] - tol_y).any()
            or (y > im[-1] + tol_y).any()
        ):
            raise ValueError(
                f"{where}: z must lie inside the grid box "
                f"[{re[0]:.4g}, {re[-1]:.4g}] x [{im[0]:.4g}, {im[-1]:.4g}]i; "
                f"compute a larger grid for points outside"
            )
        L = np.log10(self.sigma_min)
        fx, ix = _frac_index(re, x)
        fy, iy = _frac_index(im, y)
        ix1 = np.minimum(ix + 1, re.size - 1)
        iy1 = np.minimum(iy + 1, im.size - 1)
        v = (
            (1 - fx) * (1 - fy) * L[iy, ix]
            + fx * (1 - fy) * L[iy, ix1]
            + (1 - fx) * fy * L[iy1, ix]
            + fx * fy * L[iy1, ix1]
        )
        out = 10.0**v
        return out if out.ndim else float(out)

    def plot(self, eps: Any = None, *, ax: Any = None, **kwargs: Any) -> Any:
        """Contour plot of log10 σ_min with the eigenvalues; see :func:`plot_pseudospectra`.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.spectral import pseudospectra
        >>> ps = pseudospectra(np.array([[0.0, 1.0], [0.0, 0.0]]), npts=20)
        >>> ax = ps.plot([1e-2, 1e-1])
        """
        return plot_pseudospectra(self, eps, ax=ax, **kwargs)


def _frac_index(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if grid.size == 1:
        return np.zeros_like(x), np.zeros(x.shape, dtype=np.intp)
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    f = np.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return f, i


# --------------------------------------------------------------------------
# the engine: multi-shift triangular solves and batched inverse Lanczos
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Plan:
    """Planar parts of T and Tᴴ for the 3M products, computed once per Schur factor."""

    Tr: np.ndarray
    Ti: np.ndarray
    Ts: np.ndarray  # Tr + Ti
    Hr: np.ndarray  # Re Tᴴ
    Hi: np.ndarray  # Im Tᴴ
    Hs: np.ndarray
    floor: float
    T: np.ndarray  # the complex factor itself (single-point solves use LAPACK on it)


#: the last plan, kept while its (read-only, cached) Schur factor is the same object
_PLAN_CACHE: list[Any] = []


def _plan(T: np.ndarray) -> _Plan:
    if not T.flags.writeable and _PLAN_CACHE and _PLAN_CACHE[0] is T:
        return _PLAN_CACHE[1]
    Tr = np.ascontiguousarray(T.real)
    Ti = np.ascontiguousarray(T.imag)
    Hr = np.ascontiguousarray(Tr.T)
    Hi = np.ascontiguousarray(-Ti.T)
    floor = np.finfo(float).eps * max(float(np.abs(T).max()), np.finfo(float).tiny)
    plan = _Plan(Tr, Ti, Tr + Ti, Hr, Hi, Hr + Hi, floor, T)
    if not T.flags.writeable and T.nbytes <= 2**28:  # the shared Schur factor (n ≤ 4096)
        _PLAN_CACHE[:] = [T, plan]
    return plan


def _solve_normal_one(Tz: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(T − zI)⁻¹(T − zI)⁻ᴴ q for one shift: two LAPACK triangular solves (BLAS-2).

    For a single point this beats the blocked multi-shift path, whose many
    small GEMMs are all overhead when there is one right-hand side.
    """
    trtrs = _trtrs()
    y, info = trtrs(Tz, q, lower=0, trans=2)
    if info == 0:
        y, info = trtrs(Tz, y, lower=0, trans=0)
    if info != 0:  # pragma: no cover - zero pivots are floored before
        y = np.full_like(q, np.nan)
    return y


def _trtrs() -> Any:
    import scipy.linalg as sla

    return sla.get_lapack_funcs("trtrs", dtype=np.complex128)


def _sub_3m(
    Mr: np.ndarray,
    Mi: np.ndarray,
    Ms: np.ndarray,
    Xr: np.ndarray,
    Xi: np.ndarray,
    Xs: np.ndarray,
    Yr: np.ndarray,
    Yi: np.ndarray,
) -> None:
    """Y -= M X for complex M, X in planar form with three real GEMMs (3M).

    P1 = Mr Xr, P2 = Mi Xi, P3 = (Mr + Mi)(Xr + Xi); Re = P1 − P2, Im = P3 − P1 − P2.
    """
    P1 = Mr @ Xr
    P2 = Mi @ Xi
    P3 = Ms @ Xs
    P3 -= P1
    P3 -= P2
    P1 -= P2
    Yr -= P1
    Yi -= P3


def _solve_normal(plan: _Plan, zr: np.ndarray, zi: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(T − z_p I)⁻¹ (T − z_p I)⁻ᴴ q_p for every column (multi-shift, blocked, left-looking).

    Planar arithmetic: the diagonal blocks are solved in Numba with the
    inner loop over the shifts; each block row first subtracts the product of
    T's off-diagonal panel with the already solved rows (three real GEMMs over
    all shifts, the 3M scheme: a quarter fewer flops than a complex GEMM).
    """
    from lowdisp.kernels.spectral_lanczos import (
        lower_adjoint_block_solve_planar,
        upper_block_solve_planar,
    )

    n = plan.Tr.shape[0]
    Xr = np.ascontiguousarray(q.real)
    Xi = np.ascontiguousarray(q.imag)
    Xs = np.empty_like(Xr)
    # (T − zI)ᴴ y = q: lower triangular, top to bottom
    for s in range(0, n, _BLOCK):
        e = min(n, s + _BLOCK)
        if s > 0:
            _sub_3m(
                plan.Hr[s:e, :s],
                plan.Hi[s:e, :s],
                plan.Hs[s:e, :s],
                Xr[:s],
                Xi[:s],
                Xs[:s],
                Xr[s:e],
                Xi[s:e],
            )
        lower_adjoint_block_solve_planar(plan.Tr, plan.Ti, s, e, zr, zi, plan.floor, Xr, Xi)
        np.add(Xr[s:e], Xi[s:e], out=Xs[s:e])
    # (T − zI) x = y: upper triangular, bottom to top
    e = n
    while e > 0:
        s = max(0, e - _BLOCK)
        if e < n:
            _sub_3m(
                plan.Tr[s:e, e:],
                plan.Ti[s:e, e:],
                plan.Ts[s:e, e:],
                Xr[e:],
                Xi[e:],
                Xs[e:],
                Xr[s:e],
                Xi[s:e],
            )
        upper_block_solve_planar(plan.Tr, plan.Ti, s, e, zr, zi, plan.floor, Xr, Xi)
        np.add(Xr[s:e], Xi[s:e], out=Xs[s:e])
        e = s
    out = np.empty(q.shape, dtype=np.complex128)
    out.real = Xr
    out.imag = Xi
    return out


@dataclass(frozen=True, eq=False)
class _PointsResult:
    sigma: np.ndarray  # (P,)
    vectors: np.ndarray  # (n, P) right singular vectors of T - zI (unit)
    iterations: np.ndarray  # (P,)
    underflow: np.ndarray  # (P,) bool
    unconverged: np.ndarray  # (P,) bool


def _inverse_lanczos(
    plan: _Plan,
    z: np.ndarray,
    V0: np.ndarray,
    tol: float,
    maxiter: int,
) -> _PointsResult:
    """σ_min(T − z_p I) for every shift, Lanczos on (T − zI)^{-1}(T − zI)^{-H}.

    All points run together: the vectors form an ``(n, P)`` block, each step
    is two multi-shift triangular solves, the tridiagonal top eigenpairs come
    from a Numba kernel, and converged points leave the block. A point stops
    when the a-posteriori error of θ = σ⁻² (min of the residual and
    residual²/gap) is at most ``tol·θ``, so σ carries a relative error
    ≲ tol/2.
    """
    from lowdisp.kernels.spectral_lanczos import lanczos_recurrence, tridiagonal_top

    n = plan.Tr.shape[0]
    P = z.size
    sigma = np.empty(P)
    coef = np.zeros((P, maxiter))
    iters = np.zeros(P, dtype=np.intp)
    under = np.zeros(P, dtype=bool)
    uncon = np.zeros(P, dtype=bool)

    act = np.arange(P)
    zr = np.ascontiguousarray(np.real(z), dtype=np.float64)
    zi = np.ascontiguousarray(np.imag(z), dtype=np.float64)
    q = np.ascontiguousarray(V0, dtype=np.complex128)
    q /= np.linalg.norm(q, axis=0)
    q_old = np.zeros_like(q)
    b_old = np.zeros(P)
    Tz: np.ndarray | None = None
    if P == 1:  # one shift: LAPACK solves on T − zI (zero pivots floored as in the kernels)
        Tz = np.array(plan.T, dtype=np.complex128, order="F")
        idx = np.arange(n)
        d = Tz[idx, idx] - z[0]
        d[d == 0] = plan.floor
        Tz[idx, idx] = d
    # Lanczos vectors of step l with the points they belong to (act only shrinks)
    Qs: list[tuple[np.ndarray, np.ndarray]] = []
    al = np.zeros((P, maxiter))
    be = np.zeros((P, maxiter))
    theta = np.zeros(P)
    svec = np.zeros((P, maxiter))
    a = np.empty(P)
    b = np.empty(P)
    big = 1.0 / UNDERFLOW_CLAMP**2
    eps = np.finfo(float).eps
    rtol = max(1e-3 * tol, 2 * eps)  # accuracy of the tridiagonal eigenvalues
    for l in range(maxiter):
        Pa = act.size
        with np.errstate(all="ignore"):
            w = _solve_normal(plan, zr, zi, q) if Tz is None else _solve_normal_one(Tz, q)
            lanczos_recurrence(w, q, q_old, b_old, a[:Pa], b[:Pa])
        Qs.append((q, act))
        al[:Pa, l] = a[:Pa]
        be[:Pa, l] = b[:Pa]
        finite = np.isfinite(al[:Pa, l]) & np.isfinite(be[:Pa, l]) & (np.abs(al[:Pa, l]) < big)
        if not finite.all():
            al[:Pa][~finite, : l + 1] = 0.0
            al[:Pa][~finite, 0] = 1.0
            be[:Pa][~finite, : l + 1] = 0.0
        tridiagonal_top(al[:Pa], be[:Pa], l + 1, rtol, theta[:Pa], svec[:Pa])
        th = theta[:Pa]
        # Ritz residual: some eigenvalue lies within res of θ (Weyl)
        res = be[:Pa, l] * np.abs(svec[:Pa, l])
        bad = ~finite | (th > big)
        conv = (res <= 2 * tol * th) | (be[:Pa, l] <= eps * np.abs(th))
        done = bad | conv | (l == maxiter - 1)
        if done.any():
            idx = np.flatnonzero(done)
            pts = act[idx]
            coef[pts, : l + 1] = svec[idx, : l + 1]  # Ritz vectors formed at the end
            with np.errstate(divide="ignore", invalid="ignore"):
                sg = 1.0 / np.sqrt(th[idx])
            sg = np.where(bad[idx], UNDERFLOW_CLAMP, sg)
            sigma[pts] = np.maximum(sg, UNDERFLOW_CLAMP)
            under[pts] = bad[idx] | (sg < UNDERFLOW_CLAMP)
            uncon[pts] = ~(bad[idx] | conv[idx])
            iters[pts] = l + 1
            keep = ~done
            if not keep.any():
                break
            nk = int(keep.sum())
            act = act[keep]
            zr = zr[keep]
            zi = zi[keep]
            al[:nk, : l + 1] = al[:Pa, : l + 1][keep]
            be[:nk, : l + 1] = be[:Pa, : l + 1][keep]
            theta[:nk] = theta[:Pa][keep]
            w = w[:, keep]
            q = q[:, keep]
        Pn = act.size
        q_old = q
        b_old = be[:Pn, l].copy()
        q = np.asarray(w / b_old, dtype=np.complex128)
    # Ritz vectors y_p = Σ_k coef[p, k] q_k(p): one pass over the stored steps
    vecs = np.zeros((n, P), dtype=np.complex128)
    for k, (Qk, actk) in enumerate(Qs):
        vecs[:, actk] += Qk * coef[actk, k]
    nv = np.linalg.norm(vecs, axis=0)
    okv = np.isfinite(nv) & (nv > 0)
    vecs[:, okv] /= nv[okv]
    vecs[:, ~okv] = np.nan
    return _PointsResult(sigma, vecs, iters, under, uncon)


def _svd_points(A: np.ndarray, z: np.ndarray) -> np.ndarray:
    """σ_min(z_p I − A) by a dense (batched) SVD per point."""
    n = A.shape[0]
    out = np.empty(z.size)
    chunk = max(1, min(z.size, 2_000_000 // max(1, n * n)))
    eye = np.eye(n)
    for s in range(0, z.size, chunk):
        zz = z[s : s + chunk]
        M = zz[:, None, None] * eye - A
        out[s : s + chunk] = np.linalg.svd(M, compute_uv=False)[:, -1]
    return out


def _random_block(rng: np.random.Generator, n: int, P: int) -> np.ndarray:
    return rng.standard_normal((n, P)) + 1j * rng.standard_normal((n, P))


def sigma_min_points(
    T: np.ndarray,
    z: np.ndarray,
    *,
    tol: float,
    maxiter: int,
    rng: np.random.Generator,
    V0: np.ndarray | None = None,
) -> _PointsResult:
    """σ_min(T − zI) for a 1-D array of points, in batches (T: complex upper triangular)."""
    n = T.shape[0]
    plan = _plan(T)
    z = np.asarray(z, dtype=np.complex128).ravel()
    parts = []
    mb = _batch_size(n)
    for s in range(0, z.size, mb):
        zz = z[s : s + mb]
        v0 = _random_block(rng, n, zz.size) if V0 is None else V0[:, s : s + mb]
        parts.append(_inverse_lanczos(plan, zz, v0, tol, maxiter))
    if len(parts) == 1:
        return parts[0]
    return _PointsResult(
        np.concatenate([p.sigma for p in parts]),
        np.concatenate([p.vectors for p in parts], axis=1),
        np.concatenate([p.iterations for p in parts]),
        np.concatenate([p.underflow for p in parts]),
        np.concatenate([p.unconverged for p in parts]),
    )


def _grid_lanczos(
    T: np.ndarray,
    re: np.ndarray,
    rows: np.ndarray,
    *,
    tol: float,
    maxiter: int,
    rng: np.random.Generator,
    warm: bool = False,
    groups: int | None = None,
    progress: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """σ_min on the grid re × rows·i, in batches of several rows.

    The rows are cut into ``groups`` runs of consecutive rows; step k handles
    row k of every run in one batch (more shifts per GEMM). With ``warm``,
    each run starts from its own previous row's singular vectors (mixed with
    a random vector); otherwise every point starts from a random vector.
    """
    n = T.shape[0]
    plan = _plan(T)
    ny, nx = rows.size, re.size
    S = np.empty((ny, nx))
    its = np.zeros((ny, nx), dtype=np.intp)
    under = np.zeros((ny, nx), dtype=bool)
    uncon = np.zeros((ny, nx), dtype=bool)
    mb = _batch_size(n)
    for c0 in range(0, nx, mb):
        x = re[c0 : c0 + mb]
        m = x.size
        if groups is None:
            g = max(1, min(ny // 4, mb // m))
        else:
            g = max(1, min(ny, groups))
        starts = np.linspace(0, ny, g + 1).astype(np.intp)
        V = _random_block(rng, n, m * g)
        for k in range(int(np.diff(starts).max())):
            sel = [(gi, starts[gi] + k) for gi in range(g) if starts[gi] + k < starts[gi + 1]]
            zz = np.concatenate([x + 1j * rows[j] for _, j in sel])
            cols = np.concatenate([np.arange(gi * m, (gi + 1) * m) for gi, _ in sel])
            r = _inverse_lanczos(plan, zz, V[:, cols], tol, maxiter)
            noise = _random_block(rng, n, cols.size)
            if warm:
                vec = r.vectors
                badv = ~np.isfinite(vec).all(axis=0) | r.underflow
                vec[:, badv] = noise[:, badv]
                # a warm start that is an exact singular vector of the *neighbour*
                # can be an invariant subspace here (the nearest eigenvalue
                # switched): mix in a random component so every direction is present
                noise *= _WARM_MIX / np.linalg.norm(noise, axis=0)
                V[:, cols] = vec + noise
            else:
                V[:, cols] = noise
            for t, (_, j) in enumerate(sel):
                part = slice(t * m, (t + 1) * m)
                S[j, c0 : c0 + m] = r.sigma[part]
                its[j, c0 : c0 + m] = r.iterations[part]
                under[j, c0 : c0 + m] = r.underflow[part]
                uncon[j, c0 : c0 + m] = r.unconverged[part]
            if progress is not None:
                progress(zz.size)
    return S, its, under, uncon


#: row tiles of a grid (fixed, so results do not depend on the thread count)
_TILES = 4


def _dense_tile(
    T: np.ndarray,
    re: np.ndarray,
    rows: np.ndarray,
    tol: float,
    maxiter: int,
    rng: np.random.Generator,
    warm: bool,
    progress: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One row tile of the dense route (a module-level function: a Dask task)."""
    with blas_threads(1):
        return _grid_lanczos(
            T, re, rows, tol=tol, maxiter=maxiter, rng=rng, warm=warm, progress=progress
        )


def _grid_tiles(
    T: np.ndarray,
    re: np.ndarray,
    rows: np.ndarray,
    *,
    tol: float,
    maxiter: int,
    rng: np.random.Generator,
    warm: bool,
    workers: int,
    progress: Any,
    client: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """_grid_lanczos over ``_TILES`` row tiles, run on ``workers`` threads or a Dask client.

    Each tile has its own random stream (spawned from ``rng``), so the result
    is the same for any number of workers, and on a Dask client (T is
    scattered once, each tile is a task); the kernels and BLAS release the
    GIL, and BLAS stays pinned to one thread.
    """
    from lowdisp.spectral._large import run_tiles

    ny = rows.size
    k = min(_TILES, max(1, ny // 4))
    cuts = np.linspace(0, ny, k + 1).astype(np.intp)
    gens = rng.spawn(k)
    args = [(re, rows[cuts[i] : cuts[i + 1]], tol, maxiter, gens[i], warm) for i in range(k)]

    if client is not None:
        sizes = [int(cuts[i + 1] - cuts[i]) * re.size for i in range(k)]
        parts = run_tiles(_dense_tile, T, args, client=client, progress=progress, sizes=sizes)
    elif workers <= 1 or k == 1:
        parts = [_dense_tile(T, *a, progress=progress) for a in args]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, k)) as pool:
            parts = list(pool.map(lambda a: _dense_tile(T, *a, progress=progress), args))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )


class _Bar:
    """A thread-safe progress counter: a tqdm bar on stderr, or a user callback."""

    def __init__(self, progress: Any, total: int) -> None:
        import threading

        self.lock = threading.Lock()
        self.bar = None
        self.callback = None
        self.done = 0
        self.total = total
        if callable(progress):
            self.callback = progress
        elif progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="pseudospectra grid", unit="pt", leave=False)

    def __call__(self, k: int) -> None:
        with self.lock:
            self.done += k
            if self.bar is not None:
                self.bar.update(k)
            if self.callback is not None:
                self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _mirror_rows(im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique |im| values (merged within rounding) and the map back to im."""
    a = np.abs(im)
    order = np.argsort(a, kind="stable")
    scale = max(1.0, float(a.max()))
    uniq: list[float] = []
    inv = np.empty(im.size, dtype=np.intp)
    for k in order:
        if uniq and abs(a[k] - uniq[-1]) <= 1e-13 * scale:
            inv[k] = len(uniq) - 1
        else:
            uniq.append(float(a[k]))
            inv[k] = len(uniq) - 1
    return np.array(uniq), inv


def _auto_axes(eigs: np.ndarray, T: np.ndarray) -> tuple[float, float, float, float]:
    """EigTool's box: the eigenvalues' bounding box widened by half its size each side."""
    x0, x1 = float(eigs.real.min()), float(eigs.real.max())
    y0, y1 = float(eigs.imag.min()), float(eigs.imag.max())
    pad = max(x1 - x0, y1 - y0) / 2
    scale = float(np.linalg.norm(T)) / np.sqrt(T.shape[0])
    pad = max(pad, 0.5 * scale, 1e-3 * max(abs(x0), abs(x1), abs(y0), abs(y1)))
    if pad == 0:
        pad = 1.0
    return x0 - pad, x1 + pad, y0 - pad, y1 + pad


def _grid_axis(v: Any, name: str) -> np.ndarray:
    arr = as_array(v, name, where="pseudospectra", ndim=1, allow_complex=False, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"pseudospectra: {name} must hold at least one grid value; got size 0")
    if arr.size > 1 and not (np.diff(arr) > 0).all():
        raise ValueError(f"pseudospectra: {name} must be strictly increasing")
    return arr


@dataclass(frozen=True)
class _GridOptions:
    """The checked options of one :func:`pseudospectra` call, handed to a grid core."""

    tol: float
    maxiter: int
    rng: np.random.Generator
    warm: bool
    workers: int
    progress: Any
    client: Any = None


def _svd_grid(
    M: np.ndarray, T: np.ndarray, re: np.ndarray, im: np.ndarray, opts: _GridOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``method="svd"``: a dense SVD per point; (σ_min, underflow, unconverged) on the grid."""
    if M.dtype.kind == "f":  # σ_min(z̄I − A) = σ_min(zI − A): compute Im z >= 0, mirror
        rows, inv = _mirror_rows(im)
        Zr = re[None, :] + 1j * rows[:, None]
        S = _svd_points(M, Zr.ravel()).reshape(Zr.shape)[inv]
    else:
        Z = re[None, :] + 1j * im[:, None]
        S = _svd_points(M, Z.ravel()).reshape(Z.shape)
    # exact zeros (z exactly an eigenvalue) are stored as the clamp silently;
    # positive values below it are genuine underflow and are reported
    under = (S > 0) & (S < UNDERFLOW_CLAMP)
    return np.maximum(S, UNDERFLOW_CLAMP), under, np.zeros(S.shape, dtype=bool)


def _lanczos_grid(
    M: np.ndarray, T: np.ndarray, re: np.ndarray, im: np.ndarray, opts: _GridOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``method="lanczos"``: batched inverse Lanczos on the Schur factor, in row tiles."""
    if M.dtype.kind == "f":
        rows, inv = _mirror_rows(im)
    else:
        rows, inv = im, np.arange(im.size)
    bar = _Bar(opts.progress, rows.size * re.size)
    try:
        S, _its, under, uncon = _grid_tiles(
            T,
            re,
            rows,
            tol=opts.tol,
            maxiter=opts.maxiter,
            rng=opts.rng,
            warm=opts.warm,
            workers=opts.workers,
            progress=bar,
            client=opts.client,
        )
    finally:
        bar.close()
    return S[inv], under[inv], uncon[inv]


def _auto_grid(
    M: np.ndarray, T: np.ndarray, re: np.ndarray, im: np.ndarray, opts: _GridOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``method="auto"``: ``"svd"`` for n <= 12, else ``"lanczos"``."""
    core = _svd_grid if M.shape[0] <= _SVD_BELOW else _lanczos_grid
    return core(M, T, re, im, opts)


#: method name -> grid core ``(M, T, re, im, options) -> (sigma, underflow, unconverged)``
_METHODS = {"auto": _auto_grid, "lanczos": _lanczos_grid, "svd": _svd_grid}
#: the routes that never form a Schur factor (lowdisp.spectral._large)
_OPERATOR_METHODS = ("shift-invert", "projection")
#: every accepted ``method``
_METHOD_NAMES = (*_METHODS, *_OPERATOR_METHODS)
#: order above which method="auto" leaves the dense route for sparse and banded Toeplitz input
_DENSE_AUTO_MAX = 1000
#: default Krylov dimension of method="projection"
_PROJECTION_K = 100


def _route(A: Any, method: str, where: str) -> tuple[str, str, Any]:
    """(route, input kind, shifted solver or None) for ``method`` and the input A.

    route is ``"dense"`` (a Schur form: ``"auto"``, ``"lanczos"``, ``"svd"``),
    ``"shift-invert"`` or ``"projection"``.
    """
    from lowdisp.spectral._large import SHIFTED_KINDS, input_kind, shifted_factory

    kind = input_kind(A)
    if kind != "dense":
        shape = tuple(A.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"{where}: A must be square; got shape {shape}")
        if shape[0] == 0:
            raise ValueError(f"{where}: A must not be empty; got shape {shape}")
    if method in _METHODS and method != "auto":
        return "dense", kind, None
    if method == "projection":
        return "projection", kind, None
    if method == "shift-invert":
        if kind not in SHIFTED_KINDS:
            raise ValueError(
                f"{where}: method='shift-invert' needs a fast shifted solve: a scipy sparse "
                f"matrix or a Toeplitz-like LDRMatrix; got {kind} input "
                f"({type(A).__name__}). Use method='projection' (any operator), or "
                f"method='lanczos' (dense, n <= {MAX_DENSIFY})"
            )
        return "shift-invert", kind, shifted_factory(A, kind)
    # auto
    if kind == "dense":
        return "dense", kind, None
    n = int(A.shape[0])
    factory = shifted_factory(A, kind) if kind in SHIFTED_KINDS else None
    if factory is not None and (n > MAX_DENSIFY or (n > _DENSE_AUTO_MAX and factory.sparse)):
        return "shift-invert", kind, factory
    if n <= MAX_DENSIFY:
        return "dense", kind, None
    return "projection", kind, None


def _operator_grid(
    A: Any,
    route: str,
    factory: Any,
    re_u: np.ndarray | None,
    im_u: np.ndarray | None,
    npts: int,
    bx_u: tuple[float, ...] | None,
    opts: _GridOptions,
    k: int,
    where: str,
) -> Pseudospectra:
    """The ``"shift-invert"`` and ``"projection"`` routes (no Schur form, no rescaling)."""
    from scipy.sparse.linalg import aslinearoperator

    from lowdisp.spectral._large import arnoldi, projection_rows, run_tiles, shift_invert_rows

    op = aslinearoperator(A)
    n = int(op.shape[0])
    real = np.dtype(op.dtype if op.dtype is not None else float).kind != "c"
    with blas_threads(1):
        if route == "projection":
            v0 = opts.rng.standard_normal(n)
            if not real:
                v0 = v0 + 1j * opts.rng.standard_normal(n)
            _V, Hbar = arnoldi(op.matvec, v0, k)
            if not np.isfinite(Hbar).all():
                raise ValueError(f"{where}: a product with A returned NaN or Inf entries")
            real = real and Hbar.dtype.kind != "c"
            kk = Hbar.shape[1]
            eigs = np.linalg.eigvals(Hbar[:kk, :kk]).astype(np.complex128)
            shared: Any = Hbar
        else:
            eigs = np.zeros(0, dtype=np.complex128)
            shared = factory
        if re_u is None or im_u is None:
            if bx_u is not None:
                bx = bx_u
            elif route == "projection":
                bx = _auto_axes(eigs, Hbar[:kk, :kk])
            else:  # the spectrum lies in the disc |z| <= ‖A‖
                from lowdisp.spectral._norm import spectral_norm

                rho = 1.1 * spectral_norm(A, tol=1e-3, rng=opts.rng).value
                rho = rho if rho > 0 else 1.0
                bx = (-rho, rho, -rho, rho)
        re_ = re_u if re_u is not None else np.linspace(bx[0], bx[1], npts)
        im_ = im_u if im_u is not None else np.linspace(bx[2], bx[3], npts)
        rows, inv = _mirror_rows(im_) if real else (im_, np.arange(im_.size))
        gens = opts.rng.spawn(rows.size)
        # 4 tiles per worker thread or Dask worker (rows have their own streams:
        # the tiling does not change the result)
        nw = opts.workers
        if opts.client is not None:
            nw = max(1, len(opts.client.scheduler_info().get("workers", {})))
        ntile = max(1, min(rows.size, 4 * max(nw, 1)))
        cuts = np.linspace(0, rows.size, ntile + 1).astype(np.intp)
        spans = [(int(cuts[i]), int(cuts[i + 1])) for i in range(ntile) if cuts[i] < cuts[i + 1]]
        if route == "projection":
            fn: Any = projection_rows
            tiles = [(re_, rows[a:b]) for a, b in spans]
        else:
            fn = shift_invert_rows
            tiles = [(re_, rows[a:b], gens[a:b], opts.tol, opts.maxiter) for a, b in spans]
        bar = _Bar(opts.progress, rows.size * re_.size)
        try:
            parts = run_tiles(
                fn,
                shared,
                tiles,
                client=opts.client,
                progress=bar,
                sizes=[(b - a) * re_.size for a, b in spans],
                threads=opts.workers,
            )
        finally:
            bar.close()
    S = np.concatenate([p[0] for p in parts])[inv]
    uncon = np.concatenate([p[1] for p in parts])[inv]
    under = S < UNDERFLOW_CLAMP
    S = np.maximum(S, UNDERFLOW_CLAMP)
    _report(under, uncon, where=where, maxiter=opts.maxiter)
    return Pseudospectra(re_, im_, S, eigs)


def pseudospectra(
    A: Any,
    *,
    re: Any = None,
    im: Any = None,
    npts: int = 100,
    box: Any = None,
    method: str = "auto",
    tol: float = 1e-6,
    maxiter: int | None = None,
    warm_start: bool = False,
    rng: Any = None,
    workers: int | None = None,
    progress: Any = False,
    k: int | None = None,
    client: Any = None,
) -> Pseudospectra:
    r"""ε-pseudospectra of a square matrix: σ_min(zI − A) on a grid.

    Parameters
    ----------
    A : (n, n) array_like, scipy sparse matrix, LDRMatrix or LinearOperator
        The matrix (real or complex). The Schur-based methods densify an
        operator (``A @ I``, n <= 8192); ``"shift-invert"`` and
        ``"projection"`` never form it.
    re, im : (nx,) and (ny,) array_like, optional
        Increasing real and imaginary grid coordinates. When omitted they are
        ``npts`` points spanning ``box``.
    npts : int
        Points per side of an automatic grid (default 100).
    box : (xmin, xmax, ymin, ymax), optional
        The region of an automatic grid; by default the eigenvalues' bounding
        box widened by half its size on every side (as EigTool does).
    method : {"auto", "lanczos", "svd", "shift-invert", "projection"}
        ``"lanczos"``: one complex Schur form, then batched inverse Lanczos
        per point; ``"svd"``: a dense SVD per point (exact, O(n³) each);
        ``"shift-invert"``: per point a factorization of zI − A and Lanczos
        on (zI − A)⁻¹(zI − A)⁻ᴴ (needs a scipy sparse matrix: ``splu``; or a
        Toeplitz-like LDRMatrix: sparse LU when it is a banded Toeplitz
        matrix, else the pivoted GKO solve of zI − M, which stays
        Toeplitz-like); ``"projection"``: an Arnoldi factorization of size
        ``k``, then σ_min(zĨ − H̃) of the (k + 1) x k Hessenberg matrix, an
        *upper* bound on σ_min(zI − A) (any operator; see Notes).
        ``"auto"``: arrays: ``"svd"`` for n ≤ 12, else ``"lanczos"``;
        sparse and banded Toeplitz LDR input with n > 1000:
        ``"shift-invert"``; other operators: densified up to n = 8192, then
        ``"shift-invert"`` (Toeplitz-like LDR) or ``"projection"``.
    tol : float
        Relative accuracy target of σ_min for ``"lanczos"`` (default 1e-6);
        see Notes.
    maxiter : int, optional
        Lanczos iterations per point (default 300).
    warm_start : bool
        Start each grid row from the singular vectors of the row before
        (mixed 30 % with a random vector) instead of random vectors: about
        10 % fewer iterations, but where the two smallest singular values
        nearly tie (e.g. normal matrices, between two eigenvalues) the bias
        can leave an error of up to ~20·tol; see Notes. Default False.
    rng : optional
        Seed of the random start vectors.
    workers : int, optional
        Threads over the grid's row tiles (default: the number of CPUs, at
        most 4); BLAS is pinned to one thread. The result does not depend on
        it (each tile has its own random stream spawned from ``rng``).
    progress : bool or callable
        ``True``: a tqdm bar on stderr over the grid points; a callable is
        called as ``progress(done, total)`` after each batch. Default False.
    k : int, optional
        Krylov dimension of ``"projection"`` (2 <= k <= n; default
        min(n, 100)).
    client : dask.distributed.Client, optional
        Run the grid on a Dask cluster: the Schur factor (``"lanczos"``),
        the shifted solver (``"shift-invert"``) or H̃ (``"projection"``) is
        scattered once to every worker and each row tile is a task. The
        result is identical, bit for bit, to the serial run with the same
        ``rng`` (the tiles and their random streams are the same).
        ``"svd"`` ignores it. Dask is imported only when a client is given.

    Returns
    -------
    Pseudospectra
        ``re``, ``im``, ``sigma_min`` of shape (ny, nx) and ``eigenvalues``.

    Raises
    ------
    ValueError
        A not square, empty or not finite; an empty or unsorted grid; a bad
        ``tol``, ``npts``, ``box`` or ``k`` (k < 2 or k > n); an unknown
        ``method`` (the message lists the valid ones); ``"shift-invert"``
        for an input without a fast shifted solve.
    TypeError
        ``client`` is not a ``dask.distributed.Client``.
    ImportError
        A ``client`` is given but ``dask.distributed`` is not installed.

    Warns
    -----
    UnderflowWarning
        Where σ_min < 1e-150·s (s = 2**e the power of two with
        1 <= max|A|/s < 2) the resolvent overflows at unit scale; those points
        are set to the clamp ``1e-150·s`` and counted in the message.
    ConvergenceWarning
        Points that did not converge within ``maxiter``.

    Notes
    -----
    With the Schur form A = U T Uᴴ, σ_min(zI − A) = σ_min(T − zI) and
    σ_min⁻² is the largest eigenvalue of (T − zI)⁻¹(T − zI)⁻ᴴ, found by
    Lanczos with two triangular solves per step (Trefethen 1999). Up to 1024
    grid points (several rows) run as one batch: the solves are blocked,
    left-looking substitutions whose off-diagonal panels are GEMMs over all
    shifts (BLAS pinned to one
    thread, with planar real arithmetic and three real GEMMs per complex
    product), converged points leave the batch, and every point starts from a
    random vector (or, with ``warm_start``, from its neighbour's singular
    vector). For real A only Im z ≥ 0 is computed and mirrored, since
    σ_min(z̄I − A) = σ_min(zI − A).

    **Accuracy.** A point stops when the Ritz residual r of θ = σ_min⁻² is at
    most ``2·tol·θ``; an eigenvalue then lies within r of θ, so σ_min has
    relative error at most about ``tol`` (measured on Grcar(200) and normal
    matrices: ≤ 2e-9 at ``tol=1e-6``, ≤ 2e-12 at ``tol=1e-12``), on top of
    the rounding floor ≈ n·u·‖A‖ that any backward-stable method (the SVD
    included) has in absolute terms: values below that floor only say
    "σ_min is tiny". (A gap-based rule r²/gap
    would stop earlier but misjudges near-ties of the two smallest singular
    values, e.g. for normal matrices, so it is not used.) With a random
    start the Ritz vector mixes the two nearly tied singular vectors until it
    resolves them, so the residual bounds the error; a warm start biased
    towards the neighbour's vector weakens that (``warm_start``).

    **Large operators.** ``"shift-invert"`` uses the same stopping rule with
    the three-term Lanczos recurrence on (zI − A)⁻¹(zI − A)⁻ᴴ, one random
    start per point (a random stream per grid row), ``eigenvalues`` empty.
    Far from the spectrum of a large Toeplitz-like matrix the smallest
    singular values cluster and the residual falls slowly (about 200 steps
    at n = 2000 for tol = 1e-6); unconverged points keep their last Ritz
    value (an upper bound of σ_min) and are counted in a ConvergenceWarning.
    A point where zI − A is singular to working precision is reported as
    the clamp. ``"projection"``: with A V_k = V_{k+1} H̃ (V_{k+1} orthonormal)
    (zI − A) V_k = V_{k+1}(zĨ − H̃), so σ_min(zĨ − H̃) ≥ σ_min(zI − A): the
    computed ε-pseudospectra are *inside* the true ones and
    1/σ_min(zĨ − H̃) is a lower bound on ‖(zI − A)⁻¹‖ (Toh & Trefethen
    1996); ``eigenvalues`` are the k Ritz values. Neither route rescales A.

    References
    ----------
    L. N. Trefethen, "Computation of pseudospectra", Acta Numerica 8 (1999).
    L. N. Trefethen and M. Embree, *Spectra and Pseudospectra*, Princeton (2005).
    K.-C. Toh and L. N. Trefethen, "Calculation of pseudospectra by the
    Arnoldi iteration", SIAM J. Sci. Comput. 17 (1996).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from lowdisp.spectral import pseudospectra
    >>> S = sp.diags([np.full(499, 0.3), np.full(500, 2.0)], [1, 0], format="csr")
    >>> ps = pseudospectra(S, re=[2.5, 3.0], im=[0.0], method="shift-invert", rng=0)
    >>> bool(ps.sigma_min[0, 1] > ps.sigma_min[0, 0] > 0)
    True
    >>> pj = pseudospectra(S, re=[2.5, 3.0], im=[0.0], method="projection", k=20, rng=0)
    >>> bool((pj.sigma_min >= ps.sigma_min * (1 - 1e-6)).all())  # an upper bound of σ_min
    True
    >>> A = np.array([[1.0, 100.0], [0.0, 2.0]])
    >>> ps = pseudospectra(A, npts=30)
    >>> ps.sigma_min.shape
    (30, 30)
    >>> bool(ps.contains(1.5, 1.0))  # 0.5 from both eigenvalues, yet in σ_1(A)
    True
    """
    where = "pseudospectra"
    check_option(method, "method", _METHOD_NAMES, where=where)
    tol = check_positive(tol, "tol", where=where)
    if tol >= 1:
        raise ValueError(f"{where}: tol must be in (0, 1); got {tol!r}")
    tol = max(tol, 4 * np.finfo(float).eps)
    npts = check_int(npts, "npts", where=where, low=1)
    maxiter = 300 if maxiter is None else check_int(maxiter, "maxiter", where=where, low=1)
    gen = as_rng(rng, where=where)
    warm = check_bool(warm_start, "warm_start", where=where)
    if workers is None:
        import os

        nworkers = max(1, min(4, os.cpu_count() or 1))
    else:
        nworkers = check_int(workers, "workers", where=where, low=1)
    if not (callable(progress) or isinstance(progress, bool | np.bool_)):
        raise TypeError(
            f"{where}: progress must be True, False or a callable(done, total); got {progress!r}"
        )
    # every option is checked before the O(n³) Schur form
    re_u = _grid_axis(re, "re") if re is not None else None
    im_u = _grid_axis(im, "im") if im is not None else None
    bx_u: tuple[float, ...] | None = None
    if box is not None:
        b = as_array(box, "box", where=where, ndim=1, allow_complex=False, dtype=np.float64)
        if b.size != 4 or not (b[0] < b[1] and b[2] < b[3]):
            raise ValueError(
                f"{where}: box must be (xmin, xmax, ymin, ymax) with xmin < xmax "
                f"and ymin < ymax; got {box!r}"
            )
        bx_u = tuple(float(v) for v in b)
    if k is not None:
        k = check_int(k, "k", where=where, low=2)
    from lowdisp.spectral._large import check_client

    client = check_client(client, where=where)
    route, _kind, factory = _route(A, method, where)
    if route != "dense":
        Aop = A if _kind != "dense" else as_dense_square(A, "A", where=where)
        if _kind == "sparse" and not np.isfinite(A.data).all():
            raise ValueError(f"{where}: A must be finite; it has NaN or Inf entries")
        n = int(Aop.shape[0])
        if k is not None and k > n:
            raise ValueError(f"{where}: k must be at most n = {n} (the order of A); got {k}")
        kk = min(n, _PROJECTION_K) if k is None else k
        opts = _GridOptions(tol, maxiter, gen, warm, nworkers, progress, client)
        return _operator_grid(Aop, route, factory, re_u, im_u, npts, bx_u, opts, kk, where)
    core = _METHODS[method]
    M = as_dense_square(A, "A", where=where)
    # compute at unit scale: M 2**-e (exact), grid 2**-e; results scaled back
    others = [float(np.abs(v).max()) for v in (re_u, im_u) if v is not None]
    if bx_u is not None and (re_u is None or im_u is None):
        others.append(max(abs(v) for v in bx_u))
    M, e = unit_scale(M, *others)
    with blas_threads(1):
        T, _ = complex_schur(M)
        eigs = np.diag(T).copy()
        if re_u is None or im_u is None:
            if bx_u is None:
                bx = _auto_axes(eigs, T)
            else:
                bx = tuple(float(ldexp(np.float64(v), -e)) for v in bx_u)  # type: ignore[assignment]
        re_ = ldexp(re_u, -e) if re_u is not None else np.linspace(bx[0], bx[1], npts)
        im_ = ldexp(im_u, -e) if im_u is not None else np.linspace(bx[2], bx[3], npts)
        opts = _GridOptions(tol, maxiter, gen, warm, nworkers, progress, client)
        S, under, uncon = core(M, T, re_, im_, opts)
    # the clamp is relative to A's scale: 1e-150 2**e (1e-150 for 1 <= max|A| < 2)
    floor = max(float(ldexp(np.float64(UNDERFLOW_CLAMP), e)), _SMALLEST)
    _report(under, uncon, where=where, maxiter=maxiter, clamp=floor)
    if e != 0:
        with np.errstate(over="ignore", under="ignore"):
            re_ = re_u if re_u is not None else ldexp(re_, e)
            im_ = im_u if im_u is not None else ldexp(im_, e)
            eigs = ldexp(eigs, e)
            S = np.maximum(ldexp(S, e), floor)
        if not (np.isfinite(S).all() and np.isfinite(re_).all() and np.isfinite(im_).all()):
            raise ValueError(
                f"{where}: σ_min or the grid overflows at this scale of A and the grid "
                f"(max ~ 2**{e}): choose a grid inside the floating-point range"
            )
    return Pseudospectra(re_, im_, S, eigs)


def plot_pseudospectra(
    A: Any,
    eps: Any = None,
    *,
    ax: Any = None,
    npts: int = 100,
    colorbar: bool = True,
    cmap: str = "viridis",
) -> Any:
    """Contours of σ_min(zI − A) = ε (ε-pseudospectra boundaries) with the eigenvalues.

    Parameters
    ----------
    A : Pseudospectra or (n, n) array_like
        A computed :class:`Pseudospectra`, or a matrix as a shorthand for
        ``pseudospectra(A, npts=npts)`` (see "Plots" in :mod:`lowdisp.spectral`).
    eps : float or sequence of float, optional
        The ε levels; automatic (up to 8 decade-spaced levels) by default.
    ax : matplotlib Axes, optional
    npts : int
        Grid size when A is a matrix.
    colorbar : bool
        Add a colorbar labelled log10 ε.
    cmap : str
        Colormap of the contour lines.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        A grid with fewer than 2 points per side; an ε ≤ 0.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from lowdisp.spectral import plot_pseudospectra
    >>> ax = plot_pseudospectra(np.array([[1.0, 10.0], [0.0, 2.0]]), [0.1, 1.0], npts=30)
    >>> ax.get_xlabel()
    'Re z'
    """
    from lowdisp.spectral._plot import check_cmap, draw_pseudospectra, eps_levels

    where = "plot_pseudospectra"
    colorbar = check_bool(colorbar, "colorbar", where=where)
    npts = check_int(npts, "npts", where=where, low=2)
    cmap = check_cmap(cmap, where=where)
    # the levels are checked before the grid is computed
    levels = None if eps is None else eps_levels(eps, where=where)
    if isinstance(A, Pseudospectra):
        ps = A
    else:
        ps = pseudospectra(as_dense_square(A, "A", where=where), npts=npts)
    return draw_pseudospectra(ps, levels, ax=ax, colorbar=colorbar, cmap=cmap)


#: the smallest positive double (a subnormal)
_SMALLEST = float(np.nextafter(0.0, 1.0))


def _report(
    under: np.ndarray,
    uncon: np.ndarray,
    *,
    where: str,
    maxiter: int,
    clamp: float = UNDERFLOW_CLAMP,
) -> None:
    if under.any():
        warnings.warn(
            f"{where}: σ_min underflowed (σ_min < 1e-150·max|A|) at {int(under.sum())} of "
            f"{under.size} points; they are reported as the clamp {clamp:g}. "
            f"The matrix is extremely non-normal there: any value below about n·eps·‖A‖ "
            f"is rounding noise.",
            UnderflowWarning,
            stacklevel=3,
        )
    if uncon.any():
        warnings.warn(
            f"{where}: inverse Lanczos did not reach tol at {int(uncon.sum())} of "
            f"{uncon.size} points within maxiter={maxiter}; raise maxiter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
