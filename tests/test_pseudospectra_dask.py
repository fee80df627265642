"""pseudospectra(..., client=): a LocalCluster of 2 worker processes gives results
identical (bit for bit) to the serial run on every route."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lowdisp.spectral import pseudospectra
from tests import oracles

dd = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = dd.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    c = dd.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("dense", {}),
        ("sparse", {"method": "shift-invert"}),
        ("ldr", {"method": "shift-invert"}),
        ("dense", {"method": "projection", "k": 20}),
    ],
)
def test_client_matches_serial_bit_for_bit(client, case, kwargs):
    rng = np.random.default_rng(0)
    if case == "dense":
        A = oracles.grcar(60)
    elif case == "sparse":
        A = sp.csr_matrix(oracles.grcar(150))
    else:
        from lowdisp.structured import toeplitz_like

        A = toeplitz_like(rng.standard_normal((60, 2)), rng.standard_normal((60, 2)))
    grid = {"re": np.linspace(-1.0, 3.0, 7), "im": np.linspace(-3.0, 3.0, 9)}
    serial = pseudospectra(A, rng=5, workers=1, **grid, **kwargs)
    done = []
    dist = pseudospectra(
        A, rng=5, client=client, progress=lambda d, t: done.append((d, t)), **grid, **kwargs
    )
    np.testing.assert_array_equal(dist.sigma_min, serial.sigma_min)
    np.testing.assert_array_equal(dist.eigenvalues, serial.eigenvalues)
    assert done and done[-1][0] == done[-1][1]
