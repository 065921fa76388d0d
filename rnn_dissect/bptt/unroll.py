"""Backpropagation through time, recorded: the char model unrolled into one engine graph.

The model (``CharModel``: one-hot input → L stacked cells → linear head) is unrolled for
T steps into a float64 :class:`~rnn_dissect.autograd.engine.Graph`, one node per tensor:

    h^0_t = x_t (one-hot indices, or float vectors)          t = 1..T
    h^k_t = cell_k(h^{k-1}_t, h^k_{t-1})                     k = 0..L-1   (c^k_t too for LSTM)
    z_t   = h^{L-1}_t W_hyᵀ + b_y                            head.weight (V, H), head.bias (V,)

Two losses:

- ``many_to_many`` (next character): L = (1/T) Σ_t L̄_t with L̄_t = mean_b CE(z_t[b], y_t[b]),
  i.e. the mean over all B·T predicted characters, PyTorch's ``CrossEntropyLoss()``.
- ``many_to_one``: only the last step is read, ŷ = σ(z_T) (O sigmoid units, head.weight
  (O, H)), L = mean BCE(ŷ, y), PyTorch's ``BCELoss()``. This is the 3:1:1 network of
  :mod:`rnn_dissect.nets.mlp` given a memory: with float inputs x_t (I,), H = 1, O = 1,
  ``nonlinearity="relu"``, h0 = 0 and T = 1 it *is* that network (W1 = weight_ih_l0,
  b1 = bias_ih_l0 + bias_hh_l0, W2 = head.weight, b2 = head.bias); for T > 1 the hidden
  unit also reads its own previous value through weight_hh_l0 (1×1).

Node ids: parameters are their torch names (``rnn.weight_hh_l0``, ``head.weight``);
initial states ``t0.l{k}.h`` / ``t0.l{k}.c`` (STATE leaves with their own gradient);
inputs ``t{t}.x``, targets ``t{t}.y``; cell nodes ``t{t}.l{k}.*`` (see :mod:`cells`);
head ``t{t}.logits``, ``t{t}.loss``, totals ``loss_sum`` and ``loss``; many-to-one:
``t{T}.logits``, ``t{T}.p`` and ``loss`` (read at the last step).

Truncated BPTT (``truncate=K``): after every K steps each layer's state passes through a
``detach`` node (``t{K}.l{k}.h_detach``): the value flows on, the gradient stops — what a
PyTorch user does with ``h = h.detach()`` between chunks of K characters, accumulating
the chunks' gradients of this same total loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.bptt import checks
from rnn_dissect.bptt.checks import MODES
from rnn_dissect.bptt.recording import Recording, record
from rnn_dissect.errors import UserError
from rnn_dissect.nets.cells import LayerParams
from rnn_dissect.nets.ids import node_id
from rnn_dissect.nets.model import CharModel

__all__ = ["MODES", "Recording", "Unrolled", "bptt", "record", "unroll"]


@dataclass
class Unrolled(Recording):
    """The char model's recording: one-hot (or float) inputs, its head and its loss."""

    model: CharModel = field(kw_only=True)
    mode: str = field(kw_only=True)  # "many_to_many" | "many_to_one"

    def config(self) -> dict[str, Any]:
        base = super().config()
        first = {k: base.pop(k) for k in ("cell", "hidden_size", "num_layers")}
        return {**first, "vocab": list(self.model.config.vocab), "mode": self.mode, **base}


def bptt(model: CharModel, inputs: Any, targets: Any, **kw: Any) -> Unrolled:
    """:func:`unroll`, then one backward pass from the total loss."""
    run = unroll(model, inputs, targets, **kw)
    run.graph.backward(run.loss)
    return run


def unroll(
    model: CharModel,
    inputs: Any,
    targets: Any,
    *,
    h0: Any = None,
    c0: Any = None,
    truncate: int | None = None,
    mode: str = "many_to_many",
    nonlinearity: str | None = None,
) -> Unrolled:
    """Record the forward pass of ``model`` over ``inputs`` (no backward yet).

    inputs: indices (T,) or (B, T), or float vectors (T, I) or (B, T, I).
    targets: many_to_many — indices shaped like the indices; many_to_one — values in
    [0, 1], (O,) or (B, O). h0, c0: (L, B, H), or (L, H) for unbatched input; default zeros.
    truncate: K ≥ 1, detach the state after every K steps. nonlinearity: ``tanh`` or
    ``relu`` (vanilla RNN only, like ``nn.RNN(nonlinearity=...)``): shorthand for a model
    whose config says so (default: the config's).
    """
    if nonlinearity is not None and nonlinearity != model.config.nonlinearity:
        model = CharModel(replace(model.config, nonlinearity=nonlinearity), model.params)
    cfg = model.config
    x, y, init, batched = _checked(model, inputs, targets, h0, c0, truncate, mode)
    B, T = x.shape[:2]
    g = Graph(np.float64)
    params, layers = parameters(g, model.params, cfg.num_layers)
    heads: dict[int, list[Node]] = {}
    step_losses: dict[int, Node] = {}

    def head(t: int, h_top: Node) -> None:
        if mode == "many_to_many" or t == T:
            start = len(g.nodes)
            step_losses[t] = _head(g, params, h_top, y, t, mode)
            heads[t] = g.nodes[start:]

    states, steps, xs, cuts = record(
        g, cfg.cell, layers, x, init, truncate=truncate, nonlinearity=cfg.nonlinearity, head=head
    )
    loss, tail = _total(g, step_losses, T, mode)
    return Unrolled(
        graph=g,
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        model=model,
        mode=mode,
        T=T,
        B=B,
        batched=batched,
        truncate=truncate,
        params=params,
        layers=layers,
        states=states,
        steps=steps,
        heads=heads,
        tail=tail,
        step_losses=step_losses,
        loss=loss,
        inputs=xs,
        cuts=cuts,
        nonlinearity=cfg.nonlinearity,
    )


