"""The ``dissection.json`` document: every node of a recorded graph as plain data.

Deterministic: keys sorted, floats written by Python's shortest round-trip repr, so the same
inputs give byte-identical files. Non-finite numbers (which a diverging model can produce)
are written as the strings "NaN", "Infinity" and "-Infinity", keeping the file valid JSON.

Top-level fields: ``format``, ``version``, ``model``, ``dtype``, ``loss`` (float),
``params`` (id → {shape, value, grad}), ``nodes`` (list of {id, name, kind, op, parents, t,
layer, shape, value, grad, saved}, in creation order), plus what the model adds (the MLP
adds ``sizes``, ``inputs``, ``sgd``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from rnn_dissect.autograd.engine import Graph, Node, node_to_dict

__all__ = ["FORMAT", "VERSION", "document", "dumps"]

FORMAT = "rnn-dissect/dissection"
VERSION = 1


def _finite(x: Any) -> Any:
    """Replace non-finite floats by their JSON-safe string names, recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    return x


def document(graph: Graph, loss: Node, *, model: str, **extra: Any) -> dict[str, Any]:
    """The dissection of ``graph`` after ``graph.backward(loss)``, as JSON-able data."""
    params = {
        n.id: {
            "shape": list(n.shape),
            "value": n.value.tolist(),
            "grad": None if n.grad is None else n.grad.tolist(),
        }
        for n in graph.params()
    }
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model": model,
        "dtype": str(graph.dtype),
        "loss": float(loss.value),
        "params": params,
        "nodes": [node_to_dict(n) for n in graph.nodes],
        **extra,
    }
    return _finite(doc)


def dumps(doc: dict[str, Any]) -> str:
    """The document as deterministic JSON text: sorted keys, one key per line, and each
    array of numbers (a whole tensor, nested or not) on one line.

    >>> print(dumps({"b": [[1.0, 2.5]], "a": {"id": "x"}}), end="")
    {
     "a": {
      "id": "x"
     },
     "b": [[1.0, 2.5]]
    }
    """
    return _dump(doc, 0) + "\n"


def _dump(x: Any, depth: int) -> str:
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(x, dict) and x:
        items = (
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dump(x[k], depth + 1)}"
            for k in sorted(x)
        )
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(x, list) and any(isinstance(v, dict) for v in x):
        return "[\n" + ",\n".join(inner + _dump(v, depth + 1) for v in x) + f"\n{pad}]"
    return json.dumps(x, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
