"""How the float32 training kernels compute: one small value, chosen once, passed explicitly.

    Backend(gemm="mkl" | "numpy", fused=True | False)

- ``gemm``: which library runs the float32 products — Intel oneMKL through
  :mod:`~rnn_dissect.train.kernels.blas` (the recurrent weight packed once per training step),
  or ``np.matmul`` (numpy's own BLAS, OpenBLAS in the wheels).
- ``fused``: each step's elementwise passes compiled with numba
  (:mod:`~rnn_dissect.train.kernels.fused`), or plain numpy ufuncs.

Both act on float32 only: float64 (dissection, the exactness tests) always runs plain numpy,
whatever the backend says. The default ``Backend()`` is that plain-numpy reference. Building a
backend that asks for something not installed raises ``ValueError``. A training run gets its
backend from a :class:`~rnn_dissect.train.kernels.choice.Preference` (the command line reads
it from the environment, once), which measures which GEMM library is faster on this CPU;
nothing in the kernels reads the environment or keeps a switch of its own.

    >>> import numpy as np
    >>> Backend().matmul(np.eye(2, dtype=np.float32), np.ones((2, 1), np.float32)).ravel()
    array([1., 1.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_dissect.train.kernels import blas, fused

__all__ = ["GEMMS", "REFERENCE", "Backend"]

Array = np.ndarray
GEMMS = ("mkl", "numpy")
_F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class Backend:
    gemm: str = "numpy"  # "mkl" (oneMKL, kernels/blas.py) | "numpy" (np.matmul)
    fused: bool = False  # numba-compiled per-step passes (kernels/fused.py)

    def __post_init__(self) -> None:
        if self.gemm not in GEMMS:
            raise ValueError(f"gemm must be one of {GEMMS}, got {self.gemm!r}")
        if self.gemm == "mkl" and not blas.available():
            raise ValueError("gemm='mkl' needs oneMKL: pip install rnn-dissect[mkl]")
        if self.fused and not fused.AVAILABLE:
            raise ValueError("fused=True needs numba, which does not import here")

    def passes(self, dtype: Any) -> bool:
        """Whether the compiled elementwise passes run for arrays of ``dtype``."""
        return self.fused and np.dtype(dtype) == _F32

    def mkl(self, dtype: Any) -> bool:
        """Whether products of ``dtype`` arrays go to oneMKL."""
        return self.gemm == "mkl" and np.dtype(dtype) == _F32

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """``np.matmul(a, b, out=out)`` for 2-D operands, by this backend's GEMM library."""
        if self.mkl(a.dtype):
            return blas.matmul(a, b, out)
        return np.matmul(a, b, out=out)

    def fixed(self, b: Array, ws: Any = None, tag: str = "") -> Callable[[Array, Array], Array]:
        """``(a, out) -> a @ b`` for a ``b`` reused over the T steps of a recurrence: oneMKL's
        packed GEMM (:func:`blas.fixed`) or ``np.matmul``."""
        if self.mkl(b.dtype):
            return blas.fixed(b, ws, tag)

        def plain(a: Array, out: Array) -> Array:
            return np.matmul(a, b, out=out)

        return plain

    def describe(self) -> str:
        """One line for logs and benchmark headers."""
        gemm = "oneMKL (packed weights)" if self.gemm == "mkl" else "numpy matmul"
        return f"GEMM {gemm}, elementwise {'numba-compiled' if self.fused else 'numpy'}"


REFERENCE = Backend()  # plain numpy: what every kernel runs when no backend is given
