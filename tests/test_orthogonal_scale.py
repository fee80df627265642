"""Scale safety of every orthogonal map (issue 10, class 1).

For parameters scaled by ``c`` anywhere in ``1e-300 .. 1e300`` (and by
``2**k`` over the whole exponent range, subnormals included) every map gives
a ``W`` orthogonal (unitary) to ``<= 1e-13``, never NaN and never a false
diagnosis; maps invariant under the scaling give the same ``W``;
``orthogonality_error(c W)`` follows ``max_i |c^2 sigma_i^2 - 1|``. Where the
scaled parameter itself is not representable (``2**1023 * theta``) the
error names the function and the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowdisp.orthogonal._cayley as cayley_mod
import lowdisp.orthogonal._expm as expm_mod
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
    haar,
    householder_apply,
    householder_apply_vjp,
    householder_product,
    orthogonality_error,
)
from lowdisp.testing import check_vjp

TOL = 1e-13

#: decimal scales named in the issue, and powers of ten across the range
DECIMAL = [1e-300, 1e-250, 1e-200, 1e-170, 1e-155, 1e-100, 1e-20, 1e-10, 1e10, 1e12, 1e16]
DECIMAL += [1e20, 1e100, 1e155, 1e170, 1e200, 1e250, 1e300]

#: a scale: ("pow2", k) for 2**k (exact), or ("dec", c)
full_range = st.one_of(
    st.integers(-1074, 1023).map(lambda k: ("pow2", k)),
    st.sampled_from(DECIMAL).map(lambda c: ("dec", c)),
    st.floats(-300.0, 300.0).map(lambda t: ("dec", 10.0**t)),
)
#: scales within 1e-300 .. 1e300 (where gradients stay representable too)
in_range = st.one_of(
    st.integers(-996, 996).map(lambda k: ("pow2", k)),
    st.sampled_from(DECIMAL).map(lambda c: ("dec", c)),
    st.floats(-300.0, 300.0).map(lambda t: ("dec", 10.0**t)),
)


def scaled(x: np.ndarray, s: tuple[str, float]) -> np.ndarray:
    kind, v = s
    if np.iscomplexobj(x):
        return complex_of(scaled(x.real, s), scaled(x.imag, s))
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(x, int(v)) if kind == "pow2" else x * v


def complex_of(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """``re + i im`` without ``1j * inf = nan + inf j``."""
    z = np.empty(np.shape(re), dtype=np.complex128)
    z.real, z.imag = re, im
    return z


def factor(s: tuple[str, float]) -> float:
    kind, v = s
    return float(np.ldexp(1.0, int(v))) if kind == "pow2" else float(v)


def ortho_err(W: np.ndarray) -> float:
    """Reference ``||W^H W - I||_2`` for an O(1) matrix (plain Gram matrix)."""
    W = np.asarray(W, dtype=np.complex128)
    assert np.isfinite(W).all()
    return float(np.linalg.norm(W.conj().T @ W - np.eye(W.shape[1]), 2))


def skew(rng: np.random.Generator, n: int) -> np.ndarray:
    P = rng.standard_normal((n, n))
    return P - P.T


# ---------------------------------------------------------------------------
# the maps: W orthogonal for any scale of theta
# ---------------------------------------------------------------------------


@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), s=full_range)
def test_householder_any_scale(n, seed, s):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, n + 1))
    h = Householder(n, k)
    th = h.sample(rng=rng)
    ts = scaled(th, s)
    if not np.isfinite(ts).all():
        with pytest.raises(ValueError, match=r"Householder.forward: theta must be finite"):
            h.forward(ts)
        return
    if (ts == 0).all(axis=0).any():
        with pytest.raises(ValueError, match=r"Householder.forward.*column \d+ is zero"):
            h.forward(ts)
        return
    W, _ = h.forward(ts)
    assert ortho_err(W) <= TOL
    assert abs(np.linalg.det(W) - (-1) ** k) <= TOL
    if 1e-300 <= factor(s) <= 1e300:  # reflectors depend only on directions
        assert np.abs(W - h.forward(th)[0]).max() <= TOL
        assert np.abs(householder_product(ts) - W).max() <= TOL


@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), s=in_range)
def test_householder_gradient_scales_inversely(n, seed, s):
    """W(c V) = W(V), so dL/dV at c V is (dL/dV at V) / c, exactly for c = 2**k."""
    rng = np.random.default_rng(seed)
    h = Householder(n)
    th = h.sample(rng=rng)
    G = rng.standard_normal((n, n))
    g0 = h.vjp(h.forward(th)[1], G)
    gc = h.vjp(h.forward(scaled(th, s))[1], G)
    assert np.isfinite(gc).all()
    # the gradient's natural size is |G| / |v| (rounding in g0 is relative to it, even
    # where the true gradient is 0, as for n = 1 where W = -1 is constant)
    size = max(np.abs(g0).max(), np.abs(G).max() / np.linalg.norm(th, axis=0).min())
    assert np.abs(gc * factor(s) - g0).max() <= 1e-12 * max(1.0, size)


@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), s=full_range)
def test_scaled_cayley_any_scale(n, seed, s):
    rng = np.random.default_rng(seed)
    n_neg = int(rng.integers(0, n + 1))
    sc = ScaledCayley(n, n_neg)
    ts = scaled(rng.standard_normal(sc.theta_shape), s)
    if not np.isfinite(ts).all():
        with pytest.raises(ValueError, match=r"ScaledCayley.*theta must be finite"):
            sc.forward(ts)
        return
    W, cache = sc.forward(ts)
    assert ortho_err(W) <= TOL
    assert abs(np.linalg.det(W) - (-1) ** n_neg) <= 1e-12
    assert np.isfinite(sc.vjp(cache, rng.standard_normal((n, n)))).all()


@pytest.mark.parametrize("method", ["eigh", "pade"])
@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), s=full_range)
def test_expmap_any_scale(method, n, seed, s):
    rng = np.random.default_rng(seed)
    e = ExpMap(n, method=method)
    ts = scaled(rng.standard_normal(e.theta_shape), s)
    if not np.isfinite(ts).all():
        with pytest.raises(ValueError, match=r"ExpMap.*theta must be finite"):
            e.forward(ts)
        return
    if factor(s) > 2.0**1000:  # eigenvalues of A may exceed the float range
        try:
            W, cache = e.forward(ts)
        except ValueError as exc:
            assert "ExpMap.forward: an eigenvalue of A overflows" in str(exc)
            return
    else:
        W, cache = e.forward(ts)
    assert ortho_err(W) <= TOL
    assert abs(np.linalg.det(W) - 1.0) <= 1e-12
    assert np.isfinite(e.vjp(cache, rng.standard_normal((n, n)))).all()


@given(m=st.integers(1, 5), n=st.integers(1, 5), seed=st.integers(0, 2**16), s=full_range)
def test_svdparam_any_scale(m, n, seed, s):
    """Reflector parts scaled: singular values stay sigma(p), W unchanged."""
    rng = np.random.default_rng(seed)
    sp = SVDParam(m, n, margin=0.5)
    th = sp.sample(rng=rng)
    th[-sp.r :] = rng.standard_normal(sp.r)
    ts = th.copy()
    nref = th.size - sp.r
    ts[:nref] = scaled(th[:nref], s)
    Vu, Vv, _ = sp.split(ts) if np.isfinite(ts).all() else (None, None, None)
    if Vu is None or (Vu == 0).all(axis=0).any() or (Vv == 0).all(axis=0).any():
        with pytest.raises(ValueError, match=r"SVDParam.forward"):
            sp.forward(ts)
        return
    W, cache = sp.forward(ts)
    sv = np.linalg.svd(W, compute_uv=False)
    assert np.abs(np.sort(sv) - np.sort(sp.sigma(th))).max() <= TOL
    if 1e-300 <= factor(s) <= 1e300:  # beyond, dL/dV ~ 1/c may overflow (with a warning)
        assert np.isfinite(sp.vjp(cache, np.ones((m, n)))).all()
        assert np.abs(W - sp.forward(th)[0]).max() <= TOL


@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), s=full_range, phases=st.booleans())
def test_restricted_unitary_any_scale(n, seed, s, phases):
    """Reflection parts (and optionally the phases) scaled: W stays unitary."""
    rng = np.random.default_rng(seed)
    ru = RestrictedUnitary(n, rng=seed)
    th = ru.sample(rng=rng)
    ts = th.copy()
    ts[3 * n :] = scaled(th[3 * n :], s)
    if phases:
        ts[: 3 * n] = scaled(th[: 3 * n], s)
    if not np.isfinite(ts).all():
        with pytest.raises(ValueError, match=r"RestrictedUnitary.forward: theta must be finite"):
            ru.forward(ts)
        return
    v = ts[3 * n :].reshape(4, n)
    if not v[:2].any() or not v[2:].any():
        with pytest.raises(ValueError, match=r"reflection vector v\d .* must be nonzero"):
            ru.forward(ts)
        return
    W, cache = ru.forward(ts)
    assert ortho_err(W) <= TOL
    if 1e-300 <= factor(s) <= 1e300:  # beyond, dL/dv ~ 1/c may overflow (with a warning)
        assert np.isfinite(ru.vjp(cache, np.ones((n, n)))).all()
        if not phases:
            assert np.abs(W - ru.forward(th)[0]).max() <= TOL


@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), s=full_range, real=st.booleans())
def test_riemannian_step_any_scale(n, seed, s, real):
    """A huge (or tiny) lr * G keeps the Cayley step unitary; lr * G overflowing is refused."""
    rng = np.random.default_rng(seed)
    fu = FullUnitary(n, real=real)
    W = fu.sample(rng=rng)
    G = scaled(rng.standard_normal((n, n)), s)
    if not real:
        G = complex_of(G, scaled(rng.standard_normal((n, n)), s))
    if not np.isfinite(G).all():
        return  # not representable: refused by the finiteness check (tested elsewhere)
    for lr in (1e-3, 1.0, 1e3):
        try:
            W2 = fu.riemannian_step(W, G, lr)
        except ValueError as exc:
            assert np.log10(lr) + np.log10(np.abs(G).max()) > 300
            assert "lr * G overflows" in str(exc)
            continue
        assert ortho_err(W2) <= TOL


def test_riemannian_step_overflow_is_refused():
    fo = FullOrthogonal(3)
    G = np.full((3, 3), 1e300)
    G[0, 1] = -1e300
    with pytest.raises(ValueError, match="riemannian_step: lr \\* G overflows"):
        fo.riemannian_step(np.eye(3), G, 1e300)


# ---------------------------------------------------------------------------
# the functional core
# ---------------------------------------------------------------------------


@given(n=st.integers(0, 6), seed=st.integers(0, 2**16), s=full_range, cplx=st.booleans())
def test_cayley_and_expm_skew_any_scale(n, seed, s, cplx):
    rng = np.random.default_rng(seed)
    A = scaled(skew(rng, n), s)
    if cplx:
        H = rng.standard_normal((n, n))
        A = complex_of(A, scaled(H + H.T, s))  # skew-Hermitian
    if not np.isfinite(A).all():
        with pytest.raises(ValueError, match="cayley: A must be finite"):
            cayley(A)
        return
    W = cayley(A)
    assert W.shape == (n, n)
    assert n == 0 or ortho_err(W) <= TOL
    if n:
        d = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        assert ortho_err(cayley(A, d)) <= TOL
    try:
        W = expm_skew(A)
        g = expm_skew_vjp(A, np.ones((n, n)))
    except ValueError as exc:  # only where an eigenvalue exceeds the float range
        assert factor(s) > 2.0**1000 and "an eigenvalue of A overflows" in str(exc)
        return
    assert W.shape == g.shape == (n, n)
    assert n == 0 or ortho_err(W) <= TOL
    assert np.isfinite(g).all()


@pytest.mark.parametrize("c", [1e10, 1e16, 1e100, 1e300])
def test_cayley_skew_is_never_called_singular(c):
    """The issue's reproducers: 4e-7 at 1e10, "-1 is an eigenvalue" at 1e16 (odd n)."""
    sc = ScaledCayley(3)
    th = sc.sample(rng=0)
    W, _ = sc.forward(c * th)
    assert ortho_err(W) <= TOL
    A = sc.skew(c * np.array([1.0, -2.0, 0.5]))
    assert ortho_err(cayley(A)) <= TOL


