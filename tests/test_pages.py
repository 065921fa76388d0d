"""Issue 18: the BPTT page read as a learner reads it, by parsing what it shows — the questions
in order 1–4, and Q1 consistent with itself (the verdict's number is on the page, computed
from values the page shows; the LSTM's cell path diag(f_t) equals the forget gate it ran)."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from browser import browser, needs_chromium
from torch_ref import cell_steps

from rnn_dissect.bptt.dissection import dissect_text
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render import bptt_walkthrough


def _page(cell: str, layers: int = 2, text: str = "hello world"):
    model = CharModel.init(ModelConfig(cell, tuple(dict.fromkeys(text)), 3, layers), seed=0)
    d = dissect_text(model, text)
    return d, bptt_walkthrough.render(d, None, [], text)


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def cell_page(request):
    return request.param, *_page(request.param)


def test_questions_in_order_1_to_4(cell_page):
    _, _, page = cell_page
    at = [page.index(f'<h2 id="q{i}">Q{i} ') for i in (1, 2, 3, 4)]
    assert at == sorted(at)
    toc = re.search(r'<p class="toc">(.*?)</p>', page).group(1)
    assert re.findall(r'href="#(q\d)"', toc) == ["q1", "q2", "q3", "q4"]


def _columns(table: str) -> dict[str, list[float]]:
    """A rendered table → header → the full floats (title attributes) of its number cells."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    head = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", rows[0])]
    cols: dict[str, list[float]] = {h: [] for h in head}
    for r in rows[1:]:
        for h, td in zip(head, re.findall(r"<td[^>]*>(.*?)</td>", r, re.S), strict=True):
            m = re.search(r'title="([^"]+)"', td)
            if m:
                cols[h].append(float(m.group(1)))
    return cols


def test_q1_verdict_number_is_shown_and_computed_from_the_page(cell_page):
    cell, d, page = cell_page
    state = "[h; c]" if cell == "lstm" else "∂h_t/∂h_(t−1)"
    sections = re.split(r'<h3 id="q1-layer\d">', page.split('<h2 id="q2">')[0])[1:]
    assert len(sections) == 2
    ref = cell_steps(d.run.model, d.run.model.encode("hello world")[:-1])
    for k, sec in enumerate(sections):
        rho_said = re.search(r"singular values average ×([0-9.]+)", html.unescape(sec)).group(1)
        paths = re.search(r'<table class="paths">.*?</table>', sec, re.S).group(0)
        cols = _columns(paths)
        shown = np.array(cols[state][:-1])  # the per-step rows; the last is the geometric mean
        geo = cols[state][-1]
        assert 'data-verdict="bound"' in paths
        assert f"{geo:.3g}" == rho_said  # the verdict's number is on the page ...
        assert geo == pytest.approx(np.exp(np.mean(np.log(shown))), rel=1e-12)  # ... from it
        # σ1 of the whole state Jacobian ([h; c] for an LSTM), in the path table's bound column
        # and the σ table, is that of torch's own cell's Jacobian (float64 autograd)
        sigma1 = [float(np.linalg.norm(J, 2)) for J in ref.jacobians[k]]
        assert list(shown) == pytest.approx(sigma1, rel=1e-10)
        sv = _columns(re.search(r'<table class="sv">.*?</table>', sec, re.S).group(0))
        assert sv["σ1"] == pytest.approx(sigma1, rel=1e-10)
        if cell == "lstm":  # ∂c_t/∂c_(t−1) = diag(f_t): its norm is the largest forget gate
            f = [float(np.max(np.abs(g["f"]))) for g in d.gates[k]]
            assert cols["∂c_t/∂c_(t−1) = diag(f_t)"][:-1] == pytest.approx(f, rel=1e-12)
            assert "cell path" in sec and "diag(f_t)" in sec
            assert "diag(1 − h_t²) W_hh" not in sec
        if cell == "gru":
            z = [float(np.max(np.abs(g["z"]))) for g in d.gates[k]]
            assert cols["diag(z_t)"][:-1] == pytest.approx(z, rel=1e-12)
    if cell == "lstm":  # the [h; c] Jacobian at t = T, its c→c block diag(f_T)
        J = _columns(re.search(r'<table class="jacobian">.*?</table>', page, re.S).group(0))
        f_T = np.ravel(d.gates[0][-1]["f"])
        assert [J[f"c{i + 1}_(t−1)"][3 + i] for i in range(3)] == pytest.approx(list(f_T))


