"""``lowdisp pseudospectra``: the pure-spectral part (matrix files, measures, report).

Reads ``.npy``, ``.npz`` (``--key`` picks the array) or text (``.txt``,
``.csv``, ``.dat``: whitespace- or comma-separated rows) with
``allow_pickle=False``, computes the chosen *measures* (:data:`MEASURES`),
writes a PNG of the pseudospectra and a text report, and prints the report.
Each measure prints one line with its time on stderr; the grid shows a tqdm
bar. Checkpoints and run folders are resolved by ``lowdisp._pseudospectra_cli``
(which may import ``lowdisp.nn``; this module may not) and handed to
:func:`run_matrix`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowdisp._cliargs import int_at_least, number_in
from lowdisp.exceptions import UsageError

__all__ = [
    "DEFAULT_MEASURES",
    "GRID_TOL",
    "MEASURES",
    "Report",
    "add_arguments",
    "compute",
    "default_npts",
    "load_matrix",
    "parse_measures",
    "power_statement",
    "run",
    "run_matrix",
    "summary",
]

#: measure name -> what it computes (the order is the order of computation)
MEASURES: dict[str, str] = {
    "basic": "‖A‖₂, ρ(A), α(A), numerical abscissa ω(A), departure from normality",
    "grid": "σ_min(zI − A) on a grid and its contour plot (PNG)",
    "radius": "pseudospectral radius ρ_ε (criss-cross)",
    "abscissa": "pseudospectral abscissa α_ε (criss-cross)",
    "numradius": "numerical radius r(A)",
    "kreiss": "Kreiss constant (discrete) and the Kreiss-matrix-theorem bounds",
}
#: relative accuracy of the grid's σ_min in the command (a picture: contours of
#: log10 σ_min do not move visibly; an orthogonal W at n = 512 takes 3 s instead of 15 s)
GRID_TOL = 1e-3
#: the default: cheap at n = 1500 (the grid and ρ_ε dominate). ρ_ε, not α_ε:
#: recurrent matrices are iterated (powers W^k), so the discrete measure is the one
DEFAULT_MEASURES: tuple[str, ...] = ("basic", "grid", "radius")


def parse_measures(text: str | None) -> tuple[str, ...]:
    """Measure names from ``"grid,radius"`` / ``"all"`` (None: :data:`DEFAULT_MEASURES`).

    Raises
    ------
    UsageError
        An unknown name (the message lists the valid ones) or an empty list.

    Examples
    --------
    >>> from lowdisp.spectral._cli import MEASURES, parse_measures
    >>> parse_measures("radius, grid")
    ('grid', 'radius')
    >>> parse_measures("all") == tuple(MEASURES)
    True
    """
    if text is None:
        return DEFAULT_MEASURES
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if not names:
        raise UsageError(f"pseudospectra: --measures is empty; valid: all, {', '.join(MEASURES)}")
    if "all" in names:
        return tuple(MEASURES)
    bad = [t for t in names if t not in MEASURES]
    if bad:
        raise UsageError(
            f"pseudospectra: unknown measure {bad[0]!r} in --measures; valid: all, "
            f"{', '.join(MEASURES)}"
        )
    return tuple(m for m in MEASURES if m in names)


def default_npts(n: int) -> int:
    """Grid points per side when ``--npts`` is not given: 100 up to n = 300, then
    ≈ 30000/n (at least 40), so the grid's cost stays roughly flat in n.

    Examples
    --------
    >>> from lowdisp.spectral._cli import default_npts
    >>> default_npts(100), default_npts(512), default_npts(1500)
    (100, 59, 40)
    """
    return int(min(100, max(40, round(30000 / max(int(n), 1)))))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lowdisp pseudospectra`` for a matrix file (see also --param)."""
    parser.add_argument(
        "file",
        help="matrix file (.npy, .npz or text .txt/.csv/.dat), a lowdisp checkpoint (.npz) "
        "or a run folder",
    )
    parser.add_argument(
        "--key", default=None, help="array name inside a plain .npz file (default: its only array)"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output PNG; the report goes next to it as .txt (default: "
        "<stem>_pseudospectra.png beside a matrix file, <stem>_<param>_pseudospectra.png "
        "beside a checkpoint, pseudospectra_<param>.png inside a run folder)",
    )
    parser.add_argument(
        "--measures",
        default=None,
        help=f"comma-separated measures, or 'all' (default: {','.join(DEFAULT_MEASURES)}); "
        + "; ".join(f"{k}: {v}" for k, v in MEASURES.items()),
    )
    parser.add_argument(
        "--npts",
        type=int_at_least(2),
        default=None,
        help="grid points per side (default: 100 up to n = 300, then 30000/n, at least 40)",
    )
    parser.add_argument(
        "--grid-tol",
        type=number_in(0, 1),
        default=GRID_TOL,
        help=f"relative accuracy of σ_min on the grid (default: {GRID_TOL:g}: well below "
        "what a contour plot shows; 1e-6 is 2-5x slower, most on near-normal matrices)",
    )
    parser.add_argument(
        "--eps",
        type=number_in(0, None),
        default=None,
        help="ε for the pseudospectral abscissa/radius (default: 1e-2·‖A‖₂)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="grid progress bar and a start and a timing line per measure on stderr (default: on)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def load_matrix(path: str | Path, key: str | None = None) -> np.ndarray:
    """Load a matrix from .npy/.npz/text with ``allow_pickle=False``.

    Raises
    ------
    UsageError
        Missing file, unknown extension, missing or ambiguous ``key``,
        unreadable file.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from lowdisp.spectral._cli import load_matrix
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.npy"); np.save(p, np.eye(2))
    >>> load_matrix(p).shape
    (2, 2)
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"pseudospectra: no such file: {p}")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz", ".txt", ".csv", ".dat"):
        raise UsageError(
            f"pseudospectra: unsupported file type {suffix!r}; use .npy, .npz, .txt, .csv "
            f"or .dat, a lowdisp checkpoint or a run folder"
        )
    names: list[str] = []
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as data:
                names = list(data.files)
                chosen = key if key is not None else (names[0] if len(names) == 1 else None)
                arr = data[chosen] if chosen in names else None
        else:
            delim = "," if suffix == ".csv" else None
            try:
                arr = np.loadtxt(p, delimiter=delim, ndmin=2)
            except ValueError:
                arr = np.loadtxt(p, delimiter=delim, ndmin=2, dtype=complex)
    except Exception as exc:  # corrupt files, pickled objects, bad text, ...
        raise UsageError(f"pseudospectra: cannot read {p}: {exc}") from exc
    if suffix == ".npz" and arr is None:
        if key is None:
            raise UsageError(
                f"pseudospectra: {p.name} holds {len(names)} arrays ({', '.join(names)}); "
                f"choose one with --key"
            )
        raise UsageError(
            f"pseudospectra: no array {key!r} in {p.name}; available: {', '.join(names)}"
        )
    return np.asarray(arr)


def power_statement(rho: float, dtype: Any) -> str:
    """What ρ(A) says about the powers of A, with ρ ≈ 1 judged against the input's rounding.

    ``dtype`` is the dtype of the entries as given (float32 matrices are
    analysed in float64, so an orthogonal float32 matrix has ρ = 1 + O(1e-7)).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral._cli import power_statement
    >>> print(power_statement(1 + 8.7e-8, np.float32))  # doctest: +NORMALIZE_WHITESPACE
    ρ(A) = 1 + 8.7e-08, within 1 float32 ulp of 1 (1.2e-07): rounding of the float32
    entries decides it; as computed in float64 from them, powers grow without bound (by a
    factor e only after about 1/(ρ − 1) = 1.1e+07 steps) and the Kreiss constant is
    infinite for this matrix
    >>> print(power_statement(0.5, np.float64))
    ρ(A) = 0.5 < 1: powers decay eventually (A^k → 0); transients are bounded by the Kreiss constant
    """
    dt = np.dtype(dtype)
    ulp = float(np.finfo(dt).eps) if dt.kind in "fc" else float(np.finfo(np.float64).eps)
    name = (
        str(np.finfo(dt).dtype) if dt.kind in "fc" else "float64"
    )  # complex64 -> float32 rounding
    d = rho - 1.0
    few = abs(d) <= 4 * ulp
    nulp = max(1, math.ceil(abs(d) / ulp)) if d != 0 else 0
    low = dt.itemsize < 8 or dt == np.complex64
    src = f" (computed in float64 from {dt} entries)" if low else ""
    if d == 0:
        return (
            f"ρ(A) = 1 exactly: powers neither grow nor decay exponentially; A is power "
            f"bounded iff the Kreiss constant is finite{src}"
        )
    sign = "+" if d > 0 else "-"
    head = f"ρ(A) = 1 {sign} {abs(d):.2g}"
    if few:
        near = f", within {nulp} {name} ulp{'s' if nulp > 1 else ''} of 1 ({ulp:.2g})"
        if low:
            how = f"rounding of the {name} entries decides it; as computed in float64 from them,"
        else:
            how = "rounding decides it; as computed,"
        if d > 0:
            return (
                f"{head}{near}: {how} powers grow without bound (by a factor e only after "
                f"about 1/(ρ − 1) = {1 / d:.2g} steps) and the Kreiss constant is infinite "
                f"for this matrix"
            )
        return (
            f"{head}{near}: {how} powers decay, but only after about {1 / abs(d):.2g} steps; "
            f"treat A as neutrally stable"
        )
    if d > 0:
        return (
            f"{head} > 1: powers grow without bound (‖A^k‖ ≥ ρ(A)^k); the Kreiss constant is "
            f"infinite{src}"
        )
    return (
        f"ρ(A) = {rho:.6g} < 1: powers decay eventually (A^k → 0); transients are bounded by "
        f"the Kreiss constant{src}"
    )


@dataclass
class Report:
    """Lines of the text report, the numbers behind them, the grid and the timings."""

    lines: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    grid: Any = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def compute(
    A: Any,
    *,
    measures: tuple[str, ...] = DEFAULT_MEASURES,
    eps: float | None = None,
    npts: int | None = None,
    grid_tol: float = GRID_TOL,
    rng: Any = 0,
    progress: bool = False,
    log: Any = None,
    name: str | None = None,
) -> Report:
    """Compute the chosen measures of A; a :class:`Report`.

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
    measures : tuple of str
        Names from :data:`MEASURES`.
    eps : float, optional
        ε of the pseudospectral abscissa/radius (default 1e-2·‖A‖₂).
    npts : int, optional
        Grid points per side (default :func:`default_npts`).
    grid_tol : float
        Relative accuracy of σ_min on the grid (default :data:`GRID_TOL`).
    rng : optional
        Seed of the random start vectors.
    progress : bool
        A tqdm bar over the grid points (stderr).
    log : callable, optional
        Called with one line when a measure starts and one when it ends (with
        its time), e.g. ``print`` to stderr.
    name : str, optional
        What the matrix is (a parameter name), for the first line.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral._cli import compute
    >>> r = compute(np.array([[0.5, 2.0], [0.0, 0.5]]), measures=("basic", "kreiss"))
    >>> "Kreiss" in r.text and r.values["spectral_radius"] == 0.5
    True
    """
    from lowdisp._config import blas_threads
    from lowdisp._validation import ldexp, unit_scale
    from lowdisp.spectral._common import as_dense_square, complex_schur, safe_norm
    from lowdisp.spectral._crisscross import pseudospectral_abscissa, pseudospectral_radius
    from lowdisp.spectral._nonnormal import kreiss_constant, numerical_radius
    from lowdisp.spectral._norm import spectral_norm
    from lowdisp.spectral._pseudo import pseudospectra

    dtype = getattr(A, "dtype", None)
    dtype = np.asarray(A).dtype if dtype is None else np.dtype(dtype)
    M = as_dense_square(A, "A", where="pseudospectra")
    n = M.shape[0]
    rep = Report()
    what = f" {name}" if name else ""
    rep.lines.append(f"matrix{what:<21}{n} x {n} ({np.dtype(dtype)})")
    say = log if log is not None else (lambda _line: None)

    def timed(key: str, label: str, fn: Any) -> Any:
        say(f"pseudospectra: {label} ...")
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        rep.timings[key] = dt
        say(f"pseudospectra: {label} {dt:.1f} s")
        return out

    nrm: float | None = None

    def norm2() -> float:
        nonlocal nrm
        if nrm is None:
            nrm = float(spectral_norm(M, rng=rng).value)
        return nrm

    if "basic" in measures:

        def basic() -> None:
            with blas_threads(1):
                # the routines below work on the same unit-scaled copy: one cached Schur form
                Ms, e = unit_scale(M)
                T, _ = complex_schur(Ms)
                lam = ldexp(np.diag(T), e)
                dep = float(ldexp(np.float64(safe_norm(np.triu(T, 1))), e))
                omega = float(ldexp(np.linalg.eigvalsh(0.5 * (Ms + Ms.conj().T))[-1], e))
            rho = float(np.abs(lam).max())
            rel = dep / max(safe_norm(M), 1e-300)
            rep.values.update(
                spectral_norm=norm2(),
                spectral_radius=rho,
                spectral_abscissa=float(lam.real.max()),
                numerical_abscissa=omega,
                departure=dep,
            )
            rep.lines += [
                f"spectral norm ‖A‖₂         {norm2():.10g}",
                f"spectral radius ρ(A)       {rho:.10g}",
                f"  {power_statement(rho, dtype)}",
                f"spectral abscissa α(A)     {float(lam.real.max()):.10g}",
                f"numerical abscissa ω(A)    {omega:.10g}",
                f"departure from normality   {dep:.6g} (relative {rel:.4g})",
            ]

        timed("basic", "norm, spectrum, ω(A), departure", basic)
    if "grid" in measures:
        pts = default_npts(n) if npts is None else int(npts)
        rep.grid = timed(
            "grid",
            f"grid {pts} x {pts}",
            lambda: pseudospectra(M, npts=pts, tol=grid_tol, rng=rng, progress=progress),
        )
    e: float | None = None
    if "radius" in measures or "abscissa" in measures:
        e = eps if eps is not None else 1e-2 * max(norm2(), np.finfo(float).tiny)
    if "abscissa" in measures:
        assert e is not None
        pa = timed(
            "abscissa",
            "pseudospectral abscissa",
            lambda: pseudospectral_abscissa(M, e, rng=rng),
        )
        rep.values["pseudospectral_abscissa"] = pa.value
        rep.lines.append(
            f"pseudospectral abscissa    α_ε = {pa.value:.10g} at z = {pa.maximizer:.6g} "
            f"(ε = {e:.3g})"
        )
    if "radius" in measures:
        assert e is not None
        pr = timed("radius", "pseudospectral radius", lambda: pseudospectral_radius(M, e, rng=rng))
        rep.values["pseudospectral_radius"] = pr.value
        rep.lines.append(
            f"pseudospectral radius      ρ_ε = {pr.value:.10g} at z = {pr.maximizer:.6g} "
            f"(ε = {e:.3g})"
        )
    if "numradius" in measures:
        r = timed("numradius", "numerical radius", lambda: numerical_radius(M, rng=rng))
        rep.values["numerical_radius"] = r
        rep.lines.append(f"numerical radius r(A)      {r:.10g}")
    if "kreiss" in measures:
        K = timed("kreiss", "Kreiss constant", lambda: kreiss_constant(M, rng=rng))
        rep.values["kreiss"] = K.value
        rep.lines += _kreiss_lines(K, M, dtype)
    return rep


def _kreiss_lines(K: Any, M: np.ndarray, dtype: Any) -> list[str]:
    """The Kreiss constant and its bounds, or why it is infinite (never ``inf ≤ … = inf``)."""
    if math.isfinite(K.value):
        at_infinity = K.maximizer is None or K.value <= 1 + 1e-12
        where = " (the limit |z| → ∞)" if at_infinity else f" at z = {K.maximizer:.6g}"
        return [
            f"Kreiss constant (discrete) K ≥ {K.value:.6g}{where}",
            f"Kreiss bounds              {K.value:.6g} ≤ sup_k ‖A^k‖ ≤ e·n·K = "
            f"{K.transient_upper_bound:.6g}",
        ]
    dt = np.dtype(dtype)
    rho = float(np.abs(np.linalg.eigvals(M)).max())
    d = rho - 1.0
    if d > 0:
        text = (
            f"Kreiss constant (discrete) K = ∞ for this matrix: ρ(A) = 1 + {d:.2g} > 1, so "
            f"‖A^k‖ ≥ ρ(A)^k grows without bound and no Kreiss bound applies"
        )
    else:
        text = (
            "Kreiss constant (discrete) K = ∞ to working precision: σ_min(zI − A) underflows "
            f"near the unit circle (ρ(A) = {rho:.10g})"
        )
    if dt.itemsize < 8 or dt == np.complex64:
        ulp = float(np.finfo(dt).eps)
        text += f" (computed in float64 from {dt} entries"
        if abs(d) <= 4 * ulp:
            k = max(1, math.ceil(abs(d) / ulp))
            text += f"; ρ(A) is within {k} {np.finfo(dt).dtype} ulp{'s' if k > 1 else ''} of 1"
        text += ")"
    return [text]


def summary(A: Any, *, eps: float | None = None, rng: Any = 0) -> str:
    """A short text report of every measure except the grid (see :func:`compute`).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral._cli import summary
    >>> "Kreiss" in summary(np.array([[0.5, 2.0], [0.0, 0.5]]))
    True
    """
    measures = tuple(m for m in MEASURES if m != "grid")
    return compute(A, measures=measures, eps=eps, rng=rng).text


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_matrix(
    A: Any,
    args: argparse.Namespace,
    *,
    default_out: Path,
    name: str | None = None,
) -> int:
    """Compute, plot and write the report of one matrix under the parsed ``args``.

    Raises
    ------
    UsageError
        A bad matrix (not square, not finite, empty), bad measures, an
        output folder that does not exist.
    """
    measures = parse_measures(getattr(args, "measures", None))
    out = Path(args.out) if args.out else default_out
    if out.suffix.lower() != ".png":
        raise UsageError(f"pseudospectra: --out must name a .png file; got {str(out)!r}")
    if not out.parent.is_dir():
        raise UsageError(
            f"pseudospectra: cannot write {out}: the folder {out.parent} does not exist"
        )
    show = bool(getattr(args, "progress", False))
    try:
        rep = compute(
            A,
            measures=measures,
            eps=args.eps,
            npts=args.npts,
            grid_tol=getattr(args, "grid_tol", GRID_TOL),
            rng=args.seed,
            progress=show,
            log=_stderr if show else None,
            name=name,
        )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(str(exc)) from exc
    written = []
    if rep.grid is not None:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from lowdisp.spectral._pseudo import plot_pseudospectra

        ax = plot_pseudospectra(rep.grid)
        if name:
            ax.set_title(f"ε-pseudospectra of {name}")
        try:
            ax.figure.savefig(out, dpi=120, bbox_inches="tight")
        except OSError as exc:
            raise UsageError(f"pseudospectra: cannot write {out}: {exc}") from exc
        finally:
            plt.close(ax.figure)
        written.append(f"plot    {out}")
    report = out.with_suffix(".txt")
    try:
        report.write_text(rep.text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"pseudospectra: cannot write {report}: {exc}") from exc
    written.append(f"summary {report}")
    print(rep.text)
    print("\n".join(written))
    return 0


def run(args: argparse.Namespace) -> int:
    """``lowdisp pseudospectra FILE`` for a matrix file (no checkpoints: see the module doc)."""
    A = load_matrix(args.file, args.key)
    default_out = Path(args.file).with_name(Path(args.file).stem + "_pseudospectra.png")
    return run_matrix(A, args, default_out=default_out)
