"""Recurrent cells: fused forward against per-example loops (oracles.py), BPTT against
finite differences on sequences of length 1, 2 and 7 for every cell and every input
and parameter, token input, last-step output, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowdisp.nn as lnn
from lowdisp.testing import check_jacobian, check_vjp
from tests import oracles

F64 = np.float64
MAPS = ["scaled_cayley", "householder", "svd", "full_unitary", "restricted_unitary", "expm"]


def cell_fn(cell, *, last=False):
    """(f, vjp, point) of the whole-sequence map {"x", params} -> H (or h_T)."""
    live = cell.params()

    def set_params(d):
        for k, v in d.items():
            if k in live:
                live[k][...] = v

    def f(d):
        set_params(d)
        H, _ = cell.forward_sequence(d["x"])
        return np.array(H[-1] if last else H)

    def vjp(d, dy):
        set_params(d)
        _, cache = cell.forward_sequence(d["x"])
        if last:
            dx, grads = cell.backward_sequence(cache, None, dh_last=dy)
        else:
            dx, grads = cell.backward_sequence(cache, dy)
        out = dict(grads)
        if dx is not None:
            out["x"] = dx
        return out

    return f, vjp, {k: v.copy() for k, v in live.items()}


def _cell(name, d=3, n=4, **kw):
    if name == "dense":
        return lnn.RNNCell(d, n, dtype=F64, rng=7, **kw)
    return lnn.make_cell(name, d, n, dtype=F64, rng=7, **kw)


@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize(
    "name,kw",
    [
        ("tanh", {}),
        ("relu", {}),
        ("dense", {"activation": "modrelu"}),
        ("lstm", {}),
        ("gru", {}),
        *[(m, {}) for m in MAPS],
        ("full_unitary", {"activation": "tanh"}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{a}" for a in v.values()),
)
def test_bptt_matches_finite_differences(name, kw, T, rng):
    cell = _cell(name, **kw)
    f, vjp, point = cell_fn(cell)
    point["x"] = rng.standard_normal((T, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


ELMAN = [
    ("tanh", {}),
    ("relu", {}),
    ("dense", {"activation": "modrelu"}),
    ("restricted_unitary", {}),
]


@pytest.mark.parametrize("T", [8, 9, 19])
@pytest.mark.parametrize("name,kw", ELMAN, ids=lambda v: v if isinstance(v, str) else "")
def test_bptt_across_reduction_blocks(name, kw, T, rng):
    """BPTT reduces dW, dU, dX in blocks of steps: lengths at and across block edges."""
    cell = _cell(name, **kw)
    f, vjp, point = cell_fn(cell)
    point["x"] = rng.standard_normal((T, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


@pytest.mark.parametrize("block", [1, 3, 8, 1000])
@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize("name,kw", ELMAN, ids=lambda v: v if isinstance(v, str) else "")
def test_bptt_block_size_does_not_change_gradients(name, kw, tokens, block, rng, monkeypatch):
    """Any block size gives the single-block gradients to rounding (T = 19: blocks and a rest)."""
    from lowdisp.nn import _rnn

    cell = _cell(name, **kw)
    T, B = 19, 3
    x = rng.integers(0, 3, (T, B)) if tokens else rng.standard_normal((T, B, 3))
    dH = rng.standard_normal((T, B, cell.state_size))
    dh_last = rng.standard_normal((B, cell.state_size))

    def grads():
        _, cache = cell.forward_sequence(x)
        dx, g = cell.backward_sequence(cache, dH, dh_last=dh_last)
        return dx, {k: v.copy() for k, v in g.items()}

    monkeypatch.setattr(_rnn, "_BLOCK", 10**6)
    dx_ref, g_ref = grads()
    monkeypatch.setattr(_rnn, "_BLOCK", block)
    dx, g = grads()
    assert sorted(g) == sorted(g_ref)
    for k in g:
        np.testing.assert_allclose(g[k], g_ref[k], rtol=1e-12, atol=1e-13, err_msg=k)
    if tokens:
        assert dx is None and dx_ref is None
    else:
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-13)


def test_ring_steps_fit_the_cache_budget():
    """Wide states reduce BPTT in fewer steps per block (n = 512, batch 64: 2)."""
    from lowdisp.nn._rnn import _ring_steps

    assert _ring_steps(30, 64, 512, np.float32) == 2
    assert _ring_steps(30, 64, 512, np.float64) == 2  # at least 2 steps per block
    assert _ring_steps(120, 64, 128, np.float32) == 8
    assert _ring_steps(120, 64, 128, np.float64) == 4
    assert _ring_steps(1, 64, 128, np.float32) == 1
    assert _ring_steps(5, 3, 4, np.float64) == 5


def test_row_chunks_stay_below_the_small_gemm_bound():
    from lowdisp.nn._rnn import _row_chunks

    assert _row_chunks(64, 128, 128) == [slice(0, 32), slice(32, 64)]
    assert _row_chunks(64, 64, 64) == [slice(0, 64)]  # already small
    assert _row_chunks(64, 512, 512) == [slice(0, 64)]  # 8 chunks would not reach it
    for B in (1, 7, 64, 100, 130):
        rows = _row_chunks(B, 128, 128)
        assert [i for r in rows for i in range(B)[r]] == list(range(B))
        assert all((r.stop - r.start) * 128 * 128 <= 1_000_000 for r in rows) or len(rows) == 1


def _sequence_and_grads(cell, x, dH):
    """Copies of one forward_sequence/backward_sequence pass (the cell reuses its buffers)."""
    H, cache = cell.forward_sequence(x)
    H = H.copy()
    dx, g = cell.backward_sequence(cache, dH)
    return H, dx, {k: v.copy() for k, v in g.items()}


def test_dense_tanh_in_row_chunks_matches_finite_differences_and_one_product(rng, monkeypatch):
    """The dense tanh step's products in row chunks (a bound forcing 3 chunks of a batch
    of 5): FD-checked BPTT, and the same H and gradients as one product per step."""
    from lowdisp.nn import _rnn

    cell = lnn.RNNCell(3, 4, dtype=np.float64, rng=2)
    x = rng.standard_normal((7, 5, 3))
    dH = rng.standard_normal((7, 5, 4))

    def run():
        return _sequence_and_grads(cell, x, dH)

    H1, dx1, g1 = run()
    monkeypatch.setattr(_rnn, "_SMALL_GEMM", 2 * 4 * 4)
    assert len(_rnn._row_chunks(5, 4, 4)) == 3
    H2, dx2, g2 = run()
    np.testing.assert_allclose(H2, H1, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-14)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-12, atol=1e-14, err_msg=k)
    f, vjp, point = cell_fn(cell)
    point["x"] = x
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


@pytest.mark.parametrize("chunks", [False, True])
@pytest.mark.parametrize("recurrent", ["dense", "block:2"])
def test_token_gather_in_the_loop_equals_one_hot(recurrent, chunks, rng, monkeypatch):
    """Token input adds its table rows to each step's product in place (the fast tanh
    path, row chunks or not): H and every gradient equal the one-hot float route, with
    h_0 = 0 and with a given h_0."""
    from lowdisp.kernels.rnn_modrelu import add_table_rows
    from lowdisp.nn import _rnn

    if chunks:
        monkeypatch.setattr(_rnn, "_SMALL_GEMM", 2 * 4 * 4)
    cell = lnn.RNNCell(5, 4, recurrent=recurrent, dtype=np.float64, rng=4)
    tokens = rng.integers(0, 5, (9, 5))
    dH = rng.standard_normal((9, 5, 4))
    for h0 in (None, rng.standard_normal((5, 4))):
        H1, c1 = cell.forward_sequence(tokens, h0)
        H1 = H1.copy()
        _, g1 = cell.backward_sequence(c1, dH)
        g1 = {k: v.copy() for k, v in g1.items()}
        H2, c2 = cell.forward_sequence(np.eye(5)[tokens], h0)
        np.testing.assert_allclose(H1, H2, rtol=1e-14, atol=1e-15)
        _, g2 = cell.backward_sequence(c2, dH)
        for k in g1:
            np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-13, err_msg=k)
    for dt in (np.float32, np.float64):  # the kernel itself against NumPy's gather
        a = rng.standard_normal((6, 3)).astype(dt)
        table = rng.standard_normal((4, 3)).astype(dt)
        ids = rng.integers(0, 4, 6)
        want = a + table[ids]
        add_table_rows(a, table, ids)
        np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("recurrent", ["block:2", "diagonal"])
def test_bptt_in_cache_sized_blocks_equals_one_block(recurrent, rng, monkeypatch):
    """A small ring budget (2 steps per block) gives the one-block gradients, with the
    readout's factored dH formed a block at a time (T = 7: blocks 2, 2, 2, 1)."""
    from lowdisp.nn import _rnn
    from lowdisp.nn._layers import _Factored

    cell = lnn.RNNCell(3, 4, recurrent=recurrent, dtype=np.float64, rng=3)
    T, B = 7, 2
    x = rng.integers(0, 3, (T, B))
    A = rng.standard_normal((T, B, 2))
    Wo = rng.standard_normal((2, 4))

    def grads():
        _, cache = cell.forward_sequence(x)
        _, g = cell.backward_sequence(cache, _Factored(A, Wo))
        return {k: v.copy() for k, v in g.items()}

    monkeypatch.setattr(_rnn, "_BLOCK", 10**6)
    ref = grads()
    monkeypatch.setattr(_rnn, "_BLOCK", 8)
    monkeypatch.setattr(_rnn, "_RING_BYTES", 1)
    assert _rnn._ring_steps(T, B, 4, np.float64) == 2
    g = grads()
    assert sorted(g) == sorted(ref)
    for k in g:
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-12, atol=1e-13, err_msg=k)
    dense = lnn.RNNCell(3, 4, dtype=np.float64, rng=3)  # and the dense oracle of W
    dense._params["W"][...] = cell.recurrent_matrix()
    dense._params["U"][...] = cell._params["U"]
    _, cd = dense.forward_sequence(x)
    _, gd = dense.backward_sequence(cd, A @ Wo)
    np.testing.assert_allclose(g["U"], gd["U"], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g["b"], gd["b"], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name,kw", ELMAN, ids=lambda v: v if isinstance(v, str) else "")
def test_bptt_with_initial_state(name, kw, rng):
    """A nonzero h_0 enters dW (the h_0 = 0 shortcut must not drop it)."""
    cell = _cell(name, **kw)
    x = rng.standard_normal((10, 2, 3))
    h0 = rng.standard_normal((2, cell.state_size))
    live = cell.params()

    def set_params(d):
        for k, v in d.items():
            live[k][...] = v

    def f(d):
        set_params(d)
        return np.array(cell.forward_sequence(x, h0)[0])

    def vjp(d, dy):
        set_params(d)
        _, cache = cell.forward_sequence(x, h0)
        return cell.backward_sequence(cache, dy)[1]

    check_vjp(f, vjp, {k: v.copy() for k, v in live.items()}, rng=rng, rtol=1e-6)


@pytest.mark.parametrize("name", ["tanh", "scaled_cayley", "lstm", "gru", "restricted_unitary"])
def test_bptt_last_step_only_and_tokens(name, rng):
    cell = _cell(name, d=5)
    f, vjp, point = cell_fn(cell, last=True)
    point["x"] = rng.standard_normal((6, 3, 5))
    check_vjp(f, vjp, point, rng=rng)
    # token input: same as one-hot floats
    tokens = rng.integers(0, 5, (6, 3))
    H_tok, _cache = cell.forward_sequence(tokens)
    H_tok = H_tok.copy()
    H_oh, _ = cell.forward_sequence(np.eye(5)[tokens])
    np.testing.assert_allclose(H_tok, H_oh, rtol=1e-13, atol=1e-14)
    f, vjp, point = cell_fn(cell)
    point["x"] = tokens
    check_vjp(
        lambda d: f({**d, "x": tokens}),
        lambda d, dy: vjp({**d, "x": tokens}, dy),
        {k: v for k, v in point.items() if k != "x"},
        rng=rng,
    )


@pytest.mark.parametrize("activation", ["tanh", "relu", "modrelu"])
def test_elman_forward_matches_loop(activation, rng):
    cell = lnn.RNNCell(3, 5, activation=activation, dtype=F64, rng=0)
    p = cell.params()
    x = rng.standard_normal((6, 2, 3))
    H, _ = cell.forward_sequence(x)
    ref = oracles.rnn_forward_naive(p["W"], p["U"], p["b"], x, activation)
    np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-14)


