"""DiagonalCirculant with leaky ReLUs between its factors (Araujo et al., ECAI 2020:
leaky ReLU of slope 0.5 after every factor): forward against the dense product of
its factors, gradients against finite differences (float64), spec round trip and
bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

import lowdisp.nn as lnn
from lowdisp.nn._spec import build_layer
from lowdisp.testing import check_vjp
from tests.test_nn_layers import layer_fn

F64 = np.float64


def _dense_forward(layer, x):
    """The stack from its definition: dense diag(d) C(c), bias, max(z, slope z)."""
    P = layer.params()
    h = x.T
    for k in range(layer.depth):
        h = np.diag(P["d"][k]) @ sla.circulant(P["c"][k]) @ h + P["b"][k][:, None]
        if layer.relu_every and (k + 1) % layer.relu_every == 0 and k + 1 < layer.depth:
            h = np.where(h > 0, h, layer.slope * h)
    return h.T


@pytest.mark.parametrize("slope", [0.0, 0.2, 0.5])
@pytest.mark.parametrize("relu_every", [1, 2])
def test_leaky_stack_equals_its_dense_factors(slope, relu_every):
    layer = lnn.DiagonalCirculant(
        8, depth=4, relu_every=relu_every, slope=slope, init="gaussian", dtype=F64, rng=3
    )
    gen = np.random.default_rng(0)
    layer.params()["b"][...] = 0.3 * gen.standard_normal((4, 8))
    x = gen.standard_normal((5, 8))
    y = layer.forward(x)[0]
    np.testing.assert_allclose(y, _dense_forward(layer, x), rtol=0, atol=1e-12)
    if slope:  # the negative side is kept (scaled), unlike a ReLU's
        relu = lnn.DiagonalCirculant(
            8, depth=4, relu_every=relu_every, init="gaussian", dtype=F64, rng=3
        )
        relu.params()["b"][...] = layer.params()["b"]
        assert np.abs(relu.forward(x)[0] - y).max() > 1e-3


@pytest.mark.parametrize("slope", [0.3, 0.5])
def test_leaky_stack_vjp(slope):
    layer = lnn.DiagonalCirculant(
        7, depth=3, relu_every=1, slope=slope, init="gaussian", dtype=F64, rng=1
    )
    layer.params()["b"][...] = np.random.default_rng(3).standard_normal((3, 7))
    f, vjp, point = layer_fn(layer)
    point["x"] = np.random.default_rng(2).standard_normal((4, 7))
    check_vjp(f, vjp, point, rng=0, rtol=1e-7)


def test_float32_stays_float32():
    layer = lnn.DiagonalCirculant(16, depth=3, relu_every=1, slope=0.5, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    y, cache = layer.forward(x)
    dx, grads = layer.backward(cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_slope_survives_the_spec_round_trip():
    layer = lnn.DiagonalCirculant(6, depth=2, relu_every=1, slope=0.5, dtype=F64, rng=0)
    cfg = layer.get_config()
    assert cfg["slope"] == 0.5
    again = build_layer(cfg, "dc")
    assert again.slope == 0.5 and again.relu_every == 1 and again.depth == 2
    assert "slope=0.5" in repr(again)
    old = {k: v for k, v in cfg.items() if k != "slope"}  # a checkpoint from before `slope`
    assert build_layer(old, "dc").slope == 0.0


@pytest.mark.parametrize(
    "slope,exc,match",
    [
        (1.0, ValueError, "DiagonalCirculant: slope must be in"),
        (-0.1, ValueError, "DiagonalCirculant: slope must be in"),
        ("0.5", TypeError, "DiagonalCirculant: slope must be a real number"),
    ],
)
def test_bad_slope(slope, exc, match):
    with pytest.raises(exc, match=match):
        lnn.DiagonalCirculant(8, depth=2, relu_every=1, slope=slope)
