"""Tangent kernels and alignment (lowdisp.nn._alignment) against the explicit Jacobian route.

Oracle: the per-example Jacobian ``J`` of the model's outputs, built row by row
from the model's own backward pass on one example and one unit cotangent, and
checked against central differences (``check_vjp``) on the same model; then
``K_l = J_l J_lᵀ`` (centred: ``J`` minus its per-output mean over the examples).
The module's routes (the Hadamard identity for dense layers, the per-layer
Jacobian of structured layers) must match it to 1e-10 relative.
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowdisp.nn as lnn
from lowdisp.nn._alignment import (
    AlignmentLogger,
    alignment,
    alignment_schedule,
    plot_alignment,
    tangent_kernels,
)
from lowdisp.testing import check_vjp

F64 = np.float64


def small_mlp(rng_seed: int = 0, sizes=(5, 7, 6, 3)):
    gen = np.random.default_rng(rng_seed)
    layers = {}
    for i in range(len(sizes) - 1):
        layers[f"fc{i}"] = lnn.Dense(sizes[i], sizes[i + 1], dtype=F64, rng=gen)
        if i < len(sizes) - 2:
            layers[f"act{i}"] = lnn.Tanh(dtype=F64) if i % 2 == 0 else lnn.ReLU(dtype=F64)
    net = lnn.Sequential(layers)
    for p in net.params().values():  # non-zero biases: the ones column matters
        p += 0.1 * gen.normal(size=p.shape)
    return net


def small_ldr_mlp(rng_seed: int = 0):
    gen = np.random.default_rng(rng_seed)
    net = lnn.Sequential(
        {
            "tl": lnn.StructuredDense(6, 8, structure="toeplitz_like", rank=2, dtype=F64, rng=gen),
            "a0": lnn.Tanh(dtype=F64),
            "ff": lnn.Fastfood(8, dtype=F64, rng=gen),
            "a1": lnn.Tanh(dtype=F64),
            "dc": lnn.DiagonalCirculant(8, depth=2, relu_every=1, dtype=F64, rng=gen),
            "sd": lnn.StructuredDense(8, 8, structure="subdiagonal", dtype=F64, rng=gen),
            "a2": lnn.Tanh(dtype=F64),
            "out": lnn.Dense(8, 3, dtype=F64, rng=gen),
        }
    )
    for p in net.params().values():
        p += 0.1 * gen.normal(size=p.shape)
    return net


def explicit_jacobians(model, x):
    """``{layer: J (C n, P_l)}`` from the model's backward, one example and output at a time."""
    n = x.shape[0]
    C = model.forward(x[:1], train=False)[0].shape[1]
    names = sorted(model.params())
    layers = list(dict.fromkeys(p.rsplit(".", 1)[0] for p in model.params()))
    rows = {name: np.zeros((C * n, 0)) for name in layers}
    out = {name: [] for name in layers}
    for c in range(C):
        for i in range(n):
            _, cache = model.forward(x[i : i + 1], train=False)
            dy = np.zeros((1, C))
            dy[0, c] = 1.0
            _, grads = model.backward(cache, dy)
            for name in layers:
                ks = [k for k in names if k.rsplit(".", 1)[0] == name]
                out[name].append(np.concatenate([grads[k].ravel() for k in ks]))
    for name in layers:
        rows[name] = np.array(out[name])
    return rows


def fd_check_model(model, x, rng):
    """The model's backward (the source of the explicit Jacobians) against central
    differences in every parameter jointly."""
    params = model.params()
    point = {k: v.copy() for k, v in params.items()}

    def f(p):
        for k, v in p.items():
            params[k][...] = v
        return model.forward(x, train=False)[0]

    def vjp(p, dy):
        f(p)
        _, cache = model.forward(x, train=False)
        return model.backward(cache, dy)[1]

    err = check_vjp(f, vjp, point, rng=rng, rtol=1e-7)
    f(point)
    return err


def kernel_from_jacobian(J, C, n, centering):
    J = J.copy()
    if centering:
        Jr = J.reshape(C, n, -1)
        Jr -= Jr.mean(axis=1, keepdims=True)
    return J @ J.T


def rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("build", [small_mlp, small_ldr_mlp], ids=["mlp", "ldr_mlp"])
@pytest.mark.parametrize("centering", [True, False])
def test_kernels_equal_explicit_jacobian_route(build, centering, rng):
    model = build(1)
    x = rng.normal(size=(7, 5 if build is small_mlp else 6))
    assert fd_check_model(model, x, rng) < 1e-7
    Js = explicit_jacobians(model, x)
    tk = tangent_kernels(model, x, centering=centering)
    C, n = tk.n_outputs, tk.n_examples
    assert set(tk.layers) == set(Js)
    for name, J in Js.items():
        K = kernel_from_jacobian(J, C, n, centering)
        assert rel(tk.kernels[name], K) < 1e-10, name
        assert tk.traces[name] == pytest.approx(np.sum(J * J) / n, rel=1e-12)
    Jall = np.concatenate([Js[k] for k in tk.layers], axis=1)
    assert rel(tk.total, kernel_from_jacobian(Jall, C, n, centering)) < 1e-10
    expected = {"hadamard"} if build is small_mlp else {"hadamard", "jacobian"}
    assert set(tk.routes.values()) == expected


@settings(max_examples=6)
@given(
    seed=st.integers(0, 2**31 - 1),
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    n=st.integers(1, 5),
    centering=st.booleans(),
)
def test_hadamard_route_property(seed, sizes, n, centering):
    model = small_mlp(seed, tuple(sizes))
    x = np.random.default_rng(seed).normal(size=(n, sizes[0]))
    Js = explicit_jacobians(model, x)
    tk = tangent_kernels(model, x, centering=centering)
    for name, J in Js.items():
        K = kernel_from_jacobian(J, tk.n_outputs, n, centering)
        scale = max(np.abs(K).max(), 1e-300)
        assert np.abs(tk.kernels[name] - K).max() <= 1e-10 * scale


def test_alignment_formula_and_layers(rng):
    model = small_mlp(2)
    x = rng.normal(size=(9, 5))
    y = rng.integers(0, 3, 9)
    tk = tangent_kernels(model, x)
    Y = np.eye(3)[y]
    Y -= Y.mean(axis=0)
    v = Y.T.reshape(-1)
    for name, K in tk.kernels.items():
        want = v @ K @ v / (np.linalg.norm(K) * (v @ v))
        assert tk.alignment(y)[name] == pytest.approx(want, rel=1e-13)
        assert alignment(K, y) == pytest.approx(want, rel=1e-13)
        assert alignment(K.reshape(3, 9, 3, 9), y) == pytest.approx(want, rel=1e-13)
        assert 0.0 <= want <= 1.0 + 1e-12
    assert tk.alignment(y)["total"] == pytest.approx(alignment(tk.total, y), rel=1e-13)
    assert tk.tensor("fc0").shape == (3, 9, 3, 9)
    assert tk.trace == pytest.approx(sum(tk.traces.values()))


def test_alignment_ideal_kernel_and_degenerate():
    y = np.array([0, 2, 1, 1, 0])
    Y = np.eye(3)[y] - np.eye(3)[y].mean(axis=0)
    v = Y.T.reshape(-1)
    assert alignment(np.outer(v, v), y) == pytest.approx(1.0, abs=1e-14)
    assert np.isnan(alignment(np.zeros((15, 15)), y))
    assert np.isnan(alignment(np.eye(15), np.zeros(5, dtype=int)))


def test_float32_model_matches_float64(rng):
    m64 = small_mlp(3)
    m32 = lnn.Sequential(
        {
            k: (
                lnn.Dense(v.in_features, v.out_features, dtype=np.float32)
                if isinstance(v, lnn.Dense)
                else type(v)(dtype=np.float32)
            )
            for k, v in m64.layers.items()
        }
    )
    for k, p in m32.params().items():
        p[...] = m64.params()[k]
    x = rng.normal(size=(6, 5))
    k64 = tangent_kernels(m64, x).total
    k32 = tangent_kernels(m32, x).total
    assert k32.dtype == np.float64
    assert rel(k32, k64) < 1e-5


