"""The structures of :class:`lowdisp.nn.StructuredDense` and of structured recurrent maps
(private): per structure its parameters, initial values, product and vjp.

Each structure is one small object over a square s x s block (or the whole
rectangle for ``low_rank`` and ``unconstrained``), computing through the public
API of :mod:`lowdisp.structured` (the circulant through real FFTs).
:func:`init_params` draws the parameters of a possibly tiled ``(out, in)``
matrix with a prescribed mean entry variance; the forward and backward of a
tiled matrix are :func:`apply` and :func:`vjp`. No lowdisp.nn imports: the
layers and the recurrent cells both use this module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import lowdisp.structured as ls
from lowdisp._validation import check_bool, check_int, check_option

__all__ = [
    "STRUCTURES",
    "Tiling",
    "apply",
    "check_features",
    "check_structure",
    "circ_apply",
    "circ_vjp",
    "init_params",
    "vjp",
    "weight_matrix",
]


# ---------------------------------------------------------------------------
# circulant product by real FFTs (rows of x are the vectors)
# ---------------------------------------------------------------------------


def circ_apply(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x C(c)ᵀ`` for rows ``x`` (m, n): the circular convolution of each row with ``c``."""
    import scipy.fft as sf

    n = c.shape[0]
    return sf.irfft(sf.rfft(x, axis=-1) * sf.rfft(c), n=n, axis=-1).astype(x.dtype, copy=False)


def circ_vjp(c: np.ndarray, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dx, dc)`` of ``y = x C(c)ᵀ``: ``dx = dy C(c)`` (a circular correlation),
    ``dc_k = Σ_b Σ_j dy_bj x_b,(j-k) mod n`` (summed over the batch in the frequency domain)."""
    import scipy.fft as sf

    n = c.shape[0]
    dyh = sf.rfft(dy, axis=-1)
    dx = sf.irfft(dyh * np.conj(sf.rfft(c)), n=n, axis=-1).astype(x.dtype, copy=False)
    dc = sf.irfft((dyh * np.conj(sf.rfft(x, axis=-1))).sum(axis=0), n=n).astype(c.dtype)
    return dx, dc


# ---------------------------------------------------------------------------
# structures: one small object per structure (parameters, init weights, product, vjp)
# ---------------------------------------------------------------------------


def _z0_weight(R: int, C: int) -> float:
    """``Σ_{j<R, k<C} (min(j, k) + 1)``: E‖M‖²/(r σ⁴) of the kept R x C corner of a
    Stein (Z₀, Z₀ᵀ) Toeplitz-like block ``Σ_i L(g_i) L(h_i)ᵀ``."""
    a, b = min(R, C), max(R, C)
    j = np.arange(a, dtype=np.float64)
    return float(np.sum((j + 1) * (j + 2) / 2 + (b - 1 - j) * (j + 1)))


class _Structure:
    """A structure of square s x s blocks (or the whole rectangle when ``tiled`` is False)."""

    ranked = True  # takes a displacement / ordinary rank
    tiled = True  # square operator families: rectangular layers tile s x s blocks
    bilinear = True  # entries are products of two N(0, σ²) parameters (σ⁴ scaling)
    operators: tuple[str, ...] = ()  # names of learned operator parameters

    def shapes(self, s: int, r: int, corners: bool) -> dict[str, tuple[int, ...]]:
        return {"G": (s, r), "H": (s, r)}

    def fixed(self, s: int, gen: np.random.Generator) -> dict[str, np.ndarray]:
        """Non-Gaussian initial values (operators, nodes), by name."""
        return {}

    def weight(self, R: int, C: int, s: int, fixed: dict[str, np.ndarray]) -> float:
        """E‖M[:R, :C]‖² of one block per unit of ``r σ⁴`` (bilinear) or ``σ²`` (linear)."""
        raise NotImplementedError

    def build(self, p: dict[str, np.ndarray], corners: bool) -> Any:
        raise NotImplementedError

    def apply(self, M: Any, x: np.ndarray) -> np.ndarray:
        return M.matmat(x.T).T

    def vjp(self, M: Any, x: np.ndarray, dy: np.ndarray, p: dict, corners: bool):
        d = M.vjp(x.T, dy.T)
        return d["X"].T, {"G": d["G"], "H": d["H"]}


class _ToeplitzLike(_Structure):
    """Sylvester (Z₁, Z₋₁): ``M = ½ Σ Z₁(g_i) Z₋₁(J h_i)`` (Sindhwani et al. 2015)."""

    def weight(self, R, C, s, fixed):
        # every entry is ½ Σ_i Σ_l ± g_il h_il' over n distinct pairs: E M_jk² = r s σ⁴ / 4
        return R * C * s / 4.0

    def build(self, p, corners):
        return ls.toeplitz_like(p["G"], p["H"])


class _HankelLike(_ToeplitzLike):
    """Sylvester (Z₁ᵀ, Z₋₁): ``M = J T`` with T Toeplitz-like with generators (J G, H)."""

    def build(self, p, corners):
        return ls.hankel_like(p["G"], p["H"])


class _VandermondeLike(_Structure):
    """Stein (D(v), Z₀ᵀ): ``M = Σ diag(g_i) V(v) L(h_i)ᵀ`` with learned nodes v."""

    operators = ("v",)

    def shapes(self, s, r, corners):
        return {"G": (s, r), "H": (s, r), "v": (s,)}

    def fixed(self, s, gen):
        return {"v": gen.uniform(-0.7, 0.7, s)}  # structured-nets: U(-0.7, 0.7)

    def weight(self, R, C, s, fixed):
        # E M_jk² = r σ⁴ Σ_{l<=k} v_j^{2l}; summed over k < C: Σ_{l<C} (C - l) v_j^{2l}
        x2 = fixed["v"][:R].astype(np.float64) ** 2
        acc, pw = np.zeros(R), np.ones(R)
        for ell in range(C):
            acc += (C - ell) * pw
            pw *= x2
        return float(acc.sum())

    def build(self, p, corners):
        return ls.vandermonde_like(p["v"], p["G"], p["H"])

    def vjp(self, M, x, dy, p, corners):
        d = M.vjp(x.T, dy.T)
        return d["X"].T, {"G": d["G"], "H": d["H"], "v": d["A"]}


def _cauchy_nodes(s: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed interlaced nodes ``s_j = j + 1/2``, ``t_k = k``: ``s_j - t_k = j - k + 1/2 != 0``."""
    return np.arange(s) + 0.5, np.arange(s, dtype=np.float64)


