"""Where the nodes of an unrolled graph go: the textbook picture, guaranteed in time order.

A graph without time steps (the 3:1:1 network) flows left to right and needs no help.
An unrolled graph is drawn bottom to top inside each time step (input x_t at the bottom,
layers stacked above it, the step's output and loss on top), the steps side by side from
left to right, and the shared parameters in one column at the far left.

Graphviz's ``dot`` ranks nodes along edges, and orders clusters by a crossing-minimising
heuristic that is free to mirror or shuffle them. So an unrolled graph is drawn in two passes
(:func:`plan` gives the hints, :func:`repack` the second pass):

1. ``dot`` lays out the steps *without* the edges that cross a step boundary (h_{t-1} → step
   t) or leave a parameter — those would make each step climb a stair, or pull all steps
   together. A node left with no rank-setting parent (``W_hh h_{t-1}``) is tied by an
   invisible edge to what feeds its layer from below, so it stays in its layer's band; an
   initial state sits level with the state it starts, a target level with its prediction.
2. :func:`repack` moves each top-level cluster, with everything inside it, into its slot
   (parameters, t=0, t=1, …); edges whose ends moved apart, and the cross-step and parameter
   edges, get a plain S-curve (:meth:`Positions.curve`); ``neato -n2`` draws it all as given.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from rnn_dissect.autograd.engine import Kind, Node
from rnn_dissect.render.paths import step_of, successors

__all__ = ["Layout", "Positions", "plan", "repack"]

GAP = 14.0  # points between neighbouring step clusters after repacking


@dataclass
class Layout:
    """Layout hints for :func:`rnn_dissect.render.graph.to_dot` (ids are node ids)."""

    rankdir: str  # "LR" for plain graphs, "BT" for unrolled ones
    loose: set[tuple[int, int]] = field(
        default_factory=set
    )  # (parent seq, child seq) from a parameter
    carried: set[tuple[int, int]] = field(
        default_factory=set
    )  # (parent seq, child seq) across steps
    hidden: list[tuple[str, str]] = field(default_factory=list)  # invisible rank-setting edges
    same_rank: list[list[str]] = field(default_factory=list)  # groups drawn at one rank
    order: list[str] = field(default_factory=list)  # step sources, left to right (one-pass DOT)


def plan(drawn: Sequence[Node]) -> Layout:
    """Layout hints for the nodes ``drawn`` (in creation order): which edges set ranks
    (:func:`_sort_edges`), where the nodes without such an edge sit (:func:`_anchor`), and the
    order of the steps from left to right."""
    if all(step_of(n) is None for n in drawn):
        return Layout("LR")
    lay = Layout("BT")
    ranked, children = _sort_edges(drawn, lay)
    placed = _anchor(drawn, lay, ranked, children)
    params = [n for n in drawn if n.kind == Kind.PARAMETER]
    lay.hidden.extend((a.id, b.id) for a, b in pairwise(params))
    lay.order = [n.id for n in params[:1]]
    for t in sorted({s for n in drawn if (s := step_of(n)) is not None}):
        first = next(
            (n for n in drawn if step_of(n) == t and not ranked[n.seq] and n.seq not in placed),
            None,
        )
        if first is not None:
            lay.order.append(first.id)
    return lay


def _sort_edges(
    drawn: Sequence[Node], lay: Layout
) -> tuple[dict[int, list[Node]], dict[int, list[Node]]]:
    """Each drawn edge is carried across steps (``lay.carried``), leaves a parameter
    (``lay.loose``) or sets its child's rank. Returns child seq → rank-setting parents, and
    parent seq → children."""
    in_view = {n.seq for n in drawn}
    ranked: dict[int, list[Node]] = defaultdict(list)
    children: dict[int, list[Node]] = defaultdict(list)
    for n in drawn:
        for p in n.parents:
            if p.seq not in in_view:
                continue
            children[p.seq].append(n)
            sp, sn = step_of(p), step_of(n)
            if sp is not None and sn is not None and sp != sn:
                lay.carried.add((p.seq, n.seq))
            elif p.kind == Kind.PARAMETER:
                lay.loose.add((p.seq, n.seq))
            else:
                ranked[n.seq].append(p)
    return ranked, children


def _anchor(
    drawn: Sequence[Node],
    lay: Layout,
    ranked: dict[int, list[Node]],
    children: dict[int, list[Node]],
) -> set[int]:
    """Give a rank to each step's node that no edge ranks: an op (``W_hh h_{t-1}``) is tied
    by invisible edges to what feeds its layer from below, an initial state sits level with
    the state it starts, a target level with its prediction. Returns their seqs."""

    def group(n: Node) -> tuple[int | None, int | None]:
        return step_of(n), n.layer

    feeders: dict[tuple[int | None, int | None], list[Node]] = defaultdict(list)
    for n in drawn:
        for p in ranked[n.seq]:
            # what feeds a layer from below: its input, never a target (that enters on top)
            if group(p) != group(n) and p.kind != Kind.TARGET and p not in feeders[group(n)]:
                feeders[group(n)].append(p)
    in_view = {n.seq for n in drawn}
    successor = successors(drawn)
    placed: set[int] = set()
    for n in drawn:
        if step_of(n) is None or ranked[n.seq]:
            continue
        if n.op != "leaf":  # e.g. W_hh h_{t-1}: stay in the layer's band
            for f in feeders[group(n)]:
                lay.hidden.append((f.id, n.id))
                placed.add(n.seq)
        elif n.kind == Kind.STATE:  # an initial state, level with the state it starts
            nxt = successor(n)
            if nxt is not None:
                lay.same_rank.append([n.id, nxt.id])
                placed.add(n.seq)
        elif n.kind == Kind.TARGET and children[n.seq]:  # a target beside its prediction
            child = children[n.seq][0]
            other = next((p for p in child.parents if p is not n and p.seq in in_view), None)
            if other is not None:
                lay.same_rank.append([n.id, other.id])
                placed.add(n.seq)
    return placed


@dataclass
class Positions:
    """Absolute positions (points) for ``neato -n2``: node id → "x,y"; cluster name →
    (bb, lp); edge id → spline "e,x,y x,y …"; and the whole drawing's bb and title lp."""

    nodes: dict[str, str]
    clusters: dict[str, tuple[str, str | None]]
    edges: dict[str, str]
    bb: str
    lp: str | None
    sizes: dict[str, tuple[float, float]] = field(default_factory=dict)  # node id → (w, h)
    route: bool = True  # let neato route edges without a spline; else :meth:`curve` them

    def curve(self, tail: str, head: str, arrow: float = 7.0) -> str:
        """A spline for an edge dot did not route (across steps, out of a parameter): an
        S-curve from the tail's side into the head's side when the two stand side by side,
        else from top to bottom. Ours, as neato's router takes minutes on big unrolls; lines
        that cross a card pass behind it (``outputorder=edgesfirst``)."""
        (x0, y0), (x1, y1) = (_nums(self.nodes[n])[:2] for n in (tail, head))
        (w0, h0), (w1, h1) = (self.sizes.get(n, (0.0, 0.0)) for n in (tail, head))
        flat = abs(x1 - x0) > (w0 + w1) / 2  # side by side: sides face; else top faces bottom
        if not flat:  # mirror onto the horizontal case: swap x and y
            x0, y0, x1, y1, w0, h0, w1, h1 = y0, x0, y1, x1, h0, w0, h1, w1
        sign = 1.0 if x1 >= x0 else -1.0  # leave towards the head
        ax, bx = x0 + sign * w0 / 2, x1 - sign * w1 / 2  # side of tail, side of head (tip)
        ex = bx - sign * arrow  # the spline ends where the arrowhead starts
        pull = max(abs(ex - ax) / 2, 12.0)
        pts = [(ax, y0), (ax + sign * pull, y0), (ex - sign * pull, y1), (ex, y1)]
        if not flat:
            pts, (bx, y1) = [(y, x) for x, y in pts], (y1, bx)
        return f"e,{bx:.2f},{y1:.2f} " + " ".join(f"{x:.2f},{y:.2f}" for x, y in pts)


