"""The dissection's answers against PyTorch autograd (float64) and exact identities."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bptt import make
from torch_ref import layer_params, loop_run, rel, torch_step, tt

from rnn_dissect.autograd.engine import Kind
from rnn_dissect.bptt import dissection as dissect_module
from rnn_dissect.bptt.dissection import FORMAT, dissect, dissect_text
from rnn_dissect.bptt.gradflow import lag_matrices, lag_matrix, step_jacobian
from rnn_dissect.bptt.memory import forward_cache
from rnn_dissect.bptt.unroll import bptt
from rnn_dissect.bptt.verdict import MIN_PAIRS, MIN_STEPS, NOT_ENOUGH
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig

TOL = 1e-10
CELLS = ("rnn", "lstm", "gru")
CHEAP = dict(lag=False, jacobians=False)  # when a test is about something else


def hello(cell="rnn", **kw):
    model = CharModel.init(ModelConfig(cell, tuple("helo"), 3), seed=0)
    return dissect_text(model, "hello", **kw)


def test_docstring_example():
    assert doctest.testmod(dissect_module).failed == 0


@settings(max_examples=12, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    L=st.integers(1, 3),
    T=st.integers(1, 15),
    B=st.integers(1, 4),
    trunc=st.one_of(st.none(), st.integers(1, 6)),
    seed=st.integers(0, 2**16),
)
def test_step_grads_are_edge_grads_and_sum_to_total(cell, L, T, B, trunc, seed):
    model, x, y, s0, c0 = make(cell, 5, 4, L, T, B, seed=seed, h0=True)
    d = dissect(model, x, y, h0=s0, c0=c0, truncate=trunc, **CHEAP)
    g, terms = d.run.graph, d.step.contributions
    assert terms is not None
    for name, p in d.run.params.items():
        assert len(terms[name]) == T
        total = np.sum(terms[name], axis=0)
        assert rel(total, d.grads[name]) <= 1e-12, name
        for child in d.run.children(p):  # one reader per step: its edge is the step's term
            assert rel(terms[name][child.t - 1], g.edge_grad(child, p)) <= 1e-15
        norms = [np.linalg.norm(a) for a in terms[name]]
        assert rel(d.step.norms[name], norms) <= 1e-12
        if name.startswith("rnn."):
            G, H = model.config.gates, model.config.hidden_size
            for t in range(T):
                blocks = [np.linalg.norm(terms[name][t][k * H : (k + 1) * H]) for k in range(G)]
                assert rel(d.step.block_norms[name][t], blocks) <= 1e-12


def test_step_norms_without_keeping_the_terms():
    model, x, y, _, _ = make("gru", 5, 4, 2, 8, 3, seed=1)
    full = dissect(model, x, y, **CHEAP)
    light = dissect(model, x, y, step_grads=False, **CHEAP)
    assert light.step.contributions is None and light.to_dict()["step_grads"] is None
    for name in full.step.norms:
        assert np.array_equal(light.step.norms[name], full.step.norms[name])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("trunc", [None, 3])
def test_carry_matches_torch_and_its_identities(cell, trunc):
    """dh_t (torch retain_grad) = direct + carried; Q4's computed pre-activation grads."""
    model, x, y, s0, c0 = make(cell, 5, 4, 2, 8, 3, seed=4, h0=True)
    d = dissect(model, x, y, h0=s0, c0=c0, truncate=trunc, **CHEAP)
    ref = loop_run(model, x, y, s0, c0, trunc)
    g = d.run.graph
    for k, row in enumerate(d.carry):
        for c in row:
            t = c.t
            assert rel(c.dh, ref.h[k][t].grad) <= TOL
            assert rel(c.dh_direct + c.dh_next, c.dh) <= 1e-12
            reader = g[f"t{t}.l{k + 1}.xw"] if k + 1 < 2 else g[f"t{t}.logits"]
            assert rel(c.dh_direct, g.edge_grad(reader, d.run.h(k, t))) <= 1e-15
            if t == 8 or (trunc and t % trunc == 0):
                assert not c.dh_next.any()  # nothing arrives from after the end or a cut
            assert c.cut == bool(trunc and t % trunc == 0 and t < 8)
            if c.cut:
                assert rel(c.dh_cut, g[f"t{t}.l{k}.h_detach"].grad) == 0
            if cell == "rnn":
                h = d.run.h(k, t).value
                assert rel(c.computes["dh_raw"], (1 - h**2) * c.dh) <= 1e-12
            if cell == "lstm":
                assert rel(c.dc, ref.c[k][t].grad) <= TOL
                assert rel(c.computes["da_f"], g[f"t{t}.l{k}.a"].grad[:, 4:8]) == 0
                if t < 8 and not c.cut:  # the carousel: dc_next = f_{t+1} ⊙ dc_{t+1}
                    nxt = row[t]
                    f = g[f"t{t + 1}.l{k}.f"].value
                    assert rel(c.dc_next, f * nxt.dc) <= 1e-15
            if cell == "gru":
                assert set(c.computes) == {"da_r", "da_z", "da_n"}
                assert rel(c.computes["da_n"], g[f"t{t}.l{k}.a_n"].grad) == 0