class _CauchyLike(_Structure):
    """Sylvester (D(s), D(t)): ``M_jk = g_jᵀ h_k / (s_j - t_k)``, fixed nodes."""

    def weight(self, R, C, s, fixed):
        d = np.arange(-(C - 1), R)  # j - k; pairs with j < R, k < C:
        count = np.minimum(R, C + d) - np.maximum(0, d)
        return float(np.sum(count / (d + 0.5) ** 2))

    def build(self, p, corners):
        sn, tn = _cauchy_nodes(p["G"].shape[0])
        dt = p["G"].dtype
        return ls.cauchy_like(sn.astype(dt), tn.astype(dt), p["G"], p["H"])


class _Subdiagonal(_Structure):
    """LDR-SD: learned subdiagonal operators A, B' (and optionally their corners), Stein
    ``M - A M B'ᵀ = G Hᵀ``: ``(1 - αβ) M = Σ K(A, g_i) K(B', h_i)ᵀ``."""

    operators = ("A", "B", "A_corner", "B_corner")

    def shapes(self, s, r, corners):
        out = {"G": (s, r), "H": (s, r), "A": (s - 1,), "B": (s - 1,)}
        if corners:
            out.update({"A_corner": (1,), "B_corner": (1,)})
        return out

    def fixed(self, s, gen):
        # subdiagonals of ones, corners 0: A = B' = Z_0 (structured-nets' initialisation)
        return {
            "A": np.ones(s - 1),
            "B": np.ones(s - 1),
            "A_corner": np.zeros(1),
            "B_corner": np.zeros(1),
        }

    def weight(self, R, C, s, fixed):
        return _z0_weight(R, C)

    def build(self, p, corners):
        fa = float(p["A_corner"][0]) if corners else 0.0
        fb = float(p["B_corner"][0]) if corners else 0.0
        return ls.ldr_subdiagonal(p["A"], p["B"], p["G"], p["H"], fa=fa, fb=fb)

    def vjp(self, M, x, dy, p, corners):
        d = M.vjp(x.T, dy.T)
        grads = {"G": d["G"], "H": d["H"], "A": d["A"], "B": d["B"]}
        if corners:
            # The corner is a subdiagonal entry of the cyclically relabelled problem:
            # with P the cyclic shift (P v = roll(v, -1)), P A Pᵀ is the subdiagonal
            # operator (a_1, ..., a_{n-2}, f_A) with corner a_0, and M' = P M Pᵀ is the
            # LDR-SD matrix of (P A Pᵀ, P B' Pᵀ, P G, P H); <dY, M X> = <P dY, M' P X>.
            a, b = p["A"], p["B"]
            fa, fb = float(p["A_corner"][0]), float(p["B_corner"][0])
            a2 = np.concatenate([a[1:], np.asarray([fa], a.dtype)])
            b2 = np.concatenate([b[1:], np.asarray([fb], b.dtype)])
            roll = lambda v: np.roll(v, -1, axis=0)  # noqa: E731
            M2 = ls.ldr_subdiagonal(
                a2, b2, roll(p["G"]), roll(p["H"]), fa=float(a[0]), fb=float(b[0])
            )
            d2 = M2.vjp(roll(x.T), roll(dy.T))
            grads["A_corner"] = np.asarray(d2["A"][-1:], dtype=a.dtype)
            grads["B_corner"] = np.asarray(d2["B"][-1:], dtype=b.dtype)
        return d["X"].T, grads


