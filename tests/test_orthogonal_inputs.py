"""Input contract of the orthogonal package (issue 10, classes 2-4).

0-size inputs give empty results of the right shape (or a clear error where
the mathematics has no empty case); ``np.matrix`` is read as a plain array
and masked arrays are refused with a message saying how to fill them;
float32 in gives float32 out, also at the extremes of the float32 range.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.orthogonal import (
    ExpMap,
    FullOrthogonal,
    FullUnitary,
    Householder,
    RestrictedUnitary,
    ScaledCayley,
    SVDParam,
    cayley,
    eigenphases,
    expm_skew,
    expm_skew_vjp,
    householder_apply,
    householder_apply_vjp,
    householder_product,
    orthogonality_error,
)

F32 = np.float32

# building np.matrix inputs is the point of some tests here
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


def ortho_err(W: np.ndarray) -> float:
    W = np.asarray(W, dtype=np.complex128)
    return float(np.linalg.norm(W.conj().T @ W - np.eye(W.shape[1]), 2))


# ---------------------------------------------------------------------------
# 0-size inputs
# ---------------------------------------------------------------------------


def test_empty_square_maps_return_empty():
    Z = np.zeros((0, 0))
    for out in (cayley(Z), cayley(Z, np.zeros(0)), cayley(Z, Z), expm_skew(Z), expm_skew_vjp(Z, Z)):
        assert out.shape == (0, 0) and out.dtype == np.float64
    assert cayley(Z.astype(F32)).dtype == F32
    assert householder_product(Z).shape == (0, 0)
    assert orthogonality_error(Z) == 0.0
    assert orthogonality_error(np.zeros((3, 0))) == 0.0
    assert eigenphases(Z).shape == (0,)


def test_no_reflectors_is_the_identity():
    assert np.array_equal(householder_product(np.zeros((3, 0))), np.eye(3))
    X = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(householder_apply(np.zeros((3, 0)), X), X)
    V = np.random.default_rng(0).standard_normal((3, 2))
    assert np.array_equal(householder_apply(V, X, tau=np.zeros(0)), X)


def test_reflector_of_length_zero_is_refused():
    with pytest.raises(ValueError, match=r"householder_product: V has 0 rows"):
        householder_product(np.zeros((0, 2)))


@pytest.mark.parametrize("tau", [None, [1.2, 0.7]])
def test_householder_products_with_no_columns(tau):
    V = np.random.default_rng(1).standard_normal((4, 2))
    X = np.ones((4, 0))
    assert householder_apply(V, X, tau=tau).shape == (4, 0)
    assert householder_apply(V, X, tau=tau, adjoint=True).shape == (4, 0)
    g = householder_apply_vjp(V, X, X, tau=tau)
    assert g["X"].shape == (4, 0) and g["V"].shape == (4, 2)
    assert not g["V"].any()


def test_map_products_with_no_columns():
    h = Householder(4, 2)
    th = h.sample(rng=0)
    assert h.apply(th, np.ones((4, 0))).shape == (4, 0)
    dth, dX = h.apply_vjp(th, np.ones((4, 0)), np.ones((4, 0)))
    assert dth.shape == (4, 2) and dX.shape == (4, 0) and not dth.any()
    sp = SVDParam(4, 3)
    ts = sp.sample(rng=0)
    assert sp.apply(ts, np.ones((3, 0))).shape == (4, 0)
    dth, dX = sp.apply_vjp(ts, np.ones((3, 0)), np.ones((4, 0)))
    assert dth.shape == sp.theta_shape and dX.shape == (3, 0)
    ru = RestrictedUnitary(4, rng=0)
    tr = ru.sample(rng=0)
    assert ru.apply(tr, np.ones((4, 0))).shape == (4, 0)
    dth, dX = ru.apply_vjp(tr, np.ones((4, 0)), np.ones((4, 0)))
    assert dth.shape == (28,) and dX.shape == (4, 0)


@pytest.mark.parametrize("cls", [ScaledCayley, ExpMap, Householder, FullUnitary])
def test_zero_order_maps_are_refused(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: n must be in \[1, inf\]; got 0"):
        cls(0)


@pytest.mark.parametrize("method", ["eigh", "pade"])
def test_order_one_skew_maps(method):
    """n = 1: theta is empty and W = [[1]] (ScaledCayley: D)."""
    assert np.array_equal(ExpMap(1, method=method).forward(np.zeros(0))[0], np.eye(1))
    assert np.array_equal(ScaledCayley(1, n_neg=1).forward(np.zeros(0))[0], -np.eye(1))


# ---------------------------------------------------------------------------
# ndarray subclasses
# ---------------------------------------------------------------------------


def test_matrix_is_read_as_plain_array(rng):
    V = rng.standard_normal((4, 3))
    X = rng.standard_normal((4, 2))
    M = np.matrix
    for got, want in [
        (householder_product(M(V)), householder_product(V)),
        (householder_apply(M(V), M(X)), householder_apply(V, X)),
        (householder_apply_vjp(M(V), M(X), M(X))["V"], householder_apply_vjp(V, X, X)["V"]),
    ]:
        assert type(got) is np.ndarray and np.array_equal(got, want)
    A = rng.standard_normal((3, 3))
    A = A - A.T
    D = np.diag([1.0, -1.0, 1.0])
    assert type(cayley(M(A), M(D))) is np.ndarray
    assert np.array_equal(cayley(M(A), M(D)), cayley(A, D))
    assert np.array_equal(expm_skew(M(A)), expm_skew(A))
    assert orthogonality_error(M(np.eye(3))) == 0.0
    assert np.array_equal(eigenphases(M(D)), eigenphases(D))


@pytest.mark.parametrize(
    "p",
    [Householder(4), ScaledCayley(4, n_neg=1), ExpMap(4), FullUnitary(4), FullOrthogonal(4)],
    ids=lambda p: type(p).__name__,
)
def test_matrix_into_the_maps(p):
    th = p.sample(rng=0)
    W, cache = p.forward(th)
    Wm = np.matrix(W)
    assert p.in_manifold(Wm)
    th2 = p.right_inverse(Wm)
    assert type(th2) is np.ndarray
    assert np.abs(p.forward(th2)[0] - W).max() < 1e-10
    g = p.vjp(cache, np.matrix(np.ones(W.shape)))
    assert type(g) is np.ndarray and g.shape == p.theta_shape
    if th.ndim == 2:
        assert np.array_equal(p.forward(np.matrix(th))[0], W)


def test_matrix_apply_and_riemannian_step(rng):
    h = Householder(4, 2)
    th = h.sample(rng=0)
    X = rng.standard_normal((4, 3))
    assert np.array_equal(h.apply(np.matrix(th), np.matrix(X)), h.apply(th, X))
    fo = FullOrthogonal(3)
    W = fo.sample(rng=0)
    G = rng.standard_normal((3, 3))
    out = fo.riemannian_step(np.matrix(W), np.matrix(G), 0.1)
    assert type(out) is np.ndarray and np.array_equal(out, fo.riemannian_step(W, G, 0.1))


def _masked(x):
    m = np.ma.masked_array(np.asarray(x, dtype=float))
    m[(0,) * m.ndim] = np.ma.masked
    return m


@pytest.mark.parametrize(
    ("call", "where", "name"),
    [
        (lambda m: householder_product(m((4, 2))), "householder_product", "V"),
        (lambda m: householder_apply(np.ones((4, 2)), m((4, 3))), "householder_apply", "X"),
        (lambda m: cayley(m((3, 3))), "cayley", "A"),
        (lambda m: cayley(np.zeros((3, 3)), m((3,))), "cayley", "D"),
        (lambda m: expm_skew(m((3, 3))), "expm_skew", "A"),
        (lambda m: orthogonality_error(m((3, 3))), "orthogonality_error", "W"),
        (lambda m: eigenphases(m((3, 3))), "eigenphases", "W"),
        (lambda m: Householder(3).right_inverse(m((3, 3))), "Householder.right_inverse", "W"),
        (lambda m: ScaledCayley(3).forward(m((3,))), "ScaledCayley.forward", "theta"),
        (lambda m: ExpMap(3).forward(m((3,))), "ExpMap.forward", "theta"),
        (lambda m: ExpMap(3).skew(m((3,))), "ExpMap.skew", "theta"),
        (lambda m: ExpMap(3).in_manifold(m((3, 3))), "ExpMap.in_manifold", "W"),
        (lambda m: RestrictedUnitary(3, perm=m((3,))), "RestrictedUnitary", "perm"),
        (lambda m: SVDParam(2, 2).forward(m((10,))), "SVDParam.forward", "theta"),
        (lambda m: SVDParam(2, 2).in_manifold(m((2, 2))), "SVDParam.in_manifold", "W"),
        (lambda m: Householder(3, 1).forward(m((3, 1))), "Householder.forward", "theta"),
        (lambda m: Householder(3, 1).apply(np.ones((3, 1)), m((3, 2))), "Householder.apply", "X"),
        (
            lambda m: FullUnitary(2).riemannian_step(m((2, 2)), np.eye(2), 0.1),
            "riemannian_step",
            "W",
        ),
    ],
)
def test_masked_arrays_are_refused(call, where, name):
    def m(shape):
        x = np.eye(*shape) if len(shape) == 2 else np.arange(shape[0])
        return _masked(x)

    with pytest.raises(ValueError, match=rf"{where}: {name} is a masked array.*np\.ma\.filled"):
        call(m)


# ---------------------------------------------------------------------------
# float32 in, float32 out
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p",
    [
        Householder(5, dtype=F32),
        Householder(5, 2, dtype=F32),
        ScaledCayley(5, n_neg=2, dtype=F32),
        ExpMap(5, dtype=F32),
        ExpMap(5, method="pade", dtype=F32),
        SVDParam(5, 3, dtype=F32),
    ],
    ids=repr,
)
def test_float32_maps_keep_float32(p):
    th = p.sample(rng=0)
    assert th.dtype == F32
    W, cache = p.forward(th)
    assert W.dtype == F32
    assert p.vjp(cache, np.ones(W.shape, F32)).dtype == F32
    if isinstance(p, SVDParam):  # singular values at the band centre are not strictly inside
        W = p.forward(th + F32(0.3))[0]
    assert p.right_inverse(W).dtype == F32


def test_float32_functions_keep_float32(rng):
    V = rng.standard_normal((4, 2)).astype(F32)
    X = rng.standard_normal((4, 3)).astype(F32)
    A = rng.standard_normal((4, 4)).astype(F32)
    A = A - A.T
    assert householder_product(V).dtype == F32
    assert householder_apply(V, X).dtype == F32
    assert all(g.dtype == F32 for g in householder_apply_vjp(V, X, X).values())
    assert cayley(A).dtype == F32
    assert cayley(A, np.ones(4, F32)).dtype == F32
    assert expm_skew(A).dtype == F32
    assert expm_skew_vjp(A, A).dtype == F32
    assert expm_skew_vjp(100 * A, A).dtype == F32  # spectral path
    assert eigenphases(expm_skew(A)).dtype == F32


@given(k=st.integers(-120, 120), seed=st.integers(0, 2**16))
def test_float32_extreme_scales(k, seed):
    """Across the float32 range (2**+-120) the float32 maps stay orthogonal to float32 rounding."""
    rng = np.random.default_rng(seed)
    for p in (Householder(4, dtype=F32), ScaledCayley(4, 1, dtype=F32), ExpMap(4, dtype=F32)):
        th = np.ldexp(rng.standard_normal(p.theta_shape), k).astype(F32)
        if isinstance(p, Householder) and (th == 0).all(axis=0).any():
            continue
        W, _ = p.forward(th)
        assert W.dtype == F32
        assert ortho_err(W) <= 1e-5


@pytest.mark.parametrize("method", ["scaled_cayley", "householder", "svd", "expm", "full_unitary"])
@pytest.mark.parametrize(
    ("tol", "exc"), [(-1.0, ValueError), (np.nan, ValueError), (True, TypeError), ("a", TypeError)]
)
def test_manifold_tolerance_is_validated(method, tol, exc):
    # in_manifold(W, tol=-1) was a silent False, tol=True a silent True
    from lowdisp.orthogonal import orthogonal

    p = orthogonal(3, method=method)
    W = p.sample(rng=0) if method == "full_unitary" else p.forward(p.sample(rng=0))[0]
    with pytest.raises(exc, match="tol must be"):
        p.in_manifold(W, tol=tol)
    with pytest.raises(exc, match="tol must be"):
        p.right_inverse(W, tol=tol)
    assert p.in_manifold(W, tol=1e-8)


@pytest.mark.parametrize("bad", ["no", None, 0, np.array([True])])
def test_boolean_options_are_validated(bad):
    # a string such as "no" is truthy: haar(complex="no") was complex
    from lowdisp.orthogonal import FullUnitary, cayley_init, haar, henaff

    with pytest.raises(TypeError, match="haar: complex must be True or False"):
        haar(3, rng=0, complex=bad)
    with pytest.raises(TypeError, match="henaff: skew must be True or False"):
        henaff(3, rng=0, skew=bad)
    with pytest.raises(TypeError, match="cayley_init: skew must be True or False"):
        cayley_init(3, rng=0, skew=bad)
    with pytest.raises(TypeError, match="FullUnitary: real must be True or False"):
        FullUnitary(3, real=bad)
    assert haar(3, rng=0, complex=np.bool_(True)).dtype == np.complex128


def _oe(W):
    W = np.asarray(W, dtype=np.complex128)
    assert np.isfinite(W).all()
    return float(np.linalg.norm(W.conj().T @ W - np.eye(W.shape[1]), 2))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_issue10_matrix_into_householder_and_right_inverse():
    import lowdisp as ld

    V = np.matrix(np.random.default_rng(0).standard_normal((4, 4)))
    Q = ld.householder_product(V)
    assert type(Q) is np.ndarray and _oe(Q) <= 1e-13
    h = ld.Householder(4)
    th = h.right_inverse(np.matrix(Q))
    assert np.abs(h.forward(th)[0] - Q).max() <= 1e-10
