"""``lowdisp reproduce PAPER``: rerun a paper's experiment grid on offline data.

Papers: ``thomas2018`` (learned displacement operators, single hidden layer)
and ``araujo2019`` (deep diagonal-circulant blocks at equal budgets). The
run folder (``--out``, default ``runs/reproduce-<paper>[-quick]``) gets
``results.csv`` (one row per run), ``table.csv`` and ``table.md`` (accuracy
mean ± std per model, parameters, compression, time, the paper's numbers
beside ours), ``summary.md`` (the orderings the paper claims, checked on our
numbers), ``settings.json`` and ``accuracy_vs_params.png``. A folder holding
a previous reproduction is refused unless ``--force``.

Examples
--------
>>> from lowdisp.cli import main
>>> main(["reproduce", "thomas2018", "--quick", "--out", "r"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
from typing import Any

from lowdisp._cliargs import int_at_least

__all__ = ["PAPERS", "add_arguments", "reproduce", "run"]

#: paper name -> module with ``settings(quick=, seeds=, epochs=)`` and ``ordering_report``
PAPERS = {
    "thomas2018": "lowdisp.nn._repro_thomas2018",
    "araujo2019": "lowdisp.nn._repro_araujo2019",
    "ekfac": "lowdisp.nn._repro_ekfac",  # own protocol: its module's reproduce()
    "alignment": "lowdisp.nn._repro_alignment",  # own protocol: its module's reproduce()
    "pruning": "lowdisp.nn._repro_pruning",  # own protocol: its module's reproduce()
    "lrbi": "lowdisp.nn._repro_lrbi",  # own protocol: its module's reproduce()
    "noise": "lowdisp.nn._repro_noise",  # own protocol: its module's reproduce()
    "sparse-rnn": "lowdisp.nn._repro_sparse_rnn",  # own protocol: its module's reproduce()
    "robustness": "lowdisp.nn._repro_robustness",  # own protocol: its module's reproduce()
    "bnlstm": "lowdisp.nn._repro_bnlstm",  # own protocol: its module's reproduce()
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lowdisp reproduce``."""
    parser.add_argument("paper", choices=sorted(PAPERS), help="which paper's experiment")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small grid on scikit-learn digits (n = 64), under 2 minutes",
    )
    parser.add_argument("--out", default=None, help="run folder (default runs/reproduce-PAPER)")
    parser.add_argument(
        "--seeds", type=int_at_least(1), default=None, help="seeds per model (full: 3)"
    )
    parser.add_argument(
        "--epochs",
        type=int_at_least(1),
        default=None,
        help="epochs for every model (default 30)",
    )
    parser.add_argument(
        "--jobs",
        type=int_at_least(1),
        default=None,
        help="worker processes, one BLAS thread each (default: 1 with --quick, "
        "else min(2, CPU count))",
    )
    parser.add_argument(
        "--families",
        default=None,
        help="comma-separated model families to run (e.g. toeplitz_like,low_rank), or 'all'; "
        "default: the paper's grid (thomas2018 full leaves vandermonde_like out, see summary)",
    )
    parser.add_argument(
        "--datasets",
        default=None,
        help="comma-separated subset of the grid's datasets (e.g. mnist_noise)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite a previous run in --out")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot (no matplotlib)")


def reproduce(
    paper: str,
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
) -> dict[str, Any]:
    """Run a reproduction and write its folder; returns ``{"out", "rows", "results",
    "summary", "settings"}``."""
    from lowdisp.exceptions import UsageError
    from lowdisp.nn._reproduce import aggregate, format_markdown, prepare_out, run_grid

    where = "reproduce"
    if paper not in PAPERS:
        raise UsageError(f"{where}: unknown paper {paper!r}; valid: {', '.join(sorted(PAPERS))}")
    mod = importlib.import_module(PAPERS[paper])
    if hasattr(mod, "reproduce"):  # an optimizer comparison, not a model grid (ekfac)
        return mod.reproduce(  # type: ignore[no-any-return]
            quick=quick,
            out=out,
            seeds=seeds,
            epochs=epochs,
            jobs=jobs,
            families=families,
            datasets=datasets,
            force=force,
            plot=plot,
            log=log,
        )
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    settings = mod.settings(quick=quick, seeds=seeds, epochs=epochs, families=families)
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    if datasets is not None:
        if isinstance(datasets, str):
            datasets = [d.strip() for d in datasets.split(",") if d.strip()]
        bad = [d for d in datasets if d not in settings.datasets]
        if bad or not datasets:
            raise UsageError(
                f"{where}: --datasets {','.join(datasets)}: not in the {paper} grid; valid: "
                f"{', '.join(settings.datasets)}"
            )
        settings = dataclasses.replace(settings, datasets=tuple(datasets))
    out = out or os.path.join("runs", f"reproduce-{paper}" + ("-quick" if quick else ""))
    prepare_out(out, force=force, where=where)
    n_runs = len(settings.datasets) * len(settings.models) * settings.seeds
    log(
        f"{paper}: {len(settings.models)} models x {len(settings.datasets)} datasets "
        f"({', '.join(settings.datasets)}) x {settings.seeds} seeds = {n_runs} runs; "
        f"{settings.epochs} epochs each, {settings.optimizer_text()} "
        f"batch {settings.batch_size}; {jobs} worker(s); writing to {out}"
    )
    t0 = time.perf_counter()
    results = run_grid(settings, jobs=jobs, log=log)
    rows = aggregate(results, getattr(mod, "ANCHORS", None))
    orderings = mod.ordering_report(rows)
    total = time.perf_counter() - t0
    summary = (
        f"# {settings.paper}\n\n"
        f"{n_runs} runs in {total / 60:.1f} min ({jobs} worker(s)); "
        f"{settings.seeds} seeds, {settings.epochs} epochs, {settings.optimizer_text()} "
        f"batch {settings.batch_size}.\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in settings.notes.items())
        + "\n## Orderings claimed by the paper, checked on our numbers\n\n```\n"
        + orderings
        + "\n```\n\n## Table (accuracy %, mean ± std over seeds)\n\n"
        + format_markdown(rows)
    )
    from lowdisp.nn._reproduce import write_outputs

    written = write_outputs(out, settings, results, rows, summary, plot=plot)
    log("")
    log(format_markdown(rows))
    log(orderings)
    log(f"\n{n_runs} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {
        "out": out,
        "rows": rows,
        "results": results,
        "summary": summary,
        "settings": settings,
    }


def run(args: argparse.Namespace) -> int:
    """``lowdisp reproduce``."""
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            from lowdisp.exceptions import UsageError

            raise UsageError(
                "reproduce: the plot needs matplotlib (pip install matplotlib); or pass --no-plot"
            ) from None

    def log(text: str) -> None:
        print(text, flush=True)

    reproduce(
        args.paper,
        quick=args.quick,
        out=args.out,
        seeds=args.seeds,
        epochs=args.epochs,
        jobs=args.jobs,
        families=args.families,
        datasets=args.datasets,
        force=args.force,
        plot=not args.no_plot,
        log=log,
    )
    sys.stdout.flush()
    return 0
