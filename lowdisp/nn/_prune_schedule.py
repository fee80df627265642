"""Multi-step pruning: sparsity schedules and a loop that re-estimates the
gradient and the Fisher on the already-pruned net at every step, logging the
loss change each Taylor model predicts beside the actual one (the locality
diagnostic of Laurent et al., "Revisiting Loss Modelling for Unstructured
Pruning")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lowdisp._validation import as_rng, check_int, check_option, check_real
from lowdisp.nn._pruning import (
    LOSS_MODELS,
    _default_paths,
    _predict,
    _resolve,
    _scores,
    _stats_for,
    apply_scores,
    check_criterion,
    check_flavour,
    loss_on,
    model_masks,
)

__all__ = ["prune_schedule", "sparsity_schedule"]

#: kinds of :func:`sparsity_schedule`
SCHEDULES = ("equal", "geometric", "cubic")


def sparsity_schedule(
    sparsity: float, steps: int = 1, *, kind: str = "equal", initial: float = 0.0
) -> np.ndarray:
    """The target sparsity after each of ``steps`` pruning steps.

    Parameters
    ----------
    sparsity : float
        Final sparsity ``s_f`` in [0, 1).
    steps : int
        ``S >= 1`` (1: one-shot).
    kind : {"equal", "geometric", "cubic"}
        ``"equal"``: ``s_k = s_i + (s_f − s_i) k/S`` (equal increments);
        ``"geometric"``: each step keeps the same fraction of the remaining
        weights, ``1 − s_k = (1 − s_i)((1 − s_f)/(1 − s_i))^{k/S}``;
        ``"cubic"`` (Zhu & Gupta 2017): ``s_k = s_f + (s_i − s_f)(1 − k/S)³``
        (large steps first).
    initial : float
        ``s_i``, the sparsity before the first step (at most ``sparsity``).

    Returns
    -------
    ndarray of shape (steps,)
        Non-decreasing, ending at ``sparsity``.

    Examples
    --------
    >>> from lowdisp.nn import sparsity_schedule
    >>> sparsity_schedule(0.75, 3).round(3).tolist()
    [0.25, 0.5, 0.75]
    >>> sparsity_schedule(0.75, 2, kind="geometric").round(3).tolist()
    [0.5, 0.75]
    >>> sparsity_schedule(0.9, 3, kind="cubic").round(3).tolist()
    [0.633, 0.867, 0.9]
    """
    where = "sparsity_schedule"
    sf = check_real(sparsity, "sparsity", where=where, low=0, high=1, high_open=True)
    si = check_real(initial, "initial", where=where, low=0, high=sf)
    S = check_int(steps, "steps", where=where, low=1)
    check_option(kind, "kind", SCHEDULES, where=where)
    frac = np.arange(1, S + 1) / S
    if kind == "equal":
        out = si + (sf - si) * frac
    elif kind == "geometric":
        out = 1 - (1 - si) * ((1 - sf) / (1 - si)) ** frac
    else:
        out = sf + (si - sf) * (1 - frac) ** 3
    out[-1] = sf
    return out


def prune_schedule(
    target: Any,
    paths: Any = None,
    *,
    criterion: str = "magnitude",
    sparsity: float,
    steps: int = 1,
    schedule: str = "equal",
    scope: str = "global",
    data: Any = None,
    loss: Any = None,
    fisher: str = "empirical",
    fine_tune: int = 0,
    models: Sequence[str] = ("lm", "obd", "qm"),
    curvature: Any = None,
    rng: Any = None,
) -> list[dict[str, Any]]:
    """Reach a target sparsity in several pruning steps, logging each step.

    At each step the scores are recomputed on the already-pruned net (the
    gradient and Fisher re-estimated on ``data``), the entries needed to
    reach the step's target sparsity (counted over all ``paths`` for
    ``scope="global"``, per parameter for ``"layer"``) are pruned, and the
    loss change of that step is recorded: predicted by each model of
    ``models`` (:func:`~lowdisp.nn.predicted_loss_change`, from the same
    gradient and Fisher) and actual (the loss on ``data`` before and after).

    Parameters
    ----------
    target : Layer or Trainer
        With ``fine_tune > 0``, a Trainer.
    paths : str or list of str, optional
        Default every ``*.W`` weight matrix.
    criterion : {"magnitude", "random", "obd", "lm", "qm", "lm_abs", "qm_abs"}
    sparsity : float
        Final sparsity in [0, 1) of ``paths`` (global) or of each (layer).
    steps : int
        Number of pruning steps (1: one-shot).
    schedule : {"equal", "geometric", "cubic"}
        See :func:`sparsity_schedule` (from the current sparsity).
    scope : {"global", "layer"}
    data, loss, fisher
        See :func:`~lowdisp.nn.pruning_scores` (default: the trainer's training set and loss).
    fine_tune : int
        Trainer steps between pruning steps (not after the last one).
    models : sequence of {"lm", "obd", "qm", "quadratic"}
        Loss models logged at every step (``"quadratic"`` needs ``curvature``,
        e.g. ``"kfac"`` or ``"ekfac"``).
    curvature : str, optional
        The Fisher of the ``"quadratic"`` model, re-estimated each step.
    rng : seed or Generator, optional

    Returns
    -------
    list of dict
        One record per step: ``step``, ``target``, ``sparsity`` (reached),
        ``pruned`` (entries removed in this step), ``loss_before``,
        ``loss_after``, ``actual`` (= after − before) and ``pred_<model>``
        for each model.

    Examples
    --------
    >>> import numpy as np
    >>> import lowdisp.nn as lnn
    >>> rng = np.random.default_rng(0)
    >>> net = lnn.Sequential({"fc": lnn.Dense(6, 3, dtype=np.float64, rng=0)})
    >>> data = (rng.normal(size=(40, 6)), rng.integers(0, 3, 40))
    >>> log = lnn.prune_schedule(net, criterion="qm", sparsity=0.5, steps=3, data=data,
    ...                          loss=lnn.SoftmaxCrossEntropy())
    >>> [r["pruned"] for r in log], lnn.sparsity_report(net)["fc.W"]["sparsity"]
    ([3, 3, 3], 0.5)
    """
    from lowdisp.nn._trainer import Trainer

    where = "prune_schedule"
    model, opt = _resolve(target, where)
    chosen = _default_paths(model, paths, where)
    check_criterion(criterion, where)
    check_flavour(fisher, where)
    sf = check_real(sparsity, "sparsity", where=where, low=0, high=1, high_open=True)
    S = check_int(steps, "steps", where=where, low=1)
    check_option(schedule, "schedule", SCHEDULES, where=where)
    check_option(scope, "scope", ("global", "layer"), where=where)
    fine_tune = check_int(fine_tune, "fine_tune", where=where, low=0)
    if fine_tune and not isinstance(target, Trainer):
        raise ValueError(f"{where}: fine_tune > 0 needs a Trainer as target")
    if isinstance(models, str):
        models = [models]
    models = [check_option(m, "model", LOSS_MODELS, where=where) for m in models]
    if "quadratic" in models and curvature is None:
        raise ValueError(f"{where}: the 'quadratic' model needs curvature= (e.g. 'kfac')")
    gen = as_rng(rng, where=where)
    stats0 = _stats_for(target, model, data, loss, where)
    batches, n, the_loss = stats0.batches, stats0.n, stats0.loss
    if "quadratic" in models and not isinstance(curvature, str):
        stats0.scale()  # one Fisher object needs one scale: refused before any step
    params = model.params()
    masks = model_masks(model)

    def pruned_of(p: str) -> int:
        return 0 if p not in masks else int(masks[p].size - np.count_nonzero(masks[p]))

    size = sum(params[p].size for p in chosen)
    current = sum(pruned_of(p) for p in chosen) / size
    if scope == "layer":
        current = min(pruned_of(p) / params[p].size for p in chosen)
    if current > sf:
        raise ValueError(
            f"{where}: the parameters are already {current:.4g} sparse, above sparsity={sf}"
        )
    targets = sparsity_schedule(sf, S, kind=schedule, initial=current)
    log: list[dict[str, Any]] = []
    after: float | None = None  # the loss after the previous step (no training since)
    for k, s_k in enumerate(targets):
        stats = _stats_for(target, model, batches, the_loss, where)
        before = {p: np.array(params[p], dtype=np.float64) for p in chosen}
        old = {p: masks[p].copy() if p in masks else None for p in chosen}
        scores = _scores(model, chosen, criterion, stats, fisher, gen, where)
        # every statistic the logged models need, at the parameters before the step
        if any(m in ("lm", "qm", "quadratic") for m in models):
            stats.grad()
        if any(m in ("obd", "qm") for m in models):
            stats.fdiag(fisher, gen)
        if "quadratic" in models and isinstance(curvature, str):
            stats.fishers(curvature, fisher, gen)  # cached for _predict

        def count(remaining: int, total: int, what: str, s_k: float = s_k) -> int:
            return max(0, round(s_k * total) - (total - remaining))

        loss_before = loss_on(model, the_loss, batches, n) if after is None else after
        apply_scores(model, opt, chosen, scores, scope, count)
        delta = {}
        removed = 0
        for p in chosen:
            was = np.ones(params[p].shape, dtype=bool) if old[p] is None else old[p]
            gone = was & ~masks[p]
            removed += int(np.count_nonzero(gone))
            delta[p] = np.where(gone, -before[p], 0.0)
        rec: dict[str, Any] = {
            "step": k + 1,
            "target": float(s_k),
            "sparsity": sum(pruned_of(p) for p in chosen) / size,
            "pruned": removed,
            "loss_before": loss_before,
        }
        rec["loss_after"] = after = loss_on(model, the_loss, batches, n)
        rec["actual"] = rec["loss_after"] - loss_before
        for m in models:
            rec[f"pred_{m}"] = _predict(stats, delta, m, fisher, curvature, gen, where)
        log.append(rec)
        if fine_tune and k < S - 1:
            target.fit(fine_tune, progress=False)
            after = None
    return log
