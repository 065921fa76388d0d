"""Every node of a graph as a table: id, kind, op, shape, value, gradient.

Two renderings of the same rows: a terminal table via rich (:func:`nodes_table`,
:func:`render_text` for a fixed-width string), and escaped HTML (:func:`nodes_html`) for
Jupyter, where ``Graph._repr_html_`` uses it.

    >>> from rnn_dissect.autograd.engine import Graph
    >>> g = Graph()
    >>> w = g.param([2.0], name="w")
    >>> g.backward((w * w).sum())
    >>> print(render_text(g, width=60).splitlines()[3])
    │ w    │ parameter      │ leaf │ 1      │ 2     │ 4    │
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from rnn_dissect.autograd.engine import Graph, Node
from rnn_dissect.render.numbers import is_small, lines, summary

__all__ = ["node_rows", "nodes_html", "nodes_table", "render_text"]

COLUMNS = ("id", "kind", "op", "shape", "value", "grad")


def _cell(a: object, digits: int) -> str:
    if a is None:
        return "-"
    return "\n".join(lines(a, digits)) if is_small(a) else summary(a, digits)  # type: ignore[arg-type]


def node_rows(
    graph: Graph, nodes: Sequence[Node] | None = None, digits: int = 6
) -> list[tuple[str, ...]]:
    """One row of strings per node, in creation order (a topological order)."""
    return [
        (
            n.id,
            n.kind.value,
            n.op,
            "×".join(map(str, n.shape)) or "scalar",
            _cell(n.value, digits),
            _cell(n.grad, digits),
        )
        for n in (graph.nodes if nodes is None else nodes)
    ]


def nodes_table(graph: Graph, nodes: Sequence[Node] | None = None, digits: int = 6) -> Table:
    """A rich Table of every node; values and gradients to ``digits`` significant digits."""
    table = Table(title=None, show_lines=False, header_style="bold")
    for col in COLUMNS:
        table.add_column(col, overflow="fold", no_wrap=col in ("id", "kind", "op"))
    for row in node_rows(graph, nodes, digits):
        table.add_row(*row)
    return table


def render_text(
    graph: Graph, nodes: Sequence[Node] | None = None, *, width: int = 100, digits: int = 6
) -> str:
    """The table as plain text at a fixed ``width`` (no colour codes): for tests and logs."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False)
    console.print(nodes_table(graph, nodes, digits))
    return buf.getvalue()


def nodes_html(graph: Graph, nodes: Sequence[Node] | None = None, digits: int = 6) -> str:
    """The table as an HTML fragment (every cell escaped)."""
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(c).replace(chr(10), '<br>')}</td>" for c in row)
        + "</tr>"
        for row in node_rows(graph, nodes, digits)
    )
    style = "font-family:monospace;border-collapse:collapse;text-align:left"
    return f'<table class="rnn-dissect-nodes" style="{style}"><tr>{head}</tr>{body}</table>'
