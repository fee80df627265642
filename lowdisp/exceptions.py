"""Exceptions and warnings raised by lowdisp.

Every domain error is a subclass of :class:`ValueError` (or of
:class:`numpy.linalg.LinAlgError` for singular systems), so code that already
catches the standard exceptions keeps working.

Examples
--------
>>> from lowdisp.exceptions import RankError
>>> issubclass(RankError, ValueError)
True
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CheckpointError",
    "ConvergenceWarning",
    "LowdispError",
    "NotOnManifoldError",
    "RankError",
    "SingularOperatorError",
    "UnderflowWarning",
    "UsageError",
]


class LowdispError(ValueError):
    """Base class of lowdisp's domain errors (a :class:`ValueError`).

    Examples
    --------
    >>> from lowdisp.exceptions import LowdispError, RankError
    >>> issubclass(RankError, LowdispError)
    True
    """


class RankError(LowdispError):
    """A displacement rank or a number of reflectors is out of range.

    Examples
    --------
    >>> from lowdisp.exceptions import RankError
    >>> str(RankError("rank must be in [1, 4]; got 7"))
    'rank must be in [1, 4]; got 7'
    """


class NotOnManifoldError(LowdispError):
    """A matrix is not on the manifold a parameterization maps onto.

    Raised by ``right_inverse`` when, for example, a matrix that is not
    orthogonal is handed to an orthogonal parameterization.

    Examples
    --------
    >>> from lowdisp.exceptions import NotOnManifoldError
    >>> issubclass(NotOnManifoldError, ValueError)
    True
    """


class CheckpointError(LowdispError):
    """A checkpoint file is missing, truncated, or not a lowdisp checkpoint.

    Examples
    --------
    >>> from lowdisp.exceptions import CheckpointError
    >>> issubclass(CheckpointError, ValueError)
    True
    """


class UsageError(LowdispError):
    """A command-line user error: a bad value, a missing or wrong file, a refused resume.

    The ``lowdisp`` command prints its message as one line
    ``lowdisp: error: ...`` and exits with status 2 (a traceback only with
    ``--debug``).

    Examples
    --------
    >>> from lowdisp.exceptions import UsageError
    >>> issubclass(UsageError, ValueError)
    True
    """


class SingularOperatorError(np.linalg.LinAlgError):
    """A displacement map or a linear system is singular.

    Subclass of :class:`numpy.linalg.LinAlgError`; the message names the
    colliding eigenvalues or the failing pivot.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdisp.exceptions import SingularOperatorError
    >>> issubclass(SingularOperatorError, np.linalg.LinAlgError)
    True
    """


class ConvergenceWarning(UserWarning):
    """An iterative method stopped before reaching its tolerance.

    Examples
    --------
    >>> from lowdisp.exceptions import ConvergenceWarning
    >>> issubclass(ConvergenceWarning, UserWarning)
    True
    """


class UnderflowWarning(UserWarning):
    """A computed quantity underflowed and was clamped (the message gives the clamp).

    Examples
    --------
    >>> from lowdisp.exceptions import UnderflowWarning
    >>> issubclass(UnderflowWarning, UserWarning)
    True
    """
