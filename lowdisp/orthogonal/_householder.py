"""Householder products in compact-WY form, their VJPs, and the Householder map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lowdisp._config import result_dtype
from lowdisp._validation import (
    as_array,
    as_rng,
    check_bool,
    check_int,
    column_exponents,
    ldexp,
    max_abs,
    safe_exponent,
)
from lowdisp.exceptions import NotOnManifoldError, RankError
from lowdisp.orthogonal._base import _Param, check_real_dtype, orthogonal_schur
from lowdisp.orthogonal._lapack import tri_solve

__all__ = [
    "Householder",
    "householder_apply",
    "householder_apply_vjp",
    "householder_product",
]


# ---------------------------------------------------------------------------
# compact WY core (no validation)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _WY:
    """Compact-WY plan ``Q = I - Y T Y^H`` with ``T = N^{-1} diag(tau)``.

    ``N = I + diag(tau) striu(Y^H Y)`` is unit upper triangular, so no
    reciprocal of ``tau`` is ever taken (``tau = 0`` is a valid identity
    reflector, as in LAPACK).
    """

    Y: np.ndarray  # (n, k) effective reflectors, rescaled
    tau: np.ndarray  # (k,)
    S: np.ndarray  # (k, k) = Y^H Y
    N: np.ndarray  # (k, k) unit upper triangular
    lapack: bool  # tau given by the caller (True) or 2/||v||^2 (False)
    exp: np.ndarray | None  # (k,): Y = V_eff 2^-exp (None: Y = V_eff)


def _rescale_columns(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``Y 2^-e`` column by column (exact) when some column is far from unit scale.

    A reflector depends only on the direction of its vector (with ``tau``:
    on ``tau v v^H``), so each column is divided by the power of two of its
    max-abs entry (LAPACK ``dlarfg`` style): ``||y||^2`` then lies in
    ``[1/4, n]``, where it neither underflows (a column of norm 1e-170 was
    "zero") nor overflows (NaN at 1e155). Columns already in a safe range
    are left alone, so normal scales keep their bits.
    """
    if Y.shape[1] == 0:
        return Y, None
    _, e = column_exponents(Y)
    if np.abs(e).max() <= safe_exponent(Y.dtype):
        return Y, None
    return ldexp(Y, -e[None, :]), e


def _plan(V: np.ndarray, tau: np.ndarray | None) -> _WY:
    if tau is None:
        Y, e = _rescale_columns(V)
        S = Y.conj().T @ Y
        d = np.real(np.diagonal(S))
        t = (2.0 / d).astype(V.dtype)
    else:
        k = tau.shape[0]
        Y = np.tril(V[:, :k], -1)
        Y[np.arange(k), np.arange(k)] = 1.0
        Y, e = _rescale_columns(Y)
        # tau v v^H = (tau 4^e) (v 2^-e)(v 2^-e)^H
        t = tau if e is None else ldexp(tau, 2 * e)
        S = Y.conj().T @ Y
    N = np.triu(S, 1) * t[:, None]
    N[np.diag_indices_from(N)] = 1.0
    return _WY(Y, t, S, N, tau is not None, e)


def _solve(N: np.ndarray, B: np.ndarray, trans: int) -> np.ndarray:
    return tri_solve(N, B, trans)


def _hT(A: np.ndarray) -> np.ndarray:
    """Conjugate transpose (a view for real arrays)."""
    return A.conj().T if np.iscomplexobj(A) else A.T


