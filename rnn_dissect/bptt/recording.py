"""A recording: stacked recurrent layers unrolled step by step into one engine graph.

Whatever model the layers sit in — the char model (:mod:`rnn_dissect.bptt.unroll`) or a
watched torch module (:mod:`rnn_dissect.watch`) — :func:`record` writes T steps of L layers
into a :class:`~rnn_dissect.autograd.engine.Graph` and a :class:`Recording` indexes what it
wrote: every BPTT analysis (stepgrads, carry, gradflow, memory, frames) reads one.

Node ids (:mod:`rnn_dissect.nets.ids`): initial states ``t0.l{k}.h`` / ``t0.l{k}.c`` (STATE
leaves with their own gradient), inputs ``t{t}.x``, cell nodes ``t{t}.l{k}.*`` (see
:mod:`rnn_dissect.nets.cells`); with truncation after every K steps each layer's state passes
through a ``detach`` node (``t{K}.l{k}.h_detach``): the value flows on, the gradient stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_dissect.autograd.engine import Graph, Node
from rnn_dissect.nets.cells import CELLS, STATES, LayerParams, rnn_step
from rnn_dissect.nets.ids import node_id

__all__ = ["Recorded", "Recording", "record"]


@dataclass
class Recording:
    """Stacked recurrent layers recorded step by step into one graph, whatever model they sit
    in: what every BPTT analysis (stepgrads, carry, gradflow, memory, frames) reads.

    Node lists are indexed by t = 1..T (index 0 = initial state). ``heads[t]`` are the nodes
    that read the top layer's state at step t and make the loss term ``step_losses[t]``; the
    char model's head is a linear layer and cross-entropy (:class:`Unrolled`), a watched torch
    module's is ⟨h_t, g_t⟩ with the gradient g_t torch sent to its output
    (:mod:`rnn_dissect.watch`).
    """

    graph: Graph
    cell: str  # "rnn" | "lstm" | "gru"
    hidden_size: int  # H (c_t and the gates; h_t too unless projected: :attr:`h_size`)
    T: int  # time steps
    B: int  # batch (1 for unbatched input)
    batched: bool  # False: inputs were (T,) / (T, I); arrays are reported without the batch axis
    truncate: int | None  # K: state detached after every K steps
    params: dict[str, Node]  # torch name → parameter leaf
    layers: list[LayerParams]  # [layer] → its W_ih, W_hh, b_ih, b_hh nodes
    states: list[list[tuple[Node, ...]]]  # [layer][t] → (h,) or (h, c); t = 0 is h0 (c0)
    steps: dict[tuple[int, int], list[Node]]  # (t, layer) → the nodes that cell step recorded
    heads: dict[int, list[Node]]  # t → head and per-step loss nodes (logits, p, loss)
    tail: list[Node]  # nodes after the last step that combine the losses (loss_sum, loss)
    step_losses: dict[int, Node]  # t → the node whose value is L̄_t (only t = T for many-to-one)
    loss: Node  # the scalar total
    inputs: list[Node] = field(default_factory=list)  # t{t}.x, t = 1..T (index t - 1)
    cuts: dict[tuple[int, int], tuple[Node, ...]] = field(default_factory=dict)  # detach nodes
    nonlinearity: str = "tanh"  # vanilla RNN only: tanh | relu
    _children: dict[int, list[Node]] | None = field(default=None, repr=False)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def proj_size(self) -> int:
        """P of a projected LSTM (h_t = W_hr m_t has P features; c_t and the gates H), else 0."""
        W_hr = self.layers[0].W_hr if self.layers else None
        return 0 if W_hr is None else int(W_hr.value.shape[0])

    @property
    def h_size(self) -> int:
        """Features of h_t: P for a projected LSTM, else H."""
        return self.proj_size or self.hidden_size

    @property
    def state_size(self) -> int:
        """S: features of the whole state, h (RNN, GRU) or [h; c] (LSTM: 2H, or P + H)."""
        return self.h_size + (self.hidden_size if self.cell == "lstm" else 0)

    @property
    def n_states(self) -> int:
        """State tensors per layer: 2 for LSTM (h, c), else 1."""
        return len(STATES[self.cell])

    def node(self, t: int, layer: int | None, name: str) -> Node:
        """The node ``t{t}.l{layer}.{name}`` (see :mod:`rnn_dissect.nets.ids`)."""
        return self.graph[node_id(t, name, layer)]

    def h(self, layer: int, t: int) -> Node:
        return self.states[layer][t][0]

    def c(self, layer: int, t: int) -> Node:
        return self.states[layer][t][1]

    def children(self, node: Node) -> list[Node]:
        """Nodes that read ``node``, in creation order (an index built once, O(edges))."""
        if self._children is None:
            self._children = {}
            for n in self.graph.nodes:
                for p in dict.fromkeys(n.parents):  # a node reading p twice is one child
                    self._children.setdefault(p.seq, []).append(n)
        return self._children.get(node.seq, [])

    def direct_reader(self, layer: int, t: int) -> Node | None:
        """The node that reads h^layer_t at the same step: the layer above's ``W_ih x``, or
        the head at t (None where no head reads step t, e.g. many-to-one before T)."""
        if layer + 1 < self.num_layers:
            return self.node(t, layer + 1, "xw")
        h = self.h(layer, t)
        return next((n for n in self.heads.get(t, ()) if any(p is h for p in n.parents)), None)

    def end_seed(self, layer: int) -> np.ndarray | None:
        """(B, S): the gradient that reaches the last state s^layer_T = [h_T (; c_T)] from
        outside the per-step heads, or None. The char model has none (its loss reads h_t only
        through the heads); a watched module's is torch's dL/dh_n (, dL/dc_n) — a classifier
        that reads h_n gets its whole gradient there (:mod:`rnn_dissect.watch.layers`)."""
        return None

    def end_from(self, layer: int) -> str | None:
        """Where :meth:`end_seed` comes from, as data the words read: None (no end seed, or
        all 0), "h_n" (the final state h_n (, c_n), read by the model after the last step) or
        "after" (a window that stops before the sequence's end: what the steps after it send)."""
        return None

    def last_row(self) -> str:
        """Row T of the lag matrix in words (the verdict's subject): L_T's own gradient, or
        for a window that stops early, what reaches its last step from there and after it."""
        return "L_T's own gradient"

    def unbatch(self, a: np.ndarray, axis: int = 0) -> np.ndarray:
        """Drop the batch axis for unbatched input (torch's unbatched convention); a view."""
        if self.batched:
            return a
        return a[0] if axis == 0 else a[(slice(None),) * axis + (0,)]

    def grads(self) -> dict[str, np.ndarray]:
        """dL/dθ under torch names, plus ``h0`` (L, B, H) and for LSTM ``c0`` — (L, H)
        without batch axis for unbatched input. Call after :func:`bptt` / backward."""
        out = {name: n.grad_or_zeros() for name, n in self.params.items()}
        out["h0"] = self.unbatch(
            np.stack([self.h(k, 0).grad_or_zeros() for k in range(self.num_layers)]), 1
        )
        if self.cell == "lstm":
            c0 = np.stack([self.c(k, 0).grad_or_zeros() for k in range(self.num_layers)])
            out["c0"] = self.unbatch(c0, 1)
        return out

    def config(self) -> dict[str, Any]:
        """What was recorded, for ``dissection.json``'s ``config``."""
        return {
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "nonlinearity": self.nonlinearity,
            "steps": self.T,
            "batch": self.B if self.batched else None,
            "truncate": self.truncate,
        } | ({"proj_size": self.proj_size} if self.proj_size else {})


Recorded = tuple[
    list[list[tuple[Node, ...]]],  # states [layer][t]
    dict[tuple[int, int], list[Node]],  # steps (t, layer) → nodes
    list[Node],  # inputs t{t}.x
    dict[tuple[int, int], tuple[Node, ...]],  # truncation cuts
]


def record(
    g: Graph,
    cell: str,
    layers: list[LayerParams],
    x: np.ndarray,
    init: dict[str, np.ndarray],
    *,
    truncate: int | None = None,
    nonlinearity: str = "tanh",
    head: Callable[[int, Node], None] | None = None,
) -> Recorded:
    """Record T steps of the stacked layers into ``g``: the forward pass, no loss.

    x: (B, T) indices or (B, T, I) floats. init: ``{"h": (L, B, H)}`` (and ``"c"`` for an
    LSTM), the initial states, recorded as STATE leaves ``t0.l{k}.h`` with their own
    gradient. ``head(t, h_top)``, if given, is called after step t, to record what reads the
    top layer there. Returns the states, each step's nodes, the input leaves and the cuts.
    """
    T, L = x.shape[1], len(layers)
    states = [
        [tuple(g.state(init[s][k], id=node_id(0, s, k), name=f"{s}0", t=0, layer=k) for s in init)]
        for k in range(L)
    ]
    step = CELLS[cell]
    steps: dict[tuple[int, int], list[Node]] = {}
    cuts: dict[tuple[int, int], tuple[Node, ...]] = {}
    xs: list[Node] = []
    for t in range(1, T + 1):
        inp = g.input(
            np.ascontiguousarray(x[:, t - 1]), id=node_id(t, "x"), name="x", t=t
        )  # (B,) or (B, I)
        xs.append(inp)
        for k in range(L):
            start = len(g.nodes)
            prev = cuts.get((t - 1, k), states[k][t - 1])  # detached after a chunk ends
            new: tuple[Node, ...]
            if nonlinearity == "relu":
                new = rnn_step(g, layers[k], inp, prev, t, k, nonlinearity="relu")
            else:
                new = step(g, layers[k], inp, prev, t, k)
            states[k].append(new)
            if truncate is not None and t % truncate == 0 and t < T:
                cuts[(t, k)] = tuple(
                    g.apply(
                        "detach", s, id=f"{s.id}_detach", name=f"{s.name} (detached)", t=t, layer=k
                    )
                    for s in new
                )
            steps[(t, k)] = g.nodes[start:]
            inp = new[0]
        if head is not None:
            head(t, inp)
    return states, steps, xs, cuts
