"""Benchmark of the KFAC/EKFAC optimizers against SGD with momentum.

``python benchmarks/bench_curvature.py [--quick] [--repeats N] [--json PATH]``

Time of one amortised training step (``Trainer.train_step``: batch, forward,
backward, curvature, update) with KFAC and EKFAC against one SGD-with-momentum
step, on the MLP 784-256-256-10 (softmax cross-entropy) and the deep
autoencoder 784-1000-500-250-30 (mirrored, sigmoid, binary cross-entropy), at
batch 128 and 512, with the eigenbases/inverses refreshed every 20 and every
100 steps: the amortised step is ``ordinary + (refresh step - ordinary) / R``
from the medians of blocks of 10 ordinary steps and of single refresh steps,
the optimizers' blocks interleaved and repeated. float32 training, one
BLAS thread (threadpoolctl), synthetic inputs. Every block is timed by the wall
clock and by the process's CPU time (``time.process_time``): on a shared,
loaded machine the wall clock also counts the time other processes held the
core, so the CPU-time ratios are the steadier ones (both are printed).

The floor: in the same rounds, the bare float32 GEMMs of the per-step
curvature work of every dense layer (no Python, no elementwise work) are timed
as well: KFAC's two Gram matrices (SYRK) and its preconditioning
``G⁻¹ ∇W̃ A⁻¹``; EKFAC's Gram matrices, projections ``Ã U_A``, ``G U_G``, the
eigenbasis gradient, the diagonal GEMM and the back-rotation. ``SGD step +
these GEMMs`` is the least a step of that algorithm can cost with these BLAS
kernels; its ratio to the SGD step bounds the achievable ratio from below.
Two lower floors hold for any setting of the statistics (``factor_every``,
``stats_fraction``, ``diag_every``, ``diag="running"``): KFAC's
preconditioning GEMMs alone, and EKFAC's rotation of the gradient into the
eigenbasis and back alone.

Variants (all at the defaults otherwise; damping 0.1, lr 1e-4, for timing only):
``kfac``, ``ekfac`` (the defaults: factor statistics every step, EKFAC's batch
diagonal every step), ``kfac_f10`` (``factor_every=10``), ``kfac_s8`` and
``ekfac_s8`` (``stats_fraction=1/8``: statistics from an eighth of each batch),
``ekfac_d10`` (``factor_every=10, diag_every=10``), ``ekfac_running``
(``diag="running", factor_every=10``).

When ``torch`` and ``nngeometry`` are importable (optional:
``pip install torch`` then ``pip install --no-deps nngeometry``), the same
EKFAC factors, diagonal and preconditioning are timed with nngeometry on the
MLP (PyTorch CPU, one thread): ``FIM(..., PMatEKFAC)`` on the batch (exact
Fisher, as nngeometry does by default), ``update_diag`` and ``solvePVec``,
plus a torch SGD step, with the basis refreshed every step and amortised over
100 steps, reported as the ratio to its own SGD step.
"""

from __future__ import annotations

import argparse
import itertools
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


def _mlp(sizes, act, dtype, rng):
    layers = {}
    for i in range(len(sizes) - 1):
        layers[f"fc{i}"] = lnn.Dense(sizes[i], sizes[i + 1], dtype=dtype, rng=rng)
        if i < len(sizes) - 2:
            layers[f"act{i}"] = lnn.Activation(act, dtype=dtype)
    return lnn.Sequential(layers)


