"""σ_min(zI − T) of a triangular T at any scale, as mantissa and exponent (private).

The inverse-Lanczos engine (:func:`lowdisp.spectral._pseudo.sigma_min_points`)
works with θ = σ⁻² and clamps σ_min at 1e-150 of ‖T‖; a dense SVD of zI − T
only resolves σ_min to about eps·σ_max. Non-normal, nearly nilpotent matrices
(a Jordan block J_n scaled by c, sampled near |z| = 1) have
σ_min(zI − cJ) ≈ |z|^n / c^{n−1}, far below both. Here the inverse
X = (zI − T)⁻¹ is formed by back substitution with one power-of-two exponent
per column (LAPACK's ``xLATRS`` idea), so no entry overflows or underflows
on the way, and σ_min = 1/‖X‖₂ is returned as ``m · 2**k`` (``m`` in [0.5, 1), ``k`` an
integer): exact exponents, no rounding of a logarithm.
"""

from __future__ import annotations

import numpy as np

from lowdisp._validation import ldexp, max_abs, pow2_exponent, unit_scale

__all__ = ["sigma_min_pow2"]

#: bytes of the (points, n, n) complex block formed at once
_BLOCK_BYTES = 2**26
#: above this order, each point first tries LAPACK's triangular inverse
#: (``ztrtri``, BLAS-3) and falls back to the scaled substitution if it overflows
_DIRECT_ABOVE = 48


