"""The input contract (docs/input_contract.md), table-driven over every public keyword.

Each row of ``ROWS`` is one argument of one public entry point: a callable that
calls the function with that argument set to a given value (every other
argument valid), the argument's *type class* and a valid value. For each bad
value of the class (``BAD``), the call must raise ``TypeError`` or
``ValueError`` whose message starts with the caller's name and names the
argument; the valid value must be accepted.

To cover another module, add rows (``Arg(...)``) to a ``_<module>_rows()``
function and to ``ROWS``; new type classes go into ``BAD``. Nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import lowdisp as ld

NAN, INF = float("nan"), float("inf")


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


#: bad values per type class (None is added unless the argument accepts it)
BAD: dict[str, list[Any]] = {
    # a real (or complex) scalar option
    "real": [NAN, INF, -INF, "1.0", [1.0], True, _Opaque()],
    # a real option >= 0 (tolerances)
    "nonneg": [NAN, INF, -1.0, "1e-3", [1e-3], True, _Opaque()],
    # an integer option (bools and floats are refused)
    "int": [1.5, NAN, "3", True, [3], -1, _Opaque()],
    # a name looked up in a registry
    "option": ["nope", 1, ["sylvester"], True, _Opaque()],
    # True/False only (a truthy string such as "no" is refused)
    "flag": ["no", "yes", 0, 1, 1.0, _Opaque()],
    # anything np.random.default_rng accepts
    "rng": ["seed", 1.5, True, [0.5], _Opaque()],
    # a supported dtype
    "dtype": ["foo", np.int64, "U3", np.float16, _Opaque()],
    # an array-like of numbers (masked arrays are refused)
    "array": [
        "abc",
        _Opaque(),
        [["a", "b"]],
        np.ma.masked_array([1.0, NAN], mask=[False, True]),
    ],
    # a finite array-like (NaN refused)
    "finite_array": ["abc", _Opaque(), np.ma.masked_array([1.0, NAN], mask=[False, True])],
    # a displacement operator
    "operator": ["Z", 1, [1.0, 2.0], _Opaque()],
    # an LDRMatrix
    "ldr": [np.eye(3), "M", 1.0, _Opaque()],
}


@dataclass(frozen=True)
class Arg:
    """One argument of one public entry point."""

    func: str  # the caller's name as messages spell it ("compress", "Shift", "LDRMatrix.vjp")
    arg: str  # the argument's name as messages spell it
    call: Callable[[Any], Any]  # calls func with the argument set to the value
    kind: str  # key of BAD
    good: Any  # a valid value (must be accepted)
    none_ok: bool = False  # None means "the default"
    extra: tuple[Any, ...] = field(default=())  # more bad values for this argument
    aliases: tuple[str, ...] = ()  # documented delegates whose name may lead a message

    def bad_values(self) -> list[Any]:
        vals = list(BAD[self.kind]) + list(self.extra)
        if not self.none_ok:
            vals.append(None)
        return vals

    @property
    def id(self) -> str:
        return f"{self.func}-{self.arg}"


# --------------------------------------------------------------------------
# lowdisp.structured
# --------------------------------------------------------------------------


def _structured_rows() -> Iterator[Arg]:
    n = 4
    G, H = np.ones((n, 1)), np.arange(1.0, n + 1)[:, None]
    T = ld.toeplitz([4.0, 1.0, 0.5, 0.2])
    Td = T.toarray()
    Z1, Zm1 = ld.Shift(n, 1.0), ld.Shift(n, -1.0)
    s, t = np.arange(n, dtype=float), np.arange(n) + 0.5
    one = np.ones(n - 1)
    Tri = ld.Tridiagonal(one, np.zeros(n), np.zeros(n - 1), 0.3)

    def kw(fn: Callable[..., Any], name: str, *args: Any, **fixed: Any) -> Callable[[Any], Any]:
        return lambda v: fn(*args, **{**fixed, name: v})

    # constructors
    for fname in ("toeplitz_like", "hankel_like"):
        fn = getattr(ld, fname)
        yield Arg(fname, "kind", kw(fn, "kind", G, H), "option", "stein")
        yield Arg(fname, "e", kw(fn, "e", G, H), "real", 2.0, none_ok=True)
        yield Arg(fname, "f", kw(fn, "f", G, H), "real", 0.5, none_ok=True)
        yield Arg(fname, "G", lambda v, fn=fn: fn(v, H), "finite_array", G, extra=(G * NAN,))
        yield Arg(fname, "H", lambda v, fn=fn: fn(G, v), "finite_array", H)
    yield Arg("vandermonde_like", "nodes", lambda v: ld.vandermonde_like(v, G, H), "array", s)
    yield Arg("vandermonde_like", "G", lambda v: ld.vandermonde_like(s, v, H), "array", G)
    yield Arg("vandermonde_like", "H", lambda v: ld.vandermonde_like(s, G, v), "array", H)
    yield Arg("cauchy_like", "s", lambda v: ld.cauchy_like(v, t, G, H), "array", s)
    yield Arg("cauchy_like", "t", lambda v: ld.cauchy_like(s, v, G, H), "array", t)
    yield Arg("cauchy_like", "G", lambda v: ld.cauchy_like(s, t, v, H), "array", G)
    yield Arg("cauchy_like", "H", lambda v: ld.cauchy_like(s, t, G, v), "array", H)
    sd = ld.ldr_subdiagonal
    yield Arg("ldr_subdiagonal", "a", lambda v: sd(v, one, G, H), "array", one, extra=(one[:2],))
    yield Arg("ldr_subdiagonal", "b", lambda v: sd(one, v, G, H), "array", one, extra=(one[:2],))
    yield Arg("ldr_subdiagonal", "G", lambda v: sd(one, one, v, H), "array", G)
    yield Arg("ldr_subdiagonal", "fa", kw(sd, "fa", one, one, G, H), "real", 0.5)
    yield Arg("ldr_subdiagonal", "fb", kw(sd, "fb", one, one, G, H), "real", -0.5)
    td = ld.ldr_tridiagonal
    bad_tri = ((one, np.zeros(n)), (one, np.zeros(n), [NAN, 1.0, 1.0]))
    yield Arg("ldr_tridiagonal", "A", lambda v: td(v, Tri, G, H), "operator", Tri, extra=bad_tri)
    yield Arg("ldr_tridiagonal", "B", lambda v: td(Tri, v, G, H), "operator", Tri, extra=bad_tri)
    yield Arg("ldr_tridiagonal", "G", lambda v: td(Tri, Tri, v, H), "array", G)
    for fname in ("toeplitz", "hankel"):
        fn = getattr(ld, fname)
        yield Arg(fname, "c", lambda v, fn=fn: fn(v), "array", s + 1)
        yield Arg(fname, "r", lambda v, fn=fn: fn(s + 1, v), "array", t, none_ok=True)
    yield Arg("circulant", "c", ld.circulant, "array", s)
    yield Arg("skew_circulant", "c", ld.skew_circulant, "array", s)
    yield Arg("vandermonde", "x", ld.vandermonde, "array", s)
    yield Arg("vandermonde", "n", kw(ld.vandermonde, "n", s), "int", 3, none_ok=True, extra=(0,))
    yield Arg("cauchy", "s", lambda v: ld.cauchy(v, t), "array", s)
    yield Arg("cauchy", "t", lambda v: ld.cauchy(s, v), "array", t)
    rl = ld.random_ldr
    yield Arg("random_ldr", "kind", lambda v: rl(v, n, 1), "option", "toeplitz")
    yield Arg("random_ldr", "n", lambda v: rl("toeplitz", v, 1), "int", 3, extra=(0,))
    yield Arg("random_ldr", "rank", lambda v: rl("toeplitz_like", n, v), "int", 2, extra=(5,))
    yield Arg("random_ldr", "rng", kw(rl, "rng", "toeplitz", n, 1), "rng", 3, none_ok=True)
    yield Arg("random_ldr", "dtype", kw(rl, "dtype", "toeplitz", n, 1), "dtype", np.float32)
    # algebra
    cp = ld.compress
    yield Arg("compress", "M", lambda v: cp(v, Z1, Zm1), "finite_array", Td)
    yield Arg("compress", "A", lambda v: cp(Td, v, Zm1), "operator", Z1)
    yield Arg("compress", "B", lambda v: cp(Td, Z1, v), "operator", Zm1)
    yield Arg("compress", "rank", kw(cp, "rank", Td, Z1, Zm1), "int", 2, none_ok=True, extra=(0, 5))
    yield Arg("compress", "rtol", kw(cp, "rtol", Td, Z1, Zm1), "nonneg", 1e-8)
    yield Arg("compress", "kind", kw(cp, "kind", Td, Z1, Zm1), "option", "sylvester")
    dr = ld.displacement_rank
    yield Arg("displacement_rank", "M", lambda v: dr(v, Z1, Zm1), "finite_array", Td)
    yield Arg("displacement_rank", "A", lambda v: dr(Td, v, Zm1), "operator", Z1)
    yield Arg("displacement_rank", "kind", kw(dr, "kind", Td, Z1, Zm1), "option", "stein")
    yield Arg("displacement_rank", "rtol", kw(dr, "rtol", Td, Z1, Zm1), "nonneg", 1e-8, True)
    yield Arg("displacement", "M", lambda v: ld.displacement(v, Z1, Zm1), "finite_array", Td)
    yield Arg("displacement", "B", lambda v: ld.displacement(Td, Z1, v), "operator", Zm1)
    yield Arg("displacement", "kind", kw(ld.displacement, "kind", Td, Z1, Zm1), "option", "stein")
    yield Arg("recompress", "M", ld.recompress, "ldr", T)
    yield Arg("recompress", "rtol", kw(ld.recompress, "rtol", T), "nonneg", 1e-8)
    yield Arg("inv", "M", ld.inv, "ldr", T)
    yield Arg("solve", "M", lambda v: ld.solve(v, np.ones(n)), "ldr", T)
    yield Arg("solve", "b", lambda v: ld.solve(T, v), "finite_array", np.ones(n))
    yield Arg("product", "M1", lambda v: ld.product(v, T), "ldr", T)
    yield Arg("product", "M2", lambda v: ld.product(T, v), "ldr", T)
    yield Arg("add", "M1", lambda v: ld.add(v, T), "ldr", T)
    yield Arg("scale", "M", lambda v: ld.scale(v, 2.0), "ldr", T)
    yield Arg("scale", "alpha", lambda v: ld.scale(T, v), "real", 2.0)
    # the class and its methods
    L = ld.LDRMatrix
    yield Arg("LDRMatrix", "A", lambda v: L(v, Zm1, G, H), "operator", Z1)
    yield Arg("LDRMatrix", "B", lambda v: L(Z1, v, G, H), "operator", Zm1)
    yield Arg("LDRMatrix", "G", lambda v: L(Z1, Zm1, v, H), "finite_array", G)
    yield Arg("LDRMatrix", "H", lambda v: L(Z1, Zm1, G, v), "finite_array", H)
    yield Arg("LDRMatrix", "kind", lambda v: L(Z1, Zm1, G, H, kind=v), "option", "sylvester")
    yield Arg("LDRMatrix.vjp", "X", lambda v: T.vjp(v, np.ones(n)), "finite_array", np.ones(n))
    yield Arg("LDRMatrix.vjp", "dY", lambda v: T.vjp(np.ones(n), v), "finite_array", np.ones(n))
    for meth in ("matvec", "rmatvec", "matmat", "rmatmat", "dot"):
        good = np.ones((n, 1))
        alias = ("scale",) if meth == "dot" else ()  # M.dot(scalar) is scale(M, scalar)
        yield Arg(f"LDRMatrix.{meth}", "x", getattr(T, meth), "array", good, aliases=alias)
    # the operators
    yield Arg("Shift", "n", lambda v: ld.Shift(v), "int", 3, extra=(0,))
    yield Arg("Shift", "f", lambda v: ld.Shift(3, v), "real", 0.5)
    yield Arg("Diagonal", "d", ld.Diagonal, "finite_array", s, extra=([],))
    yield Arg("Subdiagonal", "s", ld.Subdiagonal, "finite_array", one)
    yield Arg("Subdiagonal", "f", lambda v: ld.Subdiagonal(one, v), "real", 0.5)
    tri = ld.Tridiagonal
    yield Arg("Tridiagonal", "lower", lambda v: tri(v, np.zeros(n), one), "finite_array", one)
    yield Arg("Tridiagonal", "main", lambda v: tri(one, v, one), "finite_array", np.zeros(n))
    yield Arg("Tridiagonal", "f", lambda v: tri(one, np.zeros(n), one, v), "real", 0.1)
    yield Arg("Shift.krylov", "m", lambda v: Z1.krylov(s, v), "int", 2, none_ok=True)
    yield Arg("Shift.krylov", "v", lambda v: Z1.krylov(v), "finite_array", s)


ROWS: list[Arg] = [*_structured_rows()]


def _cases() -> Iterator[Any]:
    for row in ROWS:
        for i, value in enumerate(row.bad_values()):
            yield pytest.param(row, value, id=f"{row.id}-{i}")


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize(("row", "value"), list(_cases()))
def test_bad_values_raise_a_clear_error_naming_function_and_argument(row, value):
    with pytest.raises((TypeError, ValueError)) as info:
        row.call(value)
    msg = str(info.value)
    pattern = rf"^{re.escape(row.func)}(\.\w+)?: .*\b{re.escape(row.arg)}\b"
    assert re.search(pattern, msg, flags=re.S), f"{row.id} = {value!r}: {msg!r}"


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_the_valid_value_is_accepted(row):
    row.call(row.good)


def test_truthy_strings_are_not_flags():
    from lowdisp._validation import check_bool

    for v in BAD["flag"] + [None]:
        with pytest.raises(TypeError, match=r"^f: x must be True or False"):
            check_bool(v, "x", where="f")


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_ndarray_subclasses_are_read_as_plain_arrays():
    G0 = np.random.default_rng(0).standard_normal((6, 2))
    H0 = np.random.default_rng(1).standard_normal((6, 2))
    M = ld.toeplitz_like(np.matrix(G0), np.matrix(H0))  # used to fail
    ref = ld.toeplitz_like(G0, H0)
    np.testing.assert_allclose(M.toarray(), ref.toarray())
    for out in (M @ np.matrix(np.ones((6, 1))), ld.solve(ref, np.matrix(np.ones((6, 1))))):
        assert type(out) is np.ndarray and out.shape == (6, 1)
    C = ld.compress(np.matrix(ref.toarray()), ref.A, ref.B)
    assert C.rank == 2
    memmap_like = np.ones((6, 2)).view(np.recarray)  # another subclass
    assert type(ld.toeplitz_like(memmap_like, memmap_like).generators.G) is np.ndarray


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_docs_input_contract_snippet_runs():
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "input_contract.md"
    blocks = re.findall(r"<!-- test: run -->\s*```python\n(.*?)```", page.read_text(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "__docs__"})


# --------------------------------------------------------------------------
# fuzzing: any value for any argument gives a result or a clear, named error
# --------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.floats(-2, 2), max_size=5),
    st.lists(st.lists(st.floats(-2, 2), min_size=1, max_size=2), min_size=1, max_size=5),
)

#: the only exception types a public function may raise on any input
ALLOWED = (TypeError, ValueError, np.linalg.LinAlgError, OverflowError)


@settings(
    max_examples=10 * settings.default.max_examples,  # scaled by the profile
    suppress_health_check=[HealthCheck.too_slow],
)
@given(i=st.integers(0, len(ROWS) - 1), value=any_value)
def test_any_value_gives_a_result_or_a_named_error(i, value):
    row = ROWS[i]
    try:
        row.call(value)
    except ALLOWED as exc:
        msg = str(exc)
        names = "|".join(re.escape(f) for f in (row.func.split(".")[0], *row.aliases))
        assert re.match(rf"^({names})[\w.]*( @)?: ", msg), (
            f"{row.id} = {value!r}: {type(exc).__name__}: {msg!r}"
        )
