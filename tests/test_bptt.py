"""The unrolled char model against PyTorch autograd (float64) and central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_ref import loop_run, module_run, rel

from rnn_dissect.autograd.gradcheck import gradcheck
from rnn_dissect.bptt.unroll import bptt, unroll
from rnn_dissect.errors import UserError
from rnn_dissect.nets import mlp
from rnn_dissect.nets.model import CharModel, ModelConfig

TOL = 1e-10
CELLS = ("rnn", "lstm", "gru")


def make(cell, V, H, L, T, B, *, seed=0, h0=False, batched=True, scale=1.0):
    """A model with random weights (×scale) and random (inputs, targets, h0, c0)."""
    rng = np.random.default_rng(seed)
    model = CharModel.init(ModelConfig(cell, tuple(chr(97 + i) for i in range(V)), H, L), seed=seed)
    model.params = {k: v * scale for k, v in model.params.items()}
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    s0 = rng.normal(size=(L, B, H)) if h0 else None
    c0 = rng.normal(size=(L, B, H)) if (h0 and cell == "lstm") else None
    if not batched:
        x, y = x[0], y[0]
        s0 = None if s0 is None else s0[:, 0]
        c0 = None if c0 is None else c0[:, 0]
    return model, x, y, s0, c0


def batched(a):
    """torch_ref works on batched arrays: add the batch axis back to unbatched ones."""
    return None if a is None else np.asarray(a)


def check_against_module(model, x, y, h0, c0, truncate, mode="many_to_many", nonlinearity="tanh"):
    run = bptt(model, x, y, h0=h0, c0=c0, truncate=truncate, mode=mode, nonlinearity=nonlinearity)
    ub = not run.batched
    X = x[None] if ub else x
    Y = (y[None] if ub else y) if mode == "many_to_many" else np.atleast_2d(y)
    S0 = None if h0 is None else (h0[:, None] if ub else h0)
    C0 = None if c0 is None else (c0[:, None] if ub else c0)
    loss, out, grads = module_run(model, X, Y, S0, C0, truncate, mode, nonlinearity)
    assert abs(float(run.loss.value) - loss) <= TOL * max(1.0, abs(loss))
    top = np.stack([run.h(model.config.num_layers - 1, t).value for t in range(1, run.T + 1)])
    assert rel(top, out) <= TOL  # outputs (T, B, H)
    ours = run.grads()
    for name, g in grads.items():
        g = g[:, 0] if (ub and name in ("h0", "c0")) else g
        assert rel(ours[name], g) <= TOL, name
    assert set(ours) == set(grads)
    return run


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(CELLS),
    V=st.integers(2, 12),
    H=st.sampled_from([1, 2, 5, 16, 64]),
    L=st.integers(1, 3),
    T=st.integers(1, 100),
    B=st.integers(1, 8),
    h0=st.booleans(),
    is_batched=st.booleans(),
    trunc=st.one_of(st.none(), st.integers(1, 12)),
    seed=st.integers(0, 2**16),
)
def test_grads_equal_torch_modules(cell, V, H, L, T, B, h0, is_batched, trunc, seed):
    # keep the unrolled graph modest: the big corner is its own test below
    T = min(T, max(1, 4000 // (H * L * B)))
    model, x, y, s0, c0 = make(cell, V, H, L, T, B, seed=seed, h0=h0, batched=is_batched)
    check_against_module(model, x, y, s0, c0, trunc)


@pytest.mark.parametrize("cell", CELLS)
def test_largest_sizes_equal_torch(cell):
    """Hidden 64, length 100, batch 8, 3 layers, truncation and initial states at once."""
    model, x, y, s0, c0 = make(cell, 11, 64, 3, 100, 8, seed=7, h0=True)
    check_against_module(model, x, y, s0, c0, truncate=30)


@settings(max_examples=15, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    L=st.integers(1, 3),
    T=st.integers(1, 12),
    B=st.integers(1, 4),
    trunc=st.one_of(st.none(), st.integers(1, 5)),
    seed=st.integers(0, 2**16),
)
def test_every_state_gate_and_dh_equal_explicit_torch_loop(cell, L, T, B, trunc, seed):
    """Values of h_t, c_t and every gate; dL/dh_t and dL/dc_t (retain_grad) at every t."""
    model, x, y, s0, c0 = make(cell, 5, 6, L, T, B, seed=seed, h0=True)
    run = bptt(model, x, y, h0=s0, c0=c0, truncate=trunc)
    ref = loop_run(model, x, y, s0, c0, trunc)
    _, out, _ = module_run(model, x, y, s0, c0, trunc)
    assert rel(torch.stack(ref.h[L - 1][1:]).detach().numpy(), out) <= TOL  # the loop is torch's
    for k in range(L):
        for t in range(1, T + 1):
            assert rel(run.h(k, t).value, ref.h[k][t]) <= TOL
            assert rel(run.h(k, t).grad, ref.h[k][t].grad) <= TOL, (k, t)
            for gate, v in ref.gates[k][t - 1].items():
                assert rel(run.graph[f"t{t}.l{k}.{gate}"].value, v) <= TOL, gate
            if cell == "lstm":
                assert rel(run.c(k, t).value, ref.c[k][t]) <= TOL
                assert rel(run.c(k, t).grad, ref.c[k][t].grad) <= TOL, (k, t)
        for t in range(1, T + 1):
            assert rel(run.graph[f"t{t}.logits"].value, ref.logits[t]) <= TOL


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("floats", [False, True])
def test_many_to_one_equals_torch(cell, floats):
    """σ(head(h_T)) with BCE: O outputs, index or float inputs, 2 layers, truncation."""
    rng = np.random.default_rng(3)
    model, x, _, s0, c0 = make(cell, 4, 5, 2, 9, 3, seed=3, h0=True)
    if floats:
        model.params["rnn.weight_ih_l0"] = rng.normal(size=(model.config.gates * 5, 7))
        x = rng.normal(size=(3, 9, 7))
    model.params["head.weight"] = rng.normal(size=(2, 5))
    model.params["head.bias"] = rng.normal(size=2)
    y = rng.uniform(0, 1, size=(3, 2))
    run = check_against_module(model, x, y, s0, c0, truncate=4, mode="many_to_one")
    assert list(run.step_losses) == [9] and "t8.logits" not in run.graph


def test_many_to_one_with_relu_is_the_3_1_1_net():
    """T = 1, H = 1, O = 1, relu, h0 = 0: exactly mlp's 3:1:1 network (values and grads)."""
    v = mlp.DEFAULTS
    net = mlp.build(v)
    model = CharModel(ModelConfig("rnn", ("x1", "x2", "x3"), 1))
    model.params = {
        "rnn.weight_ih_l0": np.array(v["W1"]),
        "rnn.weight_hh_l0": np.array([[0.37]]),  # read by nothing when T = 1
        "rnn.bias_ih_l0": np.array(v["b1"]) - 0.25,
        "rnn.bias_hh_l0": np.array([0.25]),  # b1 = b_ih + b_hh
        "head.weight": np.array(v["W2"]),
        "head.bias": np.array(v["b2"]),
    }
    x = np.array(v["x"])[None]  # (T=1, I=3)
    run = check_against_module(model, x, np.array(v["y"]), None, None, None, "many_to_one", "relu")
    assert abs(float(run.loss.value) - net.loss) <= 1e-15
    g = run.grads()
    assert rel(g["rnn.weight_ih_l0"], net.graph["W1"].grad) <= 1e-14
    assert rel(g["rnn.bias_ih_l0"], net.graph["b1"].grad) <= 1e-14
    assert rel(g["head.weight"], net.graph["W2"].grad) <= 1e-14
    assert rel(g["head.bias"], net.graph["b2"].grad) <= 1e-14
    assert not g["rnn.weight_hh_l0"].any()


