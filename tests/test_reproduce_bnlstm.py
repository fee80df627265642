"""``lowdisp reproduce bnlstm``: the quick run writes its files with the stated columns and
finite numbers; the aggregation and the claim verdicts are checked on small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowdisp.exceptions import UsageError
from lowdisp.nn import _repro_bnlstm as R
from tests.reproduce_common import quick_run, read_csv

pytest.importorskip("sklearn")  # the quick run uses scikit-learn's digits


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "bnlstm")


@pytest.mark.slow
def test_quick_writes_every_file_with_its_columns(quick):
    for name in R.OUT_FILES:
        assert (quick / name).is_file(), name
    assert (quick / "curves.png").stat().st_size > 10_000
    s = R.settings(quick=True)
    header, rows = read_csv(quick / "table.csv")
    assert tuple(header) == R.TABLE_COLUMNS
    assert [r["model"] for r in rows] == [m[0] for m in R.MODELS]
    for r in rows:
        assert int(r["seeds"]) + int(r["diverged"]) == s.seeds
        for k in ("val_acc_final_mean", "test_acc_mean", "val_acc_auc_mean"):
            assert 0.0 <= float(r[k]) <= 100.0, (r["model"], k)
    header, rows = read_csv(quick / "results.csv")
    assert tuple(header) == R.RESULT_COLUMNS and len(rows) == s.seeds * len(R.MODELS)
    header, curves = read_csv(quick / "curves.csv")
    assert tuple(header) == R.CURVE_COLUMNS
    steps = s.datasets[0].steps // s.datasets[0].eval_every
    assert len(curves) == steps * len(rows)
    for c in curves:  # running-statistics accuracy only for the batch-normalized models
        assert math.isfinite(float(c["val_acc_ema"])) == c["model"].startswith("BN-")
    text = (quick / "summary.md").read_text()
    for claim in R.CLAIMS.values():
        assert claim in text
    assert "load average" in text and "refresh_bn_statistics" in text


def test_aggregate_and_claim_verdicts():
    keys = ("val_acc_quarter", "val_acc_auc", "train_loss_half", "val_acc_final")
    rows = []
    for model, acc, loss in (
        ("LSTM", (50.0, 52.0), (1.0, 1.1)),
        ("BN-LSTM", (70.0, 74.0), (0.5, 0.6)),
        ("RNN", (40.0, 60.0), (1.0, 2.0)),
        ("BN-RNN", (45.0, 47.0), (0.9, 1.0)),
    ):
        for seed in range(2):
            r = {"dataset": "d", "model": model, "seed": seed, "status": "ok", "ms_per_step": 1.0}
            r.update(dict.fromkeys(keys, acc[seed]))
            r["train_loss_half"] = loss[seed]
            r["test_acc"] = acc[seed]
            r["val_acc_ema_final"] = math.nan
            rows.append(r)
    rows.append({**rows[0], "seed": 2, "status": "diverged", "test_acc": math.nan})
    table = R.aggregate(rows)
    lstm = table[0]
    assert lstm["seeds"] == 2 and lstm["diverged"] == 1
    assert lstm["val_acc_auc_mean"] == 51.0
    np.testing.assert_allclose(lstm["val_acc_auc_std"], np.std([50, 52], ddof=1))
    assert math.isnan(lstm["val_acc_ema_final_mean"])
    text = R.claims_report(table)
    lines = text.splitlines()
    assert lines[0] == "d:"
    assert "[faster] mean validation accuracy: holds: BN-LSTM 72.0 ± 2.8%" in text
    assert "[generalize] final test accuracy: holds" in text
    # 1.5 ± 0.71 vs 0.95 ± 0.07: the difference 0.55 is within the combined std 0.71
    assert "[bnrnn_train] training loss: not resolved" in text
    assert "[bnrnn_generalize] final val acc: holds (no difference)" in text


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(UsageError, match=r"--epochs does not apply"):
        R.reproduce(quick=True, epochs=3, out=str(tmp_path / "a"))
    with pytest.raises(UsageError, match=r"--families does not apply"):
        R.reproduce(quick=True, families="lstm", out=str(tmp_path / "a"))
    with pytest.raises(UsageError, match=r"--datasets smnist: not in the grid; valid: digits"):
        R.reproduce(quick=True, datasets="smnist", out=str(tmp_path / "a"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "summary.md").write_text("x")
    with pytest.raises(UsageError, match=r"already holds a run \(summary.md\)"):
        R.reproduce(quick=True, out=str(tmp_path / "b"))
