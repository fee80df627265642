"""QA regressions for lowdisp.spectral: defects found by adversarial use."""

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.sparse.linalg import aslinearoperator

import lowdisp as ld
from lowdisp.spectral import (
    departure_from_normality,
    pseudospectra,
    pseudospectral_abscissa,
    pseudospectral_radius,
    spectral_norm,
)

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


@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
def test_departure_from_normality_without_over_or_underflow(scale):
    A = np.array([[0.0, 1.0], [0.0, 0.0]]) * scale
    assert departure_from_normality(A) == pytest.approx(scale, rel=1e-14)
    assert departure_from_normality(A, relative=True) == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("scale", SCALES)
def test_criss_cross_is_scale_invariant(scale):
    # at 1e150 the criss-cross returned 0.95 (below the spectral abscissa 2)
    A = np.array([[1.0, 5.0], [0.0, 2.0]])
    eps = 1e-2
    for fn in (pseudospectral_abscissa, pseudospectral_radius):
        ref = fn(A, eps)
        got = fn(A * scale, eps * scale)
        assert got.value / scale == pytest.approx(ref.value, rel=1e-12)
        smin = sla.svdvals(got.maximizer * np.eye(2) - A * scale)[-1]
        assert smin / (eps * scale) == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("method", ["svd", "lanczos"])
def test_pseudospectra_is_scale_invariant(rng, scale, method):
    # 1e-300 reported every point as an underflow (the absolute 1e-150 clamp),
    # 1e300 overflowed
    A = np.triu(rng.standard_normal((6, 6))) + 3 * np.eye(6)
    ref = pseudospectra(A, npts=5, method=method, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ps = pseudospectra(A * scale, npts=5, method=method, tol=1e-12)
    np.testing.assert_allclose(ps.re / scale, ref.re, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(ps.im / scale, ref.im, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(ps.eigenvalues / scale, ref.eigenvalues, rtol=1e-12)
    np.testing.assert_allclose(ps.sigma_min / scale, ref.sigma_min, rtol=1e-9)
    z = ps.re[1] + 1j * ps.im[3]
    s = sla.svdvals(z * np.eye(6) - A * scale)[-1]
    assert ps.sigma_min[3, 1] == pytest.approx(s, rel=1e-9)


def test_pseudospectra_user_grid_is_returned_unchanged():
    A = np.diag([1.0, 2.0]) * 1e200
    re = np.array([0.5, 1.25, 2.5, 3.0]) * 1e200
    im = np.linspace(-1e200, 1e200, 3)
    ps = pseudospectra(A, re=re, im=im)
    np.testing.assert_array_equal(ps.re, re)
    np.testing.assert_array_equal(ps.im, im)
    Z = re[None, :] + 1j * im[:, None]
    dist = np.min(np.abs(Z[..., None] - np.array([1e200, 2e200])), axis=-1)
    np.testing.assert_allclose(ps.sigma_min, dist, rtol=1e-12)


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


@pytest.mark.parametrize(
    "A", [np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 2.0], [0.0, 1.0]])]
)
def test_condition_numbers_of_defective_eigenvalues_are_inf(A):
    # the docstring promises inf; 1/rounding (5e291, 9e15) came back
    from lowdisp.spectral import eigenvalue_condition_numbers

    c = eigenvalue_condition_numbers(A)
    assert np.isinf(c.condition_numbers).all()


def test_condition_numbers_of_ill_conditioned_but_simple_eigenvalues_stay_finite():
    from lowdisp.spectral import eigenvalue_condition_numbers

    A = np.array([[1.0, 1e6], [0.0, 1.001]])
    c = eigenvalue_condition_numbers(A).condition_numbers
    # kappa = sqrt(1 + (1e6 / 1e-3)^2) for both eigenvalues
    np.testing.assert_allclose(c, np.hypot(1.0, 1e9), rtol=1e-6)


def test_spectral_norm_dense_refuses_huge_operators():
    # method="dense" formed A @ I: 80 GB for an n = 100000 LDR matrix
    M = ld.random_ldr("toeplitz_like", 100_000, 2, rng=0)
    with pytest.raises(ValueError, match="spectral_norm: method='dense' would form"):
        spectral_norm(M, method="dense")


@pytest.mark.parametrize("bad", ["no", None, 0, np.array([True])])
def test_boolean_options_are_validated(bad):
    # a string such as "no" is truthy: departure_from_normality(relative="no") was relative
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lowdisp.spectral import (
        plot_numerical_range,
        plot_pseudospectra,
        spectral_normalize,
    )

    A = np.array([[1.0, 2.0], [0.0, 0.5]])
    with pytest.raises(TypeError, match="departure_from_normality: relative must be True"):
        departure_from_normality(A, relative=bad)
    with pytest.raises(TypeError, match="spectral_normalize: clip must be True or False"):
        spectral_normalize(A, clip=bad)
    with pytest.raises(TypeError, match="pseudospectra: warm_start must be True or False"):
        pseudospectra(A, npts=3, warm_start=bad)
    with pytest.raises(TypeError, match="plot_pseudospectra: colorbar must be True or False"):
        plot_pseudospectra(A, npts=3, colorbar=bad)
    with pytest.raises(TypeError, match="plot_numerical_range: eigenvalues must be True"):
        plot_numerical_range(A, eigenvalues=bad)
    plt.close("all")
    assert departure_from_normality(A, relative=np.bool_(True)) == pytest.approx(
        departure_from_normality(A) / np.linalg.norm(A)
    )


# issue 9: reproducers from "lowdisp pseudospectra is slow and silent at moderate n"


def test_issue9_orthogonal_float32_never_prints_inf_bounds():
    from scipy.stats import ortho_group

    from lowdisp.spectral._cli import compute

    W = ortho_group.rvs(64, random_state=3).astype(np.float32)
    text = compute(W, measures=("basic", "kreiss")).text
    assert "inf ≤" not in text and "= inf" not in text
    assert "float32 ulp" in text and "ρ(A) = 1 " in text


def test_issue9_criss_cross_at_tiny_and_huge_scales():
    # the Schur-factor climbs work on A / 2^k like the rest of the dense routines
    A = np.array([[0.5, 3.0, 0.0], [0.0, -0.4, 2.0], [0.0, 0.0, 0.1]])
    ref_r = pseudospectral_radius(A, 0.05).value
    ref_a = pseudospectral_abscissa(A, 0.05).value
    for s in (1e-250, 1e250):
        assert abs(pseudospectral_radius(s * A, 0.05 * s).value / s - ref_r) <= 1e-12 * ref_r
        assert abs(pseudospectral_abscissa(s * A, 0.05 * s).value / s - ref_a) <= 1e-12 * ref_a
