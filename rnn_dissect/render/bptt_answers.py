"""The four BPTT answers as HTML tables and inline plots, from a :class:`Dissection`.

Q1 how gradients flow back (:mod:`.bptt_flow`: direct vs recurrent, the lag matrix, the
step Jacobian path by path, singular values, the verdict) · Q2 how the shared weights are
updated (per-step terms, their sum, ΔW) · Q3 what the forward pass keeps · Q4 what backward
carries and computes — in that order, the README's. Every table and plot is
drawn from the same data ``dissection.json`` holds; long tables stop at ``MAX_ROWS``.
"""

from __future__ import annotations

import html

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.bptt.memory import CacheEntry
from rnn_dissect.render.bptt_flow import q1
from rnn_dissect.render.bptt_plots import GRADIENT_COLOURS, bars_svg, heatmap_svg
from rnn_dissect.render.html_table import MAX_PLOT_STEPS, MAX_ROWS, cell_px
from rnn_dissect.render.html_table import n as _n
from rnn_dissect.render.html_table import table as _table
from rnn_dissect.render.numbers import is_small, lines, num

__all__ = ["MAX_PLOT_STEPS", "MAX_ROWS", "answers"]

SHOW_VECTORS = 8  # hidden sizes up to this show dh vectors in full


def _vec(a: np.ndarray) -> str:
    return html.escape(" ".join(lines(a, 4)))


def q3(d: Dissection) -> str:
    mem = d.memory
    by_t: dict[int | None, list[CacheEntry]] = {}
    for e in mem.entries:  # one row per step: what the forward pass keeps there
        by_t.setdefault(e.t, []).append(e)
    rows = []
    order = sorted(by_t, key=lambda t: (t is None, t or 0))
    for t in order[:MAX_ROWS]:
        es = by_t[t]
        kept = ", ".join(
            f"{e.name} ({'×'.join(map(str, e.shape)) or 'scalar'}, {e.bytes} B)" for e in es
        )
        rows.append(
            ["—" if t is None else str(t), html.escape(kept), str(sum(e.bytes for e in es))]
        )
    same = "equal" if mem.measured_bytes == mem.formula_bytes else "DIFFER"
    return "\n".join(
        [
            '<h2 id="q3">Q3 · What the forward pass must keep</h2>',
            '<p class="why">Every tensor some backward op reads, counted once (h_t is read by '
            "the head at t and by W_hh h_t at t + 1), with its shape and bytes; t = 0 is the "
            "initial state, — the loss total. Parameters are not counted.</p>",
            _table(
                ["t", "cached tensors (shape, bytes)", "bytes"], rows, max(0, len(by_t) - MAX_ROWS)
            ),
            f'<div class="eq wrap">measured {mem.measured_bytes} bytes · formula '
            f"{mem.formula_bytes} bytes ({same})</div>",
            f'<p class="why">{html.escape(mem.formula)}</p>',
        ]
    )


def q4(d: Dissection) -> str:
    out = [
        '<h2 id="q4">Q4 · What the backward pass carries and computes</h2>',
        '<p class="why">At step t backward adds what arrives directly (the head, or the layer '
        "above) to what step t + 1 carries back (dh_next), then computes the pre-activation "
        "gradient every weight gradient is built from (RNN: dh_raw = (1 − h_t²) ⊙ dh).</p>",
    ]
    H = d.run.model.config.hidden_size
    for k, row in enumerate(d.carry):
        keys = list(row[0].computes)
        lstm = row[0].dc is not None
        head = ["t", "‖dh_direct‖", "‖dh_next‖ (carried)", "‖dh‖"] + [f"‖{c}‖" for c in keys]
        head += ["‖dc_next‖ (carried)", "‖dc‖"] if lstm else []
        if H <= SHOW_VECTORS:
            head += ["dh_next", keys[0]]
        rows = []
        for c in row[-MAX_ROWS:][::-1]:  # backward order: t = T first
            nm = c.norms()
            r = [
                str(c.t)
                + (" ✂" if c.cut else "")
                + (" (dh_next: from h_n)" if c.next_from == "h_n" else ""),
                _n(nm["dh_direct"]),
                _n(nm["dh_next"]),
                _n(nm["dh"]),
            ]
            r += [_n(nm[x]) for x in keys]
            r += [_n(nm.get("dc_next")), _n(nm.get("dc"))] if lstm else []
            if H <= SHOW_VECTORS:
                r += [_vec(c.dh_next), _vec(c.computes[keys[0]])]
            rows.append(r)
        out.append(f"<h3>layer {k}</h3>")
        out.append(_table(head, rows, max(0, len(row) - MAX_ROWS)))
        if d.run.T <= MAX_PLOT_STEPS:
            series = {
                "‖dh_next‖": [c.norms()["dh_next"] for c in row],
                f"‖{keys[0]}‖": [c.norms()[keys[0]] for c in row],
            }
            colours = [GRADIENT_COLOURS["dh_next"], GRADIENT_COLOURS["dh_raw"]]
            if lstm:
                series["‖dc_next‖"] = [c.norms()["dc_next"] for c in row]
                colours.append(GRADIENT_COLOURS["dc_next"])
            out.append(
                bars_svg(
                    series,
                    [str(c.t) for c in row],
                    title=f"layer {k} carried gradients",
                    colours=colours,
                    ylabel="norm",
                )
            )
    return "\n".join(out)


