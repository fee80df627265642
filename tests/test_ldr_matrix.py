"""LDRMatrix over a case registry: displacement equations, dense oracles, adjoints, VJPs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st
from oracles import (
    fcirculant_dense,
    krylov_sum,
    random_matrix,
    rel_err,
    shift_matrix,
    skew_circulant_dense,
    stein_solve,
    stein_solve_series,
    sylvester_solve_any,
)

import lowdisp as ld
from lowdisp.exceptions import RankError, SingularOperatorError
from lowdisp.structured._families import RANDOM_KINDS
from lowdisp.testing import check_vjp, dottest

KINDS = sorted(RANDOM_KINDS)
DTYPES = (np.float64, np.complex128)
SIZES = (1, 2, 7, 64)


def _cases():
    for kind in KINDS:
        for dt in DTYPES:
            for n in SIZES:
                for r in range(1, min(4, n) + 1):
                    yield pytest.param(kind, dt, n, r, id=f"{kind}-{np.dtype(dt).name}-n{n}-r{r}")


def _case(kind, dt, n, r, seed=0):
    return ld.random_ldr(kind, n, r, rng=seed, dtype=dt)


def _dense_ops(M):
    return M.A.toarray(), M.B.toarray()


def _expected_displacement(M):
    G, H = M.generators
    D = G @ H.T
    if M.family == "tridiagonal":
        A = M.A.toarray()
        Bp = M.B.base.toarray()
        n = A.shape[0]
        An, Bn = np.linalg.matrix_power(A, n), np.linalg.matrix_power(Bp, n)
        D = D - An @ D @ Bn.T
    return D


def _oracle(M):
    """The dense matrix by an independent solve (or the dense Krylov sum for tridiagonal).

    Sylvester: Bartels-Stewart. Stein: Kronecker solve for small n; for larger n
    the finite Neumann series when B is nilpotent, else the Sylvester form
    A^{-1} M - M B = A^{-1} G H^T.
    """
    G, H = M.generators
    A, B = _dense_ops(M)
    C = G @ H.T
    if M.family == "tridiagonal":
        return krylov_sum(A, M.B.base.toarray(), G, H)
    if M.kind == "sylvester":
        return sylvester_solve_any(A, B, C)
    if A.shape[0] <= 8:
        return stein_solve(A, B, C)
    if not np.linalg.matrix_power(B, B.shape[0]).any():
        return stein_solve_series(A, B, C)
    Ai = np.linalg.inv(A)
    return sylvester_solve_any(Ai, B, Ai @ C)


@pytest.mark.parametrize(("kind", "dt", "n", "r"), list(_cases()))
def test_registry_case(kind, dt, n, r, rng):
    M = _case(kind, dt, n, r)
    Md = M.toarray()
    assert Md.shape == M.shape
    # the displacement equation on toarray()
    assert rel_err(M.displacement(), _expected_displacement(M)) < 1e-10
    # toarray against the dense Sylvester/Stein solve
    assert rel_err(Md, _oracle(M)) < 1e-10
    # products against dense
    X = random_matrix(rng, n, 3, dt)
    assert rel_err(M @ X, Md @ X) < 1e-12
    assert rel_err(M.matvec(X[:, 0]), Md @ X[:, 0]) < 1e-12
    assert rel_err(M.rmatvec(X[:, 0]), Md.conj().T @ X[:, 0]) < 1e-12
    assert rel_err(M.rmatmat(X), Md.conj().T @ X) < 1e-12
    assert rel_err(M.T @ X, Md.T @ X) < 1e-12
    assert rel_err(M.H @ X, Md.conj().T @ X) < 1e-12
    # adjoint identities
    for op in (M, M.T, M.H):
        dottest(op, rng=rng, rtol=1e-12)
    assert rel_err(M.T.toarray(), Md.T) < 1e-14
    assert rel_err(M.H.toarray(), Md.conj().T) < 1e-14
    assert M.T.rank == M.rank == M.H.rank


def test_mixed_real_complex_input(rng):
    M = _case("toeplitz_like", np.float64, 9, 2)
    x = random_matrix(rng, 9, 2, np.complex128)
    assert rel_err(M @ x, M.toarray() @ x) < 1e-13
    assert (M @ x).dtype == np.complex128


def _to_float32(op):
    base = op.base if isinstance(op, ld.TransposedOperator) else op
    if isinstance(base, ld.Diagonal):
        base = ld.Diagonal(base.d.astype(np.float32))
    elif isinstance(base, ld.Subdiagonal):
        base = ld.Subdiagonal(base.s.astype(np.float32), base.f)
    elif isinstance(base, ld.Tridiagonal):
        parts = (base.lower, base.main, base.upper)
        base = ld.Tridiagonal(*(p.astype(np.float32) for p in parts), base.f)
    return base.T if isinstance(op, ld.TransposedOperator) else base


@pytest.mark.parametrize("kind", KINDS)
def test_float32_keeps_precision(kind, rng):
    M = ld.random_ldr(kind, 16, 2, rng=rng)
    G, H = (g.astype(np.float32) for g in M.generators)
    M32 = ld.LDRMatrix(_to_float32(M.A), _to_float32(M.B), G, H, kind=M.kind)
    x = np.ones((16, 2), dtype=np.float32)
    assert M32.dtype == np.float32
    for y in (M32 @ x, M32.H @ x, M32.T @ x, *M32.vjp(x, x).values()):
        assert y.dtype == np.float32
    assert rel_err(M32 @ x, M.toarray() @ x) < 1e-4


def test_complex_corner_makes_complex(rng):
    M = ld.ldr_subdiagonal(np.ones(3), np.ones(3), np.eye(4, 1), np.eye(4, 1), fa=1j, fb=0.5)
    assert M.dtype == np.complex128
    assert rel_err(M @ np.ones(4), M.toarray() @ np.ones(4)) < 1e-14


# --------------------------------------------------------------------------
# exact families
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_exact_families(n, dt, rng):
    c = random_matrix(rng, n, 1, dt)[:, 0]
    r = random_matrix(rng, n, 1, dt)[:, 0]
    assert rel_err(ld.toeplitz(c, r).toarray(), sla.toeplitz(c, r)) < 1e-12
    assert rel_err(ld.toeplitz(c).toarray(), sla.toeplitz(c)) < 1e-12
    assert rel_err(ld.hankel(c, r).toarray(), sla.hankel(c, r)) < 1e-12
    assert rel_err(ld.hankel(c).toarray(), sla.hankel(c)) < 1e-12
    assert rel_err(ld.circulant(c).toarray(), sla.circulant(c)) < 1e-12
    assert rel_err(ld.skew_circulant(c).toarray(), skew_circulant_dense(c)) < 1e-12
    assert rel_err(ld.skew_circulant(c).toarray(), fcirculant_dense(c, -1.0)) < 1e-12
    x = rng.uniform(-1, 1, n) if dt is np.float64 else np.exp(2j * np.pi * rng.uniform(0, 1, n))
    assert rel_err(ld.vandermonde(x).toarray(), np.vander(x, increasing=True)) < 1e-12
    s, t = np.arange(n) + 0.5, -np.arange(n + 2) * (1 + 1j if dt is np.complex128 else 1)
    assert rel_err(ld.cauchy(s, t).toarray(), 1 / (s[:, None] - t[None, :])) < 1e-12
    for M in (ld.toeplitz(c, r), ld.hankel(c, r), ld.circulant(c), ld.skew_circulant(c)):
        assert M.rank <= 2


def test_rectangular_families(rng):
    x = rng.uniform(-1, 1, 5)
    assert rel_err(ld.vandermonde(x, 8).toarray(), np.vander(x, 8, increasing=True)) < 1e-12
    assert ld.vandermonde(x, 3).shape == (5, 3)
    for m, n in ((5, 9), (9, 5)):
        s, t = np.arange(m) + 0.5, -np.arange(n) - 0.25
        G, H = random_matrix(rng, m, 2), random_matrix(rng, n, 2)
        M = ld.cauchy_like(s, t, G, H)
        Md = (G @ H.T) / (s[:, None] - t[None, :])
        assert rel_err(M.toarray(), Md) < 1e-14
        dottest(M, rng=rng, rtol=1e-12)
        dottest(M.T, rng=rng, rtol=1e-12)
        V = ld.vandermonde_like(rng.uniform(-1, 1, m), G, H)
        A, B = V.A.toarray(), V.B.toarray()
        assert rel_err(V.toarray(), stein_solve(A, B, G @ H.T)) < 1e-10
        dottest(V.H, rng=rng, rtol=1e-12)


def test_general_shift_pairs(rng):
    n = 9
    G, H = random_matrix(rng, n, 2), random_matrix(rng, n, 2)
    for e, f in ((2.0, -0.5), (1j, 0.0), (0.0, 1.0)):
        M = ld.toeplitz_like(G, H, e=e, f=f)
        Md = sylvester_solve_any(shift_matrix(n, e), shift_matrix(n, f), G @ H.T)
        assert rel_err(M.toarray(), Md) < 1e-10
    M = ld.toeplitz_like(G, H, kind="stein", e=0.5, f=-1.0)
    assert (
        rel_err(M.toarray(), stein_solve(shift_matrix(n, 0.5), shift_matrix(n, -1.0).T, G @ H.T))
        < 1e-10
    )
    M = ld.hankel_like(G, H, kind="stein")
    assert rel_err(M.displacement(), G @ H.T) < 1e-12


def test_tridiagonal_displacement_rank_at_most_2r(rng):
    n, r = 12, 2
    M = ld.random_ldr("tridiagonal", n, r, rng=rng)
    A, B = M.A, M.B
    dr = ld.displacement_rank(M.toarray(), A, B, kind="stein", rtol=1e-10)
    assert r < dr <= 2 * r  # not the Stein solution, but at most double


# --------------------------------------------------------------------------
# VJPs
# --------------------------------------------------------------------------


def _rebuild(M, p):
    """The LDRMatrix of M's family with parameters p (G, H and operator params)."""
    G, H = p["G"], p["H"]
    fam = M.family
    if fam == "cauchy":
        return ld.cauchy_like(p["A"], p["B"], G, H)
    if fam == "vandermonde":
        return ld.vandermonde_like(p["A"], G, H)
    if fam == "subdiagonal":
        return ld.ldr_subdiagonal(p["A"], p["B"], G, H, fa=M.A.f, fb=M.B.base.f)
    if fam == "tridiagonal":
        n = G.shape[0]

        def tri(v, f):
            return ld.Tridiagonal(v[: n - 1], v[n - 1 : 2 * n - 1], v[2 * n - 1 :], f)

        return ld.ldr_tridiagonal(tri(p["A"], M.A.f), tri(p["B"], M.B.base.f), G, H)
    return ld.LDRMatrix(M.A, M.B, G, H, kind=M.kind)


