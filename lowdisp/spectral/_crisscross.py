"""Criss-cross algorithms for the pseudospectral abscissa and radius (private).

The global steps of Burke–Lewis–Overton (abscissa) and Mengi–Overton
(radius) are kept: one 2n × 2n eigenproblem per outer iteration finds every
crossing of a line or circle with the boundary of σ_ε(A), which certifies
that no part of σ_ε lies further out. Everything else runs on the Schur
factor T of A, computed once: σ_min(zI − A) and its singular vectors come
from inverse Lanczos on T (O(n²) per step, warm started), the search along a
ray is a safeguarded Newton iteration on σ_min, and from each crossing a
local climb along the boundary (secant on the boundary slope) reaches the
nearest local maximum before the next global step. The circular search's
generalized eigenproblem F − λG is turned into a standard one,
(F − σG)⁻¹G, with a shift σ chosen by a condition estimate, which is about
9x cheaper than QZ at 2n = 1024. Typically two global steps suffice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from lowdisp._config import blas_threads
from lowdisp._validation import as_rng, check_int, ldexp, scale_back, unit_scale
from lowdisp.spectral._common import as_dense_square, check_eps, complex_schur

__all__ = ["CrissCross", "pseudospectral_abscissa", "pseudospectral_radius"]

#: below this order σ_min and its vectors come from a dense SVD (exact, cheap)
_DENSE_BELOW = 128
#: tolerance on | |λ| − 1 | (circle) or |Re λ| / scale (line) of a crossing
_CROSS_TOL = 1e-6


@dataclass(frozen=True)
class CrissCross:
    """Result of a criss-cross search.

    Attributes
    ----------
    value : float
        α_ε = max Re z or ρ_ε = max |z| over the ε-pseudospectrum.
    maximizer : complex
        A point z on the boundary attaining it: σ_min(zI − A) = ε.
    iterations : int
        Outer (criss-cross) iterations used: global 2n × 2n eigenproblems.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import pseudospectral_abscissa
    >>> r = pseudospectral_abscissa(np.diag([-1.0, 0.5]), 0.1)
    >>> round(r.value, 12), complex(round(r.maximizer.real, 12), round(r.maximizer.imag, 12))
    (0.6, (0.6+0j))
    """

    value: float
    maximizer: complex
    iterations: int


class _SigmaMin:
    """σ_min(zI − A) and c = uᴴv (u, v its singular vectors), on the Schur factor.

    d/dt σ_min((z + t d)I − A) = Re(d c) at t = 0 when σ_min is simple.
    """

    def __init__(self, M: np.ndarray, T: np.ndarray, rng: np.random.Generator) -> None:
        self.M = M
        self.T = T
        self.n = M.shape[0]
        self.rng = rng
        self.dense = self.n < _DENSE_BELOW
        self.v: np.ndarray | None = None
        self.evals = 0

    def _start(self) -> np.ndarray:
        g = self.rng.standard_normal((self.n, 1)) + 1j * self.rng.standard_normal((self.n, 1))
        g /= np.linalg.norm(g)
        if self.v is None:
            return g
        # warm start mixed with a random direction (the neighbour's vector can
        # be orthogonal to the wanted one where the two smallest values swap)
        return self.v[:, None] + 0.3 * g

    def __call__(self, z: complex) -> tuple[float, complex]:
        self.evals += 1
        if self.dense:
            U, s, Vh = sla.svd(z * np.eye(self.n) - self.M, check_finite=False)
            return float(s[-1]), complex(np.vdot(U[:, -1], Vh[-1].conj()))
        from lowdisp.spectral._pseudo import sigma_min_points

        r = sigma_min_points(
            self.T, np.array([z]), tol=1e-13, maxiter=300, rng=self.rng, V0=self._start()
        )
        v = r.vectors[:, 0]
        if not np.isfinite(v).all():
            self.v = None
            return float(r.sigma[0]), 1.0 + 0j
        self.v = v
        w = z * v - self.T @ v
        nw = float(np.linalg.norm(w))
        c = complex(np.vdot(w / nw, v)) if nw > 0 else 1.0 + 0j
        return float(r.sigma[0]), c

    def many(self, z: np.ndarray) -> np.ndarray:
        """σ_min at many points, to about 1e-8 (tests inside/outside)."""
        if z.size == 0:
            return np.empty(0)
        if self.dense:
            return np.array([sla.svdvals(p * np.eye(self.n) - self.M)[-1] for p in z])
        from lowdisp.spectral._pseudo import sigma_min_points

        return sigma_min_points(self.T, z, tol=1e-9, maxiter=300, rng=self.rng).sigma


@dataclass(frozen=True)
class _Geometry:
    """Rays z(t, s): s is the objective (Re z or |z|), t the position along the boundary."""

    point: Callable[[float, float], complex]
    dz_ds: Callable[[float, float], complex]
    dz_dt: Callable[[float, float], complex]


_ABSCISSA = _Geometry(
    point=lambda t, s: complex(s, t),
    dz_ds=lambda t, s: 1.0 + 0j,
    dz_dt=lambda t, s: 1j,
)
_RADIUS = _Geometry(
    point=lambda t, s: s * complex(math.cos(t), math.sin(t)),
    dz_ds=lambda t, s: complex(math.cos(t), math.sin(t)),
    dz_dt=lambda t, s: 1j * s * complex(math.cos(t), math.sin(t)),
)


def _boundary(
    sv: _SigmaMin, geo: _Geometry, eps: float, t: float, s: float, s_hi: float
) -> tuple[float, complex] | None:
    """A crossing σ_min = ε on the ray t near s (outward when z(t, s) is inside).

    Safeguarded Newton on g(s) = σ_min(z(t, s)) − ε; from inside, a step is
    never shorter than |g| (σ_min is 1-Lipschitz along these unit-speed
    rays), and a bracket [inside, outside] turns failed steps into bisection.
    Returns (s, c) or None when it does not converge.
    """
    lo = -math.inf
    hi = math.inf
    scale = max(1.0, abs(s))
    for _ in range(80):
        sig, c = sv(geo.point(t, s))
        g = sig - eps
        if abs(g) <= 1e-12 * eps:
            return s, c
        if g < 0:
            lo = s
        else:
            hi = s
        dg = (c * geo.dz_ds(t, s)).real
        step = -g / dg if dg != 0 else math.nan
        if g < 0 and not (step >= abs(g)):
            step = abs(g) if not math.isfinite(hi) else math.nan
        new = s + step
        if math.isfinite(lo) and math.isfinite(hi) and not (lo < new < hi):
            new = 0.5 * (lo + hi)
        elif not math.isfinite(new):
            return None
        if g < 0 and new > s_hi:
            new = 0.5 * (s + s_hi) if math.isfinite(hi) is False else 0.5 * (lo + hi)
        if abs(new - s) <= 1e-15 * scale and abs(g) <= 1e-9 * eps:
            return s, c
        s = new
    return None


def _slope(geo: _Geometry, t: float, s: float, c: complex) -> float:
    """ds/dt along the boundary at z(t, s) (implicit differentiation of σ_min = ε)."""
    num = (c * geo.dz_dt(t, s)).real
    den = (c * geo.dz_ds(t, s)).real
    return -num / den if den != 0 else 0.0


def _climb(
    sv: _SigmaMin,
    geo: _Geometry,
    eps: float,
    t: float,
    s: float,
    s_hi: float,
    t_scale: float,
) -> tuple[float, float]:
    """From z(t, s) inside σ_ε: the ray's crossing, then the nearest local max of s(t)."""
    b = _boundary(sv, geo, eps, t, s, s_hi)
    if b is None:
        return t, -math.inf
    s, c = b
    d = _slope(geo, t, s, c)
    step = 1e-3 * t_scale
    t_prev, d_prev = None, None
    for _ in range(40):
        if abs(d) <= 1e-14 * max(1.0, abs(s)) / t_scale:
            break
        if t_prev is not None and d_prev is not None and (d - d_prev) * (t - t_prev) < 0:
            dt = -d * (t - t_prev) / (d - d_prev)  # secant on ds/dt (concave part)
        else:
            dt = math.copysign(step, d)
            step *= 4
        dt = math.copysign(min(abs(dt), 0.25 * t_scale), dt)
        found: tuple[float, complex] | None = None
        for _h in range(30):
            b = _boundary(sv, geo, eps, t + dt, s, s_hi)
            if b is not None and b[0] >= s - 1e-15 * max(1.0, abs(s)):
                found = b
                break
            dt *= 0.5
        if found is None:
            break
        t_prev, d_prev = t, d
        t, (s_new, c) = t + dt, found
        d = _slope(geo, t, s_new, c)
        done = abs(dt) <= 1e-11 * t_scale or s_new - s <= 1e-15 * max(1.0, abs(s))
        s = s_new
        if done and abs(dt) <= 1e-6 * t_scale:
            break
    return t, s


