"""Shared machinery of the parameterizations (private).

Every parameterization derives from :class:`_Param`, which stores the sizes
and dtypes, validates ``theta`` and ``dW`` at the door and implements
``in_manifold`` from ``orthogonality_error``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

from lowdisp._config import default_tolerance
from lowdisp._validation import (
    as_array,
    as_rng,
    check_dtype,
    check_int,
    check_positive,
    check_shape,
    unit_scale,
)
from lowdisp.exceptions import NotOnManifoldError

__all__ = ["eigenphases", "orthogonality_error"]

_REAL = (np.dtype(np.float32), np.dtype(np.float64))


def orthogonality_error(W: Any) -> float:
    """Distance of ``W`` from having orthonormal columns, ``||W^H W - I||_2``.

    Parameters
    ----------
    W : (m, n) array_like
        Real or complex matrix with ``m >= n`` (``np.matrix`` is accepted
        as a plain array; masked arrays are refused).

    Returns
    -------
    float
        The spectral norm of ``W^H W - I`` (0 for an exactly orthogonal or
        unitary matrix, 0 for ``n = 0``). ``inf`` when the value exceeds the
        largest float (``||W||_2 > 1.34e154``): ``W`` is then so far from
        orthogonal that the distance itself is not representable.

    Notes
    -----
    .. math:: e(W) = \\lVert W^{H} W - I_n \\rVert_2 = \\max_i |\\sigma_i(W)^2 - 1|
              = \\max_i |\\sigma_i - 1|\\,(\\sigma_i + 1),

    computed from the singular values of ``2^{-e} W`` (``2^e`` the binary
    order of ``max |w_ij|``, an exact rescaling), so no Gram matrix is formed
    and nothing overflows or underflows whatever the scale of ``W``
    (``e(c Q) = |c^2 - 1|`` for orthogonal ``Q``, from ``c = 1e-300`` to
    ``1e300``). Accurate to about machine precision times
    ``||W||_2 (||W||_2 + 1)``; computed in float64 or complex128 whatever
    the input precision.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import orthogonality_error
    >>> orthogonality_error(np.eye(3)) == 0.0
    True
    >>> round(orthogonality_error(2 * np.eye(3)), 12)
    3.0
    >>> orthogonality_error(1e100 * np.eye(3)) == 1e200, orthogonality_error(1e200 * np.eye(3))
    (True, inf)
    """
    W = as_array(W, "W", where="orthogonality_error", ndim=2)
    m, n = W.shape
    if m < n:
        raise ValueError(
            "orthogonality_error: W must have at least as many rows as columns; "
            f"got shape {W.shape}"
        )
    if n == 0:
        return 0.0
    Wd = W.astype(np.complex128 if W.dtype.kind == "c" else np.float64)
    Ws, e = unit_scale(Wd)
    if not Ws.any():
        return 1.0
    sv = sla.svdvals(Ws, check_finite=False)
    with np.errstate(over="ignore"):
        sigma = np.ldexp(sv, e)  # may overflow to inf: then so does the answer
        err = np.abs(sigma - 1.0) * (sigma + 1.0)
    return float(err.max())


def eigenphases(W: Any) -> np.ndarray:
    """Arguments of the eigenvalues of a square matrix, sorted, in ``(-pi, pi]``.

    Parameters
    ----------
    W : (n, n) array_like
        Real or complex square matrix (typically orthogonal or unitary, whose
        eigenvalues lie on the unit circle).

    Returns
    -------
    (n,) ndarray
        ``angle(lambda_i)`` sorted increasingly; float64, or float32 for
        single-precision ``W``. Invariant under positive scaling of ``W``
        (computed on ``W`` rescaled by a power of two, so any finite scale
        works); ``n = 0`` gives an empty array.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import eigenphases
    >>> R = np.array([[0.0, -1.0], [1.0, 0.0]])  # rotation by pi/2
    >>> np.round(eigenphases(R) / np.pi, 12)
    array([-0.5,  0.5])
    """
    W = as_array(W, "W", where="eigenphases", ndim=2)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"eigenphases: W must be a square matrix; got shape {W.shape}")
    Wd = W.astype(np.complex128 if W.dtype.kind == "c" else np.float64)
    if W.shape[0] == 0:
        return np.zeros(0, dtype=W.real.dtype)
    # phases are invariant under positive scaling: rescale by a power of two
    lam = sla.eigvals(unit_scale(Wd)[0], check_finite=False)
    return np.sort(np.angle(lam)).astype(W.real.dtype, copy=False)


def orthogonal_schur(W: np.ndarray) -> tuple[np.ndarray, list[tuple[int, float]], list[int]]:
    """Real Schur form of a real orthogonal ``W``: rotation planes and -1 eigenvectors.

    Returns ``(Q, planes, neg)``: ``W = Q T Q^T`` where ``T`` has 2x2
    rotation blocks ``[[cos p, -sin p], [sin p, cos p]]`` at rows ``(i, i+1)``
    for each ``(i, p)`` in ``planes``, -1 at each ``i`` in ``neg`` and +1
    elsewhere (up to rounding).
    """
    n = W.shape[0]
    T, Q = sla.schur(W.astype(np.float64), output="real")
    planes: list[tuple[int, float]] = []
    neg: list[int] = []
    i = 0
    while i < n:
        if i + 1 < n and T[i + 1, i] != 0.0:
            a = 0.5 * (T[i, i] + T[i + 1, i + 1])
            s = 0.5 * (T[i + 1, i] - T[i, i + 1])
            planes.append((i, float(np.arctan2(s, a))))
            i += 2
        else:
            if T[i, i] < 0:
                neg.append(i)
            i += 1
    return Q, planes, neg


def check_real_dtype(dtype: Any, where: str) -> np.dtype:
    """The dtype of a real map: float32 or float64 (:func:`lowdisp._validation.check_dtype`)."""
    return check_dtype(dtype, _REAL, where=where)


class _Param:
    """Common base of the parameterizations.

    Subclasses set ``n``, ``m``, ``dtype`` (the dtype of ``W``),
    ``theta_shape``, ``theta_dtype`` and ``name`` in ``__init__``.
    """

    n: int
    m: int
    dtype: np.dtype
    theta_dtype: np.dtype
    theta_shape: tuple[int, ...]
    name: str

    @property
    def is_complex(self) -> bool:
        """Whether ``W`` is complex (a unitary rather than orthogonal map)."""
        return self.dtype.kind == "c"

    @property
    def num_params(self) -> int:
        """Number of entries of ``theta`` (complex entries count once)."""
        return int(np.prod(self.theta_shape, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(m, n)`` of the matrix ``W`` (``m == n`` except for SVDParam)."""
        return (self.m, self.n)

    # -- door checks ----------------------------------------------------------
    def _theta(self, theta: Any, where: str) -> np.ndarray:
        where = f"{type(self).__name__}.{where}"
        t = as_array(theta, "theta", where=where, allow_complex=self.theta_dtype.kind == "c")
        check_shape(t, "theta", self.theta_shape, where=where)
        if t.dtype != self.theta_dtype:
            t = t.astype(self.theta_dtype)
        return t

    def _cotangent(self, dW: Any, where: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        where = f"{type(self).__name__}.{where}"
        g = as_array(dW, "dW", where=where, allow_complex=self.is_complex)
        check_shape(g, "dW", self.shape if shape is None else shape, where=where)
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        return g

    def _matrix(self, W: Any, where: str) -> np.ndarray:
        where = f"{type(self).__name__}.{where}"
        A = as_array(W, "W", where=where, ndim=2, allow_complex=True)
        check_shape(A, "W", self.shape, where=where)
        if A.dtype.kind == "c" and not self.is_complex:
            if np.abs(A.imag).max(initial=0.0) > 0:
                raise TypeError(f"{where}: W must be real for a real map; got dtype {A.dtype}")
            A = A.real
        return A

    def _require_orthogonal(self, W: np.ndarray, where: str, tol: float | None) -> None:
        err = orthogonality_error(W)
        tol = self._tol(tol)
        if not err <= tol:
            kind = "unitary" if self.is_complex else "orthogonal"
            raise NotOnManifoldError(
                f"{type(self).__name__}.{where}: W is not {kind}: "
                f"||W^H W - I||_2 = {err:.3e} > tol = {tol:.1e}"
            )

    def _tol(self, tol: float | None) -> float:
        if tol is None:
            return float(default_tolerance(self.dtype))
        # a negative, NaN or boolean tol used to give a silent False/True
        return check_positive(tol, "tol", where=type(self).__name__, strict=False)

    def in_manifold(self, W: Any, *, tol: float | None = None) -> bool:
        """Whether ``W`` lies on this map's manifold (unitary/orthogonal).

        Parameters
        ----------
        W : (n, n) array_like
        tol : float, optional
            Largest accepted ``||W^H W - I||_2``; default 1e-10 for double,
            1e-4 for single precision.

        Returns
        -------
        bool

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import FullUnitary
        >>> fu = FullUnitary(2)
        >>> fu.in_manifold(np.eye(2)), fu.in_manifold(2 * np.eye(2)), fu.in_manifold(np.eye(3))
        (True, False, False)
        """
        A = as_array(W, "W", where=f"{type(self).__name__}.in_manifold", allow_complex=True)
        if A.ndim != 2 or A.shape != self.shape:
            return False
        if A.dtype.kind == "c" and not self.is_complex:
            if np.abs(A.imag).max(initial=0.0) > 0:
                return False
            A = A.real
        return bool(orthogonality_error(A) <= self._tol(tol))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, dtype={self.dtype})"