VJP_KINDS = [
    "toeplitz_like",
    "toeplitz_like_stein",
    "hankel_like",
    "cauchy_like",
    "vandermonde_like",
    "subdiagonal",
    "tridiagonal",
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", VJP_KINDS)
@pytest.mark.parametrize("n", [1, 6])
def test_vjp(kind, dt, n, rng):
    M = ld.random_ldr(kind, n, min(2, n), rng=rng, dtype=dt)
    G, H = M.generators
    x = {"G": G.copy(), "H": H.copy(), "X": random_matrix(rng, n, 3, dt)}
    keys = set(M.vjp(x["X"], M @ x["X"]))
    for key, op in (("A", M.A), ("B", M.B)):
        if key in keys:
            x[key] = op.params.copy()

    def f(p):
        return _rebuild(M, p) @ p["X"]

    def vjp(p, dy):
        return _rebuild(M, p).vjp(p["X"], dy)

    check_vjp(f, vjp, x, rng=rng, rtol=1e-7)
    learnable = {"cauchy_like": "AB", "vandermonde_like": "A", "subdiagonal": "AB"}
    learnable["tridiagonal"] = "AB"
    assert keys == {"G", "H", "X", *learnable.get(kind, "")}


@pytest.mark.parametrize("kind", ["toeplitz_like", "hankel_like", "vandermonde_like", "cauchy"])
def test_vjp_transposed_view(kind, rng):
    M = ld.random_ldr(kind, 5, 2 if kind != "cauchy" else 1, rng=rng, dtype=np.complex128).T
    G, H = M.generators
    x = {"G": G.copy(), "H": H.copy(), "X": random_matrix(rng, 5, 2, np.complex128)}

    def f(p):
        return ld.LDRMatrix(M.A, M.B, p["G"], p["H"], kind=M.kind) @ p["X"]

    def vjp(p, dy):
        d = ld.LDRMatrix(M.A, M.B, p["G"], p["H"], kind=M.kind).vjp(p["X"], dy)
        return {k: d[k] for k in ("G", "H", "X")}

    check_vjp(f, vjp, x, rng=rng, rtol=1e-7)


def test_grad_generators_matches_vjp(rng):
    M = ld.random_ldr("toeplitz_like", 7, 3, rng=rng)
    X, dY = random_matrix(rng, 7, 2), random_matrix(rng, 7, 2)
    g = M.grad_generators(X, dY)
    d = M.vjp(X, dY)
    assert np.array_equal(g.G, d["G"]) and np.array_equal(g.H, d["H"])
    assert M.vjp(X[:, 0], dY[:, 0])["X"].shape == (7,)


# --------------------------------------------------------------------------
# properties (hypothesis draws structure: family, size, rank, seed)
# --------------------------------------------------------------------------


@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(1, 24),
    rank=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    complex_=st.booleans(),
)
def test_property_displacement_and_adjoint(kind, n, rank, seed, complex_):
    rank = min(rank, n)
    M = ld.random_ldr(kind, n, rank, rng=seed, dtype=np.complex128 if complex_ else np.float64)
    assert rel_err(M.displacement(), _expected_displacement(M)) < 1e-10
    dottest(M, rng=seed, rtol=1e-12)
    dottest(M.T, rng=seed, rtol=1e-12)
    R = ld.recompress(M + M)
    assert R.rank <= M.rank
    assert rel_err(R.toarray(), 2 * M.toarray()) < 1e-10


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------


