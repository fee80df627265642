"""The Toeplitz-like and Hankel-like families: FFT plans, the families and their solvers.

Pairs (Sylvester ``(Z_e, Z_f)``, Stein ``(Z_e, Z_f^T)``, rectangular Stein
``(Z_0, Z_0^T)``, and the Hankel-like pairs ``M = J T`` / ``M = T J``) share one
plan, :class:`ToeplitzPlan`: ``2r + 2`` real FFTs per column. For
``e = -f = +-1`` (the default ``Z_1, Z_-1`` pair) the transforms have length n
(a real DFT and a real "odd" DFT); otherwise ``next_fast_len(2n - 1)`` with
folding. Solves go through Heinig's FFT conversion to a Cauchy-like matrix and
GKO (pivoted, O(r n^2)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft

from lowdisp._config import result_dtype
from lowdisp._validation import pow2_exponent
from lowdisp.structured._common import fcirc_dense, ldexp_scalar, py_scalar, randn
from lowdisp.structured._fft import Cyclic, fast_cyclic_ok, make_transform
from lowdisp.structured._gko import gko, roots
from lowdisp.structured._operators import Shift
from lowdisp.structured.families._base import LDRFamily, is_op

__all__ = [
    "HankelFamily",
    "HankelRightFamily",
    "RectToeplitzFamily",
    "ToeplitzFamily",
    "ToeplitzPlan",
]

#: corners at most this power of two in modulus are applied as they are
_CORNER_SAFE = 32


def _corner_exponent(c: complex) -> int:
    """k > 0 with ``2**-k c`` of order 1 when ``|c| > 2**32``, else 0."""
    m = max(abs(float(np.real(c))), abs(float(np.imag(c))))
    if m == 0 or not np.isfinite(m):
        return 0
    k = int(pow2_exponent(m))
    return k if k > _CORNER_SAFE else 0


def _rank_sum_scalar(e: complex, f: complex, ke: int, kf: int, kind: str) -> complex:
    """``2**(ke + kf) / (e - f)`` (Sylvester) or ``2**(ke + kf) / (1 - e f)`` (Stein),
    without overflow or loss in the intermediate quantities."""
    with np.errstate(over="ignore", under="ignore"):
        if kind == "sylvester":
            if ke == kf == 0:
                return 1.0 / (e - f)
            q = max(ke, kf)
            return ldexp_scalar(1.0, min(ke, kf)) / (ldexp_scalar(e, -q) - ldexp_scalar(f, -q))
        if ke == kf == 0:
            return 1.0 / (1.0 - e * f)
        return 1.0 / (ldexp_scalar(1.0, -(ke + kf)) - ldexp_scalar(e, -ke) * ldexp_scalar(f, -kf))


def _block_size(k: int, n: int) -> int:
    """Columns per block: the length-n spectra in flight stay in L2 (~1 MB) while each
    FFT call still gets enough rows to amortize its overhead (about 4 us per call)."""
    return int(max(1, min(k, 32, max(4, (1 << 15) // max(n, 1)))))


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

    def fwd_cols(self, X: np.ndarray, j0: int, cb: int) -> np.ndarray:
        """``fwd(X[:, j0:j0 + cb].T)`` for a C-ordered ``X`` of the plan's dtype."""
        if isinstance(self.tr, Cyclic):  # fused with the transposition (fwd_T = fwd_N)
            return self.tr.fwd_cols(X, j0, cb)
        # the padded path (any dtype) copies with NumPy: no kernel signatures to compile
        return self.fwd(np.array(X[:, j0 : j0 + cb].T, order="C"))

    def inv_cols(self, S: np.ndarray, Y: np.ndarray, j0: int) -> None:
        """``Y[:, j0:j0 + cb] = inv(S).T`` for a C-ordered ``Y``."""
        if isinstance(self.tr, Cyclic):
            self.tr.inv_cols(S, Y, j0)
            return
        y = self.inv(S)
        Y[:, j0 : j0 + y.shape[0]] = y.T


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
    stay in cache. A corner ``c`` beyond ``2**32`` in modulus is applied as
    ``2**-k Z_c`` (fold weights ``2**-k (1, c)``) with ``2**k`` folded into the
    scalar in front of the sum, computed without overflow: corners up to the
    float maximum (and complex corners of larger modulus) give the moderate
    matrices they define.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured.families.toeplitz import ToeplitzPlan
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
        e, f = py_scalar(e), py_scalar(f)
        if isinstance(e, complex) or isinstance(f, complex):
            dtype = np.result_type(dtype, np.complex64)
        self.dtype = np.dtype(dtype)
        self.n, self.r = G.shape
        self.kind, self.e, self.f = kind, e, f
        self.G, self.H = G.astype(dtype, copy=False), H.astype(dtype, copy=False)
        # corners near the overflow threshold: the factors are applied as 2**-k Z_c
        # (fold weights 2**-k (1, c), both O(1)) and 2**(ke + kf) rides on the scalar
        ke, kf = _corner_exponent(e), _corner_exponent(f)
        self.scale = _rank_sum_scalar(e, f, ke, kf, kind)
        n = self.n
        real = self.dtype.kind == "f"
        cyc = real and kind == "sylvester" and e == -f and abs(e) == 1.0 and fast_cyclic_ok(n)
        self.cyclic = bool(cyc)
        self._tre = make_transform(n, e, self.dtype, self.cyclic, ke)
        self._trf = make_transform(n, f, self.dtype, self.cyclic, kf)
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
        from lowdisp.kernels.ldr_toeplitz import spec_mac, spec_mul

        s1, s2 = self._pair(which)
        n, k = X.shape
        if self.r == 0:
            return np.zeros((n, k), self.dtype)
        X = np.ascontiguousarray(X, self.dtype)
        Y = np.empty((n, k), self.dtype)
        cb = _block_size(k, n)
        P, Q = s1.spec, s2.spec
        for j0 in range(0, k, cb):
            c = min(cb, k - j0)
            Xs = s1.fwd_cols(X, j0, c)
            acc = np.zeros((c, s2.tr.nb), Xs.dtype)
            tmp = np.empty_like(Xs)
            for i in range(self.r):
                spec_mul(Xs, P[i], tmp)
                spec_mac(acc, s2.fwd(s1.inv(tmp)), Q[i])
            s2.inv_cols(acc, Y, j0)
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
        X, dY = np.ascontiguousarray(X), np.ascontiguousarray(dY)
        dX = np.empty((n, k), self.dtype)
        accq = np.zeros((r, f2.tr.nb), f2.spec.dtype)  # d(stage-2 params)
        accp = np.zeros((r, f1.tr.nb), f1.spec.dtype)  # d(stage-1 params)
        cb = _block_size(k, n)
        for j0 in range(0, k, cb):
            c = min(cb, k - j0)
            Xs = f1.fwd_cols(X, j0, c)  # forward stage-1 input spectra
            Ws = t1.fwd_cols(dY, j0, c)  # transpose stage-1 input spectra (shared with dq)
            rXs = f1.tr.rev(Xs)
            accx = np.zeros((c, t2.tr.nb), Xs.dtype)
            for i in range(r):
                Us = f2.fwd(f1.inv(Xs * f1.spec[i]))  # forward stage-2 input
                accq[i] += np.einsum("bq,bq->q", Ws, f2.tr.rev(Us))
                Vs = t2.fwd(t1.inv(Ws * t1.spec[i]))  # transpose stage-2 input
                if f1.mode == "N":
                    accp[i] += np.einsum("bq,bq->q", Vs, rXs)
                else:
                    accp[i] += np.einsum("bq,bq->q", Xs, f1.tr.rev(Vs))
                spec_mac(accx, Vs, t2.spec[i])
            t2.inv_cols(accx, dX, j0)
        dq = f2.tr.inv_T(accq).T * self.scale
        dp = f1.tr.inv_T(accp).T * self.scale
        if self.kind == "sylvester":
            dG, dH = dq, dp[::-1]
        else:
            dG, dH = dq, dp
        return (np.ascontiguousarray(dG, self.dtype), np.ascontiguousarray(dH, self.dtype), dX)


