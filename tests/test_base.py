"""Base modules: validation helpers, dtype policy, exceptions, lazy top-level names."""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp
from lowdisp import _config, _validation, exceptions


def test_as_array_promotes_and_checks():
    a = _validation.as_array([1, 2, 3], "x", where="f")
    assert a.dtype == np.float64
    assert _validation.as_array(np.ones(2, np.float32), "x").dtype == np.float32
    assert _validation.as_array(np.ones(2, np.complex128), "x").dtype == np.complex128
    with pytest.raises(ValueError, match=r"f: x must be finite; got 1 NaN/Inf"):
        _validation.as_array([1.0, np.nan], "x", where="f")
    with pytest.raises(ValueError, match=r"x must have 2 dimension\(s\); got shape \(3,\)"):
        _validation.as_array([1.0, 2.0, 3.0], "x", ndim=2)
    with pytest.raises(TypeError, match="x must hold real or complex numbers"):
        _validation.as_array(["a"], "x")
    with pytest.raises(TypeError, match="x must be real"):
        _validation.as_array([1j], "x", allow_complex=False)


def test_shape_square_int_positive_option():
    with pytest.raises(ValueError, match=r"G must have shape \(4, \*\); got \(3, 2\)"):
        _validation.check_shape(np.zeros((3, 2)), "G", (4, None))
    with pytest.raises(ValueError, match="must be a square matrix"):
        _validation.check_square(np.zeros((2, 3)), "A")
    assert _validation.check_square(np.zeros((3, 3)), "A") == 3
    with pytest.raises(ValueError, match=r"rank must be in \[1, 4\]; got 5"):
        _validation.check_int(5, "rank", low=1, high=4)
    with pytest.raises(TypeError, match="must be an integer"):
        _validation.check_int(2.5, "rank")
    with pytest.raises(TypeError, match="must be an integer"):
        _validation.check_int(True, "rank")
    with pytest.raises(ValueError, match="must be finite and > 0"):
        _validation.check_positive(0.0, "eps")
    assert _validation.check_positive(0.0, "eps", strict=False) == 0.0
    with pytest.raises(ValueError, match=r"unknown method 'x'; valid: 'a', 'b'"):
        _validation.lookup({"a": 1, "b": 2}, "x", "method")
    assert _validation.lookup({"a": 1}, "a", "method") == 1


def test_rng_normalisation():
    g = np.random.default_rng(1)
    assert _validation.as_rng(g) is g
    assert _validation.as_rng(3).integers(100) == np.random.default_rng(3).integers(100)
    with pytest.raises(TypeError, match="rng must be"):
        _validation.as_rng("seed")


def test_dtype_policy():
    assert _config.result_dtype(np.int64) == np.float64
    assert _config.result_dtype(np.float16) == np.float32
    assert _config.result_dtype(np.float32, np.float64) == np.float64
    assert _config.result_dtype(np.float32, np.complex64) == np.complex64
    assert _config.real_dtype(np.complex128) == np.float64
    assert _config.default_tolerance(np.float32) == 1e-4
    with pytest.raises(TypeError, match="unsupported dtype"):
        _config.result_dtype(np.dtype("U3"))


def test_blas_threads_context_runs():
    with _config.blas_threads(1):
        x = np.ones((4, 4)) @ np.ones((4, 4))
    np.testing.assert_array_equal(x, 4 * np.ones((4, 4)))


def test_exception_hierarchy():
    assert issubclass(exceptions.RankError, ValueError)
    assert issubclass(exceptions.NotOnManifoldError, ValueError)
    assert issubclass(exceptions.SingularOperatorError, np.linalg.LinAlgError)
    assert issubclass(exceptions.ConvergenceWarning, UserWarning)


def test_top_level_lazy_attributes():
    assert lowdisp.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = lowdisp.no_such_name
    assert "structured" in dir(lowdisp)


def test_blas_threads_limits_scipy_blas_too():
    import scipy.linalg  # noqa: F401  (scipy ships its own OpenBLAS)
    from threadpoolctl import threadpool_info, threadpool_limits

    # the session fixture pins one thread: raise it first so the check means something
    with threadpool_limits(limits=2, user_api="blas"), _config.blas_threads(1):
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        assert pools
        assert all(p["num_threads"] == 1 for p in pools), pools


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_as_array_converts_subclasses_and_refuses_masked():
    m = np.matrix(np.ones((3, 2)))
    a = _validation.as_array(m, "G", where="f")
    assert type(a) is np.ndarray and a.shape == (3, 2)
    assert type(_validation.as_plain_ndarray(m, "G")) is np.ndarray
    assert _validation.as_plain_ndarray([1, 2], "x") == [1, 2]
    x = np.ma.masked_array([1.0, np.nan], mask=[False, True])
    with pytest.raises(ValueError, match=r"f: G is a masked array.*np\.ma\.filled\(G"):
        _validation.as_array(x, "G", where="f")


