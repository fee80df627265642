"""Issue 10 property tests for lowdisp.structured: scale covariance, 0-size, precision.

- Scale covariance: for every family, multiplying the generators (or the
  operand, or the Cauchy nodes) by ``c`` anywhere in 1e-300..1e300 multiplies
  products, VJPs, solves and compressions by the matching power of ``c``, to
  rounding. With ``c`` a power of two every step is exact, so the comparison is
  normwise at the level of a few ulps.
- 0-size: a product with k = 0 columns returns shape (m, 0) (every family,
  matmat/rmatmat/transposes/vjp/grad_generators/solve).
- Precision: float32 (complex64) in, float32 (complex64) out for every
  constructor and function.

The example budget follows the Hypothesis profile (``HYPOTHESIS_PROFILE=ci`` is
derandomized); ``LOWDISP_HYPOTHESIS_SCALE=10`` multiplies it
(conftest.py; the 10x local run).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lowdisp as ld
from lowdisp.structured._families import RANDOM_KINDS

KINDS = sorted(RANDOM_KINDS)
#: kinds whose fast or fallback solve applies (square; all of them here)
EXAMPLES = settings(max_examples=max(1, settings.default.max_examples))
EPS = np.finfo(np.float64).eps


def _exact_scale(X, k):
    return np.ldexp(X.real, k) + (1j * np.ldexp(X.imag, k) if np.iscomplexobj(X) else 0)


def _close(a, b, tol):
    """Normwise: max|a - b| <= tol * max|b| (entries may be subnormal at 1e-300)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    assert np.isfinite(a).all()
    assert err <= tol * scale, (err, scale)


def _rescaled(M, k1, k2):
    """The same LDR matrix with generators (2**k1 G, 2**k2 H): 2**(k1 + k2) M."""
    G, H = M.generators
    return ld.LDRMatrix(M.A, M.B, _exact_scale(G, k1), _exact_scale(H, k2), kind=M.kind)


cases = st.tuples(
    st.sampled_from(KINDS),
    st.integers(1, 9),  # n
    st.integers(1, 3),  # rank (clipped to n)
    st.integers(0, 2**16),  # seed
    st.booleans(),  # complex
)
exponents = st.integers(-990, 990)  # 2**-990 ~ 1e-298, 2**990 ~ 1e298


def _make(case):
    kind, n, r, seed, cplx = case
    return ld.random_ldr(kind, n, min(r, n), rng=seed, dtype=np.complex128 if cplx else np.float64)


@EXAMPLES
@given(case=cases, k=exponents, split=st.floats(0, 1), kx=exponents)
def test_products_and_vjp_scale_with_the_generators(case, k, split, kx):
    M = _make(case)
    k1 = round(split * k)
    Mc = _rescaled(M, k1, k - k1)
    n = M.shape[1]
    rng = np.random.default_rng(case[3])
    X = rng.standard_normal((n, 3))
    dY = rng.standard_normal((M.shape[0], 3))
    tol = 64 * EPS * n
    _close(_exact_scale(Mc @ X, -k), M @ X, tol)
    _close(_exact_scale(Mc.H @ dY, -k), M.H @ dY, tol)
    _close(_exact_scale(Mc.T @ dY, -k), M.T @ dY, tol)
    _close(_exact_scale(Mc.toarray(), -k), M.toarray(), tol)
    # the operand's scale too: M (2**kx X) = 2**kx M X (k + kx may leave the range)
    if abs(k + kx) <= 990:
        _close(_exact_scale(Mc @ _exact_scale(X, kx), -k - kx), M @ X, tol)
    d, dc = M.vjp(X, dY), Mc.vjp(X, dY)
    # L is linear in G and H: dL/dG scales like H, dL/dH like G, the rest like M
    shifts = {"G": k - k1, "H": k1, "X": k, "A": k, "B": k}
    for key in d:
        _close(_exact_scale(dc[key], -shifts[key]), d[key], tol * 4)


