"""lowdisp.nn structured layers: forward against dense oracles built from the
definitions (tests/oracles.py), gradients against finite differences (float64),
initial output variance against Dense, parameter counts, spec round trips, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st

import lowdisp.nn as lnn
from lowdisp.testing import check_vjp
from tests import oracles

F64 = np.float64
RANKED = ("toeplitz_like", "hankel_like", "vandermonde_like", "cauchy_like", "subdiagonal")
RANKED += ("tridiagonal", "low_rank")
SHAPES = [(6, 6), (5, 11), (12, 5), (8, 3), (7, 7)]


def make(structure, ni, no, *, rank=2, dtype=F64, rng=1, perturb=True, **kw):
    kw = dict(kw)
    if structure in RANKED:
        kw["rank"] = min(rank, ni, no)
    layer = lnn.StructuredDense(ni, no, structure=structure, dtype=dtype, rng=rng, **kw)
    gen = np.random.default_rng(rng + 100)
    P = layer.params()
    if perturb:  # move the operators off their initial Z_0 and make b nonzero
        for k in ("A", "B", "A_corner", "B_corner"):
            if k in P:
                P[k][...] += 0.3 * gen.standard_normal(P[k].shape)
        if "b" in P:
            P["b"][...] = gen.standard_normal(P["b"].shape)
    return layer


# --------------------------------------------------------------------------- oracles


def _J(n):
    return np.eye(n)[::-1]


def block_oracle(structure, p, s):
    """One s x s block from its definition (no lowdisp.structured code)."""
    Z = oracles.fcirculant_dense
    if structure in ("toeplitz_like", "hankel_like"):
        G, H = p["G"], p["H"]
        if structure == "hankel_like":
            G = _J(s) @ G
        T = sum(Z(G[:, i], 1.0) @ Z(_J(s) @ H[:, i], -1.0) for i in range(G.shape[1])) / 2
        return _J(s) @ T if structure == "hankel_like" else T
    if structure == "vandermonde_like":
        V = np.vander(p["v"], s, increasing=True)
        G, H = p["G"], p["H"]
        return sum(np.diag(G[:, i]) @ V @ Z(H[:, i], 0.0).T for i in range(G.shape[1]))
    if structure == "cauchy_like":
        sn, tn = np.arange(s) + 0.5, np.arange(s, dtype=F64)
        return (p["G"] @ p["H"].T) / (sn[:, None] - tn[None, :])
    if structure == "subdiagonal":
        A, Bp = np.diag(p["A"], -1), np.diag(p["B"], -1)
        if "A_corner" in p:
            A[0, -1], Bp[0, -1] = p["A_corner"][0], p["B_corner"][0]
        return oracles.stein_solve(A, Bp.T, p["G"] @ p["H"].T)
    if structure == "tridiagonal":

        def tri(v, corner):
            T = np.diag(v[: s - 1], -1) + np.diag(v[s - 1 : 2 * s - 1]) + np.diag(v[2 * s - 1 :], 1)
            T[0, -1] += corner[0] if corner is not None else 0.0
            return T

        A, Bp = tri(p["A"], p.get("A_corner")), tri(p["B"], p.get("B_corner"))
        return oracles.krylov_sum(A, Bp, p["G"], p["H"])
    if structure == "circulant":
        return sla.circulant(p["c"])
    if structure == "toeplitz":
        return sla.toeplitz(p["c"], np.concatenate([p["c"][:1], p["r"]]))
    raise AssertionError(structure)


def dense_oracle(layer):
    P = {k: v for k, v in layer.params().items() if k != "b"}
    ni, no = layer.in_features, layer.out_features
    if layer.structure == "unconstrained":
        return P["W"]
    if layer.structure == "low_rank":
        return P["U"] @ P["V"].T
    s = min(ni, no)
    p, q = -(-no // s), -(-ni // s)
    W = np.zeros((p * s, q * s))
    for i in range(p):
        for j in range(q):
            blk = {k: (v[i, j] if layer.tiled else v) for k, v in P.items()}
            W[i * s : (i + 1) * s, j * s : (j + 1) * s] = block_oracle(layer.structure, blk, s)
    return W[:no, :ni]


def _vjp_fn(live, forward, backward):
    """(f, vjp, point) over {"x": input, **live} for check_vjp, where
    ``forward(x) -> (y, cache)`` and ``backward(cache, dy) -> (dx, grads)``."""

    def set_params(d):
        for k, v in d.items():
            if k in live:
                live[k][...] = v

    def f(d):
        set_params(d)
        return np.array(forward(d["x"])[0])

    def vjp(d, dy):
        set_params(d)
        _, cache = forward(d["x"])
        dx, grads = backward(cache, dy)
        return {**grads, "x": dx}

    return f, vjp, {k: v.copy() for k, v in live.items()}


def layer_fn(layer):
    """(f, vjp, point) over {"x": input, **params} for check_vjp."""
    return _vjp_fn(layer.params(), layer.forward, layer.backward)


CASES = [(st, ni, no) for st in lnn.STRUCTURES for ni, no in SHAPES]
IDS = [f"{st}-{ni}x{no}" for st, ni, no in CASES]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("structure,ni,no", CASES, ids=IDS)
def test_forward_equals_the_dense_product_of_the_definition(structure, ni, no):
    layer = make(structure, ni, no)
    x = np.random.default_rng(0).standard_normal((4, ni))
    y, _ = layer.forward(x)
    M = dense_oracle(layer)
    want = x @ M.T + layer.params()["b"]
    assert y.shape == (4, no) and y.dtype == F64
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))
    np.testing.assert_allclose(layer.weight_matrix(), M, rtol=0, atol=1e-12 * np.abs(M).max())


@pytest.mark.parametrize("structure", ["subdiagonal", "tridiagonal"])
def test_learned_corners_forward(structure):
    layer = make(structure, 7, 7, corners=True)
    P = layer.params()
    P["A_corner"][...], P["B_corner"][...] = 0.4, -0.7
    x = np.random.default_rng(0).standard_normal((3, 7))
    M = dense_oracle(layer)
    np.testing.assert_allclose(layer.forward(x)[0], x @ M.T + P["b"], rtol=0, atol=1e-12)


def test_leading_axes_and_empty_batches():
    layer = make("toeplitz_like", 6, 6)
    x = np.random.default_rng(0).standard_normal((2, 3, 6))
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y[1, 2], layer.forward(x[1, 2:3])[0][0], atol=1e-13)
    dx, grads = layer.backward(cache, np.ones_like(y))
    assert dx.shape == x.shape and grads["G"].shape == (6, 2)
    y0, c0 = layer.forward(np.zeros((0, 6)))
    dx0, g0 = layer.backward(c0, np.zeros((0, 6)))
    assert y0.shape == (0, 6) and dx0.shape == (0, 6) and not g0["G"].any()


@pytest.mark.parametrize("structure", list(lnn.STRUCTURES))
def test_float32_layers_compute_in_float32(structure):
    l32 = make(structure, 16, 16, dtype=np.float32)
    l64 = make(structure, 16, 16, dtype=F64)
    for k, v in l64.params().items():
        v[...] = l32.params()[k]
    x = np.random.default_rng(0).standard_normal((5, 16))
    y32, c = l32.forward(x)
    dx, grads = l32.backward(c, np.ones_like(y32))
    assert y32.dtype == np.float32 and dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    y64 = l64.forward(x)[0]
    assert np.abs(y32 - y64).max() <= 1e-4 * np.abs(y64).max()


@given(
    structure=st.sampled_from(sorted(lnn.STRUCTURES)),
    ni=st.integers(2, 12),
    no=st.integers(2, 12),
    rank=st.integers(1, 3),
    batch=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_forward_equals_the_definition_for_drawn_structures(structure, ni, no, rank, batch, seed):
    layer = make(structure, ni, no, rank=rank, rng=seed)
    x = np.random.default_rng(seed).standard_normal((batch, ni))
    M = dense_oracle(layer)
    want = x @ M.T + layer.params()["b"]
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-11 * max(1.0, np.abs(want).max(initial=0)))
    dx, _ = layer.backward(cache, np.ones_like(y))
    np.testing.assert_allclose(
        dx, np.ones_like(y) @ M, rtol=0, atol=1e-11 * max(1.0, np.abs(M).sum())
    )


CONTRACT = [
    lambda dt: lnn.StructuredDense(4, 4, structure="subdiagonal", corners=True, dtype=dt, rng=0),
    lambda dt: lnn.StructuredDense(4, 9, structure="tridiagonal", corners=True, dtype=dt, rng=0),
    lambda dt: lnn.StructuredDense(4, 4, structure="vandermonde_like", dtype=dt, rng=0),
    lambda dt: lnn.DiagonalCirculant(4, depth=2, relu_every=1, dtype=dt, rng=0),
    lambda dt: lnn.Fastfood(4, dtype=dt, rng=0),
]
CONTRACT_IDS = ["sd-corners", "td-tiled", "vandermonde", "diagonal_circulant", "fastfood"]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize("make_layer", CONTRACT, ids=CONTRACT_IDS)
def test_input_contract(make_layer):
    layer = make_layer(np.float32)
    name = type(layer).__name__
    y_ref, _ = layer.forward(np.ones((2, 4)))
    y, _ = layer.forward(np.asmatrix(np.ones((2, 4))))
    assert type(y) is np.ndarray and y.dtype == np.float32
    np.testing.assert_array_equal(y, y_ref)
    assert layer.forward(np.ones((2, 4), dtype=np.int64))[0].dtype == np.float32
    with pytest.raises(ValueError, match=f"{name}: .*masked array"):
        layer.forward(np.ma.masked_array(np.ones((2, 4)), mask=np.zeros((2, 4), bool)))
    with pytest.raises(ValueError, match=f"{name}: x must be finite"):
        layer.forward(np.full((2, 4), np.nan))
    with pytest.raises(TypeError, match=f"{name}: x must hold real numbers"):
        layer.forward(np.ones((2, 4), dtype=complex))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make_layer", CONTRACT, ids=CONTRACT_IDS)
def test_empty_batch(make_layer, dtype):
    layer = make_layer(dtype)
    y, cache = layer.forward(np.zeros((0, 4)))
    assert y.shape == (0, layer.out_features) and y.dtype == dtype
    dx, grads = layer.backward(cache, np.zeros(y.shape, dtype))
    assert dx.shape == (0, 4) and dx.dtype == dtype
    P = layer.params()
    assert sorted(grads) == sorted(P)
    for k, g in grads.items():
        assert g.shape == P[k].shape and g.dtype == dtype and not g.any(), k


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("structure,ni,no", CASES, ids=IDS)
def test_vjp_of_input_and_every_parameter(structure, ni, no):
    layer = make(structure, ni, no)
    f, vjp, point = layer_fn(layer)
    point["x"] = np.random.default_rng(2).standard_normal((4, ni))
    check_vjp(f, vjp, point, rng=0, rtol=1e-7)


@pytest.mark.parametrize("structure", ["subdiagonal", "tridiagonal"])
@pytest.mark.parametrize("name", ["x", "G", "H", "A", "B", "A_corner", "B_corner", "b"])
def test_vjp_of_learned_operators_and_corners_one_by_one(name, structure):
    layer = make(structure, 7, 7, corners=True)
    P = layer.params()
    P["A_corner"][...], P["B_corner"][...] = 0.4, -0.7
    f, vjp, point = layer_fn(layer)
    point["x"] = np.random.default_rng(2).standard_normal((3, 7))
    rest = {k: v for k, v in point.items() if k != name}
    check_vjp(
        lambda v: f({**rest, name: v}), lambda v, dy: vjp({**rest, name: v}, dy)[name],
        point[name], rng=0, rtol=1e-7,
    )  # fmt: skip


def test_tiled_layers_with_corners():
    for structure in ("subdiagonal", "tridiagonal"):
        layer = make(structure, 5, 11, corners=True)
        assert layer.params()["A_corner"].shape == (3, 1, 1)
        layer.params()["A_corner"][...] = [[[0.3]], [[-0.2]], [[0.5]]]
        x = np.random.default_rng(0).standard_normal((3, 5))
        M = dense_oracle(layer)
        np.testing.assert_allclose(layer.forward(x)[0], x @ M.T + layer.params()["b"], atol=1e-12)
        f, vjp, point = layer_fn(layer)
        point["x"] = x
        check_vjp(f, vjp, point, rng=0, rtol=1e-7)


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("shape", [(16, 16), (12, 20)], ids=["square", "tiled"])
@pytest.mark.parametrize("structure", list(lnn.STRUCTURES))
def test_initial_output_variance_matches_dense(structure, shape):
    """Mean output variance for unit-variance inputs, E‖M‖²/out, over 1500 draws,
    within 4% of Dense's in · 2/(in + out) (Monte-Carlo std of the mean <= 1%)."""
    ni, no = shape
    want = ni * 2.0 / (ni + no)
    got = []
    for seed in range(1500):
        layer = make(structure, ni, no, rng=seed, perturb=False)
        got.append((layer.weight_matrix() ** 2).sum() / no)
    assert abs(np.mean(got) / want - 1) < 0.04
    dense = [
        (lnn.Dense(ni, no, rng=s).params()["W"].astype(F64) ** 2).sum() / no for s in range(200)
    ]
    assert abs(np.mean(dense) / want - 1) < 0.01


