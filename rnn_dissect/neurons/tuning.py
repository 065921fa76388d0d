"""How units tune themselves during training, from snapshots of activations on a probe text.

A snapshot is (training step, :class:`~rnn_dissect.neurons.activations.Activations` on the same
probe text). From a list of them, in step order:

- :func:`unit_image`: one unit's activation as an (S, N) image, steps × characters;
- :func:`tuning_curves`: per feature, the unit that tracks it best at the *last* snapshot,
  its score at every step, the best |score| of any unit at every step, and the first step
  at which that unit's |score| reached a threshold;
- :func:`unit_param_norms`: per unit, the norm of the weights (or gradients) feeding it,
  ‖[W_ih[g·H + u], W_hh[g·H + u]]‖₂ for gate block g — call it on each snapshot's
  parameters (or gradients) for a trajectory;
- :func:`save_unit_norms` / :func:`load_unit_norms`: those norms beside a snapshot's
  activations (``param_norms.safetensors``; a snapshot written before them has none);
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
from rnn_dissect.nets.cells import GATES
from rnn_dissect.neurons.activations import Activations, UnitRef
from rnn_dissect.neurons.features import Feature
from rnn_dissect.neurons.ranking import score_units
from rnn_dissect.weights import safetensors_file as stf

__all__ = [
    "NORMS_FILE",
    "Norms",
    "Snapshot",
    "TuningCurve",
    "load_unit_norms",
    "norm_trajectories",
    "save_unit_norms",
    "tuning_curves",
    "unit_image",
    "unit_norm",
    "unit_param_norms",
]

Norms = dict[tuple[int, str], np.ndarray]  # (layer, gate) -> (H,), as unit_param_norms returns
NORMS_FILE = "param_norms.safetensors"  # in a snapshot directory, beside the activations


@dataclass
class Snapshot:
    step: int  # training step the parameters were saved at
    acts: Activations  # on the probe text, the same text for every snapshot
    weight_norms: Norms | None = None  # unit_param_norms of the weights at `step`
    grad_norms: Norms | None = None  # ... of the gradient of the step that led to `step`


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
) -> list[TuningCurve]:
    """One :class:`TuningCurve` per non-constant feature; scores as in
    :func:`~rnn_dissect.neurons.ranking.score_units` (``auc`` passed on)."""
    _check(snapshots)
    per_step = [score_units(s.acts, features, auc=auc) for s in snapshots]
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


def unit_param_norms(
    tensors: dict[str, np.ndarray], cell: str, num_layers: int
) -> dict[tuple[int, str], np.ndarray]:
    """(layer, gate) -> (H,) ‖[W_ih[g·H + u], W_hh[g·H + u]]‖₂, for torch-named weights or
    their gradients (``rnn.weight_ih_l{k}`` (G·H, in), ``rnn.weight_hh_l{k}`` (G·H, H))."""
    out = {}
    for k in range(num_layers):
        W_ih, W_hh = tensors[f"rnn.weight_ih_l{k}"], tensors[f"rnn.weight_hh_l{k}"]
        H = W_hh.shape[1]
        sq = (W_ih.astype(np.float64) ** 2).sum(axis=1) + (W_hh.astype(np.float64) ** 2).sum(axis=1)
        for g, gate in enumerate(GATES[cell]):  # (G·H,) rows, block g is gate g
            out[(k, gate)] = np.sqrt(sq[g * H : (g + 1) * H])
    return out


def save_unit_norms(directory: str | Path, weight: Norms, grad: Norms | None) -> Path:
    """Write ``directory/param_norms.safetensors``: float64 (H,) arrays named
    ``weight.l{k}.{gate}`` and (when ``grad`` is given) ``grad.l{k}.{gate}``."""
    arrays = {f"weight.l{k}.{g}": np.asarray(a, np.float64) for (k, g), a in weight.items()}
    if grad is not None:
        arrays.update({f"grad.l{k}.{g}": np.asarray(a, np.float64) for (k, g), a in grad.items()})
    path = Path(directory) / NORMS_FILE
    stf.write(path, {"format": "rnn-dissect/unit-norms-1"}, arrays)
    return path


def load_unit_norms(directory: str | Path) -> tuple[Norms | None, Norms | None]:
    """(weight norms, gradient norms) of a snapshot directory; None for what it lacks."""
    path = Path(directory) / NORMS_FILE
    if not path.is_file():
        return None, None  # a snapshot from before the norms were recorded
    out: dict[str, Norms] = {"weight": {}, "grad": {}}
    for name, a in stf.read_tensors(path).items():
        what, layer, gate = name.split(".")
        out[what][(int(layer[1:]), gate)] = a
    return out["weight"] or None, out["grad"] or None


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
