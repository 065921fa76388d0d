"""Every number the tour's prose uses, read from the computed parts into one flat dict.

Keys are dotted names (``nn.loss``, ``q2.term.3``, ``neurons.best.in_quote.score``); values
are plain JSON (int, float, str, or None for "never"). The prose
(:mod:`rnn_dissect.render.tour_text`) refers to these keys only, and ``tour.json`` holds the
dict, so every number on the page can be traced to the computation that made it — and the
tests compare each one with what the commands themselves write.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_dissect.bptt.reach import Comparison
from rnn_dissect.reports.tour_parts import NeuronsPart, NNPart, UnrolledPart

__all__ = ["MEMORY_FEATURES", "flow_numbers", "neuron_numbers", "nn_numbers", "unrolled_numbers"]

# Features a unit can only track by remembering (the rest are read off the current character).
MEMORY_FEATURES = ("in_quote", "bracket_depth", "line_position", "indent", "in_comment")

Numbers = dict[str, Any]
STRONG = 0.7  # |score| at which the page calls a unit a detector


def _f(v: Any) -> float:
    return float(np.asarray(v).ravel()[0])


def nn_numbers(p: NNPart) -> Numbers:
    """The 3:1:1 network: forward values, the chain rule's factors, the SGD step, ReLU off."""
    g, o, up = p.net.graph, p.off.graph, p.update
    yhat = _f(g["yhat"].value)
    return {
        "nn.sizes": ":".join(map(str, p.net.sizes)),
        "nn.z1": _f(g["z1"].value),
        "nn.h": _f(g["h1"].value),
        "nn.z2": _f(g["z2"].value),
        "nn.yhat": yhat,
        "nn.y": _f(g["y"].value),
        "nn.loss": float(g["loss"].value),
        "nn.d_yhat": _f(g["yhat"].grad),
        "nn.dsigma": yhat * (1 - yhat),
        "nn.d_z2": _f(g["z2"].grad),
        "nn.W2": _f(g["W2"].value),
        "nn.d_h": _f(g["h1"].grad),
        "nn.d_z1": _f(g["z1"].grad),
        "nn.x0": _f(g["x"].value),
        "nn.d_W1_0": _f(g["W1"].grad),
        "nn.d_W2": _f(g["W2"].grad),
        "nn.lr": up.lr,
        "nn.W2_new": _f(up.new["W2"]),
        "nn.loss_after": up.loss_after,
        "nn.off.z1": _f(o["z1"].value),
        "nn.off.h": _f(o["h1"].value),
        "nn.off.d_h": _f(o["h1"].grad),
        "nn.off.d_z1": _f(o["z1"].grad),
        "nn.off.d_W1_norm": float(np.linalg.norm(np.asarray(o["W1"].grad))),
        "nn.off.d_W2": _f(o["W2"].grad),
        "nn.off.loss": float(o["loss"].value),
    }


