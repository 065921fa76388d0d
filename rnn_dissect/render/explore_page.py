"""The explorer's front-end as one page, one script, one stylesheet — built from the plain ES
modules in ``render/static/explorer/`` (one file per view), with no build tool and no network.

:func:`bundle` joins the modules into one ES module: each becomes a function scope that
returns its exports, imports become destructuring of earlier scopes (in dependency order),
and the bundle exports what ``main.js`` exports (``mount``). That one text serves the page
(inline ``<script type="module">``, which browsers run from file:// too), the local server and
the notebook widget (anywidget's ``_esm``). The modules keep to a small syntax so this stays
a few lines: ``import { a, b } from "./x.js";`` on one line, and ``export function|const|class``.

:func:`page` is the HTML: the stylesheet, the data as ``<script type="application/json">``
(``<`` written ``\\u003c`` so no text can end the script early), the bundle, and a boot line.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["bundle", "css", "page"]

_IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([\w-]+)\.js";\s*$', re.M)
_EXPORT = re.compile(r"^export (?:async )?(function|const|let|class) (\w+)", re.M)
_OTHER = re.compile(r"^\s*(import|export)\b(?! \{[^}]*\} from \"\./)", re.M)


def _source(name: str) -> str:
    return (
        resources.files("rnn_dissect.render")
        .joinpath("static", "explorer", name)
        .read_text(encoding="utf-8")
    )


@cache
def bundle(entry: str = "main") -> str:
    """The modules reachable from ``entry`` as one ES module exporting ``entry``'s exports."""
    order: list[str] = []
    texts: dict[str, str] = {}

    def visit(mod: str, path: tuple[str, ...]) -> None:
        if mod in order:
            return
        if mod in path:
            raise ValueError(f"import cycle: {' -> '.join((*path, mod))}")
        text = _source(f"{mod}.js")
        for m in _IMPORT.finditer(text):
            visit(m.group(2), (*path, mod))
        texts[mod] = text
        order.append(mod)

    visit(entry, ())
    out = ["// rnn-dissect explorer: plain ES modules from rnn_dissect/render/static/explorer/"]
    for mod in order:
        text = texts[mod]
        exports = [m.group(2) for m in _EXPORT.finditer(text)]
        body = _IMPORT.sub(
            lambda m: f"const {{{m.group(1)}}} = __{m.group(2)};",
            text,
        )
        body = _EXPORT.sub(lambda m: m.group(0)[len("export ") :], body)
        for line in body.splitlines():
            if _OTHER.match(line) and not line.lstrip().startswith("//"):
                raise ValueError(f"{mod}.js: unsupported import/export form: {line.strip()}")
        out.append(f"const __{mod} = (() => {{\n{body}\nreturn {{ {', '.join(exports)} }};\n}})();")
    entry_exports = [m.group(2) for m in _EXPORT.finditer(texts[entry])]
    out.append(f"export const {{ {', '.join(entry_exports)} }} = __{entry};")
    text = "\n".join(out) + "\n"
    if "</script" in text.lower():
        raise ValueError("a module contains '</script', which would end the inline script")
    return text


@cache
def css() -> str:
    return _source("explorer.css")


def _script_json(text: str) -> str:
    """JSON text safe inside ``<script>``: ``<``, ``>`` and ``&`` (which JSON allows only
    inside strings) written as ``\\u003c`` … as Django's json_script does, so no text can
    close the element or open a comment."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_BOOT = """
const data = JSON.parse(document.getElementById("rde-data").textContent);
const api = JSON.parse(document.getElementById("rde-api").textContent);
const host = {};
if (api && api.token) {
  const post = async (path, payload) => {
    const r = await fetch(path + "?token=" + encodeURIComponent(api.token), {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload),
    });
    const body = await r.json().catch(() => ({error: "the server sent no JSON (HTTP " + r.status + ")"}));
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    return body;
  };
  host.recompute = (text) => post("api/dissect", {text});
  host.node = (text, id) => post("api/node", {text, id});
}
mount(document.getElementById("rde-root"), data, host);
"""


def page(data_json: str, api: dict[str, Any] | None = None) -> str:
    """The HTML page around ``data_json`` (an explore.json document as text)."""
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            "<title>rnn-dissect explorer</title>\n",
            f"<style>\nbody{{margin:0}}\n{css()}</style>\n</head><body>\n",
            '<div id="rde-root"><p style="font:14px system-ui;padding:1em">Loading the explorer…'
            " (it needs JavaScript)</p></div>\n",
            '<script type="application/json" id="rde-data">',
            _script_json(data_json),
            "</script>\n",
            '<script type="application/json" id="rde-api">',
            _script_json(json.dumps(api)),
            "</script>\n",
            '<script type="module">\n',
            bundle(),
            _BOOT,
            "</script>\n</body></html>\n",
        ]
    )
