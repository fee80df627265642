"""pseudospectra: σ_min on a grid against dense svdvals, grids, methods, scale, warnings,
the shared Schur form and the threaded row tiles."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.sparse.linalg import aslinearoperator

from lowdisp.exceptions import ConvergenceWarning, UnderflowWarning
from lowdisp.spectral import (
    Pseudospectra,
    pseudospectra,
)
from lowdisp.spectral._common import complex_schur
from tests import oracles

EPS = np.finfo(float).eps


def _sample_errors(A, ps, rng, k=50):
    j = rng.integers(0, ps.im.size, k)
    i = rng.integers(0, ps.re.size, k)
    ref = np.array([oracles.sigma_min_svd(A, ps.re[a] + 1j * ps.im[b]) for a, b in zip(i, j)])
    return ps.sigma_min[j, i], ref


def _cases(rng):
    return {
        "grcar": oracles.grcar(80),
        "random_triangular": oracles.random_triangular(rng, 60),
        "jordan": oracles.jordan_block(40, 0.5),
    }


@pytest.mark.parametrize("case", ["grcar", "random_triangular", "jordan"])
def test_pseudospectra_matches_svdvals(rng, case):
    A = _cases(rng)[case]
    n = A.shape[0]
    nrm = oracles.spectral_norm_dense(A)
    # backward-stable floor shared by the SVD reference and the Schur-based method
    floor = 10 * n * EPS * nrm
    for tol, rtol in ((1e-6, 1e-6), (1e-12, 1e-10)):
        ps = pseudospectra(A, npts=24, method="lanczos", tol=tol, rng=rng)
        got, ref = _sample_errors(A, ps, rng)
        assert np.all(np.abs(got - ref) <= rtol * ref + floor), (case, tol)


def test_pseudospectra_warm_start_option(rng):
    A = oracles.grcar(60)
    n = A.shape[0]
    ps = pseudospectra(A, npts=20, method="lanczos", warm_start=True, rng=rng)
    got, ref = _sample_errors(A, ps, rng)
    floor = 10 * n * EPS * oracles.spectral_norm_dense(A)
    assert np.all(np.abs(got - ref) <= 1e-6 * ref + floor)


def test_pseudospectra_normal_matrix_is_distance_to_spectrum(rng):
    n = 40
    Q, _ = np.linalg.qr(oracles.random_matrix(rng, n, n, np.complex128))
    lam = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    A = (Q * lam) @ Q.conj().T
    for tol, rtol in ((1e-6, 1e-6), (1e-12, 1e-10)):
        ps = pseudospectra(A, npts=20, tol=tol, rng=rng)
        X, Y = np.meshgrid(ps.re, ps.im)
        ref = np.vectorize(lambda z: oracles.dist_to_spectrum(lam, z))(X + 1j * Y)
        assert np.all(np.abs(ps.sigma_min - ref) <= rtol * ref + 100 * EPS)


def test_pseudospectra_nested_in_eps(rng):
    A = oracles.grcar(40)
    ps = pseudospectra(A, npts=30, rng=rng)
    levels = np.logspace(-10, 0, 11)
    masks = [ps.sigma_min <= e for e in levels]
    for small, big in itertools.pairwise(masks):
        assert np.all(big[small])
    assert masks[-1].sum() > masks[0].sum()
    z = ps.re[3] + 1j * ps.im[7]
    inside = [ps.contains(z, e) for e in levels]
    assert inside == sorted(inside)  # False ... False True ... True


def test_pseudospectra_real_mirroring_and_methods_agree(rng):
    A = rng.standard_normal((30, 30))
    re = np.linspace(-3, 3, 13)
    im = np.linspace(-2, 2, 9)
    real = pseudospectra(A, re=re, im=im, tol=1e-12, rng=rng)
    cplx = pseudospectra(A.astype(np.complex128), re=re, im=im, tol=1e-12, rng=rng)
    svd = pseudospectra(A, re=re, im=im, method="svd")
    np.testing.assert_allclose(real.sigma_min, real.sigma_min[::-1], rtol=1e-12)
    np.testing.assert_allclose(real.sigma_min, cplx.sigma_min, rtol=1e-9)
    np.testing.assert_allclose(real.sigma_min, svd.sigma_min, rtol=1e-9, atol=1e-13)


def test_pseudospectra_auto_grid_and_operator_input(rng):
    A = oracles.random_triangular(rng, 20) + np.diag(np.arange(20.0))
    ps = pseudospectra(A, npts=16, rng=0)
    assert isinstance(ps, Pseudospectra)
    assert ps.sigma_min.shape == (16, 16)
    ev = ps.eigenvalues
    assert ps.re[0] < ev.real.min() and ev.real.max() < ps.re[-1]
    assert ps.im[0] < ev.imag.min() and ev.imag.max() < ps.im[-1]
    np.testing.assert_allclose(np.sort(ev.real), np.sort(np.diag(A)), atol=1e-8)
    op = pseudospectra(aslinearoperator(A), npts=16, rng=0)
    np.testing.assert_allclose(op.sigma_min, ps.sigma_min, rtol=1e-12)
    ps2 = pseudospectra(A, npts=5, box=(-1, 1, -2, 2), rng=0)
    assert ps2.re[0] == -1 and ps2.im[-1] == 2
    # interpolation is exact on grid points
    assert ps2.sigma_at(ps2.re[2] + 1j * ps2.im[1]) == pytest.approx(ps2.sigma_min[1, 2])


def test_pseudospectra_underflow_is_reported_with_the_clamp():
    # sigma_min(zI - J) ~ |z|^n: far below 1e-150 near 0 for a 300 x 300 Jordan block
    J = oracles.jordan_block(300)
    with pytest.warns(UnderflowWarning, match=r"clamp 1e-150"):
        ps = pseudospectra(J, re=np.array([0.01, 0.5, 2.0]), im=np.array([0.0, 0.3]), rng=0)
    assert ps.sigma_min[0, 0] == 1e-150
    assert ps.sigma_min[0, 2] == pytest.approx(oracles.sigma_min_svd(J, 2.0), rel=1e-6)
    assert np.isfinite(ps.sigma_min).all() and (ps.sigma_min > 0).all()


def test_pseudospectra_convergence_warning():
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        pseudospectra(oracles.grcar(30), npts=4, method="lanczos", maxiter=1, rng=0)


def test_pseudospectra_bad_input():
    with pytest.raises(ValueError, match="pseudospectra: A must be a square matrix"):
        pseudospectra(np.ones((3, 4)))
    with pytest.raises(ValueError, match="pseudospectra: A must be finite"):
        pseudospectra(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="pseudospectra: A must not be empty"):
        pseudospectra(np.zeros((0, 0)))
    with pytest.raises(ValueError, match="re must hold at least one grid value; got size 0"):
        pseudospectra(np.eye(3), re=[], im=[0.0])
    with pytest.raises(ValueError, match="im must be strictly increasing"):
        pseudospectra(np.eye(3), re=[0.0, 1.0], im=[1.0, 0.0])
    with pytest.raises(ValueError, match=r"npts must be in \[1, inf\]; got 0"):
        pseudospectra(np.eye(3), npts=0)
    with pytest.raises(ValueError, match="unknown method 'qr'"):
        pseudospectra(np.eye(3), method="qr")
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        pseudospectra(np.eye(3), tol=-1.0)
    with pytest.raises(ValueError, match="box must be"):
        pseudospectra(np.eye(3), box=(1, 0, 0, 1))
    with pytest.raises(ValueError, match="A must be square"):
        pseudospectra(aslinearoperator(np.ones((2, 3))))
    ps = pseudospectra(np.eye(2), npts=4)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        ps.contains(1.0, 0.0)
    with pytest.raises(ValueError, match="inside the grid box"):
        ps.contains(100.0, 0.1)


def test_schur_form_is_shared_and_read_only():
    A = np.random.default_rng(1).standard_normal((30, 30))
    T1, Z1 = complex_schur(A)
    T2, _ = complex_schur(A.copy())
    assert T1 is T2 and not T1.flags.writeable and not Z1.flags.writeable
    with pytest.raises(ValueError):
        T1[0, 0] = 1.0
    B = A.copy()
    B[0, 0] += 1e-300  # any change of the bytes means a new factorization
    B[0, 0] = np.nextafter(A[0, 0], 1.0)
    T3, Z3 = complex_schur(B)
    assert T3 is not T1
    assert np.allclose(Z3 @ T3 @ Z3.conj().T, B, atol=1e-12)


def test_grid_tiles_do_not_depend_on_the_thread_count():
    A = oracles.grcar(40)
    seen = []
    p1 = pseudospectra(A, npts=24, rng=3, workers=1)
    p2 = pseudospectra(A, npts=24, rng=3, workers=3, progress=lambda d, t: seen.append((d, t)))
    assert np.array_equal(p1.sigma_min, p2.sigma_min)
    assert seen and seen[-1][0] == seen[-1][1] == 12 * 24  # real A: half the rows, mirrored
    ref = np.array([[oracles.sigma_min_svd(A, complex(x, y)) for x in p1.re] for y in p1.im])
    assert np.max(np.abs(p1.sigma_min - ref) / ref) < 1e-5


def test_grid_bad_workers_and_progress():
    with pytest.raises(ValueError, match="pseudospectra: workers"):
        pseudospectra(np.eye(20), npts=5, workers=0)
    with pytest.raises(TypeError, match="pseudospectra: progress must be"):
        pseudospectra(np.eye(20), npts=5, progress="yes")


SCALES = [1e-300, 1e-150, 1e150, 1e300]


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


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"box": (1.0, 0.0, -1.0, 1.0)}, "box must be"),
        ({"box": (0.0, 1.0)}, "box must be"),
        ({"re": [1.0, 0.0]}, "re must be strictly increasing"),
        ({"im": []}, "im must hold at least one grid value"),
        ({"re": [0.0, np.nan]}, "re must be finite"),
        ({"npts": 0}, r"npts must be in \[1, inf\]"),
        ({"npts": 2.5}, "npts must be an integer"),
        ({"method": "qr"}, "unknown method 'qr'"),
        ({"tol": 2.0}, r"tol must be in \(0, 1\)"),
        ({"workers": 0}, "workers must be in"),
        ({"warm_start": "no"}, "warm_start must be True or False"),
        ({"progress": "yes"}, "progress must be True, False or a callable"),
    ],
)
def test_bad_options_fail_before_the_schur_form(monkeypatch, option, match):
    # issue 11B: every option is checked before the O(n^3) Schur form; reaching it
    # with a bad option would cost seconds at n = 2000 (and fail later, or not at all)
    import lowdisp.spectral._pseudo as pseudo

    def no_schur(*args, **kwargs):
        raise AssertionError("the Schur form was reached with a bad option")

    monkeypatch.setattr(pseudo, "complex_schur", no_schur)
    A = np.zeros((2000, 2000))  # large: a Schur form would be slow; it is never formed
    with pytest.raises((ValueError, TypeError), match=f"^pseudospectra: .*{match}"):
        pseudospectra(A, **option)
    with pytest.raises(AssertionError, match="Schur form was reached"):
        pseudospectra(np.eye(3), npts=4)  # the patch is live: good options do reach it
