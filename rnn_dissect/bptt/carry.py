"""What the backward pass carries from step to step, and what it computes there (question 4).

Going backward, step t of layer k receives dL/dh_t from two places and adds them:

    dh_t = dh_direct_t + dh_next_t
    dh_direct_t = ∂L/∂h_t through what reads h_t at the same step (the head at t, or the
                  layer above at t)
    dh_next_t   = ∂L/∂h_t through step t + 1 (the carried gradient; 0 at a truncation
                  cut, and at t = T — except where the model reads the final state h_n
                  (a watched module): there it is dL/dh_n, and ``next_from`` = "h_n" says so)

and for an LSTM likewise dc_t = dc_from_h_t + dc_next_t, dc_next_t = f_{t+1} ⊙ dc_{t+1}.
From these it computes the pre-activation gradient that feeds every weight gradient:

    RNN:  dh_raw_t = (1 − h_t²) ⊙ dh_t                        (grad of a_t)
    LSTM: da_i, da_f, da_g, da_o  (grads of the gate pre-activations, H columns each)
    GRU:  da_r, da_z, da_n

Every number is read off the recorded graph: ``Node.grad``, and the per-reader parts that
backward added (recorded through ``on_edge``; ``Graph.edge_grad`` recomputes the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_dissect.autograd.engine import Node
from rnn_dissect.bptt.recording import Recording

__all__ = ["StateEdgeRecorder", "StepCarry", "carries"]

# The pre-activation nodes each cell's backward computes, under the names we report.
_COMPUTES = {
    "rnn": {"dh_raw": "a"},
    "lstm": {"da_i": "a_i", "da_f": "a_f", "da_g": "a_g", "da_o": "a_o"},
    "gru": {"da_r": "a_r", "da_z": "a_z", "da_n": "a_n"},
}


@dataclass
class StepCarry:
    """Backward at step t of one layer. Arrays are (B, H), or (H,) for unbatched input."""

    t: int
    layer: int
    dh: np.ndarray  # dL/dh_t, everything
    dh_direct: np.ndarray  # through the head / layer above at t
    dh_next: np.ndarray  # carried in from step t + 1
    computes: dict[str, np.ndarray]  # pre-activation gradients (see module docstring)
    cut: bool  # a truncation cut sits after this step: nothing is carried in
    dh_cut: np.ndarray | None  # what arrived at the cut and was dropped
    dc: np.ndarray | None = None  # LSTM: dL/dc_t
    dc_next: np.ndarray | None = None  # LSTM: carried in from step t + 1
    dc_cut: np.ndarray | None = None
    # where dh_next (dc_next) comes from: "t+1" (carried from step t + 1), or at t = T of a
    # model that reads the final state, "h_n" (dL/dh_n, and dL/dc_n for dc_next)
    next_from: str = "t+1"

    def norms(self) -> dict[str, float]:
        out = {k: _norm(getattr(self, k)) for k in ("dh", "dh_direct", "dh_next", "dc", "dc_next")}
        out.update({k: _norm(v) for k, v in self.computes.items()})
        return {k: v for k, v in out.items() if v is not None}


def _norm(a: np.ndarray | None) -> float | None:
    return None if a is None else float(np.linalg.norm(a))


class StateEdgeRecorder:
    """Keeps, during backward (``on_edge``), every gradient part that reaches a state h_t or
    c_t, per reader — the arrays ``Graph.edge_grad(reader, state)`` recomputes."""

    def __init__(self, run: Recording) -> None:
        self.edges: dict[int, dict[int, np.ndarray]] = {
            s.seq: {} for row in run.states for st in row for s in st
        }  # state seq → reader seq → part

    def __call__(self, child: Node, parent: Node, g: np.ndarray) -> None:
        parts = self.edges.get(parent.seq)
        if parts is not None:
            parts[child.seq] = g if child.seq not in parts else parts[child.seq] + g

    def part(self, reader: Node | None, state: Node) -> np.ndarray:
        """What ``state`` received through ``reader`` (zeros if nothing)."""
        g = None if reader is None else self.edges[state.seq].get(reader.seq)
        return np.zeros_like(state.value) if g is None else g

    def rest(self, state: Node, skip: Node | None) -> np.ndarray:
        """Σ of what ``state`` received through every reader except ``skip``."""
        total = np.zeros_like(state.value)
        for c, g in sorted(self.edges[state.seq].items()):
            if skip is None or c != skip.seq:
                total = total + g
        return total


def carries(run: Recording, edges: StateEdgeRecorder | None = None) -> list[list[StepCarry]]:
    """[layer][t − 1] → :class:`StepCarry`. ``edges``: recorded during backward; without
    it a fresh backward pass records them."""
    if edges is None:
        edges = StateEdgeRecorder(run)
        run.graph.backward(run.loss, on_edge=edges)
    ub = run.unbatch
    out: list[list[StepCarry]] = []
    for k in range(run.num_layers):
        row = []
        for t in range(1, run.T + 1):
            h, direct = run.h(k, t), run.direct_reader(k, t)
            cut = run.cuts.get((t, k))
            sc = StepCarry(
                t=t,
                layer=k,
                dh=ub(h.grad_or_zeros()),
                dh_direct=ub(edges.part(direct, h)),
                dh_next=ub(edges.rest(h, skip=direct)),
                computes={
                    name: ub(run.node(t, k, node).grad_or_zeros())
                    for name, node in _COMPUTES[run.cell].items()
                },
                cut=cut is not None,
                dh_cut=None if cut is None else ub(cut[0].grad_or_zeros()),
                next_from="h_n" if t == run.T and run.end_from(k) == "h_n" else "t+1",
            )
            if run.cell == "lstm":
                c = run.c(k, t)
                sc.dc = ub(c.grad_or_zeros())
                sc.dc_next = ub(edges.rest(c, skip=run.node(t, k, "tanh_c")))
                sc.dc_cut = None if cut is None else ub(cut[1].grad_or_zeros())
            row.append(sc)
        out.append(row)
    return out
