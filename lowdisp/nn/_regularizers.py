"""Regularizers of the Elman cells (private): noise, dropout, norm penalties and constraints.

A cell takes ``regularizers={name: options}`` (a JSON-able dict, so
``get_config`` and checkpoints rebuild it); :func:`parse_regularizers`
validates it into a :class:`Regularizers` object the cell's fused loop
consults. Three kinds:

- **noise** (train mode only, drawn from the ``rng`` the trainer passes to
  ``forward``, in a fixed order, so a resumed run draws the same numbers):
  ``input_noise``, ``weight_noise``, ``dropout``, ``variational_dropout``,
  ``fast_dropout``; each realisation is held in the cache, so the backward pass
  is the exact derivative of the function with that draw;
- **penalties** (``l1``, ``l2``): their gradient is added inside
  ``backward_sequence``; their value is :func:`penalty` (the trainer's logged
  loss is the data loss only; add ``penalty(model)`` for the objective);
- **weight transforms and constraints** on the dense recurrent matrix:
  ``spectral_norm`` (Miyato et al. 2018: ``W / σ̂(W)``, ``σ̂`` from power
  iteration with a persistent vector, differentiated with ``u, v`` fixed),
  ``unit_disk`` (Sengupta & Friston: ``W`` scaled in place so its spectral
  radius, from subspace iteration and a Rayleigh quotient, is ``<= 1``) and
  ``max_norm`` (each unit's incoming weights, a row of ``[W U]``, clipped in
  place to norm ``c``).

The two constraints are projections after the update (projected gradient
descent): :func:`apply_constraints` projects the stored parameters, and the
:class:`~lowdisp.nn.Trainer` calls it once when it is built (the initial
weights) and after every optimizer step, so the parameters it holds,
evaluates and saves always satisfy them. A forward pass never changes the
parameters. A checkpoint load does not project: the file holds projected
parameters, and a second projection would advance ``unit_disk``'s subspace
and break the bit-exact resume. A training loop of one's own calls
:func:`apply_constraints` after each of its updates.

The persistent power-iteration vectors (``spectral_norm``'s ``u``,
``unit_disk``'s 2-column subspace ``Q``, float64) are state that a resumed
run needs: :func:`regularizer_states` returns them keyed
``<cell path>.spectral_norm.u`` / ``<cell path>.unit_disk.q`` (e.g.
``rnn.cell.unit_disk.q``), and checkpoints store them as ``state/<key>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lowdisp._validation import check_bool, check_int, check_option, check_real

__all__ = [
    "REGULARIZERS",
    "Regularizers",
    "apply_constraints",
    "load_regularizer_states",
    "parse_regularizers",
    "penalty",
    "regularizer_state_shapes",
    "regularizer_states",
]

#: name -> (default option key for a bare number, {option: default})
_SPECS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "input_noise": ("std", {"std": None}),
    "weight_noise": ("std", {"std": None, "per": "sequence", "input": True}),
    "dropout": ("p", {"p": None, "input": True, "output": True}),
    "variational_dropout": ("p", {"p": None, "input": True, "recurrent": True, "output": True}),
    "fast_dropout": ("p", {"p": None}),
    "l1": ("weight", {"weight": None, "params": None}),
    "l2": ("weight", {"weight": None, "params": None}),
    "max_norm": ("c", {"c": None}),
    "spectral_norm": (None, {"n_iter": 1}),
    "unit_disk": (None, {"n_iter": 20}),
}

#: the names ``regularizers=`` accepts
REGULARIZERS = tuple(_SPECS)


def _rate(v: Any, name: str, where: str) -> float:
    return check_real(v, name, where=where, low=0.0, high=1.0, high_open=True)


def parse_regularizers(spec: Any, where: str) -> Regularizers | None:
    """Validate ``regularizers=`` (``None``, a dict ``{name: number | dict | True}``)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"{where}: regularizers must be a dict {{name: options}} with names from "
            f"{', '.join(REGULARIZERS)}; got {type(spec).__name__}"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, val in spec.items():
        check_option(name, "regularizer", REGULARIZERS, where=where)
        key, defaults = _SPECS[name]
        if isinstance(val, Mapping):
            opts = dict(val)
        elif val is True and key is None:
            opts = {}
        elif key is not None and not isinstance(val, bool | Mapping):
            opts = {key: val}
        else:
            form = "True or a dict of options" if key is None else f"a number ({key}) or a dict"
            raise TypeError(f"{where}: regularizer {name!r} takes {form}; got {val!r}")
        unknown = set(opts) - set(defaults)
        if unknown:
            raise TypeError(
                f"{where}: regularizer {name!r} takes options {sorted(defaults)}; "
                f"got unknown {sorted(unknown)}"
            )
        full = {**defaults, **opts}
        w = f"{where}: regularizer {name!r}"
        for k in ("std",):
            if k in full:
                full[k] = check_real(full[k], k, where=w, low=0.0)
        for k in ("p",):
            if k in full:
                full[k] = _rate(full[k], k, w)
        for k in ("input", "output", "recurrent"):
            if k in full and not isinstance(full[k], bool | np.bool_):
                full[k] = _rate(full[k], k, w)  # a separate rate for this connection
            elif k in full:
                full[k] = check_bool(full[k], k, where=w)
        if "per" in full:
            full["per"] = check_option(full["per"], "per", ("sequence", "step"), where=w)
        if "weight" in full:
            full["weight"] = check_real(full["weight"], "weight", where=w, low=0.0)
        if "c" in full:
            full["c"] = check_real(full["c"], "c", where=w, low=0.0, low_open=True)
        if "n_iter" in full:
            full["n_iter"] = check_int(full["n_iter"], "n_iter", where=w, low=1)
        if full.get("params") is not None:
            ps = full["params"]
            if isinstance(ps, str) or not all(isinstance(p, str) for p in ps):
                raise TypeError(f"{w}: params must be a list of parameter names; got {ps!r}")
            full["params"] = list(ps)
        out[name] = full
    if "dropout" in out and "variational_dropout" in out:
        raise ValueError(f"{where}: choose one of 'dropout' and 'variational_dropout', not both")
    if "spectral_norm" in out and "unit_disk" in out:
        raise ValueError(f"{where}: choose one of 'spectral_norm' and 'unit_disk', not both")
    return Regularizers(out) if out else None