def test_errors_generators():
    G = np.ones((5, 2))
    with pytest.raises(ValueError, match="same number of columns"):
        ld.toeplitz_like(G, np.ones((5, 3)))
    with pytest.raises(ValueError, match="same number of rows"):
        ld.toeplitz_like(G, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"G must have A.n = 4 rows"):
        ld.LDRMatrix(ld.Shift(4, 1.0), ld.Shift(4, -1.0), G, np.ones((4, 2)))
    with pytest.raises(RankError, match=r"rank .* must be in \[1, min\(m, n\) = 5\]; got 0"):
        ld.toeplitz_like(np.ones((5, 0)), np.ones((5, 0)))
    with pytest.raises(RankError, match="got 4"):
        ld.toeplitz_like(np.ones((3, 4)), np.ones((3, 4)))
    bad = G.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="G must be finite"):
        ld.toeplitz_like(bad, G)
    with pytest.raises(ValueError, match="H must be finite"):
        ld.cauchy_like([1.0], [0.0], [[1.0]], [[np.inf]])
    with pytest.raises(TypeError, match="real or complex numbers"):
        ld.toeplitz_like(np.array([["a"]]), np.array([["b"]]))


def test_errors_operators():
    with pytest.raises(ValueError, match="operators of the same size"):
        ld.LDRMatrix(ld.Shift(4, 1.0), ld.Shift(5, -1.0), np.ones((4, 1)), np.ones((5, 1)))
    with pytest.raises(TypeError, match="displacement operator"):
        ld.LDRMatrix(np.eye(3), ld.Shift(3), np.ones((3, 1)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="unsupported operator pair"):
        ld.LDRMatrix(ld.Diagonal([1.0, 2.0]), ld.Shift(2), np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="lower must have length n - 1 = 2"):
        ld.Tridiagonal([1.0], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="n must be in"):
        ld.Shift(0)
    with pytest.raises(ValueError, match="x must have 3 rows"):
        ld.Shift(3).matvec(np.ones(4))
    with pytest.raises(ValueError, match="d must be finite"):
        ld.Diagonal([1.0, np.nan])


def test_errors_singular_maps():
    G = np.ones((4, 1))
    with pytest.raises(SingularOperatorError, match=r"e != f"):
        ld.toeplitz_like(G, G, e=1.0, f=1.0)
    with pytest.raises(SingularOperatorError, match=r"e \* f != 1"):
        ld.toeplitz_like(G, G, kind="stein", e=2.0, f=0.5)
    with pytest.raises(SingularOperatorError, match=r"s\[1\] = 2.0 equals t\[0\] = 2.0"):
        ld.cauchy([1.0, 2.0], [2.0, 3.0])
    with pytest.raises(np.linalg.LinAlgError, match=r"alpha \* beta"):
        ld.ldr_subdiagonal(np.ones(3), np.ones(3), G, G, fa=2.0, fb=0.5)


def test_errors_kind():
    with pytest.raises(ValueError, match=r"unknown kind 'foo'; valid: 'sylvester', 'stein'"):
        ld.LDRMatrix(
            ld.Shift(2, 1.0), ld.Shift(2, -1.0), np.ones((2, 1)), np.ones((2, 1)), kind="foo"
        )
    with pytest.raises(ValueError, match=r"unknown kind 'foo'; valid: .*'toeplitz_like'"):
        ld.random_ldr("foo", 4, 1)
    with pytest.raises(ValueError, match="rank must be in"):
        ld.random_ldr("toeplitz_like", 4, 5)


def test_errors_vjp_shapes():
    M = ld.random_ldr("toeplitz_like", 4, 1, rng=0)
    with pytest.raises(ValueError, match="X must be"):
        M.vjp(np.ones((3, 2)), np.ones((4, 2)))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(5, 9), (9, 5), (1, 4), (4, 1), (64, 7)])
