"""Fast array-level products for every LDR family (private; no validation inside).

This module is the engine behind :class:`lowdisp.structured.LDRMatrix`: plain
arrays in, plain arrays out, dtypes already promoted by the caller (float32
stays float32). Conventions (see the structured contract): ``X`` is ``(n, k)``,
``G`` is ``(m, r)``, ``H`` is ``(n, r)``, ``rmatmat(Y)`` is ``M^H Y`` and every
``vjp`` returns the gradient of the real loss ``L = Re sum(conj(dY) * (M X))``
(complex parameters: ``dL/dRe p + 1j dL/dIm p``).

Families and their costs (``b`` columns, rank ``r``):

* Toeplitz-like (Sylvester ``Z_e, Z_f``; Stein ``Z_e, Z_f^T``), Hankel-like,
  (skew-)circulant: :class:`ToeplitzPlan`, ``2r + 2`` real FFTs per column.
  For ``e = -f = +-1`` (the default ``Z_1, Z_-1`` pair) the transforms have
  length ``n`` (a real DFT and a real "odd" DFT done as a half-length complex
  FFT); otherwise length ``next_fast_len(2n - 1)`` with folding.
* LDR-SD (subdiagonal operators with corners): divide-and-conquer Krylov
  products, ``O((b + r) n log^2 n + b r n log n)``, stable (only products of
  actual subdiagonal entries are formed, never their quotients).
* LDR-TD (tridiagonal): Horner/Clenshaw recurrences, ``O(b r n^2)`` time,
  ``O(b r n)`` memory.
* Cauchy-like and Vandermonde-like: Numba loops, ``O(b r m n)`` time,
  ``O(m + n + r (m + n))`` memory; Vandermonde-like on roots of unity by FFT.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft
import scipy.linalg.blas as sla_blas

from lowdisp._validation import prod_pow2

__all__ = ["ToeplitzPlan"]

_WORKERS = 1


def _py(x: Any) -> complex:
    """A Python scalar (so NumPy's promotion keeps float32 data float32)."""
    x = complex(x)
    return x if x.imag != 0 else x.real


def _real_params_complex_data(vjp: Any, X: np.ndarray, dY: np.ndarray) -> dict[str, np.ndarray]:
    """vjp of a real matrix applied to complex data: the real and imaginary parts separately.

    ``L = Re sum(conj(dY) M X) = <Re dY, M Re X> + <Im dY, M Im X>``, so the
    (real) parameter gradients add up and ``dX = M^T dY`` takes both parts.
    """
    X, dY = np.asarray(X), np.asarray(dY)
    p = vjp(np.ascontiguousarray(X.real), np.ascontiguousarray(dY.real))
    q = vjp(np.ascontiguousarray(X.imag), np.ascontiguousarray(dY.imag))
    return {k: (p[k] + 1j * q[k]) if k == "X" else p[k] + q[k] for k in p}


def _complex_data_only(params: Any, X: np.ndarray, dY: np.ndarray) -> bool:
    return not any(np.iscomplexobj(x) for x in params) and (
        np.iscomplexobj(X) or np.iscomplexobj(dY)
    )


def _cdtype(dtype: np.dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def _block_size(k: int, n: int) -> int:
    """Columns per block: the length-n spectra in flight stay in L2 (~1 MB) while each
    FFT call still gets enough rows to amortize its overhead (about 4 us per call)."""
    return int(max(1, min(k, 32, max(4, (1 << 15) // max(n, 1)))))


# --------------------------------------------------------------------------
# transforms: one per stage kind. Each works on row blocks (cb, n) and gives
# spectra (cb, nb); "N" ops are Z_c(s) x, "T" ops are Z_c(s)^T x.
# --------------------------------------------------------------------------


class _Embed:
    """Linear convolution by a padded FFT of length L >= 2n - 1, folded by c."""

    def __init__(self, n: int, c: complex, dtype: np.dtype) -> None:
        self.n, self.c = n, c
        self.complex = np.dtype(dtype).kind == "c"
        self.dtype = np.dtype(dtype)
        self.L = int(sfft.next_fast_len(max(2 * n - 1, 1), real=not self.complex))
        self.nb = self.L if self.complex else self.L // 2 + 1

    def _fft(self, buf: np.ndarray) -> np.ndarray:
        if self.complex:
            return sfft.fft(buf, axis=-1, overwrite_x=True, workers=_WORKERS)
        return sfft.rfft(buf, axis=-1, workers=_WORKERS)

    def _ifft(self, S: np.ndarray) -> np.ndarray:
        if self.complex:
            return sfft.ifft(S, axis=-1, overwrite_x=True, workers=_WORKERS)
        return sfft.irfft(S, self.L, axis=-1, workers=_WORKERS)

    def fwd_N(self, x: np.ndarray) -> np.ndarray:
        n = self.n
        buf = np.zeros((x.shape[0], self.L), self.dtype)
        buf[:, :n] = x
        return self._fft(buf)

    def fwd_T(self, x: np.ndarray) -> np.ndarray:
        n = self.n
        buf = np.zeros((x.shape[0], self.L), self.dtype)
        buf[:, :n] = x
        if self.c != 0:
            np.multiply(x[:, : n - 1], self.c, out=buf[:, n : 2 * n - 1])
        return self._fft(buf)

    def inv_N(self, S: np.ndarray) -> np.ndarray:
        n = self.n
        w = self._ifft(S)
        u = w[:, :n].copy()
        if self.c != 0:
            u[:, : n - 1] += self.c * w[:, n : 2 * n - 1]
        return u

    def inv_T(self, S: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._ifft(S)[:, : self.n])

    def rev(self, S: np.ndarray) -> np.ndarray:
        """Spectrum of the index-reversed sequence s_{-j} (conj for real data)."""
        if not self.complex:
            return np.conj(S)
        return np.roll(S[..., ::-1], 1, axis=-1)


class _Cyclic:
    """Exact diagonalization of Z_c, c = +1 (real DFT) or c = -1 (real odd DFT), real data.

    The odd DFT ``O(x)_k = sum_j x_j exp(-i pi j (2k+1)/n)`` of a real ``x``
    satisfies ``O_{n-1-k} = conj(O_k)``; its even bins are the length-n/2
    complex FFT of ``(x[:n/2] - i x[n/2:]) * exp(-i pi j / n)``.
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
            tw = np.exp(-1j * np.pi * np.arange(h) / n).astype(_cdtype(dtype))
            self.tw, self.ctw = tw, np.conj(tw)

    def fwd_N(self, x: np.ndarray) -> np.ndarray:
        if self.c > 0:
            return sfft.rfft(x, axis=-1, workers=_WORKERS)
        h = self.n // 2
        z = np.empty((x.shape[0], h), _cdtype(self.dtype))
        z.real = x[:, :h]
        np.negative(x[:, h:], out=z.imag)
        z *= self.tw
        return sfft.fft(z, axis=-1, overwrite_x=True, workers=_WORKERS)

    fwd_T = fwd_N

    def inv_N(self, S: np.ndarray) -> np.ndarray:
        if self.c > 0:
            return sfft.irfft(S, self.n, axis=-1, workers=_WORKERS)
        from lowdisp.kernels.ldr_toeplitz import odd_unpack

        z = sfft.ifft(S, axis=-1, overwrite_x=True, workers=_WORKERS)
        u = np.empty((S.shape[0], self.n), self.dtype)
        odd_unpack(z, self.ctw, u)
        return u

    inv_T = inv_N

    def rev(self, S: np.ndarray) -> np.ndarray:
        return np.conj(S)


def _fast_cyclic_ok(n: int) -> bool:
    return n >= 2 and n % 2 == 0 and int(sfft.next_fast_len(n // 2)) == n // 2


def _make_transform(n: int, c: complex, dtype: np.dtype, cyclic: bool) -> Any:
    if cyclic:
        return _Cyclic(n, float(np.real(c)), dtype)
    return _Embed(n, c, dtype)


class _Stage:
    """One factor ``Z_c(s_i)`` (mode "N") or ``Z_c(s_i)^T`` (mode "T") for i < r."""

    def __init__(self, tr: Any, mode: str, S: np.ndarray) -> None:
        self.tr, self.mode = tr, mode
        spec = tr.fwd_N(np.ascontiguousarray(S.T))  # (r, nb)
        self.spec = spec if mode == "N" else tr.rev(spec)

    def fwd(self, x: np.ndarray) -> np.ndarray:
        return self.tr.fwd_N(x) if self.mode == "N" else self.tr.fwd_T(x)

    def inv(self, S: np.ndarray) -> np.ndarray:
        return self.tr.inv_N(S) if self.mode == "N" else self.tr.inv_T(S)


class ToeplitzPlan:
    """Toeplitz-like matrix ready for repeated fast products (generator spectra cached).

    ``kind="sylvester"``: ``Z_e M - M Z_f = G H^T``,
    ``M = (e - f)^{-1} sum_i Z_e(g_i) Z_f(J h_i)`` (needs ``e != f``).
    ``kind="stein"``: ``M - Z_e M Z_f^T = G H^T``,
    ``M = (1 - e f)^{-1} sum_i Z_e(g_i) Z_f(h_i)^T`` (``e = f = 0``: ``sum L(g_i) L(h_i)^T``).

    Parameters
    ----------
    G, H : (n, r) ndarray
        Generators (same dtype; float32, float64 or complex).
    e, f : scalar
        Corner values of the shift operators.
    kind : {"sylvester", "stein"}

    Notes
    -----
    Every factor ``Z_c(v)`` is an ``c``-circulant; ``Z_c(v) x`` is the linear
    convolution ``v * x`` folded as ``y = w[:n] + c w[n:2n-1]``, and its
    transpose a folded correlation. A product costs, per column, one forward
    transform of ``x``, ``r`` inverse and ``r`` forward transforms in the
    middle and one inverse at the end (``2r + 2``); the rank sum is taken in
    the frequency domain. When ``e = -f = +-1`` and ``n`` is even and smooth,
    the transforms are the exact real DFT and real odd DFT of length ``n``
    (half the work of the padded path). Columns are processed in blocks that
    stay in cache.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import ToeplitzPlan
    >>> rng = np.random.default_rng(0)
    >>> G, H = rng.standard_normal((8, 2)), rng.standard_normal((8, 2))
    >>> X = rng.standard_normal((8, 3))
    >>> plan = ToeplitzPlan(G, H, 1.0, -1.0, "sylvester")
    >>> plan.matmat(X).shape
    (8, 3)
    """

    def __init__(
        self,
        G: np.ndarray,
        H: np.ndarray,
        e: complex = 1.0,
        f: complex = -1.0,
        kind: str = "sylvester",
    ) -> None:
        G, H = np.asarray(G), np.asarray(H)
        dtype = np.result_type(G, H)
        e, f = _py(e), _py(f)
        if isinstance(e, complex) or isinstance(f, complex):
            dtype = np.result_type(dtype, np.complex64)
        self.dtype = np.dtype(dtype)
        self.n, self.r = G.shape
        self.kind, self.e, self.f = kind, e, f
        self.G, self.H = G.astype(dtype, copy=False), H.astype(dtype, copy=False)
        if kind == "sylvester":
            self.scale = 1.0 / (e - f)
        else:
            self.scale = 1.0 / (1.0 - e * f)
        self.c = self.scale  # the scalar in front of the rank sum
        n = self.n
        real = self.dtype.kind == "f"
        cyc = real and kind == "sylvester" and e == -f and abs(e) == 1.0 and _fast_cyclic_ok(n)
        self.cyclic = bool(cyc)
        self._tre = _make_transform(n, e, self.dtype, self.cyclic)
        self._trf = _make_transform(n, f, self.dtype, self.cyclic)
        self._stages: dict[str, tuple[_Stage, _Stage]] = {}

    # ---- stage pairs: M = scale * sum_i S2_i S1_i ----
    def _pair(self, which: str) -> tuple[_Stage, _Stage]:
        if which not in self._stages:
            G, H = self.G, self.H
            JH = H[::-1]
            if self.kind == "sylvester":
                if which == "fwd":  # Z_e(g) Z_f(Jh)
                    p = (_Stage(self._trf, "N", JH), _Stage(self._tre, "N", G))
                else:  # Z_f(Jh)^T Z_e(g)^T
                    p = (_Stage(self._tre, "T", G), _Stage(self._trf, "T", JH))
            else:
                if which == "fwd":  # Z_e(g) Z_f(h)^T
                    p = (_Stage(self._trf, "T", H), _Stage(self._tre, "N", G))
                else:  # Z_f(h) Z_e(g)^T
                    p = (_Stage(self._tre, "T", G), _Stage(self._trf, "N", H))
            p[1].spec *= self.scale  # the rank-sum scalar rides on the outer spectra
            self._stages[which] = p
        return self._stages[which]

    def _run(self, which: str, X: np.ndarray) -> np.ndarray:
        from lowdisp.kernels.ldr_toeplitz import spec_mac

        s1, s2 = self._pair(which)
        n, k = X.shape
        if self.r == 0:
            return np.zeros((n, k), self.dtype)
        Y = np.empty((n, k), self.dtype)
        cb = _block_size(k, n)
        P, Q = s1.spec, s2.spec
        for j0 in range(0, k, cb):
            xb = np.array(X[:, j0 : j0 + cb].T, order="C")  # own, writeable copy
            Xs = s1.fwd(xb)
            acc = np.zeros((xb.shape[0], s2.tr.nb), Xs.dtype)
            tmp = np.empty_like(Xs)
            for i in range(self.r):
                np.multiply(Xs, P[i], out=tmp)
                spec_mac(acc, s2.fwd(s1.inv(tmp)), Q[i])
            y = s2.inv(acc)
            Y[:, j0 : j0 + cb] = y.T
        return Y

    def _real_split(self, fn: Any, X: np.ndarray) -> np.ndarray:
        if self.dtype.kind == "f" and np.iscomplexobj(X):
            Xr = np.ascontiguousarray(X.real, dtype=self.dtype)
            Xi = np.ascontiguousarray(X.imag, dtype=self.dtype)
            return fn(Xr) + 1j * fn(Xi)
        return fn(np.asarray(X, dtype=self.dtype))

    def matmat(self, X: np.ndarray) -> np.ndarray:
        """``M @ X`` for ``X`` of shape ``(n, k)``."""
        return self._real_split(lambda Z: self._run("fwd", Z), X)

    def tmatmat(self, Y: np.ndarray) -> np.ndarray:
        """``M^T @ Y`` (plain transpose)."""
        return self._real_split(lambda Z: self._run("tr", Z), Y)

    def rmatmat(self, Y: np.ndarray) -> np.ndarray:
        """``M^H @ Y`` (conjugate transpose)."""
        if self.dtype.kind == "c":
            return np.conj(self.tmatmat(np.conj(Y)))
        return self.tmatmat(Y)

    def vjp(self, X: np.ndarray, dY: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients ``(dG, dH, dX)`` of ``L = Re sum(conj(dY) * (M X))``.

        Cost about twice a forward product: ``4r + 2`` transforms per column
        plus ``2r`` per call.
        """
        if self.dtype.kind == "c":
            dG, dH, dX = self._vjp_bilinear(
                np.asarray(X, self.dtype), np.conj(dY).astype(self.dtype)
            )
            return np.conj(dG), np.conj(dH), np.conj(dX)
        if np.iscomplexobj(X) or np.iscomplexobj(dY):
            # real M: L = <Re dY, M Re X> + <Im dY, M Im X>
            X, dY = np.asarray(X), np.asarray(dY)
            p = self._vjp_bilinear(*(np.ascontiguousarray(z.real, self.dtype) for z in (X, dY)))
            q = self._vjp_bilinear(*(np.ascontiguousarray(z.imag, self.dtype) for z in (X, dY)))
            return p[0] + q[0], p[1] + q[1], p[2] + 1j * q[2]
        return self._vjp_bilinear(np.asarray(X, self.dtype), np.asarray(dY, self.dtype))

    def _vjp_bilinear(
        self, X: np.ndarray, dY: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from lowdisp.kernels.ldr_toeplitz import spec_mac

        f1, f2 = self._pair("fwd")  # stage 1 acts on x, stage 2 makes y
        t1, t2 = self._pair("tr")  # t1 acts on dy, t2 makes dx
        n, k = X.shape
        r = self.r
        if r == 0:
            return np.zeros((n, 0), self.dtype), np.zeros((n, 0), self.dtype), np.zeros_like(X)
        dX = np.empty((n, k), self.dtype)
        accq = np.zeros((r, f2.tr.nb), f2.spec.dtype)  # d(stage-2 params)
        accp = np.zeros((r, f1.tr.nb), f1.spec.dtype)  # d(stage-1 params)
        cb = _block_size(k, n)
        for j0 in range(0, k, cb):
            xb = np.array(X[:, j0 : j0 + cb].T, order="C")  # own, writeable copy
            yb = np.array(dY[:, j0 : j0 + cb].T, order="C")
            Xs = f1.fwd(xb)  # forward stage-1 input spectra
            Ws = t1.fwd(yb)  # transpose stage-1 input spectra (shared with dq)
            rXs = f1.tr.rev(Xs)
            accx = np.zeros((xb.shape[0], t2.tr.nb), Xs.dtype)
            for i in range(r):
                Us = f2.fwd(f1.inv(Xs * f1.spec[i]))  # forward stage-2 input
                accq[i] += np.einsum("bq,bq->q", Ws, f2.tr.rev(Us))
                Vs = t2.fwd(t1.inv(Ws * t1.spec[i]))  # transpose stage-2 input
                if f1.mode == "N":
                    accp[i] += np.einsum("bq,bq->q", Vs, rXs)
                else:
                    accp[i] += np.einsum("bq,bq->q", Xs, f1.tr.rev(Vs))
                spec_mac(accx, Vs, t2.spec[i])
            dxb = t2.inv(accx)
            dX[:, j0 : j0 + cb] = dxb.T
        dq = f2.tr.inv_T(accq).T * self.scale
        if f1.mode == "N":
            dp = f1.tr.inv_T(accp).T * self.scale
        else:
            dp = f1.tr.inv_T(accp).T * self.scale
        if self.kind == "sylvester":
            dG, dH = dq, dp[::-1]
        else:
            dG, dH = dq, dp
        return (np.ascontiguousarray(dG, self.dtype), np.ascontiguousarray(dH, self.dtype), dX)


# --------------------------------------------------------------------------
# Cauchy-like: M_jk = sum_i G_ji H_ki / (s_j - t_k), built tile by tile
# --------------------------------------------------------------------------

_TILE_ROWS = 128
_TILE_COLS = 1024


def _tiles(m: int, n: int) -> Any:
    for j0 in range(0, m, _TILE_ROWS):
        for k0 in range(0, n, _TILE_COLS):
            yield slice(j0, min(j0 + _TILE_ROWS, m)), slice(k0, min(k0 + _TILE_COLS, n))


def _cauchy_tile(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, J: slice, K: slice
) -> tuple[np.ndarray, np.ndarray]:
    """(C, M) tiles: C = 1 / (s_j - t_k), M = (G H^T) * C on rows J, columns K."""
    C = np.subtract.outer(s[J], t[K])
    np.reciprocal(C, out=C)
    M = G[J] @ H[K].T
    M *= C
    return C, M


def _promote(dtype: np.dtype, *arrays: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(a, dtype=dtype) for a in arrays]


def cauchy_matmat(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray
) -> np.ndarray:
    """``M @ X`` for the Cauchy-like ``M_jk = sum_i G_ji H_ki / (s_j - t_k)``.

    ``O(m n (r + k))`` time (the tile entries, then one GEMM per tile), memory
    one ``128 x 1024`` tile: the ``m x n`` matrix never exists.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import cauchy_matmat
    >>> s, t = np.array([0.0, 1.0]), np.array([0.5, 2.0, 3.0])
    >>> G, H = np.ones((2, 1)), np.ones((3, 1))
    >>> cauchy_matmat(s, t, G, H, np.eye(3))[0]
    array([-2.    , -0.5   , -0.3333])
    """
    dtype = np.result_type(s, t, G, H, X)
    s, t, G, H, X = _promote(dtype, s, t, G, H, X)
    Y = np.zeros((G.shape[0], X.shape[1]), dtype)
    for J, K in _tiles(G.shape[0], H.shape[0]):
        Y[J] += _cauchy_tile(s, t, G, H, J, K)[1] @ X[K]
    return Y


def cauchy_rmatmat(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, Y: np.ndarray
) -> np.ndarray:
    """``M^H @ Y`` for the Cauchy-like matrix (same cost as :func:`cauchy_matmat`).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import cauchy_rmatmat
    >>> s, t = np.array([0.0, 1.0]), np.array([0.5, 2.0, 3.0])
    >>> cauchy_rmatmat(s, t, np.ones((2, 1)), np.ones((3, 1)), np.eye(2)).shape
    (3, 2)
    """
    dtype = np.result_type(s, t, G, H, Y)
    s, t, G, H, Y = _promote(dtype, s, t, G, H, Y)
    out = np.zeros((H.shape[0], Y.shape[1]), dtype)
    for J, K in _tiles(G.shape[0], H.shape[0]):
        out[K] += _cauchy_tile(s, t, G, H, J, K)[1].conj().T @ Y[J]
    return out


def cauchy_vjp(
    s: np.ndarray, t: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, s, t, X`` of ``L = Re sum(conj(dY) * (M X))`` for the Cauchy-like M.

    With ``W = dY X^H`` taken tile by tile: ``dG = (W * C) H``,
    ``dH = (W * C)^T G``, ``ds = -rowsum(W * M * C)``, ``dt = colsum(W * M * C)``
    (conjugated for complex data), ``dX = M^H dY``; ``O(m n (r + k))``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import cauchy_vjp
    >>> s, t = np.array([0.0, 1.0]), np.array([0.5, 2.0, 3.0])
    >>> g = cauchy_vjp(s, t, np.ones((2, 1)), np.ones((3, 1)), np.ones((3, 1)), np.ones((2, 1)))
    >>> sorted(g)
    ['G', 'H', 'X', 's', 't']
    """
    if _complex_data_only((s, t, G, H), X, dY):
        return _real_params_complex_data(lambda x, d: cauchy_vjp(s, t, G, H, x, d), X, dY)

    dtype = np.result_type(s, t, G, H, X, dY)
    s, t, G, H, X = _promote(dtype, s, t, G, H, X)
    dYc = np.conj(np.asarray(dY, dtype))  # bilinear form, conjugated at the end
    dG, dH = np.zeros_like(G), np.zeros_like(H)
    ds, dt = np.zeros_like(s), np.zeros_like(t)
    dX = np.zeros_like(X)
    for J, K in _tiles(G.shape[0], H.shape[0]):
        C, M = _cauchy_tile(s, t, G, H, J, K)
        dX[K] += M.T @ dYc[J]
        W = dYc[J] @ X[K].T
        W *= C
        dG[J] += W @ H[K]
        dH[K] += W.T @ G[J]
        W *= M
        ds[J] -= W.sum(axis=1)
        dt[K] += W.sum(axis=0)
    out = {"G": dG, "H": dH, "s": ds, "t": dt, "X": dX}
    if np.dtype(dtype).kind == "c":
        out = {k: np.conj(v) for k, v in out.items()}
    return out


# --------------------------------------------------------------------------
# Vandermonde-like: M = sum_i diag(g_i) V(v) L(h_i)^T, V_jk = v_j^k
# --------------------------------------------------------------------------


def _roots_of_unity(v: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(N, p) if every node is exp(2 pi i p_j / N) for N = len(v) (else None)."""
    N = v.shape[0]
    if N < 2 or v.dtype.kind != "c" or not np.allclose(np.abs(v), 1.0, rtol=0, atol=1e-13):
        return None
    q = np.angle(v) * (N / (2 * np.pi))
    p = np.rint(q)
    if np.max(np.abs(q - p)) > 1e-9:
        return None
    return N, (p.astype(np.int64) % N)


def _vander_apply(v: np.ndarray, U: np.ndarray, deriv: bool = False) -> np.ndarray:
    """``V(v) @ U`` (or ``V'(v) @ U`` with ``V'_jk = k v_j^(k-1)``), tile by tile, O(m n k)."""
    m, n = v.shape[0], U.shape[0]
    dtype = np.result_type(v, U)
    ru = _roots_of_unity(v)
    if ru is not None:
        N, p = ru
        Uw = U * np.arange(n)[:, None] if deriv else U
        if n > N:  # fold: v^k is N-periodic in k
            pad = (-n) % N
            Uw = np.concatenate([Uw, np.zeros((pad, Uw.shape[1]), Uw.dtype)])
            Uw = Uw.reshape(-1, N, Uw.shape[1]).sum(axis=0)
        full = sfft.ifft(Uw, n=N, axis=0, workers=_WORKERS) * N
        out = full[p]
        if deriv:
            out /= v[:, None]
        return out.astype(dtype, copy=False)
    out = np.zeros((m, U.shape[1]), dtype)
    v = v.astype(dtype, copy=False)
    last = np.zeros(m, dtype)  # v^(k0 - 1), carried across column tiles
    base = np.ones(m, dtype)  # v^k0
    for J, K in _tiles(m, n):
        w = K.stop - K.start
        T = np.empty((J.stop - J.start, w), dtype)
        T[:, 0] = base[J]
        if w > 1:
            T[:, 1:] = v[J, None]
            np.cumprod(T, axis=1, out=T)
        if deriv:
            D = np.empty_like(T)
            D[:, 0] = last[J]
            D[:, 1:] = T[:, :-1]
            D *= np.arange(K.start, K.stop)
            out[J] += D @ U[K]
        else:
            out[J] += T @ U[K]
        last[J] = T[:, -1]
        base[J] = T[:, -1] * v[J]
    return out


def _vander_tapply(v: np.ndarray, W: np.ndarray, n: int) -> np.ndarray:
    """``V(v)^T @ W`` (plain transpose), ``V`` of shape ``(m, n)``."""
    m = v.shape[0]
    dtype = np.result_type(v, W)
    ru = _roots_of_unity(v)
    if ru is not None:
        N, p = ru
        acc = np.zeros((N, W.shape[1]), dtype)
        np.add.at(acc, p, W)
        full = sfft.ifft(acc, axis=0, workers=_WORKERS) * N
        return full[np.arange(n) % N].astype(dtype, copy=False)
    out = np.zeros((n, W.shape[1]), dtype)
    v = v.astype(dtype, copy=False)
    base = np.ones(m, dtype)
    for J, K in _tiles(m, n):
        w = K.stop - K.start
        T = np.empty((J.stop - J.start, w), dtype)
        T[:, 0] = base[J]
        if w > 1:
            T[:, 1:] = v[J, None]
            np.cumprod(T, axis=1, out=T)
        out[K] += T.T @ W[J]
        base[J] = T[:, -1] * v[J]
    return out


class _LowerToeplitzT:
    """``L(h_i)^T X`` for all i (one transform of X) and the adjoint pieces."""

    def __init__(self, H: np.ndarray) -> None:
        self.n, self.r = H.shape
        self.tr = _Embed(self.n, 0.0, H.dtype)
        self.spec = self.tr.fwd_N(np.ascontiguousarray(H.T))  # (r, nb)
        self.rspec = self.tr.rev(self.spec)

    def apply_T(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """U with U[:, i*k:(i+1)*k] = L(h_i)^T X, and the spectra of X."""
        n, k = X.shape
        Xs = self.tr.fwd_T(np.ascontiguousarray(X.T))
        U = np.empty((n, self.r * k), np.result_type(X, self.spec.real))
        for i in range(self.r):
            U[:, i * k : (i + 1) * k] = self.tr.inv_T(Xs * self.rspec[i]).T
        return U, Xs

    def apply_N_sum(self, Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """sum_i L(h_i) Z[:, i*k:(i+1)*k], and the spectra of every block of Z."""
        Zs = self.tr.fwd_N(np.ascontiguousarray(Z.T))  # (r*k, nb)
        acc = np.zeros((k, self.tr.nb), Zs.dtype)
        for i in range(self.r):
            acc += Zs[i * k : (i + 1) * k] * self.spec[i]
        return np.ascontiguousarray(self.tr.inv_N(acc).T), Zs


def _vdm_bilinear(v, G, H, X):
    dtype = np.result_type(v, G, H, X)
    v, G, H, X = _promote(dtype, v, G, H, X)
    return dtype, v, G, H, X


def vandermonde_matmat(v: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``M @ X`` for ``M = sum_i diag(g_i) V(v) L(h_i)^T`` with ``V_jk = v_j^k`` (m x n).

    ``L(h_i)^T X`` by FFT, then ``V`` times the ``r k`` columns tile by tile
    (powers by repeated multiplication, never the ``m x n`` matrix):
    ``O(r k (m n + n log n))``. Nodes that are the ``m``-th roots of unity
    (in any order) use one FFT instead of ``V``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import vandermonde_matmat
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> G, H = np.ones((3, 1)), np.eye(3)[:, :1]  # M = V(v)
    >>> vandermonde_matmat(v, G, H, np.eye(3))
    array([[1., 1., 1.],
           [1., 2., 4.],
           [1., 3., 9.]])
    """
    dtype, v, G, H, X = _vdm_bilinear(v, G, H, X)
    k, r = X.shape[1], G.shape[1]
    U, _ = _LowerToeplitzT(H).apply_T(X)
    VU = _vander_apply(v, U)
    Y = np.zeros((G.shape[0], k), dtype)
    for i in range(r):
        Y += G[:, i, None] * VU[:, i * k : (i + 1) * k]
    return Y


def _vandermonde_tmatmat(v, G, H, Y):
    dtype, v, G, H, Y = _vdm_bilinear(v, G, H, Y)
    k, r, n = Y.shape[1], G.shape[1], H.shape[0]
    W = np.concatenate([G[:, i, None] * Y for i in range(r)], axis=1)
    return _LowerToeplitzT(H).apply_N_sum(_vander_tapply(v, W, n), k)[0].astype(dtype)


def vandermonde_rmatmat(v: np.ndarray, G: np.ndarray, H: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``M^H @ Y`` for the Vandermonde-like matrix (same cost as the product).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import vandermonde_rmatmat
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> vandermonde_rmatmat(v, np.ones((3, 1)), np.eye(3)[:, :1], np.eye(3))[2]
    array([1., 4., 9.])
    """
    if np.iscomplexobj(v) or np.iscomplexobj(G) or np.iscomplexobj(H):
        return _vandermonde_tmatmat(np.conj(v), np.conj(G), np.conj(H), Y)
    return _vandermonde_tmatmat(v, G, H, Y)


def vandermonde_vjp(
    v: np.ndarray, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, v, X`` of ``L = Re sum(conj(dY) * (M X))``, Vandermonde-like M.

    With ``U_i = L(h_i)^T X``, ``W_i = diag(g_i) dY``: ``dG_i = rowsum(dY * V U_i)``,
    ``dU_i = V^T W_i``, ``dX = sum_i L(h_i) dU_i``, ``dh_i`` the correlation of
    ``X`` with ``dU_i``, ``dv = rowsum(sum_i W_i * V' U_i)`` with
    ``V'_jk = k v_j^(k-1)`` (complex data: conjugated, the convention of
    :func:`lowdisp.testing.check_vjp`). Three passes over ``V``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import vandermonde_vjp
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> g = vandermonde_vjp(v, np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 2)), np.ones((3, 2)))
    >>> g["v"].shape, g["H"].shape
    ((3,), (3, 1))
    """
    if _complex_data_only((v, G, H), X, dY):
        return _real_params_complex_data(lambda x, d: vandermonde_vjp(v, G, H, x, d), X, dY)

    dtype, v, G, H, X = _vdm_bilinear(v, G, H, X)
    dYc = np.conj(np.asarray(dY, dtype))
    n, k = X.shape
    r = G.shape[1]
    lt = _LowerToeplitzT(H)
    U, Xs = lt.apply_T(X)
    VU = _vander_apply(v, U)
    dG = np.empty_like(G)
    for i in range(r):
        dG[:, i] = np.einsum("jb,jb->j", dYc, VU[:, i * k : (i + 1) * k])
    del VU
    W = np.concatenate([G[:, i, None] * dYc for i in range(r)], axis=1)
    dv = np.einsum("jc,jc->j", W, _vander_apply(v, U, deriv=True))
    dU = _vander_tapply(v, W, n)
    dX, dUs = lt.apply_N_sum(dU, k)
    dH = np.empty_like(H)
    for i in range(r):
        acc = np.einsum("bq,bq->q", Xs, lt.tr.rev(dUs[i * k : (i + 1) * k]))
        dH[:, i] = lt.tr.inv_T(acc[None])[0]
    out = {"G": dG, "H": dH, "v": dv, "X": dX.astype(dtype, copy=False)}
    if np.dtype(dtype).kind == "c":
        out = {key: np.conj(val) for key, val in out.items()}
    return out


# --------------------------------------------------------------------------
# LDR-SD: divide-and-conquer Krylov products for a subdiagonal operator A
# (entries a_0..a_{n-2}, corner fa at (0, n-1)). The weight of the path
# j -> m (m >= j) is w(j, m) = a_j ... a_{m-1}; only such products are formed.
# --------------------------------------------------------------------------

_SD_LEAF = 32


class _Fft:
    """rfft/irfft for real data, fft/ifft for complex, plus index reversal (along ``axis``)."""

    def __init__(self, complex_: bool) -> None:
        self.c = complex_

    def fwd(self, x: np.ndarray, L: int | None = None, axis: int = 0) -> np.ndarray:
        if self.c:
            return sfft.fft(x, L, axis=axis, workers=_WORKERS)
        return sfft.rfft(x, L, axis=axis, workers=_WORKERS)

    def inv(self, S: np.ndarray, L: int, axis: int = 0) -> np.ndarray:
        if self.c:
            return sfft.ifft(S, L, axis=axis, workers=_WORKERS)
        return sfft.irfft(S, L, axis=axis, workers=_WORKERS)

    def rev(self, S: np.ndarray, axis: int = 0) -> np.ndarray:
        """Spectrum of s_{-j}: conj for real data, reversed index for complex."""
        if not self.c:
            return np.conj(S)
        return np.roll(np.flip(S, axis=axis), 1, axis=axis)


class _SDGeometry:
    """Padded length N (a power of two), leaf weights and per-level products for one A."""

    def __init__(self, a: np.ndarray, fa: complex, n: int, dtype: np.dtype) -> None:
        self.n, self.dtype = n, np.dtype(dtype)
        N = 1
        while n > N:
            N *= 2
        self.N = N
        self.s0 = min(_SD_LEAF, N)
        ap = np.zeros(N, dtype)
        ap[: n - 1] = a
        self.ap = ap
        self.fa = fa
        # leaf weights W[k, j] = w(j, j + k) for j, j + k in the same leaf
        s0 = self.s0
        W = np.zeros((s0, N), dtype)
        W[0] = 1
        pos = np.arange(N) % s0
        for k in range(1, s0):
            W[k, : N - k] = W[k - 1, : N - k] * ap[k - 1 : N - 1]
            W[k, pos + k >= s0] = 0
        self.W = W
        self.levels = []
        s = 2 * s0
        while s <= N:
            h, nb = s // 2, N // s
            blk = ap.reshape(nb, s)
            alpha = np.cumprod(blk[:, :h][:, ::-1], axis=1)[:, ::-1]  # w(j, mid)
            beta = np.ones((nb, h), dtype)
            if h > 1:
                beta[:, 1:] = np.cumprod(blk[:, h : s - 1], axis=1)  # w(mid, m)
            self.levels.append((s, h, nb, alpha, beta))
            s *= 2
        if fa != 0:
            # corner paths j -> n-1 -> 0 -> m: fa * w(j, n-1) * w(0, m)
            suf = np.ones(n, dtype)
            if n > 1:
                suf[:-1] = np.cumprod(a[::-1])[::-1]
            self.calpha = fa * suf
            pre = np.ones(n, dtype)
            if n > 1:
                pre[1:] = np.cumprod(a)
            self.cbeta = pre
            self.cL = int(sfft.next_fast_len(2 * n, real=self.dtype.kind != "c"))


def _sd_kt(geo: _SDGeometry, V: np.ndarray, U: np.ndarray) -> np.ndarray:
    """T[k, v, u] = (A^k V[:, v])^T U[:, u] for k < n: the Krylov transpose multiply.

    ``V`` is (n, nv), ``U`` is (n, nu); returns (n, nv, nu). Column layouts
    throughout, FFTs along axis 0, block sums as batched GEMMs over frequencies.
    """
    n, N, s0 = geo.n, geo.N, geo.s0
    dtype = np.result_type(geo.dtype, V, U)
    ft = _Fft(np.dtype(dtype).kind == "c")
    nu, nv = U.shape[1], V.shape[1]
    Up = np.zeros((N, nu), dtype)
    Up[:n] = U
    Vp = np.zeros((N, nv), dtype)
    Vp[:n] = V
    T = np.zeros((N, nv, nu), dtype)
    for k in range(s0):
        T[k] = (Vp[: N - k] * geo.W[k, : N - k, None]).T @ Up[k:]
    for s, h, nb, alpha, beta in geo.levels:
        ub = np.zeros((s, nb, nu), dtype)
        np.multiply(Up.reshape(nb, s, nu)[:, h:].transpose(1, 0, 2), beta.T[:, :, None], out=ub[h:])
        vb = np.zeros((s, nb, nv), dtype)
        np.multiply(
            Vp.reshape(nb, s, nv)[:, :h].transpose(1, 0, 2), alpha.T[:, :, None], out=vb[:h]
        )
        Uh = ft.fwd(ub)  # (q, nb, nu)
        Vh = ft.rev(ft.fwd(vb))  # (q, nb, nv)
        Th = np.matmul(Vh.transpose(0, 2, 1), Uh)  # (q, nv, nu)
        T[:s] += ft.inv(Th, s)
    T = T[:n]
    if geo.fa != 0:
        L = geo.cL
        ub = np.zeros((L, nu), dtype)
        np.multiply(U, geo.cbeta[:, None], out=ub[n : 2 * n])
        Uh = ft.fwd(ub)
        Vh = ft.rev(ft.fwd(V * geo.calpha[:, None], L))
        for v in range(nv):
            T[:, v, :] += ft.inv(Uh * Vh[:, v, None], L)[:n]
    return T


def _sd_km(geo: _SDGeometry, V: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Y[:, o] = sum_v K(A, V[:, v]) C[:, v, o]: the Krylov multiply.

    ``V`` is (n, nv), ``C`` is (n, nv, no); returns (n, no).
    """
    n, N, s0 = geo.n, geo.N, geo.s0
    dtype = np.result_type(geo.dtype, V, C)
    ft = _Fft(np.dtype(dtype).kind == "c")
    nv, no = C.shape[1], C.shape[2]
    Vp = np.zeros((N, nv), dtype)
    Vp[:n] = V
    if n < N:
        Cp = np.zeros((N, nv, no), dtype)
        Cp[:n] = C
    else:
        Cp = np.asarray(C, dtype)
    Y = np.zeros((N, no), dtype)
    for k in range(s0):
        Y[k:] += (Vp[: N - k] * geo.W[k, : N - k, None]) @ Cp[k]
    for s, h, nb, alpha, beta in geo.levels:
        vb = np.zeros((s, nb, nv), dtype)
        np.multiply(
            Vp.reshape(nb, s, nv)[:, :h].transpose(1, 0, 2), alpha.T[:, :, None], out=vb[:h]
        )
        Vh = ft.fwd(vb)  # (q, nb, nv)
        Ch = ft.fwd(Cp[:s])  # (q, nv, no)
        P = ft.inv(np.matmul(Vh, Ch), s)  # (s, nb, no)
        Y3 = Y.reshape(nb, s, no)
        Y3[:, h:] += P[h:].transpose(1, 0, 2) * beta[:, :, None]
    Y = Y[:n]
    if geo.fa != 0:
        L = geo.cL
        Vh = ft.fwd(V * geo.calpha[:, None], L)  # (q, nv)
        Yh = np.zeros((Vh.shape[0], no), Vh.dtype)
        for v in range(nv):
            Yh += Vh[:, v, None] * ft.fwd(C[:, v, :], L)
        Y += ft.inv(Yh, L)[n : 2 * n] * geo.cbeta[:, None]
    return Y


def _alpha_beta(a: np.ndarray, fa: complex, b: np.ndarray, fb: complex) -> complex:
    """``alpha beta = fa prod(a) fb prod(b)`` without overflow of the partial products
    (``prod(a)`` alone overflows for n ~ 1100 subdiagonal entries of 2); an
    ``alpha beta`` beyond the range becomes inf or 0, its correct limit."""
    if fa == 0 or fb == 0:
        return 0.0
    ma, ea = prod_pow2(a)
    mb, eb = prod_pow2(b)
    m = complex(fa) * complex(fb) * ma * mb
    with np.errstate(over="ignore", under="ignore"):
        re, im = np.ldexp(m.real, ea + eb), np.ldexp(m.imag, ea + eb)
    return _py(complex(re, im))


def _sd_scale(a: np.ndarray, fa: complex, b: np.ndarray, fb: complex) -> complex:
    """1 / (1 - alpha beta) with alpha = fa prod(a), beta = fb prod(b)."""
    if fa == 0 or fb == 0:
        return 1.0
    ab = _alpha_beta(a, fa, b, fb)
    if not np.isfinite(ab):
        return 0.0
    return _py(1.0 / (1.0 - ab))


def _sd_dtype(*arrays: Any) -> np.dtype:
    return np.result_type(*arrays)


#: LDR-SD: materializing M by the stable Stein scan (O(r n^2), Numba) and one
#: GEMM beats the divide-and-conquer products for n <= 2048 when the batch is
#: at least n/32 (products) or n/16 (vjp, which also scans the adjoint).
#: Measured, float64, one thread: n = 1024, batch 64: 5 ms against 13 ms;
#: n = 2048, batch 64: 33 ms against 48 ms (docs/performance.md).
_SD_DENSE_MAX_N = 2048


def _sd_use_dense(n: int, k: int, vjp: bool = False) -> bool:
    return n <= _SD_DENSE_MAX_N and k >= max(8, n // (16 if vjp else 32))


def _sd_weights(a: np.ndarray, fa: complex, dtype: np.dtype) -> np.ndarray:
    """Row weights of a subdiagonal operator: (fa, a_0, ..., a_{n-2})."""
    w = np.empty(a.shape[0] + 1, dtype)
    w[0] = fa
    w[1:] = a
    return w


def _sd_dense(a, fa, b, fb, G, H, dtype):
    """M itself (n x n) by the stable Stein scan (Numba), O(r n^2)."""
    from lowdisp.kernels.ldr_subdiag import sd_stein_scan

    dtype = np.dtype(dtype)
    wA, wB = _sd_weights(a, fa, dtype), _sd_weights(b, fb, dtype)
    R = np.ascontiguousarray(np.asarray(G, dtype) @ np.asarray(H, dtype).T)
    ab = dtype.type(fa * np.prod(a) * fb * np.prod(b)) if fa != 0 and fb != 0 else dtype.type(0)
    sd_stein_scan(wA, wB, R, ab)
    return R, wA, wB, ab


def _sd_dense_vjp(a, fa, b, fb, G, H, X, dY, dtype):
    """Bilinear vjp through the materialized M and the adjoint scan (small n)."""
    from lowdisp.kernels.ldr_subdiag import sd_stein_scan

    M, wA, wB, ab = _sd_dense(a, fa, b, fb, G, H, dtype)
    # Lambda = A^T Lambda B' + W, W = dY X^T: the same scan on J Lambda J
    L = np.ascontiguousarray((dY @ X.T)[::-1, ::-1])
    sd_stein_scan(np.roll(wA[::-1], 1), np.roll(wB[::-1], 1), L, ab)
    Lam = np.ascontiguousarray(L[::-1, ::-1])
    # da_l = sum_j Lam[l+1, j] wB_j M[l, j-1], db_l = sum_i Lam[i, l+1] wA_i M[i-1, l]
    # (indices mod n); both share Lam[1:, 1:] * M[:-1, :-1]
    n = M.shape[0]
    P = Lam[1:, 1:] * M[:-1, :-1]
    da = P @ wB[1:] + Lam[1:, 0] * (wB[0] * M[:-1, n - 1])
    db = wA[1:] @ P + Lam[0, 1:] * (wA[0] * M[n - 1, :-1])
    return {"G": Lam @ H, "H": Lam.T @ G, "a": da, "b": db, "X": M.T @ dY}


def _sd_forward(a, fa, b, fb, G, H, X):
    """Bilinear pieces of M X: (geoA, geoB, c = K(B,h)^T X blocks, scale)."""
    n = H.shape[0]
    fa, fb = _py(fa), _py(fb)
    dtype = _sd_dtype(a, b, G, H, X, fa, fb)
    geoA = _SDGeometry(np.asarray(a, dtype), fa, G.shape[0], dtype)
    geoB = _SDGeometry(np.asarray(b, dtype), fb, n, dtype)
    c = _sd_kt(geoB, H, X)  # (n, r, k)
    return dtype, geoA, geoB, c, _sd_scale(a, fa, b, fb)


def _sd_tmatmat(a, fa, b, fb, G, H, Y):
    if _sd_use_dense(H.shape[0], Y.shape[1]):
        dtype = _sd_dtype(a, b, G, H, Y, _py(fa), _py(fb))
        M = _sd_dense(a, _py(fa), b, _py(fb), G, H, dtype)[0]
        return M.T @ np.asarray(Y, dtype)
    _, geoB, _, z, scale = _sd_forward(b, fb, a, fa, H, G, Y)
    return _sd_km(geoB, H, z) * scale


def subdiag_matmat(
    a: np.ndarray,
    fa: complex,
    b: np.ndarray,
    fb: complex,
    G: np.ndarray,
    H: np.ndarray,
    X: np.ndarray,
) -> np.ndarray:
    """``M @ X`` for ``M = (1 - alpha beta)^{-1} sum_i K(A, g_i) K(B, h_i)^T`` (LDR-SD).

    ``A`` has subdiagonal ``a`` (n-1,) and corner ``fa`` at (0, n-1); ``B``
    likewise with ``b``, ``fb``; ``alpha = fa prod(a)``, ``beta = fb prod(b)``.

    Notes
    -----
    Two divide-and-conquer Krylov products (Thomas et al. 2018):
    ``C = K(B, H)^T X`` (the transpose multiply), then
    ``Y = sum_i K(A, g_i) C_i``. Indices are split in halves recursively; a
    pair (j in the first half, m in the second) has path weight
    ``w(j, m) = a_j ... a_{m-1} = alpha_j beta_m`` with ``alpha`` the suffix
    products of the first half and ``beta`` the prefix products of the
    second, so every cross term is one FFT correlation (or convolution) of
    the block length, the blocks summed in the frequency domain. Leaves of
    32 are done with weights ``w(j, j + k)`` and GEMMs; corner paths (through
    ``fa``) are one more correlation of length ``2n``. Only products of
    actual entries are formed, never quotients (the cumulative-product
    shortcut ``diag(P) L(v / P)`` loses all digits once ``P`` spans many
    decades). Cost ``O((k + r) n log^2 n + k r n log n)``.

    For ``n <= 2048`` with at least ``max(8, n/32)`` columns, ``M`` itself is
    formed instead by the stable Stein scan ``M_ij = wA_i wB_j M_{i-1,j-1} +
    (G H^T)_ij`` (Numba; wrapped diagonals closed exactly through
    ``1 - alpha beta``) and applied by one GEMM: faster there (5 ms against
    13 ms at n = 1024, batch 64).

    References
    ----------
    A. T. Thomas, A. Gu, T. Dao, A. Rudra, C. Ré, "Learning compressed
    transforms with low displacement rank", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import subdiag_matmat
    >>> n = 4
    >>> a = b = np.ones(n - 1)  # A = B = Z_0: M = sum_i L(g_i) L(h_i)^T
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]  # M = L(1) = lower triangle of ones
    >>> subdiag_matmat(a, 0.0, b, 0.0, G, H, np.eye(n))[:, 0]
    array([1., 1., 1., 1.])
    """
    if _sd_use_dense(H.shape[0], X.shape[1]):
        dtype = _sd_dtype(a, b, G, H, X, _py(fa), _py(fb))
        M = _sd_dense(a, _py(fa), b, _py(fb), G, H, dtype)[0]
        return M @ np.asarray(X, dtype)
    dtype, geoA, _, c, scale = _sd_forward(a, fa, b, fb, G, H, X)
    return (_sd_km(geoA, G, c) * scale).astype(dtype, copy=False)


def subdiag_rmatmat(
    a: np.ndarray,
    fa: complex,
    b: np.ndarray,
    fb: complex,
    G: np.ndarray,
    H: np.ndarray,
    Y: np.ndarray,
) -> np.ndarray:
    """``M^H @ Y`` for the LDR-SD matrix (same algorithm with the roles of A and B swapped).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import subdiag_rmatmat
    >>> n = 4
    >>> a = np.ones(n - 1)
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]
    >>> subdiag_rmatmat(a, 0.0, a, 0.0, G, H, np.eye(n))[0]
    array([1., 1., 1., 1.])
    """
    if any(np.iscomplexobj(x) for x in (a, b, G, H, fa, fb)):
        c = np.conj
        return _sd_tmatmat(c(a), c(fa), c(b), c(fb), c(G), c(H), Y)
    return _sd_tmatmat(a, fa, b, fb, G, H, Y)


def _sd_param_grad(
    geo: _SDGeometry,
    a: np.ndarray,
    D: np.ndarray,
    Y0: np.ndarray,
    V: np.ndarray,
    dV: np.ndarray,
    Z: np.ndarray,
    C: np.ndarray,
) -> np.ndarray:
    """d/da of l0 = <D, Y0>, Y0 = KM(a, V, C) (bilinear, rows = outputs).

    Diagonal similarity ``A -> S A S^{-1}`` with ``S = I + eps E_l``
    (``E_l`` = indicator of indices > l) scales ``a_l`` by ``1 + eps`` and the
    corner by ``1/(1 + eps)``; since ``K(S A S^{-1}, v) = S K(A, S^{-1} v)``,
    ``a_l dl0/da_l - T_c = sum_{m > l} (D * Y0)_m - sum_{j > l} (V * dV)_j``
    with ``T_c = fa dl0/dfa``; scaling all of A by ``1 + eps`` gives
    ``sum_l a_l dl0/da_l + T_c = sum k Z_k C_k``. Entries with ``|a_l|``
    below 1e-3 of the largest use the exact secant (l0 is affine in each
    ``a_l``: paths shorter than n cross each edge at most once).
    """
    n = geo.n
    if n == 1:
        return np.zeros(0, geo.dtype)
    p = np.einsum("mo,mo->m", D, Y0) - np.einsum("mv,mv->m", V, dV)
    sigma = np.cumsum(p[::-1])[::-1][1:]  # sigma_l = sum_{m > l} p_m, l = 0..n-2
    if geo.fa != 0:
        kappa = np.einsum("kvo,kvo,k->", Z, C, np.arange(n, dtype=geo.dtype.type))
        tc = (kappa - sigma.sum()) / n
    else:
        tc = 0.0
    T = sigma + tc
    amax = np.max(np.abs(a)) if a.size else 0.0
    small = np.abs(a) < 1e-3 * amax if amax > 0 else np.ones(a.shape, bool)
    grad = np.empty_like(T)
    big = ~small
    grad[big] = T[big] / a[big]
    if np.any(small):
        l0 = np.vdot(np.conj(D), Y0) if np.iscomplexobj(D) else np.sum(D * Y0)
        for l in np.flatnonzero(small):
            a2 = np.array(a, copy=True)
            a2[l] += 1
            g2 = _SDGeometry(a2, geo.fa, n, geo.dtype)
            Y2 = _sd_km(g2, V, C)
            grad[l] = np.sum(D * Y2) - l0
    return grad


def subdiag_vjp(
    a: np.ndarray,
    fa: complex,
    b: np.ndarray,
    fb: complex,
    G: np.ndarray,
    H: np.ndarray,
    X: np.ndarray,
    dY: np.ndarray,
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, a, b, X`` of ``L = Re sum(conj(dY) * (M X))`` for the LDR-SD M.

    ``dX = M^H dY``; ``dg_i = s sum_b K(A^T, dy_b) c_{b,i}`` and
    ``dh_i = s sum_b K(B^T, x_b) (K(A, g_i)^T dy_b)``, Krylov products with the
    superdiagonal ``A^T = J Ã J`` (``Ã`` = reversed subdiagonal, same corner),
    so the same divide-and-conquer kernels apply after flips; ``da`` and
    ``db`` by the diagonal-similarity identity (see ``_sd_param_grad``) plus
    the derivative of ``s = 1/(1 - alpha beta)``. Same order as the product
    (about 3x its time). Corners are fixed scalars.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import subdiag_vjp
    >>> n = 4
    >>> a = np.ones(n - 1)
    >>> g = subdiag_vjp(a, 0.0, a, 0.0, np.ones((n, 1)), np.ones((n, 1)), np.ones((n, 2)),
    ...                 np.ones((n, 2)))
    >>> sorted(g), g["a"].shape
    (['G', 'H', 'X', 'a', 'b'], (3,))
    """
    if _complex_data_only((a, b, G, H, fa, fb), X, dY):
        return _real_params_complex_data(lambda x, d: subdiag_vjp(a, fa, b, fb, G, H, x, d), X, dY)

    cplx = any(np.iscomplexobj(x) for x in (a, b, G, H, X, dY, fa, fb))
    if cplx:
        dtype = np.result_type(a, b, G, H, X, dY, np.complex64)
        a, b, G, H, X = (np.asarray(x, dtype) for x in (a, b, G, H, X))
        dY = np.conj(np.asarray(dY, dtype))
    if _sd_use_dense(H.shape[0], X.shape[1], vjp=True):
        dtype = _sd_dtype(a, b, G, H, X, dY, _py(fa), _py(fb))
        a, b, G, H, X, dY = (np.asarray(x, dtype) for x in (a, b, G, H, X, dY))
        out = _sd_dense_vjp(a, _py(fa), b, _py(fb), G, H, X, dY, dtype)
        out = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}
        return {k: np.conj(v) for k, v in out.items()} if cplx else out
    dtype, geoA, geoB, c, scale = _sd_forward(a, fa, b, fb, G, H, X)
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    dY = np.asarray(dY, dtype)
    Y0 = _sd_km(geoA, G, c)  # (m, k), M X = scale * Y0
    z = _sd_kt(geoA, G, dY)  # (m, r, k): K(A, g_i)^T dy_b
    X0 = _sd_km(geoB, H, z)  # (n, k): M^T dY = scale * X0
    ra = _SDGeometry(a[::-1], fa, geoA.n, dtype)
    rb = _SDGeometry(b[::-1], fb, geoB.n, dtype)
    dG0 = _sd_km(ra, dY[::-1], c.transpose(0, 2, 1))[::-1]  # (m, r)
    dH0 = _sd_km(rb, X[::-1], z.transpose(0, 2, 1))[::-1]  # (n, r)
    da = _sd_param_grad(geoA, a, dY, Y0, G, dG0, z, c) * scale
    db = _sd_param_grad(geoB, b, X, X0, H, dH0, c, z) * scale
    if scale != 1.0:
        # s = 1/(1 - alpha beta): ds/da_l = s^2 beta fa prod_{p != l} a_p
        l0 = np.sum(dY * Y0)
        alpha_b, beta_b = fa * np.prod(a), fb * np.prod(b)
        da = da + l0 * scale**2 * beta_b * fa * _prod_except(a)
        db = db + l0 * scale**2 * alpha_b * fb * _prod_except(b)
    out = {"G": dG0 * scale, "H": dH0 * scale, "a": da, "b": db, "X": X0 * scale}
    out = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}
    if cplx:
        out = {k: np.conj(v) for k, v in out.items()}
    return out


def _prod_except(a: np.ndarray) -> np.ndarray:
    """prod_{p != l} a_p for every l, by prefix and suffix products (no division)."""
    n = a.shape[0]
    pre = np.ones(n, a.dtype)
    suf = np.ones(n, a.dtype)
    if n > 1:
        pre[1:] = np.cumprod(a[:-1])
        suf[:-1] = np.cumprod(a[::-1][:-1])[::-1]
    return pre * suf


# --------------------------------------------------------------------------
# LDR-TD: M = sum_i K(A, g_i) K(B, h_i)^T, A and B tridiagonal with corners.
# M X = sum_k (A^k G) ((B^k H)^T X), taken over chunks of K steps: the two
# Krylov chunks (n, K r) come from three-term recurrences and meet X in two
# GEMMs; no Krylov matrix and no n x n array exists.
# --------------------------------------------------------------------------

_TD_CHUNK = 16


def _td_parts(P: Any, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    lower, main, upper, f = P
    cast = [np.array(x, dtype=dtype, order="C") for x in (lower, main, upper)]  # writeable
    fz = complex(f) if np.dtype(dtype).kind == "c" else float(np.real(f))
    return cast[0], cast[1], cast[2], fz


def _td_sum(
    Ap: Any, Bp: Any, G: np.ndarray, H: np.ndarray, X: np.ndarray, chunk: int
) -> np.ndarray:
    """sum_k (A^k G)((B^k H)^T X), bilinear (no conjugation)."""
    from lowdisp.kernels.ldr_tridiag import td_krylov_chunk

    dtype = np.result_type(G, H, X, Ap[1], Bp[1])
    A, B = _td_parts(Ap, dtype), _td_parts(Bp, dtype)
    n, r = H.shape
    X = np.asarray(X, dtype)
    Ps, Rs = np.array(G.T, dtype=dtype, order="C"), np.array(H.T, dtype=dtype, order="C")
    Pbuf = np.empty((chunk * r, G.shape[0]), dtype)
    Rbuf = np.empty((chunk * r, n), dtype)
    Y = np.zeros((G.shape[0], X.shape[1]), dtype, order="F")
    (gemm,) = sla_blas.get_blas_funcs(("gemm",), (Pbuf, Y))
    for k0 in range(0, n, chunk):
        K = min(chunk, n - k0)
        td_krylov_chunk(*A, False, Ps, Pbuf, K)
        td_krylov_chunk(*B, False, Rs, Rbuf, K)
        # Y += P_chunk^T C_chunk in place (BLAS beta = 1, no temporary)
        Y = gemm(1.0, Pbuf[: K * r].T, Rbuf[: K * r] @ X, beta=1.0, c=Y, overwrite_c=True)
    return Y  # Fortran order (no copy)


def tridiag_matmat(
    A_params: Any, B_params: Any, G: np.ndarray, H: np.ndarray, X: np.ndarray
) -> np.ndarray:
    """``M @ X`` for the LDR-TD matrix ``M = sum_i K(A, g_i) K(B, h_i)^T``.

    ``A_params = (lower, main, upper, f)`` (tridiagonal plus corner ``f`` at
    (0, n-1)); ``B_params`` likewise.

    Notes
    -----
    ``M X = sum_k (A^k G)((B^k H)^T X)``. The Krylov vectors are generated
    ``K = 16`` steps at a time by the three-term recurrence (a Numba kernel)
    into two ``(n, K r)`` buffers, which meet ``X`` in two GEMMs. Time
    ``O(k r n^2)`` (``O(r n^2)`` per column, the cost of the recurrences is
    ``O(r n^2)`` once), memory ``O(K r n)``: no Krylov matrix and no
    ``n x n`` array is formed (structured-nets builds both, ``O(r n^2)``
    memory).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import tridiag_matmat
    >>> n = 4
    >>> Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)  # A = B = Z_0
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]
    >>> tridiag_matmat(Z, Z, G, H, np.eye(n))[:, 0]
    array([1., 1., 1., 1.])
    """
    return _td_sum(A_params, B_params, G, H, X, _TD_CHUNK)


def _conj_params(P: Any) -> Any:
    return (*(np.conj(x) for x in P[:3]), np.conj(P[3]))


def tridiag_rmatmat(
    A_params: Any, B_params: Any, G: np.ndarray, H: np.ndarray, Y: np.ndarray
) -> np.ndarray:
    """``M^H @ Y`` for the LDR-TD matrix (``sum_k (B^k H)((A^k G)^H Y)``).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import tridiag_rmatmat
    >>> n = 4
    >>> Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)
    >>> G, H = np.ones((n, 1)), np.eye(n)[:, :1]
    >>> tridiag_rmatmat(Z, Z, G, H, np.eye(n))[0]
    array([1., 1., 1., 1.])
    """
    cplx = any(np.iscomplexobj(x) for x in (*A_params, *B_params, G, H))
    if cplx:
        return _td_sum(
            _conj_params(B_params), _conj_params(A_params), np.conj(H), np.conj(G), Y, _TD_CHUNK
        )
    return _td_sum(B_params, A_params, H, G, Y, _TD_CHUNK)


def tridiag_vjp(
    A_params: Any, B_params: Any, G: np.ndarray, H: np.ndarray, X: np.ndarray, dY: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients ``G, H, A, B, X`` of ``L = Re sum(conj(dY) * (M X))`` for the LDR-TD M.

    ``A`` and ``B`` are the gradients of the concatenated parameter vectors
    ``[lower, main, upper]`` (length 3n-2; the corners are fixed).

    Notes
    -----
    With ``P_k = A^k G``, ``C_k = (B^k H)^T X`` and ``E_k = dY C_k^T``:
    ``dG = sum_k (A^T)^k E_k`` and ``dA = sum_q pattern(Psi_q P_q^T)`` with
    ``Psi_q = sum_p (A^T)^p E_{p+q+1}``, both by one backward Horner sweep
    ``Psi_{q-1} = E_q + A^T Psi_q`` (Numba); the same with the roles of
    (A, G, dY) and (B, H, X) swapped gives ``dH`` and ``dB``. The sweep runs
    over chunks in reverse order from checkpoints of the forward
    recurrences (one ``(n, r)`` state per chunk). ``O(k r n^2)`` time.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._fast import tridiag_vjp
    >>> n = 4
    >>> Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)
    >>> g = tridiag_vjp(Z, Z, np.ones((n, 1)), np.ones((n, 1)), np.ones((n, 2)), np.ones((n, 2)))
    >>> sorted(g), g["A"].shape
    (['A', 'B', 'G', 'H', 'X'], (10,))
    """
    if _complex_data_only((*A_params, *B_params, G, H), X, dY):
        return _real_params_complex_data(
            lambda x, d: tridiag_vjp(A_params, B_params, G, H, x, d), X, dY
        )

    from lowdisp.kernels.ldr_tridiag import td_backward_chunk, td_krylov_chunk

    cplx = any(np.iscomplexobj(x) for x in (*A_params, *B_params, G, H, X, dY))
    dtype = np.result_type(G, H, X, dY, A_params[1], B_params[1])
    if cplx:
        dtype = np.result_type(dtype, np.complex64)
    A, B = _td_parts(A_params, dtype), _td_parts(B_params, dtype)
    G, H, X = (np.asarray(x, dtype) for x in (G, H, X))
    dY = np.asarray(dY, dtype)
    if cplx:
        dY = np.conj(dY)
    n, r = H.shape
    K = 64
    nchunks = -(-n // K)
    # forward: checkpoints of both recurrences, and dX = sum_k R_k (P_k^T dY)
    Ps, Rs = np.array(G.T, order="C"), np.array(H.T, order="C")  # mutated: own copies
    ckP = np.empty((nchunks, r, n), dtype)
    ckR = np.empty((nchunks, r, n), dtype)
    Pbuf = np.empty((K * r, n), dtype)
    Rbuf = np.empty((K * r, n), dtype)
    dX = np.zeros_like(X)
    for c in range(nchunks):
        k0 = c * K
        Kc = min(K, n - k0)
        ckP[c], ckR[c] = Ps, Rs
        td_krylov_chunk(*A, False, Ps, Pbuf, Kc)
        td_krylov_chunk(*B, False, Rs, Rbuf, Kc)
        dX += Rbuf[: Kc * r].T @ (Pbuf[: Kc * r] @ dY)
    # backward sweeps
    psiA, psiB = np.zeros((r, n), dtype), np.zeros((r, n), dtype)
    tmp = np.empty((r, n), dtype)
    dA = [np.zeros(n - 1, dtype), np.zeros(n, dtype), np.zeros(n - 1, dtype)]
    dB = [np.zeros(n - 1, dtype), np.zeros(n, dtype), np.zeros(n - 1, dtype)]
    for c in range(nchunks - 1, -1, -1):
        k0 = c * K
        Kc = min(K, n - k0)
        Ps, Rs = ckP[c].copy(), ckR[c].copy()
        td_krylov_chunk(*A, False, Ps, Pbuf, Kc)
        td_krylov_chunk(*B, False, Rs, Rbuf, Kc)
        Pc, Rc = Pbuf[: Kc * r], Rbuf[: Kc * r]
        E = np.ascontiguousarray((Rc @ X) @ dY.T)  # rows E_k = (dY C_k^T)^T, (Kc r, n)
        F = np.ascontiguousarray((Pc @ dY) @ X.T)  # rows F_k = (X D_k^T)^T
        td_backward_chunk(*A, Pc, E, psiA, tmp, dA[0], dA[1], dA[2], Kc)
        td_backward_chunk(*B, Rc, F, psiB, tmp, dB[0], dB[1], dB[2], Kc)
    out = {
        "G": np.ascontiguousarray(psiA.T),
        "H": np.ascontiguousarray(psiB.T),
        "A": np.concatenate(dA),
        "B": np.concatenate(dB),
        "X": dX,
    }
    if cplx:
        out = {k: np.conj(v) for k, v in out.items()}
    return out
