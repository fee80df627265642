"""thomas2018: every structure is in the full grid, and a diverged run (e.g. learned
Vandermonde nodes whose powers overflow) is recorded, never an abort of the grid."""

from __future__ import annotations

import dataclasses
import math

import pytest

import lowdisp.nn as lnn
from lowdisp.nn import _repro_thomas2018 as t18
from lowdisp.nn._reproduce import ModelSpec, aggregate, format_markdown, run_grid


def test_the_full_grid_has_every_structure_at_the_papers_ranks():
    s = t18.settings(quick=False)
    assert t18.DEFAULT_OFF == {}
    labels = {m.label for m in s.models}
    for fam in ("toeplitz_like", "hankel_like", "vandermonde_like", "low_rank"):
        assert {f"{fam} r={r}" for r in (1, 2, 3, 4)} <= labels
    assert {"unconstrained", "LDR-SD r=1", "LDR-TD r=1", "circulant", "fastfood"} <= labels
    assert not any(k.startswith("left out") for k in s.notes)
    # one set of hyperparameters: the nodes are trained as the authors' code trains them
    assert (s.lr, s.momentum, s.batch_size) == (1e-3, 0.9, 50)
    assert "structured-nets" in s.notes["vandermonde_like"]


def _tiny(lr: float) -> t18.Settings:
    models = (
        ModelSpec("vandermonde_like r=1", "vandermonde_like", structure="vandermonde_like", rank=1),
        ModelSpec("low_rank r=1", "low_rank", structure="low_rank", rank=1),
    )
    base = t18.settings(quick=True)
    return dataclasses.replace(base, models=models, seeds=1, epochs=1, lr=lr)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_diverged_run_does_not_abort_the_grid(jobs):
    pytest.importorskip("sklearn")
    # lr 1.0 sends the Vandermonde nodes far outside the unit disk within a few steps
    # (v^63 overflows at digits' n = 64); the grid goes on to the next run
    results = run_grid(_tiny(1.0), jobs=jobs, log=lambda _: None)
    assert [r["model"] for r in results] == ["vandermonde_like r=1", "low_rank r=1"]
    v = results[0]
    assert v["status"].startswith("diverged at step ") and "(epoch 1)" in v["status"]
    assert "overflowed" in v["status"] and "max|v|" in v["status"]
    assert math.isnan(v["test_accuracy"])  # a diverged run is not scored
    rows = aggregate(results)
    assert rows[0]["seeds"] == 0 and rows[0]["diverged"] == 1
    assert rows[0]["diverged_runs"] == [f"seed 0: {v['status']}"]
    assert "| 0 (1/1 diverged) |" in format_markdown(rows)
    report = t18.ordering_report(rows)
    assert "digits vandermonde_like r=1 seed 0: diverged at step" in report


def test_an_overflow_in_the_validation_pass_is_a_divergence(monkeypatch):
    pytest.importorskip("sklearn")
    real = lnn.Trainer.evaluate

    def evaluate(self, *, batch_size=500, split="test"):
        if split == "validation":
            raise OverflowError("LDRMatrix.matmat: not representable (max|v| = 3.5)")
        return real(self, batch_size=batch_size, split=split)

    monkeypatch.setattr(lnn.Trainer, "evaluate", evaluate)
    s = dataclasses.replace(_tiny(1e-3), models=_tiny(1e-3).models[1:])
    (row,) = run_grid(s, jobs=1, log=lambda _: None)
    steps = s.epochs * -(-1222 // 50)  # digits: 1222 training images, batch 50
    assert row["status"] == (
        f"diverged at step {steps} (epoch 1): the validation pass overflowed "
        "(LDRMatrix.matmat: not representable (max|v| = 3.5))"
    )
    assert row["best_epoch"] == -1 and row["test_accuracy"] != row["test_accuracy"]
