"""
Eigenphases of the orthogonal and unitary parameterizations
===========================================================

Orthogonal and unitary recurrent matrices keep :math:`\\|W h\\| = \\|h\\|`, so
gradients through time neither explode nor vanish from the recurrence itself.
The papers differ in how they parameterize them: the scaled Cayley transform
of scoRNN (Helfrich, Willmott and Ye 2018), the exponential of a skew-symmetric
matrix (Lezcano-Casado and Martínez-Rubio 2019), products of Householder
reflections, the SVD form with bounded singular values of Spectral-RNN (Zhang
et al. 2018), the full-capacity unitary matrices of Wisdom et al. (2016) and
the restricted unitary product of diagonal, reflection, permutation and
Fourier factors of the uRNN (Arjovsky, Shah and Bengio 2016). Every map in
:mod:`lowdisp.orthogonal` produces matrices whose eigenvalues lie on the unit
circle; where on the circle depends on the map and on its initialization. This
example samples each map four times at :math:`n = 64`, checks
:math:`\\|W^H W - I\\|_2` and draws the eigenvalues, one panel per map.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp as ld

N = 64
SAMPLES = 4
METHODS = [
    ("scaled_cayley", {"n_neg": N // 4}, "ScaledCayley (scoRNN), n_neg = n/4"),
    ("expm", {}, "ExpMap, Henaff init"),
    ("householder", {"k": N // 8}, "Householder, k = n/8 reflectors"),
    ("svd", {"margin": 0.1}, "SVDParam (Spectral-RNN), margin 0.1"),
    ("full_unitary", {}, "FullUnitary (Wisdom et al.), Haar"),
    ("restricted_unitary", {"rng": 0}, "RestrictedUnitary (uRNN)"),
]

rng = np.random.default_rng(0)
fig, axes = plt.subplots(2, 3, figsize=(11, 7.5), subplot_kw={"aspect": "equal"})
circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
for ax, (method, kw, title) in zip(axes.ravel(), METHODS):
    p = ld.orthogonal(N, method=method, **kw)
    worst = 0.0
    for _ in range(SAMPLES):
        W, _ = p.forward(p.sample(rng=rng))
        worst = max(worst, ld.orthogonality_error(W))
        lam = np.exp(1j * ld.eigenphases(W))
        ax.plot(lam.real, lam.imag, ".", ms=4, alpha=0.7)
    print(f"{method:20s} max ||W^H W - I||_2 over {SAMPLES} samples: {worst:.1e}")
    ax.plot(circle.real, circle.imag, "k-", lw=0.5)
    ax.set_title(f"{title}\nmax ||W^H W - I||_2 = {worst:.1e}", fontsize=9)
    ax.set_xlim(-1.15, 1.15)
    ax.set_ylim(-1.15, 1.15)
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])
fig.suptitle(f"Eigenvalues of {SAMPLES} samples per map (n = {N})")
fig.tight_layout()
plt.show()
