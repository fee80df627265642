"""The matrix exponential of skew matrices (expRNN) with its Fréchet-derivative VJP."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

from lowdisp._validation import (
    as_array,
    check_option,
    check_shape,
    ldexp,
    max_abs,
    pow2_exponent,
    unit_scale,
)
from lowdisp.exceptions import NotOnManifoldError
from lowdisp.orthogonal._base import _SkewParam, orthogonal_schur
from lowdisp.orthogonal._init import henaff
from lowdisp.orthogonal._scaling import skew_schur

__all__ = ["ExpMap", "expm_skew", "expm_skew_vjp"]


def _check_skew(A: Any, where: str) -> np.ndarray:
    Aa = as_array(A, "A", where=where, ndim=2)
    if Aa.shape[0] != Aa.shape[1]:
        raise ValueError(f"{where}: A must be a square matrix; got shape {Aa.shape}")
    if Aa.size:
        eps = np.finfo(Aa.real.dtype).eps
        # relative to max|a_ij| (scale-invariant), on the rescaled A (no overflow)
        amax = float(max_abs(Aa))
        As = ldexp(Aa, -int(pow2_exponent(amax)))
        asym = float(max_abs(As + As.conj().T))
        if asym > 100 * eps:
            asym = float(np.ldexp(asym, int(pow2_exponent(amax))))
            kind = "skew-Hermitian (A^H = -A)" if Aa.dtype.kind == "c" else "skew-symmetric"
            raise ValueError(
                f"{where}: A must be {kind}; got max|A + A^H| = {asym:.2e}. "
                f"Project it first with (A - A^H) / 2"
            )
    return Aa


def expm_skew(A: Any) -> np.ndarray:
    """Matrix exponential of a skew-symmetric (skew-Hermitian) matrix, an orthogonal (unitary) one.

    Parameters
    ----------
    A : (n, n) array_like
        Real skew-symmetric or complex skew-Hermitian.

    Returns
    -------
    (n, n) ndarray
        ``exp(A)``, orthogonal (unitary), same precision as ``A``.

    Raises
    ------
    ValueError
        If ``A`` is not square, not finite or not skew (beyond rounding,
        ``max|A + A^H| > 100 eps max|A|``, a scale-invariant test); project with
        ``(A - A^H) / 2``.

    Notes
    -----
    Real ``A``: the real Schur form ``A = Q T Q^T`` has 2 x 2 blocks
    ``[[0, b], [-b, 0]]`` whose exponentials are rotations, ``W = Q E Q^T``;
    complex ``A``: the Hermitian eigenproblem ``iA = V diag(lam) V^H`` gives
    ``W = V diag(exp(-i lam)) V^H``. Either way ``W`` is orthogonal (unitary)
    to rounding whatever ``||A||``; scaling and squaring
    (``scipy.linalg.expm``) loses orthogonality in proportion to ``||A||``
    (``||W^T W - I|| ~ 5e-7`` at ``||A|| ~ 1e8``). The gradient is
    :func:`expm_skew_vjp`.

    References
    ----------
    M. Lezcano-Casado, D. Martínez-Rubio, "Cheap orthogonal constraints in
    neural networks: a simple parametrization of the orthogonal and unitary
    group", ICML 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import expm_skew
    >>> W = expm_skew(np.array([[0.0, -np.pi / 2], [np.pi / 2, 0.0]]))
    >>> np.round(W, 12) + 0.0
    array([[ 0., -1.],
           [ 1.,  0.]])
    """
    Aa = _check_skew(A, "expm_skew")
    n = Aa.shape[0]
    if n == 0:
        return np.eye(0, dtype=Aa.dtype)
    if Aa.dtype.kind == "c":
        # A = -i (iA) with iA Hermitian: exp(A) = V diag(exp(-i lam)) V^H
        lam, V = _hermitian_eig(Aa, "expm_skew")
        W = (V * np.exp(-1j * lam)[None, :]) @ V.conj().T
        return np.ascontiguousarray(W, dtype=Aa.dtype)
    # real Schur form A = Q T Q^T: T is block diagonal with 2 x 2 blocks
    # [[0, b], [-b, 0]] (up to rounding, which is dropped), exp of each a rotation
    Q, s, b = skew_schur(Aa)
    _check_angles(b, "expm_skew")
    return np.ascontiguousarray(_expm_schur(Q, s, b), dtype=Aa.dtype)


def _hermitian_eig(A: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``iA = V diag(lam) V^H`` for a complex skew-Hermitian ``A`` (rescaled by ``2^-e``)."""
    As, e = unit_scale(A.astype(np.complex128))
    lam, V = np.linalg.eigh(0.5j * (As - As.conj().T))
    with np.errstate(over="ignore"):
        lam = np.ldexp(lam, e)
    _check_angles(lam, where)
    return lam, V