def _conn_rate(opts: dict, conn: str) -> float:
    """The dropout rate of one connection: ``p`` if the flag is True, its own rate if a
    number, 0 if False."""
    v = opts.get(conn, False)
    if v is True:
        return opts["p"]
    if v is False:
        return 0.0
    return float(v)


def _mask(gen: np.random.Generator, shape: tuple[int, ...], p: float, dtype: Any) -> np.ndarray:
    """Inverted-dropout mask: ``1/(1-p)`` with probability ``1 - p``, else 0."""
    keep = gen.random(shape, dtype=dtype) >= dtype.type(p)
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


#: persistent state key -> attribute of :class:`Regularizers`
_STATES = {"spectral_norm.u": "_u", "unit_disk.q": "_q"}


class Regularizers:
    """The validated ``regularizers=`` of one cell (private; see the module docstring)."""

    NOISE = ("input_noise", "weight_noise", "dropout", "variational_dropout", "fast_dropout")

    def __init__(self, cfg: dict[str, dict[str, Any]]) -> None:
        self.cfg = cfg
        self.noisy = any(k in cfg for k in self.NOISE)
        self._u: np.ndarray | None = None  # persistent power-iteration vector (spectral_norm)
        self._q: np.ndarray | None = None  # persistent subspace (unit_disk)

    def config(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.cfg.items()}

    def check_cell(self, cell: Any, where: str) -> None:
        """Refuse combinations the cell cannot honour (at construction)."""
        cfg = self.cfg
        dense = getattr(cell.weight, "kind", None) is None and cell.weight.map is None
        structured = type(cell.weight).__name__ == "_StructuredWeight"
        for name in ("spectral_norm", "unit_disk", "max_norm"):
            if name in cfg and (not dense or structured):
                raise ValueError(
                    f"{where}: regularizer {name!r} acts on a dense recurrent matrix; "
                    f"got recurrent={cell.recurrent!r}"
                )
        for name in ("l1", "l2"):
            ps = cfg.get(name, {}).get("params")
            if ps is not None:
                missing = [p for p in ps if p not in cell._params]
                if missing:
                    raise ValueError(
                        f"{where}: regularizer {name!r}: no parameter(s) {missing}; "
                        f"valid: {sorted(cell._params)}"
                    )

    def float_input_only(self) -> list[str]:
        """The regularizers that act on the input values (refused for token input)."""
        cfg = self.cfg
        bad = ["input_noise"] if "input_noise" in cfg else []
        for k in ("dropout", "variational_dropout"):
            if k in cfg and _conn_rate(cfg[k], "input") > 0:
                bad.append(f"{k} (input connection)")
        return bad

    # -- draws (train mode) -------------------------------------------------------
    def draw(
        self,
        gen: np.random.Generator,
        x: np.ndarray,
        N: int,
        wshape: tuple,
        ushape: tuple,
        dt: Any,
    ) -> dict[str, Any]:
        """All noise of one forward pass, in a fixed order (``wshape``/``ushape``: the
        shapes of the built recurrent matrix and of ``U``). Returns a dict."""
        cfg = self.cfg
        T, B = x.shape[:2]
        tokens = x.dtype.kind in "iu"
        d = None if tokens else x.shape[2]
        out: dict[str, Any] = {}
        if "input_noise" in cfg and cfg["input_noise"]["std"] > 0:
            out["x_add"] = gen.standard_normal((T, B, d), dtype=dt) * dt.type(
                cfg["input_noise"]["std"]
            )
        if "dropout" in cfg:
            o = cfg["dropout"]
            pi, po = _conn_rate(o, "input"), _conn_rate(o, "output")
            if pi > 0:
                out["x_mask"] = _mask(gen, (T, B, d), pi, dt)
            if po > 0:
                out["o_mask"] = _mask(gen, (T, B, N), po, dt)
        if "variational_dropout" in cfg:
            o = cfg["variational_dropout"]
            pi, pr, po = (_conn_rate(o, c) for c in ("input", "recurrent", "output"))
            if pi > 0:
                out["x_mask"] = _mask(gen, (1, B, d), pi, dt)
            if pr > 0:
                out["h_mask"] = _mask(gen, (B, N), pr, dt)
            if po > 0:
                out["o_mask"] = _mask(gen, (1, B, N), po, dt)
        if "weight_noise" in cfg and cfg["weight_noise"]["std"] > 0:
            o = cfg["weight_noise"]
            s = dt.type(o["std"])
            lead = (T,) if o["per"] == "step" else ()
            out["w_add"] = gen.standard_normal(lead + tuple(wshape), dtype=dt) * s
            if o["input"]:
                out["u_add"] = gen.standard_normal(lead + tuple(ushape), dtype=dt) * s
            out["w_per_step"] = o["per"] == "step"
        if "fast_dropout" in cfg and cfg["fast_dropout"]["p"] > 0:
            out["fd_eps"] = gen.standard_normal((T, B, N), dtype=dt)
            p = cfg["fast_dropout"]["p"]
            out["fd_c"] = p / (1.0 - p)
        return out

    # -- in-place constraints and weight transforms ----------------------------------
    def constrain(self, params: dict, dt: Any) -> None:
        """``max_norm`` and ``unit_disk``: project the stored parameters in place."""
        if "max_norm" in self.cfg:
            c = self.cfg["max_norm"]["c"]
            W, U = params["W"], params["U"]
            norms = np.sqrt(np.einsum("ij,ij->i", W, W) + np.einsum("ij,ij->i", U, U))
            scale = np.minimum(1.0, c / np.maximum(norms, np.finfo(dt).tiny)).astype(dt)
            W *= scale[:, None]
            U *= scale[:, None]
        if "unit_disk" in self.cfg:
            W = params["W"]
            rho, self._q = spectral_radius_estimate(W, self.cfg["unit_disk"]["n_iter"], self._q)
            if rho > 1.0:
                W /= dt.type(rho)

    @property
    def constrained(self) -> bool:
        """Whether a projection (``max_norm``, ``unit_disk``) acts after each update."""
        return "max_norm" in self.cfg or "unit_disk" in self.cfg

    def state_shapes(self, n: int) -> dict[str, tuple[int, ...]]:
        """The persistent vectors this configuration keeps for an ``n``-unit ``W``."""
        out: dict[str, tuple[int, ...]] = {}
        if "spectral_norm" in self.cfg:
            out["spectral_norm.u"] = (n,)
        if "unit_disk" in self.cfg:
            out["unit_disk.q"] = (n, min(2, n))
        return out

    def states(self) -> dict[str, np.ndarray]:
        """The persistent vectors drawn so far (a vector not yet drawn is absent)."""
        return {
            k: a for k, a in ((k, getattr(self, v)) for k, v in _STATES.items()) if a is not None
        }

    def set_states(self, states: Mapping[str, np.ndarray]) -> None:
        """Replace the persistent vectors (checked by the caller); an absent one is
        reset, so it is drawn again exactly as at the start of a run."""
        for k, attr in _STATES.items():
            v = states.get(k)
            setattr(self, attr, None if v is None else np.array(v, dtype=np.float64))

    def normalize(self, W: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        """``spectral_norm``: ``W / σ̂`` and what its pullback needs (else ``W`` itself)."""
        if "spectral_norm" not in self.cfg:
            return W, None
        n = W.shape[0]
        W64 = W.astype(np.float64)
        if self._u is None:
            self._u = np.random.default_rng(0).standard_normal(n)
            self._u /= np.linalg.norm(self._u)
        u = self._u
        if train:  # the persistent vector advances only in train mode (as torch's)
            for _ in range(self.cfg["spectral_norm"]["n_iter"]):
                v = W64.T @ u
                v /= max(np.linalg.norm(v), 1e-300)
                u = W64 @ v
                u /= max(np.linalg.norm(u), 1e-300)
            self._u = u
        v = W64.T @ u
        v /= max(np.linalg.norm(v), 1e-300)
        sigma = float(u @ W64 @ v)
        return (W / W.dtype.type(sigma)).astype(W.dtype), (W, u, v, sigma)

    @staticmethod
    def normalize_pullback(cache: Any, G: np.ndarray) -> np.ndarray:
        """``d(W/σ)`` with ``σ = uᵀ W v`` (``u, v`` fixed): ``G/σ - <G, W> u vᵀ / σ²``."""
        if cache is None:
            return G
        W, u, v, sigma = cache
        s = float(np.vdot(G.astype(np.float64), W.astype(np.float64)))
        out = G / sigma - (s / sigma**2) * np.outer(u, v)
        return out.astype(G.dtype)

    # -- penalties ------------------------------------------------------------------
    def _penalized(self, params: dict, name: str) -> list[str]:
        ps = self.cfg[name]["params"]
        if ps is None:  # every weight matrix of the cell, no bias
            ps = [k for k in params if k != "b" and not k.startswith("b_")]
        return ps

    def penalty_value(self, params: dict) -> float:
        total = 0.0
        if "l1" in self.cfg:
            lam = self.cfg["l1"]["weight"]
            total += lam * sum(
                float(np.abs(params[k]).sum()) for k in self._penalized(params, "l1")
            )
        if "l2" in self.cfg:
            lam = self.cfg["l2"]["weight"]
            total += (
                0.5
                * lam
                * sum(
                    float(np.vdot(params[k], params[k]).real) for k in self._penalized(params, "l2")
                )
            )
        return total

    def add_penalty_grads(self, params: dict, grads: dict) -> None:
        if "l1" in self.cfg:
            lam = self.cfg["l1"]["weight"]
            for k in self._penalized(params, "l1"):
                grads[k] = grads[k] + params[k].dtype.type(lam) * np.sign(params[k])
        if "l2" in self.cfg:
            lam = self.cfg["l2"]["weight"]
            for k in self._penalized(params, "l2"):
                grads[k] = grads[k] + params[k].dtype.type(lam) * params[k]


def spectral_radius_estimate(
    W: np.ndarray, n_iter: int, Q: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Spectral radius of a real ``W`` by subspace iteration on two vectors and the
    Rayleigh quotient ``Qᵀ W Q`` (2 x 2, so a dominant complex pair is caught too).

    ``Q`` (n, 2) is the persistent start; returns ``(ρ̂, Q)``.
    """
    n = W.shape[0]
    W64 = W.astype(np.float64)
    if Q is None:
        Q = np.linalg.qr(np.random.default_rng(0).standard_normal((n, min(2, n))))[0]
    for _ in range(n_iter):
        Q = np.linalg.qr(W64 @ Q)[0]
    R = Q.T @ W64 @ Q
    return float(np.max(np.abs(np.linalg.eigvals(R)))), Q


def penalty(model: Any) -> float:
    """The value of the ``l1``/``l2`` penalties of every cell in ``model``.

    The trainer's logged loss is the data loss; the gradient of these
    penalties is added in the cells' backward pass, so the objective being
    minimised is ``loss + penalty(model)``.

    Parameters
    ----------
    model : Layer or cell
        A cell, an :class:`~lowdisp.nn.RNN`, or a :class:`~lowdisp.nn.Sequential`
        holding RNN layers.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import make_cell, penalty
    >>> cell = make_cell("tanh", 2, 3, dtype=np.float64, rng=0, regularizers={"l2": 0.1})
    >>> bool(np.isclose(penalty(cell), 0.05 * sum((v**2).sum() for k, v in cell.params().items()
    ...                                             if k != "b")))
    True
    """
    return sum((c._regs.penalty_value(c._params) for _, c in _cells(model)), 0.0)


def _cells(model: Any) -> list[tuple[str, Any]]:
    """``(path prefix, cell)`` of every regularized cell in ``model``, the prefix as in
    ``model.params()`` (``"rnn.cell."`` in a Sequential ``{"rnn": RNN(cell)}``)."""
    out = []
    stack: list[tuple[str, Any]] = [("", model)]
    while stack:
        prefix, m = stack.pop()
        if hasattr(m, "_regs"):
            if m._regs is not None:
                out.append((prefix, m))
        elif hasattr(m, "cell"):
            stack.append((prefix + "cell.", m.cell))
        elif hasattr(m, "layers"):
            layers = m.layers
            items = layers.items() if isinstance(layers, Mapping) else enumerate(layers)
            stack.extend((f"{prefix}{k}.", v) for k, v in reversed(list(items)))
    return out


def apply_constraints(model: Any) -> None:
    """Project the parameters of every cell of ``model`` onto its constraints, in place.

    ``max_norm`` clips each unit's incoming weights (a row of ``[W U]``) to
    norm ``c``; ``unit_disk`` divides ``W`` by its estimated spectral radius
    when that exceeds 1 (the persistent subspace advances by ``n_iter``
    iterations). Cells without a constraint are left alone. The
    :class:`~lowdisp.nn.Trainer` calls this when it is built and after every
    optimizer step; call it after each update of a loop of your own.

    Parameters
    ----------
    model : Layer or cell

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import apply_constraints, make_cell
    >>> cell = make_cell("tanh", 2, 3, dtype=np.float64, rng=0, regularizers={"max_norm": 0.5})
    >>> apply_constraints(cell)
    >>> p = cell.params()
    >>> bool(np.all(np.hypot(np.linalg.norm(p["W"], axis=1), np.linalg.norm(p["U"], axis=1))
    ...             <= 0.5 * (1 + 1e-12)))
    True
    """
    for _, c in _cells(model):
        if c._regs.constrained:
            c._regs.constrain(c._params, c.dtype)


def regularizer_states(model: Any) -> dict[str, np.ndarray]:
    """The persistent power-iteration vectors of ``model``'s regularizers (copies).

    Keys are ``<cell path>.spectral_norm.u`` (shape ``(n,)``) and
    ``<cell path>.unit_disk.q`` (``(n, 2)``), float64; a vector not drawn
    yet (before the first train-mode forward or projection) is absent.
    Checkpoints store them as ``state/<key>``.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> model = lnn.build_model(lnn.adding(5), "tanh", hidden=4, rng=0,
    ...                         regularizers={"unit_disk": True})
    >>> lnn.apply_constraints(model)
    >>> {k: v.shape for k, v in lnn.regularizer_states(model).items()}
    {'rnn.cell.unit_disk.q': (4, 2)}
    """
    return {f"{p}{k}": v.copy() for p, c in _cells(model) for k, v in c._regs.states().items()}


def regularizer_state_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Every persistent vector ``model``'s regularizers keep, ``{key: shape}`` (drawn
    or not), keyed as in :func:`regularizer_states`."""
    return {
        f"{p}{k}": s
        for p, c in _cells(model)
        for k, s in c._regs.state_shapes(c._params["W"].shape[0]).items()
    }


def load_regularizer_states(model: Any, states: Mapping[str, np.ndarray], where: str) -> None:
    """Set ``model``'s persistent vectors from ``states`` (as :func:`regularizer_states`
    returns them). A key the model does not keep, or a vector of another shape, is
    refused (``ValueError`` naming it, nothing changed); a vector the model keeps but
    ``states`` lacks is reset (drawn again as at the start of a run)."""
    shapes = regularizer_state_shapes(model)
    for k, v in states.items():
        if k not in shapes:
            raise ValueError(
                f"{where}: regularizer state {k!r} belongs to no regularizer of the model; "
                f"it keeps {sorted(shapes) or 'none'}"
            )
        v = np.asarray(v)
        if v.shape != shapes[k] or v.dtype != np.float64:
            raise ValueError(
                f"{where}: regularizer state {k!r} must be float64{list(shapes[k])}; "
                f"got {v.dtype}{list(v.shape)}"
            )
    for p, c in _cells(model):
        c._regs.set_states({k[len(p) :]: v for k, v in states.items() if k.startswith(p)})
