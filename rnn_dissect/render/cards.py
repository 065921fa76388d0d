"""The pieces of a graph drawing that are HTML-like Graphviz labels: node cards and legend.

A card is a small table: a header in the node kind's colour (name, id, op), the value, the
gradient ∇ = dL/d(node), and a bar whose length is max|∇| on a log scale relative to the
largest gradient in view. Colours come from Okabe & Ito's palette, which stays distinct under
the common colour-vision deficiencies, plus neutral greys.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence

from rnn_dissect.autograd.engine import Kind, Node
from rnn_dissect.render.numbers import is_small, lines, magnitude, summary

__all__ = [
    "DECADES",
    "EDGE_COLOUR",
    "FONT",
    "PALETTE",
    "PATH_COLOURS",
    "bar_fraction",
    "card",
    "esc",
    "legend",
    "quote",
]

# Okabe & Ito (2008), "Color Universal Design", plus neutral greys for targets and outputs.
PALETTE: dict[Kind, str] = {
    Kind.INPUT: "#56B4E9",  # sky blue
    Kind.TARGET: "#DDDDDD",  # light grey: given, never differentiated
    Kind.PARAMETER: "#E69F00",  # orange
    Kind.STATE: "#0072B2",  # blue
    Kind.PREACT: "#F0E442",  # yellow
    Kind.ACTIVATION: "#009E73",  # bluish green
    Kind.GATE: "#CC79A7",  # reddish purple
    Kind.CELL: "#D55E00",  # vermillion
    Kind.OUTPUT: "#999999",  # mid grey
    Kind.LOSS: "#000000",  # black
}
_LIGHT_TEXT = {Kind.STATE, Kind.LOSS}  # fills dark enough to need white text
PATH_COLOURS = {"state": PALETTE[Kind.STATE], "cell": PALETTE[Kind.CELL]}
_PATH_LABELS = {
    PATH_COLOURS["state"]: "state path h(t−1) → h(t)",
    PATH_COLOURS["cell"]: "cell highway c(t−1) → c(t)",
}
EDGE_COLOUR = "#666666"
GRAD_COLOUR = "#222222"
DECADES = 4  # a gradient 10⁴× smaller than the largest in view gets an empty bar
BAR_WIDTH = 84
FONT = "Helvetica"


def quote(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def esc(s: str) -> str:
    """Text inside a DOT HTML-like label."""
    return html.escape(s, quote=True)


def bar_fraction(mag: float, top: float) -> float:
    if mag <= 0 or top <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 + math.log10(mag / top) / DECADES))


def card(n: Node, detail: str, top: float) -> str:
    """The HTML-like label of one node: header in the kind's colour, then value and ∇."""
    fill = PALETTE[n.kind]
    ink = "white" if n.kind in _LIGHT_TEXT else "black"
    sub = " · ".join(
        s for s in (n.id if n.id != n.name else "", "" if n.op == "leaf" else n.op) if s
    )
    full = detail == "values" or (detail == "auto" and is_small(n.value))
    small = f'  <FONT POINT-SIZE="8">{esc(sub)}</FONT>' if sub else ""
    rows = [
        f'<TR><TD BGCOLOR="{fill}" ALIGN="LEFT" CELLPADDING="4"><FONT COLOR="{ink}">'
        f"<B>{esc(n.name)}</B>{small}</FONT></TD></TR>"
    ]

    def block(label: str, arr: object, colour: str) -> None:
        text = lines(arr) if full else [summary(arr)]  # type: ignore[arg-type]
        body = '<BR ALIGN="LEFT"/>'.join(esc(t) for t in text)
        rows.append(
            f'<TR><TD ALIGN="LEFT"><FONT COLOR="{colour}" POINT-SIZE="9">{label} </FONT>'
            f'<FONT COLOR="{colour}">{body}</FONT><BR ALIGN="LEFT"/></TD></TR>'
        )

    block("value", n.value, "black")
    if n.grad is not None:
        block("∇", n.grad, GRAD_COLOUR)
        w = round(BAR_WIDTH * bar_fraction(magnitude(n.grad), top))
        cells = "".join(
            f'<TD WIDTH="{width}" HEIGHT="5" FIXEDSIZE="TRUE" BGCOLOR="{c}"></TD>'
            for width, c in ((w, GRAD_COLOUR), (BAR_WIDTH - w, "#E4E4E4"))
            if width > 0
        )
        rows.append(
            '<TR><TD ALIGN="LEFT" CELLPADDING="2"><TABLE BORDER="0" CELLBORDER="0" '
            f'CELLSPACING="0" CELLPADDING="0" FIXEDSIZE="TRUE" WIDTH="{BAR_WIDTH}" HEIGHT="5">'
            f"<TR>{cells}</TR></TABLE></TD></TR>"
        )
    elif n.requires_grad:
        rows.append(
            '<TR><TD ALIGN="LEFT"><FONT COLOR="#888888" POINT-SIZE="9">∇ not computed'
            "</FONT></TD></TR>"
        )
    else:
        rows.append(
            '<TR><TD ALIGN="LEFT"><FONT COLOR="#888888" POINT-SIZE="9">no gradient</FONT></TD></TR>'
        )
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">'
        + "".join(rows)
        + "</TABLE>>"
    )


def legend(kinds: Sequence[Kind], path_colours: Sequence[str], *, narrow: bool = False) -> str:
    """Kinds in view (four to a row), then what edges, paths, ∇ and the bars mean.

    ``narrow``: two kinds to a row and the notes wrapped at 26 characters, for a drawing
    whose ranks run left to right: there the legend sits in the first column, which is as
    wide as its widest card, so a wide legend pushed every card right (the 3:1:1 graph was
    1,516 px wide, 570 of them the legend's column; narrow, it reads in a 700-px column).
    """
    per_row = 2 if narrow else 4
    br = '<BR ALIGN="LEFT"/>'
    swatches = []
    for i in range(0, len(kinds), per_row):
        swatches.append(
            "<TR>"
            + "".join(
                f'<TD BGCOLOR="{PALETTE[k]}" WIDTH="22" BORDER="1"> </TD>'
                f'<TD ALIGN="LEFT">{esc(k.value)}  </TD>'
                for k in kinds[i : i + per_row]
            )
            + "</TR>"
        )
    notes = [
        (f'<FONT COLOR="{c}"><B>━━</B></FONT>', esc(_PATH_LABELS.get(c, "highlighted path")))
        for c in path_colours
    ]
    sep = br if narrow else " "
    notes.append(
        (f'<FONT COLOR="{EDGE_COLOUR}">──▶</FONT>', f"forward edge:{sep}the value flows along it")
    )
    gradient = [
        "dL/d(node); its bar and the card's border width show max|∇| on a log scale",
        f"({DECADES} decades) relative to the largest in view",
    ]
    if narrow:  # the same words, at most 26 characters a line
        gradient = textwrap.wrap(" ".join(gradient), 26)
    notes.append((f'<FONT COLOR="{GRAD_COLOUR}">∇</FONT>', br.join(gradient) + br))
    note_rows = "".join(
        f'<TR><TD>{sym}</TD><TD ALIGN="LEFT">{text}</TD></TR>' for sym, text in notes
    )
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">'
    return (
        f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" BGCOLOR="#FAFAFA">'
        f'<TR><TD ALIGN="LEFT"><B>legend</B></TD></TR>'
        f'<TR><TD ALIGN="LEFT">{table}{"".join(swatches)}</TABLE></TD></TR>'
        f'<TR><TD ALIGN="LEFT">{table}{note_rows}</TABLE></TD></TR></TABLE>>'
    )
