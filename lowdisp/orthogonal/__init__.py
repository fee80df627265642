"""Orthogonal, unitary and spectrally bounded parameterizations with exact VJPs.

Convention
----------
``W`` acts on column vectors: a recurrent layer computes
``h_t = sigma(W h_{t-1} + U x_t + b)``. (The TensorFlow/Theano codes of the
papers multiply row vectors and so store ``W^T``.)

Protocol of every parameterization object ``p``
-----------------------------------------------
- ``p.sample(*, rng) -> theta``: the paper's initialization.
- ``p.forward(theta) -> (W, cache)``: the matrix and what the VJP needs.
- ``p.vjp(cache, dW) -> dtheta``: gradient of a real loss ``L`` with respect
  to ``theta`` given ``dW = dL/dW``; same shape and dtype as ``theta``.
- ``p.right_inverse(W) -> theta`` (raises ``NotOnManifoldError``).
- ``p.in_manifold(W, *, tol=None) -> bool``.
- ``p.apply(theta, X)`` and ``p.apply_vjp(theta, X, dY) -> (dtheta, dX)``
  where the map can act without forming ``W`` (Householder, SVDParam,
  RestrictedUnitary).
- Attributes: ``n`` and ``m`` (``W`` is ``m x n``; ``m == n`` except for
  SVDParam), ``shape``, ``dtype`` (of ``W``: float32/float64 for real maps,
  complex128 for unitary ones), ``is_complex``, ``theta_shape``,
  ``theta_dtype``, ``num_params`` (entries of ``theta``), ``name``.

theta is ONE ndarray per map
----------------------------
========================  ===================  ===========================================
map                       theta_shape          layout
========================  ===================  ===========================================
ScaledCayley(n)           (n(n-1)/2,)          strict upper triangle of skew A, row-major
                                               (``numpy.triu_indices(n, 1)``)
ExpMap(n)                 (n(n-1)/2,)          same as ScaledCayley
Householder(n, k)         (n, k)               reflector vectors in the columns
SVDParam(m, n, k)         (m ku + n kv + r,)   [U reflectors (m, ku) row-major,
                                               V reflectors (n, kv) row-major, p (r,)]
FullUnitary(n)            (n, n)               W itself (complex128, or real)
RestrictedUnitary(n)      (7n,)                [theta1, theta2, theta3, Re v1, Im v1,
                                               Re v2, Im v2], each of length n (float64)
========================  ===================  ===========================================

Starting from a given matrix
----------------------------
The initializations (``henaff``, ``cayley_init``, ``haar``, ``torus``,
``identity``) return orthogonal matrices; ``theta = p.right_inverse(W)``
turns one into parameters when ``W`` is in the map's image: ``det W`` must be
``(-1)^n_neg`` for ScaledCayley (and ``W D`` free of eigenvalue -1),
``(-1)^k`` for Householder (and ``rank(W - I) <= k``), ``+1`` for ExpMap;
``haar`` returns either sign. RestrictedUnitary has no general right
inverse (always raises ``NotOnManifoldError``).

Input contract
--------------
- Arrays: anything ``numpy.asarray`` accepts; ndarray subclasses
  (``np.matrix``) are read as plain arrays and results are plain ndarrays;
  masked arrays are refused (``ValueError``: fill them explicitly with
  ``np.ma.filled``); NaN/Inf are refused naming the function and argument.
- Precision: float32 in, float32 out (``theta``, ``W``, gradients);
  float64 otherwise. ``RestrictedUnitary`` and ``FullUnitary`` have fixed
  dtypes (complex128 / float64).
- 0-size: ``cayley``, ``expm_skew``, ``householder_product`` of ``0 x 0``
  give ``0 x 0``; ``V`` of shape ``(n, 0)`` is the identity; every product
  with ``X`` of shape ``(n, 0)`` returns ``(m, 0)``; maps need ``n >= 1``.
- Scale: parameters scaled anywhere in ``1e-300 .. 1e300`` give ``W``
  orthogonal (unitary) to about ``1e-15``: reflectors are rescaled by
  powers of two (exact), Cayley and exp switch to the real Schur form of
  ``A`` where ``I + A`` is ill conditioned or ``||A||`` large, and
  ``orthogonality_error`` works from singular values of ``W`` rescaled by
  a power of two (``inf`` when the distance itself overflows). Where a
  value is not representable (``exp`` of ``A`` with an eigenvalue beyond
  1.8e308, a Riemannian step ``lr * G`` that overflows) a ``ValueError``
  names the function.

Gradients of complex quantities follow ``dL/dRe + 1j dL/dIm`` with
``L = Re sum(conj(dW) * W)`` (see :mod:`lowdisp.testing`). Maps whose
manifold needs its own update (FullUnitary) provide
``riemannian_step(W, G, lr)``; the others are trained by any optimizer on
``theta``.
"""

import sys
import types
from typing import Any

from lowdisp.orthogonal._base import eigenphases, orthogonality_error
from lowdisp.orthogonal._cayley import ScaledCayley, cayley
from lowdisp.orthogonal._expm import ExpMap, expm_skew, expm_skew_vjp
from lowdisp.orthogonal._householder import (
    Householder,
    householder_apply,
    householder_apply_vjp,
    householder_product,
)
from lowdisp.orthogonal._init import cayley_init, haar, henaff, identity, torus
from lowdisp.orthogonal._registry import orthogonal
from lowdisp.orthogonal._svd import SVDParam
from lowdisp.orthogonal._unitary import FullOrthogonal, FullUnitary, RestrictedUnitary

__all__ = [
    "ExpMap",
    "FullOrthogonal",
    "FullUnitary",
    "Householder",
    "RestrictedUnitary",
    "SVDParam",
    "ScaledCayley",
    "cayley",
    "cayley_init",
    "eigenphases",
    "expm_skew",
    "expm_skew_vjp",
    "haar",
    "henaff",
    "householder_apply",
    "householder_apply_vjp",
    "householder_product",
    "identity",
    "orthogonal",
    "orthogonality_error",
    "torus",
]


class _CallableModule(types.ModuleType):
    """Lets ``lowdisp.orthogonal(n, method=...)`` call the registry.

    ``lowdisp.orthogonal`` is this subpackage, so the registry function of
    the same name (DESIGN.md) would be hidden at the top level; making the
    module callable keeps both ``ld.orthogonal(4)`` and
    ``ld.orthogonal.ScaledCayley`` working.
    """

    def __call__(self, n: int, *, method: str = "cayley", **kwargs: Any) -> Any:
        return orthogonal(n, method=method, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
