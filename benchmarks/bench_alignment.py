"""Benchmark of tangent-kernel alignment of all layers against nngeometry's FMatDense route.

``python benchmarks/bench_alignment.py [--repeats N] [--n N] [--json PATH]``

The 784-256-256-10 ReLU MLP (float64 weights, Glorot-uniform, small random
biases) on ``n = 100`` synthetic inputs in [0, 1] with random labels: the
per-layer centred tangent kernels and their alignments plus the total
kernel's (what the authors' ``layer_alignment`` + ``alignment`` compute).

- lowdisp: one :func:`lowdisp.nn.tangent_kernels` call (the Hadamard identity
  ``(ÃÃᵀ) ⊙ (G_c G_c'ᵀ)`` per dense layer) and :meth:`TangentKernels.alignment`.
- nngeometry (when ``torch`` and ``nngeometry`` import): one ``FMatDense`` per
  layer (a ``TorchHooksJacobianBackend`` restricted to that layer, centring on)
  and one for the whole model, each followed by the authors' formula
  ``vTMv(y) / (frobenius_norm · ‖y‖²)``; the same weights, in float64.

CPU time (``time.process_time``) with one BLAS / torch thread, the two routes
interleaved in each repeat; medians (min) of ``--repeats`` (>= 5). The
largest relative kernel difference between the two routes is printed too.
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

SIZES = (784, 256, 256, 10)


def build(seed: int = 0):
    rng = np.random.default_rng(seed)
    layers = {}
    for i in range(len(SIZES) - 1):
        layers[f"fc{i}"] = lnn.Dense(SIZES[i], SIZES[i + 1], dtype=np.float64, rng=rng)
        layers[f"fc{i}"].params()["b"][...] = 0.01 * rng.normal(size=SIZES[i + 1])
        if i < len(SIZES) - 2:
            layers[f"act{i}"] = lnn.ReLU(dtype=np.float64)
    return lnn.Sequential(layers)


def ours(model, x, y):
    tk = lnn.tangent_kernels(model, x)
    return tk.alignment(y), tk


def torch_twin(model):
    import torch

    mods = []
    for layer in model.layers.values():
        if isinstance(layer, lnn.Dense):
            m = torch.nn.Linear(layer.in_features, layer.out_features).double()
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(layer.params()["W"]))
                m.bias.copy_(torch.from_numpy(layer.params()["b"]))
            mods.append(m)
        else:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def nngeometry_route(tmodel, loader, y):
    import torch
    from nngeometry.backend import TorchHooksJacobianBackend
    from nngeometry.layercollection import LayerCollection
    from nngeometry.object import FMatDense, FVector

    t = torch.nn.functional.one_hot(torch.from_numpy(y), SIZES[-1]).double()
    t -= t.mean(dim=0)
    v = FVector(vector_repr=t.t().contiguous())
    ny2 = torch.norm(v.to_torch()) ** 2
    full = LayerCollection.from_model(tmodel)
    out, kernels = {}, {}
    for lid, layer in full.layers.items():
        lc = LayerCollection()
        lc.add_layer(lid, layer)
        gen = TorchHooksJacobianBackend(model=tmodel, centering=True, layer_collection=lc)
        K = FMatDense(generator=gen, examples=loader)
        out[lid] = (K.vTMv(v) / (K.frobenius_norm() * ny2)).item()
        kernels[lid] = K.data
    gen = TorchHooksJacobianBackend(model=tmodel, centering=True)
    K = FMatDense(generator=gen, examples=loader)
    out["total"] = (K.vTMv(v) / (K.frobenius_norm() * ny2)).item()
    kernels["total"] = K.data
    return out, kernels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-nngeometry", action="store_true")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(1)
    x = rng.random((args.n, SIZES[0]))
    y = rng.integers(0, SIZES[-1], args.n)
    model = build()
    have_nng = False
    if not args.no_nngeometry:
        try:
            import nngeometry  # noqa: F401
            import torch

            torch.set_num_threads(1)
            torch.set_default_dtype(torch.float64)
            have_nng = True
        except ImportError:
            print("torch/nngeometry not importable: lowdisp only")
    times: dict[str, list[float]] = {"lowdisp": [], "nngeometry": []}
    with threadpool_limits(1):
        if have_nng:
            tmodel = torch_twin(model)
            ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            loader = torch.utils.data.DataLoader(ds, batch_size=args.n, shuffle=False)
            nngeometry_route(tmodel, loader, y)  # warm-up
        ours(model, x, y)
        for _ in range(args.repeats):
            t0 = time.process_time()
            a_ours, tk = ours(model, x, y)
            times["lowdisp"].append(time.process_time() - t0)
            if have_nng:
                t0 = time.process_time()
                a_nng, k_nng = nngeometry_route(tmodel, loader, y)
                times["nngeometry"].append(time.process_time() - t0)
    names = {"0": "fc0", "2": "fc1", "4": "fc2"}
    lines = [
        f"bench_alignment: {'-'.join(map(str, SIZES))} ReLU MLP, n = {args.n}, C = {SIZES[-1]}, "
        f"float64, centred, all layers + total; CPU s (process_time), 1 thread, "
        f"median (min) of {args.repeats}, interleaved",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f} (measured under load: ratios, not absolutes)",
    ]
    result: dict = {"n": args.n, "sizes": SIZES, "repeats": args.repeats}
    for k, v in times.items():
        if v:
            lines.append(f"  {k:<11} {statistics.median(v):8.3f} ({min(v):.3f}) s")
            result[k] = {"median": statistics.median(v), "min": min(v)}
    lines.append("  alignment (ours): " + ", ".join(f"{k} {v:.6f}" for k, v in a_ours.items()))
    if have_nng:
        ratio = statistics.median(times["nngeometry"]) / statistics.median(times["lowdisp"])
        lines.append(f"  nngeometry / lowdisp: {ratio:.1f}x")
        errs = {}
        for lid, K in k_nng.items():
            ref = K.detach().numpy()
            mine = tk.tensor(None if lid == "total" else names[lid])
            errs[names.get(lid, lid)] = float(np.abs(mine - ref).max() / np.abs(ref).max())
        dal = max(abs(a_ours[names.get(k, k)] - v) for k, v in a_nng.items())
        lines.append(
            "  max rel kernel difference: "
            + ", ".join(f"{k} {v:.1e}" for k, v in errs.items())
            + f"; max |alignment difference| {dal:.1e}"
        )
        result.update(ratio=ratio, kernel_rel_diff=errs, alignment_abs_diff=dal)
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
