"""``with watch(modules) as w``: hooks on during the block, calls recorded, replays on demand.

    >>> with watch(model.encoder, batch=[0, 1], max_bytes=1 << 28) as w:   # doctest: +SKIP
    ...     criterion(model(x), y).backward()
    >>> d = w.dissection()                     # the one recorded call, replayed in float64

Several modules: ``watch([enc, dec])`` or ``watch({"encoder": enc, "decoder": dec})``; each
forward call is one recorded call (``w.calls``); ``w[dec]`` is that module's calls dissected,
``w.dissections()`` all of them, ``w.check(dec)`` their sum against ``.grad`` (calls made
under ``torch.no_grad`` are left out: no gradient comes of them). Backward may also run after
the block: the tensor hooks stay on the outputs, only the forward hooks are removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.watch.call import Call
from rnn_dissect.watch.replay import replay_group
from rnn_dissect.watch.result import Watched, compare_grads
from rnn_dissect.watch.select import MAX_BYTES, plan

__all__ = ["Watch", "dissect_call"]

ANALYSES = ("lr", "optimizer", "step_grads", "lag", "max_lag", "jacobians", "keep_jacobians")


def check_options(kw: dict[str, Any]) -> None:
    bad = set(kw) - {"batch", "window", "max_bytes", "frames", *ANALYSES}
    if bad:
        raise UserError(
            f"unknown option(s) {sorted(bad)}; known: batch, window, max_bytes, frames, {', '.join(ANALYSES)}"
        )


def dissect_call(call: Call, **kw: Any) -> Watched:
    """Replay ``call`` (keywords: batch, window, max_bytes, and dissect_run's analyses)."""
    check_options(kw)
    sel = {k: kw.pop(k) for k in ("batch", "window", "max_bytes") if k in kw}
    frames = kw.pop("frames", None)
    costed = {k: kw[k] for k in ("step_grads", "lag", "max_lag", "jacobians") if k in kw}
    groups = plan(call, **sel, **costed)
    parts = []
    for g in groups:
        small = len(g.batch) * (g.stop - g.start) * call.hidden_size <= 20_000
        parts += replay_group(call, g, frames=small if frames is None else frames, **kw)
    return Watched(call, groups, parts)


class Watch:
    """The context manager ``watch(...)`` returns (see the module docstring)."""

    def __init__(self, modules: Any, **defaults: Any) -> None:
        from rnn_dissect.watch.hooks import install_hooks  # torch: only here

        check_options(defaults)
        self.modules = _named(modules)
        self.defaults = {"max_bytes": MAX_BYTES, **defaults}
        self.calls: list[Call] = []
        self._handles = install_hooks(self.modules, self.calls)
        self._labels = {id(m): name for name, m in self.modules}

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove the forward hooks (gradients of calls already made still arrive)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def _of(self, module: Any) -> list[Call]:
        label = self._labels.get(id(module)) if not isinstance(module, str) else module
        if label is None:
            raise UserError(
                f"{type(module).__name__} is not watched here; watched: {[n for n, _ in self.modules]}"
            )
        return [c for c in self.calls if c.label.rsplit("#", 1)[0] == label]

    def dissection(self, module: Any = None, call: int | None = None, **kw: Any) -> Watched:
        """The replay of one call: the only one recorded (or the only one autograd recorded,
        beside torch.no_grad ones), or ``module``'s call number ``call``."""
        calls = self.calls if module is None else self._of(module)
        live = [c for c in calls if c.tracked]  # no_grad calls (an evaluation) have no backward
        if call is None and len(live) == 1:
            return dissect_call(live[0], **{**self.defaults, **kw})
        if call is None and len(calls) != 1:
            seen = ", ".join(c.label for c in calls) or "none"
            raise UserError(
                f"{len(calls)} calls recorded ({seen}): pick one with "
                "w.dissection(module, call=i), or use w.dissections()"
            )
        i = 0 if call is None else call
        if not -len(calls) <= i < len(calls):
            raise UserError(f"call={i}: {len(calls)} call(s) of that module were recorded")
        return dissect_call(calls[i], **{**self.defaults, **kw})

    def dissections(self, **kw: Any) -> list[Watched]:
        """Every recorded call, replayed, in call order."""
        return [dissect_call(c, **{**self.defaults, **kw}) for c in self.calls]

    def check(self, module: Any) -> float:
        """``module``'s gradients summed over every call recorded for it, against its ``.grad``
        (max relative difference, as :meth:`Watched.check`): the check for a module called
        several times in one backward (a decoder stepped in a loop, an encoder used twice)."""
        ds = [dissect_call(c, **self.defaults) for c in self._of(module) if c.tracked]
        if not ds:
            raise UserError(
                "no call of that module was recorded with gradients: run the forward inside the "
                "with block, not under torch.no_grad()"
            )
        total: dict[str, np.ndarray] = {}
        for d in ds:
            if not d.complete:
                raise UserError(
                    "w.check replays every sequence: leave batch= out of watch(...) to compare with .grad"
                )
            for name, g in d.grads.items():
                if name in ("h0", "c0"):  # per call, of that call's batch
                    continue
                total[name] = total[name] + g if name in total else g
        return compare_grads(total, module)

    def __getitem__(self, module: Any) -> list[Watched]:
        return [dissect_call(c, **self.defaults) for c in self._of(module)]


def _named(modules: Any) -> list[tuple[str, Any]]:
    if isinstance(modules, Mapping):
        return [(str(k), m) for k, m in modules.items()]
    ms = list(modules) if isinstance(modules, (list, tuple)) else [modules]
    if not ms:
        raise UserError("watch needs at least one torch.nn.RNN, LSTM or GRU module")
    names = [type(m).__name__ for m in ms]
    return [
        (n if names.count(n) == 1 else f"{n}.{names[:i].count(n)}", m)
        for i, (n, m) in enumerate(zip(names, ms, strict=True))
    ]
