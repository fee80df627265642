"""``lowdisp reproduce noise / sparse-rnn / robustness --quick``: each run writes its files
with the stated columns and finite numbers (the chorales from the tiny fixture, so no
music21 is needed)."""

from __future__ import annotations

import math
import os
import shutil

import pytest

from lowdisp.cli import main
from lowdisp.exceptions import UsageError
from lowdisp.nn import _repro_noise, _repro_robustness, _repro_sparse_rnn
from lowdisp.nn._reproduce_cli import PAPERS
from tests.reproduce_common import read_csv

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "chorales_tiny.npz")


def _read(path):
    header, rows = read_csv(path)
    return tuple(header), rows


def _finite(row, keys):
    return all(math.isfinite(float(row[k])) for k in keys)


def _files(out, figure):
    for name in ("results.csv", "table.csv", "table.md", "summary.md", "settings.json", figure):
        assert (out / name).is_file(), name


def test_registered():
    assert {"noise", "sparse-rnn", "robustness"} <= set(PAPERS)


@pytest.mark.slow
def test_noise_quick(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE, data / "bach_chorales_q1.npz")
    monkeypatch.setenv("LOWDISP_DATA", str(data))
    out = tmp_path / "noise"
    assert main(["reproduce", "noise", "--quick", "--out", str(out)]) == 0
    _files(out, "nll_curves.png")
    header, rows = _read(out / "table.csv")
    assert header == _repro_noise.TABLE_COLUMNS
    assert [r["condition"] for r in rows] == list(_repro_noise.CONDITIONS)
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and ok[0]["condition"] == "none"
    for r in ok:
        assert int(r["seeds"]) == 2 and _finite(r, ("valid_nll_mean", "test_nll_mean"))
        assert 0 < float(r["test_nll_mean"]) < 88 * math.log(2)  # better than coin flips
    for r in rows:
        assert r["status"] == "ok" or r["status"].startswith("missing: ")
    header, results = _read(out / "results.csv")
    assert header == _repro_noise.RESULT_COLUMNS and len(results) == 2 * len(ok)
    text = (out / "summary.md").read_text()
    assert "claim 'noise does not help'" in text and "8.76" in (out / "table.md").read_text()
    with pytest.raises(UsageError, match="already holds a run"):
        _repro_noise.reproduce(quick=True, out=str(out), log=lambda *a: None)


@pytest.mark.slow
def test_sparse_rnn_quick(tmp_path):
    out = tmp_path / "sparse"
    assert main(["reproduce", "sparse-rnn", "--quick", "--out", str(out)]) == 0
    _files(out, "bpc_vs_weights.png")
    header, rows = _read(out / "table.csv")
    assert header == _repro_sparse_rnn.TABLE_COLUMNS
    assert rows[0]["condition"] == "dense" and rows[0]["status"] == "ok"
    dense_rec = int(rows[0]["recurrent_weights"])
    assert dense_rec == 48 * 48
    for r in rows:
        if r["status"] != "ok":
            assert r["status"].startswith("missing: ")
            continue
        assert _finite(r, ("valid_bpc_mean", "test_bpc_mean", "ms_per_step_mean"))
        assert float(r["test_bpc_mean"]) < math.log2(62)
        if r["condition"].startswith("diagonal"):
            assert int(r["recurrent_weights"]) == int(r["hidden"])
        if "equal params" in r["condition"]:
            assert int(r["total_weights"]) <= int(rows[0]["total_weights"])


@pytest.mark.slow
def test_robustness_quick(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out = tmp_path / "rob"
    assert main(["reproduce", "robustness", "--quick", "--out", str(out)]) == 0
    _files(out, "robustness.png")
    header, rows = _read(out / "table.csv")
    assert header == _repro_robustness.TABLE_COLUMNS
    assert [r["model"] for r in rows][:1] == ["tanh RNN"]
    for r in rows:
        if r["status"] != "ok":
            assert r["status"].startswith("missing: ")
            continue
        assert _finite(r, ("test_accuracy_mean", "fgsm_accuracy_mean", "spectral_radius_mean"))
        # the worst case hurts at least as much as random signs of the same size
        assert float(r["fgsm_accuracy_mean"]) <= float(r["random_accuracy_mean"])
    score = next(r for r in rows if r["model"] == "scoRNN")
    if score["status"] == "ok":  # orthogonal W: radius = norm = 1, normal
        assert float(score["spectral_radius_mean"]) == pytest.approx(1.0, abs=1e-9)
        assert float(score["departure_relative_mean"]) < 1e-8
    text = (out / "summary.md").read_text()
    assert "departure from normality" in text


def test_fixed_conditions_refuse_grid_options(tmp_path):
    with pytest.raises(UsageError, match="--families and --datasets do not apply"):
        _repro_sparse_rnn.reproduce(quick=True, out=str(tmp_path), families="x")
