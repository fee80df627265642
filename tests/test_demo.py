"""``lowdisp demo --quick`` writes its plots and report and prints the folder."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import lowdisp._demo as demo
from lowdisp.cli import main
from lowdisp.exceptions import UsageError


def test_quick_demo_writes_plots_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    for name in ("structured_speed.png", "training.png", "pseudospectra.png", "report.txt"):
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
    report = (out / "report.txt").read_text()
    for needle in (
        "Toeplitz-like",
        "LDR-SD",
        "Cauchy-like",
        "baseline",
        "||W||_2",
        "total time",
        # the crossover, measured, and why the O(r n log^2 n) / O(r n^2) families lose
        "faster than dense (measured above",
        "why LDR-SD and Cauchy-like are slower",
        "where they win",
        "lowdisp bench structured --crossover",
        "one thread",
        # one sentence per printed measure
        "spectral norm, the largest singular value",
        "spectral radius, the largest |eigenvalue|",
        "departure from normality",
        "dep rel  dep(W) / ||W||_F",
        "eps-pseudospectrum  the z with",
        "eps = 10^(",
    ):
        assert needle in report, needle
    assert not list(out.glob("*.tmp*")), "temporary files left behind"


def test_quick_demo_figures_share_axes_levels_and_colour_bar(tmp_path, monkeypatch):
    figures = {}
    save = demo._save_figure

    def keep(fig, path):
        figures[path.name] = fig
        save(fig, path)

    monkeypatch.setattr(demo, "_save_figure", keep)
    demo.run_demo(tmp_path / "d", quick=True)
    from matplotlib.contour import ContourSet

    fig = figures["pseudospectra.png"]
    panels = [ax for ax in fig.axes if any(isinstance(c, ContourSet) for c in ax.collections)]
    assert len(panels) == 2
    assert len(fig.axes) == 3, "one colour bar for both panels"
    assert panels[0].get_xlim() == panels[1].get_xlim()
    assert panels[0].get_ylim() == panels[1].get_ylim()
    levels = [next(c for c in ax.collections if isinstance(c, ContourSet)).levels for ax in panels]
    np.testing.assert_array_equal(levels[0], levels[1])
    for ax in panels:
        assert ax.get_title() and ax.get_xlabel() == "Re z"
        assert any(line.get_label() == "unit circle" for line in ax.lines)
    assert figures["training.png"].axes[0].get_yscale() == "log"
    speed = figures["structured_speed.png"].axes[0]
    assert speed.get_xscale() == speed.get_yscale() == "log"


def test_demo_out_existing_file_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "report.txt"
    path.write_text("mine")
    with pytest.raises(UsageError, match="existing file, not a folder"):
        demo.run_demo(path, quick=True)
    with pytest.raises(UsageError, match="cannot create the output folder"):
        demo.run_demo(path / "sub", quick=True)
    with pytest.raises(UsageError, match="empty"):
        demo.run_demo("", quick=True)
    assert path.read_text() == "mine"
    assert main(["demo", "--quick", "--out", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lowdisp: error: demo: --out"), err
    assert path.read_text() == "mine"


def test_demo_negative_seed_is_a_usage_error(tmp_path, capsys):
    assert main(["demo", "--quick", "--seed", "-1", "--out", str(tmp_path / "d")]) == 2
    assert "--seed must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_crossover_and_levels():
    assert demo.crossover([1, 2, 4, 8], [0.5, 1.5, 0.9, 2.0]) == "from n = 8"
    assert demo.crossover([1, 2], [0.5, 0.9]).startswith("not below n = 2")
    levels = demo.shared_levels([np.array([1e-6, 1.0]), np.array([1e-2, 3.0])], 2.0, 1e-3)
    assert levels.size <= 7 and levels[-1] <= np.log10(0.4) and np.all(np.diff(levels) > 0)
    import lowdisp._bench.structured as bench

    for mod in (demo, bench):
        assert doctest.testmod(mod).failed == 0, mod.__name__
