"""KFAC and EKFAC optimizers: factor scaling against explicit per-example gradients,
the preconditioned step against dense formulas, damping conventions, checkpoints
that resume bit for bit, the spec round trip, and bad input."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import LowdispError
from lowdisp.nn._kfac import PREFIX

# -- helpers -------------------------------------------------------------------------


def _net(sizes=(5, 4, 3), dtype=np.float64, seed=0, act="tanh"):
    rng = np.random.default_rng(seed)
    layers = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers[f"fc{i}"] = lnn.Dense(a, b, dtype=dtype, rng=rng)
        if i < len(sizes) - 2:
            layers[f"act{i}"] = lnn.Activation(act, dtype=dtype)
    return lnn.Sequential(layers)


def _data(n=16, d=5, C=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, C, n)


def _per_example(model, loss_cls, x, y):
    """Explicit per-example gradients: a backward per example with a sum loss."""
    out = {}
    for i in range(x.shape[0]):
        z, cache = model.forward(x[i : i + 1])
        _, dz = loss_cls(reduction="sum")(z, y[i : i + 1])
        _, g = model.backward(cache, dz)
        for k, v in g.items():
            out.setdefault(k, []).append(v.copy())
    return {k: np.stack(v) for k, v in out.items()}


def _layer_inputs(model, x):
    """Input of each dense layer (forward by hand)."""
    ins = {}
    h = x
    for name, layer in model.layers.items():
        if isinstance(layer, lnn.Dense):
            ins[name] = h
        h, _ = layer.forward(h)
    return ins


def _one_step(opt, model, x, y, loss=None):
    loss = loss or lnn.SoftmaxCrossEntropy()
    opt.attach(model, loss)
    z, cache = model.forward(x)
    _, dz = loss(z, y)
    _, grads = model.backward(cache, dz)
    before = {k: v.copy() for k, v in model.params().items()}
    opt.step(model.params(), {k: v.copy() for k, v in grads.items()})
    return before, grads


# -- factors: the per-example scale ----------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_factors_match_explicit_per_example_gradients(reduction):
    """G = E[g gᵀ] with g_i = ∂ℓ_i/∂z_i: neither B² too small (mean) nor too large (sum)."""
    model = _net()
    x, y = _data()
    pe = _per_example(model, lnn.SoftmaxCrossEntropy, x, y)
    ins = _layer_inputs(model, x)
    opt = lnn.KFAC(lr=0.1)
    _one_step(opt, model, x, y, lnn.SoftmaxCrossEntropy(reduction=reduction))
    for name in ("fc0", "fc1"):
        g = pe[f"{name}.b"]  # per-example ∂ℓ_i/∂z_i (the bias gradient)
        G_ref = g.T @ g / x.shape[0]
        at = np.hstack([ins[name], np.ones((x.shape[0], 1))])
        A_ref = at.T @ at / x.shape[0]
        np.testing.assert_allclose(opt._curv[f"{PREFIX}G/{name}"], G_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(opt._curv[f"{PREFIX}A/{name}"], A_ref, rtol=1e-12, atol=1e-15)
        # the per-example weight gradient is rank one: g_i ã_iᵀ
        np.testing.assert_allclose(
            pe[f"{name}.W"], g[:, :, None] * ins[name][:, None, :], rtol=1e-12, atol=1e-15
        )


def test_factors_are_float64_for_float32_training():
    model = _net(dtype=np.float32)
    x, y = _data()
    opt = lnn.EKFAC(lr=0.1)
    before, _ = _one_step(opt, model, x.astype(np.float32), y)
    factors = [k for k in opt._curv if k.startswith((PREFIX + "A/", PREFIX + "G/"))]
    assert len(factors) == 4
    for k in factors:
        assert opt._curv[k].dtype == np.float64
    for k, v in model.params().items():
        assert v.dtype == np.float32 and not np.array_equal(v, before[k])


@pytest.mark.parametrize(
    "make",
    [
        lambda: lnn.KFAC(lr=0.5, momentum=0.0, damping=0.1),
        lambda: lnn.EKFAC(lr=0.5, momentum=0.0, damping=0.1),
    ],
)
def test_float32_training_keeps_float64_state_and_float32_products(make):
    """float64: the factor averages, their damped inverses / eigenbases and EKFAC's
    diagonal (the state); float32: the batch products (Gram matrices, projections,
    preconditioning GEMMs), which use float32 copies of the state. The float32 step
    agrees with the float64 one to float32 accuracy."""
    x, y = _data()
    m32, m64 = _net(dtype=np.float32), _net(dtype=np.float64)
    for k, v in m64.params().items():
        np.copyto(v, m32.params()[k])
    o32, o64 = make(), make()
    b32, _ = _one_step(o32, m32, x.astype(np.float32), y)
    b64, _ = _one_step(o64, m64, x, y)
    assert o32._curv and all(
        v.dtype.kind != "f" or v.dtype == np.float64 for v in o32._curv.values()
    )
    assert o32._cast and all(v.dtype == np.float32 for v in o32._cast.values())
    for k, v in m64.params().items():
        d32 = (b32[k] - m32.params()[k]).astype(np.float64)
        d64 = b64[k] - v
        assert np.linalg.norm(d32 - d64) <= 1e-5 * np.linalg.norm(d64)  # measured 1e-7..4e-7


def test_moving_average_decay_follows_martens_grosse():
    """ρ = min(1 − 1/k, decay): the k-th factor update."""
    model = _net()
    opt = lnn.KFAC(lr=1e-3, decay=0.6, refresh=100)
    loss = lnn.SoftmaxCrossEntropy()
    opt.attach(model, loss)
    As = []
    expect = None
    for k in range(1, 5):
        x, y = _data(seed=10 + k)
        ins = _layer_inputs(model, x)
        at = np.hstack([ins["fc0"], np.ones((16, 1))])
        Ab = at.T @ at / 16
        rho = min(1 - 1 / k, 0.6)
        expect = Ab if expect is None else rho * expect + (1 - rho) * Ab
        z, cache = model.forward(x)
        _, dz = loss(z, y)
        _, grads = model.backward(cache, dz)
        opt.step(model.params(), grads)
        As.append(opt._curv[f"{PREFIX}A/fc0"].copy())
        np.testing.assert_allclose(As[-1], expect, rtol=1e-12)


# -- the preconditioned step ------------------------------------------------------------


def _grad_matrix(grads, name):
    return np.hstack([grads[f"{name}.W"], grads[f"{name}.b"][:, None]])


@pytest.mark.parametrize("style", ["paper", "authors_code", "none"])
def test_kfac_step_equals_the_dense_kronecker_solve(style):
    model = _net()
    x, y = _data()
    lam, lr = 1e-2, 0.5
    opt = lnn.KFAC(lr=lr, momentum=0.0, damping=lam, damping_style=style)
    before, grads = _one_step(opt, model, x, y)
    for name in ("fc0", "fc1"):
        A = opt._curv[f"{PREFIX}A/{name}"]
        G = opt._curv[f"{PREFIX}G/{name}"]
        dA, dG = A.shape[0], G.shape[0]
        tA, tG = np.trace(A), np.trace(G)
        pi = {
            "paper": np.sqrt((tA / dA) / (tG / dG)),
            "authors_code": np.sqrt(tA * dA / (tG * dG)),
            "none": 1.0,
        }[style]
        Ad = A + pi * np.sqrt(lam) * np.eye(dA)
        Gd = G + np.sqrt(lam) / pi * np.eye(dG)
        # (G_d ⊗ A_d)⁻¹ vec(∇) in row-major vec: solve with the explicit Kronecker product
        F = np.kron(Gd, Ad)
        v = _grad_matrix(grads, name).reshape(-1)
        d = np.linalg.solve(F, v).reshape(dG, dA)
        step = np.hstack(
            [
                before[f"{name}.W"] - model.params()[f"{name}.W"],
                (before[f"{name}.b"] - model.params()[f"{name}.b"])[:, None],
            ]
        )
        np.testing.assert_allclose(step, lr * d, rtol=1e-9, atol=1e-13)


def test_paper_pi_balances_the_factor_traces():
    """With π of the paper, the damping added to A relative to tr(A)/dim(A) equals
    that added to G relative to tr(G)/dim(G); the authors' code differs."""
    from lowdisp.nn._curvature import damping_pi

    tA, dA, tG, dG = 7.0, 11, 0.3, 4
    pi = damping_pi("paper", tA, dA, tG, dG)
    assert np.isclose(pi / (tA / dA), (1 / pi) / (tG / dG))
    pc = damping_pi("authors_code", tA, dA, tG, dG)
    assert not np.isclose(pc, pi) and np.isclose(pc, pi * np.sqrt(dA * dA / (dG * dG)))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ekfac_batch_diagonal_is_the_mean_square_of_projected_per_example_gradients(reduction):
    model = _net()
    x, y = _data()
    pe = _per_example(model, lnn.SoftmaxCrossEntropy, x, y)
    lam, lr = 1e-3, 0.3
    opt = lnn.EKFAC(lr=lr, momentum=0.0, damping=lam)
    before, grads = _one_step(opt, model, x, y, lnn.SoftmaxCrossEntropy(reduction=reduction))
    for name in ("fc0", "fc1"):
        UA = opt._curv[f"{PREFIX}UA/{name}"]
        UG = opt._curv[f"{PREFIX}UG/{name}"]
        per = np.concatenate([pe[f"{name}.W"], pe[f"{name}.b"][:, :, None]], axis=2)
        proj = np.einsum("og,ioa,ab->igb", UG, per, UA)  # U_Gᵀ ∇_i U_A
        S = (proj**2).mean(axis=0)
        V = UG.T @ _grad_matrix(grads, name) @ UA
        d = UG @ (V / (S + lam)) @ UA.T
        step = np.hstack(
            [
                before[f"{name}.W"] - model.params()[f"{name}.W"],
                (before[f"{name}.b"] - model.params()[f"{name}.b"])[:, None],
            ]
        )
        np.testing.assert_allclose(step, lr * d, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize(("frac", "k"), [(0.25, 4), (0.3, 5)])
def test_stats_fraction_factors_come_from_the_first_examples(frac, k):
    """⌈f·B⌉ examples enter A and G; g_i keeps the whole batch's scale (g_i = B·dy_i)."""
    model = _net()
    x, y = _data()
    pe = _per_example(model, lnn.SoftmaxCrossEntropy, x, y)
    ins = _layer_inputs(model, x)
    opt = lnn.KFAC(lr=0.1, stats_fraction=frac)
    _one_step(opt, model, x, y)
    for name in ("fc0", "fc1"):
        g = pe[f"{name}.b"][:k]
        at = np.hstack([ins[name][:k], np.ones((k, 1))])
        np.testing.assert_allclose(opt._curv[f"{PREFIX}G/{name}"], g.T @ g / k, rtol=1e-12)
        np.testing.assert_allclose(opt._curv[f"{PREFIX}A/{name}"], at.T @ at / k, rtol=1e-12)


def test_stats_fraction_on_sequences_takes_the_first_sequences():
    """A dense layer over (T, B, d): the first ⌈f·B⌉ sequences, all their positions."""
    rng = np.random.default_rng(3)
    model = lnn.Sequential({"fc": lnn.Dense(5, 4, dtype=np.float64, rng=rng)})
    x, t = rng.normal(size=(3, 8, 5)), rng.normal(size=(3, 8, 4))
    loss = lnn.MSE()
    opt = lnn.KFAC(lr=0.1, stats_fraction=0.5)
    opt.attach(model, loss)
    z, cache = model.forward(x)
    _, dz = loss(z, t)
    _, grads = model.backward(cache, dz)
    opt.step(model.params(), grads)
    k, c = 4, 8.0  # examples used; g = B·dy for a mean over the batch of 8
    at = np.hstack([x[:, :k].reshape(-1, 5), np.ones((3 * k, 1))])
    dy = np.asarray(dz)[:, :k].reshape(-1, 4)
    np.testing.assert_allclose(opt._curv[f"{PREFIX}A/fc"], at.T @ at / (3 * k), rtol=1e-12)
    np.testing.assert_allclose(opt._curv[f"{PREFIX}G/fc"], c * c / k * dy.T @ dy, rtol=1e-12)


def test_ekfac_stats_fraction_diagonal_from_the_subset_step_from_the_whole_gradient():
    model = _net()
    x, y = _data()
    pe = _per_example(model, lnn.SoftmaxCrossEntropy, x, y)
    lam, lr, k = 1e-3, 0.3, 8
    opt = lnn.EKFAC(lr=lr, momentum=0.0, damping=lam, stats_fraction=0.5)
    before, grads = _one_step(opt, model, x, y)
    for name in ("fc0", "fc1"):
        UA = opt._curv[f"{PREFIX}UA/{name}"]
        UG = opt._curv[f"{PREFIX}UG/{name}"]
        per = np.concatenate([pe[f"{name}.W"], pe[f"{name}.b"][:, :, None]], axis=2)[:k]
        S = (np.einsum("og,ioa,ab->igb", UG, per, UA) ** 2).mean(axis=0)
        np.testing.assert_allclose(opt._curv[f"{PREFIX}S/{name}"], S, rtol=1e-10, atol=1e-14)
        V = UG.T @ _grad_matrix(grads, name) @ UA  # the whole batch's gradient
        d = UG @ (V / (S + lam)) @ UA.T
        step = np.hstack(
            [
                before[f"{name}.W"] - model.params()[f"{name}.W"],
                (before[f"{name}.b"] - model.params()[f"{name}.b"])[:, None],
            ]
        )
        np.testing.assert_allclose(step, lr * d, rtol=1e-9, atol=1e-13)


def test_ekfac_running_diagonal_starts_from_the_kfac_eigenvalues():
    model = _net()
    x, y = _data()
    opt = lnn.EKFAC(lr=0.1, diag="running", diag_decay=0.5)
    _, grads = _one_step(opt, model, x, y)
    sA = opt._curv[f"{PREFIX}sA/fc1"]
    sG = opt._curv[f"{PREFIX}sG/fc1"]
    UA = opt._curv[f"{PREFIX}UA/fc1"]
    UG = opt._curv[f"{PREFIX}UG/fc1"]
    V = UG.T @ _grad_matrix(grads, "fc1") @ UA
    expect = 0.5 * np.outer(sG, sA) + 0.5 * 16 * V**2
    np.testing.assert_allclose(opt._curv[f"{PREFIX}S/fc1"], expect, rtol=1e-12)


@pytest.mark.parametrize("kw", [{"diag": "running", "diag_decay": 0.5}, {"diag_every": 2}])
def test_ekfac_eigenbasis_gradient_from_the_rows_of_a_small_batch(kw, monkeypatch):
    """Few rows, wide layers: U_Gᵀ ∇W̃ U_A comes from the recorded rows, (dy U_G)ᵀ(ã U_A),
    not from rotating the gradient (cheaper there), and equals the rotated gradient."""
    import lowdisp.nn._kfac as kfac

    model = _net(sizes=(20, 16, 12))
    x, y = _data(n=4, d=20, C=12)
    lam, lr = 1e-2, 0.3
    opt = lnn.EKFAC(lr=lr, momentum=0.0, damping=lam, **kw)
    _one_step(opt, model, x, y)  # the first step estimates S from this batch
    S0 = {n: opt._curv[f"{PREFIX}S/{n}"].copy() for n in ("fc0", "fc1")}

    def no_rotation(*args):
        raise AssertionError("the gradient was rotated")

    monkeypatch.setattr(kfac, "_rotate_in", no_rotation)
    before, grads = _one_step(opt, model, x, y)  # S reused or a running average
    for name in ("fc0", "fc1"):
        UA = opt._curv[f"{PREFIX}UA/{name}"]
        UG = opt._curv[f"{PREFIX}UG/{name}"]
        V = UG.T @ _grad_matrix(grads, name) @ UA
        S = S0[name] if "diag_every" in kw else 0.5 * S0[name] + 0.5 * 4 * V**2
        np.testing.assert_allclose(opt._curv[f"{PREFIX}S/{name}"], S, rtol=1e-10, atol=1e-14)
        d = UG @ (V / (S + lam)) @ UA.T
        step = np.hstack(
            [
                before[f"{name}.W"] - model.params()[f"{name}.W"],
                (before[f"{name}.b"] - model.params()[f"{name}.b"])[:, None],
            ]
        )
        np.testing.assert_allclose(step, lr * d, rtol=1e-9, atol=1e-13)


def test_refresh_period_reuses_the_inverses_between_refreshes():
    model = _net()
    loss = lnn.SoftmaxCrossEntropy()
    opt = lnn.KFAC(lr=1e-2, refresh=3)
    opt.attach(model, loss)
    seen = []
    for k in range(7):
        x, y = _data(seed=k)
        z, cache = model.forward(x)
        _, dz = loss(z, y)
        _, grads = model.backward(cache, dz)
        opt.step(model.params(), grads)
        seen.append(opt._curv[f"{PREFIX}Ainv/fc0"].copy())
    changed = [not np.array_equal(seen[i], seen[i - 1]) for i in range(1, 7)]
    assert changed == [False, False, True, False, False, True]  # refreshed at steps 3 and 6


# -- Trainer, checkpoints, spec ----------------------------------------------------------


def _trainer(opt, *, checkpoint=None, rng=3, dtype=np.float32):
    task = lnn.digits(flat=True)
    model = lnn.build_mlp(task, hidden=(32,), dtype=dtype, rng=0)
    return lnn.Trainer(model, task.loss(), opt, task, batch_size=64, rng=rng, checkpoint=checkpoint)


@pytest.mark.parametrize(
    "make",
    [
        lambda: lnn.KFAC(lr=0.05, refresh=7, factor_every=2, schedule=lnn.cosine_schedule(40)),
        lambda: lnn.EKFAC(lr=0.05, refresh=7),
        lambda: lnn.EKFAC(optimizer=lnn.Adam(1e-3), refresh=5, diag="running"),
    ],
)
def test_checkpoint_resumes_bit_for_bit(make, tmp_path):
    a = _trainer(make())
    a.fit(30, progress=False)
    b = _trainer(make(), checkpoint=tmp_path / "ck.npz")
    b.fit(12, progress=False)
    del b
    c = lnn.load(tmp_path / "ck.npz")  # rebuilt from the file alone
    assert type(c.optimizer) is type(a.optimizer) and c.step_count == 12
    c.fit(18, progress=False)
    for k, v in a.model.params().items():
        np.testing.assert_array_equal(v, c.model.params()[k])
    assert a.history.loss == c.history.loss
    sa, sc = a.optimizer.state_dict(), c.optimizer.state_dict()
    assert sorted(sa) == sorted(sc)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sc[k])


