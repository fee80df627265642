"""Shared machinery of the paper reproductions (``lowdisp reproduce ...``).

A reproduction is a grid: datasets x models x seeds, every cell trained with
ONE set of hyperparameters (the paper's where it states them) through the
same :class:`~lowdisp.nn.Trainer`. This module builds the single-hidden-layer
nets, runs the grid (optionally in worker processes), aggregates accuracy
mean ± std per (dataset, model), writes ``results.csv`` (one row per run),
``table.csv``/``table.md`` (aggregated, with the paper's numbers beside
ours), ``settings.json`` and an accuracy-vs-parameters plot.

The protocol of every run: SGD with momentum on mini-batches in shuffled
epochs; after each epoch the validation accuracy is measured and the
parameters of the best epoch are kept (:class:`~lowdisp.nn.EarlyStopping`
with ``patience=None``: no early stop, best-validation parameters restored);
the reported accuracy is the test accuracy of those parameters.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DATASETS",
    "ModelSpec",
    "Settings",
    "aggregate",
    "build_shl",
    "format_markdown",
    "prepare_out",
    "run_grid",
    "select_families",
    "write_outputs",
]

_FLAT = {"flat": True, "validation_fraction": 0.15, "standardize": True}

#: dataset name -> (task factory, keyword arguments); all flat, 15% validation, and
#: standardised per feature as in the authors' preprocessing (``normalize_data`` of
#: structured-nets ``scripts/data``: (x - mean) / std with training statistics)
DATASETS: dict[str, tuple[str, dict[str, Any]]] = {
    "digits": ("digits", dict(_FLAT)),
    "mnist": ("mnist", dict(_FLAT)),
    "mnist_noise": ("mnist", {**_FLAT, "variant": "noise", "level": 6}),
    "mnist_rot": ("mnist", {**_FLAT, "variant": "rot"}),
    "mnist1d": ("mnist1d", dict(_FLAT)),
}

#: files written by a reproduction (an --out folder holding one of them is a previous run)
OUT_FILES = (
    "results.csv",
    "table.csv",
    "table.md",
    "settings.json",
    "summary.md",
    "accuracy_vs_params.png",
)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a reproduction: the hidden block of a single-hidden-layer net.

    Attributes
    ----------
    label : str
        Row name in the table (``"toeplitz_like r=4"``).
    family : str
        Series name in the plot (``"toeplitz_like"``).
    kind : {"structured", "fastfood", "diagonal_circulant", "dense_bottleneck"}
        ``structured``: ``StructuredDense(n, n, structure=structure, rank=rank)``;
        ``fastfood``: ``Fastfood(n)``; ``diagonal_circulant``:
        ``DiagonalCirculant(n, depth=depth)``; ``dense_bottleneck``: a dense
        ``n -> width`` layer (a narrow dense net).
    structure : str, optional
    rank, depth, width : int, optional
    options : tuple of (name, value) pairs
        Further keyword arguments of the hidden layer (e.g. a
        ``DiagonalCirculant``'s ``relu_every``, ``slope``, ``init``).
    """

    label: str
    family: str
    kind: str = "structured"
    structure: str | None = None
    rank: int | None = None
    depth: int | None = None
    width: int | None = None
    options: tuple[tuple[str, Any], ...] = ()


def build_shl(spec: ModelSpec, n_in: int, n_out: int, *, dtype: Any, rng: Any) -> Any:
    """``Sequential(hidden, ReLU, readout)``: the hidden block of ``spec`` on ``n_in``
    features, a ReLU, and a dense softmax readout to ``n_out`` classes."""
    import lowdisp.nn as lnn

    gen = np.random.default_rng(rng)
    if spec.kind == "structured":
        kw = {} if spec.rank is None else {"rank": spec.rank}
        hidden = lnn.StructuredDense(
            n_in, n_in, structure=spec.structure, dtype=dtype, rng=gen, **kw
        )
        width = n_in
    elif spec.kind == "fastfood":
        hidden = lnn.Fastfood(n_in, dtype=dtype, rng=gen)
        width = n_in
    elif spec.kind == "diagonal_circulant":
        hidden = lnn.DiagonalCirculant(
            n_in, depth=spec.depth, dtype=dtype, rng=gen, **dict(spec.options)
        )
        width = n_in
    elif spec.kind == "dense_bottleneck":
        width = int(spec.width)  # type: ignore[arg-type]
        hidden = lnn.Dense(n_in, width, dtype=dtype, rng=gen)
    else:  # pragma: no cover - specs are built by the reproduction modules
        raise ValueError(f"build_shl: unknown model kind {spec.kind!r}")
    readout = lnn.Dense(width, n_out, dtype=dtype, rng=gen)
    return lnn.Sequential({"hidden": hidden, "act": lnn.ReLU(dtype=dtype), "readout": readout})


