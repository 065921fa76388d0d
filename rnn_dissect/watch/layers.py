"""One layer-direction of a watched module, recorded on the engine with torch's gradients as its head.

A watched module is cut into L·D single-layer recordings per group of equal-length sequences.
Each is an ordinary :class:`~rnn_dissect.bptt.unroll.Recording` (so every BPTT analysis reads
it) whose head is the gradient torch sent back, as a loss surrogate:

    L̃ = Σ_t ⟨g_t, h_t⟩ + ⟨g_hn, h_T⟩ [+ ⟨g_cn, c_T⟩]          g_t (G, H), constants

so dL̃/dθ = Σ_t g_tᵀ ∂h_t/∂θ + … = dL/dθ exactly: the chain rule with torch's upstream
gradient as the seed. g_t is the slice of dL/d output for this direction (top layer), or the
gradient the layer above sent to its input x_t = [h^fwd_t, h^rev_t] (lower layers).

Steps t = 1..T are the order the direction *processes* the sequence: position t − 1 forward,
position T − t reverse (the valid sequence reversed, as torch runs it). Node ids are the
char model's (``t{t}.l0.h``; ``l0`` always: one layer per recording; ``config()`` says which).
Head nodes of step t: ``t{t}.g`` (the seed, a constant), ``t{t}.gh`` = g ⊙ h, ``t{t}.loss`` = Σ.
The final states' terms are not a step's: with the total ``loss`` they are the tail (t None,
as a char model's ``loss_sum`` is), ``hn.g``, ``hn.gh``, ``hn.loss`` and for an LSTM ``cn.*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.bptt.unroll import Recording, record
from rnn_dissect.nets.cells import GATES, LayerParams
from rnn_dissect.nets.ids import node_id

__all__ = ["WatchedLayer", "attach_heads", "record_layer"]


@dataclass
class WatchedLayer(Recording):
    """One layer-direction of a watched module over a group of sequences (a Recording)."""

    label: str = field(kw_only=True)  # the module's call ("encoder#0")
    layer: int = field(kw_only=True)  # l in the module
    direction: int = field(kw_only=True)  # 0 forward, 1 reverse
    batch: np.ndarray = field(kw_only=True)  # (G,) the sequences' indices in the module's batch
    positions: np.ndarray = field(kw_only=True)  # (T,) position read at step t (index t − 1)
    weight_names: tuple[str, ...] = field(
        kw_only=True
    )  # torch names W_ih, W_hh, b_ih, b_hh[, W_hr]
    end: np.ndarray | None = field(default=None, kw_only=True)  # (G, S): [g_hn (; g_cn)]
    # a window that stops before the sequence's end: the positions (first, last) of the steps
    # after it, in processing order, whose gradient ``end`` holds (None: ``end`` is dL/dh_n)
    after: tuple[int, int] | None = field(default=None, kw_only=True)

    def end_seed(self, layer: int) -> np.ndarray | None:
        """(G, S): torch's dL/dh_n (and dL/dc_n) of this layer-direction — or, for a window
        that stops before the last step, what reaches h_b (c_b) from the steps after it."""
        return self.end if layer == 0 else None

    def end_from(self, layer: int) -> str | None:
        if layer != 0 or self.end is None or not np.any(self.end):
            return None
        return "h_n" if self.after is None else "after"

    def last_row(self) -> str:
        if self.after is None:
            if self.end_from(0) != "h_n":
                return super().last_row()
            assert self.end is not None  # end_from says it is non-zero
            read = [n for n, part in (("h_n", self.end[..., : self.h_size]),
                                      ("c_n", self.end[..., self.h_size :])) if np.any(part)]  # fmt: skip
            return "the gradient at the last step (" + "'s and ".join(read) + "'s included)"
        p, (q, r) = int(self.positions[-1]), self.after
        after = f"position {q}" if q == r else f"positions {q}…{r}"
        return (
            f"the gradient reaching h at position {p} (the window's last step) from the loss "
            f"read there and from after the window ({after})"
        )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "module": self.label,
            "input_size": int(self.inputs[0].value.shape[-1]),  # I: floats read per step
            "layer": self.layer,
            "direction": "reverse" if self.direction else "forward",
            "sequences": self.batch.tolist(),
            "positions": self.positions.tolist(),
            "loss": "surrogate: Σ_t ⟨g_t, h_t⟩ + ⟨g_hn, h_T⟩ (+ ⟨g_cn, c_T⟩), g = torch's gradients",
        }


def record_layer(
    cell: str,
    nonlinearity: str,
    weights: dict[str, np.ndarray],
    names: tuple[str, ...],
    x: np.ndarray,
    init: dict[str, np.ndarray],
    **meta: Any,
) -> WatchedLayer:
    """Record the forward pass of one layer-direction (no head yet; :func:`attach_heads`).

    weights: torch name → float64 value; names: this layer-direction's four names, five with
    a projected LSTM's ``weight_hr`` (P, H) (a missing bias, ``bias=False``, is a zero
    constant). x: (G, T, I) float64 in processing order. init: ``{"h": (G, P)}`` and
    ``{"c": (G, H)}`` for an LSTM (P = H unless projected). meta: the WatchedLayer fields.
    """
    g = Graph(np.float64)
    params: dict[str, Node] = {}
    nodes = []
    for name in names:
        if name in weights:
            params[name] = g.param(weights[name], id=name, name=name)
            nodes.append(params[name])
        else:  # bias=False: torch adds nothing; a zero that nothing trains
            rows = weights[names[0]].shape[0]
            nodes.append(g.input(np.zeros(rows), id=name, name=f"{name} (absent)"))
    layer = LayerParams(*nodes)
    H = weights[names[1]].shape[0] // len(GATES[cell])  # W_hh (G·H, P): H even when projected
    G, T = x.shape[:2]
    states, steps, xs, cuts = record(
        g,
        cell,
        [layer],
        x,
        {k: v[None] for k, v in init.items()},  # (1, G, H): one layer
        nonlinearity=nonlinearity,
    )
    return WatchedLayer(
        graph=g,
        cell=cell,
        hidden_size=H,
        T=T,
        B=G,
        batched=True,
        truncate=None,
        params=params,
        layers=[layer],
        states=states,
        steps=steps,
        heads={},
        tail=[],
        step_losses={},
        loss=states[0][T][0],  # replaced by attach_heads
        inputs=xs,
        cuts=cuts,
        nonlinearity=nonlinearity,
        weight_names=names,
        **meta,
    )


def attach_heads(
    run: WatchedLayer, seeds: np.ndarray, seed_h: np.ndarray, seed_c: np.ndarray | None
) -> WatchedLayer:
    """Append the surrogate head: seeds (G, T, H) = g_t per step, seed_h (G, H) at h_T,
    seed_c (G, H) at c_T (LSTM). Returns ``run`` with heads, step_losses and loss set."""
    g, T = run.graph, run.T

    def dot(t: int | None, ids: list[str], state: Node, seed: np.ndarray, name: str) -> list[Node]:
        """g (constant), g ⊙ state, ⟨g, state⟩ at step t (None: the tail), ids in that order."""
        s = g.target(np.ascontiguousarray(seed), id=ids[0], name=f"g ({name})")
        gh = g.apply("mul", state, s, id=ids[1], name=f"g ⊙ {name}", kind=Kind.OUTPUT)
        loss = g.apply("sum", gh, id=ids[2], name=f"⟨g, {name}⟩", kind=Kind.LOSS)
        for n in (s, gh, loss):  # a step's head, or the tail: not the layer's cell
            n.t, n.layer = t, None
        return [s, gh, loss]

    for t in range(1, T + 1):
        heads = [node_id(t, part) for part in ("g", "gh", "loss")]
        run.heads[t] = dot(t, heads, run.h(0, t), seeds[:, t - 1], "h")
        run.step_losses[t] = run.heads[t][-1]
    ends = dot(None, ["hn.g", "hn.gh", "hn.loss"], run.h(0, T), seed_h, "h_n")
    if seed_c is not None:
        ends += dot(None, ["cn.g", "cn.gh", "cn.loss"], run.c(0, T), seed_c, "c_n")
    run.end = seed_h if seed_c is None else np.concatenate([seed_h, seed_c], axis=-1)
    total = g.apply(
        "addn", *run.step_losses.values(), *ends[2::3], id="loss", name="L̃", kind=Kind.LOSS
    )
    total.t = total.layer = None
    run.tail = [*ends, total]
    run.loss = total
    return run
