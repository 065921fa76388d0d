"""watch on projected LSTMs (``nn.LSTM(proj_size=P)``, LSTMP: h_t = W_hr (o_t ⊙ tanh c_t)).

Oracles: PyTorch float64 autograd (every parameter's ``.grad``, weight_hr's included, the
initial states' and the input's gradients), central differences of the engine's own recorded
projected cell, and torch's Jacobian of one LSTMP step for the step Jacobian the flow reads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from rnn_dissect import watch  # noqa: E402
from rnn_dissect.autograd.engine import Graph  # noqa: E402
from rnn_dissect.autograd.gradcheck import gradcheck  # noqa: E402
from rnn_dissect.bptt.jacobians import step_jacobian  # noqa: E402
from rnn_dissect.nets.cells import LayerParams, lstm_step  # noqa: E402


def rel(a: np.ndarray, b: torch.Tensor) -> float:
    ref = b.detach().double().numpy()
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-300))


def input_grad(d) -> np.ndarray:
    """dL/dx (B, T, I) batch-major, read off layer 0's recorded input nodes (each direction's
    steps put back at their positions, the two directions summed)."""
    out = np.zeros(d.call.x.shape)
    for p in d.parts:
        if p.layer == 0:
            run = p.dissection.run
            gx = np.stack([n.grad_or_zeros() for n in run.inputs], axis=1)  # (G, n, I)
            out[p.group.batch[:, None], run.positions[None, :]] += gx
    return out


def assert_exact(d, m, x_grad, tol=1e-10):
    """Every parameter (weight_hr_l* among them) = .grad, the per-step terms sum to it, and
    dL/dx = torch's; w.check agrees."""
    names = {n for n, _ in m.named_parameters()}
    assert {n for n in names if n.startswith("weight_hr")} and names <= set(d.grads)
    for name in names:
        assert rel(d.grads[name], getattr(m, name).grad) <= tol, name
        s = sum(t.sum(axis=0) for _, t in d.step_grads(name))
        np.testing.assert_allclose(s, d.grads[name], rtol=1e-10, atol=1e-13)
    assert rel(input_grad(d), x_grad) <= tol
    assert d.check(m) <= tol


def test_one_layer_with_given_states_and_every_output_read():
    torch.manual_seed(0)
    m = nn.LSTM(3, 5, proj_size=2).double()
    x = torch.randn(6, 4, 3, dtype=torch.float64, requires_grad=True)  # (T, B, I)
    h0 = torch.randn(1, 4, 2, dtype=torch.float64, requires_grad=True)  # (L·D, B, P)
    c0 = torch.randn(1, 4, 5, dtype=torch.float64, requires_grad=True)  # (L·D, B, H)
    with watch(m) as w:
        out, (h_n, c_n) = m(x, (h0, c0))
        (out.sin().sum() + (h_n * 3).sum() + (c_n**2).sum()).backward()
    d = w.dissection()
    assert "LSTM(proj_size=2) 3→5" in d.call.describe()
    assert d.grads["weight_hr_l0"].shape == (2, 5) and d.grads["weight_hh_l0"].shape == (20, 2)
    assert_exact(d, m, x.grad.transpose(0, 1))
    assert rel(d.grads["h0"], h0.grad) <= 1e-10 and rel(d.grads["c0"], c0.grad) <= 1e-10
    run = d.part().dissection.run
    assert (run.proj_size, run.h_size, run.hidden_size) == (2, 2, 5)
    m3, h3 = run.node(3, 0, "m"), run.node(3, 0, "h")  # o ⊙ tanh(c), then h = W_hr m
    assert (m3.kind.value, m3.value.shape, h3.kind.value, h3.value.shape) == (
        "activation", (4, 5), "state", (4, 2))  # fmt: skip
    assert h3.parents == (m3, run.params["weight_hr_l0"]) and m3.grad is not None
    np.testing.assert_allclose(d.sequence(1)[(0, 0)]["h"], out[:, 1].detach().numpy(), rtol=1e-12)
    # the flow's step Jacobian ∂[h;c]_t/∂[h;c]_{t−1} is (P + H)²; its top-layer lag diagonal
    # is the head's own part of dL/dh_t — at T with h_n's gradient too (row T holds it)
    lf = d.part().dissection.flow.layers[0]
    assert lf.state_singular_values.shape == (6, 7) and lf.singular_values.shape == (6, 2)
    carry = d.part().dissection.carry[0]
    direct = [np.linalg.norm(c.dh_direct) for c in carry[:-1]] + [np.linalg.norm(carry[-1].dh)]
    np.testing.assert_allclose(np.diag(lf.lag), direct, rtol=1e-12)
    mem = d.part().dissection.memory
    assert mem.measured_bytes == mem.formula_bytes  # m_t and P-wide h_t in the closed form
    # neurons: h has P units, c and the gates H; h's score is Pearson r with torch's output
    feature = x[..., 0].detach().T.numpy()  # (B, T)
    s = d.neurons({"x0": feature})
    kinds = [u.kind for u in s.units]
    assert kinds.count("h") == 2 and kinds.count("c") == 5 and len(kinds) == 2 + 5 * 5
    o = out.detach().transpose(0, 1).reshape(-1, 2).numpy()  # sequence by sequence
    for j in range(2):
        r = np.corrcoef(feature.ravel(), o[:, j])[0, 1]
        assert s.score[0, kinds.index("h") + j] == pytest.approx(r, abs=1e-6)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_two_layers_bidirectional_float32_and_float64():
    torch.manual_seed(1)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=3).to(dtype)
        x = torch.randn(5, 3, 3, dtype=dtype, requires_grad=True)
        with watch(m) as w:
            out, (h_n, c_n) = m(x)  # out (T, B, 2P): layer 1 reads D·P = 6 features
            (out.pow(2).sum() + h_n[0].sum() - c_n[3].sum()).backward()
        d = w.dissection()
        assert d.grads["weight_ih_l1_reverse"].shape == (16, 6)
        assert_exact(d, m, x.grad.transpose(0, 1), tol)
        win = w.dissection(window=(1, 4))  # windows stay exact: whole-sequence totals
        assert win.check(m) <= tol