def test_heatmap_page_names_every_feature_and_unit_score_and_stays_readable(tmp_path):
    from planted import python_like_text, run
    from test_heatmap import wcag

    from rnn_dissect.neurons.features import builtin_features
    from rnn_dissect.reports.neurons import write_report

    text = python_like_text(np.random.default_rng(1), n_lines=40)
    acts = run(text)
    rep = write_report(acts, tmp_path, builtin_features(text), excerpt=200, contexts=2, window=8)
    page = (tmp_path / "heatmaps.html").read_text(encoding="utf-8")
    assert re.search(r"<title>What the units track</title>", page) and "<h1>" in page
    assert "Colour legend" in page and "Pearson r" in page and "2·AUC − 1" in page
    for k in ("h", "c", "i", "f", "g", "o"):  # every unit code of the cell is explained
        assert f"{k} = " in html.unescape(page)
    ids = set(re.findall(r'id="([^"]+)"', page))
    index = re.search(r'<table class="index">(.*?)</table>', page, re.S).group(1)
    rows = {html.unescape(re.search(r"<strong>(.*?)</strong>", r).group(1)): r
            for r in re.findall(r"<tr>(.*?)</tr>", index) if "<strong>" in r}  # fmt: skip
    assert list(rows) == rep.scores.features  # every feature, in order
    for name in rep.scores.features:
        linked = re.findall(r'<a href="#([^"]+)">([^<]+)</a> ([+-][0-9.]+)', rows[name])
        want = rep.scores.ranking(name, 3)
        assert len(linked) == len(want)
        for (anchor, code, score), r in zip(linked, want, strict=True):
            assert code == f"l{r['layer']} {r['kind']}{r['unit']}" and anchor in ids
            assert float(score) == pytest.approx(float(r["score"]), abs=5e-4)
            # the unit's heading line names the feature and the same score
            section = page.split(f'id="{anchor}">', 1)[1].split("</p>", 1)[0]
            assert f"{name} " in section and score in section
    for hexcol in set(re.findall(r"<span style=background:(#[0-9a-f]{6})", page)):
        assert wcag(hexcol) >= 4.5, hexcol  # black text readable on every colour shown
    spans = page.count("<span ")
    n = len(rep.heat_units)
    assert n * 200 < spans <= n * (200 + 2 * 2 * 17)  # the excerpt and the contexts, no more
    assert len(page.encode()) < spans * 80 + 30_000  # the page grows only with what it shows
    # the terminal summary explains its metrics and unit codes
    from rnn_dissect.reports.neurons import summary

    said = summary(rep.scores).splitlines()[-2:]
    assert "2AUC-1 = 2·ROC-AUC − 1" in said[0] and "AUC exact, from ranks" in said[0]
    assert said[1].startswith("  units: l1 c48 = layer 1, kind c, unit 48; kinds: h hidden")
    assert "f forget gate" in said[1]


@needs_chromium
def test_stepping_keeps_graph_and_numbers_in_view_at_1400x900(tmp_path):
    """Item 3: at 1400×900 the computed node and the frame's numbers are both on screen at
    every frame stepped through; forward frames hide the not-yet-computed gradients; rows say
    dL/dh backward and show input characters, not only their indices."""
    from rnn_dissect.render.graph import to_svg

    d, _ = _page("lstm")
    svg = to_svg(d.run.graph)
    (tmp_path / "w.html").write_text(
        bptt_walkthrough.render(d, svg, [], "hello world"), encoding="utf-8"
    )
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "w.html").as_uri())
        page.evaluate("document.querySelector('.stepper').scrollIntoView()")
        seen = set()
        for k in range(62):
            if k % 7 == 0 or k in (30, 31, 32):  # forward, the loss, backward
                box = page.evaluate(
                    """() => { const vis = e => { const r = e.getBoundingClientRect();
                      return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth
                        && r.width > 0; };
                    const hot = document.querySelector('#graph g.node.hl-computed');
                    const g = document.getElementById('graph').getBoundingClientRect();
                    const h = hot.getBoundingClientRect();
                    const cell = document.querySelector('#frame-rows td.v');
                    return {hot: vis(hot) && h.left < g.right && h.right > g.left
                              && h.top < g.bottom && h.bottom > g.top,
                            nums: vis(cell) && cell.textContent.length > 0,
                            phase: document.body.dataset.phase,
                            stroke: getComputedStyle(hot.querySelector('path')).stroke,
                            grad: [...document.querySelectorAll('#graph text.grad')]
                              .filter(t => getComputedStyle(t).visibility === 'visible').length,
                            rows: [...document.querySelectorAll('#frame-rows tr')]
                              .map(r => r.innerText)}; }"""
                )
                assert box["hot"] and box["nums"], (k, box)
                assert box["stroke"] == "rgb(17, 17, 17)"  # an outline, not a kind's colour
                if box["phase"] == "forward":
                    assert box["grad"] == 0, k  # no ∇ shown before backward computed it
                else:
                    assert box["grad"] > 0 and box["rows"][0].split("\t")[1].startswith("dL/d")
                seen.add(box["phase"])
                if k == 0:  # t = 1 reads x = 'h'
                    x = next(r for r in box["rows"] if "(t1.x)" in r)
                    assert '"h" (index' in x, x
                if k == 30:  # the loss frame keeps scalars: "scalar, 8 bytes", not "shape , 8"
                    kept = [r for r in box["rows"] if r.startswith("cache")]
                    assert any(r.endswith("scalar, 8 bytes") for r in kept), kept
                    assert not any("shape ," in r for r in kept)
            page.keyboard.press("ArrowRight")
        assert seen == {"forward", "backward"} and errors == []


