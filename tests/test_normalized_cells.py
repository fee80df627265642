"""Normalized recurrent cells (lowdisp.nn._normalized): BN-LSTM, BN-RNN, LN-LSTM, LN-RNN.

Oracles: central finite differences of the whole sequence (float64, T = 1, 2, 7,
training-mode statistics included), a straightforward step-by-step NumPy
BN-LSTM written from Cooijmans et al.'s equations, and the definitions of the
running statistics.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.nn import BNLSTMCell, BNRNNCell, LNLSTMCell, LNRNNCell, is_buffer
from lowdisp.testing import check_vjp

F64 = np.float64

MAKERS = {
    "bn_lstm": lambda **kw: BNLSTMCell(3, 4, t_max=3, dtype=F64, rng=0, **kw),
    "ln_lstm": lambda **kw: LNLSTMCell(3, 4, dtype=F64, rng=0, **kw),
    "bn_rnn_frame": lambda **kw: BNRNNCell(3, 4, t_max=3, dtype=F64, rng=0, **kw),
    "bn_rnn_sequence": lambda **kw: BNRNNCell(3, 4, stats="sequence", dtype=F64, rng=0, **kw),
    "ln_rnn": lambda **kw: LNRNNCell(3, 4, dtype=F64, rng=0, **kw),
}


def _randomize(cell, rng):
    """Move γ, β, b and the running statistics off their initial values."""
    for k, v in cell.params().items():
        if k.startswith(("b", "beta")) and not is_buffer(k):
            v[...] = 0.3 * rng.normal(size=v.shape)
        elif k.startswith("gamma"):
            v[...] = 0.5 + rng.random(v.shape)
        elif k.endswith("running_mean"):
            v[...] = 0.3 * rng.normal(size=v.shape)
        elif k.endswith("running_var"):
            v[...] = 0.5 + rng.random(v.shape)


def _fd_error(cell, T, train, last, *, B=5, tokens=False, noise_seed=None):
    rng = np.random.default_rng(3)
    if tokens:
        x = rng.integers(0, cell.input_size, (T, B))
    else:
        x = rng.normal(size=(T, B, cell.input_size))
    _randomize(cell, rng)
    live = {k: v for k, v in cell.params().items() if not is_buffer(k)}
    buffers = {k: v.copy() for k, v in cell.params().items() if is_buffer(k)}

    def forward(d):
        for k, v in d.items():
            if k in live:
                live[k][...] = v
        for k, v in buffers.items():  # a training pass updates them: start equal
            cell._params[k][...] = v
        kw = {} if noise_seed is None else {"rng": np.random.default_rng(noise_seed)}
        return cell._forward_sequence(d.get("x", x), None, train=train, **kw)

    def f(d):
        H, _ = forward(d)
        return (H[-1] if last else H).copy()

    def vjp(d, dy):
        _, cache = forward(d)
        if last:
            dx, grads = cell.backward_sequence(cache, None, dh_last=dy)
        else:
            dx, grads = cell.backward_sequence(cache, dy)
        assert not any(is_buffer(k) for k in grads)
        return grads if tokens else {**grads, "x": dx}

    point = {k: v.copy() for k, v in live.items()}
    if not tokens:
        point["x"] = x.copy()
    return check_vjp(f, vjp, point, rng=0, rtol=1e-7, raise_error=False)


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("train", [True, False])
def test_bptt_matches_finite_differences(name, T, train):
    """Every output step and the last step only; with ``T = 7 > t_max = 3`` the
    evaluation pass uses the statistics of step ``t_max - 1`` beyond it."""
    for last in (False, True):
        err = _fd_error(MAKERS[name](), T, train, last)
        assert err < 1e-7, (name, T, train, last, err)


@pytest.mark.parametrize("cls", [BNLSTMCell, LNLSTMCell])
def test_bptt_with_a_stored_input_term(cls):
    """input_size > 16: the input term of all steps is one GEMM and x̂_x is stored
    (the small-input path forms it again in BPTT instead)."""
    from lowdisp.nn._normalized import _SMALL_INPUT

    d = _SMALL_INPUT + 1
    kw = {"t_max": 3} if cls is BNLSTMCell else {}
    for train in (True, False):
        assert _fd_error(cls(d, 4, dtype=F64, rng=0, **kw), 7, train, False) < 1e-7


def test_bptt_with_h0_noise_and_token_input():
    cell = BNLSTMCell(3, 4, t_max=3, h0_noise=0.5, dtype=F64, rng=0)
    assert _fd_error(cell, 7, True, False, noise_seed=7) < 1e-7
    for name in MAKERS:
        cell = MAKERS[name]()
        assert _fd_error(cell, 7, True, False, tokens=True) < 1e-7, name


# --------------------------------------------------------------------------- reference


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _bn_ref(z, gamma, beta, eps, stats):
    """BN of one step's (B, m) block: its own batch statistics, or given (mean, var)."""
    if stats is None:
        mu, var = z.mean(0), z.var(0)
    else:
        mu, var = stats
    return beta + gamma * (z - mu) / np.sqrt(var + eps)


