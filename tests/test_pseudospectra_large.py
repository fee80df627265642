"""pseudospectra of operators: shift-and-invert Lanczos (sparse LU, banded Toeplitz, GKO)
against dense SVDs, the Krylov projection bound, route choice and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from lowdisp.spectral import pseudospectra
from lowdisp.spectral._large import _LDRShift, _SparseShift, arnoldi, shifted_factory
from lowdisp.spectral._pseudo import _route
from lowdisp.structured import toeplitz, toeplitz_like
from tests import oracles


def _dense_sigma(A, re, im):
    """σ_min(zI − A) on the grid by dense SVDs (the oracle)."""
    return np.array([[oracles.sigma_min_svd(A, complex(x, y)) for x in re] for y in im])


def _banded(n, rng):
    """A sparse non-normal banded matrix with random entries (no clustered σ_min)."""
    diags = [rng.standard_normal(n - abs(k)) for k in (-2, -1, 0, 1, 3)]
    return sp.diags(diags, [-2, -1, 0, 1, 3], format="csr")


def test_shift_invert_sparse_matches_dense_n500():
    rng = np.random.default_rng(0)
    A = _banded(500, rng)
    re, im = np.linspace(-2.0, 2.0, 4), np.linspace(-1.5, 1.5, 3)
    ps = pseudospectra(A, re=re, im=im, method="shift-invert", tol=1e-12, rng=1)
    ref = _dense_sigma(A.toarray(), re, im)
    assert np.abs(ps.sigma_min / ref - 1).max() < 1e-8
    assert ps.eigenvalues.size == 0


def test_shift_invert_complex_sparse_and_dense_route_agree():
    rng = np.random.default_rng(1)
    A = (_banded(500, rng) + 1j * _banded(500, rng)).tocsc()
    re, im = np.linspace(-2.0, 2.0, 3), np.linspace(-2.0, 2.0, 3)
    ps = pseudospectra(A, re=re, im=im, method="shift-invert", tol=1e-12, rng=1)
    dense = pseudospectra(A.toarray(), re=re, im=im, tol=1e-12, rng=1)
    assert np.abs(ps.sigma_min / dense.sigma_min - 1).max() < 1e-8


def test_banded_toeplitz_ldr_uses_sparse_lu_and_matches_dense():
    n = 500
    c = np.zeros(n)
    c[:2] = [1.0, -1.0]
    r = np.zeros(n)
    r[:4] = 1.0
    T = toeplitz(c, r)  # Grcar(500) as an LDR matrix
    fac = shifted_factory(T, "ldr-toeplitz")
    assert isinstance(fac, _SparseShift)
    # points outside the Grcar pseudospectra (σ_min well above the rounding floor)
    re, im = np.linspace(-1.5, 3.5, 3), np.array([3.0, 3.6])
    ps = pseudospectra(T, re=re, im=im, method="shift-invert", tol=1e-12, rng=0)
    ref = _dense_sigma(oracles.grcar(n), re, im)
    assert ref.min() > 1e-6
    assert np.abs(ps.sigma_min / ref - 1).max() < 1e-8


@pytest.mark.parametrize(("kind", "n"), [("sylvester", 500), ("stein", 300)])
def test_shift_invert_toeplitz_like_gko_matches_dense(kind, n):
    # tol 1e-9: the residual of the GKO-based Lanczos stagnates near the solve's
    # own error (about 1e-11 relative for the Stein pair), so 1e-12 is not reachable
    rng = np.random.default_rng(2)
    M = toeplitz_like(rng.standard_normal((n, 2)), rng.standard_normal((n, 2)), kind=kind)
    fac = shifted_factory(M, "ldr-toeplitz")
    assert isinstance(fac, _LDRShift)  # not banded: the pivoted GKO solve of zI − M
    re, im = np.array([-0.5, 1.0]), np.array([0.7])
    ps = pseudospectra(M, re=re, im=im, method="shift-invert", tol=1e-9, rng=0)
    ref = _dense_sigma(M.toarray(), re, im)
    assert np.abs(ps.sigma_min / ref - 1).max() < 1e-8


def _proj_bound_holds(A, k, z, rng):
    V, H = arnoldi(lambda v: A @ v, rng.standard_normal(A.shape[0]), k)
    kk = H.shape[1]
    # the Arnoldi relation A V_k = V_{k+1} H̃ with orthonormal V
    assert np.abs(A @ V[:kk].T - V[: kk + 1].T @ H).max() < 1e-10 * max(1.0, np.abs(A).max())
    # orthonormal rows (the last row is zero after a breakdown, where H̃[k, k-1] = 0)
    W = V if H[kk, kk - 1] != 0 else V[:kk]
    assert np.abs(W @ W.conj().T - np.eye(W.shape[0])).max() < 1e-12
    sp_ = np.linalg.svd(z * np.eye(kk + 1, kk) - H, compute_uv=False)[-1]
    return sp_, oracles.sigma_min_svd(A, z)


def test_projection_is_a_lower_bound_of_the_resolvent_norm():
    rng = np.random.default_rng(3)
    A = oracles.grcar(120)
    re, im = np.linspace(-1.0, 3.0, 6), np.linspace(-3.5, 3.5, 5)
    ps = pseudospectra(A, re=re, im=im, method="projection", k=30, rng=4)
    ref = _dense_sigma(A, re, im)
    # σ_min(zĨ − H̃) >= σ_min(zI − A): ‖(zI − A)⁻¹‖ >= 1/σ_min(zĨ − H̃)
    assert (ps.sigma_min >= ref * (1 - 1e-10)).all()
    assert ps.eigenvalues.shape == (30,)
    # the full Krylov space (k = n) gives the exact values
    B = rng.standard_normal((40, 40))
    full = pseudospectra(B, re=re[:3], im=im[:3], method="projection", k=40, rng=0)
    exact = _dense_sigma(B, re[:3], im[:3])
    assert np.abs(full.sigma_min / exact - 1).max() < 1e-8


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(4, 30),
    k=st.integers(2, 30),
    x=st.floats(-3, 3),
    y=st.floats(-3, 3),
    cplx=st.booleans(),
)
def test_projection_bound_property(seed, n, k, x, y, cplx):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if cplx else 0)
    A = np.triu(A, -1)  # upper Hessenberg: strongly non-normal
    s_proj, s_true = _proj_bound_holds(A, min(k, n), complex(x, y), rng)
    assert s_proj >= s_true * (1 - 1e-10) - 1e-13


def test_projection_accepts_any_linear_operator_and_mirrors_real_input():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((50, 50))
    op = LinearOperator((50, 50), matvec=lambda v: A @ v, dtype=float)
    im = np.linspace(-1.0, 1.0, 5)
    ps = pseudospectra(op, re=np.linspace(-1, 1, 3), im=im, method="projection", k=10, rng=0)
    np.testing.assert_array_equal(ps.sigma_min, ps.sigma_min[::-1])  # σ(z̄) = σ(z)
    ref = _dense_sigma(A, ps.re, ps.im)
    assert (ps.sigma_min >= ref * (1 - 1e-10)).all()


def test_results_do_not_depend_on_workers():
    A = _banded(200, np.random.default_rng(6))
    kw = {"re": np.linspace(-1, 1, 3), "im": np.linspace(0.2, 1, 5), "rng": 7}
    kw["method"] = "shift-invert"
    a = pseudospectra(A, workers=1, **kw)
    b = pseudospectra(A, workers=3, **kw)
    np.testing.assert_array_equal(a.sigma_min, b.sigma_min)


def test_auto_route():
    big = LinearOperator((9000, 9000), matvec=lambda v: v, dtype=float)
    assert _route(big, "auto", "pseudospectra")[0] == "projection"
    small = aslinearoperator(np.eye(20))
    assert _route(small, "auto", "pseudospectra")[0] == "dense"
    S = sp.identity(2000, format="csr")
    assert _route(S, "auto", "pseudospectra")[0] == "shift-invert"
    assert _route(sp.identity(50, format="csr"), "auto", "pseudospectra")[0] == "dense"
    assert _route(np.eye(3), "auto", "pseudospectra")[0] == "dense"


def test_singular_shift_is_reported_as_the_clamp():
    A = sp.diags([1.0, 2.0, 3.0]).tocsr()
    with pytest.warns(UserWarning, match="underflowed"):
        ps = pseudospectra(A, re=np.array([1.0, 1.5]), im=np.array([0.0]), method="shift-invert")
    assert ps.sigma_min[0, 0] == 1e-150
    assert abs(ps.sigma_min[0, 1] - 0.5) < 1e-12


def test_bad_input():
    with pytest.raises(ValueError, match="pseudospectra: A must be square; got shape"):
        pseudospectra(sp.random(3, 4, density=0.5, format="csr"), method="shift-invert")
    with pytest.raises(ValueError, match="pseudospectra: A must be square"):
        pseudospectra(aslinearoperator(np.ones((3, 4))), method="projection")
    with pytest.raises(ValueError, match=r"pseudospectra: k must be in \[2, inf\]; got 1"):
        pseudospectra(np.eye(5), method="projection", k=1)
    with pytest.raises(ValueError, match="k must be at most n = 5"):
        pseudospectra(np.eye(5), method="projection", k=6)
    with pytest.raises(ValueError, match=r"unknown method 'arpack'.*shift-invert.*projection"):
        pseudospectra(np.eye(5), method="arpack")
    with pytest.raises(ValueError, match="method='shift-invert' needs a fast shifted solve"):
        pseudospectra(aslinearoperator(np.eye(5)), method="shift-invert")
    with pytest.raises(ValueError, match="method='shift-invert' needs a fast shifted solve"):
        pseudospectra(np.eye(5), method="shift-invert")
    bad = sp.diags([1.0, np.nan, 2.0]).tocsr()
    with pytest.raises(ValueError, match="pseudospectra: A must be finite"):
        pseudospectra(bad, method="shift-invert")
    pytest.importorskip("dask.distributed")
    with pytest.raises(TypeError, match=r"client must be a dask\.distributed\.Client"):
        pseudospectra(np.eye(5), client="tcp://127.0.0.1:8786")
