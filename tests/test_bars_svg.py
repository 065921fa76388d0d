"""The grouped bar chart of the BPTT and tour pages, read back from its SVG: bar heights are
proportional to the values (linear) or to their logs (log), and both axis ends are labelled."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from rnn_dissect.render.bptt_plots import bars_svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str):
    root = ET.fromstring(svg)
    bars = {
        r.find(f"{NS}title").text: float(r.get("height"))
        for r in root.iter(f"{NS}rect")
        if r.find(f"{NS}title") is not None
    }
    texts = [(float(t.get("y")), t.text) for t in root.iter(f"{NS}text") if float(t.get("x")) == 2]
    return bars, sorted(texts)


def test_linear_bars_start_at_zero_and_say_so():
    svg = bars_svg({"f": [0.5, 0.25], "i": [1.0, 0.75]}, ["t=1", "t=2"], log=False, height=100)
    bars, axis = parse(svg)
    assert (
        bars["f at t=1: 0.5"] == 50 and bars["i at t=1: 1"] == 100 and bars["i at t=2: 0.75"] == 75
    )
    assert [txt for _, txt in axis] == ["1", "0"]  # top, then the baseline


def test_log_bars_span_the_decades_shown():
    svg = bars_svg({"a": [1.0, 10.0, 100.0]}, ["1", "2", "3"], log=True, height=100)
    bars, axis = parse(svg)
    h = [bars[f"a at {k}: {v}"] for k, v in (("1", "1"), ("2", "10"), ("3", "100"))]
    # floor 1, top 100: one decade is half the height; the floor itself is a 2 % stub
    assert math.isclose(h[2] - h[1], 50) and h[2] == 100 and math.isclose(h[0], 2)
    assert [txt for _, txt in axis] == ["100", "1"]
