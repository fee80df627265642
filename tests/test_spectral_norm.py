"""spectral_norm and spectral_normalize: values against dense SVDs, LinearOperators,
error bounds, precision, bad input and adversarial operators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.fft as sfft
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import lowdisp as ld
from lowdisp.spectral import (
    NormEstimate,
    spectral_norm,
    spectral_normalize,
)
from tests import oracles

EPS = np.finfo(float).eps


class ToeplitzOperator(LinearOperator):
    """A non-symmetric Toeplitz matrix applied by FFT (a custom LinearOperator)."""

    def __init__(self, c: np.ndarray, r: np.ndarray) -> None:
        n = c.size
        self.c, self.r = c, r
        self.L = sfft.next_fast_len(2 * n - 1)
        col = np.concatenate([c, np.zeros(self.L - 2 * n + 1), r[:0:-1]])
        self.f = sfft.rfft(col)
        self.ft = sfft.rfft(np.concatenate([r, np.zeros(self.L - 2 * n + 1), c[:0:-1]]))
        self.dense_calls = 0
        super().__init__(np.float64, (n, n))

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        n = self.shape[0]
        if X.shape[1] > 16:
            self.dense_calls += 1
        Y = sfft.irfft(sfft.rfft(X, self.L, axis=0) * self.f[:, None], self.L, axis=0)
        return Y[:n]

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        n = self.shape[0]
        Y = sfft.irfft(sfft.rfft(X, self.L, axis=0) * self.ft[:, None], self.L, axis=0)
        return Y[:n]

    def _adjoint(self) -> LinearOperator:
        return ToeplitzOperator(self.r, self.c)


def toeplitz_dense(c: np.ndarray, r: np.ndarray) -> np.ndarray:

    return sla.toeplitz(c, r)


@pytest.mark.parametrize("method", ["lanczos", "power", "randomized", "dense", "auto"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_spectral_norm_matches_svd(rng, method, dtype):
    A = oracles.random_matrix(rng, 70, 50, dtype)
    A[:, 0] *= 3  # a clear gap so every method converges quickly
    est = spectral_norm(A, method=method, rng=rng)
    ref = oracles.spectral_norm_dense(A)
    assert isinstance(est, NormEstimate)
    assert est.converged
    assert abs(est.value / ref - 1) <= 1e-10
    # the singular vectors (residual r with r²/gap <= tol·σ, so r <= sqrt(tol)·σ)
    # and the a-posteriori bound
    assert np.linalg.norm(A @ est.v - est.value * est.u) <= 1e-5 * ref
    assert np.linalg.norm(A.conj().T @ est.u - est.value * est.v) <= 1e-5 * ref
    assert ref - est.value <= est.error_bound + 10 * EPS * ref
    assert est.u.shape == (70,) and est.v.shape == (50,)


@given(
    m=st.integers(1, 30),
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    cplx=st.booleans(),
)
def test_spectral_norm_lanczos_any_shape(m, n, seed, cplx):
    g = np.random.default_rng(seed)
    A = oracles.random_matrix(g, m, n, np.complex128 if cplx else np.float64)
    est = spectral_norm(A, method="lanczos", rng=g)
    ref = oracles.spectral_norm_dense(A)
    assert est.converged
    assert abs(est.value - ref) <= 1e-10 * ref
    assert est.value <= ref * (1 + 10 * EPS)


def test_spectral_norm_on_linear_operators_without_densifying(rng):
    n = 300
    k = np.arange(n)
    c = 1.0 / (1.0 + k) ** 2
    r = np.cos(0.3 * k) / (1.0 + k) ** 1.5
    r[0] = c[0]
    op = ToeplitzOperator(c, r)
    ref = oracles.spectral_norm_dense(toeplitz_dense(c, r))
    est = spectral_norm(op, rng=rng)
    assert est.converged and abs(est.value / ref - 1) <= 1e-10
    assert op.dense_calls == 0
    assert est.n_matvecs < 2 * n  # far fewer products than densifying would need
    est2 = spectral_norm(aslinearoperator(toeplitz_dense(c, r)), method="randomized", rng=rng)
    assert abs(est2.value / ref - 1) <= 1e-10
    assert op.dense_calls == 0


def test_toeplitz_like_ldr_operator(rng):
    # an LDR matrix of lowdisp.structured is a LinearOperator: used matrix-free
    import lowdisp.structured as structured

    n, r = 64, 2
    G = rng.standard_normal((n, r))
    H = rng.standard_normal((n, r))
    M = structured.toeplitz_like(G, H)
    est = spectral_norm(M, rng=rng)
    ref = oracles.spectral_norm_dense(M.toarray())
    assert abs(est.value / ref - 1) <= 1e-10


def test_spectral_norm_warm_start_saves_products(rng):
    A = rng.standard_normal((200, 200))
    cold = spectral_norm(A, method="lanczos", rng=rng)
    A2 = A + 1e-6 * rng.standard_normal((200, 200))
    warm = spectral_norm(A2, method="lanczos", v0=cold.v)
    again = spectral_norm(A2, method="lanczos", rng=rng)
    assert warm.n_matvecs < again.n_matvecs
    assert abs(warm.value / oracles.spectral_norm_dense(A2) - 1) <= 1e-10


def test_spectral_norm_keeps_precision_class_and_zero_matrix(rng):
    A = rng.standard_normal((20, 20)).astype(np.float32)
    est = spectral_norm(A, method="lanczos", rng=rng)
    assert est.u.dtype == np.float32
    assert abs(est.value / oracles.spectral_norm_dense(A.astype(np.float64)) - 1) < 1e-6
    z = spectral_norm(np.zeros((5, 4)), method="lanczos", rng=rng)
    assert z.value == 0 and z.converged


def test_spectral_normalize(rng):
    W = rng.standard_normal((30, 20))
    Wn = spectral_normalize(W, target=0.7)
    assert abs(oracles.spectral_norm_dense(Wn) - 0.7) <= 1e-10
    small = 0.1 * W / oracles.spectral_norm_dense(W)
    assert np.array_equal(spectral_normalize(small, clip=True), small)
    op = spectral_normalize(aslinearoperator(W), target=2.0)
    assert isinstance(op, LinearOperator)
    assert abs(oracles.spectral_norm_dense(op @ np.eye(20)) - 2.0) <= 1e-9
    with pytest.raises(ValueError, match="W is zero"):
        spectral_normalize(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="target must be finite and > 0"):
        spectral_normalize(W, target=0.0)


def test_spectral_norm_bad_input(rng):
    with pytest.raises(ValueError, match="spectral_norm: A must not be empty"):
        spectral_norm(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="spectral_norm: A must be finite"):
        spectral_norm(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"A must have 2 dimension\(s\)"):
        spectral_norm(np.ones(3))
    with pytest.raises(ValueError, match="unknown method 'svd'; valid: 'auto'"):
        spectral_norm(np.eye(3), method="svd")
    with pytest.raises(ValueError, match="tol must be in"):
        spectral_norm(np.eye(3), tol=2.0)
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        spectral_norm(np.eye(3), tol=0.0)
    with pytest.raises(ValueError, match="v0 must have length 3"):
        spectral_norm(np.eye(3), method="lanczos", v0=np.ones(4))
    with pytest.raises(ValueError, match="v0 must not be the zero vector"):
        spectral_norm(np.eye(3), method="lanczos", v0=np.zeros(3))
    with pytest.raises(ValueError, match="non-empty 2-D operator"):
        spectral_norm(aslinearoperator(np.zeros((0, 2))))


SCALES = [1e-300, 1e-150, 1e150, 1e300]


@pytest.fixture
def A75(rng):
    return rng.standard_normal((7, 5))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("method", ["power", "lanczos", "randomized", "dense"])
def test_spectral_norm_of_tiny_and_huge_matrices(A75, scale, method):
    # np.linalg.norm squares the entries: 1e-300 gave ||A|| = 0, 1e300 overflowed
    ref = np.linalg.norm(A75, 2) * scale
    rtol = 1e-8 if method == "power" else 1e-12
    for A in (A75 * scale, aslinearoperator(A75 * scale)):
        est = spectral_norm(A, method=method, rng=0)
        assert est.converged
        assert abs(est.value / ref - 1) < rtol
        assert est.error_bound <= 1e-6 * ref
        np.testing.assert_allclose(
            np.linalg.norm(A75 @ est.v), est.value / scale, rtol=max(rtol, 1e-10)
        )


def test_spectral_norm_of_tiny_ldr_operator():
    T = ld.toeplitz(np.arange(1.0, 6.0))
    ref = np.linalg.norm(T.toarray(), 2)
    est = spectral_norm(T * 1e-300, method="lanczos", rng=0)
    assert abs(est.value / (ref * 1e-300) - 1) < 1e-12


def test_spectral_norm_validates_maxiter_and_v0_for_every_method():
    A = np.diag([3.0, 2.0, 1.0])  # small: "auto" takes the dense path
    with pytest.raises(ValueError, match="spectral_norm: maxiter"):
        spectral_norm(A, maxiter=0)
    with pytest.raises(TypeError, match="spectral_norm: maxiter"):
        spectral_norm(A, maxiter=True)
    with pytest.raises(ValueError, match="spectral_norm: v0 must have length 3"):
        spectral_norm(A, v0=np.ones(2))
    with pytest.raises(ValueError, match="spectral_norm: v0 must be finite"):
        spectral_norm(A, v0=np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="spectral_norm: v0 must not be the zero vector"):
        spectral_norm(A, v0=np.zeros(3), method="dense")


def test_spectral_norm_complex_v0_for_real_matrix_is_a_clean_type_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning from a cast first
        with pytest.raises(TypeError, match="spectral_norm: v0 must be real"):
            spectral_norm(np.eye(3), v0=np.ones(3) * 1j, method="lanczos")


def test_spectral_norm_warm_start_still_used():
    A = np.diag([3.0, 2.0, 1.0])
    est = spectral_norm(A, method="power", v0=np.array([1.0, 0.0, 0.0]))
    assert est.value == 3.0 and est.n_matvecs <= 2


def test_spectral_norm_operator_that_lies_about_its_dtype():
    from scipy.sparse.linalg import LinearOperator

    L = LinearOperator((2, 2), matvec=lambda x: 1j * x, rmatvec=lambda x: -1j * x, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="spectral_norm: A declares the real dtype"):
            spectral_norm(L, method="lanczos", rng=0)


@pytest.mark.parametrize("method", ["power", "lanczos", "randomized", "dense"])
def test_spectral_norm_operator_returning_nan(method):
    from scipy.sparse.linalg import LinearOperator

    L = LinearOperator(
        (3, 3), matvec=lambda x: x * np.nan, rmatvec=lambda x: x * np.nan, dtype=float
    )
    with pytest.raises(ValueError, match="spectral_norm: a product with A returned NaN"):
        spectral_norm(L, method=method, rng=0)


def test_spectral_norm_dense_refuses_huge_operators():
    # method="dense" formed A @ I: 80 GB for an n = 100000 LDR matrix
    M = ld.random_ldr("toeplitz_like", 100_000, 2, rng=0)
    with pytest.raises(ValueError, match="spectral_norm: method='dense' would form"):
        spectral_norm(M, method="dense")


def test_lanczos_near_tie_does_not_stop_falsely():
    # σ₁ and σ₂ 1e-5 apart: before σ₂ is found the Ritz gap overstates the true gap,
    # and r²/gap stopped falsely (2 of these 30 starts, error ~1e-7 with a bound ~1e-11)
    rng = np.random.default_rng(0)
    n = 400
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = np.r_[1.0, 1 - 1e-5, np.linspace(0.95, 0.0, n - 2)]
    op = aslinearoperator((U * s) @ V.T)
    for seed in range(30):
        est = spectral_norm(op, rng=seed)
        assert 1.0 - est.value <= est.error_bound + 1e-14
        assert abs(est.value - 1.0) <= 1e-10
