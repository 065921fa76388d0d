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

On the graph, the frame's computed nodes are outlined orange, the values (forward) or
gradients (backward) it reads blue, what it carries on purple, the rest dimmed.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.render.bptt_answers import answers
from rnn_dissect.render.graph import inline_svg
from rnn_dissect.render.numbers import num
from rnn_dissect.render.page import page

__all__ = ["MAX_VALUES", "frame_data", "render"]

MAX_VALUES = 16  # a node's numbers are embedded up to this many entries; norms always

_CSS = """
.frame{border:1px solid var(--line);border-radius:.5rem;padding:.6rem .8rem;margin:.6rem 0}
.nav{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;position:sticky;top:0;background:#fff;
padding:.4rem 0;z-index:2}
.nav button{font-size:1rem;padding:.35rem .9rem;border-radius:.4rem;border:1px solid #888;background:#f5f7fa}
.role{font-weight:600}.r-computed{color:#b36b00}.r-reads{color:#0072B2}.r-carries{color:#7a3b8f}
.r-cache{color:#444}.r-params{color:#777}
svg g.node.hl-computed path:first-of-type{stroke:#E69F00!important;stroke-width:7px}
svg g.node.hl-reads path:first-of-type{stroke:#56B4E9!important;stroke-width:6px}
svg g.node.hl-carries path:first-of-type{stroke:#CC79A7!important;stroke-width:6px}
svg g.node.hl-dim{opacity:.35}
.plot{max-width:100%;height:auto}
#frame-rows td.v{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
@media (max-width:600px){#frame-rows td{padding:.15rem .3rem;font-size:.8rem}#frame-rows td.v{word-break:break-all}}
h2,h3{scroll-margin-top:3.5rem}
#graph{max-height:75vh}#graph svg{max-width:none!important}#graph.fit svg{max-width:100%!important}
"""

_JS = """
(function(){
const D=JSON.parse(document.getElementById('walkthrough-data').textContent);
const F=D.frames;let i=0;
const el=id=>document.getElementById(id);
function fmt(v){if(v===null)return'null';if(typeof v==='number'){let s=Number(v.toPrecision(6)).toString();
return s==='-0'?'0':s;}return '['+v.map(fmt).join(', ')+']';}
function show(a){const n=D.nodes[a];return n?n:null;}
function row(tb,role,label,text,title){const tr=document.createElement('tr');
const a=document.createElement('td');a.textContent=role;a.className='role r-'+role;
const b=document.createElement('td');b.textContent=label;
const c=document.createElement('td');c.textContent=text;if(title)c.title=title;c.className='v';
tr.append(a,b,c);tb.append(tr);}
function num(n,field){const v=n[field];if(v!==null&&v!==undefined)return fmt(v);
const nm=n[field+'_norm'];return nm===null?'—':'shape '+n.shape.join('×')+'  ‖·‖='+fmt(nm);}
function render(){const f=F[i];const fwd=f.phase==='forward';
el('frame-count').textContent='frame '+(i+1)+' / '+F.length;
el('frame-title').textContent=(fwd?'Forward':'Backward')+(f.t===null?' · total loss':' · t = '+f.t)
+(f.layer===null?(f.part==='head'?' · head':''):' · layer '+f.layer);
el('frame-caption').textContent=D.captions[i];
const tb=el('frame-rows');tb.textContent='';const field=fwd?'value':'grad';
for(const id of f.computed){const n=show(id);row(tb,'computed',n.name+'  ('+id+')',num(n,field));}
for(const id of f.reads){const n=show(id);row(tb,'reads',n.name+'  ('+id+')',num(n,field));}
for(const id of f.carries){const n=show(id);let t;
if(fwd)t=num(n,'value');else{const s=f.sent&&f.sent[id];t=s===undefined?'—':(s===null?'(large; see dissection.json)':fmt(s));}
row(tb,'carries',n.name+'  ('+id+')'+(fwd?'':' ← sent'),t);}
for(const c of f.cache){const e=D.cache[c];row(tb,'cache',c,e?('shape '+e.shape.join('×')+', '+e.bytes+' bytes'):'');}
if(f.params.length)row(tb,'params',f.params.join(', '),fwd?'read':'gradient term added');
if(f.cut)row(tb,'carries','truncation cut','the carried gradient stops here');
const on={};for(const id of f.computed)on[id]='hl-computed';
for(const id of f.params)on[id]='hl-param';for(const id of f.reads)on[id]=on[id]||'hl-reads';for(const id of f.carries)on[id]=on[id]||'hl-carries';
document.querySelectorAll('#graph g.node').forEach(g=>{g.classList.remove('hl-computed','hl-reads','hl-carries','hl-dim');
if(g.id==='legend')return;g.classList.add(on[g.id]||'hl-dim');});
const box=el('graph'),hot=box&&box.querySelector('g.node.hl-computed');
if(hot&&!box.classList.contains('fit')){const r=hot.getBoundingClientRect(),c=box.getBoundingClientRect();
box.scrollLeft+=r.left-c.left-(c.width-r.width)/2;box.scrollTop+=r.top-c.top-(c.height-r.height)/2;}
el('prev').disabled=i===0;el('next').disabled=i===F.length-1;
document.body.dataset.frame=String(i);}
function go(k){i=Math.max(0,Math.min(F.length-1,k));render();}
el('prev').addEventListener('click',()=>go(i-1));el('next').addEventListener('click',()=>go(i+1));
const fit=el('fit');if(fit)fit.addEventListener('click',()=>{el('graph').classList.toggle('fit');
fit.textContent=el('graph').classList.contains('fit')?'graph: actual size':'graph: fit width';render();});
document.addEventListener('keydown',e=>{if(e.key==='ArrowRight'){go(i+1);e.preventDefault();}
else if(e.key==='ArrowLeft'){go(i-1);e.preventDefault();}});
if(F.length)render();
})();
"""


