"""A watched module's saved dissection in Debian's Chromium: `rnn-dissect explore DIR --export`
gives a page that runs without console errors, shows the replay's (surrogate) loss to the
last bit, says it is that surrogate, names the steps by position (no characters), draws no
node over another (the h_n and c_n terms at t = T included) and walks every frame of the
dissection.json it was made from."""

from __future__ import annotations

import json

import pytest
from browser import browser, needs_chromium
from test_explore_browser import NODE_BOXES, open_page, overlapping

from rnn_dissect.cli import main

pytestmark = needs_chromium
torch = pytest.importorskip("torch")


def test_saved_watch_opens_in_the_explorer(tmp_path):
    from rnn_dissect import watch

    torch.manual_seed(0)
    m = torch.nn.LSTM(3, 4, batch_first=True).double()
    with watch(m) as w:
        out, (_, c_n) = m(torch.randn(2, 4, 3, dtype=torch.float64))
        (out.pow(2).sum() + c_n.sum()).backward()
    d = w.dissection()
    d.save(tmp_path)
    page_file = tmp_path / "page.html"
    assert main(["explore", str(tmp_path), "--export", str(page_file)]) == 0
    doc = json.loads((tmp_path / "dissection.json").read_text())
    frames = doc["frames"]
    with browser() as b:
        page, errors, _, _ = open_page(b, page_file.as_uri())
        loss = page.get_by_test_id("loss")
        assert float(loss.get_attribute("data-value")) == d.part().dissection.loss
        meaning = page.get_by_test_id("loss-box").get_attribute("title")
        assert meaning == f"loss = {doc['config']['loss']}" and "⟨g" in meaning, meaning
        assert "cross-entropy" not in meaning
        # what the module reads: vectors of 3 floats, no vocabulary
        summary = page.get_by_test_id("summary").inner_text()
        assert summary == "LSTM · H 4 · 1 layer · input 3 · T 4 · float64", summary
        steps = page.get_by_test_id("text-input").input_value()
        assert steps == "pos 0 · pos 1 · pos 2 · pos 3", steps
        nodes = page.evaluate(NODE_BOXES, "svg [data-node-id]")
        ids = {n[0] for n in nodes}
        assert {"t4.loss", "t4.g", "t4.gh", "hn.g", "hn.gh", "hn.loss", "cn.loss"} <= ids
        assert overlapping(nodes, nodes) == []
        frame = page.get_by_test_id("frame")
        for k in range(1, len(frames) + 1):
            page.keyboard.press("ArrowRight")
            assert frame.inner_text() == f"frame {k} / {len(frames)}"
        assert errors == [], errors


def test_a_reverse_upper_layer_is_named_as_the_module_names_it(tmp_path):
    """The part is layer 1's reverse direction of a 2-layer bidirectional GRU (recorded as the
    graph's only row): the rail and the row say "layer 1 reverse", as torch's weight names do."""
    from rnn_dissect import watch

    torch.manual_seed(1)
    m = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    with watch(m) as w:
        m(torch.randn(3, 2, 3, dtype=torch.float64))[0].sum().backward()
    w.dissection().save(tmp_path, main=(1, 1, 0))
    page_file = tmp_path / "page.html"
    assert main(["explore", str(tmp_path), "--export", str(page_file)]) == 0
    with browser() as b:
        page, errors, _, _ = open_page(b, page_file.as_uri())
        rail = page.locator(".rde-params .rail-group").all_inner_texts()
        assert rail == ["layer 1 reverse"], rail
        names = page.locator(".rde-params .pname").all_inner_texts()
        assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"], names
        rows = page.locator("svg .row-note").all_text_contents()
        assert rows == ["layer 1 reverse"], rows
        page.keyboard.press("ArrowRight")  # forward, step 1: the stepper names the row too
        head = page.locator(".rde-stepper .frame-title").inner_text()
        assert head == "Forward · t = 1 · layer 1 reverse", head
        assert errors == [], errors


def test_a_projected_lstm_page_shows_p_and_draws_m_apart(tmp_path):
    """nn.LSTM(proj_size=2): the summary names P, the m = o ⊙ tanh(c) node has its own place."""
    from rnn_dissect import watch

    torch.manual_seed(1)
    m = torch.nn.LSTM(3, 4, batch_first=True, proj_size=2).double()
    with watch(m) as w:
        m(torch.randn(2, 3, 3, dtype=torch.float64))[0].sum().backward()
    w.dissection().save(tmp_path)
    page_file = tmp_path / "page.html"
    assert main(["explore", str(tmp_path), "--export", str(page_file)]) == 0
    with browser() as b:
        page, errors, _, _ = open_page(b, page_file.as_uri())
        summary = page.get_by_test_id("summary").inner_text()
        assert summary == "LSTM · H 4 · P 2 · 1 layer · input 3 · T 3 · float64", summary
        seen = set()
        for _ in range(len(json.loads((tmp_path / "dissection.json").read_text())["frames"])):
            page.keyboard.press("ArrowRight")  # each step's cell opens in turn
            nodes = page.evaluate(NODE_BOXES, "svg [data-node-id]")
            assert overlapping(nodes, nodes) == []
            seen |= {n[0] for n in nodes}
        assert {"t2.l0.m", "t2.l0.tanh_c", "t2.l0.h"} <= seen, sorted(seen)
        assert errors == [], errors
