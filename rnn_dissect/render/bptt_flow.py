"""Q1 on the BPTT page: how gradients flow backwards through time, for the cell at hand.

Direct vs recurrent dL/dh_t, then per layer: the lag matrix, the verdict with its evidence,
the step Jacobian path by path (:func:`rnn_dissect.bptt.jacobians.block_norms`) with the
geometric mean the verdict's bound is computed from, the last step's Jacobian itself when it
is small, and the singular values of the state Jacobian the verdict reads (s = h, or [h; c]
for an LSTM). The equations shown are the cell's own:

    RNN   ∂h_t/∂h_(t−1) = diag(1 − h_t²) W_hh
    LSTM  ∂c_t/∂c_(t−1) = diag(f_t), ∂h_t/∂c_(t−1) = diag(o_t (1 − tanh² c_t) f_t), …
    GRU   ∂h_t/∂h_(t−1) = diag(z_t) + diag(1 − z_t) ∂n_t/∂h_(t−1) + diag(h_(t−1) − n_t) ∂z_t/∂h_(t−1)
"""

from __future__ import annotations

import html

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.bptt.gradflow import LayerFlow
from rnn_dissect.bptt.jacobians import PATHS, STATE_PATH
from rnn_dissect.nets.cells import STATES
from rnn_dissect.render.bptt_plots import GRADIENT_COLOURS, bars_svg, heatmap_svg
from rnn_dissect.render.html_table import MAX_PLOT_STEPS, MAX_ROWS, cell_px
from rnn_dissect.render.html_table import n as _n
from rnn_dissect.render.html_table import table as _table
from rnn_dissect.render.numbers import num

__all__ = ["PATH_LABELS", "SHOW_JACOBIAN", "q1"]

SHOW_JACOBIAN = 16  # the last step's state Jacobian is printed in full up to S × S this big

_EQ = {
    "rnn": [
        "∂h_t/∂h_(t−1) = diag(1 − h_t²) W_hh        (ReLU: diag(1[h_t > 0]) W_hh)",
    ],
    "lstm": [
        "state s_t = [h_t; c_t]; its step Jacobian has four blocks:",
        "∂c_t/∂c_(t−1) = diag(f_t)                      (the cell path: no weight matrix)",
        "∂h_t/∂c_(t−1) = diag(o_t ⊙ (1 − tanh² c_t) ⊙ f_t)",
        "∂c_t/∂h_(t−1) = diag(c_(t−1)) ∂f_t + diag(g_t) ∂i_t + diag(i_t) ∂g_t,"
        "   ∂i_t = diag(i_t(1 − i_t)) W_hi, ∂f_t = diag(f_t(1 − f_t)) W_hf, ∂g_t = diag(1 − g_t²) W_hg",
        "∂h_t/∂h_(t−1) = diag(tanh c_t) ∂o_t + diag(o_t ⊙ (1 − tanh² c_t)) ∂c_t/∂h_(t−1),"
        "   ∂o_t = diag(o_t(1 − o_t)) W_ho",
    ],
    "gru": [
        "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_(t−1), so",
        "∂h_t/∂h_(t−1) = diag(z_t) + diag(1 − z_t) ∂n_t/∂h_(t−1) + diag(h_(t−1) − n_t) ∂z_t/∂h_(t−1)",
    ],
}

_WHY = {
    "lstm": (
        "Why the cell path carries gradient further: ∂c_t/∂c_(t−1) = diag(f_t) holds no weight "
        "matrix and no squashing derivative, so a gradient on c shrinks only by the forget gate "
        "each step (largest f here: {c} on average), while the h path multiplies by W_hh through "
        "σ′ ≤ ¼ and tanh′ ≤ 1 (σ1 of ∂h_t/∂h_(t−1): {h}). With f ≈ 1 the cell state passes "
        "gradient back almost unchanged — and the verdict's bound reads the whole [h; c] "
        "Jacobian ({s}), not the h block alone."
    ),
    "gru": (
        "Why the GRU carries gradient further than a plain RNN: the diag(z_t) term copies "
        "h_(t−1) into h_t with no weight matrix in between (largest z here: {c} on average); "
        "the rest goes through W_hh and the gates' derivatives (σ1: {h}). Where z ≈ 1 the "
        "gradient passes back almost unchanged. The verdict's bound reads their sum ({s})."
    ),
    "rnn": (
        "Every step multiplies the carried gradient by W_hh through tanh′ ≤ 1: unless W_hh's "
        "singular values make up for the squashing, the gradient shrinks geometrically "
        "(σ1 averages {s} here)."
    ),
}


