"""How units tune themselves during training, from snapshots of activations on a probe text.

A snapshot is (training step, :class:`~rnn_dissect.neurons.activations.Activations` on the same
probe text). From a list of them, in step order:

- :func:`unit_image`: one unit's activation as an (S, N) image, steps × characters;
- :func:`tuning_curves`: per feature, the unit that tracks it best at the *last* snapshot,
  its score at every step, the best |score| of any unit at every step, and the first step
  at which that unit's |score| reached a threshold;
- :func:`read_snapshots`: a run directory's training snapshots (:mod:`rnn_dissect.train.snapshot`:
  weights, probe text, per-unit norms), the activations collected from the weights;
- :func:`unit_norm`, :func:`norm_trajectories`: the norm feeding one unit — its gate's rows
  for a gate, the rows of every gate block for h and c — at one snapshot, or at each.

    >>> import numpy as np
    >>> from rnn_dissect.neurons.activations import Activations
    >>> snaps = [Snapshot(s, Activations("rnn", ("a",), "aaa", {(0, "h"): np.full((3, 1), v)}))
    ...          for s, v in ((0, 0.0), (10, 0.5))]
    >>> steps, img = unit_image(snaps, UnitRef(0, "h", 0))
    >>> steps.tolist(), img.tolist()
    ([0, 10], [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.neurons.activations import Activations, UnitRef, load
from rnn_dissect.neurons.collect import collect
from rnn_dissect.neurons.features import Feature
from rnn_dissect.neurons.ranking import score_units
from rnn_dissect.train import snapshot
from rnn_dissect.train.snapshot import Norms

__all__ = [
    "Snapshot",
    "TuningCurve",
    "norm_trajectories",
    "read_snapshots",
    "tuning_curves",
    "unit_image",
    "unit_norm",
]


@dataclass
class Snapshot:
    step: int  # training step the parameters were saved at
    acts: Activations  # on the probe text, the same text for every snapshot
    weight_norms: Norms | None = None  # unit_param_norms of the weights at `step`
    grad_norms: Norms | None = None  # ... of the gradient of the step that led to `step`


def read_snapshots(run_dir: str | Path) -> list[Snapshot]:
    """The training snapshots of a run directory (``snapshots/step*``), in step order; [] if
    it has none. Each snapshot's activations over its probe text are collected from its
    weights in one sequential pass (float32, as training recorded them); a snapshot of the
    older layout carries its activations and is loaded as it is."""
    d = Path(run_dir) / "snapshots"
    out = []
    for sd in sorted(d.glob("step*")) if d.is_dir() else ():
        if not sd.name[4:].isdigit():
            continue
        weight, grad = snapshot.load_unit_norms(sd)  # (None, None) for an older snapshot
        if (saved := snapshot.read(sd)) is not None:
            model, probe = saved
            acts = collect(model, probe, batch=1)  # one segment: the sequential pass itself
        elif (sd / "activations.json").is_file():
            acts = load(sd)
        else:
            continue  # neither: not a snapshot
        out.append(Snapshot(int(sd.name[4:]), acts, weight, grad))
    return out


def _check(snapshots: Sequence[Snapshot]) -> None:
    if not snapshots:
        raise UserError("no training snapshots; train with snapshots enabled (see train --help)")
    if any(s.acts.text != snapshots[0].acts.text for s in snapshots):
        raise ValueError("snapshots must share one probe text")
    steps = [s.step for s in snapshots]
    if steps != sorted(steps) or len(set(steps)) != len(steps):
        raise ValueError(f"snapshot steps must be strictly increasing, got {steps}")


def unit_image(snapshots: Sequence[Snapshot], unit: UnitRef) -> tuple[np.ndarray, np.ndarray]:
    """(S,) steps and (S, N) image: row s is the unit over the probe text at step s."""
    _check(snapshots)
    steps = np.array([s.step for s in snapshots], dtype=np.int64)
    image = np.stack([s.acts.column(unit).astype(np.float64) for s in snapshots])  # (S, N)
    return steps, image


@dataclass
class TuningCurve:
    feature: str
    unit: UnitRef  # the best unit for the feature at the last snapshot
    steps: np.ndarray  # (S,)
    scores: np.ndarray  # (S,) that unit's score at each step
    best_any: np.ndarray  # (S,) the score with the largest |score| over all units, per step
    threshold: float
    crossed_at: int | None  # first step where |scores| ≥ threshold, None if never


def tuning_curves(
    snapshots: Sequence[Snapshot],
    features: Sequence[Feature],
    threshold: float = 0.5,
    auc: str = "auto",
    rows: np.ndarray | None = None,
) -> list[TuningCurve]:
    """One :class:`TuningCurve` per non-constant feature; scores as in
    :func:`~rnn_dissect.neurons.ranking.score_units` (``auc`` and ``rows`` passed on)."""
    _check(snapshots)
    per_step = [score_units(s.acts, features, auc=auc, rows=rows) for s in snapshots]
    steps = np.array([s.step for s in snapshots], dtype=np.int64)
    last = per_step[-1]
    curves = []
    for f, name in enumerate(last.features):
        best = last.best(name)
        if best is None:
            continue
        j = last.units.index(best)
        scores = np.array([sc.score[f, j] for sc in per_step])  # (S,)
        best_any = np.array([sc.score[f, np.argmax(np.abs(sc.score[f]))] for sc in per_step])
        hit = np.flatnonzero(np.abs(scores) >= threshold)
        crossed = int(steps[hit[0]]) if len(hit) else None
        curves.append(TuningCurve(name, best, steps, scores, best_any, threshold, crossed))
    return curves


def unit_norm(norms: Norms, unit: UnitRef) -> float:
    """The norm of the rows feeding ``unit``: ``norms[(layer, kind)][u]`` for a gate;
    for h and c (fed by every gate block) √(Σ_g norms[(layer, g)][u]²)."""
    if (unit.layer, unit.kind) in norms:
        return float(norms[(unit.layer, unit.kind)][unit.unit])
    blocks = [a[unit.unit] for (k, _), a in norms.items() if k == unit.layer]
    return float(np.sqrt(np.sum(np.square(blocks, dtype=np.float64))))


def norm_trajectories(
    snapshots: Sequence[Snapshot], unit: UnitRef
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S,) steps, (S,) weight norm and (S,) gradient norm of ``unit`` (see
    :func:`unit_norm`) at each snapshot; NaN where a snapshot has no such record."""
    _check(snapshots)
    steps = np.array([s.step for s in snapshots], dtype=np.int64)
    w = [np.nan if s.weight_norms is None else unit_norm(s.weight_norms, unit) for s in snapshots]
    g = [np.nan if s.grad_norms is None else unit_norm(s.grad_norms, unit) for s in snapshots]
    return steps, np.array(w, dtype=np.float64), np.array(g, dtype=np.float64)