def test_cayley_non_skew_singular_still_raises():
    A = np.array([[-1.0, 0.0], [0.0, 2.0]])  # eigenvalue -1: a true diagnosis
    with pytest.raises(np.linalg.LinAlgError, match="cayley: I \\+ A is singular"):
        cayley(A)


@given(n=st.integers(1, 5), k=st.integers(1, 4), seed=st.integers(0, 2**16), s=in_range)
def test_householder_apply_is_linear_in_x_at_any_scale(n, k, seed, s):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n, k))
    X = rng.standard_normal((n, 3))
    ref = householder_apply(V, X)
    out = householder_apply(V, scaled(X, s))
    c = factor(s)
    assert np.abs(out / c - ref).max() <= 1e-13 * max(1.0, np.abs(ref).max())


@given(n=st.integers(2, 6), seed=st.integers(0, 2**16), k=st.integers(-480, 480))
def test_householder_lapack_layout_any_scale(n, seed, k):
    """geqrf layout with stored parts 2**k w and the matching tau = 2 / (1 + 4**k ||w||^2)."""
    rng = np.random.default_rng(seed)
    kk = n - 1
    w = rng.standard_normal((n, kk))
    V = np.ldexp(np.tril(w, -1), k)
    w2 = (np.tril(w, -1) ** 2).sum(axis=0)[:kk]
    tau = 2.0 / (np.ldexp(1.0, -2 * k) + w2) * np.ldexp(1.0, -2 * k) if k > 0 else None
    if tau is None:
        tau = 2.0 / (1.0 + np.ldexp(w2, 2 * k))
    Q = householder_product(V, tau)
    assert ortho_err(Q) <= TOL
    X = rng.standard_normal((n, 2))
    assert np.abs(householder_apply(V, X, tau=tau) - Q @ X).max() <= 1e-13 * np.abs(X).max() * n


