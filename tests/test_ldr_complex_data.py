"""Real structured matrices applied to complex data: products and vjps of the family engines.

The parameter gradients stay real (the gradient of a real parameter is dL/dp),
the input gradient is complex.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowdisp.structured.families import cauchy as cl
from lowdisp.structured.families import subdiagonal as sd
from lowdisp.structured.families import toeplitz as tp
from lowdisp.structured.families import tridiagonal as td
from lowdisp.structured.families import vandermonde as vl
from lowdisp.testing import check_vjp


def _c(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _toeplitz(d):
    return tp.ToeplitzPlan(d["G"], d["H"], 1.0, -1.0)


def _split(v, n, f):
    return (v[: n - 1], v[n - 1 : 2 * n - 1], v[2 * n - 1 :], f)


FAMILIES = {
    "toeplitz": (
        lambda d: _toeplitz(d).matmat(d["X"]),
        lambda d, dy: dict(zip(("G", "H", "X"), _toeplitz(d).vjp(d["X"], dy))),
        lambda rng, n: {"G": rng.standard_normal((n, 2)), "H": rng.standard_normal((n, 2))},
    ),
    "cauchy": (
        lambda d: cl.cauchy_matmat(d["s"], d["t"], d["G"], d["H"], d["X"]),
        lambda d, dy: cl.cauchy_vjp(d["s"], d["t"], d["G"], d["H"], d["X"], dy),
        lambda rng, n: {
            "s": rng.standard_normal(n),
            "t": rng.standard_normal(n) + 4,
            "G": rng.standard_normal((n, 2)),
            "H": rng.standard_normal((n, 2)),
        },
    ),
    "vandermonde": (
        lambda d: vl.vandermonde_matmat(d["v"], d["G"], d["H"], d["X"]),
        lambda d, dy: vl.vandermonde_vjp(d["v"], d["G"], d["H"], d["X"], dy),
        lambda rng, n: {
            "v": 0.9 * rng.standard_normal(n),
            "G": rng.standard_normal((n, 2)),
            "H": rng.standard_normal((n, 2)),
        },
    ),
    "subdiagonal": (
        lambda d: sd.subdiag_matmat(d["a"], 0.5, d["b"], -0.3, d["G"], d["H"], d["X"]),
        lambda d, dy: sd.subdiag_vjp(d["a"], 0.5, d["b"], -0.3, d["G"], d["H"], d["X"], dy),
        lambda rng, n: {
            "a": rng.standard_normal(n - 1),
            "b": rng.standard_normal(n - 1),
            "G": rng.standard_normal((n, 2)),
            "H": rng.standard_normal((n, 2)),
        },
    ),
    "tridiagonal": (
        lambda d: td.tridiag_matmat(
            _split(d["A"], 6, 0.2), _split(d["B"], 6, 0.1), d["G"], d["H"], d["X"]
        ),
        lambda d, dy: td.tridiag_vjp(
            _split(d["A"], 6, 0.2), _split(d["B"], 6, 0.1), d["G"], d["H"], d["X"], dy
        ),
        lambda rng, n: {
            "A": 0.4 * rng.standard_normal(3 * n - 2),
            "B": 0.4 * rng.standard_normal(3 * n - 2),
            "G": rng.standard_normal((n, 2)),
            "H": rng.standard_normal((n, 2)),
        },
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_real_matrix_complex_data(rng, family):
    f, vjp, params = FAMILIES[family]
    n = 6
    x = params(rng, n)
    x["X"] = _c(rng, (n, 3))
    y = f(x)
    real_x = dict(x, X=x["X"].real)
    imag_x = dict(x, X=x["X"].imag)
    np.testing.assert_allclose(y, f(real_x) + 1j * f(imag_x), rtol=1e-12, atol=1e-12)
    g = vjp(x, _c(rng, y.shape))
    for key in x:
        if key != "X":
            assert not np.iscomplexobj(g[key]), key
    assert check_vjp(f, vjp, x, rng=rng) < 1e-6


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("r", [1, 2])
def test_read_only_inputs_are_not_modified(rng, family, r):
    """Read-only generators (as LDRMatrix stores them), rank 1, one column."""
    f, vjp, params = FAMILIES[family]
    n = 6
    x = params(rng, n)
    x["G"], x["H"] = x["G"][:, :r].copy(), x["H"][:, :r].copy()
    x["X"] = rng.standard_normal((n, 1))
    before = {k: v.copy() for k, v in x.items()}
    for v in x.values():
        v.setflags(write=False)
    y = f(x)
    g = vjp(x, np.ones_like(y))
    for k, v in x.items():
        np.testing.assert_array_equal(v, before[k])
    np.testing.assert_allclose(y, f(before), rtol=1e-13)
    g2 = vjp(before, np.ones_like(y))
    for k in g:
        np.testing.assert_allclose(g[k], g2[k], rtol=1e-12, atol=1e-12)
