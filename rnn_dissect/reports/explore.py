"""The explorer's data: one dissection as the document the page reads, and the page itself.

``explore.json`` (format ``rnn-dissect/explore``) is ``dissection.json`` — the same keys,
the same node ids, written by the same :meth:`Dissection.to_data` — with every node, plus
what the page needs to draw it. Float arrays are packed, exact: each is ``{"f8": offset,
"shape": [...]}`` into ``buffer``, the base64 of one little-endian float64 array, so a
T = 64, H = 64 dissection is a few MB that serialises in milliseconds instead of 10 MB of
decimal text. Integer arrays (the character indices) stay lists. Top-level keys:

    format, version     "rnn-dissect/explore", 1
    title, text         the page's title; the dissected string (inputs text[:-1], targets text[1:])
    source              {kind: fresh | checkpoint | dissection, label, recompute (bool),
                         max_chars}: where the model came from, and whether new text can be run
    notes               what was left out at this size, one sentence each
    palette, decades    node kind → colour (render/cards.py's Okabe–Ito palette, shared with
                        the SVG renderer) and how many decades a gradient bar spans
    dissection          dissection.json's fields (config, loss, step_loss, grads, dh, h, [c,
                        gates], lag, cache, memory, carry, weights, flow, frames, nodes); each
                        backward frame adds ``sent``: carried node id → the gradient it sends
                        (dh_next, dc_next); ``parts``: node id → [[child id, part]] for nodes
                        read twice or more (dL/dh_t = via the head + via step t + 1)
    layout              :func:`rnn_dissect.render.explore_layout.layout`
    neurons             None, or :mod:`rnn_dissect.reports.explore_neurons`'s view data
    buffer              base64 float64

Deterministic: the same inputs give a byte-identical document.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> data = model_data(CharModel.init(ModelConfig("rnn", tuple("helo"), 3)), "hello")
    >>> data["dissection"]["config"]["steps"], len(data["layout"]["place"])
    (4, 27)
    >>> tensor(data, data["dissection"]["nodes"][-1]["value"]).item() == data["dissection"]["loss"]
    True
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.autograd.engine import Kind, Node, node_to_dict
from rnn_dissect.bptt.dissection import Dissection, dissect_text
from rnn_dissect.errors import UserError
from rnn_dissect.nets.ids import node_id
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render.cards import DECADES, PALETTE
from rnn_dissect.render.explore_layout import layout
from rnn_dissect.render.explore_page import page
from rnn_dissect.reports.explore_neurons import neurons_view
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = [
    "FORMAT",
    "MAX_T",
    "VERSION",
    "check_export",
    "check_text",
    "document_data",
    "dumps",
    "explore_data",
    "explorer_dissection",
    "export_html",
    "fresh_model",
    "model_data",
    "page_html",
    "tensor",
]

FORMAT, VERSION = "rnn-dissect/explore", 1
MAX_T = 512  # time steps the explorer dissects (text of up to MAX_T + 1 characters)
JACOBIAN_WORK = 20_000_000  # T·L·S³ above which the step Jacobians' SVDs are skipped (~50 ms)
LAG_WORK = 300_000_000  # T·T·L·S² above which the lag matrices look back fewer steps
PARTS_FLOATS = 400_000  # node floats above which per-reader gradient parts are left out
NODE_FLOATS = 1_500_000  # node floats above which the nodes inside the cells carry no numbers


def check_text(text: Any, vocab: Sequence[str] | None = None) -> str:
    """``text`` as the explorer takes it, or a :class:`UserError` saying what to change."""
    if not isinstance(text, str):
        raise UserError("the text must be a string")
    if len(text) < 2:
        raise UserError("type at least two characters: one input and one target to predict")
    if len(text) > MAX_T + 1:
        raise UserError(
            f"the text has {len(text)} characters; the explorer takes at most {MAX_T + 1} "
            f"(T ≤ {MAX_T} steps): shorten it"
        )
    if vocab is not None:
        missing = sorted(set(text) - set(vocab))
        if missing:
            shown = "".join(missing)[:20]
            raise UserError(
                f"{len(missing)} character(s) are not in the model's vocabulary ({shown!r}); "
                "type only characters it was trained on"
            )
    return text


def fresh_model(cell: str, text: str, hidden: int, layers: int, seed: int = 0) -> CharModel:
    """The model ``rnn-dissect rnn`` builds for ``text``: its characters in order of first
    appearance as the vocabulary, PyTorch's initialisation from ``seed``."""
    return CharModel.init(ModelConfig(cell, tuple(dict.fromkeys(text)), hidden, layers), seed=seed)