class _Tridiagonal(_Structure):
    """LDR-TD: learned tridiagonal operators, Krylov sum ``M = Σ K(A, g_i) K(B', h_i)ᵀ``;
    ``A`` and ``B`` hold ``[lower, main, upper]`` (length 3s - 2), optionally learned
    corners ``A[0, s-1]``, ``B'[0, s-1]``."""

    operators = ("A", "B", "A_corner", "B_corner")

    def shapes(self, s, r, corners):
        out = {"G": (s, r), "H": (s, r), "A": (3 * s - 2,), "B": (3 * s - 2,)}
        if corners:
            out.update({"A_corner": (1,), "B_corner": (1,)})
        return out

    def fixed(self, s, gen):
        z0 = np.concatenate([np.ones(s - 1), np.zeros(s), np.zeros(s - 1)])  # A = B' = Z_0
        return {"A": z0, "B": z0.copy(), "A_corner": np.zeros(1), "B_corner": np.zeros(1)}

    def weight(self, R, C, s, fixed):
        return _z0_weight(R, C)

    def build(self, p, corners, fa=None, fb=None):
        s = p["G"].shape[0]
        if fa is None:
            fa = float(p["A_corner"][0]) if corners else 0.0
        if fb is None:
            fb = float(p["B_corner"][0]) if corners else 0.0

        def op(v, f):
            return ls.Tridiagonal(v[: s - 1], v[s - 1 : 2 * s - 1], v[2 * s - 1 :], f)

        return ls.ldr_tridiagonal(op(p["A"], fa), op(p["B"], fb), p["G"], p["H"])

    def vjp(self, M, x, dy, p, corners):
        d = M.vjp(x.T, dy.T)
        grads = {"G": d["G"], "H": d["H"], "A": d["A"], "B": d["B"]}
        if corners:
            # The vjp of lowdisp.structured has no corner gradient for tridiagonal
            # operators: a complex step, dL/df = Im <dY, M(f + i h) X> / h, exact to
            # rounding (no subtraction; M is a polynomial in f), one complex product each.
            fa, fb = float(p["A_corner"][0]), float(p["B_corner"][0])
            for key, kw in (("A_corner", "fa"), ("B_corner", "fb")):
                f = fa if kw == "fa" else fb
                h = 1e-10 * max(1.0, abs(f))
                Mc = self.build(p, True, **{kw: complex(f, h)})
                val = np.sum(dy * Mc.matmat(x.T).T.imag) / h
                grads[key] = np.asarray([val], dtype=p["A"].dtype)
        return d["X"].T, grads


