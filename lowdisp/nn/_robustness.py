"""Robustness of (recurrent) networks: input perturbations, hidden-state growth, spectra.

Sengupta & Friston ("How robust are deep neural networks?", 2018) ask how
fragile trained recurrent networks are to small perturbations, and relate it
to the recurrent matrix: normalising its spectrum onto the unit disk gives
stable but not robust networks, and training makes the matrix non-normal,
which its ε-pseudospectra reveal. This module measures the three sides of
that question for a trained :mod:`lowdisp.nn` model:

- **input perturbations** in the L∞ ball of radius ε: *random* ones
  (``ε · s`` with i.i.d. random signs ``s``) and the *worst-case
  first-order* ones (``ε · sign(∂L/∂x)``, FGSM, Goodfellow et al. 2015), the
  input gradient computed by BPTT (the cells' ``backward_sequence`` returns
  ``∂L/∂x``). Both have exactly the same L∞ and L2 norms (``ε`` and
  ``ε·√(size)``; a zero gradient entry gets a random sign). Inputs are not
  clipped to the data range.
- **hidden-state perturbation growth**: ``‖h'_t − h_t‖ / ‖δ‖`` when the initial
  state is moved from 0 to a random ``δ`` of norm ``eps`` (mean over the
  batch), the nonlinear analogue of the transient growth ``‖Wᵗ‖``.
- **the recurrent matrix**: spectral radius, spectral norm, Henrici's
  departure from normality, and the ε-pseudospectral radius and abscissa
  (criss-cross, :mod:`lowdisp.spectral`).

:func:`robustness_report` gathers them in a :class:`RobustnessReport` with
a text ``summary()`` and a ``plot()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_option, check_real

__all__ = [
    "RobustnessReport",
    "hidden_growth",
    "input_gradient",
    "perturbed_metrics",
    "recurrent_summary",
    "robustness_report",
]

_KINDS = ("random", "fgsm")


def _model_loss(model: Any, loss: Any, where: str) -> None:
    for attr in ("forward", "backward"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(
                f"{where}: model must be a lowdisp.nn Layer (forward/backward); "
                f"got {type(model).__name__}"
            )
    if not callable(getattr(loss, "forward", None)) or not callable(
        getattr(loss, "backward", None)
    ):
        raise TypeError(
            f"{where}: loss must be a lowdisp.nn Loss (e.g. task.loss()); got {type(loss).__name__}"
        )


def _float_input(x: Any, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(
            f"{where}: x must hold real-valued inputs (token inputs have no input "
            f"gradient); got dtype {x.dtype}"
        )
    return x


def _grad_core(model: Any, loss: Any, x: np.ndarray, y: Any) -> tuple[float, np.ndarray]:
    out, cache = model.forward(x, train=False, rng=None)
    value, lcache = loss.forward(out, y)
    dx, _ = model.backward(cache, loss.backward(lcache))
    return float(value), np.asarray(dx)


def input_gradient(model: Any, loss: Any, x: Any, y: Any) -> tuple[float, np.ndarray]:
    """The loss and its gradient with respect to the input, by BPTT (evaluation mode).

    Parameters
    ----------
    model : lowdisp.nn Layer
        E.g. ``Sequential([RNN(cell, return_sequences=False), Dense(...)])``.
    loss : lowdisp.nn Loss
    x : (T, B, features) or (B, features) float array
    y : targets of ``loss``

    Returns
    -------
    value : float
    dx : ndarray, the shape of ``x``

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp import nn as lnn
    >>> model = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(2, 4, dtype=np.float64, rng=0),
    ...                                 return_sequences=False),
    ...                         lnn.Dense(4, 3, dtype=np.float64, rng=1)])
    >>> x = np.random.default_rng(0).normal(size=(5, 2, 2))
    >>> value, dx = lnn.input_gradient(model, lnn.SoftmaxCrossEntropy(), x, np.array([0, 2]))
    >>> dx.shape
    (5, 2, 2)
    """
    where = "input_gradient"
    _model_loss(model, loss, where)
    x = _float_input(x, where)
    value, dx = _grad_core(model, loss, x, y)
    if dx is None or dx.shape != x.shape:
        raise TypeError(f"{where}: the model's backward gives no input gradient of shape {x.shape}")
    return value, dx


def _metrics(model: Any, loss: Any, x: np.ndarray, y: Any) -> tuple[float, float]:
    out, _ = model.forward(x, train=False, rng=None)
    value, _ = loss.forward(out, y)
    acc = float("nan")
    if np.asarray(y).dtype.kind in "iu":
        acc = float((out.argmax(axis=-1) == y).mean())
    return float(value), acc


def _signs(shape: tuple[int, ...], gen: np.random.Generator) -> np.ndarray:
    return gen.integers(0, 2, size=shape) * 2.0 - 1.0


def _direction(kind: str, dx: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    s = _signs(dx.shape, gen)
    if kind == "random":
        return s
    g = np.sign(dx)
    return np.where(g == 0, s, g)


def perturbed_metrics(
    model: Any,
    loss: Any,
    x: Any,
    y: Any,
    eps: Sequence[float],
    *,
    kind: str = "fgsm",
    rng: Any = None,
) -> dict[str, np.ndarray]:
    """Loss and accuracy on ``x + ε·d`` for each ``ε`` (L∞ perturbations).

    Parameters
    ----------
    model, loss, x, y
        As in :func:`input_gradient`.
    eps : sequence of float >= 0
        Perturbation sizes (L∞ radius; the L2 norm is ``ε·√(x.size)``).
    kind : {"fgsm", "random"}
        ``d = sign(∂L/∂x)`` (worst case to first order) or i.i.d. random signs.
    rng : seed or Generator
        Random signs (and FGSM's ties at zero gradient).

    Returns
    -------
    dict
        ``"eps"``, ``"loss"`` and ``"accuracy"`` arrays (accuracy NaN unless
        ``y`` holds integer classes).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp import nn as lnn
    >>> model = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(2, 4, dtype=np.float64, rng=0),
    ...                                 return_sequences=False),
    ...                         lnn.Dense(4, 3, dtype=np.float64, rng=1)])
    >>> x = np.random.default_rng(0).normal(size=(5, 8, 2))
    >>> y = np.arange(8) % 3
    >>> r = lnn.perturbed_metrics(model, lnn.SoftmaxCrossEntropy(), x, y, [0.0, 0.1])
    >>> bool(r["loss"][1] > r["loss"][0])
    True
    """
    where = "perturbed_metrics"
    _model_loss(model, loss, where)
    check_option(kind, "kind", _KINDS, where=where)
    x = _float_input(x, where)
    eps_arr = _eps_list(eps, "eps", where)
    gen = as_rng(rng, where=where)
    return _perturbed_core(model, loss, x, y, eps_arr, kind, gen)


def _eps_list(eps: Any, name: str, where: str) -> np.ndarray:
    try:
        vals = [check_real(e, name, where=where, low=0) for e in np.atleast_1d(eps).tolist()]
    except TypeError as exc:
        raise TypeError(f"{where}: {name} must be a sequence of real numbers >= 0") from exc
    if not vals:
        raise ValueError(f"{where}: {name} must hold at least one value; got none")
    return np.array(vals, dtype=np.float64)


def _perturbed_core(model, loss, x, y, eps_arr, kind, gen):
    d = None
    if kind == "fgsm":
        _, dx = _grad_core(model, loss, x, y)
        d = _direction(kind, dx, gen)
    losses, accs = [], []
    for e in eps_arr:
        dd = _direction("random", x, gen) if kind == "random" else d
        value, acc = _metrics(model, loss, (x + e * dd).astype(x.dtype), y)
        losses.append(value)
        accs.append(acc)
    return {"eps": eps_arr, "loss": np.array(losses), "accuracy": np.array(accs)}


def _find_cell(model: Any, where: str) -> Any:
    from lowdisp.nn._rnn import RNN

    if hasattr(model, "forward_sequence") and hasattr(model, "recurrent_matrix"):
        return model
    if isinstance(model, RNN):
        return model.cell
    for layer in getattr(model, "layers", {}).values():
        if isinstance(layer, RNN):
            return layer.cell
    raise TypeError(
        f"{where}: model must be a recurrent cell, an RNN layer or a Sequential holding one; "
        f"got {type(model).__name__}"
    )


def hidden_growth(model: Any, x: Any, *, eps: float = 1e-3, rng: Any = None) -> np.ndarray:
    """Growth of a perturbation of the initial hidden state along the sequence.

    ``g_t = mean_b ‖h'_t − h_t‖ / ‖δ_b‖`` where ``h`` runs from ``h_0 = 0`` and
    ``h'`` from ``h_0 = δ`` (``δ_b`` random directions of norm ``eps``), on the
    same inputs ``x``, evaluation mode.

    Parameters
    ----------
    model : cell, RNN layer or Sequential holding one
    x : (T, B, features) float array or (T, B) tokens
    eps : float > 0
    rng : seed or Generator

    Returns
    -------
    (T,) float64 array

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp import nn as lnn
    >>> cell = lnn.TanhRNNCell(2, 16, dtype=np.float64, rng=0)
    >>> g = lnn.hidden_growth(cell, np.zeros((30, 4, 2)), rng=0)
    >>> g.shape, bool(g[-1] < g[0])
    ((30,), True)
    """
    where = "hidden_growth"
    cell = _find_cell(model, where)
    eps = check_real(eps, "eps", where=where, low=0, low_open=True)
    gen = as_rng(rng, where=where)
    x = cell.validate(x)
    B, N = x.shape[1], cell.state_size
    delta = gen.standard_normal((B, N))
    delta *= eps / np.linalg.norm(delta, axis=1, keepdims=True)
    delta = delta.astype(cell.dtype)
    H0 = np.array(cell.forward_sequence(x, None, train=False)[0], dtype=np.float64)
    H1 = np.array(cell.forward_sequence(x, delta, train=False)[0], dtype=np.float64)
    norms = np.linalg.norm(H1 - H0, axis=2) / np.linalg.norm(delta.astype(np.float64), axis=1)
    return norms.mean(axis=1)


def recurrent_summary(
    W: Any, *, eps: Sequence[float] = (1e-2, 1e-1), rng: Any = 0
) -> dict[str, Any]:
    """Spectral and pseudospectral summary of a recurrent matrix.

    Parameters
    ----------
    W : (n, n) array_like (real or complex), or a model holding a recurrent cell
    eps : sequence of float > 0
        Levels of the ε-pseudospectral radius and abscissa.
    rng : seed
        For the criss-cross starts.

    Returns
    -------
    dict
        ``spectral_radius`` (max |λ|), ``spectral_norm`` (σ_max),
        ``departure`` (Henrici: ``sqrt(‖W‖_F² − Σ|λ|²)``), ``departure_relative``
        (divided by ‖W‖_F), ``pseudo_radius`` / ``pseudo_abscissa`` (dicts
        ε -> value), ``eigenvalues``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import recurrent_summary
    >>> s = recurrent_summary(np.array([[0.5, 1.0], [0.0, 0.5]]), eps=[0.1])
    >>> round(s["spectral_radius"], 6), round(s["departure"], 6)
    (0.5, 1.0)
    """
    import lowdisp.spectral as sp

    where = "recurrent_summary"
    if not isinstance(W, np.ndarray) and hasattr(W, "forward"):
        W = _find_cell(W, where).recurrent_matrix()
    A = np.asarray(W)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{where}: W must be a non-empty square matrix; got shape {A.shape}")
    if A.dtype.kind not in "fc" or not np.isfinite(A).all():
        raise ValueError(f"{where}: W must hold finite real or complex numbers")
    levels = _eps_list(eps, "eps", where)
    if (levels <= 0).any():
        raise ValueError(f"{where}: eps must be > 0; got {levels.tolist()}")
    A = A.astype(np.complex128 if A.dtype.kind == "c" else np.float64)
    lam = np.linalg.eigvals(A)
    return {
        "n": A.shape[0],
        "spectral_radius": float(np.abs(lam).max()),
        "spectral_norm": float(np.linalg.norm(A, 2)),
        "departure": float(sp.departure_from_normality(A)),
        "departure_relative": float(sp.departure_from_normality(A, relative=True)),
        "pseudo_radius": {
            float(e): float(sp.pseudospectral_radius(A, float(e), rng=rng).value) for e in levels
        },
        "pseudo_abscissa": {
            float(e): float(sp.pseudospectral_abscissa(A, float(e), rng=rng).value) for e in levels
        },
        "eigenvalues": lam,
    }


@dataclass
class RobustnessReport:
    """Results of :func:`robustness_report` (all arrays float64).

    Attributes
    ----------
    name : str
    eps : (k,) perturbation sizes (L∞)
    clean : dict
        ``loss`` and ``accuracy`` without perturbation.
    random, fgsm : dict
        ``loss`` and ``accuracy`` arrays over ``eps``.
    growth : (T,) array
        :func:`hidden_growth`.
    spectrum : dict
        :func:`recurrent_summary` of the recurrent matrix.
    W : ndarray
        The recurrent matrix (for pseudospectra plots).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp import nn as lnn
    >>> model = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(2, 6, dtype=np.float64, rng=0),
    ...                                 return_sequences=False),
    ...                         lnn.Dense(6, 3, dtype=np.float64, rng=1)])
    >>> x = np.random.default_rng(0).normal(size=(5, 8, 2))
    >>> rep = lnn.robustness_report(model, lnn.SoftmaxCrossEntropy(), x, np.arange(8) % 3,
    ...                             eps=[0.1], pseudo_eps=[0.1])
    >>> rep.eps.tolist(), rep.growth.shape, rep.W.shape
    ([0.1], (5,), (6, 6))
    """

    name: str
    eps: np.ndarray
    clean: dict[str, float]
    random: dict[str, np.ndarray]
    fgsm: dict[str, np.ndarray]
    growth: np.ndarray
    spectrum: dict[str, Any]
    W: np.ndarray = field(repr=False)

    def summary(self) -> str:
        """The report as text (a few lines).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp import nn as lnn
        >>> model = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(2, 6, dtype=np.float64, rng=0),
        ...                                 return_sequences=False),
        ...                         lnn.Dense(6, 3, dtype=np.float64, rng=1)])
        >>> x = np.random.default_rng(0).normal(size=(5, 8, 2))
        >>> rep = lnn.robustness_report(model, lnn.SoftmaxCrossEntropy(), x, np.arange(8) % 3,
        ...                             eps=[0.05], pseudo_eps=[0.1], name="tiny")
        >>> print(rep.summary().splitlines()[0])
        tiny: clean loss ... accuracy ...
        """
        s = self.spectrum
        acc = self.clean["accuracy"]
        lines = [
            f"{self.name}: clean loss {self.clean['loss']:.4g}"
            + (f", accuracy {acc:.4f}" if math.isfinite(acc) else ", accuracy –")
        ]
        for i, e in enumerate(self.eps):
            lines.append(
                f"  eps {e:.3g}: random loss {self.random['loss'][i]:.4g} "
                f"acc {self.random['accuracy'][i]:.4f} | fgsm loss {self.fgsm['loss'][i]:.4g} "
                f"acc {self.fgsm['accuracy'][i]:.4f}"
            )
        g = self.growth
        lines.append(
            f"  hidden perturbation growth: max {g.max():.3g} (step {int(g.argmax()) + 1}), "
            f"last {g[-1]:.3g}"
        )
        pr = ", ".join(f"eps {e:g}: {v:.4f}" for e, v in s["pseudo_radius"].items())
        lines.append(
            f"  W ({s['n']}x{s['n']}): spectral radius {s['spectral_radius']:.4f}, "
            f"norm {s['spectral_norm']:.4f}, departure from normality {s['departure']:.4f} "
            f"(relative {s['departure_relative']:.3f}); pseudospectral radius {pr}"
        )
        return "\n".join(lines)

    def plot(self, axes: Any = None) -> Any:
        """Accuracy (or loss) vs ε, hidden growth, and the ε-pseudospectra of W.

        ``axes``: three matplotlib axes (default: a new 1 x 3 figure).
        Returns the figure.
        """
        import matplotlib.pyplot as plt

        import lowdisp.spectral as sp

        if axes is None:
            fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        else:
            fig = axes[0].figure
        use_acc = math.isfinite(self.clean["accuracy"])
        key = "accuracy" if use_acc else "loss"
        ax = axes[0]
        for kind, res, style in (("random", self.random, "--"), ("fgsm", self.fgsm, "-")):
            ax.plot(
                np.r_[0, self.eps],
                np.r_[self.clean[key], res[key]],
                style,
                marker="o",
                label=f"{self.name} {kind}",
            )
        ax.set_xlabel("perturbation size ε (L∞)")
        ax.set_ylabel(key)
        ax.legend(fontsize=7)
        axes[1].semilogy(np.arange(1, self.growth.size + 1), self.growth, label=self.name)
        axes[1].set_xlabel("step t")
        axes[1].set_ylabel("‖h'_t − h_t‖ / ‖δ‖")
        axes[1].legend(fontsize=7)
        levels = sorted(self.spectrum["pseudo_radius"])
        sp.plot_pseudospectra(self.W, levels, ax=axes[2], npts=60, colorbar=False)
        axes[2].set_title(f"{self.name}: ε-pseudospectra, ε = {levels}", fontsize=8)
        fig.tight_layout()
        return fig


def robustness_report(
    model: Any,
    loss: Any,
    x: Any,
    y: Any,
    *,
    eps: Sequence[float] = (0.01, 0.03, 0.1, 0.3),
    pseudo_eps: Sequence[float] = (1e-2, 1e-1),
    growth_eps: float = 1e-3,
    name: str = "model",
    rng: Any = 0,
) -> RobustnessReport:
    """Input-perturbation accuracy, hidden-state growth and the spectral summary of a
    trained recurrent model, in one report.

    Parameters
    ----------
    model : lowdisp.nn Layer holding one recurrent cell (e.g. RNN + Dense readout)
    loss : Loss (``task.loss()``)
    x, y : float inputs ``(T, B, features)`` and their targets (e.g. ``task.eval_data()``)
    eps : sequence of float >= 0
        L∞ perturbation sizes (random signs and FGSM).
    pseudo_eps : sequence of float > 0
        Levels of the pseudospectral radius/abscissa (and plot contours).
    growth_eps : float
        Norm of the initial-state perturbation of :func:`hidden_growth`.
    name : str
    rng : seed

    Returns
    -------
    RobustnessReport

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp import nn as lnn
    >>> model = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(2, 6, dtype=np.float64, rng=0),
    ...                                 return_sequences=False),
    ...                         lnn.Dense(6, 3, dtype=np.float64, rng=1)])
    >>> x = np.random.default_rng(0).normal(size=(5, 8, 2))
    >>> rep = lnn.robustness_report(model, lnn.SoftmaxCrossEntropy(), x, np.arange(8) % 3,
    ...                             eps=[0.05, 0.2])
    >>> rep.fgsm["loss"].shape, round(rep.spectrum["spectral_radius"], 3) > 0
    ((2,), True)
    """
    where = "robustness_report"
    _model_loss(model, loss, where)
    x = _float_input(x, where)
    eps_arr = _eps_list(eps, "eps", where)
    cell = _find_cell(model, where)
    if not isinstance(name, str):
        raise TypeError(f"{where}: name must be a str; got {type(name).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{where}: x must be a sequence batch (T, B, features); got {x.shape}")
    gen = as_rng(rng, where=where)
    seed = int(gen.integers(2**31))
    clean_loss, clean_acc = _metrics(model, loss, x, y)
    rand = _perturbed_core(model, loss, x, y, eps_arr, "random", gen)
    fgsm = _perturbed_core(model, loss, x, y, eps_arr, "fgsm", gen)
    growth = hidden_growth(cell, x, eps=growth_eps, rng=gen)
    W = np.asarray(cell.recurrent_matrix())
    spectrum = recurrent_summary(W, eps=pseudo_eps, rng=seed)
    return RobustnessReport(
        name=name,
        eps=eps_arr,
        clean={"loss": clean_loss, "accuracy": clean_acc},
        random={k: rand[k] for k in ("loss", "accuracy")},
        fgsm={k: fgsm[k] for k in ("loss", "accuracy")},
        growth=growth,
        spectrum=spectrum,
        W=W,
    )