def sigma_min_pow2(T: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``σ_min(z_p I − T) = m_p · 2**k_p`` for each point (``m_p = 0`` where z_p is an eigenvalue).

    Parameters
    ----------
    T : (n, n) complex ndarray
        Upper triangular (a Schur factor; entries below the diagonal are ignored).
    z : (P,) array_like of complex

    Returns
    -------
    m : (P,) ndarray of float
        Mantissas in [0.5, 1) (0 for a singular zI − T).
    k : (P,) ndarray of int64
        Exponents.

    Notes
    -----
    Exact to rounding (backward-stable back substitution, as in inverse
        Lanczos) at any scale of T and z: σ_min may be 1e-1000 of ‖T‖.
    """
    T = np.asarray(T, dtype=np.complex128)
    z = np.asarray(z, dtype=np.complex128).ravel()
    n = T.shape[0]
    m = np.empty(z.size)
    k = np.zeros(z.size, dtype=np.int64)
    if z.size == 0:
        return m, k
    # T and z by a common power of two: max |t_ij| in [1, 2) (exact)
    Tu, t = unit_scale(np.triu(T))
    zu = ldexp(z, -t)
    chunk = max(1, _BLOCK_BYTES // (16 * n * n))
    for s in range(0, z.size, chunk):
        sl = slice(s, s + chunk)
        m[sl], k[sl] = _inv_norm_block(Tu, zu[sl])
    # σ_min = 2**t / (smax 2**E): frexp of 1/smax (smax is a representable norm)
    inv = np.zeros_like(m)
    ok = m > 0
    inv[ok] = 1.0 / m[ok]
    mant, de = np.frexp(inv)
    return mant, np.where(ok, de.astype(np.int64) - k + t, 0)


def _inv_norm_block(T: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``‖(z_p I − T)⁻¹‖₂ = smax_p · 2**E_p`` for a block of points (smax = 0 when singular)."""
    if T.shape[0] > _DIRECT_ABOVE:
        return _inv_norm_direct(T, z)
    return _inv_norm_block_scaled(T, z)


def _pow2(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two float factors whose product is 2**e exactly (|e| up to 2000)."""
    h = e // 2
    return np.ldexp(1.0, h), np.ldexp(1.0, e - h)


def _inv_norm_block_scaled(T: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``‖(z_p I − T)⁻¹‖₂ = smax_p · 2**E_p`` by scaled back substitution (T unit-scaled).

    Row i of X = (zI − T)⁻¹ is (e_i + T[i, i+1:] X[i+1:]) / (z − t_ii). Column
    j of X is stored as X[:, j] · 2**E[j]: a tiny pivot raises E (the rows
    below shrink, harmlessly underflowing: they are then below 2**-1000 of the
    new entry), a huge one makes the new row small, and a column whose
    largest entry passes 2**200 is brought back to [0.5, 1). Every stored
    number stays below 2**210, whatever the scale of σ_min; every rescaling
    is by an exact power of two.
    """
    n = T.shape[0]
    P = z.size
    X = np.zeros((P, n, n), dtype=np.complex128)
    E = np.zeros((P, n), dtype=np.int64)
    cmax = np.zeros((P, n))  # bound on the largest |entry| (max of |re|, |im|) per column
    d = z[:, None] - np.diagonal(T)[None, :]  # (P, n) pivots z − t_ii
    singular = (d == 0).any(axis=1)
    d = np.where(d == 0, 1.0, d)
    f = pow2_exponent(np.maximum(np.abs(d.real), np.abs(d.imag)))
    a, b = _pow2(-f)
    dn = d * a * b  # d 2**-f: |dn| in [0.5, 2)
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        for i in range(n - 1, -1, -1):
            # s_j = Σ_k T[i, k] X[k, j] over the rows already done, columns j >= i
            s = np.einsum("k,pkj->pj", T[i, i + 1 :], X[:, i + 1 :, i:])
            s[:, 0] = 1.0  # column i: e_i (exponent still 0, rows below still zero)
            y = s / dn[:, i : i + 1]  # row i = y · 2**(-f_i) · 2**E_j
            g = np.maximum(-f[:, i], 0)  # the new row dominates by 2**g: shift the columns
            if g.any():
                ga, gb = _pow2(-g)
                X[:, i + 1 :, i:] *= ga[:, None, None]
                X[:, i + 1 :, i:] *= gb[:, None, None]
                cmax[:, i:] *= ga[:, None]
                cmax[:, i:] *= gb[:, None]
                E[:, i:] += g[:, None]
            ra, rb = _pow2(np.minimum(-f[:, i], 0))  # a huge pivot makes the row small
            row = y * ra[:, None] * rb[:, None]
            X[:, i, i:] = row
            cmax[:, i:] = np.maximum(cmax[:, i:], np.maximum(np.abs(row.real), np.abs(row.imag)))
            big = cmax[:, i:] > 2.0**200
            if big.any():
                pp, jj = np.nonzero(big)
                k = pow2_exponent(cmax[:, i:][pp, jj])
                X[pp, i:, jj + i] = ldexp(X[pp, i:, jj + i], -k[:, None])
                E[pp, jj + i] += k
                cmax[pp, jj + i] = np.ldexp(cmax[pp, jj + i], -k)
        # one exponent per point: columns far below the largest are negligible
        Emax = E.max(axis=1)
        ea, eb = _pow2(np.maximum(E - Emax[:, None], -2000))
        X *= ea[:, None, :]
        X *= eb[:, None, :]
    smax = np.linalg.svd(X, compute_uv=False)[:, 0]
    smax[singular] = 0.0
    return smax, np.where(singular, 0, Emax)


def _inv_norm_direct(T: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_inv_norm_block`: LAPACK's ``ztrtri`` per point where it stays
    finite (BLAS-3), the scaled substitution for the others (all at once)."""
    from scipy.linalg import lapack

    n = T.shape[0]
    smax = np.zeros(z.size)
    E = np.zeros(z.size, dtype=np.int64)
    idx = np.arange(n)
    redo = []
    for p, zp in enumerate(z):
        A = -T.copy(order="F")
        A[idx, idx] += zp
        if not A[idx, idx].all():
            continue  # singular: smax = 0
        with np.errstate(all="ignore"):
            X, info = lapack.ztrtri(A, lower=0)
            ok = info == 0 and bool(np.isfinite(X).all()) and float(max_abs(X)) < 2.0**900
        if ok:
            smax[p] = float(np.linalg.svd(np.triu(X), compute_uv=False)[0])
        else:
            redo.append(p)
    if redo:
        smax[redo], E[redo] = _inv_norm_block_scaled(T, z[redo])
    return smax, E
