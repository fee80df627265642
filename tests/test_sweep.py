"""``lowdisp sweep``: a grid of train runs, serial and on a local Dask cluster, resumable.

The oracle of the Dask runs is the serial sweep: every run's final evaluation
must be bit-identical (same seeds, one BLAS thread, exact resume). The runs are
tiny copy-task trainings (hidden 8) long enough (~1 s) to kill a worker while
one of them trains.
"""

from __future__ import annotations

import csv
import doctest
import json
import os
import signal
import socket
import threading
import time

import pytest

from lowdisp.cli import main

SPEC = """\
task = "copy"
T = 10
cell = ["tanh", "relu"]
hidden = 8
batch_size = 8
steps = 60
checkpoint_every = 5
seeds = 2
"""


def _write(path, text):
    with open(path, "w") as fh:
        fh.write(text)
    return str(path)


def _read(path):
    with open(path) as fh:
        return fh.read()


def _results(out):
    with open(os.path.join(out, "results.csv")) as fh:
        return list(csv.DictReader(fh))


def _final_evals(out):
    """run id -> the final evaluation in its summary.json (exact floats)."""
    runs = os.path.join(out, "runs")
    found = {}
    for rid in sorted(os.listdir(runs)):
        with open(os.path.join(runs, rid, "summary.json")) as fh:
            found[rid] = json.load(fh)["final_eval"]
    return found


