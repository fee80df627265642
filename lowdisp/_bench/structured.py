# mypy: disable-error-code="misc, arg-type, no-untyped-def"
"""``lowdisp bench structured``: the fast LDR engine against dense GEMM and peers.

Everything runs on one thread (BLAS pinned by threadpoolctl, ``scipy.fft``
with ``workers=1``). Sections:

1. **acceptance**: the headline figures of the engine issue, each with its
   target: Toeplitz-like r=4 batch 64 float64 against dense and against the
   FFT floor (the ``2r + 2`` batched real FFTs of the length the algorithm
   uses, nothing else), its vjp/forward ratio and the crossover; plain
   Toeplitz (rank 2) against ``scipy.linalg.matmul_toeplitz``; LDR-SD against
   dense with its accuracy on decaying subdiagonals; LDR-TD time and peak
   memory; Cauchy-like matvec memory; Numba compile times (cold and warm
   cache, in fresh processes).
2. **grid**: n in {256, 1024, 4096, 16384}, r in {1, 4, 16}, batch in
   {1, 64}, float32 and float64: forward, transpose and vjp of each family
   with the dense matmul of the materialized matrix (dense is skipped at
   n = 16384 except for the headline configurations), ``matmul_toeplitz``
   where it applies and ``torch-structured`` when importable.

3. **crossover** (``--crossover``, alone): where LDR-SD and Cauchy-like
   overtake dense. Products ``M @ X`` (batch 1, 16, 64; r = 4, float64) for n
   from 1024 doubling to ``--max-n`` (32768 by default: the dense matrix takes
   8.6 GB there), and the Cauchy-like solve (GKO, O(r n^2)) against dense LU
   (O(n^3)) for n from 256 to 4096. Prints, per case, the first measured n
   from which the structured matrix stays faster, or "not below n = N".

Medians of ``--repeat`` (>= 5) runs. ``--quick`` runs a small grid.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from lowdisp._bench._common import format_table, median_time, save_results, thread_count

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the structured suite."""
    parser.add_argument(
        "--quick", action="store_true", help="small grid: n in {256, 1024}, r in {1, 4}"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="dense baseline at n = 16384 everywhere, no per-family size caps (long)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (median, >= 5)")
    parser.add_argument("--skip-grid", action="store_true", help="acceptance section only")
    parser.add_argument("--skip-acceptance", action="store_true", help="grid only")
    parser.add_argument("--skip-compile", action="store_true", help="do not time Numba compiles")
    parser.add_argument(
        "--crossover",
        action="store_true",
        help="only the crossover section: LDR-SD and Cauchy-like vs dense for n = 4096 .. "
        "--max-n (products) and the Cauchy-like solve vs dense LU",
    )
    parser.add_argument(
        "--max-n",
        type=int,
        default=32768,
        help="largest n of the crossover section (default 32768; its dense matrix is 8 n^2 "
        "bytes, 8.6 GB)",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the interleaved (acceptance) cases by this process's CPU time "
        "(time.process_time) instead of wall time: on a shared, loaded machine",
    )
    parser.add_argument("--results", default=None, help="directory for the results file")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--seed", type=int, default=0)


# --------------------------------------------------------------------------
# cases: each returns (forward, transpose, vjp, dense-matrix builder)
# --------------------------------------------------------------------------


def _toeplitz_case(n: int, r: int, dtype: Any, rng: np.random.Generator, kind: str = "sylvester"):
    from lowdisp.structured.families.toeplitz import ToeplitzPlan

    G = rng.standard_normal((n, r)).astype(dtype)
    H = rng.standard_normal((n, r)).astype(dtype)
    e, f = (1.0, -1.0) if kind == "sylvester" else (0.0, 0.0)
    plan = ToeplitzPlan(G, H, e, f, kind)
    return (
        plan,
        (lambda X: plan.matmat(X)),
        (lambda Y: plan.rmatmat(Y)),
        (lambda X, dY: plan.vjp(X, dY)),
    )


def _sd_params(n: int, dtype: Any, rng: np.random.Generator):
    a = np.exp(rng.normal(-0.05, 0.05, n - 1)).astype(dtype)
    b = np.exp(rng.normal(-0.05, 0.05, n - 1)).astype(dtype)
    return a, b


