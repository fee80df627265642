"""Linear solves with LDR matrices: GKO on Cauchy-like generators."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.fft as sfft
import scipy.linalg as sla

from lowdisp._config import result_dtype
from lowdisp._validation import as_array, ldexp
from lowdisp.exceptions import SingularOperatorError
from lowdisp.structured._ldr import (
    LDRMatrix,
    _CauchyFamily,
    _HankelFamily,
    _HankelRightFamily,
    _norm_exponent,
    _scale_back,
    _ToeplitzFamily,
    _VandermondeFamily,
)

__all__ = ["solve"]


def _tol(n: int) -> float:
    return 2.0 * max(n, 8) * float(np.finfo(np.float64).eps)


def _gko(s, t, G, H, B, where: str) -> np.ndarray:
    """Solve the Cauchy-like system; raises SingularOperatorError on a tiny pivot."""
    from lowdisp.kernels.ldr_gko import gko_solve

    c = np.complex128
    n = s.shape[0]
    X, info = gko_solve(
        np.array(s, dtype=c),
        np.array(t, dtype=c),
        np.array(G, dtype=c, order="C"),
        np.ascontiguousarray(H, dtype=c),
        np.array(B, dtype=c, order="C"),
        _tol(n),
    )
    if info >= 0:
        raise SingularOperatorError(
            f"{where}: the matrix is singular to working precision (GKO pivot {info} of {n} "
            f"is below {_tol(n):.1e} times the largest entry of U)"
        )
    return X


def _roots(e: complex, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(D_e diagonal e^{k/n}, eigenvalues e^{1/n} w^k of Z_e) with w = exp(-2 pi i / n)."""
    root = complex(e) ** (1.0 / n)
    k = np.arange(n)
    return root**k, root * np.exp(-2j * np.pi * k / n)


def _toeplitz_sylvester_solve(G, H, e, f, B, transposed: bool, where: str) -> np.ndarray:
    r"""Solve ``M x = b`` (or ``M^T x = b``) for ``Z_e M - M Z_f = G H^T``, e, f != 0.

    With :math:`P_e = F D_e` (numpy DFT F, :math:`D_e = diag(e^{k/n})`),
    :math:`Z_e = P_e^{-1}\Lambda_e P_e` and :math:`C = P_e M P_f^{-1}` is
    Cauchy-like: :math:`\Lambda_e C - C\Lambda_f = (P_eG)(P_f^{-T}H)^T`.
    """
    n = G.shape[0]
    De, se = _roots(e, n)
    Df, tf = _roots(f, n)
    Gc = sfft.fft(De[:, None] * G, axis=0)
    Hc = sfft.ifft(H / Df[:, None], axis=0)
    if not transposed:
        y = _gko(se, tf, Gc, Hc, sfft.fft(De[:, None] * B, axis=0), where)
        return sfft.ifft(y, axis=0) / Df[:, None]
    y = _gko(tf, se, -Hc, Gc, sfft.ifft(B / Df[:, None], axis=0), where)
    return De[:, None] * sfft.fft(y, axis=0)


def _stein_to_sylvester(fam) -> tuple[np.ndarray, np.ndarray]:
    """Generators of the (original-view) Stein Toeplitz-like matrix for (Z_1, Z_-1), rank r+2.

    From ``M - Z_e M Z_f^T = G H^T`` and ``Z_f^T Z_f = I + (f^2 - 1) e_{n-1} e_{n-1}^T``:
    ``Z_1 M - M Z_{-1} = -G (Z_f^T H)^T + [(1 + f) M e_0 - (f^2 - 1) Z_e M e_{n-1}] e_{n-1}^T
    + (1 - e) e_0 (M^T e_{n-1})^T``.
    """
    G, H, e, f = fam.G, fam.H, fam.e, fam.f  # of the Toeplitz-like T (the family stores them)
    plan = fam.plan  # applies T (any engine with .matmat / .rmatmat)
    n = G.shape[0]
    E = np.zeros((n, 2), dtype=result_dtype(G, H, e, f))
    E[0, 0] = 1.0
    E[n - 1, 1] = 1.0
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
    Gs = np.column_stack([-G, g2, e0])
    Hs = np.column_stack([ZfTH, E[:, 1], last_row])
    return Gs, Hs


