"""Optimizers and clipping against torch.optim / torch.nn.utils in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_dissect import optim

CASES = [
    ("sgd", torch.optim.SGD, {"lr": 0.1}),
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("adam", torch.optim.Adam, {}),
    (
        "adam",
        torch.optim.Adam,
        {"lr": 2e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
    ),
    ("adam", torch.optim.Adam, {"lr": 1e-2, "amsgrad": True}),
    ("adagrad", torch.optim.Adagrad, {"lr": 0.1}),
    (
        "adagrad",
        torch.optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
    ),
    ("rmsprop", torch.optim.RMSprop, {}),
    (
        "rmsprop",
        torch.optim.RMSprop,
        {"lr": 1e-3, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
    ),
]


def setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"rnn.weight_hh_l0": rng.standard_normal((6, 3)), "head.bias": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(6)]
    return params, grads


@pytest.mark.parametrize("name,torch_cls,kw", CASES)
def test_steps_match_torch(name, torch_cls, kw):
    params, grads = setup()
    tp = [torch.tensor(v, requires_grad=True) for v in params.values()]
    topt = torch_cls(tp, **kw)
    ours = {k: v.copy() for k, v in params.items()}
    opt = optim.OPTIMIZERS[name](ours, **kw)
    for k, g in enumerate(grads):
        lr = kw.get("lr", topt.defaults["lr"]) * (1.0 if k < 3 else 0.5)  # a schedule, too
        for group in topt.param_groups:
            group["lr"] = lr
        for t, gv in zip(tp, g.values(), strict=True):
            t.grad = torch.tensor(gv)
        topt.step()
        opt.step(ours, {n: v.copy() for n, v in g.items()}, lr)
        for t, v in zip(tp, ours.values(), strict=True):
            np.testing.assert_allclose(v, t.detach().numpy(), rtol=1e-12, atol=1e-14)
    # the state holds the same numbers as torch's
    tstate = topt.state[tp[0]]
    for key, val in tstate.items():
        if key != "step":
            np.testing.assert_allclose(
                opt.state[f"{key}.rnn.weight_hh_l0"], val.numpy(), rtol=1e-12
            )
    assert int(opt.state["step"]) == len(grads)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_state_dict_resume_is_bit_identical(name):
    params, grads = setup(1)
    straight = {k: v.copy() for k, v in params.items()}
    opt = optim.OPTIMIZERS[name](straight, lr=0.01)
    for g in grads:
        opt.step(straight, g)
    first = {k: v.copy() for k, v in params.items()}
    opt1 = optim.OPTIMIZERS[name](first, lr=0.01)
    for g in grads[:3]:
        opt1.step(first, g)
    saved = {k: v.copy() for k, v in opt1.state_dict().items()}
    opt2 = optim.OPTIMIZERS[name](first, lr=0.01)
    opt2.load_state_dict(saved)
    for g in grads[3:]:
        opt2.step(first, g)
    for k in params:
        assert np.array_equal(first[k], straight[k])


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    _, grads = setup(2)
    g = grads[0]
    ts = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in g.values()]
    for t, v in zip(ts, g.values(), strict=True):
        t.grad = torch.tensor(v)
    tn = torch.nn.utils.clip_grad_norm_(ts, max_norm)
    n = optim.clip_grad_norm(g, max_norm)
    assert abs(n - float(tn)) <= 1e-12 * float(tn)
    for t, v in zip(ts, g.values(), strict=True):
        np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-13)


def test_clip_grad_value_matches_torch():
    _, grads = setup(3)
    g = grads[0]
    ts = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in g.values()]
    for t, v in zip(ts, g.values(), strict=True):
        t.grad = torch.tensor(v)
    torch.nn.utils.clip_grad_value_(ts, 0.7)
    optim.clip_grad_value(g, 0.7)
    for t, v in zip(ts, g.values(), strict=True):
        assert np.array_equal(v, t.grad.numpy())


def test_float32_params_stay_float32():
    p = {"w": np.ones(3, np.float32)}
    for cls in optim.OPTIMIZERS.values():
        opt = cls(p)
        opt.step(p, {"w": np.full(3, 0.5, np.float32)}, 0.1)
        assert p["w"].dtype == np.float32
        assert all(v.dtype in (np.float32, np.int64) for v in opt.state_dict().values())
