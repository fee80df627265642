"""Sequence data: the chorale cache (tiny fixture, no music21 needed), char-LM, frame NLL."""

from __future__ import annotations

import math
import os
import shutil
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowdisp import nn as lnn
from lowdisp.nn._seqdata import KEYS, _roll, _split_of, _text

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "chorales_tiny.npz")


def _tiny_model(n_in: int, n_out: int, hidden: int = 6):
    return lnn.Sequential(
        [
            lnn.RNN(lnn.TanhRNNCell(n_in, hidden, dtype=np.float64, rng=0)),
            lnn.Dense(hidden, n_out, dtype=np.float64, rng=1),
        ]
    )


def test_fixture_round_trip_and_fixed_split():
    data = lnn.load_chorales(FIXTURE)
    assert len(data.sequences) == 10
    assert data.names[:3] == ["bwv269", "bwv347", "bwv153.1"]  # Riemenschneider order
    # the fixed split: default_rng(0) permutation, 20 % test, 20 % validation
    assert np.array_equal(data.split, _split_of(10, 0, 2, 2))
    assert [len(data.part(s)) for s in ("train", "validation", "test")] == [6, 2, 2]
    # 88-key rolls, four voices: at most 4 keys on in a frame, most frames have 3-4
    for s in data.sequences:
        assert s.dtype == np.uint8 and s.shape[1] == KEYS
        on = s.sum(axis=1)
        assert on.max() <= 4 and np.mean(on >= 3) > 0.9
    # the published JSB pitch range 43..96 covers these chorales
    keys = np.flatnonzero(np.concatenate(data.sequences).any(axis=0)) + 21
    assert keys.min() >= 36 and keys.max() <= 96


def test_full_split_sizes_are_fixed():
    split = _split_of(371, 0, 74, 74)
    assert np.bincount(split).tolist() == [223, 74, 74]
    assert np.array_equal(split, _split_of(371, 0, 74, 74))


def test_cache_reload_is_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWDISP_DATA", str(tmp_path))
    assert lnn.sequence_data_dir() == str(tmp_path)
    shutil.copy(FIXTURE, tmp_path / "bach_chorales_q1.npz")
    t = time.perf_counter()
    task = lnn.chorales(T=8, build=False)  # the default cache path under $LOWDISP_DATA
    assert time.perf_counter() - t < 2.0
    assert task.info == {"n_train": 6, "n_val": 2, "n_test": 2}
    with pytest.raises(FileNotFoundError, match="no chorale cache"):
        monkeypatch.setenv("LOWDISP_DATA", str(tmp_path / "empty"))
        lnn.load_chorales(build=False)


def test_chorale_task_batches_are_shifted_windows():
    task = lnn.chorales(T=16, path=FIXTURE, dtype=np.float64)
    x, y = task.batch(5, rng=0)
    assert x.shape == y.shape == (16, 5, KEYS) and x.dtype == np.float64
    assert np.array_equal(x[1:], y[:-1])  # y is x one frame later
    x2, _ = task.batch(5, rng=0)
    assert np.array_equal(x, x2)
    assert isinstance(task.loss(), lnn.SigmoidBinaryCrossEntropy)
    xe, ye = task.eval_data()
    assert xe.shape[0] == 16 and xe.shape[1] >= 2
    # frame NLL = 88 x the mean binary cross-entropy (sum over keys, mean over frames)
    z = np.random.default_rng(0).normal(size=ye.shape)
    p = 1 / (1 + np.exp(-z))
    dense = -(ye * np.log(p) + (1 - ye) * np.log(1 - p)).sum(axis=-1).mean()
    assert task.metrics(z, ye)["frame_nll"] == pytest.approx(dense, rel=1e-12)
    # baseline: the memoryless per-key frequency predictor of the training frames
    frames = np.concatenate(lnn.load_chorales(FIXTURE).part("train")).astype(float)
    q = np.clip(frames.mean(axis=0), 1e-6, 1 - 1e-6)
    ent = -(q * np.log(q) + (1 - q) * np.log1p(-q)).sum()
    assert task.baseline * KEYS == pytest.approx(ent, rel=1e-12)


