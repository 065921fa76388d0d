"""``walkthrough.html`` for a BPTT dissection: step-through frames over the unrolled graph,
then the four answers (:mod:`.bptt_answers`).

Self-contained and phone-ready (:mod:`.page`'s shell): the graph's SVG inline, every
number the frames show embedded as JSON in ``<script type="application/json"
id="walkthrough-data">`` (``</`` written as ``<\\/`` so no text can close the script), and
a small inline script that shows one frame at a time — Prev / Next buttons and the arrow
keys — writing text with ``textContent`` only. The data block::

    frames   the frames of :mod:`rnn_dissect.bptt.frames`; backward frames add ``sent``:
             carried node id → the gradient this frame sends it (dh_next, dc_next)
    nodes    node id → {name, kind, op, t, layer, shape, value, grad, value_norm, grad_norm}
             (value/grad: nested lists as stored, batch axis included; None above
             ``MAX_VALUES`` entries, where the norms still say how big)
    cache    cache entry name → {shape, bytes, t, layer}
    captions one sentence per frame: what it does

On the graph (beside the frame's numbers, both one screen high at ≥ 900 px), the frame's
computed nodes get a solid outline, the values (forward) or gradients (backward) it reads a
dashed one, what it carries on a dotted one, the rest is dimmed: colour stays the node's kind.
The CSS and the script are ``render/static/walkthrough.css`` / ``walkthrough.js``.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.render.bptt_answers import answers
from rnn_dissect.render.graph import inline_svg
from rnn_dissect.render.numbers import num
from rnn_dissect.render.page import page

__all__ = ["MAX_VALUES", "frame_data", "render"]

MAX_VALUES = 16  # a node's numbers are embedded up to this many entries; norms always


def _static(name: str) -> str:
    return resources.files("rnn_dissect.render").joinpath("static", name).read_text("utf-8")


def _arr(a: np.ndarray | None) -> Any:
    if a is None or a.size > MAX_VALUES or not np.isfinite(a).all():
        return None  # too big to list (the norm says how big), or not JSON-able
    return a.tolist()


def _norm(a: np.ndarray | None) -> float | None:
    if a is None:
        return None
    n = float(np.linalg.norm(np.ravel(a)))
    return n if np.isfinite(n) else None


def _caption(f: dict[str, Any], nodes: dict[str, dict[str, Any]], layers: int) -> str:
    def say(ids: list[str], grad: bool = False) -> str:
        """Names, with the step or layer when they differ from the frame's: "h (t=0)";
        ``grad``: as dL/dh."""
        out = []
        for i in ids:
            n = nodes.get(i, {"name": i, "t": None, "layer": None})
            where = []
            if n["t"] is not None and n["t"] != f["t"] and not n["name"].endswith(str(n["t"])):
                where.append(f"t={n['t']}")
            if layers > 1 and None not in (n["layer"], f["layer"]) and n["layer"] != f["layer"]:
                where.append(f"layer {n['layer']}")
            name = n["name"]
            if grad:
                name = f"dL/d({name})" if any(c in name for c in " ⊙·()/") else f"dL/d{name}"
            out.append(name + (f" ({', '.join(where)})" if where else ""))
        return ", ".join(out)

    where = "the total loss" if f["t"] is None else f"step t={f['t']}"
    if f["part"] == "cell":
        where += f", layer {f['layer']}"
    elif f["part"] == "head":
        where += ", the head (output and loss)"
    onto = "the total loss" if f["part"] == "head" else "the next step"
    if f["phase"] == "forward":
        return (
            f"Forward at {where}: computes {say(f['computed'])} from {say(f['reads']) or 'constants'}"
            + (f" and the weights {', '.join(f['params'])}" if f["params"] else "")
            + f"; keeps {len(f['cache'])} tensor(s) for backward"
            + (f"; passes {say(f['carries'])} on to {onto}." if f["carries"] else ".")
        )
    s = (
        f"Backward at {where}: "
        + (f"{say(f['reads'], True)} arrive" if f["reads"] else "starts from dL/dL = 1")
        + f"; computes "
        f"{say(f['computed'], True)}, reading the forward cache back"
        + (f", adds a term to dL/d of {', '.join(f['params'])}" if f["params"] else "")
        + (f"; sends {say(f['carries'], True)} back." if f["carries"] else ".")
    )
    return s + (
        " A truncation cut: what reaches the detached state goes no further." if f["cut"] else ""
    )


def frame_data(d: Dissection) -> dict[str, Any]:
    """The JSON block the page embeds (see the module docstring)."""
    run, g = d.run, d.run.graph
    frames = d.frames or []
    ids: dict[str, None] = {}
    for f in frames:
        ids.update(dict.fromkeys(f["computed"] + f["reads"] + f["carries"]))
    nodes = {}
    for nid in ids:
        n = g[nid]
        nodes[nid] = {
            "name": n.name,
            "kind": n.kind.value,
            "op": n.op,
            "t": n.t,
            "layer": n.layer,
            "shape": list(np.shape(n.value)),
            "value": _arr(np.asarray(n.value)),
            "grad": _arr(n.grad),
            "value_norm": _norm(np.asarray(n.value)),
            "grad_norm": _norm(n.grad),
        }
    out = []
    for f in frames:
        f = dict(f)
        if f["phase"] == "backward":
            sent: dict[str, Any] = {}
            inside = [g[c] for c in f["computed"]]
            for pid in f["carries"]:
                p = g[pid]
                parts = [g.edge_grad(c, p) for c in inside if any(q is p for q in c.parents)]
                total = sum(parts[1:], parts[0]) if parts else np.zeros_like(p.value)
                sent[pid] = _arr(np.asarray(total))
            f["sent"] = sent
        out.append(f)
    cache = {
        e.name: {"shape": list(e.shape), "bytes": e.bytes, "t": e.t, "layer": e.layer}
        for e in d.memory.entries
    }
    return {
        "frames": out,
        "nodes": nodes,
        "cache": cache,
        "captions": [_caption(f, nodes, run.num_layers) for f in out],
        "vocab": list(run.model.config.vocab),
        "T": run.T,
    }


def _script_json(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render(
    d: Dissection, svg: str | None, notes: list[str], text: str, title: str | None = None
) -> str:
    """The whole page. ``svg``: the graph drawing or None; ``notes``: what was turned off and
    why (each shown as a note); ``text``: the dissected string (inputs + last target)."""
    run, cfg = d.run, d.run.model.config
    title = title or f"{cfg.cell.upper()} through time, dissected"
    summary = (
        f"{cfg.cell} cell, hidden size {cfg.hidden_size}, {cfg.num_layers} layer(s), "
        f"vocabulary {len(cfg.vocab)}; T = {run.T} steps; inputs {text[:-1]!r}, targets "
        f"{text[1:]!r}; loss = mean cross-entropy over the T predictions = {num(d.loss, 6)}. "
        "All numbers float64."
    )
    if run.truncate:
        summary += f" Truncated BPTT: the state is detached every {run.truncate} steps."
    parts = [
        f"<style>{_static('walkthrough.css')}</style>",
        f'<p class="why">{html.escape(summary[:2000])}</p>',
        *(f'<p class="note">{html.escape(n)}</p>' for n in notes),
        "<h2>Step through forward and backward</h2>",
    ]
    if d.frames:
        zoom = (
            '<button id="zoom-out" type="button" aria-label="zoom out">−</button>'
            '<span id="zoom-level">100%</span>'
            '<button id="zoom-in" type="button" aria-label="zoom in">+</button>'
            if svg is not None
            else ""
        )
        parts += [
            '<p class="why">Forward t = 1..T, then backward t = T..1. Buttons or the ← → keys. '
            "Colour on the graph means a node's kind only; the frame is marked by outlines: "
            "solid = computed now, dashed = read (a value forward, an arriving gradient "
            "backward), dotted = carried on (h_t forward; dh_next, dc_next backward). Forward "
            "frames hide the gradient lines, which backward has not computed yet.</p>",
            '<div class="stepper"><div class="nav"><button id="prev" type="button">◀ Prev</button>'
            '<button id="next" type="button">Next ▶</button>'
            f'<span id="frame-count"></span>{zoom}</div>'
            f'<div class="panes{"" if svg is not None else " solo"}">'
            + (f'<div class="graph" id="graph">{inline_svg(svg)}</div>' if svg is not None else "")
            + '<div class="frame"><b id="frame-title"></b><p id="frame-caption" class="why"></p>'
            '<table><tbody id="frame-rows"></tbody></table></div></div></div>',
        ]
    elif svg is not None:
        parts.append(f'<div class="graph" id="graph">{inline_svg(svg)}</div>')
    parts.append(answers(d))
    if d.frames:
        parts += [
            '<script type="application/json" id="walkthrough-data">'
            + _script_json(frame_data(d))
            + "</script>",
            f"<script>{_static('walkthrough.js')}</script>",
        ]
    return page(title, *parts)
