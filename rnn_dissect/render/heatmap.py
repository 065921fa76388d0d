"""Text heatmaps: every character on a background coloured by one unit's activation.

The picture of Karpathy, Johnson & Fei-Fei (2015): a diverging scale, white at ``center``,
blue below, red above, linear in t = clip((v − center) / scale, −1, 1) from white to the end
colour (``NEG`` for t = −1, ``POS`` for t = +1)::

    rgb = white + |t| · (end − white)

The ends are light enough that black text stays readable everywhere: along each line from
white the WCAG contrast with black falls monotonically to the end's, 5.7:1 (blue) and 5.9:1
(red) — above the 4.5:1 WCAG AA asks of body text (:func:`contrast`). ``scale`` defaults to 1
(the tanh range of h); pass ``center=0.5, scale=0.5`` for a σ gate.

HTML: one ``<span>`` per character (newlines included, inside a ``<pre>``) carrying the
value in ``data-v`` (shortest round-trip repr of the stored float), shown on hover by CSS;
the character is escaped, so a text full of markup stays text. :func:`heatmap_page` is the
whole ``heatmaps.html``: title, introduction, legend, an index (feature → best units with
scores, linked) and one section per unit. Self-contained, no scripts. :func:`heatmap_line` is
one line of a figure on the tour's page: a row of a grid, newline and tab drawn as ↵ and →, the
value in each span's ``title`` (the browser's tooltip; the tour has no hover CSS).
:func:`colour_scale` is the (center, scale) every heatmap of a unit uses, from its kind.
Terminal: a rich ``Text`` with the same background colours, and :func:`legend_terminal`.

    >>> colour(-1.0), colour(0.0), colour(1.0)
    ('#4080ff', '#ffffff', '#f24d40')
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.text import Text

from rnn_dissect.neurons.ranking import SIGMOID_GATES

__all__ = [
    "NEG",
    "POS",
    "IndexRow",
    "UnitSection",
    "colour",
    "colour_scale",
    "contrast",
    "heatmap_html",
    "heatmap_line",
    "heatmap_page",
    "heatmap_rich",
    "heatmap_terminal",
    "legend_html",
    "legend_terminal",
]

NEG = (0x40, 0x80, 0xFF)  # t = −1: light blue, 5.7:1 against black text
POS = (0xF2, 0x4D, 0x40)  # t = +1: light red, 5.9:1 against black text


def colour(v: float, center: float = 0.0, scale: float = 1.0) -> str:
    """``#rrggbb`` of value v on the blue-white-red scale."""
    t = min(1.0, max(-1.0, (float(v) - center) / scale)) if scale > 0 else 0.0
    end = NEG if t < 0 else POS
    return "#" + "".join(f"{round(255 + abs(t) * (e - 255)):02x}" for e in end)


def colour_scale(kind: str, values: np.ndarray) -> tuple[float, float]:
    """(center, scale) for a heatmap of a ``kind`` unit's ``values`` (any shape): σ gates
    around 0.5 over [0, 1], tanh-range kinds around 0 over [−1, 1], cell states around 0 over
    their own max |c| (1 when that is 0)."""
    if kind in SIGMOID_GATES:
        return 0.5, 0.5
    if kind == "c":
        return 0.0, float(np.max(np.abs(values), initial=0.0)) or 1.0
    return 0.0, 1.0