def test_gated_forward_matches_loop(rng):
    x = rng.standard_normal((5, 2, 3))
    lstm = lnn.LSTMCell(3, 4, dtype=F64, rng=0)
    p = lstm.params()
    np.testing.assert_allclose(
        lstm.forward_sequence(x)[0],
        oracles.lstm_forward_naive(p["W_x"], p["W_h"], p["b"], x),
        rtol=1e-12,
    )
    gru = lnn.GRUCell(3, 4, dtype=F64, rng=0)
    p = gru.params()
    np.testing.assert_allclose(
        gru.forward_sequence(x)[0],
        oracles.gru_forward_naive(p["W_x"], p["W_h"], p["b_x"], p["b_h"], x),
        rtol=1e-12,
    )


@pytest.mark.parametrize("name", MAPS)
def test_orthogonal_cell_uses_the_map(name, rng):
    """The recurrent matrix is the map's W: the cell equals a dense cell holding that W
    (real-composite [[A, -B], [B, A]] for the complex maps)."""
    cell = _cell(name, n=6, activation="tanh")
    W = cell.recurrent_matrix()
    assert np.allclose(W.conj().T @ W, np.eye(6), atol=1e-10) or name == "svd"
    x = rng.standard_normal((4, 2, 3))
    H, _ = cell.forward_sequence(x)
    Wr = np.block([[W.real, -W.imag], [W.imag, W.real]]) if np.iscomplexobj(W) else W
    dense = lnn.RNNCell(3, Wr.shape[0], activation="tanh", dtype=F64, rng=0)
    dense.params()["W"][...] = Wr
    dense.params()["U"][...] = cell.params()["U"]
    dense.params()["b"][...] = cell.params()["b"]
    np.testing.assert_allclose(dense.forward_sequence(x)[0], H, rtol=1e-12, atol=1e-13)