def test_initial_operators_are_the_paper_ones():
    sd = lnn.StructuredDense(5, 5, structure="subdiagonal", corners=True, rng=0).params()
    assert (sd["A"] == 1).all() and (sd["B"] == 1).all() and sd["A_corner"][0] == 0
    td = lnn.StructuredDense(5, 5, structure="tridiagonal", rng=0).params()
    np.testing.assert_array_equal(td["A"], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    "structure,rank,count",
    [
        ("toeplitz_like", 4, 2 * 4 * 784),
        ("hankel_like", 4, 2 * 4 * 784),
        ("vandermonde_like", 4, 2 * 4 * 784 + 784),
        ("cauchy_like", 4, 2 * 4 * 784),
        ("subdiagonal", 1, 2 * 784 + 2 * 783),
        ("tridiagonal", 1, 2 * 784 + 2 * (3 * 784 - 2)),
        ("circulant", None, 784),
        ("toeplitz", None, 2 * 784 - 1),
        ("low_rank", 4, 2 * 4 * 784),
        ("unconstrained", None, 784 * 784),
    ],
)
def test_parameter_counts_match_the_paper(structure, rank, count):
    layer = lnn.StructuredDense(784, 784, structure=structure, rank=rank, bias=False, rng=0)
    assert lnn.count_params(layer) == layer.n_weights == count
    assert lnn.compression_ratio(layer) == 784 * 784 / count
    with_bias = lnn.StructuredDense(784, 784, structure=structure, rank=rank, rng=0)
    assert lnn.count_params(with_bias) == count + 784


