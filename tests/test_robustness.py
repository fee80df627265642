"""Robustness measures: BPTT input gradient, FGSM vs random, hidden growth, spectra."""

from __future__ import annotations

import numpy as np
import pytest

from lowdisp import nn as lnn


def _model(n_in=2, hidden=8, n_out=2, seed=0):
    return lnn.Sequential(
        [
            lnn.RNN(
                lnn.TanhRNNCell(n_in, hidden, dtype=np.float64, rng=seed), return_sequences=False
            ),
            lnn.Dense(hidden, n_out, dtype=np.float64, rng=seed + 1),
        ]
    )


def _sign_task(n=400, T=6, seed=0):
    """Class 1 when the sum of the first feature over time is positive."""
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(n, T, 2))
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    return lnn.array_task(x[:300], y[:300], x[300:], y[300:])


@pytest.fixture(scope="module")
def trained():
    task = _sign_task()
    model = _model()
    tr = lnn.Trainer(model, task.loss(), lnn.Adam(lr=2e-2), task, batch_size=32, rng=0)
    tr.fit(steps=300, progress=False)
    x, y = task.eval_data()
    assert tr.evaluate()["accuracy"] > 0.9
    return model, task.loss(), x, y


def test_input_gradient_matches_finite_differences():
    gen = np.random.default_rng(1)
    model = _model()
    loss = lnn.SoftmaxCrossEntropy()
    x = gen.normal(size=(7, 3, 2))
    y = np.array([0, 1, 1])
    _, dx = lnn.input_gradient(model, loss, x, y)
    assert dx.shape == x.shape
    h = 1e-6
    for _ in range(4):
        v = gen.normal(size=x.shape)
        fp, _ = loss.forward(model.forward(x + h * v, train=False)[0], y)
        fm, _ = loss.forward(model.forward(x - h * v, train=False)[0], y)
        fd = (fp - fm) / (2 * h)
        assert abs(fd - (dx * v).sum()) <= 1e-7 * max(1.0, abs(fd))


def test_fgsm_hurts_at_least_as_much_as_random(trained):
    model, loss, x, y = trained
    eps = [0.02, 0.05, 0.1, 0.2]
    rnd = lnn.perturbed_metrics(model, loss, x, y, eps, kind="random", rng=0)
    adv = lnn.perturbed_metrics(model, loss, x, y, eps, kind="fgsm", rng=0)
    clean, _ = loss.forward(model.forward(x, train=False)[0], y)
    assert (adv["loss"] >= rnd["loss"]).all()
    assert (adv["loss"] > clean).all()
    assert (adv["accuracy"] <= rnd["accuracy"] + 1e-12).all()
    # FGSM is the first-order worst case: its loss increase is well above the random one
    assert adv["loss"][0] - clean > 2 * abs(rnd["loss"][0] - clean)


def test_perturbations_have_the_same_norms():
    from lowdisp.nn._robustness import _direction

    gen = np.random.default_rng(0)
    dx = gen.normal(size=(5, 4, 3))
    dx[0, 0, 0] = 0.0  # a zero gradient entry still gets a sign
    a = _direction("fgsm", dx, gen)
    r = _direction("random", dx, gen)
    assert np.abs(a).min() == np.abs(r).min() == 1.0
    assert np.linalg.norm(a) == np.linalg.norm(r)


def test_hidden_growth_matches_numpy_reference():
    gen = np.random.default_rng(3)
    cell = lnn.TanhRNNCell(2, 5, dtype=np.float64, rng=0)
    x = gen.normal(size=(9, 4, 2))
    g = lnn.hidden_growth(cell, x, eps=1e-4, rng=7)
    p = cell.params()
    W, U, b = cell.recurrent_matrix(), p["U"], p["b"]
    delta = np.random.default_rng(7).standard_normal((4, 5))
    delta *= 1e-4 / np.linalg.norm(delta, axis=1, keepdims=True)

    def run(h):
        out = []
        for t in range(9):
            h = np.tanh(h @ W.T + x[t] @ U.T + b)
            out.append(h)
        return np.array(out)

    ref = (np.linalg.norm(run(delta) - run(np.zeros((4, 5))), axis=2) / 1e-4).mean(axis=1)
    np.testing.assert_allclose(g, ref, rtol=1e-10)
    # the Sequential holding the cell gives the same
    model = lnn.Sequential([lnn.RNN(cell), lnn.Dense(5, 2, dtype=np.float64, rng=0)])
    np.testing.assert_array_equal(lnn.hidden_growth(model, x, eps=1e-4, rng=7), g)


