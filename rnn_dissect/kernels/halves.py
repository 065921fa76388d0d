"""Run a recurrence as two independent batch halves, one per core.

The B sequences of a batch never interact inside a layer, so a layer's forward (or
backward) over rows ``[0, B/2)`` and over ``[B/2, B)`` are two independent chains of T
small steps. On two cores, running them side by side — each with a single-threaded BLAS —
overlaps one half's elementwise numpy work with the other half's GEMM, instead of
leaving a core idle during every elementwise op (numpy's ufuncs are single-threaded, and
release the GIL, as does matmul). The numbers are the same: each output row is computed
by the same kernels from the same inputs.

Offered for LSTM and GRU (their steps carry many elementwise ops; plain RNN is GEMM-bound).
OFF by default (``ENABLED = False``): measured here it cut an isolated LSTM forward+backward
loop by 7–10 % and held up far better while other processes loaded the cores, but in
``bench/bench_train_step.py`` (PyTorch alternating in the same process) whole training steps
came out 10–20 % slower than with one chain and a two-thread BLAS. Set
``rnn_dissect.kernels.halves.ENABLED = True`` to try it on another machine. Needs the
optional ``threadpoolctl`` to pin the BLAS to one thread inside the halves; without it, or
with one core, nothing is split.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ENABLED", "MIN_ROWS_X_H", "run"]

R = TypeVar("R")

ENABLED = False  # see the module docstring
MIN_ROWS_X_H = 1 << 14  # split only when B·H is at least this (B = 64, H ≥ 256)

_controller: Any = None


def _blas_controller() -> Any:
    """threadpoolctl's controller (built once: it inspects the loaded libraries), or None."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # optional: without it we never split
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller or None


def run(fn: Callable[[slice], R], B: int, H: int) -> list[R]:
    """``[fn(rows) for rows in halves]``: both halves in parallel when worthwhile, else
    ``[fn(slice(0, B))]``. Exceptions from either half are raised here."""
    ctl = _blas_controller() if ENABLED and B >= 2 and B * H >= MIN_ROWS_X_H else None
    if ctl is None or (os.cpu_count() or 1) < 2:
        return [fn(slice(0, B))]
    rows = [slice(0, B // 2), slice(B // 2, B)]
    out: list[Any] = [None, None]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            out[i] = fn(rows[i])
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    with ctl.limit(limits=1, user_api="blas"):
        other = threading.Thread(target=work, args=(1,))
        other.start()
        work(0)
        other.join()
    if errors:
        raise errors[0]
    return out
