"""Benchmark of low-rank binary indexing on a 784 x 300 matrix.

``python benchmarks/bench_lrbi.py [--repeats N] [--json PATH]``

1. The Boolean product ``M = I_p ⊙ I_z`` of a (784, k) and a (k, 300) binary
   factor pair (k = 4, 16, 64; densities 0.2 / 0.2), two routes timed
   interleaved in the same process:
   - ``packed``: :func:`lowdisp.nn.boolean_product` (rows of ``I_z`` packed
     into uint64 words, OR of the selected rows in a Numba kernel, unpacked);
   - ``gemm``: ``(I_p.astype(float32) @ I_z.astype(float32)) > 0`` (BLAS).
   Both are checked equal first.
2. :func:`lowdisp.nn.lrbi_mask` of a 784 x 300 matrix (Gaussian, and
   Gaussian scaled by a random rank-1 profile so that it has structure), at
   sparsity 0.9, rank 8 and 16, one tile and 98 x 100 tiles, with and
   without the bit-flip refinement.

CPU time (``time.process_time``) with one BLAS thread, medians of
``--repeats`` (default 7) after a warm-up call (Numba compiles on first call).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import lowdisp.nn as lnn  # noqa: E402


def _gemm(P: np.ndarray, Z: np.ndarray) -> np.ndarray:
    return (P.astype(np.float32) @ Z.astype(np.float32)) > 0


def _cpu(fn, *args, inner: int = 1, **kw) -> float:
    t0 = time.process_time()
    for _ in range(inner):
        fn(*args, **kw)
    return (time.process_time() - t0) / inner


def bench_product(repeats: int, m: int = 784, n: int = 300) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for k in (4, 16, 64):
        P = rng.random((m, k)) < 0.2
        Z = rng.random((k, n)) < 0.2
        assert (lnn.boolean_product(P, Z) == _gemm(P, Z)).all()
        _gemm(P, Z)
        times: dict[str, list[float]] = {"packed": [], "gemm": []}
        for _ in range(repeats):  # interleaved
            times["packed"].append(_cpu(lnn.boolean_product, P, Z, inner=50))
            times["gemm"].append(_cpu(_gemm, P, Z, inner=50))
        med = {key: statistics.median(v) for key, v in times.items()}
        rows.append(
            {
                "k": k,
                "packed_us": 1e6 * med["packed"],
                "gemm_us": 1e6 * med["gemm"],
                "gemm_over_packed": med["gemm"] / med["packed"],
            }
        )
    return rows


def bench_factorise(repeats: int, m: int = 784, n: int = 300) -> list[dict]:
    rng = np.random.default_rng(1)
    gauss = rng.standard_normal((m, n))
    structured = gauss * np.outer(rng.random(m), rng.random(n))
    rows = []
    lnn.lrbi_mask(gauss[:40, :40], sparsity=0.9, rank=2)  # compile
    for name, W in (("gaussian", gauss), ("rank1-profile", structured)):
        for rank, tile in ((8, None), (16, None), (8, (98, 100))):
            for refine in (False, True):
                res = None
                ts = []
                for _ in range(repeats):
                    t0 = time.process_time()
                    res = lnn.lrbi_mask(W, sparsity=0.9, rank=rank, tile=tile, refine=refine)
                    ts.append(time.process_time() - t0)
                assert res is not None
                rows.append(
                    {
                        "matrix": name,
                        "rank": rank,
                        "tile": "whole" if tile is None else f"{tile[0]}x{tile[1]}",
                        "refine": refine,
                        "seconds": statistics.median(ts),
                        "sparsity": res.sparsity,
                        "kept_magnitude": res.kept_magnitude,
                        "magnitude_pruning_kept": res.magnitude_kept_magnitude,
                        "lrbi_bits_per_nz": res.bits.lrbi_per_nonzero,
                        "csr_bits_per_nz": res.bits.csr_per_nonzero,
                    }
                )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_lrbi.py")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        prod = bench_product(args.repeats)
        fact = bench_factorise(max(3, args.repeats // 2))
    print("Boolean product (784 x k) x (k x 300), CPU us per call, median of", args.repeats)
    print(f"{'k':>4} {'packed':>10} {'gemm':>10} {'gemm/packed':>12}")
    for r in prod:
        print(
            f"{r['k']:>4} {r['packed_us']:>10.1f} {r['gemm_us']:>10.1f} "
            f"{r['gemm_over_packed']:>12.2f}"
        )
    print("\nlrbi_mask of a 784 x 300 matrix at sparsity 0.9 (CPU s, median)")
    print(
        f"{'matrix':<14} {'k':>3} {'tile':>7} {'refine':>6} {'s':>7} {'kept|W|':>8} "
        f"{'MP kept':>8} {'LRBI b/nz':>9} {'CSR b/nz':>8}"
    )
    for r in fact:
        print(
            f"{r['matrix']:<14} {r['rank']:>3} {r['tile']:>7} {r['refine']!s:>6} "
            f"{r['seconds']:>7.3f} {r['kept_magnitude']:>8.3f} {r['magnitude_pruning_kept']:>8.3f} "
            f"{r['lrbi_bits_per_nz']:>9.3f} {r['csr_bits_per_nz']:>8.3f}"
        )
    if args.json:
        meta = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "loadavg": os.getloadavg(),
            "cpu_count": os.cpu_count(),
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "product": prod, "factorise": fact}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
