"""``walkthrough.html`` for the I:H:O network: forward, backward and one SGD step, with numbers.

Self-contained and phone-ready (:mod:`rnn_dissect.render.page`), the graph's SVG inline.
Each equation is written three times over: symbols, the numbers put in, the result; every
result is a tagged number (field value, grad, new, or local for dŷ/dz₂) equal to the graph's.
Long tensors are written out up to ``MAX_ITEMS`` entries; dissection.json has them all.
"""

from __future__ import annotations

import html

import numpy as np

from rnn_dissect.nets.mlp import MLP, SGDUpdate
from rnn_dissect.render.graph import inline_svg
from rnn_dissect.render.nn_equations import MAX_ITEMS, backward, forward, items
from rnn_dissect.render.numbers import num
from rnn_dissect.render.page import DIGITS, eq, number, page
from rnn_dissect.render.table import nodes_html

__all__ = ["render"]


def _sgd(update: SGDUpdate) -> str:
    rows = []
    for name in update.old:
        old, grad, new = update.old[name], update.grad[name], update.new[name]
        for idx in items(old.shape):
            label = f"{name}[{','.join(map(str, idx))}]"
            rows.append(
                f"<tr><td>{html.escape(label)}</td><td>{num(old[idx], DIGITS)}</td>"
                f'<td class="g">{num(grad[idx], DIGITS)}</td><td>'
                f"{number(new[idx], name, 'new', idx)}</td></tr>"
            )
        if old.size > MAX_ITEMS:
            rows.append(
                f'<tr><td colspan="4">… {old.size - MAX_ITEMS} more entries of '
                f"{html.escape(name)} in dissection.json</td></tr>"
            )
    lr = num(update.lr, DIGITS)
    change = "lower" if update.loss_after < update.loss_before else "not lower"
    return "\n".join(
        [
            "<h2>One SGD step</h2>",
            f'<p class="why">Every weight moves against its gradient: w ← w − lr · dL/dw, with '
            f"lr = {lr}. Gradients that are 0 (a blocked ReLU) leave their weights unchanged.</p>",
            '<div class="scroll"><table><tr><th>weight</th><th>old</th><th>dL/dw</th>'
            f"<th>new = old − {lr}·dL/dw</th></tr>",
            *rows,
            "</table></div>",
            eq("loss before", number(update.loss_before, "loss", "value")),
            eq("loss after (same example, new weights)", num(update.loss_after, DIGITS))
            + f'<p class="why">The loss is {change} after the step.</p>',
        ]
    )


def _saved(net: MLP) -> str:
    """What the backward pass kept from the forward pass: per op, each saved tensor with the
    node it belongs to, its shape and bytes; the total counts a tensor shared by two ops once."""
    rows, owned = [], {}
    for n in net.graph.nodes:
        for st in n.saved_tensors():
            key = st.ref or f"{n.id}.{st.name}"  # the same node's value, read by two ops: once
            owned[key] = st.nbytes
            shape = "×".join(map(str, st.shape)) or "scalar"
            whose = (
                f"{net.graph[st.ref].name} ({st.ref})"
                if st.ref
                else "an extra array the op computed"
            )
            rows.append(
                f'<tr data-node="{html.escape(n.id)}" data-saved="{html.escape(st.name)}">'
                f"<td>{html.escape(n.name)} = {html.escape(n.op)}(…)</td>"
                f"<td>{html.escape(st.name)}</td><td>{html.escape(whose)}</td>"
                f'<td>{shape}</td><td class="bytes">{st.nbytes}</td></tr>'
            )
    total = sum(owned.values())
    return "\n".join(
        [
            '<h2 id="saved">What backward kept</h2>',
            '<p class="why">To run backward, each op keeps some tensors from the forward pass '
            "(its inputs, or its own output: σ′ = ŷ(1 − ŷ) needs only ŷ) — these, with their "
            "bytes, are the memory a forward pass holds for backward.</p>",
            '<div class="scroll"><table class="saved"><tr><th>op</th><th>saved as</th>'
            "<th>which tensor (node)</th><th>shape</th><th>bytes</th></tr>",
            *rows,
            "</table></div>",
            f'<p class="eq wrap">total kept: <span class="saved-total">{total}</span> bytes in '
            f"{len(owned)} tensors (float64: 8 bytes per number; a tensor two ops read is "
            "counted once)</p>",
        ]
    )


