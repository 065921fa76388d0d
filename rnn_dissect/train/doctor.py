"""``rnn-dissect doctor``: what this machine gives the training kernels, as rows of text.

    CPU, vector ISA, cores · numpy and its BLAS · oneMKL · numba · torch (version, threads,
    CUDA) · the GEMM preference and every choice measured on this machine, with its timings

:func:`report` returns plain ``(label, value)`` rows; the command prints them. With
``measure`` it first times bench/bench_train_step.py part 2's shapes (H 512, one layer,
batch 64) for the three cells, so the choice there is fresh — and remembered, unless the
machine is busy (:func:`~rnn_dissect.train.kernels.choice.busy`; then the rows say so).
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

from rnn_dissect.train.kernels import blas, choice, fused, machine
from rnn_dissect.train.kernels.choice import Measured, Preference, StepShape

__all__ = ["BENCH_SHAPES", "report"]

BENCH_SHAPES = [StepShape(c, 512, 1, 64, 65, 100) for c in ("rnn", "lstm", "gru")]
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _torch() -> str:
    if importlib.util.find_spec("torch") is None:
        return "not installed (optional: pip install rnn-dissect[torch])"
    import torch

    cuda = (
        f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): "
        + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "no CUDA device"
    )
    return f"{torch.__version__}, {torch.get_num_threads()} threads, {cuda}"


def _numba() -> str:
    if not fused.AVAILABLE:
        return "missing: the kernels run numpy's elementwise passes (slower)"
    import numba

    return f"{numba.__version__}, compiled per-step passes on"


def choice_row(m: Measured) -> tuple[str, str]:
    """``lstm H512 L1 B64 V65`` → ``mkl 31.2 ms · numpy 28.4 ms → numpy (when)``."""
    times = " · ".join(f"{g} {1e3 * s:.1f} ms" for g, s in sorted(m.seconds.items()))
    passes = "" if m.fused else ", numpy passes"
    load = "" if math.isnan(m.load) else f", load {m.load:.1f}"
    if choice.busy(m.load):
        load += ": machine busy, not trusted — measured again at the next run"
    return f"  {m.shape}", f"{times} → {m.gemm}{passes} ({m.when or 'now'}{load})"


def report(pref: Preference, measure: bool = False) -> list[tuple[str, str]]:
    """Rows describing the machine and the kernels' GEMM choice (see the module docstring)."""
    d: dict[str, Any] = machine.describe()
    threads = ", ".join(f"{v}={os.environ[v]}" for v in _THREAD_VARS if v in os.environ)
    rows = [
        ("CPU", d["cpu"]),
        ("vector ISA", " ".join(d["isa"]) or "none of " + " ".join(machine.ISA_FLAGS)),
        ("cores", f"{d['cores']} usable (os.cpu_count {os.cpu_count()})"),
        ("threads", threads or "no OMP/OPENBLAS/MKL_NUM_THREADS set: one per core"),
        ("numpy", f"{d['numpy']}, BLAS {d['numpy_blas']}"),
        (
            "oneMKL",
            f"{d['mkl']}, {d['mkl_threads']} threads"
            if d["mkl"]
            else "not installed (optional: pip install rnn-dissect[mkl])",
        ),
        ("numba", _numba()),
        ("torch", _torch()),
    ]
    cache = pref.cache_dir or choice.default_cache_dir()
    gemm = pref.gemm
    how = {
        "auto": "auto: the faster library, measured once per CPU and shape",
        "mkl": "mkl (RNN_DISSECT_GEMM)",
        "numpy": "numpy (RNN_DISSECT_GEMM / RNN_DISSECT_MKL=0)",
    }[gemm]
    rows.append(("GEMM", how))
    rows.append(("elementwise", "numba" if pref.use_fused else "numpy"))
    if not blas.available():
        rows.append(("choices", "none needed: numpy is the only GEMM library here"))
        return rows
    fresh = (
        [choice.choose(sh, pref.use_fused, cache, remeasure=True) for sh in BENCH_SHAPES]
        if measure
        else []
    )
    unkept = [m for m in fresh if choice.busy(m.load)]
    if unkept:
        rows.append(
            (
                "measured now",
                f"load {unkept[0].load:.1f} on {machine.cores()} cores: busy, so these are "
                "not remembered (run `doctor --measure` again on a quiet machine)",
            )
        )
        rows += [choice_row(m) for m in unkept]
    found = choice.cached(cache)
    rows.append(
        ("choices", f"{len(found)} remembered for this machine in {cache / choice.CACHE_NAME}")
    )
    rows += [choice_row(m) for m in sorted(found, key=lambda m: m.shape)]
    if not found:
        rows.append(
            ("", "(measured at the first training run; `rnn-dissect doctor --measure` now)")
        )
    return rows
