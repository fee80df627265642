"""Smoke tests of the structured benchmark suite's helpers (the timings live in benchmarks/)."""

from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg as sla

from lowdisp._bench import structured as B
from lowdisp.structured.families.toeplitz import ToeplitzPlan
from tests.oracles import rel_err


def test_options_parse():
    p = argparse.ArgumentParser()
    B.add_arguments(p)
    args = p.parse_args(["--quick", "--skip-acceptance", "--no-save"])
    assert args.quick and args.skip_acceptance and args.no_save and args.repeat >= 5


def test_exact_toeplitz_generators(rng):
    """The rank-2 (Z_1, Z_-1) generators used against matmul_toeplitz are exact."""
    n = 11
    c, r = rng.standard_normal(n), rng.standard_normal(n)
    r[0] = c[0]
    G, H = B.toeplitz_generators(c, r)
    X = rng.standard_normal((n, 3))
    assert rel_err(ToeplitzPlan(G, H, 1.0, -1.0).matmat(X), sla.toeplitz(c, r) @ X) < 1e-13


def test_interleaved_medians():
    calls = []
    t = B._interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds


def test_every_family_case_runs(rng):
    for make in B.FAMILIES.values():
        _, fwd, tr, vjp = make(16, 2, np.float64, rng)
        X = rng.standard_normal((16, 3))
        assert fwd(X).shape == tr(X).shape == (16, 3)
        assert vjp(X, X) is not None
