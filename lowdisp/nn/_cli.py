"""``lowdisp train``: train a recurrent network on a task and write a run folder.

The run folder (``--out``, default ``runs/<task>-<cell>``) gets:

- ``run.json``: the flags of the run and its run-level settings (target
  ``--steps``, evaluation, checkpoint and snapshot cadence), written first;
- ``checkpoint.npz``: the whole trainer state with its specification, every
  ``--checkpoint-every`` steps, at the end and on an interrupt;
- ``history.csv``, ``history.json``: per-step loss and gradient norm, evaluations;
- ``summary.json``: final evaluation, wall time, settings, whether interrupted;
- ``weights.npz``: every trained weight matrix by name (``rnn.cell.W``
  materialised from its parameterisation, ``rnn.cell.U``, ``readout.W``);
- ``recurrent_matrix.npy``: the trained recurrent matrix alone;
- ``loss.png``: the loss curve (unless ``--no-plot``);
- ``snapshots/step_000000.npz``, ...: the weight matrices every
  ``--snapshot-every`` steps (with that flag), for ``lowdisp analyze``.

A folder that already holds a run is refused unless ``--resume`` (continue it)
or ``--force`` (delete the old run's files, then start afresh).
``lowdisp train --resume RUN_DIR`` needs nothing else: the model, optimizer,
task and random state come from the checkpoint, the settings from
``run.json``; flags given with ``--resume`` may change the run-level settings
(``--steps`` sets a new target) but must not contradict the saved model,
optimizer or task. Ctrl-C (SIGINT) or SIGTERM finish the current step, write
every file and exit with status 130, printing how to resume.

Examples
--------
>>> from lowdisp.cli import main
>>> main(["train", "--task", "copy", "--T", "5", "--cell", "tanh", "--hidden", "8",
...       "--steps", "3", "--out", "run", "--no-progress", "--no-plot"])  # doctest: +ELLIPSIS
copy(length=25, ...
0
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import shutil
import time
from typing import Any

import numpy as np

from lowdisp._cliargs import int_at_least, number_in
from lowdisp.exceptions import UsageError

__all__ = ["add_arguments", "run"]

RUN_FORMAT = "lowdisp-run"
RUN_VERSION = 1

#: files (and the snapshot folder) that make a folder a run folder; ``--force`` removes them
RUN_FILES = (
    "run.json",
    "checkpoint.npz",
    "history.csv",
    "history.json",
    "summary.json",
    "weights.npz",
    "recurrent_matrix.npy",
    "loss.png",
)
SNAPSHOT_DIR = "snapshots"

#: flags that define the model, optimizer, task and random stream: fixed for a run
MODEL_FLAGS = (
    "task",
    "T",
    "variant",
    "cell",
    "hidden",
    "init",
    "batch_size",
    "optimizer",
    "lr",
    "lr_orth",
    "clip",
    "cosine",
    "dtype",
    "seed",
)
#: run-level settings: saved in run.json, may be changed when resuming
RUN_FLAGS = ("steps", "eval_every", "checkpoint_every", "snapshot_every", "no_plot")


# -- argument types: argparse turns their ArgumentTypeError into a one-line error ----------


class _Explicit(argparse.Action):
    """Store the value and remember that the flag was given (for ``--resume`` checks)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        setattr(namespace, self.dest, values)
        given = set(getattr(namespace, "_explicit", ()))
        given.add(self.dest)
        namespace._explicit = given


