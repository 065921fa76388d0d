"""Fast fused GRU (``torch.nn.GRU``) over whole sequences, forward + backward.

    [gi_r, gi_z, gi_n] = W_ih x_t + b_ih        [gh_r, gh_z, gh_n] = W_hh h_{t-1} + b_hh
    r = σ(gi_r + gh_r)    z = σ(gi_z + gh_z)    n = tanh(gi_n + r ⊙ gh_n)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

b_hh's r and z parts fold into the input projection; gh_n keeps its own bias (it sits
inside r ⊙ ·). Backward per step (t = T..1):

    dh_t  = dL/dh_t + dgh_{t+1} @ W_hh + dh_{t+1} ⊙ z_{t+1}
    dgi_n = dh_t ⊙ (1 − z) ⊙ (1 − n²)      dgh_n = dgi_n ⊙ r
    da_r  = dgi_n ⊙ gh_n ⊙ r(1−r)         da_z  = dh_t ⊙ (h_{t-1} − n) ⊙ z(1−z)

with dgi = [da_r, da_z, dgi_n] (for W_ih, b_ih) and dgh = [da_r, da_z, dgh_n] (for W_hh,
b_hh), each summed over steps in ONE GEMM. State ``(h,)`` with h (L, B, H).

(σ is computed as ½ tanh(a/2) + ½, and r(1−r) = ¼(1 − u²) with u = tanh(a/2): the kernel
carries dÃ = da/¼ on the r, z rows; see :class:`~rnn_dissect.train.kernels.workspace.LayerWeights`.)
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
    b_hh = params[f"rnn.bias_hh_l{k}"]
    H = b_hh.shape[0] // 3
    bias = params[f"rnn.bias_ih_l{k}"].copy()
    bias[: 2 * H] += b_hh[: 2 * H]  # r, z: both biases are plain sums
    w = basic_prepare(params, k, (0, 1, 2), (0, 1), bias)
    w.extra["b_hn"] = b_hh[2 * H :].copy()
    return w


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
    T, B, H = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
    dtype = Hs.dtype
    Tk = T if train else 1
    U = ws.get(f"u{tag}", (Tk, B, 3 * H), dtype)  # tanh(s·a) for r, z (scaled); n
    S = ws.get(f"s{tag}", (Tk, B, 2 * H), dtype)  # σ gates r, z
    HN = ws.get(f"hn{tag}", (Tk, B, H), dtype)  # gh_n = W_hn h_{t-1} + b_hn
    hw = ws.get("tmp3", (B, 3 * H), dtype)
    tmp = ws.get("tmp", (B, H), dtype)
    b_hn = w.extra["b_hn"]
    fast = backend.passes(dtype)
    Hf = fused.whole(Hs) if fast else Hs
    hh = backend.fixed(w.W_hhT_fwd, ws, tag + "f")  # the weight packed once
    for t in range(T):
        j = t if train else 0
        u, sg, hn = U[j], S[j], HN[j]  # (B, ·)
        hh(Hs[t], hw)
        if fast:  # the same passes as below, compiled into one
            fused.gru_forward_step(hw, *xw.rows(t), b_hn, Hf[t], u, sg, hn, Hf[t + 1])
            continue
        x = xw.at(t)  # gi = W_ih x_t + b_ih (+ b_hh on r, z)
        np.add(hw[:, 2 * H :], b_hn, out=hn)
        urz = u[:, : 2 * H]
        np.add(x[:, : 2 * H], hw[:, : 2 * H], out=urz)
        np.tanh(urz, out=urz)
        np.multiply(urz, 0.5, out=sg)  # σ(a) = ½ tanh(a/2) + ½
        np.add(sg, 0.5, out=sg)
        r, z, n = sg[:, :H], sg[:, H:], u[:, 2 * H :]
        np.multiply(r, hn, out=tmp)
        np.add(x[:, 2 * H :], tmp, out=n)
        np.tanh(n, out=n)
        np.subtract(Hs[t], n, out=tmp)  # h = n + z ⊙ (h_prev − n)
        np.multiply(tmp, z, out=tmp)
        np.add(n, tmp, out=Hs[t + 1])
    return (Hs[T].copy(),), (U, S, HN, Hs)


def _backward(
    w: LayerWeights, dHs: Array, cache: Any, ws: Workspace, tag: str, backend: Backend
) -> Blocks:
    """BPTT over the T steps; fills dgh (T, B, 3H) and dgi_n (T, B, H)."""
    U, S, HN, Hs = cache
    T, B, H = dHs.shape
    dtype = dHs.dtype
    dGH = ws.get(f"dgh{tag}", (T, B, 3 * H), dtype)  # [dÃ_r, dÃ_z, dgh_n]
    dGN = ws.get(f"dgn{tag}", (T, B, H), dtype)  # dgi_n
    tmp = ws.get("tmp", (B, H), dtype)
    dhz = ws.get("dhz", (B, H), dtype)
    tmp2 = ws.get("tmp2", (B, 2 * H), dtype)
    fast = backend.passes(dtype)
    Hf = fused.whole(Hs) if fast else Hs
    hh = backend.fixed(w.W_hh_bwd, ws, tag + "b")
    for t in reversed(range(T)):
        dh = dHs[t]  # (B, H), complete: step t+1 already added its share
        u, sg, hn, d, an = U[t], S[t], HN[t], dGH[t], dGN[t]
        if fast:  # the same passes as below, compiled into one
            fused.gru_backward_step(dh, u, sg, hn, Hf[t], d, an, dhz)
            if t > 0:
                hh(d, tmp)
                fused.add3(dHs[t - 1], tmp, dhz)
            continue
        r, z, n = sg[:, :H], sg[:, H:], u[:, 2 * H :]
        dz = d[:, H : 2 * H]
        np.subtract(Hs[t], n, out=dz)  # dL/dz = dh ⊙ (h_prev − n)
        np.multiply(dz, dh, out=dz)
        np.multiply(dh, z, out=dhz)
        np.subtract(dh, dhz, out=tmp)  # dL/dn = dh ⊙ (1 − z)
        np.multiply(n, n, out=an)
        np.subtract(1.0, an, out=an)
        np.multiply(an, tmp, out=an)  # dgi_n
        np.multiply(an, r, out=d[:, 2 * H :])  # dgh_n
        np.multiply(an, hn, out=d[:, :H])  # dL/dr
        urz = u[:, : 2 * H]  # ⊙ (1 − u²) for r, z at once
        np.multiply(urz, urz, out=tmp2)
        np.subtract(1.0, tmp2, out=tmp2)
        np.multiply(d[:, : 2 * H], tmp2, out=d[:, : 2 * H])
        if t > 0:
            prev = dHs[t - 1]
            hh(d, tmp)
            np.add(prev, tmp, out=prev)
            np.add(prev, dhz, out=prev)
    dGHf = dGH.reshape(T * B, 3 * H)
    return [
        (0, dGHf[:, : 2 * H], "both"),
        (2 * H, dGN.reshape(T * B, H), "ih"),
        (2 * H, dGHf[:, 2 * H :], "hh"),
    ]


SPEC = CellSpec("gru", 3, 1, (0, 1, 2), _prepare, _forward, _backward)


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
