"""What this machine offers the float32 kernels: CPU model, vector ISA, cores, BLAS libraries.

Plain data from ``/proc/cpuinfo`` (``platform`` elsewhere), numpy's build configuration and
oneMKL's own version call — no threadpoolctl. :func:`fingerprint` is the key under which the
measured GEMM choice (:mod:`~rnn_dissect.train.kernels.choice`) is remembered: the same CPU
model with the same library versions gets the same answer.

    >>> m = describe()
    >>> sorted(m)[:3]
    ['cores', 'cpu', 'isa']
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.train.kernels import blas, fused

__all__ = ["cpu_model", "describe", "fingerprint", "isa", "numpy_blas"]

# vector extensions that decide GEMM speed, as /proc/cpuinfo spells them
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve")


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's ``key: value`` lines of /proc/cpuinfo ({} elsewhere)."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if not line.strip():
            if out:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def cpu_model() -> str:
    """e.g. "AMD EPYC 9R14 96-Core Processor" (cpuinfo's model name, else ``platform``)."""
    info = _cpuinfo()
    name = info.get("model name") or info.get("Model") or platform.processor() or "unknown CPU"
    family = [info[k] for k in ("cpu family", "model", "stepping") if k in info]
    vendor = info.get("vendor_id", "")
    extra = f" ({vendor} family {'/'.join(family)})" if family else ""
    return name + extra


def isa() -> list[str]:
    """The vector extensions of :data:`ISA_FLAGS` that the CPU reports."""
    flags = set((_cpuinfo().get("flags") or _cpuinfo().get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in flags]


def numpy_blas() -> str:
    """numpy's BLAS as its build configuration names it, e.g. "scipy-openblas 0.3.27"."""
    try:
        cfg: Any = np.show_config(mode="dicts")
        dep = cfg["Build Dependencies"]["blas"]
        return f"{dep.get('name', '?')} {dep.get('version', '?')}"
    except Exception:  # older numpy: no dicts mode
        return "unknown (numpy " + np.__version__ + ")"


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def describe() -> dict[str, Any]:
    """Everything above, as plain data (for ``rnn-dissect doctor`` and benchmark headers)."""
    return {
        "cpu": cpu_model(),
        "isa": isa(),
        "cores": cores(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas(),
        "mkl": blas.version(),
        "mkl_threads": blas.max_threads(),
        "numba": fused.AVAILABLE,
    }


def fingerprint() -> dict[str, str]:
    """What a measured GEMM choice depends on: CPU model, core count, library versions."""
    d = describe()
    return {
        "cpu": d["cpu"],
        "cores": str(d["cores"]),
        "numpy": d["numpy"],
        "numpy_blas": d["numpy_blas"],
        "mkl": d["mkl"] or "none",
    }
