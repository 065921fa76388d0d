"""What the forward pass must keep for the backward pass (question 3), measured and predicted.

Measured: every array some op's backward reads (``Node.saved``), over the nodes the loss
depends on, each counted once however many ops read it (h_t is read by the head at t and
by W_hh h_t at t + 1; a truncation ``detach`` passes the very same array on). Parameters
are not counted: they exist whether or not anyone trains.

Predicted, in float64/int64 (8 bytes a number), for T steps, batch B, hidden H, L layers:

    per layer:   RNN (T + 1)·B·H      h_0 … h_T
                 LSTM (7T + 1)·B·H    h_0 … h_T, c_0 … c_{T-1}, i f g o, tanh(c_t)
                 GRU (6T + 1)·B·H     h_0 … h_T, r, z, n, W_hn h + b_hn, h_{t-1} − n
    input:       T·B indices (one-hot), or T·B·I floats
    head:        many-to-many T·B·V probabilities + T·B target indices + 2 scalars (L's 1/T)
                 many-to-one  B·O probabilities + B·O targets

(c_T is never read: nothing after the last step needs it.) A projected LSTM (proj_size P,
h_t = W_hr m_t) keeps m_t = o ⊙ tanh(c_t) for W_hr's gradient and its h_t have P features:
7T·B·H + (T + 1)·B·P per layer.

A recording with another head (a watched torch module, :mod:`rnn_dissect.watch`, whose head
only injects the gradients torch sent to the module's outputs) counts what the cell steps
keep — the module's own forward cache — so its closed form has no head, and for LSTM and GRU
no top-layer h_T (no cell step reads it: (7T)·B·H and (6T)·B·H for one layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_dissect.autograd.engine import Kind
from rnn_dissect.bptt.unroll import Recording, Unrolled

__all__ = ["CacheEntry", "Memory", "formula_bytes", "forward_cache"]

_PER_STEP = {"rnn": 1, "lstm": 7, "gru": 6}  # (B, H) arrays kept per step and layer


@dataclass(frozen=True)
class CacheEntry:
    """One kept tensor. ``name`` is the id of the node whose value it is, or
    ``<node id>.<saved name>`` for an array only the op holds (softmax's probabilities)."""

    name: str
    shape: tuple[int, ...]
    bytes: int
    dtype: str
    t: int | None
    layer: int | None
    saved_by: tuple[str, ...]  # nodes whose backward reads it

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "bytes": self.bytes,
            "dtype": self.dtype,
            "t": self.t,
            "layer": self.layer,
            "saved_by": list(self.saved_by),
        }


@dataclass(frozen=True)
class Memory:
    entries: list[CacheEntry]
    measured_bytes: int  # Σ entries' bytes
    formula_bytes: int  # the closed form above
    parts: dict[str, int]  # the closed form term by term
    formula: str  # the closed form in words, with this run's numbers

    def to_dict(self) -> dict[str, object]:
        return {
            "measured_bytes": self.measured_bytes,
            "formula_bytes": self.formula_bytes,
            "parts": self.parts,
            "formula": self.formula,
        }


def forward_cache(run: Recording) -> Memory:
    """Every tensor kept for backward, in the order the forward pass first stored it
    (the arrays behind ``Node.saved_tensors()``, deduplicated by identity). Without the char
    model's head, only tensors some cell step keeps (see the module docstring)."""
    params = {id(n.value) for n in run.params.values()}
    cells_only = not isinstance(run, Unrolled)
    Fields = tuple[str, tuple[int, ...], int, str, int | None, int | None]
    found: dict[int, tuple[Fields, list[str]]] = {}  # id(array) → entry fields, readers
    dtypes: dict[np.dtype, str] = {}  # str(dtype) is slow enough to matter at 10⁴ entries
    arraylike = (np.ndarray, np.generic)  # numpy scalars too: an addn of 0-d losses is one
    get, output = found.get, (Kind.LOSS, Kind.OUTPUT)
    for node in run.graph.nodes:  # every recorded node: all of them hold what they saved
        if not node.saved:
            continue
        for key, arr in node.saved.items():
            if not isinstance(arr, arraylike) or id(arr) in params:
                continue  # shapes and counts are metadata; parameters exist anyway
            seen = get(id(arr))
            if seen is not None:
                if seen[1][-1] != node.id:
                    seen[1].append(node.id)
                continue
            ref = node if node.value is arr else None
            if ref is None:
                for p in node.parents:
                    if p.value is arr:
                        ref = p
                        break
            owner = node if ref is None else ref
            while owner.op == "detach":  # the detached value is the state itself
                owner = owner.parents[0]
            dtype = dtypes.get(arr.dtype) or dtypes.setdefault(arr.dtype, str(arr.dtype))
            layer = owner.layer if owner.kind not in output else None
            name = owner.id if ref is not None else f"{node.id}.{key}"
            fields = (name, tuple(arr.shape), int(arr.nbytes), dtype, owner.t, layer)
            found[id(arr)] = (fields, [node.id])
    entries = [
        CacheEntry(*fields, tuple(readers))
        for fields, readers in found.values()
        if not cells_only or any(run.graph[r].layer is not None for r in readers)
    ]
    parts, words = formula_bytes(run)
    return Memory(entries, sum(e.bytes for e in entries), sum(parts.values()), parts, words)


def formula_bytes(run: Recording) -> tuple[dict[str, int], str]:
    """The closed form of the module docstring, term by term, and as one line of words."""
    T, B, H, L, cell = run.T, run.B, run.hidden_size, run.num_layers, run.cell
    k = _PER_STEP[cell]
    unread = 0 if isinstance(run, Unrolled) or cell == "rnn" else 1  # the top layer's h_T
    parts = {"states": 8 * (L * (k * T + 1) - unread) * B * H}
    states = f"L·({k}T+1){'−1' if unread else ''}·B·H·8"
    if run.proj_size:  # m_t kept too (7T·H with c, i, f, g, o, tanh c), h_t P wide
        P = run.proj_size
        parts["states"] = 8 * B * (L * (7 * T * H + (T + 1) * P) - unread * P)
        states = f"(L·(7T·H + (T+1)·P){'−P' if unread else ''})·B·8, P={P}"
    x0 = run.inputs[0].value
    feats = 1 if x0.ndim == 1 else x0.shape[1]  # indices: one number per character
    parts["inputs"] = 8 * T * B * feats
    if not isinstance(run, Unrolled):
        words = (
            f"{cell} states {states} = {parts['states']} + inputs T·B·I·8 = {parts['inputs']} "
            f"→ {sum(parts.values())} bytes (T={T}, B={B}, H={H}, L={L})"
        )
        return parts, words
    n_out = run.params["head.weight"].value.shape[0]
    if run.mode == "many_to_many":
        parts["head"] = 8 * T * B * (n_out + 1) + 16
        head = f"T·B·(V+1)·8 + 16 = {parts['head']}"
    else:
        parts["head"] = 8 * 2 * B * n_out
        head = f"2·B·O·8 = {parts['head']}"
    words = (
        f"{cell} states {states} = {parts['states']} + inputs T·B·"
        f"{'I·' if x0.ndim > 1 else ''}8 = {parts['inputs']} + head {head} "
        f"→ {sum(parts.values())} bytes (T={T}, B={B}, H={H}, L={L})"
    )
    return parts, words
