"""Fast training kernels: fused numpy forward + backward over whole sequences.

The recorded graph (:mod:`rnn_dissect.autograd.engine`) keeps every node for dissection; these
kernels keep only what BPTT needs and batch the work into a few large GEMMs, for training.
Same model and numbers as :mod:`rnn_dissect.nets.model` (PyTorch's equations, gate orders and
parameter names); dtype follows the parameters (float32 to train, float64 to test).
float32 can run two accelerations that float64 never does: each step's elementwise passes
compiled with numba (:mod:`~rnn_dissect.train.kernels.fused`) and the GEMMs through oneMKL with
the recurrent weight packed once per step (:mod:`~rnn_dissect.train.kernels.blas`, when the
``mkl`` extra is installed). Which ones run is a :class:`Backend` value passed to each call
(``backend=``; default: plain numpy); a training run gets it from a :class:`Preference`, which
picks the faster GEMM library on this CPU by measurement (:mod:`~rnn_dissect.train.kernels.choice`).

    >>> import numpy as np
    >>> from rnn_dissect.train.kernels import KERNELS
    >>> from rnn_dissect.nets.model import ModelConfig, init_params
    >>> cfg = ModelConfig("lstm", tuple("abc"), hidden_size=8, num_layers=2)
    >>> params = init_params(cfg, np.random.default_rng(0))
    >>> x = np.array([[0, 1, 2, 0]]); y = np.array([[1, 2, 0, 1]])
    >>> loss, grads, (h, c) = KERNELS["lstm"].forward_backward(params, x, y)
    >>> round(loss, 4), h.shape, grads["rnn.weight_hh_l1"].shape
    (1.1705, (2, 1, 8), (32, 8))
"""

from __future__ import annotations

from rnn_dissect.train.kernels import adam, gru, lstm, rnn
from rnn_dissect.train.kernels.backend import REFERENCE, Backend
from rnn_dissect.train.kernels.choice import Preference, StepShape
from rnn_dissect.train.kernels.registry import KERNELS
from rnn_dissect.train.kernels.stack import dropout_masks
from rnn_dissect.train.kernels.workspace import Workspace

__all__ = [
    "KERNELS",
    "REFERENCE",
    "Backend",
    "Preference",
    "StepShape",
    "Workspace",
    "adam",
    "dropout_masks",
    "gru",
    "lstm",
    "rnn",
]
