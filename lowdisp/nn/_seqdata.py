"""Real sequence data that loads offline: Bach chorales and a character-level text.

**Polyphonic music** (:func:`chorales`): the 371 four-part Bach chorales of
``music21``'s corpus (Riemenschneider numbering) as 88-key piano rolls (MIDI
21-108, key ``k`` is MIDI ``21 + k``), one frame per quarter note: key ``k``
is on in frame ``t`` when a note of that pitch sounds at quarter offset ``t``
(``offset <= t < offset + duration``; notes shorter than a beat that start
between beats are not sampled, repeats are not expanded). The fixed split:
``numpy.random.default_rng(0).permutation(371)``, the first 74 chorales are
the test set, the next 74 the validation set, the remaining 223 the training
set (the Boulanger-Lewandowski JSB pickles, 229/76/77, are not reachable
offline; this is *not* their split and their numbers are not directly
comparable). Parsing takes minutes, so the rolls are cached as ``.npz`` in
``$LOWDISP_DATA`` (default ``~/.cache/lowdisp``) after the first build; a
reload takes well under a second.

The model sees frame ``t`` and predicts frame ``t + 1`` with 88 independent
Bernoulli outputs (sigmoid logits). The metric of Boulanger-Lewandowski et
al. (2012) is the frame-level NLL ``-Σ_k [y_k log p_k + (1 - y_k) log(1 - p_k)]``
summed over the 88 keys and averaged over the frames;
:class:`~lowdisp.nn.SigmoidBinaryCrossEntropy` (mean reduction) averages over
keys *and* frames, so the NLL per frame is 88 times the loss
(:func:`frame_nll` computes it exactly on whole sequences).

**Character-level language model** (:func:`char_lm`): Shakespeare's Sonnets
(public domain, 95 kB, from the Open Shakespeare package, shipped in
``lowdisp/data/sonnets.txt``), split into contiguous 90 / 5 / 5 % parts;
next-character cross-entropy, reported in bits per character.

Training batches are random windows of ``T + 1`` frames/characters (input
the first ``T``, target the last ``T``); the Trainer's evaluation and
validation sets are the non-overlapping windows of each split.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from lowdisp._validation import check_int, check_option
from lowdisp.nn._losses import Loss, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from lowdisp.nn._tasks import Task

__all__ = [
    "CHORALE_SPLIT",
    "KEYS",
    "build_chorales",
    "char_lm",
    "chorales",
    "frame_nll",
    "load_chorales",
    "sequence_data_dir",
]

#: piano keys of a frame (MIDI 21..108)
KEYS = 88
#: MIDI number of key 0 (A0)
LOWEST_MIDI = 21
#: chorales in (test, validation) of the fixed split; the rest train
CHORALE_SPLIT = {"seed": 0, "test": 74, "validation": 74}
_CACHE_NAME = "bach_chorales_q1.npz"
_SPLITS = ("train", "validation", "test")


def sequence_data_dir() -> str:
    """The cache folder of the parsed data: ``$LOWDISP_DATA`` or ``~/.cache/lowdisp``.

    Examples
    --------
    >>> from lowdisp.nn import sequence_data_dir
    >>> isinstance(sequence_data_dir(), str)
    True
    """
    return os.environ.get("LOWDISP_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "lowdisp"
    )


def _default_path() -> str:
    return os.path.join(sequence_data_dir(), _CACHE_NAME)


def _roll(score: Any) -> np.ndarray:
    """One chorale as a ``(frames, 88)`` uint8 piano roll, one frame per quarter note."""
    L = math.ceil(float(score.highestTime))
    roll = np.zeros((max(L, 1), KEYS), dtype=np.uint8)
    for n in score.flatten().notes:
        on = float(n.offset)
        off = on + float(n.quarterLength)
        t0, t1 = math.ceil(on - 1e-9), math.ceil(off - 1e-9)
        if t1 <= t0:
            continue
        for p in n.pitches:
            k = int(p.midi) - LOWEST_MIDI
            if 0 <= k < KEYS:
                roll[t0:t1, k] = 1
    return roll


def _split_of(n: int, seed: int, n_test: int, n_val: int) -> np.ndarray:
    """0 train, 1 validation, 2 test for ``n`` items (the fixed permutation split)."""
    order = np.random.default_rng(seed).permutation(n)
    split = np.zeros(n, dtype=np.int8)
    split[order[:n_test]] = 2
    split[order[n_test : n_test + n_val]] = 1
    return split


def build_chorales(path: str | None = None, *, limit: int | None = None) -> str:
    """Parse music21's Bach chorales into piano rolls and cache them as ``.npz``.

    Needs ``music21`` (``pip install lowdisp[data]``); takes a few minutes
    (about 160 s on one core). Called by :func:`load_chorales` when the cache
    is missing.

    Parameters
    ----------
    path : str, optional
        The ``.npz`` to write (default ``sequence_data_dir()/bach_chorales_q1.npz``).
    limit : int, optional
        Parse only the first ``limit`` chorales (Riemenschneider order), with
        the split scaled to 20 % / 20 % (for small fixtures).

    Returns
    -------
    str
        The path written. The file holds ``rolls`` (all frames stacked,
        uint8 ``(frames, 88)``), ``lengths``, ``names`` (BWV ids), ``split``
        (0 train, 1 validation, 2 test) and ``lowest_midi``.

    Examples
    --------
    >>> from lowdisp.nn import build_chorales
    >>> build_chorales("/tmp/chorales3.npz", limit=3)  # doctest: +SKIP
    '/tmp/chorales3.npz'
    """
    where = "build_chorales"
    if limit is not None:
        limit = check_int(limit, "limit", where=where, low=3)
    try:
        from music21 import corpus
    except ImportError as exc:
        raise ImportError(
            f"{where}: parsing the Bach chorales needs music21; install it with "
            f"`pip install music21` or `pip install lowdisp[data]`"
        ) from exc
    path = _default_path() if path is None else os.fspath(path)
    names = list(corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename"))
    if limit is not None:
        names = names[:limit]
    rolls = [_roll(corpus.parse(name)) for name in names]
    n = len(names)
    if limit is None:
        n_test, n_val = CHORALE_SPLIT["test"], CHORALE_SPLIT["validation"]
    else:
        n_test = n_val = max(1, round(0.2 * n))
    split = _split_of(n, CHORALE_SPLIT["seed"], n_test, n_val)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".part.npz"
    np.savez_compressed(
        tmp,
        rolls=np.concatenate(rolls),
        lengths=np.array([r.shape[0] for r in rolls], dtype=np.int64),
        names=np.array([str(s).replace("bach/", "") for s in names]),
        split=split,
        lowest_midi=np.int64(LOWEST_MIDI),
    )
    os.replace(tmp, path)
    return path


@dataclass
class SequenceSet:
    """Sequences of one data set: ``rolls[i]`` ``(frames, features)``, names and split."""

    sequences: list[np.ndarray]
    names: list[str]
    split: np.ndarray

    def part(self, which: str) -> list[np.ndarray]:
        """The sequences of ``"train"``, ``"validation"`` or ``"test"``."""
        code = _SPLITS.index(which)
        return [s for s, c in zip(self.sequences, self.split, strict=True) if c == code]


def load_chorales(path: str | None = None, *, build: bool = True) -> SequenceSet:
    """The Bach chorales' piano rolls from the ``.npz`` cache (built on first use).

    Parameters
    ----------
    path : str, optional
        A file written by :func:`build_chorales` (default: the cache file).
    build : bool
        Parse the corpus when the default cache file is missing (needs music21).

    Returns
    -------
    SequenceSet
        ``sequences`` uint8 ``(frames, 88)`` arrays, ``names`` (BWV ids), ``split``.

    Examples
    --------
    >>> from lowdisp.nn import load_chorales
    >>> data = load_chorales()  # doctest: +SKIP
    >>> [len(data.part(s)) for s in ("train", "validation", "test")]  # doctest: +SKIP
    [223, 74, 74]
    """
    where = "load_chorales"
    if path is None:
        path = _default_path()
        if not os.path.exists(path):
            if not build:
                raise FileNotFoundError(f"{where}: no chorale cache at {path}")
            build_chorales(path)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{where}: path {path!r} does not exist (build it with build_chorales(path))"
        )
    with np.load(path, allow_pickle=False) as f:
        missing = {"rolls", "lengths", "names", "split"} - set(f.files)
        if missing:
            raise ValueError(f"{where}: {path!r} is not a chorale cache (lacks {sorted(missing)})")
        rolls, lengths = f["rolls"], f["lengths"]
        names, split = [str(s) for s in f["names"]], f["split"].astype(np.int8)
    if rolls.ndim != 2 or rolls.shape[1] != KEYS or lengths.sum() != rolls.shape[0]:
        raise ValueError(f"{where}: {path!r} holds inconsistent rolls {rolls.shape}")
    seqs = np.split(rolls, np.cumsum(lengths)[:-1])
    return SequenceSet(seqs, names, split)


class _SequenceTask(Task):
    """A :class:`Task` with the loss and metric of a real sequence data set."""

    def loss(self) -> Loss:
        if self.loss_name == "binary_cross_entropy":
            return SigmoidBinaryCrossEntropy()
        return SoftmaxCrossEntropy()

    def metrics(self, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if self.loss_name == "binary_cross_entropy":
            value, _ = SigmoidBinaryCrossEntropy()(pred, y)
            return {"frame_nll": value * pred.shape[-1]}
        value, _ = SoftmaxCrossEntropy()(pred, y)
        hit = pred.argmax(axis=-1) == y
        return {"accuracy": float(hit.mean()), "bpc": value / math.log(2)}


def _windows(seqs: list[np.ndarray], T: int, stride: int) -> np.ndarray:
    """All windows of ``T + 1`` steps at ``stride`` from each sequence, stacked (N, T+1, ...)."""
    out = []
    for s in seqs:
        if s.shape[0] < T + 1:
            continue
        starts = np.arange(0, s.shape[0] - T, stride)
        out.append(np.stack([s[i : i + T + 1] for i in starts]))
    if not out:
        raise ValueError(f"no sequence has the {T + 1} steps a window of T={T} needs")
    return np.concatenate(out)


def _window_sampler(seqs: list[np.ndarray], T: int, dtype: Any, tokens: bool):
    """Draws ``b`` random windows (uniform over all window starts of all sequences)."""
    lens = np.array([s.shape[0] for s in seqs])
    keep = np.flatnonzero(lens >= T + 1)
    counts = lens[keep] - T
    cum = np.concatenate([[0], np.cumsum(counts)])
    flat = np.concatenate([seqs[i] for i in keep])
    offs = np.concatenate([[0], np.cumsum(lens[keep])])[:-1]

    def sample(b: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r = gen.integers(0, cum[-1], size=b)
        which = np.searchsorted(cum, r, side="right") - 1
        start = offs[which] + (r - cum[which])
        idx = start[None, :] + np.arange(T + 1)[:, None]  # (T+1, b), time-major
        w = flat[idx]
        if tokens:
            return w[:-1].astype(np.int64), w[1:].astype(np.int64)
        w = w.astype(dtype)
        return np.ascontiguousarray(w[:-1]), np.ascontiguousarray(w[1:])

    return sample


def _time_major_pair(w: np.ndarray, dtype: Any, tokens: bool) -> tuple[np.ndarray, np.ndarray]:
    w = np.swapaxes(w, 0, 1)
    if tokens:
        return np.ascontiguousarray(w[:-1]).astype(np.int64), np.ascontiguousarray(w[1:]).astype(
            np.int64
        )
    w = w.astype(dtype)
    return np.ascontiguousarray(w[:-1]), np.ascontiguousarray(w[1:])


def chorales(
    *, T: int = 24, path: str | None = None, dtype: Any = np.float32, build: bool = True
) -> Task:
    """Polyphonic music: next-frame prediction on the Bach chorales (88-key piano rolls).

    Parameters
    ----------
    T : int
        Window length of the training batches (>= 1; default 24 frames = six
        4/4 bars). Chorales shorter than ``T + 1`` frames give no training
        window (all are kept by :func:`frame_nll`).
    path : str, optional
        A chorale ``.npz`` (default: the cache, built with music21 on first use).
    dtype : {float32, float64}
        Dtype of the 0/1 inputs and targets.
    build : bool
        Parse the corpus when the cache is missing.

    Returns
    -------
    Task
        Inputs ``(T, B, 88)``, targets ``(T, B, 88)`` in {0, 1};
        ``task.loss()`` is :class:`~lowdisp.nn.SigmoidBinaryCrossEntropy`
        (mean over keys and frames); the metric ``frame_nll`` is 88 times it.
        Baseline: the NLL per frame of the training set's per-key
        frequencies (a memoryless predictor). ``task.info`` has the split
        sizes; ``task.sequences(split)`` gives the whole chorales for
        :func:`frame_nll`.

    Examples
    --------
    >>> from lowdisp.nn import chorales
    >>> task = chorales()  # doctest: +SKIP
    >>> x, y = task.batch(8, rng=0)  # doctest: +SKIP
    >>> x.shape, y.shape  # doctest: +SKIP
    ((24, 8, 88), (24, 8, 88))
    """
    where = "chorales"
    T = check_int(T, "T", where=where, low=1)
    check_option(np.dtype(dtype).name, "dtype", ("float32", "float64"), where=where)
    data = load_chorales(path, build=build)
    return _sequence_task(
        where,
        "chorales",
        data,
        T,
        np.dtype(dtype),
        tokens=False,
        config_args={"T": T, **({} if path is None else {"path": os.fspath(path)})},
        extra_info={},
    )


def _sequence_task(where, name, data, T, dtype, *, tokens, config_args, extra_info):
    train, val, test = (data.part(s) for s in _SPLITS)
    if tokens:
        vocab = extra_info["vocab"]
        counts = np.bincount(np.concatenate(train), minlength=vocab) + 1.0
        prior = counts / counts.sum()
        baseline = float(-(prior * np.log(prior)).sum())
        loss_name, in_size, out_size = "cross_entropy", vocab, vocab
    else:
        frames = np.concatenate(train).astype(np.float64)
        p = np.clip(frames.mean(axis=0), 1e-6, 1 - 1e-6)
        baseline = float(-(p * np.log(p) + (1 - p) * np.log1p(-p)).sum() / KEYS)
        loss_name, in_size, out_size = "binary_cross_entropy", KEYS, KEYS
    try:
        ev = _windows(test, T, T)
        va = _windows(val, T, T)
        _windows(train, T, T)
    except ValueError as exc:
        raise ValueError(f"{where}: T={T} is too long: {exc}") from None
    task = _SequenceTask(
        name=name,
        input_size=in_size,
        tokens=tokens,
        output_size=out_size,
        sequence_output=True,
        loss_name=loss_name,
        baseline=baseline,
        T=T,
        info={
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test),
            **extra_info,
        },
        config={"factory": name, "args": config_args},
        _sampler=_window_sampler(train, T, dtype, tokens),
        _eval=lambda: _time_major_pair(ev, dtype, tokens),
        _val=_time_major_pair(va, dtype, tokens),
    )
    task._sets = {"train": train, "validation": val, "test": test}  # type: ignore[attr-defined]
    return task


_TEXTS = {"sonnets": "sonnets.txt"}


def _text(name: str) -> str:
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
    with open(os.path.join(here, _TEXTS[name]), encoding="utf-8") as fh:
        return fh.read()


def char_lm(*, T: int = 100, text: str = "sonnets", dtype: Any = np.float32) -> Task:
    """Character-level language modelling on a text shipped with lowdisp.

    Parameters
    ----------
    T : int
        Characters per training window (>= 1, default 100).
    text : {"sonnets"}
        Shakespeare's Sonnets (public domain, 95 kB, 2.5k lines), split into
        contiguous 90 / 5 / 5 % parts (train / validation / test).
    dtype : {float32, float64}
        Unused by the token inputs; kept for a uniform signature.

    Returns
    -------
    Task
        Token inputs ``(T, B)`` over the text's sorted characters
        (``task.chars``), next-character targets ``(T, B)``; loss cross-entropy in
        nats, metric ``bpc`` = loss / ln 2. Baseline: the unigram
        (add-one) entropy of the training part.

    Examples
    --------
    >>> import math
    >>> from lowdisp.nn import char_lm
    >>> task = char_lm(T=50)
    >>> x, y = task.batch(4, rng=0)
    >>> x.shape, task.info["vocab"], round(task.baseline / math.log(2), 2)
    ((50, 4), 62, 4.52)
    """
    where = "char_lm"
    T = check_int(T, "T", where=where, low=1)
    check_option(text, "text", tuple(_TEXTS), where=where)
    s = _text(text)
    chars = sorted(set(s))
    lut = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lut[c] for c in s), dtype=np.int16, count=len(s))
    n = ids.size
    a, b = int(0.9 * n), int(0.95 * n)
    split = np.array([0, 1, 2], dtype=np.int8)
    data = SequenceSet([ids[:a], ids[a:b], ids[b:]], ["train", "validation", "test"], split)
    task = _sequence_task(
        where,
        "char_lm",
        data,
        T,
        np.dtype(dtype),
        tokens=True,
        config_args={"T": T, "text": text},
        extra_info={"vocab": len(chars), "text": text},
    )
    task.chars = "".join(chars)  # type: ignore[attr-defined]
    return task


def frame_nll(model: Any, task: Task, split: str = "test", *, batch_size: int = 64) -> float:
    """The exact per-step NLL of ``model`` on whole sequences of a split.

    Every sequence runs from a zero state over all its steps (not windows):
    sequences are zero-padded at the end to the batch's longest and the
    padding is masked out (the model is causal, so padding never changes an
    earlier output). For :func:`chorales` this is the frame NLL summed over
    the 88 keys (Boulanger-Lewandowski et al.'s metric); for :func:`char_lm`
    it is bits per character.

    Parameters
    ----------
    model : lowdisp.nn Layer
        Maps ``(T, B, features)`` (or tokens ``(T, B)``) to logits ``(T, B, outputs)``.
    task : Task
        A task of :func:`chorales` or :func:`char_lm`.
    split : {"train", "validation", "test"}
    batch_size : int

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp import nn as lnn
    >>> task = lnn.char_lm(T=20)
    >>> model = lnn.Sequential([lnn.RNN(lnn.TanhRNNCell(62, 8, rng=0)), lnn.Dense(8, 62, rng=0)])
    >>> 5.9 < lnn.frame_nll(model, task, "validation") < 6.0  # ~ log2(62), untrained
    True
    """
    where = "frame_nll"
    check_option(split, "split", _SPLITS, where=where)
    sets = getattr(task, "_sets", None)
    if sets is None:
        raise TypeError(f"{where}: task must come from chorales() or char_lm(); got {task.name!r}")
    bs = check_int(batch_size, "batch_size", where=where, low=1)
    seqs = [s for s in sets[split] if s.shape[0] >= 2]
    tokens = task.tokens
    if tokens:  # one long text part: cut into pieces of <= 2000 characters
        seqs = [p for s in seqs for p in np.array_split(s, max(1, math.ceil(s.size / 2000)))]
    total, count = 0.0, 0
    order = np.argsort([s.shape[0] for s in seqs])
    for i in range(0, len(seqs), bs):
        group = [seqs[j] for j in order[i : i + bs]]
        L = max(s.shape[0] for s in group) - 1
        B = len(group)
        mask = np.zeros((L, B))
        if tokens:
            x = np.zeros((L, B), dtype=np.int64)
            y = np.zeros((L, B), dtype=np.int64)
        else:
            dt = next(iter(model.params().values())).dtype
            x = np.zeros((L, B, KEYS), dtype=dt)
            y = np.zeros((L, B, KEYS), dtype=dt)
        for j, s in enumerate(group):
            n = s.shape[0] - 1
            x[:n, j], y[:n, j], mask[:n, j] = s[:-1], s[1:], 1.0
        out, _ = model.forward(x, train=False, rng=None)
        if tokens:
            z = out - out.max(axis=-1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=-1))
            per = lse - np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
        else:
            per = (np.logaddexp(0, out) - y * out).sum(axis=-1)
        total += float((per * mask).sum())
        count += int(mask.sum())
    return total / count / (math.log(2) if tokens else 1.0)
