"""``lowdisp reproduce``: the quick grids run, write their table with the right
columns and exact parameter counts, and refuse bad input with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lowdisp.cli import main
from lowdisp.nn._reproduce import RESULT_COLUMNS, TABLE_COLUMNS
from tests.reproduce_common import read_csv

N = 64  # digits: the hidden layer is 64 x 64


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


#: hidden-layer weights (bias excluded) at n = 64, from the parameterisations:
#: Toeplitz-like / low rank 2 r n; LDR-SD 2 r n + 2 (n - 1) subdiagonal entries;
#: LDR-TD 2 r n + 2 (3 n - 2) tridiagonal entries; circulant n; unconstrained n²
THOMAS_WEIGHTS = {
    "unconstrained": N * N,
    "LDR-SD r=1": 2 * N + 2 * (N - 1),
    "LDR-TD r=1": 2 * N + 2 * (3 * N - 2),
    "toeplitz_like r=1": 2 * N,
    "toeplitz_like r=4": 8 * N,
    "low_rank r=4": 8 * N,
    "circulant": N,
}


@pytest.fixture(scope="module")
def thomas_quick(tmp_path_factory):
    pytest.importorskip("sklearn")  # the quick grids run on scikit-learn's digits
    out = tmp_path_factory.mktemp("thomas") / "run"
    code = main(["reproduce", "thomas2018", "--quick", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.slow
def test_thomas2018_quick_table(thomas_quick):
    header, rows = read_csv(thomas_quick / "table.csv")
    assert tuple(header) == TABLE_COLUMNS
    assert [r["model"] for r in rows] == list(THOMAS_WEIGHTS)
    for r in rows:
        w = THOMAS_WEIGHTS[r["model"]]
        assert r["dataset"] == "digits" and int(r["n"]) == N
        assert int(r["hidden_weights"]) == w, r["model"]
        # hidden bias n, dense readout n x 10 + 10
        assert int(r["total_params"]) == w + N + N * 10 + 10, r["model"]
        assert float(r["compression"]) == pytest.approx(N * N / w)
        assert int(r["seeds"]) == 2 and int(r["diverged"]) == 0
        assert 10 <= float(r["accuracy_mean"]) <= 100 and float(r["accuracy_std"]) >= 0
    header, runs = read_csv(thomas_quick / "results.csv")
    assert tuple(header) == RESULT_COLUMNS and len(runs) == 2 * len(THOMAS_WEIGHTS)
    assert {r["epochs"] for r in runs} == {"30"}


@pytest.mark.slow
def test_thomas2018_quick_files(thomas_quick):
    png = (thomas_quick / "accuracy_vs_params.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    md = (thomas_quick / "table.md").read_text()
    assert "| model | hidden weights |" in md and "LDR-TD r=1" in md
    summary = (thomas_quick / "summary.md").read_text()
    assert "Orderings claimed by the paper" in summary and "lr 0.001 momentum 0.9" in summary
    assert "LDR-TD r=1" in summary and ("holds" in summary or "not resolved" in summary)


@pytest.mark.slow
def test_an_existing_run_is_refused_then_forced(thomas_quick, capsys):
    args = ["reproduce", "thomas2018", "--quick", "--out", str(thomas_quick)]
    assert main(args) == 2
    _one_line_error(capsys, "already holds a run", "--force")
    assert main([*args, "--force", "--seeds", "1", "--epochs", "1", "--no-plot"]) == 0
    assert not (thomas_quick / "accuracy_vs_params.png").exists()
    _, runs = read_csv(thomas_quick / "results.csv")
    assert len(runs) == len(THOMAS_WEIGHTS) and {r["epochs"] for r in runs} == {"1"}


#: araujo2019 quick: equal hidden-layer weights 2 k n per depth k
def _araujo_weights():
    out = {"unconstrained": N * N}
    for k in (1, 2, 4):
        out[f"diag-circulant depth={k}"] = 2 * k * N
        out[f"low_rank r={k}"] = 2 * k * N
        out[f"toeplitz_like r={k}"] = 2 * k * N
        out[f"dense width={2 * k}"] = 2 * k * N
    return out


@pytest.mark.slow
def test_araujo2019_quick_grid_equal_budgets(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "araujo"
    # the quick grid with fewer epochs: the counts and columns do not depend on them
    assert main(["reproduce", "araujo2019", "--quick", "--epochs", "2", "--out", str(out)]) == 0
    header, rows = read_csv(out / "table.csv")
    assert tuple(header) == TABLE_COLUMNS
    weights = _araujo_weights()
    assert [r["model"] for r in rows] == list(weights)
    for r in rows:
        w = weights[r["model"]]
        assert int(r["hidden_weights"]) == w, r["model"]
        if r["model"].startswith("dense width="):
            width = int(r["model"].split("=")[1])  # n -> width, then width x 10 readout
            assert int(r["total_params"]) == w + width + width * 10 + 10
        elif r["model"].startswith("diag-circulant"):
            k = int(r["model"].split("=")[1])  # one bias per factor
            assert int(r["total_params"]) == w + k * N + N * 10 + 10
        else:
            assert int(r["total_params"]) == w + N + N * 10 + 10
        assert int(r["seeds"]) == 2
    assert (out / "accuracy_vs_params.png").stat().st_size > 5000
    assert "depth 4 (512 weights)" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers(tmp_path):
    pytest.importorskip("sklearn")
    args = ["reproduce", "thomas2018", "--quick", "--families", "low_rank,circulant"]
    args += ["--epochs", "1", "--no-plot"]
    assert main([*args, "--out", str(tmp_path / "a"), "--jobs", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--jobs", "2"]) == 0
    _, a = read_csv(tmp_path / "a" / "results.csv")
    _, b = read_csv(tmp_path / "b" / "results.csv")
    key = ("model", "seed", "test_accuracy", "val_accuracy", "best_epoch")
    assert [tuple(r[k] for k in key) for r in a] == [tuple(r[k] for k in key) for r in b]
    assert len(a) == 4


def test_the_paper_anchors_sit_beside_the_noise_rows():
    from lowdisp.nn._repro_thomas2018 import ANCHORS, settings
    from lowdisp.nn._reproduce import aggregate

    full = settings(quick=False)
    assert full.lr == 1e-3 and full.momentum == 0.9 and full.batch_size == 50
    assert full.seeds >= 3 and full.datasets == ("mnist", "mnist_noise")
    assert "vandermonde_like" in {m.family for m in full.models}  # every structure (issue 12)
    assert not any(k.startswith("left out") for k in full.notes)
    labels = {m.label for m in settings(quick=False, families=["all"]).models}
    assert {k[1] for k in ANCHORS} <= labels
    assert ANCHORS[("mnist_noise", "LDR-TD r=1")][0] == 78.45
    assert ANCHORS[("mnist_noise", "LDR-SD r=1")][:2] == (78.0, 1.2)
    row = {
        "dataset": "mnist_noise",
        "model": "unconstrained",
        "family": "unconstrained",
        "n": 784,
        "hidden_weights": 784**2,
        "total_params": 1,
        "compression": 1.0,
        "test_accuracy": 0.5,
        "train_seconds": 1.0,
        "ms_per_step": 1.0,
    }
    (agg,) = aggregate([row, {**row, "test_accuracy": 0.7}], ANCHORS)
    assert agg["paper_accuracy"] == 65.15 and agg["accuracy_mean"] == pytest.approx(60.0)
    assert agg["accuracy_std"] == pytest.approx(14.142135623730951)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["reproduce", "smith2020"], "invalid choice"),
        (["reproduce", "thomas2018", "--seeds", "0"], "--seeds"),
        (["reproduce", "thomas2018", "--epochs", "-1"], "--epochs"),
        (["reproduce", "thomas2018", "--jobs", "x"], "--jobs"),
        (["reproduce", "thomas2018", "--quick", "--families", "toeplitz"], "unknown model famil"),
        (["reproduce", "thomas2018", "--quick", "--datasets", "mnist"], "valid: digits"),
    ],
)
def test_bad_arguments_are_one_line(argv, needle, capsys):
    assert main(argv) == 2
    _one_line_error(capsys, needle)


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["reproduce", "thomas2018", "--quick", "--out", str(f)]) == 2
    _one_line_error(capsys, "is a file")


def test_help_lists_the_papers():
    out = subprocess.run(
        [sys.executable, "-m", "lowdisp", "reproduce", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "thomas2018" in out and "araujo2019" in out and "--quick" in out
