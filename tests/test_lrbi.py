"""Low-rank binary indexing: Boolean product kernel, index-bit accounting, planted
recovery, the rate and magnitude contract of ``lrbi_mask``, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowdisp.nn import boolean_product, index_bits, lrbi_mask


def _dense_ref(P: np.ndarray, Z: np.ndarray) -> np.ndarray:
    return (P.astype(int) @ Z.astype(int)) > 0


@pytest.mark.parametrize(
    "m,k,n",
    [(1, 1, 1), (5, 3, 63), (7, 4, 64), (13, 5, 65), (40, 17, 130), (3, 2, 200), (4, 0, 5)],
)
def test_boolean_product_matches_dense_reference(rng, m, k, n):
    for density in (0.05, 0.3, 0.9):
        P = rng.random((m, k)) < density
        Z = rng.random((k, n)) < density
        out = boolean_product(P, Z)
        assert out.dtype == np.bool_ and out.shape == (m, n)
        np.testing.assert_array_equal(out, _dense_ref(P, Z))


def test_boolean_product_accepts_01_numbers():
    P = np.array([[1, 0], [0, 1]], dtype=np.int64)
    Z = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(boolean_product(P, Z), [[1, 0, 1], [0, 1, 1]])


@settings(max_examples=15)
@given(
    m=st.integers(1, 70),
    k=st.integers(1, 9),
    n=st.integers(1, 140),
    seed=st.integers(0, 2**31),
)
def test_boolean_product_property(m, k, n, seed):
    gen = np.random.default_rng(seed)
    P = gen.random((m, k)) < gen.random()
    Z = gen.random((k, n)) < gen.random()
    np.testing.assert_array_equal(boolean_product(P, Z), _dense_ref(P, Z))


def test_index_bits_three_tiles_by_hand():
    mask = np.zeros((6, 7), dtype=bool)
    mask[:3, :4] = True  # nnz = 12
    b = index_bits(mask, rank=1, tile=(6, 3))
    # tiles 6x3, 6x3, 6x1 (the last cut short)
    assert (b.n_tiles, b.nnz, b.dense) == (3, 12, 42)
    # CSR: 12 column indices of ceil(log2 7) = 3 bits + 7 row pointers of ceil(log2 13) = 4 bits
    assert b.csr == 12 * 3 + 7 * 4 == 64
    # LRBI: k (m_t + n_t) per tile = 9 + 9 + 7
    assert b.lrbi == 25
    assert b.csr_per_nonzero == pytest.approx(64 / 12)
    assert b.lrbi_per_nonzero == pytest.approx(25 / 12)
    assert b.dense_per_nonzero == pytest.approx(42 / 12)
    # rank 2: the 6x1 edge tile can only use k_t = 1
    assert index_bits(mask, rank=2, tile=(6, 3)).lrbi == 2 * 9 + 2 * 9 + 1 * 7
    assert index_bits(mask).lrbi is None
    assert index_bits(np.zeros((2, 2), dtype=bool)).csr == 0 * 1 + 3 * 1


def _planted(gen: np.random.Generator, m: int, n: int, k: int) -> np.ndarray:
    while True:
        M = boolean_product(gen.random((m, k)) < 0.3, gen.random((k, n)) < 0.3)
        if 0 < M.sum() < M.size:
            return M


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_planted_boolean_product_is_recovered_exactly(k):
    for seed in range(5):
        gen = np.random.default_rng([seed, k])
        M = _planted(gen, 30, 40, k)
        W = M * gen.uniform(1.0, 2.0, M.shape) * gen.choice([-1.0, 1.0], M.shape)
        W += (~M) * gen.uniform(-0.05, 0.05, M.shape)  # small weights off the planted mask
        res = lrbi_mask(W, sparsity=1 - M.sum() / M.size, rank=k)
        np.testing.assert_array_equal(res.mask, M)
        assert res.kept_magnitude == pytest.approx(res.magnitude_kept_magnitude)


def test_planted_mask_recovered_per_tile():
    gen = np.random.default_rng(7)
    M0 = _planted(gen, 16, 20, 3)
    M = np.tile(M0, (2, 3))  # six 16 x 20 tiles with the same pattern
    W = M * gen.uniform(1.0, 2.0, M.shape)
    res = lrbi_mask(W, sparsity=1 - M0.sum() / M0.size, rank=3, tile=(16, 20))
    np.testing.assert_array_equal(res.mask, M)
    assert len(res.tiles) == 6 and res.bits.lrbi == 6 * 3 * (16 + 20)


@pytest.mark.parametrize("refine", [True, False])
def test_lrbi_meets_rate_and_decodes(rng, refine):
    W = rng.standard_normal((37, 29))
    res = lrbi_mask(W, sparsity=0.7, rank=3, tile=(16, 16), refine=refine)
    np.testing.assert_array_equal(res.decode(), res.mask)
    for t in res.tiles:
        (r0, r1), (c0, c1) = t.rows, t.cols
        size = (r1 - r0) * (c1 - c0)
        assert res.mask[r0:r1, c0:c1].sum() <= size - round(0.7 * size)
        assert t.Ip.shape == (r1 - r0, min(3, r1 - r0, c1 - c0))
    assert res.sparsity >= 0.7
    assert 0 < res.kept_magnitude <= res.magnitude_kept_magnitude + 1e-12
    assert res.bits == index_bits(res.mask, rank=3, tile=(16, 16))


def test_refinement_never_keeps_less_magnitude(rng):
    W = rng.standard_normal((24, 30)) * np.outer(rng.random(24), rng.random(30))
    a = lrbi_mask(W, sparsity=0.8, rank=4, refine=False)
    b = lrbi_mask(W, sparsity=0.8, rank=4, refine=True)
    assert b.kept_magnitude >= a.kept_magnitude - 1e-12
    assert b.sparsity >= 0.8


def test_sparsity_zero_and_tiny_budget(rng):
    W = rng.standard_normal((10, 12))
    assert lrbi_mask(W, sparsity=0.0, rank=1).mask.all()
    res = lrbi_mask(W, sparsity=0.999, rank=2)
    assert res.mask.sum() == 0 and res.sparsity == 1.0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"rank": 0}, ValueError, r"lrbi_mask: rank must be in \[1, 8\]; got 0"),
        ({"rank": 9}, ValueError, r"lrbi_mask: rank must be in \[1, 8\]; got 9"),
        (
            {"rank": 2, "tile": (9, 4)},
            ValueError,
            r"lrbi_mask: tile must be at most the matrix shape \(8, 10\); got tile \(9, 4\)",
        ),
        ({"rank": 2, "tile": (0, 4)}, ValueError, r"lrbi_mask: tile\[0\] must be in"),
        ({"rank": 2, "tile": "big"}, TypeError, r"lrbi_mask: tile must be None, an int or a pair"),
        ({"rank": 2, "sparsity": 1.0}, ValueError, r"lrbi_mask: sparsity must be in \[0, 1\)"),
        ({"rank": 2, "sparsity": -0.1}, ValueError, r"lrbi_mask: sparsity must be in \[0, 1\)"),
        ({"rank": 2, "sparsity": "0.5"}, TypeError, r"lrbi_mask: sparsity must be a real number"),
        ({"rank": 2.0}, TypeError, r"lrbi_mask: rank must be an integer"),
        ({"rank": 2, "refine": "yes"}, TypeError, r"lrbi_mask: refine must be True or False"),
    ],
)
def test_lrbi_mask_bad_input(kwargs, exc, match):
    kw = {"sparsity": 0.5, **kwargs}
    with pytest.raises(exc, match=match):
        lrbi_mask(np.ones((8, 10)), **kw)


def test_lrbi_mask_bad_matrix():
    with pytest.raises(ValueError, match=r"lrbi_mask: W must have 2 dimension\(s\)"):
        lrbi_mask(np.ones(5), sparsity=0.5, rank=1)
    with pytest.raises(ValueError, match=r"lrbi_mask: W must be finite"):
        lrbi_mask(np.full((3, 3), np.nan), sparsity=0.5, rank=1)
    with pytest.raises(ValueError, match=r"lrbi_mask: W must be non-empty"):
        lrbi_mask(np.ones((0, 3)), sparsity=0.5, rank=1)


def test_boolean_product_and_index_bits_bad_input():
    with pytest.raises(ValueError, match=r"boolean_product: Ip is \(m, k\) and Iz is \(k, n\)"):
        boolean_product(np.ones((2, 3), bool), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"boolean_product: Iz must hold only 0 and 1; got"):
        boolean_product(np.ones((2, 2)), np.full((2, 2), 2))
    with pytest.raises(ValueError, match=r"boolean_product: Ip must be a 2-D binary matrix"):
        boolean_product(np.ones(3, bool), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match=r"index_bits: rank must be in \[1, 3\]; got 0"):
        index_bits(np.ones((3, 4), bool), rank=0)
    with pytest.raises(ValueError, match=r"index_bits: tile must be at most the matrix shape"):
        index_bits(np.ones((3, 4), bool), rank=1, tile=(4, 4))
