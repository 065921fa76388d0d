"""The shell of a self-contained HTML page, shared by the walkthroughs.

Inline CSS, no script, nothing fetched from the network; a viewport meta and a fluid layout
so it reads on a phone: equations wrap (their result never hides past the right edge), wide
drawings scroll sideways (``.graph.wide``: the window's width, the drawing at its own size so
its text stays readable); from 1000 px up a wide drawing shrinks to fit, so nothing of it
(the loss, at the right) hides past the edge of a desktop window.
Every piece of text goes through :func:`html.escape`. A number that comes from a graph is
written with :func:`number`: ``<span class="n" data-node=ID data-field=F data-index=I
title=REPR>``, so tests (and curious readers) can check it against the graph exactly.
"""

from __future__ import annotations

import html

from rnn_dissect.render.numbers import num

__all__ = ["CSS", "DIGITS", "eq", "number", "page"]

DIGITS = 6  # significant digits shown; the title attribute holds the full float64 repr

CSS = """
:root{--ink:#1b1f24;--mute:#5b6570;--line:#d8dde3;--bg:#fff;--soft:#f5f7fa;--on:#009E73;--off:#D55E00}
*{box-sizing:border-box}
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:56rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid var(--line)}
.eq{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92rem;background:var(--soft);
border-left:3px solid var(--line);padding:.45rem .7rem;margin:.35rem 0;white-space:normal;overflow-wrap:anywhere}
.why{color:var(--mute);font-size:.93rem;margin:.1rem 0 .6rem}
.n{font-weight:600}.g{color:#8a3b00}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;color:#fff}
.on{background:var(--on)}.off{background:var(--off)}
.note{border:2px solid var(--off);border-radius:.5rem;padding:.6rem .8rem;margin:.8rem 0;background:#fff7f0}
.graph{overflow:auto;border:1px solid var(--line);border-radius:.5rem;padding:.3rem;-webkit-overflow-scrolling:touch}
.graph svg{max-width:none;height:auto}
@media (min-width:700px){.graph svg{max-width:100%}}
.graph.wide{width:min(96vw,1500px);margin-left:calc(50% - min(48vw,750px))}
.graph.wide svg{max-width:none}
@media (min-width:1000px){.graph.wide svg{max-width:100%}}
.wrap{white-space:normal}
.scroll{overflow-x:auto}
.scroll.wide{width:min(96vw,1500px);margin-left:calc(50% - min(48vw,750px))}
.scroll.wide>table{margin:0 auto}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid var(--line);padding:.2rem .45rem;text-align:left}
code{background:var(--soft);padding:0 .25rem;border-radius:.25rem}
@media (max-width:600px){body{font-size:15px}main{padding:.6rem}
.eq{font-size:.85rem;white-space:normal;overflow-wrap:anywhere}}
"""


def number(v: float, node: str, field: str, index: tuple[int, ...] = ()) -> str:
    """One number, tagged with where it comes from (``field``: value, grad, new, local)."""
    idx = ",".join(map(str, index))
    cls = "n g" if field == "grad" else "n"
    return (
        f'<span class="{cls}" data-node="{html.escape(node)}" data-field="{html.escape(field)}" '
        f'data-index="{idx}" title="{float(v)!r}">{num(v, DIGITS)}</span>'
    )


def eq(*parts: str) -> str:
    """One line of a derivation: ``a = b = c`` (parts are HTML, already escaped)."""
    return '<div class="eq">' + " = ".join(parts) + "</div>"


def page(title: str, *body: str) -> str:
    """A whole HTML document around ``body`` (HTML fragments); ``title`` is escaped."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    return "\n".join([*head, *body, "</main></body></html>"]) + "\n"
