"""QA regressions for lowdisp.structured: defects found by adversarial use."""

import numpy as np
import pytest
import scipy.linalg as sla

import lowdisp as ld
from lowdisp.structured import Diagonal, Shift, compress, displacement, displacement_rank


def _toeplitz32(n=6):
    c = np.arange(1.0, n + 1.0)
    r = np.r_[1.0, -np.arange(2.0, n + 1.0)]
    return sla.toeplitz(c, r).astype(np.float32)


def test_compress_keeps_float32():
    T = _toeplitz32()
    n = T.shape[0]
    M = compress(T, Shift(n, 1.0), Shift(n, -1.0))
    assert M.dtype == np.float32
    assert M.generators.G.dtype == np.float32
    assert M.rank == 2
    np.testing.assert_allclose(M.toarray(), T, rtol=0, atol=1e-5 * np.abs(T).max())


def test_compress_keeps_complex64_and_float64():
    T = _toeplitz32()
    n = T.shape[0]
    Z1, Zm1 = Shift(n, 1.0), Shift(n, -1.0)
    assert compress(T + 1j * T, Z1, Zm1).dtype == np.complex64
    assert compress(T.astype(np.float64), Z1, Zm1).dtype == np.float64
    # a learnable operator in float64 decides the precision (as in LDRMatrix)
    s = np.arange(n, dtype=np.float64)
    assert compress(T, Diagonal(s), Diagonal(s + 0.5)).dtype == np.float64


def test_displacement_keeps_float32_and_its_rank():
    T = _toeplitz32()
    n = T.shape[0]
    D = displacement(T, Shift(n, 1.0), Shift(n, -1.0))
    assert D.dtype == np.float32
    assert np.linalg.matrix_rank(D.astype(np.float64)) == 2
    assert displacement_rank(T, Shift(n, 1.0), Shift(n, -1.0)) == 2


def test_displacement_rank_rtol_error_names_the_function():
    with pytest.raises(ValueError, match="displacement_rank: rtol"):
        displacement_rank(np.eye(3), Shift(3, 1.0), Shift(3, -1.0), rtol=-1.0)


def test_division_by_zero_is_a_value_error():
    T = ld.toeplitz([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="division by zero"):
        T / 0
    np.testing.assert_allclose((T / 4).toarray(), T.toarray() / 4)


@pytest.mark.parametrize(
    ("alpha", "exc", "match"),
    [
        ("a", TypeError, "scale: alpha must be a real or complex scalar"),
        (None, TypeError, "scale: alpha must be a real or complex scalar"),
        (np.ones(3), TypeError, "scale: alpha must be a real or complex scalar"),
        (np.nan, ValueError, "scale: alpha must be finite"),
        (np.inf, ValueError, "scale: alpha must be finite"),
    ],
)
def test_scale_rejects_bad_alpha(alpha, exc, match):
    T = ld.toeplitz([1.0, 2.0, 3.0])
    with pytest.raises(exc, match=match):
        ld.scale(T, alpha)


def test_scale_operator_and_array_scalars():
    T = ld.toeplitz([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="scale: M must be an LDRMatrix"):
        ld.scale(T.toarray(), 2.0)
    with pytest.raises(TypeError, match="scale: alpha"):
        T * "a"
    np.testing.assert_allclose(ld.scale(T, np.float32(2.0)).toarray(), 2 * T.toarray())
    np.testing.assert_allclose(ld.scale(T, np.array(2j)).toarray(), 2j * T.toarray())


def test_product_rejects_non_ldr_operands():
    T = ld.toeplitz([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="product: both operands must be LDRMatrix"):
        ld.product(T, np.eye(3))
    with pytest.raises(TypeError, match="product: both operands must be LDRMatrix"):
        ld.product(np.eye(3), T)


@pytest.mark.parametrize("dtype", [np.int64, "U3", "foo", None, np.float16])
def test_random_ldr_rejects_dtypes_it_cannot_honour(dtype):
    with pytest.raises(TypeError, match="random_ldr: dtype must be one of float32, float64"):
        ld.random_ldr("toeplitz_like", 5, 2, rng=0, dtype=dtype)


def test_random_ldr_honours_every_supported_dtype():
    # float32 used to be refused (and before that came back silently as float64)
    assert ld.random_ldr("cauchy_like", 5, 2, rng=0, dtype=np.complex128).dtype == np.complex128
    assert ld.random_ldr("tridiagonal", 5, 2, rng=0).dtype == np.float64
    for kind in ld.structured._families.RANDOM_KINDS:
        for dt in (np.float32, np.complex64):
            M = ld.random_ldr(kind, 5, 2, rng=0, dtype=dt)
            assert M.dtype == dt, (kind, dt)
            M64 = ld.random_ldr(
                kind, 5, 2, rng=0, dtype=np.dtype(dt).str.replace("4", "8").replace("c8", "c16")
            )
            np.testing.assert_allclose(M.toarray(), M64.toarray(), rtol=1e-3, atol=1e-3)


def test_compress_tridiagonal_refuses_sizes_its_dense_solve_cannot_handle():
    # n = 300 meant an (n^2 x n^2) dense solve: 65 GiB and hours, no message
    n = 129
    T = ld.Tridiagonal(np.ones(n - 1), np.zeros(n), np.ones(n - 1), 0.3)
    with pytest.raises(ValueError, match=r"compress: the tridiagonal Krylov-sum family .* n = 129"):
        compress(np.eye(n), T, T.T, kind="stein")


def test_inv_of_a_singular_matrix_names_inv():
    # the error used to come from (and name) solve
    with pytest.raises(np.linalg.LinAlgError, match="inv: M is not invertible"):
        ld.inv(ld.toeplitz([1.0, 1.0, 1.0]))


def test_matmul_by_a_zero_dimensional_array_is_refused_like_a_scalar():
    # M @ np.array(2.0) silently returned 2 M (numpy and scipy refuse scalar matmul)
    T = ld.toeplitz([1.0, 2.0, 3.0])
    for s in (2.0, np.float64(2.0), np.array(2.0)):
        with pytest.raises(ValueError, match="Scalar operands are not allowed"):
            T @ s
    np.testing.assert_allclose((T * np.array(2.0)).toarray(), 2 * T.toarray())


@pytest.mark.parametrize("e", [1.7e308, -1.79e308, 1.7e308j])
def test_toarray_with_a_corner_near_the_overflow_threshold(e):
    # e * g overflowed in the dense e-circulant: a false OverflowError although the
    # matrix is moderate (its products were right); it must equal the product with I
    rng = np.random.default_rng(0)
    G, H = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    M = ld.toeplitz_like(G, H, e=e)
    D = M.toarray()
    np.testing.assert_allclose(D, M @ np.eye(6), rtol=1e-13, atol=1e-13 * np.abs(D).max())
    # the corner's own term is e * (...) / (e - f): at |e| -> inf it converges
    near = ld.toeplitz_like(G, H, e=e / 2**20).toarray()
    assert np.abs(D - near).max() <= 1e-5 * np.abs(near).max()
