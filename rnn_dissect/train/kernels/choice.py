"""The GEMM library for training, chosen by measurement and remembered per CPU.

Which BLAS is faster at a training step's shapes depends on the CPU, not the vendor: on a
Sapphire Rapids Xeon oneMKL's packed GEMM wins, on an AMD EPYC (Zen 4) numpy's OpenBLAS did
(``bench/bench_train_step.py --part 2``: LSTM 0.95× of torch with oneMKL, 1.12× with
OpenBLAS). So, the first time a shape is trained on a machine, :func:`choose` times a short
training step — the real kernels at the run's cell, H, layers, batch and vocabulary, T ≤ 16
steps — with each library, alternating, best of a few (≈ 0.1–1 s), picks the faster and
writes it to ``gemm-choice.json`` in the user cache directory (``$XDG_CACHE_HOME/rnn-dissect``,
else ``~/.cache/rnn-dissect``), keyed by :func:`~rnn_dissect.train.kernels.machine.fingerprint`
(CPU model, cores, numpy/BLAS/oneMKL versions) and the shape. Later runs read it: the same
machine makes the same choice, so a resumed run stays bit-identical. A measurement taken while
the machine is busy (1-minute load average ≥ its cores: other programs took the cores, and the
times say more about them than about the libraries — one taken here under load 6 had numpy
40× slower than oneMKL, which it is not) serves that run only and is not remembered; nor is
such an entry read back from an older cache. The next run on a quieter machine measures again.

:class:`Preference` is what the user asked for (``RNN_DISSECT_GEMM=auto|mkl|numpy``, default
auto; ``RNN_DISSECT_MKL=0`` is the older spelling of numpy; ``RNN_DISSECT_FUSED=0``), read once
by the command line; :meth:`Preference.resolve` turns it into the
:class:`~rnn_dissect.train.kernels.backend.Backend` a run computes with.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import ModelConfig, init_params
from rnn_dissect.train.kernels import blas, fused, machine
from rnn_dissect.train.kernels.backend import GEMMS, Backend
from rnn_dissect.train.kernels.registry import KERNELS
from rnn_dissect.train.kernels.workspace import Workspace

__all__ = [
    "CACHE_NAME",
    "Measured",
    "Preference",
    "StepShape",
    "busy",
    "cached",
    "choose",
    "default_cache_dir",
    "measure",
]

CACHE_NAME = "gemm-choice.json"
FORMAT = "rnn-dissect/gemm-choice"
MAX_T = 16  # time steps of the measured step: enough for the per-step GEMMs to dominate


@dataclass(frozen=True)
class StepShape:
    """The shapes of one training step: what the measurement runs and what the cache keys."""

    cell: str  # rnn | lstm | gru
    hidden: int  # H
    layers: int  # L
    batch: int  # B
    vocab: int  # V
    seq_len: int = MAX_T  # S (the measurement runs min(S, MAX_T) steps)

    @property
    def key(self) -> str:
        return f"{self.cell} H{self.hidden} L{self.layers} B{self.batch} V{self.vocab}"


@dataclass(frozen=True)
class Measured:
    """A choice and the step times it was made from (seconds, best of the rounds)."""

    gemm: str
    seconds: dict[str, float]
    shape: str
    fused: bool
    when: str = ""  # UTC time of the measurement
    load: float = math.nan  # 1-minute load average then (a busy machine skews the times)
    cached: bool = False  # read from the cache file, not measured now


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/rnn-dissect``, else ``~/.cache/rnn-dissect`` (the XDG convention)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "rnn-dissect"


def measure(shape: StepShape, use_fused: bool, budget: float = 0.6) -> dict[str, float]:
    """Best seconds of one training step (forward + backward, float32, T = min(S, 16)) per
    available GEMM library. Libraries alternate within each round (which goes first too) so
    a drift of the machine's speed hits both, each timed after an untimed step of its own;
    at least 2 rounds, more while under ``budget`` seconds."""
    libs = [g for g in GEMMS if g != "mkl" or blas.available()]
    cfg = ModelConfig(
        shape.cell, tuple(chr(32 + i) for i in range(shape.vocab)), shape.hidden, shape.layers
    )
    rng = np.random.default_rng(0)
    params = init_params(cfg, rng, np.float32)
    T = max(1, min(shape.seq_len, MAX_T))
    x = rng.integers(0, shape.vocab, (shape.batch, T))
    y = rng.integers(0, shape.vocab, (shape.batch, T))
    kernel = KERNELS[shape.cell]
    runs = {g: (Backend(g, use_fused), Workspace()) for g in libs}
    for bk, ws in runs.values():  # warm-up: libraries loaded, numba compiled, buffers made
        kernel.forward_backward(params, x, y, ws=ws, backend=bk)
    best = dict.fromkeys(libs, math.inf)
    start, rounds = time.perf_counter(), 0
    while rounds < 2 or (rounds < 9 and time.perf_counter() - start < budget):
        order = libs if rounds % 2 == 0 else libs[::-1]
        for g in order:
            bk, ws = runs[g]
            # untimed first: the other library's threads still spin for a while after its
            # last call (OpenBLAS's, libiomp5's), which would slow this one's next step
            kernel.forward_backward(params, x, y, ws=ws, backend=bk)
            t0 = time.perf_counter()
            kernel.forward_backward(params, x, y, ws=ws, backend=bk)
            best[g] = min(best[g], time.perf_counter() - t0)
        rounds += 1
    return best


def _read(path: Path) -> list[dict[str, Any]]:
    """The cache's entries; [] when it is missing or not ours (it is only a cache)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return []
    entries = doc.get("entries")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the cache atomically; a read-only or full disk only costs a re-measurement."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        doc = {"format": FORMAT, "version": 1, "entries": entries}
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def cached(cache_dir: Path) -> list[Measured]:
    """This machine's remembered choices (other machines' entries are skipped)."""
    here = machine.fingerprint()
    out = []
    for e in _read(cache_dir / CACHE_NAME):
        if e.get("machine") != here or e.get("gemm") not in GEMMS:
            continue
        try:  # a hand-edited or damaged entry is skipped (and measured again)
            secs = {str(k): float(v) for k, v in dict(e.get("seconds", {})).items()}
            load = float(e["load"]) if e.get("load") is not None else math.nan
        except (TypeError, ValueError):
            continue
        shape, when = str(e.get("shape")), str(e.get("when", ""))
        out.append(Measured(e["gemm"], secs, shape, bool(e.get("fused")), when, load, True))
    return out


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else math.nan