def torch_lag(ref, T: int, top: int) -> np.ndarray:
    lag = np.zeros((T, T))
    hs = ref.h[top][1:]
    for tp, Lt in ref.step_losses.items():
        grads = torch.autograd.grad(Lt, hs, retain_graph=True, allow_unused=True)
        lag[tp - 1] = [0.0 if gr is None else float(gr.norm()) for gr in grads]
    return lag


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    ("trunc", "mode"), [(None, "many_to_many"), (4, "many_to_many"), (None, "many_to_one")]
)
def test_lag_matrix_equals_torch(cell, trunc, mode):
    """lag[t'][t] = ‖∂L_t'/∂h_t‖ (last layer) from torch.autograd.grad of each L_t'."""
    model, x, y, s0, c0 = make(cell, 4, 5, 2, 10, 3, seed=8, h0=True)
    if mode == "many_to_one":
        rng = np.random.default_rng(0)
        model.params["head.weight"] = rng.normal(size=(2, 5))
        model.params["head.bias"] = rng.normal(size=2)
        y = rng.uniform(size=(3, 2))
    run = bptt(model, x, y, h0=s0, c0=c0, truncate=trunc, mode=mode)
    ours = lag_matrix(run)
    ref = torch_lag(loop_run(model, x, y, s0, c0, trunc, mode), 10, 1)
    assert rel(ours, ref) <= TOL
    assert not np.triu(ours, 1).any()
    assert (mode == "many_to_one") == (not ours[:-1].any())
    # capped: the same numbers where computed, NaN beyond
    capped = lag_matrix(run, max_lag=3)
    far = np.subtract.outer(np.arange(10), np.arange(10)) >= 3
    assert np.isnan(capped[far]).all() and np.array_equal(capped[~far], ours[~far])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(("trunc", "mode"), [(None, "many_to_many"), (3, "many_to_many"),
                                             (None, "many_to_one")])  # fmt: skip
def test_every_layers_lag_matrix_equals_torch(cell, trunc, mode):
    """lag^k[t'][t] = ‖∂L_t'/∂h^k_t‖ for both layers of a 2-layer LSTM / GRU, from
    torch.autograd.grad of each L_t' (the lower layer's gradient comes through time and up
    the stack); the dissection keeps them per layer and top-level ``lag`` is the top's."""
    model, x, y, s0, c0 = make(cell, 4, 5, 2, 9, 2, seed=21, h0=True)
    if mode == "many_to_one":
        rng = np.random.default_rng(1)
        model.params["head.weight"] = rng.normal(size=(2, 5))
        model.params["head.bias"] = rng.normal(size=2)
        y = rng.uniform(size=(2, 2))
    ref = loop_run(model, x, y, s0, c0, trunc, mode)
    ours = lag_matrices(bptt(model, x, y, h0=s0, c0=c0, truncate=trunc, mode=mode))
    d = dissect(model, x, y, h0=s0, c0=c0, truncate=trunc, mode=mode, max_lag=4)
    for k in range(2):
        want = torch_lag(ref, 9, k)
        assert rel(ours[k], want) <= TOL, k
        assert ours[k][-1, :-1].any() and not np.triu(ours[k], 1).any()
        far = np.subtract.outer(np.arange(9), np.arange(9)) >= 4
        got = d.flow.layers[k].lag
        assert np.isnan(got[far]).all() and rel(got[~far], want[~far]) <= TOL
    assert d.flow.lag is d.flow.layers[1].lag
    doc = json.loads(d.to_json())
    lower = np.array(doc["flow"]["layers"][0]["lag"], dtype=float)  # NaN written as null
    assert np.array_equal(np.isnan(lower), far) and rel(lower[~far], ours[0][~far]) <= TOL