def _one_error_line(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lowdisp: error: sweep: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The 4-run sweep run serially in this process: the oracle of the Dask runs."""
    d = tmp_path_factory.mktemp("serial")
    spec = _write(d / "spec.toml", SPEC)
    out = str(d / "out")
    assert main(["sweep", spec, "--serial", "--out", out, "--no-plot"]) == 0
    return spec, out


def test_serial_sweep_writes_one_run_folder_per_run_and_the_tables(serial, capsys):
    spec, out = serial
    rows = _results(out)
    assert [(r["cell"], r["seed"], r["status"], r["step"]) for r in rows] == [
        ("tanh", "0", "finished", "60"),
        ("tanh", "1", "finished", "60"),
        ("relu", "0", "finished", "60"),
        ("relu", "1", "finished", "60"),
    ]
    for r in rows:  # each run is an ordinary lowdisp train run folder
        run = os.path.join(out, "runs", r["run"])
        with open(os.path.join(run, "run.json")) as fh:
            saved = json.load(fh)
        assert saved["status"] == "finished" and saved["model"]["cell"] == r["cell"]
        assert saved["model"]["seed"] == int(r["seed"]) and saved["model"]["hidden"] == 8
        assert os.path.isfile(os.path.join(run, "checkpoint.npz"))
    with open(os.path.join(out, "table.csv")) as fh:
        table = list(csv.DictReader(fh))
    assert [(t["cell"], t["seeds"]) for t in table] == [("tanh", "2"), ("relu", "2")]
    loss = {r["run"]: float(r["loss"]) for r in rows}
    tanh = [v for k, v in loss.items() if k.startswith("cell-tanh")]
    assert float(table[0]["loss_mean"]) == pytest.approx(sum(tanh) / 2, rel=1e-5)
    assert "| tanh |" in _read(os.path.join(out, "table.md"))
    # a rerun skips every finished run and rewrites the same results
    mtimes = {r: os.path.getmtime(os.path.join(out, "runs", r, "summary.json")) for r in loss}
    capsys.readouterr()
    assert main(["sweep", spec, "--serial", "--out", out]) == 0
    text = capsys.readouterr().out
    assert "every run in" in text and "4 done before (skipped), 0 to run" in text
    assert mtimes == {
        r: os.path.getmtime(os.path.join(out, "runs", r, "summary.json")) for r in loss
    }
    assert os.path.isfile(os.path.join(out, "sweep.png"))


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of 2 worker processes on loopback for the Dask tests."""
    pytest.importorskip("dask.distributed")
    from lowdisp._dask import client_session

    with client_session(workers=2, where="test") as c:
        yield c


def test_local_cluster_sweep_equals_the_serial_sweep(serial, client, tmp_path):
    from lowdisp._sweep import load_spec, plan_sweep, run_sweep

    spec, serial_out = serial
    lines = []
    out = str(tmp_path / "dask")
    res = run_sweep(plan_sweep(load_spec(spec), name="spec"), out, client=client, log=lines.append)
    assert res.failed == 0 and "on Dask (tcp://127.0.0.1:" in lines[0] and "2 workers" in lines[0]
    assert _final_evals(out) == _final_evals(serial_out)  # bit-identical floats


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killing_a_worker_mid_sweep_loses_no_finished_run(serial, client, tmp_path, capsys):
    """SIGKILL the worker process training a run (after its first checkpoint): Dask
    reschedules the task, the run resumes from its checkpoint; finished runs are
    not touched; the results equal the serial sweep; a rerun has nothing to do."""
    from lowdisp._sweep import load_spec, plan_sweep, run_sweep

    spec, serial_out = serial
    plan = plan_sweep(load_spec(spec), name="spec")
    out = str(tmp_path / "killed")
    runs = os.path.join(out, "runs")
    box = {}

    def sweep(client):
        try:
            box["result"] = run_sweep(plan, out, client=client, plot=False, log=lambda s: None)
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            box["error"] = exc

    killed = None
    finished_then = {}
    th = threading.Thread(target=sweep, args=(client,))
    th.start()
    deadline = time.monotonic() + 60
    while killed is None and th.is_alive() and time.monotonic() < deadline:
        for rid in os.listdir(runs) if os.path.isdir(runs) else []:
            d = os.path.join(runs, rid)
            try:
                with open(os.path.join(d, "run.json")) as fh:
                    saved = json.load(fh)
            except (OSError, ValueError):
                continue
            mid_run = saved["status"] == "running" and saved["host"] == socket.gethostname()
            mid_run = mid_run and os.path.isfile(os.path.join(d, "checkpoint.npz"))
            finished_then = {  # kill once a run has finished and another is training
                r: os.path.getmtime(os.path.join(runs, r, "summary.json"))
                for r in os.listdir(runs)
                if os.path.isfile(os.path.join(runs, r, "summary.json"))
            }
            alive = saved["pid"] != os.getpid() and _pid_alive(saved["pid"])
            if mid_run and alive and finished_then:
                os.kill(saved["pid"], signal.SIGKILL)
                killed = rid
                break
        time.sleep(0.02)
    th.join(120)
    assert not th.is_alive() and "error" not in box, box.get("error")
    assert killed is not None and finished_then, "no run was caught training after another"
    assert box["result"].failed == 0, [(r["status"], r["error"]) for r in box["result"].rows]
    # the rescheduled task continued the run from its checkpoint
    assert "resumed from" in _read(os.path.join(runs, killed, "train.log"))
    for r, mtime in finished_then.items():  # finished runs were not run again
        assert os.path.getmtime(os.path.join(runs, r, "summary.json")) == mtime
    assert _final_evals(out) == _final_evals(serial_out)
    capsys.readouterr()
    assert main(["sweep", spec, "--out", out, "--no-plot"]) == 0  # the rerun: nothing to do
    assert "every run in" in capsys.readouterr().out


def test_a_run_killed_between_its_last_checkpoint_and_its_summary_is_completed(
    serial, tmp_path, capsys
):
    """The window the kill test can hit: the final checkpoint is written, the summary
    is not (lowdisp train --resume writes the outputs from the checkpoint)."""
    import shutil
    import subprocess
    import sys

    spec, serial_out = serial
    out = tmp_path / "out"
    shutil.copytree(os.path.join(serial_out, "runs"), out / "runs")
    rid = sorted(os.listdir(out / "runs"))[0]
    run = out / "runs" / rid
    os.unlink(run / "summary.json")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    saved = json.loads(_read(run / "run.json"))
    _write(run / "run.json", json.dumps({**saved, "status": "running", "pid": int(dead)}))
    assert main(["sweep", spec, "--serial", "--out", str(out), "--no-plot"]) == 0
    assert "3 done before (skipped), 1 to run" in capsys.readouterr().out
    assert _final_evals(out) == _final_evals(serial_out)
    assert json.loads(_read(run / "run.json"))["status"] == "finished"


def test_a_failed_run_is_reported_with_its_error_and_retried_on_rerun(tmp_path, capsys):
    spec = _write(
        tmp_path / "s.json",
        json.dumps({"T": 5, "cell": "tanh", "hidden": 4, "batch_size": 2, "steps": 2, "seeds": 2}),
    )
    out = str(tmp_path / "out")
    from lowdisp._sweep import load_spec, plan_sweep

    blocked = plan_sweep(load_spec(spec), name="s").runs[1].run_id
    os.makedirs(os.path.join(out, "runs", blocked))
    # a run folder that another live process on this machine claims to be training
    claim = {"status": "running", "pid": os.getppid(), "host": socket.gethostname()}
    _write(os.path.join(out, "runs", blocked, "run.json"), json.dumps(claim))
    assert main(["sweep", spec, "--serial", "--out", out]) == 1
    text = capsys.readouterr().out
    assert f"{blocked}: failed: UsageError: train: " in text and "being trained" in text
    assert os.path.isfile(os.path.join(out, "runs", blocked, "sweep_error.txt"))
    rows = {r["run"]: r for r in _results(out)}
    assert rows[blocked]["status"] == "failed" and "being trained" in rows[blocked]["error"]
    os.unlink(os.path.join(out, "runs", blocked, "run.json"))  # the other process is gone
    assert main(["sweep", spec, "--serial", "--out", out]) == 0
    assert "1 done before (skipped), 1 to run" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(out, "runs", blocked, "sweep_error.txt"))


