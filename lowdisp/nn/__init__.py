"""lowdisp.nn: an autograd-free NumPy trainer for small recurrent experiments.

Layers are stateless (``forward(x, *, train) -> (y, cache)``,
``backward(cache, dy) -> (dx, grads)``), parameters are plain arrays in a dict
keyed by path (``"rnn.cell.W.theta"``), optimizers update them in place, and
the :class:`Trainer` runs tasks with checkpoints that resume bit-for-bit.
Recurrent cells run a whole sequence (forward and BPTT) in one fused loop and
take their recurrent matrix from :mod:`lowdisp.orthogonal`.

Examples
--------
>>> import numpy as np
>>> import lowdisp.nn as lnn
>>> task = lnn.copy_memory(10)
>>> model = lnn.build_model(task, "tanh", hidden=16, rng=0)
>>> trainer = lnn.Trainer(model, task.loss(), lnn.Adam(lr=1e-3), task, batch_size=8, rng=0)
>>> history = trainer.fit(5, progress=False)
>>> len(history.loss)
5
"""

from lowdisp.nn._alignment import (
    AlignmentLogger,
    TangentKernels,
    alignment,
    alignment_schedule,
    plot_alignment,
    tangent_kernels,
)
from lowdisp.nn._checkpoint import Checkpoint, load, read_checkpoint, save
from lowdisp.nn._curvature import CurvatureWarning, example_scale
from lowdisp.nn._diagonal_circulant import DiagonalCirculant
from lowdisp.nn._fastfood import Fastfood
from lowdisp.nn._fisher import (
    DenseFisher,
    DiagonalFisher,
    EKFACFisher,
    KFACFisher,
    fisher_matrix,
)
from lowdisp.nn._history import History
from lowdisp.nn._kfac import EKFAC, KFAC
from lowdisp.nn._layers import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Layer,
    ModReLU,
    OneHot,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from lowdisp.nn._losses import MSE, Loss, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, make_loss
from lowdisp.nn._lrbi import (
    IndexBits,
    LRBIResult,
    LRBITile,
    boolean_product,
    index_bits,
    lrbi_mask,
)
from lowdisp.nn._normalized import (
    BNLSTMCell,
    BNRNNCell,
    LNLSTMCell,
    LNRNNCell,
    is_buffer,
    refresh_bn_statistics,
)
from lowdisp.nn._optim import (
    SGD,
    Adam,
    Optimizer,
    RMSprop,
    clip_grad_norm,
    constant_schedule,
    cosine_schedule,
    exponential_schedule,
    global_norm,
    step_schedule,
)
from lowdisp.nn._prune_schedule import prune_schedule, sparsity_schedule
from lowdisp.nn._pruning import (
    predicted_loss_change,
    prune,
    pruning_masks,
    pruning_scores,
    remove_pruning,
    set_mask,
    sparsity_report,
)
from lowdisp.nn._regularizers import REGULARIZERS, apply_constraints, penalty, regularizer_states
from lowdisp.nn._rnn import RNN, GRUCell, LSTMCell, ReLURNNCell, RNNCell, TanhRNNCell, make_cell
from lowdisp.nn._robustness import (
    RobustnessReport,
    hidden_growth,
    input_gradient,
    perturbed_metrics,
    recurrent_summary,
    robustness_report,
)
from lowdisp.nn._runs import RunAnalysis, Snapshots, analyze_run, weight_matrices
from lowdisp.nn._seqdata import (
    build_chorales,
    char_lm,
    chorales,
    frame_nll,
    load_chorales,
    sequence_data_dir,
)
from lowdisp.nn._structured_dense import (
    STRUCTURES,
    StructuredDense,
    compression_ratio,
    count_params,
)
from lowdisp.nn._tasks import (
    Task,
    adding,
    array_task,
    copy_memory,
    digits,
    make_task,
    mnist,
    mnist1d,
    mnist_variant,
)
from lowdisp.nn._trainer import (
    Callback,
    EarlyStopping,
    RecordRecurrent,
    Trainer,
    TrainingDivergedError,
    TrainingInterrupted,
    build_mlp,
    build_model,
    make_trainer,
    recurrent_matrix,
    train,
)

__all__ = [
    "EKFAC",
    "KFAC",
    "MSE",
    "REGULARIZERS",
    "RNN",
    "SGD",
    "STRUCTURES",
    "Activation",
    "Adam",
    "AlignmentLogger",
    "BNLSTMCell",
    "BNRNNCell",
    "Callback",
    "Checkpoint",
    "CurvatureWarning",
    "Dense",
    "DenseFisher",
    "DiagonalCirculant",
    "DiagonalFisher",
    "Dropout",
    "EKFACFisher",
    "EarlyStopping",
    "Embedding",
    "Fastfood",
    "GRUCell",
    "History",
    "IndexBits",
    "KFACFisher",
    "LNLSTMCell",
    "LNRNNCell",
    "LRBIResult",
    "LRBITile",
    "LSTMCell",
    "Layer",
    "Loss",
    "ModReLU",
    "OneHot",
    "Optimizer",
    "RMSprop",
    "RNNCell",
    "ReLU",
    "ReLURNNCell",
    "RecordRecurrent",
    "RobustnessReport",
    "RunAnalysis",
    "Sequential",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Snapshots",
    "SoftmaxCrossEntropy",
    "StructuredDense",
    "TangentKernels",
    "Tanh",
    "TanhRNNCell",
    "Task",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "adding",
    "alignment",
    "alignment_schedule",
    "analyze_run",
    "apply_constraints",
    "array_task",
    "boolean_product",
    "build_chorales",
    "build_mlp",
    "build_model",
    "char_lm",
    "chorales",
    "clip_grad_norm",
    "compression_ratio",
    "constant_schedule",
    "copy_memory",
    "cosine_schedule",
    "count_params",
    "digits",
    "example_scale",
    "exponential_schedule",
    "fisher_matrix",
    "frame_nll",
    "global_norm",
    "hidden_growth",
    "index_bits",
    "input_gradient",
    "is_buffer",
    "load",
    "load_chorales",
    "lrbi_mask",
    "make_cell",
    "make_loss",
    "make_task",
    "make_trainer",
    "mnist",
    "mnist1d",
    "mnist_variant",
    "penalty",
    "perturbed_metrics",
    "plot_alignment",
    "predicted_loss_change",
    "prune",
    "prune_schedule",
    "pruning_masks",
    "pruning_scores",
    "read_checkpoint",
    "recurrent_matrix",
    "recurrent_summary",
    "refresh_bn_statistics",
    "regularizer_states",
    "remove_pruning",
    "robustness_report",
    "save",
    "sequence_data_dir",
    "set_mask",
    "sparsity_report",
    "sparsity_schedule",
    "step_schedule",
    "tangent_kernels",
    "train",
    "weight_matrices",
]
