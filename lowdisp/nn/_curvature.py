"""Per-example curvature statistics of dense layers (the hook shared by KFAC/EKFAC,
the Fisher objects, pruning criteria and tangent kernels).

A :class:`~lowdisp.nn.Dense` layer computes ``z = W ã`` with ``ã = [a; 1]``
(the bias is the last column of ``W̃ = [W, b]``, the layout of nngeometry and
the EKFAC authors' code). The gradient of one example's loss is rank one,
``∇_W̃ ℓ_i = g_i ã_iᵀ`` with ``g_i = ∂ℓ_i/∂z_i``, so the layer's backward pass
already holds everything curvature needs: its input ``a`` (the forward cache)
and its output cotangent ``dy``. When a :class:`_Recorder` is attached to the
layer (``layer._stats``), ``Dense._backward`` hands it ``(x, dy)`` (two
references, no copy) and the consumer turns them into

- ``A = E[ã ãᵀ]`` (``(d_in + 1)²``, float64), ``G = E[g gᵀ]`` (``d_out²``);
- the EKFAC diagonal in a Kronecker-factored eigenbasis by the rank-one trick
  ``S[o, j] = E_i[(U_Gᵀ g_i)_o² (U_Aᵀ ã_i)_j²]`` (two GEMMs);

without ever forming a per-example gradient matrix.

**Scale of g (the common silent bug).** A trainer back-propagates a *mean*
loss ``L = (1/B) Σ_i ℓ_i``, so the cotangent row it hands a layer is
``dy_i = g_i / B``; ``G`` must be ``(1/B) Σ g_i g_iᵀ = B · dyᵀdy``, not
``dyᵀdy/B`` (which is B² too small). :func:`example_scale` gives ``c`` with
``g_i = c · dy_i`` (``B`` for ``reduction="mean"``, ``1`` for ``"sum"``).

**Sequences (KFAC-expand, KFAC-reduce).** A dense layer applied to
``(T, B, d)`` shares its weight over the ``T`` positions. Following
Eschenhagen et al. (2023), KFAC-expand treats each position as an example of
the input factor and sums the output factor over positions:
``A = (1/(BT)) Σ_{n,t} ã ãᵀ``, ``G = (1/B) Σ_{n,t} g gᵀ``; the recurrent
cell's matrices use the same rule (:mod:`lowdisp.nn._kfac`). KFAC-reduce
(``approx="reduce"`` of ``fisher_matrix`` and the optimizers,
:func:`reduce_sequences`) averages ``ã`` and sums ``g`` over
the positions of each sequence first: ``A = (1/B) Σ_n ā_n ā_nᵀ``,
``G = (1/B) Σ_n ĝ_n ĝ_nᵀ``.

**Structured layers.** :class:`~lowdisp.nn.StructuredDense` calls the same
hook with its input and output cotangent; its per-example generator
gradients are per-example vjps (the diagonal and dense Fisher objects, small
models only).
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CurvatureWarning", "example_scale"]


class CurvatureWarning(UserWarning):
    """A curvature computation fell back or used incomplete statistics.

    Issued once per object: a layer without a curvature rule (its parameters
    get the wrapped optimizer's plain step), or an EKFAC object used before
    its diagonal was estimated.

    Examples
    --------
    >>> from lowdisp.nn import CurvatureWarning
    >>> issubclass(CurvatureWarning, UserWarning)
    True
    """


def example_scale(reduction: str, n_examples: int) -> float:
    """``c`` with ``g_i = c · dy_i``: the per-example output gradient from the
    cotangent row a trainer back-propagates.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        The loss's reduction over the ``n_examples`` examples of the batch.
    n_examples : int
        Examples (sequences) in the batch.

    Returns
    -------
    float
        ``n_examples`` for a mean, ``1`` for a sum.

    Examples
    --------
    >>> from lowdisp.nn import example_scale
    >>> example_scale("mean", 128), example_scale("sum", 128)
    (128.0, 1.0)
    """
    from lowdisp._validation import check_int, check_option

    check_option(reduction, "reduction", ("mean", "sum"), where="example_scale")
    n = check_int(n_examples, "n_examples", where="example_scale", low=1)
    return float(n) if reduction == "mean" else 1.0


class _Recorder:
    """Receives ``(x, dy)`` from a layer's backward pass while ``active`` (private).

    ``x`` is the layer input as the forward pass saw it (``(B, d)`` or
    ``(T, B, d)``), ``dy`` the output cotangent as rows ``(rows, d_out)``;
    both are references valid until the end of the training step.
    """

    __slots__ = ("active", "dy", "x")

    def __init__(self) -> None:
        self.active = True
        self.x: np.ndarray | None = None
        self.dy: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dy: np.ndarray) -> None:
        if self.active:
            self.x = x
            self.dy = dy

    def clear(self) -> None:
        self.x = None
        self.dy = None

    def __deepcopy__(self, memo: dict) -> _Recorder:
        return _Recorder()


class _SequenceRecorder:
    """Statistics of an Elman cell's BPTT (private): the rows ``[x_t, h_{t-1}]``
    ``(T, B, d + N)`` and ``Σ_t δ_tᵀ δ_t`` accumulated block by block by the cell's
    backward pass (``begin(x, H)``, then ``add(D)`` per block of deltas).

    Token input ``(T, B)`` (integer ids) is recorded as its one-hot rows
    (``d = input_size`` columns; memory ``T·B·(d + N)``): the input factor of a
    one-hot input is diagonal (token frequencies) with the bias column equal to
    the same frequencies. With ``keep=True`` (the Fisher objects) the deltas of
    every step are kept, ``dy`` holds them as rows ``(T·B, N)`` aligned with
    ``x``. The cell hands its blocks of deltas from the last step down
    (``[lo, hi)`` then ``[lo', lo)``...), which is how ``add`` places them when
    no ``lo`` is given.
    """

    __slots__ = ("_deltas", "_hi", "active", "dy", "gg", "gs", "input_size", "keep", "sums", "x")

    def __init__(self, input_size: int | None = None, *, keep: bool = False) -> None:
        self.active = True
        self.input_size = input_size
        self.keep = keep
        #: also accumulate the per-sequence sums ``gs = Σ_t δ_t`` ``(B, N)`` (KFAC-reduce)
        self.sums = False
        self.x: np.ndarray | None = None
        self.dy: np.ndarray | None = None
        self.gg: np.ndarray | None = None
        self.gs: np.ndarray | None = None
        self._deltas: np.ndarray | None = None
        self._hi = 0

    def begin(self, x: np.ndarray, H: np.ndarray) -> None:
        if not self.active:
            return
        if x.dtype.kind in "iu":  # token input: its one-hot rows
            x = one_hot(x, self.input_size, H.dtype)
        self.x = np.concatenate([x, H[:-1]], axis=2)
        self.gg = np.zeros((H.shape[2], H.shape[2]), dtype=H.dtype)
        self.gs = np.zeros((H.shape[1], H.shape[2]), dtype=H.dtype) if self.sums else None
        self.dy = None
        if self.keep:
            T, B, N = H.shape[0] - 1, H.shape[1], H.shape[2]
            self._deltas = np.zeros((T, B, N), dtype=H.dtype)
            self._hi = T

    def add(self, D: np.ndarray, lo: int | None = None) -> None:
        if not (self.active and self.gg is not None):
            return
        self.gg += D.T @ D
        if self.gs is not None:
            self.gs += D.reshape(-1, *self.gs.shape).sum(axis=0)
        if self.keep:
            T, B, N = self._deltas.shape
            k = D.shape[0] // B
            lo = self._hi - k if lo is None else lo
            if lo < 0 or lo + k > T:
                raise RuntimeError(
                    f"_SequenceRecorder: a block of {k} steps at {lo} does not fit {T} steps"
                )
            self._deltas[lo : lo + k] = D.reshape(k, B, N)
            self._hi = lo
            self.dy = self._deltas.reshape(T * B, N)

    def clear(self) -> None:
        self.x = None
        self.gg = None
        self.gs = None
        self.dy = None
        if self.keep:
            self._deltas = None

    def __deepcopy__(self, memo: dict) -> _SequenceRecorder:
        out = _SequenceRecorder(self.input_size, keep=self.keep)
        out.sums = self.sums
        return out


def reduce_sequences(x: np.ndarray, dy: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """KFAC-reduce rows of a weight shared over ``T`` positions (private).

    ``x`` ``(T, B, d)`` becomes the per-sequence means ``(B, d)`` (so ``ã``'s bias
    entry stays 1), the cotangent rows ``dy`` ``(T·B, o)`` (position-major, as
    ``x``) the per-sequence sums ``(B, o)``: ``ā_n = (1/T) Σ_t a_nt``,
    ``ĝ_n = Σ_t g_nt`` (Eschenhagen et al. 2023). Used by
    :func:`lowdisp.nn.fisher_matrix` and the KFAC/EKFAC optimizers.
    """
    T, B = x.shape[0], x.shape[1]
    xr = x.mean(axis=0)
    return xr, None if dy is None else dy.reshape(T, B, -1).sum(axis=0)


def one_hot(tokens: np.ndarray, size: int | None, dtype: Any) -> np.ndarray:
    """One-hot rows ``(*tokens.shape, size)`` of integer ids (private)."""
    if size is None:
        raise ValueError("one_hot: the input size of a token input is unknown")
    out = np.zeros((*tokens.shape, size), dtype=dtype)
    np.put_along_axis(out, np.asarray(tokens)[..., None].astype(np.intp), 1, axis=-1)
    return out


@dataclass(eq=False)
class _Block:
    """One Kronecker block: a dense layer and its parameter paths (private)."""

    name: str
    layer: Any
    w_paths: tuple[str, ...]
    cols: tuple[int, ...]
    b_path: str | None
    d_in: int
    d_out: int
    recorder: Any
    #: "dense" (a Dense layer), "rnn" (the matrices [U, W] and bias b of an Elman
    #: cell) or "structured" (a StructuredDense layer: all its parameters, flat)
    kind: str = "dense"

    @property
    def w_path(self) -> str:
        return self.w_paths[0]

    @property
    def a_size(self) -> int:
        return self.d_in + (self.b_path is not None)

    @property
    def paths(self) -> tuple[str, ...]:
        return self.w_paths + (() if self.b_path is None else (self.b_path,))

    # -- statistics ----------------------------------------------------------
    def rows(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(-1, self.d_in)

    def input_moment(self, x: np.ndarray) -> np.ndarray:
        """``A = ã2ᵀ ã2 / rows`` in float64 (one SYRK in the input's dtype)."""
        x2 = self.rows(x)
        m = x2.shape[0]
        A = np.empty((self.a_size, self.a_size))
        d = self.d_in
        A[:d, :d] = x2.T @ x2
        if self.b_path is not None:
            s = x2.sum(axis=0, dtype=np.float64)
            A[:d, d] = s
            A[d, :d] = s
            A[d, d] = m
        A /= max(m, 1)
        return A

    def output_moment(self, dy: np.ndarray, c: float, n_examples: int) -> np.ndarray:
        """``G = (c² / B) dyᵀ dy`` in float64 (``g_i = c dy_i``, ``B`` examples)."""
        G = np.asarray(dy.T @ dy, dtype=np.float64)
        G *= c * c / max(n_examples, 1)
        return G

    def tilde(self, x: np.ndarray, dtype: Any = None) -> np.ndarray:
        """``ã`` rows ``(rows, a_size)`` (a copy with the ones column)."""
        x2 = self.rows(x)
        dt = x2.dtype if dtype is None else dtype
        out = np.empty((x2.shape[0], self.a_size), dtype=dt)
        out[:, : self.d_in] = x2
        if self.b_path is not None:
            out[:, self.d_in] = 1
        return out

    def project_inputs(self, x: np.ndarray, UA: np.ndarray) -> np.ndarray:
        """``ã2 U_A`` without forming ``ã`` (``U_A`` in the input's dtype)."""
        x2 = self.rows(x)
        out = x2 @ UA[: self.d_in]
        if self.b_path is not None:
            out += UA[self.d_in]
        return out

    # -- gradients -------------------------------------------------------------
    def grad_matrix(self, grads: dict) -> np.ndarray | None:
        """``[∇W, ∇b]`` (``[∇U, ∇W, ∇b]`` for a cell) ``(d_out, a_size)``, or ``None``
        if the block has no gradient."""
        gws = [grads.get(p) for p in self.w_paths]
        if any(g is None for g in gws):
            return None
        if self.b_path is None and len(gws) == 1:
            return gws[0]
        out = np.empty((self.d_out, self.a_size), dtype=gws[0].dtype)
        i = 0
        for g, n in zip(gws, self.cols, strict=True):
            out[:, i : i + n] = g
            i += n
        if self.b_path is not None:
            gb = grads.get(self.b_path)
            out[:, self.d_in] = 0 if gb is None else gb
        return out

    def split(self, D: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        i = 0
        for p, n in zip(self.w_paths, self.cols, strict=True):
            out[p] = np.ascontiguousarray(D[:, i : i + n])
            i += n
        if self.b_path is not None:
            out[self.b_path] = D[:, self.d_in].copy()
        return out


def kfe_square_sum(
    block: _Block, x: np.ndarray, dy: np.ndarray, UA: np.ndarray, UG: np.ndarray
) -> np.ndarray:
    """``Σ_i (U_Gᵀ ∇ℓ_i U_A)∘²`` in float64: the EKFAC diagonal times the examples (private).

    ``(B, d)`` inputs: the rank-one trick ``((dy U_G)∘²)ᵀ((ã U_A)∘²)``, two GEMMs;
    ``(T, B, d)`` inputs (a weight shared over time, a cell's rows): the
    per-sequence gradients ``Σ_t (U_Gᵀ g_t)(U_Aᵀ ã_t)ᵀ`` projected, then squared,
    in chunks of sequences.
    """
    XU = block.project_inputs(x, UA)
    GU = dy @ UG
    if x.ndim <= 2:
        np.square(XU, out=XU)
        np.square(GU, out=GU)
        return np.asarray(GU.T @ XU, dtype=np.float64)
    T, B = x.shape[0], x.shape[1]
    XU = XU.reshape(T, B, -1)
    GU = GU.reshape(T, B, -1)
    S = np.zeros((GU.shape[2], XU.shape[2]))
    step = max(1, int(2**22 // max(1, GU.shape[2] * XU.shape[2])))
    for lo in range(0, B, step):  # chunks of sequences (memory), not a loop over examples
        V = np.einsum("tbo,tba->boa", GU[:, lo : lo + step], XU[:, lo : lo + step])
        S += np.einsum("boa,boa->oa", V, V)
    return S


def n_examples(x: np.ndarray) -> int:
    """Examples in a layer input: rows of ``(B, d)``, the batch axis of ``(T, B, d)``."""
    if x.ndim <= 1:
        return 1
    return int(x.shape[0] if x.ndim == 2 else x.shape[-2])


def find_blocks(
    model: Any, exclude: Iterable[str] = (), *, structured: bool = False
) -> tuple[list[_Block], list[str], list[str]]:
    """The dense layers of ``model`` with a curvature rule (private).

    Returns ``(blocks, unsupported, excluded)``: blocks in the model's
    parameter order, the parameter paths of layers without a rule, and the
    paths the user excluded (shell patterns ``exclude`` on the parameter
    path). With ``structured=True`` a :class:`~lowdisp.nn.StructuredDense`
    layer is a block of ``kind="structured"`` over all its parameters (the
    diagonal and dense Fisher objects take its per-example gradients from
    per-example vjps; it has no Kronecker rule).
    """
    from lowdisp.nn._layers import Dense, Sequential
    from lowdisp.nn._rnn import RNN, RNNCell
    from lowdisp.nn._structured_dense import StructuredDense

    pats = list(exclude)
    blocks: list[_Block] = []
    unsupported: list[str] = []
    excluded: list[str] = []

    def is_excluded(path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) for p in pats)

    def walk(layer: Any, prefix: str) -> None:
        if isinstance(layer, Sequential):
            for name, child in layer.layers.items():
                walk(child, f"{prefix}{name}.")
            return
        paths = [f"{prefix}{k}" for k in layer.params()]
        if not paths:
            return
        if isinstance(layer, Dense):
            w = f"{prefix}W"
            b = f"{prefix}b" if "b" in layer.params() else None
            mine = [p for p in (w, b) if p is not None]
            if any(is_excluded(p) for p in mine):
                excluded.extend(mine)
                return
            blocks.append(
                _Block(
                    name=prefix[:-1] or "(model)",
                    layer=layer,
                    w_paths=(w,),
                    cols=(layer.in_features,),
                    b_path=b,
                    d_in=layer.in_features,
                    d_out=layer.out_features,
                    recorder=_Recorder(),
                )
            )
            return
        cell = getattr(layer, "cell", None)
        if isinstance(layer, RNN) and _dense_elman(cell, RNNCell):
            c = f"{prefix}cell."
            mine = [f"{c}U", f"{c}W", f"{c}b"]
            if any(is_excluded(p) for p in mine):
                excluded.extend(mine)
                return
            N = cell.hidden_size
            blocks.append(
                _Block(
                    name=prefix[:-1] or "(model)",
                    layer=cell,
                    w_paths=(f"{c}U", f"{c}W"),
                    cols=(cell.input_size, N),
                    b_path=f"{c}b",
                    d_in=cell.input_size + N,
                    d_out=N,
                    recorder=_SequenceRecorder(cell.input_size),
                    kind="rnn",
                )
            )
            return
        if structured and isinstance(layer, StructuredDense):
            if any(is_excluded(p) for p in paths):
                excluded.extend(paths)
                return
            size = sum(int(np.size(v)) for v in layer.params().values())
            blocks.append(
                _Block(
                    name=prefix[:-1] or "(model)",
                    layer=layer,
                    w_paths=tuple(paths),
                    cols=(),
                    b_path=None,
                    d_in=size,
                    d_out=1,
                    recorder=_Recorder(),
                    kind="structured",
                )
            )
            return
        for p in paths:
            (excluded if is_excluded(p) else unsupported).append(p)

    walk(model, "")
    return blocks, unsupported, excluded


def _dense_elman(cell: Any, cls: type) -> bool:
    """An Elman cell with a plain dense recurrent matrix ``W`` (KFAC-expand applies)."""
    return (
        isinstance(cell, cls)
        and type(getattr(cell, "weight", None)).__name__ == "_DenseWeight"
        and not cell.is_complex
        and cell.activation in ("tanh", "relu")
        and set(cell.params()) == {"U", "W", "b"}
    )


def attach(blocks: list[_Block]) -> None:
    """Point each block's layer at its recorder (the layer's backward feeds it)."""
    for b in blocks:
        b.layer._stats = b.recorder


def detach(blocks: list[_Block]) -> None:
    for b in blocks:
        if getattr(b.layer, "_stats", None) is b.recorder:
            b.layer._stats = None
        b.recorder.clear()


def warn_unsupported(unsupported: list[str], where: str, what: str) -> None:
    """Report once that these parameters get no curvature (not silent)."""
    if unsupported:
        warnings.warn(
            f"{where}: no curvature rule for parameter(s) "
            f"{', '.join(map(repr, unsupported))} (only Dense layers and dense tanh/ReLU "
            f"RNN cells have one); "
            f"{what}. Pass exclude=[...] patterns to silence this for chosen parameters.",
            CurvatureWarning,
            stacklevel=3,
        )


def eigh_clipped(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD factor, negative eigenvalues clipped to 0."""
    import scipy.linalg

    s, U = scipy.linalg.eigh(M, driver="evd", check_finite=False)
    np.maximum(s, 0, out=s)
    return s, U


#: damping conventions: name -> π from (trace A, dim A, trace G, dim G)
def damping_pi(style: str, trA: float, dA: int, trG: float, dG: int) -> float:
    """π of the factored Tikhonov damping ``(A + π√λ I) ⊗ (G + √λ/π I)``.

    ``"paper"``: Martens & Grosse (2015), ``π = sqrt((tr A / dim A) / (tr G / dim G))``
    (also nngeometry's ``use_pi``); ``"authors_code"``: the EKFAC authors'
    ``kfac.py``, ``π = sqrt(tr A · dim A / (tr G · dim G))``; ``"none"``: π = 1.
    A zero or non-finite trace gives π = 1.
    """
    if style == "none" or trA <= 0 or trG <= 0:
        return 1.0
    if style == "paper":
        pi = np.sqrt((trA / dA) / (trG / dG))
    else:
        pi = np.sqrt((trA * dA) / (trG * dG))
    return float(pi) if np.isfinite(pi) and pi > 0 else 1.0


DAMPING_STYLES = ("paper", "authors_code", "none")
