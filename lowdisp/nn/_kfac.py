"""KFAC and EKFAC optimizers: a Kronecker-factored preconditioner, then a wrapped optimizer.

``KFAC(...)`` and ``EKFAC(...)`` are :class:`~lowdisp.nn.Optimizer` objects the
:class:`~lowdisp.nn.Trainer` uses like ``Adam``: the trainer calls
:meth:`attach` with its model and loss, which points every :class:`Dense`
layer at a statistics recorder (:mod:`lowdisp.nn._curvature`); each training
step's backward pass then leaves the layer inputs and output cotangents
there, and :meth:`step` turns them into curvature, preconditions the
gradients of the dense layers, and hands the result to the wrapped optimizer
(SGD with momentum by default), which updates the parameters. Parameters
without a curvature rule get the wrapped optimizer's plain step (reported
once with a :class:`CurvatureWarning`).

Curvature is the empirical Fisher of the trainer's own backward pass (the
EKFAC authors' convention: no extra backward pass), with the per-example
scale restored (``g_i = B·dy_i`` for a mean loss).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lowdisp._validation import check_int, check_option, check_positive, check_real
from lowdisp.exceptions import LowdispError
from lowdisp.nn._curvature import (
    DAMPING_STYLES,
    CurvatureWarning,
    _Block,
    attach,
    damping_pi,
    detach,
    eigh_clipped,
    example_scale,
    find_blocks,
    kfe_square_sum,
    n_examples,
    reduce_sequences,
    warn_unsupported,
)
from lowdisp.nn._fisher import APPROX
from lowdisp.nn._optim import SGD, Optimizer
from lowdisp.nn._spec import register_optimizer

__all__ = ["EKFAC", "KFAC"]

#: key prefix of the curvature state inside ``optimizer.state`` / checkpoints
PREFIX = "curvature/"


class _KroneckerOptimizer(Optimizer):
    """Shared machinery of :class:`KFAC` and :class:`EKFAC` (private)."""

    _default_refresh = 20

    def __init__(
        self,
        lr: float = 0.01,
        *,
        momentum: float = 0.9,
        damping: float = 1e-3,
        decay: float = 0.95,
        refresh: int | None = None,
        factor_every: int = 1,
        stats_fraction: float = 1.0,
        fisher: str = "empirical",
        approx: str = "expand",
        optimizer: Optimizer | Mapping[str, Any] | None = None,
        exclude: Iterable[str] = (),
        groups: Mapping[str, Mapping[str, float]] | None = None,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Any = None,
    ) -> None:
        where = type(self).__name__
        self.damping = check_positive(damping, "damping", where=where)
        self.decay = check_real(decay, "decay", where=where, low=0, high=1, high_open=True)
        refresh = self._default_refresh if refresh is None else refresh
        self.refresh = check_int(refresh, "refresh", where=where, low=1)
        self.factor_every = check_int(factor_every, "factor_every", where=where, low=1)
        self.stats_fraction = check_real(
            stats_fraction, "stats_fraction", where=where, low=0, high=1, low_open=True
        )
        self.fisher = check_option(fisher, "fisher", ("empirical", "mc"), where=where)
        self.approx = check_option(approx, "approx", APPROX, where=where)
        if isinstance(exclude, str) or not isinstance(exclude, Iterable):
            raise TypeError(
                f"{where}: exclude must be a list of parameter path patterns; got {exclude!r}"
            )
        self.exclude = [str(p) for p in exclude]
        for p in exclude:
            if not isinstance(p, str):
                raise TypeError(f"{where}: exclude patterns must be str; got {p!r}")
        if optimizer is None:
            self.inner: Optimizer = SGD(
                lr,
                momentum=momentum,
                groups=groups,
                weight_decay=weight_decay,
                clip_norm=clip_norm,
                schedule=schedule,
            )
            self._own_inner = True
        else:
            if isinstance(optimizer, Mapping):
                from lowdisp.nn._spec import _build_optimizer

                optimizer = _build_optimizer(dict(optimizer), f"{where}.optimizer")
            if not isinstance(optimizer, Optimizer) or isinstance(optimizer, _KroneckerOptimizer):
                raise TypeError(
                    f"{where}: optimizer must be None or a lowdisp.nn Optimizer (SGD, Adam, "
                    f"RMSprop) to step after preconditioning; got {optimizer!r}"
                )
            self.inner = optimizer
            self._own_inner = False
        inner = self.inner
        super().__init__(
            inner.lr,
            groups=inner.groups,
            weight_decay=inner.weight_decay,
            clip_norm=inner.clip_norm,
            schedule=inner.schedule,
        )
        self.momentum = getattr(inner, "momentum", 0.0)
        self.inner.state = self.state  # one dict: the trainer snapshots and rolls it back
        #: the curvature arrays (factor averages, inverses or eigenbases, EKFAC
        #: diagonal): checkpointed by state_dict(), kept out of ``self.state`` (the
        #: wrapped optimizer's moments), which the trainer copies before every step
        self._curv: dict[str, np.ndarray] = {}
        self._cast: dict[str, np.ndarray] = {}
        self._blocks: list[_Block] = []
        self._reduction = "mean"
        self._attached = False
        self._warned: set[str] = set()

    # -- the trainer's hook ---------------------------------------------------------
    def attach(self, model: Any, loss: Any = None) -> None:
        """Collect the dense layers of ``model`` and record their statistics.

        Called by :class:`~lowdisp.nn.Trainer` when it is built; call it
        yourself when stepping by hand. Layers without a curvature rule are
        reported once (:class:`CurvatureWarning`); their parameters get the
        wrapped optimizer's plain step.

        Parameters
        ----------
        model : Layer
        loss : Loss, optional
            Its ``reduction`` fixes the per-example scale (``"mean"``: the
            cotangent rows are ``g_i / B``). Default: a mean.
        """
        from lowdisp.nn._layers import Layer

        where = f"{type(self).__name__}.attach"
        if not isinstance(model, Layer):
            raise TypeError(
                f"{where}: model must be a lowdisp.nn Layer; got {type(model).__name__}"
            )
        if self._blocks:
            detach(self._blocks)
        self._reduction = getattr(loss, "reduction", "mean") if loss is not None else "mean"
        blocks, unsupported, _ = find_blocks(model, self.exclude)
        self._blocks = blocks
        for b in blocks:  # a cell's per-sequence sums of deltas (KFAC-reduce)
            if hasattr(b.recorder, "sums"):
                b.recorder.sums = self.approx == "reduce"
        attach(blocks)
        self._attached = True
        self._cast.clear()
        warn_unsupported(
            unsupported,
            f"{type(self).__name__}",
            "they are updated by the wrapped optimizer without preconditioning",
        )

    def curvature_pass(self, model: Any, cache: Any, out: Any, loss: Any, rng: Any) -> None:
        """With ``fisher="mc"``: back-propagate labels sampled from the model's
        predictive distribution (one per example), recording the statistics,
        before the trainer's own backward pass (which then records nothing).
        Called by :class:`~lowdisp.nn.Trainer`; a no-op for ``fisher="empirical"``.
        """
        if self.fisher != "mc" or not self._blocks:
            return
        from lowdisp.nn._fisher import _cotangents, _loss_kind

        kind = _loss_kind(loss, f"{type(self).__name__}(fisher='mc')")
        z = np.asarray(out)
        C = z.shape[-1]
        dz = _cotangents(kind, "mc", z.reshape(-1, C), None, 1, rng)[0][0]
        for b in self._blocks:
            b.recorder.active = True
        model.backward(cache, dz.reshape(z.shape).astype(z.dtype, copy=False))
        for b in self._blocks:
            b.recorder.active = False  # keep the sampled statistics

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        out = super().state_dict()
        out.update(self._curv)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        state = dict(state)
        derived = {k: state.pop(k) for k in list(state) if k.startswith(PREFIX)}
        super().load_state_dict(state)
        self.inner.state = self.state
        self.inner.steps = self.steps
        self._curv = {k: np.array(v, copy=True) for k, v in derived.items()}
        self._cast.clear()

    def get_config(self) -> dict[str, Any]:
        if self._own_inner:
            cfg = super().get_config()
            cfg["momentum"] = self.momentum
        else:
            cfg = {"class": type(self).__name__, "optimizer": self.inner.get_config()}
        cfg.update(
            damping=self.damping,
            decay=self.decay,
            refresh=self.refresh,
            factor_every=self.factor_every,
            stats_fraction=self.stats_fraction,
            fisher=self.fisher,
            exclude=list(self.exclude),
            **self._config(),
        )
        if self.approx != "expand":  # absent by default: older specs and checkpoints match
            cfg["approx"] = self.approx
        return cfg

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(lr={self.lr}, damping={self.damping}, refresh={self.refresh})"
        )

    # -- one step -------------------------------------------------------------------------
    def step(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        manifolds: Mapping[str, Any] | None = None,
    ) -> float:
        """Precondition the dense layers' gradients, then step the wrapped optimizer.

        Parameters
        ----------
        params, grads, manifolds
            As for :meth:`Optimizer.step`.

        Returns
        -------
        float
            The norm of the gradient handed to the wrapped optimizer.

        Raises
        ------
        LowdispError
            (a ``ValueError``) not attached to a model, or NaN/Inf statistics.
        """
        where = f"{type(self).__name__}.step"
        if not self._attached:
            raise LowdispError(
                f"{where}: not attached to a model; the Trainer attaches it, or call "
                f"opt.attach(model, loss) before stepping by hand"
            )
        if not isinstance(grads, Mapping):
            raise TypeError(
                f"{where}: grads must be a dict of path -> array; got {type(grads).__name__}"
            )
        s = self.steps  # steps done before this one
        out = dict(grads)
        try:
            for block in self._blocks:
                G = block.grad_matrix(out)
                if G is None:
                    block.recorder.clear()
                    continue
                D = self._block_step(block, G, s)
                if D is not None:
                    out.update(block.split(D))
                block.recorder.clear()
        except BaseException:
            for block in self._blocks:
                block.recorder.clear()
            raise
        finally:
            for block in self._blocks:
                block.recorder.active = True
        self.inner.steps = s
        norm = self.inner.step(params, out, manifolds)
        self.steps = s + 1
        return norm

    def _stats(self, block: _Block, where: str) -> tuple[Any, Any, float, int, bool] | None:
        """``(x, dy, c, B, whole)``: the recorded input and cotangent rows, the
        per-example scale ``c`` (from the whole batch), and the ``B`` examples the
        statistics use: the first ``⌈stats_fraction · batch⌉`` of a dense layer's
        batch (``whole`` is False when that is fewer than the batch)."""
        rec = block.recorder
        if rec.x is None or (rec.dy is None and getattr(rec, "gg", None) is None):
            return None
        x, dy = rec.x, rec.dy
        B = n_examples(x)
        c = 1.0 if self.fisher == "mc" else example_scale(self._reduction, B)
        k = max(1, math.ceil(self.stats_fraction * B - 1e-9))
        if k >= B or block.kind != "dense" or dy is None or x.ndim < 2:  # cells: whole batch
            return x, dy, c, B, True
        # the first k examples: rows of (B, d), sequences (batch axis -2) of (..., B, d)
        dy = dy.reshape(*x.shape[:-1], dy.shape[-1])[..., :k, :].reshape(-1, dy.shape[-1])
        return x[..., :k, :], dy, c, k, False

    def _update_factors(self, block: _Block, stats: Any, where: str) -> None:
        """Fold the batch's Gram matrices into the float64 moving averages, in place."""
        from lowdisp.kernels.curvature import ema_update

        x, dy, c, B, _ = stats
        gg = None
        if self.approx == "reduce" and x.ndim == 3:  # per-sequence means and sums
            x, dy = reduce_sequences(x, dy)
            if dy is None:  # a cell: Σ_t δ_t accumulated by its BPTT
                gs = block.recorder.gs
                gg = gs.T @ gs
        x2 = block.rows(x)
        m = max(x2.shape[0], 1)
        xx = x2.T @ x2  # one SYRK in the training dtype
        # a cell's Σ_t δ_tᵀδ_t was accumulated by its BPTT (KFAC-expand)
        if gg is None:
            gg = dy.T @ dy if dy is not None else block.recorder.gg
        # A finite diagonal bounds every entry of a Gram matrix (Cauchy-Schwarz), and a
        # NaN/Inf input or cotangent entry always reaches the diagonal: O(d) checks.
        if not (np.isfinite(np.diagonal(xx)).all() and np.isfinite(np.diagonal(gg)).all()):
            raise LowdispError(
                f"{where}: the curvature statistics of layer {block.name!r} hold NaN/Inf "
                f"(its input or output gradient is not finite); the step was not taken"
            )
        n = block.name
        kA, kG, kn = f"{PREFIX}A/{n}", f"{PREFIX}G/{n}", f"{PREFIX}count/{n}"
        count = self._curv.get(kn)
        if count is None:
            count = self._curv[kn] = np.array(0, dtype=np.int64)
            self._curv[kA] = np.zeros((block.a_size, block.a_size))
            self._curv[kG] = np.zeros((block.d_out, block.d_out))
        count += 1
        rho = min(1.0 - 1.0 / int(count), self.decay)
        A, G = self._curv[kA], self._curv[kG]
        w = 1.0 - rho
        d = block.d_in
        ema_update(A, xx, rho, w / m)  # A[:d, :d] = rho A[:d, :d] + (w/m) xx, one pass
        if block.b_path is not None:
            A[d] *= rho
            A[:d, d] *= rho
            # the bias column Σ_i a_i: one GEMV in the training dtype, like the Gram
            # matrix (a float64 reduction of the float32 rows took 3x longer: 0.16 vs 0.05 ms)
            col = np.asarray(np.ones(m, dtype=x2.dtype) @ x2, dtype=np.float64)
            col *= w / m
            A[:d, d] += col
            A[d, :d] += col
            A[d, d] += w
        ema_update(G, gg, rho, w * c * c / max(B, 1))

    def _due(self, s: int, block: _Block, derived_key: str) -> tuple[bool, bool]:
        """(update factors, refresh) at step index ``s``."""
        refresh = s % self.refresh == 0 or derived_key not in self._curv
        factors = refresh or s % self.factor_every == 0
        return factors, refresh

    def _cast_of(self, key: str, dtype: np.dtype) -> np.ndarray:
        arr = self._cast.get(key)
        if arr is None or arr.dtype != dtype:
            arr = self._cast[key] = np.ascontiguousarray(self._curv[key], dtype=dtype)
        return arr

    def _missing(self, block: _Block, where: str) -> None:
        if block.name not in self._warned:
            self._warned.add(block.name)
            import warnings

            warnings.warn(
                f"{where}: layer {block.name!r} recorded no statistics in this step (was it "
                f"used in the forward/backward pass?); its gradient is not preconditioned "
                f"until it has some",
                CurvatureWarning,
                stacklevel=3,
            )

    def _block_step(self, block: _Block, G: np.ndarray, s: int) -> np.ndarray | None:
        raise NotImplementedError


