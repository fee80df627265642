"""The fast criss-cross, numerical radius, shared Schur form and tiled grid (issue 9).

Oracles: dense grids of σ_min by ``svdvals`` (the pseudospectral abscissa and
radius are the max of Re z and |z| over the grid points inside σ_ε), a fine
θ grid of dense ``eigvalsh`` (numerical radius), and values recorded from
the previous implementation (QZ-based criss-cross, 128-angle sampling with
bounded scalar refinement) at n = 200 and 300 before it was replaced.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.linalg as sla

import lowdisp.spectral._crisscross as cc
import lowdisp.spectral._nonnormal as nn
from lowdisp.spectral import (
    numerical_radius,
    pseudospectra,
    pseudospectral_abscissa,
    pseudospectral_radius,
)
from lowdisp.spectral._common import complex_schur
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


def _nr_mats() -> list[np.ndarray]:
    rng = np.random.default_rng(8)
    return [
        rng.standard_normal((40, 40)) / 6,
        (rng.standard_normal((30, 30)) + 1j * rng.standard_normal((30, 30))) / 8,
        oracles.grcar(25),
    ]


@functools.cache
def _nr_oracle(i: int) -> float:
    return oracles.numerical_radius_sampled(_nr_mats()[i], m=6000)


@pytest.mark.parametrize("lanczos_from", [600, 20], ids=["dense-eigh", "lanczos"])
def test_numerical_radius_against_a_fine_theta_grid(lanczos_from, monkeypatch):
    monkeypatch.setattr(nn, "_LANCZOS_FROM", lanczos_from)
    for i, A in enumerate(_nr_mats()):
        ref = _nr_oracle(i)
        r = numerical_radius(A, rng=0)
        assert ref - 1e-12 <= r <= ref * (1 + 1e-6)  # the fine grid is itself a lower bound
        assert r <= np.linalg.norm(A, 2) * (1 + 1e-12)


def test_numerical_radius_closed_form_and_polygon_bound():
    for n in (3, 6, 11):
        S = np.eye(n, k=1)
        assert abs(numerical_radius(S) - np.cos(np.pi / (n + 1))) <= 1e-13
    # the apex of two support lines of the unit disc at ±a lies at 1/cos(a)
    a = 0.3
    assert abs(nn._apex_bound(-a, 1.0, a, 1.0) - 1 / np.cos(a)) < 1e-14


def test_schur_form_is_shared_and_read_only():
    A = np.random.default_rng(1).standard_normal((30, 30))
    T1, Z1 = complex_schur(A)
    T2, _ = complex_schur(A.copy())
    assert T1 is T2 and not T1.flags.writeable and not Z1.flags.writeable
    with pytest.raises(ValueError):
        T1[0, 0] = 1.0
    B = A.copy()
    B[0, 0] += 1e-300  # any change of the bytes means a new factorization
    B[0, 0] = np.nextafter(A[0, 0], 1.0)
    T3, Z3 = complex_schur(B)
    assert T3 is not T1
    assert np.allclose(Z3 @ T3 @ Z3.conj().T, B, atol=1e-12)


def test_grid_tiles_do_not_depend_on_the_thread_count():
    A = oracles.grcar(40)
    seen = []
    p1 = pseudospectra(A, npts=24, rng=3, workers=1)
    p2 = pseudospectra(A, npts=24, rng=3, workers=3, progress=lambda d, t: seen.append((d, t)))
    assert np.array_equal(p1.sigma_min, p2.sigma_min)
    assert seen and seen[-1][0] == seen[-1][1] == 12 * 24  # real A: half the rows, mirrored
    ref = np.array([[oracles.sigma_min_svd(A, complex(x, y)) for x in p1.re] for y in p1.im])
    assert np.max(np.abs(p1.sigma_min - ref) / ref) < 1e-5


def test_grid_bad_workers_and_progress():
    with pytest.raises(ValueError, match="pseudospectra: workers"):
        pseudospectra(np.eye(20), npts=5, workers=0)
    with pytest.raises(TypeError, match="pseudospectra: progress must be"):
        pseudospectra(np.eye(20), npts=5, progress="yes")


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