def model_data(
    model: CharModel,
    text: str,
    *,
    title: str | None = None,
    source: dict[str, Any] | None = None,
    neurons: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Dissect ``text`` with ``model`` (:func:`dissect_text`, float64) and build the page's
    data. The per-step weight terms and Jacobian matrices are not kept (their norms and,
    when cheap, singular values are); the answers' panels need no more. ``neurons``: the
    neurons view's files (:func:`rnn_dissect.reports.explore_neurons.neurons_view`'s
    ``static``; ``{}`` for the typed text alone), None for no neurons view."""
    d, notes = explorer_dissection(model, text)
    view = None if neurons is None else neurons_view(d, text, neurons)
    return explore_data(d, text, title=title, source=source, neurons=view, notes=notes)


def explorer_dissection(model: CharModel, text: str) -> tuple[Dissection, list[str]]:
    """The dissection the explorer shows, and what it left out at this size: no per-step
    weight terms or Jacobian matrices (their norms are kept); singular values while
    T·L·S³ ≤ ``JACOBIAN_WORK``; lag matrices at most ``LAG_WORK`` // (T·L·S²) steps back."""
    check_text(text, model.config.vocab)
    cfg = model.config
    T, L = len(text) - 1, cfg.num_layers
    S = cfg.n_states * cfg.hidden_size
    notes = []
    svd = T * L * S**3 <= JACOBIAN_WORK
    if not svd:
        notes.append(
            f"Jacobian singular values are skipped at this size (T·L·S³ = {T * L * S**3:,} > "
            f"{JACOBIAN_WORK:,}); the lag matrices are measured."
        )
    max_lag = None
    if T * T * L * S * S > LAG_WORK:
        max_lag = max(1, LAG_WORK // (T * L * S * S))
        notes.append(
            f"The lag matrices look back {max_lag} step(s) at most at this size "
            f"(T²·L·S² = {T * T * L * S * S:,} > {LAG_WORK:,}); rnn-dissect rnn --max-lag goes further."
        )
    d = dissect_text(
        model, text, step_grads=False, jacobians=svd, keep_jacobians=False, max_lag=max_lag
    )
    return d, notes


def explore_data(
    d: Dissection,
    text: str,
    *,
    title: str | None = None,
    source: dict[str, Any] | None = None,
    neurons: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The page's data for a dissection of ``text`` (see the module docstring)."""
    run = d.run
    cfg = run.model.config
    doc = d.to_data()
    graph_nodes = run.graph.reachable(run.loss)
    doc["nodes"] = [_node(n) for n in graph_nodes]
    floats = sum(int(n.value.size) * 2 for n in graph_nodes)
    lay = layout(doc["nodes"], cfg.cell)
    notes = list(notes)
    if floats > NODE_FLOATS:  # the numbers inside the cells stay on the server
        for n in doc["nodes"]:
            p = lay["place"].get(n["id"])
            if p is not None and p["hidden"]:
                n["value"] = n["grad"] = None
                n["omitted"] = True
        for row in doc["carry"]:  # their norms stay; the vectors are the nodes' gradients
            for c in row:
                for key in ("dh_direct", "dh_next", "dc_next", "computes", "dh_cut", "dc_cut"):
                    if key in c:
                        c[key] = None
        if neurons is None:
            doc.pop("gates", None)  # the gate nodes' values, read only by the neurons view
        notes.append(
            f"{floats:,} node numbers at this size: the nodes inside the cells carry none in this "
            "page (h, c, the head and the weights do); the server sends a clicked node's numbers."
        )
    if d.frames is not None:
        doc["frames"] = [_with_sent(run.graph, f) for f in d.frames]
    doc["parts"] = _parts(run, graph_nodes) if floats <= PARTS_FLOATS else None
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "title": title or f"{cfg.cell.upper()} through time, dissected",
        "text": text,
        "source": {"kind": "fresh", "label": "", "recompute": False, "max_chars": MAX_T + 1}
        | (source or {}),
        "notes": list(notes),
        "palette": {k.value: c for k, c in PALETTE.items()},
        "decades": DECADES,
        "dissection": doc,
        "layout": lay,
        "neurons": neurons,
    }
    return _pack(data)


def document_data(doc: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    """The page's data from a ``dissection.json`` document that has its ``nodes`` (as
    loaded from the file; nothing is recomputed). The text is read off the inputs and the
    last target (``t{t}.x``, ``t{T}.y``) and the vocabulary; without a vocabulary it is
    empty."""
    if not isinstance(doc.get("nodes"), list) or not isinstance(doc.get("config"), dict):
        raise UserError("the dissection document has no nodes or config; write it with its nodes")
    nodes = []
    for n in doc["nodes"]:
        n = dict(n)
        for key in ("value", "grad"):
            v = n.get(key)
            if v is not None and not isinstance(v, (int, str)):
                a = np.asarray(v)
                n[key] = a.astype(np.float64) if a.dtype.kind in "fO" else a
        nodes.append(n)
    by_id = {n["id"]: n for n in nodes}
    vocab = doc["config"].get("vocab") or []
    T = int(doc["config"].get("steps") or 0)

    def char(nid: str) -> str:
        v = np.asarray(by_id[nid]["value"]).ravel() if nid in by_id else np.array([])
        return (
            vocab[int(v[0])] if v.size and v.dtype.kind in "iu" and int(v[0]) < len(vocab) else "?"
        )

    # no vocabulary (a watched module's float inputs): no characters to show; the page
    # names each step by its position in the sequence (config.positions) instead
    text = (
        "".join(char(node_id(t, "x")) for t in range(1, T + 1)) + char(node_id(T, "y"))
        if vocab
        else ""
    )
    cell = str(doc["config"].get("cell", doc.get("model", "rnn")))
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "title": title or f"{cell.upper()} through time, dissected",
        "text": text,
        "source": {"kind": "dissection", "label": "", "recompute": False, "max_chars": MAX_T + 1},
        "notes": list(doc.get("notes") or []),
        "palette": {k.value: c for k, c in PALETTE.items()},
        "decades": DECADES,
        "dissection": {**doc, "nodes": nodes, "parts": doc.get("parts")},
        "layout": layout(nodes, cell),
        "neurons": None,
    }
    return _pack(data)


def _node(n: Node) -> dict[str, Any]:
    """One node as ``dissection.json`` writes it (:func:`node_to_dict`), arrays kept."""
    return node_to_dict(n, arrays=True)


def _with_sent(graph: Any, f: dict[str, Any]) -> dict[str, Any]:
    """A backward frame plus ``sent``: what it sends each carried node (dh_next, dc_next,
    and dh of the layer below) — Σ over the frame's nodes that read it of their edge part."""
    if f["phase"] != "backward":
        return f
    inside = [graph[c] for c in f["computed"]]
    sent = {}
    for pid in f["carries"]:
        p = graph[pid]
        parts = [graph.edge_grad(c, p) for c in inside if any(q is p for q in c.parents)]
        sent[pid] = sum(parts[1:], parts[0]) if parts else np.zeros_like(p.value)
    return {**f, "sent": sent}


def _parts(run: Any, nodes: Sequence[Node]) -> dict[str, list[list[Any]]]:
    """node id → [[child id, the part of its gradient that came through that child]], for
    every non-parameter node read by two or more nodes (the chain rule's sum, term by term)."""
    out = {}
    for n in nodes:
        if n.kind == Kind.PARAMETER or not n.requires_grad or n.grad is None:
            continue
        kids = [c for c in run.children(n) if c.grad is not None]
        if len(kids) >= 2:
            out[n.id] = [[c.id, run.graph.edge_grad(c, n)] for c in kids]
    return out


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, a: np.ndarray) -> dict[str, Any]:
        ref = {"f8": self.size, "shape": list(a.shape)}
        flat = np.ascontiguousarray(a, dtype="<f8").ravel()  # (n,)
        self.parts.append(flat)
        self.size += flat.size
        return ref