def _midpoints(
    sv: _SigmaMin, t: np.ndarray, point: Callable[[float], complex], eps: float, *, periodic: bool
) -> list[float]:
    """Midpoints of the intervals between consecutive crossings that lie inside σ_ε."""
    if t.size == 0:
        return []
    if t.size == 1:
        return [float(t[0])]
    a = t[:-1]
    b = t[1:]
    if periodic:
        a = np.append(a, t[-1])
        b = np.append(b, t[0] + 2 * np.pi)
    mids = 0.5 * (a + b)
    sig = sv.many(np.array([point(float(m)) for m in mids]))
    inside = [float(m) for m, sg in zip(mids, sig) if sg < eps]
    # tangency: the crossings themselves are the only candidates
    return inside if inside else [float(v) for v in t]


def _near(values: np.ndarray, dist: np.ndarray, tol: float) -> np.ndarray:
    """Values whose distance to the target set is ≤ tol, or the nearest ones if none."""
    if values.size == 0:
        return values
    keep = dist <= tol
    if not keep.any():
        keep = dist <= dist.min() * (1 + 1e-6) + tol
    return values[keep]


def _line_crossings(M: np.ndarray, x: float, eps: float, scale: float) -> np.ndarray:
    """Heights y with ε a singular value of (x + iy)I − A: iy eigenvalues of H(x)."""
    n = M.shape[0]
    I = np.eye(n)
    B = M - x * I
    H = np.block([[B, -eps * I], [eps * I, -B.conj().T]])
    lam = sla.eigvals(H, overwrite_a=True, check_finite=False)
    lam = lam[np.isfinite(lam)]
    return np.sort(_near(lam.imag, np.abs(lam.real), _CROSS_TOL * scale))


