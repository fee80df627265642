"""``lowdisp bench spectral``: pseudospectra and spectral norms against the usual tools.

All timings run with BLAS pinned to one thread and report **process CPU
time** (the primary metric on a shared machine) and wall time, medians over
``--repeat`` runs.

1. σ_min of Grcar(n), n in ``--sizes``, on a ``--npts`` x ``--npts`` grid of
   [−1, 3] × [−3.5, 3.5] (pseudopy's demo box): :func:`lowdisp.spectral.
   pseudospectra` against a loop of ``scipy.linalg.svdvals(zI − A)[-1]`` timed
   on ``--svd-points`` random grid points and extrapolated to the grid, and
   against pseudopy's ``NonnormalMeshgrid`` when it imports (sub-grid,
   extrapolated). Accuracy: max relative error against ``svdvals`` at 50
   random grid points with σ_min ≥ 1e-8‖A‖ (below that both sit near the
   rounding floor n·u·‖A‖).
2. Spectral norm of dense Gaussian matrices (``--norm-sizes``):
   ``spectral_norm`` (Golub–Kahan–Lanczos, tol 1e-10) against
   ``numpy.linalg.norm(A, 2)``, ``scipy.sparse.linalg.svds(k=1)`` (ARPACK,
   tol 1e-10) and a plain power iteration (stop at a 1e-10 relative change or
   1000 iterations).
3. Spectral norm of an n = ``--ldr-n`` Toeplitz-like LDR matrix
   (``lowdisp.structured.toeplitz_like``, rank 2) used only through its fast
   matvecs: time, products, the peak of Python-tracked memory
   (``tracemalloc``) against the 8n² bytes a dense copy would take; reference
   value from ARPACK ``svds`` at tol 0.
4. Issue 9, ``lowdisp pseudospectra`` at moderate n (``--cc-sizes``, default
   256 512 1024 1500; a Gaussian N(0, 1/n) matrix, ε = 1e-2‖A‖₂): the
   pseudospectral radius and abscissa and the numerical radius, today's
   implementation against the one it replaced (kept below as ``_legacy_*``:
   a QZ circular search, eigenvalue-based radial/horizontal searches with a
   dense SVD test per candidate, and 128 dense ``eigvalsh`` angles with
   bounded scalar refinement). The legacy path runs up to ``--old-max``
   (default 512); above, its cost is bounded below by the measured time of
   two 2n × 2n complex eigenproblems (it needed at least two iterations with
   at least one each, besides a QZ per iteration for the radius), shown as
   "≥".
   The last columns time the command's default measures (:func:`lowdisp.
   spectral._cli.compute`: basic, grid, radius). Medians of ``--repeat``
   below n = 1024, single runs above.
"""

from __future__ import annotations

import argparse
import itertools
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla

from lowdisp._bench._common import format_table, save_results, thread_count

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the spectral suite."""
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--npts", type=int, default=100, help="grid points per side")
    parser.add_argument("--svd-points", type=int, default=60, help="svdvals subsample")
    parser.add_argument("--norm-sizes", type=int, nargs="+", default=[2000, 4000])
    parser.add_argument("--ldr-n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--results", default=None, help="directory for the results file")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cc-sizes",
        type=int,
        nargs="+",
        default=[256, 512, 1024, 1500],
        help="orders of the criss-cross / numerical-radius table (256 512 1024 1500)",
    )
    parser.add_argument(
        "--old-max", type=int, default=512, help="largest n at which the legacy path runs (512)"
    )


def _grcar(n: int) -> np.ndarray:
    A = np.eye(n) - np.eye(n, k=-1)
    for j in (1, 2, 3):
        A += np.eye(n, k=j)
    return A


def _cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median (CPU s, wall s) over ``repeat`` runs, and the last result."""
    cpu, wall = [], []
    out = None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return float(np.median(cpu)), float(np.median(wall)), out


def _pseudopy_status() -> tuple[Any, str]:
    try:
        import pseudopy

        return pseudopy, "importable"
    except Exception as exc:  # ImportError, or its broken imports on a current stack
        return None, f"not importable ({type(exc).__name__}: {str(exc)[:60]})"


