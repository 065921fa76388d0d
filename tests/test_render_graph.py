"""graph.svg, parsed: node ids, kind colours, legend, gradient borders, unrolled clusters."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import pairwise

import numpy as np
import pytest

from rnn_dissect.autograd.engine import Graph, Kind
from rnn_dissect.nets import mlp
from rnn_dissect.nets.cells import GATES, LayerParams, lstm_step, rnn_step
from rnn_dissect.render import graph as rg
from rnn_dissect.render.numbers import num

SVG = "{http://www.w3.org/2000/svg}"


def groups(svg: str) -> dict[str, ET.Element]:
    """Every <g> with an id, by id."""
    root = ET.fromstring(svg)
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g") if g.get("id")}


def fills(g: ET.Element) -> list[str]:
    return [e.get("fill", "").lower() for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path")]


def texts(g: ET.Element) -> str:
    return " ".join(t.text or "" for t in g.iter(f"{SVG}text"))


def bbox(g: ET.Element) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of the first shape in a node or cluster group (SVG coordinates)."""
    shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path"))
    nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", shape.get("d") or shape.get("points"))]
    xs, ys = nums[0::2], nums[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def inside(a, b, slack=1.0) -> bool:
    return (
        a[0] >= b[0] - slack
        and a[1] >= b[1] - slack
        and a[2] <= b[2] + slack
        and a[3] <= b[3] + slack
    )


@pytest.fixture(scope="module")
def net():
    return mlp.build(mlp.DEFAULTS)


@pytest.fixture(scope="module")
def net_svg(net):
    return rg.to_svg(net.graph, title="The 3:1:1 <network> & co")


def test_every_node_present_with_its_kind_colour(net, net_svg):
    gs = groups(net_svg)
    for n in net.graph:
        g = gs[n.id]
        classes = g.get("class", "").split()
        assert "node" in classes and f"kind-{n.kind.value.replace(' ', '-')}" in classes
        assert rg.PALETTE[n.kind].lower() in fills(g), n.id  # the card's header
        other = {c.lower() for k, c in rg.PALETTE.items() if k != n.kind}
        assert not other & set(fills(g)), n.id  # and no other kind's colour


def test_cards_show_name_value_and_gradient(net, net_svg):
    gs = groups(net_svg)
    for n in net.graph:
        text = texts(gs[n.id])
        assert n.name in text
        for v in np.ravel(n.value):
            assert num(v) in text, (n.id, v)
        if n.grad is None:
            assert "no gradient" in text
        else:
            for v in np.ravel(n.grad):
                assert num(v) in text, (n.id, v)
    assert "0.77" in texts(gs["z1"]) and "-0.318" in texts(gs["z1"])


def test_legend_lists_the_kinds_in_view(net, net_svg):
    legend = groups(net_svg)["legend"]
    text = texts(legend)
    kinds = {n.kind for n in net.graph}
    for k in kinds:
        assert k.value in text and rg.PALETTE[k].lower() in fills(legend)
    assert "gate" not in text  # only what is drawn
    assert "forward edge" in text and "dL/d(node)" in text


def test_the_3_1_1_graph_reads_in_a_700px_column(net, net_svg):
    """A left-to-right drawing puts the legend in its first column, which is as wide as its
    widest member: a wide legend pushed every card right (1,137 pt, of which the legend's
    column took 415). Shown at 700 px wide, as a blog column shows an <img>, the cards'
    11 pt numbers must still be at least 8 px tall, and the legend no wider than a card."""
    gs = groups(net_svg)
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', net_svg).group(1))
    value_px = 11 * 4 / 3 * 700 / (width_pt * 4 / 3)  # 11 pt text, scaled into 700 px
    assert value_px >= 8.0, (width_pt, value_px)
    x0, _, x1, _ = bbox(gs["legend"])
    widest = max(bbox(gs[n.id])[2] - bbox(gs[n.id])[0] for n in net.graph)
    assert x1 - x0 <= 1.4 * widest, (x1 - x0, widest)
    assert "the largest in view" in texts(gs["legend"])  # wrapped, not cut


def test_forward_edges_are_tagged(net, net_svg):
    gs = groups(net_svg)
    for n in net.graph:
        for k, p in enumerate(n.parents):
            edge = gs[f"edge:{p.id}>{n.id}:{k}"]
            assert "forward" in edge.get("class", "").split()


def test_title_is_escaped(net_svg):
    assert "The 3:1:1 &lt;network&gt; &amp; co" in net_svg


def stroke_width(g: ET.Element) -> float:
    shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path"))
    return float(shape.get("stroke-width", "1"))


def test_gradient_magnitude_sets_the_border():
    off = mlp.build({**mlp.DEFAULTS, "x": [-0.5, 1.2, -2.0]}).graph  # ReLU off
    gs = groups(rg.to_svg(off))
    assert stroke_width(gs["W1"]) < 1.0 < 3.0 <= stroke_width(gs["yhat"])  # |∇| 0 vs largest
    on = mlp.build(mlp.DEFAULTS).graph
    assert stroke_width(groups(rg.to_svg(on))["W1"]) > 2.0


def test_to_dot_needs_no_graphviz(net, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    dot = rg.to_dot(net.graph)
    assert dot.startswith("digraph") and 'id="W1"' in dot and "rankdir=LR" in dot
    with pytest.raises(rg.GraphvizMissing) as e:
        rg.to_svg(net.graph)
    assert "\n" not in str(e.value) and "apt-get install graphviz" in str(e.value)
    assert net.graph._repr_svg_() is None  # Jupyter falls back to the HTML table


def test_names_with_markup_are_escaped():
    g = Graph()
    a = g.param(np.array([1.0, -2.0]), id="a<b>", name='w "<&>"')
    g.backward((a * a).sum())
    svg = rg.to_svg(g)
    assert groups(svg)["a<b>"] is not None  # parses: the markup did not leak
    assert 'w "<&>"' in texts(groups(svg)["a<b>"])


# --------------------------------------------------------------------- unrolled graphs
def unrolled(cell: str, T: int = 3, V: int = 4, H: int = 3, L: int = 2, seed: int = 0) -> Graph:
    """A char model unrolled T steps: one-hot x_t → L cells → head → per-step loss."""
    rng = np.random.default_rng(seed)
    G = len(GATES[cell])
    step = {"rnn": rnn_step, "lstm": lstm_step}[cell]
    g = Graph()
    layers = []
    for k in range(L):
        fan = V if k == 0 else H
        layers.append(
            LayerParams(
                *(
                    g.param(
                        rng.uniform(-0.5, 0.5, shape), id=f"rnn.{name}_l{k}", name=f"{name}_l{k}"
                    )
                    for name, shape in (
                        ("weight_ih", (G * H, fan)),
                        ("weight_hh", (G * H, H)),
                        ("bias_ih", (G * H,)),
                        ("bias_hh", (G * H,)),
                    )
                )
            )
        )
    W_hy = g.param(rng.uniform(-0.5, 0.5, (V, H)), id="head.weight", name="W_hy")
    b_y = g.param(rng.uniform(-0.5, 0.5, V), id="head.bias", name="b_y")
    states = []
    for k in range(L):
        s = [g.state(np.zeros((1, H)), id=f"t0.l{k}.h", name="h", t=0, layer=k)]
        if cell == "lstm":
            s.append(g.state(np.zeros((1, H)), id=f"t0.l{k}.c", name="c", t=0, layer=k))
        states.append(tuple(s))
    losses = []
    for t in range(1, T + 1):
        inp = g.input(np.array([rng.integers(V)]), id=f"t{t}.x", name="x", t=t)
        for k in range(L):
            states[k] = step(g, layers[k], inp, states[k], t, k)
            inp = states[k][0]
        logits = g.apply("linear", inp, W_hy, b_y, id=f"t{t}.logits", name="logits")
        logits.layer = None  # the head belongs to the step, not to a layer
        y = g.target(np.array([rng.integers(V)]), id=f"t{t}.y", name="y", t=t)
        losses.append(g.apply("softmax_ce", logits, y, id=f"t{t}.loss", name="loss"))
    total = g.apply("addn", *losses, id="loss", name="L", kind=Kind.LOSS)
    total.t = None  # the sum over steps belongs to no step
    g.backward(total)
    return g


@pytest.fixture(scope="module", params=["rnn", "lstm"])
def unrolled_svg(request):
    g = unrolled(request.param)
    return request.param, g, groups(rg.to_svg(g, title=f"{request.param} unrolled"))


def test_one_cluster_per_step_in_order(unrolled_svg):
    _, g, gs = unrolled_svg
    steps = sorted({n.t for n in g if n.t is not None and n.kind != Kind.PARAMETER})
    assert steps == [0, 1, 2, 3]
    boxes = {t: bbox(gs[f"cluster_t{t}"]) for t in steps}
    for t in steps:
        assert "step" in gs[f"cluster_t{t}"].get("class", "")
    lefts = [boxes[t][0] for t in steps]
    assert lefts == sorted(lefts)  # left to right, in time order
    for a, b in pairwise(steps):
        assert boxes[a][2] <= boxes[b][0]  # side by side, not overlapping
    params = bbox(gs["cluster_params"])
    assert params[2] <= boxes[0][0]  # the shared parameters: one column at the far left
    for n in g:
        box = bbox(gs[n.id])
        if n.kind == Kind.PARAMETER:
            assert inside(box, params), n.id
        elif n.t is not None:
            assert inside(box, boxes[n.t]), n.id
            if n.layer is not None:
                assert inside(box, bbox(gs[f"cluster_t{n.t}_l{n.layer}"])), n.id
        else:
            assert not any(inside(box, b) for b in boxes.values()), n.id


def test_layers_stack_bottom_to_top(unrolled_svg):
    _, _, gs = unrolled_svg
    for t in (1, 2, 3):
        l0, l1 = bbox(gs[f"cluster_t{t}_l0"]), bbox(gs[f"cluster_t{t}_l1"])
        assert l1[3] <= l0[1]  # SVG y grows downwards: layer 1 sits above layer 0


def test_parameters_are_drawn_once_and_feed_every_step(unrolled_svg):
    _, g, gs = unrolled_svg
    assert sum(1 for k in gs if k == "rnn.weight_hh_l0") == 1
    fed = {n.t for n in g for p in n.parents if p.id == "rnn.weight_hh_l0"}
    assert fed == {1, 2, 3}
    for n in g:
        for k, p in enumerate(n.parents):
            assert f"edge:{p.id}>{n.id}:{k}" in gs


def stroke(g: ET.Element) -> str:
    path = next(e for e in g.iter(f"{SVG}path"))
    return path.get("stroke", "").lower()


def test_state_path_and_cell_highway(unrolled_svg):
    cell, _, gs = unrolled_svg
    blue, orange = rg.PATH_COLOURS["state"].lower(), rg.PATH_COLOURS["cell"].lower()
    for t in (1, 2, 3):
        for k in (0, 1):
            edge = gs[f"edge:t{t - 1}.l{k}.h>t{t}.l{k}.hw:0"]  # h_{t-1} → W_hh h_{t-1}
            assert "state-path" in edge.get("class", "") and stroke(edge) == blue
            if cell == "lstm":  # c_{t-1} → f ⊙ c_{t-1} → c_t: its own colour
                for eid in (
                    f"edge:t{t - 1}.l{k}.c>t{t}.l{k}.fc:1",
                    f"edge:t{t}.l{k}.fc>t{t}.l{k}.c:0",
                ):
                    assert "state-path" in gs[eid].get("class", "") and stroke(gs[eid]) == orange
    assert "state-path" not in gs["edge:t1.x>t1.l0.xw:1"].get("class", "")
    assert "state path" in texts(gs["legend"])
    if cell == "lstm":
        assert "cell highway" in texts(gs["legend"])


def test_highlight_can_be_turned_off():
    g = unrolled("rnn", T=2, L=1)
    assert "state-path" in rg.to_dot(g)
    assert "state-path" not in rg.to_dot(g, highlight={})


def test_tensor_detail_for_big_tensors():
    g = unrolled("lstm", T=1, V=5, H=4, L=1)
    W = g["rnn.weight_ih_l0"]  # (16, 5): more than 12 entries
    norm = num(float(np.linalg.norm(W.value)))
    auto = texts(groups(rg.to_svg(g))["rnn.weight_ih_l0"])
    assert "shape 16×5" in auto and norm in auto
    assert num(W.value[0, 0]) not in auto.replace(norm, "")
    small = texts(groups(rg.to_svg(g))["t1.l0.i"])  # (1, 4): every number
    assert all(num(v) in small for v in g["t1.l0.i"].value.ravel())
    tensor = texts(groups(rg.to_svg(g, detail="tensor"))["t1.l0.i"])
    assert "shape 1×4" in tensor and num(g["t1.l0.i"].value[0, 0]) not in tensor.split("‖")[0]
    values = texts(groups(rg.to_svg(g, detail="values"))["rnn.weight_ih_l0"])
    assert all(num(v) in values for v in W.value.ravel())
    with pytest.raises(ValueError, match="detail"):
        rg.to_dot(g, detail="everything")


def test_one_pass_dot_renders_too():
    """to_dot's one-pass text is valid for ``dot`` alone (the steps are clustered)."""
    import subprocess

    g = unrolled("rnn", T=2, L=1)
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=rg.to_dot(g).encode(), capture_output=True, check=True
    ).stdout.decode()
    gs = groups(svg)
    assert all(n.id in gs for n in g) and {"cluster_t0", "cluster_t1", "cluster_t2"} <= set(gs)


def test_conventions_of_other_builders():
    """Initial states named h0/c0 still start the path (matched by id t0.l0.h → t1.l0.h), and
    a head that inherits the top layer keeps the target from pulling the layer's inputs up."""
    g = unrolled("lstm", T=2, L=1)
    for s in ("h", "c"):
        g[f"t0.l0.{s}"].name = f"{s}0"
    for t in (1, 2):
        g[f"t{t}.logits"].layer = g[f"t{t}.loss"].layer = 0
    colours = rg.state_path(g)
    assert colours["t0.l0.h"] == rg.PATH_COLOURS["state"]
    assert colours["t0.l0.c"] == colours["t1.l0.fc"] == rg.PATH_COLOURS["cell"]
    gs = groups(rg.to_svg(g))
    for t in (1, 2):  # bottom to top: W_hh h_{t-1} under a under h under the logits
        ys = [bbox(gs[f"t{t}.{k}"])[1] for k in ("l0.hw", "l0.a", "l0.h", "logits")]
        assert ys == sorted(ys, reverse=True), t
