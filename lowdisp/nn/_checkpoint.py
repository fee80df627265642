"""Checkpoints: one ``.npz`` that describes its run and restores it exactly.

Layout (flat keys, no pickle anywhere; format version 2):

- ``params/<path>``: every parameter array, e.g. ``params/rnn.cell.W.theta``;
- ``opt/<key>``: the optimizer state (``opt/m/<path>``, ``opt/steps``, ...);
- ``masks/<path>`` (optional): the boolean pruning mask of a pruned
  parameter (``True`` = kept; see :func:`lowdisp.nn.set_mask`); the
  parameter must be exactly zero where its mask is ``False``;
- ``state/<key>`` (optional): the persistent power-iteration vectors of the
  cells' regularizers (float64), keyed as
  :func:`lowdisp.nn.regularizer_states` returns them:
  ``state/<cell path>.spectral_norm.u`` ``(n,)`` and
  ``state/<cell path>.unit_disk.q`` ``(n, 2)``, e.g.
  ``state/rnn.cell.unit_disk.q``; a load refuses a key the model does not
  keep or a vector of another shape, and resets a vector the file lacks;
- ``meta``: a JSON string with ``format``, ``version``, ``lowdisp_version``,
  ``step``, ``rng_state`` (the generator's ``bit_generator.state``),
  ``history``, ``elapsed``, ``spec`` (the trainer's full specification, see
  :attr:`lowdisp.nn.Trainer.spec`), ``keys`` (every array key) and ``crc32``
  (a CRC-32 of every array), plus one-line descriptions ``model``, ``task``,
  ``optimizer`` for people reading the file, and (flat tasks, optional)
  ``sampler``: the current epoch's shuffle ``{"seed", "start"}``;
- ``meta_crc32``: the CRC-32 of the ``meta`` text.

Writing is atomic (a temporary file in the same directory, ``fsync``, then
``os.replace``): a crash leaves the previous checkpoint intact, and a state
with non-finite values is never written. Reading
(:func:`read_checkpoint`) uses ``allow_pickle=False``, reads every array,
checks every CRC, every metadata key and its type, the RNG state (on a scratch
generator), the history and the spec before anything is touched, so a
refused file raises :class:`lowdisp.exceptions.CheckpointError` and never
loads half. :func:`load` rebuilds a trainer from the file alone, or checks a
given trainer against the file's spec and refuses any difference.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp.exceptions import CheckpointError
from lowdisp.nn._history import History
from lowdisp.nn._regularizers import (
    load_regularizer_states,
    regularizer_state_shapes,
    regularizer_states,
)

__all__ = ["Checkpoint", "load", "read_checkpoint", "save"]

FORMAT = "lowdisp-checkpoint"
VERSION = 2

#: numpy bit generators whose state a checkpoint may hold
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
#: required metadata keys and what each must be
_META_TYPES = {
    "format": "the string 'lowdisp-checkpoint'",
    "version": "an integer",
    "lowdisp_version": "a string",
    "step": "a non-negative integer",
    "rng_state": "a numpy bit-generator state (a dict)",
    "history": "a dict of lists (the training history)",
    "elapsed": "a non-negative number of seconds",
    "spec": "a dict (the trainer's specification)",
    "keys": "a list of array names",
    "crc32": "a dict of array name -> CRC-32",
}
_HISTORY_SERIES = ("step", "loss", "grad_norm", "time")
_SPEC_PARTS = ("model", "loss", "optimizer", "task", "trainer")


@dataclass(frozen=True)
class Checkpoint:
    """The validated content of a checkpoint file (see :func:`read_checkpoint`).

    Attributes
    ----------
    params : dict of path -> ndarray
    optimizer_state : dict of key -> ndarray
    rng_state : dict
        ``numpy.random.Generator.bit_generator.state``.
    step : int
    spec : dict
        The trainer's specification when it was saved (model, loss,
        optimizer, task, trainer settings, dtype, versions); see
        :attr:`lowdisp.nn.Trainer.spec`.
    meta : dict
        All metadata (history, elapsed time, versions, the spec, checksums).
    path : str
        The file it was read from.
    masks : dict of path -> bool ndarray
        The pruning masks (empty: nothing pruned).
    states : dict of key -> ndarray
        The regularizers' persistent power-iteration vectors (see
        :func:`lowdisp.nn.regularizer_states`; empty: none).

    Examples
    --------
    >>> import os, tempfile
    >>> import lowdisp.nn as lnn
    >>> tr = lnn.train(lnn.adding(10), "tanh", hidden=4, steps=3, progress=False, rng=0)
    >>> ck = lnn.read_checkpoint(lnn.save(os.path.join(tempfile.mkdtemp(), "ck"), tr))
    >>> ck.step, sorted(ck.params)[:2], ck.spec["model"]["layers"]["rnn"]["cell"]["class"]
    (3, ['readout.W', 'readout.b'], 'TanhRNNCell')
    """

    params: dict
    optimizer_state: dict
    rng_state: dict
    step: int
    spec: dict
    meta: dict
    path: str = ""
    masks: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)


def save(path: str | os.PathLike[str], trainer: Any) -> str:
    """Write ``trainer``'s full state and specification to ``path`` (``.npz``), atomically.

    Parameters
    ----------
    path : str or PathLike
        The file; its directory is created if needed. ``.npz`` is appended
        when missing.
    trainer : Trainer

    Returns
    -------
    str
        The path written.

    Raises
    ------
    CheckpointError
        A parameter or optimizer array holds NaN/Inf (such a state cannot
        be resumed; nothing is written and the previous file is kept).

    Notes
    -----
    Callbacks are not saved (they are code); the trainer's checkpoint path
    is not part of the spec either.

    Examples
    --------
    >>> import tempfile, os
    >>> import lowdisp.nn as lnn
    >>> tr = lnn.train(lnn.adding(10), "tanh", hidden=4, steps=2, progress=False, rng=0)
    >>> d = tempfile.mkdtemp()
    >>> p = lnn.save(os.path.join(d, "ck.npz"), tr)
    >>> lnn.read_checkpoint(p).step
    2
    """
    from lowdisp.nn._spec import _json_default

    path = _as_path(path, "save")
    if not _is_trainer(trainer):
        raise TypeError(f"save: trainer must be a lowdisp.nn Trainer; got {type(trainer).__name__}")
    if not path.endswith(".npz"):
        path += ".npz"
    arrays: dict[str, np.ndarray] = {}
    for k, v in trainer.model.params().items():
        arrays[f"params/{k}"] = np.asarray(v)
    for k, v in trainer.optimizer.state_dict().items():
        arrays[f"opt/{k}"] = np.asarray(v)
    for k, v in getattr(trainer, "masks", {}).items():
        arrays[f"masks/{k}"] = np.asarray(v, dtype=bool)
    for k, v in regularizer_states(trainer.model).items():
        arrays[f"state/{k}"] = v
    bad = nonfinite(arrays)
    if bad:
        raise CheckpointError(
            f"save: refusing to write {path!r}: {', '.join(bad)} hold NaN/Inf values (a state "
            f"that cannot be resumed); the previous checkpoint, if any, is unchanged"
        )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "lowdisp_version": _version(),
        "step": int(trainer.step_count),
        "rng_state": trainer.rng.bit_generator.state,
        "history": trainer.history.to_dict(),
        "elapsed": float(getattr(trainer, "_elapsed", 0.0)),
        "sampler": getattr(trainer, "sampler_state", None),
        "spec": trainer.spec,
        "model": repr(trainer.model),
        "task": trainer.task.describe(),
        "optimizer": repr(trainer.optimizer),
        "keys": sorted(arrays),
        "crc32": {k: _crc(v) for k, v in arrays.items()},
    }
    text = json.dumps(meta, default=_json_default)
    arrays["meta"] = np.array(text)
    arrays["meta_crc32"] = np.array(zlib.crc32(text.encode()), dtype=np.int64)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename durable (best effort; not supported everywhere)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover
        pass
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint without a trainer.

    Every array is read and checked against its CRC-32; every metadata key
    and its type (step, RNG state, history, spec, keys, checksums) is checked,
    and the parameters and optimizer state must be finite and consistent
    (optimizer arrays shaped like their parameters).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Checkpoint
        With ``.params``, ``.optimizer_state``, ``.rng_state``, ``.step``,
        ``.spec``, ``.meta``.

    Raises
    ------
    CheckpointError
        The file is missing, truncated, corrupted, not a lowdisp checkpoint,
        of format version 1 (no specification), or has invalid metadata.

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> lnn.read_checkpoint("no/such/file.npz")
    Traceback (most recent call last):
    ...
    lowdisp.exceptions.CheckpointError: read_checkpoint: no checkpoint at 'no/such/file.npz'
    """
    return _read(_as_path(path, "read_checkpoint"), "read_checkpoint")


