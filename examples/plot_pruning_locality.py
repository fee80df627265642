"""
Locality of loss-modelling pruning criteria (Laurent et al.)
============================================================

Pruning criteria such as OBD (``½ F_ii θ_i²``), LM (``−g_i θ_i``) and QM
(their sum) score each weight by the loss change a Taylor model of the loss
predicts for removing it. Laurent, Ballas, George, Ballas and Vincent
("Revisiting Loss Modelling for Unstructured Pruning") point out that these
models only hold for small steps: removing 80 % of the weights at once is no
small step. Reaching the same sparsity in several steps, re-estimating the
gradient and the Fisher on the already-pruned net before each, keeps every
step local.

This example trains a small MLP on scikit-learn's 8 x 8 digits, then prunes
its weight matrices to 80 % sparsity with OBD and with the absolute QM
criterion in 1 to 30 geometric steps (:func:`lowdisp.nn.prune_schedule`), and
plots the total loss change each criterion's model predicted against the
actual one, and the sum over steps of the prediction errors. ``lowdisp
reproduce pruning`` runs the LeNet-300-100 version with every criterion,
several seeds and fine-tuning.
"""

import matplotlib.pyplot as plt
import numpy as np

import lowdisp.nn as lnn

task = lnn.digits(flat=True)
x, y = task.train_data()
data = (x[:500], y[:500])
loss = task.loss()
dense = lnn.build_mlp(task, hidden=(48,), dtype=np.float64, rng=0)
lnn.Trainer(dense, loss, lnn.SGD(0.05, momentum=0.9), task, batch_size=64, rng=0).fit(
    epochs=8, progress=False
)
paths = ["fc0.W", "readout.W"]
STEPS = [1, 3, 10, 30]
CRITERIA = {"obd": ("OBD", "pred_obd", "C0"), "qm_abs": ("|QM|", "pred_qm", "C2")}

results = {}
for crit, (label, key, _) in CRITERIA.items():
    rows = []
    for S in STEPS:
        net = lnn.build_mlp(task, hidden=(48,), dtype=np.float64, rng=0)
        for k, v in dense.params().items():
            net.params()[k][...] = v
        log = lnn.prune_schedule(
            net, paths, criterion=crit, sparsity=0.8, steps=S, schedule="geometric",
            data=data, loss=loss,
        )  # fmt: skip
        actual = sum(r["actual"] for r in log)
        pred = sum(r[key] for r in log)
        err = sum(abs(r[key] - r["actual"]) for r in log)
        rows.append((actual, pred, err))
        print(f"{label:5s} {S:3d} steps: actual {actual:.4f} predicted {pred:.4f} "
              f"sum |error| {err:.4f}")  # fmt: skip
    results[crit] = np.array(rows)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
for crit, (label, _, color) in CRITERIA.items():
    r = results[crit]
    ax1.plot(STEPS, r[:, 0], "-o", color=color, label=f"{label} actual")
    ax1.plot(STEPS, r[:, 1], "--x", color=color, label=f"{label} predicted")
    ax2.plot(STEPS, r[:, 2], "-o", color=color, label=label)
for ax in (ax1, ax2):
    ax.set_xscale("log")
    ax.set_xlabel("pruning steps to 80 % sparsity")
ax1.set_ylabel("total loss change")
ax1.set_title("predicted vs actual")
ax2.set_yscale("log")
ax2.set_ylabel("Σ over steps |predicted − actual|")
ax2.set_title("model error")
ax1.legend(fontsize=7)
ax2.legend(fontsize=7)
fig.tight_layout()
plt.show()
