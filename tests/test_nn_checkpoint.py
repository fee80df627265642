"""Self-describing checkpoints, spec checks, exact rebuilds, interrupts and never-bad saves."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import threading
import zlib

import numpy as np
import pytest

import lowdisp.nn as lnn
from lowdisp.exceptions import CheckpointError
from lowdisp.nn._spec import build_layer

F64 = np.float64


def make(cell="scaled_cayley", **kw):
    """A small trainer; every keyword can be overridden (task, hidden, optimizer, ...)."""
    task = kw.pop("task", None) or lnn.copy_memory(4, n_eval=32)
    args = {
        "hidden": 6,
        "batch_size": 8,
        "rng": 0,
        "dtype": F64,
        "optimizer": "adam",
        "lr": 1e-2,
    }
    args.update(kw)
    return lnn.make_trainer(task, cell, **args)


def state_of(tr):
    """Everything a load may change, deep-copied."""
    return {
        "params": {k: v.copy() for k, v in tr.model.params().items()},
        "opt": {k: np.array(v, copy=True) for k, v in tr.optimizer.state_dict().items()},
        "rng": copy.deepcopy(tr.rng.bit_generator.state),
        "step": tr.step_count,
        "history": json.dumps(tr.history.to_dict()),
    }


def assert_same_state(a, b):
    assert sorted(a["params"]) == sorted(b["params"])
    for k in a["params"]:
        np.testing.assert_array_equal(a["params"][k], b["params"][k])
    assert sorted(a["opt"]) == sorted(b["opt"])
    for k in a["opt"]:
        np.testing.assert_array_equal(a["opt"][k], b["opt"][k])
    assert a["rng"] == b["rng"]
    assert a["step"] == b["step"] and a["history"] == b["history"]


def assert_same_params(ta, tb):
    pa, pb = ta.model.params(), tb.model.params()
    assert sorted(pa) == sorted(pb)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


# --------------------------------------------------------------------------- spec


def test_spec_records_every_component():
    tr = make(
        cell_options={"recurrent_init": "henaff"},
        schedule=lnn.cosine_schedule(50, warmup=2),
        clip_norm=1.0,
        eval_every=5,
    )
    spec = tr.spec
    assert json.loads(json.dumps(spec)) == spec  # JSON-able as is
    assert spec["format_version"] == 2 and spec["dtype"] == "float64"
    cell = spec["model"]["layers"]["rnn"]["cell"]
    assert cell["recurrent_options"] == {"n_neg": 2, "dtype": "float64"}
    assert cell["recurrent_init"] == "henaff" and cell["hidden_size"] == 6
    opt = spec["optimizer"]
    assert opt["class"] == "Adam" and opt["clip_norm"] == 1.0 and opt["betas"] == [0.9, 0.999]
    assert opt["schedule"] == {"name": "cosine_schedule", "total": 50, "warmup": 2, "floor": 0.0}
    assert opt["groups"] == {"*.W.theta*": {"lr": 1e-3}}
    assert spec["task"]["factory"] == "copy_memory" and spec["task"]["args"]["T"] == 4
    assert spec["trainer"] == {
        "batch_size": 8,
        "eval_every": 5,
        "checkpoint_every": None,
        "threads": 1,
    }
    assert spec["loss"] == {"class": "SoftmaxCrossEntropy", "reduction": "mean"}


@pytest.mark.parametrize(
    "layer",
    [
        lnn.Dense(3, 2, bias=False, dtype=F64),
        lnn.Embedding(5, 3),
        lnn.OneHot(4),
        lnn.Activation("sigmoid", dtype=F64),
        lnn.Tanh(),
        lnn.ReLU(dtype=F64),
        lnn.Sigmoid(),
        lnn.ModReLU(4, complex_pairs=True),
        lnn.Dropout(0.25),
        lnn.RNN(lnn.LSTMCell(3, 4, forget_bias=0.5), return_sequences=False),
        lnn.RNN(lnn.GRUCell(3, 4, dtype=F64)),
        lnn.RNN(lnn.ReLURNNCell(3, 4)),
        lnn.RNN(lnn.RNNCell(3, 4, activation="relu", recurrent="householder", rng=0)),
        lnn.RNN(lnn.make_cell("svd", 3, 4, recurrent_options={"sigma_star": 2.0, "margin": 0.5})),
        lnn.RNN(lnn.make_cell("full_unitary", 3, 4, recurrent_options={"real": True})),
        lnn.RNN(lnn.make_cell("restricted_unitary", 3, 4, rng=7)),
        lnn.RNN(lnn.make_cell("expm", 3, 4, recurrent_options={"method": "pade"})),
        lnn.Sequential([lnn.Dense(3, 4), lnn.Tanh(), lnn.Dense(4, 1)]),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_every_layer_rebuilds_from_its_config(layer):
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = build_layer(cfg, "model")
    assert type(again) is type(layer) and again.get_config() == cfg
    p, q = layer.params(), again.params()
    assert {k: (v.shape, v.dtype) for k, v in p.items()} == {
        k: (v.shape, v.dtype) for k, v in q.items()
    }


def test_schedules_are_callable_objects_with_a_config():
    for s in (
        lnn.constant_schedule(),
        lnn.exponential_schedule(0.5, every=3),
        lnn.step_schedule([4, 2], gamma=0.3),
        lnn.cosine_schedule(20, warmup=3, floor=0.1),
    ):
        cfg = s.get_config()
        from lowdisp.nn._optim import SCHEDULES

        again = SCHEDULES[cfg["name"]](**{k: v for k, v in cfg.items() if k != "name"})
        assert again == s and repr(again) == repr(s)
        assert [again(t) for t in range(25)] == [s(t) for t in range(25)]
    with pytest.raises(ValueError, match="every must be"):
        lnn.exponential_schedule(0.5, every=0)


# --------------------------------------------------------------------------- mismatches

# (what differs, the trainer to compare with the saved one, the dotted field(s) named)
MISMATCHES = [
    ("cell", lambda: make("householder"), "model.rnn.cell.recurrent"),
    ("hidden", lambda: make(hidden=7), "model.rnn.cell.hidden_size"),
    (
        "n_neg",
        lambda: make(cell_options={"recurrent_options": {"n_neg": 4}}),
        "model.rnn.cell.recurrent_options.n_neg",
    ),
    (
        "init",
        lambda: make(cell_options={"recurrent_init": "haar", "recurrent_options": {"n_neg": 0}}),
        "model.rnn.cell.recurrent_init",
    ),
    ("activation", lambda: make(cell_options={"activation": "tanh"}), "model.rnn.cell.activation"),
    ("dtype", lambda: make(dtype=np.float32), "model.rnn.cell.dtype"),
    ("task T", lambda: make(task=lnn.copy_memory(5, n_eval=32)), "task.args.T"),
    (
        "task variant",
        lambda: make(task=lnn.copy_memory(4, n_eval=32, variant="lezcano")),
        "task.args.variant",
    ),
    ("task n_eval", lambda: make(task=lnn.copy_memory(4, n_eval=33)), "task.args.n_eval"),
    ("task kind", lambda: make(task=lnn.adding(4)), "task.factory"),
    ("optimizer", lambda: make(optimizer="rmsprop"), "optimizer.class"),
    ("lr", lambda: make(lr=2e-2), "optimizer.lr"),
    ("lr_orth", lambda: make(lr_orth=1e-2), "optimizer.groups"),
    ("clip_norm", lambda: make(clip_norm=1.0), "optimizer.clip_norm"),
    ("schedule", lambda: make(schedule=lnn.cosine_schedule(10)), "optimizer.schedule"),
    ("batch_size", lambda: make(batch_size=9), "trainer.batch_size"),
    ("eval_every", lambda: make(eval_every=3), "trainer.eval_every"),
]


@pytest.mark.parametrize("what,build,field", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_load_refuses_a_trainer_that_differs(what, build, field, tmp_path):
    saved = make()
    saved.fit(2, progress=False)
    path = saved.save(tmp_path / "ck.npz")
    other = build()
    before = state_of(other)
    with pytest.raises(CheckpointError, match="does not match the trainer") as info:
        lnn.load(path, trainer=other)
    msg = str(info.value)
    assert re.search(rf"{re.escape(field)}\S* is .* in the checkpoint, .* in the trainer", msg)
    assert_same_state(before, state_of(other))


def _opt_variant(opt_cls, **kw):
    def build():
        tr = make()
        groups = tr.optimizer.groups
        tr.optimizer = opt_cls(1e-2, groups=groups, **kw)
        return tr

    return build


@pytest.mark.parametrize(
    "opt_cls,base,changed,field",
    [
        (lnn.SGD, {"momentum": 0.9}, {"momentum": 0.5}, "optimizer.momentum"),
        (lnn.SGD, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, "optimizer.nesterov"),
        (lnn.RMSprop, {}, {"rho": 0.5}, "optimizer.rho"),
        (lnn.RMSprop, {}, {"momentum": 0.5}, "optimizer.momentum"),
        (lnn.RMSprop, {}, {"initial_accumulator": 1e-3}, "optimizer.initial_accumulator"),
        (lnn.RMSprop, {}, {"eps": 1e-4}, "optimizer.eps"),
    ],
    ids=["sgd momentum", "nesterov", "rho", "rmsprop momentum", "initial_accumulator", "eps"],
)
def test_sgd_and_rmsprop_settings_are_checked(opt_cls, base, changed, field, tmp_path):
    path = _opt_variant(opt_cls, **base)().save(tmp_path / "ck.npz")
    assert lnn.load(path, trainer=_opt_variant(opt_cls, **base)()).step_count == 0
    with pytest.raises(CheckpointError, match=re.escape(field) + " is "):
        lnn.load(path, trainer=_opt_variant(opt_cls, **changed)())


def test_loss_class_and_task_arguments_are_checked(tmp_path):
    path = make().save(tmp_path / "ck.npz")
    other = make()
    other.loss = lnn.MSE()
    with pytest.raises(CheckpointError, match=r"loss\.class is 'SoftmaxCrossEntropy' in the chec"):
        lnn.load(path, trainer=other)
    for kw, field in [
        ({"n_symbols": 6}, "task.args.n_symbols"),
        ({"n_copy": 5}, "task.args.n_copy"),
        ({"eval_seed": 1}, "task.args.eval_seed"),
    ]:
        with pytest.raises(CheckpointError, match=re.escape(field)):
            lnn.load(path, trainer=make(task=lnn.copy_memory(4, n_eval=32, **kw)))


@pytest.mark.parametrize(
    "build,field",
    [
        (_opt_variant(lnn.Adam, betas=(0.8, 0.999)), "optimizer.betas"),
        (_opt_variant(lnn.Adam, eps=1e-6), "optimizer.eps"),
        (_opt_variant(lnn.Adam, weight_decay=1e-4), "optimizer.weight_decay"),
        (_opt_variant(lnn.Adam, schedule=lnn.step_schedule([5], 0.5)), "optimizer.schedule"),
    ],
    ids=["betas", "eps", "weight_decay", "schedule"],
)
def test_each_optimizer_setting_is_checked(build, field, tmp_path):
    base = make()
    path = base.save(tmp_path / "ck.npz")
    with pytest.raises(CheckpointError, match=re.escape(field)):
        lnn.load(path, trainer=build())


def test_schedule_arguments_and_trainer_settings_are_checked(tmp_path):
    a = make(schedule=lnn.cosine_schedule(100))
    path = a.save(tmp_path / "a.npz")
    with pytest.raises(CheckpointError, match=r"optimizer\.schedule\.total is 100 .*, 200 "):
        lnn.load(path, trainer=make(schedule=lnn.cosine_schedule(200)))
    b = make()
    b.threads = 2
    path_b = b.save(tmp_path / "b.npz")
    with pytest.raises(CheckpointError, match=r"trainer\.threads is 2 .*, 1 in the trainer"):
        lnn.load(path_b, trainer=make())
    c = make(checkpoint=tmp_path / "c.npz", checkpoint_every=3)
    path_c = c.save(tmp_path / "c.npz")
    with pytest.raises(CheckpointError, match=r"trainer\.checkpoint_every is 3"):
        lnn.load(path_c, trainer=make())
    d = lnn.make_trainer(lnn.adding(5), "tanh", hidden=4, rng=0)
    d.loss = lnn.MSE(reduction="sum")
    path_d = d.save(tmp_path / "d.npz")
    with pytest.raises(CheckpointError, match=r"loss\.reduction is 'sum'"):
        lnn.load(path_d, trainer=lnn.make_trainer(lnn.adding(5), "tanh", hidden=4, rng=0))


def test_every_difference_is_named_at_once(tmp_path):
    path = make().save(tmp_path / "ck.npz")
    with pytest.raises(CheckpointError) as info:
        lnn.load(path, trainer=make(hidden=7, lr=0.5, batch_size=3))
    msg = str(info.value)
    for field in (
        "model.rnn.cell.hidden_size is 6 in the checkpoint, 7 in the trainer",
        "optimizer.lr is 0.01 in the checkpoint, 0.5 in the trainer",
        "trainer.batch_size is 8 in the checkpoint, 3 in the trainer",
        "params.rnn.cell.W.theta is float64[15] in the checkpoint, float64[21] in the trainer",
    ):
        assert field in msg
    # hidden_size, readout.in_features, lr, the orthogonal group's lr (lr / 10), batch_size
    assert len(info.value.differences) == 5


def test_issue_reproducer_now_raises(tmp_path):
    """make_trainer(copy_memory(50), "scaled_cayley", hidden=64) loading a checkpoint of a
    run with another n_neg/init used to load silently (W off by 1.99)."""
    run = lnn.make_trainer(
        lnn.copy_memory(50),
        "scaled_cayley",
        hidden=64,
        rng=0,
        cell_options={"recurrent_init": "henaff"},
    )
    path = run.save(tmp_path / "ck.npz")
    tr = lnn.make_trainer(lnn.copy_memory(50), "scaled_cayley", hidden=64)
    before = state_of(tr)
    with pytest.raises(CheckpointError) as info:
        lnn.load(path, trainer=tr)
    msg = str(info.value)
    assert "model.rnn.cell.recurrent_options.n_neg is 32 in the checkpoint, 0 in the trainer" in msg
    assert "model.rnn.cell.recurrent_init is 'henaff' in the checkpoint, None in the trainer" in msg
    assert_same_state(before, state_of(tr))
    with pytest.raises(CheckpointError, match="recurrent_init"):
        tr.load(path)  # Trainer.load takes the checked path too


# --------------------------------------------------------------------------- rebuild


@pytest.mark.parametrize(
    "cell,opts",
    [
        ("scaled_cayley", {"recurrent_init": "henaff"}),
        ("restricted_unitary", {}),
        ("lstm", {}),
    ],
)
def test_load_alone_rebuilds_a_trainer_whose_next_100_steps_are_bit_for_bit(cell, opts, tmp_path):
    kw = {"cell_options": opts, "schedule": lnn.cosine_schedule(200, warmup=5), "clip_norm": 5.0}
    a = make(cell, rng=3, **kw)
    a.fit(110, progress=False)
    b = make(cell, rng=3, checkpoint=tmp_path / "ck.npz", **kw)
    b.fit(10, progress=False)
    del b
    c = lnn.load(tmp_path / "ck.npz")  # model, optimizer, schedule, task, RNG: all from the file
    assert c.step_count == 10 and c.checkpoint == os.fspath(tmp_path / "ck.npz")
    c.fit(100, progress=False)
    assert_same_params(a, c)
    assert a.history.loss == c.history.loss and a.history.step == c.history.step
    sa, sc = a.optimizer.state_dict(), c.optimizer.state_dict()
    assert sorted(sa) == sorted(sc)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sc[k])
    assert a.rng.bit_generator.state == c.rng.bit_generator.state


def test_read_checkpoint_holds_the_spec(tmp_path):
    tr = make()
    tr.fit(2, progress=False)
    ck = lnn.read_checkpoint(tr.save(tmp_path / "ck"))
    assert isinstance(ck, lnn.Checkpoint) and ck.step == 2 and ck.spec == tr.spec
    assert ck.meta["version"] == 2 and set(ck.params) == set(tr.model.params())


class Scale(lnn.Layer):
    """A custom layer without a configuration."""

    def __init__(self, n):
        self.dtype = np.dtype(F64)
        self._params = {"s": np.ones(n)}

    def _forward(self, x, train, rng):
        return x * self._params["s"], x

    def backward(self, cache, dy):
        return dy * self._params["s"], {"s": (dy * cache).reshape(-1, dy.shape[-1]).sum(0)}

    def __repr__(self):
        return f"Scale({self._params['s'].size})"


def _custom_trainer(n=3, seed=0):
    task = lnn.adding(5)
    model = lnn.Sequential(
        {
            "rnn": lnn.RNN(lnn.TanhRNNCell(2, n, dtype=F64, rng=seed), return_sequences=False),
            "scale": Scale(n),
            "readout": lnn.Dense(n, 1, dtype=F64, rng=seed),
        }
    )
    return lnn.Trainer(model, task.loss(), lnn.SGD(0.1), task, batch_size=4, rng=seed)


def test_custom_layer_is_recorded_but_not_rebuilt(tmp_path):
    tr = _custom_trainer()
    tr.fit(2, progress=False)
    path = tr.save(tmp_path / "ck.npz")
    rec = lnn.read_checkpoint(path).spec["model"]["layers"]["scale"]
    assert rec["class"] == "Scale" and rec["repr"] == "Scale(3)" and rec["rebuildable"] is False
    with pytest.raises(CheckpointError, match=r"model\.scale is a Scale \(Scale\(3\)\).*trainer="):
        lnn.load(path)
    again = _custom_trainer(seed=5)
    assert lnn.load(path, trainer=again) is again and again.step_count == 2
    assert_same_params(tr, again)
    with pytest.raises(
        CheckpointError, match=r"params\.scale\.s is float64\[3\] in the checkpoint"
    ):
        lnn.load(path, trainer=_custom_trainer(n=4))


def test_array_task_needs_task_argument(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4, 2)), rng.integers(0, 2, 20)
    task = lnn.array_task(x, y)
    tr = lnn.make_trainer(task, "tanh", hidden=3, batch_size=4, rng=0)
    tr.fit(2, progress=False)
    path = tr.save(tmp_path / "ck.npz")
    with pytest.raises(CheckpointError, match=r"built from arrays.*lnn\.load\(path, task="):
        lnn.load(path)
    again = lnn.load(path, task=lnn.array_task(x, y))
    assert again.step_count == 2
    y2 = y.copy()
    y2[0] = 1 - y2[0]
    with pytest.raises(CheckpointError, match=r"another task: .*task\.data\.y_train\.crc32"):
        lnn.load(path, task=lnn.array_task(x, y2))
    with pytest.raises(TypeError, match="only without trainer"):
        lnn.load(path, trainer=tr, task=task)


def test_plain_function_schedule_is_not_rebuilt(tmp_path):
    tr = make(schedule=lambda step: 1.0)
    path = tr.save(tmp_path / "ck.npz")
    assert lnn.read_checkpoint(path).spec["optimizer"]["schedule"]["rebuildable"] is False
    with pytest.raises(CheckpointError, match=r"optimizer\.schedule is a"):
        lnn.load(path)


# --------------------------------------------------------------------------- validation


def rewrite_meta(src, dst, change):
    """Copy a checkpoint with its metadata changed by ``change(meta)`` and valid checksums."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    change(meta)
    text = json.dumps(meta)
    arrays["meta"] = np.array(text)
    arrays["meta_crc32"] = np.array(zlib.crc32(text.encode()), dtype=np.int64)
    np.savez(dst, **arrays)
    return dst


