"""Linear solves with LDR matrices: the public entry point; each family brings its solver."""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._config import result_dtype
from lowdisp._validation import as_array, ldexp
from lowdisp.structured._common import norm_exponent
from lowdisp.structured._ldr import LDRMatrix

__all__ = ["solve"]


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
      node, and any registered family without its own ``solve``): the
      documented fallback, dense LU with partial pivoting of ``toarray()``
      (O(n^3)), see :class:`lowdisp.structured.families.LDRFamily`.

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
    # exact power-of-two normalization of b (M's own scale is the family's business):
    # no overflow or underflow inside GKO/LU; M asks its family to solve
    eb = norm_exponent(B)
    Bn = (ldexp(B, -eb) if eb else B).astype(dt, copy=False)
    x = M._solve_scaled(Bn, eb, dt, w)
    return x[:, 0] if vec else x