def _checked(
    model: CharModel,
    inputs: Any,
    targets: Any,
    h0: Any,
    c0: Any,
    truncate: int | None,
    mode: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], bool]:
    """What :func:`unroll` is given, checked (one-line errors, :mod:`checks`) and shaped:
    x (B, T) indices or (B, T, I) floats, y (B, T) or (B, O), the initial states
    ``{"h": (L, B, H)}`` (and ``"c"`` for an LSTM), and whether the input was batched."""
    cfg = model.config
    checks.options(truncate, mode)
    x, batched = checks.inputs(np.asarray(inputs), model)  # (B, T) or (B, T, I)
    B, T = x.shape[:2]
    checks.params(model, mode)
    y = checks.targets(np.asarray(targets), model, mode, batched, B, T)  # (B, T) or (B, O)
    if c0 is not None and "c" not in cfg.states:
        raise UserError(f"c0 is for LSTM only; the {cfg.cell} cell has no cell state")
    L, H, given = cfg.num_layers, cfg.hidden_size, {"h": h0, "c": c0}
    init = {s: checks.initial_state(given[s], f"{s}0", L, B, H, batched) for s in cfg.states}
    return x, y, init, batched


def parameters(
    g: Graph, values: dict[str, np.ndarray], num_layers: int
) -> tuple[dict[str, Node], list[LayerParams]]:
    """Parameter leaves in ``g`` under their torch names (float64), and each layer's four:
    ``rnn.weight_ih_l{k}``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""
    params = {
        name: g.param(np.asarray(v, np.float64), id=name, name=name) for name, v in values.items()
    }
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    layers = [LayerParams(*(params[f"rnn.{w}_l{k}"] for w in names)) for k in range(num_layers)]
    return params, layers


def _total(g: Graph, step_losses: dict[int, Node], T: int, mode: str) -> tuple[Node, list[Node]]:
    """The scalar loss — L = (1/T) Σ_t L̄_t, or the last step's for many-to-one — and the nodes
    recorded for it (they belong to no step or layer)."""
    start = len(g.nodes)
    if mode == "many_to_many":
        total = g.apply("addn", *step_losses.values(), id="loss_sum", name="Σ_t L̄_t")
        scale = g.input(np.float64(1.0 / T), id="loss_scale", name="1/T")
        loss = g.apply("mul", total, scale, id="loss", name="L", kind=Kind.LOSS)
    else:
        loss = step_losses[T]
    tail = g.nodes[start:]
    for n in tail:  # apply inherits t and layer from the parents: clear them
        n.t = n.layer = None
    return loss, tail


def _head(g: Graph, params: dict[str, Node], h: Node, y: np.ndarray, t: int, mode: str) -> Node:
    """Head and loss at step t; returns the loss node (L̄_t, or the total for many-to-one)."""
    z = g.apply(
        "linear",
        h,
        params["head.weight"],
        params["head.bias"],
        id=node_id(t, "logits"),
        name="z",
        kind=Kind.OUTPUT,
        t=t,
    )  # (B, V)
    if mode == "many_to_many":
        target = g.target(np.ascontiguousarray(y[:, t - 1]), id=node_id(t, "y"), name="y", t=t)
        return g.apply(
            "softmax_ce",
            z,
            target,
            reduction="mean",
            id=node_id(t, "loss"),
            name="L̄",
            kind=Kind.LOSS,
            t=t,
        )
    p = g.apply("sigmoid", z, id=node_id(t, "p"), name="ŷ", kind=Kind.OUTPUT, t=t)  # (B, O)
    target = g.target(y, id=node_id(t, "y"), name="y", t=t)  # (B, O)
    return g.apply("bce", p, target, reduction="mean", id="loss", name="L", kind=Kind.LOSS, t=t)
