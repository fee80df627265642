"""Specifications: every component of a run as a JSON-able dict, rebuilt from it (private).

A *spec* is what :attr:`lowdisp.nn.Trainer.spec` returns and what every
checkpoint records: ``{"format", "format_version", "lowdisp_version",
"model", "loss", "optimizer", "task", "trainer", "dtype"}``. Each component
describes itself with ``get_config()`` (``{"class": name, **arguments}``);
this module walks a trainer into a spec, compares two specs field by field
(dotted paths such as ``model.rnn.cell.recurrent_options.n_neg``) and rebuilds
a trainer from a spec. A component that cannot be rebuilt (a custom layer,
a plain-function schedule, a task built from arrays) is recorded by class
name and ``repr`` with ``"rebuildable": False``.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from typing import Any

import numpy as np

__all__ = [
    "SPEC_FORMAT",
    "SPEC_VERSION",
    "build_trainer",
    "diff_specs",
    "format_value",
    "layer_spec",
    "not_rebuildable",
    "trainer_spec",
]

SPEC_FORMAT = "lowdisp-spec"
#: version of the spec layout (also the checkpoint format version)
SPEC_VERSION = 2
#: fields of a spec that are not compared between a checkpoint and a trainer
NOT_COMPARED = ("format", "format_version", "lowdisp_version")

_MISSING = object()


# ---------------------------------------------------------------------------
# registries (lazy: filled on first use to keep imports acyclic)
# ---------------------------------------------------------------------------


def _layer_classes() -> dict[str, type]:
    from lowdisp.nn import _layers as L
    from lowdisp.nn import _rnn as R

    classes = [
        L.Dense,
        L.Embedding,
        L.OneHot,
        L.Activation,
        L.Tanh,
        L.ReLU,
        L.Sigmoid,
        L.ModReLU,
        L.Dropout,
        L.Sequential,
        R.RNN,
        R.RNNCell,
        R.TanhRNNCell,
        R.ReLURNNCell,
        R.LSTMCell,
        R.GRUCell,
    ]
    return {**{c.__name__: c for c in classes}, **_REGISTERED_LAYERS}


#: layer classes registered by their own modules (see :func:`register_layer`)
_REGISTERED_LAYERS: dict[str, type] = {}


def register_layer(cls: type) -> type:
    """Class decorator: record a layer class so that specs and checkpoints rebuild it.

    For layer modules outside the built-in list above (the structured layers):
    they import this module, so this module never imports them and they stay
    out of the circle between ``_spec`` and the modules it rebuilds.
    """
    _REGISTERED_LAYERS[cls.__name__] = cls
    return cls


def _loss_classes() -> dict[str, type]:
    from lowdisp.nn._losses import MSE, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy

    return {c.__name__: c for c in (MSE, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy)}


def _optimizer_classes() -> dict[str, type]:
    from lowdisp.nn._optim import SGD, Adam, RMSprop

    return {**{c.__name__: c for c in (SGD, Adam, RMSprop)}, **_REGISTERED_OPTIMIZERS}


#: optimizer classes registered by their own modules (KFAC, EKFAC; see register_optimizer)
_REGISTERED_OPTIMIZERS: dict[str, type] = {}


def register_optimizer(cls: type) -> type:
    """Class decorator: record an optimizer class so that specs and checkpoints rebuild
    it (as :func:`register_layer`: this module never imports the optimizer's module)."""
    _REGISTERED_OPTIMIZERS[cls.__name__] = cls
    return cls


@functools.lru_cache(maxsize=1)
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lowdisp")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.dtype):
        return o.name
    if isinstance(o, type) and issubclass(o, np.generic):
        return np.dtype(o).name
    return repr(o)


def canonical(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, numpy scalars Python)."""
    return json.loads(json.dumps(obj, default=_json_default))


# ---------------------------------------------------------------------------
# trainer -> spec
# ---------------------------------------------------------------------------


def _opaque(obj: Any, config: Any = None) -> dict[str, Any]:
    out = {
        "class": type(obj).__name__,
        "module": type(obj).__module__,
        "repr": repr(obj),
        "rebuildable": False,
    }
    if config is not None:
        out["config"] = config
    return out


def layer_spec(layer: Any) -> dict[str, Any]:
    """The config of a layer or cell; custom classes by name and ``repr`` only."""
    cls = type(layer)
    cfg = layer.get_config() if hasattr(layer, "get_config") else None
    if _layer_classes().get(cls.__name__) is cls and cfg is not None:
        return cfg
    return _opaque(layer, cfg)


def _loss_spec(loss: Any) -> dict[str, Any]:
    cls = type(loss)
    if _loss_classes().get(cls.__name__) is cls:
        return loss.get_config()
    return _opaque(loss)


def _optimizer_spec(opt: Any) -> dict[str, Any]:
    cls = type(opt)
    cfg = opt.get_config()
    if _optimizer_classes().get(cls.__name__) is cls:
        return cfg
    return _opaque(opt, cfg)


def _task_spec(task: Any) -> dict[str, Any]:
    cfg = getattr(task, "config", None)
    if cfg is None:
        return {
            "name": task.name,
            "factory": None,
            "repr": task.describe(),
            "rebuildable": False,
        }
    return {"name": task.name, **cfg}


def trainer_spec(trainer: Any) -> dict[str, Any]:
    """The whole spec of ``trainer`` (see :attr:`lowdisp.nn.Trainer.spec`)."""
    spec = {
        "format": SPEC_FORMAT,
        "format_version": SPEC_VERSION,
        "lowdisp_version": _version(),
        "model": layer_spec(trainer.model),
        "loss": _loss_spec(trainer.loss),
        "optimizer": _optimizer_spec(trainer.optimizer),
        "task": _task_spec(trainer.task),
        "trainer": {
            "batch_size": trainer.batch_size,
            "eval_every": trainer.eval_every,
            "checkpoint_every": trainer.checkpoint_every,
            "threads": trainer.threads,
        },
        "dtype": np.dtype(trainer.model.dtype).name,
    }
    return canonical(spec)


# ---------------------------------------------------------------------------
# comparing specs
# ---------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if _number(a) and _number(b):
        return a == b
    return type(a) is type(b) and a == b


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def diff_specs(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every differing field of two specs: ``[(dotted path, value in a, value in b)]``.

    A field missing on one side has the value ``_MISSING``. The children of a
    ``Sequential`` are named directly under it (``model.rnn.cell...``, not
    ``model.layers.rnn...``); lists are compared whole.
    """
    out: list[tuple[str, Any, Any]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        flat = a.get("class") == "Sequential" and b.get("class") == "Sequential"
        keys = list(a) + [k for k in b if k not in a]
        for k in keys:
            if not path and k in NOT_COMPARED:
                continue
            sub = path if (flat and k == "layers") else (f"{path}.{k}" if path else str(k))
            if k not in a or k not in b:
                out.append((sub, a.get(k, _MISSING), b.get(k, _MISSING)))
            else:
                out.extend(diff_specs(a[k], b[k], sub))
        return out
    if not _same(a, b):
        out.append((path, a, b))
    return out


def format_value(v: Any, limit: int = 80) -> str:
    """A short ``repr`` of a spec value for error messages."""
    if v is _MISSING:
        return "(absent)"
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 5] + " ...]"


def not_rebuildable(spec: Any, path: str = "") -> list[tuple[str, dict]]:
    """Paths of the parts of a spec marked ``"rebuildable": False``."""
    out: list[tuple[str, dict]] = []
    if isinstance(spec, dict):
        if spec.get("rebuildable") is False:
            return [(path, spec)]
        flat = spec.get("class") == "Sequential"
        for k, v in spec.items():
            sub = path if (flat and k == "layers") else (f"{path}.{k}" if path else str(k))
            out.extend(not_rebuildable(v, sub))
    return out


# ---------------------------------------------------------------------------
# spec -> trainer
# ---------------------------------------------------------------------------


class SpecError(ValueError):
    """A spec that cannot be rebuilt (private; the caller turns it into CheckpointError)."""


def _kwargs(cfg: dict, path: str) -> dict[str, Any]:
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class"), str):
        raise SpecError(f"{path} must be a dict with a 'class' name; got {format_value(cfg)}")
    return {k: v for k, v in cfg.items() if k != "class"}


def _call(cls: type, kw: dict, path: str) -> Any:
    params = inspect.signature(cls).parameters
    if "rng" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kw = {**kw, "rng": 0}  # parameters are overwritten by the checkpoint's arrays
    try:
        return cls(**kw)
    except (TypeError, ValueError, KeyError) as exc:
        raise SpecError(
            f"{path}: cannot build {cls.__name__} from {format_value(kw)}: {exc}"
        ) from exc


def build_layer(cfg: Any, path: str) -> Any:
    """A layer or cell from its config (parameters freshly initialised)."""
    kw = _kwargs(cfg, path)
    name = cfg["class"]
    cls = _layer_classes().get(name)
    if cls is None:
        raise SpecError(f"{path}: unknown layer class {name!r}")
    if name == "Sequential":
        layers = kw.get("layers")
        if not isinstance(layers, dict) or not layers:
            raise SpecError(f"{path}.layers must be a non-empty dict; got {format_value(layers)}")
        built = {k: build_layer(v, f"{path}.{k}" if path else k) for k, v in layers.items()}
        return cls(built)
    if name == "RNN":
        kw["cell"] = build_layer(kw.get("cell"), f"{path}.cell")
        return _call(cls, kw, path)
    if name in ("TanhRNNCell", "ReLURNNCell"):
        kw.pop("activation", None)  # fixed by the class
    return _call(cls, kw, path)


def _build_schedule(cfg: Any, path: str) -> Any:
    from lowdisp.nn._optim import SCHEDULES

    if cfg is None:
        return None
    if not isinstance(cfg, dict) or cfg.get("name") not in SCHEDULES:
        raise SpecError(f"{path}: unknown schedule {format_value(cfg)}")
    kw = {k: v for k, v in cfg.items() if k != "name"}
    fn = SCHEDULES[cfg["name"]]
    try:
        return fn(**kw)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{path}: cannot build {cfg['name']} from {format_value(kw)}: {exc}"
        ) from exc