def _geomean(a: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(a))))


# The path ids of jacobians.PATHS as the page shows them.
PATH_LABELS = {
    "h_h": "∂h_t/∂h_(t−1)",
    "h_c": "∂h_t/∂c_(t−1)",
    "c_h": "∂c_t/∂h_(t−1)",
    "c_c": "∂c_t/∂c_(t−1) = diag(f_t)",
    "s_s": "[h; c]",
    "h_h_copy": "diag(z_t)",
    "h_h_rest": "the rest (r, z, n, W_hh)",
}
_CARRY = {"lstm": "c_c", "gru": "h_h_copy"}  # the path with no weight matrix
_SQUASHED = {"rnn": "h_h", "gru": "h_h_rest", "lstm": "h_h"}  # through W_hh and σ′ / tanh′


def _paths(lf: LayerFlow, cell: str) -> list[str]:
    """The per-step path table, its geometric-mean row, and the sentence on the carry path."""
    if lf.blocks is None:
        return []
    names = PATHS[cell]  # flow() fills blocks with exactly these, in this order
    T = len(lf.blocks[names[0]])
    state = STATE_PATH[cell]
    rows = [[str(t + 1)] + [_n(lf.blocks[n][t]) for n in names] for t in range(min(T, MAX_ROWS))]
    means = {n: _geomean(lf.blocks[n]) for n in names}
    rows.append(
        ["geometric mean"]
        + [
            f'<b data-geomean="{html.escape(n)}"'
            + (' data-verdict="bound"' if n == state else "")
            + f' title="{means[n]!r}">{num(means[n], 6)}</b>'
            for n in names
        ]
    )
    carry = _CARRY.get(cell)
    why = _WHY[cell].format(
        c=num(means[carry], 3) if carry else "",
        h=num(means[_SQUASHED[cell]], 3),
        s=num(means[state], 3),
    )
    return [
        f"<p>Layer {lf.layer}'s step Jacobian, path by path: the largest singular value "
        "‖·‖₂ of each block at each step (batch element 0); the verdict's bound is the "
        f"geometric mean of the <b>{html.escape(PATH_LABELS[state])}</b> column.</p>",
        _table(["t", *(PATH_LABELS[n] for n in names)], rows, max(0, T - MAX_ROWS), "paths"),
        f'<p class="why">{html.escape(why)}</p>',
    ]


def _matrix(J: np.ndarray, cell: str, H: int, T: int) -> str:
    """The state Jacobian at t = T in full, its blocks labelled."""
    names = [f"h{i + 1}" for i in range(H)] + (
        [f"c{i + 1}" for i in range(H)] if cell == "lstm" else []
    )
    head = [f"∂s_{T}/∂s_{T - 1}"] + [f"{n}_(t−1)" for n in names]
    rule = "border-left:3px solid #777"  # between the h and c blocks
    th = "".join(
        f'<th style="{rule if j == H and cell == "lstm" else ""}">{html.escape(h)}</th>'
        for j, h in enumerate(head, -1)
    )
    body = []
    for r, n in enumerate(names):
        top = ' style="border-top:3px solid #777"' if r == H and cell == "lstm" else ""
        tds = "".join(
            f'<td style="{rule if c == H and cell == "lstm" else ""}">{_n(float(J[r, c]))}</td>'
            for c in range(len(names))
        )
        body.append(f"<tr{top}><td><b>{n}_t</b></td>{tds}</tr>")
    note = (
        "Top left ∂h/∂h, top right ∂h/∂c (diagonal), bottom left ∂c/∂h, bottom right "
        "∂c/∂c = diag(f_t)."
        if cell == "lstm"
        else "Its diagonal holds the diag(z_t) copy path."
        if cell == "gru"
        else ""
    )
    return (
        f"<p>The step Jacobian at t = {T} itself (batch element 0). {html.escape(note)}</p>"
        f'<div class="scroll"><table class="jacobian"><tr>{th}</tr>{"".join(body)}</table></div>'
    )