class _Circulant(_Structure):
    """``M = C(c)``, first column c (product by real FFTs, as scipy.linalg.circulant)."""

    ranked = False
    bilinear = False

    def shapes(self, s, r, corners):
        return {"c": (s,)}

    def weight(self, R, C, s, fixed):
        return float(R * C)

    def build(self, p, corners):
        return p["c"]

    def apply(self, M, x):
        return circ_apply(M, x)

    def vjp(self, M, x, dy, p, corners):
        dx, dc = circ_vjp(M, x, dy)
        return dx, {"c": dc}


class _Toeplitz(_Structure):
    """``M = T(c, r)`` (first column c, first row ``[c_0, r]``), applied as the leading
    block of the circulant of ``e = [c, 0, ..., 0, r_{n-1}, ..., r_1]`` (length
    ``L = next_fast_len(2n - 1)``): ``T x = (C(e) [x; 0])[:n]``."""

    ranked = False
    bilinear = False

    def shapes(self, s, r, corners):
        return {"c": (s,), "r": (s - 1,)}

    def weight(self, R, C, s, fixed):
        return float(R * C)

    def build(self, p, corners):
        import scipy.fft as sf

        c, r = p["c"], p["r"]
        s = c.shape[0]
        e = np.zeros(sf.next_fast_len(2 * s - 1, real=True), dtype=c.dtype)
        e[:s] = c
        if s > 1:
            e[-(s - 1) :] = r[::-1]
        return e

    def apply(self, M, x):
        s = x.shape[1]
        xp = np.zeros((x.shape[0], M.shape[0]), dtype=x.dtype)
        xp[:, :s] = x
        return circ_apply(M, xp)[:, :s]

    def vjp(self, M, x, dy, p, corners):
        s = x.shape[1]
        xp = np.zeros((x.shape[0], M.shape[0]), dtype=x.dtype)
        xp[:, :s] = x
        dyp = np.zeros_like(xp)
        dyp[:, :s] = dy
        dxp, de = circ_vjp(M, xp, dyp)
        return dxp[:, :s], {"c": de[:s].copy(), "r": de[::-1][: s - 1].copy()}


class _LowRank(_Structure):
    """``M = U Vᵀ`` with U (out, r), V (in, r)."""

    tiled = False

    def shapes(self, s, r, corners):
        raise AssertionError  # pragma: no cover - not tiled


class _Unconstrained(_Structure):
    """A plain dense ``W`` (out, in), Glorot-uniform like :class:`~lowdisp.nn.Dense`."""

    ranked = False
    tiled = False
    bilinear = False


#: structure name -> implementation (the registry of ``StructuredDense(structure=...)``)
STRUCTURES: dict[str, _Structure] = {
    "toeplitz_like": _ToeplitzLike(),
    "hankel_like": _HankelLike(),
    "vandermonde_like": _VandermondeLike(),
    "cauchy_like": _CauchyLike(),
    "subdiagonal": _Subdiagonal(),
    "tridiagonal": _Tridiagonal(),
    "circulant": _Circulant(),
    "toeplitz": _Toeplitz(),
    "low_rank": _LowRank(),
    "unconstrained": _Unconstrained(),
}


def check_features(x: Any, n: int, where: str) -> None:
    """Inside a container (no validation at the door): the last axis of ``x`` has n entries.

    ``Sequential`` checks the sizes between the layers it knows; this guard keeps a
    wrong size from being silently reshaped into rows of n.
    """
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) == 0 or shape[-1] != n:
        raise ValueError(
            f"{where}: x must have {n} features on its last axis; got shape {tuple(shape)}"
        )