def test_counts_of_tiled_layers_and_models():
    layer = lnn.StructuredDense(10, 25, structure="toeplitz_like", rank=2, rng=0)
    assert layer.params()["G"].shape == (3, 1, 10, 2)  # 3 x 1 blocks of 10 x 10
    assert layer.n_weights == 3 * 2 * 2 * 10
    sd = lnn.StructuredDense(10, 25, structure="subdiagonal", corners=True, rng=0)
    assert sd.n_weights == 3 * (2 * 10 + 2 * 9 + 2)
    td = lnn.StructuredDense(784, 784, structure="tridiagonal", corners=True, rng=0)
    assert td.n_weights == 2 * 784 + 2 * (3 * 784 - 2) + 2
    net = lnn.Sequential([layer, lnn.ReLU(), lnn.Dense(25, 3, rng=0)])
    assert lnn.count_params(net) == 120 + 25 + 25 * 3 + 3
    assert lnn.compression_ratio(lnn.Dense(3, 4)) == 1.0


# --------------------------------------------------------------------------- specs


def test_spec_round_trip_and_bit_for_bit_resume(tmp_path):
    def trainer(checkpoint=None):
        model = lnn.Sequential(
            {
                "sd": lnn.StructuredDense(64, 64, structure="subdiagonal", corners=True,
                                          dtype=F64, rng=1),
                "act": lnn.ReLU(dtype=F64),
                "tl": lnn.StructuredDense(64, 32, structure="toeplitz_like", rank=2,
                                          dtype=F64, rng=2),
                "out": lnn.Dense(32, 10, dtype=F64, rng=3),
            }
        )  # fmt: skip
        task = lnn.digits(flat=True)
        opt = lnn.SGD(lr=1e-2, momentum=0.9, groups={"*.A*": {"lr": 1e-3}, "*.B*": {"lr": 1e-3}})
        return lnn.Trainer(
            model, task.loss(), opt, task, batch_size=16, rng=5, checkpoint=checkpoint
        )

    a = trainer()
    a.fit(30, progress=False)
    b = trainer(tmp_path / "ck.npz")
    b.fit(10, progress=False)
    cfg = b.spec["model"]["layers"]["sd"]
    assert cfg["class"] == "StructuredDense" and cfg["corners"] is True
    del b
    c = lnn.load(tmp_path / "ck.npz")
    c.fit(20, progress=False)
    pa, pc = a.model.params(), c.model.params()
    assert sorted(pa) == sorted(pc)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pc[k])
    assert a.history.loss == c.history.loss


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kw,err,match",
    [
        ({"structure": "toeplitzlike"}, ValueError, "unknown structure 'toeplitzlike'; valid: "
         "'toeplitz_like', 'hankel_like'"),
        ({"structure": 3}, TypeError, "structure must be a name"),
        ({"structure": "toeplitz_like", "rank": 0}, ValueError, r"rank must be in \[1, "),
        ({"structure": "toeplitz_like", "rank": 9}, ValueError, r"rank must be in \[1, 8\]"),
        ({"structure": "low_rank", "rank": 9}, ValueError, r"rank must be in \[1, 8\]"),
        ({"structure": "toeplitz_like", "rank": 1.5}, TypeError, "rank must be an integer"),
        ({"structure": "circulant", "rank": 2}, ValueError, "structure=.circulant. has no rank"),
        ({"structure": "toeplitz_like", "corners": True}, ValueError, "corners=True is only for"),
        ({"structure": "subdiagonal", "corners": 1}, TypeError, "corners must be True or False"),
        ({"structure": "toeplitz_like", "dtype": np.int32}, TypeError, "dtype must be float32"),
    ],
)  # fmt: skip
def test_bad_arguments(kw, err, match):
    with pytest.raises(err, match="StructuredDense: " + match):
        lnn.StructuredDense(8, 12, **kw)


