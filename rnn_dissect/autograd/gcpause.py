"""Pausing Python's cyclic garbage collector while a graph is built and swept.

A recorded graph is 10⁴–10⁵ small linked objects (nodes, their tuples and dicts) that all
stay alive until the graph is dropped. Each allocation burst of 700 objects starts a
collection, and every tenth of those walks everything allocated so far: passes that find
nothing to free and cost the dissection 3–10 % of its time (T = 1000, H = 256). Nothing it
computes depends on when the collector runs, so pausing it changes no number.

    >>> import gc
    >>> with paused_gc():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the block; re-enable it after, only if it was on
    (nested pauses, and a caller that turned it off itself, are left as they were)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
