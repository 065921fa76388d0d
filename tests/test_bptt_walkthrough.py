"""The "hello" walkthrough, checked by parsing it: the embedded frames JSON against the
Dissection data and PyTorch float64, the frame order, the highlighted ids on graph.svg,
the page's safety (text escaped, nothing fetched), and a real browser stepping through it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_ref import loop_run, rel

from rnn_dissect.bptt.dissection import dissect_text
from rnn_dissect.cli import main
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render import bptt_walkthrough

HELLO = CharModel.init(ModelConfig("rnn", tuple("helo"), hidden_size=3), seed=0)


@pytest.fixture(scope="module")
def hello_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hello")
    assert main(["rnn", "--out", str(out)]) == 0
    return out


def embedded(page: str) -> dict:
    m = re.search(
        r'<script type="application/json" id="walkthrough-data">(.*?)</script>', page, re.S
    )
    assert m is not None
    return json.loads(m.group(1))


def test_frames_order_and_ids_on_the_graph(hello_dir):
    data = embedded((hello_dir / "walkthrough.html").read_text(encoding="utf-8"))
    frames = data["frames"]
    T = 4
    fwd = [f for f in frames if f["phase"] == "forward"]
    bwd = [f for f in frames if f["phase"] == "backward"]
    assert frames == fwd + bwd and len(fwd) == len(bwd) == 2 * T + 1  # cell + head per step, loss
    assert [f["t"] for f in fwd] == [1, 1, 2, 2, 3, 3, 4, 4, None]
    assert [f["t"] for f in bwd] == [None, 4, 4, 3, 3, 2, 2, 1, 1]
    assert [f["part"] for f in bwd[1:3]] == ["head", "cell"]  # head first, then the cell
    assert len(data["captions"]) == len(frames)
    svg = (hello_dir / "graph.svg").read_text(encoding="utf-8")
    svg_ids = set(re.findall(r'<g id="([^"]+)" class="node', svg))
    for f in frames:
        for nid in f["computed"] + f["reads"] + f["carries"] + f["params"]:
            assert nid in svg_ids, (f["phase"], f["t"], nid)
    # the graph inlined in the page is the same drawing, so the script finds the ids
    page = (hello_dir / "walkthrough.html").read_text(encoding="utf-8")
    assert all(f'<g id="{i}" class="node' in page for i in svg_ids)


def test_frame_numbers_equal_dissection_and_torch(hello_dir):
    data = embedded((hello_dir / "walkthrough.html").read_text(encoding="utf-8"))
    d = dissect_text(HELLO, "hello")
    g = d.run.graph
    for nid, n in data["nodes"].items():
        assert np.array_equal(np.asarray(n["value"]), g[nid].value), nid  # exact: repr round trip
        if g[nid].grad is not None:
            assert np.array_equal(np.asarray(n["grad"]), g[nid].grad), nid
    # what each backward cell frame sends to h_{t-1} is dh_next_{t-1} = ∂L/∂h_{t-1} via step t
    idx = HELLO.encode("hello")
    loop = loop_run(HELLO, idx[None, :-1], idx[None, 1:])
    dh = [h.grad.clone() for h in loop.h[0][1:]]  # before autograd.grad can touch .grad
    for f in data["frames"]:
        if f["phase"] == "backward" and f["part"] == "cell":
            t = f["t"]
            sent = np.asarray(f["sent"][f"t{t - 1}.l0.h"])[0]
            assert np.array_equal(sent, d.carry[0][t - 2].dh_next if t > 1 else sent)
            # torch: the part of dL/dh_{t-1} that flows through h_t = dh_t · ∂h_t/∂h_{t-1}
            h_prev, h_t = loop.h[0][t - 1], loop.h[0][t]
            (part,) = torch.autograd.grad(h_t, h_prev, grad_outputs=dh[t - 1], retain_graph=True)
            assert rel(sent, part[0]) <= 1e-12, t
    # forward cell frames: h_t equals torch's h_t
    for t in range(1, 5):
        h = np.asarray(data["nodes"][f"t{t}.l0.h"]["value"])
        assert rel(h, loop.h[0][t].detach()) <= 1e-12


def test_page_is_self_contained_and_escaped(tmp_path):
    text = "</script><p>&"
    model = CharModel.init(ModelConfig("rnn", tuple(dict.fromkeys(text)), 2), seed=1)
    d = dissect_text(model, text)
    page = bptt_walkthrough.render(d, None, ["note <b>"], text)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<p>&" not in page and "note &lt;b&gt;" in page
    assert page.count("</script>") == 2  # the data block and the script only
    data = embedded(page)
    assert data["nodes"]["t1.x"]["value"] == [0]


def _chromium() -> str | None:
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")


@pytest.mark.skipif(
    _chromium() is None, reason="chromium not installed (scripts/install.sh --test)"
)
def test_browser_arrow_keys_and_buttons(hello_dir):
    sync_api = pytest.importorskip("playwright.sync_api")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=args)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((hello_dir / "walkthrough.html").resolve().as_uri())
            count, title = page.locator("#frame-count"), page.locator("#frame-title")
            assert count.inner_text() == "frame 1 / 18"
            assert title.inner_text() == "Forward · t = 1 · layer 0"
            assert page.locator("#prev").is_disabled()
            page.keyboard.press("ArrowRight")
            assert count.inner_text() == "frame 2 / 18"
            assert title.inner_text() == "Forward · t = 1 · head"
            page.keyboard.press("ArrowLeft")
            assert count.inner_text() == "frame 1 / 18"
            page.click("#next")
            page.click("#next")
            assert title.inner_text() == "Forward · t = 2 · layer 0"
            # the computed h_2 is highlighted on the graph, an unrelated node dimmed
            cls = page.locator('#graph g[id="t2.l0.h"]').get_attribute("class") or ""
            assert "hl-computed" in cls
            cls = page.locator('#graph g[id="t4.l0.h"]').get_attribute("class") or ""
            assert "hl-dim" in cls
            rows = page.locator("#frame-rows tr")
            assert rows.count() > 4 and "t2.l0.h" in rows.all_inner_texts()[3]
            for _ in range(20):  # past the end: stays on the last frame
                page.keyboard.press("ArrowRight")
            assert count.inner_text() == "frame 18 / 18"
            assert title.inner_text() == "Backward · t = 1 · layer 0"
            assert page.locator("#next").is_disabled()
            assert errors == []
        finally:
            browser.close()
