"""Input conversion of the orthogonal package (private).

:func:`as_array` is :func:`lowdisp._validation.as_array` preceded by one
conversion to a plain :class:`numpy.ndarray`:

- ndarray subclasses (``np.matrix``, ``np.memmap``, ...) become plain arrays
  with :func:`numpy.asarray` (``np.matrix`` would otherwise turn ``*`` into
  a matrix product and keep every slice two-dimensional);
- masked arrays are refused with a ``ValueError`` (as SciPy does): a mask
  has no meaning for a matrix map, and ``np.asarray`` would silently expose
  the masked values (a NaN under a mask passed the finiteness check). Fill
  them explicitly with ``np.ma.filled(x, value)`` first.

This belongs in :mod:`lowdisp._validation` (one conversion for every entry
point, issue 10); it lives here until that module takes it over.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_array as _as_array_checked

__all__ = ["as_array", "as_plain_ndarray"]


def as_plain_ndarray(x: Any, name: str, *, where: str | None = None) -> Any:
    """``x`` unchanged unless it is an ndarray subclass: then a plain ndarray view.

    Raises
    ------
    ValueError
        For a masked array (``numpy.ma.MaskedArray``).
    """
    if isinstance(x, np.ma.MaskedArray):
        p = f"{where}: " if where else ""
        raise ValueError(
            f"{p}{name} is a masked array; masked arrays are not supported. "
            f"Pass np.ma.filled({name}, fill_value) (or {name}.data) explicitly"
        )
    if isinstance(x, np.ndarray) and type(x) is not np.ndarray:
        return np.asarray(x)
    return x


def as_array(x: Any, name: str, *, where: str | None = None, **kwargs: Any) -> np.ndarray:
    """:func:`lowdisp._validation.as_array` on the plain-ndarray form of ``x``."""
    return _as_array_checked(as_plain_ndarray(x, name, where=where), name, where=where, **kwargs)
