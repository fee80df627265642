"""The (scaled) Cayley transform and scoRNN's ScaledCayley parameterization."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg as sla

from lowdisp._config import result_dtype
from lowdisp._validation import (
    as_array,
    check_int,
    ldexp,
    max_abs,
    pow2_exponent,
    safe_exponent,
    unit_scale,
)
from lowdisp.exceptions import NotOnManifoldError
from lowdisp.orthogonal._base import _SkewParam
from lowdisp.orthogonal._init import cayley_init
from lowdisp.orthogonal._lapack import lu_solve
from lowdisp.orthogonal._scaling import skew_schur

__all__ = ["ScaledCayley", "cayley"]


def _lu_rcond(M: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """LU factors of ``M`` and LAPACK's estimate of its reciprocal 1-norm condition number."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        lu, piv = sla.lu_factor(M, check_finite=False)
    gecon = sla.get_lapack_funcs("gecon", (lu,))
    with np.errstate(over="ignore", invalid="ignore"):
        anorm = float(np.abs(M).sum(axis=0).max())
    rcond, _ = gecon(lu, anorm, norm="1")
    return (lu, piv), float(rcond)


def _singular(where: str, rcond: float, hint: str) -> np.linalg.LinAlgError:
    return np.linalg.LinAlgError(
        f"{where}: I + A is singular (reciprocal condition number {rcond:.1e}), "
        f"i.e. -1 is an eigenvalue of A. {hint}"
    )


_HINT = (
    "For the inverse map of an orthogonal W with eigenvalue -1 scale by D = diag(+-1) with "
    "some -1 entries first: ScaledCayley(n, n_neg=...) with n_neg >= the multiplicity of -1."
)

#: Below this reciprocal condition number (gecon, 1-norm) of I + A, the LU
#: solve loses orthogonality (measured: ||W^T W - I|| ~ 6e-17 / rcond for
#: n = 31..255, so <= ~6e-14 here); a skew A then takes the spectral path,
#: orthogonal to ~n eps whatever ||A|| but ~8x slower than LU at n = 128.
_RCOND_SPECTRAL = 2.0**-10

#: max|a_ij| above which a skew A goes straight to the spectral path (no LU).
_HUGE = 2.0**40


def _skew_part(A: np.ndarray) -> np.ndarray | None:
    """``A`` if skew-symmetric (skew-Hermitian) to rounding, as its exact skew part; else None.

    "To rounding": ``max |A + A^H| <= 100 eps max |A|`` (e.g. ``Q L Q^T`` of a
    skew ``L``); such an ``A`` is replaced by ``(A - A^H) / 2``, a change
    below the rounding of ``A`` itself.
    """
    if np.array_equal(A, -A.conj().T):
        return A
    amax = float(max_abs(A))
    e = int(pow2_exponent(amax))
    As = ldexp(A, -e)
    if float(max_abs(As + As.conj().T)) > 100 * np.finfo(A.dtype).eps:
        return None
    return ldexp(0.5 * (As - As.conj().T), e)


class _Resolvent:
    """``(I + A)^{-1}`` of a Cayley transform, applied as ``R B``, ``R^T B`` or ``R^H B``.

    Either LU factors of ``I + A`` (the fast path), or a spectral form
    ``R = Q K Q^H`` with ``Q`` orthogonal (unitary) and ``K`` block diagonal,
    from the real Schur form (real skew ``A``) or the Hermitian eigenproblem
    of ``iA`` (complex skew-Hermitian ``A``).
    """

    def __init__(
        self,
        lu: tuple[np.ndarray, np.ndarray] | None = None,
        Q: np.ndarray | None = None,
        K: np.ndarray | None = None,
        scale: int = 0,
    ) -> None:
        # lu factors 2^-scale (I + A)
        self.lu, self.Q, self.K, self.scale = lu, Q, K, scale

    def solve(self, B: np.ndarray, trans: int = 0) -> np.ndarray:
        """``R B`` (``trans=1``: ``R^T B``; ``2``: ``R^H B``)."""
        if B.shape[0] == 0:
            return B.copy()
        if self.lu is not None:
            X = lu_solve(self.lu, B, trans=trans)
            return X if self.scale == 0 else ldexp(X, -self.scale)
        Q, K = self.Q, self.K
        assert Q is not None and K is not None
        if trans == 0:
            X = Q @ (K @ (Q.conj().T @ B))
        elif trans == 1:
            X = Q.conj() @ (K.T @ (Q.T @ B))
        else:
            X = Q @ (K.conj().T @ (Q.conj().T @ B))
        return X.astype(B.dtype, copy=False)