def _gecon(lu: np.ndarray, anorm: float) -> float:
    gecon = sla.get_lapack_funcs("gecon", (lu,))
    rc, info = gecon(lu, anorm, norm="1")
    return float(rc) if info == 0 else 0.0


def _circle_crossings(M: np.ndarray, r: float, eps: float) -> np.ndarray:
    """Angles θ with ε a singular value of re^{iθ}I − A (unimodular eigenvalues of F − λG).

    F − λG is reduced to the standard eigenproblem of (F − σG)⁻¹G, whose
    eigenvalues are 1/(λ − σ), with σ among a few fixed shifts (real for real
    A) chosen by LAPACK's condition estimate of F − σG.
    """
    n = M.shape[0]
    I = np.eye(n)
    Z = np.zeros((n, n))
    F = np.block([[M, -eps * I], [Z, r * I]])
    G = np.block([[r * I, Z], [-eps * I, M.conj().T]])
    best = None
    for sigma in (1.7, -2.3, 0.55, -0.45, 3.1, 0.0):
        K = F - sigma * G
        anorm = float(np.abs(K).sum(axis=0).max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)  # exactly singular: rc = 0
            lu, piv = sla.lu_factor(K, check_finite=False)
        rc = _gecon(lu, anorm)
        if best is None or rc > best[0]:
            best = (rc, sigma, lu, piv)
        if rc > 1e-8:
            break
    assert best is not None
    _, sigma, lu, piv = best
    with np.errstate(all="ignore"):
        X = sla.lu_solve((lu, piv), G, check_finite=False)
    if not np.isfinite(X).all():
        # every shift singular (not seen in practice): the QZ algorithm on F − λG
        with np.errstate(all="ignore"):
            lam = sla.eigvals(F, G, overwrite_a=True, check_finite=False)
        lam = lam[np.isfinite(lam)]
        ang = _near(np.angle(lam), np.abs(np.abs(lam) - 1), _CROSS_TOL)
        return np.sort(np.mod(ang, 2 * np.pi))
    mu = sla.eigvals(X, overwrite_a=True, check_finite=False)
    with np.errstate(all="ignore"):
        lam = sigma + 1.0 / mu[(mu != 0) & np.isfinite(mu)]
    lam = lam[np.isfinite(lam)]
    ang = _near(np.angle(lam), np.abs(np.abs(lam) - 1), _CROSS_TOL)
    return np.sort(np.mod(ang, 2 * np.pi))