# --------------------------------------------------------------------------
# solvers: Heinig's conversion to a Cauchy-like matrix, then GKO
# --------------------------------------------------------------------------


def _toeplitz_sylvester_solve(G, H, e, f, B, transposed: bool, where: str) -> np.ndarray:
    r"""Solve ``M x = b`` (or ``M^T x = b``) for ``Z_e M - M Z_f = G H^T``, e, f != 0.

    With :math:`P_e = F D_e` (numpy DFT F, :math:`D_e = diag(e^{k/n})`),
    :math:`Z_e = P_e^{-1}\Lambda_e P_e` and :math:`C = P_e M P_f^{-1}` is
    Cauchy-like: :math:`\Lambda_e C - C\Lambda_f = (P_eG)(P_f^{-T}H)^T`.
    """
    De, se = roots(e, G.shape[0])
    Df, tf = roots(f, G.shape[0])
    Gc = sfft.fft(De[:, None] * G, axis=0)
    Hc = sfft.ifft(H / Df[:, None], axis=0)
    if not transposed:
        y = gko(se, tf, Gc, Hc, sfft.fft(De[:, None] * B, axis=0), where)
        return sfft.ifft(y, axis=0) / Df[:, None]
    y = gko(tf, se, -Hc, Gc, sfft.ifft(B / Df[:, None], axis=0), where)
    return De[:, None] * sfft.fft(y, axis=0)


