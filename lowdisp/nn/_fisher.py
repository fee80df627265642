"""Fisher matrices of dense networks: three flavours, four representations, one interface.

:func:`fisher_matrix` runs a model over data, collects the per-example
statistics of its :class:`~lowdisp.nn.Dense` layers (:mod:`lowdisp.nn._curvature`)
and returns a curvature object: :class:`KFACFisher`, :class:`EKFACFisher`,
:class:`DiagonalFisher` or :class:`DenseFisher`. All of them have ``mv``,
``solve``, ``diag``, ``trace``, ``frobenius_norm`` and ``to_dense`` over the
parameters of the dense layers.

Vectors are dicts keyed by parameter path (like a gradient dict) or flat
arrays in the objects' layout: for each dense layer in model order, the rows
of ``W̃ = [W, b]`` (shape ``(d_out, d_in + 1)``) one after the other.
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
    weight to ``visit(block, x, dy, weight, first_pass_of_the_batch)`` (private)."""

    def __init__(self, model: Any, loss: Any, flavour: str, trials: int, rng: Any, exclude=()):
        self.where = "fisher_matrix"
        self.model = model
        self.kind = _loss_kind(loss, self.where)
        self.flavour = flavour
        self.trials = trials
        self.rng = rng
        blocks, self.unsupported, _ = find_blocks(model, exclude)
        self.blocks = [b for b in blocks if b.kind == "dense"]  # flat models: Dense layers
        for b in blocks:
            if b.kind != "dense":
                self.unsupported.extend(b.paths)
        if not self.blocks:
            raise ValueError(f"{self.where}: the model has no Dense layer with a curvature rule")

    def run(self, data: Any, visit: Any) -> int:
        n_total = 0
        attach(self.blocks)
        try:
            for x, y in _batches(data, self.where):
                z, cache = self.model.forward(x, train=False)
                if z.ndim != 2:
                    raise ValueError(
                        f"{self.where}: the model output must be (batch, outputs) (flat "
                        f"models); got shape {z.shape}"
                    )
                n_total += z.shape[0]
                passes = _cotangents(self.kind, self.flavour, z, y, self.trials, self.rng)
                for k, (dz, w) in enumerate(passes):
                    self.model.backward(cache, dz.astype(z.dtype, copy=False))
                    for b in self.blocks:
                        rec = b.recorder
                        visit(b, rec.x, np.asarray(rec.dy, dtype=np.float64), w, k == 0)
                        rec.clear()
        finally:
            detach(self.blocks)
        return n_total


# ---------------------------------------------------------------------------
# curvature objects
# ---------------------------------------------------------------------------


