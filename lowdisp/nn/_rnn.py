"""Recurrent cells with a fused forward pass and BPTT, and the ``RNN`` layer.

Convention (column vectors, as in the papers): ``z_t = W h_{t-1} + U x_t + b``,
``h_t = σ(z_t)``. Batches are rows, so the code computes
``Z_t = H_{t-1} Wᵀ + X_t Uᵀ + b`` with ``H`` of shape ``(batch, hidden)``;
``W`` is stored exactly as the paper's matrix (not transposed), so
``model.params()["rnn.cell.W"]`` (dense) or the map's ``forward(theta)``
(orthogonal cells) *is* the recurrent matrix acting on column vectors.

Speed (notes/rnn.md §12): the input projection ``X Uᵀ`` for all steps is one
GEMM (a row gather for token input) before the loop; the loop over time runs
over preallocated buffers with ``out=`` ufuncs and one small GEMM per step
(none at the first step when ``h_0 = 0``; the tanh cell builds ``z_t`` in place
in its output buffer); ``dW = Σ_t δ_tᵀ h_{t-1}``, ``dU`` and ``dX`` are GEMMs
(a row scatter for tokens) over blocks of ``_BLOCK`` steps of stacked ``δ``,
taken while the block is still in cache (``(T·B)``-row products over buffers
streamed from memory were slower); ``W`` is formed from its parameterization
once per forward pass and ``dL/dW`` is pulled back once through the map's ``vjp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lowdisp._validation import (
    as_plain_ndarray,
    as_rng,
    check_bool,
    check_int,
    check_option,
    check_real,
    lookup,
)
from lowdisp.nn import _structures as S
from lowdisp.nn._layers import (
    _SMALL_GEMM,
    Layer,
    Workspace,
    _as_grad,
    _as_input,
    _as_tokens,
    _check_dtype,
    _Factored,
    _sigmoid,
)
from lowdisp.nn._modrelu import MODRELU_EPS
from lowdisp.nn._regularizers import parse_regularizers

__all__ = [
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "ReLURNNCell",
    "TanhRNNCell",
    "make_cell",
]

#: time steps per block of the BPTT reductions (δ of 8 steps: 0.5 MB in float64)
_BLOCK = 8
#: bytes of one block of δ in the BPTT of a diagonal/block W: fewer steps per block for
#: wide states, so the δ block and the readout's dH block stay in L2 (n = 512, batch 64:
#: 2 steps, the block:8 BPTT 1.24x (float32) / 1.32x (float64) faster than 8 steps)
_RING_BYTES = 256 * 1024


def _row_chunks(B: int, K: int, N: int) -> list[slice]:
    """Row slices of a per-step ``(B, K) @ (K, N)`` product: halved until each chunk's
    ``rows·K·N`` fits ``_SMALL_GEMM`` (OpenBLAS's small-matrix path, no packing; at
    most 8 chunks), one slice when that cannot be reached. The dense tanh cell's
    ``(64, 128) @ (128, 128)`` runs as two ``(32, 128)`` products: Trainer step 1.03x
    f32 / 1.07x f64."""
    s = 1
    while s < 8 and -(-B // s) * K * N > _SMALL_GEMM:
        s *= 2
    step = -(-B // s)
    if s == 1 or step * K * N > _SMALL_GEMM:
        return [slice(0, B)]
    return [slice(lo, min(lo + step, B)) for lo in range(0, B, step)]


def _ring_steps(T: int, B: int, N: int, dtype: np.dtype) -> int:
    """Steps per block of the Elman BPTT reductions: at most ``_BLOCK`` and ``T``, at
    least 2 (one-step blocks cost a call per step), else what fits ``_RING_BYTES``."""
    fit = _RING_BYTES // max(1, B * N * np.dtype(dtype).itemsize)
    return max(1, min(_BLOCK, T, max(2, fit)))


# ---------------------------------------------------------------------------
# Recurrent weight adapters: dense W or a lowdisp.orthogonal map
# ---------------------------------------------------------------------------


class _DenseWeight:
    """The recurrent matrix is the parameter ``W`` itself."""

    is_complex = False

    def __init__(self, n: int, dtype: np.dtype, gen: np.random.Generator) -> None:
        lim = 1.0 / np.sqrt(n)  # torch.nn.RNN's default
        self.params = {"W": gen.uniform(-lim, lim, (n, n)).astype(dtype)}
        self.map = None

    def build(self, params: dict) -> tuple[np.ndarray, Any]:
        return params["W"], None

    def pullback(self, cache: Any, dW: np.ndarray) -> dict:
        return {"W": dW}


class _MapWeight:
    """The recurrent matrix is ``map.forward(theta)``; complex maps in real-composite form."""

    def __init__(
        self, pmap: Any, n: int, dtype: np.dtype, gen: np.random.Generator, init: str | None
    ) -> None:
        self.map = pmap
        self.n = n
        self.dtype = dtype
        if init is None:
            theta = pmap.sample(rng=gen)
        else:
            theta = pmap.right_inverse(_initial_matrix(init, n, gen))
        self.dict_theta = isinstance(theta, dict)
        if self.dict_theta:
            self.params = {f"W.theta.{k}": self._cast(np.asarray(v)) for k, v in theta.items()}
        else:
            self.params = {"W.theta": self._cast(np.asarray(theta))}
        W, _ = pmap.forward(theta)
        self.is_complex = bool(np.iscomplexobj(W))

    def _cast(self, v: np.ndarray) -> np.ndarray:
        if hasattr(self.map, "riemannian_step"):
            # a parameter on the manifold itself (FullUnitary's W) stays in double
            # precision: a float32 round-off per step would drift off the group
            return v.astype(np.complex128 if v.dtype.kind == "c" else np.float64)
        if v.dtype.kind == "c":
            return v.astype(np.complex64 if self.dtype == np.float32 else np.complex128)
        return v.astype(self.dtype)

    def theta(self, params: dict) -> Any:
        if self.dict_theta:
            return {k[len("W.theta.") :]: v for k, v in params.items() if k.startswith("W.theta.")}
        return params["W.theta"]

    def build(self, params: dict) -> tuple[np.ndarray, Any]:
        W, cache = self.map.forward(self.theta(params))
        if self.is_complex:
            A, B = W.real, W.imag
            Wr = np.block([[A, -B], [B, A]]).astype(self.dtype)
            return Wr, cache
        return np.asarray(W, dtype=self.dtype), cache

    def pullback(self, cache: Any, dW: np.ndarray) -> dict:
        if self.is_complex:
            n = self.n
            g = (dW[:n, :n] + dW[n:, n:]) + 1j * (dW[n:, :n] - dW[:n, n:])
            dW = g
        dtheta = self.map.vjp(cache, dW)
        if self.dict_theta:
            return {f"W.theta.{k}": self._cast(np.asarray(v)) for k, v in dtheta.items()}
        return {"W.theta": self._cast(np.asarray(dtheta))}


class _StructuredWeight:
    """The recurrent matrix is a structured matrix of :mod:`lowdisp.nn._structures` (the
    structures of :class:`~lowdisp.nn.StructuredDense`), parameters ``"<prefix>.<name>"``.

    ``build`` forms the dense matrix once per forward pass (``I Mᵀ`` through the
    structure's fast product, so the fused loop keeps its one GEMM per step) and
    ``pullback`` maps ``dL/dW`` to the parameters with the structure's vjp at the
    identity (``<dW, M> = <dWᵀ, I Mᵀ>``): O(r n² log n) per pass for the FFT
    families, against O(T B n²) for the loop itself.
    """

    is_complex = False
    map = None

    def __init__(
        self,
        structure: str,
        rank: int | None,
        corners: bool,
        n_out: int,
        n_in: int,
        dtype: np.dtype,
        gen: np.random.Generator,
        where: str,
        prefix: str = "W",
    ) -> None:
        self.structure, self.rank, self.corners = S.check_structure(
            structure, rank, corners, n_in, n_out, where
        )
        self.prefix = prefix
        self.tiling = S.Tiling(self.structure, n_in, n_out, self.corners)
        self.n_in, self.dtype = n_in, dtype
        # torch's U(±1/√n) recurrent init has entry variance 1/(3n): the same E‖W‖_F²
        raw = S.init_params(self.tiling, self.rank, 1.0 / (3.0 * n_in), gen, dtype)
        self.params = {f"{prefix}.{k}": v for k, v in raw.items()}

    def _own(self, params: dict) -> dict:
        pre = self.prefix + "."
        return {k[len(pre) :]: v for k, v in params.items() if k.startswith(pre)}

    def build(self, params: dict) -> tuple[np.ndarray, Any]:
        own = self._own(params)
        eye = np.eye(self.n_in, dtype=self.dtype)
        Wt, cache = S.apply(self.tiling, own, eye)
        return np.ascontiguousarray(Wt.T, dtype=self.dtype), (own, cache)

    def pullback(self, cache: Any, dW: np.ndarray) -> dict:
        own, inner = cache
        dWT = np.ascontiguousarray(dW.T, dtype=self.dtype)
        _, g = S.vjp(self.tiling, own, inner, dWT)
        return {f"{self.prefix}.{k}": np.asarray(v, dtype=self.dtype) for k, v in g.items()}

    def options(self) -> dict[str, Any]:
        return {"rank": self.rank, "corners": self.corners}


class _DenseOps:
    """The recurrent product of a dense ``W`` (the regularized loop's generic form)."""

    kind = None

    @staticmethod
    def prepare(W: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(W.T)

    @staticmethod
    def mul(P: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        np.matmul(h, P, out=out)

    @staticmethod
    def unprepare(P: np.ndarray) -> np.ndarray:
        return P.T

    @staticmethod
    def mul_t(W: np.ndarray, d: np.ndarray, out: np.ndarray) -> None:
        np.matmul(d, W, out=out)

    @staticmethod
    def grad_shape(N: int) -> tuple[int, ...]:
        return (N, N)

    @staticmethod
    def grad_add(D2: np.ndarray, H2: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> None:
        np.matmul(D2.T, H2, out=tmp)
        np.add(acc, tmp, out=acc)


class _DiagonalWeight:
    """``recurrent="diagonal"`` (IndRNN-like): ``W = diag(w)``, parameter ``W.diag``
    ``U[0, 1)``; the step is ``h ⊙ w``, O(B n)."""

    is_complex = False
    map = None
    kind = "diagonal"

    def __init__(self, n: int, dtype: np.dtype, gen: np.random.Generator) -> None:
        self.params = {"W.diag": gen.uniform(0.0, 1.0, n).astype(dtype)}

    def build(self, params: dict) -> tuple[np.ndarray, Any]:
        return params["W.diag"], None

    def pullback(self, cache: Any, dW: np.ndarray) -> dict:
        return {"W.diag": dW}

    @staticmethod
    def prepare(W: np.ndarray) -> np.ndarray:
        return W

    @staticmethod
    def unprepare(P: np.ndarray) -> np.ndarray:
        return P

    @staticmethod
    def mul(P: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        np.multiply(h, P, out=out)

    @staticmethod
    def mul_t(W: np.ndarray, d: np.ndarray, out: np.ndarray) -> None:
        np.multiply(d, W, out=out)

    @staticmethod
    def grad_shape(N: int) -> tuple[int, ...]:
        return (N,)

    @staticmethod
    def grad_add(D2: np.ndarray, H2: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> None:
        acc += (D2 * H2).sum(axis=0)  # (einsum "ij,ij->j" is 4x slower here)

    @staticmethod
    def dense(W: np.ndarray) -> np.ndarray:
        return np.diag(W)

    def options(self) -> dict[str, Any]:
        return {}


class _BlockWeight:
    """``recurrent="block:g"``: ``W = blockdiag(W_1, ..., W_g)``, parameter ``W.blocks``
    ``(g, m, m)`` with ``m = n/g``, each block ``U[±1/√m]`` (torch's default for an
    m-unit RNN). One step is one batched GEMM over the ``(g, B, m)`` stack of
    strided views (no copy, no Python loop over blocks): O(B n²/g)."""

    is_complex = False
    map = None
    kind = "block"

    def __init__(self, n: int, g: int, dtype: np.dtype, gen: np.random.Generator) -> None:
        self.g, self.m = g, n // g
        lim = 1.0 / np.sqrt(self.m)
        self.params = {"W.blocks": gen.uniform(-lim, lim, (g, self.m, self.m)).astype(dtype)}

    def build(self, params: dict) -> tuple[np.ndarray, Any]:
        return params["W.blocks"], None

    def pullback(self, cache: Any, dW: np.ndarray) -> dict:
        return {"W.blocks": dW}

    def _view(self, h: np.ndarray) -> np.ndarray:
        return h.reshape(h.shape[0], self.g, self.m).transpose(1, 0, 2)

    def seq_view(self, A: np.ndarray) -> np.ndarray:
        """``(T, B, n)`` as ``(T, g, B, m)`` (a view): ``A_v[t]`` is ``_view(A[t])``,
        taken once per sequence instead of twice per step."""
        T, B = A.shape[:2]
        return A.reshape(T, B, self.g, self.m).transpose(0, 2, 1, 3)

    @staticmethod
    def prepare(W: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(W.transpose(0, 2, 1))

    @staticmethod
    def unprepare(P: np.ndarray) -> np.ndarray:
        return P.transpose(0, 2, 1)

    def mul(self, P: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        np.matmul(self._view(h), P, out=self._view(out))

    def mul_t(self, W: np.ndarray, d: np.ndarray, out: np.ndarray) -> None:
        np.matmul(self._view(d), W, out=self._view(out))

    def grad_shape(self, N: int) -> tuple[int, ...]:
        return (self.g, self.m, self.m)

    def grad_add(self, D2: np.ndarray, H2: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> None:
        np.matmul(self._view(D2).transpose(0, 2, 1), self._view(H2), out=tmp)
        np.add(acc, tmp, out=acc)

    def dense(self, W: np.ndarray) -> np.ndarray:
        g, m = self.g, self.m
        out = np.zeros((g * m, g * m), dtype=W.dtype)
        idx = np.arange(g)[:, None] * m + np.arange(m)
        out[idx[:, :, None], idx[:, None, :]] = W
        return out

    def options(self) -> dict[str, Any]:
        return {}


#: the orthogonal maps a ``"block_orthogonal:g"`` block can use (real, array parameter)
BLOCK_MAPS = ("scaled_cayley", "householder", "expm")


class _BlockMapWeight(_BlockWeight):
    """``recurrent="block_orthogonal:g"``: each block ``map.forward(θ_k)`` of one
    :mod:`lowdisp.orthogonal` map of order ``m``; parameter ``W.theta`` ``(g, ...)``.
    The g maps are formed and pulled back once per forward/backward pass."""

    kind = "block_orthogonal"

    def __init__(
        self, n: int, g: int, dtype: np.dtype, gen: np.random.Generator, opts: dict, where: str
    ) -> None:
        self.g, self.m = g, n // g
        opts = dict(opts)
        method = check_option(
            opts.pop("map", "scaled_cayley"), "block map", BLOCK_MAPS, where=where
        )
        self.method = method
        if method in _MAPS_WITH_DTYPE:
            opts.setdefault("dtype", dtype)
        try:
            if method == "expm":
                from lowdisp.orthogonal import ExpMap

                self.map = ExpMap(self.m, **opts)
            else:
                from lowdisp.orthogonal import orthogonal

                self.map = orthogonal(self.m, method=method, **opts)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: recurrent_options of the block map refused: {exc}") from exc
        thetas = [np.asarray(self.map.sample(rng=gen)) for _ in range(g)]
        self.params = {"W.theta": np.stack(thetas).astype(dtype)}
        self.dtype = dtype

    def build(self, params: dict) -> tuple[np.ndarray, Any]:
        outs = [self.map.forward(th) for th in params["W.theta"]]
        W = np.stack([np.asarray(w, dtype=self.dtype) for w, _ in outs])
        return W, [c for _, c in outs]

    def pullback(self, cache: Any, dW: np.ndarray) -> dict:
        g = [np.asarray(self.map.vjp(c, d)) for c, d in zip(cache, dW, strict=True)]
        return {"W.theta": np.stack(g).astype(self.dtype)}

    def options(self) -> dict[str, Any]:
        return {"map": self.method, **_map_options(self.method, self.map)}


def _sparse_recurrent(
    recurrent: Any, options: dict, init: str | None, n: int, dtype: np.dtype, gen: Any, where: str
) -> Any:
    """The weight adapter of ``"diagonal"``, ``"block:g"``, ``"block_orthogonal:g"``, or None."""
    if not isinstance(recurrent, str):
        return None
    name, colon, arg = recurrent.partition(":")
    if name not in ("diagonal", "block", "block_orthogonal"):
        return None
    if init is not None:
        raise ValueError(f"{where}: recurrent_init does not apply to recurrent={recurrent!r}")
    if name == "diagonal":
        if colon or options:
            raise ValueError(
                f"{where}: recurrent='diagonal' takes no ':g' and no recurrent_options; "
                f"got {recurrent!r}, {sorted(options)}"
            )
        return _DiagonalWeight(n, dtype, gen)
    try:
        g = int(arg)
    except ValueError:
        raise ValueError(
            f"{where}: recurrent={recurrent!r} needs the number of blocks g after ':', "
            f"e.g. '{name}:8'"
        ) from None
    if g < 1 or n % g:
        raise ValueError(
            f"{where}: recurrent={recurrent!r}: the number of blocks g must be >= 1 and divide "
            f"hidden_size = {n}; got g = {g}"
        )
    if name == "block":
        if options:
            raise TypeError(f"{where}: recurrent={recurrent!r} takes no recurrent_options")
        return _BlockWeight(n, g, dtype, gen)
    return _BlockMapWeight(n, g, dtype, gen, options, where)


def _copy_initial(params: dict, initial: dict, prefix: str, where: str) -> None:
    """Start from the parameter values of a given StructuredDense (same shapes)."""
    for k, v in initial.items():
        dst = params.get(f"{prefix}.{k}")
        if dst is None or dst.shape != np.shape(v):
            raise ValueError(
                f"{where}: the StructuredDense recurrent must be n x n with n = hidden_size "
                f"(parameter {k!r} of shape {np.shape(v)} does not fit)"
            )
        dst[...] = v


def _structured_recurrent(
    recurrent: Any, options: dict, init: str | None, where: str
) -> tuple[str, int | None, bool, dict | None] | None:
    """``(structure, rank, corners, initial params or None)`` when ``recurrent`` names a
    structure (``"toeplitz_like"``, ``"toeplitz_like:4"``) or is a square
    :class:`~lowdisp.nn.StructuredDense`; ``None`` otherwise."""
    initial = None
    if isinstance(recurrent, str):
        name, colon, rk = recurrent.partition(":")
        if name not in S.STRUCTURES or name == "unconstrained":
            if colon:
                valid = ", ".join(s for s in S.STRUCTURES if s != "unconstrained")
                raise ValueError(
                    f"{where}: unknown structured recurrent {recurrent!r}; 'name:rank' takes a "
                    f"structure of StructuredDense: {valid}"
                )
            return None
        opts = dict(options)
        unknown = set(opts) - {"rank", "corners"}
        if unknown:
            raise TypeError(
                f"{where}: recurrent={recurrent!r} takes recurrent_options 'rank' and "
                f"'corners' only; got {sorted(unknown)}"
            )
        rank = opts.get("rank")
        if colon:
            try:
                r = int(rk)
            except ValueError:
                raise ValueError(
                    f"{where}: recurrent={recurrent!r}: the rank after ':' must be an integer"
                ) from None
            if rank is not None and rank != r:
                raise ValueError(
                    f"{where}: recurrent={recurrent!r} and recurrent_options rank={rank!r} disagree"
                )
            rank = r
        corners = opts.get("corners", False)
    elif type(recurrent).__name__ == "StructuredDense" and hasattr(recurrent, "structure"):
        if options:
            raise TypeError(f"{where}: a StructuredDense recurrent takes no recurrent_options")
        name, rank, corners = recurrent.structure, recurrent.rank, recurrent.corners
        initial = {k: v for k, v in recurrent.params().items() if k != "b"}
    else:
        return None
    if init is not None:
        raise ValueError(
            f"{where}: recurrent_init applies to dense and orthogonal recurrent matrices, "
            f"not to recurrent={name!r}"
        )
    if not S.STRUCTURES[name].ranked and rank is None:
        return name, None, bool(corners), initial
    return name, rank, corners, initial


#: ``recurrent=`` names -> (lowdisp.orthogonal method name or None for dense, default activation)
RECURRENT: dict[str, tuple[str | None, str]] = {
    "dense": (None, "tanh"),
    "scaled_cayley": ("scaled_cayley", "modrelu"),
    "householder": ("householder", "modrelu"),
    "svd": ("svd", "relu"),
    "full_unitary": ("full_unitary", "modrelu"),
    "restricted_unitary": ("restricted_unitary", "modrelu"),
    "expm": ("expm", "modrelu"),
}


#: ``recurrent_init=`` names (lowdisp.orthogonal initializers), used through ``right_inverse``
INITS = ("henaff", "cayley", "haar", "torus", "identity")


def _initial_matrix(init: str, n: int, gen: np.random.Generator) -> np.ndarray:
    from lowdisp.orthogonal import cayley_init, haar, henaff, identity, torus

    fn = lookup(
        {"henaff": henaff, "cayley": cayley_init, "haar": haar, "torus": torus, "identity": None},
        init,
        "recurrent_init",
        where="RNNCell",
    )
    return identity(n) if fn is None else fn(n, rng=gen)


def _make_weight(
    recurrent: Any,
    n: int,
    dtype: np.dtype,
    gen: np.random.Generator,
    options: dict,
    init: str | None = None,
) -> Any:
    if not isinstance(recurrent, str):
        # a ready parameterization object following the protocol
        for attr in ("sample", "forward", "vjp"):
            if not hasattr(recurrent, attr):
                raise TypeError(
                    f"RNNCell: recurrent must be a name ({', '.join(RECURRENT)}) or a "
                    f"parameterization with sample/forward/vjp; got {type(recurrent).__name__}"
                )
        return _MapWeight(recurrent, n, dtype, gen, init)
    method, _ = lookup(RECURRENT, recurrent, "recurrent", where="RNNCell")
    if method is None:
        if options:
            raise TypeError(f"RNNCell: recurrent='dense' takes no options; got {sorted(options)}")
        dw = _DenseWeight(n, dtype, gen)
        if init is not None:
            dw.params["W"][...] = _initial_matrix(init, n, gen)
        return dw
    from lowdisp.orthogonal import orthogonal

    opts = dict(options)
    if method in _MAPS_WITH_DTYPE:
        opts.setdefault("dtype", dtype)
    if method == "restricted_unitary" and "perm" not in opts:
        opts.setdefault("rng", gen)  # the permutation comes from the cell's rng (reproducible)
    if init is not None and method == "scaled_cayley":
        # W D must not have eigenvalue -1 and det W = (-1)^n_neg: an even n_neg near n/2
        # (scoRNN's copy-task choice) reaches a Henaff/Haar start
        opts.setdefault("n_neg", 2 * (n // 4))
    try:
        if method == "expm":
            from lowdisp.orthogonal import ExpMap

            pmap = ExpMap(n, **opts)  # its own ``method=`` would clash with orthogonal()'s
        else:
            pmap = orthogonal(n, method=method, **opts)
    except (TypeError, ValueError) as exc:
        if type(exc) not in (TypeError, ValueError):
            raise
        raise type(exc)(
            f"RNNCell: recurrent_options {dict(options)!r} of recurrent={recurrent!r} "
            f"refused: {exc}"
        ) from exc
    return _MapWeight(pmap, n, dtype, gen, init)


#: maps whose constructor takes ``dtype=`` (the unitary ones compute in complex128)
_MAPS_WITH_DTYPE = ("scaled_cayley", "householder", "svd", "expm")


def _map_options(recurrent: str, pmap: Any) -> dict[str, Any]:
    """Every constructor argument of a named map, read back from the map (JSON-able):
    what :func:`lowdisp.orthogonal.orthogonal` needs to rebuild exactly this map."""
    if pmap is None:
        return {}
    if recurrent == "scaled_cayley":
        return {"n_neg": int(pmap.n_neg), "dtype": pmap.dtype.name}
    if recurrent == "householder":
        return {"k": int(pmap.k), "dtype": pmap.dtype.name}
    if recurrent == "svd":
        return {
            "k": int(pmap.ku),
            "sigma_star": float(pmap.sigma_star),
            "margin": float(pmap.margin),
            "dtype": pmap.dtype.name,
        }
    if recurrent == "full_unitary":
        return {"real": bool(pmap.real)}
    if recurrent == "restricted_unitary":
        return {"perm": [int(i) for i in pmap.perm]}
    if recurrent == "expm":
        return {"method": pmap.method, "dtype": pmap.dtype.name}
    raise AssertionError(f"unknown recurrent map {recurrent!r}")  # pragma: no cover


# ---------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------


class _Cell:
    """Shared parts of the cells: input handling, parameters, dtype."""

    input_size: int
    hidden_size: int
    state_size: int
    dtype: np.dtype
    _params: dict[str, np.ndarray]

    def params(self) -> dict[str, np.ndarray]:
        return dict(self._params)

    def manifolds(self) -> dict[str, Any]:
        return {}

    def get_config(self) -> dict[str, Any] | None:
        """The constructor arguments that rebuild this cell (JSON-able), or ``None``;
        see :meth:`lowdisp.nn.Layer.get_config`."""
        return None

    def _buf(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        ws = self.__dict__.get("_ws")
        if ws is None:
            ws = self._ws = Workspace()
        return ws.get(name, shape, self.dtype)

    def _forward_sequence(self, x: np.ndarray, h0: Any) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward_sequence(self, cache: Any, dH: Any, dh_last: Any = None) -> tuple[Any, dict]:
        raise NotImplementedError

    def validate(self, x: Any) -> np.ndarray:
        name = type(self).__name__
        x = as_plain_ndarray(x, "x", where=name)
        arr = np.asarray(x) if isinstance(x, np.ndarray) else x
        if isinstance(arr, np.ndarray) and arr.dtype.kind in "iu":
            if arr.ndim != 2:
                raise ValueError(
                    f"{name}: token input must have shape (time, batch); got {arr.shape}"
                )
            out = _as_tokens(arr, name, self.input_size)
        else:
            out = _as_input(arr, name, self.dtype, last=self.input_size, ndim=(3,))
        if out.shape[0] == 0 or out.shape[1] == 0:
            what = "time step (T = 0)" if out.shape[0] == 0 else "sequence (batch size 0)"
            raise ValueError(
                f"{name}: x must hold at least one {what}; got shape {out.shape} "
                f"(a recurrent layer has no output for an empty sequence or batch)"
            )
        return out

    def _check_h0(self, h0: Any, x: np.ndarray) -> np.ndarray | None:
        if h0 is None:
            return None
        where = f"{type(self).__name__}.forward_sequence"
        h = _as_input(h0, where, self.dtype, last=None, name="h0")
        want = (x.shape[1], self.state_size)
        if h.shape != want:
            raise ValueError(f"{where}: h0 must have shape {want}; got {h.shape}")
        return h

    def _project(
        self, x: np.ndarray, Wx: np.ndarray, b: np.ndarray | None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``X Wxᵀ + b`` for all steps, shape ``(T, B, rows of Wx)``; a gather for tokens."""
        T, B = x.shape[:2]
        if out is None:
            out = np.empty((T, B, Wx.shape[0]), dtype=self.dtype)
        if x.dtype.kind in "iu":
            # one-hot input: gather rows of the small table Wxᵀ + b (bias folded in)
            table = Wx.T + b if b is not None else np.ascontiguousarray(Wx.T)
            return np.take(table, x, axis=0, out=out, mode="clip")
        else:
            d = x.shape[2]
            np.matmul(x.reshape(T * B, d), Wx.T, out=out.reshape(T * B, -1))
            XW = out
        if b is not None:
            XW += b
        return XW

    def _input_grads(self, x: np.ndarray, dZ2: np.ndarray, Wx: np.ndarray):
        """``(dX, dWx)`` from the stacked pre-activation gradients ``dZ2`` (T·B, rows)."""
        if x.dtype.kind in "iu":
            from lowdisp.kernels.rnn_modrelu import scatter_add_rows

            dWxT = np.zeros((self.input_size, dZ2.shape[1]), dtype=dZ2.dtype)
            scatter_add_rows(x.reshape(-1), dZ2, dWxT)
            return None, dWxT.T.copy()
        T, B, d = x.shape
        x2 = x.reshape(T * B, d)
        return (dZ2 @ Wx).reshape(T, B, d), dZ2.T @ x2


class _BlockGrads:
    """Block-wise reductions of BPTT (private): ``dW``, ``dU`` and ``dX`` of an Elman cell.

    ``add(lo, D)`` takes the deltas ``D = δ_lo, …, δ_{lo+k-1}`` (shape
    ``(k, B, N)``) and accumulates ``dW += Σ δ_t h_{t-1}ᵀ`` (one GEMM over the
    block; the rows of ``h_0 = 0`` are skipped), ``dU += Σ δ_t x_tᵀ`` (a
    scatter-add of rows for token input) and writes ``dX[lo:lo+k] = D U``.
    The regularized loop passes ``ext`` (the realised noise): the effective
    ``U``, the variational mask of ``h_{t-1}``, per-step noise of ``U`` and
    fast dropout's extra terms; ``ops`` is the product of a diagonal/block W.
    """

    def __init__(
        self,
        cell: _Cell,
        x: np.ndarray,
        H: np.ndarray,
        zero_h0: bool,
        ops: Any = None,
        ext: dict | None = None,
    ) -> None:
        T, B, N = H.shape[0] - 1, H.shape[1], H.shape[2]
        dt = cell.dtype
        self.x, self.H, self.N = x, H, N
        self.first = 1 if zero_h0 else 0
        self.ops = _DenseOps if ops is None else ops
        self.ext = ext
        self.U = cell._params["U"] if ext is None else ext["U"]
        self.tokens = x.dtype.kind in "iu"
        # curvature statistics (lowdisp.nn._curvature): Σ_t δ_tᵀδ_t block by block
        self.stats = getattr(cell, "_stats", None)
        if self.stats is not None:
            self.stats.begin(x, H)
        gshape = self.ops.grad_shape(N)
        self.dW = np.zeros(gshape, dtype=dt)
        self.tmpW = np.empty(gshape, dtype=dt)
        if self.tokens:
            self.dUT = np.zeros((cell.input_size, N), dtype=dt)
            self.dX = None
        else:
            d = x.shape[2]
            self.dU = np.zeros((N, d), dtype=dt)
            self.tmpU = np.empty((N, d), dtype=dt)
            self.dX = np.empty((T, B, d), dtype=dt)
        if ext is not None and "fd_S" in ext:  # fast dropout: dL/dv of v = c (x²)(U²)ᵀ
            self.fd_dUT = (
                np.zeros((cell.input_size, N), dtype=dt)
                if self.tokens
                else np.zeros((N, d), dtype=dt)
            )

    def add(self, lo: int, D: np.ndarray) -> None:
        N = self.N
        hi = lo + D.shape[0]
        D2 = D.reshape(-1, N)
        ext = self.ext
        if self.stats is not None:
            self.stats.add(D2, lo)  # rows of steps lo, lo + 1, ... (curvature recorder)
        s = max(lo, self.first)
        if s < hi:
            Db = D[s - lo :].reshape(-1, N)
            Hs = self.H[s:hi]
            if ext is not None and "h_mask" in ext:
                Hs = Hs * ext["h_mask"]
            self.ops.grad_add(Db, Hs.reshape(-1, N), self.dW, self.tmpW)
        if self.tokens:
            from lowdisp.kernels.rnn_modrelu import scatter_add_rows

            scatter_add_rows(self.x[lo:hi].reshape(-1), D2, self.dUT)
        else:
            d = self.x.shape[2]
            x2 = self.x[lo:hi].reshape(-1, d)
            np.matmul(D2.T, x2, out=self.tmpU)
            np.add(self.dU, self.tmpU, out=self.dU)
            np.matmul(D2, self.U, out=self.dX[lo:hi].reshape(-1, d))
            if ext is not None and "u_add_step" in ext:
                self.dX[lo:hi] += np.matmul(D, ext["u_add_step"][lo:hi])
        if ext is not None and "fd_S" in ext:
            # z += S ⊙ ε with S = √v: dL/dv = δ ε / (2 S) (0 where S = 0, i.e. v = 0)
            S = ext["fd_S"][lo:hi]
            Gv = np.divide(D * ext["fd_eps"][lo:hi], 2 * S, out=np.zeros_like(D), where=S > 0)
            Gv2 = Gv.reshape(-1, N)
            c2 = 2 * ext["fd_c"]
            if self.tokens:
                from lowdisp.kernels.rnn_modrelu import scatter_add_rows

                scatter_add_rows(self.x[lo:hi].reshape(-1), Gv2, self.fd_dUT)
            else:
                d = self.x.shape[2]
                x2 = self.x[lo:hi].reshape(-1, d)
                self.fd_dUT += Gv2.T @ (x2 * x2)
                self.dX[lo:hi] += (c2 * x2 * (Gv2 @ (self.U * self.U))).reshape(
                    -1, *self.dX.shape[1:]
                )

    def result(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(dW, dX, dU)``."""
        dU = self.dUT.T.copy() if self.tokens else self.dU
        if self.ext is not None and "fd_S" in self.ext:
            acc = self.fd_dUT.T if self.tokens else self.fd_dUT
            dU = dU + (2 * self.ext["fd_c"]) * self.U * acc
        return self.dW, self.dX, dU


class RNNCell(_Cell):
    """Elman cell ``h_t = σ(W h_{t-1} + U x_t + b)`` with a dense or orthogonal ``W``.

    Parameters
    ----------
    input_size : int
        Features per step, or the vocabulary size for integer token input
        (tokens are one-hot: the input projection is a column gather of ``U``).
    hidden_size : int
        Number of hidden units ``n`` (complex units for the unitary maps, whose
        state is stored as ``[Re h, Im h]`` with ``2n`` real features).
    activation : {"tanh", "relu", "modrelu"}, optional
        Default per ``recurrent``: tanh for dense, ReLU for ``"svd"``
        (Spectral-RNN), modReLU for the other maps (scoRNN, uRNN, expRNN).
        For complex maps modReLU acts on complex units.
    recurrent : str or parameterization
        ``"dense"``, ``"scaled_cayley"``, ``"householder"``, ``"svd"``,
        ``"full_unitary"``, ``"restricted_unitary"``, ``"expm"`` (maps of
        :func:`lowdisp.orthogonal.orthogonal`), or any object with
        ``sample/forward/vjp``; or a structure of
        :class:`~lowdisp.nn.StructuredDense` (``"toeplitz_like:4"``,
        ``"subdiagonal"``, ``"circulant"``, ...; ``name:rank``), or a square
        ``StructuredDense`` (its values are the start): parameters
        ``W.<name>`` initialised at the dense entry variance ``1/(3n)``,
        activation tanh by default. W is formed once per forward pass through
        the structure's product and ``dL/dW`` pulled back by its vjp, so the
        fused loop is the dense one (see ``docs/layers.md``). Structurally
        sparse (``docs/recurrent.md``): ``"diagonal"`` (IndRNN-like,
        ``W = diag(w)``, parameter ``W.diag``, a step costs O(B n)),
        ``"block:g"`` (g independent dense blocks, parameter ``W.blocks``
        ``(g, n/g, n/g)``, one batched GEMM per step, O(B n²/g)) and
        ``"block_orthogonal:g"`` (each block ``map.forward(θ_k)`` of the
        orthogonal map ``recurrent_options["map"]``: ``"scaled_cayley"``
        (default), ``"householder"`` or ``"expm"``; parameter ``W.theta``).
    recurrent_options : dict, optional
        Keyword arguments of the map (e.g. ``{"n_neg": 64}``); for a
        structure ``{"rank": r, "corners": bool}``.
    recurrent_init : {"henaff", "cayley", "haar", "torus", "identity"}, optional
        Start from this matrix of :mod:`lowdisp.orthogonal` (through the map's
        ``right_inverse``) instead of the map's own ``sample``. ``"henaff"``
        (eigenphases uniform on the circle) is the copy-task initialization of
        expRNN; with ``"scaled_cayley"`` use an even ``n_neg`` (det = +1).
    regularizers : dict, optional
        ``{name: options}`` from :data:`lowdisp.nn.REGULARIZERS`:
        ``input_noise`` (std), ``weight_noise`` (std, or
        ``{"std", "per": "sequence" | "step", "input": bool}``), ``dropout``
        (p; ``{"p", "input", "output"}``: the non-recurrent connections, a
        fresh mask per step), ``variational_dropout`` (p; ``{"p", "input",
        "recurrent", "output"}``: one mask per sequence), ``fast_dropout`` (p:
        the Gaussian approximation of dropout on the input connection),
        ``l1``/``l2`` (weight; ``{"weight", "params"}``), ``max_norm`` (c),
        ``spectral_norm`` (True or ``{"n_iter"}``) and ``unit_disk`` (True or
        ``{"n_iter"}``). Noise acts in train mode only, drawn from the ``rng``
        given to ``forward`` (the trainer's); see ``docs/recurrent.md``.
    dtype : {float32, float64}
    rng : seed or Generator, optional

    Notes
    -----
    Parameters: ``U`` ``(N, input_size)`` Glorot-uniform, ``b`` ``(N,)``
    (the additive bias; for modReLU it is the modReLU bias, one per unit, and
    there is no additive bias), and ``W`` ``(n, n)`` (dense, torch's
    ``U[±1/√n]``) or ``W.theta`` (the map's parameter; ``W.theta.<key>`` if
    the map's parameter is a dict). BPTT:
    ``δ_t = σ'(z_t) ⊙ (∂L/∂h_t + Wᵀ δ_{t+1})``, ``dW = Σ_t δ_t h_{t-1}ᵀ``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import RNNCell
    >>> cell = RNNCell(3, 4, dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.ones((5, 2, 3)))
    >>> H.shape
    (5, 2, 4)
    >>> dX, grads = cell.backward_sequence(cache, np.ones_like(H))
    >>> sorted(grads)
    ['U', 'W', 'b']
    """

    ACTIVATIONS = ("tanh", "relu", "modrelu")
    #: :class:`RNN` passes ``train`` and the trainer's rng (noise regularizers)
    takes_mode = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str | None = None,
        recurrent: Any = "dense",
        recurrent_options: dict | None = None,
        recurrent_init: str | None = None,
        regularizers: Mapping[str, Any] | None = None,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = type(self).__name__
        self.input_size = check_int(input_size, "input_size", where=where, low=1)
        self.hidden_size = check_int(hidden_size, "hidden_size", where=where, low=1)
        self.dtype = _check_dtype(dtype, where)
        gen = as_rng(rng, where=where)
        if recurrent_options is not None and not isinstance(recurrent_options, Mapping):
            raise TypeError(
                f"{where}: recurrent_options must be a dict of keyword arguments of the map; "
                f"got {type(recurrent_options).__name__}"
            )
        if recurrent_options is not None and not all(isinstance(k, str) for k in recurrent_options):
            raise TypeError(f"{where}: recurrent_options keys must be strings")
        if recurrent_init is not None and not isinstance(recurrent_init, str):
            raise TypeError(
                f"{where}: recurrent_init must be None or a name; got {recurrent_init!r}"
            )
        if activation is not None and not isinstance(activation, str):
            raise TypeError(f"{where}: activation must be None or a name; got {activation!r}")
        sparse = _sparse_recurrent(
            recurrent,
            dict(recurrent_options or {}),
            recurrent_init,
            self.hidden_size,
            self.dtype,
            gen,
            where,
        )
        structured = (
            None
            if sparse is not None
            else _structured_recurrent(
                recurrent, dict(recurrent_options or {}), recurrent_init, where
            )
        )
        if sparse is not None:
            self.weight = sparse
        elif structured is not None:
            name, rank, corners, initial = structured
            n = self.hidden_size
            self.weight: Any = _StructuredWeight(name, rank, corners, n, n, self.dtype, gen, where)
            if initial is not None:
                _copy_initial(self.weight.params, initial, "W", where)
            recurrent = name
        else:
            self.weight = _make_weight(
                recurrent,
                self.hidden_size,
                self.dtype,
                gen,
                dict(recurrent_options or {}),
                recurrent_init,
            )
        if activation is None:
            if isinstance(sparse, _BlockMapWeight):
                activation = RECURRENT[sparse.method][1]
            elif structured is not None or sparse is not None:
                activation = "tanh"
            else:
                activation = RECURRENT[recurrent][1] if isinstance(recurrent, str) else "modrelu"
        self.activation = check_option(activation, "activation", self.ACTIVATIONS, where=where)
        self.recurrent = recurrent if isinstance(recurrent, str) else type(recurrent).__name__
        self.recurrent_init = recurrent_init
        if structured is not None or sparse is not None:
            self.recurrent_options = self.weight.options()
        elif isinstance(recurrent, str):
            #: every argument of the map, defaults included (n_neg, k, dtype, perm, ...)
            self.recurrent_options = _map_options(recurrent, self.weight.map)
        else:
            self.recurrent_options = dict(recurrent_options or {})
        self._custom_map = None if isinstance(recurrent, str) else recurrent
        self.is_complex = self.weight.is_complex
        N = 2 * self.hidden_size if self.is_complex else self.hidden_size
        self.state_size = N
        lim = np.sqrt(6.0 / (self.input_size + N))
        self._params = {"U": gen.uniform(-lim, lim, (N, self.input_size)).astype(self.dtype)}
        if self.activation == "modrelu":
            nb = self.hidden_size
            self._params["b"] = gen.uniform(-0.01, 0.01, nb).astype(self.dtype)
        else:
            self._params["b"] = np.zeros(N, dtype=self.dtype)
        self._params.update(self.weight.params)
        #: the recurrent product of a diagonal/block W (None: dense, the plain GEMM)
        self._ops = sparse
        self._regs = parse_regularizers(regularizers, where)
        if self._regs is not None:
            self._regs.check_cell(self, where)
        if structured is not None or sparse is not None:
            # weight_matrices (lowdisp.nn.weight_matrices, snapshots): the materialised W
            # and U, not the generators; an instance attribute so dense cells keep theirs
            self.weight_matrices = self._structured_weight_matrices

    def _structured_weight_matrices(self) -> dict[str, np.ndarray]:
        return {"W": self.recurrent_matrix(), "U": self._params["U"].copy()}

    def penalty(self) -> float:
        """The value of this cell's ``l1``/``l2`` penalties (0.0 without); see
        :func:`lowdisp.nn.penalty`.

        Examples
        --------
        >>> from lowdisp.nn import make_cell
        >>> make_cell("tanh", 2, 3, rng=0).penalty()
        0.0
        """
        return 0.0 if self._regs is None else self._regs.penalty_value(self._params)

    def manifolds(self) -> dict[str, Any]:
        m = self.weight.map
        if m is not None and hasattr(m, "riemannian_step"):
            return {"W.theta": m}
        return {}

    def get_config(self) -> dict[str, Any]:
        """Every constructor argument, defaults filled in (JSON-able).

        ``recurrent_options`` holds all arguments of the map as built, e.g.
        ScaledCayley's ``n_neg`` (also when it was defaulted) and the
        restricted-unitary permutation. A custom map object is recorded by
        class name and ``repr`` (``"rebuildable": False``).

        Examples
        --------
        >>> from lowdisp.nn import make_cell
        >>> cfg = make_cell("scaled_cayley", 3, 8, recurrent_init="henaff", rng=0).get_config()
        >>> cfg["recurrent_options"], cfg["recurrent_init"]
        ({'n_neg': 4, 'dtype': 'float32'}, 'henaff')
        """
        if self._custom_map is None:
            recurrent: Any = self.recurrent
            options: Any = self.recurrent_options
        else:
            recurrent = {
                "class": type(self._custom_map).__name__,
                "repr": repr(self._custom_map),
                "rebuildable": False,
            }
            options = {k: repr(v) for k, v in self.recurrent_options.items()}
        return {
            "class": type(self).__name__,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "activation": self.activation,
            "recurrent": recurrent,
            "recurrent_options": options,
            "recurrent_init": self.recurrent_init,
            "dtype": self.dtype.name,
            **({} if self._regs is None else {"regularizers": self._regs.config()}),
        }

    def recurrent_matrix(self) -> np.ndarray:
        """The current recurrent matrix ``W`` (complex ``(n, n)`` for the unitary maps).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.nn import RNNCell
        >>> RNNCell(2, 3, rng=0).recurrent_matrix().shape
        (3, 3)
        """
        if isinstance(self.weight, _StructuredWeight):
            return self.weight.build(self._params)[0].copy()
        if self._ops is not None:
            return self._ops.dense(self.weight.build(self._params)[0])
        if self.weight.map is None:
            if self._regs is not None and "spectral_norm" in self._regs.cfg:
                return self._regs.normalize(self._params["W"], False)[0].copy()
            return self._params["W"].copy()
        W, _ = self.weight.map.forward(self.weight.theta(self._params))
        return np.array(W)

    def forward_sequence(
        self, x: Any, h0: np.ndarray | None = None, *, train: bool = True, rng: Any = None
    ) -> tuple[np.ndarray, Any]:
        """Run the whole sequence: ``x`` ``(T, B, input_size)`` or tokens ``(T, B)``.

        Returns ``H`` ``(T, B, state_size)`` (a view of the cache's buffer;
        copy it before modifying) and the cache. ``x`` needs at least one
        time step and one sequence (``ValueError`` otherwise). With noise
        regularizers, ``train=True`` draws the noise from ``rng`` (the same
        seed gives the same draw) and ``train=False`` runs without noise.
        """
        x = self.validate(x)
        where = f"{type(self).__name__}.forward_sequence"
        train = check_bool(train, "train", where=where)
        return self._forward_sequence(x, self._check_h0(h0, x), train, rng)

    def _forward_sequence(
        self, x: np.ndarray, h0: np.ndarray | None, train: bool = True, rng: Any = None
    ) -> tuple[np.ndarray, Any]:
        p = self._params
        regs = self._regs
        ops = self._ops
        ext: dict | None = None
        W, wcache = self.weight.build(p)
        sn = None
        if regs is not None:
            W, sn = regs.normalize(W, train)
            if train and regs.noisy:
                ext = self._draw_noise(regs, x, W, rng)
        act = self.activation
        pairs = act == "modrelu" and self.is_complex
        T, B = x.shape[:2]
        N = self.state_size
        H = self._buf("H", (T + 1, B, N))
        H[0] = 0 if h0 is None else h0
        tmp = np.empty((B, N), dtype=self.dtype)
        b = p["b"]
        S = None
        # the recurrent product: the plain GEMM (rec is None) or a diagonal/block
        # product, a variational mask of h_{t-1} and per-step weight noise
        rec = None if (ops is None and ext is None) else self._rec_forward(W, ext, B)
        xin = x if ext is None else ext["x"]
        U = p["U"] if ext is None else ext["U"]
        if act == "tanh":
            # BPTT needs only h_t = tanh(z_t): z_t is built in place in H[t+1] (input
            # projection first, then + W h_{t-1}), no separate Z buffer to stream through.
            # With h_0 = 0 the first step has no recurrent term (its GEMM is skipped).
            Z = None
            fast = rec is None or (ext is None and ops.kind == "block")
            # token input on the fast path: the step's rows of the table Uᵀ + b are
            # added to its recurrent product in H[t+1] while it is in cache (no
            # projected (T, B, N) pass beforehand)
            gather = fast and xin.dtype.kind in "iu"
            if gather:
                from lowdisp.kernels.rnn_modrelu import add_table_rows

                table = np.ascontiguousarray(U.T + p["b"])
            else:
                self._project(xin, U, p["b"], out=H[1:])
                if ext is not None:
                    self._input_noise(ext, xin, H[1:])
            if fast:
                # the plain GEMM (in row chunks below OpenBLAS's small-matrix bound), or
                # the block GEMMs over per-sequence (g, B, m) views
                if rec is None:
                    Hs, P, ts = H, np.ascontiguousarray(W.T), tmp
                    rows = _row_chunks(B, N, N)
                else:
                    Hs, P, ts = ops.seq_view(H), ops.prepare(W), ops._view(tmp)
                    rows = [slice(0, B)]
                if gather and rec is None and len(rows) > 1:
                    # the dense cell with token input and a chunked product: a step's
                    # product (Numba's np.dot on the chunks, faster than NumPy's call
                    # there; not on one big product) and its table row in one Numba
                    # call, then NumPy's SIMD tanh
                    from lowdisp.kernels.rnn_modrelu import rec_table_step

                    for t in range(T):
                        h = H[t + 1]
                        if t or h0 is not None:
                            rec_table_step(H[t], P, h, table, xin[t], rows[0].stop)
                        else:
                            np.take(table, xin[t], axis=0, out=h)
                        np.tanh(h, out=h)
                else:
                    for t in range(T):
                        h = H[t + 1]
                        if t or h0 is not None:
                            dst = h if gather else tmp
                            if len(rows) == 1:
                                np.matmul(Hs[t], P, out=Hs[t + 1] if gather else ts)
                            else:
                                hp = H[t]
                                for r in rows:
                                    np.matmul(hp[r], P, out=dst[r])
                            if gather:
                                add_table_rows(h, table, xin[t])
                            else:
                                np.add(h, tmp, out=h)
                        elif gather:
                            np.take(table, xin[t], axis=0, out=h)
                        np.tanh(h, out=h)
            else:
                for t in range(T):
                    h = H[t + 1]
                    if t or h0 is not None:
                        rec(t, H[t], tmp)
                        np.add(h, tmp, out=h)
                    np.tanh(h, out=h)
            return self._finish(x, W, wcache, Z, H, S, h0 is None, ext, sn)
        Z = self._project(
            xin, U, None if act == "modrelu" else p["b"], out=self._buf("Z", (T, B, N))
        )
        if ext is not None:
            self._input_noise(ext, xin, Z)
        if rec is None:
            WT = np.ascontiguousarray(W.T)

            def rec(t: int, h: np.ndarray, out: np.ndarray) -> None:
                np.matmul(h, WT, out=out)

        if act == "relu":
            for t in range(T):
                rec(t, H[t], tmp)
                np.add(Z[t], tmp, out=Z[t])
                np.maximum(Z[t], 0, out=H[t + 1])
        elif not pairs:
            from lowdisp.kernels.rnn_modrelu import modrelu_step

            for t in range(T):
                rec(t, H[t], tmp)
                modrelu_step(Z[t], tmp, b, H[t + 1])
        else:
            from lowdisp.kernels.rnn_modrelu import cmodrelu_forward_step

            n = N // 2
            S = (self._buf("S", (T, B, n)), self._buf("P", (T, B, n)), self._buf("R", (T, B, n)))
            s_, P_, R_ = S
            for t in range(T):
                rec(t, H[t], tmp)
                cmodrelu_forward_step(Z[t], tmp, b, MODRELU_EPS, s_[t], P_[t], R_[t], H[t + 1])
        return self._finish(x, W, wcache, Z, H, S, h0 is None, ext, sn)

    def _finish(self, x, W, wcache, Z, H, S, zero_h0, ext, sn) -> tuple[np.ndarray, Any]:
        cache = (x, W, wcache, Z, H, S, zero_h0, ext, sn)
        out = H[1:]
        if ext is not None and "o_mask" in ext:  # dropout of the output connection
            out = out * ext["o_mask"]
        return out, cache

    def _draw_noise(self, regs: Any, x: np.ndarray, W: np.ndarray, rng: Any) -> dict:
        """Draw this pass's noise; the effective input and ``U`` (``ext``, in the cache)."""
        where = f"{type(self).__name__}.forward"
        gen = as_rng(rng, where=where)
        p = self._params
        N = self.state_size
        tokens = x.dtype.kind in "iu"
        if tokens:
            bad = regs.float_input_only()
            if bad:
                raise ValueError(
                    f"{where}: {', '.join(bad)} need float input; got integer tokens (use an "
                    f"Embedding layer before the RNN, or dropout's option input=False)"
                )
        noise = regs.draw(gen, x, N, W.shape, p["U"].shape, self.dtype)
        ext: dict[str, Any] = {"x": x, "U": p["U"]}
        if "x_add" in noise:
            ext["x"] = ext["x"] + noise["x_add"]
        if "x_mask" in noise:
            ext["x_mask"] = noise["x_mask"]
            ext["x"] = ext["x"] * noise["x_mask"]
        for k in ("h_mask", "o_mask", "fd_eps", "fd_c"):
            if k in noise:
                ext[k] = noise[k]
        if "w_add" in noise:
            if noise["w_per_step"]:
                ext["w_add_step"] = noise["w_add"]
                if "u_add" in noise:
                    ext["u_add_step"] = noise["u_add"]
            else:
                ext["w_add"] = noise["w_add"]
                if "u_add" in noise:
                    ext["U"] = p["U"] + noise["u_add"]
        return ext

    def _input_noise(self, ext: dict, xin: np.ndarray, Z: np.ndarray) -> None:
        """Per-step noise of ``U`` and fast dropout, added to the input projection ``Z``."""
        T = Z.shape[0]
        tokens = xin.dtype.kind in "iu"
        if "u_add_step" in ext:
            E = ext["u_add_step"]  # (T, N, d)
            if tokens:
                Z += E[np.arange(T)[:, None], :, xin]
            else:
                Z += np.matmul(xin, E.transpose(0, 2, 1))
        if "fd_eps" in ext:
            # Gaussian dropout of the input connection (Wang & Manning 2013): the
            # pre-activation U (x ⊙ m) with m ~ Bernoulli(1-p)/(1-p) has mean U x and
            # variance c Σ_j U_ij² x_j², c = p/(1-p); one normal draw per unit
            U2 = ext["U"] * ext["U"]
            if tokens:
                v = np.take(ext["fd_c"] * U2.T, xin, axis=0)
            else:
                v = ext["fd_c"] * np.matmul(xin * xin, U2.T)
            Sd = np.sqrt(v, out=v)
            ext["fd_S"] = Sd
            Z += Sd * ext["fd_eps"]

    def _rec_forward(self, W: np.ndarray, ext: dict | None, B: int):
        """``rec(t, h, out)``: ``out = W_t (h ⊙ m)`` in row form for this pass."""
        ops = self._ops or _DenseOps
        hm = None if ext is None else ext.get("h_mask")
        step_noise = None if ext is None else ext.get("w_add_step")
        if ext is not None and "w_add" in ext:
            W = W + ext["w_add"]
            ext["W"] = W  # BPTT's carry uses the noisy matrix
        P = ops.prepare(W)
        hbuf = np.empty((B, self.state_size), dtype=self.dtype) if hm is not None else None
        pbuf = np.empty_like(P) if step_noise is not None else None

        def rec(t: int, h: np.ndarray, out: np.ndarray) -> None:
            if hm is not None:
                np.multiply(h, hm, out=hbuf)
                h = hbuf
            if step_noise is None:
                ops.mul(P, h, out)
            else:  # the step's noise is drawn in the prepared layout (for dense: on Wᵀ)
                np.add(P, step_noise[t], out=pbuf)
                ops.mul(pbuf, h, out)

        return rec

    def _rec_backward(self, W: np.ndarray, ext: dict | None):
        """``rec_t(t, d, out)``: the carry ``out = (δ W_t) ⊙ m`` (None: the plain GEMM)."""
        if self._ops is None and ext is None:
            return None
        ops = self._ops or _DenseOps
        hm = None if ext is None else ext.get("h_mask")
        step_noise = None if ext is None else ext.get("w_add_step")
        if ext is not None and "W" in ext:
            W = ext["W"]
        P = ops.prepare(W) if step_noise is not None else None
        pbuf = np.empty_like(P) if step_noise is not None else None

        def rec_t(t: int, d: np.ndarray, out: np.ndarray) -> None:
            if step_noise is None:
                ops.mul_t(W, d, out)
            else:
                np.add(P, step_noise[t], out=pbuf)
                ops.mul_t(ops.unprepare(pbuf), d, out)
            if hm is not None:
                np.multiply(out, hm, out=out)

        return rec_t

    def backward_sequence(self, cache: Any, dH: np.ndarray | None, dh_last=None):
        """BPTT. ``dH`` ``(T, B, state_size)`` is ``∂L/∂h_t`` for every step (or
        ``None``); ``dh_last`` ``(B, state_size)`` adds ``∂L/∂h_T``.

        Returns ``(dX, grads)``; ``dX`` is ``None`` for token input.
        """
        x, W, wcache, Z, H, S, zero_h0, ext, sn = cache
        p = self._params
        T = H.shape[0] - 1
        B, N = H.shape[1:]
        act = self.activation
        pairs = act == "modrelu" and self.is_complex
        dt = self.dtype
        if ext is not None and "o_mask" in ext:
            om = ext["o_mask"]
            if isinstance(dH, _Factored):
                dH = dH.materialize()
            if dH is not None:
                dH = dH * om
            if dh_last is not None:
                dh_last = dh_last * om[-1]
        carry = np.zeros((B, N), dtype=dt)
        if dh_last is not None:
            carry += dh_last
        has_dh = dH is not None
        db = np.zeros(p["b"].shape, dtype=dt)
        # δ_t = σ'(z_t) ⊙ (∂L/∂h_t + Wᵀ δ_{t+1}): σ' computed on the fly by a fused kernel
        from lowdisp.kernels import rnn_modrelu as K

        if act == "tanh":

            def delta(t: int, dh: np.ndarray, d: np.ndarray) -> None:
                K.tanh_grad_step(dh, has_dh, carry, H[t + 1], d, db)

        elif act == "relu":

            def delta(t: int, dh: np.ndarray, d: np.ndarray) -> None:
                K.relu_grad_step(dh, has_dh, carry, Z[t], d, db)

        elif not pairs:
            b = p["b"]

            def delta(t: int, dh: np.ndarray, d: np.ndarray) -> None:
                K.modrelu_grad_step(dh, has_dh, carry, Z[t], b, d, db)

        else:
            s_, P_, R_ = S
            Q = self._buf("Q", (T, B, N // 2))

            def delta(t: int, dh: np.ndarray, d: np.ndarray) -> None:
                K.cmodrelu_backward_step(dh, has_dh, carry, Z[t], s_[t], P_[t], Q[t], d)

        # The δ_t live in a ring of C steps; each block [t, t + C) is reduced into
        # dW = Σ_t δ_t h_{t-1}ᵀ, dU and dX while it is still in cache (never one
        # (T, B, N) buffer streamed through memory twice). A factored ∂L/∂H = A Wₒ
        # (from a Dense readout) is formed a block at a time in the same way.
        # (a dense W keeps blocks of _BLOCK steps: its dW GEMM gains more from the longer
        # reduction than the cache saves, 2-3% at n = 512)
        C = min(_BLOCK, T) if self._ops is None else _ring_steps(T, B, N, dt)
        ring = self._buf("dZ", (C, B, N))
        factored = isinstance(dH, _Factored)
        if factored:
            dring = self._buf("dH", (C, B, N))
        xin = x if ext is None else ext["x"]
        acc = _BlockGrads(self, xin, H, zero_h0, self._ops, ext)
        rec_t = self._rec_backward(W, ext)
        if rec_t is not None and ext is None and self._ops.kind == "block":
            # the block carry over per-sequence (g, B, m) views (no views per step)
            ringv, carryv = self._ops.seq_view(ring), self._ops._view(carry)

            def rec_t(t: int, d: np.ndarray, out: np.ndarray) -> None:
                np.matmul(ringv[t % C], W, out=carryv)

        rows = _row_chunks(B, N, N) if rec_t is None else [slice(0, B)]
        if act == "tanh" and rec_t is None and len(rows) > 1:
            # the dense tanh cell with a chunked carry product: a block of steps back in
            # one Numba call (δ, bias gradient and the carry GEMM of each step), no
            # Python per time step
            from lowdisp.kernels.rnn_modrelu import tanh_bptt_block

            Wc = np.ascontiguousarray(W)
            for lo in range(((T - 1) // C) * C, -1, -C):
                hi = min(lo + C, T)
                d = ring[: hi - lo]
                if dH is None:
                    dh = d  # (not read: has_dh is False)
                elif factored:
                    dh = dH.block(lo, hi, dring[: hi - lo])
                else:
                    dh = np.ascontiguousarray(dH[lo:hi])
                Hb = H[lo + 1 : hi + 1]
                tanh_bptt_block(dh, has_dh, carry, Hb, Wc, d, db, rows[0].stop, lo == 0)
                acc.add(lo, d)
        else:
            for t in range(T - 1, -1, -1):
                i = t % C
                d = ring[i]
                if dH is None:
                    dh = carry
                elif factored:
                    if i == C - 1 or t == T - 1:
                        dH.block(t - i, t + 1, dring[: i + 1])
                    dh = dring[i]
                else:
                    dh = dH[t]
                delta(t, dh, d)
                if t:  # the carry out of step 0 would be ∂L/∂h_0, which nobody needs
                    if rec_t is not None:
                        rec_t(t, d, carry)
                    elif len(rows) == 1:
                        np.matmul(d, W, out=carry)
                    else:
                        for r in rows:
                            np.matmul(d[r], W, out=carry[r])
                if t % C == 0:
                    acc.add(t, ring[: min(C, T - t)])
        dW, dX, dU = acc.result()
        if ext is not None and "x_mask" in ext and dX is not None:
            dX = dX * ext["x_mask"]
        grads = {"U": dU}
        if pairs:
            db = np.einsum("tbj,tbj->j", Q, R_)
        grads["b"] = db  # accumulated by the step kernels (additive bias or modReLU bias)
        if sn is not None:
            dW = self._regs.normalize_pullback(sn, dW)
        grads.update(self.weight.pullback(wcache, dW))
        if self._regs is not None:
            self._regs.add_penalty_grads(p, grads)
        return dX, grads

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
            f"activation={self.activation!r}, recurrent={self.recurrent!r})"
        )


class TanhRNNCell(RNNCell):
    """:class:`RNNCell` with ``activation="tanh"``.

    Examples
    --------
    >>> from lowdisp.nn import TanhRNNCell
    >>> TanhRNNCell(3, 8, rng=0).activation
    'tanh'
    """

    def __init__(self, input_size: int, hidden_size: int, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, activation="tanh", **kw)


class ReLURNNCell(RNNCell):
    """:class:`RNNCell` with ``activation="relu"``.

    Examples
    --------
    >>> from lowdisp.nn import ReLURNNCell
    >>> ReLURNNCell(3, 8, rng=0).activation
    'relu'
    """

    def __init__(self, input_size: int, hidden_size: int, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, activation="relu", **kw)


class LSTMCell(_Cell):
    """Long short-term memory cell with a fused sequence loop.

    Gates (PyTorch's order ``i, f, g, o``): ``[i f g o]_t = W_x x_t + W_h h_{t-1} + b``;
    ``c_t = σ(f) c_{t-1} + σ(i) tanh(g)``, ``h_t = σ(o) tanh(c_t)``.

    Parameters
    ----------
    input_size, hidden_size : int
    forget_bias : float
        Initial value of the forget-gate bias (1.0).
    recurrent : str or StructuredDense, optional
        ``"dense"`` (default) or a structure of :class:`~lowdisp.nn.StructuredDense`
        for ``W_h`` (``"toeplitz_like:4"``, ``"subdiagonal"``, ...): its four
        n x n gate blocks are independent structured blocks (the layer's
        rectangular tiling), parameters ``W_h.<name>`` with leading axes
        ``(4, 1)``, initialised with the dense entry variance ``1/(3n)``.
    recurrent_options : dict, optional
        ``{"rank": r, "corners": bool}`` for a structured ``W_h``.
    dtype : {float32, float64}
    rng : seed or Generator, optional
        All weights ``U[±1/√n]`` (PyTorch's default).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import LSTMCell
    >>> cell = LSTMCell(3, 4, dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.ones((5, 2, 3)))
    >>> sorted(cell.backward_sequence(cache, np.ones_like(H))[1])
    ['W_h', 'W_x', 'b']
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        forget_bias: float = 1.0,
        recurrent: Any = "dense",
        recurrent_options: dict | None = None,
        dtype: Any = np.float32,
        rng: Any = None,
    ) -> None:
        where = "LSTMCell"
        self.input_size = check_int(input_size, "input_size", where=where, low=1)
        self.hidden_size = n = check_int(hidden_size, "hidden_size", where=where, low=1)
        self.state_size = n
        self.dtype = _check_dtype(dtype, where)
        forget_bias = check_real(forget_bias, "forget_bias", where=where)
        gen = as_rng(rng, where=where)
        lim = 1.0 / np.sqrt(n)
        if recurrent_options is not None and not isinstance(recurrent_options, Mapping):
            raise TypeError(
                f"{where}: recurrent_options must be a dict; got {type(recurrent_options).__name__}"
            )
        structured = None
        if not (isinstance(recurrent, str) and recurrent == "dense"):
            structured = _structured_recurrent(
                recurrent, dict(recurrent_options or {}), None, where
            )
            if structured is None:
                valid = ", ".join(s for s in S.STRUCTURES if s != "unconstrained")
                raise ValueError(
                    f"{where}: unknown recurrent {recurrent!r}; valid: 'dense' or a structure "
                    f"(optionally 'name:rank'): {valid}"
                )
        elif recurrent_options:
            raise TypeError(f"{where}: recurrent='dense' takes no recurrent_options")
        self._params = {
            "W_x": gen.uniform(-lim, lim, (4 * n, self.input_size)).astype(self.dtype),
        }
        self._wh: _StructuredWeight | None = None
        if structured is None:
            self._params["W_h"] = gen.uniform(-lim, lim, (4 * n, n)).astype(self.dtype)
            self.recurrent, self.recurrent_options = "dense", {}
        else:
            name, rank, corners, initial = structured
            if initial is not None:
                raise TypeError(
                    f"{where}: W_h is 4n x n; give the structure by name "
                    f"(e.g. 'toeplitz_like:4'), not as a StructuredDense"
                )
            self._wh = _StructuredWeight(
                name, rank, corners, 4 * n, n, self.dtype, gen, where, prefix="W_h"
            )
            self._params.update(self._wh.params)
            self.recurrent, self.recurrent_options = name, self._wh.options()
            # the materialised W_h for lowdisp.nn.recurrent_matrix / weight_matrices
            # (instance attributes: a dense LSTM keeps its "W_h" parameter entries)
            self.recurrent_matrix = self._structured_w_h
            self.weight_matrices = self._structured_weight_matrices
        self._params["b"] = np.zeros(4 * n, dtype=self.dtype)
        self._params["b"][n : 2 * n] = forget_bias
        self.forget_bias = float(forget_bias)

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "class": type(self).__name__,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "forget_bias": self.forget_bias,
            "dtype": self.dtype.name,
        }
        if self._wh is not None:  # (dense: the keys of earlier checkpoints, unchanged)
            cfg["recurrent"] = self.recurrent
            cfg["recurrent_options"] = dict(self.recurrent_options)
        return cfg

    def _structured_w_h(self) -> np.ndarray:
        """The materialised structured ``W_h`` (4n, n)."""
        assert self._wh is not None
        return self._wh.build(self._params)[0].copy()

    def _structured_weight_matrices(self) -> dict[str, np.ndarray]:
        return {"W_x": self._params["W_x"].copy(), "W_h": self._structured_w_h()}

    def forward_sequence(self, x: Any, h0=None, *, train: bool = True):
        """Run the whole sequence; see :meth:`RNNCell.forward_sequence`."""
        x = self.validate(x)
        return self._forward_sequence(x, self._check_h0(h0, x))

    def _forward_sequence(self, x: np.ndarray, h0) -> tuple[np.ndarray, Any]:
        p = self._params
        n = self.hidden_size
        # σ(z) = (tanh(z/2) + 1)/2: the i, f, o rows of W_x, b and W_h are halved once
        # (exact: a power of 2), so each step takes ONE tanh over all 4n gate columns
        # (scipy's expit is ~10x slower than NumPy's SIMD tanh)
        half = self.dtype.type(0.5)
        sg = (slice(0, 2 * n), slice(3 * n, 4 * n))
        Wx, bx = p["W_x"].copy(), p["b"].copy()
        W_h, whc = (p["W_h"], None) if self._wh is None else self._wh.build(p)
        WhT = W_h.T.copy()  # copies: the parameters themselves stay untouched
        for s in sg:
            Wx[s] *= half
            bx[s] *= half
            WhT[:, s] *= half
        T, B = x.shape[:2]
        # reused buffers (lowdisp.nn._layers.Workspace: fresh arrays outside a trainer step)
        A = self._buf("A", (T, B, 4 * n))  # the pre-activations, then the gates
        tokens = x.dtype.kind in "iu"
        if tokens:
            # token input: the step's rows of the table W_xᵀ + b are added to its
            # recurrent product in place (no projected (T, B, 4n) pass beforehand)
            table = np.ascontiguousarray(Wx.T + bx)
        else:
            self._project(x, Wx, bx, out=A)
        H = self._buf("H", (T + 1, B, n))
        C = self._buf("C", (T + 1, B, n))
        TC = self._buf("TC", (T, B, n))
        H[0] = 0 if h0 is None else h0
        C[0] = 0
        tmp = np.empty((B, 4 * n), dtype=self.dtype)
        from lowdisp.kernels.rnn_lstm import lstm_gate_step, lstm_out_step
        from lowdisp.kernels.rnn_modrelu import add_table_rows, rec_table_step

        # token input: a step's product in row chunks below the small-matrix bound
        # (Numba's np.dot, faster than one NumPy product there) and its table row in
        # one Numba call; one big product stays NumPy's
        nrows = _row_chunks(B, n, 4 * n)[0].stop

        for t in range(T):
            a = A[t]
            if not (t or h0 is not None):  # h_0 = 0: no recurrent term at the first step
                if tokens:
                    np.take(table, x[t], axis=0, out=a)
            elif tokens and nrows < B:
                rec_table_step(H[t], WhT, a, table, x[t], nrows)
            elif tokens:
                np.matmul(H[t], WhT, out=a)
                add_table_rows(a, table, x[t])
            else:
                np.matmul(H[t], WhT, out=tmp)
                np.add(a, tmp, out=a)
            np.tanh(a, out=a)
            # gates i, f, o from the tanh of their halves and c_t = f c_{t-1} + i g in
            # one fused pass; the transcendental functions stay NumPy's SIMD tanh
            lstm_gate_step(a, C[t], C[t + 1])
            np.tanh(C[t + 1], out=TC[t])
            lstm_out_step(a, TC[t], H[t + 1])
        return H[1:], (x, A, H, C, TC, W_h, whc, h0 is None)

    def backward_sequence(self, cache: Any, dH, dh_last=None):
        """BPTT; see :meth:`RNNCell.backward_sequence`."""
        x, A, H, C, TC, W_h, whc, zero_h0 = cache
        p = self._params
        n = self.hidden_size
        T, B, _ = A.shape
        dt = self.dtype
        tokens = x.dtype.kind in "iu"
        # δ of token input lives in a ring of _BLOCK steps: each block is reduced into
        # dW_h (and dW_x by a row scatter) while it is in cache, so the (T, B, 4n) δ
        # never goes to memory; float input keeps the whole δ for dX = δ W_x
        Cb = min(_BLOCK, T)
        dG = self._buf("dG", (Cb, B, 4 * n) if tokens else (T, B, 4 * n))
        ch = np.zeros((B, n), dtype=dt)
        if dh_last is not None:
            ch += dh_last
        cc = np.zeros((B, n), dtype=dt)
        db = np.zeros(4 * n, dtype=dt)
        from lowdisp.kernels.rnn_lstm import lstm_bptt_block, lstm_grad_step

        has_dh = dH is not None
        # a factored ∂L/∂H = A Wₒ (from a Dense readout) is formed _BLOCK steps at a
        # time, as in the Elman cell
        factored = isinstance(dH, _Factored)
        if factored:
            dring = self._buf("dH", (Cb, B, n))
        first = 1 if zero_h0 else 0  # the rows of h_0 = 0 add nothing to dW_h
        if tokens:
            from lowdisp.kernels.rnn_modrelu import scatter_add_rows

            dWxT = np.zeros((self.input_size, 4 * n), dtype=dt)
            # dW_hᵀ = Σ_t h_{t-1} δ_tᵀ: (Hᵀ δ) is the faster GEMM layout (1.25x in f64)
            dWhT = np.zeros((n, 4 * n), dtype=dt)
            tmpW = np.empty_like(dWhT)
        Wc = np.ascontiguousarray(W_h)
        nrows = _row_chunks(B, 4 * n, n)[0].stop
        for lo in range(((T - 1) // Cb) * Cb, -1, -Cb):
            hi = min(lo + Cb, T)
            d = dG[: hi - lo] if tokens else dG[lo:hi]
            if factored:
                dh = dH.block(lo, hi, dring[: hi - lo])
            elif has_dh:
                dh = np.ascontiguousarray(dH[lo:hi])
            else:
                dh = TC[lo:hi]  # (not read: has_dh is False)
            # a block of steps back in one Numba call: the element-wise part of each
            # step fused (gates' σ' and tanh' from the stored activations, the bias
            # gradient), then its carry GEMM in row chunks; no Python per time step
            Ab, Tb, Cp = A[lo:hi], TC[lo:hi], C[lo:hi]
            if nrows < B:
                lstm_bptt_block(dh, has_dh, ch, cc, Ab, Tb, Cp, Wc, d, db, nrows, lo == 0)
            else:  # one carry product per step: NumPy's (Numba's np.dot is slower there)
                for k in range(hi - lo - 1, -1, -1):
                    lstm_grad_step(dh[k], has_dh, ch, cc, Ab[k], Tb[k], Cp[k], d[k], db)
                    if lo + k:
                        np.matmul(d[k], W_h, out=ch)
            if tokens:
                scatter_add_rows(x[lo:hi].reshape(-1), d.reshape(-1, 4 * n), dWxT)
                s = max(lo, first)
                if s < hi:
                    np.matmul(
                        H[s:hi].reshape(-1, n).T,
                        dG[s - lo : hi - lo].reshape(-1, 4 * n),
                        out=tmpW,
                    )
                    np.add(dWhT, tmpW, out=dWhT)
        if tokens:
            dX, dWx = None, dWxT.T.copy()
            dW_h = dWhT.T.copy()
        else:
            dG2 = dG.reshape(T * B, 4 * n)
            dX, dWx = self._input_grads(x, dG2, p["W_x"])
            # dW_h = Σ_t δ_tᵀ h_{t-1} as (Hᵀ δ)ᵀ: that GEMM layout is 1.25x faster in
            # OpenBLAS (float64; same in float32) than δᵀ H
            dW_h = np.ascontiguousarray((H[first:T].reshape(-1, n).T @ dG2[first * B :]).T)
        grads = {"W_x": dWx}
        if self._wh is None:
            grads["W_h"] = dW_h
        else:
            grads.update(self._wh.pullback(whc, dW_h))
        grads["b"] = db
        return dX, grads

    def __repr__(self) -> str:
        rec = "" if self._wh is None else f", recurrent={self.recurrent!r}"
        return f"LSTMCell({self.input_size}, {self.hidden_size}{rec})"


class GRUCell(_Cell):
    """Gated recurrent unit (PyTorch's form) with a fused sequence loop.

    ``r = σ(W_xr x + b_xr + W_hr h + b_hr)``, ``z = σ(W_xz x + b_xz + W_hz h + b_hz)``,
    ``ñ = tanh(W_xn x + b_xn + r ⊙ (W_hn h + b_hn))``, ``h' = (1 - z) ⊙ ñ + z ⊙ h``.

    Parameters
    ----------
    input_size, hidden_size : int
    dtype : {float32, float64}
    rng : seed or Generator, optional
        All weights ``U[±1/√n]``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import GRUCell
    >>> cell = GRUCell(3, 4, dtype=np.float64, rng=0)
    >>> H, cache = cell.forward_sequence(np.ones((5, 2, 3)))
    >>> sorted(cell.backward_sequence(cache, np.ones_like(H))[1])
    ['W_h', 'W_x', 'b_h', 'b_x']
    """

    def __init__(
        self, input_size: int, hidden_size: int, *, dtype: Any = np.float32, rng: Any = None
    ) -> None:
        where = "GRUCell"
        self.input_size = check_int(input_size, "input_size", where=where, low=1)
        self.hidden_size = n = check_int(hidden_size, "hidden_size", where=where, low=1)
        self.state_size = n
        self.dtype = _check_dtype(dtype, where)
        gen = as_rng(rng, where=where)
        lim = 1.0 / np.sqrt(n)
        self._params = {
            "W_x": gen.uniform(-lim, lim, (3 * n, self.input_size)).astype(self.dtype),
            "W_h": gen.uniform(-lim, lim, (3 * n, n)).astype(self.dtype),
            "b_x": gen.uniform(-lim, lim, 3 * n).astype(self.dtype),
            "b_h": gen.uniform(-lim, lim, 3 * n).astype(self.dtype),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "dtype": self.dtype.name,
        }

    def forward_sequence(self, x: Any, h0=None, *, train: bool = True):
        """Run the whole sequence; see :meth:`RNNCell.forward_sequence`."""
        x = self.validate(x)
        return self._forward_sequence(x, self._check_h0(h0, x))

    def _forward_sequence(self, x: np.ndarray, h0) -> tuple[np.ndarray, Any]:
        p = self._params
        n = self.hidden_size
        XA = self._project(x, p["W_x"], p["b_x"])  # r, z pre-activations become activations
        T, B, _ = XA.shape
        WhT = np.ascontiguousarray(p["W_h"].T)
        HW = np.empty((T, B, 3 * n), dtype=self.dtype)  # W_h h + b_h per step
        Nn = np.empty((T, B, n), dtype=self.dtype)
        H = np.empty((T + 1, B, n), dtype=self.dtype)
        H[0] = 0 if h0 is None else h0
        u = np.empty((B, n), dtype=self.dtype)
        for t in range(T):
            a, hw = XA[t], HW[t]
            np.matmul(H[t], WhT, out=hw)
            np.add(hw, p["b_h"], out=hw)
            np.add(a[:, : 2 * n], hw[:, : 2 * n], out=a[:, : 2 * n])
            _sigmoid(a[:, : 2 * n], out=a[:, : 2 * n])
            np.multiply(a[:, :n], hw[:, 2 * n :], out=u)
            np.add(a[:, 2 * n :], u, out=Nn[t])
            np.tanh(Nn[t], out=Nn[t])
            # h' = n + z (h - n)
            np.subtract(H[t], Nn[t], out=u)
            np.multiply(a[:, n : 2 * n], u, out=u)
            np.add(Nn[t], u, out=H[t + 1])
        return H[1:], (x, XA, HW, Nn, H)

    def backward_sequence(self, cache: Any, dH, dh_last=None):
        """BPTT; see :meth:`RNNCell.backward_sequence`."""
        x, XA, HW, Nn, H = cache
        p = self._params
        n = self.hidden_size
        T, B, _ = XA.shape
        dt = self.dtype
        W_h = p["W_h"]
        dGx = np.empty((T, B, 3 * n), dtype=dt)  # grads of the input pre-activations
        dGh = np.empty((T, B, 3 * n), dtype=dt)  # grads of W_h h + b_h
        ch = np.zeros((B, n), dtype=dt)
        if dh_last is not None:
            ch += dh_last
        dh = np.empty((B, n), dtype=dt)
        u = np.empty((B, n), dtype=dt)
        dn = np.empty((B, n), dtype=dt)
        for t in range(T - 1, -1, -1):
            a, hw, dx_, dhh = XA[t], HW[t], dGx[t], dGh[t]
            r, z, nn = a[:, :n], a[:, n : 2 * n], Nn[t]
            if dH is not None:
                np.add(dH[t], ch, out=dh)
            else:
                dh[...] = ch
            # dn_pre = dh (1 - z) (1 - n^2)
            np.subtract(1, z, out=u)
            np.multiply(dh, u, out=dn)
            np.multiply(nn, nn, out=u)
            np.subtract(1, u, out=u)
            np.multiply(dn, u, out=dx_[:, 2 * n :])
            dnp = dx_[:, 2 * n :]
            # dz_pre = dh (h - n) z (1 - z)
            np.subtract(H[t], nn, out=u)
            np.multiply(u, dh, out=u)
            np.multiply(u, z, out=u)
            np.subtract(1, z, out=dn)
            np.multiply(u, dn, out=dx_[:, n : 2 * n])
            # dr_pre = dnp * hw_n * r (1 - r)
            np.multiply(dnp, hw[:, 2 * n :], out=u)
            np.multiply(u, r, out=u)
            np.subtract(1, r, out=dn)
            np.multiply(u, dn, out=dx_[:, :n])
            # grads w.r.t. W_h h + b_h: r and z parts equal the input parts; n part = dnp * r
            dhh[:, : 2 * n] = dx_[:, : 2 * n]
            np.multiply(dnp, r, out=dhh[:, 2 * n :])
            # carry: dh z + dhh W_h
            np.matmul(dhh, W_h, out=ch)
            np.multiply(dh, z, out=u)
            np.add(ch, u, out=ch)
        dGx2 = dGx.reshape(T * B, 3 * n)
        dGh2 = dGh.reshape(T * B, 3 * n)
        dX, dWx = self._input_grads(x, dGx2, p["W_x"])
        grads = {
            "W_x": dWx,
            "b_x": dGx2.sum(axis=0),
            "W_h": dGh2.T @ H[:-1].reshape(T * B, n),
            "b_h": dGh2.sum(axis=0),
        }
        return dX, grads

    def __repr__(self) -> str:
        return f"GRUCell({self.input_size}, {self.hidden_size})"


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------

#: builders of cells defined in other modules, registered by them (``lowdisp.nn._normalized``
#: adds bn_lstm, ln_lstm, bn_rnn, ln_rnn when ``lowdisp.nn`` is imported): no import from here
_REGISTERED_CELLS: dict[str, Any] = {}

#: cell names accepted by :func:`make_cell` (and ``lowdisp train --cell``)
CELLS = (
    "tanh",
    "relu",
    "scaled_cayley",
    "householder",
    "svd",
    "full_unitary",
    "restricted_unitary",
    "expm",
    "lstm",
    "gru",
    *("bn_lstm", "ln_lstm", "bn_rnn", "ln_rnn"),  # lowdisp.nn._normalized (P6)
)


def make_cell(
    name: str,
    input_size: int,
    hidden_size: int,
    *,
    dtype: Any = np.float32,
    rng: Any = None,
    **options: Any,
) -> Any:
    """Build a cell by name.

    Parameters
    ----------
    name : str
        ``"tanh"``, ``"relu"`` (dense Elman cells), ``"lstm"``, ``"gru"``, or
        an orthogonal map ``"scaled_cayley"``, ``"householder"``, ``"svd"``,
        ``"full_unitary"``, ``"restricted_unitary"``, ``"expm"`` (an
        :class:`RNNCell` with that ``recurrent=`` and its paper's activation).
    input_size, hidden_size : int
    dtype : {float32, float64}
    rng : seed or Generator, optional
    **options
        Passed to the cell (e.g. ``activation="tanh"``,
        ``recurrent_options={"n_neg": 32}``).

    Returns
    -------
    RNNCell, LSTMCell or GRUCell

    Examples
    --------
    >>> from lowdisp.nn import make_cell
    >>> make_cell("tanh", 10, 32, rng=0)
    TanhRNNCell(10, 32, activation='tanh', recurrent='dense')
    >>> make_cell("lstm", 10, 32, recurrent="toeplitz_like:4", rng=0)
    LSTMCell(10, 32, recurrent='toeplitz_like')
    """
    check_option(name, "cell", CELLS, where="make_cell")
    builder = _REGISTERED_CELLS.get(name)
    if builder is not None:  # recurrent BN / layer norm (lowdisp.nn._normalized)
        return builder(name, input_size, hidden_size, dtype=dtype, rng=rng, **options)
    if name in ("lstm", "gru"):
        extra = set(options) & {"recurrent_init", "recurrent_options", "activation", "recurrent"}
        if name == "lstm":  # a structured W_h
            extra -= {"recurrent", "recurrent_options"}
        if extra:
            raise TypeError(
                f"make_cell: {sorted(extra)} apply to the Elman cells (tanh, relu and the "
                f"orthogonal maps), not to cell {name!r}"
            )
    if name == "lstm":
        allowed = {"forget_bias", "recurrent", "recurrent_options"}
    elif name == "gru":
        allowed = set()
    elif name in ("tanh", "relu"):
        allowed = {"recurrent", "recurrent_options", "recurrent_init", "regularizers"}
    else:
        allowed = {"activation", "recurrent_options", "recurrent_init", "regularizers"}
    unknown = set(options) - allowed
    if unknown:
        valid = ", ".join(sorted(allowed)) or "none"
        raise TypeError(
            f"make_cell: unknown option(s) {sorted(unknown)} for cell {name!r}; valid: {valid}"
        )
    kw = {"dtype": dtype, "rng": rng, **options}
    if name == "tanh":
        return TanhRNNCell(input_size, hidden_size, **kw)
    if name == "relu":
        return ReLURNNCell(input_size, hidden_size, **kw)
    if name == "lstm":
        return LSTMCell(input_size, hidden_size, **kw)
    if name == "gru":
        return GRUCell(input_size, hidden_size, **kw)
    return RNNCell(input_size, hidden_size, recurrent=name, **kw)


class RNN(Layer):
    """A recurrent layer: runs a cell over a whole sequence (forward and BPTT fused).

    Parameters
    ----------
    cell : RNNCell, LSTMCell or GRUCell
    return_sequences : bool
        Output every hidden state ``(T, B, state_size)`` (True) or only the
        last ``(B, state_size)`` (False).

    Notes
    -----
    Input: ``(T, B, input_size)`` floats or ``(T, B)`` integer tokens, with
    ``T >= 1`` and ``B >= 1``: an empty sequence or batch is refused with a
    ``ValueError`` (there is no last state to return, and no work to do).
    Parameters are the cell's, keyed ``"cell.<name>"``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.nn import RNN, TanhRNNCell
    >>> rnn = RNN(TanhRNNCell(3, 4, dtype=np.float64, rng=0), return_sequences=False)
    >>> h, cache = rnn.forward(np.zeros((6, 2, 3)))
    >>> h.shape
    (2, 4)
    >>> sorted(rnn.params())
    ['cell.U', 'cell.W', 'cell.b']
    """

    def __init__(self, cell: Any, *, return_sequences: bool = True) -> None:
        if not isinstance(cell, _Cell):
            raise TypeError(
                f"RNN: cell must be an RNNCell, LSTMCell or GRUCell; got {type(cell).__name__}"
            )
        self.cell = cell
        self.return_sequences = check_bool(return_sequences, "return_sequences", where="RNN")
        self.dtype = cell.dtype

    def params(self) -> dict[str, np.ndarray]:
        return {f"cell.{k}": v for k, v in self.cell.params().items()}

    def manifolds(self) -> dict[str, Any]:
        return {f"cell.{k}": v for k, v in self.cell.manifolds().items()}

    def validate(self, x: Any) -> np.ndarray:
        return self.cell.validate(x)

    def _forward(self, x: np.ndarray, train: bool, rng: Any) -> tuple[np.ndarray, Any]:
        if getattr(self.cell, "takes_mode", False):  # batch statistics / noise: training only
            H, cache = self.cell._forward_sequence(x, None, train=train, rng=rng)
        else:
            H, cache = self.cell._forward_sequence(x, None)
        return (H if self.return_sequences else H[-1]), cache

    #: a readout's factored gradient ``dy W`` is formed block-wise inside BPTT
    takes_factored_grad = True

    def backward(self, cache: Any, dy: np.ndarray) -> tuple[Any, dict]:
        if isinstance(dy, _Factored):
            if not (self.return_sequences and isinstance(self.cell, RNNCell | LSTMCell)):
                dy = dy.materialize()
        else:
            dy = _as_grad(dy, "RNN.backward", self.dtype, self._out_shape(cache))
        if self.return_sequences:
            dX, g = self.cell.backward_sequence(cache, dy)
        else:
            dX, g = self.cell.backward_sequence(cache, None, dh_last=dy)
        return dX, {f"cell.{k}": v for k, v in g.items()}

    def _out_shape(self, cache: Any) -> tuple[int, ...]:
        T, B = cache[0].shape[:2]
        N = self.cell.state_size
        return (T, B, N) if self.return_sequences else (B, N)

    def get_config(self) -> dict[str, Any]:
        from lowdisp.nn._spec import layer_spec

        return {
            "class": type(self).__name__,
            "cell": layer_spec(self.cell),
            "return_sequences": self.return_sequences,
        }

    def __repr__(self) -> str:
        return f"RNN({self.cell!r}, return_sequences={self.return_sequences})"
