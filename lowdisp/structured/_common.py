"""Helpers shared by the structured modules (private; no validation inside).

Scalars and dtypes (:func:`py_scalar`), the real-matrix-on-complex-data split
of a vjp, tiles for the O(m n) families, the dense f-circulant, and the exact
power-of-two normalization of generators and operands (:func:`balance`,
:func:`norm_exponent`, :func:`scale_back`) with Pan's generator compression.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import ldexp, max_abs, pow2_exponent, safe_exponent


def py_scalar(x: Any) -> complex:
    """A Python scalar (so NumPy's promotion keeps float32 data float32)."""
    x = complex(x)
    return x if x.imag != 0 else x.real


def real_params_complex_data(vjp: Any, X: np.ndarray, dY: np.ndarray) -> dict[str, np.ndarray]:
    """vjp of a real matrix applied to complex data: the real and imaginary parts separately.

    ``L = Re sum(conj(dY) M X) = <Re dY, M Re X> + <Im dY, M Im X>``, so the
    (real) parameter gradients add up and ``dX = M^T dY`` takes both parts.
    """
    X, dY = np.asarray(X), np.asarray(dY)
    p = vjp(np.ascontiguousarray(X.real), np.ascontiguousarray(dY.real))
    q = vjp(np.ascontiguousarray(X.imag), np.ascontiguousarray(dY.imag))
    return {k: (p[k] + 1j * q[k]) if k == "X" else p[k] + q[k] for k in p}


def complex_data_only(params: Any, X: np.ndarray, dY: np.ndarray) -> bool:
    return not any(np.iscomplexobj(x) for x in params) and (
        np.iscomplexobj(X) or np.iscomplexobj(dY)
    )


def ldexp_scalar(c: complex, k: int) -> complex:
    """``c * 2**k`` exactly for a Python real or complex scalar (parts scaled separately).

    Examples
    --------
    >>> from lowdisp.structured._common import ldexp_scalar
    >>> ldexp_scalar(3.0, 2), ldexp_scalar(1.5e308j, -1)
    (12.0, 7.5e+307j)
    """
    if isinstance(c, complex):
        return complex(np.ldexp(c.real, k), np.ldexp(c.imag, k))
    return float(np.ldexp(c, k))


def prod_except(a: np.ndarray) -> np.ndarray:
    """prod_{p != l} a_p for every l, by prefix and suffix products (no division)."""
    n = a.shape[0]
    pre = np.ones(n, a.dtype)
    suf = np.ones(n, a.dtype)
    if n > 1:
        pre[1:] = np.cumprod(a[:-1])
        suf[:-1] = np.cumprod(a[::-1][:-1])[::-1]
    return pre * suf


_TILE_ROWS = 128
_TILE_COLS = 1024


def tiles(m: int, n: int) -> Any:
    for j0 in range(0, m, _TILE_ROWS):
        for k0 in range(0, n, _TILE_COLS):
            yield slice(j0, min(j0 + _TILE_ROWS, m)), slice(k0, min(k0 + _TILE_COLS, n))


def promote(dtype: np.dtype, *arrays: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(a, dtype=dtype) for a in arrays]


def fcirc_dense(v: np.ndarray, f: complex) -> np.ndarray:
    """The f-circulant ``Z_f(v)``: entries ``v_{i-j}`` (i >= j) and ``f v_{n+i-j}`` (i < j)."""
    n = v.shape[0]
    i, j = np.indices((n, n))
    out = v[(i - j) % n]
    return np.where(i >= j, out, f * out)


def norm_exponent(X: np.ndarray) -> int:
    """Power-of-two exponent that brings ``max|X|`` near 1, or 0 in the safe range.

    Dividing by ``2**e`` is exact, so the fast paths run on O(1) data
    (no overflow or underflow inside FFTs, Krylov recurrences or GEMMs) and
    the result is scaled back; moderate inputs are left untouched.
    """
    if X.size == 0:
        return 0
    m = float(max_abs(X))
    if m == 0.0 or not np.isfinite(m):
        return 0
    e = int(pow2_exponent(m))
    return e if abs(e) > safe_exponent(np.empty(0, X.dtype).real.dtype) // 2 else 0


def balance(G: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-column power-of-two exponents ``(a, b, S)`` with ``a + b = S`` for every column.

    ``M`` is a sum of terms bilinear in the column pairs ``(g_i, h_i)``, so
    ``g_i 2**-a_i`` and ``h_i 2**-b_i`` define ``2**-S M`` exactly. The columns
    are balanced: both factors of the largest term come near 1, a smaller
    term keeps its true relative size (a column of G at 1e300 next to one at
    1e-300, as in a product of scaled matrices, no longer underflows to 0).
    All zero in the safe range (moderate inputs are left bit-for-bit alone).
    """
    r = G.shape[1]
    zero = np.zeros(r, dtype=np.int64)
    if G.size == 0 or H.size == 0:
        return zero, zero, 0
    cg, ch = max_abs(G, axis=0), max_abs(H, axis=0)
    eg, eh = pow2_exponent(cg), pow2_exponent(ch)
    thr = safe_exponent(np.empty(0, G.dtype).real.dtype) // 2
    if max(int(np.abs(eg).max()), int(np.abs(eh).max())) <= thr:
        return zero, zero, 0
    live = (cg > 0) & (ch > 0)
    p = eg + eh
    S = int(p[live].max()) if live.any() else 0
    half = (p - S) // 2  # <= 0: the term's relative size, split between the factors
    a = eg - half
    # a zero column: the other factor still carries the gradient; bring it near 1
    a = np.where(live, a, np.where(cg > 0, eg, S - eh))
    return a.astype(np.int64), (S - a).astype(np.int64), S


#: inside the plans, overflow is not warned about: scale_back checks the result and
#: raises OverflowError when it is not representable for finite input
def overflow_checked() -> Any:
    return np.errstate(over="ignore", invalid="ignore")


def scale_back(Y: np.ndarray, e: Any, where: str, inputs: tuple = ()) -> np.ndarray:
    """``Y * 2**e``, exactly; a result that is not representable is an error.

    Raises ``OverflowError`` when the result has NaN/Inf although ``inputs``
    (the operands; the generators are finite by construction) are finite:
    the true result exceeds the range of its dtype (the scaling overflowed,
    or e.g. Vandermonde powers of large nodes did).
    """
    if np.all(np.asarray(e) == 0):
        out = Y
    else:
        with np.errstate(over="ignore", under="ignore"):
            out = ldexp(Y, e)
    if not np.isfinite(out).all() and all(np.isfinite(x).all() for x in inputs):
        raise OverflowError(
            f"{where}: the result is not representable in {Y.dtype} (entries beyond "
            f"{np.finfo(Y.dtype).max:.3g} for finite input); rescale the operands"
        )
    return out


def pow2(M: np.ndarray) -> int:
    """Exponent e with ``max|M| = f 2**e``, ``0.5 <= f < 1`` (0 for a zero or empty M)."""
    m = float(max_abs(M)) if M.size else 0.0
    return int(pow2_exponent(m)) if m > 0 and np.isfinite(m) else 0


def truncate(s: np.ndarray, rank: int | None, rtol: float) -> int:
    if rank is not None:
        return rank
    if s.size == 0 or s[0] == 0:
        return 1
    return max(1, int(np.count_nonzero(s > rtol * s[0])))


def discarded(s: np.ndarray, k: int) -> float:
    tot = float(np.linalg.norm(s))
    return float(np.linalg.norm(s[k:]) / tot) if tot > 0 else 0.0


def compress_generators(G: np.ndarray, H: np.ndarray, rtol: float, cap: int):
    """Pan's generator compression: QR of G and H, SVD of R_G R_H^T, truncate.

    G and H are normalized by powers of two first (exact), so generators near
    1e-300 or 1e300 neither overflow nor underflow in ``R_G R_H^T``.
    """
    eg, eh = pow2(G), pow2(H)
    Qg, Rg = np.linalg.qr(ldexp(G, -eg))
    Qh, Rh = np.linalg.qr(ldexp(H, -eh))
    U, s, Vh = np.linalg.svd(Rg @ Rh.T)
    k = min(truncate(s, None, rtol), cap)
    sq = np.sqrt(s[:k])
    e = eg + eh
    with np.errstate(over="ignore", under="ignore"):
        G1 = ldexp(Qg @ (U[:, :k] * sq), e // 2)
        H1 = ldexp(Qh @ (Vh[:k].T * sq), e - e // 2)
    return G1, H1, discarded(s, k)


def randn(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard normal entries (complex dtype: unit-variance complex normal), float64/complex128.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._common import randn
    >>> randn(np.random.default_rng(0), (2, 3), np.complex128).dtype
    dtype('complex128')
    """
    if np.dtype(dtype).kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return rng.standard_normal(shape)


def krylov_sum_dense(A: Any, Bp: Any, G: np.ndarray, H: np.ndarray, c: complex) -> np.ndarray:
    """``c sum_k (A^k G)(B'^k H)^T`` densely (``c sum_i K(A, g_i) K(B', h_i)^T``), O(r n^3).

    The reconstruction formula of the Krylov-sum families (subdiagonal,
    tridiagonal); ``A`` and ``Bp`` are displacement operators.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> from lowdisp.structured._common import krylov_sum_dense
    >>> Z = ld.Shift(3)
    >>> krylov_sum_dense(Z, Z, np.ones((3, 1)), np.eye(3, 1), 1.0)[:, 0]
    array([1., 1., 1.])
    """
    n = G.shape[0]
    Gs, Hs = [G], [H]
    for _ in range(n - 1):
        Gs.append(A._apply(Gs[-1]))
        Hs.append(Bp._apply(Hs[-1]))
    return c * (np.hstack(Gs) @ np.hstack(Hs).T)
