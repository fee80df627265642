"""lowdisp.spectral: plots (Agg, return Axes) and the ``lowdisp pseudospectra`` command."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest

from lowdisp.cli import main
from lowdisp.exceptions import UsageError
from lowdisp.spectral import (
    plot_numerical_range,
    plot_pseudospectra,
    plot_transient,
    pseudospectra,
    transient_growth,
)
from tests import oracles

matplotlib.use("Agg")


def test_plots_return_axes_and_never_show(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() was called"))
    A = oracles.grcar(20)
    ps = pseudospectra(A, npts=25, rng=0)
    ax = ps.plot()
    assert ax.get_xlabel() == "Re z" and len(ax.figure.axes) == 2  # with a colorbar
    _fig, ax2 = plt.subplots()
    assert plot_pseudospectra(ps, [1e-3, 1e-2], ax=ax2) is ax2
    assert plot_pseudospectra(A, 1e-2, npts=12, colorbar=False).get_ylabel() == "Im z"
    ax3 = plot_numerical_range(A)
    assert len(ax3.lines) == 2
    ax4 = plot_transient(transient_growth(0.5 * A / 3, 20, rng=0))
    assert ax4.get_yscale() == "log"
    assert plot_transient(np.array([[0.9, 2.0], [0.0, 0.5]]), 10, rng=0).get_xlabel() == "k"
    plt.close("all")


def test_plot_bad_input():
    ps = pseudospectra(np.eye(3), re=np.array([0.0]), im=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="at least 2 points per side"):
        ps.plot()
    ps2 = pseudospectra(np.eye(3), npts=6)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        plot_pseudospectra(ps2, [1e-2, -1.0])
    with pytest.raises(ValueError, match="steps is required"):
        plot_transient(np.eye(2))


def _run(capsys, *argv):
    code = main(["pseudospectra", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_npy_npz_txt(tmp_path, capsys):
    A = oracles.grcar(16)
    np.save(tmp_path / "a.npy", A)
    code, out, _ = _run(capsys, tmp_path / "a.npy", "--npts", 20, "--measures", "all")
    assert code == 0
    png = tmp_path / "a_pseudospectra.png"
    assert png.is_file() and png.stat().st_size > 1000
    report = (tmp_path / "a_pseudospectra.txt").read_text()
    for word in (
        "spectral norm",
        "spectral radius",
        "departure from normality",
        "numerical abscissa",
        "pseudospectral abscissa",
        "Kreiss",
    ):
        assert word in out and word in report
    assert f"{oracles.spectral_norm_dense(A):.6f}"[:6] in out

    np.savez(tmp_path / "w.npz", W=0.1 * A, b=np.ones(3))
    code, out, _ = _run(capsys, tmp_path / "w.npz", "--key", "W", "--out", tmp_path / "w.png")
    assert code == 0 and (tmp_path / "w.png").is_file()

    np.savetxt(tmp_path / "m.txt", A[:5, :5])
    code, _, _ = _run(capsys, tmp_path / "m.txt", "--npts", 10, "--eps", 0.1)
    assert code == 0 and (tmp_path / "m_pseudospectra.png").is_file()


def test_cli_bad_input(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=np.eye(2), b=np.eye(3))
    code, _, err = _run(capsys, tmp_path / "two.npz")
    assert code == 2 and "choose one with --key" in err
    code, _, err = _run(capsys, tmp_path / "two.npz", "--key", "c")
    assert code == 2 and "no array 'c'" in err
    np.save(tmp_path / "rect.npy", np.ones((2, 3)))
    code, _, err = _run(capsys, tmp_path / "rect.npy")
    assert code == 2 and "A must be a square matrix" in err
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = _run(capsys, tmp_path / "obj.npy")
    assert code == 2 and "cannot read" in err
    code, _, err = _run(capsys, tmp_path / "missing.npy")
    assert code == 2 and "no such file" in err
    (tmp_path / "x.mat").write_text("")
    code, _, err = _run(capsys, tmp_path / "x.mat")
    assert code == 2 and "unsupported file type" in err
    np.save(tmp_path / "nan.npy", np.array([[np.nan]]))
    code, _, err = _run(capsys, tmp_path / "nan.npy")
    assert code == 2 and "must be finite" in err


# --------------------------------------------------------------------------
# issue 9: measures, progress, ρ ≈ 1, flat transients, checkpoints and run folders
# --------------------------------------------------------------------------


def _orthogonal_f32(n: int = 40) -> np.ndarray:
    from scipy.stats import ortho_group

    return ortho_group.rvs(n, random_state=7).astype(np.float32)


def test_cli_default_measures_and_timing_lines(tmp_path, capsys):
    from lowdisp.spectral._cli import DEFAULT_MEASURES

    assert DEFAULT_MEASURES == ("basic", "grid", "radius")
    A = oracles.grcar(30)
    np.save(tmp_path / "g.npy", A)
    code, out, err = _run(capsys, tmp_path / "g.npy", "--npts", 12)
    assert code == 0
    assert "pseudospectral radius" in out and "spectral norm" in out
    assert "α_ε" not in out and "Kreiss constant (discrete)" not in out
    for label in ("norm, spectrum", "grid 12 x 12", "pseudospectral radius"):
        assert f"pseudospectra: {label}" in err  # one line per measure with its time
    (tmp_path / "g_pseudospectra.png").unlink()
    code, out, err = _run(capsys, tmp_path / "g.npy", "--measures", "kreiss", "--no-progress")
    assert code == 0 and "Kreiss constant (discrete)" in out and "spectral norm" not in out
    assert err == ""
    assert not (tmp_path / "g_pseudospectra.png").exists()  # no grid, no plot
    assert (tmp_path / "g_pseudospectra.txt").is_file()


def test_cli_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["pseudospectra", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for piece in (
        "default: basic,grid,radius",
        "all",
        "numradius",
        "abscissa",
        "kreiss",
        "--param",
        "rnn.cell.W",
        "default: 1e-2·‖A‖₂",
        "default: 0",
        "30000/n",
    ):
        assert piece in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--measures", "grid,spectrum"], "unknown measure 'spectrum'"),
        (["--measures", ","], "--measures is empty"),
        (["--out", "nodir/x.png"], "does not exist"),
        (["--out", "x.jpg"], "must name a .png"),
        (["--npts", "1"], "--npts"),
        (["--eps", "-1"], "--eps"),
        (["--param", "rnn.cell.W"], "--param applies to checkpoints"),
    ],
)
def test_cli_user_errors_are_usage_errors(tmp_path, capsys, monkeypatch, argv, message):
    from lowdisp._pseudospectra_cli import resolve
    from lowdisp.spectral._cli import parse_measures

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "m.npy", np.diag([0.5, 0.2]))
    code, out, err = _run(capsys, "m.npy", *argv)
    assert code == 2 and out == ""
    assert err.startswith("lowdisp: error: ") and err.count("\n") == 1 and message in err
    with pytest.raises(UsageError, match="unknown measure"):
        parse_measures("grid,nope")
    with pytest.raises(UsageError, match="no such file or folder"):
        resolve(tmp_path / "missing.npy")


def test_float32_orthogonal_rho_is_reported_meaningfully(tmp_path, capsys):
    W = _orthogonal_f32()
    rho = float(np.abs(np.linalg.eigvals(W.astype(np.float64))).max())
    assert rho != 1.0
    np.save(tmp_path / "w.npy", W)
    code, out, _ = _run(capsys, tmp_path / "w.npy", "--measures", "basic,kreiss", "--no-progress")
    assert code == 0
    assert not re.search(r"\binf\b", out)  # never "inf ≤ sup_k ‖A^k‖ ≤ e·n·K = inf"
    assert "float32 ulp" in out and "float64 from float32 entries" in out
    sign = "+" if rho > 1 else "-"
    assert f"ρ(A) = 1 {sign} {abs(rho - 1):.2g}" in out
    if rho > 1:
        assert "K = ∞ for this matrix" in out and "grows without bound" in out


def test_power_statement_cases():
    from lowdisp.spectral._cli import power_statement

    s = power_statement(1 + 8.7e-8, np.float32)
    assert s.startswith("ρ(A) = 1 + 8.7e-08, within 1 float32 ulp of 1") and "infinite" in s
    assert "within 3 float64 ulps" in power_statement(1 + 6e-16, np.float64)
    assert "neutrally stable" in power_statement(1 - 1e-7, np.float32)
    assert "grow without bound" in power_statement(1.5, np.float64)
    assert "< 1: powers decay" in power_statement(0.9, np.float64)
    assert "1 exactly" in power_statement(1.0, np.float64)


def test_plot_transient_ticks_of_a_flat_curve_are_readable():
    import matplotlib.pyplot as plt

    ax = plot_transient(_orthogonal_f32(), 30, rng=0)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels)
    assert "1" in labels and any(lab.startswith("1 + ") for lab in labels)
    assert not any("10^" in lab for lab in labels)
    lo, hi = ax.get_ylim()
    assert 0.999 < lo < 1 < hi < 1.001
    # a decaying curve keeps its log axis
    assert plot_transient(np.array([[0.9, 2.0], [0.0, 0.5]]), 40, rng=0).get_yscale() == "log"
    plt.close("all")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import lowdisp.nn as lnn

    d = tmp_path_factory.mktemp("run")
    tr = lnn.train(lnn.adding(8), "tanh", hidden=6, steps=2, progress=False, rng=0)
    lnn.save(d / "checkpoint.npz", tr)
    return d, lnn.weight_matrices(tr)


def test_cli_checkpoint_and_run_folder(tiny_run, tmp_path, capsys):
    run_dir, mats = tiny_run
    W = np.asarray(mats["rnn.cell.W"])
    code, out, _ = _run(capsys, run_dir, "--npts", 8, "--measures", "basic,grid")
    assert code == 0 and "rnn.cell.W" in out
    assert (run_dir / "pseudospectra_rnn_cell_W.png").is_file()
    assert f"{np.linalg.norm(W, 2):.6f}"[:6] in out
    code, out, _ = _run(
        capsys, run_dir / "checkpoint.npz", "--measures", "basic", "--out", tmp_path / "w.png"
    )
    assert code == 0 and (tmp_path / "w.txt").is_file()
    code, _, err = _run(capsys, run_dir, "--param", "readout.W", "--measures", "basic")
    assert code == 2 and "not square" in err
    code, _, err = _run(capsys, run_dir, "--param", "nope", "--measures", "basic")
    assert code == 2 and "valid --param: rnn.cell.W, rnn.cell.U, readout.W" in err
    code, _, err = _run(capsys, run_dir / "checkpoint.npz", "--key", "W")
    assert code == 2 and "--param, not --key" in err


def test_choose_lists_the_names_when_ambiguous():
    from lowdisp._pseudospectra_cli import _choose

    mats = {"a.W": np.eye(3), "b.W": np.eye(4), "c": np.ones((2, 3))}
    with pytest.raises(
        UsageError, match=r"2 square weight matrices; choose one with --param: a\.W, b\.W"
    ):
        _choose(mats, None, "x")
    assert _choose({"rnn.cell.W": np.eye(2), "x": np.eye(3)}, None, "x")[0] == "rnn.cell.W"
    assert _choose({"x": np.eye(3), "y": np.ones((1, 3))}, None, "x")[0] == "x"
    with pytest.raises(UsageError, match="no square weight matrix"):
        _choose({"y": np.ones((1, 3))}, None, "x")


def test_issue9_orthogonal_float32_never_prints_inf_bounds():
    from scipy.stats import ortho_group

    from lowdisp.spectral._cli import compute

    W = ortho_group.rvs(64, random_state=3).astype(np.float32)
    text = compute(W, measures=("basic", "kreiss")).text
    assert "inf ≤" not in text and "= inf" not in text
    assert "float32 ulp" in text and "ρ(A) = 1 " in text
