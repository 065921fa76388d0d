"""What the trainer asks of a compute backend, and the numpy one (the exact reference).

The training loop (:mod:`rnn_dissect.train.loop`) owns the schedule, the data, the run
directory and every decision; a backend owns the arithmetic of one optimizer step and of
a validation pass, and where the live weights sit between checkpoints:

    out = backend.step(x, y, reset, lr, inspect)   # x, y (B, S) int64 → loss, ‖g‖₂
    val = backend.evaluate(text)                    # mean CE in nats/char over a text
    backend.params()                                # the live weights, as numpy (torch names)
    backend.pull()                                  # weights, optimizer slots, carried state
                                                    # → the TrainState, before a checkpoint

``step`` applies the update  params ← optimizer(params, clip(g), lr)  only when the loss
and the norm are both finite, and carries the state into the next call (zeros when
``reset``). The numpy backend works on the :class:`TrainState` in place; the PyTorch one
(:mod:`rnn_dissect.train.torch_backend`, ``--backend torch``, imported only when asked for)
keeps its own tensors and writes them back in ``pull``, so checkpoints are the same files
whichever backend wrote them, and a run started on one resumes on the other.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rnn_dissect import optim
from rnn_dissect.errors import UserError
from rnn_dissect.train.kernels import KERNELS, Backend, Preference, StepShape, Workspace, adam
from rnn_dissect.train.rundir import TrainState

__all__ = [
    "BACKENDS",
    "NumpyBackend",
    "StepResult",
    "TrainBackend",
    "evaluate",
    "make_backend",
    "rank_from_env",
    "world_from_env",
]

BACKENDS = ("numpy", "torch")
Inspect = Callable[[dict[str, np.ndarray]], None]  # sees the unclipped gradients (torch names)


@dataclass(frozen=True)
class StepResult:
    loss: float  # mean cross-entropy over the global batch, nats/char
    norm: float  # ‖g‖₂ of the whole gradient before clipping

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.norm)


class TrainBackend(Protocol):
    """One optimizer step and one validation pass; see the module docstring."""

    name: str
    rank: int  # this process's rank (0 when not distributed): rank 0 alone writes files
    world: int  # processes training together

    def step(
        self, x: np.ndarray, y: np.ndarray, reset: bool, lr: float, inspect: Inspect | None
    ) -> StepResult: ...

    def evaluate(self, text: np.ndarray) -> float: ...

    def params(self) -> dict[str, np.ndarray]: ...

    def pull(self) -> None: ...

    def agree(self, value: int) -> int: ...


def evaluate(
    params: dict[str, np.ndarray],
    cell: str,
    text: np.ndarray,
    batch: int,
    seq_len: int,
    ws: Workspace | None = None,
    kernels: Backend | None = None,
) -> float:
    """Mean cross-entropy in nats/char of predicting text[1:] from text[:-1]: the text is cut
    into ≤ ``batch`` contiguous streams read ``seq_len`` characters at a time, state carried."""
    win = eval_windows(text, batch, seq_len)  # (b, m + 1)
    b, m = win.shape[0], win.shape[1] - 1
    total, state = 0.0, None
    for t0 in range(0, m, seq_len):
        t1 = min(t0 + seq_len, m)
        x, y = win[:, t0:t1], win[:, t0 + 1 : t1 + 1]  # (b, ≤S)
        z, state = KERNELS[cell].forward(params, x, state, ws, kernels)  # (b, T, V)
        zmax = z.max(axis=2, keepdims=True)
        lse = np.log(np.exp(z - zmax).sum(axis=2)) + zmax[..., 0]  # (b, T)
        zy = np.take_along_axis(z, y[..., None], axis=2)[..., 0]
        total += float(np.sum(lse - zy, dtype=np.float64))
    return total / (b * m)


def eval_windows(text: np.ndarray, batch: int, seq_len: int) -> np.ndarray:
    """The validation layout: b = min(batch, ⌊(N−1)/S⌋) contiguous streams of m + 1
    characters, m = ⌊(N−1)/b⌋ predictions each; returns (b, m + 1) int64."""
    n = len(text) - 1
    b = max(1, min(batch, n // seq_len))
    m = n // b  # predictions per stream
    return np.asarray(text[np.arange(b)[:, None] * m + np.arange(m + 1)], dtype=np.int64)


class NumpyBackend:
    """The fused numpy kernels (:mod:`rnn_dissect.train.kernels`) and :mod:`rnn_dissect.optim`,
    on the TrainState's own arrays; ``kernels`` says how they compute (GEMM library, compiled
    elementwise passes), the same for every step and validation."""

    name, rank, world = "numpy", 0, 1

    def __init__(
        self,
        state: TrainState,
        cell: str,
        clip: float,
        dropout: float,
        B: int,
        S: int,
        kernels: Backend,
    ):
        self.state, self.cell, self.clip, self.dropout = state, cell, clip, dropout
        self.batch, self.seq_len, self.kernels = B, S, kernels
        self.ws, self.eval_ws = Workspace(), Workspace()

    def step(
        self, x: np.ndarray, y: np.ndarray, reset: bool, lr: float, inspect: Inspect | None
    ) -> StepResult:
        st = self.state
        carry = None if reset else st.carry
        loss, grads, carry = KERNELS[self.cell].forward_backward(
            st.params, x, y, carry, self.dropout, st.rng, self.ws, self.kernels
        )
        if inspect is not None:
            inspect(grads)
        norm = optim.clip_grad_norm(grads, self.clip) if self.clip > 0 else optim.grad_norm(grads)
        out = StepResult(loss, norm)
        if out.finite:
            adam.step(st.opt, st.params, grads, lr, compiled=self.kernels.fused)
            st.carry = carry
        return out

    def evaluate(self, text: np.ndarray) -> float:
        st = self.state
        return evaluate(
            st.params, self.cell, text, self.batch, self.seq_len, self.eval_ws, self.kernels
        )

    def params(self) -> dict[str, np.ndarray]:
        return self.state.params

    def pull(self) -> None:
        pass  # the state is the live one

    def agree(self, value: int) -> int:
        return value  # one process: nothing to agree with


def rank_from_env() -> int:
    """This process's rank as torchrun sets it (``RANK``); 0 when not launched by torchrun."""
    return int(os.environ.get("RANK", "0"))


