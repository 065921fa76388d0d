"""Central-difference gradient check for any recorded graph.

For each checked leaf w and each element w_i:

    dL/dw_i ≈ (L(w_i + ε) − L(w_i − ε)) / 2ε        (error O(ε²))

The graph is replayed from its leaves (``Graph.forward``), so the check exercises the very
ops that were recorded, not a second implementation of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnn_dissect.autograd.engine import Graph, Kind, Node

__all__ = ["GradCheck", "gradcheck", "numerical_grad"]


@dataclass(frozen=True)
class GradCheck:
    """Result for one leaf: analytic and numerical gradients and their max relative error."""

    id: str
    analytic: np.ndarray
    numeric: np.ndarray
    max_rel_error: float


def numerical_grad(graph: Graph, loss: Node, wrt: Node, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``loss`` with respect to every element of ``wrt``."""
    if wrt.op != "leaf":
        raise ValueError(f"{wrt.id} is not a leaf; perturb the leaves it comes from")
    nodes = graph.reachable(loss)
    original = wrt.value
    grad = np.zeros_like(original, dtype=np.float64)
    try:
        for i in np.ndindex(original.shape):
            vals = []
            for step in (eps, -eps):
                wrt.value = original.copy()
                wrt.value[i] += step
                graph.forward(nodes)
                vals.append(float(loss.value))
            grad[i] = (vals[0] - vals[1]) / (2 * eps)
    finally:
        wrt.value = original
        graph.forward(nodes)
    return grad


def gradcheck(
    graph: Graph,
    loss: Node,
    wrt: Sequence[Node] | None = None,
    eps: float = 1e-6,
) -> list[GradCheck]:
    """Compare backward's gradients with central differences for each leaf in ``wrt``
    (default: every parameter and initial state ``loss`` depends on).

    The error is max_i |a_i − n_i| / max_i max(|a_i|, |n_i|): relative to the tensor's
    largest entry, so entries that are zero up to rounding do not inflate it.
    """
    graph.backward(loss)
    if wrt is None:
        wrt = [
            n
            for n in graph.reachable(loss)
            if n.op == "leaf" and n.kind in (Kind.PARAMETER, Kind.STATE) and n.requires_grad
        ]
    results = []
    for node in wrt:
        analytic = node.grad_or_zeros().copy()
        numeric = numerical_grad(graph, loss, node, eps)
        scale = max(
            float(np.abs(analytic).max(initial=0.0)), float(np.abs(numeric).max(initial=0.0))
        )
        err = float(np.abs(analytic - numeric).max(initial=0.0)) / max(scale, 1e-300)
        results.append(GradCheck(node.id, analytic, numeric, err))
    return results