def test_trainer_trains_and_the_spec_round_trips():
    opt = lnn.EKFAC(lr=0.05, damping=1e-2, refresh=10, exclude=["readout.*"])
    tr = _trainer(opt)
    h = tr.fit(40, progress=False)
    assert np.mean(h.loss[-5:]) < np.mean(h.loss[:5])
    cfg = tr.spec["optimizer"]
    assert cfg["class"] == "EKFAC" and cfg["exclude"] == ["readout.*"] and cfg["refresh"] == 10
    from lowdisp.nn._spec import _build_optimizer

    again = _build_optimizer(cfg, "optimizer")
    assert again.get_config() == opt.get_config()
    wrapped = lnn.KFAC(optimizer=lnn.Adam(1e-3, betas=(0.8, 0.9)))
    again = _build_optimizer(wrapped.get_config(), "optimizer")
    assert isinstance(again.inner, lnn.Adam) and again.inner.betas == (0.8, 0.9)


def test_excluded_and_unsupported_parameters_get_the_plain_step():
    """Unsupported layers are reported once; excluded ones silently take the plain step."""
    rng = np.random.default_rng(0)
    model = lnn.Sequential(
        {
            "fc0": lnn.Dense(5, 4, dtype=np.float64, rng=rng),
            "mod": lnn.ModReLU(4, dtype=np.float64, rng=rng),
            "fc1": lnn.Dense(4, 3, dtype=np.float64, rng=rng),
        }
    )
    opt = lnn.KFAC(lr=0.1, momentum=0.0, exclude=["fc1.*"])
    with pytest.warns(lnn.CurvatureWarning, match=r"'mod\.b'.*without preconditioning"):
        opt.attach(model, lnn.SoftmaxCrossEntropy())
    x, y = _data()
    loss = lnn.SoftmaxCrossEntropy()
    z, cache = model.forward(x)
    _, dz = loss(z, y)
    _, grads = model.backward(cache, dz)
    before = {k: v.copy() for k, v in model.params().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once: no warning per step
        opt.step(model.params(), {k: v.copy() for k, v in grads.items()})
    for k in ("mod.b", "fc1.W", "fc1.b"):
        np.testing.assert_allclose(before[k] - model.params()[k], 0.1 * grads[k], rtol=1e-12)
    assert not np.allclose(before["fc0.W"] - model.params()["fc0.W"], 0.1 * grads["fc0.W"])


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [lnn.KFAC, lnn.EKFAC])
@pytest.mark.parametrize(
    "kw,err,match",
    [
        ({"damping": 0.0}, ValueError, "damping must be finite and > 0"),
        ({"damping": -1.0}, ValueError, "damping must be finite and > 0"),
        ({"damping": float("nan")}, ValueError, "damping"),
        ({"refresh": 0}, ValueError, r"refresh must be in \[1, inf\]"),
        ({"factor_every": 0}, ValueError, "factor_every"),
        ({"stats_fraction": 0.0}, ValueError, r"stats_fraction must be in \(0, 1\]"),
        ({"stats_fraction": 1.5}, ValueError, "stats_fraction"),
        ({"decay": 1.0}, ValueError, "decay"),
        ({"exclude": "fc0.*"}, TypeError, "exclude must be a list"),
        ({"optimizer": "sgd"}, TypeError, "optimizer must be None or a lowdisp.nn Optimizer"),
    ],
)
def test_bad_options(cls, kw, err, match):
    with pytest.raises(err, match=match):
        cls(**kw)