# ---------------------------------------------------------------------------
# orthogonality_error and eigenphases
# ---------------------------------------------------------------------------


@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), s=full_range, cplx=st.booleans())
def test_orthogonality_error_scale_covariance(n, seed, s, cplx):
    """e(c Q) = |c^2 - 1| for orthogonal Q; inf (not NaN) where that overflows."""
    rng = np.random.default_rng(seed)
    Q = haar(n, rng=rng, complex=cplx)
    c = factor(s)
    e = orthogonality_error(scaled(Q, s))
    assert not np.isnan(e)
    with np.errstate(over="ignore"):
        want = abs(c - 1.0) * (c + 1.0)
    if np.isinf(want):
        assert e == np.inf
    else:
        assert abs(e - want) <= 1e-13 * max(1.0, want)


@given(m=st.integers(1, 5), seed=st.integers(0, 2**16), s=in_range)
def test_orthogonality_error_general_matrix(m, seed, s):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, m + 1))
    W = rng.standard_normal((m, n))
    sv = np.linalg.svd(W, compute_uv=False)
    c = factor(s)
    with np.errstate(over="ignore"):
        cs = c * sv
        want = float((np.abs(cs - 1.0) * (cs + 1.0)).max())
    e = orthogonality_error(scaled(W, s))
    if np.isinf(want):
        assert e == np.inf
    else:
        assert abs(e - want) <= 1e-12 * max(1.0, want)


