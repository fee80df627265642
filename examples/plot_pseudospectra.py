"""
ε-pseudospectra, numerical range and transient growth
======================================================

The Grcar matrix is the classic example of a matrix whose eigenvalues say
little about its behaviour (Trefethen and Embree, *Spectra and
Pseudospectra*, 2005): it is far from normal, so perturbations of size
:math:`10^{-10}` move its eigenvalues by order one and its powers grow before
they decay. This example computes its ε-pseudospectra
:math:`\\sigma_\\varepsilon(A) = \\{z : \\sigma_{\\min}(zI - A) \\le \\varepsilon\\}`
on a grid (one Schur form, then inverse Lanczos at every point), the
pseudospectral abscissa by criss-cross, the numerical range and the departure
from normality, and the transient growth :math:`\\|B^k\\|_2` of a copy scaled
to spectral radius 0.9 with the lower bounds the resolvent gives.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.spectral as sp


def grcar(n):
    """1 on the diagonal and three superdiagonals, -1 on the subdiagonal."""
    A = np.eye(n) - np.eye(n, k=-1)
    for j in (1, 2, 3):
        A += np.eye(n, k=j)
    return A


A = grcar(64)
ps = sp.pseudospectra(A, re=np.linspace(-1, 3, 80), im=np.linspace(-3.5, 3.5, 80), rng=0)
eps = 1e-4
alpha = sp.pseudospectral_abscissa(A, eps)
print(f"‖A‖₂ = {sp.spectral_norm(A).value:.6f}")
print(f"departure from normality (relative) = {sp.departure_from_normality(A, relative=True):.3f}")
print(f"α_ε(A) = {alpha.value:.6f} at z = {alpha.maximizer:.4f} (ε = {eps:g})")

# %%
# Pseudospectra with the α_ε maximizer, the numerical range, and the powers of a
# scaled copy: its spectral radius is 0.9, yet :math:`\|B^k\|_2` grows first.
fig, axes = plt.subplots(1, 3, figsize=(16, 5))
sp.plot_pseudospectra(ps, [1e-10, 1e-8, 1e-6, 1e-4, 1e-2], ax=axes[0])
axes[0].plot(alpha.maximizer.real, alpha.maximizer.imag, "r+", ms=12, label="α_ε maximizer")
axes[0].axvline(alpha.value, color="r", lw=0.6, ls="--")
sp.plot_numerical_range(A, ax=axes[1])
B = 0.9 * A / np.abs(np.linalg.eigvals(A)).max()
sp.plot_transient(sp.transient_growth(B, 60, rng=0), ax=axes[2])
fig.tight_layout()
plt.show()
