"""Node ids: the one place that spells them and reads them back.

Every recorded tensor of an unrolled model has a stable id (the same across runs), built from
the step t (0 = initial state), the layer k and a name:

    node_id(3, "h", 0)  → "t3.l0.h"       a cell node of layer 0 at step 3
    node_id(3, "x")     → "t3.x"          a per-step node outside the layers (x, y, logits, loss)
    parse("t3.l0.h")    → NodeId(t=3, layer=0, name="h")
    shift("t3.l0.h", 1) → "t4.l0.h"       the same node one step later

Parameters keep their torch names (``rnn.weight_hh_l0``) and totals their own (``loss``):
:func:`parse` returns None for them.

    >>> parse(node_id(12, "c_detach", 1))
    NodeId(t=12, layer=1, name='c_detach')
    >>> shift("t3.x", -1), parse("rnn.weight_hh_l0")
    ('t2.x', None)
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["NodeId", "node_id", "parse", "shift"]

_ID = re.compile(r"t(\d+)(?:\.l(\d+))?\.(.+)")


class NodeId(NamedTuple):
    t: int  # step, 0 = initial state
    layer: int | None  # None: outside the stacked layers
    name: str


def node_id(t: int, name: str, layer: int | None = None) -> str:
    """``t{t}.l{layer}.{name}``, or ``t{t}.{name}`` without a layer."""
    return f"t{t}.{name}" if layer is None else f"t{t}.l{layer}.{name}"


def parse(text: str) -> NodeId | None:
    """The step, layer and name of a per-step id; None for any other id."""
    m = _ID.fullmatch(text)
    if m is None:
        return None
    return NodeId(int(m[1]), None if m[2] is None else int(m[2]), m[3])


def shift(text: str, dt: int) -> str | None:
    """The id of the same node ``dt`` steps later (earlier if negative); None if ``text`` is
    not a per-step id."""
    n = parse(text)
    return None if n is None else node_id(n.t + dt, n.name, n.layer)
