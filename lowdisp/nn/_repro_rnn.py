"""Shared parts of the recurrent reproductions (``noise``, ``sparse-rnn``, ``robustness``).

One training protocol for every condition of a reproduction: a one-layer
recurrent cell and a dense readout, Adam with one learning rate and gradient
clipping, a fixed number of steps, the parameters of the best validation
score (checked every ``eval_every`` steps) kept for the test. CPU time is
measured with ``time.process_time`` on one BLAS thread (the Trainer's
default). Each run is a module-level job, so ``run_jobs`` can spread them
over processes.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lowdisp.nn._reproduce import (
    claim_out,
    csv_text,
    machine_info,
    mean_pm_std,
    write_text,
)

__all__ = ["aggregate_runs", "build_model", "count_weights", "fit_best", "write_run"]


def build_model(task: Any, cell: str, hidden: int, options: dict, *, seed: int, dtype: Any) -> Any:
    """``Sequential([RNN(make_cell(cell, ...)), Dense(hidden, outputs)])`` for ``task``."""
    import lowdisp.nn as lnn

    rnn = lnn.RNN(
        lnn.make_cell(cell, task.input_size, hidden, dtype=dtype, rng=seed, **options),
        return_sequences=task.sequence_output,
    )
    return lnn.Sequential([rnn, lnn.Dense(hidden, task.output_size, dtype=dtype, rng=seed + 1)])


def count_weights(model: Any) -> tuple[int, int]:
    """``(trainable weights, recurrent weights)`` of a model from :func:`build_model`:
    the recurrent ones are the cell's parameters other than the input matrix ``U``
    and the bias ``b`` (``W``, ``W.diag``, ``W.blocks`` or an orthogonal map's)."""
    total = rec = 0
    for k, v in model.params().items():
        if "running_" in k:
            continue
        total += v.size
        _, sep, name = k.partition("cell.")
        if sep and name not in ("U", "b"):
            rec += v.size
    return total, rec


def seeds_and_steps(s: Any, seeds: int | None, epochs: int | None) -> Any:
    """``s`` with ``seeds`` and ``epochs`` (training steps in hundreds) where given."""
    from dataclasses import replace

    if seeds is not None:
        s = replace(s, seeds=seeds)
    if epochs is not None:
        s = replace(s, steps=100 * epochs)
    return s


def fit_best(
    model: Any,
    task: Any,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    eval_every: int,
    score: Callable[[Any], float],
    clip_norm: float | None = 1.0,
    lower_is_better: bool = True,
) -> dict[str, Any]:
    """Train with Adam; every ``eval_every`` steps ``score(model)`` on validation; the
    best parameters are restored at the end. Returns the best score, its step, the
    CPU seconds of training (scoring excluded) and whether the run diverged.
    Weight constraints of the cells (``max_norm``, ``unit_disk``) hold at every
    score: the trainer projects after each optimizer step."""
    import lowdisp.nn as lnn

    trainer = lnn.Trainer(
        model,
        task.loss(),
        lnn.Adam(lr=lr, clip_norm=clip_norm),
        task,
        batch_size=batch_size,
        rng=seed,
    )
    params = model.params()
    best = math.inf if lower_is_better else -math.inf
    best_step, best_params = 0, {k: v.copy() for k, v in params.items()}
    cpu = 0.0
    diverged = False
    done = 0
    while done < steps:
        n = min(eval_every, steps - done)
        t0 = time.process_time()
        try:
            trainer.fit(steps=n, progress=False)
        except lnn.TrainingDivergedError:
            diverged = True
            cpu += time.process_time() - t0
            break
        cpu += time.process_time() - t0
        done += n
        s = float(score(model))
        if not math.isfinite(s):
            diverged = True
            break
        if (s < best) if lower_is_better else (s > best):
            best, best_step = s, done
            best_params = {k: v.copy() for k, v in model.params().items()}
    for k, v in model.params().items():
        v[...] = best_params[k]
    return {
        "best_score": best,
        "best_step": best_step,
        "steps": done,
        "cpu_seconds": cpu,
        "ms_per_step": 1e3 * cpu / max(done, 1),
        "diverged": diverged,
    }


def fit_settings(
    model: Any, task: Any, s: Any, *, seed: int, score: Callable[[Any], float], **options: Any
) -> dict[str, Any]:
    """:func:`fit_best` with the protocol's hyperparameters read from the settings ``s``
    (``steps``, ``lr``, ``batch_size``, ``eval_every``, ``clip_norm``); ``options``
    are passed on (``lower_is_better``)."""
    return fit_best(
        model,
        task,
        steps=s.steps,
        lr=s.lr,
        batch_size=s.batch_size,
        seed=seed,
        eval_every=s.eval_every,
        score=score,
        clip_norm=s.clip_norm,
        **options,
    )


def aggregate_runs(
    results: Sequence[dict[str, Any]], keys: Sequence[str], group: str = "condition"
) -> list[dict[str, Any]]:
    """Mean and std (over seeds) of ``keys`` per ``group`` value, in first-seen order;
    non-finite values (diverged runs) are left out and counted."""
    rows = []
    for name in dict.fromkeys(r[group] for r in results):
        sub = [r for r in results if r[group] == name]
        row: dict[str, Any] = {group: name, "seeds": len(sub)}
        for k in keys:
            vals = np.array([float(r[k]) for r in sub], dtype=float)
            ok = vals[np.isfinite(vals)]
            row[f"{k}_mean"] = float(ok.mean()) if ok.size else math.nan
            row[f"{k}_std"] = float(ok.std(ddof=1)) if ok.size > 1 else math.nan
        row["diverged"] = sum(bool(r.get("diverged")) for r in sub)
        rows.append(row)
    return rows


def pm(row: dict[str, Any], key: str, fmt: str = ".3f") -> str:
    """``mean ± std`` of ``key`` in an aggregated row."""
    return mean_pm_std(row[f"{key}_mean"], row[f"{key}_std"], fmt)


def load_average() -> str:
    """The 1-minute load average (``?`` where unknown)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        return "?"


def write_run(
    out: str,
    *,
    results: Sequence[dict[str, Any]],
    result_columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    table_columns: Sequence[str],
    table_md: str,
    summary: str,
    settings: dict[str, Any],
    figure: Any = None,
    figure_name: str = "figure.png",
) -> list[str]:
    """Write results.csv, table.csv, table.md, summary.md, settings.json and the figure."""
    written: list[str] = []
    write_text(out, "results.csv", csv_text(results, result_columns), written)
    write_text(out, "table.csv", csv_text(rows, table_columns), written)
    write_text(out, "table.md", table_md, written)
    write_text(out, "summary.md", summary, written)
    meta = {**settings, **machine_info()}
    write_text(out, "settings.json", json.dumps(meta, indent=2, default=str) + "\n", written)
    if figure is not None:
        path = os.path.join(out, figure_name)
        figure.savefig(path, dpi=110)
        written.append(path)
    return written


def no_grid_options(where: str, families: Any, datasets: Any) -> None:
    """The recurrent reproductions have fixed conditions: --families/--datasets are refused."""
    from lowdisp.exceptions import UsageError

    if families is not None or datasets is not None:
        raise UsageError(
            f"{where}: --families and --datasets do not apply (the conditions are fixed; "
            f"see the summary)"
        )


def begin(
    name: str,
    make_settings: Callable[..., Any],
    *,
    quick: bool,
    out: str | None,
    seeds: int | None,
    epochs: int | None,
    jobs: int | None,
    families: Any,
    datasets: Any,
    force: bool,
    settings_override: dict[str, Any] | None,
    extra_files: Sequence[str],
) -> tuple[Any, int, str]:
    """The common start of ``reproduce <name>``: refuse grid options, build the
    settings (``make_settings(quick=, seeds=, epochs=)`` then ``settings_override``),
    default ``jobs`` (1 quick, else up to 2) and the run folder (``claim_out``).
    Returns ``(settings, jobs, out)``."""
    from dataclasses import replace

    no_grid_options(f"reproduce {name}", families, datasets)
    s = make_settings(quick=quick, seeds=seeds, epochs=epochs)
    if settings_override:
        s = replace(s, **settings_override)
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    return s, jobs, claim_out(out, name, quick=quick, force=force, files=extra_files)


def finish(
    out: str,
    s: Any,
    *,
    results: Sequence[dict[str, Any]],
    result_columns: Sequence[str],
    rows: list[dict[str, Any]],
    table_columns: Sequence[str],
    table_md: str,
    verdict: str,
    summary: str,
    missing: dict[str, str],
    figure: Any,
    figure_name: str,
    total: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The common end of ``reproduce <name>``: :func:`write_run` (settings ``s`` as a
    dict plus ``missing``), log the table, the verdict and what was written, and
    return ``{"out", "rows", "results", "summary", "settings"}``."""
    from dataclasses import asdict

    written = write_run(
        out,
        results=results,
        result_columns=result_columns,
        rows=rows,
        table_columns=table_columns,
        table_md=table_md,
        summary=summary,
        settings={**asdict(s), "missing": missing},
        figure=figure,
        figure_name=figure_name,
    )
    log("")
    log(table_md)
    log(verdict)
    log(f"\n{len(results)} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {"out": out, "rows": rows, "results": results, "summary": summary, "settings": s}


def cell_available(cell: str, options: dict, hidden: int = 8) -> str | None:
    """``None`` if ``make_cell(cell, 2, hidden, **options)`` builds, else why not (one line)."""
    import lowdisp.nn as lnn

    try:
        lnn.make_cell(cell, 2, hidden, rng=0, **options)
    except (TypeError, ValueError, KeyError) as exc:
        return str(exc).splitlines()[0]
    return None
