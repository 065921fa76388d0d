"""Activations of every unit over a text, equal to one sequential pass: h (LSTM also c and
gates i f g o; GRU gates r z n) per layer and character, as
:class:`~rnn_dissect.neurons.activations.Activations`, from the plain numpy forward
(:class:`~rnn_dissect.nets.forward.Forward`: PyTorch's equations; float32 by default).
Row j of every array is the value after reading character j (the state that predicts j+1).

One pass over a long text is slow: a (1, H) @ (H, G·H) product per step. So the text is cut
into B segments read in lock-step — one (B, H) product per step — and the result is then
*checked* against the one pass it stands for:

1. Speculate. Segment b owns rows [s_b, e_b). It starts reading ``warmup`` characters early
   from a zero state and drops those rows (segment 0 starts at the text's start, as one pass
   does). Record each segment's start state (before row s_b) and end state (after e_b − 1).
2. Verify. In one pass the state entering segment b is the state leaving segment b − 1.
   Where start_b ≠ end_{b−1} (|Δ| > tol·(1 + |end|), every layer's h and c), a *walker*
   re-reads segment b from end_{b−1}, all walkers in lock-step. After each row it compares
   its state with the stored row's: once they agree, the stored rows that follow are those
   of the corrected trajectory, and the walker stops (a model that forgets its start merges
   within a few hundred characters). A walker that reaches its segment's end has a new
   end_b; if that disagrees with start_{b+1} it walks on into segment b + 1, and so on.
   Every change of an end state is checked against the next start when it happens, so
   after this pass every segment starts where its predecessor ends: the rows are one
   sequential pass's, to within ``tol`` carried forward by the model.

Cost: pass 1 plus the rows the walkers re-read (``rerun_chars``). A unit with perfect memory
(a bracket counter with f = 1) never merges: the walker of the first wrong segment walks to
the end of the text — sequential reading, the worst case. ``exact=False`` stops after step 1
(the approximate collection: segments that have not forgotten their zero start are wrong).

How the arrays were collected — mode, segments, warm-up, passes, characters re-read,
tolerance — is :attr:`Activations.collection` (and ``activations.json`` on disk).

With ``out_dir`` the arrays stream to ``.npy`` files (the :mod:`rnn_dissect.neurons.activations`
directory format) through ordinary positioned writes and reads, a few time steps at a
time, and come back memory-mapped: memory stays at ``max_buffer_bytes`` however long the text.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> m = CharModel.init(ModelConfig("gru", tuple("ab"), hidden_size=3))
    >>> acts = collect(m, "abba")
    >>> acts.ordered_keys(), acts.arrays[(0, "h")].shape, acts.collection["mode"]
    ([(0, 'h'), (0, 'r'), (0, 'z'), (0, 'n')], (4, 3), 'exact')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.forward import STATES, Forward
from rnn_dissect.nets.model import CharModel
from rnn_dissect.neurons.activations import Activations, ActivationsWriter, Key
from rnn_dissect.neurons.verify import Segments, default_tolerance, state_at, verify

__all__ = ["collect", "describe", "engine"]

Array = np.ndarray


class _Store:
    """The rows collected so far, in memory or streamed to files; written and read back."""

    def __init__(self, model: CharModel, text: str, keys: list[Key], H: int, dtype: Any,
                 out_dir: str | Path | None) -> None:  # fmt: skip
        self.writer, self.arrays = None, {}
        if out_dir is not None:
            spec = {key: (H, np.dtype(dtype)) for key in keys}
            cfg = model.config
            self.writer = ActivationsWriter(out_dir, cfg.cell, cfg.vocab, text, spec)
        else:
            self.arrays = {key: np.empty((len(text), H), dtype=dtype) for key in keys}

    def write(self, key: Key, start: int, rows: Array) -> None:
        if self.writer is not None:
            self.writer.write_at(key, start, rows)
        else:
            self.arrays[key][start : start + len(rows)] = rows

    def read(self, key: Key, start: int, stop: int) -> Array:
        if self.writer is not None:
            return self.writer.read_at(key, start, stop)
        return self.arrays[key][start:stop]


def collect(
    model: CharModel,
    text: str,
    *,
    exact: bool = True,
    warmup: int = 500,
    batch: int | None = None,
    out_dir: str | Path | None = None,
    dtype: Any = np.float32,
    max_buffer_bytes: int = 64 << 20,
    tol: float | None = None,
    backend: str = "numpy",
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Activations:
    """Every unit's activation after each character of ``text`` (N characters).

    ``exact``: verify the segments against one sequential pass (see the module docstring);
    False keeps the speculative first pass only. ``warmup``: characters each segment reads
    before its own. ``batch``: segments in lock-step (default: up to 64, each at least
    4·warmup long). ``out_dir``: stream to files there and return them memory-mapped.
    ``tol``: of the state comparisons (default :func:`default_tolerance`). ``backend``:
    ``numpy`` steps :class:`Forward`; ``torch`` runs the fused recurrent kernels and the gates
    all at once (:class:`~rnn_dissect.nets.torch_forward.TorchForward`) on ``device``
    (cpu | cuda); the segments, the check and the arrays written are the same.
    ``progress(done, total)``: called after each chunk of the first pass (the bulk of the
    work; ``done`` = steps read by every segment in lock-step), and once more when done.
    """
    idx = model.encode(text)  # (N,)
    N = len(idx)
    fwd = engine(model, dtype, backend, device)
    cell, L, H = model.config.cell, fwd.num_layers, fwd.hidden_size
    keys = [(k, kind) for k in range(L) for kind in fwd.kinds]
    tol = default_tolerance(dtype) if tol is None else tol
    B = batch or max(1, min(64, N // max(4 * warmup, 1)))
    seg = max(1, -(-N // B))  # rows per segment
    B = max(1, -(-N // seg))
    own = [(b * seg, min(N, (b + 1) * seg)) for b in range(B)]  # rows each segment keeps
    store = _Store(model, text, keys, H, dtype, out_dir)
    row_bytes = H * np.dtype(dtype).itemsize * len(keys)  # one row of every array
    C_max = max(1, max_buffer_bytes // (B * row_bytes))  # time steps per chunk

    segs = _speculate(fwd, idx, own, warmup, store, keys, C_max, progress)
    info: dict[str, Any] = {
        "mode": "exact" if exact else "approximate",
        "segments": B,
        "warmup": warmup,
        "dtype": np.dtype(dtype).name,
    }
    if backend != "numpy":  # the numpy record stays as it was
        info["backend"] = f"torch ({getattr(fwd, 'device', device)})"
    if exact:
        check = verify(fwd, idx, segs, store, tol, max_steps=C_max * B)
        info |= {"passes": check.passes, "tolerance": tol, "segments_rerun": check.segments_rerun,
                 "rerun_chars": check.rerun_chars}  # fmt: skip
    else:
        info |= {"passes": 1}
    if progress is not None:
        progress(1, 1)
    if store.writer is not None:
        return store.writer.close(collection=info)
    return Activations(cell, model.config.vocab, text, store.arrays, collection=info)


def engine(model: CharModel, dtype: Any, backend: str, device: str) -> Forward:
    """The forward pass that reads the text: numpy's, or PyTorch's (imported only now)."""
    if backend not in ("numpy", "torch"):
        raise UserError(f"unknown --backend {backend!r}; choose numpy or torch")
    if backend == "numpy":
        if device != "cpu":
            raise UserError(f"--device {device} needs --backend torch (numpy runs on the CPU)")
        return Forward.of(model, dtype)
    from rnn_dissect.nets.torch_forward import TorchForward  # torch is optional

    return TorchForward.of(model, dtype, device)


def _speculate(
    fwd: Forward,
    idx: Array,
    own: list[tuple[int, int]],
    warmup: int,
    store: _Store,
    keys: list[Key],
    C_max: int,
    progress: Callable[[int, int], None] | None = None,
) -> Segments:
    """Pass 1: every segment in lock-step from a zero state ``warmup`` characters early.
    Returns the segments with each one's start state (before its first row) and end state."""
    cell, L, H, B = fwd.cell, fwd.num_layers, fwd.hidden_size, len(own)
    read = [max(0, s - warmup) for s, _ in own]  # where each segment starts reading
    T = max(e - r for (_, e), r in zip(own, read, strict=True))
    steps = np.zeros((T, B), dtype=np.int64)  # (T, B) inputs; padding after a segment's end
    for b, ((_, e), r) in enumerate(zip(own, read, strict=True)):
        steps[: e - r, b] = idx[r:e]
    zero = np.zeros((len(STATES[cell]), L, H), dtype=fwd.dtype)
    start = [zero.copy() for _ in own]  # a segment that starts at its own first row: zeros
    end = [zero.copy() for _ in own]
    C = min(T, C_max)
    rec = {key: np.empty((C, B, H), dtype=fwd.dtype) for key in keys}
    state = fwd.zero_state(B)
    for t0 in range(0, T, C):
        t1 = min(T, t0 + C)
        view = {key: a[: t1 - t0] for key, a in rec.items()}
        _, state = fwd.run(steps[t0:t1], state, view)
        for b, ((s, e), r) in enumerate(zip(own, read, strict=True)):
            if t0 <= s - r - 1 < t1:  # the last warm-up step: the state segment b starts from
                start[b] = state_at(view, s - r - 1 - t0, b, cell, L)
            if t0 <= e - r - 1 < t1:
                end[b] = state_at(view, e - r - 1 - t0, b, cell, L)
            lo, hi = max(s, r + t0), min(e, r + t1)  # text rows of this chunk that b owns
            for key in keys if lo < hi else ():
                store.write(key, lo, view[key][lo - r - t0 : hi - r - t0, b])  # (hi − lo, H)
        if progress is not None:
            progress(t1, T)
    return Segments(own, start, end)


def describe(collection: dict[str, Any]) -> str:
    """How activations were collected, in one sentence (empty if unknown)."""
    if not collection:
        return ""
    n, w = collection["segments"], collection["warmup"]
    if collection["mode"] == "approximate":
        return (
            f"APPROXIMATE activations: {n} segments each started from a zero state {w} "
            "characters early and were not checked against one sequential pass, so units "
            "that remember longer than that may be wrong (drop --approximate for exact values)"
        )
    by = f", read by {collection['backend']}" if "backend" in collection else ""
    if n == 1:
        return f"exact activations: one sequential pass{by}"
    return (
        f"exact activations: equal to one sequential pass — {n} segments read in lock-step, "
        f"{collection['passes']} passes, {collection['rerun_chars']:,} characters re-read "
        f"(tolerance {collection['tolerance']:g}){by}"
    )
