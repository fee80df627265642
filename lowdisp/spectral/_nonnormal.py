"""Numerical range, non-normality measures, Kreiss constants, transient growth (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.optimize import minimize

from lowdisp._config import blas_threads
from lowdisp._validation import (
    as_rng,
    check_bool,
    check_int,
    check_option,
    ldexp,
    scale_back,
    unit_scale,
)
from lowdisp.spectral._common import as_dense_square, complex_schur, safe_norm
from lowdisp.spectral._pseudo import sigma_min_points
from lowdisp.spectral._resolvent import sigma_min_pow2

__all__ = [
    "EigenvalueConditioning",
    "KreissConstant",
    "TransientGrowth",
    "departure_from_normality",
    "eigenvalue_condition_numbers",
    "kreiss_constant",
    "numerical_abscissa",
    "numerical_radius",
    "numerical_range",
    "plot_numerical_range",
    "plot_transient",
    "transient_growth",
]


# --------------------------------------------------------------------------
# numerical range
# --------------------------------------------------------------------------


def _hermitian_parts(M: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Stack of H_θ = (e^{iθ}A + e^{−iθ}Aᴴ)/2."""
    e = np.exp(1j * theta)[:, None, None]
    return 0.5 * (e * M + np.conj(e) * M.conj().T)


