"""The explorer's neurons view: what it shows beside the dissection of a trained model.

The activations themselves are the dissection's own (``h``; LSTM ``c`` and gates i f g o;
GRU r z n — exact, float64, row t = the value after reading character t of the inputs
text[:-1]); this module adds what ranks the units:

- :func:`typed`: every unit scored against the built-in features of the typed text
  (:func:`rnn_dissect.neurons.ranking.score_units`, as ``rnn-dissect neurons`` does); few
  characters, so a rough ranking, and the page says so;
- :func:`from_neurons_dir`: the rankings a ``rnn-dissect neurons`` output directory wrote
  (``neurons.json``), over its long text;
- :func:`tuning`: with a run directory's ``snapshots/``, each feature's best unit at the last
  snapshot, its score at every snapshot, and its activation over (the head of) the probe text
  at every snapshot — how it tuned in during training.

:func:`neurons_view` joins them: ``{text, ranking, boolean, file, tuning}`` with ``file`` and
``tuning`` None when there is nothing to read. The last two read files once; the server keeps
them (``static``) and recomputes only :func:`typed` for each new text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import ModelConfig
from rnn_dissect.neurons.activations import Activations, load
from rnn_dissect.neurons.features import builtin_features
from rnn_dissect.neurons.ranking import score_units
from rnn_dissect.neurons.tuning import Snapshot, tuning_curves, unit_image

__all__ = ["TOP", "from_neurons_dir", "neurons_view", "tuning", "typed"]

TOP = 8  # units listed per feature
PROBE_CHARS = 240  # probe-text characters drawn per snapshot


def _acts(d: Dissection, inputs: str) -> Activations:
    """The dissection's forward values as :class:`Activations` over ``inputs`` (T chars)."""
    arrays: dict[tuple[int, str], np.ndarray] = {}
    for k, row in enumerate(d.h):
        arrays[(k, "h")] = np.stack(row).reshape(len(row), -1)  # (T, H)
    if d.c is not None:
        for k, row in enumerate(d.c):
            arrays[(k, "c")] = np.stack(row).reshape(len(row), -1)  # (T, H)
    if d.gates is not None:
        for k, gates in enumerate(d.gates):
            for name in gates[0]:
                arrays[(k, name)] = np.stack([g[name] for g in gates]).reshape(len(gates), -1)
    cfg = d.run.model.config
    return Activations(cfg.cell, cfg.vocab, inputs, arrays)


def typed(d: Dissection, text: str, top: int = TOP) -> dict[str, Any]:
    """Units ranked on the typed text: ``{text, ranking, boolean}`` (ranking: feature →
    ``[{layer, unit, kind, score}]``, best |score| first)."""
    inputs = text[:-1]
    scores = score_units(_acts(d, inputs), builtin_features(inputs))
    return {
        "text": inputs,
        "ranking": {f: scores.ranking(f, top) for f in scores.features},
        "boolean": dict(zip(scores.features, scores.boolean, strict=True)),
    }


def from_neurons_dir(
    directory: str | Path, top: int = TOP, config: ModelConfig | None = None
) -> dict[str, Any]:
    """The rankings of a ``rnn-dissect neurons`` output directory (its ``neurons.json``);
    with ``config``, they must be of a model of that cell, hidden size and depth."""
    path = Path(directory) / "neurons.json"
    if not path.is_file():
        raise UserError(
            f"{directory} has no neurons.json; pass the --out directory of rnn-dissect neurons"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        info = doc.get("feature_info", {})
        ranking = {f: list(rs)[:top] for f, rs in doc["features"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{path} is not a neurons.json written by rnn-dissect neurons") from None
    if config is not None:
        _check_same_model(path, doc, config)
    n = doc.get("n_chars")
    return {
        "label": f"neurons.json ({n:,} characters)" if isinstance(n, int) else "neurons.json",
        "ranking": ranking,
        "boolean": {f: bool(info.get(f, {}).get("boolean", False)) for f in ranking},
    }


def _check_same_model(path: Path, doc: dict[str, Any], cfg: ModelConfig) -> None:
    """The rankings name units of ``cfg``'s model: its cell, hidden size, layers."""
    arrays = doc["arrays"] if isinstance(doc.get("arrays"), list) else []
    sizes = {a.get("hidden_size") for a in arrays if isinstance(a, dict)}
    layers = {a.get("layer") for a in arrays if isinstance(a, dict)}
    if (
        doc.get("cell") != cfg.cell
        or sizes != {cfg.hidden_size}
        or not layers <= set(range(cfg.num_layers))
    ):
        theirs = f"{doc.get('cell')} H={','.join(map(str, sorted(sizes, key=str)))}"
        raise UserError(
            f"--neurons {path.parent} ranks the units of another model ({theirs}), not of this "
            f"{cfg.cell} H={cfg.hidden_size} L={cfg.num_layers}; run `rnn-dissect neurons` on "
            "this model and pass its --out"
        )


def tuning(run_dir: str | Path, probe_chars: int = PROBE_CHARS) -> dict[str, Any] | None:
    """From ``run_dir/snapshots/step*/``: ``{steps, text, units: [{layer, kind, unit,
    image (S, N)}], curves: feature → {layer, kind, unit, scores (S,), threshold,
    crossed_at}}``; None without snapshots."""
    d = Path(run_dir) / "snapshots"
    if not d.is_dir():
        return None
    snaps = [
        Snapshot(int(sd.name[4:]), load(sd))
        for sd in sorted(d.glob("step*"), key=lambda p: p.name)
        if sd.name[4:].isdigit() and (sd / "activations.json").is_file()
    ]
    snaps.sort(key=lambda s: s.step)
    if not snaps:
        return None
    text = snaps[0].acts.text
    curves = tuning_curves(snaps, builtin_features(text))
    units = list(dict.fromkeys(c.unit for c in curves))
    n = min(probe_chars, len(text))
    return {
        "steps": [s.step for s in snaps],
        "text": text[:n],
        "units": [
            {**u.to_dict(), "image": unit_image(snaps, u)[1][:, :n]}  # (S, n)
            for u in units
        ],
        "curves": {
            c.feature: {
                **c.unit.to_dict(),
                "scores": [round(float(v), 4) for v in c.scores],
                "threshold": c.threshold,
                "crossed_at": c.crossed_at,
            }
            for c in curves
        },
    }


def neurons_view(d: Dissection, text: str, static: dict[str, Any] | None = None) -> dict[str, Any]:
    """The view's data: :func:`typed` plus ``static`` (``{"file": …, "tuning": …}``)."""
    return {"file": None, "tuning": None, **(static or {}), **typed(d, text)}
