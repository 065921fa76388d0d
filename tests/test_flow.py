"""``rnn-dissect flow``: the reach of RNN, LSTM and GRU, recomputed independently with
PyTorch autograd (float64) on an explicitly unrolled loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch_ref import loop_run

from rnn_dissect.bptt.reach import CELLS, compare
from rnn_dissect.cli import main
from rnn_dissect.nets.model import CharModel, ModelConfig

TEXT = "the cat sat on the mat and the dog ate a hat"


def torch_reach(cell: str, text: str, hidden: int, seed: int, layers: int = 1):
    """‖∂L_T/∂h_t‖ by lag (last layer) and the reach, by the definition, with torch."""
    model = CharModel.init(ModelConfig(cell, tuple(dict.fromkeys(text)), hidden, layers), seed)
    idx = model.encode(text)
    loop = loop_run(model, idx[None, :-1], idx[None, 1:])
    T = len(text) - 1
    hs = loop.h[-1][1:]  # h_1..h_T of the last layer
    grads = torch.autograd.grad(loop.step_losses[T], hs, allow_unused=True)
    g = np.array([0.0 if x is None else float(x.norm()) for x in grads])[::-1]  # by lag
    peak = int(np.argmax(g))
    below = [lag for lag in range(peak, T) if g[lag] < 1e-3 * g[peak]]
    return g / g.max(), (below[0] if below else None)


@pytest.mark.parametrize("layers", [1, 2])
def test_reach_matches_torch(layers):
    cmp = compare(TEXT, hidden=4, seed=1, layers=layers)
    assert [r.cell for r in cmp.rows] == list(CELLS) and cmp.steps == len(TEXT) - 1
    for r in cmp.rows:
        curve, reach = torch_reach(r.cell, TEXT, 4, 1, layers)
        assert np.allclose(r.curve, curve, rtol=1e-10, atol=1e-300), r.cell
        assert r.reach == reach and reach is not None, (r.cell, r.reach, reach)
        assert r.looked_back == cmp.steps - 1


def test_no_reach_on_a_short_text():
    cmp = compare("abcab", hidden=3, seed=0)
    for r in cmp.rows:
        curve, reach = torch_reach(r.cell, "abcab", 3, 0)
        assert reach is None and r.reach is None
        assert np.allclose(r.curve, curve, rtol=1e-10)
    assert "try a longer --text" in cmp.to_dict()["reading"]


def test_flow_cli_writes_json_and_plots(tmp_path, capsys):
    code = main(["flow", "--text", TEXT, "--hidden", "4", "--seed", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads((tmp_path / "flow.json").read_text(encoding="utf-8"))
    ref = compare(TEXT, hidden=4, seed=1).to_dict()
    assert doc == json.loads(json.dumps(ref))
    for r in doc["rows"]:  # the terminal table has the same reaches
        assert f"  {r['cell']:<5} {r['reach']:>7}" in out
    assert doc["reading"] in out
    assert (tmp_path / "flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "flow.svg").read_text(encoding="utf-8")
    assert all(f'id="reach-{c}"' in svg for c in CELLS)


def test_reach_figure_tells_the_cells_apart_without_a_hue(tmp_path):
    """Issue 17: the reach figure drew the RNN vermilion and the LSTM blue, which everywhere
    else mean the cell state c and the state h. Each cell is now a neutral grey with its
    own line style and marker, named at the end of its line; its reach is an open marker
    on the line at the reach's lag."""
    from matplotlib.colors import to_hex

    from rnn_dissect.render.bptt_plots import (
        CELL_STYLES,
        GATE_SHADES,
        GRADIENT_COLOURS,
        PARAMETER_SHADES,
        SERIES_COLOURS,
        reach_figure,
    )
    from rnn_dissect.render.cards import PALETTE

    hues = {c.lower() for c in (*PALETTE.values(), *GRADIENT_COLOURS.values(), *SERIES_COLOURS,
                                 *PARAMETER_SHADES, *GATE_SHADES)}  # fmt: skip
    cmp = compare(TEXT, hidden=4, seed=1)
    fig = reach_figure({r.cell: r.curve for r in cmp.rows}, {r.cell: r.reach for r in cmp.rows},
                       cmp.fall, "t")  # fmt: skip
    ax = fig.axes[-1]  # every lag (a zoom on the first lags may sit at its left)
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    texts = {t.get_gid(): t for t in ax.texts}
    looks = set()
    for r in cmp.rows:
        line, st = lines[f"reach-{r.cell}"], CELL_STYLES[r.cell]
        colour = to_hex(line.get_color())
        assert colour == st.colour and colour not in hues, r.cell
        assert colour[1:3] == colour[3:5] == colour[5:7]  # a neutral grey
        looks.add((line.get_linestyle(), line.get_marker()))
        label = texts[f"reach-label-{r.cell}"]  # the name, at the end of the line
        assert label.get_text() == r.cell.upper() and to_hex(label.get_color()) == colour
        assert label.get_position()[0] == line.get_xdata()[-1]
        assert r.reach is not None, r.cell  # this text is long enough for every cell
        mark = lines[f"reach-mark-{r.cell}"]  # the reach, on the line
        assert list(mark.get_xdata()) == [r.reach]
        assert mark.get_ydata()[0] == r.curve[r.reach] and mark.get_markerfacecolor() == "none"
    assert len(looks) == len(cmp.rows)  # no two cells drawn alike
    # the labels do not sit on one another: at least 1/14 of the log axis apart
    ys = sorted(np.log10(texts[f"reach-label-{r.cell}"].get_position()[1]) for r in cmp.rows)
    lo, hi = np.log10(ax.get_ylim())
    assert min(np.diff(ys)) >= (hi - lo) / 14 - 1e-9
    # what flow.svg holds: the lines' strokes are those greys, no hue
    fig.savefig(tmp_path / "f.svg")
    svg = (tmp_path / "f.svg").read_text()
    for r in cmp.rows:
        block = svg.split(f'id="reach-{r.cell}"')[1].split("</g>")[0]
        assert f"stroke: {CELL_STYLES[r.cell].colour.lower()}" in block


def test_a_long_texts_reach_figure_zooms_on_the_crossings():
    """On T = 126 the three reaches (9–14 steps) were a cluster in the corner of a 126-lag
    axis; a left panel now shows the first lags, where the lines cross the threshold."""
    from rnn_dissect.bptt.reach import DEFAULT_TEXT
    from rnn_dissect.render.bptt_plots import reach_figure

    cmp = compare(DEFAULT_TEXT, hidden=16, seed=0)
    reach = {r.cell: r.reach for r in cmp.rows}
    fig = reach_figure({r.cell: r.curve for r in cmp.rows}, reach, cmp.fall, "t")
    zoom, whole = fig.axes
    z_lines = {ln.get_gid(): ln for ln in zoom.get_lines()}
    x0, x1 = zoom.get_xlim()
    assert x1 < cmp.steps / 2 and x0 < 0  # a zoom, starting at lag 0
    y0, y1 = zoom.get_ylim()
    for r in cmp.rows:
        assert r.reach is not None and x0 < r.reach < x1, r.cell
        mark = z_lines[f"zoom-reach-mark-{r.cell}"]
        assert list(mark.get_xdata()) == [r.reach] and y0 < mark.get_ydata()[0] < y1
        assert f"reach-{r.cell}" in {ln.get_gid() for ln in whole.get_lines()}
    assert y0 < cmp.fall < y1  # the threshold is in view
    # the crossings are told apart: the reaches' span is a visible part of the zoom's width
    assert (max(reach.values()) - min(reach.values())) / (x1 - x0) > 0.1
