"""The input contract of lowdisp.nn (issue 10: defect classes of a bad-input campaign).

- every public keyword is checked: a wrong type, NaN, a negative or zero size,
  a truthy string raises TypeError/ValueError naming the function and the argument;
- empty batches: layers return ``(0, ..., out)`` results with a correct backward,
  losses refuse an empty mean, recurrent layers refuse T = 0 and B = 0 by name;
- ndarray subclasses: ``np.matrix`` becomes a plain array, masked arrays are refused;
- shapes are never reinterpreted (loss targets, ``array_task`` sequence targets);
- float32 in, float32 out (layers, cells, losses);
- a Sequential names the layer whose input does not fit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowdisp.nn as lnn
from lowdisp.nn._rnn import CELLS

NAN = float("nan")
INF = float("inf")

# ---------------------------------------------------------------------------------------
# option fuzz: (function label in the message, argument, call(value), bad values)
# ---------------------------------------------------------------------------------------

INT_BAD = ["3", 2.5, True, NAN, None, [2]]
SIZE_BAD = [*INT_BAD, 0, -1]
BOOL_BAD = ["no", "yes", 1, 0, None, 1.0]
POS_BAD = ["x", True, NAN, INF, 0, -1.0, None, [1.0]]
NONNEG_BAD = ["x", True, NAN, INF, -1e-3, None]
UNIT_BAD = ["x", True, NAN, -0.1, 1.0, 1.5, None]  # [0, 1)
DTYPE_BAD = ["float16", "abc", "0{", None, np.int32, np.complex128]
RNG_BAD = ["seed", 1.5, True, [0.5]]
PATH_BAD = [3, None, 2.5, ["a"]]


def _task():
    return lnn.adding(5, n_eval=4)


def _trainer(**kw):
    task = _task()
    model = lnn.build_model(task, "tanh", hidden=3, dtype=np.float64, rng=0)
    return lnn.Trainer(model, task.loss(), lnn.SGD(0.1), task, batch_size=2, rng=0, **kw)


_X = np.zeros((3, 4, 2))
_Y = np.arange(3) % 2


def _cases():
    c = []

    def add(where, arg, call, bad):
        for v in bad:
            c.append(pytest.param(where, arg, call, v, id=f"{where}.{arg}={v!r}"))

    # layers
    add("Dense", "in_features", lambda v: lnn.Dense(v, 2), SIZE_BAD)
    add("Dense", "out_features", lambda v: lnn.Dense(2, v), SIZE_BAD)
    add("Dense", "bias", lambda v: lnn.Dense(2, 2, bias=v), BOOL_BAD)
    add("Dense", "dtype", lambda v: lnn.Dense(2, 2, dtype=v), DTYPE_BAD)
    add("Dense", "rng", lambda v: lnn.Dense(2, 2, rng=v), RNG_BAD)
    add("Embedding", "vocab", lambda v: lnn.Embedding(v, 2), SIZE_BAD)
    add("Embedding", "dim", lambda v: lnn.Embedding(3, v), SIZE_BAD)
    add("Embedding", "rng", lambda v: lnn.Embedding(3, 2, rng=v), RNG_BAD)
    add("OneHot", "vocab", lambda v: lnn.OneHot(v), SIZE_BAD)
    add("OneHot", "dtype", lambda v: lnn.OneHot(3, dtype=v), DTYPE_BAD)
    add("Activation", "kind", lambda v: lnn.Activation(v), ["gelu", 3, None, ["tanh"]])
    add("Activation", "dtype", lambda v: lnn.Activation("tanh", dtype=v), DTYPE_BAD)
    add("ModReLU", "features", lambda v: lnn.ModReLU(v), SIZE_BAD)
    add("ModReLU", "complex_pairs", lambda v: lnn.ModReLU(2, complex_pairs=v), BOOL_BAD)
    add("ModReLU", "rng", lambda v: lnn.ModReLU(2, rng=v), RNG_BAD)
    add("Dropout", "p", lambda v: lnn.Dropout(v), UNIT_BAD)
    add("Tanh.forward", "train", lambda v: lnn.Tanh().forward(np.ones((1, 2)), train=v), BOOL_BAD)
    add("Dense", "x", lambda v: lnn.Dense(2, 2).forward(v), ["ab", [[1, "a"]], None])
    # recurrent
    add(
        "RNN",
        "return_sequences",
        lambda v: lnn.RNN(lnn.TanhRNNCell(2, 3), return_sequences=v),
        BOOL_BAD,
    )
    add("RNN", "cell", lambda v: lnn.RNN(v), [3, "tanh", lnn.Dense(2, 2)])
    add("RNNCell", "input_size", lambda v: lnn.RNNCell(v, 3), SIZE_BAD)
    add("RNNCell", "hidden_size", lambda v: lnn.RNNCell(2, v), SIZE_BAD)
    add("RNNCell", "activation", lambda v: lnn.RNNCell(2, 3, activation=v), ["gelu", 3, True])
    add("RNNCell", "recurrent", lambda v: lnn.RNNCell(2, 3, recurrent=v), ["orth", 3, None])
    add(
        "RNNCell",
        "recurrent_options",
        lambda v: lnn.RNNCell(2, 3, recurrent="scaled_cayley", recurrent_options=v),
        [[1], "n_neg", 3, {1: 2}, {"bogus": 1}, {"n_neg": 7}, {"n_neg": "x"}],
    )
    add(
        "RNNCell",
        "recurrent_options",
        lambda v: lnn.RNNCell(2, 4, recurrent="svd", recurrent_options=v),
        [{"sigma_star": NAN}, {"margin": -1.0}, {"k": "x"}],
    )
    add("RNNCell", "recurrent_init", lambda v: lnn.RNNCell(2, 3, recurrent_init=v), ["xyz", 3])
    add("RNNCell", "dtype", lambda v: lnn.RNNCell(2, 3, dtype=v), DTYPE_BAD)
    add("RNNCell", "rng", lambda v: lnn.RNNCell(2, 3, rng=v), RNG_BAD)
    add(
        "LSTMCell",
        "forget_bias",
        lambda v: lnn.LSTMCell(2, 3, forget_bias=v),
        ["x", NAN, INF, True],
    )
    add("LSTMCell", "hidden_size", lambda v: lnn.LSTMCell(2, v), SIZE_BAD)
    add("GRUCell", "input_size", lambda v: lnn.GRUCell(v, 3), SIZE_BAD)
    add("GRUCell", "rng", lambda v: lnn.GRUCell(2, 3, rng=v), RNG_BAD)
    add("make_cell", "cell", lambda v: lnn.make_cell(v, 2, 3), ["lstmx", 3, None])
    add(
        "TanhRNNCell.forward_sequence",
        "h0",
        lambda v: lnn.TanhRNNCell(2, 3).forward_sequence(np.ones((2, 1, 2)), v),
        [np.ones((2, 3)), np.ones(3), "h", np.full((1, 3), np.nan)],
    )
    # losses
    add("MSE", "reduction", lambda v: lnn.MSE(reduction=v), ["avg", 3, None])
    add("make_loss", "loss", lambda v: lnn.make_loss(v), ["l1", 3, None])
    add("MSE", "reduction", lambda v: lnn.make_loss("mse", reduction=v), ["avg", 3])
    add(
        "MSE",
        "target",
        lambda v: lnn.MSE()(np.ones((2, 3)), v),
        ["abc", np.ones((3, 2)), None, np.ones(6)],
    )
    add("MSE", "pred", lambda v: lnn.MSE()(v, np.ones(2)), ["ab", np.ones(2, int), 3.0])
    add(
        "MSE",
        "mask",
        lambda v: lnn.MSE()(np.ones(2), np.ones(2), v),
        [np.ones(3), "ab", np.array([1.0, -1.0])],
    )
    add(
        "MSE.backward",
        "dloss",
        lambda v: lnn.MSE().backward(lnn.MSE().forward(np.ones(2), np.ones(2))[1], v),
        ["x", NAN, None],
    )
    add(
        "SoftmaxCrossEntropy",
        "target",
        lambda v: lnn.SoftmaxCrossEntropy()(np.ones((2, 3)), v),
        [np.ones(2), np.array([0, 3]), np.zeros((2, 3), int), "ab"],
    )
    add(
        "SigmoidBinaryCrossEntropy",
        "target",
        lambda v: lnn.SigmoidBinaryCrossEntropy()(np.ones(2), v),
        [np.array([0.0, 2.0]), np.ones(3), "ab", np.array([0.0, np.nan])],
    )
    # optimizers and schedules
    for opt in (lnn.SGD, lnn.Adam, lnn.RMSprop):
        name = opt.__name__
        add(name, "lr", lambda v, o=opt: o(v), POS_BAD)
        add(name, "weight_decay", lambda v, o=opt: o(0.1, weight_decay=v), NONNEG_BAD)
        add(name, "clip_norm", lambda v, o=opt: o(0.1, clip_norm=v), [0, -1, NAN, "x", True])
        add(name, "schedule", lambda v, o=opt: o(0.1, schedule=v), ["x", 3, [1]])
        add(
            name,
            "groups",
            lambda v, o=opt: o(0.1, groups=v),
            [[1, 2], "x", 3, {"*": 3}, {1: {"lr": 1.0}}, {"*": {"lr": NAN}}, {"*": {"mom": 1}}],
        )
    add("SGD", "momentum", lambda v: lnn.SGD(0.1, momentum=v), UNIT_BAD)
    add("SGD", "nesterov", lambda v: lnn.SGD(0.1, momentum=0.9, nesterov=v), BOOL_BAD)
    add(
        "Adam",
        "betas",
        lambda v: lnn.Adam(betas=v),
        [(0.9,), (0.9, 1.0), "ab", 0.9, (NAN, 0.9), (0.9, 0.9, 0.9)],
    )
    add("Adam", "eps", lambda v: lnn.Adam(eps=v), NONNEG_BAD)
    add("RMSprop", "rho", lambda v: lnn.RMSprop(rho=v), UNIT_BAD)
    add("RMSprop", "momentum", lambda v: lnn.RMSprop(momentum=v), NONNEG_BAD)
    add("RMSprop", "initial_accumulator", lambda v: lnn.RMSprop(initial_accumulator=v), NONNEG_BAD)
    add("exponential_schedule", "rate", lambda v: lnn.exponential_schedule(v), POS_BAD)
    add("exponential_schedule", "every", lambda v: lnn.exponential_schedule(0.5, every=v), SIZE_BAD)
    add(
        "step_schedule",
        "milestones",
        lambda v: lnn.step_schedule(v),
        [["a"], "ab", 3, [-1], [1.5], None],
    )
    add("step_schedule", "gamma", lambda v: lnn.step_schedule([1], gamma=v), POS_BAD)
    add("cosine_schedule", "total", lambda v: lnn.cosine_schedule(v), [*INT_BAD, -1])
    add("cosine_schedule", "warmup", lambda v: lnn.cosine_schedule(10, warmup=v), [*INT_BAD, -1])
    add(
        "cosine_schedule",
        "floor",
        lambda v: lnn.cosine_schedule(10, floor=v),
        ["x", NAN, -0.1, 1.5, True],
    )
    add("clip_grad_norm", "max_norm", lambda v: lnn.clip_grad_norm({}, v), POS_BAD)
    add("clip_grad_norm", "grads", lambda v: lnn.clip_grad_norm(v, 1.0), [[1.0], "g", None])
    add("global_norm", "grads", lambda v: lnn.global_norm(v), [[1.0], "g", None])
    # tasks
    add("copy_memory", "T", lambda v: lnn.copy_memory(v), SIZE_BAD)
    add("copy_memory", "variant", lambda v: lnn.copy_memory(5, variant=v), ["x", 3, None])
    add("copy_memory", "n_copy", lambda v: lnn.copy_memory(5, n_copy=v), SIZE_BAD)
    add("copy_memory", "n_symbols", lambda v: lnn.copy_memory(5, n_symbols=v), [*SIZE_BAD, 1])
    add("copy_memory", "n_eval", lambda v: lnn.copy_memory(5, n_eval=v), SIZE_BAD)
    add("copy_memory", "eval_seed", lambda v: lnn.copy_memory(5, eval_seed=v), [*INT_BAD, -1])
    add("adding", "T", lambda v: lnn.adding(v), [*SIZE_BAD, 2])
    add("adding", "n_eval", lambda v: lnn.adding(5, n_eval=v), SIZE_BAD)
    add("adding", "eval_seed", lambda v: lnn.adding(5, eval_seed=v), [*INT_BAD, -1])
    add("array_task", "loss", lambda v: lnn.array_task(_X, _Y, loss=v), ["l1", 3, None])
    add(
        "array_task",
        "sequence_output",
        lambda v: lnn.array_task(_X, _Y, sequence_output=v),
        BOOL_BAD,
    )
    add("array_task", "name", lambda v: lnn.array_task(_X, _Y, name=v), [3, "", None])
    add(
        "array_task",
        "baseline",
        lambda v: lnn.array_task(_X, _Y, baseline=v),
        ["x", NAN, INF, True],
    )
    add("array_task", "info", lambda v: lnn.array_task(_X, _Y, info=v), [[1], "x", {1: 2}])
    add(
        "array_task",
        "x_train",
        lambda v: lnn.array_task(v, _Y),
        ["ab", np.zeros((3, 4)), np.zeros((3, 4, 0)), np.full((3, 4, 2), np.nan)],
    )
    add(
        "array_task",
        "y_train",
        lambda v: lnn.array_task(_X, v),
        [np.zeros(3), np.arange(4), np.array([-1, 0, 1]), "ab"],
    )
    for ds in (lnn.digits, lnn.mnist):
        name = ds.__name__
        add(name, "permute", lambda v, d=ds: d(permute=v), BOOL_BAD)
        add(name, "perm_seed", lambda v, d=ds: d(perm_seed=v), [*INT_BAD, -1])
        add(name, "split_seed", lambda v, d=ds: d(split_seed=v), [*INT_BAD, -1])
        add(name, "test_fraction", lambda v, d=ds: d(test_fraction=v), [0, 1, NAN, -0.1, "x", True])
    add("digits", "pixels_per_step", lambda v: lnn.digits(pixels_per_step=v), [*SIZE_BAD, 65, 3])
    add("digits", "test_fraction", lambda v: lnn.digits(test_fraction=v), [1e-9, 1 - 1e-9])
    add("mnist1d", "seed", lambda v: lnn.mnist1d(seed=v), [*INT_BAD, -1])
    add("make_task", "task", lambda v: lnn.make_task(v, 5), ["copying", 3, None])
    add("make_task", "T", lambda v: lnn.make_task("digits", v), [5])
    add("adding.batch", "batch_size", lambda v: _task().batch(v), SIZE_BAD)
    # trainer
    add("Trainer", "batch_size", lambda v: _trainer().__class__(*_targs(), batch_size=v), SIZE_BAD)
    add(
        "Trainer",
        "rng",
        lambda v: _trainer(**{}).__class__(*_targs(), batch_size=2, rng=v),
        RNG_BAD,
    )
    add("Trainer", "callbacks", lambda v: _trainer(callbacks=v), [[1], 3, lnn.RecordRecurrent()])
    add("Trainer", "eval_every", lambda v: _trainer(eval_every=v), ["3", 2.5, True, NAN, 0, -1])
    add("Trainer", "checkpoint", lambda v: _trainer(checkpoint=v), [3, 2.5, ["a"]])
    add(
        "Trainer",
        "checkpoint_every",
        lambda v: _trainer(checkpoint="x.npz", checkpoint_every=v),
        [0, -1, "3", 1.5],
    )
    add("Trainer", "threads", lambda v: _trainer(threads=v), [0, -1, "2", 1.5, True])
    add("Trainer", "model", lambda v: lnn.Trainer(v, *_targs()[1:], batch_size=2), [3, "m"])
    add("Trainer.fit", "steps", lambda v: _trainer().fit(v, progress=False), [-1, 2.5, "3", True])
    add("Trainer.fit", "progress", lambda v: _trainer().fit(1, progress=v), BOOL_BAD)
    add(
        "Trainer.fit",
        "time_limit",
        lambda v: _trainer().fit(1, progress=False, time_limit=v),
        POS_BAD[:-2],
    )
    add("Trainer.evaluate", "batch_size", lambda v: _trainer().evaluate(batch_size=v), SIZE_BAD)
    add(
        "History.smoothed_loss",
        "window",
        lambda v: lnn.History(loss=[1.0, 2.0]).smoothed_loss(v),
        SIZE_BAD,
    )
    add("History.plot", "window", lambda v: lnn.History(loss=[1.0]).plot(window=v), [0, -1, "3"])
    add("History.from_dict", "d", lambda v: lnn.History.from_dict(v), [[1], "x", None])
    add("recurrent_matrix", "model", lambda v: lnn.recurrent_matrix(v), [3, "m", None])
    add("RecordRecurrent", "every", lambda v: lnn.RecordRecurrent(v), SIZE_BAD)
    add("RecordRecurrent", "eigenvalues", lambda v: lnn.RecordRecurrent(eigenvalues=v), BOOL_BAD)
    add("build_model", "hidden", lambda v: lnn.build_model(_task(), hidden=v), SIZE_BAD)
    add("build_model", "dtype", lambda v: lnn.build_model(_task(), dtype=v), DTYPE_BAD)
    add("build_model", "rng", lambda v: lnn.build_model(_task(), rng=v), RNG_BAD)
    add("build_model", "task", lambda v: lnn.build_model(v), [3, "adding"])
    add("make_trainer", "optimizer", lambda v: lnn.make_trainer(_task(), optimizer=v), ["lbfgs", 3])
    add("make_trainer", "lr", lambda v: lnn.make_trainer(_task(), lr=v), POS_BAD)
    add("make_trainer", "lr_orth", lambda v: lnn.make_trainer(_task(), lr_orth=v), POS_BAD[:-2])
    add(
        "make_trainer",
        "cell_options",
        lambda v: lnn.make_trainer(_task(), cell_options=v),
        [[1], "x"],
    )
    add(
        "Trainer",
        "batch_size",
        lambda v: lnn.make_trainer(_task(), hidden=2, batch_size=v),
        SIZE_BAD,
    )
    add("train", "steps", lambda v: lnn.train(_task(), steps=v), [-1, 2.5, "3"])
    add("train", "progress", lambda v: lnn.train(_task(), steps=0, progress=v), BOOL_BAD)
    # checkpoints and runs
    add("save", "path", lambda v: lnn.save(v, _trainer()), PATH_BAD)
    add("save", "trainer", lambda v: lnn.save("x.npz", v), [3, None, "t"])
    add("load", "path", lambda v: lnn.load(v), PATH_BAD)
    add("load", "trainer", lambda v: lnn.load("nofile.npz", v), [3, "t"])
    add("load", "task", lambda v: lnn.load("nofile.npz", task=v), [3, "t"])
    add("read_checkpoint", "path", lambda v: lnn.read_checkpoint(v), PATH_BAD)
    add("Snapshots", "directory", lambda v: lnn.Snapshots(v, 1), PATH_BAD)
    add("Snapshots", "every", lambda v: lnn.Snapshots("d", v), SIZE_BAD)
    add("Snapshots", "names", lambda v: lnn.Snapshots("d", 1, names=v), [3, [1]])
    add(
        "weight_matrices",
        "names",
        lambda v: lnn.weight_matrices(_trainer(), names=v),
        [3, [1], "rnn.cell.V"],
    )
    add("analyze_run", "npts", lambda v: lnn.analyze_run(".", npts=v), [*SIZE_BAD, 1])
    add("analyze_run", "powers", lambda v: lnn.analyze_run(".", powers=v), SIZE_BAD)
    add("analyze_run", "tol", lambda v: lnn.analyze_run(".", tol=v), POS_BAD)
    add("analyze_run", "progress", lambda v: lnn.analyze_run(".", progress=v), BOOL_BAD)
    add("analyze_run", "param", lambda v: lnn.analyze_run(".", param=v), [3, ["W"]])
    add("analyze_run", "at", lambda v: lnn.analyze_run(".", at=v), [3, "ab", [1.5], [-1]])
    add("analyze_run", "eps", lambda v: lnn.analyze_run(".", eps=v), ["x", [[1e-2]]])
    add("analyze_run", "rng", lambda v: lnn.analyze_run(".", rng=v), RNG_BAD)
    add("analyze_run", "run_dir", lambda v: lnn.analyze_run(v), PATH_BAD)
    return c


def _targs():
    task = _task()
    model = lnn.build_model(task, "tanh", hidden=3, dtype=np.float64, rng=0)
    return model, task.loss(), lnn.SGD(0.1), task


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("where,arg,call,value", _cases())
def test_every_public_option_is_checked_and_named(where, arg, call, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((TypeError, ValueError)) as info:
        call(value)
    msg = str(info.value)
    assert msg.startswith(f"{where}:") or f"{where}:" in msg, msg
    assert arg in msg, msg
    assert not isinstance(info.value, (ZeroDivisionError, AttributeError, KeyError, IndexError))


# ---------------------------------------------------------------------------------------
# the issue's reproducers, one test each
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape,what", [((0, 2, 3), "T = 0"), ((2, 0, 3), "batch size 0")])
def test_recurrent_layers_refuse_an_empty_sequence_or_batch_by_name(cell, shape, what):
    rnn = lnn.RNN(lnn.make_cell(cell, 3, 4, rng=0))
    name = type(rnn.cell).__name__
    with pytest.raises(ValueError, match=rf"^{name}: x must hold at least one .*{what}"):
        rnn.forward(np.ones(shape, "f4"))
    tokens = np.zeros(shape[:2], dtype=int)
    with pytest.raises(ValueError, match=rf"^{name}: x must hold at least one"):
        rnn.forward(tokens)


@pytest.mark.parametrize(
    "loss,pred,target",
    [
        (lnn.SoftmaxCrossEntropy, np.ones((0, 3)), np.zeros(0, int)),
        (lnn.MSE, np.ones((0, 3)), np.ones((0, 3))),
        (lnn.SigmoidBinaryCrossEntropy, np.ones((0, 3)), np.ones((0, 3))),
    ],
)
def test_losses_on_an_empty_batch(loss, pred, target):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: empty batch"):
        loss()(pred, target)
    value, grad = loss(reduction="sum")(pred, target)  # the documented empty sum
    assert value == 0.0 and grad.shape == pred.shape


def test_digits_test_fraction_zero_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^digits: test_fraction must be in \(0, 1\)"):
        lnn.digits(test_fraction=0)


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros((0, 4, 2)), np.zeros(0, int), "x_train must hold at least one example"),
        (np.zeros((3, 0, 2)), np.zeros(3, int), "x_train must have at least one time step"),
        (np.zeros((0, 4), int), np.zeros(0, int), "x_train must hold at least one example"),
    ],
)
def test_array_task_refuses_empty_data(x, y, match):
    with pytest.raises(ValueError, match=rf"^array_task: {match}"):
        lnn.array_task(x, y)


def test_sequential_names_the_layer_that_does_not_fit():
    with pytest.raises(ValueError, match=r"layer '1' \(Dense\(5, 2\)\) expects 5 .*'0'.* 4"):
        lnn.Sequential([lnn.Dense(3, 4), lnn.Dense(5, 2)])
    # a mismatch only visible at run time (an activation between) is named too
    net = lnn.Sequential({"a": lnn.Dense(3, 4), "b": lnn.Dense(4, 2)})
    net.layers["b"] = lnn.Dense(5, 2)
    with pytest.raises(ValueError, match=r"^Sequential: layer 'b' \(Dense\(5, 2\)\) expects 5"):
        net.forward(np.ones((2, 3)))
    # the first layer's input problem names the layer and the argument
    with pytest.raises(ValueError, match=r"^Sequential: input of layer 'a': Dense: x must have 3"):
        net.forward(np.ones((2, 7)))


def test_truthy_strings_are_refused():
    cell = lnn.make_cell("tanh", 3, 4)
    with pytest.raises(TypeError, match=r"^RNN: return_sequences must be True or False"):
        lnn.RNN(cell, return_sequences="no")
    with pytest.raises(TypeError, match=r"^RecordRecurrent: eigenvalues must be True or False"):
        lnn.RecordRecurrent(eigenvalues="no")
    with pytest.raises(TypeError, match=r"^digits: permute must be True or False"):
        lnn.digits(permute="no")


def test_schedules_and_smoothing_refuse_meaningless_values():
    for every in (0, -1):
        with pytest.raises(ValueError, match=r"^exponential_schedule: every"):
            lnn.exponential_schedule(0.5, every=every)
    for gamma in (NAN, -1):
        with pytest.raises(ValueError, match=r"^step_schedule: gamma"):
            lnn.step_schedule([1], gamma=gamma)
    with pytest.raises(TypeError, match=r"^step_schedule: milestones\[0\]"):
        lnn.step_schedule(["a"])
    with pytest.raises(ValueError, match=r"^cosine_schedule: floor"):
        lnn.cosine_schedule(10, floor=NAN)
    h = lnn.History(loss=[1.0, 2.0, 3.0])
    for window in (0, -1):
        with pytest.raises(ValueError, match=r"^History.smoothed_loss: window"):
            h.smoothed_loss(window)
    assert h.smoothed_loss(2).tolist() == [1.0, 1.5, 2.5]


def test_wrong_option_types_from_the_issue():
    with pytest.raises(TypeError, match=r"^Adam: betas must be a pair"):
        lnn.Adam(betas=(0.9,))
    with pytest.raises(TypeError, match=r"^SGD: groups must be a dict"):
        lnn.SGD(0.1, groups=[1, 2])
    with pytest.raises(TypeError, match=r"^array_task: info must be"):
        lnn.array_task(_X, _Y, info=[1])
    with pytest.raises(TypeError, match=r"^RNNCell: recurrent_options must be a dict"):
        lnn.RNNCell(3, 4, recurrent_options=[1])
    with pytest.raises(TypeError, match=r"^MSE: target must hold real numbers"):
        lnn.MSE()(np.ones(3), "abc")
    with pytest.raises(TypeError, match=r"^array_task: baseline must be a real number"):
        lnn.array_task(_X, _Y, baseline="x")


# ---------------------------------------------------------------------------------------
# shapes are never reinterpreted
# ---------------------------------------------------------------------------------------


def test_mse_refuses_a_transposed_target():
    P = np.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match=r"^MSE: target must have the shape of pred \(2, 3\)"):
        lnn.MSE().forward(P, P.T)
    assert lnn.MSE().forward(P, P)[0] == 0.0


@pytest.mark.parametrize("k", [None, 1, 3])
def test_array_task_sequence_mse_targets_are_time_major(k):
    rng = np.random.default_rng(0)
    N, T = 6, 4
    x = rng.standard_normal((N, T, 2))
    y = rng.standard_normal((N, T) if k is None else (N, T, k))
    task = lnn.array_task(x, y, loss="mse", sequence_output=True)
    kk = 1 if k is None else k
    assert task.output_size == kk and task.T == T
    xb, yb = task.batch(3, rng=1)
    assert xb.shape == (T, 3, 2) and yb.shape == (T, 3, kk)
    # the batch target of each example is that example's y, time-major
    for b in range(3):
        n = int(np.flatnonzero((x == xb[:, b][None]).all(axis=(1, 2)))[0])
        np.testing.assert_array_equal(yb[:, b], y[n].reshape(T, kk))
    # a perfect prediction scores 0, a model's prediction has the target's shape
    assert task.loss()(yb.copy(), yb)[0] == 0.0
    _, ye = task.eval_data()
    assert ye.shape == (T, N, kk) and task.loss()(ye.copy(), ye)[0] == 0.0
    model = lnn.build_model(task, "tanh", hidden=3, dtype=np.float64, rng=0)
    pred, _ = model.forward(xb)
    assert pred.shape == yb.shape


def test_array_task_sequence_targets_need_the_time_axis():
    x = np.zeros((3, 4, 2))
    with pytest.raises(ValueError, match=r"^array_task: with sequence_output, y_train must have"):
        lnn.array_task(x, np.zeros((3, 5)), loss="mse", sequence_output=True)
    with pytest.raises(ValueError, match=r"^array_task: with sequence_output, y_train must have"):
        lnn.array_task(x, np.zeros((3, 5), int), sequence_output=True)
    with pytest.raises(ValueError, match=r"^array_task: y_test must have per-example shape"):
        lnn.array_task(x, np.zeros((3, 2)), x, np.zeros((3, 3)), loss="mse")


@pytest.mark.parametrize(
    "layer,y_shape",
    [
        (lambda: lnn.Dense(3, 2, dtype=np.float64), (4, 2)),
        (lambda: lnn.Tanh(dtype=np.float64), (4, 3)),
        (lambda: lnn.ModReLU(3, dtype=np.float64), (4, 3)),
        (lambda: lnn.Dropout(0.5, dtype=np.float64), (4, 3)),
    ],
)
def test_backward_refuses_a_cotangent_of_another_shape(layer, y_shape):
    lay = layer()
    _, cache = lay.forward(np.ones((4, 3)), rng=0)
    bad = np.ones(y_shape[::-1])
    with pytest.raises(ValueError, match=r"\.backward: dy must have the shape of the forward"):
        lay.backward(cache, bad)


# ---------------------------------------------------------------------------------------
# empty batches through every layer; ndarray subclasses; float32
# ---------------------------------------------------------------------------------------


def _layers(dtype):
    """(name, layer, input of 2 rows) for every layer type."""
    return [
        ("Dense", lnn.Dense(3, 2, dtype=dtype, rng=0), np.ones((2, 3))),
        ("Dense-3d", lnn.Dense(3, 2, dtype=dtype, rng=0), np.ones((2, 5, 3))),
        ("Embedding", lnn.Embedding(4, 2, dtype=dtype, rng=0), np.array([0, 3])),
        ("OneHot", lnn.OneHot(4, dtype=dtype), np.array([1, 2])),
        ("Tanh", lnn.Tanh(dtype=dtype), np.ones((2, 3))),
        ("ReLU", lnn.ReLU(dtype=dtype), np.ones((2, 3))),
        ("Sigmoid", lnn.Sigmoid(dtype=dtype), np.ones((2, 3))),
        ("ModReLU", lnn.ModReLU(4, dtype=dtype, rng=0), np.ones((2, 4))),
        ("ModReLU-pairs", lnn.ModReLU(4, complex_pairs=True, dtype=dtype, rng=0), np.ones((2, 4))),
        ("Dropout", lnn.Dropout(0.5, dtype=dtype), np.ones((2, 3))),
        (
            "Sequential",
            lnn.Sequential(
                [
                    lnn.Dense(3, 4, dtype=dtype, rng=0),
                    lnn.Tanh(dtype=dtype),
                    lnn.Dense(4, 2, dtype=dtype, rng=1),
                ]
            ),
            np.ones((2, 3)),
        ),
    ]


@pytest.mark.parametrize(
    "i", range(len(_layers(np.float64))), ids=[n for n, *_ in _layers(np.float64)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_takes_an_empty_batch(i, dtype):
    name, layer, x = _layers(dtype)[i]
    x0 = x[:0] if x.dtype.kind in "iu" else x[:0].astype(np.float32)
    y, cache = layer.forward(x0, rng=0)
    y2, _ = layer.forward(x, rng=0)
    assert y.shape == (0, *y2.shape[1:]) and y.dtype == dtype
    dx, grads = layer.backward(cache, np.zeros(y.shape, dtype))
    if dx is not None:
        assert dx.shape == x0.shape and dx.dtype == dtype
    params = layer.params()
    for k, g in grads.items():
        assert g.shape == params[k].shape and g.dtype == dtype
        assert not g.any(), (name, k)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize(
    "i", range(len(_layers(np.float64))), ids=[n for n, *_ in _layers(np.float64)]
)
def test_layers_take_np_matrix_and_refuse_masked_arrays(i):
    _name, layer, x = _layers(np.float64)[i]
    if x.ndim == 2:  # np.matrix is 2-D only; masked arrays of every rank are refused
        y_ref, _ = layer.forward(x, train=False)
        y, _ = layer.forward(np.asmatrix(x), train=False)
        assert type(y) is np.ndarray
        np.testing.assert_array_equal(y, y_ref)
    with pytest.raises(ValueError, match=r"masked array"):
        layer.forward(np.ma.masked_array(x, mask=np.zeros(x.shape, bool)), train=False)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_losses_and_array_task_take_np_matrix_and_refuse_masked_arrays():
    P = np.arange(6.0).reshape(2, 3)
    for loss, tgt in (
        (lnn.MSE(), P + 1),
        (lnn.SigmoidBinaryCrossEntropy(), np.full((2, 3), 0.5)),
    ):
        ref = loss(P, tgt)
        v, g = loss(np.asmatrix(P), np.asmatrix(tgt))
        assert v == ref[0] and type(g) is np.ndarray
        with pytest.raises(ValueError, match=rf"^{type(loss).__name__}: pred is a masked array"):
            loss(np.ma.masked_array(P), tgt)
        with pytest.raises(ValueError, match=rf"^{type(loss).__name__}: target is a masked array"):
            loss(P, np.ma.masked_array(tgt))
    v, _ = lnn.SoftmaxCrossEntropy()(np.asmatrix(P), np.array([0, 2]))
    assert math.isfinite(v)
    y2 = np.asmatrix(np.arange(6.0).reshape(3, 2))
    task = lnn.array_task(_X, y2, loss="mse")
    assert task.output_size == 2 and type(task.batch(2, rng=0)[1]) is np.ndarray
    with pytest.raises(ValueError, match=r"^array_task: x_train is a masked array"):
        lnn.array_task(np.ma.masked_array(_X), _Y)


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_keeps_float32(cell):
    rnn = lnn.RNN(lnn.make_cell(cell, 3, 4, rng=0), return_sequences=False)
    y, cache = rnn.forward(np.ones((3, 2, 3), np.float32))
    dx, grads = rnn.backward(cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    params = rnn.params()
    assert all(g.dtype == params[k].dtype for k, g in grads.items())


@pytest.mark.parametrize(
    "loss,target",
    [
        (lnn.MSE, np.ones((2, 3), np.float32)),
        (lnn.SigmoidBinaryCrossEntropy, np.full((2, 3), 0.5, np.float32)),
        (lnn.SoftmaxCrossEntropy, np.array([0, 2])),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_losses_keep_float32(loss, target, masked):
    pred = np.zeros((2, 3), np.float32)
    mask = np.ones(target.shape) if masked else None
    value, grad = loss()(pred, target, mask)
    assert isinstance(value, float) and grad.dtype == np.float32


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------


@given(
    rows=st.integers(0, 3),
    lead=st.sampled_from([(), (2,), (0,)]),
    fin=st.integers(1, 4),
    fout=st.integers(1, 4),
    f32=st.booleans(),
)
def test_dense_shapes_and_dtype_property(rows, lead, fin, fout, f32):
    dt = np.float32 if f32 else np.float64
    layer = lnn.Dense(fin, fout, dtype=dt, rng=0)
    x = np.ones((rows, *lead, fin))
    y, cache = layer.forward(x)
    assert y.shape == (rows, *lead, fout) and y.dtype == dt
    dx, g = layer.backward(cache, np.ones_like(y))
    assert dx.shape == x.shape and g["W"].shape == (fout, fin)
    np.testing.assert_allclose(g["b"], np.full(fout, y.size // fout), rtol=0)


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    other=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    kind=st.sampled_from(["MSE", "SigmoidBinaryCrossEntropy"]),
)
def test_loss_targets_of_another_shape_are_refused_property(shape, other, kind):
    loss = getattr(lnn, kind)()
    pred = np.zeros(shape)
    target = np.full(other, 0.5)
    if other == shape:
        assert math.isfinite(loss(pred, target)[0])
    else:
        with pytest.raises(ValueError, match=rf"^{kind}: target must have the shape of pred"):
            loss(pred, target)


@given(
    value=st.one_of(
        st.text(max_size=3),
        st.integers(-2, 2),
        st.floats(allow_nan=True),
        st.none(),
        st.lists(st.booleans(), max_size=2),
    )
)
def test_bool_options_accept_only_bools_property(value):
    for where, call in (
        ("RNN", lambda v: lnn.RNN(lnn.TanhRNNCell(2, 2), return_sequences=v)),
        ("RecordRecurrent", lambda v: lnn.RecordRecurrent(eigenvalues=v)),
        ("Dense", lambda v: lnn.Dense(2, 2, bias=v)),
        ("SGD", lambda v: lnn.SGD(0.1, momentum=0.5, nesterov=v)),
    ):
        with pytest.raises(TypeError, match=rf"^{where}: .* must be True or False"):
            call(value)


def test_nested_sequential_and_token_layers_are_named():
    inner = lnn.Sequential({"fc": lnn.Dense(4, 3), "act": lnn.Tanh()})
    net = lnn.Sequential({"enc": lnn.Dense(3, 4), "body": inner, "out": lnn.Dense(3, 2)})
    inner.layers["act"] = lnn.Dense(5, 3)  # a mismatch inside the nested container
    with pytest.raises(ValueError, match=r"^Sequential: layer 'body\.act' \(Dense\(5, 3\)\)"):
        net.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^Sequential: layer 'e' \(Embedding\(4, 2\)\) takes"):
        lnn.Sequential({"a": lnn.Dense(3, 4), "e": lnn.Embedding(4, 2)}).forward(np.ones((2, 3)))


def test_make_cell_names_an_unknown_option():
    with pytest.raises(TypeError, match=r"^make_cell: unknown option\(s\) \['activation'\]"):
        lnn.make_cell("tanh", 2, 3, activation="relu")
    with pytest.raises(
        TypeError, match=r"^make_cell: unknown option\(s\) \['foo'\] for cell 'gru'"
    ):
        lnn.make_cell("gru", 2, 3, foo=1)


@pytest.mark.parametrize("arg", ["params", "grads", "manifolds"])
def test_optimizer_step_checks_its_dicts(arg):
    kw = {"params": {"w": np.ones(2)}, "grads": {"w": np.ones(2)}, "manifolds": None}
    kw[arg] = [1.0]
    with pytest.raises(TypeError, match=rf"^SGD\.step: {arg} must be a dict"):
        lnn.SGD(0.1).step(**kw)


_JUNK = st.one_of(
    st.text(max_size=3),
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-1, 2), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(-1, 2), max_size=2),
    st.tuples(st.floats(-1, 2)),
)

_CHEAP = {
    "Dense",
    "Embedding",
    "OneHot",
    "Activation",
    "ModReLU",
    "Dropout",
    "RNN",
    "LSTMCell",
    "GRUCell",
    "MSE",
    "SGD",
    "Adam",
    "RMSprop",
    "exponential_schedule",
    "step_schedule",
    "cosine_schedule",
    "copy_memory",
    "adding",
    "array_task",
    "History.smoothed_loss",
    "RecordRecurrent",
}


def _cheap_options():
    seen = {}
    for p in _cases():
        where, arg, call, _ = p.values
        if where in _CHEAP and arg not in ("x", "x_train", "y_train", "pred", "target", "mask"):
            seen.setdefault((where, arg), call)
    return [pytest.param(w, a, c, id=f"{w}.{a}") for (w, a), c in seen.items()]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("where,arg,call", _cheap_options())
@given(value=_JUNK)
def test_any_option_value_is_accepted_or_refused_by_name_property(where, arg, call, value):
    """Whatever value an option gets, the call succeeds or raises TypeError/ValueError
    naming the function and the argument (never another exception)."""
    try:
        call(value)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        assert f"{where}:" in msg and arg in msg, msg


@pytest.mark.parametrize("return_sequences", [True, False])
def test_model_backward_refuses_a_cotangent_of_another_shape(return_sequences):
    task = lnn.copy_memory(2, n_copy=2) if return_sequences else lnn.adding(5)
    model = lnn.build_model(task, "tanh", hidden=3, rng=0)
    x, _ = task.batch(2, rng=0)
    y, cache = model.forward(x)
    with pytest.raises(ValueError, match=r"^Sequential\.backward: dy must have the shape"):
        model.backward(cache, np.ones(y.shape[::-1]))
    rnn = model.layers["rnn"]
    h, c = rnn.forward(x)
    with pytest.raises(ValueError, match=r"^RNN\.backward: dy must have the shape"):
        rnn.backward(c, np.ones((*h.shape, 1)))
    _, grads = model.backward(cache, np.ones_like(y))
    assert set(grads) == set(model.params())


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_recurrent_tokens_as_np_matrix_and_masked():
    rnn = lnn.RNN(lnn.make_cell("gru", 4, 3, rng=0))
    tokens = np.array([[0, 3], [2, 1], [1, 1]])
    ref, _ = rnn.forward(tokens)
    y, _ = rnn.forward(np.asmatrix(tokens))
    np.testing.assert_array_equal(y, ref)
    with pytest.raises(ValueError, match=r"^GRUCell: x is a masked array"):
        rnn.forward(np.ma.masked_array(tokens))


@pytest.mark.parametrize("steps", [[], "ab", 3, [1.5], [None]])
def test_run_analysis_plot_steps_are_checked(steps):
    from lowdisp.nn._runs import _example_analysis

    res = _example_analysis()
    with pytest.raises((TypeError, ValueError), match=r"^RunAnalysis\.plot_pseudospectra: steps"):
        res.plot_pseudospectra(steps)
    with pytest.raises(TypeError, match=r"^RunAnalysis\.save: out must be a path"):
        res.save(3)


@pytest.mark.parametrize(
    "schedule",
    [
        lnn.constant_schedule(),
        lnn.exponential_schedule(0.5, every=2),
        lnn.step_schedule([2], 0.5),
        lnn.cosine_schedule(10, warmup=2),
    ],
    ids=repr,
)
@pytest.mark.parametrize("step", [-1, "a", 1.5, None, True])
def test_schedules_check_the_step(schedule, step):
    with pytest.raises((TypeError, ValueError), match=rf"^{schedule.name}\(\.\.\.\): step"):
        schedule(step)
    assert math.isfinite(schedule(3)) and schedule(3) > 0
