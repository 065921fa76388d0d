"""The char model's forward pass in plain numpy, one time step at a time, recording everything.

PyTorch's equations and gate order (``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``), for layer k at
step t with input x_t (one-hot for layer 0, the layer below's h_t otherwise):

    RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    LSTM  [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (4 blocks of H)
          i, f, o = σ(a_i), σ(a_f), σ(a_o)    g = tanh(a_g)
          c_t = f ⊙ c_{t-1} + i ⊙ g           h_t = o ⊙ tanh(c_t)
    GRU   [a_r, a_z, a_n] = W_ih x_t + b_ih    [u_r, u_z, u_n] = W_hh h_{t-1} + b_hh
          r = σ(a_r + u_r)    z = σ(a_z + u_z)    n = tanh(a_n + r ⊙ u_n)
          h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
    head  logits_t = W_head h_t^{L-1} + b_head

Unlike the training kernels (:mod:`rnn_dissect.train.kernels`, which keep only what the
backward pass needs), :meth:`Forward.run` can hand back every layer's h and, per cell,
c and the gates (:data:`KINDS`) at every step. The same numbers serve the neuron analyses
(:mod:`rnn_dissect.neurons.collect`) and sampling (:mod:`rnn_dissect.train.sample`).

Layout: a batch of B independent sequences read in lock-step; indices (C, B) for C steps;
the state is ``(h,)`` or ``(h, c)``, each (L, B, H) — the training kernels' layout.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> fwd = Forward.of(CharModel.init(ModelConfig("lstm", tuple("ab"), hidden_size=3)))
    >>> rec = {(0, "c"): np.zeros((2, 1, 3), fwd.dtype)}   # record layer 0's c, each step
    >>> h, state = fwd.run(np.array([[0], [1]]), fwd.zero_state(1), rec)   # read "ab"
    >>> h.shape, [s.shape for s in state], bool((rec[(0, "c")][-1] == state[1][0]).all())
    ((2, 1, 3), [(1, 1, 3), (1, 1, 3)], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.cells import STATES  # the state each cell carries from step to step
from rnn_dissect.nets.model import CharModel

__all__ = ["KINDS", "STATES", "Forward", "LayerWeights", "State"]

Array = np.ndarray
State = tuple[Array, ...]  # (h,) or (h, c), each (L, B, H)
Key = tuple[int, str]  # (layer, kind)

# What each cell can record per layer, in this order (gate letters in PyTorch's row order).
KINDS: dict[str, tuple[str, ...]] = {
    "rnn": ("h",),
    "lstm": ("h", "c", "i", "f", "g", "o"),
    "gru": ("h", "r", "z", "n"),
}


def sigmoid(x: Array, out: Array) -> Array:
    """σ(x) = ½ tanh(x/2) + ½, written into ``out`` (no overflow for large |x|, unlike
    1/(1 + e^−x))."""
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


@dataclass
class LayerWeights:
    """One layer's weights, transposed once so a step is ``x @ W_ihT``."""

    W_ihT: Array  # (in, G·H): in = V for layer 0, H above
    b_ih: Array  # (G·H,)
    W_hhT: Array  # (H, G·H)
    b_hh: Array  # (G·H,)