def _setup(net, n=4096, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype(np.float32)
    if net == "mlp":
        y = rng.integers(0, 10, n)
        task = lnn.array_task(x, y, x[:10], y[:10], flat=True, name="synthetic784")
        sizes, act = (784, 256, 256, 10), "relu"
    else:
        t = (x > 0.5).astype(np.float32)
        task = lnn.array_task(x, t, x[:10], t[:10], flat=True, name="synthetic_ae", loss="mse")
        sizes, act = (784, 1000, 500, 250, 30, 250, 500, 1000, 784), "sigmoid"
    return task, sizes, act


def _make(opt_name, refresh, lr=1e-4, damping=0.1):
    """The optimizers timed (small lr, ample damping: timing runs must not diverge)."""
    if opt_name == "sgd":
        return lnn.SGD(lr, momentum=0.9)
    if opt_name == "kfac":
        return lnn.KFAC(lr, refresh=refresh, damping=damping)
    if opt_name == "kfac_f10":
        return lnn.KFAC(lr, refresh=refresh, damping=damping, factor_every=10)
    if opt_name == "kfac_s8":
        return lnn.KFAC(lr, refresh=refresh, damping=damping, stats_fraction=1 / 8)
    if opt_name == "ekfac":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping)
    if opt_name == "ekfac_s8":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping, stats_fraction=1 / 8)
    if opt_name == "ekfac_running":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping, diag="running", factor_every=10)
    if opt_name == "ekfac_d10":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping, factor_every=10, diag_every=10)
    raise ValueError(opt_name)


def _clock():
    return time.perf_counter(), time.process_time()


def _since(t0, n=1):
    """(wall, cpu) seconds per call since ``t0 = _clock()``."""
    w, c = _clock()
    return (w - t0[0]) / n, (c - t0[1]) / n


