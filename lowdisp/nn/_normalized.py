"""Normalized recurrent cells: recurrent batch normalization and layer normalization.

- :class:`BNLSTMCell`: Cooijmans, Ballas, Laurent, Gülçehre & Courville,
  "Recurrent Batch Normalization" (ICLR 2017), exactly as in the paper's tex
  (``notes/rnn.md`` §10): the recurrent and the input terms are normalized
  separately, and the cell state before the output tanh:

  ``(f̃, ĩ, õ, g̃)_t = BN(W_h h_{t-1}; γ_h) + BN(W_x x_t; γ_x) + b``,
  ``c_t = σ(f̃) ⊙ c_{t-1} + σ(ĩ) ⊙ tanh(g̃)``,
  ``h_t = σ(õ) ⊙ tanh(BN(c_t; γ_c, β_c))``,

  with **separate statistics for every time step** (γ, β shared over time),
  ``γ₀ = 0.1``, ``β = 0``; population statistics (running averages per step)
  for ``t < t_max`` at evaluation, and those of step ``t_max − 1`` beyond it.
- :class:`BNRNNCell`: Laurent, Pereyra, Brakel, Zhang & Bengio, "Batch
  Normalized Recurrent Neural Networks" (ICASSP 2016): only the
  input-to-hidden term is normalized, ``h_t = tanh(BN(W_x x_t; γ, β) + W_h
  h_{t-1})``, with frame-wise (per-step) or sequence-wise (over batch and
  time) statistics.
- :class:`LNLSTMCell` and :class:`LNRNNCell`: Ba, Kiros & Hinton, "Layer
  Normalization" (2016): the same places normalized over the features of
  each example instead of over the batch (no running statistics, the same
  computation in training and evaluation).

Every cell runs one fused loop over time: the input projection ``W_x x_t`` of
all steps is one GEMM before the loop, BPTT is hand-written with the
derivative of the training-mode statistics, and ``dW_x``, ``dX`` and
``dW_h`` are GEMMs over all steps after it. In the LSTMs the per-step
normalizations, the cell update and the whole backward step but its GEMM are
fused Numba kernels (:mod:`lowdisp.kernels.norm_lstm`); BN-RNN normalizes
its input term for all steps at once (it does not depend on the recurrence).

Running statistics are non-trainable state. They live in the cell's
parameter dict under the reserved suffixes ``.running_mean`` and
``.running_var`` (:data:`BUFFER_SUFFIXES`, :func:`is_buffer`): checkpoints
save and restore them with the parameters, and optimizers never touch them,
since optimizers update only the paths that have a gradient and the cells
return none for these. They are updated in place by every training-mode
forward pass (``momentum`` 0.1, torch's exponential average with the
unbiased batch variance).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_bool, check_int, check_option, check_real
from lowdisp.nn._layers import _check_dtype
from lowdisp.nn._rnn import _REGISTERED_CELLS, _Cell
from lowdisp.nn._spec import register_layer

__all__ = [
    "BUFFER_SUFFIXES",
    "BNLSTMCell",
    "BNRNNCell",
    "LNLSTMCell",
    "LNRNNCell",
    "is_buffer",
    "refresh_bn_statistics",
]

#: time steps per block of the normalized LSTMs' BPTT reductions (two (K, B, 4n) rings)
_RING = 4
#: input sizes up to this form the LSTMs' input term per step (and again in BPTT)
_SMALL_INPUT = 16

#: suffixes of the parameter paths that hold non-trainable state (running statistics)
BUFFER_SUFFIXES = (".running_mean", ".running_var")


def is_buffer(path: str) -> bool:
    """True if the parameter path names non-trainable state (running statistics).

    Parameters
    ----------
    path : str
        A parameter path, e.g. ``"rnn.cell.bn_h.running_mean"``.

    Returns
    -------
    bool

    Examples
    --------
    >>> from lowdisp.nn import is_buffer
    >>> is_buffer("rnn.cell.bn_h.running_var"), is_buffer("rnn.cell.gamma_h")
    (True, False)
    """
    return isinstance(path, str) and path.endswith(BUFFER_SUFFIXES)


def _bn_cells(model: Any) -> list[Any]:
    """The batch-normalized cells inside ``model`` (a cell, an RNN layer or a Sequential)."""
    if isinstance(model, (BNLSTMCell, BNRNNCell)):
        return [model]
    cell = getattr(model, "cell", None)
    if cell is not None:
        return _bn_cells(cell)
    layers = getattr(model, "layers", None)
    if isinstance(layers, dict):
        return [c for layer in layers.values() for c in _bn_cells(layer)]
    return []


def refresh_bn_statistics(model: Any, batches: Any, *, rng: Any = None) -> int:
    """Recompute the population statistics of every batch-normalized cell of ``model``.

    The running statistics kept during training are exponential averages of
    past batches, taken while the parameters moved: early in training they
    lag behind the current weights, and where a step's batch variance is
    near 0 (constant leading pixels) the lag is amplified by ``1/√ε``. This
    replaces them by the plain average of the batch statistics of
    ``batches`` under the current parameters (training-mode forward passes:
    batch ``k`` enters with weight ``1/k``), as population statistics are
    defined after training (Ioffe & Szegedy 2015).

    Parameters
    ----------
    model : Layer or cell
        A :class:`BNLSTMCell`/:class:`BNRNNCell`, an ``RNN`` layer or a
        ``Sequential`` holding them.
    batches : iterable of array
        Inputs ``(T, B, input_size)`` (or tokens), e.g. training batches.
    rng : seed or Generator, optional
        Noise on ``h_0`` during these passes (the cells' ``h0_noise``).

    Returns
    -------
    int
        The number of cells refreshed.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> cell = lnn.BNLSTMCell(1, 4, t_max=3, rng=0)
    >>> x = np.random.default_rng(0).normal(size=(3, 8, 1))
    >>> lnn.refresh_bn_statistics(lnn.RNN(cell), [x[:, :4], x[:, 4:]])
    1
    """
    cells = _bn_cells(model)
    gen = as_rng(rng, where="refresh_bn_statistics")
    saved = [c.momentum for c in cells]
    try:
        for k, xb in enumerate(batches, 1):
            for c in cells:
                c.momentum = 1.0 / k
            if hasattr(model, "forward") and not isinstance(model, _Cell):
                model.forward(xb, train=True, rng=gen)
            else:
                model.forward_sequence(xb, train=True, rng=gen)
    finally:
        for c, m in zip(cells, saved, strict=True):
            c.momentum = m
    return len(cells)


# ---------------------------------------------------------------------------
# normalization primitives (private)
# ---------------------------------------------------------------------------


def _normalize(z: np.ndarray, axis: Any, eps: float, xhat: np.ndarray):
    """Training-mode statistics along ``axis``: ``xhat = (z - μ) / √(σ² + ε)``.

    Returns ``(inv, mu, var)`` with ``keepdims`` shapes (``inv = 1/√(σ² + ε)``).
    """
    mu = z.mean(axis=axis, keepdims=True)
    np.subtract(z, mu, out=xhat)
    var = np.square(xhat).mean(axis=axis, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    np.multiply(xhat, inv, out=xhat)
    return inv, mu, var


def _fixed(z: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float, xhat: np.ndarray):
    """Evaluation mode: normalize with given (population) statistics; returns ``inv``."""
    inv = 1.0 / np.sqrt(var + eps)
    np.subtract(z, mean, out=xhat)
    np.multiply(xhat, inv, out=xhat)
    return inv


def _unnormalize_grad(g, xhat, inv, axis, batch_stats: bool, out=None):
    """``dL/dz`` from ``g = dL/dx̂`` (already multiplied by γ).

    With the statistics of the normalized group itself (training-mode BN, or
    LN) their derivative is included:
    ``dz = inv (g − mean(g) − x̂ mean(g x̂))``; with fixed statistics ``dz = inv g``.
    """
    if out is None:
        out = np.empty_like(g)
    if batch_stats:
        m1 = g.mean(axis=axis, keepdims=True)
        m2 = (g * xhat).mean(axis=axis, keepdims=True)
        corr = xhat * m2
        np.subtract(g, m1, out=out)  # ``out`` may be ``g`` itself
        np.subtract(out, corr, out=out)
        np.multiply(out, inv, out=out)
    else:
        np.multiply(g, inv, out=out)
    return out


def _update_running(rm, rv, mu, var, rows: int, momentum: float) -> None:
    """``r ← (1 − m) r + m · batch`` (the variance unbiased by ``rows/(rows − 1)``)."""
    unbias = rows / (rows - 1) if rows > 1 else 1.0
    rm *= 1.0 - momentum
    rm += momentum * mu
    rv *= 1.0 - momentum
    rv += (momentum * unbias) * var


def _step_index(T: int, t_max: int) -> np.ndarray:
    """Index of the statistics used at each step: ``min(t, t_max − 1)``."""
    return np.minimum(np.arange(T), t_max - 1)


def _common(cls_name, input_size, hidden_size, dtype, rng):
    input_size = check_int(input_size, "input_size", where=cls_name, low=1)
    hidden_size = check_int(hidden_size, "hidden_size", where=cls_name, low=1)
    return input_size, hidden_size, _check_dtype(dtype, cls_name), as_rng(rng, where=cls_name)


def _check_mode(cell: Any, train: Any, where: str) -> bool:
    return check_bool(train, "train", where=where)


# ---------------------------------------------------------------------------
# LSTM with batch or layer normalization
# ---------------------------------------------------------------------------


class _NormLSTM(_Cell):
    """Shared LSTM with the three normalized terms (BN over the batch, or LN over features)."""

    _batch: bool = True  # BN (statistics over the batch) or LN (over the features)
    #: the cells take the ``train`` flag and the forward ``rng`` (RNN passes both)
    takes_mode = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        t_max: int = 100,
        gamma0: float = 0.1,
        eps: float = 1e-5,
        momentum: float = 0.1,
        forget_bias: float = 1.0,
        h0_noise: float = 0.0,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = type(self).__name__
        self.input_size, n, self.dtype, gen = _common(where, input_size, hidden_size, dtype, rng)
        self.hidden_size = self.state_size = n
        self.t_max = check_int(t_max, "t_max", where=where, low=1)
        self.gamma0 = check_real(gamma0, "gamma0", where=where)
        self.eps = check_real(eps, "eps", where=where, low=0.0, low_open=True)
        self.momentum = check_real(momentum, "momentum", where=where, low=0.0, high=1.0)
        self.forget_bias = check_real(forget_bias, "forget_bias", where=where)
        self.h0_noise = check_real(h0_noise, "h0_noise", where=where, low=0.0)
        # the noise on h_0 comes from the forward pass's rng (the trainer's); without
        # one, from this generator (seeded from the cell's rng: reproducible)
        self._noise_rng = np.random.default_rng(gen.integers(2**63))
        lim = 1.0 / np.sqrt(n)
        dt = self.dtype
        p = {
            "W_x": gen.uniform(-lim, lim, (4 * n, self.input_size)).astype(dt),
            "W_h": gen.uniform(-lim, lim, (4 * n, n)).astype(dt),
            "b": np.zeros(4 * n, dtype=dt),
            "gamma_x": np.full(4 * n, self.gamma0, dtype=dt),
            "gamma_h": np.full(4 * n, self.gamma0, dtype=dt),
            "gamma_c": np.full(n, self.gamma0, dtype=dt),
            "beta_c": np.zeros(n, dtype=dt),
        }
        p["b"][n : 2 * n] = self.forget_bias
        if self._batch:
            for name, m in (("bn_x", 4 * n), ("bn_h", 4 * n), ("bn_c", n)):
                p[f"{name}.running_mean"] = np.zeros((self.t_max, m), dtype=dt)
                p[f"{name}.running_var"] = np.ones((self.t_max, m), dtype=dt)
        self._params = p

    def get_config(self) -> dict[str, Any]:
        cfg = {
            "class": type(self).__name__,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "gamma0": self.gamma0,
            "eps": self.eps,
            "forget_bias": self.forget_bias,
            "h0_noise": self.h0_noise,
            "dtype": self.dtype.name,
        }
        if self._batch:
            cfg["t_max"] = self.t_max
            cfg["momentum"] = self.momentum
        return cfg

    def forward_sequence(
        self, x: Any, h0: Any = None, *, train: bool = True, rng: Any = None
    ) -> tuple[np.ndarray, Any]:
        """Run the whole sequence ``x`` ``(T, B, input_size)`` (or tokens ``(T, B)``).

        ``train=True`` normalizes with the batch's statistics of each step and
        updates the running statistics (BN); ``train=False`` uses the
        population statistics (step ``min(t, t_max − 1)``). ``rng`` draws the
        noise on ``h_0`` (training only, ``h0_noise > 0``). Returns ``H``
        ``(T, B, hidden_size)`` and the cache for :meth:`backward_sequence`.
        """
        where = f"{type(self).__name__}.forward_sequence"
        train = _check_mode(self, train, where)
        x = self.validate(x)
        return self._forward_sequence(x, self._check_h0(h0, x), train=train, rng=rng)

    def _h0(self, h0, B: int, train: bool, rng: Any) -> np.ndarray:
        n = self.hidden_size
        out = np.zeros((B, n), dtype=self.dtype) if h0 is None else np.array(h0, dtype=self.dtype)
        if train and self.h0_noise > 0:
            gen = self._noise_rng if rng is None else as_rng(rng, where=type(self).__name__)
            out += (self.h0_noise * gen.standard_normal((B, n))).astype(self.dtype)
        return out

    def _forward_sequence(
        self, x: np.ndarray, h0: Any, train: bool = True, rng: Any = None
    ) -> tuple[np.ndarray, Any]:
        from lowdisp.kernels.norm_lstm import lstm_c_norm, norm_gates
        from lowdisp.kernels.rnn_lstm import lstm_out_step

        p = self._params
        n = self.hidden_size
        dt = self.dtype
        bn = self._batch
        stats = train or not bn  # the group's own statistics (BN in training, or LN)
        eps = self.eps
        T, B = x.shape[:2]
        # big buffers from the cell's workspace: reused across a trainer's steps
        buf = self._buf
        # the input term W_x x_t: for tokens or a small input (a gather, or a GEMM of
        # input_size <= _SMALL_INPUT terms) it is formed per step here and again in BPTT
        # (two (T, B, 4n) arrays fewer through memory); otherwise one GEMM for all steps
        # and x̂_x kept
        small = self._small_input(x)
        WxT = np.ascontiguousarray(p["W_x"].T)
        if small:
            zx_s, xhx_s = np.empty((2, B, 4 * n), dtype=dt)
            ZX = XHx = None
        else:
            ZX = self._project(x, p["W_x"], None, out=buf("ZX", (T, B, 4 * n)))
            XHx = buf("XHx", (T, B, 4 * n))
        A = buf("A", (T, B, 4 * n))  # becomes the gate activations
        WhT = np.ascontiguousarray(p["W_h"].T)
        g_h, g_c, b_c = p["gamma_h"], p["gamma_c"], p["beta_c"]
        H = buf("H", (T + 1, B, n))
        C = buf("C", (T + 1, B, n))
        XHh = buf("XHh", (T, B, 4 * n))
        XHc = buf("XHc", (T, B, n))
        TC = buf("TC", (T, B, n))
        # per-step statistics: one per column (BN) or one per row (LN)
        gh, gc = (4 * n, n) if bn else (B, B)
        inv_x = np.empty((T, gh), dtype=dt)
        mu_x = np.empty((T, gh), dtype=dt)  # the input term's mean at each step
        inv_h = np.empty((T, gh), dtype=dt)
        inv_c = np.empty((T, gc), dtype=dt)
        mu, var = np.empty(max(gh, gc), dtype=dt), np.empty(max(gh, gc), dtype=dt)
        mu_c, var_c = mu[:gc], var[:gc]
        no_beta = np.zeros(4 * n, dtype=dt)
        H[0] = self._h0(h0, B, train, rng)
        C[0] = 0
        tmp = np.empty((B, n), dtype=dt)
        zh = np.empty((B, 4 * n), dtype=dt)
        if bn:
            rmx, rvx = p["bn_x.running_mean"], p["bn_x.running_var"]
            rmh, rvh = p["bn_h.running_mean"], p["bn_h.running_var"]
            rmc, rvc = p["bn_c.running_mean"], p["bn_c.running_var"]
        else:  # layer normalization keeps no statistics (placeholders for the kernels)
            rmx = rvx = rmh = rvh = np.zeros((1, gh), dtype=dt)
            rmc = rvc = np.zeros((1, gc), dtype=dt)
        update = bn and train and self.momentum > 0
        momentum = self.momentum if update else 0.0
        # σ(z) = (tanh(z/2) + 1)/2: the i, f, o entries of γ_x, b, γ_h are halved (exact:
        # a power of 2), so the kernel writes the halved arguments and each step takes
        # ONE SIMD tanh over all 4n gate columns
        sg = (slice(0, 2 * n), slice(3 * n, 4 * n))
        g_x, b, g_h = p["gamma_x"].copy(), p["b"].copy(), g_h.copy()
        for v in (g_x, b, g_h):
            for s_ in sg:
                v[s_] *= dt.type(0.5)
        last = rmx.shape[0] - 1
        for t in range(T):
            a = A[t]
            s = min(t, last)
            # the running statistics of step t are updated by the kernels (m > 0)
            m = momentum if t <= last else 0.0
            # a = γ_x x̂_x + b + γ_h x̂_h with x̂_x = norm(W_x x_t), x̂_h = norm(W_h h_{t-1}),
            # then the halved sigmoid arguments: one kernel call
            np.matmul(H[t], WhT, out=zh)
            norm_gates(
                self._input_term(x[t], WxT, zx_s) if small else ZX[t],
                zh,
                xhx_s if small else XHx[t],
                XHh[t],
                g_x,
                b,
                g_h,
                no_beta,
                eps,
                bn,
                stats,
                *((mu, var, mu, var) if stats else (rmx[s], rvx[s], rmh[s], rvh[s])),
                inv_x[t],
                inv_h[t],
                mu_x[t],
                mu,
                var,
                a,
                m,
                *((rmx[t], rvx[t], rmh[t], rvh[t]) if m else (mu, var, mu, var)),
            )
            np.tanh(a, out=a)
            # the gates, c_t, then tmp = γ_c norm(c_t) + β_c
            lstm_c_norm(
                a,
                C[t],
                C[t + 1],
                g_c,
                b_c,
                eps,
                bn,
                stats,
                *((mu_c, var_c) if stats else (rmc[s], rvc[s])),
                XHc[t],
                inv_c[t],
                mu_c,
                var_c,
                tmp,
                m,
                *((rmc[t], rvc[t]) if m else (mu_c, var_c)),
            )
            np.tanh(tmp, out=TC[t])
            lstm_out_step(a, TC[t], H[t + 1])
        cache = (x, A, H, C, TC, XHx, inv_x, XHh, inv_h, XHc, inv_c, stats, WxT, mu_x)
        return H[1:], cache

    def _small_input(self, x: np.ndarray) -> bool:
        """Whether the input term is formed per step (and again in BPTT), not stored."""
        return x.dtype.kind in "iu" or self.input_size <= _SMALL_INPUT

    @staticmethod
    def _input_term(xt: np.ndarray, WxT: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``W_x x_t`` of one step into ``out`` (B, 4n): a row gather for tokens."""
        if xt.dtype.kind in "iu":  # (the method: NumPy's np.take wrapper costs ~5 µs a call)
            return WxT.take(xt, axis=0, out=out, mode="clip")
        return np.matmul(xt, WxT, out=out)

    def backward_sequence(self, cache: Any, dH: Any, dh_last: Any = None) -> tuple[Any, dict]:
        """BPTT through the normalizations (their training-mode statistics included).

        ``dH`` ``(T, B, hidden)`` is ``∂L/∂h_t`` for every step (or ``None``);
        ``dh_last`` adds ``∂L/∂h_T``. Returns ``(dX, grads)`` (``dX`` is
        ``None`` for token input); no gradient for the running statistics.
        """
        from lowdisp.kernels.norm_lstm import bn_lstm_backward_step, norm_lstm_backward_step

        x, A, H, C, TC, XHx, inv_x, XHh, inv_h, XHc, inv_c, stats, WxT, mu_x = cache
        p = self._params
        n = self.hidden_size
        T, B, _ = A.shape
        dt = self.dtype
        bn = self._batch
        W_h, W_x = p["W_h"], p["W_x"]
        g_h, g_c, g_x = p["gamma_h"], p["gamma_c"], p["gamma_x"]
        tokens = x.dtype.kind in "iu"
        # ∂L/∂(W_h h_{t-1}) and ∂L/∂(W_x x_t) live in rings of K steps: each block is
        # reduced into dW_h, dW_x (and dX) while it is in cache, so no (T, B, 4n)
        # gradient goes to memory and back
        K = min(_RING, T)
        dZH = self._buf("dZH", (K, B, 4 * n))
        dZX = self._buf("dZX", (K, B, 4 * n))
        d = np.empty((B, 4 * n), dtype=dt)  # dL/d(gate pre-activations) of one step
        grads = {k: np.zeros(p[k].shape, dtype=dt) for k in self._grad_order[2:]}
        ch = np.zeros((B, n), dtype=dt)
        if dh_last is not None:
            ch += dh_last
        cc = np.zeros((B, n), dtype=dt)
        u = np.empty((B, n), dtype=dt)
        scratch = np.empty((5, 4 * n), dtype=dt)
        s1 = np.empty(max(B, 4 * n), dtype=dt)
        s2 = np.empty(max(B, 4 * n), dtype=dt)
        # dW_hᵀ = Σ_t h_{t-1} δ_tᵀ (Hᵀ δ: the faster GEMM layout), dW_xᵀ likewise
        dWhT = np.zeros((n, 4 * n), dtype=dt)
        dWxT = np.zeros((self.input_size, 4 * n), dtype=dt)
        tmpW = np.empty((n, 4 * n), dtype=dt)
        dX = None if tokens else np.empty(x.shape, dtype=dt)
        has_dh = dH is not None
        xhx = np.empty((B, 4 * n), dtype=dt) if XHx is None else None
        for t in range(T - 1, -1, -1):
            i = t % K
            zh, zx = dZH[i], dZX[i]
            if XHx is None:  # x̂_x formed again, with the forward's operations (same bits)
                self._input_term(x[t], WxT, xhx)
                np.subtract(xhx, mu_x[t] if bn else mu_x[t][:, None], out=xhx)
                np.multiply(xhx, inv_x[t] if bn else inv_x[t][:, None], out=xhx)
            else:
                xhx = XHx[t]
            if bn:
                bn_lstm_backward_step(
                    dH[t] if has_dh else ch,
                    has_dh,
                    ch,
                    A[t],
                    TC[t],
                    XHc[t],
                    inv_c[t],
                    g_c,
                    C[t],
                    XHh[t],
                    inv_h[t],
                    g_h,
                    xhx,
                    inv_x[t],
                    g_x,
                    stats,
                    cc,
                    d,
                    zh,
                    zx,
                    grads["b"],
                    grads["gamma_h"],
                    grads["gamma_x"],
                    grads["gamma_c"],
                    grads["beta_c"],
                    u,
                    scratch,
                )
            else:
                norm_lstm_backward_step(
                    dH[t] if has_dh else ch,
                    has_dh,
                    ch,
                    A[t],
                    TC[t],
                    XHc[t],
                    inv_c[t],
                    g_c,
                    C[t],
                    XHh[t],
                    inv_h[t],
                    g_h,
                    xhx,
                    inv_x[t],
                    g_x,
                    bn,
                    stats,
                    cc,
                    d,
                    zh,
                    zx,
                    grads["b"],
                    grads["gamma_h"],
                    grads["gamma_x"],
                    grads["gamma_c"],
                    grads["beta_c"],
                    u,
                    s1,
                    s2,
                )
            if t:
                np.matmul(zh, W_h, out=ch)
            if i == 0:  # the block t .. t + k - 1 is complete
                k = min(K, T - t)
                ZH = dZH[:k].reshape(-1, 4 * n)
                ZX = dZX[:k].reshape(-1, 4 * n)
                np.matmul(H[t : t + k].reshape(-1, n).T, ZH, out=tmpW)
                np.add(dWhT, tmpW, out=dWhT)
                self._block_input_grads(x[t : t + k], ZX, W_x, dWxT, dX, t)
        grads["W_h"] = np.ascontiguousarray(dWhT.T)
        grads["W_x"] = np.ascontiguousarray(dWxT.T)
        return dX, {k: grads[k] for k in self._grad_order}

    def _block_input_grads(self, xb, ZX, W_x, dWxT, dX, t) -> None:
        """Add a block's ``Σ x_t δ_tᵀ`` to ``dW_xᵀ`` (a row scatter for tokens) and write
        its ``dX = δ W_x`` (float input)."""
        if dX is None:
            from lowdisp.kernels.rnn_modrelu import scatter_add_rows

            scatter_add_rows(xb.reshape(-1), ZX, dWxT)
            return
        d = xb.shape[2]
        dWxT += xb.reshape(-1, d).T @ ZX
        np.matmul(ZX, W_x, out=dX[t : t + xb.shape[0]].reshape(-1, d))

    _grad_order = ("W_x", "W_h", "b", "gamma_x", "gamma_h", "gamma_c", "beta_c")

    def weight_matrices(self) -> dict[str, np.ndarray]:
        """``{"W_x", "W_h"}`` (copies): the weight matrices, not the running statistics
        (:func:`lowdisp.nn.weight_matrices`, snapshots)."""
        return {k: self._params[k].copy() for k in ("W_x", "W_h")}

    def __repr__(self) -> str:
        extra = f", t_max={self.t_max}" if self._batch else ""
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"


@register_layer
class BNLSTMCell(_NormLSTM):
    """Batch-normalized LSTM (Cooijmans et al., ICLR 2017), per-step statistics.

    ``(i, f, g, o)_t = BN(W_h h_{t-1}; γ_h) + BN(W_x x_t; γ_x) + b``,
    ``c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)``,
    ``h_t = σ(o) ⊙ tanh(BN(c_t; γ_c, β_c))`` (gates in PyTorch's order
    ``i, f, g, o`` as :class:`~lowdisp.nn.LSTMCell`). ``BN(z; γ, β) = β + γ ⊙
    (z − μ_t)/√(σ²_t + ε)`` with the statistics of the batch **at step t**
    in training, and the running (population) statistics of step
    ``min(t, t_max − 1)`` in evaluation.

    Parameters
    ----------
    input_size, hidden_size : int
    t_max : int
        Steps with their own population statistics (>= 1): evaluation at
        ``t >= t_max`` reuses those of step ``t_max − 1`` (the paper's
        ``T_max``); training updates the running statistics of steps
        ``t < t_max`` only (each step still normalizes with its own batch
        statistics).
    gamma0 : float
        Initial γ of the three normalizations (0.1: a larger γ saturates
        the gates, the paper's Figure 1); β_c starts at 0.
    eps : float
        ε of the normalization (1e-5, the paper's code).
    momentum : float
        Weight of the batch in the running statistics' update (0.1); 0 keeps
        them fixed.
    forget_bias : float
        Initial forget-gate part of ``b`` (1.0, the paper's code).
    h0_noise : float
        Standard deviation of Gaussian noise added to ``h_0`` in training
        (0: none). Cooijmans et al. use 0.1 on sequential MNIST, whose
        leading pixels are constant: the per-step variance of ``W_h h`` is
        then 0 and the normalized gradients explode.
    dtype : {float32, float64}
    rng : seed or Generator, optional
        ``W_x``, ``W_h`` ``U[±1/√n]`` (as :class:`~lowdisp.nn.LSTMCell`).

    Notes
    -----
    Parameters ``W_x`` (4n, d), ``W_h`` (4n, n), ``b`` (4n), ``gamma_x``,
    ``gamma_h`` (4n), ``gamma_c``, ``beta_c`` (n); running statistics
    ``bn_x.running_mean``/``running_var`` (t_max, 4n), ``bn_h.*`` (t_max,
    4n), ``bn_c.*`` (t_max, n) are non-trainable entries of the same dict
    (:func:`is_buffer`): saved in checkpoints, never given a gradient.
    Forward and backward take ``train`` into account: in evaluation the
    normalizations are fixed affine maps.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import BNLSTMCell
    >>> cell = BNLSTMCell(3, 4, t_max=5, dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.random.default_rng(0).normal(size=(5, 8, 3)))
    >>> dX, grads = cell.backward_sequence(cache, np.ones_like(H))
    >>> sorted(grads)
    ['W_h', 'W_x', 'b', 'beta_c', 'gamma_c', 'gamma_h', 'gamma_x']
    >>> cell.params()["bn_h.running_var"].shape
    (5, 16)
    """

    _batch = True


@register_layer
class LNLSTMCell(_NormLSTM):
    """Layer-normalized LSTM (Ba et al. 2016): :class:`BNLSTMCell`'s places, normalized
    over the features of each example.

    ``(i, f, g, o)_t = LN(W_h h_{t-1}; γ_h) + LN(W_x x_t; γ_x) + b`` (each LN
    over the 4n pre-activations of one example), ``h_t = σ(o) ⊙
    tanh(LN(c_t; γ_c, β_c))``. Independent of the batch: the same
    computation in training and evaluation, no running statistics.

    Parameters
    ----------
    input_size, hidden_size : int
    gamma0 : float
        Initial gains (1.0, Ba et al.).
    eps, forget_bias, h0_noise, dtype, rng
        As :class:`BNLSTMCell`.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import LNLSTMCell
    >>> cell = LNLSTMCell(3, 4, dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.ones((5, 1, 3)))
    >>> H.shape
    (5, 1, 4)
    """

    _batch = False

    def __init__(self, input_size: int, hidden_size: int, *, gamma0: float = 1.0, **kw: Any):
        if "t_max" in kw or "momentum" in kw:
            bad = sorted({"t_max", "momentum"} & set(kw))
            raise TypeError(
                f"LNLSTMCell: {bad} apply to batch normalization (BNLSTMCell); layer "
                f"normalization keeps no running statistics"
            )
        super().__init__(input_size, hidden_size, gamma0=gamma0, **kw)


# ---------------------------------------------------------------------------
# Elman cells: BN of the input term (Laurent et al.), LN of the pre-activation (Ba et al.)
# ---------------------------------------------------------------------------

#: statistics of :class:`BNRNNCell`
BN_RNN_STATS = ("frame", "sequence")


@register_layer
class BNRNNCell(_Cell):
    """Tanh RNN with a batch-normalized input term (Laurent et al., ICASSP 2016).

    ``h_t = tanh(BN(W_x x_t; γ, β) + W_h h_{t-1})``: only the input-to-hidden
    term is normalized (Laurent et al. found normalizing the recurrent term
    did not help); ``β`` is the bias.

    Parameters
    ----------
    input_size, hidden_size : int
    stats : {"frame", "sequence"}
        ``"frame"``: statistics over the batch at each step (population
        statistics per step up to ``t_max``, then those of ``t_max − 1``);
        ``"sequence"``: over the batch and all steps together (one set of
        population statistics).
    t_max : int
        Steps with their own population statistics (``stats="frame"``).
    gamma0 : float
        Initial γ (1.0).
    eps, momentum : float
        As :class:`BNLSTMCell`.
    dtype : {float32, float64}
    rng : seed or Generator, optional
        ``W_x``, ``W_h`` ``U[±1/√n]`` (torch's ``nn.RNN`` default).

    Notes
    -----
    Parameters ``W_x`` (n, d), ``W_h`` (n, n), ``gamma``, ``beta`` (n); running
    statistics ``bn.running_mean``/``bn.running_var`` ((t_max, n) frame-wise,
    (1, n) sequence-wise). The normalization does not depend on ``h``, so it
    and its backward pass are time-parallel; the loop is the tanh cell's.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import BNRNNCell
    >>> cell = BNRNNCell(3, 4, stats="sequence", dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.random.default_rng(0).normal(size=(6, 5, 3)))
    >>> sorted(cell.backward_sequence(cache, np.ones_like(H))[1])
    ['W_h', 'W_x', 'beta', 'gamma']
    """

    takes_mode = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        stats: str = "frame",
        t_max: int = 100,
        gamma0: float = 1.0,
        eps: float = 1e-5,
        momentum: float = 0.1,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = "BNRNNCell"
        self.input_size, n, self.dtype, gen = _common(where, input_size, hidden_size, dtype, rng)
        self.hidden_size = self.state_size = n
        self.stats = check_option(stats, "stats", BN_RNN_STATS, where=where)
        self.t_max = check_int(t_max, "t_max", where=where, low=1)
        self.gamma0 = check_real(gamma0, "gamma0", where=where)
        self.eps = check_real(eps, "eps", where=where, low=0.0, low_open=True)
        self.momentum = check_real(momentum, "momentum", where=where, low=0.0, high=1.0)
        lim = 1.0 / np.sqrt(n)
        dt = self.dtype
        rows = self.t_max if self.stats == "frame" else 1
        self._params = {
            "W_x": gen.uniform(-lim, lim, (n, self.input_size)).astype(dt),
            "W_h": gen.uniform(-lim, lim, (n, n)).astype(dt),
            "gamma": np.full(n, self.gamma0, dtype=dt),
            "beta": np.zeros(n, dtype=dt),
            "bn.running_mean": np.zeros((rows, n), dtype=dt),
            "bn.running_var": np.ones((rows, n), dtype=dt),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "BNRNNCell",
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "stats": self.stats,
            "t_max": self.t_max,
            "gamma0": self.gamma0,
            "eps": self.eps,
            "momentum": self.momentum,
            "dtype": self.dtype.name,
        }

    def forward_sequence(self, x: Any, h0: Any = None, *, train: bool = True, rng: Any = None):
        """Run the whole sequence; see :meth:`BNLSTMCell.forward_sequence`."""
        train = _check_mode(self, train, "BNRNNCell.forward_sequence")
        x = self.validate(x)
        return self._forward_sequence(x, self._check_h0(h0, x), train=train, rng=rng)

    def _forward_sequence(self, x: np.ndarray, h0: Any, train: bool = True, rng: Any = None):
        p = self._params
        ZX = self._project(x, p["W_x"], None)
        T, B, n = ZX.shape
        axis = 1 if self.stats == "frame" else (0, 1)
        rm, rv = p["bn.running_mean"], p["bn.running_var"]
        if train:
            inv, mu, var = _normalize(ZX, axis, self.eps, ZX)
            if self.momentum:
                if self.stats == "frame":
                    k = min(T, self.t_max)
                    _update_running(rm[:k], rv[:k], mu[:k, 0], var[:k, 0], B, self.momentum)
                else:
                    _update_running(rm, rv, mu[0], var[0], T * B, self.momentum)
        else:
            if self.stats == "frame":
                idx = _step_index(T, self.t_max)
                m, v = rm[idx][:, None, :], rv[idx][:, None, :]
            else:
                m, v = rm[None], rv[None]
            inv = _fixed(ZX, m, v, self.eps, ZX)
        XH = ZX
        H = np.empty((T + 1, B, n), dtype=self.dtype)
        H[0] = 0 if h0 is None else h0
        np.multiply(XH, p["gamma"], out=H[1:])
        H[1:] += p["beta"]
        WT = np.ascontiguousarray(p["W_h"].T)
        tmp = np.empty((B, n), dtype=self.dtype)
        for t in range(T):
            h = H[t + 1]
            if t or h0 is not None:
                np.matmul(H[t], WT, out=tmp)
                np.add(h, tmp, out=h)
            np.tanh(h, out=h)
        return H[1:], (x, H, XH, inv, train, h0 is None)

    def backward_sequence(self, cache: Any, dH: Any, dh_last: Any = None):
        """BPTT; see :meth:`BNLSTMCell.backward_sequence`."""
        from lowdisp.kernels.rnn_modrelu import tanh_grad_step

        x, H, XH, inv, train, zero_h0 = cache
        p = self._params
        T, B, n = XH.shape
        dt = self.dtype
        W = p["W_h"]
        D = np.empty((T, B, n), dtype=dt)
        carry = np.zeros((B, n), dtype=dt)
        if dh_last is not None:
            carry += dh_last
        dbeta = np.zeros(n, dtype=dt)
        has_dh = dH is not None
        for t in range(T - 1, -1, -1):
            tanh_grad_step(dH[t] if has_dh else carry, has_dh, carry, H[t + 1], D[t], dbeta)
            if t:
                np.matmul(D[t], W, out=carry)
        s = 1 if zero_h0 else 0  # with h_0 = 0 the first step adds nothing to dW_h
        dW = D[s:].reshape(-1, n).T @ H[s:T].reshape(-1, n)
        D2 = D.reshape(T * B, n)
        dgamma = np.einsum("ij,ij->j", D2, XH.reshape(T * B, n))
        axis = 1 if self.stats == "frame" else (0, 1)
        np.multiply(D, p["gamma"], out=D)
        dZ = _unnormalize_grad(D, XH, inv, axis, train, out=D)
        dX, dWx = self._input_grads(x, dZ.reshape(T * B, n), p["W_x"])
        return dX, {"W_x": dWx, "W_h": dW, "gamma": dgamma, "beta": dbeta}

    def weight_matrices(self) -> dict[str, np.ndarray]:
        """``{"W_x", "W_h"}`` (copies): the weight matrices, not the running statistics
        (:func:`lowdisp.nn.weight_matrices`, snapshots)."""
        return {k: self._params[k].copy() for k in ("W_x", "W_h")}

    def __repr__(self) -> str:
        return f"BNRNNCell({self.input_size}, {self.hidden_size}, stats={self.stats!r})"


@register_layer
class LNRNNCell(_Cell):
    """Layer-normalized tanh RNN (Ba et al. 2016).

    ``a_t = W_h h_{t-1} + W_x x_t``, ``h_t = tanh(γ ⊙ (a_t − μ_t)/√(σ²_t + ε) + b)``
    with ``μ_t``, ``σ²_t`` over the ``n`` units of each example: the same in
    training and evaluation, no running statistics.

    Parameters
    ----------
    input_size, hidden_size : int
    gamma0 : float
        Initial gain (1.0).
    eps : float
        ε (1e-5).
    dtype : {float32, float64}
    rng : seed or Generator, optional

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import LNRNNCell
    >>> cell = LNRNNCell(3, 4, dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.ones((5, 2, 3)))
    >>> sorted(cell.backward_sequence(cache, np.ones_like(H))[1])
    ['W_h', 'W_x', 'b', 'gamma']
    """

    takes_mode = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        gamma0: float = 1.0,
        eps: float = 1e-5,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = "LNRNNCell"
        self.input_size, n, self.dtype, gen = _common(where, input_size, hidden_size, dtype, rng)
        self.hidden_size = self.state_size = n
        self.gamma0 = check_real(gamma0, "gamma0", where=where)
        self.eps = check_real(eps, "eps", where=where, low=0.0, low_open=True)
        lim = 1.0 / np.sqrt(n)
        dt = self.dtype
        self._params = {
            "W_x": gen.uniform(-lim, lim, (n, self.input_size)).astype(dt),
            "W_h": gen.uniform(-lim, lim, (n, n)).astype(dt),
            "gamma": np.full(n, self.gamma0, dtype=dt),
            "b": np.zeros(n, dtype=dt),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "LNRNNCell",
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "gamma0": self.gamma0,
            "eps": self.eps,
            "dtype": self.dtype.name,
        }

    def forward_sequence(self, x: Any, h0: Any = None, *, train: bool = True, rng: Any = None):
        """Run the whole sequence; ``train`` and ``rng`` have no effect (no batch statistics)."""
        _check_mode(self, train, "LNRNNCell.forward_sequence")
        x = self.validate(x)
        return self._forward_sequence(x, self._check_h0(h0, x))

    def _forward_sequence(self, x: np.ndarray, h0: Any, train: bool = True, rng: Any = None):
        p = self._params
        Z = self._project(x, p["W_x"], None)  # becomes a_t, then the normalized x̂_t
        T, B, n = Z.shape
        H = np.empty((T + 1, B, n), dtype=self.dtype)
        H[0] = 0 if h0 is None else h0
        INV = np.empty((T, B, 1), dtype=self.dtype)
        WT = np.ascontiguousarray(p["W_h"].T)
        g, b = p["gamma"], p["b"]
        tmp = np.empty((B, n), dtype=self.dtype)
        for t in range(T):
            z = Z[t]
            if t or h0 is not None:
                np.matmul(H[t], WT, out=tmp)
                np.add(z, tmp, out=z)
            INV[t] = _normalize(z, 1, self.eps, z)[0]
            h = H[t + 1]
            np.multiply(z, g, out=h)
            np.add(h, b, out=h)
            np.tanh(h, out=h)
        return H[1:], (x, H, Z, INV, h0 is None)

    def backward_sequence(self, cache: Any, dH: Any, dh_last: Any = None):
        """BPTT; see :meth:`BNLSTMCell.backward_sequence`."""
        from lowdisp.kernels.rnn_modrelu import tanh_grad_step

        x, H, XH, INV, zero_h0 = cache
        p = self._params
        T, B, n = XH.shape
        dt = self.dtype
        W, g = p["W_h"], p["gamma"]
        D = np.empty((T, B, n), dtype=dt)  # dL/d(normalized pre-activation), then dL/da
        carry = np.zeros((B, n), dtype=dt)
        if dh_last is not None:
            carry += dh_last
        db = np.zeros(n, dtype=dt)
        dgamma = np.zeros(n, dtype=dt)
        has_dh = dH is not None
        d = np.empty((B, n), dtype=dt)
        for t in range(T - 1, -1, -1):
            tanh_grad_step(dH[t] if has_dh else carry, has_dh, carry, H[t + 1], d, db)
            dgamma += np.einsum("ij,ij->j", d, XH[t])
            np.multiply(d, g, out=d)
            _unnormalize_grad(d, XH[t], INV[t], 1, True, out=D[t])
            if t:
                np.matmul(D[t], W, out=carry)
        s = 1 if zero_h0 else 0
        dW = D[s:].reshape(-1, n).T @ H[s:T].reshape(-1, n)
        dX, dWx = self._input_grads(x, D.reshape(T * B, n), p["W_x"])
        return dX, {"W_x": dWx, "W_h": dW, "gamma": dgamma, "b": db}

    def weight_matrices(self) -> dict[str, np.ndarray]:
        """``{"W_x", "W_h"}`` (copies): the weight matrices, not the running statistics
        (:func:`lowdisp.nn.weight_matrices`, snapshots)."""
        return {k: self._params[k].copy() for k in ("W_x", "W_h")}

    def __repr__(self) -> str:
        return f"LNRNNCell({self.input_size}, {self.hidden_size})"


#: ``make_cell`` names of the normalized cells -> (class, the options it takes)
NORMALIZED_CELLS: dict[str, tuple[type, tuple[str, ...]]] = {
    "bn_lstm": (
        BNLSTMCell,
        ("t_max", "gamma0", "eps", "momentum", "forget_bias", "h0_noise"),
    ),
    "ln_lstm": (LNLSTMCell, ("gamma0", "eps", "forget_bias", "h0_noise")),
    "bn_rnn": (BNRNNCell, ("stats", "t_max", "gamma0", "eps", "momentum")),
    "ln_rnn": (LNRNNCell, ("gamma0", "eps")),
}


def make_normalized_cell(
    name: str, input_size: int, hidden_size: int, *, dtype: Any, rng: Any, **options: Any
) -> Any:
    """The normalized cell ``name`` of :func:`lowdisp.nn.make_cell` (private helper).

    Examples
    --------
    >>> from lowdisp.nn import make_cell
    >>> make_cell("bn_lstm", 2, 8, t_max=64, rng=0)
    BNLSTMCell(2, 8, t_max=64)
    """
    cls, allowed = NORMALIZED_CELLS[name]
    unknown = set(options) - set(allowed)
    if unknown:
        raise TypeError(
            f"make_cell: unknown option(s) {sorted(unknown)} for cell {name!r}; "
            f"valid: {', '.join(sorted(allowed))}"
        )
    return cls(input_size, hidden_size, dtype=dtype, rng=rng, **options)


# make_cell builds these by name (a registry in _rnn: it never imports this module)
_REGISTERED_CELLS.update(dict.fromkeys(NORMALIZED_CELLS, make_normalized_cell))