def test_float32_cell_keeps_float32(rng):
    cell = lnn.make_cell("scaled_cayley", 3, 8, rng=0)
    H, cache = cell.forward_sequence(rng.standard_normal((4, 2, 3)))
    assert H.dtype == np.float32
    _, g = cell.backward_sequence(cache, np.ones_like(H))
    assert all(v.dtype == np.float32 for v in g.values())


def test_workspace_never_overwrites_a_live_cache(rng):
    """Buffers are reused only when no earlier output or cache is alive."""
    cell = lnn.make_cell("tanh", 3, 4, dtype=F64, rng=0)
    x1, x2 = rng.standard_normal((2, 5, 2, 3))
    H1, c1 = cell.forward_sequence(x1)
    keep = H1.copy()
    H2, c2 = cell.forward_sequence(x2)
    np.testing.assert_array_equal(H1, keep)
    _, g1 = cell.backward_sequence(c1, np.ones_like(H1))
    del H2, c2
    _, g1b = cell.backward_sequence(cell.forward_sequence(x1)[1], np.ones_like(H1))
    np.testing.assert_allclose(g1["W"], g1b["W"], rtol=1e-14)


def test_rnn_layer_and_stacking(rng):
    net = lnn.Sequential(
        [
            lnn.RNN(lnn.GRUCell(3, 4, dtype=F64, rng=0)),
            lnn.RNN(lnn.TanhRNNCell(4, 5, dtype=F64, rng=1), return_sequences=False),
            lnn.Dense(5, 2, dtype=F64, rng=2),
        ]
    )
    live = net.params()
    x = rng.standard_normal((6, 3, 3))

    def f(d):
        for k, v in d.items():
            live[k][...] = v
        return net.forward(x)[0]

    def vjp(d, dy):
        for k, v in d.items():
            live[k][...] = v
        return net.backward(net.forward(x)[1], dy)[1]

    check_vjp(f, vjp, {k: v.copy() for k, v in live.items()}, rng=rng)
    assert lnn.recurrent_matrix(net).shape == (12, 4)


