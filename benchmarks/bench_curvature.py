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
BLAS thread (threadpoolctl), synthetic inputs.

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
    if opt_name == "ekfac":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping)
    if opt_name == "ekfac_running":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping, diag="running", factor_every=10)
    if opt_name == "ekfac_d10":
        return lnn.EKFAC(lr, refresh=refresh, damping=damping, factor_every=10, diag_every=10)
    raise ValueError(opt_name)


def bench_case(net, batch, refreshes, opts, repeats, block=10):
    """Per optimizer: the median time of an ordinary step (over blocks of ``block``
    consecutive steps, so ``factor_every=10`` is amortised exactly) and of a refresh
    step; the amortised step for a refresh period R is ``ordinary + (refresh -
    ordinary) / R``. The optimizers' blocks are interleaved."""
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

    ordinary = {name: [] for name in opts}
    refresh = {name: [] for name in opts}
    with blas_threads(1):
        for tr in trainers.values():  # warm-up: first refresh, allocations
            for _ in range(3):
                tr.train_step()
        for _ in range(repeats):
            for name, tr in trainers.items():
                opt = tr.optimizer
                t0 = time.perf_counter()
                for _ in range(block):
                    tr.train_step()
                ordinary[name].append((time.perf_counter() - t0) / block)
                if hasattr(opt, "refresh"):
                    opt.refresh = 1  # the next step recomputes the inverses/eigenbases
                    t0 = time.perf_counter()
                    tr.train_step()
                    refresh[name].append(time.perf_counter() - t0)
                    opt.refresh = 10**9
    out = []
    sgd = statistics.median(ordinary["sgd"])
    for R in refreshes:
        ms, ratio = {}, {}
        for name in opts:
            o = statistics.median(ordinary[name])
            r = statistics.median(refresh[name]) if refresh[name] else o
            amort = o + (r - o) / R
            ms[name] = 1e3 * amort
            ratio[name] = amort / sgd
        out.append(
            {
                "net": net,
                "batch": batch,
                "refresh": R,
                "ms_per_step": ms,
                "ratio_to_sgd": ratio,
                "ordinary_ms": {k: [1e3 * t for t in v] for k, v in ordinary.items()},
                "refresh_ms": {k: [1e3 * t for t in v] for k, v in refresh.items()},
            }
        )
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
    sgd, ek, ek_reuse = [], [], []
    for _ in range(2):
        sgd_step()
        ekfac_step(True)
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            sgd_step()
        sgd.append((time.perf_counter() - t0) / 10)
        t0 = time.perf_counter()
        ekfac_step(True)
        ek.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ekfac_step(False)
        ek_reuse.append(time.perf_counter() - t0)
    s, e = statistics.median(sgd), statistics.median(ek)
    r = statistics.median(ek_reuse)
    amort = r + (e - r) / 100
    return {
        "torch": torch.__version__,
        "batch": batch,
        "sgd_ms": 1e3 * s,
        "ekfac_refresh_every_step_ms": 1e3 * e,
        "ratio_to_sgd": e / s,
        "ekfac_amortised_refresh_100_ms": 1e3 * amort,
        "amortised_ratio_to_sgd": amort / s,
    }


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_curvature.py")
    p.add_argument("--quick", action="store_true", help="MLP at batch 512 only")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--no-peer", action="store_true", help="skip nngeometry")
    p.add_argument("--nets", default="mlp,autoencoder", help="comma-separated: mlp,autoencoder")
    args = p.parse_args(argv)
    opts = ("sgd", "kfac", "kfac_f10", "ekfac", "ekfac_d10", "ekfac_running")
    if args.quick:
        cases = [("mlp", 512)]
    else:
        cases = [(n, b) for n in args.nets.split(",") for b in (128, 512)]
    results = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "threads": 1,
            "loadavg": os.getloadavg(),
        },
        "cases": [],
    }
    for net, batch in cases:
        for r in bench_case(net, batch, (20, 100), opts, args.repeats):
            results["cases"].append(r)
            ms = r["ms_per_step"]
            print(
                f"{net:11s} batch {batch:3d} refresh {r['refresh']:3d}: "
                + "  ".join(f"{k} {ms[k]:.1f} ms ({r['ratio_to_sgd'][k]:.2f}x)" for k in opts),
                flush=True,
            )
    if not args.no_peer:
        peer = bench_nngeometry(512, args.repeats)
        results["nngeometry"] = peer
        if "skipped" in peer:
            print(f"nngeometry: {peer['skipped']}")
        else:
            print(
                f"nngeometry (torch {peer['torch']}, batch 512, 1 thread): SGD step "
                f"{peer['sgd_ms']:.2f} ms, EKFAC step with refresh "
                f"{peer['ekfac_refresh_every_step_ms']:.1f} ms "
                f"({peer['ratio_to_sgd']:.0f}x its SGD step); amortised over 100 steps "
                f"{peer['ekfac_amortised_refresh_100_ms']:.1f} ms "
                f"({peer['amortised_ratio_to_sgd']:.0f}x)"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