def _sd_case(n: int, r: int, dtype: Any, rng: np.random.Generator, corners: bool = False):
    """LDR-SD; ``corners``: ``fa = 0.5, fb = -0.5`` (what ``random_ldr("subdiagonal")`` uses)."""
    from lowdisp.structured.families import subdiagonal

    a, b = _sd_params(n, dtype, rng)
    fa, fb = (0.5, -0.5) if corners else (0.0, 0.0)
    G = rng.standard_normal((n, r)).astype(dtype)
    H = rng.standard_normal((n, r)).astype(dtype)
    return (
        None,
        lambda X: subdiagonal.subdiag_matmat(a, fa, b, fb, G, H, X),
        lambda Y: subdiagonal.subdiag_rmatmat(a, fa, b, fb, G, H, Y),
        lambda X, dY: subdiagonal.subdiag_vjp(a, fa, b, fb, G, H, X, dY),
    )


def _td_params(n: int, dtype: Any):
    return (
        np.full(n - 1, 0.2, dtype),
        np.full(n, 0.5, dtype),
        np.full(n - 1, 0.2, dtype),
        0.1,
    )


def _td_general_params(n: int, dtype: Any, rng: np.random.Generator):
    """Tridiagonal operators as ``random_ldr("tridiagonal")`` draws them (``||A|| > 1``:
    every Krylov term counts)."""
    return (
        (1 + 0.1 * rng.standard_normal(n - 1)).astype(dtype),
        (0.1 * rng.standard_normal(n)).astype(dtype),
        (0.1 * rng.standard_normal(n - 1)).astype(dtype),
        0.3,
    )


def _td_case(n: int, r: int, dtype: Any, rng: np.random.Generator, general: bool = False):
    """LDR-TD; ``general``: non-contractive operators (``_td_general_params``)."""
    from lowdisp.structured.families import tridiagonal

    P = _td_general_params(n, dtype, rng) if general else _td_params(n, dtype)
    G = rng.standard_normal((n, r)).astype(dtype)
    H = rng.standard_normal((n, r)).astype(dtype)
    return (
        None,
        lambda X: tridiagonal.tridiag_matmat(P, P, G, H, X),
        lambda Y: tridiagonal.tridiag_rmatmat(P, P, G, H, Y),
        lambda X, dY: tridiagonal.tridiag_vjp(P, P, G, H, X, dY),
    )


def _cauchy_case(n: int, r: int, dtype: Any, rng: np.random.Generator):
    from lowdisp.structured.families import cauchy

    s = (np.arange(n) + 0.5).astype(dtype)
    t = (-np.arange(n) - 0.25).astype(dtype)
    G = rng.standard_normal((n, r)).astype(dtype)
    H = rng.standard_normal((n, r)).astype(dtype)
    return (
        None,
        lambda X: cauchy.cauchy_matmat(s, t, G, H, X),
        lambda Y: cauchy.cauchy_rmatmat(s, t, G, H, Y),
        lambda X, dY: cauchy.cauchy_vjp(s, t, G, H, X, dY),
    )


def _vandermonde_case(n: int, r: int, dtype: Any, rng: np.random.Generator):
    from lowdisp.structured.families import vandermonde

    v = np.linspace(-0.99, 0.99, n).astype(dtype)
    G = rng.standard_normal((n, r)).astype(dtype)
    H = rng.standard_normal((n, r)).astype(dtype)
    return (
        None,
        lambda X: vandermonde.vandermonde_matmat(v, G, H, X),
        lambda Y: vandermonde.vandermonde_rmatmat(v, G, H, Y),
        lambda X, dY: vandermonde.vandermonde_vjp(v, G, H, X, dY),
    )


FAMILIES: dict[str, Callable[..., Any]] = {
    "toeplitz-like (Z1,Z-1)": _toeplitz_case,
    "toeplitz-like stein (Z0)": lambda n, r, dt, rng: _toeplitz_case(n, r, dt, rng, "stein"),
    "ldr-sd": _sd_case,
    "ldr-td": _td_case,
    "cauchy-like": _cauchy_case,
    "vandermonde-like": _vandermonde_case,
}
#: largest n per family in the default grid (O(r n^2) families, and LDR-SD whose
#: n = 16384 figures are in the acceptance section); ``--full`` lifts the caps
MAX_N = {"ldr-sd": 4096, "ldr-td": 1024, "cauchy-like": 4096, "vandermonde-like": 1024}
#: families timed at rank 4 only
RANK4_ONLY = ("ldr-td", "cauchy-like", "vandermonde-like")


def _dense(n: int, dtype: Any) -> np.ndarray:
    """A dense n x n matrix (values do not change GEMM time)."""
    W = np.empty((n, n), dtype)
    W[...] = 0.5
    W[np.arange(n), np.arange(n)] = 1.0
    return W


