"""``bench_layers``: time per training step of the structured layers (private).

Two tables, one BLAS thread, float32 by default, cases interleaved round-robin
(``--rounds`` samples each, medians reported) so machine load hits all alike:

1. **Layer step**: one ``StructuredDense`` (or ``Fastfood``, one-factor
   ``DiagonalCirculant``) n x n layer: forward, backward (input gradient
   included) and an SGD-momentum update, for batch 50 and 256 and n = 784,
   1024, 4096, against :class:`lowdisp.nn.Dense` of the same size in the same
   run (``speedup`` = Dense time / structure time). The SGD rate is tiny
   (1e-9): the update's arithmetic is timed while the parameters stay at their
   initial values (random cotangents would otherwise drive learned operators
   to overflow after a few steps).
2. **SHL step against torch-structured** (``--torch``; skipped cleanly when
   ``torch_structured`` is not importable): the single-hidden-layer net of
   Thomas et al. 2018 (structured n x n layer, ReLU, dense 10-way softmax
   readout, cross-entropy, SGD momentum 0.9, lr 1e-3) on random data, lowdisp
   against the authors' PyTorch layers as packaged in PyPI ``torch-structured``
   (one torch thread), for every structure both have. torch-structured's
   ToeplitzLike is the Stein (Z₀, Z₀ᵀ) form; lowdisp's ``toeplitz_like`` is
   Sylvester (Z₁, Z₋₁) (same class and parameter count). Both sides do the
   same work in the same dtype: forward, cross-entropy, the parameter
   gradients (no gradient for the input data: torch's autograd forms none,
   lowdisp's ``Sequential.backward(..., input_grad=False)``, as the Trainer
   does, skips it too) and the SGD-momentum update; lowdisp's step reuses its
   scratch buffers from step to step as :meth:`lowdisp.nn.Trainer.train_step`
   does. ``unconstrained`` is lowdisp's :class:`~lowdisp.nn.Dense` against
   torch-structured's ``Unconstrained``.

Installing torch-structured 1.3.0 on a CPU machine (it imports ``triton``
unconditionally, a ~1 GB GPU package missing from its requirements, although
its CPU layers never call it; :func:`torch_structured_layers` puts a stand-in
``triton`` module in ``sys.modules`` only while importing it)::

    python -m venv /tmp/ts_venv --system-site-packages   # numpy, scipy, numba, lowdisp
    /tmp/ts_venv/bin/pip install torch                   # a CPU build (2.13.0+cpu here)
    /tmp/ts_venv/bin/pip install --no-deps torch-structured==1.3.0 einops
    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1
    S=toeplitz_like,subdiagonal,tridiagonal,circulant,low_rank,vandermonde_like,fastfood
    PYTHONPATH=. /tmp/ts_venv/bin/python benchmarks/bench_layers.py --torch --skip-layers \\
        --sizes 256,784,1024 --batches 50 --clock cpu --rounds 9 --structures $S

(``--skip-layers --torch`` saves ``benchmarks/results/layers-torch-<stamp>.txt``.)
torch-structured's Fastfood needs a power-of-two n (reported as failed at
784). On a loaded machine use ``--clock cpu`` (this process's CPU time): wall
medians there include the time the process waits for a core.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lowdisp._bench._common import format_table, save_results, thread_count
from lowdisp._config import blas_threads

__all__ = ["add_arguments", "run"]

#: structure -> rank used by the benchmark (the paper's: r = 4, learned operators r = 1)
RANKS = {
    "toeplitz_like": 4,
    "hankel_like": 4,
    "vandermonde_like": 4,
    "cauchy_like": 4,
    "subdiagonal": 1,
    "tridiagonal": 1,
    "circulant": None,
    "toeplitz": None,
    "low_rank": 4,
}
DEFAULT = "toeplitz_like,hankel_like,cauchy_like,subdiagonal,tridiagonal,circulant,toeplitz,"
DEFAULT += "low_rank,fastfood,diagonal_circulant"
#: lowdisp structure -> torch-structured layer class
TORCH = {
    "toeplitz_like": "ToeplitzLike",
    "subdiagonal": "LDRSubdiagonal",
    "tridiagonal": "LDRTridiagonal",
    "circulant": "Circulant",
    "low_rank": "LowRank",
    "vandermonde_like": "VandermondeLike",
    "fastfood": "FastFood",
    "unconstrained": "Unconstrained",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the layers suite."""
    parser.add_argument("--sizes", default="784,1024,4096")
    parser.add_argument("--batches", default="50,256")
    parser.add_argument("--structures", default=DEFAULT, help="comma-separated; see RANKS")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (>= 5)")
    parser.add_argument(
        "--max-step", type=float, default=20.0, help="skip a case whose first step takes longer (s)"
    )
    parser.add_argument("--quick", action="store_true", help="n = 784, batch 50, 3 rounds")
    parser.add_argument(
        "--torch", action="store_true", help="also the SHL step against torch-structured"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or this process's CPU time (robust on a shared, loaded machine)",
    )
    parser.add_argument("--skip-layers", action="store_true", help="only the torch table")
    parser.add_argument("--results", default=None, help="directory for the results file")
    parser.add_argument("--no-save", action="store_true")


