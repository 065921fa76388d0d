"""Activations of every unit of a model over a text: h (LSTM also c and gates i f g o; GRU
gates r z n) per layer and character, as :class:`~rnn_dissect.neurons.activations.Activations`.

A plain numpy forward written to be read, one time step at a time, recording what the
fast training kernels never keep (same model, same numbers: PyTorch's equations and gate
order; float32 by default):

    RNN   h = tanh(W_ih x + b_ih + W_hh h_prev + b_hh)
    LSTM  [a_i, a_f, a_g, a_o] = W_ih x + b_ih + W_hh h_prev + b_hh
          i, f, o = σ(a_i), σ(a_f), σ(a_o)   g = tanh(a_g)   c = f ⊙ c_prev + i ⊙ g   h = o ⊙ tanh(c)
    GRU   [a_r, a_z, a_n] = W_ih x + b_ih,  [u_r, u_z, u_n] = W_hh h_prev + b_hh
          r = σ(a_r + u_r)   z = σ(a_z + u_z)   n = tanh(a_n + r ⊙ u_n)   h = (1 − z) ⊙ n + z ⊙ h_prev

Row j of every array is the value after reading character j (the state that predicts j+1).

Long texts run fast as B segments in lock-step — one (B, H) @ (H, G·H) product per step
instead of B thin ones. Segment b owns rows [b·n, (b+1)·n) but starts reading ``warmup``
characters earlier from a zero state and throws those warm-up rows away: by the time it
reaches its own rows the state has (for practical purposes) forgotten where it started.
It is an approximation that becomes exact when ``warmup`` reaches back to the start of the
text (the tests use that); the default 500 characters covers the memory a char model uses
for quotes, brackets and indentation. Segment 0 starts at the text's start, as one pass would.

With ``out_dir`` the arrays stream to ``.npy`` files (the :mod:`rnn_dissect.neurons.activations`
directory format) through ordinary positioned writes, a few time steps at a time, and come
back memory-mapped: memory stays at ``max_buffer_bytes`` however long the text.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> m = CharModel.init(ModelConfig("gru", tuple("ab"), hidden_size=3))
    >>> acts = collect(m, "abba")
    >>> acts.ordered_keys(), acts.arrays[(0, "h")].shape, acts.arrays[(0, "h")].dtype
    ([(0, 'h'), (0, 'r'), (0, 'z'), (0, 'n')], (4, 3), dtype('float32'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.nets.model import CharModel
from rnn_dissect.neurons.activations import KINDS, Activations, ActivationsWriter, Key

__all__ = ["Forward", "collect"]

Array = np.ndarray
State = tuple[Array, ...]  # (h,) or (h, c), each (L, B, H) — the kernels' layout


def _sigmoid(x: Array, out: Array) -> Array:
    """σ(x) = ½ tanh(x/2) + ½ (no overflow for large |x|, unlike 1/(1 + e^−x))."""
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


@dataclass
class _Layer:
    W_ihT: Array  # (in, G·H)
    b_ih: Array  # (G·H,)
    W_hhT: Array  # (H, G·H)
    b_hh: Array  # (G·H,)


@dataclass
class Forward:
    """A model's weights laid out for stepping (transposed once) in ``dtype``."""

    cell: str
    layers: list[_Layer]
    W_head: Array  # (V, H)
    b_head: Array  # (V,)

    @classmethod
    def of(cls, model: CharModel, dtype: Any = np.float32) -> Forward:
        p = {k: np.asarray(v, dtype=dtype) for k, v in model.params.items()}
        layers = [
            _Layer(
                np.ascontiguousarray(p[f"rnn.weight_ih_l{k}"].T),
                p[f"rnn.bias_ih_l{k}"],
                np.ascontiguousarray(p[f"rnn.weight_hh_l{k}"].T),
                p[f"rnn.bias_hh_l{k}"],
            )
            for k in range(model.config.num_layers)
        ]
        return cls(model.config.cell, layers, p["head.weight"], p["head.bias"])

    @property
    def hidden_size(self) -> int:
        return self.layers[0].W_hhT.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.W_head.dtype

    def zero_state(self, B: int) -> State:
        n = 2 if self.cell == "lstm" else 1
        L, H = len(self.layers), self.hidden_size
        return tuple(np.zeros((L, B, H), dtype=self.dtype) for _ in range(n))

    def run(
        self, idx: Array, state: State, rec: dict[Key, Array] | None = None
    ) -> tuple[Array, State]:
        """Read indices ``idx`` (C, B) from ``state``; returns the top layer's h (C, B, H)
        and the new state. ``rec`` (optional) receives every (layer, kind) as (C, B, H)."""
        C, B = idx.shape
        H = self.hidden_size
        rec = rec if rec is not None else {}
        new = tuple(s.copy() for s in state)
        x: Array | None = None
        for k, w in enumerate(self.layers):
            out: dict[str, Array] = {}  # kind → (C, B, H): the caller's arrays, or scratch
            for kind in KINDS[self.cell]:
                a = rec.get((k, kind))
                out[kind] = a if a is not None else np.empty((C, B, H), self.dtype)
            if x is None:  # one-hot input: W_ih x + b_ih is a row of (W_ihᵀ + b_ih)
                xp = (w.W_ihT + w.b_ih)[idx]  # (C, B, G·H)
            else:
                xp = (x.reshape(C * B, H) @ w.W_ihT + w.b_ih).reshape(C, B, -1)  # (C, B, G·H)
            step = _STEPS[self.cell]
            layer_state = tuple(s[k] for s in new)  # each (B, H), written in place
            step(w, xp, layer_state, out)
            x = out["h"]
        assert x is not None
        return x, new

    def logits(self, h: Array) -> Array:
        """z = h W_headᵀ + b_head;  h (..., H) → (..., V)"""
        return h @ self.W_head.T + self.b_head


