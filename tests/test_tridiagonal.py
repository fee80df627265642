"""LDR-TD products (lowdisp.structured.families.tridiagonal) vs dense Krylov references."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.structured.families import tridiagonal as td
from lowdisp.testing import check_vjp
from tests.oracles import krylov, random_array, rel_err


def tridiag_dense(P):
    lower, main, upper, f = P
    n = len(main)
    A = np.diag(np.asarray(main, complex))
    if n > 1:
        A += np.diag(np.asarray(lower, complex), -1) + np.diag(np.asarray(upper, complex), 1)
    A[0, n - 1] += f
    return A


def dense_tridiag_like(Ap, Bp, G, H):
    A, B = tridiag_dense(Ap), tridiag_dense(Bp)
    return sum(krylov(A, G[:, i]) @ krylov(B, H[:, i]).T for i in range(G.shape[1]))


def _params(rng, n, dtype, f):
    return (
        random_array(rng, n - 1, dtype, 0.4),
        random_array(rng, n, dtype, 0.4),
        random_array(rng, n - 1, dtype, 0.4),
        f,
    )


@pytest.mark.parametrize("n", [1, 2, 7, 20])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_products_match_dense(rng, n, dtype):
    Ap, Bp = _params(rng, n, dtype, 0.3), _params(rng, n, dtype, -0.2)
    G, H = random_array(rng, (n, 3), dtype), random_array(rng, (n, 3), dtype)
    X, Y = random_array(rng, (n, 4), dtype), random_array(rng, (n, 4), dtype)
    M = dense_tridiag_like(Ap, Bp, G, H)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    out = td.tridiag_matmat(Ap, Bp, G, H, X)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M @ X) < tol
    out = td.tridiag_rmatmat(Ap, Bp, G, H, Y)
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, M.conj().T @ Y) < tol


@given(n=st.integers(1, 90), r=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_property_chunks(n, r, seed):
    """n across several chunks of 16 (forward) and 64 (vjp checkpoints)."""
    g = np.random.default_rng(seed)
    Ap, Bp = _params(g, n, np.float64, 0.5), _params(g, n, np.float64, 0.0)
    G, H, X = g.standard_normal((n, r)), g.standard_normal((n, r)), g.standard_normal((n, 2))
    M = dense_tridiag_like(Ap, Bp, G, H).real
    assert rel_err(td.tridiag_matmat(Ap, Bp, G, H, X), M @ X) < 1e-10
    assert rel_err(td.tridiag_vjp(Ap, Bp, G, H, X, X)["X"], M.T @ X) < 1e-10


def _split(v, n, f):
    return (v[: n - 1], v[n - 1 : 2 * n - 1], v[2 * n - 1 :], f)


def _vjp_error(rng, Ap, Bp, G, H, X):
    """check_vjp of tridiag_matmat / tridiag_vjp over the packed parameters,
    G, H and X (the corners of Ap and Bp held fixed)."""
    n, fa, fb = H.shape[0], Ap[3], Bp[3]
    x = {"A": np.concatenate(Ap[:3]), "B": np.concatenate(Bp[:3]), "G": G, "H": H, "X": X}

    def f(d):
        return td.tridiag_matmat(
            _split(d["A"], n, fa), _split(d["B"], n, fb), d["G"], d["H"], d["X"]
        )

    def vjp(d, dy):
        return td.tridiag_vjp(
            _split(d["A"], n, fa), _split(d["B"], n, fb), d["G"], d["H"], d["X"], dy
        )

    return check_vjp(f, vjp, x, rng=rng)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("n", [1, 6, 70])
def test_vjp_finite_differences(rng, dtype, n):
    fa, fb = 0.3, -0.2
    Ap, Bp = _params(rng, n, dtype, fa), _params(rng, n, dtype, fb)
    G, H = random_array(rng, (n, 2), dtype), random_array(rng, (n, 2), dtype)
    X = random_array(rng, (n, 3), dtype)
    assert _vjp_error(rng, Ap, Bp, G, H, X) < 1e-6


def test_operator_gradient_alone(rng):
    n = 9
    Ap, Bp = _params(rng, n, np.float64, 0.3), _params(rng, n, np.float64, 0.1)
    G, H, X = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)), rng.standard_normal((n, 3))
    for key in ("A", "B"):

        def f(d, key=key):
            a = _split(d[key], n, 0.3) if key == "A" else Ap
            b = _split(d[key], n, 0.1) if key == "B" else Bp
            return td.tridiag_matmat(a, b, G, H, X)

        def vjp(d, dy, key=key):
            a = _split(d[key], n, 0.3) if key == "A" else Ap
            b = _split(d[key], n, 0.1) if key == "B" else Bp
            return {key: td.tridiag_vjp(a, b, G, H, X, dy)[key]}

        x = {key: np.concatenate((Ap if key == "A" else Bp)[:3])}
        assert check_vjp(f, vjp, x, rng=rng) < 1e-6


def test_memory_is_linear(rng):
    """n = 2000: Krylov matrices would need 4 x 32 MB; the chunked product stays small."""
    n, r = 2000, 4
    Ap = (np.full(n - 1, 0.2), np.full(n, 0.5), np.full(n - 1, 0.2), 0.1)
    G, H, X = rng.standard_normal((n, r)), rng.standard_normal((n, r)), rng.standard_normal((n, 2))
    td.tridiag_matmat(Ap, Ap, G[:5], H[:5], X[:5])  # compile outside the trace
    tracemalloc.start()
    td.tridiag_matmat(Ap, Ap, G, H, X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3e6


def _contractive(rng, n, dtype, f):
    """||A|| <= 0.45: the Krylov sum is cut after about 50 terms in float64."""
    return (
        (0.1 * rng.uniform(-1, 1, n - 1)).astype(dtype),
        (0.2 * rng.uniform(-1, 1, n)).astype(dtype),
        (0.1 * rng.uniform(-1, 1, n - 1)).astype(dtype),
        f,
    )


def test_terms_are_cut_only_for_contractive_operators(rng):
    n = 500
    Ap, Bp = _contractive(rng, n, np.float64, 0.05), _contractive(rng, n, np.float64, -0.05)
    q = td._td_norm_bound(Ap) * td._td_norm_bound(Bp)
    assert q < 0.25
    K, Kg = td._td_terms(Ap, Bp, n, np.float64), td._td_terms(Ap, Bp, n, np.float64, grad=True)
    assert K < Kg < 100
    assert q**K / (1 - q) <= np.finfo(np.float64).eps / 4
    assert td._td_terms(Ap, Bp, n, np.float32) < K
    Z = (np.ones(n - 1), np.zeros(n), np.zeros(n - 1), 0.0)  # the shift: ||Z|| = 1, nothing cut
    assert td._td_terms(Z, Z, n, np.float64) == n
    assert td._td_norm_bound(Z) == 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_cut_sum_matches_the_full_one(rng, dtype, monkeypatch):
    """Products and every gradient with the cut equal the full sum (to rounding) and the
    dense definition."""
    n = 300
    Ap, Bp = _contractive(rng, n, dtype, 0.05), _contractive(rng, n, dtype, -0.05)
    G, H = random_array(rng, (n, 3), dtype), random_array(rng, (n, 3), dtype)
    X, dY = random_array(rng, (n, 4), dtype), random_array(rng, (n, 4), dtype)
    assert td._td_terms(Ap, Bp, n, dtype, grad=True) < n // 2
    tol = 1e-5 if dtype == np.float32 else 1e-13
    M = dense_tridiag_like(Ap, Bp, G, H)
    assert rel_err(td.tridiag_matmat(Ap, Bp, G, H, X), M @ X) < 10 * tol
    assert rel_err(td.tridiag_rmatmat(Ap, Bp, G, H, X), M.conj().T @ X) < 10 * tol
    cut = [td.tridiag_matmat(Ap, Bp, G, H, X), td.tridiag_vjp(Ap, Bp, G, H, X, dY)]
    monkeypatch.setattr(td, "_td_terms", lambda Ap, Bp, n, dtype, grad=False: n)
    full = [td.tridiag_matmat(Ap, Bp, G, H, X), td.tridiag_vjp(Ap, Bp, G, H, X, dY)]
    assert rel_err(cut[0], full[0]) < tol
    for key, val in full[1].items():
        assert rel_err(cut[1][key], val) < tol, key


def test_cut_vjp_finite_differences(rng):
    n = 60
    fa, fb = 0.05, -0.05
    Ap, Bp = _contractive(rng, n, np.float64, fa), _contractive(rng, n, np.float64, fb)
    assert td._td_terms(Ap, Bp, n, np.float64, grad=True) < n
    G, H, X = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)), rng.standard_normal((n, 3))
    assert _vjp_error(rng, Ap, Bp, G, H, X) < 1e-6
