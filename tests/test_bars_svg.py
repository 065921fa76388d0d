"""The grouped bar chart of the BPTT and tour pages, read back from its SVG: bar heights are
proportional to the values (linear) or to their logs (log, from a whole decade below the
smallest value, so the smallest bar is a bar), every tick label sits at the height of the
value it names, the y axis names its scale, and a 0 is written, not left blank."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest

from rnn_dissect.render.bptt_plots import bars_svg

NS = "{http://www.w3.org/2000/svg}"
HEIGHT, TOP = 100, 24  # the plot's height and top margin: the baseline is at y = 124


def parse(svg: str):
    root = ET.fromstring(svg)
    bars = {
        r.find(f"{NS}title").text: (float(r.get("height")), r.get("fill"))
        for r in root.iter(f"{NS}rect")
        if r.find(f"{NS}title") is not None
    }
    texts = {c: [] for c in ("tick", "ylabel", "zero", "xlabel")}
    for t in root.iter(f"{NS}text"):
        if t.get("class") in texts:
            texts[t.get("class")].append((float(t.get("y")), t.text))
    return bars, texts


def test_linear_bars_start_at_zero_and_say_so():
    svg = bars_svg({"f": [0.5, 0.25], "i": [1.0, 0.75]}, ["t=1", "t=2"], log=False, height=100)
    bars, t = parse(svg)
    assert bars["f at t=1: 0.5"][0] == 50 and bars["i at t=1: 1"][0] == 100
    assert bars["i at t=2: 0.75"][0] == 75
    assert sorted(t["tick"]) == [(TOP + 3, "1"), (TOP + HEIGHT + 3, "0")]  # top, then baseline
    assert t["ylabel"] == [(11, "linear, from 0")] and t["xlabel"][0][1] == "step t"


def test_log_bars_start_a_decade_below_the_smallest_and_ticks_sit_at_their_values():
    svg = bars_svg({"a": [1.0, 10.0, 100.0]}, ["1", "2", "3"], log=True, height=100)
    bars, t = parse(svg)
    h = [bars[f"a at {k}: {v}"][0] for k, v in (("1", "1"), ("2", "10"), ("3", "100"))]
    # baseline 0.1, top 100: three decades, each a third of the height; 1 is a real bar
    assert h[2] == 100 and h[1] - h[0] == pytest.approx(100 / 3, abs=0.01)
    assert h[0] == pytest.approx(100 / 3, abs=0.01)
    ticks = {txt: y for y, txt in t["tick"]}
    assert set(ticks) == {"0.1", "1", "10", "100"}
    for txt, y in ticks.items():  # each decade's label at that value's bar top (+3: baseline)
        want = TOP + HEIGHT - 100 * math.log10(float(txt) / 0.1) / 3
        assert y - 3 == pytest.approx(want, abs=0.01), txt
    assert t["ylabel"][0][1] == "log scale"


def test_the_smallest_log_bar_is_visible_and_a_zero_is_written():
    # the walkthrough's ‖dh_next‖: the smallest non-zero value used to sit on the baseline
    svg = bars_svg({"dh_next": [0.051, 0.0457, 0.034, 0.0]}, list("1234"), ylabel="‖dh_next‖")
    bars, t = parse(svg)
    smallest = bars["dh_next at 3: 0.034"][0]
    assert smallest > 0.25 * 140  # a bar a reader can see, not a 2 % stub
    assert bars["dh_next at 4: 0"][0] == 0 and [txt for _, txt in t["zero"]] == ["0"]
    assert t["ylabel"][0][1] == "‖dh_next‖ (log scale)"
    assert all(len(txt) <= 6 for _, txt in t["tick"])  # 3 significant digits, not 12


def test_colours_follow_the_caller():
    svg = bars_svg({"x": [1.0], "y": [2.0]}, ["1"], colours=["#999999", "#0072B2"])
    bars, _ = parse(svg)
    assert bars["x at 1: 1"][1] == "#999999" and bars["y at 1: 2"][1] == "#0072B2"


@pytest.mark.parametrize("n_steps, n_series", [(1, 2), (4, 2), (4, 3), (60, 2)])
def test_the_bars_spread_over_the_axis_without_overlapping(n_steps, n_series):
    """Four steps once filled the left half of a 420-wide axis, the rest an empty stretch."""
    series = {f"s{k}": [1.0 + j + k for j in range(n_steps)] for k in range(n_series)}
    root = ET.fromstring(bars_svg(series, [str(j) for j in range(n_steps)], log=False))
    axis = next(ln for ln in root.iter(f"{NS}line") if ln.get("stroke") == "#999")
    x_axis0, x_axis1 = float(axis.get("x1")), float(axis.get("x2"))
    bars = sorted(
        (float(r.get("x")), float(r.get("x")) + float(r.get("width")))
        for r in root.iter(f"{NS}rect")
        if r.find(f"{NS}title") is not None
    )
    assert len(bars) == n_steps * n_series
    assert all(a1 <= b0 + 1e-6 for (_, a1), (b0, _) in itertools.pairwise(bars))  # no overlap
    span = x_axis1 - x_axis0
    left, right = bars[0][0] - x_axis0, x_axis1 - bars[-1][1]
    assert left >= 0 and right >= 0
    if n_steps >= 4:  # (one step's two bars, 40 wide at most, cannot fill an axis)
        assert left + right <= 0.25 * span  # no long empty stretch on either side
    assert abs(left - right) <= 0.1 * span  # centred