def select_families(
    models: Sequence[ModelSpec], families: Sequence[str] | None, default_off: dict[str, str]
) -> tuple[ModelSpec, ...]:
    """The models of the named families (``["all"]``: every one; ``None``: all but
    ``default_off``); an unknown family is a :class:`~lowdisp.exceptions.UsageError`
    listing the valid ones."""
    from lowdisp.exceptions import UsageError

    known = list(dict.fromkeys(m.family for m in models))
    if families is None:
        return tuple(m for m in models if m.family not in default_off)
    wanted = list(families)
    if wanted == ["all"]:
        return tuple(models)
    bad = [f for f in wanted if f not in known]
    if bad:
        raise UsageError(
            f"reproduce: unknown model families {bad}; valid: {', '.join(known)} (or all)"
        )
    return tuple(m for m in models if m.family in wanted)


@dataclass(frozen=True)
class Settings:
    """The whole grid and its one set of hyperparameters."""

    paper: str
    datasets: tuple[str, ...]
    models: tuple[ModelSpec, ...]
    seeds: int
    epochs: int
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 50
    optimizer: str = "sgd"  # "sgd" (with ``momentum``) or "adam" (default betas)
    dtype: str = "float32"
    quick: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def optimizer_text(self) -> str:
        """``"SGD lr 0.001 momentum 0.9"`` or ``"Adam lr 5e-05"`` for logs and summaries."""
        if self.optimizer == "adam":
            return f"Adam lr {self.lr:g}"
        return f"SGD lr {self.lr:g} momentum {self.momentum:g}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = [asdict(m) for m in self.models]
        d["datasets"] = {k: {"factory": DATASETS[k][0], **DATASETS[k][1]} for k in self.datasets}
        return d


@functools.lru_cache(maxsize=8)
def _task(name: str) -> Any:
    import lowdisp.nn as lnn

    factory, kw = DATASETS[name]
    return lnn.make_task(factory, **kw)


def run_one(dataset: str, spec: ModelSpec, seed: int, settings: Settings) -> dict[str, Any]:
    """Train one (dataset, model, seed) cell; returns its results row."""
    import lowdisp.nn as lnn

    task = _task(dataset)
    model = build_shl(spec, task.input_size, task.output_size, dtype=settings.dtype, rng=[seed, 0])
    hidden = model["hidden"]
    n = task.input_size
    hidden_params = lnn.count_params(hidden)
    hidden_bias = hidden.params()["b"].size if "b" in hidden.params() else 0
    weights = hidden_params - hidden_bias
    if settings.optimizer == "adam":
        opt = lnn.Adam(settings.lr)
    else:
        opt = lnn.SGD(settings.lr, momentum=settings.momentum)
    stop = lnn.EarlyStopping(patience=None)
    trainer = lnn.Trainer(
        model,
        task.loss(),
        opt,
        task,
        batch_size=settings.batch_size,
        rng=np.random.default_rng([seed, 1]),
        callbacks=[stop],
    )
    row: dict[str, Any] = {
        "dataset": dataset,
        "model": spec.label,
        "family": spec.family,
        "seed": seed,
        "n": n,
        "hidden_weights": weights,
        "hidden_params": hidden_params,
        "total_params": lnn.count_params(model),
        "compression": (n * n) / weights,
        "epochs": settings.epochs,
    }
    per_epoch = math.ceil(task.info["n_train"] / settings.batch_size)
    t0 = time.perf_counter()
    try:  # a validation pass can overflow too (OverflowError): a divergence, never an abort
        trainer.fit(epochs=settings.epochs, progress=False)
        seconds = time.perf_counter() - t0
        test = trainer.evaluate()
    except (lnn.TrainingDivergedError, OverflowError) as exc:
        row.update(
            test_accuracy=float("nan"),  # not scored, for every model alike
            val_accuracy=stop.best if stop.best is not None else float("nan"),
            best_epoch=(stop.best_step or 0) // per_epoch if stop.best is not None else -1,
            train_seconds=time.perf_counter() - t0,
            ms_per_step=float("nan"),
            status=_diverged_status(exc, trainer.step_count, per_epoch),
        )
        return row
    row.update(
        test_accuracy=test["accuracy"],
        val_accuracy=stop.best if stop.best is not None else float("nan"),
        best_epoch=(stop.best_step or 0) // per_epoch,
        train_seconds=seconds,
        ms_per_step=1e3 * seconds / max(trainer.step_count, 1),
        status="ok",
    )
    return row


