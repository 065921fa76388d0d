"""watch on models as people write them: a module called several times, frozen weights,
a bfloat16 model, whole models and cells passed by mistake.

Oracle: PyTorch float64 autograd on a copy of the module (the same weights and inputs, exactly
representable in float64), and ``.grad`` of the watched model itself.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from rnn_dissect import watch  # noqa: E402
from rnn_dissect.errors import UserError  # noqa: E402


def f64_grads(module, run):
    """{name: dL/dθ} of ``run(copy)`` on a float64 copy of ``module`` (the independent oracle)."""
    m = copy.deepcopy(module).double().requires_grad_(True)
    m.zero_grad()
    run(m).backward()
    return {n: p.grad.numpy() for n, p in m.named_parameters()}


def test_a_module_called_twice_is_checked_against_the_sum_of_its_calls():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2).double()
    x1, x2 = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64)

    def run(m):
        o1, state = m(x1)
        o2, _ = m(x2, state)  # the second call starts where the first ended
        return o1.sum() + o2.pow(2).sum()

    with watch(lstm) as w:
        run(lstm).backward()
    first, second = w[lstm]
    ref = f64_grads(lstm, run)
    for name in ref:
        np.testing.assert_allclose(first.grads[name] + second.grads[name], ref[name], rtol=1e-9)
    assert w.check(lstm) <= 1e-9
    # one call alone is not what .grad holds: refused, not a misleading number
    with pytest.raises(UserError, match=re.escape("LSTM#0 is one of 2 calls")):
        first.check(lstm)


def test_a_no_grad_evaluation_in_the_block_is_left_out():
    """A training step and a validation pass under torch.no_grad in one ``with``: the one call
    autograd recorded is the dissection, and the check is against it alone."""
    torch.manual_seed(7)
    gru = nn.GRU(3, 4, batch_first=True).double()
    x, val = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(3, 4, 3, dtype=torch.float64)

    def run(m):
        return m(x)[0].pow(2).sum()

    with watch(gru) as w:
        run(gru).backward()
        with torch.no_grad():
            gru(val)
    assert [c.tracked for c in w.calls] == [True, False]
    d = w.dissection()
    assert d.call.label == "GRU#0" and d.check(gru) <= 1e-9 and w.check(gru) <= 1e-9
    ref = f64_grads(gru, run)
    np.testing.assert_allclose(d.grads["weight_hh_l0"], ref["weight_hh_l0"], rtol=1e-9)
    with pytest.raises(UserError, match="no gradient reached GRU#1"):
        w.dissection(gru, call=1)


def test_a_frozen_weight_is_skipped_by_check_and_still_replayed():
    torch.manual_seed(1)
    gru = nn.GRU(3, 4, batch_first=True).double()
    gru.weight_hh_l0.requires_grad_(False)
    x = torch.randn(2, 5, 3, dtype=torch.float64)

    def run(m):
        return m(x)[0].pow(2).sum()

    with watch(gru) as w:
        run(gru).backward()
    d = w.dissection()
    assert gru.weight_hh_l0.grad is None
    assert d.check(gru) <= 1e-9  # the trainable ones
    ref = f64_grads(gru, run)  # the oracle trains every weight
    np.testing.assert_allclose(d.grads["weight_hh_l0"], ref["weight_hh_l0"], rtol=1e-9)
    # a computed weight (weight_norm: .grad goes to its originals) is replayed, not compared
    gru.weight_hh_l0.requires_grad_(True)
    torch.nn.utils.parametrizations.weight_norm(gru, "weight_hh_l0")
    assert gru.weight_hh_l0.requires_grad and not gru.weight_hh_l0.is_leaf
    gru.zero_grad()
    with watch(gru) as w:
        run(gru).backward()
    d = w.dissection()
    assert d.check(gru) <= 1e-9
    plain = nn.GRU(3, 4, batch_first=True).double()
    with torch.no_grad():
        for name, _ in plain.named_parameters():
            getattr(plain, name).copy_(getattr(gru, name))  # weight_hh_l0: the computed one
    ref = f64_grads(plain, run)
    np.testing.assert_allclose(d.grads["weight_hh_l0"], ref["weight_hh_l0"], rtol=1e-9)
    gru.zero_grad()  # set_to_none: nothing left to compare
    with pytest.raises(UserError, match=re.escape("weight_ih_l0.grad is None: check after")):
        d.check(gru)


def test_bfloat16_is_recorded_without_touching_the_forward():
    """A bfloat16 model used to raise inside the model's own forward (numpy has no bfloat16).
    The replay is the float64 truth on the same bfloat16 values (exact in float64)."""
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 4, batch_first=True).to(torch.bfloat16)
    x = torch.randn(2, 5, 3).to(torch.bfloat16)
    with watch(lstm) as w:
        out, _ = lstm(x)
    g = torch.randn(2, 5, 4).to(torch.bfloat16)
    (out.float() * g.float()).sum().backward()
    d = w.dissection()
    assert d.call.dtype == "bfloat16"
    ref = f64_grads(lstm, lambda m: (m(x.double())[0] * g.double()).sum())
    for name in ref:
        np.testing.assert_allclose(d.grads[name], ref[name], rtol=1e-9, atol=1e-12)
    assert 0 < d.check(lstm) < 0.05  # torch's own bfloat16 backward, to its precision


class Scaled(nn.GRU):
    def forward(self, x, hx=None):
        out, h = super().forward(x, hx)
        return out * 2, h


def test_wrong_modules_are_refused_with_where_to_look():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3), nn.GRU(3, 4)])

    seen = []
    for module, msg in [
        (
            Model(),
            "(or their cells), not Model; it contains .layers[1] (GRU), e.g. watch(model.layers[1])",
        ),
        (nn.Linear(3, 4), "not Linear; pass the recurrent layer itself"),
        # its outputs are not torch's (here out · 2): gradients at them would be silently wrong
        (Scaled(3, 4), "Scaled overrides nn.GRU.forward, so watch cannot tell its outputs"),
    ]:
        with pytest.raises(UserError, match=re.escape(msg)) as e:
            watch(module)
        seen.append(str(e.value))
    assert not any("\n" in m for m in seen), seen


CASES = [  # cell, bidirectional, batch_first, packed, unbatched
    ("LSTM", False, True, False, False),
    ("GRU", True, False, True, False),
    ("RNN", True, True, False, True),
    ("LSTM", True, True, True, False),
]


@pytest.mark.parametrize("cell, bi, batch_first, packed, unbatched", CASES)
def test_training_mode_dropout_is_replayed_with_torchs_own_masks(
    cell, bi, batch_first, packed, unbatched
):
    """nn.LSTM(num_layers=3, dropout=0.4) in training mode: the masks are re-made from torch's
    generator; the replay's gradients equal .grad (float64) and the per-step terms sum to them."""
    torch.manual_seed(3)
    m = getattr(nn, cell)(
        3, 4, num_layers=3, dropout=0.4, bidirectional=bi, batch_first=batch_first
    )
    m = m.double().train()
    x = torch.randn(1 if unbatched else 4, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([4, 6, 2, 6])
    if unbatched:
        inp = x[0]  # (T, I)
    elif packed:
        inp = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    else:
        inp = x if batch_first else x.transpose(0, 1)
    with watch(m) as w:
        out, _ = m(inp)
        data = out.data if packed else out
        (data.sin() * torch.arange(data.shape[-1], dtype=torch.float64)).sum().backward()
    d = w.dissection()
    assert w.calls[0].dropout is not None and "dropout (training" in w.calls[0].describe()
    assert d.check(m) <= 1e-9
    for name, total in d.grads.items():
        if name not in ("h0", "c0"):
            s = sum(t.sum(axis=0) for _, t in d.step_grads(name))
            np.testing.assert_allclose(s, total, rtol=1e-10, atol=1e-14)
    # layer 1 reads layer 0's output with torch's zeros in it: the dropped units read 0
    noise = w.calls[0].dropout  # (L−1, B, T, D·H)
    assert noise.shape[:2] == (2, 1 if unbatched else 4)
    assert set(np.unique(noise).tolist()) <= {0.0, 1 / 0.6}
    assert 0 < (noise == 0).mean() < 0.8
    if not unbatched and not packed:
        assert w.dissection(window=(2, 5)).check(m) <= 1e-9  # windows keep the masks


def test_dropout_watching_changes_no_later_random_number():
    def run(watched):
        torch.manual_seed(4)
        m = nn.GRU(3, 4, num_layers=2, dropout=0.5)
        x = torch.randn(5, 2, 3)
        if watched:
            with watch(m) as w:
                m(x)[0].sum().backward()
            assert w.dissection().check(m) <= 1e-4  # float32 model
        else:
            m(x)[0].sum().backward()
        return m.weight_ih_l1.grad.clone(), torch.rand(3)

    (g0, r0), (g1, r1) = run(False), run(True)
    assert torch.equal(g0, g1) and torch.equal(r0, r1)


def test_dropout_masks_that_cannot_be_remade_are_refused():
    torch.manual_seed(5)
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.3).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)

    def draw(*args):  # a user's pre-hook that draws after watch saved the generator
        torch.rand(1)

    with watch(m) as w:
        handle = m.register_forward_pre_hook(draw)
        m(x)[0].sum().backward()
    handle.remove()
    with pytest.raises(UserError, match=r"masks could not be re-made.*model\.eval\(\)"):
        w.dissection()
    with watch(m) as w:  # masks re-made, then one flipped: the forward check catches it
        m(x)[0].sum().backward()
    noise = w.calls[-1].dropout
    noise[0, 0, 0, :] = np.where(noise[0, 0, 0, :] == 0, 1 / 0.7, 0.0)
    with pytest.raises(UserError, match="does not reproduce torch's h_n"):
        w.dissection()


