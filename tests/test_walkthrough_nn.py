"""walkthrough.html, parsed: every number equals the graph's, text escaped, nothing external."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from rnn_dissect.nets import mlp
from rnn_dissect.render import graph as rg
from rnn_dissect.render import nn_walkthrough
from rnn_dissect.render.numbers import num


class Page(HTMLParser):
    """Collects tagged numbers, attributes that point somewhere, meta tags and visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.numbers: list[dict[str, str]] = []
        self.links: list[str] = []
        self.metas: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        for k in ("src", "href", "xlink:href", "action"):
            if k in a:
                self.links.append(a[k])
        if tag == "meta":
            self.metas.append(a)
        if tag == "span" and "data-node" in a:
            self._open = {**a, "text": ""}

    def handle_endtag(self, tag):
        if tag == "span" and self._open is not None:
            self.numbers.append(self._open)
            self._open = None

    def handle_data(self, data):
        self.text.append(data)
        if self._open is not None:
            self._open["text"] += data


def plain(p: Page) -> str:
    """The visible text with runs of whitespace collapsed."""
    return " ".join("".join(p.text).split())


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


def page_for(values=None, sizes=None, lr=0.1, svg=True):
    net = mlp.build(values or mlp.DEFAULTS, sizes)
    step = mlp.sgd_update(net, lr)
    drawing = rg.to_svg(net.graph) if svg else None
    return net, step, nn_walkthrough.render(net, step, drawing)


def check_numbers(net, step, p: Page) -> set[tuple[str, str]]:
    """Every tagged number equals the graph's (exactly in its title, to 6 digits as text)."""
    g = net.graph
    seen = set()
    for n in p.numbers:
        node, field = n["data-node"], n["data-field"]
        idx = tuple(int(i) for i in n["data-index"].split(",")) if n["data-index"] else ()
        if field == "value":
            want = g[node].value[idx]
        elif field == "grad":
            want = g[node].grad[idx]
        elif field == "new":
            want = step.new[node][idx]
        else:  # the sigmoid's local derivative dŷ/dz₂ = ŷ(1 − ŷ)
            y = g[node].value[idx]
            want = y * (1 - y)
        assert float(n["title"]) == float(want), (node, field, idx)
        assert n["text"] == num(want, 6), (node, field, idx)
        seen.add((node, field))
    return seen


def test_defaults_every_number_matches_the_graph():
    net, step, page = page_for()
    p = parse(page)
    seen = check_numbers(net, step, p)
    for node in ("z1", "h1", "z2", "yhat", "loss"):
        assert (node, "value") in seen, node
    for node in ("yhat", "z2", "W2", "b2", "h1", "z1", "W1", "b1", "x"):
        assert (node, "grad") in seen, node
    for node in mlp.PARAMS:
        assert (node, "new") in seen, node
    text = plain(p)
    # the local derivatives written out: dŷ/dz₂ = ŷ(1 − ŷ), dz₂/dW₂ = h, dh/dz₁ = 1
    assert "dŷ/dz₂ = ŷ(1 − ŷ) = 0.602526·0.397474 = 0.239488" in text
    assert "dL/dW₂[0,0] = dL/dz₂ · h = (-0.397474)·0.77 = -0.306055" in text
    assert "dh/dz₁ = 1 (z₁ = 0.77 > 0)" in text
    assert "z₁ = Σᵢ W₁[0,i]·x[i] + b₁ = 0.3·0.5 + (-0.1)·(-1.2) + 0.2·2 + 0.1 = 0.77" in text
    assert "gradient is blocked" not in text and "lr = 0.1" in text


def test_inactive_relu_is_explained():
    net, step, page = page_for({**mlp.DEFAULTS, "x": [-0.5, 1.2, -2.0]})
    p = parse(page)
    check_numbers(net, step, p)
    text = plain(p)
    assert "The gradient is blocked." in text and "dead ReLU" in text
    assert "dh/dz₁ = 0 (z₁ = -0.57 ≤ 0)" in text
    z1 = [n for n in p.numbers if n["data-node"] == "z1" and n["data-field"] == "grad"]
    assert z1 and all(float(n["title"]) == 0.0 for n in z1)


def test_wider_network_and_long_tensors():
    sizes = (3, 4, 2)
    net, step, page = page_for(mlp.init_values(sizes, np.random.default_rng(3)), sizes)
    p = parse(page)
    seen = check_numbers(net, step, p)
    assert ("W1", "grad") in seen and ("z2", "grad") in seen
    text = plain(p)
    assert "… and 4 more entries" in text  # W1 is 4×3: eight written out
    assert "mean binary cross-entropy" in text


def test_self_contained_and_phone_ready():
    _, _, page = page_for()
    p = parse(page)
    assert not [u for u in p.links if u.startswith(("http://", "https://", "//"))]
    assert "script" not in p.tags and "link" not in p.tags and "img" not in p.tags
    assert any(
        m.get("name") == "viewport" and "width=device-width" in m.get("content", "")
        for m in p.metas
    )
    assert any(m.get("charset", "").lower() == "utf-8" for m in p.metas)
    assert "@media" in page  # the layout adapts to narrow screens
    assert page.count("<svg") == 1 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    for node_id in ("x", "W1", "z1", "h1", "yhat", "loss"):
        assert f'id="{node_id}"' in page  # the graph, inline


def test_text_is_escaped():
    net = mlp.build(mlp.DEFAULTS)
    page = nn_walkthrough.render(
        net, mlp.sgd_update(net, 0.1), None, title="<script>alert('x')</script> & co"
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "script" not in parse(page).tags


def test_without_graphviz_the_page_says_how_to_get_the_graph():
    _, _, page = page_for(svg=False)
    assert "<svg" not in page and "apt-get install graphviz" in page


@pytest.mark.parametrize("lr", [0.0, 0.5])
def test_sgd_table_uses_the_learning_rate(lr):
    net, step, page = page_for(lr=lr)
    p = parse(page)
    check_numbers(net, step, p)
    assert f"new = old − {num(lr, 6)}·dL/dw" in plain(p)
