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


def test_wrong_modules_are_refused_with_where_to_look():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3), nn.GRU(3, 4)])

    seen = []
    for module, msg in [
        (Model(), "not Model; it contains .layers[1] (GRU), e.g. watch(model.layers[1])"),
        (nn.LSTMCell(3, 4), "nn.LSTMCell (one step per call) is not watched; use an nn.LSTM"),
        (nn.Linear(3, 4), "not Linear; pass the recurrent layer itself"),
    ]:
        with pytest.raises(UserError, match=re.escape(msg)) as e:
            watch(module)
        seen.append(str(e.value))
    assert not any("\n" in m for m in seen), seen
