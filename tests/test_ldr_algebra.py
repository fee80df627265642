"""Displacement-rank algebra: known ranks, compression, sums, products, inverses."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st
from oracles import random_matrix, rel_err
from scipy.sparse.linalg import LinearOperator

import lowdisp as ld
from lowdisp.exceptions import LowdispError
from lowdisp.structured import Diagonal, Shift, compress, displacement, displacement_rank
from lowdisp.structured._families import RANDOM_KINDS


def _well_conditioned_toeplitz(rng, n, dt=np.float64):
    c = random_matrix(rng, n, 1, dt)[:, 0]
    r = random_matrix(rng, n, 1, dt)[:, 0]
    c[0] = r[0] = 2.0 * np.sqrt(n) + 3
    return c, r


# --------------------------------------------------------------------------
# known displacement ranks
# --------------------------------------------------------------------------


@given(n=st.integers(2, 40), seed=st.integers(0, 2**32 - 1))
def test_known_ranks(n, seed):
    rng = np.random.default_rng(seed)
    Z1, Zm1 = ld.Shift(n, 1.0), ld.Shift(n, -1.0)
    c1, r1 = _well_conditioned_toeplitz(rng, n)
    c2, r2 = _well_conditioned_toeplitz(rng, n)
    T1, T2 = sla.toeplitz(c1, r1), sla.toeplitz(c2, r2)
    assert ld.displacement_rank(T1, Z1, Zm1) <= 2
    assert ld.displacement_rank(T1 @ T2, Z1, Zm1) <= 4
    # Gohberg-Semencul: the inverse of a Toeplitz matrix has rank <= 2 for (Z_-1, Z_1)
    assert ld.displacement_rank(np.linalg.inv(T1), Zm1, Z1, rtol=1e-9) <= 2
    # ... and Stein rank <= 2 for (Z_0, Z_0^T)
    Z0 = ld.Shift(n)
    assert ld.displacement_rank(np.linalg.inv(T1), Z0, Z0.T, kind="stein", rtol=1e-9) <= 2


def test_displacement_rank_counts_exactly(rng):
    n = 10
    T = sla.toeplitz(rng.standard_normal(n), rng.standard_normal(n))
    assert ld.displacement_rank(T, ld.Shift(n, 1.0), ld.Shift(n, -1.0)) == 2
    assert (
        ld.displacement_rank(rng.standard_normal((n, n)), ld.Shift(n, 1.0), ld.Shift(n, -1.0)) == n
    )
    M = ld.random_ldr("cauchy_like", n, 3, rng=rng)
    assert ld.displacement_rank(M, M.A, M.B) == 3


# --------------------------------------------------------------------------
# compress
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", sorted(RANDOM_KINDS))
def test_compress_round_trip(kind, dt, rng):
    M = ld.random_ldr(kind, 7, 2, rng=rng, dtype=dt)
    Md = M.toarray()
    C = ld.compress(Md, M.A, M.B, kind=M.kind)
    assert C.family == M.family
    assert C.rank <= M.rank
    assert rel_err(C.toarray(), Md) < 1e-10
    assert C.compression_error < 1e-10


def test_compress_truncation_records_error(rng):
    n = 12
    W = rng.standard_normal((n, n))
    A, B = ld.Shift(n, 1.0), ld.Shift(n, -1.0)
    s = np.linalg.svd(ld.displacement(W, A, B), compute_uv=False)
    C = ld.compress(W, A, B, rank=3)
    assert C.rank == 3
    assert C.compression_error == pytest.approx(np.linalg.norm(s[3:]) / np.linalg.norm(s))
    assert rel_err(C.displacement(), ld.displacement(W, A, B)) == pytest.approx(C.compression_error)
    C2 = ld.compress(W, A, B, rtol=s[5] / s[0] * 1.0001)
    assert C2.rank == 5


def test_compress_errors(rng):
    W = rng.standard_normal((5, 5))
    with pytest.raises(ValueError, match="operators of the wrong size"):
        ld.compress(W, ld.Shift(4, 1.0), ld.Shift(5, -1.0))
    with pytest.raises(ValueError, match="unknown kind"):
        ld.compress(W, ld.Shift(5, 1.0), ld.Shift(5, -1.0), kind="lyapunov")
    with pytest.raises(ValueError, match="rank must be in"):
        ld.compress(W, ld.Shift(5, 1.0), ld.Shift(5, -1.0), rank=6)
    with pytest.raises(ValueError, match="M must be finite"):
        ld.compress(np.full((5, 5), np.nan), ld.Shift(5, 1.0), ld.Shift(5, -1.0))


# --------------------------------------------------------------------------
# transpose, sums, scalars, products, inverse
# --------------------------------------------------------------------------


@pytest.fixture
def no_densify(monkeypatch):
    """Fail if any LDRMatrix is densified while the fixture is active."""

    def boom(self):
        raise AssertionError("an LDR algebra operation densified a matrix")

    monkeypatch.setattr(ld.LDRMatrix, "toarray", boom)
    return monkeypatch


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
def test_transpose_generators(dt, rng):
    M = ld.random_ldr("toeplitz_like", 8, 3, rng=rng, dtype=dt)
    T = M.T
    G, H = M.generators
    assert T.A == M.B.T and T.B == M.A.T
    assert np.array_equal(T.generators.G, -H) and np.array_equal(T.generators.H, G)
    S = ld.random_ldr("subdiagonal", 8, 2, rng=rng, dtype=dt).T  # Stein: (H, G)
    assert S.rank == 2 and S.family == "subdiagonal"


@pytest.mark.parametrize("kind", ["toeplitz_like", "cauchy_like", "subdiagonal", "tridiagonal"])
def test_sum_and_scalars(kind, rng):
    M1 = ld.random_ldr(kind, 9, 2, rng=rng)
    G, H = random_matrix(rng, 9, 3), random_matrix(rng, 9, 3)
    M2 = ld.LDRMatrix(M1.A, M1.B, G, H, kind=M1.kind)
    D1, D2 = M1.toarray(), M2.toarray()
    S = M1 + M2
    assert isinstance(S, ld.LDRMatrix) and S.rank <= 5
    assert rel_err(S.toarray(), D1 + D2) < 1e-12
    assert rel_err((M1 - M2).toarray(), D1 - D2) < 1e-12
    for X, ref in ((2.5 * M1, 2.5 * D1), (M1 * 2.5, 2.5 * D1), (-M1, -D1), (M1 / 4, D1 / 4)):
        assert isinstance(X, ld.LDRMatrix) and X.rank == M1.rank
        assert rel_err(X.toarray(), ref) < 1e-14
    R = ld.recompress(M1 + M1)
    assert R.rank == M1.rank and rel_err(R.toarray(), 2 * D1) < 1e-12


def test_sum_rank_capped_and_lazy(rng, no_densify):
    M = ld.random_ldr("toeplitz_like", 3, 2, rng=rng)
    S = M + M + M  # 2 + 2 + 2 > 3: recompressed to <= min(m, n)
    assert S.rank <= 2
    Mc = ld.random_ldr("cauchy_like", 6, 2, rng=rng)
    N = ld.LDRMatrix(Mc.A, Mc.B, *Mc.generators)
    assert (Mc + N).rank == 4  # generators are stacked, nothing is densified


def test_sum_errors(rng):
    M1 = ld.random_ldr("toeplitz_like", 5, 1, rng=rng)
    M2 = ld.random_ldr("toeplitz_like_stein", 5, 1, rng=rng)
    with pytest.raises(ValueError, match="same operators and kind"):
        ld.add(M1, M2)
    with pytest.raises(LowdispError, match="rank 0"):
        0 * M1


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
def test_products(dt, rng, no_densify):
    n = 10
    g = lambda r: random_matrix(rng, n, r, dt)  # noqa: E731
    M1 = ld.toeplitz_like(g(2), g(2))  # (Z_1, Z_-1)
    M2 = ld.toeplitz_like(g(1), g(1), e=-1.0, f=0.5)  # (Z_-1, Z_0.5)
    s, t = np.arange(n) + 0.5, -np.arange(n) - 0.25
    u = np.arange(n) * 1j + 0.1
    C1 = ld.cauchy_like(s, t, g(2), g(2))
    C2 = ld.cauchy_like(t, u, g(3), g(3))
    P = M1 @ M2
    Q = C1 @ C2
    assert isinstance(P, ld.LDRMatrix) and P.rank <= 3 and P.A == M1.A and P.B == M2.B
    assert isinstance(Q, ld.LDRMatrix) and Q.rank <= 5
    no_densify.undo()
    assert rel_err(P.toarray(), M1.toarray() @ M2.toarray()) < 1e-12
    assert rel_err(Q.toarray(), C1.toarray() @ C2.toarray()) < 1e-12
    assert rel_err(P.displacement(), P.generators.G @ P.generators.H.T) < 1e-12


def test_product_fallback_is_lazy(rng):
    T1 = ld.random_ldr("toeplitz", 6, 1, rng=rng)
    T2 = ld.random_ldr("toeplitz", 6, 1, rng=rng)
    P = T1 @ T2  # (Z_1, Z_-1) @ (Z_1, Z_-1): inner operators differ
    assert isinstance(P, LinearOperator) and not isinstance(P, ld.LDRMatrix)
    x = rng.standard_normal(6)
    assert rel_err(P @ x, T1.toarray() @ (T2.toarray() @ x)) < 1e-13
    with pytest.raises(ValueError, match="do not align"):
        ld.product(T1, ld.random_ldr("cauchy", 5, 1, rng=rng))


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", ["toeplitz", "toeplitz_like", "hankel_like", "cauchy_like"])
def test_inverse(kind, dt, rng, monkeypatch):
    n = 12
    if kind == "toeplitz":
        M = ld.toeplitz(*_well_conditioned_toeplitz(rng, n, dt))
    else:
        M = ld.random_ldr(kind, n, 2, rng=rng, dtype=dt)
    with monkeypatch.context() as mp:  # the inverse generators come from GKO, not a dense inverse
        mp.setattr(ld.LDRMatrix, "toarray", lambda self: pytest.fail("inv densified"))
        Mi = ld.inv(M)
    assert Mi.rank == M.rank and Mi.A == M.B and Mi.B == M.A
    assert rel_err(Mi.toarray(), np.linalg.inv(M.toarray())) < 1e-10


def test_inverse_errors(rng):
    with pytest.raises(LowdispError, match="only Sylvester pairs"):
        ld.inv(ld.random_ldr("toeplitz_like_stein", 4, 1, rng=rng))
    with pytest.raises(ValueError, match="must be square"):
        ld.inv(ld.vandermonde(np.arange(3.0), 4))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ld.inv(ld.toeplitz(np.ones(5)))
    with pytest.raises(TypeError, match="LDRMatrix"):
        ld.inv(np.eye(3))


@given(
    family=st.sampled_from(["toeplitz", "cauchy"]),
    n=st.integers(1, 16),
    r1=st.integers(1, 3),
    r2=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_product_and_sum_rank_bounds(family, n, r1, r2, seed):
    rng = np.random.default_rng(seed)
    r1, r2 = min(r1, n), min(r2, n)
    g = lambda r: rng.standard_normal((n, r))  # noqa: E731
    if family == "toeplitz":
        M1 = ld.toeplitz_like(g(r1), g(r1))  # (Z_1, Z_-1)
        M2 = ld.toeplitz_like(g(r2), g(r2), e=-1.0, f=0.5)  # (Z_-1, Z_0.5)
        M3 = ld.toeplitz_like(g(r2), g(r2))
    else:
        s, t, u = np.arange(n) + 0.5, -np.arange(n) - 0.25, np.arange(n) + 0.1j
        M1 = ld.cauchy_like(s, t, g(r1), g(r1))
        M2 = ld.cauchy_like(t, u, g(r2), g(r2))
        M3 = ld.cauchy_like(s, t, g(r2), g(r2))
    P, S = M1 @ M2, M1 + M3
    assert P.rank <= min(r1 + r2, n) and S.rank <= min(r1 + r2, n)
    assert rel_err(P.toarray(), M1.toarray() @ M2.toarray()) < 1e-10
    assert rel_err(S.toarray(), M1.toarray() + M3.toarray()) < 1e-10
    assert ld.displacement_rank(P, P.A, P.B, rtol=1e-10) <= r1 + r2


# --------------------------------------------------------------------------
# regressions found by adversarial use (precision kept, errors named)
# --------------------------------------------------------------------------


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