def test_frame_nll_equals_per_sequence_loop():
    task = lnn.chorales(T=8, path=FIXTURE, dtype=np.float64)
    model = _tiny_model(KEYS, KEYS)
    got = lnn.frame_nll(model, task, "train", batch_size=4)  # padded, masked batches
    total = frames = 0.0
    for s in lnn.load_chorales(FIXTURE).part("train"):
        x, y = s[:-1, None, :].astype(float), s[1:, None, :].astype(float)
        out, _ = model.forward(x, train=False)
        total += (np.logaddexp(0, out) - y * out).sum()
        frames += x.shape[0]
    assert got == pytest.approx(total / frames, rel=1e-12)


def test_char_lm_bits_per_character():
    task = lnn.char_lm(T=30)
    x, y = task.batch(3, rng=1)
    assert x.shape == y.shape == (30, 3) and x.dtype.kind == "i"
    assert np.array_equal(x[1:], y[:-1])
    text = "".join(task.chars[i] for i in np.concatenate([x[:, 0], y[-1:, 0]]))
    assert text in _text("sonnets") and _text("sonnets").startswith("THE SONNETS")
    model = _tiny_model(task.input_size, task.output_size)
    bpc = lnn.frame_nll(model, task, "validation")
    assert 0.9 * math.log2(task.input_size) < bpc < 1.1 * math.log2(task.input_size)
    xe, ye = task.eval_data()
    out, _ = model.forward(xe, train=False)
    m = task.metrics(out, ye)
    value, _ = lnn.SoftmaxCrossEntropy()(out, ye)
    assert m["bpc"] == pytest.approx(value / math.log(2), rel=1e-12)


def test_tasks_registered():
    from lowdisp.nn._tasks import FACTORIES, TASKS

    assert {"chorales", "char_lm"} <= set(TASKS) & set(FACTORIES)
    assert lnn.make_task("char_lm").T == 100


def test_bad_input():
    with pytest.raises(ValueError, match="char_lm: unknown text 'hamlet'; valid: 'sonnets'"):
        lnn.char_lm(text="hamlet")
    with pytest.raises(ValueError, match="chorales: T=500 is too long"):
        lnn.chorales(T=500, path=FIXTURE)
    with pytest.raises(FileNotFoundError, match="load_chorales: path"):
        lnn.load_chorales("/nonexistent/x.npz")
    with pytest.raises(ValueError, match="frame_nll: unknown split 'dev'; valid"):
        lnn.frame_nll(_tiny_model(62, 62), lnn.char_lm(T=5), "dev")
    with pytest.raises(TypeError, match="frame_nll: task must come from"):
        lnn.frame_nll(_tiny_model(2, 1), lnn.adding(5))


def test_music21_parse_small():
    music21 = pytest.importorskip("music21")
    from music21 import corpus

    roll = _roll(corpus.parse("bach/bwv269"))
    fixture = lnn.load_chorales(FIXTURE).sequences[0]
    assert np.array_equal(roll, fixture)
    assert music21 is not None


@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    T=st.integers(1, 6),
    b=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_windows_are_contiguous_slices(lengths, T, b, seed):
    """Every sampled window is a contiguous T+1 slice of one sequence; the evaluation
    windows are the non-overlapping ones."""
    from lowdisp.nn._seqdata import _window_sampler, _windows

    seqs = [np.arange(100 * i, 100 * i + n) for i, n in enumerate(lengths)]
    if max(lengths) < T + 1:
        with pytest.raises(ValueError, match="no sequence has"):
            _windows(seqs, T, T)
        return
    x, y = _window_sampler(seqs, T, np.float64, True)(b, np.random.default_rng(seed))
    w = np.concatenate([x, y[-1:]])  # (T+1, b)
    assert w.shape == (T + 1, b)
    assert (np.diff(w, axis=0) == 1).all()  # contiguous
    assert ((w[0] // 100) == (w[-1] // 100)).all()  # inside one sequence
    ev = _windows(seqs, T, T)
    want = sum((n - 1) // T for n in lengths if n >= T + 1)
    assert ev.shape == (want, T + 1)


@given(n=st.integers(3, 400), seed=st.integers(0, 50))
@settings(max_examples=25, deadline=None)
def test_split_is_a_partition(n, seed):
    k = max(1, round(0.2 * n))
    s = _split_of(n, seed, k, k)
    assert np.bincount(s, minlength=3).tolist() == [n - 2 * k, k, k]