def load(path: str | os.PathLike[str], trainer: Any = None, *, task: Any = None) -> Any:
    """Restore a run from a checkpoint: rebuild the trainer, or check and restore ``trainer``.

    Parameters
    ----------
    path : str or PathLike
    trainer : Trainer, optional
        Without it, the whole trainer (model, loss, optimizer with its
        schedule, task, settings, RNG) is rebuilt from the file's spec; it
        writes its checkpoints back to ``path``. With it, ``trainer.spec`` is
        compared with the file's, and its parameter paths, shapes and dtypes
        with the file's arrays: any difference is refused. Its parameters
        (in place), optimizer state, RNG state, step and history are then
        replaced.
    task : Task, optional
        Only without ``trainer``: use this task instead of rebuilding it.
        Needed when the task was built from arrays (:func:`array_task`),
        which the file identifies (fingerprint) but does not hold; it must
        match the file's task spec.

    Returns
    -------
    Trainer
        The rebuilt trainer, or ``trainer``.

    Raises
    ------
    CheckpointError
        The file is refused (see :func:`read_checkpoint`); ``trainer`` (or
        ``task``) does not match it (the message names every differing field,
        e.g. ``model.rnn.cell.recurrent_options.n_neg``, with both values);
        or the file alone cannot rebuild the trainer (a custom layer, a
        plain-function schedule, an array task). A refused load leaves
        ``trainer`` exactly as it was.

    Notes
    -----
    Callbacks are not part of the spec: add them to the rebuilt trainer's
    ``callbacks`` list. The lowdisp version is recorded but not compared.

    Examples
    --------
    >>> import os, tempfile
    >>> import lowdisp.nn as lnn
    >>> from lowdisp.exceptions import CheckpointError
    >>> tr = lnn.train(lnn.copy_memory(5), "scaled_cayley", hidden=8, steps=3,
    ...                progress=False, rng=0)
    >>> p = tr.save(os.path.join(tempfile.mkdtemp(), "ck.npz"))
    >>> again = lnn.load(p)
    >>> again.step_count, again.spec == tr.spec
    (3, True)
    >>> other = lnn.make_trainer(lnn.copy_memory(5), "scaled_cayley", hidden=8,
    ...                          cell_options={"recurrent_init": "henaff"})
    >>> try:
    ...     lnn.load(p, trainer=other)
    ... except CheckpointError as exc:
    ...     print(str(exc).split(": ", 2)[2].split(";")[0])
    model.rnn.cell.recurrent_options.n_neg is 0 in the checkpoint, 4 in the trainer
    """
    from lowdisp.nn._spec import SpecError, build_trainer, diff_specs, not_rebuildable
    from lowdisp.nn._tasks import Task

    path = _as_path(path, "load")
    if trainer is not None and not _is_trainer(trainer):
        raise TypeError(
            f"load: trainer must be None or a lowdisp.nn Trainer; got {type(trainer).__name__}"
        )
    if trainer is not None and task is not None:
        raise TypeError("load: give task= only without trainer= (the trainer has its task)")
    if task is not None and not isinstance(task, Task):
        raise TypeError(f"load: task must be a lowdisp.nn Task; got {type(task).__name__}")
    ck = _read(path, "load")
    if trainer is not None:
        _check_trainer(ck, trainer, path)
        _restore(ck, trainer, path)
        return trainer
    spec = ck.spec
    if task is not None:
        from lowdisp.nn._spec import _task_spec, canonical

        diffs = diff_specs(spec["task"], canonical(_task_spec(task)), "task")
        if diffs:
            raise CheckpointError(
                f"load: {path!r} was written for another task: {_describe(diffs)}"
            )
    missing = [(p, d) for p, d in not_rebuildable(spec) if not (task is not None and p == "task")]
    if missing:
        raise CheckpointError(
            f"load: {path!r} cannot be rebuilt from the file alone: "
            + "; ".join(_why(p, d) for p, d in missing)
        )
    rng = _scratch_rng(ck.rng_state)
    try:
        tr = build_trainer(spec, task=task, rng=rng, checkpoint=path)
    except SpecError as exc:
        raise CheckpointError(
            f"load: {path!r} has a specification that cannot be rebuilt: {exc}"
        ) from exc
    diffs = diff_specs(spec, tr.spec)
    if diffs:  # pragma: no cover - a rebuild that does not reproduce its spec is a bug
        raise CheckpointError(
            f"load: rebuilding {path!r} gave a different specification ({_describe(diffs)}); "
            f"please report this as a lowdisp bug"
        )
    wrong = _check_params(ck, tr, path) + _check_masks(ck, tr) + _check_states(ck, tr)
    if wrong:
        raise CheckpointError(
            f"load: {path!r} holds parameters that do not fit its own specification: "
            + "; ".join(wrong)
        )
    _restore(ck, tr, path)
    return tr


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _is_trainer(obj: Any) -> bool:
    """``isinstance(obj, lowdisp.nn.Trainer)`` without importing the trainer (which
    imports this module): the trainer's class is recognised by its qualified name."""
    return any(
        c.__module__ == "lowdisp.nn._trainer" and c.__qualname__ == "Trainer"
        for c in type(obj).__mro__
    )


