"""The one FFT helper module of :mod:`lowdisp.structured` (private; no validation).

Every fast family product is built from three transforms:

* :class:`Embed`: ``Z_c(v) x`` and ``Z_c(v)^T x`` (f-circulants with any corner
  ``c``) as a linear convolution / correlation by a padded FFT of length
  ``next_fast_len(2n - 1)``, folded by the corner. The fold carries two
  weights ``(a, b) = 2**-k (1, c)`` so that a corner near the overflow
  threshold is applied as ``2**-k Z_c`` with O(1) weights (the caller puts
  ``2**k`` back into its scalar).
* :class:`Cyclic`: the exact diagonalization of ``Z_1`` (real DFT) and
  ``Z_-1`` (real odd DFT) of length n, half the work of the padded path.
* :class:`Fft`: plain forward / inverse transforms along an axis, real or
  complex, and the spectrum of the index-reversed sequence (the Krylov
  divide-and-conquer of the subdiagonal family).

All transforms run with ``WORKERS`` threads (one: the benchmarks pin BLAS and
FFT threads and parallelize over independent work instead).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft

from lowdisp.structured._common import ldexp_scalar

__all__ = [
    "WORKERS",
    "Cyclic",
    "Embed",
    "Fft",
    "complex_dtype",
    "fast_cyclic_ok",
    "irfft_last",
    "make_transform",
    "rfft_last",
]

#: threads per scipy.fft call
WORKERS = 1


def complex_dtype(dtype: Any) -> np.dtype:
    """The complex dtype of the same precision.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fft import complex_dtype
    >>> complex_dtype(np.float32)
    dtype('complex64')
    """
    return np.result_type(dtype, np.complex64)


class Embed:
    """Linear convolution by a padded FFT of length ``L >= 2n - 1``, folded by weights.

    Rows are sequences: ``fwd_N`` / ``inv_N`` give ``(a L(v) + b U(v)) x`` where
    ``Z_c(v) = L(v) + c U(v)`` (lower triangle and wrapped part), i.e.
    ``2**-k Z_c(v)`` for ``(a, b) = 2**-k (1, c)``; ``fwd_T`` / ``inv_T`` give
    its transpose (a folded correlation).

    Parameters
    ----------
    n : int
    a, b : scalar
        Fold weights of the lower and the wrapped part (``a = 1, b = c`` is ``Z_c``).
    dtype : dtype
        Data dtype (real: rfft of length L, complex: fft).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fft import Embed
    >>> tr = Embed(3, 1.0, 2.0, np.float64)  # Z_2(v)
    >>> v, x = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 0.0, 0.0]])
    >>> np.round(tr.inv_N(tr.fwd_N(v) * tr.fwd_N(x)), 12)  # Z_2(v) e_0 = v
    array([[1., 2., 3.]])
    """

    def __init__(self, n: int, a: complex, b: complex, dtype: np.dtype) -> None:
        self.n, self.a, self.b = n, a, b
        self.complex = np.dtype(dtype).kind == "c"
        self.dtype = np.dtype(dtype)
        self.L = int(sfft.next_fast_len(max(2 * n - 1, 1), real=not self.complex))
        self.nb = self.L if self.complex else self.L // 2 + 1

    def _fft(self, buf: np.ndarray) -> np.ndarray:
        if self.complex:
            return sfft.fft(buf, axis=-1, overwrite_x=True, workers=WORKERS)
        return sfft.rfft(buf, axis=-1, workers=WORKERS)

    def _ifft(self, S: np.ndarray) -> np.ndarray:
        if self.complex:
            return sfft.ifft(S, axis=-1, overwrite_x=True, workers=WORKERS)
        return sfft.irfft(S, self.L, axis=-1, workers=WORKERS)

    def fwd_N(self, x: np.ndarray) -> np.ndarray:
        """Spectra of the rows of ``x`` (zero-padded to L)."""
        n = self.n
        buf = np.zeros((x.shape[0], self.L), self.dtype)
        buf[:, :n] = x
        return self._fft(buf)

    def fwd_T(self, x: np.ndarray) -> np.ndarray:
        """Spectra of the rows of ``x`` laid out for the folded correlation."""
        n = self.n
        buf = np.zeros((x.shape[0], self.L), self.dtype)
        if self.a == 1:
            buf[:, :n] = x
        else:
            np.multiply(x, self.a, out=buf[:, :n])
        if self.b != 0:
            np.multiply(x[:, : n - 1], self.b, out=buf[:, n : 2 * n - 1])
        return self._fft(buf)

    def inv_N(self, S: np.ndarray) -> np.ndarray:
        """The folded convolution ``a w[:n] + b w[n:2n-1]`` of the inverse transform w."""
        n = self.n
        w = self._ifft(S)
        u = w[:, :n].copy() if self.a == 1 else self.a * w[:, :n]
        if self.b != 0:
            u[:, : n - 1] += self.b * w[:, n : 2 * n - 1]
        return u

    def inv_T(self, S: np.ndarray) -> np.ndarray:
        """The first n entries of the inverse transform (the correlation)."""
        return np.ascontiguousarray(self._ifft(S)[:, : self.n])

    def rev(self, S: np.ndarray) -> np.ndarray:
        """Spectrum of the index-reversed sequence s_{-j} (conj for real data)."""
        if not self.complex:
            return np.conj(S)
        return np.roll(S[..., ::-1], 1, axis=-1)


class Cyclic:
    """Exact diagonalization of Z_c, c = +1 (real DFT) or c = -1 (real odd DFT), real data.

    The odd DFT ``O(x)_k = sum_j x_j exp(-i pi j (2k+1)/n)`` of a real ``x``
    satisfies ``O_{n-1-k} = conj(O_k)``; its even bins are the length-n/2
    complex FFT of ``(x[:n/2] - i x[n/2:]) * exp(-i pi j / n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fft import Cyclic
    >>> tr = Cyclic(4, 1.0, np.float64)  # Z_1(v): the circulant
    >>> v, x = np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([[0.0, 1.0, 0.0, 0.0]])
    >>> np.round(tr.inv_N(tr.fwd_N(v) * tr.fwd_N(x)), 12)  # Z_1(v) e_1
    array([[4., 1., 2., 3.]])
    """

    def __init__(self, n: int, c: float, dtype: np.dtype) -> None:
        self.n, self.c = n, c
        self.dtype = np.dtype(dtype)
        self.complex = False
        if c > 0:
            self.nb = n // 2 + 1
        else:
            h = n // 2
            self.nb = h
            tw = np.exp(-1j * np.pi * np.arange(h) / n).astype(complex_dtype(dtype))
            self.tw, self.ctw = tw, np.conj(tw)

    def fwd_N(self, x: np.ndarray) -> np.ndarray:
        if self.c > 0:
            return sfft.rfft(x, axis=-1, workers=WORKERS)
        h = self.n // 2
        z = np.empty((x.shape[0], h), complex_dtype(self.dtype))
        z.real = x[:, :h]
        np.negative(x[:, h:], out=z.imag)
        z *= self.tw
        return sfft.fft(z, axis=-1, overwrite_x=True, workers=WORKERS)

    fwd_T = fwd_N

    def inv_N(self, S: np.ndarray) -> np.ndarray:
        if self.c > 0:
            return sfft.irfft(S, self.n, axis=-1, workers=WORKERS)
        from lowdisp.kernels.ldr_toeplitz import odd_unpack

        z = sfft.ifft(S, axis=-1, overwrite_x=True, workers=WORKERS)
        u = np.empty((S.shape[0], self.n), self.dtype)
        odd_unpack(z, self.ctw, u)
        return u

    inv_T = inv_N

    def fwd_cols(self, X: np.ndarray, j0: int, cb: int) -> np.ndarray:
        """``fwd_N(X[:, j0:j0 + cb].T)`` read straight from the columns of a C-ordered ``X``
        (the odd DFT's packing fused with the transposition)."""
        from lowdisp.kernels.ldr_toeplitz import cols_to_rows, odd_pack_cols

        if self.c > 0:
            buf = np.empty((cb, self.n), self.dtype)
            cols_to_rows(X, j0, buf)
            return rfft_last(buf, self.n)
        z = np.empty((cb, self.n // 2), complex_dtype(self.dtype))
        odd_pack_cols(X, j0, self.tw, z)
        return sfft.fft(z, axis=-1, overwrite_x=True, workers=WORKERS)

    def inv_cols(self, S: np.ndarray, Y: np.ndarray, j0: int) -> None:
        """``Y[:, j0:j0 + cb] = inv_N(S).T`` for a C-ordered ``Y`` (the odd DFT's unpacking
        fused with the transposition)."""
        from lowdisp.kernels.ldr_toeplitz import odd_unpack_cols, rows_to_cols

        if self.c > 0:
            rows_to_cols(irfft_last(S, self.n), Y, j0)
            return
        z = sfft.ifft(S, axis=-1, overwrite_x=True, workers=WORKERS)
        odd_unpack_cols(z, self.ctw, Y, j0)

    def rev(self, S: np.ndarray) -> np.ndarray:
        return np.conj(S)


def fast_cyclic_ok(n: int) -> bool:
    """Whether the exact length-n :class:`Cyclic` transform applies (n even, n/2 smooth).

    Examples
    --------
    >>> from lowdisp.structured._fft import fast_cyclic_ok
    >>> fast_cyclic_ok(8), fast_cyclic_ok(7)
    (True, False)
    """
    return n >= 2 and n % 2 == 0 and int(sfft.next_fast_len(n // 2)) == n // 2


def make_transform(n: int, c: complex, dtype: np.dtype, cyclic: bool, k: int = 0) -> Any:
    """The transform of ``2**-k Z_c``: :class:`Cyclic` (c = +-1, k = 0) or :class:`Embed`.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fft import make_transform
    >>> type(make_transform(8, 1.0, np.float64, True)).__name__
    'Cyclic'
    """
    if cyclic:
        return Cyclic(n, float(np.real(c)), dtype)
    if k == 0:
        return Embed(n, 1.0, c, dtype)
    return Embed(n, float(np.ldexp(1.0, -k)), ldexp_scalar(c, -k), dtype)


class Fft:
    """rfft/irfft for real data, fft/ifft for complex, plus index reversal (along ``axis``).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fft import Fft
    >>> ft = Fft(False)
    >>> ft.inv(ft.fwd(np.array([1.0, 2.0, 3.0]), 4), 4)
    array([1., 2., 3., 0.])
    """

    def __init__(self, complex_: bool) -> None:
        self.c = complex_

    def fwd(self, x: np.ndarray, L: int | None = None, axis: int = 0) -> np.ndarray:
        if self.c:
            return sfft.fft(x, L, axis=axis, workers=WORKERS)
        return sfft.rfft(x, L, axis=axis, workers=WORKERS)

    def inv(self, S: np.ndarray, L: int, axis: int = 0) -> np.ndarray:
        if self.c:
            return sfft.ifft(S, L, axis=axis, workers=WORKERS)
        return sfft.irfft(S, L, axis=axis, workers=WORKERS)

    def rev(self, S: np.ndarray, axis: int = 0) -> np.ndarray:
        """Spectrum of s_{-j}: conj for real data, reversed index for complex."""
        if not self.c:
            return np.conj(S)
        return np.roll(np.flip(S, axis=axis), 1, axis=axis)


# Real transforms along the last axis with the least dispatch (the subdiagonal
# family makes hundreds of small batched transforms per product).


def _pocketfft() -> Any:
    """scipy's pocketfft binding, if its calling convention is the known one, else None.

    The subdiagonal family's divide and conquer makes ~120 small batched
    transforms per product (~300 per vjp); calling the binding directly saves
    the ~35 us of dispatch of each ``scipy.fft`` call (5% of a product at
    n = 4096, batch 64). Checked once against ``scipy.fft``; any change of the
    private binding falls back to ``scipy.fft``."""
    global _PP
    if _PP is None:
        _PP = False
        try:
            from scipy.fft._pocketfft import pypocketfft as pp

            x = np.arange(6.0).reshape(2, 3)
            ok = np.allclose(pp.r2c(x, (1,), True, 0, None, 1), sfft.rfft(x, axis=-1))
            S = sfft.rfft(x, 4, axis=-1)
            ok = ok and np.allclose(pp.c2r(S, (1,), 4, False, 2, None, 1), sfft.irfft(S, 4))
            _PP = pp if ok else False
        except Exception:  # any change of the private binding: plain scipy.fft
            _PP = False
    return _PP or None


_PP: Any = None


def rfft_last(x: np.ndarray, L: int) -> np.ndarray:
    """``scipy.fft.rfft(x, L, axis=-1)`` (real ``x``)."""
    pp = _pocketfft()
    if pp is None:
        return sfft.rfft(x, L, axis=-1, workers=WORKERS)
    if x.shape[-1] != L:
        y = np.zeros((*x.shape[:-1], L), x.dtype)
        w = min(L, x.shape[-1])
        y[..., :w] = x[..., :w]
        x = y
    return pp.r2c(x, (x.ndim - 1,), True, 0, None, WORKERS)


def irfft_last(S: np.ndarray, L: int) -> np.ndarray:
    """``scipy.fft.irfft(S, L, axis=-1)`` (``S`` holds the ``L // 2 + 1`` frequencies)."""
    pp = _pocketfft()
    if pp is None or S.shape[-1] != L // 2 + 1:
        return sfft.irfft(S, L, axis=-1, workers=WORKERS)
    return pp.c2r(S, (S.ndim - 1,), L, False, 2, None, WORKERS)
