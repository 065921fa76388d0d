"""Two cores without BLAS threads: batch halves for the recurrence, split GEMMs for the rest.

The B sequences of a batch never interact inside a layer, so a layer's forward (or
backward) over rows ``[0, B/2)`` and over ``[B/2, B)`` are two independent chains of T
small steps. On two cores, running them side by side — each with a single-threaded BLAS —
overlaps one half's elementwise numpy work with the other half's GEMM, instead of
leaving a core idle during every elementwise op (numpy's ufuncs are single-threaded; they
release the GIL, as does matmul). The big all-steps GEMMs (weight gradients, head, input
projections) are split in two by rows of their output, one half per thread.

Why not let the BLAS thread itself: after each multi-threaded call, OpenBLAS's worker
busy-waits ~0.1 s for more work, holding a core the other half needs. So inside
:func:`two_cores` the BLAS is pinned to one thread for the whole step and never wakes its
workers. The numbers are the same either way: each output row is computed by the same
kernels from the same inputs (split GEMMs differ only in which rows a call computes).

On when ``ENABLED``, ``threadpoolctl`` is importable and the machine has at least two
cores; otherwise everything runs as one chain with the BLAS's own threads. OFF by default:
on the 2-core machines this was built on it was no faster (LSTM 0.89–0.97× of torch with it,
0.91–0.94× without; GRU 1.02× with, 1.13–1.15× without, ``bench/bench_train_step.py --part 2``
with ``ENABLED`` toggled): a 32-row single-threaded GEMM runs at ~75% of the rate of a
64-row one, which costs what the overlap of elementwise work gains. Set
``rnn_dissect.train.kernels.halves.ENABLED = True`` to try it on another machine.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from rnn_dissect.train.kernels import blas

__all__ = ["ENABLED", "MIN_ROWS_X_H", "matmul", "run", "two_cores"]

R = TypeVar("R")

ENABLED = False  # see the module docstring
MIN_ROWS_X_H = 1 << 14  # split a recurrence only when B·H is at least this (B = 64, H ≥ 256)
MIN_GEMM_FLOPS = 1 << 24  # split a GEMM only above this many multiply-adds

_controller: Any = None
_pool: ThreadPoolExecutor | None = None
_local = threading.local()  # .on: inside two_cores() in this thread


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


def _other() -> ThreadPoolExecutor:
    """The one extra worker thread (made once, reused: no thread start per call)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnn-dissect-half")
    return _pool


def active() -> bool:
    """Whether the calling thread is inside :func:`two_cores` with the split on."""
    return getattr(_local, "on", False)


@contextlib.contextmanager
def two_cores() -> Iterator[bool]:
    """For one training step: pin the BLAS to one thread and let :func:`run` and
    :func:`matmul` split work over two threads. Yields whether the split is on. Re-entrant."""
    if active():
        yield True
        return
    ctl = _blas_controller() if ENABLED and (os.cpu_count() or 1) >= 2 else None
    if ctl is None:
        yield False
        return
    # oneMKL's own threads would oversubscribe the cores: numpy's products in both halves
    with ctl.limit(limits=1, user_api="blas"), blas.held():
        _local.on = True
        try:
            yield True
        finally:
            _local.on = False


def run(fn: Callable[[slice], R], B: int, H: int) -> list[R]:
    """``[fn(rows) for rows in halves]``: both batch halves in parallel when worthwhile,
    else ``[fn(slice(0, B))]``. Exceptions from either half are raised here."""
    if not active() or B < 2 or B * H < MIN_ROWS_X_H:
        return [fn(slice(0, B))]
    rows = [slice(0, B // 2), slice(B // 2, B)]
    future = _other().submit(fn, rows[1])
    try:
        first = fn(rows[0])
    finally:
        second = future.result()  # waits even if ours raised; re-raises the other's error
    return [first, second]


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` for 2-D operands, its output rows split over the two
    threads when the product is big enough and :func:`two_cores` is on."""
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    if not active() or m < 2 or m * k * n < MIN_GEMM_FLOPS:
        return blas.matmul(a, b, out)
    h = m // 2
    future = _other().submit(np.matmul, a[h:], b, out=out[h:])
    try:
        np.matmul(a[:h], b, out=out[:h])
    finally:
        future.result()
    return out
