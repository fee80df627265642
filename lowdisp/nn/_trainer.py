"""The Trainer: batches from a task, forward, loss, backward, optimizer step, history.

Also :func:`build_model` (a recurrent layer plus a linear readout sized for a
task), :func:`build_mlp` (a feed-forward net for a flat task),
:class:`EarlyStopping` (validation-based stopping that restores the best
parameters), :func:`train` (the whole recipe in one call, used by
``lowdisp train`` and ``lowdisp demo``) and :func:`recurrent_matrix` (the
trained ``W``).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lowdisp._config import blas_threads
from lowdisp._validation import (
    as_rng,
    check_bool,
    check_int,
    check_option,
    check_positive,
    check_real,
)
from lowdisp.exceptions import LowdispError
from lowdisp.nn._checkpoint import nonfinite
from lowdisp.nn._history import History
from lowdisp.nn._layers import (
    Activation,
    Dense,
    Layer,
    Sequential,
    _check_dtype,
    _workspaces,
    param_grads,
)
from lowdisp.nn._losses import Loss
from lowdisp.nn._optim import (
    Optimizer,
    bind_masks,
    global_norm,
    model_masks,
)
from lowdisp.nn._regularizers import apply_constraints
from lowdisp.nn._rnn import RNN, make_cell
from lowdisp.nn._tasks import Task

__all__ = [
    "Callback",
    "EarlyStopping",
    "RecordRecurrent",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "build_mlp",
    "build_model",
    "make_trainer",
    "recurrent_matrix",
    "train",
]


class TrainingDivergedError(LowdispError):
    """Training produced NaN/Inf and stopped with the last good state in place.

    Raised by :meth:`Trainer.fit` when the loss or the gradient is not finite
    (before the update) or when the update made a parameter or the optimizer
    state non-finite (the update is rolled back). Nothing is written after
    the bad step: the checkpoint the message names holds finite parameters.

    Examples
    --------
    >>> from lowdisp.nn import TrainingDivergedError
    >>> issubclass(TrainingDivergedError, ValueError)
    True
    """


class TrainingInterrupted(KeyboardInterrupt):
    """:meth:`Trainer.fit` was stopped by SIGINT/SIGTERM after finishing a step.

    A subclass of :class:`KeyboardInterrupt`, so unhandled it ends the
    program like Ctrl-C. The trainer holds a consistent state (the history is
    complete up to ``step``), and the checkpoint, if a path is configured,
    was written at ``step``.

    Attributes
    ----------
    step : int
        The last completed step.
    checkpoint : str or None
        The checkpoint written at ``step``, or None if no path is configured.
    signum : int
        The signal received.

    Examples
    --------
    >>> from lowdisp.nn import TrainingInterrupted
    >>> err = TrainingInterrupted("stopped", step=7, checkpoint="ck.npz")
    >>> isinstance(err, KeyboardInterrupt), err.step, err.checkpoint
    (True, 7, 'ck.npz')
    """

    def __init__(
        self, message: str, *, step: int, checkpoint: str | None, signum: int = signal.SIGINT
    ) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint
        self.signum = signum


class _SignalGuard:
    """During ``fit``: SIGINT/SIGTERM set a flag (the step in progress finishes);
    a second signal restores the previous handlers and delivers it (a hard
    interrupt). Installed only in the main thread; previous handlers are
    restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                with contextlib.suppress(ValueError, OSError):  # e.g. embedded interpreters
                    self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            return
        old = self._old.get(signum)
        self.restore()
        if callable(old):
            old(signum, frame)
        elif old != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old = {}

    def __exit__(self, *exc: Any) -> None:
        self.restore()


def _nonfinite(params: dict, state: dict) -> list[str]:
    """Names of parameters / optimizer arrays holding NaN or Inf."""
    return nonfinite(params) + [f"optimizer state {k!r}" for k in nonfinite(state)]


def _load_blas() -> None:
    """Load scipy's BLAS/LAPACK (the orthogonal maps factorize with it) before
    ``blas_threads`` takes its snapshot of the thread pools; a library loaded later
    would keep its default thread count."""
    import scipy.linalg  # noqa: F401


class Callback:
    """Hooks called by :meth:`Trainer.fit`; override what you need.

    Examples
    --------
    >>> from lowdisp.nn import Callback
    >>> class Print(Callback):
    ...     def on_step_end(self, trainer, loss):
    ...         pass
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step of a ``fit`` call."""

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        """After each optimizer step (``trainer.step_count`` already advanced)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last step of a ``fit`` call."""


class RecordRecurrent(Callback):
    """Every ``every`` steps record the spectral norm and the largest and smallest
    eigenvalue moduli of the recurrent matrix into ``history.records``.

    Parameters
    ----------
    every : int
    eigenvalues : bool
        Also store all eigenvalues (as ``[re, im]`` pairs) for later plots.

    Examples
    --------
    >>> from lowdisp.nn import RecordRecurrent
    >>> cb = RecordRecurrent(every=100)
    """

    def __init__(self, every: int = 100, *, eigenvalues: bool = False) -> None:
        self.every = check_int(every, "every", where="RecordRecurrent", low=1)
        self.eigenvalues = check_bool(eigenvalues, "eigenvalues", where="RecordRecurrent")

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.step_count % self.every:
            return
        W = recurrent_matrix(trainer.model)
        ev = np.linalg.eigvals(W)
        rec = {
            "step": trainer.step_count,
            "recurrent_norm": _spectral_norm(W),
            "eig_abs_max": float(np.abs(ev).max()),
            "eig_abs_min": float(np.abs(ev).min()),
        }
        if self.eigenvalues:
            rec["eigenvalues"] = np.stack([ev.real, ev.imag], axis=1).tolist()
        trainer.history.records.append(rec)


