"""``lowdisp reproduce lrbi``: the quick run writes its files with the stated columns,
masks that held through retraining, LRBI index bits below CSR's, and the paper's
claims beside ours; the index bits of a row match index_bits on its own masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowdisp.exceptions import UsageError
from lowdisp.nn import _repro_lrbi as R
from lowdisp.nn import index_bits
from tests.reproduce_common import quick_run, read_csv

pytest.importorskip("sklearn")  # the quick run uses scikit-learn's digits


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "lrbi")


@pytest.mark.slow
def test_quick_files_columns_and_claims(quick):
    for name in R.OUT_FILES:
        assert (quick / name).is_file(), name
    header, rows = read_csv(quick / "table.csv")
    assert tuple(header) == R.TABLE_COLUMNS
    s = R.settings(quick=True)
    assert [r["method"] for r in rows] == [m.label for m in s.methods] * len(s.sparsities)
    mp = rows[0]
    for r in rows:
        assert int(r["seeds"]) == s.seeds and r["mask_held"] == "True"
        assert float(r["sparsity"]) >= float(r["target_sparsity"]) - 1e-12
        for key in ("acc_dense_mean", "acc_pruned_mean", "acc_retrained_mean"):
            assert 0 <= float(r[key]) <= 100
        assert math.isfinite(float(r["acc_retrained_std"]))
        if r["method"].startswith("LRBI"):
            assert float(r["index_bits_per_nz"]) < float(mp["index_bits_per_nz"])
    header, results = read_csv(quick / "results.csv")
    assert tuple(header) == R.RESULT_COLUMNS
    assert len(results) == s.seeds * len(s.methods) * len(s.sparsities)
    text = (quick / "summary.md").read_text()
    for claim in R.CLAIMS.values():
        assert claim in text
    assert "load average" in text and "bits/nz" in text


def test_masks_and_bits_match_index_bits(rng):
    W = {"fc0.W": rng.standard_normal((20, 30)), "fc1.W": rng.standard_normal((10, 20))}
    mp = R._masks(R.Method("magnitude"), W, 0.8)
    for p, (mask, bits) in mp.items():
        assert mask.sum() == W[p].size - round(0.8 * W[p].size)
        assert np.abs(W[p])[mask].min() >= np.abs(W[p])[~mask].max()
        assert bits == index_bits(mask)
    lr = R._masks(R.Method("lrbi", 2, (16, 16)), W, 0.8)
    # the 10 x 20 matrix clips the tile to (10, 16)
    assert lr["fc1.W"][1] == index_bits(lr["fc1.W"][0], rank=2, tile=(10, 16))
    assert lr["fc0.W"][1].lrbi == 2 * (16 + 16) + 2 * (16 + 14) + 2 * (4 + 16) + 2 * (4 + 14)


def test_bad_options():
    with pytest.raises(UsageError, match="reproduce lrbi: --families and --datasets do not"):
        R.reproduce(quick=True, families="x", out="unused")
