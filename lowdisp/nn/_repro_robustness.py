"""``lowdisp reproduce robustness``: how robust are trained recurrent networks?

Sengupta & Friston, "How robust are deep neural networks?" (arXiv
1804.11313, 2018): recurrent networks at high accuracy can be fragile to
small perturbations; normalising the spectrum of the recurrent matrix onto
the unit disk (power method, Rayleigh quotient) gives stable but not robust
networks; training makes recurrent matrices non-normal, which their
ε-pseudospectra reveal. No numbers of theirs were recovered; none are
printed.

Protocol: sequential digits (scikit-learn's 8×8 digits read one pixel per
step, 64 steps; ``--quick``: one row per step, 8 steps), three recurrent
classifiers with the same hidden size, optimizer, learning rate, steps and
seeds: a tanh RNN (dense W), scoRNN (scaled Cayley W, modReLU) and a tanh
RNN whose W is projected onto the unit disk after every step (Sengupta &
Friston's spectral normalisation, ``regularizers={"unit_disk": True}``;
the projection also runs before every validation, so the kept and tested
W is projected); the parameters of the best validation accuracy are kept. On the test set:
accuracy under L∞ input perturbations of size ε (random signs, and the
worst case to first order, FGSM, from the BPTT input gradient), growth of
an initial-state perturbation along the sequence, and the recurrent
matrix's spectral radius, norm, departure from normality and
ε-pseudospectral radius (:func:`lowdisp.nn.robustness_report`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MODELS", "reproduce", "settings"]

#: model label -> (make_cell name, options)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "tanh RNN": ("tanh", {}),
    "scoRNN": ("scaled_cayley", {}),
    "unit-disk RNN": ("tanh", {"regularizers": {"unit_disk": True}}),
}

RESULT_COLUMNS = (
    "model",
    "seed",
    "valid_accuracy",
    "test_accuracy",
    "eps",
    "fgsm_accuracy",
    "random_accuracy",
    "spectral_radius",
    "spectral_norm",
    "departure",
    "departure_relative",
    "pseudo_radius",
    "growth_max",
    "growth_last",
    "best_step",
    "cpu_seconds",
)
TABLE_COLUMNS = (
    "model",
    "seeds",
    "test_accuracy_mean",
    "test_accuracy_std",
    "fgsm_accuracy_mean",
    "fgsm_accuracy_std",
    "random_accuracy_mean",
    "random_accuracy_std",
    "spectral_radius_mean",
    "spectral_norm_mean",
    "departure_relative_mean",
    "pseudo_radius_mean",
    "growth_max_mean",
    "status",
)
FILES = ("robustness.png",)


@dataclass(frozen=True)
class Settings:
    paper: str = "Sengupta & Friston 2018: how robust are deep neural networks?"
    hidden: int = 64
    pixels_per_step: int = 1
    batch_size: int = 50
    lr: float = 3e-3
    clip_norm: float = 1.0
    steps: int = 3000
    eval_every: int = 250
    seeds: int = 3
    dtype: str = "float64"
    eps: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2)
    pseudo_eps: tuple[float, ...] = (0.01, 0.1)
    table_eps: float = 0.05
    notes: dict[str, str] = field(default_factory=dict)


def settings(
    *, quick: bool = False, seeds: int | None = None, epochs: int | None = None
) -> Settings:
    """Full settings, or ``--quick`` (8 steps of 8 pixels, hidden 32, lr 1e-2, 400 steps,
    2 seeds). ``epochs`` sets the training steps in hundreds."""
    from lowdisp.nn._repro_rnn import seeds_and_steps

    s = (
        Settings(hidden=32, pixels_per_step=8, lr=1e-2, steps=400, eval_every=100, seeds=2)
        if quick
        else Settings()
    )
    return seeds_and_steps(s, seeds, epochs)


def _task(s: Settings) -> Any:
    import lowdisp.nn as lnn

    return lnn.digits(pixels_per_step=s.pixels_per_step, validation_fraction=0.15)


def _accuracy(model: Any, data: tuple[np.ndarray, np.ndarray]) -> float:
    x, y = data
    out, _ = model.forward(x, train=False, rng=None)
    return float((out.argmax(axis=-1) == y).mean())


def _job(args: tuple) -> dict[str, Any]:
    label, seed, s = args
    import lowdisp.nn as lnn
    from lowdisp.nn._repro_rnn import build_model, fit_settings

    task = _task(s)
    cell, opts = MODELS[label]
    model = build_model(task, cell, s.hidden, opts, seed=1000 + seed, dtype=s.dtype)
    fit = fit_settings(
        model,
        task,
        s,
        seed=seed,
        score=lambda m: _accuracy(m, task.validation_data()),
        lower_is_better=False,
    )
    x, y = task.eval_data()
    rep = lnn.robustness_report(
        model,
        task.loss(),
        x,
        y,
        eps=s.eps,
        pseudo_eps=s.pseudo_eps,
        name=label,
        rng=seed,
    )
    sp = rep.spectrum
    k = s.eps.index(s.table_eps)
    return {
        "model": label,
        "seed": seed,
        "valid_accuracy": fit["best_score"],
        "test_accuracy": rep.clean["accuracy"],
        "eps": s.table_eps,
        "fgsm_accuracy": float(rep.fgsm["accuracy"][k]),
        "random_accuracy": float(rep.random["accuracy"][k]),
        "spectral_radius": sp["spectral_radius"],
        "spectral_norm": sp["spectral_norm"],
        "departure": sp["departure"],
        "departure_relative": sp["departure_relative"],
        "pseudo_radius": sp["pseudo_radius"][max(s.pseudo_eps)],
        "growth_max": float(rep.growth.max()),
        "growth_last": float(rep.growth[-1]),
        "best_step": fit["best_step"],
        "cpu_seconds": fit["cpu_seconds"],
        "diverged": fit["diverged"],
        "curves": {
            "fgsm": rep.fgsm["accuracy"].tolist(),
            "random": rep.random["accuracy"].tolist(),
            "growth": rep.growth.tolist(),
        },
        "W": rep.W if seed == 0 else None,
    }


_KEYS = (
    "valid_accuracy",
    "test_accuracy",
    "fgsm_accuracy",
    "random_accuracy",
    "spectral_radius",
    "spectral_norm",
    "departure",
    "departure_relative",
    "pseudo_radius",
    "growth_max",
    "cpu_seconds",
)


def claims(rows: list[dict[str, Any]], s: Settings) -> str:
    """The paper's three observations, checked on our numbers."""
    ok = [r for r in rows if r["status"] == "ok"]
    by = {r["model"]: r for r in ok}
    lines = []
    accs = [r["test_accuracy_mean"] for r in ok]
    similar = bool(accs) and max(accs) - min(accs) <= 0.05
    if accs:
        lines.append(
            f"similar accuracy: clean test accuracy {min(accs):.3f}..{max(accs):.3f} "
            f"(spread {max(accs) - min(accs):.3f}): "
            + (
                "yes (<= 0.05)"
                if similar
                else "NO (> 0.05): the same training budget does not bring the models to "
                "similar accuracy, so robustness is compared by the fraction of the clean "
                "accuracy kept"
            )
        )

    def kept(r: dict[str, Any]) -> float:
        return r["fgsm_accuracy_mean"] / r["test_accuracy_mean"]

    for r in ok:
        lines.append(
            f"{r['model']:<14} FGSM at eps {s.table_eps:g} (L-inf; pixels in [0, 1]): accuracy "
            f"{r['fgsm_accuracy_mean']:.3f} of clean {r['test_accuracy_mean']:.3f} (kept "
            f"{kept(r):.2f}); random signs {r['random_accuracy_mean']:.3f}"
        )
    ud, tanh = by.get("unit-disk RNN"), by.get("tanh RNN")
    if ud is not None:
        stable = ud["spectral_radius_mean"] <= 1 + 1e-6
        why_not = "above 1: the projection estimates the radius by subspace iteration"
        head = (
            f"'unit-disk normalisation gives stable but not robust networks': spectral radius "
            f"{ud['spectral_radius_mean']:.4f} from the exact eigenvalues "
            f"({'<= 1' if stable else why_not})"
        )
        if tanh is None:
            lines.append(head)
        else:
            robust = kept(ud) >= kept(tanh)
            lines.append(
                head + f"; FGSM keeps {kept(ud):.2f} of its clean accuracy vs {kept(tanh):.2f} "
                "for the tanh RNN -> "
                + (
                    "at least as robust as the unnormalised RNN: does NOT hold here"
                    if robust
                    else "less robust than the unnormalised RNN: HOLDS"
                )
            )
    sc = by.get("scoRNN")
    if sc is not None and sc["growth_max_mean"] > 10:
        lines.append(
            f"scoRNN hidden growth {sc['growth_max_mean']:.3g}: the real modReLU "
            "sign(z)·relu(|z| + b) jumps by 2b at z = 0 when b > 0, so a 1e-3 initial-state "
            "perturbation that flips a sign moves h by O(b): the ratio is a jump, not a derivative"
        )
    if tanh is not None:
        lines.append(
            f"'training makes W non-normal': tanh RNN relative departure from normality "
            f"{tanh['departure_relative_mean']:.3f}"
            + (
                f" (scoRNN {by['scoRNN']['departure_relative_mean']:.2e}, normal by construction)"
                if "scoRNN" in by
                else ""
            )
        )
    return "\n".join(lines)


