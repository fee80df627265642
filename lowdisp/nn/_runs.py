"""Weights out of models, checkpoints and run folders; snapshots along training; run analysis.

A *run folder* is what ``lowdisp train`` writes (see ``docs/cli.md``)::

    RUN_DIR/
      run.json              run-level settings (target steps, cadences, the flags)
      checkpoint.npz        full trainer state with its specification (resumable)
      history.csv/.json     per-step loss and gradient norm, evaluations
      summary.json          final evaluation, wall time, settings
      weights.npz           every trained weight matrix, keyed by name
      recurrent_matrix.npy  the trained recurrent matrix alone
      loss.png              the loss curve (unless --no-plot)
      snapshots/step_000000.npz, step_000100.npz, ...   (with --snapshot-every)

:func:`weight_matrices` returns the named weight matrices of a model, a
trainer, a checkpoint, a snapshot file or a run folder; :class:`Snapshots`
keeps them along training; :func:`analyze_run` measures a trajectory of
snapshots (norms, non-normality, pseudospectra on one shared grid).
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_bool, check_int, check_positive
from lowdisp.exceptions import CheckpointError
from lowdisp.nn._trainer import Callback

__all__ = ["RunAnalysis", "Snapshots", "analyze_run", "weight_matrices"]

SNAPSHOT_FORMAT = "lowdisp-snapshot"
SNAPSHOT_VERSION = 1
#: file name of a snapshot: ``step_<step, 6 digits or more>.npz``
_SNAPSHOT_RE = re.compile(r"^step_(\d+)\.npz$")


# ---------------------------------------------------------------------------
# Weight matrices of a model
# ---------------------------------------------------------------------------


def _entries(layer: Any, prefix: str, out: list) -> None:
    """Append ``(name, getter, recurrent)`` for every weight matrix under ``layer``.

    Protocol: a layer or cell with a ``weight_matrices()`` method (e.g. a
    future structured layer returning an ``LDRMatrix``) is asked directly;
    recurrent cells give their materialised recurrent matrix as ``W``
    (``recurrent_matrix()``) and their other 2-D parameters as stored; other
    layers give their 2-D parameters, skipping those of a parameterization
    (``*.theta*``).
    """
    from lowdisp.nn._layers import Sequential
    from lowdisp.nn._rnn import RNN

    own = getattr(layer, "weight_matrices", None)
    if callable(own):
        for k, v in own().items():
            out.append((prefix + k, (lambda v=v: v), False))
        return
    if isinstance(layer, Sequential):
        for name, sub in layer.layers.items():
            _entries(sub, f"{prefix}{name}.", out)
        return
    if isinstance(layer, RNN):
        cell = layer.cell
        cp = f"{prefix}cell."
        own = getattr(cell, "weight_matrices", None)
        if callable(own):
            for k, v in own().items():
                out.append((cp + k, (lambda v=v: v), k in ("W", "W_h")))
            return
        params = cell.params()
        if hasattr(cell, "recurrent_matrix"):
            out.append((cp + "W", cell.recurrent_matrix, True))
        elif "W_h" in params:
            out.append((cp + "W_h", (lambda a=params["W_h"]: a.copy()), True))
        for k, a in params.items():
            if a.ndim == 2 and "theta" not in k and k not in ("W", "W_h"):
                out.append((cp + k, (lambda a=a: a.copy()), False))
        return
    for k, a in layer.params().items():
        if np.ndim(a) == 2 and "theta" not in k:
            out.append((prefix + k, (lambda a=a: np.array(a)), False))


def _model_entries(model: Any) -> list:
    out: list = []
    _entries(model, "", out)
    return out


def _select(available: Sequence[str], names: Any, where: str) -> list[str]:
    if names is None:
        return list(available)
    if not isinstance(names, str | Iterable):
        raise TypeError(f"{where}: names must be None, a str or a sequence of str; got {names!r}")
    wanted = [names] if isinstance(names, str) else list(names)
    for n in wanted:
        if not isinstance(n, str):
            raise TypeError(f"{where}: names must be strings; got {type(n).__name__}")
        if n not in available:
            raise ValueError(
                f"{where}: no weight matrix {n!r}; valid names: {', '.join(available) or 'none'}"
            )
    return wanted


def _is_snapshot_file(path: str) -> bool:
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if "meta" not in z.files:
                return False
            return json.loads(str(z["meta"][()])).get("format") == SNAPSHOT_FORMAT
    except Exception:
        return False


def _read_snapshot(path: str, names: Any = None, where: str = "weight_matrices") -> tuple:
    """``(step, {name: array}, meta)`` of a snapshot file."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"][()]))
            if meta.get("format") != SNAPSHOT_FORMAT:
                raise ValueError("not a snapshot")
            available = [k for k in z.files if k != "meta"]
            chosen = _select(available, names, where)
            arrays = {k: z[k] for k in chosen}
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(where):
            raise
        raise CheckpointError(f"{where}: cannot read the snapshot {path!r} ({exc})") from exc
    except Exception as exc:  # zip/numpy errors on damaged files
        raise CheckpointError(
            f"{where}: the snapshot {path!r} is truncated or corrupted ({type(exc).__name__}: "
            f"{exc})"
        ) from exc
    return int(meta["step"]), arrays, meta


