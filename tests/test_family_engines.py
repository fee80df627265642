"""Every family's fast engine against its slow oracle in tests/naive_structured.py (two
independent implementations of the same contract), every dtype, products and vjps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowdisp.structured.families import cauchy, subdiagonal, toeplitz, tridiagonal, vandermonde
from tests import naive_structured as N
from tests.oracles import rel_err

DTYPES = [np.float64, np.complex128]


def _rand(g, shape, dtype, scale=1.0):
    x = scale * g.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * scale * g.standard_normal(shape)
    return x.astype(dtype)


def _close(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            assert rel_err(np.asarray(a[k]), np.asarray(b[k])) < 1e-9, k
    elif isinstance(a, tuple):
        for x, y in zip(a, b):
            assert rel_err(x, y) < 1e-9
    else:
        assert rel_err(a, b) < 1e-9


def _case(family, n, r, k, dtype, g):
    G, H = _rand(g, (n, r), dtype), _rand(g, (n, r), dtype)
    X, dY = _rand(g, (n, k), dtype), _rand(g, (n, k), dtype)
    if family == "toeplitz":
        args = (G, H, 1.0, -1.0, "sylvester")
        fast, ref = toeplitz.ToeplitzPlan(*args), N.RefToeplitzPlan(*args)
        return (
            [(fast.matmat(X), ref.matmat(X)), (fast.rmatmat(dY), ref.rmatmat(dY))],
            (fast.vjp(X, dY), ref.vjp(X, dY)),
        )
    if family == "stein":
        args = (G, H, 0.0, 0.0, "stein")
        fast, ref = toeplitz.ToeplitzPlan(*args), N.RefToeplitzPlan(*args)
        return (
            [(fast.matmat(X), ref.matmat(X)), (fast.rmatmat(dY), ref.rmatmat(dY))],
            (fast.vjp(X, dY), ref.vjp(X, dY)),
        )
    if family == "cauchy":
        p = (_rand(g, n, dtype), _rand(g, n, dtype) + 5)
    elif family == "vandermonde":
        p = (_rand(g, n, dtype, 0.9),)
    elif family == "subdiagonal":
        p = (np.exp(g.normal(-0.05, 0.05, n - 1)).astype(dtype), 0.5, _rand(g, n - 1, dtype), -0.7)
    else:
        p = (
            (*tuple(_rand(g, m, dtype, 0.4) for m in (n - 1, n, n - 1)), 0.3),
            (*tuple(_rand(g, m, dtype, 0.4) for m in (n - 1, n, n - 1)), -0.2),
        )
    name = {
        "cauchy": "cauchy",
        "vandermonde": "vandermonde",
        "subdiagonal": "subdiag",
        "tridiagonal": "tridiag",
    }[family]

    engine = {
        "cauchy": cauchy,
        "vandermonde": vandermonde,
        "subdiagonal": subdiagonal,
        "tridiagonal": tridiagonal,
    }[family]

    def both(op, *args):
        return getattr(engine, f"{name}_{op}")(*p, *args), getattr(N, f"ref_{name}_{op}")(*p, *args)

    return (
        [both("matmat", G, H, X), both("rmatmat", G, H, dY)],
        both("vjp", G, H, X, dY),
    )


FAMILIES = ["toeplitz", "stein", "cauchy", "vandermonde", "subdiagonal", "tridiagonal"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_equals_reference(rng, family, dtype):
    prods, (gf, gr) = _case(family, 12, 3, 4, dtype, rng)
    for a, b in prods:
        _close(a, b)
    _close(gf, gr)


@settings(max_examples=10)
@given(
    family=st.sampled_from(FAMILIES),
    n=st.integers(1, 40),
    r=st.integers(1, 3),
    k=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_fast_equals_reference(family, n, r, k, seed):
    """Drawn sizes: the D&C and materialized LDR-SD paths, TD chunks, FFT block splits."""
    if family in ("toeplitz",) and n < 2:
        n = 2
    prods, (gf, gr) = _case(family, n, r, k, np.float64, np.random.default_rng(seed))
    for a, b in prods:
        _close(a, b)
    _close(gf, gr)


def test_real_transforms_along_the_last_axis_equal_scipy_fft_with_and_without_the_binding(
    monkeypatch,
):
    """The direct pocketfft calls of the subdiagonal family (``_fft.rfft_last`` /
    ``irfft_last``) equal ``scipy.fft`` whether the private binding is used or not."""
    import scipy.fft as sfft

    from lowdisp.structured import _fft

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 12))
    for binding in (None, False):  # None: probe the binding; False: plain scipy.fft
        monkeypatch.setattr(_fft, "_PP", binding)
        for L in (12, 16, 8):
            S = _fft.rfft_last(x, L)
            np.testing.assert_allclose(S, sfft.rfft(x, L, axis=-1), rtol=0, atol=1e-13)
            np.testing.assert_allclose(
                _fft.irfft_last(S, L), sfft.irfft(S, L, axis=-1), rtol=0, atol=1e-13
            )
