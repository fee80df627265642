"""Pruning criteria on sequence models: examples are sequences (the batch axis of a
time-major ``(T, B, ...)`` batch, not its length ``T``), over several batches of
different sizes (and lengths), for ``reduction="mean"`` and ``"sum"``.

Oracle: per-sequence gradients ``∇ℓ_i`` in float64 by BPTT on each sequence alone
with the loss summed over it, and the loss ``L`` written out from its definition
(the example-weighted mean of the batch means, or the sum): ``L = Σ_i w_i ℓ_i``
with ``w_i = 1/(N k_i)`` for a mean (``N`` sequences in all, ``k_i`` loss elements
per sequence of its batch), ``w_i = 1`` for a sum. Then ``g = Σ_i w_i ∇ℓ_i`` and
the empirical Fisher of ``L`` is ``Σ_i w_i ∇ℓ_i ∇ℓ_iᵀ``.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn

F64 = np.float64
PATHS = ("rnn.cell.U", "rnn.cell.W", "rnn.cell.b", "readout.W", "readout.b")
CHECK = {"rtol": 1e-10, "atol": 1e-15}


def _rnn(seq, d=3, N=4, C=3, seed=0):
    cell = lnn.TanhRNNCell(d, N, dtype=F64, rng=seed)
    return lnn.Sequential(
        {
            "rnn": lnn.RNN(cell, return_sequences=seq),
            "readout": lnn.Dense(N, C, dtype=F64, rng=seed + 1),
        }
    )


def _data(shapes, seq, mse, d=3, C=3, seed=3):
    """One ``(x, y)`` batch per ``(T, B)``: inputs ``(T, B, d)``; class ids ``(T, B)``
    (per-step readout) or ``(B,)`` (last step); MSE targets ``(T, B, C)`` or ``(B, C)``."""
    rng = np.random.default_rng(seed)
    out = []
    for T, B in shapes:
        x = rng.normal(size=(T, B, d))
        lead = (T, B) if seq else (B,)
        y = rng.normal(size=(*lead, C)) if mse else rng.integers(0, C, lead)
        out.append((x, y))
    return out


def _oracle(model, loss, batches, seq):
    """``(L, {path: g}, {path: Fisher diagonal}, F over PATHS flattened, G rows)``."""
    loss_sum = type(loss)(reduction="sum")
    params = model.params()
    rows, ells, w = [], [], []
    N = sum(x.shape[1] for x, _ in batches)
    for x, y in batches:
        T, B = x.shape[:2]
        C = params["readout.W"].shape[0]
        k = (T if seq else 1) * (1 if isinstance(loss, lnn.SoftmaxCrossEntropy) else C)
        for i in range(B):
            xi = x[:, i : i + 1]
            yi = y[:, i : i + 1] if seq else y[i : i + 1]
            z, cache = model.forward(xi, train=False)
            ell, dz = loss_sum(z, yi)
            g = model.backward(cache, dz)[1]
            rows.append(np.concatenate([np.asarray(g[p], dtype=F64).ravel() for p in PATHS]))
            ells.append(ell)
            w.append(1.0 / (N * k) if loss.reduction == "mean" else 1.0)
    G, w = np.array(rows), np.array(w)
    L = float(w @ np.array(ells))
    gf, df = w @ G, w @ G**2
    F = G.T @ (w[:, None] * G)
    return L, _unflat(gf, params), _unflat(df, params), F


def _unflat(v, params):
    out, i = {}, 0
    for p in PATHS:
        n = params[p].size
        out[p] = v[i : i + n].reshape(params[p].shape)
        i += n
    return out


def _flat(d, params):
    return np.concatenate([np.asarray(d.get(p, np.zeros(params[p].shape))).ravel() for p in PATHS])


def _loss_of_definition(model, loss, batches):
    """``L`` from the losses as the trainer reduces them, batch by batch."""
    N = sum(x.shape[1] for x, _ in batches)
    vals = [loss(model.forward(x, train=False)[0], y)[0] for x, y in batches]
    if loss.reduction == "sum":
        return sum(vals)
    return sum(v * x.shape[1] / N for v, (x, _) in zip(vals, batches, strict=True))


CASES = [
    # (reduction, per-step readout, MSE, batch shapes (T, B))
    ("mean", True, False, [(4, 3), (4, 6)]),
    ("sum", True, False, [(4, 3), (4, 6)]),
    ("mean", False, False, [(4, 3), (4, 6)]),
    ("sum", False, False, [(4, 3), (4, 6)]),
    ("mean", True, True, [(4, 3), (4, 6)]),
    ("mean", True, False, [(4, 3), (6, 2)]),  # lengths differ: 4 and 6 positions
    ("sum", True, True, [(4, 3), (6, 2)]),
    ("mean", False, False, [(4, 3), (6, 2)]),
    ("mean", True, False, [(5, 4)]),
]


def _case_id(c):
    red, seq, mse, shapes = c
    return f"{red}-{'seq' if seq else 'last'}-{'mse' if mse else 'ce'}-" + "+".join(
        f"{T}x{B}" for T, B in shapes
    )


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_scores_and_predicted_change_equal_per_sequence_brute_force(case):
    red, seq, mse, shapes = case
    model = _rnn(seq)
    loss = (lnn.MSE if mse else lnn.SoftmaxCrossEntropy)(reduction=red)
    batches = _data(shapes, seq, mse)
    L, g, fd, F = _oracle(model, loss, batches, seq)
    params = model.params()
    assert _loss_of_definition(model, loss, batches) == pytest.approx(L, rel=1e-13)
    kw = {"data": batches, "loss": loss}
    for crit in ("obd", "lm", "qm", "qm_abs"):
        s = lnn.pruning_scores(model, list(PATHS), criterion=crit, **kw)
        for p in PATHS:
            th = params[p]
            want = {"obd": 0.5 * fd[p] * th**2, "lm": -g[p] * th}
            want["qm"] = want["lm"] + want["obd"]
            want["qm_abs"] = np.abs(want["qm"])
            np.testing.assert_allclose(s[p], want[crit], err_msg=f"{crit} {p}", **CHECK)
    rng = np.random.default_rng(11)
    keep = {p: rng.random(params[p].shape) < 0.6 for p in PATHS}
    t = 0.7
    dth = {p: -t * np.where(keep[p], 0.0, params[p]) for p in PATHS}
    dv = _flat(dth, params)
    lin = float(_flat(g, params) @ dv)
    sep = 0.5 * float(_flat(fd, params) @ dv**2)
    want = {"lm": lin, "obd": sep, "qm": lin + sep, "quadratic": lin + 0.5 * float(dv @ F @ dv)}
    for m, v in want.items():
        got = lnn.predicted_loss_change(model, keep, model=m, curvature="dense", scale=t, **kw)
        assert got == pytest.approx(v, rel=1e-10, abs=1e-15), m


def test_the_oracle_gradient_is_the_derivative_of_the_loss():
    """The oracle's g against central differences of L (its definition), two batches
    of different sizes and lengths."""
    model = _rnn(True)
    loss = lnn.SoftmaxCrossEntropy()
    batches = _data([(4, 3), (6, 2)], True, False)
    _, g, _, _ = _oracle(model, loss, batches, True)
    params = model.params()
    rng = np.random.default_rng(5)
    v = {p: rng.normal(size=params[p].shape) for p in PATHS}
    h = 1e-6
    vals = []
    for s in (h, -h):
        for p in PATHS:
            params[p] += s * v[p]
        vals.append(_loss_of_definition(model, loss, batches))
        for p in PATHS:
            params[p] -= s * v[p]
    fd = (vals[0] - vals[1]) / (2 * h)
    assert float(_flat(g, params) @ _flat(v, params)) == pytest.approx(fd, rel=1e-7)


def test_token_input_counts_sequences_not_steps():
    """Token input ``(T, B)`` integers: ``len(x)`` is ``T``; the count is ``B``."""
    task = lnn.copy_memory(3, n_copy=3, n_symbols=3)
    model = lnn.build_model(task, "tanh", hidden=4, dtype=F64, rng=0)
    loss = lnn.SoftmaxCrossEntropy(reduction="sum")
    batches = [task.batch(2, rng=1), task.batch(5, rng=2)]
    params = model.params()
    paths = [p for p in params if p.endswith(".W")]
    per_seq = []
    for x, y in batches:
        for i in range(x.shape[1]):
            z, cache = model.forward(x[:, i : i + 1], train=False)
            per_seq.append(model.backward(cache, loss(z, y[:, i : i + 1])[1])[1])
    s = lnn.pruning_scores(model, paths, criterion="qm", data=batches, loss=loss)
    for p in paths:
        gp = sum(np.asarray(r[p], dtype=F64) for r in per_seq)
        dp = sum(np.asarray(r[p], dtype=F64) ** 2 for r in per_seq)
        th = params[p]
        np.testing.assert_allclose(s[p], -gp * th + 0.5 * dp * th**2, **CHECK)


def test_a_fisher_object_is_scaled_by_the_sequence_count_and_refused_when_lengths_differ():
    model = _rnn(True)
    batches = _data([(4, 3), (6, 2)], True, False)
    params = model.params()
    keep = {p: np.arange(params[p].size).reshape(params[p].shape) % 3 != 0 for p in PATHS}
    dv = _flat({p: -np.where(keep[p], 0.0, params[p]) for p in PATHS}, params)
    # a sum: the object built on all the batches times N sequences
    s_loss = lnn.SoftmaxCrossEntropy(reduction="sum")
    _, g, _, F = _oracle(model, s_loss, batches, True)
    D = lnn.fisher_matrix(model, s_loss, batches, kind="dense")
    got = lnn.predicted_loss_change(
        model, keep, model="quadratic", curvature=D, data=batches, loss=s_loss
    )
    want = float(_flat(g, params) @ dv) + 0.5 * float(dv @ F @ dv)
    assert got == pytest.approx(want, rel=1e-10)
    # a mean over sequences of 4 and 6 positions: no single factor; a kind works
    m_loss = lnn.SoftmaxCrossEntropy()
    D = lnn.fisher_matrix(model, m_loss, batches, kind="dense")
    with pytest.raises(ValueError, match="curvature"):
        lnn.predicted_loss_change(
            model, keep, model="quadratic", curvature=D, data=batches, loss=m_loss
        )
    with pytest.raises(ValueError, match="curvature"):
        lnn.prune_schedule(
            model, criterion="magnitude", sparsity=0.5, data=batches, loss=m_loss,
            models=("quadratic",), curvature=D,
        )  # fmt: skip
    assert lnn.sparsity_report(model)["overall"]["pruned"] == 0  # refused before any step


@pytest.mark.parametrize("red", ["mean", "sum"])
def test_prune_schedule_logs_the_loss_and_predictions_of_several_sequence_batches(red):
    model = _rnn(True)
    loss = lnn.SoftmaxCrossEntropy(reduction=red)
    batches = _data([(4, 3), (4, 6)], True, False)
    L, g, fd, _ = _oracle(model, loss, batches, True)
    params = model.params()
    paths = ["rnn.cell.W", "readout.W"]
    before = {p: params[p].copy() for p in paths}
    (rec,) = lnn.prune_schedule(
        model, paths, criterion="qm", sparsity=0.25, data=batches, loss=loss,
        models=("lm", "qm"),
    )  # fmt: skip
    masks = lnn.pruning_masks(model)
    lm = sum(float(np.sum(-g[p] * np.where(masks[p], 0.0, before[p]))) for p in paths)
    ob = sum(0.5 * float(np.sum(fd[p] * np.where(masks[p], 0.0, before[p]) ** 2)) for p in paths)
    assert rec["pruned"] == 0.25 * sum(before[p].size for p in paths)
    assert rec["loss_before"] == pytest.approx(L, rel=1e-13)
    assert rec["loss_after"] == pytest.approx(_loss_of_definition(model, loss, batches), rel=1e-13)
    assert rec["pred_lm"] == pytest.approx(lm, rel=1e-10)
    assert rec["pred_qm"] == pytest.approx(lm + ob, rel=1e-10)


def test_examples_are_counted_on_the_batch_axis():
    """Two batches ``(T=4, B=3)`` and ``(T=6, B=2)`` hold 5 sequences (``len(x)``
    would give 10), of 4·3 and 6·3 MSE elements each."""
    from lowdisp.nn._pruning import _stats_for

    model = _rnn(True)
    st = _stats_for(model, model, _data([(4, 3), (6, 2)], True, True), lnn.MSE(), "t")
    assert st.n == 5
    assert st.counts() == [(3, 4 * 3), (2, 6 * 3)]


class _Squeeze(lnn.Layer):
    """``(B, 1) -> (B,)``: an output with no outputs axis."""

    def _forward(self, x, train, rng):
        return x[:, 0], x.shape

    def backward(self, cache, dy):
        return dy.reshape(cache), {}


def test_an_output_without_a_batch_axis_to_count_is_named():
    net = lnn.Sequential({"fc": lnn.Dense(3, 1, dtype=F64, rng=0), "sq": _Squeeze()})
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(6, 3)), rng.normal(size=6))
    with pytest.raises(ValueError, match=r"pruning_scores: .*\(batch, outputs\).*got shape \(6,\)"):
        lnn.pruning_scores(net, criterion="lm", data=data, loss=lnn.MSE())


def test_exact_obd_is_the_ggn_of_the_mean_loss_over_two_batches():
    """``fisher="exact"``: ½ diag(GGN of L) θ² with the GGN from per-position output
    Jacobians, ``Σ_b (B_b/N) (1/(B_b T_b)) Σ_{n,t} J_ntᵀ (diag p − p pᵀ) J_nt``."""
    model = _rnn(True)
    batches = _data([(3, 2), (5, 3)], True, False)
    params = model.params()
    C = params["readout.W"].shape[0]
    N = 5
    P = sum(params[p].size for p in PATHS)
    ggn = np.zeros(P)
    for x, _ in batches:
        T, B = x.shape[:2]
        for n in range(B):
            z, cache = model.forward(x[:, n : n + 1], train=False)
            for t in range(T):
                J = np.empty((C, P))
                for c in range(C):
                    e = np.zeros_like(z)
                    e[t, 0, c] = 1
                    g = model.backward(cache, e)[1]
                    J[c] = np.concatenate([np.asarray(g[p]).ravel() for p in PATHS])
                p = np.exp(z[t, 0] - z[t, 0].max())
                p /= p.sum()
                ggn += np.einsum("cp,cd,dp->p", J, np.diag(p) - np.outer(p, p), J) / (N * T)
    d = _unflat(ggn, params)
    s = lnn.pruning_scores(
        model, list(PATHS), criterion="obd", data=batches, loss=lnn.SoftmaxCrossEntropy(),
        fisher="exact",
    )  # fmt: skip
    for q in PATHS:
        np.testing.assert_allclose(s[q], 0.5 * d[q] * params[q] ** 2, err_msg=q, **CHECK)