@register_optimizer
class KFAC(_KroneckerOptimizer):
    """K-FAC (Martens & Grosse 2015): precondition each dense layer's gradient by
    ``(G + π√λ⁻ I)⁻¹ ∇W̃ (A + π√λ I)⁻¹``, then step a wrapped optimizer.

    Parameters
    ----------
    lr : float
        Learning rate of the wrapped SGD (ignored when ``optimizer`` is given).
    momentum : float
        Momentum of the wrapped SGD.
    damping : float
        Tikhonov damping ``λ > 0``, split between the factors as
        ``A + π√λ I`` and ``G + (√λ/π) I``.
    damping_style : {"paper", "authors_code", "none"}
        π of the factored damping: ``"paper"`` (Martens & Grosse §6.3,
        ``π = sqrt((tr A/dim A)/(tr G/dim G))``, also nngeometry's), or
        ``"authors_code"`` (the EKFAC authors' ``kfac.py``:
        ``π = sqrt(tr A·dim A/(tr G·dim G))``), or ``"none"`` (π = 1).
    decay : float
        Moving average of the factors: ``F ← ρF + (1−ρ)F_batch`` with
        ``ρ = min(1 − 1/k, decay)`` at the k-th update (Martens & Grosse).
    refresh : int
        Recompute the damped inverses every so many steps (default 20, the
        paper's T₃); the first step always computes them.
    factor_every : int
        Update the factor averages every so many steps (1: every step; larger
        values amortise the two Gram matrices per layer, as kfac-pytorch's
        ``factor_update_steps``). Refresh steps always update them.
    stats_fraction : float
        Fraction ``f ∈ (0, 1]`` of each batch whose examples enter the factor
        statistics (and EKFAC's batch diagonal): the first ``⌈f·B⌉`` examples
        (sequences), a random subset when the batches are shuffled, as the
        trainer's are. 1 (default): the whole batch. Martens & Grosse (2015)
        estimate the statistics on a subset of the mini-batch (a public JAX
        re-implementation of their autoencoder setup uses 1/8); the Gram
        matrices then cost ``f`` times as much, the preconditioning (two GEMMs
        of the whole gradient) is unchanged. Dense layers only; a recurrent
        cell's factors use the whole batch.
    fisher : {"empirical", "mc"}
        Statistics from the trainer's own backward pass of the true labels
        (the empirical Fisher, no extra cost; the EKFAC authors' choice), or
        from one extra backward pass of labels sampled from the model's
        predictive distribution (the Monte-Carlo Fisher of Martens & Grosse;
        softmax, sigmoid and MSE losses), run by the trainer before its own
        (:meth:`curvature_pass`).
    approx : {"expand", "reduce"}
        Factors of a weight shared over the ``T`` positions of a sequence (a
        Dense layer applied to ``(T, B, d)``, a tanh/ReLU cell's ``[U, W, b]``),
        as in :func:`~lowdisp.nn.fisher_matrix`: ``"expand"`` (default) takes
        the positions as examples of ``A`` and sums ``g gᵀ`` over them;
        ``"reduce"`` averages ``ã`` and sums ``g`` over each sequence first
        (``A = (1/B) Σ_n ā_n ā_nᵀ``, ``G = (c²/B) Σ_n ĝ_n ĝ_nᵀ``). Equal for
        ``(B, d)`` inputs and ``T = 1``. The cotangent scale ``c`` treats a mean
        loss as the mean over the ``B`` sequences of the per-sequence mean over
        positions, so ``G`` is ``1/T²`` times ``fisher_matrix``'s (which sums
        the positions' losses); ``A`` is equal. EKFAC's batch diagonal is the
        per-sequence one with either.
    optimizer : Optimizer, optional
        Step after preconditioning with this optimizer (any lowdisp
        optimizer; its own ``lr``, groups, clipping and schedule apply).
        Default ``SGD(lr, momentum=momentum, ...)``.
    exclude : list of str
        Shell patterns of parameter paths that are not preconditioned.
    groups, weight_decay, clip_norm, schedule
        As for :class:`SGD` (with the default wrapped optimizer); weight
        decay and clipping act on the preconditioned gradient.

    Notes
    -----
    Factors: ``A = E[ã ãᵀ]`` with ``ã = [a; 1]`` and ``G = E[g gᵀ]``,
    ``g_i = ∂ℓ_i/∂z_i`` (by default the empirical Fisher of the training
    batch, the cotangent rows rescaled by the batch size for a mean loss), accumulated
    in float64. Precision with float32 training: float64 are the state (the
    factor averages, their damped inverses, EKFAC's eigenbases and diagonal
    ``S``); float32 are the per-step products (the batch Gram matrices and
    column sums, EKFAC's projections and diagonal GEMM, the preconditioning
    GEMMs), which use float32 copies of the inverses/eigenbases made once per
    refresh; the preconditioned step agrees with float64 training to ~1e-7.
    The damped inverses come from a Cholesky factorisation (π needs only the
    traces), or, if a damped factor is not numerically positive definite,
    from ``eigh`` with negative eigenvalues clipped to 0. Cost
    per step and layer: the two Gram matrices (when due) and two GEMMs
    ``d_out²·(d_in+1) + d_out·(d_in+1)²``; every ``refresh`` steps two
    ``eigh``. Parameters of layers without a rule get the plain step,
    reported once by a :class:`CurvatureWarning`.

    Rules: :class:`Dense` layers, and dense tanh/ReLU :class:`RNNCell` s
    inside an :class:`RNN` by KFAC-expand (Eschenhagen et al. 2023): one
    block over ``[U, W, b]`` acting on ``[x_t; h_{t-1}; 1]``, ``A`` averaged
    over steps and sequences, ``G = (1/B) Σ_{n,t} g gᵀ`` from the BPTT deltas
    (KFAC-reduce with ``approx="reduce"``).
    Orthogonal and structured maps keep the wrapped optimizer's step.

    The curvature arrays are part of :meth:`state_dict` (checkpoints resume
    bit for bit) but not of ``optimizer.state`` (the wrapped optimizer's
    moments), which the trainer copies before every step: after a step the
    trainer rolls back on divergence, the factor averages keep that step's
    (finite) statistics.

    References
    ----------
    J. Martens, R. Grosse, "Optimizing neural networks with Kronecker-factored
    approximate curvature", ICML 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 5)); y = (x[:, 0] > 0).astype(int)
    >>> task = lnn.array_task(x, y, x, y, flat=True)
    >>> model = lnn.build_mlp(task, hidden=(8,), dtype=np.float64, rng=0)
    >>> opt = lnn.KFAC(lr=0.1, damping=1e-2, refresh=5)
    >>> tr = lnn.Trainer(model, task.loss(), opt, task, batch_size=16, rng=0)
    >>> h = tr.fit(epochs=3, progress=False)
    >>> h.loss[-1] < h.loss[0]
    True
    """

    _default_refresh = 20

    def __init__(self, lr: float = 0.01, *, damping_style: str = "paper", **kw: Any) -> None:
        super().__init__(lr, **kw)
        self.damping_style = check_option(
            damping_style, "damping_style", DAMPING_STYLES, where="KFAC"
        )

    def _config(self) -> dict[str, Any]:
        return {"damping_style": self.damping_style}

    def _block_step(self, block: _Block, G: np.ndarray, s: int) -> np.ndarray | None:
        where = "KFAC.step"
        kAi = f"{PREFIX}Ainv/{block.name}"
        kGi = f"{PREFIX}Ginv/{block.name}"
        factors, refresh = self._due(s, block, kAi)
        stats = self._stats(block, where) if factors else None
        if factors and stats is None:
            if kAi not in self._curv:
                self._missing(block, where)
                return None
            factors = refresh = False
        if factors:
            self._update_factors(block, stats, where)
        if refresh:
            A = self._curv[f"{PREFIX}A/{block.name}"]
            Gf = self._curv[f"{PREFIX}G/{block.name}"]
            self._curv[kAi], self._curv[kGi] = kfac_inverses(
                A, Gf, self.damping, self.damping_style
            )
            self._cast.pop(kAi, None)
            self._cast.pop(kGi, None)
        Ai = self._cast_of(kAi, G.dtype)
        Gi = self._cast_of(kGi, G.dtype)
        if block.d_out <= block.a_size:
            return (Gi @ G) @ Ai
        return Gi @ (G @ Ai)


