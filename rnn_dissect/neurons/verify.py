"""Making lock-step segments equal one sequential pass: the check behind exact collection.

A text of N characters is cut into segments; segment b's stored rows [s_b, e_b) were read
from some start state (a guess: a zero state a warm-up earlier). In one sequential pass the
state entering segment b is the state leaving segment b − 1, so the stored rows are one
pass's exactly when, for every b ≥ 1,

    start_b ≈ end_{b−1}:  |start_b − end_{b−1}| ≤ tol·(1 + |end_{b−1}|), every layer's h (and c)

:func:`verify` makes that true. Each pass puts a *walker* at every wrong boundary: it
re-reads segment b from end_{b−1}, all walkers in lock-step (one (W, H) product per step).
After each row it compares its state with the stored row's; once they agree, the rows
that follow were computed from the same state — they are this trajectory's — and the
walker stops (a model that forgets its start merges within a few hundred characters).

- The *lead* walker (the first wrong boundary: everything before it is already one pass,
  so it starts from the true state) walks on across segment ends, updating each segment's
  start, until it merges or the text ends.
- Any other walker started from a state that may still change: it stops at its segment's
  end, leaving a new end_b for the next pass to compare.

Every pass settles at least the lead's stretch, so passes ≤ segments; a model that forgets
takes 2 (the guess, one check). A unit with perfect memory (a counter with f = 1) never
merges: the lead walks to the end of the text, sequential reading — the worst case, about
the first pass plus one sequential pass.

Walkers are taken in reverse text order within a chunk of steps: a walker behind reads
rows that one ahead wrote at earlier lock-step times, so those writes must come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rnn_dissect.nets.forward import STATES, Forward

__all__ = ["Rows", "Segments", "close", "default_tolerance", "state_at", "verify"]

Array = np.ndarray
Key = tuple[int, str]  # (layer, kind)


class Rows(Protocol):
    """Where the collected rows live: written, and read back for the comparisons."""

    def write(self, key: Key, start: int, rows: Array) -> None: ...
    def read(self, key: Key, start: int, stop: int) -> Array: ...


def default_tolerance(dtype: Any) -> float:
    """tol of the state comparisons: a few float32 roundings (1e-6), or 1e-12 in float64."""
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-6


def close(a: Array, b: Array, tol: float) -> Array:
    """(n,) bool for (n, ...) states: |a − b| ≤ tol·(1 + |b|) everywhere in row i."""
    ok = np.abs(a - b) <= tol * (1 + np.abs(b))  # NaN compares False: never close
    return ok.reshape(len(ok), -1).all(axis=1)


def _state_keys(cell: str, L: int) -> list[Key]:
    """The arrays that hold the recurrent state: every layer's h (and c)."""
    return [(k, s) for s in STATES[cell] for k in range(L)]


def _states(rows: dict[Key, Array], cell: str, L: int) -> Array:
    """(n, S, L, H): the state after each of n rows, from the (n, H) rows of the
    :func:`_state_keys` arrays."""
    per_kind = [np.stack([rows[(k, s)] for k in range(L)], axis=1) for s in STATES[cell]]
    return np.stack(per_kind, axis=1)


def state_at(rec: dict[Key, Array], t: int, b: int, cell: str, L: int) -> Array:
    """(S, L, H): the state after step t of column b of recorded (C, B, H) arrays."""
    return _states({key: rec[key][t : t + 1, b] for key in _state_keys(cell, L)}, cell, L)[0]


@dataclass
class Segments:
    own: list[tuple[int, int]]  # rows [s_b, e_b) of segment b
    start: list[Array]  # (S, L, H): the state segment b's stored rows were read from
    end: list[Array]  # (S, L, H): the state after its last stored row

    def wrong(self, tol: float) -> list[int]:
        """Segments whose start is not their predecessor's end."""
        return [
            b
            for b in range(1, len(self.own))
            if not close(self.start[b][None], self.end[b - 1][None], tol)[0]
        ]


@dataclass
class _Walker:
    row: int  # the next row it reads
    seg: int  # the segment of that row
    state: Array  # (S, L, H): the state before `row`
    lead: bool  # started from the true state: walks on across segment ends


@dataclass
class Check:
    passes: int  # 1: the first pass was already one sequential pass's
    segments_rerun: int  # segments a walker started in
    rerun_chars: int  # characters read again by the walkers


