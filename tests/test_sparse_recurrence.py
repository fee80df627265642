"""Structurally sparse recurrences (issue 15): ``recurrent="diagonal"``, ``"block:g"`` and
``"block_orthogonal:g"`` against their dense equivalent (same W as a dense matrix), BPTT
against finite differences (float64, T = 1, 2, 7 and across reduction blocks), config
round trip and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.testing import check_vjp

F64 = np.float64
SPARSE = ["diagonal", "block:2", "block_orthogonal:2"]


def cell_fn(cell, **fwd):
    """(f, vjp, point) of {"x", params} -> H, forward options ``fwd`` fixed."""
    live = cell.params()

    def set_params(d):
        for k, v in d.items():
            if k in live:
                live[k][...] = v

    def f(d):
        set_params(d)
        return np.array(cell.forward_sequence(d["x"], **fwd)[0])

    def vjp(d, dy):
        set_params(d)
        _, cache = cell.forward_sequence(d["x"], **fwd)
        dx, grads = cell.backward_sequence(cache, dy)
        out = dict(grads)
        if dx is not None:
            out["x"] = dx
        return out

    return f, vjp, {k: v.copy() for k, v in live.items()}


def _cell(recurrent, act="tanh", n=4, **kw):
    return lnn.RNNCell(3, n, activation=act, recurrent=recurrent, dtype=F64, rng=7, **kw)


@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("act", ["tanh", "relu", "modrelu"])
@pytest.mark.parametrize("recurrent", SPARSE)
def test_sparse_bptt_matches_finite_differences(recurrent, act, T, rng):
    cell = _cell(recurrent, act)
    f, vjp, point = cell_fn(cell)
    point["x"] = rng.standard_normal((T, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


@pytest.mark.parametrize("recurrent", ["diagonal", "block:4"])
def test_sparse_bptt_across_blocks_and_tokens(recurrent, rng):
    cell = _cell(recurrent, n=8)
    f, vjp, point = cell_fn(cell)
    point["x"] = rng.standard_normal((19, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)
    # token input: the same as its one-hot float input
    tok = rng.integers(0, 3, (11, 2))
    H1, c1 = cell.forward_sequence(tok)
    H1 = H1.copy()
    dH = rng.standard_normal(H1.shape)
    _, g1 = cell.backward_sequence(c1, dH)
    H2, c2 = cell.forward_sequence(np.eye(3)[tok])
    _, g2 = cell.backward_sequence(c2, dH)
    np.testing.assert_allclose(H1, H2, rtol=0, atol=1e-14)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("recurrent", [*SPARSE, "block:4", "block_orthogonal:4"])
def test_sparse_equals_dense_cell_with_the_same_matrix(recurrent, rng):
    """Forward and every gradient equal a dense cell holding recurrent_matrix()."""
    cell = _cell(recurrent, n=8)
    dense = lnn.RNNCell(3, 8, activation="tanh", dtype=F64, rng=0)
    W = cell.recurrent_matrix()
    dense._params["W"][...] = W
    dense._params["U"][...] = cell._params["U"]
    x = rng.standard_normal((6, 3, 3))
    H, c = cell.forward_sequence(x)
    H = H.copy()
    Hd, cd = dense.forward_sequence(x)
    np.testing.assert_allclose(H, Hd, rtol=0, atol=1e-13)
    dH = rng.standard_normal(H.shape)
    dx, g = cell.backward_sequence(c, dH)
    dxd, gd = dense.backward_sequence(cd, dH)
    np.testing.assert_allclose(dx, dxd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g["U"], gd["U"], rtol=0, atol=1e-12)
    if recurrent == "diagonal":
        np.testing.assert_allclose(g["W.diag"], np.diag(gd["W"]), rtol=0, atol=1e-12)
    elif recurrent.startswith("block:"):
        g_blocks = g["W.blocks"]
        m = g_blocks.shape[1]
        for k in range(g_blocks.shape[0]):
            s = slice(k * m, (k + 1) * m)
            np.testing.assert_allclose(g_blocks[k], gd["W"][s, s], rtol=0, atol=1e-12)


def test_block_orthogonal_blocks_are_orthogonal():
    cell = lnn.RNNCell(
        3, 8, recurrent="block_orthogonal:2", recurrent_options={"map": "expm"}, dtype=F64, rng=0
    )
    W = cell.recurrent_matrix()
    np.testing.assert_allclose(W.T @ W, np.eye(8), atol=1e-12)
    assert np.all(W[:4, 4:] == 0) and np.all(W[4:, :4] == 0)
    assert cell.activation == "modrelu" and cell.recurrent_options["map"] == "expm"


@pytest.mark.parametrize("recurrent", ["diagonal", "block:4", "block_orthogonal:2"])
def test_sparse_config_round_trip_and_weights(recurrent, rng):
    cell = lnn.make_cell("tanh", 3, 8, recurrent=recurrent, rng=0, dtype=F64)
    cfg = cell.get_config()
    assert cfg["recurrent"] == recurrent
    twin = lnn.RNNCell(**{k: v for k, v in cfg.items() if k != "class"})
    for k, v in cell.params().items():
        twin._params[k][...] = v
    x = rng.standard_normal((4, 2, 3))
    np.testing.assert_array_equal(cell.forward_sequence(x)[0], twin.forward_sequence(x)[0])
    n_rec = {"diagonal": 8, "block:4": 4 * 2 * 2}.get(recurrent)
    if n_rec is not None:
        key = "W.diag" if recurrent == "diagonal" else "W.blocks"
        assert cell.params()[key].size == n_rec
    assert lnn.weight_matrices(lnn.RNN(cell))["cell.W"].shape == (8, 8)


@pytest.mark.parametrize(
    "recurrent,options,match",
    [
        ("block:3", {}, "divide hidden_size = 8; got g = 3"),
        ("block:0", {}, "must be >= 1"),
        ("block", {}, "needs the number of blocks"),
        ("block:x", {}, "needs the number of blocks"),
        ("diagonal:2", {}, "takes no ':g'"),
        ("block_orthogonal:2", {"map": "svd"}, "unknown block map 'svd'; valid: 'scaled_cayley'"),
    ],
)
def test_sparse_bad_input(recurrent, options, match):
    with pytest.raises(ValueError, match=match):
        lnn.RNNCell(3, 8, recurrent=recurrent, recurrent_options=options)


def test_sparse_refuses_recurrent_init():
    with pytest.raises(ValueError, match="recurrent_init does not apply"):
        lnn.RNNCell(3, 8, recurrent="block:2", recurrent_init="henaff")
