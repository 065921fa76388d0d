"""Text heatmaps: every character on a background coloured by one unit's activation.

The picture of Karpathy, Johnson & Fei-Fei (2015): blue for negative, white at ``center``,
red for positive, linear in t = clip((v − center) / scale, −1, 1) (matplotlib's ``bwr``)::

    t ≤ 0: rgb = (1 + t, 1 + t, 1)        t ≥ 0: rgb = (1, 1 − t, 1 − t)

``scale`` defaults to 1 (the tanh range of h); pass ``center=0.5, scale=0.5`` for a σ gate.

HTML: one ``<span>`` per character (newlines included, inside a ``<pre>``) carrying the
value in ``data-v`` (shortest round-trip repr of the stored float) and ``title``; the
character is escaped, so a text full of markup stays text. Self-contained, no scripts.
Terminal: a rich ``Text`` with the same background colours.

    >>> colour(-1.0), colour(0.0), colour(0.5)
    ('#0000ff', '#ffffff', '#ff8080')
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.text import Text

__all__ = ["colour", "heatmap_html", "heatmap_page", "heatmap_rich", "heatmap_terminal"]


def colour(v: float, center: float = 0.0, scale: float = 1.0) -> str:
    """``#rrggbb`` of value v on the blue-white-red scale."""
    t = min(1.0, max(-1.0, (float(v) - center) / scale)) if scale > 0 else 0.0
    rgb = (1 + t, 1 + t, 1.0) if t <= 0 else (1.0, 1 - t, 1 - t)
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgb)


def _check(text: str, values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if v.shape != (len(text),):
        raise ValueError(f"{len(text)} characters but values of shape {v.shape}")
    return v


def _value_str(v: np.generic) -> str:
    """Shortest decimal that reads back as exactly the stored value (float32 stays short)."""
    return str(v.item()) if isinstance(v, np.float64) else str(v)


_CSS = (
    "pre.hm{font:13px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;"
    "margin:0 0 1.2em}pre.hm span{color:#000}h2{font:600 14px sans-serif;margin:1em 0 .3em}"
    "p.note{font:14px sans-serif;border:2px solid #D55E00;border-radius:6px;padding:.5em .8em;"
    "background:#fff7f0}"
)


def heatmap_html(text: str, values: np.ndarray, center: float = 0.0, scale: float = 1.0) -> str:
    """An HTML fragment ``<pre class="hm">`` with one span per character of ``text``."""
    v = _check(text, values)
    spans = []
    for ch, x in zip(text, v, strict=True):
        s = _value_str(x)
        spans.append(
            f'<span style="background:{colour(x, center, scale)}" data-v="{s}" title="{s}">'
            f"{html.escape(ch)}</span>"
        )
    return '<pre class="hm">' + "".join(spans) + "</pre>"


def heatmap_page(
    sections: Sequence[tuple[str, str, np.ndarray, float, float]],
    title: str = "rnn-dissect neurons",
    note: str = "",
) -> str:
    """A whole HTML page: a heading and a heatmap per (heading, text, values, center, scale),
    after ``note`` (a paragraph, when given)."""
    body = (f'<p class="note">{html.escape(note)}</p>' if note else "") + "".join(
        f"<h2>{html.escape(h)}</h2>{heatmap_html(t, v, center, scale)}"
        for h, t, v, center, scale in sections
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
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
