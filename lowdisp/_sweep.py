"""Sweeps: a grid of ``lowdisp train`` runs, serially or on Dask, resumable (private).

A *sweep spec* (TOML, JSON, or YAML when PyYAML is installed) names the
``lowdisp train`` settings; a list makes an axis of the grid, and the grid is
the cartesian product of the axes with the seeds::

    name = "cells"                  # optional (default: the file's stem)
    metric = "loss"                 # optional: the final-evaluation metric plotted
    task = "copy"
    T = 10
    cell = ["tanh", "scaled_cayley"]
    hidden = 8
    lr = [1e-3, 1e-2]
    steps = 200
    seeds = 2                       # 2 seeds (0 and 1), or a list: seeds = [0, 7]

Every run is an ordinary ``lowdisp train`` run folder (written by the same
code: ``run.json``, ``checkpoint.npz``, ``history``, ``summary.json``...) in
``OUT/runs/<run id>``; the run id names the values of the axes and ends in a
short hash of all the run's settings, so a changed setting never reuses an
old folder. A sweep is resumable: on a rerun, finished (and diverged) runs
are skipped, runs with a checkpoint (interrupted, stopped, or lost with their
worker) continue from it (``lowdisp train --resume``), runs that failed are
tried again; a failed run's error is in its ``sweep_error.txt`` and in the
results. The folder ``OUT`` gets ``sweep.json`` (the spec and the plan),
``results.csv`` (one row per run), ``table.csv``/``table.md`` (mean ± std
over the seeds of every final-evaluation metric, per setting), ``sweep.png``
(the chosen metric per setting) and ``sweep.log`` (the progress lines of
every invocation); each run folder also gets ``train.log`` (the train output).

A spec with ``command = "reproduce"`` sweeps reproductions instead (``paper``,
``quick``, ``seeds``, ``epochs``, ``families``, ``datasets``: the options of
``lowdisp reproduce``, each a value or a list); each run is one reproduction
in its own folder (its seeds are its own ``--seeds`` count, run inside it),
rerun from the start unless it finished; ``table.csv``/``table.md`` gather
the reproductions' tables.

With a Dask client the runs are tasks of the cluster (one run per task;
Dask reschedules the task of a worker that dies, and the rerun resumes from
the run's checkpoint); without one they run one after the other in this
process.

Examples
--------
>>> import json, os, tempfile
>>> from lowdisp._sweep import plan_sweep, run_sweep
>>> spec = {"task": "copy", "T": 5, "cell": ["tanh", "relu"], "hidden": 8,
...         "batch_size": 4, "steps": 3, "seeds": 1}
>>> plan = plan_sweep(spec, name="demo")
>>> [r.run_id[:-7] for r in plan.runs]
['cell-tanh_seed-0', 'cell-relu_seed-0']
>>> out = tempfile.mkdtemp()
>>> res = run_sweep(plan, out, log=lambda s: None)
>>> [r["status"] for r in res.rows], sorted(os.listdir(out))  # doctest: +NORMALIZE_WHITESPACE
(['finished', 'finished'], ['results.csv', 'runs', 'sweep.json', 'sweep.log', 'sweep.png',
 'table.csv', 'table.md'])
>>> res = run_sweep(plan, out, log=lambda s: None)  # a rerun skips finished runs
>>> res.skipped
2
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp.exceptions import UsageError

__all__ = [
    "SWEEP_KEYS",
    "RunPlan",
    "SweepPlan",
    "SweepResult",
    "aggregate",
    "execute_run",
    "load_spec",
    "pending_runs",
    "plan_sweep",
    "run_sweep",
]

#: keys of a spec that are not settings of the command: the sweep's own
SWEEP_KEYS = ("name", "command", "metric", "seeds")
#: statuses of runs that are done: skipped on a rerun
_FINAL = ("finished", "diverged")
#: files the sweep writes in its folder
OUT_FILES = ("sweep.json", "results.csv", "table.csv", "table.md", "sweep.png", "sweep.log")
#: marker of a finished reproduction run (reproductions have no run.json)
_DONE = "sweep_done.json"


@dataclass(frozen=True)
class _Command:
    """What a sweep of one ``lowdisp`` command needs to know about it."""

    module: str  # implements add_arguments(parser) and run(args)
    keys: tuple[str, ...]  # its settings a spec may give (dests of its options)
    defaults: dict[str, Any]  # sweep defaults that differ from the command's
    positional: str | None  # the setting given as its positional argument
    extra: tuple[str, ...]  # arguments added to every run
    log: str  # the run's output file in its folder


def _commands() -> dict[str, _Command]:
    from lowdisp.nn._cli import MODEL_FLAGS, RUN_FLAGS

    return {
        "train": _Command(
            "lowdisp.nn._cli",
            MODEL_FLAGS + RUN_FLAGS,
            {"no_plot": True},
            None,
            ("--no-progress",),
            "train.log",
        ),
        # one reproduction per run, one worker process each (--jobs 1): its models and
        # seeds run inside it; in a sweep, seeds is the reproduction's --seeds (a count)
        "reproduce": _Command(
            "lowdisp.nn._reproduce_cli",
            ("paper", "quick", "seeds", "epochs", "families", "datasets", "no_plot"),
            {},
            "paper",
            ("--jobs", "1"),
            "reproduce.log",
        ),
    }


def _command(name: Any, where: str) -> _Command:
    table = _commands()
    if name not in table:
        raise UsageError(f"{where}: command = {name!r}: must be one of {', '.join(table)}")
    return table[name]


def _valid_keys(cmd: _Command) -> list[str]:
    own = ["name", "command", "metric", "seeds"] if cmd.positional is None else ["name", "command"]
    return list(dict.fromkeys([*own, *cmd.keys]))


# ---------------------------------------------------------------------------
# reading a spec
# ---------------------------------------------------------------------------


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec in a ``.toml``, ``.json`` or ``.yaml``/``.yml`` file, as a dict.

    Raises
    ------
    UsageError
        A missing file, an unknown extension, a file that does not parse (the
        parser's message, with the line), a top level that is not a table,
        YAML without PyYAML installed.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from lowdisp._sweep import load_spec
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = p.write_text('cell = ["tanh", "relu"]\\nsteps = 5\\n')
    >>> load_spec(p)
    {'cell': ['tanh', 'relu'], 'steps': 5}
    """
    where = "sweep"
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".toml", ".json", ".yaml", ".yml"):
        raise UsageError(
            f"{where}: {path}: unknown spec format {ext or '(no extension)'!r}; "
            f"write the spec as .toml, .json or .yaml"
        )
    if not os.path.isfile(path):
        raise UsageError(f"{where}: no such spec file: {path}")
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        if ext == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        elif ext == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            try:
                import yaml
            except ImportError:
                raise UsageError(
                    f"{where}: {path}: reading YAML needs PyYAML (pip install pyyaml); "
                    f"or write the spec as .toml or .json"
                ) from None
            data = yaml.safe_load(raw.decode("utf-8"))
    except UsageError:
        raise
    except Exception as exc:  # the parsers' own errors (TOMLDecodeError, JSONDecodeError, ...)
        kind = {".toml": "TOML", ".json": "JSON"}.get(ext, "YAML")
        raise UsageError(f"{where}: {path} is not valid {kind}: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(
            f"{where}: {path}: the spec must be a table of settings (key = value); "
            f"got a {type(data).__name__}"
        )
    return data


