"""One recorded call of a watched ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``: plain numpy, no torch.

What the hooks of :mod:`rnn_dissect.watch.hooks` copy out of one forward and the backward that
follows it, in a fixed layout whatever the module's (B = batch, T = longest sequence,
I = input size, H = hidden size, L = num_layers, D = 2 if bidirectional else 1; P = h's size:
H, or ``proj_size`` for a projected LSTM, whose h_t = W_hr (o ⊙ tanh c_t) while c_t keeps H):

    x        (B, T, I)     the input, batch-major; a PackedSequence padded (zeros past a length)
    lengths  (B,)          each sequence's length (T for every one unless packed)
    h0       (L·D, B, P)   the initial state torch used (zeros when none was passed); c0 (L·D, B, H)
    dropout  (L−1, B, T, D·P)  training-mode dropout's noise between layers (None without)
    g_out    (B, T, D·P)   dL/d output that arrived in the real backward (zeros where none did)
    g_hn     (L·D, B, P)   dL/dh_n (and g_cn (L·D, B, H): dL/dc_n for an LSTM)

Row l·D + d of h0 / g_hn is layer l, direction d (0 forward, 1 reverse), torch's order. The
batch order is the caller's (a PackedSequence's ``unsorted_indices`` already applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Call", "param_names"]


def param_names(layer: int, direction: int, proj: bool = False) -> tuple[str, ...]:
    """torch's names of one layer-direction's W_ih, W_hh, b_ih, b_hh (``weight_hh_l1_reverse``),
    and W_hr (``weight_hr_l0``) for a projected LSTM (``proj``)."""
    sfx = f"_l{layer}" + ("_reverse" if direction else "")
    kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + (("weight_hr",) if proj else ())
    return tuple(f"{w}{sfx}" for w in kinds)


@dataclass
class Call:
    """One forward call of a watched module and the gradients its backward sent back."""

    label: str  # the module's name ("encoder", or its class name) and call number
    cell: str  # "rnn" | "lstm" | "gru"
    nonlinearity: str  # "tanh" | "relu" (RNN only)
    num_layers: int  # L
    directions: int  # D: 1, or 2 if bidirectional
    hidden_size: int  # H
    batch_first: bool  # how the module was called (arrays here are always batch-major)
    packed: bool  # the input was a PackedSequence
    batched: bool  # False: unbatched input (T, I); arrays here carry B = 1
    dtype: str  # the module's floating dtype, "float32" | "float64"
    weights: dict[str, np.ndarray]  # torch name → value as the module held it at the forward
    x: np.ndarray  # (B, T, I)
    lengths: np.ndarray  # (B,) int
    h0: np.ndarray  # (L·D, B, P)
    c0: np.ndarray | None  # (L·D, B, H), LSTM only
    g_out: np.ndarray  # (B, T, D·P) float64
    g_hn: np.ndarray  # (L·D, B, P) float64
    g_cn: np.ndarray | None  # (L·D, B, H) float64, LSTM only
    arrived: set[str] = field(default_factory=set)  # which of output, h_n, c_n got a gradient
    # training-mode dropout between layers (see dropout.py): (L−1, B, T, D·P), what layer l's
    # output was multiplied by before layer l + 1 read it (0 or 1/(1 − p)); None: no dropout
    dropout: np.ndarray | None = None
    dropout_refused: str = ""  # why that dropout could not be re-made ("": it was, or none)
    h_n: np.ndarray | None = None  # (L·D, B, P) torch's final states, to verify a replay
    tracked: bool = True  # autograd recorded it (False under torch.no_grad: no .grad comes of it)
    # every call of the same module in this watch, this one included (one shared list, filled
    # as calls happen): .grad holds the sum over all of them
    module_calls: list[Call] = field(default_factory=list, repr=False, compare=False)
    # an nn.RNNCell / LSTMCell / GRUCell's call (T = 1): weights' names here → the cell's own
    # ("weight_ih_l0" → "weight_ih"); empty for a module, whose names are these
    names: dict[str, str] = field(default_factory=dict)
    # g_cn arrived whole: the cell's h' reads c' (torch's composite LSTMCell, h' = o ⊙ tanh(c')),
    # so it includes the part through h'; the replay takes that part off
    c_n_total: bool = False
    proj_size: int = 0  # P of nn.LSTM(proj_size=P): h, h0, h_n, g_hn, g_out have P features

    @property
    def h_size(self) -> int:
        """Features of h (per direction): P for a projected LSTM, else H."""
        return self.proj_size or self.hidden_size

    @property
    def B(self) -> int:
        return int(self.x.shape[0])

    @property
    def T(self) -> int:
        return int(self.x.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.x.shape[2])

    def describe(self) -> str:
        kind = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[self.cell] + (
            "Cell" if self.names else ""
        )
        kind += f"({self.nonlinearity})" if self.cell == "rnn" else ""
        kind += f"(proj_size={self.proj_size})" if self.proj_size else ""
        bi = ", bidirectional" if self.directions == 2 else ""
        return (
            f"{self.label}: {kind} {self.input_size}→{self.hidden_size} × {self.num_layers} "
            f"layer(s){bi}, B={self.B}, T={self.T}{' packed' if self.packed else ''}, {self.dtype}"
            f"{', dropout (training, masks re-made)' if self.dropout is not None else ''}"
        )
