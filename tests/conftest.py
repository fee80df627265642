"""Shared fixtures and Hypothesis profiles.

Profiles: ``dev`` (default, few examples), ``ci`` (derandomized, so CI is
reproducible). Both have ``deadline=None`` because the first call of a Numba
kernel compiles. Choose one with ``HYPOTHESIS_PROFILE=ci``.

``LOWDISP_HYPOTHESIS_SCALE=N`` multiplies the example budget of both profiles
and of the property tests that set their own (the issue-10 acceptance run uses
10 together with ``HYPOTHESIS_PROFILE=ci``).
"""

from __future__ import annotations

import os
import zlib

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

EXAMPLES = 20 * int(os.environ.get("LOWDISP_HYPOTHESIS_SCALE", "1"))
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=EXAMPLES,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    """Pin BLAS to one thread for the whole run: on two loaded cores, threaded BLAS
    on small matrices was measured thousands of times slower than one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A Generator seeded from the test's node id: reproducible, distinct per test."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
