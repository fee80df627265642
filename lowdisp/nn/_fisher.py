"""Fisher matrices of dense and recurrent networks: three flavours, four representations,
one interface.

:func:`fisher_matrix` runs a model over data, collects the per-example
statistics of its :class:`~lowdisp.nn.Dense` layers, dense tanh/ReLU
:class:`~lowdisp.nn.RNNCell` s and (diagonal and dense kinds)
:class:`~lowdisp.nn.StructuredDense` layers (:mod:`lowdisp.nn._curvature`)
and returns a curvature object: :class:`KFACFisher`, :class:`EKFACFisher`,
:class:`DiagonalFisher` or :class:`DenseFisher`. All of them have ``mv``,
``solve``, ``diag``, ``trace``, ``frobenius_norm`` and ``to_dense`` over the
parameters of the covered layers.

Vectors are dicts keyed by parameter path (like a gradient dict) or flat
arrays in the objects' layout: for each covered layer in model order, the
rows of ``W̃ = [W, b]`` (shape ``(d_out, d_in + 1)``; ``[U, W, b]``,
``(N, d + N + 1)`` for a cell) one after the other; a structured layer's
parameters raveled in the order of its ``params()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_int, check_option, check_positive
from lowdisp.nn._curvature import (
    DAMPING_STYLES,
    CurvatureWarning,
    _Block,
    attach,
    damping_pi,
    detach,
    eigh_clipped,
    find_blocks,
    kfe_square_sum,
    reduce_sequences,
    warn_unsupported,
)

__all__ = [
    "DenseFisher",
    "DiagonalFisher",
    "EKFACFisher",
    "KFACFisher",
    "fisher_matrix",
]

FLAVOURS = ("empirical", "mc", "exact")
KINDS = ("kfac", "ekfac", "diag", "dense", "block")
APPROX = ("expand", "reduce")


# ---------------------------------------------------------------------------
# per-example output gradients of the three flavours
# ---------------------------------------------------------------------------


def _loss_kind(loss: Any, where: str) -> str:
    from lowdisp.nn._losses import MSE, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy

    for cls, name in (
        (SoftmaxCrossEntropy, "ce"),
        (SigmoidBinaryCrossEntropy, "bce"),
        (MSE, "mse"),
    ):
        if isinstance(loss, cls):
            return name
    raise TypeError(
        f"{where}: loss must be SoftmaxCrossEntropy, SigmoidBinaryCrossEntropy or MSE; "
        f"got {type(loss).__name__}"
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _cotangents(
    kind: str, flavour: str, z: np.ndarray, y: Any, trials: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, float]]:
    """``[(dz, weight)]``: per-example output gradients ``∂ℓ_i/∂z_i`` (rows) of the
    per-example loss (the loss with ``reduction="sum"`` over one example) and
    the weight of each pass; ``F = Σ_pass weight · E_i[J_iᵀ dz_i dz_iᵀ J_i]``."""
    z = np.asarray(z, dtype=np.float64)
    B, C = z.shape
    if kind == "ce":
        p = _softmax(z)
        if flavour == "empirical":
            g = p.copy()
            g[np.arange(B), np.asarray(y)] -= 1
            return [(g, 1.0)]
        if flavour == "mc":
            out = []
            cdf = np.cumsum(p, axis=1)
            for _ in range(trials):
                u = rng.random((B, 1))
                lab = np.minimum((cdf < u).sum(axis=1), C - 1)
                g = p.copy()
                g[np.arange(B), lab] -= 1
                out.append((g, 1.0 / trials))
            return out
        # exact: columns of a square root of diag(p) - p pᵀ: L_k = √p_k (e_k - p)
        out = []
        sp = np.sqrt(p)
        for k in range(C):
            g = -p * sp[:, k : k + 1]
            g[:, k] += sp[:, k]
            out.append((g, 1.0))
        return out
    if kind == "bce":
        from scipy.special import expit

        s = expit(z)
        if flavour == "empirical":
            return [(s - np.asarray(y, dtype=np.float64), 1.0)]
        if flavour == "mc":
            return [(s - (rng.random(s.shape) < s), 1.0 / trials) for _ in range(trials)]
        r = np.sqrt(s * (1 - s))
        out = []
        for k in range(C):
            g = np.zeros_like(z)
            g[:, k] = r[:, k]
            out.append((g, 1.0))
        return out
    # mse: ℓ_i = Σ_j (z_ij - t_ij)², a Gaussian likelihood of variance 1/2
    if flavour == "empirical":
        return [(2 * (z - np.asarray(y, dtype=np.float64)), 1.0)]
    if flavour == "mc":
        return [(-np.sqrt(2.0) * rng.standard_normal(z.shape), 1.0 / trials) for _ in range(trials)]
    out = []
    for k in range(C):
        g = np.zeros_like(z)
        g[:, k] = np.sqrt(2.0)
        out.append((g, 1.0))
    return out


def _batches(data: Any, where: str) -> list[tuple[Any, Any]]:
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        return [data]
    if not isinstance(data, Iterable):
        raise TypeError(f"{where}: data must be a pair (x, y) or an iterable of (x, y) batches")
    out = list(data)
    if not out:
        raise ValueError(f"{where}: data holds no batch")
    for i, b in enumerate(out):
        if not (isinstance(b, tuple | list) and len(b) == 2):
            raise TypeError(f"{where}: data[{i}] must be a pair (x, y); got {type(b).__name__}")
    return [tuple(b) for b in out]  # type: ignore[misc]


class _Collector:
    """Runs the model over data and hands every pass's per-layer ``(x, dy)`` and
    weight to ``visit(block, x, dy, weight, first_pass_of_the_batch)`` (private).

    ``x`` is the layer input (``(B, d)`` or ``(T, B, d)``; a cell's rows
    ``[x_t, h_{t-1}]``), ``dy`` the per-example output gradients as float64
    rows aligned with ``x``. A model output ``(T, B, C)`` is a sequence of
    ``B`` examples whose loss is the sum over its ``T`` positions.
    """

    def __init__(
        self,
        model: Any,
        loss: Any,
        flavour: str,
        trials: int,
        rng: Any,
        exclude=(),
        *,
        structured: bool = False,
    ):
        self.where = "fisher_matrix"
        self.model = model
        self.kind = _loss_kind(loss, self.where)
        self.flavour = flavour
        self.trials = trials
        self.rng = rng
        self.blocks, self.unsupported, _ = find_blocks(model, exclude, structured=structured)
        for b in self.blocks:
            if b.kind == "rnn":
                b.recorder.keep = True  # the deltas of every step, not only Σ δᵀδ
        if not self.blocks:
            raise ValueError(
                f"{self.where}: the model has no Dense layer (nor a dense tanh/ReLU RNN "
                f"cell{' or StructuredDense layer' if structured else ''}) with a curvature rule"
            )

    def _passes(self, z: np.ndarray, y: Any) -> list[tuple[np.ndarray, float]]:
        C = z.shape[-1]
        zr = z.reshape(-1, C)
        yr = None
        if y is not None:
            ya = np.asarray(y)
            yr = ya.reshape(-1, *ya.shape[z.ndim - 1 :]) if ya.ndim >= z.ndim - 1 else ya
        passes = _cotangents(self.kind, self.flavour, zr, yr, self.trials, self.rng)
        passes = [(g.reshape(z.shape), w) for g, w in passes]
        if z.ndim == 3 and self.flavour == "exact":
            # ℓ_n = Σ_t ℓ_nt: its output Hessian is block-diagonal over positions, so its
            # square root needs each position's columns in a pass of its own (T·C passes)
            out = []
            for g, w in passes:
                for t in range(z.shape[0]):
                    gt = np.zeros_like(g)
                    gt[t] = g[t]
                    out.append((gt, w))
            passes = out
        return passes

    def run(self, data: Any, visit: Any) -> int:
        n_total = 0
        attach(self.blocks)
        try:
            for x, y in _batches(data, self.where):
                z, cache = self.model.forward(x, train=False)
                if z.ndim not in (2, 3):
                    raise ValueError(
                        f"{self.where}: the model output must be (batch, outputs) or (time, "
                        f"batch, outputs); got shape {z.shape}"
                    )
                n_total += z.shape[-2]
                for k, (dz, w) in enumerate(self._passes(z, y)):
                    self.model.backward(cache, dz.astype(z.dtype, copy=False))
                    for b in self.blocks:
                        rec = b.recorder
                        if rec.x is None or rec.dy is None:
                            raise ValueError(
                                f"{self.where}: layer {b.name!r} recorded no statistics: the "
                                f"backward pass did not reach it"
                            )
                        visit(b, rec.x, np.asarray(rec.dy, dtype=np.float64), w, k == 0)
                        rec.clear()
        finally:
            detach(self.blocks)
        return n_total


def _example_grads(b: _Block, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Per-example gradients ``(n, size)`` of a block in its layout (float64, private).

    Dense and cell blocks: ``Σ_t g_t ã_tᵀ`` per example (``T = 1`` for ``(B, d)``
    inputs), from the recorded rows; structured blocks: one vjp per example.
    """
    if b.kind == "structured":
        return _structured_example_grads(b, x, dy)
    xt = b.tilde(np.asarray(x, dtype=np.float64))
    if x.ndim <= 2:
        return (dy[:, :, None] * xt[:, None, :]).reshape(dy.shape[0], -1)
    T, B = x.shape[0], x.shape[1]
    J = np.einsum("tbo,tba->boa", dy.reshape(T, B, -1), xt.reshape(T, B, -1))
    return J.reshape(B, -1)