def _diverged_status(exc: BaseException, step_count: int, per_epoch: int) -> str:
    """``"diverged at step S (epoch E): cause"``, the status of a diverged run."""
    m = re.search(r"diverged at step (\d+): (.*?)\. The parameters", str(exc), re.S)
    if m:  # TrainingDivergedError: a training step
        step, cause = int(m.group(1)), m.group(2)
    else:  # an OverflowError of the validation pass after step_count
        step, cause = step_count, f"the validation pass overflowed ({exc})"
    cause = " ".join(cause.split())
    cause = cause if len(cause) <= 240 else cause[:239] + "…"
    return f"diverged at step {step} (epoch {(step - 1) // per_epoch + 1}): {cause}"


def _run_job(args: tuple) -> dict[str, Any]:
    return run_one(*args)


def run_jobs(
    fn: Callable[[Any], Any],
    jobs_list: Sequence[Any],
    jobs: int,
    report: Callable[[int, Any], None],
) -> list[Any]:
    """``fn(job)`` for every job, in ``jobs`` spawned worker processes when > 1
    (``fn`` module-level, so picklable); ``report(done, result)`` after each
    finishes, ``done`` the number finished so far. Results in job order
    whatever the completion order."""
    out: list[Any] = [None] * len(jobs_list)
    if jobs <= 1:
        for i, job in enumerate(jobs_list):
            out[i] = fn(job)
            report(i + 1, out[i])
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")  # no forked BLAS thread pools
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs_list)}
        for done, fut in enumerate(as_completed(futures), 1):
            i = futures[fut]
            out[i] = fut.result()
            report(done, out[i])
    return out