def check_structure(
    structure: Any, rank: Any, corners: Any, ni: int, no: int, where: str
) -> tuple[str, int | None, bool]:
    """Validate ``(structure, rank, corners)`` of an ``(no, ni)`` matrix (errors name ``where``)."""
    if not isinstance(structure, str):
        raise TypeError(f"{where}: structure must be a name (str); got {structure!r}")
    check_option(structure, "structure", STRUCTURES, where=where)
    st = STRUCTURES[structure]
    corners = check_bool(corners, "corners", where=where)
    if corners and structure not in ("subdiagonal", "tridiagonal"):
        raise ValueError(
            f"{where}: corners=True is only for structure='subdiagonal' or 'tridiagonal' "
            f"(learned corners of the LDR-SD/TD operators); got structure={structure!r}"
        )
    s = min(ni, no)
    if st.ranked:
        high = s if st.tiled else min(ni, no)
        what = "the block size s = min(in, out)" if st.tiled else "min(in, out)"
        rank = check_int(1 if rank is None else rank, "rank", where=where, low=1)
        if rank > high:
            raise ValueError(
                f"{where}: rank must be in [1, {high}] ({what}) for structure={structure!r}; "
                f"got {rank}"
            )
    elif rank is not None:
        raise ValueError(
            f"{where}: structure={structure!r} has no rank; pass rank=None; got {rank!r}"
        )
    if s == 1 and structure in ("subdiagonal", "tridiagonal"):
        raise ValueError(
            f"{where}: structure={structure!r} needs blocks of size s = min(in, out) >= 2; "
            f"got in_features={ni}, out_features={no}"
        )
    return structure, rank, corners


