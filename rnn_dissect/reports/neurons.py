"""Everything ``rnn-dissect neurons`` writes, from collected activations, in one call.

:func:`write_report` puts in ``out``:

- ``neurons.json``: per feature, the units ranked by |score| (the contract for scripts);
- ``heatmaps.html``: each feature's best units, and any unit asked for, coloured over an
  excerpt of the text, each followed by its most positive and most negative contexts;
- ``contexts.json``: those contexts as data;
- ``saturation.png`` / ``.svg``: gate saturation per layer (cells with gates);
- ``heatmap_{feature}.svg``: each feature's best unit over the page's excerpt, one SVG file
  each (a figure for a post), and ``heatmap_l{k}_{kind}{u}.svg`` for each unit asked for;
- with training snapshots, ``tuning.json`` (per feature: its best unit, that unit's score at
  every snapshot, the first step it reached ``threshold``), ``score_curves.png`` / ``.svg``
  and ``unit_l{k}_{kind}{u}.png`` / ``.svg``: each best unit over the probe text per step;
  when the snapshots record per-unit norms, each feature's entry in ``tuning.json`` also has
  ``param_norms`` ({``weight``, ``grad``}: its best unit's norms per step, ``null`` where not
  recorded) and ``param_norms.png`` / ``.svg`` draws them for every best unit.

:func:`analyse_and_write` is the whole command: load the model, read the text
(:mod:`rnn_dissect.reports.neuron_inputs`), collect activations, build the features, call
:func:`write_report`, print :func:`summary` and the best unit's :func:`terminal_heatmap`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError, make_dir
from rnn_dissect.neurons.activations import KIND_WORDS, KINDS, Activations, UnitRef
from rnn_dissect.neurons.collect import collect, describe, engine
from rnn_dissect.neurons.extremes import Context, UnitContexts, gate_saturation, top_contexts
from rnn_dissect.neurons.features import (
    Feature,
    builtin_features,
    regex_feature,
    where_pattern,
)
from rnn_dissect.neurons.ranking import Scores, score_units
from rnn_dissect.neurons.tuning import (
    Snapshot,
    TuningCurve,
    norm_trajectories,
    tuning_curves,
    unit_image,
)
from rnn_dissect.render.heatmap import colour_scale, heatmap_terminal, legend_terminal
from rnn_dissect.render.heatmap_svg import heatmap_svg
from rnn_dissect.render.neuron_plots import (
    param_norms_figure,
    saturation_figure,
    save_figure,
    score_curves_figure,
    unit_training_figure,
)
from rnn_dissect.reports import collect_live, neuron_inputs, neuron_page
from rnn_dissect.reports.neuron_inputs import Where
from rnn_dissect.reports.neuron_page import label as _label
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = [
    "Report",
    "analyse_and_write",
    "summary",
    "terminal_heatmap",
    "write_report",
]


PAGE_EXCERPT = 500  # characters of text per unit on heatmaps.html (besides its contexts)


@dataclass
class Report:
    scores: Scores
    heat_units: list[UnitRef]  # the units drawn in heatmaps.html, in order
    files: list[Path] = field(default_factory=list)  # everything written
    contexts: list[UnitContexts] = field(default_factory=list)  # heat_units' (contexts.json)
    tuning: dict[str, Any] = field(default_factory=dict)  # tuning.json's content ({}: no snapshots)
    curves: list[TuningCurve] = field(default_factory=list)  # what tuning.json rounds


def _heat_units(scores: Scores, per_feature: int, extra: Sequence[UnitRef]) -> list[UnitRef]:
    out: list[UnitRef] = []
    for name in scores.features:
        for r in scores.ranking(name, per_feature):
            u = UnitRef.from_dict(r)
            if u not in out:
                out.append(u)
    return out + [u for u in extra if u not in out]


def _context_dict(uc: UnitContexts) -> dict[str, object]:
    def side(cs: list[Context]) -> list[dict[str, object]]:
        return [
            {"position": c.position, "value": round(c.value, 6), "start": c.start, "text": c.text}
            for c in cs
        ]

    return {
        **uc.unit.to_dict(),
        "skipped": uc.skipped,  # characters 0 … skipped − 1 not ranked (the warm-up)
        "top": side(uc.top),
        "bottom": side(uc.bottom),
    }


def write_report(
    acts: Activations,
    out: str | Path,
    features: Sequence[Feature],
    *,
    top: int | None = 20,
    per_feature: int = 3,
    extra_units: Sequence[UnitRef] = (),
    excerpt: int = PAGE_EXCERPT,
    contexts: int = 5,
    window: int = 30,
    snapshots: Sequence[Snapshot] | None = None,
    threshold: float = 0.5,
    snapshot_features: Sequence[Feature] | None = None,
    figures: bool = True,
    where: Where | None = None,
) -> Report:
    """Score, rank, draw and write (see the module docstring); returns what was written.
    ``snapshot_features``: the features over the snapshots' probe text, when it is not
    ``acts.text`` (default: ``features``). ``figures=False`` leaves out the PNG/SVG figures
    (the JSON files and heatmaps.html are the same). ``where``: score only the characters
    its pattern selects (``--where``; ``neurons.json`` and the page say how many)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scores = score_units(acts, features, rows=None if where is None else where.rows)
    if where is not None:
        scores.meta["where"] = where.to_dict()
    files = [out / "neurons.json"]
    write_atomic(files[0], [scores.to_json(top).encode("utf-8")])

    units = _heat_units(scores, per_feature, extra_units)
    ctx = top_contexts(acts, units, contexts, window)
    files.append(out / "heatmaps.html")
    approx = acts.collection.get("mode") == "approximate"  # then said on the page itself
    note = describe(acts.collection) if approx else ""
    page = neuron_page.render(acts, scores, units, ctx, per_feature, extra_units, excerpt, note)
    write_atomic(files[-1], [page.encode("utf-8")])
    files.append(out / "contexts.json")
    write_atomic(
        files[-1], [(json.dumps([_context_dict(c) for c in ctx], indent=1) + "\n").encode()]
    )

    if figures:
        files += _write_heatmap_svgs(acts, scores, extra_units, out, excerpt)
    sats = gate_saturation(acts)
    if sats and figures:
        files += save_figure(saturation_figure(sats), out / "saturation")
    rep = Report(scores, units, files, ctx)
    if snapshots:
        probe_features = features if snapshot_features is None else snapshot_features
        probe_rows = None if where is None else where.probe_rows
        rep.curves = tuning_curves(snapshots, probe_features, threshold, rows=probe_rows)
        norms = _norms(rep.curves, snapshots)
        rep.tuning = _tuning_dict(rep.curves, norms, threshold)
        files += _write_tuning(out, rep.curves, rep.tuning, norms, snapshots, figures)
    return rep


