"""``lowdisp train``: the run folder, resume from the folder alone, interrupts (exit 130)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.cli import main

TINY = [
    "--task",
    "copy",
    "--T",
    "3",
    "--cell",
    "scaled_cayley",
    "--hidden",
    "6",
    "--batch-size",
    "4",
    "--eval-every",
    "4",
    "--checkpoint-every",
    "5",
]
QUIET = ["--no-progress", "--no-plot"]


def _params(run):
    with np.load(run / "weights.npz") as z:
        return {k: z[k] for k in z.files}


def test_run_folder_has_every_documented_file_and_prints_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                *TINY,
                "--steps",
                "6",
                "--snapshot-every",
                "3",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    files = [
        "run.json",
        "checkpoint.npz",
        "history.csv",
        "history.json",
        "summary.json",
        "weights.npz",
        "recurrent_matrix.npy",
        "loss.png",
    ]
    for name in files:
        assert (out / name).is_file(), name
        assert str(out / name) in printed, name
    assert sorted(os.listdir(out / "snapshots")) == [f"step_{s:06d}.npz" for s in (0, 3, 6)]
    run = json.loads((out / "run.json").read_text())
    assert run["format"] == "lowdisp-run" and run["status"] == "finished"
    assert run["model"]["hidden"] == 6 and run["run"]["steps"] == 6
    assert run["run"]["snapshot_every"] == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["interrupted"] is False
    W = _params(out)
    assert sorted(W) == ["readout.W", "rnn.cell.U", "rnn.cell.W"]
    np.testing.assert_array_equal(W["rnn.cell.W"], np.load(out / "recurrent_matrix.npy"))


def test_time_limit_stops_with_a_resume_hint(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            ["train", *TINY, "--steps", "100000", "--time-limit", "0.3", "--out", str(out), *QUIET]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "stopped by --time-limit" in printed and f"--resume {out}" in printed
    assert json.loads((out / "run.json").read_text())["status"] == "stopped (time limit)"


def test_resume_and_out_must_agree(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    assert "name different folders" in capsys.readouterr().err


def test_resume_from_the_folder_alone_equals_an_uninterrupted_run(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", *TINY, "--steps", "12", "--out", str(a), *QUIET]) == 0
    assert main(["train", *TINY, "--steps", "7", "--out", str(b), *QUIET]) == 0
    assert main(["train", "--resume", str(b), "--steps", "12", *QUIET]) == 0
    assert "resumed from" in capsys.readouterr().out
    pa, pb = _params(a), _params(b)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert json.loads((b / "summary.json").read_text())["steps"] == 12
    # --resume with --out (no folder after the flag) works too
    assert main(["train", "--resume", "--out", str(b), "--steps", "13", *QUIET]) == 0


def test_resume_completes_a_run_that_stopped_after_its_final_checkpoint(tmp_path, capsys):
    # the process died between the last checkpoint and the outputs: --resume writes them
    a = tmp_path / "a"
    assert main(["train", *TINY, "--steps", "6", "--out", str(a), *QUIET]) == 0
    done = json.loads((a / "summary.json").read_text())
    for name in ("summary.json", "history.csv", "weights.npz"):
        os.unlink(a / name)
    capsys.readouterr()
    assert main(["train", "--resume", str(a), *QUIET]) == 0
    assert "without its outputs" in capsys.readouterr().out
    again = json.loads((a / "summary.json").read_text())
    assert again["final_eval"] == done["final_eval"] and again["steps"] == 6
    assert (a / "history.csv").is_file() and (a / "weights.npz").is_file()
    assert json.loads((a / "run.json").read_text())["status"] == "finished"
    # a complete run is left alone
    assert main(["train", "--resume", str(a), *QUIET]) == 0
    assert "already at step 6" in capsys.readouterr().out
    # died after summary.json but before run.json's final status (written last): the
    # run is completed too, not left 'running' for ever
    saved = json.loads((a / "run.json").read_text())
    (a / "run.json").write_text(json.dumps({**saved, "status": "running", "pid": 2**22 + 1}))
    assert main(["train", "--resume", str(a), *QUIET]) == 0
    assert "without its outputs" in capsys.readouterr().out
    assert json.loads((a / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_sigint_writes_everything_exits_130_and_resumes_bit_for_bit(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "lowdisp",
        "train",
        *TINY,
        "--checkpoint-every",
        "20",
        "--snapshot-every",
        "1000000",
        "--eval-every",
        "100000",
        "--steps",
        "1000000",
        "--out",
        str(run),
        *QUIET,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run / "checkpoint.npz").exists() and time.time() < deadline:
            time.sleep(0.02)  # the first checkpoint (step 20) shows that fit is running
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    step = json.loads((run / "run.json").read_text())["step"]
    assert step > 0
    assert f"interrupted at step {step}; resume with: lowdisp train --resume {run}" in out
    for name in (
        "checkpoint.npz",
        "history.csv",
        "history.json",
        "summary.json",
        "weights.npz",
        "recurrent_matrix.npy",
        "run.json",
    ):
        assert (run / name).is_file(), name
        assert str(run / name) in out, name
    assert json.loads((run / "summary.json").read_text())["interrupted"] is True
    assert sorted(os.listdir(run / "snapshots")) == ["step_000000.npz", f"step_{step:06d}.npz"]
    assert lnn.read_checkpoint(run / "checkpoint.npz").step == step
    # resume from the folder alone to step + 3; compare with an uninterrupted run
    target = str(step + 3)
    assert main(["train", "--resume", str(run), "--steps", target, *QUIET]) == 0
    ref = tmp_path / "ref"
    assert (
        main(
            [
                "train",
                *TINY,
                "--checkpoint-every",
                "100000",
                "--eval-every",
                "100000",
                "--steps",
                target,
                "--out",
                str(ref),
                *QUIET,
            ]
        )
        == 0
    )
    pr, pi = _params(ref), _params(run)
    assert all(np.array_equal(pr[k], pi[k]) for k in pr)


def test_resume_without_run_json_checks_flags_against_the_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [
        "train",
        "--task",
        "copy",
        "--T",
        "3",
        "--cell",
        "tanh",
        "--hidden",
        "4",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--out",
        str(run),
        *QUIET,
    ]
    assert main(argv) == 0
    (run / "run.json").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--hidden", "6", "--T", "4", *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--hidden 6 (the checkpoint has 4)" in err and "--T 4 (the checkpoint has 3)" in err
    # agreeing flags (and an equivalent --init) are accepted; run.json is written again
    assert (
        main(
            [
                "train",
                "--resume",
                str(run),
                "--hidden",
                "4",
                "--cell",
                "tanh",
                "--init",
                "auto",
                "--steps",
                "3",
                *QUIET,
            ]
        )
        == 0
    )
    saved = json.loads((run / "run.json").read_text())
    assert saved["model"]["cell"] == "tanh" and saved["model"]["hidden"] == 4
    assert saved["step"] == 3


def test_divergence_exits_1_keeps_the_history_and_records_the_status(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [
        "train",
        "--task",
        "adding",
        "--T",
        "4",
        "--cell",
        "tanh",
        "--hidden",
        "4",
        "--optimizer",
        "sgd",
        "--lr",
        "1e300",
        "--steps",
        "20",
        "--out",
        str(run),
        *QUIET,
    ]
    with np.errstate(all="ignore"):
        assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lowdisp: error: ") and "diverged" in err[-1]
    assert json.loads((run / "run.json").read_text())["status"] == "diverged"
    assert (run / "history.csv").is_file()


def test_nothing_to_do_when_the_target_is_reached(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "3", "--out", str(run), *QUIET]) == 0
    before = (run / "run.json").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), *QUIET]) == 0
    assert "already at step 3" in capsys.readouterr().out
    assert (run / "run.json").read_text() == before


def test_a_run_being_trained_by_a_live_process_is_not_resumed_or_replaced(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "--out", str(run), *QUIET]) == 0
    saved = json.loads((run / "run.json").read_text())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (run / "run.json").write_text(
            json.dumps({**saved, "status": "running", "pid": sleeper.pid})
        )
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--steps", "3", *QUIET]) == 2
        assert f"being trained right now by process {sleeper.pid}" in capsys.readouterr().err
        assert main(["train", *TINY, "--out", str(run), "--force", *QUIET]) == 2
    finally:
        sleeper.kill()
        sleeper.wait()
    # once that process is gone, the run resumes
    assert main(["train", "--resume", str(run), "--steps", "3", *QUIET]) == 0


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="zombie states are read from /proc")
def test_a_run_whose_trainer_was_killed_but_not_reaped_resumes(tmp_path, capsys):
    """A killed trainer its parent has not reaped (a zombie, as a Dask worker is until
    its nanny notices) trains nothing: os.kill(pid, 0) still succeeds on it, yet the
    run must resume."""
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "--out", str(run), *QUIET]) == 0
    saved = json.loads((run / "run.json").read_text())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # exited, not reaped: a zombie
            with open(f"/proc/{child.pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the child did not become a zombie")
        os.kill(child.pid, 0)  # the check the old code relied on: it succeeds
        (run / "run.json").write_text(json.dumps({**saved, "status": "running", "pid": child.pid}))
        assert main(["train", "--resume", str(run), "--steps", "3", *QUIET]) == 0
    finally:
        child.wait()


@pytest.mark.slow
def test_sigterm_is_an_interrupt_too(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "lowdisp",
        "train",
        *TINY,
        "--checkpoint-every",
        "20",
        "--steps",
        "1000000",
        "--out",
        str(run),
        *QUIET,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run / "checkpoint.npz").exists() and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    step = json.loads((run / "run.json").read_text())["step"]
    assert f"interrupted at step {step}; resume with: lowdisp train --resume {run}" in out
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert lnn.read_checkpoint(run / "checkpoint.npz").step == step


@pytest.mark.parametrize(
    "flag,value",
    [("--seed", "-1"), ("--seed", "1.5"), ("--lr", "nan"), ("--hidden", "0"), ("--T", "x")],
)
def test_bad_numbers_are_one_line_errors(flag, value, tmp_path, capsys):
    argv = ["train", *TINY, "--steps", "1", "--out", str(tmp_path / "r"), *QUIET]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: ") and err.count("\n") == 1, err
    assert flag in err, err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()
