"""The pieces the BPTT pages' tables share: how many rows, how big a heatmap cell, a number
with its exact value on hover, a table that says how many rows it left out."""

from __future__ import annotations

import html

from rnn_dissect.render.numbers import num

__all__ = ["MAX_PLOT_STEPS", "MAX_ROWS", "cell_px", "n", "table"]

MAX_ROWS = 80  # table rows shown; dissection.json has every one
MAX_PLOT_STEPS = 200  # heatmaps and bar charts over more steps than this are left out


def cell_px(T: int) -> int:
    """Side of one heatmap cell for T steps: the map stays about 900 px wide, 4–32 px a cell."""
    return max(4, min(32, 900 // max(T, 1)))


def n(v: float | None) -> str:
    """A number in 6 significant digits, its exact value in the tooltip; None is a dash."""
    return "—" if v is None else f'<span title="{float(v)!r}">{num(v, 6)}</span>'


def table(head: list[str], rows: list[list[str]], more: int = 0, cls: str = "") -> str:
    """An HTML table of ready-made cells (markup already escaped), in a scroll box; ``more``
    rows left out are said in a last row."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    tail = (
        f'<tr><td colspan="{len(head)}">… {more} more rows in dissection.json</td></tr>'
        if more
        else ""
    )
    klass = f' class="{cls}"' if cls else ""
    return f'<div class="scroll"><table{klass}><tr>{th}</tr>{body}{tail}</table></div>'
