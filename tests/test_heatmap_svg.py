"""The text heatmap as an SVG file, read back: one cell per character in reading order, its
colour the page's colour of its value, rows wrapped at ``width`` and after every newline,
markup kept as text, the scale's three values under it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rnn_dissect.render.heatmap import colour
from rnn_dissect.render.heatmap_svg import CELL_H, CELL_W, heatmap_svg

NS = "{http://www.w3.org/2000/svg}"


def cells(svg: str):
    """(x, y, fill, value, shown character or '') per character cell, in document order."""
    out = []
    for g in ET.fromstring(svg).iter(f"{NS}g"):
        if g.get("class") != "ch":
            continue
        r, t = g.find(f"{NS}rect"), g.find(f"{NS}text")
        out.append((float(r.get("x")), float(r.get("y")), r.get("fill"),
                    float(r.find(f"{NS}title").text), t.text if t is not None else ""))  # fmt: skip
    return out


def test_each_character_is_a_cell_in_reading_order_with_its_colour():
    text = "if a<b:\n\treturn 'x & y'\n"
    v = np.linspace(-1.5, 1.5, len(text))
    c = cells(heatmap_svg(text, v, title="<script>"))
    assert len(c) == len(text)
    shown = {"\n": "↵", "\t": "→", " ": ""}
    assert [x[4] for x in c] == [shown.get(ch, ch) for ch in text]  # markup stays text
    assert [x[2] for x in c] == [colour(x) for x in v]
    assert [x[3] for x in c] == [float(f"{x:.4g}") for x in v]
    ys = sorted({x[1] for x in c})
    assert len(ys) == 2 and ys[1] - ys[0] == CELL_H  # broken after each newline
    row2 = [x for x in c if x[1] == ys[1]]
    assert [x[0] for x in row2] == [row2[0][0] + k * CELL_W for k in range(len(row2))]
    root = ET.fromstring(heatmap_svg(text, v, title="<script>"))
    title = next(t for t in root.iter(f"{NS}text") if t.get("class") == "title")
    assert title.text == "<script>" and not list(root.iter(f"{NS}script"))


def test_long_rows_wrap_at_width_and_the_scale_names_its_ends():
    text = "x" * 25
    svg = heatmap_svg(text, np.zeros(25), center=0.5, scale=0.5, width=10)
    c = cells(svg)
    per_row = {}
    for x in c:
        per_row[x[1]] = per_row.get(x[1], 0) + 1
    assert list(per_row.values()) == [10, 10, 5]
    root = ET.fromstring(svg)
    labels = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "scale-label"]
    assert labels == ["0", "0.5", "1"]
    fills = [r.get("fill") for r in root.iter(f"{NS}rect") if r.get("class") == "scale"]
    assert fills[0] == colour(0.0, 0.5, 0.5) and fills[-1] == colour(1.0, 0.5, 0.5)
    assert fills[len(fills) // 2] == "#ffffff"
    w = float(root.get("width"))
    assert max(x[0] for x in c) + CELL_W <= w  # nothing drawn outside the picture


def test_mismatched_values_are_refused():
    with pytest.raises(ValueError, match="3 characters but 2 values"):
        heatmap_svg("abc", np.zeros(2))