def test_rectangular_toeplitz(m, n, dt, rng):
    c = random_matrix(rng, m, 1, dt)[:, 0]
    r = random_matrix(rng, n, 1, dt)[:, 0]
    T = ld.toeplitz(c, r)
    assert T.shape == (m, n) and T.rank <= 2 and T.family == "toeplitz"
    assert rel_err(T.toarray(), sla.toeplitz(c, r)) < 1e-12
    k = min(3, m, n)
    G, H = random_matrix(rng, m, k, dt), random_matrix(rng, n, k, dt)
    M = ld.toeplitz_like(G, H, kind="stein")
    A, B = M.A.toarray(), M.B.toarray()
    assert rel_err(M.displacement(), G @ H.T) < 1e-12
    assert rel_err(M.toarray(), stein_solve_series(A, B, G @ H.T)) < 1e-12
    X = random_matrix(rng, n, 2, dt)
    assert rel_err(M @ X, M.toarray() @ X) < 1e-12
    for op in (T, M, M.T, M.H):
        dottest(op, rng=rng, rtol=1e-12)
    x = {"G": G, "H": H, "X": X}
    check_vjp(
        lambda p: ld.toeplitz_like(p["G"], p["H"], kind="stein") @ p["X"],
        lambda p, dy: ld.toeplitz_like(p["G"], p["H"], kind="stein").vjp(p["X"], dy),
        x,
        rng=rng,
        rtol=1e-7,
    )
    C = ld.compress(M.toarray(), M.A, M.B, kind="stein")
    assert C.rank <= k and rel_err(C.toarray(), M.toarray()) < 1e-10
    with pytest.raises(ValueError, match="unless kind='stein'"):
        ld.toeplitz_like(G, H)


# --------------------------------------------------------------------------
# random_ldr: every dtype it accepts is honoured
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, "U3", "foo", None, np.float16])
def test_random_ldr_rejects_dtypes_it_cannot_honour(dtype):
    with pytest.raises(TypeError, match="random_ldr: dtype must be one of float32, float64"):
        ld.random_ldr("toeplitz_like", 5, 2, rng=0, dtype=dtype)


def test_random_ldr_honours_every_supported_dtype():
    # float32 used to be refused (and before that came back silently as float64)
    assert ld.random_ldr("cauchy_like", 5, 2, rng=0, dtype=np.complex128).dtype == np.complex128
    assert ld.random_ldr("tridiagonal", 5, 2, rng=0).dtype == np.float64
    for kind in RANDOM_KINDS:
        for dt in (np.float32, np.complex64):
            M = ld.random_ldr(kind, 5, 2, rng=0, dtype=dt)
            assert M.dtype == dt, (kind, dt)
            M64 = ld.random_ldr(
                kind, 5, 2, rng=0, dtype=np.dtype(dt).str.replace("4", "8").replace("c8", "c16")
            )
            np.testing.assert_allclose(M.toarray(), M64.toarray(), rtol=1e-3, atol=1e-3)
