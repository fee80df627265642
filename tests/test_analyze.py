"""analyze_run / RunAnalysis and the ``lowdisp analyze`` command on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.cli import main


@pytest.fixture(scope="module")
def snap_run(tmp_path_factory):
    """A tanh run (hidden 6) with snapshots at steps 0, 2, 4, 5."""
    d = tmp_path_factory.mktemp("run")
    tr = lnn.make_trainer(
        lnn.adding(5),
        "tanh",
        hidden=6,
        batch_size=4,
        rng=0,
        lr=0.05,
        callbacks=[lnn.Snapshots(d / "snapshots", every=2)],
    )
    tr.fit(5, progress=False)
    return d


def test_measures_match_direct_computation(snap_run):
    res = lnn.analyze_run(snap_run, npts=12, powers=6)
    assert res.param == "rnn.cell.W"
    assert res.steps.tolist() == [0, 2, 4, 5]
    for i, s in enumerate(res.steps):
        A = lnn.weight_matrices(snap_run / f"snapshots/step_{s:06d}.npz")["rnn.cell.W"]
        A = A.astype(np.float64)
        lam = np.linalg.eigvals(A)
        assert res.spectral_norm[i] == pytest.approx(np.linalg.norm(A, 2), rel=1e-9)
        assert res.spectral_radius[i] == pytest.approx(np.abs(lam).max(), rel=1e-9)
        dep = np.sqrt(max(np.linalg.norm(A) ** 2 - np.sum(np.abs(lam) ** 2), 0.0))
        assert res.departure[i] == pytest.approx(dep, rel=1e-6, abs=1e-10)
        assert res.departure_relative[i] == pytest.approx(dep / np.linalg.norm(A), rel=1e-6)
        assert res.orthogonality_error[i] == pytest.approx(
            np.linalg.norm(A.T @ A - np.eye(6), 2), rel=1e-8
        )
        np.testing.assert_allclose(np.sort_complex(res.eigenvalues[i]), np.sort_complex(lam))
        Ak = np.linalg.matrix_power(A, 3)
        assert res.transient[i, 3] == pytest.approx(np.linalg.norm(Ak, 2), rel=1e-8)


def test_one_grid_and_one_eps_scale_for_all_snapshots(snap_run):
    res = lnn.analyze_run(snap_run, npts=12, powers=4)
    assert res.sigma_min.shape == (4, 12, 12)
    assert res.re.shape == (12,) and res.im.shape == (12,)
    every_eig = res.eigenvalues.ravel()
    assert res.re[0] < every_eig.real.min() and every_eig.real.max() < res.re[-1]
    assert np.all(np.diff(res.eps) > 0)
    # the grid values are σ_min(zI − A) of each snapshot on that shared grid
    A = lnn.weight_matrices(snap_run / "snapshots/step_000005.npz")["rnn.cell.W"]
    z = res.re[3] + 1j * res.im[7]
    direct = np.linalg.svd(z * np.eye(6) - A.astype(float), compute_uv=False).min()
    assert res.sigma_min[3, 7, 3] == pytest.approx(direct, rel=1e-5)


def test_at_restricts_the_pseudospectra_and_eps_is_used(snap_run):
    res = lnn.analyze_run(snap_run, npts=10, powers=3, at=[4, 0], eps=[0.3, 0.01])
    assert res.pseudospectra_steps.tolist() == [0, 4]
    assert res.sigma_min.shape == (2, 10, 10)
    assert res.eps.tolist() == [0.01, 0.3]
    assert res.steps.tolist() == [0, 2, 4, 5]  # the measures cover every snapshot


def test_errors_name_the_valid_choices(snap_run, tmp_path):
    with pytest.raises(ValueError, match=r"no snapshot at steps \[3\]; available steps: \[0, 2"):
        lnn.analyze_run(snap_run, at=[3])
    with pytest.raises(ValueError, match=r"no weight matrix 'W'; valid names: rnn\.cell\.W"):
        lnn.analyze_run(snap_run, param="W")
    with pytest.raises(ValueError, match=r"readout.W is not square \(shape \(1, 6\)\)"):
        lnn.analyze_run(snap_run, param="readout.W")
    with pytest.raises(ValueError, match="holds no snapshots"):
        lnn.analyze_run(tmp_path)
    with pytest.raises(ValueError, match="no such run folder"):
        lnn.analyze_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="eps must be positive"):
        lnn.analyze_run(snap_run, eps=[-1.0], npts=4)


@pytest.mark.slow
def test_report_and_files(snap_run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    res = lnn.analyze_run(snap_run, npts=10, powers=4)
    files = res.save(tmp_path / "a", at=[0, 5])
    names = [f.rsplit("/", 1)[-1] for f in files]
    assert names == [
        "report.json",
        "report.txt",
        "analysis.npz",
        "measures.png",
        "pseudospectra.png",
        "transient.png",
    ]
    rep = json.loads((tmp_path / "a/report.json").read_text())
    assert rep["steps"] == [0, 2, 4, 5] and len(rep["eigenvalues"]) == 4
    assert rep["spectral_norm"] == pytest.approx(res.spectral_norm.tolist())
    with np.load(tmp_path / "a/analysis.npz") as z:
        np.testing.assert_array_equal(z["sigma_min"], res.sigma_min)
    text = (tmp_path / "a/report.txt").read_text()
    assert "rnn.cell.W (6 x 6), 4 snapshot(s)" in text
    with pytest.raises(ValueError, match="no pseudospectra at steps"):
        res.plot_pseudospectra([3])


@pytest.mark.slow
def test_cli_analyze_writes_and_prints_every_file(snap_run, tmp_path, capsys):
    out = tmp_path / "analysis"
    assert (
        main(
            [
                "analyze",
                str(snap_run),
                "--npts",
                "10",
                "--powers",
                "4",
                "--at",
                "0,5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for name in (
        "report.json",
        "report.txt",
        "analysis.npz",
        "measures.png",
        "pseudospectra.png",
        "transient.png",
    ):
        assert (out / name).is_file()
        assert str(out / name) in printed


def test_cli_analyze_user_errors_are_one_line(snap_run, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    broken = tmp_path / "broken"
    (broken / "snapshots").mkdir(parents=True)
    (broken / "snapshots" / "step_000000.npz").write_bytes(b"PK\x03\x04 damaged")
    cases = [
        (["analyze", str(snap_run), "--out", str(tmp_path / "afile")], "is a file"),
        (["analyze", str(broken)], "step_000000.npz"),
        (["analyze", str(snap_run), "--tol", "0"], "--tol"),
        (["analyze", str(tmp_path / "nope")], "no such run folder"),
        (["analyze", str(snap_run), "--param", "W"], "valid names"),
        (["analyze", str(snap_run), "--at", "3"], "available steps"),
        (["analyze", str(snap_run), "--at", "x"], "--at"),
        (["analyze", str(snap_run), "--npts", "1"], "--npts"),
        (["analyze", str(snap_run), "--seed", "-1"], "--seed"),
        (["analyze", str(snap_run), "--eps", "nan"], "argument --eps: must be a finite number > 0"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("lowdisp: error: ") and err.count("\n") == 1, err
        assert needle in err, err


def test_without_snapshots_the_final_weights_are_analysed(tmp_path):
    tr = lnn.make_trainer(
        lnn.copy_memory(4),
        "tanh",
        hidden=5,
        batch_size=4,
        rng=0,
        checkpoint=tmp_path / "checkpoint.npz",
    )
    tr.fit(3, progress=False)
    res = lnn.analyze_run(tmp_path, npts=8, powers=3)
    assert res.steps.tolist() == [3] and res.param == "rnn.cell.W"
    assert any("no snapshots" in n for n in res.notes)
    W = lnn.recurrent_matrix(tr.model).astype(float)
    assert res.spectral_norm[0] == pytest.approx(np.linalg.norm(W, 2), rel=1e-9)


def test_lstm_gate_blocks(tmp_path):
    tr = lnn.make_trainer(
        lnn.copy_memory(3),
        "lstm",
        hidden=4,
        batch_size=4,
        rng=0,
        callbacks=[lnn.Snapshots(tmp_path / "snapshots", every=2)],
    )
    tr.fit(2, progress=False)
    with pytest.raises(ValueError, match=r"stacks the gates .* rnn\.cell\.W_h:f"):
        lnn.analyze_run(tmp_path, npts=6, powers=2)
    with pytest.raises(ValueError, match="no gate 'x'"):
        lnn.analyze_run(tmp_path, param="rnn.cell.W_h:x", npts=6, powers=2)
    res = lnn.analyze_run(tmp_path, param="rnn.cell.W_h:f", npts=6, powers=2)
    W_f = tr.model.params()["rnn.cell.W_h"][4:8].astype(float)
    assert res.spectral_norm[-1] == pytest.approx(np.linalg.norm(W_f, 2), rel=1e-9)