def _plain_matrices(path: str, names: Any, where: str) -> dict | None:
    """The matrices of a plain ``.npz`` of named arrays (a run's ``weights.npz``), or None
    when the file is a checkpoint (it has ``meta`` or ``params/...``) or unreadable."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            keys = list(z.files)
            if "meta" in keys or any(k.startswith("params/") for k in keys):
                return None
            available = [k for k in keys if z[k].ndim == 2]
            chosen = _select(available, names, where)
            return {k: z[k] for k in chosen}
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(where):
            raise
        return None
    except Exception:
        return None


def _model_from_checkpoint(path: str, where: str) -> tuple[Any, int]:
    """The model of a checkpoint, rebuilt from its specification, and its step.

    Only the model is rebuilt (not the task, loss or optimizer), so checkpoints
    of runs on array tasks or with function schedules give their weights too.
    """
    from lowdisp.nn._checkpoint import read_checkpoint
    from lowdisp.nn._spec import SpecError, build_layer, not_rebuildable

    ck = read_checkpoint(path)
    spec = ck.spec.get("model") if isinstance(ck.spec, dict) else None
    opaque = not_rebuildable(spec) if spec is not None else []
    if spec is None or opaque:
        what = ", ".join(p or "model" for p, _ in opaque) or "the model"
        raise CheckpointError(
            f"{where}: {path!r} cannot rebuild {what} from its specification (a custom "
            f"layer); build the model, load the checkpoint into it and pass the model instead"
        )
    try:
        model = build_layer(spec, "model")
    except SpecError as exc:
        raise CheckpointError(f"{where}: {path!r}: {exc}") from exc
    live = model.params()
    if set(live) != set(ck.params):
        raise CheckpointError(
            f"{where}: {path!r} does not match its own model specification: parameters "
            f"{sorted(ck.params)} in the file, {sorted(live)} in the model"
        )
    for k, v in ck.params.items():
        if live[k].shape != v.shape or live[k].dtype != v.dtype:
            raise CheckpointError(
                f"{where}: {path!r}: {k} is {v.dtype}{v.shape} in the file, "
                f"{live[k].dtype}{live[k].shape} in the model its specification builds"
            )
        live[k][...] = v
    return model, int(ck.step)


def _snapshot_files(directory: str) -> list[tuple[int, str]]:
    """Sorted ``(step, path)`` of the snapshot files in ``directory``."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        m = _SNAPSHOT_RE.match(name)
        if m:
            found.append((int(m.group(1)), os.path.join(directory, name)))
    return sorted(found)


def weight_matrices(source: Any, *, names: Any = None) -> dict[str, Any]:
    """The named weight matrices of a model, a trainer, a checkpoint or a run folder.

    Parameters
    ----------
    source : Layer, Trainer, or path
        A model (e.g. from :func:`build_model`), a :class:`Trainer` (its
        model), a checkpoint file (``.npz`` written by :func:`save`; the
        model is rebuilt from the specification inside), a snapshot file
        written by :class:`Snapshots`, a plain ``.npz`` of named matrices
        (a run's ``weights.npz``: its 2-D arrays), or a run folder written by
        ``lowdisp train`` (its ``checkpoint.npz``; without one, its latest
        snapshot).
    names : str or sequence of str, optional
        Only these matrices (default: all of them), e.g. ``"rnn.cell.W"``.

    Returns
    -------
    dict of name -> matrix
        In model order. ``"rnn.cell.W"`` is the recurrent matrix
        *materialised from its parameterisation* (the map applied to
        ``W.theta``; complex ``(n, n)`` for the unitary maps, real otherwise),
        ``"rnn.cell.U"`` the input matrix, ``"rnn.cell.W_h"``/``"W_x"`` the
        stacked gate matrices of LSTM/GRU cells, ``"readout.W"`` the readout
        (shape ``(out, in)``). The arrays are copies. A layer or cell with a
        ``weight_matrices()`` method supplies its own entries, so a structured
        layer returns its matrix as an :class:`~lowdisp.structured.LDRMatrix`
        (not densified) and snapshots store its ``toarray()``.

    Raises
    ------
    ValueError
        A name that is not one of the model's (the message lists the valid
        names), or a folder that holds no run.
    CheckpointError
        A missing, corrupted or spec-less checkpoint, a damaged snapshot.
    TypeError
        ``source`` is none of the above.

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> model = lnn.build_model(lnn.copy_memory(5), "scaled_cayley", hidden=6, rng=0)
    >>> W = lnn.weight_matrices(model)
    >>> list(W), W["rnn.cell.W"].shape
    (['rnn.cell.W', 'rnn.cell.U', 'readout.W'], (6, 6))
    >>> lnn.weight_matrices(model, names="rnn.cell.V")
    Traceback (most recent call last):
    ...
    ValueError: weight_matrices: no weight matrix 'rnn.cell.V'; valid names: rnn.cell.W, ...
    """
    where = "weight_matrices"
    from lowdisp.nn._layers import Layer
    from lowdisp.nn._trainer import Trainer

    if isinstance(source, Trainer):
        source = source.model
    if isinstance(source, Layer):
        entries = _model_entries(source)
        chosen = set(_select([e[0] for e in entries], names, where))
        return {name: get() for name, get, _ in entries if name in chosen}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"{where}: source must be a model (Layer), a Trainer, or the path of a checkpoint, "
            f"a snapshot or a run folder; got {type(source).__name__}"
        )
    path = os.fspath(source)
    if os.path.isdir(path):
        ckpt = os.path.join(path, "checkpoint.npz")
        if os.path.isfile(ckpt):
            return weight_matrices(_model_from_checkpoint(ckpt, where)[0], names=names)
        snaps = _snapshot_files(os.path.join(path, "snapshots"))
        if snaps:
            return _read_snapshot(snaps[-1][1], names, where)[1]
        raise ValueError(
            f"{where}: {path!r} is not a run folder: it has no checkpoint.npz and no "
            f"snapshots/step_*.npz"
        )
    if not os.path.isfile(path):
        raise CheckpointError(f"{where}: no such file or folder: {path!r}")
    if _SNAPSHOT_RE.match(os.path.basename(path)) or _is_snapshot_file(path):
        return _read_snapshot(path, names, where)[1]
    plain = _plain_matrices(path, names, where)
    if plain is not None:
        return plain
    return weight_matrices(_model_from_checkpoint(path, where)[0], names=names)


