"""Constructors of the classical LDR families and the random case generator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from lowdisp._validation import as_array, as_rng, check_int, check_option, check_real, lookup
from lowdisp.structured._common import randn
from lowdisp.structured._ldr import KINDS, LDRMatrix
from lowdisp.structured._operators import Diagonal, Shift, Subdiagonal, Tridiagonal
from lowdisp.structured.families.cauchy import interlaced_nodes

__all__ = [
    "cauchy",
    "cauchy_like",
    "circulant",
    "hankel",
    "hankel_like",
    "ldr_subdiagonal",
    "ldr_tridiagonal",
    "random_ldr",
    "skew_circulant",
    "toeplitz",
    "toeplitz_like",
    "vandermonde",
    "vandermonde_like",
]


def _gens(G: Any, H: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    Ga = as_array(G, "G", where=where, ndim=(1, 2))
    Ha = as_array(H, "H", where=where, ndim=(1, 2))
    Ga, Ha = (Ga[:, None] if Ga.ndim == 1 else Ga), (Ha[:, None] if Ha.ndim == 1 else Ha)
    if Ga.shape[0] == 0 or Ha.shape[0] == 0:
        raise ValueError(
            f"{where}: G and H must have at least one row (0 x 0 and empty LDR matrices "
            f"are not supported); got G.shape={Ga.shape}, H.shape={Ha.shape}"
        )
    return Ga, Ha


def _corner(value: Any, name: str, where: str) -> complex | float:
    """A corner of a shift or subdiagonal operator: a finite real or complex scalar."""
    v = check_real(value, name, where=where, allow_complex=True)
    return v if isinstance(v, complex) else float(v)


def _shift_pair(kind: Any, e: Any, f: Any, where: str) -> tuple[complex, complex]:
    check_option(kind, "kind", KINDS, where=where)
    e0, f0 = (1.0, -1.0) if kind == "sylvester" else (0.0, 0.0)
    e1 = e0 if e is None else _corner(e, "e", where)
    f1 = f0 if f is None else _corner(f, "f", where)
    return e1, f1


def _check_len(arr: np.ndarray, name: str, want: int, what: str, where: str) -> None:
    if arr.shape[0] != want:
        raise ValueError(f"{where}: {name} must have length {what} = {want}; got {arr.shape[0]}")


def toeplitz_like(
    G: Any, H: Any, *, kind: str = "sylvester", e: complex | None = None, f: complex | None = None
) -> LDRMatrix:
    r"""A Toeplitz-like matrix from its generators.

    Operator pair: ``(Z_e, Z_f)`` with ``Z_e M - M Z_f = G H^T``
    (``kind="sylvester"``, default e = 1, f = -1, needs e != f), or
    ``(Z_e, Z_f^T)`` with ``M - Z_e M Z_f^T = G H^T`` (``kind="stein"``, default
    e = f = 0, needs e f != 1).

    Parameters
    ----------
    G, H : (n, r) array_like
        Generators (real or complex). With ``kind="stein"`` and e = f = 0, G may
        be (m, r) and H (n, r) with m != n: a rectangular Toeplitz-like matrix.
    kind : {"sylvester", "stein"}
    e, f : float or complex, optional
        The shift corners.

    Returns
    -------
    LDRMatrix
        Applied with O(r) FFTs of length ``next_fast_len(2n - 1)``.

    Notes
    -----
    Sylvester: :math:`M = (e-f)^{-1}\sum_i Z_e(g_i) Z_f(J h_i)`; Stein:
    :math:`M = (1-ef)^{-1}\sum_i Z_e(g_i) Z_f(h_i)^T` (with e = f = 0,
    :math:`\sum_i L(g_i) L(h_i)^T`).

    References
    ----------
    V. Sindhwani, T. Sainath, S. Kumar, "Structured transforms for small-footprint
    deep learning", NeurIPS 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> rng = np.random.default_rng(0)
    >>> M = ld.toeplitz_like(rng.standard_normal((8, 2)), rng.standard_normal((8, 2)))
    >>> M.family, M.kind, M.rank
    ('toeplitz', 'sylvester', 2)
    >>> x = np.ones(8)
    >>> bool(np.allclose(M @ x, M.toarray() @ x))
    True
    """
    w = "toeplitz_like"
    e, f = _shift_pair(kind, e, f, w)
    Ga, Ha = _gens(G, H, w)
    m, n = Ga.shape[0], Ha.shape[0]
    if m != n and not (kind == "stein" and e == 0 and f == 0):
        raise ValueError(
            f"{w}: G and H must have the same number of rows n (M is n x n) unless "
            f"kind='stein' with e = f = 0 (rectangular); got G.shape={Ga.shape}, "
            f"H.shape={Ha.shape}"
        )
    B = Shift(n, f) if kind == "sylvester" else Shift(n, f).T
    return LDRMatrix(Shift(m, e), B, Ga, Ha, kind=kind, _where=w)


def hankel_like(
    G: Any, H: Any, *, kind: str = "sylvester", e: complex | None = None, f: complex | None = None
) -> LDRMatrix:
    r"""A Hankel-like matrix from its generators.

    Operator pair: ``(Z_e^T, Z_f)`` with ``Z_e^T M - M Z_f = G H^T``
    (``kind="sylvester"``, default e = 1, f = -1), or ``(Z_e^T, Z_f^T)`` with
    ``M - Z_e^T M Z_f^T = G H^T`` (``kind="stein"``, default e = f = 0).

    Parameters
    ----------
    G, H : (n, r) array_like
    kind : {"sylvester", "stein"}
    e, f : float or complex, optional

    Returns
    -------
    LDRMatrix

    Notes
    -----
    ``M = J T`` where T is the Toeplitz-like matrix of :func:`toeplitz_like`
    with generators ``(J G, H)``, because ``J Z_e J = Z_e^T``.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> rng = np.random.default_rng(0)
    >>> M = ld.hankel_like(rng.standard_normal((5, 1)), rng.standard_normal((5, 1)))
    >>> D = M.displacement()
    >>> bool(np.allclose(D, M.generators.G @ M.generators.H.T))
    True
    """
    w = "hankel_like"
    e, f = _shift_pair(kind, e, f, w)
    Ga, Ha = _gens(G, H, w)
    n = Ga.shape[0]
    if Ha.shape[0] != n:
        raise ValueError(
            f"{w}: G and H must have the same number of rows n (M is n x n); "
            f"got G.shape={Ga.shape}, H.shape={Ha.shape}"
        )
    B = Shift(n, f) if kind == "sylvester" else Shift(n, f).T
    return LDRMatrix(Shift(n, e).T, B, Ga, Ha, kind=kind, _where=w)


def vandermonde_like(nodes: Any, G: Any, H: Any) -> LDRMatrix:
    r"""A Vandermonde-like (m x n) matrix.

    Operator pair: ``(D(v), Z_0^T)``, Stein: ``M - D(v) M Z_0^T = G H^T``.

    Parameters
    ----------
    nodes : (m,) array_like
        The nodes v.
    G : (m, r) array_like
    H : (n, r) array_like

    Returns
    -------
    LDRMatrix

    Notes
    -----
    :math:`M = \sum_i \mathrm{diag}(g_i)\, V(v)\, L(h_i)^T` with
    :math:`V_{jk} = v_j^k` (Pan 2001, Sec. 4.4). The Stein map is always
    invertible (Z_0 is nilpotent).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> v = np.array([0.5, -1.0, 2.0])
    >>> M = ld.vandermonde_like(v, np.ones((3, 1)), np.eye(4, 1))
    >>> bool(np.allclose(M.toarray(), np.vander(v, 4, increasing=True)))
    True
    """
    w = "vandermonde_like"
    v = as_array(nodes, "nodes", where=w, ndim=1)
    if v.shape[0] == 0:
        raise ValueError(f"{w}: nodes must be non-empty")
    Ga, Ha = _gens(G, H, w)
    _check_len(Ga, "G", v.shape[0], "len(nodes)", w)
    return LDRMatrix(Diagonal(v), Shift(Ha.shape[0], 0.0).T, Ga, Ha, kind="stein", _where=w)


def cauchy_like(s: Any, t: Any, G: Any, H: Any) -> LDRMatrix:
    r"""A Cauchy-like (m x n) matrix.

    Operator pair: ``(D(s), D(t))``, Sylvester: ``D(s) M - M D(t) = G H^T``; all
    ``s_j != t_k``.

    Parameters
    ----------
    s : (m,) array_like
    t : (n,) array_like
    G : (m, r) array_like
    H : (n, r) array_like

    Returns
    -------
    LDRMatrix

    Notes
    -----
    :math:`M_{jk} = \sum_i G_{ji} H_{ki} / (s_j - t_k)`.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> M = ld.cauchy_like([1.0, 2.0], [0.0], [[1.0], [2.0]], [[3.0]])
    >>> M.toarray()
    array([[3.],
           [3.]])
    """
    w = "cauchy_like"
    sa = as_array(s, "s", where=w, ndim=1)
    ta = as_array(t, "t", where=w, ndim=1)
    if sa.shape[0] == 0 or ta.shape[0] == 0:
        raise ValueError(f"{w}: s and t must be non-empty")
    Ga, Ha = _gens(G, H, w)
    _check_len(Ga, "G", sa.shape[0], "len(s)", w)
    _check_len(Ha, "H", ta.shape[0], "len(t)", w)
    return LDRMatrix(Diagonal(sa), Diagonal(ta), Ga, Ha, kind="sylvester", _where=w)


def ldr_subdiagonal(
    a: Any, b: Any, G: Any, H: Any, *, fa: complex = 0.0, fb: complex = 0.0
) -> LDRMatrix:
    r"""An LDR matrix with learnable subdiagonal operators (LDR-SD).

    Operator pair: ``(A, B'^T)`` with ``A = Subdiagonal(a, fa)``,
    ``B' = Subdiagonal(b, fb)``, Stein: ``M - A M B'^T = G H^T``.

    Parameters
    ----------
    a, b : (n-1,) array_like
        Subdiagonals.
    G, H : (n, r) array_like
    fa, fb : float or complex, optional
        Fixed corners; ``alpha = fa prod(a)``, ``beta = fb prod(b)``, and
        ``alpha * beta`` must not be 1.

    Returns
    -------
    LDRMatrix
        ``vjp`` returns gradients of ``a`` and ``b`` as ``"A"`` and ``"B"``.

    Notes
    -----
    :math:`(1-\alpha\beta) M = \sum_i K(A, g_i) K(B', h_i)^T` (Thomas et al. 2018).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> M = ld.ldr_subdiagonal(np.ones(3), np.ones(3), np.eye(4, 1), np.eye(4, 1))
    >>> M.toarray()  # a = b = 1: the Toeplitz-like Z_0 case, here the identity
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 1.]])
    """
    w = "ldr_subdiagonal"
    fa, fb = _corner(fa, "fa", w), _corner(fb, "fb", w)
    aa = as_array(a, "a", where=w, ndim=1)
    ba = as_array(b, "b", where=w, ndim=1)
    Ga, Ha = _gens(G, H, w)
    _check_len(aa, "a", Ga.shape[0] - 1, "n - 1 (n = G.shape[0])", w)
    _check_len(ba, "b", Ha.shape[0] - 1, "n - 1 (n = H.shape[0])", w)
    A, Bp = Subdiagonal(aa, fa), Subdiagonal(ba, fb)
    return LDRMatrix(A, Bp.T, Ga, Ha, kind="stein", _where=w)


def _as_tridiagonal(x: Any, name: str, where: str) -> Tridiagonal:
    if isinstance(x, Tridiagonal):
        return x
    if isinstance(x, tuple | list) and len(x) in (3, 4):
        try:
            return Tridiagonal(*x)
        except (TypeError, ValueError) as exc:  # name the caller's argument
            msg = str(exc).removeprefix("Tridiagonal: ")
            raise type(exc)(f"{where}: {name} (lower, main, upper[, f]): {msg}") from exc
    raise TypeError(
        f"{where}: {name} must be a Tridiagonal or a tuple (lower, main, upper[, f]); "
        f"got {type(x).__name__}"
    )


def ldr_tridiagonal(A: Any, B: Any, G: Any, H: Any) -> LDRMatrix:
    r"""An LDR matrix with learnable tridiagonal operators (LDR-TD, Krylov-sum definition).

    Operator pair: ``(A, B'^T)`` (``kind="stein"``) with tridiagonal A, B'.

    Parameters
    ----------
    A, B : Tridiagonal or tuple
        The operators A and B' (a tuple is ``(lower, main, upper[, f])``).
    G, H : (n, r) array_like

    Returns
    -------
    LDRMatrix
        ``vjp`` returns gradients of ``A.params`` and ``B.params``
        (``[lower, main, upper]``) as ``"A"`` and ``"B"``.

    Notes
    -----
    :math:`M = \sum_i K(A, g_i) K(B', h_i)^T` (Thomas et al. 2018). Unlike the
    subdiagonal case this is not the solution of the Stein equation:
    :math:`M - A M B'^T = GH^T - A^n G H^T (B'^T)^n`, so the Stein displacement
    rank is at most 2r.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> n = 4
    >>> A = ld.Tridiagonal(np.ones(n - 1), np.zeros(n), np.zeros(n - 1))
    >>> M = ld.ldr_tridiagonal(A, A, np.eye(n, 1), np.eye(n, 1))
    >>> bool(np.allclose(M.toarray(), np.eye(n)))
    True
    """
    w = "ldr_tridiagonal"
    At, Bt = _as_tridiagonal(A, "A", w), _as_tridiagonal(B, "B", w)
    Ga, Ha = _gens(G, H, w)
    _check_len(Ga, "G", At.n, "A.n", w)
    _check_len(Ha, "H", Bt.n, "B.n", w)
    return LDRMatrix(At, Bt.T, Ga, Ha, kind="stein", _where=w)


# --------------------------------------------------------------------------
# exact families (rank <= 2)
# --------------------------------------------------------------------------


def _toeplitz_generators(col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generators of T (first column col, first row row) for (Z_1, Z_-1).

    ``Z_1 T - T Z_{-1} = e_0 u^T + v e_{n-1}^T`` with u the first-row part and
    v the last-column part.
    """
    n = col.shape[0]
    dt = np.result_type(col, row)
    if n == 1:
        return np.ones((1, 1), dtype=dt), (2 * col[:1])[:, None].astype(dt)
    # T[i, j] = col[i - j] (i >= j), row[j - i] (j > i)
    u = np.empty(n, dtype=dt)
    u[: n - 1] = col[n - 1 : 0 : -1] - row[1:]  # T[n-1, j] - T[0, j+1]
    u[n - 1] = 2 * col[0]
    v = np.zeros(n, dtype=dt)
    v[1:] = row[n - 1 : 0 : -1] + col[1:]  # T[i-1, n-1] + T[i, 0]
    G = np.zeros((n, 2), dtype=dt)
    G[0, 0] = 1.0
    G[:, 1] = v
    Hh = np.zeros((n, 2), dtype=dt)
    Hh[:, 0] = u
    Hh[n - 1, 1] = 1.0
    return G, Hh


def _toeplitz_cr(c: Any, r: Any, where: str, square: bool = True) -> tuple[np.ndarray, np.ndarray]:
    ca = as_array(c, "c", where=where, ndim=1)
    ra = np.conj(ca) if r is None else as_array(r, "r", where=where, ndim=1)
    if ca.shape[0] == 0 or ra.shape[0] == 0:
        raise ValueError(f"{where}: c and r must be non-empty")
    if square and ra.shape[0] != ca.shape[0]:
        raise ValueError(
            f"{where}: only square matrices are supported: c and r must have the same "
            f"length; got len(c)={ca.shape[0]}, len(r)={ra.shape[0]}"
        )
    dt = np.result_type(ca, ra)
    ra = ra.astype(dt).copy()
    ra[0] = ca[0]
    return ca.astype(dt), ra


def toeplitz(c: Any, r: Any = None) -> LDRMatrix:
    """The Toeplitz matrix with first column ``c`` and first row ``r``, as an LDRMatrix.

    Operator pair ``(Z_1, Z_{-1})``, Sylvester, displacement rank <= 2 (square);
    a rectangular matrix (``len(c) != len(r)``) uses the Stein pair
    ``(Z_0, Z_0^T)`` with ``T - Z_0 T Z_0^T = e_0 r^T + (c - c_0 e_0) e_0^T``.
    Same conventions as :func:`scipy.linalg.toeplitz` (``r`` defaults to
    ``conj(c)``, ``r[0]`` is ignored).

    Parameters
    ----------
    c : (m,) array_like
    r : (n,) array_like, optional

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import lowdisp as ld
    >>> ld.toeplitz([1.0, 2.0], [1.0, 4.0, 5.0]).toarray()
    array([[1., 4., 5.],
           [2., 1., 4.]])
    >>> T = ld.toeplitz([1.0, 2.0, 3.0], [1.0, 4.0, 5.0])
    >>> bool(np.allclose(T.toarray(), scipy.linalg.toeplitz([1, 2, 3], [1, 4, 5])))
    True
    """
    w = "toeplitz"
    ca, ra = _toeplitz_cr(c, r, w, square=False)
    m, n = ca.shape[0], ra.shape[0]
    if m != n:  # Stein (Z_0, Z_0^T): T - Z_0 T Z_0^T = e_0 r^T + c' e_0^T, c' = (0, c_1, ...)
        if m == 1:  # Z_0 = 0: the displacement is T itself, rank 1
            G, H = np.ones((1, 1), dtype=ca.dtype), ra[:, None]
        elif n == 1:
            G, H = ca[:, None], np.ones((1, 1), dtype=ca.dtype)
        else:
            G = np.zeros((m, 2), dtype=ca.dtype)
            G[0, 0] = 1.0
            G[1:, 1] = ca[1:]
            H = np.zeros((n, 2), dtype=ca.dtype)
            H[:, 0] = ra
            H[0, 1] = 1.0
        return LDRMatrix(Shift(m, 0.0), Shift(n, 0.0).T, G, H, kind="stein", _where=w)
    G, H = _toeplitz_generators(ca, ra)
    return LDRMatrix(Shift(n, 1.0), Shift(n, -1.0), G, H, _where=w)


def hankel(c: Any, r: Any = None) -> LDRMatrix:
    """The Hankel matrix with first column ``c`` and last row ``r``, as an LDRMatrix.

    Operator pair ``(Z_1^T, Z_{-1})``, Sylvester, rank <= 2. Conventions of
    :func:`scipy.linalg.hankel` (``r`` defaults to zeros, ``r[0]`` is ignored),
    square only.

    Parameters
    ----------
    c : (n,) array_like
    r : (n,) array_like, optional

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import lowdisp as ld
    >>> M = ld.hankel([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])
    >>> bool(np.allclose(M.toarray(), scipy.linalg.hankel([1, 2, 3], [3, 4, 5])))
    True
    """
    w = "hankel"
    ca = as_array(c, "c", where=w, ndim=1)
    ra = np.zeros_like(ca) if r is None else as_array(r, "r", where=w, ndim=1)
    if ca.shape[0] == 0 or ra.shape[0] != ca.shape[0]:
        raise ValueError(
            f"{w}: only square matrices are supported: c and r must be non-empty and of the "
            f"same length; got len(c)={ca.shape[0]}, len(r)={ra.shape[0]}"
        )
    n = ca.shape[0]
    # M = J T with T = J M Toeplitz: first column c[::-1], first row = last row of M.
    tcol = ca[::-1]
    trow = np.concatenate([ca[-1:], ra[1:]])
    G, H = _toeplitz_generators(*_toeplitz_cr(tcol, trow, w))
    return LDRMatrix(Shift(n, 1.0).T, Shift(n, -1.0), G[::-1], H, _where=w)


def circulant(c: Any) -> LDRMatrix:
    """The circulant matrix with first column ``c`` (as :func:`scipy.linalg.circulant`).

    Operator pair ``(Z_1, Z_{-1})``, Sylvester, rank 1:
    ``Z_1 C - C Z_{-1} = (2 c) e_{n-1}^T``.

    Parameters
    ----------
    c : (n,) array_like

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import lowdisp as ld
    >>> C = ld.circulant([1.0, 2.0, 3.0])
    >>> bool(np.allclose(C.toarray(), scipy.linalg.circulant([1, 2, 3]))), C.rank
    (True, 1)
    """
    w = "circulant"
    ca = as_array(c, "c", where=w, ndim=1)
    if ca.shape[0] == 0:
        raise ValueError(f"{w}: c must be non-empty")
    n = ca.shape[0]
    H = np.zeros((n, 1), dtype=ca.dtype)
    H[n - 1, 0] = 1.0
    return LDRMatrix(Shift(n, 1.0), Shift(n, -1.0), 2 * ca[:, None], H, _where=w)


def skew_circulant(c: Any) -> LDRMatrix:
    """The skew-circulant matrix ``Z_{-1}(c)`` with first column ``c``.

    Entries ``c_{i-j}`` for i >= j and ``-c_{n+i-j}`` above the diagonal.
    Operator pair ``(Z_1, Z_{-1})``, rank 1: ``Z_1 S - S Z_{-1} = 2 e_0 (J c)^T``.

    Parameters
    ----------
    c : (n,) array_like

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import lowdisp as ld
    >>> ld.skew_circulant([1.0, 2.0, 3.0]).toarray()
    array([[ 1., -3., -2.],
           [ 2.,  1., -3.],
           [ 3.,  2.,  1.]])
    """
    w = "skew_circulant"
    ca = as_array(c, "c", where=w, ndim=1)
    if ca.shape[0] == 0:
        raise ValueError(f"{w}: c must be non-empty")
    n = ca.shape[0]
    G = np.zeros((n, 1), dtype=ca.dtype)
    G[0, 0] = 2.0
    return LDRMatrix(Shift(n, 1.0), Shift(n, -1.0), G, ca[::-1, None], _where=w)


def vandermonde(x: Any, n: int | None = None) -> LDRMatrix:
    """The Vandermonde matrix ``V[j, k] = x_j^k`` (``np.vander(x, n, increasing=True)``).

    Operator pair ``(D(x), Z_0^T)``, Stein, rank 1: ``V - D(x) V Z_0^T = 1 e_0^T``.

    Parameters
    ----------
    x : (m,) array_like
        Nodes.
    n : int, optional
        Number of columns (default m).

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp as ld
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> bool(np.allclose(ld.vandermonde(x).toarray(), np.vander(x, increasing=True)))
    True
    """
    w = "vandermonde"
    xa = as_array(x, "x", where=w, ndim=1)
    if xa.shape[0] == 0:
        raise ValueError(f"{w}: x must be non-empty")
    cols = xa.shape[0] if n is None else check_int(n, "n", where=w, low=1)
    rdt = np.empty(0, xa.dtype).real.dtype  # float32 nodes give a float32 matrix
    H = np.zeros((cols, 1), dtype=rdt)
    H[0, 0] = 1.0
    G = np.ones((xa.shape[0], 1), dtype=rdt)
    return LDRMatrix(Diagonal(xa), Shift(cols, 0.0).T, G, H, kind="stein", _where=w)


def cauchy(s: Any, t: Any) -> LDRMatrix:
    """The Cauchy matrix ``C[j, k] = 1 / (s_j - t_k)``.

    Operator pair ``(D(s), D(t))``, Sylvester, rank 1 (generators of ones).

    Parameters
    ----------
    s : (m,) array_like
    t : (n,) array_like
        All ``s_j != t_k``.

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import lowdisp as ld
    >>> ld.cauchy([1.0, 2.0], [0.0]).toarray()
    array([[1. ],
           [0.5]])
    """
    w = "cauchy"
    sa = as_array(s, "s", where=w, ndim=1)
    ta = as_array(t, "t", where=w, ndim=1)
    if sa.shape[0] == 0 or ta.shape[0] == 0:
        raise ValueError(f"{w}: s and t must be non-empty")
    rdt = np.empty(0, np.result_type(sa, ta)).real.dtype  # float32 nodes: float32
    return LDRMatrix(
        Diagonal(sa),
        Diagonal(ta),
        np.ones((sa.shape[0], 1), dtype=rdt),
        np.ones((ta.shape[0], 1), dtype=rdt),
        _where=w,
    )


# --------------------------------------------------------------------------
# random cases
# --------------------------------------------------------------------------


_CAST: list[np.dtype] = []  # the target precision of random_ldr (a stack, re-entrant)


@contextlib.contextmanager
def _cast_to(dt: np.dtype) -> Iterator[None]:
    _CAST.append(np.dtype(dt))
    try:
        yield
    finally:
        _CAST.pop()


def _c(x: Any) -> Any:
    """``x`` rounded to random_ldr's target precision (arrays only)."""
    if not _CAST or not isinstance(x, np.ndarray):
        return x
    target = _CAST[-1] if x.dtype.kind == "c" else np.empty(0, _CAST[-1]).real.dtype
    return x.astype(target)


def _rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return _c(randn(rng, shape, dtype))


def _interlaced_nodes(rng, m, n, dtype):
    s, t = interlaced_nodes(rng, m, n, dtype)
    return _c(s), _c(t)


def _r_toeplitz_like(rng, n, r, dt):
    return toeplitz_like(_rand(rng, (n, r), dt), _rand(rng, (n, r), dt))


def _r_toeplitz_like_stein(rng, n, r, dt):
    return toeplitz_like(_rand(rng, (n, r), dt), _rand(rng, (n, r), dt), kind="stein")


def _r_hankel_like(rng, n, r, dt):
    return hankel_like(_rand(rng, (n, r), dt), _rand(rng, (n, r), dt))


def _r_vandermonde_like(rng, n, r, dt):
    v = rng.uniform(-1, 1, n)
    if np.dtype(dt).kind == "c":
        v = np.exp(2j * np.pi * rng.uniform(0, 1, n)) * rng.uniform(0.5, 1, n)
    return vandermonde_like(_c(v), _rand(rng, (n, r), dt), _rand(rng, (n, r), dt))


def _r_cauchy_like(rng, n, r, dt):
    s, t = _interlaced_nodes(rng, n, n, dt)
    return cauchy_like(s, t, _rand(rng, (n, r), dt), _rand(rng, (n, r), dt))


def _r_subdiagonal(rng, n, r, dt):
    a = 1 + 0.1 * _rand(rng, (n - 1,), dt)
    b = 1 + 0.1 * _rand(rng, (n - 1,), dt)
    return ldr_subdiagonal(a, b, _rand(rng, (n, r), dt), _rand(rng, (n, r), dt), fa=0.5, fb=-0.5)


def _r_tridiagonal(rng, n, r, dt):
    def op():
        return Tridiagonal(
            1 + 0.1 * _rand(rng, (n - 1,), dt),
            0.1 * _rand(rng, (n,), dt),
            0.1 * _rand(rng, (n - 1,), dt),
            0.3,
        )

    return ldr_tridiagonal(op(), op(), _rand(rng, (n, r), dt), _rand(rng, (n, r), dt))


def _r_toeplitz(rng, n, r, dt):
    return toeplitz(_rand(rng, (n,), dt), _rand(rng, (n,), dt))


def _r_hankel(rng, n, r, dt):
    return hankel(_rand(rng, (n,), dt), _rand(rng, (n,), dt))


def _r_circulant(rng, n, r, dt):
    return circulant(_rand(rng, (n,), dt))


def _r_skew_circulant(rng, n, r, dt):
    return skew_circulant(_rand(rng, (n,), dt))


def _r_vandermonde(rng, n, r, dt):
    x = rng.uniform(-1, 1, n)
    if np.dtype(dt).kind == "c":
        x = np.exp(2j * np.pi * rng.uniform(0, 1, n))
    return vandermonde(_c(x))


def _r_cauchy(rng, n, r, dt):
    return cauchy(*_interlaced_nodes(rng, n, n, dt))


RANDOM_KINDS = {
    "toeplitz_like": _r_toeplitz_like,
    "toeplitz_like_stein": _r_toeplitz_like_stein,
    "hankel_like": _r_hankel_like,
    "vandermonde_like": _r_vandermonde_like,
    "cauchy_like": _r_cauchy_like,
    "subdiagonal": _r_subdiagonal,
    "tridiagonal": _r_tridiagonal,
    "toeplitz": _r_toeplitz,
    "hankel": _r_hankel,
    "circulant": _r_circulant,
    "skew_circulant": _r_skew_circulant,
    "vandermonde": _r_vandermonde,
    "cauchy": _r_cauchy,
}

#: Kinds whose rank is fixed by the family (the ``rank`` argument is ignored).
EXACT_KINDS = ("toeplitz", "hankel", "circulant", "skew_circulant", "vandermonde", "cauchy")


def random_ldr(
    kind: str, n: int, rank: int, *, rng: Any = None, dtype: Any = np.float64
) -> LDRMatrix:
    """A random n x n LDR matrix of the given kind (for tests, benchmarks and demos).

    Parameters
    ----------
    kind : str
        One of ``"toeplitz_like"``, ``"toeplitz_like_stein"``, ``"hankel_like"``,
        ``"vandermonde_like"``, ``"cauchy_like"``, ``"subdiagonal"``,
        ``"tridiagonal"`` (random generators of the given rank) or the exact
        families ``"toeplitz"``, ``"hankel"``, ``"circulant"``,
        ``"skew_circulant"``, ``"vandermonde"``, ``"cauchy"`` (whose rank, <= 2,
        is fixed: ``rank`` is only range-checked).
    n : int
        Order (>= 1).
    rank : int
        Displacement rank, in ``[1, n]``.
    rng : seed or Generator, optional
    dtype : {float64, complex128}, optional
        Real or complex generators and nodes.

    Returns
    -------
    LDRMatrix

    Examples
    --------
    >>> import lowdisp as ld
    >>> M = ld.random_ldr("cauchy_like", 6, 3, rng=0)
    >>> M.family, M.rank
    ('cauchy', 3)
    """
    w = "random_ldr"
    make = lookup(RANDOM_KINDS, kind, "kind", where=w)
    n = check_int(n, "n", where=w, low=1)
    rank = check_int(rank, "rank", where=w, low=1, high=n)
    valid = (np.float32, np.float64, np.complex64, np.complex128)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dtype is None or dt is None or dt not in [np.dtype(v) for v in valid]:
        raise TypeError(
            f"{w}: dtype must be one of float32, float64, complex64, complex128; got {dtype!r}"
        )
    gen = as_rng(rng, where=w)
    # draw in double precision (the same matrix for every precision), then round
    wide = np.dtype(np.complex128 if dt.kind == "c" else np.float64)
    with _cast_to(dt):
        return make(gen, n, rank, wide)
