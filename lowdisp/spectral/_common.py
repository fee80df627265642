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
    ldexp,
    max_abs,
    pow2_exponent,
)

__all__ = [
    "MAX_DENSIFY",
    "as_dense_square",
    "check_eps",
    "complex_schur",
    "is_operator",
    "safe_norm",
    "scale_back",
    "unit_scale",
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


#: ε or grid coordinates larger than this times max|A| set the scale instead of A
_OTHERS_DOMINATE = 2.0**60


def unit_scale(M: np.ndarray, *others: float) -> tuple[np.ndarray, int]:
    """``(M * 2**-e, e)`` with ``max(max|M|, *others) = f 2**e``, ``1 <= f < 2``.

    The exact power-of-two rescaling at the door of every dense spectral
    routine: they compute on a matrix whose largest entry lies in [1, 2)
    and scale their results back with :func:`scale_back`, so that
    f(2**k A) = 2**k f(A) bit for bit and f(c A) = c f(A) to rounding for
    any c in 1e-300..1e300 (absolute tolerances, squared norms and LAPACK's
    own scaling then never see entries near under- or overflow). ``others``
    (ε, grid coordinates) set ``e`` instead when they exceed ``2**60 max|A|``:
    the scale then follows them and A's entries may lose digits below their
    rounding (or underflow), which cannot change the result.
    """
    big = float(max_abs(M)) if M.size else 0.0
    other = max((abs(float(o)) for o in others), default=0.0)
    if other > _OTHERS_DOMINATE * big:
        # only when they dwarf A (a scale-invariant test): routines called on the
        # same A then share its unit-scaled copy, hence one cached Schur form
        big = other
    if big == 0.0 or not np.isfinite(big):
        return M, 0
    e = int(pow2_exponent(big)) - 1  # max in [1, 2): e = 0 for max|A| = 1
    return (ldexp(M, -e) if e else M), e


def scale_back(x: Any, e: int, *, where: str, what: str) -> Any:
    """``x * 2**e`` (exact unless it underflows); a finite value that overflows is an error.

    Raises
    ------
    ValueError
        When ``x`` is finite but ``x * 2**e`` is not representable (it names
        ``what`` and ``where``).
    """
    if e == 0:
        return x
    arr = np.asarray(x)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = ldexp(arr, e)
        bad = np.isfinite(arr) & ~np.isfinite(out)
    if np.any(bad):
        raise ValueError(
            f"{where}: {what} overflows: it exceeds the largest float "
            f"({np.finfo(np.float64).max:.3g}) for this scale of A (max|A| ~ 2**{e}); "
            f"scale A down and multiply the result back in extended precision"
        )
    if np.ndim(x) == 0 and not isinstance(x, np.ndarray):
        return complex(out) if np.iscomplexobj(out) else float(out)
    return out
