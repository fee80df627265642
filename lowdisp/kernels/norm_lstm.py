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

from lowdisp.kernels.rnn_lstm import lstm_gate_step

__all__ = [
    "bn_lstm_backward_step",
    "lstm_c_norm",
    "norm_gates",
    "norm_lstm_backward_step",
]


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
def norm_gates(
    zx,
    zh,
    xhx,
    xhh,
    g_x,
    b,
    g_h,
    no_beta,
    eps,
    batch,
    stats,
    rmx,
    rvx,
    rmh,
    rvh,
    inv_x,
    inv_h,
    mu_x,
    mu,
    var,
    a,
    m,
    ux_m,
    ux_v,
    uh_m,
    uh_v,
):  # pragma: no cover - jitted
    """The gate pre-activations of one step from its two terms, in one call.

    ``zx = W_x x_t`` and ``zh = W_h h_{t−1}`` are normalized into ``xhx`` and ``xhh``
    (not in place: an output that overlaps its input defeats LLVM's runtime alias
    check, and the loop runs scalar); ``a = γ_x ⊙ x̂_x + b + γ_h ⊙ x̂_h``. The caller
    passes ``γ_x``, ``b``, ``γ_h`` with their ``i, f, o`` entries halved, so ``a``
    holds the halved sigmoid arguments (exactly half: scaling by 2 commutes with
    rounding) for the one tanh that follows (``σ(z) = (tanh(z/2) + 1)/2``).
    ``rmx``/``rvx``, ``rmh``/``rvh``: the population statistics (``stats=False``);
    ``ux_*``, ``uh_*``: the running statistics, updated when ``m > 0`` as
    ``r ← (1 − m) r + m μ`` and ``r ← (1 − m) r + m B/(B − 1) σ²``; ``mu_x``: the
    mean the input term was normalized with (kept to form ``x̂_x`` again in BPTT);
    ``mu``, ``var``: scratch."""
    _norm_core(
        zx, g_x, b, eps, batch, stats, rmx, rvx, xhx, inv_x, mu_x, var, a, False, m, ux_m, ux_v
    )
    _norm_core(
        zh, g_h, no_beta, eps, batch, stats, rmh, rvh, xhh, inv_h, mu, var, a, True, m, uh_m, uh_v
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
    """The gates and ``c_next = σ(f) c_prev + σ(i) tanh(g)`` in one pass from ``a`` =
    ``tanh`` of the pre-activations, the ``i, f, o`` ones halved
    (:func:`lowdisp.kernels.rnn_lstm.lstm_gate_step`; columns ``i, f, g, o``), then
    ``out = γ ⊙ norm(c_next) + β`` (the argument of the output tanh)."""
    lstm_gate_step(a, c_prev, c_next)
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


@njit(cache=True, nogil=True, error_model="numpy")
def bn_lstm_backward_step(
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
    w,
):  # pragma: no cover - jitted
    """:func:`norm_lstm_backward_step` for batch normalization (``batch=True``), fused.

    The statistics' derivative of a BN term ``γ x̂`` needs the column means of
    ``δ`` and ``δ x̂``, which are the step's contributions to ``∂L/∂b`` (or
    ``∂L/∂β``) and ``∂L/∂γ``: one pass over ``δ`` gives both, a second writes
    ``dz = γ inv (δ − mean(δ) − x̂ mean(δ x̂))`` (two passes over ``(B, 4n)``
    instead of five). Every inner loop touches few arrays, so LLVM vectorizes it
    (its runtime alias checks stay under their limit). ``w``: ``(5, 4n)`` scratch.
    """
    B, n = c_prev.shape
    M = 4 * n
    one = a.dtype.type(1.0)
    inv_b = one / B if stats else a.dtype.type(0.0)
    sv = w[0, :n]
    svx = w[1, :n]
    kc = w[2, :n]
    for j in range(n):
        sv[j] = 0.0
        svx[j] = 0.0
        kc[j] = g_c[j] * inv_c[j]
    # the output gate and v = ∂L/∂(γ_c ĉ + β_c) (in u), with their column sums
    for i in range(B):
        ai = a[i]
        di = d[i]
        ui = u[i]
        ti = tc[i]
        chi = ch[i]
        if has_dh:
            dhi = dh_t[i]
            for j in range(n):
                ui[j] = chi[j] + dhi[j]
        else:
            for j in range(n):
                ui[j] = chi[j]
        for j in range(n):
            o = ai[3 * n + j]
            di[3 * n + j] = ui[j] * ti[j] * o * (one - o)
        for j in range(n):
            t = ti[j]
            ui[j] = ui[j] * ai[3 * n + j] * (one - t * t)
        for j in range(n):
            sv[j] += ui[j]
        xi = xhc[i]
        for j in range(n):
            svx[j] += ui[j] * xi[j]
    for j in range(n):
        db_c[j] += sv[j]
        dg_c[j] += svx[j]
        sv[j] *= inv_b
        svx[j] *= inv_b
    # dc = ∂L/∂c_t (in u), the i, f, g gates and the carry ∂L/∂c_{t-1}
    for i in range(B):
        ai = a[i]
        di = d[i]
        ui = u[i]
        xi = xhc[i]
        ci = cc[i]
        for j in range(n):
            ui[j] = kc[j] * (ui[j] - sv[j] - xi[j] * svx[j]) + ci[j]
        for j in range(n):
            ig = ai[j]
            di[j] = ui[j] * ai[2 * n + j] * ig * (one - ig)
        cpi = c_prev[i]
        for j in range(n):
            f = ai[n + j]
            di[n + j] = ui[j] * cpi[j] * f * (one - f)
        for j in range(n):
            g = ai[2 * n + j]
            di[2 * n + j] = ui[j] * ai[j] * (one - g * g)
        for j in range(n):
            ci[j] = ui[j] * ai[n + j]
    # the two BN terms of the gates: column sums of δ, δ x̂_h, δ x̂_x, then dz
    sd = w[0]
    sh = w[1]
    sx = w[2]
    kh = w[3]
    kx = w[4]
    for j in range(M):
        sd[j] = 0.0
        sh[j] = 0.0
        sx[j] = 0.0
    for i in range(B):
        di = d[i]
        for j in range(M):
            sd[j] += di[j]
        hi = xhh[i]
        for j in range(M):
            sh[j] += di[j] * hi[j]
        xi = xhx[i]
        for j in range(M):
            sx[j] += di[j] * xi[j]
    for j in range(M):
        db[j] += sd[j]
        dg_h[j] += sh[j]
        dg_x[j] += sx[j]
        kh[j] = g_h[j] * inv_h[j]
        kx[j] = g_x[j] * inv_x[j]
        sd[j] *= inv_b
        sh[j] *= inv_b
        sx[j] *= inv_b
    for i in range(B):
        di = d[i]
        hi = xhh[i]
        zhi = dzh[i]
        for j in range(M):
            zhi[j] = kh[j] * (di[j] - sd[j] - hi[j] * sh[j])
        xi = xhx[i]
        zxi = dzx[i]
        for j in range(M):
            zxi[j] = kx[j] * (di[j] - sd[j] - xi[j] * sx[j])