def test_bad_sizes():
    with pytest.raises(ValueError, match="StructuredDense: in_features must be in"):
        lnn.StructuredDense(0, 4)
    with pytest.raises(ValueError, match="needs blocks of size"):
        lnn.StructuredDense(1, 4, structure="subdiagonal")
    layer = lnn.StructuredDense(8, 8, rng=0)
    with pytest.raises(ValueError, match="StructuredDense: x must have 8 features"):
        layer.forward(np.ones((2, 7)))
    _, cache = layer.forward(np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"StructuredDense.backward: dy must have the shape"):
        layer.backward(cache, np.ones((2, 7)))
    with pytest.raises(TypeError, match="count_params: model must be"):
        lnn.count_params(3)
    with pytest.raises(TypeError, match="compression_ratio: layer must be"):
        lnn.compression_ratio(lnn.ReLU())


# ----------------------------------------------------------- DiagonalCirculant, Fastfood

OTHER = [
    lambda: lnn.DiagonalCirculant(8, depth=3, relu_every=2, dtype=F64, rng=1),
    lambda: lnn.DiagonalCirculant(7, depth=1, init="gaussian", dtype=F64, rng=1),
    lambda: lnn.DiagonalCirculant(6, depth=4, relu_every=1, bias=False, dtype=F64, rng=1),
    lambda: lnn.Fastfood(8, dtype=F64, rng=1),
    lambda: lnn.Fastfood(5, dtype=F64, rng=1),
    lambda: lnn.Fastfood(1, dtype=F64, rng=1),
]
OTHER_IDS = ["dc-relu2", "dc-depth1", "dc-relu1-nobias", "ff-8", "ff-5-padded", "ff-1"]