def _unit_vectors(n: int, dtype: Any) -> np.ndarray:
    E = np.zeros((n, 2), dtype=dtype)
    E[0, 0] = 1.0
    E[n - 1, 1] = 1.0
    return E


def _stein_to_sylvester(fam: ToeplitzFamily) -> tuple[np.ndarray, np.ndarray]:
    """Generators of the Stein Toeplitz-like T for (Z_1, Z_-1), rank r + 2.

    From ``M - Z_e M Z_f^T = G H^T`` and ``Z_f^T Z_f = I + (f^2 - 1) e_{n-1} e_{n-1}^T``:
    ``Z_1 M - M Z_{-1} = -G (Z_f^T H)^T + [(1 + f) M e_0 - (f^2 - 1) Z_e M e_{n-1}] e_{n-1}^T
    + (1 - e) e_0 (M^T e_{n-1})^T``.
    """
    G, H, e, f, plan = fam.G, fam.H, fam.e, fam.f, fam.plan
    n = G.shape[0]
    E = _unit_vectors(n, result_dtype(G, H, e, f))
    cols = plan.matmat(E.astype(result_dtype(E, G)))  # M e_0, M e_{n-1}
    last_row = np.conj(plan.rmatmat(np.conj(E[:, 1:])))[:, 0]  # M^T e_{n-1}
    ZeMe = np.empty(n, dtype=cols.dtype)
    ZeMe[1:] = cols[:-1, 1]
    ZeMe[0] = e * cols[-1, 1]
    ZfTH = np.empty_like(H)
    ZfTH[:-1] = H[1:]
    ZfTH[-1] = f * H[0]
    g2 = (1 + f) * cols[:, 0] - (f * f - 1) * ZeMe
    e0 = (1 - e) * E[:, 0]
    return np.column_stack([-G, g2, e0]), np.column_stack([ZfTH, E[:, 1], last_row])


