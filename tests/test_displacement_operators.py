"""Displacement operators against their dense matrices."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import krylov, random_matrix, rel_err, shift_matrix

import lowdisp as ld
from lowdisp.testing import dottest


def _ops(rng, n, dt):
    v = lambda k: random_matrix(rng, k, 1, dt)[:, 0]  # noqa: E731
    f = 0.7 - 0.2j if dt is np.complex128 else -1.3
    return [
        ld.Shift(n),
        ld.Shift(n, f),
        ld.Diagonal(v(n)),
        ld.Subdiagonal(v(n - 1)),
        ld.Subdiagonal(v(n - 1), f),
        ld.Tridiagonal(v(n - 1), v(n), v(n - 1)),
        ld.Tridiagonal(v(n - 1), v(n), v(n - 1), f),
    ]


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_operators_match_dense(n, dt, rng):
    for op in _ops(rng, n, dt):
        for A in (op, op.T, op.conj()):
            D = A.toarray()
            assert D.shape == (n, n) == A.shape
            x = random_matrix(rng, n, 3, dt)
            assert rel_err(A.matvec(x), D @ x) < 1e-15
            assert rel_err(A.matvec(x[:, 0]), D @ x[:, 0]) < 1e-15
            assert rel_err(A.rmatvec(x), D.conj().T @ x) < 1e-15
            assert rel_err(A.krylov(x[:, 0]), krylov(D, x[:, 0])) < 1e-13
            assert A.krylov(x[:, 0], 3).shape == (n, 3)
            dottest(A, rng=rng, rtol=1e-13)
        assert op.T.T is op
        assert rel_err(op.conj().toarray(), op.toarray().conj()) == 0


def test_operator_values():
    assert np.array_equal(ld.Shift(4, 2.0).toarray(), shift_matrix(4, 2.0))
    assert np.array_equal(ld.Subdiagonal(np.ones(3), 2.0).toarray(), shift_matrix(4, 2.0))
    T = ld.Tridiagonal([1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0], f=0.5)
    assert np.array_equal(T.params, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert T.toarray()[0, 2] == 0.5
    assert np.array_equal(ld.Diagonal([1.0, 2.0]).params, [1.0, 2.0])
    assert ld.Shift(3).params.size == 0
    assert ld.Subdiagonal([2.0, 3.0], 0.5).alpha == 3.0
    assert ld.Shift(3, 1.0) == ld.Shift(3, 1.0) != ld.Shift(3, -1.0)
    # transposes compare by value (two separate objects), and differ from the operator
    assert ld.Shift(3).T == ld.Shift(3).T != ld.Shift(3)
    assert np.array_equal(ld.Shift(3).T.toarray(), shift_matrix(3, 0.0).T)


def test_operators_are_immutable():
    Z = ld.Shift(3)
    with pytest.raises(AttributeError, match="immutable"):
        Z.f = 2.0
    d = ld.Diagonal([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        d.d[0] = 5.0


def test_operator_errors():
    with pytest.raises(ValueError, match=r"Shift: n must be in \[1, inf\]; got 0"):
        ld.Shift(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        ld.Shift(2.5)
    with pytest.raises(ValueError, match="f must be finite"):
        ld.Shift(3, np.inf)
    with pytest.raises(ValueError, match="d must have 1 dimension"):
        ld.Diagonal(np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least one entry"):
        ld.Diagonal([])
    with pytest.raises(ValueError, match="s must be finite"):
        ld.Subdiagonal([1.0, np.nan])
    with pytest.raises(ValueError, match="upper must have length n - 1 = 2"):
        ld.Tridiagonal([1.0, 1.0], [1.0, 2.0, 3.0], [1.0])
    with pytest.raises(ValueError, match="v must have length 3"):
        ld.Shift(3).krylov(np.ones(2))
    with pytest.raises(ValueError, match="x must have 3 rows"):
        ld.Diagonal([1.0, 2.0, 3.0]).rmatvec(np.ones((2, 2)))
    with pytest.raises(TypeError, match="base must be an operator"):
        ld.TransposedOperator(np.eye(2))
