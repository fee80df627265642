"""Displacement operators: Z_f shifts, diagonals, learnable sub- and tridiagonals.

Each operator is a small frozen object with ``n``, ``dtype``, ``toarray()``,
``matvec(x)`` (``x`` of shape ``(n,)`` or ``(n, k)``), ``rmatvec(x)`` (the
conjugate transpose), ``krylov(v, m)``, ``params`` and ``T`` (the transpose,
a :class:`TransposedOperator`). Applying one costs O(n) per column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._config import result_dtype
from lowdisp._validation import as_array, check_int, check_real

__all__ = [
    "Diagonal",
    "DisplacementOperator",
    "Shift",
    "Subdiagonal",
    "TransposedOperator",
    "Tridiagonal",
]


def _corner_parts(f: Any) -> list[Any]:
    """A Python-scalar corner only decides complexness, never precision."""
    return [np.complex64] if isinstance(f, complex) else []


def _scalar(value: Any, name: str, where: str) -> complex | float:
    """A finite real or complex scalar (bools, strings and sequences are refused)."""
    return check_real(value, name, where=where, allow_complex=True)


class DisplacementOperator:
    """Base class of the displacement operators (an n x n matrix applied in O(n)).

    Subclasses implement ``_apply(X)`` (``A X`` for a 2-D ``X``) and
    ``_apply_adjoint(X)`` (``A^H X``). Instances are immutable.

    Examples
    --------
    >>> import lowdisp as ld
    >>> isinstance(ld.Shift(3), ld.DisplacementOperator)
    True
    """

    n: int
    dtype: np.dtype

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    # -- to be provided -------------------------------------------------
    def _apply(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_adjoint(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def toarray(self) -> np.ndarray:  # pragma: no cover - abstract
        """The dense n x n matrix.

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Diagonal([1.0, 2.0]).toarray()
        array([[1., 0.],
               [0., 2.]])
        """
        raise NotImplementedError

    def conj(self) -> DisplacementOperator:  # pragma: no cover - abstract
        """The entrywise complex conjugate operator.

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Shift(2, 1j).conj().f
        -1j
        """
        raise NotImplementedError

    # -- shared ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(n, n)``.

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Shift(3).shape
        (3, 3)
        """
        return (self.n, self.n)

    @property
    def params(self) -> np.ndarray:
        """The learnable parameter vector (empty for fixed operators).

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Subdiagonal([2.0, 3.0]).params, ld.Shift(3).params.size
        (array([2., 3.]), 0)
        """
        return np.zeros(0, dtype=self.dtype)

    @property
    def T(self) -> DisplacementOperator:
        """The transposed operator (a :class:`TransposedOperator`).

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Shift(2).T.toarray()
        array([[0., 1.],
               [0., 0.]])
        """
        return TransposedOperator(self)

    def _data_dtype(self, dtype: np.dtype) -> np.dtype:
        """Result dtype for data of ``dtype``: learnable parameters decide the precision
        with the data; a fixed operator (Shift, Python-scalar corner) only contributes
        complexness, so float32 data stay float32."""
        if self.params.size:
            return result_dtype(dtype, self.dtype)
        return result_dtype(dtype, *([np.complex64] if self.dtype.kind == "c" else []))

    def _as_block(self, x: Any, name: str) -> tuple[np.ndarray, bool]:
        where = f"{type(self).__name__}.{name}"
        arr = as_array(x, "x", where=where, ndim=(1, 2))
        if arr.shape[0] != self.n:
            raise ValueError(f"{where}: x must have {self.n} rows; got shape {arr.shape}")
        arr = arr.astype(self._data_dtype(arr.dtype), copy=False)
        return (arr[:, None], True) if arr.ndim == 1 else (arr, False)

    def matvec(self, x: Any) -> np.ndarray:
        """``A x`` for ``x`` of shape ``(n,)`` or ``(n, k)``.

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Shift(3).matvec([1.0, 2.0, 3.0])
        array([0., 1., 2.])
        """
        X, vec = self._as_block(x, "matvec")
        Y = self._apply(X)
        return Y[:, 0] if vec else Y

    def rmatvec(self, x: Any) -> np.ndarray:
        """``A^H x`` (conjugate transpose) for ``x`` of shape ``(n,)`` or ``(n, k)``.

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Shift(3).rmatvec([1.0, 2.0, 3.0])
        array([2., 3., 0.])
        """
        X, vec = self._as_block(x, "rmatvec")
        Y = self._apply_adjoint(X)
        return Y[:, 0] if vec else Y

    def matmat(self, X: Any) -> np.ndarray:
        """``A X`` for a block ``X`` of shape ``(n, k)`` (same as :meth:`matvec`).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> ld.Diagonal([1.0, 2.0]).matmat(np.ones((2, 2)))
        array([[1., 1.],
               [2., 2.]])
        """
        return self.matvec(X)

    def rmatmat(self, X: Any) -> np.ndarray:
        """``A^H X`` for a block ``X`` of shape ``(n, k)`` (same as :meth:`rmatvec`).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp as ld
        >>> ld.Diagonal([1j, 2.0]).rmatmat(np.ones((2, 1)))
        array([[0.-1.j],
               [2.+0.j]])
        """
        return self.rmatvec(X)

    def krylov(self, v: Any, m: int | None = None) -> np.ndarray:
        """The Krylov matrix ``[v, A v, ..., A^{m-1} v]`` of shape ``(n, m)``.

        Parameters
        ----------
        v : (n,) array_like
        m : int, optional
            Number of columns (default ``n``).

        Returns
        -------
        (n, m) ndarray

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Subdiagonal([2.0, 3.0]).krylov([1.0, 0.0, 0.0])
        array([[1., 0., 0.],
               [0., 2., 0.],
               [0., 0., 6.]])
        """
        where = f"{type(self).__name__}.krylov"
        m = self.n if m is None else check_int(m, "m", where=where, low=0)
        vec = as_array(v, "v", where=where, ndim=1)
        if vec.shape[0] != self.n:
            raise ValueError(f"{where}: v must have length {self.n}; got {vec.shape[0]}")
        out = np.empty((self.n, m), dtype=self._data_dtype(vec.dtype))
        cur = vec.astype(out.dtype)[:, None]
        for k in range(m):
            out[:, k] = cur[:, 0]
            if k + 1 < m:
                cur = self._apply(cur)
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, type(self))
            and type(other) is type(self)
            and self._key() == other._key()
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.n))

    def _key(self) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError


