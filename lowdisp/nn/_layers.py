"""Stateless layers: ``forward(x, *, train) -> (y, cache)``, ``backward(cache, dy) -> (dx, grads)``.

A layer owns a dict of parameter arrays (``params()``, keyed by name; containers
prefix their children's names with ``"<child>."``). ``forward`` returns the
output and a cache (a plain value, never stored on the layer);
``backward`` returns the input gradient and a dict of parameter gradients
keyed exactly like ``params()``. Optimizers update the arrays of ``params()``
in place, so the layer always sees the current values.

The public ``forward`` validates its input; containers call the private
``_forward`` of their children, which does not (validate at the door, compute
inside). :class:`Sequential` checks that each child's input has the number of
features that child expects and names the child (its path) when it does not.

Input contract of every layer: any array_like of real numbers (``np.matrix``
and other ndarray subclasses are converted to plain arrays; masked arrays are
refused, fill them explicitly), cast to the layer's ``dtype`` (a float32
layer computes and returns float32). A batch of zero rows is valid: ``forward``
returns a ``(0, ..., out)`` result and ``backward`` zero parameter gradients.
The recurrent layer is the exception: it needs at least one time step and one
sequence (see :class:`lowdisp.nn.RNN`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lowdisp._validation import (
    as_plain_ndarray,
    as_rng,
    check_bool,
    check_dtype,
    check_int,
    check_option,
    check_real,
)
from lowdisp.nn._modrelu import modrelu_backward, modrelu_forward

__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "Embedding",
    "Layer",
    "ModReLU",
    "OneHot",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: row block of the tall-skinny Dense products
_ROWS = 256
#: OpenBLAS multiplies without packing when M·N·K <= 10⁶ (its small-matrix path)
_SMALL_GEMM = 1_000_000


def _check_dtype(dtype: Any, where: str) -> np.dtype:
    """A layer's ``dtype`` option: float32 or float64 (``TypeError`` otherwise)."""
    return check_dtype(dtype, _FLOATS, where=where)


