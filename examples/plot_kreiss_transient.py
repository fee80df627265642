"""
Transient growth and the Kreiss constant
========================================

A matrix whose eigenvalues all lie inside the unit disc has powers that decay
eventually, but not necessarily at once: when it is far from normal,
:math:`\\|A^k\\|_2` can first grow by orders of magnitude, which for a
recurrent network means a burst of amplification before the forgetting sets
in. The Kreiss constant
:math:`K(A) = \\sup_{|z| > 1} (|z| - 1)\\,\\|(zI - A)^{-1}\\|_2` measures this
from the resolvent alone, and the Kreiss matrix theorem brackets the peak:
:math:`K \\le \\sup_k \\|A^k\\|_2 \\le e\\,n\\,K`. Here the same eigenvalues
(real, spread over [-0.9, 0.9]) are given increasingly non-normal Schur
forms :math:`A_s = Q (D + s N) Q^T` with a fixed strictly upper triangular
:math:`N`; :func:`lowdisp.spectral.transient_growth` computes the powers' norms with
certified resolvent lower bounds and :func:`lowdisp.spectral.kreiss_constant` the
constant.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import ortho_group

import lowdisp.spectral as sp

n = 40
rng = np.random.default_rng(0)
D = np.diag(0.9 * np.cos(np.linspace(0, np.pi, n)))
N = np.triu(rng.standard_normal((n, n)), k=1) / np.sqrt(n)
Q = ortho_group.rvs(n, random_state=1)
strengths = [0.0, 0.25, 0.5, 1.0, 2.0]

results = []
for s in strengths:
    A = Q @ (D + s * N) @ Q.T
    tg = sp.transient_growth(A, 80, rng=0)
    results.append((s, tg))
    print(
        f"s = {s:4.2f}: rho {np.abs(np.linalg.eigvals(A)).max():.2f}, "
        f"K = {tg.kreiss.value:9.3g}, max_k ||A^k|| = {tg.norms.max():9.3g}, "
        f"e n K = {tg.kreiss.transient_upper_bound:9.3g}"
    )

# %%
# Left: the powers' norms (solid) and the certified lower bounds from the
# resolvent (dotted). Right: the peak against the Kreiss constant, between the
# two bounds of the Kreiss matrix theorem.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for s, tg in results:
    (line,) = ax1.semilogy(tg.k, tg.norms, label=f"s = {s:g}")
    ax1.semilogy(tg.k, tg.lower_bounds, ":", color=line.get_color())
ax1.set_xlabel("k")
ax1.set_ylabel(r"$\|A_s^k\|_2$")
ax1.set_title("transient growth of the powers")
ax1.legend(fontsize=8)
K = np.array([tg.kreiss.value for _, tg in results])
peak = np.array([tg.norms.max() for _, tg in results])
grid = np.logspace(0, np.log10(K.max()) + 0.2, 50)
ax2.loglog(grid, grid, "k-", lw=0.8, label=r"$K$")
ax2.loglog(grid, np.e * n * grid, "k--", lw=0.8, label=r"$e\,n\,K$")
ax2.loglog(K, peak, "o", ms=7, label=r"$\max_k \|A_s^k\|_2$")
ax2.set_xlabel("Kreiss constant K")
ax2.set_ylabel("peak of the transient")
ax2.set_title("the Kreiss matrix theorem")
ax2.legend(fontsize=8)
for ax in (ax1, ax2):
    ax.grid(True, which="both", alpha=0.3)
plt.show()
