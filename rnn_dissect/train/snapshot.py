"""A training snapshot: the model at one step, kept for the analyses of how units tune in.

``snapshots/stepNNNNNNN/`` (written by the trainer every ``--snapshot-every`` steps) holds

    model.safetensors        the weights at that step (a checkpoint: rnn_dissect.weights.checkpoint)
    probe.txt                the probe text (the head of the validation split), UTF-8
    param_norms.safetensors  per unit, the norm of the weights feeding it and of the
                             (unclipped) gradient of the step that led there

Activations are not stored: the neuron analyses collect them from these weights over the
probe text when they run (:func:`rnn_dissect.neurons.tuning.read_snapshots`; one sequential
float32 pass, the numbers the trainer would have recorded). Snapshots written before this
layout (``activations.json`` and the arrays instead of the weights) still load there.

Per-unit norms, for torch-named weights (or their gradients) ``rnn.weight_ih_l{k}`` (G·H, in)
and ``rnn.weight_hh_l{k}`` (G·H, H), unit u of gate block g:

    norm[(k, gate g)][u] = ‖[W_ih[g·H + u], W_hh[g·H + u]]‖₂
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn_dissect.nets.cells import GATES
from rnn_dissect.nets.model import CharModel
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights import safetensors_file as stf

__all__ = [
    "MODEL_FILE",
    "NORMS_FILE",
    "PROBE_FILE",
    "Norms",
    "load_unit_norms",
    "read",
    "save_unit_norms",
    "unit_param_norms",
    "write",
]

Norms = dict[tuple[int, str], np.ndarray]  # (layer, gate) -> (H,), as unit_param_norms returns
MODEL_FILE = "model.safetensors"
PROBE_FILE = "probe.txt"
NORMS_FILE = "param_norms.safetensors"


def unit_param_norms(tensors: dict[str, np.ndarray], cell: str, num_layers: int) -> Norms:
    """(layer, gate) -> (H,) ‖[W_ih[g·H + u], W_hh[g·H + u]]‖₂ (see the module docstring),
    computed in float64."""
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


def write(directory: str | Path, model: CharModel, probe: str, grad: Norms | None) -> None:
    """Fill a snapshot directory: the weights, the probe text, the weight and gradient
    norms (``grad`` None: no step taken yet)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    checkpoint.save(model, d / MODEL_FILE)
    (d / PROBE_FILE).write_text(probe, encoding="utf-8", newline="")
    cfg = model.config
    save_unit_norms(d, unit_param_norms(model.params, cfg.cell, cfg.num_layers), grad)


def read(directory: str | Path) -> tuple[CharModel, str] | None:
    """(model, probe text) of a snapshot directory; None for one without weights (older)."""
    d = Path(directory)
    if not (d / MODEL_FILE).is_file():
        return None
    with (d / PROBE_FILE).open(encoding="utf-8", newline="") as f:
        return checkpoint.load(d / MODEL_FILE), f.read()