def make_layer(structure: str, n: int, dtype: Any, rng: int = 0) -> Any:
    """The n x n layer of a benchmark case (``"dense"``, a structure, ``"fastfood"``, ...)."""
    import lowdisp.nn as lnn

    if structure == "dense":
        return lnn.Dense(n, n, dtype=dtype, rng=rng)
    if structure == "fastfood":
        return lnn.Fastfood(n, dtype=dtype, rng=rng)
    if structure == "diagonal_circulant":
        return lnn.DiagonalCirculant(n, depth=1, dtype=dtype, rng=rng)
    return lnn.StructuredDense(
        n, n, structure=structure, rank=RANKS.get(structure), dtype=dtype, rng=rng
    )


def layer_step(structure: str, n: int, batch: int, dtype: Any) -> Callable[[], None]:
    """One training step of one layer: forward, backward (with dx), SGD-momentum update."""
    import lowdisp.nn as lnn
    from lowdisp.nn._layers import _workspaces

    layer = make_layer(structure, n, dtype)
    opt = lnn.SGD(lr=1e-9, momentum=0.9)
    params = layer.params()
    gen = np.random.default_rng(0)
    x = gen.standard_normal((batch, n)).astype(dtype)
    dy = gen.standard_normal((batch, n)).astype(dtype)
    spaces = _workspaces(layer)

    def step() -> None:
        for ws in spaces:  # scratch buffers reused step to step, as in Trainer.train_step
            ws.begin()
        _, cache = layer.forward(x)
        _, grads = layer.backward(cache, dy)
        opt.step(params, grads)
        for ws in spaces:
            ws.release()

    return step


def shl_step_lowdisp(structure: str, n: int, batch: int, dtype: Any) -> Callable[[], None]:
    """The SHL net's training step in lowdisp (structured layer, ReLU, Dense(n, 10), CE, SGD)."""
    import lowdisp.nn as lnn
    from lowdisp.nn._layers import _workspaces, param_grads

    net = lnn.Sequential(
        [
            make_layer(structure, n, dtype),
            lnn.ReLU(dtype=dtype),
            lnn.Dense(n, 10, dtype=dtype, rng=1),
        ]
    )
    loss = lnn.SoftmaxCrossEntropy()
    opt = lnn.SGD(lr=1e-3, momentum=0.9)
    params = net.params()
    gen = np.random.default_rng(0)
    x = gen.standard_normal((batch, n)).astype(dtype)
    y = gen.integers(0, 10, batch)
    spaces = _workspaces(net, loss)

    def step() -> None:
        # as Trainer.train_step: the step's scratch buffers are reused by the next
        # step, and no gradient is formed for the input data (nor by torch's autograd)
        for ws in spaces:
            ws.begin()
        out, cache = net.forward(x)
        _, dout = loss(out, y)
        opt.step(params, param_grads(net, cache, dout))
        for ws in spaces:
            ws.release()

    return step


