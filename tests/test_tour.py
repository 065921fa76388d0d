"""``rnn-dissect tour``: one self-contained page whose every number is computed.

One tiny tour (TINY: an LSTM of 16 units for a few seconds, on a small corpus) is built once;
then: the page in Debian's Chromium from file:// with every other request aborted (no console
errors, the sections in order, every figure drawn, the embedded explorer steps); every number
in the prose equals tour.json's; tour.json's numbers equal what the commands themselves
(``nn``, ``rnn``, ``rnn --cell lstm``, ``flow``, ``neurons``) write when run on their own;
bad user input is one line and exit code 2.
"""

from __future__ import annotations

import inspect
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import browser, needs_chromium

from rnn_dissect.cli import main
from rnn_dissect.render.tour_text import SECTIONS, fmt
from rnn_dissect.reports import tour

IDS = ["nn", "rnn", "q1", "q2", "q3", "q4", "lstm", "neurons"]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("tour")
    corpus = root / "corpus.txt"
    from rnn_dissect.train import loop

    corpus.write_text(inspect.getsource(loop) * 4, encoding="utf-8")  # ~80 KB of Python
    out = root / "out"
    tour.write_tour(out, replace(tour.TINY, corpus=str(corpus)), quiet=True)
    return out, json.loads((out / "tour.json").read_text(encoding="utf-8"))