def test_orthogonality_error_reproducer():
    assert orthogonality_error(1e200 * np.eye(3)) == np.inf
    assert orthogonality_error(1e100 * np.eye(3)) == pytest.approx(1e200, rel=1e-15)
    assert orthogonality_error(1e-200 * np.eye(3)) == 1.0
    assert orthogonality_error(np.zeros((3, 2))) == 1.0
    assert orthogonality_error(np.eye(3)) == 0.0


@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), s=in_range)
def test_eigenphases_scale_invariant(n, seed, s):
    Q = haar(n, rng=seed)
    assert np.abs(eigenphases(scaled(Q, s)) - eigenphases(Q)).max() <= 1e-12


# ---------------------------------------------------------------------------
# the large-||A|| paths keep exact VJPs (forced at normal scale)
# ---------------------------------------------------------------------------


def _check_map(p, th):
    def f(t):
        return p.forward(t)[0]

    def g(t, dy):
        return p.vjp(p.forward(t)[1], dy)

    return check_vjp(f, g, th, rng=0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_spectral_cayley_vjp_exact(monkeypatch, n):
    monkeypatch.setattr(cayley_mod, "_RCOND_SPECTRAL", 2.0)  # every skew A: spectral path
    sc = ScaledCayley(n, n_neg=n // 2)
    th = np.random.default_rng(n).standard_normal(sc.theta_shape)
    W, (res, _) = sc.forward(th)
    assert res.lu is None
    assert _check_map(sc, th) < 1e-8
    monkeypatch.undo()
    assert np.abs(sc.forward(th)[0] - W).max() < 1e-13  # both paths: the same W


@pytest.mark.parametrize("method", ["eigh", "pade"])
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_schur_expmap_vjp_exact(monkeypatch, method, n):
    e = ExpMap(n, method=method)
    th = np.random.default_rng(n).standard_normal(e.theta_shape)
    W0 = e.forward(th)[0]
    monkeypatch.setattr(expm_mod, "_EIGH_MAX", -1.0)
    monkeypatch.setattr(expm_mod, "_PADE_MAX_NORM1", -1.0)
    W, cache = e.forward(th)
    assert cache[0] == "schur"
    assert np.abs(W - W0).max() < 1e-13
    assert _check_map(e, th) < 1e-8


@pytest.mark.parametrize("cplx", [False, True])
def test_spectral_expm_skew_vjp_exact(monkeypatch, cplx):
    rng = np.random.default_rng(3)
    P = rng.standard_normal((4, 4)) + (1j * rng.standard_normal((4, 4)) if cplx else 0)
    G = rng.standard_normal((4, 4)) + (1j * rng.standard_normal((4, 4)) if cplx else 0)
    A = P - P.conj().T
    ref = expm_skew_vjp(A, G)
    monkeypatch.setattr(expm_mod, "_PADE_MAX_NORM1", -1.0)
    assert np.abs(expm_skew_vjp(A, G) - ref).max() < 1e-12


def test_spectral_riemannian_step_matches_lu(monkeypatch):
    fu = FullUnitary(4)
    W = fu.sample(rng=0)
    G = np.random.default_rng(1).standard_normal((4, 4)) + 0j
    ref = fu.riemannian_step(W, G, 0.3)
    monkeypatch.setattr("lowdisp.orthogonal._unitary._RCOND_SPECTRAL", 2.0)
    assert np.abs(fu.riemannian_step(W, G, 0.3) - ref).max() < 1e-13


@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), s=in_range)
def test_complex_householder_product_any_scale(n, seed, s):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, n + 1))
    V = complex_of(rng.standard_normal((n, k)), rng.standard_normal((n, k)))
    Q = householder_product(scaled(V, s))
    assert ortho_err(Q) <= TOL
    assert np.abs(Q - householder_product(V)).max() <= TOL


