"""Kreiss constants and transient growth (lowdisp.spectral).

The oracle: for a Jordan-type matrix A = λI + cJ_n (λ real), the resolvent
(z − A)⁻¹ = Σ_k c^k J^k / w^{k+1}, w = z − λ, is an upper triangular Toeplitz
matrix whose norm depends only on ρ = |w| (a diagonal unitary similarity
removes the phases). Hence
- discrete (0 ≤ λ < 1): K = sup_{ρ > 1−λ} (λ + ρ − 1) N(ρ);
- continuous (λ < 0): K = sup_{x > 0} x N(x − λ);
with N(ρ) = ‖Toeplitz(c^k / ρ^{k+1})‖₂, a 1-D maximization computed here in
log space (entries scaled by their largest before the SVD), so the oracle
reaches 1e-300..1e300 scales and values beyond double range (log K).
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

import lowdisp as ld
from lowdisp.spectral import (
    kreiss_constant,
    transient_growth,
)
from tests import oracles

EXAMPLES = settings().max_examples
FEW = max(5, EXAMPLES // 4)
LOG_MAX = math.log(np.finfo(np.float64).max)


def _log_toeplitz_norm(logt: np.ndarray) -> float:
    """ln ‖T‖₂ of the upper triangular Toeplitz T with first row exp(logt)."""
    n = logt.size
    top = float(logt.max())
    t = np.exp(logt - top)
    T = sum(np.diag(np.full(n - k, t[k]), k) for k in range(n))
    return top + math.log(np.linalg.svd(T, compute_uv=False)[0])


def log_kreiss_jordan(n: int, lam: float, c: float, kind: str) -> float:
    """ln K(λI + cJ_n) by the 1-D formula of the module docstring (dense grid + Brent)."""
    lc = math.log(c)
    k = np.arange(n)

    def log_norm(lr: float) -> float:  # ln ‖(w − cJ)⁻¹‖ at |w| = e^lr
        return _log_toeplitz_norm(k * lc - (k + 1) * lr)

    ref = math.log(1.0 - lam) if kind == "discrete" else math.log(-lam)

    def f(u: float) -> float:
        # discrete: |z| − 1 = e^u, ρ = (1 − λ) + e^u; continuous: x = e^u, ρ = x − λ
        lr = max(u, ref) + math.log1p(math.exp(-abs(u - ref)))
        return u + log_norm(lr)

    lo = -60 * math.log(10) + min(0.0, lc, ref)
    hi = 60 * math.log(10) + max(0.0, lc, ref)
    us = np.linspace(lo, hi, 6001)
    vals = np.array([f(u) for u in us])
    i = int(np.argmax(vals))
    if i == us.size - 1:  # the supremum is the limit |z| → ∞: K = 1
        return max(0.0, float(vals[-1]))
    r = minimize_scalar(
        lambda u: -f(u),
        bounds=(us[max(i - 1, 0)], us[i + 1]),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return max(0.0, -float(r.fun), float(vals[i]))


def _jordan(n: int, lam: float, c: float) -> np.ndarray:
    return lam * np.eye(n) + c * np.diag(np.ones(n - 1), 1)


def _check_against_oracle(A: np.ndarray, want_log: float, kind: str, where: str) -> None:
    if want_log > LOG_MAX - 1e-9:
        with pytest.raises(OverflowError, match=rf"^{where}: the Kreiss constant exceeds"):
            ld.kreiss_constant(A, kind=kind, rng=0)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K = ld.kreiss_constant(A, kind=kind, rng=0)
    assert K.value == pytest.approx(math.exp(want_log), rel=1e-9)


@settings(max_examples=FEW)
@given(
    n=st.integers(2, 6),
    lam=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
    log10c=st.floats(-300.0, 300.0),
)
def test_discrete_kreiss_constant_of_jordan_blocks_at_every_scale(n, lam, log10c):
    # σ_min(z − cJ_n) ~ |z|^n / c^{n−1} lies far below double range at the peak
    # for large c; K itself overflows beyond c^{n−1} ~ 1e308 (OverflowError)
    c = 10.0**log10c
    _check_against_oracle(
        _jordan(n, lam, c), log_kreiss_jordan(n, lam, c, "discrete"), "discrete", "kreiss_constant"
    )


@settings(max_examples=FEW)
@given(
    n=st.integers(2, 5),
    log10a=st.floats(-12.0, 0.0),
    log10s=st.floats(-300.0, 300.0),
)
def test_continuous_kreiss_constant_of_jordan_blocks_at_every_scale(n, log10a, log10s):
    # K(s(J − aI)) = K(J − aI) ~ a^{1−n}: the peak sits at Re z ~ s·a/n, far below
    # the old fixed sampling window for small a
    a, s = 10.0**log10a, 10.0**log10s
    A = s * _jordan(n, -a, 1.0)
    _check_against_oracle(
        A, log_kreiss_jordan(n, -a, 1.0, "continuous"), "continuous", "kreiss_constant"
    )


@pytest.mark.parametrize(
    ("n", "c"),
    [(2, 1e250), (2, 1e300), (6, 1e50), (6, 1e60), (3, 1e150)],
)
def test_discrete_kreiss_constant_of_huge_nilpotents_is_exact(n, c):
    # issue 10: 2 x 2 J·1e250 gave 1.2e150 (true 2.5e249), 6 x 6 J·1e60 gave 1.2e250
    # (true 6.7e298); the asymptotic c^{n-1} (n-1)^{n-1} / n^n is within 1e-14 here
    K = ld.kreiss_constant(c * np.diag(np.ones(n - 1), 1), rng=0)
    assert K.value == pytest.approx(c ** (n - 1) * (n - 1) ** (n - 1) / n**n, rel=1e-12)
    assert abs(K.maximizer) == pytest.approx(n / (n - 1), rel=1e-6)


def test_kreiss_constant_that_overflows_is_an_overflow_error():
    # 6 x 6 J·1e100: K ~ 1e498.8, finite but not representable (was 1.1e250)
    J = 1e100 * np.diag(np.ones(5), 1)
    with pytest.raises(OverflowError, match=r"kreiss_constant: .*log10 K = 498\.8"):
        ld.kreiss_constant(J, rng=0)
    with pytest.raises(OverflowError, match=r"^transient_growth: the Kreiss constant"):
        ld.transient_growth(J, 3, rng=0)


@pytest.mark.slow
def test_continuous_kreiss_constant_that_overflows_is_an_overflow_error():
    # K(J_30 − 1e-12 I) ~ 1e346 (the oracle's log10 K is in the message); the
    # eigenvalue is 1e-12 inside the axis, well above the 1e-13 rounding margin
    want = log_kreiss_jordan(30, -1e-12, 1.0, "continuous") / math.log(10)
    with pytest.raises(OverflowError, match=r"^kreiss_constant: .*log10 K") as exc:
        ld.kreiss_constant(_jordan(30, -1e-12, 1.0), kind="continuous", rng=0)
    got = float(re.search(r"log10 K = (\d+\.\d+)", str(exc.value)).group(1))
    assert got == pytest.approx(want, abs=2e-3)
    # −1e-3 I + 1e200 J_3: the eigenvalue is 1e-203 of ‖A‖ from the axis, i.e. on it
    # to rounding: a finite sampled lower bound, not a claim that K is finite
    K = ld.kreiss_constant(_jordan(3, -1e-3, 1e200), kind="continuous", rng=0)
    assert 1e6 < K.value < 1e300


@pytest.mark.parametrize("c", [1.0, 1e-250, 1e250])
def test_continuous_kreiss_constant_of_a_nilpotent_is_a_lower_bound(c):
    # α(J) = 0 with a Jordan block: K = ∞ in exact arithmetic, and an eigenvalue on
    # the axis is only known to rounding; the sampled value is a finite lower bound
    # (never an OverflowError that would claim a finite K)
    K = ld.kreiss_constant(c * np.diag(np.ones(3), 1), kind="continuous", rng=0)
    assert 1e6 < K.value < 1e300


@pytest.mark.slow
def test_kreiss_constant_of_a_larger_jordan_block():
    # n = 70 > 64: the clamped samples are resolved within a flop budget and the
    # certification uses LAPACK's triangular inverse, falling back to the scaled one
    n, c = 70, 1e4
    K = ld.kreiss_constant(c * np.diag(np.ones(n - 1), 1), rng=0)
    assert K.value == pytest.approx(math.exp(log_kreiss_jordan(n, 0.0, c, "discrete")), rel=1e-9)


@pytest.mark.parametrize("log10c", [-300, -100, 0, 100, 250, 300])
def test_sigma_min_pow2_matches_the_closed_form(log10c):
    from lowdisp.spectral._resolvent import sigma_min_pow2

    # σ_max((z − cJ₂)⁻¹) at |z| = r: (b + sqrt(b² + 4a²))/2, a = 1/r, b = c/r²
    c, r = 10.0**log10c, 2.0
    a, b = 1 / r, c / r**2
    scale = max(a, b)
    smax = scale * (b / scale + math.sqrt((b / scale) ** 2 + 4 * (a / scale) ** 2)) / 2
    m, k = sigma_min_pow2(np.array([[0.0, c], [0.0, 0.0]]), np.array([r]))
    ms, ks = math.frexp(smax)
    assert math.ldexp(m[0] * ms, int(k[0]) + ks) == pytest.approx(1.0, rel=4e-16)
    m, k = sigma_min_pow2(np.array([[0.0, c], [0.0, 0.0]]), np.array([0.0]))
    assert m[0] == 0.0  # z is an eigenvalue


def test_sigma_min_pow2_against_a_dense_svd(rng):
    from lowdisp.spectral._resolvent import sigma_min_pow2

    for n in (1, 5, 60):  # 60 > 48: the ztrtri path
        T = np.triu(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) + 3 * np.eye(n)
        z = rng.standard_normal(4) + 1j * rng.standard_normal(4)
        want = [np.linalg.svd(zz * np.eye(n) - T, compute_uv=False)[-1] for zz in z]
        m, k = sigma_min_pow2(T, z)
        np.testing.assert_allclose(np.ldexp(m, k), want, rtol=1e-10)


def _contractions(rng):
    G = rng.standard_normal((8, 8))
    Q, _ = np.linalg.qr(G)
    return [
        G / oracles.spectral_norm_dense(G),  # ||A|| = 1 exactly (to rounding)
        0.5 * G / oracles.spectral_norm_dense(G),
        Q,  # orthogonal
        np.eye(6, k=1),  # nilpotent shift, ||A|| = 1
        np.zeros((3, 3)),
    ]


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_kreiss_constant_of_contractions_is_one(rng, kind):
    mats = _contractions(rng)
    if kind == "continuous":
        # omega(A) <= 0: shift the contractions left
        mats = [M - 1.0 * np.eye(M.shape[0]) for M in mats]
    for M in mats:
        K = kreiss_constant(M, kind=kind, rng=rng)
        assert K.value == 1.0
        assert K.maximizer is None
        assert K.transient_upper_bound == pytest.approx(math.e * M.shape[0])


def test_kreiss_constant_against_sampling_and_the_theorem(rng):
    A = np.array([[0.5, 4.0, 0.0], [0.0, 0.6, 3.0], [0.0, 0.0, 0.4]])
    K = kreiss_constant(A, rng=rng)
    ref = oracles.kreiss_sampled(A, "discrete")
    assert K.value >= ref * (1 - 1e-9)  # at least as good as dense sampling
    z = K.maximizer
    assert abs(z) > 1
    assert K.value == pytest.approx((abs(z) - 1) / oracles.sigma_min_svd(A, z), rel=1e-12)
    peak = oracles.power_norms(A, 200).max()
    assert K.value <= peak <= K.transient_upper_bound


def test_continuous_kreiss_constant(rng):
    A = np.array([[-1.0, 10.0], [0.0, -2.0]])
    K = kreiss_constant(A, kind="continuous", rng=rng)
    ref = oracles.kreiss_sampled(A, "continuous")
    assert K.value >= ref * (1 - 1e-9)
    z = K.maximizer
    assert z.real > 0
    assert K.value == pytest.approx(z.real / oracles.sigma_min_svd(A, z), rel=1e-12)
    import scipy.linalg as sla

    peak = max(np.linalg.norm(sla.expm(t * A), 2) for t in np.linspace(0, 5, 200))
    assert K.value <= peak * (1 + 1e-9) and peak <= K.transient_upper_bound


def test_kreiss_constant_unstable_is_infinite():
    K = kreiss_constant(np.diag([1.5, 0.2]))
    assert K.value == math.inf and K.maximizer == 1.5
    Kc = kreiss_constant(np.diag([0.1, -1.0]), kind="continuous")
    assert Kc.value == math.inf


def test_transient_growth_norms_and_bounds(rng):
    A = np.array([[0.9, 3.0, 0.0], [0.0, 0.85, 3.0], [0.0, 0.0, 0.8]])
    tg = transient_growth(A, 60, rng=rng)
    np.testing.assert_allclose(tg.norms, oracles.power_norms(A, 60), rtol=1e-10)
    assert tg.k.tolist() == list(range(61))
    assert tg.lower_bounds[0] == 1.0
    # certified: the running maximum of ||A^k|| dominates the resolvent bounds
    assert np.all(np.maximum.accumulate(tg.norms) >= tg.lower_bounds * (1 - 1e-10))
    assert np.all(np.diff(tg.lower_bounds) >= -1e-12)
    assert tg.lower_bounds[-1] > 1.5
    assert tg.kreiss.value <= tg.norms.max() * (1 + 1e-12)


def test_transient_growth_of_a_contraction(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    tg = transient_growth(Q, 10, rng=rng)
    np.testing.assert_allclose(tg.norms, 1.0, rtol=1e-12)
    assert np.all(tg.lower_bounds == 1.0) and tg.kreiss.value == 1.0
