"""KFAC/EKFAC optimizers with ``approx="reduce"`` (issue 13, point 1): the factors after one
step equal :func:`lowdisp.nn.fisher_matrix`'s (``A`` equal, ``G`` ``1/T²`` of it: the
trainer's mean loss over positions against the Fisher's per-sequence sum), T = 1 gives
expand = reduce, the option is validated and recorded in the spec. All float64."""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import CheckpointError
from lowdisp.nn._kfac import PREFIX

F64 = np.float64


def _rnn(d=3, N=4, C=3, seed=0):
    cell = lnn.TanhRNNCell(d, N, dtype=F64, rng=seed)
    return lnn.Sequential(
        {
            "rnn": lnn.RNN(cell, return_sequences=True),
            "readout": lnn.Dense(N, C, dtype=F64, rng=seed + 1),
        }
    )


def _data(T, B=5, d=3, C=3, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, d)), rng.integers(0, C, (T, B))


def _one_step(cls, approx, T, **kw):
    """The optimizer's factors after one hand-made step (first step: no averaging)."""
    model, loss = _rnn(), lnn.SoftmaxCrossEntropy()
    x, y = _data(T)
    opt = cls(lr=0.01, damping=0.1, approx=approx, **kw)
    opt.attach(model, loss)
    z, cache = model.forward(x, train=True)
    _, dz = loss(z, y)
    _, grads = model.backward(cache, dz)
    opt.step(model.params(), grads)
    c = opt._curv
    return {n: (c[f"{PREFIX}A/{n}"], c[f"{PREFIX}G/{n}"]) for n in ("rnn", "readout")}


@pytest.mark.parametrize("cls", [lnn.KFAC, lnn.EKFAC])
@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_factors_equal_fisher_matrix_with_g_over_t_squared(cls, approx):
    T = 4
    x, y = _data(T)
    K = lnn.fisher_matrix(
        _rnn(), lnn.SoftmaxCrossEntropy(), (x, y), kind="kfac", fisher="empirical", approx=approx
    )
    got = _one_step(cls, approx, T)
    for name in ("rnn", "readout"):
        A, G = got[name]
        A0, G0 = K.factors[name]
        np.testing.assert_allclose(A, A0, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(G * T**2, G0, rtol=1e-12, atol=1e-15)


def test_reduce_differs_from_expand_for_t_above_one():
    e, r = _one_step(lnn.KFAC, "expand", 4), _one_step(lnn.KFAC, "reduce", 4)
    for name in ("rnn", "readout"):
        for a, b in zip(e[name], r[name], strict=True):
            assert np.linalg.norm(a - b) > 1e-3 * np.linalg.norm(a)


def test_t_equal_1_reduce_is_expand():
    e, r = _one_step(lnn.KFAC, "expand", 1), _one_step(lnn.KFAC, "reduce", 1)
    for name in ("rnn", "readout"):
        for a, b in zip(e[name], r[name], strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("cls", [lnn.KFAC, lnn.EKFAC])
def test_bad_approx_is_named(cls):
    with pytest.raises(ValueError, match="approx") as e:
        cls(approx="mean")
    assert "expand" in str(e.value) and "reduce" in str(e.value) and "mean" in str(e.value)


def test_approx_in_the_spec_and_a_resume_refuses_another(tmp_path):
    from lowdisp.nn._spec import _build_optimizer

    assert "approx" not in lnn.KFAC().get_config()  # default: older specs still match
    cfg = lnn.EKFAC(approx="reduce").get_config()
    assert cfg["approx"] == "reduce" and _build_optimizer(cfg, "optimizer").approx == "reduce"
    task = lnn.copy_memory(3, n_copy=3, n_symbols=3)

    def trainer(approx):
        model = lnn.build_model(task, "tanh", hidden=4, dtype=F64, rng=0)
        opt = lnn.KFAC(lr=0.01, damping=0.1, approx=approx)
        return lnn.Trainer(model, task.loss(), opt, task, batch_size=5, rng=0)

    tr = trainer("reduce")
    tr.fit(1, progress=False)
    path = tmp_path / "ck.npz"
    tr.save(path)
    with pytest.raises(CheckpointError, match="approx"):
        lnn.load(path, trainer=trainer("expand"))
    lnn.load(path, trainer=trainer("reduce"))


def test_dense_on_sequences_with_a_statistics_subset():
    """A Dense layer on ``(T, B, d)``, ``stats_fraction=1/2``: the factors of the first
    ``B/2`` sequences (``c`` from the whole batch)."""
    T, B = 3, 6
    x, y = _data(T, B=B)
    loss = lnn.SoftmaxCrossEntropy()
    K = lnn.fisher_matrix(
        lnn.Sequential([lnn.Dense(3, 3, dtype=F64, rng=0)]),
        loss,
        (x[:, : B // 2], y[:, : B // 2]),
        kind="kfac",
        fisher="empirical",
        approx="reduce",
    )
    model = lnn.Sequential([lnn.Dense(3, 3, dtype=F64, rng=0)])
    opt = lnn.KFAC(lr=0.01, damping=0.1, approx="reduce", stats_fraction=0.5)
    opt.attach(model, loss)
    z, cache = model.forward(x, train=True)
    opt.step(model.params(), model.backward(cache, loss(z, y)[1])[1])
    A0, G0 = K.factors["0"]
    np.testing.assert_allclose(opt._curv[f"{PREFIX}A/0"], A0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(opt._curv[f"{PREFIX}G/0"] * T**2, G0, rtol=1e-12, atol=1e-15)
