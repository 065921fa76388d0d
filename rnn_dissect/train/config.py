"""What a training run is: its settings (:class:`TrainConfig`, one per ``train`` flag) and its
learning-rate schedule.

Learning rate: linear warm-up over ``warmup`` steps, then ``constant`` or ``cosine``: the
peak ``lr`` until ``decay_start`` (default: right after the warm-up), then
lr_min + ½(lr − lr_min)(1 + cos(π·(k − k₀)/(steps − k₀))) with k₀ = max(warmup, decay_start).
The cosine spans the run's *total* ``steps``: resuming with the same ``--steps`` continues
the same curve (bit-identical); resuming with a larger ``--steps`` stretches what is left of
the decay, so the learning rate jumps up to the longer curve's value at that step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnn_dissect import optim
from rnn_dissect.errors import UserError

__all__ = ["RESUMABLE", "TrainConfig", "flag", "lr_at"]

_FLAGS = {"hidden_size": "hidden", "num_layers": "layers", "batch_size": "batch"}


def flag(field: str) -> str:
    """The command-line flag of a TrainConfig field: ``hidden_size`` → ``--hidden``."""
    return "--" + _FLAGS.get(field, field).replace("_", "-")


@dataclass(frozen=True)
class TrainConfig:
    cell: str = "lstm"  # rnn | lstm | gru
    hidden_size: int = 256  # H, units per layer
    num_layers: int = 2  # L
    seq_len: int = 64  # S, characters per truncated-BPTT chunk
    batch_size: int = 32  # B, parallel streams
    steps: int = 0  # optimizer steps in the run (total, across resumes); 0 = size by `minutes`
    minutes: float = 5.0  # the budget `steps` is sized for when it is 0
    lr: float = 3e-3  # peak learning rate
    optimizer: str = "adam"  # adam | adagrad | rmsprop | sgd
    schedule: str = "cosine"  # constant | cosine
    warmup: int = 20  # linear warm-up steps
    lr_min: float = 1e-4  # cosine floor
    decay_start: int = 0  # the cosine begins at max(warmup, decay_start); set by --minutes sizing
    decay_frac: float = 0.25  # --minutes sizing: the cosine spans this last share of the run
    clip: float = 5.0  # global gradient-norm clip (0 = off)
    dropout: float = 0.0  # between layers, training only (as char-rnn)
    val_frac: float = 0.05  # tail of the text held out for validation
    val_chars: int = 100_000  # validation characters evaluated at most (bounds its cost)
    log_every: int = 10  # steps between lines of metrics.jsonl
    eval_every: int = 100  # steps between validation runs
    save_every: int = 200  # steps between checkpoints
    sample_every: int = 200  # steps between samples (0 = off)
    sample_chars: int = 300  # characters per sample
    snapshot_every: int = 0  # steps between probe-text activation snapshots (0 = off)
    probe_chars: int = 500  # length of the probe text (the head of the validation split)
    seed: int = 0
    files: tuple[str, ...] | None = None  # the corpus; None = the standard-library default
    errors: str = "strict"  # UTF-8 errors: strict | replace

    def check(self) -> None:
        """One-line errors for values no run can use."""
        if self.cell not in ("rnn", "lstm", "gru"):
            raise UserError(f"unknown --cell {self.cell!r}; choose rnn, lstm or gru")
        pos = ("hidden_size", "num_layers", "seq_len", "batch_size", "log_every", "eval_every")
        for name in (*pos, "save_every", "val_chars", "probe_chars"):
            if getattr(self, name) < 1:
                raise UserError(f"{flag(name)} must be ≥ 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise UserError(f"--seed must be a whole number ≥ 0, got {self.seed}")
        if self.steps < 0 or (self.steps == 0 and not 0 < self.minutes < math.inf):
            raise UserError("give --steps N ≥ 1 or a time budget --minutes M > 0")
        if not (0 < self.lr < math.inf and 0 <= self.lr_min < math.inf and self.clip >= 0):
            raise UserError(
                "--lr must be > 0, --lr-min ≥ 0 (both finite) and --clip ≥ 0 (0 = off); got "
                f"--lr {self.lr:g}, --lr-min {self.lr_min:g}, --clip {self.clip:g}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.schedule not in ("constant", "cosine"):
            raise UserError(f"unknown --schedule {self.schedule!r}; choose constant or cosine")
        if self.optimizer not in optim.OPTIMIZERS:
            raise UserError(
                f"unknown --optimizer {self.optimizer!r}; choose {', '.join(optim.OPTIMIZERS)}"
            )
        if self.steps == 0 and self.schedule == "cosine" and self.warmup < 5:
            raise UserError(
                "--minutes sizes the cosine schedule from the speed of the warm-up steps; "
                "use --warmup ≥ 5, or give --steps"
            )
        if min(self.warmup, self.sample_every, self.sample_chars, self.snapshot_every) < 0:
            raise UserError(
                "--warmup, --sample-every, --sample-chars, --snapshot-every must be ≥ 0"
            )
        if not 0.0 < self.decay_frac <= 1.0:
            raise UserError(f"--decay-frac must be in (0, 1], got {self.decay_frac}")
        if self.decay_start < 0 or (self.steps and self.decay_start > self.steps):
            raise UserError(
                f"--decay-start must be in [0, --steps], got {self.decay_start} "
                f"(steps {self.steps})"
            )


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of the 0-based optimizer step ``step`` (see the module docstring)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    k0 = max(cfg.warmup, cfg.decay_start)
    if cfg.schedule == "constant" or step < k0:
        return cfg.lr
    total = max(cfg.steps - k0, 1)
    k = min(step - k0, total)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * k / total))


# What a resumed run may change; anything else would make it a different run.
RESUMABLE = frozenset(
    {
        "steps",
        "minutes",
        "lr",
        "lr_min",
        "clip",
        "log_every",
        "eval_every",
        "save_every",
        "sample_every",
        "sample_chars",
        "snapshot_every",
        "val_chars",
    }
)
