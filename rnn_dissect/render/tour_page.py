"""The tour's page: "Dissecting the RNN" as one self-contained HTML file.

The words are :mod:`rnn_dissect.render.tour_text`; this module draws the figures its slots
name (the neurons section's in :mod:`rnn_dissect.render.tour_neurons`) and lays the page out. Everything is inline — CSS, SVG (:mod:`bptt_plots`, the
Graphviz drawings), PNG figures as ``data:`` URIs, and the explorer (its own page, with its
script, in an ``<iframe srcdoc sandbox="allow-scripts">`` so its styles and keys stay its
own). Nothing is fetched; links to the credited posts are plain anchors.

Every figure is a ``<figure data-fig=NAME>``; every computed number a ``<span class="v"
data-key=KEY>`` (:func:`rnn_dissect.render.tour_text.fill`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.bptt.reach import Comparison
from rnn_dissect.neurons.activations import UnitRef
from rnn_dissect.neurons.extremes import UnitContexts
from rnn_dissect.neurons.ranking import Scores
from rnn_dissect.neurons.tuning import Snapshot, TuningCurve
from rnn_dissect.render import tour_neurons as tn
from rnn_dissect.render.bptt_plots import (
    CELL_STYLES,
    GATE_SHADES,
    GRADIENT_COLOURS,
    PARAMETER_SHADES,
    bars_svg,
    heatmap_svg,
    reach_figure,
)
from rnn_dissect.render.graph import inline_svg
from rnn_dissect.render.tour_figures import figure, png
from rnn_dissect.render.tour_text import CREDITS, INTRO, SECTIONS, fill

__all__ = ["TourInputs", "render"]


@dataclass
class TourInputs:
    numbers: dict[str, Any]  # tour.json's numbers: what the prose's slots read
    nn_svg: str | None  # the 3:1:1 graph (None without Graphviz)
    off_svg: str | None  # the same with the ReLU off
    rnn: Dissection[Any]  # "hello" through an RNN (H 3)
    lstm: Dissection[Any]  # … through an LSTM
    rnn_page: str  # the explorer's page for each (reports.explore.page_html)
    lstm_page: str
    flow: Comparison
    scores: Scores
    snapshots: list[Snapshot]
    curves: list[TuningCurve]  # per feature its best unit's score per snapshot (tuning.json)
    contexts: dict[UnitRef, UnitContexts]
    sample: str  # what the trained model writes


CSS = """
:root{--ink:#1b1f24;--mute:#5b6570;--line:#d8dde3;--soft:#f5f7fa;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font:17px/1.6 Georgia,"Times New Roman",serif;color:var(--ink);background:#fff}
main{max-width:70rem;margin:0 auto;padding:1.5rem 1.5rem 4rem}
header,section>p,section>h2,.credits{max-width:44rem}
h1{font:700 2.3rem/1.2 system-ui,sans-serif;margin:1.5rem 0 .3rem}
.sub{font:1.05rem system-ui,sans-serif;color:var(--mute);margin:0 0 1.2rem}
h2{font:600 1.45rem/1.3 system-ui,sans-serif;margin:3rem 0 .6rem;padding-top:.6rem;border-top:1px solid var(--line)}
nav{font:.95rem system-ui,sans-serif;margin:1rem 0 2rem;display:grid;grid-template-columns:repeat(2,max-content);gap:.2rem 2rem}
nav a{color:var(--accent);text-decoration:none}
@media (max-width:820px){nav{grid-template-columns:1fr}}  /* two columns of titles: wider than a phone */
a{color:var(--accent)}
.v{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;background:#eef5fb;padding:0 .2em;border-radius:.2em;white-space:nowrap}
.eq{font:.95rem/1.5 ui-monospace,Menlo,Consolas,monospace;background:var(--soft);border-left:3px solid var(--accent);
padding:.45rem .8rem;margin:.5rem 0;max-width:56rem;overflow-x:auto;white-space:pre-wrap}
.eq .v{background:none;font-weight:700;font-size:1em}
figure{margin:1rem 0 1.6rem;padding:0}
figcaption{font:.88rem/1.4 system-ui,sans-serif;color:var(--mute);margin-top:.35rem;max-width:56rem}
figure svg{max-width:100%;height:auto}
figure img{max-width:100%;height:auto}
.graph{overflow:auto;border:1px solid var(--line);border-radius:.4rem;padding:.3rem;max-height:44rem}
.graph svg{max-width:100%;height:auto}
.row{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
.charts{display:flex;flex-wrap:wrap;gap:.5rem 2rem;align-items:flex-start}
.row>div{flex:1 1 26rem;min-width:0}
iframe.explorer{width:100%;height:800px;border:1px solid var(--line);border-radius:.4rem;display:block}
table{border-collapse:collapse;font:.9rem system-ui,sans-serif;margin:.6rem 0 1rem}
td,th{border-bottom:1px solid var(--line);padding:.25rem .7rem;text-align:left}
th{font-weight:600;color:var(--mute)}
pre.sample{font:.85rem/1.35 ui-monospace,Menlo,Consolas,monospace;background:var(--soft);padding:.7rem .9rem;
border-radius:.4rem;max-width:56rem;white-space:pre-wrap;overflow-wrap:anywhere}
.hm{font:13px/1.25 ui-monospace,Menlo,Consolas,monospace;display:grid;grid-template-columns:max-content auto;gap:1px .8rem;align-items:center}
.hm .lab{font:.8rem system-ui,sans-serif;color:var(--mute);text-align:right}
.hm .txt{white-space:pre;overflow:hidden}
.hm .txt span{color:#000}
.hm .txt span.mark{outline:2px solid #000;outline-offset:-1px}
code{font:.88em ui-monospace,Menlo,Consolas,monospace;background:var(--soft);padding:0 .25em;border-radius:.2em}
.credits{font-size:.95rem;color:var(--mute);border-top:1px solid var(--line);margin-top:3rem;padding-top:1rem}
"""


def _explorer(name: str, page: str, title: str) -> str:
    frame = (
        f'<iframe class="explorer" title="{html.escape(title)}" sandbox="allow-scripts" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
    )
    return figure(
        name,
        frame,
        "The explorer: ◀ ▶ or ← → step through the frames (forward, then backward), space "
        "plays; click a node for its numbers; the tabs under the graph answer the four "
        "questions for this text; drag to pan, wheel to zoom.",
    )


def _graph(name: str, svg: str | None, caption: str) -> str:
    if svg is None:
        body = "<p>The graph drawing needs Graphviz (<code>apt-get install graphviz</code>).</p>"
    else:
        body = f'<div class="graph">{inline_svg(svg)}</div>'
    return figure(name, body, caption)


def _steps(d: Dissection[Any]) -> list[str]:
    return [f"t={t}" for t in range(1, d.run.T + 1)]


class _Figures:
    """Each figure or table slot (``fig``, ``html``) of :data:`SECTIONS` by name."""

    def __init__(self, inp: TourInputs) -> None:
        self.i = inp
        self.n = inp.numbers

    def nn_graph(self) -> str:
        return _graph(
            "nn_graph",
            self.i.nn_svg,
            "Colour = kind of node (legend in the drawing); a thicker border and a longer bar = "
            "a larger gradient.",
        )

    def nn_off_graph(self) -> str:
        return _graph(
            "nn_off_graph", self.i.off_svg, "The ReLU is off: every gradient below h is zero."
        )

    def rnn_explorer(self) -> str:
        return _explorer("rnn_explorer", self.i.rnn_page, "the RNN unrolled over hello")

    def lstm_explorer(self) -> str:
        return _explorer("lstm_explorer", self.i.lstm_page, "the LSTM unrolled over hello")

    def q1_bars(self) -> str:
        top = self.i.rnn.carry[-1]
        svg = bars_svg(
            {
                "direct ‖dh_direct‖": [c.norms()["dh_direct"] for c in top],
                "recurrent ‖dh_next‖": [c.norms()["dh_next"] for c in top],
            },
            _steps(self.i.rnn),
            title="direct vs recurrent gradient",
            colours=[GRADIENT_COLOURS["dh_direct"], GRADIENT_COLOURS["dh_next"]],
            ylabel="‖dL/dh_t‖ by part",
        )
        return figure(
            "q1_bars", svg, "dL/dh_t split into its two parts, per step (log scale; hover a bar)."
        )

    def q1_lag(self) -> str:
        lag = self.i.rnn.flow.layers[0].lag
        T = self.i.rnn.run.T
        if lag is None:
            return figure("q1_lag", "<p>The lag matrix was not computed.</p>")
        svg = heatmap_svg(
            lag, [f"L_{t}" for t in range(1, T + 1)], [f"h_{t}" for t in range(1, T + 1)],
            cell=34, label_width=60, title="lag matrix",
        )  # fmt: skip
        return figure(
            "q1_lag",
            svg,
            "‖∂L_t′/∂h_t‖: darker = more gradient (hover a cell); blank above the diagonal, "
            "where t > t′: a loss term cannot depend on a later state.",
        )

    def q1_reach(self) -> str:
        c = self.i.flow
        fig = reach_figure(
            {r.cell: r.curve for r in c.rows},
            {r.cell: r.reach for r in c.rows},
            c.fall,
            f"gradient reach, T = {c.steps}, H = {c.hidden}",
        )
        return figure(
            "q1_reach",
            png(fig, "gradient reach of RNN, LSTM and GRU"),
            "‖∂L_T/∂h_(T−ℓ)‖ relative to its peak, against the lag ℓ (rnn-dissect flow); on a long "
            "text the left panel shows the first lags, where each line crosses the threshold.",
        )

    def q2_terms(self) -> str:
        norms = self.i.rnn.step.norms
        names = {"rnn.weight_ih_l0": "W_ih", "rnn.weight_hh_l0": "W_hh", "head.weight": "W_hy"}
        svg = bars_svg(
            {f"‖term of {v}‖": list(norms[k]) for k, v in names.items()},
            _steps(self.i.rnn),
            title="per-step weight-gradient terms",
            colours=PARAMETER_SHADES,
            ylabel="norm of the term",
        )
        return figure(
            "q2_terms", svg, "Each shared weight's gradient term at each step (their sum is dL/dW)."
        )

    def q3_bytes(self) -> str:
        series = {}
        for name, d in (("RNN", self.i.rnn), ("LSTM", self.i.lstm)):
            per = np.zeros(d.run.T)
            for e in d.memory.entries:
                if e.t is not None and 1 <= e.t <= d.run.T:
                    per[e.t - 1] += e.bytes
            series[f"{name} bytes kept"] = list(per)
        svg = bars_svg(
            series,
            _steps(self.i.rnn),
            log=False,
            title="forward cache per step",
            colours=[CELL_STYLES["rnn"].colour, CELL_STYLES["lstm"].colour],  # as in the reach
            hatches=[CELL_STYLES["rnn"].hatch, CELL_STYLES["lstm"].hatch],  # figure: no hue
            ylabel="bytes",
        )
        return figure("q3_bytes", svg, "What the forward pass keeps at each step, in bytes.")

    def q4_carry(self) -> str:
        # one chart per cell, so that a colour is one gradient (dh_next blue in both)
        charts = []
        for cell, carry, parts in (
            ("RNN", self.i.rnn.carry[0], ("dh_next", "dh_raw")),
            ("LSTM", self.i.lstm.carry[0], ("dh_next", "dc_next")),
        ):
            svg = bars_svg(
                {f"‖{k}‖": [c.norms()[k] for c in carry] for k in parts},
                _steps(self.i.rnn),
                title=f"what backward carries: {cell}",
                colours=[GRADIENT_COLOURS[k] for k in parts],
                ylabel=f"{cell}: norm",
            )
            charts.append(f'<div class="chart" data-cell="{cell.lower()}">{svg}</div>')
        return figure(
            "q4_carry",
            f'<div class="charts">{"".join(charts)}</div>',
            "What each step receives from the next, per step, in the RNN (left) and the LSTM "
            "(right); nothing arrives at the last step, which has no next.",
        )

    def lstm_gates(self) -> str:
        rows = self.i.lstm.gates[0] if self.i.lstm.gates else []
        series = {f"mean {g}": [float(np.mean(s[g])) for s in rows] for g in ("f", "i", "o")}
        svg = bars_svg(
            series,
            _steps(self.i.lstm),
            log=False,
            title="LSTM gates per step",
            colours=GATE_SHADES,
            ylabel="gate",
        )
        return figure(
            "lstm_gates", svg, "Mean forget, input and output gate per step (0 = closed, 1 = open)."
        )

    def tuning_unit(self) -> str:
        return tn.tuning_unit(self.n, self.i.curves, self.i.snapshots)

    def score_curves(self) -> str:
        return tn.score_curves(self.i.curves)

    def contexts(self) -> str:
        return tn.contexts(self.n, self.i.scores, self.i.contexts)

    def sample(self) -> str:
        return f'<pre class="sample">{html.escape(self.i.sample)}</pre>'

    def detectors(self) -> str:
        return tn.detectors(self.n, self.i.scores)


def render(inp: TourInputs) -> str:
    """The whole page."""
    n = inp.numbers
    figs = _Figures(inp)
    nav = " ".join(f'<a href="#{sid}">{html.escape(h)}</a>' for sid, h, _ in SECTIONS)
    body = [
        "<header><h1>Dissecting the RNN</h1>",
        '<p class="sub">from the 3:1:1 network to the neurons of a trained LSTM, every number '
        "computed</p>",
        *(f'<p class="prose">{fill(p, n)}</p>' for p in INTRO),
        f"<nav>{nav}</nav></header>",
    ]
    for sid, heading, blocks in SECTIONS:
        body.append(f'<section id="{sid}"><h2>{html.escape(heading)}</h2>')
        for kind, arg in blocks:
            if kind == "p":
                body.append(f'<p class="prose">{fill(arg, n)}</p>')
            elif kind == "eq":
                body.append(f'<div class="eq">{fill(html.escape(arg), n)}</div>')
            else:  # "fig" or "html": drawn by the method of that name
                body.append(getattr(figs, arg)())
        body.append("</section>")
    body.append(
        '<footer class="credits">' + "".join(f"<p>{fill(p, n)}</p>" for p in CREDITS) + "</footer>"
    )
    return _shell(body)


def _shell(body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Dissecting the RNN</title>\n"
        f"<style>{CSS}</style></head><body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