def _floor_gemms(sizes, batch, seed=0):
    """The bare float32 GEMMs of one step's curvature work, per algorithm: callables
    ``{"kfac": f, "ekfac": f}`` over every dense layer ``d_in -> d_out`` of ``sizes``
    (random operands of the right shapes; the results are discarded)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    layers = []
    for d_in, d_out in itertools.pairwise(sizes):
        a = d_in + 1
        layers.append(
            (
                rng.random((batch, d_in), dtype=f32),  # layer input
                rng.random((batch, d_out), dtype=f32),  # output cotangent
                rng.random((d_out, a), dtype=f32),  # gradient [W, b]
                rng.random((a, a), dtype=f32),  # A^-1 or U_A
                rng.random((d_out, d_out), dtype=f32),  # G^-1 or U_G
            )
        )

    def grams():
        for x, dy, _, _, _ in layers:
            x.T @ x  # numpy calls SYRK for a product with its own transpose
            dy.T @ dy

    def precondition():
        for _, _, g, Ai, Gi in layers:
            if g.shape[0] <= g.shape[1]:
                (Gi @ g) @ Ai
            else:
                Gi @ (g @ Ai)

    def kfac():
        grams()
        precondition()

    def rotations():  # U_Gᵀ ∇W̃ U_A and back: EKFAC's least per-step work
        for _, _, g, UA, UG in layers:
            if g.shape[0] <= g.shape[1]:
                V = (UG.T @ g) @ UA
                (UG @ V) @ UA.T
            else:
                V = UG.T @ (g @ UA)
                UG @ (V @ UA.T)

    def ekfac():
        grams()
        for x, dy, _, UA, UG in layers:
            XU = x @ UA[:-1]
            GU = dy @ UG
            V = GU.T @ XU
            np.square(XU, out=XU)
            np.square(GU, out=GU)
            GU.T @ XU  # the diagonal
            if V.shape[0] <= V.shape[1]:
                (UG @ V) @ UA.T
            else:
                UG @ (V @ UA.T)

    return {
        "kfac": kfac,
        "ekfac": ekfac,
        "kfac_precondition": precondition,
        "ekfac_rotations": rotations,
    }


def bench_case(net, batch, refreshes, opts, repeats, block=10):
    """Per optimizer: the median time of an ordinary step (over blocks of ``block``
    consecutive steps, so ``factor_every=10`` is amortised exactly) and of a refresh
    step; the amortised step for a refresh period R is ``ordinary + (refresh -
    ordinary) / R``. The optimizers' blocks and the floor GEMMs are interleaved;
    wall-clock and CPU times are kept apart."""
    task, sizes, act = _setup(net)
    trainers = {}
    for name in opts:
        model = _mlp(sizes, act, np.float32, np.random.default_rng(1))
        # the autoencoder: binary cross-entropy on the logits of its last layer
        loss = task.loss() if net == "mlp" else lnn.SigmoidBinaryCrossEntropy()
        trainers[name] = lnn.Trainer(
            model, loss, _make(name, 10**9), task, batch_size=batch, rng=0, threads=1
        )
    from lowdisp._config import blas_threads

    floors = _floor_gemms(sizes, batch)
    clocks = ("wall", "cpu")
    ordinary = {c: {name: [] for name in opts} for c in clocks}
    refresh = {c: {name: [] for name in opts} for c in clocks}
    floor = {c: {name: [] for name in floors} for c in clocks}
    loads = []
    with blas_threads(1):
        for tr in trainers.values():  # warm-up: first refresh, allocations
            for _ in range(3):
                tr.train_step()
        for f in floors.values():
            f()
        for _ in range(repeats):
            loads.append(os.getloadavg()[0])
            for name, tr in trainers.items():
                opt = tr.optimizer
                t0 = _clock()
                for _ in range(block):
                    tr.train_step()
                for c, t in zip(clocks, _since(t0, block), strict=True):
                    ordinary[c][name].append(t)
                if hasattr(opt, "refresh"):
                    opt.refresh = 1  # the next step recomputes the inverses/eigenbases
                    t0 = _clock()
                    tr.train_step()
                    for c, t in zip(clocks, _since(t0), strict=True):
                        refresh[c][name].append(t)
                    opt.refresh = 10**9
            for name, f in floors.items():
                t0 = _clock()
                for _ in range(block):
                    f()
                for c, t in zip(clocks, _since(t0, block), strict=True):
                    floor[c][name].append(t)
    out = []
    for R in refreshes:
        row = {"net": net, "batch": batch, "refresh": R, "loadavg_1min": loads}
        for c in clocks:
            sgd = statistics.median(ordinary[c]["sgd"])
            ms, ratio = {}, {}
            for name in opts:
                o = statistics.median(ordinary[c][name])
                r = statistics.median(refresh[c][name]) if refresh[c][name] else o
                amort = o + (r - o) / R
                ms[name] = 1e3 * amort
                ratio[name] = amort / sgd
            fl = {k: 1e3 * statistics.median(v) for k, v in floor[c].items()}
            row[c] = {
                "ms_per_step": ms,
                "ratio_to_sgd": ratio,
                "floor_gemms_ms": fl,
                "floor_ratio": {k: 1 + v / (1e3 * sgd) for k, v in fl.items()},
                "ordinary_ms": {k: [1e3 * t for t in v] for k, v in ordinary[c].items()},
                "refresh_ms": {k: [1e3 * t for t in v] for k, v in refresh[c].items()},
            }
        out.append(row)
    return out


def bench_nngeometry(batch, repeats):
    try:
        import torch
        from nngeometry.layercollection import LayerCollection
        from nngeometry.metrics import FIM
        from nngeometry.object import PMatEKFAC, PVector
    except Exception as exc:  # optional peer
        return {"skipped": f"torch/nngeometry not importable ({type(exc).__name__}: {exc})"}
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    x = torch.rand(batch, 784)
    y = torch.randint(0, 10, (batch,))
    ds = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    lc = LayerCollection.from_model(model)

    def sgd_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    def ekfac_step(refresh_now):
        nonlocal F
        if refresh_now or F is None:
            F = FIM(
                model=model,
                loader=loader,
                representation=PMatEKFAC,
                variant="classif_logits",
                device="cpu",
                layer_collection=lc,
            )
        F.update_diag(loader)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        g = PVector.from_model_grad(model)
        d = F.solvePVec(g, regul=1e-3)
        for p, (w, b) in zip(
            [m for m in model if isinstance(m, torch.nn.Linear)], d.to_dict().values(), strict=True
        ):
            p.weight.grad.copy_(w)
            p.bias.grad.copy_(b)
        opt.step()

    F = None
    clocks = ("wall", "cpu")
    sgd, ek, ek_reuse = ({c: [] for c in clocks} for _ in range(3))
    for _ in range(2):
        sgd_step()
        ekfac_step(True)
    for _ in range(repeats):
        t0 = _clock()
        for _ in range(10):
            sgd_step()
        for c, t in zip(clocks, _since(t0, 10), strict=True):
            sgd[c].append(t)
        t0 = _clock()
        ekfac_step(True)
        for c, t in zip(clocks, _since(t0), strict=True):
            ek[c].append(t)
        t0 = _clock()
        ekfac_step(False)
        for c, t in zip(clocks, _since(t0), strict=True):
            ek_reuse[c].append(t)
    out = {"torch": torch.__version__, "batch": batch}
    for c in clocks:
        s, e = statistics.median(sgd[c]), statistics.median(ek[c])
        r = statistics.median(ek_reuse[c])
        amort = r + (e - r) / 100
        out[c] = {
            "sgd_ms": 1e3 * s,
            "ekfac_refresh_every_step_ms": 1e3 * e,
            "ratio_to_sgd": e / s,
            "ekfac_amortised_refresh_100_ms": 1e3 * amort,
            "amortised_ratio_to_sgd": amort / s,
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_curvature.py")
    p.add_argument("--quick", action="store_true", help="MLP at batch 512 only")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--no-peer", action="store_true", help="skip nngeometry")
    p.add_argument("--nets", default="mlp,autoencoder", help="comma-separated: mlp,autoencoder")
    p.add_argument("--batches", default="128,512", help="comma-separated batch sizes")
    args = p.parse_args(argv)
    opts = ("sgd", "kfac", "kfac_f10", "kfac_s8", "ekfac", "ekfac_d10", "ekfac_s8", "ekfac_running")
    if args.quick:
        cases = [("mlp", 512)]
    else:
        cases = [(n, int(b)) for n in args.nets.split(",") for b in args.batches.split(",")]
    results = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "threads": 1,
            "loadavg_at_start": os.getloadavg(),
        },
        "cases": [],
    }
    ours = {}
    for net, batch in cases:
        for r in bench_case(net, batch, (20, 100), opts, args.repeats):
            results["cases"].append(r)
            for c in ("wall", "cpu"):
                rc = r[c]
                ms, ratio = rc["ms_per_step"], rc["ratio_to_sgd"]
                print(
                    f"{net:11s} batch {batch:3d} refresh {r['refresh']:3d} {c:4s}: "
                    + "  ".join(f"{k} {ms[k]:.1f} ms ({ratio[k]:.2f}x)" for k in opts),
                    flush=True,
                )
                ours[(net, batch, r["refresh"], c)] = ms["ekfac"]
            if r["refresh"] == 100:
                for c in ("wall", "cpu"):
                    fr = r[c]["floor_ratio"]
                    print(
                        f"{net:11s} batch {batch:3d} floor {c:4s}: SGD step + the bare GEMMs of "
                        f"the curvature work: KFAC {fr['kfac']:.2f}x, EKFAC {fr['ekfac']:.2f}x "
                        f"(GEMMs alone {r[c]['floor_gemms_ms']['kfac']:.1f} / "
                        f"{r[c]['floor_gemms_ms']['ekfac']:.1f} ms); with free statistics: "
                        f"KFAC's preconditioning {fr['kfac_precondition']:.2f}x, EKFAC's two "
                        f"rotations {fr['ekfac_rotations']:.2f}x",
                        flush=True,
                    )
                lo = r["loadavg_1min"]
                print(f"{'':11s} 1-min load during the rounds {min(lo):.1f}-{max(lo):.1f}")
    if not args.no_peer:
        peer = bench_nngeometry(512, args.repeats)
        results["nngeometry"] = peer
        if "skipped" in peer:
            print(f"nngeometry: {peer['skipped']}")
        else:
            for c in ("wall", "cpu"):
                pc = peer[c]
                line = (
                    f"nngeometry (torch {peer['torch']}, MLP batch 512, 1 thread, {c}): SGD "
                    f"step {pc['sgd_ms']:.2f} ms, EKFAC step with refresh "
                    f"{pc['ekfac_refresh_every_step_ms']:.1f} ms "
                    f"({pc['ratio_to_sgd']:.0f}x its SGD step); amortised over 100 steps "
                    f"{pc['ekfac_amortised_refresh_100_ms']:.1f} ms "
                    f"({pc['amortised_ratio_to_sgd']:.0f}x)"
                )
                mine = ours.get(("mlp", 512, 100, c))
                if mine is not None:
                    line += (
                        f"; lowdisp's EKFAC step (refresh 100) {mine:.1f} ms: "
                        f"{pc['ekfac_amortised_refresh_100_ms'] / mine:.1f}x faster"
                    )
                print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