def world_from_env() -> int:
    """How many processes torchrun started (``WORLD_SIZE``); 1 when not launched by it."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def make_backend(
    name: str,
    state: TrainState,
    cfg: Any,
    device: str = "cpu",
    kernels: Backend | Preference | None = None,
) -> TrainBackend:
    """The backend ``name`` (numpy | torch) for a run of ``cfg`` (a TrainConfig) from ``state``;
    the numpy one computes with ``kernels``: a Backend, or a Preference resolved at this run's
    shapes (default ``Preference()``: the GEMM library measured faster here, remembered in the
    user cache)."""
    if name not in BACKENDS:
        raise UserError(f"unknown --backend {name!r}; choose numpy or torch")
    if name == "numpy":
        if device != "cpu":
            raise UserError(f"--device {device} needs --backend torch (numpy runs on the CPU)")
        if world_from_env() > 1:
            raise UserError(
                "torchrun started several processes, which only --backend torch can train "
                "together; add --backend torch"
            )
        if not isinstance(kernels, Backend):
            V = state.params["head.weight"].shape[0]
            shape = StepShape(
                cfg.cell, cfg.hidden_size, cfg.num_layers, cfg.batch_size, V, cfg.seq_len
            )
            kernels = (kernels or Preference()).resolve(shape)
        return NumpyBackend(
            state, cfg.cell, cfg.clip, cfg.dropout, cfg.batch_size, cfg.seq_len, kernels
        )
    from rnn_dissect.train.torch_backend import TorchBackend  # torch is optional: only now

    return TorchBackend(state, cfg, device)
