"""pseudospectral_abscissa and pseudospectral_radius (criss-cross): against dense grids
of σ_min, closed forms, recorded values, scale invariance, bad input."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scipy.linalg as sla

import lowdisp.spectral._crisscross as cc
from lowdisp.spectral import (
    CrissCross,
    numerical_radius,
    pseudospectra,
    pseudospectral_abscissa,
    pseudospectral_radius,
)
from tests import oracles


def _smin_dense(A: np.ndarray, z: np.ndarray) -> np.ndarray:
    n = A.shape[0]
    M = z.ravel()[:, None, None] * np.eye(n) - A
    return np.linalg.svd(M, compute_uv=False)[:, -1].reshape(z.shape)


_GRID = 260


@functools.cache
def _dense_grid(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(points, σ_min at them, spacing) of a fine dense grid around the spectrum of case name."""
    A = dict(_mats())[name]
    eps_max = 0.05 * np.linalg.norm(A, 2)
    R = np.abs(np.linalg.eigvals(A)).max() + 2 * eps_max + 0.5
    x = np.linspace(-R, R, _GRID)
    Z = x[None, :] + 1j * x[:, None]
    return Z, _smin_dense(A, Z), float(x[1] - x[0])


def _dense_grid_extreme(name: str, eps: float, kind: str) -> tuple[float, float]:
    """max Re z or |z| over the grid points with σ_min(zI − A) ≤ ε (a lower bound), spacing."""
    Z, S, h = _dense_grid(name)
    inside = Z[np.less_equal(S, eps)]
    return float(inside.real.max() if kind == "abscissa" else np.abs(inside).max()), h


def _mats():
    rng = np.random.default_rng(3)
    yield "gauss", rng.standard_normal((12, 12)) / np.sqrt(12)
    yield "grcar", oracles.grcar(10)
    T = np.triu(rng.standard_normal((10, 10)), 1) + np.diag(rng.uniform(-0.8, 0.8, 10))
    yield "triangular", T
    yield "complex", (rng.standard_normal((9, 9)) + 1j * rng.standard_normal((9, 9))) / 4


@pytest.mark.parametrize("dense_below", [128, 1], ids=["dense-svd", "inverse-lanczos"])
@pytest.mark.parametrize("kind", ["abscissa", "radius"])
@pytest.mark.parametrize("case", list(_mats()), ids=lambda c: c[0])
def test_crisscross_against_a_dense_grid(case, kind, dense_below, monkeypatch):
    """Both σ_min engines (dense SVD below n = 128, inverse Lanczos on the Schur factor)."""
    monkeypatch.setattr(cc, "_DENSE_BELOW", dense_below)
    name, A = case
    eps = 0.05 * np.linalg.norm(A, 2)
    f = pseudospectral_abscissa if kind == "abscissa" else pseudospectral_radius
    r = f(A, eps, rng=0)
    grid, h = _dense_grid_extreme(name, eps, kind)
    assert grid - 1e-12 <= r.value <= grid + 1.5 * h
    # the maximizer is on the boundary and attains the value
    assert abs(oracles.sigma_min_svd(A, r.maximizer) - eps) <= 1e-9 * eps
    z = r.maximizer
    assert abs((z.real if kind == "abscissa" else abs(z)) - r.value) <= 1e-12 * r.value


# values of the previous implementation (QZ circular search, eigenvalue-based
# horizontal/radial searches, dense SVD polish), recorded before replacing it
_RECORDED = {
    ("gauss", 200, 0): {
        "pa": (0.19779960573289318, 1.3620527010231898),
        "pr": (0.019779960573289318, 1.1073382784310208),
        "nr": 1.419274335227736,
    },
    ("cplx", 200, 20): {
        "pa": (0.019679960639598947, 1.036301512695732),
        "pr": (0.19679960639598948, 1.3624267172488733),
        "nr": 1.3954001801987013,
    },
    ("tri", 300, 10): {
        "pa": (0.04997608580674416, 1.7333201304914456),
        "pr": (0.4997608580674416, 2.743323963957538),
        "nr": 3.156487862816838,
    },
}


def _recorded_matrix(kind: str, n: int, seed: int) -> np.ndarray:
    if kind == "gauss":
        return np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)
    rng = np.random.default_rng(seed + n)
    if kind == "cplx":
        return (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2 * n)
    return np.triu(rng.standard_normal((n, n)), 1) * (3 / np.sqrt(n)) + np.diag(
        rng.uniform(-0.9, 0.9, n)
    )