@pytest.mark.parametrize("make_layer", OTHER, ids=OTHER_IDS)
def test_vjp_of_diagonal_circulant_and_fastfood(make_layer):
    layer = make_layer()
    if "b" in layer.params():
        layer.params()["b"][...] = np.random.default_rng(3).standard_normal(
            layer.params()["b"].shape
        )
    f, vjp, point = layer_fn(layer)
    point["x"] = np.random.default_rng(2).standard_normal((4, layer.n))
    check_vjp(f, vjp, point, rng=0, rtol=1e-7)


def test_diagonal_circulant_equals_its_product_of_factors():
    layer = lnn.DiagonalCirculant(8, depth=3, dtype=F64, rng=1, init="gaussian")
    P = layer.params()
    P["b"][...] = np.random.default_rng(0).standard_normal((3, 8))
    x = np.random.default_rng(1).standard_normal((5, 8))
    h = x.T
    for k in range(3):
        h = np.diag(P["d"][k]) @ sla.circulant(P["c"][k]) @ h + P["b"][k][:, None]
    np.testing.assert_allclose(layer.forward(x)[0], h.T, rtol=0, atol=1e-12)
    relu = lnn.DiagonalCirculant(8, depth=3, relu_every=1, dtype=F64, rng=1)
    y = relu.forward(x)[0]
    h = x.T
    for k in range(3):
        h = np.diag(relu.params()["d"][k]) @ sla.circulant(relu.params()["c"][k]) @ h
        h = np.maximum(h, 0) if k < 2 else h  # no ReLU after the last factor
    np.testing.assert_allclose(y, h.T, rtol=0, atol=1e-12)
    assert layer.n_weights == 48 and lnn.count_params(layer) == 72
    assert lnn.compression_ratio(layer) == 64 / 48


def test_diagonal_circulant_identity_init_is_near_a_signed_identity():
    layer = lnn.DiagonalCirculant(32, depth=6, dtype=F64, rng=0)
    M = layer.weight_matrix()
    D = np.diag(np.prod(layer.params()["d"], axis=0))
    assert np.abs(M - D).max() < 0.1


def test_fastfood_equals_s_h_g_pi_h_b():
    layer = lnn.Fastfood(6, dtype=F64, rng=1)
    P = layer.params()
    P["b"][...] = np.arange(6.0)
    m = 8
    H = sla.hadamard(m) / np.sqrt(m)
    Pi = np.eye(m)[layer.perm]
    V = np.diag(P["S"]) @ H @ np.diag(P["G"]) @ Pi @ H @ np.diag(P["B"])
    x = np.random.default_rng(0).standard_normal((3, 6))
    np.testing.assert_allclose(layer.forward(x)[0], x @ V[:6, :6].T + P["b"], atol=1e-12)
    assert layer.n_weights == 24 and lnn.compression_ratio(layer) == 36 / 24


def test_fastfood_and_gaussian_diagonal_circulant_match_dense_output_variance():
    n = 64
    ff = [(lnn.Fastfood(n, rng=s, dtype=F64).weight_matrix() ** 2).sum() / n for s in range(2000)]
    assert abs(np.mean(ff) - 1) < 0.03  # Dense: n * 2/(n + n) = 1; MC std of the mean ~ 0.007
    dc = [
        (lnn.DiagonalCirculant(n, depth=1, init="gaussian", rng=s, dtype=F64).weight_matrix() ** 2)
        .sum() / n
        for s in range(1000)
    ]  # fmt: skip
    assert abs(np.mean(dc) - 1) < 0.03


