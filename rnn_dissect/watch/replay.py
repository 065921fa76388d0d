"""The float64 replay of one watched call: every layer and direction, chained exactly.

For each group of selected sequences of equal length n (one group unless packed):

1. bottom-up, record each layer-direction's forward (:func:`layers.record_layer`); layer l > 0
   reads x^l_p = [h^{l-1,fwd}_p, h^{l-1,rev}_p] (G, D·H) at position p, the reverse direction
   the valid sequence reversed — times the dropout noise torch applied there in training mode
   (:mod:`~rnn_dissect.watch.dropout`), and then the final states are checked against torch's h_n;
2. top-down, attach the head (:func:`layers.attach_heads`) — the top layer's seeds are torch's
   dL/d output; a lower layer's are what the layer above sent to its input, dL/dx^{l+1}_p split
   into the halves of its two directions (times the same noise) — plus torch's dL/dh_n (dL/dc_n) as the final seed;
   one backward per recording (inside :func:`~rnn_dissect.bptt.dissection.dissect_run`).

A time window [start, stop) of positions replays the whole recording once without analyses
(the scratch, dropped after use) for the exact totals, the state entering the window and the
gradient reaching the window's last step from outside it (torch's dL/dh_n if the window
reaches the end); then records and dissects only the window's steps.

``grads`` are always the whole sequences' (from the scratch when windowed): Σ over the group's
sequences and steps; the window's per-step terms sum to the window's share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_dissect.bptt.dissection import Dissection, dissect_run
from rnn_dissect.errors import UserError
from rnn_dissect.watch.call import Call, param_names
from rnn_dissect.watch.layers import WatchedLayer, attach_heads, record_layer

__all__ = ["Group", "Part", "replay_group"]


@dataclass(eq=False)
class Group:
    """Sequences replayed together: same length n, same window."""

    batch: np.ndarray  # (G,) indices into the call's batch
    n: int  # their length
    start: int  # window [start, stop) of positions, clipped to n
    stop: int


@dataclass
class Part:
    """One layer-direction of one group: its dissection (window steps) and its exact totals."""

    layer: int
    direction: int
    group: Group
    dissection: Dissection[WatchedLayer]
    grads: dict[str, np.ndarray]  # torch name → Σ over the group's sequences, every step
    h0_grad: np.ndarray  # (G, H) dL/dh_0
    c0_grad: np.ndarray | None


def _steps(d: int, n: int, start: int, stop: int) -> tuple[int, int]:
    """Processing steps (a, b]: the window's positions [start, stop) in direction d's order."""
    return (start, stop) if d == 0 else (n - stop, n - start)


def _order(a: np.ndarray, d: int) -> np.ndarray:
    """(G, n, ·) positions → processing order (and back: reversing is its own inverse)."""
    return a if d == 0 else a[:, ::-1]


def replay_group(call: Call, grp: Group, **dissect_kw: Any) -> list[Part]:
    """Dissect every layer-direction of ``call`` for the sequences of ``grp``."""
    L, D, H, n = call.num_layers, call.directions, call.h_size, grp.n  # H: h's size (P)
    idx = grp.batch
    w64 = {k: np.asarray(v, np.float64) for k, v in call.weights.items()}
    whole = grp.start == 0 and grp.stop == n
    x = np.asarray(call.x[idx, :n], np.float64)  # (G, n, I) positions
    runs: dict[tuple[int, int], WatchedLayer] = {}
    for layer in range(L):  # 1. forward, bottom-up
        for d in range(D):
            init = {"h": np.asarray(call.h0[layer * D + d, idx], np.float64)}  # (G, H)
            if call.cell == "lstm":
                assert call.c0 is not None
                init["c"] = np.asarray(call.c0[layer * D + d, idx], np.float64)
            runs[(layer, d)] = record_layer(
                call.cell,
                call.nonlinearity,
                w64,
                param_names(layer, d, proj=call.proj_size > 0),
                np.ascontiguousarray(_order(x, d)),
                init,
                label=call.label,
                layer=layer,
                direction=d,
                batch=idx,
                positions=_order(np.arange(n)[None], d)[0].copy(),
            )
        x = np.concatenate(  # (G, n, D·P): the next layer's input, positions
            [_order(_values(runs[(layer, d)]), d) for d in range(D)], axis=-1
        )
        if call.dropout is not None:
            _verify(call, runs, layer, idx)
            if layer < L - 1:
                x = x * call.dropout[layer, idx, :n]  # what torch's dropout let through
    g_above = call.g_out[idx, :n]  # (G, n, D·H): dL/d output, positions
    parts: list[Part] = []
    for layer in range(L - 1, -1, -1):  # 2. backward, top-down
        g_below = None
        for d in range(D):
            run, row = runs.pop((layer, d)), layer * D + d
            seeds = np.ascontiguousarray(_order(g_above[..., d * H : (d + 1) * H], d))  # (G, n, H)
            seed_h = call.g_hn[row, idx]
            seed_c = None if call.g_cn is None else call.g_cn[row, idx]
            if call.c_n_total and seed_c is not None:  # less what came through h_T = o ⊙ tanh(c_T)
                o, tc = run.node(run.T, 0, "o").value, run.node(run.T, 0, "tanh_c").value
                seed_c = seed_c - seed_h * o * (1 - tc**2)  # (G, H)
            attach_heads(run, seeds, seed_h, seed_c)
            if whole:  # dissect_run runs the backward
                dis = dissect_run(run, **dissect_kw)
            else:  # run is the scratch: its backward gives the totals, the window is replayed
                run.graph.backward(run.loss)
                dis = _window(call, grp, run, d, seeds, seed_h, seed_c, dissect_kw)
            gx = _order(np.stack([n_.grad_or_zeros() for n_ in run.inputs], axis=1), d)  # (G, n, I)
            g_below = gx if g_below is None else g_below + gx
            grads = {name: p.grad_or_zeros() for name, p in run.params.items()}
            h0 = run.h(0, 0).grad_or_zeros()
            c0 = run.c(0, 0).grad_or_zeros() if call.cell == "lstm" else None
            parts.append(Part(layer, d, grp, dis, grads, h0, c0))
        assert g_below is not None
        g_above = g_below  # (G, n, D·H) for the layer below (layer 0: dL/d input)
        if call.dropout is not None and layer > 0:
            g_above = g_below * call.dropout[layer - 1, idx, :n]  # through x = y ⊙ noise
    parts.sort(key=lambda p: (p.layer, p.direction))
    return parts


def _window(
    call: Call,
    grp: Group,
    full: WatchedLayer,
    d: int,
    seeds: np.ndarray,
    seed_h: np.ndarray,
    seed_c: np.ndarray | None,
    dissect_kw: dict[str, Any],
) -> Dissection[WatchedLayer]:
    """Record and dissect processing steps (a, b] of ``full`` (already backward-ed)."""
    a, b = _steps(d, grp.n, grp.start, grp.stop)
    init = {"h": full.h(0, a).value}
    if call.cell == "lstm":
        init["c"] = full.c(0, a).value
    if b < full.T:  # what reaches h_b, c_b from steps after the window
        seed_h = full.h(0, b).grad_or_zeros() - seeds[:, b - 1]  # minus the head's ⟨g_b, h_b⟩ part
        if call.cell == "lstm":  # c_b is read by step b + 1's f ⊙ c_prev only
            seed_c = full.graph.edge_grad(full.node(b + 1, 0, "fc"), full.c(0, b))
    xs = np.stack([n_.value for n_ in full.inputs[a:b]], axis=1)  # (G, b − a, I)
    w = {name: p.value for name, p in full.params.items()}
    run = record_layer(
        call.cell,
        call.nonlinearity,
        w,
        full.weight_names,
        xs,
        init,
        label=full.label,
        layer=full.layer,
        direction=full.direction,
        batch=full.batch,
        positions=full.positions[a:b].copy(),
        after=(int(full.positions[b]), int(full.positions[-1])) if b < full.T else None,
    )
    attach_heads(run, np.ascontiguousarray(seeds[:, a:b]), seed_h, seed_c)
    return dissect_run(run, **dissect_kw)


def _verify(
    call: Call, runs: dict[tuple[int, int], WatchedLayer], layer: int, idx: np.ndarray
) -> None:
    """The replay's final states of ``layer`` = torch's h_n: the re-made dropout noise is the
    noise torch used (a wrong mask changes them by O(1), rounding by ~1e-7 in float32)."""
    assert call.h_n is not None
    tol = {"float64": 1e-9, "float32": 1e-4}.get(call.dtype, 5e-2)
    for d in range(call.directions):
        run = runs[(layer, d)]
        ref = call.h_n[layer * call.directions + d, idx]  # (G, H)
        err = float(np.abs(run.h(0, run.T).value - ref).max()) / max(float(np.abs(ref).max()), 1.0)
        if err > tol:
            raise UserError(
                f"{call.label}: the replay with re-made dropout masks does not reproduce torch's "
                f"h_n (layer {layer}: {err:.1e}): watch it after model.eval(), or build it with dropout=0"
            )


def _values(run: WatchedLayer) -> np.ndarray:
    """(G, T, H) h_t in processing order."""
    return np.stack([run.h(0, t).value for t in range(1, run.T + 1)], axis=1)