def _drop(key):
    return lambda m: m.pop(key)


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


def _hist(key, value):
    return lambda m: m["history"].__setitem__(key, value)


BAD_META = {
    **{
        f"missing {k}": _drop(k)
        for k in (
            "format",
            "version",
            "lowdisp_version",
            "step",
            "rng_state",
            "history",
            "elapsed",
            "spec",
            "keys",
            "crc32",
        )
    },
    "step negative": _set("step", -1),
    "step float": _set("step", 2.5),
    "step bool": _set("step", True),
    "step string": _set("step", "2"),
    "rng_state not a dict": _set("rng_state", "PCG64"),
    "rng_state unknown generator": lambda m: m["rng_state"].__setitem__("bit_generator", "Nope"),
    "rng_state bad state": lambda m: m["rng_state"].__setitem__("state", {"state": "x"}),
    "rng_state without state": lambda m: m["rng_state"].pop("state"),
    "history not a dict": _set("history", [1, 2]),
    "history without loss": lambda m: m["history"].pop("loss"),
    "history loss not a list": _hist("loss", {"a": 1}),
    "history loss of strings": _hist("loss", ["a", "b"]),
    "history ragged": _hist("time", [0.1]),
    "history evals not dicts": _hist("evals", [1]),
    "history baseline string": _hist("baseline", "x"),
    "elapsed negative": _set("elapsed", -1.0),
    "elapsed string": _set("elapsed", "1"),
    "spec not a dict": _set("spec", []),
    "spec without model": lambda m: m["spec"].pop("model"),
    "spec dtype missing": lambda m: m["spec"].pop("dtype"),
    "keys not a list": _set("keys", "params/x"),
    "keys missing an array": lambda m: m["keys"].pop(),
    "crc32 not a dict": _set("crc32", [1]),
    "crc32 non-int": lambda m: m["crc32"].__setitem__(next(iter(m["crc32"])), "1"),
    "lowdisp_version int": _set("lowdisp_version", 3),
    "version 1": _set("version", 1),
    "version 3": _set("version", 3),
    "version string": _set("version", "2"),
    "format": _set("format", "other"),
    "model description not a string": _set("model", {"class": "x"}),
}


