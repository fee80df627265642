"""The Cayley transform and scoRNN's ScaledCayley parameterization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.exceptions import NotOnManifoldError
from lowdisp.orthogonal import ScaledCayley, cayley, eigenphases, orthogonality_error
from lowdisp.testing import check_jacobian, check_vjp
from tests import oracles


def _skew(rng, n, dtype=np.float64):
    P = oracles.random_matrix(rng, n, n, dtype)
    return P - P.conj().T


@given(n=st.integers(1, 10), n_neg=st.integers(0, 10), seed=st.integers(0, 2**32 - 1))
def test_scaled_cayley_matches_naive_and_is_orthogonal(n, n_neg, seed):
    n_neg = min(n_neg, n)
    rng = np.random.default_rng(seed)
    sc = ScaledCayley(n, n_neg=n_neg)
    th = rng.standard_normal(sc.theta_shape)
    W, _ = sc.forward(th)
    d = np.r_[np.ones(n - n_neg), -np.ones(n_neg)]
    assert oracles.rel_err(W, oracles.cayley_naive(oracles.skew_from_upper(th, n), d)) < 1e-12
    assert orthogonality_error(W) < 1e-13
    assert np.sign(np.linalg.det(W)) == (-1) ** n_neg
    assert sc.in_manifold(W)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_cayley_function(rng, dtype):
    A = _skew(rng, 5, dtype)
    d = np.array([1.0, 1.0, -1.0, 1.0, -1.0])
    W = cayley(A, d)
    assert oracles.rel_err(W, oracles.cayley_naive(A, d)) < 1e-13
    assert orthogonality_error(W) < 1e-13
    assert oracles.rel_err(cayley(A, np.diag(d)), W) < 1e-14
    # the transform is an involution: cayley(W D) = A
    assert oracles.rel_err(cayley(W * d[None, :]), A) < 1e-12


def test_cayley_singular_raises_with_n_neg_hint():
    W = np.diag([-1.0, 1.0, 1.0])  # eigenvalue -1
    with pytest.raises(np.linalg.LinAlgError, match="n_neg"):
        cayley(W)
    with pytest.raises(np.linalg.LinAlgError, match="I \\+ A is singular"):
        cayley(-np.eye(2))


def test_cayley_bad_input():
    with pytest.raises(ValueError, match="cayley: A must be a square matrix"):
        cayley(np.ones((2, 3)))
    with pytest.raises(ValueError, match="A must be finite"):
        cayley(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match=r"D must have shape \(2,\) or \(2, 2\)"):
        cayley(np.zeros((2, 2)), np.ones(3))
    with pytest.raises(TypeError, match="A must hold real or complex"):
        cayley(np.array([["x"]]))


@pytest.mark.parametrize("n,n_neg", [(4, 0), (5, 2), (6, 1)])
def test_scaled_cayley_gradients(rng, n, n_neg):
    sc = ScaledCayley(n, n_neg=n_neg)
    th = rng.standard_normal(sc.theta_shape)

    def f(t):
        return sc.forward(t)[0]

    def vjp(t, dy):
        return sc.vjp(sc.forward(t)[1], dy)

    check_vjp(f, vjp, th, rng=rng, rtol=1e-7)
    check_jacobian(f, vjp, th, rtol=1e-7)


def test_scaled_cayley_gradient_matches_naive_formula(rng):
    # dL/dA = V^T - V with V = (I + A)^{-T} G (D + W^T)  (Helfrich et al.)
    n = 5
    sc = ScaledCayley(n, n_neg=2)
    th = rng.standard_normal(sc.theta_shape)
    W, cache = sc.forward(th)
    G = rng.standard_normal((n, n))
    A = oracles.skew_from_upper(th, n)
    V = np.linalg.inv(np.eye(n) + A).T @ G @ (np.diag(sc.d) + W.T)
    ref = (V.T - V)[np.triu_indices(n, 1)]
    assert oracles.rel_err(sc.vjp(cache, G), ref) < 1e-12


@pytest.mark.parametrize("n_neg", [0, 3])
def test_scaled_cayley_right_inverse_round_trip(rng, n_neg):
    sc = ScaledCayley(7, n_neg=n_neg)
    th = rng.standard_normal(sc.theta_shape)
    W, _ = sc.forward(th)
    th2 = sc.right_inverse(W)
    assert np.abs(th2 - th).max() < 1e-10
    assert np.abs(sc.forward(th2)[0] - W).max() < 1e-10


def test_scaled_cayley_reaches_eigenvalue_minus_one(rng):
    n = 6
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    W = Q @ np.diag([-1.0, 1, 1, 1, 1, 1]) @ Q.T  # a reflection: eigenvalue -1, det -1
    with pytest.raises(NotOnManifoldError, match="n_neg"):
        ScaledCayley(n).right_inverse(W)
    sc = ScaledCayley(n, n_neg=1)
    W2, _ = sc.forward(sc.right_inverse(W))
    assert np.abs(W2 - W).max() < 1e-10
    assert np.abs(eigenphases(W2)).max() == pytest.approx(np.pi, abs=1e-7)
    # a double eigenvalue -1 with det +1: n_neg = 0 cannot, n_neg = 2 can
    W = Q @ np.diag([-1.0, -1, 1, 1, 1, 1]) @ Q.T
    with pytest.raises(NotOnManifoldError, match="eigenvalue -1"):
        ScaledCayley(n, n_neg=0).right_inverse(W)
    sc = ScaledCayley(n, n_neg=2)
    assert np.abs(sc.forward(sc.right_inverse(W))[0] - W).max() < 1e-10


def test_scaled_cayley_float32(rng):
    sc = ScaledCayley(8, n_neg=1, dtype=np.float32)
    th = sc.sample(rng=rng)
    assert th.dtype == np.float32
    W, cache = sc.forward(th)
    assert W.dtype == np.float32
    assert orthogonality_error(W) < 1e-5
    assert sc.vjp(cache, np.ones((8, 8))).dtype == np.float32


def test_scaled_cayley_sample_is_cayley_init(rng):
    sc = ScaledCayley(6)
    W, _ = sc.forward(sc.sample(rng=rng))
    assert np.all(np.abs(eigenphases(W)) <= np.pi / 2 + 1e-12)


def test_scaled_cayley_bad_input(rng):
    with pytest.raises(ValueError, match="n_neg must be in"):
        ScaledCayley(3, n_neg=4)
    with pytest.raises(TypeError, match="n must be an integer"):
        ScaledCayley(3.0)
    sc = ScaledCayley(3)
    with pytest.raises(ValueError, match=r"theta must have shape \(3\)"):
        sc.forward(np.ones(4))
    with pytest.raises(ValueError, match="theta must be finite"):
        sc.forward(np.array([1.0, np.inf, 0.0]))
    with pytest.raises(TypeError, match="theta must be real"):
        sc.forward(np.ones(3, dtype=complex))
    _, cache = sc.forward(np.ones(3))
    with pytest.raises(ValueError, match="dW must be finite"):
        sc.vjp(cache, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"W must have shape \(3, 3\)"):
        sc.right_inverse(np.eye(4))
    with pytest.raises(NotOnManifoldError, match="not orthogonal"):
        sc.right_inverse(2 * np.eye(3))
    with pytest.raises(NotOnManifoldError, match="det"):
        sc.right_inverse(np.diag([1.0, 1.0, -1.0]))
    assert not sc.in_manifold(np.eye(3) * 1j)
    assert not sc.in_manifold(np.eye(2))


def test_cayley_of_rotation_by_pi_fails_but_scaling_works():
    # eigenvalue -1 of W: cayley(W) is singular; with D the inverse map exists
    W = -np.eye(2)
    with pytest.raises(np.linalg.LinAlgError, match="n_neg"):
        cayley(W)
    sc = ScaledCayley(2, n_neg=2)
    assert np.allclose(sc.forward(sc.right_inverse(W))[0], W)