def test_captions_name_what_they_mean(cell_page):
    """Item 9: captions never say "hands on nothing" nor "h, h, c": a name from another step or
    layer says which; backward frames speak of dL/dh."""
    _, d, _ = cell_page
    caps = bptt_walkthrough.frame_data(d)["captions"]
    assert not any("nothing" in c for c in caps)
    for c in caps:
        named = re.split(r"[:;]", c)
        for part in named[1:]:
            words = [w.strip() for w in part.split(" from ")[-1].split(",")]
            assert len(words) == len(set(words)), c  # no name twice in one list
    layer1 = next(c for c in caps if c.startswith("Forward at step t=2, layer 1"))
    assert "from h (layer 0), h (t=1)" in layer1
    back = next(c for c in caps if c.startswith("Backward at step t=2, layer 0"))
    assert "sends dL/dh (t=1)" in back and "computes dL/dh" in back


def test_dissect_notes_agree_and_large_arrays_are_brief(tmp_path, monkeypatch, capsys):
    """Item 5: the notes never say singular values are written and skipped at once, and name
    S; arrays over the limit are shape + norm in dissection.json (--full-arrays: all), said in
    a note; --json without --out writes no files."""
    from rnn_dissect.cli import main
    from rnn_dissect.reports import rnn as rnn_report

    big = CharModel.init(ModelConfig("lstm", tuple("abcdefg"), 256, 2), seed=0)
    kw, notes = rnn_report.plan(big, 8, None)
    assert not kw["jacobians"] and not any("their singular values are" in n for n in notes)
    assert any("S = 512, the state size ([h; c]: 2·256)" in n for n in notes)

    monkeypatch.setattr(rnn_report, "BIG_ARRAY", 30)
    monkeypatch.chdir(tmp_path)
    args = ["rnn", "--cell", "lstm", "--text", "hello world", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(tmp_path.iterdir()) == []  # --json alone: stdout only, no out/rnn
    d = dissect_text(
        CharModel.init(ModelConfig("lstm", tuple("helo wrd"), 3), seed=0), "hello world"
    )
    w = doc["grads"]["rnn.weight_ih_l0"]  # 12×8 = 96 numbers > 30
    assert w["shape"] == [12, 8] and w["norm"] == pytest.approx(
        np.linalg.norm(d.grads["rnn.weight_ih_l0"]), rel=1e-12
    )
    assert doc["grads"]["rnn.bias_ih_l0"] == pytest.approx(
        list(d.grads["rnn.bias_ih_l0"]), rel=1e-12
    )
    assert "left_out" in doc["weights"]["update"]["delta"]["rnn.weight_hh_l0"]
    assert any("--full-arrays" in n and "rnn.weight_ih_l0" in n for n in doc["notes"])
    assert main([*args, "--full-arrays", "--out", str(tmp_path / "o")]) == 0
    full = json.loads(capsys.readouterr().out)
    assert np.array_equal(np.array(full["grads"]["rnn.weight_ih_l0"]), d.grads["rnn.weight_ih_l0"])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "dissection.json", "graph.svg", "walkthrough.html"]  # fmt: skip