def _recurrent_names(model: Any) -> list[str]:
    return [name for name, _, rec in _model_entries(model) if rec]


# ---------------------------------------------------------------------------
# Snapshots along training
# ---------------------------------------------------------------------------


def _atomic_savez(path: str, arrays: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snap-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _snapshot_path(directory: str | os.PathLike[str], step: int) -> str:
    """The file of the snapshot at ``step``: ``<directory>/step_000100.npz``."""
    return os.path.join(os.fspath(directory), f"step_{int(step):06d}.npz")


def _write_snapshot(directory: str | os.PathLike[str], model: Any, step: int, names: Any = None):
    """Write the weight matrices of ``model`` at ``step``; returns the path (private helper)."""
    entries = _model_entries(model)
    chosen = set(_select([e[0] for e in entries], names, "Snapshots"))
    arrays: dict[str, np.ndarray] = {}
    recurrent = []
    for name, get, rec in entries:
        if name not in chosen:
            continue
        M = get()
        if not isinstance(M, np.ndarray) and hasattr(M, "toarray"):
            M = M.toarray()
        arrays[name] = np.asarray(M)
        if rec:
            recurrent.append(name)
    meta = {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "step": int(step),
        "names": list(arrays),
        "recurrent": recurrent,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    path = _snapshot_path(directory, step)
    _atomic_savez(path, arrays)
    return path


class Snapshots(Callback):
    """Keep the weight matrices along training: one compressed ``.npz`` per snapshot.

    A snapshot is written at the start of :meth:`Trainer.fit` (step 0 of a
    fresh run, or the resumed step when its file is missing), after every
    ``every``-th step, and at the end of each ``fit`` call (the last step,
    when it is not a multiple of ``every``).

    Parameters
    ----------
    directory : path
        Where the files go (created if needed): ``step_000000.npz``,
        ``step_000100.npz``, ... (the step zero-padded to six digits).
    every : int
        Steps between snapshots (≥ 1).
    names : str or sequence of str, optional
        Only these matrices (see :func:`weight_matrices`); default all.

    Notes
    -----
    Each file holds one array per weight matrix, keyed by its name
    (``"rnn.cell.W"``, ``"readout.W"``, ...; the recurrent matrix
    materialised, complex for the unitary maps; structured matrices
    densified) and ``"meta"``, a JSON string with ``format``
    (``"lowdisp-snapshot"``), ``version``, ``step``, ``names`` and
    ``recurrent`` (the names of recurrent matrices). Files are written
    atomically with ``np.savez_compressed`` and read with
    ``allow_pickle=False``: ``np.load(path)["rnn.cell.W"]`` or
    ``weight_matrices(path)``. Snapshots do not touch the trainer's random
    state, so a run with snapshots trains exactly as one without.

    Examples
    --------
    >>> import os, tempfile
    >>> import lowdisp.nn as lnn
    >>> d = tempfile.mkdtemp()
    >>> tr = lnn.make_trainer(lnn.copy_memory(5), "tanh", hidden=8, batch_size=4, rng=0,
    ...                       callbacks=[lnn.Snapshots(d, every=2)])
    >>> _ = tr.fit(5, progress=False)
    >>> sorted(os.listdir(d))
    ['step_000000.npz', 'step_000002.npz', 'step_000004.npz', 'step_000005.npz']
    >>> lnn.weight_matrices(os.path.join(d, "step_000004.npz"))["rnn.cell.W"].shape
    (8, 8)
    """

    def __init__(self, directory: str | os.PathLike[str], every: int, *, names: Any = None) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"Snapshots: directory must be a path; got {type(directory).__name__}")
        self.directory = os.fspath(directory)
        self.every = check_int(every, "every", where="Snapshots", low=1)
        if names is not None:
            seq = [names] if isinstance(names, str) else names
            if not isinstance(seq, Iterable) or not all(isinstance(n, str) for n in seq):
                raise TypeError(
                    f"Snapshots: names must be None, a str or a sequence of str; got {names!r}"
                )
        self.names = names
        self.written: list[str] = []

    def _write(self, trainer: Any) -> None:
        self.written.append(
            _write_snapshot(self.directory, trainer.model, trainer.step_count, self.names)
        )

    def on_fit_start(self, trainer: Any) -> None:
        if not os.path.exists(_snapshot_path(self.directory, trainer.step_count)):
            self._write(trainer)

    def on_step_end(self, trainer: Any, loss: float) -> None:
        if trainer.step_count % self.every == 0:
            self._write(trainer)

    def on_fit_end(self, trainer: Any) -> None:
        if not os.path.exists(_snapshot_path(self.directory, trainer.step_count)):
            self._write(trainer)


# ---------------------------------------------------------------------------
# Analysis of a run
# ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class RunAnalysis:
    """Spectral measures of one weight matrix along a run (see :func:`analyze_run`).

    Attributes
    ----------
    run_dir : str
    param : str
        The matrix analysed, e.g. ``"rnn.cell.W"``.
    steps : (S,) ndarray of int
        Training steps of the snapshots.
    spectral_norm, spectral_radius : (S,) ndarray
        ‖A‖₂ and max |λ(A)|.
    departure, departure_relative : (S,) ndarray
        Henrici's departure from normality dep_F(A) and dep_F(A)/‖A‖_F.
    orthogonality_error : (S,) ndarray
        ‖AᴴA − I‖₂ (:func:`lowdisp.orthogonal.orthogonality_error`).
    eigenvalues : (S, n) complex ndarray
    numerical_range : (S, m) complex ndarray
        Boundary points of the field of values.
    powers : (K + 1,) ndarray of int
    transient : (S, K + 1) ndarray
        ‖A^k‖₂ for k in ``powers``.
    pseudospectra_steps : (P,) ndarray of int
        The snapshots whose pseudospectra were computed.
    re, im : (nx,), (ny,) ndarray
        The grid shared by all pseudospectra.
    sigma_min : (P, ny, nx) ndarray
        σ_min(zI − A) on that grid.
    eps : (L,) ndarray
        The ε levels (increasing) shared by all panels: one colour scale.
    notes : tuple of str
    elapsed : float
        Seconds taken.

    Examples
    --------
    >>> from lowdisp.nn._runs import _example_analysis
    >>> res = _example_analysis()
    >>> res.steps.tolist(), res.sigma_min.shape
    ([0, 3, 6], (3, 20, 20))
    >>> res  # doctest: +ELLIPSIS
    RunAnalysis(run_dir='...', param='rnn.cell.W', n=8, steps=[0, 3, 6], ...)
    """

    run_dir: str
    param: str
    steps: np.ndarray
    spectral_norm: np.ndarray
    spectral_radius: np.ndarray
    departure: np.ndarray
    departure_relative: np.ndarray
    orthogonality_error: np.ndarray
    eigenvalues: np.ndarray
    numerical_range: np.ndarray
    powers: np.ndarray
    transient: np.ndarray
    pseudospectra_steps: np.ndarray
    re: np.ndarray
    im: np.ndarray
    sigma_min: np.ndarray
    eps: np.ndarray
    notes: tuple = field(default=())
    elapsed: float = 0.0

    def __repr__(self) -> str:
        n = self.eigenvalues.shape[1] if self.eigenvalues.ndim == 2 else 0
        return (
            f"RunAnalysis(run_dir={self.run_dir!r}, param={self.param!r}, n={n}, "
            f"steps={self.steps.tolist()}, pseudospectra_steps="
            f"{self.pseudospectra_steps.tolist()}, grid={len(self.re)}x{len(self.im)}, "
            f"eps={[float(f'{e:.3g}') for e in self.eps]})"
        )

    # -- text and JSON ---------------------------------------------------------
    def to_dict(self) -> dict:
        """The report as JSON-able data (no σ_min grid; see :meth:`save`).

        Examples
        --------
        >>> from lowdisp.nn._runs import _example_analysis
        >>> d = _example_analysis().to_dict()
        >>> d["steps"], d["param"]
        ([0, 3, 6], 'rnn.cell.W')
        """

        def pairs(z: np.ndarray) -> list:
            return np.stack([z.real, z.imag], axis=-1).tolist()

        return {
            "format": "lowdisp-analysis",
            "version": 1,
            "run_dir": self.run_dir,
            "param": self.param,
            "steps": self.steps.tolist(),
            "spectral_norm": self.spectral_norm.tolist(),
            "spectral_radius": self.spectral_radius.tolist(),
            "departure_from_normality": self.departure.tolist(),
            "departure_from_normality_relative": self.departure_relative.tolist(),
            "orthogonality_error": self.orthogonality_error.tolist(),
            "transient_peak": self.transient.max(axis=1).tolist(),
            "powers": self.powers.tolist(),
            "transient": self.transient.tolist(),
            "eigenvalues": pairs(self.eigenvalues),
            "numerical_range": pairs(self.numerical_range),
            "pseudospectra": {
                "steps": self.pseudospectra_steps.tolist(),
                "box": [
                    float(self.re[0]),
                    float(self.re[-1]),
                    float(self.im[0]),
                    float(self.im[-1]),
                ],
                "npts": [len(self.re), len(self.im)],
                "eps": self.eps.tolist(),
            },
            "notes": list(self.notes),
            "elapsed_s": self.elapsed,
        }

    def report(self) -> str:
        """A text table: one row per snapshot.

        Examples
        --------
        >>> from lowdisp.nn._runs import _example_analysis
        >>> print(_example_analysis().report())  # doctest: +ELLIPSIS
        lowdisp analyze: ...
        matrix rnn.cell.W (8 x 8), 3 snapshot(s)
        ...
        """
        n = self.eigenvalues.shape[1]
        lines = [
            f"lowdisp analyze: {self.run_dir}",
            f"matrix {self.param} ({n} x {n}), {len(self.steps)} snapshot(s)",
            "",
            f"{'step':>8}  {'‖A‖₂':>10}  {'ρ(A)':>10}  {'dep_F':>10}  {'dep_F/‖A‖_F':>11}  "
            f"{'‖AᴴA−I‖₂':>10}  {'max‖A^k‖':>10}",
        ]
        peak = self.transient.max(axis=1)
        for i, s in enumerate(self.steps):
            lines.append(
                f"{int(s):>8}  {self.spectral_norm[i]:>10.4g}  {self.spectral_radius[i]:>10.4g}  "
                f"{self.departure[i]:>10.4g}  {self.departure_relative[i]:>11.4g}  "
                f"{self.orthogonality_error[i]:>10.3g}  {peak[i]:>10.4g}"
            )
        lines += [
            "",
            "‖A‖₂: spectral norm; ρ(A): spectral radius; dep_F: Henrici's departure from "
            "normality (0 for a normal matrix), also relative to ‖A‖_F;",
            "‖AᴴA−I‖₂: distance from orthogonal/unitary; max‖A^k‖: largest ‖A^k‖₂ for "
            f"k = 0..{int(self.powers[-1])} (transient growth).",
            f"pseudospectra at steps {', '.join(str(int(s)) for s in self.pseudospectra_steps)}"
            f" on one {len(self.re)} x {len(self.im)} grid, "
            f"re [{self.re[0]:.3g}, {self.re[-1]:.3g}], im [{self.im[0]:.3g}, {self.im[-1]:.3g}]"
            f", ε levels {', '.join(f'{e:.3g}' for e in self.eps)}",
        ]
        lines += list(self.notes)
        lines.append(f"({self.elapsed:.1f} s)")
        return "\n".join(lines)

    # -- figures ---------------------------------------------------------------
    def plot_measures(self, *, fig: Any = None) -> Any:
        """The measures against the training step (four panels); returns the figure.

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from lowdisp.nn._runs import _example_analysis
        >>> fig = _example_analysis().plot_measures()
        >>> len(fig.axes)
        4
        """
        import matplotlib.pyplot as plt

        if fig is None:
            fig = plt.figure(figsize=(10, 7), layout="constrained")
        axes = fig.subplots(2, 2, sharex=True)
        s = self.steps
        ax = axes[0, 0]
        ax.plot(s, self.spectral_norm, "o-", label="‖A‖₂")
        ax.plot(s, self.spectral_radius, "s--", label="ρ(A)")
        _readable_scale(ax, np.concatenate([self.spectral_norm, self.spectral_radius]))
        ax.set_title("norm and spectral radius")
        ax.legend()
        ax = axes[0, 1]
        ax.plot(s, self.departure_relative, "o-")
        _readable_scale(ax, self.departure_relative, log=False)
        ax.set_title("departure from normality / ‖A‖_F")
        ax = axes[1, 0]
        ax.plot(s, self.orthogonality_error, "o-")
        _readable_scale(ax, self.orthogonality_error)
        ax.set_title("orthogonality error ‖AᴴA − I‖₂")
        ax = axes[1, 1]
        peak = self.transient.max(axis=1)
        ax.plot(s, peak, "o-")
        _readable_scale(ax, peak)
        ax.set_title(f"transient peak max‖A^k‖₂, k ≤ {int(self.powers[-1])}")
        for a in axes[1]:
            a.set_xlabel("training step")
        fig.suptitle(self.param)
        return fig

    def plot_pseudospectra(self, steps: Any = None, *, fig: Any = None) -> Any:
        """Pseudospectra at chosen snapshots side by side: shared axes, one colour bar.

        Parameters
        ----------
        steps : sequence of int, optional
            Steps among :attr:`pseudospectra_steps` (default: up to six,
            evenly spaced, first and last included).
        fig : matplotlib Figure, optional

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from lowdisp.nn._runs import _example_analysis
        >>> fig = _example_analysis().plot_pseudospectra([0, 6])
        >>> [ax.get_title() for ax in fig.axes[:2]]
        ['step 0', 'step 6']
        """
        import matplotlib.pyplot as plt

        avail = [int(s) for s in self.pseudospectra_steps]
        if steps is None:
            idx = np.unique(np.linspace(0, len(avail) - 1, min(6, len(avail))).round().astype(int))
            chosen = [avail[i] for i in idx]
        else:
            where = "RunAnalysis.plot_pseudospectra"
            if isinstance(steps, str | bytes) or not isinstance(steps, Iterable):
                raise TypeError(f"{where}: steps must be a sequence of steps; got {steps!r}")
            chosen = [check_int(s, f"steps[{i}]", where=where) for i, s in enumerate(steps)]
            if not chosen:
                raise ValueError(f"{where}: steps must name at least one step; got none")
            bad = [s for s in chosen if s not in avail]
            if bad:
                raise ValueError(
                    f"RunAnalysis.plot_pseudospectra: no pseudospectra at steps {bad}; "
                    f"available: {avail}"
                )
        k = len(chosen)
        ncols = min(k, 3)
        nrows = -(-k // ncols)
        if fig is None:
            fig = plt.figure(figsize=(4.2 * ncols + 1.2, 4.0 * nrows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
        levels = np.log10(self.eps)
        t = np.linspace(0, 2 * np.pi, 200)
        cs = None
        step_index = {int(s): i for i, s in enumerate(self.steps)}
        for j, s in enumerate(chosen):
            ax = axes.flat[j]
            S = self.sigma_min[avail.index(s)]
            logS = np.log10(np.maximum(S, 1e-300))
            if len(levels) > 1:
                cs = ax.contourf(
                    self.re, self.im, logS, levels=levels, cmap="viridis_r", extend="min"
                )
                ax.contour(self.re, self.im, logS, levels=levels, colors="k", linewidths=0.4)
            else:
                ax.contour(self.re, self.im, logS, levels=levels, colors="k")
            ax.plot(np.cos(t), np.sin(t), color="0.5", lw=0.8, ls=":")
            i = step_index[s]
            nr = self.numerical_range[i]
            ax.plot(np.append(nr.real, nr.real[0]), np.append(nr.imag, nr.imag[0]), "r--", lw=0.8)
            ev = self.eigenvalues[i]
            ax.plot(ev.real, ev.imag, "k.", ms=3)
            ax.set_xlim(self.re[0], self.re[-1])
            ax.set_ylim(self.im[0], self.im[-1])
            ax.set_aspect("equal")
            ax.set_title(f"step {s}")
        for ax in axes.flat[k:]:
            ax.set_visible(False)
        if cs is not None:
            cb = fig.colorbar(cs, ax=list(axes.flat[:k]), shrink=0.9)
            cb.set_label("log₁₀ ε")
        fig.suptitle(
            f"ε-pseudospectra of {self.param} (dots: eigenvalues, dashed: numerical range, "
            f"dotted: unit circle)",
            fontsize=10,
        )
        return fig

    def plot_transient(self, *, ax: Any = None) -> Any:
        """‖A^k‖₂ against k, one curve per snapshot (log scale); returns the axes.

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from lowdisp.nn._runs import _example_analysis
        >>> ax = _example_analysis().plot_transient()
        >>> ax.get_xlabel()
        'k'
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        colors = plt.cm.viridis(np.linspace(0, 1, len(self.steps)))
        for i, s in enumerate(self.steps):
            ax.plot(self.powers, self.transient[i], color=colors[i], label=f"step {int(s)}")
        _readable_scale(ax, self.transient.ravel())
        ax.set_xlabel("k")
        ax.set_ylabel("‖A^k‖₂")
        ax.set_title(f"transient growth of {self.param}")
        if len(self.steps) <= 12:
            ax.legend(fontsize=8)
        return ax

    def save(self, out: str | os.PathLike[str], *, at: Any = None) -> list[str]:
        """Write ``report.json``, ``report.txt``, ``analysis.npz`` and the figures.

        Parameters
        ----------
        out : path
            The folder (created if needed).
        at : sequence of int, optional
            Steps shown in ``pseudospectra.png`` (see :meth:`plot_pseudospectra`).

        Returns
        -------
        list of str
            The files written: ``report.json``, ``report.txt``,
            ``analysis.npz`` (every array above, σ_min included),
            ``measures.png``, ``pseudospectra.png``, ``transient.png``.

        Examples
        --------
        >>> import os, tempfile
        >>> from lowdisp.nn._runs import _example_analysis
        >>> files = _example_analysis().save(tempfile.mkdtemp())
        >>> [os.path.basename(f) for f in files]  # doctest: +NORMALIZE_WHITESPACE
        ['report.json', 'report.txt', 'analysis.npz', 'measures.png', 'pseudospectra.png',
         'transient.png']
        """
        import matplotlib

        if "matplotlib.pyplot" not in __import__("sys").modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not isinstance(out, str | os.PathLike):
            raise TypeError(f"RunAnalysis.save: out must be a path; got {type(out).__name__}")
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        written = []
        p = os.path.join(out, "report.json")
        with open(p, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        written.append(p)
        p = os.path.join(out, "report.txt")
        with open(p, "w") as f:
            f.write(self.report() + "\n")
        written.append(p)
        p = os.path.join(out, "analysis.npz")
        np.savez_compressed(
            p,
            steps=self.steps,
            spectral_norm=self.spectral_norm,
            spectral_radius=self.spectral_radius,
            departure=self.departure,
            departure_relative=self.departure_relative,
            orthogonality_error=self.orthogonality_error,
            eigenvalues=self.eigenvalues,
            numerical_range=self.numerical_range,
            powers=self.powers,
            transient=self.transient,
            pseudospectra_steps=self.pseudospectra_steps,
            re=self.re,
            im=self.im,
            sigma_min=self.sigma_min,
            eps=self.eps,
        )
        written.append(p)
        for name, draw in (
            ("measures.png", lambda: self.plot_measures()),
            ("pseudospectra.png", lambda: self.plot_pseudospectra(at)),
            ("transient.png", lambda: self.plot_transient().figure),
        ):
            fig = draw()
            p = os.path.join(out, name)
            fig.savefig(p, dpi=100)
            plt.close(fig)
            written.append(p)
        return written


def _readable_scale(ax: Any, values: np.ndarray, *, log: bool = True) -> None:
    """A log axis only for data spanning more than a decade; otherwise a linear axis
    at least 0.2 % of the level wide, so rounding-level wiggles of a flat curve (an
    orthogonal matrix's norm, 1 ± 1e-8) neither fill the plot nor print ``1×10⁰``
    on every tick."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    if log and lo > 0 and hi / lo > 10:
        ax.set_yscale("log")
        return
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    half = max(1.15 * half, 1e-3 * abs(mid), 1e-300)
    ax.set_ylim(mid - half, mid + half)
    ax.ticklabel_format(axis="y", useOffset=False)


#: gate names of stacked recurrent matrices: LSTM (i, f, g, o), GRU (r, z, n)
_GATES = {4: ("i", "f", "g", "o"), 3: ("r", "z", "n")}


def _split_gate(param: str) -> tuple[str, str | None]:
    """``"rnn.cell.W_h:f"`` -> ``("rnn.cell.W_h", "f")``."""
    if not isinstance(param, str):
        raise TypeError(f"analyze_run: param must be a string; got {type(param).__name__}")
    base, sep, gate = param.partition(":")
    return base, (gate if sep else None)


def _gate_block(M: np.ndarray, base: str, gate: str | None, where: str) -> np.ndarray:
    """The ``gate`` block ``(n, n)`` of a stacked ``(k n, n)`` gate matrix (or ``M``)."""
    if gate is None:
        return M
    n = M.shape[1] if M.ndim == 2 else 0
    blocks = _GATES.get(M.shape[0] // n) if n and M.shape[0] % n == 0 else None
    if not blocks:
        raise ValueError(f"{where}: {base} (shape {M.shape}) does not stack gates; drop ':{gate}'")
    if gate not in blocks:
        raise ValueError(
            f"{where}: no gate {gate!r} in {base}; valid: "
            f"{', '.join(f'{base}:{g}' for g in blocks)}"
        )
    i = blocks.index(gate)
    return M[i * n : (i + 1) * n]


def _auto_eps(sigma: np.ndarray) -> np.ndarray:
    """Shared ε levels: decades (or half decades) spanning the bulk of all grids."""
    pos = sigma[np.isfinite(sigma) & (sigma > 0)]
    if pos.size == 0:
        return np.array([1e-2])
    lo, hi = np.quantile(pos, [0.005, 0.9])
    lo = max(lo, hi * 1e-12)
    k_lo, k_hi = int(np.ceil(np.log10(lo))), int(np.floor(np.log10(hi)))
    levels = 10.0 ** np.arange(k_lo, k_hi + 1)
    if levels.size < 4:
        h_lo, h_hi = int(np.ceil(2 * np.log10(lo))), int(np.floor(2 * np.log10(hi)))
        levels = 10.0 ** (np.arange(h_lo, h_hi + 1) / 2)
    if levels.size < 2:
        levels = np.geomspace(lo, hi, 4)
    return levels[-8:]


def _grid(eigs: np.ndarray, npts: int) -> tuple[np.ndarray, np.ndarray]:
    """One grid for all snapshots: the union of the eigenvalues' boxes widened by half
    its size on every side (EigTool's rule), symmetric about the real axis."""
    x0, x1 = float(eigs.real.min()), float(eigs.real.max())
    y1 = float(np.abs(eigs.imag).max())
    w = max(x1 - x0, 2 * y1, 1e-3 * max(1.0, abs(x0), abs(x1)))
    pad = w / 2
    re_ = np.linspace(x0 - pad, x1 + pad, npts)
    h = y1 + pad
    im_ = np.linspace(-h, h, npts)
    return re_, im_


def analyze_run(
    run_dir: str | os.PathLike[str],
    *,
    param: str | None = None,
    eps: Any = None,
    npts: int = 80,
    at: Iterable[int] | None = None,
    powers: int = 50,
    rng: Any = 0,
    tol: float = 1e-6,
    progress: bool = False,
) -> RunAnalysis:
    """Spectral measures of a weight matrix along a run's snapshots.

    Parameters
    ----------
    run_dir : path
        A run folder of ``lowdisp train`` (with ``snapshots/`` from
        ``--snapshot-every``; without it, only the final weights are
        analysed and a note says so), or a folder of snapshot files written
        by :class:`Snapshots`.
    param : str, optional
        The matrix, e.g. ``"rnn.cell.W"`` (default: the recurrent matrix).
        Must be square; for the stacked gate matrices of LSTM/GRU cells name
        one gate block, e.g. ``"rnn.cell.W_h:f"`` (LSTM gates ``i, f, g, o``,
        GRU gates ``r, z, n``, in PyTorch's order).
    eps : float or sequence of float, optional
        The ε levels of the pseudospectra plots (default: decades spanning
        the computed σ_min, shared by all snapshots).
    npts : int
        Grid points per side of the pseudospectra grid (default 80).
    at : iterable of int, optional
        Steps whose pseudospectra are computed (default: every snapshot).
        The other measures are computed for every snapshot.
    powers : int
        Largest power k of the transient growth ‖A^k‖₂ (default 50).
    rng : optional
        Seed of the randomized parts (Lanczos start vectors).
    tol : float
        Relative accuracy of σ_min on the grid (see
        :func:`lowdisp.spectral.pseudospectra`); 1e-3 is about 2.4x faster at
        n = 128 and still far below what a contour plot shows.
    progress : bool
        Show a progress bar (tqdm, on stderr) over the snapshots.

    Returns
    -------
    RunAnalysis
        Per snapshot: spectral norm and radius, departure from normality
        (absolute and relative to ‖A‖_F), orthogonality error, eigenvalues,
        numerical range, transient growth; ε-pseudospectra on one grid (the
        union of the spectra, widened) with one set of ε levels.

    Raises
    ------
    ValueError
        No snapshots and no checkpoint, an unknown ``param`` (the valid names
        are listed), a non-square matrix, steps in ``at`` without a snapshot.

    Notes
    -----
    Cost per snapshot at n = 128 and ``npts=80``: about 1 s for the grid
    (batched inverse Lanczos on one Schur form), 0.3 s for the numerical
    range, the rest is small. Computed in float64/complex128 from the stored
    (often float32) matrices.

    Examples
    --------
    >>> import os, tempfile
    >>> import lowdisp.nn as lnn
    >>> d = tempfile.mkdtemp()
    >>> tr = lnn.make_trainer(lnn.copy_memory(5), "scaled_cayley", hidden=8, batch_size=4,
    ...                       rng=0, callbacks=[lnn.Snapshots(d, every=3)])
    >>> _ = tr.fit(6, progress=False)
    >>> res = lnn.analyze_run(d, npts=20, powers=10)
    >>> res.steps.tolist(), res.param
    ([0, 3, 6], 'rnn.cell.W')
    >>> bool(res.orthogonality_error.max() < 1e-5), res.sigma_min.shape
    (True, (3, 20, 20))
    """
    import time

    from lowdisp.orthogonal import orthogonality_error
    from lowdisp.spectral import (
        departure_from_normality,
        numerical_range,
        pseudospectra,
        spectral_norm,
        transient_growth,
    )

    where = "analyze_run"
    t0 = time.perf_counter()
    npts = check_int(npts, "npts", where=where, low=2)
    powers = check_int(powers, "powers", where=where, low=1)
    tol = check_positive(tol, "tol", where=where)
    progress = check_bool(progress, "progress", where=where)
    as_rng(rng, where=where)  # refuses a bad seed before any work; the value is passed on
    if param is not None and not isinstance(param, str):
        raise TypeError(f"{where}: param must be None or a matrix name (str); got {param!r}")
    if at is not None:
        if isinstance(at, str | bytes) or not isinstance(at, Iterable):
            raise TypeError(f"{where}: at must be None or a sequence of steps; got {at!r}")
        at = [check_int(s, f"at[{i}]", where=where, low=0) for i, s in enumerate(at)]
    if eps is not None:
        try:
            eps_arr = np.asarray(eps)
        except (TypeError, ValueError):
            eps_arr = np.asarray(None)
        if eps_arr.dtype.kind not in "iuf" or eps_arr.ndim > 1:
            raise TypeError(
                f"{where}: eps must be a positive number or a sequence of them; got {eps!r}"
            )
    if not isinstance(run_dir, str | os.PathLike):
        raise TypeError(f"{where}: run_dir must be a path; got {type(run_dir).__name__}")
    root = os.fspath(run_dir)
    if not os.path.isdir(root):
        raise ValueError(f"{where}: no such run folder: {root!r}")
    notes: list[str] = []
    files = _snapshot_files(os.path.join(root, "snapshots")) or _snapshot_files(root)
    mats: list[np.ndarray] = []
    steps: list[int] = []
    if files:
        _, first, meta = _read_snapshot(files[0][1], None, where)
        names = list(first)
        if param is None:
            param = (meta.get("recurrent") or [None])[0]
            if param is None:
                square = [k for k, v in first.items() if v.ndim == 2 and v.shape[0] == v.shape[1]]
                if len(square) != 1:
                    raise ValueError(
                        f"{where}: choose the matrix (param=, or --param of lowdisp analyze); the "
                        f"snapshots hold "
                        f"{', '.join(names)}"
                    )
                param = square[0]
        base, gate = _split_gate(param)
        _select(names, base, where)
        for step, path in files:
            _, arrays, _ = _read_snapshot(path, [base], where)
            steps.append(step)
            mats.append(_gate_block(arrays[base], base, gate, where))
    else:
        ckpt = os.path.join(root, "checkpoint.npz")
        if not os.path.isfile(ckpt):
            raise ValueError(
                f"{where}: {root!r} holds no snapshots (snapshots/step_*.npz) and no "
                f"checkpoint.npz; train with --snapshot-every N (or lnn.Snapshots)"
            )
        model, ck_step = _model_from_checkpoint(ckpt, where)
        if param is None:
            rec = _recurrent_names(model)
            param = rec[0] if rec else None
            if param is None:
                raise ValueError(
                    f"{where}: the model has no recurrent matrix; choose one (param=, or --param "
                    f"of lowdisp analyze)"
                )
        base, gate = _split_gate(param)
        W = _gate_block(weight_matrices(model, names=base)[base], base, gate, where)
        step = ck_step
        steps.append(step)
        mats.append(W)
        notes.append(
            "no snapshots in this run (train with --snapshot-every N to follow the matrix "
            "along training): the final weights only"
        )
    A0 = mats[0]
    if A0.ndim != 2 or A0.shape[0] != A0.shape[1]:
        blocks = _GATES.get(A0.shape[0] // A0.shape[1]) if A0.ndim == 2 else None
        if blocks and A0.shape[0] % A0.shape[1] == 0:
            hint = (
                f"; {param} stacks the gates of an LSTM/GRU cell, choose one block: "
                f"{', '.join(f'{param}:{g}' for g in blocks)}"
            )
        else:
            hint = "; choose a square matrix"
        raise ValueError(
            f"{where}: {param} is not square (shape {A0.shape}){hint} (param=, or --param "
            f"of lowdisp analyze)"
        )
    As = [np.asarray(M, dtype=np.complex128 if np.iscomplexobj(M) else np.float64) for M in mats]
    S = len(As)
    if at is None:
        ps_idx = list(range(S))
    else:
        wanted = list(at)
        bad = [s for s in wanted if s not in steps]
        if bad:
            raise ValueError(f"{where}: no snapshot at steps {bad}; available steps: {steps}")
        ps_idx = sorted({steps.index(s) for s in wanted})
    if eps is not None:
        levels = np.sort(np.atleast_1d(np.asarray(eps, dtype=float)))
        if levels.size == 0 or not np.all(np.isfinite(levels) & (levels > 0)):
            raise ValueError(f"{where}: eps must be positive and finite; got {eps!r}")
    from tqdm.auto import tqdm

    bar = tqdm(
        total=S + len(ps_idx), disable=not progress, desc="analyze", unit="task", leave=False
    )
    try:
        rows = []
        for A in As:  # the cheap measures, snapshot by snapshot
            lam = np.linalg.eigvals(A)
            dep = departure_from_normality(A)
            fro = float(np.linalg.norm(A))
            tg = transient_growth(A, powers, rng=rng)
            rows.append(
                (
                    lam,
                    spectral_norm(A, method="dense").value,
                    dep,
                    dep / fro if fro > 0 else 0.0,
                    orthogonality_error(A),
                    numerical_range(A, npts=64),
                    tg,
                )
            )
            bar.update(1)
        eigs = np.stack([r[0] for r in rows])
        re_, im_ = _grid(eigs[ps_idx].ravel(), npts)
        grids = []
        for i in ps_idx:  # the pseudospectra, all on one grid
            grids.append(pseudospectra(As[i], re=re_, im=im_, tol=tol, rng=rng).sigma_min)
            bar.update(1)
    finally:
        bar.close()
    norms = np.array([r[1] for r in rows], dtype=float)
    radius = np.abs(eigs).max(axis=1)
    dep = np.array([r[2] for r in rows], dtype=float)
    dep_rel = np.array([r[3] for r in rows], dtype=float)
    orth = np.array([r[4] for r in rows], dtype=float)
    nr = np.stack([r[5] for r in rows])
    ks = np.asarray(rows[0][6].k)
    trans = np.stack([r[6].norms for r in rows])
    sig = np.stack(grids)
    if eps is None:
        levels = _auto_eps(sig)
    return RunAnalysis(
        run_dir=root,
        param=param,
        steps=np.asarray(steps),
        spectral_norm=norms,
        spectral_radius=radius,
        departure=dep,
        departure_relative=dep_rel,
        orthogonality_error=orth,
        eigenvalues=eigs,
        numerical_range=nr,
        powers=ks,
        transient=trans,
        pseudospectra_steps=np.asarray([steps[i] for i in ps_idx]),
        re=re_,
        im=im_,
        sigma_min=sig,
        eps=levels,
        notes=tuple(notes),
        elapsed=time.perf_counter() - t0,
    )


@functools.lru_cache(maxsize=1)
def _example_analysis() -> RunAnalysis:
    """A tiny analysed run for the examples (scaled-Cayley cell, 8 units, 6 steps)."""
    import atexit
    import shutil

    from lowdisp.nn._tasks import copy_memory
    from lowdisp.nn._trainer import make_trainer

    d = tempfile.mkdtemp(prefix="lowdisp-example-run-")
    atexit.register(shutil.rmtree, d, True)
    tr = make_trainer(
        copy_memory(5),
        "scaled_cayley",
        hidden=8,
        batch_size=4,
        rng=0,
        callbacks=[Snapshots(os.path.join(d, "snapshots"), every=3)],
    )
    tr.fit(6, progress=False)
    return analyze_run(d, npts=20, powers=10)