@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), s=in_range)
def test_cayley_general_matrix_any_scale(n, seed, s):
    """Non-skew A: the LU runs on 2^-e (I + A), so huge A is no longer called singular."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, n)) + 3 * np.eye(n)  # eigenvalues away from -1 / 0
    c = factor(s)
    W = cayley(scaled(B, s))
    assert np.isfinite(W).all()
    if c >= 1e20:  # (I + cB)^{-1}(I - cB) -> -I
        assert np.abs(W + np.eye(n)).max() <= 1e-12 * np.linalg.cond(B)
    elif c <= 1e-20:
        assert np.abs(W - np.eye(n)).max() <= 1e-12


def test_in_manifold_and_right_inverse_at_extreme_scales():
    h = Householder(3)
    W = h.forward(h.sample(rng=0))[0]
    for c in (1e-200, 1e200):
        assert not h.in_manifold(c * W)
        assert not ScaledCayley(3).in_manifold(c * W)
        with pytest.raises(ValueError, match=r"Householder.right_inverse: W is not orthogonal"):
            h.right_inverse(c * W)


@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), s=in_range)
def test_reflector_gradients_scale_inversely(n, seed, s):
    """Every reflector-based VJP: dL/dv at c v is (dL/dv at v) / c (exact for c = 2**k)."""
    rng = np.random.default_rng(seed)
    c = factor(s)

    def close(gc, g0):
        assert np.isfinite(gc).all()
        assert np.abs(gc * c - g0).max() <= 1e-12 * max(1.0, np.abs(g0).max())

    V = rng.standard_normal((n, 2))
    X = rng.standard_normal((n, 3))
    dY = rng.standard_normal((n, 3))
    g0 = householder_apply_vjp(V, X, dY, adjoint=True)
    gc = householder_apply_vjp(scaled(V, s), X, dY, adjoint=True)
    close(gc["V"], g0["V"])
    assert np.abs(gc["X"] - g0["X"]).max() <= 1e-12 * max(1.0, np.abs(g0["X"]).max())

    sp = SVDParam(n + 1, n, margin=0.5)
    th = sp.sample(rng=rng)
    th[-sp.r :] = rng.standard_normal(sp.r)
    nref = th.size - sp.r
    tc = th.copy()
    tc[:nref] = scaled(th[:nref], s)
    G = rng.standard_normal((n + 1, n))
    g0 = sp.vjp(sp.forward(th)[1], G)
    gc = sp.vjp(sp.forward(tc)[1], G)
    close(gc[:nref], g0[:nref])
    assert np.abs(gc[nref:] - g0[nref:]).max() <= 1e-12 * max(1.0, np.abs(g0[nref:]).max())

    ru = RestrictedUnitary(n, rng=seed)
    th = ru.sample(rng=rng)
    tc = th.copy()
    tc[3 * n :] = scaled(th[3 * n :], s)
    G = complex_of(rng.standard_normal((n, n)), rng.standard_normal((n, n)))
    g0 = ru.vjp(ru.forward(th)[1], G)
    gc = ru.vjp(ru.forward(tc)[1], G)
    close(gc[3 * n :], g0[3 * n :])


@given(n=st.integers(2, 6), seed=st.integers(0, 2**16), s=in_range)
def test_cayley_of_a_rounded_skew_matrix(n, seed, s):
    """Q L Q^T of a skew L is skew only to rounding: still orthogonal, at any scale."""
    rng = np.random.default_rng(seed)
    Q = haar(n, rng=rng)
    A = Q @ scaled(skew(rng, n), s) @ Q.T
    assert ortho_err(cayley(A)) <= TOL


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
