"""Parity with nngeometry (optional: runs only when torch and nngeometry import).

A 20-16-12-10 tanh MLP in float64, the exact softmax Fisher on 64 examples:
the KFAC factors A and G, the EKFAC diagonal and both ``solve`` operations
agree with nngeometry's ``PMatKFAC``/``PMatEKFAC`` to 1e-12 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowdisp.nn as lnn
from tests.torch_parity import float64_default_dtype, ours_from_torch

torch = pytest.importorskip("torch")
nng_metrics = pytest.importorskip("nngeometry.metrics")
nng_object = pytest.importorskip("nngeometry.object")

SIZES = (20, 16, 12, 10)


@pytest.fixture(autouse=True)
def float64_default():
    """nngeometry builds its output-Hessian factors in torch's default dtype."""
    with float64_default_dtype():
        yield


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    layers = []
    for i in range(len(SIZES) - 1):
        layers.append(torch.nn.Linear(SIZES[i], SIZES[i + 1]).double())
        if i < len(SIZES) - 2:
            layers.append(torch.nn.Tanh())
    tmodel = torch.nn.Sequential(*layers)
    model = ours_from_torch(layers)  # layer names "0".."4", as torch's
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 64)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=64)
    return tmodel, model, loader, (x, y)


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


def _vector(model, rng):
    return {p: rng.normal(size=a.shape) for p, a in model.params().items()}


def _pvector(tmodel, v):
    lc = nng_object.PVector.from_model(tmodel).layer_collection
    rep = {}
    for lid in lc.layers:
        rep[lid] = (torch.from_numpy(v[f"{lid}.W"]), torch.from_numpy(v[f"{lid}.b"]))
    return nng_object.PVector(lc, dict_repr=rep)


def _from_pvector(pv):
    out = {}
    for lid, (w, b) in pv.to_dict().items() if hasattr(pv, "to_dict") else pv.dict_repr.items():
        out[f"{lid}.W"] = w.detach().numpy()
        out[f"{lid}.b"] = b.detach().numpy()
    return out


def test_kfac_factors_and_solve_match_nngeometry(pair):
    tmodel, model, loader, data = pair
    F = nng_metrics.FIM(
        model=tmodel, loader=loader, representation=nng_object.PMatKFAC, variant="classif_logits"
    )
    K = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind="kfac", fisher="exact")
    # nngeometry splits the scale of G ⊗ A as (G/√m) ⊗ (√m A), m = C - 1 = 9 output
    # passes of its Cholesky factor (torch_hooks.get_kfac_blocks); the product is the same
    m = SIZES[-1] - 1
    for lid, (a, g) in F.data.items():
        A, G = K.factors[lid]
        assert _rel(np.sqrt(m) * A, a.numpy()) < 1e-12
        assert _rel(G / np.sqrt(m), g.numpy()) < 1e-12
    v = _vector(model, np.random.default_rng(2))
    ref = _from_pvector(F.solvePVec(_pvector(tmodel, v), regul=1e-3, use_pi=True))
    got = K.solve(v, 1e-3)
    for p in v:
        assert _rel(got[p], ref[p]) < 1e-12, p


def test_ekfac_diagonal_and_solve_match_nngeometry(pair):
    tmodel, model, loader, data = pair
    E = nng_metrics.FIM(
        model=tmodel, loader=loader, representation=nng_object.PMatEKFAC, variant="classif_logits"
    )
    E.update_diag(loader)
    ours = lnn.fisher_matrix(model, lnn.SoftmaxCrossEntropy(), data, kind="ekfac", fisher="exact")
    v = _vector(model, np.random.default_rng(3))
    ref = _from_pvector(E.solvePVec(_pvector(tmodel, v), regul=1e-3))
    got = ours.solve(v, 1e-3)
    for p in v:
        assert _rel(got[p], ref[p]) < 1e-12, p
    # the diagonal in the eigenbasis: the same up to the order of equal eigenvectors'
    # signs, so compare the dense blocks Q diag(S) Qᵀ
    evecs, diags = E.data
    for lid in diags:
        ua, ug = (t.numpy() for t in evecs[lid])
        Q = np.kron(ug, ua)
        ref_block = (Q * diags[lid].numpy().reshape(-1)) @ Q.T
        UA, UG = ours.bases[lid]
        Qo = np.kron(UG, UA)
        block = (Qo * ours.diagonals[lid].reshape(-1)) @ Qo.T
        assert _rel(block, ref_block) < 1e-12, lid
