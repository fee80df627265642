"""Initializations, diagnostics, the registry and the shared protocol of every map."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st

import lowdisp as ld
from lowdisp.orthogonal import (
    ExpMap,
    ScaledCayley,
    cayley,
    cayley_init,
    eigenphases,
    haar,
    henaff,
    identity,
    orthogonal,
    orthogonality_error,
    torus,
)
from tests import oracles

NAMES = [
    "scaled_cayley",
    "cayley",
    "householder",
    "svd",
    "full_unitary",
    "restricted_unitary",
    "expm",
    "exp",
]


@pytest.mark.parametrize("name", NAMES)
def test_registry_protocol(rng, name):
    p = orthogonal(6, method=name)
    th = p.sample(rng=rng)
    assert th.shape == p.theta_shape and th.dtype == p.theta_dtype
    assert p.num_params == int(np.prod(p.theta_shape))
    assert p.n == 6 and p.m == 6 and p.shape == (6, 6)
    W, cache = p.forward(th)
    assert W.shape == (6, 6) and W.dtype == p.dtype
    assert p.is_complex == (W.dtype.kind == "c")
    assert p.in_manifold(W)
    g = p.vjp(cache, np.ones((6, 6), dtype=p.dtype))
    assert g.shape == p.theta_shape and g.dtype == p.theta_dtype
    if name != "restricted_unitary":
        W2, _ = p.forward(p.right_inverse(W))
        assert np.abs(W2 - W).max() < 1e-10
    assert repr(p).startswith(type(p).__name__)


def test_registry_unknown_lists_names():
    with pytest.raises(ValueError, match=r"unknown method 'qr'; valid: 'scaled_cayley'.*'exp'"):
        orthogonal(4, method="qr")
    assert isinstance(orthogonal(4), ScaledCayley)
    # ld.orthogonal is the subpackage; calling it calls the registry
    assert ld.orthogonal(3, method="exp").n == 3
    assert ld.orthogonal.orthogonal(3).n == 3
    assert ld.ExpMap is ExpMap


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_inits_are_orthogonal(rng, n):
    for W in (henaff(n, rng=rng), cayley_init(n, rng=rng), haar(n, rng=rng), torus(n, rng=rng)):
        assert W.shape == (n, n)
        assert orthogonality_error(W) < 1e-13
    assert orthogonality_error(haar(n, rng=rng, complex=True)) < 1e-13
    assert np.array_equal(identity(n), np.eye(n))


def test_init_generators_and_phases(rng):
    n = 8
    A = henaff(n, rng=0, skew=True)
    assert np.array_equal(A, -A.T)
    assert oracles.rel_err(henaff(n, rng=0), sla.expm(A)) < 1e-13
    C = cayley_init(n, rng=1, skew=True)
    assert oracles.rel_err(cayley_init(n, rng=1), oracles.cayley_naive(C)) < 1e-13
    phases = eigenphases(cayley_init(64, rng=rng))
    assert phases.min() >= -np.pi / 2 - 1e-12 and phases.max() <= np.pi / 2 + 1e-12
    # henaff/torus: eigenphases spread over the whole circle
    for W in (henaff(64, rng=rng), torus(64, rng=rng)):
        ph = eigenphases(W)
        assert ph.min() < -2.5 and ph.max() > 2.5
    assert np.linalg.det(torus(5, rng=rng)) == pytest.approx(1.0)
    assert henaff(4, rng=0, dtype=np.float32).dtype == np.float32


def test_inits_bad_input():
    with pytest.raises(ValueError, match="henaff: n must be in"):
        henaff(0)
    with pytest.raises(TypeError, match="cayley_init: dtype must be float32 or float64"):
        cayley_init(3, dtype=np.int32)
    with pytest.raises(TypeError, match="haar: complex samples are complex128"):
        haar(3, complex=True, dtype=np.float64)
    with pytest.raises(TypeError, match="identity: dtype must be"):
        identity(3, dtype=np.int64)
    with pytest.raises(TypeError, match="rng must be"):
        torus(3, rng="seed")


def test_diagnostics(rng):
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert np.allclose(eigenphases(R), [-np.pi / 2, np.pi / 2])
    assert orthogonality_error(3 * np.eye(2)) == pytest.approx(8.0)
    Q = haar(6, rng=rng)
    assert orthogonality_error(Q[:, :4]) < 1e-14  # tall: orthonormal columns
    E = Q + 1e-6 * rng.standard_normal((6, 6))
    ref = np.linalg.norm(E.T @ E - np.eye(6), 2)
    assert orthogonality_error(E) == pytest.approx(ref, rel=1e-8)
    with pytest.raises(ValueError, match="at least as many rows as columns"):
        orthogonality_error(np.ones((2, 3)))
    with pytest.raises(ValueError, match="eigenphases: W must be a square matrix"):
        eigenphases(np.ones((2, 3)))
    with pytest.raises(ValueError, match="W must be finite"):
        orthogonality_error(np.full((2, 2), np.nan))


def test_cayley_of_rotation_by_pi_fails_but_scaling_works():
    # eigenvalue -1 of W: cayley(W) is singular; with D the inverse map exists
    W = -np.eye(2)
    with pytest.raises(np.linalg.LinAlgError, match="n_neg"):
        cayley(W)
    sc = ScaledCayley(2, n_neg=2)
    assert np.allclose(sc.forward(sc.right_inverse(W))[0], W)


@pytest.mark.parametrize("name", ["scaled_cayley", "householder", "svd", "expm"])
def test_real_maps_float32(rng, name):
    p = orthogonal(8, method=name, dtype=np.float32)
    th = p.sample(rng=rng)
    assert th.dtype == np.float32 and p.dtype == np.float32
    W, cache = p.forward(th)
    assert W.dtype == np.float32
    assert orthogonality_error(W) < 1e-5
    g = p.vjp(cache, np.ones((8, 8)))
    assert g.dtype == np.float32 and g.shape == p.theta_shape
    # float32 gradient agrees with the float64 one to single precision
    p64 = orthogonal(8, method=name)
    g64 = p64.vjp(p64.forward(th.astype(np.float64))[1], np.ones((8, 8)))
    assert oracles.rel_err(g, g64) < 1e-4


@pytest.mark.parametrize("real", [False, True])
def test_full_unitary_vjp_is_identity(rng, real):
    from lowdisp.orthogonal import FullUnitary
    from lowdisp.testing import check_jacobian, check_vjp

    fu = FullUnitary(3, real=real)
    W = fu.sample(rng=rng)
    check_vjp(lambda w: fu.forward(w)[0], lambda w, dy: fu.vjp(None, dy), W, rng=rng, rtol=1e-9)
    if real:
        check_jacobian(lambda w: fu.forward(w)[0], lambda w, dy: fu.vjp(None, dy), W)


@given(
    name=st.sampled_from(["scaled_cayley", "householder", "svd", "restricted_unitary", "expm"]),
    n=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_map_orthogonal_and_exact_vjp(name, n, seed):
    from lowdisp.testing import check_vjp

    rng = np.random.default_rng(seed)
    p = orthogonal(n, method=name)
    th = p.sample(rng=rng)
    if name in ("scaled_cayley", "expm"):
        th = rng.standard_normal(p.theta_shape)  # beyond the block-diagonal inits
    W, _ = p.forward(th)
    assert orthogonality_error(W) < 1e-13
    if name == "householder" and n == 1:
        # the 1 x 1 reflector is the constant -1: the exact gradient is zero and a
        # relative finite-difference comparison would only compare rounding noise
        g = p.vjp(p.forward(th)[1], np.ones((1, 1)))
        assert np.abs(g).max() < 1e-12
    elif p.num_params:
        check_vjp(lambda t: p.forward(t)[0], lambda t, dy: p.vjp(p.forward(t)[1], dy), th, rng=rng)
