"""The pieces the BPTT pages' tables share: how many rows, how big a heatmap cell, a number
with its exact value on hover, a table that says how many rows it left out."""

from __future__ import annotations

import html

from rnn_dissect.render.numbers import num

__all__ = ["MAX_PLOT_STEPS", "MAX_ROWS", "WIDE_COLUMNS", "cell_px", "n", "table"]

MAX_ROWS = 80  # table rows shown; dissection.json has every one
MAX_PLOT_STEPS = 200  # heatmaps and bar charts over more steps than this are left out


def cell_px(T: int) -> int:
    """Side of one heatmap cell for T steps: the map stays about 900 px wide, 4–32 px a cell."""
    return max(4, min(32, 900 // max(T, 1)))


WIDE_COLUMNS = 8  # more columns than this: the table may use the window's width


def n(v: float | None) -> str:
    """A number in 6 significant digits, its exact value in the tooltip; None is a dash."""
    return "—" if v is None else f'<span title="{float(v)!r}">{num(v, 6)}</span>'


def table(head: list[str], rows: list[list[str]], more: int = 0, cls: str = "") -> str:
    """An HTML table of ready-made cells (markup already escaped), in a scroll box; ``more``
    rows left out are said in a last row. A table of more than :data:`WIDE_COLUMNS` columns
    gets the window's width (``.scroll.wide``, as wide drawings do), not the text column's:
    an LSTM's Q4 table has 12, and its dc_next columns hid past the column's edge."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    tail = (
        f'<tr><td colspan="{len(head)}">… {more} more rows in dissection.json</td></tr>'
        if more
        else ""
    )
    klass = f' class="{cls}"' if cls else ""
    box = "scroll wide" if len(head) > WIDE_COLUMNS else "scroll"
    return f'<div class="{box}"><table{klass}><tr>{th}</tr>{body}{tail}</table></div>'
