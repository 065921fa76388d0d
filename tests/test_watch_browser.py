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


def test_the_part_of_dh_T_from_h_n_is_named_so(tmp_path):
    """A classifier reading h_n and c_n: at t = T the part of dL/dh_T beside the head's is
    torch's dL/dh_n (dc_next: dL/dc_n). The JSON says next_from "h_n" there (and "t+1"
    elsewhere), its numbers are torch's, dh = direct + that stays; the explorer's Q4 table and
    Q1 bars say "from h_n (the final state read by the model)", not "carried from t+1"."""
    import numpy as np

    from rnn_dissect import watch

    torch.manual_seed(2)
    T = 5
    m = torch.nn.LSTM(3, 4, batch_first=True).double()
    x = torch.randn(2, T, 3, dtype=torch.float64)
    with watch(m) as w:
        out, (h_n, c_n) = m(x)
        (out[:, 1].pow(2).sum() + (h_n * c_n).sum()).backward()
    # torch's dL/dh_n and dL/dc_n (at the state, not through the output's other step)
    hn, cn = h_n.detach().requires_grad_(), c_n.detach().requires_grad_()
    (hn * cn).sum().backward()
    d = w.dissection()
    d.save(tmp_path)
    doc = json.loads((tmp_path / "dissection.json").read_text())
    carry = doc["carry"][0]
    assert [c["next_from"] for c in carry] == ["t+1"] * (T - 1) + ["h_n"]
    np.testing.assert_allclose(carry[-1]["dh_next"], hn.grad[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(carry[-1]["dc_next"], cn.grad[0].numpy(), rtol=1e-12)
    last = d.part().dissection.carry[0][-1]
    np.testing.assert_array_equal(last.dh, last.dh_direct + last.dh_next)  # the sum stays
    page_file = tmp_path / "page.html"
    assert main(["explore", str(tmp_path), "--export", str(page_file)]) == 0
    with browser() as b:
        page, errors, _, _ = open_page(b, page_file.as_uri())
        page.get_by_test_id("tab-q4").click()
        rows = page.get_by_test_id("carry-table-l0").locator("tr").all_inner_texts()
        assert len(rows) == T + 1 and all("from h_n" not in r for r in rows[:-1]), rows
        cells = rows[-1].split("\t")
        assert (
            cells[0] == str(T) and cells[3].endswith(" from h_n") and cells[5].endswith(" from c_n")
        )
        assert float(cells[3].split()[0]) == pytest.approx(float(np.linalg.norm(hn.grad)), rel=1e-3)
        assert "the final state read by the model" in page.get_by_test_id(
            "carry-h_n-from-l0"
        ).get_attribute("title")
        note = page.get_by_test_id("carry-hn-note-l0").inner_text()
        assert (
            f"At t = {T} the model reads the final state: dh_next there is dL/dh_n, from h_n"
            in note
        )
        page.get_by_test_id("tab-q1").click()
        readout = page.get_by_test_id("flow-readout")
        page.locator(f'[data-testid=flow-bars] rect.hit[data-i="{T - 1}"]').hover()
        assert "from h_n (the final state read by the model)" in readout.inner_text()
        assert "carried from t+1" not in readout.inner_text()
        page.locator('[data-testid=flow-bars] rect.hit[data-i="1"]').hover()
        assert "carried from t+1" in readout.inner_text() and "h_n" not in readout.inner_text()
        # stepping: the total loss's backward frame sends h_T and c_T dL/dh_n and dL/dc_n
        tail = next(i for i, f in enumerate(doc["frames"]) if f["phase"] == "backward"
                    and f["t"] is None and f"t{T}.l0.h" in f["carries"])  # fmt: skip
        page.locator("body").click(position={"x": 1, "y": 1})
        for _ in range(tail + 1):
            page.keyboard.press("ArrowRight")
        assert page.get_by_test_id("frame").inner_text().startswith(f"frame {tail + 1} /")
        tags = page.locator("svg .tag text").evaluate_all("els => els.map(e => e.textContent)")
        assert any(t.startswith("← dh_n (from h_n)") for t in tags), tags
        assert any(t.startswith("← dc_n (from c_n)") for t in tags), tags
        assert errors == [], errors
        # a window that stops at position 3: its last lag row is named as the verdict names it
        win = tmp_path / "win"
        w.dissection(window=(0, 3)).save(win)
        said = json.loads((win / "dissection.json").read_text())["flow"]["layers"][0]
        said = said["verdict"]["last_row"]
        assert said.endswith("from after the window (positions 3…4)"), said
        assert main(["explore", str(win), "--export", str(win / "page.html")]) == 0
        page, errors, _, _ = open_page(b, (win / "page.html").as_uri())
        page.get_by_test_id("tab-q1").click()
        page.locator('[data-testid=lag-matrix] rect.hc[data-r="2"][data-c="0"]').hover()
        assert f"(layer 0): {said}, felt by h at t = 1, 2 step(s) back." in readout_text(page)
        page.locator('[data-testid=lag-matrix] rect.hc[data-r="1"][data-c="0"]').hover()
        assert "the loss read at t′ = 2, felt by h at t = 1" in readout_text(page)
        assert errors == [], errors


def readout_text(page) -> str:
    return page.get_by_test_id("flow-readout").inner_text()