def test_schedule():
    assert alignment_schedule(0) == [0]
    assert alignment_schedule(20) == [0, 5, 6, 7, 8, 10, 11, 13, 15, 17, 20]
    s = alignment_schedule(10**5)
    assert s == sorted(set(s))
    assert s[-1] <= 10**5 and 1.15 * s[-1] > 10**5 - 10
    authors = alignment_schedule(10**4, style="authors_code")
    assert all(t % 5 == 0 for t in authors)
    with pytest.raises(ValueError, match="alignment_schedule: unknown style 'log'; valid"):
        alignment_schedule(5, style="log")
    with pytest.raises(ValueError, match="max_step must be in"):
        alignment_schedule(-1)


def test_bad_inputs():
    model = small_mlp(0)
    with pytest.raises(TypeError, match=r"tangent_kernels: model must be a lowdisp\.nn Layer"):
        tangent_kernels(np.eye(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="tangent_kernels: x"):
        tangent_kernels(model, np.ones(5))
    with pytest.raises(TypeError, match="centering must be True or False"):
        tangent_kernels(model, np.ones((2, 5)), centering=1)
    tk = tangent_kernels(model, np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"y must hold one label per example, shape \(2,\)"):
        tk.alignment([0, 1, 2])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        tk.alignment([0, 3])
    with pytest.raises(TypeError, match="integer class labels"):
        tk.alignment([0.5, 1.0])
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        tk.tensor("nope")
    with pytest.raises(ValueError, match=r"alignment: K must be square \(C n, C n\)"):
        alignment(np.eye(5), [0, 1])
    with pytest.raises(ValueError, match="alignment: a 4-D K must have shape"):
        alignment(np.zeros((2, 3, 3, 3)), [0, 1, 1])


def explicit_jacobians_seq(model, x):
    """Sequence models: the explicit route with examples along axis 1 of (T, B, d)."""
    n = x.shape[1]
    C = model.forward(x[:, :1], train=False)[0].shape[1]
    names = sorted(model.params())
    layers = list(dict.fromkeys(p.rsplit(".", 1)[0] for p in names))
    out = {name: [] for name in layers}
    for c in range(C):
        for i in range(n):
            _, cache = model.forward(x[:, i : i + 1], train=False)
            dy = np.zeros((1, C))
            dy[0, c] = 1.0
            _, grads = model.backward(cache, dy)
            for name in layers:
                ks = [k for k in names if k.rsplit(".", 1)[0] == name]
                out[name].append(np.concatenate([grads[k].ravel() for k in ks]))
    return {name: np.array(v) for name, v in out.items()}


@pytest.mark.parametrize("cell", ["tanh", "lstm"])
def test_recurrent_kernels_equal_explicit_jacobian_route(cell, rng):
    task = lnn.adding(6)
    model = lnn.build_model(task, cell, hidden=4, dtype=F64, rng=1)
    model = lnn.Sequential(
        {"rnn": model["rnn"], "readout": lnn.Dense(4, 3, dtype=F64, rng=2)}
    )  # 3 outputs
    x = rng.normal(size=(6, 5, 2))
    assert fd_check_model(model, x, rng) < 1e-7
    Js = explicit_jacobians_seq(model, x)
    tk = tangent_kernels(model, x)
    assert tk.routes == {"rnn": "jacobian", "readout": "hadamard"}
    for name, J in Js.items():  # parameter paths "rnn.cell.W": the layer is "rnn"
        K = kernel_from_jacobian(J, 3, 5, True)
        assert rel(tk.kernels[name.split(".")[0]], K) < 1e-10, name
    with pytest.raises(ValueError, match=r"the model's output must be \(batch, outputs\)"):
        tangent_kernels(
            lnn.build_model(lnn.copy_memory(3), "tanh", hidden=3, rng=0),
            np.zeros((9, 2, 10), dtype=np.float32),
        )


def _task(rng):
    x = rng.normal(size=(90, 5))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    return x, y, lnn.array_task(x[:70], y[:70], x[70:], y[70:], flat=True)


def test_logger_records_history_and_run_folder(tmp_path, rng):
    x, y, task = _task(rng)
    model = lnn.build_mlp(task, hidden=(8, 8), dtype=F64, rng=0)
    log = AlignmentLogger(x[:15], y[:15], x_test=x[70:85], y_test=y[70:85], directory=tmp_path)
    snaps = []

    class Keep(lnn.Callback):
        def on_fit_start(self, trainer):
            snaps.append((0, {k: v.copy() for k, v in trainer.model.params().items()}))

        def on_step_end(self, trainer, loss):
            snaps.append(
                (trainer.step_count, {k: v.copy() for k, v in trainer.model.params().items()})
            )

    tr = lnn.Trainer(
        model, task.loss(), lnn.SGD(0.2), task, batch_size=10, rng=0, callbacks=[Keep(), log]
    )
    tr.fit(13, progress=False)
    steps = [r["step"] for r in log.records]
    assert steps == [0, 5, 6, 7, 8, 10, 11, 13]
    recs = [r for r in tr.history.records if r.get("kind") == "alignment"]
    assert recs == log.records
    by_step = dict(snaps)
    for prev, cur in itertools.pairwise(log.records):
        a, b = by_step[prev["step"]], by_step[cur["step"]]
        want = np.sqrt(sum(np.sum((b[k] - a[k]) ** 2) for k in a))
        assert cur["step_norm"] == pytest.approx(want, rel=1e-12)
    assert log.records[0]["step_norm"] == 0.0
    comp = [r["complexity"] for r in log.records]
    assert all(b >= a for a, b in itertools.pairwise(comp))
    last = log.records[-1]
    # the logged values are those of tangent_kernels on the final parameters
    tk = tangent_kernels(model, x[:15])
    assert last["alignment"]["fc1"] == pytest.approx(tk.alignment(y[:15])["fc1"], rel=1e-12)
    assert last["trace"] == pytest.approx(tk.trace, rel=1e-12)
    assert set(last["alignment_test"]) == {"fc0", "fc1", "readout"}
    data = json.loads((tmp_path / "alignment.json").read_text())
    assert [r["step"] for r in data] == steps
    csv = (tmp_path / "alignment.csv").read_text().splitlines()
    assert csv[0].startswith("step,alignment_total,alignment.fc0")
    assert len(csv) == 1 + len(steps)
    # a second fit continues (no duplicate step-0 record) and the folder follows
    tr.fit(3, progress=False)
    assert [r["step"] for r in log.records][-2:] == [13, 15]
    assert os.path.exists(tmp_path / "alignment.csv")
    ax = plot_alignment(log)
    assert ax.get_xscale() == "symlog"
    assert len(ax.get_lines()) == 4
    plot_alignment(tr.history, test=True, total=False)


def test_logger_custom_steps_and_errors(rng):
    x, y, task = _task(rng)
    with pytest.raises(ValueError, match=r"AlignmentLogger: y must have one label per example"):
        AlignmentLogger(x[:4], y[:3])
    with pytest.raises(ValueError, match="give both x_test and y_test"):
        AlignmentLogger(x[:4], y[:4], x_test=x[:4])
    with pytest.raises(ValueError, match="unknown schedule"):
        AlignmentLogger(x[:4], y[:4], schedule="linear")
    with pytest.raises(ValueError, match=r"steps\[1\] must be in"):
        AlignmentLogger(x[:4], y[:4], steps=[1, -2])
    with pytest.raises(TypeError, match="directory must be None or a path"):
        AlignmentLogger(x[:4], y[:4], directory=3)
    with pytest.raises(ValueError, match="plot_alignment: no alignment records"):
        plot_alignment([])
    model = lnn.build_mlp(task, hidden=(4,), dtype=F64, rng=0)
    log = AlignmentLogger(x[:6], y[:6], steps=[2, 4])
    tr = lnn.Trainer(model, task.loss(), lnn.SGD(0.1), task, batch_size=10, rng=0, callbacks=[log])
    tr.fit(5, progress=False)
    assert [r["step"] for r in log.records] == [2, 4]
    with pytest.raises(ValueError, match="test=True needs records with a test sample"):
        plot_alignment(log, test=True)
