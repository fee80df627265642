"""Benchmark of the recurrent training step.

``python benchmarks/bench_rnn.py [options]`` is ``lowdisp bench rnn`` (the tanh and
orthogonal cells against ``torch.nn.RNN`` on the copy task).

``python benchmarks/bench_rnn.py cells [options]`` times the cells of issue 15, one
process, every configuration interleaved round by round so machine load hits all alike,
CPU time (``time.process_time``) with one BLAS thread and one torch thread:

- ``sparse``: dense, block-diagonal (``block:g``) and diagonal recurrences at n = 512
  (and 128) against ``torch.nn.RNN`` + Adam; the acceptance is block:8 >= 4x faster than
  the dense cell at n = 512;
- ``lstm``: ``LSTMCell`` and the BN-LSTM (``bn_lstm``, when registered) against
  ``torch.nn.LSTM`` + Adam (acceptance: BN-LSTM <= 1.6x LSTM; LSTM >= 1.5x torch);
- ``reg``: the tanh cell with each regularizer against none (the overhead);
- ``peak``: the single-core GEMM peak (a 1024³ GEMM in the same run) and the fraction of
  it each step's GEMM work reaches (recurrent, input and readout products, counted
  analytically: ``6 L B n²`` for a dense Elman step's three recurrent GEMMs), and the
  step's GEMMs timed alone (the ceiling of that fraction: the per-step GEMMs are small,
  ``(64, 128) x (128, 128)``, and run below the 1024³ peak).

One step = the :class:`lowdisp.nn.Trainer` step (batch draw, forward, loss, BPTT, Adam)
on the copy task (sequence ``T + 20``), batch 64.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

REGS = {
    "none": None,
    "input_noise": {"input_noise": 0.1},  # token input: refused, kept out below
    "weight_noise/seq": {"weight_noise": 0.075},
    "weight_noise/step": {"weight_noise": {"std": 0.075, "per": "step"}},
    "dropout (out)": {"dropout": {"p": 0.2, "input": False}},
    "variational (rec+out)": {"variational_dropout": {"p": 0.2, "input": False}},
    "l2": {"l2": 1e-4},
    "spectral_norm": {"spectral_norm": True},
    "unit_disk": {"unit_disk": True},
    "max_norm": {"max_norm": 3.0},
}


def _lowdisp(task: Any, cell: str, n: int, dt: Any, batch: int, **opts: Any):
    import lowdisp.nn as lnn

    tr = lnn.make_trainer(
        task,
        cell,
        hidden=n,
        batch_size=batch,
        optimizer="adam",
        dtype=dt,
        rng=0,
        cell_options=opts or None,
    )
    tr.threads = None
    return tr.train_step


def _torch(task: Any, kind: str, n: int, dt: Any, batch: int):
    import torch

    tdt = torch.float32 if np.dtype(dt) == np.float32 else torch.float64
    torch.manual_seed(0)
    mod = (torch.nn.RNN if kind == "rnn" else torch.nn.LSTM)(task.input_size, n).to(tdt)
    lin = torch.nn.Linear(n, task.output_size).to(tdt)
    opt = torch.optim.Adam([*mod.parameters(), *lin.parameters()], lr=1e-3)
    rng = np.random.default_rng(0)

    def step() -> None:
        x, y = task.batch(batch, rng=rng)
        xt = torch.nn.functional.one_hot(torch.from_numpy(x), task.input_size).to(tdt)
        opt.zero_grad()
        h, _ = mod(xt)
        out = lin(h)
        loss = torch.nn.functional.cross_entropy(
            out.reshape(-1, out.shape[-1]), torch.from_numpy(y).reshape(-1)
        )
        loss.backward()
        opt.step()

    return step


def _gemms_only(task: Any, n: int, dt: Any, batch: int):
    """Exactly the GEMMs of one dense tanh Trainer step, with nothing else: the ceiling
    of what the step can reach. Forward ``h_{t-1} Wᵀ`` (none at t = 0, h_0 = 0; in the
    cell's row chunks), readout forward and ``dV``, the factored ``dy V`` and ``dW`` in
    the cell's blocks of steps, the BPTT carry ``δ_t W``, all on the same shapes as the
    step's."""
    from lowdisp.nn._rnn import _BLOCK, _row_chunks

    L = task.batch(1, rng=0)[0].shape[0]
    k = task.output_size
    g = np.random.default_rng(0)
    H = g.standard_normal((L + 1, batch, n)).astype(dt) * 0.1
    W = g.standard_normal((n, n)).astype(dt) * 0.1
    V = g.standard_normal((k, n)).astype(dt) * 0.1
    dY = g.standard_normal((L, batch, k)).astype(dt)
    tmp = np.empty((batch, n), dtype=dt)
    Y = np.empty((L * batch, k), dtype=dt)
    C = min(_BLOCK, L)
    ring = np.empty((C, batch, n), dtype=dt)
    dW = np.empty((n, n), dtype=dt)
    rows = _row_chunks(batch, n, n)

    def step() -> None:
        for t in range(1, L):
            for r in rows:
                np.matmul(H[t][r], W, out=tmp[r])
        np.matmul(H[1:].reshape(-1, n), V.T, out=Y)
        dY.reshape(-1, k).T @ H[1:].reshape(-1, n)
        for t in range(L - 1, 0, -1):
            for r in rows:
                np.matmul(H[t][r], W, out=tmp[r])
        for lo in range(0, L, C):
            hi = min(lo + C, L)
            np.matmul(dY[lo:hi].reshape(-1, k), V, out=ring[: hi - lo].reshape(-1, n))
            np.matmul(ring[: hi - lo].reshape(-1, n).T, H[lo + 1 : hi + 1].reshape(-1, n), out=dW)

    return step


def _flops(kind: str, L: int, B: int, n: int, k: int, g: int = 1) -> float:
    """GEMM flops of one training step: recurrent forward, carry and dW (3 products),
    readout forward, dH and dV (3 products); token input is a gather (no flops)."""
    if kind == "diagonal":
        rec = 0.0
    elif kind == "lstm":
        rec = 6.0 * L * B * n * 4 * n
    else:
        rec = 6.0 * L * B * n * n / g
    return rec + 6.0 * L * B * n * k


def _gemm_peak(dt: Any, size: int = 1024, reps: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dt)
    b = a.T.copy()
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    t0 = time.process_time()
    for _ in range(reps):
        np.matmul(a, b, out=c)
    return 2.0 * size**3 * reps / (time.process_time() - t0)


def cells(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_rnn.py cells")
    ap.add_argument("--parts", default="sparse,lstm,reg,peak")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=100, help="copy-task delay for n = 128 (lstm, reg)")
    ap.add_argument("--T-big", type=int, default=10, help="copy-task delay for n = 512")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    import lowdisp.nn as lnn
    from lowdisp._bench._common import format_table, save_results, thread_count
    from lowdisp._config import blas_threads

    parts = set(args.parts.split(","))
    have_torch = False
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(1)
            have_torch = True
        except ImportError:
            print("torch not importable: skipping the torch peers")
    B = args.batch
    small, big = lnn.copy_memory(args.T), lnn.copy_memory(args.T_big)
    configs: list[tuple[str, str, str, int, Any, float]] = []  # part, dtype, name, n, fn, flops

    def add(part, dt, name, n, fn, kind, task, g=1):
        L = task.batch(1, rng=0)[0].shape[0]  # sequence length
        fl = _flops(kind, L, B, n, task.output_size, g)
        configs.append((part, np.dtype(dt).name, name, n, fn, fl))

    for dt in [np.dtype(d) for d in args.dtypes.split(",") if d]:
        if "sparse" in parts:
            for n, task in ((512, big), (128, small)):
                add("sparse", dt, "tanh dense", n, _lowdisp(task, "tanh", n, dt, B), "dense", task)
                for g in (8, 32) if n == 512 else (8,):
                    fn = _lowdisp(task, "tanh", n, dt, B, recurrent=f"block:{g}")
                    add("sparse", dt, f"tanh block:{g}", n, fn, "block", task, g)
                fn = _lowdisp(task, "tanh", n, dt, B, recurrent="diagonal")
                add("sparse", dt, "tanh diagonal", n, fn, "diagonal", task)
                if have_torch:
                    add(
                        "sparse",
                        dt,
                        "torch nn.RNN",
                        n,
                        _torch(task, "rnn", n, dt, B),
                        "dense",
                        task,
                    )
        if "lstm" in parts:
            add("lstm", dt, "lstm", 128, _lowdisp(small, "lstm", 128, dt, B), "lstm", small)
            if "bn_lstm" in lnn.make_cell.__globals__["CELLS"]:
                fn = _lowdisp(small, "bn_lstm", 128, dt, B)
                add("lstm", dt, "bn_lstm", 128, fn, "lstm", small)
            if have_torch:
                fn = _torch(small, "lstm", 128, dt, B)
                add("lstm", dt, "torch nn.LSTM", 128, fn, "lstm", small)
        if "reg" in parts or "peak" in parts:
            names = REGS if "reg" in parts else {"none": None}
            for rname, regs in names.items():
                if rname == "input_noise":
                    continue  # the copy task's input is tokens
                opts = {} if regs is None else {"regularizers": regs}
                fn = _lowdisp(small, "tanh", 128, dt, B, **opts)
                add("reg", dt, f"tanh {rname}", 128, fn, "dense", small)
            if have_torch and "peak" in parts:
                fn = _torch(small, "rnn", 128, dt, B)
                add("reg", dt, "torch nn.RNN", 128, fn, "dense", small)
            if "peak" in parts:
                fn = _gemms_only(small, 128, dt, B)
                add("reg", dt, "GEMMs alone", 128, fn, "dense", small)
    samples: dict[int, list[float]] = {i: [] for i in range(len(configs))}
    peaks: dict[str, list[float]] = {}
    with blas_threads(1):
        for c in configs:
            c[4]()
            c[4]()
        for _ in range(args.rounds):
            for d in {c[1] for c in configs}:
                peaks.setdefault(d, []).append(_gemm_peak(np.dtype(d)))
            for i, c in enumerate(configs):
                t0 = time.process_time()
                c[4]()
                samples[i].append(time.process_time() - t0)
    med = {i: float(np.median(v)) for i, v in samples.items()}
    peak = {d: float(np.median(v)) for d, v in peaks.items()}
    rows = []
    for i, (part, d, name, n, _, fl) in enumerate(configs):
        ref = next(j for j, c in enumerate(configs) if c[0] == part and c[1] == d and c[3] == n)
        tref = next(
            (
                j
                for j, c in enumerate(configs)
                if c[0] == part and c[1] == d and c[3] == n and c[2].startswith("torch")
            ),
            None,
        )
        rows.append(
            [
                part,
                d,
                name,
                n,
                med[i] * 1e3,
                float(np.percentile(samples[i], 10)) * 1e3,
                med[ref] / med[i],
                float("nan") if tref is None else med[tref] / med[i],
                fl / med[i] / 1e9,
                fl / med[i] / peak[d],
            ]
        )
    header = [
        "part",
        "dtype",
        "step",
        "n",
        "median ms",
        "p10 ms",
        "first/this",
        "torch/this",
        "GFLOP/s",
        "of peak",
    ]
    text = (
        f"bench_rnn cells: one Trainer step (batch draw, forward, loss, BPTT, Adam) on the copy "
        f"task (n=128: T={args.T}, sequence {args.T + 20}; n=512: T={args.T_big}, sequence "
        f"{args.T_big + 20}), batch {B}; CPU time (process_time), medians of {args.rounds} "
        f"interleaved rounds, BLAS 1 thread{', torch 1 thread' if have_torch else ''}\n"
        f"threads: {thread_count()}; load average {os.getloadavg()[0]:.1f}\n"
        f"single-core GEMM peak (1024^3, median): "
        + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in peak.items())
        + f"\n\n{format_table(header, rows)}\n\n"
        "first/this: speed-up over the first row of its part at that n (the dense tanh cell, "
        "the LSTM, the tanh cell without regularizer); torch/this: speed-up over torch + Adam; "
        "of peak: the step's GEMM flops (recurrent + readout, counted analytically) per second "
        "over the GEMM peak; GEMMs alone: exactly the dense tanh step's GEMMs (same shapes and "
        "count, nothing else) as NumPy calls, the ceiling of the tanh step's fraction of the "
        "peak (the step itself issues its per-step row chunks through Numba's np.dot, a "
        "cheaper call, so it can come within a few % of this row)."
    )
    print(text)
    if not args.no_save:
        print(f"saved {save_results('rnn-cells', text)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cells":
        raise SystemExit(cells(sys.argv[2:]))
    from lowdisp._bench import main

    raise SystemExit(main("rnn"))
