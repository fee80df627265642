"""
Learned displacement operators in a single-hidden-layer net (Thomas et al. 2018)
================================================================================

Thomas, Gu, Dao, Rudra and Ré (NeurIPS 2018) replace the dense hidden layer of
a one-hidden-layer classifier by a matrix of low displacement rank and let the
network *learn* the displacement operators: subdiagonal (LDR-SD) or
tridiagonal (LDR-TD) ones, at rank r = 1. Their claim is that, at equal
parameter budgets, the learned operators beat the fixed ones (Toeplitz-like,
r = 4), which beat a low-rank layer. This example trains the same
single-hidden-layer net (structured 64 x 64 layer, ReLU, dense softmax
readout) on scikit-learn's 8 x 8 digits with every layer of
:class:`lowdisp.nn.StructuredDense` it compares, one set of hyperparameters
for all (the authors' SGD, lr 1e-3, momentum 0.9, batch 50, standardized
pixels, the test accuracy of the best validation epoch), and plots accuracy
against the number of weights of the hidden layer. ``lowdisp reproduce
thomas2018`` runs the full grid on MNIST with several seeds.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

EPOCHS = 20
task = lnn.digits(flat=True, validation_fraction=0.15, standardize=True)
n = task.input_size  # 64
print(task.describe())

MODELS = [  # (label, structure, rank)
    ("unconstrained", "unconstrained", None),
    ("LDR-SD r=1", "subdiagonal", 1),
    ("LDR-TD r=1", "tridiagonal", 1),
    ("Toeplitz-like r=1", "toeplitz_like", 1),
    ("Toeplitz-like r=4", "toeplitz_like", 4),
    ("low rank r=4", "low_rank", 4),
    ("circulant", "circulant", None),
]

results = []
for label, structure, rank in MODELS:
    kw = {} if rank is None else {"rank": rank}
    hidden = lnn.StructuredDense(n, n, structure=structure, rng=0, **kw)
    model = lnn.Sequential(
        {"hidden": hidden, "act": lnn.ReLU(), "readout": lnn.Dense(n, 10, rng=1)}
    )
    stop = lnn.EarlyStopping()  # evaluate every epoch, restore the best-validation weights
    trainer = lnn.Trainer(
        model,
        task.loss(),
        lnn.SGD(1e-3, momentum=0.9),
        task,
        batch_size=50,
        rng=2,
        callbacks=[stop],
    )
    trainer.fit(epochs=EPOCHS, progress=False)
    accuracy = 100 * trainer.evaluate()["accuracy"]
    weights = lnn.count_params(hidden) - hidden.params()["b"].size
    results.append((label, weights, accuracy))
    print(f"{label:18s} {weights:5d} hidden weights  test accuracy {accuracy:5.1f} %")

# %%
# Accuracy against the hidden layer's weights (log scale); the dense layer has
# n² = 4096.
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for label, weights, accuracy in results:
    ax.plot(weights, accuracy, "o", ms=8, label=label)
ax.set_xscale("log")
ax.set_xlabel("weights of the 64 x 64 hidden layer")
ax.set_ylabel("test accuracy %")
ax.set_title(f"digits, one seed, {EPOCHS} epochs of SGD (lr 1e-3, momentum 0.9)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8, loc="lower right")
ax.set_ylim(max(0.0, np.min([a for *_, a in results]) - 10), 100)
fig.tight_layout()
plt.show()
