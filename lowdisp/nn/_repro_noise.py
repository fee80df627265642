"""``lowdisp reproduce noise``: injected noise and norm penalties on a plain RNN.

Ognawala & Bayer, "Regularizing recurrent networks — on injected noise and
norm-based methods" (arXiv 1410.5684, 2014): plain tanh RNNs on polyphonic
music with input noise, weight noise, dropout, fast dropout (Bayer et al.
2013) and L1/L2 penalties. Their claim (abstract): training with noise does
*not* improve performance as previously conjectured. Their table was not
recovered (notes/rnn.md §11), so the published numbers printed beside ours
are Boulanger-Lewandowski et al.'s (ICML 2012) JSB-chorale NLLs of a plain
RNN (8.76) and the recalled fast-dropout RNN (≈ 8.0), for orientation only:
our data are music21's 371 chorales with our own fixed split
(:func:`lowdisp.nn.chorales`), not the JSB pickles.

Protocol (one set of hyperparameters for every condition): a tanh RNN with a
sigmoid readout over the 88 keys, Adam (one learning rate, gradient norm
clipped to 1), windows of 24 frames, a fixed number of steps; the parameters
of the best validation NLL (whole chorales, :func:`lowdisp.nn.frame_nll`,
checked at fixed intervals) are kept, and their test NLL reported. Each
regularizer has one strength chosen before any run (never tuned): input noise
σ = 0.1, weight noise σ = 0.01 (one draw per sequence), dropout p = 0.2 on
the input and output connections, fast dropout p = 0.2, L2 weight 1e-4.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from lowdisp.nn._seqdata import KEYS

__all__ = ["CONDITIONS", "PAPER", "reproduce", "settings"]

#: condition -> regularizers= of the cell (None: no regularizer)
CONDITIONS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "input noise": {"input_noise": 0.1},
    "weight noise": {"weight_noise": 0.01},
    "dropout": {"dropout": 0.2},
    "fast dropout": {"fast_dropout": 0.2},
    "L2": {"l2": 1e-4},
}

#: published JSB-chorale NLLs (Boulanger-Lewandowski et al. 2012; different data and split)
PAPER = {"none": 8.76, "fast dropout": 8.0}

RESULT_COLUMNS = (
    "condition",
    "seed",
    "valid_nll",
    "test_nll",
    "best_step",
    "steps",
    "cpu_seconds",
    "ms_per_step",
    "diverged",
    "status",
)
TABLE_COLUMNS = (
    "condition",
    "seeds",
    "diverged",
    "valid_nll_mean",
    "valid_nll_std",
    "test_nll_mean",
    "test_nll_std",
    "ms_per_step_mean",
    "paper_nll",
    "status",
)
FILES = ("nll_curves.png",)


@dataclass(frozen=True)
class Settings:
    paper: str = "Ognawala & Bayer 2014: noise and norm regularization of plain RNNs"
    hidden: int = 128
    T: int = 24
    batch_size: int = 32
    lr: float = 3e-3
    clip_norm: float = 1.0
    steps: int = 3000
    eval_every: int = 250
    seeds: int = 3
    dtype: str = "float32"
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    notes: dict[str, str] = field(default_factory=dict)


def settings(
    *, quick: bool = False, seeds: int | None = None, epochs: int | None = None
) -> Settings:
    """The full settings, or the ``--quick`` ones (hidden 32, 300 steps, 2 seeds).
    ``epochs`` sets the number of training steps in hundreds (``--epochs 30``: 3000)."""
    from lowdisp.nn._repro_rnn import seeds_and_steps

    s = Settings(hidden=32, lr=1e-2, steps=300, eval_every=100, seeds=2) if quick else Settings()
    return seeds_and_steps(s, seeds, epochs)


def _job(args: tuple) -> dict[str, Any]:
    name, seed, s = args
    import lowdisp.nn as lnn
    from lowdisp.nn._repro_rnn import build_model, fit_settings

    task = lnn.chorales(T=s.T, dtype=s.dtype, build=True)
    reg = CONDITIONS[name]
    opts = {} if reg is None else {"regularizers": reg}
    model = build_model(task, "tanh", s.hidden, opts, seed=1000 + seed, dtype=s.dtype)
    curve: list[tuple[int, float]] = []

    def score(m: Any) -> float:
        v = lnn.frame_nll(m, task, "validation")
        curve.append((len(curve) + 1, v))
        return v

    fit = fit_settings(model, task, s, seed=seed, score=score)
    test = lnn.frame_nll(model, task, "test") if math.isfinite(fit["best_score"]) else math.nan
    return {
        "condition": name,
        "seed": seed,
        "valid_nll": fit["best_score"],
        "test_nll": test,
        "best_step": fit["best_step"],
        "steps": fit["steps"],
        "cpu_seconds": fit["cpu_seconds"],
        "ms_per_step": fit["ms_per_step"],
        "diverged": fit["diverged"],
        "status": "ok",
        "curve": [(i * s.eval_every, v) for i, v in curve],
    }


def claims(rows: list[dict[str, Any]]) -> str:
    """The paper's claim checked on our numbers: does any noise condition beat 'none'?"""
    base = next((r for r in rows if r["condition"] == "none"), None)
    if base is None or not math.isfinite(base["test_nll_mean"]):
        return "no baseline run: the claim cannot be checked"
    lines = []
    b, bs = base["test_nll_mean"], base["test_nll_std"]
    for r in rows:
        if r["condition"] == "none" or r.get("status") != "ok":
            continue
        m, sd = r["test_nll_mean"], r["test_nll_std"]
        spread = math.sqrt((0 if math.isnan(bs) else bs) ** 2 + (0 if math.isnan(sd) else sd) ** 2)
        d = m - b
        if d < -spread and spread > 0:
            verdict = "better than none (beyond the seeds' spread)"
        elif d > spread:
            verdict = "worse than none (beyond the seeds' spread)"
        else:
            verdict = "within the seeds' spread of none"
        lines.append(f"{r['condition']:<13} test NLL {m:.3f} vs none {b:.3f} ({d:+.3f}): {verdict}")
    noise = [r for r in rows if r["condition"] in ("input noise", "weight noise")]
    helped = [
        r["condition"]
        for r in noise
        if r.get("status") == "ok" and r["test_nll_mean"] < b - max(r["test_nll_std"] or 0, bs or 0)
    ]
    lines.append(
        "claim 'noise does not help': "
        + (
            "HOLDS here (no noise condition beats none beyond the spread)"
            if not helped
            else f"does NOT hold here: {', '.join(helped)} beat none"
        )
    )
    return "\n".join(lines)


