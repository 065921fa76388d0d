"""What a replay will compute, estimated before it runs, and a warning when that is a lot.

Counted in multiply-adds, per layer-direction and group of G sequences (T_win the window's
steps, T_rec those plus the whole sequence once more when windowed — the scratch replay; H
the hidden size, P h's size (= H unless ``proj_size``), S the state size (H; LSTM P + H),
I the layer's input size, K gate blocks: RNN 1, LSTM 4, GRU 3):

    cell steps        T_rec · (C + 3·G·(K·H·(I + P) [+ P·H]))   forward, and backward ≈ 2×;
                      C = :data:`STEP_COST`: a step's Python (nodes, analyses) as multiply-adds
    lag matrices      T_win · min(T_win, max_lag) · G · S²    every loss term carried back
    Jacobian spectra  2 · T_win · S³                          the step Jacobians' SVDs

The lag matrices grow with T² and the spectra with S³: a long float64 replay of a wide model
spends its time there, and ``lag=False`` / ``max_lag=K`` / ``jacobians=False`` remove them.
Above :data:`SLOW_WORK` the replay warns once, in one line, with a time at :data:`RATE`
(:class:`SlowReplay`, a ``UserWarning``: ``warnings.simplefilter("ignore", SlowReplay)``
silences it). RATE and STEP_COST are rough: three replays (LSTM H 64 B 8 T 200, H 32 B 4
T 600, H 4 B 1 T 2000) ran at 0.6–5·10⁹ of these a second on one AMD EPYC core, ~0.6 ms a step.
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType

from rnn_dissect.watch.call import Call

__all__ = ["RATE", "SLOW_WORK", "STEP_COST", "SlowReplay", "warn_if_slow", "work"]

SLOW_WORK = 100_000_000_000  # multiply-adds above which a replay warns (~a minute at RATE)
RATE = 2e9  # multiply-adds a second, roughly, of a replay on one core (see the docstring)
STEP_COST = 1_000_000  # one recorded step of one part: Python's share, as multiply-adds
GATE_BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}


class SlowReplay(UserWarning):
    """A watch replay estimated above :data:`SLOW_WORK` multiply-adds."""


def work(
    call: Call,
    groups: list[tuple[int, int, int, int]],
    *,
    lag: bool = True,
    max_lag: int | None = None,
    jacobians: bool = True,
) -> dict[str, int]:
    """Multiply-adds of a replay of ``groups`` — (G, n, start, stop) each — by part of the work."""
    L, D, H, P = call.num_layers, call.directions, call.hidden_size, call.h_size
    K = GATE_BLOCKS[call.cell]
    S = P + H if call.cell == "lstm" else H
    proj = P * H if call.proj_size else 0
    out = {"cell steps": 0, "lag matrices": 0, "Jacobian spectra": 0}
    for G, n, start, stop in groups:
        win = stop - start
        rec = win + (n if win < n else 0)
        back = win if max_lag is None else min(win, max_lag)
        for layer in range(L):
            inp = call.input_size if layer == 0 else D * P
            out["cell steps"] += D * rec * (STEP_COST + 3 * G * (K * H * (inp + P) + proj))
            out["lag matrices"] += D * win * back * G * S * S if lag else 0
            out["Jacobian spectra"] += D * 2 * win * S**3 if jacobians else 0
    return out


def warn_if_slow(call: Call, groups: list[tuple[int, int, int, int]], **flags: object) -> None:
    """One :class:`SlowReplay` line when the replay is estimated above :data:`SLOW_WORK`."""
    parts = work(call, groups, **flags)  # type: ignore[arg-type]
    total = sum(parts.values())
    if total <= SLOW_WORK:
        return
    top = max(parts, key=parts.__getitem__)
    secs = total / RATE
    took = f"{secs:,.0f} s" if secs < 120 else f"{secs / 60:,.0f} min"
    cure = {
        "lag matrices": "max_lag=K or lag=False",
        "Jacobian spectra": "jacobians=False",
        "cell steps": "fewer sequences (batch=[0]) or a shorter window=(start, stop)",
    }[top]
    warnings.warn(
        f"{call.label}: this replay will be slow, about {total:.1e} multiply-adds in float64 "
        f"(~{took}; most in the {top}, {parts[top]:.1e}): {cure} "
        "makes it smaller",
        SlowReplay,
        stacklevel=_caller(),
    )


def _caller() -> int:
    """The stack level of the first frame outside rnn_dissect (the user's line)."""
    frame: FrameType | None = sys._getframe(1)  # warn_if_slow's: stacklevel 1
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("rnn_dissect"):
        level, frame = level + 1, frame.f_back
    return level
