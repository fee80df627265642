"""The ``lowdisp`` command: version, info, help, dispatch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lowdisp import __version__
from lowdisp.cli import COMMANDS, info_text, main
from lowdisp.exceptions import UsageError


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
    assert set(COMMANDS) == {
        "demo",
        "train",
        "analyze",
        "pseudospectra",
        "reproduce",
        "sweep",
        "bench",
        "info",
    }


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "lowdisp", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"lowdisp {__version__}"


def test_unknown_command_fails(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: ") and err.count("\n") == 1


# --------------------------------------------------------------------------- error contract
# A user error prints exactly one line "lowdisp: error: ..." on stderr and exits with 2;
# --debug shows the traceback instead; a genuine bug keeps its traceback.

TINY = ["--task", "copy", "--T", "3", "--cell", "tanh", "--hidden", "4", "--batch-size", "4"]
QUIET = ["--no-progress", "--no-plot"]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: "), err
    assert err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def tiny_run(tmp_path):
    """A finished 2-step run folder."""
    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "--out", str(out), *QUIET]) == 0
    return out


def test_argparse_error_is_one_line(capsys):
    assert main(["train", "--no-such-flag"]) == 2
    _one_line_error(capsys, "--no-such-flag")


def test_steps_negative_is_refused(capsys, tmp_path):
    assert main(["train", *TINY, "--steps", "-5", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "--steps", ">= 1", "-5")
    assert not (tmp_path / "r").exists()


def test_eval_every_zero_is_refused(capsys, tmp_path):
    assert main(["train", *TINY, "--eval-every", "0", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "--eval-every", ">= 1")


@pytest.mark.parametrize("flag", ["--checkpoint-every", "--snapshot-every", "--batch-size", "--T"])
def test_zero_counts_are_refused(capsys, tmp_path, flag):
    assert main(["train", *TINY, flag, "0", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, flag)


def test_time_limit_negative_is_refused(capsys, tmp_path):
    assert main(["train", *TINY, "--time-limit", "-1", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "--time-limit", "> 0")


@pytest.mark.parametrize("value", ["0", "-1e-3", "nan", "inf"])
def test_lr_must_be_positive(capsys, tmp_path, value):
    assert main(["train", *TINY, "--lr", value, "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "--lr")


def test_unknown_cell_is_one_line(capsys, tmp_path):
    assert main(["train", "--cell", "nope", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "nope", "tanh")


@pytest.mark.parametrize(
    "flag,value,saved",
    [("--hidden", "6", "4"), ("--cell", "relu", "'tanh'"), ("--task", "adding", "'copy'")],
)
def test_resume_with_contradicting_flag_is_refused(capsys, tiny_run, flag, value, saved):
    before = {p.name: p.read_bytes() for p in tiny_run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(tiny_run), flag, value, "--steps", "4", *QUIET]) == 2
    _one_line_error(capsys, flag, value, saved)
    assert {p.name: p.read_bytes() for p in tiny_run.iterdir() if p.is_file()} == before


def test_resume_with_a_corrupted_checkpoint_is_one_line(capsys, tiny_run):
    ck = tiny_run / "checkpoint.npz"
    data = bytearray(ck.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    ck.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["train", "--resume", str(tiny_run), "--steps", "4", *QUIET]) == 2
    _one_line_error(capsys, "checkpoint.npz")


def test_resume_without_checkpoint_is_one_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty"), *QUIET]) == 2
    _one_line_error(capsys, "no checkpoint.npz")


def test_existing_run_is_refused_and_left_unchanged(capsys, tiny_run):
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tiny_run.iterdir()}
    capsys.readouterr()
    assert main(["train", *TINY, "--steps", "3", "--out", str(tiny_run), *QUIET]) == 2
    _one_line_error(capsys, "already holds a run", "--resume", "--force")
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tiny_run.iterdir()}
    assert after == before


def test_force_replaces_the_run(capsys, tiny_run):
    (tiny_run / "notes.txt").write_text("mine")
    (tiny_run / "analysis").mkdir()
    (tiny_run / "analysis" / "report.txt").write_text("stale")
    (tiny_run / "pseudospectra_rnn_cell_W.png").write_text("stale")
    assert main(["train", *TINY, "--steps", "3", "--out", str(tiny_run), "--force", *QUIET]) == 0
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["steps"] == 3
    assert (tiny_run / "notes.txt").read_text() == "mine"  # only the run's own files go
    assert not (tiny_run / "analysis").exists()
    assert not (tiny_run / "pseudospectra_rnn_cell_W.png").exists()


def test_demo_out_existing_file_is_one_line(capsys, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["demo", "--quick", "--out", str(f)]) == 2
    _one_line_error(capsys, "afile")
    assert f.read_text() == "x"


def test_pseudospectra_out_in_missing_folder_is_one_line(capsys, tmp_path):
    m = tmp_path / "m.npy"
    np.save(m, np.diag([1.0, 2.0]))
    assert main(["pseudospectra", str(m), "--npts", "8", "--out", str(tmp_path / "no/x.png")]) == 2
    _one_line_error(capsys, "x.png")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(UsageError):
        main(["--debug", "train", "--cell", "nope", "--out", str(tmp_path / "r")])
    with pytest.raises(UsageError):  # anywhere on the line
        main(["train", "--cell", "nope", "--out", str(tmp_path / "r"), "--debug"])


def test_a_bug_keeps_its_traceback(monkeypatch):
    import lowdisp.cli as cli

    def broken(args):
        raise RuntimeError("a genuine bug")

    monkeypatch.setattr(cli, "run", broken)
    with pytest.raises(RuntimeError, match="genuine bug"):
        main(["info"])


def test_subprocess_user_error_exit_code_and_one_line(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "lowdisp", "train", "--steps", "-5", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("lowdisp: error: ") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_train_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--steps STEPS", "(default: 2000)", "(default: 128)", "(default: 250)"):
        assert text in out