def _bn_lstm_reference(cell, x, h0, train):
    """Cooijmans et al.'s equations one step at a time; returns (H, batch stats per step)."""
    p = {k: v.copy() for k, v in cell.params().items()}
    n = cell.hidden_size
    T, B, _ = x.shape
    h = h0.copy()
    c = np.zeros((B, n))
    out, seen = [], []
    for t in range(T):
        s = min(t, cell.t_max - 1)

        def st(name, s=s):
            if train:
                return None
            return p[f"{name}.running_mean"][s], p[f"{name}.running_var"][s]

        zx = x[t] @ p["W_x"].T
        zh = h @ p["W_h"].T
        seen.append((zx.mean(0), zx.var(0), zh.mean(0), zh.var(0)))
        a = (
            _bn_ref(zh, p["gamma_h"], 0.0, cell.eps, st("bn_h"))
            + _bn_ref(zx, p["gamma_x"], 0.0, cell.eps, st("bn_x"))
            + p["b"]
        )
        i, f, g, o = (
            _sig(a[:, :n]),
            _sig(a[:, n : 2 * n]),
            np.tanh(a[:, 2 * n : 3 * n]),
            a[:, 3 * n :],
        )
        c = f * c + i * g
        seen[-1] += (c.mean(0), c.var(0))
        h = _sig(o) * np.tanh(_bn_ref(c, p["gamma_c"], p["beta_c"], cell.eps, st("bn_c")))
        out.append(h)
    return np.array(out), seen


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("d", [3, 20], ids=["input-per-step", "input-stored"])
def test_bn_lstm_equals_a_step_by_step_reference(train, d):
    """Per-step statistics; in evaluation the population statistics of step
    ``min(t, t_max - 1)`` (T = 9 > t_max = 4: the fallback is exercised). A small
    input term is formed per step (and again in BPTT), a large one stored: both."""
    rng = np.random.default_rng(1)
    cell = BNLSTMCell(d, 5, t_max=4, dtype=F64, rng=2)
    _randomize(cell, rng)
    x = rng.normal(size=(9, 6, d))
    h0 = 0.3 * rng.normal(size=(6, 5))
    want, _ = _bn_lstm_reference(cell, x, h0, train)
    H, _ = cell.forward_sequence(x, h0, train=train)
    np.testing.assert_allclose(H, want, rtol=0, atol=1e-12)


def test_running_statistics_are_exponential_averages_of_each_steps_batch_statistics():
    rng = np.random.default_rng(4)
    cell = BNLSTMCell(2, 3, t_max=4, momentum=0.25, dtype=F64, rng=0)
    x = rng.normal(size=(6, 7, 2))
    h0 = rng.normal(size=(7, 3))
    _, seen = _bn_lstm_reference(cell, x, h0, True)
    cell.forward_sequence(x, h0)
    p = cell.params()
    unbias = 7 / 6
    for t in range(4):
        mx, vx, mh, vh, mc, vc = seen[t]
        for name, m, v in (("bn_x", mx, vx), ("bn_h", mh, vh), ("bn_c", mc, vc)):
            np.testing.assert_allclose(p[f"{name}.running_mean"][t], 0.25 * m, atol=1e-13)
            np.testing.assert_allclose(
                p[f"{name}.running_var"][t], 0.75 + 0.25 * unbias * v, atol=1e-13
            )
    # evaluation does not touch them
    before = {k: v.copy() for k, v in p.items() if is_buffer(k)}
    cell.forward_sequence(x, h0, train=False)
    assert all(np.array_equal(before[k], p[k]) for k in before)


