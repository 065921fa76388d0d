"""Where the explorer draws each node: time steps as columns, layers as rows, and each cell
collapsed (h, and c for an LSTM) or expanded into every node it records — colah's diagram,
the same for every step: the LSTM's cell-state highway straight across the top, the gates as
a row of labelled boxes under it, the state lane along the bottom.

Plain data for the page; ``render/static/explorer/graph.js`` composes it, because which
columns are expanded is the reader's choice. Coordinates are SVG pixels, y down:

    place[id]   {col, row, slot, hidden}: col 0 (initial state) … T, or T + 1 (the total
                loss); row "head", a layer k (0 = bottom), or "input"; slot a key of the
                row's template; hidden: drawn only while its column is expanded
    cell        per mode ("collapsed" / "expanded"): the cell box's width, height, and
                slot → [x, y] of its centre inside the box
    head, input, start, tail   the other rows' and columns' templates (one mode each)
    sizes       slot → [w, h] of its glyph (default ``NODE``)
    contracted  [parent, child] edges of collapsed cells: what reaches h (or c) through the
                nodes hidden inside the cell — the state lanes h_{t-1} → h_t, c_{t-1} → c_t,
                c_t → h_t, and the input from below (x_t, or h_t of the layer under it)

Every node the loss depends on gets a place; a node these templates do not know (another
cell's vocabulary) goes into its cell's ``extra`` slots, stacked, so it is still drawn.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> from rnn_dissect.bptt.unroll import unroll
    >>> run = unroll(CharModel.init(ModelConfig("lstm", tuple("ab"), 2)), [0, 1], [1, 0])
    >>> lay = layout([{"id": n.id, "t": n.t, "layer": n.layer, "kind": n.kind.value,
    ...                "parents": [p.id for p in n.parents]} for n in run.graph.nodes], "lstm")
    >>> lay["place"]["t2.l0.f"], lay["place"]["t2.l0.c"]["hidden"]
    ({'col': 2, 'row': 0, 'slot': 'f', 'hidden': True}, False)
    >>> ["t1.l0.c", "t2.l0.c"] in lay["contracted"], ["t2.x", "t2.l0.c"] in lay["contracted"]
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["NODE", "layout"]

NODE = (54, 34)  # default glyph: a kind-coloured header with the name, numbers under it

# slot → (x, y): the centre of each node inside its box, per cell and mode.
_CELLS: dict[str, dict[str, Any]] = {
    "rnn": {
        "collapsed": {"size": (112, 84), "slots": {"h": (56, 42)}},
        "expanded": {
            "size": (250, 132),
            "slots": {"hw": (44, 42), "a": (132, 42), "xw": (132, 96), "h": (212, 42)},
        },
    },
    "lstm": {
        "collapsed": {"size": (112, 120), "slots": {"c": (40, 28), "h": (72, 84)}},
        "expanded": {
            "size": (440, 250),
            "slots": {
                # the cell-state highway
                "fc": (118, 28),
                "c": (258, 28),
                "ig": (258, 76),
                "tanh_c": (352, 76),
                "m": (398, 150),  # o ⊙ tanh(c), projected LSTM only (h = W_hr m)
                # gates, each over its pre-activation slice
                "f": (118, 124),
                "i": (188, 124),
                "g": (258, 124),
                "o": (328, 124),
                "a_f": (118, 170),
                "a_i": (188, 170),
                "a_g": (258, 170),
                "a_o": (328, 170),
                # the input side and the state lane
                "hw": (44, 214),
                "xw": (148, 214),
                "a": (238, 214),
                "h": (398, 214),
            },
        },
    },
    "gru": {
        "collapsed": {"size": (112, 84), "slots": {"h": (56, 42)}},
        "expanded": {
            "size": (470, 338),
            "slots": {
                # the state lane: h = n + z ⊙ (h_prev − n)
                "h_minus_n": (250, 42),
                "z_d": (350, 42),
                "h": (432, 42),
                # the candidate n, the gates r and z
                "n": (250, 98),
                "a_n": (250, 152),
                "r_gh_n": (176, 206),
                "r": (96, 152),
                "z": (350, 152),
                "a_r": (96, 206),
                "a_z": (350, 206),
                # the two input products and their per-gate slices
                "gh_r": (40, 258),
                "gi_r": (104, 258),
                "gh_n": (176, 258),
                "gi_n": (250, 258),
                "gh_z": (316, 258),
                "gi_z": (384, 258),
                "gh": (96, 308),
                "gi": (290, 308),
                "xw": (400, 308),
            },
        },
    },
}
_HEAD: dict[str, Any] = {
    "size": (0, 104),
    # a char model: logits → loss ← target y; a watched module (watch/layers.py): the
    # surrogate ⟨g, h⟩ — gh = g ⊙ h where logits go, its gradient g where the target goes
    "slots": {"logits": (0, 80), "loss": (-14, 28), "y": (34, 28), "p": (0, 28)}
    | {"gh": (0, 80), "g": (36, 28)},
}
_INPUT: dict[str, Any] = {"size": (0, 52), "slots": {"x": (0, 26)}}
_END = (("g", 29), ("gh", 88), ("loss", 152))  # x of each node of an end term's row
_START = {"width": 84}  # column 0: the initial states, on their lanes
_TAIL: dict[str, Any] = {
    "width": 188,
    "slots": {"loss_sum": (52, 28), "loss_scale": (52, 80), "loss": (138, 28)}
    # a watched module's final-state terms ⟨g_cn, c_T⟩, ⟨g_hn, h_T⟩ (watch/layers.py): one
    # row each (c above h, as the lanes are), g → g ⊙ · → ⟨g, ·⟩
    | {f"{e}.{s}": (x, y) for e, y in (("cn", 128), ("hn", 188)) for s, x in _END},
}
_SIZES = {
    "x": (34, 34),
    "y": (30, 26),
    "loss": (58, 30),
    "loss_sum": (72, 30),
    "loss_scale": (44, 26),
    "h_detach": (24, 22),
    "fc": (72, 34),
    "gi": (92, 34),
    "gh": (92, 34),
    "z_d": (100, 34),
    "h_minus_n": (74, 34),
    "r_gh_n": (64, 34),
    "c_detach": (24, 22),
    "g": (40, 26),
    "hn.g": (50, 26),
    "cn.g": (50, 26),
}
_STEP_ID = re.compile(r"^t(\d+)\.(?:l(\d+)\.)?(.+)$")


def layout(nodes: Iterable[Mapping[str, Any]], cell: str) -> dict[str, Any]:
    """Places and templates for ``nodes`` (dicts with id, t, layer, kind, parents — the fields
    of ``dissection.json``'s nodes) of a ``cell`` ("rnn", "lstm", "gru") unroll."""
    nodes = list(nodes)
    by_id = {n["id"]: n for n in nodes}
    T = max((n["t"] for n in nodes if n["t"] is not None), default=0)
    L = 1 + max((n["layer"] for n in nodes if n["layer"] is not None), default=0)
    tmpl = _CELLS.get(cell, _CELLS["rnn"])
    place: dict[str, dict[str, Any]] = {}
    extra: dict[tuple[int, int], int] = {}  # (t, layer) → unknown nodes placed so far
    for n in nodes:
        p = _place(n, T, tmpl, extra)
        if p is not None:
            place[n["id"]] = p
    cell_t: dict[str, dict[str, Any]] = {  # mode → template, with the unknown nodes' extra slots
        mode: {
            "size": list(t["size"]),
            "slots": {k: list(v) for k, v in t["slots"].items()},
        }
        for mode, t in tmpl.items()
    }
    n_extra = max(extra.values(), default=0)
    if n_extra:  # a column of the unknown nodes at the right edge
        size: list[int] = cell_t["expanded"]["size"]
        for k in range(n_extra):
            cell_t["expanded"]["slots"][f"extra{k}"] = [size[0] + 40, 30 + 50 * k]
        size[0] += 80
        size[1] = max(size[1], 50 * n_extra + 10)
    return {
        "T": T,
        "layers": L,
        "cell": cell,
        "place": place,
        "cells": cell_t,
        "head": _plain(_HEAD),
        "input": _plain(_INPUT),
        "start": dict(_START),
        "tail": _plain(_TAIL),
        "node": list(NODE),
        "sizes": {k: list(v) for k, v in _SIZES.items()},
        "contracted": _contracted(nodes, by_id, place, tmpl["collapsed"]["slots"]),
    }


def _plain(t: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: ({s: list(p) for s, p in v.items()} if isinstance(v, Mapping) else v)
        for k, v in t.items()
    }


def _place(
    n: Mapping[str, Any], T: int, tmpl: Mapping[str, Any], extra: dict[tuple[int, int], int]
) -> dict[str, Any] | None:
    nid, t = n["id"], n["t"]
    if n["kind"] == "parameter":
        return None  # drawn once, beside the graph: shared by every step
    if t is None:  # after the last step: the total, and what combines into it
        slot = nid if nid in _TAIL["slots"] else "loss"
        return {"col": T + 1, "row": "tail", "slot": slot, "hidden": False}
    m = _STEP_ID.match(nid)
    suffix = m.group(3) if m else nid
    if m is None or m.group(2) is None:  # input x_t, or the head: logits, target, loss (or p)
        if suffix in _INPUT["slots"]:
            return {"col": t, "row": "input", "slot": suffix, "hidden": False}
        slot = suffix if suffix in _HEAD["slots"] else "logits"
        return {"col": t, "row": "head", "slot": slot, "hidden": False}
    layer = int(m.group(2))
    if t == 0:  # h0, c0 on their lanes
        return {"col": 0, "row": layer, "slot": suffix, "hidden": False}
    if suffix.endswith("_detach"):  # a truncation cut, on the lane it cuts
        return {"col": t, "row": layer, "slot": suffix, "hidden": False}
    collapsed = tmpl["collapsed"]["slots"]
    if suffix in collapsed:
        return {"col": t, "row": layer, "slot": suffix, "hidden": False}
    if suffix in tmpl["expanded"]["slots"]:
        return {"col": t, "row": layer, "slot": suffix, "hidden": True}
    k = extra.get((t, layer), 0)
    extra[(t, layer)] = k + 1
    return {"col": t, "row": layer, "slot": f"extra{k}", "hidden": True}


def _contracted(
    nodes: list[Mapping[str, Any]],
    by_id: Mapping[str, Mapping[str, Any]],
    place: Mapping[str, Mapping[str, Any]],
    lanes: Mapping[str, Any],
) -> list[list[str]]:
    """Edges of collapsed cells (see the module docstring), in node order."""
    order = {nid: i for i, nid in enumerate(by_id)}
    out: list[list[str]] = []
    for n in nodes:
        pn = place.get(n["id"])
        if pn is None or pn["hidden"] or not isinstance(pn["row"], int) or pn["col"] == 0:
            continue
        if pn["slot"] not in lanes:
            continue
        seen: set[str] = set()
        stack = list(n["parents"])
        found: list[str] = []
        while stack:  # walk back through the hidden nodes of this cell
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            pp = place.get(pid)
            if pp is None:
                continue  # a parameter or a constant
            if pp["hidden"] and (pp["col"], pp["row"]) == (pn["col"], pn["row"]):
                stack.extend(by_id[pid]["parents"])
            else:
                found.append(pid)
        for pid in sorted(found, key=order.__getitem__):
            pp = place[pid]
            same_lane = pp["row"] == pn["row"] and pp["slot"].split("_")[0] == pn["slot"]
            inside = (pp["col"], pp["row"]) == (pn["col"], pn["row"])  # c_t → h_t
            from_below = pp["row"] != pn["row"] and pn["slot"] == "h"
            if same_lane or inside or from_below:
                out.append([pid, n["id"]])
    return out
