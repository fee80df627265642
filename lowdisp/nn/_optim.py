"""Optimizers acting in place on a params dict, state keyed by parameter path.

``opt.step(params, grads, manifolds=None)`` updates every array of ``params``
in place. Per-parameter groups (``groups={"*.W.theta*": {"lr": 1e-4}}``,
shell patterns matched against the path, first match wins) set their own
learning rate and weight decay; the papers train orthogonal parameters with a
10x smaller rate. Parameters listed in ``manifolds`` (path -> a map with
``riemannian_step(W, G, lr)``, e.g. :class:`lowdisp.orthogonal.FullUnitary`)
are not moved along ``-lr·d`` but by ``W ← map.riemannian_step(W, d, lr)``,
where ``d`` is the optimizer's search direction (the gradient for SGD, the
RMS-normalized gradient for RMSprop, Adam's ``m̂/(√v̂ + ε)``), the
preconditioned Cayley step of Wisdom et al.'s code.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from lowdisp._validation import check_bool, check_int, check_positive, check_real
from lowdisp.exceptions import LowdispError

__all__ = [
    "SGD",
    "Adam",
    "Optimizer",
    "RMSprop",
    "clip_grad_norm",
    "constant_schedule",
    "cosine_schedule",
    "exponential_schedule",
    "global_norm",
    "step_schedule",
]


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """``sqrt(Σ ‖g‖²)`` over all gradient arrays (complex entries by modulus).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import global_norm
    >>> global_norm({"a": np.array([3.0]), "b": np.array([4.0])})
    5.0
    """
    if not isinstance(grads, Mapping):
        raise TypeError(f"global_norm: grads must be a dict of arrays; got {type(grads).__name__}")
    total = 0.0
    for g in grads.values():
        total += float(np.vdot(g, g).real)
    return math.sqrt(total)


def _sub_scaled(p: np.ndarray, lr: float, d: np.ndarray) -> None:
    """``p -= lr * d`` in place, without a temporary array the size of ``p``.

    Large contiguous real arrays of one dtype go through BLAS ``axpy`` (one
    read of ``d``, one read and write of ``p``); a fresh temporary every step
    would cost an allocation and its page faults on top of an extra pass.
    """
    if (
        p.size >= 4096
        and p.dtype == d.dtype
        and p.dtype.char in "fd"
        and p.flags.c_contiguous
        and d.flags.c_contiguous
        and p.shape == d.shape
    ):
        from scipy.linalg.blas import daxpy, saxpy

        axpy = saxpy if p.dtype.char == "f" else daxpy
        out = axpy(d.reshape(-1), p.reshape(-1), a=-lr)
        if not np.shares_memory(out, p):  # pragma: no cover - scipy always updates in place
            p[...] = out.reshape(p.shape)
    else:
        p -= lr * d


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``.

    Returns the norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import clip_grad_norm
    >>> g = {"w": np.array([3.0, 4.0])}
    >>> clip_grad_norm(g, 1.0), g["w"]
    (5.0, array([0.6, 0.8]))
    """
    max_norm = check_positive(max_norm, "max_norm", where="clip_grad_norm")
    if not isinstance(grads, Mapping):
        raise TypeError(
            f"clip_grad_norm: grads must be a dict of arrays; got {type(grads).__name__}"
        )
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


# ---------------------------------------------------------------------------
# Schedules: pure functions of the step, returning a multiplier of lr
# ---------------------------------------------------------------------------


class _Schedule:
    """Base of the schedules: ``schedule(step) -> multiplier`` with a JSON-able config.

    ``get_config()`` returns ``{"name": <function>, **arguments}``; the
    object's ``repr`` is the call that rebuilds it, and checkpoints record the
    config so :func:`lowdisp.nn.load` can rebuild it.
    """

    name = ""

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, step: Any) -> int:
        return check_int(step, "step", where=f"{self.name}(...)", low=0)

    def get_config(self) -> dict[str, Any]:
        """The arguments that rebuild this schedule, with its function's name."""
        return {"name": self.name, **self._args()}

    def _args(self) -> dict[str, Any]:
        return {}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Schedule)
            and type(other) is type(self)
            and (other.get_config() == self.get_config())
        )

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{self.name}({args})"