def test_specs_of_diagonal_circulant_and_fastfood_round_trip(tmp_path):
    def trainer(checkpoint=None):
        model = lnn.Sequential(
            [
                lnn.DiagonalCirculant(64, depth=2, relu_every=1, dtype=F64, rng=1),
                lnn.Fastfood(64, dtype=F64, rng=2),
                lnn.ReLU(dtype=F64),
                lnn.Dense(64, 10, dtype=F64, rng=3),
            ]
        )
        task = lnn.digits(flat=True)
        return lnn.Trainer(
            model, task.loss(), lnn.Adam(lr=1e-3), task, batch_size=16, rng=5,
            checkpoint=checkpoint,
        )  # fmt: skip

    a = trainer()
    a.fit(20, progress=False)
    b = trainer(tmp_path / "ck.npz")
    b.fit(10, progress=False)
    assert b.spec["model"]["layers"]["1"]["perm_seed"] == b.model["1"].perm_seed
    del b
    c = lnn.load(tmp_path / "ck.npz")
    c.fit(10, progress=False)
    for k, v in a.model.params().items():
        np.testing.assert_array_equal(v, c.model.params()[k])


@pytest.mark.parametrize(
    "make_layer,err,match",
    [
        (lambda: lnn.DiagonalCirculant(8, depth=0), ValueError,
         r"DiagonalCirculant: depth must be in \[1, inf\]; got 0"),
        (lambda: lnn.DiagonalCirculant(8), TypeError, "depth"),
        (lambda: lnn.DiagonalCirculant(0, depth=1), ValueError, r"DiagonalCirculant: n must be in"),
        (lambda: lnn.DiagonalCirculant(8, depth=2, relu_every=-1), ValueError, "relu_every"),
        (lambda: lnn.DiagonalCirculant(8, depth=2, init="he"), ValueError,
         "DiagonalCirculant: unknown init 'he'; valid: 'identity', 'gaussian'"),
        (lambda: lnn.Fastfood(0), ValueError, r"Fastfood: n must be in \[1, inf\]"),
        (lambda: lnn.Fastfood(4, perm_seed=-1), ValueError, "Fastfood: perm_seed"),
        (lambda: lnn.DiagonalCirculant(4, depth=1).forward(np.ones((2, 5))), ValueError,
         "DiagonalCirculant: x must have 4 features"),
        (lambda: lnn.Fastfood(4).forward(np.ones((2, 5))), ValueError,
         "Fastfood: x must have 4 features"),
    ],
)  # fmt: skip
def test_bad_input_of_diagonal_circulant_and_fastfood(make_layer, err, match):
    with pytest.raises(err, match=match):
        make_layer()


# ------------------------------------------------------------- structured recurrent maps

RECURRENT = ["toeplitz_like:2", "hankel_like", "subdiagonal", "tridiagonal", "circulant"]
RECURRENT += ["toeplitz", "low_rank:3", "cauchy_like:2"]


def cell_fn(cell):
    """(f, vjp, point) over {"x": sequence, **params} for check_vjp."""
    return _vjp_fn(cell.params(), cell.forward_sequence, cell.backward_sequence)


@pytest.mark.parametrize("cell_name", ["tanh", "lstm"])
@pytest.mark.parametrize("recurrent", RECURRENT)
def test_structured_recurrent_matrix_forward_and_vjp(recurrent, cell_name):
    cell = lnn.make_cell(cell_name, 3, 6, recurrent=recurrent, dtype=F64, rng=0)
    P = cell.params()
    for k in ("W.A", "W.B", "W_h.A", "W_h.B"):
        if k in P:
            P[k][...] += 0.3 * np.random.default_rng(1).standard_normal(P[k].shape)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    # forward against the dense definition: the same cell with W (W_h) = the structured matrix
    name, _, rank = recurrent.partition(":")
    kw = {"rank": int(rank)} if rank else {}
    if cell_name == "tanh":
        W = cell.recurrent_matrix()
        layer = lnn.StructuredDense(6, 6, structure=name, dtype=F64, bias=False, **kw)
        for k, v in P.items():
            if k.startswith("W."):
                layer.params()[k[2:]][...] = v
        np.testing.assert_allclose(W, layer.weight_matrix(), rtol=0, atol=1e-14)
        want = oracles.rnn_forward_naive(W, P["U"], P["b"], x)
    else:
        layer = lnn.StructuredDense(6, 24, structure=name, dtype=F64, bias=False, **kw)
        for k, v in P.items():
            if k.startswith("W_h."):
                layer.params()[k[4:]][...] = v
        Wh = dense_oracle(layer)
        want = oracles.lstm_forward_naive(P["W_x"], Wh, P["b"], x)
    H, _ = cell.forward_sequence(x)
    np.testing.assert_allclose(H, want, rtol=0, atol=1e-12)
    f, vjp, point = cell_fn(cell)
    point["x"] = x
    check_vjp(f, vjp, point, rng=0, rtol=1e-7)


