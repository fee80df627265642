"""The ``lowdisp`` command: version, info, help, dispatch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lowdisp import __version__
from lowdisp.cli import COMMANDS, info_text, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lowdisp {__version__}"


def test_info_lists_stack_and_threads(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("python", "numpy", "scipy", "numba", "threadpool"):
        assert word in out
    assert "numpy" in info_text()


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_every_command_is_registered():
    assert set(COMMANDS) == {"demo", "train", "analyze", "pseudospectra", "bench", "info"}


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "lowdisp", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"lowdisp {__version__}"


def test_unknown_command_fails(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: ") and err.count("\n") == 1
