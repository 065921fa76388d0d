"""The explorer's page for ``watch``'s ``d.save(DIR)``: DIR/explore.json from a part's document.

Installed into :data:`rnn_dissect.watch.EXPORTERS` by the package's ``__init__`` (watch
sits below the reports layer, as the engine sits below the notebook display it is given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = ["explore_json"]


def explore_json(doc: dict[str, Any], path: Path) -> None:
    """Write the page data of a ``dissection.json`` document with nodes to ``path`` (atomic)."""
    from rnn_dissect.reports.explore import document_data, dumps  # only when saving

    cfg = doc.get("config", {})
    doc = {**doc, "config": {"vocab": [], **cfg}}  # the page names a vocabulary; floats have none
    title = (
        f"{cfg.get('module', 'watched')}: layer {cfg.get('layer', 0)} {cfg.get('direction', '')}"
    )
    write_atomic(path, [dumps(document_data(doc, title=title.strip())).encode("utf-8")])
