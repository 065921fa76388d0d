"""The ``dissection.json`` format: one name, one rule for numbers, one deterministic writer.

Two documents share the format ``rnn-dissect/dissection``: the node-level one of a recorded
graph (:func:`document`; ``rnn-dissect nn`` writes it for the I:H:O network) and the BPTT
one of ``rnn-dissect rnn`` / ``dissect`` (:meth:`rnn_dissect.bptt.dissection.Dissection.to_dict`,
which documents its own fields). Both go through :func:`plain` and :func:`dumps`.

Deterministic: keys sorted, floats written by Python's shortest round-trip repr, so the same
inputs give byte-identical files.

Numbers: every non-finite float — NaN, +∞, −∞ — is written as ``null`` (JSON has no NaN; a
browser's ``JSON.parse`` and Python's ``json.loads`` both read ``null`` as "no number").
``null`` means "not computed" (the lag matrix beyond ``--max-lag``) or "not finite" (what a
diverging model can produce). Changed in version 1 of the tree layout (issue 12): the node-level
document used to write the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` while the
BPTT document wrote ``null``; now both write ``null``. The 3:1:1 network's files are
unchanged by it in practice: ``rnn-dissect nn`` refuses a forward pass that is not finite.

Node-level top-level fields: ``format``, ``version``, ``model``, ``dtype``, ``loss`` (float),
``params`` (id → {shape, value, grad}), ``nodes`` (list of {id, name, kind, op, parents, t,
layer, shape, value, grad, saved}, in creation order), plus what the model adds (the MLP
adds ``sizes``, ``inputs``, ``sgd``).
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

import numpy as np

__all__ = ["FORMAT", "VERSION", "document", "dumps", "plain"]

FORMAT = "rnn-dissect/dissection"
VERSION = 1


class _Leaf(Protocol):
    """What :func:`document` reads of a node (the engine's ``Node``)."""

    @property
    def id(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def value(self) -> np.ndarray: ...
    @property
    def grad(self) -> np.ndarray | None: ...


class _Recorded(Protocol):
    """What :func:`document` reads of a recorded graph (the engine's ``Graph``)."""

    dtype: Any

    def params(self) -> list[Any]: ...

    def to_dict(self) -> list[dict[str, Any]]: ...


def plain(x: Any) -> Any:
    """``x`` as JSON-able data: arrays → nested lists, tuples → lists, numpy scalars → Python
    numbers, dict keys → strings, and every non-finite float → ``None`` (the rule above)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return (
            plain(x.tolist()) if x.dtype.kind in "fc" and not np.all(np.isfinite(x)) else x.tolist()
        )
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def document(graph: _Recorded, loss: _Leaf, *, model: str, **extra: Any) -> dict[str, Any]:
    """The dissection of ``graph`` after ``graph.backward(loss)``, as JSON-able data."""
    leaves: list[_Leaf] = graph.params()
    params = {
        n.id: {
            "shape": list(n.shape),
            "value": n.value.tolist(),
            "grad": None if n.grad is None else n.grad.tolist(),
        }
        for n in leaves
    }
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model": model,
        "dtype": str(graph.dtype),
        "loss": float(loss.value),
        "params": params,
        "nodes": graph.to_dict(),
        **extra,
    }
    return plain(doc)


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