class _ExplicitTrue(argparse.Action):
    def __init__(self, option_strings: Any, dest: str, default: Any = False, **kw: Any):
        super().__init__(option_strings, dest, nargs=0, default=default, **kw)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        setattr(namespace, self.dest, True)
        given = set(getattr(namespace, "_explicit", ()))
        given.add(self.dest)
        namespace._explicit = given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lowdisp train`` (``--help`` shows every default)."""
    from lowdisp.nn._rnn import CELLS
    from lowdisp.nn._tasks import TASKS
    from lowdisp.nn._trainer import OPTIMIZERS

    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    add = parser.add_argument
    pos = int_at_least(1)
    add("--task", default="copy", action=_Explicit, help=f"one of {', '.join(TASKS)}")
    add("--T", type=pos, default=100, action=_Explicit, help="delay (copy) or length (adding)")
    add("--variant", default="arjovsky", action=_Explicit, help="copy task: arjovsky or lezcano")
    add("--cell", default="scaled_cayley", action=_Explicit, help=f"one of {', '.join(CELLS)}")
    add("--hidden", type=pos, default=128, action=_Explicit, help="hidden units")
    add(
        "--init",
        default="auto",
        action=_Explicit,
        help="recurrent init: henaff, cayley, haar, torus, identity, default (the map's own), "
        "or auto (henaff for orthogonal cells on the copy task, else default)",
    )
    add("--steps", type=pos, default=2000, action=_Explicit, help="target number of steps")
    add("--batch-size", type=pos, default=64, action=_Explicit, help="sequences per step")
    add("--optimizer", default="rmsprop", action=_Explicit, help=f"one of {', '.join(OPTIMIZERS)}")
    add("--lr", type=number_in(0, None), default=1e-3, action=_Explicit, help="learning rate")
    add(
        "--lr-orth",
        type=number_in(0, None),
        default=None,
        action=_Explicit,
        help="learning rate of the orthogonal map; if not given, lr/10 for orthogonal cells",
    )
    add(
        "--clip",
        type=number_in(0, None),
        default=None,
        action=_Explicit,
        help="clip the global gradient norm to this value; if not given, no clipping",
    )
    add(
        "--cosine",
        action=_ExplicitTrue,
        help="cosine learning-rate decay over --steps (to 5%% of --lr)",
    )
    add(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        action=_Explicit,
        help="precision of the parameters",
    )
    add(
        "--seed",
        type=int_at_least(0),
        default=0,
        action=_Explicit,
        help="seed of the model and the run (>= 0)",
    )
    add(
        "--eval-every",
        type=pos,
        default=250,
        action=_Explicit,
        help="evaluate every N steps (>= 1; for no periodic evaluation give N > --steps)",
    )
    add(
        "--checkpoint-every",
        type=pos,
        default=500,
        action=_Explicit,
        help="write checkpoint.npz every N steps (>= 1; it is also written at the end)",
    )
    add(
        "--snapshot-every",
        type=pos,
        default=None,
        action=_Explicit,
        help="keep the weight matrices every N steps in snapshots/; if not given, none",
    )
    add(
        "--time-limit",
        type=number_in(0, None),
        default=None,
        action=_Explicit,
        help="stop after so many seconds (resumable); if not given, no limit",
    )
    add("--out", default=None, help="run folder; if not given, runs/<task>-<cell>")
    add(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR (or in --out) from its checkpoint",
    )
    add(
        "--force",
        action="store_true",
        help="delete the run already in the folder (its files, snapshots/ and analysis/) "
        "and start afresh",
    )
    add("--no-progress", action="store_true", help="no progress bar")
    add("--no-plot", action=_ExplicitTrue, help="do not write loss.png")


#: cells whose recurrent matrix comes from an orthogonal map that accepts any start
_REINIT_CELLS = ("scaled_cayley", "householder", "svd", "full_unitary", "expm")


def _init_for(settings: dict) -> str | None:
    init = settings["init"]
    if init == "default":
        return None
    if init == "auto":
        cell = settings["cell"]
        return "henaff" if settings["task"] == "copy" and cell in _REINIT_CELLS else None
    return init


def _holds_run(folder: str) -> list[str]:
    found = [f for f in RUN_FILES if os.path.exists(os.path.join(folder, f))]
    if os.path.isdir(os.path.join(folder, SNAPSHOT_DIR)):
        found.append(SNAPSHOT_DIR + "/")
    return found


def _build(settings: dict, ckpt: str) -> Any:
    """A fresh trainer from the model flags (user errors become UsageError)."""
    from lowdisp.nn._optim import cosine_schedule
    from lowdisp.nn._tasks import make_task
    from lowdisp.nn._trainer import make_trainer

    kw = {"variant": settings["variant"]} if settings["task"] == "copy" else {}
    T = settings["T"] if settings["task"] in ("copy", "adding") else None
    init = _init_for(settings)
    try:
        task = make_task(settings["task"], T, **kw)
        return make_trainer(
            task,
            settings["cell"],
            hidden=settings["hidden"],
            batch_size=settings["batch_size"],
            optimizer=settings["optimizer"],
            lr=settings["lr"],
            lr_orth=settings["lr_orth"],
            clip_norm=settings["clip"],
            schedule=cosine_schedule(settings["steps"], floor=0.05) if settings["cosine"] else None,
            dtype=np.dtype(settings["dtype"]),
            rng=settings["seed"],
            eval_every=settings["eval_every"],
            checkpoint=ckpt,
            checkpoint_every=settings["checkpoint_every"],
            cell_options={"recurrent_init": init} if init else None,
        )
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(f"train: {exc}") from exc


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=str)
    os.replace(tmp, path)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _resolve_dirs(args: argparse.Namespace) -> str:
    default = os.path.join("runs", f"{args.task}-{args.cell}")
    if args.resume:  # --resume RUN_DIR
        if args.out is not None and os.path.abspath(args.out) != os.path.abspath(args.resume):
            raise UsageError(
                f"train: --resume {args.resume} and --out {args.out} name different folders; "
                f"give one of them"
            )
        return args.resume
    return args.out if args.out is not None else default


def run(args: argparse.Namespace) -> int:
    """Train (or resume), then write the run folder; returns the exit status."""
    explicit = set(getattr(args, "_explicit", ()))
    out = _resolve_dirs(args)
    ckpt = os.path.join(out, "checkpoint.npz")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"train: --out {out} is a file, not a folder")
    resume = args.resume is not None
    if resume and args.force:
        raise UsageError("train: --resume continues a run and --force deletes it; give one")
    settings = {k: getattr(args, k) for k in MODEL_FLAGS + RUN_FLAGS}
    settings["time_limit"] = args.time_limit
    if resume or args.force:
        _refuse_live_run(out)
    if resume:
        trainer, settings = _resume(out, ckpt, args, explicit, settings)
        print(f"resumed from {ckpt} at step {trainer.step_count} (target {settings['steps']})")
    else:
        held = _holds_run(out) if os.path.isdir(out) else []
        if held and not args.force:
            raise UsageError(
                f"train: {out} already holds a run ({', '.join(held)}); continue it with "
                f"--resume {out}, overwrite it with --force, or choose another --out"
            )
        trainer = _build(settings, ckpt)
        if held:  # --force: remove the old run's files (and what was derived from it) only
            stale = list(held)
            if os.path.isdir(os.path.join(out, "analysis")):
                stale.append("analysis/")
            stale += [
                os.path.basename(f)
                for f in glob.glob(os.path.join(glob.escape(out), "pseudospectra_*"))
                if f.endswith((".png", ".txt"))
            ]
            for name in stale:
                p = os.path.join(out, name.rstrip("/"))
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        os.makedirs(out, exist_ok=True)
    snaps = None
    if settings["snapshot_every"]:
        from lowdisp.nn._runs import Snapshots

        snaps = Snapshots(os.path.join(out, SNAPSHOT_DIR), settings["snapshot_every"])
        trainer.callbacks.append(snaps)
    remaining = settings["steps"] - trainer.step_count
    if remaining <= 0 and resume and not _outputs_complete(out):
        # the process died between its final checkpoint and the end of its outputs
        # (run.json's final status is written last): write them now from the
        # checkpoint (the training wall time is lost: NaN)
        files = _write_outputs(trainer, out, settings, float("nan"), False, snaps)
        print(
            f"{out} was at its target step {trainer.step_count} without its outputs "
            f"(the run stopped after its last checkpoint); wrote {len(files)} files"
        )
        return 0
    if remaining <= 0:
        print(
            f"{out} is already at step {trainer.step_count} (target {settings['steps']}); "
            f"give a larger --steps to train on"
        )
        return 0
    _write_run_json(out, settings, trainer, status="running")
    print(trainer.task.describe())
    from lowdisp.nn import _trainer

    interrupted_cls = getattr(_trainer, "TrainingInterrupted", None)
    interrupted = None
    t0 = time.perf_counter()
    try:
        trainer.fit(remaining, progress=not args.no_progress, time_limit=args.time_limit)
    except _trainer.TrainingDivergedError:
        # the parameters and the checkpoint on disk are the last good ones: keep the
        # checkpoint, write the history for diagnosis, record the status, report (exit 1)
        hist = trainer.history
        for name, text in (("history.csv", hist.to_csv()), ("history.json", hist.to_json())):
            with open(os.path.join(out, name), "w") as fh:
                fh.write(text)
        _write_run_json(out, settings, trainer, status="diverged")
        raise
    except BaseException as exc:
        if interrupted_cls is None or not isinstance(exc, interrupted_cls):
            raise
        interrupted = exc
        if snaps is not None:  # fit skips on_fit_end when interrupted: keep this step too
            snaps.on_fit_end(trainer)
    wall = time.perf_counter() - t0
    files = _write_outputs(trainer, out, settings, wall, interrupted is not None, snaps)
    again = f"lowdisp train --resume {shlex.quote(out)}"
    if interrupted is not None:
        print(f"wrote {len(files)} files:")
        for name in files:
            print(f"  {name}")
        print(f"interrupted at step {trainer.step_count}; resume with: {again}")
        return 130
    last = trainer.history.evals[-1] if trainer.history.evals else {}
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "step")
    print(f"step {trainer.step_count}: {metrics} ({wall:.1f} s)")
    print(f"wrote {len(files)} files:")
    for name in files:
        print(f"  {name}")
    if trainer.step_count < settings["steps"]:
        print(
            f"stopped by --time-limit at step {trainer.step_count} of {settings['steps']}; "
            f"continue with: {again}"
        )
    return 0


def _outputs_complete(out: str) -> bool:
    """Whether the run in ``out`` wrote all its outputs: ``summary.json`` and a
    ``run.json`` whose status is no longer ``running`` (written last)."""
    try:
        with open(os.path.join(out, "run.json")) as fh:
            status = json.load(fh).get("status")
    except (OSError, ValueError, AttributeError):
        return False
    return status != "running" and os.path.isfile(os.path.join(out, "summary.json"))


def _process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed process its
    parent has not reaped yet, e.g. a Dask worker before its nanny notices:
    ``os.kill(pid, 0)`` succeeds on it, but it trains nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust os.kill
    return state not in ("Z", "X")


def _refuse_live_run(out: str) -> None:
    """Refuse to resume or replace a run that another process on this machine is training."""
    import socket

    try:
        with open(os.path.join(out, "run.json")) as f:
            saved = json.load(f)
        pid, host = int(saved["pid"]), saved["host"]
        running = saved["status"] == "running"
    except (OSError, ValueError, KeyError, TypeError):
        return
    if not running or host != socket.gethostname() or pid == os.getpid():
        return
    if not _process_running(pid):
        return  # the process is gone (killed): the run can be resumed
    raise UsageError(
        f"train: {out} is being trained right now by process {pid}; stop it first "
        f"(Ctrl-C or kill -TERM {pid} writes the checkpoint), then resume"
    )


def _same(flag: str, given: Any, saved: dict) -> bool:
    """Whether an explicit flag agrees with the saved run (``--init`` compared resolved)."""
    if flag == "init":
        try:
            return _init_for({**saved, "init": given}) == _init_for(saved)
        except KeyError:
            return False
    return given == saved.get(flag)


def _resume(
    out: str, ckpt: str, args: argparse.Namespace, explicit: set, settings: dict
) -> tuple[Any, dict]:
    """Rebuild the trainer from ``out`` and merge the saved and the given settings."""
    import lowdisp.nn as lnn

    if not os.path.isdir(out):
        raise UsageError(f"train: --resume: no run folder {out}")
    if not os.path.isfile(ckpt):
        raise UsageError(
            f"train: --resume: {out} holds no checkpoint.npz to resume from; start a new run "
            f"(with --force if the folder holds other run files)"
        )
    saved = None
    rj = os.path.join(out, "run.json")
    if os.path.isfile(rj):
        try:
            with open(rj) as f:
                saved = json.load(f)
            saved_args = dict(saved["model"])
            saved_run = dict(saved["run"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"train: --resume: {rj} is unreadable ({exc})") from exc
        diffs = [
            f"{_flag(k)} {getattr(args, k)!r} (the run has {saved_args.get(k)!r})"
            for k in MODEL_FLAGS
            if k in explicit and not _same(k, getattr(args, k), saved_args)
        ]
        if (
            "steps" in explicit
            and saved_args.get("cosine")
            and args.steps != saved_run.get("steps")
        ):
            diffs.append(
                f"--steps {args.steps} (the run's cosine schedule spans {saved_run.get('steps')})"
            )
        if diffs:
            raise UsageError(
                f"train: --resume {out}: flags contradict the saved run: {'; '.join(diffs)}; "
                f"drop them, or start a new run with --force or another --out"
            )
        merged = dict(saved_args)
        for k in RUN_FLAGS:
            merged[k] = getattr(args, k) if k in explicit else saved_run.get(k, settings[k])
    else:
        merged = dict(settings)
    merged["time_limit"] = args.time_limit
    trainer = lnn.load(ckpt)
    if not isinstance(trainer, lnn.Trainer):  # pragma: no cover - older load() API
        raise UsageError(
            f"train: --resume needs a checkpoint with a specification; {ckpt} has none"
        )
    if saved is None:
        # no run.json: the checkpoint's specification tells what the flags were
        known = _flags_from_spec(trainer.spec)
        diffs = []
        for k in MODEL_FLAGS:
            if k not in explicit or k not in known:
                continue
            given = _init_for({**known, "init": args.init}) if k == "init" else getattr(args, k)
            if given != known[k]:
                diffs.append(f"{_flag(k)} {getattr(args, k)!r} (the checkpoint has {known[k]!r})")
        if diffs:
            raise UsageError(
                f"train: --resume {out}: flags contradict the saved run: {'; '.join(diffs)}; "
                f"drop them, or start a new run with --force or another --out"
            )
        merged.update({k: v for k, v in known.items() if k != "init"})
        merged["init"] = known.get("init") or "default"
        for k in ("eval_every", "checkpoint_every"):
            if k not in explicit and known.get(k):
                merged[k] = known[k]
    trainer.checkpoint = ckpt
    trainer.checkpoint_every = merged["checkpoint_every"]
    trainer.eval_every = merged["eval_every"]
    return trainer, merged


_CELL_CLASSES = {"TanhRNNCell": "tanh", "ReLURNNCell": "relu", "LSTMCell": "lstm", "GRUCell": "gru"}


def _flags_from_spec(spec: Any) -> dict:
    """The ``lowdisp train`` flags a trainer specification pins down (those it can)."""
    known: dict[str, Any] = {}
    try:
        task = spec["task"]
        known["task"] = task["name"]
        for k in ("T", "variant"):
            if k in task.get("args", {}):
                known[k] = task["args"][k]
        cell = spec["model"]["layers"]["rnn"]["cell"]
        cls = cell["class"]
        if cls in _CELL_CLASSES:
            known["cell"] = _CELL_CLASSES[cls]
        elif cls == "RNNCell":
            rec = cell.get("recurrent")
            known["cell"] = rec if rec != "dense" else cell.get("activation")
        known["hidden"] = cell["hidden_size"]
        known["init"] = cell.get("recurrent_init")
        opt = spec["optimizer"]
        known["optimizer"] = str(opt["class"]).lower()
        known["lr"] = opt["lr"]
        orth = (opt.get("groups") or {}).get("*.W.theta*")
        if orth and "lr" in orth:
            known["lr_orth"] = orth["lr"]
        known["clip"] = opt.get("clip_norm")
        sched = opt.get("schedule")
        known["cosine"] = isinstance(sched, dict) and sched.get("name") == "cosine_schedule"
        known["dtype"] = spec["dtype"]
        tr = spec.get("trainer", {})
        if "batch_size" in tr:
            known["batch_size"] = tr["batch_size"]
        for k in ("eval_every", "checkpoint_every"):
            if tr.get(k):
                known[k] = tr[k]
    except (KeyError, TypeError):
        pass
    return known


def _write_run_json(out: str, settings: dict, trainer: Any, *, status: str) -> str:
    import socket
    from importlib.metadata import PackageNotFoundError, version

    try:
        lowdisp_version = version("lowdisp")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        lowdisp_version = "unknown"
    path = os.path.join(out, "run.json")
    data = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "lowdisp_version": lowdisp_version,
        "status": status,
        "step": int(trainer.step_count),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "model": {k: settings[k] for k in MODEL_FLAGS},
        "run": {k: settings[k] for k in RUN_FLAGS},
        "resume": f"lowdisp train --resume {shlex.quote(out)}",
    }
    _write_json(path, data)
    return path


def _write_outputs(
    trainer: Any, out: str, settings: dict, wall: float, interrupted: bool, snaps: Any
) -> list[str]:
    from lowdisp.nn._runs import weight_matrices
    from lowdisp.nn._trainer import recurrent_matrix

    files = []
    ckpt = os.path.join(out, "checkpoint.npz")
    if trainer.last_checkpoint_step != trainer.step_count or not os.path.isfile(ckpt):
        trainer.save(ckpt)
    files.append(ckpt)
    result = None if interrupted else trainer.evaluate()
    hist = trainer.history
    p = os.path.join(out, "history.csv")
    with open(p, "w") as f:
        f.write(hist.to_csv())
    files.append(p)
    p = os.path.join(out, "history.json")
    with open(p, "w") as f:
        f.write(hist.to_json())
    files.append(p)
    W = weight_matrices(trainer.model)
    p = os.path.join(out, "weights.npz")
    dense: dict[str, Any] = {
        k: (v.toarray() if hasattr(v, "toarray") else np.asarray(v)) for k, v in W.items()
    }
    np.savez(p, **dense)
    files.append(p)
    try:
        R = recurrent_matrix(trainer.model)
    except ValueError:
        R = None
    if R is not None:
        p = os.path.join(out, "recurrent_matrix.npy")
        np.save(p, R)
        files.append(p)
    summary = {
        "task": trainer.task.describe(),
        "cell": settings["cell"],
        "hidden": settings["hidden"],
        "init": _init_for(settings) or "default",
        "steps": trainer.step_count,
        "target_steps": settings["steps"],
        "interrupted": interrupted,
        "wall_time_s": wall,
        "final_eval": result,
        "weights": {k: list(np.shape(v)) for k, v in W.items()},
        "settings": settings,
    }
    p = os.path.join(out, "summary.json")
    _write_json(p, summary)
    files.append(p)
    if not settings["no_plot"] and hist.loss:
        import matplotlib

        if "matplotlib.pyplot" not in __import__("sys").modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = hist.plot(label=settings["cell"])
        ax.set_title(trainer.task.describe())
        p = os.path.join(out, "loss.png")
        ax.figure.savefig(p, dpi=100, bbox_inches="tight")
        plt.close(ax.figure)
        files.append(p)
    status = "interrupted" if interrupted else "finished"
    if trainer.step_count < settings["steps"] and not interrupted:
        status = "stopped (time limit)"
    files.append(_write_run_json(out, settings, trainer, status=status))
    if snaps is not None:
        sdir = os.path.join(out, SNAPSHOT_DIR)
        n = len([f for f in os.listdir(sdir) if f.endswith(".npz")])
        files.append(f"{sdir}{os.sep} ({n} snapshot files)")
    return files
