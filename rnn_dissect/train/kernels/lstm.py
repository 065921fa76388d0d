"""Fast fused LSTM (``torch.nn.LSTM``) over whole sequences, forward + backward.

    [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      (PyTorch rows i, f, g, o)
    i, f, o = σ(a_i), σ(a_f), σ(a_o)    g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g           h_t = o ⊙ tanh(c_t)

Internally the gate rows are kept as i, f, o, g, with the σ rows of the forward weights
scaled by ½: u = tanh(s·a) over all (B, 4H) at once, then σ = ½u + ½ on the (B, 3H) block.
Backward per step (t = T..1), dc carried from t+1, in the scaled coordinates of
:class:`~rnn_dissect.train.kernels.workspace.LayerWeights` (da = g ⊙ dÃ, g = ¼ on σ rows):

    dh_t = dL/dh_t + dÃ_{t+1} @ (g·W_hh)      dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ (o − h_t ⊙ tanh c_t)
    dÃ = [dc_t ⊙ g, dc_t ⊙ c_{t-1}, dh_t ⊙ tanh c_t, dc_t ⊙ i] ⊙ (1 − u²)     (rows i, f, o, g)

then ``dW_hh = Σ_t da_tᵀ h_{t-1}`` as ONE GEMM (with ``dW_ih`` for layer 0). State ``(h, c)``, each (L, B, H).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_dissect.train.kernels import fused, stack
from rnn_dissect.train.kernels.backend import Backend
from rnn_dissect.train.kernels.workspace import (
    XW,
    Blocks,
    CellSpec,
    LayerWeights,
    Workspace,
    basic_prepare,
)

__all__ = ["SPEC", "forward", "forward_backward"]

Array = np.ndarray
ORDER = (0, 1, 3, 2)  # internal blocks i, f, o, g as PyTorch block indices


def _prepare(params: dict[str, Array], k: int) -> LayerWeights:
    bias = params[f"rnn.bias_ih_l{k}"] + params[f"rnn.bias_hh_l{k}"]  # (4H,)
    return basic_prepare(params, k, ORDER, (0, 1, 2), bias)


def _forward(
    w: LayerWeights,
    xw: XW,
    state0: tuple[Array, ...],
    Hs: Array,
    ws: Workspace,
    tag: str,
    train: bool,
    backend: Backend,
) -> tuple[tuple[Array, ...], Any]:
    """The recurrence over the T steps; ``Hs[0]`` holds h_0, fills ``Hs[1:]``."""
    _, c0 = state0
    T, B, H = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
    dtype = Hs.dtype
    Tk = T if train else 1  # keep per-step gates only when a backward will read them
    fast = backend.passes(dtype)
    U = ws.get(f"u{tag}", (Tk, B, 4 * H), dtype)  # tanh(s·a): gates i, f, o (scaled), g
    # σ gates i, f, o: the compiled passes keep them in registers (σ = ½u + ½ from U)
    S = None if fast else ws.get(f"s{tag}", (Tk, B, 3 * H), dtype)
    TC = ws.get(f"tc{tag}", (Tk, B, H), dtype)  # tanh(c_t)
    Cs = ws.get(f"c{tag}", (T + 1, B, H), dtype)  # slot 0 holds c_0
    tmp = ws.get("tmp", (B, H), dtype)
    a = ws.get("tmp4", (B, 4 * H), dtype)
    Cs[0] = c0
    Hf = fused.whole(Hs) if fast else Hs
    hh = backend.fixed(w.W_hhT_fwd, ws, tag + "f")  # the weight packed once
    for t in range(T):
        j = t if train else 0
        u, tc, c = U[j], TC[j], Cs[t + 1]  # (B, ·)
        if fast:  # the same passes as below, compiled into one. The GEMM writes a buffer
            # that stays in cache: into U[t], new (evicted) memory every step, the whole
            # step was 10–13% slower (AMD EPYC Zen 4, H 512, B 64, in-process A/B; BLAS
            # writes C more than once)
            hh(Hs[t], a)
            fused.lstm_forward_step(a, u, *xw.rows(t), Cs[t], tc, c, Hf[t + 1])
            continue
        hh(Hs[t], u)
        assert S is not None
        sg = S[j]
        np.add(u, xw.at(t), out=u)
        np.tanh(u, out=u)
        np.multiply(u[:, : 3 * H], 0.5, out=sg)  # σ(a) = ½ tanh(a/2) + ½
        np.add(sg, 0.5, out=sg)
        i, f, o, g = sg[:, :H], sg[:, H : 2 * H], sg[:, 2 * H :], u[:, 3 * H :]
        np.multiply(f, Cs[t], out=c)
        np.multiply(i, g, out=tmp)
        np.add(c, tmp, out=c)
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=Hs[t + 1])
    return (Hs[T].copy(), Cs[T].copy()), (U, S, TC, Cs, Hs)


def _backward(
    w: LayerWeights, dHs: Array, cache: Any, ws: Workspace, tag: str, backend: Backend
) -> Blocks:
    """BPTT over the T steps; fills dÃ (T, B, 4H)."""
    U, S, TC, Cs, Hs = cache
    T, B, H = dHs.shape
    dtype = dHs.dtype
    dU = ws.get(f"du{tag}", (T, B, 4 * H), dtype)  # dÃ = dL/d(gate) ⊙ (1 − u²)
    dc = ws.get("dc", (B, H), dtype)  # dL/dc_t, carried backwards
    tmp = ws.get("tmp", (B, H), dtype)
    tmp4 = ws.get("tmp4", (B, 4 * H), dtype)
    dc.fill(0)
    fast = backend.passes(dtype)
    hh = backend.fixed(w.W_hh_bwd, ws, tag + "b")
    for t in reversed(range(T)):
        dh = dHs[t]  # (B, H)
        if t < T - 1:
            hh(dU[t + 1], tmp)  # dh_next
        u, tc, d = U[t], TC[t], dU[t]
        if fast:  # the same passes as below, compiled into one
            fused.lstm_backward_step(dh, tmp, t < T - 1, dc, u, tc, Cs[t], d)
            continue
        sg = S[t]
        if t < T - 1:
            np.add(dh, tmp, out=dh)
        i, f, o, g = sg[:, :H], sg[:, H : 2 * H], sg[:, 2 * H :], u[:, 3 * H :]
        np.multiply(Hs[t + 1], tc, out=tmp)  # dc += dh ⊙ o ⊙ (1 − tanh²c) = dh ⊙ (o − h ⊙ tanh c)
        np.subtract(o, tmp, out=tmp)
        np.multiply(tmp, dh, out=tmp)
        np.add(dc, tmp, out=dc)
        np.multiply(dc, g, out=d[:, :H])  # dL/di
        np.multiply(dc, Cs[t], out=d[:, H : 2 * H])  # dL/df
        np.multiply(dh, tc, out=d[:, 2 * H : 3 * H])  # dL/do
        np.multiply(dc, i, out=d[:, 3 * H :])  # dL/dg
        np.multiply(u, u, out=tmp4)  # all four gates: ⊙ (1 − u²)
        np.subtract(1.0, tmp4, out=tmp4)
        np.multiply(d, tmp4, out=d)
        np.multiply(dc, f, out=dc)  # dc_{t-1} through the cell path
    return [(0, dU.reshape(T * B, 4 * H), "both")]


SPEC = CellSpec("lstm", 4, 2, ORDER, _prepare, _forward, _backward)


def forward_backward(
    params: dict[str, Array],
    x_idx: Array,
    y_idx: Array,
    state0: tuple[Array, ...] | None = None,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    ws: Workspace | None = None,
    backend: Backend | None = None,
) -> tuple[float, dict[str, Array], tuple[Array, ...]]:
    """Loss (mean CE over B·T), gradients (torch names), final state ``(h, c)`` (L, B, H) each."""
    return stack.forward_backward(SPEC, params, x_idx, y_idx, state0, dropout, rng, ws, backend)


def forward(
    params: dict[str, Array],
    x_idx: Array,
    state0: tuple[Array, ...] | None = None,
    ws: Workspace | None = None,
    backend: Backend | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """Logits (B, T, V) and the final state ``(h, c)`` (L, B, H) each."""
    return stack.forward(SPEC, params, x_idx, state0, ws, backend)
