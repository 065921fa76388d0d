"""float32 GEMMs of the training kernels through Intel oneMKL, when it is installed.

numpy's OpenBLAS repacks both operands on every call. For a recurrence that costs: the
per-step product ``h_{t-1} @ W_hhᵀ`` is a (64, 512) @ (512, G·512) GEMM repeated T times
against the SAME weight, and at that size the packing of the weight is a good share of
the call. oneMKL's packed GEMM (``cblas_sgemm_pack`` once per training step, then
``cblas_sgemm_compute`` per time step) packs the weight once — what PyTorch's oneDNN RNN
does. Whether that wins depends on the CPU: on the 2-core Intel Xeon (AVX-512) of the
2026-12-01 session oneMKL was 1.3–1.5× faster than ``np.matmul`` per call at the per-step
shapes and 1.1–1.4× at the rest; on the 2-core AMD EPYC (Zen 4) of 2026-12-07 it was no
faster for the RNN step and slower for the LSTM and GRU steps
(``bench/bench_train_step.py --part 2 --gemm both``). Hence the measured choice
(:mod:`~rnn_dissect.train.kernels.choice`).

Optional: ``pip install rnn-dissect[mkl]`` (the ``mkl`` and ``intel-openmp`` wheels).
Whether the kernels use it is the caller's choice
(:class:`~rnn_dissect.train.kernels.backend.Backend`); this module only runs it. Operands it
cannot pass to ``sgemm`` (float64 — dissection and the exactness tests —, or no BLAS layout)
go to ``np.matmul``. The numbers are a GEMM's: float32 rounding may differ from
OpenBLAS's in the last bits; the training tests compare both against torch in float64.
MKL's results do not depend on the arrays' alignment (tested), so runs stay deterministic.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Fixed", "available", "fixed", "matmul", "max_threads", "version"]

Array = np.ndarray

_ROW_MAJOR, _NO_TRANS, _TRANS, _PACKED, _B_MATRIX = 101, 111, 112, 151, 162
_F32 = np.dtype(np.float32)
_lib: Any = None  # None: not tried yet; False: unavailable (loaded once, then read-only)


def _find(dist: str, stem: str) -> str | None:
    """Path of the installed file of package ``dist`` whose name starts with ``stem``."""
    from importlib import metadata

    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith(stem) and ".so" in f.name:
            path = str(f.locate())
            if os.path.exists(path):
                return path
    return None


def _load() -> Any:
    """oneMKL's runtime library with the functions used here typed, or False."""
    rt, omp = _find("mkl", "libmkl_rt.so"), _find("intel-openmp", "libiomp5.so")
    if rt is None or omp is None:
        return False
    try:
        lib = ctypes.CDLL(rt, mode=ctypes.RTLD_LOCAL)
        # GNU OpenMP threading layer: MKL's threads come from whichever GOMP_* / omp_* the
        # process already resolves globally (torch's libgomp, if torch came first), else
        # from Intel's libiomp5, which provides that interface too. With MKL's Intel layer
        # and torch's libgomp loaded first, omp_get_thread_num would come from one runtime
        # and the threads from the other: every thread computes the same block (tested).
        if not hasattr(ctypes.CDLL(None), "GOMP_parallel"):
            ctypes.CDLL(omp, mode=ctypes.RTLD_GLOBAL)
        lib.MKL_Set_Interface_Layer(ctypes.c_int(0))  # LP64: 32-bit integers
        lib.MKL_Set_Threading_Layer(ctypes.c_int(3))  # GNU OpenMP, one thread per core
    except (OSError, AttributeError):  # pragma: no cover - depends on the install
        return False
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    lib.cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    lib.cblas_sgemm.restype = None
    lib.cblas_sgemm_pack_get_size.argtypes = [i, i, i, i]
    lib.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
    lib.cblas_sgemm_pack.argtypes = [i, i, i, i, i, i, f, p, i, p]
    lib.cblas_sgemm_pack.restype = None
    lib.cblas_sgemm_compute.argtypes = [i, i, i, i, i, i, p, i, p, i, f, p, i]
    lib.cblas_sgemm_compute.restype = None
    return lib


def available() -> bool:
    """Whether oneMKL is installed and loads (loads it on the first call)."""
    global _lib
    if _lib is None:
        _lib = _load()
    return bool(_lib)


def version() -> str | None:
    """oneMKL's version string (e.g. "Intel(R) oneAPI Math Kernel Library Version 2025.0 …"),
    None when it is not installed."""
    if not available():
        return None
    buf = ctypes.create_string_buffer(256)
    _lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
    return buf.value.decode("ascii", "replace").strip()


