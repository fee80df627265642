"""``lowdisp reproduce alignment``: the quick run (under 2 minutes) writes its files with
the stated columns and sane numbers; the label noise, the distinct hidden layers
and the logged steps are checked on small cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import UsageError
from lowdisp.nn import _repro_alignment as R
from tests.reproduce_common import quick_run, read_csv

pytest.importorskip("sklearn")  # the quick run uses scikit-learn's digits


def _read(path):
    return read_csv(path)[1]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "alignment")


@pytest.mark.slow
def test_quick_writes_files_columns_and_claims(quick):
    s = R.settings(quick=True)
    for name in R.OUT_FILES:
        assert (quick / name).is_file(), name
    assert (quick / "alignment_train.png").stat().st_size > 10_000
    summary = (quick / "summary.md").read_text()
    for claim in R.CLAIMS.values():
        assert claim in summary
    assert "distinct hidden layers" in summary
    results = _read(quick / "results.csv")
    assert [(float(r["noise"]), int(r["seed"])) for r in results] == [
        (p, k) for p in s.noises for k in range(s.seeds)
    ]
    for r in results:
        assert r["status"] == "ok"
        for k in ("align_init", "align_final", "align_test_final"):
            assert 0.0 <= float(r[k]) <= 1.0
        assert float(r["complexity"]) > 0
        assert math.isclose(
            float(r["gap"]), float(r["train_acc"]) - float(r["test_acc"]), abs_tol=1e-5
        )
    curves = _read(quick / "curves.csv")
    layers = R.layer_names(s)
    assert set(curves[0]) >= {f"alignment.{k}" for k in layers} | {"step", "trace", "complexity"}
    steps_per_run = math.ceil(1438 / s.batch_size) * s.epochs
    sched = set(lnn.alignment_schedule(steps_per_run)) | {steps_per_run}
    for p in s.noises:
        run = [c for c in curves if float(c["noise"]) == p and c["seed"] == "0"]
        steps = [int(c["step"]) for c in run]
        assert steps[0] == 0 and steps[-1] == steps_per_run
        assert set(steps) <= sched
        comp = [float(c["complexity"]) for c in run]
        assert all(b >= a for a, b in itertools.pairwise(comp))


def test_noisy_labels():
    y = np.arange(10_000) % 10
    assert np.array_equal(R.noisy_labels(y, 0.0, 0), y)
    changed = np.mean(R.noisy_labels(y, 0.5, 1) != y)
    assert abs(changed - 0.5 * 0.9) < 0.02  # a random label equals the true one 1/10 of the time
    z = R.noisy_labels(y, 1.0, 2)
    assert abs(np.mean(z != y) - 0.9) < 0.02
    assert np.bincount(z, minlength=10).min() > 900


def test_hidden_layers_distinct_and_kaiming():
    s = R.settings(quick=False)
    net = R.build_net(s, 784, 10, rng=0)
    P = net.params()
    assert [k for k in P if k.endswith(".W")] == ["fc0.W", "fc1.W", "fc2.W", "readout.W"]
    assert P["fc1.W"] is not P["fc2.W"]
    assert not np.array_equal(P["fc1.W"], P["fc2.W"])  # the authors' bug would make them one
    assert abs(P["fc1.W"].std() - math.sqrt(2 / 256)) < 0.01 * math.sqrt(2 / 256) * 10
    assert all(not P[k].any() for k in P if k.endswith(".b"))


def test_bad_options(tmp_path):
    with pytest.raises(UsageError, match="--families and --datasets do not apply"):
        R.reproduce(quick=True, out=str(tmp_path / "a"), families="x", log=lambda t: None)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "curves.csv").write_text("x\n")
    with pytest.raises(UsageError, match="already holds a run"):
        R.reproduce(quick=True, out=str(tmp_path / "b"), log=lambda t: None)
