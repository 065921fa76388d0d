"""Draw a recorded graph with Graphviz: one card per node, value and gradient on each.

:func:`to_dot` is a pure function (Graph → DOT text for ``dot`` alone); :func:`to_svg` runs
Graphviz: ``dot -Tsvg`` for a plain graph, and for an unrolled one ``dot`` for the layout of
each step then ``neato -n2`` to draw the steps in time order (:mod:`.layout` says why).

- Colour = node kind, from the Okabe–Ito palette (safe for the common colour-vision
  deficiencies) plus greys; a legend lists the kinds in view.
- Each card shows the node's name, id and op, its value and its gradient ∇ = dL/d(node).
  Small tensors show every number; bigger ones their shape and norms (``detail``).
- Gradient magnitude at a glance: the card's border width and a bar under the numbers, both
  log-scaled max|∇| relative to the largest in view (a bar spans ``DECADES`` decades).
- Forward edges are grey arrows (value flows along them); gradients live on the cards, and
  the part of a parent's gradient that came back along an edge is the edge's tooltip.
- Unrolled graphs: nodes with a time step ``t`` sit in one cluster per step (left to right),
  a sub-cluster per layer; parameters (t=None) are drawn once, outside, and feed every step.
  ``highlight`` colours paths: by default the h_{t-1} → h_t state path and, for an LSTM,
  the c_{t-1} → c_t cell highway (:func:`state_path`).

In the SVG every node is ``<g id="<node id>" class="node kind-<kind>">``, every forward edge
``<g id="edge:<parent>><child>:<k>" class="edge forward">`` (plus ``state-path`` when
highlighted), each step ``<g id="cluster_t<t>" class="cluster step">`` (layers
``cluster_t<t>_l<layer>``, parameters ``cluster_params``) and the legend ``<g id="legend">``.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.autograd.ops import OPS
from rnn_dissect.errors import UserError
from rnn_dissect.render.cards import (
    EDGE_COLOUR,
    FONT,
    PALETTE,
    PATH_COLOURS,
    bar_fraction,
    card,
    esc,
    legend,
    quote,
)
from rnn_dissect.render.numbers import is_small, lines, magnitude, summary
from rnn_dissect.render.paths import state_path, step_of
from rnn_dissect.render.unrolled_layout import Positions, plan, repack

__all__ = [
    "PALETTE",
    "PATH_COLOURS",
    "GraphvizMissing",
    "inline_svg",
    "state_path",
    "to_dot",
    "to_svg",
]


class GraphvizMissing(UserError):  # noqa: N818 — the name says what is wrong
    """Graphviz's ``dot`` is not installed."""

    def __init__(self) -> None:
        super().__init__("Graphviz 'dot' not found; install it with: apt-get install graphviz")


