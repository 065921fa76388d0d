"""The fast kernels against PyTorch autograd: loss, every gradient, final state.

float64 to 1e-10 relative error (the kernels are exact up to summation order);
float32 against the same float64 oracle to a float32 tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_dissect.nets.model import ModelConfig, init_params
from rnn_dissect.train.kernels import KERNELS, Workspace, dropout_masks

TORCH_CELLS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def assert_same_run(got: tuple, want: tuple) -> None:
    """Two float32 runs of a kernel — (loss, grads, final state, logits) — agree to float32
    rounding (loss 1e-6, the rest 1e-5 relative to the largest entry)."""
    (l1, g1, s1, z1), (l0, g0, s0, z0) = got, want
    assert abs(l0 - l1) <= 1e-6 * abs(l0)
    assert g1.keys() == g0.keys()
    for k in g0:
        assert rel(g1[k], g0[k]) <= 1e-5, k
    for a, b in zip(s0, s1, strict=True):
        assert rel(b, a) <= 1e-5
    assert rel(z1, z0) <= 1e-5


def make(cell: str, V: int, H: int, L: int, B: int, T: int, seed: int, dtype=np.float64):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell, tuple(chr(65 + i) for i in range(V)), H, L)
    params = init_params(cfg, rng, dtype)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))
    n_state = 2 if cell == "lstm" else 1
    state0 = tuple(rng.standard_normal((L, B, H)).astype(dtype) * 0.5 for _ in range(n_state))
    return params, x, y, state0


def torch_run(cell, params, x, y, state0, masks=None):
    """Oracle: nn.RNN/LSTM/GRU + nn.Linear in float64 autograd. With ``masks`` (one (T, B, H)
    per layer but the last), a loop of one-layer modules multiplies each layer's output by
    its mask — what ``nn.LSTM(dropout=p)`` does with those masks."""
    V = params["head.weight"].shape[0]
    H = params["rnn.weight_hh_l0"].shape[1]
    L = sum(1 for k in params if k.startswith("rnn.weight_hh_l"))
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    inp = torch.nn.functional.one_hot(torch.tensor(x), V).to(torch.float64)  # (B, T, V)
    finals = []
    for k in range(L):
        mod = TORCH_CELLS[cell](inp.shape[-1], H, batch_first=True, dtype=torch.float64)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for n in names:
            delattr(mod, f"{n}_l0")
            setattr(mod, f"{n}_l0", tp[f"rnn.{n}_l{k}"])
        s0 = tuple(torch.tensor(s[k : k + 1]) for s in state0)
        out, sT = mod(inp, s0 if cell == "lstm" else s0[0])
        finals.append(sT if cell == "lstm" else (sT,))
        if masks is not None and k < L - 1:
            out = out * torch.tensor(masks[k].transpose(1, 0, 2))
        inp = out
    logits = inp @ tp["head.weight"].T + tp["head.bias"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(y).reshape(-1))
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in tp.items()}
    state = tuple(torch.cat([f[j] for f in finals]).detach().numpy() for j in range(len(finals[0])))
    return float(loss.detach()), grads, state, logits.detach().numpy()


def check(cell, params, x, y, state0, tol, dropout=0.0, seed=0, backend=None):
    """The kernel (with ``backend``; None: plain numpy) against :func:`torch_run`."""
    masks = None
    if dropout > 0:
        L = sum(1 for k in params if k.startswith("rnn.weight_hh_l"))
        B, T = x.shape
        H = params["rnn.weight_hh_l0"].shape[1]
        masks = dropout_masks(np.random.default_rng(seed), dropout, L - 1, T, B, H, np.float64)
    rng = np.random.default_rng(seed)
    loss, grads, state = KERNELS[cell].forward_backward(
        params, x, y, state0, dropout=dropout, rng=rng, backend=backend
    )
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    s64 = tuple(s.astype(np.float64) for s in state0)
    t_loss, t_grads, t_state, t_logits = torch_run(cell, p64, x, y, s64, masks)
    assert abs(loss - t_loss) <= tol * abs(t_loss)
    assert set(grads) == set(params)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == params[k].dtype, k
        assert rel(grads[k], t_grads[k]) <= tol, (k, rel(grads[k], t_grads[k]))
    for ours, theirs in zip(state, t_state, strict=True):
        assert rel(ours, theirs) <= tol
    if dropout == 0:
        logits, fstate = KERNELS[cell].forward(params, x, state0, backend=backend)
        assert rel(logits, t_logits) <= tol
        for ours, theirs in zip(fstate, t_state, strict=True):
            assert rel(ours, theirs) <= tol


@settings(max_examples=12, deadline=None)
@given(
    cell=st.sampled_from(["rnn", "lstm", "gru"]),
    L=st.integers(1, 3),
    H=st.integers(1, 64),
    B=st.integers(1, 8),
    T=st.integers(1, 50),
    V=st.integers(2, 30),
    seed=st.integers(0, 2**31),
)
def test_float64_matches_torch(cell, L, H, B, T, V, seed):
    check(cell, *make(cell, V, H, L, B, T, seed), tol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("L,H,B,T", [(1, 64, 8, 50), (3, 17, 3, 9), (2, 33, 1, 1)])
def test_float64_fixed_configs(cell, L, H, B, T):
    check(cell, *make(cell, 11, H, L, B, T, seed=L * 100 + H), tol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_per_step_gather_path(cell, monkeypatch):
    """Large inputs gather layer 0's rows one step at a time; same numbers."""
    from rnn_dissect.train.kernels import workspace as layout

    monkeypatch.setattr(layout, "GATHER_ALL_MAX_BYTES", 0)
    check(cell, *make(cell, 13, 24, 2, 5, 17, seed=9), tol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dropout_mask_matches_torch_loop(cell):
    params, x, y, state0 = make(cell, 9, 16, 3, 4, 12, seed=5)
    check(cell, params, x, y, state0, tol=1e-10, dropout=0.3, seed=7)
    # and the masks really change something
    loss0, _, _ = KERNELS[cell].forward_backward(params, x, y, state0)
    loss1, _, _ = KERNELS[cell].forward_backward(
        params, x, y, state0, 0.3, np.random.default_rng(7)
    )
    assert loss0 != loss1


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_close_to_float64_oracle(cell):
    """float32 in plain numpy (the reference backend; the compiled passes and oneMKL are
    checked in test_fused and test_blas)."""
    params, x, y, state0 = make(cell, 20, 48, 2, 6, 30, seed=3, dtype=np.float32)
    check(cell, params, x, y, state0, tol=2e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_truncated_bptt_chunks_carry_state(cell):
    """Two chunks with the state handed over equal one forward over both (values), and the
    second chunk's gradients equal torch's with the handed-over state as a constant."""
    params, x, y, state0 = make(cell, 7, 10, 2, 3, 20, seed=11)
    ws = Workspace()  # reused across calls, as a training loop would
    _, _, mid = KERNELS[cell].forward_backward(params, x[:, :8], y[:, :8], state0, ws=ws)
    _, _, end = KERNELS[cell].forward_backward(params, x[:, 8:], y[:, 8:], mid, ws=ws)
    *_, t_end, _ = torch_run(cell, params, x, y, state0)
    for ours, theirs in zip(end, t_end, strict=True):
        assert rel(ours, theirs) <= 1e-10
    check(cell, params, x[:, 8:], y[:, 8:], mid, tol=1e-10)


def test_zero_initial_state_is_default():
    params, x, y, _ = make("lstm", 5, 6, 2, 2, 4, seed=1)
    zeros = (np.zeros((2, 2, 6)), np.zeros((2, 2, 6)))
    a = KERNELS["lstm"].forward_backward(params, x, y)
    b = KERNELS["lstm"].forward_backward(params, x, y, zeros)
    assert a[0] == b[0]
    assert all(np.array_equal(a[1][k], b[1][k]) for k in params)


def test_bad_indices_are_rejected():
    params, x, y, _ = make("rnn", 5, 6, 1, 2, 4, seed=1)
    with pytest.raises(ValueError, match="vocabulary"):
        KERNELS["rnn"].forward_backward(params, x + 5, y)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_do_not_alias_the_workspace(cell):
    """A training loop reuses one Workspace: the gradients a call returned must survive the
    next call (they are fresh arrays, not views of scratch buffers)."""
    params, x, y, state0 = make(cell, 7, 10, 2, 3, 6, seed=5)
    ws = Workspace()
    _, first, _ = KERNELS[cell].forward_backward(params, x, y, state0, ws=ws)
    kept = {k: v.copy() for k, v in first.items()}
    KERNELS[cell].forward_backward(params, y, x, None, ws=ws)  # different inputs, same ws
    for k in params:
        assert np.array_equal(first[k], kept[k]), k
        assert first[k].flags.c_contiguous, k