def unrolled_numbers(p: UnrolledPart, text: str) -> Numbers:
    """``rnn`` / ``lstm``: sizes, loss, the four answers' headline numbers."""
    d, k = p.d, p.cell
    cfg = d.run.model.config
    T = d.run.T
    whh = "rnn.weight_hh_l0"
    terms = d.step.norms[whh]  # (T,) ‖term_t‖ of dL/dW_hh
    total = d.grads[whh]
    parts = d.step.contributions[whh] if d.step.contributions is not None else None
    err = float(np.max(np.abs(sum(parts) - total))) if parts is not None else None
    carry = d.carry[0]
    lf = d.flow.layers[0]
    n_params = sum(int(np.size(v)) for v in d.run.model.params.values())
    out: Numbers = {
        f"{k}.text": text,
        f"{k}.inputs": text[:-1],
        f"{k}.targets": text[1:],
        f"{k}.T": T,
        f"{k}.H": cfg.hidden_size,
        f"{k}.V": len(cfg.vocab),
        f"{k}.params": n_params,
        f"{k}.loss": d.loss,
        f"{k}.grad_norm": d.update.grad_norm,
        f"{k}.lr": d.update.lr,
        f"{k}.whh_norm": float(np.linalg.norm(total)),
        f"{k}.h0_norm": float(np.linalg.norm(d.run.states[0][0][0].value)),  # layer 0's h_0
        f"{k}.whh_sum_err": err,
        f"{k}.whh_delta_norm": float(np.linalg.norm(d.update.delta[whh])),
        f"{k}.sigma_geomean": lf.verdict.spectral_geomean,
        f"{k}.lag_near": float(lf.lag[T - 1, T - 1]) if lf.lag is not None else None,
        f"{k}.lag_far": float(lf.lag[T - 1, 0]) if lf.lag is not None else None,
        f"{k}.mem.measured": d.memory.measured_bytes,
        f"{k}.mem.formula": d.memory.formula_bytes,
        f"{k}.mem.states": d.memory.parts["states"],
        f"{k}.mem.head": d.memory.parts["head"],
        f"{k}.mem.inputs": d.memory.parts["inputs"],
    }
    for t in range(T):
        out[f"{k}.term.{t + 1}"] = float(terms[t])
        n = carry[t].norms()
        out[f"{k}.dh_direct.{t + 1}"] = n["dh_direct"]
        out[f"{k}.dh_next.{t + 1}"] = n["dh_next"]
        for name in ("dc_next", "dh_raw"):
            if name in n:
                out[f"{k}.{name}.{t + 1}"] = n[name]
    if d.gates is not None:
        for gate in d.gates[0][0]:
            out[f"{k}.gate.{gate}"] = float(np.mean([np.mean(s[gate]) for s in d.gates[0]]))
    return out


def flow_numbers(cmp: Comparison) -> Numbers:
    """``flow``: how far back each cell's gradient reaches, and its decay per step."""
    out: Numbers = {"flow.T": cmp.steps, "flow.H": cmp.hidden, "flow.fall": cmp.fall}
    for r in cmp.rows:
        out[f"flow.{r.cell}.reach"] = r.reach
        out[f"flow.{r.cell}.decay"] = r.decay_per_step
        out[f"flow.{r.cell}.sigma"] = r.spectral_geomean
    return out


def _unit_name(r: dict[str, Any]) -> str:
    return f"layer {r['layer']} {r['kind']}{r['unit']}"


def neuron_numbers(p: NeuronsPart) -> Numbers:
    """``neurons``: per feature its best unit and score (neurons.json), the step it first
    reached the threshold on the probe text (tuning.json); the strongest memory feature."""
    sc, tuning = p.scores, p.tuning
    out: Numbers = {"neurons.n_chars": int(p.acts.n_chars), "neurons.features": len(sc.features)}
    strong = 0
    for name in sc.features:
        ranked = sc.ranking(name, 1)
        if not ranked:
            continue
        r = ranked[0]
        out[f"neurons.best.{name}.unit"] = _unit_name(r)
        out[f"neurons.best.{name}.score"] = float(r["score"])
        strong += abs(float(r["score"])) >= STRONG
        t = tuning.get(name)
        if t is not None:
            out[f"neurons.tuned.{name}.unit"] = _unit_name(t)
            out[f"neurons.tuned.{name}.crossed_at"] = t["crossed_at"]
            out[f"neurons.tuned.{name}.final"] = t["scores"][-1]
    out["neurons.strong"] = int(strong)
    out["neurons.strong_at"] = STRONG
    mem = [f for f in MEMORY_FEATURES if f"neurons.best.{f}.score" in out]
    if mem:
        top = max(mem, key=lambda f: abs(out[f"neurons.best.{f}.score"]))
        out["neurons.memory.feature"] = top
        out["neurons.memory.unit"] = out[f"neurons.best.{top}.unit"]
        out["neurons.memory.score"] = out[f"neurons.best.{top}.score"]
    if tuning:
        steps = next(iter(tuning.values()))["steps"]
        out["neurons.snapshots"] = len(steps)
        out["neurons.first_step"] = steps[0]
        out["neurons.last_step"] = steps[-1]
        out["neurons.threshold"] = next(iter(tuning.values()))["threshold"]
    return out
