"""Input handling and the Schur factor shared by the spectral routines (private)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.sparse.linalg import LinearOperator

from lowdisp._validation import (
    as_array,
    check_finite,
    check_positive,
    check_square,
)

__all__ = [
    "MAX_DENSIFY",
    "as_dense_square",
    "check_eps",
    "complex_schur",
    "is_operator",
    "safe_norm",
]

#: largest order a LinearOperator is densified to (``A @ I``) for the dense
#: (Schur-based) routines; beyond it they refuse instead of exhausting memory.
MAX_DENSIFY = 8192


def is_operator(A: Any) -> bool:
    """True for a scipy LinearOperator (LDR matrices included) or a sparse matrix."""
    if isinstance(A, LinearOperator):
        return True
    try:
        import scipy.sparse as sp

        return bool(sp.issparse(A))
    except ImportError:  # pragma: no cover
        return False


def as_dense_square(A: Any, name: str, *, where: str) -> np.ndarray:
    """A finite, non-empty, square float64/complex128 array (LinearOperators densified).

    The dense routines need the entries (one Schur form), so a LinearOperator
    of order ``n <= MAX_DENSIFY`` is densified by ``A @ I``; larger operators
    get a clear error.
    """
    if is_operator(A):
        shape = tuple(A.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"{where}: {name} must be square; got shape {shape}")
        n = shape[0]
        if n == 0:
            raise ValueError(f"{where}: {name} must not be empty; got shape {shape}")
        if n > MAX_DENSIFY:
            raise ValueError(
                f"{where}: {name} is a {n} x {n} operator; this routine needs its entries "
                f"(a Schur form) and densifies operators only up to n = {MAX_DENSIFY}. "
                f"Use spectral_norm for matrix-free norms."
            )
        if hasattr(A, "toarray"):
            M = np.asarray(A.toarray())
        else:
            M = np.asarray(A @ np.eye(n, dtype=A.dtype if A.dtype is not None else float))
        arr = as_array(M, name, where=where, ndim=2)
    else:
        arr = as_array(A, name, where=where, ndim=2)
    if arr.size == 0:
        raise ValueError(f"{where}: {name} must not be empty; got shape {arr.shape}")
    check_square(arr, name, where=where)
    check_finite(arr, name, where=where)
    # compute in double precision (pseudospectra of float32 weights are still
    # wanted to double accuracy; the result is a property of the matrix)
    target = np.complex128 if arr.dtype.kind == "c" else np.float64
    return np.ascontiguousarray(arr, dtype=target)


def check_eps(eps: Any, *, where: str, name: str = "eps") -> float:
    """``eps`` must be a finite real number > 0 (:func:`lowdisp._validation.check_positive`)."""
    if isinstance(eps, np.ndarray) and eps.ndim == 0:
        eps = eps[()]
    return check_positive(eps, name, where=where)


#: the last Schur form computed: (key, T, Z); see complex_schur
_SCHUR_CACHE: list[Any] = []
_SCHUR_LOCK = threading.Lock()
#: largest factor kept (n = 4096 complex); bigger ones are not held after the call
_SCHUR_CACHE_BYTES = 2**28


def _schur_key(A: np.ndarray) -> tuple[Any, ...]:
    digest = hashlib.blake2b(np.ascontiguousarray(A).data, digest_size=16).digest()
    return (A.shape, A.dtype.str, digest)


def complex_schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex Schur form ``A = Z T Z^H``; returns ``(T, Z)`` with T upper triangular.

    The last result is kept (keyed by a hash of A's bytes, read-only arrays;
    up to n = 4096), so the routines of one analysis (departure, grid,
    criss-cross, Kreiss) share one O(n³) factorization; hashing costs O(n²).
    """
    key = _schur_key(A)
    with _SCHUR_LOCK:
        if _SCHUR_CACHE and _SCHUR_CACHE[0] == key:
            return _SCHUR_CACHE[1], _SCHUR_CACHE[2]
    if A.dtype.kind == "f":
        # real Schur (cheaper), then its complex triangularization
        T, Z = sla.schur(A, output="real")
        T, Z = sla.rsf2csf(T, Z)
    else:
        T, Z = sla.schur(A, output="complex")
    T = np.ascontiguousarray(np.triu(T))
    T.flags.writeable = False
    Z.flags.writeable = False
    if T.nbytes <= _SCHUR_CACHE_BYTES:
        with _SCHUR_LOCK:
            _SCHUR_CACHE[:] = [key, T, Z]
    return T, Z


def safe_norm(x: np.ndarray) -> float:
    """The 2-norm of a vector (Frobenius norm of an array) without overflow or
    underflow of the squares (``np.linalg.norm`` returns 0 for entries 1e-300)."""
    x = np.asarray(x)
    if x.ndim == 1 and x.dtype.char in "fdFD":
        return float(sla.norm(x, check_finite=False))  # BLAS nrm2 scales internally
    s = float(np.max(np.abs(x))) if x.size else 0.0
    if s == 0.0 or not np.isfinite(s):
        return s
    return s * float(np.linalg.norm(x / s))
