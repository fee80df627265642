"""``lowdisp reproduce pruning --quick``: the files and the table's columns, finite
numbers, the reached sparsities, and the claims printed beside ours."""

from __future__ import annotations

import math

import pytest

from lowdisp.nn import _repro_pruning as R
from tests.reproduce_common import quick_run, read_csv

pytest.importorskip("sklearn")  # the quick run uses scikit-learn's digits


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "pruning")


def test_quick_writes_every_file(quick):
    for name in R.OUT_FILES:
        assert (quick / name).is_file(), name
    assert (quick / "locality.png").stat().st_size > 10_000
    text = (quick / "summary.md").read_text()
    for claim in R.CLAIMS.values():
        assert claim in text
    assert "load average" in text


def test_quick_table_columns_and_numbers(quick):
    s = R.settings(quick=True)
    header, rows = read_csv(quick / "table.csv")
    assert tuple(header) == R.TABLE_COLUMNS
    assert [(r["criterion"], int(r["steps"]), float(r["sparsity"])) for r in rows] == [
        (c, S, sp) for c in s.criteria for S in s.steps for sp in s.sparsities
    ]
    for r in rows:
        assert int(r["seeds"]) == s.seeds
        for k in ("acc_pruned_mean", "acc_finetuned_mean"):
            assert 0 <= float(r[k]) <= 1
        assert math.isfinite(float(r["actual_mean"])) and math.isfinite(float(r["pred_own_mean"]))
    header, results = read_csv(quick / "results.csv")
    assert tuple(header) == R.RESULT_COLUMNS
    for r in results:
        assert abs(float(r["reached"]) - float(r["sparsity"])) < 1e-3
    header, steps = read_csv(quick / "steps.csv")
    assert tuple(header) == R.STEP_COLUMNS
    n_steps = len(s.criteria) * len(s.sparsities) * sum(s.steps) * s.seeds
    assert len(steps) == n_steps


def test_reproduce_refuses_families_and_a_used_folder(quick):
    from lowdisp.exceptions import UsageError

    with pytest.raises(UsageError, match="already holds a run"):
        R.reproduce(quick=True, out=str(quick), log=lambda _: None)
    with pytest.raises(UsageError, match="--families and --datasets do not apply"):
        R.reproduce(quick=True, out=str(quick), families="x", log=lambda _: None)