def run_grid(
    settings: Settings,
    *,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every (dataset, model, seed) run, in ``jobs`` worker processes when > 1.

    Each run uses one BLAS thread (the Trainer's default); results come back
    in grid order whatever the completion order.
    """
    grid = [
        (d, m, s, settings)
        for d in settings.datasets
        for m in settings.models
        for s in range(settings.seeds)
    ]
    total = len(grid)
    width = len(str(total))
    t_start = time.perf_counter()

    def report(done: int, row: dict[str, Any]) -> None:
        acc = row["test_accuracy"]
        text = "diverged" if row["status"] != "ok" else f"test acc {acc:.4f}"
        log(
            f"[{done:>{width}}/{total}] {row['dataset']:<12} {row['model']:<22} "
            f"seed {row['seed']}: {text} (best val {row['val_accuracy']:.4f} at epoch "
            f"{row['best_epoch']}), {row['train_seconds']:.1f} s "
            f"[{time.perf_counter() - t_start:.0f} s elapsed]"
        )

    return [r for r in run_jobs(_run_job, grid, jobs, report) if r is not None]


def aggregate(
    results: Sequence[dict[str, Any]],
    anchors: dict[tuple[str, str], tuple[float, float | None, str]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (dataset, model): accuracy mean ± std (sample std, ddof = 1)
    over the seeds that finished, parameters, compression, time, and the
    paper's number for that row when ``anchors`` has it
    (``{(dataset, model): (accuracy %, std % or None, source)}``)."""
    anchors = anchors or {}
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, str]] = []
    for r in results:
        k = (r["dataset"], r["model"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        runs = [r for r in results if (r["dataset"], r["model"]) == k]
        acc = np.array([r["test_accuracy"] for r in runs], dtype=float)
        ok = acc[np.isfinite(acc)]
        first = runs[0]
        anchor = anchors.get(k)
        rows.append(
            {
                "dataset": k[0],
                "model": k[1],
                "family": first["family"],
                "n": first["n"],
                "hidden_weights": first["hidden_weights"],
                "total_params": first["total_params"],
                "compression": first["compression"],
                "accuracy_mean": 100 * float(ok.mean()) if ok.size else float("nan"),
                "accuracy_std": 100 * float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
                "seeds": int(ok.size),
                "diverged": int(acc.size - ok.size),
                "diverged_runs": [  # "seed s: status" of each run left out
                    f"seed {r.get('seed')}: {r.get('status', 'diverged')}"
                    for r in runs
                    if not math.isfinite(r["test_accuracy"])
                ],
                "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
                "ms_per_step": float(np.nanmean([r["ms_per_step"] for r in runs]))
                if ok.size
                else float("nan"),
                "paper_accuracy": anchor[0] if anchor else float("nan"),
                "paper_std": anchor[1] if anchor and anchor[1] is not None else float("nan"),
                "paper_source": anchor[2] if anchor else "",
            }
        )
    return rows


#: columns of table.csv, in order
TABLE_COLUMNS = (
    "dataset",
    "model",
    "family",
    "n",
    "hidden_weights",
    "total_params",
    "compression",
    "accuracy_mean",
    "accuracy_std",
    "seeds",
    "diverged",
    "train_seconds",
    "ms_per_step",
    "paper_accuracy",
    "paper_std",
    "paper_source",
)

#: columns of results.csv, in order
RESULT_COLUMNS = (
    "dataset",
    "model",
    "family",
    "seed",
    "n",
    "hidden_weights",
    "hidden_params",
    "total_params",
    "compression",
    "epochs",
    "test_accuracy",
    "val_accuracy",
    "best_epoch",
    "train_seconds",
    "ms_per_step",
    "status",
)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV text with the header ``columns`` (floats to 6 significant
    digits, other keys ignored); the CSV writer of every reproduction."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def mean_pm_std(mean: float, std: float, fmt: str = ".2f") -> str:
    """``mean ± std`` in the format ``fmt`` for the reproductions' tables (``–``
    for a non-finite mean, the mean alone for a non-finite std)."""
    if not math.isfinite(mean):
        return "–"
    return format(mean, fmt) + (f" ± {format(std, fmt)}" if math.isfinite(std) else "")


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The aggregated table as Markdown, one section per dataset."""
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        out.append(f"### {ds} (n = {sub[0]['n']})\n")
        out.append(
            "| model | hidden weights | compression | accuracy % (ours) | seeds "
            "| paper % | s/run | ms/step |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in sub:
            n_runs = r["seeds"] + r["diverged"]
            seeds = f"{r['seeds']}" + (
                f" ({r['diverged']}/{n_runs} diverged)" if r["diverged"] else ""
            )
            paper = mean_pm_std(r["paper_accuracy"], r["paper_std"])
            out.append(
                f"| {r['model']} | {r['hidden_weights']} | {r['compression']:.1f} "
                f"| {mean_pm_std(r['accuracy_mean'], r['accuracy_std'])} | {seeds} | {paper} "
                f"| {r['train_seconds']:.1f} | {r['ms_per_step']:.2f} |"
            )
        out.append("")
    return "\n".join(out)


def prepare_out(out: str, *, force: bool, where: str) -> str:
    """Create ``out`` (a folder); refuse a folder holding a previous run unless
    ``force`` (then only the reproduction's own files are removed)."""
    from lowdisp.exceptions import UsageError

    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"{where}: --out {out} is a file, not a folder")
    _clear_previous(out, OUT_FILES, force=force, where=where)
    os.makedirs(out, exist_ok=True)
    return out


def _clear_previous(out: str, files: Sequence[str], *, force: bool, where: str) -> None:
    """Refuse a folder ``out`` holding one of ``files`` unless ``force``; then remove them."""
    from lowdisp.exceptions import UsageError

    held = [f for f in files if os.path.exists(os.path.join(out, f))]
    if held and not force:
        raise UsageError(
            f"{where}: {out} already holds a run ({', '.join(held)}); choose another --out "
            f"or overwrite it with --force"
        )
    for f in held:
        os.remove(os.path.join(out, f))


def claim_out(
    out: str | None,
    name: str,
    *,
    quick: bool,
    force: bool,
    files: Sequence[str],
    where: str = "reproduce",
) -> str:
    """The run folder of ``reproduce <name>`` (default ``runs/reproduce-<name>``, with
    ``-quick`` for a quick run), made by :func:`prepare_out`; a folder holding one of
    the reproduction's own ``files`` is refused (``where`` names the caller) unless
    ``force``, and then those files are removed."""
    out = out or os.path.join("runs", f"reproduce-{name}" + ("-quick" if quick else ""))
    _clear_previous(out, files, force=force, where=where)
    return prepare_out(out, force=force, where="reproduce")


def write_text(out: str, name: str, text: str, written: list[str]) -> None:
    """Write ``text`` to the file ``name`` in the folder ``out`` (UTF-8) and append
    its path to ``written``; the file writer of every reproduction."""
    path = os.path.join(out, name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    written.append(path)


def load_averages(fmt: str = ".2f") -> str:
    """The 1-, 5- and 15-minute load averages, each formatted with ``fmt`` (``n/a``
    where the platform has none)."""
    try:
        return " ".join(f"{x:{fmt}}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def machine_info() -> dict[str, Any]:
    """The lowdisp version, Python version, machine and CPU count recorded in a
    reproduction's settings.json."""
    from lowdisp.nn._spec import _version

    return {
        "lowdisp_version": _version(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def write_outputs(
    out: str,
    settings: Settings,
    results: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    summary: str,
    *,
    plot: bool = True,
    plot_fn: Callable[..., Any] | None = None,
) -> list[str]:
    """Write results.csv, table.csv, table.md, summary.md, settings.json (and the plot)."""
    written: list[str] = []

    def put(name: str, text: str) -> None:
        write_text(out, name, text, written)

    put("results.csv", csv_text(results, RESULT_COLUMNS))
    put("table.csv", csv_text(rows, TABLE_COLUMNS))
    put("table.md", format_markdown(rows))
    put("summary.md", summary)
    meta = {**settings.to_dict(), **machine_info()}
    put("settings.json", json.dumps(meta, indent=2, default=str) + "\n")
    if plot:
        path = os.path.join(out, "accuracy_vs_params.png")
        (plot_fn or plot_accuracy_vs_params)(rows, path, title=settings.paper)
        written.append(path)
    return written


def plot_accuracy_vs_params(
    rows: Sequence[dict[str, Any]], path: str | None = None, *, title: str = "", axes: Any = None
) -> Any:
    """Accuracy (mean ± std over seeds) against hidden-layer weights, one panel per
    dataset, one series per family; the paper's numbers as open grey markers."""
    import matplotlib

    if path is not None and axes is None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    if axes is None:
        fig, axes = plt.subplots(
            1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False
        )
        axes = axes[0]
    else:
        fig = np.atleast_1d(axes)[0].figure
        axes = np.atleast_1d(axes)
    markers = "osD^v<>ph*"
    for ax, ds in zip(axes, datasets):
        sub = [r for r in rows if r["dataset"] == ds]
        families = list(dict.fromkeys(r["family"] for r in sub))
        for i, fam in enumerate(families):
            pts = sorted((r for r in sub if r["family"] == fam), key=lambda r: r["hidden_weights"])
            x = [r["hidden_weights"] for r in pts]
            y = [r["accuracy_mean"] for r in pts]
            e = [r["accuracy_std"] if math.isfinite(r["accuracy_std"]) else 0 for r in pts]
            ax.errorbar(x, y, yerr=e, marker=markers[i % len(markers)], ms=5, capsize=2, label=fam)
        paper = [r for r in sub if math.isfinite(r["paper_accuracy"])]
        if paper:
            ax.scatter(
                [r["hidden_weights"] for r in paper],
                [r["paper_accuracy"] for r in paper],
                facecolors="none",
                edgecolors="0.4",
                s=40,
                label="paper (their data)",
                zorder=3,
            )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # no crowded 2x10^2, 3x10^2, ... labels
        ax.set_xlabel("hidden-layer weights")
        ax.set_ylabel("test accuracy %")
        ax.set_title(f"{ds} (n = {sub[0]['n']})")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