@pytest.mark.parametrize("case", sorted(BAD_META))
def test_refused_metadata_leaves_the_trainer_unchanged(case, tmp_path):
    good = make()
    good.fit(3, progress=False)
    src = good.save(tmp_path / "good.npz")
    bad = rewrite_meta(src, tmp_path / "bad.npz", BAD_META[case])
    tr = make(rng=9)
    tr.fit(2, progress=False)
    before = state_of(tr)
    with pytest.raises(CheckpointError):
        lnn.load(bad, trainer=tr)
    assert_same_state(before, state_of(tr))
    with pytest.raises(CheckpointError):
        lnn.load(bad)
    with pytest.raises(CheckpointError):
        lnn.read_checkpoint(bad)


def test_version_1_file_is_refused_with_a_clear_message(tmp_path):
    src = make().save(tmp_path / "v2.npz")

    def v1(meta):
        meta["version"] = 1
        meta.pop("spec")

    bad = rewrite_meta(src, tmp_path / "v1.npz", v1)
    with pytest.raises(CheckpointError, match=r"version-1 checkpoint.*does not record the model"):
        lnn.load(bad)


def test_bad_arrays_are_refused_before_touching_the_trainer(tmp_path):
    good = make()
    good.fit(2, progress=False)
    src = good.save(tmp_path / "good.npz")
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    from lowdisp.nn._checkpoint import _crc

    def write(name, arrs):
        m = dict(meta, keys=sorted(k for k in arrs if not k.startswith("meta")))
        m["crc32"] = {k: _crc(arrs[k]) for k in m["keys"]}
        text = json.dumps(m)
        out = dict(arrs, meta=np.array(text))
        out["meta_crc32"] = np.array(zlib.crc32(text.encode()), dtype=np.int64)
        np.savez(tmp_path / name, **out)
        return tmp_path / name

    nan = dict(arrays)
    nan["params/readout.b"] = np.full_like(arrays["params/readout.b"], np.nan)
    opt_shape = dict(arrays)
    key = next(k for k in arrays if k.startswith("opt/m/"))
    opt_shape[key] = np.zeros(3)
    extra = dict(arrays)
    extra["junk"] = np.zeros(2)
    tr = make(rng=4)
    before = state_of(tr)
    for name, arrs, match in [
        ("nan.npz", nan, "NaN/Inf"),
        ("shape.npz", opt_shape, "matches no parameter"),
        ("extra.npz", extra, "'params/...' and 'opt/...' arrays only"),
    ]:
        with pytest.raises(CheckpointError, match=match):
            lnn.load(write(name, arrs), trainer=tr)
        assert_same_state(before, state_of(tr))


