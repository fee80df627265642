"""lowdisp.spectral: spectral norms, ε-pseudospectra and measures of non-normality.

Everything accepts a dense array; :func:`spectral_norm` also accepts any
:class:`scipy.sparse.linalg.LinearOperator` (LDR matrices included) and never
densifies it. The Schur-based routines densify operators up to n = 8192;
:func:`pseudospectra` also has routes that never do (``method="shift-invert"``
for sparse and Toeplitz-like LDR matrices, ``method="projection"`` for any
operator) and runs its grid on a ``dask.distributed.Client`` (``client=``).

- Norms: :func:`spectral_norm` (Golub–Kahan–Lanczos, power, randomized,
  dense) → :class:`NormEstimate`; :func:`spectral_normalize`.
- Pseudospectra: :func:`pseudospectra` → :class:`Pseudospectra` (one Schur
  form, batched multi-shift inverse Lanczos); :func:`pseudospectral_abscissa`
  and :func:`pseudospectral_radius` (criss-cross) → :class:`CrissCross`.
- Non-normality: :func:`numerical_range`, :func:`numerical_abscissa`,
  :func:`numerical_radius`, :func:`departure_from_normality`,
  :func:`eigenvalue_condition_numbers`, :func:`kreiss_constant`,
  :func:`transient_growth`.
- Plots (matplotlib imported lazily): :func:`plot_pseudospectra`,
  :func:`plot_numerical_range`, :func:`plot_transient`.

Plots draw result objects: ``plot_pseudospectra(ps)`` for a
:class:`Pseudospectra`, ``plot_transient(tg)`` for a :class:`TransientGrowth`
(also ``ps.plot()``, ``tg.plot()``). As a shorthand each also takes the
matrix itself and computes the result with default options
(``pseudospectra(A, npts=npts)``, ``transient_growth(A, steps, rng=rng)``);
pass a result to control the computation. ``plot_numerical_range`` takes the
matrix (the numerical range has no result object). Every option is checked
before anything is computed or drawn.

Input contract (see docs/spectral.md): array-likes and ``np.matrix``
(masked arrays and 0 x 0 matrices are a ``ValueError``); every dense routine
rescales A by an exact power of two at the door, so f(cA) = c f(A) to
rounding for c in 1e-300..1e300 (a result not representable at A's scale
is a ``ValueError``); arrays in the results keep single precision for
float32/complex64 input, scalars are Python floats; every keyword is checked
in the caller's name before any O(n³) work.

Examples
--------
>>> import numpy as np
>>> import lowdisp.spectral as sp
>>> A = np.array([[0.0, 1.0], [0.0, 0.0]])
>>> round(sp.spectral_norm(A).value, 12)
1.0
>>> round(sp.pseudospectral_abscissa(A, 0.01).value, 6)
0.100499
"""

from lowdisp.spectral._crisscross import CrissCross, pseudospectral_abscissa, pseudospectral_radius
from lowdisp.spectral._nonnormal import (
    EigenvalueConditioning,
    KreissConstant,
    TransientGrowth,
    departure_from_normality,
    eigenvalue_condition_numbers,
    kreiss_constant,
    numerical_abscissa,
    numerical_radius,
    numerical_range,
    plot_numerical_range,
    plot_transient,
    transient_growth,
)
from lowdisp.spectral._norm import NormEstimate, spectral_norm, spectral_normalize
from lowdisp.spectral._pseudo import Pseudospectra, plot_pseudospectra, pseudospectra

__all__ = [
    "CrissCross",
    "EigenvalueConditioning",
    "KreissConstant",
    "NormEstimate",
    "Pseudospectra",
    "TransientGrowth",
    "departure_from_normality",
    "eigenvalue_condition_numbers",
    "kreiss_constant",
    "numerical_abscissa",
    "numerical_radius",
    "numerical_range",
    "plot_numerical_range",
    "plot_pseudospectra",
    "plot_transient",
    "pseudospectra",
    "pseudospectral_abscissa",
    "pseudospectral_radius",
    "spectral_norm",
    "spectral_normalize",
    "transient_growth",
]