def test_lag_diagonal_is_the_direct_part_and_rows_sum_to_dh():
    model, x, y, s0, _ = make("rnn", 4, 5, 1, 6, 1, seed=9, h0=True, batched=False)
    d = dissect(model, x, y, h0=s0)
    lag = d.flow.lag
    for c in d.carry[0]:
        assert abs(lag[c.t - 1, c.t - 1] - np.linalg.norm(c.dh_direct)) <= 1e-15
    # triangle inequality: ‖Σ_t' ∂L_t'/∂h_t‖ = ‖dh_t‖ ≤ Σ_t' lag[t'][t]
    assert all(np.linalg.norm(c.dh) <= lag[:, c.t - 1].sum() + 1e-15 for c in d.carry[0])


def torch_jacobian(model, cell, k, x_in, h_prev, c_prev):
    """∂s_t/∂s_{t-1} of one example via torch.autograd.functional.jacobian."""
    p = layer_params(model, k)
    H = h_prev.shape[0]

    def f(s):
        h, c = s[:H], (s[H:] if cell == "lstm" else None)
        h2, c2, _ = torch_step(cell, p, tt(x_in)[None], h[None], None if c is None else c[None])
        return torch.cat([h2[0], c2[0]]) if cell == "lstm" else h2[0]

    s0 = np.concatenate([h_prev, c_prev]) if cell == "lstm" else h_prev
    return torch.autograd.functional.jacobian(f, tt(s0)).numpy()


@pytest.mark.parametrize("cell", CELLS)
def test_step_jacobians_and_spectra_equal_torch(cell):
    model, x, y, s0, c0 = make(cell, 4, 5, 2, 6, 2, seed=12, h0=True)
    d = dissect(model, x, y, h0=s0, c0=c0, keep_jacobians=True, truncate=4)
    run, H = d.run, 5
    for k in range(2):
        lf = d.flow.layers[k]
        for t in range(1, 7):
            J = step_jacobian(run, k, t)
            for b in range(2):
                x_in = np.eye(4)[x[b, t - 1]] if k == 0 else run.h(k - 1, t).value[b]
                c_prev = run.c(k, t - 1).value[b] if cell == "lstm" else None
                ref = torch_jacobian(model, cell, k, x_in, run.h(k, t - 1).value[b], c_prev)
                assert rel(J[b], ref) <= TOL, (k, t, b)
            ref0 = torch_jacobian(
                model,
                cell,
                k,
                np.eye(4)[x[0, t - 1]] if k == 0 else run.h(k - 1, t).value[0],
                run.h(k, t - 1).value[0],
                run.c(k, t - 1).value[0] if cell == "lstm" else None,
            )
            assert rel(lf.jacobians[t - 1], ref0[:H, :H]) <= TOL
            assert (
                rel(lf.singular_values[t - 1], np.linalg.svd(ref0[:H, :H], compute_uv=False)) <= TOL
            )
            if cell == "lstm":
                assert (
                    rel(lf.state_singular_values[t - 1], np.linalg.svd(ref0, compute_uv=False))
                    <= TOL
                )
                assert rel(ref0[H:, H:], np.diag(run.graph[f"t{t}.l{k}.f"].value[0])) <= 1e-15


def test_rnn_jacobian_is_diag_times_w_hh():
    d = hello(keep_jacobians=True)
    W = d.run.params["rnn.weight_hh_l0"].value
    for t, J in enumerate(d.flow.layers[0].jacobians, start=1):
        h = d.run.h(0, t).value[0]
        assert rel(J, np.diag(1 - h**2) @ W) <= 1e-15


def flat_rnn(scale: float, T: int = 12, layers: int = 1, **kw):
    """Zero input weights and biases, h0 = 0: h_t = 0, so ∂h_t/∂h_{t-1} = scale · I exactly.
    A second layer reads the first through W_ih = I and has no recurrence (W_hh = 0)."""
    model = CharModel.init(ModelConfig("rnn", tuple("abc"), 4, layers), seed=0)
    for k, v in model.params.items():
        if k.startswith("rnn."):
            model.params[k] = np.zeros_like(v)
    model.params["rnn.weight_hh_l0"] = scale * np.eye(4)
    if layers == 2:
        model.params["rnn.weight_ih_l1"] = np.eye(4)
    x = np.arange(T) % 3
    return dissect(model, x, (x + 1) % 3, **kw)


