"""Spectral-norm estimation with a-posteriori error bounds (private)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.sparse.linalg import aslinearoperator

from lowdisp._validation import (
    as_array,
    as_rng,
    check_bool,
    check_finite,
    check_int,
    check_option,
    check_positive,
    ldexp,
    max_abs,
    pow2_exponent,
)
from lowdisp.spectral._common import MAX_DENSIFY, is_operator, safe_norm

__all__ = ["NormEstimate", "spectral_norm", "spectral_normalize"]


@dataclass(frozen=True, eq=False)
class NormEstimate:
    """An estimate of ‖A‖₂ with its singular vectors and an error estimate.

    Attributes
    ----------
    value : float
        The estimate σ (a Ritz value: never above ‖A‖₂ except by rounding).
    u : (m,) ndarray
        Left singular vector estimate (unit), ``A v ≈ value·u``.
    v : (n,) ndarray
        Right singular vector estimate (unit); pass it as ``v0`` to warm-start
        the next estimate of a slowly changing matrix.
    n_matvecs : int
        Products with A or Aᴴ used.
    converged : bool
        Whether ``error_bound <= tol·value`` was reached.
    error_bound : float
        A-posteriori bound on ‖A‖₂ − value (absolute): ``min(r, r²/gap)`` from
        the residual r = ‖Aᴴu − σv‖ and the Ritz gap (see
        :func:`spectral_norm`); 0 for ``method="dense"`` up to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import spectral_norm
    >>> est = spectral_norm(np.diag([3.0, 1.0]))
    >>> round(est.value, 12), est.converged
    (3.0, True)
    """

    value: float
    u: np.ndarray
    v: np.ndarray
    n_matvecs: int
    converged: bool
    error_bound: float


class _Op:
    """Products with A and Aᴴ, counting them."""

    def __init__(self, A: Any, *, where: str) -> None:
        if is_operator(A):
            op = aslinearoperator(A)
            shape = tuple(op.shape)
            if len(shape) != 2 or 0 in shape:
                raise ValueError(f"{where}: A must be a non-empty 2-D operator; got shape {shape}")
            dt = np.dtype(op.dtype) if op.dtype is not None else np.dtype(np.float64)
            self._mv: Callable[[np.ndarray], np.ndarray] = op.matvec
            self._rmv: Callable[[np.ndarray], np.ndarray] = op.rmatvec
            self._mm: Callable[[np.ndarray], np.ndarray] = op.matmat
            self._rmm: Callable[[np.ndarray], np.ndarray] = op.rmatmat
            self.dense: np.ndarray | None = None
            self.exp: int | None = None  # set from the first product (see _scaled)
            self._rescale = True
        else:
            arr = as_array(A, "A", where=where, ndim=2)
            if arr.size == 0:
                raise ValueError(f"{where}: A must not be empty; got shape {arr.shape}")
            dt = arr.dtype
            work = arr.astype(np.complex128 if dt.kind == "c" else np.float64, copy=False)
            self.exp = _exponent(float(max_abs(work)))
            if self.exp:
                work = ldexp(work, -self.exp)  # exact: a power of two
            self._rescale = False  # the array itself is scaled
            self.dense = work
            AH = work.conj().T if dt.kind == "c" else work.T
            self._mv = self._mm = work.dot
            self._rmv = self._rmm = AH.dot
            shape = arr.shape
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dt
        self.complex = dt.kind == "c"
        self.work_dtype = np.dtype(np.complex128 if self.complex else np.float64)
        self.count = 0
        self.where = where

    def _scaled(self, y: np.ndarray) -> np.ndarray:
        """Products of an operator divided by ``scale``, a power of two fixed by the
        first product, so that entries near 1e-300 or 1e300 neither underflow nor
        overflow in the iterations (the value is multiplied back at the end)."""
        if not self._rescale:
            return y.astype(self.work_dtype, copy=False)
        # a user operator can break its own contract: say so instead of a ComplexWarning
        # (and a dropped imaginary part) or an "SVD did not converge" on NaN
        if y.dtype.kind == "c" and not self.complex:
            raise TypeError(
                f"{self.where}: A declares the real dtype {self.dtype} but its products are "
                f"complex ({y.dtype}); give the operator a complex dtype"
            )
        y = y.astype(self.work_dtype, copy=False)
        if not np.isfinite(y).all():
            raise ValueError(f"{self.where}: a product with A returned NaN or Inf entries")
        if self.exp is None:
            self.exp = _exponent(float(max_abs(y)))
        return ldexp(y, -self.exp) if self.exp else y

    def mv(self, x: np.ndarray) -> np.ndarray:
        self.count += 1
        return self._scaled(np.asarray(self._mv(x)).reshape(-1))

    def mm(self, X: np.ndarray) -> np.ndarray:
        self.count += X.shape[1]
        return self._scaled(np.asarray(self._mm(X)))

    def rmm(self, X: np.ndarray) -> np.ndarray:
        self.count += X.shape[1]
        return self._scaled(np.asarray(self._rmm(X)))

    def rmv(self, x: np.ndarray) -> np.ndarray:
        self.count += 1
        return self._scaled(np.asarray(self._rmv(x)).reshape(-1))


def _exponent(big: float) -> int:
    """0 for moderate magnitudes, else e with ``big = f 2**e``, ``0.5 <= f < 1``."""
    if big == 0.0 or not math.isfinite(big) or 1e-150 <= big <= 1e150:
        return 0
    return int(pow2_exponent(big))


def _error(res: float, sigma: float, second: float) -> float:
    gap = sigma - second
    if gap > 0 and np.isfinite(gap):
        return float(min(res, res * res / gap))
    return float(res)


def _start(op: _Op, v0: Any, rng: np.random.Generator, where: str) -> np.ndarray:
    n = op.shape[1]
    if v0 is None:
        v = rng.standard_normal(n)
        if op.complex:
            v = v + 1j * rng.standard_normal(n)
    else:
        va = as_array(v0, "v0", where=where, ndim=1)
        if va.shape[0] != n:
            raise ValueError(f"{where}: v0 must have length {n} (columns of A); got {va.shape[0]}")
        if not op.complex and va.dtype.kind == "c":
            raise TypeError(f"{where}: v0 must be real for a real A")
        v = va.astype(op.work_dtype)
    nv = safe_norm(v)
    if nv == 0:
        raise ValueError(f"{where}: v0 must not be the zero vector")
    return np.asarray(v / nv, dtype=op.work_dtype)


def _lanczos(op: _Op, v: np.ndarray, tol: float, maxiter: int) -> NormEstimate:
    """Golub–Kahan bidiagonalization with full reorthogonalization.

    The Lanczos vectors are stored as the rows of contiguous blocks, so the
    products and each reorthogonalization (classical Gram–Schmidt, twice on
    the right side) are BLAS-2 calls over contiguous memory.
    """
    m, n = op.shape
    # one step past min(m, n) exhausts the smaller space: the bidiagonal is exact
    kmax = min(maxiter, min(m, n) + 1)
    cap = min(kmax + 1, 32)
    V = np.empty((cap, n), dtype=op.work_dtype)
    U = np.empty((cap, m), dtype=op.work_dtype)
    V[0] = v
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    sigma, err, conv = 0.0, np.inf, False
    ub = vb = None
    k = 0
    for k in range(kmax):
        if k + 1 >= cap:
            cap = min(2 * cap, kmax + 1)
            V = np.concatenate([V, np.empty((cap - V.shape[0], n), dtype=V.dtype)])
            U = np.concatenate([U, np.empty((cap - U.shape[0], m), dtype=U.dtype)])
        u = op.mv(V[k])
        if k:
            u -= beta * U[k - 1]
            Uk = U[:k]
            u -= (Uk.conj() @ u) @ Uk
        alpha = safe_norm(u)
        small = 8 * np.finfo(float).eps * max(sigma, alpha if not k else 0.0)
        if alpha <= small:
            # A v_k lies in span(U): the bidiagonal is exact
            alphas.append(0.0)
            betas.append(0.0)
            U[k] = 0.0
            conv = True
        else:
            np.divide(u, alpha, out=U[k])
            alphas.append(alpha)
            w = op.rmv(U[k]) - alpha * V[k]
            Vk = V[: k + 1]
            Vc = Vk.conj() if op.complex else Vk
            w -= (Vc @ w) @ Vk
            w -= (Vc @ w) @ Vk
            beta = safe_norm(w)
            if beta <= 8 * np.finfo(float).eps * max(sigma, alpha):
                beta = 0.0
            betas.append(beta)
            if beta > 0:
                np.divide(w, beta, out=V[k + 1])
        B = np.diag(alphas) + np.diag(betas[:-1], 1)
        Pb, s, Qbh = np.linalg.svd(B)
        sigma = float(s[0])
        res = abs(betas[-1] * Pb[k, 0])
        # the r²/gap bound only once the second Ritz value has converged itself
        # (residual r₂ <= gap/10): before that the Ritz gap can overstate the
        # true one (a near-tie σ₂ ≈ σ₁ not yet found) and stop falsely
        second = -np.inf
        if s.size > 1 and abs(betas[-1] * Pb[k, 1]) <= 0.1 * (sigma - float(s[1])):
            second = float(s[1])
        err = _error(res, sigma, second)
        ub, vb = Pb[:, 0], Qbh[0].conj()
        if conv or betas[-1] == 0.0 or err <= tol * sigma:
            conv = True
            break
    kk = len(alphas)
    assert ub is not None and vb is not None  # kmax >= 1: the loop ran
    u_out = ub @ U[:kk]
    v_out = vb @ V[:kk]
    return NormEstimate(sigma, _unit(u_out), _unit(v_out), op.count, conv, err)


def _unit(x: np.ndarray) -> np.ndarray:
    nx = safe_norm(x)
    return x / nx if nx > 0 else x


def _power(op: _Op, v: np.ndarray, tol: float, maxiter: int) -> NormEstimate:
    """Power iteration on AᴴA; the gap is estimated from the residual decay."""
    sigma, err, conv = 0.0, np.inf, False
    u = op.mv(v)
    r_old = np.inf
    for _ in range(maxiter):
        sigma = safe_norm(u)
        if sigma == 0:
            return NormEstimate(0.0, u, v, op.count, True, 0.0)
        u = u / sigma
        w = op.rmv(u)
        res = safe_norm(w - sigma * v)
        ratio = res / r_old if np.isfinite(r_old) and r_old > 0 else 1.0
        second = sigma * np.sqrt(ratio) if ratio < 1 else -np.inf
        err = _error(res, sigma, second)
        r_old = res
        if err <= tol * sigma or res == 0:
            conv = True
            break
        v = w / safe_norm(w)
        u = op.mv(v)
    return NormEstimate(sigma, u, v, op.count, conv, err)


def _randomized(
    op: _Op, v: np.ndarray, tol: float, maxiter: int, rng: np.random.Generator, block: int = 10
) -> NormEstimate:
    """Randomized block subspace iteration (Halko–Martinsson–Tropp) with Rayleigh–Ritz."""
    m, n = op.shape
    b = min(block, m, n)
    Om = rng.standard_normal((n, b))
    if op.complex:
        Om = Om + 1j * rng.standard_normal((n, b))
    Om[:, 0] = v
    Q = np.linalg.qr(op.mm(Om))[0]
    sigma, err, conv = 0.0, np.inf, False
    ut = vt = None
    for _ in range(maxiter):
        W = op.rmm(Q)  # Aᴴ Q
        Ub, s, Vbh = np.linalg.svd(W.conj().T, full_matrices=False)  # Qᴴ A = Ub S Vbh
        sigma = float(s[0])
        ut = Q @ Ub[:, 0]
        vt = Vbh[0].conj()
        res = safe_norm(op.mv(vt) - sigma * ut)
        err = _error(res, sigma, float(s[1]) if s.size > 1 else -np.inf)
        if err <= tol * sigma or res == 0:
            conv = True
            break
        Z = np.linalg.qr(W)[0]
        Q = np.linalg.qr(op.mm(Z))[0]
    assert ut is not None and vt is not None
    return NormEstimate(sigma, _unit(ut), _unit(vt), op.count, conv, err)


def _dense(op: _Op) -> NormEstimate:
    if op.dense is not None:
        M = op.dense
    else:
        n = op.shape[1]
        M = op.mm(np.eye(n, dtype=op.work_dtype))
    U, s, Vh = sla.svd(M, full_matrices=False)
    sigma = float(s[0])
    err = float(np.finfo(float).eps * max(M.shape) * sigma)
    return NormEstimate(sigma, U[:, 0], Vh[0].conj(), op.count, True, err)


def _iterative(
    core: Callable[..., NormEstimate],
    default_maxiter: Callable[[_Op], int],
    *,
    with_rng: bool = False,
) -> Callable[..., NormEstimate]:
    """A table entry for an iterative method: its start vector and iteration budget."""

    def run(
        op: _Op, v0: np.ndarray | None, tol: float, maxiter: int | None, gen: Any, where: str
    ) -> NormEstimate:
        it = default_maxiter(op) if maxiter is None else maxiter
        v = v0 if v0 is not None else _start(op, None, gen, where)
        return core(op, v, tol, it, gen) if with_rng else core(op, v, tol, it)

    return run


def _dense_method(
    op: _Op, v0: np.ndarray | None, tol: float, maxiter: int | None, gen: Any, where: str
) -> NormEstimate:
    """The table entry of ``method="dense"`` (the iteration options are ignored)."""
    if op.dense is None and min(op.shape) > MAX_DENSIFY:
        m, n = op.shape
        raise ValueError(
            f"{where}: method='dense' would form this {m} x {n} operator "
            f"({m * n * op.work_dtype.itemsize / 2**30:.1f} GiB); it densifies operators "
            f"only up to min(m, n) = {MAX_DENSIFY}: use method='lanczos'"
        )
    return _dense(op)


#: method name -> core ``(op, v0, tol, maxiter, rng, where) -> NormEstimate``
_METHODS: dict[str, Callable[..., NormEstimate]] = {
    "power": _iterative(_power, lambda op: 5000),
    "lanczos": _iterative(_lanczos, lambda op: min(min(op.shape) + 1, 500)),
    "randomized": _iterative(_randomized, lambda op: 500, with_rng=True),
    "dense": _dense_method,
}
#: every accepted name (``"auto"`` picks one of the table by the size of A)
_METHOD_NAMES = ("auto", *_METHODS)
_DENSE_BELOW = 64


def _auto_method(op: _Op) -> str:
    """``"dense"`` for small arrays, ``"lanczos"`` otherwise."""
    return "dense" if op.dense is not None and min(op.shape) <= _DENSE_BELOW else "lanczos"


def spectral_norm(
    A: Any,
    *,
    method: str = "auto",
    tol: float = 1e-10,
    maxiter: int | None = None,
    v0: Any = None,
    rng: Any = None,
) -> NormEstimate:
    r"""Spectral norm ‖A‖₂ = σ_max(A) of a matrix or LinearOperator, with an error estimate.

    Parameters
    ----------
    A : (m, n) array_like or LinearOperator
        Any matrix; a LinearOperator (LDR matrices included) is used only
        through ``matvec``/``rmatvec``, never densified (except by
        ``method="dense"``).
    method : {"auto", "lanczos", "power", "randomized", "dense"}
        ``"lanczos"``: Golub–Kahan bidiagonalization with full
        reorthogonalization (the default for anything but small arrays);
        ``"power"``: power iteration on AᴴA; ``"randomized"``: block subspace
        iteration (block 10) with Rayleigh–Ritz; ``"dense"``: a full SVD;
        ``"auto"``: ``"dense"`` for arrays with min(m, n) ≤ 64, else
        ``"lanczos"``.
    tol : float
        Relative target for ``error_bound / value`` (default 1e-10).
    maxiter : int, optional
        Iterations (default: min(m, n, 500) for Lanczos, 5000 for power,
        500 for randomized).
    v0 : (n,) array_like, optional
        Start vector (e.g. ``previous.v`` to track a weight during training).
    rng : optional
        Seed for the random start.

    Returns
    -------
    NormEstimate
        ``value``, ``u``, ``v``, ``n_matvecs``, ``converged``, ``error_bound``.

    Raises
    ------
    ValueError
        A empty, not 2-D or not finite; ``tol`` not in (0, 1); bad ``v0``.

    Notes
    -----
    After k Golub–Kahan steps A V_k = U_k B_k and
    Aᴴ U_k = V_k B_kᵀ + β_k v_{k+1} e_kᵀ. With the top singular triplet
    (σ, p, q) of B_k, ũ = U_k q and ṽ = V_k p satisfy A ṽ = σ ũ exactly and
    ‖Aᴴ ũ − σ ṽ‖ = r = β_k |e_kᵀ q|, so some singular value lies within r
    of σ, and within r²/δ when the others are at least δ away (δ estimated
    by the Ritz gap σ − σ₂(B_k), used only once the second Ritz value has
    converged itself, residual ≤ δ/10: an unresolved near-tie σ₂ ≈ σ₁ makes
    the Ritz gap overstate δ). The method stops when
    ``min(r, r²/δ) <= tol·σ``. σ is a Ritz value, hence a lower bound of ‖A‖₂;
    ``error_bound`` estimates the distance to it (rigorous when the Ritz gap
    does not overestimate the true gap, as in exact arithmetic once σ₂ has
    converged). Change-based stopping rules stop falsely on tiny gaps;
    residual rules do not.

    References
    ----------
    G. Golub and W. Kahan, "Calculating the singular values and
    pseudo-inverse of a matrix", SIAM J. Numer. Anal. B 2 (1965).
    N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with
    randomness", SIAM Rev. 53 (2011).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import spectral_norm
    >>> A = np.random.default_rng(0).standard_normal((300, 200))
    >>> est = spectral_norm(A, method="lanczos", rng=0)
    >>> bool(abs(est.value / np.linalg.norm(A, 2) - 1) < 1e-10), est.converged
    (True, True)
    >>> from scipy.sparse.linalg import aslinearoperator
    >>> bool(abs(spectral_norm(aslinearoperator(A), rng=0).value - est.value) < 1e-8)
    True
    """
    where = "spectral_norm"
    check_option(method, "method", _METHOD_NAMES, where=where)
    tol = check_positive(tol, "tol", where=where)
    if tol >= 1:
        raise ValueError(f"{where}: tol must be in (0, 1); got {tol!r}")
    op = _Op(A, where=where)
    if op.dense is not None:
        check_finite(op.dense, "A", where=where)
    if op.dtype.itemsize <= (8 if op.complex else 4):
        tol = max(tol, 1e-6)  # single precision products cannot certify more
    gen = as_rng(rng, where=where)
    # validate every argument whatever the method (the dense path ignores them)
    if maxiter is not None:
        maxiter = check_int(maxiter, "maxiter", where=where, low=1)
    v_start = _start(op, v0, gen, where) if v0 is not None else None
    core = _METHODS[_auto_method(op) if method == "auto" else method]
    est = core(op, v_start, tol, maxiter, gen, where)
    out_dt = np.result_type(op.dtype, np.float32)
    ex = op.exp or 0
    with np.errstate(over="ignore"):
        value, bound = (float(ldexp(np.float64(v), ex)) for v in (est.value, est.error_bound))
    if not math.isfinite(value):
        raise ValueError(
            f"{where}: ‖A‖₂ overflows: it exceeds the largest float "
            f"({np.finfo(np.float64).max:.3g}); scale A down first"
        )
    return NormEstimate(
        value,
        est.u.astype(out_dt, copy=False),
        est.v.astype(out_dt, copy=False),
        est.n_matvecs,
        est.converged,
        bound,
    )


def spectral_normalize(
    W: Any,
    *,
    target: float = 1.0,
    clip: bool = False,
    method: str = "auto",
    tol: float = 1e-10,
    rng: Any = None,
) -> Any:
    """Scale W so that its spectral norm equals ``target`` (or at most ``target``).

    Parameters
    ----------
    W : (m, n) array_like or LinearOperator
        The weight.
    target : float
        The spectral norm after scaling (> 0).
    clip : bool
        If True, scale only when ‖W‖₂ > target (spectral-norm clipping).
    method, tol, rng
        Passed to :func:`spectral_norm`.

    Returns
    -------
    ndarray or LinearOperator
        ``W · target/‖W‖₂``, of W's type (an array keeps its dtype; an
        operator becomes a scaled LinearOperator).

    Raises
    ------
    ValueError
        W is zero (its norm cannot be set), or a bad ``target``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import spectral_normalize
    >>> W = spectral_normalize(np.array([[3.0, 0.0], [0.0, 1.0]]), target=0.5)
    >>> W.tolist()
    [[0.5, 0.0], [0.0, 0.16666666666666666]]
    """
    where = "spectral_normalize"
    target = check_positive(target, "target", where=where)
    clip = check_bool(clip, "clip", where=where)
    check_option(method, "method", _METHOD_NAMES, where=where)
    check_positive(tol, "tol", where=where)
    if tol >= 1:
        raise ValueError(f"{where}: tol must be in (0, 1); got {tol!r}")
    rng = as_rng(rng, where=where)
    if not is_operator(W):
        W = as_array(W, "W", where=where, ndim=2)
        if W.size == 0:
            raise ValueError(f"{where}: W must not be empty; got shape {W.shape}")
    est = spectral_norm(W, method=method, tol=tol, rng=rng)
    if est.value == 0:
        raise ValueError(f"{where}: W is zero; its spectral norm cannot be set to {target}")
    if clip and est.value <= target:
        return aslinearoperator(W) if is_operator(W) else W
    if is_operator(W):
        scale = target / est.value
        if not math.isfinite(scale):
            raise ValueError(
                f"{where}: target/‖W‖₂ = {target!r}/{est.value!r} overflows; scale W first"
            )
        return aslinearoperator(W) * scale
    # W/‖W‖₂ first (entries <= 1): no overflow of target/‖W‖₂ for tiny W
    with np.errstate(over="raise"):
        try:
            out = (W / est.value) * target
        except FloatingPointError:
            raise ValueError(f"{where}: W·target/‖W‖₂ overflows for target={target!r}") from None
    return out.astype(W.dtype, copy=False)
