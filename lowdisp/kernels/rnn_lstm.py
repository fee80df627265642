"""Numba kernel for one time step of the LSTM's BPTT (private).

The gate derivatives are polynomials in the stored activations (no
transcendental function), so one fused pass replaces the ~20 NumPy ufunc
calls per step of the element-wise part; the carry GEMM stays in BLAS.
Gate order ``i, f, g, o`` (PyTorch's); arrays in, preallocated outputs, no
validation. ``error_model="numpy"`` as in :mod:`lowdisp.kernels.rnn_modrelu`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "lstm_bptt_block",
    "lstm_gate_step",
    "lstm_grad_step",
    "lstm_out_step",
    "lstm_sigmoid_post",
    "lstm_sigmoid_pre",
]


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_gate_step(a, c_prev, c):  # pragma: no cover - jitted
    """The forward step's element-wise part between the two SIMD ``tanh`` calls.

    ``a`` (B, 4n) holds ``tanh`` of the gate pre-activations, the ``i, f, o`` ones
    halved, so ``σ(z) = (tanh(z/2) + 1)/2``: those columns are mapped in place to
    the gates ``i, f, o``; then ``c = f c_prev + i g`` (``c`` (B, n)). One pass
    replaces 7 NumPy calls on strided column slices.
    """
    B, n = c.shape
    half = c.dtype.type(0.5)
    for r in range(B):
        # separate unit-stride loops over one row: LLVM vectorizes them (the single
        # loop writing three gate slices of the same row was 1.9x slower in float32)
        ar, cr, cpr = a[r], c[r], c_prev[r]
        for j in range(2 * n):
            ar[j] = ar[j] * half + half
        for j in range(3 * n, 4 * n):
            ar[j] = ar[j] * half + half
        for j in range(n):
            cr[j] = ar[n + j] * cpr[j] + ar[j] * ar[2 * n + j]


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_sigmoid_pre(a):  # pragma: no cover - jitted
    """Halve the ``i, f, o`` columns of the pre-activations ``a`` (B, 4n) in place.

    With :func:`lstm_sigmoid_post` after one ``np.tanh`` over all of ``a``, the gates
    are ``σ(z) = (tanh(z/2) + 1)/2`` and ``g = tanh(z)``: for cells whose
    pre-activations cannot be halved in the weights (normalized ones). 4x faster
    than scipy's ``expit`` on the two sigmoid slices in float32, 2.6x in float64.
    """
    B, n4 = a.shape
    n = n4 // 4
    half = a.dtype.type(0.5)
    for r in range(B):
        ar = a[r]
        for j in range(2 * n):
            ar[j] = ar[j] * half
        for j in range(3 * n, 4 * n):
            ar[j] = ar[j] * half


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_sigmoid_post(a):  # pragma: no cover - jitted
    """``(t + 1)/2`` on the ``i, f, o`` columns of ``a`` (B, 4n) (in place), ``t`` being
    ``tanh`` of the halved pre-activations (see :func:`lstm_sigmoid_pre`)."""
    B, n4 = a.shape
    n = n4 // 4
    half = a.dtype.type(0.5)
    for r in range(B):
        ar = a[r]
        for j in range(2 * n):
            ar[j] = ar[j] * half + half
        for j in range(3 * n, 4 * n):
            ar[j] = ar[j] * half + half


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_out_step(a, tc, h):  # pragma: no cover - jitted
    """``h = o ⊙ tanh(c)``: ``o`` the last n columns of ``a`` (B, 4n), ``tc`` (B, n).

    (2x faster than ``np.multiply`` on the strided column slice.)
    """
    B, n = h.shape
    for r in range(B):
        ar, tr, hr = a[r], tc[r], h[r]
        for j in range(n):
            hr[j] = ar[3 * n + j] * tr[j]


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_grad_step(dh, has_dh, ch, cc, a, tc, c_prev, d, db):  # pragma: no cover - jitted
    """One step back through ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``.

    ``dh`` (B, n): ∂L/∂h_t from the output (used if ``has_dh``); ``ch`` (B, n): the
    carry ``δ_{t+1} W_h``; ``cc`` (B, n): ∂L/∂c_t from step t+1, replaced by
    ∂L/∂c_{t-1}; ``a`` (B, 4n) the activated gates; ``tc`` = tanh(c_t);
    ``c_prev`` = c_{t-1}; ``d`` (B, 4n) receives the pre-activation gradients,
    whose sum over the batch is added to ``db`` (4n) (the bias gradient, no
    separate pass over the stacked ``d``).
    """
    B, n = tc.shape
    one = tc.dtype.type(1.0)
    for r in range(B):
        # row views: unit-stride inner loops LLVM vectorizes (2x faster than a[r, k n + j])
        ar, dr, chr_, ccr, tcr, cpr, dhr = a[r], d[r], ch[r], cc[r], tc[r], c_prev[r], dh[r]
        ai, af, ag, ao = ar[:n], ar[n : 2 * n], ar[2 * n : 3 * n], ar[3 * n :]
        di, df, dg, do = dr[:n], dr[n : 2 * n], dr[2 * n : 3 * n], dr[3 * n :]
        for j in range(n):
            g_h = chr_[j] + dhr[j] if has_dh else chr_[j]
            i = ai[j]
            f = af[j]
            g = ag[j]
            o = ao[j]
            t = tcr[j]
            do[j] = g_h * t * o * (one - o)
            dc = ccr[j] + g_h * o * (one - t * t)
            di[j] = dc * g * i * (one - i)
            df[j] = dc * cpr[j] * f * (one - f)
            dg[j] = dc * i * (one - g * g)
            ccr[j] = dc * f
        for k in range(4 * n):
            db[k] += dr[k]


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_bptt_block(  # pragma: no cover - jitted
    dh, has_dh, ch, cc, a, tc, c_prev, w_h, d, db, nrows, first
):
    """A block of c steps of the LSTM's BPTT, last step first, in one call.

    ``dh``, ``tc``, ``c_prev`` (c, B, n) and ``a``, ``d`` (c, B, 4n) hold the steps'
    arguments of :func:`lstm_grad_step` (called per step), then the carry
    ``ch = d_k W_h`` (BLAS through ``np.dot``) in row chunks of ``nrows`` (below
    OpenBLAS's small-matrix bound: at batch 64, n = 128, 8-row chunks run 1.2x faster
    than one product), skipped after the block's first step when ``first`` (∂L/∂h_0
    is not needed). No Python per time step.
    """
    c, B = d.shape[:2]
    for k in range(c - 1, -1, -1):
        dk = d[k]
        lstm_grad_step(dh[k], has_dh, ch, cc, a[k], tc[k], c_prev[k], dk, db)
        if k > 0 or not first:
            for lo in range(0, B, nrows):
                hi = min(lo + nrows, B)
                np.dot(dk[lo:hi], w_h, ch[lo:hi])