class _Spans(HTMLParser):
    """Collects every ``span.v`` (key, text) and the text of each ``p.prose`` with those
    spans taken out."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[str, str]] = []
        self.prose: list[str] = []
        self._key: str | None = None
        self._in_prose = 0
        self._buf = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "iframe":
            return
        if tag == "p" and "prose" in (a.get("class") or ""):
            self._in_prose, self._buf = 1, ""
        if tag == "span" and a.get("class") == "v":
            self._key, self._text = a["data-key"], ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._key is not None:
            self.spans.append((self._key, self._text))
            self._key = None
        if tag == "p" and self._in_prose:
            self.prose.append(self._buf)
            self._in_prose = 0

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self._text += data
        elif self._in_prose:
            self._buf += data


def _value(text: str) -> Any:
    t = text.replace("−", "-").replace(",", "")
    if t == "—":
        return None
    try:
        return float(t)
    except ValueError:
        return text


def test_every_prose_number_is_tour_jsons(built):
    out, doc = built
    numbers = doc["numbers"]
    p = _Spans()
    p.feed((out / "index.html").read_text(encoding="utf-8"))
    assert len(p.spans) > 100 and len(p.prose) > 20
    for key, text in p.spans:
        want, got = numbers[key], _value(text)
        if isinstance(want, str):
            assert got == want or text == want, key
        elif want is None:
            assert got is None, key
        else:
            assert got == pytest.approx(want, rel=1e-3, abs=1e-12), (key, text, want)
    for para in p.prose:  # no number typed into the prose: all came through a slot
        assert not re.search(r"\d", para), para
    # every section of the text, and the keys it names, made it onto the page
    used = {k for k, _ in p.spans}
    assert {"nn.loss", "rnn.loss", "lstm.loss", "flow.rnn.reach", "train.steps"} <= used
    assert [s for s, _, _ in SECTIONS] == IDS


def _nodes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in doc["nodes"]}


def test_tour_json_equals_the_commands_own_json(built, tmp_path, capsys):
    out, doc = built
    n = doc["numbers"]
    # nn, and nn with the ReLU off
    assert main(["nn", "--out", str(tmp_path / "nn")]) == 0
    assert main(["nn", "--x", "-0.5,1.2,-2.0", "--out", str(tmp_path / "off")]) == 0
    nn = json.loads((tmp_path / "nn" / "dissection.json").read_text())
    off = json.loads((tmp_path / "off" / "dissection.json").read_text())
    a, b = _nodes(nn), _nodes(off)
    assert n["nn.loss"] == nn["loss"] and n["nn.loss_after"] == nn["sgd"]["loss_after"]
    assert n["nn.yhat"] == a["yhat"]["value"][0] and n["nn.z1"] == a["z1"]["value"][0]
    assert n["nn.d_z2"] == a["z2"]["grad"][0] and n["nn.d_h"] == a["h1"]["grad"][0]
    assert (
        n["nn.d_W1_0"] == a["W1"]["grad"][0][0] and n["nn.W2_new"] == nn["sgd"]["new"]["W2"][0][0]
    )
    assert n["nn.off.z1"] == b["z1"]["value"][0] < 0 and n["nn.off.d_h"] == b["h1"]["grad"][0]
    assert n["nn.off.d_z1"] == 0 and n["nn.off.d_W1_norm"] == np.linalg.norm(b["W1"]["grad"]) == 0
    # rnn and lstm on "hello"
    for cell in ("rnn", "lstm"):
        d = tmp_path / cell
        assert main(["rnn", "--cell", cell, "--out", str(d)]) == 0
        r = json.loads((d / "dissection.json").read_text())
        assert n[f"{cell}.loss"] == r["loss"]
        assert (
            n[f"{cell}.mem.measured"] == r["memory"]["measured_bytes"] == n[f"{cell}.mem.formula"]
        )
        assert n[f"{cell}.mem.states"] == r["memory"]["parts"]["states"]
        whh = np.array(r["grads"]["rnn.weight_hh_l0"])
        terms = np.array(r["step_grads"]["rnn.weight_hh_l0"])  # (T, G·H, H)
        assert n[f"{cell}.whh_norm"] == pytest.approx(np.linalg.norm(whh), rel=1e-15)
        assert n[f"{cell}.T"] == len(terms) == 4  # one term per step of "hello"
        for t in range(len(terms)):
            assert n[f"{cell}.term.{t + 1}"] == pytest.approx(np.linalg.norm(terms[t]), rel=1e-12)
        assert n[f"{cell}.whh_sum_err"] == pytest.approx(
            np.abs(terms.sum(0) - whh).max(), abs=1e-15
        )
        c1 = r["carry"][0][0]  # layer 0, t = 1
        assert n[f"{cell}.dh_next.1"] == pytest.approx(np.linalg.norm(c1["dh_next"]), rel=1e-14)
        if cell == "lstm":
            assert n["lstm.dc_next.1"] == pytest.approx(np.linalg.norm(c1["dc_next"]), rel=1e-14)
            f_mean = np.mean([np.mean(s["f"]) for s in r["gates"][0]])
            assert n["lstm.gate.f"] == pytest.approx(f_mean, rel=1e-14)
        lag = np.array(r["flow"]["layers"][0]["lag"])
        assert n[f"{cell}.lag_far"] == lag[-1, 0] and n[f"{cell}.lag_near"] == lag[-1, -1]
    # flow
    assert main(["flow", "--out", str(tmp_path / "flow")]) == 0
    flow = json.loads((tmp_path / "flow" / "flow.json").read_text())
    assert n["flow.T"] == flow["steps"]
    for row in flow["rows"]:
        assert n[f"flow.{row['cell']}.reach"] == row["reach"]
        assert n[f"flow.{row['cell']}.decay"] == row["decay_per_step"]
    # neurons on the tour's own training run
    chars = str(tour.TINY.neuron_chars)
    assert (
        main(["neurons", str(out / "run"), "--out", str(tmp_path / "neu"), "--max-chars", chars])
        == 0
    )
    for name in ("neurons.json", "tuning.json", "contexts.json"):
        assert (tmp_path / "neu" / name).read_bytes() == (out / "neurons" / name).read_bytes(), name
    neu = json.loads((tmp_path / "neu" / "neurons.json").read_text())
    tuning = json.loads((tmp_path / "neu" / "tuning.json").read_text())
    assert n["neurons.n_chars"] == neu["n_chars"] == tour.TINY.neuron_chars  # a 5% split > 2000
    for f, ranked in neu["features"].items():
        if not ranked:
            continue
        top = ranked[0]
        assert n[f"neurons.best.{f}.unit"] == f"layer {top['layer']} {top['kind']}{top['unit']}"
        assert n[f"neurons.best.{f}.score"] == top["score"]
    for f, t in tuning.items():
        assert n[f"neurons.tuned.{f}.crossed_at"] == t["crossed_at"]
        assert n[f"neurons.tuned.{f}.final"] == t["scores"][-1]
    snaps = sorted((out / "run" / "snapshots").glob("step*"))
    assert n["neurons.snapshots"] == len(snaps) >= 2
    capsys.readouterr()


@needs_chromium
def test_the_page_offline_in_chromium(built):
    out, doc = built
    url = (out / "index.html").resolve().as_uri()
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        asked: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def route(r: Any) -> None:
            asked.append(r.request.url)
            r.continue_() if r.request.url == url else r.abort()

        page.route("**/*", route)
        page.goto(url)
        ids = page.eval_on_selector_all("main section[id]", "els => els.map(e => e.id)")
        assert ids == IDS
        figs = page.eval_on_selector_all("figure[data-fig]", "els => els.map(e => e.dataset.fig)")
        assert len(figs) >= 14
        for name in figs:
            fig = page.locator(f'figure[data-fig="{name}"]')
            fig.scroll_into_view_if_needed()
            if fig.locator("iframe").count():
                continue  # the explorers: below
            kinds = fig.evaluate(
                """f => ({svg: [...f.querySelectorAll('svg')].map(s => s.querySelectorAll('rect,path,text,polygon').length),
                   img: [...f.querySelectorAll('img')].map(i => i.complete ? i.naturalWidth : 0),
                   hm: f.querySelectorAll('.txt span').length})"""
            )
            drawn = [v for v in kinds["svg"] + kinds["img"] if v > 0]
            assert drawn or kinds["hm"] > 0, (name, kinds)
            assert all(v > 0 for v in kinds["svg"] + kinds["img"]), (name, kinds)
        # the explorers: drawn, and their controls step through the frames
        for name, cell in (("rnn_explorer", "RNN"), ("lstm_explorer", "LSTM")):
            page.locator(f'figure[data-fig="{name}"]').scroll_into_view_if_needed()
            frame = page.frame_locator(f'figure[data-fig="{name}"] iframe')
            counter = frame.get_by_test_id("frame")
            total = counter.inner_text().split("/")[1].strip()
            assert counter.inner_text() == f"frame 0 / {total}" and int(total) > 8
            assert cell in frame.locator("body").inner_text()
            assert frame.locator("svg [data-node-id]").count() > 20
            frame.get_by_test_id("step-next").click()
            frame.get_by_test_id("step-next").click()
            assert counter.inner_text() == f"frame 2 / {total}"
            frame.get_by_test_id("step-prev").click()
            assert counter.inner_text() == f"frame 1 / {total}"
        # the numbers Chromium shows are tour.json's
        shown = page.eval_on_selector_all(
            "span.v", "els => els.map(e => [e.dataset.key, e.textContent])"
        )
        for key, text in shown:
            want = doc["numbers"][key]
            if isinstance(want, float):
                assert _value(text) == pytest.approx(want, rel=1e-3, abs=1e-12), key
        # a 700-px window (a phone, a blog's column): nothing scrolls sideways (issue 17: the
        # two columns of section titles were 888 px wide)
        page.set_viewport_size({"width": 700, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= 700
        assert errors == []
        assert asked == [url]  # nothing else was even requested


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["tour", "--out", str(busy), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and str(busy) in err[0]
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]  # nothing touched
    assert main(["tour", "--out", str(tmp_path / "a"), "--minutes", "0", "--quiet"]) == 2
    assert "--minutes" in capsys.readouterr().err
    assert main(["tour", "--out", str(tmp_path / "b"), "--corpus", str(tmp_path / "no.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--corpus" in err[0] and "does not exist" in err[0]
    assert main(["tour", "--minutes", "soon"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _figure_svgs(page: str, name: str) -> list[ET.Element]:
    """The SVG drawings inside ``<figure data-fig=NAME>``, parsed."""
    m = re.search(rf'<figure data-fig="{name}">(.*?)</figure>', page, re.S)
    assert m, name
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", m.group(1), re.S)]


def _fills(svg: ET.Element) -> dict[str, set[str]]:
    """Series name → the fills of its bars (a bar's title is 'NAME at STEP: VALUE')."""
    out: dict[str, set[str]] = {}
    for r in svg.iter(f"{SVG}rect"):
        if (t := r.find(f"{SVG}title")) is not None:
            out.setdefault(t.text.split(" at ")[0], set()).add(r.get("fill"))
    return out


def test_one_meaning_per_colour_and_every_bar_chart_names_its_scale(built):
    """Issue 17 (the pages reviewed): dh_next is the state's blue in Q1 and Q4 (as in the
    explorer), the direct part grey, dc_next the cell's vermilion; Q3's RNN / LSTM bars take
    the reach figure's neutral cell styles; each bar chart's y axis says log or linear."""
    from rnn_dissect.render.bptt_plots import (
        CELL_STYLES,
        GATE_SHADES,
        GRADIENT_COLOURS,
        PARAMETER_SHADES,
        SERIES_COLOURS,
    )
    from rnn_dissect.render.cards import PALETTE

    out, _ = built
    page = (out / "index.html").read_text(encoding="utf-8")
    (q1,) = _figure_svgs(page, "q1_bars")
    assert _fills(q1) == {
        "direct ‖dh_direct‖": {GRADIENT_COLOURS["dh_direct"]},
        "recurrent ‖dh_next‖": {GRADIENT_COLOURS["dh_next"]},
    }
    rnn, lstm = _figure_svgs(page, "q4_carry")  # one chart per cell
    assert _fills(rnn) == {"‖dh_next‖": {"#0072B2"}, "‖dh_raw‖": {GRADIENT_COLOURS["dh_raw"]}}
    assert _fills(lstm) == {"‖dh_next‖": {"#0072B2"}, "‖dc_next‖": {GRADIENT_COLOURS["dc_next"]}}
    # Q3 compares the cells: no hue (each names a node kind or a gradient) but the reach
    # figure's neutral greys, the LSTM's hatched (its pattern's lines in the LSTM's grey)
    (q3,) = _figure_svgs(page, "q3_bytes")
    fills = _fills(q3)
    assert fills["RNN bytes kept"] == {CELL_STYLES["rnn"].colour}
    ((lstm_fill,),) = [fills["LSTM bytes kept"]]
    pid = re.fullmatch(r"url\(#([\w-]+)\)", lstm_fill).group(1)
    (pattern,) = [p for p in q3.iter(f"{SVG}pattern") if p.get("id") == pid]
    assert {ln.get("stroke") for ln in pattern.iter(f"{SVG}line")} == {CELL_STYLES["lstm"].colour}
    hues = set(PALETTE.values()) | set(GRADIENT_COLOURS.values()) | set(SERIES_COLOURS)
    for cell in ("rnn", "lstm"):
        colour = CELL_STYLES[cell].colour
        assert colour not in hues and len({colour[1:3], colour[3:5], colour[5:7]}) == 1
    assert page.count(f'id="{pid}"') == 1  # unique on the page
    (q2,) = _figure_svgs(page, "q2_terms")  # parameters: shades of the graph's orange
    assert set().union(*_fills(q2).values()) == set(PARAMETER_SHADES)
    (gates,) = _figure_svgs(page, "lstm_gates")  # gates: shades of the graph's pink
    assert set().union(*_fills(gates).values()) == set(GATE_SHADES)
    lag = re.search(r'<figure data-fig="q1_lag">.*?<figcaption>(.*?)</figcaption>', page, re.S)
    assert "blank above the diagonal" in lag.group(1)  # the white cells are explained
    for name in ("q1_bars", "q2_terms", "q3_bytes", "q4_carry", "lstm_gates"):
        for svg in _figure_svgs(page, name):
            ylabel = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "ylabel"]
            assert len(ylabel) == 1 and ylabel[0].endswith(("log scale)", "linear, from 0)")), (
                name,
                ylabel,
            )


