"""The 3:1:1 network's forward pass and chain rule, written out with its own numbers (HTML).

Each line gives the equation in symbols, the numbers put in, and the result; results are
tagged numbers (:func:`rnn_dissect.render.page.number`) equal to the graph's. Tensors longer
than ``MAX_ITEMS`` entries are written out in part; dissection.json has every entry.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rnn_dissect.nets.mlp import MLP
from rnn_dissect.render.numbers import num
from rnn_dissect.render.page import DIGITS, eq, number

__all__ = ["MAX_ITEMS", "backward", "forward", "items", "more"]

MAX_ITEMS = 8  # entries written out per equation


def _p(v: float) -> str:
    """A number in a product, parenthesised when negative: (−0.1)(−1.2)."""
    return f"({num(v, DIGITS)})" if v < 0 else num(v, DIGITS)


def _sub(base: str, index: tuple[int, ...], size: int) -> str:
    """``z₁`` for a one-element tensor, else ``z₁[j]`` with the index written out."""
    return base if size == 1 else f"{base}[{','.join(map(str, index))}]"


def items(shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    for k, idx in enumerate(np.ndindex(*shape)):
        if k == MAX_ITEMS:
            return
        yield idx


def more(shape: tuple[int, ...]) -> str:
    extra = int(np.prod(shape)) - MAX_ITEMS
    return (
        f'<p class="why">… and {extra} more entries (all of them are in dissection.json).</p>'
        if extra > 0
        else ""
    )


def forward(net: MLP) -> str:
    """z₁ = W₁x + b₁, h = ReLU(z₁), z₂ = W₂h + b₂, ŷ = σ(z₂), L: each with numbers."""
    g = net.graph
    x, W1, b1, z1 = g["x"].value, g["W1"].value, g["b1"].value, g["z1"].value
    h, W2, b2, z2 = g["h1"].value, g["W2"].value, g["b2"].value, g["z2"].value
    yhat, y, n_out = g["yhat"].value, g["y"].value, net.sizes[2]
    H = z1.size
    out = [
        "<h2>Forward pass</h2>",
        '<p class="why">Each line: the equation, the numbers put in, the result.</p>',
    ]
    for (j,) in items(z1.shape):
        terms = " + ".join(f"{_p(W1[j, i])}·{_p(x[i])}" for i in range(x.size))
        out.append(
            eq(
                f"{_sub('z₁', (j,), H)} = Σᵢ W₁[{j},i]·x[i] + {_sub('b₁', (j,), H)}",
                f"{terms} + {_p(b1[j])}",
                number(z1[j], "z1", "value", (j,)),
            )
        )
    out.append(more(z1.shape))
    for (j,) in items(z1.shape):
        on = z1[j] > 0
        badge = (
            '<span class="badge on">active</span>'
            if on
            else '<span class="badge off">inactive: output 0</span>'
        )
        out.append(
            eq(
                f"{_sub('h', (j,), H)} = ReLU({_sub('z₁', (j,), H)}) = max(0, "
                f"{num(z1[j], DIGITS)})",
                number(h[j], "h1", "value", (j,)) + " " + badge,
            )
        )
    out.append(more(z1.shape))
    for (k,) in items(z2.shape):
        terms = " + ".join(f"{_p(W2[k, j])}·{_p(h[j])}" for j in range(H))
        out.append(
            eq(
                f"{_sub('z₂', (k,), n_out)} = Σⱼ W₂[{k},j]·h[j] + {_sub('b₂', (k,), n_out)}",
                f"{terms} + {_p(b2[k])}",
                number(z2[k], "z2", "value", (k,)),
            )
        )
        out.append(
            eq(
                f"{_sub('ŷ', (k,), n_out)} = σ({_sub('z₂', (k,), n_out)}) = 1 / (1 + e^−z₂)",
                f"1 / (1 + e^{_p(-z2[k])})",
                number(yhat[k], "yhat", "value", (k,)),
            )
        )
    out.append(more(z2.shape))
    each = -(y * np.log(yhat) + (1 - y) * np.log1p(-yhat))
    for (k,) in items(y.shape):
        out.append(
            eq(
                f"ℓ{'' if n_out == 1 else f'[{k}]'} = −(y log ŷ + (1 − y) log(1 − ŷ))",
                f"−({_p(y[k])}·log {num(yhat[k], DIGITS)} + {_p(1 - y[k])}·log "
                f"{num(1 - yhat[k], DIGITS)})",
                num(each[k], DIGITS),
            )
        )
    mean = "L = ℓ" if n_out == 1 else f"L = (1/{n_out}) Σₖ ℓ[k]  (mean binary cross-entropy)"
    out.append(eq(mean, number(float(g["loss"].value), "loss", "value")))
    return "\n".join(out)


def backward(net: MLP) -> str:
    """dL/dŷ, dŷ/dz₂, dz₂/dW₂, dz₂/dh, dh/dz₁, … each local derivative with numbers."""
    g = net.graph
    x, W1, z1, h = g["x"].value, g["W1"].value, g["z1"].value, g["h1"].value
    W2, yhat, y, n_out = g["W2"].value, g["yhat"].value, g["y"].value, net.sizes[2]
    gr = {k: g[k].grad_or_zeros() for k in ("yhat", "z2", "W2", "b2", "h1", "z1", "W1", "b1", "x")}
    H = z1.size
    scale = "" if n_out == 1 else f"(1/{n_out})·"
    out = [
        "<h2>Backward pass: the chain rule</h2>",
        '<p class="why">Start from dL/dL = 1 and walk the graph backwards. At each node, '
        "the gradient arriving from above is multiplied by the node's <em>local</em> "
        "derivative. Gradients are shown in brown.</p>",
    ]
    for (k,) in items(yhat.shape):
        yk, pk = y[k], yhat[k]
        dyz = pk * (1 - pk)
        yhk, zk = _sub("ŷ", (k,), n_out), _sub("z₂", (k,), n_out)
        out.append(
            eq(
                f"dL/d{yhk} = {scale}(−y/ŷ + (1 − y)/(1 − ŷ))",
                f"{scale}(−{_p(yk)}/{num(pk, DIGITS)} + {_p(1 - yk)}/{num(1 - pk, DIGITS)})",
                number(gr["yhat"][k], "yhat", "grad", (k,)),
            )
        )
        out.append(
            eq(
                f"d{yhk}/d{zk} = ŷ(1 − ŷ)",
                f"{num(pk, DIGITS)}·{num(1 - pk, DIGITS)}",
                number(dyz, "yhat", "local", (k,)),
            )
        )
        out.append(
            eq(
                f"dL/d{zk} = dL/d{yhk} · d{yhk}/d{zk}",
                f"{_p(gr['yhat'][k])}·{num(dyz, DIGITS)}",
                number(gr["z2"][k], "z2", "grad", (k,)),
            )
        )
    out.append(more(yhat.shape))
    out.append(
        '<p class="why">The sigmoid and the log loss cancel neatly: dL/dz₂ = '
        f"{scale}(ŷ − y). That is why the pair is used together.</p>"
    )
    out.append('<p class="why">dz₂/dW₂[k,j] = h[j] and dz₂/db₂ = 1, so:</p>')
    for k, j in items(W2.shape):
        out.append(
            eq(
                f"dL/dW₂[{k},{j}] = dL/d{_sub('z₂', (k,), n_out)} · {_sub('h', (j,), H)}",
                f"{_p(gr['z2'][k])}·{_p(h[j])}",
                number(gr["W2"][k, j], "W2", "grad", (k, j)),
            )
        )
    out.append(more(W2.shape))
    for (k,) in items(yhat.shape):
        out.append(
            eq(
                f"dL/d{_sub('b₂', (k,), n_out)} = dL/d{_sub('z₂', (k,), n_out)} · 1",
                number(gr["b2"][k], "b2", "grad", (k,)),
            )
        )
    out.append(
        '<p class="why">dz₂[k]/dh[j] = W₂[k,j]: the gradient flows back into the hidden '
        "layer through the weights it came forward through.</p>"
    )
    for (j,) in items(z1.shape):
        terms = " + ".join(f"{_p(gr['z2'][k])}·{_p(W2[k, j])}" for k in range(n_out))
        out.append(
            eq(
                f"dL/d{_sub('h', (j,), H)} = Σₖ dL/dz₂[k] · W₂[k,{j}]",
                terms,
                number(gr["h1"][j], "h1", "grad", (j,)),
            )
        )
    out.append(more(z1.shape))
    out.append(
        '<p class="why">dh/dz₁ is the ReLU\'s local derivative: 1 where z₁ &gt; 0, '
        "0 where z₁ ≤ 0.</p>"
    )
    blocked = [int(j) for j in np.flatnonzero(z1 <= 0)]
    for (j,) in items(z1.shape):
        on = z1[j] > 0
        out.append(
            eq(
                f"d{_sub('h', (j,), H)}/d{_sub('z₁', (j,), H)}",
                f"{'1' if on else '0'}  (z₁ = {num(z1[j], DIGITS)} {'&gt;' if on else '≤'} 0)",
            )
        )
        out.append(
            eq(
                f"dL/d{_sub('z₁', (j,), H)} = dL/d{_sub('h', (j,), H)} · "
                f"d{_sub('h', (j,), H)}/d{_sub('z₁', (j,), H)}",
                f"{_p(gr['h1'][j])}·{'1' if on else '0'}",
                number(gr["z1"][j], "z1", "grad", (j,)),
            )
        )
    out.append(more(z1.shape))
    if blocked:
        units = ", ".join(map(str, blocked))
        which = "the hidden unit" if H == 1 else f"hidden unit{'s' * (len(blocked) > 1)} {units}"
        out.append(
            f'<div class="note"><strong>The gradient is blocked.</strong> The ReLU of {which} is '
            "inactive (z₁ ≤ 0): it outputs 0 whatever its input, so its local derivative is 0. "
            "Everything upstream — the row of W₁ and the entry of b₁ that feed it, and its share "
            "of dL/dx — gets exactly zero gradient from this example, so SGD leaves them "
            "unchanged. A unit that is inactive for every input never learns again: a "
            "“dead ReLU”.</div>"
        )
    out.append('<p class="why">dz₁[j]/dW₁[j,i] = x[i], dz₁/db₁ = 1 and dz₁[j]/dx[i] = W₁[j,i]:</p>')
    for j, i in items(W1.shape):
        out.append(
            eq(
                f"dL/dW₁[{j},{i}] = dL/d{_sub('z₁', (j,), H)} · x[{i}]",
                f"{_p(gr['z1'][j])}·{_p(x[i])}",
                number(gr["W1"][j, i], "W1", "grad", (j, i)),
            )
        )
    out.append(more(W1.shape))
    for (j,) in items(z1.shape):
        out.append(
            eq(
                f"dL/d{_sub('b₁', (j,), H)} = dL/d{_sub('z₁', (j,), H)} · 1",
                number(gr["b1"][j], "b1", "grad", (j,)),
            )
        )
    for (i,) in items(x.shape):
        terms = " + ".join(f"{_p(gr['z1'][j])}·{_p(W1[j, i])}" for j in range(H))
        out.append(
            eq(
                f"dL/dx[{i}] = Σⱼ dL/dz₁[j] · W₁[j,{i}]",
                terms,
                number(gr["x"][i], "x", "grad", (i,)),
            )
        )
    out.append(more(x.shape))
    return "\n".join(out)