class TransposedOperator(DisplacementOperator):
    """The transpose ``A^T`` of a displacement operator (``.T`` gives ``A`` back).

    Parameters
    ----------
    base : DisplacementOperator

    Examples
    --------
    >>> import lowdisp as ld
    >>> Z = ld.Shift(3)
    >>> bool((Z.T.toarray() == Z.toarray().T).all()), Z.T.T is Z
    (True, True)
    """

    def __init__(self, base: DisplacementOperator) -> None:
        if not isinstance(base, DisplacementOperator):
            raise TypeError(f"TransposedOperator: base must be an operator; got {type(base)}")
        self.base = base
        self.n = base.n
        self.dtype = base.dtype
        self._freeze()

    @property
    def T(self) -> DisplacementOperator:
        return self.base

    @property
    def params(self) -> np.ndarray:
        return self.base.params

    def _apply(self, X: np.ndarray) -> np.ndarray:
        return np.conj(self.base._apply_adjoint(np.conj(X)))

    def _apply_adjoint(self, X: np.ndarray) -> np.ndarray:
        return np.conj(self.base._apply(np.conj(X)))

    def toarray(self) -> np.ndarray:
        return self.base.toarray().T.copy()

    def conj(self) -> DisplacementOperator:
        return TransposedOperator(self.base.conj())

    def _key(self) -> tuple:
        return (self.base,)

    def __repr__(self) -> str:
        return f"{self.base!r}.T"