def test_detectors_table_names_the_unit_each_column_is_about(built):
    """The table's "first reached" column is about the probe text's best unit, which can
    differ from the validation text's: the row names both, and the threshold is tour.json's."""
    out, doc = built
    n = doc["numbers"]
    page = (out / "index.html").read_text(encoding="utf-8")
    table = re.search(r'<table data-testid="detectors">(.*?)</table>', page, re.S).group(1)
    head, *rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert f'data-key="neurons.threshold">{fmt(n["neurons.threshold"])}<' in head
    assert len(rows) >= 5
    tuned = 0
    for row in rows:
        feature = re.search(r"<td>(.*?)</td>", row).group(1)
        keys = re.findall(r'data-key="([^"]+)">([^<]*)<', row)
        assert (f"neurons.best.{feature}.unit", n[f"neurons.best.{feature}.unit"]) in keys
        if f"neurons.tuned.{feature}.unit" in n:
            assert (f"neurons.tuned.{feature}.unit", n[f"neurons.tuned.{feature}.unit"]) in keys
            tuned += 1
        else:  # the feature is constant on the probe text: no unit can track it there
            assert row.endswith("<td>—</td>"), row
    assert tuned >= 3


def test_a_negative_zero_is_written_0():
    assert fmt(-0.0) == "0" and fmt(0.0) == "0" and fmt(-0.25) == "−0.25"


