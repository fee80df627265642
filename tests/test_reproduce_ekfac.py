"""``lowdisp reproduce ekfac``: the quick run writes its files with the stated columns
and finite numbers; its Frobenius table matches a dense float64 oracle written out
layer by layer here; the per-image loss, the target-loss interpolation, the grid
choice and the claim verdicts are checked on small cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lowdisp.cli import main
from lowdisp.nn import _repro_ekfac as R
from tests.reproduce_common import read_csv

pytest.importorskip("sklearn")  # the quick problems run on scikit-learn's digits


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("ekfac") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KFAC's report of the activation layers
        code = main(["reproduce", "ekfac", "--quick", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.slow
def test_quick_writes_every_file(quick):
    for name in R.OUT_FILES:
        assert (quick / name).is_file(), name
    assert (quick / "loss_curves.png").stat().st_size > 10_000
    text = (quick / "summary.md").read_text()
    for claim in R.CLAIMS.values():
        assert claim in text
    assert "load average" in text


@pytest.mark.slow
def test_quick_table_columns_and_finite_numbers(quick):
    header, rows = read_csv(quick / "table.csv")
    assert tuple(header) == R.TABLE_COLUMNS
    s = R.settings(quick=True)
    assert [(r["problem"], r["optimizer"]) for r in rows] == [
        (p.name, o) for p in s.problems for o in R.OPTIMIZERS
    ]
    for r in rows:
        assert int(r["seeds"]) + int(r["diverged"]) == s.seeds
        if int(r["seeds"]):
            for key in ("train_loss_mean", "test_loss_mean", "cpu_s_per_epoch", "epochs"):
                assert math.isfinite(float(r[key])) and float(r[key]) > 0, (r, key)
            assert float(r["lr"]) in s.grids[r["problem"]][r["optimizer"]]
            tried = len(s.grids[r["problem"]][r["optimizer"]])
            if r["optimizer"] in ("kfac", "ekfac"):
                assert float(r["damping"]) in s.dampings[r["problem"]]
                tried *= len(s.dampings[r["problem"]])
            assert len(r["grid"].split()) == tried
        if r["problem"] == "classifier" and int(r["seeds"]):
            assert 0 < float(r["test_accuracy_mean"]) <= 100
    # every final run reaches the common target (it is the highest of the runs' lowest losses)
    for r in rows:
        assert int(r["reached_target"]) == int(r["seeds"])


@pytest.mark.slow
def test_quick_results_and_curves(quick):
    header, runs = read_csv(quick / "results.csv")
    assert tuple(header) == R.RESULT_COLUMNS
    header, curve = read_csv(quick / "curves.csv")
    assert tuple(header) == R.CURVE_COLUMNS
    s = R.settings(quick=True)
    finals = [r for r in runs if r["phase"] == "final"]
    assert len(finals) == len(s.problems) * len(R.OPTIMIZERS) * s.seeds
    budget = {p.name: p.budget for p in s.problems}
    for r in finals:
        if r["status"] == "ok":
            # stopped by the CPU budget, within a few steps of it
            assert float(r["cpu_seconds"]) >= budget[r["problem"]] * 0.9, r
            assert float(r["cpu_seconds"]) < budget[r["problem"]] * 2 + 1.0, r
    for q in curve:
        assert math.isfinite(float(q["train_loss"]))


@pytest.mark.slow
def test_quick_frobenius_ekfac_never_farther(quick):
    header, rows = read_csv(quick / "frobenius.csv")
    assert tuple(header) == R.FROBENIUS_COLUMNS
    assert rows
    for r in rows:
        assert float(r["ekfac_distance"]) <= float(r["kfac_distance"]) * (1 + 1e-10) + 1e-12
        assert r["ekfac_le_kfac"] == "True"


@pytest.mark.slow
def test_an_existing_run_is_refused(quick, capsys):
    code = main(["reproduce", "ekfac", "--quick", "--out", str(quick)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: ") and "--force" in err


def test_families_do_not_apply(tmp_path, capsys):
    code = main(["reproduce", "ekfac", "--quick", "--families", "x", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("lowdisp: error: ") and err.count("\n") == 1
    assert "--families" in err


@pytest.mark.slow
def test_tiny_budget_run_through_the_api(tmp_path):
    s = R.settings(quick=True, seeds=2)
    clf = R.replace(s.problems[1], budget=0.15, grid_budget=0.05)
    logs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = R.reproduce(
            quick=True,
            seeds=2,
            out=str(tmp_path / "r"),
            plot=False,
            log=logs.append,
            settings_override={
                "problems": (clf,),
                "grids": {"classifier": dict.fromkeys(R.OPTIMIZERS, (0.01, 0.03))},
                "dampings": {"classifier": (0.1,)},
                "frobenius": {**s.frobenius, "examples": 32, "adam_epochs": 1},
            },
        )
    assert [r["optimizer"] for r in res["rows"]] == list(R.OPTIMIZERS)
    grid = [r for r in res["results"] if r["phase"] == "grid"]
    assert len(grid) == 2 * len(R.OPTIMIZERS)
    finals = [r for r in res["results"] if r["phase"] == "final"]
    assert len(finals) == 2 * len(R.OPTIMIZERS)
    for r in finals:  # each final run uses its optimizer's best grid point
        best = min(
            (g for g in grid if g["optimizer"] == r["optimizer"] and g["status"] == "ok"),
            key=lambda g: g["train_loss"],
        )
        assert (r["lr"], r["damping"] if r["optimizer"] in ("kfac", "ekfac") else 0) == (
            best["lr"],
            best["damping"] if r["optimizer"] in ("kfac", "ekfac") else 0,
        )
    assert any("load average" in line for line in logs)
    assert (tmp_path / "r" / "summary.md").is_file()
    assert not (tmp_path / "r" / "loss_curves.png").exists()


# -- pieces -------------------------------------------------------------------------


def test_image_bce_is_the_per_image_sum_and_its_gradient():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 7))
    y = rng.uniform(size=(5, 7))
    loss = R._ImageBCE()
    value, cache = loss.forward(z, y)
    per = np.logaddexp(0, z) - y * z
    assert value == pytest.approx(per.sum(axis=1).mean(), rel=1e-14)
    grad = loss.backward(cache)
    h = 1e-6
    v = rng.normal(size=z.shape)
    fd = (loss.forward(z + h * v, y)[0] - loss.forward(z - h * v, y)[0]) / (2 * h)
    assert float((grad * v).sum()) == pytest.approx(fd, rel=1e-8)


def test_first_reach_interpolates_between_epochs():
    curve = [
        {"train_loss": 10.0, "epoch": 0.0, "cpu_seconds": 0.0},
        {"train_loss": 6.0, "epoch": 1.0, "cpu_seconds": 2.0},
        {"train_loss": 2.0, "epoch": 2.0, "cpu_seconds": 4.0},
    ]
    assert R._first_reach(curve, 4.0, "epoch") == pytest.approx(1.5)
    assert R._first_reach(curve, 4.0, "cpu_seconds") == pytest.approx(3.0)
    assert R._first_reach(curve, 10.0, "epoch") == 0.0
    assert math.isnan(R._first_reach(curve, 1.0, "epoch"))


def test_the_grid_choice_ignores_diverged_runs():
    rows = [
        {"lr": 0.1, "damping": 1.0, "status": "diverged: x", "train_loss": float("nan")},
        {"lr": 0.03, "damping": 0.1, "status": "ok", "train_loss": 2.0},
        {"lr": 0.01, "damping": 1.0, "status": "ok", "train_loss": 3.0},
    ]
    assert R._best(rows) == (0.03, 0.1)
    assert R._best(rows[:1]) is None


def _row(opt, e, es, c=1.0, cs=0.1):
    return {
        "problem": "autoencoder",
        "optimizer": opt,
        "epochs_to_target": e,
        "epochs_to_target_std": es,
        "cpu_s_to_target": c,
        "cpu_s_to_target_std": cs,
    }


def test_claim_verdicts():
    rows = [_row("ekfac", 2.0, 0.1), _row("kfac", 5.0, 0.2), _row("sgd", 2.1, 0.5)]
    assert "holds" in R._compare(rows, "autoencoder", "ekfac", "kfac", "epochs_to_target")
    assert "does NOT hold" in R._compare(rows, "autoencoder", "kfac", "ekfac", "epochs_to_target")
    assert "not resolved" in R._compare(rows, "autoencoder", "ekfac", "sgd", "epochs_to_target")
    assert "not measured" in R._compare(rows, "autoencoder", "ekfac", "adam", "epochs_to_target")


# -- the Frobenius table against a dense oracle ---------------------------------------


def _oracle_stats(model, x, y, flavour):
    """Per Dense layer: (ã rows, g rows, n) in float64, the forward and backward
    written out here (ReLU/tanh MLP, softmax readout). ``empirical``: g = p - e_y;
    ``true``: C rows per example, g_c = sqrt(p_c)(e_c - p), so Σ_c g_c g_cᵀ = diag(p) - ppᵀ."""
    layers = list(model.layers.values())
    n = x.shape[0]
    ins = []
    h = np.asarray(x, dtype=np.float64)
    for layer in layers:
        ins.append(h)
        if hasattr(layer, "in_features"):
            P = layer.params()
            h = h @ P["W"].T.astype(np.float64) + P["b"]
        else:
            h = np.maximum(h, 0) if layer.kind == "relu" else np.tanh(h)
    p = np.exp(h - h.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    C = p.shape[1]
    if flavour == "empirical":
        dy, reps = p.copy(), 1
        dy[np.arange(n), y] -= 1.0
    else:
        eye = np.eye(C)
        dy = (np.sqrt(p)[:, :, None] * (eye[None] - p[:, None, :])).reshape(n * C, C)
        reps = C
    stats = []
    for layer, a in zip(reversed(layers), reversed(ins)):
        a = np.repeat(a, reps, axis=0)
        if hasattr(layer, "in_features"):
            stats.append((np.hstack([a, np.ones((a.shape[0], 1))]), dy.copy(), n))
            dy = dy @ layer.params()["W"].astype(np.float64)
        elif layer.kind == "relu":
            dy = dy * (a > 0)
        else:
            dy = dy * (1 - np.tanh(a) ** 2)
    return stats[::-1]


def _oracle_distances(at, g, n):
    """(‖F‖, ‖F − G⊗A‖, ‖F − Q diag(S*) Qᵀ‖) of one block, every matrix dense."""
    J = (g[:, :, None] * at[:, None, :]).reshape(g.shape[0], -1)  # rows g ⊗ ã
    F = J.T @ J / n
    A = at.T @ at / at.shape[0]
    G = g.T @ g / n
    _, UA = np.linalg.eigh(A)
    _, UG = np.linalg.eigh(G)
    Q = np.kron(UG, UA)
    S = np.einsum("ij,ij->j", J @ Q, J @ Q) / n  # diag(Qᵀ F Q)
    return (
        np.linalg.norm(F),
        np.linalg.norm(F - np.kron(G, A)),
        np.linalg.norm(F - (Q * S) @ Q.T),
    )


@pytest.mark.slow
def test_frobenius_rows_match_the_dense_oracle():
    s = R.settings(quick=True)
    frob = {**s.frobenius, "examples": 96, "adam_epochs": 2}
    s = R.replace(s, frobenius=frob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = R.frobenius_rows(s)
    nets = R.frobenius_nets(s)
    assert {r["state"] for r in rows} == set(nets)
    for state, (model, x, y) in nets.items():
        for flavour in ("empirical", "true"):
            stats = _oracle_stats(model, x, y, flavour)
            got = [r for r in rows if r["state"] == state and r["fisher"] == flavour]
            assert len(got) == len(stats)
            for r, (at, g, n) in zip(got, stats):
                fn, dk, de = _oracle_distances(at, g, n)
                assert r["block_size"] == at.shape[1] * g.shape[1]
                assert r["fisher_norm"] == pytest.approx(fn, rel=1e-9)
                assert r["kfac_distance"] == pytest.approx(dk, rel=1e-8)
                assert r["ekfac_distance"] == pytest.approx(de, rel=1e-8, abs=1e-12 * fn)
                assert de <= dk * (1 + 1e-12)
