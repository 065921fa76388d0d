"""Text heatmaps: HTML parsed back character by character, terminal escapes decoded."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from rnn_dissect.render.heatmap import (
    UnitSection,
    colour,
    colour_scale,
    contrast,
    heatmap_html,
    heatmap_line,
    heatmap_page,
    heatmap_terminal,
    legend_terminal,
)

TEXT = '<script>alert("x&y")</script> &amp; é\n\tif a < b:\n  pass\n'


class Spans(HTMLParser):
    """Collects every tag and, for each span, its attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.spans: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.open = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "span":
            self.spans.append(dict(attrs))
            self.text.append("")
            self.open = True

    def handle_endtag(self, tag):
        if tag == "span":
            self.open = False

    def handle_data(self, data):
        if self.open:
            self.text[-1] += data


def wcag(hex_colour: str) -> float:
    """WCAG 2 contrast of black text on ``hex_colour`` (the oracle, from the spec)."""
    lin = [c / 255 for c in rgb(hex_colour)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in lin]
    return (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] + 0.05) / 0.05


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_colour_diverges_from_white_and_keeps_black_text_readable():
    assert colour(0.0) == "#ffffff" and colour(-1.0) == "#4080ff" and colour(1.0) == "#f24d40"
    assert colour(-5.0) == colour(-1.0) and colour(0.75, center=0.5, scale=0.5) == colour(0.5)
    vs = np.linspace(-1.2, 1.2, 481)
    lum = [wcag(colour(v)) for v in vs]
    assert min(lum) >= 4.5  # WCAG AA for body text, at every value
    assert all(abs(contrast(colour(v)) - c) < 1e-12 for v, c in zip(vs, lum, strict=True))
    neg = [wcag(colour(v)) for v in np.linspace(0, -1, 50)]  # darker the further from 0
    assert neg == sorted(neg, reverse=True) and rgb(colour(-0.5))[2] == 255
    assert rgb(colour(0.5))[0] > rgb(colour(0.5))[2]  # red side


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_html_one_escaped_span_per_character_with_its_value(dtype):
    values = np.random.default_rng(0).uniform(-1.5, 1.5, len(TEXT)).astype(dtype)
    p = Spans()
    p.feed(heatmap_html(TEXT, values))
    p.close()
    assert p.tags == ["pre"] + ["span"] * len(TEXT)  # the <script> in the text stays text
    assert p.text == list(TEXT)  # one character per span, newlines and tabs included
    for span, v in zip(p.spans, values, strict=True):
        assert dtype(span["data-v"]) == v  # round-trips exactly
        assert span["style"] == f"background:{colour(v)}"


def test_line_one_row_escaped_mark_and_title():
    values = np.random.default_rng(1).uniform(-0.2, 1.2, len(TEXT))
    p = Spans()
    p.feed(heatmap_line(TEXT, values, 0.5, 0.5, mark=3))
    p.close()
    assert p.tags == ["div"] + ["span"] * len(TEXT)  # the <script> in the text stays text
    shown = TEXT.replace("\n", "\u21b5").replace("\t", "\u2192")  # ↵ →: one line
    assert "".join(p.text) == shown and all(len(t) == 1 for t in p.text)
    for j, (span, v) in enumerate(zip(p.spans, values, strict=True)):
        assert abs(float(span["title"]) - v) <= 5e-4 * abs(v)  # 4 significant digits
        assert span["style"] == f"background:{colour(v, 0.5, 0.5)}"
        assert span.get("class") == ("mark" if j == 3 else None)
    with pytest.raises(ValueError, match="characters but values"):
        heatmap_line("ab", np.zeros(3))


def test_colour_scale_by_kind():
    c = np.array([[0.3, -2.5], [1.0, 0.0]])
    assert [colour_scale(k, c) for k in ("i", "f", "o", "r", "z")] == [(0.5, 0.5)] * 5
    assert colour_scale("c", c) == (0.0, 2.5) and colour_scale("c", np.zeros(4)) == (0.0, 1.0)
    assert colour_scale("h", c) == colour_scale("g", c) == colour_scale("n", c) == (0.0, 1.0)


def test_page_is_self_contained():
    unit = UnitSection("u", "layer 0 h 3 <b>", "x", [("c <b>", TEXT, np.zeros(len(TEXT)))], 0, 1)
    page = heatmap_page([unit])
    assert page.startswith("<!DOCTYPE html>")
    for needle in ("http:", "https:", "src=", "<script", "<link", "@import"):
        assert needle not in page
    p = Spans()
    p.feed(page)
    assert p.tags.count("span") == len(TEXT) and "b" not in p.tags  # heading escaped too


def test_terminal_view_colours_every_character():
    text = "a(b) 'q'\nxyz <&>\n"
    values = np.linspace(-1, 1, len(text))
    out = heatmap_terminal(text, values, width=40)
    seg = re.compile(r"\x1b\[38;2;0;0;0;48;2;(\d+);(\d+);(\d+)m(.*?)\x1b\[0m", re.S)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert plain == text  # every character, newlines included, nothing added
    coloured = []
    for m in seg.finditer(out):
        col = tuple(int(g) for g in m.groups()[:3])
        coloured += [(ch, col) for ch in m.group(4)]
    want = [(ch, rgb(colour(v))) for ch, v in zip(text, values, strict=True) if ch != "\n"]
    assert coloured == want


def test_terminal_wraps_at_the_given_width():
    text = "abcdefghij" * 3
    out = heatmap_terminal(text, np.zeros(len(text)), width=12)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out).split("\n")
    assert lines == ["abcdefghijab", "cdefghijabcd", "efghij"]


def test_terminal_legend_runs_blue_white_red():
    out = legend_terminal(0.0, 1.0, width=5)
    cols = re.findall(r"48;2;(\d+);(\d+);(\d+)m", out)
    assert [tuple(map(int, c)) for c in cols] == [rgb(colour(v)) for v in (-1, -0.5, 0, 0.5, 1)]
    assert re.sub(r"\x1b\[[0-9;]*m", "", out) == "-1" + " " * 7 + "+1"
