"""``lowdisp analyze RUN_DIR``: spectra and non-normality of a run's weights along training.

Reads the snapshots a run kept (``lowdisp train --snapshot-every N``; without
them, the final weights), computes per snapshot the spectral norm and radius,
the departure from normality (absolute and relative to ‖A‖_F), the
orthogonality error, the eigenvalues, the numerical range, the transient
growth ‖A^k‖₂ and ε-pseudospectra on one grid with one set of ε levels (see
:func:`lowdisp.nn.analyze_run`), prints the table and writes into ``--out``
(default ``RUN_DIR/analysis``): ``report.txt``, ``report.json``,
``analysis.npz`` (every array, the σ_min grids included), ``measures.png``
(the measures against the training step), ``pseudospectra.png`` (chosen
snapshots side by side, shared axes, one colour bar) and ``transient.png``.

Examples
--------
>>> from lowdisp.cli import main
>>> main(["train", "--T", "5", "--cell", "tanh", "--hidden", "8", "--steps", "4", "--out",
...       "run", "--snapshot-every", "2", "--no-progress", "--no-plot"])  # doctest: +ELLIPSIS
copy(...
0
>>> main(["analyze", "run", "--npts", "20"])  # doctest: +ELLIPSIS
lowdisp analyze: run
matrix rnn.cell.W (8 x 8), 3 snapshot(s)
...
0
"""

from __future__ import annotations

import argparse
import os
import sys

from lowdisp._cliargs import int_at_least, number_in, numbers_in
from lowdisp.exceptions import CheckpointError, UsageError

__all__ = ["add_arguments", "run"]


def _steps(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be training steps separated by commas, e.g. 0,200,500; got {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"must be steps >= 0; got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lowdisp analyze``."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    add = parser.add_argument
    add("run_dir", metavar="RUN_DIR", help="a run folder of lowdisp train")
    add("--param", default=None, help="the matrix, e.g. rnn.cell.W; if not given, the recurrent")
    add("--out", default=None, help="output folder; if not given, RUN_DIR/analysis")
    add(
        "--at",
        type=_steps,
        default=None,
        help="steps whose pseudospectra are computed and plotted, e.g. 0,200,500 "
        "(if not given: all computed, up to six plotted)",
    )
    add("--npts", type=int_at_least(2), default=80, help="pseudospectra grid points per side")
    add(
        "--eps",
        type=numbers_in(0, None),
        default=None,
        help="ε levels, e.g. 1e-3,1e-2; if not given, automatic",
    )
    add("--powers", type=int_at_least(1), default=50, help="largest k of ‖A^k‖₂")
    add("--seed", type=int_at_least(0), default=0, help="seed of the Lanczos start vectors")
    add(
        "--tol",
        type=number_in(0, 1),
        default=1e-6,
        help="relative accuracy of the pseudospectra grid (1e-3: about 2.4x faster)",
    )
    add(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr; if not given, when stderr is a terminal",
    )


def run(args: argparse.Namespace) -> int:
    """Analyse, print the table and the files written; returns the exit status."""
    from lowdisp.nn._runs import analyze_run

    if not os.path.isdir(args.run_dir):
        raise UsageError(f"analyze: no such run folder: {args.run_dir}")
    out = args.out if args.out is not None else os.path.join(args.run_dir, "analysis")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"analyze: --out {out} is a file, not a folder")
    try:
        res = analyze_run(
            args.run_dir,
            param=args.param,
            eps=args.eps,
            npts=args.npts,
            at=args.at,
            powers=args.powers,
            rng=args.seed,
            tol=args.tol,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
        )
    except CheckpointError:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc).replace("analyze_run:", "analyze:", 1)) from exc
    files = res.save(out, at=args.at)
    print(res.report())
    print(f"wrote {len(files)} files:")
    for f in files:
        print(f"  {f}")
    return 0
