"""The compiled float32 step passes (kernels/fused.py): their tanh against float64, and the
kernels run with them against the same kernels in numpy and against torch float64."""

from __future__ import annotations

import numpy as np
import pytest
from test_kernels import assert_same_run, check, make

from rnn_dissect.train.kernels import KERNELS, Backend, fused

pytestmark = pytest.mark.skipif(
    not fused.AVAILABLE,
    reason="numba does not import here (no wheel for this platform or Python): "
    "the kernels run their numpy passes only",
)

FUSED = Backend("numpy", fused=True)  # numpy's GEMMs: only the elementwise passes differ


def test_numba_is_there():
    """The compiled passes run for float32 only."""
    assert FUSED.passes(np.float32) and not FUSED.passes(np.float64)


def ulps(x32: np.ndarray, ref64: np.ndarray) -> np.ndarray:
    """|x − ref| in units of float32 spacing at ref."""
    spacing = np.spacing(np.abs(ref64).astype(np.float32)).astype(np.float64)
    return np.abs(x32.astype(np.float64) - ref64) / spacing


def test_tanh_within_a_few_ulp_of_float64_everywhere():
    x = np.linspace(-12, 12, 2_400_001, dtype=np.float32)
    x = x[x != 0]
    ref = np.tanh(x.astype(np.float64))
    got = fused.tanh(x)
    assert ulps(got, ref).max() <= 8  # numpy's float32 tanh: ~1.4
    tiny = np.float32([1e-30, -3e-8, 1e-4])  # tanh x = x to float32 precision
    assert ulps(fused.tanh(tiny), np.tanh(tiny.astype(np.float64))).max() <= 2
    assert np.all(np.abs(got) <= 1)
    assert np.array_equal(fused.tanh(-x), -got)  # odd, exactly


def test_tanh_passes_nan_and_saturates_at_infinity():
    out = fused.tanh(np.float32([np.nan, np.inf, -np.inf, 1e30, -1e30]))
    assert np.isnan(out[0])
    assert out[1:].tolist() == [1.0, -1.0, 1.0, -1.0]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fused_kernels_match_numpy_kernels(cell, monkeypatch):
    """Same loss, gradients and state as the numpy passes, to float32 rounding — two layers
    (layer 0's hidden states sit beside the one-hot columns), dropout, carried state."""
    params, x, y, state0 = make(cell, 11, 40, 2, 6, 25, seed=4, dtype=np.float32)
    calls: dict[str, int] = {}  # the compiled passes really ran (else this compares numpy to numpy)

    def counted(name: str):
        step = getattr(fused, name)

        def spy(*a):
            calls[name] = calls.get(name, 0) + 1
            return step(*a)

        return spy

    for name in (f"{cell}_forward_step", f"{cell}_backward_step"):
        monkeypatch.setattr(fused, name, counted(name))
    runs = {}
    for on in (False, True):
        bk = Backend("numpy", fused=on)
        if not on:
            assert not calls
        runs[on] = KERNELS[cell].forward_backward(
            params, x, y, state0, 0.25, np.random.default_rng(2), backend=bk
        )
        logits, _ = KERNELS[cell].forward(params, x, state0, backend=bk)
        runs[on] = (*runs[on], logits)
    # per step: forward in both layers (training, then the logits pass), backward in both
    assert calls == {f"{cell}_forward_step": 4 * 25, f"{cell}_backward_step": 2 * 25}
    assert_same_run(runs[True], runs[False])
    assert runs[False][1]["rnn.weight_hh_l0"].dtype == np.float32


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fused_float32_close_to_torch_float64(cell):
    params, x, y, state0 = make(cell, 20, 48, 2, 6, 30, seed=3, dtype=np.float32)
    check(cell, params, x, y, state0, tol=2e-5, backend=FUSED)


def test_nan_weights_give_a_nan_loss():
    """Training stops on a NaN loss; the compiled tanh must not clamp NaN into range."""
    params, x, y, state0 = make("lstm", 7, 16, 1, 3, 5, seed=1, dtype=np.float32)
    params["rnn.weight_hh_l0"][0, 0] = np.nan
    params["head.weight"][:] = 0.1  # a NaN can reach the loss only through the recurrence
    loss, _, _ = KERNELS["lstm"].forward_backward(params, x, y, state0, backend=FUSED)
    assert np.isnan(loss)


def test_whole_finds_the_buffer_and_refuses_strangers():
    buf = np.zeros((4, 3, 10), np.float32)
    assert fused.whole(buf[:, :, :6]) is buf
    assert fused.whole(buf) is buf
    with pytest.raises(ValueError, match="C-contiguous"):
        fused.whole(buf[:, :, 2:8])
