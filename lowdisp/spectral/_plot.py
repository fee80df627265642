"""Drawing of pseudospectra, numerical ranges and transients (private).

These functions draw computed results (:class:`Pseudospectra`,
:class:`TransientGrowth`, a numerical-range boundary) and import nothing
from the modules that compute them: the public ``plot_*`` functions live
next to their result classes (``_pseudo``, ``_nonnormal``), validate, compute
when handed a matrix, and call these. matplotlib is imported inside each
function, so importing lowdisp.spectral never imports it. The functions draw
on ``ax`` (a new figure's axes when omitted) and return the Axes; they never
call ``plt.show()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "auto_levels",
    "check_cmap",
    "draw_numerical_range",
    "draw_pseudospectra",
    "draw_transient",
    "eps_levels",
]


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    # constrained layout keeps long tick labels and colorbars inside the figure
    _, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    return ax


def auto_levels(sigma_min: np.ndarray, width: float, *, max_levels: int = 8) -> np.ndarray:
    """Up to ``max_levels`` ε levels (log10) in nice decade steps, as EigTool chooses them.

    The top level is at most log10 of a tenth of the grid's width (larger ε
    fill the picture); the steps are 0.1, 0.2, 0.25, 0.5, 1, 2 or 5 decades.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral._plot import auto_levels
    >>> auto_levels(np.logspace(-8, 0, 50), 10.0).tolist()
    [-7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0]
    """
    logs = np.log10(sigma_min[np.isfinite(sigma_min) & (sigma_min > 0)])
    if logs.size == 0:
        return np.array([-1.0])
    hi = min(float(logs.max()), math.log10(max(0.1 * width, 1e-300)))
    lo = float(logs.min())
    if hi <= lo:
        return np.array([hi])
    for step in (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        first = math.ceil(lo / step - 1e-9) * step
        levels = np.arange(first, hi + 1e-9 * step, step)
        if levels.size <= max_levels + 1:
            break
    levels = levels[-max_levels:]
    return np.round(levels, 10) if levels.size else np.array([hi])


def eps_levels(eps: Any, *, where: str) -> np.ndarray:
    """log10 of the sorted ε levels: one ε > 0 or a non-empty sequence of them."""
    from lowdisp.spectral._common import check_eps

    if isinstance(eps, str | bytes | bool | np.bool_):
        raise TypeError(f"{where}: eps must be a number > 0 or a sequence of them; got {eps!r}")
    if np.ndim(eps) == 0:
        vals = [check_eps(eps, where=where)]
    else:
        try:
            items = list(np.asarray(eps, dtype=object).ravel())
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{where}: eps must be a sequence of numbers; got {eps!r}") from exc
        if not items:
            raise ValueError(f"{where}: eps must hold at least one level; got {eps!r}")
        vals = [check_eps(v, where=where) for v in items]
    return np.log10(np.sort(np.asarray(vals, dtype=float)))


def check_cmap(cmap: Any, *, where: str) -> str:
    """A matplotlib colormap name (matplotlib imported here, lazily)."""
    if not isinstance(cmap, str):
        raise TypeError(f"{where}: cmap must be a colormap name (str); got {cmap!r}")
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise ValueError(
            f"{where}: unknown cmap {cmap!r}; use a name from matplotlib.colormaps (e.g. 'viridis')"
        )
    return cmap


def draw_pseudospectra(
    ps: Any, levels: np.ndarray | None, *, ax: Any, colorbar: bool, cmap: str
) -> Any:
    """Contours of log10 σ_min of a computed :class:`Pseudospectra` at ``levels``
    (log10 ε; automatic when None), with the eigenvalues inside the grid."""
    if ps.re.size < 2 or ps.im.size < 2:
        raise ValueError(
            "plot_pseudospectra: the grid needs at least 2 points per side to draw contours; "
            f"got {ps.re.size} x {ps.im.size}"
        )
    width = float(max(ps.re[-1] - ps.re[0], ps.im[-1] - ps.im[0]))
    levels = auto_levels(ps.sigma_min, width) if levels is None else levels
    ax = _axes(ax)
    L = np.log10(ps.sigma_min)
    if levels.size == 1:
        cs = ax.contour(ps.re, ps.im, L, levels=levels, colors="C0")
    else:
        cs = ax.contour(ps.re, ps.im, L, levels=levels, cmap=cmap)
    ev = ps.eigenvalues
    inside = (
        (ev.real >= ps.re[0])
        & (ev.real <= ps.re[-1])
        & (ev.imag >= ps.im[0])
        & (ev.imag <= ps.im[-1])
    )
    ax.plot(ev.real[inside], ev.imag[inside], "k.", ms=4, label="eigenvalues")
    ax.set_xlabel("Re z")
    ax.set_ylabel("Im z")
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(ps.re[0], ps.re[-1])
    ax.set_ylim(ps.im[0], ps.im[-1])
    if colorbar and levels.size > 1:
        cb = ax.figure.colorbar(cs, ax=ax)
        cb.set_label("log10 ε")
    ax.set_title("ε-pseudospectra: σ_min(zI − A) = ε")
    return ax


def draw_numerical_range(w: np.ndarray, ev: np.ndarray | None, *, ax: Any) -> Any:
    """The boundary points ``w`` of a numerical range (closed up), and eigenvalues ``ev``."""
    ax = _axes(ax)
    wc = np.append(w, w[0])
    ax.plot(wc.real, wc.imag, "-", color="C1", label="boundary of W(A)")
    if ev is not None:
        ax.plot(ev.real, ev.imag, "k.", ms=4, label="eigenvalues")
    ax.set_xlabel("Re z")
    ax.set_ylabel("Im z")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("numerical range")
    ax.legend(loc="best", fontsize="small")
    return ax


#: curves whose max/min is below this are drawn on a linear axis (a log axis
#: would label every tick 1×10^0)
_FLAT = 2.0


def _flat_axis(ax: Any, lo: float, hi: float) -> None:
    """A linear y axis labelled relative to a round centre: ``1``, ``1 + 5e-08``, ..."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    mid = 0.5 * (lo + hi)
    c = 1.0 if abs(mid - 1.0) < 0.5 else float(f"{mid:.2g}")
    span = max(hi - lo, 1e-15 * max(abs(c), 1e-300))
    ax.set_yscale("linear")
    ax.set_ylim(lo - 0.08 * span, hi + 0.08 * span)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6))

    def label(v: float, _pos: Any = None) -> str:
        d = v - c
        if abs(d) <= 1e-3 * span:
            return f"{c:g}"
        return f"{c:g} {'+' if d > 0 else '−'} {abs(d):.3g}"

    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, p=None: ""))


