"""Fisher objects of recurrent, sequence and structured layers (issue 13, points 1, 3, 5):
KFAC-expand/-reduce against the exact GGN of a linear layer (Eschenhagen et al. 2023) and
against brute-force per-sequence gradients (per-sequence BPTT, itself checked by central
differences), all float64."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowdisp.nn as lnn

F64 = np.float64


# -- models and oracles --------------------------------------------------------------


class SumOverTime(lnn.Layer):
    """``(T, B, C) -> (B, C)``: the positions summed before the loss (the reduce setting)."""

    def _forward(self, x, train, rng):
        return x.sum(axis=0), x.shape

    def backward(self, cache, dy):
        return np.broadcast_to(dy, cache).copy(), {}


def _rnn(d=3, N=4, C=3, *, seq=True, seed=0):
    cell = lnn.TanhRNNCell(d, N, dtype=F64, rng=seed)
    return lnn.Sequential(
        {
            "rnn": lnn.RNN(cell, return_sequences=seq),
            "readout": lnn.Dense(N, C, dtype=F64, rng=seed + 1),
        }
    )


#: the objects' layout written out independently: rows of [U, W, b] then of [W, b]
GROUPS = (("rnn.cell.U", "rnn.cell.W", "rnn.cell.b"), ("readout.W", "readout.b"))


def _flat(g, groups=GROUPS):
    parts = []
    for grp in groups:
        cols = [g[p] if np.ndim(g[p]) == 2 else np.asarray(g[p])[:, None] for p in grp]
        parts.append(np.hstack(cols).reshape(-1))
    return np.concatenate(parts)


def _one(x, n):
    """Sequence ``n`` of a batch ``(T, B, ...)`` as a batch of one."""
    return x[:, n : n + 1]


def _seq_grads(model, loss_sum, x, y, *, seq=True):
    """Per-sequence gradients (rows) by BPTT on each sequence alone, loss summed over it."""
    B = x.shape[1]
    rows = []
    for n in range(B):
        z, cache = model.forward(_one(x, n), train=False)
        yn = _one(y, n) if seq else y[n : n + 1]
        _, dz = loss_sum(z, yn)
        rows.append(_flat(model.backward(cache, dz)[1]))
    return np.array(rows)


def _seq_data(T=5, B=4, d=3, C=3, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, d)), rng.integers(0, C, (T, B))


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# -- the oracle itself ---------------------------------------------------------------------


def test_per_sequence_bptt_oracle_matches_central_differences():
    model = _rnn()
    x, y = _seq_data(B=1)
    loss = lnn.SoftmaxCrossEntropy(reduction="sum")
    g = _seq_grads(model, loss, x, y)[0]
    params = model.params()
    rng = np.random.default_rng(7)
    for _ in range(3):
        v = {k: rng.normal(size=p.shape) for k, p in params.items()}
        h = 1e-6

        def f(s, v=v):
            old = {k: p.copy() for k, p in params.items()}
            for k, p in params.items():
                p += s * v[k]
            val = loss(model.forward(x, train=False)[0], y)[0]
            for k, p in params.items():
                p[...] = old[k]
            return val

        fd = (f(h) - f(-h)) / (2 * h)
        assert g @ _flat(v) == pytest.approx(fd, rel=1e-7, abs=1e-9)


# -- KFAC-expand / KFAC-reduce -------------------------------------------------------------


def test_t_equal_1_expand_and_reduce_are_the_plain_kfac():
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    loss = lnn.MSE()
    flat = lnn.fisher_matrix(lnn.Sequential([lnn.Dense(4, 3, dtype=F64, rng=0)]), loss, (x, t))
    A0, G0 = flat.factors["0"]
    for approx in ("expand", "reduce"):
        model = lnn.Sequential([lnn.Dense(4, 3, dtype=F64, rng=0)])
        K = lnn.fisher_matrix(model, loss, (x[None], t[None]), approx=approx)
        A, G = K.factors["0"]
        np.testing.assert_allclose(A, A0, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(G, G0, rtol=1e-13, atol=1e-15)
    # the cell's block too: one step, expand = reduce
    xs, ys = _seq_data(T=1, B=5)
    Ke, Kr = (
        lnn.fisher_matrix(_rnn(), lnn.SoftmaxCrossEntropy(), (xs, ys), approx=a)
        for a in ("expand", "reduce")
    )
    for name in ("rnn", "readout"):
        for a, b in zip(Ke.factors[name], Kr.factors[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def _tilde(x):
    return np.concatenate([x, np.ones((*x.shape[:-1], 1))], axis=-1)


@pytest.mark.parametrize("N", [1, 3])
def test_expand_is_the_exact_ggn_of_a_linear_layer_with_the_loss_at_every_position(N):
    T, d, o = 4, 3, 2
    rng = np.random.default_rng(N)
    x, t = rng.normal(size=(T, N, d)), rng.normal(size=(T, N, o))
    model = lnn.Sequential([lnn.Dense(d, o, dtype=F64, rng=0)])
    loss = lnn.MSE()
    xt = _tilde(x).reshape(-1, d + 1)
    # ℓ_n = Σ_t ||W ã_nt − t_nt||²: Jᵀ(2I)J = 2 I ⊗ Σ_t ã ãᵀ, averaged over n
    ggn = np.kron(2 * np.eye(o), xt.T @ xt / N)
    exact = lnn.fisher_matrix(model, loss, (x, t), kind="dense", fisher="exact").to_dense()
    np.testing.assert_allclose(exact, ggn, rtol=1e-12, atol=1e-12)
    Ke = lnn.fisher_matrix(model, loss, (x, t), fisher="exact", approx="expand").to_dense()
    np.testing.assert_allclose(Ke, ggn, rtol=1e-12, atol=1e-12)
    Kr = lnn.fisher_matrix(model, loss, (x, t), fisher="exact", approx="reduce").to_dense()
    assert _rel(Kr, ggn) > 0.05  # reduce is not exact in this setting


@pytest.mark.parametrize("N", [1, 3])
def test_reduce_is_the_exact_ggn_of_a_linear_layer_with_the_positions_summed(N):
    T, d, o = 4, 3, 2
    rng = np.random.default_rng(10 + N)
    x, t = rng.normal(size=(T, N, d)), rng.normal(size=(N, o))
    model = lnn.Sequential({"fc": lnn.Dense(d, o, dtype=F64, rng=0), "sum": SumOverTime()})
    loss = lnn.MSE()
    s = _tilde(x).sum(axis=0)  # (N, d + 1): Σ_t ã_nt
    ggn = np.kron(2 * np.eye(o), s.T @ s / N)
    exact = lnn.fisher_matrix(model, loss, (x, t), kind="dense", fisher="exact").to_dense()
    np.testing.assert_allclose(exact, ggn, rtol=1e-12, atol=1e-12)
    Kr = lnn.fisher_matrix(model, loss, (x, t), fisher="exact", approx="reduce").to_dense()
    np.testing.assert_allclose(Kr, ggn, rtol=1e-12, atol=1e-12)
    Ke = lnn.fisher_matrix(model, loss, (x, t), fisher="exact", approx="expand").to_dense()
    assert _rel(Ke, ggn) > 0.05  # expand is not exact in this setting


@pytest.mark.parametrize("seq", [True, False])
def test_factor_scales_against_per_sequence_gradients(seq):
    """A, G of both approximations from the forward states and brute-force per-sequence
    gradients (the cell's Σ_t δ_nt is the gradient of ℓ_n w.r.t. its bias)."""
    T, B, d, N, C = 5, 6, 3, 4, 3
    model = _rnn(d, N, C, seq=seq)
    x, y = _seq_data(T, B, d, C)
    y = y if seq else y[-1]
    rng_loss = lnn.SoftmaxCrossEntropy(reduction="sum")
    J = _seq_grads(model, rng_loss, x, y, seq=seq)
    a = N * (d + N + 1)
    gb = J[:, :a].reshape(B, N, d + N + 1)[:, :, -1]  # ∂ℓ_n/∂b = Σ_t δ_nt
    H = lnn.RNN(model.layers["rnn"].cell, return_sequences=True).forward(x, train=False)[0]
    Hprev = np.concatenate([np.zeros((1, B, N)), H[:-1]])
    rows = _tilde(np.concatenate([x, Hprev], axis=2))  # (T, B, d + N + 1)
    Kr = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), (x, y), approx="reduce")
    Ke = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), (x, y), approx="expand")
    abar = rows.mean(axis=0)
    A, G = Kr.factors["rnn"]
    np.testing.assert_allclose(A, abar.T @ abar / B, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(G, gb.T @ gb / B, rtol=1e-10, atol=1e-14)
    r2 = rows.reshape(-1, d + N + 1)
    np.testing.assert_allclose(Ke.factors["rnn"][0], r2.T @ r2 / (T * B), rtol=1e-12)
    # readout: ĝ_n = Σ_t (p_nt − e_y) (sequence output) or the last step's
    hb = _tilde(H if seq else H[-1])
    z = hb @ np.hstack([model.params()["readout.W"], model.params()["readout.b"][:, None]]).T
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    g = p - np.eye(C)[y]
    A, G = Kr.factors["readout"]
    gsum = g.sum(axis=0) if seq else g
    hbar = hb.mean(axis=0) if seq else hb
    np.testing.assert_allclose(A, hbar.T @ hbar / B, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(G, gsum.T @ gsum / B, rtol=1e-12, atol=1e-14)
    g2 = g.reshape(-1, C)
    np.testing.assert_allclose(Ke.factors["readout"][1], g2.T @ g2 / B, rtol=1e-12)
    # and the reduced output factor of the readout is its per-sequence bias gradient's
    Jr = J[:, a:].reshape(B, C, N + 1)[:, :, -1]
    np.testing.assert_allclose(Jr, gsum, rtol=1e-10, atol=1e-12)


# -- Fisher objects of an RNN ---------------------------------------------------------------


@pytest.mark.parametrize("seq,T", [(True, 5), (False, 5), (True, 19)])
def test_rnn_dense_block_and_diag_equal_the_brute_force_fisher(seq, T):
    """T = 19: BPTT hands its deltas over in blocks of 8 steps (3, 8, 8 from the end)."""
    model = _rnn(seq=seq)
    x, y = _seq_data(T=T)
    y = y if seq else y[-1]
    loss = lnn.SoftmaxCrossEntropy()
    J = _seq_grads(model, lnn.SoftmaxCrossEntropy(reduction="sum"), x, y, seq=seq)
    F = J.T @ J / J.shape[0]
    D = lnn.fisher_matrix(model, loss, (x, y), kind="dense")
    assert D.paths == [p for g in GROUPS for p in g]
    np.testing.assert_allclose(D.to_dense(), F, rtol=1e-10, atol=1e-13)
    a = 4 * (3 + 4 + 1)
    Fb = F.copy()
    Fb[:a, a:] = 0
    Fb[a:, :a] = 0
    Bk = lnn.fisher_matrix(model, loss, (x, y), kind="block").to_dense()
    np.testing.assert_allclose(Bk, Fb, rtol=1e-10, atol=1e-13)
    Dg = lnn.fisher_matrix(model, loss, (x, y), kind="diag")
    np.testing.assert_allclose(Dg.diag(), np.diag(F), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(Dg.to_dense(), np.diag(np.diag(F)), rtol=1e-10, atol=1e-13)


def _softmax_ggn_sum(model, x, T, B, C):
    """``Σ_n Σ_t J_tᵀ (diag p_t − p_t p_tᵀ) J_t`` of a softmax sequence model, the
    Jacobians from one backward pass per output of each sequence run alone."""
    P = 4 * 8 + 3 * 5
    F = np.zeros((P, P))
    for n in range(B):
        z, cache = model.forward(_one(x, n), train=False)
        for t in range(T):
            Jt = np.empty((C, P))
            for c in range(C):
                e = np.zeros_like(z)
                e[t, 0, c] = 1
                Jt[c] = _flat(model.backward(cache, e)[1])
            p = np.exp(z[t, 0] - z[t, 0].max())
            p /= p.sum()
            F += Jt.T @ (np.diag(p) - np.outer(p, p)) @ Jt
    return F


def test_rnn_exact_fisher_is_the_ggn_from_per_sequence_jacobians():
    """``Σ_t J_tᵀ (diag p_t − p_t p_tᵀ) J_t`` with the Jacobians from one backward pass per
    output (not the square-root passes the object uses)."""
    T, B, C = 4, 3, 3
    model = _rnn(C=C)
    x, y = _seq_data(T, B, C=C)
    F = _softmax_ggn_sum(model, x, T, B, C) / B
    D = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), (x, y), kind="dense", fisher="exact")
    np.testing.assert_allclose(D.to_dense(), F, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_rnn_kfac_and_ekfac_objects(approx):
    model = _rnn()
    data = _seq_data()
    loss = lnn.SoftmaxCrossEntropy()
    K = lnn.fisher_matrix(model, loss, data, kind="kfac", approx=approx)
    E = lnn.fisher_matrix(model, loss, data, kind="ekfac", approx=approx)
    Fb = lnn.fisher_matrix(model, loss, data, kind="block").to_dense()
    rng = np.random.default_rng(5)
    v = rng.normal(size=K.size)
    for M in (K, E):
        np.testing.assert_allclose(M.mv(v), M.to_dense() @ v, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(M.solve(M.mv(v, 1e-3), 1e-3), v, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(M.diag(), np.diag(M.to_dense()), rtol=1e-11, atol=1e-14)
    # EKFAC's diagonal is diag(Qᵀ F_block Q) per block, so its error is never above KFAC's
    i = 0
    for s in E._slots:
        k = s.rows * s.ncols
        UA, UG = E.bases[s.name]
        Q = np.kron(UG, UA)
        want = np.diag(Q.T @ Fb[i : i + k, i : i + k] @ Q)
        np.testing.assert_allclose(E.diagonals[s.name].reshape(-1), want, rtol=1e-9, atol=1e-13)
        i += k
    assert np.linalg.norm(E.to_dense() - Fb) <= np.linalg.norm(K.to_dense() - Fb) + 1e-12
    # the public two-step route gives the same object
    E2 = lnn.EKFACFisher.from_kfac(K).update_diag(model, loss, data)
    np.testing.assert_allclose(E2.to_dense(), E.to_dense(), rtol=1e-12, atol=1e-14)
    # a gradient-shaped dict round-trips through the [U, W, b] layout
    g = model.backward(*_fwd_sum(model, data))[1]
    w = K.mv(g)
    np.testing.assert_allclose(_flat(w), K.to_dense() @ _flat(g), rtol=1e-11, atol=1e-13)


def _fwd_sum(model, data):
    x, y = data
    z, cache = model.forward(x, train=False)
    return cache, lnn.SoftmaxCrossEntropy()(z, y)[1]


# -- token input (the copy task) -------------------------------------------------------------


def test_token_input_factor_is_the_token_frequencies_and_the_fisher_is_exact():
    task = lnn.copy_memory(3, n_copy=3, n_symbols=3)
    V = task.input_size
    model = lnn.build_model(task, "tanh", hidden=4, dtype=F64, rng=0)
    x, y = task.batch(5, rng=1)
    loss = task.loss()
    K = lnn.fisher_matrix(model, loss, (x, y), kind="kfac")
    A = K.factors["rnn"][0]
    freq = np.bincount(x.reshape(-1), minlength=V) / x.size
    np.testing.assert_allclose(A[:V, :V], np.diag(freq), atol=1e-15)
    np.testing.assert_allclose(A[:V, -1], freq, atol=1e-15)
    Kr = lnn.fisher_matrix(model, loss, (x, y), kind="kfac", approx="reduce")
    per_seq = np.stack([np.bincount(x[:, n], minlength=V) / x.shape[0] for n in range(5)])
    np.testing.assert_allclose(Kr.factors["rnn"][0][:V, :V], per_seq.T @ per_seq / 5, atol=1e-15)
    J = _seq_grads(model, type(loss)(reduction="sum"), x, y)
    D = lnn.fisher_matrix(model, loss, (x, y), kind="dense")
    np.testing.assert_allclose(D.to_dense(), J.T @ J / 5, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cls", [lnn.KFAC, lnn.EKFAC])
def test_kfac_optimizer_preconditions_a_token_rnn_without_a_warning(cls):
    task = lnn.copy_memory(3, n_copy=3, n_symbols=3)
    model = lnn.build_model(task, "tanh", hidden=4, dtype=F64, rng=0)
    opt = cls(lr=0.01, damping=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lnn.CurvatureWarning)
        tr = lnn.Trainer(model, task.loss(), opt, task, batch_size=5, rng=0)
        tr.fit(1, progress=False)
    A = opt.state_dict()["curvature/A/rnn"]
    V = task.input_size
    # a one-hot input factor: token block diagonal, equal to the bias column
    np.testing.assert_allclose(A[:V, :V], np.diag(np.diag(A[:V, :V])), atol=1e-15)
    np.testing.assert_allclose(np.diag(A[:V, :V]), A[:V, -1], atol=1e-15)
    assert A[:V, -1].sum() == pytest.approx(1.0)


# -- structured layers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "structure,n_in,n_out,rank",
    [("toeplitz_like", 5, 5, 2), ("circulant", 4, 6, None), ("low_rank", 5, 4, 2)],
)
def test_structured_layer_dense_and_diag_fisher_cover_the_generators(structure, n_in, n_out, rank):
    sd = lnn.StructuredDense(n_in, n_out, structure=structure, rank=rank, dtype=F64, rng=0)
    model = lnn.Sequential(
        {"s": sd, "act": lnn.Tanh(dtype=F64), "out": lnn.Dense(n_out, 3, dtype=F64, rng=1)}
    )
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, n_in)), rng.integers(0, 3, 7)
    keys = [f"s.{k}" for k in sd.params()]

    def flat(g):
        return np.concatenate([np.ravel(g[k]) for k in keys] + [_flat(g, (("out.W", "out.b"),))])

    lsum = lnn.SoftmaxCrossEntropy(reduction="sum")
    rows = []
    for i in range(7):
        z, cache = model.forward(x[i : i + 1], train=False)
        rows.append(flat(model.backward(cache, lsum(z, y[i : i + 1])[1])[1]))
    J = np.array(rows)
    F = J.T @ J / 7
    loss = lnn.SoftmaxCrossEntropy()
    D = lnn.fisher_matrix(model, loss, (x, y), kind="dense")
    assert D.paths == [*keys, "out.W", "out.b"]
    np.testing.assert_allclose(D.to_dense(), F, rtol=1e-10, atol=1e-13)
    Dg = lnn.fisher_matrix(model, loss, (x, y), kind="diag")
    np.testing.assert_allclose(Dg.diag(), np.diag(F), rtol=1e-10, atol=1e-13)
    v = {k: np.ones_like(p) for k, p in model.params().items()}
    w = Dg.mv(v)
    assert set(w) == set(D.paths)
    n_s = J.shape[1] - 3 * (n_out + 1)
    np.testing.assert_allclose(np.concatenate([np.ravel(w[k]) for k in keys]), np.diag(F)[:n_s])
    # no Kronecker rule: reported once, the Dense layer alone is covered
    with pytest.warns(lnn.CurvatureWarning, match="no Kronecker rule"):
        K = lnn.fisher_matrix(model, loss, (x, y), kind="kfac")
    assert K.paths == ["out.W", "out.b"]
    # a model without one: the other unsupported layer is reported, without the note
    dc = lnn.DiagonalCirculant(n_out, depth=1, dtype=F64, rng=0)
    other = lnn.Sequential({"dc": dc, "out": model.layers["out"]})
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", lnn.CurvatureWarning)
        lnn.fisher_matrix(other, loss, (rng.normal(size=(7, n_out)), y))
    msgs = [str(w.message) for w in rec if issubclass(w.category, lnn.CurvatureWarning)]
    assert len(msgs) == 1 and "'dc." in msgs[0] and "StructuredDense" not in msgs[0]


def test_structured_layer_on_sequences_sums_its_positions():
    sd = lnn.StructuredDense(4, 4, structure="toeplitz_like", rank=1, dtype=F64, rng=0)
    model = lnn.Sequential({"s": sd, "out": lnn.Dense(4, 2, dtype=F64, rng=1)})
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(3, 5, 4)), rng.integers(0, 2, (3, 5))
    keys = [f"s.{k}" for k in sd.params()]
    lsum = lnn.SoftmaxCrossEntropy(reduction="sum")
    rows = []
    for n in range(5):
        z, cache = model.forward(_one(x, n), train=False)
        g = model.backward(cache, lsum(z, _one(y, n))[1])[1]
        rows.append(
            np.concatenate([np.ravel(g[k]) for k in keys] + [_flat(g, (("out.W", "out.b"),))])
        )
    J = np.array(rows)
    D = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), (x, y), kind="dense")
    np.testing.assert_allclose(D.to_dense(), J.T @ J / 5, rtol=1e-10, atol=1e-13)


