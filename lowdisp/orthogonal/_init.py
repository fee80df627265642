"""Initializations of orthogonal and unitary matrices."""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_bool, check_dtype, check_int
from lowdisp.orthogonal._base import check_real_dtype

__all__ = ["cayley_init", "haar", "henaff", "identity", "torus"]


def _blocks(values: np.ndarray, n: int) -> np.ndarray:
    """Block-diagonal skew matrix with blocks [[0, a], [-a, 0]] (odd n: trailing 0)."""
    A = np.zeros((n, n))
    i = np.arange(values.shape[0])
    A[2 * i, 2 * i + 1] = values
    A[2 * i + 1, 2 * i] = -values
    return A


def _rotations(cos: np.ndarray, sin: np.ndarray, n: int) -> np.ndarray:
    """Block-diagonal orthogonal matrix with blocks [[c, s], [-s, c]] (odd n: trailing 1)."""
    W = np.eye(n)
    i = np.arange(cos.shape[0])
    W[2 * i, 2 * i] = cos
    W[2 * i + 1, 2 * i + 1] = cos
    W[2 * i, 2 * i + 1] = sin
    W[2 * i + 1, 2 * i] = -sin
    return W


def henaff(n: int, *, rng: Any = None, skew: bool = False, dtype: Any = np.float64) -> np.ndarray:
    """Block-diagonal rotations with eigenphases uniform on the circle (Henaff et al.).

    Parameters
    ----------
    n : int
        Order.
    rng : seed or Generator, optional
    skew : bool
        Return the skew-symmetric generator ``A`` (with ``W = expm(A)``)
        instead of ``W``.
    dtype : {float64, float32}

    Returns
    -------
    (n, n) ndarray
        ``W`` (orthogonal, ``det = +1``) or ``A`` (skew).

    Notes
    -----
    ``A = blockdiag([[0, a_j], [-a_j, 0]])`` with ``a_j ~ U[-pi, pi]``, so
    ``W = exp(A)`` has eigenvalues ``exp(±i a_j)``. For odd ``n`` the last
    eigenvalue is 1. This is expRNN's ``henaff_init_``, used for the copy task.

    References
    ----------
    M. Henaff, A. Szlam, Y. LeCun, "Recurrent orthogonal networks and
    long-memory tasks", ICML 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import henaff, orthogonality_error
    >>> W = henaff(5, rng=0)
    >>> orthogonality_error(W) < 1e-15
    True
    """
    n = check_int(n, "n", where="henaff", low=1)
    skew = check_bool(skew, "skew", where="henaff")
    dt = check_real_dtype(dtype, "henaff")
    a = as_rng(rng).uniform(-np.pi, np.pi, n // 2)
    out = _blocks(a, n) if skew else _rotations(np.cos(a), np.sin(a), n)
    return out.astype(dt)


def cayley_init(
    n: int, *, rng: Any = None, skew: bool = False, dtype: Any = np.float64
) -> np.ndarray:
    """scoRNN's Cayley initialization: eigen-angles ``±t``, ``t ~ U[0, pi/2]``.

    Parameters
    ----------
    n : int
    rng : seed or Generator, optional
    skew : bool
        Return the skew generator ``A`` (with ``W = cayley(A)``) instead of ``W``.
    dtype : {float64, float32}

    Returns
    -------
    (n, n) ndarray

    Notes
    -----
    ``A = blockdiag([[0, s_j], [-s_j, 0]])`` with
    ``s_j = -sqrt((1 - cos t_j)/(1 + cos t_j)) = -tan(t_j/2)``, so the
    Cayley transform ``W = (I + A)^{-1}(I - A)`` has blocks
    ``[[1 - s^2, -2s], [2s, 1 - s^2]] / (1 + s^2)`` with eigenvalues
    ``exp(±i t_j)``, ``t_j`` in ``[0, pi/2]``.

    References
    ----------
    K. Helfrich, D. Willmott, Q. Ye, "Orthogonal recurrent neural networks
    with scaled Cayley transform", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import cayley_init, eigenphases
    >>> phases = eigenphases(cayley_init(6, rng=0))
    >>> bool(np.all(np.abs(phases) <= np.pi / 2 + 1e-12))
    True
    """
    n = check_int(n, "n", where="cayley_init", low=1)
    skew = check_bool(skew, "skew", where="cayley_init")
    dt = check_real_dtype(dtype, "cayley_init")
    t = as_rng(rng).uniform(0.0, np.pi / 2, n // 2)
    s = -np.sqrt((1.0 - np.cos(t)) / (1.0 + np.cos(t)))
    if skew:
        return _blocks(s, n).astype(dt)
    d = 1.0 + s**2
    return _rotations((1.0 - s**2) / d, -2.0 * s / d, n).astype(dt)


def haar(n: int, *, rng: Any = None, complex: bool = False, dtype: Any = None) -> np.ndarray:
    """A sample of the Haar (uniform) distribution on ``O(n)`` or ``U(n)``.

    Parameters
    ----------
    n : int
    rng : seed or Generator, optional
    complex : bool
        Sample ``U(n)`` (complex128) instead of ``O(n)``.
    dtype : {float64, float32}, optional
        For the real case (default float64).

    Returns
    -------
    (n, n) ndarray

    Notes
    -----
    QR of a Gaussian matrix with the signs of ``diag(R)`` moved into ``Q``
    (Mezzadri 2007); without the sign fix the distribution is not Haar.

    References
    ----------
    F. Mezzadri, "How to generate random matrices from the classical compact
    groups", Notices of the AMS 54 (2007).

    Examples
    --------
    >>> from lowdisp.orthogonal import haar, orthogonality_error
    >>> orthogonality_error(haar(4, rng=0, complex=True)) < 1e-14
    True
    """
    n = check_int(n, "n", where="haar", low=1)
    complex = check_bool(complex, "complex", where="haar")
    gen = as_rng(rng)
    Z = gen.standard_normal((n, n))
    if complex:
        if dtype is not None and np.dtype(dtype) != np.complex128:
            raise TypeError(f"haar: complex samples are complex128; got dtype {dtype!r}")
        Z = (Z + 1j * gen.standard_normal((n, n))) / np.sqrt(2.0)
    Q, R = np.linalg.qr(Z)
    d = np.diagonal(R)
    Q = Q * (d / np.abs(d))[None, :]
    if complex:
        return Q
    return Q.astype(check_real_dtype(np.float64 if dtype is None else dtype, "haar"))


def identity(n: int, *, dtype: Any = np.float64) -> np.ndarray:
    """The identity matrix (the IRNN / "identity" initialization).

    Parameters
    ----------
    n : int
    dtype : dtype
        float32, float64, complex64 or complex128.

    Returns
    -------
    (n, n) ndarray

    References
    ----------
    Q. V. Le, N. Jaitly, G. E. Hinton, "A simple way to initialize recurrent
    networks of rectified linear units", arXiv:1504.00941 (2015).

    Examples
    --------
    >>> from lowdisp.orthogonal import identity
    >>> identity(2)
    array([[1., 0.],
           [0., 1.]])
    """
    n = check_int(n, "n", where="identity", low=1)
    dt = check_dtype(dtype, (np.float32, np.float64, np.complex64, np.complex128), where="identity")
    return np.eye(n, dtype=dt)


def torus(n: int, *, rng: Any = None, dtype: Any = np.float64) -> np.ndarray:
    """A random orthogonal matrix from a random maximal torus.

    ``W = Q R Q^T`` with ``Q`` Haar on ``O(n)`` and ``R`` the block rotations
    of :func:`henaff`: eigenphases uniform on the circle, eigenvectors in
    general position (geotorch's ``sample("torus")`` idea).

    Parameters
    ----------
    n : int
    rng : seed or Generator, optional
    dtype : {float64, float32}

    Returns
    -------
    (n, n) ndarray
        Orthogonal with ``det = +1``.

    References
    ----------
    M. Lezcano-Casado, "Trivializations for gradient-based optimization on
    manifolds", NeurIPS 2019 (geotorch).

    Examples
    --------
    >>> from lowdisp.orthogonal import torus, orthogonality_error
    >>> orthogonality_error(torus(5, rng=0)) < 1e-14
    True
    """
    n = check_int(n, "n", where="torus", low=1)
    dt = check_real_dtype(dtype, "torus")
    gen = as_rng(rng)
    R = henaff(n, rng=gen)
    Q = haar(n, rng=gen)
    return (Q @ R @ Q.T).astype(dt)
