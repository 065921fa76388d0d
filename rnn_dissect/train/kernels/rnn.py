"""Fast fused Elman RNN (``torch.nn.RNN``, tanh) over whole sequences, forward + backward.

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        h_t = tanh(a_t)

Forward per step: one (B, H) @ (H, H) GEMM, the input row gather, one tanh.
Backward per step (BPTT, t = T..1):

    dh_t  = dL/dh_t (from above) + da_{t+1} @ W_hh      # (B, H)
    da_t  = dh_t ⊙ (1 − h_t²)

then ``dW_hh = Σ_t da_tᵀ h_{t-1}`` as ONE (H, T·B) @ (T·B, H) GEMM (layer 0: ``dW_ih`` in
the same GEMM, against ``[h_{t-1} | onehot(x_t)]``).
Shapes: ``x_idx``/``y_idx`` (B, T) ints; state ``(h,)`` with h (L, B, H).
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


def _prepare(params: dict[str, Array], k: int) -> LayerWeights:
    bias = params[f"rnn.bias_ih_l{k}"] + params[f"rnn.bias_hh_l{k}"]  # (H,) both fold into x
    return basic_prepare(params, k, (0,), (), bias)


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
    T, B = Hs.shape[0] - 1, Hs.shape[1]
    a = ws.get("tmp", (B, Hs.shape[2]), Hs.dtype)  # (B, H)
    fast = backend.passes(Hs.dtype)
    Hf = fused.whole(Hs) if fast else Hs
    hh = backend.fixed(w.W_hhT_fwd, ws, tag + "f")  # h_{t-1} @ W_hhᵀ, the weight packed once
    for t in range(T):
        hh(Hs[t], a)
        if fast:  # the same passes as below, compiled into one
            fused.rnn_forward_step(a, *xw.rows(t), Hf[t + 1])
            continue
        np.add(a, xw.at(t), out=a)
        np.tanh(a, out=Hs[t + 1])
    return (Hs[T].copy(),), Hs


def _backward(
    w: LayerWeights, dHs: Array, Hs: Array, ws: Workspace, tag: str, backend: Backend
) -> Blocks:
    T, B, H = dHs.shape
    dA = dHs  # (T, B, H): dL/dh_t, turned into dL/da_t in place
    tmp = ws.get("tmp", (B, H), dHs.dtype)
    fast = backend.passes(dHs.dtype)
    Hf = fused.whole(Hs) if fast else Hs
    hh = backend.fixed(w.W_hh_bwd, ws, tag + "b")
    if not fast:  # 1 − h_t² for all steps at once: two passes per step fewer in the loop
        D = ws.get("dtanh", (T, B, H), dHs.dtype)  # (T, B, H)
        np.multiply(Hs[1:], Hs[1:], out=D)
        np.subtract(1.0, D, out=D)
    for t in reversed(range(T)):
        if t < T - 1:
            hh(dA[t + 1], tmp)  # dh_next
        if fast:  # the same passes as below, compiled into one
            fused.rnn_backward_step(dA[t], tmp, Hf[t + 1], t < T - 1)
            continue
        if t < T - 1:
            np.add(dA[t], tmp, out=dA[t])
        np.multiply(dA[t], D[t], out=dA[t])
    return [(0, dA.reshape(T * B, H), "both")]


SPEC = CellSpec("rnn", 1, 1, (0,), _prepare, _forward, _backward)


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
    """Loss (mean CE over B·T), gradients (torch names), final state ``(h,)`` (L, B, H)."""
    return stack.forward_backward(SPEC, params, x_idx, y_idx, state0, dropout, rng, ws, backend)


def forward(
    params: dict[str, Array],
    x_idx: Array,
    state0: tuple[Array, ...] | None = None,
    ws: Workspace | None = None,
    backend: Backend | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """Logits (B, T, V) and the final state ``(h,)`` (L, B, H)."""
    return stack.forward(SPEC, params, x_idx, state0, ws, backend)