def _structured_example_grads(b: _Block, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Per-example generator gradients of a structured layer: its vjp on each example
    alone (small models only; private)."""
    layer = b.layer
    keys = list(layer.params())
    seq = x.ndim == 3
    n = x.shape[1] if seq else x.shape[0]
    dy3 = dy.reshape(x.shape[0], n, -1) if seq else dy
    out = np.empty((n, b.d_in))
    saved = layer._stats
    layer._stats = None
    try:
        for i in range(n):  # one vjp per example: the per-example route of small models
            xi = x[:, i : i + 1] if seq else x[i : i + 1]
            gi = dy3[:, i : i + 1] if seq else dy3[i : i + 1]
            _, cache = layer.forward(xi, train=False)
            _, g = layer.backward(cache, gi.astype(layer.dtype))
            out[i] = np.concatenate([np.ravel(g[k]) for k in keys])
    finally:
        layer._stats = saved
    return out


# ---------------------------------------------------------------------------
# curvature objects
# ---------------------------------------------------------------------------


class _Slot:
    """One block's place in the flat layout (private): a ``(rows, cols)`` matrix,
    ``[W_1, …, W_k, b]`` of a dense or cell block, or one row holding a
    structured layer's parameters raveled."""

    __slots__ = ("b_path", "cols", "flat", "name", "ncols", "rows", "shapes", "w_paths")

    def __init__(self, b: _Block) -> None:
        self.name = b.name
        self.w_paths = b.w_paths
        self.b_path = b.b_path
        self.flat = b.kind == "structured"
        self.rows, self.ncols = b.d_out, b.a_size
        self.cols = b.cols
        if self.flat:
            self.shapes = tuple(np.shape(v) for v in b.layer.params().values())
        else:
            self.shapes = tuple((b.d_out, c) for c in b.cols)

    @property
    def paths(self) -> tuple[str, ...]:
        return self.w_paths + (() if self.b_path is None else (self.b_path,))

    def to_mat(self, v: Mapping, where: str, needed: list[str]) -> np.ndarray:
        M = np.zeros((self.rows, self.ncols))
        i = 0
        for p, shp in zip(self.w_paths, self.shapes, strict=True):
            if p not in v:
                raise ValueError(f"{where}: v has no entry {p!r} (needs {needed})")
            a = np.asarray(v[p], dtype=np.float64)
            if a.shape != shp:
                raise ValueError(f"{where}: v[{p!r}] must have shape {shp}; got {a.shape}")
            n = a.size if self.flat else shp[1]
            if self.flat:
                M[0, i : i + n] = a.reshape(-1)
            else:
                M[:, i : i + n] = a
            i += n
        if self.b_path is not None:
            M[:, i] = np.asarray(v.get(self.b_path, 0.0), dtype=np.float64)
        return M

    def from_mat(self, M: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        i = 0
        for p, shp in zip(self.w_paths, self.shapes, strict=True):
            if self.flat:
                n = int(np.prod(shp))
                out[p] = M[0, i : i + n].reshape(shp).copy()
            else:
                n = shp[1]
                out[p] = M[:, i : i + n].copy()
            i += n
        if self.b_path is not None:
            out[self.b_path] = M[:, i].copy()
        return out


class _Curvature:
    """Shared layout and vector handling (private)."""

    def __init__(self, blocks: list[_Block]) -> None:
        self._slots = [_Slot(b) for b in blocks]
        self._warned = False

    @property
    def _layout(self) -> list[tuple[str, str, str | None, int, int]]:
        """``(name, first weight path, bias path, rows, cols)`` per block."""
        return [(s.name, s.w_paths[0], s.b_path, s.rows, s.ncols) for s in self._slots]

    @property
    def paths(self) -> list[str]:
        """Parameter paths covered, in layout order."""
        return [p for s in self._slots for p in s.paths]

    @property
    def size(self) -> int:
        """Number of parameters covered."""
        return sum(s.rows * s.ncols for s in self._slots)

    def _mats(self, v: Any, where: str) -> tuple[list[np.ndarray], bool]:
        """``v`` (dict or flat) as one ``(rows, cols)`` matrix per block."""
        if isinstance(v, Mapping):
            return [s.to_mat(v, where, self.paths) for s in self._slots], True
        arr = np.asarray(v, dtype=np.float64)
        if arr.shape != (self.size,):
            raise ValueError(
                f"{where}: v must be a dict of path -> array or a flat vector of "
                f"{self.size} entries; got shape {arr.shape}"
            )
        return self._split(arr), False

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        mats, i = [], 0
        for s in self._slots:
            k = s.rows * s.ncols
            mats.append(flat[i : i + k].reshape(s.rows, s.ncols))
            i += k
        return mats

    def _out(self, mats: list[np.ndarray], as_dict: bool) -> Any:
        if not as_dict:
            return np.concatenate([m.reshape(-1) for m in mats])
        out = {}
        for M, s in zip(mats, self._slots, strict=True):
            out.update(s.from_mat(M))
        return out

    def _name(self, i: int) -> str:
        return self._slots[i].name

    def _damping(self, damping: Any, where: str) -> float:
        return check_positive(damping, "damping", where=where, strict=False)

    def mv(self, v: Any, damping: float = 0.0) -> Any:
        """The (damped) matrix times ``v`` (a dict of path -> array or a flat vector)."""
        where = f"{type(self).__name__}.mv"
        damping = self._damping(damping, where)
        mats, as_dict = self._mats(v, where)
        self._check_ready(where)
        return self._out([self._mv(i, M, damping) for i, M in enumerate(mats)], as_dict)

    def solve(self, v: Any, damping: float) -> Any:
        """``x`` with ``mv(x, damping) = v`` (``damping > 0``)."""
        where = f"{type(self).__name__}.solve"
        damping = check_positive(damping, "damping", where=where)
        mats, as_dict = self._mats(v, where)
        self._check_ready(where)
        return self._out([self._solve(i, M, damping) for i, M in enumerate(mats)], as_dict)

    def diag(self) -> np.ndarray:
        """The diagonal, flat in the layout order (:attr:`paths`)."""
        self._check_ready(f"{type(self).__name__}.diag")
        return np.concatenate([self._diag(i).reshape(-1) for i in range(len(self._slots))])

    def trace(self) -> float:
        """Sum of the diagonal."""
        return float(self.diag().sum())

    def frobenius_norm(self) -> float:
        """Frobenius norm of the matrix."""
        self._check_ready(f"{type(self).__name__}.frobenius_norm")
        return float(np.sqrt(sum(self._fro2(i) for i in range(len(self._slots)))))

    def to_dense(self) -> np.ndarray:
        """The matrix as a dense ``(size, size)`` array (small models only)."""
        self._check_ready(f"{type(self).__name__}.to_dense")
        import scipy.linalg

        return scipy.linalg.block_diag(*[self._block(i) for i in range(len(self._slots))])

    def _check_ready(self, where: str) -> None:
        pass

    # per-block pieces (subclasses)
    def _mv(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        raise NotImplementedError

    def _solve(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        raise NotImplementedError

    def _diag(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _fro2(self, i: int) -> float:
        return float(np.sum(self._block(i) ** 2))

    def _block(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self._slots)
        return f"{type(self).__name__}(layers=[{names}], size={self.size})"


class KFACFisher(_Curvature):
    """Block-diagonal Kronecker-factored Fisher: one ``G ⊗ A`` per dense layer.

    Built by :func:`fisher_matrix` (``kind="kfac"``). ``mv(v, damping)`` and
    ``solve(v, damping)`` use the factored Tikhonov damping
    ``(G + (√λ/π) I) ⊗ (A + π√λ I)`` with π of ``damping_style`` (the paper's
    by default, as nngeometry's ``use_pi=True``); ``damping=0`` in ``mv`` is
    the plain ``G ⊗ A``. ``diag``, ``trace``, ``frobenius_norm`` and
    ``to_dense`` describe the undamped matrix.

    Attributes
    ----------
    factors : dict of name -> (A, G)
        ``A = E[ã ãᵀ]`` ``(d_in+1, d_in+1)`` and ``G = E[g gᵀ]``
        ``(d_out, d_out)`` per layer (float64).
    approx : {"expand", "reduce"}
        How a weight shared over sequence positions was factored (see
        :func:`fisher_matrix`).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> model = lnn.Sequential([lnn.Dense(4, 3, dtype=np.float64, rng=0)])
    >>> x, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    >>> F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), (x, y), kind="kfac")
    >>> v = {"0.W": np.ones((3, 4)), "0.b": np.ones(3)}
    >>> w = F.solve(F.mv(v, damping=1e-3), damping=1e-3)
    >>> bool(np.allclose(w["0.W"], 1.0))
    True
    """

    def __init__(
        self,
        blocks: list[_Block],
        factors: dict[str, tuple[np.ndarray, np.ndarray]],
        *,
        damping_style: str = "paper",
        approx: str = "expand",
    ) -> None:
        super().__init__(blocks)
        self.factors = factors
        self.approx = check_option(approx, "approx", APPROX, where="KFACFisher")
        self.damping_style = check_option(
            damping_style, "damping_style", DAMPING_STYLES, where="KFACFisher"
        )
        self._eig: dict[str, Any] = {}

    def _AG(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.factors[self._name(i)]

    def _damped(self, i: int, damping: float) -> tuple[float, float]:
        A, G = self._AG(i)
        pi = damping_pi(
            self.damping_style, float(np.trace(A)), A.shape[0], float(np.trace(G)), G.shape[0]
        )
        r = np.sqrt(damping)
        return pi * r, r / pi

    def _mv(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        A, G = self._AG(i)
        if damping:
            dA, dG = self._damped(i, damping)
            A = A + dA * np.eye(A.shape[0])
            G = G + dG * np.eye(G.shape[0])
        return G @ M @ A

    def _solve(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        name = self._name(i)
        if name not in self._eig:
            A, G = self._AG(i)
            self._eig[name] = (eigh_clipped(A), eigh_clipped(G))
        (sA, UA), (sG, UG) = self._eig[name]
        dA, dG = self._damped(i, damping)
        V = UG.T @ M @ UA
        V /= np.outer(sG + dG, sA + dA)
        return UG @ V @ UA.T

    def _diag(self, i: int) -> np.ndarray:
        A, G = self._AG(i)
        return np.outer(np.diag(G), np.diag(A))

    def _fro2(self, i: int) -> float:
        A, G = self._AG(i)
        return float(np.sum(A * A) * np.sum(G * G))

    def _block(self, i: int) -> np.ndarray:
        A, G = self._AG(i)
        return np.kron(G, A)


class EKFACFisher(_Curvature):
    """Eigenvalue-corrected KFAC: ``Q diag(S) Qᵀ`` per dense layer, ``Q = U_G ⊗ U_A``.

    Built by :func:`fisher_matrix` (``kind="ekfac"``, which also estimates the
    diagonal) or from a :class:`KFACFisher` by :meth:`from_kfac`, whose
    diagonal starts as the KFAC eigenvalue products ``s_G ⊗ s_A`` until
    :meth:`update_diag` re-estimates it: using the object before that issues a
    :class:`CurvatureWarning` once (it is then only KFAC). ``mv(v, damping)``
    and ``solve`` act with ``Q diag(S + λ) Qᵀ`` (nngeometry's and the EKFAC
    authors' damping).

    Attributes
    ----------
    bases : dict of name -> (U_A, U_G)
    diagonals : dict of name -> S ``(d_out, d_in+1)``
    diag_estimated : bool

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> model = lnn.Sequential([lnn.Dense(4, 3, dtype=np.float64, rng=0)])
    >>> data = (rng.normal(size=(20, 4)), rng.integers(0, 3, 20))
    >>> F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind="ekfac")
    >>> F.diag_estimated, F.to_dense().shape
    (True, (15, 15))
    """

    def __init__(
        self,
        blocks: list[_Block],
        bases: dict[str, tuple[np.ndarray, np.ndarray]],
        diagonals: dict[str, np.ndarray],
        *,
        diag_estimated: bool,
    ) -> None:
        super().__init__(blocks)
        self.bases = bases
        self.diagonals = diagonals
        self.diag_estimated = diag_estimated

    @classmethod
    def from_kfac(cls, kfac: KFACFisher) -> EKFACFisher:
        """The eigenbasis of a :class:`KFACFisher`, diagonal ``s_G ⊗ s_A`` (not estimated).

        Examples
        --------
        >>> import numpy as np
        >>> import lowdisp.nn as lnn
        >>> rng = np.random.default_rng(0)
        >>> model = lnn.Sequential([lnn.Dense(4, 3, dtype=np.float64, rng=0)])
        >>> data = (rng.normal(size=(20, 4)), rng.integers(0, 3, 20))
        >>> K = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind="kfac")
        >>> E = lnn.EKFACFisher.from_kfac(K)
        >>> E.diag_estimated
        False
        """
        if not isinstance(kfac, KFACFisher):
            raise TypeError(
                f"EKFACFisher.from_kfac: kfac must be a KFACFisher; got {type(kfac).__name__}"
            )
        bases, diags = {}, {}
        for name, (A, G) in kfac.factors.items():
            sA, UA = eigh_clipped(A)
            sG, UG = eigh_clipped(G)
            bases[name] = (UA, UG)
            diags[name] = np.outer(sG, sA)
        obj = cls([], bases, diags, diag_estimated=False)
        obj._slots = list(kfac._slots)
        return obj

    def update_diag(
        self,
        model: Any,
        loss: Any,
        data: Any,
        *,
        fisher: str = "empirical",
        trials: int = 1,
        rng: Any = None,
    ) -> EKFACFisher:
        """Re-estimate the diagonal ``S = E[(Qᵀ vec ∇ℓ_i)²]`` on ``data``.

        Rank-one trick for ``(B, d)`` layer inputs; for a layer applied to
        sequences (and a cell) ``∇ℓ_i = Σ_t g_t ã_tᵀ`` is not rank one and
        ``S`` comes from the per-sequence projections
        ``(Σ_t (U_Gᵀ g_t)(U_Aᵀ ã_t)ᵀ)∘²``. Arguments as for
        :func:`fisher_matrix`; ``model`` must have the layers this object was
        built from. Returns ``self``.
        """
        where = "EKFACFisher.update_diag"
        fisher = check_option(fisher, "fisher", FLAVOURS, where=where)
        trials = check_int(trials, "trials", where=where, low=1)
        col = _Collector(model, loss, fisher, trials, as_rng(rng, where=where))
        return self._update_diag(col, data)

    def _update_diag(self, col: _Collector, data: Any) -> EKFACFisher:
        where = "EKFACFisher.update_diag"
        names = [b.name for b in col.blocks]
        mine = [s.name for s in self._slots]
        if names != mine:
            raise ValueError(
                f"{where}: the model's layers with a Kronecker rule {names} are not the "
                f"layers of this object {mine}"
            )
        acc: dict[str, np.ndarray] = {}

        def visit(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
            UA, UG = self.bases[b.name]
            S = kfe_square_sum(b, np.asarray(x, dtype=np.float64), dy, UA, UG)
            S *= w
            acc[b.name] = acc.get(b.name, 0) + S

        n = col.run(data, visit)
        for name in acc:
            self.diagonals[name] = acc[name] / n
        self.diag_estimated = True
        return self

    def _check_ready(self, where: str) -> None:
        if not self.diag_estimated and not self._warned:
            self._warned = True
            warnings.warn(
                f"{where}: the EKFAC diagonal was not estimated (call update_diag); it holds "
                f"the KFAC eigenvalue products, so this object is KFAC",
                CurvatureWarning,
                stacklevel=3,
            )

    def _mv(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        name = self._name(i)
        UA, UG = self.bases[name]
        V = UG.T @ M @ UA
        V *= self.diagonals[name] + damping
        return UG @ V @ UA.T

    def _solve(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        name = self._name(i)
        UA, UG = self.bases[name]
        V = UG.T @ M @ UA
        V /= self.diagonals[name] + damping
        return UG @ V @ UA.T

    def _diag(self, i: int) -> np.ndarray:
        name = self._name(i)
        UA, UG = self.bases[name]
        return (UG * UG) @ self.diagonals[name] @ (UA * UA).T

    def _fro2(self, i: int) -> float:
        return float(np.sum(self.diagonals[self._name(i)] ** 2))

    def _block(self, i: int) -> np.ndarray:
        name = self._name(i)
        UA, UG = self.bases[name]
        Q = np.kron(UG, UA)
        return (Q * self.diagonals[name].reshape(-1)) @ Q.T


class DiagonalFisher(_Curvature):
    """Diagonal of the Fisher, ``E[(∂ℓ_i/∂θ)²]`` (OBD's saliency), per dense layer.

    ``(G∘²)ᵀ(Ã∘²)/n`` over examples (the EKFAC GEMM with ``U = I``); damped
    operator ``diag + λ``.

    Attributes
    ----------
    diagonals : dict of name -> ``(d_out, d_in+1)`` array

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> model = lnn.Sequential([lnn.Dense(4, 3, dtype=np.float64, rng=0)])
    >>> data = (rng.normal(size=(20, 4)), rng.integers(0, 3, 20))
    >>> F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind="diag")
    >>> F.diag().shape
    (15,)
    """

    def __init__(self, blocks: list[_Block], diagonals: dict[str, np.ndarray]) -> None:
        super().__init__(blocks)
        self.diagonals = diagonals

    def _mv(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        return (self.diagonals[self._name(i)] + damping) * M

    def _solve(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        return M / (self.diagonals[self._name(i)] + damping)

    def _diag(self, i: int) -> np.ndarray:
        return self.diagonals[self._name(i)]

    def _fro2(self, i: int) -> float:
        return float(np.sum(self._diag(i) ** 2))

    def _block(self, i: int) -> np.ndarray:
        return np.diag(self._diag(i).reshape(-1))


class DenseFisher(_Curvature):
    """The exact Fisher over the dense layers' parameters as a dense matrix
    (small models only): full (``kind="dense"``) or block-diagonal per layer
    (``kind="block"``). Damped operator ``F + λ I``.

    Attributes
    ----------
    matrix : ``(size, size)`` array
    block_diagonal : bool

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> model = lnn.Sequential([lnn.Dense(4, 3, dtype=np.float64, rng=0)])
    >>> data = (rng.normal(size=(20, 4)), rng.integers(0, 3, 20))
    >>> F = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind="dense")
    >>> F.matrix.shape
    (15, 15)
    """

    def __init__(self, blocks: list[_Block], matrix: np.ndarray, *, block_diagonal: bool):
        super().__init__(blocks)
        self.matrix = matrix
        self.block_diagonal = block_diagonal
        self._chol: dict[float, Any] = {}

    def mv(self, v: Any, damping: float = 0.0) -> Any:
        where = "DenseFisher.mv"
        damping = self._damping(damping, where)
        mats, as_dict = self._mats(v, where)
        flat = np.concatenate([m.reshape(-1) for m in mats])
        return self._out(self._split(self.matrix @ flat + damping * flat), as_dict)

    def solve(self, v: Any, damping: float) -> Any:
        import scipy.linalg

        where = "DenseFisher.solve"
        damping = check_positive(damping, "damping", where=where)
        mats, as_dict = self._mats(v, where)
        flat = np.concatenate([m.reshape(-1) for m in mats])
        if damping not in self._chol:
            M = self.matrix + damping * np.eye(self.size)
            self._chol = {damping: scipy.linalg.cho_factor(M)}
        return self._out(self._split(scipy.linalg.cho_solve(self._chol[damping], flat)), as_dict)

    def diag(self) -> np.ndarray:
        return np.diag(self.matrix).copy()

    def frobenius_norm(self) -> float:
        return float(np.linalg.norm(self.matrix))

    def to_dense(self) -> np.ndarray:
        return self.matrix.copy()


# ---------------------------------------------------------------------------
# the builder
# ---------------------------------------------------------------------------


def fisher_matrix(
    model: Any,
    loss: Any,
    data: Any,
    *,
    kind: str = "kfac",
    fisher: str = "empirical",
    trials: int = 1,
    rng: Any = None,
    exclude: Iterable[str] = (),
    damping_style: str = "paper",
    approx: str = "expand",
) -> Any:
    """The Fisher matrix of a model's dense, recurrent and structured layers on ``data``.

    Parameters
    ----------
    model : Layer
        A model with output ``(batch, outputs)`` (e.g. from
        :func:`~lowdisp.nn.build_mlp`, or a recurrent model reading out its
        last state) or ``(time, batch, outputs)`` (a readout at every step,
        :func:`~lowdisp.nn.build_model` of a sequence task). Covered: its
        :class:`~lowdisp.nn.Dense` layers (also applied to sequences), its
        dense tanh/ReLU :class:`~lowdisp.nn.RNNCell` s inside an
        :class:`~lowdisp.nn.RNN` (``[U, W, b]`` as one block acting on
        ``[x_t; h_{t-1}; 1]``, token input included) and, for
        ``kind="diag"``, ``"dense"`` and ``"block"``, its
        :class:`~lowdisp.nn.StructuredDense` layers (all their parameters);
        other parameterised layers are reported once
        (:class:`CurvatureWarning`) and left out.
    loss : SoftmaxCrossEntropy, SigmoidBinaryCrossEntropy or MSE
        Defines the per-example loss ``ℓ_i`` (the loss with ``reduction="sum"``
        over one example: for a sequence output, the sum over its positions;
        for MSE, ``Σ_j (z_ij − t_ij)²``).
    data : (x, y) or iterable of (x, y)
        Batches; the Fisher is the average over all examples (sequences).
    kind : {"kfac", "ekfac", "diag", "dense", "block"}
        :class:`KFACFisher`, :class:`EKFACFisher` (its diagonal estimated on
        the same data), :class:`DiagonalFisher`, or :class:`DenseFisher` (full,
        or block-diagonal per layer), the last two from explicit per-example
        gradients (small models only; a structured layer's by one vjp per
        example).
    fisher : {"empirical", "mc", "exact"}
        Which output gradients: the true labels (empirical Fisher), labels
        sampled from the model's predictive distribution (``trials`` samples
        per example: the Monte-Carlo Fisher), or the exact expectation over
        the predictive distribution from a square root of the output Hessian
        (``diag(p) − ppᵀ`` for softmax: C backward passes, ``T·C`` for a
        sequence output; the GGN).
    trials : int
        Samples per example of ``fisher="mc"``.
    rng : seed or Generator, optional
        For ``fisher="mc"``.
    exclude : list of str
        Parameter path patterns to leave out.
    damping_style : {"paper", "authors_code", "none"}
        π of a :class:`KFACFisher`'s damped operator (see :class:`lowdisp.nn.KFAC`).
    approx : {"expand", "reduce"}
        Kronecker factors of a weight shared over the ``T`` positions of a
        sequence (a Dense layer applied to ``(T, B, d)``, a cell's
        ``[U, W, b]``), Eschenhagen et al. (2023); ``N`` sequences, ``ã_nt``
        the input rows, ``g_nt`` the output gradients:

        - ``"expand"`` (positions as examples):
          ``A = (1/(NT)) Σ_{n,t} ã_nt ã_ntᵀ``, ``G = (1/N) Σ_{n,t} g_nt g_ntᵀ``;
        - ``"reduce"`` (the per-sequence gradient ``Σ_t g_nt ã_ntᵀ`` taken as
          ``ĝ_n ā_nᵀ``): ``ā_n = (1/T) Σ_t ã_nt`` (the bias entry stays 1),
          ``ĝ_n = Σ_t g_nt``, ``A = (1/N) Σ_n ā_n ā_nᵀ``,
          ``G = (1/N) Σ_n ĝ_n ĝ_nᵀ``.

        Both equal the plain KFAC for ``(B, d)`` inputs and for ``T = 1``. For a
        linear layer with MSE, expand is the exact GGN when the loss is
        applied at every position, reduce when the positions are summed
        before the loss (one sequence; any number for a linear layer, whose
        output Hessian is constant). Used by ``kind="kfac"`` and ``"ekfac"``
        (whose diagonal is always the per-sequence one).

    Returns
    -------
    KFACFisher, EKFACFisher, DiagonalFisher or DenseFisher

    Notes
    -----
    Per layer ``F_l = E_i[vec ∇ℓ_i vec ∇ℓ_iᵀ]`` with ``∇ℓ_i = g_i ã_iᵀ``,
    ``g_i = ∂ℓ_i/∂z_i`` (``Σ_t g_it ã_itᵀ`` for a shared weight); KFAC takes
    ``G ⊗ A`` with ``A = E[ã ãᵀ]``, ``G = E[g gᵀ]``; EKFAC keeps KFAC's
    eigenbasis ``Q`` and takes the exact ``S = E[(Qᵀ vec ∇ℓ_i)²]``, the best
    diagonal in that basis (so its Frobenius error to ``F_l`` is never larger
    than KFAC's). A cell's ``g_it`` are its BPTT deltas ``δ_it``. The model
    runs in evaluation mode (no dropout).

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> model = lnn.Sequential([lnn.Dense(4, 3, dtype=np.float64, rng=0)])
    >>> data = (rng.normal(size=(50, 4)), rng.integers(0, 3, 50))
    >>> loss = lnn.SoftmaxCrossEntropy()
    >>> K = lnn.fisher_matrix(model, loss, data, kind="kfac", fisher="exact")
    >>> E = lnn.fisher_matrix(model, loss, data, kind="ekfac", fisher="exact")
    >>> F = lnn.fisher_matrix(model, loss, data, kind="block", fisher="exact")
    >>> err = lambda M: np.linalg.norm(M.to_dense() - F.to_dense())
    >>> bool(err(E) <= err(K))
    True

    A recurrent model on the copy task (token input, a readout at every step):

    >>> task = lnn.copy_memory(3, n_symbols=4)
    >>> rnn = lnn.build_model(task, "tanh", hidden=4, dtype=np.float64, rng=0)
    >>> data = task.batch(8, rng=0)
    >>> Fd = lnn.fisher_matrix(rnn, task.loss(), data, kind="dense")
    >>> Fr = lnn.fisher_matrix(rnn, task.loss(), data, kind="kfac", approx="reduce")
    >>> Fd.paths == Fr.paths, Fd.size
    (True, ...)
    """
    from lowdisp.nn._layers import Layer

    where = "fisher_matrix"
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a lowdisp.nn Layer; got {type(model).__name__}")
    kind = check_option(kind, "kind", KINDS, where=where)
    fisher = check_option(fisher, "fisher", FLAVOURS, where=where)
    trials = check_int(trials, "trials", where=where, low=1)
    check_option(damping_style, "damping_style", DAMPING_STYLES, where=where)
    approx = check_option(approx, "approx", APPROX, where=where)
    if isinstance(exclude, str) or not isinstance(exclude, Iterable):
        raise TypeError(f"{where}: exclude must be a list of parameter path patterns")
    # one seed for the Monte-Carlo labels: EKFAC's second pass draws the same samples
    seed = int(as_rng(rng, where=where).integers(2**63))
    batches = _batches(data, where)
    kron = kind in ("kfac", "ekfac")
    col = _Collector(
        model,
        loss,
        fisher,
        trials,
        np.random.default_rng(seed),
        list(exclude),
        structured=not kron,
    )
    what = "they are left out of the Fisher matrix"
    if kron and any(b.kind == "structured" for b in find_blocks(model, (), structured=True)[0]):
        what += " (StructuredDense layers have no Kronecker rule: use kind='diag' or 'dense')"
    warn_unsupported(col.unsupported, where, what)
    blocks = col.blocks

    if kron:
        A: dict[str, np.ndarray] = {}
        G: dict[str, np.ndarray] = {}
        rows: dict[str, int] = {}

        def visit(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
            if approx == "reduce" and x.ndim == 3:  # per-sequence means and sums
                x, dy = reduce_sequences(np.asarray(x, dtype=np.float64), dy)
            if first:  # A once per batch (not per pass)
                xt = b.tilde(np.asarray(x, dtype=np.float64))
                A[b.name] = A.get(b.name, 0) + xt.T @ xt
                rows[b.name] = rows.get(b.name, 0) + xt.shape[0]
            G[b.name] = G.get(b.name, 0) + w * (dy.T @ dy)

        n = col.run(batches, visit)
        factors = {b.name: (A[b.name] / rows[b.name], G[b.name] / n) for b in blocks}
        K = KFACFisher(blocks, factors, damping_style=damping_style, approx=approx)
        if kind == "kfac":
            return K
        E = EKFACFisher.from_kfac(K)
        col.rng = np.random.default_rng(seed)
        return E._update_diag(col, batches)

    if kind == "diag":
        acc: dict[str, np.ndarray] = {}

        def visit_d(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
            if b.kind != "structured" and x.ndim <= 2:  # rank one: (dy∘²)ᵀ(ã∘²)
                xt = b.tilde(np.asarray(x, dtype=np.float64))
                S = (dy * dy).T @ (xt * xt)
            else:
                J = _example_grads(b, x, dy)
                S = np.einsum("ij,ij->j", J, J).reshape(b.d_out, b.a_size)
            acc[b.name] = acc.get(b.name, 0) + w * S

        n = col.run(batches, visit_d)
        return DiagonalFisher(blocks, {k: v / n for k, v in acc.items()})

    # dense / block: explicit per-example gradients, J rows = √w · vec ∇ℓ_i
    jrows: list[np.ndarray] = []
    parts: dict[str, np.ndarray] = {}

    def visit_j(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
        parts[b.name] = np.sqrt(w) * _example_grads(b, x, dy)
        if b is blocks[-1]:
            jrows.append(np.hstack([parts[c.name] for c in blocks]))

    n = col.run(batches, visit_j)
    J = np.vstack(jrows)
    F = J.T @ J / n
    if kind == "block":
        mask = np.zeros_like(F, dtype=bool)
        i = 0
        for b in blocks:
            s = b.d_out * b.a_size
            mask[i : i + s, i : i + s] = True
            i += s
        F = np.where(mask, F, 0.0)
    return DenseFisher(blocks, F, block_diagonal=kind == "block")