def _expm_schur(Q: np.ndarray, s: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``exp(A) = Q E Q^T`` from :func:`skew_schur`: rotations by ``b`` in the blocks."""
    n = Q.shape[0]
    E = np.eye(n)
    c, sn = np.cos(b), np.sin(b)
    E[s, s], E[s + 1, s + 1], E[s, s + 1], E[s + 1, s] = c, c, sn, -sn
    return (Q @ E) @ Q.T


def _schur_eigvecs(Q: np.ndarray, s: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``A^T = U diag(i w) U^H`` for the real skew ``A = Q T Q^T`` of :func:`skew_schur`.

    The block ``[[0, b], [-b, 0]]`` has eigenvectors ``(1, +-i)/sqrt(2)`` for
    ``+-i b``; those of ``A^T = -A`` are negated. Conjugate pairs are exact
    by construction.
    """
    n = Q.shape[0]
    U = Q.astype(np.complex128)
    w = np.zeros(n)
    r = np.sqrt(0.5)
    U[:, s] = r * (Q[:, s] + 1j * Q[:, s + 1])
    U[:, s + 1] = r * (Q[:, s] - 1j * Q[:, s + 1])
    w[s], w[s + 1] = -b, b
    return U, w


def _frechet_spectral(U: np.ndarray, w: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``L_exp(X, G) = U (Phi o (U^H G U)) U^H`` for ``X = U diag(i w) U^H``, ``U`` unitary.

    ``Phi_jk = e^{i (w_j + w_k)/2} sin(d)/d``, ``d = (w_j - w_k)/2`` (the divided
    differences of ``exp``; stable for close and for huge ``w``).
    """
    h = 0.5 * w  # halves first: w_j +- w_k may overflow, their halves cannot
    d = h[:, None] - h[None, :]
    sinc = np.divide(np.sin(d), d, out=np.ones_like(d), where=d != 0)
    Phi = np.exp(1j * (h[:, None] + h[None, :])) * sinc
    return U @ (Phi * (U.conj().T @ G @ U)) @ U.conj().T


#: 1-norm of A up to which scipy's Pade expm keeps ||W^T W - I|| below
#: about 6e-15 (measured on 3000 random skew A, n = 2..8: up to 1.8e-13 for
#: ||A||_1 in [3, 8), then growing with ||A|| through the squarings); beyond
#: it the spectral path takes over (also for expm_frechet, which overflows
#: near ||A|| ~ 1e20).
_PADE_MAX_NORM1 = 3.0


def _norm1(A: np.ndarray) -> float:
    """``||A||_1`` (inf instead of an overflow warning for huge ``A``)."""
    with np.errstate(over="ignore"):
        return float(np.abs(A).sum(axis=0).max()) if A.size else 0.0


def _check_angles(b: np.ndarray, where: str) -> None:
    """exp needs the rotation angles themselves: refuse eigenvalues beyond the float range."""
    if not np.isfinite(b).all():
        raise ValueError(
            f"{where}: an eigenvalue of A overflows (|lambda| > 1.8e308; A = P - P^T from "
            "theta scaled near the float maximum), so exp(A) is not computable; "
            "rescale theta"
        )


#: max|a_ij| up to which the tridiagonal eigh path of ExpMap keeps W
#: orthogonal (its real part drops imaginary residues ~ ||A|| eps).
_EIGH_MAX = 2.0**20


def _frechet_skew(A: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``L_exp(A^H, G)`` for a skew ``A`` at any scale (no Pade squarings)."""
    if A.dtype.kind == "c":
        lam, V = _hermitian_eig(A, "expm_skew_vjp")  # A^H = V diag(i lam) V^H
        return _frechet_spectral(V, lam, G.astype(np.complex128))
    Q, s, b = skew_schur(A)
    _check_angles(b, "expm_skew_vjp")
    U, w = _schur_eigvecs(Q, s, b)
    return np.real(_frechet_spectral(U, w, G.astype(np.float64)))


def expm_skew_vjp(A: Any, dW: Any) -> np.ndarray:
    """Vector-Jacobian product of :func:`expm_skew`: ``dL/dA`` given ``dL/dW``.

    Parameters
    ----------
    A : (n, n) array_like
        The skew point.
    dW : (n, n) array_like
        Cotangent ``dL/dW``.

    Returns
    -------
    (n, n) ndarray
        The unconstrained gradient ``L_exp(A^H, dW)`` (not projected onto
        skew matrices; for ``A = P - P^H`` the gradient in ``P`` is
        ``dA - dA^H``).

    Notes
    -----
    For ``W = exp(A)`` and ``L = Re <G, W>``, the gradient is the Fréchet
    derivative of the exponential at ``A^H`` in the direction ``G``:

    .. math:: \\frac{\\partial L}{\\partial A} = L_{\\exp}(A^{H}, G)
              = \\int_0^1 e^{s A^{H}} G\\, e^{(1-s) A^{H}}\\, ds,

    computed by :func:`scipy.linalg.expm_frechet` (Al-Mohy & Higham 2009)
    for ``||A||_1 <= 3`` and, beyond (where Padé squarings lose accuracy
    and overflow near ``||A|| ~ 1e20``), from the spectral decomposition
    ``A^H = U diag(i w) U^H`` (real Schur form or Hermitian eigenproblem) as
    ``U (Phi o (U^H G U)) U^H`` with the divided differences
    ``Phi_jk = e^{i(w_j + w_k)/2} sin(d)/d``, ``d = (w_j - w_k)/2``.

    References
    ----------
    A. H. Al-Mohy, N. J. Higham, "Computing the Fréchet derivative of the
    matrix exponential, with an application to condition number
    estimation", SIAM J. Matrix Anal. Appl. 30 (2009).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import expm_skew, expm_skew_vjp
    >>> from lowdisp.testing import check_vjp
    >>> P = np.random.default_rng(0).standard_normal((3, 3))
    >>> f = lambda p: expm_skew(p - p.T)
    >>> g = lambda p, dy: (lambda d: d - d.T)(expm_skew_vjp(p - p.T, dy))
    >>> check_vjp(f, g, P, rng=0) < 1e-8
    True
    """
    where = "expm_skew_vjp"
    Aa = _check_skew(A, where)
    G = as_array(dW, "dW", where=where, ndim=2)
    check_shape(G, "dW", Aa.shape, where=where)
    dt = np.result_type(Aa, G)
    Aa, G = Aa.astype(dt, copy=False), G.astype(dt, copy=False)
    if Aa.shape[0] == 0:
        return np.zeros((0, 0), dtype=dt)
    if _norm1(Aa) <= _PADE_MAX_NORM1:
        return _frechet(Aa, G)
    return np.asarray(_frechet_skew(Aa, G)).astype(dt, copy=False)


def _frechet(A: np.ndarray, G: np.ndarray) -> np.ndarray:
    E = sla.expm_frechet(A.conj().T, G, compute_expm=False, check_finite=False)
    return np.asarray(E).astype(A.dtype, copy=False)


def _phases(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts of ``P_jk = i^(k - j)`` (entries 0, +-1)."""
    j = np.arange(n)
    q = (j[None, :] - j[:, None]) % 4
    Pr = np.select([q == 0, q == 2], [1.0, -1.0], 0.0)
    Pi = np.select([q == 1, q == 3], [1.0, -1.0], 0.0)
    return Pr, Pi


def _skew_eig(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A = V diag(-i lam) V^H`` with ``V = Q D^H Z`` in real arithmetic.

    The Hessenberg form of a skew ``A`` is a skew tridiagonal ``T = Q^T A Q``
    with superdiagonal ``alpha``; with ``D = diag(i^j)``,
    ``D T D^H = -i S`` for the real symmetric tridiagonal ``S`` with
    off-diagonal ``alpha``, and ``S = Z diag(lam) Z^T``.
    """
    n = A.shape[0]
    if n == 1:
        return np.zeros(1), np.ones((1, 1)), np.ones((1, 1))
    H, Q = sla.hessenberg(A, calc_q=True, check_finite=False)
    alpha = 0.5 * (np.diagonal(H, 1) - np.diagonal(H, -1))
    lam, Z = sla.eigh_tridiagonal(np.zeros(n), alpha, check_finite=False)
    return lam, Z, Q


def _expm_eig(lam: np.ndarray, Z: np.ndarray, Q: np.ndarray, Pr: np.ndarray, Pi: np.ndarray):
    """``exp(A) = Q (Pr o C + Pi o S) Q^T``, ``C = Z cos(lam) Z^T``, ``S = Z sin(lam) Z^T``."""
    C = (Z * np.cos(lam)[None, :]) @ Z.T
    S = (Z * np.sin(lam)[None, :]) @ Z.T
    M = Pr * C
    M += Pi * S
    return Q @ M @ Q.T


def _frechet_eig(
    lam: np.ndarray,
    Z: np.ndarray,
    Q: np.ndarray,
    Pr: np.ndarray,
    Pi: np.ndarray,
    G: np.ndarray,
) -> np.ndarray:
    """``L_exp(A^T, G) = V (Phi o (V^H G V)) V^H`` for real skew ``A``, in real GEMMs.

    ``A^T = V diag(i lam) V^H``, so ``Phi_jk = (e^{i lam_j} - e^{i lam_k}) /
    (i (lam_j - lam_k)) = e^{i (lam_j + lam_k)/2} sin(d)/d``,
    ``d = (lam_j - lam_k)/2``: stable for close eigenvalues.
    """
    d = 0.5 * (lam[:, None] - lam[None, :])
    sinc = np.divide(np.sin(d), d, out=np.ones_like(d), where=d != 0)
    half = 0.5 * lam
    c, s = np.cos(half), np.sin(half)
    Phr = (np.outer(c, c) - np.outer(s, s)) * sinc
    Phi = (np.outer(s, c) + np.outer(c, s)) * sinc
    H1 = Q.T @ G @ Q
    Br = Z.T @ (Pr * H1) @ Z
    Bi = -(Z.T @ (Pi * H1) @ Z)
    Kr = Phr * Br - Phi * Bi
    Ki = Phr * Bi + Phi * Br
    Yr = Z @ Kr @ Z.T
    Yi = Z @ Ki @ Z.T
    R = Pr * Yr
    R -= Pi * Yi
    return Q @ R @ Q.T


class ExpMap(_SkewParam):
    """Exponential parameterization of expRNN, ``W = exp(A)`` with ``A`` skew.

    Parameters
    ----------
    n : int
        Order of ``W``.
    method : {"eigh", "pade"}
        How ``exp`` and its Fréchet derivative are computed: ``"eigh"``
        (default) diagonalizes ``A`` once, in real arithmetic, and reuses
        the eigenvectors for the VJP; ``"pade"`` calls
        :func:`scipy.linalg.expm` and :func:`scipy.linalg.expm_frechet`.
        Both are accurate to rounding; ``"eigh"`` is the faster one per
        forward + VJP (``lowdisp bench orthogonal``). Where a method would
        lose orthogonality (``"pade"``: ``||A||_1 > 3``, where scipy's
        Padé approximant and squarings lose more than 1e-14; ``"eigh"``:
        ``max |a_ij| > 2^20``, where the real part of the complex
        eigen-form drops residues of size
        ``||A|| eps``), forward and VJP use the real Schur form of ``A``
        (rotations in invariant planes, the Fréchet derivative from the
        same eigenvectors), so ``W`` is orthogonal to rounding for ``theta``
        scaled anywhere in ``1e-300 .. 1e300``.
    dtype : {float64, float32}

    Attributes
    ----------
    n, m : int
    method : str
    theta_shape : tuple
        ``(n (n - 1) / 2,)``: the strict upper triangle of ``P`` in row-major
        order (``numpy.triu_indices(n, 1)``), ``A = P - P^T``.
    dtype, theta_dtype : numpy.dtype
    is_complex : bool
        False.

    Notes
    -----
    The image is ``SO(n)`` (``det W = +1``); the map is onto. With
    ``G = dL/dW``:

    .. math:: \\frac{\\partial L}{\\partial P} = E - E^{T}, \\qquad
              E = L_{\\exp}(A^{T}, G)

    (see :func:`expm_skew_vjp`). ``method="eigh"``: the Hessenberg form of
    the skew ``A`` is a skew tridiagonal ``T = Q^T A Q``; with
    ``D = diag(i^j)``, ``D T D^H = -i S`` for the real symmetric tridiagonal
    ``S = Z diag(lambda) Z^T``, so ``A = U diag(-i lambda) U^H`` with
    ``U = Q D^H Z`` and

    .. math:: W = Q\\,\\operatorname{Re}\\!\big(P \\circ Z e^{-i\\Lambda} Z^{T}\big)\\,Q^{T},
              \\qquad E = U\big(\\Phi \\circ (U^{H} G U)\big) U^{H},

    ``P_jk = i^(k-j)``, with the divided differences
    ``Phi_jk = e^{i(lambda_j + lambda_k)/2} sin(d)/d``,
    ``d = (lambda_j - lambda_k)/2`` (Najfeld & Havel 1995), all evaluated
    with real GEMMs (4 forward, 12 for the VJP). ``right_inverse`` takes the principal
    logarithm from the real Schur form (pairs of eigenvalues -1 become
    rotations by ``pi``). ``sample`` is expRNN's ``henaff_init_``.

    References
    ----------
    M. Lezcano-Casado, D. Martínez-Rubio, "Cheap orthogonal constraints in
    neural networks: a simple parametrization of the orthogonal and unitary
    group", ICML 2019. I. Najfeld, T. F. Havel, "Derivatives of the matrix
    exponential and their computation", Adv. Appl. Math. 16 (1995).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import ExpMap, orthogonality_error
    >>> e = ExpMap(4)
    >>> W, cache = e.forward(e.sample(rng=0))
    >>> orthogonality_error(W) < 1e-14
    True
    >>> e.vjp(cache, np.eye(4)).shape
    (6,)
    """

    name = "expm"
    _init = staticmethod(henaff)  # expRNN: 2x2 blocks with angles U[-pi, pi]

    def __repr__(self) -> str:
        return f"ExpMap(n={self.n}, method={self.method!r}, dtype={self.dtype})"

    def __init__(self, n: int, *, method: str = "eigh", dtype: Any = np.float64) -> None:
        where = "ExpMap"
        self._setup_skew(n, dtype, where)
        self.method = check_option(method, "method", ("eigh", "pade"), where=where)
        self._Pr, self._Pi = _phases(self.n)

    def forward(self, theta: Any) -> tuple[np.ndarray, Any]:
        """``W = exp(A)`` and the cache (``A``) for :meth:`vjp`.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ExpMap
        >>> W, _ = ExpMap(2).forward(np.array([np.pi / 2]))
        >>> np.round(W, 12) + 0.0
        array([[ 0.,  1.],
               [-1.,  0.]])
        """
        A = self._skew(self._theta(theta, "forward"))  # errors name forward
        if self.method == "pade" and _norm1(A) <= _PADE_MAX_NORM1:
            return np.asarray(sla.expm(A)).astype(self.dtype, copy=False), ("pade", A)
        if self.method == "eigh" and float(max_abs(A)) <= _EIGH_MAX:
            lam, Z, Q = _skew_eig(A.astype(np.float64))
            W = _expm_eig(lam, Z, Q, self._Pr, self._Pi)
            return W.astype(self.dtype, copy=False), ("eigh", lam, Z, Q)
        # large ||A||: real Schur form, orthogonal to rounding at any scale
        Qs, s, b = skew_schur(A)
        _check_angles(b, "ExpMap.forward")
        W = _expm_schur(Qs, s, b)
        return W.astype(self.dtype, copy=False), ("schur", Qs, s, b)

    def vjp(self, cache: Any, dW: Any) -> np.ndarray:
        """Gradient in ``theta``: strict upper triangle of ``E - E^T``, ``E = L_exp(A^T, dW)``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ExpMap
        >>> e = ExpMap(3)
        >>> _, cache = e.forward(np.zeros(3))
        >>> e.vjp(cache, np.triu(np.ones((3, 3)), 1))  # at A = 0: dP = G - G^T
        array([1., 1., 1.])
        """
        G = self._cotangent(dW, "vjp")
        kind = cache[0]
        if kind == "pade":
            E = _frechet(cache[1], G)
        elif kind == "eigh":
            _, lam, Z, Q = cache
            E = _frechet_eig(lam, Z, Q, self._Pr, self._Pi, G.astype(np.float64))
        else:
            U, w = _schur_eigvecs(*cache[1:])
            E = np.real(_frechet_spectral(U, w, G.astype(np.float64)))
        E = E.astype(self.dtype, copy=False)
        return (E - E.T)[self._iu]

    def right_inverse(self, W: Any, *, tol: float | None = None) -> np.ndarray:
        """``theta`` of the principal logarithm of ``W`` (``det W = +1`` required).

        Raises
        ------
        NotOnManifoldError
            If ``W`` is not orthogonal or ``det W = -1``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ExpMap
        >>> e = ExpMap(3)
        >>> W = e.forward(e.sample(rng=1))[0]
        >>> bool(np.allclose(e.forward(e.right_inverse(W))[0], W, atol=1e-12))
        True
        """
        where = "ExpMap.right_inverse"
        Wa = self._matrix(W, "right_inverse")
        self._require_orthogonal(Wa, "right_inverse", tol)
        Q, planes, neg = orthogonal_schur(Wa)
        if len(neg) % 2:
            raise NotOnManifoldError(
                f"{where}: det(W) = -1, but exp of a skew matrix has det +1 (SO(n)); "
                f"use ScaledCayley with odd n_neg or Householder with odd k"
            )
        L = np.zeros((self.n, self.n))
        for i, phi in planes:
            L[i + 1, i], L[i, i + 1] = phi, -phi
        for a, b in zip(neg[0::2], neg[1::2]):
            L[b, a], L[a, b] = np.pi, -np.pi
        A = Q @ L @ Q.T
        return self._theta_of_skew(A)

    def in_manifold(self, W: Any, *, tol: float | None = None) -> bool:
        """Whether ``W`` is in ``SO(n)`` (orthogonal within ``tol``, ``det W = +1``).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import ExpMap
        >>> ExpMap(2).in_manifold(np.eye(2)), ExpMap(2).in_manifold(np.diag([1.0, -1.0]))
        (True, False)
        """
        if not super().in_manifold(W, tol=tol):
            return False
        return bool(np.linalg.det(np.real(np.asarray(W)).astype(np.float64)) > 0)
