"""``lowdisp demo``: the main job on its embedded default (private).

Three stages, each writing into one folder (``./lowdisp-demo`` or ``--out``):

1. **structured speed**: time of ``M @ X`` for structured matrices of
   displacement rank 4 (Toeplitz-like, LDR-SD, Cauchy-like) against the dense
   product, n from 64 to 8192 (Cauchy-like to 4096), on one thread ->
   ``structured_speed.png``; the report gives each family's measured crossover
   with dense and says why LDR-SD and Cauchy-like lose at small n;
2. **training**: a scaled-Cayley (scoRNN) cell and a plain tanh RNN trained on
   the copy task with the same budget -> ``training.png`` (log-scale loss);
3. **spectra**: epsilon-pseudospectra, spectral norms, spectral radii and
   departures from normality of both trained recurrent matrices ->
   ``pseudospectra.png`` (both panels on one grid, with the same epsilon levels
   and one colour bar).

``report.txt`` records what ran, the figures, the timings and one sentence per
measure. ``--quick`` shrinks every stage to a few seconds (the test suite uses
it). The output folder is created if missing; an existing file there is a
:class:`~lowdisp.exceptions.UsageError`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "run", "run_demo"]

#: the embedded default (and its quick variant)
DEFAULTS: dict[str, dict[str, Any]] = {
    "full": {
        "sizes": [64, 128, 256, 512, 1024, 2048, 4096, 8192],
        "batch": 16,
        "rank": 4,
        "T": 100,
        "hidden": 128,
        "steps": 500,
        "time_limit": 8.0,
        "npts": 90,
    },
    "quick": {
        "sizes": [32, 64, 128],
        "batch": 4,
        "rank": 2,
        "T": 5,
        "hidden": 8,
        "steps": 20,
        "time_limit": 8.0,
        "npts": 20,
    },
}

FAMILIES = (
    ("Toeplitz-like", "toeplitz_like"),
    ("LDR-SD", "subdiagonal"),
    ("Cauchy-like", "cauchy_like"),
)
#: largest n timed per family: Cauchy-like costs O(r n^2) like dense (the same
#: slope, so a larger n cannot change the verdict) and 8192 would add seconds
MAX_N = {"Cauchy-like": 4096}

#: (label, cell name, cell options); the scoRNN cell starts from Henaff's
#: initialization as in Helfrich et al. 2018 (lr_orth defaults to lr / 10)
CELLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("scaled Cayley (scoRNN)", "scaled_cayley", {"recurrent_init": "henaff"}),
    ("tanh RNN", "tanh", {}),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lowdisp demo``."""
    parser.add_argument(
        "--out", default="lowdisp-demo", help="output folder (default: ./lowdisp-demo)"
    )
    parser.add_argument("--quick", action="store_true", help="a seconds-long version")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars while training (default: when the output is a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the folder it wrote."""
    from lowdisp.exceptions import UsageError

    if args.seed < 0:
        raise UsageError(f"demo: --seed must be >= 0; got {args.seed}")
    progress = args.progress
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    out = run_demo(args.out, quick=args.quick, seed=args.seed, progress=progress)
    print(out)
    return 0


def run_demo(
    out: str | Path = "lowdisp-demo", *, quick: bool = False, seed: int = 0, progress: bool = False
) -> Path:
    """Run the three stages and return the folder (written atomically file by file).

    Raises
    ------
    lowdisp.exceptions.UsageError
        ``out`` is an existing file (or lies under one), or the folder cannot
        be created or written.
    """
    folder = _output_folder(out)
    import matplotlib

    matplotlib.use("Agg", force=False)
    cfg = DEFAULTS["quick" if quick else "full"]
    report: list[str] = [
        "lowdisp demo",
        f"configuration: {'quick' if quick else 'default'} {cfg}",
        f"seed: {seed}",
        "",
    ]
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    report += _stage_structured(folder, cfg, seed)
    report.append(f"(stage took {time.perf_counter() - t0:.1f} s)\n")
    t0 = time.perf_counter()
    trained, lines = _stage_training(folder, cfg, seed, progress)
    report += lines
    report.append(f"(stage took {time.perf_counter() - t0:.1f} s)\n")
    t0 = time.perf_counter()
    report += _stage_spectra(folder, cfg, trained)
    report.append(f"(stage took {time.perf_counter() - t0:.1f} s)\n")
    report.append(f"total time: {time.perf_counter() - t_all:.1f} s")
    _write_text(folder / "report.txt", "\n".join(report) + "\n")
    return folder


def _output_folder(out: str | Path) -> Path:
    """The resolved output folder, created if missing; user errors as UsageError."""
    from lowdisp.exceptions import UsageError

    if not str(out).strip():
        raise UsageError("demo: --out must name a folder; got an empty string")
    folder = Path(out).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"demo: --out {str(out)!r} is an existing file, not a folder; give a folder "
            "to write the plots and report into (it is created if missing)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"demo: cannot create the output folder {str(folder)!r}: {exc.strerror or exc}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"demo: the output folder {str(folder)!r} is not writable")
    return folder


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _save_figure(fig: Any, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def _time(fn: Any, repeat: int) -> float:
    fn()  # warm-up (and compilation)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


def crossover(sizes: list[int], speedups: list[float]) -> str:
    """The first measured n from which ``t_dense / t_structured`` stays above 1, as text.

    >>> crossover([256, 512, 1024], [0.5, 1.3, 2.0])
    'from n = 512'
    >>> crossover([256, 512, 1024], [0.5, 0.7, 0.9])
    'not below n = 1024 (the largest n timed)'
    """
    first = None
    for n, q in zip(sizes, speedups):
        first = (n if first is None else first) if q > 1.0 else None
    if first is None:
        return f"not below n = {sizes[-1]} (the largest n timed)"
    return f"from n = {first}"


def _stage_structured(folder: Path, cfg: dict[str, Any], seed: int) -> list[str]:
    import matplotlib.pyplot as plt

    import lowdisp.structured as st
    from lowdisp._config import blas_threads

    rng = np.random.default_rng(seed)
    sizes, k, r = cfg["sizes"], cfg["batch"], cfg["rank"]
    times: dict[str, list[float]] = {label: [] for label, _ in FAMILIES}
    times["dense"] = []
    lines = [
        f"1. structured products: M @ X with X of shape (n, {k}), displacement rank {r}, "
        "float64, one thread (BLAS pinned to 1, scipy.fft workers=1), median of 5 "
        "(of 3 from n = 4096)",
        "   n      " + "  ".join(f"{lab:>14}" for lab, _ in FAMILIES) + "           dense",
    ]
    # one buffer for every dense matrix (a contiguous n x n view of its head):
    # touching fresh memory costs more than the products at the largest n
    buffer = rng.random(max(sizes) ** 2)  # the values do not change the time of a GEMM
    with blas_threads(1):
        for n in sizes:
            repeat = 5 if n < 4096 else 3
            X = rng.standard_normal((n, k))
            row = []
            for label, kind in FAMILIES:
                if n > MAX_N.get(label, n):
                    row.append(float("nan"))
                    continue
                M = st.random_ldr(kind, n, r, rng=rng)
                t = _time(lambda M=M, X=X: M @ X, repeat)
                times[label].append(t)
                row.append(t)
                del M
            D = buffer[: n * n].reshape(n, n)
            t = _time(lambda D=D, X=X: D @ X, repeat)
            times["dense"].append(t)
            lines.append(
                f"   {n:<6} "
                + "  ".join(f"{1e3 * v:11.3f} ms" if np.isfinite(v) else f"{'-':>14}" for v in row)
                + f"  {1e3 * t:11.3f} ms"
            )
    for label, cap in MAX_N.items():
        if sizes[-1] > cap:
            lines.append(
                f"   (-: not timed; {label} stops at n = {cap}: its O(r n^2) time grows like "
                "the dense one, so its ratio to dense hardly moves with n; "
                "`lowdisp bench structured --crossover` times it up to n = 32768)"
            )
    lines.append(f"   faster than dense (measured above, batch {k}):")
    for label, _ in FAMILIES:
        m = len(times[label])
        speedups = [d / s for d, s in zip(times["dense"][:m], times[label])]
        lines.append(
            f"     {label:<14} {crossover(sizes[:m], speedups)}; "
            f"dense time / {label} time = {speedups[-1]:.2f} at n = {sizes[m - 1]}"
        )
    lines += [
        "   why LDR-SD and Cauchy-like are slower at small n: dense M @ X is one BLAS GEMM "
        f"over a stored matrix (n^2 x {k} multiply-adds, blocked for the cache and "
        "vectorized), while LDR-SD rebuilds its action from the generators with two "
        f"divide-and-conquer Krylov products of O((k + r) n log^2 n) operations (k = {k} "
        f"columns, r = {r}), done level "
        "by level with FFTs and temporaries (a large constant; at small n it forms M by an "
        "O(n^2) scan and then does the GEMM as well), and Cauchy-like forms each of its n^2 "
        "entries from r generator terms and a division (O(r n^2): the slope of dense with "
        "a larger constant and no BLAS).",
        "   where they win: LDR-SD once n log^2 n is small against n^2 (the crossover "
        "above; the gap widens with n), Cauchy-like not in product time but in memory "
        "(O(r n) instead of n^2 numbers, no matrix formed) and in solves (GKO elimination, "
        "O(r n^2) against the O(n^3) of dense LU); `lowdisp bench structured --crossover` "
        "measures both up to n = 32768 with batches 1, 16 and 64.",
    ]
    del buffer
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    for label, values in times.items():
        style = "k--" if label == "dense" else "o-"
        ax.loglog(sizes[: len(values)], values, style, label=label, ms=4)
    ax.set_xlabel("n (matrix order)")
    ax.set_ylabel("time of M @ X (s)")
    ax.set_title(f"structured M @ X vs dense, X is n x {k}, rank {r}, one thread")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes], rotation=45)
    ax.minorticks_off()
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    _save_figure(fig, folder / "structured_speed.png")
    plt.close(fig)
    lines.append("   plot: structured_speed.png")
    return lines


def _stage_training(
    folder: Path, cfg: dict[str, Any], seed: int, progress: bool
) -> tuple[dict[str, Any], list[str]]:
    import matplotlib.pyplot as plt

    import lowdisp.nn as lnn

    task = lnn.copy_memory(cfg["T"])
    lines = [
        f"2. training on the copy task, T = {cfg['T']}, hidden {cfg['hidden']}, "
        f"at most {cfg['steps']} steps or {cfg['time_limit']:.0f} s per model; "
        f"memoryless baseline {task.baseline:.4f}",
    ]
    trained: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, cell, options in CELLS:
        t0 = time.perf_counter()
        trainer = lnn.train(
            task,
            cell,
            steps=cfg["steps"],
            hidden=cfg["hidden"],
            batch_size=64,
            optimizer="rmsprop",
            lr=1e-3,
            dtype=np.float32,
            rng=seed,
            progress=progress,
            time_limit=cfg["time_limit"],
            cell_options=options,
        )
        wall = time.perf_counter() - t0
        hist = trainer.history
        loss = np.asarray(hist.loss)
        W = lnn.recurrent_matrix(trainer.model)
        trained[label] = W
        final = float(np.mean(loss[-20:]))
        lines.append(
            f"   {label:<24} {len(loss):5d} steps in {wall:6.1f} s, "
            f"final loss {final:.3e} ({100 * final / task.baseline:.2f}% of the baseline)"
        )
        ax.plot(np.arange(1, len(loss) + 1), loss, label=label, lw=1)
    ax.axhline(task.baseline, color="k", ls="--", lw=1, label="memoryless baseline")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy of the batch (log scale)")
    ax.set_yscale("log")
    ax.set_title(f"copy task, T = {cfg['T']}, hidden {cfg['hidden']}: training loss")
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.legend(loc="lower left")
    _save_figure(fig, folder / "training.png")
    plt.close(fig)
    lines.append("   plot: training.png")
    return trained, lines


def shared_levels(
    sigmas: list[np.ndarray], width: float, step: float, *, max_levels: int = 7
) -> np.ndarray:
    """log10 epsilon levels common to several grids of sigma_min.

    From the smallest sigma_min of all grids (but not below a third of the grid
    ``step``: smaller discs around eigenvalues fall between grid points) up to
    a fifth of the grid's ``width`` (larger epsilon fill the picture), in steps
    of 0.25, 0.5 or 1 decade.

    >>> shared_levels([np.array([1e-3, 1.0]), np.array([1e-2, 10.0])], 5.0, 1e-4).tolist()
    [-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0]
    >>> shared_levels([np.array([1e-3, 1.0])], 5.0, 0.03).tolist()  # no level below 0.01
    [-2.0, -1.5, -1.0, -0.5, 0.0]
    """
    logs = np.concatenate([np.log10(s[np.isfinite(s) & (s > 0)]).ravel() for s in sigmas])
    hi = min(float(logs.max()), float(np.log10(0.2 * width)))
    lo = max(float(logs.min()), float(np.log10(step / 3.0)), hi - 4.0)
    for step in (0.25, 0.5, 1.0):
        levels = np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)
        if levels.size <= max_levels:
            break
    levels = levels[-max_levels:]
    return np.round(levels, 10) if levels.size else np.array([np.floor(hi)])


def _shared_grid(eigenvalues: list[np.ndarray], npts: int) -> tuple[np.ndarray, np.ndarray]:
    """One grid, with equal spacing on both axes, around all spectra and the unit circle."""
    ev = np.concatenate(eigenvalues)
    reach = max(1.0, float(np.abs(ev).max()))
    pad = 0.3 * reach
    x0 = min(float(ev.real.min()), -1.0) - pad
    x1 = max(float(ev.real.max()), 1.0) + pad
    y1 = max(float(np.abs(ev.imag).max()), 1.0) + pad  # real matrices: symmetric about the axis
    h = max(x1 - x0, 2 * y1) / (npts - 1)
    re = np.linspace(x0, x1, round((x1 - x0) / h) + 1)
    im = np.linspace(-y1, y1, round(2 * y1 / h) + 1)
    return re, im


#: one sentence per measure printed in stage 3
MEASURES = (
    "||W||_2  spectral norm, the largest singular value: the most one step h -> W h can "
    "stretch a hidden state (or W^T a back-propagated gradient).",
    "rho(W)   spectral radius, the largest |eigenvalue|: ||W^k||^(1/k) -> rho(W), so the "
    "powers of W eventually grow if rho(W) > 1 and decay if rho(W) < 1.",
    "dep(W)   Henrici's departure from normality sqrt(||W||_F^2 - sum |lambda_i|^2): 0 "
    "exactly when W is normal (orthogonal W is), and the larger it is the less the "
    "eigenvalues alone say about ||W^k||.",
    "dep rel  dep(W) / ||W||_F, the same on a scale-free range from 0 (normal) to 1.",
    "eps-pseudospectrum  the z with sigma_min(zI - W) <= eps, i.e. the eigenvalues of all "
    "W + E with ||E||_2 <= eps: discs of radius eps around the eigenvalues when W is "
    "normal, larger regions when it is not; one reaching past the unit circle means "
    "||W^k|| can grow for a while even when rho(W) < 1.",
)


def _stage_spectra(folder: Path, cfg: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    import matplotlib.pyplot as plt
    from matplotlib.contour import ContourSet

    import lowdisp.spectral as sp

    lines = [
        "3. spectra of the trained recurrent matrices",
        f"   {'model':<24} {'||W||_2':>9} {'rho(W)':>9} {'dep(W)':>9} {'dep rel':>9}",
    ]
    eigenvalues = {
        label: np.linalg.eigvals(np.asarray(W, np.float64)) for label, W in trained.items()
    }
    re, im = _shared_grid(list(eigenvalues.values()), cfg["npts"])
    # sigma_min to ~2 % (tol 1e-3) is 0.01 decade: invisible between contours 0.25
    # decades apart, and twice as fast as the default on an orthogonal W (tied
    # singular values slow inverse Lanczos down)
    spectra = {label: sp.pseudospectra(W, re=re, im=im, tol=1e-3) for label, W in trained.items()}
    width = float(max(re[-1] - re[0], im[-1] - im[0]))
    levels = shared_levels([ps.sigma_min for ps in spectra.values()], width, float(re[1] - re[0]))
    fig, axes = plt.subplots(
        1, len(trained), figsize=(5.2 * len(trained) + 1.2, 5.4), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    angle = np.linspace(0.0, 2.0 * np.pi, 400)
    cs = None
    for ax, (label, W) in zip(axes, trained.items()):
        norm = sp.spectral_norm(W).value
        rho = float(np.abs(eigenvalues[label]).max())
        dep = sp.departure_from_normality(W)
        dep_rel = sp.departure_from_normality(W, relative=True)
        lines.append(f"   {label:<24} {norm:9.4f} {rho:9.4f} {dep:9.4f} {dep_rel:9.4f}")
        spectra[label].plot(eps=10.0**levels, ax=ax, colorbar=False, cmap="turbo")
        ax.plot(np.cos(angle), np.sin(angle), color="0.3", ls=":", lw=1.2, label="unit circle")
        ax.set_title(
            f"{label}: ε-pseudospectra\n‖W‖₂ = {norm:.3f}, ρ(W) = {rho:.3f}, "
            f"relative departure {dep_rel:.2f}",
            fontsize="medium",
        )
        cs = next((c for c in ax.collections if isinstance(c, ContourSet)), cs)
    if cs is not None and levels.size > 1:
        cb = fig.colorbar(cs, ax=list(axes), shrink=0.8, pad=0.02)
        cb.set_label("log10 ε, contours σ_min(zI − W) = ε (shared)")
    axes[0].legend(loc="lower left", fontsize="small", framealpha=0.9)
    _save_figure(fig, folder / "pseudospectra.png")
    plt.close(fig)
    lines.append(
        f"   grid: {re.size} x {im.size} points on [{re[0]:.2f}, {re[-1]:.2f}] x "
        f"[{im[0]:.2f}, {im[-1]:.2f}]i for both, sigma_min to ~2 % (tol 1e-3); "
        f"eps = 10^({', '.join(f'{v:g}' for v in levels)})"
    )
    lines.append("   what each measure says:")
    lines += [f"     {m}" for m in MEASURES]
    lines.append("   plot: pseudospectra.png")
    return lines