def kfac_inverses(
    A: np.ndarray, G: np.ndarray, damping: float, style: str
) -> tuple[np.ndarray, np.ndarray]:
    """Damped inverses ``(A + π√λ I)⁻¹`` and ``(G + (√λ/π) I)⁻¹`` (private).

    π needs only the traces; each inverse comes from a Cholesky factorisation
    (LAPACK ``potrf``/``potri``, about ``n³`` flops, several times cheaper
    than ``eigh`` and the product that would rebuild the inverse from it).
    If a damped factor is not numerically positive definite, ``eigh`` with
    negative eigenvalues clipped to 0 is used instead.
    """
    pi = damping_pi(style, float(np.trace(A)), A.shape[0], float(np.trace(G)), G.shape[0])
    r = np.sqrt(damping)
    return _damped_inverse(A, pi * r), _damped_inverse(G, r / pi)


def _damped_inverse(M: np.ndarray, shift: float) -> np.ndarray:
    import scipy.linalg
    from scipy.linalg import lapack

    Md = M + shift * np.eye(M.shape[0])
    try:
        c, _ = scipy.linalg.cho_factor(Md, lower=False, check_finite=False)
        inv, info = lapack.dpotri(c, lower=0)
        if info == 0:
            inv = np.triu(inv)
            inv += np.triu(inv, 1).T
            return inv
    except np.linalg.LinAlgError:
        pass
    s, U = eigh_clipped(M)
    return (U / (s + shift)) @ U.T


