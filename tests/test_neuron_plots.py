"""Neuron figures: the SVG is parsed for its marks, which must sit where the data says."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET

import matplotlib
import matplotlib.image
import numpy as np

from rnn_dissect.neurons.activations import UnitRef
from rnn_dissect.neurons.extremes import Saturation
from rnn_dissect.neurons.tuning import TuningCurve
from rnn_dissect.render.neuron_plots import (
    saturation_figure,
    save_figure,
    score_curves_figure,
    unit_training_figure,
)

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def by_id(svg_path, gid: str) -> ET.Element:
    root = ET.parse(svg_path).getroot()
    found = [e for e in root.iter() if e.get("id") == gid]
    assert len(found) == 1, gid
    return found[0]


def uses(el: ET.Element) -> list[tuple[float, float]]:
    return [(float(u.get("x")), float(u.get("y"))) for u in el.iter(SVG + "use")]


def test_saturation_scatter_has_one_mark_per_unit_at_its_fractions(tmp_path):
    rng = np.random.default_rng(0)
    sats = [Saturation(k, g, rng.random(5), rng.random(5)) for k in (0, 1) for g in "ifgo"]
    png, svg = save_figure(saturation_figure(sats), tmp_path / "sat")
    assert matplotlib.image.imread(png).shape == (360, 720, 4)  # 2 panels, 3.6 in, 100 dpi
    x_axis = {}  # layer -> (SVG x of left = 0, SVG x of left = 1)
    for s in sats:
        pts = np.array(uses(by_id(svg, f"sat-l{s.layer}-{s.kind}")))  # (5, 2) SVG coordinates
        assert pts.shape == (5, 2)
        # an axis maps data to SVG coordinates by one affine map: x grows with left,
        # y (pointing down in SVG) falls as right grows
        for col, data, sign in ((0, s.left, 1), (1, s.right, -1)):
            A = np.stack([data, np.ones(5)], axis=1)
            coef, *_ = np.linalg.lstsq(A, pts[:, col], rcond=None)
            assert np.sign(coef[0]) == sign and np.allclose(A @ coef, pts[:, col], atol=1e-3)
            if col == 0:
                x_axis[s.layer] = (coef[1], coef[0] + coef[1])
    assert x_axis[1][0] > x_axis[0][1]  # layer 1's panel lies right of layer 0's


def test_unit_training_image_stores_every_cell(tmp_path):
    steps = np.array([0, 50, 100])
    image = np.array([[0.0, 0.1, -0.2, 0.3, 0.0, 0.0, 0.0],
                      [0.0, 0.5, -0.6, 0.7, -0.1, 0.2, 0.0],
                      [0.1, 0.9, -1.0, 0.95, -0.3, 0.4, -0.2]])  # fmt: skip
    png, svg = save_figure(unit_training_figure(steps, image, "l0 h 1"), tmp_path / "img")
    el = by_id(svg, "unit-image")
    assert (el.get("width"), el.get("height")) == ("7", "3")  # stored at data resolution
    data = re.sub(r"\s", "", el.get(XLINK + "href").split(",", 1)[1])
    pix = matplotlib.image.imread(io.BytesIO(base64.b64decode(data)))  # (3, 7, 4)
    want = matplotlib.colormaps["bwr"]((image + 1.0) / 2.0)  # vmax = max |image| = 1
    assert pix.shape == (3, 7, 4) and np.abs(pix - want).max() <= 2 / 255
    assert png.stat().st_size > 0


def curve(feature: str, scores: list[float], crossed: int | None) -> TuningCurve:
    steps = np.array([0, 10, 20, 30])
    s = np.array(scores)
    return TuningCurve(feature, UnitRef(0, "c", 2), steps, s, s, 0.5, crossed)


def test_score_curves_one_vertex_per_snapshot_and_a_crossing_mark(tmp_path):
    curves = [
        curve("bracket_depth", [0.1, 0.4, 0.7, 0.9], 20),
        curve("letter", [0, -0.1, 0.2, 0.1], None),
    ]
    _, svg = save_figure(score_curves_figure(curves), tmp_path / "curves")
    for c in curves:
        line = by_id(svg, f"score-{c.feature}")
        d = next(line.iter(SVG + "path")).get("d")
        xy = np.array(re.findall(r"[ML] ([-\d.]+) ([-\d.]+)", d), dtype=float)  # (4, 2)
        assert xy.shape == (4, 2) and len(uses(line)) == 4
        assert np.all(np.diff(xy[:, 0]) > 0)  # steps increase left to right
        assert np.array_equal(
            np.argsort(-xy[:, 1], kind="stable"), np.argsort(c.scores, kind="stable")
        )
    cross = uses(by_id(svg, "cross-bracket_depth"))
    line = by_id(svg, "score-bracket_depth")
    d = next(line.iter(SVG + "path")).get("d")
    third = [float(v) for v in re.findall(r"[ML] ([-\d.]+) ([-\d.]+)", d)[2]]
    assert len(cross) == 1 and np.allclose(cross[0], third, atol=1e-3)
    root = ET.parse(svg).getroot()
    assert not [e for e in root.iter() if e.get("id") == "cross-letter"]


def test_figures_are_byte_identical_across_runs(tmp_path):
    sats = [Saturation(0, "f", np.array([0.1, 0.2]), np.array([0.7, 0.3]))]
    _, a = save_figure(saturation_figure(sats), tmp_path / "a")
    _, b = save_figure(saturation_figure(sats), tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_score_curves_twelve_features_twelve_looks_and_the_legend_beside_the_plot():
    """Issue 17: with 12 features the tour's figure drew in_quote and upper in the same blue
    (matplotlib's 10 colours repeat): the colour repeats now, the line style does not; and
    the legend sits beside the axes, not over the curves it names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    curves = [curve(f"f{i}", [0.1 * (i % 5), 0.2, -0.3, 0.5], None) for i in range(12)]
    fig = score_curves_figure(curves)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    looks = {
        (ln.get_color(), ln.get_linestyle()) for ln in ax.get_lines() if ln.get_label()[0] == "f"
    }
    assert len(looks) == 12
    r = fig.canvas.get_renderer()
    legend, axes, whole = ax.get_legend().get_window_extent(r), ax.get_window_extent(r), fig.bbox
    assert legend.x0 >= axes.x1 and legend.x1 <= whole.x1 + 1  # beside it, and not cut off