def test_relu_rnn_equals_torch():
    model, x, y, s0, _ = make("rnn", 6, 8, 2, 15, 3, seed=5, h0=True)
    check_against_module(model, x, y, s0, None, truncate=6, nonlinearity="relu")


@pytest.mark.parametrize("cell", CELLS)
def test_central_differences(cell):
    """Every parameter and initial state against (L(w + ε) − L(w − ε)) / 2ε. (Full BPTT:
    a truncated gradient is by design not the derivative of the loss; torch checks it.)"""
    model, x, y, s0, c0 = make(cell, 3, 3, 2, 5, 2, seed=11, h0=True)
    run = unroll(model, x, y, h0=s0, c0=c0)
    results = gradcheck(run.graph, run.loss)
    names = {r.id for r in results}
    assert set(model.params) | {"t0.l0.h", "t0.l1.h"} <= names
    assert cell != "lstm" or {"t0.l0.c", "t0.l1.c"} <= names
    for r in results:
        assert r.max_rel_error <= 1e-6, (r.id, r.max_rel_error)


def test_truncation_records_detach_nodes_and_stops_gradient():
    model, x, y, s0, c0 = make("lstm", 4, 3, 2, 7, 2, seed=2, h0=True)
    run = bptt(model, x, y, h0=s0, c0=c0, truncate=3)
    assert sorted(run.cuts) == [(3, 0), (3, 1), (6, 0), (6, 1)]
    cut = run.graph["t3.l0.h_detach"]
    assert cut.op == "detach" and cut.parents[0] is run.h(0, 3)
    assert run.graph["t4.l0.hw"].parents[0] is cut
    assert run.graph["t4.l0.fc"].parents[1] is run.graph["t3.l0.c_detach"]
    # what reached the cut did not flow on: h_3's gradient is its direct part alone
    head_part = run.graph.edge_grad(run.graph["t3.l1.xw"], run.h(0, 3))
    assert cut.grad is not None and np.abs(cut.grad).max() > 0
    assert rel(run.h(0, 3).grad, head_part) <= 1e-15
    # no truncation when K ≥ T
    assert not bptt(model, x, y, truncate=7).cuts