class Tiling:
    """The block layout of an ``(out, in)`` matrix of ``structure`` (private).

    Square-operator structures tile ``p x q`` blocks of size ``s = min(in, out)``
    (``p = ceil(out / s)``, ``q = ceil(in / s)``); ``low_rank`` and
    ``unconstrained`` are one rectangular block (``s = 0``).
    """

    __slots__ = ("corners", "ni", "no", "p", "q", "s", "st", "structure")

    def __init__(self, structure: str, ni: int, no: int, corners: bool) -> None:
        self.structure, self.ni, self.no, self.corners = structure, ni, no, corners
        self.st = st = STRUCTURES[structure]
        self.s = min(ni, no) if st.tiled else 0
        self.p = -(-no // self.s) if st.tiled else 1
        self.q = -(-ni // self.s) if st.tiled else 1

    @property
    def tiled(self) -> bool:
        return self.st.tiled and (self.p, self.q) != (1, 1)

    def block(self, P: dict[str, np.ndarray], i: int, j: int) -> dict[str, np.ndarray]:
        if not self.tiled:
            return {k: v for k, v in P.items() if k != "b"}
        return {k: v[i, j] for k, v in P.items() if k != "b"}


def init_params(
    t: Tiling, rank: int | None, var_w: float, gen: np.random.Generator, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """Parameters of the matrix with ``E‖M‖_F² = in · out · var_w`` (see StructuredDense)."""
    st, ni, no = t.st, t.ni, t.no
    if t.structure == "unconstrained":
        lim = math.sqrt(3.0 * var_w)
        return {"W": gen.uniform(-lim, lim, (no, ni)).astype(dtype)}
    r = rank or 1
    if t.structure == "low_rank":
        sd = (var_w / r) ** 0.25
        return {
            "U": (sd * gen.standard_normal((no, r))).astype(dtype),
            "V": (sd * gen.standard_normal((ni, r))).astype(dtype),
        }
    s, p, q = t.s, t.p, t.q
    shapes = st.shapes(s, r, t.corners)
    blocks = []
    total = 0.0
    for i in range(p):
        for j in range(q):
            fixed = {k: v for k, v in st.fixed(s, gen).items() if k in shapes}
            R, C = min(s, no - i * s), min(s, ni - j * s)
            total += st.weight(R, C, s, fixed)
            blocks.append(fixed)
    target = ni * no * var_w
    sd = (target / (r * total)) ** 0.25 if st.bilinear else math.sqrt(target / total)
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        full = (p, q, *shape) if t.tiled else shape
        if name in blocks[0]:
            arr = np.stack([b[name] for b in blocks]).reshape(full)
        else:
            arr = sd * gen.standard_normal(full)
        out[name] = arr.astype(dtype)
    return out


def apply(t: Tiling, P: dict[str, np.ndarray], x2: np.ndarray) -> tuple[np.ndarray, Any]:
    """``(x2 Mᵀ, cache)`` for rows ``x2`` (m, in)."""
    st = t.st
    if t.structure == "unconstrained":
        return x2 @ P["W"].T, (x2, None)
    if t.structure == "low_rank":
        xv = x2 @ P["V"]
        return xv @ P["U"].T, (x2, xv)
    s, p, q = t.s, t.p, t.q
    xp = x2
    if q * s != t.ni:
        xp = np.zeros((x2.shape[0], q * s), dtype=x2.dtype)
        xp[:, : t.ni] = x2
    mats = {}
    if p * q == 1:
        M = mats[0, 0] = st.build(t.block(P, 0, 0), t.corners)
        return np.asarray(st.apply(M, xp), dtype=x2.dtype), (xp, mats)
    yp = np.zeros((x2.shape[0], p * s), dtype=x2.dtype)
    for i in range(p):
        for j in range(q):
            M = mats[i, j] = st.build(t.block(P, i, j), t.corners)
            yp[:, i * s : (i + 1) * s] += st.apply(M, xp[:, j * s : (j + 1) * s])
    return yp[:, : t.no], (xp, mats)


def vjp(
    t: Tiling, P: dict[str, np.ndarray], cache: Any, dy2: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(dx2, grads)`` of :func:`apply` for the cotangent ``dy2`` (m, out)."""
    st, dt = t.st, dy2.dtype
    xp, mats = cache
    grads: dict[str, np.ndarray] = {}
    if t.structure == "unconstrained":
        grads["W"] = dy2.T @ xp
        return dy2 @ P["W"], grads
    if t.structure == "low_rank":
        dyu = dy2 @ P["U"]
        grads["U"] = dy2.T @ mats
        grads["V"] = xp.T @ dyu
        return dyu @ P["V"].T, grads
    s, p, q = t.s, t.p, t.q
    if p * q == 1:
        dx, g = st.vjp(mats[0, 0], xp, dy2, t.block(P, 0, 0), t.corners)
        grads.update({k: np.asarray(v, dtype=dt) for k, v in g.items()})
    else:
        dyp = dy2
        if p * s != t.no:
            dyp = np.zeros((dy2.shape[0], p * s), dtype=dt)
            dyp[:, : t.no] = dy2
        dx = np.zeros_like(xp)
        for k, v in P.items():
            if k != "b":
                grads[k] = np.zeros_like(v)
        for i in range(p):
            for j in range(q):
                dxj, g = st.vjp(
                    mats[i, j],
                    xp[:, j * s : (j + 1) * s],
                    dyp[:, i * s : (i + 1) * s],
                    t.block(P, i, j),
                    t.corners,
                )
                dx[:, j * s : (j + 1) * s] += dxj
                for k, v in g.items():
                    grads[k][i, j] = v
    return np.asarray(dx, dtype=dt)[:, : t.ni], grads


def weight_matrix(t: Tiling, P: dict[str, np.ndarray], dtype: np.dtype) -> np.ndarray:
    """The dense (out, in) matrix (for checks and analysis)."""
    if t.structure == "unconstrained":
        return P["W"].copy()
    if t.structure == "low_rank":
        return P["U"] @ P["V"].T
    s, p, q = t.s, t.p, t.q
    W = np.zeros((p * s, q * s), dtype=dtype)
    for i in range(p):
        for j in range(q):
            M = t.st.build(t.block(P, i, j), t.corners)
            if t.structure == "circulant":
                blk = ls.circulant(M).toarray()
            elif t.structure == "toeplitz":
                blk = ls.circulant(M).toarray()[:s, :s]
            else:
                blk = M.toarray()
            W[i * s : (i + 1) * s, j * s : (j + 1) * s] = blk
    return W[: t.no, : t.ni]
