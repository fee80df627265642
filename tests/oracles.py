"""Slow, obviously correct dense references (the stumpy ``naive.py`` idea).

Nothing here is fast or clever; each function is the textbook definition, so
a fast kernel that agrees with it is right. Sections by subpackage; add new
references inside your section.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

# --------------------------------------------------------------------------
# shared
# --------------------------------------------------------------------------


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error ||a - b|| / max(||b||, tiny) in the Frobenius norm."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def random_array(
    rng: np.random.Generator, shape, dtype=np.float64, scale: float = 1.0
) -> np.ndarray:
    """A Gaussian array of standard deviation ``scale`` and the given dtype (complex:
    independent real and imaginary parts, the real part drawn first)."""
    a = scale * rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * scale * rng.standard_normal(shape)
    return a.astype(dtype)


def random_matrix(rng: np.random.Generator, m: int, n: int, dtype=np.float64) -> np.ndarray:
    """A Gaussian matrix of the given dtype (complex: independent real and imaginary parts)."""
    return random_array(rng, (m, n), dtype)


def krylov(A: np.ndarray, v: np.ndarray, m: int | None = None) -> np.ndarray:
    """Dense Krylov matrix [v, A v, ..., A^{m-1} v] by repeated matvecs."""
    m = A.shape[0] if m is None else m
    cols = [np.asarray(v)]
    for _ in range(m - 1):
        cols.append(A @ cols[-1])
    return np.stack(cols, axis=1)


def shift_matrix(n: int, f: complex = 0.0) -> np.ndarray:
    """Z_f: ones on the subdiagonal and f in the top-right corner."""
    Z = np.eye(n, k=-1, dtype=np.result_type(f, np.float64))
    if n:
        Z[0, n - 1] += f
    return Z


def sylvester_solve(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """M with A M - M B = C by scipy's Bartels-Stewart solver."""
    return sla.solve_sylvester(A, -B, C)