def _grid_table(args: argparse.Namespace, rng: np.random.Generator) -> str:
    from lowdisp.spectral import pseudospectra

    re = np.linspace(-1, 3, args.npts)
    im = np.linspace(-3.5, 3.5, args.npts)
    total = re.size * im.size
    pseudopy, status = _pseudopy_status()
    pseudospectra(_grcar(20), npts=4, method="lanczos")  # compile the kernels first
    rows = []
    for n in args.sizes:
        A = _grcar(n)
        c, w, ps = _cpu(lambda A=A: pseudospectra(A, re=re, im=im, rng=0), args.repeat)
        k = args.svd_points
        pts = rng.integers(0, total, k)

        def svd_loop(A: np.ndarray = A, pts: np.ndarray = pts) -> None:
            for p in pts:
                z = re[p % re.size] + 1j * im[p // re.size]
                sla.svdvals(z * np.eye(A.shape[0]) - A)[-1]

        sc, sw, _ = _cpu(svd_loop, 1)
        sc, sw = sc * total / k, sw * total / k
        # accuracy against svdvals at 50 random points above the rounding floor
        nrm = float(sla.svdvals(A)[0])
        chk = rng.integers(0, total, 200)
        errs = []
        for p in chk:
            i, j = p % re.size, p // re.size
            ref = float(sla.svdvals((re[i] + 1j * im[j]) * np.eye(n) - A)[-1])
            if ref >= 1e-8 * nrm:
                errs.append(abs(ps.sigma_min[j, i] - ref) / ref)
            if len(errs) == 50:
                break
        pp = "-"
        if pseudopy is not None:
            try:
                sub = 4
                t0 = time.process_time()
                pseudopy.NonnormalMeshgrid(A, -1, 3, sub, -3.5, 3.5, sub)
                pp = f"{(time.process_time() - t0) * total / sub**2:.4g}"
            except Exception as exc:  # broken on a current numpy/matplotlib stack
                pp = f"fails ({type(exc).__name__})"
        rows.append([n, c, w, sc, sw, f"{sc / c:.1f}x", f"{max(errs):.1e}", len(errs), pp])
    head = (
        f"Grcar(n), {args.npts}x{args.npts} grid on [-1,3]x[-3.5,3.5], tol 1e-6, "
        f"svdvals loop on {args.svd_points} points extrapolated; pseudopy: {status}"
    )
    return (
        head
        + "\n"
        + format_table(
            [
                "n",
                "lowdisp CPU s",
                "wall s",
                "svdvals CPU s*",
                "wall s*",
                "speed-up (CPU)",
                "max rel err",
                "checked",
                "pseudopy CPU s*",
            ],
            rows,
        )
    )


def _power(A: np.ndarray, rng: np.random.Generator, tol: float = 1e-10, maxit: int = 1000):
    v = rng.standard_normal(A.shape[1])
    v /= np.linalg.norm(v)
    s_old = 0.0
    s = 0.0
    its = 0
    u: np.ndarray
    while its < maxit:
        its += 1
        u = A @ v
        s = float(np.linalg.norm(u))
        w = A.T @ (u / s)
        v = w / np.linalg.norm(w)
        if abs(s - s_old) <= tol * s:
            break
        s_old = s
    return s, its


def _norm_table(args: argparse.Namespace, rng: np.random.Generator) -> str:
    from scipy.sparse.linalg import svds

    from lowdisp.spectral import spectral_norm

    rows = []
    for n in args.norm_sizes:
        A = rng.standard_normal((n, n))
        c_np, w_np, ref = _cpu(lambda A=A: np.linalg.norm(A, 2), 1)
        c_ld, w_ld, est = _cpu(lambda A=A: spectral_norm(A, method="lanczos", rng=1), args.repeat)
        c_sv, w_sv, sv = _cpu(
            lambda A=A: svds(A, k=1, tol=1e-10, return_singular_vectors=False, random_state=1),
            args.repeat,
        )
        c_pw, w_pw, (pw, its) = _cpu(lambda A=A: _power(A, np.random.default_rng(1)), 1)
        for name, c, w, val, extra in (
            ("numpy.linalg.norm(A, 2)", c_np, w_np, ref, "full SVD"),
            ("lowdisp spectral_norm", c_ld, w_ld, est.value, f"{est.n_matvecs} products"),
            ("scipy svds(k=1, arpack)", c_sv, w_sv, float(sv[0]), "tol 1e-10"),
            ("power iteration", c_pw, w_pw, pw, f"{its} its"),
        ):
            rows.append([n, name, c, w, f"{c_np / c:.1f}x", f"{abs(val / ref - 1):.1e}", extra])
    return "Spectral norm of dense N(0,1) matrices (error vs numpy.linalg.norm)\n" + format_table(
        ["n", "method", "CPU s", "wall s", "speed-up vs numpy", "rel err", "note"], rows
    )


def _ldr_table(args: argparse.Namespace, rng: np.random.Generator) -> str:
    from scipy.sparse.linalg import svds

    from lowdisp.spectral import spectral_norm

    n = args.ldr_n
    try:
        from lowdisp.structured import toeplitz_like
    except ImportError:  # pragma: no cover - structured is part of the package
        return "Toeplitz-like LDR: lowdisp.structured.toeplitz_like not available"
    G = rng.standard_normal((n, 2)) / np.sqrt(n)
    H = rng.standard_normal((n, 2))
    M = toeplitz_like(G, H)
    tracemalloc.start()
    c_ld, w_ld, est = _cpu(lambda: spectral_norm(M, rng=1), 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    c_sv, w_sv, sv = _cpu(
        lambda: svds(M, k=1, tol=0, return_singular_vectors=False, random_state=1), 1
    )
    ref = float(sv[0])
    rows = [
        [
            "lowdisp spectral_norm (GKL, tol 1e-10)",
            c_ld,
            w_ld,
            est.n_matvecs,
            f"{abs(est.value / ref - 1):.1e}",
            f"{peak / 2**20:.1f}",
        ],
        ["scipy svds(k=1, arpack, tol=0) (reference)", c_sv, w_sv, "-", "0", "-"],
    ]
    return (
        f"Toeplitz-like LDR matrix, n = {n}, rank 2, matrix-free "
        f"(dense would need {8 * n * n / 2**30:.3g} GiB)\n"
        + format_table(
            ["method", "CPU s", "wall s", "products", "rel err", "peak traced MiB"], rows
        )
    )


# ---------------------------------------------------------------------------
# 4. criss-cross and numerical radius: today's code against the legacy path
# ---------------------------------------------------------------------------


def _legacy_svals(A: np.ndarray, z: complex) -> np.ndarray:
    return sla.svdvals(z * np.eye(A.shape[0]) - A)


def _legacy_near(values: np.ndarray, dist: np.ndarray, tol: float) -> np.ndarray:
    if values.size == 0:
        return values
    keep = dist <= tol
    if not keep.any():
        keep = dist <= dist.min() * (1 + 1e-6) + tol
    return values[keep]


def _legacy_max_real_crossing(K, M, point, eps, scale):
    lam = sla.eigvals(K, overwrite_a=True, check_finite=False)
    lam = lam[np.isfinite(lam)]
    cand = np.sort(lam.real[np.abs(lam.imag) <= 1e-4 * scale])[::-1]
    slack = eps * 1e-6 + 1e-13 * scale
    for t in cand:
        if _legacy_svals(M, point(t))[-1] <= eps + slack:
            return float(t)
    return None


def _legacy_polish(A, z, eps, direction):
    n = A.shape[0]
    best, best_f = z, abs(_legacy_svals(A, z)[-1] - eps)
    for _ in range(3):
        U, sv, Vh = sla.svd(best * np.eye(n) - A)
        f = sv[-1] - eps
        g = float(np.real(np.conj(U[:, -1]) @ (direction * Vh[-1].conj())))
        if g == 0 or not np.isfinite(g):
            break
        cand = best - (f / g) * direction
        fc = abs(_legacy_svals(A, cand)[-1] - eps)
        if fc < best_f:
            best, best_f = cand, fc
        else:
            break
    return best


def _legacy_mids(M, t, point, eps, periodic):
    if t.size == 0:
        return []
    if t.size == 1:
        return [float(t[0])]
    pairs = list(itertools.pairwise(t))
    if periodic:
        pairs.append((t[-1], t[0] + 2 * np.pi))
    mids = [0.5 * (a + b) for a, b in pairs]
    mids = [float(m) for m in mids if _legacy_svals(M, point(m))[-1] < eps]
    return mids or [float(v) for v in t]


def _legacy_sv_test(A, z, eps):
    s = _legacy_svals(A, z)
    return s.size == 1 or abs(s[-1] - eps) <= abs(s[-2] - eps)


def _legacy_radius(A: np.ndarray, eps: float, maxiter: int = 50) -> float:
    """The pseudospectral radius as computed before issue 9 (QZ circular search)."""
    M = A.astype(np.complex128)
    n = M.shape[0]
    I, Z = np.eye(n), np.zeros((n, n))
    lam = sla.eigvals(M)
    scale = max(float(np.linalg.norm(M, 1)), eps)
    k = int(np.argmax(np.abs(lam)))
    r_best, z_best = float(abs(lam[k])), complex(lam[k])
    thetas = [float(np.angle(lam[k]))]
    for it in range(1, maxiter + 1):
        improved = False
        for th in thetas:
            e = np.exp(1j * th)
            K = np.block([[M / e, -eps * I], [-eps * I, e * M.conj().T]])
            r = _legacy_max_real_crossing(K, M, lambda t, e=e: t * e, eps, scale)
            if r is not None and r > r_best + 1e-14 * max(1.0, r_best):
                r_best, z_best, improved = r, r * e, True
        if not improved and it > 1:
            break
        F = np.block([[-eps * I, M], [r_best * I, Z]])
        G = np.block([[Z, r_best * I], [M.conj().T, -eps * I]])
        with np.errstate(all="ignore"):
            lc = sla.eigvals(F, G, overwrite_a=True, check_finite=False)
        lc = lc[np.isfinite(lc)]
        ang = np.sort(np.mod(_legacy_near(np.angle(lc), np.abs(np.abs(lc) - 1), 1e-8), 2 * np.pi))
        ang = np.array([a for a in ang if _legacy_sv_test(M, r_best * np.exp(1j * a), eps)])
        rb = r_best
        thetas = _legacy_mids(M, ang, lambda a, rb=rb: rb * np.exp(1j * a), eps, True)
        if not thetas:
            break
    u = z_best / abs(z_best) if z_best != 0 else 1.0 + 0j
    return float(abs(_legacy_polish(M, z_best, eps, u)))


def _legacy_abscissa(A: np.ndarray, eps: float, maxiter: int = 50) -> float:
    """The pseudospectral abscissa as computed before issue 9."""
    M = A.astype(np.complex128)
    n = M.shape[0]
    I = np.eye(n)
    lam = sla.eigvals(M)
    scale = max(float(np.linalg.norm(M, 1)), eps)
    k = int(np.argmax(lam.real))
    x_best, z_best = float(lam[k].real), complex(lam[k])
    ys = [float(lam[k].imag)]
    for it in range(1, maxiter + 1):
        improved = False
        for y in ys:
            C = M - 1j * y * I
            K = np.block([[C, -eps * I], [-eps * I, C.conj().T]])
            x = _legacy_max_real_crossing(K, M, lambda t, y=y: complex(t, y), eps, scale)
            if x is not None and x > x_best + 1e-14 * max(1.0, abs(x_best)):
                x_best, z_best, improved = x, complex(x, y), True
        if not improved and it > 1:
            break
        B = M - x_best * I
        H = np.block([[B, -eps * I], [eps * I, -B.conj().T]])
        lh = sla.eigvals(H, overwrite_a=True, check_finite=False)
        cand = np.sort(_legacy_near(lh.imag, np.abs(lh.real), 1e-8 * scale))
        cand = np.array([y for y in cand if _legacy_sv_test(M, complex(x_best, y), eps)])
        xb = x_best
        ys = _legacy_mids(M, cand, lambda y, xb=xb: complex(xb, y), eps, False)
        if not ys:
            break
    return float(_legacy_polish(M, z_best, eps, 1.0 + 0j).real)


def _legacy_numerical_radius(A: np.ndarray, npts: int = 128) -> float:
    """The numerical radius as computed before issue 9 (dense eigvalsh per angle)."""
    from scipy.optimize import minimize_scalar

    def lmax(t: float) -> float:
        e = np.exp(1j * t)
        return float(np.linalg.eigvalsh(0.5 * (e * A + np.conj(e) * A.conj().T))[-1])

    theta = 2 * np.pi * np.arange(npts) / npts
    f = np.array([lmax(t) for t in theta])
    best, h = float(f.max()), 2 * np.pi / npts
    peaks = np.flatnonzero((f >= np.roll(f, 1)) & (f >= np.roll(f, -1)))
    for p in peaks[np.argsort(f[peaks])[::-1][:3]]:
        res = minimize_scalar(
            lambda t: -lmax(t),
            bounds=(theta[p] - h, theta[p] + h),
            method="bounded",
            options={"xatol": 1e-14},
        )
        best = max(best, -float(res.fun))
    return best


def _legacy_step_bound(A: np.ndarray, eps: float) -> float:
    """A measured lower bound on the legacy criss-cross: two of its 2n x 2n eigenproblems.

    Each legacy iteration ran at least one 2n x 2n complex eigenproblem (the
    radial/horizontal search) besides its global step (a QZ for the radius,
    slower still), and it ran at least two iterations.
    """
    n = A.shape[0]
    M = A.astype(np.complex128)
    I = np.eye(n)
    t0 = time.perf_counter()
    sla.eigvals(np.block([[M, -eps * I], [-eps * I, M.conj().T]]), overwrite_a=True)
    return 2 * (time.perf_counter() - t0)


def _forget_schur() -> None:
    """Drop the cached Schur form and grid plan (shared by the routines of one matrix)."""
    from lowdisp.spectral import _common, _pseudo

    _common._SCHUR_CACHE.clear()
    _pseudo._PLAN_CACHE.clear()


def _crisscross_table(args: argparse.Namespace) -> str:
    from lowdisp.spectral import (
        numerical_radius,
        pseudospectral_abscissa,
        pseudospectral_radius,
        spectral_norm,
    )
    from lowdisp.spectral._cli import DEFAULT_MEASURES, compute

    rows = []
    for n in args.cc_sizes:
        A = np.random.default_rng(args.seed).standard_normal((n, n)) / np.sqrt(n)
        eps = 1e-2 * spectral_norm(A, rng=0).value
        rep = args.repeat if n < 1024 else 1
        bound = _legacy_step_bound(A, eps) if n > args.old_max else 0.0
        for name, new, old in (
            (
                "pseudospectral radius",
                lambda A=A, e=eps: pseudospectral_radius(A, e, rng=0).value,
                lambda A=A, e=eps: _legacy_radius(A, e),
            ),
            (
                "pseudospectral abscissa",
                lambda A=A, e=eps: pseudospectral_abscissa(A, e, rng=0).value,
                lambda A=A, e=eps: _legacy_abscissa(A, e),
            ),
            (
                "numerical radius",
                lambda A=A: numerical_radius(A, rng=0),
                lambda A=A: _legacy_numerical_radius(A),
            ),
        ):
            c, w, v = _cpu(lambda new=new: (_forget_schur(), new())[1], rep)
            if n <= args.old_max:
                _oc, ow, ov = _cpu(old, 1 if n > 256 else rep)
                rows.append(
                    [n, name, w, c, f"{ow:.4g}", f"{ow / w:.1f}x", f"{abs(v - ov) / abs(ov):.1e}"]
                )
            elif name != "numerical radius":
                rows.append([n, name, w, c, f">= {bound:.4g}", f">= {bound / w:.1f}x", "-"])
            else:
                rows.append([n, name, w, c, "-", "-", "-"])
        _forget_schur()  # the command starts from scratch (no Schur form of A yet)
        c, w, r = _cpu(lambda A=A: compute(A, measures=DEFAULT_MEASURES, rng=0), 1)
        rows.append(
            [
                n,
                f"command default ({','.join(DEFAULT_MEASURES)})",
                w,
                c,
                "-",
                "-",
                f"grid {r.grid.re.size}^2",
            ]
        )
    return (
        "lowdisp pseudospectra at moderate n (issue 9): Gaussian N(0,1/n), eps = 1e-2 ||A||_2; "
        f"legacy path run up to n = {args.old_max}, above it '>=' two 2n x 2n eigenproblems\n"
        + format_table(
            ["n", "measure", "wall s", "CPU s", "legacy wall s", "speed-up", "rel diff"], rows
        )
    )


def run(args: argparse.Namespace) -> int:
    """Run the four tables, print them and save them under benchmarks/results/."""
    from lowdisp._config import blas_threads

    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 200] or [100]
        args.norm_sizes = [min(args.norm_sizes)]
        args.ldr_n = min(args.ldr_n, 20_000)
        args.repeat = 1
        args.svd_points = min(args.svd_points, 30)
        args.cc_sizes = [min(args.cc_sizes)] if args.cc_sizes else []
        args.cc_sizes = [min(s, 128) for s in args.cc_sizes]
        args.old_max = min(args.old_max, 128)
    rng = np.random.default_rng(args.seed)
    with blas_threads(1):
        parts = [
            f"# lowdisp bench spectral (BLAS pinned to 1 thread; threads: {thread_count()})",
            _grid_table(args, rng),
            _norm_table(args, rng),
            _ldr_table(args, rng),
        ]
        if args.cc_sizes:
            parts.append(_crisscross_table(args))
    text = "\n\n".join(parts)
    print(text)
    if not args.no_save:
        path = save_results("spectral", text, args.results)
        print(f"\nsaved {path}")
    return 0
