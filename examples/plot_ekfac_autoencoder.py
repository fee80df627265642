"""
KFAC and EKFAC on a deep autoencoder (George et al. 2018)
=========================================================

EKFAC (George, Laurent, Bouthillier, Ballas and Vincent, NeurIPS 2018) keeps
KFAC's Kronecker-factored eigenbasis of each layer's Fisher block but re-fits
the scaling in that basis: a diagonal estimated from the per-example
gradients, cheap enough to update every step. Their benchmark is the deep
autoencoder of Hinton & Salakhutdinov (784-1000-500-250-30 and its mirror,
binary cross-entropy on the pixels), where both methods beat SGD with
momentum and Adam, and EKFAC beats KFAC. This example trains a small
autoencoder of the same shape (64-48-32-16-8 and mirror, ReLU, linear code)
on scikit-learn's 8 x 8 digits with the four optimizers of
:mod:`lowdisp.nn` (one seed, a fixed number of epochs, each optimizer's rate
and damping from a short trial on this problem) and plots the training loss
against epochs and against CPU time. ``lowdisp reproduce ekfac`` runs the
MNIST version with stated grids, several seeds and equal time budgets.
"""

import itertools
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

EPOCHS = 12
task = lnn.digits(flat=True)  # pixels in [0, 1]
x, _ = task.train_data()
x = x.astype(np.float32)
recon = lnn.array_task(x, x, flat=True, loss="mse", name="digits_autoencoder")
sizes = [64, 48, 32, 16, 8, 16, 32, 48, 64]


def autoencoder(seed):
    """Dense layers, ReLU after each but the code layer (index 3) and the output."""
    layers = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers[f"fc{i}"] = lnn.Dense(a, b, rng=[seed, i])
        if i not in (3, len(sizes) - 2):
            layers[f"act{i}"] = lnn.ReLU()
    return lnn.Sequential(layers)


class PerImageBCE(lnn.SigmoidBinaryCrossEntropy):
    """Binary cross-entropy on the pixel logits summed over the 64 pixels and
    averaged over the images (nats per image, the autoencoder papers' unit)."""

    def forward(self, pred, target, mask=None):
        value, cache = super().forward(pred, target, mask)
        return 64 * value, cache

    def backward(self, cache, dloss=1.0):
        return super().backward(cache, 64 * dloss)


loss = PerImageBCE()
optimizers = {  # rates (and damping) from a short trial on this problem
    "SGD momentum": lambda: lnn.SGD(0.01, momentum=0.9),
    "Adam": lambda: lnn.Adam(3e-3),
    "KFAC": lambda: lnn.KFAC(0.03, momentum=0.9, damping=1.0, refresh=20),
    "EKFAC": lambda: lnn.EKFAC(3e-3, momentum=0.9, damping=0.1, refresh=20),
}

curves = {}
for name, make in optimizers.items():
    model = autoencoder(0)
    trainer = lnn.Trainer(model, loss, make(), recon, batch_size=64, rng=1)
    epochs, seconds, losses = [0], [0.0], []
    out, _ = model.forward(x, train=False)
    losses.append(loss.forward(out, x)[0])
    cpu = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KFAC's one-time report of non-Dense layers
        for epoch in range(1, EPOCHS + 1):
            t0 = time.process_time()
            trainer.fit(epochs=1, progress=False)
            cpu += time.process_time() - t0
            out, _ = model.forward(x, train=False)
            epochs.append(epoch)
            seconds.append(cpu)
            losses.append(loss.forward(out, x)[0])
    curves[name] = (epochs, seconds, losses)
    print(f"{name:13s} loss {losses[-1]:6.2f} nats/image after {EPOCHS} epochs, {cpu:.2f} CPU s")

# %%
# Training loss (nats per image) against epochs and against CPU seconds.
fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for name, (epochs, seconds, losses) in curves.items():
    ax_e.plot(epochs, losses, marker="o", ms=3, label=name)
    ax_t.plot(seconds, losses, marker="o", ms=3, label=name)
ax_e.set_xlabel("epochs")
ax_t.set_xlabel("CPU seconds")
ax_e.set_ylabel("training loss (nats / image)")
ax_e.set_yscale("log")
for ax in (ax_e, ax_t):
    ax.grid(alpha=0.3)
ax_e.legend(fontsize=8)
fig.suptitle("digits autoencoder 64-48-32-16-8 + mirror, one seed", fontsize=10)
fig.tight_layout()
plt.show()