def test_evaluation_beyond_t_max_uses_the_statistics_of_step_t_max_minus_1():
    rng = np.random.default_rng(5)
    cell = BNLSTMCell(2, 3, t_max=3, dtype=F64, rng=0)
    _randomize(cell, rng)
    x = rng.normal(size=(8, 4, 2))
    H, _ = cell.forward_sequence(x, train=False)
    # the same cell with t_max = 8 whose statistics for steps >= 3 copy step 2's
    long = BNLSTMCell(2, 3, t_max=8, dtype=F64, rng=0)
    for k, v in cell.params().items():
        if is_buffer(k):
            long._params[k][...] = v[np.minimum(np.arange(8), 2)]
        else:
            long._params[k][...] = v
    H8, _ = long.forward_sequence(x, train=False)
    np.testing.assert_array_equal(H, H8)
    # and a change of step 2's statistics changes every later output
    cell._params["bn_c.running_var"][2] *= 2.0
    H2, _ = cell.forward_sequence(x, train=False)
    assert np.array_equal(H2[:2], H[:2]) and not np.any(np.isclose(H2[2:], H[2:], rtol=1e-9))


def test_bn_rnn_and_layer_norm_references():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 6, 3))
    for stats in ("frame", "sequence"):
        cell = BNRNNCell(3, 4, stats=stats, dtype=F64, rng=0)
        _randomize(cell, rng)
        p = cell.params()
        zx = x @ p["W_x"].T
        ax = 1 if stats == "frame" else (0, 1)
        bn = (
            p["gamma"]
            * (zx - zx.mean(ax, keepdims=True))
            / np.sqrt(zx.var(ax, keepdims=True) + cell.eps)
            + p["beta"]
        )
        h, want = np.zeros((6, 4)), []
        for t in range(5):
            h = np.tanh(bn[t] + h @ p["W_h"].T)
            want.append(h)
        np.testing.assert_allclose(cell.forward_sequence(x)[0], want, rtol=0, atol=1e-12)
    cell = LNRNNCell(3, 4, dtype=F64, rng=0)
    _randomize(cell, rng)
    p = cell.params()
    h, want = np.zeros((6, 4)), []
    for t in range(5):
        a = x[t] @ p["W_x"].T + h @ p["W_h"].T
        ln = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + cell.eps)
        h = np.tanh(p["gamma"] * ln + p["b"])
        want.append(h)
    np.testing.assert_allclose(cell.forward_sequence(x)[0], want, rtol=0, atol=1e-12)
    # layer norm is batch-independent: one example alone gives the same output
    ln_lstm = LNLSTMCell(3, 4, dtype=F64, rng=0)
    full = ln_lstm.forward_sequence(x)[0].copy()
    np.testing.assert_allclose(ln_lstm.forward_sequence(x[:, 2:3])[0][:, 0], full[:, 2], atol=1e-14)


# --------------------------------------------------------------------------- layer, training


def test_rnn_layer_passes_the_mode_and_h0_noise_is_training_only():
    rng = np.random.default_rng(7)
    cell = BNLSTMCell(2, 3, t_max=4, h0_noise=0.1, dtype=F64, rng=0)
    _randomize(cell, rng)
    rnn = lnn.RNN(cell)
    x = rng.normal(size=(6, 5, 2))
    ev1, _ = rnn.forward(x, train=False)
    ev1 = ev1.copy()
    ev2, _ = rnn.forward(x, train=False, rng=1)
    np.testing.assert_array_equal(ev1, ev2)  # no noise, population statistics
    np.testing.assert_array_equal(ev1, cell.forward_sequence(x, train=False)[0])
    tr1 = rnn.forward(x, train=True, rng=1)[0].copy()
    tr2 = rnn.forward(x, train=True, rng=1)[0].copy()
    tr3 = rnn.forward(x, train=True, rng=2)[0].copy()
    np.testing.assert_array_equal(tr1, tr2)
    assert not np.allclose(tr1, tr3) and not np.allclose(tr1, ev1)


