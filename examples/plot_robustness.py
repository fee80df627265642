"""
Robustness of trained recurrent networks (Sengupta & Friston 2018)
==================================================================

Sengupta and Friston observe that recurrent networks at high accuracy can be
fragile to tiny input perturbations, that projecting the recurrent matrix onto
the unit disk makes a network stable but not robust, and that training makes
the recurrent matrix non-normal, which its ε-pseudospectra reveal. This
example trains two tanh RNNs on sequential digits (8 steps of one image row)
with the same optimizer, steps and seed: one plain, one whose recurrent matrix
is projected onto the unit disk after every step
(``regularizers={"unit_disk": True}``). For each,
:func:`lowdisp.nn.robustness_report` measures the test accuracy under L∞ input
perturbations of size ε, random signs (dashed) and the first-order worst case
``ε·sign(∂L/∂x)`` (FGSM, solid) from the BPTT input gradient, the growth of an
initial-state perturbation along the sequence, and the ε-pseudospectra of the
trained recurrent matrix (dotted: the unit circle).
``lowdisp reproduce robustness`` runs the comparison with scoRNN and several
seeds.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

task = lnn.digits(pixels_per_step=8)
models = {
    "tanh RNN": {},
    "unit-disk RNN": {"regularizers": {"unit_disk": True}},
}
fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
theta = np.linspace(0, 2 * np.pi, 200)
for row, (name, options) in enumerate(models.items()):
    cell = lnn.make_cell("tanh", 8, 32, dtype=np.float64, rng=0, **options)
    model = lnn.Sequential(
        [lnn.RNN(cell, return_sequences=False), lnn.Dense(32, 10, dtype=np.float64, rng=1)]
    )
    trainer = lnn.Trainer(model, task.loss(), lnn.Adam(1e-2), task, batch_size=50, rng=0)
    trainer.fit(steps=300, progress=False)
    x, y = task.eval_data()
    model.forward(x[:, :1], train=True, rng=0)  # let the unit-disk projection act on the last step
    report = lnn.robustness_report(
        model, task.loss(), x, y, eps=[0.02, 0.05, 0.1, 0.2], pseudo_eps=[0.01, 0.1], name=name
    )
    print(report.summary())
    report.plot(axes[row])
    axes[row, 2].plot(np.cos(theta), np.sin(theta), "k:", lw=0.8)
plt.show()
