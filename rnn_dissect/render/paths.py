"""Which nodes carry state through time: a node's successor one step later, and the
h_{t-1} → h_t state path (and an LSTM's c_{t-1} → c_t highway) that drawings highlight."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.nets import ids
from rnn_dissect.render.cards import PATH_COLOURS

__all__ = ["state_path", "step_of", "successors"]


def step_of(n: Node) -> int | None:
    """The time step a node is drawn in (parameters belong to none)."""
    return None if n.kind == Kind.PARAMETER else n.t


def successors(drawn: Sequence[Node]) -> Callable[[Node], Node | None]:
    """n ↦ the same quantity one step later: the node at step t+1 whose id ends the same
    way after ``t{t}.`` (``t0.l0.h`` → ``t1.l0.h``), else the one with the same name and layer."""
    by_id = {n.id: n for n in drawn}
    by_name = {(n.name, n.layer, n.t): n for n in drawn if step_of(n) is not None}

    def successor(n: Node) -> Node | None:
        if n.t is None:
            return None
        parsed = ids.parse(n.id)
        nxt = by_id.get(ids.shift(n.id, 1) or "") if parsed and parsed.t == n.t else None
        if nxt is None or step_of(nxt) is None:
            nxt = by_name.get((n.name, n.layer, n.t + 1))
        return nxt

    return successor


def state_path(graph: Graph, nodes: Sequence[Node] | None = None) -> dict[str, str]:
    """Node id → colour for every node on a path from a carried state to its next value.

    A *carried* node is one read by a later time step (h_{t-1}, and an LSTM's c_{t-1}); its
    next value is the same node at step t (``t1.l0.c`` after ``t0.l0.c``, else the one with
    the same name and layer). The nodes of step t on a path between the two are coloured
    ``PATH_COLOURS["state"]``, or ``["cell"]`` when the next value has kind CELL (the highway
    wins where the two meet, so c_{t-1} → f⊙c → c_t stands out). Initial states (t=0) take
    part when their id (``t0.l0.h``) or their name matches the state they start.
    """
    drawn = list(graph.nodes if nodes is None else nodes)
    in_view = {n.seq for n in drawn}
    children: dict[int, list[Node]] = defaultdict(list)
    for n in drawn:
        for p in n.parents:
            if p.seq in in_view:
                children[p.seq].append(n)
    successor = successors(drawn)
    pairs = []
    for prev in drawn:
        if step_of(prev) is None or prev.t is None:
            continue
        if not any(c.t is not None and c.t > prev.t for c in children[prev.seq]):
            continue  # not carried into a later step
        nxt = successor(prev)
        if nxt is not None:
            pairs.append((prev, nxt))
    colour: dict[str, str] = {}
    for prev, nxt in sorted(pairs, key=lambda pn: pn[1].kind == Kind.CELL):  # highway last
        on_path = _between(prev, nxt, children, in_view)
        c = PATH_COLOURS["cell" if nxt.kind == Kind.CELL else "state"]
        colour.update({m.id: c for m in drawn if m.seq in on_path})
    return colour


def _between(
    prev: Node, nxt: Node, children: Mapping[int, list[Node]], in_view: set[int]
) -> set[int]:
    """Seqs of the nodes on a path prev → … → nxt that stay inside nxt's step (c_{t-1} also
    reaches c_t through h_{t-1}, and that detour is not the highway)."""
    down = _walk(prev, lambda m: children[m.seq], lambda m: m.seq <= nxt.seq and m.t == nxt.t)
    up = _walk(nxt, lambda m: m.parents, lambda m: prev.seq <= m.seq and m.seq in in_view)
    return down & up


def _walk(
    start: Node, step: Callable[[Node], Iterable[Node]], keep: Callable[[Node], bool]
) -> set[int]:
    """Seqs of nodes reachable from ``start`` through ``step`` while ``keep`` holds."""
    seen, stack = {start.seq}, [start]
    while stack:
        for m in step(stack.pop()):
            if m.seq not in seen and keep(m):
                seen.add(m.seq)
                stack.append(m)
    return seen