def q2(d: Dissection) -> str:
    st, up, T = d.step, d.update, d.run.T
    out = [
        '<h2 id="q2">Q2 · How the shared weights are updated through time</h2>',
        '<p class="why">Every step reads the same weights, so each weight gradient is a sum '
        "of per-step terms: dW_hh = Σ_t dh_raw_t h_(t−1)ᵀ, dW_ih = Σ_t dh_raw_t x_tᵀ, … "
        "The heatmap shows each term's norm (rows: parameters, and for gated cells each "
        "gate's block of rows; columns: t).</p>",
    ]
    names = list(st.norms)
    if T <= MAX_PLOT_STEPS:
        rows, labels = [], []
        for n in names:
            rows.append(st.norms[n])
            labels.append(n)
            if n.startswith("rnn.") and len(st.blocks) > 1:
                for b, gate in enumerate(st.blocks):
                    rows.append(st.block_norms[n][:, b])
                    labels.append(f"  [{gate}]")
        out.append(
            heatmap_svg(
                np.array(rows),
                labels,
                [str(t) for t in range(1, T + 1)],
                cell=cell_px(d.run.T),
                label_width=170,
                title="per-step gradient norms",
            )
        )
    else:
        out.append(
            f'<p class="note">{T} steps: the per-step heatmap is left out; the norms are in dissection.json.</p>'
        )
    rows = []
    table: list[list[str]] = []
    for n in names:
        g = d.grads[n]
        if st.contributions is not None:
            err = float(np.max(np.abs(sum(st.contributions[n][1:], st.contributions[n][0]) - g)))
            check = _n(err)
        else:
            check = "not kept"
        delta = up.delta[n]
        shown = _vec(delta) if is_small(delta) else f"‖ΔW‖ = {num(float(np.linalg.norm(delta)), 6)}"
        table.append(
            [
                html.escape(n),
                "×".join(map(str, g.shape)),
                _n(float(np.linalg.norm(g))),
                check,
                shown,
            ]
        )
    out.append(
        _table(["parameter", "shape", "‖dL/dW‖", "max |Σ_t term − dL/dW|", "update ΔW"], table)
    )
    clip = (
        f"; clipped to global norm {num(up.clip, 6)} (×{num(up.clip_coef, 6)})"
        if up.clip is not None
        else ""
    )
    out.append(
        f'<p class="why">Update: {html.escape(up.optimizer)}, lr = {num(up.lr, 6)}, global '
        f"‖g‖ = {num(up.grad_norm, 6)}{html.escape(clip)}; new W = W + ΔW.</p>"
    )
    return "\n".join(out)


_GATE_WORDS = {
    "i": "i: share of g written into c",
    "f": "f: share of c_(t−1) kept",
    "g": "g: candidate (−1…1)",
    "o": "o: share of tanh(c_t) shown",
    "r": "r: share of W_hn h_(t−1) used in n",
    "z": "z: share of h_(t−1) kept",
    "n": "n: candidate (−1…1)",
}


def gates(d: Dissection) -> str:
    """LSTM / GRU: each gate's mean value per step — what it passed (≈1) or blocked (≈0)."""
    if d.gates is None:
        return ""
    out = [
        '<h2 id="gates">Gates: what each let through, step by step</h2>',
        '<p class="why">Mean over the hidden units (and the batch) of each gate at each step; '
        "a sigmoid gate near 1 passes, near 0 blocks. Every unit's value is in the frames "
        "above and in dissection.json (<code>gates</code>).</p>",
    ]
    for k, row in enumerate(d.gates):
        names = list(row[0])
        rows = [
            [str(t)] + [_n(float(np.mean(g[x]))) for x in names]
            for t, g in enumerate(row[:MAX_ROWS], 1)
        ]
        out.append(f"<h3>layer {k}</h3>")
        out.append(
            _table(
                ["t"] + [_GATE_WORDS.get(x, x) for x in names], rows, max(0, len(row) - MAX_ROWS)
            )
        )
    return "\n".join(out)


def answers(d: Dissection) -> str:
    """Q1–Q4 in the README's order (flow, update, keep, carry), then the gates of an
    LSTM / GRU, with a contents line linking each."""
    links = [("q1", "Q1 gradient flow"), ("q2", "Q2 weight updates"), ("q3", "Q3 what forward keeps"),
             ("q4", "Q4 what backward carries")]  # fmt: skip
    if d.gates is not None:
        links.append(("gates", "the gates"))
    toc = " · ".join(f'<a href="#{i}">{html.escape(w)}</a>' for i, w in links)
    return "\n".join(
        [f'<p class="toc">The four questions: {toc}</p>', q1(d), q2(d), q3(d), q4(d), gates(d)]
    )
