"""ExpMap, SVDParam, FullUnitary, RestrictedUnitary: values, gradients, inverses, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st

from lowdisp.exceptions import NotOnManifoldError, RankError
from lowdisp.orthogonal import (
    ExpMap,
    FullOrthogonal,
    FullUnitary,
    Householder,
    RestrictedUnitary,
    ScaledCayley,
    SVDParam,
    expm_skew,
    expm_skew_vjp,
    haar,
    orthogonal,
    orthogonality_error,
)
from lowdisp.testing import check_jacobian, check_vjp
from tests import oracles


def _grad_checks(p, th, rng, *, jacobian=True):
    def f(t):
        return p.forward(t)[0]

    def vjp(t, dy):
        return p.vjp(p.forward(t)[1], dy)

    check_vjp(f, vjp, th, rng=rng, rtol=1e-7)
    if jacobian:
        if p.is_complex:
            # full Jacobian of the real and imaginary parts separately
            check_jacobian(lambda t: f(t).real, vjp, th, rtol=1e-7)
            check_jacobian(lambda t: f(t).imag, lambda t, dy: vjp(t, 1j * dy), th, rtol=1e-7)
        else:
            check_jacobian(f, vjp, th, rtol=1e-7)


# --- expm ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_expm_skew_matches_series(rng, dtype):
    P = oracles.random_matrix(rng, 6, 6, dtype)
    A = P - P.conj().T
    W = expm_skew(A)
    assert oracles.rel_err(W, oracles.expm_series(A)) < 1e-12
    assert orthogonality_error(W) < 1e-13


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_expm_skew_vjp(rng, dtype):
    P = oracles.random_matrix(rng, 5, 5, dtype)

    def f(p):
        return expm_skew(p - p.conj().T)

    def vjp(p, dy):
        d = expm_skew_vjp(p - p.conj().T, dy)
        return d - d.conj().T

    check_vjp(f, vjp, P, rng=rng, rtol=1e-7)


def test_expm_skew_bad_input():
    with pytest.raises(ValueError, match=r"A must be skew-symmetric.*Project"):
        expm_skew(np.ones((3, 3)))
    with pytest.raises(ValueError, match="A must be skew-Hermitian"):
        expm_skew(np.eye(2) * 1j + np.ones((2, 2)))
    with pytest.raises(ValueError, match="A must be a square matrix"):
        expm_skew(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="A must be finite"):
        expm_skew(np.array([[0.0, np.nan], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"dW must have shape \(2, 2\)"):
        expm_skew_vjp(np.zeros((2, 2)), np.ones((3, 3)))


@pytest.mark.parametrize("method", ["eigh", "pade"])
@pytest.mark.parametrize("n", [3, 4])
def test_expmap_gradients(rng, n, method):
    e = ExpMap(n, method=method)
    _grad_checks(e, rng.standard_normal(e.theta_shape), rng)


def test_expmap_eigh_handles_repeated_eigenvalues(rng):
    # theta = 0 and block-repeated angles: the divided differences must stay finite
    e = ExpMap(4)
    ref = ExpMap(4, method="pade")
    for th in (np.zeros(6), np.array([1.0, 0, 0, 0, 0, 1.0])):
        G = rng.standard_normal((4, 4))
        W, c = e.forward(th)
        W2, c2 = ref.forward(th)
        assert np.abs(W - W2).max() < 1e-14
        assert np.abs(e.vjp(c, G) - ref.vjp(c2, G)).max() < 1e-13


@pytest.mark.parametrize("method", ["eigh", "pade"])
def test_expmap_values_and_right_inverse(rng, method):
    e = ExpMap(7, method=method)
    th = rng.standard_normal(e.theta_shape)
    W, _ = e.forward(th)
    assert oracles.rel_err(W, oracles.expm_series(oracles.skew_from_upper(th, 7))) < 1e-12
    assert e.in_manifold(W)
    assert np.abs(e.forward(e.right_inverse(W))[0] - W).max() < 1e-10
    # a pair of eigenvalues -1 (rotation by pi) is in SO(n) and reachable
    Q = haar(6, rng=rng)
    W = Q @ np.diag([-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]) @ Q.T
    e6 = ExpMap(6)
    assert np.abs(e6.forward(e6.right_inverse(W))[0] - W).max() < 1e-10
    with pytest.raises(NotOnManifoldError, match=r"det\(W\) = -1"):
        e6.right_inverse(Q @ np.diag([-1.0, 1, 1, 1, 1, 1]) @ Q.T)
    with pytest.raises(NotOnManifoldError, match="not orthogonal"):
        e6.right_inverse(np.ones((6, 6)))


def test_expmap_float32_and_errors(rng):
    e = ExpMap(5, dtype=np.float32)
    W, cache = e.forward(e.sample(rng=rng))
    assert W.dtype == np.float32 and orthogonality_error(W) < 1e-5
    assert e.vjp(cache, np.ones((5, 5), np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"theta must have shape \(10\)"):
        e.forward(np.zeros(9))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        ExpMap(3, dtype=np.complex128)
    with pytest.raises(ValueError, match="unknown method 'svd'; valid: 'eigh', 'pade'"):
        ExpMap(3, method="svd")


# --- SVD ------------------------------------------------------------------------


@pytest.mark.parametrize("m,n,k", [(3, 3, None), (4, 2, None), (2, 4, 1), (3, 3, 2)])
def test_svdparam_gradients(rng, m, n, k):
    sp = SVDParam(m, n, k=k, margin=0.2)
    th = sp.sample(rng=rng)
    th[-sp.r :] = rng.standard_normal(sp.r)
    _grad_checks(sp, th, rng, jacobian=sp.num_params <= 40)


@given(
    m=st.integers(1, 7),
    n=st.integers(1, 7),
    k=st.one_of(st.none(), st.integers(1, 7)),
    seed=st.integers(0, 2**32 - 1),
)
def test_svdparam_singular_values_in_band(m, n, k, seed):
    rng = np.random.default_rng(seed)
    sp = SVDParam(m, n, k=k, sigma_star=1.5, margin=0.25)
    th = sp.sample(rng=rng)
    th[-sp.r :] = 3 * rng.standard_normal(sp.r)
    W, _ = sp.forward(th)
    s = np.linalg.svd(W, compute_uv=False)
    assert np.all(s > 1.25 - 1e-12) and np.all(s < 1.75 + 1e-12)
    assert np.allclose(np.sort(s), np.sort(sp.sigma(th)), atol=1e-12)
    assert sp.in_manifold(W)
    X = rng.standard_normal((n, 3))
    assert oracles.rel_err(sp.apply(th, X), W @ X) < 1e-12


@pytest.mark.parametrize("m,n,k", [(4, 4, None), (5, 3, 2), (3, 5, None)])
def test_svdparam_apply_vjp(rng, m, n, k):
    sp = SVDParam(m, n, k=k, margin=0.2)
    th = sp.sample(rng=rng)
    th[-sp.r :] = rng.standard_normal(sp.r)
    X = rng.standard_normal((n, 3))
    check_vjp(
        lambda x: sp.apply(x["theta"], x["X"]),
        lambda x, dy: dict(zip(("theta", "X"), sp.apply_vjp(x["theta"], x["X"], dy))),
        {"theta": th, "X": X},
        rng=rng,
        rtol=1e-7,
    )
    dth, dx = sp.apply_vjp(th, X[:, 0], np.ones(m))
    assert dx.shape == (n,) and dth.shape == sp.theta_shape
    with pytest.raises(ValueError, match="dY must have shape"):
        sp.apply_vjp(th, X, np.ones((m, 2)))
    with pytest.raises(TypeError, match=r"SVDParam\.apply: X must be real"):
        sp.apply(th, X + 1j)


@pytest.mark.parametrize("m,n", [(4, 4), (5, 3), (3, 5)])
def test_svdparam_right_inverse(rng, m, n):
    sp = SVDParam(m, n, margin=0.1)
    th = sp.sample(rng=rng)
    th[-sp.r :] = rng.standard_normal(sp.r)
    W, _ = sp.forward(th)
    W2, _ = sp.forward(sp.right_inverse(W))
    assert np.abs(W2 - W).max() < 1e-10


def test_svdparam_errors(rng):
    sp = SVDParam(3, 3, margin=0.1)
    with pytest.raises(NotOnManifoldError, match=r"singular values must lie in \(0.9, 1.1\)"):
        sp.right_inverse(2 * np.eye(3))
    with pytest.raises(NotOnManifoldError, match="det W"):
        sp.right_inverse(np.diag([1.0, 1.0, -1.0]))  # ku + kv = 6 even: det > 0 only
    with pytest.raises(ValueError, match="margin must be <= sigma_star"):
        SVDParam(2, 2, sigma_star=0.5, margin=1.0)
    with pytest.raises(ValueError, match="sigma_star must be finite and > 0"):
        SVDParam(2, 2, sigma_star=0.0)
    with pytest.raises(RankError, match="k must be in"):
        SVDParam(2, 2, k=0)
    with pytest.raises(ValueError, match="zero"):
        sp.forward(np.zeros(sp.theta_shape))
    with pytest.raises(ValueError, match=r"dW must have shape \(3, 3\)"):
        sp.vjp(sp.forward(sp.sample(rng=rng))[1], np.ones((3, 2)))
    assert not sp.in_manifold(np.eye(3) * 1j)


# --- full unitary ------------------------------------------------------------------


@pytest.mark.parametrize("real", [False, True])
def test_riemannian_step_stays_unitary_1000_steps(rng, real):
    n = 16
    fu = FullUnitary(n, real=real)
    W = fu.sample(rng=rng)
    for _ in range(1000):
        G = oracles.random_matrix(rng, n, n, fu.dtype)
        W = fu.riemannian_step(W, G, 0.05)
    assert orthogonality_error(W) <= 1e-12
    assert fu.in_manifold(W)


@pytest.mark.parametrize("real", [False, True])
def test_riemannian_step_decreases_smooth_loss(rng, real):
    # L(W) = ||W - T||_F^2 / 2 for a unitary target T: gradient G = W - T.
    n = 8
    fu = FullUnitary(n, real=real)
    T = fu.sample(rng=rng)
    W = fu.sample(rng=rng)
    losses = []
    for _ in range(200):
        losses.append(0.5 * np.linalg.norm(W - T) ** 2)
        W = fu.riemannian_step(W, W - T, 0.1)
    losses = np.array(losses)
    live = losses[:-1] > 1e-20  # past that it is rounding noise
    assert np.all(np.diff(losses)[live] < 0)
    assert losses[-1] < 1e-6 * losses[0]
    # first order: W - lr (G - W G^H W)
    G = oracles.random_matrix(rng, n, n, fu.dtype)
    lr = 1e-5
    first = W - lr * (G - W @ G.conj().T @ W)
    assert np.abs(fu.riemannian_step(W, G, lr) - first).max() < 1e-8


def test_full_unitary_protocol(rng):
    fu = FullUnitary(4)
    W = fu.sample(rng=rng)
    assert fu.in_manifold(W) and fu.is_complex and fu.num_params == 16
    assert np.array_equal(fu.forward(W)[0], W)
    assert np.array_equal(fu.right_inverse(W), W)
    G = oracles.random_matrix(rng, 4, 4, np.complex128)
    assert np.array_equal(fu.vjp(None, G), G)
    with pytest.raises(NotOnManifoldError, match="not unitary"):
        fu.right_inverse(2 * W)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        fu.riemannian_step(W, G, -0.1)
    with pytest.raises(ValueError, match=r"G must have shape \(4, 4\)"):
        fu.riemannian_step(W, G[:3], 0.1)
    with pytest.raises(ValueError, match="G must be finite"):
        fu.riemannian_step(W, G * np.nan, 0.1)
    with pytest.raises(TypeError, match="G must be real"):
        FullOrthogonal(4).riemannian_step(np.eye(4), G, 0.1)
    assert FullOrthogonal(3).dtype == np.float64


# --- restricted unitary --------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4, 7])
def test_restricted_unitary_matches_naive(rng, n):
    ru = RestrictedUnitary(n, rng=rng)
    th = ru.sample(rng=rng)
    W, _ = ru.forward(th)
    assert oracles.rel_err(W, oracles.restricted_unitary_naive(th, ru.perm)) < 1e-12
    assert orthogonality_error(W) < 1e-13
    X = oracles.random_matrix(rng, n, 3, np.complex128)
    assert oracles.rel_err(ru.apply(th, X), W @ X) < 1e-12
    assert oracles.rel_err(ru.apply(th, X[:, 0]), W @ X[:, 0]) < 1e-12


def test_restricted_unitary_gradients(rng):
    ru = RestrictedUnitary(4, rng=rng)
    th = ru.sample(rng=rng)
    _grad_checks(ru, th, rng)
    X = oracles.random_matrix(rng, 4, 3, np.complex128)
    check_vjp(
        lambda x: ru.apply(x["theta"], x["X"]),
        lambda x, dy: dict(zip(("theta", "X"), ru.apply_vjp(x["theta"], x["X"], dy))),
        {"theta": th, "X": X},
        rng=rng,
        rtol=1e-7,
    )


def test_restricted_unitary_errors(rng):
    ru = RestrictedUnitary(3, rng=rng)
    th = ru.sample(rng=rng)
    with pytest.raises(NotOnManifoldError, match="no general right inverse"):
        ru.right_inverse(ru.forward(th)[0])
    with pytest.raises(NotOnManifoldError, match="not unitary"):
        ru.right_inverse(np.ones((3, 3)))
    bad = th.copy()
    bad[9:15] = 0.0
    with pytest.raises(ValueError, match=r"v1 .* must be nonzero"):
        ru.forward(bad)
    with pytest.raises(ValueError, match="perm must be a permutation"):
        RestrictedUnitary(3, perm=[0, 0, 1])
    with pytest.raises(ValueError, match="X must have 3 rows"):
        ru.apply(th, np.ones(4))
    with pytest.raises(TypeError, match="theta must be real"):
        ru.forward(th + 0j)
    assert np.array_equal(RestrictedUnitary(3, perm=[2, 0, 1]).perm, [2, 0, 1])


# --- precision: dtype= of the unitary maps -------------------------------------------

#: ||W^H W - I|| after a forward pass / one Riemannian step, per precision (n = 16):
#: a few units of rounding times sqrt(n) (measured 4e-7 single, 9e-16 double)
_ORTHO_TOL = {np.dtype(np.complex64): 5e-6, np.dtype(np.float32): 5e-6}
_ORTHO_TOL |= {np.dtype(np.complex128): 1e-13, np.dtype(np.float64): 1e-13}


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_restricted_unitary_keeps_its_precision(rng, dtype):
    ru = RestrictedUnitary(16, rng=rng, dtype=dtype)
    real = np.dtype(dtype).char.lower()
    th = ru.sample(rng=rng)
    assert ru.dtype == dtype and ru.theta_dtype == real and th.dtype == real
    W, cache = ru.forward(th)
    assert W.dtype == dtype
    assert orthogonality_error(W) <= _ORTHO_TOL[np.dtype(dtype)]
    G = oracles.random_matrix(rng, 16, 16, np.complex128)
    assert ru.vjp(cache, G).dtype == real
    X = oracles.random_matrix(rng, 16, 3, np.complex128)  # cast to the map's precision
    Y = ru.apply(th, X)
    assert Y.dtype == dtype
    dth, dX = ru.apply_vjp(th, X, Y)
    assert dth.dtype == real and dX.dtype == dtype
    # the single-precision map is the double one rounded (same perm, same theta)
    ref = RestrictedUnitary(16, perm=ru.perm).forward(th.astype(np.float64))[0]
    assert oracles.rel_err(W, ref) < (1e-5 if dtype == np.complex64 else 1e-14)


@pytest.mark.parametrize(
    ("real", "dtype"),
    [(False, np.complex128), (False, np.complex64), (True, np.float64), (True, np.float32)],
)
def test_full_unitary_keeps_its_precision(rng, real, dtype):
    fu = FullUnitary(16, real=real, dtype=dtype)
    W = fu.sample(rng=rng)
    assert fu.dtype == fu.theta_dtype == dtype and W.dtype == dtype
    for _ in range(20):
        G = oracles.random_matrix(rng, 16, 16, np.complex128 if not real else np.float64)
        W = fu.riemannian_step(W, G.astype(dtype), 0.05)
    assert W.dtype == dtype
    # single precision drifts by rounding per step; still well inside the 1e-4 default tol
    assert orthogonality_error(W) <= 20 * _ORTHO_TOL[np.dtype(dtype)]
    assert fu.in_manifold(W)
    assert fu.forward(W)[0].dtype == dtype and fu.vjp(None, W).dtype == dtype
    assert fu.right_inverse(W).dtype == dtype


@pytest.mark.parametrize("dtype", [np.complex64, np.float32])
@pytest.mark.parametrize("c", [1.0, 30.0, 1e3, 1e5, 1e30])
def test_single_precision_riemannian_step_of_any_size_stays_on_the_group(rng, dtype, c):
    # the LU step loses ~0.5 eps / rcond(I + A); single precision switches to the
    # spectral Cayley step below rcond 2**-5 (2**-10 let 4.6e-6 through at c = 1e5)
    fu = FullUnitary(12, real=np.dtype(dtype).kind == "f", dtype=dtype)
    W = fu.sample(rng=rng)
    G = oracles.random_matrix(rng, 12, 12, np.complex128 if fu.is_complex else np.float64)
    W2 = fu.riemannian_step(W, (c * G).astype(dtype), 1.0)
    assert W2.dtype == dtype
    assert orthogonality_error(W2) <= 2e-6


def test_unitary_dtype_is_checked():
    with pytest.raises(TypeError, match=r"^FullUnitary: dtype must be complex128 or complex64"):
        FullUnitary(3, dtype=np.float32)
    with pytest.raises(TypeError, match=r"^FullOrthogonal: dtype must be float64 or float32"):
        FullOrthogonal(3, dtype=np.complex64)
    with pytest.raises(TypeError, match=r"^RestrictedUnitary: dtype must be complex128 or"):
        RestrictedUnitary(3, dtype="float16")
    with pytest.raises(TypeError, match="dtype must be"):
        RestrictedUnitary(3, dtype="no such dtype")
    assert FullOrthogonal(3, dtype="float32").dtype == np.float32
    assert repr(RestrictedUnitary(3, rng=0, dtype=np.complex64)).endswith("dtype=complex64)")


def test_single_precision_unitary_gradients_match_double(rng):
    # the float64 maps are checked by finite differences (check_vjp above); the
    # complex64 pullback is the same code: it agrees with the double one to rounding
    ru64 = RestrictedUnitary(6, rng=rng)
    ru32 = RestrictedUnitary(6, perm=ru64.perm, dtype=np.complex64)
    th = ru64.sample(rng=rng)
    G = oracles.random_matrix(rng, 6, 6, np.complex128)
    g64 = ru64.vjp(ru64.forward(th)[1], G)
    g32 = ru32.vjp(ru32.forward(th.astype(np.float32))[1], G)
    assert oracles.rel_err(g32, g64) < 1e-5
    check_vjp(
        lambda t: ru64.forward(t)[0],
        lambda t, d: ru64.vjp(ru64.forward(t)[1], d),
        th,
        rng=rng,
        rtol=1e-7,
    )


# --- acceptance: orthogonality at n = 512 for every map ------------------------------


@pytest.mark.slow
def test_every_map_orthogonal_at_512(rng):
    n = 512
    maps = [
        ScaledCayley(n, n_neg=n // 2),
        Householder(n, k=n // 4),
        ExpMap(n),
        FullUnitary(n),
        RestrictedUnitary(n, rng=rng),
    ]
    for p in maps:
        th = p.sample(rng=rng)
        W, _ = p.forward(th)
        assert orthogonality_error(W) <= 1e-12, p
        assert p.in_manifold(W)
    sp = SVDParam(n, n, k=64, margin=0.5)
    W, _ = sp.forward(sp.sample(rng=rng))
    assert orthogonality_error(W) <= 1e-12  # p = 0: sigma = 1


def test_scipy_reference_for_haar(rng):
    # haar agrees in distribution shape with scipy.stats: orthogonal, det +-1, both signs occur
    dets = [np.linalg.det(haar(3, rng=rng)) for _ in range(40)]
    assert np.allclose(np.abs(dets), 1.0) and min(dets) < 0 < max(dets)
    assert orthogonality_error(sla.qr(haar(5, rng=rng))[0]) < 1e-14


def _theta(p, seed):
    th = p.sample(rng=seed)
    if isinstance(th, np.ndarray) and th.dtype.kind == "f":
        th = th + 0.1 * np.random.default_rng(seed).standard_normal(th.shape)
    return th


@pytest.mark.parametrize("method", ["scaled_cayley", "householder", "svd", "expm"])
def test_vjp_cache_survives_in_place_updates(method):
    # Householder/SVDParam caches referenced theta and ScaledCayley's referenced
    # the returned W: an in-place optimizer step (or W *= c) changed the gradient

    p = orthogonal(4, method=method)
    th = _theta(p, 3)
    th_ref = th.copy()
    dW = np.random.default_rng(4).standard_normal(p.forward(th)[0].shape)
    g_ref = p.vjp(p.forward(th_ref)[1], dW)

    W, cache = p.forward(th)
    th[...] = 0.0  # e.g. an optimizer updating the parameter in place
    W[...] = 0.0  # e.g. a caller rescaling W in place
    np.testing.assert_array_equal(p.vjp(cache, dW), g_ref)


@pytest.mark.parametrize("real", [False, True])
def test_full_unitary_vjp_is_identity(rng, real):
    from lowdisp.orthogonal import FullUnitary
    from lowdisp.testing import check_jacobian, check_vjp

    fu = FullUnitary(3, real=real)
    W = fu.sample(rng=rng)
    check_vjp(lambda w: fu.forward(w)[0], lambda w, dy: fu.vjp(None, dy), W, rng=rng, rtol=1e-9)
    if real:
        check_jacobian(lambda w: fu.forward(w)[0], lambda w, dy: fu.vjp(None, dy), W)