class Shift(DisplacementOperator):
    """The f-shift ``Z_f``: ones on the subdiagonal and ``f`` at ``(0, n-1)``.

    Parameters
    ----------
    n : int
        Order (>= 1).
    f : float or complex, optional
        The corner entry; ``Z_f^n = f I``.

    Notes
    -----
    ``Z_f x = (f x_{n-1}, x_0, ..., x_{n-2})``; ``Z_1`` is the cyclic shift,
    ``Z_0`` the nilpotent down-shift.

    Examples
    --------
    >>> import lowdisp as ld
    >>> ld.Shift(3, f=2.0).toarray()
    array([[0., 0., 2.],
           [1., 0., 0.],
           [0., 1., 0.]])
    >>> ld.Shift(3, f=-1.0).matvec([1.0, 2.0, 3.0])
    array([-3.,  1.,  2.])
    """

    def __init__(self, n: int, f: complex = 0.0) -> None:
        self.n = check_int(n, "n", where="Shift", low=1)
        self.f = _scalar(f, "f", "Shift")
        self.dtype = result_dtype(np.asarray(self.f).dtype)
        self._freeze()

    def _apply(self, X: np.ndarray) -> np.ndarray:
        Y = np.empty_like(X)
        Y[1:] = X[:-1]
        Y[0] = self.f * X[-1]
        return Y

    def _apply_adjoint(self, X: np.ndarray) -> np.ndarray:
        Y = np.empty_like(X)
        Y[:-1] = X[1:]
        Y[-1] = np.conj(self.f) * X[0]
        return Y

    def toarray(self) -> np.ndarray:
        Z = np.eye(self.n, k=-1, dtype=self.dtype)
        Z[0, self.n - 1] += self.f
        return Z

    def conj(self) -> Shift:
        return Shift(self.n, np.conj(self.f))

    def _key(self) -> tuple:
        return (self.n, self.f)

    def __repr__(self) -> str:
        return f"Shift({self.n}, f={self.f!r})"


class Diagonal(DisplacementOperator):
    """The diagonal operator ``D(d)``.

    Parameters
    ----------
    d : (n,) array_like
        The diagonal (real or complex), finite.

    Examples
    --------
    >>> import lowdisp as ld
    >>> ld.Diagonal([1.0, 2.0]).matvec([3.0, 4.0])
    array([3., 8.])
    """

    def __init__(self, d: Any) -> None:
        arr = as_array(d, "d", where="Diagonal", ndim=1, copy=True)
        if arr.shape[0] < 1:
            raise ValueError("Diagonal: d must have at least one entry")
        arr.setflags(write=False)
        self.d = arr
        self.n = arr.shape[0]
        self.dtype = arr.dtype
        self._freeze()

    @property
    def params(self) -> np.ndarray:
        return self.d

    def _apply(self, X: np.ndarray) -> np.ndarray:
        return self.d[:, None] * X

    def _apply_adjoint(self, X: np.ndarray) -> np.ndarray:
        return np.conj(self.d)[:, None] * X

    def toarray(self) -> np.ndarray:
        return np.diag(self.d)

    def conj(self) -> Diagonal:
        return Diagonal(np.conj(self.d))

    def _key(self) -> tuple:
        return (self.n, self.d.tobytes())

    def __repr__(self) -> str:
        return f"Diagonal(n={self.n})"


class Subdiagonal(DisplacementOperator):
    """A learnable subdiagonal operator with corner ``f`` (the LDR-SD operator).

    Parameters
    ----------
    s : (n-1,) array_like
        The subdiagonal ``A[i+1, i] = s[i]``.
    f : float or complex, optional
        The fixed corner ``A[0, n-1]``; ``A^n = (f prod(s)) I``.

    Notes
    -----
    ``Subdiagonal(ones(n-1), f)`` equals ``Shift(n, f)``. The Krylov matrix
    ``K(A, v)`` is built by repeated O(n) products (never by cumulative
    products of ``s``, which lose all accuracy when they drift; see the notes).

    References
    ----------
    A. Thomas, A. Gu, T. Dao, A. Rudra, C. Ré, "Learning compressed transforms
    with low displacement rank", NeurIPS 2018.

    Examples
    --------
    >>> import lowdisp as ld
    >>> ld.Subdiagonal([2.0, 3.0]).toarray()
    array([[0., 0., 0.],
           [2., 0., 0.],
           [0., 3., 0.]])
    """

    def __init__(self, s: Any, f: complex = 0.0) -> None:
        arr = as_array(s, "s", where="Subdiagonal", ndim=1, copy=True)
        arr.setflags(write=False)
        self.s = arr
        self.f = _scalar(f, "f", "Subdiagonal")
        self.n = arr.shape[0] + 1
        self.dtype = result_dtype(arr.dtype, *_corner_parts(self.f))
        self._freeze()

    @property
    def params(self) -> np.ndarray:
        return self.s

    @property
    def alpha(self) -> complex | float:
        """``f * prod(s)``, so that ``A^n = alpha I``.

        Examples
        --------
        >>> import lowdisp as ld
        >>> ld.Subdiagonal([2.0, 3.0], f=0.5).alpha
        3.0
        """
        return (np.prod(self.s) * self.f).item() if self.f != 0 else 0.0 * self.f

    def _apply(self, X: np.ndarray) -> np.ndarray:
        Y = np.empty(X.shape, dtype=result_dtype(X.dtype, self.dtype))
        Y[1:] = self.s[:, None] * X[:-1]
        Y[0] = self.f * X[-1]
        return Y

    def _apply_adjoint(self, X: np.ndarray) -> np.ndarray:
        Y = np.empty(X.shape, dtype=result_dtype(X.dtype, self.dtype))
        Y[:-1] = np.conj(self.s)[:, None] * X[1:]
        Y[-1] = np.conj(self.f) * X[0]
        return Y

    def toarray(self) -> np.ndarray:
        A = np.zeros((self.n, self.n), dtype=self.dtype)
        idx = np.arange(self.n - 1)
        A[idx + 1, idx] = self.s
        A[0, self.n - 1] += self.f
        return A

    def conj(self) -> Subdiagonal:
        return Subdiagonal(np.conj(self.s), np.conj(self.f))

    def _key(self) -> tuple:
        return (self.n, self.s.tobytes(), self.f)

    def __repr__(self) -> str:
        return f"Subdiagonal(n={self.n}, f={self.f!r})"