@register_optimizer
class EKFAC(_KroneckerOptimizer):
    """EKFAC (George et al. 2018): a diagonal rescaling in the Kronecker-factored
    eigenbasis, ``∇ ← U_G [(U_Gᵀ ∇W̃ U_A) / (S + λ)] U_Aᵀ``, then a wrapped optimizer.

    Parameters
    ----------
    lr, momentum, decay, factor_every, stats_fraction, fisher, optimizer
        As for :class:`KFAC`. With ``stats_fraction < 1`` the batch diagonal
        comes from the subset's projections and the eigenbasis gradient from
        rotating the whole batch's gradient (two GEMMs).
    exclude, groups, weight_decay, clip_norm, schedule
        As for :class:`KFAC`.
    damping : float
        ``λ > 0`` added to the diagonal ``S`` (the EKFAC authors' ``eps``).
    refresh : int
        Recompute the eigenbases ``U_A``, ``U_G`` every so many steps
        (default 100, the authors' README).
    diag : {"batch", "running"}
        ``"batch"`` (default; the authors' ``ra=False``): ``S`` re-estimated
        every step from the current batch by the rank-one trick
        ``S = ((G_b U_G)∘²)ᵀ((Ã_b U_A)∘²)/B``; ``"running"`` (``ra=True``):
        ``S ← α S + (1−α) B (U_Gᵀ ∇W̃ U_A)²`` from the mean gradient, reset
        to ``s_G ⊗ s_A`` at each refresh.
    diag_decay : float
        ``α`` of ``diag="running"`` (0.75, the authors' default).
    diag_every : int
        With ``diag="batch"``: re-estimate ``S`` every so many steps (1: every
        step, as in the paper) and reuse it in between. A diagonal from one
        batch is near zero along directions that batch does not excite; reused
        on other batches it needs a larger ``damping``.

    Notes
    -----
    Per step and dense layer (``diag="batch"``): ``Ã U_A`` and ``G U_G``,
    ``S`` (one GEMM of the squares), the projected gradient and its
    back-rotation (two GEMMs each); the eigenbases of the float64 factor
    averages every ``refresh`` steps. ``diag="running"`` needs only the
    four rotation GEMMs. A layer input ``(T, B, d)`` (weights shared over
    time) uses per-sequence gradients ``Σ_t (U_Gᵀg_t)(U_Aᵀã_t)ᵀ`` for ``S``.

    References
    ----------
    T. George, C. Laurent, X. Bouthillier, N. Ballas, P. Vincent, "Fast
    approximate natural gradient descent in a Kronecker-factored eigenbasis",
    NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 5)); y = (x[:, 0] > 0).astype(int)
    >>> task = lnn.array_task(x, y, x, y, flat=True)
    >>> model = lnn.build_mlp(task, hidden=(8,), dtype=np.float64, rng=0)
    >>> opt = lnn.EKFAC(lr=0.05, damping=1e-2, refresh=5)
    >>> tr = lnn.Trainer(model, task.loss(), opt, task, batch_size=16, rng=0)
    >>> h = tr.fit(epochs=3, progress=False)
    >>> h.loss[-1] < h.loss[0]
    True
    """

    _default_refresh = 100

    def __init__(
        self,
        lr: float = 0.01,
        *,
        diag: str = "batch",
        diag_decay: float = 0.75,
        diag_every: int = 1,
        **kw: Any,
    ) -> None:
        super().__init__(lr, **kw)
        self.diag_every = check_int(diag_every, "diag_every", where="EKFAC", low=1)
        self.diag = check_option(diag, "diag", ("batch", "running"), where="EKFAC")
        self.diag_decay = check_real(
            diag_decay, "diag_decay", where="EKFAC", low=0, high=1, high_open=True
        )

    def _config(self) -> dict[str, Any]:
        return {"diag": self.diag, "diag_decay": self.diag_decay, "diag_every": self.diag_every}

    def _block_step(self, block: _Block, G: np.ndarray, s: int) -> np.ndarray | None:
        where = "EKFAC.step"
        n = block.name
        kUA, kUG, kS = f"{PREFIX}UA/{n}", f"{PREFIX}UG/{n}", f"{PREFIX}S/{n}"
        factors, refresh = self._due(s, block, kUA)
        # cells have no per-example gradients: their diagonal is always the running one
        running = self.diag == "running" or block.kind == "rnn"
        batch_diag = not running and (s % self.diag_every == 0 or kS not in self._curv)
        stats = self._stats(block, where) if (factors or batch_diag) else None
        if stats is None and (factors or batch_diag):
            if kUA not in self._curv or kS not in self._curv:
                self._missing(block, where)
                return None
            factors = refresh = batch_diag = False
        if factors:
            self._update_factors(block, stats, where)
        if refresh:
            sA, UA = eigh_clipped(self._curv[f"{PREFIX}A/{n}"])
            sG, UG = eigh_clipped(self._curv[f"{PREFIX}G/{n}"])
            self._curv[kUA], self._curv[kUG] = UA, UG
            self._curv[f"{PREFIX}sA/{n}"], self._curv[f"{PREFIX}sG/{n}"] = sA, sG
            self._cast.pop(kUA, None)
            self._cast.pop(kUG, None)
            if running:
                self._curv[kS] = np.outer(sG, sA)
        dt = G.dtype
        UA = self._cast_of(kUA, dt)
        UG = self._cast_of(kUG, dt)
        if batch_diag:
            x, dy, c, B, whole = stats
            if whole and self.fisher != "mc":
                V, S = kfe_project(block, x, dy, c, B, UA, UG)
            else:  # the statistics' rows are not the gradient's (sampled labels, subset)
                V, S = None, kfe_diag(block, x, dy, c, B, UA, UG)
            if V is None:
                V = self._eigen_grad(block, G, UA, UG)
            self._curv[kS] = S
        else:
            V = self._eigen_grad(block, G, UA, UG)
            S = self._curv[kS]
            if running:
                x = block.recorder.x
                B = n_examples(x) if x is not None else 1
                c = example_scale(self._reduction, B)
                a = self.diag_decay
                Vm = V.astype(np.float64) * (c / B)
                S *= a
                S += (1.0 - a) * B * (Vm * Vm)
        if not np.isfinite(S).all():
            raise LowdispError(
                f"{where}: the EKFAC diagonal of layer {n!r} holds NaN/Inf; the step was not taken"
            )
        V /= (S + self.damping).astype(dt, copy=False)
        if block.d_out <= block.a_size:
            return (UG @ V) @ UA.T
        return UG @ (V @ UA.T)

    def _eigen_grad(
        self, block: _Block, G: np.ndarray, UA: np.ndarray, UG: np.ndarray
    ) -> np.ndarray:
        """``U_Gᵀ ∇W̃ U_A``: rotating the gradient (``d_out·a·(d_out + a)``
        multiply-adds), or, when the batch has fewer rows than that costs, from the
        recorded rows as ``(dy U_G)ᵀ(ã U_A)`` (``rows·(d_in·a + d_out² + d_out·a)``;
        equal because ``∇W̃ = dyᵀ ã``; the empirical Fisher's rows only: with
        ``fisher="mc"`` the recorded cotangents are sampled)."""
        rec = block.recorder
        x, dy = rec.x, rec.dy
        rows_ok = x is not None and dy is not None and x.ndim == 2 and x.dtype == G.dtype
        if rows_ok and self.fisher == "empirical" and block.kind == "dense":
            o, a = block.d_out, block.a_size
            if x.shape[0] * (block.d_in * a + o * o + o * a) < o * a * (o + a):
                return (dy @ UG).T @ block.project_inputs(x, UA)
        return _rotate_in(G, UA, UG)


