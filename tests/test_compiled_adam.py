"""The compiled float32 Adam pass (train/kernels/adam.py) against torch.optim.Adam in float32
and against optim.Adam's numpy passes: same parameters, same state, same checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_dissect import optim
from rnn_dissect.train.kernels import adam, fused

pytestmark = pytest.mark.skipif(not fused.AVAILABLE, reason="numba does not import here")


def setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    shapes = {"rnn.weight_hh_l0": (40, 10), "rnn.bias_hh_l0": (40,), "head.weight": (7, 10)}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = [
        {
            k: (rng.standard_normal(s) * 10.0 ** rng.integers(-3, 2)).astype(np.float32)
            for k, s in shapes.items()
        }
        for _ in range(8)
    ]
    return params, grads


@pytest.mark.parametrize(
    "kw", [{}, {"lr": 2e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}]
)
def test_compiled_adam_matches_torch_float32(kw):
    params, grads = setup()
    tp = [torch.tensor(v, requires_grad=True) for v in params.values()]
    topt = torch.optim.Adam(tp, **kw)
    ours = {k: v.copy() for k, v in params.items()}
    ref = {k: v.copy() for k, v in params.items()}
    opt, ref_opt = optim.Adam(ours, **kw), optim.Adam(ref, **kw)
    assert adam.covers(opt)
    for k, g in enumerate(grads):
        lr = kw.get("lr", 1e-3) * (1.0 if k < 4 else 0.5)  # a schedule
        for group in topt.param_groups:
            group["lr"] = lr
        for t, gv in zip(tp, g.values(), strict=True):
            t.grad = torch.tensor(gv)
        topt.step()
        before = {n: v.copy() for n, v in g.items()}
        adam.step(opt, ours, g, lr)
        ref_opt.step(ref, {n: v.copy() for n, v in g.items()}, lr)
        for n in g:  # gradients are read, never written
            np.testing.assert_array_equal(g[n], before[n])
        for t, (n, v) in zip(tp, ours.items(), strict=True):
            assert v.dtype == np.float32
            np.testing.assert_allclose(v, t.detach().numpy(), rtol=2e-6, atol=1e-7, err_msg=n)
            np.testing.assert_allclose(v, ref[n], rtol=2e-6, atol=1e-7, err_msg=n)
    for key in ("exp_avg", "exp_avg_sq"):  # float32 rounding, relative to the slot's scale
        got, want = opt.state[f"{key}.rnn.weight_hh_l0"], topt.state[tp[0]][key].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    assert int(opt.state["step"]) == len(grads)
    # the state dict is the reference optimizer's: a checkpoint resumes either way
    assert sorted(opt.state_dict()) == sorted(ref_opt.state_dict())


@pytest.mark.parametrize(
    "make,dtype",
    [
        (lambda p: optim.Adam(p, amsgrad=True), np.float32),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), np.float32),
        (lambda p: optim.Adam(p), np.float64),
    ],
    ids=["amsgrad", "sgd", "float64"],
)
def test_what_the_compiled_pass_does_not_cover_goes_to_the_reference(make, dtype):
    """Same updates as the optimizer's own step — for amsgrad with shrinking gradients, which
    the compiled (plain Adam) pass would get wrong from the second step on."""
    params, grads = setup(1)
    a = {k: v.astype(dtype) for k, v in params.items()}
    b = {k: v.copy() for k, v in a.items()}
    oa, ob = make(a), make(b)
    assert not adam.covers(oa)
    for k, scale in enumerate((1.0, 0.1, 0.01)):
        g = {n: (v * scale).astype(dtype) for n, v in grads[k].items()}
        adam.step(oa, a, g, 0.01)
        ob.step(b, {n: v.copy() for n, v in g.items()}, 0.01)
    for n in a:
        assert not np.array_equal(a[n], params[n].astype(dtype))  # the step did something
        np.testing.assert_array_equal(a[n], b[n])


def test_non_contiguous_gradients_are_read_correctly():
    params, grads = setup(2)
    wide = {k: np.stack([v, np.zeros_like(v)], axis=-1)[..., 0] for k, v in grads[0].items()}
    assert not wide["head.weight"].flags.c_contiguous
    a = {k: v.copy() for k, v in params.items()}
    b = {k: v.copy() for k, v in params.items()}
    oa, ob = optim.Adam(a), optim.Adam(b)
    adam.step(oa, a, wide, 0.01)
    adam.step(ob, b, {k: v.copy() for k, v in grads[0].items()}, 0.01)
    for n in a:
        np.testing.assert_array_equal(a[n], b[n])