@EXAMPLES
@given(case=cases, k=exponents, kb=exponents)
def test_solve_scales_with_the_matrix_and_the_rhs(case, k, kb):
    M = _make(case)
    Md = M.toarray()
    cond = np.linalg.cond(Md)
    assume(np.isfinite(cond) and cond < 1e6)
    b = np.random.default_rng(case[3]).standard_normal(M.shape[0])
    x = ld.solve(M, b)
    tol = 1e3 * EPS * cond
    Mc = _rescaled(M, k // 2, k - k // 2)
    _close(_exact_scale(ld.solve(Mc, b), k), x, tol)
    if abs(kb - k) <= 990:
        _close(_exact_scale(ld.solve(Mc, _exact_scale(b, kb)), k - kb), x, tol)


@EXAMPLES
@given(case=cases, k=exponents)
def test_compress_recompress_and_displacement_rank_are_scale_invariant(case, k):
    M = _make(case)
    assume(M.family != "tridiagonal" or M.shape[0] <= 6)  # dense Kronecker solve
    Md = M.toarray()
    C = ld.compress(Md, M.A, M.B, kind=M.kind)
    Cc = ld.compress(_exact_scale(Md, k), M.A, M.B, kind=M.kind)
    assert Cc.rank == C.rank
    assert np.isfinite(Cc.compression_error)
    assert abs(Cc.compression_error - C.compression_error) <= 1e-12
    _close(_exact_scale(Cc.toarray(), -k), C.toarray(), 1e-12)
    rk = ld.displacement_rank(Md, M.A, M.B, kind=M.kind)
    assert ld.displacement_rank(_exact_scale(Md, k), M.A, M.B, kind=M.kind) == rk
    R, Rc = ld.recompress(M + M), ld.recompress(_rescaled(M, k, 0) + _rescaled(M, k, 0))
    assert Rc.rank == R.rank
    _close(_exact_scale(Rc.toarray(), -k), R.toarray(), 1e-12)


@EXAMPLES
@given(
    n=st.integers(1, 12), seed=st.integers(0, 2**16), k=st.integers(-490, 490), cplx=st.booleans()
)
def test_cauchy_nodes_scale_inversely(n, seed, k, cplx):
    # (the node gradients scale like 2**(2k): |k| <= 490 keeps them representable)
    rng = np.random.default_rng(seed)
    M = ld.random_ldr("cauchy_like", n, min(2, n), rng=rng, dtype=complex if cplx else float)
    s, t = M.A.d, M.B.d
    G, H = M.generators
    Mc = ld.cauchy_like(_exact_scale(s, k), _exact_scale(t, k), G, H)  # = 2**-k M
    X = rng.standard_normal((n, 2))
    _close(_exact_scale(Mc @ X, k), M @ X, 64 * EPS * n)
    _close(_exact_scale(Mc.H @ X, k), M.H @ X, 64 * EPS * n)
    cond = np.linalg.cond(M.toarray())
    if cond < 1e8:
        _close(_exact_scale(ld.solve(Mc, X), -k), ld.solve(M, X), 1e3 * EPS * cond)
    d, dc = M.vjp(X, X), Mc.vjp(X, X)
    for key, shift in (("G", k), ("H", k), ("X", k), ("A", 2 * k), ("B", 2 * k)):
        _close(_exact_scale(dc[key], shift), d[key], 256 * EPS * n)


@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e-20, 1e20, 1e200, 1e300])
def test_issue10_reproducers_at_extreme_scales(c):
    T = ld.toeplitz([4.0, 1.0, 0.5, 0.2]).toarray()
    M = ld.compress(c * T, ld.Shift(4, 1.0), ld.Shift(4, -1.0))
    assert np.isfinite(M.compression_error) and M.compression_error < 1e-12
    assert np.max(np.abs(M.toarray() / c - T)) < 1e-13
    C = ld.cauchy([c, 2 * c], [3 * c, 4 * c])  # used to be refused below ~1e-14
    np.testing.assert_allclose(C.toarray() * c, [[-0.5, -1 / 3], [-1.0, -0.5]], rtol=1e-14)
    np.testing.assert_allclose(
        ld.solve(C, np.ones(2)) / c, np.linalg.solve(C.toarray() * c, [1, 1])
    )


