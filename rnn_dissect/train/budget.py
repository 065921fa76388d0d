"""Time budget: how many optimizer steps fit in ``--minutes``, re-measured while the speed drifts.

A run without ``--steps`` trains for a wall-clock budget T_b (seconds). Its step count N and
the step K where the cosine decay begins are chosen while it runs, from a clock:

1. provisional, after n₀ = max(warmup, 5) steps and one validation:
   τ = median step time of the warm-up + (that validation's cost) / eval_every,
   N = k + max(1, ⌊0.97 · (T_b − t) / τ⌋), K = N (the rate stays at its peak).
2. re-sized every ``RESIZE_EVERY`` of the budget while the rate is at its peak, and whenever
   the run nears N (k ≥ 0.9 N): τ = wall time per step since the previous sizing, minus the
   validations in that window, plus their mean cost per eval_every steps. A machine whose
   speed drifts (cores shared with other jobs) still fills its budget.
3. final, a little before the decay is due — at max(1/5, 1 − F − 1/20) of the budget, F the
   ``decay_frac``: N as above and K = max(k, N − round(F · N)) (the cosine spans the last F of
   the run, starting no earlier than now); nothing changes after that.

Before K the learning rate does not depend on N (see :func:`rnn_dissect.train.config.lr_at`), so
every step's rate equals the one the final (N, K) give: ``--steps N --decay-start K`` repeats
the run bit for bit. Drift after K is not corrected — changing N then would bend the part of
the cosine already walked; the trainer lets a sized run overrun by 10% to finish its decay.

    >>> t = [0.0]
    >>> b = Budget(60.0, warmup=5, decay_frac=0.25, eval_every=100, clock=lambda: t[0])
    >>> for k in range(1, 6):
    ...     b.step_started(); t[0] += 0.1      # five steps of 100 ms
    ...     sizing, _ = b.after_step(k, lambda: None)
    >>> sizing.steps, sizing.decay_start, sizing.final   # 0.97 · 59.5 s / 0.1 s more steps
    (582, 582, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Budget", "Sizing"]


@dataclass(frozen=True)
class Sizing:
    """One decision of the budget: the run's schedule from now on."""

    steps: int  # N, optimizer steps in the whole run
    decay_start: int  # K, where the cosine begins (= N while provisional: the peak holds)
    per_step: float  # τ, the seconds per step (validations charged) it was sized from
    final: bool  # True: N and K stay as they are for the rest of the run


@dataclass
class Budget:
    """Sizes ``steps`` so a run of ``seconds`` ends on time (see the module docstring).

    The trainer calls :meth:`step_started` before each of the first n₀ steps and
    :meth:`after_step` after every step; ``val_seconds`` is the trainer's list of measured
    validation costs (appended to as it validates)."""

    seconds: float  # T_b
    warmup: int
    decay_frac: float  # F
    eval_every: int
    clock: Callable[[], float]
    val_seconds: list[float] = field(default_factory=list)

    RESIZE_EVERY = 0.05  # share of the budget between two re-sizings while the rate is at peak
    DECAY_DUE_MIN = 0.2  # the sizing is final at a fifth of the budget at the earliest
    MARGIN = 0.97  # sized to end a little early: the last validation and save still fit

    def __post_init__(self) -> None:
        self.t_begin = self.clock()
        self.calib = max(self.warmup, 5)  # n₀: steps that measure the speed first
        self.due = max(self.DECAY_DUE_MIN, 1.0 - self.decay_frac - self.RESIZE_EVERY)
        self.sizing: Sizing | None = None
        self._starts: list[float] = []  # when each calibration step began
        self._window = (0, 0.0, 0)  # (step, clock, validations so far) at the last sizing

    def step_started(self) -> None:
        if self.sizing is None:
            self._starts.append(self.clock())

    def after_step(
        self, step: int, validate: Callable[[], float | None]
    ) -> tuple[Sizing | None, float | None]:
        """After optimizer step ``step`` (1-based count so far): a new :class:`Sizing` when
        one is due (else None), and the validation loss if sizing ran one (``validate``)."""
        now = self.clock()
        if self.sizing is None:
            if step < self.calib:
                return None, None
            laps = (
                np.diff([*self._starts, now])[1:]
                if len(self._starts) > 1
                else [now - self._starts[-1]]
            )
            tau = float(np.median(laps))  # robust to a burst of load on the machine
            before = len(self.val_seconds)
            val = validate()
            tau += sum(self.val_seconds[before:]) / self.eval_every
            return self._size(step, tau, final=False), val
        if self.sizing.final:
            return None, None
        elapsed = now - self.t_begin
        due = elapsed >= self.due * self.seconds
        s0, t0, v0 = self._window
        next_at = (t0 - self.t_begin) + self.RESIZE_EVERY * self.seconds
        if step == s0 or not (due or elapsed >= next_at or step >= 0.9 * self.sizing.steps):
            return None, None
        # steps alone over the window, plus validations at their measured cost (the window
        # may hold none: eval_every can exceed it)
        tau = (now - t0 - sum(self.val_seconds[v0:])) / (step - s0)
        if self.val_seconds:
            tau += float(np.mean(self.val_seconds)) / self.eval_every
        return self._size(step, tau, final=due), None

    def _size(self, step: int, tau: float, final: bool) -> Sizing:
        now = self.clock()
        left = self.seconds - (now - self.t_begin)
        steps = step + max(1, int(self.MARGIN * left / tau))
        k0 = max(step, steps - round(self.decay_frac * steps)) if final else steps
        self.sizing = Sizing(steps, k0, tau, final)
        self._window = (step, now, len(self.val_seconds))
        return self.sizing
