"""Initializations (haar, henaff, cayley_init, torus, identity) and the diagnostics
orthogonality_error and eigenphases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from lowdisp.orthogonal import (
    cayley_init,
    eigenphases,
    haar,
    henaff,
    identity,
    orthogonality_error,
    torus,
)
from tests import oracles


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_inits_are_orthogonal(rng, n):
    for W in (henaff(n, rng=rng), cayley_init(n, rng=rng), haar(n, rng=rng), torus(n, rng=rng)):
        assert W.shape == (n, n)
        assert orthogonality_error(W) < 1e-13
    assert orthogonality_error(haar(n, rng=rng, complex=True)) < 1e-13
    assert np.array_equal(identity(n), np.eye(n))


def test_init_generators_and_phases(rng):
    n = 8
    A = henaff(n, rng=0, skew=True)
    assert np.array_equal(A, -A.T)
    assert oracles.rel_err(henaff(n, rng=0), sla.expm(A)) < 1e-13
    C = cayley_init(n, rng=1, skew=True)
    assert oracles.rel_err(cayley_init(n, rng=1), oracles.cayley_naive(C)) < 1e-13
    phases = eigenphases(cayley_init(64, rng=rng))
    assert phases.min() >= -np.pi / 2 - 1e-12 and phases.max() <= np.pi / 2 + 1e-12
    # henaff/torus: eigenphases spread over the whole circle
    for W in (henaff(64, rng=rng), torus(64, rng=rng)):
        ph = eigenphases(W)
        assert ph.min() < -2.5 and ph.max() > 2.5
    assert np.linalg.det(torus(5, rng=rng)) == pytest.approx(1.0)
    assert henaff(4, rng=0, dtype=np.float32).dtype == np.float32


def test_inits_bad_input():
    with pytest.raises(ValueError, match="henaff: n must be in"):
        henaff(0)
    with pytest.raises(TypeError, match="cayley_init: dtype must be float32 or float64"):
        cayley_init(3, dtype=np.int32)
    with pytest.raises(TypeError, match="haar: complex samples are complex128"):
        haar(3, complex=True, dtype=np.float64)
    with pytest.raises(TypeError, match="identity: dtype must be"):
        identity(3, dtype=np.int64)
    with pytest.raises(TypeError, match="rng must be"):
        torus(3, rng="seed")


def test_diagnostics(rng):
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert np.allclose(eigenphases(R), [-np.pi / 2, np.pi / 2])
    assert orthogonality_error(3 * np.eye(2)) == pytest.approx(8.0)
    Q = haar(6, rng=rng)
    assert orthogonality_error(Q[:, :4]) < 1e-14  # tall: orthonormal columns
    E = Q + 1e-6 * rng.standard_normal((6, 6))
    ref = np.linalg.norm(E.T @ E - np.eye(6), 2)
    assert orthogonality_error(E) == pytest.approx(ref, rel=1e-8)
    with pytest.raises(ValueError, match="at least as many rows as columns"):
        orthogonality_error(np.ones((2, 3)))
    with pytest.raises(ValueError, match="eigenphases: W must be a square matrix"):
        eigenphases(np.ones((2, 3)))
    with pytest.raises(ValueError, match="W must be finite"):
        orthogonality_error(np.full((2, 2), np.nan))