class _Curvature:
    """Shared layout and vector handling (private)."""

    def __init__(self, blocks: list[_Block]) -> None:
        self._layout = [(b.name, b.w_path, b.b_path, b.d_out, b.a_size) for b in blocks]
        self._warned = False

    @property
    def paths(self) -> list[str]:
        """Parameter paths covered, in layout order."""
        out = []
        for _, w, b, _, _ in self._layout:
            out.append(w)
            if b is not None:
                out.append(b)
        return out

    @property
    def size(self) -> int:
        """Number of parameters covered."""
        return sum(o * a for _, _, _, o, a in self._layout)

    def _mats(self, v: Any, where: str) -> tuple[list[np.ndarray], bool]:
        """``v`` (dict or flat) as one ``(d_out, a)`` matrix per block."""
        if isinstance(v, Mapping):
            mats = []
            for _, w, b, o, a in self._layout:
                if w not in v:
                    raise ValueError(f"{where}: v has no entry {w!r} (needs {self.paths})")
                M = np.zeros((o, a))
                M[:, : a - (b is not None)] = np.asarray(v[w], dtype=np.float64)
                if b is not None:
                    M[:, a - 1] = np.asarray(v.get(b, 0.0), dtype=np.float64)
                mats.append(M)
            return mats, True
        arr = np.asarray(v, dtype=np.float64)
        if arr.shape != (self.size,):
            raise ValueError(
                f"{where}: v must be a dict of path -> array or a flat vector of "
                f"{self.size} entries; got shape {arr.shape}"
            )
        mats, i = [], 0
        for _, _, _, o, a in self._layout:
            mats.append(arr[i : i + o * a].reshape(o, a))
            i += o * a
        return mats, False

    def _out(self, mats: list[np.ndarray], as_dict: bool) -> Any:
        if not as_dict:
            return np.concatenate([m.reshape(-1) for m in mats])
        out = {}
        for M, (_, w, b, _, a) in zip(mats, self._layout, strict=True):
            out[w] = M[:, : a - (b is not None)].copy()
            if b is not None:
                out[b] = M[:, a - 1].copy()
        return out

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
        return np.concatenate([self._diag(i).reshape(-1) for i in range(len(self._layout))])

    def trace(self) -> float:
        """Sum of the diagonal."""
        return float(self.diag().sum())

    def frobenius_norm(self) -> float:
        """Frobenius norm of the matrix."""
        self._check_ready(f"{type(self).__name__}.frobenius_norm")
        return float(np.sqrt(sum(self._fro2(i) for i in range(len(self._layout)))))

    def to_dense(self) -> np.ndarray:
        """The matrix as a dense ``(size, size)`` array (small models only)."""
        self._check_ready(f"{type(self).__name__}.to_dense")
        import scipy.linalg

        return scipy.linalg.block_diag(*[self._block(i) for i in range(len(self._layout))])

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
        names = ", ".join(n for n, *_ in self._layout)
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
    ) -> None:
        super().__init__(blocks)
        self.factors = factors
        self.damping_style = check_option(
            damping_style, "damping_style", DAMPING_STYLES, where="KFACFisher"
        )
        self._eig: dict[str, Any] = {}

    def _AG(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.factors[self._layout[i][0]]

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
        name = self._layout[i][0]
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
        obj._layout = list(kfac._layout)
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
        """Re-estimate the diagonal ``S = E[(Qᵀ vec ∇ℓ_i)²]`` on ``data`` (rank-one trick).

        Arguments as for :func:`fisher_matrix`; ``model`` must have the dense
        layers this object was built from. Returns ``self``.
        """
        where = "EKFACFisher.update_diag"
        fisher = check_option(fisher, "fisher", FLAVOURS, where=where)
        trials = check_int(trials, "trials", where=where, low=1)
        col = _Collector(model, loss, fisher, trials, as_rng(rng, where=where))
        return self._update_diag(col, data)

    def _update_diag(self, col: _Collector, data: Any) -> EKFACFisher:
        where = "EKFACFisher.update_diag"
        names = [b.name for b in col.blocks]
        if names != [n for n, *_ in self._layout]:
            raise ValueError(
                f"{where}: the model's dense layers {names} are not the layers of this "
                f"object {[n for n, *_ in self._layout]}"
            )
        acc: dict[str, np.ndarray] = {}

        def visit(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
            UA, UG = self.bases[b.name]
            XU = b.project_inputs(np.asarray(x, dtype=np.float64), UA)
            GU = dy @ UG
            S = w * ((GU * GU).T @ (XU * XU))
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
        name = self._layout[i][0]
        UA, UG = self.bases[name]
        V = UG.T @ M @ UA
        V *= self.diagonals[name] + damping
        return UG @ V @ UA.T

    def _solve(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        name = self._layout[i][0]
        UA, UG = self.bases[name]
        V = UG.T @ M @ UA
        V /= self.diagonals[name] + damping
        return UG @ V @ UA.T

    def _diag(self, i: int) -> np.ndarray:
        name = self._layout[i][0]
        UA, UG = self.bases[name]
        return (UG * UG) @ self.diagonals[name] @ (UA * UA).T

    def _fro2(self, i: int) -> float:
        return float(np.sum(self.diagonals[self._layout[i][0]] ** 2))

    def _block(self, i: int) -> np.ndarray:
        name = self._layout[i][0]
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
        return (self.diagonals[self._layout[i][0]] + damping) * M

    def _solve(self, i: int, M: np.ndarray, damping: float) -> np.ndarray:
        return M / (self.diagonals[self._layout[i][0]] + damping)

    def _diag(self, i: int) -> np.ndarray:
        return self.diagonals[self._layout[i][0]]

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

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        mats, i = [], 0
        for _, _, _, o, a in self._layout:
            mats.append(flat[i : i + o * a].reshape(o, a))
            i += o * a
        return mats

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
) -> Any:
    """The Fisher matrix of a feed-forward model's dense layers on ``data``.

    Parameters
    ----------
    model : Layer
        A flat model (output ``(batch, outputs)``), e.g. from
        :func:`~lowdisp.nn.build_mlp`; its :class:`~lowdisp.nn.Dense` layers
        are covered, other parameterised layers are reported once
        (:class:`CurvatureWarning`) and left out.
    loss : SoftmaxCrossEntropy, SigmoidBinaryCrossEntropy or MSE
        Defines the per-example loss ``ℓ_i`` (the loss with ``reduction="sum"``
        over one example; for MSE, ``Σ_j (z_ij − t_ij)²``).
    data : (x, y) or iterable of (x, y)
        Batches; the Fisher is the average over all examples.
    kind : {"kfac", "ekfac", "diag", "dense", "block"}
        :class:`KFACFisher`, :class:`EKFACFisher` (its diagonal estimated on
        the same data), :class:`DiagonalFisher`, or :class:`DenseFisher` (full,
        or block-diagonal per layer), the last two from explicit per-example
        gradients (small models only).
    fisher : {"empirical", "mc", "exact"}
        Which output gradients: the true labels (empirical Fisher), labels
        sampled from the model's predictive distribution (``trials`` samples
        per example: the Monte-Carlo Fisher), or the exact expectation over
        the predictive distribution from a square root of the output Hessian
        (``diag(p) − ppᵀ`` for softmax: C backward passes; the GGN).
    trials : int
        Samples per example of ``fisher="mc"``.
    rng : seed or Generator, optional
        For ``fisher="mc"``.
    exclude : list of str
        Parameter path patterns to leave out.
    damping_style : {"paper", "authors_code", "none"}
        π of a :class:`KFACFisher`'s damped operator (see :class:`lowdisp.nn.KFAC`).

    Returns
    -------
    KFACFisher, EKFACFisher, DiagonalFisher or DenseFisher

    Notes
    -----
    Per dense layer ``F_l = E_i[(g_i g_iᵀ) ⊗ (ã_i ã_iᵀ)]``, ``g_i = ∂ℓ_i/∂z_i``;
    KFAC takes ``G ⊗ A`` with ``A = E[ã ãᵀ]``, ``G = E[g gᵀ]``; EKFAC keeps
    KFAC's eigenbasis ``Q`` and takes the exact ``S = E[(Qᵀ vec ∇ℓ_i)²]``, the
    best diagonal in that basis (so its Frobenius error to ``F_l`` is never
    larger than KFAC's). The model runs in evaluation mode (no dropout).

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
    """
    from lowdisp.nn._layers import Layer

    where = "fisher_matrix"
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a lowdisp.nn Layer; got {type(model).__name__}")
    kind = check_option(kind, "kind", KINDS, where=where)
    fisher = check_option(fisher, "fisher", FLAVOURS, where=where)
    trials = check_int(trials, "trials", where=where, low=1)
    check_option(damping_style, "damping_style", DAMPING_STYLES, where=where)
    if isinstance(exclude, str) or not isinstance(exclude, Iterable):
        raise TypeError(f"{where}: exclude must be a list of parameter path patterns")
    # one seed for the Monte-Carlo labels: EKFAC's second pass draws the same samples
    seed = int(as_rng(rng, where=where).integers(2**63))
    batches = _batches(data, where)
    col = _Collector(model, loss, fisher, trials, np.random.default_rng(seed), list(exclude))
    warn_unsupported(col.unsupported, where, "they are left out of the Fisher matrix")
    blocks = col.blocks

    if kind in ("kfac", "ekfac"):
        A: dict[str, np.ndarray] = {}
        G: dict[str, np.ndarray] = {}

        def visit(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
            if first:  # A once per batch (not per pass)
                xt = b.tilde(np.asarray(x, dtype=np.float64))
                A[b.name] = A.get(b.name, 0) + xt.T @ xt
            G[b.name] = G.get(b.name, 0) + w * (dy.T @ dy)

        n = col.run(batches, visit)
        factors = {b.name: (A[b.name] / n, G[b.name] / n) for b in blocks}
        K = KFACFisher(blocks, factors, damping_style=damping_style)
        if kind == "kfac":
            return K
        E = EKFACFisher.from_kfac(K)
        col.rng = np.random.default_rng(seed)
        return E._update_diag(col, batches)

    if kind == "diag":
        acc: dict[str, np.ndarray] = {}

        def visit_d(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
            xt = b.tilde(np.asarray(x, dtype=np.float64))
            acc[b.name] = acc.get(b.name, 0) + w * ((dy * dy).T @ (xt * xt))

        n = col.run(batches, visit_d)
        return DiagonalFisher(blocks, {k: v / n for k, v in acc.items()})

    # dense / block: explicit per-example gradients, J rows = √w · vec(g ãᵀ)
    rows: list[np.ndarray] = []
    parts: dict[str, np.ndarray] = {}

    def visit_j(b: _Block, x: np.ndarray, dy: np.ndarray, w: float, first: bool) -> None:
        xt = b.tilde(np.asarray(x, dtype=np.float64))
        J = np.sqrt(w) * (dy[:, :, None] * xt[:, None, :]).reshape(dy.shape[0], -1)
        parts[b.name] = J
        if b is blocks[-1]:
            rows.append(np.hstack([parts[c.name] for c in blocks]))

    n = col.run(batches, visit_j)
    J = np.vstack(rows)
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