def _prepare(
    A: Any, eps: Any, maxiter: Any, rng: Any, where: str
) -> tuple[np.ndarray, float, int, np.random.Generator, int]:
    """Validated (M 2**-e, eps 2**-e, maxiter, rng, e): see :func:`unit_scale`."""
    ep = check_eps(eps, where=where)
    it = check_int(maxiter, "maxiter", where=where, low=1)
    gen = as_rng(rng, where=where)
    M, e = unit_scale(as_dense_square(A, "A", where=where), ep)
    return M, float(ldexp(np.float64(ep), -e)), it, gen, e


def _result(value: float, z: complex, it: int, e: int, where: str, what: str) -> CrissCross:
    v = scale_back(float(value), e, where=where, what=what)
    return CrissCross(float(v), complex(ldexp(np.complex128(z), e)), it)


def _search(
    M: np.ndarray, eps: float, maxiter: int, kind: str, rng: Any
) -> tuple[float, complex, int]:
    """The criss-cross iteration with local climbs (see the module docstring)."""
    T, _ = complex_schur(M)
    lam = np.diag(T)
    sv = _SigmaMin(M, T, rng)
    normA = float(np.linalg.norm(M, 2)) if M.shape[0] < _DENSE_BELOW else _norm2(M)
    s_hi = normA + 2 * eps  # σ_min(zI − A) ≥ |z| − ‖A‖ > ε beyond it
    scale = max(float(np.linalg.norm(M, 1)), eps)
    if kind == "abscissa":
        geo = _ABSCISSA
        k = int(np.argmax(lam.real))
        t0, s0 = float(lam[k].imag), float(lam[k].real)
        t_scale = max(normA, eps)
    else:
        geo = _RADIUS
        k = int(np.argmax(np.abs(lam)))
        t0, s0 = float(np.angle(lam[k])), float(abs(lam[k]))
        t_scale = 1.0
    t_best, s_best = _climb(sv, geo, eps, t0, s0, s_hi, t_scale)
    if not math.isfinite(s_best):  # σ_min = ε not found on the first ray: stay at λ
        t_best, s_best = t0, s0
    it = 0
    for _ in range(maxiter):
        it += 1
        sb = s_best
        if kind == "abscissa":
            cand = _line_crossings(M, sb, eps, scale)
        else:
            cand = _circle_crossings(M, sb, eps)

        def on_level(t: float, sb: float = sb) -> complex:
            return geo.point(t, sb)

        mids = _midpoints(sv, cand, on_level, eps, periodic=kind == "radius")
        improved = False
        for t in mids:
            tt, ss = _climb(sv, geo, eps, t, s_best, s_hi, t_scale)
            if ss > s_best:
                improved = improved or ss > s_best + 1e-12 * max(1.0, abs(s_best))
                t_best, s_best = tt, ss
        if not improved:
            break
    z = geo.point(t_best, s_best)
    return s_best, z, it


def _norm2(M: np.ndarray) -> float:
    from lowdisp.spectral._norm import spectral_norm

    est = spectral_norm(M, rng=0)
    # a Ritz value (≤ ‖A‖) plus its error bound: an upper bound for the bracket
    return float(est.value + max(est.error_bound, 1e-8 * est.value))