@pytest.mark.parametrize(
    "cls, kw, batched",
    [
        (nn.LSTMCell, {}, True),
        (nn.GRUCell, {}, False),
        (nn.RNNCell, {"nonlinearity": "relu", "bias": False}, True),
    ],
)
def test_cells_stepped_in_a_loop(cls, kw, batched):
    """A decoder written with nn.LSTMCell / GRUCell / RNNCell, one call per step, its first
    state from an encoder: each call is a one-step replay under the cell's own weight names, and
    the calls' sum is .grad (float64). torch's CPU LSTMCell is composite (h' = o ⊙ tanh(c')), so
    the gradient reaching c' includes h''s: it used to be counted twice."""
    torch.manual_seed(6)
    enc = nn.LSTM(3, 4).double()
    cell = cls(2, 4, **kw).double()
    src = torch.randn(5, 2, 3, dtype=torch.float64)
    steps = torch.randn(3, 2, 2, dtype=torch.float64)
    with watch([enc, cell]) as w:
        _, (h, c) = enc(src)
        h0, c0 = h[0], c[0]  # (B, H): the encoder's final state starts the decoder
        h0.retain_grad(), c0.retain_grad()
        state = (h0, c0) if cls is nn.LSTMCell else h0
        loss = 0
        for t in range(3):
            x = steps[t] if batched else steps[t, 0]
            state = cell(x, state if batched else state[0])  # unbatched: GRUCell, h (H,)
            h_t = state[0] if cls is nn.LSTMCell else state
            loss = loss + (h_t * (t + 1)).sin().sum()
            if not batched:
                break  # one unbatched call: (I,) in, (H,) out
        if cls is nn.LSTMCell:
            loss = loss + state[1].pow(2).sum()  # the last cell state is read too
        loss.backward()
    assert w.check(cell) <= 1e-9 and w.check(enc) <= 1e-9
    first = w.dissection(cell, call=0)
    own = [n for n, _ in cell.named_parameters()]
    assert [k for k in first.grads if k not in ("h0", "c0")] == own
    assert re.search(rf"{cls.__name__}(\(relu\))? 2→4", first.call.describe())
    for name in own:
        s = sum(t.sum(axis=0) for _, t in first.step_grads(name))
        np.testing.assert_allclose(s, first.grads[name], rtol=1e-12)
    if batched:  # the first call's initial-state gradients: torch's at the encoder's output
        np.testing.assert_allclose(first.grads["h0"][0], h0.grad.numpy(), rtol=1e-9, atol=1e-15)
        if cls is nn.LSTMCell:
            np.testing.assert_allclose(first.grads["c0"][0], c0.grad.numpy(), rtol=1e-9, atol=1e-15)