def _rnn_steps(w: _Layer, xp: Array, state: State, out: dict[str, Array]) -> None:
    (h,) = state  # (B, H), updated in place
    for t in range(xp.shape[0]):
        a = xp[t] + h @ w.W_hhT + w.b_hh  # (B, H)
        np.tanh(a, out=h)
        out["h"][t] = h


def _lstm_steps(w: _Layer, xp: Array, state: State, out: dict[str, Array]) -> None:
    h, c = state  # (B, H) each, updated in place
    H = h.shape[1]
    i, f, g, o = out["i"], out["f"], out["g"], out["o"]  # (C, B, H) each
    for t in range(xp.shape[0]):
        a = xp[t] + h @ w.W_hhT + w.b_hh  # (B, 4H)
        _sigmoid(a[:, :H], i[t])
        _sigmoid(a[:, H : 2 * H], f[t])
        np.tanh(a[:, 2 * H : 3 * H], out=g[t])
        _sigmoid(a[:, 3 * H :], o[t])
        c *= f[t]
        c += i[t] * g[t]
        np.multiply(o[t], np.tanh(c), out=h)
        out["c"][t] = c
        out["h"][t] = h


def _gru_steps(w: _Layer, xp: Array, state: State, out: dict[str, Array]) -> None:
    (h,) = state  # (B, H), updated in place
    H = h.shape[1]
    r, z, n = out["r"], out["z"], out["n"]  # (C, B, H) each
    for t in range(xp.shape[0]):
        u = h @ w.W_hhT + w.b_hh  # (B, 3H)
        _sigmoid(xp[t, :, :H] + u[:, :H], r[t])
        _sigmoid(xp[t, :, H : 2 * H] + u[:, H : 2 * H], z[t])
        np.tanh(xp[t, :, 2 * H :] + r[t] * u[:, 2 * H :], out=n[t])
        h -= n[t]  # h = n + z ⊙ (h_prev − n)
        h *= z[t]
        h += n[t]
        out["h"][t] = h


_STEPS = {"rnn": _rnn_steps, "lstm": _lstm_steps, "gru": _gru_steps}


def collect(
    model: CharModel,
    text: str,
    *,
    warmup: int = 500,
    batch: int | None = None,
    out_dir: str | Path | None = None,
    dtype: Any = np.float32,
    max_buffer_bytes: int = 64 << 20,
) -> Activations:
    """Every unit's activation after each character of ``text`` (N characters).

    ``batch``: segments run in lock-step (default: up to 64, each at least 4·warmup long).
    ``out_dir``: stream to files there and return them memory-mapped (else in memory).
    """
    idx = model.encode(text)  # (N,)
    N = len(idx)
    fwd = Forward.of(model, dtype)
    L, H = len(fwd.layers), fwd.hidden_size
    keys = [(k, kind) for k in range(L) for kind in KINDS[model.config.cell]]
    B = batch or max(1, min(64, N // max(4 * warmup, 1)))
    seg = max(1, -(-N // B))  # rows per segment
    B = max(1, -(-N // seg))
    own = [(b * seg, min(N, (b + 1) * seg)) for b in range(B)]  # rows each segment keeps
    read = [max(0, s - warmup) for s, _ in own]  # where each segment starts reading
    T = max(e - r for (_, e), r in zip(own, read, strict=True))
    steps = np.zeros((T, B), dtype=np.int64)  # (T, B) inputs; padding after a segment's end
    for b, ((_, e), r) in enumerate(zip(own, read, strict=True)):
        steps[: e - r, b] = idx[r:e]

    writer = None
    if out_dir is not None:
        spec = {key: (H, np.dtype(dtype)) for key in keys}
        writer = ActivationsWriter(out_dir, model.config.cell, model.config.vocab, text, spec)
        arrays: dict[Key, Array] = {}
    else:
        arrays = {key: np.empty((N, H), dtype=dtype) for key in keys}
    row_bytes = B * H * np.dtype(dtype).itemsize * len(keys)
    C = max(1, min(T, max_buffer_bytes // row_bytes))  # time steps per chunk
    rec = {key: np.empty((C, B, H), dtype=dtype) for key in keys}
    state = fwd.zero_state(B)
    for t0 in range(0, T, C):
        t1 = min(T, t0 + C)
        view = {key: a[: t1 - t0] for key, a in rec.items()}
        _, state = fwd.run(steps[t0:t1], state, view)
        for b, ((s, e), r) in enumerate(zip(own, read, strict=True)):
            lo, hi = max(s, r + t0), min(e, r + t1)  # text rows of this chunk that b owns
            if lo >= hi:
                continue
            for key in keys:
                rows = view[key][lo - r - t0 : hi - r - t0, b]  # (hi − lo, H)
                if writer is not None:
                    writer.write_at(key, lo, rows)
                else:
                    arrays[key][lo:hi] = rows
    if writer is not None:
        return writer.close()
    return Activations(model.config.cell, model.config.vocab, text, arrays)