def _sylvester_to_standard(fam: ToeplitzFamily) -> tuple[np.ndarray, np.ndarray]:
    """Generators for (Z_1, Z_-1) of a Sylvester (Z_e, Z_f) Toeplitz-like T, rank r + 2.

    ``Z_1 M - M Z_{-1} = G H^T + (1 - e) e_0 (M^T e_{n-1})^T + (1 + f) (M e_0) e_{n-1}^T``.
    """
    G, H, e, f, plan = fam.G, fam.H, fam.e, fam.f, fam.plan
    E = _unit_vectors(G.shape[0], result_dtype(G, H, e, f))
    first_col = plan.matmat(E[:, :1])[:, 0]
    last_row = np.conj(plan.rmatmat(np.conj(E[:, 1:])))[:, 0]
    Gs = np.column_stack([G, (1 - e) * E[:, 0], (1 + f) * first_col])
    Hs = np.column_stack([H, last_row, E[:, 1]])
    return Gs, Hs


# --------------------------------------------------------------------------
# the families
# --------------------------------------------------------------------------


def _shift_corner(op: Any) -> complex:
    return op.base.f if is_op(op, Shift, True) else op.f


class ToeplitzFamily(LDRFamily):
    r"""Toeplitz-like: Sylvester ``(Z_e, Z_f)``, e != f, or Stein ``(Z_e, Z_f^T)``, e f != 1.

    Sylvester :math:`M = (e-f)^{-1}\sum_i Z_e(g_i) Z_f(J h_i)`; Stein
    :math:`M = (1-ef)^{-1}\sum_i Z_e(g_i) Z_f(h_i)^T`. Products by
    :class:`ToeplitzPlan`; solve by Heinig's conversion and GKO.

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import ToeplitzFamily
    >>> ToeplitzFamily.recognises(ld.Shift(4, 1.0), ld.Shift(4, -1.0), "sylvester")
    True
    """

    name = "toeplitz"
    pairs = (
        "toeplitz: (Shift(n, e), Shift(n, f)) sylvester with e != f, or "
        "(Shift(n, e), Shift(n, f).T) stein with e*f != 1"
    )

    @classmethod
    def recognises(cls, A, B, kind):
        return is_op(A, Shift) and is_op(B, Shift, kind == "stein")

    @classmethod
    def singular_reason(cls, A, B, kind):
        tiny = 64 * np.finfo(float).eps
        e, f = _shift_corner(A), _shift_corner(B)
        # |e - f| relative to max(1, |e|, |f|), computed on e / s, f / s (no overflow)
        sc = max(1.0, *(max(abs(float(np.real(z))), abs(float(np.imag(z)))) for z in (e, f)))
        es, fs = e / sc, f / sc
        if kind == "sylvester" and abs(es - fs) <= tiny * max(1.0 / sc, abs(es), abs(fs)):
            return (
                f"Z_e and Z_f have the same eigenvalues (the n-th roots of e = f = {e!r}); "
                "the Sylvester map Z_e M - M Z_f needs e != f"
            )
        if kind == "stein" and abs(1 - e * f) <= tiny:
            return (
                f"the eigenvalues of Z_e and Z_f multiply to 1 (e * f = {e * f!r}); "
                "the Stein map M - Z_e M Z_f^T needs e * f != 1"
            )
        return None

    @classmethod
    def example(cls, rng, n, r, dtype):
        G, H = randn(rng, (n, r), dtype), randn(rng, (n, r), dtype)
        return Shift(n, 1.0), Shift(n, -1.0), G, H, "sylvester"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A, B, G, H, kind)
        self.e, self.f = _shift_corner(A), _shift_corner(B)
        self.plan = ToeplitzPlan(G, H, self.e, self.f, kind)

    def matmat(self, X):
        return self.plan.matmat(X)

    def rmatmat(self, Y):
        return self.plan.rmatmat(Y)

    def toarray(self):
        G, H, e, f = self.G, self.H, self.e, self.f
        out = np.zeros((G.shape[0], H.shape[0]), dtype=result_dtype(G, H, e, f))
        for i in range(G.shape[1]):
            if self.kind == "sylvester":
                out += fcirc_dense(G[:, i], e) @ fcirc_dense(H[::-1, i], f)
            else:
                out += fcirc_dense(G[:, i], e) @ fcirc_dense(H[:, i], f).T
        out *= 1.0 / (e - f) if self.kind == "sylvester" else 1.0 / (1.0 - e * f)
        if not np.isfinite(out).all():
            # a corner near the overflow threshold: e * g overflows in the dense
            # f-circulants although M itself is moderate; the FFT plan scales it
            out = self.matmat(np.eye(H.shape[0], dtype=out.dtype))
        return out

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(X, dY)
        return {"G": dG, "H": dH, "X": dX}

    def _solve_toeplitz(self, B: np.ndarray, transposed: bool, where: str) -> np.ndarray:
        """``T^{-1} B`` or ``T^{-T} B`` for the Toeplitz-like T of the plan."""
        if self.kind == "sylvester":
            G, H, e, f = self.G, self.H, self.e, self.f
        else:
            (G, H), e, f = _stein_to_sylvester(self), 1.0, -1.0
        if e == 0 or f == 0:
            (G, H), e, f = _sylvester_to_standard(self), 1.0, -1.0
        return _toeplitz_sylvester_solve(G, H, e, f, B, transposed, where)

    def solve(self, B, *, transposed, where):
        return self._solve_toeplitz(B, transposed, where)


