"""Activation collection against PyTorch float64 and the fast kernels.

Oracles: ``nn.RNN/LSTM/GRU`` (h of every step, c via ``nn.LSTMCell``-style stepping) and the
gate equations written in torch on torch's own h_prev; the training kernels' final state.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_dissect.nets.forward import Forward
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.neurons import activations
from rnn_dissect.neurons.activations import KINDS
from rnn_dissect.neurons.collect import collect
from rnn_dissect.train.kernels import KERNELS
from rnn_dissect.weights.interop import to_torch

torch.set_num_threads(1)  # tiny problems; threads only spin against each other on 2 cores
VOCAB = tuple("abcdefgh\n ")


def text_and_model(cell: str, n: int = 157, layers: int = 2, hidden: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(list(VOCAB), n))
    return text, CharModel.init(ModelConfig(cell, VOCAB, hidden, layers), seed=seed + 1)


def torch_reference(m: CharModel, text: str) -> dict[tuple[int, str], np.ndarray]:
    """Every (layer, kind) as (N, H) float64, from torch: the module's h, then each layer's
    gates and c recomputed step by step in torch from the module's own h_prev."""
    rnn, _ = to_torch(m)
    rnn = rnn.double()
    x = torch.nn.functional.one_hot(torch.tensor(m.encode(text)), len(VOCAB)).double()  # (N, V)
    out: dict[tuple[int, str], np.ndarray] = {}
    layer_in = x
    H = m.config.hidden_size
    for k in range(m.config.num_layers):
        W_ih, W_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{k}"), getattr(rnn, f"bias_hh_l{k}")
        h, c = torch.zeros(H, dtype=torch.float64), torch.zeros(H, dtype=torch.float64)
        rows: dict[str, list[torch.Tensor]] = {kind: [] for kind in KINDS[m.config.cell]}
        with torch.no_grad():
            for t in range(len(text)):
                a, u = W_ih @ layer_in[t] + b_ih, W_hh @ h + b_hh
                if m.config.cell == "rnn":
                    h = torch.tanh(a + u)
                elif m.config.cell == "lstm":
                    i, f, g, o = (a + u).chunk(4)
                    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                    c = f * c + i * g
                    h = o * c.tanh()
                    for kind, v in zip("ifgoc", (i, f, g, o, c), strict=True):
                        rows[kind].append(v)
                else:
                    (ar, az, an), (ur, uz, un) = a.chunk(3), u.chunk(3)
                    r, z = (ar + ur).sigmoid(), (az + uz).sigmoid()
                    n = (an + r * un).tanh()
                    h = (1 - z) * n + z * h
                    for kind, v in zip("rzn", (r, z, n), strict=True):
                        rows[kind].append(v)
                rows["h"].append(h)
        layer_in = torch.stack(rows["h"])
        out.update({(k, kind): torch.stack(v).numpy() for kind, v in rows.items()})
    # the hand-stepped h must be the module's h: ties the gate equations to nn.RNN/LSTM/GRU
    module_h, _ = rnn(x[:, None])
    np.testing.assert_allclose(
        out[(m.config.num_layers - 1, "h")], module_h[:, 0].detach().numpy(), atol=1e-12
    )
    return out


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_unit_and_gate_matches_torch_float64(cell):
    text, m = text_and_model(cell)
    ref = torch_reference(m, text)
    # 5 segments in lock-step, each warming up from the very start of the text: exact
    acts = collect(m, text, warmup=len(text), batch=5, dtype=np.float64)
    assert acts.ordered_keys() == [(k, kind) for k in range(2) for kind in KINDS[cell]]
    for key in acts.ordered_keys():
        np.testing.assert_allclose(acts.arrays[key], ref[key], rtol=0, atol=1e-13, err_msg=str(key))
    # float32 (the default) agrees to float32 precision
    acts32 = collect(m, text, warmup=len(text), batch=5)
    for key in acts.ordered_keys():
        assert acts32.arrays[key].dtype == np.float32
        np.testing.assert_allclose(acts32.arrays[key], ref[key], atol=2e-6, err_msg=str(key))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_streamed_to_disk_equals_in_memory(cell, tmp_path):
    text, m = text_and_model(cell, n=301)
    mem = collect(m, text, warmup=40, batch=7)
    # a buffer of a few time steps forces many chunks of positioned writes
    disk = collect(m, text, warmup=40, batch=7, out_dir=tmp_path / "acts", max_buffer_bytes=3000)
    again = activations.load(tmp_path / "acts")
    assert again.text == text and again.cell == cell
    for key in mem.ordered_keys():
        assert isinstance(disk.arrays[key], np.memmap)
        assert np.array_equal(again.arrays[key], mem.arrays[key]), key


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_last_row_is_the_kernels_final_state(cell):
    text, m = text_and_model(cell, n=90, hidden=8)
    m32 = CharModel(m.config, {k: v.astype(np.float32) for k, v in m.params.items()})
    acts = collect(m32, text, warmup=len(text), batch=3)
    logits, state = KERNELS[cell].forward(m32.params, m32.encode(text)[None])  # (1, N, V)
    for k in range(2):
        np.testing.assert_allclose(acts.arrays[(k, "h")][-1], state[0][k, 0], atol=1e-6)
    if cell == "lstm":
        np.testing.assert_allclose(acts.arrays[(1, "c")][-1], state[1][1, 0], atol=1e-6)
    # and the head on the recorded h gives the kernels' logits at every step
    fwd = Forward.of(m32)
    np.testing.assert_allclose(fwd.logits(acts.arrays[(1, "h")]), logits[0], atol=1e-5)


def test_short_warmup_is_exact_where_the_segment_reaches_the_start():
    """Segment 0 reads from the start as one pass does: exact; later segments start from zero
    state ``warmup`` characters early, and have converged to the one-pass values by then."""
    text, m = text_and_model("lstm", n=400, hidden=5, seed=3)
    exact = collect(m, text, warmup=len(text), batch=4, dtype=np.float64)
    approx = collect(m, text, warmup=60, batch=4, dtype=np.float64)
    h, h0 = approx.arrays[(1, "h")], exact.arrays[(1, "h")]
    assert np.array_equal(h[:100], h0[:100])  # segment 0: rows 0..99
    assert np.abs(h - h0).max() < 1e-3  # a small random model forgets its start quickly
    assert np.abs(h - h0).max() > 0  # ... but it *is* an approximation