@pytest.mark.parametrize("bad", ["no", "yes", 0, 1, None, 1.0, [True]])
def test_check_bool_refuses_non_bools(bad):
    with pytest.raises(TypeError, match=r"f: flag must be True or False; got"):
        _validation.check_bool(bad, "flag", where="f")


def test_check_bool_accepts_bools():
    assert _validation.check_bool(True, "flag") is True
    assert _validation.check_bool(np.False_, "flag") is False


def test_check_real():
    assert _validation.check_real(2, "x") == 2.0
    assert _validation.check_real(np.float32(0.5), "x", low=0, high=1) == 0.5
    assert _validation.check_real(np.array(3.0), "x") == 3.0
    for bad in (True, "1", [1.0], None, 1j):
        with pytest.raises(TypeError, match=r"f: x must be a real number"):
            _validation.check_real(bad, "x", where="f")
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match=r"f: x must be finite"):
            _validation.check_real(bad, "x", where="f")
    assert _validation.check_real(np.inf, "x", finite=False) == np.inf
    with pytest.raises(ValueError, match=r"f: x must be finite"):
        _validation.check_real(np.nan, "x", where="f", finite=False)
    with pytest.raises(ValueError, match=r"x must be in \(0, inf\); got 0"):
        _validation.check_real(0, "x", low=0, low_open=True)
    with pytest.raises(ValueError, match=r"x must be in \[-1, 1\]; got 2"):
        _validation.check_real(2, "x", low=-1, high=1)
    assert _validation.check_real(1 + 2j, "x", allow_complex=True) == 1 + 2j
    assert _validation.check_real(3 + 0j, "x", allow_complex=True) == 3.0
    with pytest.raises(ValueError, match="must be finite"):
        _validation.check_real(complex(np.nan, 0), "x", allow_complex=True)


def test_as_rng_names_the_caller():
    with pytest.raises(TypeError, match=r"^f: rng must be"):
        _validation.as_rng("seed", where="f")
    for bad in (True, 1.5, -1, [0.5]):
        with pytest.raises(TypeError, match="rng must be"):
            _validation.as_rng(bad)
    assert _validation.as_rng(None) is not None
    assert isinstance(_validation.as_rng(np.random.PCG64(1)), np.random.Generator)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_power_of_two_helpers_are_exact(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        X = X + 1j * rng.standard_normal((4, 3)).astype(dtype)
    e = int(_validation.pow2_exponent(float(_validation.max_abs(X))))
    Y = _validation.ldexp(X, -e)
    assert Y.dtype == X.dtype
    assert 0.5 <= float(_validation.max_abs(Y)) < 1
    np.testing.assert_array_equal(_validation.ldexp(Y, e), X)
    cmax, ce = _validation.column_exponents(X)
    assert cmax.shape == ce.shape == (3,)
    assert _validation.max_abs(np.zeros((0, 3)), axis=0).shape == (3,)
    assert float(_validation.max_abs(np.zeros(0))) == 0.0
    assert _validation.safe_exponent(dtype) in (20, 200)


def test_prod_pow2_never_overflows():
    m, e = _validation.prod_pow2(np.full(1200, 2.0))  # np.prod gives inf
    assert (m, e) == (0.5, 1201)
    m, e = _validation.prod_pow2(np.full(3000, 0.3))  # np.prod gives 0
    assert 0.5 <= m < 1 and abs(np.log2(m) + e - 3000 * np.log2(0.3)) < 1e-9
    assert _validation.prod_pow2([0.5j, 4.0]) == (0.5j, 2)
    assert _validation.prod_pow2([-0.5, 4.0, -3.0]) == (0.75, 3)
    assert _validation.prod_pow2(np.array([-2.0], np.float32)) == (-0.5, 2)
    assert _validation.prod_pow2([]) == (1.0, 0)
    assert _validation.prod_pow2([3.0, 0.0]) == (0.0, 0)
