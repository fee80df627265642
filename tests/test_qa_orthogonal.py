"""QA regressions for lowdisp.orthogonal: defects found by adversarial use."""

import numpy as np
import pytest

from lowdisp.orthogonal import Householder, householder_apply, householder_apply_vjp


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


def _theta(p, seed):
    th = p.sample(rng=seed)
    if isinstance(th, np.ndarray) and th.dtype.kind == "f":
        th = th + 0.1 * np.random.default_rng(seed).standard_normal(th.shape)
    return th


@pytest.mark.parametrize("method", ["scaled_cayley", "householder", "svd", "expm"])
def test_vjp_cache_survives_in_place_updates(method):
    # Householder/SVDParam caches referenced theta and ScaledCayley's referenced
    # the returned W: an in-place optimizer step (or W *= c) changed the gradient
    from lowdisp.orthogonal import orthogonal

    p = orthogonal(4, method=method)
    th = _theta(p, 3)
    th_ref = th.copy()
    dW = np.random.default_rng(4).standard_normal(p.forward(th)[0].shape)
    g_ref = p.vjp(p.forward(th_ref)[1], dW)

    W, cache = p.forward(th)
    th[...] = 0.0  # e.g. an optimizer updating the parameter in place
    W[...] = 0.0  # e.g. a caller rescaling W in place
    np.testing.assert_array_equal(p.vjp(cache, dW), g_ref)


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e3, 1e8, 1e15])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_expm_skew_stays_orthogonal_for_large_norms(rng, scale, dtype):
    # scaling and squaring gave ||W^T W - I|| = 5e-7 at ||A|| ~ 1e8 and 3e10 at 1e15
    import scipy.linalg as sla

    from lowdisp.orthogonal import expm_skew, orthogonality_error

    n = 12
    P = rng.standard_normal((n, n))
    if np.dtype(dtype).kind == "c":
        P = P + 1j * rng.standard_normal((n, n))
    A = ((P - P.conj().T) * scale).astype(dtype)
    W = expm_skew(A)
    assert W.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert orthogonality_error(W) < tol
    if scale <= 1.0:
        ref = sla.expm(A.astype(np.result_type(A, np.float64)))
        np.testing.assert_allclose(W, ref, rtol=0, atol=10 * tol)


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


# --- issue 10: the reproducers of the bad-input campaign, verbatim --------------------


def _oe(W):
    W = np.asarray(W, dtype=np.complex128)
    assert np.isfinite(W).all()
    return float(np.linalg.norm(W.conj().T @ W - np.eye(W.shape[1]), 2))


def test_issue10_householder_extreme_scales():
    import lowdisp as ld

    h = ld.Householder(4)
    th = h.sample(rng=0)
    W0 = h.forward(th)[0]
    for c in (1e155, 1e-170):  # all NaN; "column 0 is zero" (false)
        W = h.forward(c * th)[0]
        assert _oe(W) <= 1e-13 and np.abs(W - W0).max() <= 1e-13


def test_issue10_restricted_unitary_tiny_reflections():
    import lowdisp as ld

    ru = ld.RestrictedUnitary(4, rng=0)
    th = ru.sample(rng=0)
    th[12:] *= 1e-170  # ZeroDivisionError
    assert _oe(ru.forward(th)[0]) <= 1e-13


def test_issue10_exp_and_cayley_large_theta():
    import lowdisp as ld

    th = np.random.default_rng(0).standard_normal(3)
    assert _oe(ld.ExpMap(3, method="pade").forward(1e20 * th)[0]) <= 1e-13  # NaN
    sc = ld.ScaledCayley(3)
    theta = sc.sample(rng=0)
    assert _oe(sc.forward(1e10 * theta)[0]) <= 1e-13  # 4e-7
    assert _oe(sc.forward(1e16 * theta)[0]) <= 1e-13  # "-1 is an eigenvalue of A"
    e = ld.ExpMap(5)
    t5 = np.random.default_rng(1).standard_normal(10)
    for c in (1e12, 1e16):  # 6e-8, 0.7
        assert _oe(e.forward(c * t5)[0]) <= 1e-13


def test_issue10_orthogonality_error_huge_and_empty():
    import lowdisp as ld

    assert ld.orthogonality_error(1e200 * np.eye(3)) == np.inf  # NaN + "DLASCL illegal value"
    assert ld.cayley(np.zeros((0, 0))).shape == (0, 0)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_issue10_matrix_into_householder_and_right_inverse():
    import lowdisp as ld

    V = np.matrix(np.random.default_rng(0).standard_normal((4, 4)))
    Q = ld.householder_product(V)
    assert type(Q) is np.ndarray and _oe(Q) <= 1e-13
    h = ld.Householder(4)
    th = h.right_inverse(np.matrix(Q))
    assert np.abs(h.forward(th)[0] - Q).max() <= 1e-10
