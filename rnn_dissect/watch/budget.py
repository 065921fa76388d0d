"""What a replay will cost, in bytes, before it runs (so ``max_bytes`` refuses up front).

Per recorded step and sequence a layer-direction holds its nodes' values and gradients,
F·H + I floats each (F per cell, counted from :mod:`rnn_dissect.nets.cells` plus the head:
RNN 6, LSTM 23, GRU 26; a projected LSTM (proj_size P) keeps m = o ⊙ tanh c too and its h, g,
g ⊙ h have P: (F − 2)·H + 3P; I the layer's input size), and per step the weight-gradient terms
|θ| floats (kept unless ``step_grads=False``) and the lag matrix T floats:

    bytes ≈ 8 · Σ_parts [ 2 · T_rec · G · (F·H + I) + T_win · |θ| + T_win² ]

T_rec is the window's steps, plus every step of the scratch replay when windowed (the whole
sequence is replayed once to get its exact totals; those graphs live together while one
group is replayed). Estimated, not measured: the test checks it against the graph's bytes.
"""

from __future__ import annotations

import numpy as np

from rnn_dissect.watch.call import Call

__all__ = ["FLOATS_PER_UNIT", "estimate"]

FLOATS_PER_UNIT = {"rnn": 6, "lstm": 23, "gru": 26}  # node values per step, in units of H


def estimate(call: Call, groups: list[tuple[int, int, int, int]], step_grads: bool = True) -> int:
    """Bytes a replay of ``groups`` — (G, n, start, stop) each — will hold at its peak."""
    L, D, H, F = call.num_layers, call.directions, call.hidden_size, FLOATS_PER_UNIT[call.cell]
    P = call.h_size
    unit = (F - 2) * H + 3 * P if call.proj_size else F * H  # floats per unit
    theta = [
        sum(int(np.prod(call.weights[k].shape)) for k in call.weights if k.endswith(f"_l{layer}"))
        for layer in range(L)
    ]
    kept, scratch = 0, 0
    for G, n, start, stop in groups:
        win = stop - start
        per_group = 0
        for layer in range(L):
            inp = call.input_size if layer == 0 else D * P
            per_step = 2 * G * (unit + inp)
            kept += D * (per_step * win + (theta[layer] if step_grads else 0) * win + win * win)
            if win < n:
                per_group += D * per_step * n
        scratch = max(scratch, per_group)
    return 8 * (kept + scratch)