def test_bad_style_and_diag_options():
    with pytest.raises(ValueError, match=r"damping_style.*'paper'"):
        lnn.KFAC(damping_style="martens")
    with pytest.raises(ValueError, match=r"diag.*'batch'"):
        lnn.EKFAC(diag="intra")


def test_step_before_attach_is_an_error():
    with pytest.raises(LowdispError, match="not attached to a model"):
        lnn.KFAC().step({"w": np.ones(2)}, {"w": np.ones(2)})


@pytest.mark.parametrize("cls", [lnn.KFAC, lnn.EKFAC])
def test_nan_statistics_raise_and_leave_the_parameters_alone(cls):
    model = _net()
    x, y = _data()
    opt = cls(lr=0.1)
    loss = lnn.SoftmaxCrossEntropy()
    opt.attach(model, loss)
    z, cache = model.forward(x)
    _, dz = loss(z, y)
    dz[0, 0] = np.nan
    _, grads = model.backward(cache, dz)
    before = {k: v.copy() for k, v in model.params().items()}
    with pytest.raises(LowdispError, match=r"statistics of layer 'fc[01]' hold NaN"):
        opt.step(model.params(), grads)
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, before[k])


def test_layer_without_statistics_in_a_step_is_reported_once():
    model = _net()
    opt = lnn.EKFAC(lr=0.1)
    opt.attach(model, lnn.SoftmaxCrossEntropy())
    grads = {k: np.ones_like(v) for k, v in model.params().items()}
    with pytest.warns(lnn.CurvatureWarning, match="recorded no statistics"):
        opt.step(model.params(), grads)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(model.params(), grads)


