"""
Recurrent batch normalization: BN-LSTM vs LSTM on sequential digits
===================================================================

Cooijmans et al. (ICLR 2017) batch-normalize the recurrent term, the input
term and the cell state of an LSTM, with separate statistics for every time
step, and report faster convergence on pixel-by-pixel MNIST. This example
trains an LSTM and a BN-LSTM (``lnn.BNLSTMCell``: per-step statistics,
γ₀ = 0.1, noise 0.1 on h₀) with the same optimizer setting (RMSprop lr 1e-3
momentum 0.9, clipping at norm 1) on the 8x8 digits fed one pixel per step
(64 steps), and plots the validation accuracy against training steps. Before
each evaluation the BN cell's population statistics are recomputed from a
few training batches (``lnn.refresh_bn_statistics``): the exponential
running averages lag behind the weights early in training. The right panel
shows why statistics must be kept per step: the population standard
deviation of the recurrent term ``W_h h`` changes by orders of magnitude
over the first steps of the sequence (the leading pixels of the digits are
constant, so its batch variance there comes only from the noise on h₀).
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

STEPS, EVERY, HIDDEN, BATCH = 200, 25, 32, 50
task = lnn.digits(validation_fraction=0.15)
curves = {}
models = {}
for label, cell, opts in (
    ("LSTM", "lstm", {}),
    ("BN-LSTM", "bn_lstm", {"t_max": task.T, "h0_noise": 0.1}),
):
    model = lnn.build_model(task, cell, hidden=HIDDEN, rng=0, **opts)
    opt = lnn.RMSprop(lr=1e-3, momentum=0.9, clip_norm=1.0)
    trainer = lnn.Trainer(model, task.loss(), opt, task, batch_size=BATCH, rng=1)
    refresh = np.random.default_rng(2)
    acc = []
    for _ in range(STEPS // EVERY):
        trainer.fit(EVERY, progress=False)
        if cell == "bn_lstm":
            xs = [task.batch(BATCH, rng=refresh)[0] for _ in range(5)]
            lnn.refresh_bn_statistics(model, xs, rng=refresh)
        acc.append(100 * trainer.evaluate(split="validation")["accuracy"])
    curves[label], models[label] = acc, model
    print(f"{label:8s} validation accuracy after {STEPS} steps: {acc[-1]:.1f}%")

# %%
# Validation accuracy against steps, and the per-step population statistics.
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
steps = np.arange(EVERY, STEPS + 1, EVERY)
for label, acc in curves.items():
    ax.plot(steps, acc, marker="o", label=label)
ax.set_xlabel("training steps")
ax.set_ylabel("validation accuracy %")
ax.set_title(f"sequential digits (64 steps), {HIDDEN} units")
ax.legend()
rv = models["BN-LSTM"].params()["rnn.cell.bn_h.running_var"]
ax2.semilogy(np.sqrt(rv).mean(axis=1))
ax2.set_xlabel("time step t")
ax2.set_title("population std of W_h h, mean over units")
plt.show()
