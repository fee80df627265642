"""Parity with nngeometry's tangent kernels (optional: torch and nngeometry must import).

A 12-10-8-5 ReLU/tanh MLP in float64 with the same weights on both sides, 30
examples: every per-layer centred (and uncentred) kernel ``FMatDense`` of
nngeometry 0.4 (a ``TorchHooksJacobianBackend`` restricted to one layer, as the
authors' ``layer_alignment``) equals ours to 1e-12 relative, and the
alignments ``yᵀKy / (‖K‖_F ‖y‖²)`` computed as the authors do (``vTMv``,
``frobenius_norm``) equal ours to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from tests.torch_parity import float64_default_dtype, ours_from_torch

torch = pytest.importorskip("torch")
nng_backend = pytest.importorskip("nngeometry.backend")
nng_layers = pytest.importorskip("nngeometry.layercollection")
nng_object = pytest.importorskip("nngeometry.object")

SIZES = (12, 10, 8, 5)
N = 30


@pytest.fixture(autouse=True)
def float64_default():
    """nngeometry builds its centring matrix in torch's default dtype."""
    with float64_default_dtype():
        yield


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tl = [
        torch.nn.Linear(12, 10).double(),
        torch.nn.ReLU(),
        torch.nn.Linear(10, 8).double(),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 5).double(),
    ]
    with torch.no_grad():
        for m in tl:
            if isinstance(m, torch.nn.Linear):
                m.bias.normal_(0, 0.1)
    tmodel = torch.nn.Sequential(*tl)
    model = ours_from_torch(tl)  # layer names "0".."4", as torch's
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, SIZES[0]))
    y = rng.integers(0, SIZES[-1], N)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=N, shuffle=False)
    return tmodel, model, loader, x, y


def _nng_kernel(tmodel, loader, layer_id, centering):
    full = nng_layers.LayerCollection.from_model(tmodel)
    lc = nng_layers.LayerCollection()
    lc.add_layer(layer_id, full.layers[layer_id])
    gen = nng_backend.TorchHooksJacobianBackend(
        model=tmodel, centering=centering, layer_collection=lc
    )
    return nng_object.FMatDense(generator=gen, examples=loader)


def _nng_alignment(K, y):
    t = torch.nn.functional.one_hot(torch.from_numpy(y), SIZES[-1]).double()
    t -= t.mean(dim=0)
    v = nng_object.FVector(vector_repr=t.t().contiguous())
    return (K.vTMv(v) / (K.frobenius_norm() * torch.norm(v.to_torch()) ** 2)).item()


@pytest.mark.parametrize("centering", [True, False])
def test_kernels_and_alignment_equal_nngeometry(pair, centering):
    tmodel, model, loader, x, y = pair
    tk = lnn.tangent_kernels(model, x, centering=centering)
    ours = tk.alignment(y)
    assert tk.layers == ("0", "2", "4")
    for lid in tk.layers:
        K = _nng_kernel(tmodel, loader, lid, centering)
        ref = K.data.detach().numpy()
        mine = tk.tensor(lid)
        assert np.abs(mine - ref).max() <= 1e-12 * np.abs(ref).max(), lid
        assert ours[lid] == pytest.approx(_nng_alignment(K, y), rel=1e-12, abs=1e-15)
    gen = nng_backend.TorchHooksJacobianBackend(model=tmodel, centering=centering)
    Kall = nng_object.FMatDense(generator=gen, examples=loader)
    ref = Kall.data.detach().numpy()
    assert np.abs(tk.tensor() - ref).max() <= 1e-12 * np.abs(ref).max()
    assert ours["total"] == pytest.approx(_nng_alignment(Kall, y), rel=1e-12, abs=1e-15)
