"""Dissect any PyTorch RNN inside any model: hooks during a real forward and backward, then an
exact float64 replay of the recurrent core on the project's engine.

    from rnn_dissect import watch
    with watch(model.encoder) as w:          # torch.nn.RNN / LSTM / GRU or a cell; several
        loss = criterion(model(batch), y)
        loss.backward()
    d = w.dissection()                        # grads under torch's names, per step, per sequence

``rnn_dissect.watch`` is this package *and* the function: calling the module calls
:func:`watch` (torch is imported only then; without it, one clear error).

- ``call.py``     one recorded call as numpy (inputs, states, torch's upstream gradients).
- ``hooks.py``    the torch hooks that fill it (with dropout.py, the only files that import torch).
- ``dropout.py``  training-mode dropout between layers: the masks re-made from torch's generator.
- ``layers.py``   one layer-direction recorded on the engine, torch's gradients as its head.
- ``replay.py``   all layers and directions of a group of sequences, chained exactly; windows.
- ``budget.py``   the bytes a replay will hold, estimated before it runs.
- ``work.py``     the multiply-adds it will do; a one-line warning (SlowReplay) when many.
- ``select.py``   which sequences and steps to replay; the refusals.
- ``result.py``   ``Watched``: totals, per-sequence views, ``save``, neuron scores.
- ``session.py``  the context manager.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EXPORTERS", "watch"]

# name → writer(a part's dissection document with nodes, path) that ``save`` also calls; the
# explorer's page is installed by the package's __init__ (the reports layer sits above this
# one), as a Graph's Jupyter display is.
EXPORTERS: dict[str, Callable[[dict[str, Any], Path], None]] = {}


def watch(modules: Any, **options: Any) -> Any:
    """Watch ``modules`` (a torch RNN/LSTM/GRU or RNNCell/LSTMCell/GRUCell, a list, or a dict
    name → module) while the ``with`` block runs. options — batch: sequence indices to replay (default all); window:
    (start, stop) positions (default all); max_bytes: refuse a replay estimated above it
    (default 2 GiB); and the analyses' flags (step_grads, lag, max_lag, jacobians, frames).
    Returns a :class:`~rnn_dissect.watch.session.Watch`."""
    try:
        import torch  # noqa: F401
    except ImportError:
        from rnn_dissect.errors import UserError

        raise UserError(
            "watch needs PyTorch: pip install 'rnn-dissect[torch]' (or torch itself)"
        ) from None
    from rnn_dissect.watch.session import Watch

    return Watch(modules, **options)


class _CallableModule(types.ModuleType):
    """``from rnn_dissect import watch; watch(m)``: the package, callable as the function."""

    def __call__(self, modules: Any, **options: Any) -> Any:
        return watch(modules, **options)


sys.modules[__name__].__class__ = _CallableModule