def _as_path(path: Any, where: str) -> str:
    """``os.fspath(path)`` for a str or PathLike (a ``TypeError`` naming ``where`` otherwise)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{where}: path must be a str or os.PathLike; got {type(path).__name__}")
    out = os.fspath(path)
    if not isinstance(out, str) or not out:
        raise TypeError(f"{where}: path must be a non-empty str path; got {path!r}")
    return out


def _version() -> str:
    from lowdisp.nn._spec import _version as v

    return v()


def _crc(a: np.ndarray) -> int:
    """CRC-32 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(a)
    head = f"{a.dtype.str}{a.shape}".encode()
    return zlib.crc32(a.tobytes(), zlib.crc32(head))


def nonfinite(arrays: dict[str, np.ndarray]) -> list[str]:
    """Names of the float/complex arrays holding NaN or Inf (min/max per array: cheap)."""
    bad = []
    for k, a in arrays.items():
        if a.size == 0 or a.dtype.kind not in "fc":
            continue
        r = a.view(a.real.dtype) if a.dtype.kind == "c" else a
        if not (math.isfinite(r.min()) and math.isfinite(r.max())):
            bad.append(k)
    return bad


def _why(path: str, d: dict) -> str:
    if path == "task":
        if d.get("factory") == "array_task":
            return (
                f"the task {d.get('name')!r} was built from arrays (array_task), which the "
                f"checkpoint does not hold; pass it: lnn.load(path, task=array_task(...))"
            )
        return (
            f"the task {d.get('name')!r} was built by hand (no config); pass it: "
            f"lnn.load(path, task=...)"
        )
    what = f"{d.get('class')} ({d.get('repr')})"
    return (
        f"{path} is a {what} without a configuration; build the trainer yourself and pass "
        f"it: lnn.load(path, trainer=...)"
    )