def draw_transient(tg: Any, *, ax: Any) -> Any:
    """Semilog plot of a computed :class:`TransientGrowth`: ‖A^k‖₂, the resolvent
    lower bounds and the Kreiss bounds (a nearly flat curve on a linear axis)."""
    ax = _axes(ax)
    ax.semilogy(tg.k, tg.norms, "o-", ms=3, color="C0", label="‖A^k‖₂")
    ax.semilogy(tg.k, tg.lower_bounds, "--", color="C3", label="resolvent lower bound on max_{j≤k}")
    K = tg.kreiss
    if np.isfinite(K.value):
        ax.axhline(K.value, color="C2", ls=":", label=f"Kreiss K ≥ {K.value:.3g}")
        ax.axhline(K.transient_upper_bound, color="C7", ls=":", label="e·n·K")
    ax.set_xlabel("k")
    ax.set_ylabel("‖A^k‖₂")
    vals = [tg.norms, tg.lower_bounds]
    if np.isfinite(K.value):
        vals.append(np.array([K.value, K.transient_upper_bound]))
    data = np.concatenate(vals)
    data = data[np.isfinite(data) & (data > 0)]
    if data.size and data.max() < _FLAT * data.min():
        _flat_axis(ax, float(data.min()), float(data.max()))
    ax.set_title("transient growth")
    ax.legend(loc="best", fontsize="small")
    return ax
