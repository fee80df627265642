"""LDR-SD products (lowdisp.structured.families.subdiagonal) vs dense Krylov references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.structured.families import subdiagonal as sd
from lowdisp.testing import check_vjp
from tests.oracles import krylov, random_array, rel_err

CORNERS = [(0.0, 0.0), (0.7, 0.0), (0.0, -0.5), (0.7, -1.3)]


def subdiag_dense(a, f):
    n = len(a) + 1
    A = np.diag(np.asarray(a, complex), -1)
    A[0, n - 1] += f
    return A


def dense_subdiag_like(a, fa, b, fb, G, H):
    """(1 - alpha beta)^{-1} sum_i K(A, g_i) K(B, h_i)^T with Krylov matrices by repeated matvec."""
    A, B = subdiag_dense(a, fa), subdiag_dense(b, fb)
    s = 1.0 / (1.0 - fa * np.prod(a) * fb * np.prod(b))
    return s * sum(krylov(A, G[:, i]) @ krylov(B, H[:, i]).T for i in range(G.shape[1]))


def krylov_matvec_big(a, f, g, w):
    """K(A, g) @ w for large n: columns A^k g by repeated (vectorized) matvec, summed on the fly."""
    v = np.array(g, dtype=float)
    out = w[0] * v
    for k in range(1, len(g)):
        v = np.concatenate(([f * v[-1]], a * v[:-1]))
        out += w[k] * v
    return out


def krylov_tmatvec_big(a, f, h, x):
    """K(A, h)^T x: entries (A^k h)^T x by repeated matvec."""
    v = np.array(h, dtype=float)
    out = np.empty(len(h))
    for k in range(len(h)):
        out[k] = v @ x
        v = np.concatenate(([f * v[-1]], a * v[:-1]))
    return out


def _params(rng, n, dtype):
    a = np.exp(rng.normal(-0.05, 0.05, n - 1)).astype(dtype)
    b = np.exp(rng.normal(0.0, 0.3, n - 1)).astype(dtype)
    return a, b


@pytest.mark.parametrize("n", [1, 2, 5, 33, 70])
@pytest.mark.parametrize(("fa", "fb"), CORNERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_products_match_dense(rng, n, fa, fb, dtype):
    a, b = _params(rng, n, dtype)
    G, H = random_array(rng, (n, 3), dtype), random_array(rng, (n, 3), dtype)
    X, Y = random_array(rng, (n, 4), dtype), random_array(rng, (n, 4), dtype)
    M = dense_subdiag_like(a, fa, b, fb, G, H)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    out = sd.subdiag_matmat(a, fa, b, fb, G, H, X)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M @ X) < tol
    out = sd.subdiag_rmatmat(a, fa, b, fb, G, H, Y)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M.conj().T @ Y) < tol


def _kernels(a, fa, V, U, C, dtype=np.float64):
    """The two D&C kernels on columns: T[k, v, u] = (A^k v)^T u and
    Y[:, o] = sum_v K(A, v) C[:, v, o]."""
    n = V.shape[0]
    p = sd._SDPlan(np.asarray(a, dtype), fa, n, np.dtype(dtype))
    Vr, Ur = sd._sd_rows(V, p.N, dtype), sd._sd_rows(U, p.N, dtype)
    T = sd._SDKrylovT(p, Vr)(Ur)[:, :, :n].transpose(2, 0, 1)
    cs = sd._SDCoefSpectra(p, np.ascontiguousarray(C.transpose(1, 2, 0)))
    Y = sd._SDKrylov(p, Vr)(cs)[:, :n].T
    Y2 = sd._SDKrylov(p, Vr, leaf_rows=False)(cs)[:, :n].T  # the per-lag GEMM leaves
    return p, T, Y, Y2


@given(n=st.integers(1, 80), r=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_property_krylov_kernels(n, r, seed):
    """The two D&C kernels on their own, every n (padding to a power of two, leaves, levels),
    with and without a corner (cyclic, fused and linear corner transforms)."""
    g = np.random.default_rng(seed)
    a = g.normal(0, 1, n - 1)
    fa = float(g.choice([0.0, 0.8, 1e3]))
    V, U, C = g.standard_normal((n, r)), g.standard_normal((n, 3)), g.standard_normal((n, r, 3))
    K = [krylov(subdiag_dense(a, fa), V[:, v]).real for v in range(r)]
    T = np.stack([np.stack([K[v].T @ U[:, u] for u in range(3)], axis=1) for v in range(r)], axis=1)
    Y = np.stack([sum(K[v] @ C[:, v, o] for v in range(r)) for o in range(3)], axis=1)
    _, T1, Y1, Y2 = _kernels(a, fa, V, U, C)
    assert rel_err(T1, T) < 1e-10
    assert rel_err(Y1, Y) < 1e-10
    assert rel_err(Y2, Y) < 1e-10


@pytest.mark.parametrize(
    ("n", "scale", "fa", "mode"),
    [
        (64, 1.0, 0.0, "none"),
        (128, 0.98, 0.5, "fused"),
        (100, 0.98, 0.5, "cyclic"),
        (64, 1.1, 0.5, "linear"),
        (100, 1.1, 0.5, "linear"),
    ],
)
def test_corner_transforms(rng, n, scale, fa, mode):
    """Each way of carrying the corner: one cyclic transform of length n when
    |fa prod(a)| <= 1 (sharing the top level's when n is a power of two), a linear
    one otherwise; kernels and the whole product against the dense definition."""
    a = scale * np.exp(rng.normal(0, 0.05, n - 1))
    V, U, C = (
        rng.standard_normal((n, 2)),
        rng.standard_normal((n, 3)),
        rng.standard_normal((n, 2, 3)),
    )
    K = [krylov(subdiag_dense(a, fa), V[:, v]).real for v in range(2)]
    T = np.stack([np.stack([K[v].T @ U[:, u] for u in range(3)], axis=1) for v in range(2)], axis=1)
    Y = np.stack([sum(K[v] @ C[:, v, o] for v in range(2)) for o in range(3)], axis=1)
    p, T1, Y1, Y2 = _kernels(a, fa, V, U, C)
    assert p.mode == mode
    for got, want in ((T1, T), (Y1, Y), (Y2, Y)):
        assert rel_err(got, want) < 1e-10
    G, H, X = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)), rng.standard_normal((n, 3))
    M = dense_subdiag_like(a, fa, a[::-1], -fa, G, H)
    assert rel_err(sd.subdiag_matmat(a, fa, a[::-1], -fa, G, H, X), M @ X) < 1e-10
    assert rel_err(sd.subdiag_rmatmat(a, fa, a[::-1], -fa, G, H, X), M.T @ X) < 1e-10


@pytest.mark.parametrize(("fa", "fb"), [(0.0, 0.0), (0.5, -0.5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_decaying_subdiagonal_n2048_dense_oracle(rng, fa, fb, dtype):
    """Issue 11 accuracy: a_i = exp(N(-0.05, 0.05^2)), with and without corners, against
    the dense oracle (stable Stein scan in float64): 1e-10 in float64, 1e-4 in float32
    (float32 end to end)."""
    n, r = 2048, 4
    a = np.exp(rng.normal(-0.05, 0.05, n - 1))
    b = np.exp(rng.normal(-0.05, 0.05, n - 1))
    G, H, X = rng.standard_normal((n, r)), rng.standard_normal((n, r)), rng.standard_normal((n, 5))
    M = sd._sd_dense(a, fa, b, fb, G, H, np.dtype(np.float64))[0]
    args = [x.astype(dtype) for x in (a, b, G, H, X)]
    y = sd.subdiag_matmat(args[0], fa, args[1], fb, args[2], args[3], args[4])
    assert y.dtype == np.dtype(dtype)
    assert rel_err(y, M @ X) < (1e-4 if dtype == np.float32 else 1e-10)
    x = sd.subdiag_rmatmat(args[0], fa, args[1], fb, args[2], args[3], args[4])
    assert rel_err(x, M.T @ X) < (1e-4 if dtype == np.float32 else 1e-10)


def test_parameter_cache_follows_in_place_changes(rng):
    """The parameter-side cache (plans, leaf rows, spectra of G and H) is keyed by the
    parameters' bytes: a warm call equals a cold one bitwise, an in-place change of
    ``a`` or ``G`` is seen (dense oracle), and the cache stays within its byte budget."""
    n, r = 2048, 2
    a = np.exp(rng.normal(-0.05, 0.05, n - 1))
    b = np.exp(rng.normal(-0.05, 0.05, n - 1))
    G, H, X = rng.standard_normal((n, r)), rng.standard_normal((n, r)), rng.standard_normal((n, 3))
    sd._SD_CACHE.clear()
    cold = sd.subdiag_matmat(a, 0.5, b, -0.5, G, H, X)
    assert len(sd._SD_CACHE) > 0
    np.testing.assert_array_equal(sd.subdiag_matmat(a, 0.5, b, -0.5, G, H, X), cold)
    a *= 0.99
    G[5, 1] += 1.0
    M = sd._sd_dense(a, 0.5, b, -0.5, G, H, np.dtype(np.float64))[0]
    assert rel_err(sd.subdiag_matmat(a, 0.5, b, -0.5, G, H, X), M @ X) < 1e-10
    assert rel_err(sd.subdiag_rmatmat(a, 0.5, b, -0.5, G, H, X), M.T @ X) < 1e-10
    assert sum(v[1] for v in sd._SD_CACHE.values()) <= sd._SD_CACHE_BYTES


@pytest.mark.slow
def test_decaying_subdiagonal_n4096_stays_accurate(rng):
    """Entries exp(N(-0.05, 0.05^2)): P spans ~90 decades; the cumulative-product
    shortcut gives garbage here, the divide-and-conquer product stays at 1e-10."""
    n, r = 4096, 2
    a = np.exp(rng.normal(-0.05, 0.05, n - 1))
    b = np.exp(rng.normal(-0.05, 0.05, n - 1))
    G, H, x = rng.standard_normal((n, r)), rng.standard_normal((n, r)), rng.standard_normal(n)
    ref = sum(
        krylov_matvec_big(a, 0.0, G[:, i], krylov_tmatvec_big(b, 0.0, H[:, i], x)) for i in range(r)
    )
    y = sd.subdiag_matmat(a, 0.0, b, 0.0, G, H, x[:, None])[:, 0]
    assert rel_err(y, ref) < 1e-10
    # the FFT shortcut K(A, v) w = P * (L(v / P) w) really is useless here
    P = np.concatenate(([1.0], np.cumprod(a)))
    w = rng.standard_normal(n)
    with np.errstate(all="ignore"):
        conv = np.fft.irfft(np.fft.rfft(G[:, 0] / P, 2 * n) * np.fft.rfft(w, 2 * n), 2 * n)
        bad = P * conv[:n]
    good = krylov_matvec_big(a, 0.0, G[:, 0], w)
    p = sd._SDPlan(a, 0.0, n, np.dtype(float))
    km = sd._SDKrylov(p, sd._sd_rows(G[:, :1], n, float))
    assert rel_err(km(sd._SDCoefSpectra(p, w[None, None, :]))[0], good) < 1e-10
    assert not np.all(np.isfinite(bad)) or rel_err(bad, good) > 1e-3


def _f(fa, fb):
    def f(d):
        return sd.subdiag_matmat(d["a"], fa, d["b"], fb, d["G"], d["H"], d["X"])

    return f


def _vjp(fa, fb):
    def vjp(d, dy):
        return sd.subdiag_vjp(d["a"], fa, d["b"], fb, d["G"], d["H"], d["X"], dy)

    return vjp


@pytest.mark.parametrize(("fa", "fb"), CORNERS)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("n", [5, 40, 64])
def test_vjp_finite_differences(rng, fa, fb, dtype, n):
    """n = 64 (a power of two): the flipped products reuse the mirrored spectra."""
    a, b = _params(rng, n, dtype)
    x = {
        "a": a,
        "b": b,
        "G": random_array(rng, (n, 2), dtype),
        "H": random_array(rng, (n, 2), dtype),
        "X": random_array(rng, (n, 3), dtype),
    }
    assert check_vjp(_f(fa, fb), _vjp(fa, fb), x, rng=rng) < 1e-6


@pytest.mark.parametrize(("fa", "fb"), [(0.0, 0.0), (0.7, -1.3)])
def test_operator_gradients_alone_including_tiny_entries(rng, fa, fb):
    """Gradient w.r.t. a and b only (so a wrong a/b part cannot hide), with a zero
    and a tiny subdiagonal entry (the secant path)."""
    n = 20
    a, b = _params(rng, n, np.float64)
    a[3], b[7], a[11] = 0.0, 1e-9, -2.0
    G, H, X = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)), rng.standard_normal((n, 3))
    for key in ("a", "b"):

        def f(d, key=key):
            p = {"a": a, "b": b, **d}
            return sd.subdiag_matmat(p["a"], fa, p["b"], fb, G, H, X)

        def vjp(d, dy, key=key):
            p = {"a": a, "b": b, **d}
            return {key: sd.subdiag_vjp(p["a"], fa, p["b"], fb, G, H, X, dy)[key]}

        x = {key: a if key == "a" else b}
        assert check_vjp(f, vjp, x, rng=rng) < 1e-6


@pytest.mark.parametrize("n", [1, 3, 40])
@pytest.mark.parametrize(("fa", "fb"), CORNERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_small_n_materialized_path(rng, n, fa, fb, dtype):
    """Batches >= 8 at small n go through the Stein scan + GEMM: same answers, same vjp."""
    a, b = _params(rng, n, dtype)
    G, H = random_array(rng, (n, 2), dtype), random_array(rng, (n, 2), dtype)
    X, Y = random_array(rng, (n, 9), dtype), random_array(rng, (n, 9), dtype)
    assert sd._sd_use_dense(n, 9) and sd._sd_use_dense(n, 9, vjp=True)
    M = dense_subdiag_like(a, fa, b, fb, G, H)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    out = sd.subdiag_matmat(a, fa, b, fb, G, H, X)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M @ X) < tol
    assert rel_err(sd.subdiag_rmatmat(a, fa, b, fb, G, H, Y), M.conj().T @ Y) < tol
    if dtype != np.float32:
        x = {"a": a, "b": b, "G": G, "H": H, "X": X}
        assert check_vjp(_f(fa, fb), _vjp(fa, fb), x, rng=rng) < 1e-6


@pytest.mark.parametrize(("fa", "fb"), [(0.0, 0.0), (0.5, -0.5)])
def test_several_column_passes_match_dense(rng, monkeypatch, fa, fb):
    """Divide and conquer over several column passes (the leaves of all passes in one
    GEMM, the last pass short): products against the dense oracle, the vjp against the
    materialized-M vjp (the stable Stein scan)."""
    n, k = 64, 11
    a, b = _params(rng, n, np.float64)
    G, H = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    X, dY = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    M = dense_subdiag_like(a, fa, b, fb, G, H)
    dense_vjp = sd._sd_dense_vjp(a, fa, b, fb, G, H, X, dY, np.dtype(np.float64))
    monkeypatch.setattr(sd, "_SD_DENSE_MAX_N", 0)  # no materialized path
    monkeypatch.setattr(sd, "_sd_chunk", lambda k, r, N: 2)  # passes of 2 (vjp: 4) columns
    assert rel_err(sd.subdiag_matmat(a, fa, b, fb, G, H, X), M @ X) < 1e-12
    assert rel_err(sd.subdiag_rmatmat(a, fa, b, fb, G, H, dY), M.T @ dY) < 1e-12
    g = sd.subdiag_vjp(a, fa, b, fb, G, H, X, dY)
    assert rel_err(g["X"], M.T @ dY) < 1e-12
    for key in ("G", "H", "a", "b"):
        assert rel_err(g[key], dense_vjp[key]) < 1e-10
