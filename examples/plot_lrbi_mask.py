"""
Low-rank binary indexing: a pruning mask stored as two binary factors
=====================================================================

Lee, Kwon, Kim, Kapoor and Wei (2019) prune a weight matrix with a
fine-grained mask that is, tile by tile, the Boolean product of two binary
matrices ``I_p`` (m_t x k) and ``I_z`` (k x n_t): the index then costs
``k (m_t + n_t)`` bits per tile, where CSR needs about ``log2 n`` bits per
kept weight. This example trains a small MLP on scikit-learn's digits for a
few epochs, prunes its first weight matrix (128 x 64) to 80% sparsity by
magnitude and by :func:`lowdisp.nn.lrbi_mask` at several ranks and tiles, and
shows the masks with their index bits, then the fraction of ``sum |W|`` each
keeps against its index bits. ``lowdisp reproduce lrbi`` retrains the pruned
nets and compares accuracy on MNIST.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

import lowdisp.nn as lnn

task = lnn.digits(flat=True, validation_fraction=0.15, standardize=True)
model = lnn.build_mlp(task, (128,), rng=0)
trainer = lnn.Trainer(model, task.loss(), lnn.SGD(0.01, momentum=0.9), task, batch_size=50, rng=1)
trainer.fit(epochs=5, progress=False)
W = model.params()["fc0.W"].astype(np.float64)  # (128, 64)
SPARSITY = 0.8

a = np.abs(W).ravel()
keep = a.size - round(SPARSITY * a.size)
magnitude = np.zeros(a.size, dtype=bool)
magnitude[np.argsort(a)[a.size - keep :]] = True
magnitude = magnitude.reshape(W.shape)
bits_mp = lnn.index_bits(magnitude)

results = {
    f"k={k}, {'whole' if t is None else f'{t[0]}x{t[1]} tiles'}": lnn.lrbi_mask(
        W, sparsity=SPARSITY, rank=k, tile=t
    )
    for k, t in ((2, None), (8, None), (2, (32, 32)))
}

# %%
# The masks (black: kept). Magnitude pruning keeps the largest weights
# wherever they are; an LRBI mask is a union of k "rectangles" (rows of I_p
# times columns of I_z) per tile.
fig, axes = plt.subplots(1, 4, figsize=(11, 3.6))
axes[0].imshow(magnitude, cmap="gray_r", interpolation="nearest")
axes[0].set_title(f"magnitude\nCSR {bits_mp.csr} bits", fontsize=9)
for ax, (name, res) in zip(axes[1:], results.items()):
    ax.imshow(res.mask, cmap="gray_r", interpolation="nearest")
    ax.set_title(
        f"LRBI {name}\n{res.bits.lrbi} bits, kept |W| {res.kept_magnitude:.2f}", fontsize=9
    )
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"fc0.W of an MLP on digits, sparsity {SPARSITY:g}", fontsize=10)
fig.tight_layout()

# %%
# Kept magnitude against index bits, for ranks 1 to 16 on the whole matrix
# and on 32 x 32 tiles. Magnitude pruning keeps the most (it is the upper
# bound for any mask of that size) at the price of CSR's bits.
fig, ax = plt.subplots(figsize=(6.2, 4.0))
for tile, marker in ((None, "o-"), ((32, 32), "s-")):
    pts = [lnn.lrbi_mask(W, sparsity=SPARSITY, rank=k, tile=tile) for k in (1, 2, 4, 8, 16)]
    ax.plot(
        [r.bits.lrbi for r in pts],
        [r.kept_magnitude for r in pts],
        marker,
        label="LRBI " + ("whole matrix" if tile is None else "32x32 tiles"),
    )
ax.axhline(
    np.abs(W)[magnitude].sum() / np.abs(W).sum(),
    color="k",
    ls="--",
    label=f"magnitude (CSR: {bits_mp.csr} bits)",
)
ax.set_xscale("log")
ax.xaxis.set_minor_formatter(NullFormatter())
ax.set_xlabel("index bits")
ax.set_ylabel("fraction of sum |W| kept")
ax.set_title(f"128 x 64 weight matrix, sparsity {SPARSITY:g}", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
