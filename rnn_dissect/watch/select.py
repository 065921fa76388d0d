"""Which sequences and steps of a call to replay, checked and costed before anything runs."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.watch.budget import estimate
from rnn_dissect.watch.call import Call
from rnn_dissect.watch.replay import Group
from rnn_dissect.watch.work import warn_if_slow

__all__ = ["MAX_BYTES", "plan"]

MAX_BYTES = 2 << 30  # default limit: 2 GiB


def _batch(call: Call, batch: Any) -> np.ndarray:
    if batch is None:
        return np.arange(call.B)
    if isinstance(batch, (int, np.integer)):
        batch = [int(batch)]
    sel = np.asarray(list(batch) if not isinstance(batch, slice) else range(call.B)[batch])
    if sel.size == 0 or sel.dtype.kind not in "iu":
        raise UserError(f"batch={batch!r}: pass sequence indices, e.g. batch=[0, 3]")
    if sel.min() < 0 or sel.max() >= call.B or len(set(sel.tolist())) != sel.size:
        raise UserError(
            f"batch={sel.tolist()}: indices must be distinct and in 0..{call.B - 1} "
            f"({call.label} was called with a batch of {call.B})"
        )
    return sel.astype(np.int64)


def _window(call: Call, window: Any) -> tuple[int, int]:
    if window is None:
        return 0, call.T
    if isinstance(window, (int, np.integer)):
        window = (0, int(window))
    try:
        start, stop = (int(v) for v in window)
    except (TypeError, ValueError):
        raise UserError(
            f"window={window!r}: pass (start, stop) positions or a step count"
        ) from None
    if not 0 <= start < stop:
        raise UserError(f"window=({start}, {stop}): need 0 ≤ start < stop")
    return start, stop


def plan(
    call: Call,
    batch: Any = None,
    window: Any = None,
    max_bytes: int | None = MAX_BYTES,
    step_grads: bool = True,
    **flags: Any,
) -> list[Group]:
    """The groups to replay (equal length, same window), or one clear line why not; a
    :class:`~rnn_dissect.watch.work.SlowReplay` warning if it will be slow. flags: the
    analyses' lag, max_lag, jacobians (what :func:`~rnn_dissect.watch.work.work` counts)."""
    if call.dropout_refused:
        raise UserError(
            f"{call.label} ran with dropout in training mode {call.dropout_refused}: "
            "watch it after model.eval(), or build it with dropout=0"
        )
    if not call.arrived:
        raise UserError(
            f"no gradient reached {call.label}'s outputs: run loss.backward() before dissection() "
            "(and the forward with gradients enabled, not under torch.no_grad())"
        )
    sel = _batch(call, batch)
    start, stop = _window(call, window)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for b in sel.tolist():
        n = int(call.lengths[b])
        if start >= n:
            raise UserError(
                f"window starts at {start} but sequence {b} of {call.label} has {n} steps; "
                "start earlier or leave it out of batch="
            )
        groups.setdefault((n, start, min(stop, n)), []).append(b)
    out = [Group(np.array(bs), n, a, b) for (n, a, b), bs in groups.items()]
    sizes = [(len(g.batch), g.n, g.start, g.stop) for g in out]
    need = estimate(call, sizes, step_grads=step_grads)
    if max_bytes is not None and need > max_bytes:
        raise UserError(
            f"replaying {call.label} ({len(sel)} sequences, steps {start}..{min(stop, call.T)}) "
            f"needs about {need / 2**20:,.0f} MiB, above max_bytes={max_bytes / 2**20:,.0f} MiB: "
            "pick fewer sequences (batch=[0]), a shorter window=(start, stop), step_grads=False, "
            "or raise max_bytes"
        )
    warn_if_slow(call, sizes, **flags)
    return out