@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize(
    "cell",
    [
        lambda: lnn.TanhRNNCell(6, 5, dtype=F64, rng=1),
        lambda: lnn.make_cell("scaled_cayley", 6, 5, dtype=F64, rng=1),
        lambda: lnn.make_cell("restricted_unitary", 6, 3, dtype=F64, rng=1),
        lambda: lnn.GRUCell(6, 5, dtype=F64, rng=1),
        lambda: lnn.LSTMCell(6, 5, dtype=F64, rng=1),
    ],
    ids=["tanh", "scaled_cayley", "restricted_unitary", "gru", "lstm"],
)
def test_sequence_readout_gradient_equals_layer_by_layer(cell, tokens, rng, monkeypatch):
    """Inside Sequential a Dense readout hands ``dy W`` to the RNN in factored form (formed
    block-wise in BPTT); the gradients equal the layer-by-layer chain rule to rounding."""
    from lowdisp.nn._layers import _Factored

    blocks = []
    block = _Factored.block
    monkeypatch.setattr(_Factored, "block", lambda self, *a: blocks.append(a) or block(self, *a))
    c = cell()
    rnn, head = lnn.RNN(c), lnn.Dense(c.state_size, 3, dtype=F64, rng=2)
    net = lnn.Sequential({"rnn": rnn, "head": nn_nested(head)})
    T, B = 19, 2
    x = rng.integers(0, 6, (T, B)) if tokens else rng.standard_normal((T, B, 6))
    y, cache = net.forward(x)
    dy = rng.standard_normal(y.shape)
    dx, grads = net.backward(cache, dy)
    if isinstance(c, lnn.RNNCell | lnn.LSTMCell):  # 19 steps: blocks of 8, 8 and 3 steps
        assert [hi - lo for lo, hi, _ in blocks] == [3, 8, 8]
    # the same chain by hand, with a materialized dH
    H, c_rnn = rnn.forward(x)
    _, c_head = head.forward(H)
    dH, g_head = head.backward(c_head, dy)
    assert isinstance(dH, np.ndarray)
    dx_ref, g_rnn = rnn.backward(c_rnn, dH)
    ref = {
        **{f"rnn.{k}": v for k, v in g_rnn.items()},
        **{f"head.0.{k}": v for k, v in g_head.items()},
    }
    assert sorted(grads) == sorted(ref)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-12, atol=1e-13, err_msg=k)
    if tokens:
        assert dx is None and dx_ref is None
    else:
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-13)