@dataclass
class Forward:
    """A model's weights laid out for stepping, in ``dtype`` (float32 by default)."""

    cell: str  # "rnn" | "lstm" | "gru"
    layers: list[LayerWeights]
    W_head: Array  # (V, H)
    b_head: Array  # (V,)

    @classmethod
    def of(cls, model: CharModel, dtype: Any = np.float32) -> Forward:
        if model.config.nonlinearity != "tanh":  # the equations above, and the kernels, are tanh
            raise UserError(
                f"this is a {model.config.nonlinearity} RNN; only `rnn`/`dissect` read it "
                "(sampling, neurons and training run tanh cells)"
            )
        p = {k: np.asarray(v, dtype=dtype) for k, v in model.params.items()}
        layers = [
            LayerWeights(
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
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def dtype(self) -> np.dtype:
        return self.W_head.dtype

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS[self.cell]

    def zero_state(self, B: int) -> State:
        """h0 = 0 (and c0 = 0): each (L, B, H)."""
        L, H = self.num_layers, self.hidden_size
        return tuple(np.zeros((L, B, H), dtype=self.dtype) for _ in STATES[self.cell])

    def run(
        self, idx: Array, state: State, rec: dict[Key, Array] | None = None
    ) -> tuple[Array, State]:
        """Read indices ``idx`` (C, B) from ``state``: returns the top layer's h (C, B, H)
        and the new state (the input state is not modified). ``rec`` (optional) maps
        (layer, kind) to a (C, B, H) array to fill with that value at every step; kinds
        it lacks are computed in scratch arrays."""
        C, B = idx.shape
        H = self.hidden_size
        rec = rec if rec is not None else {}
        new = tuple(s.copy() for s in state)  # each (L, B, H), advanced in place
        x: Array | None = None  # the layer's input, (C, B, in)
        for k, w in enumerate(self.layers):
            out = {}  # kind → (C, B, H): the caller's array, or scratch
            for kind in self.kinds:
                a = rec.get((k, kind))
                out[kind] = a if a is not None else np.empty((C, B, H), self.dtype)
            if x is None:  # one-hot input: W_ih x + b_ih is a row of (W_ihᵀ + b_ih)
                xw = (w.W_ihT + w.b_ih)[idx]  # (C, B, G·H)
            else:  # every step's input projection in one product
                xw = (x.reshape(C * B, H) @ w.W_ihT + w.b_ih).reshape(C, B, -1)  # (C, B, G·H)
            layer_state = tuple(s[k] for s in new)  # each (B, H), a view: written in place
            _STEPS[self.cell](w, xw, layer_state, out)
            x = out["h"]
        assert x is not None
        return x, new

    def logits(self, h: Array) -> Array:
        """logits = h W_headᵀ + b_head;  h (..., H) → (..., V)"""
        return h @ self.W_head.T + self.b_head


def _rnn_steps(w: LayerWeights, xw: Array, state: State, out: dict[str, Array]) -> None:
    """xw (C, B, H) = W_ih x_t + b_ih for every step; h (B, H) advanced in place."""
    (h,) = state
    for t in range(xw.shape[0]):
        a = xw[t] + h @ w.W_hhT + w.b_hh  # (B, H)
        np.tanh(a, out=h)  # h_t = tanh(a)
        out["h"][t] = h


def _lstm_steps(w: LayerWeights, xw: Array, state: State, out: dict[str, Array]) -> None:
    """xw (C, B, 4H) = W_ih x_t + b_ih for every step; h, c (B, H) advanced in place."""
    h, c = state
    H = h.shape[1]
    i, f, g, o = out["i"], out["f"], out["g"], out["o"]  # (C, B, H) each
    for t in range(xw.shape[0]):
        a = xw[t] + h @ w.W_hhT + w.b_hh  # (B, 4H): blocks a_i, a_f, a_g, a_o
        sigmoid(a[:, :H], i[t])  # i = σ(a_i)
        sigmoid(a[:, H : 2 * H], f[t])  # f = σ(a_f)
        np.tanh(a[:, 2 * H : 3 * H], out=g[t])  # g = tanh(a_g)
        sigmoid(a[:, 3 * H :], o[t])  # o = σ(a_o)
        c *= f[t]  # c_t = f ⊙ c_{t-1} + i ⊙ g
        c += i[t] * g[t]
        np.multiply(o[t], np.tanh(c), out=h)  # h_t = o ⊙ tanh(c_t)
        out["c"][t] = c
        out["h"][t] = h


def _gru_steps(w: LayerWeights, xw: Array, state: State, out: dict[str, Array]) -> None:
    """xw (C, B, 3H) = W_ih x_t + b_ih for every step; h (B, H) advanced in place."""
    (h,) = state
    H = h.shape[1]
    r, z, n = out["r"], out["z"], out["n"]  # (C, B, H) each
    for t in range(xw.shape[0]):
        u = h @ w.W_hhT + w.b_hh  # (B, 3H): blocks u_r, u_z, u_n
        sigmoid(xw[t, :, :H] + u[:, :H], r[t])  # r = σ(a_r + u_r)
        sigmoid(xw[t, :, H : 2 * H] + u[:, H : 2 * H], z[t])  # z = σ(a_z + u_z)
        np.tanh(xw[t, :, 2 * H :] + r[t] * u[:, 2 * H :], out=n[t])  # n = tanh(a_n + r ⊙ u_n)
        h -= n[t]  # h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}, computed as n + z ⊙ (h_{t-1} − n)
        h *= z[t]
        h += n[t]
        out["h"][t] = h


_STEPS = {"rnn": _rnn_steps, "lstm": _lstm_steps, "gru": _gru_steps}