def stein_solve(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """M with M - A M B = C by a Kronecker-product solve (small n only)."""
    m, n = C.shape
    K = np.eye(m * n) - np.kron(B.T, A)
    return np.linalg.solve(K, C.reshape(-1, order="F")).reshape((m, n), order="F")


# --------------------------------------------------------------------------
# structured
# --------------------------------------------------------------------------


def sylvester_solve_any(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """M with A M - M B = C; real A, B with complex C are solved part by part.

    (scipy.linalg.solve_sylvester returns a wrong answer for real A, B and a
    complex C: it works in the real Schur form and drops C's imaginary part.)
    """
    if np.iscomplexobj(C) and not (np.iscomplexobj(A) or np.iscomplexobj(B)):
        return sylvester_solve(A, B, C.real) + 1j * sylvester_solve(A, B, C.imag)
    return sylvester_solve(A.astype(np.result_type(A, C)), B.astype(np.result_type(B, C)), C)


def fcirculant_dense(v: np.ndarray, f: complex) -> np.ndarray:
    """Z_f(v) = sum_k v_k Z_f^k by the definition (powers of the shift)."""
    n = len(v)
    Z = shift_matrix(n, f)
    out = np.zeros((n, n), dtype=np.result_type(v, f, np.float64))
    P = np.eye(n)
    for k in range(n):
        out = out + v[k] * P
        P = Z @ P
    return out


def krylov_sum(A: np.ndarray, Bp: np.ndarray, G: np.ndarray, H: np.ndarray) -> np.ndarray:
    """sum_i K(A, g_i) K(B', h_i)^T with dense Krylov matrices."""
    return sum(krylov(A, G[:, i]) @ krylov(Bp, H[:, i]).T for i in range(G.shape[1]))


def stein_solve_series(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """M with M - A M B = C for nilpotent B (B^n = 0): the finite Neumann series."""
    M = np.zeros(C.shape, dtype=np.result_type(A, B, C))
    term = C.astype(M.dtype)
    for _ in range(B.shape[0]):
        M = M + term
        term = A @ term @ B
    return M


def skew_circulant_dense(c: np.ndarray) -> np.ndarray:
    """Entries c_{i-j} (i >= j) and -c_{n+i-j} (i < j)."""
    n = len(c)
    return np.array([[c[i - j] if i >= j else -c[n + i - j] for j in range(n)] for i in range(n)])


# --------------------------------------------------------------------------
# orthogonal
# --------------------------------------------------------------------------


def householder_product_naive(V: np.ndarray, tau: np.ndarray | None = None) -> np.ndarray:
    """H_1 H_2 ... H_k by dense multiplication; H_i = I - tau_i v_i v_i^H.

    Without tau, tau_i = 2 / ||v_i||^2 and v_i = V[:, i]; with tau, the LAPACK
    geqrf layout (v_i[:i] = 0, v_i[i] = 1, v_i[i+1:] = V[i+1:, i]).
    """
    n = V.shape[0]
    dt = np.result_type(V, np.float64 if tau is None else tau)
    Q = np.eye(n, dtype=dt)
    k = V.shape[1] if tau is None else len(tau)
    for i in range(k):
        v = V[:, i].astype(dt).copy()
        if tau is None:
            t = 2.0 / np.vdot(v, v).real
        else:
            v[:i] = 0.0
            v[i] = 1.0
            t = tau[i]
        Q = Q @ (np.eye(n, dtype=dt) - t * np.outer(v, v.conj()))
    return Q


def cayley_naive(A: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
    """(I + A)^{-1} (I - A) diag(d) by a dense inverse."""
    n = A.shape[0]
    W = np.linalg.inv(np.eye(n) + A) @ (np.eye(n) - A)
    return W if d is None else W @ np.diag(d)


def skew_from_upper(theta: np.ndarray, n: int) -> np.ndarray:
    """A = P - P^T with theta in the strict upper triangle of P (row-major)."""
    P = np.zeros((n, n))
    P[np.triu_indices(n, 1)] = theta
    return P - P.T


def dft_unitary(n: int) -> np.ndarray:
    """The unitary DFT matrix F[j, k] = exp(-2 pi i j k / n) / sqrt(n)."""
    j = np.arange(n)
    return np.exp(-2j * np.pi * np.outer(j, j) / n) / np.sqrt(n)


def restricted_unitary_naive(theta: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Dense D3 R2 F^{-1} D2 Pi R1 F D1 from the 7n real parameters (Arjovsky et al.)."""
    n = perm.shape[0]
    t1, t2, t3, a1, b1, a2, b2 = theta.reshape(7, n)
    D1, D2, D3 = (np.diag(np.exp(1j * t)) for t in (t1, t2, t3))
    R1, R2 = (
        np.eye(n) - 2 * np.outer(v, v.conj()) / np.vdot(v, v).real
        for v in (a1 + 1j * b1, a2 + 1j * b2)
    )
    F = dft_unitary(n)
    Pi = np.eye(n)[perm]  # (Pi x)_i = x[perm[i]]
    return D3 @ R2 @ F.conj().T @ D2 @ Pi @ R1 @ F @ D1


def expm_series(A: np.ndarray, terms: int = 60) -> np.ndarray:
    """exp(A) by scaling and squaring of a plain Taylor series (independent of Pade)."""
    s = max(0, int(np.ceil(np.log2(max(np.linalg.norm(A, 1), 1.0)))) + 1)
    B = A / 2**s
    E = np.eye(A.shape[0], dtype=np.result_type(A, np.float64))
    term = E.copy()
    for j in range(1, terms):
        term = term @ B / j
        E = E + term
    for _ in range(s):
        E = E @ E
    return E


# --------------------------------------------------------------------------
# spectral
# --------------------------------------------------------------------------


def sigma_min_svd(A: np.ndarray, z: complex) -> float:
    """Smallest singular value of z I - A by a dense SVD."""
    n = A.shape[0]
    return float(sla.svdvals(z * np.eye(n) - A)[-1])


def grcar(n: int, k: int = 3) -> np.ndarray:
    """Grcar matrix: 1 on the diagonal and k superdiagonals, -1 on the subdiagonal."""
    A = np.eye(n) - np.eye(n, k=-1)
    for j in range(1, k + 1):
        A += np.eye(n, k=j)
    return A


def jordan_block(n: int, lam: complex = 0.0) -> np.ndarray:
    """n x n Jordan block: lam on the diagonal, ones on the superdiagonal."""
    return np.eye(n, k=1) + lam * np.eye(n)


def random_triangular(rng: np.random.Generator, n: int) -> np.ndarray:
    """EigTool's randomtri demo: triu(randn(n)) / sqrt(n) (very non-normal)."""
    return np.triu(rng.standard_normal((n, n))) / np.sqrt(n)


def spectral_norm_dense(A: np.ndarray) -> float:
    """||A||_2 by a full SVD."""
    return float(np.linalg.norm(A, 2))


def dist_to_spectrum(eigenvalues: np.ndarray, z: complex) -> float:
    """min_i |z - lambda_i| (sigma_min(zI - A) for a normal A)."""
    return float(np.min(np.abs(np.asarray(eigenvalues) - z)))


def henrici_departure(A: np.ndarray) -> float:
    """sqrt(||A||_F^2 - sum |lambda_i|^2) by the difference formula."""
    lam = np.linalg.eigvals(A)
    return float(np.sqrt(max(np.linalg.norm(A) ** 2 - np.sum(np.abs(lam) ** 2), 0.0)))


def numerical_radius_sampled(A: np.ndarray, m: int = 4000) -> float:
    """max over m angles of lambda_max((e^{it} A + e^{-it} A^H) / 2) (a lower bound)."""
    best = -np.inf
    for t in np.linspace(0, 2 * np.pi, m, endpoint=False):
        H = 0.5 * (np.exp(1j * t) * A + np.exp(-1j * t) * A.conj().T)
        best = max(best, float(np.linalg.eigvalsh(H)[-1]))
    return best


def kreiss_sampled(A: np.ndarray, kind: str = "discrete", m: int = 60) -> float:
    """Max of the Kreiss ratio over a log-polar (discrete) or log-half-plane grid by SVDs."""
    best = 1.0
    d = np.logspace(-6, 1.5, m)
    if kind == "discrete":
        pts = [(1 + r) * np.exp(1j * t) for r in d for t in np.linspace(0, 2 * np.pi, m)]
        meas = [abs(z) - 1 for z in pts]
    else:
        pts = [x + 1j * y for x in d for y in np.linspace(-5, 5, m)]
        meas = [z.real for z in pts]
    for z, w in zip(pts, meas):
        best = max(best, w / sigma_min_svd(A, z))
    return best


def power_norms(A: np.ndarray, steps: int) -> np.ndarray:
    """||A^k||_2 for k = 0..steps by numpy.linalg.matrix_power."""
    return np.array([np.linalg.norm(np.linalg.matrix_power(A, k), 2) for k in range(steps + 1)])


# --------------------------------------------------------------------------
# nn
# --------------------------------------------------------------------------


def rnn_forward_naive(W, U, b, xs, activation="tanh", h0=None):
    """Elman RNN by the textbook loop over time and batch, column vectors:
    h_t = sigma(W h_{t-1} + U x_t + b). xs: (T, B, d). Returns (T, B, n)."""
    T, B, _ = xs.shape
    n = W.shape[0]
    out = np.zeros((T, B, n))
    for j in range(B):
        h = np.zeros(n) if h0 is None else np.array(h0[j], dtype=float)
        for t in range(T):
            z = W @ h + U @ xs[t, j] + (0 if activation == "modrelu" else b)
            if activation == "tanh":
                h = np.tanh(z)
            elif activation == "relu":
                h = np.maximum(z, 0)
            else:  # real modReLU, b is its bias
                h = np.sign(z) * np.maximum(np.abs(z) + b, 0)
            out[t, j] = h
    return out


def lstm_forward_naive(Wx, Wh, b, xs):
    """LSTM (gates i, f, g, o as in PyTorch) by a per-example loop. Returns (T, B, n)."""
    T, B, _ = xs.shape
    n = Wh.shape[1]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = np.zeros((T, B, n))
    for j in range(B):
        h = np.zeros(n)
        c = np.zeros(n)
        for t in range(T):
            a = Wx @ xs[t, j] + Wh @ h + b
            i, f, g, o = sig(a[:n]), sig(a[n : 2 * n]), np.tanh(a[2 * n : 3 * n]), sig(a[3 * n :])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[t, j] = h
    return out


def gru_forward_naive(Wx, Wh, bx, bh, xs):
    """GRU (PyTorch's equations) by a per-example loop. Returns (T, B, n)."""
    T, B, _ = xs.shape
    n = Wh.shape[1]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = np.zeros((T, B, n))
    for j in range(B):
        h = np.zeros(n)
        for t in range(T):
            gx = Wx @ xs[t, j] + bx
            gh = Wh @ h + bh
            r = sig(gx[:n] + gh[:n])
            z = sig(gx[n : 2 * n] + gh[n : 2 * n])
            nn_ = np.tanh(gx[2 * n :] + r * gh[2 * n :])
            h = (1 - z) * nn_ + z * h
            out[t, j] = h
    return out


def softmax_cross_entropy_naive(logits, target):
    """Mean over all positions of -log softmax(logits)[target], one position at a time."""
    z = np.asarray(logits, dtype=float).reshape(-1, logits.shape[-1])
    y = np.asarray(target).reshape(-1)
    total = 0.0
    for k in range(z.shape[0]):
        p = np.exp(z[k] - z[k].max())
        p /= p.sum()
        total += -np.log(p[y[k]])
    return total / z.shape[0]


def adam_naive(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba, Algorithm 1) on a list of successive gradients; returns p."""
    p = np.array(p, dtype=float)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh = m / (1 - b1**t)
        vh = v / (1 - b2**t)
        p = p - lr * mh / (np.sqrt(vh) + eps)
    return p
