"""RNN, LSTM and GRU cells recorded node by node, with PyTorch's equations and names.

Each ``*_step`` records one time step of one layer into a :class:`~rnn_dissect.autograd.engine.Graph`
and returns the new state. Weights are graph nodes shared by every step, so a drawing shows
them as the same nodes reused, and their gradients sum the per-step contributions.

Arguments (B = batch, V = vocabulary, H = hidden size, G = gates: RNN 1, LSTM 4, GRU 3):

- ``x``: the layer's input at step t — integer indices (B,) for a one-hot layer-0 input
  (read as columns of ``W_ih``, never materialising the one-hot), else floats (B, in).
- ``state``: ``(h_prev,)`` for RNN/GRU, ``(h_prev, c_prev)`` for LSTM, each (B, H).
- ``p``: the layer's parameter nodes ``W_ih`` (G·H, in), ``W_hh`` (G·H, H), ``b_ih``,
  ``b_hh`` (G·H,), in PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n); a projected LSTM
  (``nn.LSTM(proj_size=P)``) also ``W_hr`` (P, H), and then ``W_hh`` is (4H, P) and h is (B, P).

Node ids are ``t{t}.l{layer}.{name}`` (``t3.l0.h``; :mod:`rnn_dissect.nets.ids`), stable across runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.nets.ids import node_id

__all__ = ["CELLS", "GATES", "STATES", "LayerParams", "gru_step", "lstm_step", "rnn_step"]

# Gate names in PyTorch's row order of weight_ih / weight_hh.
GATES: dict[str, tuple[str, ...]] = {
    "rnn": ("h",),
    "lstm": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
}

# State tensors each cell carries from step to step, in the order a step returns them.
STATES: dict[str, tuple[str, ...]] = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",)}


@dataclass(frozen=True)
class LayerParams:
    W_ih: Node  # (G·H, in)
    W_hh: Node  # (G·H, H), or (4H, P) for a projected LSTM
    b_ih: Node  # (G·H,)
    b_hh: Node  # (G·H,)
    W_hr: Node | None = None  # (P, H): a projected LSTM's weight_hr (torch's proj_size = P)


def _in(g: Graph, W_ih: Node, x: Node, t: int, layer: int) -> Node:
    """W_ih x_t: a column lookup for one-hot indices, a matrix product otherwise."""
    kw: dict[str, Any] = dict(id=node_id(t, "xw", layer), name="W_ih x", t=t, layer=layer)
    if x.value.dtype.kind in "iu":
        return g.apply("lookup", W_ih, x, axis=1, **kw)
    return g.apply("linear", x, W_ih, **kw)


def rnn_step(
    g: Graph,
    p: LayerParams,
    x: Node,
    state: tuple[Node, ...],
    t: int,
    layer: int,
    nonlinearity: str = "tanh",
) -> tuple[Node]:
    """Elman RNN (``torch.nn.RNN``; ``nonlinearity="relu"`` as in torch):

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    """
    (h_prev,) = state
    at = partial(node_id, t, layer=layer)  # name → "t{t}.l{layer}.{name}"
    kw: dict[str, Any] = dict(t=t, layer=layer)
    xw = _in(g, p.W_ih, x, t, layer)
    hw = g.apply("linear", h_prev, p.W_hh, id=at("hw"), name="W_hh h", **kw)
    a = g.apply("addn", xw, p.b_ih, hw, p.b_hh, id=at("a"), name="a", **kw)
    h = g.apply(nonlinearity, a, id=at("h"), name="h", kind=Kind.STATE, **kw)
    return (h,)


def lstm_step(
    g: Graph, p: LayerParams, x: Node, state: tuple[Node, ...], t: int, layer: int
) -> tuple[Node, Node]:
    """LSTM (``torch.nn.LSTM``), gates in PyTorch's order i, f, g, o:

    [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

    With ``p.W_hr`` (``nn.LSTM(proj_size=P)``; LSTMP, Sak et al. 2014) the product is ``m``
    (an ACTIVATION node, B × H) and the state is its projection, recorded as ``h`` (STATE, B × P):

    m_t = o ⊙ tanh(c_t)        h_t = W_hr m_t        (c_t stays B × H; W_hh reads h_{t-1}, B × P)
    """
    h_prev, c_prev = state
    at = partial(node_id, t, layer=layer)  # name → "t{t}.l{layer}.{name}"
    kw: dict[str, Any] = dict(t=t, layer=layer)
    H = c_prev.value.shape[-1]
    xw = _in(g, p.W_ih, x, t, layer)
    hw = g.apply("linear", h_prev, p.W_hh, id=at("hw"), name="W_hh h", **kw)
    a = g.apply("addn", xw, p.b_ih, hw, p.b_hh, id=at("a"), name="a", **kw)
    gate = {}
    for k, (name, fn) in enumerate(
        zip("ifgo", ("sigmoid", "sigmoid", "tanh", "sigmoid"), strict=True)
    ):
        a_k = g.apply(
            "slice",
            a,
            index=(..., slice(k * H, (k + 1) * H)),
            id=at(f"a_{name}"),
            name=f"a_{name}",
            **kw,
        )
        gate[name] = g.apply(fn, a_k, id=at(name), name=name, kind=Kind.GATE, **kw)
    fc = g.apply("mul", gate["f"], c_prev, id=at("fc"), name="f ⊙ c_prev", kind=Kind.CELL, **kw)
    ig = g.apply("mul", gate["i"], gate["g"], id=at("ig"), name="i ⊙ g", kind=Kind.CELL, **kw)
    c = g.apply("add", fc, ig, id=at("c"), name="c", kind=Kind.CELL, **kw)
    tc = g.apply("tanh", c, id=at("tanh_c"), name="tanh(c)", **kw)
    if p.W_hr is None:
        h = g.apply("mul", gate["o"], tc, id=at("h"), name="h", kind=Kind.STATE, **kw)
        return h, c
    m = g.apply("mul", gate["o"], tc, id=at("m"), name="o ⊙ tanh(c)", kind=Kind.ACTIVATION, **kw)
    h = g.apply("linear", m, p.W_hr, id=at("h"), name="h = W_hr m", kind=Kind.STATE, **kw)
    return h, c


def gru_step(
    g: Graph, p: LayerParams, x: Node, state: tuple[Node, ...], t: int, layer: int
) -> tuple[Node]:
    """GRU (``torch.nn.GRU``), gates in PyTorch's order r, z, n:

    [gi_r, gi_z, gi_n] = W_ih x_t + b_ih        [gh_r, gh_z, gh_n] = W_hh h_{t-1} + b_hh
    r = σ(gi_r + gh_r)    z = σ(gi_z + gh_z)    n = tanh(gi_n + r ⊙ gh_n)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
    """
    (h_prev,) = state
    at = partial(node_id, t, layer=layer)  # name → "t{t}.l{layer}.{name}"
    kw: dict[str, Any] = dict(t=t, layer=layer)
    H = h_prev.value.shape[-1]
    xw = _in(g, p.W_ih, x, t, layer)
    gi = g.apply("add", xw, p.b_ih, id=at("gi"), name="W_ih x + b_ih", **kw)
    hw = g.apply("linear", h_prev, p.W_hh, p.b_hh, id=at("gh"), name="W_hh h + b_hh", **kw)

    def part(v: Node, k: int, name: str) -> Node:
        return g.apply(
            "slice", v, index=(..., slice(k * H, (k + 1) * H)), id=at(name), name=name, **kw
        )

    a_r = g.apply("add", part(gi, 0, "gi_r"), part(hw, 0, "gh_r"), id=at("a_r"), name="a_r", **kw)
    r = g.apply("sigmoid", a_r, id=at("r"), name="r", kind=Kind.GATE, **kw)
    a_z = g.apply("add", part(gi, 1, "gi_z"), part(hw, 1, "gh_z"), id=at("a_z"), name="a_z", **kw)
    z = g.apply("sigmoid", a_z, id=at("z"), name="z", kind=Kind.GATE, **kw)
    rh = g.apply("mul", r, part(hw, 2, "gh_n"), id=at("r_gh_n"), name="r ⊙ gh_n", **kw)
    a_n = g.apply("add", part(gi, 2, "gi_n"), rh, id=at("a_n"), name="a_n", **kw)
    n = g.apply("tanh", a_n, id=at("n"), name="n", kind=Kind.GATE, **kw)
    # h = (1 − z) ⊙ n + z ⊙ h_prev, written as n + z ⊙ (h_prev − n): same value, one fewer node
    d = g.apply("sub", h_prev, n, id=at("h_minus_n"), name="h_prev − n", **kw)
    zd = g.apply("mul", z, d, id=at("z_d"), name="z ⊙ (h_prev − n)", **kw)
    h = g.apply("add", n, zd, id=at("h"), name="h", kind=Kind.STATE, **kw)
    return (h,)


Step = Callable[[Graph, LayerParams, Node, tuple[Node, ...], int, int], tuple[Node, ...]]
CELLS: dict[str, Step] = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}
