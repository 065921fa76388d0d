"""Jupyter display of a recorded graph, attached from the drawing side.

The engine knows nothing about drawing: :func:`install` gives :class:`~rnn_dissect.autograd.
engine.Graph` the two methods Jupyter looks for — ``_repr_svg_`` (the Graphviz drawing, or
``None`` without ``dot``, so Jupyter falls back to the next form) and ``_repr_html_`` (the
node table). The package's ``__init__`` calls it, so ``from rnn_dissect import Graph`` is
enough for a graph to draw itself in a notebook; Graphviz and the table are imported only
when a graph is displayed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["graph_html", "graph_svg", "install"]


def graph_svg(graph: Any) -> str | None:
    """The Graphviz drawing of ``graph`` as SVG text, or ``None`` when ``dot`` is missing."""
    from rnn_dissect.render import graph as _graph

    try:
        return _graph.to_svg(graph)
    except _graph.GraphvizMissing:
        return None


def graph_html(graph: Any) -> str:
    """Every node of ``graph`` as an HTML table (value and gradient per node)."""
    from rnn_dissect.render import table as _table

    return _table.nodes_html(graph)


def install(cls: type) -> None:
    """Give ``cls`` (the engine's Graph) Jupyter's ``_repr_svg_`` and ``_repr_html_``."""
    cls._repr_svg_ = graph_svg  # type: ignore[attr-defined]
    cls._repr_html_ = graph_html  # type: ignore[attr-defined]
