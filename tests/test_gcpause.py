"""The collector pause around a dissection: off inside, restored after, even on bad input."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from rnn_dissect.autograd.gcpause import paused_gc
from rnn_dissect.bptt.dissection import dissect
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig


def test_pause_restores_what_it_found() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # the caller's own choice is left alone
    finally:
        gc.enable()


def test_dissect_leaves_the_collector_on() -> None:
    model = CharModel.init(ModelConfig("gru", tuple("abc"), 3), seed=0)
    d = dissect(model, np.array([0, 1, 2]), np.array([1, 2, 0]), jacobians=False)
    assert gc.isenabled() and d.run.T == 3
    with pytest.raises(UserError):
        dissect(model, np.array([0, 1]), np.array([1, 2]), max_lag=0)
    assert gc.isenabled()
