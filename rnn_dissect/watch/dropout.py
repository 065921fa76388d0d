"""Training-mode dropout between layers, re-made: the masks torch drew, from its own generator.

``nn.RNN/LSTM/GRU(dropout=p)`` in training mode multiplies layer l's output y^l by a fresh
noise before layer l + 1 reads it, for l = 0..L−2 in order (aten's ``_dropout`` on the CPU):

    noise^l = bernoulli(1 − p) / (1 − p)        shape of y^l: (T, B, D·H), or (ΣT_b, D·H) packed
    x^{l+1} = y^l ⊙ noise^l                     (p = 1: x^{l+1} = y^l · 0, nothing drawn)

torch does not hand the noise out, but it draws it from the default CPU generator with
``empty_like(y).bernoulli_(1 − p)``. So the state saved just before the module's forward
(a forward pre-hook) and the same calls give the same noise. Two checks keep this honest: the
generator must end exactly where torch's forward left it (the same number of draws), and the
replay compares its final states with torch's h_n (:func:`rnn_dissect.watch.replay.replay_group`).
The generator is put back where torch left it: watching changes no later random number.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = ["active", "remake_noise"]


def active(m: nn.Module) -> bool:
    """Does a forward of ``m`` now apply dropout between layers? (A cell has no layers.)"""
    return isinstance(m, nn.RNNBase) and bool(m.training and m.dropout > 0 and m.num_layers > 1)


def remake_noise(
    m: nn.RNNBase, out: torch.Tensor | PackedSequence, rng_before: torch.Tensor | None
) -> tuple[torch.Tensor | None, str]:
    """(noise (L−1, B, T, D·H) batch-major in the caller's order — zeros past a packed
    sequence's length — or None, and why not). ``out``: the module's output of that forward."""
    packed = isinstance(out, PackedSequence)
    data = out.data if isinstance(out, PackedSequence) else out
    if data.device.type != "cpu" or rng_before is None:
        return None, f"on {data.device} (its dropout masks are re-made on the CPU only)"
    p, L = float(m.dropout), m.num_layers
    if packed:
        shape = tuple(data.shape)  # (ΣT_b, D·H)
    elif not m.batch_first or data.dim() == 2:
        shape = tuple(data.shape) if data.dim() == 3 else (data.shape[0], 1, data.shape[1])
    else:
        shape = (data.shape[1], data.shape[0], data.shape[2])  # torch runs time-major: (T, B, D·H)
    if p >= 1:  # torch multiplies by 0 and draws nothing
        noise = [torch.zeros(shape, dtype=data.dtype) for _ in range(L - 1)]
    else:
        after = torch.get_rng_state()
        torch.set_rng_state(rng_before)
        try:
            noise = [
                torch.empty(shape, dtype=data.dtype).bernoulli_(1 - p).div_(1 - p)
                for _ in range(L - 1)
            ]
            same = torch.equal(torch.get_rng_state(), after)
        finally:
            torch.set_rng_state(after)
        if not same:
            return None, "and its random masks could not be re-made (other draws in its forward)"
    if isinstance(out, PackedSequence):
        meta = (out.batch_sizes, out.sorted_indices, out.unsorted_indices)
        T = int(out.batch_sizes.numel())
        rows = [
            pad_packed_sequence(PackedSequence(n, *meta), batch_first=True, total_length=T)[0]
            for n in noise
        ]
    else:
        rows = [n.transpose(0, 1) for n in noise]  # (B, T, D·H)
    return torch.stack(rows), ""
