"""The family registry: every registered family, the package's and any added later, is
checked by the same code (dense oracle, displacement, products, dot tests, check_vjp,
solve, the algebra). tests/diagonal_stein_family.py defines a family outside the
package and registers it: it is covered here without a line of its own."""

from __future__ import annotations

import diagonal_stein_family
import numpy as np
import pytest
from oracles import krylov_sum, random_matrix, rel_err, stein_solve, sylvester_solve_any

import lowdisp as ld
from lowdisp.structured import families
from lowdisp.structured.families import LDRFamily, TridiagonalFamily, register, registered
from lowdisp.testing import check_vjp, dottest

FAMILIES = registered()
DTYPES = (np.float64, np.complex128)


def _member(fam: type[LDRFamily], n: int, r: int, dt, seed: int = 0) -> ld.LDRMatrix:
    A, B, G, H, kind = fam.example(np.random.default_rng(seed), n, r, dt)
    M = ld.LDRMatrix(A, B, G, H, kind=kind)
    assert type(M.family_object) is fam and M.family == fam.name
    return M


def _oracle(M: ld.LDRMatrix, fam: type[LDRFamily]) -> np.ndarray:
    """The dense matrix by an independent solve of its displacement equation (the
    tridiagonal family is the Krylov sum, not the Stein solution)."""
    G, H = M.generators
    A, B = M.A.toarray(), M.B.toarray()
    if fam is TridiagonalFamily:
        return krylov_sum(A, M.B.base.toarray(), G, H)
    if M.kind == "sylvester":
        return sylvester_solve_any(A, B, G @ H.T)
    return stein_solve(A, B, G @ H.T)


def _with_params(op, p):
    """The operator of ``op``'s type with parameter vector ``p`` (a transpose stays one)."""
    base = op.base if isinstance(op, ld.TransposedOperator) else op
    if isinstance(base, ld.Diagonal):
        base = ld.Diagonal(p)
    elif isinstance(base, ld.Subdiagonal):
        base = ld.Subdiagonal(p, base.f)
    elif isinstance(base, ld.Tridiagonal):
        n = base.n
        base = ld.Tridiagonal(p[: n - 1], p[n - 1 : 2 * n - 1], p[2 * n - 1 :], base.f)
    return base.T if isinstance(op, ld.TransposedOperator) else base


CASES = [
    pytest.param(fam, dt, n, id=f"{fam.__name__}-{np.dtype(dt).name}-n{n}")
    for fam in FAMILIES
    for dt in DTYPES
    for n in (1, 6)
]


def test_the_outside_family_is_registered():
    assert diagonal_stein_family.DiagonalSteinFamily in FAMILIES
    assert "diagonal_stein: (Diagonal(s), Diagonal(t)) stein" in families.describe_pairs()


@pytest.mark.parametrize(("fam", "dt", "n"), CASES)
def test_family_dense_oracle_products_and_adjoints(fam, dt, n, rng):
    M = _member(fam, n, min(2, n), dt)
    Md = M.toarray()
    assert rel_err(Md, _oracle(M, fam)) < 1e-10
    if fam is not TridiagonalFamily:
        G, H = M.generators
        assert rel_err(M.displacement(), G @ H.T) < 1e-10
    m, k = M.shape
    X, Y = random_matrix(rng, k, 3, dt), random_matrix(rng, m, 3, dt)
    assert rel_err(M @ X, Md @ X) < 1e-12
    assert rel_err(M.rmatmat(Y), Md.conj().T @ Y) < 1e-12
    assert rel_err(M.T @ Y, Md.T @ Y) < 1e-12
    assert rel_err(M.H @ Y, Md.conj().T @ Y) < 1e-12
    for op in (M, M.T, M.H):
        dottest(op, rng=rng, rtol=1e-12)
    assert rel_err(M.T.toarray(), Md.T) < 1e-14


@pytest.mark.parametrize(("fam", "dt", "n"), CASES)
def test_family_vjp(fam, dt, n, rng):
    M = _member(fam, n, min(2, n), dt)
    G, H = M.generators
    x = {"G": G.copy(), "H": H.copy(), "X": random_matrix(rng, M.shape[1], 2, dt)}
    keys = set(M.vjp(x["X"], M @ x["X"]))
    for key, op in (("A", M.A), ("B", M.B)):
        if key in keys:
            x[key] = op.params.copy()

    def build(p):
        A = _with_params(M.A, p["A"]) if "A" in p else M.A
        B = _with_params(M.B, p["B"]) if "B" in p else M.B
        return ld.LDRMatrix(A, B, p["G"], p["H"], kind=M.kind)

    check_vjp(lambda p: build(p) @ p["X"], lambda p, dy: build(p).vjp(p["X"], dy), x, rng=rng)
    assert keys >= {"G", "H", "X"}


@pytest.mark.parametrize(("fam", "dt", "n"), CASES)
def test_family_solve_and_algebra(fam, dt, n, rng):
    M = _member(fam, n, min(2, n), dt)
    Md = M.toarray()
    if M.shape[0] == M.shape[1]:
        b = random_matrix(rng, n, 2, dt)
        x = ld.solve(M, b)
        assert rel_err(Md @ x, b) < 1e-9 * max(1.0, np.linalg.cond(Md))
    assert rel_err((M + M).toarray(), 2 * Md) < 1e-12
    assert rel_err((3.0 * M).toarray(), 3 * Md) < 1e-12
    assert rel_err(ld.recompress(M + M).toarray(), 2 * Md) < 1e-10
    if M.shape[0] == M.shape[1]:
        P = M @ M  # an LDRMatrix or the lazy product, by the documented rule
        Pd = P.toarray() if isinstance(P, ld.LDRMatrix) else P @ np.eye(n)
        assert rel_err(Pd, Md @ Md) < 1e-10


def test_closed_form_product_of_the_outside_family(rng):
    s, u, t = rng.uniform(-0.9, 0.9, 5), rng.uniform(0.5, 0.9, 5), rng.uniform(-0.5, 0.5, 5)
    G1, H1, G2, H2 = (random_matrix(rng, 5, 1) for _ in range(4))
    M1 = ld.LDRMatrix(ld.Diagonal(s), ld.Diagonal(u), G1, H1, kind="stein")
    M2 = ld.LDRMatrix(ld.Diagonal(1 / u), ld.Diagonal(t), G2, H2, kind="stein")
    P = M1 @ M2
    assert isinstance(P, ld.LDRMatrix) and P.family == "diagonal_stein" and P.rank == 2
    assert rel_err(P.toarray(), M1.toarray() @ M2.toarray()) < 1e-12
    # inner operators that do not invert each other: the lazy product
    Q = M1 @ ld.LDRMatrix(ld.Diagonal(u), ld.Diagonal(t), G2, H2, kind="stein")
    assert not isinstance(Q, ld.LDRMatrix)


def test_register_refuses_what_is_not_a_family():
    with pytest.raises(TypeError, match="subclass of LDRFamily"):
        register(object)

    class Half(LDRFamily):
        name, pairs = "half", "none"

    with pytest.raises(TypeError, match=r"does not implement .*matmat"):
        register(Half)
    assert Half not in registered()


def test_recognition_is_a_loop_over_the_registry():
    fam, transposed = families.recognise(ld.Shift(4, -1.0).T, ld.Shift(4, 1.0).T, "sylvester")
    assert fam is families.ToeplitzFamily and transposed
    assert families.recognise(ld.Diagonal([1.0, 2.0]), ld.Shift(2), "sylvester") is None