def contrast(a: str, b: str = "#000000") -> float:
    """WCAG 2 contrast ratio (L1 + 0.05) / (L2 + 0.05) of two ``#rrggbb`` colours."""

    def lum(h: str) -> float:
        c = [int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _check(text: str, values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if v.shape != (len(text),):
        raise ValueError(f"{len(text)} characters but values of shape {v.shape}")
    return v


def _value_str(v: np.generic) -> str:
    """Shortest decimal that reads back as exactly the stored value (float32 stays short)."""
    return str(v.item()) if isinstance(v, np.float64) else str(v)


_CSS = """
body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1b1f24}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.4rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #d8dde3}
h3{font-size:1rem;margin:1.4rem 0 .2rem;scroll-margin-top:.5rem}
p.why{color:#4a535c;margin:.2rem 0 .6rem}p.cap{margin:.5rem 0 .1rem;font-size:.85rem;color:#4a535c}
pre.hm{font:13px/1.45 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;margin:0 0 .4rem;
border:1px solid #d8dde3;padding:.3rem}pre.hm span{color:#000;position:relative}
pre.hm span:hover::after{content:attr(data-v);position:absolute;left:0;top:1.4em;background:#1b1f24;
color:#fff;padding:0 .3em;border-radius:3px;font-size:12px;z-index:2;white-space:nowrap}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #d8dde3;padding:.2rem .45rem;text-align:left;vertical-align:top}
.bar{height:1.1rem;border:1px solid #999;width:22rem}.ticks{display:flex;justify-content:space-between;width:22rem;font-size:.8rem}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:.8rem}.cols pre.hm{font-size:12px}
@media (max-width:700px){.cols{grid-template-columns:1fr}}
.legend{display:flex;gap:2rem;flex-wrap:wrap;margin:.4rem 0}
p.note{border:2px solid #D55E00;border-radius:6px;padding:.5em .8em;background:#fff7f0}
"""


@dataclass
class UnitSection:
    """One unit's section: ``anchor`` (an id), ``heading`` and ``about`` (plain text: the
    features it scores on), its strips (caption, text, values) full width, then ``columns``
    side by side (a title and its strips: the highest contexts, the lowest), all on one
    colour scale."""

    anchor: str
    heading: str
    about: str
    strips: list[tuple[str, str, np.ndarray]]
    center: float
    scale: float
    columns: list[tuple[str, list[tuple[str, str, np.ndarray]]]] = field(default_factory=list)


@dataclass
class IndexRow:
    """One feature in the index: its name, what it is, its metric ("r" or "2AUC−1") and its
    best units as (label, anchor, score)."""

    feature: str
    about: str
    metric: str
    units: list[tuple[str, str, float]]


def heatmap_html(text: str, values: np.ndarray, center: float = 0.0, scale: float = 1.0) -> str:
    """An HTML fragment ``<pre class="hm">`` with one span per character of ``text``."""
    v = _check(text, values)
    spans = []
    for ch, x in zip(text, v, strict=True):
        s = _value_str(x)
        spans.append(  # unquoted attributes: neither holds a space, quote, = or <>
            f"<span style=background:{colour(x, center, scale)} data-v={s}>{html.escape(ch)}</span>"
        )
    return '<pre class="hm">' + "".join(spans) + "</pre>"


SHOWN = {"\n": "↵", "\t": "→"}  # what heatmap_line draws for characters that would break its line


def heatmap_line(
    text: str, values: np.ndarray, center: float = 0.0, scale: float = 1.0, mark: int = -1
) -> str:
    """``<div class="txt">``: ``text`` (N characters, ``values`` of shape (N,)) on one line,
    a span per character with its value to 4 significant digits in ``title``; the character
    at index ``mark`` has ``class="mark"`` (the page outlines it)."""
    v = _check(text, values)
    spans = []
    for j, (ch, x) in enumerate(zip(text, v, strict=True)):
        cls = ' class="mark"' if j == mark else ""
        spans.append(
            f'<span{cls} style="background:{colour(float(x), center, scale)}" '
            f'title="{float(x):.4g}">{html.escape(SHOWN.get(ch, ch))}</span>'
        )
    return f'<div class="txt">{"".join(spans)}</div>'


def legend_html(center: float = 0.0, scale: float = 1.0, what: str = "") -> str:
    """A colour bar from center − scale to center + scale, with its ticks and ``what``."""
    stops = ", ".join(colour(center + scale * k / 10, center, scale) for k in range(-10, 11))
    ticks = [center - scale, center, center + scale]
    fmt = (lambda x: f"{x:+.3g}" if x else "0") if center == 0 else (lambda x: f"{x:.3g}")
    return (
        f'<div><div class="bar" style="background:linear-gradient(to right, {stops})"></div>'
        '<div class="ticks">'
        + "".join(f"<div>{fmt(x).replace('-', '−')}</div>" for x in ticks)
        + "</div>"
        f"<div>{html.escape(what)}</div></div>"
    )


def heatmap_page(
    units: Sequence[UnitSection],
    index: Sequence[IndexRow] = (),
    title: str = "rnn-dissect neurons",
    intro: Sequence[str] = (),
    note: str = "",
) -> str:
    """The whole page: ``title``, the ``intro`` paragraphs (plain text), the legend, the
    ``index`` (feature → best units, linked to their sections), then every unit's section."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f'<p class="why">{html.escape(p)}</p>' for p in intro]
    body.append(f'<p class="note">{html.escape(note)}</p>' if note else "")
    body += [
        "<h2>Colour legend</h2>",
        '<p class="why">Black text on every colour (contrast with black at least 4.5:1). Hover '
        "a character for the unit's value after reading it.</p>",
        '<div class="legend">',
        legend_html(0.0, 1.0, "h, g, n (tanh range): −1 blue, 0 white, +1 red"),
        legend_html(0.5, 0.5, "gates i, f, o, r, z (σ range): 0 blue, ½ white, 1 red"),
        "</div>",
        '<p class="why">c (cell state, not bounded): white at 0, full colour at ± its own '
        "largest |c| over the text shown, given in its heading.</p>",
    ]
    if index:
        rows = []
        for r in index:
            links = ", ".join(
                f'<a href="#{html.escape(a)}">{html.escape(lab)}</a> {s:+.3f}'
                for lab, a, s in r.units
            )
            rows.append(
                f"<tr><td><strong>{html.escape(r.feature)}</strong></td><td>{html.escape(r.about)}"
                f"</td><td>{html.escape(r.metric)}</td><td>{links or '(constant here)'}</td></tr>"
            )
        body += [
            '<h2 id="index">Index: feature → best units</h2>',
            '<table class="index"><tr><th>feature</th><th>what it is</th><th>score</th>'
            "<th>best units (score)</th></tr>" + "".join(rows) + "</table>",
        ]
    body.append('<h2 id="units">The units</h2>')
    for u in units:
        body.append(f'<h3 id="{html.escape(u.anchor)}">{html.escape(u.heading)}</h3>')
        body.append(f'<p class="why">{html.escape(u.about)} <a href="#index">index ↑</a></p>')
        for cap, text, values in u.strips:
            body.append(f'<p class="cap">{html.escape(cap)}</p>')
            body.append(heatmap_html(text, values, u.center, u.scale))
        if u.columns:
            body.append('<div class="cols">')
            for name, strips in u.columns:
                body.append(f'<div><p class="cap"><strong>{html.escape(name)}</strong></p>')
                for cap, text, values in strips:
                    body.append(f'<p class="cap">{html.escape(cap)}</p>')
                    body.append(heatmap_html(text, values, u.center, u.scale))
                body.append("</div>")
            body.append("</div>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>"
        + "\n".join(body)
        + "</main></body></html>\n"
    )


def heatmap_rich(text: str, values: np.ndarray, center: float = 0.0, scale: float = 1.0) -> Text:
    """A rich ``Text``: black characters on the value's background colour."""
    v = _check(text, values)
    out = Text()
    for ch, x in zip(text, v, strict=True):
        out.append(ch, style=f"#000000 on {colour(x, center, scale)}" if ch != "\n" else None)
    return out


def heatmap_terminal(
    text: str, values: np.ndarray, width: int = 80, center: float = 0.0, scale: float = 1.0
) -> str:
    """The rich heatmap rendered to a string of ANSI truecolor escapes, ``width`` columns."""
    buf = io.StringIO()
    console = Console(
        file=buf, width=width, force_terminal=True, color_system="truecolor", legacy_windows=False
    )
    console.print(heatmap_rich(text, values, center, scale), soft_wrap=False, end="")
    return buf.getvalue()


def legend_terminal(center: float = 0.0, scale: float = 1.0, width: int = 21) -> str:
    """One line: the colour scale from center − scale to center + scale, ends labelled."""
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=True, color_system="truecolor")
    bar = Text(f"{center - scale:+.3g} ")
    for k in range(width):
        x = center + scale * (2 * k / (width - 1) - 1)
        bar.append(" ", style=f"on {colour(x, center, scale)}")
    bar.append(f" {center + scale:+.3g}")
    console.print(bar, end="")
    return buf.getvalue()
