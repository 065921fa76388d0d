"""The training kernels by cell name: what the trainer, the collectors and the GEMM
measurement (:mod:`~rnn_dissect.train.kernels.choice`) look a cell up in.

Each value is a module with

    forward_backward(params, x_idx, y_idx, state0, dropout, rng, ws, backend)
        -> (loss, grads, state)      x_idx, y_idx (B, T) ints; state (L, B, H) [+ c]
    forward(params, x_idx, state0, ws, backend) -> (logits (B, T, V), state)

Its own module (not the package's ``__init__``) so that ``choice`` can import it while the
package's ``__init__`` imports ``choice``.
"""

from __future__ import annotations

from types import ModuleType

from rnn_dissect.train.kernels import gru, lstm, rnn

__all__ = ["KERNELS"]

KERNELS: dict[str, ModuleType] = {"rnn": rnn, "lstm": lstm, "gru": gru}