def _smin(A, z):
    return np.linalg.svd(z * np.eye(A.shape[0]) - A, compute_uv=False)[-1]


def test_recurrent_summary_against_dense_numpy():
    gen = np.random.default_rng(5)
    A = gen.normal(size=(12, 12)) / np.sqrt(12) + np.triu(gen.normal(size=(12, 12)), 1) * 0.3
    s = lnn.recurrent_summary(A, eps=[0.05, 0.2])
    lam = np.linalg.eigvals(A)
    assert s["spectral_radius"] == pytest.approx(np.abs(lam).max(), rel=1e-12)
    assert s["spectral_norm"] == pytest.approx(np.linalg.svd(A, compute_uv=False)[0], rel=1e-12)
    fro2 = np.linalg.norm(A, "fro") ** 2
    henrici = np.sqrt(fro2 - (np.abs(lam) ** 2).sum())
    assert s["departure"] == pytest.approx(henrici, rel=1e-8)
    assert s["departure_relative"] == pytest.approx(henrici / np.sqrt(fro2), rel=1e-8)
    theta = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    for e in (0.05, 0.2):
        r = s["pseudo_radius"][e]
        # on the circle |z| = ρ_ε the smallest σ_min(zI − A) is ε (grid of 2000 angles)
        on = min(_smin(A, r * np.exp(1j * t)) for t in theta)
        assert on == pytest.approx(e, rel=2e-3)
        outside = min(_smin(A, 1.01 * r * np.exp(1j * t)) for t in theta[::4])
        assert outside > e
        a = s["pseudo_abscissa"][e]
        line = min(_smin(A, a + 1j * w) for w in np.linspace(-3, 3, 3001))
        assert line == pytest.approx(e, rel=2e-3)


def test_report_summary_and_plot(trained, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    model, loss, x, y = trained
    rep = lnn.robustness_report(model, loss, x, y, eps=[0.05, 0.1], pseudo_eps=[0.1], name="tanh")
    text = rep.summary()
    assert text.startswith("tanh: clean loss") and "fgsm loss" in text and "departure" in text
    assert rep.growth.shape == (x.shape[0],)
    assert rep.W.shape == (8, 8)
    fig = rep.plot()
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_bad_input():
    model = _model()
    loss = lnn.SoftmaxCrossEntropy()
    x = np.zeros((3, 2, 2))
    y = np.array([0, 1])
    with pytest.raises(ValueError, match="perturbed_metrics: unknown kind 'pgd'"):
        lnn.perturbed_metrics(model, loss, x, y, [0.1], kind="pgd")
    with pytest.raises(ValueError, match="perturbed_metrics: eps"):
        lnn.perturbed_metrics(model, loss, x, y, [-0.1])
    with pytest.raises(TypeError, match="input_gradient: x must hold real-valued inputs"):
        lnn.input_gradient(model, loss, np.zeros((3, 2), dtype=np.int64), y)
    with pytest.raises(TypeError, match=r"input_gradient: loss must be a lowdisp\.nn Loss"):
        lnn.input_gradient(model, "ce", x, y)
    with pytest.raises(TypeError, match="hidden_growth: model must be a recurrent cell"):
        lnn.hidden_growth(lnn.Dense(2, 2), x)
    with pytest.raises(ValueError, match="recurrent_summary: W must be a non-empty square"):
        lnn.recurrent_summary(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="recurrent_summary: eps must be > 0"):
        lnn.recurrent_summary(np.eye(2), eps=[0.0])
    with pytest.raises(ValueError, match="robustness_report: x must be a sequence batch"):
        lnn.robustness_report(model, loss, np.zeros((2, 2)), y)
