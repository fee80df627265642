"""The input contract of lowdisp.spectral (issue 10, classes 2, 3, 4 and 6).

- every public keyword refuses wrong types, NaN, infinities, negative/zero
  values and truthy strings for flags with a TypeError/ValueError that names
  the function and the argument (a table over every keyword);
- a 0 x 0 matrix gives a clear ValueError everywhere;
- ``np.matrix`` is converted, masked arrays are refused (shared conversion);
- float32 in: arrays out keep single precision (scalars are Python floats;
  ``Pseudospectra.sigma_min`` stays float64, see docs/spectral.md);
- ``pseudospectra`` checks its grid options before the O(n³) Schur form.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest

import lowdisp as ld
import lowdisp.spectral._pseudo as pseudo_mod
from lowdisp.spectral import (
    departure_from_normality,
    pseudospectra,
)

A = np.array([[1.0, 2.0], [0.0, 0.5]])
PS = ld.pseudospectra(A, npts=4)

#: (public name, call with one keyword, {keyword: [bad values]})
NAN, INF = float("nan"), float("inf")
POS_REAL = ["x", None, NAN, INF, -INF, -1.0, 0.0, True, [1.0]]
POS_INT = ["x", None, NAN, 1.5, -1, 0, True, [1]]
FLAG = ["no", "yes", 1, 0, None, 1.0]
RNG = ["x", NAN, 1.5, True, -1, INF]
METHOD = ["x", None, 1, True, ["auto"]]

CASES = [
    (
        "spectral_norm",
        lambda **k: ld.spectral_norm(A, **k),
        {
            "method": METHOD,
            "tol": [*POS_REAL, 1.5],
            "maxiter": POS_INT[:1] + POS_INT[2:],
            "rng": RNG,
            "v0": ["x", [NAN, 1.0], [1.0]],
        },
    ),
    (
        "spectral_normalize",
        lambda **k: ld.spectral_normalize(A, **k),
        {"target": POS_REAL, "clip": FLAG, "method": METHOD, "tol": [*POS_REAL, 1.5], "rng": RNG},
    ),
    (
        "pseudospectra",
        lambda **k: ld.pseudospectra(A, **k),
        {
            "re": ["x", [NAN], [], [1.0, 0.0], [[1.0]]],
            "im": ["x", [INF], [], [2.0, 2.0]],
            "npts": POS_INT,
            "box": ["x", (0, 1, 0), (1, 0, 0, 1), (0, NAN, 0, 1)],
            "method": METHOD,
            "tol": [*POS_REAL, 1.5],
            "maxiter": POS_INT[:1] + POS_INT[2:],
            "warm_start": FLAG,
            "rng": RNG,
            "workers": POS_INT[:1] + POS_INT[2:],
            "progress": ["no", 1, None],
        },
    ),
    (
        "pseudospectral_abscissa",
        lambda **k: ld.pseudospectral_abscissa(A, **({"eps": 0.1} | k)),
        {"eps": POS_REAL, "maxiter": POS_INT, "rng": RNG},
    ),
    (
        "pseudospectral_radius",
        lambda **k: ld.pseudospectral_radius(A, **({"eps": 0.1} | k)),
        {"eps": POS_REAL, "maxiter": POS_INT, "rng": RNG},
    ),
    ("numerical_range", lambda **k: ld.numerical_range(A, **k), {"npts": [*POS_INT, 2]}),
    (
        "numerical_radius",
        lambda **k: ld.numerical_radius(A, **k),
        {"npts": [*POS_INT, 7], "rng": RNG},
    ),
    (
        "departure_from_normality",
        lambda **k: ld.departure_from_normality(A, **k),
        {"relative": FLAG},
    ),
    (
        "kreiss_constant",
        lambda **k: ld.kreiss_constant(A, **k),
        {"kind": ["x", None, 1, ["discrete"]], "rng": RNG},
    ),
    (
        "transient_growth",
        lambda **k: ld.transient_growth(A, **({"steps": 3} | k)),
        {"steps": ["x", None, NAN, 1.5, -1, True], "rng": RNG},
    ),
    (
        "plot_pseudospectra",
        lambda **k: ld.plot_pseudospectra(PS, **k),
        {
            "eps": ["x", NAN, -1.0, 0.0, [0.1, "x"], [], True, [[NAN]]],
            "npts": [*POS_INT, 1],
            "colorbar": FLAG,
            "cmap": [1, None, "not-a-colormap"],
        },
    ),
    (
        "plot_numerical_range",
        lambda **k: ld.plot_numerical_range(A, **k),
        {"npts": POS_INT, "eigenvalues": FLAG},
    ),
    (
        "plot_transient",
        lambda **k: ld.plot_transient(A, **({"steps": 3} | k)),
        {"steps": ["x", NAN, 1.5, -1, True], "rng": RNG},
    ),
    (
        "Pseudospectra.contains",
        lambda **k: PS.contains(**({"z": 0.5, "eps": 0.1} | k)),
        {"z": ["x", None, NAN, 100.0, True], "eps": POS_REAL},
    ),
    ("Pseudospectra.sigma_at", lambda **k: PS.sigma_at(**k), {"z": ["x", None, INF, -100.0]}),
    ("Pseudospectra.plot", lambda **k: PS.plot(**k), {"eps": ["x", -1.0, [0.1, NAN]]}),
]

PARAMS = [
    pytest.param(name, fn, kw, v, id=f"{name}-{kw}-{v!r}")
    for name, fn, table in CASES
    for kw, values in table.items()
    for v in values
]


@pytest.mark.parametrize(("name", "fn", "kw", "value"), PARAMS)
def test_every_keyword_is_checked(name, fn, kw, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((TypeError, ValueError)) as info:
            fn(**{kw: value})
    plt.close("all")
    msg = str(info.value)
    short = name.split(".")[-1]
    assert short in msg or name in msg, msg
    assert kw in msg, msg


def test_plot_pseudospectra_eps_string_fails_before_any_work(monkeypatch):
    calls = []
    monkeypatch.setattr(pseudo_mod, "complex_schur", lambda M: calls.append(1))
    with pytest.raises(TypeError, match="plot_pseudospectra: eps"):
        ld.plot_pseudospectra(A, eps="x")
    assert not calls


@pytest.mark.parametrize(
    "kw",
    [{"box": (1, 0, 0, 1)}, {"re": [1.0, 0.0], "im": [0.0]}, {"im": [NAN]}, {"npts": 0}],
)
def test_pseudospectra_checks_the_grid_before_the_schur_form(monkeypatch, kw):
    calls = []
    monkeypatch.setattr(pseudo_mod, "complex_schur", lambda M: calls.append(1))
    with pytest.raises(ValueError, match="pseudospectra: "):
        ld.pseudospectra(A, **kw)
    assert not calls


ALL = [
    ("spectral_norm", ld.spectral_norm),
    ("spectral_normalize", ld.spectral_normalize),
    ("pseudospectra", ld.pseudospectra),
    ("pseudospectral_abscissa", lambda X: ld.pseudospectral_abscissa(X, 0.1)),
    ("pseudospectral_radius", lambda X: ld.pseudospectral_radius(X, 0.1)),
    ("numerical_range", ld.numerical_range),
    ("numerical_abscissa", ld.numerical_abscissa),
    ("numerical_radius", ld.numerical_radius),
    ("departure_from_normality", ld.departure_from_normality),
    ("eigenvalue_condition_numbers", ld.eigenvalue_condition_numbers),
    ("kreiss_constant", ld.kreiss_constant),
    ("transient_growth", lambda X: ld.transient_growth(X, 3)),
    ("plot_pseudospectra", ld.plot_pseudospectra),
    ("plot_numerical_range", ld.plot_numerical_range),
    ("plot_transient", lambda X: ld.plot_transient(X, 3)),
]


@pytest.mark.parametrize(("name", "fn"), ALL, ids=[a for a, _ in ALL])
@pytest.mark.parametrize("shape", [(0, 0), (3, 0), (0, 3)])
def test_empty_matrices_are_a_clear_error(name, fn, shape):
    with pytest.raises(ValueError, match=rf"{name}: .*(empty|square)"):
        fn(np.zeros(shape))
    plt.close("all")


@pytest.mark.parametrize(("name", "fn"), ALL, ids=[a for a, _ in ALL])
def test_np_matrix_is_a_plain_array_and_masked_arrays_are_refused(name, fn):
    M = np.array([[0.5, 2.0], [0.0, 0.25]])
    ref = fn(M)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        mat = np.matrix(M)
    got = fn(mat)
    plt.close("all")
    if isinstance(ref, float):
        assert got == pytest.approx(ref, rel=1e-12)
    elif isinstance(ref, np.ndarray):
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    masked = np.ma.masked_array(M, mask=[[False, True], [False, False]])
    masked.data[0, 1] = np.nan  # a NaN under the mask must not pass silently
    with pytest.raises(ValueError, match=rf"{name}: .*masked array"):
        fn(masked)
    plt.close("all")


def test_float32_keeps_single_precision_for_arrays():
    M = np.array([[0.5, 2.0], [0.0, 0.25]], dtype=np.float32)
    assert ld.numerical_range(M, npts=8).dtype == np.complex64
    ec = ld.eigenvalue_condition_numbers(M)
    assert ec.eigenvalues.dtype == np.complex64
    assert ec.condition_numbers.dtype == np.float32
    tg = ld.transient_growth(M, 4, rng=0)
    assert tg.norms.dtype == np.float32 and tg.lower_bounds.dtype == np.float32
    est = ld.spectral_norm(M)
    assert est.u.dtype == np.float32 and isinstance(est.value, float)
    assert ld.spectral_normalize(M).dtype == np.float32
    assert ld.numerical_range(M.astype(np.complex64), npts=8).dtype == np.complex64
    # scalars are Python floats; the σ_min grid stays float64 (it spans 1e-150..)
    assert isinstance(ld.departure_from_normality(M), float)
    assert ld.pseudospectra(M, npts=3).sigma_min.dtype == np.float64
    # float64 stays float64
    assert ld.numerical_range(M.astype(float), npts=8).dtype == np.complex128


def test_no_nan_for_finite_input_at_extreme_scales():
    B = np.array([[1.2573, -1.3210], [6.4042, 1.0490]])
    for c in (5e-324 * 1e10, 1e-300, 1e300):
        X = c * B
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vals = [
                ld.departure_from_normality(X),
                ld.numerical_abscissa(X),
                ld.numerical_radius(X),
                ld.spectral_norm(X).value,
                ld.kreiss_constant(X).value,
                ld.kreiss_constant(X, kind="continuous").value,
                *ld.numerical_range(X, npts=8),
                *ld.eigenvalue_condition_numbers(X).condition_numbers,
                *ld.transient_growth(X, 3).norms,
                *ld.pseudospectra(X, npts=3).sigma_min.ravel(),
            ]
        assert not np.isnan(np.array(vals, dtype=complex)).any(), c


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