@pytest.mark.parametrize("key", list(_RECORDED), ids=lambda k: f"{k[0]}{k[1]}")
def test_same_values_as_the_previous_implementation(key):
    A = _recorded_matrix(*key)
    rec = _RECORDED[key]
    eps, old = rec["pa"]
    assert abs(pseudospectral_abscissa(A, eps, rng=0).value - old) <= 1e-10 * old
    eps, old = rec["pr"]
    assert abs(pseudospectral_radius(A, eps, rng=0).value - old) <= 1e-10 * old
    assert abs(numerical_radius(A, rng=0) - rec["nr"]) <= 1e-10 * rec["nr"]


def test_crisscross_closed_forms_and_normal_matrices():
    J = np.array([[0.0, 1.0], [0.0, 0.0]])
    for e in (1e-1, 1e-4):
        exact = np.sqrt(e + e * e)
        assert abs(pseudospectral_radius(J, e).value - exact) <= 1e-12
        assert abs(pseudospectral_abscissa(J, e).value - exact) <= 1e-12
    D = np.diag([0.3, -0.9 + 0.1j, 0.5j])
    assert abs(pseudospectral_radius(D, 0.05).value - (abs(-0.9 + 0.1j) + 0.05)) <= 1e-12
    assert abs(pseudospectral_abscissa(D, 0.05).value - 0.35) <= 1e-12


