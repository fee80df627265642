"""Numba kernels for one time step of the normalized LSTMs and of their BPTT (private).

Used by :mod:`lowdisp.nn._normalized` (BN-LSTM, LN-LSTM). The recurrent GEMM
stays in BLAS and the gates' sigmoid/tanh stay NumPy ufuncs (Numba's scalar
transcendental functions are slower than NumPy's vectorized ones); these
kernels fuse what is left: the normalization statistics, the normalized
values, the affine map and the cell update in the forward pass, and the whole
backward step but the GEMM (the derivative of the statistics included).

Normalization groups: ``batch=True`` normalizes each column over the rows
(batch normalization: ``inv``, ``mu``, ``var`` have one entry per column);
``batch=False`` each row over its columns (layer normalization: one entry per
row). ``stats=False`` uses the given ``rmean``/``rvar`` (population statistics
of BN in evaluation) instead of the group's own. Arrays in, preallocated
outputs, no validation; ``error_model="numpy"``, no ``fastmath``.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["lstm_c_norm", "norm_affine", "norm_lstm_backward_step"]


@njit(cache=True, nogil=True, error_model="numpy")
def _norm_core(
    z, gamma, beta, eps, batch, stats, rmean, rvar, xhat, inv, mu, var, out, accumulate, m, rm, rv
):  # pragma: no cover - jitted
    B, M = z.shape
    one = z.dtype.type(1.0)
    if batch:
        if stats:
            for j in range(M):
                mu[j] = 0.0
                var[j] = 0.0
            for i in range(B):
                for j in range(M):
                    mu[j] += z[i, j]
            for j in range(M):
                mu[j] /= B
            for i in range(B):
                for j in range(M):
                    d = z[i, j] - mu[j]
                    var[j] += d * d
            for j in range(M):
                var[j] /= B
                inv[j] = one / math.sqrt(var[j] + eps)
            if m > 0.0:  # the running statistics (unbiased variance)
                unbias = B / (B - 1) if B > 1 else 1.0
                for j in range(M):
                    rm[j] = (1.0 - m) * rm[j] + m * mu[j]
                    rv[j] = (1.0 - m) * rv[j] + (m * unbias) * var[j]
        else:
            for j in range(M):
                mu[j] = rmean[j]
                var[j] = rvar[j]
                inv[j] = one / math.sqrt(rvar[j] + eps)
        for i in range(B):
            for j in range(M):
                xh = (z[i, j] - mu[j]) * inv[j]
                xhat[i, j] = xh
                v = gamma[j] * xh + beta[j]
                if accumulate:
                    out[i, j] += v
                else:
                    out[i, j] = v
    else:
        for i in range(B):
            m = z.dtype.type(0.0)
            for j in range(M):
                m += z[i, j]
            m /= M
            s = z.dtype.type(0.0)
            for j in range(M):
                d = z[i, j] - m
                s += d * d
            s /= M
            mu[i] = m
            var[i] = s
            iv = one / math.sqrt(s + eps)
            inv[i] = iv
            for j in range(M):
                xh = (z[i, j] - m) * iv
                xhat[i, j] = xh
                v = gamma[j] * xh + beta[j]
                if accumulate:
                    out[i, j] += v
                else:
                    out[i, j] = v


@njit(cache=True, nogil=True, error_model="numpy")
def norm_affine(
    z, gamma, beta, eps, batch, stats, rmean, rvar, xhat, inv, mu, var, out, accumulate, m, rm, rv
):  # pragma: no cover - jitted
    """``xhat = (z − μ)·inv``; ``out (+)= γ ⊙ xhat + β`` (``+=`` when ``accumulate``).

    With batch statistics and ``m > 0`` also ``rm ← (1 − m) rm + m μ``,
    ``rv ← (1 − m) rv + m B/(B − 1) σ²`` (the running statistics)."""
    _norm_core(
        z,
        gamma,
        beta,
        eps,
        batch,
        stats,
        rmean,
        rvar,
        xhat,
        inv,
        mu,
        var,
        out,
        accumulate,
        m,
        rm,
        rv,
    )


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_c_norm(
    a,
    c_prev,
    c_next,
    gamma,
    beta,
    eps,
    batch,
    stats,
    rmean,
    rvar,
    xhat,
    inv,
    mu,
    var,
    out,
    m,
    rm,
    rv,
):  # pragma: no cover - jitted
    """``c_next = σ(f) c_prev + σ(i) tanh(g)`` from the gate activations ``a`` (columns
    ``i, f, g, o``), then ``out = γ ⊙ norm(c_next) + β`` (the argument of the output tanh)."""
    B, n = c_prev.shape
    for i in range(B):
        for j in range(n):
            c_next[i, j] = a[i, n + j] * c_prev[i, j] + a[i, j] * a[i, 2 * n + j]
    _norm_core(
        c_next,
        gamma,
        beta,
        eps,
        batch,
        stats,
        rmean,
        rvar,
        xhat,
        inv,
        mu,
        var,
        out,
        False,
        m,
        rm,
        rv,
    )


@njit(cache=True, nogil=True, error_model="numpy")
def _norm_back(g, xhat, inv, batch, stats, s1, s2):  # pragma: no cover - jitted
    """In place: ``g ← inv (g − mean(g) − xhat mean(g xhat))`` over each group
    (the statistics' derivative), or ``g ← inv g`` with fixed statistics."""
    B, M = g.shape
    if batch:
        if stats:
            for j in range(M):
                s1[j] = 0.0
                s2[j] = 0.0
            for i in range(B):
                for j in range(M):
                    s1[j] += g[i, j]
                    s2[j] += g[i, j] * xhat[i, j]
            for j in range(M):
                s1[j] /= B
                s2[j] /= B
            for i in range(B):
                for j in range(M):
                    g[i, j] = inv[j] * (g[i, j] - s1[j] - xhat[i, j] * s2[j])
        else:
            for i in range(B):
                for j in range(M):
                    g[i, j] *= inv[j]
    else:
        for i in range(B):
            m1 = g.dtype.type(0.0)
            m2 = g.dtype.type(0.0)
            for j in range(M):
                m1 += g[i, j]
                m2 += g[i, j] * xhat[i, j]
            m1 /= M
            m2 /= M
            iv = inv[i]
            for j in range(M):
                g[i, j] = iv * (g[i, j] - m1 - xhat[i, j] * m2)


@njit(cache=True, nogil=True, error_model="numpy")
def norm_lstm_backward_step(
    dh_t,
    has_dh,
    ch,
    a,
    tc,
    xhc,
    inv_c,
    g_c,
    c_prev,
    xhh,
    inv_h,
    g_h,
    xhx,
    inv_x,
    g_x,
    batch,
    stats,
    cc,
    d,
    dzh,
    dzx,
    db,
    dg_h,
    dg_x,
    dg_c,
    db_c,
    u,
    s1,
    s2,
):  # pragma: no cover - jitted
    """One BPTT step of the normalized LSTM but the GEMM ``ch = dzh W_h``.

    In: ``dh = ch (+ dh_t)``, the gate activations ``a``, ``tc = tanh(γ_c ĉ + β_c)``,
    the normalized ``xhc``, ``xhh``, ``xhx`` with their ``inv``, ``cc = ∂L/∂c_t``
    from the step after. Out: ``d = ∂L/∂(gate pre-activations)`` (scratch),
    ``dzh = ∂L/∂(W_h h_{t-1})``, ``dzx = ∂L/∂(W_x x_t)``, ``cc ← ∂L/∂c_{t-1}``;
    accumulates ``db``, ``dg_h``, ``dg_x`` (4n) and ``dg_c``, ``db_c`` (n).
    ``u``: (B, n) scratch; ``s1``, ``s2``: scratch of max(B, 4n).
    """
    B, n = c_prev.shape
    one = a.dtype.type(1.0)
    for i in range(B):
        for j in range(n):
            dh = ch[i, j]
            if has_dh:
                dh += dh_t[i, j]
            o = a[i, 3 * n + j]
            t = tc[i, j]
            d[i, 3 * n + j] = dh * t * o * (one - o)
            v = dh * o * (one - t * t)
            db_c[j] += v
            dg_c[j] += v * xhc[i, j]
            u[i, j] = v * g_c[j]
    _norm_back(u, xhc, inv_c, batch, stats, s1, s2)
    for i in range(B):
        for j in range(n):
            dc = u[i, j] + cc[i, j]
            ig = a[i, j]
            f = a[i, n + j]
            g = a[i, 2 * n + j]
            d[i, j] = dc * g * ig * (one - ig)
            d[i, n + j] = dc * c_prev[i, j] * f * (one - f)
            d[i, 2 * n + j] = dc * ig * (one - g * g)
            cc[i, j] = dc * f
    M = 4 * n
    for i in range(B):
        for j in range(M):
            v = d[i, j]
            db[j] += v
            dg_h[j] += v * xhh[i, j]
            dg_x[j] += v * xhx[i, j]
            dzh[i, j] = v * g_h[j]
            dzx[i, j] = v * g_x[j]
    _norm_back(dzh, xhh, inv_h, batch, stats, s1, s2)
    _norm_back(dzx, xhx, inv_x, batch, stats, s1, s2)
