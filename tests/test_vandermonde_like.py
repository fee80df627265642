"""Vandermonde-like matrices: the tiled and roots-of-unity engines against dense references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.structured import _common
from lowdisp.structured.families import vandermonde as vl
from lowdisp.testing import check_vjp
from tests.oracles import rel_err

DTYPES = [np.float64, np.float32, np.complex128]


def _rand(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def dense_vandermonde_like(v, G, H):
    m, n = len(v), H.shape[0]
    V = np.array([[complex(v[j]) ** k for k in range(n)] for j in range(m)])
    M = np.zeros((m, n), complex)
    for i in range(G.shape[1]):
        L = np.array([[H[a - b, i] if a >= b else 0 for b in range(n)] for a in range(n)])
        M += np.diag(G[:, i]) @ V @ L.T
    return M


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(7, 9), (9, 4)])
def test_vandermonde_products(rng, dtype, m, n):
    v = (0.9 * _rand(rng, m, dtype)).astype(dtype)
    G, H = _rand(rng, (m, 3), dtype), _rand(rng, (n, 3), dtype)
    X, Y = _rand(rng, (n, 4), dtype), _rand(rng, (m, 4), dtype)
    M = dense_vandermonde_like(v, G, H)
    out = vl.vandermonde_matmat(v, G, H, X)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M @ X) < _tol(dtype)
    out = vl.vandermonde_rmatmat(v, G, H, Y)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M.conj().T @ Y) < _tol(dtype)


def _vdm_f(d):
    return vl.vandermonde_matmat(d["v"], d["G"], d["H"], d["X"])


def _vdm_vjp(d, dy):
    return vl.vandermonde_vjp(d["v"], d["G"], d["H"], d["X"], dy)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_vandermonde_vjp(rng, dtype, monkeypatch):
    monkeypatch.setattr(_common, "_TILE_COLS", 3)  # carry powers across column tiles
    m, n = 6, 7
    x = {
        "v": 0.9 * _rand(rng, m, dtype),
        "G": _rand(rng, (m, 2), dtype),
        "H": _rand(rng, (n, 2), dtype),
        "X": _rand(rng, (n, 3), dtype),
    }
    assert check_vjp(_vdm_f, _vdm_vjp, x, rng=rng) < 1e-6
    M = dense_vandermonde_like(x["v"], x["G"], x["H"])
    assert rel_err(_vdm_f(x), M @ x["X"]) < 1e-12


@given(m=st.integers(2, 17), n=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_vandermonde_roots_of_unity_fft_path(m, n, seed):
    """Nodes = the m-th roots of unity in random order: FFT path, n < m, = m and > m."""
    g = np.random.default_rng(seed)
    v = np.exp(2j * np.pi * g.permutation(m) / m)
    assert vl._roots_of_unity(v) is not None
    G, H = _rand(g, (m, 2), np.complex128), _rand(g, (n, 2), np.complex128)
    X, Y = _rand(g, (n, 3), np.complex128), _rand(g, (m, 3), np.complex128)
    M = dense_vandermonde_like(v, G, H)
    assert rel_err(vl.vandermonde_matmat(v, G, H, X), M @ X) < 1e-10
    assert rel_err(vl.vandermonde_rmatmat(v, G, H, Y), M.conj().T @ Y) < 1e-10


def test_vandermonde_roots_of_unity_vjp(rng):
    m, n = 8, 11
    x = {
        "v": np.exp(2j * np.pi * rng.permutation(m) / m),
        "G": _rand(rng, (m, 2), np.complex128),
        "H": _rand(rng, (n, 2), np.complex128),
        "X": _rand(rng, (n, 3), np.complex128),
    }
    assert check_vjp(_vdm_f, _vdm_vjp, x, rng=rng) < 1e-6