class _Constant(_Schedule):
    name = "constant_schedule"

    def __call__(self, step: int) -> float:
        self._step(step)
        return 1.0


class _Exponential(_Schedule):
    name = "exponential_schedule"

    def __init__(self, rate: float, every: int) -> None:
        self.rate = rate
        self.every = every

    def __call__(self, step: int) -> float:
        return self.rate ** (self._step(step) // self.every)

    def _args(self) -> dict[str, Any]:
        return {"rate": self.rate, "every": self.every}


class _Step(_Schedule):
    name = "step_schedule"

    def __init__(self, milestones: list[int], gamma: float) -> None:
        self.milestones = milestones
        self.gamma = gamma

    def __call__(self, step: int) -> float:
        step = self._step(step)
        return self.gamma ** sum(step >= m for m in self.milestones)

    def _args(self) -> dict[str, Any]:
        return {"milestones": list(self.milestones), "gamma": self.gamma}


class _Cosine(_Schedule):
    name = "cosine_schedule"

    def __init__(self, total: int, warmup: int, floor: float) -> None:
        self.total = total
        self.warmup = warmup
        self.floor = floor

    def __call__(self, step: int) -> float:
        step = self._step(step)
        warmup, floor = self.warmup, self.floor
        if warmup and step < warmup:
            return (step + 1) / warmup
        frac = min(1.0, (step - warmup) / max(1, self.total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac))

    def _args(self) -> dict[str, Any]:
        return {"total": self.total, "warmup": self.warmup, "floor": self.floor}


def constant_schedule() -> Callable[[int], float]:
    """Multiplier 1 at every step.

    Returns
    -------
    callable
        ``schedule(step) -> 1.0``, with ``get_config()`` (recorded in checkpoints).

    Examples
    --------
    >>> from lowdisp.nn import constant_schedule
    >>> constant_schedule()(1000)
    1.0
    >>> constant_schedule()
    constant_schedule()
    """
    return _Constant()


def exponential_schedule(rate: float, every: int = 1) -> Callable[[int], float]:
    """Multiplier ``rate ** (step // every)`` (Spectral-RNN: 0.99 per epoch).

    Returns
    -------
    callable
        ``schedule(step) -> multiplier``, with ``get_config()``.

    Examples
    --------
    >>> from lowdisp.nn import exponential_schedule
    >>> exponential_schedule(0.5, every=10)(25)
    0.25
    >>> exponential_schedule(0.5, every=10).get_config()
    {'name': 'exponential_schedule', 'rate': 0.5, 'every': 10}
    """
    rate = check_positive(rate, "rate", where="exponential_schedule")
    every = check_int(every, "every", where="exponential_schedule", low=1)
    return _Exponential(rate, every)


def step_schedule(milestones: list[int], gamma: float = 0.1) -> Callable[[int], float]:
    """Multiplier ``gamma ** (number of milestones <= step)``.

    Parameters
    ----------
    milestones : sequence of int
        Steps (>= 0) at which the multiplier is multiplied by ``gamma``.
    gamma : float
        Finite and > 0.

    Returns
    -------
    callable
        ``schedule(step) -> multiplier``, with ``get_config()``.

    Examples
    --------
    >>> from lowdisp.nn import step_schedule
    >>> step_schedule([10, 20], 0.1)(15)
    0.1
    >>> step_schedule([20, 10], 0.5)
    step_schedule(milestones=[10, 20], gamma=0.5)
    """
    where = "step_schedule"
    if isinstance(milestones, str | bytes) or not isinstance(milestones, Iterable):
        raise TypeError(f"{where}: milestones must be a sequence of integers; got {milestones!r}")
    ms = sorted(
        check_int(m, f"milestones[{i}]", where=where, low=0) for i, m in enumerate(milestones)
    )
    gamma = check_real(gamma, "gamma", where=where, low=0, low_open=True)
    return _Step(ms, gamma)


def cosine_schedule(total: int, *, warmup: int = 0, floor: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``floor`` at ``total``.

    ``total`` and ``warmup`` are integers >= 0; ``floor`` is in [0, 1] (the
    final fraction of the learning rate).

    Returns
    -------
    callable
        ``schedule(step) -> multiplier``, with ``get_config()``.

    Examples
    --------
    >>> from lowdisp.nn import cosine_schedule
    >>> round(cosine_schedule(100)(50), 6)
    0.5
    >>> cosine_schedule(100, floor=0.05)
    cosine_schedule(total=100, warmup=0, floor=0.05)
    """
    where = "cosine_schedule"
    total = check_int(total, "total", where=where, low=0)
    warmup = check_int(warmup, "warmup", where=where, low=0)
    floor = check_real(floor, "floor", where=where, low=0, high=1)
    return _Cosine(total, warmup, floor)


def schedule_config(schedule: Any) -> dict[str, Any] | None:
    """The config of a schedule (private helper): ``None`` for none, the schedule's
    ``get_config()``, or a non-rebuildable description of a plain function."""
    if schedule is None:
        return None
    if isinstance(schedule, _Schedule) and SCHEDULES.get(schedule.name) is not None:
        return schedule.get_config()
    return {"name": None, "repr": repr(schedule), "rebuildable": False}


#: schedule function name -> function (rebuilds a schedule from its config)
SCHEDULES: dict[str, Callable[..., Any]] = {
    "constant_schedule": constant_schedule,
    "exponential_schedule": exponential_schedule,
    "step_schedule": step_schedule,
    "cosine_schedule": cosine_schedule,
}


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------


class Optimizer:
    """Base class: learning rate, groups, weight decay, clipping, schedule, state.

    Parameters
    ----------
    lr : float
        Base learning rate.
    groups : mapping of pattern -> dict, optional
        Per-parameter overrides (``lr``, ``weight_decay``), shell patterns on
        the parameter path, first match wins.
    weight_decay : float
        L2 coefficient added to the gradient (never on manifold parameters).
    clip_norm : float, optional
        Clip the global gradient norm to this value before the step.
    schedule : callable, optional
        ``schedule(step) -> multiplier`` of every learning rate.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import SGD
    >>> params = {"w": np.array([1.0, 2.0])}
    >>> norm = SGD(lr=0.1).step(params, {"w": np.array([1.0, 1.0])})
    >>> params["w"]
    array([0.9, 1.9])
    """

    def __init__(
        self,
        lr: float,
        *,
        groups: Mapping[str, Mapping[str, float]] | None = None,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Callable[[int], float] | None = None,
    ) -> None:
        where = type(self).__name__
        self.lr = check_positive(lr, "lr", where=where)
        self.weight_decay = check_positive(weight_decay, "weight_decay", where=where, strict=False)
        self.clip_norm = (
            None if clip_norm is None else check_positive(clip_norm, "clip_norm", where=where)
        )
        self.groups: dict[str, dict[str, float]] = {}
        if groups is not None and not isinstance(groups, Mapping):
            raise TypeError(
                f"{where}: groups must be a dict {{pattern: {{'lr': ..., 'weight_decay': ...}}}}; "
                f"got {type(groups).__name__}"
            )
        if schedule is not None and not callable(schedule):
            raise TypeError(
                f"{where}: schedule must be None or a callable step -> multiplier; got {schedule!r}"
            )
        for pat, over in (groups or {}).items():
            if not isinstance(pat, str):
                raise TypeError(f"{where}: groups keys must be str patterns; got {pat!r}")
            if not isinstance(over, Mapping):
                raise TypeError(
                    f"{where}: groups[{pat!r}] must be a dict with 'lr' and/or 'weight_decay'; "
                    f"got {type(over).__name__}"
                )
            bad = set(over) - {"lr", "weight_decay"}
            if bad:
                raise ValueError(
                    f"{where}: groups[{pat!r}] may set only 'lr' and 'weight_decay'; "
                    f"got {sorted(bad)}"
                )
            self.groups[str(pat)] = {
                k: check_positive(v, f"groups[{pat!r}][{k!r}]", where=where, strict=k == "lr")
                for k, v in over.items()
            }
        self.schedule = schedule
        self.steps = 0
        self.state: dict[str, np.ndarray] = {}
        #: pruning masks ``{path: bool array}`` (True = kept), shared with the model
        #: by :class:`~lowdisp.nn.Trainer` (see :func:`lowdisp.nn.set_mask`)
        self.masks: dict[str, np.ndarray] = {}
        self._hyper: dict[str, tuple[float, float]] = {}

    def hyper(self, path: str) -> tuple[float, float]:
        """``(lr, weight_decay)`` of one parameter path (before the schedule)."""
        if path not in self._hyper:
            lr, wd = self.lr, self.weight_decay
            for pat, over in self.groups.items():
                if fnmatch.fnmatchcase(path, pat):
                    lr = over.get("lr", lr)
                    wd = over.get("weight_decay", wd)
                    break
            self._hyper[path] = (lr, wd)
        return self._hyper[path]

    def step(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        manifolds: Mapping[str, Any] | None = None,
    ) -> float:
        """One update of every parameter that has a gradient; returns the gradient norm.

        Parameters
        ----------
        params : dict of path -> array
            Updated in place.
        grads : dict of path -> array
            Same keys (a missing key leaves that parameter alone). Modified
            in place when clipping.
        manifolds : dict of path -> map, optional
            Parameters updated by ``map.riemannian_step``.

        Notes
        -----
        A parameter with a pruning mask in :attr:`masks` gets a masked
        gradient and search direction; after the update its pruned entries
        and their optimizer state (momentum, moments) are set to exactly 0.

        Raises
        ------
        LowdispError
            (a ``ValueError``) ``grads`` has a path that is not in ``params``.
        """
        where = f"{type(self).__name__}.step"
        for arg, value in (("params", params), ("grads", grads), ("manifolds", manifolds)):
            if not isinstance(value, Mapping) and not (arg == "manifolds" and value is None):
                raise TypeError(
                    f"{where}: {arg} must be a dict of path -> array; got {type(value).__name__}"
                )
        manifolds = manifolds or {}
        masks = self.masks
        unknown = set(grads) - set(params)
        if unknown:
            names = ", ".join(map(repr, sorted(unknown)))
            raise LowdispError(
                f"{where}: grads has unknown parameter path(s) {names} that are not in params "
                f"(known: {', '.join(map(repr, sorted(params)))}); "
                f"pass grads keyed by the same full paths as params (e.g. 'cell.W.theta')"
            )
        if masks:  # pruned entries get no gradient (and clipping sees the masked norm)
            grads = {k: g * masks[k] if k in masks else g for k, g in grads.items()}
        if self.clip_norm is not None:
            norm = clip_grad_norm(dict(grads), self.clip_norm)
        else:
            norm = global_norm(grads)
        mult = 1.0 if self.schedule is None else float(self.schedule(self.steps))
        self.steps += 1
        for path, g in grads.items():
            p = params[path]
            lr, wd = self.hyper(path)
            lr *= mult
            on_manifold = path in manifolds
            if wd and not on_manifold:
                g = g + wd * p
            keep = masks.get(path) if masks else None
            if keep is None and not on_manifold and self._fused_update(path, p, g, lr):
                continue
            d = self._direction(path, g)
            if keep is not None:
                off = ~keep
                np.copyto(d, 0, where=off)  # also covers 0/0 of a zeroed RMS average
            if on_manifold:
                p[...] = manifolds[path].riemannian_step(p, d, lr)
            else:
                _sub_scaled(p, lr, d)
            if keep is not None:  # pruned entries and their state stay exactly zero
                np.copyto(p, 0, where=off)
                suffix = "/" + path
                for key, buf in self.state.items():
                    if key.endswith(suffix) and buf.shape == off.shape:
                        np.copyto(buf, 0, where=off)
        return norm

    def _direction(self, path: str, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fused_update(self, path: str, p: np.ndarray, g: np.ndarray, lr: float) -> bool:
        """Update ``p`` (and the state) in one fused pass when the optimizer has one
        for this array; ``False``: use ``_direction`` and ``p -= lr * d``."""
        return False

    def _buf(self, name: str, path: str, like: np.ndarray, real: bool = False) -> np.ndarray:
        key = f"{name}/{path}"
        buf = self.state.get(key)
        if buf is None:
            dt = like.real.dtype if real else like.dtype
            buf = self.state[key] = np.zeros(like.shape, dtype=dt)
        return buf

    def state_dict(self) -> dict[str, np.ndarray]:
        """All optimizer state as flat arrays (for checkpoints)."""
        out = dict(self.state)
        out["steps"] = np.array(self.steps, dtype=np.int64)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (arrays are copied)."""
        state = dict(state)
        self.steps = int(state.pop("steps", 0))
        self.state = {k: np.array(v, copy=True) for k, v in state.items()}

    def get_config(self) -> dict[str, Any]:
        """The optimizer's settings as a JSON-able dict (recorded in checkpoints).

        ``{"class": name, "lr", "groups", "weight_decay", "clip_norm",
        "schedule", ...}`` plus the subclass's own settings (momentum, betas,
        ...). ``schedule`` is the schedule's ``get_config()``, ``None``, or for
        a plain function ``{"name": None, "repr": ..., "rebuildable": False}``.
        The state (moments, step count) is not part of it.

        Examples
        --------
        >>> from lowdisp.nn import SGD, step_schedule
        >>> cfg = SGD(lr=0.1, momentum=0.9, schedule=step_schedule([5])).get_config()
        >>> cfg["class"], cfg["momentum"], cfg["schedule"]["name"]
        ('SGD', 0.9, 'step_schedule')
        """
        return {
            "class": type(self).__name__,
            "lr": self.lr,
            "groups": {k: dict(v) for k, v in self.groups.items()},
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
            "schedule": schedule_config(self.schedule),
            **self._config(),
        }

    def _config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``v ← μ v + g``; step ``d = g + μ v`` (Nesterov) or ``d = v``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import SGD
    >>> p = {"w": np.array([1.0])}
    >>> opt = SGD(lr=0.5, momentum=0.9)
    >>> opt.step(p, {"w": np.array([1.0])}); opt.step(p, {"w": np.array([1.0])})
    1.0
    1.0
    >>> p["w"]
    array([-0.45])
    """

    def __init__(
        self, lr: float = 0.01, *, momentum: float = 0.0, nesterov: bool = False, **kw: Any
    ) -> None:
        super().__init__(lr, **kw)
        self.momentum = check_positive(momentum, "momentum", where="SGD", strict=False)
        if self.momentum >= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1); got {momentum}")
        nesterov = check_bool(nesterov, "nesterov", where="SGD")
        if nesterov and not self.momentum:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = nesterov

    def _config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _fused_update(self, path: str, p: np.ndarray, g: np.ndarray, lr: float) -> bool:
        # heavy-ball momentum on a large weight: one pass (kernels.optim) instead of
        # v *= mu; v += g; p -= lr * v (same rounding: the scalars in p's dtype, no FMA)
        if (
            not self.momentum
            or self.nesterov
            or p.size < 4096
            or p.dtype.char not in "fd"
            or g.dtype != p.dtype
            or g.shape != p.shape
            or not (p.flags.c_contiguous and g.flags.c_contiguous)
        ):
            return False
        from lowdisp.kernels.optim import sgd_momentum_update

        v = self._buf("v", path, g)
        t = p.dtype.type
        sgd_momentum_update(p.reshape(-1), v.reshape(-1), g.reshape(-1), t(lr), t(self.momentum))
        return True

    def _direction(self, path: str, g: np.ndarray) -> np.ndarray:
        if not self.momentum:
            return g
        v = self._buf("v", path, g)
        v *= self.momentum
        v += g
        return g + self.momentum * v if self.nesterov else v


class RMSprop(Optimizer):
    """RMSprop: ``v ← ρ v + (1 − ρ)|g|²``, ``d = g / (√v + ε)`` (optional momentum).

    Parameters
    ----------
    lr : float
    rho : float
        Decay of the squared-gradient average (0.9 as in the uRNN/scoRNN code).
    eps : float
    momentum : float
        ``b ← μ b + d``; step along ``b``.
    initial_accumulator : float
        Starting value of ``v`` (Arjovsky et al.'s code uses 1e-3; PyTorch 0).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import RMSprop
    >>> p = {"w": np.array([1.0])}
    >>> _ = RMSprop(lr=0.1, rho=0.0, eps=0.0).step(p, {"w": np.array([4.0])})
    >>> p["w"]
    array([0.9])
    """

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        rho: float = 0.9,
        eps: float = 1e-8,
        momentum: float = 0.0,
        initial_accumulator: float = 0.0,
        **kw: Any,
    ) -> None:
        super().__init__(lr, **kw)
        self.rho = check_positive(rho, "rho", where="RMSprop", strict=False)
        if self.rho >= 1:
            raise ValueError(f"RMSprop: rho must be in [0, 1); got {rho}")
        self.eps = check_positive(eps, "eps", where="RMSprop", strict=False)
        self.momentum = check_positive(momentum, "momentum", where="RMSprop", strict=False)
        self.initial_accumulator = check_positive(
            initial_accumulator, "initial_accumulator", where="RMSprop", strict=False
        )

    def _config(self) -> dict[str, Any]:
        return {
            "rho": self.rho,
            "eps": self.eps,
            "momentum": self.momentum,
            "initial_accumulator": self.initial_accumulator,
        }

    def _direction(self, path: str, g: np.ndarray) -> np.ndarray:
        key = f"v/{path}"
        new = key not in self.state
        v = self._buf("v", path, g, real=True)
        if new and self.initial_accumulator:
            v += self.initial_accumulator
        v *= self.rho
        v += (1 - self.rho) * (g.real**2 + g.imag**2 if np.iscomplexobj(g) else g * g)
        d = g / (np.sqrt(v) + self.eps)
        if self.momentum:
            b = self._buf("b", path, g)
            b *= self.momentum
            b += d
            return b
        return d


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)|g|²``,
    ``d = m̂ / (√v̂ + ε)`` with ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Adam
    >>> p = {"w": np.array([1.0])}
    >>> _ = Adam(lr=0.1).step(p, {"w": np.array([3.0])})
    >>> np.round(p["w"], 6)
    array([0.9])
    """

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        **kw: Any,
    ) -> None:
        super().__init__(lr, **kw)
        if isinstance(betas, str | bytes) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2); got {betas!r}")
        b1, b2 = (
            check_real(b, f"betas[{i}]", where="Adam", low=0, high=1, high_open=True)
            for i, b in enumerate(betas)
        )
        self.betas = (b1, b2)
        self.eps = check_positive(eps, "eps", where="Adam", strict=False)

    def _config(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "eps": self.eps}

    def _direction(self, path: str, g: np.ndarray) -> np.ndarray:
        b1, b2 = self.betas
        m = self._buf("m", path, g)
        v = self._buf("v", path, g, real=True)
        t = self.steps  # already incremented for this step
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g.real**2 + g.imag**2 if np.iscomplexobj(g) else g * g)
        mhat_scale = 1.0 / (1 - b1**t)
        vhat_scale = 1.0 / (1 - b2**t)
        return (m * mhat_scale) / (np.sqrt(v * vhat_scale) + self.eps)


# ---------------------------------------------------------------------------
# the pruning-mask store (lowdisp.nn._pruning builds on it; the Trainer binds it)
# ---------------------------------------------------------------------------

#: attribute of a model holding its live mask dict
_MASKS_ATTR = "_pruning_masks"


def model_masks(model: Any) -> dict[str, np.ndarray]:
    """The live ``{path: keep-mask}`` dict of ``model`` (created empty on first use)."""
    masks = model.__dict__.get(_MASKS_ATTR)
    if masks is None:
        masks = {}
        setattr(model, _MASKS_ATTR, masks)
    return masks


def bind_masks(optimizer: Any, masks: dict[str, np.ndarray]) -> None:
    """Share ``masks`` with ``optimizer`` (and the optimizer it wraps, e.g. KFAC's)."""
    seen = set()
    opt = optimizer
    while isinstance(opt, Optimizer) and id(opt) not in seen:
        seen.add(id(opt))
        opt.masks = masks
        opt = getattr(opt, "inner", None)
