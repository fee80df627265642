"""Fisher objects (KFACFisher, EKFACFisher, DiagonalFisher, DenseFisher): the checkable
properties of issue 13 against independent oracles (finite-difference GGN, explicit
per-example gradients, the exact block Fisher), and bad input."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowdisp.nn as lnn

# -- helpers -------------------------------------------------------------------------


def _net(sizes, act="tanh", seed=0, bias=True):
    rng = np.random.default_rng(seed)
    layers = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers[f"fc{i}"] = lnn.Dense(a, b, bias=bias, dtype=np.float64, rng=rng)
        if i < len(sizes) - 2:
            layers[f"act{i}"] = lnn.Activation(act, dtype=np.float64)
    return lnn.Sequential(layers)


def _cls_data(n, d, C, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, C, n)


def _flat_params(model, F):
    """The model's parameters in the objects' layout (rows of [W, b] per layer)."""
    p = model.params()
    parts = []
    for _, w, b, _, _ in F._layout:
        W = p[w]
        parts.append(np.hstack([W, p[b][:, None]]) if b is not None else W)
    return np.concatenate([m.reshape(-1) for m in parts])


def _set_flat(model, F, theta):
    p = model.params()
    i = 0
    for _, w, b, o, a in F._layout:
        M = theta[i : i + o * a].reshape(o, a)
        p[w][...] = M[:, : a - (b is not None)]
        if b is not None:
            p[b][...] = M[:, a - 1]
        i += o * a


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# -- properties -------------------------------------------------------------------------


def test_kfac_of_one_linear_layer_mse_one_example_is_the_exact_ggn():
    """KFAC = the Gauss-Newton matrix Jᵀ ∇²ℓ J, with J by central differences."""
    model = _net((4, 3))
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(1, 4)), rng.normal(size=(1, 3))
    loss = lnn.MSE()
    K = lnn.fisher_matrix(model, loss, (x, t), kind="kfac", fisher="exact")
    theta = _flat_params(model, K)
    h = 1e-6
    J = np.empty((3, theta.size))
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        _set_flat(model, K, theta + e)
        zp = model.forward(x)[0][0]
        _set_flat(model, K, theta - e)
        zm = model.forward(x)[0][0]
        J[:, k] = (zp - zm) / (2 * h)
    _set_flat(model, K, theta)
    ggn = J.T @ (2 * np.eye(3)) @ J  # ℓ = Σ_j (z_j - t_j)², ∇²ℓ = 2I
    np.testing.assert_allclose(K.to_dense(), ggn, rtol=1e-8, atol=1e-8)
    D = lnn.fisher_matrix(model, loss, (x, t), kind="dense", fisher="exact")
    np.testing.assert_allclose(D.to_dense(), ggn, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("fisher", ["empirical", "exact"])
def test_ekfac_diagonal_is_the_diagonal_of_the_block_fisher_in_the_kfe(fisher):
    model = _net((6, 5, 4))
    data = _cls_data(40, 6, 4)
    loss = lnn.SoftmaxCrossEntropy()
    E = lnn.fisher_matrix(model, loss, data, kind="ekfac", fisher=fisher)
    F = lnn.fisher_matrix(model, loss, data, kind="block", fisher=fisher).to_dense()
    i = 0
    for name, *_ in E._layout:
        UA, UG = E.bases[name]
        Q = np.kron(UG, UA)
        s = Q.shape[0]
        Fb = F[i : i + s, i : i + s]
        np.testing.assert_allclose(
            E.diagonals[name].reshape(-1), np.diag(Q.T @ Fb @ Q), rtol=1e-10, atol=1e-14
        )
        i += s


@given(
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    act=st.sampled_from(["tanh", "relu", "sigmoid"]),
    fisher=st.sampled_from(["empirical", "exact", "mc"]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_ekfac_frobenius_error_never_exceeds_kfac(sizes, act, fisher, bias, seed):
    sizes = [*sizes, 3]
    model = _net(tuple(sizes), act=act, seed=seed, bias=bias)
    data = _cls_data(12, sizes[0], 3, seed=seed + 1)
    loss = lnn.SoftmaxCrossEntropy()
    kw = {"fisher": fisher, "rng": seed}
    K = lnn.fisher_matrix(model, loss, data, kind="kfac", **kw).to_dense()
    E = lnn.fisher_matrix(model, loss, data, kind="ekfac", **kw).to_dense()
    F = lnn.fisher_matrix(model, loss, data, kind="block", **kw).to_dense()
    eK, eE = np.linalg.norm(K - F), np.linalg.norm(E - F)
    assert eE <= eK + 1e-12 * max(1.0, np.linalg.norm(F))


@pytest.mark.parametrize("kind", ["kfac", "ekfac", "diag", "dense", "block"])
@pytest.mark.parametrize("damping", [1e-3, 1.0])
def test_solve_inverts_mv(kind, damping):
    model = _net((5, 4, 3))
    data = _cls_data(30, 5, 3)
    F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind=kind)
    rng = np.random.default_rng(5)
    v = rng.normal(size=F.size)
    np.testing.assert_allclose(F.solve(F.mv(v, damping), damping), v, rtol=1e-10, atol=1e-10)
    vd = {p: rng.normal(size=a.shape) for p, a in model.params().items()}
    back = F.solve(F.mv(vd, damping), damping)
    for p in vd:
        np.testing.assert_allclose(back[p], vd[p], rtol=1e-10, atol=1e-10)
    dense = F.to_dense() + damping * np.eye(F.size) if kind in ("diag", "dense", "block") else None
    if dense is not None:
        np.testing.assert_allclose(F.mv(v, damping), dense @ v, rtol=1e-12)


@pytest.mark.parametrize("kind", ["kfac", "ekfac", "diag", "dense"])
def test_diag_trace_frobenius_agree_with_to_dense(kind):
    model = _net((5, 4, 3))
    data = _cls_data(30, 5, 3)
    F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind=kind, fisher="exact")
    M = F.to_dense()
    np.testing.assert_allclose(F.diag(), np.diag(M), rtol=1e-12, atol=1e-15)
    assert np.isclose(F.trace(), np.trace(M), rtol=1e-12)
    assert np.isclose(F.frobenius_norm(), np.linalg.norm(M), rtol=1e-12)
    v = np.random.default_rng(0).normal(size=F.size)
    np.testing.assert_allclose(F.mv(v), M @ v, rtol=1e-10, atol=1e-13)


def test_dense_empirical_fisher_is_the_mean_outer_product_of_per_example_gradients():
    model = _net((4, 3, 2))
    x, y = _cls_data(10, 4, 2)
    F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), (x, y), kind="dense")
    rows = []
    for i in range(10):
        z, cache = model.forward(x[i : i + 1])
        _, dz = lnn.SoftmaxCrossEntropy(reduction="sum")(z, y[i : i + 1])
        _, g = model.backward(cache, dz)
        rows.append(g)
    J = np.stack(
        [
            np.concatenate(
                [np.hstack([g[w], g[b][:, None]]).reshape(-1) for _, w, b, _, _ in F._layout]
            )
            for g in rows
        ]
    )
    np.testing.assert_allclose(F.matrix, J.T @ J / 10, rtol=1e-12, atol=1e-15)


def test_batches_average_over_all_examples():
    model = _net((4, 3))
    x, y = _cls_data(20, 4, 3)
    loss = lnn.SoftmaxCrossEntropy()
    one = lnn.fisher_matrix(model, loss, (x, y), kind="kfac").to_dense()
    two = lnn.fisher_matrix(model, loss, [(x[:7], y[:7]), (x[7:], y[7:])], kind="kfac")
    np.testing.assert_allclose(two.to_dense(), one, rtol=1e-12)


def test_monte_carlo_fisher_converges_to_the_exact_one():
    model = _net((4, 3, 3))
    data = _cls_data(40, 4, 3)
    loss = lnn.SoftmaxCrossEntropy()
    exact = lnn.fisher_matrix(model, loss, data, kind="block", fisher="exact").to_dense()
    errs = [
        np.mean(
            [
                _rel(
                    lnn.fisher_matrix(
                        model, loss, data, kind="block", fisher="mc", trials=t, rng=s
                    ).to_dense(),
                    exact,
                )
                for s in range(3)
            ]
        )
        for t in (4, 64, 1024)
    ]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.1 * errs[0], errs  # ~ 1/sqrt(trials)


@pytest.mark.parametrize("loss", [lnn.SigmoidBinaryCrossEntropy(), lnn.MSE()])
def test_monte_carlo_converges_for_bce_and_mse(loss):
    model = _net((4, 3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    y = (rng.random((30, 3)) < 0.5).astype(float)
    exact = lnn.fisher_matrix(model, loss, (x, y), kind="kfac", fisher="exact").to_dense()
    mc = lnn.fisher_matrix(model, loss, (x, y), kind="kfac", fisher="mc", trials=4000, rng=1)
    assert _rel(mc.to_dense(), exact) < 0.05


def test_scaling_the_loss_scales_g_and_not_the_step_direction():
    """Cotangents × k: G × k², A unchanged, and the (undamped) KFAC direction
    G⁻¹ ∇ A⁻¹ keeps its direction (its length scales by 1/k)."""
    from lowdisp.nn._kfac import PREFIX

    x, _ = _cls_data(32, 5, 3)
    y = np.random.default_rng(3).normal(size=(32, 3))
    dirs, Gs = [], []
    for k in (1.0, 37.0):
        model = _net((5, 4, 3))
        loss = lnn.MSE()
        opt = lnn.KFAC(lr=1.0, momentum=0.0, damping=1e-24, damping_style="none")
        opt.attach(model, loss)
        z, cache = model.forward(x)
        _, dz = loss(z, y)
        _, grads = model.backward(cache, k * dz)
        before = {p: v.copy() for p, v in model.params().items()}
        opt.step(model.params(), grads)
        step = np.concatenate([(before[p] - v).reshape(-1) for p, v in model.params().items()])
        dirs.append(step)
        Gs.append(opt._curv[f"{PREFIX}G/fc1"].copy())
    np.testing.assert_allclose(Gs[1], 37.0**2 * Gs[0], rtol=1e-12)
    u0, u1 = dirs[0] / np.linalg.norm(dirs[0]), dirs[1] / np.linalg.norm(dirs[1])
    np.testing.assert_allclose(u1, u0, atol=1e-9)
    assert np.isclose(np.linalg.norm(dirs[1]) * 37.0, np.linalg.norm(dirs[0]), rtol=1e-9)


# -- EKFAC warning, bad input -------------------------------------------------------------


def test_ekfac_before_update_diag_warns_once():
    model = _net((4, 3))
    data = _cls_data(20, 4, 3)
    loss = lnn.SoftmaxCrossEntropy()
    K = lnn.fisher_matrix(model, loss, data, kind="kfac")
    E = lnn.EKFACFisher.from_kfac(K)
    v = np.ones(E.size)
    with pytest.warns(lnn.CurvatureWarning, match="not estimated"):
        E.mv(v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        E.solve(v, 1e-3)
    # before update_diag it equals KFAC
    np.testing.assert_allclose(E.to_dense(), K.to_dense(), rtol=1e-10, atol=1e-14)
    E.update_diag(model, loss, data)
    assert E.diag_estimated


def test_layers_without_a_rule_are_reported_once():
    rng = np.random.default_rng(0)
    model = lnn.Sequential(
        {
            "fc0": lnn.Dense(4, 4, dtype=np.float64, rng=rng),
            "mod": lnn.ModReLU(4, dtype=np.float64, rng=rng),
            "fc1": lnn.Dense(4, 3, dtype=np.float64, rng=rng),
        }
    )
    data = _cls_data(10, 4, 3)
    with pytest.warns(lnn.CurvatureWarning, match="'mod.b'.*left out"):
        F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data)
    assert F.paths == ["fc0.W", "fc0.b", "fc1.W", "fc1.b"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, exclude=["mod.*"])


@pytest.mark.parametrize(
    "kw,err,match",
    [
        ({"kind": "full"}, ValueError, "unknown kind 'full'"),
        ({"fisher": "true"}, ValueError, "unknown fisher 'true'"),
        ({"trials": 0}, ValueError, "trials"),
        ({"exclude": "fc0.*"}, TypeError, "exclude"),
        ({"damping_style": "x"}, ValueError, "damping_style"),
    ],
)
def test_fisher_matrix_bad_options(kw, err, match):
    with pytest.raises(err, match=match):
        lnn.fisher_matrix(_net((4, 3)), lnn.SoftmaxCrossEntropy(), _cls_data(5, 4, 3), **kw)


def test_fisher_matrix_bad_arguments():
    model = _net((4, 3))
    data = _cls_data(5, 4, 3)
    with pytest.raises(TypeError, match="loss must be SoftmaxCrossEntropy"):
        lnn.fisher_matrix(model, object(), data)
    with pytest.raises(TypeError, match=r"model must be a lowdisp\.nn Layer"):
        lnn.fisher_matrix("net", lnn.SoftmaxCrossEntropy(), data)
    with pytest.raises(ValueError, match="holds no batch"):
        lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), [])
    with pytest.raises(ValueError, match="no Dense layer"):
        lnn.fisher_matrix(lnn.Sequential([lnn.Tanh()]), lnn.SoftmaxCrossEntropy(), data)
    F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data)
    with pytest.raises(ValueError, match=r"damping must be finite and > 0"):
        F.solve(np.ones(F.size), 0.0)
    with pytest.raises(ValueError, match=r"flat vector of 15 entries; got shape \(3,\)"):
        F.mv(np.ones(3))
    with pytest.raises(ValueError, match=r"v has no entry 'fc0\.W'"):
        F.mv({"x": np.ones(3)})