@pytest.mark.parametrize(
    ("scale", "label"), [(0.2, "vanishing"), (1.0, "stable"), (3.0, "exploding")]
)
def test_verdict_reads_the_evidence(scale, label):
    d = flat_rnn(scale)
    v = d.flow.layers[0].verdict
    assert v.label == label and v.reason.startswith(label)
    assert v.spectral_geomean == pytest.approx(scale, rel=1e-12)
    assert v.decay_per_step == pytest.approx(scale, rel=1e-9)
    # every loss term t' = 1..12 and every step back: Σ (t' − 1) pairs, up to 11 back
    assert (v.looked_back, v.pairs, v.loss_terms, v.chunks) == (11, 66, 12, 1)
    assert "66 (t', t) pairs from 12 loss terms, up to 11 steps back" in v.reason
    # ‖∂L_T/∂h_t‖ = scale^(T−t) ‖∂L_T/∂h_T‖: 0.2⁴ = 1.6e-3, 0.2⁵ = 3.2e-4 → reach 5
    assert v.reach == (5 if scale == 0.2 else None)
    assert f"; 11 steps back it is {scale**11 / max(1.0, scale**11):.2g} of it" in v.reason
    assert v.bound.startswith("bound: ") and "(geometric mean over 12 steps)" in v.bound


def test_truncation_pools_every_chunk_and_short_evidence_gets_no_label():
    d = flat_rnn(0.5, T=24, truncate=6)  # 4 chunks of 6: 5 steps back in each
    v = d.flow.layers[0].verdict
    assert v.label == "vanishing" and v.decay_per_step == pytest.approx(0.5, rel=1e-9)
    assert (v.looked_back, v.chunks, v.loss_terms, v.pairs) == (5, 4, 24, 4 * 15)
    assert "in 4 truncation chunks" in v.reason
    # L_T (t' = 24) reaches back to the cut only, 5 steps, where it is 0.5⁵ = 0.031 of its peak
    assert v.reach is None
    assert (
        "L_T's own gradient reaches only 5 steps back (truncated BPTT: no gradient crosses the "
        "cut every 6 steps), and stays above 0.001 of its largest value there; 5 steps back it "
        "is 0.031 of it" in v.reason
    )
    for kw, back in ((dict(truncate=5), 4), (dict(max_lag=5), 4), (dict(T=5), 4)):
        v = flat_rnn(3.0, **{"T": 24, **kw}).flow.layers[0].verdict
        if "max_lag" in kw:  # said in words both a CLI and a Python user read (not "--max-lag")
            assert "up to 4 steps back (max lag 5: only lags t' − t < 5 measured)" in v.reason
        assert v.label == NOT_ENOUGH and v.decay_per_step is None and v.looked_back == back
        assert v.reason.startswith(f"{NOT_ENOUGH}: the gradient was measured over ")
        assert f"a label needs at least {MIN_STEPS} steps back and {MIN_PAIRS} pairs" in v.reason
        assert v.bound.startswith("bound: ")  # the bound is still said, on its own line
    one = flat_rnn(0.5, T=2).flow.layers[0].verdict  # "1 step", never "1 steps"
    assert "up to 1 step back" in one.reason and "1 steps" not in one.reason
    assert one.pairs == 1 and one.label == NOT_ENOUGH


def test_each_layer_gets_its_own_measured_verdict():
    """Layer 0 carries the gradient back (W_hh = 0.5 I); layer 1 has no recurrence, so
    nothing reaches back through it: ‖∂L_t'/∂h¹_t‖ = 0 for t < t' exactly."""
    d = flat_rnn(0.5, T=12, layers=2)
    v0, v1 = (lf.verdict for lf in d.flow.layers)
    assert v0.label == "vanishing" and v0.decay_per_step == pytest.approx(0.5, rel=1e-9)
    assert v1.label == "vanishing" and v1.decay_per_step < 1e-10 and v1.pairs == 66
    assert v1.reach == 1 and np.all(d.flow.layers[1].lag[np.tril_indices(12, -1)] == 0)
    doc = json.loads(d.to_json())["flow"]["layers"]
    assert [lf["verdict"]["label"] for lf in doc] == ["vanishing", "vanishing"]
    assert {"reason", "bound", "pairs", "looked_back", "loss_terms", "chunks"} <= set(
        doc[0]["verdict"]
    )