def _sylvester_to_standard(fam) -> tuple[np.ndarray, np.ndarray]:
    """Generators for (Z_1, Z_-1) of a Sylvester (Z_e, Z_f) Toeplitz-like matrix, rank r + 2.

    ``Z_1 M - M Z_{-1} = G H^T + (1 - e) e_0 (M^T e_{n-1})^T + (1 + f) (M e_0) e_{n-1}^T``.
    """
    G, H, e, f = fam.G, fam.H, fam.e, fam.f  # of the Toeplitz-like T (the family stores them)
    plan = fam.plan  # applies T (any engine with .matmat / .rmatmat)
    n = G.shape[0]
    E = np.zeros((n, 2), dtype=result_dtype(G, H, e, f))
    E[0, 0] = 1.0
    E[n - 1, 1] = 1.0
    first_col = plan.matmat(E[:, :1])[:, 0]
    last_row = np.conj(plan.rmatmat(np.conj(E[:, 1:])))[:, 0]
    Gs = np.column_stack([G, (1 - e) * E[:, 0], (1 + f) * first_col])
    Hs = np.column_stack([H, last_row, E[:, 1]])
    return Gs, Hs


def _vandermonde_solve(fam, B: np.ndarray, transposed: bool, where: str) -> np.ndarray | None:
    r"""Vandermonde-like ``M - D(v) M Z_0^T = G H^T`` (square, all v_j != 0) via GKO.

    With a unimodular f, :math:`Z_f^T = Z_0^T + f e_{n-1}e_0^T` gives
    :math:`D^{-1}M - M Z_f^T = [D^{-1}G, -f M e_{n-1}] [H, e_0]^T` (rank r + 1),
    and :math:`Z_f^T = P_f^T \Lambda_f P_f^{-T}` (:math:`P_f = F D_f`) turns
    :math:`C = M P_f^T` into a Cauchy-like matrix with nodes :math:`1/v_j` and
    :math:`f^{1/n}\omega^k`; f is chosen to keep the two node sets apart.
    """
    v, G, H = fam.v, fam.G, fam.H
    n = v.shape[0]
    if np.any(v == 0):
        return None
    s = 1.0 / v.astype(np.complex128)
    best, f = -1.0, 1.0 + 0j
    theta = np.angle(s)
    for phi in np.linspace(0.0, 2 * np.pi, 17)[:-1]:
        # roots t_k = exp(i (phi - 2 pi k) / n); the nearest one to s_j is the nearest in angle
        k = np.rint((phi - n * theta) / (2 * np.pi)).astype(np.int64) % n
        gap = np.abs(s - np.exp(1j * (phi - 2 * np.pi * k) / n)).min()
        if gap > best:
            best, f = gap, np.exp(1j * phi)
    Df, t = _roots(f, n)
    E = np.zeros((n, 1), dtype=np.complex128)
    E[n - 1, 0] = 1.0
    last_col = fam.matmat(E.astype(np.result_type(E, G)))
    Gs = np.column_stack([G / v[:, None], -f * last_col])
    Hs = np.column_stack([H, np.eye(n, 1)])
    Hc = sfft.fft(Df[:, None] * Hs, axis=0)
    if not transposed:
        y = _gko(s, t, Gs, Hc, B, where)
        return Df[:, None] * sfft.fft(y, axis=0)
    return _gko(t, s, -Hc, Gs, sfft.fft(Df[:, None] * B, axis=0), where)


def _fast_solve(M: LDRMatrix, B: np.ndarray, where: str) -> np.ndarray | None:
    plan, tr = M._plan, M._transposed
    if isinstance(plan, _VandermondeFamily):
        return _vandermonde_solve(plan, B, tr, where)
    if isinstance(plan, _CauchyFamily):
        if tr:  # M = C0^T: C0^T is Cauchy-like with nodes (t, s), generators (-H, G)
            return _gko(plan.t, plan.s, -plan.H, plan.G, B, where)
        return _gko(plan.s, plan.t, plan.G, plan.H, B, where)
    if not isinstance(plan, _ToeplitzFamily):
        return None
    # plan.plan is the Toeplitz-like T; the family is T, J T or T J.
    if plan.kind == "sylvester":
        G, H, e, f = plan.G, plan.H, plan.e, plan.f
    else:
        G, H = _stein_to_sylvester(plan)
        e, f = 1.0, -1.0
    if e == 0 or f == 0:
        G, H = _sylvester_to_standard(plan)
        e, f = 1.0, -1.0
    flip_in = flip_out = False
    if isinstance(plan, _HankelFamily):  # M0 = J T
        flip_in, flip_out = (False, True) if tr else (True, False)
    elif isinstance(plan, _HankelRightFamily):  # M0 = T J
        flip_in, flip_out = (True, False) if tr else (False, True)
    rhs = B[::-1] if flip_in else B
    x = _toeplitz_sylvester_solve(G, H, e, f, rhs, tr, where)
    return x[::-1] if flip_out else x