def nn_nested(layer):
    """The readout inside a nested Sequential (the factored hand-over crosses containers)."""
    return lnn.Sequential([layer])


def test_readout_factored_only_between_sequence_layers(rng):
    """A Dense first in the chain, after a non-recurrent layer or on 2-D input returns an array."""
    from lowdisp.nn._layers import _Factored

    d = lnn.Dense(4, 2, dtype=F64, rng=0)
    x = rng.standard_normal((5, 3, 4))
    _, c = d.forward(x)
    dy = rng.standard_normal((5, 3, 2))
    fac = d._backward(c, dy, True)[0]
    assert isinstance(fac, _Factored) and fac.shape == x.shape
    np.testing.assert_allclose(fac.materialize(), d.backward(c, dy)[0], rtol=1e-14)
    assert isinstance(d._backward(c, dy, False)[0], np.ndarray)
    _, c2 = d.forward(x[0])
    assert isinstance(d._backward(c2, dy[0], True)[0], np.ndarray)
    net = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(4, 4, dtype=F64, rng=0)), lnn.Tanh(), d])
    _, cache = net.forward(x)
    dx, _ = net.backward(cache, dy)
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: lnn.make_cell("rnn", 3, 4), ValueError, "valid: 'tanh'"),
        (lambda: lnn.RNNCell(3, 4, recurrent="qr"), ValueError, "valid: 'dense'"),
        (lambda: lnn.RNNCell(3, 4, activation="elu"), ValueError, "valid: 'tanh'"),
        (lambda: lnn.RNNCell(3, -4), ValueError, "hidden_size"),
        (lambda: lnn.LSTMCell(0, 4), ValueError, "input_size"),
        (lambda: lnn.RNNCell(3, 4, recurrent=object()), TypeError, "sample/forward/vjp"),
        (lambda: lnn.RNNCell(3, 4).forward_sequence(np.ones((2, 3))), ValueError, "3 dim"),
        (lambda: lnn.RNNCell(3, 4).forward_sequence(np.ones((2, 1, 5))), ValueError, "3 feat"),
        (lambda: lnn.RNNCell(3, 4).forward_sequence(np.ones((2, 1, 3)) + 1j), TypeError, "real"),
        (
            lambda: lnn.RNNCell(3, 4).forward_sequence(np.full((2, 1, 3), np.inf)),
            ValueError,
            "finite",
        ),
        (lambda: lnn.RNNCell(3, 4).forward_sequence(np.full((2, 1), 3)), ValueError, r"\[0, 2\]"),
        (lambda: lnn.GRUCell(3, 4).forward_sequence(np.ones(3, int)), ValueError, "(time, batch)"),
        (lambda: lnn.RNN(lnn.Dense(2, 2)), TypeError, "RNNCell"),
    ],
)
def test_cell_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_cell_full_jacobian_tiny(rng):
    """Full Jacobian of the sequence map in x and in W (tiny sizes, no hiding a transpose)."""
    cell = lnn.RNNCell(2, 2, activation="tanh", dtype=F64, rng=0)
    W = cell.params()["W"]
    x0 = rng.standard_normal((3, 1, 2))

    def fx(x):
        return cell.forward_sequence(x)[0].copy()

    def vx(x, dy):
        return cell.backward_sequence(cell.forward_sequence(x)[1], dy)[0]

    check_jacobian(fx, vx, x0)

    def fw(w):
        W[...] = w
        return cell.forward_sequence(x0)[0].copy()

    def vw(w, dy):
        W[...] = w
        return cell.backward_sequence(cell.forward_sequence(x0)[1], dy)[1]["W"]

    check_jacobian(fw, vw, W.copy())


