"""``lowdisp sweep SPEC``: a grid of ``lowdisp train`` runs on Dask (or serially), resumable.

SPEC is a TOML, JSON or YAML file of ``lowdisp train`` settings; a list makes
an axis of the grid, ``seeds`` a count or a list (see ``docs/scale.md``).
Every run gets its own run folder in ``OUT/runs/``; the results are gathered
into ``OUT/results.csv``, ``table.csv``, ``table.md`` and ``sweep.png``.
Running the same command again skips the finished runs, continues the
interrupted or lost ones from their checkpoints and retries the failed ones.

Where the runs run: ``--scheduler ADDRESS`` (a running Dask scheduler, e.g.
one of ``dask-jobqueue``), else a local Dask cluster of ``--workers`` worker
processes (default: the CPU count), else (``--serial``, or without
``dask[distributed]`` installed, with a one-line note) one after the other in
this process.

Exit status: 0 when every run finished (or diverged: a result), 1 when some
failed (their errors are printed and written to their ``sweep_error.txt``),
2 for a bad spec or an unreachable scheduler, 130 after Ctrl-C.

Examples
--------
>>> from lowdisp.cli import main
>>> main(["sweep", "spec.toml", "--workers", "2", "--out", "s"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
import sys

from lowdisp._cliargs import int_at_least, number_in
from lowdisp.exceptions import UsageError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lowdisp sweep``."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    add = parser.add_argument
    add("spec", help="the sweep: a .toml, .json or .yaml file of lowdisp train settings")
    add(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (tcp://host:8786); if not given, a local "
        "Dask cluster",
    )
    add(
        "--workers",
        type=int_at_least(1),
        default=None,
        help="worker processes of the local Dask cluster; if not given, the CPU count",
    )
    add(
        "--timeout",
        type=number_in(0, None),
        default=10.0,
        help="seconds to wait for the scheduler to answer",
    )
    add(
        "--serial",
        action="store_true",
        help="run the runs one after the other in this process (no Dask)",
    )
    add("--out", default=None, help="sweep folder; if not given, runs/sweep-<name>")
    add("--no-plot", action="store_true", help="do not write sweep.png")


def run(args: argparse.Namespace) -> int:
    """``lowdisp sweep``: plan, run (Dask or serial), report; returns the exit status."""
    from lowdisp import _dask
    from lowdisp._sweep import load_spec, pending_runs, plan_sweep, run_sweep

    if args.serial and (args.scheduler is not None or args.workers is not None):
        given = "--scheduler" if args.scheduler is not None else "--workers"
        raise UsageError(f"sweep: --serial runs in this process; drop {given} or --serial")
    if args.scheduler is not None and args.workers is not None:
        raise UsageError(
            "sweep: --workers sizes a local cluster; with --scheduler the scheduler's workers "
            "are used: drop one of them"
        )
    spec = load_spec(args.spec)
    stem = os.path.splitext(os.path.basename(args.spec))[0]
    plan = plan_sweep(spec, name=stem, where=f"sweep: {args.spec}")
    out = args.out or os.path.join("runs", f"sweep-{plan.name}")
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                "sweep: the plot needs matplotlib (pip install matplotlib); or pass --no-plot"
            ) from None

    def log(text: str) -> None:
        print(text, flush=True)

    client = None
    if not pending_runs(plan, out):
        log(f"sweep {plan.name}: every run in {out} is done; gathering the results")
    elif not args.serial:
        if _dask.distributed_available():
            try:
                client = _dask.get_client(
                    args.scheduler, workers=args.workers, timeout=args.timeout, where="sweep"
                )
            except (ConnectionError, ValueError) as exc:
                raise UsageError(str(exc)) from exc
        elif args.scheduler is not None:
            raise UsageError(
                f"sweep: --scheduler needs dask.distributed, which is not installed; "
                f"{_dask.DISTRIBUTED_HINT}"
            )
        else:
            log(
                f"note: dask.distributed is not installed: running the runs serially in this "
                f"process ({_dask.DISTRIBUTED_HINT} to run them in parallel)"
            )
    try:
        result = run_sweep(plan, out, client=client, plot=not args.no_plot, log=log)
    finally:
        if client is not None:
            _dask.close_client(client)
    sys.stdout.flush()
    if result.failed:
        bad = [r for r in result.rows if r["status"] not in ("finished", "diverged")]
        for r in bad:
            print(f"  {r['run']}: {r['status']}: {r['error'] or '(no error recorded)'}")
        print(
            f"{len(bad)} run(s) did not finish; see their sweep_error.txt and train.log in "
            f"{os.path.join(out, 'runs')}; rerun the same command to retry them"
        )
        return 1
    return 0