def _markdown(rows: list[dict[str, Any]], s: Settings) -> str:
    from lowdisp.nn._repro_rnn import pm

    out = [
        f"| model | seeds | test acc | FGSM acc (ε={s.table_eps:g}) "
        f"| random acc (ε={s.table_eps:g}) | ρ(W) | ‖W‖₂ | departure (rel.) "
        f"| ε={max(s.pseudo_eps):g} pseudo-radius "
        f"| max growth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"| {r['model']} | – | {r['status']} |" + " – |" * 7)
            continue
        out.append(
            f"| {r['model']} | {r['seeds']} | {pm(r, 'test_accuracy')} | {pm(r, 'fgsm_accuracy')} "
            f"| {pm(r, 'random_accuracy')} | {pm(r, 'spectral_radius')} | "
            f"{pm(r, 'spectral_norm')} | {pm(r, 'departure_relative')} | "
            f"{pm(r, 'pseudo_radius')} | {pm(r, 'growth_max', '.3g')} |"
        )
    return "\n".join(out) + "\n"


def _figure(results: list[dict[str, Any]], s: Settings) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import lowdisp.spectral as sp

    labels = list(dict.fromkeys(r["model"] for r in results))
    fig = plt.figure(figsize=(4 * max(3, len(labels)), 7.5))
    gs = fig.add_gridspec(2, max(3, len(labels)))
    ax_acc, ax_g = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    eps = np.r_[0.0, s.eps]
    for i, lab in enumerate(labels):
        sub = [r for r in results if r["model"] == lab]
        for kind, style in (("fgsm", "-"), ("random", "--")):
            acc = np.mean([[r["test_accuracy"], *r["curves"][kind]] for r in sub], axis=0)
            ax_acc.plot(eps, acc, style, marker="o", ms=3, color=colors[i], label=f"{lab} {kind}")
        g = np.mean([r["curves"]["growth"] for r in sub], axis=0)
        ax_g.semilogy(np.arange(1, g.size + 1), g, color=colors[i], label=lab)
    ax_acc.set_xlabel("ε (L∞ input perturbation)")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.legend(fontsize=6)
    ax_g.set_xlabel("step t")
    ax_g.set_ylabel("‖h'_t − h_t‖ / ‖δ‖ (initial-state perturbation)")
    ax_g.legend(fontsize=7)
    theta = np.linspace(0, 2 * np.pi, 200)
    for i, lab in enumerate(labels):
        W = next((r["W"] for r in results if r["model"] == lab and r["W"] is not None), None)
        if W is None:
            continue
        ax = fig.add_subplot(gs[1, i])
        sp.plot_pseudospectra(np.asarray(W), list(s.pseudo_eps), ax=ax, npts=60, colorbar=False)
        ax.plot(np.cos(theta), np.sin(theta), "k:", lw=0.8)
        ax.set_title(f"{lab}: ε-pseudospectra of W, ε = {list(s.pseudo_eps)}", fontsize=8)
        ax.set_aspect("equal")
    fig.tight_layout()
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
    log: Any = print,
    settings_override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``lowdisp reproduce robustness`` and write its folder; returns ``{"out",
    "rows", "results", "summary", "settings"}``."""
    from lowdisp.nn._repro_rnn import aggregate_runs, begin, cell_available, finish, load_average
    from lowdisp.nn._reproduce import run_jobs

    s, jobs, out = begin(
        "robustness",
        settings,
        quick=quick,
        out=out,
        seeds=seeds,
        epochs=epochs,
        jobs=jobs,
        families=families,
        datasets=datasets,
        force=force,
        settings_override=settings_override,
        extra_files=FILES,
    )
    task = _task(s)  # fails early (clear ImportError) without scikit-learn
    missing = {}
    for lab, (cell, opts) in MODELS.items():
        why = cell_available(cell, opts, s.hidden)
        if why:
            missing[lab] = why
    run = [m for m in MODELS if m not in missing]
    load0 = load_average()
    log(
        f"robustness: {len(run)} models x {s.seeds} seeds on {task.name} ({task.T} steps), "
        f"hidden {s.hidden}, {s.steps} steps of Adam lr {s.lr:g} batch {s.batch_size}; "
        f"{jobs} worker(s); load average {load0}; writing to {out}"
        + (f"; MISSING: {', '.join(missing)}" if missing else "")
    )
    t0 = time.perf_counter()
    grid = [(m, seed, s) for m in run for seed in range(s.seeds)]

    def report(done: int, r: dict[str, Any]) -> None:
        log(
            f"[{done}/{len(grid)}] {r['model']:<14} seed {r['seed']}: test acc "
            f"{r['test_accuracy']:.3f}, FGSM(ε={s.table_eps:g}) {r['fgsm_accuracy']:.3f}, "
            f"ρ(W) {r['spectral_radius']:.3f}, departure {r['departure_relative']:.3f} "
            f"[{time.perf_counter() - t0:.0f} s elapsed]"
        )

    results = run_jobs(_job, grid, jobs, report)
    rows = aggregate_runs(results, _KEYS, group="model")
    for r in rows:
        r["status"] = "ok"
    for lab, why in missing.items():
        rows.append(
            {"model": lab, "seeds": 0, "status": f"missing: {why}"}
            | {f"{k}_{m}": math.nan for k in _KEYS for m in ("mean", "std")}
        )
    verdict = claims(rows, s)
    total = time.perf_counter() - t0
    table = _markdown(rows, s)
    summary = (
        f"# {s.paper}\n\n"
        f"{len(results)} runs in {total / 60:.1f} min ({jobs} worker(s)); load average {load0} "
        f"at the start, {load_average()} at the end. Data: scikit-learn digits, "
        f"{task.T} steps of {s.pixels_per_step} pixel(s) in [0, 1] (inputs not clipped after "
        f"perturbation); 15 % of the training images for validation.\n\n"
        f"Settings (all models): hidden {s.hidden}, Adam lr {s.lr:g}, clip {s.clip_norm:g}, "
        f"batch {s.batch_size}, {s.steps} steps, validation every {s.eval_every} (best kept), "
        f"{s.dtype}; {s.seeds} seeds. Perturbation sizes ε = {list(s.eps)}.\n\n"
        + "".join(f"- missing model {c}: {why}\n" for c, why in missing.items())
        + "\n## The paper's observations, checked on our numbers\n\n```\n"
        + verdict
        + "\n```\n\n## Table (mean ± std over seeds)\n\n"
        + table
    )
    fig = _figure(results, s) if plot and results else None
    flat = [{k: v for k, v in r.items() if k not in ("curves", "W")} for r in results]
    return finish(
        out,
        s,
        results=flat,
        result_columns=RESULT_COLUMNS,
        rows=rows,
        table_columns=TABLE_COLUMNS,
        table_md=table,
        verdict=verdict,
        summary=summary,
        missing=missing,
        figure=fig,
        figure_name=FILES[0],
        total=total,
        log=log,
    )