# --------------------------------------------------------------------------- divergence


def _nan_schedule():
    """A step schedule whose multiplier is NaN from step 3 on (step_schedule refuses a NaN
    gamma, so it is set after construction)."""
    sched = lnn.step_schedule([3], gamma=0.5)
    sched.gamma = float("nan")
    return sched


def test_nan_schedule_rolls_back_and_the_named_checkpoint_is_finite(tmp_path):
    path = tmp_path / "ck.npz"
    tr = make(optimizer="sgd", schedule=_nan_schedule(), checkpoint=path, checkpoint_every=1)
    ref = make(optimizer="sgd", schedule=_nan_schedule())
    ref.fit(3, progress=False)
    with pytest.raises(lnn.TrainingDivergedError) as info:
        tr.fit(6, progress=False)
    msg = str(info.value)
    assert "diverged at step 4" in msg and "rolled back" in msg
    assert f"last good checkpoint is {os.fspath(path)!r} (step 3)" in msg
    assert tr.step_count == 3 and tr.optimizer.steps == 3
    assert_same_params(tr, ref)  # rolled back to exactly the state after step 3
    ck = lnn.read_checkpoint(path)
    assert ck.step == 3
    assert all(np.isfinite(v).all() for v in ck.params.values())
    # the NaN schedule is in the spec: load(path) alone refuses to rebuild it
    with pytest.raises(CheckpointError, match="gamma must be finite"):
        lnn.load(path)
    again = lnn.load(
        path,
        trainer=make(
            optimizer="sgd", schedule=_nan_schedule(), checkpoint=path, checkpoint_every=1
        ),
    )
    assert_same_params(again, ref)