def test_trainer_divergence_rolls_back_the_curvature_state():
    tr = _trainer(lnn.KFAC(lr=1e300, refresh=2), dtype=np.float64)
    with pytest.raises(lnn.TrainingDivergedError):
        tr.fit(50, progress=False)
    for k, v in tr.optimizer.state.items():
        assert np.isfinite(v).all(), k


# -- recurrent cells: KFAC-expand -----------------------------------------------------


def _rnn_model(T=6, hidden=5, seed=0):
    task = lnn.adding(T)
    return task, lnn.build_model(task, "tanh", hidden=hidden, dtype=np.float64, rng=seed)


def test_rnn_kfac_expand_factors_match_an_explicit_bptt():
    """A = mean over (t, n) of ã ãᵀ, ã = [x_t, h_{t-1}, 1]; G = (1/B) Σ_{n,t} g gᵀ with
    g = B·δ (mean loss): the deltas from a plain NumPy BPTT loop."""
    task, model = _rnn_model()
    x, y = task.batch(7, rng=1)
    loss = task.loss()
    Wo = model.params()["readout.W"].copy()
    W = model.params()["rnn.cell.W"].copy()
    opt = lnn.KFAC(lr=0.1)
    opt.attach(model, loss)
    out, cache = model.forward(x)
    _, dout = loss(out, y)
    _, grads = model.backward(cache, dout)
    opt.step(model.params(), grads)
    T, B, _ = x.shape
    H = cache[0][4]  # the cell's (T+1, B, N) states
    at = np.concatenate([x, H[:-1], np.ones((T, B, 1))], axis=2)
    A_ref = at.reshape(T * B, -1).T @ at.reshape(T * B, -1) / (T * B)
    carry = dout @ Wo  # ∂L/∂h_T from the readout
    D = np.empty((T, B, H.shape[2]))
    for t in range(T - 1, -1, -1):
        D[t] = (1 - H[t + 1] ** 2) * carry
        carry = D[t] @ W
    D2 = D.reshape(T * B, -1)
    G_ref = B * (D2.T @ D2)
    np.testing.assert_allclose(opt._curv[f"{PREFIX}A/rnn"], A_ref, rtol=1e-12)
    np.testing.assert_allclose(opt._curv[f"{PREFIX}G/rnn"], G_ref, rtol=1e-10)
    # the oracle's deltas give the cell's gradients: Σ_t δ_t ã_tᵀ = [∇U, ∇W, ∇b]
    np.testing.assert_allclose(
        np.hstack([grads["rnn.cell.U"], grads["rnn.cell.W"], grads["rnn.cell.b"][:, None]]),
        D2.T @ at.reshape(T * B, -1),
        rtol=1e-10,
        atol=1e-14,
    )