class RectToeplitzFamily(ToeplitzFamily):
    """Rectangular Stein Toeplitz-like, pair ``(Z_0 (m), Z_0^T (n))`` with m != n.

    ``M`` is the leading m x n block of the N x N (N = max(m, n)) Stein
    Toeplitz-like matrix with zero-padded generators, because truncation
    commutes with the down-shift: ``(Z_0^k [G; 0])[:m] = Z_0^k G``.

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import RectToeplitzFamily
    >>> RectToeplitzFamily.recognises(ld.Shift(3), ld.Shift(5).T, "stein")
    True
    """

    square = False
    pairs = "rectangular toeplitz: (Shift(m), Shift(n).T) stein"

    @classmethod
    def recognises(cls, A, B, kind):
        return (
            A.n != B.n
            and kind == "stein"
            and is_op(A, Shift)
            and is_op(B, Shift, True)
            and A.f == 0
            and B.base.f == 0
        )

    @classmethod
    def example(cls, rng, n, r, dtype):
        m = n + 1
        G, H = randn(rng, (m, r), dtype), randn(rng, (n, r), dtype)
        return Shift(m, 0.0), Shift(n, 0.0).T, G, H, "stein"

    def __init__(self, A, B, G, H, kind):
        LDRFamily.__init__(self, A, B, G, H, kind)
        self.m, self.n = G.shape[0], H.shape[0]
        self.N = max(self.m, self.n)
        self.e = self.f = 0.0
        self.plan = ToeplitzPlan(self._pad(G), self._pad(H), 0.0, 0.0, "stein")

    def _pad(self, X):
        if X.shape[0] == self.N:
            return X
        out = np.zeros((self.N, *X.shape[1:]), dtype=X.dtype)
        out[: X.shape[0]] = X
        return out

    def matmat(self, X):
        return self.plan.matmat(self._pad(X))[: self.m]

    def rmatmat(self, Y):
        return self.plan.rmatmat(self._pad(Y))[: self.n]

    def toarray(self):
        G, H = self.G, self.H
        out = np.zeros((self.m, self.n), dtype=result_dtype(G, H))
        for i in range(G.shape[1]):
            out += (
                fcirc_dense(self._pad(G[:, i]), 0.0)[: self.m]
                @ fcirc_dense(self._pad(H[:, i]), 0.0)[: self.n].T
            )
        return out

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(self._pad(X), self._pad(dY))
        return {"G": dG[: self.m], "H": dH[: self.n], "X": dX[: self.n]}

    def solve(self, B, *, transposed, where):  # never square: LDRMatrix refuses first
        return LDRFamily.solve(self, B, transposed=transposed, where=where)