@settings(max_examples=10)
@given(
    T=st.integers(1, 6),
    B=st.integers(1, 3),
    d=st.integers(1, 4),
    n=st.integers(1, 5),
    kind=st.sampled_from(["tanh", "lstm", "gru"]),  # smooth: no kink for FD to straddle
    seed=st.integers(0, 2**31),
)
def test_bptt_property(T, B, d, n, kind, seed):
    gen = np.random.default_rng(seed)
    if kind in ("lstm", "gru"):
        cell = lnn.make_cell(kind, d, n, dtype=F64, rng=seed)
    else:
        cell = lnn.RNNCell(d, n, activation=kind, dtype=F64, rng=seed)
    f, vjp, point = cell_fn(cell)
    point["x"] = gen.standard_normal((T, B, d))
    check_vjp(f, vjp, point, rng=gen, rtol=1e-5)


def test_restricted_unitary_permutation_comes_from_the_cell_rng():
    """Same seed, same permutation (it is part of the model and recorded in its config)."""
    a = lnn.make_cell("restricted_unitary", 3, 6, rng=4)
    b = lnn.make_cell("restricted_unitary", 3, 6, rng=4)
    perm = a.get_config()["recurrent_options"]["perm"]
    assert perm == b.get_config()["recurrent_options"]["perm"]
    assert sorted(perm) == list(range(6))
    c = lnn.make_cell("restricted_unitary", 3, 6, rng=0, recurrent_options={"perm": perm})
    np.testing.assert_array_equal(c.weight.map.perm, perm)


