"""Where a unit is extreme: its most positive and most negative contexts, and how often
each gate sits saturated (fig. 3 of Karpathy, Johnson & Fei-Fei 2015).

Both stream over row blocks of the activation arrays, like :mod:`rnn_dissect.neurons.ranking`.

The state starts from zero, so the first characters show the start-up transient, not the
text: a cell state negative over the whole text is "highest" at character 0, where it has
barely left 0. :func:`top_contexts` therefore does not rank the first :func:`warm_up`
characters (``window`` of them, when the text is long enough to spare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnn_dissect.neurons.activations import Activations, Key, UnitRef
from rnn_dissect.neurons.ranking import SIGMOID_GATES, TANH_GATES, block_rows

__all__ = ["Context", "Saturation", "UnitContexts", "gate_saturation", "top_contexts", "warm_up"]


@dataclass
class Context:
    """The window text[start:start+len(text)] around an extreme at ``position``."""

    position: int
    value: float
    start: int
    text: str
    values: np.ndarray  # (len(text),) the unit over the window


@dataclass
class UnitContexts:
    unit: UnitRef
    top: list[Context]  # highest values, highest first
    bottom: list[Context]  # lowest values, lowest first
    skipped: int = 0  # characters 0 … skipped − 1 were not ranked (the warm-up)


def warm_up(n_chars: int, window: int) -> int:
    """How many leading characters :func:`top_contexts` does not rank: ``window`` when the
    text has more than 2·window characters, else 0 (a short text keeps every character).

    Those characters are read from the zero initial state h_0 = c_0 = 0 rather than from the
    text's own history, so an extreme there can be the state leaving 0 (a cell negative
    everywhere peaks at character 0). With them skipped, every context shown also has its
    full ``window`` characters on the left.

        >>> warm_up(10_000, 30), warm_up(60, 30), warm_up(61, 30)
        (30, 0, 30)
    """
    return window if 2 * window < n_chars else 0


def _keep_top(vals: np.ndarray, pos: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The m largest values (ties: earlier position first), sorted that way."""
    if len(vals) > m:
        thr = np.partition(vals, len(vals) - m)[len(vals) - m]  # m-th largest
        keep = vals >= thr  # ties at the threshold all stay for the exact cut below
        vals, pos = vals[keep], pos[keep]
    order = np.lexsort((pos, -vals))[:m]
    return vals[order], pos[order]


def _pick(vals: np.ndarray, pos: np.ndarray, k: int, window: int) -> list[tuple[int, float]]:
    """Greedy: the best candidate not within ``window`` of one already picked."""
    picked: list[tuple[int, float]] = []
    for v, p in zip(vals.tolist(), pos.tolist(), strict=True):
        if all(abs(p - q) > window for q, _ in picked):
            picked.append((p, v))
            if len(picked) == k:
                break
    return picked


def top_contexts(
    acts: Activations, units: Sequence[UnitRef], k: int = 5, window: int = 20
) -> list[UnitContexts]:
    """For each unit the k highest and k lowest characters, no two within ``window`` of
    each other, each with ±window characters of context. The first
    ``warm_up(n_chars, window)`` characters are not candidates (see :func:`warm_up`).

    Streaming keeps the m = k·(2·window + 1) most extreme candidates per unit: the j-th
    greedy pick is outranked only by earlier picks and the ≤ 2·window characters each of
    them suppresses, so it is among the top m and the result equals a full sort's.
    """
    m = k * (2 * window + 1)
    skip = warm_up(acts.n_chars, window)
    by_key: dict[Key, list[UnitRef]] = {}
    for u in units:
        by_key.setdefault((u.layer, u.kind), []).append(u)
    found: dict[UnitRef, UnitContexts] = {}
    for key, us in by_key.items():
        cols = [u.unit for u in us]
        cand = [[(np.empty(0), np.empty(0, np.int64))] * 2 for _ in us]  # (top, bottom)
        for s, blk in acts.chunks(key, block_rows(acts.arrays[key].shape[1])):
            pos = np.arange(s, s + len(blk))
            keep = pos >= skip  # the warm-up is no candidate
            if not keep.any():
                continue
            pos = pos[keep]
            sub = blk[keep][:, cols].astype(np.float64)  # (C, K)
            for i in range(len(us)):
                for d, sign in enumerate((1.0, -1.0)):
                    v0, p0 = cand[i][d]
                    cand[i][d] = _keep_top(
                        np.concatenate([v0, sign * sub[:, i]]), np.concatenate([p0, pos]), m
                    )
        for i, u in enumerate(us):
            sides = []
            for d, sign in enumerate((1.0, -1.0)):
                ctxs = []
                for p, v in _pick(*cand[i][d], k, window):
                    a, b = max(0, p - window), min(acts.n_chars, p + window + 1)
                    vals = acts.rows(key, a, b)[:, u.unit]
                    ctxs.append(Context(p, sign * v, a, acts.text[a:b], vals))
                sides.append(ctxs)
            found[u] = UnitContexts(u, sides[0], sides[1], skip)
    return [found[u] for u in units]


@dataclass
class Saturation:
    """Per gate unit, the fraction of characters where the gate is saturated."""

    layer: int
    kind: str  # gate letter
    left: np.ndarray  # (H,) fraction below low (σ gates) or 2·low − 1 (tanh gates)
    right: np.ndarray  # (H,) fraction above high (σ gates) or 2·high − 1


def gate_saturation(acts: Activations, low: float = 0.1, high: float = 0.9) -> list[Saturation]:
    """Karpathy, Johnson & Fei-Fei (2015), fig. 3: a σ gate is left-saturated when < 0.1,
    right-saturated when > 0.9. tanh gates (LSTM g, GRU n) use the same thresholds mapped
    through tanh(x) = 2σ(2x) − 1, i.e. −0.8 and 0.8."""
    out = []
    for key in acts.ordered_keys():
        layer, kind = key
        if kind in SIGMOID_GATES:
            lo_t, hi_t = low, high
        elif kind in TANH_GATES:
            lo_t, hi_t = 2 * low - 1, 2 * high - 1
        else:
            continue
        H = acts.arrays[key].shape[1]
        n_lo, n_hi = np.zeros(H, np.int64), np.zeros(H, np.int64)
        for _, blk in acts.chunks(key, block_rows(H)):
            n_lo += (blk < lo_t).sum(axis=0)
            n_hi += (blk > hi_t).sum(axis=0)
        N = max(acts.n_chars, 1)
        out.append(Saturation(layer, kind, n_lo / N, n_hi / N))
    return out