@pytest.mark.parametrize(
    "cell,dtype",
    [("tanh", np.float32), ("scaled_cayley", np.float64)],
    ids=["overflow at step 1", "nan loss at step 2"],
)
def test_huge_learning_rate_never_leaves_a_bad_checkpoint(cell, dtype, tmp_path):
    """SGD with lr = 1e300: the update overflows (rolled back, nothing written), or the
    next loss is NaN (the checkpoint of the step before is finite and named)."""
    path = tmp_path / "ck.npz"
    tr = make(cell, optimizer="sgd", lr=1e300, dtype=dtype, checkpoint=path, checkpoint_every=1)
    with pytest.raises(lnn.TrainingDivergedError) as info:
        tr.fit(5, progress=False)
    msg = str(info.value)
    assert all(np.isfinite(v).all() for v in tr.model.params().values())
    named = re.search(r"last good checkpoint is '.*' \(step (\d+)\)", msg)
    assert (named is None) == (dtype == np.float32)  # both outcomes are exercised
    if named is None:
        assert "no checkpoint was written" in msg and not path.exists()
        assert tr.step_count == 0
    else:
        ck = lnn.read_checkpoint(path)
        assert ck.step == int(named.group(1)) == tr.step_count
        assert all(np.isfinite(v).all() for v in ck.params.values())
        assert lnn.load(path).step_count == ck.step