def test_bad_approx_is_named():
    model = lnn.Sequential([lnn.Dense(3, 2, dtype=F64, rng=0)])
    data = (np.ones((4, 3)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="approx"):
        lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, approx="sum")


def test_obd_scores_of_a_sequence_model_use_the_ggn_of_the_mean_loss():
    """OBD's ``½ F_ii θ_i²`` with F the GGN of the trainer's loss (a mean over T·B
    positions): fisher_matrix's per-sequence Fisher divided by T."""
    T, B, C = 4, 3, 3
    model = _rnn(C=C)
    x, y = _seq_data(T, B, C=C)
    ggn = _softmax_ggn_sum(model, x, T, B, C) / (B * T)
    d = {}
    i = 0
    for grp in GROUPS:  # the diagonal back in parameter shapes
        W = model.params()[grp[0]]
        k = W.shape[0] * sum(model.params()[p].reshape(W.shape[0], -1).shape[1] for p in grp)
        M = np.diag(ggn)[i : i + k].reshape(W.shape[0], -1)
        j = 0
        for p in grp:
            n_cols = model.params()[p].reshape(W.shape[0], -1).shape[1]
            d[p] = M[:, j : j + n_cols].reshape(model.params()[p].shape)
            j += n_cols
        i += k
    scores = lnn.pruning_scores(
        model,
        ["rnn.cell.W", "readout.W"],
        criterion="obd",
        data=(x, y),
        loss=lnn.SoftmaxCrossEntropy(),
        fisher="exact",
    )
    for p in ("rnn.cell.W", "readout.W"):
        th = model.params()[p]
        np.testing.assert_allclose(scores[p], 0.5 * d[p] * th * th, rtol=1e-10, atol=1e-15)