@pytest.mark.parametrize(
    "make", [lambda: lnn.KFAC(lr=0.05, damping=0.1), lambda: lnn.EKFAC(lr=0.02, damping=0.1)]
)
def test_rnn_trains_on_a_short_sequence_task(make):
    """The adding task (T = 10): the loss falls from the 0.4-0.5 of the first steps to
    below 0.2 (0.05 KFAC, 0.08 EKFAC here; SGD momentum at lr 0.05: 0.15)."""
    task, model = _rnn_model(T=10, hidden=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every parameter has a curvature rule: no report
        tr = lnn.Trainer(model, task.loss(), make(), task, batch_size=32, rng=0)
    h = tr.fit(150, progress=False)
    assert np.mean(h.loss[-20:]) < 0.2 < np.mean(h.loss[:10])
    assert {f"{PREFIX}A/rnn", f"{PREFIX}A/readout"} <= set(tr.optimizer._curv)


def test_orthogonal_cells_fall_back_to_the_wrapped_optimizer():
    task = lnn.adding(6)
    model = lnn.build_model(task, "scaled_cayley", hidden=6, dtype=np.float64, rng=0)
    with pytest.warns(lnn.CurvatureWarning, match=r"rnn\.cell\.W\.theta"):
        tr = lnn.Trainer(model, task.loss(), lnn.KFAC(lr=0.01), task, batch_size=8, rng=0)
    tr.fit(3, progress=False)


def test_structured_layer_in_a_model_is_reported_once_and_stepped_plainly():
    """A StructuredDense hidden layer has no Kronecker rule: one CurvatureWarning
    naming its parameters when the trainer is built, and none per step."""
    task = lnn.digits(flat=True)
    rng = np.random.default_rng(0)
    model = lnn.Sequential(
        {
            "sd": lnn.StructuredDense(64, 64, structure="toeplitz_like", rank=2, rng=rng),
            "act": lnn.ReLU(),
            "readout": lnn.Dense(64, 10, rng=rng),
        }
    )
    with pytest.warns(lnn.CurvatureWarning, match=r"'sd\.") as rec:
        tr = lnn.Trainer(model, task.loss(), lnn.KFAC(lr=0.05), task, batch_size=32, rng=0)
    assert len(rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = tr.fit(10, progress=False)
    assert np.isfinite(h.loss).all()


def test_damped_inverse_clips_negative_eigenvalues_when_cholesky_fails():
    """A factor with a (rounding-size) negative eigenvalue: Cholesky of the damped
    factor fails and eigh with the eigenvalue clipped to 0 takes over."""
    from lowdisp.nn._kfac import _damped_inverse

    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    M = (Q * np.array([2.0, -1.0, 0.5])) @ Q.T
    got = _damped_inverse(M, 0.25)
    want = (Q / (np.array([2.0, 0.0, 0.5]) + 0.25)) @ Q.T
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    P = (Q * np.array([2.0, 1.0, 0.5])) @ Q.T  # positive definite: the Cholesky route
    np.testing.assert_allclose(
        _damped_inverse(P, 0.25), np.linalg.inv(P + 0.25 * np.eye(3)), rtol=1e-12
    )


def test_monte_carlo_statistics_come_from_sampled_labels():
    """fisher='mc': G from one backward pass of labels drawn from softmax(z) (the
    trainer's rng), matching the per-example cotangents p - onehot(sample)."""
    model = _net()
    x, y = _data()
    loss = lnn.SoftmaxCrossEntropy()
    opt = lnn.KFAC(lr=0.1, fisher="mc")
    opt.attach(model, loss)
    z, cache = model.forward(x)
    _, dz = loss(z, y)
    opt.curvature_pass(model, cache, z, loss, np.random.default_rng(7))
    _, grads = model.backward(cache, dz)  # the real backward records nothing
    opt.step(model.params(), grads)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = np.random.default_rng(7).random((16, 1))
    lab = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), 2)
    g = p.copy()
    g[np.arange(16), lab] -= 1
    np.testing.assert_allclose(opt._curv[f"{PREFIX}G/fc1"], g.T @ g / 16, rtol=1e-12)


