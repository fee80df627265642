"""The recurrent Trainer steps of two versions of lowdisp, interleaved in one process.

``python benchmarks/bench_rnn_versus.py REV [--rounds 31]`` exports ``lowdisp/`` of the
git revision ``REV`` into a temporary folder as the package ``lowdisp_rev`` (its imports
rewritten) and times one Trainer step (batch draw, forward, loss, BPTT, Adam; copy task,
batch 64, one BLAS thread, CPU time) of the checked-out lowdisp and of ``REV`` round by
round, so machine load hits both alike: the dense and block:8 tanh cells at n = 512, the
dense tanh cell and the LSTM at n = 128, float32 and float64. It prints ``rev/this`` per
cell: a ratio measured under load carries over to a quiet machine far better than the
absolute times (the torch peers of ``bench_rnn.py cells`` slow more than lowdisp under
load).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

CELLS = [
    ("tanh", "dense", 512),
    ("tanh", "block:8", 512),
    ("tanh", "dense", 128),
    ("lstm", "dense", 128),
]


def _export(rev: str, root: Path, dest: Path) -> None:
    """``lowdisp/`` of ``rev`` as the package ``dest/lowdisp_rev``."""
    tar = subprocess.run(
        ["git", "archive", rev, "lowdisp"], cwd=root, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    pkg = dest / "lowdisp_rev"
    (dest / "lowdisp").rename(pkg)
    for f in pkg.rglob("*.py"):
        text = f.read_text()
        text = re.sub(r"\bfrom lowdisp([. ])", r"from lowdisp_rev\1", text)
        text = re.sub(r"\bimport lowdisp\b", "import lowdisp_rev", text)
        text = text.replace('"lowdisp.', '"lowdisp_rev.')
        f.write_text(text)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_rnn_versus.py")
    ap.add_argument("rev", help="the git revision to compare with (e.g. 41d0d3c)")
    ap.add_argument("--rounds", type=int, default=31)
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    with tempfile.TemporaryDirectory() as tmp:
        _export(args.rev, root, Path(tmp))
        sys.path.insert(0, tmp)
        import lowdisp_rev.nn as rev_nn

        import lowdisp.nn as this_nn
        from lowdisp._config import blas_threads

        steps = {}
        for dt in (np.float32, np.float64):
            for cell, rec, n in CELLS:
                for tag, mod in (("rev", rev_nn), ("this", this_nn)):
                    task = mod.copy_memory(10 if n == 512 else 100)
                    opts = {"recurrent": rec} if rec != "dense" else None
                    tr = mod.make_trainer(
                        task,
                        cell,
                        hidden=n,
                        batch_size=64,
                        optimizer="adam",
                        dtype=dt,
                        rng=0,
                        cell_options=opts,
                    )
                    tr.threads = None
                    steps[(np.dtype(dt).name, cell, rec, n, tag)] = tr.train_step
        times: dict = {k: [] for k in steps}
        with blas_threads(1):
            for f in steps.values():
                f()
                f()
            for _ in range(args.rounds):
                for k, f in steps.items():
                    t0 = time.process_time()
                    f()
                    times[k].append(time.process_time() - t0)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    print(
        f"Trainer step, {args.rev} against the work tree, medians of {args.rounds} interleaved "
        f"rounds, CPU time, one BLAS thread; load average {os.getloadavg()[0]:.1f}"
    )
    for k in steps:
        if k[-1] == "this":
            r, t = med[(*k[:-1], "rev")], med[k]
            print(
                f"{k[0]} {k[1]} {k[2]:8s} n={k[3]:4d}: {args.rev} {r:8.2f} ms  this {t:8.2f} ms  "
                f"rev/this {r / t:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
