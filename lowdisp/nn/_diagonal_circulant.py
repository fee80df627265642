"""Deep diagonal-circulant layers (Araujo et al. 2019): products of ``diag(d) C(c)`` factors."""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_bool, check_int, check_option, check_real
from lowdisp.nn._layers import Layer, _as_grad, _as_input, _check_dtype
from lowdisp.nn._spec import register_layer
from lowdisp.nn._structures import check_features, circ_apply, circ_vjp

__all__ = ["DiagonalCirculant"]

#: ``init=`` names
INITS = ("identity", "gaussian")


@register_layer
class DiagonalCirculant(Layer):
    r"""A stack of ``depth`` diagonal-circulant factors ``h ← φ(d_k ⊙ (C(c_k) h) + b_k)``.

    Parameters
    ----------
    n : int
        Features in and out (square; compose with :class:`Dense` to change size).
    depth : int
        Number of factors ``diag(d_k) C(c_k)`` (>= 1).
    relu_every : int
        ``φ`` is a (leaky) ReLU after every ``relu_every``-th factor except the
        last (Araujo et al. study a ReLU after every factor, every second and
        every third); 0 (default): no activation inside the layer, which is
        then the affine map ``x ↦ x Mᵀ + β`` with ``M = Π_k diag(d_k) C(c_k)``.
    slope : float
        Negative-side slope of ``φ``: ``φ(z) = max(z, slope z)``, in [0, 1)
        (0, the default: a plain ReLU). Araujo et al. (ECAI 2020) train their
        DCNNs with leaky ReLUs of slope 0.5 after every factor (their
        CIFAR-10 comparison); a larger slope makes deep stacks easier to train.
    bias : bool
        A bias ``b_k`` after each factor (initialised to 0).
    init : {"identity", "gaussian"}
        ``"identity"`` (the authors' code, ``youtube8m-circulant``):
        ``c = e_0 + N(0, 10⁻⁶)`` with ``c_0 = 1 + N(0, 10⁻⁴)`` and Rademacher
        ``d ∈ {±1}``, so every factor starts near a signed identity and deep
        stacks neither explode nor vanish. ``"gaussian"``: Rademacher ``d``
        and ``c ~ N(0, 1/n)``, so ``E‖diag(d) C(c) x‖² = ‖x‖²`` for every x
        (the entries of ``C(c)`` have variance 1/n, Dense's square-layer
        output variance). This is the authors' CIFAR-10 code
        (``araujoalexandre/neuralnet_v1``, ``code/models/cifar10.py``:
        ``stddev = alpha / sqrt(n_in + n_out)`` with ``alpha = 1.414`` in
        ``config/config1_circulant.yaml``); the ECAI 2020 text states
        ``σ = sqrt(2/n)``, the He variance for a ReLU after every factor.
    dtype : {float32, float64}
    rng : seed or Generator, optional

    Notes
    -----
    Parameters ``d``, ``c`` (and ``b``) have shape ``(depth, n)``: ``2 n depth``
    weights against ``n²`` for a dense layer. Each factor costs one real FFT
    pair per row; backward: ``dx = C(c)ᵀ (d ⊙ δ)`` (a correlation),
    ``dc = Σ_b corr(d ⊙ δ, h)`` summed in the frequency domain, ``dd = Σ_b δ ⊙ C(c) h``.

    References
    ----------
    A. Araujo, B. Negrevergne, Y. Chevaleyre, J. Atif, "On the expressive power of
    deep fully circulant neural networks", arXiv:1901.10255 (2019); "Understanding
    and training deep diagonal circulant neural networks", ECAI 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> layer = lnn.DiagonalCirculant(8, depth=3, relu_every=2, dtype=np.float64, rng=0)
    >>> sorted(layer.params()), layer.params()["c"].shape
    (['b', 'c', 'd'], (3, 8))
    >>> y, cache = layer.forward(np.ones((4, 8)))
    >>> dx, grads = layer.backward(cache, np.ones((4, 8)))
    >>> layer.n_weights, layer.compression
    (48, 1.3333333333333333)
    """

    def __init__(
        self,
        n: int,
        *,
        depth: int,
        relu_every: int = 0,
        slope: float = 0.0,
        bias: bool = True,
        init: str = "identity",
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = "DiagonalCirculant"
        self.n = check_int(n, "n", where=where, low=1)
        self.depth = check_int(depth, "depth", where=where, low=1)
        self.relu_every = check_int(relu_every, "relu_every", where=where, low=0)
        self.slope = check_real(slope, "slope", where=where, low=0, high=1, high_open=True)
        bias = check_bool(bias, "bias", where=where)
        self.init = check_option(init, "init", INITS, where=where)
        self.dtype = _check_dtype(dtype, where)
        gen = as_rng(rng, where=where)
        n, k = self.n, self.depth
        d = gen.choice([-1.0, 1.0], size=(k, n))
        if self.init == "identity":
            c = 1e-3 * gen.standard_normal((k, n))
            c[:, 0] = 1.0 + 1e-2 * gen.standard_normal(k)
        else:
            c = gen.standard_normal((k, n)) / np.sqrt(n)
        self._params = {"d": d.astype(self.dtype), "c": c.astype(self.dtype)}
        if bias:
            self._params["b"] = np.zeros((k, n), dtype=self.dtype)

    @property
    def in_features(self) -> int:
        return self.n

    @property
    def out_features(self) -> int:
        return self.n

    def _relu_after(self, k: int) -> bool:
        return self.relu_every > 0 and (k + 1) % self.relu_every == 0 and k + 1 < self.depth

    def validate(self, x: Any) -> np.ndarray:
        return _as_input(x, "DiagonalCirculant", self.dtype, last=self.n)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        check_features(x, self.n, "DiagonalCirculant")
        P = self._params
        h = x.reshape(-1, self.n)
        hs = []  # the input of each factor, and its circulant product
        for k in range(self.depth):
            u = circ_apply(P["c"][k], h)
            hs.append((h, u))
            h = u * P["d"][k]
            if "b" in P:
                h += P["b"][k]
            if self._relu_after(k):
                h = np.maximum(h, self.slope * h) if self.slope else np.maximum(h, 0)
        return h.reshape(x.shape), (x.shape, hs, h)

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        dy = _as_grad(dy, "DiagonalCirculant.backward", self.dtype, self._out_shape(cache))
        return self._backward(cache, dy, False)

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return tuple(cache[0])

    def _backward(self, cache: Any, dy: Any, factored: bool) -> tuple[np.ndarray, dict]:
        xshape, hs, out = cache
        P = self._params
        g = np.asarray(dy, dtype=self.dtype).reshape(-1, self.n)
        dd = np.empty_like(P["d"])
        dc = np.empty_like(P["c"])
        db = np.empty_like(P["d"]) if "b" in P else None
        post = out  # the output of factor k (after its activation)
        for k in range(self.depth - 1, -1, -1):
            h, u = hs[k]
            if self._relu_after(k):  # φ keeps the sign, so post > 0 marks the positive side
                g = g * np.where(post > 0, 1, self.slope).astype(self.dtype, copy=False)
            if db is not None:
                db[k] = g.sum(axis=0)
            dd[k] = (g * u).sum(axis=0)
            g, dc[k] = circ_vjp(P["c"][k], h, g * P["d"][k])
            post = h
        grads = {"d": dd, "c": dc}
        if db is not None:
            grads["b"] = db
        return g.reshape(xshape), grads

    def weight_matrix(self) -> np.ndarray:
        """The product ``M = Π_k diag(d_k) C(c_k)`` (meaningful when ``relu_every = 0``).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp.nn as lnn
        >>> layer = lnn.DiagonalCirculant(4, depth=2, bias=False, dtype=np.float64, rng=0)
        >>> x = np.arange(4.0)
        >>> bool(np.allclose(layer.forward(x[None])[0][0], layer.weight_matrix() @ x))
        True
        """
        import scipy.linalg as sla

        M = np.eye(self.n, dtype=self.dtype)
        for k in range(self.depth):
            M = (self._params["d"][k][:, None] * sla.circulant(self._params["c"][k])) @ M
        return M

    def weight_matrices(self) -> dict[str, np.ndarray]:
        """``{"W": M}`` (the product, ``relu_every = 0``) or the factors
        ``{"W0": diag(d_0) C(c_0), ...}`` (with ReLUs between them), dense.

        Examples
        --------
        >>> import lowdisp.nn as lnn
        >>> sorted(lnn.DiagonalCirculant(4, depth=2, relu_every=1, rng=0).weight_matrices())
        ['W0', 'W1']
        """
        if self.relu_every == 0:
            return {"W": self.weight_matrix()}
        import scipy.linalg as sla

        P = self._params
        return {f"W{k}": P["d"][k][:, None] * sla.circulant(P["c"][k]) for k in range(self.depth)}

    @property
    def n_weights(self) -> int:
        """Number of parameters of the factors (biases excluded): ``2 n depth``."""
        return 2 * self.n * self.depth

    @property
    def compression(self) -> float:
        """``n² / n_weights``."""
        return self.n * self.n / self.n_weights

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "n": self.n,
            "depth": self.depth,
            "relu_every": self.relu_every,
            "slope": self.slope,
            "bias": "b" in self._params,
            "init": self.init,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        slope = f", slope={self.slope:g}" if self.slope else ""
        return (
            f"DiagonalCirculant({self.n}, depth={self.depth}, relu_every={self.relu_every}{slope})"
        )