class _SkewParam(_Param):
    """Base of the maps whose parameter is a skew-symmetric ``A = P - P^T``.

    ``theta`` holds the strict upper triangle of ``P`` in
    ``np.triu_indices(n, 1)`` order (``n (n - 1) / 2`` entries). Subclasses
    set ``_init`` (the block initialization :meth:`sample` draws from) and
    call :meth:`_setup_skew` in ``__init__``.
    """

    _init: Any

    def _setup_skew(self, n: int, dtype: Any, where: str) -> None:
        self.n = self.m = check_int(n, "n", where=where, low=1)
        self.dtype = self.theta_dtype = check_real_dtype(dtype, where)
        self.theta_shape = (self.n * (self.n - 1) // 2,)
        self._iu = np.triu_indices(self.n, 1)

    def skew(self, theta: Any) -> np.ndarray:
        """The skew-symmetric matrix ``A = P - P^T`` holding ``theta``.

        Examples
        --------
        >>> from lowdisp.orthogonal import ExpMap
        >>> ExpMap(2).skew([0.5])
        array([[ 0. ,  0.5],
               [-0.5,  0. ]])
        """
        return self._skew(self._theta(theta, "skew"))

    def _skew(self, t: np.ndarray) -> np.ndarray:
        """:meth:`skew` of an already validated ``theta``."""
        A = np.zeros((self.n, self.n), dtype=self.dtype)
        A[self._iu] = t
        return A - A.T

    def sample(self, *, rng: Any = None) -> np.ndarray:
        """A draw from the map's block initialization (see the class docstring).

        Examples
        --------
        >>> from lowdisp.orthogonal import ScaledCayley
        >>> ScaledCayley(4).sample(rng=0).shape
        (6,)
        """
        A = type(self)._init(self.n, rng=as_rng(rng), skew=True)
        return A[self._iu].astype(self.dtype)

    def _theta_of_skew(self, A: np.ndarray) -> np.ndarray:
        """``theta`` of the skew part of ``A`` (the inverse of :meth:`skew`)."""
        return (0.5 * (A - A.T))[self._iu].astype(self.dtype)