def test_without_dask_the_sweep_runs_serially_with_a_note(tmp_path, capsys, monkeypatch):
    from lowdisp import _dask

    monkeypatch.setattr(_dask, "distributed_available", lambda: False)
    spec = _write(tmp_path / "s.toml", "T = 5\nhidden = 4\nbatch_size = 2\nsteps = 2\n")
    assert main(["sweep", spec, "--out", str(tmp_path / "o"), "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("note: dask.distributed is not installed: running the runs serially")
    assert "lowdisp[distributed]" in text.splitlines()[0]
    code = main(["sweep", spec, "--scheduler", "tcp://127.0.0.1:8786"])
    _one_error_line(capsys, code, "--scheduler needs dask.distributed", "lowdisp[distributed]")


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    spec = _write(tmp_path / "s.toml", "steps = 2\n")
    t0 = time.monotonic()
    code = main(["sweep", spec, "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)])
    _one_error_line(capsys, code, "cannot reach a Dask scheduler at tcp://127.0.0.1:1")
    assert time.monotonic() - t0 < 10  # a refused port fails at once
    code = main(["sweep", spec, "--scheduler", "nonsense://x", "--timeout", "1"])
    _one_error_line(capsys, code, "unknown address scheme 'nonsense'")


@pytest.mark.parametrize(
    "name,text,needles",
    [
        (
            "s.toml",
            "hiden = 8\n",
            ["unknown key 'hiden'; valid keys: name, command, metric, seeds, task", "hidden"],
        ),
        ("s.toml", "cell = []\n", ["cell = []: the grid is empty"]),
        ("s.toml", "seeds = 0\n", ["seeds = 0: the grid is empty"]),
        ("s.toml", "cell = [tanh\n", ["is not valid TOML", "line 1"]),
        ("s.json", '{"cell": "tanh",}', ["is not valid JSON"]),
        ("s.json", "[1, 2]", ["must be a table of settings"]),
        ("s.toml", 'cell = "lstn"\n', ["cell = 'lstn' is unknown; valid: tanh, relu"]),
        ("s.toml", "hidden = -1\n", ["hidden = -1: must be an integer >= 1"]),
        ("s.toml", "lr = [0.1, 0.1]\n", ["repeats a value"]),
        ("s.toml", "cosine = 1\n", ["cosine = 1: must be true or false"]),
        ("s.toml", "seed = 1\nseeds = 2\n", ["not both"]),
        ("s.toml", "[model]\nhidden = 8\n", ["unknown key 'model'"]),
        ("s.txt", "steps = 2\n", ["unknown spec format '.txt'"]),
    ],
)
def test_bad_spec_is_one_line_exit_2(tmp_path, capsys, name, text, needles):
    spec = _write(tmp_path / name, text)
    code = main(["sweep", spec, "--serial", "--out", str(tmp_path / "o")])
    _one_error_line(capsys, code, spec, *needles)
    assert not os.path.exists(tmp_path / "o")  # refused before anything was written


def test_conflicting_options_and_a_missing_spec(tmp_path, capsys):
    spec = _write(tmp_path / "s.toml", "steps = 2\n")
    _one_error_line(capsys, main(["sweep", spec, "--serial", "--workers", "2"]), "--serial")
    code = main(["sweep", spec, "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"])
    _one_error_line(capsys, code, "--workers sizes a local cluster")
    code = main(["sweep", str(tmp_path / "nothere.toml")])
    _one_error_line(capsys, code, "no such spec file")


def test_yaml_spec_when_pyyaml_is_there(tmp_path):
    pytest.importorskip("yaml")
    from lowdisp._sweep import load_spec, plan_sweep

    spec = _write(tmp_path / "s.yaml", "cell: [tanh, gru]\nlr: [0.001, 0.01]\nseeds: [3, 5]\n")
    plan = plan_sweep(load_spec(spec))
    assert len(plan.runs) == 8 and plan.axes["seed"] == [3, 5]
    ids = {r.run_id for r in plan.runs}
    assert len(ids) == 8 and "cell-gru_lr-0.01_seed-5" in {i[:-7] for i in ids}
    # a changed fixed setting gives other run folders (never reuses an old run)
    other = plan_sweep({**load_spec(spec), "hidden": 16})
    assert ids.isdisjoint(r.run_id for r in other.runs)


@pytest.mark.parametrize("modname", ["lowdisp._sweep", "lowdisp._dask", "lowdisp._sweep_cli"])
def test_examples_run(modname, tmp_path, monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(modname)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failures, _ = doctest.testmod(mod, optionflags=flags, report=False)
    assert failures == 0


@pytest.mark.parametrize(
    "text,needles",
    [
        ('command = "fit"\n', ["command = 'fit': must be one of train, reproduce"]),
        ('command = "reproduce"\nquick = true\n', ["a reproduce sweep needs paper = ..."]),
        ('command = "reproduce"\npaper = "thomas2019"\n', ["paper = 'thomas2019'", "thomas2018"]),
        ('command = "reproduce"\npaper = "ekfac"\nmetric = "loss"\n', ["unknown key 'metric'"]),
        ('command = "reproduce"\npaper = "ekfac"\nseeds = 0\n', ["seeds = 0: must be"]),
    ],
)
def test_bad_reproduce_spec_is_one_line_exit_2(tmp_path, capsys, text, needles):
    spec = _write(tmp_path / "r.toml", text)
    _one_error_line(capsys, main(["sweep", spec, "--serial"]), *needles)


def test_a_sweep_of_reproductions_gathers_their_tables(tmp_path, capsys):
    pytest.importorskip("sklearn")
    spec = _write(
        tmp_path / "r.toml",
        'command = "reproduce"\npaper = "thomas2018"\nquick = true\nseeds = 1\nepochs = 1\n'
        'families = "low_rank"\n',
    )
    out = str(tmp_path / "out")
    assert main(["sweep", spec, "--serial", "--out", out]) == 0
    [row] = _results(out)
    assert row["status"] == "finished" and row["run"].startswith("reproduce_")
    run = os.path.join(out, "runs", row["run"])
    assert os.path.isfile(os.path.join(run, "table.csv"))  # the reproduction's own folder
    with open(os.path.join(out, "table.csv")) as fh:
        table = list(csv.DictReader(fh))
    with open(os.path.join(run, "table.csv")) as fh:
        own = list(csv.DictReader(fh))
    assert [{k: v for k, v in t.items() if k != "run"} for t in table] == own
    assert {t["run"] for t in table} == {row["run"]} and own[0]["model"] == "low_rank r=4"
    capsys.readouterr()
    assert main(["sweep", spec, "--serial", "--out", out]) == 0  # done: not run again
    assert "every run in" in capsys.readouterr().out