def _fft_floor_fn(n: int, r: int, b: int, dtype: Any, cyclic: bool) -> Callable[[], None]:
    """The 2r+2 batched real FFTs of the transform length the algorithm uses, nothing else."""
    import scipy.fft as sfft

    X = np.random.default_rng(0).standard_normal((b, n)).astype(dtype)
    if cyclic:  # r+1 real DFTs of length n and r+1 half-length complex FFTs (odd DFT)
        Z = (X[:, : n // 2] + 1j * X[:, n // 2 :]).astype(np.result_type(dtype, np.complex64))

        def fn() -> None:
            for _ in range(r + 1):
                sfft.rfft(X, axis=-1, workers=1)
                sfft.fft(Z, axis=-1, workers=1)

        return fn
    L = int(sfft.next_fast_len(2 * n - 1, real=True))
    Xp = np.zeros((b, L), dtype)
    Xp[:, :n] = X

    def fn2() -> None:
        for _ in range(r + 1):
            S = sfft.rfft(Xp, axis=-1, workers=1)
            sfft.irfft(S, L, axis=-1, workers=1)

    return fn2


def _fft_floor(n: int, r: int, b: int, dtype: Any, cyclic: bool) -> float:
    """Median time of :func:`_fft_floor_fn`."""
    return median_time(_fft_floor_fn(n, r, b, dtype, cyclic), repeat=5)


#: the clock of :func:`_interleaved` (``run`` sets it from ``--cpu-time``)
_CLOCK: Callable[[], float] = time.perf_counter


def _interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Medians of ``repeat`` rounds that call every function once, in turn.

    On a shared machine the load drifts; timing the cases round-robin exposes
    them to the same conditions, so their ratios are meaningful. The clock is
    ``_CLOCK`` (wall time, or CPU time with ``--cpu-time``).
    """
    for fn in fns.values():
        fn()  # warm-up (plans, compiles, caches)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = _CLOCK()
            fn()
            samples[k].append(_CLOCK() - t0)
    return {k: float(np.median(v)) for k, v in samples.items()}


def _peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


# --------------------------------------------------------------------------
# compile times
# --------------------------------------------------------------------------

_COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
import numpy as np
from lowdisp.structured.families import subdiagonal, toeplitz, tridiagonal
t1 = time.perf_counter()
c1 = time.process_time()
n = 8
for dt in (np.float64, np.float32, np.complex128):
    P = tuple(np.ones(k, dt) for k in (n - 1, n, n - 1)) + (0.5,)
    G = np.ones((n, 2), dt); X = np.ones((n, 8), dt)
    tridiagonal.tridiag_matmat(P, P, G, G, X)
    tridiagonal.tridiag_vjp(P, P, G, G, X, X)
    subdiagonal.subdiag_matmat(P[0], 0.5, P[0], 0.5, G, G, X)
    a = np.full(63, 0.9, dt); G64 = np.ones((64, 2), dt); X64 = np.ones((64, 1), dt)
    for f in (0.0, 0.5):
        subdiagonal.subdiag_matmat(a, f, a, f, G64, G64, X64)
        subdiagonal.subdiag_vjp(a, f, a, f, G64, G64, X64, X64)
    plan = toeplitz.ToeplitzPlan(G, G, 1.0, -1.0)
    plan.matmat(X)
    plan.vjp(X, X)
t2 = time.perf_counter()
c2 = time.process_time()
print(t1 - t0, t2 - t1, c2 - c1)
"""


def _compile_times() -> list[tuple[float, float, float]]:
    """[(process wall, imports, kernels)] of two fresh processes sharing one empty cache dir.

    The first compiles every structured Numba kernel (all signatures used:
    float64, float32, complex128); the second loads them from the cache. With
    ``--cpu-time`` the kernels' figure is the process's CPU time.
    """
    out = []
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        for _ in range(2):
            t0 = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-c", _COMPILE_SNIPPET],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            imp, ker, ker_cpu = (float(x) for x in res.stdout.split())
            if _CLOCK is time.process_time:
                ker = ker_cpu
            out.append((wall, imp, ker))
    return out


# --------------------------------------------------------------------------
# acceptance section
# --------------------------------------------------------------------------


def _acceptance(args: argparse.Namespace, rng: np.random.Generator, lines: list[str]) -> None:
    import scipy.linalg as sla

    from lowdisp.structured.families.toeplitz import ToeplitzPlan

    rep = max(7, args.repeat)  # acceptance figures: at least 7 interleaved rounds
    b, r, dt = 64, 4, np.float64
    rows = []
    verdict = []

    # 1. Toeplitz-like r=4 batch 64 float64
    tl = {}
    for n in (1024, 2048, 4096, 16384):
        plan, fwd, _, vjp = _toeplitz_case(n, r, dt, rng)
        X = rng.standard_normal((n, b))
        W = _dense(n, dt)
        t = _interleaved(
            {
                "dense": lambda W=W, X=X: W @ X,
                "fwd": lambda f=fwd, X=X: f(X),
                "vjp": lambda v=vjp, X=X: v(X, X),
                "floor": _fft_floor_fn(n, r, b, dt, plan.cyclic),
                "floor2n": _fft_floor_fn(n, r, b, dt, False),
            },
            rep,
        )
        del W
        t_dense, t_fwd, t_vjp = t["dense"], t["fwd"], t["vjp"]
        t_floor, t_floor2n = t["floor"], t["floor2n"]
        tl[n] = (t_dense, t_fwd, t_vjp, t_floor)
        rows.append(
            (
                "toeplitz-like r=4",
                n,
                t_dense * 1e3,
                t_fwd * 1e3,
                t_dense / t_fwd,
                t_floor * 1e3,
                t_fwd / t_floor,
                t_floor2n * 1e3,
                t_vjp / t_fwd,
            )
        )
    lines.append("Toeplitz-like (Z_1, Z_-1), r = 4, batch 64, float64 (ms)")
    lines.append(
        format_table(
            [
                "case",
                "n",
                "dense",
                "lowdisp",
                "dense/lowdisp",
                "fft floor",
                "lowdisp/floor",
                "floor(2n pad)",
                "vjp/fwd",
            ],
            rows,
        )
    )
    d4, f4, v4, fl4 = tl[4096]
    d16, f16, _, _ = tl[16384]
    verdict += [
        f"[{'PASS' if d4 / f4 >= 4 else 'FAIL'}] TL n=4096: {d4 / f4:.2f}x faster than dense "
        "(target >= 4x, issue 11)",
        f"[{'PASS' if d16 / f16 >= 6 else 'FAIL'}] TL n=16384: {d16 / f16:.2f}x faster than dense "
        "(target >= 6x)",
        f"[{'PASS' if tl[2048][1] < tl[2048][0] else 'FAIL'}] TL crossover: n=1024 "
        f"{tl[1024][0] / tl[1024][1]:.2f}x, n=2048 {tl[2048][0] / tl[2048][1]:.2f}x "
        "(target: faster than dense at n <= 2048)",
        f"[{'PASS' if f4 / fl4 <= 1.5 else 'FAIL'}] TL n=4096 within {f4 / fl4:.2f}x of the FFT "
        "floor of its own transforms (target <= 1.5x)",
        f"[{'PASS' if v4 / f4 <= 3 else 'FAIL'}] TL n=4096 vjp (G, H, X) = {v4 / f4:.2f}x forward "
        "(target <= 3x)",
    ]

    # 2. plain Toeplitz rank 2 vs scipy.linalg.matmul_toeplitz
    n = 4096
    c, rr = rng.standard_normal(n), rng.standard_normal(n)
    rr[0] = c[0]
    X = rng.standard_normal((n, b))
    G2, H2 = toeplitz_generators(c, rr)
    plan = ToeplitzPlan(G2, H2, 1.0, -1.0, "sylvester")
    ref = sla.matmul_toeplitz((c, rr), X)
    err = float(np.linalg.norm(plan.matmat(X) - ref) / np.linalg.norm(ref))
    t = _interleaved(
        {"scipy": lambda: sla.matmul_toeplitz((c, rr), X), "lowdisp": lambda: plan.matmat(X)}, rep
    )
    t_sc, t_ld = t["scipy"], t["lowdisp"]
    lines.append("")
    lines.append(
        f"plain Toeplitz (rank 2), n = 4096, batch 64: matmul_toeplitz {t_sc * 1e3:.2f} ms, "
        f"lowdisp {t_ld * 1e3:.2f} ms, ratio {t_sc / t_ld:.2f}x, rel. diff {err:.1e}"
    )
    verdict.append(
        f"[{'PASS' if t_ld <= t_sc else 'FAIL'}] plain Toeplitz rank 2 n=4096: "
        f"{t_sc / t_ld:.2f}x matmul_toeplitz's speed (target >= 1x)"
    )

    # 3. LDR-SD without and with corners, LDR-TD: one table
    rows = []
    sd: dict[tuple[bool, int], tuple[float, float, float]] = {}
    for corners in (False, True):
        for n in (1024, 4096, 16384):
            _, fwd, _, vjp = _sd_case(n, r, dt, rng, corners)
            X = rng.standard_normal((n, b))
            W = _dense(n, dt)
            cases = {"dense": lambda W=W, X=X: W @ X, "fwd": lambda f=fwd, X=X: f(X)}
            if n <= 4096:
                cases["vjp"] = lambda v=vjp, X=X: v(X, X)
            t = _interleaved(cases, rep)
            del W
            t_dense, t_fwd, t_vjp = t["dense"], t["fwd"], t.get("vjp", float("nan"))
            sd[corners, n] = (t_dense, t_fwd, t_vjp)
            name = "ldr-sd r=4" + (" corners" if corners else "")
            rows.append((name, n, t_dense * 1e3, t_fwd * 1e3, t_dense / t_fwd, t_vjp / t_fwd))
    n = 4096
    td = {}
    for general in (False, True):
        _, fwd, _, vjp = _td_case(n, r, dt, rng, general)
        X = rng.standard_normal((n, b))
        W = _dense(n, dt)
        t = _interleaved(
            {
                "dense": lambda W=W, X=X: W @ X,
                "fwd": lambda f=fwd, X=X: f(X),
                "vjp": lambda v=vjp, X=X: v(X, X),
            },
            rep,
        )
        del W
        td[general] = (t["dense"], t["fwd"], t["vjp"])
        name = "ldr-td r=4 " + ("||A||>1" if general else "tridiag(.2,.5,.2)")
        rows.append(
            (name, n, t["dense"] * 1e3, t["fwd"] * 1e3, t["dense"] / t["fwd"], t["vjp"] / t["fwd"])
        )
    lines.append("")
    lines.append("LDR-SD (corners: fa = 0.5, fb = -0.5) and LDR-TD, r = 4, batch 64, float64 (ms)")
    lines.append(format_table(["case", "n", "dense", "lowdisp", "dense/lowdisp", "vjp/fwd"], rows))
    acc = {(c, d): _sd_accuracy(rng, c, d) for c in (False, True) for d in (np.float64, np.float32)}
    for corners, target in ((True, 1.0), (False, 0.8)):
        d4, f4, v4 = sd[corners, 4096]
        d16, f16, _ = sd[corners, 16384]
        what = "with corners" if corners else "without corners"
        verdict += [
            f"[{'PASS' if f4 <= target * d4 else 'FAIL'}] LDR-SD {what} n=4096: "
            f"{f4 / d4:.2f}x the dense time (target <= {target}x)",
            f"[{'PASS' if v4 <= 3 * f4 else 'FAIL'}] LDR-SD {what} n=4096: vjp "
            f"{v4 / f4:.2f}x forward (target <= 3x)",
            f"[{'PASS' if d16 >= (3 if corners else 1) * f16 else 'FAIL'}] LDR-SD {what} "
            f"n=16384: {d16 / f16:.2f}x faster than dense (target >= {3 if corners else 1}x)",
        ]
        for d, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            e = acc[corners, d]
            verdict.append(
                f"[{'PASS' if e <= tol else 'FAIL'}] LDR-SD {what} n=4096 "
                f"{np.dtype(d).name}, a_i = exp(N(-0.05, 0.05^2)): relative error {e:.1e} vs "
                f"repeated-matvec Krylov oracle (target <= {tol:.0e})"
            )
    d, f, _ = td[False]
    dg, fg, _ = td[True]
    verdict += [
        f"[{'PASS' if f <= 4.2 * d else 'FAIL'}] LDR-TD r=4 n=4096 batch 64, "
        f"A = B = tridiag(0.2, 0.5, 0.2): forward {f / d:.2f}x the dense time (target <= 4.2x); "
        "||A|| ||B|| < 1 cuts the Krylov sum after O(log eps / log ||A|| ||B||) terms: "
        "O(k r n K) time",
        f"[info] LDR-TD with ||A|| > 1 (random_ldr's operators): {fg / dg:.2f}x the dense time, "
        "O(k r n^2): two GEMMs of 2 r n^2 k flops (2r = 8 times the dense product's)",
    ]
    _, fwd, _, _ = _td_case(n, r, dt, rng)
    X = rng.standard_normal((n, b))
    mem_td = _peak_mb(lambda: fwd(X))
    verdict.append(
        f"[{'PASS' if mem_td < 10 else 'FAIL'}] LDR-TD peak extra memory {mem_td:.1f} MB "
        "(target < 10 MB; one n x n float64 matrix is 134 MB)"
    )

    # 5. Cauchy-like n = 16384 matvec memory
    n = 16384
    _, fwd, _, _ = _cauchy_case(n, r, dt, rng)
    x = rng.standard_normal((n, 1))
    t0 = time.perf_counter()
    mem_c = _peak_mb(lambda: fwd(x))
    t_c = time.perf_counter() - t0
    verdict.append(
        f"[{'PASS' if mem_c < 10 else 'FAIL'}] Cauchy-like n=16384 r=4 matvec: peak extra "
        f"memory {mem_c:.1f} MB (target < 10 MB; n x n would be 2147 MB), {t_c:.2f} s"
    )

    # 6. compile times
    if not args.skip_compile:
        (cw, ci, ck), (ww, wi, wk) = _compile_times()
        clk = " CPU" if _CLOCK is time.process_time else ""
        verdict += [
            f"[{'PASS' if ck < 20 else 'FAIL'}] first-call compile of all structured Numba kernels "
            f"(fresh process, empty cache): {ck:.1f} s{clk} (process {cw:.1f} s incl. "
            f"{ci:.1f} s imports) (target < 20 s)",
            f"[{'PASS' if wk < 2 else 'FAIL'}] second process, warm cache: kernels {wk:.2f} s{clk} "
            f"(process {ww:.1f} s incl. {wi:.1f} s imports) (target < 2 s)",
        ]
    lines.append("")
    lines.append("acceptance")
    lines.extend(verdict)


def toeplitz_generators(c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact rank-2 generators of T = toeplitz(c, r) for Z_1 T - T Z_-1 = G H^T.

    The displacement lives in row 0 (``c_{n-1-j} - r_{j+1}``, corner ``2 c_0``)
    and column n-1 (``r_{n-i} + c_i``).
    """
    n = c.shape[0]
    G, H = np.zeros((n, 2)), np.zeros((n, 2))
    G[0, 0] = 1.0
    H[: n - 1, 0] = c[n - 1 : 0 : -1] - r[1:]
    H[n - 1, 0] = 2 * c[0]
    G[1:, 1] = r[n - 1 : 0 : -1] + c[1:]
    H[n - 1, 1] = 1.0
    return G, H


def _sd_accuracy(rng: np.random.Generator, corners: bool = False, dtype: Any = np.float64) -> float:
    """LDR-SD n=4096 r=4, decaying subdiagonals (``fa = 0.5, fb = -0.5`` with corners), one
    column in ``dtype`` against repeated matvecs in float64."""
    from lowdisp.structured.families import subdiagonal

    n, r = 4096, 4
    a, b = _sd_params(n, np.float64, rng)
    fa, fb = (0.5, -0.5) if corners else (0.0, 0.0)
    G, H, x = rng.standard_normal((n, r)), rng.standard_normal((n, r)), rng.standard_normal(n)
    ref = np.zeros(n)
    for i in range(r):
        v = H[:, i].copy()
        w = np.empty(n)
        for k in range(n):
            w[k] = v @ x
            v = np.concatenate(([fb * v[-1]], b * v[:-1]))
        u = G[:, i].copy()
        for k in range(n):
            ref += w[k] * u
            u = np.concatenate(([fa * u[-1]], a * u[:-1]))
    ref /= 1 - fa * fb * np.prod(a) * np.prod(b)
    a_, b_, G_, H_, x_ = (v.astype(dtype) for v in (a, b, G, H, x[:, None]))
    y = subdiagonal.subdiag_matmat(a_, fa, b_, fb, G_, H_, x_)[:, 0]
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


# --------------------------------------------------------------------------
# grid
# --------------------------------------------------------------------------


def _grid(args: argparse.Namespace, rng: np.random.Generator, lines: list[str]) -> None:
    import scipy.linalg as sla

    sizes = [256, 1024] if args.quick else [256, 1024, 4096, 16384]
    ranks = [1, 4] if args.quick else [1, 4, 16]
    batches = [1, 64]
    dtypes = [np.float32, np.float64]
    rep = max(5, args.repeat)
    torch_peer = _torch_peer()
    if torch_peer is None:
        lines.append("torch-structured: not importable, peer column skipped")
    else:
        import importlib.metadata as md

        import torch

        lines.append(
            f"torch-structured {md.version('torch-structured')} on torch {torch.__version__},"
            " 1 thread (peer column)"
        )
    rows = []
    for fam, make in FAMILIES.items():
        for n in sizes:
            if n > MAX_N.get(fam, n) and not args.full:
                continue
            for dt in dtypes:
                W = None
                dense_ok = n < 16384 or args.full
                for r in ranks:
                    if fam in RANK4_ONLY and r != 4:
                        continue
                    _, fwd, tr, vjp = make(n, r, dt, rng)
                    for b in batches:
                        X = rng.standard_normal((n, b)).astype(dt)
                        t_f = median_time(lambda f=fwd, X=X: f(X), repeat=rep)
                        t_t = median_time(lambda f=tr, X=X: f(X), repeat=rep)
                        t_v = median_time(lambda f=vjp, X=X: f(X, X), repeat=rep)
                        if dense_ok:
                            if W is None:
                                W = _dense(n, dt)
                            t_d = median_time(lambda W=W, X=X: W @ X, repeat=rep)
                        else:
                            t_d = float("nan")
                        extra = ""
                        if fam.startswith("toeplitz-like (Z1") and r == 1:
                            c = rng.standard_normal(n).astype(dt)
                            t_s = median_time(
                                lambda c=c, X=X: sla.matmul_toeplitz((c, c), X), repeat=rep
                            )
                            extra = f"matmul_toeplitz {t_s * 1e3:.3g}"
                        if torch_peer is not None:
                            tt = torch_peer(fam, n, r, b, dt)
                            if tt is not None:
                                extra += (
                                    f" torch-structured fwd {tt[0] * 1e3:.3g}"
                                    f" fwd+bwd {tt[1] * 1e3:.3g}"
                                )
                        rows.append(
                            (
                                fam,
                                np.dtype(dt).name,
                                n,
                                r,
                                b,
                                t_d * 1e3,
                                t_f * 1e3,
                                t_t * 1e3,
                                t_v * 1e3,
                                t_d / t_f,
                                extra,
                            )
                        )
                del W
    lines.append("")
    lines.append("grid (ms; dense = W @ X with the materialized matrix; nan = skipped)")
    lines.append(
        format_table(
            [
                "family",
                "dtype",
                "n",
                "r",
                "batch",
                "dense",
                "fwd",
                "transpose",
                "vjp",
                "dense/fwd",
                "peers",
            ],
            rows,
        )
    )


# --------------------------------------------------------------------------
# crossover
# --------------------------------------------------------------------------


def crossover_n(sizes: list[int], ratios: list[float]) -> str:
    """The first n from which ``ratio = t_dense / t_structured`` stays > 1, as text.

    >>> crossover_n([1, 2, 4], [0.5, 1.2, 2.0])
    'from n = 2'
    >>> crossover_n([1, 2, 4], [0.5, 0.8, 0.9])
    'not below n = 4 (the largest n timed)'
    """
    first = None
    for n, q in zip(sizes, ratios):
        if q > 1.0:
            first = n if first is None else first
        else:
            first = None
    return (
        f"from n = {first}"
        if first is not None
        else f"not below n = {sizes[-1]} (the largest n timed)"
    )


def _crossover(args: argparse.Namespace, rng: np.random.Generator, lines: list[str]) -> None:
    """LDR-SD and Cauchy-like against dense at large n; Cauchy-like GKO solve against LU."""
    import scipy.linalg as sla

    import lowdisp.structured as st

    r, dt, batches = 4, np.float64, (1, 16, 64)
    sizes = [n for n in (1024, 2048, 4096, 8192, 16384, 32768, 65536) if n <= max(args.max_n, 1024)]
    rep = max(5, args.repeat) if sizes[-1] <= 8192 else max(3, min(args.repeat, 5))
    fams = {"ldr-sd": _sd_case, "cauchy-like": _cauchy_case}
    ratio: dict[tuple[str, int], list[float]] = {(f, b): [] for f in fams for b in batches}
    rows = []
    for n in sizes:
        W = _dense(n, dt)
        cases = {f: make(n, r, dt, rng)[1] for f, make in fams.items()}
        for b in batches:
            X = rng.standard_normal((n, b))
            fns: dict[str, Callable[[], object]] = {"dense": lambda W=W, X=X: W @ X}
            fns.update({f: (lambda f=fwd, X=X: f(X)) for f, fwd in cases.items()})
            t = _interleaved(fns, rep)
            for f in fams:
                ratio[f, b].append(t["dense"] / t[f])
            rows.append(
                (
                    n,
                    b,
                    t["dense"] * 1e3,
                    *(t[f] * 1e3 for f in fams),
                    *(ratio[f, b][-1] for f in fams),
                )
            )
        del W
    lines.append(
        f"crossover: M @ X, r = {r}, float64, one thread, interleaved medians of {rep} (ms)"
    )
    lines.append(
        format_table(
            ["n", "batch", "dense", *fams, *(f"dense/{f}" for f in fams)],
            rows,
        )
    )
    for f in fams:
        for b in batches:
            lines.append(
                f"{f:>12} batch {b:>2}: faster than dense: {crossover_n(sizes, ratio[f, b])}"
            )

    # Cauchy-like solve: GKO O(r n^2) against dense LU O(n^3) (scipy.linalg.solve)
    solve_sizes = [256, 512, 1024, 2048, 4096]
    srows, sratio = [], []
    for n in solve_sizes:
        M = st.random_ldr("cauchy_like", n, r, rng=rng)
        D = M.toarray()
        rhs = rng.standard_normal(n)
        t = _interleaved(
            {
                "lu": lambda D=D, rhs=rhs: sla.solve(D, rhs),
                "gko": lambda M=M, rhs=rhs: st.solve(M, rhs),
            },
            max(3, min(args.repeat, 5)),
        )
        x = st.solve(M, rhs)
        res = float(np.linalg.norm(D @ x - rhs) / np.linalg.norm(rhs))
        sratio.append(t["lu"] / t["gko"])
        srows.append((n, t["lu"] * 1e3, t["gko"] * 1e3, sratio[-1], res))
        del D
    lines.append("")
    lines.append("Cauchy-like solve M x = b, r = 4: dense LU (scipy.linalg.solve) vs GKO (ms)")
    lines.append(format_table(["n", "dense LU", "GKO", "LU/GKO", "rel. residual"], srows))
    lines.append(f" cauchy-like solve: faster than dense LU: {crossover_n(solve_sizes, sratio)}")


def _torch_peer():
    """Timing of torch-structured layers (forward, forward+backward), or None when absent.

    torch-structured is an optional peer, never a dependency; its CPU layers
    compute ``x @ M^T`` for a batch of rows (the same work as ``M @ X``).
    """
    try:
        import torch
        from torch_structured.structured import layers
    except Exception:
        return None
    torch.set_num_threads(1)
    classes = {
        "toeplitz-like stein (Z0)": lambda n, r: layers.ToeplitzLike(layer_size=n, r=r, bias=False),
        "ldr-sd": lambda n, r: layers.LDRSubdiagonal(layer_size=n, r=r, bias=False),
        "ldr-td": lambda n, r: layers.LDRTridiagonal(layer_size=n, r=r, bias=False),
    }

    def timing(fam: str, n: int, r: int, b: int, dt: Any) -> tuple[float, float] | None:
        if fam not in classes:
            return None
        torch.set_default_dtype(torch.float64 if dt == np.float64 else torch.float32)
        try:
            layer = classes[fam](n, r)
            x = torch.randn(b, n, requires_grad=True)

            def fwd() -> None:
                with torch.no_grad():
                    layer(x)

            def fwd_bwd() -> None:
                layer(x).sum().backward()

            return median_time(fwd, repeat=5), median_time(fwd_bwd, repeat=5)
        except Exception:
            return None
        finally:
            torch.set_default_dtype(torch.float32)

    return timing


class _Echo(list):
    """A list of output lines that prints what is appended (progress on long runs)."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)

    def extend(self, more: Any) -> None:
        for line in more:
            self.append(line)


def run(args: argparse.Namespace) -> int:
    """Run the suite, print the tables and save them under ``benchmarks/results/``."""
    import scipy.linalg.blas
    import scipy.sparse.linalg  # noqa: F401

    import lowdisp.structured.families  # noqa: F401
    from lowdisp._config import blas_threads

    # every BLAS library (numpy's and scipy's OpenBLAS) must be loaded before the
    # thread controller of blas_threads takes its snapshot, or scipy's would keep
    # its default thread count
    global _CLOCK
    _CLOCK = time.process_time if getattr(args, "cpu_time", False) else time.perf_counter
    rng = np.random.default_rng(args.seed)
    lines = _Echo()
    with blas_threads(1):
        lines.append("lowdisp bench structured")
        timing = (
            "interleaved medians (counts in each table)"
            if args.crossover
            else f"medians of {max(5, args.repeat)} runs (acceptance: interleaved medians of "
            f"{max(7, args.repeat)} rounds)"
        )
        clock = " by CPU time" if getattr(args, "cpu_time", False) else ""
        lines.append(
            f"threads: BLAS pinned to 1 ({thread_count()}); scipy.fft workers=1; "
            f"{timing}{clock}; load average at start {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        lines.append("")
        if args.crossover:
            _crossover(args, rng, lines)
        else:
            if not args.skip_acceptance:
                _acceptance(args, rng, lines)
            if not args.skip_grid:
                _grid(args, rng, lines)
    text = "\n".join(lines)
    if not args.no_save:
        path = save_results("structured", text, args.results)
        print(f"\nsaved to {path}")
    return 0
