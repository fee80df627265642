"""Spectral-RNN: W = U diag(sigma) V^T with Householder U, V and bounded singular values."""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_array, as_rng, check_int, check_positive
from lowdisp.exceptions import NotOnManifoldError, RankError
from lowdisp.orthogonal._base import _Param, check_real_dtype
from lowdisp.orthogonal._householder import (
    _apply,
    _apply_vjp,
    _as_block,
    _check_reflectors,
    _plan,
    reflectors_for,
)

__all__ = ["SVDParam"]


def _sigmoid(p: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * p))


class SVDParam(_Param):
    """Spectrally bounded ``m x n`` matrix ``W = U diag(sigma) V^T`` (Spectral-RNN).

    Parameters
    ----------
    m, n : int
        Shape of ``W``.
    k : int, optional
        Reflectors per orthogonal factor, capped at ``m`` for ``U`` and ``n``
        for ``V`` (default: full, ``m`` and ``n``).
    sigma_star : float
        Centre ``sigma*`` of the singular-value band (> 0).
    margin : float
        Half-width ``r`` of the band, ``0 < r <= sigma_star``.
    dtype : {float64, float32}

    Attributes
    ----------
    m, n, r : int
        ``r = min(m, n)`` singular values.
    ku, kv : int
        Reflectors of ``U`` (length ``m``) and ``V`` (length ``n``).
    theta_shape : tuple
        ``(m ku + n kv + r,)``: ``[U reflectors (m, ku) row-major,
        V reflectors (n, kv) row-major, p (r,)]``; see :meth:`split`.
    dtype, theta_dtype : numpy.dtype
    is_complex : bool
        False.

    Notes
    -----
    ``U = H(u_1) ... H(u_ku)``, ``V = H(v_1) ... H(v_kv)`` and

    .. math:: \\sigma = 2 r\\left(\\operatorname{sigmoid}(p) - \\tfrac12\\right)
              + \\sigma^{*} \\in (\\sigma^{*} - r, \\sigma^{*} + r),

    so every singular value of ``W`` (and its condition number) stays in a
    band; ``p = 0`` gives ``sigma = sigma*``. The VJP is two compact-WY
    pullbacks (:func:`householder_apply_vjp`) and
    ``dL/dp = dL/dsigma * 2 r s (1 - s)``. :meth:`apply` multiplies in
    ``O((m + n) k b)`` without forming ``W``. With full reflector counts the
    reachable set is ``{U S V^T: det U = (-1)^ku, det V = (-1)^kv}``; for
    square ``W`` that means ``sign det W = (-1)^(ku + kv)``.

    References
    ----------
    J. Zhang, Q. Lei, I. S. Dhillon, "Stabilizing gradients for deep neural
    networks via efficient SVD parameterization", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import SVDParam
    >>> sp = SVDParam(5, 3, margin=0.1)
    >>> theta = sp.sample(rng=0)
    >>> W, cache = sp.forward(theta)
    >>> s = np.linalg.svd(W, compute_uv=False)
    >>> bool(np.all((s > 0.9) & (s < 1.1)))
    True
    >>> sp.vjp(cache, np.ones((5, 3))).shape == sp.theta_shape
    True
    """

    name = "svd"

    def __init__(
        self,
        m: int,
        n: int,
        *,
        k: int | None = None,
        sigma_star: float = 1.0,
        margin: float = 0.01,
        dtype: Any = np.float64,
    ) -> None:
        where = "SVDParam"
        self.m = check_int(m, "m", where=where, low=1)
        self.n = check_int(n, "n", where=where, low=1)
        self.r = min(self.m, self.n)
        if k is None:
            self.ku, self.kv = self.m, self.n
        else:
            try:
                kk = check_int(k, "k", where=where, low=1)
            except ValueError as exc:
                raise RankError(str(exc)) from exc
            self.ku, self.kv = min(kk, self.m), min(kk, self.n)
        self.sigma_star = check_positive(sigma_star, "sigma_star", where=where)
        self.margin = check_positive(margin, "margin", where=where)
        if self.margin > self.sigma_star:
            raise ValueError(
                f"{where}: margin must be <= sigma_star (singular values stay >= 0); "
                f"got margin={margin}, sigma_star={sigma_star}"
            )
        self.dtype = self.theta_dtype = check_real_dtype(dtype, where)
        self._nu = self.m * self.ku
        self._nv = self.n * self.kv
        self.theta_shape = (self._nu + self._nv + self.r,)

    def split(self, theta: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views ``(U reflectors (m, ku), V reflectors (n, kv), p (r,))`` of ``theta``.

        Examples
        --------
        >>> from lowdisp.orthogonal import SVDParam
        >>> [a.shape for a in SVDParam(3, 2).split(SVDParam(3, 2).sample(rng=0))]
        [(3, 3), (2, 2), (2,)]
        """
        t = self._theta(theta, "split")
        return self._split(t)

    def _split(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Vu = t[: self._nu].reshape(self.m, self.ku)
        Vv = t[self._nu : self._nu + self._nv].reshape(self.n, self.kv)
        return Vu, Vv, t[self._nu + self._nv :]

    def sigma(self, theta: Any) -> np.ndarray:
        """The singular values ``2 r (sigmoid(p) - 1/2) + sigma*``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> sp = SVDParam(2, 2)
        >>> bool(sp.sigma(np.zeros(sp.theta_shape) + 1.0)[0] > 1.0)
        True
        """
        return self._sigma(self.split(theta)[2])[0]

    def _sigma(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = _sigmoid(p)
        return (2.0 * self.margin * (s - 0.5) + self.sigma_star).astype(self.dtype), s

    def sample(self, *, rng: Any = None) -> np.ndarray:
        """Random reflectors (standard normal) and ``p = 0``, i.e. ``sigma = sigma*``.

        Examples
        --------
        >>> from lowdisp.orthogonal import SVDParam
        >>> SVDParam(3, 3).sample(rng=0)[-3:]
        array([0., 0., 0.])
        """
        gen = as_rng(rng)
        t = np.zeros(self.theta_shape, dtype=self.dtype)
        t[: self._nu + self._nv] = gen.standard_normal(self._nu + self._nv)
        return t

    def _prepare(self, theta: Any, where: str) -> tuple[Any, ...]:
        t = self._theta(theta, where)
        Vu, Vv, p = self._split(t)
        _check_reflectors(Vu, None, f"SVDParam.{where} (U reflectors)")
        _check_reflectors(Vv, None, f"SVDParam.{where} (V reflectors)")
        return _plan(Vu, None), _plan(Vv, None), p

    def forward(self, theta: Any) -> tuple[np.ndarray, Any]:
        """``W = U diag(sigma) V^T`` and the cache for :meth:`vjp`.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> sp = SVDParam(3, 3)
        >>> W, _ = sp.forward(sp.sample(rng=0))
        >>> bool(np.allclose(W.T @ W, np.eye(3)))   # p = 0: sigma = 1
        True
        """
        # a copy: the cache must not follow later in-place updates of theta
        t = np.array(self._theta(theta, "forward"), copy=True)
        pu, pv, p = self._prepare(t, "forward")
        sig, s = self._sigma(p)
        E = np.eye(self.n, self.r, dtype=self.dtype)
        Vr, saved_v = _apply(pv, E, False)  # (n, r): first r columns of V
        M = np.zeros((self.m, self.n), dtype=self.dtype)
        M[: self.r] = sig[:, None] * Vr.T
        W, saved_u = _apply(pu, M, False)
        return W, (pu, pv, saved_u, saved_v, M, E, Vr, sig, s)

    def vjp(self, cache: Any, dW: Any) -> np.ndarray:
        """Gradient of ``L`` in ``theta`` (layout of :meth:`split`).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> sp = SVDParam(3, 2)
        >>> W, cache = sp.forward(sp.sample(rng=0))
        >>> bool(sp.vjp(cache, np.zeros((3, 2))).any())
        False
        """
        G = self._cotangent(dW, "vjp")
        pu, pv, saved_u, saved_v, M, E, Vr, sig, s = cache
        gU, gM, _ = _apply_vjp(pu, M, G, False, saved_u)
        assert gM is not None
        gMr = gM[: self.r]
        gsig = np.sum(gMr * Vr.T, axis=1)
        gVr = (sig[:, None] * gMr).T
        gV, _, _ = _apply_vjp(pv, E, gVr, False, saved_v, need_x=False)
        gp = gsig * (2.0 * self.margin) * s * (1.0 - s)
        return np.concatenate([gU.ravel(), gV.ravel(), gp]).astype(self.dtype, copy=False)

    def apply(self, theta: Any, X: Any) -> np.ndarray:
        """``W X`` in ``O((m + n) k b)`` without forming ``W``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> sp = SVDParam(4, 3, k=2)
        >>> th = sp.sample(rng=0)
        >>> x = np.arange(3.0)
        >>> bool(np.allclose(sp.apply(th, x), sp.forward(th)[0] @ x))
        True
        """
        pu, pv, p = self._prepare(theta, "apply")
        Xa, vec = _as_block(X, "X", self.n, "SVDParam.apply", allow_complex=False)
        out = self._apply_core(pu, pv, p, Xa.astype(self.dtype, copy=False))[0]
        return out[:, 0] if vec else out

    def _apply_core(self, pu: Any, pv: Any, p: np.ndarray, X: np.ndarray) -> tuple:
        sig, s = self._sigma(p)
        Z, saved_v = _apply(pv, X, True)  # V^T X
        M = np.zeros((self.m, X.shape[1]), dtype=self.dtype)
        M[: self.r] = sig[:, None] * Z[: self.r]
        out, saved_u = _apply(pu, M, False)
        return out, (saved_u, saved_v, Z, M, sig, s)

    def apply_vjp(self, theta: Any, X: Any, dY: Any) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(dtheta, dX)`` of ``L = <dY, W X>`` without forming ``W``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> sp = SVDParam(4, 3, k=2)
        >>> dth, dX = sp.apply_vjp(sp.sample(rng=0), np.ones((3, 5)), np.ones((4, 5)))
        >>> dth.shape == sp.theta_shape, dX.shape
        (True, (3, 5))
        """
        where = "SVDParam.apply_vjp"
        pu, pv, p = self._prepare(theta, "apply_vjp")
        Xa, vec = _as_block(X, "X", self.n, where, allow_complex=False)
        Ga, _ = _as_block(dY, "dY", self.m, where, allow_complex=False)
        if Ga.shape[1] != Xa.shape[1] or Ga.ndim != Xa.ndim or np.ndim(dY) != np.ndim(X):
            raise ValueError(
                f"{where}: dY must have shape ({self.m},) + X.shape[1:]; "
                f"got X {np.shape(X)}, dY {np.shape(dY)}"
            )
        Xa = Xa.astype(self.dtype, copy=False)
        Ga = Ga.astype(self.dtype, copy=False)
        _, (saved_u, saved_v, Z, M, sig, s) = self._apply_core(pu, pv, p, Xa)
        gU, gM, _ = _apply_vjp(pu, M, Ga, False, saved_u)
        assert gM is not None
        gZ = np.zeros_like(Z)
        gZ[: self.r] = sig[:, None] * gM[: self.r]
        gsig = np.sum(gM[: self.r] * Z[: self.r], axis=1)
        gV, gX, _ = _apply_vjp(pv, Xa, gZ, True, saved_v)
        assert gX is not None
        gp = gsig * (2.0 * self.margin) * s * (1.0 - s)
        dtheta = np.concatenate([gU.ravel(), gV.ravel(), gp]).astype(self.dtype, copy=False)
        return dtheta, (gX[:, 0] if vec else gX)

    def right_inverse(self, W: Any, *, tol: float | None = None) -> np.ndarray:
        """``theta`` from the SVD of ``W`` (singular values strictly inside the band).

        Raises
        ------
        NotOnManifoldError
            If a singular value is outside ``(sigma* - r, sigma* + r)``, the
            determinant signs cannot be matched, or ``k`` is too small.

        Notes
        -----
        The factors come from :func:`numpy.linalg.svd`, which fixes them only
        up to the order and signs of the singular vectors; with fewer
        reflectors than ``m`` (``n``) they generally need more reflectors
        than ``k`` even when ``W`` was produced by this map, and the call
        raises. Full reflector counts (``k=None``) always work.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> sp = SVDParam(4, 3, margin=0.1)
        >>> W = sp.forward(sp.sample(rng=0) + 0.3)[0]
        >>> bool(np.allclose(sp.forward(sp.right_inverse(W))[0], W, atol=1e-10))
        True
        """
        where = "SVDParam.right_inverse"
        self._tol(tol)  # validated only: the band test below is strict
        Wa = self._matrix(W, "right_inverse").astype(np.float64)
        U, sv, Vt = np.linalg.svd(Wa)
        lo, hi = self.sigma_star - self.margin, self.sigma_star + self.margin
        if not (sv.min() > lo and sv.max() < hi):
            raise NotOnManifoldError(
                f"{where}: singular values must lie in ({lo:g}, {hi:g}); "
                f"got range [{sv.min():.6g}, {sv.max():.6g}]"
            )
        V = Vt.T
        r = self.r
        ok_u = np.linalg.det(U) * (-1) ** self.ku > 0
        ok_v = np.linalg.det(V) * (-1) ** self.kv > 0
        # free sign choices: a pair (u_1, v_1) together, and any column beyond r
        if not ok_u and not ok_v:
            U[:, 0] *= -1
            V[:, 0] *= -1
        elif not ok_u or not ok_v:
            bad, other = (U, V) if not ok_u else (V, U)
            if bad.shape[0] > r:
                bad[:, -1] *= -1
            elif other.shape[0] > r:
                bad[:, 0] *= -1
                other[:, 0] *= -1
                other[:, -1] *= -1
            else:
                raise NotOnManifoldError(
                    f"{where}: sign(det W) = {np.sign(np.linalg.det(Wa)):+.0f} but this map "
                    f"reaches only (-1)^(ku + kv) = {(-1) ** (self.ku + self.kv):+d}; "
                    "change k by one"
                )
        Vu = reflectors_for(U, self.ku, where)
        Vv = reflectors_for(V, self.kv, where)
        q = np.clip((sv - self.sigma_star) / (2.0 * self.margin) + 0.5, 1e-300, 1.0)
        p = np.log(q) - np.log1p(-q)
        return np.concatenate([Vu.ravel(), Vv.ravel(), p]).astype(self.dtype)

    def in_manifold(self, W: Any, *, tol: float | None = None) -> bool:
        """Whether all singular values of ``W`` lie in ``[sigma* - r - tol, sigma* + r + tol]``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import SVDParam
        >>> SVDParam(2, 2).in_manifold(np.eye(2)), SVDParam(2, 2).in_manifold(2 * np.eye(2))
        (True, False)
        """
        A = as_array(W, "W", where="SVDParam.in_manifold", allow_complex=True)
        if A.ndim != 2 or A.shape != self.shape or A.dtype.kind == "c":
            return False
        t = self._tol(tol)
        sv = np.linalg.svd(A.astype(np.float64), compute_uv=False)
        return bool(
            sv.min() >= self.sigma_star - self.margin - t
            and sv.max() <= self.sigma_star + self.margin + t
        )

    def __repr__(self) -> str:
        return (
            f"SVDParam(m={self.m}, n={self.n}, ku={self.ku}, kv={self.kv}, "
            f"sigma_star={self.sigma_star:g}, margin={self.margin:g}, dtype={self.dtype})"
        )
