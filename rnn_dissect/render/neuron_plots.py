"""Figures of the neuron analyses (matplotlib; PNG and SVG), drawn from plain data.

Figures are plain ``matplotlib.figure.Figure`` objects (no pyplot, so no global figure
state and no GUI backend: saving PNG goes through Agg).

- :func:`saturation_figure`: per layer, each gate unit as a point (fraction of characters
  left-saturated, fraction right-saturated) — fig. 3 of Karpathy, Johnson & Fei-Fei (2015).
- :func:`unit_training_figure`: one unit over the probe text (x) at every snapshot (y).
- :func:`score_curves_figure`: per feature, its best unit's score over training, with the
  threshold and the step where it was first crossed.
- :func:`param_norms_figure`: per unit, the norm of the weights feeding it and of their
  gradient against training step (two panels, one line per unit in each).

Every artist that carries data has a ``gid`` (``sat-l0-f``, ``unit-image``, ``score-letter``,
``wnorm-l0-c3`` / ``gnorm-l0-c3``)
which the SVG keeps as an element id, so tests and scripts can find the marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from rnn_dissect.neurons.activations import UnitRef
from rnn_dissect.neurons.extremes import Saturation
from rnn_dissect.neurons.tuning import TuningCurve

__all__ = [
    "param_norms_figure",
    "saturation_figure",
    "save_figure",
    "score_curves_figure",
    "unit_training_figure",
]

GATE_COLOURS = {"i": "C0", "f": "C1", "o": "C2", "g": "C3", "r": "C4", "z": "C5", "n": "C6"}


def save_figure(fig: Figure, stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.svg`` (no timestamps, fixed ids: byte-identical reruns)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=100, metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": "rnn-dissect", "svg.fonttype": "none"}):
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg


def saturation_figure(sats: Sequence[Saturation]) -> Figure:
    """One panel per layer; x = fraction < low, y = fraction > high, one colour per gate."""
    layers = sorted({s.layer for s in sats})
    fig = Figure(figsize=(3.6 * max(len(layers), 1), 3.6))
    axes = fig.subplots(1, max(len(layers), 1), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=False):
        for s in (s for s in sats if s.layer == layer):
            sc = ax.scatter(
                s.left, s.right, s=12, alpha=0.7, label=s.kind, color=GATE_COLOURS.get(s.kind, "k")
            )
            sc.set_gid(f"sat-l{layer}-{s.kind}")
        ax.plot([0, 1], [1, 0], color="0.8", lw=0.8, zorder=0)  # left + right = 1
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            aspect="equal",
            title=f"layer {layer}",
            xlabel="left-saturated (< 0.1)",
            ylabel="right-saturated (> 0.9)",
        )
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def unit_training_figure(
    steps: np.ndarray, image: np.ndarray, title: str = "", scale: float | None = None
) -> Figure:
    """(S, N) image, row s = the unit at step ``steps[s]``; blue-white-red around 0."""
    S, N = image.shape
    vmax = (float(np.max(np.abs(image))) or 1.0) if scale is None else scale
    fig = Figure(figsize=(min(12, 2 + N / 40), 1.2 + 0.25 * S))
    ax = fig.subplots()
    im = ax.imshow(
        image,
        cmap="bwr",
        vmin=-vmax,
        vmax=vmax,
        aspect="auto",
        interpolation="none",
        origin="upper",
    )
    im.set_gid("unit-image")
    ticks = np.unique(np.linspace(0, S - 1, min(S, 8)).round().astype(int))
    ax.set_yticks(ticks, [str(int(steps[t])) for t in ticks])
    ax.set(xlabel="character of the probe text", ylabel="training step", title=title)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


def score_curves_figure(curves: Sequence[TuningCurve]) -> Figure:
    """Score of each feature's best unit against training step (marker where it first
    reached |score| ≥ threshold)."""
    fig = Figure(figsize=(8.4, 4))
    ax = fig.subplots()
    for i, c in enumerate(curves):
        u = c.unit
        (line,) = ax.plot(
            c.steps,
            c.scores,
            marker=".",
            color=f"C{i % 10}",
            ls=("-", "--", ":")[i // 10 % 3],  # past 10 features the colours repeat: not the style
            label=f"{c.feature} (l{u.layer} {u.kind}{u.unit})",
        )
        line.set_gid(f"score-{c.feature}")
        if c.crossed_at is not None:
            j = int(np.flatnonzero(c.steps == c.crossed_at)[0])
            (m,) = ax.plot(
                [c.crossed_at], [c.scores[j]], marker="o", mfc="none", ms=9, color=f"C{i % 10}"
            )
            m.set_gid(f"cross-{c.feature}")
    if curves:
        t = curves[0].threshold
        for y in (t, -t):
            ax.axhline(y, color="0.6", lw=0.8, ls="--")
    ax.set(xlabel="training step", ylabel="score (r or 2·AUC − 1)", ylim=(-1.05, 1.05))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over
    fig.tight_layout()
    return fig


def param_norms_figure(
    steps: np.ndarray,
    units: Sequence[UnitRef],
    weight: np.ndarray,
    grad: np.ndarray,
    labels: Sequence[str] | None = None,
) -> Figure:
    """Left: ``weight`` (U, S), the weight norm of each unit at each of the (S,) ``steps``;
    right: ``grad`` (U, S), the gradient norm (log scale; NaN — step 0 — is left out)."""
    fig = Figure(figsize=(9.6, 3.8))
    ax_w, ax_g = fig.subplots(1, 2, sharex=True)
    for i, u in enumerate(units):
        name = f"l{u.layer}-{u.kind}{u.unit}"
        label = labels[i] if labels is not None else f"l{u.layer} {u.kind}{u.unit}"
        for ax, values, prefix in ((ax_w, weight[i], "wnorm"), (ax_g, grad[i], "gnorm")):
            (line,) = ax.plot(steps, values, marker=".", color=f"C{i % 10}", label=label)
            line.set_gid(f"{prefix}-{name}")
    ax_w.set(xlabel="training step", ylabel="‖weights feeding the unit‖₂", title="weight norm")
    ax_g.set(xlabel="training step", ylabel="‖gradient of those weights‖₂", title="gradient norm")
    if np.any(np.isfinite(grad) & (grad > 0)):
        ax_g.set_yscale("log")
    if len(units):
        ax_w.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
