"""Direct solvers shared by the families (private): GKO on Cauchy-like generators and the
documented dense-LU fallback."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg as sla

from lowdisp._validation import ldexp
from lowdisp.exceptions import SingularOperatorError
from lowdisp.structured._common import norm_exponent

__all__ = ["dense_lu_solve", "gko", "roots", "tol"]


def tol(n: int) -> float:
    """Relative pivot threshold of the solvers for order n.

    Examples
    --------
    >>> from lowdisp.structured._gko import tol
    >>> tol(4) == tol(8)
    True
    """
    return 2.0 * max(n, 8) * float(np.finfo(np.float64).eps)


def gko(s, t, G, H, B, where: str) -> np.ndarray:
    """Solve the Cauchy-like system ``C x = B``, ``C_jk = g_j^T h_k / (s_j - t_k)``.

    Gaussian elimination with partial pivoting on the generators (GKO, Numba),
    O((r + k) n^2). Raises :class:`SingularOperatorError` on a tiny pivot.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._gko import gko
    >>> s, t = np.array([1.0, 2.0]), np.array([0.0, -1.0])
    >>> x = gko(s, t, np.ones((2, 1)), np.ones((2, 1)), np.ones((2, 1)), "example")
    >>> C = 1 / (s[:, None] - t[None, :])
    >>> bool(np.allclose(C @ x, 1))
    True
    """
    from lowdisp.kernels.ldr_gko import gko_solve

    c = np.complex128
    n = s.shape[0]
    X, info = gko_solve(
        np.array(s, dtype=c),
        np.array(t, dtype=c),
        np.array(G, dtype=c, order="C"),
        np.ascontiguousarray(H, dtype=c),
        np.array(B, dtype=c, order="C"),
        tol(n),
    )
    if info >= 0:
        raise SingularOperatorError(
            f"{where}: the matrix is singular to working precision (GKO pivot {info} of {n} "
            f"is below {tol(n):.1e} times the largest entry of U)"
        )
    return X


def roots(e: complex, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(D_e diagonal e^{k/n}, eigenvalues e^{1/n} w^k of Z_e) with w = exp(-2 pi i / n).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._gko import roots
    >>> D, lam = roots(1.0, 2)
    >>> bool(np.allclose(lam, [1, -1]))
    True
    """
    root = complex(e) ** (1.0 / n)
    k = np.arange(n)
    return root**k, root * np.exp(-2j * np.pi * k / n)


def dense_lu_solve(Md: np.ndarray, B: np.ndarray, where: str) -> np.ndarray:
    """Solve ``Md x = B`` by LU with partial pivoting (the documented O(n^3) fallback).

    ``Md`` is normalized by a power of two first (exact), so the multipliers are
    O(1) whatever its scale; a pivot below ``tol(n)`` times the largest entry of
    U raises :class:`SingularOperatorError`.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.structured._gko import dense_lu_solve
    >>> dense_lu_solve(np.diag([2.0, 4.0]), np.ones((2, 1)), "example")[:, 0]
    array([0.5 , 0.25])
    """
    n = Md.shape[0]
    e = norm_exponent(Md)
    if e:
        Md = ldexp(Md, -e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lu, piv = sla.lu_factor(Md, check_finite=False)
    d = np.abs(np.diag(lu))
    if d.min() <= tol(n) * np.abs(np.triu(lu)).max():  # relative to U, not to L
        raise SingularOperatorError(
            f"{where}: the matrix is singular to working precision (LU pivot "
            f"{int(np.argmin(d))} of {n})"
        )
    x = sla.lu_solve((lu, piv), B, check_finite=False)
    return ldexp(x, -e) if e else x