def _lambda_max(M: np.ndarray, theta: np.ndarray) -> np.ndarray:
    out = np.empty(theta.size)
    chunk = max(1, 4_000_000 // max(1, M.size))
    for s in range(0, theta.size, chunk):
        out[s : s + chunk] = np.linalg.eigvalsh(_hermitian_parts(M, theta[s : s + chunk]))[:, -1]
    return out


def numerical_range(A: Any, *, npts: int = 100) -> np.ndarray:
    r"""Boundary points of the numerical range W(A) = {xᴴAx : ‖x‖ = 1} (Johnson's algorithm).

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
        The matrix (densified if an operator).
    npts : int
        Number of boundary points (support directions), ≥ 3.

    Returns
    -------
    (npts,) complex ndarray
        (complex64 for float32/complex64 A.) Points on the boundary of W(A),
        counter-clockwise; W(A) is their
        convex hull up to the sampling (the polygon is inscribed in W(A)).

    Raises
    ------
    ValueError
        A not square, empty or not finite; ``npts < 3``.

    Notes
    -----
    For θ_j = −2πj/npts let x be a unit eigenvector of the largest
    eigenvalue of H_θ = (e^{iθ}A + e^{−iθ}Aᴴ)/2. Then xᴴAx lies on the
    boundary of W(A), on its support line in the direction e^{−iθ}. The
    eigenproblems run as one batched ``eigh``.

    References
    ----------
    C. R. Johnson, "Numerical determination of the field of values of a
    general complex matrix", SIAM J. Numer. Anal. 15 (1978).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import numerical_range
    >>> w = numerical_range(np.array([[0.0, 2.0], [0.0, 0.0]]), npts=8)
    >>> np.allclose(np.abs(w), 1.0)  # a disc of radius 1
    True
    """
    where = "numerical_range"
    npts = check_int(npts, "npts", where=where, low=3)
    M = as_dense_square(A, "A", where=where)
    dt = _out_complex(A)
    M, e = unit_scale(M)
    theta = -2 * np.pi * np.arange(npts) / npts
    with blas_threads(1):
        pts = np.empty(npts, dtype=np.complex128)
        chunk = max(1, 4_000_000 // max(1, M.size))
        for s in range(0, npts, chunk):
            _, X = np.linalg.eigh(_hermitian_parts(M, theta[s : s + chunk]))
            x = X[:, :, -1]  # (k, n)
            pts[s : s + chunk] = np.einsum("ki,ij,kj->k", x.conj(), M, x)
    return scale_back(pts, e, where=where, what="the numerical range").astype(dt, copy=False)


def _out_complex(A: Any) -> np.dtype:
    """complex64 for single-precision input, else complex128 (the results' precision class)."""
    dt = getattr(A, "dtype", None)
    try:
        if dt is None:
            dt = np.asarray(A).dtype
        single = np.dtype(dt) in (np.dtype(np.float32), np.dtype(np.complex64))
    except TypeError:
        single = False
    return np.dtype(np.complex64 if single else np.complex128)


def numerical_abscissa(A: Any) -> float:
    r"""Numerical abscissa ω(A) = max Re W(A) = λ_max((A + Aᴴ)/2).

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator

    Returns
    -------
    float

    Notes
    -----
    ‖e^{tA}‖ ≤ e^{tω(A)} for t ≥ 0, and ω(A) = d/dt ‖e^{tA}‖ at t = 0⁺:
    the initial growth rate of the continuous-time system.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import numerical_abscissa
    >>> numerical_abscissa(np.array([[-1.0, 4.0], [0.0, -1.0]]))
    1.0
    """
    where = "numerical_abscissa"
    M, e = unit_scale(as_dense_square(A, "A", where=where))
    with blas_threads(1):
        w = float(np.linalg.eigvalsh(0.5 * (M + M.conj().T))[-1])
    return float(scale_back(w, e, where=where, what="the numerical abscissa"))


def _top_pair(
    M: np.ndarray, theta: float, x0: np.ndarray | None, tol: float = 1e-13
) -> tuple[float, np.ndarray]:
    """Largest eigenvalue of H_θ and a unit eigenvector (dense below n = 600, else Lanczos)."""
    n = M.shape[0]
    e = complex(math.cos(theta), math.sin(theta))
    if n < _LANCZOS_FROM:
        H = 0.5 * (e * M + np.conj(e) * M.conj().T)
        w, X = sla.eigh(H, subset_by_index=[n - 1, n - 1], check_finite=False)
        return float(w[0]), X[:, 0]
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    H = 0.5 * (e * M + np.conj(e) * M.conj().T)
    try:
        # a budget of about the cost of a dense eigh (clustered tops, e.g. of an
        # orthogonal A, converge slowly; then the dense solver is cheaper)
        w, X = eigsh(H, k=1, which="LA", tol=tol, v0=x0, maxiter=max(3, n // 40))
    except ArpackNoConvergence:
        w, X = sla.eigh(H, subset_by_index=[n - 1, n - 1], check_finite=False)
    return float(w[0]), X[:, 0]


#: order from which θ ↦ λ_max(H_θ) is evaluated by warm-started Lanczos (eigsh)
_LANCZOS_FROM = 600


class _Support:
    """Support values h(θ) = λ_max(H_θ) and support points w(θ) = xᴴAx of W(A), memoized."""

    def __init__(self, M: np.ndarray, rng: np.random.Generator) -> None:
        self.M = M
        self.real = M.dtype.kind == "f"
        self.rng = rng
        self.h: dict[float, float] = {}
        self.w: dict[float, complex] = {}
        self.x: np.ndarray | None = None

    def __call__(self, theta: float, tol: float = 1e-13) -> tuple[float, complex]:
        t = float(np.mod(theta, 2 * np.pi))
        if t in self.h:
            return self.h[t], self.w[t]
        flip = self.real and t > np.pi
        tt = 2 * np.pi - t if flip else t  # real A: H_{-θ} = conj(H_θ)
        if tt in self.h:
            h, w = self.h[tt], self.w[tt]
        else:
            n = self.M.shape[0]
            x0 = None
            if self.x is not None:
                g = self.rng.standard_normal(n) + 1j * self.rng.standard_normal(n)
                x0 = self.x + 0.1 * g / np.linalg.norm(g)
            h, x = _top_pair(self.M, tt, x0, tol)
            self.x = x
            w = complex(np.vdot(x, self.M @ x))
            self.h[tt], self.w[tt] = h, w
        if flip:
            w = w.conjugate()
        self.h[t], self.w[t] = h, w
        return h, w

    def slope(self, theta: float) -> float:
        """h'(θ) = xᴴ (dH/dθ) x = −Im(e^{iθ} w(θ))."""
        _, w = self(theta)
        return -float((complex(math.cos(theta), math.sin(theta)) * w).imag)


def _apex_bound(t1: float, h1: float, t2: float, h2: float) -> float:
    """max over θ ∈ [t1, t2] of Re(e^{iθ} p), p the apex of the two support lines."""
    det = math.sin(t1 - t2)
    if abs(det) < 1e-300:
        return max(h1, h2)
    # cos t_k x − sin t_k y = h_k
    x = (-h1 * math.sin(t2) + h2 * math.sin(t1)) / det
    y = (h2 * math.cos(t1) - h1 * math.cos(t2)) / det
    phi = float(np.mod(-math.atan2(y, x) - t1, 2 * np.pi))
    if phi <= t2 - t1:
        return math.hypot(x, y)
    return max(h1, h2)


def _numerical_radius_core(M: np.ndarray, npts: int, rng: np.random.Generator) -> float:
    """max |w| over the sampled and refined support points of W(A) (a lower bound on r(A))."""
    f = _Support(M, rng)
    theta = 2 * np.pi * np.arange(npts) / npts
    # the samples only locate the peaks (any unit x gives |xᴴAx| ≤ r(A)), so the
    # Lanczos runs stop early there; the refinement runs to 1e-13
    vals = np.array([f(t, 1e-8)[0] for t in theta])
    # refine the local maxima whose polygon bound (the apex of the neighbouring
    # support lines) exceeds the best value so far, best first, by a secant
    # iteration on h'(θ) inside their bracket
    h = 2 * np.pi / npts
    is_peak = (vals >= np.roll(vals, 1)) & (vals >= np.roll(vals, -1))
    peaks = np.flatnonzero(is_peak)
    peaks = peaks[np.argsort(vals[peaks])[::-1][:_PEAKS]]
    for p in peaks:
        lower = max(abs(w) for w in f.w.values())
        hp, hm, hq = vals[p], vals[p - 1], vals[(p + 1) % npts]
        t = theta[p]
        if max(_apex_bound(t - h, hm, t, hp), _apex_bound(t, hp, t + h, hq)) <= lower:
            continue
        a, b = t - h, t + h
        ta, tb = t - 0.5 * h, t + 0.5 * h
        da, db = f.slope(ta), f.slope(tb)
        for _ in range(30):
            if db == da:
                break
            tc = tb - db * (tb - ta) / (db - da)
            if not (a < tc < b):
                tc = 0.5 * (ta + tb)
            ta, da = tb, db
            tb, db = tc, f.slope(tc)
            if abs(tb - ta) <= 1e-12:
                break
    return max(abs(w) for w in f.w.values())


#: local maxima of the sampled support function refined (best first)
_PEAKS = 4


def numerical_radius(A: Any, *, npts: int = 64, rng: Any = None) -> float:
    r"""Numerical radius r(A) = max{|z| : z ∈ W(A)} = max_θ λ_max((e^{iθ}A + e^{−iθ}Aᴴ)/2).

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
    npts : int
        Angles of the sampling (≥ 8; real A needs only half of them); up to
        four local maxima are refined by a secant iteration on the derivative
        (see Notes).
    rng : optional
        Seed of the Lanczos start vectors (n ≥ 600).

    Returns
    -------
    float

    Notes
    -----
    r(A) ≤ ‖A‖₂ ≤ 2r(A) and ‖A^k‖ ≤ 2 r(A)^k (power inequality). For each
    angle θ, h(θ) = λ_max(H_θ) is the support function of the numerical
    range and w = xᴴAx (x the top eigenvector) a boundary point of W(A) with
    |w| ≤ r(A) = max_θ h(θ). The support lines of two neighbouring sampled
    angles meet at a point p, and W(A) between them lies in the wedge at p,
    so Re(e^{iθ}p) bounds h there: a sampled local maximum is refined only
    when that bound exceeds the best |w| so far. The refinement is a secant
    iteration on h'(θ) = −Im(e^{iθ} w(θ)) (Hellmann–Feynman), and the result
    is the largest |w| found: a lower bound, exact to rounding when the
    sampling resolves the peaks. Below n = 600 each h(θ) is a dense ``eigh``;
    above, a Lanczos run (``eigsh`` on H_θ) warm started from the
    neighbouring angle's eigenvector. For real A, h(−θ) = h(θ) halves the
    work.

    References
    ----------
    C. R. Johnson, "Numerical determination of the field of values of a
    general complex matrix", SIAM J. Numer. Anal. 15 (1978).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import numerical_radius
    >>> S = np.eye(4, k=1)  # the shift: r = cos(π/5)
    >>> bool(abs(numerical_radius(S) - np.cos(np.pi / 5)) < 1e-12)
    True
    """
    where = "numerical_radius"
    npts = check_int(npts, "npts", where=where, low=8)
    gen = as_rng(rng, where=where)
    M, e = unit_scale(as_dense_square(A, "A", where=where))
    with blas_threads(1):
        r = float(_numerical_radius_core(M, npts, gen))
    return float(scale_back(r, e, where=where, what="the numerical radius"))


# --------------------------------------------------------------------------
# departure from normality, eigenvalue conditioning
# --------------------------------------------------------------------------


def departure_from_normality(A: Any, *, relative: bool = False) -> float:
    r"""Henrici's departure from normality dep_F(A) = ‖N‖_F, A = U(D + N)Uᴴ (Schur).

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
    relative : bool
        Return dep_F(A)/‖A‖_F ∈ [0, 1] (scale-free; 0 for A = 0).

    Returns
    -------
    float

    Notes
    -----
    dep_F(A)² = ‖A‖_F² − Σ|λᵢ|², the same for every Schur form; it is 0 iff A
    is normal. Computed as ‖triu(T, 1)‖_F from the complex Schur factor T,
    which avoids the cancellation of the difference formula.

    References
    ----------
    P. Henrici, "Bounds for iterates, inverses, spectral variation and fields
    of values of non-normal matrices", Numer. Math. 4 (1962).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import departure_from_normality
    >>> departure_from_normality(np.array([[1.0, 3.0], [0.0, 2.0]]))
    3.0
    """
    where = "departure_from_normality"
    relative = check_bool(relative, "relative", where=where)
    M, e = unit_scale(as_dense_square(A, "A", where=where))
    with blas_threads(1):
        T, _ = complex_schur(M)
        dep = safe_norm(np.triu(T, 1))
    if not relative:
        return float(scale_back(dep, e, where=where, what="the departure from normality"))
    nf = safe_norm(M)
    return min(dep / nf, 1.0) if nf > 0 else 0.0


@dataclass(frozen=True, eq=False)
class EigenvalueConditioning:
    """Eigenvalues and their condition numbers 1/|yᴴx| (unit left/right vectors).

    Attributes
    ----------
    eigenvalues : (n,) complex ndarray
    condition_numbers : (n,) ndarray
        ≥ 1; 1 for normal matrices; ``inf`` for (numerically) defective ones.
        (Both arrays are single precision for float32/complex64 input.)

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import eigenvalue_condition_numbers
    >>> c = eigenvalue_condition_numbers(np.diag([1.0, 2.0]))
    >>> c.condition_numbers.tolist()
    [1.0, 1.0]
    """

    eigenvalues: np.ndarray
    condition_numbers: np.ndarray


def eigenvalue_condition_numbers(A: Any) -> EigenvalueConditioning:
    r"""Condition numbers κ(λᵢ) = 1/|yᵢᴴxᵢ| of the eigenvalues (unit eigenvectors).

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator

    Returns
    -------
    EigenvalueConditioning
        ``eigenvalues`` and ``condition_numbers``, aligned.

    Notes
    -----
    A perturbation A + E moves a simple eigenvalue by κ(λ)‖E‖ + O(‖E‖²), so
    the ε-pseudospectrum near λ is approximately a disc of radius κ(λ)ε.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import eigenvalue_condition_numbers
    >>> c = eigenvalue_condition_numbers(np.array([[1.0, 1.0], [0.0, 2.0]]))
    >>> np.round(c.condition_numbers, 12).tolist()
    [1.414213562373, 1.414213562373]
    """
    where = "eigenvalue_condition_numbers"
    M = as_dense_square(A, "A", where=where)
    dt = _out_complex(A)
    M, e = unit_scale(M)
    with blas_threads(1):
        lam, Y, X = sla.eig(M, left=True, right=True)
    X = X / np.linalg.norm(X, axis=0)
    Y = Y / np.linalg.norm(Y, axis=0)
    d = np.abs(np.einsum("ij,ij->j", Y.conj(), X))
    # |y^H x| at rounding level (<= n eps) means numerically defective: report inf as
    # documented, not 1/rounding (a 2 x 2 Jordan block gave 5e291, [[1, 2], [0, 1]] 9e15)
    tiny = M.shape[0] * np.finfo(np.float64).eps
    with np.errstate(divide="ignore"):
        kappa = np.where(d > tiny, 1.0 / np.maximum(d, tiny), np.inf)
    lam = scale_back(lam.astype(np.complex128), e, where=where, what="an eigenvalue")
    real_dt = np.float32 if dt == np.complex64 else np.float64
    with np.errstate(over="ignore"):  # κ beyond float32's range is inf (defective)
        return EigenvalueConditioning(
            lam.astype(dt, copy=False), np.maximum(kappa, 1.0).astype(real_dt, copy=False)
        )


# --------------------------------------------------------------------------
# Kreiss constants and transient growth
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class KreissConstant:
    """A certified lower bound on the Kreiss constant, its maximizer, and the Kreiss bounds.

    Attributes
    ----------
    value : float
        K ≥ 1, attained at ``maximizer`` (a lower bound of the supremum;
        ``inf`` when A is not power bounded / not stable).
    maximizer : complex or None
        z attaining ``value`` (|z| > 1 discrete, Re z > 0 continuous);
        ``None`` when the supremum is the limit |z| → ∞ (value 1).
    kind : str
        ``"discrete"`` or ``"continuous"``.
    transient_upper_bound : float
        e·n·K, the Kreiss-matrix-theorem bound on sup_k ‖A^k‖ (discrete) or
        sup_t ‖e^{tA}‖ (continuous), evaluated at the computed K.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import kreiss_constant
    >>> kreiss_constant(0.5 * np.eye(3)).value
    1.0
    """

    value: float
    maximizer: complex | None
    kind: str
    transient_upper_bound: float


#: sampled points whose σ_min lies under the inverse-Lanczos clamp are resolved
#: exactly (:func:`sigma_min_pow2`) within this budget of n³ flops; the rest keep
#: the clamp's lower bound
_EXACT_FLOPS = 400 * 64**3
#: up to this order the Nelder–Mead objective resolves clamped points exactly too
_EXACT_REFINE_N = 128
#: 1 − ρ(A) (discrete) or −α(A)/‖A‖ (continuous) at or below this is "on the
#: boundary" to rounding: the spectrum's computed distance to it is noise
_MARGINAL = 1e-13


def _log_grid(bottom: float, top: float) -> np.ndarray:
    """40 log-spaced samples of [10**bottom, 10**top], more (up to 160) for a wider range."""
    num = int(min(160, max(40, 4 * (top - bottom))))
    return np.logspace(bottom, top, num)


def _peak_coordinates(coord: np.ndarray, key: np.ndarray, real: bool) -> np.ndarray:
    """``coord`` (angle or imaginary part) of the 8 eigenvalues with the largest ``key``:
    the sampling grid passes through them (a peak near an eigenvalue is narrow)."""
    top = coord[np.argsort(key)[::-1][:8]]
    return np.abs(top) if real else top


def _two_square(a: float) -> tuple[float, float]:
    """``a*a = p + err`` exactly (Dekker's product with Veltkamp's split; no fma)."""
    p = a * a
    c = 134217729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    lo = a - hi
    return p, ((hi * hi - p) + 2 * hi * lo) + lo * lo


def _circle_gap(z: complex, e: int) -> float:
    """``|2**e z| − 1`` to full relative accuracy (z in M's units, 2**e z in A's).

    A point of the sampling at distance δ ≪ 1 from the unit circle carries an
    absolute rounding error eps in |z|; the ratio is taken with the gap of the
    point actually used, computed here from error-free squares.
    """
    x, y = math.ldexp(z.real, e), math.ldexp(z.imag, e)
    r = math.hypot(x, y)
    if r >= 2.0:
        return r - 1.0
    px, ex = _two_square(x)
    py, ey = _two_square(y)
    return math.fsum((px, ex, py, ey, -1.0)) / (r + 1.0)


def _pow2_quotient(num: np.ndarray, m: np.ndarray, k: np.ndarray, shift: int) -> np.ndarray:
    """log2 of ``num / (m 2**k) * 2**shift`` (``inf`` where m = 0, ``-inf`` where num <= 0:
    a point that rounded onto or inside the circle)."""
    num = np.asarray(num, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2(np.maximum(num, 0.0)) - np.log2(m) - k + shift
    return np.where(num > 0, out, -np.inf)


def _kreiss_search(
    M: np.ndarray, kind: str, rng: np.random.Generator, e: int = 0, *, where: str
) -> tuple[float, complex | None, np.ndarray, np.ndarray]:
    """(K, maximizer, sample points z, sampled ratios) of the Kreiss supremum of 2**e M.

    M is the unit-scaled matrix (:func:`unit_scale`); the returned points are
    in M's units (multiply by 2**e). The continuous ratio is invariant under
    scaling; the discrete one is computed with the unit circle of 2**e M,
    the circle of radius R = 2**-e for M, and the distance to it is kept
    relative to R (δ = |z|/R − 1), so nothing underflows at any e.

    Every ratio is carried as a base-2 logarithm with exact exponents
    (σ_min = m 2**k from :func:`sigma_min_pow2` where it falls under the
    inverse-Lanczos clamp): σ_min(zI − cJ_n) ~ |z|^n / c^{n−1} is far below
    the range of double precision for a scaled Jordan block. A value K that
    is itself not representable raises ``OverflowError``.
    """
    n = M.shape[0]
    eps = np.finfo(float).eps
    T, _ = complex_schur(M)
    lam = np.diag(T)
    normA = float(sla.svdvals(M)[0]) if n <= 1500 else float(np.linalg.norm(M))
    real = M.dtype.kind == "f"
    empty = np.empty(0, dtype=np.complex128), np.empty(0)
    if kind == "discrete":
        rho = float(np.abs(lam).max())
        if float(ldexp(np.float64(rho), e)) > 1 + 1e-13:
            k = int(np.argmax(np.abs(lam)))
            return math.inf, complex(lam[k]), *empty
        if float(ldexp(np.float64(normA), e)) <= 1 + 4 * eps:
            return 1.0, None, *empty
        R = float(ldexp(np.float64(1.0), -e))  # < normA <= n here
        top = math.log10(max(2 * normA / R, 2.0))
        # the peak sits at |z| − 1 ~ (1 − ρ(A))/n when ρ(A) is close to 1; within
        # rounding of the circle (marginal) the sampling keeps its 1e-8 floor and K is
        # a lower bound (K = ∞ for a defective eigenvalue on the circle)
        gap = 1.0 - float(ldexp(np.float64(rho), e))
        bottom = -8.0 if gap <= _MARGINAL else min(-8.0, math.log10(gap / (4 * n)))
        delta = _log_grid(bottom, top)  # |z| = R (1 + δ)
        na = 72
        th = np.linspace(0, np.pi if real else 2 * np.pi, na // (2 if real else 1) + 1)
        th = np.union1d(th, _peak_coordinates(np.angle(lam), np.abs(lam), real))
        D, TH = np.meshgrid(delta, th)
        z = (R * (1 + D) * np.exp(1j * TH)).ravel()
        measure, shift = D.ravel(), -e  # (|z_A| − 1) = δ, σ in M's units: ratio δ 2**-e / σ

        def point(p: np.ndarray) -> tuple[complex, float]:
            zz = complex(R * (1 + math.exp(p[0])) * np.exp(1j * p[1]))
            return zz, _circle_gap(zz, e)  # |z_A| − 1 of the rounded point, exactly

        params = np.column_stack([np.log(D.ravel()), TH.ravel()])
    else:
        alpha = float(lam.real.max())
        if alpha > 1e-13 * max(1.0, normA):
            k = int(np.argmax(lam.real))
            return math.inf, complex(lam[k]), *empty
        omega = float(np.linalg.eigvalsh(0.5 * (M + M.conj().T))[-1])
        if omega <= 4 * eps * max(1.0, normA):
            return 1.0, None, *empty
        scale = max(normA, np.finfo(float).tiny)
        # the peak sits at Re z ~ |α(A)|/n when the spectral abscissa α is close to 0
        # (α within rounding of 0: marginal, as in the discrete case)
        gap = -alpha / scale
        bottom = -8.0 if gap <= _MARGINAL else min(-8.0, math.log10(gap / (4 * n)))
        x = _log_grid(bottom, math.log10(2.0)) * scale
        y0 = float(lam.imag.min()) - normA
        y1 = float(lam.imag.max()) + normA
        if real:
            y0 = 0.0
        y = np.union1d(np.linspace(y0, y1, 48), _peak_coordinates(lam.imag, lam.real, real))
        X, Y = np.meshgrid(x, y)
        z = (X + 1j * Y).ravel()
        measure, shift = X.ravel(), 0

        def point(p: np.ndarray) -> tuple[complex, float]:
            xx = math.exp(p[0])
            return complex(xx, p[1]), xx

        params = np.column_stack([np.log(X.ravel()), Y.ravel()])
    with np.errstate(all="ignore"):
        res = sigma_min_points(T, z, tol=1e-6, maxiter=300, rng=rng)
    sm, sk = np.frexp(res.sigma)
    sk = sk.astype(np.int64)
    # σ_min below the inverse-Lanczos clamp (1e-150 at unit scale) is not a
    # singularity: resolve it exactly (the largest lower bounds first, within a
    # flop budget); the others keep measure/clamp, a lower bound
    under = np.flatnonzero(res.underflow)
    budget = _EXACT_FLOPS // max(n, 1) ** 3
    if under.size and budget:
        # spread over the grid (every radius at fewer angles), not its corner
        pick = under[:: -(-under.size // budget)]
        sm[pick], sk[pick] = sigma_min_pow2(T, z[pick])
    log2r = _pow2_quotient(measure, sm, sk, shift)
    if np.isinf(log2r).any():  # σ_min = 0 exactly: z is an eigenvalue
        k = int(np.argmax(np.isinf(log2r)))
        return math.inf, complex(z[k]), z, np.full(z.size, math.inf)
    starts: list[int] = []
    for k in np.argsort(log2r)[::-1]:
        if len(starts) == 3:
            break
        if all(abs(z[k] - z[j]) > 0.05 * (abs(z[k]) + abs(z[j])) for j in starts):
            starts.append(int(k))

    def neg_log2_ratio(p: np.ndarray) -> float:
        zz, mm = point(p)
        r = sigma_min_points(T, np.array([zz]), tol=1e-13, maxiter=300, rng=rng)
        pm, pk = np.frexp(r.sigma)
        if r.underflow[0] and n <= _EXACT_REFINE_N:
            pm, pk = sigma_min_pow2(T, np.array([zz]))
        val = float(_pow2_quotient(np.array([mm]), pm, pk, shift)[0])
        return -val if np.isfinite(val) else -1e300

    best, best_z = 0.0, None  # log2 of the best certified ratio (K >= 1 = 2**0)
    best_q, best_x = 1.0, 0  # the same ratio, exactly: best_q * 2**best_x
    for k in starts:
        opt = minimize(
            neg_log2_ratio,
            params[k],
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-13, "maxfev": 600},
        )
        for p in (opt.x, params[k]):
            zz, mm = point(p)
            pm, pk = sigma_min_pow2(T, np.array([zz]))  # certified at the point
            val = float(_pow2_quotient(np.array([mm]), pm, pk, shift)[0])
            if val > best:
                best, best_z = val, zz
                if np.isfinite(val):
                    best_q, best_x = mm / float(pm[0]), shift - int(pk[0])
    if best == math.inf:
        return math.inf, best_z, z, np.full(z.size, math.inf)
    mant, ex = math.frexp(best_q)
    if best_x + ex > np.finfo(np.float64).maxexp:
        raise OverflowError(
            f"{where}: the Kreiss constant exceeds the largest float "
            f"({np.finfo(np.float64).max:.3g}): log10 K = {best * math.log10(2.0):.6g}. "
            f"It is finite (A is power bounded / stable) but not representable in "
            f"double precision"
        )
    value = math.ldexp(mant, best_x + ex)
    with np.errstate(over="ignore"):
        ratio = np.exp2(log2r)  # lower bounds for the transient curve (inf beyond range)
    return value, best_z, z, ratio


def kreiss_constant(A: Any, *, kind: str = "discrete", rng: Any = None) -> KreissConstant:
    r"""Kreiss constant of A (discrete: powers; continuous: exponentials).

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
    kind : {"discrete", "continuous"}
        ``"discrete"``: K(A) = sup_{|z|>1} (|z| − 1)‖(zI − A)⁻¹‖;
        ``"continuous"``: K(A) = sup_{Re z>0} Re z ‖(zI − A)⁻¹‖.
    rng : optional
        Seed of the inverse-Lanczos start vectors of the sampling.

    Returns
    -------
    KreissConstant
        ``value`` (a certified lower bound: the ratio is recomputed by a dense
        SVD at ``maximizer``), ``maximizer``, ``kind``,
        ``transient_upper_bound`` = e·n·value.

    Raises
    ------
    ValueError
        A not square, empty or not finite; unknown ``kind``.
    OverflowError
        K is finite (A power bounded, resp. stable) but exceeds the largest
        double (1.8e308); the message gives log10 K. ``value = inf`` is kept
        for K = ∞ (ρ(A) > 1, resp. α(A) > 0).

    Notes
    -----
    Kreiss matrix theorem: K(A) ≤ sup_{k≥0} ‖A^k‖ ≤ e·n·K(A) (discrete), and
    K(A) ≤ sup_{t≥0} ‖e^{tA}‖ ≤ e·n·K(A) (continuous). K ≥ 1 always (the
    limit |z| → ∞). Exact short cuts: a contraction (‖A‖₂ ≤ 1) has K = 1;
    ω(A) ≤ 0 gives K = 1 in the continuous case; ρ(A) > 1 (α(A) > 0) gives
    K = ∞. Otherwise the ratio is sampled on a log-polar (log-half-plane)
    grid by batched inverse Lanczos and the best three samples are refined
    by Nelder–Mead. The supremum can be multimodal, so the result is a lower
    bound, exact when the sampling finds the right basin.

    An eigenvalue within 1e-13 (relative) of the unit circle (imaginary
    axis) counts as on it: K is then the sampled lower bound (∞ in exact
    arithmetic if that eigenvalue is defective, e.g. a nilpotent A in the
    continuous case); farther inside, the sampling reaches down to
    (1 − ρ(A))/n (|α(A)|/n) where the peak sits.

    Scale: the ratio is formed in base-2 mantissa/exponent form, with
    σ_min(zI − T) from a scaled back substitution on the Schur factor where
    it falls below the inverse-Lanczos clamp (σ_min(zI − cJ_n) ~ |z|^n/c^{n−1}
    is far below 1e-308 for a scaled Jordan block), so K is exact to rounding
    for any scale of A in 1e-300..1e300 (tested against the closed form of
    Jordan blocks). The point z of the certification is the rounded one and
    its distance to the unit circle is computed exactly; a peak closer than
    about 1e-12 to the circle is found only to the float grid of z.

    References
    ----------
    L. N. Trefethen and M. Embree, *Spectra and Pseudospectra*, §18 (2005).
    T. Mitchell, "Computing the Kreiss constant of a matrix", SIAM J. Matrix
    Anal. Appl. 41 (2020).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import kreiss_constant
    >>> A = np.array([[0.5, 4.0], [0.0, 0.5]])
    >>> K = kreiss_constant(A, rng=0)
    >>> peak = max(np.linalg.norm(np.linalg.matrix_power(A, k), 2) for k in range(60))
    >>> bool(1.0 < K.value <= peak <= K.transient_upper_bound)
    True
    """
    where = "kreiss_constant"
    if not isinstance(kind, str):
        raise TypeError(f"{where}: kind must be 'discrete' or 'continuous'; got {kind!r}")
    check_option(kind, "kind", ("discrete", "continuous"), where=where)
    gen = as_rng(rng, where=where)
    M, e = unit_scale(as_dense_square(A, "A", where=where))
    with blas_threads(1):
        value, z, _, _ = _kreiss_search(M, kind, gen, e, where=where)
    if z is not None:
        z = complex(ldexp(np.complex128(z), e))
    return KreissConstant(float(value), z, kind, float(math.e * M.shape[0] * value))


@dataclass(frozen=True, eq=False)
class TransientGrowth:
    """‖A^k‖₂ for k = 0..steps with pseudospectral lower bounds on the transient peak.

    Attributes
    ----------
    k : (steps + 1,) ndarray of int
    norms : (steps + 1,) ndarray
        ‖A^k‖₂ (float32 for float32/complex64 A; ``inf`` where ‖A^k‖
        overflows, 0 where it underflows, exactly as A^k itself).
    lower_bounds : (steps + 1,) ndarray
        Certified lower bounds on max_{0≤j≤k} ‖A^j‖₂ from the resolvent
        (see :func:`transient_growth`).
    kreiss : KreissConstant
        K ≤ sup_k ‖A^k‖ ≤ e·n·K.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import transient_growth
    >>> tg = transient_growth(np.array([[0.5, 2.0], [0.0, 0.5]]), 10, rng=0)
    >>> bool(np.all(np.maximum.accumulate(tg.norms) >= tg.lower_bounds * (1 - 1e-12)))
    True
    """

    k: np.ndarray
    norms: np.ndarray
    lower_bounds: np.ndarray
    kreiss: KreissConstant

    def plot(self, *, ax: Any = None) -> Any:
        """Plot the curve and its bounds; see :func:`plot_transient`.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.spectral import transient_growth
        >>> ax = transient_growth(np.array([[0.5, 2.0], [0.0, 0.5]]), 10, rng=0).plot()
        """
        return plot_transient(self, ax=ax)


def _power_norms(M: np.ndarray, steps: int) -> np.ndarray:
    """‖M^k‖₂, k = 0..steps: a block of m powers times successive powers of M^m."""
    n = M.shape[0]
    m = max(1, math.ceil(math.sqrt(steps + 1)))
    block = np.empty((m, n, n), dtype=M.dtype)
    block[0] = np.eye(n)
    for j in range(1, m):
        block[j] = block[j - 1] @ M
    step = block[-1] @ M  # M^m
    out = np.empty(steps + 1)
    cur = block
    with np.errstate(all="ignore"):
        for s in range(0, steps + 1, m):
            k = min(m, steps + 1 - s)
            part = cur[:k]
            if np.isfinite(part).all():
                out[s : s + k] = np.linalg.svd(part, compute_uv=False)[:, 0]
            else:
                out[s : s + k] = np.inf
            cur = cur @ step
    return out


def transient_growth(A: Any, steps: int, *, rng: Any = None) -> TransientGrowth:
    r"""Transient growth ‖A^k‖₂, k = 0..steps, with resolvent lower bounds on its peak.

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
    steps : int
        Largest power (≥ 0).
    rng : optional
        Seed for the Kreiss-constant sampling.

    Returns
    -------
    TransientGrowth
        ``k``, ``norms``, ``lower_bounds``, ``kreiss``.

    Raises
    ------
    ValueError
        A not square, empty or not finite; ``steps < 0``.
    OverflowError
        The Kreiss constant of A is finite but not representable (as in
        :func:`kreiss_constant`).

    Notes
    -----
    If |z| = r > 1 and K' = (r − 1)‖(zI − A)⁻¹‖, then

    .. math:: \max_{0\le j\le k} \|A^j\| \ge \frac{K'}{1 + (K' - 1) r^{-k}}

    (from (zI − A)⁻¹(I − A^k z^{−k}) = Σ_{j<k} A^j z^{−j−1}; Trefethen &
    Embree eq. (16.15)). ``lower_bounds[k]`` is the best of these over the
    Kreiss search's sample points and maximizer (and ≥ 1 = ‖A⁰‖); as
    k → ∞ it tends to the Kreiss lower bound. Powers are formed as a block
    of ⌈√(steps+1)⌉ consecutive powers multiplied by powers of A^m, with
    batched SVDs for the norms.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import transient_growth
    >>> tg = transient_growth(np.array([[0.9, 5.0], [0.0, 0.9]]), 40, rng=0)
    >>> bool(int(tg.k[np.argmax(tg.norms)]) > 0 and tg.norms.max() > 5)
    True
    """
    where = "transient_growth"
    steps = check_int(steps, "steps", where=where, low=0)
    gen = as_rng(rng, where=where)
    M = as_dense_square(A, "A", where=where)
    single = _out_complex(A) == np.complex64
    M, e = unit_scale(M)
    with blas_threads(1):
        value, zmax, z, ratio = _kreiss_search(M, "discrete", gen, e, where=where)
        norms = _power_norms(M, steps)
    k = np.arange(steps + 1)
    # ‖A^k‖ = 2^{ke} ‖M^k‖ exactly: overflow gives inf, underflow 0 (both as for A^k itself)
    with np.errstate(over="ignore", under="ignore"):
        norms = np.ldexp(norms, k * e)
    if zmax is not None:
        zmax = complex(ldexp(np.complex128(zmax), e))
    z = ldexp(z, e) if z.size else z
    kreiss = KreissConstant(float(value), zmax, "discrete", float(math.e * M.shape[0] * value))
    lb = np.ones(steps + 1)
    pts = list(zip(np.abs(z), ratio))
    if zmax is not None and np.isfinite(value):
        pts.append((abs(zmax), value))
    for r, Kp in pts:
        if not np.isfinite(Kp) or Kp <= 1 or r <= 1:
            continue
        with np.errstate(over="ignore", under="ignore"):
            cand = Kp / (1 + (Kp - 1) * np.exp(-k * math.log(r)))
        np.maximum(lb, cand, out=lb)
    if single:  # beyond float32's range: inf, as the float32 power itself
        with np.errstate(over="ignore"):
            norms, lb = norms.astype(np.float32), lb.astype(np.float32)
    return TransientGrowth(k, norms, lb, kreiss)


def plot_numerical_range(
    A: Any, *, ax: Any = None, npts: int = 100, eigenvalues: bool = True
) -> Any:
    """Boundary of the numerical range W(A), with the eigenvalues.

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
        The matrix (the numerical range is computed here: it has no result
        object).
    ax : matplotlib Axes, optional
    npts : int
        Boundary points (see :func:`numerical_range`).
    eigenvalues : bool
        Also plot the eigenvalues.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from lowdisp.spectral import plot_numerical_range
    >>> ax = plot_numerical_range(np.array([[1.0, 2.0], [0.0, -1.0]]))
    >>> len(ax.lines)
    2
    """
    from lowdisp.spectral._plot import draw_numerical_range

    where = "plot_numerical_range"
    eigenvalues = check_bool(eigenvalues, "eigenvalues", where=where)
    npts = check_int(npts, "npts", where=where, low=3)
    M = as_dense_square(A, "A", where=where)
    w = numerical_range(M, npts=npts)
    ev = np.linalg.eigvals(M) if eigenvalues else None
    return draw_numerical_range(w, ev, ax=ax)


def plot_transient(A: Any, steps: int | None = None, *, ax: Any = None, rng: Any = None) -> Any:
    """Semilog plot of ‖A^k‖₂ with the resolvent lower bounds and the Kreiss bounds.

    A nearly flat curve (max/min < 2, e.g. an orthogonal matrix, whose norms
    are 1 to rounding) is drawn on a linear axis with ticks labelled relative
    to a round centre (``1 + 5e-08``) instead of a log axis whose ticks would
    all read ``1×10^0``.

    Parameters
    ----------
    A : TransientGrowth or (n, n) array_like
        A computed :class:`TransientGrowth`, or a matrix as a shorthand for
        ``transient_growth(A, steps, rng=rng)`` (then ``steps`` is required).
    steps : int, optional
        Largest power when A is a matrix.
    ax : matplotlib Axes, optional
    rng : optional
        Seed passed to :func:`transient_growth`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from lowdisp.spectral import plot_transient
    >>> ax = plot_transient(np.array([[0.9, 3.0], [0.0, 0.8]]), 30, rng=0)
    >>> ax.get_yscale()
    'log'
    """
    from lowdisp.spectral._plot import draw_transient

    where = "plot_transient"
    if isinstance(A, TransientGrowth):
        tg = A
    else:
        if steps is None:
            raise ValueError(f"{where}: steps is required when A is a matrix")
        steps = check_int(steps, "steps", where=where, low=0)
        gen = as_rng(rng, where=where)
        as_dense_square(A, "A", where=where)  # errors in this function's name
        tg = transient_growth(A, steps, rng=gen)
    return draw_transient(tg, ax=ax)