def test_verdict_without_lag_is_not_measured_and_keeps_the_bound():
    model, x, y, _, _ = make("gru", 4, 5, 2, 12, 1, seed=1)
    d = dissect(model, x, y, truncate=5, lag=False)
    for lf in d.flow.layers:
        assert lf.verdict.label == "not measured" and lf.lag is None
        assert lf.verdict.bound.startswith("bound: the step Jacobians' largest singular values")
    one = dissect_text(CharModel.init(ModelConfig("rnn", tuple("ab"), 2)), "ab")
    assert one.flow.layers[0].verdict.label == NOT_ENOUGH


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
@pytest.mark.parametrize("clip", [None, 1e-3, 1e3])
def test_update_equals_torch_optim(optimizer, clip):
    model, x, y, s0, c0 = make("lstm", 5, 4, 2, 6, 2, seed=6, h0=True)
    d = dissect(model, x, y, h0=s0, c0=c0, lr=0.05, optimizer=optimizer, clip=clip, **CHEAP)
    params = {k: tt(v, grad=True) for k, v in model.params.items()}
    for k, p in params.items():
        p.grad = tt(d.grads[k])
    if clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
        assert abs(float(norm) - d.update.grad_norm) <= 1e-12 * float(norm)
    opt = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}[optimizer]
    opt(list(params.values()), lr=0.05).step()
    for k, p in params.items():
        assert rel(d.update.delta[k], p.detach().numpy() - model.params[k]) <= 1e-9, k
    assert (d.update.clip_coef < 1) == (clip == 1e-3)


@settings(max_examples=20, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    L=st.integers(1, 3),
    T=st.integers(1, 9),
    B=st.integers(1, 3),
    trunc=st.one_of(st.none(), st.integers(1, 4)),
    mode=st.sampled_from(["many_to_many", "many_to_one"]),
    floats=st.booleans(),
)
def test_cache_measured_equals_formula(cell, L, T, B, trunc, mode, floats):
    model, x, y, _, _ = make(cell, 4, 3, L, T, B)
    if floats:
        model.params["rnn.weight_ih_l0"] = np.ones((model.config.gates * 3, 2))
        x = np.ones((B, T, 2))
    if mode == "many_to_one":
        y = np.full((B, 4), 0.5)
    mem = forward_cache(bptt(model, x, y, truncate=trunc, mode=mode))
    assert mem.measured_bytes == mem.formula_bytes == sum(e.bytes for e in mem.entries)
    assert len({e.name for e in mem.entries}) == len(mem.entries)


def test_hello_cache_is_what_min_char_rnn_keeps():
    """x_t, h_{t-1} (h0 once), h_t, p_t, y_t — and nothing else but L's 1/T."""
    d = hello(**CHEAP)
    names = [e.name for e in d.memory.entries]
    want = ["t1.x", "t0.l0.h", "t1.l0.h", "t1.loss.p", "t1.y"]
    for t in (2, 3, 4):
        want += [f"t{t}.x", f"t{t}.l0.h", f"t{t}.loss.p", f"t{t}.y"]
    assert names == [*want, "loss_sum", "loss_scale"]
    h1 = d.memory.entries[2]
    # tanh's backward reads its own output, so h_1 is read by three backward steps
    assert (h1.shape, h1.bytes, h1.t) == ((1, 3), 24, 1)
    assert h1.saved_by == ("t1.l0.h", "t1.logits", "t2.l0.hw")
    assert d.memory.measured_bytes == 4 * (8 + 24 + 32 + 8) + 24 + 16


