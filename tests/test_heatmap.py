"""Text heatmaps: HTML parsed back character by character, terminal escapes decoded."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pytest

from rnn_dissect.render.heatmap import colour, heatmap_html, heatmap_page, heatmap_terminal

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


def bwr(v: float) -> tuple[int, int, int]:
    """matplotlib's bwr colormap at value v ∈ [−1, 1], as 0..255 ints (the oracle)."""
    r, g, b, _ = matplotlib.colormaps["bwr"]((v + 1) / 2)
    return round(r * 255), round(g * 255), round(b * 255)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_colour_is_matplotlib_bwr():
    for v in np.linspace(-1.2, 1.2, 49):
        want = bwr(float(np.clip(v, -1, 1)))
        assert max(abs(a - b) for a, b in zip(rgb(colour(v)), want, strict=True)) <= 2
    assert colour(0.75, center=0.5, scale=0.5) == colour(0.5)


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
        assert span["title"] == span["data-v"]
        assert span["style"] == f"background:{colour(v)}"
        assert (
            max(
                abs(a - b)
                for a, b in zip(rgb(colour(v)), bwr(float(np.clip(v, -1, 1))), strict=True)
            )
            <= 2
        )


def test_page_is_self_contained():
    page = heatmap_page([("layer 0 h 3 <b>", TEXT, np.zeros(len(TEXT)), 0.0, 1.0)])
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
