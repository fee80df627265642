"""The LDR families and their ordered registry.

Each family is one module (its fast code and one :class:`LDRFamily` subclass);
:class:`~lowdisp.structured.LDRMatrix` recognises its operator pair by a loop
over :func:`registered` (first the pair as given, then its transpose) and
holds an instance of the family it found. Adding a family is one module plus
one call of :func:`register` (``docs/structured.md``, "Adding a family").
"""

from __future__ import annotations

from typing import Any

from lowdisp.structured.families._base import LDRFamily, is_op
from lowdisp.structured.families.cauchy import CauchyFamily
from lowdisp.structured.families.subdiagonal import SubdiagonalFamily
from lowdisp.structured.families.toeplitz import (
    HankelFamily,
    HankelRightFamily,
    RectToeplitzFamily,
    ToeplitzFamily,
)
from lowdisp.structured.families.tridiagonal import TridiagonalFamily
from lowdisp.structured.families.vandermonde import VandermondeFamily

__all__ = [
    "CauchyFamily",
    "HankelFamily",
    "HankelRightFamily",
    "LDRFamily",
    "RectToeplitzFamily",
    "SubdiagonalFamily",
    "ToeplitzFamily",
    "TridiagonalFamily",
    "VandermondeFamily",
    "describe_pairs",
    "is_op",
    "recognise",
    "register",
    "registered",
    "unregister",
]

#: The ordered registry: the first family that recognises a pair wins (the
#: rectangular Toeplitz case before the square one).
_REGISTRY: list[type[LDRFamily]] = [
    RectToeplitzFamily,
    ToeplitzFamily,
    HankelFamily,
    HankelRightFamily,
    CauchyFamily,
    VandermondeFamily,
    SubdiagonalFamily,
    TridiagonalFamily,
]


def register(family: type[LDRFamily], *, first: bool = False) -> type[LDRFamily]:
    """Add a family to the registry (at the end, or first); returns it (usable as a decorator).

    Parameters
    ----------
    family : subclass of LDRFamily
        With every abstract method implemented.
    first : bool
        Try this family before the registered ones (to take over pairs they
        recognise).

    Returns
    -------
    type

    Raises
    ------
    TypeError
        If ``family`` is not a concrete subclass of :class:`LDRFamily`.

    Examples
    --------
    >>> from lowdisp.structured.families import register, registered, ToeplitzFamily
    >>> register(ToeplitzFamily) is ToeplitzFamily  # already there: nothing changes
    True
    >>> registered().count(ToeplitzFamily)
    1
    """
    if not (isinstance(family, type) and issubclass(family, LDRFamily)):
        raise TypeError(f"register: family must be a subclass of LDRFamily; got {family!r:.60}")
    missing = sorted(getattr(family, "__abstractmethods__", ()))
    if missing:
        raise TypeError(
            f"register: family {family.__name__} does not implement {', '.join(missing)}"
        )
    for attr in ("name", "pairs"):
        if not isinstance(getattr(family, attr, None), str):
            raise TypeError(f"register: family {family.__name__} must set the string {attr!r}")
    if family not in _REGISTRY:
        _REGISTRY.insert(0, family) if first else _REGISTRY.append(family)
    return family


def unregister(family: type[LDRFamily]) -> None:
    """Remove a family from the registry (no error when it is not registered).

    Examples
    --------
    >>> from lowdisp.structured.families import register, unregister, registered
    >>> from lowdisp.structured.families import CauchyFamily
    >>> unregister(CauchyFamily); CauchyFamily in registered()
    False
    >>> _ = register(CauchyFamily); CauchyFamily in registered()
    True
    """
    if family in _REGISTRY:
        _REGISTRY.remove(family)


def registered() -> list[type[LDRFamily]]:
    """The registered families, in recognition order (a copy).

    Examples
    --------
    >>> from lowdisp.structured.families import registered
    >>> {"toeplitz", "cauchy", "subdiagonal"} <= {f.name for f in registered()}
    True
    """
    return list(_REGISTRY)


def recognise(A: Any, B: Any, kind: str) -> tuple[type[LDRFamily], bool] | None:
    """``(family, transposed)`` for the pair ``(A, B, kind)``, or None.

    The registry is tried in order on the pair as given, then on its transpose
    ``(B^T, A^T)`` (``transposed=True``: the family describes ``M^T``).

    Examples
    --------
    >>> import lowdisp as ld
    >>> from lowdisp.structured.families import recognise
    >>> fam, transposed = recognise(ld.Shift(4, -1.0).T, ld.Shift(4, 1.0).T, "sylvester")
    >>> fam.__name__, transposed
    ('ToeplitzFamily', True)
    """
    for fam in _REGISTRY:
        if fam.recognises(A, B, kind):
            return fam, False
    At, Bt = B.T, A.T
    for fam in _REGISTRY:
        if fam.recognises(At, Bt, kind):
            return fam, True
    return None


def describe_pairs() -> str:
    """The supported operator pairs, in words (for error messages).

    Examples
    --------
    >>> from lowdisp.structured.families import describe_pairs
    >>> "cauchy: (Diagonal(s), Diagonal(t)) sylvester" in describe_pairs()
    True
    """
    return "; ".join(fam.pairs for fam in _REGISTRY) + "; and the transposes of these pairs"