@pytest.mark.parametrize("name", ["bn_lstm", "bn_rnn"])
def test_running_statistics_survive_a_checkpoint_and_the_optimizer_skips_them(name, tmp_path):
    task = lnn.digits(pixels_per_step=8)
    model = lnn.build_model(task, name, hidden=6, dtype=F64, rng=0, t_max=task.T)
    tr = lnn.Trainer(model, task.loss(), lnn.Adam(lr=1e-2), task, batch_size=16, rng=0)
    tr.fit(3, progress=False)
    params = model.params()
    buf = {k: v.copy() for k, v in params.items() if is_buffer(k)}
    assert buf and all(np.any(v != (k.endswith("var"))) for k, v in buf.items())
    assert not any(is_buffer(k) for k in tr.optimizer.state_dict())
    path = lnn.save(tmp_path / "ck.npz", tr)
    tr2 = lnn.load(path)
    for k, v in buf.items():
        np.testing.assert_array_equal(tr2.model.params()[k], v)
    # and a resumed run continues bit-exactly
    tr.fit(2, progress=False)
    tr2.fit(2, progress=False)
    for k, v in model.params().items():
        np.testing.assert_array_equal(tr2.model.params()[k], v)


def test_make_cell_builds_every_normalized_cell():
    for name, cls in (
        ("bn_lstm", BNLSTMCell),
        ("ln_lstm", LNLSTMCell),
        ("bn_rnn", BNRNNCell),
        ("ln_rnn", LNRNNCell),
    ):
        cell = lnn.make_cell(name, 2, 3, rng=0)
        assert type(cell) is cls and cell.dtype == np.float32
        rebuilt = type(cell)(**{k: v for k, v in cell.get_config().items() if k != "class"})
        assert rebuilt.get_config() == cell.get_config()
        # weight matrices, not the running statistics
        assert list(lnn.weight_matrices(lnn.RNN(cell))) == ["cell.W_x", "cell.W_h"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (
            lambda: BNLSTMCell(2, 3, t_max=0),
            ValueError,
            r"^BNLSTMCell: t_max must be in \[1, inf\]; got 0",
        ),
        (lambda: BNRNNCell(2, 3, t_max=0), ValueError, r"^BNRNNCell: t_max must be in \[1"),
        (
            lambda: BNRNNCell(2, 3, stats="time"),
            ValueError,
            r"^BNRNNCell: unknown stats 'time'; valid: 'frame', 'sequence'",
        ),
        (lambda: BNLSTMCell(2, 3, h0_noise=-0.1), ValueError, r"^BNLSTMCell: h0_noise must be"),
        (lambda: BNLSTMCell(2, 3, eps=0.0), ValueError, r"^BNLSTMCell: eps must be"),
        (lambda: BNLSTMCell(2, 3, momentum=1.5), ValueError, r"^BNLSTMCell: momentum must be"),
        (lambda: LNLSTMCell(2, 3, t_max=5), TypeError, r"^LNLSTMCell: \['t_max'\] apply to batch"),
        (
            lambda: lnn.make_cell("bn_rnn", 2, 3, forget_bias=1.0),
            TypeError,
            r"^make_cell: unknown option\(s\) \['forget_bias'\] for cell 'bn_rnn'; valid: ",
        ),
        (
            lambda: BNLSTMCell(2, 3).forward_sequence(np.ones((2, 2, 2)), train=1),
            TypeError,
            r"^BNLSTMCell.forward_sequence: train must be True or False",
        ),
    ],
)
def test_bad_input_is_a_clear_error(build, exc, match):
    with pytest.raises(exc, match=match):
        build()
