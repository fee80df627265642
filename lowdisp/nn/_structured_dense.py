"""Structured affine layers: ``y = x Mᵀ + b`` with M a low-displacement-rank (or other
structured) matrix, trained through the fast products and vjps of :mod:`lowdisp.structured`.

One concept: the layer :class:`StructuredDense` (its structures live in
:mod:`lowdisp.nn._structures`), with the parameter count helpers
:func:`count_params` and :func:`compression_ratio`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_bool, check_int
from lowdisp.nn import _structures as S
from lowdisp.nn._layers import (
    Dense,
    Layer,
    Workspace,
    _as_grad,
    _as_input,
    _check_dtype,
    rows_times_wt,
    weight_grad,
)
from lowdisp.nn._spec import register_layer
from lowdisp.nn._structures import STRUCTURES, check_features

__all__ = ["STRUCTURES", "StructuredDense", "compression_ratio", "count_params"]


@register_layer
class StructuredDense(Layer):
    r"""Affine layer ``y = x Mᵀ + b`` with a structured weight matrix M (out, in).

    Parameters
    ----------
    in_features, out_features : int
    structure : str
        One of :data:`STRUCTURES`:

        ``toeplitz_like``
            Sylvester (Z₁, Z₋₁): ``M = ½ Σ Z₁(g_i) Z₋₁(J h_i)``; 2 r s weights.
        ``hankel_like``
            Sylvester (Z₁ᵀ, Z₋₁): ``M = J · (Toeplitz-like)``; 2 r s.
        ``vandermonde_like``
            Stein (D(v), Z₀ᵀ): ``M = Σ diag(g_i) V(v) L(h_i)ᵀ`` with learned nodes
            ``v`` (initialised U(-0.7, 0.7) as structured-nets); 2 r s + s.
        ``cauchy_like``
            Sylvester (D(s), D(t)): ``M_jk = g_jᵀ h_k / (s_j - t_k)`` with fixed
            nodes ``s_j = j + ½``, ``t_k = k``; 2 r s.
        ``subdiagonal``
            LDR-SD, Stein (A, B'ᵀ) with learned subdiagonals ``A``, ``B``
            (initialised to 1: Z₀); ``corners=True`` also learns the corners
            ``A_corner``, ``B_corner`` (initialised to 0); 2 r s + 2 (s - 1) (+ 2).
        ``tridiagonal``
            LDR-TD, the Krylov sum ``M = Σ K(A, g_i) K(B', h_i)ᵀ`` with learned
            tridiagonals ``A``, ``B`` = ``[lower, main, upper]`` (initialised to
            Z₀); ``corners=True`` also learns the corners ``A[0, s-1]``,
            ``B'[0, s-1]`` (initialised to 0); 2 r s + 2 (3 s - 2) (+ 2).
        ``circulant``
            ``C(c)``; s.
        ``toeplitz``
            ``T(c, r)``, first column ``c``, first row ``[c_0, r]``; 2 s - 1.
        ``low_rank``
            ``U Vᵀ`` with U (out, r), V (in, r); r (in + out).
        ``unconstrained``
            a dense ``W`` (out, in) initialised as :class:`Dense`; in · out.

    rank : int, optional
        Displacement rank r (LDR structures, ``1 <= r <= s``) or the rank of
        ``low_rank`` (``1 <= r <= min(in, out)``); default 1. Structures
        without a rank (circulant, toeplitz, unconstrained) refuse one.
    bias : bool
        Learn ``b`` (initialised to 0).
    corners : bool
        ``structure="subdiagonal"`` or ``"tridiagonal"`` only: learn the
        corners (entry ``[0, s-1]``) of A and B'.
    dtype : {float32, float64}
    rng : seed or Generator, optional

    Notes
    -----
    **Rectangular layers.** The square-operator structures (all but
    ``low_rank`` and ``unconstrained``) tile M with ``p x q`` independent
    square blocks of size ``s = min(in, out)``, ``p = ceil(out / s)``,
    ``q = ceil(in / s)`` (one of them is 1): the input is zero-padded to
    ``q s`` features, block row i computes ``Σ_j M_ij x_j``, and the output
    is truncated to ``out`` features. A square layer is one block and its
    parameters have the shapes of the table; a tiled layer's have two
    leading axes ``(p, q)``.

    **Initialisation** matches :class:`Dense`'s output variance: Dense draws
    ``W ~ U(±sqrt(6/(in+out)))``, entry variance ``σ_W² = 2/(in+out)``, so
    ``E‖W‖_F² = in · out · σ_W²`` and, for inputs of unit variance, every
    output has variance ``in σ_W²``. The generators (``G, H``; ``U, V``;
    ``c, r``) are drawn ``N(0, σ²)`` with σ chosen so that
    ``E‖M‖_F² = in · out · σ_W²`` exactly (the average output variance is
    Dense's; individual outputs may differ, e.g. Toeplitz-like Z₀ rows grow
    with their index). With ``w`` the sum over the kept part of the blocks of
    the per-entry weights below:

    * circulant, toeplitz: ``E M_jk² = σ²``, so ``σ² = σ_W²``;
    * low_rank: ``E M_jk² = r σ⁴``, so ``σ² = σ_W / sqrt(r)``;
    * toeplitz_like, hankel_like: ``E M_jk² = r s σ⁴ / 4`` (each entry is ½
      a sum of s products ``± g h`` over distinct pairs);
    * subdiagonal, tridiagonal (initialised at Z₀, i.e. ``Σ L(g_i) L(h_i)ᵀ``):
      ``E M_jk² = r σ⁴ (min(j, k) + 1)``, for a full block
      ``w = s (s + 1)(2 s + 1) / 6``;
    * vandermonde_like (given the drawn nodes): ``E M_jk² = r σ⁴ Σ_{l <= k} v_j^{2l}``;
    * cauchy_like: ``E M_jk² = r σ⁴ / (s_j - t_k)²``;

    and the bilinear structures take ``σ⁴ = in · out · σ_W² / (r w)``.

    **Gradients** come from the vjps of :mod:`lowdisp.structured` (circulant
    and Toeplitz: real-FFT correlations, Toeplitz through its circulant
    embedding of length ``next_fast_len(2s - 1)``); the dense matrix is never
    formed. LDR-SD corner gradients: relabelling the indices cyclically
    (``P v = roll(v, -1)``) makes the corner of A the last subdiagonal entry
    of ``P A Pᵀ``, and ``P M Pᵀ`` is the LDR-SD matrix of the relabelled
    operators and generators, so one more vjp gives both corner gradients.
    LDR-TD corner gradients (not provided by the vjp): a complex step,
    ``dL/df = Im <dY, M(f + ih) X> / h`` with ``h = 1e-10 max(1, |f|)``, exact
    to rounding since M is a polynomial in f (one complex product per corner).
    The operator parameters (``A``, ``B``, corners, ``v``) are ordinary
    parameters; give them their own learning rate with an optimizer group,
    e.g. ``SGD(lr=1e-3, groups={"*.A*": {"lr": 1e-4}, "*.B*": {"lr": 1e-4}})``.

    The learned Vandermonde nodes start in ``U(-0.7, 0.7)``, inside the unit
    disk (the authors' choice); once training drives some ``|v|`` past 1,
    ``v^(s-1)`` grows fast at large s (float32 at s = 784 holds ``|v| <= 1.12``)
    and a non-representable product raises ``OverflowError`` naming ``max|v|``.
    See ``docs/layers.md``.

    References
    ----------
    V. Sindhwani, T. Sainath, S. Kumar, "Structured transforms for
    small-footprint deep learning", NeurIPS 2015. A. Thomas, A. Gu, T. Dao,
    A. Rudra, C. Ré, "Learning compressed transforms with low displacement
    rank", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> layer = lnn.StructuredDense(8, 8, structure="toeplitz_like", rank=2,
    ...                             dtype=np.float64, rng=0)
    >>> sorted(layer.params()), layer.params()["G"].shape
    (['G', 'H', 'b'], (8, 2))
    >>> y, cache = layer.forward(np.ones((3, 8)))
    >>> dx, grads = layer.backward(cache, np.ones((3, 8)))
    >>> bool(np.allclose(y, np.ones((3, 8)) @ layer.weight_matrix().T))
    True
    >>> lnn.count_params(layer), layer.compression
    (40, 2.0)
    """

    #: per-example statistics hook (lowdisp.nn._curvature): called as ``stats(x, dy_rows)``
    _stats: Any = None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        structure: str = "toeplitz_like",
        rank: int | None = None,
        bias: bool = True,
        corners: bool = False,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = "StructuredDense"
        self.in_features = check_int(in_features, "in_features", where=where, low=1)
        self.out_features = check_int(out_features, "out_features", where=where, low=1)
        bias = check_bool(bias, "bias", where=where)
        self.dtype = _check_dtype(dtype, where)
        ni, no = self.in_features, self.out_features
        self.structure, self.rank, self.corners = S.check_structure(
            structure, rank, corners, ni, no, where
        )
        self._t = S.Tiling(self.structure, ni, no, self.corners)
        gen = as_rng(rng, where=where)
        # Dense's entry variance (Glorot uniform): the same mean output variance
        self._params = S.init_params(self._t, self.rank, 2.0 / (ni + no), gen, self.dtype)
        if bias:
            self._params["b"] = np.zeros(no, dtype=self.dtype)
        self._ws = Workspace()  # unconstrained: Dense's reused buffers

    @property
    def tiled(self) -> bool:
        """Whether the layer is made of more than one square block."""
        return self._t.tiled

    # -- forward / backward ------------------------------------------------
    def validate(self, x: Any) -> np.ndarray:
        return _as_input(x, "StructuredDense", self.dtype, last=self.in_features)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        check_features(x, self.in_features, "StructuredDense")
        x2 = x.reshape(-1, self.in_features)
        if self.structure == "unconstrained":  # the product of Dense
            y, cache = rows_times_wt(x2, self._params["W"], self._ws), (x2, None)
        else:
            y, cache = S.apply(self._t, self._params, x2)
        b = self._params.get("b")
        if b is not None:
            y = y + b
        return y.reshape(*x.shape[:-1], self.out_features), (x.shape, cache)

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        dy = _as_grad(dy, "StructuredDense.backward", self.dtype, self._out_shape(cache))
        return self._backward(cache, dy, False)

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return (*cache[0][:-1], self.out_features)

    def _backward(self, cache: Any, dy: Any, factored: bool) -> tuple[np.ndarray, dict]:
        xshape, inner = cache
        dy2 = np.asarray(dy, dtype=self.dtype).reshape(-1, self.out_features)
        if self.structure == "unconstrained":
            grads = self._param_grads(cache, dy2)
            return (dy2 @ self._params["W"]).reshape(xshape), grads
        if self._stats is not None:  # the input rows are inner[0] (zero-padded when tiled)
            self._stats(inner[0][:, : self.in_features].reshape(xshape), dy2)
        dx, grads = S.vjp(self._t, self._params, inner, dy2)
        if "b" in self._params:
            grads["b"] = dy2.sum(axis=0)
        return np.ascontiguousarray(dx).reshape(xshape), grads

    def _param_grads(self, cache: Any, dy: Any) -> dict[str, np.ndarray]:
        if self.structure != "unconstrained":  # the structured vjps form dx on the way
            return self._backward(cache, dy, False)[1]
        xshape, (x2, _) = cache
        dy2 = np.asarray(dy, dtype=self.dtype).reshape(-1, self.out_features)
        if self._stats is not None:
            self._stats(x2.reshape(xshape), dy2)
        grads = {"W": weight_grad(dy2, x2, self._ws)}
        if "b" in self._params:
            grads["b"] = dy2.sum(axis=0)
        return grads

    # -- inspection --------------------------------------------------------
    def weight_matrix(self) -> np.ndarray:
        """The dense (out, in) matrix M (for checks and analysis; O(in · out) memory).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp.nn as lnn
        >>> layer = lnn.StructuredDense(3, 3, structure="circulant", dtype=np.float64, rng=0)
        >>> c = layer.params()["c"]
        >>> bool(np.allclose(layer.weight_matrix()[:, 0], c))
        True
        """
        return S.weight_matrix(self._t, self._params, self.dtype)

    def weight_matrices(self) -> dict[str, Any]:
        """``{"W": M}`` for :func:`lowdisp.nn.weight_matrices` and run snapshots.

        A square layer of an LDR family (also circulant and Toeplitz) gives its
        :class:`~lowdisp.structured.LDRMatrix` (not densified); tiled,
        ``low_rank`` and ``unconstrained`` layers give the dense (out, in) array.

        Examples
        --------
        >>> import lowdisp.nn as lnn
        >>> lnn.StructuredDense(8, 8, structure="subdiagonal", rng=0).weight_matrices()["W"]
        <8x8 LDRMatrix family=subdiagonal kind=stein rank=1 dtype=float32>
        """
        if self.tiled or self.structure in ("low_rank", "unconstrained"):
            return {"W": self.weight_matrix()}
        import lowdisp.structured as ls

        P = self._params
        if self.structure == "circulant":
            return {"W": ls.circulant(P["c"])}
        if self.structure == "toeplitz":
            return {"W": ls.toeplitz(P["c"], np.concatenate([P["c"][:1], P["r"]]))}
        return {"W": self._t.st.build(self._t.block(P, 0, 0), self.corners)}

    @property
    def n_weights(self) -> int:
        """Number of parameters of M (the bias excluded)."""
        return sum(v.size for k, v in self._params.items() if k != "b")

    @property
    def compression(self) -> float:
        """``in · out / n_weights``: the dense layer's weight count over this layer's."""
        return self.in_features * self.out_features / self.n_weights

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "structure": self.structure,
            "rank": self.rank,
            "bias": "b" in self._params,
            "corners": self.corners,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        rk = "" if self.rank is None else f", rank={self.rank}"
        return (
            f"StructuredDense({self.in_features}, {self.out_features}, "
            f"structure={self.structure!r}{rk})"
        )


# ---------------------------------------------------------------------------
# parameter counts
# ---------------------------------------------------------------------------


def count_params(model: Any) -> int:
    """The number of scalar parameters of a layer or model (every entry of ``params()``).

    Parameters
    ----------
    model : Layer, cell or dict of arrays

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> net = lnn.Sequential([lnn.StructuredDense(784, 784, structure="toeplitz_like", rank=4,
    ...                                          bias=False, rng=0),
    ...                       lnn.ReLU(), lnn.Dense(784, 10, rng=0)])
    >>> lnn.count_params(net)  # 2 r n + 784 * 10 + 10
    14122
    """
    params = model if isinstance(model, dict) else getattr(model, "params", None)
    if params is None:
        raise TypeError(
            f"count_params: model must be a lowdisp.nn layer or a dict of arrays; "
            f"got {type(model).__name__}"
        )
    params = params if isinstance(params, dict) else params()
    return int(sum(np.asarray(v).size for v in params.values()))


def compression_ratio(layer: Any) -> float:
    """The dense layer's weight count over ``layer``'s: ``in · out / (weights of layer)``.

    Biases are excluded on both sides. A :class:`Dense` layer gives 1.

    Parameters
    ----------
    layer : StructuredDense, Dense, DiagonalCirculant or Fastfood

    Returns
    -------
    float

    Examples
    --------
    >>> import lowdisp.nn as lnn
    >>> layer = lnn.StructuredDense(784, 784, structure="subdiagonal", rng=0)
    >>> layer.n_weights, round(lnn.compression_ratio(layer), 2)  # 2 r n + 2 (n - 1), r = 1
    (3134, 196.13)
    """
    if isinstance(layer, Dense):
        return 1.0
    comp = getattr(layer, "compression", None)
    if not isinstance(comp, float):
        raise TypeError(
            f"compression_ratio: layer must be a Dense, StructuredDense, DiagonalCirculant "
            f"or Fastfood layer; got {type(layer).__name__}"
        )
    return comp
