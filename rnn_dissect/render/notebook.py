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

__all__ = ["graph_html", "graph_repr", "graph_svg", "graph_text", "install"]

MAX_TEXT_NODES = 60  # print(graph) lists this many nodes, then says how many more


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


def graph_repr(graph: Any) -> str:
    """``repr(graph)``: how many nodes of each kind, and what to call for more."""
    kinds: dict[str, int] = {}
    for n in graph.nodes:
        kinds[n.kind.value] = kinds.get(n.kind.value, 0) + 1
    what = ", ".join(f"{v} {k}" for k, v in kinds.items())
    return f"<Graph: {len(graph.nodes)} nodes ({what}); print(graph) lists them>"


def graph_text(graph: Any) -> str:
    """``print(graph)``: the node table (id, name, kind, op, shape, value, gradient) as plain
    text, up to ``MAX_TEXT_NODES`` rows, and how to draw it::

        from rnn_dissect.render.graph import to_svg
        open("graph.svg", "w").write(to_svg(graph))   # needs Graphviz's dot
    """
    from rnn_dissect.render import table as _table

    shown = graph.nodes[:MAX_TEXT_NODES]
    text = _table.render_text(graph, shown, width=120)
    more = len(graph.nodes) - len(shown)
    tail = f"… {more} more nodes (graph.nodes)\n" if more > 0 else ""
    return (
        text
        + tail
        + (
            "draw it: from rnn_dissect.render.graph import to_svg; "
            'open("graph.svg", "w").write(to_svg(graph))'
        )
    )


def install(cls: type) -> None:
    """Give ``cls`` (the engine's Graph) Jupyter's ``_repr_svg_`` and ``_repr_html_``, and a
    useful ``repr`` / ``str`` for plain Python."""
    cls._repr_svg_ = graph_svg  # type: ignore[attr-defined]
    cls._repr_html_ = graph_html  # type: ignore[attr-defined]
    cls.__repr__ = graph_repr  # type: ignore[method-assign,assignment]
    cls.__str__ = graph_text  # type: ignore[method-assign,assignment]
