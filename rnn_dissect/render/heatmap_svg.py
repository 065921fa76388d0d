"""A text heatmap as one SVG file: the figure for a post or a slide.

The same picture as :func:`~rnn_dissect.render.heatmap.heatmap_html` — every character on a
background coloured by one unit's activation, the blue-white-red scale of
:func:`~rnn_dissect.render.heatmap.colour` — drawn as a grid of cells, so it keeps its layout
in any SVG viewer and converts to PNG without a browser:

- ``width`` characters a row (wrapped, and broken after every newline); a newline is drawn as
  ↵ and a tab as →, a space as its coloured cell;
- each character is its own ``<text>`` centred in its cell (no font's advance width can make the
  rows drift) and each cell's ``<title>`` holds the character's value (a tooltip in browsers);
- a title line above and, below, the colour scale with its three values (center − scale,
  center, center + scale).

Text is data: every character is escaped. ::

    >>> svg = heatmap_svg("a<b", np.array([-1.0, 0.0, 1.0]))
    >>> svg.count('class="ch"'), "&lt;" in svg
    (3, True)
"""

from __future__ import annotations

import html

import numpy as np

from rnn_dissect.render.heatmap import SHOWN, colour
from rnn_dissect.render.numbers import num

__all__ = ["heatmap_svg"]

CELL_W, CELL_H, FONT = 9.0, 17.0, 13  # one character's cell, px; monospace font size
PAD, TITLE_H, SCALE_H = 8.0, 24.0, 40.0
SCALE_STEPS = 21  # cells of the colour scale


def _rows(text: str, width: int) -> list[list[int]]:
    """Indices of ``text`` per drawn row: at most ``width`` each, a row ends after a newline."""
    rows: list[list[int]] = [[]]
    for i, ch in enumerate(text):
        if len(rows[-1]) == width:
            rows.append([])
        rows[-1].append(i)
        if ch == "\n":
            rows.append([])
    return [r for r in rows if r] or [[]]


def heatmap_svg(
    text: str,
    values: np.ndarray,
    center: float = 0.0,
    scale: float = 1.0,
    *,
    title: str = "",
    width: int = 72,
) -> str:
    """The SVG document: ``text`` (N characters) coloured by ``values`` (N,), ``width``
    characters a row, ``title`` above, the colour scale below."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size != len(text):
        raise ValueError(f"{len(text)} characters but {v.size} values")
    if width < 8:
        raise ValueError(f"width {width} is below 8 characters")
    rows = _rows(text, width)
    cols = max(len(r) for r in rows)
    grid_w = max(cols, 24) * CELL_W
    w = grid_w + 2 * PAD
    top = PAD + (TITLE_H if title else 0.0)
    h = top + len(rows) * CELL_H + SCALE_H + PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="{html.escape(title or "text heatmap")}">',
        f'<rect width="{w:.0f}" height="{h:.0f}" fill="#ffffff"/>',
        f'<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT}" '
        'text-anchor="middle" fill="#000000">',
    ]
    if title:
        out.append(
            f'<text class="title" x="{PAD}" y="{PAD + 15}" text-anchor="start" '
            f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="14">'
            f"{html.escape(title)}</text>"
        )
    for r, row in enumerate(rows):
        y = top + r * CELL_H
        for c, i in enumerate(row):
            x = PAD + c * CELL_W
            ch = text[i]
            out.append(
                f'<g class="ch"><rect x="{x:.1f}" y="{y:.1f}" width="{CELL_W}" height="{CELL_H}" '
                f'fill="{colour(v[i], center, scale)}"><title>{v[i]:.4g}</title></rect>'
            )
            shown = SHOWN.get(ch, ch)
            if not shown.isspace():
                out.append(
                    f'<text x="{x + CELL_W / 2:.1f}" y="{y + CELL_H - 4.5:.1f}">{html.escape(shown)}</text>'
                )
            out.append("</g>")
    y = top + len(rows) * CELL_H + 12
    n = SCALE_STEPS
    sw = min(grid_w, 240.0) / n
    for k in range(n):
        t = -1.0 + 2.0 * k / (n - 1)
        out.append(
            f'<rect class="scale" x="{PAD + k * sw:.1f}" y="{y:.1f}" width="{sw + 0.2:.2f}" '
            f'height="10" fill="{colour(center + t * scale, center, scale)}"/>'
        )
    for t, anchor in ((-1.0, "start"), (0.0, "middle"), (1.0, "end")):
        x = PAD + (t + 1) / 2 * n * sw
        out.append(
            f'<text class="scale-label" x="{x:.1f}" y="{y + 24:.1f}" font-size="10" '
            f'text-anchor="{anchor}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">'
            f"{num(center + t * scale, 3)}</text>"
        )
    out.append("</g></svg>")
    return "".join(out)
