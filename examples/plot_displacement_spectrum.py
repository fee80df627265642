"""
How much displacement structure does a matrix have?
===================================================

A matrix :math:`W` has low displacement rank for the pair :math:`(Z_1, Z_{-1})`
when :math:`Z_1 W - W Z_{-1}` has few significant singular values; then
:func:`lowdisp.structured.compress` stores it by two thin generators and multiplies by it
with FFTs. Here :math:`W` is a sum of fourteen Toeplitz-like terms of rank one,
the k-th scaled by :math:`10^{-k}`: almost, but not exactly, of low
displacement rank. Its displacement singular values decay geometrically, and
the rank-:math:`r` Toeplitz-like approximation that ``compress`` returns is as
accurate as the first discarded singular value predicts (the relative error
``compress`` records, checked here against the dense matrix). This is the
trade-off behind LDR layers (Sindhwani et al. 2015; Thomas et al. 2018): a
displacement rank of a few units buys orders of magnitude in parameters.
"""

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg as sla

import lowdisp as ld

rng = np.random.default_rng(0)
n = 256
scales = 10.0 ** -np.arange(14)
G = rng.standard_normal((n, scales.size)) * scales
W = ld.toeplitz_like(G, rng.standard_normal((n, scales.size))).toarray()
A, B = ld.Shift(n, 1.0), ld.Shift(n, -1.0)

# %%
# The displacement spectrum, and the compression error for each rank.
sv = sla.svdvals(ld.displacement(W, A, B))
ranks = np.arange(1, 13)
errors, recorded = [], []
for r in ranks:
    M = ld.compress(W, A, B, rank=int(r))
    errors.append(np.linalg.norm(M.toarray() - W) / np.linalg.norm(W))
    recorded.append(M.compression_error)
print(f"rank 1 error {errors[0]:.1e}, rank 12 error {errors[-1]:.1e}")
print(f"parameters at rank 4: {2 * n * 4} instead of {n * n}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ax1.semilogy(np.arange(1, 21), sv[:20] / sv[0], "o-", ms=3)
ax1.set_xlabel("index k")
ax1.set_ylabel(r"$\sigma_k / \sigma_1$ of $Z_1 W - W Z_{-1}$")
ax1.set_title("displacement singular values")
ax2.semilogy(ranks, errors, "s-", label="measured (dense)")
ax2.semilogy(ranks, recorded, "x--", label="recorded by compress")
ax2.set_xlabel("displacement rank r")
ax2.set_ylabel(r"$\|W - M_r\|_F / \|W\|_F$")
ax2.set_title("Toeplitz-like approximation error")
ax2.legend()
for ax in (ax1, ax2):
    ax.grid(True, which="both", alpha=0.3)
plt.show()
