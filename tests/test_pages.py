"""Issue 18: the BPTT page read as a learner reads it, by parsing what it shows — the questions
in order 1–4, and Q1 consistent with itself (the verdict's number is on the page, computed
from values the page shows; the LSTM's cell path diag(f_t) equals the forget gate it ran)."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

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
    for k, sec in enumerate(sections):
        rho_said = re.search(r"singular values average ×([0-9.]+)", html.unescape(sec)).group(1)
        paths = re.search(r'<table class="paths">.*?</table>', sec, re.S).group(0)
        cols = _columns(paths)
        shown = np.array(cols[state][:-1])  # the per-step rows; the last is the geometric mean
        geo = cols[state][-1]
        assert 'data-verdict="bound"' in paths
        assert f"{geo:.3g}" == rho_said  # the verdict's number is on the page ...
        assert geo == pytest.approx(np.exp(np.mean(np.log(shown))), rel=1e-12)  # ... from it
        sv = _columns(re.search(r'<table class="sv">.*?</table>', sec, re.S).group(0))
        assert sv["σ1"] == pytest.approx(list(shown), rel=1e-12)  # the σ table the verdict reads
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
