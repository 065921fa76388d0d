"""The BPTT dissection: one run of the char model, answered as plain data.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> model = CharModel.init(ModelConfig("rnn", tuple("helo"), hidden_size=3), seed=0)
    >>> d = dissect_text(model, "hello")
    >>> d.run.T, sorted(d.grads)[:2]
    (4, ['h0', 'head.bias'])
    >>> total = sum(d.step.contributions["rnn.weight_hh_l0"])   # Σ_t dW_hh^(t) = dW_hh
    >>> bool(abs(total - d.grads["rnn.weight_hh_l0"]).max() < 1e-15)
    True

The four questions, and where their answers live:

1. how gradients flow back through time — ``dh`` / ``carry`` (dL/dh_t = direct + from t+1),
   ``flow`` (per layer: lag matrix, step Jacobians, singular values, verdict, and ``blocks``:
   path id of :data:`~rnn_dissect.bptt.jacobians.PATHS` → T norms): :mod:`gradflow`,
   :mod:`verdict`, :mod:`carry`
2. how the shared weights are updated — ``step`` (per-step gradient terms that sum to
   ``grads``, per-gate-block norms), ``update`` (ΔW): :mod:`stepgrads`
3. what the forward pass keeps — ``memory`` (every cached tensor, measured vs formula): :mod:`memory`
4. what the backward pass keeps and carries — ``carry`` (dh_next, dc_next, dh_raw / gate
   pre-activation gradients): :mod:`carry`

The forward values sit beside them: ``h``, ``c`` (LSTM) and ``gates`` (LSTM, GRU) per layer
and step, and the whole recorded graph in ``run``. ``frames`` (:mod:`frames`) orders it all
as a step-through walkthrough. ``to_json()`` is the ``dissection.json`` document, top-level
keys format, version, model, dtype, config, loss, step_loss, grads, step_grads, dh, h,
[dc, c, gates], lag, cache, memory, carry, weights, flow, frames [, nodes]; deterministic:
byte-identical for identical inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from rnn_dissect.autograd.engine import Kind, Node
from rnn_dissect.autograd.gcpause import paused_gc
from rnn_dissect.bptt.carry import StateEdgeRecorder, StepCarry, carries
from rnn_dissect.bptt.frames import frames as make_frames
from rnn_dissect.bptt.gradflow import Flow, flow
from rnn_dissect.bptt.memory import Memory, forward_cache
from rnn_dissect.bptt.stepgrads import StepGradRecorder, StepGrads, Update, update
from rnn_dissect.bptt.unroll import Recording, Unrolled, unroll
from rnn_dissect.document import FORMAT, VERSION, dumps, plain
from rnn_dissect.errors import UserError
from rnn_dissect.nets.cells import GATES
from rnn_dissect.nets.model import CharModel

__all__ = ["FORMAT", "VERSION", "Dissection", "dissect", "dissect_run", "dissect_text"]

# The same format as rnn_dissect.document's node-level document (format, version, model,
# dtype, loss at the top; this one adds the BPTT answers), with its rule for numbers.


R = TypeVar("R", bound=Recording)


@dataclass
class Dissection(Generic[R]):
    """Everything one BPTT run shows. Arrays drop the batch axis for unbatched input.

    ``run`` is the char model's :class:`Unrolled`, or any :class:`Recording` (a watched
    torch module's layer, :mod:`rnn_dissect.watch`)."""

    run: R  # the recorded graph with values and gradients (not serialised)
    loss: float
    step_loss: dict[int, float]  # t → L̄_t (mean over the batch; only t = T for many-to-one)
    grads: dict[str, np.ndarray]  # torch name → dL/dθ, plus h0 (and c0 for LSTM)
    step: StepGrads  # Q2: per-step terms
    update: Update  # Q2: ΔW
    carry: list[list[StepCarry]]  # Q1/Q4: [layer][t − 1]
    flow: Flow  # Q1
    memory: Memory  # Q3
    frames: list[dict[str, Any]] | None

    @property
    def h(self) -> list[list[np.ndarray]]:
        """[layer][t − 1] → h_t, the forward values."""
        run = self.run
        return [
            [run.unbatch(run.h(k, t).value) for t in range(1, run.T + 1)]
            for k in range(run.num_layers)
        ]

    @property
    def c(self) -> list[list[np.ndarray]] | None:
        """LSTM: [layer][t − 1] → c_t."""
        run = self.run
        if run.cell != "lstm":
            return None
        return [
            [run.unbatch(run.c(k, t).value) for t in range(1, run.T + 1)]
            for k in range(run.num_layers)
        ]

    @property
    def gates(self) -> list[list[dict[str, np.ndarray]]] | None:
        """LSTM / GRU: [layer][t − 1] → gate values (i, f, g, o / r, z, n): what each let
        through — f of c_{t-1} kept, i of g written, o of tanh(c_t) shown; z of h_{t-1} kept."""
        run = self.run
        if run.cell == "rnn":
            return None
        return [
            [
                {name: run.unbatch(run.node(t, k, name).value) for name in GATES[run.cell]}
                for t in range(1, run.T + 1)
            ]
            for k in range(run.num_layers)
        ]

    @property
    def dh(self) -> list[list[np.ndarray]]:
        """[layer][t − 1] → dL/dh_t."""
        return [[c.dh for c in row] for row in self.carry]

    @property
    def dc(self) -> list[list[np.ndarray]] | None:
        """LSTM: [layer][t − 1] → dL/dc_t."""
        if self.run.cell != "lstm":
            return None
        return [[c.dc for c in row if c.dc is not None] for row in self.carry]

    def to_dict(self, nodes: bool = False, max_array: int | None = None) -> dict[str, Any]:
        """The ``dissection.json`` document as plain data (``nodes``: every graph node too).
        ``max_array``: a parameter's gradient (``grads``) and update (``weights.update.delta``)
        with more numbers than this are written as ``{"shape", "norm", "left_out"}``."""
        doc = self.to_data(nodes)
        if max_array is not None:
            doc["grads"] = {k: _brief(v, max_array) for k, v in doc["grads"].items()}
            delta = doc["weights"]["update"]["delta"]
            doc["weights"]["update"]["delta"] = {k: _brief(v, max_array) for k, v in delta.items()}
        return plain(doc)

    def to_data(self, nodes: bool = False) -> dict[str, Any]:
        """:meth:`to_dict` with numpy arrays left as arrays (cheap: nothing is converted);
        the explorer packs them as binary instead of writing every float as text."""
        run = self.run
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "model": run.cell,
            "dtype": "float64",
            "config": run.config(),
            "loss": self.loss,
            "step_loss": [self.step_loss.get(t) for t in range(1, run.T + 1)],
            "grads": self.grads,
            "step_grads": self.step.contributions,
            "dh": self.dh,
            "h": self.h,
            "lag": self.flow.lag,
            "cache": [e.to_dict() for e in self.memory.entries],
            "memory": self.memory.to_dict(),
            "carry": [[_carry_dict(c) for c in row] for row in self.carry],
            "weights": {
                "step_norms": self.step.norms,
                "block_norms": self.step.block_norms,
                "blocks": list(self.step.blocks),
                "update": self.update.to_data(),
            },
            "flow": {
                "max_lag": self.flow.max_lag,
                "layers": [
                    {
                        "layer": lf.layer,
                        "lag": lf.lag,
                        "singular_values": lf.singular_values,
                        "state_singular_values": lf.state_singular_values,
                        "jacobians": lf.jacobians,
                        "blocks": lf.blocks,
                        "verdict": vars(lf.verdict),
                    }
                    for lf in self.flow.layers
                ],
            },
            "frames": self.frames,
        }
        if run.cell == "lstm":
            doc["dc"], doc["c"] = self.dc, self.c
        if run.cell != "rnn":
            doc["gates"] = self.gates
        if nodes:
            doc["nodes"] = run.graph.to_dict(run.graph.reachable(run.loss))
        return doc

    def to_json(self, nodes: bool = False) -> str:
        """:meth:`to_dict` as the deterministic text :func:`rnn_dissect.document.dumps` writes."""
        return dumps(self.to_dict(nodes))