def test_batch_first_packed_sequences():
    torch.manual_seed(2)
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True, proj_size=2).double()
    lengths = torch.tensor([3, 6, 2, 6])
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    with watch(m) as w:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = m(packed)
        padded, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, 2P)
        (padded.tanh().sum() + (h_n[-1] ** 2).sum() + c_n[-2].sum()).backward()
    d = w.dissection()
    assert [g.n for g in d.groups] == [3, 6, 2]
    assert_exact(d, m, x.grad)


def test_training_mode_dropout_between_layers():
    torch.manual_seed(3)
    m = nn.LSTM(3, 4, num_layers=3, dropout=0.4, bidirectional=True, batch_first=True,
                proj_size=2).double().train()  # fmt: skip
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    with watch(m) as w:
        out, _ = m(x)
        (out.sin() * torch.arange(4, dtype=torch.float64)).sum().backward()
    d = w.dissection()
    noise = w.calls[0].dropout  # (L − 1, B, T, D·P)
    assert noise.shape == (2, 4, 6, 4) and 0 < (noise == 0).mean() < 0.8
    assert_exact(d, m, x.grad)


def test_engine_central_differences_and_step_jacobian_on_a_tiny_lstmp():
    """The recorded projected cell: backward against (L(w + ε) − L(w − ε)) / 2ε for every
    parameter (W_hr too) and both initial states; its step Jacobian against torch's."""
    rng = np.random.default_rng(4)
    B, n_in, H, P, T = 2, 3, 4, 2, 3
    g = Graph(np.float64)
    shapes = {"W_ih": (4 * H, n_in), "W_hh": (4 * H, P), "b_ih": (4 * H,), "b_hh": (4 * H,),
              "W_hr": (P, H)}  # fmt: skip
    p = LayerParams(**{k: g.param(rng.normal(0, 0.6, s), id=k, name=k) for k, s in shapes.items()})
    state = (g.state(rng.normal(size=(B, P)), id="h0", name="h0"),
             g.state(rng.normal(size=(B, H)), id="c0", name="c0"))  # fmt: skip
    terms = []
    for t in range(1, T + 1):
        x = g.input(rng.normal(size=(B, n_in)), id=f"x{t}", name="x", t=t)
        state = lstm_step(g, p, x, state, t, 0)
        r = g.input(rng.normal(size=(B, P)), id=f"r{t}", name="r", t=t)
        terms.append(g.apply("sum", g.apply("mul", state[0], r, id=f"hr{t}", name="h r"),
                             id=f"s{t}", name="s"))  # fmt: skip
    terms.append(g.apply("sum", g.apply("mul", state[1], state[1], id="cc", name="c²"), id="sc",
                         name="s"))  # fmt: skip
    loss = g.apply("addn", *terms, id="loss", name="L")
    results = gradcheck(g, loss)
    assert {r.id for r in results} == {*shapes, "h0", "c0"}
    for r in results:
        assert r.max_rel_error <= 1e-6, (r.id, r.max_rel_error)

    # step Jacobian at t = 2 against torch.autograd.functional.jacobian of the same step
    class Run:  # the part of a Recording that step_jacobian reads
        cell, hidden_size, layers = "lstm", H, [p]

        @staticmethod
        def node(t, layer, name):
            return g[f"t{t}.l{layer}.{name}"]

        @staticmethod
        def c(layer, t):
            return g["c0"] if t == 0 else g[f"t{t}.l{layer}.c"]

    J = step_jacobian(Run, 0, 2)  # (B, P + H, P + H)
    tw = {k: torch.from_numpy(n.value) for k, n in zip(shapes, p.__dict__.values(), strict=True)}
    x2 = torch.from_numpy(g["x2"].value)

    def step(s):  # [h; c] (P + H,) of one sequence → [h'; c']
        a = x2[b] @ tw["W_ih"].T + tw["b_ih"] + s[:P] @ tw["W_hh"].T + tw["b_hh"]
        i, f, gg, o = a.split(H)
        c = f.sigmoid() * s[P:] + i.sigmoid() * gg.tanh()
        return torch.cat([tw["W_hr"] @ (o.sigmoid() * c.tanh()), c])

    for b in range(B):
        s1 = torch.from_numpy(np.concatenate([g["t1.l0.h"].value[b], g["t1.l0.c"].value[b]]))
        ref = torch.autograd.functional.jacobian(step, s1).numpy()
        np.testing.assert_allclose(J[b], ref, rtol=1e-12, atol=1e-14)