def _as_input(
    x: Any,
    where: str,
    dtype: np.dtype,
    *,
    last: int | None,
    ndim=None,
    name: str = "x",
    finite: bool = True,
) -> np.ndarray:
    """Validate a float input whose last axis has size ``last`` and cast it to ``dtype``."""
    x = as_plain_ndarray(x, name, where=where)
    try:
        arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {name} must be array_like; got {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {name} must hold real numbers; got dtype {arr.dtype}")
    if ndim is not None and arr.ndim not in ndim:
        want = " or ".join(str(d) for d in ndim)
        raise ValueError(f"{where}: {name} must have {want} dimensions; got shape {arr.shape}")
    if arr.ndim == 0:
        raise ValueError(f"{where}: {name} must have at least 1 dimension; got a scalar")
    if last is not None and arr.shape[-1] != last:
        raise ValueError(
            f"{where}: {name} must have {last} features on its last axis; got shape {arr.shape}"
        )
    arr = arr.astype(dtype, copy=False)
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{where}: {name} must be finite; got NaN/Inf entries")
    return arr


def _as_tokens(x: Any, where: str, vocab: int) -> np.ndarray:
    x = as_plain_ndarray(x, "x", where=where)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: x must be array_like; got {type(x).__name__}") from exc
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{where}: x must hold integer token ids; got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise ValueError(
            f"{where}: token ids must be in [0, {vocab - 1}]; got range [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.intp, copy=False)


def _as_grad(dy: Any, where: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Validate an output cotangent ``dy``: real numbers of exactly ``shape``, cast to ``dtype``."""
    arr = _as_input(dy, where, dtype, last=None, name="dy", finite=False)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{where}: dy must have the shape of the forward output {tuple(shape)}; got {arr.shape}"
        )
    return arr


class Workspace:
    """Reusable scratch buffers (private): avoids page-faulting fresh multi-MB arrays
    on every step.

    Ownership is explicit: :meth:`get` hands out a buffer and it stays lent until
    its owner says it is done with it. Only the trainer does that: it calls
    :meth:`begin` before a training step and :meth:`release` after it (when the
    step's outputs, caches and gradients are dead), so the next step reuses the
    buffers. Outside a trainer's step nothing is ever released and every call gets
    fresh arrays, which then belong to the caller (its outputs and caches), so
    reuse can never overwrite data someone still holds.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}
        self._free: set[str] = set()  # names whose buffer may be handed out again
        self._lent: set[str] = set()  # names handed out since begin()

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        arr = self._bufs.get(name)
        if arr is None or name not in self._free or arr.shape != shape or arr.dtype != dtype:
            arr = self._bufs[name] = np.empty(shape, dtype=dtype)
        self._free.discard(name)
        self._lent.add(name)
        return arr

    def begin(self) -> None:
        """Start a block whose buffers the caller will :meth:`release` at its end."""
        self._lent.clear()

    def release(self) -> None:
        """The buffers handed out since :meth:`begin` are dead: reuse them."""
        self._free |= self._lent
        self._lent.clear()

    def __deepcopy__(self, memo: dict) -> Workspace:
        return Workspace()


def _workspaces(*roots: Any) -> list[Workspace]:
    """The workspaces held by ``roots`` (layers, cells, losses) and the lowdisp.nn
    objects they hold (a Sequential's layers, an RNN's cell, ...)."""
    out: list[Workspace] = []
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, Workspace):
            out.append(o)
        elif isinstance(o, list | tuple):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif type(o).__module__.startswith("lowdisp.nn.") and hasattr(o, "__dict__"):
            stack.extend(vars(o).values())
    return out


class _Factored:
    """A cotangent ``a @ b`` kept as its two factors (private).

    ``a`` has shape ``(T, B, k)``, ``b`` ``(k, n)``. A :class:`Dense` readout
    hands its input gradient ``dy W`` in this form to a layer that declares
    ``takes_factored_grad`` (the recurrent layer), which forms it a block of
    time steps at a time while the block is in cache, instead of a
    ``(T, B, n)`` array written to and read back from memory.
    """

    __slots__ = ("a", "b")

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a = a
        self.b = b

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.a.shape[:-1], self.b.shape[1])

    def block(self, lo: int, hi: int, out: np.ndarray) -> np.ndarray:
        """Steps ``lo:hi`` of the product into ``out`` ``(hi - lo, B, n)``."""
        k, n = self.b.shape
        np.matmul(self.a[lo:hi].reshape(-1, k), self.b, out=out.reshape(-1, n))
        return out

    def materialize(self) -> np.ndarray:
        return self.a @ self.b


class Layer:
    """Base class: a layer with parameters in a dict and a pure forward/backward.

    Subclasses implement ``_forward(x, train, rng)`` and ``backward``; the
    public ``forward`` validates ``x`` first.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Tanh
    >>> y, cache = Tanh().forward(np.zeros((2, 3)))
    >>> y.shape
    (2, 3)
    """

    #: dtype of the parameters and of floating outputs.
    dtype: np.dtype = np.dtype(np.float64)
    #: ``backward`` accepts a :class:`_Factored` cotangent (private protocol of Sequential)
    takes_factored_grad: bool = False

    def params(self) -> dict[str, np.ndarray]:
        """The parameter arrays (the live arrays, keyed by name)."""
        return dict(getattr(self, "_params", {}))

    def manifolds(self) -> dict[str, Any]:
        """Parameters that live on a manifold and take a Riemannian step: ``{path: map}``."""
        return {}

    def validate(self, x: Any) -> Any:
        """Check and convert the input (override per layer)."""
        return _as_input(x, type(self).__name__, self.dtype, last=None)

    def forward(self, x: Any, *, train: bool = True, rng: Any = None) -> tuple[Any, Any]:
        """Validate ``x`` and return ``(y, cache)``."""
        train = check_bool(train, "train", where=f"{type(self).__name__}.forward")
        return self._forward(self.validate(x), train, rng)

    def _forward(self, x: Any, train: bool, rng: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
        """Return ``(dx, grads)`` for the output cotangent ``dy``."""
        raise NotImplementedError

    def _backward(self, cache: Any, dy: Any, factored: bool) -> tuple[Any, dict[str, np.ndarray]]:
        """``backward`` inside a container; ``factored``: the layer before takes a
        :class:`_Factored` input gradient."""
        return self.backward(cache, dy)

    def _param_grads(self, cache: Any, dy: Any) -> dict[str, np.ndarray]:
        """The parameter gradients of ``_backward`` without the input gradient (the
        first layer of a model, whose input is data); layers override it to skip
        the work of ``dx``."""
        return self._backward(cache, dy, False)[1]

    def _out_shape(self, cache: Any) -> tuple[int, ...] | None:
        """Shape of the forward output that produced ``cache`` (``None``: unknown)."""
        return None

    def get_config(self) -> dict[str, Any] | None:
        """The constructor arguments that rebuild this layer, as a JSON-able dict.

        ``{"class": name, **arguments}`` (dtypes as names, containers with
        their children's configs). The base class returns ``None``: a custom
        layer without a configuration is recorded in checkpoints by its class
        name and ``repr`` only, and :func:`lowdisp.nn.load` cannot rebuild it
        from the file alone (pass ``trainer=``). Parameters are not part of
        the config.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.nn import Dense, Layer
        >>> Dense(3, 2, dtype=np.float64).get_config()
        {'class': 'Dense', 'in_features': 3, 'out_features': 2, 'bias': True, 'dtype': 'float64'}
        >>> Layer().get_config() is None
        True
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------


def rows_times_wt(x2: np.ndarray, W: np.ndarray, ws: Workspace) -> np.ndarray:
    """``x2 @ W.T`` for rows ``x2`` (m, in) and a weight ``W`` (out, in) (private).

    For a float32 ``W`` with ``out >= 1024`` and few rows (``8 m <= out``) it is
    formed as ``(W x2ᵀ)ᵀ`` in reused buffers: OpenBLAS runs that (out, in) x
    (in, m) product 1.1-1.3x faster than (m, in) x (in, out)ᵀ, copy included
    (one thread, m = 50: 1.75 vs 2.31 ms at out = in = 1024, 26.8 vs 34.5 ms at
    4096; no gain at 784 or in float64, where the plain product is kept).
    """
    m, (out, _) = x2.shape[0], W.shape
    if W.dtype != np.float32 or out < 1024 or 8 * m > out:
        return x2 @ W.T
    yt = ws.get("yT", (out, m), W.dtype)
    np.matmul(W, x2.T, out=yt)
    y = ws.get("y", (m, out), W.dtype)
    np.copyto(y, yt.T)
    return y


def weight_grad(dy2: np.ndarray, x2: np.ndarray, ws: Workspace) -> np.ndarray:
    """``dy2ᵀ x2`` (out, in), the weight gradient of ``y = x Wᵀ``, in a reused buffer
    (a fresh weight-sized array every step costs its page faults) (private)."""
    dW = ws.get("dW", (dy2.shape[1], x2.shape[1]), dy2.dtype)
    return np.matmul(dy2.T, x2, out=dW)


class Dense(Layer):
    """Affine layer ``y = x Wᵀ + b`` applied to the last axis.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last axis of the input and the output.
    bias : bool
        Learn the bias ``b``.
    dtype : {float32, float64}
    rng : seed or Generator, optional
        Glorot-uniform initialisation of ``W`` (shape ``(out, in)``); ``b = 0``.

    Notes
    -----
    Any leading axes are flattened into one GEMM, so a readout over a whole
    sequence ``(T, B, n)`` is a single product. Backward:
    ``dx = dy W``, ``dW = dyᵀ x``, ``db = Σ dy``. When a curvature recorder is
    attached (``KFAC``, ``EKFAC``, :func:`lowdisp.nn.fisher_matrix`), the
    backward pass also hands it the input and the output cotangent rows, the
    per-example statistics ``(ã, g)`` of the rank-one per-example gradients.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Dense
    >>> layer = Dense(3, 2, dtype=np.float64, rng=0)
    >>> y, cache = layer.forward(np.ones((4, 3)))
    >>> dx, grads = layer.backward(cache, np.ones((4, 2)))
    >>> sorted(grads), dx.shape
    (['W', 'b'], (4, 3))
    """

    #: per-example statistics hook: a recorder called as ``stats(x, dy_rows)`` by the
    #: backward pass (set by KFAC/EKFAC and the Fisher objects; see lowdisp.nn._curvature)
    _stats: Any = None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = "Dense"
        self.in_features = check_int(in_features, "in_features", where=where, low=1)
        self.out_features = check_int(out_features, "out_features", where=where, low=1)
        bias = check_bool(bias, "bias", where=where)
        self.dtype = _check_dtype(dtype, where)
        gen = as_rng(rng, where=where)
        lim = np.sqrt(6.0 / (self.in_features + self.out_features))
        self._params = {
            "W": gen.uniform(-lim, lim, (self.out_features, self.in_features)).astype(self.dtype)
        }
        if bias:
            self._params["b"] = np.zeros(self.out_features, dtype=self.dtype)
        self._ws = Workspace()

    def validate(self, x: Any) -> np.ndarray:
        return _as_input(x, "Dense", self.dtype, last=self.in_features)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        W = self._params["W"]
        b = self._params.get("b")
        x2 = x.reshape(-1, self.in_features)
        m = x2.shape[0]
        if m > 2 * _ROWS and self.out_features <= 32:
            # tall-skinny product (a readout over a whole sequence): OpenBLAS runs it
            # up to 2.5x faster in row blocks that stay in cache (measured, float64)
            # and below the small-matrix bound (n = 512, 9 outputs: 1.6x f32 / 3.0x f64)
            WT = np.ascontiguousarray(W.T)
            y = np.empty((m, self.out_features), dtype=self.dtype)
            R = min(_ROWS, max(8, _SMALL_GEMM // (self.in_features * self.out_features)))
            for i in range(0, m, R):
                blk = y[i : i + R]
                np.matmul(x2[i : i + R], WT, out=blk)
                if b is not None:
                    blk += b
        else:
            y = rows_times_wt(x2, W, self._ws)
            if b is not None:
                y += b
        return y.reshape(*x.shape[:-1], self.out_features), x

    def backward(self, cache: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        dy = _as_grad(dy, "Dense.backward", self.dtype, self._out_shape(cache))
        return self._backward(cache, dy, False)

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return (*cache.shape[:-1], self.out_features)

    def _param_grads(self, cache: np.ndarray, dy: Any) -> dict[str, np.ndarray]:
        x = cache
        dy2 = np.asarray(dy, dtype=self.dtype).reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        if self._stats is not None:  # curvature statistics (lowdisp.nn._curvature)
            self._stats(x, dy2)
        grads = {"W": weight_grad(dy2, x2, self._ws)}
        if "b" in self._params:
            grads["b"] = dy2.sum(axis=0)
        return grads

    def _backward(self, cache: np.ndarray, dy: Any, factored: bool) -> tuple[Any, dict]:
        x = cache
        W = self._params["W"]
        dy = np.asarray(dy, dtype=self.dtype)
        dy2 = dy.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        grads = self._param_grads(x, dy2)
        if factored and x.ndim == 3 and self.out_features < self.in_features:
            # a readout over a sequence: the recurrent layer forms dy W block by block
            return _Factored(dy.reshape(*x.shape[:-1], self.out_features), W), grads
        dx = self._ws.get("dx", (x2.shape[0], self.in_features), self.dtype)
        np.matmul(dy2, W, out=dx)
        return dx.reshape(x.shape), grads

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": "b" in self._params,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"


# ---------------------------------------------------------------------------
# Token inputs
# ---------------------------------------------------------------------------


class Embedding(Layer):
    """Token ids ``(...)`` to vectors ``(..., dim)`` by a row lookup of ``E``.

    Parameters
    ----------
    vocab, dim : int
        Number of tokens and size of each vector.
    dtype : {float32, float64}
    rng : seed or Generator, optional
        ``E ~ N(0, 1/dim)``.

    Notes
    -----
    The gradient ``dE[k] = Σ_{x_i = k} dy_i`` is computed as one GEMM with
    the one-hot matrix (much faster than ``np.add.at``); ``dx`` is ``None``
    (integer input has no gradient).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Embedding
    >>> emb = Embedding(10, 4, dtype=np.float64, rng=0)
    >>> y, cache = emb.forward(np.array([[1, 2], [3, 9]]))
    >>> y.shape
    (2, 2, 4)
    """

    def __init__(self, vocab: int, dim: int, *, dtype: Any = np.float32, rng: Any = None) -> None:
        self.vocab = check_int(vocab, "vocab", where="Embedding", low=1)
        self.dim = check_int(dim, "dim", where="Embedding", low=1)
        self.dtype = _check_dtype(dtype, "Embedding")
        gen = as_rng(rng, where="Embedding")
        self._params = {
            "E": (gen.standard_normal((self.vocab, self.dim)) / np.sqrt(self.dim)).astype(
                self.dtype
            )
        }

    def validate(self, x: Any) -> np.ndarray:
        return _as_tokens(x, "Embedding", self.vocab)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        return self._params["E"][x], x

    def backward(self, cache: np.ndarray, dy: np.ndarray) -> tuple[None, dict]:
        x = cache
        dy2 = _as_grad(dy, "Embedding.backward", self.dtype, (*x.shape, self.dim))
        dy2 = dy2.reshape(-1, self.dim)
        return None, {"E": onehot_transpose_matmul(x.reshape(-1), self.vocab, dy2)}

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return (*cache.shape, self.dim)

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "vocab": self.vocab,
            "dim": self.dim,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        return f"Embedding({self.vocab}, {self.dim})"


def onehot_transpose_matmul(ids: np.ndarray, vocab: int, D: np.ndarray) -> np.ndarray:
    """``onehot(ids)ᵀ D`` (shape ``(vocab, D.shape[1])``) as one GEMM (private helper)."""
    oh = np.zeros((ids.shape[0], vocab), dtype=D.dtype)
    oh[np.arange(ids.shape[0]), ids] = 1
    return oh.T @ D


class OneHot(Layer):
    """Token ids ``(...)`` to one-hot vectors ``(..., vocab)`` (no parameters).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import OneHot
    >>> OneHot(3, dtype=np.float64).forward(np.array([0, 2]))[0]
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """

    def __init__(self, vocab: int, *, dtype: Any = np.float32) -> None:
        self.vocab = check_int(vocab, "vocab", where="OneHot", low=1)
        self.dtype = _check_dtype(dtype, "OneHot")

    def validate(self, x: Any) -> np.ndarray:
        return _as_tokens(x, "OneHot", self.vocab)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        return np.eye(self.vocab, dtype=self.dtype)[x], x.shape

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[None, dict]:
        if cache is not None:
            _as_grad(dy, "OneHot.backward", self.dtype, (*cache, self.vocab))
        return None, {}

    def _out_shape(self, cache: Any) -> tuple[int, ...] | None:
        return None if cache is None else (*cache, self.vocab)

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "vocab": self.vocab, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"OneHot({self.vocab})"


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


class Activation(Layer):
    """Element-wise activation by name: ``"tanh"``, ``"relu"``, ``"sigmoid"``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Activation
    >>> Activation("relu", dtype=np.float64).forward(np.array([-1.0, 2.0]))[0]
    array([0., 2.])
    """

    KINDS = ("tanh", "relu", "sigmoid")

    def __init__(self, kind: str, *, dtype: Any = np.float32) -> None:
        self.kind = check_option(kind, "kind", self.KINDS, where="Activation")
        self.dtype = _check_dtype(dtype, "Activation")

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        if self.kind == "tanh":
            y = np.tanh(x)
        elif self.kind == "relu":
            y = np.maximum(x, 0)
        else:
            y = _sigmoid(x)
        return y, (x, y)

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        x, y = cache
        dy = _as_grad(dy, f"{type(self).__name__}.backward", self.dtype, y.shape)
        if self.kind == "tanh":
            dx = dy * (1 - y * y)
        elif self.kind == "relu":
            dx = dy * (x > 0)
        else:
            dx = dy * y * (1 - y)
        return dx, {}

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return cache[1].shape

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"class": type(self).__name__}
        if type(self) is Activation:  # Tanh, ReLU, Sigmoid fix the kind
            cfg["kind"] = self.kind
        cfg["dtype"] = self.dtype.name
        return cfg

    def __repr__(self) -> str:
        return f"Activation({self.kind!r})"


def _sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    from scipy.special import expit

    return expit(x, out=out) if out is not None else expit(x)


class Tanh(Activation):
    """``y = tanh(x)``; ``dx = dy (1 - y²)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Tanh
    >>> float(Tanh(dtype=np.float64).forward(np.array([0.0]))[0][0])
    0.0
    """

    def __init__(self, *, dtype: Any = np.float32) -> None:
        super().__init__("tanh", dtype=dtype)


class ReLU(Activation):
    """``y = max(x, 0)``; ``dx = dy [x > 0]``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import ReLU
    >>> ReLU(dtype=np.float64).forward(np.array([-1.0, 1.0]))[0]
    array([0., 1.])
    """

    def __init__(self, *, dtype: Any = np.float32) -> None:
        super().__init__("relu", dtype=dtype)


class Sigmoid(Activation):
    """``y = 1 / (1 + exp(-x))``; ``dx = dy y (1 - y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Sigmoid
    >>> float(Sigmoid(dtype=np.float64).forward(np.array([0.0]))[0][0])
    0.5
    """

    def __init__(self, *, dtype: Any = np.float32) -> None:
        super().__init__("sigmoid", dtype=dtype)


class ModReLU(Layer):
    """Real modReLU with a learned bias: ``y = sign(x) · max(|x| + b, 0)``.

    Parameters
    ----------
    features : int
        Size of the last axis (one bias per feature).
    complex_pairs : bool
        Treat the last axis as ``[Re z, Im z]`` of ``features // 2`` complex
        units and apply the complex modReLU of Arjovsky et al.,
        ``y = z · max(|z| + b, 0) / (|z| + eps)``.
    dtype : {float32, float64}
    rng : seed or Generator, optional
        ``b ~ U[-0.01, 0.01]``.

    Notes
    -----
    Real: ``dy/dx = [|x| + b > 0]`` and ``dy/db = sign(x) [|x| + b > 0]``
    (``sign`` by ``copysign``, so ``x = ±0`` keeps its sign). The complex
    form's derivative is written out in :mod:`lowdisp.nn._rnn`.

    References
    ----------
    M. Arjovsky, A. Shah, Y. Bengio, "Unitary evolution recurrent neural
    networks", ICML 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import ModReLU
    >>> layer = ModReLU(2, dtype=np.float64, rng=0)
    >>> layer.params()["b"][:] = [-0.5, 0.5]
    >>> layer.forward(np.array([[0.25, -1.0]]))[0]
    array([[ 0. , -1.5]])
    """

    def __init__(
        self,
        features: int,
        *,
        complex_pairs: bool = False,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        self.features = check_int(features, "features", where="ModReLU", low=1)
        self.complex_pairs = check_bool(complex_pairs, "complex_pairs", where="ModReLU")
        if self.complex_pairs and self.features % 2:
            raise ValueError(
                f"ModReLU: complex_pairs needs an even number of features; got {features}"
            )
        self.dtype = _check_dtype(dtype, "ModReLU")
        nb = self.features // 2 if self.complex_pairs else self.features
        gen = as_rng(rng, where="ModReLU")
        self._params = {"b": gen.uniform(-0.01, 0.01, nb).astype(self.dtype)}

    def validate(self, x: Any) -> np.ndarray:
        return _as_input(x, "ModReLU", self.dtype, last=self.features)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        y, aux = modrelu_forward(x, self._params["b"], self.complex_pairs)
        return y, (x, aux)

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        x, aux = cache
        dy = _as_grad(dy, "ModReLU.backward", self.dtype, x.shape)
        dx, db = modrelu_backward(x, aux, dy, self.complex_pairs, self._params["b"])
        return dx, {"b": db}

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return cache[0].shape

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "features": self.features,
            "complex_pairs": self.complex_pairs,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        return f"ModReLU({self.features}, complex_pairs={self.complex_pairs})"


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


class Dropout(Layer):
    """Inverted dropout: in training ``y = x · m / (1 - p)`` with ``m ~ Bernoulli(1 - p)``.

    The mask is drawn from the ``rng`` passed to ``forward`` (the Trainer
    passes its own generator, so runs are reproducible and resumable);
    in evaluation (``train=False``) the layer is the identity.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Dropout
    >>> y, _ = Dropout(0.5, dtype=np.float64).forward(np.ones(4), train=False)
    >>> y
    array([1., 1., 1., 1.])
    """

    def __init__(self, p: float, *, dtype: Any = np.float32) -> None:
        self.p = check_real(p, "p", where="Dropout", low=0, high=1, high_open=True)
        self.dtype = _check_dtype(dtype, "Dropout")

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        if not train or self.p == 0:
            return x, x.shape
        keep = as_rng(rng, where="Dropout.forward").random(x.shape) >= self.p
        scale = np.asarray(1.0 / (1.0 - self.p), dtype=self.dtype)
        mask = keep.astype(self.dtype) * scale
        return x * mask, mask

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict]:
        shape = cache if isinstance(cache, tuple) else cache.shape
        dy = _as_grad(dy, "Dropout.backward", self.dtype, shape)
        return (dy if isinstance(cache, tuple) else dy * cache), {}

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        return cache if isinstance(cache, tuple) else cache.shape

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "p": self.p, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"Dropout({self.p})"


# ---------------------------------------------------------------------------
# Sequential
# ---------------------------------------------------------------------------


class Sequential(Layer):
    """A chain of layers; parameters keyed ``"<name>.<param>"``.

    Parameters
    ----------
    layers : sequence of Layer, or mapping name -> Layer
        Unnamed layers are named ``"0"``, ``"1"``, ...

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import Dense, Sequential, Tanh
    >>> net = Sequential({"fc1": Dense(3, 4, dtype=np.float64, rng=0),
    ...                   "act": Tanh(dtype=np.float64),
    ...                   "fc2": Dense(4, 2, dtype=np.float64, rng=1)})
    >>> sorted(net.params())
    ['fc1.W', 'fc1.b', 'fc2.W', 'fc2.b']
    >>> y, cache = net.forward(np.ones((5, 3)))
    >>> dx, grads = net.backward(cache, np.ones_like(y))
    >>> grads["fc1.W"].shape
    (4, 3)
    """

    def __init__(self, layers: Iterable[Layer] | Mapping[str, Layer]) -> None:
        if isinstance(layers, Mapping):
            items = [(str(k), v) for k, v in layers.items()]
        else:
            items = [(str(i), v) for i, v in enumerate(layers)]
        if not items:
            raise ValueError("Sequential: needs at least one layer; got none")
        for name, layer in items:
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: layer {name!r} must be a lowdisp.nn Layer; "
                    f"got {type(layer).__name__}"
                )
            if "." in name or not name:
                raise ValueError(f"Sequential: layer names must be non-empty, no '.'; got {name!r}")
        self.layers: dict[str, Layer] = dict(items)
        self.dtype = items[0][1].dtype
        for (prev, a), (name, b) in itertools.pairwise(items):
            out, want = _out_features(a), _in_features(b)
            if out is not None and want is not None and out != want:
                raise ValueError(
                    f"Sequential: layer {name!r} ({b!r}) expects {want} input features, but "
                    f"layer {prev!r} ({a!r}) before it outputs {out}"
                )

    def __getitem__(self, name: str) -> Layer:
        return self.layers[name]

    @property
    def takes_factored_grad(self) -> bool:  # type: ignore[override]
        return next(reversed(self.layers.values())).takes_factored_grad

    def params(self) -> dict[str, np.ndarray]:
        out = {}
        for name, layer in self.layers.items():
            for k, v in layer.params().items():
                out[f"{name}.{k}"] = v
        return out

    def manifolds(self) -> dict[str, Any]:
        out = {}
        for name, layer in self.layers.items():
            for k, v in layer.manifolds().items():
                out[f"{name}.{k}"] = v
        return out

    def validate(self, x: Any) -> Any:
        name, first = next(iter(self.layers.items()))
        try:
            return first.validate(x)
        except (TypeError, ValueError) as exc:
            if type(exc) not in (TypeError, ValueError):
                raise
            raise type(exc)(f"Sequential: input of layer {name!r}: {exc}") from exc

    def _forward(self, x: Any, train: bool, rng: Any, _prefix: str = "") -> tuple[Any, Any]:
        caches = []
        for i, (name, layer) in enumerate(self.layers.items()):
            if i:
                _check_between(layer, x, _prefix + name)
            if isinstance(layer, Sequential):
                x, c = layer._forward(x, train, rng, _prefix=f"{_prefix}{name}.")
            else:
                x, c = layer._forward(x, train, rng)
            caches.append(c)
        return x, caches

    def backward(self, cache: Any, dy: Any, *, input_grad: bool = True) -> tuple[Any, dict]:
        """``(dx, grads)``; with ``input_grad=False`` the first layer skips its input
        gradient (the model's input is data: the Trainer's case) and ``dx`` is None."""
        shape = self._out_shape(cache)
        if shape is not None and not isinstance(dy, _Factored):
            dy = _as_grad(dy, "Sequential.backward", self._dtype_out, shape)
        input_grad = check_bool(input_grad, "input_grad", where="Sequential.backward")
        if not input_grad:
            return None, self._param_grads(cache, dy)
        return self._backward(cache, dy, False)

    @property
    def _dtype_out(self) -> np.dtype:
        """dtype of the last layer (of the output and its cotangent)."""
        return next(reversed(self.layers.values())).dtype

    def _out_shape(self, cache: Any) -> tuple[int, ...] | None:
        last = next(reversed(self.layers.values()))
        return last._out_shape(cache[-1])

    def _backward(
        self, cache: Any, dy: Any, factored: bool, input_grad: bool = True
    ) -> tuple[Any, dict]:
        grads: dict[str, np.ndarray] = {}
        items = list(self.layers.items())
        for i in range(len(items) - 1, -1, -1):
            name, layer = items[i]
            if dy is None:
                raise ValueError(
                    f"Sequential: layer {name!r} needs an input gradient, but the layer after "
                    f"it takes integer input"
                )
            if i or input_grad:
                before = items[i - 1][1].takes_factored_grad if i else factored
                dy, g = layer._backward(cache[i], dy, before)
            else:  # the first layer: its input is data, no gradient wanted
                dy, g = None, layer._param_grads(cache[i], dy)
            for k, v in g.items():
                grads[f"{name}.{k}"] = v
        return dy, grads

    def _param_grads(self, cache: Any, dy: Any) -> dict[str, np.ndarray]:
        return self._backward(cache, dy, False, input_grad=False)[1]

    def get_config(self) -> dict[str, Any]:
        from lowdisp.nn._spec import layer_spec

        return {
            "class": type(self).__name__,
            "layers": {name: layer_spec(layer) for name, layer in self.layers.items()},
        }

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.layers.items())
        return f"Sequential({inner})"


def param_grads(model: Layer, cache: Any, dy: Any) -> dict[str, np.ndarray]:
    """The parameter gradients of ``model.backward(cache, dy)``, without the gradient
    with respect to the model's input (data: nobody uses it), which a
    :class:`Sequential` then skips (e.g. one GEMM of a first Dense layer)."""
    if isinstance(model, Sequential):
        return model.backward(cache, dy, input_grad=False)[1]
    return model.backward(cache, dy)[1]


# ---------------------------------------------------------------------------
# Feature sizes between the layers of a Sequential
# ---------------------------------------------------------------------------


def _in_features(layer: Layer) -> int | None:
    """Size of the last axis a layer expects on float input (``None``: any or unknown)."""
    if isinstance(layer, Sequential):
        return _in_features(next(iter(layer.layers.values())))
    if isinstance(layer, Dense):
        return layer.in_features
    if isinstance(layer, ModReLU):
        return layer.features
    cell = getattr(layer, "cell", None)
    if cell is not None and isinstance(getattr(cell, "input_size", None), int):
        return int(cell.input_size)
    return None


def _out_features(layer: Layer) -> int | None:
    """Size of a layer's output last axis when it does not depend on the input."""
    if isinstance(layer, Sequential):
        size = None
        for child in layer.layers.values():
            out = _out_features(child)
            if out is not None:
                size = out
            elif not isinstance(child, Activation | Dropout):
                size = None
        return size
    if isinstance(layer, Dense):
        return layer.out_features
    if isinstance(layer, ModReLU):
        return layer.features
    if isinstance(layer, Embedding):
        return layer.dim
    if isinstance(layer, OneHot):
        return layer.vocab
    cell = getattr(layer, "cell", None)
    if cell is not None and isinstance(getattr(cell, "state_size", None), int):
        return int(cell.state_size)
    return None


def _check_between(layer: Layer, x: Any, name: str) -> None:
    """Inside a Sequential: the input ``x`` of ``layer`` has the features it expects."""
    if isinstance(layer, Embedding | OneHot):
        if getattr(x, "dtype", None) is not None and x.dtype.kind not in "iu":
            raise ValueError(
                f"Sequential: layer {name!r} ({layer!r}) takes integer token ids, but the "
                f"layer before it outputs dtype {x.dtype}"
            )
        return
    want = _in_features(layer)
    shape = getattr(x, "shape", None)
    if want is None or shape is None or getattr(x, "dtype", None) is None:
        return
    if x.dtype.kind == "f" and (len(shape) == 0 or shape[-1] != want):
        raise ValueError(
            f"Sequential: layer {name!r} ({layer!r}) expects {want} input features on the "
            f"last axis, but the layer before it outputs shape {shape}"
        )
