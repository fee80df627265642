"""
Pseudospectra of a trained recurrent matrix
===========================================

Sengupta and Friston (2018) proposed to read the stability of a trained
recurrent network from the ε-pseudospectra of its recurrent matrix rather than
from its eigenvalues: an eigenvalue inside the unit disc whose ε-neighbourhood
reaches far outside it is one a small perturbation of the weights (or of the
state) can push into instability. This example trains a tanh RNN on a short
copying memory task and draws the pseudospectra
:math:`\\sigma_\\varepsilon(W) = \\{z : \\sigma_{\\min}(zI - W) \\le \\varepsilon\\}`
of its recurrent matrix before and after training, on the same grid and
levels, with the unit circle. Training pushes eigenvalues out of the unit
disc (the network is no longer a contraction), and the pseudospectra reach
further beyond the eigenvalues than the distance ε alone would give, the mark
of a non-normal matrix: the printed spectral radius :math:`\\rho(W)`,
ε-pseudospectral radius :math:`\\rho_{0.1}(W)` and relative departure from
normality compare the two matrices in numbers.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn
import lowdisp.spectral as sp

task = lnn.copy_memory(10, n_eval=256)
trainer = lnn.make_trainer(task, "tanh", hidden=32, rng=0)
W0 = lnn.recurrent_matrix(trainer.model).astype(np.float64)
trainer.fit(400, progress=False)
W1 = lnn.recurrent_matrix(trainer.model).astype(np.float64)
print("after training:", trainer.evaluate())

eps_levels = [1e-2, 3e-2, 1e-1, 3e-1]
re = np.linspace(-2.0, 2.0, 81)
im = np.linspace(-2.0, 2.0, 81)
panels = {"at initialization": W0, "after 400 steps": W1}
for name, W in panels.items():
    rho = np.abs(np.linalg.eigvals(W)).max()
    dep = sp.departure_from_normality(W, relative=True)
    rho_eps = sp.pseudospectral_radius(W, 0.1, rng=0).value
    print(f"{name:18s} ρ(W) = {rho:.3f}, ρ_0.1(W) = {rho_eps:.3f}, dep_F/‖W‖_F = {dep:.3f}")

# %%
# The same ε levels and grid for both matrices; the dashed line is the unit circle.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
circle = np.exp(1j * np.linspace(0, 2 * np.pi, 300))
for ax, (name, W) in zip(axes, panels.items()):
    ps = sp.pseudospectra(W, re=re, im=im, rng=0)
    sp.plot_pseudospectra(ps, eps_levels, ax=ax)
    ax.plot(circle.real, circle.imag, "k--", lw=0.8)
    ax.set_title(f"tanh RNN, hidden 32: {name}")
plt.show()