def _arr(a: np.ndarray | None) -> Any:
    if a is None or a.size > MAX_VALUES or not np.isfinite(a).all():
        return None  # too big to list (the norm says how big), or not JSON-able
    return a.tolist()


def _norm(a: np.ndarray | None) -> float | None:
    if a is None:
        return None
    n = float(np.linalg.norm(np.ravel(a)))
    return n if np.isfinite(n) else None


def _caption(f: dict[str, Any], names: dict[str, str]) -> str:
    def say(ids: list[str]) -> str:
        return ", ".join(names.get(i, i) for i in ids) or "nothing"

    where = "the total loss" if f["t"] is None else f"step t={f['t']}"
    if f["part"] == "cell":
        where += f", layer {f['layer']}"
    elif f["part"] == "head":
        where += ", the head (output and loss)"
    if f["phase"] == "forward":
        return (
            f"Forward at {where}: computes {say(f['computed'])} from {say(f['reads'])}"
            + (f" and the weights {', '.join(f['params'])}" if f["params"] else "")
            + f"; keeps {len(f['cache'])} tensor(s) for backward; hands on {say(f['carries'])}."
        )
    s = (
        f"Backward at {where}: gradient arrives at {say(f['reads'])}; computes the gradients "
        f"of {say(f['computed'])}, reading the forward cache back"
        + (f", adds a term to dL/d of {', '.join(f['params'])}" if f["params"] else "")
        + f"; sends gradient to {say(f['carries'])}."
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
    names = {nid: v["name"] for nid, v in nodes.items()}
    cache = {
        e.name: {"shape": list(e.shape), "bytes": e.bytes, "t": e.t, "layer": e.layer}
        for e in d.memory.entries
    }
    return {
        "frames": out,
        "nodes": nodes,
        "cache": cache,
        "captions": [_caption(f, names) for f in out],
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
        f"<style>{_CSS}</style>",
        f'<p class="why">{html.escape(summary[:2000])}</p>',
        *(f'<p class="note">{html.escape(n)}</p>' for n in notes),
        "<h2>Step through forward and backward</h2>",
    ]
    if d.frames:
        parts += [
            '<p class="why">Forward t = 1..T, then backward t = T..1. Buttons or the ← → keys. '
            "On the graph: orange = computed now, blue = read (a value forward, an arriving "
            "gradient backward), purple = carried on (h_t forward; dh_next, dc_next backward).</p>",
            '<div class="nav"><button id="prev" type="button">◀ Prev</button>'
            '<button id="next" type="button">Next ▶</button>'
            '<span id="frame-count"></span>'
            + (
                '<button id="fit" type="button">graph: fit width</button>'
                if svg is not None
                else ""
            )
            + "</div>",
            '<div class="frame"><b id="frame-title"></b><p id="frame-caption" class="why"></p>'
            '<div class="scroll"><table><tbody id="frame-rows"></tbody></table></div></div>',
        ]
    if svg is not None:
        parts.append(f'<div class="graph" id="graph">{inline_svg(svg)}</div>')
    parts.append(answers(d))
    if d.frames:
        parts += [
            '<script type="application/json" id="walkthrough-data">'
            + _script_json(frame_data(d))
            + "</script>",
            f"<script>{_JS}</script>",
        ]
    return page(title, *parts)
