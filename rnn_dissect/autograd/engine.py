"""The recorded computation graph: tensor-valued nodes, an iterative backward, replay.

A :class:`Graph` records every operation applied to its nodes, in creation order. Each
:class:`Node` is a small typed record — stable id, human name, kind, op, ordered parents,
time step and layer, forward value, gradient, and what its backward saved — so that every
later view (graph drawing, BPTT walkthrough, memory tables) can be rebuilt from it.

    >>> import numpy as np
    >>> g = Graph()
    >>> w = g.param(np.array([0.5]), name="w")
    >>> x = g.input(np.array([2.0]), name="x")
    >>> y = (w * x).tanh()
    >>> g.backward(y.sum())
    >>> round(float(w.grad[0]), 6)  # d tanh(wx)/dw = x (1 - tanh²(wx))
    0.839949

Creation order is already a topological order (a node only ever refers to nodes made
before it), so backward walks the reachable nodes in reverse creation order: iterative,
deterministic, and safe for unrolls of any length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from rnn_dissect.autograd import ops as _ops

__all__ = ["Graph", "Kind", "Node", "SavedTensor"]


class Kind(str, Enum):
    """What a node *is* in the network, independent of the op that made it."""

    INPUT = "input"
    TARGET = "target"
    PARAMETER = "parameter"
    STATE = "state"
    PREACT = "pre-activation"
    ACTIVATION = "activation"
    GATE = "gate"
    CELL = "cell"
    OUTPUT = "output"
    LOSS = "loss"


_LEAF_KINDS = {Kind.INPUT, Kind.TARGET, Kind.PARAMETER, Kind.STATE}
_OP_KINDS = {name: Kind(rule.kind) for name, rule in _ops.OPS.items()}  # each op's default


@dataclass(frozen=True)
class SavedTensor:
    """One tensor an op's backward needs. ``ref`` is the id of the node whose value it is
    (a parent, or the node itself), or None when the op had to keep an extra array."""

    name: str
    ref: str | None
    shape: tuple[int, ...]
    nbytes: int


@dataclass(eq=False, repr=False, slots=True)
class Node:
    """One tensor in the graph. Identity is the object; ``id`` is its stable name."""

    graph: Graph
    seq: int  # position in creation order (a topological order)
    id: str
    name: str
    kind: Kind
    op: str  # "leaf" for inputs and parameters, else a key of ops.OPS
    parents: tuple[Node, ...]
    value: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    t: int | None = None
    layer: int | None = None
    grad: np.ndarray | None = None
    saved: dict[str, Any] = field(default_factory=dict)  # what backward reads

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def requires_grad(self) -> bool:
        """Targets and integer tensors (indices) carry no gradient."""
        return self.kind != Kind.TARGET and self.value.dtype.kind == "f"  # np.floating

    def grad_or_zeros(self) -> np.ndarray:
        """dL/d(this node) after backward, zeros of its shape where no gradient reached it
        (``grad`` stays None then, as torch leaves ``.grad`` None)."""
        return np.zeros_like(self.value) if self.grad is None else self.grad

    def saved_tensors(self) -> list[SavedTensor]:
        """What this node's backward needs, each tensor tied to the node that owns it."""
        owners = [self, *self.parents]
        out = []
        for name, arr in self.saved.items():
            if not isinstance(arr, np.ndarray):
                continue  # shapes and counts: metadata, not memory
            ref = next((n.id for n in owners if n.value is arr), None)
            out.append(SavedTensor(name, ref, tuple(arr.shape), int(arr.nbytes)))
        return out

    def __repr__(self) -> str:
        return f"Node({self.id!r}, {self.kind.value}, op={self.op}, shape={self.shape})"

    # Operator sugar: each builds an unnamed node through the graph.
    def __add__(self, other: Node | float) -> Node:
        return self.graph.apply("add", self, other)

    def __radd__(self, other: float) -> Node:
        return self.graph.apply("add", self, other)

    def __sub__(self, other: Node | float) -> Node:
        return self.graph.apply("sub", self, other)

    def __rsub__(self, other: float) -> Node:
        return self.graph.apply("sub", other, self)

    def __mul__(self, other: Node | float) -> Node:
        return self.graph.apply("mul", self, other)

    def __rmul__(self, other: float) -> Node:
        return self.graph.apply("mul", self, other)

    def __neg__(self) -> Node:
        return self.graph.apply("mul", self, -1.0)

    def __matmul__(self, other: Node) -> Node:
        return self.graph.apply("matmul", self, other)

    def __getitem__(self, index: Any) -> Node:
        return self.graph.apply("slice", self, index=index)

    @property
    def T(self) -> Node:
        return self.graph.apply("transpose", self)

    def tanh(self) -> Node:
        return self.graph.apply("tanh", self)

    def sigmoid(self) -> Node:
        return self.graph.apply("sigmoid", self)

    def relu(self) -> Node:
        return self.graph.apply("relu", self)

    def exp(self) -> Node:
        return self.graph.apply("exp", self)

    def log(self) -> Node:
        return self.graph.apply("log", self)

    def sum(self, axis: int | None = None) -> Node:
        return self.graph.apply("sum", self, axis=axis)

    def mean(self, axis: int | None = None) -> Node:
        return self.graph.apply("mean", self, axis=axis)


