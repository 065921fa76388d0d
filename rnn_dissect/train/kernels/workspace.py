"""The kernels' internal layouts: scratch workspace, prepared weights, input projection.

Layout. Everything inside is time-major, ``(T, B, F)`` C-contiguous: one step's slice
``X[t]`` is a contiguous (B, F) block (cache-friendly elementwise ops), and all steps
together reshape for free to ``(T·B, F)`` so every "all steps at once" product — the
input projection of layers ≥ 1, ``dW_ih`` and ``dW_hh``, the head — is ONE big GEMM.
Callers speak batch-first ``(B, T)`` like ``nn.RNN(batch_first=True)``; only the index
arrays are transposed on the way in and the logits on the way out.

Gate rows. A cell may keep its weights with rows permuted (LSTM stores i, f, o, g so the
three sigmoid gates are one contiguous block) and the rows of sigmoid gates pre-scaled by
½, so that one ``tanh`` over all gates gives σ through σ(a) = ½ tanh(a/2) + ½ (see
:class:`LayerWeights` for what that does to the backward). Gradients are mapped back to
true values and PyTorch's row order before they are returned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_dissect.train.kernels.backend import Backend

__all__ = [
    "XW",
    "Blocks",
    "CellSpec",
    "LayerWeights",
    "Workspace",
    "basic_prepare",
    "row_consts",
    "transpose_blocks",
]

Array = np.ndarray
# A cell's backward returns its gate gradients as blocks of rows: (first_row, (T·B, rows)
# array, role) with role "both" (rows shared by W_ih and W_hh), "ih" or "hh" (GRU's n rows).
Blocks = list[tuple[int, Array, str]]


class Workspace:
    """Named scratch arrays kept between calls, so a training loop does not pay for fresh
    (page-faulting) allocations of tens of MB every step. One per loop (not shared between
    threads)."""

    def __init__(self) -> None:
        self._bufs: dict[str, Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        buf = self._bufs.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[name] = np.empty(shape, dtype=dtype)
        return buf


@dataclass
class LayerWeights:
    """One layer's weights in the kernel's internal layouts (rows in the cell's order).

    ``s`` is the σ pre-scale (½ on σ rows, 1 elsewhere): the forward computes u = tanh(s·a)
    for every gate and σ(a) = ½u + ½. Cells report ``dÃ = dL/d(gate) ⊙ (1 − u²)`` for all
    gates alike, so the true ``dL/da = g ⊙ dÃ`` with g = s² (¼ on σ rows): the backward
    copies below carry g, and the driver scales the weight gradients' rows by it.
    """

    W_in_fwd: Array  # (in, G·H) (W_ih·s)ᵀ, contiguous, for the forward projection
    b_in_fwd: Array  # (G·H,) bias folded into the input projection, scaled
    W_hhT_fwd: Array  # (H, G·H) (W_hh·s)ᵀ, contiguous, for h_prev @ W_hhT_fwd
    W_ih_bwd: Array  # (G·H, in) g·W_ih, for dX = dÃ @ W_ih_bwd
    W_hh_bwd: Array  # (G·H, H) g·W_hh, for dh_prev = dÃ @ W_hh_bwd
    g: Array  # (G·H,) dL/da = g ⊙ dÃ
    extra: dict[str, Array] = field(default_factory=dict)  # cell-specific (GRU: b_hn)


@dataclass(frozen=True)
class CellSpec:
    """What the driver needs to know about a cell."""

    name: str
    gates: int  # G
    n_state: int  # 1 (h) or 2 (h, c)
    order: tuple[int, ...]  # PyTorch gate blocks in internal order (LSTM (0, 1, 3, 2): i f o g)
    prepare: Callable[..., LayerWeights]
    # forward(w, xw: XW, state0, Hs (T+1, B, H) with Hs[0] = h_0, ws, tag, train, backend)
    #   -> (state_T, cache)
    forward: Callable[..., Any]
    # backward(w, dHs (T, B, H), cache, ws, tag, backend) -> blocks [(row0, dÃ (T·B, n), role)],
    # role "both" (same rows of W_ih and W_hh), "ih" or "hh" (GRU's n rows differ)
    backward: Callable[..., Any]


def gate_perm(order: list[int], H: int) -> Array:
    """Row permutation that lays PyTorch's gate blocks out in ``order`` (block indices)."""
    return np.concatenate([np.arange(k * H, (k + 1) * H) for k in order])


@functools.lru_cache(maxsize=64)
def row_consts(
    order: tuple[int, ...], sigmoid_blocks: tuple[int, ...], H: int, dtype: str
) -> tuple[Array, Array, Array]:
    """(perm, s, g) for a cell: row permutation, σ pre-scale, gradient factor g = s²."""
    perm = gate_perm(list(order), H)
    s = np.ones(len(order) * H, dtype=dtype)
    for b in sigmoid_blocks:
        s[b * H : (b + 1) * H] = 0.5
    return perm, s, s * s  # dσ/dã = ½(1 − u²) and dã/da = ½: g = ¼ on σ rows


TILE = 64  # rows per block of the tiled transposes below (fits L1/L2 on both sides)


def transpose_blocks(W: Array, order: tuple[int, ...], scale: Array) -> Array:
    """``(W[perm] · scale[:, None])ᵀ`` as a C-contiguous (in, G·H) array, for W (G·H, in).

    Built tile by tile: a whole-matrix strided transpose of a 4 MB weight costs ~4× more
    (cache misses on one side), and the permutation and σ-scale come for free per tile.
    """
    GH, n_in = W.shape
    H = GH // len(order)
    out = np.empty((n_in, GH), dtype=W.dtype)
    for j, k in enumerate(order):
        for i in range(0, H, TILE):
            n = min(TILE, H - i)
            src = W[k * H + i : k * H + i + n]  # (n, in), PyTorch block k
            np.multiply(src.T, scale[j * H + i], out=out[:, j * H + i : j * H + i + n])
    return out


def basic_prepare(
    params: dict[str, Array],
    k: int,
    order: tuple[int, ...],
    sigmoid_blocks: tuple[int, ...],
    bias_in: Array,
) -> LayerWeights:
    """Permute rows into the cell's block order, pre-scale the σ rows of the forward copies
    by ½, and fold ``bias_in`` (PyTorch order) into the input projection. The scale is
    constant within a block (``s`` is ½ or 1 per gate)."""
    W_ih, W_hh = params[f"rnn.weight_ih_l{k}"], params[f"rnn.weight_hh_l{k}"]
    perm, s, g = row_consts(order, sigmoid_blocks, W_hh.shape[1], W_hh.dtype.str)
    if not sigmoid_blocks:  # plain RNN: no permutation, no scaling
        return LayerWeights(
            W_in_fwd=np.ascontiguousarray(W_ih.T),
            b_in_fwd=bias_in,
            W_hhT_fwd=transpose_blocks(W_hh, order, s),
            W_ih_bwd=W_ih,
            W_hh_bwd=W_hh,
            g=g,
        )
    return LayerWeights(
        W_in_fwd=transpose_blocks(W_ih, order, s),  # (in, G·H)
        b_in_fwd=bias_in[perm] * s,
        W_hhT_fwd=transpose_blocks(W_hh, order, s),  # (H, G·H)
        W_ih_bwd=np.multiply(W_ih[perm], g[:, None]),
        W_hh_bwd=np.multiply(W_hh[perm], g[:, None]),
        g=g,
    )


GATHER_ALL_MAX_BYTES = 1 << 22  # above this, layer 0 gathers its input rows step by step


class XW:
    """The input's share of the pre-activations, ``(W_ih·s) x_t + bias`` (B, G·H) at step t.

    Layers ≥ 1: one (T·B, H) @ (H, G·H) GEMM for all steps before the recurrence. Layer 0
    (one-hot): rows of the (V, G·H) table ``(W_ih·s)ᵀ + bias`` — the one-hot is never
    built — gathered all at once when that is small, else one step at a time into a (B, G·H)
    buffer that stays in cache (for H = 512 LSTM the all-at-once array is 52 MB).
    """

    def __init__(
        self,
        w: LayerWeights,
        x: Array | None,
        idx: Array | None,
        ws: Workspace,
        k: int,
        backend: Backend,
    ) -> None:
        GH = w.W_in_fwd.shape[1]
        dtype = w.W_in_fwd.dtype
        self.table: Array | None = None
        if idx is not None:
            T, B = idx.shape
            table = w.W_in_fwd + w.b_in_fwd  # (V, G·H)
            if T * B * GH * dtype.itemsize > GATHER_ALL_MAX_BYTES:
                self.table, self.idx = table, idx
                self.buf = ws.get("xw_step", (B, GH), dtype)
                return
            self.rows_of = np.arange(B)
            self.all = ws.get(f"xw{k}", (T, B, GH), dtype)
            np.take(table, idx, axis=0, out=self.all, mode="clip")  # indices checked on entry
            return
        assert x is not None
        T, B, _ = x.shape
        self.all = ws.get(f"xw{k}", (T, B, GH), dtype)  # (T, B, G·H)
        self.rows_of = np.arange(B)
        backend.matmul(x.reshape(T * B, -1), w.W_in_fwd, out=self.all.reshape(T * B, GH))
        np.add(self.all, w.b_in_fwd, out=self.all)

    def at(self, t: int) -> Array:
        """(B, G·H) for step t: a view, or the step buffer (overwritten next call)."""
        if self.table is None:
            return self.all[t]
        return np.take(self.table, self.idx[t], axis=0, out=self.buf, mode="clip")

    def rows(self, t: int) -> tuple[Array, Array]:
        """``(xt, xi)`` with ``at(t)[b] == xt[xi[b]]``, nothing copied: the (V, G·H) table
        and the step's character indices, or the step's (B, G·H) block and 0..B−1. The
        compiled passes read their input rows this way (one gather pass fewer per step)."""
        if self.table is None:
            return self.all[t], self.rows_of
        return self.table, self.idx[t]
