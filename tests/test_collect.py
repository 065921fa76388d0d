"""Activation collection against PyTorch float64 and the fast kernels.

Oracles: ``nn.RNN/LSTM/GRU`` (h of every step, c via ``nn.LSTMCell``-style stepping) and the
gate equations written in torch on torch's own h_prev; the training kernels' final state.
"""

from __future__ import annotations

import numpy as np
import planted
import pytest
import torch
from planted import python_like_text

from rnn_dissect.nets.forward import Forward
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.neurons import activations
from rnn_dissect.neurons.activations import KINDS
from rnn_dissect.neurons.collect import collect
from rnn_dissect.neurons.features import bracket_depth
from rnn_dissect.train.kernels import KERNELS
from rnn_dissect.weights.interop import from_torch, to_torch

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


def test_approximate_mode_is_exact_only_where_the_segment_reaches_the_start():
    """``exact=False``: segment 0 reads from the start as one pass does; later segments start
    from a zero state ``warmup`` characters early and are only close to the one-pass values."""
    text, m = text_and_model("lstm", n=400, hidden=5, seed=3)
    exact = collect(m, text, warmup=len(text), batch=4, dtype=np.float64)
    approx = collect(m, text, warmup=60, batch=4, dtype=np.float64, exact=False)
    h, h0 = approx.arrays[(1, "h")], exact.arrays[(1, "h")]
    assert np.array_equal(h[:100], h0[:100])  # segment 0: rows 0..99
    assert 0 < np.abs(h - h0).max() < 1e-3  # a small random model forgets its start quickly
    assert approx.collection == {
        "mode": "approximate", "segments": 4, "warmup": 60, "dtype": "float64", "passes": 1
    }  # fmt: skip


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_exact_mode_equals_one_pass_with_any_warmup(cell):
    """With no warm-up every segment starts wrong (from zeros): the check re-reads them until
    they merge, and every array is the one-pass value."""
    text, m = text_and_model(cell, n=600, hidden=5, seed=4)
    one = collect(m, text, batch=1, dtype=np.float64)
    assert one.collection["passes"] == 1 and one.collection["segments"] == 1
    for warmup in (0, 3):
        acts = collect(m, text, warmup=warmup, batch=6, dtype=np.float64)
        info = acts.collection
        assert info["mode"] == "exact" and info["segments"] == 6 and info["segments_rerun"] == 5
        assert info["passes"] >= 2 and 0 < info["rerun_chars"] < len(text)  # merged early
        for key in one.ordered_keys():
            np.testing.assert_allclose(acts.arrays[key], one.arrays[key], rtol=0, atol=1e-11)


def test_a_perfect_memory_unit_is_exact_over_many_segments(tmp_path):
    """The planted bracket counter (f = σ(20): it never forgets) over 20,000+ characters in
    many segments: every array equals a single torch.nn.LSTM pass in float64 — in memory and
    streamed to disk — while the speculative first pass alone is far off."""
    text = python_like_text(np.random.default_rng(5), n_lines=1300)
    assert len(text) >= 20_000
    vocab = tuple(sorted(set(text)))
    head = torch.nn.Linear(planted.H, len(vocab), dtype=torch.float64)
    m = from_torch(planted.planted_lstm(vocab), head, vocab)
    ref = planted.run(text)  # torch float64, one pass
    depth = bracket_depth(text)

    acts = collect(m, text, dtype=np.float64)
    info = acts.collection
    assert info["segments"] >= 10 and info["passes"] == 2 and info["segments_rerun"] >= 5
    for key in ref.ordered_keys():
        np.testing.assert_allclose(acts.arrays[key], ref.arrays[key], rtol=0, atol=1e-9)
    assert np.corrcoef(acts.arrays[(0, "c")][:, 0], depth)[0, 1] > 0.99

    # float32 streamed to disk through a small buffer (many chunks): the same, to float32
    disk = collect(m, text, out_dir=tmp_path / "acts", max_buffer_bytes=20_000)
    again = activations.load(tmp_path / "acts")
    assert again.collection == disk.collection and again.collection["mode"] == "exact"
    for key in ref.ordered_keys():
        np.testing.assert_allclose(again.arrays[key], ref.arrays[key], rtol=0, atol=1e-4)
    assert np.corrcoef(again.arrays[(0, "c")][:, 0], depth)[0, 1] > 0.99

    approx = collect(m, text, dtype=np.float64, exact=False)  # what the check repairs
    assert np.abs(approx.arrays[(0, "c")][:, 0] - ref.arrays[(0, "c")][:, 0]).max() > 0.05