def to_dot(
    graph: Graph,
    nodes: Sequence[Node] | None = None,
    *,
    detail: str = "auto",
    highlight: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """DOT text for ``nodes`` (default: the whole graph); ``dot -Tsvg`` draws it in one pass.

    ``detail``: "auto" (every number for tensors of ≤ 12 entries, else shape and norms),
    "values" (always every number) or "tensor" (always shape and norms). ``highlight``
    maps node ids to colours; an edge whose two ends share a colour is drawn bold in it.
    None means :func:`state_path` (nothing for graphs without time steps); ``{}`` turns
    highlighting off. ``title`` is drawn above the graph. (:func:`to_svg` draws unrolled
    graphs in two passes, which also guarantees the steps' left-to-right order.)
    """
    return _Drawing(graph, nodes, detail, highlight, title).dot("one-pass")


# neato routes edges around the nodes, in time that grows like nodes × edges to route (about
# 3 s at 3,500 on 2 cores): beyond that, edges across steps get a plain S-curve instead.
ROUTE_BUDGET = 3500


def to_svg(
    graph: Graph,
    nodes: Sequence[Node] | None = None,
    *,
    detail: str = "auto",
    highlight: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """The drawing as SVG text; same options as :func:`to_dot`.

    Raises :class:`GraphvizMissing` when Graphviz is not installed.
    """
    d = _Drawing(graph, nodes, detail, highlight, title)
    if d.lay.rankdir == "LR":
        return _run(["dot", "-Tsvg"], d.dot("one-pass"))
    coarse = json.loads(_run(["dot", "-Tjson"], d.dot("layout")))
    order = ["cluster_params", *(f"cluster_t{t}" for t in d.steps)]
    pos = repack(coarse, order, "legend")
    edges = sum(1 for n in d.drawn for p in n.parents if p.seq in d.in_view)
    pos.route = len(d.drawn) * (edges - len(pos.edges)) <= ROUTE_BUDGET
    return _run(["neato", "-n2", "-Tsvg"], d.dot("final", pos))


def _run(cmd: list[str], dot: str) -> str:
    try:
        proc = subprocess.run(
            cmd, input=dot.encode("utf-8"), capture_output=True, timeout=600, check=False
        )
    except FileNotFoundError:
        raise GraphvizMissing() from None
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout.decode("utf-8")


class _Drawing:
    """One drawing's nodes, colours and layout hints, written out as DOT for one pass:

    - "one-pass": everything, for ``dot`` alone (cross-step edges routed reversed);
    - "layout": without cross-step and parameter edges, for ``dot -Tjson``;
    - "final": everything at the positions :func:`repack` computed, for ``neato -n2``.
    """

    def __init__(
        self,
        graph: Graph,
        nodes: Sequence[Node] | None,
        detail: str,
        highlight: Mapping[str, str] | None,
        title: str | None,
    ) -> None:
        if detail not in ("auto", "values", "tensor"):
            raise ValueError(f"detail must be auto, values or tensor, not {detail!r}")
        self.graph, self.detail, self.title = graph, detail, title
        self.drawn = list(graph.nodes if nodes is None else nodes)
        self.in_view = {n.seq for n in self.drawn}
        self.hl = dict(state_path(graph, self.drawn) if highlight is None else highlight)
        self.top = max((magnitude(n.grad) for n in self.drawn), default=0.0)
        self.lay = plan(self.drawn)
        self.steps = sorted({s for n in self.drawn if (s := step_of(n)) is not None})

    def node(self, n: Node, indent: str, pos: Positions | None) -> str:
        tip = f"{n.id}: " + (n.kind.value if n.op == "leaf" else OPS[n.op].formula)
        attrs = [
            f"id={quote(n.id)}",
            f"class={quote('kind-' + n.kind.value.replace(' ', '-'))}",
            f"label={card(n, self.detail, self.top)}",
            f"penwidth={0.8 + 2.4 * bar_fraction(magnitude(n.grad), self.top):.2f}",
            f"color={quote(self.hl.get(n.id, '#333333'))}",
            f"tooltip={quote(tip)}",
        ]
        if n.grad is None:
            attrs.append('style="rounded,filled,dashed"')
        if pos is not None and n.id in pos.nodes:
            attrs.append(f'pos="{pos.nodes[n.id]}!"')
        return f"{indent}{quote(n.id)} [{', '.join(attrs)}];"

    def cluster(self, name: str, indent: str, pos: Positions | None) -> str:
        """Attributes of one cluster; its label goes on top whichever way ranks run."""
        loc = "b" if self.lay.rankdir == "BT" else "t"  # BT flips cluster labels
        out = f'{indent}id="{name}"; labelloc={loc};'
        if pos is not None and name in pos.clusters:
            bb, lp = pos.clusters[name]
            out += f' bb="{bb}";' + (f' lp="{lp}";' if lp else "")
        return out

    def edge(self, p: Node, n: Node, k: int, phase: str, pos: Positions | None) -> str | None:
        key = (p.seq, n.seq)
        if phase == "layout" and (key in self.lay.carried or key in self.lay.loose):
            return None  # routed in the final pass
        eid = f"edge:{p.id}>{n.id}:{k}"
        attrs = [f"id={quote(eid)}"]
        c = self.hl.get(n.id)
        if c is not None and self.hl.get(p.id) == c:
            attrs += ['class="forward state-path"', f"color={quote(c)}", "penwidth=2.6"]
        else:
            attrs.append('class="forward"')
            if p.kind == Kind.PARAMETER and n.t is not None:
                attrs.append('color="#B8B8B8"')  # shared weights fan out to every step
        if p.requires_grad and n.grad is not None:
            g = self.graph.edge_grad(n, p)
            via = lines(g) if is_small(g) else [summary(g)]
            attrs.append(f"tooltip={quote(f'dL/d{p.id} via {n.id}: ' + ' '.join(via))}")
        if pos is not None and (eid in pos.edges or not pos.route):
            attrs.append(f'pos="{pos.edges.get(eid) or pos.curve(p.id, n.id)}"')
        if phase == "one-pass" and key in self.lay.carried:
            # runs downhill, from the top of step t−1 to the bottom of step t: declared
            # reversed, so dot routes it as an ordinary edge instead of a loop
            return f"  {quote(n.id)} -> {quote(p.id)} [{', '.join([*attrs, 'dir=back', 'constraint=false'])}];"
        if phase == "one-pass" and key in self.lay.loose:
            attrs.append("constraint=false")
        return f"  {quote(p.id)} -> {quote(n.id)} [{', '.join(attrs)}];"

    def dot(self, phase: str, pos: Positions | None = None) -> str:
        lay = self.lay
        graph_attrs = (
            f'rankdir={lay.rankdir}, fontname="{FONT}", nodesep=0.3, ranksep=0.5, '
            'newrank=true, bgcolor="white", pad=0.2, labeljust=l, outputorder=edgesfirst'
        )
        if pos is not None:
            graph_attrs += f', bb="{pos.bb}"' + (f', lp="{pos.lp}"' if pos.lp else "")
            graph_attrs += ", splines=true" if pos.route else ""
        out = [
            "digraph G {",
            f"  graph [{graph_attrs}];",
            f'  node [shape=box, style="rounded,filled", fillcolor=white, fontname="{FONT}", '
            'fontsize=11, margin="0.04,0.03"];',
            f'  edge [color="{EDGE_COLOUR}", arrowsize=0.7, fontname="{FONT}"];',
        ]
        if self.title:
            out.append(f"  labelloc=t; fontsize=16; label=<<B>{esc(self.title)}</B>>;")

        # Nodes without a time step outside every cluster; in an unrolled graph the shared
        # parameters get a column of their own, and each step a cluster with one per layer.
        steps: dict[int, dict[int | None, list[Node]]] = defaultdict(lambda: defaultdict(list))
        params = [n for n in self.drawn if n.kind == Kind.PARAMETER]
        for n in self.drawn:
            if (t := step_of(n)) is not None:
                steps[t][n.layer].append(n)
            elif n.kind != Kind.PARAMETER or lay.rankdir == "LR":
                out.append(self.node(n, "  ", pos))
        if params and lay.rankdir != "LR":
            out.append('  subgraph "cluster_params" {')
            out.append(
                self.cluster("cluster_params", "    ", pos) + ' class="params"; '
                'label=<<B>parameters</B><BR/><FONT POINT-SIZE="10">shared by every '
                "step</FONT>>; fontsize=14;"
            )
            out.append('    style="rounded,filled"; fillcolor="#FFF8EC"; color="#E0C89A";')
            out.extend(self.node(n, "    ", pos) for n in params)
            out.append("  }")
        for t in sorted(steps):
            out.append(f'  subgraph "cluster_t{t}" {{')
            out.append(
                self.cluster(f"cluster_t{t}", "    ", pos)
                + f' class="step"; label=<<B>t = {t}</B>>; fontsize=14;'
            )
            out.append('    style="rounded,filled"; fillcolor="#F5F7FA"; color="#B0B8C0";')
            layers = steps[t]
            for layer in sorted(layers, key=lambda v: -1 if v is None else v):
                if layer is None:
                    out.extend(self.node(n, "    ", pos) for n in layers[layer])
                    continue
                name = f"cluster_t{t}_l{layer}"
                out.append(f'    subgraph "{name}" {{')
                out.append(
                    self.cluster(name, "      ", pos) + f' class="layer"; label="layer '
                    f'{layer}"; fontsize=11; style="rounded,filled"; fillcolor="#FFFFFF"; '
                    'color="#D0D4D8";'
                )
                out.extend(self.node(n, "      ", pos) for n in layers[layer])
                out.append("    }")
            out.append("  }")

        for n in self.drawn:
            for k, p in enumerate(n.parents):
                if p.seq in self.in_view and (line := self.edge(p, n, k, phase, pos)):
                    out.append(line)
        if phase != "final":
            out.extend(f"  {quote(a)} -> {quote(b)} [style=invis];" for a, b in lay.hidden)
            out.extend(
                "  { rank=same; " + " ".join(f"{quote(i)};" for i in ids) + " }"
                for ids in lay.same_rank
            )
        if phase == "one-pass" and lay.order:  # children of an ordered root: steps in order
            out.append('  "__steps__" [shape=point, style=invis, width=0, height=0, ordering=out];')
            out.extend(f'  "__steps__" -> {quote(i)} [style=invis];' for i in lay.order)

        kinds = [k for k in Kind if any(n.kind == k for n in self.drawn)]
        colours = list(dict.fromkeys(self.hl.values()))
        where = (
            f', pos="{pos.nodes["legend"]}!"' if pos is not None and "legend" in pos.nodes else ""
        )
        out.append(
            f'  "legend" [id="legend", class="legend", shape=plain, style=""{where}, '
            f"label={legend(kinds, colours, narrow=self.lay.rankdir == 'LR')}];"
        )
        out.append("}")
        return "\n".join(out) + "\n"


def inline_svg(svg: str) -> str:
    """SVG text ready to paste into HTML: the XML prolog, DOCTYPE and comments removed."""
    start = svg.find("<svg")
    body = svg[start:] if start >= 0 else svg
    out, i = [], 0
    while (j := body.find("<!--", i)) >= 0:
        out.append(body[i:j])
        k = body.find("-->", j)
        i = len(body) if k < 0 else k + 3
    out.append(body[i:])
    return "".join(out)