def _write_heatmap_svgs(
    acts: Activations, scores: Scores, extra: Sequence[UnitRef], out: Path, excerpt: int
) -> list[Path]:
    """``heatmap_{feature}.svg`` (its best unit) and ``heatmap_l{k}_{kind}{u}.svg`` (units
    asked for): the first ``excerpt`` characters, coloured as on heatmaps.html."""
    n = min(excerpt, acts.n_chars)
    jobs: list[tuple[str, UnitRef, str]] = []
    for name in scores.features:
        r = scores.ranking(name, 1)
        if r:
            u = UnitRef.from_dict(r[0])
            jobs.append(
                (
                    re.sub(r"[^\w.-]", "_", name),
                    u,
                    f"{name}: {_label(u)}, score {float(r[0]['score']):+.3f}",
                )
            )
    for u in extra:
        jobs.append((f"l{u.layer}_{u.kind}{u.unit}", u, _label(u)))
    files = []
    for stem, u, title in jobs:
        svg = heatmap_svg(acts.text[:n], *_unit_colours(acts, u, n), title=title)
        files.append(out / f"heatmap_{stem}.svg")
        write_atomic(files[-1], [svg.encode("utf-8")])
    return files


Norms = dict[UnitRef, tuple[np.ndarray, np.ndarray, np.ndarray]]  # unit → (steps, weight, grad)