def _shift(text: str, dx: float) -> str:
    """Add ``dx`` to every x in a Graphviz point list ("x,y", "e,x,y x,y …", "x1,y1,x2,y2")."""

    def one(m: re.Match[str]) -> str:
        return f"{m.group(1)}{float(m.group(2)) + dx:.2f},{m.group(3)}"

    return re.sub(r"(^|[ ,]|e,|s,)(-?[\d.]+),(-?[\d.]+)", one, text) if dx else text


def _nums(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?[\d.]+(?:e-?\d+)?", text)]


def repack(layout: dict[str, Any], order: Sequence[str], legend: str | None = None) -> Positions:
    """Move top-level clusters (``dot -Tjson`` output ``layout``) into ``order``, left to right.

    Everything inside a cluster moves with it; a node outside every cluster is re-centred over
    the nodes it connects to; the legend (node id ``legend``) goes under the drawing.
    """
    objs = layout["objects"]
    n_sub = layout.get("_subgraph_cnt", 0)
    subs = {o["name"]: o for o in objs[:n_sub]}
    name_of = {i: o.get("name", "") for i, o in enumerate(objs)}
    dx, node_dx = _slots(objs, subs, name_of, order)
    nodes = {
        o["name"]: _shift(o["pos"], node_dx.get(o["name"], 0.0)) for o in objs[n_sub:] if "pos" in o
    }
    size = {
        o["name"]: (72 * float(o.get("width", 0)), 72 * float(o.get("height", 0)))
        for o in objs[n_sub:]
    }
    neighbours: dict[str, list[str]] = defaultdict(list)
    for e in layout.get("edges", []):
        neighbours[name_of[e["tail"]]].append(name_of[e["head"]])
        neighbours[name_of[e["head"]]].append(name_of[e["tail"]])
    recentred = set()
    for name in nodes:  # outside every cluster: over the clustered nodes it connects to
        xs = [_nums(nodes[m])[0] for m in neighbours[name] if m in node_dx]
        if name not in node_dx and name != legend and xs:
            nodes[name] = f"{sum(xs) / len(xs):.2f},{_nums(nodes[name])[1]:.2f}"
            recentred.add(name)
    edges = {}  # splines still valid: both ends moved together
    for e in layout.get("edges", []):
        tail, head = name_of[e["tail"]], name_of[e["head"]]
        same = node_dx.get(tail, 0.0) == node_dx.get(head, 0.0)
        if "id" in e and "pos" in e and same and not {tail, head} & recentred:
            edges[e["id"]] = _shift(e["pos"], node_dx.get(tail, 0.0))
    clusters = {
        name: (
            _shift(s["bb"], dx.get(name, 0.0)),
            _shift(s["lp"], dx.get(name, 0.0)) if "lp" in s else None,
        )
        for name, s in subs.items()
        if "bb" in s
    }

    bb, lp = _frame(layout, clusters, nodes, size, legend)
    return Positions(nodes, clusters, edges, bb, lp, size)


def _slots(
    objs: list[dict[str, Any]],
    subs: dict[str, dict[str, Any]],
    name_of: dict[int, str],
    order: Sequence[str],
) -> tuple[dict[str, float], dict[str, float]]:
    """How far each cluster (name → dx) and each node in one (name → dx) moves so the
    top-level clusters stand in ``order``, left to right, ``GAP`` apart."""
    top = [subs[c] for c in order if c in subs and "bb" in subs[c]]
    dx: dict[str, float] = {}
    node_dx: dict[str, float] = {}
    x = min((_nums(c["bb"])[0] for c in top), default=0.0)
    for c in top:
        x1, _, x2, _ = _nums(c["bb"])
        dx[c["name"]] = x - x1
        x += x2 - x1 + GAP
        stack = [c]
        while stack:  # nested clusters move with their parent
            s = stack.pop()
            dx[s["name"]] = dx[c["name"]]
            node_dx.update({name_of[i]: dx[c["name"]] for i in s.get("nodes", [])})
            stack.extend(objs[i] for i in s.get("subgraphs", []))
    return dx, node_dx


def _frame(
    layout: dict[str, Any],
    clusters: dict[str, tuple[str, str | None]],
    nodes: dict[str, str],
    size: dict[str, tuple[float, float]],
    legend: str | None,
) -> tuple[str, str | None]:
    """The drawing's bounding box and its title's position; the legend (moved in ``nodes``)
    goes under the drawing, left-aligned."""
    boxes = [_nums(bb) for bb, _ in clusters.values()]
    boxes += [
        [x - w / 2, y - h / 2, x + w / 2, y + h / 2]
        for name, p in nodes.items()
        if name != legend
        for (x, y), (w, h) in [(_nums(p)[:2], size[name])]
    ]
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    if legend in nodes:  # under the drawing, left-aligned
        w, h = size[legend]
        nodes[legend] = f"{x1 + w / 2:.2f},{y1 - GAP - h / 2:.2f}"
        y1 -= GAP + h
        x2 = max(x2, x1 + w)
    lp = None
    if "lp" in layout:  # the title: top left
        title_w = 72 * float(layout.get("lwidth", 0))
        title_h = 72 * float(layout.get("lheight", 0))
        lp = f"{x1 + title_w / 2:.2f},{y2 + GAP / 2 + title_h / 2:.2f}"
        y2 += GAP + title_h
    return f"{x1 - 8:.2f},{y1 - 8:.2f},{x2 + 8:.2f},{y2 + 8:.2f}", lp