def _brief(a: Any, max_array: int) -> Any:
    """An array with more than ``max_array`` numbers as its shape and norm."""
    a = np.asarray(a)
    if a.size <= max_array:
        return a
    return {
        "shape": list(a.shape),
        "norm": float(np.linalg.norm(a)),
        "left_out": f"{a.size:,} numbers (> {max_array:,}); --full-arrays writes them",
    }


def _carry_dict(c: StepCarry) -> dict[str, Any]:
    d: dict[str, Any] = {"t": c.t, "layer": c.layer, "dh_direct": c.dh_direct, "dh_next": c.dh_next}
    if c.dc_next is not None:
        d["dc_next"] = c.dc_next
    d["computes"] = c.computes
    d["norms"] = c.norms()
    d["cut"] = c.cut
    d["next_from"] = c.next_from  # "t+1", or "h_n" at t = T of a model reading the final state
    if c.cut:
        d["dh_cut"] = c.dh_cut
        if c.dc_cut is not None:
            d["dc_cut"] = c.dc_cut
    return d


@paused_gc()  # 10⁴ live graph nodes: collector passes would find nothing to free
def dissect_run(
    run: R,
    *,
    lr: float = 0.1,
    optimizer: str = "sgd",
    clip: float | None = None,
    step_grads: bool = True,
    lag: bool = True,
    max_lag: int | None = None,
    jacobians: bool = True,
    keep_jacobians: bool = False,
    frames: bool = True,
) -> Dissection[R]:
    """Dissect a recorded unroll (backward is run here). The expensive parts are flags:

    step_grads      keep every per-step weight-gradient term (T·|θ| floats; norms always kept)
    lag, max_lag    every layer's lag matrix, O(T·min(T, max_lag)·L·B·S²)
    jacobians       singular values of every step Jacobian (an H×H SVD per step and layer);
    keep_jacobians  also keep the matrices (T·H² floats per layer)
    """
    if max_lag is not None and max_lag < 1:
        raise UserError(f"--max-lag {max_lag} must be at least 1")
    steps, edges = StepGradRecorder(run, keep=step_grads), StateEdgeRecorder(run)

    param, on_param, on_state = Kind.PARAMETER, steps.__call__, edges.__call__

    def on_edge(child: Node, parent: Node, g: np.ndarray) -> None:
        if parent.kind is param:
            on_param(child, parent, g)
        else:
            on_state(child, parent, g)

    run.graph.backward(run.loss, on_edge=on_edge)  # the one backward pass
    grads = run.grads()
    memory = forward_cache(run)
    top = run.num_layers - 1
    direct = {t: edges.part(run.direct_reader(top, t), run.h(top, t)) for t in run.heads}
    return Dissection(
        run=run,
        loss=float(run.loss.value),
        step_loss={t: float(n.value) for t, n in run.step_losses.items()},
        grads=grads,
        step=steps.result(run),
        update=update(grads, lr=lr, optimizer=optimizer, clip=clip),
        carry=carries(run, edges),
        flow=flow(
            run,
            lag=lag,
            max_lag=max_lag,
            jacobians=jacobians,
            keep_jacobians=keep_jacobians,
            direct=direct,
        ),
        memory=memory,
        frames=make_frames(run, memory.entries) if frames else None,
    )


@paused_gc()  # the recording is most of the allocations
def dissect(model: CharModel, inputs: Any, targets: Any, **kw: Any) -> Dissection[Unrolled]:
    """:func:`bptt.unroll` (its keywords: h0, c0, truncate, mode, nonlinearity), then
    :func:`dissect_run` (its keywords: lr, optimizer, clip and the cost flags)."""
    unroll_keys = {"h0", "c0", "truncate", "mode", "nonlinearity"}
    run = unroll(model, inputs, targets, **{k: v for k, v in kw.items() if k in unroll_keys})
    return dissect_run(run, **{k: v for k, v in kw.items() if k not in unroll_keys})


def dissect_text(model: CharModel, text: str, **kw: Any) -> Dissection[Unrolled]:
    """Next-character dissection of one string: inputs text[:-1], targets text[1:]."""
    if len(text) < 2:
        raise UserError("the text needs at least two characters (one input, one target to predict)")
    idx = model.encode(text)
    return dissect(model, idx[:-1], idx[1:], **kw)
