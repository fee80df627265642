"""The real Schur form of skew matrices, computed on a power-of-two rescaled copy (private).

The exact power-of-two helpers (``unit_scale``, ``scale_back``, ``max_abs``,
``pow2_exponent``, ``ldexp``, ``safe_exponent``, ``column_exponents``) live
in :mod:`lowdisp._validation`, shared by every subpackage.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from lowdisp._validation import unit_scale

__all__ = ["skew_schur"]


def skew_schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real Schur form of a real skew-symmetric ``A``: ``(Q, s, b)``.

    ``A = Q T Q^T`` with ``T`` block diagonal: ``[[0, b_j], [-b_j, 0]]`` at
    rows/columns ``(s_j, s_j + 1)`` and zero elsewhere (rounding-level
    entries of ``T`` outside these blocks are dropped). ``A`` is rescaled by
    a power of two first, so any finite ``A`` works; the eigenvalues of
    ``A`` are ``+-i b_j`` and zeros. Computed in float64.
    """
    n = A.shape[0]
    As, e = unit_scale(A.astype(np.float64))
    if not As.any():
        return np.eye(n), np.zeros(0, dtype=np.intp), np.zeros(0)
    T, Q = sla.schur(As, output="real", check_finite=False)
    s = np.flatnonzero(np.diagonal(T, -1) != 0)  # first index of each 2 x 2 block
    with np.errstate(over="ignore"):  # |b| > 1.8e308 becomes inf; callers decide
        b = np.ldexp(0.5 * (T[s, s + 1] - T[s + 1, s]), e)
    return Q, s, b
