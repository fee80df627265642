"""The registry orthogonal(n, method=...) and the protocol every named map follows:
sample/forward/vjp/right_inverse/in_manifold, exact VJPs, float32 maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowdisp as ld
from lowdisp.orthogonal import (
    ExpMap,
    ScaledCayley,
    orthogonal,
    orthogonality_error,
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
