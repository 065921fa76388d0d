"""The neurons section's figures: a unit over the probe text across snapshots (text as the
x-axis, as LSTMVis draws it), the score curves, the strongest contexts, the detectors table.

Plain data in (the numbers, the tuning curves, the snapshots, the contexts), HTML out; each
figure is a ``<figure data-fig=NAME>`` (:func:`rnn_dissect.render.tour_figures.figure`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from rnn_dissect.neurons.activations import UnitRef
from rnn_dissect.neurons.extremes import UnitContexts
from rnn_dissect.neurons.ranking import Scores
from rnn_dissect.neurons.tuning import Snapshot, TuningCurve, unit_image
from rnn_dissect.render.heatmap import colour_scale, heatmap_line
from rnn_dissect.render.neuron_plots import score_curves_figure
from rnn_dissect.render.tour_figures import figure as _figure
from rnn_dissect.render.tour_figures import png as _png
from rnn_dissect.render.tour_text import fill, span

__all__ = ["SHOW_CHARS", "contexts", "detectors", "score_curves", "tuning_unit"]

SHOW_CHARS = 96  # probe / context characters per heatmap row


def _tuned(n: Mapping[str, Any], curves: Sequence[TuningCurve]) -> TuningCurve | None:
    """The feature whose tuning the page shows: the memory feature, else the strongest at
    the last snapshot."""
    mem = [c for c in curves if c.feature == n.get("neurons.memory.feature")]
    return mem[0] if mem else max(curves, key=lambda c: abs(c.scores[-1]), default=None)


def tuning_unit(
    n: Mapping[str, Any], curves: Sequence[TuningCurve], snapshots: Sequence[Snapshot]
) -> str:
    """One unit over the probe text at every snapshot: the memory feature's best unit."""
    tuned = _tuned(n, curves)
    if tuned is None or not snapshots:
        return _figure("tuning_unit", "<p>No snapshots were recorded.</p>")
    f, u = tuned.feature, tuned.unit
    steps, image = unit_image(snapshots, u)  # (S,), (S, N)
    text = snapshots[0].acts.text[:SHOW_CHARS]
    center, scale = colour_scale(u.kind, image)
    rows = [
        f'<div class="lab">step {int(s)}</div>{heatmap_line(text, row[: len(text)], center, scale)}'
        for s, row in zip(steps, image, strict=True)
    ]
    cap = fill(
        f"{{neurons.tuned.{f}.unit}}, the unit that tracks {html.escape(f)} best at the end "
        f"(score {{neurons.tuned.{f}.final}} on the probe text), at every snapshot.",
        n,
    )
    return _figure("tuning_unit", f'<div class="hm">{"".join(rows)}</div>', cap)


def score_curves(curves: Sequence[TuningCurve]) -> str:
    """Each feature's best unit's score at every snapshot (tuning.json's, unrounded)."""
    if not curves:
        return _figure("score_curves", "<p>No snapshots were recorded.</p>")
    fig = score_curves_figure(curves)
    return _figure(
        "score_curves",
        _png(fig, "each feature's best unit's score over training"),
        "Score against training step; a circle marks where it first reached the threshold.",
    )


def contexts(n: Mapping[str, Any], scores: Scores, contexts: Mapping[UnitRef, UnitContexts]) -> str:
    """The three strongest detectors and the memory feature's unit, two contexts each: the
    highest for a unit that scores positively, the lowest for one that scores negatively."""
    best: dict[UnitRef, str] = {}  # unit → the feature it is shown for
    ranked = sorted(
        (f for f in scores.features if f"neurons.best.{f}.score" in n),
        key=lambda f: -abs(n[f"neurons.best.{f}.score"]),
    )
    mem = n.get("neurons.memory.feature")
    for f in [*ranked[:3], *([mem] if mem else [])]:
        if (u := scores.best(f)) is not None:
            best.setdefault(u, f)
    rows = []
    for u, uc in contexts.items():
        if u not in best:
            continue
        # a unit that scores negatively detects its feature by going low: show where it is
        # lowest, or "where it fires most" shows where its feature is absent
        low = n.get(f"neurons.best.{best[u]}.score", 0.0) < 0
        for c in (uc.bottom if low else uc.top)[:2]:
            center, scale = colour_scale(u.kind, c.values)
            k = c.position - c.start
            lo = max(0, k - SHOW_CHARS // 2)
            text, vals = c.text[lo : lo + SHOW_CHARS], c.values[lo : lo + SHOW_CHARS]
            label = f"l{u.layer} {u.kind}{u.unit} ({best[u]}, {'lowest' if low else 'highest'})"
            rows.append(
                f'<div class="lab">{html.escape(label)}</div>'
                f"{heatmap_line(text, vals, center, scale, k - lo)}"
            )
    return _figure(
        "contexts",
        f'<div class="hm">{"".join(rows)}</div>',
        "The three strongest detectors and the best memory unit: each one's two strongest "
        "contexts on its feature's side — where it is highest if it scores positively, lowest "
        "if negatively (outlined: that character; blue negative, red positive)."
        + (
            f" The first {skip} characters, read from the zero initial state, are not ranked."
            if (skip := max((uc.skipped for uc in contexts.values()), default=0))
            else ""
        ),
    )


def detectors(n: Mapping[str, Any], scores: Scores) -> str:
    """Per feature: its best unit and score on the validation text; then, on the probe text
    during training, the unit that tracks it best at the last snapshot (it can be another
    unit: the figures below draw that one) and the first step its |score| reached the
    threshold."""
    thr = span(n, "neurons.threshold") if "neurons.threshold" in n else "the threshold"
    head = (
        "<tr><th>feature</th><th>best unit on the validation text</th><th>score</th>"
        f"<th>on the probe text while training: its best unit, first step with |score| ≥ {thr}"
        "</th></tr>"
    )
    rows = []
    for f in scores.features:
        if f"neurons.best.{f}.unit" not in n:
            continue
        if f"neurons.tuned.{f}.unit" in n:
            when = (
                f"step {span(n, f'neurons.tuned.{f}.crossed_at')}"
                if n.get(f"neurons.tuned.{f}.crossed_at") is not None
                else "not yet"
            )
            tuned = f"{span(n, f'neurons.tuned.{f}.unit')}: {when}"
        else:
            tuned = "—"
        rows.append(
            f"<tr><td>{html.escape(f)}</td><td>{span(n, f'neurons.best.{f}.unit')}</td>"
            f"<td>{span(n, f'neurons.best.{f}.score')}</td><td>{tuned}</td></tr>"
        )
    return f'<table data-testid="detectors">{head}{"".join(rows)}</table>'