def _cayley_spectral(A: np.ndarray) -> tuple[np.ndarray, _Resolvent]:
    """Cayley transform of an exactly skew ``A`` from its spectral decomposition.

    Real ``A = Q T Q^T`` (real Schur, blocks ``[[0, b], [-b, 0]]``): with
    ``phi = arctan(b)`` the block of ``(I + A)^{-1}`` is
    ``cos(phi) [[cos phi, -sin phi], [sin phi, cos phi]]`` and that of
    ``W`` is the rotation by ``2 phi``; complex ``A = -i V diag(lam) V^H``:
    ``(I + A)^{-1} = V diag(cos(phi) e^{i phi}) V^H``, ``W = V diag(e^{2 i phi}) V^H``,
    ``phi = arctan(lam)``. Both are orthogonal (unitary) to rounding for any
    finite ``A`` (the decomposition is computed on ``A`` rescaled by a power
    of two) and ``arctan`` keeps huge ``b`` finite.
    """
    n = A.shape[0]
    if A.dtype.kind == "c":
        As, e = unit_scale(A.astype(np.complex128))
        lam, V = np.linalg.eigh(1j * As)  # iA Hermitian; A = -i V lam V^H
        with np.errstate(over="ignore"):  # |lam| beyond the float range: arctan(inf) = pi/2
            phi = np.arctan(np.ldexp(lam, e))
        W = (V * np.exp(2j * phi)[None, :]) @ V.conj().T
        K = np.diag(np.cos(phi) * np.exp(1j * phi))
        return W.astype(A.dtype, copy=False), _Resolvent(Q=V, K=K)
    Q, s, b = skew_schur(A)
    phi = np.arctan(b)
    c, sn = np.cos(phi), np.sin(phi)
    C = np.eye(n)
    K = np.eye(n)
    c2, s2 = np.cos(2 * phi), np.sin(2 * phi)
    C[s, s], C[s + 1, s + 1], C[s, s + 1], C[s + 1, s] = c2, c2, -s2, s2
    K[s, s], K[s + 1, s + 1], K[s, s + 1], K[s + 1, s] = c * c, c * c, -c * sn, c * sn
    W = (Q @ C) @ Q.T
    return W.astype(A.dtype, copy=False), _Resolvent(Q=Q, K=K)


