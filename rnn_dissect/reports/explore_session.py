"""What the explorer recomputes with, and where it comes from.

A :class:`Session` turns a text into the page's data (:func:`rnn_dissect.reports.explore.
model_data`): with a fixed model (a checkpoint or a run directory), or — as ``rnn-dissect rnn``
does — with fresh weights for each text (its characters as the vocabulary, PyTorch's
initialisation from a seed), so the explorer's loss for a text equals the CLI's. A
directory holding an ``explore.json`` or a ``dissection.json`` with its nodes (what
``watch``'s ``d.save(DIR)`` writes) opens as a fixed page: everything but new text works.

:func:`open_source` reads the command line's ``RUN_DIR | CHECKPOINT | DISSECTION_DIR``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel
from rnn_dissect.reports.explore import (
    MAX_T,
    check_text,
    document_data,
    explore_data,
    explorer_dissection,
    fresh_model,
)
from rnn_dissect.reports.explore_neurons import from_neurons_dir, neurons_view, tuning
from rnn_dissect.weights import checkpoint

__all__ = ["MAX_HIDDEN", "MAX_LAYERS", "Session", "default_text", "open_source"]

MAX_HIDDEN = 512  # fresh models: hidden size at most this
MAX_LAYERS = 4
_SAMPLES = ("hello world", "the cat sat on the mat", "hello", "def f(x):\n    return x")


@dataclass
class Session:
    """One explorer's model: ``model`` (fixed weights), or ``fresh`` = (cell, hidden, layers,
    seed) for new weights per text, or neither (``page``: a fixed document)."""

    text: str
    model: CharModel | None = None
    fresh: tuple[str, int, int, int] | None = None
    page: dict[str, Any] | None = None
    label: str = ""
    neurons: dict[str, Any] | None = None  # the neurons view's files (None: no view)
    _first: dict[str, Any] | None = field(default=None, repr=False)
    _last: tuple[str, Dissection] | None = field(default=None, repr=False)

    @property
    def can_recompute(self) -> bool:
        return self.page is None

    def model_for(self, text: str) -> CharModel:
        if self.model is not None:
            return self.model
        assert self.fresh is not None
        cell, hidden, layers, seed = self.fresh
        return fresh_model(cell, text, hidden, layers, seed)

    def data(self, text: str | None = None) -> dict[str, Any]:
        """The page's data for ``text`` (default: the session's own text)."""
        if self.page is not None:
            if text is not None and text != self.page.get("text"):
                raise UserError(
                    "this page was opened from a saved dissection; it cannot run new text"
                )
            return self.page
        text = self.text if text is None else check_text(text)
        if text == self.text and self._first is not None:
            return self._first
        source = {
            "kind": "fresh" if self.fresh else "checkpoint",
            "label": self.label,
            "recompute": True,
            "max_chars": MAX_T + 1,
        }
        d, notes = explorer_dissection(self.model_for(text), text)
        view = None if self.neurons is None else neurons_view(d, text, self.neurons)
        data = explore_data(d, text, source=source, neurons=view, notes=notes)
        self._last = (text, d)
        if text == self.text:
            self._first = data
        return data

    def node(self, text: str, node_id: str) -> dict[str, Any]:
        """One node's value and gradient (plain lists, exact) in the dissection of ``text``:
        what a page too big to carry every number asks for when a node is clicked."""
        if self.page is not None:
            raise UserError(
                "this page was opened from a saved dissection; it has no server-side nodes"
            )
        if self._last is None or self._last[0] != text:
            self.data(text)
        assert self._last is not None
        graph = self._last[1].run.graph
        if node_id not in graph:
            raise UserError(f"no node {node_id[:60]!r} in this dissection")
        n = graph[node_id]
        return {
            "id": n.id,
            "value": n.value.tolist(),
            "grad": None if n.grad is None else n.grad.tolist(),
        }


def default_text(vocab: tuple[str, ...]) -> str:
    """A short text the model can read: a familiar sample if its vocabulary has the
    characters, else the first characters of the vocabulary."""
    for s in _SAMPLES:
        if set(s) <= set(vocab):
            return s
    chars = "".join(vocab[:24])
    return chars if len(chars) >= 2 else chars * 2


def _page_dir(path: Path) -> dict[str, Any] | None:
    """A saved page: DIR/explore.json, or DIR/dissection.json with nodes; None if neither."""
    if (path / "explore.json").is_file():
        try:
            doc = json.loads((path / "explore.json").read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"{path / 'explore.json'} is not valid JSON; write it again") from None
        if not isinstance(doc, dict) or doc.get("format") != "rnn-dissect/explore":
            raise UserError(f"{path / 'explore.json'} is not an explorer document")
        return doc
    if (path / "dissection.json").is_file():
        try:
            doc = json.loads((path / "dissection.json").read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(
                f"{path / 'dissection.json'} is not valid JSON; write it again"
            ) from None
        if not isinstance(doc, dict) or "nodes" not in doc:
            raise UserError(
                f"{path / 'dissection.json'} has no nodes (rnn and dissect write it without them); "
                "explore the checkpoint instead: rnn-dissect explore CHECKPOINT --text TEXT"
            )
        return document_data(doc)
    return None


def open_source(
    source: str | None,
    *,
    text: str | None = None,
    cell: str | None = None,
    hidden: int | None = None,
    layers: int | None = None,
    seed: int = 0,
    neurons_dir: str | None = None,
) -> Session:
    """The session for the command line: ``source`` a run directory, a checkpoint, a saved
    dissection directory, or None for fresh weights (``cell``, ``hidden``, ``layers``)."""
    if source is None:
        cell, H, L = cell or "rnn", 3 if hidden is None else hidden, 1 if layers is None else layers
        if not 1 <= H <= MAX_HIDDEN or not 1 <= L <= MAX_LAYERS:
            raise UserError(
                f"--hidden must be 1..{MAX_HIDDEN} and --layers 1..{MAX_LAYERS} (got {H}, {L})"
            )
        if neurons_dir is not None:
            raise UserError("--neurons needs a trained model: pass a run directory or checkpoint")
        t = check_text("hello" if text is None else text)
        fresh_model(cell, t, H, L, seed)  # a bad --cell fails here, before the server starts
        return Session(t, fresh=(cell, H, L, seed), label=f"fresh weights, seed {seed}")
    path = Path(source)
    if not path.exists():
        raise UserError(
            f"{path} does not exist; pass a run directory, a checkpoint or a dissection directory"
        )
    for flag, value in (("--cell", cell), ("--hidden", hidden), ("--layers", layers)):
        if value is not None:
            raise UserError(
                f"{flag} is for fresh weights; {path} already fixes the model: drop {flag}"
            )
    if path.is_dir() and not (path / "model.safetensors").is_file():
        page = _page_dir(path)
        if page is None:
            raise UserError(
                f"{path} holds no model.safetensors, explore.json or dissection.json; pass a run "
                "directory, a checkpoint or a directory written by watch's d.save()"
            )
        if text is not None:
            raise UserError(f"{path} is a saved dissection of its own text; drop --text")
        return Session(str(page.get("text", "")), page=page, label=str(path))
    model = checkpoint.load(path)
    t = check_text(default_text(model.config.vocab) if text is None else text, model.config.vocab)
    static: dict[str, Any] = {
        "file": from_neurons_dir(neurons_dir, config=model.config) if neurons_dir else None,
        "tuning": tuning(path) if path.is_dir() else None,
    }
    return Session(t, model=model, label=str(path), neurons=static)