def _norms(curves: Sequence[TuningCurve], snapshots: Sequence[Snapshot]) -> Norms:
    """Each best unit's (steps, weight, grad) norms per snapshot ({} when none recorded)."""
    if not any(s.weight_norms is not None for s in snapshots):
        return {}
    return {u: norm_trajectories(snapshots, u) for u in dict.fromkeys(c.unit for c in curves)}


def _tuning_dict(curves: Sequence[TuningCurve], norms: Norms, threshold: float) -> dict[str, Any]:
    """``tuning.json``'s content (see the module docstring)."""
    return {
        c.feature: {
            **c.unit.to_dict(),
            "steps": c.steps.tolist(),
            "scores": [round(float(v), 6) for v in c.scores],
            "best_any": [round(float(v), 6) for v in c.best_any],
            "threshold": threshold,
            "crossed_at": c.crossed_at,
            **({"param_norms": _norms_dict(*norms[c.unit][1:])} if norms else {}),
        }
        for c in curves
    }


def _write_tuning(
    out: Path,
    curves: Sequence[TuningCurve],
    doc: dict[str, Any],
    norms: Norms,
    snapshots: Sequence[Snapshot],
    figures: bool = True,
) -> list[Path]:
    """``tuning.json`` (``doc``) and, with ``figures``, the score curves, the param norms and
    each best unit over the probe text per snapshot."""
    files = [out / "tuning.json"]
    write_atomic(files[0], [(json.dumps(doc, indent=1) + "\n").encode("utf-8")])
    if not figures:
        return files
    files += save_figure(score_curves_figure(curves), out / "score_curves")
    best = list(dict.fromkeys(c.unit for c in curves))
    if norms:
        steps = curves[0].steps
        weight = np.array([norms[u][1] for u in best]).reshape(len(best), len(steps))  # (U, S)
        grad = np.array([norms[u][2] for u in best]).reshape(len(best), len(steps))  # (U, S)
        labels = [
            f"l{u.layer} {u.kind}{u.unit} ({', '.join(c.feature for c in curves if c.unit == u)})"
            for u in best
        ]
        fig = param_norms_figure(steps, best, weight, grad, labels)
        files += save_figure(fig, out / "param_norms")
    for u in best:
        steps, image = unit_image(snapshots, u)
        _, scale = colour_scale(u.kind, image)
        fig = unit_training_figure(steps, image, _label(u), scale=scale)
        files += save_figure(fig, out / f"unit_l{u.layer}_{u.kind}{u.unit}")
    return files


def _norms_dict(weight: np.ndarray, grad: np.ndarray) -> dict[str, list[float | None]]:
    def as_list(a: np.ndarray) -> list[float | None]:
        return [None if np.isnan(v) else float(f"{v:.9g}") for v in a]  # 9 significant digits

    return {"weight": as_list(weight), "grad": as_list(grad)}


def summary(scores: Scores, top: int = 3) -> str:
    """A few lines per feature: its best units and scores, for the terminal."""
    lines = [f"{scores.meta.get('n_chars', '?')} characters, AUC {scores.auc_method}"]
    where = scores.meta.get("where")
    lines += [f"  {where['statement']}"] if isinstance(where, dict) else []
    over = "the scored characters" if isinstance(where, dict) else "this text"
    how = scores.meta.get("collection")
    lines += [f"  {describe(how)}"] if isinstance(how, dict) and how else []
    for name, boolean in zip(scores.features, scores.boolean, strict=True):
        ranked = scores.ranking(name, top)
        metric = "2AUC-1" if boolean else "r"
        best = ", ".join(f"l{r['layer']} {r['kind']}{r['unit']} {r['score']:+.3f}" for r in ranked)
        lines.append(f"  {name:14s} {metric:6s} {best or f'(constant over {over})'}")
    auc = (
        "exact, from ranks"
        if scores.auc_method == "exact"
        else f"from per-unit histograms of the values, within ±{scores.score_error:.2g}"
    )
    kinds = ", ".join(
        f"{k} {KIND_WORDS[k].split(' (')[0]}" for k in KINDS.get(str(scores.meta.get("cell")), ())
    )
    lines += [
        "  scores: r = Pearson correlation (numeric features); 2AUC-1 = 2·ROC-AUC − 1 (yes/no "
        f"features; AUC {auc}); ±1 perfect, 0 none",
        "  units: l1 c48 = layer 1, kind c, unit 48" + (f"; kinds: {kinds}" if kinds else ""),
    ]
    return "\n".join(lines)