class EarlyStopping(Callback):
    """Evaluate on the task's validation split, keep the best parameters, stop
    when they stop improving, and restore them at the end of :meth:`Trainer.fit`.

    Parameters
    ----------
    every : int, optional
        Evaluate every so many steps; default one epoch of a flat task
        (``ceil(n_train / batch_size)`` steps).
    patience : int or None
        Stop after this many evaluations without improvement; ``None``
        never stops early (the best parameters are still restored: the
        "best validation checkpoint" protocol of Thomas et al. 2018).
    monitor : {"accuracy", "loss"}
        Higher accuracy or lower loss is better.
    min_delta : float
        An improvement must exceed this.
    restore_best : bool
        At the end of ``fit``, copy the best parameters back into the model.

    Attributes
    ----------
    best : float or None
        The best validation value seen.
    best_step : int or None
        The step of ``best``.
    stopped_step : int or None
        The step at which training was stopped early (None: not stopped).

    Notes
    -----
    Each evaluation is recorded in ``trainer.history.evals`` with
    ``"split": "validation"``; a summary (best step and value, stop step)
    goes to ``trainer.history.records`` at the end of ``fit``. The best
    parameters live in the callback (callbacks are not saved in
    checkpoints): a run resumed from a checkpoint starts a new search.
    The checkpoint that ``fit`` writes at its end holds the last step's
    parameters (it is written before the best ones are restored; call
    ``trainer.save`` afterwards to keep them). On an interrupt
    (:class:`TrainingInterrupted`) nothing is restored.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)
    >>> task = lnn.array_task(x[:40], y[:40], x[50:], y[50:], x_val=x[40:50], y_val=y[40:50],
    ...                       flat=True)
    >>> model = lnn.build_mlp(task, hidden=(8,), dtype=np.float64, rng=0)
    >>> stop = lnn.EarlyStopping(patience=3)
    >>> tr = lnn.Trainer(model, task.loss(), lnn.SGD(0.1), task, batch_size=10, rng=0,
    ...                  callbacks=[stop])
    >>> h = tr.fit(epochs=5, progress=False)
    >>> stop.best_step is not None
    True
    """

    def __init__(
        self,
        every: int | None = None,
        *,
        patience: int | None = None,
        monitor: str = "accuracy",
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        where = "EarlyStopping"
        self.every = None if every is None else check_int(every, "every", where=where, low=1)
        self.patience = (
            None if patience is None else check_int(patience, "patience", where=where, low=1)
        )
        check_option(monitor, "monitor", ("accuracy", "loss"), where=where)
        self.monitor = monitor
        self.min_delta = float(check_real(min_delta, "min_delta", where=where, low=0))
        self.restore_best = check_bool(restore_best, "restore_best", where=where)
        self.best: float | None = None
        self.best_step: int | None = None
        self.stopped_step: int | None = None
        self._best_params: dict[str, np.ndarray] = {}
        self._bad = 0
        self._every = 1

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.task.validation_data() is None:
            raise ValueError(
                f"EarlyStopping: the task {trainer.task.name!r} has no validation split; "
                f"build it with validation_fraction > 0 (or array_task(..., x_val=, y_val=))"
            )
        if self.every is None:
            n_train = trainer.task.info.get("n_train")
            if n_train is None:
                raise ValueError(
                    f"EarlyStopping: every= is needed for the task {trainer.task.name!r} "
                    f"(no epochs: it draws fresh sequences)"
                )
            self._every = math.ceil(n_train / trainer.batch_size)
        else:
            self._every = self.every
        self._bad = 0
        self.stopped_step = None

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.step_count % self._every:
            return
        result = trainer.evaluate(split="validation")
        value = result.get(self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping: monitor={self.monitor!r} is not a metric of the task "
                f"{trainer.task.name!r} (got {sorted(result)})"
            )
        sign = 1.0 if self.monitor == "accuracy" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best = float(value)
            self.best_step = trainer.step_count
            self._bad = 0
            for k, a in trainer.model.params().items():
                b = self._best_params.get(k)
                if b is None or b.shape != a.shape or b.dtype != a.dtype:
                    self._best_params[k] = a.copy()
                else:
                    np.copyto(b, a)
            return
        self._bad += 1
        if self.patience is not None and self._bad >= self.patience:
            self.stopped_step = trainer.step_count
            trainer.request_stop()

    def on_fit_end(self, trainer: Trainer) -> None:
        restored = False
        if self.restore_best and self._best_params:
            for k, a in trainer.model.params().items():
                np.copyto(a, self._best_params[k])
            restored = True
        trainer.history.records.append(
            {
                "step": trainer.step_count,
                "early_stopping": {
                    "monitor": self.monitor,
                    "best": self.best,
                    "best_step": self.best_step,
                    "stopped_step": self.stopped_step,
                    "restored": restored,
                },
            }
        )


def _spectral_norm(W: np.ndarray) -> float:
    try:
        from lowdisp.spectral import spectral_norm
    except ImportError:
        return float(np.linalg.norm(W, 2))
    return float(spectral_norm(W, method="dense").value)


class Trainer:
    """Train a model on a task: sample a batch, forward, loss, BPTT, optimizer step.

    Parameters
    ----------
    model : Layer
        Usually from :func:`build_model`.
    loss : Loss
        Usually ``task.loss()``.
    optimizer : Optimizer
    task : Task
    batch_size : int
    rng : seed or Generator, optional
        The only source of randomness of the run (batches, dropout masks);
        its state is saved in checkpoints.
    callbacks : iterable of Callback
    eval_every : int, optional
        Evaluate on the task's fixed evaluation set every so many steps.
    checkpoint : path, optional
        Write a checkpoint here every ``checkpoint_every`` steps and at the
        end of :meth:`fit` (atomic, so a crash leaves the last good one).
    checkpoint_every : int, optional
    threads : int or None
        BLAS threads during :meth:`fit` (1: fastest for these small GEMMs on
        a 2-core machine; ``None`` leaves the setting alone).

    Notes
    -----
    A non-finite loss or gradient stops training with
    :class:`TrainingDivergedError` *before* the update; after every update the
    parameters and the optimizer state are checked (a min/max per array) and
    a non-finite update is rolled back (the trainer keeps a copy of the
    pre-step values) before the same error. Nothing is written after a bad
    step, so the checkpoint the message names holds finite parameters.

    SIGINT and SIGTERM during :meth:`fit` (main thread only) let the current
    step finish, write the checkpoint (if a path is configured) and raise
    :class:`TrainingInterrupted`; a second signal interrupts at once.

    :attr:`spec` describes the trainer completely except for its callbacks
    (code, not data) and its checkpoint path; checkpoints record it, and
    :func:`lowdisp.nn.load` rebuilds the trainer from it.

    Pruning masks (:func:`lowdisp.nn.set_mask`, :func:`lowdisp.nn.prune`)
    live in the model's mask dict, :attr:`masks`, shared with the optimizer:
    gradients, steps and optimizer state are masked, pruned weights stay
    exactly zero, and checkpoints save and restore the masks bit for bit.

    Weight constraints of the cells (``regularizers={"max_norm": c}``,
    ``{"unit_disk": True}``) are projections after the update: the trainer
    projects the initial parameters when it is built and the parameters after
    every optimizer step (:func:`lowdisp.nn.apply_constraints`), so what it
    holds, evaluates and saves satisfies them; loading a checkpoint does not
    project again (the file holds projected parameters, and the persistent
    power-iteration vectors are restored from it).

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> task = lnn.adding(20)
    >>> model = lnn.build_model(task, "scaled_cayley", hidden=8, rng=0)  # doctest: +SKIP
    >>> model = lnn.build_model(task, "tanh", hidden=8, rng=0)
    >>> trainer = lnn.Trainer(model, task.loss(), lnn.Adam(lr=1e-2), task, batch_size=16, rng=1)
    >>> h = trainer.fit(20, progress=False)
    >>> sorted(trainer.evaluate())
    ['baseline', 'loss']
    """

    def __init__(
        self,
        model: Layer,
        loss: Loss,
        optimizer: Optimizer,
        task: Task,
        *,
        batch_size: int,
        rng: Any = None,
        callbacks: Iterable[Callback] = (),
        eval_every: int | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        threads: int | None = 1,
    ) -> None:
        where = "Trainer"
        if not isinstance(model, Layer):
            raise TypeError(
                f"{where}: model must be a lowdisp.nn Layer; got {type(model).__name__}"
            )
        if not isinstance(loss, Loss):
            raise TypeError(f"{where}: loss must be a lowdisp.nn Loss; got {type(loss).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{where}: optimizer must be a lowdisp.nn Optimizer; got {type(optimizer).__name__}"
            )
        if not isinstance(task, Task):
            raise TypeError(f"{where}: task must be a lowdisp.nn Task; got {type(task).__name__}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.task = task
        self.batch_size = check_int(batch_size, "batch_size", where=where, low=1)
        self.rng = as_rng(rng, where=where)
        if isinstance(callbacks, Callback) or not isinstance(callbacks, Iterable):
            raise TypeError(
                f"{where}: callbacks must be a list of Callback objects; got {callbacks!r}"
            )
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"{where}: callbacks[{i}] must be a lowdisp.nn Callback; "
                    f"got {type(cb).__name__}"
                )
        self.eval_every = (
            None if eval_every is None else check_int(eval_every, "eval_every", where=where, low=1)
        )
        if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
            raise TypeError(
                f"{where}: checkpoint must be None or a path; got {type(checkpoint).__name__}"
            )
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.checkpoint_every = (
            None
            if checkpoint_every is None
            else check_int(checkpoint_every, "checkpoint_every", where=where, low=1)
        )
        if self.checkpoint_every and self.checkpoint is None:
            raise ValueError(f"{where}: checkpoint_every needs a checkpoint path")
        self.threads = (
            None if threads is None else check_int(threads, "threads", where=where, low=1)
        )
        self.step_count = 0
        self.history = History(baseline=task.baseline)
        self.last_checkpoint_step: int | None = None
        self.last_checkpoint_path: str | None = None
        self._params = model.params()
        self._backup: dict[str, np.ndarray] = {}
        self._manifolds = model.manifolds()
        #: pruning masks ``{path: bool array}`` (True = kept): the model's live dict,
        #: shared with the optimizer (see :func:`lowdisp.nn.set_mask`)
        self.masks = model_masks(model)
        bind_masks(optimizer, self.masks)
        # weight constraints (max_norm, unit_disk) are projections after the update: the
        # initial weights here, each step's result in _train_step_core
        apply_constraints(model)
        attach = getattr(optimizer, "attach", None)
        if callable(attach):  # curvature optimizers (KFAC, EKFAC) record layer statistics
            attach(model, loss)
        self._elapsed = 0.0
        self._last_norm = float("nan")
        #: flat tasks: the current epoch's shuffle ``{"seed": int, "start": step}``
        self.sampler_state: dict[str, int] | None = None
        self._perm: tuple[int, np.ndarray] | None = None
        self._stop = False

    def request_stop(self) -> None:
        """Ask :meth:`fit` to stop after the current step (used by :class:`EarlyStopping`)."""
        self._stop = True

    # -- specification ------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        """The trainer's full specification as a JSON-able nested dict.

        Keys: ``model`` (every layer's and cell's constructor arguments, the
        recurrent map with all its arguments such as ``n_neg``, the
        initialisation), ``loss``, ``optimizer`` (learning rate, groups,
        clipping, its own settings and the schedule), ``task`` (factory and
        arguments), ``trainer`` (``batch_size``, ``eval_every``,
        ``checkpoint_every``, ``threads``), ``dtype``, and ``format``,
        ``format_version``, ``lowdisp_version``. Not included: callbacks
        and the checkpoint path. Parts that cannot be rebuilt (a custom layer,
        a plain-function schedule, a task built from arrays) are recorded by
        name and ``repr`` with ``"rebuildable": False``.

        Examples
        --------
        >>> import lowdisp.nn as lnn
        >>> tr = lnn.make_trainer(lnn.copy_memory(5), "scaled_cayley", hidden=8, rng=0)
        >>> spec = tr.spec
        >>> spec["model"]["layers"]["rnn"]["cell"]["recurrent_options"]["n_neg"]
        0
        >>> spec["task"]["args"]["T"]
        5
        >>> spec["optimizer"]["class"], spec["trainer"]["batch_size"], spec["dtype"]
        ('RMSprop', 64, 'float32')
        """
        from lowdisp.nn._spec import trainer_spec

        return trainer_spec(self)

    # -- one step ---------------------------------------------------------------
    def train_step(self) -> float:
        """One optimizer step on a fresh batch; returns the batch loss.

        Raises :class:`TrainingDivergedError`, with the parameters and the
        optimizer state as they were before the step, when the loss, the
        gradient or the result of the update is not finite, or when a layer
        raises ``OverflowError``. (Floating-point
        overflow warnings are silenced inside the step: the checks report it.)
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._train_step()

    def _train_step(self) -> float:
        # the step owns the scratch buffers its layers and loss hand out: they are
        # released for the next step once its outputs, cache and gradients are dead
        for ws in _workspaces(self.model, self.loss):
            ws.begin()
        try:
            return self._train_step_core()
        finally:
            for ws in _workspaces(self.model, self.loss):
                ws.release()

    def _next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """A training batch: the next slice of the epoch's shuffle for a flat task
        (the last batch of an epoch may be smaller), a fresh draw otherwise.

        An epoch's order is ``default_rng(seed).permutation(n_train)`` with
        ``seed`` drawn from the trainer's generator at the epoch's first step;
        ``{"seed", "start"}`` is saved in checkpoints, so a resumed run walks
        the same batches.
        """
        data = self.task.train_data()
        if data is None:
            return self.task.batch(self.batch_size, rng=self.rng)
        x, y = data
        n = x.shape[0]
        per_epoch = math.ceil(n / self.batch_size)
        st = self.sampler_state
        if st is None or self.step_count - st["start"] >= per_epoch:
            st = self.sampler_state = {
                "seed": int(self.rng.integers(2**63)),
                "start": self.step_count,
            }
        if self._perm is None or self._perm[0] != st["seed"]:
            self._perm = (st["seed"], np.random.default_rng(st["seed"]).permutation(n))
        pos = (self.step_count - st["start"]) * self.batch_size
        idx = self._perm[1][pos : pos + self.batch_size]
        return x[idx], y[idx]

    def _train_step_core(self) -> float:
        x, y = self._next_batch()
        step = self.step_count + 1
        try:  # a layer that refuses a non-representable result (e.g. v**783 of
            # learned Vandermonde nodes) raises OverflowError: that is divergence too
            out, cache = self.model.forward(x, train=True, rng=self.rng)
            value, dout = self.loss(out, y)
            if not math.isfinite(value):
                self._diverged(f"the loss is {value}", step)
            curvature_pass = getattr(self.optimizer, "curvature_pass", None)
            if curvature_pass is not None:  # e.g. KFAC(fisher="mc"): a backward of sampled labels
                curvature_pass(self.model, cache, out, self.loss, self.rng)
            grads = param_grads(self.model, cache, dout)  # no gradient for the input data
        except OverflowError as exc:
            self._diverged(f"a layer overflowed ({exc})", step)
        norm = global_norm(grads)
        if not math.isfinite(norm):
            self._diverged(f"the gradient norm is {norm}", step)
        opt = self.optimizer
        saved = self._snapshot()
        try:
            opt.step(self._params, grads, self._manifolds)
        except BaseException:  # e.g. a hard interrupt: never leave half an update
            self._rollback(saved)
            raise
        bad = _nonfinite(self._params, opt.state)
        if bad:
            self._rollback(saved)
            self._diverged(f"the update made {', '.join(bad)} non-finite (rolled back)", step)
        apply_constraints(self.model)
        self.step_count = step
        self._last_norm = norm
        return value

    def _snapshot(self) -> tuple[int, list[str]]:
        """Copy the parameters and optimizer state into reused buffers (for a rollback)."""
        buf = self._backup
        for k, a in self._params.items():
            b = buf.get(k)
            if b is None or b.shape != a.shape or b.dtype != a.dtype:
                b = buf[k] = np.empty_like(a)
            np.copyto(b, a)
        state = self.optimizer.state
        for k, a in state.items():
            key = f"opt/{k}"
            b = buf.get(key)
            if b is None or b.shape != a.shape or b.dtype != a.dtype:
                b = buf[key] = np.empty_like(a)
            np.copyto(b, a)
        return self.optimizer.steps, list(state)

    def _rollback(self, saved: tuple[int, list[str]]) -> None:
        steps, keys = saved
        buf = self._backup
        for k, a in self._params.items():
            np.copyto(a, buf[k])
        state = self.optimizer.state
        for k in list(state):
            if k not in keys:
                del state[k]  # created by the rolled-back step
        for k in keys:
            np.copyto(state[k], buf[f"opt/{k}"])
        self.optimizer.steps = steps

    def _diverged(self, what: str, step: int) -> None:
        where = (
            f"the last good checkpoint is {self.last_checkpoint_path!r} "
            f"(step {self.last_checkpoint_step})"
            if self.last_checkpoint_path is not None
            else "no checkpoint was written"
        )
        raise TrainingDivergedError(
            f"Trainer: training diverged at step {step}: {what}. The parameters and optimizer "
            f"state are those after step {step - 1}; {where}. Try a smaller learning rate or "
            f"gradient clipping (clip_norm=1.0)."
        )

    # -- loops ------------------------------------------------------------------
    def fit(
        self,
        steps: int | None = None,
        *,
        epochs: int | None = None,
        progress: bool = True,
        time_limit: float | None = None,
    ) -> History:
        """Run ``steps`` optimizer steps (or ``epochs`` passes over a dataset task).

        Parameters
        ----------
        steps : int, optional
        epochs : int, optional
            For dataset tasks: ``epochs · ceil(n_train / batch_size)`` steps
            (flat tasks walk each epoch's examples in a fresh shuffled order).
        progress : bool
            Show a tqdm progress bar with the loss, the baseline and steps/s.
        time_limit : float, optional
            Stop early once this many seconds have passed in this call.

        Returns
        -------
        History
            ``self.history`` (also updated in place).

        Raises
        ------
        TrainingDivergedError
            A non-finite loss, gradient or update (see the class Notes).
        TrainingInterrupted
            SIGINT or SIGTERM arrived (main thread): the step in progress
            was finished, its history, evaluation and callbacks done, the
            checkpoint written if a path is configured, and the previous
            signal handlers restored. ``on_fit_end`` is not called. A second
            signal while finishing interrupts at once (previous handlers).
        """
        where = "Trainer.fit"
        progress = check_bool(progress, "progress", where=where)
        if (steps is None) == (epochs is None):
            raise ValueError(f"{where}: give exactly one of steps and epochs")
        if epochs is not None:
            epochs = check_int(epochs, "epochs", where=where, low=1)
            n_train = self.task.info.get("n_train")
            if n_train is None:
                raise ValueError(
                    f"{where}: epochs need a dataset task; {self.task.name!r} draws fresh "
                    f"sequences, give steps"
                )
            steps = epochs * math.ceil(n_train / self.batch_size)
        steps = check_int(steps, "steps", where=where, low=0)
        limit = (
            None if time_limit is None else check_positive(time_limit, "time_limit", where=where)
        )
        from tqdm.auto import tqdm

        bar = tqdm(
            total=steps,
            disable=not progress,
            unit="step",
            dynamic_ncols=True,
            desc=self.task.name,
            leave=True,
        )
        for cb in self.callbacks:
            cb.on_fit_start(self)
        _load_blas()
        t_call = time.perf_counter()
        t_start = t_call - self._elapsed
        guard = _SignalGuard()
        self._stop = False
        try:
            with guard, blas_threads(self.threads):
                for _ in range(steps):
                    if guard.signum is not None or self._stop:
                        break
                    if limit is not None and time.perf_counter() - t_call > limit:
                        break
                    value = self.train_step()
                    self._elapsed = time.perf_counter() - t_start
                    self.history.append(self.step_count, value, self._last_norm, self._elapsed)
                    if self.eval_every and self.step_count % self.eval_every == 0:
                        self.evaluate()
                    for cb in self.callbacks:
                        cb.on_step_end(self, value)
                    if self.checkpoint_every and self.step_count % self.checkpoint_every == 0:
                        self.save(self.checkpoint)  # type: ignore[arg-type]
                    bar.update(1)
                    if progress and (self.step_count % 10 == 0 or _ == steps - 1):
                        recent = float(np.mean(self.history.loss[-10:]))
                        bar.set_postfix(
                            loss=f"{recent:.4g}",
                            baseline=f"{self.task.baseline:.4g}",
                            refresh=False,
                        )
                if guard.signum is not None:
                    bar.close()
                    self._interrupted(guard.signum)  # raises; handlers restored on the way out
        finally:
            bar.close()
        if self.checkpoint is not None and steps:
            self.save(self.checkpoint)
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self.history

    def _interrupted(self, signum: int) -> None:
        """Write the checkpoint (if configured and not already at this step) and raise."""
        name = signal.Signals(signum).name
        step = self.step_count
        if self.checkpoint is not None:
            if self.last_checkpoint_step != step or self.last_checkpoint_path != self.checkpoint:
                self.save(self.checkpoint)
            ck: str | None = self.last_checkpoint_path
            how = (
                f"the checkpoint {ck!r} holds step {step}; resume with "
                f"lowdisp.nn.load({ck!r}).fit(...) (or `lowdisp train --resume RUN_DIR`)"
            )
        else:
            ck = None
            how = (
                f"no checkpoint path is configured; the trainer holds the state after step "
                f"{step}: trainer.fit(...) continues, trainer.save(path) keeps it"
            )
        raise TrainingInterrupted(
            f"Trainer.fit: interrupted by {name} at step {step}; {how}",
            step=step,
            checkpoint=ck,
            signum=signum,
        )

    def evaluate(self, *, batch_size: int = 500, split: str = "test") -> dict[str, float]:
        """Loss and metrics on the task's fixed evaluation set (no dropout).

        Parameters
        ----------
        batch_size : int
            Examples per forward pass.
        split : {"test", "validation"}
            The evaluation (test) set, or the task's validation split.

        The result is also appended to ``history.evals`` (validation results
        with ``"split": "validation"``).
        """
        where = "Trainer.evaluate"
        check_option(split, "split", ("test", "validation"), where=where)
        if split == "test":
            x, y = self.task.eval_data()
        else:
            data = self.task.validation_data()
            if data is None:
                raise ValueError(
                    f"{where}: the task {self.task.name!r} has no validation split; build it "
                    f"with validation_fraction > 0 (or array_task(..., x_val=, y_val=))"
                )
            x, y = data
        flat = self.task.flat
        n = x.shape[0] if flat else x.shape[1]
        bs = check_int(batch_size, "batch_size", where=where, low=1)
        total = 0.0
        preds = []
        _load_blas()
        with blas_threads(self.threads):
            for i in range(0, n, bs):
                xb = x[i : i + bs] if flat else x[:, i : i + bs]
                yb = y[:, i : i + bs] if self.task.sequence_output else y[i : i + bs]
                out, _ = self.model.forward(xb, train=False, rng=None)
                value, _ = self.loss.forward(out, yb)
                total += value * (xb.shape[0] if flat else xb.shape[1])
                preds.append(out)
        axis = 1 if self.task.sequence_output else 0
        pred = np.concatenate(preds, axis=axis)
        result = {"loss": total / n, "baseline": self.task.baseline}
        result.update(self.task.metrics(pred, y))
        entry = {"step": self.step_count, **result}
        if split != "test":
            entry["split"] = split
        self.history.evals.append(entry)
        return result

    # -- checkpoints --------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write a checkpoint (see :func:`lowdisp.nn.save`); returns the path."""
        from lowdisp.nn._checkpoint import save

        out = save(path, self)
        self.last_checkpoint_step = self.step_count
        self.last_checkpoint_path = out
        return out

    def load(self, path: str | os.PathLike[str]) -> Trainer:
        """Restore parameters, optimizer state, RNG state, step and history from ``path``.

        The file's spec must match :attr:`spec` exactly, and its parameter
        paths, shapes and dtypes the model's (see :func:`lowdisp.nn.load`);
        otherwise :class:`~lowdisp.exceptions.CheckpointError` names every
        difference and the trainer is left unchanged.
        """
        from lowdisp.nn._checkpoint import load

        load(path, trainer=self)
        return self


# -- models -----------------------------------------------------------------------


def build_model(
    task: Task,
    cell: str = "tanh",
    *,
    hidden: int = 128,
    dtype: Any = np.float32,
    rng: Any = None,
    **cell_options: Any,
) -> Sequential:
    """A recurrent layer and a linear readout sized for ``task``.

    Parameters
    ----------
    task : Task
    cell : str
        A name of :func:`make_cell`: ``tanh``, ``relu``, ``scaled_cayley``,
        ``householder``, ``svd``, ``full_unitary``, ``restricted_unitary``,
        ``expm``, ``lstm``, ``gru``.
    hidden : int
        Hidden units (complex units for the unitary maps).
    dtype : {float32, float64}
    rng : seed or Generator, optional
    **cell_options
        Passed to the cell (``activation=...``, ``recurrent_options=...``).

    Returns
    -------
    Sequential
        ``{"rnn": RNN(cell), "readout": Dense}``; parameter paths
        ``rnn.cell.*`` and ``readout.W``, ``readout.b``.

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> model = lnn.build_model(lnn.copy_memory(10), "tanh", hidden=16, rng=0)
    >>> sorted(model.params())
    ['readout.W', 'readout.b', 'rnn.cell.U', 'rnn.cell.W', 'rnn.cell.b']
    """
    if not isinstance(task, Task):
        raise TypeError(f"build_model: task must be a Task; got {type(task).__name__}")
    if task.flat:
        raise ValueError(
            f"build_model: the task {task.name!r} is flat (feature vectors, no time axis); "
            f"build a feed-forward net with build_mlp(task, ...) or a Sequential"
        )
    hidden = check_int(hidden, "hidden", where="build_model", low=1)
    dt = _check_dtype(dtype, "build_model")
    gen = as_rng(rng, where="build_model")
    c = make_cell(cell, task.input_size, hidden, dtype=dt, rng=gen, **cell_options)
    rnn = RNN(c, return_sequences=task.sequence_output)
    readout = Dense(c.state_size, task.output_size, dtype=dt, rng=gen)
    return Sequential({"rnn": rnn, "readout": readout})


#: activations of :func:`build_mlp`
MLP_ACTIVATIONS = ("relu", "tanh", "sigmoid")


def build_mlp(
    task: Task,
    hidden: Iterable[int] = (128,),
    *,
    activation: str = "relu",
    dtype: Any = np.float32,
    rng: Any = None,
) -> Sequential:
    """A feed-forward net (dense layers, an activation after each hidden one, a
    dense readout) sized for a flat task.

    Parameters
    ----------
    task : Task
        A flat classification or regression task (``task.flat``).
    hidden : sequence of int
        Widths of the hidden layers (may be empty: a linear model).
    activation : {"relu", "tanh", "sigmoid"}
    dtype : {float32, float64}
    rng : seed or Generator, optional

    Returns
    -------
    Sequential
        Layers ``fc0, act0, fc1, act1, ..., readout``; swap a hidden ``Dense``
        for a structured layer by building the ``Sequential`` yourself.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> task = lnn.array_task(np.zeros((10, 6)), np.arange(10) % 3, flat=True)
    >>> net = lnn.build_mlp(task, hidden=(16, 8), rng=0)
    >>> list(net.layers)
    ['fc0', 'act0', 'fc1', 'act1', 'readout']
    """
    where = "build_mlp"
    if not isinstance(task, Task):
        raise TypeError(f"{where}: task must be a Task; got {type(task).__name__}")
    if not task.flat:
        raise ValueError(
            f"{where}: the task {task.name!r} is a sequence task; build it with flat=True "
            f"(or array_task(..., flat=True)), or use build_model for RNNs"
        )
    if isinstance(hidden, int | str) or not isinstance(hidden, Iterable):
        raise TypeError(f"{where}: hidden must be a sequence of widths; got {hidden!r}")
    widths = [check_int(h, f"hidden[{i}]", where=where, low=1) for i, h in enumerate(hidden)]
    check_option(activation, "activation", MLP_ACTIVATIONS, where=where)
    dt = _check_dtype(dtype, where)
    gen = as_rng(rng, where=where)
    layers: dict[str, Layer] = {}
    size = task.input_size
    for i, w in enumerate(widths):
        layers[f"fc{i}"] = Dense(size, w, dtype=dt, rng=gen)
        layers[f"act{i}"] = Activation(activation, dtype=dt)
        size = w
    layers["readout"] = Dense(size, task.output_size, dtype=dt, rng=gen)
    return Sequential(layers)


def recurrent_matrix(model: Layer) -> np.ndarray:
    """The recurrent matrix ``W`` of the first recurrent layer of ``model``.

    For orthogonal cells it is formed from the current parameters by the map
    (complex ``(n, n)`` for the unitary maps); for the dense cell it is a copy
    of ``W``; for LSTM/GRU it is the stacked ``W_h``.

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> model = lnn.build_model(lnn.adding(10), "tanh", hidden=6, rng=0)
    >>> lnn.recurrent_matrix(model).shape
    (6, 6)
    """
    if not isinstance(model, Layer):
        raise TypeError(
            f"recurrent_matrix: model must be a lowdisp.nn Layer; got {type(model).__name__}"
        )
    layers: list[Layer] = [model]
    while layers:
        layer = layers.pop(0)
        if isinstance(layer, RNN):
            cell = layer.cell
            if hasattr(cell, "recurrent_matrix"):
                return cell.recurrent_matrix()
            return cell.params()["W_h"].copy()
        if isinstance(layer, Sequential):
            layers.extend(layer.layers.values())
    raise ValueError("recurrent_matrix: the model has no RNN layer")


#: ``make_trainer``/``train``/``lowdisp train`` optimizer names; KFAC/EKFAC precondition the dense
#: layers and dense tanh/ReLU cells (KFAC-expand) and step the rest with their SGD
#: (name -> class name; KFAC/EKFAC register themselves with the spec registry, so this
#: module does not import _kfac, which would close an import circle through _spec)
OPTIMIZERS = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD", "kfac": "KFAC", "ekfac": "EKFAC"}


def make_trainer(
    task: Task,
    cell: str = "tanh",
    *,
    hidden: int = 128,
    batch_size: int = 64,
    optimizer: str = "rmsprop",
    lr: float = 1e-3,
    lr_orth: float | None = None,
    clip_norm: float | None = None,
    schedule: Any = None,
    dtype: Any = np.float32,
    rng: Any = None,
    eval_every: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    callbacks: Iterable[Callback] = (),
    cell_options: dict | None = None,
) -> Trainer:
    """Build a model for ``task`` and a :class:`Trainer` for it (nothing is trained yet).

    Parameters
    ----------
    task : Task
    cell : str
        See :func:`build_model`.
    hidden, batch_size : int
    optimizer : {"rmsprop", "adam", "sgd", "kfac", "ekfac"}
        ``"kfac"``/``"ekfac"``: :class:`KFAC`/:class:`EKFAC` with their defaults
        (SGD with momentum 0.9 after the preconditioner; dense layers and dense
        tanh/ReLU cells are preconditioned, other parameters get the plain step).
    lr : float
        Learning rate of all parameters except the recurrent map's.
    lr_orth : float, optional
        Learning rate of the recurrent parameterization (``*.W.theta*``);
        default ``lr / 10`` for the orthogonal maps (the papers' ratio).
    clip_norm : float, optional
        Global gradient-norm clipping.
    schedule : callable, optional
        ``schedule(step) -> multiplier`` of the learning rates (e.g.
        :func:`cosine_schedule`).
    dtype : {float32, float64}
    rng : seed or Generator, optional
        Seeds the model (first spawned stream) and the run (second stream).
    eval_every, checkpoint, checkpoint_every, callbacks
        See :class:`Trainer`.
    cell_options : dict, optional
        Passed to the cell (``activation=``, ``recurrent_options=``).

    Returns
    -------
    Trainer

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> tr = lnn.make_trainer(lnn.copy_memory(5), "tanh", hidden=8, rng=0)
    >>> tr.step_count, tr.batch_size
    (0, 64)
    """
    where = "make_trainer"
    if not isinstance(task, Task):
        raise TypeError(f"{where}: task must be a Task; got {type(task).__name__}")
    check_option(optimizer, "optimizer", OPTIMIZERS, where=where)
    lr = check_positive(lr, "lr", where=where)
    if lr_orth is not None:
        lr_orth = check_positive(lr_orth, "lr_orth", where=where)
    if cell_options is not None and not isinstance(cell_options, Mapping):
        raise TypeError(
            f"{where}: cell_options must be None or a dict of cell keyword arguments; "
            f"got {type(cell_options).__name__}"
        )
    seeds = np.random.SeedSequence(int(as_rng(rng, where=where).integers(2**63))).spawn(2)
    model = build_model(
        task,
        cell,
        hidden=hidden,
        dtype=dtype,
        rng=np.random.default_rng(seeds[0]),
        **(cell_options or {}),
    )
    orth = any(".W.theta" in k for k in model.params())
    if lr_orth is None:
        lr_orth = lr / 10 if orth else lr
    groups = {"*.W.theta*": {"lr": lr_orth}} if orth else None
    from lowdisp.nn._spec import _optimizer_classes

    cls = _optimizer_classes()[OPTIMIZERS[optimizer]]
    opt = cls(lr, groups=groups, clip_norm=clip_norm, schedule=schedule)
    return Trainer(
        model,
        task.loss(),
        opt,
        task,
        batch_size=batch_size,
        rng=np.random.default_rng(seeds[1]),
        callbacks=callbacks,
        eval_every=eval_every,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
    )


def train(
    task: Task,
    cell: str = "tanh",
    *,
    steps: int = 1000,
    progress: bool = True,
    time_limit: float | None = None,
    **kw: Any,
) -> Trainer:
    """Build a model for ``task`` and train it: the whole recipe in one call.

    Parameters
    ----------
    task : Task
    cell : str
        See :func:`build_model`.
    steps : int
    progress : bool
        tqdm progress bar with loss, baseline and steps/s.
    time_limit : float, optional
        Stop after this many seconds even if ``steps`` are not done.
    **kw
        Everything :func:`make_trainer` takes (``hidden``, ``batch_size``,
        ``optimizer``, ``lr``, ``lr_orth``, ``clip_norm``, ``schedule``, ``dtype``,
        ``rng``, ``eval_every``, ``checkpoint``, ``checkpoint_every``,
        ``callbacks``, ``cell_options``).

    Returns
    -------
    Trainer
        With ``.model``, ``.history`` and ``.evaluate()``; the trained
        recurrent matrix is ``recurrent_matrix(trainer.model)``.

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> tr = lnn.train(lnn.copy_memory(5), "tanh", hidden=8, steps=3, progress=False, rng=0)
    >>> tr.step_count
    3
    """
    steps = check_int(steps, "steps", where="train", low=0)
    progress = check_bool(progress, "progress", where="train")
    trainer = make_trainer(task, cell, **kw)
    trainer.fit(steps, progress=progress, time_limit=time_limit)
    return trainer
