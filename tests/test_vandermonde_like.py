"""Vandermonde-like matrices: the tiled and roots-of-unity engines against dense references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.structured import _common
from lowdisp.structured.families import vandermonde as vl
from lowdisp.testing import check_vjp
from tests.oracles import random_array, rel_err

DTYPES = [np.float64, np.float32, np.complex128]


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
    v = (0.9 * random_array(rng, m, dtype)).astype(dtype)
    G, H = random_array(rng, (m, 3), dtype), random_array(rng, (n, 3), dtype)
    X, Y = random_array(rng, (n, 4), dtype), random_array(rng, (m, 4), dtype)
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
        "v": 0.9 * random_array(rng, m, dtype),
        "G": random_array(rng, (m, 2), dtype),
        "H": random_array(rng, (n, 2), dtype),
        "X": random_array(rng, (n, 3), dtype),
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
    G, H = random_array(g, (m, 2), np.complex128), random_array(g, (n, 2), np.complex128)
    X, Y = random_array(g, (n, 3), np.complex128), random_array(g, (m, 3), np.complex128)
    M = dense_vandermonde_like(v, G, H)
    assert rel_err(vl.vandermonde_matmat(v, G, H, X), M @ X) < 1e-10
    assert rel_err(vl.vandermonde_rmatmat(v, G, H, Y), M.conj().T @ Y) < 1e-10


def test_vandermonde_roots_of_unity_vjp(rng):
    m, n = 8, 11
    x = {
        "v": np.exp(2j * np.pi * rng.permutation(m) / m),
        "G": random_array(rng, (m, 2), np.complex128),
        "H": random_array(rng, (n, 2), np.complex128),
        "X": random_array(rng, (n, 3), np.complex128),
    }
    assert check_vjp(_vdm_f, _vdm_vjp, x, rng=rng) < 1e-6


def _all_products(v, G, H, X, Y):
    d = vl.vandermonde_vjp(v, G, H, X, Y)
    return [vl.vandermonde_matmat(v, G, H, X), vl.vandermonde_rmatmat(v, G, H, Y)] + [
        d[key] for key in ("G", "H", "v", "X")
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_whole_and_tiled_vandermonde_agree(rng, dtype, monkeypatch):
    """V built whole (small m n, reused by the vjp) and tile by tile give the same numbers."""
    m, n = 11, 13
    v = (0.95 * random_array(rng, m, dtype)).astype(dtype)
    G, H = random_array(rng, (m, 3), dtype), random_array(rng, (n, 3), dtype)
    X, Y = random_array(rng, (n, 4), dtype), random_array(rng, (m, 4), dtype)
    whole = _all_products(v, G, H, X, Y)
    monkeypatch.setattr(vl, "_WHOLE_MAX", 0)
    monkeypatch.setattr(_common, "_TILE_ROWS", 4)
    monkeypatch.setattr(_common, "_TILE_COLS", 5)  # powers carried across column tiles
    tiled = _all_products(v, G, H, X, Y)
    for a, b in zip(whole, tiled, strict=True):
        assert a.dtype == b.dtype == np.dtype(dtype)
        assert rel_err(a, b) < _tol(dtype)
    M = dense_vandermonde_like(v, G, H)
    assert rel_err(tiled[0], M @ X) < _tol(dtype)
    assert rel_err(tiled[1], M.conj().T @ Y) < _tol(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vandermonde_powers_decaying_to_subnormals(rng, dtype):
    """Nodes in (-0.7, 0.7) at n = 784: powers far below the normal range (flushed) stay exact."""
    m = n = 784
    v = rng.uniform(-0.7, 0.7, m).astype(dtype)
    v[:3] = [0.0, 1e-30, -0.999]
    G, H = random_array(rng, (m, 2), dtype), random_array(rng, (n, 2), dtype)
    X = random_array(rng, (n, 3), dtype)
    V = vl.vander(v.astype(np.float64), n)
    M = sum(
        (G[:, i, None] * V) @ _common.fcirc_dense(H[:, i].astype(float), 0.0).T for i in range(2)
    )
    assert rel_err(vl.vandermonde_matmat(v, G, H, X), M @ X) < _tol(dtype)
    assert rel_err(vl.vandermonde_rmatmat(v, G, H, X), M.T @ X) < _tol(dtype)


def test_float32_powers_beyond_range_computed_in_double(rng):
    """|v| = 1.2 at n = 600: v^599 ~ 1e47 is no float32, but M X (G ~ 1e-25) is; it comes out."""
    n = 600
    v = np.array([1.2, -1.2, 0.5], np.float32)
    G = np.full((3, 1), 1e-25, np.float32)
    H = np.zeros((n, 1), np.float32)
    H[0] = 1.0
    X = rng.uniform(0, 1, (n, 2)).astype(np.float32)
    Y = vl.vandermonde_matmat(v, G, H, X)
    ref = (1e-25 * vl.vander(v.astype(np.float64), n)) @ X.astype(np.float64)
    assert Y.dtype == np.float32
    assert rel_err(Y, ref) < 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflowing_node_powers_are_a_clear_error(rng, dtype):
    """Nodes beyond the unit disk at large n: an OverflowError naming max|v|, never a silent inf."""
    n = 784
    big = 1.2 if dtype == np.float32 else 2.6  # 1.2^783 ~ 1e62, 2.6^783 ~ 1e325
    v = rng.uniform(-0.7, 0.7, n).astype(dtype)
    v[5] = big
    G, H = random_array(rng, (n, 4), dtype), random_array(rng, (n, 4), dtype)
    X = random_array(rng, (n, 3), dtype)
    msg = rf"the node powers .* \(max\|v\| = {big}\); keep the nodes in the closed unit disk"
    with pytest.raises(OverflowError, match="vandermonde_matmat: .*" + msg):
        vl.vandermonde_matmat(v, G, H, X)
    with pytest.raises(OverflowError, match="vandermonde_rmatmat: .*" + msg):
        vl.vandermonde_rmatmat(v, G, H, X)
    with pytest.raises(OverflowError, match="vandermonde_vjp: .*" + msg):
        vl.vandermonde_vjp(v, G, H, X, X)
    import lowdisp.structured as ls

    with pytest.raises(OverflowError, match=r"LDRMatrix\.matmat: .*" + msg):
        ls.vandermonde_like(v, G, H) @ X


def test_cached_powers_of_one_matrix_agree(rng):
    """An LDRMatrix keeps V (and V') across its products and vjp, per dtype: same numbers."""
    import lowdisp.structured as ls

    n = 40
    v = rng.uniform(-1, 1, n)
    G, H = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    M = ls.vandermonde_like(v, G, H)
    for dtype in (np.float64, np.complex128, np.float64):
        X, dY = random_array(rng, (n, 3), dtype), random_array(rng, (n, 3), dtype)
        assert rel_err(M @ X, vl.vandermonde_matmat(v, G, H, X)) < 1e-13
        d, ref = M.vjp(X, dY), vl.vandermonde_vjp(v, G, H, X, dY)
        assert rel_err(d["A"], ref["v"]) < 1e-13
        assert rel_err(d["G"], ref["G"]) < 1e-13
        assert rel_err(M.rmatmat(dY), vl.vandermonde_rmatmat(v, G, H, dY)) < 1e-13
        assert rel_err(M @ X, vl.vandermonde_matmat(v, G, H, X)) < 1e-13
