"""
The spectral norm of an operator that is never formed
=====================================================

Spectral normalization divides a weight by :math:`\\|W\\|_2 = \\sigma_{\\max}(W)`,
and for an LDR layer of order :math:`10^5` the dense matrix would not even fit
in memory. :func:`lowdisp.spectral.spectral_norm` needs only products with :math:`W`
and :math:`W^H`, which a Toeplitz-like matrix does with FFTs. This example
compares the three matrix-free methods on a random Toeplitz-like matrix of
order 1024: the error against the dense SVD as a function of the number of
products, and the error bound each method reports. Golub–Kahan–Lanczos with full
reorthogonalization converges in a few dozen products; the power method on
:math:`W^H W` converges like :math:`(\\sigma_2/\\sigma_1)^{2k}`, slowly when
the top two singular values are close, as here; block randomized subspace
iteration spends ten products per step on a whole block, which pays when
several singular values are wanted, not for the largest alone. Then the same
estimate at order :math:`10^5`, where only the matrix-free route exists.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import lowdisp as ld

rng = np.random.default_rng(0)
n = 1024
M = ld.toeplitz_like(rng.standard_normal((n, 3)), rng.standard_normal((n, 3)))
sv = np.linalg.svd(M.toarray(), compute_uv=False)
exact = sv[0]
print(f"sigma_2 / sigma_1 = {sv[1] / sv[0]:.4f} (the power method converges like its powers)")

curves = {}
for method, iters in [
    ("lanczos", [2, 4, 6, 8, 12, 16, 24, 32]),
    ("power", [2, 4, 8, 16, 32, 64, 128]),
    ("randomized", [1, 2, 3, 4, 6, 8]),
]:
    points = []
    for k in iters:
        est = ld.spectral_norm(M, method=method, maxiter=k, tol=1e-14, rng=1)
        points.append((est.n_matvecs, abs(est.value - exact) / exact, est.error_bound / exact))
    curves[method] = np.array(points)
    last = points[-1]
    print(f"{method:10s} {int(last[0]):4d} products: relative error {last[1]:.1e}")

# %%
# At n = 100 000 the matrix would take 80 GB; its generators take 4.8 MB.
big = ld.toeplitz_like(rng.standard_normal((100_000, 3)), rng.standard_normal((100_000, 3)))
t0 = time.perf_counter()
est = ld.spectral_norm(big, method="lanczos", tol=1e-8, rng=0)
print(
    f"n = 100 000: ||W||_2 = {est.value:.6g} +- {est.error_bound:.1e} "
    f"({est.n_matvecs} products, {time.perf_counter() - t0:.1f} s)"
)

fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
for (method, pts), marker in zip(curves.items(), "os^"):
    (line,) = ax.semilogy(pts[:, 0], np.maximum(pts[:, 1], 1e-16), marker + "-", label=method)
    ax.semilogy(pts[:, 0], np.maximum(pts[:, 2], 1e-16), ":", color=line.get_color())
ax.set_xlabel("products with W and W^H")
ax.set_ylabel("relative error (solid), reported bound (dotted)")
ax.set_title(f"spectral norm of a Toeplitz-like matrix, n = {n}, rank 3")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
plt.show()
