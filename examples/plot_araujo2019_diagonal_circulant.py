"""
Deep diagonal-circulant layers at equal weight budgets (Araujo et al. 2019)
===========================================================================

Araujo, Negrevergne, Chevaleyre and Atif (2019) build weight matrices as
products of ``depth`` diagonal-circulant factors ``diag(d) C(c)``: 2 n weights
per factor, one FFT pair per product, and, they prove, enough depth to
represent any dense matrix of bounded rank. This example puts such a product
(:class:`lowdisp.nn.DiagonalCirculant` as in the paper's CIFAR-10 DCNNs:
a leaky ReLU of slope 0.5 after every factor, Rademacher ``d`` and
``c ~ N(0, 1/n)``) in the hidden layer of a one-hidden-layer classifier on
scikit-learn's 8 x 8 digits and compares it, depth by depth, with hidden
layers of exactly the same number of weights, 2 k n: a low-rank layer of rank
k, a Toeplitz-like layer of displacement rank k and a narrow dense layer of
width 2 k. Every net is trained the same way, with quick settings (SGD,
lr 1e-3, momentum 0.9, batch 50, best validation epoch);
``lowdisp reproduce araujo2019`` runs the full grid on MNIST with several
seeds and the paper's optimizer (Adam, lr 5e-5, batch 200).
"""

import matplotlib.pyplot as plt

import lowdisp.nn as lnn

EPOCHS, DEPTHS = 20, (1, 2, 4)
task = lnn.digits(flat=True, validation_fraction=0.15, standardize=True)
n = task.input_size  # 64


def hidden_block(family, k):
    """A hidden block with 2 k n weights, and its output width."""
    if family == "diagonal-circulant":
        return lnn.DiagonalCirculant(n, depth=k, relu_every=1, slope=0.5, init="gaussian", rng=0), n
    if family == "low rank":
        return lnn.StructuredDense(n, n, structure="low_rank", rank=k, rng=0), n
    if family == "Toeplitz-like":
        return lnn.StructuredDense(n, n, structure="toeplitz_like", rank=k, rng=0), n
    return lnn.Dense(n, 2 * k, rng=0), 2 * k  # narrow dense


FAMILIES = ("diagonal-circulant", "Toeplitz-like", "low rank", "narrow dense")
accuracy = {f: [] for f in FAMILIES}
for k in DEPTHS:
    for family in FAMILIES:
        block, width = hidden_block(family, k)
        model = lnn.Sequential(
            {"hidden": block, "act": lnn.ReLU(), "readout": lnn.Dense(width, 10, rng=1)}
        )
        trainer = lnn.Trainer(
            model,
            task.loss(),
            lnn.SGD(1e-3, momentum=0.9),
            task,
            batch_size=50,
            rng=2,
            callbacks=[lnn.EarlyStopping()],
        )
        trainer.fit(epochs=EPOCHS, progress=False)
        accuracy[family].append(100 * trainer.evaluate()["accuracy"])
        print(f"k = {k}  {family:19s} {2 * k * n:4d} weights  {accuracy[family][-1]:5.1f} %")

# %%
# Test accuracy against k (hidden-layer weights 2 k n).
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for family in FAMILIES:
    ax.plot([2 * k * n for k in DEPTHS], accuracy[family], "o-", label=family)
ax.set_xscale("log", base=2)
ax.set_xticks([2 * k * n for k in DEPTHS], [f"{2 * k * n}\n(k = {k})" for k in DEPTHS])
ax.set_xlabel("hidden-layer weights")
ax.set_ylabel("test accuracy %")
ax.set_title(f"digits, one seed, {EPOCHS} epochs, equal budgets per k")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