def test_saved_projected_watch_opens_in_the_explorer(tmp_path):
    """save → explore's data and exported page: the m node has its own slot, the config says P."""
    torch.manual_seed(5)
    m = nn.LSTM(3, 4, batch_first=True, proj_size=2).double()
    with watch(m) as w:
        out, _ = m(torch.randn(2, 3, 3, dtype=torch.float64))
        out.sum().backward()
    d = w.dissection()
    d.save(tmp_path)
    doc = json.loads((tmp_path / "dissection.json").read_text())
    assert doc["config"]["proj_size"] == 2 and doc["config"]["hidden_size"] == 4
    assert np.asarray(doc["h"]).shape == (1, 3, 2, 2) and np.asarray(doc["c"]).shape == (1, 3, 2, 4)
    from rnn_dissect.reports.explore_session import open_source

    data = open_source(str(tmp_path)).data()
    place = data["layout"]["place"]
    assert place["t2.l0.m"]["slot"] == "m" and place["t2.l0.h"]["slot"] == "h"
    from rnn_dissect.cli import main

    assert main(["explore", str(tmp_path), "--export", str(tmp_path / "page.html")]) == 0


def test_budget_estimate_bounds_a_projected_graph():
    from rnn_dissect.watch.budget import estimate
    from rnn_dissect.watch.select import plan

    m = nn.LSTM(3, 16, num_layers=2, bidirectional=True, proj_size=4).double()
    with watch(m) as w:
        m(torch.randn(9, 3, 3, dtype=torch.float64))[0].sum().backward()
    call = w.calls[0]
    est = estimate(call, [(len(g.batch), g.n, g.start, g.stop) for g in plan(call)])
    held = 0
    for p in w.dissection().parts:
        held += sum(
            n.value.nbytes + (0 if n.grad is None else n.grad.nbytes)
            for n in p.dissection.run.graph.nodes
        )
        held += sum(sum(a.nbytes for a in v) for v in p.dissection.step.contributions.values())
    assert 0.7 * held <= est <= 1.5 * held