# ---------------------------------------------------------------------------
# the plan: the grid of runs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """One run of a sweep: its id (its folder name), settings, and the arguments of
    its command (``lowdisp train`` or ``lowdisp reproduce``)."""

    run_id: str
    params: dict[str, Any]
    argv: tuple[str, ...]
    command: str = "train"


@dataclass(frozen=True)
class SweepPlan:
    """The grid of a sweep: its axes (settings with several values) and its runs."""

    name: str
    metric: str | None
    axes: dict[str, list[Any]]
    fixed: dict[str, Any]
    runs: tuple[RunPlan, ...]
    spec: dict[str, Any] = field(default_factory=dict)
    command: str = "train"


def _parser(cmd: _Command) -> Any:
    """The command's own argument parser (its errors raise, see lowdisp.cli)."""
    import importlib

    from lowdisp.cli import _Parser

    parser = _Parser(prog="lowdisp " + cmd.module.rsplit("_", 1)[-1])
    importlib.import_module(cmd.module).add_arguments(parser)
    return parser


def _bool_keys(parser: Any) -> set[str]:
    return {a.dest for a in parser._actions if a.option_strings and a.nargs == 0}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _argv(params: dict[str, Any], cmd: _Command, bools: set[str]) -> list[str]:
    out: list[str] = [] if cmd.positional is None else [_text(params[cmd.positional])]
    for key in cmd.keys:
        if key == cmd.positional or key not in params or params[key] is None:
            continue
        value = params[key]
        if key in bools:
            if value:
                out.append(_flag(key))
        else:
            out += [_flag(key), _text(value)]
    return out


