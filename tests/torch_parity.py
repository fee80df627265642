"""Shared helpers of the parity tests against torch-based references (nngeometry):
torch's default dtype held at float64, and our copy of a torch MLP. torch is
imported only when a helper runs (the tests importorskip it first)."""

from __future__ import annotations

import contextlib

import numpy as np

import lowdisp.nn as lnn


@contextlib.contextmanager
def float64_default_dtype():
    """Hold torch's default dtype at float64 inside the block (nngeometry builds
    some of its matrices in the default dtype)."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def ours_from_torch(layers):
    """``lnn.Sequential`` copy of torch ``layers`` (float64): each ``Linear`` a
    ``Dense`` with its weight and bias, each ``ReLU`` a ``ReLU``, any other layer a
    ``Tanh``; the layer names are "0", "1", ..., as torch's."""
    import torch

    ours = []
    for m in layers:
        if isinstance(m, torch.nn.Linear):
            d = lnn.Dense(m.in_features, m.out_features, dtype=np.float64)
            d.params()["W"][...] = m.weight.detach().numpy()
            d.params()["b"][...] = m.bias.detach().numpy()
            ours.append(d)
        else:
            ours.append(
                lnn.ReLU(dtype=np.float64)
                if isinstance(m, torch.nn.ReLU)
                else lnn.Tanh(dtype=np.float64)
            )
    return lnn.Sequential(ours)
