"""``History``: what happened during training (per-step loss, evaluations, records).

Its own module so that the trainer and the checkpoint reader both use it without
importing each other.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp._validation import check_int

__all__ = ["History"]


@dataclass
class History:
    """What happened during training: per-step loss and gradient norm, evaluations,
    and records added by callbacks.

    Attributes
    ----------
    step, loss, grad_norm, time : list
        One entry per optimizer step (``time`` is seconds since the first
        ``fit``, summed over resumed runs).
    evals : list of dict
        ``{"step": s, "loss": ..., metrics...}`` from :meth:`Trainer.evaluate`.
    records : list of dict
        ``{"step": s, name: value, ...}`` from callbacks.
    baseline : float
        The task's baseline loss.

    Examples
    --------
    >>> from lowdisp.nn import History
    >>> h = History(baseline=1.0)
    >>> h.append(1, 0.5, 2.0, 0.01)
    >>> h.to_csv().splitlines()[0]
    'step,loss,grad_norm,time'
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    baseline: float = float("nan")

    def append(self, step: int, loss: float, grad_norm: float, t: float) -> None:
        """Record one optimizer step."""
        self.step.append(int(step))
        self.loss.append(float(loss))
        self.grad_norm.append(float(grad_norm))
        self.time.append(float(t))

    def to_dict(self) -> dict:
        """A JSON-serializable dict."""
        return {
            "step": self.step,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "time": self.time,
            "evals": self.evals,
            "records": self.records,
            "baseline": self.baseline,
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping):
            raise TypeError(f"History.from_dict: d must be a dict; got {type(d).__name__}")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_json(self) -> str:
        """The history as JSON text."""
        return json.dumps(self.to_dict(), default=_json_default)

    def to_csv(self) -> str:
        """Per-step columns ``step, loss, grad_norm, time`` as CSV text."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "loss", "grad_norm", "time"])
        for row in zip(self.step, self.loss, self.grad_norm, self.time):
            w.writerow([row[0], repr(row[1]), repr(row[2]), f"{row[3]:.6f}"])
        return buf.getvalue()

    def smoothed_loss(self, window: int = 50) -> np.ndarray:
        """Running mean of the loss over ``window >= 1`` steps (shorter at the start)."""
        window = check_int(window, "window", where="History.smoothed_loss", low=1)
        x = np.asarray(self.loss, dtype=np.float64)
        if x.size == 0:
            return x
        c = np.cumsum(np.insert(x, 0, 0.0))
        idx = np.arange(1, x.size + 1)
        lo = np.maximum(idx - window, 0)
        return (c[idx] - c[lo]) / (idx - lo)

    def plot(self, ax: Any = None, *, label: str | None = None, window: int = 50) -> Any:
        """Plot the (smoothed) training loss, the evaluations and the baseline.

        The y-axis is logarithmic when every loss is positive. Returns the
        matplotlib Axes (matplotlib is imported here, not at import).
        """
        window = check_int(window, "window", where="History.plot", low=1)
        if label is not None and not isinstance(label, str):
            raise TypeError(f"History.plot: label must be None or a str; got {label!r}")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        (line,) = ax.plot(self.step, self.smoothed_loss(window), label=label or "train loss")
        if self.evals:
            ax.plot(
                [e["step"] for e in self.evals],
                [e["loss"] for e in self.evals],
                "o",
                color=line.get_color(),
                ms=3,
            )
        if np.isfinite(self.baseline):
            ax.axhline(self.baseline, color="k", ls="--", lw=1, label="baseline")
        values = np.concatenate(
            [np.asarray(self.loss, dtype=float), [e["loss"] for e in self.evals]]
        )
        if values.size and np.all(values > 0):
            ax.set_yscale("log")  # losses fall over decades; a linear axis looks flat
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
        return ax


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
