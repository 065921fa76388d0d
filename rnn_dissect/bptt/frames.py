"""Step-through frames for a BPTT walkthrough: forward t = 1..T, then backward t = T..1.

Each frame is plain data naming graph nodes by id, so a renderer can highlight them on the
unrolled graph without knowing anything about cells:

    phase      "forward" | "backward"
    part       "cell" (one layer at one step), "head" (output and loss at one step),
               "loss" (the total over steps)
    t, layer   the step (None for "loss") and the layer (None for head and loss)
    computed   nodes whose value (forward) or gradient (backward) this frame computes
    reads      forward: values made elsewhere that it reads (x_t, h_{t-1}, the layer below)
               backward: gradients arriving from elsewhere (from t + 1, the head, the layer above)
    cache      names of the forward-cache entries (see ``memory``) this frame's ops save
               (forward) or read back (backward)
    carries    forward: what it hands on (h_t, c_t); backward: the nodes outside the frame
               it sends gradient to (h_{t-1}, c_{t-1} — dh_next, dc_next — and the layer below)
    params     parameters it reads (forward) or adds a gradient term to (backward)
    cut        backward only: the carried state is detached here (truncated BPTT)

Order backward: the loss, then per step t = T..1 the head, then layers L−1..0.
"""

from __future__ import annotations

from typing import Any

from rnn_dissect.autograd.engine import Kind, Node
from rnn_dissect.bptt.memory import CacheEntry
from rnn_dissect.bptt.recording import Recording

__all__ = ["frames"]


def frames(run: Recording, cache: list[CacheEntry]) -> list[dict[str, Any]]:
    """Every frame of the walkthrough, forward then backward."""
    saved_by: dict[str, list[str]] = {}  # node id → names of cache entries its op saves
    for e in cache:
        for nid in e.saved_by:
            saved_by.setdefault(nid, []).append(e.name)
    groups: list[tuple[str, int | None, int | None, list[Node]]] = []
    for t in range(1, run.T + 1):
        groups += [("cell", t, k, run.steps[(t, k)]) for k in range(run.num_layers)]
        if t in run.heads:
            groups.append(("head", t, None, run.heads[t]))
    if run.tail:
        groups.append(("loss", None, None, run.tail))
    group_of = {n.seq: i for i, grp in enumerate(groups) for n in grp[3]}
    handed: set[int] = set()  # nodes read by another group: forward hands them on
    group = group_of.get
    for n in run.graph.nodes:
        mine = group(n.seq, -2)
        for p in n.parents:
            if group(p.seq, -1) != mine:
                handed.add(p.seq)
    fwd, bwd = zip(*(_frames(*grp, saved_by, handed) for grp in groups), strict=True)
    return list(fwd) + list(reversed(bwd))


def _frames(
    part: str,
    t: int | None,
    layer: int | None,
    nodes: list[Node],
    saved_by: dict[str, list[str]],
    read_elsewhere: set[int],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The forward and the backward frame of one group of nodes."""
    inside = {n.seq for n in nodes}
    computed = [n for n in nodes if n.op != "leaf"]
    leaves = [n for n in nodes if n.op == "leaf"]  # targets, the 1/T constant
    first: dict[int, Node] = {}  # parents from outside the group, once each, first-read order
    kept: dict[str, None] = {}  # cache entries the computed nodes save, once each, in order
    for n in computed:
        for p in n.parents:
            if p.seq not in inside and p.seq not in first:
                first[p.seq] = p
        kept.update(dict.fromkeys(saved_by.get(n.id, ())))
    params, others = [], []
    for p in first.values():
        if p.kind is Kind.PARAMETER:
            params.append(p.id)
        else:
            others.append(p)
    others += leaves
    cache = list(kept)
    # read outside the group: forward hands these on, backward receives their gradient
    handed = [n.id for n in computed if n.seq in read_elsewhere]
    sends = [p for p in others if p.requires_grad]
    head = {"part": part, "t": t, "layer": layer}
    forward = {
        "phase": "forward",
        **head,
        "computed": [n.id for n in computed],
        "reads": [p.id for p in others],
        "cache": cache,
        "carries": handed,
        "params": params,
    }
    backward = {
        "phase": "backward",
        **head,
        "computed": [n.id for n in reversed(computed)],
        "reads": handed,
        "cache": cache,
        "carries": [p.id for p in sends],
        "params": params,
        "cut": any(p.op == "detach" for p in sends),
    }
    return forward, backward
