"""Scratch buffers are owned explicitly: reused across a trainer's steps, never
handed out again while a caller may still hold them."""

from __future__ import annotations

import numpy as np

import lowdisp.nn as lnn
from lowdisp.nn._layers import Workspace, _workspaces


def test_a_lent_buffer_is_not_handed_out_again_until_released():
    ws = Workspace()
    a = ws.get("h", (3, 4), np.float64)
    b = ws.get("h", (3, 4), np.float64)
    assert a is not b  # nobody released a
    ws.begin()
    c = ws.get("h", (3, 4), np.float64)
    ws.release()
    assert ws.get("h", (3, 4), np.float64) is c
    assert ws.get("h", (3, 4), np.float64) is not c  # lent again, not yet released


def test_release_frees_only_what_was_lent_inside_the_block():
    ws = Workspace()
    held = ws.get("x", (2,), np.float64)  # e.g. a user's forward outside the trainer
    ws.begin()
    ws.get("y", (2,), np.float64)
    ws.release()
    assert ws.get("x", (2,), np.float64) is not held


def test_outputs_held_outside_the_trainer_are_never_overwritten():
    tr = lnn.make_trainer(lnn.copy_memory(5), "tanh", hidden=8, batch_size=4, rng=0)
    x, _ = tr.task.batch(4, rng=np.random.default_rng(1))
    y1, _ = tr.model.forward(x, train=False, rng=None)
    keep = y1.copy()
    for _ in range(2):
        tr.train_step()
    tr.model.forward(x, train=False, rng=None)
    np.testing.assert_array_equal(y1, keep)


def test_the_trainer_reuses_its_buffers_between_steps():
    tr = lnn.make_trainer(lnn.copy_memory(5), "tanh", hidden=8, batch_size=4, rng=0)
    tr.train_step()
    before = [{k: id(v) for k, v in w._bufs.items()} for w in _workspaces(tr.model, tr.loss)]
    assert any(before)
    tr.train_step()
    after = [{k: id(v) for k, v in w._bufs.items()} for w in _workspaces(tr.model, tr.loss)]
    assert before == after
