"""The explorer in Debian's Chromium: typing text gives `rnn-dissect dissect`'s loss, every
frame can be walked, a clicked node shows exactly the JSON's numbers, typed markup stays
text, the server refuses requests without its token, the exported page works with every
network request blocked, the notebook widget's module runs — and no console errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from browser import browser, needs_chromium

from rnn_dissect.cli import main
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render import heatmap
from rnn_dissect.reports import explore as ex
from rnn_dissect.reports.explore_session import Session, open_source
from rnn_dissect.weights import checkpoint

pytestmark = needs_chromium
MODEL = CharModel.init(ModelConfig("lstm", tuple("helo wrdt"), 3, 2), seed=1)


@pytest.fixture(scope="module")
def chromium():
    with browser() as b:
        yield b


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    data = ex.model_data(MODEL, "hello world")
    path = ex.export_html(data, tmp_path_factory.mktemp("export") / "page.html")
    return path, data


def open_page(b, url, offline=False):
    """A 1400×900 page at ``url``; returns (page, console errors, requested URLs)."""
    ctx = b.new_context(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    if offline:  # every request but the page's own file is refused
        ctx.route(
            "**/*",
            lambda route: route.continue_() if route.request.url == url else route.abort(),
        )
    page = ctx.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    response = page.goto(url)
    return page, errors, requests, response


def serve(session: Session):
    from rnn_dissect.web.server import start

    server, _ = start(session)
    return server


def test_typed_text_gives_the_dissect_commands_loss(chromium, tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    checkpoint.save(MODEL, ckpt)
    text = "hold the herd"
    assert main(["dissect", str(ckpt), "--text", text, "--json", "--out", str(tmp_path / "o")]) == 0
    want = json.loads(capsys.readouterr().out)["loss"]
    server = serve(open_source(str(ckpt), text="hello"))
    try:
        page, errors, _, _ = open_page(chromium, server.url)
        loss = page.get_by_test_id("loss")
        before = loss.get_attribute("data-value")
        summary = page.get_by_test_id("summary").inner_text()
        assert summary == "LSTM · H 3 · 2 layers · vocabulary 9 · T 4 · float64", summary
        box = page.get_by_test_id("text-input")
        box.fill(text)
        box.press("Enter")
        page.wait_for_function(
            "b => document.querySelector('[data-testid=loss]').dataset.value !== b", arg=before
        )
        assert float(loss.get_attribute("data-value")) == want  # every bit
        shown = loss.inner_text()
        assert len(shown.replace(".", "").lstrip("0")) >= 6 and abs(float(shown) - want) < 1e-7
        # a character outside the vocabulary: one clear line, the page keeps working
        box.fill("hello!")
        box.press("Enter")
        status = page.get_by_test_id("status")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=status]').textContent.includes('vocabulary')"
        )
        assert "not in the model's vocabulary" in status.inner_text()
        assert float(loss.get_attribute("data-value")) == want
        page.get_by_test_id("step-next").click()
        assert (
            page.get_by_test_id("frame").inner_text() == "frame 1 / 74"
        )  # T = 12: (12 · (2 layers + head) + 1) · 2
        assert errors == [], errors
    finally:
        server.shutdown()
        server.server_close()


def test_walk_every_frame_forward_then_backward(chromium, tmp_path):
    data = ex.model_data(MODEL, "hello")  # 2 layers, T = 4: 26 frames
    path = ex.export_html(data, tmp_path / "hello.html")
    frames = data["dissection"]["frames"]
    N = len(frames)
    page, errors, _, _ = open_page(chromium, path.as_uri())
    frame = page.get_by_test_id("frame")
    assert frame.inner_text() == f"frame 0 / {N}"
    assert page.get_by_test_id("step-prev").is_disabled()
    for k, f in enumerate(frames, start=1):
        page.keyboard.press("ArrowRight") if k % 2 else page.get_by_test_id("step-next").click()
        assert frame.inner_text() == f"frame {k} / {N}"
        # what the frame computes is lit on the graph: the node, or its closed cell
        lit = page.evaluate(
            """ids => ids.filter(id => {
                 const g = document.querySelector(`svg [data-node-id="${id}"]`);
                 if (g) return g.classList.contains('is-computed');
                 const m = id.match(/^t(\\d+)\\.l(\\d+)\\./);
                 return !!m && document.querySelector(`[data-cell="t${m[1]}.l${m[2]}"]`)
                   .classList.contains('is-computed');
               }).length""",
            f["computed"],
        )
        assert lit == len(f["computed"]), (k, f["computed"])
    assert page.get_by_test_id("step-next").is_disabled()
    page.get_by_test_id("step-prev").click()
    assert frame.inner_text() == f"frame {N - 1} / {N}"
    assert errors == [], errors


def test_clicked_node_shows_the_jsons_numbers(chromium, export):
    path, data = export
    page, errors, _, _ = open_page(chromium, path.as_uri())
    nodes = {n["id"]: n for n in data["dissection"]["nodes"]}
    for _ in range(5):  # to frame 5, t = 2 layer 1: its cell opens, its gates become clickable
        page.get_by_test_id("step-next").click()
    for nid in ("t2.l1.c", "t2.l1.f", "t2.logits", "t2.l1.h"):
        page.locator(f'svg [data-node-id="{nid}"]').click()
        assert page.get_by_test_id("node-id").inner_text().startswith(nid)
        for field, testid in (("value", "node-value"), ("grad", "node-grad")):
            titles = (
                page.get_by_test_id(testid)
                .locator(".num")
                .evaluate_all("els => els.map(e => e.title)")
            )
            want = ex.tensor(data, nodes[nid][field]).ravel()
            assert np.array_equal(np.array([float(t) for t in titles]), want), (nid, field)
    assert page.locator("table[data-testid=node-saved] tr").count() >= 1
    page.keyboard.press("Escape")
    assert page.get_by_test_id("node-id").count() == 0
    assert errors == [], errors


NODE_BOXES = """sel => [...document.querySelectorAll(sel)].map(e => {
  const r = (e.querySelector('.frame') || e).getBoundingClientRect();
  return [e.getAttribute('data-node-id') || e.textContent.trim(), r.left, r.top, r.right, r.bottom];
})"""


def overlapping(a, b):
    """The pairs of boxes (name, left, top, right, bottom) of ``a`` and ``b`` that share area."""
    return [
        (p[0], q[0])
        for p in a
        for q in b
        if p is not q and min(p[3], q[3]) > max(p[1], q[1]) and min(p[4], q[4]) > max(p[2], q[2])
    ]


def test_zoom_controls_cover_no_node(chromium, tmp_path):
    page_file = tmp_path / "x.html"
    argv = ["explore", "--cell", "lstm", "--hidden", "8", "--text", "hello world"]
    assert main([*argv, "--export", str(page_file)]) == 0
    page, errors, _, _ = open_page(chromium, page_file.as_uri())
    controls = ".rde-gtools button, .rde-gtools label"
    assert page.locator(controls).count() == 5
    for frames in (0, 3, 12):  # the overview, a forward frame (its cell open), a backward one
        for _ in range(frames):
            page.keyboard.press("ArrowRight")
        page.wait_for_timeout(50)
        nodes = page.evaluate(NODE_BOXES, "svg [data-node-id]")
        assert any(n[0] == "t1.x" for n in nodes)  # the input row is drawn and measured
        assert overlapping(nodes, page.evaluate(NODE_BOXES, controls)) == [], frames
        assert overlapping(nodes, nodes) == [], frames
        page.keyboard.press("Home")
    assert errors == [], errors


def test_markup_in_the_text_stays_text_and_the_token_is_required(chromium):
    server = serve(open_source(None, text="hello", cell="rnn", hidden=3))
    try:
        base = server.url.split("?")[0]
        page, errors, _, response = open_page(chromium, base)
        assert response.status == 403 and "token" in page.content()
        page.close()
        page, errors, _, _ = open_page(chromium, server.url)
        evil = "<img src=x onerror=alert(1)>"
        box = page.get_by_test_id("text-input")
        before = page.get_by_test_id("loss").get_attribute("data-value")
        box.fill(evil)
        box.press("Enter")
        page.wait_for_function(
            "b => document.querySelector('[data-testid=loss]').dataset.value !== b", arg=before
        )
        assert page.locator("img").count() == 0
        assert page.get_by_test_id("text-input").input_value() == evil
        chars = page.locator('svg [data-node-id$=".x"] .char').evaluate_all(
            "els => els.map(e => e.textContent)"
        )
        assert "".join(chars) == evil[:-1].replace(" ", "␣")  # the inputs, drawn as characters
        assert errors == [], errors  # no alert dialog, no error
    finally:
        server.shutdown()
        server.server_close()


def test_export_works_with_the_network_blocked(chromium, export):
    path, data = export
    page, errors, requests, _ = open_page(chromium, path.as_uri(), offline=True)
    assert page.get_by_test_id("loss").get_attribute("data-value") == repr(
        data["dissection"]["loss"]
    )
    assert page.get_by_test_id("text-input").get_attribute("readonly") is not None
    page.keyboard.press("End")
    page.locator('svg [data-node-id="t1.l0.h"]').click()
    for tab in ("q1", "q2", "q3", "q4"):
        page.get_by_test_id(f"tab-{tab}").click()
        assert page.get_by_test_id(f"panel-{tab}").is_visible()
    page.get_by_test_id("tab-q1").click()
    page.locator('[data-testid=lag-matrix] rect.hc[data-r="6"][data-c="2"]').hover()
    lit = page.locator("svg .node.is-path").evaluate_all("els => els.map(e => e.dataset.nodeId)")
    assert {"t3.l1.h", "t5.l1.h", "t7.l1.h", "t7.logits", "t7.loss"} <= set(lit)
    page.get_by_test_id("tab-q3").click()
    page.get_by_test_id("memory-all").check()
    cached = page.locator("svg .node.is-cached").count()
    assert cached >= 10
    steps = page.get_by_test_id("memory-table").locator("tr td:first-child").all_inner_texts()
    T = len(data["text"]) - 1  # issue 17: t = 0 came after t = 1
    assert steps == [str(t) for t in range(T + 1)] + ["—"], steps
    assert page.get_by_test_id("graph").locator("[data-node-id]").count() > 100
    assert requests == [path.as_uri()], requests  # nothing but the page itself
    assert errors == [], errors


def test_a_700px_window_shows_every_panel_whole_and_apart(chromium, export):
    """Below 1100 px the panels stack in one column (a phone, a blog column, the tour's
    frame, which is 1,070 px wide at a 1400-px window). Issue 17: the answers' box kept a
    flex basis of 38 % of a short column, so with `overflow: visible` its tables spilled
    out of the box and under the inspector. Now every panel is as tall as its content, each
    answer tab fits its box, the inspector sits apart from it — under the stepper, so a
    clicked node's numbers are next to the graph — and the page does not scroll
    sideways (a table wider than the column — Q4 of an LSTM — scrolls inside its box)."""
    path, _ = export
    ctx = chromium.new_context(viewport={"width": 700, "height": 900})
    try:
        page = ctx.new_page()
        page.goto(path.as_uri())
        page.get_by_test_id("loss").wait_for()
        box = "e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, e.scrollHeight]; }"
        for tab in ("q1", "q2", "q3", "q4"):
            page.get_by_test_id(f"tab-{tab}").click()
            top, bottom, content = page.locator(".rde-answers").evaluate(box)
            assert content <= bottom - top + 1, (tab, bottom - top, content)  # nothing spills
            inspector_bottom = page.locator(".rde-inspector").evaluate(box)[1]
            assert inspector_bottom <= top + 1, (tab, top, inspector_bottom)  # apart
        # the inspector right under the stepper: a clicked node's numbers next to the graph
        page.locator('svg [data-node-id="t1.l1.h"]').click()
        stepper = page.locator(".rde-stepper").evaluate(box)[1]
        inspector = page.locator(".rde-inspector").evaluate(box)[0]
        assert 0 <= inspector - stepper <= 40, (stepper, inspector)
        assert "t1.l1.h" in page.locator(".rde-inspector").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 700
    finally:
        ctx.close()


def test_an_exported_page_says_which_weights_it_shows(chromium, tmp_path, capsys):
    """Issue 17 (a writer's export): which weights a page shows was only a hover title, so
    a screenshot of an untrained RNN and of a trained one looked alike. The label is now on
    the page, in the header, at 1400 px and at 700 px."""
    fresh, trained = tmp_path / "fresh.html", tmp_path / "trained.html"
    ckpt = tmp_path / "m.safetensors"
    checkpoint.save(MODEL, ckpt)
    assert main(["explore", "--seed", "3", "--export", str(fresh)]) == 0
    assert main(["explore", str(ckpt), "--text", "hello", "--export", str(trained)]) == 0
    capsys.readouterr()
    for path, label in ((fresh, "fresh weights, seed 3"), (trained, str(ckpt))):
        for width in (1400, 700):
            page, errors, requests, _ = open_page(chromium, path.as_uri(), offline=True)
            page.set_viewport_size({"width": width, "height": 900})
            source = page.get_by_test_id("source")
            assert source.count() == 1, path.name
            assert source.inner_text() == label
            box = source.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
            assert requests == [path.as_uri()] and errors == []
            page.context.close()


def test_neuron_text_takes_the_heatmap_pages_colours(chromium, tmp_path):
    """Issue 17: the explorer's neurons view ran its blue-white-red to pure blue and pure
    red, heatmaps.html (render/heatmap.py) to lighter ends chosen so black text keeps 4.5:1
    contrast — the same unit looked different on the two pages, and a strongly negative
    character was black on rgb(0, 0, 255) (2.4:1). Every character's background is now
    heatmap.colour of its value, for an h unit and for a sigmoid gate."""
    data = ex.model_data(MODEL, "hello world", neurons={})
    path = ex.export_html(data, tmp_path / "n.html")
    page, errors, _, _ = open_page(chromium, path.as_uri(), offline=True)
    page.get_by_test_id("tab-neurons").click()
    for kind in ("h", "f"):
        page.locator("select[aria-label=kind]").select_option(kind)
        page.get_by_test_id("neuron-unit").fill("1")
        page.get_by_test_id("neuron-unit").dispatch_event("change")
        chars = page.get_by_test_id("neuron-char").evaluate_all(
            "els => els.map(e => [e.title, getComputedStyle(e).backgroundColor])"
        )
        values = np.array([float(title.split(": ")[1]) for title, _ in chars])
        center, scale = heatmap.colour_scale(kind, values)
        assert len(chars) == len("hello world") - 1
        for v, (_, shown) in zip(values, chars, strict=True):
            want = heatmap.colour(v, center, scale)
            rgb = [int(c) for c in shown[shown.index("(") + 1 : -1].split(",")]
            assert (
                max(abs(a - int(want[1 + 2 * i : 3 + 2 * i], 16)) for i, a in enumerate(rgb)) <= 1
            )
            assert heatmap.contrast(want) >= 4.5
    assert errors == []
    page.context.close()


def test_lag_matrix_greys_fit_the_values_shown(chromium, tmp_path):
    """Issue 17: the lag matrix's greys spanned a fixed 6 decades below its largest value,
    so on "hello" (values within 1.6 decades) every cell was nearly black and the fading
    through time did not show. The greys now span the matrix's own smallest to largest
    value, and a legend writes both numbers (as text); Q2's per-step terms likewise."""
    data = ex.model_data(ex.fresh_model("rnn", "hello", 3, 1), "hello")  # `explore`'s default
    lag = ex.tensor(data, data["dissection"]["flow"]["layers"][0]["lag"])
    T = lag.shape[0]
    page, errors, _, _ = open_page(chromium, ex.export_html(data, tmp_path / "h.html").as_uri())
    page.get_by_test_id("tab-q1").click()
    cells = page.locator("[data-testid=lag-matrix] rect.hc").evaluate_all(
        "els => els.map(e => [+e.dataset.r, +e.dataset.c, e.getAttribute('fill')])"
    )
    assert sorted((r, c) for r, c, _ in cells) == [(r, c) for r in range(T) for c in range(r + 1)]
    grey = {}
    for r, c, fill in cells:
        rgb = [int(x) for x in fill.removeprefix("rgb(").removesuffix(")").split(",")]
        assert rgb[0] == rgb[1] == rgb[2], fill
        grey[r, c] = rgb[0]
    vals = {k: float(lag[k]) for k in grey}
    lo, hi = min(vals, key=vals.get), max(vals, key=vals.get)
    assert vals[hi] / vals[lo] < 100  # a short text: the values span < 2 decades
    assert grey[lo] - grey[hi] >= 150  # the smallest light, the largest dark
    assert 0 < grey[hi] < 40 and 200 < grey[lo] < 255  # white would mean 0 / not drawn
    for a in grey:  # darker = more gradient, and a 1.5× larger value is visibly darker
        for b in grey:
            if vals[a] >= 1.5 * vals[b]:
                assert grey[b] - grey[a] >= 15, (a, b, vals[a], vals[b], grey[a], grey[b])
    legend = page.get_by_test_id("lag-scale")
    assert float(legend.get_attribute("data-lo")) == vals[lo]
    assert float(legend.get_attribute("data-hi")) == vals[hi]
    shown = legend.locator(".num").all_inner_texts()
    assert [float(x) for x in shown] == pytest.approx([vals[lo], vals[hi]], rel=5e-3)
    assert "log scale" in legend.inner_text() and "smallest shown" in legend.inner_text()
    # Q2's per-step weight terms: the same fitted greys; W_hh's term at t = 1 is exactly 0
    # (h_0 = 0), drawn white, as the legend says
    W = data["dissection"]["weights"]["step_norms"]
    norms = {n: ex.tensor(data, W[n]) for n in W}
    page.get_by_test_id("tab-q2").click()
    cells = page.locator("[data-testid=weights-terms] rect.hc").evaluate_all(
        "els => els.map(e => [+e.dataset.r, +e.dataset.c, e.getAttribute('fill')])"
    )
    vals = {(r, c): float(norms[list(W)[r]][c]) for r, c, _ in cells}
    fills = {(r, c): f for r, c, f in cells}
    assert len(cells) == len(W) * T and vals[list(W).index("rnn.weight_hh_l0"), 0] == 0
    grey = {k: int(f.removeprefix("rgb(").split(",")[0]) for k, f in fills.items() if vals[k] > 0}
    assert all(fills[k] == "#ffffff" for k in vals if vals[k] == 0)
    lo, hi = min(grey, key=vals.get), max(grey, key=vals.get)
    assert grey[lo] - grey[hi] >= 150
    for a in grey:
        for b in grey:
            if vals[a] >= 1.5 * vals[b]:
                assert grey[b] - grey[a] >= 10, (a, b)
    legend = page.get_by_test_id("weights-scale")
    assert [float(legend.get_attribute(f"data-{k}")) for k in ("lo", "hi")] == [vals[lo], vals[hi]]
    assert "white = exactly 0" in legend.inner_text()
    assert errors == [], errors


def test_widget_module_renders_and_asks_python(chromium, tmp_path):
    from rnn_dissect.web.widget import esm

    data = ex.model_data(MODEL, "hello")
    harness = (
        "<!DOCTYPE html><html><body><div id='w'></div><script type='module'>\n"
        + esm().replace("export default {", "const widget = {")
        + """
const listeners = {};
let value = document.getElementById("data").textContent;
window.sent = [];
window.model = {
  get: (k) => value,
  set: (v) => { value = v; },
  on: (ev, fn) => { (listeners[ev] = listeners[ev] || []).push(fn); },
  off: () => {},
  send: (m) => window.sent.push(m),
  fire: (ev, m) => (listeners[ev] || []).forEach((fn) => fn(m)),
};
widget.render({ model: window.model, el: document.getElementById("w") });
</script><script type="application/json" id="data">"""
        + ex.dumps(data).replace("<", "\\u003c")
        + "</script></body></html>"
    )
    path = tmp_path / "widget.html"
    path.write_text(harness, encoding="utf-8")
    page, errors, _, _ = open_page(chromium, path.as_uri())
    assert page.locator(".rde.embedded").count() == 1
    box = page.get_by_test_id("text-input")
    box.fill("hold")
    box.press("Enter")
    assert page.evaluate("window.sent") == [{"type": "dissect", "text": "hold"}]
    reply = ex.dumps(ex.model_data(MODEL, "hold"))  # what Python would set
    page.evaluate("v => { model.set(v); model.fire('msg:custom', {type: 'done'}); }", reply)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=text-input]').value === 'hold'"
    )
    want = json.loads(reply)["dissection"]["loss"]
    assert float(page.get_by_test_id("loss").get_attribute("data-value")) == want
    page.get_by_test_id("text-input").press("Enter")
    page.evaluate("() => model.fire('msg:custom', {type: 'error', error: 'one clear line'})")
    assert page.get_by_test_id("status").inner_text() == "one clear line"
    page.focus(".rde")
    page.keyboard.press("ArrowRight")
    assert page.get_by_test_id("frame").inner_text() == "frame 1 / 20"
    assert errors == [], errors


def test_session_for_a_saved_page_is_read_only(tmp_path):
    d = ex.model_data(MODEL, "hello")
    (tmp_path / "explore.json").write_text(ex.dumps(d), encoding="utf-8")
    s = open_source(str(tmp_path))
    assert not s.can_recompute and s.data() == json.loads(ex.dumps(d))


def test_a_big_page_fetches_a_clicked_nodes_numbers(chromium, monkeypatch):
    monkeypatch.setattr(ex, "NODE_FLOATS", 10)  # as if the text were long
    server = serve(open_source(None, text="hello", cell="lstm", hidden=3))
    try:
        page, errors, _, _ = open_page(chromium, server.url)
        for _ in range(3):  # frame 3: t = 2, its cell opens
            page.get_by_test_id("step-next").click()
        page.locator('svg [data-node-id="t2.l0.f"]').click()
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=node-value] .num').length > 0"
        )
        titles = (
            page.get_by_test_id("node-value")
            .locator(".num")
            .evaluate_all("els => els.map(e => e.title)")
        )
        want = server.session.node("hello", "t2.l0.f")["value"]
        assert [float(t) for t in titles] == list(np.ravel(want))
        assert errors == [], errors
    finally:
        server.shutdown()
        server.server_close()
