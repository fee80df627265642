"""The training step's fast paths: no input gradient for the data, reused weight-gradient
buffers, the fused SGD-momentum update and the (W xᵀ)ᵀ product; each against its
plain NumPy oracle."""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.nn._layers import _workspaces, param_grads, rows_times_wt
from lowdisp.nn._optim import _sub_scaled


def _shl(structure, n=32, dtype=np.float64):
    hidden = (
        lnn.Dense(n, n, dtype=dtype, rng=0)
        if structure == "dense"
        else lnn.StructuredDense(
            n,
            n,
            structure=structure,
            rank=2 if structure == "low_rank" else None,
            dtype=dtype,
            rng=0,
        )
    )
    return lnn.Sequential([hidden, lnn.ReLU(dtype=dtype), lnn.Dense(n, 10, dtype=dtype, rng=1)])


@pytest.mark.parametrize("structure", ["dense", "unconstrained", "low_rank", "circulant"])
def test_param_grads_equal_the_full_backward_without_dx(structure):
    net = _shl(structure)
    gen = np.random.default_rng(0)
    x = gen.standard_normal((5, 32))
    out, cache = net.forward(x)
    dout = gen.standard_normal(out.shape)
    dx, full = net.backward(cache, dout)
    none, grads = net.backward(cache, dout, input_grad=False)
    assert none is None and dx.shape == x.shape
    assert sorted(grads) == sorted(full)
    for k in full:
        np.testing.assert_allclose(grads[k], full[k], rtol=1e-13, atol=1e-15, err_msg=k)
    got = param_grads(net, cache, dout)
    for k in full:
        np.testing.assert_allclose(got[k], full[k], rtol=1e-13, atol=1e-15, err_msg=k)
    # the oracle of the hidden weight gradient: dense NumPy
    if structure in ("dense", "unconstrained"):
        W = net["0"].params()["W"]
        h = x @ W.T
        da = (dout @ net["2"].params()["W"]) * (h > 0)
        np.testing.assert_allclose(grads["0.W"], da.T @ x, rtol=1e-12)


def test_param_grads_of_a_plain_layer_and_a_bad_flag():
    layer = lnn.Dense(4, 3, dtype=np.float64, rng=0)
    _, cache = layer.forward(np.ones((2, 4)))
    assert sorted(param_grads(layer, cache, np.ones((2, 3)))) == ["W", "b"]
    net = _shl("dense", n=4)
    out, cache = net.forward(np.ones((2, 4)))
    with pytest.raises(TypeError, match="input_grad"):
        net.backward(cache, np.ones_like(out), input_grad="no")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_sgd_momentum_rounds_as_the_numpy_expressions(dtype):
    gen = np.random.default_rng(1)
    p0 = gen.standard_normal((70, 90)).astype(dtype)  # >= 4096 entries: the fused kernel
    gs = [gen.standard_normal(p0.shape).astype(dtype) for _ in range(3)]
    params = {"w": p0.copy()}
    opt = lnn.SGD(0.01, momentum=0.9)
    for g in gs:
        opt.step(params, {"w": g})
    p, v = p0.copy(), np.zeros_like(p0)
    for g in gs:
        v *= 0.9
        v += g
        p -= 0.01 * v
    assert np.array_equal(params["w"], p) and np.array_equal(opt.state["v/w"], v)


def test_nesterov_and_small_arrays_keep_the_generic_update():
    gen = np.random.default_rng(2)
    for shape, nesterov in (((70, 90), True), ((5, 5), False)):
        p0, g = gen.standard_normal(shape), gen.standard_normal(shape)
        params = {"w": p0.copy()}
        lnn.SGD(0.1, momentum=0.5, nesterov=nesterov).step(params, {"w": g})
        d = g + 0.5 * g if nesterov else g
        np.testing.assert_allclose(params["w"], p0 - 0.1 * d, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sub_scaled_is_in_place_and_equals_the_expression(dtype):
    gen = np.random.default_rng(3)
    p, d = gen.standard_normal((80, 80)).astype(dtype), gen.standard_normal((80, 80)).astype(dtype)
    want = p - dtype(0.3) * d
    same = p
    _sub_scaled(p, 0.3, d)
    assert same is p
    np.testing.assert_allclose(p, want, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("shape", [(50, 1024, 1024), (200, 1024, 1024), (50, 784, 784), (3, 8, 5)])
def test_rows_times_wt_equals_the_product(shape):
    m, out, inn = shape
    gen = np.random.default_rng(4)
    x = gen.standard_normal((m, inn)).astype(np.float32)
    W = gen.standard_normal((out, inn)).astype(np.float32)
    y = rows_times_wt(x, W, lnn.Dense(1, 1)._ws)
    assert y.shape == (m, out) and y.dtype == np.float32 and y.flags.c_contiguous
    ref = x.astype(np.float64) @ W.T.astype(np.float64)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-3)


def test_weight_gradient_buffers_are_reused_only_inside_a_trainer_step():
    net = _shl("dense", n=16)
    loss = lnn.SoftmaxCrossEntropy()
    x, y = np.ones((4, 16)), np.arange(4)
    spaces = _workspaces(net, loss)

    def grads():
        out, cache = net.forward(x)
        return param_grads(net, cache, loss(out, y)[1])["0.W"]

    a, b = grads(), grads()  # outside a step: fresh arrays, the caller's to keep
    assert a is not b and np.array_equal(a, b)
    for ws in spaces:
        ws.begin()
    c = grads()
    for ws in spaces:
        ws.release()
    assert grads() is c  # the next step reuses the dead step's buffer
