"""Numba kernels for one time step of the modReLU recurrences and of BPTT (private).

The recurrent GEMM stays in BLAS (``numpy.matmul``); these kernels fuse the
element-wise work that follows it, which in NumPy takes 5-10 ufunc calls per
step. Real modReLU has no transcendental function (Numba's scalar ``tanh``
is slow, so tanh stays a NumPy ufunc). Rows are batch entries; complex states
are stored ``[Re h | Im h]`` (``n`` real then ``n`` imaginary columns).
Arrays in, preallocated outputs, no validation. ``error_model="numpy"`` lets
a division by zero give IEEE inf/nan (then masked) instead of a Python
exception check in the loop, so LLVM can vectorize; no ``fastmath``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "add_table_rows",
    "cmodrelu_backward_step",
    "cmodrelu_forward_step",
    "modrelu_grad_step",
    "modrelu_step",
    "rec_table_step",
    "relu_grad_step",
    "scatter_add_rows",
    "tanh_bptt_block",
    "tanh_grad_step",
]


@njit(cache=True, nogil=True, error_model="numpy")
def modrelu_step(z, tmp, b, h):  # pragma: no cover - jitted
    """``z += tmp``; ``h = copysign(max(|z| + b, 0), z)`` (b per column)."""
    B, N = z.shape
    zero = z.dtype.type(0.0)
    for i in range(B):
        for j in range(N):
            v = z[i, j] + tmp[i, j]
            z[i, j] = v
            a = abs(v) + b[j]
            if a < zero:
                a = zero
            h[i, j] = math.copysign(a, v)


@njit(cache=True, nogil=True, error_model="numpy")
def tanh_grad_step(dh, has_dh, carry, h, g, db):  # pragma: no cover - jitted
    """``g = (dh + carry) * (1 - h²)`` with ``h = tanh(z)`` of this step; ``db += Σ_rows g``."""
    B, N = g.shape
    one = g.dtype.type(1.0)
    for i in range(B):
        for j in range(N):
            v = carry[i, j]
            if has_dh:
                v += dh[i, j]
            hv = h[i, j]
            gv = v * (one - hv * hv)
            g[i, j] = gv
            db[j] += gv


@njit(cache=True, nogil=True, error_model="numpy")
def tanh_bptt_block(dh, has_dh, carry, h, W, g, db, nrows, first):  # pragma: no cover - jitted
    """A block of c steps of the dense tanh BPTT, last step first, in one call.

    ``dh``, ``h``, ``g`` are (c, B, N): ∂L/∂h of the steps (used if ``has_dh``), their
    ``h = tanh(z)`` and the δ written; per step :func:`tanh_grad_step` then the carry
    ``carry = δ W`` (BLAS through ``np.dot``) in row chunks of ``nrows`` (the cell's
    small-matrix chunks), skipped after the block's first step when ``first`` (the
    carry out of step 0, ∂L/∂h_0, is not needed). No Python per time step.
    """
    c, B = g.shape[:2]
    for k in range(c - 1, -1, -1):
        gk = g[k]
        tanh_grad_step(dh[k], has_dh, carry, h[k], gk, db)
        if k > 0 or not first:
            for lo in range(0, B, nrows):
                hi = min(lo + nrows, B)
                np.dot(gk[lo:hi], W, carry[lo:hi])


@njit(cache=True, nogil=True, error_model="numpy")
def relu_grad_step(dh, has_dh, carry, z, g, db):  # pragma: no cover - jitted
    """``g = (dh + carry) * [z > 0]``; ``db += Σ_rows g``."""
    B, N = g.shape
    zero = g.dtype.type(0.0)
    for i in range(B):
        for j in range(N):
            v = carry[i, j]
            if has_dh:
                v += dh[i, j]
            gv = v if z[i, j] > zero else zero
            g[i, j] = gv
            db[j] += gv


@njit(cache=True, nogil=True, error_model="numpy")
def modrelu_grad_step(dh, has_dh, carry, z, b, g, db):  # pragma: no cover - jitted
    """Real modReLU: ``g = (dh + carry) [|z| + b > 0]``; ``db += Σ_rows g sign(z)``."""
    B, N = g.shape
    zero = g.dtype.type(0.0)
    one = g.dtype.type(1.0)
    for i in range(B):
        for j in range(N):
            v = carry[i, j]
            if has_dh:
                v += dh[i, j]
            zv = z[i, j]
            if abs(zv) + b[j] > zero:
                g[i, j] = v
                db[j] += v * math.copysign(one, zv)
            else:
                g[i, j] = zero


@njit(cache=True, nogil=True, error_model="numpy")
def add_table_rows(a, table, ids):  # pragma: no cover - jitted
    """``a[r] += table[ids[r]]`` for every row ``r`` of ``a`` (B, m): a token input's
    projection (its row of ``Uᵀ + b``) added in place to a step's recurrent product
    while that step is in cache (the gather twin of :func:`scatter_add_rows`)."""
    B, m = a.shape
    for r in range(B):
        ar, tr = a[r], table[ids[r]]
        for j in range(m):
            ar[j] += tr[j]


@njit(cache=True, nogil=True, error_model="numpy")
def rec_table_step(hp, P, h, table, ids, nrows):  # pragma: no cover - jitted
    """``h = hp P + table[ids]`` (rows of ``h`` (B, N)): a step's recurrent product
    (BLAS through ``np.dot``, in row chunks of ``nrows``) and its token input's row of
    the table ``Uᵀ + b`` (:func:`add_table_rows`) in one call."""
    B = h.shape[0]
    for lo in range(0, B, nrows):
        hi = min(lo + nrows, B)
        np.dot(hp[lo:hi], P, h[lo:hi])
    add_table_rows(h, table, ids)


@njit(cache=True, nogil=True, error_model="numpy")
def scatter_add_rows(ids, D, out):  # pragma: no cover - jitted
    """``out[ids[i]] += D[i]`` for every row ``i`` (a one-hot transpose product)."""
    m, N = D.shape
    for i in range(m):
        k = ids[i]
        for j in range(N):
            out[k, j] += D[i, j]


@njit(cache=True, nogil=True, error_model="numpy")
def cmodrelu_forward_step(z, tmp, b, eps, s, P, R, h):  # pragma: no cover - jitted
    """Complex modReLU on ``[Re | Im]`` columns after ``z += tmp``.

    ``r = |z|``, ``s = max(r + b, 0) / (r + eps)``, ``h = z s``. Also stores
    what BPTT needs: ``R = [r + b > 0] / (r + eps)`` (so ``∂h/∂b = z R``) and
    ``P = s'(r) / r = [r + b > 0] (eps - b) / ((r + eps)² r)`` (0 at ``r = 0``).
    ``s, P, R`` are (B, n).
    """
    B, N = z.shape
    n = N // 2
    one = z.dtype.type(1.0)
    zero = z.dtype.type(0.0)
    e = z.dtype.type(eps)
    for i in range(B):
        for j in range(n):
            zr = z[i, j] + tmp[i, j]
            zi = z[i, j + n] + tmp[i, j + n]
            z[i, j] = zr
            z[i, j + n] = zi
            r = math.sqrt(zr * zr + zi * zi)
            a = r + b[j]
            inv = one / (r + e)
            act = a > zero
            sj = a * inv if act else zero
            rj = inv if act else zero
            s[i, j] = sj
            R[i, j] = rj
            pj = (e - b[j]) * rj * inv / r  # inf/nan at r = 0 (error_model="numpy"), masked
            P[i, j] = pj if r > zero else zero
            h[i, j] = zr * sj
            h[i, j + n] = zi * sj


@njit(cache=True, nogil=True, error_model="numpy")
def cmodrelu_backward_step(dh, has_dh, carry, z, s, P, q_out, dz):  # pragma: no cover - jitted
    """BPTT through complex modReLU for one step.

    ``g = dh + carry``; ``q = Re(conj(g) z)`` (stored in ``q_out`` for the bias
    gradient); ``dz = g s + z q P`` with ``P = s'(r)/r``.
    """
    B, N = z.shape
    n = N // 2
    for i in range(B):
        for j in range(n):
            gr = carry[i, j]
            gi = carry[i, j + n]
            if has_dh:
                gr += dh[i, j]
                gi += dh[i, j + n]
            zr = z[i, j]
            zi = z[i, j + n]
            q = gr * zr + gi * zi
            q_out[i, j] = q
            qp = q * P[i, j]
            sj = s[i, j]
            dz[i, j] = gr * sj + zr * qp
            dz[i, j + n] = gi * sj + zi * qp