def test_rollback_restores_the_optimizer_state_exactly():
    tr = make(optimizer="adam")
    tr.fit(2, progress=False)
    before = state_of(tr)
    tr.optimizer.schedule = lnn.step_schedule([0], gamma=0.5)
    tr.optimizer.schedule.gamma = float("inf")
    with pytest.raises(lnn.TrainingDivergedError, match="non-finite"):
        tr.train_step()
    after = state_of(tr)
    before["rng"] = after["rng"]  # the batch was drawn
    assert_same_state(before, after)


def test_save_refuses_non_finite_state(tmp_path):
    tr = make()
    path = tr.save(tmp_path / "ck.npz")
    tr.model.params()["readout.W"][0, 0] = np.inf
    with pytest.raises(CheckpointError, match=r"refusing to write.*readout\.W"):
        tr.save(path)
    assert lnn.read_checkpoint(path).step == 0


# --------------------------------------------------------------------------- interrupts


class KillAt(lnn.Callback):
    def __init__(self, step, signals=(signal.SIGINT,)):
        self.step = step
        self.signals = signals

    def on_step_end(self, trainer, loss):
        if trainer.step_count == self.step:
            for sig in self.signals:
                os.kill(os.getpid(), sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_finishes_the_step_writes_the_checkpoint_and_resumes_exactly(sig, tmp_path):
    path = tmp_path / "ck.npz"
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    a = make(rng=2)
    a.fit(20, progress=False)
    b = make(rng=2, checkpoint=path, checkpoint_every=50, callbacks=[KillAt(7, (sig,))])
    with pytest.raises(lnn.TrainingInterrupted) as info:
        b.fit(20, progress=False)
    err = info.value
    assert isinstance(err, KeyboardInterrupt)
    assert err.step == 7 and err.checkpoint == os.fspath(path) and err.signum == sig
    assert "at step 7" in str(err) and "resume with" in str(err)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert b.step_count == 7 and b.history.step == list(range(1, 8))
    assert lnn.read_checkpoint(path).step == 7
    c = lnn.load(path)
    c.fit(13, progress=False)
    assert_same_params(a, c)
    assert a.history.loss == c.history.loss


def test_interrupt_without_checkpoint_path_keeps_the_state_in_memory():
    tr = make(callbacks=[KillAt(3)])
    with pytest.raises(lnn.TrainingInterrupted, match="no checkpoint path") as info:
        tr.fit(10, progress=False)
    assert info.value.checkpoint is None and info.value.step == 3 == tr.step_count
    tr.callbacks.clear()
    tr.fit(2, progress=False)  # continues normally
    assert tr.step_count == 5


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler for the test: a shell that starts pytest in the
    background (``nohup ... &``) hands it SIGINT ignored, and a second Ctrl-C can
    only be a hard interrupt where the first handler raises KeyboardInterrupt."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_second_signal_is_a_hard_interrupt(default_sigint):
    handlers = signal.getsignal(signal.SIGINT)
    tr = make(callbacks=[KillAt(2, (signal.SIGINT, signal.SIGINT))])
    with pytest.raises(KeyboardInterrupt) as info:
        tr.fit(10, progress=False)
    assert not isinstance(info.value, lnn.TrainingInterrupted)
    assert signal.getsignal(signal.SIGINT) == handlers


def test_fit_outside_the_main_thread_leaves_signal_handlers_alone():
    seen = []
    before = signal.getsignal(signal.SIGINT)

    class Peek(lnn.Callback):
        def on_step_end(self, trainer, loss):
            seen.append(signal.getsignal(signal.SIGINT))

    tr = make(callbacks=[Peek()])
    t = threading.Thread(target=tr.fit, args=(2,), kwargs={"progress": False})
    t.start()
    t.join()
    assert tr.step_count == 2 and seen == [before] * 2
