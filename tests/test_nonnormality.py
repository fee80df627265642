"""Non-normality measures: numerical range, abscissa and radius, departure from
normality, eigenvalue condition numbers; against dense references and closed forms."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowdisp.spectral._nonnormal as nn
from lowdisp.spectral import (
    departure_from_normality,
    eigenvalue_condition_numbers,
    kreiss_constant,
    numerical_abscissa,
    numerical_radius,
    numerical_range,
    transient_growth,
)
from tests import oracles


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


@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
def test_departure_from_normality_without_over_or_underflow(scale):
    A = np.array([[0.0, 1.0], [0.0, 0.0]]) * scale
    assert departure_from_normality(A) == pytest.approx(scale, rel=1e-14)
    assert departure_from_normality(A, relative=True) == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize(
    "A", [np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 2.0], [0.0, 1.0]])]
)
def test_condition_numbers_of_defective_eigenvalues_are_inf(A):
    # the docstring promises inf; 1/rounding (5e291, 9e15) came back
    from lowdisp.spectral import eigenvalue_condition_numbers

    c = eigenvalue_condition_numbers(A)
    assert np.isinf(c.condition_numbers).all()


def test_condition_numbers_of_ill_conditioned_but_simple_eigenvalues_stay_finite():
    from lowdisp.spectral import eigenvalue_condition_numbers

    A = np.array([[1.0, 1e6], [0.0, 1.001]])
    c = eigenvalue_condition_numbers(A).condition_numbers
    # kappa = sqrt(1 + (1e6 / 1e-3)^2) for both eigenvalues
    np.testing.assert_allclose(c, np.hypot(1.0, 1e9), rtol=1e-6)


@pytest.mark.parametrize("n", [2, 5, 10, 30])
def test_numerical_radius_of_the_shift(n):
    S = np.eye(n, k=1)
    assert abs(numerical_radius(S) - math.cos(math.pi / (n + 1))) <= 1e-10


def test_numerical_radius_matches_dense_sampling(rng):
    A = oracles.random_matrix(rng, 8, 8, np.complex128)
    r = numerical_radius(A)
    ref = oracles.numerical_radius_sampled(A)
    assert ref <= r * (1 + 1e-12)  # sampling is a lower bound
    assert r <= ref * (1 + 1e-5)
    nrm = oracles.spectral_norm_dense(A)
    assert r <= nrm * (1 + 1e-12) and nrm <= 2 * r * (1 + 1e-12)


def test_numerical_range_support_property(rng):
    A = oracles.random_matrix(rng, 10, 10, np.complex128)
    w = numerical_range(A, npts=64)
    assert w.shape == (64,)
    # each point attains the support function: Re(e^{i t} w) = lambda_max(H_t)
    t = -2 * np.pi * np.arange(64) / 64
    for tj, wj in zip(t, w):
        H = 0.5 * (np.exp(1j * tj) * A + np.exp(-1j * tj) * A.conj().T)
        assert (np.exp(1j * tj) * wj).real == pytest.approx(np.linalg.eigvalsh(H)[-1], abs=1e-10)
    # Rayleigh quotients of random vectors never pass a support line
    X = oracles.random_matrix(rng, 10, 200, np.complex128)
    X /= np.linalg.norm(X, axis=0)
    rq = np.einsum("ij,ik,kj->j", X.conj(), A, X)
    for tj, wj in zip(t, w):
        assert ((np.exp(1j * tj) * rq).real <= (np.exp(1j * tj) * wj).real + 1e-10).all()
    # Hermitian: the segment [lambda_min, lambda_max]
    Hm = A + A.conj().T
    wh = numerical_range(Hm, npts=16)
    lam = np.linalg.eigvalsh(Hm)
    assert np.abs(wh.imag).max() <= 1e-10
    assert wh.real.max() == pytest.approx(lam[-1]) and wh.real.min() == pytest.approx(lam[0])


def test_numerical_abscissa(rng):
    A = rng.standard_normal((9, 9))
    ref = np.linalg.eigvalsh(0.5 * (A + A.T))[-1]
    assert numerical_abscissa(A) == pytest.approx(ref, rel=1e-12)
    w = numerical_range(A, npts=200)
    assert w.real.max() <= numerical_abscissa(A) + 1e-12


@given(n=st.integers(1, 25), seed=st.integers(0, 2**32 - 1), cplx=st.booleans())
def test_departure_from_normality_is_henrici(n, seed, cplx):
    g = np.random.default_rng(seed)
    A = oracles.random_matrix(g, n, n, np.complex128 if cplx else np.float64)
    A = np.triu(A, -1) + 2 * np.triu(A, 1)  # clearly non-normal (for n > 1)
    dep = departure_from_normality(A)
    ref = oracles.henrici_departure(A)
    fro = np.linalg.norm(A)
    # the identity holds for the squares; the oracle's sqrt of a rounding-level
    # difference (a normal 1 x 1 A) is ~sqrt(u)·‖A‖, so compare values only when
    # dep is not at that level
    assert abs(dep**2 - ref**2) <= 1e-12 * fro**2
    if dep >= 1e-3 * fro:
        assert abs(dep - ref) <= 1e-10 * fro
    rel = departure_from_normality(A, relative=True)
    assert 0 <= rel <= 1
    assert rel == pytest.approx(dep / np.linalg.norm(A), rel=1e-12, abs=1e-15)


def test_departure_of_normal_and_zero_matrices(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    A = (Q * rng.standard_normal(10)) @ Q.T
    assert departure_from_normality(A) <= 1e-13 * np.linalg.norm(A)
    assert departure_from_normality(np.zeros((3, 3)), relative=True) == 0.0


def test_eigenvalue_condition_numbers(rng):
    for a in (0.0, 1.0, 10.0, 1e3):
        c = eigenvalue_condition_numbers(np.array([[1.0, a], [0.0, 2.0]]))
        np.testing.assert_allclose(c.condition_numbers, math.sqrt(1 + a * a), rtol=1e-10)
        np.testing.assert_allclose(np.sort(c.eigenvalues.real), [1.0, 2.0])
    Q, _ = np.linalg.qr(oracles.random_matrix(rng, 6, 6, np.complex128))
    N = (Q * rng.standard_normal(6)) @ Q.conj().T
    np.testing.assert_allclose(eigenvalue_condition_numbers(N).condition_numbers, 1.0, atol=1e-10)
    # first-order perturbation: |dlambda| <= kappa ||E|| + O(||E||^2)
    A = rng.standard_normal((6, 6))
    c = eigenvalue_condition_numbers(A)
    E = rng.standard_normal((6, 6))
    E *= 1e-7 / np.linalg.norm(E, 2)
    lam2 = np.linalg.eigvals(A + E)
    for lam, k in zip(c.eigenvalues, c.condition_numbers):
        assert np.min(np.abs(lam2 - lam)) <= k * 1e-7 * 1.01


def test_measures_bad_input():
    with pytest.raises(ValueError, match="unknown kind 'both'"):
        kreiss_constant(np.eye(2), kind="both")
    with pytest.raises(ValueError, match=r"steps must be in \[0, inf\]; got -1"):
        transient_growth(np.eye(2), -1)
    with pytest.raises(ValueError, match=r"npts must be in \[3, inf\]"):
        numerical_range(np.eye(2), npts=2)
    for f in (
        numerical_range,
        numerical_abscissa,
        numerical_radius,
        departure_from_normality,
        eigenvalue_condition_numbers,
        kreiss_constant,
    ):
        with pytest.raises(ValueError, match="A must be a square matrix"):
            f(np.ones((2, 3)))
        with pytest.raises(ValueError, match="must be finite"):
            f(np.array([[1.0, np.inf], [0.0, 1.0]]))
        with pytest.raises(ValueError, match="must not be empty"):
            f(np.zeros((0, 0)))
