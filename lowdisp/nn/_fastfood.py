"""The Fastfood transform as a learned layer (Le, Sarlós & Smola 2013): ``S H G Π H B``."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_bool, check_int
from lowdisp.nn._layers import Layer, _as_grad, _as_input, _check_dtype
from lowdisp.nn._spec import register_layer
from lowdisp.nn._structures import check_features

__all__ = ["Fastfood", "fwht"]


def fwht(x: np.ndarray) -> np.ndarray:
    """The orthonormal Walsh-Hadamard transform ``x Hᵀ = x H`` along the last axis.

    ``H = H_m / sqrt(m)`` with Sylvester's ``H_{2k} = [[H_k, H_k], [H_k, -H_k]]``
    (the natural order of :func:`scipy.linalg.hadamard`); ``m`` a power of two.
    H is symmetric and orthogonal, so the transform is its own inverse. For
    ``m >= 256`` it uses ``H_m = H_{m1} ⊗ H_{m2}`` (``m1 m2 = m``, both about
    sqrt(m)): each row, viewed as an m1 x m2 matrix X, maps to ``H_{m1} X H_{m2}``,
    two small GEMMs (7x faster than butterflies at m = 4096, batch 256);
    smaller m uses ``log2 m`` vectorized butterfly passes.

    Parameters
    ----------
    x : (..., m) ndarray

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from lowdisp.nn._fastfood import fwht
    >>> x = np.arange(8.0)
    >>> bool(np.allclose(fwht(x), scipy.linalg.hadamard(8) @ x / np.sqrt(8)))
    True
    """
    shape = x.shape
    m = shape[-1]
    if m >= 256:
        k1 = (m.bit_length() - 1) // 2
        m1, m2 = 1 << k1, m >> k1
        H1, H2 = _hadamard(m1, x.dtype), _hadamard(m2, x.dtype)
        X = x.reshape(-1, m1, m2)
        return np.matmul(np.matmul(H1, X), H2).reshape(shape)
    a = np.array(x, dtype=x.dtype, copy=True).reshape(-1, m)
    h = 1
    while h < m:
        v = a.reshape(a.shape[0], m // (2 * h), 2, h)
        top = v[:, :, 0, :] + v[:, :, 1, :]
        v[:, :, 1, :] = v[:, :, 0, :] - v[:, :, 1, :]
        v[:, :, 0, :] = top
        h *= 2
    a *= np.asarray(1.0 / math.sqrt(m), dtype=a.dtype)
    return a.reshape(shape)


@functools.lru_cache(maxsize=16)
def _hadamard(m: int, dtype: np.dtype) -> np.ndarray:
    """The orthonormal Sylvester-Hadamard matrix of order m (read-only, cached)."""
    import scipy.linalg as sla

    H = (sla.hadamard(m) / math.sqrt(m)).astype(dtype)
    H.setflags(write=False)
    return H


@register_layer
class Fastfood(Layer):
    r"""Adaptive Fastfood layer ``y = x Vᵀ + b``, ``V = diag(S) H diag(G) Π H diag(B)``.

    Parameters
    ----------
    n : int
        Features in and out. The transform works on ``m = 2^ceil(log2 n)``
        features: the input is zero-padded to m and the output truncated to n.
    bias : bool
    dtype : {float32, float64}
    rng : seed or Generator, optional
    perm_seed : int, optional
        Seed of the fixed permutation Π (default: drawn from ``rng``); recorded
        in :meth:`get_config`, so checkpoints rebuild the same Π.

    Notes
    -----
    H is the orthonormal Walsh-Hadamard matrix (:func:`fwht`), Π a fixed
    random permutation, and the diagonals ``S``, ``G``, ``B`` (length m each,
    ``3 m`` weights; Thomas et al. count ``3n`` for power-of-two n) are
    learned, as in the adaptive Fastfood of Yang et al. (2015) used as a
    baseline by Thomas et al. (2018). Initialisation as Le et al.: ``B``
    Rademacher, ``G ~ N(0, 1)``, ``S_i = κ s_i / ‖G‖`` with ``s_i ~ χ_m``
    (rows with the norms of Gaussian rows); the constant ``κ = sqrt(m σ_W²)``,
    ``σ_W² = 1/n`` (Dense's entry variance), makes the expected output
    variance Dense's: for unit-variance inputs
    ``E y_i² = κ² E[s_i²] n / m² = n σ_W²``. Cost O(m log m) per row.

    References
    ----------
    Q. Le, T. Sarlós, A. Smola, "Fastfood: approximating kernel expansions in
    loglinear time", ICML 2013. Z. Yang et al., "Deep fried convnets", ICCV 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> layer = lnn.Fastfood(6, dtype=np.float64, rng=0)   # m = 8
    >>> sorted(layer.params()), layer.params()["S"].shape
    (['B', 'G', 'S', 'b'], (8,))
    >>> y, cache = layer.forward(np.ones((2, 6)))
    >>> y.shape, layer.n_weights
    ((2, 6), 24)
    """

    def __init__(
        self,
        n: int,
        *,
        bias: bool = True,
        dtype: Any = np.float32,
        rng: Any = None,
        perm_seed: int | None = None,
    ) -> None:
        where = "Fastfood"
        self.n = check_int(n, "n", where=where, low=1)
        bias = check_bool(bias, "bias", where=where)
        self.dtype = _check_dtype(dtype, where)
        gen = as_rng(rng, where=where)
        if perm_seed is None:
            perm_seed = int(gen.integers(2**31))
        self.perm_seed = check_int(perm_seed, "perm_seed", where=where, low=0)
        self.m = m = 1 << max(0, (self.n - 1).bit_length())
        self.perm = np.random.default_rng(self.perm_seed).permutation(m)
        self._inv_perm = np.argsort(self.perm)
        B = gen.choice([-1.0, 1.0], size=m)
        G = gen.standard_normal(m)
        s = np.sqrt(gen.chisquare(m, size=m))
        S = math.sqrt(m / self.n) * s / np.linalg.norm(G)
        self._params = {k: v.astype(self.dtype) for k, v in (("S", S), ("G", G), ("B", B))}
        if bias:
            self._params["b"] = np.zeros(self.n, dtype=self.dtype)

    @property
    def in_features(self) -> int:
        return self.n

    @property
    def out_features(self) -> int:
        return self.n

    def validate(self, x: Any) -> np.ndarray:
        return _as_input(x, "Fastfood", self.dtype, last=self.n)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        check_features(x, self.n, "Fastfood")
        P, n, m = self._params, self.n, self.m
        x2 = x.reshape(-1, n)
        xb = np.zeros((x2.shape[0], m), dtype=self.dtype)
        xb[:, :n] = x2 * P["B"][:n]
        v = fwht(xb)[:, self.perm]  # Π H B x
        u = fwht(v * P["G"])  # H G Π H B x
        y = (u * P["S"])[:, :n]
        if "b" in P:
            y = y + P["b"]
        return y.reshape(x.shape), (x.shape, x2, v, u)

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        dy = _as_grad(dy, "Fastfood.backward", self.dtype, self._out_shape(cache))
        return self._backward(cache, dy, False)

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return tuple(cache[0])

    def _backward(self, cache: Any, dy: Any, factored: bool) -> tuple[np.ndarray, dict]:
        xshape, x2, v, u = cache
        P, n, m = self._params, self.n, self.m
        dy2 = np.asarray(dy, dtype=self.dtype).reshape(-1, n)
        du = np.zeros((dy2.shape[0], m), dtype=self.dtype)
        du[:, :n] = dy2
        grads = {"S": (du * u).sum(axis=0)}
        du *= P["S"]
        dgv = fwht(du)  # d(G ⊙ v): H is symmetric
        grads["G"] = (dgv * v).sum(axis=0)
        dw = (dgv * P["G"])[:, self._inv_perm]  # Πᵀ
        dbx = fwht(dw)[:, :n]  # d(B ⊙ x)
        grads["B"] = np.zeros(m, dtype=self.dtype)
        grads["B"][:n] = (dbx * x2).sum(axis=0)
        if "b" in P:
            grads["b"] = dy2.sum(axis=0)
        return (dbx * P["B"][:n]).reshape(xshape), grads

    def weight_matrix(self) -> np.ndarray:
        """The dense (n, n) matrix V (for checks).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp.nn as lnn
        >>> layer = lnn.Fastfood(4, bias=False, dtype=np.float64, rng=0)
        >>> x = np.arange(4.0)
        >>> bool(np.allclose(layer.forward(x[None])[0][0], layer.weight_matrix() @ x))
        True
        """
        b = self._params.pop("b", None)
        try:
            y, _ = self._forward(np.eye(self.n, dtype=self.dtype), False, None)
        finally:
            if b is not None:
                self._params["b"] = b
        return np.ascontiguousarray(y.T)

    def weight_matrices(self) -> dict[str, np.ndarray]:
        """``{"W": V}`` (dense, for :func:`lowdisp.nn.weight_matrices`).

        Examples
        --------
        >>> import lowdisp.nn as lnn
        >>> lnn.Fastfood(4, rng=0).weight_matrices()["W"].shape
        (4, 4)
        """
        return {"W": self.weight_matrix()}

    @property
    def n_weights(self) -> int:
        """``3 m`` (S, G, B)."""
        return 3 * self.m

    @property
    def compression(self) -> float:
        """``n² / n_weights``."""
        return self.n * self.n / self.n_weights

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "n": self.n,
            "bias": "b" in self._params,
            "perm_seed": self.perm_seed,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        return f"Fastfood({self.n})"