def test_structured_recurrent_configs_round_trip_and_resume(tmp_path):
    task = lnn.copy_memory(5)

    def trainer(checkpoint=None):
        return lnn.make_trainer(
            task, "lstm", hidden=16, batch_size=4, rng=3, dtype=F64, checkpoint=checkpoint,
            cell_options={"recurrent": "subdiagonal", "recurrent_options": {"corners": True}},
        )  # fmt: skip

    a = trainer()
    a.fit(12, progress=False)
    b = trainer(tmp_path / "ck.npz")
    b.fit(4, progress=False)
    cfg = b.spec["model"]["layers"]["rnn"]["cell"]
    assert cfg["recurrent"] == "subdiagonal"
    assert cfg["recurrent_options"] == {"rank": 1, "corners": True}
    del b
    c = lnn.load(tmp_path / "ck.npz")
    c.fit(8, progress=False)
    for k, v in a.model.params().items():
        np.testing.assert_array_equal(v, c.model.params()[k])
    cell = lnn.TanhRNNCell(2, 8, recurrent="toeplitz_like:3", rng=0)
    assert cell.get_config()["recurrent_options"] == {"rank": 3, "corners": False}
    assert cell.activation == "tanh" and cell.params()["W.G"].shape == (8, 3)


def test_a_structured_dense_object_as_the_recurrent_matrix():
    layer = lnn.StructuredDense(8, 8, structure="circulant", dtype=F64, rng=4)
    cell = lnn.TanhRNNCell(2, 8, recurrent=layer, dtype=F64, rng=0)
    np.testing.assert_array_equal(cell.params()["W.c"], layer.params()["c"])
    np.testing.assert_allclose(cell.recurrent_matrix(), layer.weight_matrix(), atol=1e-15)
    assert cell.get_config()["recurrent"] == "circulant"


def test_structured_recurrent_init_matches_the_dense_entry_variance():
    n = 16
    got = [
        (lnn.TanhRNNCell(2, n, recurrent="toeplitz_like:2", dtype=F64, rng=s)
         .recurrent_matrix() ** 2).mean()
        for s in range(1500)
    ]  # fmt: skip
    assert abs(np.mean(got) * 3 * n - 1) < 0.04  # torch's U(±1/√n): variance 1/(3n)


@pytest.mark.parametrize(
    "kw,err,match",
    [
        ({"recurrent": "toeplitz:2"}, ValueError, "structure='toeplitz' has no rank"),
        ({"recurrent": "toeplitz_like:x"}, ValueError, "the rank after ':' must be an integer"),
        ({"recurrent": "toeplitz_like:9"}, ValueError, r"rank must be in \[1, 8\]"),
        ({"recurrent": "circulent:2"}, ValueError, "unknown structured recurrent 'circulent:2'"),
        ({"recurrent": "toeplitz_like", "recurrent_options": {"n_neg": 2}}, TypeError,
         "takes recurrent_options 'rank' and 'corners' only"),
        ({"recurrent": "toeplitz_like:2", "recurrent_options": {"rank": 3}}, ValueError,
         "disagree"),
        ({"recurrent": "circulant", "recurrent_init": "henaff"}, ValueError,
         "recurrent_init applies to dense and orthogonal"),
    ],
)  # fmt: skip
def test_bad_structured_recurrent(kw, err, match):
    with pytest.raises(err, match="TanhRNNCell: .*" + match):
        lnn.TanhRNNCell(2, 8, **kw)


def test_bad_structured_lstm_recurrent():
    with pytest.raises(ValueError, match="LSTMCell: unknown recurrent 'nope'; valid: 'dense' or"):
        lnn.LSTMCell(2, 8, recurrent="nope")
    with pytest.raises(TypeError, match="LSTMCell: recurrent='dense' takes no recurrent_options"):
        lnn.LSTMCell(2, 8, recurrent_options={"rank": 2})
    with pytest.raises(TypeError, match="LSTMCell: W_h is 4n x n"):
        lnn.LSTMCell(2, 8, recurrent=lnn.StructuredDense(8, 8, rng=0))


@pytest.mark.parametrize("make_layer", CONTRACT, ids=CONTRACT_IDS)
def test_a_wrong_size_inside_a_sequential_is_an_error_not_a_reshape(make_layer):
    layer = make_layer(np.float64)
    net = lnn.Sequential([lnn.Dense(3, 6, dtype=np.float64, rng=0), layer])  # 6 != 4
    name = type(layer).__name__
    with pytest.raises(ValueError, match=f"{name}: x must have 4 features on its last axis"):
        net.forward(np.ones((2, 3)))  # (2, 6) would reshape into three rows of 4