class HankelFamily(ToeplitzFamily):
    """Hankel-like ``M = J T`` (T Toeplitz-like with generators ``(J G, H)``):
    Sylvester ``(Z_e^T, Z_f)``, Stein ``(Z_e^T, Z_f^T)``.

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import HankelFamily
    >>> HankelFamily.recognises(ld.Shift(4, 1.0).T, ld.Shift(4, -1.0), "sylvester")
    True
    """

    name = "hankel"
    pairs = "hankel: (Shift(n, e).T, Shift(n, f)) sylvester, (Shift(n, e).T, Shift(n, f).T) stein"

    @classmethod
    def recognises(cls, A, B, kind):
        return is_op(A, Shift, True) and is_op(B, Shift, kind == "stein")

    @classmethod
    def example(cls, rng, n, r, dtype):
        G, H = randn(rng, (n, r), dtype), randn(rng, (n, r), dtype)
        return Shift(n, 1.0).T, Shift(n, -1.0), G, H, "sylvester"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A.base, B, G[::-1], H, kind)
        self.A = A

    def matmat(self, X):
        return self.plan.matmat(X)[::-1]

    def rmatmat(self, Y):
        return self.plan.rmatmat(Y[::-1])

    def toarray(self):
        return super().toarray()[::-1].copy()

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(X, dY[::-1])
        return {"G": dG[::-1].copy(), "H": dH, "X": dX}

    def solve(self, B, *, transposed, where):
        # M = J T: M x = b <=> T x = J b;  M^T x = T^T J x = b <=> x = J T^{-T} b
        if transposed:
            return self._solve_toeplitz(B, True, where)[::-1]
        return self._solve_toeplitz(B[::-1], False, where)


class HankelRightFamily(ToeplitzFamily):
    """Hankel-like ``M = T J`` (T Toeplitz-like with generators ``(G, J H)``):
    Sylvester ``(Z_e, Z_f^T)``, Stein ``(Z_e, Z_f)``.

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import HankelRightFamily
    >>> HankelRightFamily.recognises(ld.Shift(4, 1.0), ld.Shift(4, -1.0).T, "sylvester")
    True
    """

    name = "hankel"
    pairs = "hankel: (Shift(n, e), Shift(n, f).T) sylvester, (Shift(n, e), Shift(n, f)) stein"

    @classmethod
    def recognises(cls, A, B, kind):
        return is_op(A, Shift) and is_op(B, Shift, kind == "sylvester")

    @classmethod
    def example(cls, rng, n, r, dtype):
        G, H = randn(rng, (n, r), dtype), randn(rng, (n, r), dtype)
        return Shift(n, 1.0), Shift(n, -1.0).T, G, H, "sylvester"

    def __init__(self, A, B, G, H, kind):
        Bt = B.base if kind == "sylvester" else B.T
        super().__init__(A, Bt, G, H[::-1], kind)
        self.B = B

    def matmat(self, X):
        return self.plan.matmat(X[::-1])

    def rmatmat(self, Y):
        return self.plan.rmatmat(Y)[::-1]

    def toarray(self):
        return super().toarray()[:, ::-1].copy()

    def vjp(self, X, dY):
        dG, dH, dX = self.plan.vjp(X[::-1], dY)
        return {"G": dG, "H": dH[::-1].copy(), "X": dX[::-1].copy()}

    def solve(self, B, *, transposed, where):
        # M = T J: M x = b <=> x = J T^{-1} b;  M^T x = J T^T x = b <=> T^T x = J b
        if transposed:
            return self._solve_toeplitz(B[::-1], True, where)
        return self._solve_toeplitz(B, False, where)[::-1]
