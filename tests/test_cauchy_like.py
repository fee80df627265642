"""Cauchy-like matrices: the tiled engine (products, vjp, memory) against dense references."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lowdisp.structured import _common
from lowdisp.structured.families import cauchy as cl
from lowdisp.testing import check_vjp
from tests.oracles import random_array, rel_err

DTYPES = [np.float64, np.float32, np.complex128]


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def dense_cauchy_like(s, t, G, H):
    m, n = len(s), len(t)
    M = np.zeros((m, n), complex)
    for j in range(m):
        for k in range(n):
            M[j, k] = np.dot(G[j], H[k]) / (s[j] - t[k])
    return M


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(7, 9), (9, 4)])
def test_cauchy_products(rng, dtype, m, n):
    s, t = random_array(rng, m, dtype), random_array(rng, n, dtype) + 4
    G, H = random_array(rng, (m, 3), dtype), random_array(rng, (n, 3), dtype)
    X, Y = random_array(rng, (n, 4), dtype), random_array(rng, (m, 4), dtype)
    M = dense_cauchy_like(s, t, G, H)
    out = cl.cauchy_matmat(s, t, G, H, X)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M @ X) < _tol(dtype)
    out = cl.cauchy_rmatmat(s, t, G, H, Y)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M.conj().T @ Y) < _tol(dtype)


def test_cauchy_many_tiles(rng, monkeypatch):
    monkeypatch.setattr(_common, "_TILE_ROWS", 3)
    monkeypatch.setattr(_common, "_TILE_COLS", 4)
    s, t = rng.standard_normal(10), rng.standard_normal(11) + 4
    G, H, X = (
        rng.standard_normal((10, 2)),
        rng.standard_normal((11, 2)),
        rng.standard_normal((11, 3)),
    )
    assert rel_err(cl.cauchy_matmat(s, t, G, H, X), dense_cauchy_like(s, t, G, H).real @ X) < 1e-12
    x = {"s": s, "t": t, "G": G, "H": H, "X": X}
    assert check_vjp(_cauchy_f, _cauchy_vjp, x, rng=rng) < 1e-6


def _cauchy_f(d):
    return cl.cauchy_matmat(d["s"], d["t"], d["G"], d["H"], d["X"])


def _cauchy_vjp(d, dy):
    return cl.cauchy_vjp(d["s"], d["t"], d["G"], d["H"], d["X"], dy)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_cauchy_vjp(rng, dtype):
    m, n = 6, 5
    x = {
        "s": random_array(rng, m, dtype),
        "t": random_array(rng, n, dtype) + 4,
        "G": random_array(rng, (m, 2), dtype),
        "H": random_array(rng, (n, 2), dtype),
        "X": random_array(rng, (n, 3), dtype),
    }
    assert check_vjp(_cauchy_f, _cauchy_vjp, x, rng=rng) < 1e-6


def test_cauchy_memory_no_dense_matrix(rng):
    """m = n = 4000 matvec: far below the 128 MB an n x n float64 matrix needs."""
    n = 4000
    s, t = np.arange(n) + 0.5, -np.arange(n) - 0.25
    G, H, x = rng.standard_normal((n, 4)), rng.standard_normal((n, 4)), rng.standard_normal((n, 1))
    tracemalloc.start()
    cl.cauchy_matmat(s, t, G, H, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10e6