@pytest.mark.parametrize("structure", sorted(lnn.STRUCTURES))
def test_weight_matrices_protocol(structure):
    layer = make(structure, 6, 6)
    net = lnn.Sequential({"h": layer, "act": lnn.ReLU(dtype=F64), "o": lnn.Dense(6, 2, dtype=F64)})
    W = lnn.weight_matrices(net)
    assert list(W) == ["h.W", "o.W"]  # the matrix, not its generators
    M = W["h.W"].toarray() if hasattr(W["h.W"], "toarray") else W["h.W"]
    np.testing.assert_allclose(M, dense_oracle(layer), rtol=0, atol=1e-12)


def test_weight_matrices_of_other_layers_and_structured_cells():
    dc = lnn.DiagonalCirculant(4, depth=2, relu_every=1, dtype=F64, rng=0)
    assert sorted(dc.weight_matrices()) == ["W0", "W1"]
    np.testing.assert_allclose(
        dc.weight_matrices()["W1"] @ dc.weight_matrices()["W0"],
        lnn.DiagonalCirculant(4, depth=2, dtype=F64, rng=0).weight_matrix(),
        atol=1e-14,
    )
    ff = lnn.Fastfood(4, dtype=F64, rng=0)
    np.testing.assert_array_equal(ff.weight_matrices()["W"], ff.weight_matrix())
    task = lnn.copy_memory(5)
    rnn = lnn.build_model(task, "tanh", hidden=8, rng=0, recurrent="toeplitz_like:2")
    assert list(lnn.weight_matrices(rnn)) == ["rnn.cell.W", "rnn.cell.U", "readout.W"]
    lstm = lnn.build_model(task, "lstm", hidden=8, rng=0, recurrent="circulant")
    W = lnn.weight_matrices(lstm)
    assert sorted(W) == ["readout.W", "rnn.cell.W_h", "rnn.cell.W_x"]
    np.testing.assert_array_equal(lnn.recurrent_matrix(lstm), W["rnn.cell.W_h"])
    assert W["rnn.cell.W_h"].shape == (32, 8)


@pytest.mark.slow
@pytest.mark.parametrize(
    "structure", ["toeplitz_like", "hankel_like", "subdiagonal", "tridiagonal", "cauchy_like"]
)
def test_vjp_at_a_larger_size(structure):
    """n = 160 (x 90, tiled): the engines' larger-size code paths."""
    layer = make(structure, 160, 90, rank=3, corners=structure in ("subdiagonal", "tridiagonal"))
    P = layer.params()
    for k in ("A", "B"):
        if k in P:  # operators near Z_0: products of 90 subdiagonal entries stay representable
            P[k][...] = np.where(P[k] != 0, 1.0, 0.0) + 0.02 * np.random.default_rng(
                5
            ).standard_normal(P[k].shape)
    f, vjp, point = layer_fn(layer)
    point["x"] = np.random.default_rng(2).standard_normal((7, 160))
    check_vjp(f, vjp, point, rng=0, rtol=1e-7)
    x = point["x"]
    want = x @ dense_oracle(layer).T + P["b"]
    np.testing.assert_allclose(layer.forward(x)[0], want, rtol=0, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("m", [1, 2, 64, 256, 512, 2048])
def test_fwht_is_the_orthonormal_sylvester_hadamard_transform(m):
    from lowdisp.nn._fastfood import fwht

    x = np.random.default_rng(m).standard_normal((3, m))
    np.testing.assert_allclose(fwht(x), x @ sla.hadamard(m).T / np.sqrt(m), rtol=0, atol=1e-13)
    np.testing.assert_allclose(fwht(fwht(x)), x, rtol=0, atol=1e-13)
    assert fwht(x.astype(np.float32)).dtype == np.float32


def test_fastfood_on_the_kronecker_path():
    layer = lnn.Fastfood(300, dtype=F64, rng=1)  # m = 512: H_512 = H_16 ⊗ H_32
    assert layer.m == 512
    f, vjp, point = layer_fn(layer)
    point["x"] = np.random.default_rng(2).standard_normal((3, 300))
    check_vjp(f, vjp, point, rng=0, rtol=1e-7)
    P, m = layer.params(), 512
    H = sla.hadamard(m) / np.sqrt(m)
    V = np.diag(P["S"]) @ H @ np.diag(P["G"]) @ np.eye(m)[layer.perm] @ H @ np.diag(P["B"])
    x = point["x"]
    np.testing.assert_allclose(layer.forward(x)[0], x @ V[:300, :300].T + P["b"], atol=1e-12)