@pytest.mark.parametrize("cls", [lnn.KFAC, lnn.EKFAC])
def test_monte_carlo_fisher_trains_and_resumes_bit_for_bit(cls, tmp_path):
    make = lambda: cls(lr=0.05, damping=1e-2, refresh=5, fisher="mc")  # noqa: E731
    a = _trainer(make())
    a.fit(16, progress=False)
    assert a.spec["optimizer"]["fisher"] == "mc"
    b = _trainer(make(), checkpoint=tmp_path / "ck.npz")
    b.fit(7, progress=False)
    c = lnn.load(tmp_path / "ck.npz")
    c.fit(9, progress=False)
    for k, v in a.model.params().items():
        np.testing.assert_array_equal(v, c.model.params()[k])
    assert a.history.loss == c.history.loss and a.history.loss[-1] < a.history.loss[0]


def test_monte_carlo_rnn_statistics_are_not_mixed_with_the_true_backward():
    task, model = _rnn_model()
    tr = lnn.Trainer(
        model, task.loss(), lnn.KFAC(lr=0.01, damping=0.1, fisher="mc"), task, batch_size=8, rng=0
    )
    tr.fit(3, progress=False)
    assert np.isfinite(tr.optimizer._curv[f"{PREFIX}G/rnn"]).all()


@pytest.mark.parametrize("name", ["kfac", "ekfac"])
def test_make_trainer_names_kfac_and_ekfac_and_resumes_bit_exactly(name, tmp_path):
    task = lnn.copy_memory(5)
    tr = lnn.make_trainer(
        task, "tanh", hidden=8, optimizer=name, lr=1e-2, clip_norm=1.0, rng=0, dtype=np.float64
    )
    assert type(tr.optimizer).__name__ == name.upper()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lnn.CurvatureWarning)  # token input: rnn unpreconditioned
        tr.fit(4, progress=False)
        path = tmp_path / "ck.npz"
        tr.save(path)
        again = lnn.load(path)
        tr.fit(8, progress=False)
        again.fit(8, progress=False)
    assert again.optimizer.get_config() == tr.optimizer.get_config()
    for k, v in tr._params.items():
        np.testing.assert_array_equal(again._params[k], v)
