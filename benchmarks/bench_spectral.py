"""Benchmark of the spectral toolkit (same as ``lowdisp bench spectral``).

``python benchmarks/bench_spectral.py --large [--n 10000] [--npts 50] [--workers 1 2]
[--norm-n 100000] [--reps 5]`` instead runs the large-operator benchmark (issue 16):

1. ``spectral_norm`` of the n = 1e5 Toeplitz-like LDR matrix (rank 2, the
   matrix of ``lowdisp bench spectral``) against ``scipy.sparse.linalg.svds(k=1,
   tol=1e-10)``, interleaved in one process, CPU time (one BLAS thread),
   median of ``--reps``; the reference is ``svds(tol=0)``.
2. ``pseudospectra(method="shift-invert")`` of the sparse Grcar matrix of order
   n on an npts x npts grid of [-1, 3] x [-3.5, 3.5]: serially and on a
   ``LocalCluster`` with 1 and 2 worker processes (one thread each); wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings


def _grcar(n: int):
    import numpy as np
    import scipy.sparse as sp

    ones = [np.ones(n - abs(k)) for k in (-1, 0, 1, 2, 3)]
    ones[0] = -ones[0]
    return sp.diags(ones, [-1, 0, 1, 2, 3], format="csr")


def _norm_table(n: int, reps: int) -> None:
    import numpy as np
    from scipy.sparse.linalg import svds

    from lowdisp.spectral import spectral_norm
    from lowdisp.structured import toeplitz_like

    rng = np.random.default_rng(0)
    M = toeplitz_like(rng.standard_normal((n, 2)) / np.sqrt(n), rng.standard_normal((n, 2)))
    ref = float(svds(M, k=1, tol=0, return_singular_vectors=False, random_state=1)[0])
    t_ld, t_sv, e_ld, e_sv = [], [], [], []
    for r in range(reps):  # interleaved
        t = time.process_time()
        est = spectral_norm(M, rng=r)
        t_ld.append(time.process_time() - t)
        e_ld.append(abs(est.value / ref - 1))
        t = time.process_time()
        s = svds(M, k=1, tol=1e-10, return_singular_vectors=False, random_state=r)
        t_sv.append(time.process_time() - t)
        e_sv.append(abs(float(s[0]) / ref - 1))
    print(f"spectral_norm, Toeplitz-like LDR n = {n}, rank 2; CPU s, median of {reps}")
    print(
        f"  lowdisp spectral_norm (GKL, tol 1e-10): {statistics.median(t_ld):.3f} s, "
        f"max rel err {max(e_ld):.1e}, {est.n_matvecs} products"
    )
    print(
        f"  scipy svds(k=1, arpack, tol 1e-10):     {statistics.median(t_sv):.3f} s, "
        f"max rel err {max(e_sv):.1e}"
    )


def _grid(n: int, npts: int, workers: list[int]) -> None:
    import numpy as np

    from lowdisp.spectral import pseudospectra

    A = _grcar(n)
    grid = {"re": np.linspace(-1.0, 3.0, npts), "im": np.linspace(-3.5, 3.5, npts)}

    def run(client=None):
        w, c = time.time(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ps = pseudospectra(A, method="shift-invert", rng=0, client=client, workers=1, **grid)
        msg = "; ".join(str(x.message).split(";")[0] for x in caught)
        return ps, time.time() - w, time.process_time() - c, msg

    print(f"pseudospectra(method='shift-invert'), sparse Grcar n = {n}, {npts} x {npts} grid")
    base = None
    if 0 in workers:
        base, wall, cpu, msg = run()
        print(f"  serial: wall {wall:.1f} s, CPU {cpu:.1f} s  [{msg}]")
    for k in [w for w in workers if w > 0]:
        from dask.distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=k,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
            ) as lc,
            Client(lc) as client,
        ):
            ps, wall, _cpu, msg = run(client)
        same = (
            ""
            if base is None
            else f", identical to serial: {np.array_equal(ps.sigma_min, base.sigma_min)}"
        )
        print(f"  Dask LocalCluster, {k} worker process(es): wall {wall:.1f} s{same}  [{msg}]")


def _large(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_spectral.py --large")
    p.add_argument("--n", type=int, nargs="+", default=[10_000])
    p.add_argument("--npts", type=int, default=50)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="0 = serial")
    p.add_argument("--norm-n", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--skip-norm", action="store_true")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()}, CPUs {os.cpu_count()}")
    if not args.skip_norm:
        _norm_table(args.norm_n, args.reps)
    for n in args.n:
        _grid(n, args.npts, args.workers)
    return 0


if __name__ == "__main__":
    if "--large" in sys.argv:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        raise SystemExit(_large([a for a in sys.argv[1:] if a != "--large"]))
    from lowdisp._bench import main

    raise SystemExit(main("spectral"))