def test_nn_page_lists_what_backward_kept_with_bytes(tmp_path):
    """Item 7: the 3:1:1 page lists every saved tensor of every op, with its bytes (= its
    numbers × 8, float64), and the total counts a shared tensor once."""
    from rnn_dissect.cli import main

    assert main(["nn", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "walkthrough.html").read_text(encoding="utf-8")
    doc = json.loads((tmp_path / "dissection.json").read_text(encoding="utf-8"))
    rows = re.findall(r'<tr data-node="([^"]+)" data-saved="([^"]+)">(.*?)</tr>', page)
    want = [(n["id"], s["name"], s) for n in doc["nodes"] for s in n["saved"]]
    assert [(a, b) for a, b, _ in rows] == [(a, b) for a, b, _ in want] and len(rows) >= 6
    owned = {}
    for (_, _, cells), (nid, _, s) in zip(rows, want, strict=True):
        nbytes = int(re.search(r'<td class="bytes">(\d+)</td>', cells).group(1))
        assert nbytes == s["bytes"] == 8 * int(np.prod(s["shape"]))
        owned[s["ref"] or nid + s["name"]] = nbytes
    total = int(re.search(r'<span class="saved-total">(\d+)</span>', page).group(1))
    assert total == sum(owned.values()) and total < sum(s["bytes"] for _, _, s in want)


@needs_chromium
def test_nn_341_every_equation_result_inside_its_box(tmp_path):
    """Item 4: at 1400×900 no equation line hides its bold result past its box, the "Try it"
    command shows whole, and the graph's node text is drawn at a readable size."""
    from rnn_dissect.cli import main

    assert main(["nn", "--sizes", "3:4:1", "--out", str(tmp_path)]) == 0
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto((tmp_path / "walkthrough.html").as_uri())
        bad = page.evaluate(
            """() => { const out = [];
              for (const e of document.querySelectorAll('.eq')) {
                const r = e.getBoundingClientRect();
                if (e.scrollWidth > e.clientWidth + 1) out.push('scrolls: ' + e.textContent);
                for (const n of e.querySelectorAll('.n')) { const q = n.getBoundingClientRect();
                  if (q.right > r.right + 0.5 || q.left < r.left - 0.5 || q.bottom > r.bottom + 0.5)
                    out.push('outside: ' + e.textContent); } }
              return out; }"""
        )
        assert bad == []
        n_results = page.locator(".eq .n").count()
        assert n_results >= 10
        sizes = page.evaluate(
            """() => [...document.querySelectorAll('.graph g.node text')]
                 .map(t => t.getBoundingClientRect().height).filter(h => h > 0)"""
        )
        assert sorted(sizes)[len(sizes) // 2] >= 11  # median node text ≥ 11 px tall


def test_terminal_graph_print_progress_space_and_resume(tmp_path, capsys):
    """Item 8: print(graph) lists the nodes and says how to draw them; the collection reports
    progress to its end; streaming checks free space first and says the folder is temporary;
    train --resume says where it resumes."""
    from rnn_dissect import Graph
    from rnn_dissect.cli import main
    from rnn_dissect.errors import UserError
    from rnn_dissect.neurons.collect import collect
    from rnn_dissect.reports.collect_live import check_space

    g = Graph()
    W = g.param(np.array([[0.5, -0.3]]), name="W")
    x = g.input(np.array([1.0, 2.0]), name="x")
    loss = g.apply("linear", x, W).tanh().sum()
    g.backward(loss)
    text = str(g)
    assert all(n.id in text for n in g.nodes) and "0.990066" in text  # dL/dW[0]
    assert "to_svg(graph)" in text and repr(g).startswith("<Graph: 5 nodes (1 parameter")

    model = CharModel.init(ModelConfig("lstm", tuple("ab "), 4), seed=0)
    ticks: list[tuple[int, int]] = []
    collect(model, "ab ba " * 400, warmup=50, progress=lambda d, t: ticks.append((d, t)))
    assert len(ticks) >= 2 and ticks[-1] == (1, 1)
    done = [d / t for d, t in ticks]
    assert done == sorted(done) and done[-2] == 1.0  # the first pass reached its end

    with pytest.raises(UserError, match="MB are free"):
        check_space(tmp_path / "activations", 1 << 62, keep=False)
    said = check_space(tmp_path / "activations", 1000, keep=False)
    assert "temporary folder, deleted at the end" in said

    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world, hello there. " * 80, encoding="utf-8")
    run = ["train", str(corpus), "--out", str(tmp_path / "run"), "--hidden", "8", "--layers",
           "1", "--seq-len", "8", "--batch", "2", "--eval-every", "2", "--sample-every", "0"]  # fmt: skip
    assert main([*run, "--steps", "2"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--steps", "4"]) == 0
    assert "resuming from step 2 of 4" in capsys.readouterr().err


def test_training_run_report_shows_every_logged_loss_and_sample(tmp_path, capsys):
    """Item 11: train writes report.html into the run directory: a train and a val curve
    whose points are the logged losses, and every sample, text escaped."""
    from rnn_dissect.cli import main
    from rnn_dissect.reports.run_report import read_samples

    corpus = tmp_path / "c.txt"
    corpus.write_text("<b>hello</b> world, hello there. " * 80, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", str(corpus), "--out", str(run), "--hidden", "8", "--layers", "1",
                 "--seq-len", "8", "--batch", "2", "--steps", "6", "--log-every", "1",
                 "--eval-every", "2", "--sample-every", "3", "--sample-chars", "40"]) == 0  # fmt: skip
    assert "report.html" in capsys.readouterr().out
    page = (run / "report.html").read_text(encoding="utf-8")
    logged = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    for name, key in (("train", "train_loss"), ("val", "val_loss")):
        pts = re.findall(
            rf'<circle class="{name}" [^>]*data-step="(\d+)" data-loss="([^"]+)"', page
        )
        want = [(m["step"], m[key]) for m in logged if key in m]
        assert [(int(s), float(v)) for s, v in pts] == want and len(want) >= 2
        assert f'<polyline class="{name}"' in page
    samples = read_samples((run / "samples.txt").read_text(encoding="utf-8"))
    assert (
        [int(s) for s in re.findall(r'<h3 data-step="(\d+)"', page)]
        == [6, 3]  # latest first
        == sorted((s for s, _ in samples), reverse=True)
    )
    for _, text in samples:
        assert html.escape(text) in page
    assert "<b>hello" not in page.split('id="samples"')[1]  # a sample's markup stays text


def test_q1_tables_say_how_many_steps_they_leave_out():
    """Past MAX_ROWS steps the path and σ tables stop and say how many rows dissection.json
    has beyond them (the notice was lost once when Q1 moved to bptt_flow)."""
    from rnn_dissect.render.bptt_flow import q1
    from rnn_dissect.render.html_table import MAX_ROWS

    m = CharModel.init(ModelConfig("lstm", tuple("ab"), hidden_size=2), seed=0)
    T = MAX_ROWS + 7
    d = dissect_text(m, "ab" * (T // 2 + 1))
    page = q1(d)
    more = d.run.T - MAX_ROWS
    assert more > 0 and page.count(f"… {more} more rows in dissection.json") == 2


@needs_chromium
def test_nn_graph_fits_a_1400px_window_with_the_loss_in_view(tmp_path, capsys):
    """Issue 17: the 3:1:1 page's graph (1516 px at its own size) shrinks to the window from
    1000 px up, so the loss card at its right end is on screen, not behind a sideways scroll;
    its text stays ≥ 70 % of its own size."""
    from rnn_dissect.cli import main

    assert main(["nn", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto((tmp_path / "walkthrough.html").as_uri())
        fit = page.evaluate(
            """() => { const g = document.querySelector('.graph.wide');
              const s = g.querySelector('svg'), box = g.getBoundingClientRect();
              const r = s.querySelector('g#loss').getBoundingClientRect();
              return {scroll: g.scrollWidth - g.clientWidth, right: r.right, edge: box.right,
                      scale: s.getBoundingClientRect().width / s.width.baseVal.value}; }"""
        )
    assert fit["scroll"] <= 1 and fit["right"] <= fit["edge"], fit
    assert 0.7 <= fit["scale"] <= 1.0, fit


@needs_chromium
def test_every_table_shows_all_its_columns_at_1400px(tmp_path):
    """Issue 17: the LSTM's Q4 table (12 columns) hid ‖dc_next‖, ‖dc‖ and the vectors past
    the text column's edge; a table that wide now takes the window's width and shows them."""
    d, page_html = _page("lstm")
    (tmp_path / "w.html").write_text(page_html, encoding="utf-8")
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto((tmp_path / "w.html").as_uri())
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('.scroll')].map(s => ({
                 hidden: s.scrollWidth - s.clientWidth, right: s.getBoundingClientRect().right,
                 head: [...s.querySelector('tr').cells].map(c => c.textContent)}))"""
        )
        page_width = page.evaluate("document.documentElement.scrollWidth")
    q4 = [b for b in boxes if "‖dc_next‖ (carried)" in b["head"]]
    assert len(q4) == d.run.model.config.num_layers, boxes
    assert all(b["hidden"] <= 1 and b["right"] <= 1400 for b in boxes), boxes
    assert page_width <= 1400