def _sv_table(lf: LayerFlow, cell: str, T: int) -> str:
    sv = lf.state_singular_values if cell == "lstm" else lf.singular_values
    if sv is None:
        return ""
    k = min(sv.shape[1], 8)
    rows = [[str(t + 1)] + [_n(float(v)) for v in sv[t, :k]] for t in range(min(T, MAX_ROWS))]
    what = "[h; c] state Jacobian ∂s_t/∂s_(t−1) (2H × 2H)" if cell == "lstm" else "∂h_t/∂h_(t−1)"
    return (
        f"<p>Singular values of the {html.escape(what)} at each step, largest first "
        f"(σ1 is the column the verdict's bound averages).</p>"
        + _table(["t"] + [f"σ{i + 1}" for i in range(k)], rows, max(0, T - MAX_ROWS), "sv")
    )


def q1(d: Dissection) -> str:
    """The Q1 section (HTML)."""
    T, cell, H = d.run.T, d.run.cell, d.run.hidden_size
    out = [
        '<h2 id="q1">Q1 · How gradients flow backwards through time</h2>',
        '<p class="why">dL/dh_t = the direct part (from y_t at the same step) + the recurrent '
        "part (from t + 1). The lag matrix entry (t′, t) = ‖∂L_t′/∂h_t‖: how much of the loss "
        "read at t′ still reaches h_t. Each step back multiplies the carried gradient by the "
        f"step Jacobian of the {cell.upper()} cell; its singular values say by how much:</p>",
        *(f'<div class="eq wrap">{html.escape(e)}</div>' for e in _EQ[cell]),
    ]
    top = d.carry[-1]
    if T <= MAX_PLOT_STEPS:
        out.append(
            bars_svg(
                {
                    "direct ‖dh_direct‖": [c.norms()["dh_direct"] for c in top],
                    "recurrent ‖dh_next‖": [c.norms()["dh_next"] for c in top],
                },
                [str(c.t) for c in top],
                title="direct vs recurrent",
                colours=[GRADIENT_COLOURS["dh_direct"], GRADIENT_COLOURS["dh_next"]],
                ylabel="‖dL/dh_t‖ by part",
            )
        )
    if d.flow.lag is None:
        out.append('<p class="note">The lag matrix was not computed for this size.</p>')
    cellpx = cell_px(T)
    for lf in d.flow.layers:
        out.append(
            f'<h3 id="q1-layer{lf.layer}">layer {lf.layer}: {html.escape(lf.verdict.label)}</h3>'
        )
        if lf.lag is not None and T <= MAX_PLOT_STEPS:
            ticks = [str(t) for t in range(1, T + 1)]
            out.append(f"<p>lag matrix of layer {lf.layer}: rows t′ (loss read at), columns t</p>")
            out.append(
                heatmap_svg(
                    lf.lag,
                    [f"L_{t}" for t in ticks],
                    ticks,
                    cell=cellpx,
                    label_width=60,
                    title=f"lag matrix, layer {lf.layer}",
                )
            )
        out.append(f'<p class="eq wrap verdict">{html.escape(lf.verdict.reason)}</p>')
        if lf.verdict.bound:
            out.append(f'<p class="why bound">{html.escape(lf.verdict.bound)}</p>')
        if lf.blocks is None:
            out.append(
                '<p class="note">The step Jacobians were not computed at this size (see the '
                "note at the top): no path table, no singular values, no bound — the lag "
                "matrix and the verdict above are measured in full.</p>"
            )
        out += _paths(lf, cell)
        S = len(STATES[cell]) * H  # the state [h; c] or h
        if lf.last_jacobian is not None and S <= SHOW_JACOBIAN:
            out.append(_matrix(lf.last_jacobian, cell, H, T))
        out.append(_sv_table(lf, cell, T))
    return "\n".join(out)