def _pack(data: dict[str, Any]) -> dict[str, Any]:
    buf = _Buffer()

    plain = (str, int, bool, type(None))

    def walk(x: Any) -> Any:
        if type(x) in plain:  # most leaves: ids, names, shapes
            return x
        if isinstance(x, dict):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if isinstance(x, np.ndarray):
            return buf.add(x) if x.dtype.kind == "f" else x.tolist()
        if isinstance(x, np.generic):
            x = x.item()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    layout_ = data.pop("layout", None)  # plain ints and strings: nothing to pack
    out = walk(data)
    if layout_ is not None:
        out["layout"] = layout_
    raw = np.concatenate(buf.parts).tobytes() if buf.parts else b""
    out["buffer"] = base64.b64encode(raw).decode("ascii")
    return out


def tensor(data: dict[str, Any], ref: Any) -> np.ndarray:
    """A packed array back as numpy (exact), or a plain JSON list/number as an array."""
    if isinstance(ref, dict) and "f8" in ref:
        raw = base64.b64decode(data["buffer"])
        n = int(np.prod(ref["shape"], dtype=np.int64))
        flat = np.frombuffer(raw, dtype="<f8", count=n, offset=8 * int(ref["f8"]))
        return flat.reshape(ref["shape"])
    return np.asarray(ref, dtype=np.float64)