def test_json_is_deterministic_and_has_the_contract():
    a, b = hello("lstm"), hello("lstm")
    assert a.to_json() == b.to_json()
    doc = json.loads(a.to_json(nodes=True))
    assert doc["format"] == FORMAT
    for key in ("loss", "grads", "step_grads", "dh", "dc", "lag", "cache", "frames"):
        assert key in doc, key
    assert set(doc["grads"]) == set(a.run.params) | {"h0", "c0"}
    assert np.array(doc["grads"]["h0"]).shape == (1, 3)  # unbatched: (L, H)
    for name, terms in doc["step_grads"].items():
        assert len(terms) == 4
        assert rel(np.sum(terms, axis=0), np.array(doc["grads"][name])) <= 1e-12
    assert np.array(doc["dh"]).shape == (1, 4, 3) and np.array(doc["dc"]).shape == (1, 4, 3)
    assert np.array(doc["h"]).shape == np.array(doc["c"]).shape == (1, 4, 3)
    assert [list(gt) for gt in doc["gates"][0]] == [["i", "f", "g", "o"]] * 4
    assert doc["gates"][0][2]["f"] == a.run.graph["t3.l0.f"].value[0].tolist()
    lag = np.array(doc["lag"])
    assert lag.shape == (4, 4) and not np.triu(lag, 1).any()
    assert {c["name"] for c in doc["cache"]} >= {"t1.x", "t0.l0.h", "t0.l0.c", "t1.l0.f"}
    assert all(set(c) >= {"name", "shape", "bytes", "t"} for c in doc["cache"])
    assert len(doc["nodes"]) == len(a.run.graph)
    assert doc["loss"] == pytest.approx(a.loss) and doc["flow"]["layers"][0]["verdict"]["label"]


def test_frames_walk_forward_then_backward():
    d = hello("gru", truncate=2)
    frames, g = d.frames, d.run.graph
    fwd = [f for f in frames if f["phase"] == "forward"]
    bwd = [f for f in frames if f["phase"] == "backward"]
    assert len(fwd) == len(bwd) == 2 * 4 + 1  # cell + head per step, then the total loss
    assert [(f["part"], f["t"]) for f in fwd[:3]] == [("cell", 1), ("head", 1), ("cell", 2)]
    assert [(f["part"], f["t"]) for f in bwd[:3]] == [("loss", None), ("head", 4), ("cell", 4)]
    computed = [n for f in fwd for n in f["computed"]]
    assert sorted(computed) == sorted(n.id for n in g if n.op != "leaf")  # each once
    assert sorted(n for f in bwd for n in f["computed"]) == sorted(computed)
    cell3 = next(f for f in bwd if f["part"] == "cell" and f["t"] == 3)
    assert cell3["cut"] and cell3["carries"] == ["t2.l0.h_detach"]
    cell2 = next(f for f in bwd if f["part"] == "cell" and f["t"] == 2)
    assert not cell2["cut"] and cell2["carries"] == ["t1.l0.h"]
    # gradient arrives at h_2 (from the head) and at the cut after it (and stops there)
    assert cell2["reads"] == ["t2.l0.h", "t2.l0.h_detach"]
    assert "t1.l0.h" in cell2["cache"] and "t2.l0.r" in cell2["cache"]
    assert cell2["params"] == [
        "rnn.weight_ih_l0",
        "rnn.bias_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_hh_l0",
    ]
    f1 = fwd[0]
    assert f1["reads"] == ["t1.x", "t0.l0.h"] and f1["carries"] == ["t1.l0.h"]
    for f in frames:
        for key in ("computed", "reads", "carries", "params"):
            assert all(n in g for n in f[key])
        assert all(n in {e.name for e in d.memory.entries} for n in f["cache"])


def test_dissection_arrays_are_torch_shaped_and_kinds_right():
    model, x, y, s0, c0 = make("lstm", 4, 3, 2, 5, 2, seed=0, h0=True)
    d = dissect(model, x, y, h0=s0, c0=c0, **CHEAP)
    assert d.grads["c0"].shape == (2, 2, 3) and np.array(d.dh).shape == (2, 5, 2, 3)
    assert d.run.graph["t0.l1.c"].kind == Kind.STATE and d.run.graph["loss"].t is None


def test_text_errors():
    model = CharModel.init(ModelConfig("rnn", tuple("helo"), 3))
    for text, match in [
        ("h", "at least two characters"),
        ("", "at least two"),
        ("hex", "not in the model"),
    ]:
        with pytest.raises(UserError, match=match):
            dissect_text(model, text)
    with pytest.raises(UserError, match="optimizer"):
        dissect_text(model, "hello", optimizer="adam")
    with pytest.raises(UserError, match="max-lag"):
        dissect_text(model, "hello", max_lag=0)