def _dense_solve(M: LDRMatrix, B: np.ndarray, where: str) -> np.ndarray:
    Md = M._plan.toarray()  # normalized (M = 2**M._pexp Md), in the plan's orientation
    if M._transposed:
        Md = np.ascontiguousarray(Md.T)
    n = Md.shape[0]
    e = _norm_exponent(Md)  # exact; the L multipliers are O(1) whatever the scale of M
    if e:
        Md = ldexp(Md, -e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lu, piv = sla.lu_factor(Md, check_finite=False)
    d = np.abs(np.diag(lu))
    if d.min() <= _tol(n) * np.abs(np.triu(lu)).max():  # relative to U, not to L
        raise SingularOperatorError(
            f"{where}: the matrix is singular to working precision (LU pivot "
            f"{int(np.argmin(d))} of {n})"
        )
    x = sla.lu_solve((lu, piv), B, check_finite=False)
    return ldexp(x, -e) if e else x


def solve(M: LDRMatrix, b: Any) -> np.ndarray:
    r"""Solve ``M x = b`` for a square LDR matrix.

    Parameters
    ----------
    M : (n, n) LDRMatrix
    b : (n,) or (n, k) array_like

    Returns
    -------
    x : ndarray
        Same shape as ``b``; real when M and b are real.

    Raises
    ------
    numpy.linalg.LinAlgError
        :class:`~lowdisp.exceptions.SingularOperatorError` when M is singular to
        working precision.

    Notes
    -----
    * Cauchy-like matrices: GKO, Gaussian elimination with partial pivoting on
      the generators, O((r + k) n^2) time and O((r + k) n) extra memory
      (the U factor is regenerated column by column in the back substitution).
    * Toeplitz-/Hankel-like (any Sylvester pair (Z_e, Z_f) with e, f != 0; other
      Sylvester and all Stein pairs through their rank r + 2 generators for
      (Z_1, Z_-1), obtained with three fast products): Heinig's
      FFT transformation to a Cauchy-like matrix with nodes
      :math:`e^{1/n}\omega^k`, :math:`f^{1/n}\omega^k`, then GKO; 2r + 4 FFTs.
      Pivoting makes it work where Levinson breaks down (vanishing leading
      minors).
    * Vandermonde-like (square, nonzero nodes): Sylvester form with
      :math:`(D(v)^{-1}, Z_f^T)`, rank r + 1, then the same FFT transformation
      to a Cauchy-like matrix and GKO.
    * Other pairs (subdiagonal, tridiagonal, Vandermonde-like with a zero
      node): documented fallback, dense LU of ``toarray()``
      (O(n^3)).

    References
    ----------
    I. Gohberg, T. Kailath, V. Olshevsky, "Fast Gaussian elimination with partial
    pivoting for matrices with displacement structure", Math. Comp. 64 (1995).
    G. Heinig, "Inversion of generalized Cauchy matrices and other classes of
    structured matrices", IMA Vol. Math. Appl. 69 (1995).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> n = 6
    >>> T = ld.toeplitz(np.arange(n, dtype=float), np.r_[0.0, np.arange(3.0, n + 2)])
    >>> b = np.ones(n)
    >>> x = ld.solve(T, b)  # T[0, 0] = 0: Levinson would break down
    >>> bool(np.allclose(T @ x, b))
    True
    """
    w = "solve"
    if not isinstance(M, LDRMatrix):
        raise TypeError(f"{w}: M must be an LDRMatrix; got {type(M).__name__}")
    m, n = M.shape
    if m != n:
        raise ValueError(f"{w}: M must be square; got shape {M.shape}")
    ba = as_array(b, "b", where=w, ndim=(1, 2))
    if ba.shape[0] != n:
        raise ValueError(f"{w}: b must have {n} rows; got shape {ba.shape}")
    vec = ba.ndim == 1
    B = ba[:, None] if vec else ba
    dt = result_dtype(B, M.dtype)
    if B.shape[1] == 0:
        x = np.zeros((n, 0), dtype=dt)
        return x[:, 0] if vec else x
    # exact power-of-two normalization: M = 2**M._pexp M_plan, b = 2**eb b_n, so
    # x = 2**(eb - M._pexp) M_plan^{-1} b_n (no overflow or underflow inside GKO/LU)
    eb = _norm_exponent(B)
    Bn = ldexp(B, -eb) if eb else B
    x = _fast_solve(M, Bn, w)
    if x is None:
        x = _dense_solve(M, Bn.astype(dt), w)
    if dt.kind != "c":
        x = x.real
    x = np.ascontiguousarray(x, dtype=dt)
    x = _scale_back(x, eb - M._pexp, w, (B,))
    return x[:, 0] if vec else x
