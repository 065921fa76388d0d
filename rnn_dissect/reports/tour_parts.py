"""The tour's computed parts, each the same computation as one command, as plain data.

- :func:`nn_part`: the 3:1:1 network as ``rnn-dissect nn`` builds it (and with ``--x
  -0.5,1.2,-2.0``, the ReLU-off case), one SGD step of lr 0.1;
- :func:`unrolled_part`: ``rnn-dissect rnn [--cell lstm]`` on "hello" (H 3, seed 0) and the
  explorer's data for the same model and text;
- :func:`flow_part`: ``rnn-dissect flow`` (RNN vs LSTM vs GRU, H 16, seed 0);
- :func:`neurons_part`: ``rnn-dissect neurons RUN --max-chars N`` into ``out`` (the same
  files), plus what the page draws, in memory: the snapshots, the tuning curves and each best
  unit's top contexts.

Each returns a dataclass; :mod:`rnn_dissect.reports.tour_numbers` reads the numbers the prose
uses from them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnn_dissect.bptt.dissection import Dissection, dissect_text
from rnn_dissect.bptt.reach import DEFAULT_TEXT, Comparison, compare
from rnn_dissect.nets import mlp
from rnn_dissect.nets.model import CharModel
from rnn_dissect.neurons.activations import Activations, UnitRef
from rnn_dissect.neurons.collect import collect
from rnn_dissect.neurons.extremes import UnitContexts
from rnn_dissect.neurons.features import builtin_features
from rnn_dissect.neurons.ranking import Scores, score_units
from rnn_dissect.neurons.tuning import Snapshot, TuningCurve
from rnn_dissect.render import graph as render_graph
from rnn_dissect.reports import neuron_inputs
from rnn_dissect.reports.explore import fresh_model, model_data
from rnn_dissect.reports.neurons import write_report
from rnn_dissect.reports.nn import leaves
from rnn_dissect.reports.rnn import plan
from rnn_dissect.weights import checkpoint

__all__ = [
    "OFF_X",
    "TEXT",
    "NNPart",
    "NeuronsPart",
    "UnrolledPart",
    "flow_part",
    "neurons_cost",
    "neurons_part",
    "nn_part",
    "unrolled_part",
]

TEXT = "hello"  # min-char-rnn's example, `rnn-dissect rnn`'s default text
OFF_X = (-0.5, 1.2, -2.0)  # the README's input that switches the 3:1:1 network's ReLU off
LR = 0.1  # the SGD step of `nn` and `rnn`


@dataclass
class NNPart:
    net: mlp.MLP
    update: mlp.SGDUpdate
    off: mlp.MLP  # the same network with x = OFF_X: z₁ < 0, the ReLU blocks the gradient
    svg: str | None  # the graph drawing (None without Graphviz)
    off_svg: str | None


@dataclass
class UnrolledPart:
    cell: str
    d: Dissection[Any]  # what `rnn-dissect rnn --cell CELL` computes and writes
    explorer: dict[str, Any]  # the explorer's page data for the same model and text


@dataclass
class NeuronsPart:
    scores: Scores
    acts: Activations
    snapshots: list[Snapshot]
    contexts: dict[UnitRef, UnitContexts]  # each feature's best unit → its extremes
    tuning: dict[str, Any]  # tuning.json's content ({} without snapshots)
    curves: list[TuningCurve]  # per feature its best unit's score per snapshot (unrounded)
    files: list[Path]


def nn_part() -> NNPart:
    """``rnn-dissect nn`` and ``rnn-dissect nn --x -0.5,1.2,-2.0``, drawn."""
    sizes = mlp.DEFAULT_SIZES
    net = mlp.build(leaves(sizes, None, {}), sizes)
    update = mlp.sgd_update(net, LR)
    off = mlp.build(leaves(sizes, None, {"x": list(OFF_X)}), sizes)
    svg: str | None
    off_svg: str | None
    try:
        svg = render_graph.to_svg(net.graph, title="The 3:1:1 network: the ReLU passes (z₁ > 0)")
        off_svg = render_graph.to_svg(off.graph, title="x flipped: the ReLU is off (z₁ < 0, h = 0)")
    except render_graph.GraphvizMissing:
        svg = off_svg = None
    return NNPart(net, update, off, svg, off_svg)


def unrolled_part(cell: str, text: str = TEXT, hidden: int = 3) -> UnrolledPart:
    """``rnn-dissect rnn --cell CELL --text TEXT --hidden H`` (seed 0, lr 0.1, sgd) and the
    explorer's data for it."""
    model = fresh_model(cell, text, hidden, 1)
    kw, _ = plan(model, len(text) - 1, None)
    d = dissect_text(model, text, lr=LR, **kw)
    title = f"{cell.upper()} H={hidden} unrolled over {text!r}"
    return UnrolledPart(cell, d, model_data(model, text, title=title))


def flow_part() -> Comparison:
    """``rnn-dissect flow`` with its defaults."""
    return compare(DEFAULT_TEXT, hidden=16, seed=0)


def neurons_cost(model: CharModel, probe: str, n_snapshots: int, n_chars: int) -> float:
    """Seconds the neuron analysis will take, measured: one snapshot's worth of it (collect
    the probe text with ``model``, score every unit against every feature) for each
    snapshot, and for the ``n_chars`` of validation text that, scaled by length, ×1.5 for
    its contexts and heatmaps (measured: within ±30% on this machine, loaded or not)."""
    t0 = time.perf_counter()
    acts = collect(model, probe, batch=1)
    score_units(acts, builtin_features(probe))
    t = time.perf_counter() - t0
    return t * (n_snapshots + 1.5 * n_chars / max(len(probe), 1))


def neurons_part(run_dir: Path, out: Path, text: str) -> NeuronsPart:
    """``rnn-dissect neurons RUN_DIR --out OUT --max-chars N`` where ``text`` is the head of
    the run's validation split (N characters, what the command reads): the same exact
    collection and the same JSON files (not the PNG/SVG figures); and for the page the
    activations, the snapshots, the tuning and the best units' top contexts (those of
    contexts.json: 5 each, ±30 characters), from the report in memory."""
    net = checkpoint.load(run_dir)
    acts = collect(net, text, exact=True, warmup=500)
    snaps = neuron_inputs.snapshots(run_dir, None)
    snap_feats = builtin_features(snaps[0].acts.text) if snaps else None
    rep = write_report(
        acts,
        out,
        builtin_features(text),
        top=20,
        snapshots=snaps,
        snapshot_features=snap_feats,
        figures=False,
    )
    best = dict.fromkeys(u for f in rep.scores.features if (u := rep.scores.best(f)))
    ctx = dict(zip(rep.heat_units, rep.contexts, strict=True))  # the best units among them
    return NeuronsPart(
        rep.scores, acts, snaps, {u: ctx[u] for u in best}, rep.tuning, rep.curves, rep.files
    )