def _cayley_core(
    A: np.ndarray, d: np.ndarray | None, where: str, *, skew: bool | None = None
) -> tuple[np.ndarray, _Resolvent]:
    """``W = (I + A)^{-1} (I - A) diag(d)`` and the resolvent for the VJP.

    ``skew=True`` says that ``A`` is exactly skew (otherwise it is tested,
    to rounding, when needed). A skew ``A`` takes the LU path while
    ``I + A`` is well conditioned and the spectral path otherwise (never
    "singular": -1 is not an eigenvalue of a skew matrix); any other ``A``
    always takes the LU path, and a numerically singular ``I + A`` raises
    ``LinAlgError``.
    """
    n = A.shape[0]
    if n == 0:
        return np.zeros((0, 0), dtype=A.dtype), _Resolvent(Q=np.zeros((0, 0)), K=np.zeros((0, 0)))
    amax = float(max_abs(A))
    S: np.ndarray | None = None
    if amax > _HUGE:
        S = A if skew else _skew_part(A)
    if S is not None:
        W, res = _cayley_spectral(S)
    else:
        # (I + A)^{-1}(I - A) = (2^-e I + 2^-e A)^{-1}(2^-e I - 2^-e A): for a huge
        # (non-skew) A the rescaled pair keeps the LU and its 1-norm finite
        e = int(pow2_exponent(amax)) if amax > 2.0 ** safe_exponent(A.dtype) else 0
        eye = np.eye(n, dtype=A.dtype) if e == 0 else ldexp(np.eye(n, dtype=A.dtype), -e)
        As = A if e == 0 else ldexp(A, -e)
        lu, rcond = _lu_rcond(eye + As)
        if rcond > _RCOND_SPECTRAL:
            W, res = lu_solve(lu, eye - As), _Resolvent(lu=lu, scale=e)
        elif (S := A if skew else _skew_part(A)) is not None:
            W, res = _cayley_spectral(S)
        elif not rcond > n * np.finfo(lu[0].real.dtype).eps:
            raise _singular(where, rcond, _HINT)
        else:
            W, res = lu_solve(lu, eye - As), _Resolvent(lu=lu, scale=e)
    if d is not None:
        W *= d[None, :]
    return W, res


def cayley(A: Any, D: Any = None) -> np.ndarray:
    """Cayley transform ``(I + A)^{-1} (I - A) D``.

    Parameters
    ----------
    A : (n, n) array_like
        Real or complex square matrix. For skew-symmetric (skew-Hermitian)
        ``A`` the result is orthogonal (unitary) times ``D``; other ``A`` are
        allowed because the map is its own inverse: ``cayley(W D)`` recovers
        ``A`` from an orthogonal ``W``.
    D : (n,) or (n, n) array_like, optional
        Right scaling: a vector is a diagonal (scoRNN's ``diag(±1)``).

    Returns
    -------
    (n, n) ndarray

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``I + A`` is (numerically) singular, i.e. ``A`` has eigenvalue
        -1. The message suggests scaling by ``D`` with ``n_neg`` entries -1.

    Notes
    -----
    One LU factorization of ``I + A`` and one solve:

    .. math:: W = (I + A)^{-1}(I - A) D,

    with eigenvalues ``(1 - i a)/(1 + i a)`` for eigenvalues ``i a`` of a
    skew ``A``; -1 is never reached, which is why scoRNN multiplies by ``D``.

    Scale safety: the LU solve loses orthogonality in proportion to the
    condition number of ``I + A`` (``||W^T W - I|| ~ 6e-17 / rcond``; for
    ``A`` with a zero eigenvalue, e.g. odd ``n``, ``~ 5e-17 ||A||``). A
    skew-symmetric (skew-Hermitian) ``A`` (exactly, or to rounding:
    ``max |A + A^H| <= 100 eps max |A|``, then its skew part is used) whose
    ``I + A`` has reciprocal condition number
    below ``2^-10``, or with ``max |a_ij| > 2^40``, is therefore transformed
    through its spectral decomposition instead (real Schur form, or the
    Hermitian eigenproblem of ``iA``, on ``A`` rescaled by a power of two):
    each block ``[[0, b], [-b, 0]]`` becomes the rotation by ``2 arctan(b)``,
    orthogonal to rounding for any finite ``A`` (``1e-300`` to ``1e300``).
    A skew ``A`` never raises; only a non-skew ``A`` with eigenvalue -1 does.
    ``n = 0`` gives a ``0 x 0`` result; float32 input gives float32 output.

    References
    ----------
    A. Cayley, "Sur quelques propriétés des déterminants gauches", J. reine
    angew. Math. 32 (1846); K. Helfrich, D. Willmott, Q. Ye, ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import cayley
    >>> A = np.array([[0.0, 1.0], [-1.0, 0.0]])
    >>> W = cayley(A)
    >>> W
    array([[ 0., -1.],
           [ 1.,  0.]])
    >>> bool(np.allclose(cayley(W), A))
    True
    """
    where = "cayley"
    Aa = as_array(A, "A", where=where, ndim=2)
    if Aa.ndim != 2 or Aa.shape[0] != Aa.shape[1]:
        raise ValueError(f"{where}: A must be a square matrix; got shape {Aa.shape}")
    n = Aa.shape[0]
    Dm = None if D is None else as_array(D, "D", where=where, ndim=(1, 2))
    dt = result_dtype(Aa, *(() if Dm is None else (Dm,)))
    Aa = Aa.astype(dt, copy=False)
    if Dm is not None and Dm.shape not in ((n,), (n, n)):
        raise ValueError(f"{where}: D must have shape ({n},) or ({n}, {n}); got {Dm.shape}")
    if Dm is not None and Dm.ndim == 1:
        W, _ = _cayley_core(Aa, Dm.astype(dt, copy=False), where)
        return W
    W, _ = _cayley_core(Aa, None, where)
    return W if Dm is None else W @ Dm.astype(dt, copy=False)