def test_cauchy_collision_is_relative_and_still_caught():
    with pytest.raises(ld.exceptions.SingularOperatorError, match=r"cauchy: .* s\[1\] .* t\[0\]"):
        ld.cauchy([1e-20, 2e-20], [2e-20 * (1 + 1e-16), 4e-20])
    with pytest.raises(ld.exceptions.SingularOperatorError, match=r"s\[0\] = \(1\+1j\)"):
        ld.cauchy_like([1 + 1j, 3.0], [2.0, 1 + 1j], np.ones((2, 1)), np.ones((2, 1)))
    ld.cauchy([1.0, 2.0], [1.0 + 1e-10, 3.0])  # close but distinct at the node scale


def test_cauchy_collision_check_is_linear_memory():
    # the check used an n x n gap matrix (4.3 GB at n = 16384); now sorted search
    import tracemalloc

    n = 20000
    s = np.arange(n, dtype=float)
    t = s + 0.5
    tracemalloc.start()
    ld.cauchy_like(s, t, np.ones((n, 1)), np.ones((n, 1)))
    ld.cauchy_like(s + 0j, t + 0.5j, np.ones((n, 1)), np.ones((n, 1)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * n * 16, peak  # O(n): well below the 3.2 GB of an n x n array


def test_results_that_are_not_representable_are_a_clear_error():
    M = _rescaled(ld.toeplitz([4.0, 1.0, 0.5]), 1000, 0)  # ~4e301: representable
    with pytest.raises(OverflowError, match=r"LDRMatrix\.matmat: the result is not repr"):
        M @ np.full(3, 1e10)
    with pytest.raises(OverflowError, match=r"LDRMatrix\.rmatmat: the result is not repr"):
        M.rmatvec(np.full(3, 1e10))
    V = ld.vandermonde([1e200, 2.0, 3.0])  # 1e400 is not a double
    with pytest.raises(OverflowError, match=r"LDRMatrix\.matmat: .* not representable"):
        V @ np.ones(3)
    with pytest.raises(OverflowError, match=r"LDRMatrix\.toarray: .* not representable"):
        V.toarray()
    assert np.isnan(M @ np.array([np.nan, 1.0, 1.0])).any()  # NaN in, NaN out: no error


@EXAMPLES
@given(case=cases, k=st.integers(0, 1000))
def test_generator_columns_at_opposite_scales(case, k):
    # G = [2**k g1, 2**-k g2], H = [2**-k h1, 2**k h2] is the same matrix (a product
    # of scaled matrices stacks such columns): no column may underflow to 0
    M = _make(case)
    G, H = M.generators
    sg = np.where(np.arange(G.shape[1]) % 2 == 0, k, -k)
    Mc = ld.LDRMatrix(M.A, M.B, _exact_scale(G, sg), _exact_scale(H, -sg), kind=M.kind)
    X = np.random.default_rng(case[3]).standard_normal((M.shape[1], 2))
    tol = 64 * EPS * M.shape[0]
    _close(Mc @ X, M @ X, tol)
    _close(Mc.H @ (M @ X), M.H @ (M @ X), tol)
    d, dc = M.vjp(X, M @ X), Mc.vjp(X, M @ X)
    _close(_exact_scale(dc["G"], sg), d["G"], 4 * tol)
    _close(_exact_scale(dc["H"], -sg), d["H"], 4 * tol)
    _close(dc["X"], d["X"], 4 * tol)


def test_product_of_matrices_at_opposite_scales():
    rng = np.random.default_rng(0)
    M1 = ld.toeplitz_like(rng.standard_normal((6, 2)), rng.standard_normal((6, 2)))
    M2 = ld.toeplitz_like(rng.standard_normal((6, 1)), rng.standard_normal((6, 1)), e=-1.0, f=0.5)
    ref = (M1 @ M2).toarray()
    P = _rescaled(M1, 1000, 0) @ _rescaled(M2, -1000, 0)
    _close(P.toarray(), ref, 1e-13)


# --------------------------------------------------------------------------
# 0-size
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [np.float64, np.complex128, np.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_products_with_zero_columns(kind, dt):
    M = ld.random_ldr(kind, 5, 2, rng=1, dtype=dt)
    m, n = M.shape
    for op, rows, cols in ((M, m, n), (M.T, n, m), (M.H, n, m)):
        for fn in (op.matmat, op.__matmul__, op.dot):
            Y = fn(np.ones((cols, 0), dt))
            assert Y.shape == (rows, 0) and Y.dtype == M.dtype
        assert op.rmatmat(np.ones((rows, 0), dt)).shape == (cols, 0)
    g = M.vjp(np.ones((n, 0), dt), np.ones((m, 0), dt))
    assert g["X"].shape == (n, 0)
    assert g["G"].shape == M.generators.G.shape and not g["G"].any()
    assert g["H"].shape == M.generators.H.shape and not g["H"].any()
    for key, op in (("A", M.A), ("B", M.B)):
        if key in g:
            assert g[key].shape == op.params.shape and not g[key].any()
    dG, dH = M.grad_generators(np.ones((n, 0), dt), np.ones((m, 0), dt))
    assert dG.shape == M.generators.G.shape and dH.shape == M.generators.H.shape
    assert ld.solve(M, np.ones((n, 0), dt)).shape == (n, 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ld.toeplitz_like(np.ones((0, 1)), np.ones((0, 1))),
        lambda: ld.hankel_like(np.ones((0, 1)), np.ones((0, 1))),
        lambda: ld.ldr_subdiagonal([], [], np.ones((0, 1)), np.ones((0, 1))),
        lambda: ld.cauchy_like([], [], np.ones((0, 1)), np.ones((0, 1))),
        lambda: ld.vandermonde_like([], np.ones((0, 1)), np.ones((0, 1))),
        lambda: ld.toeplitz([]),
        lambda: ld.hankel([]),
        lambda: ld.circulant([]),
        lambda: ld.skew_circulant([]),
        lambda: ld.vandermonde([]),
        lambda: ld.cauchy([], [1.0]),
        lambda: ld.Diagonal([]),
        lambda: ld.Shift(0),
        lambda: ld.compress(np.zeros((0, 0)), ld.Shift(1), ld.Shift(1)),
    ],
)
def test_empty_matrices_are_refused_by_name(make):
    with pytest.raises(ValueError, match=r"^\w+(\.\w+)?: "):
        make()


# --------------------------------------------------------------------------
# precision
# --------------------------------------------------------------------------

F32 = np.float32


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


def _constructors(rng, n=6, r=2):
    G, H = _f32(rng, n, r), _f32(rng, n, r)
    nodes = np.linspace(0.1, 0.9, n).astype(F32)
    T = ld.Tridiagonal(np.ones(n - 1, F32), np.zeros(n, F32), np.zeros(n - 1, F32), 0.3)
    yield "toeplitz_like", ld.toeplitz_like(G, H)
    yield "toeplitz_like_stein", ld.toeplitz_like(G, H, kind="stein")
    yield "toeplitz_like_rect", ld.toeplitz_like(G, H[:4], kind="stein")
    yield "hankel_like", ld.hankel_like(G, H)
    yield "vandermonde_like", ld.vandermonde_like(nodes, G, H)
    yield "cauchy_like", ld.cauchy_like(nodes, nodes + F32(0.05), G, H)
    yield (
        "ldr_subdiagonal",
        ld.ldr_subdiagonal(np.ones(n - 1, F32), np.ones(n - 1, F32), G, H, fa=0.5, fb=-0.5),
    )
    yield "ldr_tridiagonal", ld.ldr_tridiagonal(T, T, G, H)
    yield "toeplitz", ld.toeplitz(G[:, 0], H[:, 0])
    yield "toeplitz_rect", ld.toeplitz(G[:, 0], H[:4, 0])
    yield "hankel", ld.hankel(G[:, 0], H[:, 0])
    yield "circulant", ld.circulant(G[:, 0])
    yield "skew_circulant", ld.skew_circulant(G[:, 0])
    yield "vandermonde", ld.vandermonde(nodes)
    yield "vandermonde_n", ld.vandermonde(nodes, 4)
    yield "cauchy", ld.cauchy(nodes, nodes + F32(0.05))
    for kind in KINDS:
        yield f"random_ldr[{kind}]", ld.random_ldr(kind, n, r, rng=0, dtype=F32)


@pytest.mark.parametrize("cplx", [False, True])
def test_single_precision_is_kept_everywhere(cplx):
    rng = np.random.default_rng(0)
    for name, M in _constructors(rng):
        if cplx:
            M = M * np.complex64(1 + 1j)
        want = np.dtype(np.complex64 if cplx else F32)
        assert M.dtype == want, name
        m, n = M.shape
        x, y = np.ones(n, F32), np.ones(m, F32)
        for out in (M @ x, M.matmat(x[:, None]), M.rmatvec(y), M.T @ y, M.H @ y, M.toarray()):
            assert out.dtype == want, name
        for key, g in M.vjp(x, y).items():
            assert g.dtype.itemsize <= want.itemsize, (name, key, g.dtype)
        if m == n:
            assert ld.solve(M, x).dtype == want, name
            if M.kind == "sylvester" and np.linalg.cond(M.toarray()) < 1e4:
                assert ld.inv(M).dtype == want, name
        assert ld.recompress(M + M).dtype == want, name
        assert (2 * M).dtype == want, name
        C = ld.compress(M.toarray(), M.A, M.B, kind=M.kind) if M.family != "tridiagonal" else M
        assert C.dtype == want, name
        assert ld.displacement(M.toarray(), M.A, M.B, kind=M.kind).dtype == want, name


@pytest.mark.parametrize(
    "op",
    [
        ld.Shift(4, 0.5),
        ld.Shift(4, -1.0).T,
        ld.Diagonal(np.arange(1, 5, dtype=F32)),
        ld.Subdiagonal(np.ones(3, F32), 0.5),
        ld.Tridiagonal(np.ones(3, F32), np.zeros(4, F32), np.ones(3, F32), 0.3),
    ],
    ids=repr,
)
def test_operators_keep_single_precision_and_empty_blocks(op):
    # a fixed operator (Python-scalar corner) used to upcast float32 data to float64
    x = np.ones(4, F32)
    for out in (op.matvec(x), op.rmatvec(x), op.krylov(x, 3), op.T.matvec(x)):
        assert out.dtype == F32
    assert op.matvec(np.ones(4, np.complex64)).dtype == np.complex64
    assert op.matvec(np.ones((4, 0), F32)).shape == (4, 0)
    assert op.krylov(x, 0).shape == (4, 0)


def test_subdiagonal_corner_scale_without_overflow_of_prod():
    # prod(a) = 2**1199 overflows, prod(a) prod(b) = 1: alpha beta = fa fb = -0.25
    n = 1200
    a = np.full(n - 1, 1.0005)
    M = ld.ldr_subdiagonal(a, 1 / a, np.eye(n, 1), np.eye(n, 1), fa=0.5, fb=-0.5)
    y = M @ np.eye(n, 1)[:, 0]
    assert np.isfinite(y).all() and abs(y[0] - 1 / 1.25) < 1e-12
    big = ld.ldr_subdiagonal(np.full(n - 1, 2.0), np.full(n - 1, 0.5), np.eye(n, 1), np.eye(n, 1))
    with pytest.raises(OverflowError, match=r"LDRMatrix\.matmat: .* not representable"):
        big @ np.ones(n)  # entries 2**i 2**-j up to 2**1199: genuinely out of range