def torch_structured_layers() -> Any:
    """``torch_structured.structured.layers``, imported without Triton.

    torch-structured 1.3.0 imports ``triton`` unconditionally (GPU kernels; not in
    its requirements) although its CPU layers never call it. torch is imported
    first (``torch._dynamo`` records that Triton is absent), then a stand-in
    ``triton`` module (decorators that return the function) is in ``sys.modules``
    only while torch-structured is imported. Raises ImportError when torch or
    torch-structured is not installed.
    """
    import sys
    import types

    import torch
    import torch._dynamo  # noqa: F401  (torch decides here that Triton is absent)

    if "torch_structured.structured.layers" in sys.modules:
        return sys.modules["torch_structured.structured.layers"]
    stub = types.ModuleType("triton")
    stub.jit = lambda fn=None, **kw: fn if fn is not None else (lambda f: f)  # type: ignore[attr-defined]
    stub.autotune = stub.heuristics = lambda *a, **kw: lambda f: f  # type: ignore[attr-defined]
    stub.Config = lambda *a, **kw: (a, kw)  # type: ignore[attr-defined]
    stub.cdiv = lambda a, b: -(-a // b)  # type: ignore[attr-defined]
    lang = types.ModuleType("triton.language")
    lang.constexpr = object  # type: ignore[attr-defined]
    lang.__getattr__ = lambda name: object  # type: ignore[method-assign]
    stub.language = lang  # type: ignore[attr-defined]
    had = {k: sys.modules.get(k) for k in ("triton", "triton.language")}
    sys.modules.update({"triton": stub, "triton.language": lang})
    try:
        from torch_structured.structured import layers
    finally:
        for k, v in had.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return layers


def shl_step_torch(structure: str, n: int, batch: int, dtype: Any) -> Callable[[], None]:
    """The same SHL step with torch-structured's layer (the authors' code)."""
    import torch

    tsl = torch_structured_layers()

    dt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    torch.manual_seed(0)
    cls = getattr(tsl, TORCH[structure])
    kw = {"r": RANKS[structure]} if RANKS.get(structure) else {}
    layer = cls(layer_size=n, bias=True, **kw).to(dt)
    head = torch.nn.Linear(n, 10).to(dt)
    params = [*layer.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    gen = np.random.default_rng(0)
    x = torch.from_numpy(gen.standard_normal((batch, n)).astype(dtype))
    y = torch.from_numpy(gen.integers(0, 10, batch))

    def step() -> None:
        opt.zero_grad()
        out = head(torch.relu(layer(x)))
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()

    return step


def _time(
    cases: list[tuple[tuple, Callable[[], None]]], rounds: int, max_step: float, clock: str = "wall"
):
    """Medians (ms) of interleaved rounds; a case whose warm-up step exceeds max_step is skipped."""
    kept = []
    for key, fn in cases:
        t0 = time.perf_counter()
        try:
            fn()  # first call: allocation, FFT plans, Numba compilation
            fn()
        except Exception as exc:  # a peer that cannot run this case (reported, not fatal)
            print(f"failed: {key}: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        if (time.perf_counter() - t0) / 2 > max_step:
            print(f"skipped (step > {max_step} s): {key}")
            continue
        kept.append((key, fn))
    samples: dict[tuple, list[float]] = {key: [] for key, _ in kept}
    now = time.process_time if clock == "cpu" else time.perf_counter
    for _ in range(rounds):
        for key, fn in kept:
            t0 = now()
            fn()
            samples[key].append(now() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in samples.items()}


def run(args: argparse.Namespace) -> int:
    """Time every configuration, print the tables, save them."""
    import scipy.linalg  # noqa: F401  (load scipy's BLAS before blas_threads snapshots)

    sizes = [784] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    batches = [50] if args.quick else [int(b) for b in args.batches.split(",") if b]
    rounds = 3 if args.quick else args.rounds
    structures = [s for s in args.structures.split(",") if s]
    dtype = np.dtype(args.dtype)
    out = []
    if not args.skip_layers:
        with blas_threads(1):
            out.append(
                f"# bench_layers: one training step (forward, backward with dx, SGD momentum), "
                f"{dtype.name}, {rounds} interleaved rounds, medians of {args.clock} time; "
                f"threads: {thread_count()}; load averages {_load()} (before)"
            )
            cases = []
            for n in sizes:
                for b in batches:
                    for s in ["dense", *structures]:
                        cases.append(((n, b, s), layer_step(s, n, b, dtype)))
            med = _time(cases, rounds, args.max_step, args.clock)
        rows = []
        for (n, b, s), ms in med.items():
            dense = med.get((n, b, "dense"), float("nan"))
            rank = RANKS.get(s)
            rows.append([n, b, s, "" if rank is None else rank, ms, dense / ms])
        header = ["n", "batch", "layer", "r", "ms/step", "speedup vs Dense"]
        out.append(format_table(header, rows))
    if args.torch:
        out.append(_torch_table(args, sizes, batches, structures, dtype, rounds))
    text = "\n\n".join(out)
    print(text)
    if not args.no_save:
        name = "layers-torch" if args.torch and args.skip_layers else "layers"
        print(f"saved {save_results(name, text, args.results)}")
    return 0


def _torch_table(args, sizes, batches, structures, dtype, rounds) -> str:
    try:
        import torch

        torch_structured_layers()
    except ImportError as exc:
        msg = f"# torch-structured comparison skipped: not importable ({exc})"
        print(msg)
        return msg
    torch.set_num_threads(1)
    load_before = _load()
    both = [s for s in dict.fromkeys(["unconstrained", *structures]) if s in TORCH]
    with blas_threads(1):
        cases = []
        for n in sizes:
            for b in batches:
                for s in both:
                    mine = "dense" if s == "unconstrained" else s
                    cases.append(((n, b, s, "lowdisp"), shl_step_lowdisp(mine, n, b, dtype)))
                    cases.append(((n, b, s, "torch"), shl_step_torch(s, n, b, dtype)))
        med = _time(cases, rounds, args.max_step, args.clock)
    rows = []
    for n in sizes:
        for b in batches:
            for s in both:
                lo, to = med.get((n, b, s, "lowdisp")), med.get((n, b, s, "torch"))
                if lo is None and to is None:
                    continue
                ratio = to / lo if lo and to else float("nan")
                rows.append([n, b, s, lo if lo else "skipped", to if to else "skipped", ratio])
    head = (
        f"# SHL training step (structured n x n, ReLU, Linear(n, 10), CE, SGD momentum), "
        f"{dtype.name}, lowdisp vs torch-structured {_ts_version()} (torch {torch.__version__}, "
        f"1 thread), {rounds} interleaved rounds, medians of {args.clock} time; load averages "
        f"{load_before} before, {_load()} after"
    )
    return (
        head
        + "\n"
        + format_table(
            ["n", "batch", "layer", "lowdisp ms", "torch-structured ms", "lowdisp speedup"], rows
        )
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _ts_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch-structured")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
