"""``heatmaps.html``: the page ``rnn-dissect neurons`` writes, assembled from the scores.

Title, an introduction (what a feature and a score are, what the unit codes mean, how AUC
was computed), the colour legend, an index (feature → its best units with scores, each a
link to the unit's section), then one section per unit: its heading names the unit and its
kind in words, the line under it the features it ranks for with score and rank, then its
activation over the first ``excerpt`` characters and over its top and bottom contexts.
Drawing is :func:`rnn_dissect.render.heatmap.heatmap_page`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from rnn_dissect.neurons.activations import KIND_WORDS, KINDS, Activations, UnitRef
from rnn_dissect.neurons.extremes import UnitContexts
from rnn_dissect.neurons.features import ABOUT
from rnn_dissect.neurons.ranking import Scores
from rnn_dissect.render.heatmap import IndexRow, UnitSection, colour_scale, heatmap_page

__all__ = ["label", "render"]


def label(u: UnitRef) -> str:
    return f"layer {u.layer} {u.kind} unit {u.unit}"


def _anchor(u: UnitRef) -> str:
    return f"l{u.layer}-{u.kind}{u.unit}"


def _code(u: UnitRef) -> str:
    """The terminal's short name: l1 c87."""
    return f"l{u.layer} {u.kind}{u.unit}"


def _metric(boolean: bool) -> str:
    return "2AUC−1" if boolean else "r"


def _index(scores: Scores, per_feature: int) -> list[IndexRow]:
    rows = []
    for name, boolean in zip(scores.features, scores.boolean, strict=True):
        units = [
            (_code(u), _anchor(u), float(r["score"]))
            for r in scores.ranking(name, per_feature)
            for u in [UnitRef.from_dict(r)]
        ]
        rows.append(IndexRow(name, ABOUT.get(name, "your --regex"), _metric(boolean), units))
    return rows


def _intro(acts: Activations, scores: Scores) -> list[str]:
    kinds = ", ".join(f"{k} = {KIND_WORDS[k]}" for k in KINDS.get(acts.cell, ()))
    return [
        f"What the units of this {acts.cell.upper()} track, over {acts.n_chars:,} characters "
        "of text. A feature is a hypothesis — inside a string, bracket depth, position in the "
        "line — with one value per character; each unit is scored by how well its activation "
        "follows it: Pearson r for numeric features, 2·AUC − 1 for yes/no features (+1: the "
        "unit is high exactly where the feature is, −1: low there, 0: no relation). "
        f"AUC here is {scores.auc_method}"
        + (
            " (from per-unit histograms of the values, within the bound in neurons.json)."
            if scores.auc_method == "histogram"
            else " (from ranks)."
        )
        + _where(scores),
        "Each unit's section colours its activation over the start of the text and over the "
        "windows where it is highest and lowest; the colour of a character is the unit's value "
        "after reading it. Names: 'layer 1 c unit 87' (l1 c87 in the terminal) is unit 87 of "
        f"layer 1's c array; kinds: {kinds}.",
    ]


def _where(scores: Scores) -> str:
    """With ``--where``: " Scores computed on n of N characters: …" (neurons.json's
    ``where.statement``); the heatmaps still colour every character."""
    where = scores.meta.get("where")
    if not isinstance(where, dict):
        return ""
    s = str(where["statement"])
    return f" {s[0].upper()}{s[1:]}; the colours below show every character."


def _about(u: UnitRef, scores: Scores, per_feature: int, asked: bool) -> str:
    """The features this unit ranks among the best for, with score and rank."""
    said = []
    for name, boolean in zip(scores.features, scores.boolean, strict=True):
        for rank, r in enumerate(scores.ranking(name, per_feature), 1):
            if UnitRef.from_dict(r) == u:
                said.append(f"{name} {_metric(boolean)} {float(r['score']):+.3f} (#{rank})")
    head = "ranks for: " + "; ".join(said) if said else "asked for with --unit"
    return head + (" — asked for with --unit" if said and asked else "") + "."


def render(
    acts: Activations,
    scores: Scores,
    units: Sequence[UnitRef],
    ctx: Sequence[UnitContexts],
    per_feature: int,
    extra_units: Sequence[UnitRef],
    excerpt: int,
    note: str,
) -> str:
    """The whole page (see the module docstring)."""
    n = min(excerpt, acts.n_chars)
    sections = []
    for u, uc in zip(units, ctx, strict=True):
        col = acts.rows((u.layer, u.kind), 0, n)[:, u.unit]
        center, scale = colour_scale(u.kind, col)
        strips = [(f"the first {n:,} characters", acts.text[:n], col)]
        columns = [
            (f"where it is {name}", [(f"{c.value:.4g} at character {c.position:,}", c.text,
                                      c.values) for c in cs])
            for name, cs in (("highest", uc.top), ("lowest", uc.bottom))
        ]  # fmt: skip
        head = f"{label(u)} — {KIND_WORDS.get(u.kind, u.kind)}"
        if u.kind == "c":
            head += f" · colour scale ±{scale:.3g}"
        about = _about(u, scores, per_feature, u in extra_units)
        sections.append(UnitSection(_anchor(u), head, about, strips, center, scale, columns))
    intro = _intro(acts, scores)
    if skip := max((uc.skipped for uc in ctx), default=0):
        intro[-1] += (
            f" The first {skip:,} characters are not ranked for highest and lowest: they are "
            "read from the zero initial state, and a unit leaving 0 there is not responding "
            "to the text."
        )
    return heatmap_page(sections, _index(scores, per_feature), "What the units track",
                        intro, note)  # fmt: skip
