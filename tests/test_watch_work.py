"""watch warns, in one line, before a replay that will be slow (rnn_dissect.watch.work)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rnn_dissect.watch import work as work_mod
from rnn_dissect.watch.call import Call
from rnn_dissect.watch.select import plan
from rnn_dissect.watch.work import SlowReplay, work


def big_call(B=64, T=2000, I=128, H=512, L=1, D=1):  # noqa: E741 — torch's names
    """A recorded call's shapes without its memory: zero-stride arrays (nothing is replayed)."""
    z = lambda *s: np.broadcast_to(np.zeros(()), s)  # noqa: E731
    weights = {"weight_ih_l0": z(4 * H, I), "weight_hh_l0": z(4 * H, H), "bias_ih_l0": z(4 * H),
               "bias_hh_l0": z(4 * H)}  # fmt: skip
    return Call("encoder#0", "lstm", "tanh", L, D, H, True, False, True, "float32", weights,
                x=z(B, T, I), lengths=np.full(B, T), h0=z(L * D, B, H), c0=z(L * D, B, H),
                g_out=z(B, T, D * H), g_hn=z(L * D, B, H), g_cn=z(L * D, B, H),
                arrived={"output"})  # fmt: skip


def test_the_estimate_counts_the_documented_terms():
    c = big_call(B=2, T=10, I=3, H=4)
    w = work(c, [(2, 10, 0, 10)])
    S = 8  # [h; c]
    assert w == {
        "cell steps": 10 * (work_mod.STEP_COST + 3 * 2 * 4 * 4 * (3 + 4)),
        "lag matrices": 10 * 10 * 2 * S * S,
        "Jacobian spectra": 2 * 10 * S**3,
    }
    assert work(c, [(2, 10, 0, 10)], max_lag=3)["lag matrices"] == 10 * 3 * 2 * S * S
    windowed = work(c, [(2, 10, 4, 6)], lag=False, jacobians=False)  # + the whole scratch replay
    assert windowed == {"cell steps": 12 * (work_mod.STEP_COST + 3 * 2 * 4 * 4 * 7),
                        "lag matrices": 0, "Jacobian spectra": 0}  # fmt: skip


@pytest.mark.parametrize(
    "flags, cure",
    [
        ({}, "max_lag=K or lag=False"),
        ({"lag": False}, "jacobians=False"),
        ({"lag": False, "jacobians": False}, "fewer sequences (batch=[0])"),
    ],
)
def test_a_huge_replay_warns_in_one_line_naming_the_cure(flags, cure):
    with pytest.warns(SlowReplay) as seen:
        plan(big_call(), max_bytes=None, **flags)
    (w,) = seen
    text = str(w.message)
    assert "\n" not in text and text.startswith("encoder#0: this replay will be slow, about ")
    assert cure in text and w.filename == __file__, (text, w.filename)


def test_a_small_replay_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan(big_call(B=4, T=50, I=8, H=64))


def test_a_real_watch_points_the_warning_at_the_users_line(monkeypatch):
    torch = pytest.importorskip("torch")
    from rnn_dissect import watch

    m = torch.nn.GRU(2, 3).double()
    with watch(m) as w:
        m(torch.randn(4, 1, 2, dtype=torch.float64))[0].sum().backward()
    monkeypatch.setattr(work_mod, "SLOW_WORK", 0)
    with pytest.warns(SlowReplay, match=r"^GRU#0: this replay will be slow, .* \(~0 s;") as seen:
        w.dissection()
    assert seen[0].filename == __file__
    with warnings.catch_warnings():  # the documented way to silence it
        warnings.simplefilter("ignore", SlowReplay)
        assert w.dissection().check(m) <= 1e-12
