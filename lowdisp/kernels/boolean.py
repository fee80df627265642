"""Numba kernels of the Boolean matrix product for low-rank binary indexing (private).

``M[i, j] = OR_r (P[i, r] AND Z[r, j])`` with ``P`` (m, k) and ``Z`` (k, n)
binary. :func:`bool_product_words` works on bit-packed rows: the rows of
``Z`` are packed into 64-bit words (bit ``j % 64`` of word ``j // 64``, the
``bitorder="little"`` layout of :func:`numpy.packbits` viewed as ``uint64``
on a little-endian machine), and row ``i`` of ``M`` is the OR of the packed
rows ``r`` of ``Z`` with ``P[i, r]`` set: ``m k ceil(n/64)`` word operations.
:func:`masked_max_product` is the max-times analogue used by the threshold
search: ``out[i, j] = max_{r : P[i, r]} Y[r, j]`` (``-inf`` for an empty row
of ``P``). Arrays in, preallocated outputs, no validation; one signature
each (``P`` bool, words uint64, values float64).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["bool_product_words", "masked_max_product"]


@njit(cache=True, nogil=True)
def bool_product_words(P, Zw, out):  # pragma: no cover - jitted
    """``out[i] = OR_{r : P[i, r]} Zw[r]`` over words; ``P`` (m, k) bool,
    ``Zw`` (k, w) uint64, ``out`` (m, w) uint64."""
    m, k = P.shape
    w = Zw.shape[1]
    for i in range(m):
        for c in range(w):
            out[i, c] = 0
        for r in range(k):
            if P[i, r]:
                for c in range(w):
                    out[i, c] |= Zw[r, c]


@njit(cache=True, nogil=True)
def masked_max_product(P, Y, out):  # pragma: no cover - jitted
    """``out[i, j] = max_{r : P[i, r]} Y[r, j]`` (``-inf`` when row ``i`` of ``P``
    is empty); ``P`` (m, k) bool, ``Y`` (k, n) float64, ``out`` (m, n) float64."""
    m, k = P.shape
    n = Y.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = -np.inf
        for r in range(k):
            if P[i, r]:
                for j in range(n):
                    v = Y[r, j]
                    if v > out[i, j]:
                        out[i, j] = v