def _build_optimizer(cfg: Any, path: str) -> Any:
    kw = _kwargs(cfg, path)
    cls = _optimizer_classes().get(cfg["class"])
    if cls is None:
        raise SpecError(f"{path}: unknown optimizer class {cfg['class']!r}")
    kw["schedule"] = _build_schedule(kw.get("schedule"), f"{path}.schedule")
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{path}: cannot build {cls.__name__} from {format_value(kw)}: {exc}"
        ) from exc


def _build_loss(cfg: Any, path: str) -> Any:
    kw = _kwargs(cfg, path)
    cls = _loss_classes().get(cfg["class"])
    if cls is None:
        raise SpecError(f"{path}: unknown loss class {cfg['class']!r}")
    return _call(cls, kw, path)


def _build_task(cfg: Any, path: str) -> Any:
    from lowdisp.nn._tasks import FACTORIES

    if not isinstance(cfg, dict) or cfg.get("factory") not in FACTORIES:
        raise SpecError(f"{path}: unknown task factory {format_value(cfg)}")
    args = cfg.get("args")
    if not isinstance(args, dict):
        raise SpecError(f"{path}.args must be a dict; got {format_value(args)}")
    try:
        return FACTORIES[cfg["factory"]](**args)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{path}: cannot build {cfg['factory']}({format_value(args)}): {exc}"
        ) from exc


def build_trainer(spec: dict, *, task: Any, rng: Any, checkpoint: str | None) -> Any:
    """A Trainer from a (validated) spec; ``task`` given replaces the spec's task."""
    from lowdisp.nn._trainer import Trainer

    model = build_layer(spec["model"], "model")
    loss = _build_loss(spec["loss"], "loss")
    opt = _build_optimizer(spec["optimizer"], "optimizer")
    if task is None:
        task = _build_task(spec["task"], "task")
    settings = spec["trainer"]
    if not isinstance(settings, dict):
        raise SpecError(f"trainer must be a dict; got {format_value(settings)}")
    try:
        return Trainer(
            model,
            loss,
            opt,
            task,
            batch_size=settings.get("batch_size"),  # type: ignore[arg-type]
            rng=rng,
            eval_every=settings.get("eval_every"),
            checkpoint=checkpoint,
            checkpoint_every=settings.get("checkpoint_every"),
            threads=settings.get("threads"),
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"trainer: cannot build the Trainer from {format_value(settings)}: {exc}"
        ) from exc
