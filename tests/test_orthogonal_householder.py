"""Householder products in compact-WY form and the Householder parameterization."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator

from lowdisp.exceptions import NotOnManifoldError, RankError
from lowdisp.orthogonal import (
    Householder,
    householder_apply,
    householder_apply_vjp,
    householder_product,
    orthogonality_error,
)
from lowdisp.testing import check_jacobian, check_vjp, dottest
from tests import oracles

DTYPES = [np.float64, np.complex128]


@given(
    n=st.integers(1, 9),
    k=st.integers(1, 12),
    cplx=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_product_matches_naive_and_is_unitary(n, k, cplx, seed):
    rng = np.random.default_rng(seed)
    V = oracles.random_matrix(rng, n, k, np.complex128 if cplx else np.float64)
    Q = householder_product(V)
    assert oracles.rel_err(Q, oracles.householder_product_naive(V)) < 1e-12
    assert orthogonality_error(Q) < 1e-13


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 7), (9, 4), (4, 6), (1, 1)])
def test_product_reproduces_scipy_qr_raw(rng, dtype, shape):
    A = oracles.random_matrix(rng, *shape, dtype)
    (qr, tau), _ = sla.qr(A, mode="raw")
    Q_ref = sla.qr(A)[0]
    Q = householder_product(qr, tau)
    assert np.abs(Q - Q_ref).max() < 1e-12
    assert np.abs(Q - oracles.householder_product_naive(qr, tau)).max() < 1e-12


def test_product_with_zero_tau_is_identity_reflector(rng):
    V = rng.standard_normal((5, 3))
    tau = np.array([1.2, 0.0, 0.7])
    assert (
        np.abs(householder_product(V, tau) - oracles.householder_product_naive(V, tau)).max()
        < 1e-13
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_tau", [False, True])
@pytest.mark.parametrize("adjoint", [False, True])
def test_apply_matches_dense(rng, dtype, use_tau, adjoint):
    n, k, b = 8, 3, 4
    V = oracles.random_matrix(rng, n, k, dtype)
    tau = None
    if use_tau:
        (V, tau), _ = sla.qr(oracles.random_matrix(rng, n, k, dtype), mode="raw")
    X = oracles.random_matrix(rng, n, b, dtype)
    Q = oracles.householder_product_naive(V, tau)
    ref = (Q.conj().T if adjoint else Q) @ X
    out = householder_apply(V, X, tau=tau, adjoint=adjoint)
    assert oracles.rel_err(out, ref) < 1e-13
    out1 = householder_apply(V, X[:, 0], tau=tau, adjoint=adjoint)
    assert out1.shape == (n,)
    assert oracles.rel_err(out1, ref[:, 0]) < 1e-13


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_tau", [False, True])
def test_apply_adjoint_dottest(rng, dtype, use_tau):
    n, k = 9, 4
    V = oracles.random_matrix(rng, n, k, dtype)
    tau = None
    if use_tau:
        (V, tau), _ = sla.qr(V, mode="raw")
    op = LinearOperator(
        (n, n),
        matvec=lambda x: householder_apply(V, x, tau=tau),
        rmatvec=lambda y: householder_apply(V, y, tau=tau, adjoint=True),
        matmat=lambda X: householder_apply(V, X, tau=tau),
        rmatmat=lambda Y: householder_apply(V, Y, tau=tau, adjoint=True),
        dtype=dtype,
    )
    dottest(op, rng=rng, rtol=1e-13)


def test_apply_float32_keeps_precision(rng):
    V = rng.standard_normal((6, 2)).astype(np.float32)
    X = rng.standard_normal((6, 3)).astype(np.float32)
    out = householder_apply(V, X)
    assert out.dtype == np.float32
    assert oracles.rel_err(out, oracles.householder_product_naive(V) @ X) < 1e-5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_tau", [False, True])
@pytest.mark.parametrize("adjoint", [False, True])
def test_apply_vjp_directional(rng, dtype, use_tau, adjoint):
    n, k, b = 7, 3, 2
    x = {"V": oracles.random_matrix(rng, n, k, dtype), "X": oracles.random_matrix(rng, n, b, dtype)}
    if use_tau:
        (x["V"], x["tau"]), _ = sla.qr(oracles.random_matrix(rng, n, k, dtype), mode="raw")

    def f(p):
        return householder_apply(p["V"], p["X"], tau=p.get("tau"), adjoint=adjoint)

    def vjp(p, dy):
        return householder_apply_vjp(p["V"], p["X"], dy, tau=p.get("tau"), adjoint=adjoint)

    check_vjp(f, vjp, x, rng=rng, rtol=1e-7)


@pytest.mark.parametrize("adjoint", [False, True])
def test_apply_vjp_full_jacobian(rng, adjoint):
    n, k, b = 4, 2, 2
    X = rng.standard_normal((n, b))
    V0 = rng.standard_normal((n, k))

    def f(v):
        return householder_apply(v, X, adjoint=adjoint)

    def vjp(v, dy):
        return householder_apply_vjp(v, X, dy, adjoint=adjoint)["V"]

    check_jacobian(f, vjp, V0, rtol=1e-7)
    tau = np.array([0.6, 1.3])

    def ft(t):
        return householder_apply(V0, X, tau=t, adjoint=adjoint)

    def vt(t, dy):
        return householder_apply_vjp(V0, X, dy, tau=t, adjoint=adjoint)["tau"]

    check_jacobian(ft, vt, tau, rtol=1e-7)


def test_apply_vjp_gradient_at_zero_tau(rng):
    # tau = 0 (LAPACK's identity reflector) still has a derivative in tau.
    V = rng.standard_normal((5, 2))
    X = rng.standard_normal((5, 3))
    tau = np.array([0.0, 0.9])
    check_jacobian(
        lambda t: householder_apply(V, X, tau=t),
        lambda t, dy: householder_apply_vjp(V, X, dy, tau=t)["tau"],
        tau,
        rtol=1e-7,
    )


# --- the parameterization ---------------------------------------------------


@pytest.mark.parametrize("n,k", [(5, 5), (6, 2), (3, 7)])
def test_householder_param_gradients(rng, n, k):
    h = Householder(n, k=k)
    th = h.sample(rng=rng)

    def f(t):
        return h.forward(t)[0]

    def vjp(t, dy):
        return h.vjp(h.forward(t)[1], dy)

    check_vjp(f, vjp, th, rng=rng, rtol=1e-7)
    if n * k <= 36:
        check_jacobian(f, vjp, th, rtol=1e-7)


@pytest.mark.parametrize("n", [16, 512])
def test_householder_param_orthogonal_large(rng, n):
    h = Householder(n, k=min(n, 64))
    W, _ = h.forward(h.sample(rng=rng))
    assert orthogonality_error(W) <= 1e-12
    assert h.in_manifold(W)


def test_householder_apply_and_apply_vjp(rng):
    h = Householder(6, k=3)
    th = h.sample(rng=rng)
    X = rng.standard_normal((6, 4))
    W = h.forward(th)[0]
    assert oracles.rel_err(h.apply(th, X), W @ X) < 1e-13
    assert oracles.rel_err(h.apply(th, X, adjoint=True), W.T @ X) < 1e-13
    check_vjp(
        lambda t: h.apply(t, X),
        lambda t, dy: h.apply_vjp(t, X, dy)[0],
        th,
        rng=rng,
        rtol=1e-7,
    )
    _, dX = h.apply_vjp(th, X, np.ones((6, 4)))
    assert oracles.rel_err(dX, W.T @ np.ones((6, 4))) < 1e-13


@pytest.mark.parametrize("n,k", [(5, 5), (6, 6), (6, 8), (4, 3), (96, 12)])
def test_householder_right_inverse_round_trip(rng, n, k):
    h = Householder(n, k=k)
    # a product of k random reflectors: reachable with k (rank(W - I) <= k, det (-1)^k)
    W = oracles.householder_product_naive(rng.standard_normal((n, k)))
    th = h.right_inverse(W)
    assert th.shape == (n, k)
    assert np.abs(h.forward(th)[0] - W).max() < 1e-10


def test_householder_right_inverse_errors(rng):
    h = Householder(4, k=4)
    with pytest.raises(NotOnManifoldError, match="not orthogonal"):
        h.right_inverse(rng.standard_normal((4, 4)))
    with pytest.raises(NotOnManifoldError, match="determinant"):
        h.right_inverse(np.diag([-1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(NotOnManifoldError, match="needs 4 reflectors"):
        Householder(4, k=2).right_inverse(-np.eye(4))
    assert not h.in_manifold(np.diag([-1.0, 1.0, 1.0, 1.0]))
    assert not h.in_manifold(np.eye(3))


def test_householder_bad_input(rng):
    with pytest.raises(ValueError, match="n must be in"):
        Householder(0)
    with pytest.raises(RankError, match="k must be in"):
        Householder(3, k=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        Householder(3, dtype=np.int64)
    h = Householder(3, k=2)
    with pytest.raises(ValueError, match=r"theta must have shape \(3, 2\)"):
        h.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="theta must be finite"):
        h.forward(np.full((3, 2), np.nan))
    with pytest.raises(TypeError, match="theta must be real"):
        h.forward(np.ones((3, 2), dtype=complex))
    with pytest.raises(ValueError, match="column 1 is zero"):
        h.forward(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
    _, cache = h.forward(h.sample(rng=rng))
    with pytest.raises(ValueError, match=r"dW must have shape \(3, 3\)"):
        h.vjp(cache, np.ones((3, 2)))
    with pytest.raises(ValueError, match="must have 3 rows"):
        h.apply(h.sample(rng=rng), np.ones(4))
    with pytest.raises(TypeError, match=r"Householder\.apply: X must be real"):
        h.apply(h.sample(rng=rng), np.ones(3) * 1j)
    with pytest.raises(TypeError, match=r"Householder\.apply_vjp: dY must be real"):
        h.apply_vjp(h.sample(rng=rng), np.ones(3), np.ones(3) * 1j)


def test_functional_bad_input(rng):
    V = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="V must have 2 dimension"):
        householder_product(np.ones(4))
    with pytest.raises(ValueError, match="householder_apply: X must have 4 rows"):
        householder_apply(V, np.ones((5, 2)))
    with pytest.raises(ValueError, match="X must be finite"):
        householder_apply(V, np.full(4, np.nan))
    with pytest.raises(TypeError, match="V must hold real or complex"):
        householder_product(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"len\(tau\) must be <="):
        householder_product(V, np.ones(3))
    with pytest.raises(ValueError, match="column 0 is zero"):
        householder_apply(np.zeros((4, 1)), np.ones(4))
    with pytest.raises(ValueError, match="dY must have the shape of X"):
        householder_apply_vjp(V, np.ones((4, 2)), np.ones((4, 3)))


@pytest.mark.parametrize("bad", ["yes", "no", None, 1, np.array([True])])
def test_householder_adjoint_must_be_a_bool(bad):
    # a truthy string silently applied Q^H
    V = np.eye(3)[:, :1] + 0.5
    X = np.ones(3)
    with pytest.raises(TypeError, match="householder_apply: adjoint must be True or False"):
        householder_apply(V, X, adjoint=bad)
    with pytest.raises(TypeError, match="householder_apply_vjp: adjoint must be True or False"):
        householder_apply_vjp(V, X, X, adjoint=bad)
    h = Householder(3, k=1)
    with pytest.raises(TypeError, match=r"Householder\.apply: adjoint must be True or False"):
        h.apply(h.sample(rng=0), X, adjoint=bad)


def test_householder_adjoint_accepts_numpy_bools():
    V = np.eye(3)[:, :1] + 0.5
    X = np.arange(3.0)
    Q = np.eye(3) - 2 * np.outer(V[:, 0], V[:, 0]) / (V[:, 0] @ V[:, 0])
    np.testing.assert_allclose(householder_apply(V, X, adjoint=np.bool_(True)), Q.T @ X)
    np.testing.assert_allclose(householder_apply(V, X, adjoint=False), Q @ X)
