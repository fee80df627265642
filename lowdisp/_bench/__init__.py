"""``lowdisp bench SUITE``: benchmark suites (private).

Each suite is a module ``lowdisp._bench.<suite>`` with ``add_arguments`` and
``run``; the scripts in ``benchmarks/`` call the same code. Suites print a
table of medians and ratios with the thread count and save it, with the
machine's info, under ``benchmarks/results/`` (or ``--results DIR``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["add_arguments", "run"]

#: suite name -> module
SUITES = {
    "structured": "lowdisp._bench.structured",
    "orthogonal": "lowdisp._bench.orthogonal",
    "spectral": "lowdisp._bench.spectral",
    "rnn": "lowdisp._bench.rnn",
    "layers": "lowdisp._bench.layers",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``lowdisp bench SUITE [suite options]``."""
    parser.add_argument("suite", choices=sorted(SUITES), help="which benchmark suite to run")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the suite")


def run(args: argparse.Namespace) -> int:
    """Run one suite with its own argument parser."""
    mod = importlib.import_module(SUITES[args.suite])
    sub = argparse.ArgumentParser(prog=f"lowdisp bench {args.suite}")
    mod.add_arguments(sub)
    return int(mod.run(sub.parse_args(args.rest)) or 0)


def main(suite: str, argv: list[str] | None = None) -> int:
    """Entry point for ``benchmarks/bench_<suite>.py``."""
    mod = importlib.import_module(SUITES[suite])
    sub = argparse.ArgumentParser(prog=f"bench_{suite}.py")
    mod.add_arguments(sub)
    return int(mod.run(sub.parse_args(sys.argv[1:] if argv is None else argv)) or 0)