def _unit_colours(acts: Activations, u: UnitRef, n: int) -> tuple[np.ndarray, float, float]:
    """A unit's values over the first ``n`` characters and its (center, scale) of colour."""
    col = acts.rows((u.layer, u.kind), 0, n)[:, u.unit]
    return (col, *colour_scale(u.kind, col))


def terminal_heatmap(acts: Activations, unit: UnitRef, width: int = 100, excerpt: int = 800) -> str:
    """One unit over the first ``excerpt`` characters, as ANSI colours ``width`` wide."""
    n = min(excerpt, acts.n_chars)
    col, center, scale = _unit_colours(acts, unit, n)
    return heatmap_terminal(acts.text[:n], col, width, center, scale)


def analyse_and_write(
    model: str | Path,
    out: str | Path,
    *,
    text: str | None = None,
    layer: int | None = None,
    top: int = 20,
    units: Sequence[str] = (),
    regexes: Sequence[str] = (),
    max_chars: int = 200_000,
    unknown: str = "error",
    best: bool = False,
    warmup: int = 500,
    approximate: bool = False,
    memory_mb: int = 512,
    keep_activations: bool = False,
    backend: str = "numpy",
    device: str = "cpu",
    where: str | None = None,
) -> int:
    """``rnn-dissect neurons`` (its flags are these arguments): score every unit of ``model``
    (a run directory or a checkpoint) over the text, write the report into ``out``, print
    the best units; returns the exit code. Activations equal one sequential pass (unless
    ``approximate``: :func:`rnn_dissect.neurons.collect.collect`) and stream to
    ``out/activations`` when they would not fit in ``memory_mb`` (removed afterwards unless
    ``keep_activations``). ``backend`` / ``device``: what reads the text (numpy, or PyTorch
    on cpu | cuda: :func:`rnn_dissect.neurons.collect.engine`). ``where``: a regular
    expression; only the characters its matches cover are scored
    (:func:`rnn_dissect.neurons.features.where_rows`)."""
    source = Path(model)
    if not source.exists():
        raise UserError(f"{source} does not exist; pass a run directory or a .safetensors file")
    if best and not source.is_dir():
        raise UserError(f"--best needs a run directory, and {source} is not one")
    if top < 1 or max_chars < 1 or warmup < 0 or memory_mb < 1:
        raise UserError("--top, --max-chars and --memory-mb must be ≥ 1, --warmup ≥ 0")
    net = checkpoint.load(source / "best.safetensors" if best else source)
    engine(net, np.float32, backend, device)  # torch missing, no GPU: fail before reading
    cfg = net.config
    if layer is not None and not 0 <= layer < cfg.num_layers:
        raise UserError(
            f"--layer {layer} does not exist; the model has layers 0..{cfg.num_layers - 1}"
        )
    refs = [neuron_inputs.parse_unit(s, net, layer) for s in units]
    patterns = [neuron_inputs.parse_regex(s) for s in regexes]
    for name, pattern in patterns:  # bad patterns fail before the long collection
        regex_feature(name, pattern, "")
    if where is not None:  # a bad pattern fails before the text is read
        where_pattern(where)
    chars, origin = neuron_inputs.read_text(source, net, text, unknown, max_chars)
    snaps = neuron_inputs.snapshots(source, layer)
    selected = None
    if where is not None:  # matching nothing in the text fails here, before any writing
        selected = neuron_inputs.select_rows(where, chars, snaps[0].acts.text if snaps else None)
        if snaps and selected.probe_rows is None:  # the text has matches: tuning alone is left
            print(
                f"tuning over training left out: --where {shlex.quote(where)} matches no character "
                "of the snapshots' probe text",
                file=sys.stderr,
            )
            snaps = []

    out = Path(out)
    make_dir(out)
    kinds = len(KINDS[cfg.cell]) * cfg.num_layers
    size = len(chars) * kinds * cfg.hidden_size * 4  # float32 bytes of every array
    stream = size > memory_mb << 20 or keep_activations
    act_dir = out / "activations"
    if stream and _not_ours(act_dir):  # someone else's folder: never removed
        raise UserError(
            f"{act_dir} exists and is not a folder of activations; neurons streams them "
            "there (and removes it after): move it, or choose another --out"
        )
    where = collect_live.check_space(act_dir, size, keep_activations) if stream else ""
    print(
        f"{cfg.cell} H={cfg.hidden_size} L={cfg.num_layers}: {len(chars):,} characters of "
        f"{origin}, {size / 2**20:,.0f} MB of float32 activations{where}"
        f"{f', read by PyTorch on {device}' if backend == 'torch' else ''}",
        file=sys.stderr,
    )
    with collect_live.collecting(len(chars)) as tick:
        acts = collect(
            net,
            chars,
            exact=not approximate,
            warmup=warmup,
            out_dir=act_dir if stream else None,
            backend=backend,
            device=device,
            progress=tick,
        )
    acts = acts.layer_only(layer)
    feats = _features(chars, patterns)
    snap_feats = _features(snaps[0].acts.text, patterns) if snaps else None
    try:
        rep = write_report(
            acts,
            out,
            feats,
            top=top,
            extra_units=refs,
            snapshots=snaps,
            snapshot_features=snap_feats,
            where=selected,
        )
        print(summary(rep.scores))
        top_unit = _overall_best(rep.scores)
        if top_unit is not None:
            f, r = top_unit
            u = UnitRef.from_dict(r)
            print(f"\nbest overall: layer {u.layer} {u.kind} unit {u.unit}, {f} {r['score']:+.3f}")
            if sys.stdout.isatty() or os.environ.get("FORCE_COLOR"):
                width = min(120, shutil.get_terminal_size((100, 24)).columns)
                print(terminal_heatmap(acts, u, width, excerpt=400))
                center, scale = colour_scale(
                    u.kind, acts.rows((u.layer, u.kind), 0, 400)[:, u.unit]
                )
                print(
                    "colour: " + legend_terminal(center, scale) + "  (hover values: heatmaps.html)"
                )
    finally:
        if stream and not keep_activations:
            del acts
            shutil.rmtree(act_dir, ignore_errors=True)
    tuned = " and tuning over training" if snaps else ""
    print(
        f"\nwrote {out}/neurons.json, heatmaps.html, contexts.json{tuned} ({len(rep.files)} files)"
    )
    return 0


def _not_ours(act_dir: Path) -> bool:
    """``act_dir`` holds something other than activations this command wrote."""
    if not act_dir.exists() or (act_dir / "activations.json").is_file():
        return False
    return not act_dir.is_dir() or any(act_dir.iterdir())


def _overall_best(scores: Scores) -> tuple[str, dict[str, int | str | float]] | None:
    """(feature, ranking entry) with the largest |score| over every feature."""
    tops = [(name, r[0]) for name in scores.features if (r := scores.ranking(name, 1))]
    return max(tops, key=lambda fr: abs(float(fr[1]["score"])), default=None)


def _features(text: str, regexes: list[tuple[str, str]]) -> list[Feature]:
    return builtin_features(text) + [regex_feature(n, p, text) for n, p in regexes]
