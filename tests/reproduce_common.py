"""Shared helpers of the ``lowdisp reproduce`` tests: run a quick reproduction once,
read the CSV files it writes."""

from __future__ import annotations

import csv

from lowdisp.cli import main


def read_csv(path):
    """``(header, rows)`` of a CSV file: the column names in file order, and the rows
    as dicts of strings."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    return header, rows


def quick_run(tmp_path_factory, paper):
    """Run ``lowdisp reproduce <paper> --quick`` into a fresh folder; returns its path."""
    out = tmp_path_factory.mktemp(paper) / "run"
    assert main(["reproduce", paper, "--quick", "--out", str(out)]) == 0
    return out