@pytest.mark.parametrize("zero_h0", [True, False])
def test_lstm_token_bptt_blocks_equal_one_hot(zero_h0, rng):
    """Token input reduces δ in a ring of 8 steps (dW_h, dW_x, b); over 19 steps (blocks of
    8, 8, 3) its gradients equal the one-hot float route (whole δ, finite-difference
    checked above) to rounding, with h_0 = 0 and with a given h_0."""
    cell = lnn.LSTMCell(5, 4, dtype=F64, rng=3)
    tokens = rng.integers(0, 5, (19, 3))
    h0 = None if zero_h0 else rng.standard_normal((3, 4))
    dH = rng.standard_normal((19, 3, 4))
    _, cache = cell.forward_sequence(tokens, h0)
    dx, g_tok = cell.backward_sequence(cache, dH)
    assert dx is None
    _, cache = cell.forward_sequence(np.eye(5)[tokens], h0)
    _, g_oh = cell.backward_sequence(cache, dH)
    assert sorted(g_tok) == sorted(g_oh)
    for k in g_oh:
        np.testing.assert_allclose(g_tok[k], g_oh[k], rtol=1e-12, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("dt,tol", [(np.float64, 1e-15), (np.float32, 3e-7)])
def test_lstm_sigmoid_via_tanh_kernels(dt, tol, rng):
    """σ(z) = (tanh(z/2) + 1)/2 on the i, f, o columns and tanh on g, by the two kernels
    around one np.tanh, equals scipy's expit and np.tanh."""
    from scipy.special import expit

    from lowdisp.kernels.rnn_lstm import lstm_sigmoid_post, lstm_sigmoid_pre

    n = 5
    a = (4 * rng.standard_normal((3, 4 * n))).astype(dt)
    got = a.copy()
    lstm_sigmoid_pre(got)
    np.tanh(got, out=got)
    lstm_sigmoid_post(got)
    ref = np.concatenate(
        [expit(a[:, : 2 * n]), np.tanh(a[:, 2 * n : 3 * n]), expit(a[:, 3 * n :])], axis=1
    )
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


def test_sequence_readout_in_small_gemm_row_blocks(rng, monkeypatch):
    """The Dense readout over a sequence runs in row blocks below the small-matrix bound
    (here forced to 8 rows, m = 1500 rows, a short last block): same numbers as one
    product."""
    from lowdisp.nn import _layers

    monkeypatch.setattr(_layers, "_SMALL_GEMM", 7 * 3 * 5)
    layer = lnn.Dense(7, 3, dtype=np.float64, rng=0)
    layer.params()["b"][:] = [0.5, -1.0, 2.0]
    x = rng.standard_normal((5, 300, 7))
    y, _ = layer.forward(x)
    p = layer.params()
    np.testing.assert_allclose(y, x @ p["W"].T + p["b"], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dt,tol", [(np.float64, 1e-14), (np.float32, 2e-6)])
@pytest.mark.parametrize("first", [False, True])
def test_tanh_bptt_block_kernel_equals_numpy_steps(dt, tol, first, rng):
    """One Numba call for a block of 3 steps (carry in row chunks of 2 of a batch of 5)
    equals the NumPy step-by-step BPTT: δ, the bias gradient and the carry (not taken
    out of the block's first step when ``first``)."""
    from lowdisp.kernels.rnn_modrelu import tanh_bptt_block

    c, B, N = 3, 5, 4
    dh = rng.standard_normal((c, B, N)).astype(dt)
    h = np.tanh(rng.standard_normal((c, B, N))).astype(dt)
    W = rng.standard_normal((N, N)).astype(dt)
    carry = rng.standard_normal((B, N)).astype(dt)
    want_c, want_d = carry.astype(np.float64), np.empty((c, B, N))
    for k in range(c - 1, -1, -1):
        want_d[k] = (dh[k] + want_c) * (1 - h[k].astype(np.float64) ** 2)
        if k or not first:
            want_c = want_d[k] @ W
    d, db = np.empty((c, B, N), dtype=dt), np.zeros(N, dtype=dt)
    tanh_bptt_block(dh, True, carry, h, W, d, db, 2, first)
    np.testing.assert_allclose(d, want_d, rtol=tol, atol=tol)
    np.testing.assert_allclose(carry, want_c, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, want_d.sum(axis=(0, 1)), rtol=tol, atol=10 * tol)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_rec_table_step_kernel_equals_numpy(dt, rng):
    """One Numba call for a token step: ``h = h_prev P + table[ids]`` in row chunks of 2
    of a batch of 5, against NumPy."""
    from lowdisp.kernels.rnn_modrelu import rec_table_step

    hp = rng.standard_normal((5, 4)).astype(dt)
    P = rng.standard_normal((4, 4)).astype(dt)
    table = rng.standard_normal((3, 4)).astype(dt)
    ids = rng.integers(0, 3, 5)
    h = np.empty((5, 4), dtype=dt)
    rec_table_step(hp, P, h, table, ids, 2)
    tol = 1e-6 if dt == np.float32 else 1e-14
    np.testing.assert_allclose(h, hp @ P + table[ids], rtol=tol, atol=tol)


@pytest.mark.parametrize("dt,tol", [(np.float64, 1e-14), (np.float32, 2e-6)])
@pytest.mark.parametrize("first", [False, True])
def test_lstm_bptt_block_kernel_equals_step_by_step(dt, tol, first, rng):
    """One Numba call for a block of 3 LSTM steps (carry in row chunks of 2 of a batch of
    5) equals lstm_grad_step and NumPy's carry product step by step."""
    from lowdisp.kernels.rnn_lstm import lstm_bptt_block, lstm_grad_step

    c, B, n = 3, 5, 4
    dh = rng.standard_normal((c, B, n)).astype(dt)
    a = rng.uniform(0.05, 0.95, (c, B, 4 * n)).astype(dt)  # activated gates
    tc = np.tanh(rng.standard_normal((c, B, n))).astype(dt)
    cp = rng.standard_normal((c, B, n)).astype(dt)
    w_h = rng.standard_normal((4 * n, n)).astype(dt)
    ch0, cc0 = rng.standard_normal((2, B, n)).astype(dt)
    ch, cc, d, db = ch0.copy(), cc0.copy(), np.empty((c, B, 4 * n), dt), np.zeros(4 * n, dt)
    want_d, want_db = np.empty_like(d), np.zeros_like(db)
    for k in range(c - 1, -1, -1):
        lstm_grad_step(dh[k], True, ch0, cc0, a[k], tc[k], cp[k], want_d[k], want_db)
        if k or not first:
            ch0 = want_d[k] @ w_h
    lstm_bptt_block(dh, True, ch, cc, a, tc, cp, w_h, d, db, 2, first)
    for got, want in ((d, want_d), (db, want_db), (ch, ch0), (cc, cc0)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("tokens", [False, True])
def test_lstm_in_row_chunks_matches_finite_differences_and_one_product(tokens, rng, monkeypatch):
    """A bound forcing row chunks (2 rows of a batch of 5) sends the LSTM through its
    Numba paths (chunked carry, token step): FD-checked BPTT (float input), and H and
    every gradient equal the one-product path (the small cells' default)."""
    from lowdisp.nn import _rnn
    from lowdisp.nn._layers import _Factored

    cell = lnn.LSTMCell(3, 4, dtype=np.float64, rng=5)
    T, B = 11, 5  # blocks of 8 and 3 steps
    x = rng.integers(0, 3, (T, B)) if tokens else rng.standard_normal((T, B, 3))
    dH = _Factored(rng.standard_normal((T, B, 2)), rng.standard_normal((2, 4)))

    def run():
        return _sequence_and_grads(cell, x, dH)

    H1, dx1, g1 = run()
    monkeypatch.setattr(_rnn, "_SMALL_GEMM", 2 * 4 * 16)
    assert [r.stop - r.start for r in _rnn._row_chunks(B, 4, 16)] == [2, 2, 1]
    H2, dx2, g2 = run()
    np.testing.assert_allclose(H2, H1, rtol=1e-13, atol=1e-15)
    if not tokens:
        np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-14)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-12, atol=1e-14, err_msg=k)
    if not tokens:
        f, vjp, point = cell_fn(cell)
        point["x"] = x
        check_vjp(f, vjp, point, rng=rng, rtol=1e-6)
