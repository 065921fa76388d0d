"""The time budget alone (train/budget.py), driven by a fake clock: simulated steps whose
duration drifts, validations with a cost, and the trainer's 10% overrun cap."""

from __future__ import annotations

import doctest
from dataclasses import replace

import pytest

from rnn_dissect.nets import forward, ids
from rnn_dissect.train import budget
from rnn_dissect.train.budget import Budget
from rnn_dissect.train.config import TrainConfig, lr_at

BUDGET = 300.0  # the default 5-minute run


def simulate(step_time, *, decay_frac=0.25, warmup=20, eval_every=100, val_cost=2.0):
    """Run the budget as the trainer does; returns (end time, final sizing, sizings)."""
    t = [0.0]
    vals: list[float] = []

    def validate() -> float:
        t[0] += val_cost
        vals.append(val_cost)
        return 1.0

    b = Budget(BUDGET, warmup, decay_frac, eval_every, lambda: t[0], vals)
    steps, k, sizings = b.calib, 0, []
    while k < steps:
        b.step_started()
        t[0] += step_time(t[0])
        k += 1
        sizing, val = b.after_step(k, validate)
        if sizing:
            sizings.append(sizing)
            steps = sizing.steps
        if val is None and k % eval_every == 0:
            validate()
        if t[0] >= 1.1 * BUDGET:  # the trainer's cap
            break
    return t[0], k, sizings


def test_a_steady_machine_ends_on_time_with_one_final_sizing():
    end, k, sizings = simulate(lambda t: 0.1)
    final = sizings[-1]
    assert k == final.steps and final.final and [s.final for s in sizings].count(True) == 1
    assert 0.97 * BUDGET <= end <= 1.01 * BUDGET
    assert final.decay_start == final.steps - round(0.25 * final.steps)
    assert all(s.decay_start == s.steps for s in sizings[:-1])  # provisional: no decay yet


@pytest.mark.parametrize("decay_frac", [0.25, 0.5])
def test_a_machine_that_slows_then_speeds_up_still_fills_its_budget(decay_frac):
    """Warm-up at 100 ms/step, 3× slower from 20 s to 120 s, then 4× faster than at the start:
    sized once from the warm-up the run would end far from its budget; re-measured while the
    rate is at its peak it ends within 3% of it."""

    def drift(t: float) -> float:
        return 0.1 if t < 20 else 0.3 if t < 120 else 0.025

    end, k, sizings = simulate(drift, decay_frac=decay_frac)
    assert 0.97 * BUDGET <= end <= 1.03 * BUDGET, (end, sizings[-1])
    assert k == sizings[-1].steps and sizings[-1].final
    first = sizings[0].steps  # what the warm-up alone predicted
    assert abs(first - k) > 0.3 * k  # the drift mattered
    assert all(s.decay_start == s.steps for s in sizings[:-1])  # the peak held until the last


def test_each_sizing_happens_before_its_own_decay_starts():
    """No sizing ever changes N after the cosine began: the lr of every step taken, under the
    (N, K) the run held at that step, equals lr_at(final N, final K) — what makes
    ``--steps N --decay-start K`` a bit-for-bit repeat."""
    t = [0.0]
    b = Budget(BUDGET, 20, 0.25, 100, lambda: t[0], [])
    cfg = replace(TrainConfig(), warmup=20, schedule="cosine")
    N, K = b.calib, b.calib  # before the first sizing the peak lr is held
    taken: list[float] = []
    k = 0
    while k < N:
        taken.append(lr_at(replace(cfg, steps=N, decay_start=K), k))
        b.step_started()
        t[0] += 0.05 if (k // 500) % 2 else 0.15  # alternating load
        k += 1
        sizing, _ = b.after_step(k, lambda: None)
        if sizing:
            N, K = sizing.steps, sizing.decay_start
    assert b.sizing is not None and b.sizing.final and k == b.sizing.steps == N
    final = replace(cfg, steps=N, decay_start=K)
    assert K < N and len({round(x, 12) for x in taken[K:]}) > 100  # a real decay was walked
    assert taken == [lr_at(final, i) for i in range(N)]


def test_a_run_far_faster_than_measured_resizes_before_it_runs_out_of_steps():
    end, _, sizings = simulate(lambda t: 1.0 if t < 25 else 0.01, warmup=5)
    assert 0.97 * BUDGET <= end <= 1.03 * BUDGET
    assert len(sizings) > 2


def test_docstring_examples():
    """budget's, and those of nets.ids and nets.forward (outside tests/, so run here)."""
    for module in (budget, ids, forward):
        assert doctest.testmod(module).failed == 0, module.__name__
