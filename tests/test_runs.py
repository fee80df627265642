"""Weights out of models, trainers, checkpoints, snapshots and run folders; Snapshots."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import CheckpointError

CELLS = ["tanh", "scaled_cayley", "householder", "full_unitary", "restricted_unitary", "lstm"]


def _model(cell="tanh", hidden=5):
    return lnn.build_model(lnn.copy_memory(4), cell, hidden=hidden, rng=0)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_matrix_is_materialised_from_the_parameterisation(cell):
    model = _model(cell)
    W = lnn.weight_matrices(model)
    key = "rnn.cell.W_h" if cell == "lstm" else "rnn.cell.W"
    assert next(iter(W)) == key
    if cell != "lstm":
        np.testing.assert_array_equal(W[key], lnn.recurrent_matrix(model))
    assert "readout.W" in W
    assert not any("theta" in k for k in W)
    if cell in ("full_unitary", "restricted_unitary"):
        assert np.iscomplexobj(W[key]) and W[key].shape == (5, 5)
        np.testing.assert_allclose(W[key].conj().T @ W[key], np.eye(5), atol=1e-6)


def test_weights_are_copies():
    model = _model()
    W = lnn.weight_matrices(model)
    W["rnn.cell.W"][...] = 0
    W["readout.W"][...] = 0
    assert np.abs(model.params()["rnn.cell.W"]).max() > 0
    assert np.abs(model.params()["readout.W"]).max() > 0


def test_names_select_and_unknown_names_list_the_valid_ones():
    model = _model()
    assert list(lnn.weight_matrices(model, names="readout.W")) == ["readout.W"]
    got = lnn.weight_matrices(model, names=["readout.W", "rnn.cell.W"])
    assert set(got) == {"readout.W", "rnn.cell.W"}
    with pytest.raises(
        ValueError,
        match=r"weight_matrices: no weight matrix 'W'; valid names: "
        r"rnn.cell.W, rnn.cell.U, readout.W",
    ):
        lnn.weight_matrices(model, names="W")
    with pytest.raises(TypeError, match="names must be strings"):
        lnn.weight_matrices(model, names=[3])


def test_trainer_source_equals_model_source():
    tr = lnn.make_trainer(lnn.copy_memory(4), "tanh", hidden=5, batch_size=4, rng=0)
    a, b = lnn.weight_matrices(tr), lnn.weight_matrices(tr.model)
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(TypeError, match="weight_matrices: source must be"):
        lnn.weight_matrices(3.0)
    with pytest.raises(CheckpointError, match="no such file"):
        lnn.weight_matrices(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="not a run folder"):
        lnn.weight_matrices(tmp_path)


def test_a_layer_may_supply_its_own_matrices():
    """The protocol structured layers follow: weight_matrices() (e.g. an LDRMatrix)."""
    from lowdisp.structured import toeplitz

    class Structured(lnn.Dense):
        def weight_matrices(self):
            return {"T": toeplitz(np.arange(1.0, 4.0))}

    model = lnn.Sequential({"a": Structured(3, 3, rng=0)})
    W = lnn.weight_matrices(model)
    assert list(W) == ["a.T"] and not isinstance(W["a.T"], np.ndarray)


def test_snapshots_layout_and_content(tmp_path):
    d = tmp_path / "snaps"
    tr = lnn.make_trainer(
        lnn.copy_memory(4),
        "scaled_cayley",
        hidden=5,
        batch_size=4,
        rng=0,
        callbacks=[lnn.Snapshots(d, every=3)],
    )
    tr.fit(7, progress=False)
    assert sorted(os.listdir(d)) == [f"step_{s:06d}.npz" for s in (0, 3, 6, 7)]
    with np.load(d / "step_000007.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"][()]))
        assert meta["format"] == "lowdisp-snapshot" and meta["step"] == 7
        assert meta["recurrent"] == ["rnn.cell.W"]
        assert sorted(z.files) == sorted([*meta["names"], "meta"])
        np.testing.assert_array_equal(z["rnn.cell.W"], lnn.recurrent_matrix(tr.model))
    last = lnn.weight_matrices(d / "step_000007.npz", names="rnn.cell.W")
    np.testing.assert_array_equal(last["rnn.cell.W"], lnn.recurrent_matrix(tr.model))


def test_snapshots_do_not_change_training():
    def run(callbacks):
        tr = lnn.make_trainer(
            lnn.copy_memory(4), "tanh", hidden=5, batch_size=4, rng=1, callbacks=callbacks
        )
        tr.fit(5, progress=False)
        return tr.model.params()

    import tempfile

    a = run([])
    b = run([lnn.Snapshots(tempfile.mkdtemp(), every=1)])
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_snapshots_validate_arguments(tmp_path):
    with pytest.raises(ValueError, match="Snapshots: every"):
        lnn.Snapshots(tmp_path, every=0)
    with pytest.raises(TypeError, match="Snapshots: directory must be a path"):
        lnn.Snapshots(3, every=1)


def test_run_folder_without_checkpoint_uses_its_latest_snapshot(tmp_path):
    tr = lnn.make_trainer(
        lnn.copy_memory(4),
        "tanh",
        hidden=5,
        batch_size=4,
        rng=0,
        callbacks=[lnn.Snapshots(tmp_path / "snapshots", every=2)],
    )
    tr.fit(4, progress=False)
    W = lnn.weight_matrices(tmp_path)
    np.testing.assert_array_equal(W["rnn.cell.W"], lnn.recurrent_matrix(tr.model))


def test_damaged_snapshot_is_a_checkpoint_error(tmp_path):
    tr = lnn.make_trainer(
        lnn.copy_memory(4),
        "tanh",
        hidden=5,
        batch_size=4,
        rng=0,
        callbacks=[lnn.Snapshots(tmp_path, every=1)],
    )
    tr.fit(1, progress=False)
    p = tmp_path / "step_000001.npz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        lnn.weight_matrices(p)


@pytest.mark.parametrize("cell", ["scaled_cayley", "full_unitary", "gru"])
def test_checkpoint_and_run_folder_sources_rebuild_the_model(tmp_path, cell):
    tr = lnn.make_trainer(
        lnn.copy_memory(4),
        cell,
        hidden=5,
        batch_size=4,
        rng=0,
        checkpoint=tmp_path / "checkpoint.npz",
    )
    tr.fit(3, progress=False)
    live = lnn.weight_matrices(tr)
    for source in (tmp_path / "checkpoint.npz", str(tmp_path)):
        got = lnn.weight_matrices(source)
        assert list(got) == list(live)
        assert all(np.array_equal(got[k], live[k]) for k in live)
    with pytest.raises(ValueError, match="valid names"):
        lnn.weight_matrices(tmp_path, names="nope")


def test_checkpoint_of_an_array_task_run_gives_its_weights(tmp_path):
    # the trainer cannot be rebuilt from the file alone (its data is not saved),
    # but the model can: weight_matrices and analyze need only the model
    rng = np.random.default_rng(0)
    task = lnn.array_task(rng.standard_normal((12, 4, 3)), rng.integers(0, 2, 12))
    ck = tmp_path / "checkpoint.npz"
    tr = lnn.make_trainer(task, "tanh", hidden=5, batch_size=4, rng=0, checkpoint=ck)
    tr.fit(2, progress=False)
    with pytest.raises(CheckpointError, match="task="):
        lnn.load(ck)
    live = lnn.weight_matrices(tr)
    got = lnn.weight_matrices(ck)
    assert list(got) == list(live)
    assert all(np.array_equal(got[k], live[k]) for k in live)


def test_a_corrupted_checkpoint_is_a_checkpoint_error(tmp_path):
    p = tmp_path / "checkpoint.npz"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError):
        lnn.weight_matrices(p)


def test_a_plain_npz_of_matrices_is_a_source(tmp_path):
    p = tmp_path / "weights.npz"
    np.savez(p, **{"rnn.cell.W": np.eye(3), "readout.b": np.zeros(3)})
    got = lnn.weight_matrices(p)
    assert list(got) == ["rnn.cell.W"]
    with pytest.raises(ValueError, match=r"valid names: rnn\.cell\.W"):
        lnn.weight_matrices(p, names="readout.b")