def dumps(data: dict[str, Any]) -> str:
    """The document as JSON text (compact, deterministic)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def page_html(data: dict[str, Any], api: dict[str, Any] | None = None) -> str:
    """The whole explorer as one HTML page with ``data`` inside; ``api`` (server mode:
    ``{"token": ...}``) lets it recompute new text, else the page is what was exported."""
    return page(dumps(data), api)


def export_html(data: dict[str, Any], path: str | Path) -> Path:
    """Write the explorer for ``data`` as one self-contained page (JS, CSS and data inline;
    nothing fetched, so it works from file:// offline). Everything but recomputing new
    text works: step-through, zoom, node inspection, the answers, the neurons view.

    Written to a temporary file first and renamed, so an existing page is never left
    half-written; an existing file that is not an HTML page (a checkpoint, say) is never
    replaced."""
    path = check_export(path)
    write_atomic(path, [page_html(data).encode("utf-8")])
    return path


def check_export(path: str | Path) -> Path:
    """``--export`` may name a new file or an HTML page to replace, in a directory that exists."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name such as {path / 'explore.html'}")
    if not path.parent.is_dir():
        what = "is a file" if path.parent.exists() else "does not exist"
        raise UserError(f"{path.parent} {what}; --export needs an existing directory")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(64).lstrip().lower()
        except OSError as e:
            raise UserError(
                f"cannot read {path} ({e.strerror or e}); choose another file"
            ) from None
        if not head.startswith((b"<!doctype html", b"<html")):
            raise UserError(
                f"{path} exists and is not an HTML page; --export would replace it: "
                "choose a new file name (e.g. explore.html)"
            )
    return path
