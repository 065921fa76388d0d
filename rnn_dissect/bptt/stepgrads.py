"""How the shared weights are updated through time (question 2).

Every step's node reads the same weight, so the weight's gradient is a sum over steps:

    dW_hh = Σ_t dW_hh^{(t)},    dW_hh^{(t)} = Σ_b da_t[b] h_{t-1}[b]ᵀ      (vanilla RNN: da_t = dh_raw_t)

Each term is exactly what reached the weight through step t's node — the engine's
``edge_grad(child, W)`` for the node(s) of step t that read W — recorded as backward adds
it (``on_edge``), so the split costs no second VJP. Rows of a recurrent weight
stack the gates in PyTorch's order (LSTM i, f, g, o; GRU r, z, n), so each term also splits
into one H-row block per gate.

The update that follows is one optimizer step from a fresh state, as ``torch.optim`` does
it (:mod:`rnn_dissect.optim`), after optional global-norm clipping as
``torch.nn.utils.clip_grad_norm_``:

    clip:     n = ‖(g_1, …, g_P)‖₂;  g ← g · min(1, c / (n + 1e-6))
    SGD:      ΔW = −lr · g
    Adagrad:  s = g²;  ΔW = −lr · g / (√s + 1e-10)           (torch's defaults, first step)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from rnn_dissect import optim
from rnn_dissect.autograd.engine import Kind, Node
from rnn_dissect.bptt.recording import Recording
from rnn_dissect.errors import UserError
from rnn_dissect.nets.cells import GATES

__all__ = ["OPTIMIZERS", "StepGradRecorder", "StepGrads", "Update", "update"]

OPTIMIZERS = ("sgd", "adagrad")
STATES = ("h0", "c0")  # gradients of initial states: in ``grads``, but nothing trains them


@dataclass
class StepGrads:
    """Per-step gradient contributions of every parameter (t = 1..T at index t − 1)."""

    contributions: dict[str, list[np.ndarray]] | None  # name → T arrays (None: not kept)
    norms: dict[str, np.ndarray]  # name → (T,) Frobenius norm of each step's term
    block_norms: dict[str, np.ndarray]  # name → (T, G) norm of each gate's H-row block
    blocks: tuple[str, ...]  # gate names, in row order ("all" for the head)


def _ungated(name: str) -> bool:
    """A parameter whose rows are not gate blocks: the head's, weight_hr (LSTM proj_size)."""
    return name.startswith("head.") or "weight_hr_l" in name


class StepGradRecorder:
    """Collects every parameter's per-step terms during the one backward pass.

    Pass it as ``Graph.backward(loss, on_edge=recorder)``: each edge child → W that backward
    adds to W's gradient is W's term from step ``child.t`` — the same array
    ``Graph.edge_grad(child, W)`` recomputes. A step's term is finished (its norms taken)
    when its last reader has reported — usually at once: one reader per weight per step.
    ``keep=False`` keeps only the norms (T·|W| floats per weight is 500 MB for T = 1000,
    H = 256).
    """

    def __init__(self, run: Recording, keep: bool = True) -> None:
        self.keep, self.blocks = keep, GATES[run.cell]
        self.kept: dict[str, list[np.ndarray | None]] = {n: [None] * run.T for n in run.params}
        self.sq = {  # name → (T, G) squared norms of each step's gate blocks (H rows each);
            # one block for the head and a projected LSTM's weight_hr (P, H): no gate rows
            n: np.zeros((run.T, 1 if _ungated(n) else len(self.blocks)))
            for n in run.params
        }
        readers: dict[tuple[str, int], int] = {}  # (name, t) → edges still to come
        param, count = Kind.PARAMETER, readers.get
        for node in run.graph.nodes:
            for p in node.parents:
                if p.kind is param:
                    assert node.t is not None, f"{node.id} reads {p.id} outside any step"
                    key = (p.id, node.t)
                    readers[key] = count(key, 0) + 1
        self._readers = readers
        self._partial: dict[tuple[str, int], np.ndarray] = {}  # terms with readers to come

    def __call__(self, child: Node, parent: Node, g: np.ndarray) -> None:
        if parent.kind is not Kind.PARAMETER:
            return
        t = cast(int, child.t)  # every reader has a t: checked in __init__
        key = (parent.id, t)
        left = self._readers[key] = self._readers[key] - 1
        part = self._partial.pop(key, None) if self._partial else None
        term = g if part is None else part + g
        if left:
            self._partial[key] = term
        else:
            self._close(parent.id, t, term)

    def _close(self, name: str, t: int, term: np.ndarray) -> None:
        sq = self.sq[name]
        blocks = sq.shape[1]  # G: a row of (G, H·in) per gate block (one row: no 2-D view)
        rows = (term.reshape(-1),) if blocks == 1 else term.reshape(blocks, -1)
        for k, r in enumerate(rows):
            sq[t - 1, k] = np.dot(r, r)  # BLAS dot: the fastest sum of squares here
        if self.keep:
            self.kept[name][t - 1] = term

    def result(self, run: Recording) -> StepGrads:
        for (name, t), term in sorted(self._partial.items()):  # readers the loss never reached
            self._close(name, t, term)
        self._partial = {}
        kept = None
        if self.keep:
            kept = {
                n: [np.zeros_like(run.params[n].value) if a is None else a for a in terms]
                for n, terms in self.kept.items()
            }
        norms = {n: np.sqrt(sq.sum(axis=1)) for n, sq in self.sq.items()}
        blocks = {n: np.sqrt(sq) for n, sq in self.sq.items()}
        return StepGrads(kept, norms, blocks, self.blocks)


@dataclass
class Update:
    """One optimizer step: ΔW per parameter, and what clipping did."""

    optimizer: str
    lr: float
    clip: float | None  # max global norm, or None
    grad_norm: float  # global ‖g‖₂ before clipping
    clip_coef: float  # factor the gradients were multiplied by (1.0: untouched)
    delta: dict[str, np.ndarray]  # name → ΔW (new W = W + ΔW)

    def to_data(self) -> dict[str, object]:
        """Its fields as a dict, ΔW arrays left as arrays (``document.plain`` converts them)."""
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "clip": self.clip,
            "grad_norm": self.grad_norm,
            "clip_coef": self.clip_coef,
            "delta": dict(self.delta),
        }


def update(
    grads: dict[str, np.ndarray],
    *,
    lr: float = 0.1,
    optimizer: str = "sgd",
    clip: float | None = None,
) -> Update:
    """ΔW for each parameter in ``grads`` (torch names; states such as h0 are not trained)."""
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown --optimizer {optimizer!r}; choose sgd or adagrad")
    if not lr > 0:
        raise UserError(f"--lr {lr} must be a positive number")
    if clip is not None and not clip > 0:
        raise UserError(f"--clip {clip} must be a positive number (or omitted for no clipping)")
    g = {k: np.array(v, np.float64) for k, v in grads.items() if k not in STATES}  # copies
    norm = optim.grad_norm(g) if clip is None else optim.clip_grad_norm(g, clip)
    coef = 1.0 if clip is None else min(1.0, clip / (norm + 1e-6))
    # ΔW is where the step takes W = 0 (0 − x: an untouched weight moves by 0.0, not −0.0)
    delta = {k: np.zeros_like(v) for k, v in g.items()}
    optim.OPTIMIZERS[optimizer](delta, lr=lr).step(delta, g)
    return Update(optimizer, lr, clip, norm, coef, delta)