class ScaledCayley(_SkewParam):
    """Scaled Cayley parameterization of scoRNN, ``W = (I + A)^{-1}(I - A) D``.

    Parameters
    ----------
    n : int
        Order of ``W``.
    n_neg : int
        Number of -1 entries of the fixed ``D = diag(1, ..., 1, -1, ..., -1)``
        (the last ``n_neg`` diagonal entries), ``0 <= n_neg <= n``; scoRNN's
        ``rho``.
    dtype : {float64, float32}

    Attributes
    ----------
    n, m : int
    n_neg : int
    d : (n,) ndarray
        Diagonal of ``D``.
    theta_shape : tuple
        ``(n (n - 1) / 2,)``: the strictly upper triangle of ``A`` in
        row-major order (``numpy.triu_indices(n, 1)``); ``A = P - P^T``.
    dtype, theta_dtype : numpy.dtype
    is_complex : bool
        False.

    Notes
    -----
    With ``A = P - P^T`` and ``G = dL/dW`` (Helfrich et al., Thm 3.2):

    .. math:: V = (I + A)^{-T} G (D + W^{T}), \\qquad
              \\frac{\\partial L}{\\partial P} = V^{T} - V,

    which follows from ``dW = -(I + A)^{-1} dA (W + D)``; ``vjp`` returns its
    strictly upper triangle. One LU factorization serves forward and VJP;
    for ill-conditioned ``I + A`` (large ``||A||``) both use the real Schur
    form of ``A`` instead (see :func:`cayley`), so ``W`` stays orthogonal to
    rounding for ``theta`` scaled anywhere in ``1e-300 .. 1e300``.
    The image is ``{W in O(n): det W = (-1)^{n_neg}, -1 not an eigenvalue of
    W D}``; every orthogonal matrix is reachable for a suitable ``D``, in
    particular ones with eigenvalue -1 once ``n_neg >= 1``.

    References
    ----------
    K. Helfrich, D. Willmott, Q. Ye, "Orthogonal recurrent neural networks
    with scaled Cayley transform", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import ScaledCayley, orthogonality_error
    >>> sc = ScaledCayley(4, n_neg=1)
    >>> W, cache = sc.forward(sc.sample(rng=0))
    >>> orthogonality_error(W) < 1e-14, round(float(np.linalg.det(W)), 12)
    (True, -1.0)
    >>> sc.vjp(cache, np.ones((4, 4))).shape
    (6,)
    """

    name = "scaled_cayley"
    _init = staticmethod(cayley_init)  # scoRNN: eigen-angles in [0, pi/2]

    def __init__(self, n: int, n_neg: int = 0, *, dtype: Any = np.float64) -> None:
        where = "ScaledCayley"
        self._setup_skew(n, dtype, where)
        self.n_neg = check_int(n_neg, "n_neg", where=where, low=0, high=self.n)
        d = np.ones(self.n, dtype=self.dtype)
        d[self.n - self.n_neg :] = -1.0
        self.d = d

    def forward(self, theta: Any) -> tuple[np.ndarray, Any]:
        """``W = (I + A)^{-1}(I - A) D`` and the cache (LU factors, ``W``) for :meth:`vjp`.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ScaledCayley
        >>> W, _ = ScaledCayley(2).forward(np.array([1.0]))
        >>> W
        array([[ 0., -1.],
               [ 1.,  0.]])
        """
        A = self._skew(self._theta(theta, "forward"))  # errors name forward
        W, res = _cayley_core(A, self.d, "ScaledCayley.forward", skew=True)
        return W, (res, W.copy())  # the caller may modify the W it gets; the cache must not change

    def vjp(self, cache: Any, dW: Any) -> np.ndarray:
        """Closed-form gradient: the strict upper triangle of ``V^T - V``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ScaledCayley
        >>> sc = ScaledCayley(3)
        >>> W, cache = sc.forward(sc.sample(rng=0))
        >>> sc.vjp(cache, np.zeros((3, 3)))
        array([0., 0., 0.])
        """
        G = self._cotangent(dW, "vjp")
        res, W = cache
        V = res.solve(G * self.d[None, :] + G @ W.T, trans=1)
        return (V.T - V)[self._iu]

    def right_inverse(self, W: Any, *, tol: float | None = None) -> np.ndarray:
        """``theta`` with ``forward(theta)[0] == W``: ``A = cayley(W D)``.

        Raises
        ------
        NotOnManifoldError
            If ``W`` is not orthogonal, has the wrong determinant sign, or
            ``W D`` has eigenvalue -1 (the message suggests ``n_neg``).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ScaledCayley
        >>> W = np.diag([1.0, -1.0])           # eigenvalue -1
        >>> sc = ScaledCayley(2, n_neg=1)
        >>> bool(np.allclose(sc.forward(sc.right_inverse(W))[0], W))
        True
        """
        where = "ScaledCayley.right_inverse"
        Wa = self._matrix(W, "right_inverse").astype(self.dtype, copy=False)
        self._require_orthogonal(Wa, "right_inverse", tol)
        det = float(np.linalg.det(Wa.astype(np.float64)))
        want = (-1) ** self.n_neg
        if np.sign(det) != want:
            raise NotOnManifoldError(
                f"{where}: det(W) = {det:+.3f} but ScaledCayley(n={self.n}, n_neg={self.n_neg}) "
                f"reaches only det = {want:+d}; use an n_neg of the other parity"
            )
        try:
            A, _ = _cayley_core(Wa * self.d[None, :], None, where)
        except np.linalg.LinAlgError as exc:
            raise NotOnManifoldError(
                f"{where}: W D has eigenvalue -1 (D has n_neg={self.n_neg} entries -1), so W "
                f"is outside the image of this map; choose n_neg = the multiplicity of the "
                f"eigenvalue -1 of W (or more, with the same parity)"
            ) from exc
        return self._theta_of_skew(A)

    def in_manifold(self, W: Any, *, tol: float | None = None) -> bool:
        """Whether ``W`` is orthogonal with ``det W = (-1)^{n_neg}`` (within ``tol``).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ScaledCayley
        >>> ScaledCayley(2).in_manifold(np.eye(2)), ScaledCayley(2, 1).in_manifold(np.eye(2))
        (True, False)
        """
        if not super().in_manifold(W, tol=tol):
            return False
        det = np.linalg.det(np.asarray(W).astype(np.float64))
        return bool(np.sign(det) == (-1) ** self.n_neg)

    def __repr__(self) -> str:
        return f"ScaledCayley(n={self.n}, n_neg={self.n_neg}, dtype={self.dtype})"
