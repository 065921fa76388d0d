"""``dissect --backend torch``: the forward pass again through PyTorch, beside the exact one.

What a dissection shows — every gradient, Jacobian and carried term — comes from the exact
float64 engine (:mod:`rnn_dissect.bptt`): PyTorch has no way to hand back each step's
terms. What PyTorch can run is the forward pass, and that is what it is asked for: the same
weights in ``nn.RNN/LSTM/GRU`` (float32, cuDNN with ``--device cuda``) read ``text[:-1]``
from the same initial state (:class:`~rnn_dissect.nets.torch_forward.TorchForward`), and
its values are compared with the engine's:

    loss       mean_t CE(W_head h_t + b_head, y_t)        vs  the dissection's L
    step_loss  CE_t for t = 1..T                          vs  L̄_t
    h, c       every layer and step                       vs  the dissection's h_t, c_t
    gates      i f g o / r z n, every layer and step      vs  its gates

Agreement is |torch − exact| ≤ tol·(1 + |exact|) everywhere, tol = 1e-4 (float32 rounding
carried through a short text). The result is ``torch_forward`` in ``dissection.json`` and a
line of the summary; a disagreement is also an exit status of 1 (the files are written):
then this model does not compute in PyTorch what it computes here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.nets.model import CharModel
from rnn_dissect.nets.torch_forward import TorchForward, device_of

__all__ = ["TOL", "compare", "device_of", "line"]

TOL = 1e-4


def compare(
    model: CharModel, text: str, d: Dissection[Any], init: dict[str, np.ndarray], device: str
) -> dict[str, Any]:
    """Run ``text[:-1]`` through torch from ``init`` (h0 / c0 (L, H); zeros otherwise) and
    compare with ``d``: the ``torch_forward`` record (module docstring)."""
    import torch  # imported by nets.torch_forward already

    fwd = TorchForward.of(model, np.float32, device)
    cfg = model.config
    L, H = cfg.num_layers, cfg.hidden_size
    idx = model.encode(text)
    x = torch.as_tensor(idx[:-1, None], dtype=torch.int64, device=fwd.device)  # (T, 1)
    y = torch.as_tensor(idx[1:], dtype=torch.int64, device=fwd.device)  # (T,)
    state = tuple(
        torch.as_tensor(init.get(name, np.zeros((L, H))), dtype=torch.float32, device=fwd.device)[
            :, None
        ]
        for name in (f"{s}0" for s in cfg.states)
    )  # (L, 1, H) each
    out, _ = fwd.run_tensors(x, state)
    logits = fwd.logits_tensor(out[(L - 1, "h")][:, 0])  # (T, V)
    ce = torch.nn.functional.cross_entropy(logits.double(), y, reduction="none")  # (T,)
    got = {key: v[:, 0].double().cpu().numpy() for key, v in out.items()}  # (T, H)

    want: dict[tuple[int, str], np.ndarray] = {}
    hs, cs, gates = d.h, d.c, d.gates  # [layer][t − 1] (properties: read once)
    for k in range(L):
        want[(k, "h")] = np.array(hs[k])
        if cs is not None:
            want[(k, "c")] = np.array(cs[k])
        if gates is not None:
            for name in gates[k][0]:
                want[(k, name)] = np.array([g[name] for g in gates[k]])
    T = len(idx) - 1
    step = np.array([d.step_loss[t] for t in range(1, T + 1)])
    diffs = {
        "loss": _diff(np.array([float(ce.mean())]), np.array([d.loss])),
        "step_loss": _diff(ce.cpu().numpy(), step),
    }
    for kind in dict.fromkeys(kind for _, kind in want):
        diffs[kind] = max(_diff(got[key], want[key]) for key in want if key[1] == kind)
    worst = max(
        max(_rel(got[key], want[key]) for key in want),
        _rel(ce.cpu().numpy(), step),
        _rel(np.array([float(ce.mean())]), np.array([d.loss])),
    )
    return {
        "device": str(fwd.device),
        "dtype": "float32",
        "loss": float(ce.mean()),
        "max_abs_diff": diffs,
        "tolerance": TOL,
        "agrees": bool(worst <= TOL),
    }


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) if a.size else 0.0


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / (1 + |b|); NaN anywhere counts as a disagreement."""
    r = np.abs(a - b) / (1 + np.abs(b))
    return float("inf") if np.isnan(r).any() else float(r.max(initial=0.0))


def line(rec: dict[str, Any]) -> str:
    """The summary's line for a ``torch_forward`` record."""
    diffs = "  ".join(f"{k} {v:.1e}" for k, v in rec["max_abs_diff"].items())
    verdict = (
        "agrees" if rec["agrees"] else f"DISAGREES (beyond {rec['tolerance']:g}·(1 + |exact|))"
    )
    return (
        f"PyTorch forward ({rec['device']}, float32): loss {rec['loss']:.6f}, {verdict} with "
        f"the float64 engine; max |Δ|: {diffs}"
    )