class Graph:
    """An append-only record of nodes. Build with the leaf constructors and :meth:`apply`
    (or operators on nodes), then call :meth:`backward` on a scalar loss."""

    def __init__(self, dtype: Any = np.float64) -> None:
        self.dtype = np.dtype(dtype)
        self.nodes: list[Node] = []
        self._by_id: dict[str, Node] = {}
        self._auto: dict[str, int] = {}

    # ----------------------------------------------------------------- building
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __getitem__(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._by_id

    def _new_id(self, base: str, named: bool) -> str:
        """A named node keeps its name as id while it is free (then ``name.1``, ``name.2``);
        an unnamed one is its op and a counter (``tanh0``)."""
        if named and base not in self._by_id:
            return base
        n = self._auto.get(base, 1 if named else 0)
        sep = "." if named else ""
        while f"{base}{sep}{n}" in self._by_id:
            n += 1
        self._auto[base] = n + 1
        return f"{base}{sep}{n}"

    def _add(
        self,
        node_id: str | None,
        name: str,
        kind: Kind,
        op: str,
        parents: tuple[Node, ...],
        value: np.ndarray,
        attrs: dict[str, Any],
        t: int | None,
        layer: int | None,
        saved: dict[str, Any],
    ) -> Node:
        if not node_id:
            node_id = self._new_id(name or (kind.value if op == "leaf" else op), named=bool(name))
        by_id = self._by_id
        if node_id in by_id:
            raise ValueError(f"duplicate node id {node_id!r}")
        nodes = self.nodes
        node = Node(self, len(nodes), node_id, name or node_id, kind, op, parents, value,
                    attrs, t, layer, None, saved)  # fmt: skip
        nodes.append(node)
        by_id[node_id] = node
        return node

    def leaf(
        self,
        value: Any,
        *,
        kind: Kind,
        name: str = "",
        id: str | None = None,
        t: int | None = None,
        layer: int | None = None,
    ) -> Node:
        """A node with no parents: an input, target, parameter or initial state."""
        arr = np.asarray(value)
        if arr.dtype.kind not in "iu":  # integers stay: indices, class targets
            arr = arr.astype(self.dtype)
        return self._add(id, name, Kind(kind), "leaf", (), arr, {}, t, layer, {})

    def input(self, value: Any, **kw: Any) -> Node:
        return self.leaf(value, kind=Kind.INPUT, **kw)

    def param(self, value: Any, **kw: Any) -> Node:
        return self.leaf(value, kind=Kind.PARAMETER, **kw)

    def target(self, value: Any, **kw: Any) -> Node:
        return self.leaf(value, kind=Kind.TARGET, **kw)

    def state(self, value: Any, **kw: Any) -> Node:
        return self.leaf(value, kind=Kind.STATE, **kw)

    def apply(
        self,
        op: str,
        *parents: Node | float,
        name: str = "",
        kind: Kind | str | None = None,
        id: str | None = None,
        t: int | None = None,
        layer: int | None = None,
        **attrs: Any,
    ) -> Node:
        """Run op ``op`` forward on the parents' values and record the result.

        Python scalars among the parents are lifted to constant input nodes. ``t`` and
        ``layer`` default to the first parent that has them, so a whole time step inherits
        its position from its inputs.
        """
        rule = _ops.OPS[op]
        nodes: tuple[Node, ...] = parents  # type: ignore[assignment]  # checked just below
        for p in parents:
            if type(p) is not Node:
                nodes = tuple(
                    p
                    if isinstance(p, Node)
                    else self.leaf(np.asarray(p), kind=Kind.INPUT, name="const")
                    for p in parents
                )
                break
        value, saved = rule.forward(*[p.value for p in nodes], **attrs)
        if t is None:
            for p in nodes:
                if p.t is not None:
                    t = p.t
                    break
        if layer is None:
            for p in nodes:
                if p.layer is not None:
                    layer = p.layer
                    break
        if kind is None:
            kind = _OP_KINDS[op]
        elif type(kind) is not Kind:
            kind = Kind(kind)
        return self._add(id, name, kind, op, nodes, value, attrs, t, layer, saved)

    # ----------------------------------------------------------------- backward
    def reachable(self, root: Node) -> list[Node]:
        """Every node ``root`` depends on (itself included), in creation order.

        An explicit stack instead of recursion: a 100,000-step chain is fine.
        """
        seen = bytearray(len(self.nodes))  # seen[seq] = 1: marks in creation order
        seen[root.seq] = 1
        stack = [root]
        while stack:
            node = stack.pop()
            for p in node.parents:
                if not seen[p.seq]:
                    seen[p.seq] = 1
                    stack.append(p)
        return [n for n, m in zip(self.nodes, seen, strict=True) if m]

    def zero_grad(self) -> None:
        for node in self.nodes:
            node.grad = None

    def backward(
        self,
        root: Node,
        seed: np.ndarray | None = None,
        on_edge: Callable[[Node, Node, np.ndarray], None] | None = None,
    ) -> None:
        """Reverse-mode sweep: dL/dn for every node n that ``root`` depends on.

        Gradients are (re)set, not added to: each call is one clean backward pass. A node
        used many times (a weight shared over 1,000 steps) sums its children's
        contributions in reverse creation order, so the result is deterministic.

        ``on_edge(child, parent, g)``, if given, sees each edge's part of ``parent.grad``
        as it is added — what :meth:`edge_grad` recomputes afterwards — so per-step splits
        cost no second VJP. ``g`` is read-only.
        """
        if seed is None:
            if root.value.size != 1:
                raise ValueError(f"backward from non-scalar {root.id} needs a seed gradient")
            seed = np.ones_like(root.value)
        order = self.reachable(root)
        for node in order:
            node.grad = None
        root.grad = np.asarray(seed, dtype=root.value.dtype).reshape(root.value.shape)
        owned: set[int] = set()  # grads this sweep allocated itself: safe to add into in place
        ops, target = _ops.OPS, Kind.TARGET
        for node in reversed(order):
            if node.op == "leaf" or node.grad is None:
                continue
            parents = node.parents
            grads = ops[node.op].backward(node.grad, node.saved, **node.attrs)
            for parent, g in zip(parents, grads[: len(parents)], strict=True):
                # what _vjp gives, for the parents that take a gradient (Node.requires_grad)
                if g is None or parent.kind is target or parent.value.dtype.kind != "f":
                    continue
                if g.shape != parent.value.shape:
                    g = _ops.unbroadcast(g, parent.value.shape)
                if on_edge is not None:
                    on_edge(node, parent, g)
                if parent.grad is None:
                    parent.grad = g  # may be shared with the child's grad: never mutated
                elif parent.seq in owned:
                    parent.grad += g  # same sum, same order, no new array per step
                else:
                    parent.grad = parent.grad + g
                    owned.add(parent.seq)

    def _vjp(self, node: Node) -> Sequence[np.ndarray | None]:
        rule = _ops.OPS[node.op]
        grads = rule.backward(node.grad, node.saved, **node.attrs)
        return [
            None if g is None else _ops.unbroadcast(g, p.value.shape)
            for p, g in zip(node.parents, grads[: len(node.parents)], strict=True)
        ]

    def edge_grad(self, child: Node, parent: Node) -> np.ndarray:
        """The part of ``parent.grad`` that arrived through ``child`` (after backward).

        Recomputed from what ``child`` saved, so nothing extra is stored during backward.
        This is how a shared weight's gradient splits into per-time-step contributions,
        and dL/dh_t into its direct and recurrent parts.
        """
        if child.grad is None:
            return np.zeros_like(parent.value)
        total = np.zeros_like(parent.value)
        for p, g in zip(child.parents, self._vjp(child), strict=True):
            if p is parent and g is not None:
                total = total + g
        return total

    def children(self, node: Node) -> list[Node]:
        """Nodes that take ``node`` as a parent, in creation order."""
        return [n for n in self.nodes[node.seq + 1 :] if any(p is node for p in n.parents)]

    # ----------------------------------------------------------------- replay
    def forward(self, nodes: Sequence[Node] | None = None) -> None:
        """Recompute the values of ``nodes`` (default: all), in creation order, from their
        parents. Used by :mod:`rnn_dissect.autograd.gradcheck` after perturbing a leaf."""
        for node in self.nodes if nodes is None else nodes:
            if node.op == "leaf":
                continue
            node.value, node.saved = _ops.OPS[node.op].forward(
                *(p.value for p in node.parents), **node.attrs
            )

    # ----------------------------------------------------------------- views
    def select(
        self,
        *,
        kind: Kind | str | None = None,
        t: int | None = None,
        layer: int | None = None,
    ) -> list[Node]:
        """Nodes matching every given field, in creation order."""
        k = Kind(kind) if kind is not None else None
        return [
            n
            for n in self.nodes
            if (k is None or n.kind == k)
            and (t is None or n.t == t)
            and (layer is None or n.layer == layer)
        ]

    def params(self) -> list[Node]:
        return self.select(kind=Kind.PARAMETER)

    def to_dict(self, nodes: Iterable[Node] | None = None) -> list[dict[str, Any]]:
        """Every node as plain JSON-able data (see ``dissection.json``)."""
        return [node_to_dict(n) for n in (self.nodes if nodes is None else nodes)]


def node_to_dict(n: Node, arrays: bool = False) -> dict[str, Any]:
    """One node as ``dissection.json`` writes it: value and grad as nested lists, or with
    ``arrays`` as the arrays themselves (for a writer that packs them)."""
    value, grad = (n.value, n.grad) if arrays else (n.value.tolist(), _tolist(n.grad))
    return {
        "id": n.id,
        "name": n.name,
        "kind": n.kind.value,
        "op": n.op,
        "parents": [p.id for p in n.parents],
        "t": n.t,
        "layer": n.layer,
        "shape": list(n.shape),
        "value": value,
        "grad": grad,
        "saved": [
            {"name": s.name, "ref": s.ref, "shape": list(s.shape), "bytes": s.nbytes}
            for s in n.saved_tensors()
        ],
    }


def _tolist(a: np.ndarray | None) -> Any:
    return None if a is None else a.tolist()
