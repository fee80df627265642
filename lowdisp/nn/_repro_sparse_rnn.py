"""``lowdisp reproduce sparse-rnn``: dense vs block-diagonal vs diagonal recurrences.

Van Keirsbilck, Keller & Yang, "Rethinking full connectivity in recurrent
neural networks" (arXiv 1905.12340, 2019): structurally sparse recurrent
matrices (diagonal, IndRNN-like, or g independent dense blocks), the mixing
between units done by the time-parallel input and output products, reach
competitive results with far fewer recurrent weights and cheaper sequential
steps. Their tables were not recovered (notes/rnn.md §12): no published
numbers are printed.

Protocol: character-level language modelling on Shakespeare's Sonnets
(:func:`lowdisp.nn.char_lm`, 62 characters, contiguous 90/5/5 % split),
tanh cells with a dense softmax readout, Adam (one learning rate, gradient
norm clipped to 1), windows of 50 characters, a fixed number of steps, the
parameters of the best validation bits per character kept for the test.
Conditions at equal hidden size ``n``: dense, ``block:4``, ``block:16``,
``diagonal``; and at equal parameter count (the largest hidden size, a
multiple of g, whose model has no more weights than the dense one):
``block:4`` and ``diagonal``. Time per step is CPU time of a training step
(forward, BPTT, Adam) on one BLAS thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["reproduce", "settings"]

RESULT_COLUMNS = (
    "condition",
    "seed",
    "hidden",
    "total_weights",
    "recurrent_weights",
    "valid_bpc",
    "test_bpc",
    "best_step",
    "steps",
    "cpu_seconds",
    "ms_per_step",
    "diverged",
)
TABLE_COLUMNS = (
    "condition",
    "hidden",
    "total_weights",
    "recurrent_weights",
    "seeds",
    "diverged",
    "valid_bpc_mean",
    "valid_bpc_std",
    "test_bpc_mean",
    "test_bpc_std",
    "ms_per_step_mean",
    "ms_per_step_std",
    "status",
)
FILES = ("bpc_vs_weights.png",)


@dataclass(frozen=True)
class Settings:
    paper: str = "Van Keirsbilck, Keller & Yang 2019: structurally sparse RNNs"
    hidden: int = 128
    T: int = 50
    batch_size: int = 32
    lr: float = 3e-3
    clip_norm: float = 1.0
    steps: int = 3000
    eval_every: int = 500
    seeds: int = 3
    dtype: str = "float32"
    blocks: tuple[int, ...] = (4, 16)
    notes: dict[str, str] = field(default_factory=dict)


def settings(
    *, quick: bool = False, seeds: int | None = None, epochs: int | None = None
) -> Settings:
    """Full settings, or ``--quick`` (hidden 48, lr 1e-2, 200 steps, 2 seeds).
    ``epochs`` sets the training steps in hundreds."""
    from lowdisp.nn._repro_rnn import seeds_and_steps

    s = (
        Settings(hidden=48, lr=1e-2, steps=200, eval_every=100, blocks=(4, 16))
        if quick
        else Settings()
    )
    return seeds_and_steps(s, seeds, epochs)


def _options(kind: str) -> dict[str, Any]:
    return {} if kind == "dense" else {"recurrent": kind}


def _equal_params_hidden(task: Any, kind: str, g: int, budget: int, dtype: str) -> int:
    """The largest hidden size (a multiple of ``g``) whose model has <= ``budget`` weights."""
    from lowdisp.nn._repro_rnn import build_model, count_weights

    def total(n: int) -> int:
        return count_weights(build_model(task, "tanh", n, _options(kind), seed=0, dtype=dtype))[0]

    n = g
    while total(n + g) <= budget:
        n += g
    return n


def conditions(s: Settings, task: Any) -> list[tuple[str, str, int]]:
    """``(label, recurrent kind, hidden)`` of every condition."""
    from lowdisp.nn._repro_rnn import build_model, count_weights

    n = s.hidden
    out = [("dense", "dense", n)]
    out += [(f"block:{g}", f"block:{g}", n) for g in s.blocks]
    out.append(("diagonal", "diagonal", n))
    budget = count_weights(build_model(task, "tanh", n, {}, seed=0, dtype=s.dtype))[0]
    g0 = s.blocks[0]
    out.append(
        (
            f"block:{g0} (equal params)",
            f"block:{g0}",
            _equal_params_hidden(task, f"block:{g0}", g0, budget, s.dtype),
        )
    )
    out.append(
        (
            "diagonal (equal params)",
            "diagonal",
            _equal_params_hidden(task, "diagonal", 1, budget, s.dtype),
        )
    )
    return out


def _job(args: tuple) -> dict[str, Any]:
    label, kind, hidden, seed, s = args
    import lowdisp.nn as lnn
    from lowdisp.nn._repro_rnn import build_model, count_weights, fit_settings

    task = lnn.char_lm(T=s.T)
    model = build_model(task, "tanh", hidden, _options(kind), seed=1000 + seed, dtype=s.dtype)
    total, rec = count_weights(model)
    fit = fit_settings(
        model, task, s, seed=seed, score=lambda m: lnn.frame_nll(m, task, "validation")
    )
    test = lnn.frame_nll(model, task, "test") if math.isfinite(fit["best_score"]) else math.nan
    return {
        "condition": label,
        "seed": seed,
        "hidden": hidden,
        "total_weights": total,
        "recurrent_weights": rec,
        "valid_bpc": fit["best_score"],
        "test_bpc": test,
        "best_step": fit["best_step"],
        "steps": fit["steps"],
        "cpu_seconds": fit["cpu_seconds"],
        "ms_per_step": fit["ms_per_step"],
        "diverged": fit["diverged"],
    }


def claims(rows: list[dict[str, Any]]) -> str:
    """Competitive accuracy with fewer recurrent weights and cheaper steps, vs dense."""
    dense = next((r for r in rows if r["condition"] == "dense" and r["status"] == "ok"), None)
    if dense is None:
        return "no dense run: nothing to compare against"
    lines = []
    for r in rows:
        if r is dense or r["status"] != "ok":
            continue
        d = r["test_bpc_mean"] - dense["test_bpc_mean"]
        speed = r["ms_per_step_mean"] / dense["ms_per_step_mean"]
        lines.append(
            f"{r['condition']:<26} n={r['hidden']:<4} test bpc {r['test_bpc_mean']:.3f} "
            f"({d:+.3f} vs dense), recurrent weights {r['recurrent_weights']} "
            f"({r['recurrent_weights'] / dense['recurrent_weights']:.3f}x), step "
            f"{r['ms_per_step_mean']:.2f} ms ({speed:.2f}x)"
        )
    return "\n".join(lines)


def _markdown(rows: list[dict[str, Any]]) -> str:
    from lowdisp.nn._repro_rnn import pm

    out = [
        "| recurrence | hidden | weights | recurrent weights | seeds | valid bpc | test bpc "
        "| ms/step (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"| {r['condition']} | {r['hidden']} | – | – | – | {r['status']} | – | – |")
            continue
        out.append(
            f"| {r['condition']} | {r['hidden']} | {r['total_weights']} | "
            f"{r['recurrent_weights']} | {r['seeds']}"
            + (f" ({r['diverged']} diverged)" if r["diverged"] else "")
            + f" | {pm(r, 'valid_bpc')} | {pm(r, 'test_bpc')} | {pm(r, 'ms_per_step', '.2f')} |"
        )
    return "\n".join(out) + "\n"


def _figure(rows: list[dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for r in rows:
        if r["status"] != "ok":
            continue
        for ax, x in zip(axes, ("recurrent_weights", "ms_per_step_mean"), strict=True):
            ax.errorbar(
                r[x],
                r["test_bpc_mean"],
                yerr=r["test_bpc_std"] if r["seeds"] > 1 else None,
                marker="o",
                capsize=3,
                label=r["condition"],
            )
    axes[0].set_xscale("log")
    axes[0].set_xlabel("recurrent weights")
    axes[1].set_xlabel("training step, CPU ms (one thread)")
    for ax in axes:
        ax.set_ylabel("test bits per character")
    axes[1].legend(fontsize=7)
    fig.suptitle("char-LM (Sonnets): dense vs block-diagonal vs diagonal recurrences", fontsize=9)
    fig.tight_layout()
    return fig


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
    log: Any = print,
    settings_override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``lowdisp reproduce sparse-rnn`` and write its folder; returns ``{"out",
    "rows", "results", "summary", "settings"}``."""
    import lowdisp.nn as lnn
    from lowdisp.nn._repro_rnn import aggregate_runs, begin, cell_available, finish, load_average
    from lowdisp.nn._reproduce import run_jobs

    s, jobs, out = begin(
        "sparse-rnn",
        settings,
        quick=quick,
        out=out,
        seeds=seeds,
        epochs=epochs,
        jobs=jobs,
        families=families,
        datasets=datasets,
        force=force,
        settings_override=settings_override,
        extra_files=FILES,
    )
    task = lnn.char_lm(T=s.T)
    missing: dict[str, str] = {}
    conds = []
    for label, kind, hidden in _safe_conditions(s, task, missing):
        why = cell_available("tanh", _options(kind), hidden)
        if why:
            missing[label] = why
        else:
            conds.append((label, kind, hidden))
    load0 = load_average()
    log(
        f"sparse-rnn: {len(conds)} recurrences x {s.seeds} seeds on char_lm (Sonnets), "
        f"{s.steps} steps of Adam lr {s.lr:g} batch {s.batch_size} x {s.T} chars; "
        f"{jobs} worker(s); load average {load0}; writing to {out}"
        + (f"; MISSING: {', '.join(missing)}" if missing else "")
    )
    t0 = time.perf_counter()
    grid = [(lab, kind, n, seed, s) for lab, kind, n in conds for seed in range(s.seeds)]

    def report(done: int, r: dict[str, Any]) -> None:
        log(
            f"[{done}/{len(grid)}] {r['condition']:<26} seed {r['seed']}: valid bpc "
            f"{r['valid_bpc']:.3f}, test {r['test_bpc']:.3f}, {r['ms_per_step']:.2f} ms/step "
            f"[{time.perf_counter() - t0:.0f} s elapsed]"
        )

    results = run_jobs(_job, grid, jobs, report)
    rows = aggregate_runs(results, ("valid_bpc", "test_bpc", "ms_per_step"))
    for r in rows:
        first = next(q for q in results if q["condition"] == r["condition"])
        r.update(
            status="ok",
            hidden=first["hidden"],
            total_weights=first["total_weights"],
            recurrent_weights=first["recurrent_weights"],
        )
    for label, why in missing.items():
        rows.append({"condition": label, "hidden": "–", "status": f"missing: {why}"})
    verdict = claims(rows)
    total = time.perf_counter() - t0
    table = _markdown(rows)
    summary = (
        f"# {s.paper}\n\n"
        f"{len(results)} runs in {total / 60:.1f} min ({jobs} worker(s)); load average {load0} "
        f"at the start, {load_average()} at the end (step times are CPU time under this load). "
        f"Data: Shakespeare's Sonnets, 62 characters; a unigram model scores "
        f"{task.baseline / math.log(2):.3f} bits per character.\n\n"
        f"Settings (all conditions): tanh cells, Adam lr {s.lr:g}, clip {s.clip_norm:g}, batch "
        f"{s.batch_size} windows of {s.T} characters, {s.steps} steps, validation every "
        f"{s.eval_every} (best kept); {s.seeds} seeds. No published numbers were recovered.\n\n"
        + "".join(f"- missing condition {c}: {why}\n" for c, why in missing.items())
        + "\n## Against the dense recurrence\n\n```\n"
        + verdict
        + "\n```\n\n## Table (mean ± std over seeds)\n\n"
        + table
    )
    fig = _figure(rows) if plot else None
    return finish(
        out,
        s,
        results=results,
        result_columns=RESULT_COLUMNS,
        rows=rows,
        table_columns=TABLE_COLUMNS,
        table_md=table,
        verdict=verdict,
        summary=summary,
        missing=missing,
        figure=fig,
        figure_name=FILES[0],
        total=total,
        log=log,
    )


def _safe_conditions(s: Settings, task: Any, missing: dict[str, str]) -> list:
    """:func:`conditions`, or only the dense one when the sparse recurrences do not exist."""
    try:
        return conditions(s, task)
    except (TypeError, ValueError, KeyError) as exc:
        missing["sparse recurrences"] = str(exc).splitlines()[0]
        return [("dense", "dense", s.hidden)]
