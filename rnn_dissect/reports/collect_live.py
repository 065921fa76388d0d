"""What ``rnn-dissect neurons`` says while it collects: a free-space check before streaming
activations to disk, and a progress bar like ``train``'s (rich, on stderr).

    >>> with collecting(1000, quiet=True) as tick:
    ...     tick(500, 1000)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rnn_dissect.errors import UserError

__all__ = ["MARGIN", "check_space", "collecting"]

MARGIN = 1.1  # streamed activations need this much more than their size (metadata, slack)


def check_space(folder: Path, size: int, keep: bool) -> str:
    """Raise :class:`UserError` when ``folder``'s disk has less than ``MARGIN`` × ``size``
    bytes free; else the words for the terminal: where they go and that they are temporary."""
    probe = folder
    while not probe.exists():  # the folder may not exist yet: ask its nearest parent
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < MARGIN * size:
        raise UserError(
            f"streaming the activations needs {MARGIN * size / 2**20:,.0f} MB in {folder} and "
            f"only {free / 2**20:,.0f} MB are free; free space, or read less text "
            "(--max-chars) or one layer (--layer)"
        )
    how = "kept (--keep-activations)" if keep else "a temporary folder, deleted at the end"
    return f" streamed to {folder} ({how}; {free / 2**30:,.1f} GB free)"


@contextmanager
def collecting(n_chars: int, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the collection; yields ``tick(done, total)`` for
    :func:`rnn_dissect.neurons.collect.collect`'s ``progress``."""
    if quiet:
        yield lambda done, total: None
        return
    bar = Progress(
        TextColumn(f"reading {n_chars:,} characters"),
        BarColumn(bar_width=24),
        TextColumn("{task.percentage:>3.0f}%  ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True, highlight=False),
        transient=True,
    )
    task = bar.add_task("collect", total=1)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)