def _describe(diffs: list) -> str:
    from lowdisp.nn._spec import format_value

    return "; ".join(
        f"{p} is {format_value(a)} in the checkpoint, {format_value(b)} in the trainer"
        for p, a, b in diffs
    )


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _scratch_rng(state: dict) -> np.random.Generator:
    """A generator of the state's bit-generator type set to ``state`` (validated before)."""
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    return np.random.Generator(bg)


def _read(path: str, where: str) -> Checkpoint:
    if not os.path.isfile(path):
        raise CheckpointError(f"{where}: no checkpoint at {path!r}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise CheckpointError(f"{where}: {path!r} is not a lowdisp checkpoint (no 'meta')")
            text = str(z["meta"][()])
            if "meta_crc32" not in z.files:
                raise ValueError("no 'meta_crc32' checksum")
            if int(z["meta_crc32"]) != zlib.crc32(text.encode()):
                raise ValueError("checksum mismatch in the metadata")
            meta = json.loads(text)
            arrays = {k: z[k] for k in z.files if k not in ("meta", "meta_crc32")}
    except CheckpointError:
        raise
    except Exception as exc:  # zipfile and numpy raise many types on damaged input
        raise CheckpointError(
            f"{where}: {path!r} is truncated or corrupted and was not loaded "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: {path!r} is not a lowdisp checkpoint")
    version = meta.get("version")
    if version == 1:
        raise CheckpointError(
            f"{where}: {path!r} is a version-1 checkpoint (written by lowdisp "
            f"{meta.get('lowdisp_version', '< 0.2')}), which does not record the model "
            f"specification (the recurrent map's n_neg, the initialisation, ...), so it can "
            f"neither be checked against a trainer nor rebuilt; it is refused. Retrain, or "
            f"read its arrays with numpy.load({path!r})"
        )
    if version != VERSION:
        raise CheckpointError(
            f"{where}: {path!r} has checkpoint format version {version!r}; this lowdisp "
            f"({_version()}) reads version {VERSION}"
        )
    _validate_meta(meta, path, where)
    listed = set(meta["keys"])
    missing = listed - set(arrays)
    if missing:
        raise CheckpointError(f"{where}: {path!r} is incomplete; missing arrays {sorted(missing)}")
    extra = set(arrays) - listed
    if extra:
        raise CheckpointError(
            f"{where}: {path!r} holds arrays not listed in its metadata: {sorted(extra)}"
        )
    crcs = meta["crc32"]
    bad = sorted(k for k, v in arrays.items() if crcs.get(k) != _crc(v))
    if bad:
        raise CheckpointError(
            f"{where}: {path!r} is truncated or corrupted and was not loaded (checksum mismatch "
            f"in {bad})"
        )
    params = {k[len("params/") :]: v for k, v in arrays.items() if k.startswith("params/")}
    opt = {k[len("opt/") :]: v for k, v in arrays.items() if k.startswith("opt/")}
    masks = {k[len("masks/") :]: v for k, v in arrays.items() if k.startswith("masks/")}
    states = {k[len("state/") :]: v for k, v in arrays.items() if k.startswith("state/")}
    others = sorted(k for k in arrays if not k.startswith(("params/", "opt/", "masks/", "state/")))
    if others:
        raise CheckpointError(
            f"{where}: {path!r} must hold 'params/...' and 'opt/...' arrays only (and "
            f"'masks/...' pruning masks, 'state/...' regularizer vectors); got {others}"
        )
    if not params:
        raise CheckpointError(f"{where}: {path!r} holds no parameters")
    nonf = nonfinite(arrays)
    if nonf:
        raise CheckpointError(f"{where}: {path!r} holds NaN/Inf values in {nonf}; refused")
    _validate_optimizer_state(opt, params, path, where)
    _validate_masks(masks, params, path, where)
    return Checkpoint(
        params=params,
        optimizer_state=opt,
        rng_state=meta["rng_state"],
        step=meta["step"],
        spec=meta["spec"],
        meta=meta,
        path=path,
        masks=masks,
        states=states,
    )


def _validate_meta(meta: dict, path: str, where: str) -> None:
    def bad(key: str, got: Any) -> CheckpointError:
        text = repr(got)
        if len(text) > 60:
            text = text[:55] + " ...]"
        return CheckpointError(
            f"{where}: {path!r} has invalid metadata: {key!r} must be {_META_TYPES[key]}; "
            f"got {text}"
        )

    missing = [k for k in _META_TYPES if k not in meta]
    if missing:
        raise CheckpointError(
            f"{where}: {path!r} has incomplete metadata: missing {missing}; refused"
        )
    if not isinstance(meta["lowdisp_version"], str):
        raise bad("lowdisp_version", meta["lowdisp_version"])
    for key in ("model", "task", "optimizer"):  # one-line descriptions, for people
        if key in meta and not isinstance(meta[key], str):
            raise CheckpointError(
                f"{where}: {path!r} has invalid metadata: {key!r} must be a string (a "
                f"description); got {type(meta[key]).__name__}"
            )
    step = meta["step"]
    if not _is_int(step) or step < 0:
        raise bad("step", step)
    elapsed = meta["elapsed"]
    if not _is_num(elapsed) or not elapsed >= 0:
        raise bad("elapsed", elapsed)
    state = meta["rng_state"]
    if not isinstance(state, dict) or state.get("bit_generator") not in _BIT_GENERATORS:
        raise bad("rng_state", state)
    try:
        _scratch_rng(state)
    except Exception as exc:  # numpy raises TypeError/ValueError/KeyError on a bad state
        raise CheckpointError(
            f"{where}: {path!r} has invalid metadata: 'rng_state' is not a valid "
            f"{state['bit_generator']} state ({type(exc).__name__}: {exc})"
        ) from exc
    _validate_history(meta["history"], bad)
    sampler = meta.get("sampler")
    if sampler is not None and not (
        isinstance(sampler, dict)
        and set(sampler) == {"seed", "start"}
        and all(_is_int(v) and v >= 0 for v in sampler.values())
        and sampler["start"] <= step
    ):
        raise CheckpointError(
            f"{where}: {path!r} has invalid metadata: 'sampler' must be null or "
            f'{{"seed": int >= 0, "start": int in [0, step]}}; got {sampler!r}'
        )
    spec = meta["spec"]
    if (
        not isinstance(spec, dict)
        or any(not isinstance(spec.get(k), dict) for k in _SPEC_PARTS)
        or not isinstance(spec.get("dtype"), str)
    ):
        raise bad("spec", spec)
    keys = meta["keys"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise bad("keys", keys)
    crc = meta["crc32"]
    if (
        not isinstance(crc, dict)
        or set(crc) != set(keys)
        or not all(_is_int(v) for v in crc.values())
    ):
        raise bad("crc32", crc)


def _validate_history(h: Any, bad: Any) -> None:
    if not isinstance(h, dict):
        raise bad("history", h)
    n = None
    for k in _HISTORY_SERIES:
        v = h.get(k)
        if not isinstance(v, list) or not all(_is_num(x) for x in v):
            raise bad("history", {k: v})
        if n is not None and len(v) != n:
            raise bad("history", {k: f"{len(v)} entries, {n} in 'step'"})
        n = len(v)
    for k in ("evals", "records"):
        v = h.get(k)
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise bad("history", {k: v})
    if not _is_num(h.get("baseline")):
        raise bad("history", {"baseline": h.get("baseline")})


def _validate_optimizer_state(opt: dict, params: dict, path: str, where: str) -> None:
    for k, v in opt.items():
        if k == "steps":
            if v.shape != () or v.dtype.kind not in "iu" or int(v) < 0:
                raise CheckpointError(
                    f"{where}: {path!r} has an invalid optimizer step count 'opt/steps' "
                    f"({v.dtype}{v.shape})"
                )
            continue
        if k.startswith("curvature/"):  # KFAC/EKFAC factors: checked by the optimizer
            continue
        _, _, p = k.partition("/")
        if p not in params or params[p].shape != v.shape:
            raise CheckpointError(
                f"{where}: {path!r} has optimizer state 'opt/{k}' {v.shape} that matches no "
                f"parameter of that shape"
            )


def _validate_masks(masks: dict, params: dict, path: str, where: str) -> None:
    for k, m in masks.items():
        p = params.get(k)
        if p is None:
            raise CheckpointError(
                f"{where}: {path!r} has a pruning mask 'masks/{k}' for no parameter of the file"
            )
        if m.dtype != np.bool_ or m.shape != p.shape:
            raise CheckpointError(
                f"{where}: {path!r} has a pruning mask 'masks/{k}' of {m.dtype}{list(m.shape)}; "
                f"it must be bool{list(p.shape)} like its parameter"
            )
        if np.any(p[~m]):
            raise CheckpointError(
                f"{where}: {path!r} has parameter {k!r} non-zero at entries its pruning mask "
                f"removes; refused"
            )


def _check_masks(ck: Checkpoint, trainer: Any) -> list:
    """The file's masks against the trainer's model: paths, shapes, prunable parameters."""
    live = trainer.model.params()
    manifolds = trainer.model.manifolds()
    out = []
    for k, m in ck.masks.items():
        b = live.get(k)
        if b is None or b.shape != m.shape:
            got = "(absent)" if b is None else f"{b.dtype}{list(b.shape)}"
            out.append(f"masks.{k} is bool{list(m.shape)} in the checkpoint, {got} in the model")
        elif k in manifolds:
            out.append(f"masks.{k} masks a manifold parameter of the model, which cannot be pruned")
    return out


def _check_states(ck: Checkpoint, trainer: Any) -> list:
    """The file's regularizer vectors against the model's regularizers: keys, shapes."""
    shapes = regularizer_state_shapes(trainer.model)
    out = []
    for k, v in ck.states.items():
        want = shapes.get(k)
        if want is None:
            keeps = ", ".join(sorted(shapes)) or "none"
            out.append(f"state.{k} belongs to no regularizer of the model (it keeps: {keeps})")
        elif v.shape != want or v.dtype != np.float64:
            out.append(
                f"state.{k} is {v.dtype}{list(v.shape)} in the checkpoint, "
                f"float64{list(want)} in the model"
            )
    return out


def _check_params(ck: Checkpoint, trainer: Any, path: str) -> list:
    live = trainer.model.params()
    diffs = []
    for k in list(ck.params) + [k for k in live if k not in ck.params]:
        a = ck.params.get(k)
        b = live.get(k)
        sa = "(absent)" if a is None else f"{a.dtype}{list(a.shape)}"
        sb = "(absent)" if b is None else f"{b.dtype}{list(b.shape)}"
        if sa != sb:
            diffs.append(f"params.{k} is {sa} in the checkpoint, {sb} in the trainer")
    return diffs


def _check_trainer(ck: Checkpoint, trainer: Any, path: str) -> None:
    from lowdisp.nn._spec import diff_specs

    problems = []
    diffs = diff_specs(ck.spec, trainer.spec)
    if diffs:
        problems.append(_describe(diffs))
    problems.extend(_check_params(ck, trainer, path))
    problems.extend(_check_masks(ck, trainer))
    problems.extend(_check_states(ck, trainer))
    mine = type(trainer.rng.bit_generator).__name__
    theirs = ck.rng_state["bit_generator"]
    if mine != theirs:
        problems.append(
            f"rng.bit_generator is {theirs!r} in the checkpoint, {mine!r} in the trainer"
        )
    if problems:
        n = len(diffs) + len(problems) - (1 if diffs else 0)
        err = CheckpointError(
            f"load: {path!r} does not match the trainer ({n} difference{'s' if n > 1 else ''}): "
            + "; ".join(problems)
            + ". Rebuild the trainer from the file with lnn.load(path) (no trainer=), or build "
            "it with the checkpoint's settings"
        )
        err.differences = diffs  # type: ignore[attr-defined]
        raise err


def _restore(ck: Checkpoint, trainer: Any, path: str) -> None:
    """Write a validated checkpoint into a matching trainer (nothing here can fail)."""
    history = History.from_dict(ck.meta["history"])
    live = trainer.model.params()
    trainer.rng.bit_generator.state = ck.rng_state
    for k, v in ck.params.items():
        live[k][...] = v
    masks = trainer.masks  # the model's live dict, shared with the optimizer
    masks.clear()
    masks.update({k: np.array(v, dtype=bool, copy=True) for k, v in ck.masks.items()})
    load_regularizer_states(trainer.model, ck.states, "load")  # checked by _check_states
    trainer.optimizer.load_state_dict(ck.optimizer_state)
    trainer.step_count = ck.step
    trainer.history = history
    trainer._elapsed = float(ck.meta["elapsed"])
    sampler = ck.meta.get("sampler")
    trainer.sampler_state = None if sampler is None else dict(sampler)
    trainer._perm = None
    trainer.last_checkpoint_step = ck.step
    trainer.last_checkpoint_path = path
