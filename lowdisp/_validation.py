"""Argument checks shared by every public entry point (private).

Each helper takes the caller's name (``where``) and the argument's name so the
message says who complained about what, what was expected and what came:

    ValueError: toeplitz_like: G must be finite; got 1 NaN/Inf entries
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from lowdisp._config import result_dtype

__all__ = [
    "as_array",
    "as_plain_ndarray",
    "as_rng",
    "check_bool",
    "check_dtype",
    "check_finite",
    "check_int",
    "check_option",
    "check_positive",
    "check_real",
    "check_shape",
    "check_square",
    "column_exponents",
    "ldexp",
    "lookup",
    "max_abs",
    "pow2_exponent",
    "prod_pow2",
    "safe_exponent",
    "scale_back",
    "unit_scale",
]

T = TypeVar("T")


def _prefix(where: str | None) -> str:
    return f"{where}: " if where else ""


def as_plain_ndarray(x: Any, name: str, *, where: str | None = None) -> Any:
    """``x`` unchanged unless it is an ndarray subclass: then a plain ndarray view.

    - ndarray subclasses (``np.matrix``, ``np.memmap``, ...) become plain
      arrays with :func:`numpy.asarray` (``np.matrix`` would otherwise turn
      ``*`` into a matrix product and keep every slice two-dimensional);
    - masked arrays are refused (as SciPy does): a mask has no meaning for a
      matrix map, and ``np.asarray`` would silently expose the masked values
      (a NaN under a mask would pass the finiteness check). Fill them
      explicitly with ``np.ma.filled(x, value)`` first.

    Raises
    ------
    ValueError
        For a masked array (``numpy.ma.MaskedArray``).
    """
    if isinstance(x, np.ma.MaskedArray):
        raise ValueError(
            f"{_prefix(where)}{name} is a masked array; masked arrays are not supported. "
            f"Pass np.ma.filled({name}, fill_value) (or {name}.data) explicitly"
        )
    if isinstance(x, np.ndarray) and type(x) is not np.ndarray:
        return np.asarray(x)
    return x


def as_array(
    x: Any,
    name: str,
    *,
    where: str | None = None,
    ndim: int | tuple[int, ...] | None = None,
    dtype: Any = None,
    finite: bool = True,
    allow_complex: bool = True,
    copy: bool = False,
) -> np.ndarray:
    """Convert ``x`` to a floating or complex ndarray and check it.

    Parameters
    ----------
    x : array_like
        The argument.
    name : str
        Its name, used in messages.
    where : str, optional
        The public function being called, used in messages.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    dtype : dtype, optional
        Cast to this dtype (after the checks); by default the promoted
        floating dtype of ``x`` (:func:`lowdisp._config.result_dtype`).
    finite : bool
        Refuse NaN and infinities.
    allow_complex : bool
        Refuse complex input when False.
    copy : bool
        Always return a fresh array.

    Returns
    -------
    ndarray
        A plain ndarray (never a subclass).

    Raises
    ------
    ValueError
        For a masked array (see :func:`as_plain_ndarray`), a wrong number of
        dimensions or non-finite entries.
    TypeError
        For input that is not numeric.
    """
    p = _prefix(where)
    x = as_plain_ndarray(x, name, where=where)
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{p}{name} must be array_like; got {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise TypeError(f"{p}{name} must hold real or complex numbers; got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{p}{name} must have {want} dimension(s); got shape {arr.shape}")
    if not allow_complex and arr.dtype.kind == "c":
        raise TypeError(f"{p}{name} must be real; got dtype {arr.dtype}")
    target = np.dtype(dtype) if dtype is not None else result_dtype(arr.dtype)
    if arr.dtype != target or copy:
        arr = arr.astype(target, copy=True)
    if finite:
        check_finite(arr, name, where=where)
    return arr


def check_finite(arr: np.ndarray, name: str, *, where: str | None = None) -> None:
    """Raise ``ValueError`` if ``arr`` holds NaN or infinities."""
    if arr.size and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{_prefix(where)}{name} must be finite; got {bad} NaN/Inf entries")


def check_shape(
    arr: np.ndarray,
    name: str,
    shape: tuple[int | None, ...],
    *,
    where: str | None = None,
) -> None:
    """Check ``arr.shape`` against ``shape`` (``None`` matches any size)."""
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{_prefix(where)}{name} must have shape {want}; got {arr.shape}")


def check_square(arr: np.ndarray, name: str, *, where: str | None = None) -> int:
    """Check that ``arr`` is a square matrix and return its order."""
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{_prefix(where)}{name} must be a square matrix; got shape {arr.shape}")
    return int(arr.shape[0])


def check_int(
    value: Any,
    name: str,
    *,
    where: str | None = None,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """Check that ``value`` is an integer in ``[low, high]`` and return it as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(where)}{name} must be an integer; got {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{_prefix(where)}{name} must be in [{lo}, {hi}]; got {v}")
    return v


def check_positive(
    value: Any, name: str, *, where: str | None = None, strict: bool = True
) -> float:
    """Check that ``value`` is a finite real number > 0 (>= 0 if not strict)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(where)}{name} must be a real number; got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (strict and v == 0):
        rel = "> 0" if strict else ">= 0"
        raise ValueError(f"{_prefix(where)}{name} must be finite and {rel}; got {value!r}")
    return v


def check_option(value: Any, name: str, options: Any, *, where: str | None = None) -> str:
    """Check that ``value`` is one of ``options``; the error lists the valid names."""
    opts = list(options)
    if value not in opts:
        valid = ", ".join(repr(o) for o in opts)
        raise ValueError(f"{_prefix(where)}unknown {name} {value!r}; valid: {valid}")
    return value


def lookup(registry: Mapping[str, T], value: Any, name: str, *, where: str | None = None) -> T:
    """Look ``value`` up in ``registry``; an unknown key lists the valid names."""
    check_option(value, name, registry.keys(), where=where)
    return registry[value]


def as_rng(rng: Any = None, *, where: str | None = None) -> np.random.Generator:
    """Normalise ``rng`` with :func:`numpy.random.default_rng` (a Generator passes through).

    ``where`` names the calling function in the error message. Booleans and
    floats are refused (``default_rng(True)`` would silently seed with 1).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    bad = isinstance(rng, bool | np.bool_ | float | np.floating | complex)
    if not bad:
        try:
            return np.random.default_rng(rng)
        except (TypeError, ValueError):
            bad = True
    raise TypeError(
        f"{_prefix(where)}rng must be None, an int seed, a SeedSequence, a BitGenerator "
        f"or a Generator; got {rng!r}"
    )


def check_bool(value: Any, name: str, *, where: str | None = None) -> bool:
    """A True/False option: ``bool`` or ``numpy.bool_`` only, returned as ``bool``.

    A string such as ``"no"`` (truthy), ``0``/``1`` or ``None`` is refused
    with a ``TypeError`` naming the function and the argument.
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{_prefix(where)}{name} must be True or False; got {value!r}")
    return bool(value)


def check_dtype(
    dtype: Any, allowed: Any, name: str = "dtype", *, where: str | None = None
) -> np.dtype:
    """A dtype option: one of ``allowed`` (anything :class:`numpy.dtype` accepts names it).

    Returns the :class:`numpy.dtype`; anything else (a wrong or unknown dtype,
    a string that is no dtype, ``None``) is a ``TypeError`` listing the valid
    dtypes.
    """
    valid = [np.dtype(a) for a in allowed]
    names = " or ".join(str(v) for v in valid)
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except (TypeError, ValueError, SyntaxError):
        dt = None
    if dt is None or dt not in valid:
        raise TypeError(f"{_prefix(where)}{name} must be {names}; got {dtype!r}")
    return dt


def check_real(
    value: Any,
    name: str,
    *,
    where: str | None = None,
    finite: bool = True,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_complex: bool = False,
) -> Any:
    """Check a scalar option: a real number (not bool), finite, in ``[low, high]``.

    ``low_open``/``high_open`` make the bounds strict. With
    ``allow_complex=True`` a complex number passes too (bounds then do not
    apply) and a ``complex`` is returned when its imaginary part is nonzero.
    Returns a Python ``float`` (or ``complex``).
    """
    p = _prefix(where)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    ok_types: tuple[type, ...] = (numbers.Complex,) if allow_complex else (numbers.Real,)
    if isinstance(value, bool | np.bool_) or not isinstance(value, ok_types):
        kind = "a real or complex number" if allow_complex else "a real number"
        raise TypeError(f"{p}{name} must be {kind}; got {value!r}")
    if allow_complex and isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        z = complex(value)
        if finite and not (np.isfinite(z.real) and np.isfinite(z.imag)):
            raise ValueError(f"{p}{name} must be finite; got {value!r}")
        if z.imag != 0:
            return z
        value = z.real
    v = float(value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise ValueError(f"{p}{name} must be finite; got {value!r}")
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if below or above:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + repr(low)
        hi = "inf)" if high is None else repr(high) + (")" if high_open else "]")
        raise ValueError(f"{p}{name} must be in {lo}, {hi}; got {value!r}")
    return v


# --- exact power-of-two rescaling -------------------------------------------------
# Scaling by 2**e is exact in binary floating point (barring underflow to
# subnormals), so a computation done on X * 2**-e and scaled back gives the same
# rounding as on X while keeping every intermediate (norms, Gram matrices,
# LAPACK's internal scaling, squared distances) far from overflow and underflow.


def safe_exponent(dtype: Any) -> int:
    """|exponent| of ``max|x|`` below which no rescaling is needed in ``dtype``.

    Squares of such numbers, and sums of up to ``2**40`` of them, stay far
    inside the normal range: 200 for double, 20 for single precision.
    """
    return 20 if np.finfo(dtype).bits <= 32 else 200


def max_abs(X: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``max(|Re x|, |Im x|)`` (no overflow of ``|x|`` for huge complex entries).

    0 for an empty ``X`` (an array of zeros of the reduced shape with ``axis``).
    """
    X = np.asarray(X)
    if X.size == 0:
        shape = () if axis is None else tuple(s for i, s in enumerate(X.shape) if i != axis)
        return np.zeros(shape)
    if np.iscomplexobj(X):
        return np.maximum(np.abs(X.real).max(axis=axis), np.abs(X.imag).max(axis=axis))
    return np.abs(X).max(axis=axis)


def pow2_exponent(m: float | np.ndarray) -> np.ndarray:
    """Exponent ``e`` with ``m = f 2**e``, ``0.5 <= f < 1`` (0 for ``m == 0``)."""
    return np.frexp(np.asarray(m, dtype=np.float64))[1].astype(np.int64)


def ldexp(X: np.ndarray, e: int | np.ndarray) -> np.ndarray:
    """``X * 2**e`` exactly (complex-safe; ``e`` broadcasts against ``X``; dtype kept)."""
    X = np.asarray(X)
    if np.iscomplexobj(X):
        out = np.empty(np.broadcast_shapes(X.shape, np.shape(e)), dtype=X.dtype)
        out.real = np.ldexp(X.real, e)
        out.imag = np.ldexp(X.imag, e)
        return out
    return np.ldexp(X, e).astype(X.dtype, copy=False)


def column_exponents(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column max-abs entries of ``V`` and their power-of-two exponents."""
    cmax = max_abs(V, axis=0)
    return cmax, pow2_exponent(cmax)


def prod_pow2(x: Any) -> tuple[complex | float, int]:
    """``prod(x)`` as ``(m, e)`` with ``prod(x) = m * 2**e`` and ``0.5 <= |m| < 1``.

    No overflow or underflow for any length (``prod`` of 1200 twos is
    ``inf`` in float64); ``(0.0, 0)`` if an entry is zero, ``(1.0, 0)`` for an
    empty ``x``. Signs (complex phases) of the entries go into ``m``.
    """
    v = np.asarray(x).ravel()
    if v.size == 0:
        return 1.0, 0
    mags = np.abs(v).astype(np.float64)
    if not mags.all():
        return 0.0, 0
    # signs (real) or unit-modulus phases (complex): their product cannot overflow
    phase: complex | float = np.prod(v / mags).item()
    frac, exps = np.frexp(mags)
    e, m = int(exps.sum()), 1.0
    for chunk in np.array_split(frac, -(-frac.size // 512)):  # >= 2**-512 per chunk
        m, de = np.frexp(m * float(np.prod(chunk)))
        e += int(de)
    mant = float(m) * phase
    if isinstance(mant, complex):
        return mant, e
    return float(mant), e


#: ε or grid coordinates larger than this times max|A| set the scale instead of A
_OTHERS_DOMINATE = 2.0**60


def unit_scale(M: np.ndarray, *others: float) -> tuple[np.ndarray, int]:
    """``(M * 2**-e, e)`` with ``max(max|M|, *others) = f 2**e``, ``1 <= f < 2``.

    The exact power-of-two rescaling at the door of every dense routine
    (spectral measures, orthogonality errors, skew Schur and eigen forms):
    they compute on a matrix whose largest entry lies in [1, 2)
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