def _id_part(value: Any) -> str:
    text = format(value, "g") if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def _check_value(
    key: str, value: Any, parser: Any, cmd: _Command, bools: set[str], where: str
) -> None:
    """A scalar setting, checked as the command checks its argument."""
    from lowdisp.cli import _ArgumentError

    if key in bools:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {key} = {value!r}: must be true or false")
        return
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise UsageError(
            f"{where}: {key} = {value!r}: must be a number or a string (or a list of them)"
        )
    if key == cmd.positional:
        argv = [_text(value)]
    else:
        pos = [] if cmd.positional is None else [_positional_choices(parser, cmd)[0]]
        argv = [*pos, _flag(key), _text(value)]
    try:
        parser.parse_args(argv)
    except _ArgumentError as exc:
        msg = str(exc).split(": ", 2)[-1]
        raise UsageError(f"{where}: {key} = {value!r}: {msg}") from None
    names = _registries().get(key)
    if names is not None and value not in names:
        raise UsageError(f"{where}: {key} = {value!r} is unknown; valid: {', '.join(names)}")


def _positional_choices(parser: Any, cmd: _Command) -> list[str]:
    action = next(a for a in parser._actions if a.dest == cmd.positional)
    return list(action.choices)


def _registries() -> dict[str, Sequence[str]]:
    from lowdisp.nn._rnn import CELLS
    from lowdisp.nn._tasks import TASKS
    from lowdisp.nn._trainer import OPTIMIZERS

    return {"task": list(TASKS), "cell": list(CELLS), "optimizer": list(OPTIMIZERS)}