def _rotate_in(G: np.ndarray, UA: np.ndarray, UG: np.ndarray) -> np.ndarray:
    """``U_Gᵀ G U_A`` in the cheaper association."""
    if G.shape[0] <= G.shape[1]:
        return (UG.T @ G) @ UA
    return UG.T @ (G @ UA)


def kfe_project(
    block: _Block,
    x: np.ndarray,
    dy: np.ndarray,
    c: float,
    B: int,
    UA: np.ndarray,
    UG: np.ndarray,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The batch gradient in the eigenbasis and EKFAC's diagonal (private).

    For ``(B, d)`` inputs: ``V = (dy U_G)ᵀ(ã U_A)`` (equal to ``U_Gᵀ ∇W̃ U_A``) and
    ``S = c²/B · ((dy U_G)∘²)ᵀ((ã U_A)∘²)`` (the rank-one trick), from the same
    two projections. For sequences ``V`` is ``None`` and ``S`` comes from
    :func:`kfe_diag`.
    """
    if x.ndim > 2:
        return None, kfe_diag(block, x, dy, c, B, UA, UG)
    XU = block.project_inputs(x, UA)
    GU = dy @ UG
    V = GU.T @ XU
    np.square(XU, out=XU)
    np.square(GU, out=GU)
    S = np.asarray(GU.T @ XU, dtype=np.float64)
    S *= c * c / B
    return V, S


def kfe_diag(
    block: _Block,
    x: np.ndarray,
    dy: np.ndarray,
    c: float,
    B: int,
    UA: np.ndarray,
    UG: np.ndarray,
) -> np.ndarray:
    """EKFAC's diagonal ``E_i[(U_Gᵀ g_i)² ⊗ (U_Aᵀ ã_i)²]`` in float64 (private).

    ``c²/B`` times :func:`lowdisp.nn._curvature.kfe_square_sum` (the rank-one
    trick for ``(B, d)`` inputs, per-sequence gradients for ``(T, B, d)``).
    """
    S = kfe_square_sum(block, x, dy, UA, UG)
    S *= c * c / B
    return S