def test_the_memory_comparison_says_which_total_is_which(built):
    """ "696 bytes of states against the RNN's 120, 904 in all" read as a list of three: each
    LSTM total now stands beside the RNN's, with its unit."""
    out, _ = built
    page = (out / "index.html").read_text(encoding="utf-8")
    para = next(p for p in re.findall(r"<p[^>]*>(.*?)</p>", page, re.S) if "lstm.mem.states" in p)
    text = re.sub(r"<[^>]+>", "", para)
    assert re.search(r"\S+ bytes of states against the RNN's \S+, and \S+ bytes in all", text)
    assert 'data-key="rnn.mem.measured"' in para


def test_contexts_show_each_detector_on_its_features_side(built):
    """Issue 17: the whitespace unit (score −0.97) was shown at its *highest* values — on
    letters, where whitespace is absent. A unit's first context now has its outlined
    character at the row's maximum if the unit scores positively, its minimum if negatively,
    and the label says which."""
    out, doc = built
    n = doc["numbers"]
    page = (out / "index.html").read_text(encoding="utf-8")
    fig = re.search(r'<figure data-fig="contexts">(.*?)</figure>', page, re.S).group(1)
    rows = re.findall(r'<div class="lab">(.*?)</div><div class="txt">(.*?)</div>', fig, re.S)
    assert rows
    assert any(", lowest)" in label for label, _ in rows)  # the tiny tour has such units
    seen = set()
    for label, spans in rows:
        unit, feature, side = re.fullmatch(
            r"(l\d+ \w+?\d+) \((\w+), (highest|lowest)\)", label
        ).groups()
        score = n[f"neurons.best.{feature}.score"]
        assert side == ("lowest" if score < 0 else "highest"), (label, score)
        if unit in seen:
            continue  # a later pick's window may hold an earlier, stronger pick
        seen.add(unit)
        vals = [float(v) for v in re.findall(r'title="([^"]+)"', spans)]
        mark = float(re.search(r'class="mark"[^>]*title="([^"]+)"', spans).group(1))
        assert mark == (min(vals) if side == "lowest" else max(vals)), (label, mark)