def _seeds(spec: dict[str, Any], where: str) -> list[int]:
    if "seeds" in spec and "seed" in spec:
        raise UsageError(f"{where}: give seeds (a count or a list) or seed, not both")
    if "seeds" in spec:
        s = spec["seeds"]
        if isinstance(s, int) and not isinstance(s, bool):
            if s < 1:
                raise UsageError(f"{where}: seeds = {s}: the grid is empty; give seeds >= 1")
            return list(range(s))
        values = s
    else:
        values = spec.get("seed", 0)
    values = values if isinstance(values, list) else [values]
    if not values:
        raise UsageError(f"{where}: seeds = []: the grid is empty; give at least one seed")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise UsageError(f"{where}: seeds must be integers >= 0; got {v!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"{where}: seeds {values} repeat a seed")
    return list(values)


def plan_sweep(spec: dict[str, Any], *, name: str = "sweep", where: str = "sweep") -> SweepPlan:
    """The grid of runs of ``spec`` (see the module docstring), every value checked.

    Parameters
    ----------
    spec : dict
        ``lowdisp train`` settings by name (``batch_size`` or ``batch-size``),
        each a value or a list of values (an axis of the grid), plus ``seeds``
        (a count n: seeds 0..n-1, or a list; ``seed`` for one seed),
        ``name`` and ``metric``.
    name : str
        The sweep's name when the spec has none.
    where : str
        Prefix of the error messages (e.g. ``"sweep: spec.toml"``).

    Returns
    -------
    SweepPlan

    Raises
    ------
    UsageError
        An unknown key (the message lists the valid ones), a bad value (as
        ``lowdisp train`` would refuse it), an empty list (an empty grid).

    Examples
    --------
    >>> from lowdisp._sweep import plan_sweep
    >>> plan = plan_sweep({"cell": ["tanh", "gru"], "lr": [1e-3, 1e-2], "seeds": 2})
    >>> len(plan.runs), list(plan.axes)
    (8, ['cell', 'lr', 'seed'])
    >>> plan_sweep({"hiden": 8})
    Traceback (most recent call last):
    ...
    lowdisp.exceptions.UsageError: sweep: unknown key 'hiden'; valid keys: name, command, ...
    """
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: the spec must be a dict of settings; got {type(spec).__name__}")
    command = spec.get("command", "train")
    cmd = _command(command, where)
    valid = _valid_keys(cmd)
    norm: dict[str, Any] = {}
    for key, value in spec.items():
        k = str(key).replace("-", "_")
        if k not in valid:
            raise UsageError(f"{where}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        if k in norm:
            raise UsageError(f"{where}: the key {key!r} is given twice")
        norm[k] = value
    norm.pop("command", None)
    sweep_name = norm.pop("name", name)
    if not isinstance(sweep_name, str) or not re.fullmatch(r"[A-Za-z0-9._+-]+", sweep_name):
        raise UsageError(
            f"{where}: name = {sweep_name!r}: must be letters, digits and . _ + - (a folder name)"
        )
    metric = norm.pop("metric", None)
    if metric is not None and not isinstance(metric, str):
        raise UsageError(f"{where}: metric = {metric!r}: must be a metric name such as 'loss'")
    parser = _parser(cmd)
    bools = _bool_keys(parser)
    if cmd.positional is None:
        seeds = _seeds(norm, where)
        norm.pop("seeds", None)
        norm.pop("seed", None)
    elif cmd.positional not in norm:
        choices = ", ".join(_positional_choices(parser, cmd))
        raise UsageError(
            f"{where}: a {command} sweep needs {cmd.positional} = ... (one of {choices}, "
            f"or a list of them)"
        )
    axes: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = dict(cmd.defaults)
    for key, value in norm.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise UsageError(f"{where}: {key} = []: the grid is empty; give at least one value")
        for v in values:
            _check_value(key, v, parser, cmd, bools, where)
        if len(values) != len(set(map(repr, values))):
            raise UsageError(f"{where}: {key} = {values!r} repeats a value")
        if len(values) > 1:
            axes[key] = list(values)
        else:
            fixed[key] = values[0]
    if cmd.positional is None:
        axes["seed"] = seeds
    runs = []
    keys = list(axes)
    for combo in itertools.product(*(axes[k] for k in keys)):
        params = {**fixed, **dict(zip(keys, combo))}
        argv = _argv(params, cmd, bools)
        digest = hashlib.sha1(json.dumps([command, *argv]).encode()).hexdigest()[:6]
        readable = "_".join(f"{k}-{_id_part(v)}" for k, v in zip(keys, combo)) or command
        runs.append(RunPlan(f"{readable}_{digest}", params, tuple(argv), command))
    return SweepPlan(
        name=sweep_name,
        metric=metric,
        axes=axes,
        fixed=fixed,
        runs=tuple(runs),
        spec=dict(spec),
        command=command,
    )


# ---------------------------------------------------------------------------
# one run (in a worker process, or in this process)
# ---------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _run_state(run_dir: str, command: str = "train") -> str:
    """``fresh``, ``finished``, ``diverged``, ``resume`` (a checkpoint to continue from)
    or ``restart`` (files of a run that never wrote a checkpoint: start afresh).
    A reproduction is ``finished`` (its marker file) or restarted."""
    from lowdisp.nn._cli import _holds_run

    if not os.path.isdir(run_dir):
        return "fresh"
    if command != "train":
        done = _read_json(os.path.join(run_dir, _DONE))
        if isinstance(done, dict) and done.get("status") == "finished":
            return "finished"
        return "restart" if os.listdir(run_dir) else "fresh"
    saved = _read_json(os.path.join(run_dir, "run.json")) or {}
    status = saved.get("status") if isinstance(saved, dict) else None
    if status == "finished" and os.path.isfile(os.path.join(run_dir, "summary.json")):
        return "finished"
    if status == "diverged":
        return "diverged"
    if os.path.isfile(os.path.join(run_dir, "checkpoint.npz")):
        return "resume"
    return "restart" if _holds_run(run_dir) else "fresh"


def _row(
    run_dir: str, status: str | None = None, error: str = "", command: str = "train"
) -> dict[str, Any]:
    """The results row of a run folder: status, step, wall time, final evaluation
    (a reproduction: the rows of its table.csv)."""
    state = status or _run_state(run_dir, command)
    if command != "train":
        done = _read_json(os.path.join(run_dir, _DONE)) or {}
        table = []
        if state == "finished" and os.path.isfile(os.path.join(run_dir, "table.csv")):
            import csv

            with open(os.path.join(run_dir, "table.csv"), newline="") as fh:
                table = list(csv.DictReader(fh))
        wall = done.get("wall_time_s", float("nan")) if state == "finished" else float("nan")
        return {
            "status": state,
            "step": 0,
            "wall_time_s": wall,
            "metrics": {},
            "error": error,
            "table": table,
        }
    saved = _read_json(os.path.join(run_dir, "run.json")) or {}
    summary = _read_json(os.path.join(run_dir, "summary.json")) or {}
    final = summary.get("final_eval") if state == "finished" else None
    return {
        "status": state,
        "step": saved.get("step", 0) if isinstance(saved, dict) else 0,
        "wall_time_s": summary.get("wall_time_s", float("nan"))
        if state == "finished"
        else float("nan"),
        "metrics": dict(final or {}),
        "error": error,
    }


def _error_text(exc: BaseException) -> str:
    from lowdisp.cli import _one_line

    return f"{type(exc).__name__}: {_one_line(exc)}"


def execute_run(run_dir: str, argv: Sequence[str], command: str = "train") -> dict[str, Any]:
    """Run (or continue) one run of ``command`` in ``run_dir``; returns its row.

    ``lowdisp train``: a finished or diverged run is read, not rerun; a run
    with a checkpoint is resumed; the files of a run without one are
    replaced. ``lowdisp reproduce``: a finished reproduction is read, any
    other is run again from the start. The command's output goes to
    ``run_dir/train.log`` (``reproduce.log``). An error is caught and
    returned in the row (status ``failed``, the one-line error), its
    traceback written to ``run_dir/sweep_error.txt``. Module-level, so Dask
    workers import it.
    """
    import importlib

    from lowdisp.nn._cli import _write_json
    from lowdisp.nn._trainer import TrainingDivergedError

    cmd = _commands()[command]
    state = _run_state(run_dir, command)
    if state in _FINAL:
        return _row(run_dir, state, command=command)
    os.makedirs(run_dir, exist_ok=True)
    err_file = os.path.join(run_dir, "sweep_error.txt")
    extra = {"resume": ["--resume"], "restart": ["--force"]}.get(state, [])
    t0 = time.perf_counter()
    try:
        args = _parser(cmd).parse_args([*argv, *cmd.extra, "--out", run_dir, *extra])
        with (
            open(os.path.join(run_dir, cmd.log), "a") as log,
            contextlib.redirect_stdout(log),
        ):
            code = importlib.import_module(cmd.module).run(args)
    except TrainingDivergedError:
        return _row(run_dir, "diverged", command=command)
    except Exception as exc:
        with open(err_file, "w") as fh:
            fh.write(traceback.format_exc())
        return _row(run_dir, "failed", _error_text(exc), command=command)
    if os.path.exists(err_file):
        os.unlink(err_file)
    if code == 130:
        return _row(run_dir, "interrupted", command=command)
    if command != "train":
        done = {"status": "finished", "wall_time_s": time.perf_counter() - t0}
        _write_json(os.path.join(run_dir, _DONE), done)
    return _row(run_dir, command=command)


# ---------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did: one row per run (grid order), the aggregated table,
    the files written, how many runs were skipped (done before) and how many failed."""

    out: str
    rows: list[dict[str, Any]]
    table: list[dict[str, Any]]
    files: list[str]
    skipped: int
    failed: int
    seconds: float


def _task_key(run: RunPlan) -> str:
    return f"lowdisp-sweep-{run.run_id}-{os.urandom(4).hex()}"


def pending_runs(plan: SweepPlan, out: str | os.PathLike[str]) -> list[RunPlan]:
    """The runs of ``plan`` not done yet in the sweep folder ``out`` (not finished
    and not diverged), in grid order.

    Examples
    --------
    >>> import tempfile
    >>> from lowdisp._sweep import pending_runs, plan_sweep
    >>> len(pending_runs(plan_sweep({"seeds": 3}), tempfile.mkdtemp()))
    3
    """
    runs_dir = os.path.join(os.fspath(out), "runs")
    return [
        r
        for r in plan.runs
        if _run_state(os.path.join(runs_dir, r.run_id), r.command) not in _FINAL
    ]


def run_sweep(
    plan: SweepPlan,
    out: str | os.PathLike[str],
    *,
    client: Any = None,
    plot: bool = True,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Run every run of ``plan`` not done yet, in ``out/runs/``, then write the results.

    Parameters
    ----------
    plan : SweepPlan
        From :func:`plan_sweep`.
    out : path
        The sweep folder (created if missing; a previous sweep there is
        continued: its finished runs are skipped).
    client : distributed.Client, optional
        Run the runs as tasks of this Dask client; if not given, one after
        the other in this process.
    plot : bool
        Write ``sweep.png`` (needs matplotlib).
    log : callable
        Receives one line per finished run and a summary.

    Returns
    -------
    SweepResult

    Raises
    ------
    KeyboardInterrupt
        A serial run was interrupted (Ctrl-C): its checkpoint is written, the
        results of the finished runs too; rerun the sweep to continue.
    """
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"sweep: --out {out} is a file, not a folder")
    runs_dir = os.path.join(out, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    from lowdisp.nn._cli import _write_json

    _write_json(os.path.join(out, "sweep.json"), _plan_json(plan, out))
    t0 = time.perf_counter()

    def say(line: str) -> None:  # to the caller and to sweep.log (appended on reruns)
        log(line)
        with open(os.path.join(out, "sweep.log"), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    todo = pending_runs(plan, out)
    rows = {
        r.run_id: _row(os.path.join(runs_dir, r.run_id), command=r.command)
        for r in plan.runs
        if r not in todo
    }
    skipped = len(plan.runs) - len(todo)
    total = len(plan.runs)
    where = "in this process" if client is None else _describe(client)
    say(
        f"sweep {plan.name}: {total} runs ({_axes_text(plan)}); {skipped} done before "
        f"(skipped), {len(todo)} to run {where}; writing to {out}"
    )
    width = len(str(total))
    done = skipped

    def report(run: RunPlan, row: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        rows[run.run_id] = row
        text = ", ".join(f"{k} {v:.4g}" for k, v in row["metrics"].items())
        extra = f": {row['error']}" if row["error"] else ""
        say(
            f"[{done:>{width}}/{total}] {run.run_id}: {row['status']}{extra}"
            + (f" ({text})" if text else "")
            + f" [{time.perf_counter() - t0:.0f} s]"
        )

    interrupted = False
    if client is None:
        for run in todo:
            row = execute_run(os.path.join(runs_dir, run.run_id), run.argv, run.command)
            report(run, row)
            if row["status"] == "interrupted":
                interrupted = True
                break
    else:
        dd = __import__("dask.distributed", fromlist=["as_completed"])
        futures = {
            client.submit(
                execute_run,
                os.path.abspath(os.path.join(runs_dir, run.run_id)),
                run.argv,
                run.command,
                key=_task_key(run),
                pure=False,
            ): run
            for run in todo
        }
        for fut in dd.as_completed(futures, loop=client.loop):
            run = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # the task itself failed: its worker died too often
                path = os.path.join(runs_dir, run.run_id)
                row = _row(path, "lost", _error_text(exc), command=run.command)
            report(run, row)
    results = [_result_row(plan, run, rows[run.run_id]) for run in plan.runs if run.run_id in rows]
    table = aggregate(plan, results)
    files = _write_outputs(plan, out, results, table, plot=plot)
    failed = sum(r["status"] not in _FINAL for r in results)
    seconds = time.perf_counter() - t0
    if interrupted:
        say(f"interrupted; the finished runs are in {out}; rerun the sweep to continue")
        raise KeyboardInterrupt
    say(
        f"sweep {plan.name}: {total - failed} of {total} runs done "
        f"({failed} failed or not finished) in {seconds:.1f} s; wrote {', '.join(files)}"
    )
    return SweepResult(out, results, table, files, skipped, failed, seconds)


def _describe(client: Any) -> str:
    try:
        n = len(client.scheduler_info()["workers"])
    except Exception:  # pragma: no cover - a scheduler that does not answer
        return f"on Dask ({client.scheduler.address})"
    return f"on Dask ({client.scheduler.address}, {n} workers)"


def _axes_text(plan: SweepPlan) -> str:
    return " x ".join(f"{len(v)} {k}" for k, v in plan.axes.items())


def _plan_json(plan: SweepPlan, out: str) -> dict[str, Any]:
    return {
        "format": "lowdisp-sweep",
        "version": 1,
        "name": plan.name,
        "spec": plan.spec,
        "axes": plan.axes,
        "fixed": plan.fixed,
        "runs": {r.run_id: f"lowdisp {r.command} " + " ".join(r.argv) for r in plan.runs},
        "rerun": f"lowdisp sweep SPEC --out {out}",
    }


def _result_row(plan: SweepPlan, run: RunPlan, row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "run": run.run_id,
        **{k: run.params[k] for k in plan.axes},
        "status": row["status"],
        "step": row["step"],
        "wall_time_s": row["wall_time_s"],
        **row["metrics"],
        "error": row["error"],
    }
    if plan.command != "train":
        del out["step"]
        out["table"] = row.get("table", [])
    return out


def _metric_names(results: Sequence[dict[str, Any]], plan: SweepPlan) -> list[str]:
    fixed = {"run", "status", "step", "wall_time_s", "error", *plan.axes}
    names: list[str] = []
    for r in results:
        names += [k for k in r if k not in fixed and k not in names]
    return names


def aggregate(plan: SweepPlan, results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting (the axes but the seed): every metric's mean and sample
    std (ddof = 1) over the seeds whose run finished, how many finished,
    diverged and failed, the mean wall time."""
    if plan.command != "train":  # the reproductions' own tables, one after the other
        return [
            {"run": r["run"], **{k: r[k] for k in plan.axes}, **t}
            for r in results
            for t in r.get("table", [])
        ]
    keys = [k for k in plan.axes if k != "seed"]
    metrics = _metric_names(results, plan)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(tuple(repr(r[k]) for k in keys), []).append(r)
    table = []
    for members in groups.values():
        ok = [r for r in members if r["status"] == "finished"]
        row: dict[str, Any] = {k: members[0][k] for k in keys}
        row["seeds"] = len(ok)
        row["diverged"] = sum(r["status"] == "diverged" for r in members)
        row["failed"] = len(members) - len(ok) - row["diverged"]
        for m in metrics:
            vals = np.array([r.get(m, np.nan) for r in ok], dtype=float)
            vals = vals[np.isfinite(vals)]
            row[f"{m}_mean"] = float(vals.mean()) if vals.size else float("nan")
            row[f"{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else float("nan")
        walls = [r["wall_time_s"] for r in ok]
        row["wall_time_s"] = float(np.mean(walls)) if walls else float("nan")
        table.append(row)
    return table


def _markdown(plan: SweepPlan, table: Sequence[dict[str, Any]], metrics: list[str]) -> str:
    from lowdisp.nn._reproduce import mean_pm_std

    keys = [k for k in plan.axes if k != "seed"]
    seeds = len(plan.axes["seed"])
    head = [*keys, *metrics, "seeds", "s/run"]
    lines = [
        f"### {plan.name}: mean ± std over {seeds} seed(s)\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(keys) + "---:|" * (len(head) - len(keys)),
    ]
    for r in table:
        seeds_text = str(r["seeds"]) + "".join(
            f" ({r[k]} {k})" for k in ("diverged", "failed") if r[k]
        )
        cells = [_id_part(r[k]) for k in keys]
        cells += [mean_pm_std(r[f"{m}_mean"], r[f"{m}_std"], ".4g") for m in metrics]
        wall = r["wall_time_s"]
        cells += [seeds_text, f"{wall:.1f}" if math.isfinite(wall) else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    fixed = ", ".join(f"{k} = {v}" for k, v in plan.fixed.items())
    return "\n".join(lines) + f"\n\nFixed: {fixed}.\n"


def _write_outputs(
    plan: SweepPlan,
    out: str,
    results: list[dict[str, Any]],
    table: list[dict[str, Any]],
    *,
    plot: bool,
) -> list[str]:
    from lowdisp.nn._reproduce import csv_text, write_text

    written: list[str] = []
    if plan.command != "train":
        cols = ["run", *plan.axes, "status", "wall_time_s", "error"]
        write_text(out, "results.csv", csv_text(results, cols), written)
        tcols = list(dict.fromkeys(k for t in table for k in t))
        write_text(out, "table.csv", csv_text(table, tcols), written)
        parts = [f"# sweep {plan.name}: lowdisp {plan.command}\n"]
        for r in results:
            md = os.path.join(out, "runs", r["run"], "table.md")
            if r["status"] == "finished" and os.path.isfile(md):
                with open(md, encoding="utf-8") as fh:
                    parts.append(f"## {r['run']}\n\n{fh.read()}")
            else:
                parts.append(f"## {r['run']}\n\n{r['status']} {r['error']}\n")
        write_text(out, "table.md", "\n".join(parts), written)
        return written  # each reproduction drew its own figures in its folder
    metrics = _metric_names(results, plan)
    cols = ["run", *plan.axes, "status", "step", "wall_time_s", *metrics, "error"]
    write_text(out, "results.csv", csv_text(results, cols), written)
    keys = [k for k in plan.axes if k != "seed"]
    tcols = [*keys, "seeds", "diverged", "failed"]
    tcols += [f"{m}_{s}" for m in metrics for s in ("mean", "std")] + ["wall_time_s"]
    write_text(out, "table.csv", csv_text(table, tcols), written)
    write_text(out, "table.md", _markdown(plan, table, metrics), written)
    if plot and metrics:
        path = os.path.join(out, "sweep.png")
        metric = plan.metric if plan.metric in metrics else metrics[0]
        plot_sweep(plan, results, metric, path)
        written.append(path)
    return written


def plot_sweep(
    plan: SweepPlan, results: Sequence[dict[str, Any]], metric: str, path: str | None = None
) -> Any:
    """``metric`` of every finished run (dots) and its mean ± std over the seeds
    (error bars), one column per setting; a log axis when the values span more
    than a decade. Returns the figure (closed when written to ``path``)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    keys = [k for k in plan.axes if k != "seed"]
    labels: list[str] = []
    values: list[list[float]] = []
    for r in results:
        label = "\n".join(f"{k}={_id_part(r[k])}" for k in keys) or plan.name
        if label not in labels:
            labels.append(label)
            values.append([])
        v = r.get(metric, float("nan")) if r["status"] == "finished" else float("nan")
        if isinstance(v, int | float) and math.isfinite(v):
            values[labels.index(label)].append(float(v))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels) + 1.5), 3.8))
    x = np.arange(len(labels))
    for i, vals in enumerate(values):
        if vals:
            ax.plot(np.full(len(vals), x[i]), vals, "o", color="0.6", ms=4, zorder=2)
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            ax.errorbar(x[i], np.mean(vals), yerr=std, fmt="s", color="C0", capsize=4, zorder=3)
    flat = [v for vals in values for v in vals]
    if flat and min(flat) > 0 and max(flat) / min(flat) > 10:
        ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylabel(f"final {metric}")
    ax.set_title(f"sweep {plan.name}: {metric} (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
