"""A watched call, dissected: totals under torch's names, per-sequence views, files, neurons.

``grads[name]`` is dL/dθ for each of the module's parameters (``weight_ih_l0``,
``weight_hh_l1_reverse``, …): Σ over the replayed sequences and all their steps — what the
backward accumulated into ``.grad`` when every sequence was replayed (``complete``). ``h0`` and
``c0`` (L·D, B_sel, H) are the gradients of the initial states. Each :class:`Part` holds one
layer-direction's :class:`~rnn_dissect.bptt.dissection.Dissection` of one group of sequences
(the window's steps): states, gates, per-step weight-gradient terms, dh/dc carried, lag
matrices, forward cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.document import dumps, plain
from rnn_dissect.errors import UserError
from rnn_dissect.neurons.activations import Activations
from rnn_dissect.neurons.features import Feature
from rnn_dissect.neurons.ranking import Scores, score_units
from rnn_dissect.watch import EXPORTERS
from rnn_dissect.watch.call import Call
from rnn_dissect.watch.replay import Group, Part
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = ["NODE_FLOATS", "Watched", "compare_grads"]

NODE_FLOATS = 2_000_000  # save(): write every node (and the explorer page) up to this many floats
FORMAT = "rnn-dissect/watch"


@dataclass
class Watched:
    """One call of a watched module, replayed in float64."""

    call: Call
    groups: list[Group]
    parts: list[Part]  # ordered by group, layer, direction

    @property
    def batch(self) -> np.ndarray:
        """(B_sel,) the replayed sequences, in the order of ``grads['h0']``'s batch axis."""
        return np.concatenate([g.batch for g in self.groups])

    @property
    def complete(self) -> bool:
        """Every sequence of the call replayed: ``grads`` then equal the module's ``.grad``."""
        return len(self.batch) == self.call.B

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """torch name → dL/dθ summed over the replayed sequences; h0, c0 (L·D, B_sel, H)."""
        out: dict[str, np.ndarray] = {}
        for p in self.parts:
            for name, g in p.grads.items():
                out[name] = out[name] + g if name in out else g.copy()
        order = {name: i for i, name in enumerate(self.call.weights)}
        own = self.call.names  # a cell's own names (weight_ih for weight_ih_l0)
        out = {own.get(k, k): out[k] for k in sorted(out, key=order.__getitem__)}
        rows = self.call.num_layers * self.call.directions
        for key, attr in (("h0", "h0_grad"), ("c0", "c0_grad")):
            if key == "c0" and self.call.cell != "lstm":
                continue
            per_row: list[list[np.ndarray]] = [[] for _ in range(rows)]
            for p in self.parts:  # parts come group by group: concatenation = self.batch order
                per_row[p.layer * self.call.directions + p.direction].append(getattr(p, attr))
            out[key] = np.stack([np.concatenate(r) for r in per_row])
        return out

    @property
    def cache_bytes(self) -> int:
        """What a float64 forward over the replayed steps keeps for its backward, Σ over parts
        (each part's ``dissection.memory``: measured entry by entry, and its formula)."""
        return sum(p.dissection.memory.measured_bytes for p in self.parts)

    def part(self, layer: int = 0, direction: int = 0, group: int = 0) -> Part:
        for p in self.parts:
            if (p.layer, p.direction) == (layer, direction) and p.group is self.groups[group]:
                return p
        raise UserError(f"no part layer={layer} direction={direction} group={group}")

    def step_grads(self, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per part with ``name``: (positions (T,), terms (T, *shape)) — each step's term.
        Σ of every term = ``grads[name]`` when the window covers every step."""
        name = {own: k for k, own in self.call.names.items()}.get(name, name)
        out = []
        for p in self.parts:
            terms = p.dissection.step.contributions
            if terms is not None and name in terms:
                out.append((p.dissection.run.positions, np.stack(terms[name])))
        if not out:
            names = [self.call.names.get(k, k) for k in self.call.weights]
            raise UserError(f"no per-step terms for {name!r}; names: {names}")
        return out

    def sequence(self, b: int) -> dict[tuple[int, int], dict[str, Any]]:
        """Sequence ``b`` (index in the call's batch): (layer, direction) → arrays in position
        order: positions (n,), h, dh (n, H); LSTM c, dc; gates {name: (n, H)}."""
        for g in self.groups:
            hit = np.flatnonzero(g.batch == b)
            if hit.size:
                j = int(hit[0])
                break
        else:
            raise UserError(f"sequence {b} was not replayed; replayed: {self.batch.tolist()}")
        out = {}
        for p in self.parts:
            if p.group is not g:
                continue
            d = p.dissection
            run = d.run
            order = np.argsort(run.positions)  # processing order → positions
            view: dict[str, Any] = {"positions": run.positions[order]}
            view["h"] = np.stack([a[j] for a in d.h[0]])[order]
            view["dh"] = np.stack([a[j] for a in d.dh[0]])[order]
            if d.c is not None and d.dc is not None:
                view["c"] = np.stack([a[j] for a in d.c[0]])[order]
                view["dc"] = np.stack([a[j] for a in d.dc[0]])[order]
            if d.gates is not None:
                view["gates"] = {
                    k: np.stack([s[k][j] for s in d.gates[0]])[order] for k in d.gates[0][0]
                }
            out[(p.layer, p.direction)] = view
        return out

    def check(self, module: Any) -> float:
        """max over parameters of ‖grads − .grad‖∞ / ‖.grad‖∞ for a torch module after its
        backward (its only call in the watch, every sequence replayed; see
        :func:`compare_grads`). A module called several times: ``w.check(module)``."""
        if not self.complete:
            raise UserError(
                f"only {len(self.batch)} of {self.call.B} sequences were replayed; "
                "grads cover those only, so they are not comparable with .grad"
            )
        n = sum(c.tracked for c in self.call.module_calls)  # a no_grad call adds nothing
        if n > 1:
            raise UserError(
                f"{self.call.label} is one of {n} calls of that module and .grad sums the calls "
                "since the last zero_grad: w.check(module) compares the sum of all of them "
                "(in a training loop, watch one step)"
            )
        return compare_grads(self.grads, module)

    # ----------------------------------------------------------------- neurons

    def activations(self) -> Activations:
        """Every replayed step as a row: (layer, kind) → (N, D·H), N = Σ_b window steps, rows
        sequence by sequence (``batch`` order), positions in order; columns ≥ H are the reverse
        direction's units. The text is a placeholder ("·" per row): the model reads no text."""
        c = self.call
        rows: dict[tuple[int, str], list[np.ndarray]] = {}
        for b in self.batch.tolist():
            seq = self.sequence(b)
            for layer in range(c.num_layers):
                views = [seq[(layer, d)] for d in range(c.directions)]
                kinds = {"h": [v["h"] for v in views]}
                if "c" in views[0]:
                    kinds["c"] = [v["c"] for v in views]
                for k in views[0].get("gates", {}):
                    kinds[k] = [v["gates"][k] for v in views]
                for k, vs in kinds.items():
                    rows.setdefault((layer, k), []).append(np.concatenate(vs, axis=1))
        arrays = {key: np.concatenate(v) for key, v in rows.items()}
        N = next(iter(arrays.values())).shape[0]
        return Activations(c.cell, ("·",), "·" * N, arrays, {"source": "watch", "call": c.label})

    def feature_rows(self, values: Any) -> np.ndarray:
        """A per-step feature given as (B, T) (batch-major positions) or a list of per-sequence
        arrays → (N,) aligned with :meth:`activations`' rows."""
        out = []
        for g in self.groups:
            for b in g.batch.tolist():
                v = np.asarray(values[b], np.float64).ravel()
                if v.size < g.stop:
                    raise UserError(f"a feature has {v.size} steps for sequence {b}; it has {g.n}")
                out.append(v[g.start : g.stop])
        # rows of activations() go sequence by sequence in batch order = group order here
        return np.concatenate(out)

    def neurons(self, features: Mapping[str, Any], **kw: Any) -> Scores:
        """Score every unit against user features (name → (B, T) array or per-sequence list)
        with the ranking ``rnn-dissect neurons`` uses (Pearson r, or 2·AUC − 1 for 0/1 ones).

        NaN marks a step where a feature is not defined: that feature is scored on its other
        steps only (e.g. "the key seen 25 steps ago", defined at the query step alone)."""
        if not features:
            raise UserError('pass at least one feature: d.neurons({"name": array_BT})')
        acts = self.activations()
        by_rows: dict[bytes, tuple[np.ndarray, list[Feature]]] = {}
        for name, values in features.items():
            v = self.feature_rows(values).astype(np.float32)  # (N,)
            keep = ~np.isnan(v)  # (N,)
            if not np.isfinite(v[keep]).all():
                raise UserError(f"feature {name!r} holds ±inf; use finite numbers (NaN: no value)")
            if not keep.any():
                raise UserError(f"feature {name!r} is NaN at every replayed step; nothing to score")
            boolean = bool(np.isin(v[keep], (0.0, 1.0)).all())
            f = Feature(name, np.where(keep, v, np.float32(0)), boolean)  # unscored rows: unread
            by_rows.setdefault(np.packbits(keep).tobytes(), (keep, []))[1].append(f)
        parts = [  # features defined on the same steps are scored together, on those rows only
            score_units(acts, feats, rows=None if keep.all() else keep, **kw)
            for keep, feats in by_rows.values()
        ]
        return _merge(parts, [*features])

    # ----------------------------------------------------------------- files

    def save(
        self, directory: str | Path, main: tuple[int, int, int] | None = None, nodes: str = "main"
    ) -> Path:
        """Write DIR/watch.json (totals, groups, parts), DIR/parts/l{l}.{fwd|rev}.g{i}/
        dissection.json per part, and DIR/dissection.json + explore.json of the ``main`` part
        (layer, direction, group; default the top layer's forward direction, first group),
        which ``rnn-dissect explore DIR`` opens. ``nodes``: which documents carry every graph
        node — "main" (default), "all" (each part dir opens in the explorer too) or "none"."""
        if nodes not in ("main", "all", "none"):
            raise UserError(f'nodes={nodes!r}: pass "main", "all" or "none"')
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        c = self.call
        main = main or (c.num_layers - 1, 0, 0)
        parts = []
        for p in self.parts:
            gi = next(i for i, g in enumerate(self.groups) if g is p.group)
            name = f"l{p.layer}.{'rev' if p.direction else 'fwd'}.g{gi}"
            is_main = (p.layer, p.direction, gi) == main
            doc = self._document(p, nodes == "all" or (is_main and nodes == "main"))
            text = dumps(doc)
            _write(out / "parts" / name / "dissection.json", text)
            parts.append({"layer": p.layer, "direction": p.direction, "group": gi, "dir": name})
            if is_main:
                _write(out / "dissection.json", text)
                if "nodes" in doc and "explore.json" in EXPORTERS:
                    EXPORTERS["explore.json"](doc, out / "explore.json")
        summary = {
            "format": FORMAT,
            "version": 1,
            "call": c.describe(),
            "module": c.label,
            "cell": c.cell,
            "model_dtype": c.dtype,
            "dtype": "float64",
            "complete": self.complete,
            "batch": self.batch,
            "groups": [
                {"sequences": g.batch, "length": g.n, "window": [g.start, g.stop]}
                for g in self.groups
            ],
            "grads": self.grads,
            "parts": parts,
        }
        _write(out / "watch.json", dumps(plain(summary)))
        return out

    def _document(self, p: Part, nodes: bool) -> dict[str, Any]:
        run = p.dissection.run
        floats = sum(2 * n.value.size for n in run.graph.nodes) if nodes else 0
        doc = p.dissection.to_dict(nodes=nodes and floats <= NODE_FLOATS)
        doc["notes"] = [
            f"{self.call.describe()}; layer {p.layer} "
            f"{'reverse' if p.direction else 'forward'}, replayed in float64"
        ]
        if floats > NODE_FLOATS:
            doc["notes"].append(
                f"{floats:,} node numbers: nodes not written (limit {NODE_FLOATS:,})"
            )
        return doc


def _merge(parts: list[Scores], order: list[str]) -> Scores:
    """Scores of feature groups (each on its own rows) as one, features in ``order``."""
    if len(parts) == 1:
        return parts[0]
    where = {f: (p, i) for p in parts for i, f in enumerate(p.features)}
    pick = [where[f] for f in order]
    return Scores(
        features=order,
        boolean=[p.boolean[i] for p, i in pick],
        constant=[p.constant[i] for p, i in pick],
        units=parts[0].units,
        score=np.stack([p.score[i] for p, i in pick]),  # (F, U)
        pearson=np.stack([p.pearson[i] for p, i in pick]),  # (F, U)
        auc_method="/".join(sorted({p.auc_method for p in parts})),
        score_error=max(p.score_error for p in parts),
        meta={
            **parts[0].meta,
            "rows": {  # characters each feature was scored on
                f: p.meta.get("scored_chars", p.meta["n_chars"])
                for f, (p, _) in zip(order, pick, strict=True)
            },
        },
    )


def compare_grads(grads: Mapping[str, np.ndarray], module: Any) -> float:
    """max over the module's trainable parameters of ‖grads[name] − name.grad‖∞ / ‖.grad‖∞
    (a frozen parameter, ``requires_grad=False``, has no ``.grad`` to compare and is skipped, as
    is a computed one, e.g. ``parametrizations.weight_norm``'s: torch puts it on the originals)."""
    worst, seen = 0.0, 0
    for name, g in grads.items():
        p = getattr(module, name, None)
        if name in ("h0", "c0") or p is None or not p.requires_grad or not p.is_leaf:
            continue  # frozen, or computed (a parametrization's weight keeps no .grad)
        if p.grad is None:
            raise UserError(
                f"{name}.grad is None: check after loss.backward() and before optimizer.zero_grad()"
            )
        ref = p.grad.detach().double().cpu().numpy()
        worst = max(worst, float(np.abs(g - ref).max() / max(np.abs(ref).max(), 1e-300)))
        seen += 1
    if not seen:
        raise UserError("no parameter of that module requires grad: there is no .grad to compare")
    return worst


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, [text.encode("utf-8")])