def busy(load: float, cores: int | None = None) -> bool:
    """Whether a measurement taken at ``load`` is too disturbed to remember: the load
    average is at least the usable cores (every core already had a program to run)."""
    n = cores if cores is not None else machine.cores()
    return not math.isnan(load) and load >= n


def choose(shape: StepShape, use_fused: bool, cache_dir: Path, remeasure: bool = False) -> Measured:
    """The faster GEMM library for ``shape`` on this machine: from the cache, else measured
    now (:func:`measure`) and remembered — unless the machine is :func:`busy` (then the
    choice serves this run only). Only oneMKL installed or not: numpy, unmeasured."""
    if not blas.available():
        return Measured("numpy", {}, shape.key, use_fused)
    if not remeasure:
        for m in cached(cache_dir):
            if m.shape == shape.key and m.fused == use_fused and not busy(m.load):
                return m
    load = load_average()  # before: our own measurement adds to it
    secs = measure(shape, use_fused)
    gemm = min(secs, key=lambda g: secs[g])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if busy(load):
        return Measured(gemm, secs, shape.key, use_fused, when, load)
    here = machine.fingerprint()
    path = cache_dir / CACHE_NAME
    keep = [
        e
        for e in _read(path)
        if not (
            e.get("machine") == here and e.get("shape") == shape.key and e.get("fused") == use_fused
        )
    ]
    entry = {
        "machine": here,
        "shape": shape.key,
        "fused": use_fused,
        "gemm": gemm,
        "seconds": secs,
        "when": when,
        "load": None if math.isnan(load) else load,
    }
    _write(path, [*keep, entry])
    return Measured(gemm, secs, shape.key, use_fused, when, load)


ON, OFF = ("1", "on", "true", "yes"), ("0", "off", "false", "no")


def _switch(env: Mapping[str, str], name: str) -> bool:
    """An on/off environment variable, on when unset or empty; a value that is neither
    (``RNN_DISSECT_FUSED=maybe``) is a :class:`UserError`, not silently "on"."""
    value = env.get(name, "").strip().lower()
    if value in ("", *ON):
        return True
    if value in OFF:
        return False
    raise UserError(f"{name}={env[name]!r} is not one of 1/on/true/yes, 0/off/false/no")


@dataclass(frozen=True)
class Preference:
    """What the user asked for; :meth:`resolve` makes the run's Backend from it."""

    gemm: str = "auto"  # auto (measure, remember) | mkl | numpy
    fused: bool = True  # the numba-compiled passes, when numba imports
    cache_dir: Path | None = None  # where measured choices live; None: default_cache_dir()

    def __post_init__(self) -> None:
        if self.gemm not in ("auto", *GEMMS):
            raise ValueError(f"gemm must be auto, mkl or numpy, got {self.gemm!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Preference:
        """``RNN_DISSECT_GEMM`` (auto | mkl | numpy; ``RNN_DISSECT_MKL=0`` means numpy),
        ``RNN_DISSECT_FUSED=0`` and the cache directory, read once. A value that cannot be
        honoured is a :class:`UserError` (one line, exit 2)."""
        env = os.environ if environ is None else environ
        gemm = env.get("RNN_DISSECT_GEMM", "").strip().lower()
        if not gemm:
            gemm = "auto" if _switch(env, "RNN_DISSECT_MKL") else "numpy"
        if gemm not in ("auto", *GEMMS):
            raise UserError(f"RNN_DISSECT_GEMM={gemm!r} is not one of auto, mkl, numpy")
        if gemm == "mkl" and not blas.available():
            raise UserError(
                "RNN_DISSECT_GEMM=mkl but oneMKL is not installed; pip install "
                "rnn-dissect[mkl], or set RNN_DISSECT_GEMM=auto"
            )
        return cls(gemm, _switch(env, "RNN_DISSECT_FUSED"), default_cache_dir(env))

    @property
    def use_fused(self) -> bool:
        """Whether the run's Backend gets the compiled passes: asked for and numba imports."""
        return self.fused and fused.AVAILABLE

    def resolve(self, shape: StepShape) -> Backend:
        """The Backend for a run of ``shape``: the library asked for, or with auto the
        measured (or remembered) faster one; compiled passes when :attr:`use_fused`."""
        if self.gemm != "auto":
            return Backend(self.gemm, self.use_fused)
        cache = self.cache_dir or default_cache_dir()
        return Backend(choose(shape, self.use_fused, cache).gemm, self.use_fused)