def _try(net: MLP) -> str:
    """Commands to see the other ReLU case: move b₁ so that z₁ = ±1 for every unit."""
    g = net.graph
    z1, b1 = g["z1"].value, g["b1"].value
    off = ",".join(num(v, DIGITS) for v in b1 - z1 - 1.0)
    on = ",".join(num(v, DIGITS) for v in b1 - z1 + 1.0)
    sizes = ":".join(map(str, net.sizes))
    flags = " ".join(
        f"--{k} {','.join(num(v, 12) for v in g[k].value.ravel())}"
        for k in ("x", "y", "W1", "W2", "b2")
    )
    lines = ["<h2>Try it</h2>"]
    if np.all(z1 > 0):
        lines.append('<p class="why">Make the ReLU inactive and watch the gradient stop at h:</p>')
        lines.append(
            f'<div class="eq">rnn-dissect nn --sizes {sizes} {html.escape(flags)} '
            f"--b1 {off} --out DIR</div>"
        )
        if net.sizes == (3, 1, 1):
            lines.append(
                '<p class="why">or flip the input: <code>rnn-dissect nn --x '
                "-0.5,1.2,-2.0</code> (with the default weights z₁ = −0.57).</p>"
            )
    else:
        lines.append('<p class="why">Make every ReLU active and the gradient flows to W₁:</p>')
        lines.append(
            f'<div class="eq">rnn-dissect nn --sizes {sizes} {html.escape(flags)} '
            f"--b1 {on} --out DIR</div>"
        )
    return "\n".join(lines)


def render(net: MLP, update: SGDUpdate, svg: str | None, title: str | None = None) -> str:
    """The whole page. ``svg`` is the graph drawing (None when Graphviz is missing)."""
    sizes = ":".join(map(str, net.sizes))
    title = title or f"The {sizes} network, dissected"
    g = net.graph
    if svg is None:
        graph = (
            '<p class="note">The graph drawing needs Graphviz: '
            "<code>apt-get install graphviz</code>, then run the command again.</p>"
        )
    else:
        graph = f'<div class="graph wide">{inline_svg(svg)}</div>'
    summary = (
        f"{sizes}: {net.sizes[0]} inputs, {net.sizes[1]} hidden ReLU unit"
        f"{'s' * (net.sizes[1] > 1)}, {net.sizes[2]} sigmoid output"
        f"{'s' * (net.sizes[2] > 1)}; binary log loss. All numbers are float64, shown "
        f"to {DIGITS} significant digits (hover a number for all of them)."
    )
    return page(
        title,
        f'<p class="why">{html.escape(summary)}</p>',
        '<div class="eq wrap">z₁ = W₁ x + b₁ &nbsp; h = ReLU(z₁) &nbsp; z₂ = W₂ h + b₂ &nbsp; '
        "ŷ = σ(z₂) &nbsp; L = mean −(y log ŷ + (1 − y) log(1 − ŷ))</div>",
        eq("loss L", number(float(g["loss"].value), "loss", "value")),
        "<h2>The graph</h2>",
        '<p class="why">Every node with its value and its gradient ∇ = dL/d(node). Colour = '
        "kind; a thicker border and a longer bar = a larger gradient.</p>",
        graph,
        forward(net),
        backward(net),
        _saved(net),
        _sgd(update),
        _try(net),
        "<h2>Every node</h2>",
        f'<div class="scroll">{nodes_html(g)}</div>',
    )
