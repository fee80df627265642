"""
An orthogonal RNN remembers, a tanh RNN does not: the copying memory task
=========================================================================

The copying memory task of Hochreiter and Schmidhuber (1997), as set up by
Arjovsky, Shah and Bengio (2016): read ten symbols, wait through :math:`T`
blank steps, then write the ten symbols back. A network that forgets can do no
better than guessing, the memoryless baseline :math:`10 \\log 8 / (T + 20)`.
This example trains two recurrent networks with the same optimizer, batch size
and number of steps at :math:`T = 30` (50 steps per sequence): a scoRNN-style
cell (scaled Cayley map, modReLU, Henaff initialization; Helfrich et al. 2018)
and a plain tanh RNN. The orthogonal cell copies the symbols; the tanh RNN
stays at the baseline. The loss curves are drawn with the baselines, and the
spectral radius of both trained recurrent matrices is printed.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

T, HIDDEN, STEPS = 30, 48, 300
task = lnn.copy_memory(T, n_eval=256)
print(task.describe())

runs = {
    "scaled Cayley (scoRNN)": lnn.train(
        task,
        "scaled_cayley",
        hidden=HIDDEN,
        steps=STEPS,
        rng=0,
        progress=False,
        cell_options={"recurrent_init": "henaff"},
    ),
    "tanh RNN": lnn.train(task, "tanh", hidden=HIDDEN, steps=STEPS, rng=0, progress=False),
}

# %%
# Final evaluation and the training curves (a moving average over 20 steps).
fig, ax = plt.subplots(figsize=(6, 4))
for name, trainer in runs.items():
    ev = trainer.evaluate()
    W = lnn.recurrent_matrix(trainer.model)
    radius = np.abs(np.linalg.eigvals(W)).max()
    print(
        f"{name:24s} loss {ev['loss']:.4f} (baseline {ev['baseline']:.4f}), "
        f"copy accuracy {ev['accuracy']:.2f}, spectral radius of W {radius:.3f}"
    )
    trainer.history.plot(ax, label=name, window=20)
ax.set_yscale("log")
ax.set_title(f"copying memory, T = {T}, hidden {HIDDEN}")
plt.show()
