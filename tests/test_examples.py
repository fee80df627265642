"""Every script in examples/ runs headless, in seconds, and ends with a figure.

The scripts are sphinx-gallery examples (docs/conf.py): a docstring with a
title and a story, then code that leaves its figures open and calls
``plt.show()``. Here each runs in a fresh interpreter, as sphinx-gallery runs
it (``__main__``, no arguments, the Agg backend, ``plt.show`` a no-op), and
must leave at least one figure open or write a PNG into its folder (the
gallery's ``png_file_scraper`` picks those up). CI runs the examples once, in
the docs build (which fails on an example's error and is checked to show a
figure per example), so there these runs are skipped.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# Runs one example like sphinx-gallery does, then saves its figures to OUT.
RUNNER = textwrap.dedent(
    """
    import runpy, sys
    from pathlib import Path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.show = lambda *a, **k: None
    script, out = sys.argv[1], Path(sys.argv[2])
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")
    pngs = sorted(Path.cwd().glob("*.png"))
    for i, num in enumerate(plt.get_fignums()):
        plt.figure(num).savefig(out / f"figure_{i}.png", dpi=50)
    print("FIGURES", len(plt.get_fignums()), "PNG_FILES", len(pngs))
    """
)


def test_there_are_enough_examples():
    gallery = [p for p in EXAMPLES if p.name.startswith("plot_")]
    assert len(gallery) >= 8, [p.name for p in EXAMPLES]
    assert all(p.name.startswith("plot_") for p in EXAMPLES), "sphinx-gallery runs plot_*.py only"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_has_a_title_and_a_story(script):
    doc = ast.get_docstring(ast.parse(script.read_text()), clean=False) or ""
    lines = doc.strip("\n").splitlines()
    assert len(lines) >= 4, f"{script.name}: no docstring with a title and a paragraph"
    title, underline = lines[0], lines[1]
    assert title.strip() and set(underline) == {"="}, f"{script.name}: reST title missing"
    assert len(underline) >= len(title), f"{script.name}: title underline too short"
    story = " ".join(lines[2:]).split()
    assert len(story) >= 40, f"{script.name}: the story is {len(story)} words; give a paragraph"


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("LOWDISP_EXAMPLES_RUN_BY_DOCS") == "1",
    reason="the docs build runs every example (.ci/run sets LOWDISP_EXAMPLES_RUN_BY_DOCS=1)",
)
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_draws_a_figure(script, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), str(tmp_path)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = proc.stdout.rsplit("FIGURES", 1)[-1].split()
    figures, png_files = int(counts[0]), int(counts[2])
    assert figures + png_files >= 1, f"{script.name} drew no figure"
    for png in tmp_path.glob("figure_*.png"):
        assert png.stat().st_size > 1000