def pseudospectral_abscissa(
    A: Any, eps: float, *, maxiter: int = 50, rng: Any = None
) -> CrissCross:
    r"""Pseudospectral abscissa α_ε(A) = max{Re z : σ_min(zI − A) ≤ ε} by criss-cross.

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
        The matrix (densified if an operator).
    eps : float
        ε > 0.
    maxiter : int
        Outer iterations (global 2n × 2n eigenproblems; 1–3 are typical).
    rng : optional
        Seed of the inverse-Lanczos start vectors (n ≥ 128).

    Returns
    -------
    CrissCross
        ``value`` = α_ε, ``maximizer`` z with Re z = α_ε and σ_min(zI − A) = ε.

    Raises
    ------
    ValueError
        A not square, empty or not finite; ``eps <= 0``.

    Notes
    -----
    Byers' lemma: ε is a singular value of A − (x + iy)I iff iy is an
    eigenvalue of the Hamiltonian matrix

    .. math:: H(x) = \begin{bmatrix} A - xI & -εI \\ εI & -(A - xI)^* \end{bmatrix}.

    Starting at the rightmost eigenvalue, a *vertical search* (eigenvalues of
    H(x)) finds the intervals of the line Re z = x inside σ_ε(A) (an interval
    is kept when σ_min < ε at its midpoint). From each midpoint a *horizontal
    search* (safeguarded Newton on σ_min, computed by inverse Lanczos on the
    Schur factor) reaches the boundary, and a climb along the boundary (secant
    iteration on its slope) the nearest local maximum of Re z. The best point
    starts the next vertical search; when it finds no interval reaching
    further right, the value is certified globally. Each global step is one
    2n × 2n eigenproblem; the rest costs O(n²) per σ_min evaluation after one
    O(n³) Schur form.

    References
    ----------
    J. V. Burke, A. S. Lewis, M. L. Overton, "Robust stability and a
    criss-cross algorithm for pseudospectra", IMA J. Numer. Anal. 23 (2003).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import pseudospectral_abscissa
    >>> J = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> r = pseudospectral_abscissa(J, 1e-2)
    >>> bool(abs(r.value - np.sqrt(1e-2 + 1e-4)) < 1e-12)
    True
    """
    where = "pseudospectral_abscissa"
    M, ep, maxiter, gen, e = _prepare(A, eps, maxiter, rng, where)
    with blas_threads(1):
        value, z, it = _search(M, ep, maxiter, "abscissa", gen)
    return _result(value, z, it, e, where, "the pseudospectral abscissa")


def pseudospectral_radius(A: Any, eps: float, *, maxiter: int = 50, rng: Any = None) -> CrissCross:
    r"""Pseudospectral radius ρ_ε(A) = max{|z| : σ_min(zI − A) ≤ ε} by criss-cross.

    Parameters
    ----------
    A : (n, n) array_like or LinearOperator
        The matrix (densified if an operator).
    eps : float
        ε > 0.
    maxiter : int
        Outer iterations (global 2n × 2n eigenproblems; 1–3 are typical).
    rng : optional
        Seed of the inverse-Lanczos start vectors (n ≥ 128).

    Returns
    -------
    CrissCross
        ``value`` = ρ_ε, ``maximizer`` z with |z| = ρ_ε and σ_min(zI − A) = ε.

    Raises
    ------
    ValueError
        A not square, empty or not finite; ``eps <= 0``.

    Notes
    -----
    *Circular search* at radius r: the angles θ with σ_min(A − re^{iθ}I) = ε
    are the unimodular eigenvalues λ = e^{iθ} of the pencil F − λG,

    .. math::
        F = \begin{bmatrix} A & -εI \\ 0 & rI \end{bmatrix},\quad
        G = \begin{bmatrix} rI & 0 \\ -εI & A^* \end{bmatrix},

    computed as the eigenvalues 1/(λ − σ) of the standard matrix
    (F − σG)⁻¹G, σ a fixed shift with F − σG well conditioned (about 9x
    cheaper than the QZ algorithm). Arcs are kept when σ_min < ε at their
    midpoint. From each midpoint a *radial search* (safeguarded Newton on
    σ_min by inverse Lanczos on the Schur factor) reaches the boundary and a
    climb along it (secant iteration on d|z|/dθ) the nearest local maximum of
    |z|. The best point starts the next circular search; when that finds no
    arc reaching further out, the value is certified globally.

    References
    ----------
    E. Mengi and M. L. Overton, "Algorithms for the computation of the
    pseudospectral radius and the numerical radius of a matrix", IMA J.
    Numer. Anal. 25 (2005).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.spectral import pseudospectral_radius
    >>> r = pseudospectral_radius(np.diag([0.5, -0.9]), 0.05)
    >>> round(r.value, 12)
    0.95
    """
    where = "pseudospectral_radius"
    M, ep, maxiter, gen, e = _prepare(A, eps, maxiter, rng, where)
    with blas_threads(1):
        value, z, it = _search(M, ep, maxiter, "radius", gen)
    return _result(value, z, it, e, where, "the pseudospectral radius")
