"""lowdisp reproduce araujo2019: the paper's protocol in the grid's settings, the DCNN
block built with the paper's layer options, equal hidden-weight budgets, and the
report's verdicts on hand-made rows (the quick grid itself runs in test_reproduce)."""

from __future__ import annotations

import numpy as np

import lowdisp.nn as lnn
from lowdisp.nn import _repro_araujo2019 as araujo
from lowdisp.nn._reproduce import build_shl

N = 784


def test_full_grid_uses_the_papers_optimizer_and_equal_budgets():
    s = araujo.settings(quick=False)
    assert (s.optimizer, s.lr, s.batch_size) == ("adam", 5e-5, 200)
    assert s.optimizer_text() == "Adam lr 5e-05"
    assert s.datasets == ("mnist", "mnist_noise") and s.seeds == 3
    dc = [m for m in s.models if m.kind == "diagonal_circulant"]
    assert [m.depth for m in dc] == [1, 2, 5, 10]
    assert all(dict(m.options) == {"relu_every": 1, "slope": 0.5, "init": "gaussian"} for m in dc)
    ranks = sorted(m.rank for m in s.models if m.structure in ("low_rank", "toeplitz_like"))
    assert ranks == [1, 1, 2, 2, 5, 5, 10, 10]
    assert "Adam lr 5e-5" in s.notes["protocol"]


def test_dcnn_block_is_built_with_the_papers_layer_options():
    spec = next(m for m in araujo.settings(quick=True).models if m.depth == 2)
    net = build_shl(spec, 16, 3, dtype=np.float64, rng=0)
    hidden = net["hidden"]
    assert isinstance(hidden, lnn.DiagonalCirculant)
    assert (hidden.depth, hidden.relu_every, hidden.slope, hidden.init) == (2, 1, 0.5, "gaussian")
    assert hidden.n_weights == 2 * 2 * 16
    low_rank = next(m for m in araujo.settings(quick=True).models if m.label == "low_rank r=2")
    assert build_shl(low_rank, 16, 3, dtype=np.float64, rng=0)["hidden"].n_weights == 2 * 2 * 16


def _row(model, mean, std, weights=2 * N):
    return {
        "dataset": "mnist",
        "model": model,
        "hidden_weights": weights,
        "accuracy_mean": mean,
        "accuracy_std": std,
    }


def test_report_prints_the_anchors_and_checks_each_claim():
    rows = [
        _row("unconstrained", 90.0, 0.5, N * N),
        _row("diag-circulant depth=1", 85.0, 0.5),
        _row("low_rank r=1", 80.0, 0.5),  # DC ahead by 5 > hypot(0.5, 0.5): holds
        _row("toeplitz_like r=1", 84.8, 0.5),  # 0.2 <= 0.71: not resolved
        _row("dense width=2", 88.0, 0.5),  # behind by 3: does NOT hold
    ]
    text = araujo.ordering_report(rows)
    assert "53.6/54.3/54.4/56.0/56.1/55.9" in text  # the paper's DCNN on CIFAR-10
    assert "98.40" in text and "araujoalexandre/thesis" in text
    assert "diag-circulant depth=1 (85.00 ± 0.50) >= low_rank r=1 (80.00 ± 0.50): holds" in text
    assert ">= toeplitz_like r=1 (84.80 ± 0.50): not resolved" in text
    assert ">= dense width=2 (88.00 ± 0.50): does NOT hold" in text
    assert ">= unconstrained (90.00 ± 0.50): does NOT hold" in text
    assert "diag-circulant: 1: 85.00 ± 0.50" in text


def test_anchor_rows_exist_in_the_full_grid():
    labels = {m.label for m in araujo.settings(quick=False).models}
    for dataset, model in araujo.ANCHORS:
        assert dataset in araujo.FULL["datasets"] and model in labels
