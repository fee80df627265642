"""Pruning: masks through training, optimizers and checkpoints; criteria against
brute-force oracles; Taylor models against actual loss changes; bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowdisp.nn as lnn
from lowdisp.exceptions import CheckpointError

F64 = np.float64


def flat_task(n=120, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.argmax(x[:, :classes] + 0.3 * rng.normal(size=(n, classes)), axis=1)
    k = (3 * n) // 4
    return lnn.array_task(x[:k], y[:k], x[k:], y[k:], flat=True)


def trainer_for(opt, task=None, hidden=(8,), seed=0):
    task = task or flat_task()
    model = lnn.build_mlp(task, hidden=hidden, dtype=F64, rng=seed)
    return lnn.Trainer(model, task.loss(), opt, task, batch_size=15, rng=seed)


OPTIMIZERS = {
    "sgd": lambda: lnn.SGD(0.1),
    "momentum": lambda: lnn.SGD(0.1, momentum=0.9),
    "nesterov_wd": lambda: lnn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: lnn.Adam(1e-2),
    "rmsprop_eps0": lambda: lnn.RMSprop(1e-2, eps=0.0, momentum=0.5),
    "adam_clip": lambda: lnn.Adam(1e-2, clip_norm=0.1),
}


# ---------------------------------------------------------------------------
# the mask mechanism
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_weights_and_state_stay_zero(name):
    tr = trainer_for(OPTIMIZERS[name]())
    tr.fit(4, progress=False)  # momentum / moments exist before pruning
    rng = np.random.default_rng(1)
    W = tr.model.params()["fc0.W"]
    keep = rng.random(W.shape) > 0.4
    got = lnn.set_mask(tr, "fc0.W", keep)
    np.testing.assert_array_equal(got, keep)
    for k, v in tr.optimizer.state.items():
        if k.endswith("/fc0.W"):
            assert not np.any(v[~keep]), k
    tr.fit(25, progress=False)
    assert not np.any(W[~keep])
    assert np.all(W[keep] != 0)
    for k, v in tr.optimizer.state.items():
        if k.endswith("/fc0.W"):
            assert not np.any(v[~keep]), k
    rep = lnn.sparsity_report(tr)
    assert rep["fc0.W"]["pruned"] == int((~keep).sum()) == rep["fc0.W"]["zeros"]


def test_mask_set_on_model_before_trainer_is_used_by_it():
    task = flat_task()
    model = lnn.build_mlp(task, hidden=(8,), dtype=F64, rng=0)
    keep = np.zeros(model.params()["readout.W"].shape, dtype=bool)
    keep[:, ::2] = True
    lnn.set_mask(model, "readout.W", keep)
    tr = lnn.Trainer(model, task.loss(), lnn.Adam(1e-2), task, batch_size=15, rng=0)
    tr.fit(10, progress=False)
    assert not np.any(model.params()["readout.W"][~keep])
    assert tr.optimizer.masks is tr.masks


def test_kfac_wrapped_optimizer_keeps_masks():
    tr = trainer_for(lnn.KFAC(lr=1e-2, momentum=0.9))
    keep = np.random.default_rng(2).random(tr.model.params()["fc0.W"].shape) > 0.5
    lnn.set_mask(tr, "fc0.W", keep)
    tr.fit(8, progress=False)
    assert not np.any(tr.model.params()["fc0.W"][~keep])


def test_masks_compose_by_and():
    tr = trainer_for(lnn.SGD(0.1))
    shape = tr.model.params()["fc0.W"].shape
    a = np.ones(shape, dtype=bool)
    a[0] = False
    b = np.ones(shape, dtype=int)
    b[:, 0] = 0
    lnn.set_mask(tr, "fc0.W", a)
    got = lnn.set_mask(tr, "fc0.W", b)
    np.testing.assert_array_equal(got, a & b.astype(bool))


def test_checkpoint_resume_with_masks_is_bit_exact(tmp_path):
    def run(stop):
        task = flat_task()
        tr = trainer_for(lnn.Adam(1e-2), task=task)
        tr.fit(3, progress=False)
        keep = np.random.default_rng(3).random(tr.model.params()["fc0.W"].shape) > 0.3
        lnn.set_mask(tr, "fc0.W", keep)
        tr.fit(stop, progress=False)
        return tr, task, keep

    full, _, keep = run(20)
    part, task, _ = run(9)
    path = part.save(os.path.join(tmp_path, "ck"))
    ck = lnn.read_checkpoint(path)
    np.testing.assert_array_equal(ck.masks["fc0.W"], keep)
    other = trainer_for(lnn.Adam(1e-2), task=task)  # a fresh trainer restored in place
    lnn.load(path, trainer=other)
    again = lnn.load(path, task=task)  # rebuilt from the file (fit writes back to path)
    np.testing.assert_array_equal(lnn.pruning_masks(again)["fc0.W"], keep)
    assert again.optimizer.masks is again.masks
    again.fit(11, progress=False)
    other.fit(11, progress=False)
    for tr in (again, other):
        for k, v in full.model.params().items():
            np.testing.assert_array_equal(tr.model.params()[k], v)
        for k, v in full.optimizer.state.items():
            np.testing.assert_array_equal(tr.optimizer.state[k], v)


def test_checkpoint_refuses_masks_that_do_not_match(tmp_path):
    task = flat_task()
    tr = trainer_for(lnn.SGD(0.1), task=task)
    lnn.set_mask(tr, "fc0.W", np.eye(*tr.model.params()["fc0.W"].shape, dtype=bool))
    path = tr.save(os.path.join(tmp_path, "ck"))
    # a model whose fc0.W has another shape: refused, names the mask
    wide = trainer_for(lnn.SGD(0.1), task=task, hidden=(9,))
    with pytest.raises(CheckpointError, match=r"masks\.fc0\.W"):
        lnn.load(path, trainer=wide)
    assert lnn.pruning_masks(wide) == {}
    # a mask whose parameter is not zero where it prunes: refused on read
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    import json
    import zlib

    from lowdisp.nn._checkpoint import _crc

    arrays["params/fc0.W"] = arrays["params/fc0.W"] + 1.0
    meta = json.loads(str(arrays["meta"][()]))
    meta["crc32"]["params/fc0.W"] = _crc(arrays["params/fc0.W"])
    text = json.dumps(meta)
    arrays["meta"] = np.array(text)
    arrays["meta_crc32"] = np.array(zlib.crc32(text.encode()), dtype=np.int64)
    bad = os.path.join(tmp_path, "bad.npz")
    np.savez(bad, **arrays)
    with pytest.raises(CheckpointError, match="non-zero at entries its pruning mask removes"):
        lnn.read_checkpoint(bad)


def test_load_replaces_the_trainers_masks(tmp_path):
    task = flat_task()
    tr = trainer_for(lnn.SGD(0.1), task=task)
    path = tr.save(os.path.join(tmp_path, "ck"))  # unpruned
    other = trainer_for(lnn.SGD(0.1), task=task)
    lnn.set_mask(other, "fc0.W", np.zeros(other.model.params()["fc0.W"].shape, dtype=bool))
    lnn.load(path, trainer=other)
    assert lnn.pruning_masks(other) == {}
    np.testing.assert_array_equal(other.model.params()["fc0.W"], tr.model.params()["fc0.W"])


def test_remove_pruning_keeps_zeros_then_weights_may_grow():
    tr = trainer_for(lnn.SGD(0.5))
    shape = tr.model.params()["fc0.W"].shape
    keep = np.ones(shape, dtype=bool)
    keep[:, 0] = False
    lnn.set_mask(tr, "fc0.W", keep)
    assert lnn.remove_pruning(tr) == ["fc0.W"]
    assert not np.any(tr.model.params()["fc0.W"][:, 0])
    assert lnn.pruning_masks(tr) == {}
    tr.fit(5, progress=False)
    assert np.any(tr.model.params()["fc0.W"][:, 0])


def test_mask_bad_input():
    tr = trainer_for(lnn.SGD(0.1))
    shape = tr.model.params()["fc0.W"].shape
    with pytest.raises(ValueError, match=r"set_mask: the model has no parameter 'fc9\.W'"):
        lnn.set_mask(tr, "fc9.W", np.ones(shape, dtype=bool))
    with pytest.raises(ValueError, match=r"set_mask: mask must have the parameter's shape"):
        lnn.set_mask(tr, "fc0.W", np.ones((2, 2), dtype=bool))
    with pytest.raises(TypeError, match="set_mask: mask must be a boolean array"):
        lnn.set_mask(tr, "fc0.W", np.full(shape, 0.5))
    with pytest.raises(TypeError, match=r"set_mask: target must be a lowdisp\.nn Layer"):
        lnn.set_mask("model", "fc0.W", np.ones(shape, dtype=bool))
    with pytest.raises(ValueError, match=r"remove_pruning: 'fc0\.W' not pruned"):
        lnn.remove_pruning(tr, "fc0.W")
    cell_model = lnn.build_model(lnn.copy_memory(4), "scaled_cayley", hidden=4, rng=0)
    manifold = next(iter(cell_model.manifolds()), None)
    if manifold is not None:
        shape = cell_model.params()[manifold].shape
        with pytest.raises(ValueError, match="lives on a manifold"):
            lnn.set_mask(cell_model, manifold, np.ones(shape, dtype=bool))


# ---------------------------------------------------------------------------
# amounts, scopes, torch's conventions
# ---------------------------------------------------------------------------


def dense_net(sizes=(6, 5, 3), act="tanh", seed=0):
    layers = {}
    for i in range(len(sizes) - 1):
        layers[f"fc{i}"] = lnn.Dense(sizes[i], sizes[i + 1], dtype=F64, rng=seed + i)
        if i < len(sizes) - 2:
            layers[f"act{i}"] = lnn.Activation(act, dtype=F64)
    return lnn.Sequential(layers)


def test_fraction_of_remaining_composes_like_torch():
    net = dense_net((20, 10, 3))
    lnn.prune(net, "fc0.W", amount=0.5)
    lnn.prune(net, "fc0.W", amount=0.5)
    assert lnn.sparsity_report(net)["fc0.W"]["sparsity"] == 0.75
    lnn.prune(net, "fc0.W", amount=7)  # a count, on the remaining 50
    assert lnn.sparsity_report(net)["fc0.W"]["pruned"] == 157


def test_magnitude_masks_equal_torchs():
    torch = pytest.importorskip("torch")
    prune_t = pytest.importorskip("torch.nn.utils.prune")
    net = dense_net((12, 8, 4))
    W0 = {p: net.params()[p].copy() for p in ("fc0.W", "fc1.W")}
    lin = {p: torch.nn.Linear(1, 1) for p in W0}
    for p, m in lin.items():
        m.weight = torch.nn.Parameter(torch.tensor(W0[p]))
    # per layer, twice (composition on the remaining weights), then a count
    for amount in (0.3, 0.5, 5):
        lnn.prune(net, "fc0.W", amount=amount)
        prune_t.l1_unstructured(lin["fc0.W"], "weight", amount=amount)
    np.testing.assert_array_equal(
        lnn.pruning_masks(net)["fc0.W"], lin["fc0.W"].weight_mask.numpy().astype(bool)
    )
    # global over both layers
    net2 = dense_net((12, 8, 4))
    lin2 = {p: torch.nn.Linear(1, 1) for p in W0}
    for p, m in lin2.items():
        m.weight = torch.nn.Parameter(torch.tensor(W0[p]))
    for amount in (0.4, 0.5):
        lnn.prune(net2, ["fc0.W", "fc1.W"], amount=amount, scope="global")
        prune_t.global_unstructured(
            [(m, "weight") for m in lin2.values()],
            pruning_method=prune_t.L1Unstructured,
            amount=amount,
        )
    for p, m in lin2.items():
        np.testing.assert_array_equal(
            lnn.pruning_masks(net2)[p], m.weight_mask.numpy().astype(bool)
        )


def test_global_scope_ranks_across_layers():
    net = dense_net((6, 5, 3))
    net.params()["fc1.W"][...] *= 1e-3  # every weight of fc1 is smaller than any of fc0
    lnn.prune(net, ["fc0.W", "fc1.W"], amount=15, scope="global")
    rep = lnn.sparsity_report(net)
    assert rep["fc1.W"]["pruned"] == 15 and rep["fc0.W"]["pruned"] == 0
    net = dense_net((6, 5, 3))
    net.params()["fc1.W"][...] *= 1e-3
    lnn.prune(net, ["fc0.W", "fc1.W"], amount=15, scope="layer")
    rep = lnn.sparsity_report(net)
    assert rep["fc1.W"]["pruned"] == 15 and rep["fc0.W"]["pruned"] == 15


def test_importance_scores_and_random():
    net = dense_net()
    s = np.arange(30, dtype=F64).reshape(5, 6)[::-1]
    keep = lnn.prune(net, "fc0.W", importance_scores={"fc0.W": s}, amount=6)["fc0.W"]
    np.testing.assert_array_equal(~keep, s < 6)
    a = lnn.prune(dense_net(), "fc0.W", criterion="random", amount=0.5, rng=3)["fc0.W"]
    b = lnn.prune(dense_net(), "fc0.W", criterion="random", amount=0.5, rng=3)["fc0.W"]
    np.testing.assert_array_equal(a, b)
    assert (~a).sum() == 15


# ---------------------------------------------------------------------------
# criteria against brute force, Taylor models against actual loss changes
# ---------------------------------------------------------------------------


def ce_data(n=40, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, c, n)


def per_example_grads(net, loss, x, y):
    rows = []
    for i in range(len(x)):
        z, cache = net.forward(x[i : i + 1], train=False)
        _, dz = loss(z, y[i : i + 1])
        _, g = net.backward(cache, dz)
        rows.append({k: np.array(v, dtype=F64) for k, v in g.items()})
    return rows


def test_obd_lm_qm_scores_equal_brute_force():
    net = dense_net()
    ce = lnn.SoftmaxCrossEntropy()
    x, y = ce_data()
    rows = per_example_grads(net, ce, x, y)
    for p in ("fc0.W", "fc1.W", "fc0.b"):
        th = net.params()[p]
        F = np.mean([r[p] ** 2 for r in rows], axis=0)  # empirical Fisher diagonal
        g = np.mean([r[p] for r in rows], axis=0)
        kw = {"data": (x, y), "loss": ce}
        obd = lnn.pruning_scores(net, p, criterion="obd", **kw)[p]
        lm = lnn.pruning_scores(net, p, criterion="lm", **kw)[p]
        qm = lnn.pruning_scores(net, p, criterion="qm", **kw)[p]
        np.testing.assert_allclose(obd, 0.5 * F * th**2, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(lm, -g * th, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(qm, -g * th + 0.5 * F * th**2, rtol=1e-10, atol=1e-15)


def test_mse_fisher_is_scaled_to_the_mean_loss():
    # mean MSE over C outputs: the exact Fisher of L is E[J^T (2/C) J] (its GGN)
    net = dense_net((4, 3))
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(25, 4)), rng.normal(size=(25, 3))
    mse = lnn.MSE()
    d = lnn.pruning_scores(net, "fc0.W", criterion="obd", data=(x, t), loss=mse, fisher="exact")
    # linear model: the Hessian of L in W is (2/C) E[x x^T] per output row
    H = 2.0 / 3 * np.mean(x**2, axis=0)
    np.testing.assert_allclose(d["fc0.W"], 0.5 * H[None, :] * net.params()["fc0.W"] ** 2)


def loss_at(net, loss, x, y):
    return loss.forward(net.forward(x, train=False)[0], y)[0]


def actual_change(net, keep, t, loss, x, y):
    params = net.params()
    saved = {p: params[p].copy() for p in keep}
    before = loss_at(net, loss, x, y)
    for p, k in keep.items():
        params[p] -= t * np.where(k, 0.0, params[p])
    after = loss_at(net, loss, x, y)
    for p in keep:
        params[p][...] = saved[p]
    return after - before


def error_ratios(net, keep, loss, data, model, **kw):
    errs = []
    for t in (4e-2, 2e-2, 1e-2):
        pred = lnn.predicted_loss_change(
            net, keep, model=model, data=data, loss=loss, scale=t, **kw
        )
        errs.append(abs(actual_change(net, keep, t, loss, *data) - pred))
    return errs[0] / errs[1], errs[1] / errs[2]


def test_lm_is_first_order_accurate():
    net = dense_net((6, 5, 3))
    data = ce_data()
    rng = np.random.default_rng(4)
    keep = {p: rng.random(net.params()[p].shape) > 0.5 for p in ("fc0.W", "fc1.W")}
    for r in error_ratios(net, keep, lnn.SoftmaxCrossEntropy(), data, "lm"):
        assert 3.6 < r < 4.4  # error O(t^2): halving t divides it by 4


def test_quadratic_model_with_exact_gauss_newton_is_second_order_accurate():
    # MSE net at an interpolating point (targets = outputs): Hessian = GGN, so the
    # quadratic model's error is O(t^3): halving t divides it by 8
    net = dense_net((5, 4, 2))
    x = np.random.default_rng(5).normal(size=(30, 5))
    t = net.forward(x, train=False)[0].copy()
    rng = np.random.default_rng(6)
    keep = {p: rng.random(net.params()[p].shape) > 0.5 for p in ("fc0.W", "fc1.W", "fc0.b")}
    for r in error_ratios(
        net, keep, lnn.MSE(), (x, t), "quadratic", curvature="dense", fisher="exact"
    ):
        assert 7.0 < r < 9.0
    # one entry at a time the separable QM is the same model
    one = {p: np.ones(net.params()[p].shape, dtype=bool) for p in ("fc0.W",)}
    one["fc0.W"][1, 2] = False
    for r in error_ratios(net, one, lnn.MSE(), (x, t), "qm", fisher="exact"):
        assert 7.0 < r < 9.0
    # and LM there is only first order (g = 0: its error is the whole O(t^2) change)
    for r in error_ratios(net, keep, lnn.MSE(), (x, t), "lm"):
        assert 3.6 < r < 4.4


def test_kfac_quadratic_model_is_exact_for_one_layer():
    # one dense layer: KFAC's G (x) A equals the exact block when G is the same for all
    # examples -- MSE exact Fisher: G = (2/C) I, so quadratic(kfac) == quadratic(dense)
    net = dense_net((4, 3))
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(25, 4)), rng.normal(size=(25, 3))
    keep = {"fc0.W": rng.random((3, 4)) > 0.5}
    kw = {"data": (x, t), "loss": lnn.MSE(), "fisher": "exact", "model": "quadratic"}
    a = lnn.predicted_loss_change(net, keep, curvature="kfac", **kw)
    b = lnn.predicted_loss_change(net, keep, curvature="dense", **kw)
    assert a == pytest.approx(b, rel=1e-10)
    assert a == pytest.approx(actual_change(net, keep, 1.0, lnn.MSE(), x, t), rel=1e-10)


def test_separable_qm_prediction_is_the_sum_of_scores():
    net = dense_net()
    ce = lnn.SoftmaxCrossEntropy()
    data = ce_data()
    s = lnn.pruning_scores(net, "fc0.W", criterion="qm", data=data, loss=ce)["fc0.W"]
    keep = {"fc0.W": s > np.median(s)}
    pred = lnn.predicted_loss_change(net, keep, model="qm", data=data, loss=ce)
    assert pred == pytest.approx(s[~keep["fc0.W"]].sum(), rel=1e-12)


# ---------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------


def test_sparsity_schedules():
    np.testing.assert_allclose(lnn.sparsity_schedule(0.9, 3), [0.3, 0.6, 0.9])
    g = lnn.sparsity_schedule(0.875, 3, kind="geometric")
    np.testing.assert_allclose(g, [0.5, 0.75, 0.875])
    c = lnn.sparsity_schedule(0.8, 4, kind="cubic", initial=0.0)
    np.testing.assert_allclose(c, [0.8 - 0.8 * (1 - k / 4) ** 3 for k in (1, 2, 3, 4)])
    assert lnn.sparsity_schedule(0.5, 1).tolist() == [0.5]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prune_schedule_reaches_the_target_and_logs(scope):
    net = dense_net((8, 6, 3))
    ce = lnn.SoftmaxCrossEntropy()
    data = ce_data(d=8)
    log = lnn.prune_schedule(
        net,
        criterion="obd",
        sparsity=0.8,
        steps=4,
        scope=scope,
        data=data,
        loss=ce,
        models=("lm", "obd", "qm", "quadratic"),
        curvature="ekfac",
    )
    rep = lnn.sparsity_report(net)
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    n = 48 + 18
    assert sum(r["pruned"] for r in log) == rep["fc0.W"]["pruned"] + rep["fc1.W"]["pruned"]
    if scope == "global":
        assert sum(r["pruned"] for r in log) == round(0.8 * n)
    else:
        assert rep["fc0.W"]["pruned"] == round(0.8 * 48) and rep["fc1.W"]["pruned"] == round(
            0.8 * 18
        )
    for r in log:
        assert r["actual"] == pytest.approx(r["loss_after"] - r["loss_before"])
        assert set(r) >= {"pred_lm", "pred_obd", "pred_qm", "pred_quadratic", "target"}
    assert log[-1]["loss_after"] == pytest.approx(loss_at(net, ce, *data))


def test_prune_schedule_with_fine_tuning_on_a_trainer():
    tr = trainer_for(lnn.SGD(0.1, momentum=0.9))
    tr.fit(10, progress=False)
    log = lnn.prune_schedule(tr, criterion="lm", sparsity=0.5, steps=3, fine_tune=5)
    assert tr.step_count == 20 and len(log) == 3
    assert lnn.sparsity_report(tr, ["fc0.W", "readout.W"])["overall"]["sparsity"] == pytest.approx(
        0.5, abs=0.01
    )
    for p, keep in lnn.pruning_masks(tr).items():
        assert not np.any(tr.model.params()[p][~keep])


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def test_prune_bad_input():
    net = dense_net()
    with pytest.raises(ValueError, match=r"prune: amount must be a fraction in \[0, 1\]"):
        lnn.prune(net, "fc0.W", amount=1.5)
    with pytest.raises(ValueError, match=r"prune: amount must be a fraction in \[0, 1\]"):
        lnn.prune(net, "fc0.W", amount=-0.1)
    with pytest.raises(ValueError, match=r"prune: amount=31 entries must be in \[0, 30\]"):
        lnn.prune(net, "fc0.W", amount=31)
    lnn.prune(net, "fc0.W", amount=20)
    with pytest.raises(ValueError, match=r"amount=11 entries must be in \[0, 10\], the remaining"):
        lnn.prune(net, "fc0.W", amount=11)
    with pytest.raises(TypeError, match="prune: amount must be a fraction"):
        lnn.prune(net, "fc0.W", amount="half")
    with pytest.raises(ValueError, match=r"unknown criterion 'hessian'; valid: 'magnitude', "):
        lnn.prune(net, "fc0.W", criterion="hessian")
    with pytest.raises(ValueError, match=r"prune: the model has no parameter 'fc7\.W'"):
        lnn.prune(net, "fc7.W")
    with pytest.raises(ValueError, match="unknown scope 'all'"):
        lnn.prune(net, "fc0.W", scope="all")
    with pytest.raises(ValueError, match="prune: this criterion needs data="):
        lnn.prune(net, "fc0.W", criterion="obd", loss=lnn.SoftmaxCrossEntropy())
    emb = lnn.Sequential(
        {"emb": lnn.Embedding(5, 3, dtype=F64, rng=0), "fc": lnn.Dense(3, 2, dtype=F64, rng=0)}
    )
    with pytest.raises(ValueError, match="needs the Fisher diagonal, which covers the Dense"):
        lnn.pruning_scores(
            emb,
            "emb.E",
            criterion="obd",
            data=(np.array([1, 2]), np.array([0, 1])),
            loss=lnn.SoftmaxCrossEntropy(),
        )
    with pytest.raises(ValueError, match="sparsity_schedule: sparsity must be in"):
        lnn.sparsity_schedule(1.0, 3)
    with pytest.raises(ValueError, match="unknown kind 'linear'"):
        lnn.sparsity_schedule(0.5, 3, kind="linear")
    with pytest.raises(ValueError, match="unknown model 'cubic'"):
        lnn.predicted_loss_change(net, {}, model="cubic")


def test_recurrent_matrix_pruned_through_bptt_and_adam():
    task = lnn.copy_memory(4, n_eval=16)
    tr = lnn.make_trainer(task, "tanh", hidden=6, batch_size=8, optimizer="adam", rng=0)
    W = tr.model.params()["rnn.cell.W"]
    keep = np.random.default_rng(0).random(W.shape) > 0.5
    lnn.set_mask(tr, "rnn.cell.W", keep)
    tr.fit(10, progress=False)
    assert not np.any(W[~keep]) and np.all(W[keep] != 0)
    np.testing.assert_array_equal(lnn.recurrent_matrix(tr.model) == 0, ~keep)


@settings(max_examples=15)
@given(
    amounts=st.lists(st.one_of(st.floats(0, 1), st.integers(0, 6)), min_size=1, max_size=4),
    scope=st.sampled_from(["layer", "global"]),
    seed=st.integers(0, 2**16),
)
def test_amounts_prune_the_smallest_remaining_entries(amounts, scope, seed):
    # oracle: numpy on the flat magnitudes, torch's rounding, ties impossible (random)
    net = dense_net((4, 3, 2), seed=seed)
    paths = ["fc0.W", "fc1.W"]
    alive = {p: np.ones(net.params()[p].shape, dtype=bool) for p in paths}
    for a in amounts:
        groups = [[p] for p in paths] if scope == "layer" else [paths]
        for g in groups:
            rem = sum(int(alive[p].sum()) for p in g)
            k = a if isinstance(a, int) else round(a * rem)
            if k > rem:
                with pytest.raises(ValueError, match="remaining"):
                    lnn.prune(net, paths, amount=a, scope=scope)
                return
        for g in groups:
            rem = sum(int(alive[p].sum()) for p in g)
            k = a if isinstance(a, int) else round(a * rem)
            mags = np.concatenate(
                [np.where(alive[p], np.abs(net.params()[p]), np.inf).ravel() for p in g]
            )
            drop = np.zeros(mags.size, dtype=bool)
            drop[np.argsort(mags, kind="stable")[:k]] = True
            i = 0
            for p in g:
                n = alive[p].size
                alive[p] &= ~drop[i : i + n].reshape(alive[p].shape)
                i += n
        lnn.prune(net, paths, amount=a, scope=scope)
        got = lnn.pruning_masks(net)
        for p in paths:
            np.testing.assert_array_equal(got[p], alive[p])