def test_unbatched_shapes_follow_torch():
    model, x, y, s0, c0 = make("lstm", 4, 3, 2, 5, 1, h0=True, batched=False)
    run = bptt(model, x, y, h0=s0, c0=c0)
    g = run.grads()
    assert g["h0"].shape == (2, 3) and g["c0"].shape == (2, 3)
    assert run.B == 1 and not run.batched
    assert run.graph["t1.x"].value.shape == (1,)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"inputs": np.array([], dtype=np.int64)}, "empty"),
        ({"inputs": np.array([0, 9])}, "indices must lie"),
        ({"targets": np.array([0, 1, 2])}, "shaped like the inputs"),
        ({"targets": np.array([0, -1])}, "target indices"),
        ({"h0": np.zeros((2, 3))}, "h0 must have shape"),
        ({"h0": np.full((1, 3), np.nan)}, "NaN"),
        ({"c0": np.zeros((1, 3))}, "c0 is for LSTM"),
        ({"truncate": 0}, "at least 1"),
        ({"mode": "seq2seq"}, "unknown mode"),
        ({"nonlinearity": "sigmoid"}, "nonlinearity"),
    ],
)
def test_user_errors_are_one_clear_line(kw, match):
    model = CharModel.init(ModelConfig("rnn", tuple("abc"), 3))
    args = {"inputs": np.array([0, 1]), "targets": np.array([1, 2]), **kw}
    with pytest.raises(UserError, match=match) as e:
        unroll(model, args.pop("inputs"), args.pop("targets"), **args)
    assert "\n" not in str(e.value)


def test_bad_weights_are_user_errors():
    model = CharModel.init(ModelConfig("gru", tuple("abc"), 3))
    x, y = np.array([0, 1]), np.array([1, 2])
    bad = dict(model.params)
    bad["rnn.weight_hh_l0"] = np.zeros((9, 4))
    with pytest.raises(UserError, match="weight_hh_l0 has shape"):
        unroll(CharModel(model.config, bad), x, y)
    bad = dict(model.params)
    bad["head.bias"] = np.array([0.0, np.nan, 0.0])
    with pytest.raises(UserError, match="NaN"):
        unroll(CharModel(model.config, bad), x, y)
    bad = dict(model.params)
    del bad["rnn.bias_hh_l0"]
    with pytest.raises(UserError, match="missing"):
        unroll(CharModel(model.config, bad), x, y)
