"""Regularizers of the Elman cells (issue 15): BPTT with every noise regularizer against
finite differences (float64, T = 1, 2, 7, the noise draw fixed by the seed), penalties'
gradients against the finite-difference gradient of their value, fast dropout's moments
against Monte-Carlo dropout (10^5 samples), the evaluation path noise-free, constraints
(max-norm, unit disk, spectral normalization), a trainer run resuming bit-exactly, and
bad input."""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.testing import check_vjp
from tests.test_sparse_recurrence import cell_fn

F64 = np.float64

NOISE = [
    {"input_noise": 0.3},
    {"weight_noise": 0.2},
    {"weight_noise": {"std": 0.2, "per": "step"}},
    {"dropout": 0.3},
    {"dropout": {"p": 0.3, "output": False}},
    {"variational_dropout": 0.3},
    {"variational_dropout": {"p": 0.3, "input": False, "output": 0.5}},
    {"fast_dropout": 0.3},
    {"fast_dropout": 0.3, "variational_dropout": 0.2, "weight_noise": {"std": 0.1, "per": "step"}},
]


def _ids(v):
    return "+".join(f"{k}" for k in v) + ("-" + "-".join(str(x) for x in v.values()))[:40]


@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("regs", NOISE, ids=_ids)
def test_noise_bptt_matches_finite_differences(regs, T, rng):
    """With the draw fixed (the same seed every call) the cell is a deterministic function."""
    cell = lnn.RNNCell(3, 4, dtype=F64, rng=7, regularizers=regs)
    f, vjp, point = cell_fn(cell, train=True, rng=123)
    point["x"] = rng.standard_normal((T, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


@pytest.mark.parametrize("recurrent", ["diagonal", "block:2", "scaled_cayley"])
@pytest.mark.parametrize(
    "regs",
    [
        {"weight_noise": {"std": 0.2, "per": "step"}, "variational_dropout": 0.3},
        {"fast_dropout": 0.2},
    ],
    ids=["wn-vd", "fd"],
)
def test_noise_on_sparse_and_orthogonal_cells(recurrent, regs, rng):
    cell = lnn.RNNCell(3, 4, recurrent=recurrent, dtype=F64, rng=7, regularizers=regs)
    f, vjp, point = cell_fn(cell, train=True, rng=5)
    point["x"] = rng.standard_normal((9, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


@pytest.mark.parametrize("act", ["relu", "modrelu"])
def test_noise_other_activations(act, rng):
    regs = {"weight_noise": {"std": 0.2, "per": "step"}, "dropout": 0.2, "fast_dropout": 0.2}
    cell = lnn.RNNCell(3, 4, activation=act, dtype=F64, rng=7, regularizers=regs)
    f, vjp, point = cell_fn(cell, train=True, rng=5)
    point["x"] = rng.standard_normal((7, 2, 3))
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


def test_tokens_with_weight_noise_variational_and_fast_dropout(rng):
    """Token input equals its one-hot float input under the same draw (fast dropout of a
    one-hot input: the variance c U[:, token]²)."""
    regs = {
        "weight_noise": {"std": 0.2, "per": "step"},
        "variational_dropout": {"p": 0.3, "input": False},
        "fast_dropout": 0.2,
    }
    cell = lnn.RNNCell(5, 4, dtype=F64, rng=7, regularizers=regs)
    tok = rng.integers(0, 5, (6, 2))
    H1, c1 = cell.forward_sequence(tok, rng=3)
    H1 = H1.copy()
    dH = rng.standard_normal(H1.shape)
    _, g1 = cell.backward_sequence(c1, dH)
    H2, c2 = cell.forward_sequence(np.eye(5)[tok], rng=3)
    _, g2 = cell.backward_sequence(c2, dH)
    np.testing.assert_allclose(H1, H2, atol=1e-13)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], atol=1e-12)


@pytest.mark.parametrize("regs", NOISE, ids=_ids)
def test_evaluation_path_is_noise_free(regs, rng):
    """train=False equals the cell without regularizers, whatever the rng."""
    cell = lnn.RNNCell(3, 4, dtype=F64, rng=7, regularizers=regs)
    plain = lnn.RNNCell(3, 4, dtype=F64, rng=7)
    x = rng.standard_normal((5, 2, 3))
    H = cell.forward_sequence(x, train=False, rng=1)[0].copy()
    np.testing.assert_array_equal(H, plain.forward_sequence(x)[0])
    assert not np.array_equal(H, cell.forward_sequence(x, train=True, rng=1)[0])
    # and through the RNN layer as the trainer calls it
    rnn = lnn.RNN(cell)
    np.testing.assert_array_equal(rnn.forward(x, train=False, rng=2)[0], H)


def test_fast_dropout_moments_match_monte_carlo_dropout():
    """Fast dropout's pre-activation U x + S ε has the mean and variance of U (x ⊙ m)
    under inverted dropout m ~ Bernoulli(1-p)/(1-p). With M = 10^5 samples the sample
    mean's standard error is σ/√M and the sample variance's is σ²√(2/M) (plus the
    kurtosis term, bounded by the 4th moment estimated from the same samples): each
    moment is checked at 5 standard errors."""
    p, M = 0.3, 100_000
    gen = np.random.default_rng(0)
    d, n = 6, 5
    x = gen.standard_normal((1, 1, d))
    cell = lnn.RNNCell(d, n, dtype=F64, rng=1, regularizers={"fast_dropout": p})
    cell._params["b"][...] = 0
    U = cell._params["U"]
    # the fast-dropout pre-activation of one step (W h_0 = 0): z = artanh(h)
    xs = np.broadcast_to(x, (1, M, d)).copy()
    H, _ = cell.forward_sequence(xs, train=True, rng=2)
    z_fast = np.arctanh(np.clip(H[0], -1 + 1e-15, 1 - 1e-15))
    mask = (gen.random((M, d)) >= p) / (1 - p)
    z_mc = (x[0] * mask) @ U.T
    mean_true = x[0, 0] @ U.T
    var_true = p / (1 - p) * (U**2) @ (x[0, 0] ** 2)
    for z in (z_fast, z_mc):
        m, v = z.mean(axis=0), z.var(axis=0)
        c = z - m
        se_mean = np.sqrt(v / M)
        se_var = np.sqrt(((c**4).mean(axis=0) - v**2) / M)
        assert np.all(np.abs(m - mean_true) <= 5 * se_mean), (m, mean_true)
        assert np.all(np.abs(v - var_true) <= 5 * se_var), (v, var_true)
    # and the two samples agree with each other (difference of two independent estimates)
    se = np.sqrt(z_fast.var(axis=0) / M + z_mc.var(axis=0) / M)
    assert np.all(np.abs(z_fast.mean(axis=0) - z_mc.mean(axis=0)) <= 5 * se)


@pytest.mark.parametrize(
    "regs", [{"l2": 0.3}, {"l1": 0.2}, {"l1": {"weight": 0.1, "params": ["W"]}, "l2": 0.05}]
)
def test_penalty_gradients_match_finite_differences(regs, rng):
    cell = lnn.RNNCell(3, 4, dtype=F64, rng=7, regularizers=regs)
    plain = lnn.RNNCell(3, 4, dtype=F64, rng=7)
    x = rng.standard_normal((4, 2, 3))
    dH = rng.standard_normal((4, 2, 4))
    _, g = cell.backward_sequence(cell.forward_sequence(x)[1], dH)
    _, g0 = plain.backward_sequence(plain.forward_sequence(x)[1], dH)
    params = cell._params
    eps = 1e-6
    for k in params:
        num = np.zeros_like(params[k])
        for i in np.ndindex(params[k].shape):
            old = params[k][i]
            params[k][i] = old + eps
            up = cell.penalty()
            params[k][i] = old - eps
            dn = cell.penalty()
            params[k][i] = old
            num[i] = (up - dn) / (2 * eps)
        np.testing.assert_allclose(g[k] - g0[k], num, rtol=1e-7, atol=1e-9)
    assert lnn.penalty(lnn.Sequential({"rnn": lnn.RNN(cell)})) == cell.penalty() > 0


def test_spectral_norm_matches_finite_differences_and_normalizes(rng):
    cell = lnn.RNNCell(3, 6, dtype=F64, rng=7, regularizers={"spectral_norm": {"n_iter": 50}})
    cell._params["W"][...] *= 5
    x = rng.standard_normal((4, 2, 3))
    cell.forward_sequence(x, train=True)  # 50 power iterations advance the persistent u
    W = cell._params["W"]
    _, cache = cell.forward_sequence(x, train=False)
    Weff = cache[1]
    np.testing.assert_allclose(np.linalg.norm(Weff, 2), 1.0, rtol=1e-8)
    np.testing.assert_allclose(W, cell._params["W"])  # a reparameterization: W itself untouched
    f, vjp, point = cell_fn(cell, train=False)
    point["x"] = x
    check_vjp(f, vjp, point, rng=rng, rtol=1e-6)


def _planted(n, eigs, gen):
    V = gen.standard_normal((n, n))
    D = np.zeros((n, n))
    i = 0
    for e in eigs:
        if np.iscomplexobj(e) and e.imag:
            D[i : i + 2, i : i + 2] = [[e.real, -e.imag], [e.imag, e.real]]
            i += 2
        else:
            D[i, i] = float(np.real(e))
            i += 1
    rest = gen.uniform(-0.5, 0.5, n - i)
    D[np.arange(i, n), np.arange(i, n)] = rest
    return V @ D @ np.linalg.inv(V)


@pytest.mark.parametrize("eigs", [[3.0], [2.0 * np.exp(0.7j)]], ids=["real", "complex-pair"])
def test_unit_disk_projection(eigs, rng):
    """Sengupta & Friston: W scaled so its spectral radius is <= 1 (power method +
    Rayleigh quotient on a 2-vector subspace, so a complex dominant pair is caught)."""
    n = 8
    cell = lnn.RNNCell(3, n, dtype=F64, rng=7, regularizers={"unit_disk": {"n_iter": 200}})
    cell._params["W"][...] = _planted(n, eigs, np.random.default_rng(1))
    before = cell._params["W"].copy()
    for train in (True, False):  # a projection after the update, never in a forward pass
        cell.forward_sequence(rng.standard_normal((2, 2, 3)), train=train)
        np.testing.assert_array_equal(before, cell._params["W"])
    lnn.apply_constraints(cell)
    rho = np.max(np.abs(np.linalg.eigvals(cell._params["W"])))
    np.testing.assert_allclose(rho, 1.0, rtol=1e-8)


def test_max_norm_clips_incoming_weights(rng):
    cell = lnn.RNNCell(3, 5, dtype=F64, rng=7, regularizers={"max_norm": 0.5})
    cell._params["W"][0] *= 10
    lnn.apply_constraints(lnn.Sequential({"rnn": lnn.RNN(cell)}))
    norms = np.sqrt((cell._params["W"] ** 2).sum(1) + (cell._params["U"] ** 2).sum(1))
    assert np.all(norms <= 0.5 * (1 + 1e-12))
    assert norms.max() == pytest.approx(0.5, rel=1e-12)  # the clipped row sits on the bound


def _row_norms(cell):
    p = cell._params
    return np.sqrt(np.einsum("ij,ij->i", p["W"], p["W"]) + np.einsum("ij,ij->i", p["U"], p["U"]))


def _rho(W):
    return float(np.max(np.abs(np.linalg.eigvals(W))))


class _Check(lnn.Callback):
    """After every step: the constraint holds on the parameters the trainer holds."""

    def __init__(self, cell, c):
        self.cell, self.c, self.steps = cell, c, 0
        self.tol = 8 * np.finfo(cell.dtype).eps  # rounding of the scaling in the cell's dtype

    def on_step_end(self, trainer, loss):
        self.steps += 1
        assert np.all(_row_norms(self.cell) <= self.c * (1 + self.tol))
        assert _rho(self.cell._params["W"].astype(np.float64)) <= 1 + self.tol


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_trainer_projects_after_every_step_and_evaluation_sees_it(dt):
    """max_norm and unit_disk hold after the trainer's construction and after every
    optimizer step (to rounding); evaluate() and the next step see the projected W."""
    task = lnn.adding(8)
    regs = {"unit_disk": {"n_iter": 200}, "max_norm": 0.9}
    model = lnn.build_model(task, "tanh", hidden=6, rng=0, dtype=dt, regularizers=regs)
    cell = model.layers["rnn"].cell
    cell._params["W"][...] *= 4  # rho(W) about 4: the projection has work at every step
    tr = lnn.Trainer(model, task.loss(), lnn.Adam(lr=0.05), task, batch_size=8, rng=1)
    check = _Check(cell, 0.9)
    check.on_step_end(tr, 0.0)  # the initial weights are projected at construction
    tr.callbacks.append(check)
    tr.fit(12, progress=False)
    assert check.steps == 1 + 12  # the check at construction, then one per step
    W = cell._params["W"].copy()
    ev = tr.evaluate()
    np.testing.assert_array_equal(W, cell._params["W"])  # evaluation changes nothing
    x, y = task.eval_data()
    out, _ = model.forward(x, train=False)
    assert ev["loss"] == pytest.approx(task.loss()(out, y)[0], rel=1e-6)
    # a row sits on the max-norm bound, or W on the unit circle: the projections acted
    assert _row_norms(cell).max() == pytest.approx(0.9, rel=1e-5) or _rho(W) == pytest.approx(
        1.0, rel=1e-5
    )


@pytest.mark.parametrize(
    "regs",
    [
        {"unit_disk": True, "max_norm": 1.5},
        {"spectral_norm": {"n_iter": 2}, "max_norm": 1.5},
        {"spectral_norm": True, "weight_noise": 0.05},
    ],
    ids=["unit_disk+max_norm", "spectral_norm+max_norm", "spectral_norm+noise"],
)
def test_constraints_and_power_iteration_resume_bit_exactly(regs, tmp_path):
    """The persistent vectors of spectral_norm / unit_disk are saved (``state/...``) and
    restored: 3 + 3 steps through a checkpoint equal 6 uninterrupted steps, bit for bit."""
    task = lnn.adding(6)

    def trainer():
        model = lnn.build_model(task, "tanh", hidden=8, rng=0, regularizers=regs)
        model.layers["rnn"].cell._params["W"][...] *= 3
        return lnn.Trainer(model, task.loss(), lnn.Adam(lr=1e-2), task, batch_size=4, rng=3)

    a = trainer()
    a.fit(6, progress=False)
    b = trainer()
    b.fit(3, progress=False)
    path = b.save(tmp_path / "ck.npz")
    ck = lnn.read_checkpoint(path)
    want = {"unit_disk.q" if "unit_disk" in regs else "spectral_norm.u"}
    assert {k.split("cell.")[1] for k in ck.states} == want
    for resumed in (lnn.load(path), lnn.load(path, trainer=trainer())):
        resumed.fit(3, progress=False)
        assert resumed.history.loss == a.history.loss
        for k, v in a.model.params().items():
            np.testing.assert_array_equal(v, resumed.model.params()[k])
        sa, sr = lnn.regularizer_states(a.model), lnn.regularizer_states(resumed.model)
        assert sa.keys() == sr.keys() and sa
        for k in sa:
            np.testing.assert_array_equal(sa[k], sr[k])


def test_checkpoint_refuses_a_mismatching_regularizer_state(tmp_path):
    import json
    import zlib

    from lowdisp.exceptions import CheckpointError
    from lowdisp.nn._checkpoint import _crc

    task = lnn.adding(6)

    def trainer():
        model = lnn.build_model(task, "tanh", hidden=8, rng=0, regularizers={"unit_disk": True})
        return lnn.Trainer(model, task.loss(), lnn.Adam(lr=1e-2), task, batch_size=4, rng=3)

    src = trainer()
    src.fit(2, progress=False)
    with np.load(src.save(tmp_path / "ck.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")[()]))
    arrays.pop("meta_crc32")

    def write(name, arrs):
        m = dict(meta, keys=sorted(arrs), crc32={k: _crc(v) for k, v in arrs.items()})
        text = json.dumps(m)
        out = dict(arrs, meta=np.array(text), meta_crc32=np.array(zlib.crc32(text.encode())))
        np.savez(tmp_path / name, **out)
        return tmp_path / name

    key = "state/rnn.cell.unit_disk.q"
    assert arrays[key].shape == (8, 2) and arrays[key].dtype == np.float64
    shape = dict(arrays, **{key: np.zeros((7, 2))})
    dtype = dict(arrays, **{key: arrays[key].astype(np.float32)})
    other = dict(arrays, **{"state/rnn.cell.spectral_norm.u": np.zeros(8)})
    tr = trainer()
    before = {k: v.copy() for k, v in tr.model.params().items()}
    q_before = lnn.regularizer_states(tr.model)[key[len("state/") :]].copy()
    for name, arrs, match in [
        (
            "shape.npz",
            shape,
            r"state.rnn.cell.unit_disk.q is float64\[7, 2\] in the checkpoint, "
            r"float64\[8, 2\] in the model",
        ),
        ("dtype.npz", dtype, r"is float32\[8, 2\] in the checkpoint"),
        ("other.npz", other, r"state.rnn.cell.spectral_norm.u belongs to no regularizer"),
    ]:
        for load in (lambda p: lnn.load(p, trainer=tr), lnn.load):
            with pytest.raises(CheckpointError, match=match):
                load(write(name, arrs))
        for k, v in tr.model.params().items():  # a refused load changes nothing
            np.testing.assert_array_equal(v, before[k])
        np.testing.assert_array_equal(
            lnn.regularizer_states(tr.model)["rnn.cell.unit_disk.q"], q_before
        )


def test_trainer_with_noise_resumes_bit_exactly(tmp_path):
    regs = {"weight_noise": {"std": 0.05, "per": "step"}, "variational_dropout": 0.2, "l2": 1e-4}
    task = lnn.adding(6)

    def trainer():
        model = lnn.build_model(task, "tanh", hidden=8, rng=0, regularizers=regs)
        return lnn.Trainer(model, task.loss(), lnn.Adam(lr=1e-2), task, batch_size=4, rng=3)

    a = trainer()
    a.fit(6, progress=False)
    b = trainer()
    b.fit(3, progress=False)
    c = lnn.load(b.save(tmp_path / "ck.npz"))  # rebuilt from the file (spec incl. regularizers)
    c.fit(3, progress=False)
    for k, v in a.model.params().items():
        np.testing.assert_array_equal(v, c.model.params()[k])


@pytest.mark.parametrize(
    "regs,exc,match",
    [
        ({"dropout": 1.0}, ValueError, r"p must be in \[0.0, 1.0\)"),
        ({"dropout": -0.1}, ValueError, r"p must be in"),
        ({"variational_dropout": {"p": 0.2, "recurrent": 1.5}}, ValueError, "recurrent must be in"),
        ({"fast_dropout": 1.0}, ValueError, r"p must be in"),
        ({"input_noise": -0.1}, ValueError, "std must be in"),
        ({"weight_noise": {"std": -1.0}}, ValueError, "std must be in"),
        ({"weight_noise": {"std": 0.1, "per": "batch"}}, ValueError, "unknown per 'batch'"),
        ({"zoneout": 0.1}, ValueError, "unknown regularizer 'zoneout'; valid: 'input_noise'"),
        ({"l2": {"weight": 0.1, "gamma": 1}}, TypeError, "unknown"),
        ({"spectral_norm": 0.5}, TypeError, "takes True or a dict"),
        ({"max_norm": 0.0}, ValueError, "c must be"),
        ({"l1": {"weight": 0.1, "params": ["V"]}}, ValueError, r"no parameter\(s\) \['V'\]"),
        ({"dropout": 0.1, "variational_dropout": 0.1}, ValueError, "choose one"),
        ([("dropout", 0.1)], TypeError, "regularizers must be a dict"),
    ],
)
def test_bad_regularizers(regs, exc, match):
    with pytest.raises(exc, match=match):
        lnn.make_cell("tanh", 3, 4, regularizers=regs)


def test_constraints_need_a_dense_matrix_and_noise_needs_float_input():
    with pytest.raises(ValueError, match="acts on a dense recurrent matrix"):
        lnn.make_cell("tanh", 3, 4, recurrent="block:2", regularizers={"spectral_norm": True})
    with pytest.raises(ValueError, match="acts on a dense recurrent matrix"):
        lnn.make_cell("scaled_cayley", 3, 4, regularizers={"unit_disk": True})
    cell = lnn.make_cell("tanh", 3, 4, regularizers={"input_noise": 0.1})
    with pytest.raises(ValueError, match="input_noise need float input; got integer tokens"):
        cell.forward_sequence(np.zeros((2, 2), dtype=int), rng=0)
    cell = lnn.make_cell("tanh", 3, 4, regularizers={"dropout": 0.1})
    with pytest.raises(ValueError, match="input=False"):
        cell.forward_sequence(np.zeros((2, 2), dtype=int), rng=0)