@settings(max_examples=12, deadline=None)
@given(
    T=st.integers(1, 10),
    B=st.integers(1, 4),
    d=st.integers(1, 3),
    N=st.integers(1, 4),
    seq=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_rnn_fisher_objects(T, B, d, N, seq, seed):
    """Random small RNNs: dense = brute force; EKFAC's error to the block Fisher is never
    above KFAC's (both approximations); T = 1 makes expand and reduce one."""
    model = _rnn(d, N, 2, seq=seq, seed=seed % 97)
    x, y = _seq_data(T, B, d, 2, seed=seed)
    y = y if seq else y[-1]
    loss = lnn.SoftmaxCrossEntropy()
    J = _seq_grads(model, lnn.SoftmaxCrossEntropy(reduction="sum"), x, y, seq=seq)
    F = lnn.fisher_matrix(model, loss, (x, y), kind="dense").to_dense()
    np.testing.assert_allclose(F, J.T @ J / B, rtol=1e-9, atol=1e-12)
    Fb = lnn.fisher_matrix(model, loss, (x, y), kind="block").to_dense()
    dense = {}
    for approx in ("expand", "reduce"):
        K = lnn.fisher_matrix(model, loss, (x, y), kind="kfac", approx=approx).to_dense()
        E = lnn.fisher_matrix(model, loss, (x, y), kind="ekfac", approx=approx).to_dense()
        assert np.linalg.norm(E - Fb) <= np.linalg.norm(K - Fb) * (1 + 1e-9) + 1e-12
        dense[approx] = K
    if T == 1:
        np.testing.assert_allclose(dense["expand"], dense["reduce"], rtol=1e-12, atol=1e-14)


def test_monte_carlo_fisher_of_a_sequence_model_converges_to_the_exact_one():
    """One sampled label per position and trial: no cross terms between positions."""
    model = _rnn(C=3)
    x, y = _seq_data(T=4, B=6, C=3)
    loss = lnn.SoftmaxCrossEntropy()
    exact = lnn.fisher_matrix(model, loss, (x, y), kind="dense", fisher="exact").to_dense()
    errs = [
        _rel(
            lnn.fisher_matrix(
                model, loss, (x, y), kind="dense", fisher="mc", trials=k, rng=1
            ).to_dense(),
            exact,
        )
        for k in (10, 1000)
    ]
    assert errs[1] < 0.1 < errs[0]
