"""Unitary recurrent matrices: full-capacity (Wisdom et al.) and restricted (Arjovsky et al.)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft

from lowdisp._validation import (
    as_array,
    as_plain_ndarray,
    as_rng,
    check_bool,
    check_dtype,
    check_int,
    check_positive,
    check_shape,
    ldexp,
    max_abs,
    pow2_exponent,
    safe_exponent,
)
from lowdisp.exceptions import NotOnManifoldError
from lowdisp.orthogonal._base import _Param
from lowdisp.orthogonal._cayley import _HUGE, _RCOND_SPECTRAL, _cayley_spectral, _lu_rcond
from lowdisp.orthogonal._init import haar
from lowdisp.orthogonal._lapack import lu_solve

__all__ = ["FullOrthogonal", "FullUnitary", "RestrictedUnitary"]

_COMPLEX = (np.complex128, np.complex64)
#: the LU step's orthogonality error is ~0.5 eps / rcond(I + A): in single precision
#: (eps 6e-8) a 2**-5 threshold keeps it below ~1e-6 (2**-10, the double one, let 5e-6 through)
_RCOND_SPECTRAL_SINGLE = 2.0**-5
_REAL = (np.float64, np.float32)


class FullUnitary(_Param):
    """Full-capacity unitary matrix stored directly, trained by a Riemannian Cayley step.

    Parameters
    ----------
    n : int
        Order of ``W``.
    real : bool
        Real orthogonal matrices instead of complex unitary ones.
        :class:`FullOrthogonal` is ``FullUnitary(n, real=True)``.
    dtype : dtype, optional
        Precision of ``W``: complex128 (default) or complex64; with
        ``real=True`` float64 (default) or float32. Single precision runs
        end to end in single precision (sample, step, LU solve), with an
        orthogonality error of a few 1e-7 after a step instead of 1e-15.

    Attributes
    ----------
    n, m : int
    dtype, theta_dtype : numpy.dtype
        The ``dtype`` chosen.
    theta_shape : tuple
        ``(n, n)``: ``theta`` is ``W`` itself.
    is_complex : bool

    Notes
    -----
    ``forward`` and ``vjp`` are identities; the constraint is kept by the
    update :meth:`riemannian_step` (Wisdom et al. eqs. 8-9; Tagare 2011;
    Wen & Yin 2013): with ``G = dL/dW`` (``dL/dRe W + i dL/dIm W``)

    .. math:: A = G W^{H} - W G^{H}, \\qquad
              W \\leftarrow \\left(I + \\tfrac{\\lambda}{2} A\\right)^{-1}
                             \\left(I - \\tfrac{\\lambda}{2} A\\right) W,

    a Cayley retraction along the Riemannian gradient: to first order
    ``W - lambda (G - W G^H W)``. ``A`` is skew-Hermitian, so the update is
    unitary up to rounding. A plain optimizer step on ``theta`` would leave
    the manifold: use :meth:`riemannian_step` (or pre-condition ``G`` first,
    as the reference code does with RMSprop).

    References
    ----------
    S. Wisdom, T. Powers, J. Hershey, J. Le Roux, L. Atlas, "Full-capacity
    unitary recurrent neural networks", NIPS 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import FullUnitary, orthogonality_error
    >>> fu = FullUnitary(4)
    >>> W = fu.sample(rng=0)
    >>> G = np.random.default_rng(1).standard_normal((4, 4)) + 0j
    >>> W2 = fu.riemannian_step(W, G, 0.1)
    >>> orthogonality_error(W2) < 1e-14
    True
    """

    name = "full_unitary"

    def __init__(self, n: int, *, real: bool = False, dtype: Any = None) -> None:
        where = type(self).__name__
        self.n = self.m = check_int(n, "n", where=where, low=1)
        self.real = check_bool(real, "real", where=where)
        allowed = _REAL if self.real else _COMPLEX
        dt = allowed[0] if dtype is None else dtype
        self.dtype = self.theta_dtype = check_dtype(dt, allowed, where=where)
        self.theta_shape = (self.n, self.n)
        single = self.dtype in (np.float32, np.complex64)
        #: smallest rcond(I + A) for the LU step; below it the spectral Cayley step
        self._rcond_lu = _RCOND_SPECTRAL_SINGLE if single else _RCOND_SPECTRAL

    def sample(self, *, rng: Any = None) -> np.ndarray:
        """A Haar-random unitary (orthogonal) matrix (Wisdom et al.'s ``'svd'`` init).

        Examples
        --------
        >>> from lowdisp.orthogonal import FullUnitary
        >>> FullUnitary(3).sample(rng=0).dtype
        dtype('complex128')
        """
        W = haar(self.n, rng=as_rng(rng), complex=not self.real)
        return W.astype(self.dtype, copy=False)

    def forward(self, theta: Any) -> tuple[np.ndarray, Any]:
        """The identity: ``W = theta`` (a copy); the cache is None.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import FullUnitary
        >>> W, cache = FullUnitary(2, real=True).forward(np.eye(2))
        >>> W
        array([[1., 0.],
               [0., 1.]])
        """
        return self._theta(theta, "forward").copy(), None

    def vjp(self, cache: Any, dW: Any) -> np.ndarray:
        """The identity: ``dtheta = dW`` (validated).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import FullUnitary
        >>> FullUnitary(2, real=True).vjp(None, np.ones((2, 2)))
        array([[1., 1.],
               [1., 1.]])
        """
        return self._cotangent(dW, "vjp").copy()

    def right_inverse(self, W: Any, *, tol: float | None = None) -> np.ndarray:
        """``theta = W`` after checking that ``W`` is unitary (orthogonal).

        Raises
        ------
        NotOnManifoldError
            If ``||W^H W - I||_2 > tol``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import FullUnitary
        >>> FullUnitary(2).right_inverse(np.eye(2)).dtype
        dtype('complex128')
        """
        Wa = self._matrix(W, "right_inverse")
        self._require_orthogonal(Wa, "right_inverse", tol)
        return Wa.astype(self.dtype, copy=True)

    def riemannian_step(self, W: Any, G: Any, lr: float) -> np.ndarray:
        """One multiplicative Cayley step of gradient descent on the unitary group.

        Parameters
        ----------
        W : (n, n) array_like
            Current unitary (orthogonal) matrix.
        G : (n, n) array_like
            Euclidean gradient ``dL/dW`` (complex convention
            ``dL/dRe W + 1j dL/dIm W``).
        lr : float
            Step size ``lambda > 0``.

        Returns
        -------
        (n, n) ndarray
            ``(I + lr/2 A)^{-1} (I - lr/2 A) W`` with ``A = G W^H - W G^H``.

        Raises
        ------
        ValueError
            If ``lr/2 A`` overflows (``lr * max|G|`` beyond ~1e308).

        Notes
        -----
        One LU solve while ``I + lr/2 A`` is well conditioned; for a large
        step (``lr ||G|| >> 1``) the Cayley transform of the skew-Hermitian
        ``lr/2 A`` is taken from its eigen-decomposition (see
        :func:`lowdisp.orthogonal.cayley`), so the result stays unitary to
        rounding whatever the scale of ``lr`` and ``G``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import FullOrthogonal
        >>> fo = FullOrthogonal(3)
        >>> W = fo.sample(rng=0)
        >>> bool(np.allclose(fo.riemannian_step(W, np.zeros((3, 3)), 0.5), W))
        True
        """
        where = f"{type(self).__name__}.riemannian_step"
        Wa = as_array(W, "W", where=where, allow_complex=self.is_complex)
        check_shape(Wa, "W", self.shape, where=where)
        Ga = as_array(G, "G", where=where, allow_complex=self.is_complex)
        check_shape(Ga, "G", self.shape, where=where)
        step = check_positive(lr, "lr", where=where)
        Wa = Wa.astype(self.dtype, copy=False)
        Ga = Ga.astype(self.dtype, copy=False)
        # G is rescaled by a power of two (exact) so that G W^H cannot overflow
        e = int(pow2_exponent(float(max_abs(Ga))))
        if abs(e) <= safe_exponent(Ga.dtype):
            e = 0
        A = ldexp(Ga, -e) @ Wa.conj().T
        A = A - A.conj().T  # exactly skew-Hermitian
        with np.errstate(over="ignore", invalid="ignore"):
            A *= np.ldexp(0.5 * step, e)
        if not np.isfinite(A).all():
            raise ValueError(
                f"{where}: lr * G overflows (lr = {step:g}, max|G| = {float(max_abs(Ga)):.3g}); "
                "the step matrix lr/2 (G W^H - W G^H) is not representable"
            )
        if float(max_abs(A)) <= _HUGE:
            eye = np.eye(self.n, dtype=self.dtype)
            lu, rcond = _lu_rcond(eye + A)
            if rcond > self._rcond_lu:
                return lu_solve(lu, Wa - A @ Wa)
        # ill-conditioned I + A (huge lr * ||G||): the spectral Cayley transform of
        # the skew A stays unitary to rounding
        C, _ = _cayley_spectral(A)
        return C @ Wa

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, dtype={self.dtype})"


class FullOrthogonal(FullUnitary):
    """Real variant of :class:`FullUnitary`: ``W`` in ``O(n)`` stored directly.

    Parameters
    ----------
    n : int
    dtype : {float64, float32}, optional

    Examples
    --------
    >>> from lowdisp.orthogonal import FullOrthogonal
    >>> FullOrthogonal(3)
    FullOrthogonal(n=3, dtype=float64)
    """

    name = "full_orthogonal"

    def __init__(self, n: int, *, dtype: Any = np.float64) -> None:
        super().__init__(n, real=True, dtype=dtype)


# The restricted product works on row-stacked vectors (``Xt = X^T``, shape
# (b, n)) so that every FFT runs along the contiguous last axis.


def _phase_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dtheta of Re<g, y> for rows y = x * exp(i theta), summed over rows."""
    return np.sum(np.imag(g * y.conj()), axis=0)


def _reflect(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` reflected: ``x_b - 2 v (v^H x_b) / ||v||^2``."""
    s = float(np.vdot(v, v).real)
    c = x @ v.conj()
    return x - ((2.0 / s) * c)[:, None] * v[None, :]


def _reflect_grad(v: np.ndarray, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient in v of Re<g, R(v) x> over the rows (complex convention)."""
    s = float(np.vdot(v, v).real)
    c = x @ v.conj()  # (b,) = v^H x_b
    e = g @ v.conj()
    return (
        -(2.0 / s) * (c.conj() @ g + e.conj() @ x)
        + (4.0 / s**2) * float(np.sum(np.real(e.conj() * c))) * v
    )


class RestrictedUnitary(_Param):
    """Restricted-capacity unitary product of Arjovsky et al., applied in ``O(n log n)``.

    ``W = D_3 R_2 F^{-1} D_2 Pi R_1 F D_1``: diagonal phases
    ``D_j = diag(exp(i theta_j))``, complex reflections
    ``R_j = I - 2 v_j v_j^H / ||v_j||^2``, the unitary DFT ``F``
    (``scipy.fft`` with ``norm="ortho"``) and a fixed permutation ``Pi``.

    Parameters
    ----------
    n : int
        Order of ``W``.
    rng : seed or Generator, optional
        Draws the fixed permutation ``perm`` (``(Pi x)_i = x[perm[i]]``).
    perm : (n,) array_like of int, optional
        The permutation itself (overrides ``rng``), e.g. from a checkpoint.
    dtype : {complex128, complex64}, optional
        Precision of ``W`` (default complex128); ``theta`` and its gradient
        are then float64 (float32). complex64 runs the FFTs, reflections
        and phases in single precision end to end; ``W`` is unitary to a few
        1e-7 instead of 1e-15.

    Attributes
    ----------
    n, m : int
    perm : (n,) ndarray of int
    dtype : numpy.dtype
        complex128 or complex64 (of ``W``).
    theta_dtype : numpy.dtype
        float64 or float32.
    theta_shape : tuple
        ``(7 n,)``: ``[theta_1, theta_2, theta_3, Re v_1, Im v_1, Re v_2,
        Im v_2]``, each block of length ``n``.
    is_complex : bool
        True.

    Notes
    -----
    Each factor's pullback is written under its forward (all checked by
    finite differences): for a phase diagonal ``y = D x``,
    ``dL/dtheta = Im(g conj(y))``, ``g_x = conj(D) g``; for the DFT
    ``g_x = F^H g``; for a reflection with ``s = ||v||^2``, ``c = v^H x``,
    ``e = v^H g``:

    .. math:: \\nabla_v = -\\tfrac{2}{s}\\left(g\\,\\bar c + x\\,\\bar e\\right)
              + \\tfrac{4}{s^{2}}\\operatorname{Re}(\\bar e c)\\, v,
              \\qquad g_x = R g.

    ``apply`` costs two FFTs and ``O(n)`` work per column; ``forward`` forms
    ``W`` by applying the factors to the identity (``O(n^2 log n)``). The
    family has ``7n`` parameters, far fewer than ``dim U(n) = n^2``, so
    ``right_inverse`` exists only for matrices built by this map. Each
    reflection vector is divided by the power of two of its max-abs entry
    before use (exact; the gradient is scaled back), so reflection parts
    scaled anywhere in ``1e-300 .. 1e300`` give the same unitary ``W``.

    References
    ----------
    M. Arjovsky, A. Shah, Y. Bengio, "Unitary evolution recurrent neural
    networks", ICML 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.orthogonal import RestrictedUnitary, orthogonality_error
    >>> ru = RestrictedUnitary(8, rng=0)
    >>> theta = ru.sample(rng=1)
    >>> W, cache = ru.forward(theta)
    >>> orthogonality_error(W) < 1e-14
    True
    >>> x = np.ones(8)
    >>> bool(np.allclose(ru.apply(theta, x), W @ x))
    True
    """

    name = "restricted_unitary"

    def __init__(
        self, n: int, *, rng: Any = None, perm: Any = None, dtype: Any = np.complex128
    ) -> None:
        where = "RestrictedUnitary"
        self.n = self.m = check_int(n, "n", where=where, low=1)
        if perm is None:
            self.perm = as_rng(rng).permutation(self.n)
        else:
            p = np.asarray(as_plain_ndarray(perm, "perm", where=where))
            if (
                p.shape != (self.n,)
                or p.dtype.kind not in "iu"
                or not np.array_equal(np.sort(p), np.arange(self.n))
            ):
                raise ValueError(
                    f"{where}: perm must be a permutation of 0..{self.n - 1}; got {perm!r}"
                )
            self.perm = p.astype(np.int64)
        self.dtype = check_dtype(dtype, _COMPLEX, where=where)
        self.theta_dtype = np.dtype(self.dtype.char.lower())  # complex64 -> float32
        self.theta_shape = (7 * self.n,)

    def sample(self, *, rng: Any = None) -> np.ndarray:
        """Arjovsky et al.'s initialization: phases ``U[-pi, pi]``, reflections Glorot-uniform.

        Examples
        --------
        >>> from lowdisp.orthogonal import RestrictedUnitary
        >>> RestrictedUnitary(4, rng=0).sample(rng=0).shape
        (28,)
        """
        gen = as_rng(rng)
        n = self.n
        bound = np.sqrt(6.0 / (2 + 2 * n))
        theta = np.concatenate(
            [gen.uniform(-np.pi, np.pi, 3 * n), gen.uniform(-bound, bound, 4 * n)]
        )
        return theta.astype(self.theta_dtype, copy=False)

    def _parts(self, theta: Any, where: str) -> tuple[Any, ...]:
        t = self._theta(theta, where).reshape(7, self.n)
        vs, es = [], []
        for name, re, im in (("v1", t[3], t[4]), ("v2", t[5], t[6])):
            m = max(float(np.abs(re).max()), float(np.abs(im).max()))
            if m == 0.0:
                raise ValueError(
                    f"RestrictedUnitary.{where}: reflection vector {name} (theta blocks "
                    f"{'3-4' if name == 'v1' else '5-6'}) must be nonzero"
                )
            # a reflection depends only on the direction of v: divide by the power of
            # two of max|v| (exact) so that ||v||^2 neither underflows nor overflows
            e = int(pow2_exponent(m))
            vs.append(np.ldexp(re, -e) + 1j * np.ldexp(im, -e))
            es.append(e)
        d1, d2, d3 = np.exp(1j * t[0]), np.exp(1j * t[1]), np.exp(1j * t[2])
        return d1, d2, d3, vs[0], vs[1], es[0], es[1]

    def _run(self, parts: tuple[Any, ...], Xt: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Apply the factors to the rows of ``Xt``; return the result and the saved states."""
        d1, d2, d3, v1, v2 = parts[:5]
        x1 = Xt * d1[None, :]
        x2 = sfft.fft(x1, axis=-1, norm="ortho")
        x3 = _reflect(v1, x2)
        x5 = x3[:, self.perm]
        x5 *= d2[None, :]
        x6 = sfft.ifft(x5, axis=-1, norm="ortho")
        x8 = _reflect(v2, x6)
        x8 *= d3[None, :]
        return x8, (x1, x2, x5, x6, x8)

    def _back(
        self, parts: tuple[Any, ...], saved: tuple, Gt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pullback through the factors in reverse; rows of ``Gt`` are cotangents."""
        d1, d2, d3, v1, v2, e1, e2 = parts
        x1, x2, x5, x6, x8 = saved
        gt3 = _phase_grad(Gt, x8)
        g = Gt * d3.conj()[None, :]
        gv2 = _reflect_grad(v2, x6, g)
        g = _reflect(v2, g)
        g = sfft.fft(g, axis=-1, norm="ortho")
        gt2 = _phase_grad(g, x5)
        g *= d2.conj()[None, :]
        g3 = np.empty_like(g)
        g3[:, self.perm] = g
        gv1 = _reflect_grad(v1, x2, g3)
        g = _reflect(v1, g3)
        g = sfft.ifft(g, axis=-1, norm="ortho")
        gt1 = _phase_grad(g, x1)
        g *= d1.conj()[None, :]
        # v = v' 2^e: the gradient in v is that in v' times 2^-e (exact)
        dtheta = np.concatenate(
            [gt1, gt2, gt3]
            + [np.ldexp(x, -e) for x, e in ((gv1.real, e1), (gv1.imag, e1))]
            + [np.ldexp(x, -e) for x, e in ((gv2.real, e2), (gv2.imag, e2))]
        )
        return dtheta, g

    def _block(self, X: Any, name: str, where: str) -> tuple[np.ndarray, bool]:
        Xa = as_array(X, name, where=f"RestrictedUnitary.{where}", ndim=(1, 2))
        if Xa.shape[0] != self.n:
            raise ValueError(
                f"RestrictedUnitary.{where}: {name} must have {self.n} rows; got shape {Xa.shape}"
            )
        vec = Xa.ndim == 1
        return (Xa[:, None] if vec else Xa).astype(self.dtype, copy=False), vec

    def forward(self, theta: Any) -> tuple[np.ndarray, Any]:
        """Form ``W`` by applying the factors to the identity; cache the intermediates.

        Examples
        --------
        >>> from lowdisp.orthogonal import RestrictedUnitary
        >>> ru = RestrictedUnitary(4, rng=0)
        >>> ru.forward(ru.sample(rng=0))[0].shape
        (4, 4)
        """
        parts = self._parts(theta, "forward")
        Wt, saved = self._run(parts, np.eye(self.n, dtype=self.dtype))
        return np.ascontiguousarray(Wt.T), (parts, saved)

    def vjp(self, cache: Any, dW: Any) -> np.ndarray:
        """Gradient of ``L`` in ``theta`` (phases and real/imaginary reflection parts).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import RestrictedUnitary
        >>> ru = RestrictedUnitary(4, rng=0)
        >>> W, cache = ru.forward(ru.sample(rng=0))
        >>> bool(ru.vjp(cache, np.zeros((4, 4))).any())
        False
        """
        G = self._cotangent(dW, "vjp")
        parts, saved = cache
        return self._back(parts, saved, np.ascontiguousarray(G.T))[0]

    def apply(self, theta: Any, X: Any) -> np.ndarray:
        """``W X`` in ``O(n log n)`` per column without forming ``W`` (complex result).

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import RestrictedUnitary
        >>> ru = RestrictedUnitary(4, rng=0)
        >>> ru.apply(ru.sample(rng=0), np.ones((4, 2))).shape
        (4, 2)
        """
        parts = self._parts(theta, "apply")
        Xa, vec = self._block(X, "X", "apply")
        out = self._run(parts, np.ascontiguousarray(Xa.T))[0].T
        return out[:, 0] if vec else out

    def apply_vjp(self, theta: Any, X: Any, dY: Any) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(dtheta, dX)`` of ``L = Re <dY, W X>``; ``dX`` is complex.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.orthogonal import RestrictedUnitary
        >>> ru = RestrictedUnitary(4, rng=0)
        >>> dth, dX = ru.apply_vjp(ru.sample(rng=0), np.ones(4), np.ones(4))
        >>> dth.shape, dX.shape
        ((28,), (4,))
        """
        parts = self._parts(theta, "apply_vjp")
        Xa, vec = self._block(X, "X", "apply_vjp")
        Ga, _ = self._block(dY, "dY", "apply_vjp")
        if Ga.shape != Xa.shape:
            raise ValueError(
                f"RestrictedUnitary.apply_vjp: dY must have the shape of X {np.shape(X)}; "
                f"got {np.shape(dY)}"
            )
        _, saved = self._run(parts, np.ascontiguousarray(Xa.T))
        dtheta, gXt = self._back(parts, saved, np.ascontiguousarray(Ga.T))
        return dtheta, (gXt[0] if vec else gXt.T)

    def right_inverse(self, W: Any, *, tol: float | None = None) -> np.ndarray:
        """Not available: the 7n-parameter family is not invertible on ``U(n)``.

        Raises
        ------
        NotOnManifoldError
            Always, after checking ``W`` (a non-unitary ``W`` gets the
            usual message). Use :class:`FullUnitary` to start from a given
            unitary matrix.

        Examples
        --------
        >>> import numpy as np
        >>> from lowdisp.exceptions import NotOnManifoldError
        >>> from lowdisp.orthogonal import RestrictedUnitary
        >>> try:
        ...     RestrictedUnitary(2, rng=0).right_inverse(np.eye(2))
        ... except NotOnManifoldError as exc:
        ...     print("no general right inverse" in str(exc))
        True
        """
        Wa = self._matrix(W, "right_inverse")
        self._require_orthogonal(Wa, "right_inverse", tol)
        raise NotOnManifoldError(
            "RestrictedUnitary.right_inverse: the restricted family has 7n parameters and "
            f"covers only a thin subset of U({self.n}); no general right inverse exists. "
            "Use FullUnitary to start from a given unitary matrix"
        )

    def __repr__(self) -> str:
        if self.dtype == np.complex128:
            return f"RestrictedUnitary(n={self.n})"
        return f"RestrictedUnitary(n={self.n}, dtype={self.dtype})"