class Tridiagonal(DisplacementOperator):
    """A learnable tridiagonal operator with corner ``f`` (the LDR-TD operator).

    Parameters
    ----------
    lower : (n-1,) array_like
        Subdiagonal ``A[i+1, i]``.
    main : (n,) array_like
        Diagonal.
    upper : (n-1,) array_like
        Superdiagonal ``A[i, i+1]``.
    f : float or complex, optional
        Fixed corner added at ``A[0, n-1]``.

    Notes
    -----
    ``params`` is ``concatenate([lower, main, upper])`` (length ``3n - 2``).

    Examples
    --------
    >>> import lowdisp as ld
    >>> ld.Tridiagonal([1.0], [2.0, 3.0], [4.0]).toarray()
    array([[2., 4.],
           [1., 3.]])
    """

    def __init__(self, lower: Any, main: Any, upper: Any, f: complex = 0.0) -> None:
        w = "Tridiagonal"
        mi = as_array(main, "main", where=w, ndim=1, copy=True)
        n = mi.shape[0]
        if n < 1:
            raise ValueError("Tridiagonal: main must have at least one entry")
        lo = as_array(lower, "lower", where=w, ndim=1, copy=True)
        up = as_array(upper, "upper", where=w, ndim=1, copy=True)
        for name, arr in (("lower", lo), ("upper", up)):
            if arr.shape[0] != n - 1:
                raise ValueError(
                    f"Tridiagonal: {name} must have length n - 1 = {n - 1} "
                    f"(n = len(main)); got {arr.shape[0]}"
                )
        self.f = _scalar(f, "f", w)
        self.dtype = result_dtype(lo.dtype, mi.dtype, up.dtype, *_corner_parts(self.f))
        self.lower, self.main, self.upper = (a.astype(self.dtype) for a in (lo, mi, up))
        for a in (self.lower, self.main, self.upper):
            a.setflags(write=False)
        self.n = n
        self._freeze()

    @property
    def params(self) -> np.ndarray:
        return np.concatenate([self.lower, self.main, self.upper])

    def _apply(self, X: np.ndarray) -> np.ndarray:
        Y = self.main[:, None] * X
        Y[1:] += self.lower[:, None] * X[:-1]
        Y[:-1] += self.upper[:, None] * X[1:]
        Y[0] += self.f * X[-1]
        return Y

    def _apply_adjoint(self, X: np.ndarray) -> np.ndarray:
        Y = np.conj(self.main)[:, None] * X
        Y[:-1] += np.conj(self.lower)[:, None] * X[1:]
        Y[1:] += np.conj(self.upper)[:, None] * X[:-1]
        Y[-1] += np.conj(self.f) * X[0]
        return Y

    def toarray(self) -> np.ndarray:
        A = np.diag(self.main) + np.diag(self.lower, -1) + np.diag(self.upper, 1)
        A = A.astype(self.dtype)
        A[0, self.n - 1] += self.f
        return A

    def conj(self) -> Tridiagonal:
        return Tridiagonal(
            np.conj(self.lower), np.conj(self.main), np.conj(self.upper), np.conj(self.f)
        )

    def _key(self) -> tuple:
        return (self.n, self.params.tobytes(), self.f)

    def __repr__(self) -> str:
        return f"Tridiagonal(n={self.n}, f={self.f!r})"
