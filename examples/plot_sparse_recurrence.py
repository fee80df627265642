"""
Structurally sparse recurrences: dense, block-diagonal and diagonal RNNs
=========================================================================

Van Keirsbilck, Keller and Yang (2019) ask whether a recurrent matrix needs
to be dense: with a diagonal (IndRNN-like) or block-diagonal recurrence the
mixing between units is left to the time-parallel input and output products,
and the sequential step gets much cheaper (O(B n) or O(B n²/g) instead of
O(B n²)). This example trains three tanh RNNs of the same hidden size on the
adding problem (Hochreiter & Schmidhuber; T = 20) with one optimizer setting:
``recurrent="dense"``, ``"block:8"`` and ``"diagonal"``. It prints the number
of recurrent weights, the final test loss against the predict-one baseline
(0.167), and the time per training step, and draws the loss curves next to
the block-diagonal recurrent matrix.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

T, HIDDEN, STEPS = 20, 64, 800
task = lnn.adding(T, n_eval=256)
runs = {}
for rec in ("dense", "block:8", "diagonal"):
    t0 = time.process_time()
    runs[rec] = lnn.train(
        task,
        "tanh",
        hidden=HIDDEN,
        steps=STEPS,
        optimizer="adam",
        lr=1e-2,
        rng=0,
        progress=False,
        cell_options={"recurrent": rec},
    )
    ms = (time.process_time() - t0) / STEPS * 1e3
    cell = runs[rec].model.layers["rnn"].cell
    n_rec = sum(v.size for k, v in cell.params().items() if k.startswith("W"))
    ev = runs[rec].evaluate()
    print(
        f"{rec:9s} recurrent weights {n_rec:5d}, test MSE {ev['loss']:.4f} "
        f"(baseline {ev['baseline']:.4f}), {ms:.1f} ms per step"
    )

# %%
# Loss curves (moving average over 20 steps) and the block-diagonal W.
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for rec, trainer in runs.items():
    trainer.history.plot(ax, label=rec, window=20)
ax.set_yscale("log")
ax.set_title(f"adding problem, T = {T}, hidden {HIDDEN}")
W = lnn.recurrent_matrix(runs["block:8"].model)
ax2.imshow(np.abs(W), cmap="magma")
ax2.set_title("|W| of the block:8 cell after training")
plt.show()