def max_threads() -> int | None:
    """The threads oneMKL's GEMMs use, None when it is not installed."""
    return int(_lib.MKL_Get_Max_Threads()) if available() else None


def _mkl_f32(*arrays: Array) -> bool:
    """Whether oneMKL loads and every array is float32."""
    return available() and all(x.dtype == _F32 for x in arrays)


def _operand(x: Array) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a 2-D float32 operand as BLAS sees it in
    row-major order: rows contiguous (a slice of a C array), or columns contiguous (the
    transpose of one). None when neither (numpy then copies or loops)."""
    r, c = x.shape
    s0, s1 = x.strides
    if s1 == 4 and s0 >= 4 * max(c, 1) and s0 % 4 == 0:
        return _NO_TRANS, s0 // 4
    if s0 == 4 and s1 >= 4 * max(r, 1) and s1 % 4 == 0:
        return _TRANS, s1 // 4
    return None


def matmul(a: Array, b: Array, out: Array | None = None) -> Array:
    """``np.matmul(a, b, out=out)`` for 2-D operands, by oneMKL's ``sgemm`` when all three are
    float32 with BLAS layouts (else by ``np.matmul``)."""
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    if not _mkl_f32(a, b, out) or 0 in a.shape + b.shape:
        return np.matmul(a, b, out=out)
    oa, ob, oc = _operand(a), _operand(b), _operand(out)
    if oa is None or ob is None or oc is None or oc[0] != _NO_TRANS:
        return np.matmul(a, b, out=out)
    (m, k), n = a.shape, b.shape[1]
    _lib.cblas_sgemm(
        _ROW_MAJOR, oa[0], ob[0], m, n, k, 1.0, a.ctypes.data, oa[1], b.ctypes.data, ob[1],
        0.0, out.ctypes.data, oc[1],
    )  # fmt: skip
    return out


class Fixed:
    """``a @ b`` for one ``b`` used many times (a layer's recurrent weight over the T steps
    of a training step): oneMKL packs ``b`` once per row count of ``a`` and reuses it.
    ``b`` must not change while this object is in use (it is built per training step).
    The packed copy goes in ``buffer(size)`` (a workspace's, so no fresh pages per step)."""

    def __init__(self, b: Array, buffer: Callable[[int], Array] | None = None) -> None:
        self.b = b
        self._buffer = buffer or (lambda size: np.empty(size, dtype=_F32))
        self._packed: dict[int, Array] = {}

    def _pack(self, m: int) -> Array:
        k, n = self.b.shape
        ob = _operand(self.b)
        assert ob is not None
        size = _lib.cblas_sgemm_pack_get_size(_B_MATRIX, m, n, k)
        buf = self._buffer(size // 4 + 1)
        _lib.cblas_sgemm_pack(
            _ROW_MAJOR, _B_MATRIX, ob[0], m, n, k, 1.0, self.b.ctypes.data, ob[1], buf.ctypes.data
        )
        self._packed[m] = buf
        return buf

    def __call__(self, a: Array, out: Array) -> Array:
        """``np.matmul(a, self.b, out=out)``: a (m, k) with contiguous rows, out (m, n)."""
        oa, oc = _operand(a), _operand(out)
        if oa is None or oc is None or oa[0] != _NO_TRANS or oc[0] != _NO_TRANS:
            return matmul(a, self.b, out)
        (m, k), n = a.shape, self.b.shape[1]
        buf = self._packed.get(m)
        if buf is None:
            buf = self._pack(m)
        _lib.cblas_sgemm_compute(
            _ROW_MAJOR, _NO_TRANS, _PACKED, m, n, k, a.ctypes.data, oa[1], buf.ctypes.data, 0,
            0.0, out.ctypes.data, oc[1],
        )  # fmt: skip
        return out


def fixed(b: Array, ws: Any = None, tag: str = "") -> Callable[[Array, Array], Array]:
    """A function ``(a, out) -> a @ b`` for a ``b`` reused across the steps of a loop:
    :class:`Fixed` when oneMKL loads, ``b`` is float32 and has a BLAS layout, else
    ``np.matmul``. Decide once per loop, in the thread that runs it. With a
    :class:`~rnn_dissect.train.kernels.workspace.Workspace` ``ws``, the packed copy lives in its
    buffer ``"pack" + tag``."""
    if b.ndim == 2 and _mkl_f32(b) and _operand(b) is not None and 0 not in b.shape:
        if ws is None:
            return Fixed(b)
        return Fixed(b, lambda size: ws.get("pack" + tag, (size,), _F32))

    def plain(a: Array, out: Array) -> Array:
        return np.matmul(a, b, out=out)

    return plain