def verify(
    fwd: Forward, idx: Array, segs: Segments, rows: Rows, tol: float, max_steps: int
) -> Check:
    """Walk until every segment starts where its predecessor ends (module docstring).
    ``idx`` (N,) the text; ``max_steps``: walker-steps per chunk (bounds the buffers)."""
    check = Check(1, 0, 0)
    started: set[int] = set()
    while wrong := segs.wrong(tol):
        check.passes += 1
        walkers = []
        for i, b in enumerate(wrong):
            segs.start[b] = segs.end[b - 1].copy()
            walkers.append(_Walker(segs.own[b][0], b, segs.end[b - 1].copy(), lead=i == 0))
        started.update(wrong)
        check.rerun_chars += _walk(fwd, idx, segs, rows, walkers, tol, max_steps)
    check.segments_rerun = len(started)
    return check


def _walk(
    fwd: Forward,
    idx: Array,
    segs: Segments,
    rows: Rows,
    walkers: list[_Walker],
    tol: float,
    max_steps: int,
) -> int:
    """One pass: step the walkers in lock-step until each stops; returns the steps taken."""
    N, H = len(idx), fwd.hidden_size
    keys = [(k, kind) for k in range(fwd.num_layers) for kind in fwd.kinds]
    C, taken = 32, 0  # chunks grow: a walker that merges early wastes at most one chunk
    while walkers:
        W = len(walkers)
        limit = [N if w.lead else segs.own[w.seg][1] for w in walkers]  # where each stops
        n = min(
            C, max(1, max_steps // W), max(e - w.row for e, w in zip(limit, walkers, strict=True))
        )
        steps = np.zeros((n, W), dtype=np.int64)  # (n, W) inputs; padding past the text's end
        for j, w in enumerate(walkers):
            steps[: min(n, N - w.row), j] = idx[w.row : w.row + n]
        stacked = np.stack([w.state for w in walkers], axis=2)  # (S, L, W, H)
        state = tuple(np.ascontiguousarray(a) for a in stacked)  # (L, W, H) each
        rec = {key: np.empty((n, W, H), dtype=fwd.dtype) for key in keys}
        fwd.run(steps, state, rec)
        alive = []
        for j in sorted(range(W), key=lambda j: -walkers[j].row):  # later text first
            w = walkers[j]
            m = min(n, limit[j] - w.row)
            taken += m
            if _advance(w, rec, j, m, fwd, segs, rows, keys, tol):
                alive.append(w)
        walkers = sorted(alive, key=lambda w: w.row)
        C *= 2
    return taken


def _advance(
    w: _Walker,
    rec: dict[Key, Array],
    j: int,
    m: int,
    fwd: Forward,
    segs: Segments,
    rows: Rows,
    keys: list[Key],
    tol: float,
) -> bool:
    """Take walker ``w``'s ``m`` new rows (column ``j`` of ``rec``, (n, W, H) arrays): write
    them up to where it merges with the stored rows; returns whether it walks on."""
    cell, L = fwd.cell, fwd.num_layers
    skeys = _state_keys(cell, L)
    t = 0  # rows of this chunk taken so far
    while t < m:
        b = w.seg
        n = min(m - t, segs.own[b][1] - w.row)  # rows of this chunk inside segment b
        new = _states({key: rec[key][t : t + n, j] for key in skeys}, cell, L)  # (n, S, L, H)
        old = _states({key: rows.read(key, w.row, w.row + n) for key in skeys}, cell, L)
        same = close(new, old, tol)  # (n,)
        q = int(np.argmax(same)) if same.any() else n  # rows before the merge
        for key in keys if q else ():
            rows.write(key, w.row, rec[key][t : t + q, j])  # (q, H)
        if q < n:
            return False  # merged: the stored rows from here on are this trajectory's
        t, w.row, w.state = t + n, w.row + n, new[-1]
        if w.row < segs.own[b][1]:
            continue
        segs.end[b] = w.state.copy()  # the end of segment b, a new end state
        if not w.lead or b + 1 == len(segs.own):
            return False  # a guess stops here (the next pass compares); the text ends
        if close(w.state[None], segs.start[b + 1][None], tol)[0]:
            return False  # the next segment already starts from this state
        segs.start[b + 1] = w.state.copy()
        w.seg = b + 1  # the lead walks on into the next segment
    return True