def test_circle_crossings_standard_form_matches_qz():
    """(F − σG)⁻¹G gives the same unimodular eigenvalues as the QZ algorithm on F − λG."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((20, 20)) / np.sqrt(20)
    eps, r = 0.05, 0.95
    fast = cc._circle_crossings(A, r, eps)
    n = 20
    I, Z = np.eye(n), np.zeros((n, n))
    F = np.block([[A, -eps * I], [Z, r * I]])
    G = np.block([[r * I, Z], [-eps * I, A.T]])
    lam = sla.eigvals(F, G)
    lam = lam[np.isfinite(lam)]
    ref = np.sort(np.mod(np.angle(lam[np.abs(np.abs(lam) - 1) < 1e-8]), 2 * np.pi))
    assert fast.size == ref.size > 0
    assert np.abs(fast - ref).max() < 1e-9
    # each angle is a crossing: ε is a singular value of r e^{iθ} I − A
    for t in fast:
        s = sla.svdvals(r * np.exp(1j * t) * I - A)
        assert np.abs(s - eps).min() < 1e-9


def test_circle_crossings_with_a_singular_matrix():
    A = oracles.jordan_block(6)  # singular: λ = 0 and ∞ are eigenvalues of the pencil
    t = cc._circle_crossings(A, 0.5, 0.1)
    assert t.size > 0 and np.isfinite(t).all()
    r = pseudospectral_radius(A, 1e-3)
    assert abs(oracles.sigma_min_svd(A, r.maximizer) - 1e-3) < 1e-12


def test_radius_finds_the_maximum_the_legacy_qz_search_missed():
    """A triangular 5 x 5 case where the previous implementation returned 0.98627 (an
    interior local maximum): a dense polar grid finds σ_ε points beyond it."""
    rng = np.random.default_rng(1079)
    n = int(rng.integers(2, 40))
    A = np.triu(rng.standard_normal((n, n)), 1) * rng.uniform(0.5, 5) / np.sqrt(n)
    A += np.diag(rng.uniform(-1, 1, n))
    eps = 1e-2 * np.linalg.norm(A, 2)
    r = pseudospectral_radius(A, eps, rng=0)
    assert abs(oracles.sigma_min_svd(A, r.maximizer) - eps) <= 1e-12 * eps
    th = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    R = np.linspace(0.95, 1.05, 201)
    Z = (R[:, None] * np.exp(1j * th)[None, :]).ravel()
    inside = np.abs(Z[np.less_equal(_smin_dense(A, Z), eps)])
    assert inside.max() > 0.98627 + 0.01  # the legacy value was not the maximum
    assert inside.max() - 1e-12 <= r.value <= inside.max() + 5e-4  # within the grid step


SCALES = [1e-300, 1e-150, 1e150, 1e300]


@pytest.mark.parametrize("scale", SCALES)
def test_criss_cross_is_scale_invariant(scale):
    # at 1e150 the criss-cross returned 0.95 (below the spectral abscissa 2)
    A = np.array([[1.0, 5.0], [0.0, 2.0]])
    eps = 1e-2
    for fn in (pseudospectral_abscissa, pseudospectral_radius):
        ref = fn(A, eps)
        got = fn(A * scale, eps * scale)
        assert got.value / scale == pytest.approx(ref.value, rel=1e-12)
        smin = sla.svdvals(got.maximizer * np.eye(2) - A * scale)[-1]
        assert smin / (eps * scale) == pytest.approx(1.0, rel=1e-8)


def test_issue9_criss_cross_at_tiny_and_huge_scales():
    # the Schur-factor climbs work on A / 2^k like the rest of the dense routines
    A = np.array([[0.5, 3.0, 0.0], [0.0, -0.4, 2.0], [0.0, 0.0, 0.1]])
    ref_r = pseudospectral_radius(A, 0.05).value
    ref_a = pseudospectral_abscissa(A, 0.05).value
    for s in (1e-250, 1e250):
        assert abs(pseudospectral_radius(s * A, 0.05 * s).value / s - ref_r) <= 1e-12 * ref_r
        assert abs(pseudospectral_abscissa(s * A, 0.05 * s).value / s - ref_a) <= 1e-12 * ref_a


@pytest.mark.slow
def test_grcar_published_values():
    # Guglielmi & Overton, SIMAX 32(4), 2011: Grcar(100), eps = 1e-4
    A = oracles.grcar(100)
    a = pseudospectral_abscissa(A, 1e-4)
    r = pseudospectral_radius(A, 1e-4)
    assert isinstance(a, CrissCross)
    assert abs(a.value - 2.41276) <= 1e-5
    assert abs(r.value - 2.85216) <= 1e-5
    for res in (a, r):
        assert abs(oracles.sigma_min_svd(A, res.maximizer) / 1e-4 - 1) <= 1e-8
    assert a.maximizer.real == pytest.approx(a.value, abs=1e-14)
    assert abs(r.maximizer) == pytest.approx(r.value, rel=1e-14)


@pytest.mark.parametrize("eps", [1e-8, 1e-4, 1e-2, 0.3, 2.0])
def test_jordan_block_closed_form(eps):
    J = oracles.jordan_block(2)
    exact = math.sqrt(eps + eps * eps)
    a = pseudospectral_abscissa(J, eps)
    r = pseudospectral_radius(J, eps)
    assert abs(a.value - exact) <= 1e-12 * exact
    assert abs(r.value - exact) <= 1e-12 * exact
    for res in (a, r):
        assert abs(oracles.sigma_min_svd(J, res.maximizer) / eps - 1) <= 1e-8


def test_normal_matrix_abscissa_and_radius(rng):
    n = 12
    Q, _ = np.linalg.qr(oracles.random_matrix(rng, n, n, np.complex128))
    lam = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    A = (Q * lam) @ Q.conj().T
    eps = 0.05
    assert pseudospectral_abscissa(A, eps).value == pytest.approx(lam.real.max() + eps, rel=1e-10)
    assert pseudospectral_radius(A, eps).value == pytest.approx(np.abs(lam).max() + eps, rel=1e-10)


def test_criss_cross_bounds_the_grid(rng):
    # every grid point inside sigma_eps lies left of alpha_eps and inside rho_eps
    A = oracles.random_triangular(rng, 15)
    eps = 1e-2
    ps = pseudospectra(A, npts=40, tol=1e-10, rng=rng)
    X, Y = np.meshgrid(ps.re, ps.im)
    inside = ps.sigma_min <= eps
    assert inside.any()
    a = pseudospectral_abscissa(A, eps).value
    r = pseudospectral_radius(A, eps).value
    assert X[inside].max() <= a + 1e-12
    assert np.abs(X + 1j * Y)[inside].max() <= r + 1e-12
    # and the grid gets close (spacing ~ 0.1 of the box)
    h = ps.re[1] - ps.re[0]
    assert X[inside].max() >= a - 2 * h


def test_criss_cross_bad_input():
    for f in (pseudospectral_abscissa, pseudospectral_radius):
        with pytest.raises(ValueError, match="eps must be finite and > 0"):
            f(np.eye(2), 0.0)
        with pytest.raises(ValueError, match="eps must be finite and > 0"):
            f(np.eye(2), float("nan"))
        with pytest.raises(TypeError, match="eps must be a real number"):
            f(np.eye(2), "0.1")
        with pytest.raises(ValueError, match="A must be a square matrix"):
            f(np.ones((2, 3)), 0.1)
        with pytest.raises(ValueError, match="A must not be empty"):
            f(np.zeros((0, 0)), 0.1)
        with pytest.raises(ValueError, match="A must be finite"):
            f(np.array([[np.nan]]), 0.1)