def _prepare(
    wy: _WY, X: np.ndarray | None, adjoint: bool, G: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``Z = Y^H X``, ``U``, ``W`` of the compact-WY product (``X=None``: identity).

    With ``G`` (for a VJP) ``Y^H G`` comes out of the same GEMM as ``Y^H X``.
    """
    Y, t = wy.Y, wy.tau
    YG = None
    if X is None:
        Z = _hT(Y).copy()
        if G is not None:
            YG = _hT(Y) @ G
    elif G is not None:
        b = X.shape[1]
        ZG = _hT(Y) @ np.concatenate([X, G], axis=1)
        Z, YG = ZG[:, :b], ZG[:, b:]
    else:
        Z = _hT(Y) @ X
    if adjoint:
        U = _solve(wy.N, Z, 2)
        Wm = t.conj()[:, None] * U
    else:
        U = t[:, None] * Z
        Wm = _solve(wy.N, U, 0)
    return Z, U, Wm, YG


def _apply(wy: _WY, X: np.ndarray | None, adjoint: bool) -> tuple[np.ndarray, tuple]:
    """``Q X`` (``Q^H X`` if adjoint); ``X=None`` means the identity. Returns (out, saved)."""
    saved = _prepare(wy, X, adjoint)
    Wm = saved[2]
    if X is None:
        out = -(wy.Y @ Wm)
        out[np.diag_indices_from(out)] += 1.0
    else:
        out = X - wy.Y @ Wm
    return out, saved


def _apply_vjp(
    wy: _WY,
    X: np.ndarray | None,
    G: np.ndarray,
    adjoint: bool,
    saved: tuple,
    need_x: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Gradients (gY, gX, gtau) of ``L = Re<G, Q X>`` (or ``Q^H X``); gX is None if not need_x."""
    Y, t, S, N = wy.Y, wy.tau, wy.S, wy.N
    Z, U, Wm, YG = saved
    gW = -(_hT(Y) @ G) if YG is None else -YG
    if adjoint:
        gU = t[:, None] * gW
        gt = np.sum(gW.conj() * U, axis=1)
        gZ = _solve(N, gU, 0)
        gN = -(U @ _hT(gZ))
    else:
        gU = _solve(N, gW, 2)
        gt = np.sum(gU * Z.conj(), axis=1)
        gZ = t.conj()[:, None] * gU
        gN = -(gU @ _hT(Wm))
    gN = np.triu(gN, 1)
    # N = I + diag(t) striu(S)
    gt = gt + np.sum(gN * S.conj(), axis=1)
    gS = t.conj()[:, None] * gN
    if not wy.lapack:
        # t_i = 2 / S_ii (real)
        d = np.real(np.diagonal(S))
        gS[np.diag_indices_from(gS)] += -2.0 * np.real(gt) / d**2
    gX = None
    if need_x:
        gX = Y @ gZ
        gX += G
    gY = G @ (-_hT(Wm))
    if X is None:
        gY += _hT(gZ)
    else:
        gY += X @ _hT(gZ)
    gY += Y @ (gS + _hT(gS))
    if not np.iscomplexobj(Y):
        gt = np.real(gt)
    if wy.exp is not None:
        # back to the caller's reflectors: Y = V 2^-e, tau' = tau 4^e (exact)
        gY = ldexp(gY, -wy.exp[None, :])
        if wy.lapack:  # without tau, gt is internal (tau = 2/||y||^2 is not a parameter)
            gt = ldexp(gt, 2 * wy.exp)
    return gY, gX, gt.astype(t.dtype, copy=False)


# ---------------------------------------------------------------------------
# public functional core
# ---------------------------------------------------------------------------


def _check_reflectors(
    V: Any, tau: Any, where: str, extra: tuple[Any, ...] = ()
) -> tuple[np.ndarray, np.ndarray | None, np.dtype]:
    Va = as_array(V, "V", where=where, ndim=2)
    ta = None if tau is None else as_array(tau, "tau", where=where, ndim=1)
    dt = result_dtype(Va, *(e for e in extra if e is not None), *(() if ta is None else (ta,)))
    Va = Va.astype(dt, copy=False)
    n, k = Va.shape
    if ta is None and n == 0 and k:
        raise ValueError(
            f"{where}: V has 0 rows; a reflector needs a nonzero vector of length n >= 1 "
            f"(got shape {Va.shape}; an empty product is V of shape (n, 0))"
        )
    if ta is None:
        # max-abs, not the norm: ||v||^2 underflows to 0 for a nonzero v ~ 1e-170
        bad = np.flatnonzero(max_abs(Va, axis=0) == 0)
        if bad.size:
            raise ValueError(
                f"{where}: every column of V must be a nonzero reflector vector; "
                f"column {int(bad[0])} is zero"
            )
    else:
        ta = ta.astype(dt, copy=False)
        if ta.shape[0] > min(n, k):
            raise ValueError(
                f"{where}: with tau (LAPACK geqrf layout) len(tau) must be <= min(V.shape) = "
                f"{min(n, k)}; got len(tau) = {ta.shape[0]}"
            )
    return Va, ta, dt


def _as_block(
    X: Any, name: str, n: int, where: str, *, allow_complex: bool = True
) -> tuple[np.ndarray, bool]:
    Xa = as_array(X, name, where=where, ndim=(1, 2), allow_complex=allow_complex)
    if Xa.shape[0] != n:
        raise ValueError(
            f"{where}: {name} must have {n} rows (the length of the reflectors); "
            f"got shape {Xa.shape}"
        )
    vec = Xa.ndim == 1
    return (Xa[:, None] if vec else Xa), vec


def householder_product(V: Any, tau: Any = None) -> np.ndarray:
    """Form the product of Householder reflectors ``Q = H_1 H_2 ⋯ H_k``.

    Parameters
    ----------
    V : (n, k) array_like
        Reflector vectors in the columns. Without ``tau`` every column is a
        full, nonzero vector ``v_i`` and ``H_i = I - 2 v_i v_i^H / ||v_i||^2``
        (a true reflection). With ``tau`` the LAPACK ``geqrf`` layout is used:
        ``v_i`` has zeros above position ``i``, an implicit 1 at ``i`` and the
        stored entries of ``V[i+1:, i]`` below; the upper triangle of ``V`` is
        ignored (so the raw output of :func:`scipy.linalg.qr` can be passed).
    tau : (k',) array_like, optional
        LAPACK scalar factors, ``H_i = I - tau_i v_i v_i^H``, ``k' <= min(n, k)``.

    Returns
    -------
    Q : (n, n) ndarray
        Orthogonal (unitary for complex input).

    Notes
    -----
    Built from the compact-WY form (Schreiber & Van Loan 1989) with the
    triangular factor written as ``T = N^{-1} diag(tau)``,
    ``N = I + diag(tau) striu(Y^H Y)`` (the UT transform of Joffrain et al.
    2006):

    .. math:: Q = I - Y T Y^{H}, \\qquad T^{-1} = \\operatorname{diag}(\\tau)^{-1}
              + \\operatorname{striu}(Y^{H} Y).

    Cost ``O(n^2 k)``. Use :func:`householder_apply` to multiply without
    forming ``Q``. Scale safety: a column far from unit scale is first
    divided by the power of two of its max-abs entry (exact; LAPACK
    ``dlarfg`` style; with ``tau``, ``tau`` is multiplied by the square),
    so reflectors scaled anywhere in ``1e-300 .. 1e300`` give the same
    ``Q``, orthogonal to rounding; only an exactly zero column is refused.
    ``V`` of shape ``(n, 0)`` gives the identity; ``np.matrix`` input is
    read as a plain array and masked arrays are refused.

    References
    ----------
    R. Schreiber and C. Van Loan, "A storage-efficient WY representation for
    products of Householder transformations", SIAM J. Sci. Stat. Comput. 10
    (1989). T. Joffrain, T. M. Low, E. S. Quintana-Ortí, R. van de Geijn,
    "Accumulating Householder transformations, revisited", ACM TOMS 32 (2006).

    Examples
    --------
    >>> import numpy as np, scipy.linalg as sla
    >>> from lowdisp.orthogonal import householder_product
    >>> A = np.random.default_rng(0).standard_normal((5, 5))
    >>> (qr, tau), _ = sla.qr(A, mode="raw")
    >>> Q = householder_product(qr, tau)
    >>> bool(np.allclose(Q, sla.qr(A)[0], atol=1e-12))
    True
    """
    where = "householder_product"
    Va, ta, _ = _check_reflectors(V, tau, where)
    out, _ = _apply(_plan(Va, ta), None, adjoint=False)
    return out


def householder_apply(V: Any, X: Any, *, tau: Any = None, adjoint: bool = False) -> np.ndarray:
    """Multiply by a product of Householder reflectors without forming it.

    Computes ``Q X`` (or ``Q^H X`` with ``adjoint=True``) for
    ``Q = H_1 ... H_k`` given by its reflectors, with three GEMM-shaped steps
    and a ``k x k`` triangular solve.

    Parameters
    ----------
    V : (n, k) array_like
        Reflector vectors in the columns (see :func:`householder_product` for
        the two layouts: full vectors without ``tau``, LAPACK ``geqrf``
        telescoping layout with ``tau``).
    X : (n,) or (n, b) array_like
        Vector or block of column vectors.
    tau : (k',) array_like, optional
        LAPACK scalar factors (``geqrf`` convention).
    adjoint : bool
        Apply ``Q^H`` instead of ``Q``.

    Returns
    -------
    ndarray
        Same shape as ``X``; dtype promoted from ``V``, ``X`` and ``tau``.

    Notes
    -----
    .. math:: Q X = X - Y\\, N^{-1}\\!\\left(\\operatorname{diag}(\\tau)\\, Y^{H} X\\right),
              \\qquad N = I + \\operatorname{diag}(\\tau)\\operatorname{striu}(Y^{H} Y).

    Cost ``4 n k b + n k^2`` flops against ``2 n^2 b`` for a dense product
    (plus ``2 n^2 k`` to form ``Q``), so it pays for ``k`` well below ``n``.
    The telescoping layout of Spectral-RNN (reflector ``i`` touching only
    coordinates ``i..n-1``) is the ``tau`` layout, or full vectors whose
    leading entries are zero.

    References
    ----------
    R. Schreiber and C. Van Loan, SIAM J. Sci. Stat. Comput. 10 (1989);
    J. Zhang, Q. Lei, I. Dhillon, "Stabilizing gradients for deep neural
    networks via efficient SVD parameterization", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import householder_apply, householder_product
    >>> rng = np.random.default_rng(0)
    >>> V, X = rng.standard_normal((6, 2)), rng.standard_normal((6, 3))
    >>> bool(np.allclose(householder_apply(V, X), householder_product(V) @ X))
    True
    >>> bool(np.allclose(householder_apply(V, X, adjoint=True), householder_product(V).T @ X))
    True
    """
    where = "householder_apply"
    if np.ndim(V) != 2:
        as_array(V, "V", where=where, ndim=2)
    Xa, vec = _as_block(X, "X", np.shape(V)[0], where)
    Va, ta, dt = _check_reflectors(V, tau, where, (Xa,))
    out, _ = _apply(
        _plan(Va, ta), Xa.astype(dt, copy=False), check_bool(adjoint, "adjoint", where=where)
    )
    return out[:, 0] if vec else out


def householder_apply_vjp(
    V: Any, X: Any, dY: Any, *, tau: Any = None, adjoint: bool = False
) -> dict[str, np.ndarray]:
    """Vector-Jacobian product of :func:`householder_apply`.

    Parameters
    ----------
    V, X, tau, adjoint
        As for :func:`householder_apply`.
    dY : array_like, shape of ``X``
        Cotangent of the output.

    Returns
    -------
    dict
        ``"V"`` (shape of ``V``; with ``tau`` only the strictly lower part of
        the first ``len(tau)`` columns is nonzero), ``"X"`` (shape of ``X``)
        and, when ``tau`` is given, ``"tau"``. Complex gradients follow
        ``dL/dRe + 1j dL/dIm`` with ``L = Re sum(conj(dY) * Y)``.

    Notes
    -----
    With ``Z = Y^H X``, ``U = diag(tau) Z``, ``W = N^{-1} U`` and
    ``out = X - Y W``, the pullback runs the same three GEMMs backwards plus
    one more triangular solve:

    .. math:: \\bar W = -Y^{H}\\bar G,\\; \\bar U = N^{-H}\\bar W,\\;
              \\bar N = -\\operatorname{striu}(\\bar U W^{H}),\\;
              \\bar Y = -\\bar G W^{H} + X \\bar Z^{H} + Y(\\bar S + \\bar S^{H}),

    with ``\\bar S`` collecting ``N``'s and (without ``tau``) ``tau_i = 2/S_ii``'s
    dependence on ``S = Y^H Y``. Cost about twice the forward product.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import householder_apply, householder_apply_vjp
    >>> from lowdisp.testing import check_vjp
    >>> rng = np.random.default_rng(1)
    >>> V, X = rng.standard_normal((5, 2)), rng.standard_normal((5, 3))
    >>> f = lambda v: householder_apply(v, X)
    >>> g = lambda v, dy: householder_apply_vjp(v, X, dy)["V"]
    >>> check_vjp(f, g, V, rng=0) < 1e-8
    True
    """
    where = "householder_apply_vjp"
    if np.ndim(V) != 2:
        as_array(V, "V", where=where, ndim=2)
    n = np.shape(V)[0]
    Xa, vec = _as_block(X, "X", n, where)
    Ga, _ = _as_block(dY, "dY", n, where)
    if Ga.shape != Xa.shape:
        raise ValueError(f"{where}: dY must have the shape of X {np.shape(X)}; got {np.shape(dY)}")
    Va, ta, dt = _check_reflectors(V, tau, where, (Xa, Ga))
    Xa, Ga = Xa.astype(dt, copy=False), Ga.astype(dt, copy=False)
    wy = _plan(Va, ta)
    adj = check_bool(adjoint, "adjoint", where=where)
    saved = _prepare(wy, Xa, adj, Ga)
    gY, gX, gt = _apply_vjp(wy, Xa, Ga, adj, saved)
    assert gX is not None
    out: dict[str, np.ndarray] = {}
    if ta is None:
        out["V"] = gY
    else:
        k = ta.shape[0]
        gV = np.zeros_like(Va)
        gV[:, :k] = np.tril(gY, -1)
        out["V"] = gV
        out["tau"] = gt
    out["X"] = gX[:, 0] if vec else gX
    return out


# ---------------------------------------------------------------------------
# reflector decomposition of an orthogonal matrix (for right inverses)
# ---------------------------------------------------------------------------


def _minimal_reflectors(W: np.ndarray) -> np.ndarray:
    """Columns ``v_j`` with ``W = prod_j H(v_j)``, as few as possible (``rank(W - I)``).

    From the real Schur form ``W = Q T Q^T`` of an orthogonal ``W``: each
    rotation block by angle ``phi`` in the plane ``(q_a, q_b)`` is
    ``H(cos(phi/2) q_a + sin(phi/2) q_b) H(q_a)``, each eigenvalue -1 is
    ``H(q)``; reflections in orthogonal planes commute.
    """
    n = W.shape[0]
    Q, planes, neg = orthogonal_schur(W)
    # rotations by rounding-level angles are eigenvalues 1 perturbed by the Schur
    # algorithm; skipping them changes W by at most that angle
    tiny = 100 * n * np.finfo(np.float64).eps
    cols: list[np.ndarray] = []
    for i, phi in planes:
        if abs(phi) <= tiny:
            continue
        cols.append(np.cos(phi / 2) * Q[:, i] + np.sin(phi / 2) * Q[:, i + 1])
        cols.append(Q[:, i].copy())
    cols.extend(Q[:, i].copy() for i in neg)
    if not cols:
        return np.zeros((n, 0))
    return np.stack(cols, axis=1)


def reflectors_for(W: np.ndarray, k: int, where: str) -> np.ndarray:
    """``k`` reflector columns whose product is the orthogonal ``W`` (padding with pairs)."""
    n = W.shape[0]
    Vm = _minimal_reflectors(W.astype(np.float64))
    m = Vm.shape[1]
    if m > k:
        raise NotOnManifoldError(
            f"{where}: W needs {m} reflectors (rank(W - I)) but the map has k = {k}; use a larger k"
        )
    if (k - m) % 2:
        det = "-1" if m % 2 else "+1"
        raise NotOnManifoldError(
            f"{where}: det(W) = {det}, but a product of k = {k} reflections has "
            f"determinant {(-1) ** k:+d}; use k of the other parity"
        )
    pad = np.zeros((n, k - m))
    if k > m:
        pad[0, :] = 1.0  # pairs H(e_1) H(e_1) = I
    return np.concatenate([Vm, pad], axis=1)


# ---------------------------------------------------------------------------
# the parameterization
# ---------------------------------------------------------------------------


class Householder(_Param):
    """Orthogonal matrix as a product of ``k`` Householder reflections.

    ``W = H(v_1) H(v_2) ... H(v_k)`` with ``H(v) = I - 2 v v^T / ||v||^2``.

    Parameters
    ----------
    n : int
        Order of ``W``.
    k : int, optional
        Number of reflectors (default ``n``); ``1 <= k``.
    dtype : {float64, float32}
        Precision of ``theta`` and ``W``.

    Attributes
    ----------
    n, m : int
        Shape of ``W`` (``m == n``).
    k : int
    dtype, theta_dtype : numpy.dtype
    theta_shape : tuple
        ``(n, k)``: ``theta`` is the matrix ``V`` of reflector columns.
    is_complex : bool
        False.

    Notes
    -----
    ``det W = (-1)^k``. Every orthogonal ``W`` with that determinant and
    ``rank(W - I) <= k`` is reachable (Cartan-Dieudonné), so ``k = n``
    covers one connected component of ``O(n)``. The forward map forms ``W``
    in compact-WY form (``O(n^2 k)``); :meth:`apply` multiplies in
    ``O(n k b)`` without forming it. The VJP is the compact-WY pullback of
    :func:`householder_apply_vjp` (applied to the identity), equivalent to
    the per-reflector rule ``dL/du = -alpha g - beta x + alpha beta u`` of
    Spectral-RNN. ``theta`` columns must stay nonzero.

    References
    ----------
    Z. Mhammedi, A. Hellicar, A. Rahman, J. Bailey, "Efficient orthogonal
    parametrisation of recurrent neural networks using Householder
    reflections", ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import Householder, orthogonality_error
    >>> h = Householder(4, k=3)
    >>> theta = h.sample(rng=0)
    >>> W, cache = h.forward(theta)
    >>> orthogonality_error(W) < 1e-14
    True
    >>> dtheta = h.vjp(cache, np.ones((4, 4)))
    >>> dtheta.shape
    (4, 3)
    """

    name = "householder"

    def __init__(self, n: int, k: int | None = None, *, dtype: Any = np.float64) -> None:
        where = "Householder"
        self.n = self.m = check_int(n, "n", where=where, low=1)
        if k is None:
            k = self.n
        try:
            self.k = check_int(k, "k", where=where, low=1)
        except ValueError as exc:
            raise RankError(str(exc)) from exc
        self.dtype = self.theta_dtype = check_real_dtype(dtype, where)
        self.theta_shape = (self.n, self.k)

    def sample(self, *, rng: Any = None) -> np.ndarray:
        """Random reflectors: i.i.d. standard normal columns (directions uniform on the sphere).

        Examples
        --------
        >>> from lowdisp.orthogonal import Householder
        >>> Householder(3, k=2).sample(rng=0).shape
        (3, 2)
        """
        return as_rng(rng).standard_normal(self.theta_shape).astype(self.dtype)

    def _v(self, theta: Any, where: str) -> np.ndarray:
        V = self._theta(theta, where)
        _check_reflectors(V, None, f"Householder.{where}")
        return V

    def forward(self, theta: Any) -> tuple[np.ndarray, Any]:
        """``W = H(v_1) ... H(v_k)`` and a cache for :meth:`vjp`.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import Householder
        >>> W, _ = Householder(2, k=1).forward(np.array([[1.0], [0.0]]))
        >>> bool(np.allclose(W, np.diag([-1.0, 1.0])))
        True
        """
        # a copy: the cache must not follow later in-place updates of theta
        V = np.array(self._v(theta, "forward"), copy=True)
        wy = _plan(V, None)
        W, saved = _apply(wy, None, adjoint=False)
        return W, (wy, saved)

    def vjp(self, cache: Any, dW: Any) -> np.ndarray:
        """Gradient of ``L`` with respect to ``theta`` given ``dW = dL/dW``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import Householder
        >>> h = Householder(3)
        >>> W, cache = h.forward(h.sample(rng=1))
        >>> bool(h.vjp(cache, np.zeros((3, 3))).any())
        False
        """
        G = self._cotangent(dW, "vjp")
        wy, saved = cache
        gY, _, _ = _apply_vjp(wy, None, G, False, saved, need_x=False)
        return gY

    def apply(self, theta: Any, X: Any, *, adjoint: bool = False) -> np.ndarray:
        """``W X`` (or ``W^T X``) in ``O(n k b)`` without forming ``W``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import Householder
        >>> h = Householder(5, k=2)
        >>> th = h.sample(rng=0)
        >>> x = np.arange(5.0)
        >>> bool(np.allclose(h.apply(th, x), h.forward(th)[0] @ x))
        True
        """
        V = self._v(theta, "apply")
        Xa, vec = _as_block(X, "X", self.n, "Householder.apply", allow_complex=False)
        adj = check_bool(adjoint, "adjoint", where="Householder.apply")
        out, _ = _apply(_plan(V, None), Xa.astype(self.dtype, copy=False), adj)
        return out[:, 0] if vec else out

    def apply_vjp(
        self, theta: Any, X: Any, dY: Any, *, adjoint: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(dtheta, dX)`` of ``L = <dY, W X>`` (see :func:`householder_apply_vjp`).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import Householder
        >>> h = Householder(4, k=2)
        >>> dth, dX = h.apply_vjp(h.sample(rng=0), np.ones((4, 3)), np.ones((4, 3)))
        >>> dth.shape, dX.shape
        ((4, 2), (4, 3))
        """
        V = self._v(theta, "apply_vjp")
        _as_block(X, "X", self.n, "Householder.apply_vjp", allow_complex=False)
        _as_block(dY, "dY", self.n, "Householder.apply_vjp", allow_complex=False)
        g = householder_apply_vjp(V, X, dY, adjoint=adjoint)
        return g["V"], g["X"]

    def right_inverse(self, W: Any, *, tol: float | None = None) -> np.ndarray:
        """Reflectors ``theta`` with ``forward(theta)[0] == W``.

        Uses the real Schur form: ``rank(W - I)`` reflectors, padded with
        pairs ``H(e_1) H(e_1) = I`` up to ``k``.

        Raises
        ------
        NotOnManifoldError
            If ``W`` is not orthogonal, needs more than ``k`` reflectors, or
            ``det W != (-1)^k``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import Householder
        >>> h = Householder(4)
        >>> W = h.forward(h.sample(rng=0))[0]
        >>> bool(np.allclose(h.forward(h.right_inverse(W))[0], W, atol=1e-12))
        True
        """
        A = self._matrix(W, "right_inverse")
        self._require_orthogonal(A, "right_inverse", tol)
        return reflectors_for(A, self.k, "Householder.right_inverse").astype(self.dtype)

    def in_manifold(self, W: Any, *, tol: float | None = None) -> bool:
        """Whether ``W`` is orthogonal with ``det W = (-1)^k`` (within ``tol``).

        For ``k < n`` the image is smaller (``rank(W - I) <= k``); that
        condition is not checked here (``right_inverse`` does).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import Householder
        >>> Householder(3, k=2).in_manifold(np.eye(3)), Householder(3, k=1).in_manifold(np.eye(3))
        (True, False)
        """
        if not super().in_manifold(W, tol=tol):
            return False
        det = np.linalg.det(np.asarray(W, dtype=np.float64))
        return bool(np.sign(det) == (-1) ** self.k)

    def __repr__(self) -> str:
        return f"Householder(n={self.n}, k={self.k}, dtype={self.dtype})"