def _markdown(rows: list[dict[str, Any]]) -> str:
    from lowdisp.nn._repro_rnn import pm

    out = [
        "| condition | regularizer | seeds | valid NLL | test NLL | paper (JSB) | ms/step |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        reg = CONDITIONS[r["condition"]]
        if r.get("status") != "ok":
            out.append(f"| {r['condition']} | {reg} | – | missing | missing | – | – |")
            continue
        paper = PAPER.get(r["condition"])
        out.append(
            f"| {r['condition']} | {reg or '–'} | {r['seeds']}"
            + (f" ({r['diverged']} diverged)" if r["diverged"] else "")
            + f" | {pm(r, 'valid_nll')} | {pm(r, 'test_nll')} | "
            + (f"{paper:g}" if paper else "–")
            + f" | {r['ms_per_step_mean']:.2f} |"
        )
    return "\n".join(out) + "\n"


def _figure(results: list[dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = dict(zip(CONDITIONS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for r in results:
        if r.get("curve"):
            st, v = zip(*r["curve"], strict=True)
            ax.plot(
                st,
                v,
                color=colors[r["condition"]],
                alpha=0.8,
                label=r["condition"] if r["seed"] == 0 else None,
            )
    ax.set_xlabel("training step")
    ax.set_ylabel("validation NLL per frame (nats)")
    ax.set_title("tanh RNN on Bach chorales: regularizers", fontsize=9)
    ax.legend(fontsize=7)
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
    """Run ``lowdisp reproduce noise`` and write its folder; returns ``{"out", "rows",
    "results", "summary", "settings"}``."""
    import lowdisp.nn as lnn
    from lowdisp.nn._repro_rnn import aggregate_runs, begin, cell_available, finish, load_average
    from lowdisp.nn._reproduce import run_jobs

    s, jobs, out = begin(
        "noise",
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
    lnn.load_chorales()  # build the cache once, before any worker needs it
    missing = {}
    for c in s.conditions:
        reg = CONDITIONS[c]
        why = None if reg is None else cell_available("tanh", {"regularizers": reg})
        if why:
            missing[c] = why
    run = [c for c in s.conditions if c not in missing]
    load0 = load_average()
    log(
        f"noise: {len(run)} conditions x {s.seeds} seeds, tanh RNN hidden {s.hidden}, "
        f"{s.steps} steps of Adam lr {s.lr:g} batch {s.batch_size} x {s.T} frames; "
        f"{jobs} worker(s); load average {load0}; writing to {out}"
        + (f"; MISSING: {', '.join(missing)}" if missing else "")
    )
    t0 = time.perf_counter()
    grid = [(c, seed, s) for c in run for seed in range(s.seeds)]

    def report(done: int, r: dict[str, Any]) -> None:
        log(
            f"[{done}/{len(grid)}] {r['condition']:<13} seed {r['seed']}: valid NLL "
            f"{r['valid_nll']:.3f}, test {r['test_nll']:.3f} (best step {r['best_step']}), "
            f"{r['cpu_seconds']:.1f} CPU s [{time.perf_counter() - t0:.0f} s elapsed]"
        )

    results = run_jobs(_job, grid, jobs, report)
    rows = aggregate_runs(results, ("valid_nll", "test_nll", "ms_per_step"))
    for r in rows:
        r["status"] = "ok"
        r["paper_nll"] = PAPER.get(r["condition"], math.nan)
    for c in missing:
        rows.append(
            {"condition": c, "seeds": 0, "diverged": 0, "status": f"missing: {missing[c]}"}
            | {
                f"{k}_{m}": math.nan
                for k in ("valid_nll", "test_nll", "ms_per_step")
                for m in ("mean", "std")
            }
            | {"paper_nll": PAPER.get(c, math.nan)}
        )
    order = {c: i for i, c in enumerate(CONDITIONS)}
    rows.sort(key=lambda r: order[r["condition"]])
    verdict = claims(rows)
    baseline = lnn.chorales(T=s.T).baseline * KEYS
    total = time.perf_counter() - t0
    table = _markdown(rows)
    summary = (
        f"# {s.paper}\n\n"
        f"{len(results)} runs in {total / 60:.1f} min ({jobs} worker(s)); load average {load0} "
        f"at the start, {load_average()} at the end. Data: music21's Bach chorales, 88-key "
        f"quarter-note piano rolls, our fixed 223/74/74 split (not the JSB pickles). NLL = "
        f"frame-level negative log-likelihood summed over the 88 keys (nats per frame), "
        f"whole sequences, parameters of the best validation NLL. A memoryless predictor "
        f"(the training frames' key frequencies) scores {baseline:.3f}.\n\n"
        f"Settings (all conditions): tanh RNN hidden {s.hidden}, Adam lr {s.lr:g}, clip "
        f"{s.clip_norm:g}, batch {s.batch_size} windows of {s.T} frames, {s.steps} steps, "
        f"validation every {s.eval_every}; {s.seeds} seeds.\n\n"
        + "".join(f"- missing condition {c}: {why}\n" for c, why in missing.items())
        + "\n## The paper's claim, checked on our numbers\n\n```\n"
        + verdict
        + "\n```\n\n## Table (NLL per frame, mean ± std over seeds)\n\n"
        + table
        + "\nThe 'paper (JSB)' column: Boulanger-Lewandowski et al. 2012 (plain RNN) and the "
        "recalled fast-dropout RNN, on the JSB pickles with their split; Ognawala & Bayer's own "
        "table was not recovered. Beside ours for orientation only (different data and split).\n"
    )
    fig = _figure(results) if plot else None
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
