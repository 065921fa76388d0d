"""Whether the LSTM's per-step elementwise pass gains from the second core (issue 17).

    python bench/bench_pass_threads.py [--layer workqueue|omp] [--rounds 15]

The training kernels run each step's compiled pass (``fused.lstm_forward_step``) on one
thread, between two-thread BLAS calls. This times T = 100 forward steps (H 512, batch 64,
float32) with that pass as it is and with the same function compiled ``parallel=True``
(its batch loop is a ``prange``), alternating in rounds (paired ratios): the GEMM and pass
together, then the pass alone. numba's threading layer is chosen once per process (``--layer``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_header import print_header

from rnn_dissect.train.kernels import fused

H, B, T, V = 512, 64, 100, 65


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", choices=("workqueue", "omp"), default="workqueue")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    numba.config.THREADING_LAYER = args.layer
    print_header()
    # the training kernel's own pass, compiled again with its batch loop (a prange) parallel
    forward_par = numba.njit(parallel=True, fastmath=fused.FLAGS, error_model="numpy", nogil=True)(
        fused.lstm_forward_step.py_func
    )

    rng = np.random.default_rng(0)
    WT = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
    table = rng.standard_normal((V, 4 * H)).astype(np.float32)
    idx = rng.integers(0, V, (T, B))
    U = np.empty((T, B, 4 * H), np.float32)
    TC = np.empty((T, B, H), np.float32)
    Cs, Hs = np.zeros((T + 1, B, H), np.float32), np.zeros((T + 1, B, H), np.float32)
    a = np.empty((B, 4 * H), np.float32)

    def loop(step, gemm):
        def run():
            for t in range(T):
                if gemm:
                    np.matmul(Hs[t], WT, out=a)
                step(a, U[t], table, idx[t], Cs[t], TC[t], Cs[t + 1], Hs[t + 1])

        return run

    runs = [loop(fused.lstm_forward_step, True), loop(forward_par, True)]
    runs += [loop(fused.lstm_forward_step, False), loop(forward_par, False)]
    for r in runs:
        r()
    print(f"\nnumba threading layer: {numba.threading_layer()}; LSTM H {H}, batch {B}, {T} steps")
    ts = np.zeros((len(runs), args.rounds))
    for k in range(args.rounds):
        for i, r in enumerate(runs):
            t0 = time.perf_counter()
            r()
            ts[i, k] = time.perf_counter() - t0
    ms = 1e3 * np.median(ts, axis=1)
    print(
        f"GEMM + pass: one thread {ms[0]:.1f} ms, prange {ms[1]:.1f} ms, ratio "
        f"{np.median(ts[0] / ts[1]):.3f};  pass alone: {ms[2]:.1f} vs {ms[3]:.1f} ms, ratio "
        f"{np.median(ts[2] / ts[3]):.3f}   (> 1: the second core helps)"
    )


if __name__ == "__main__":
    main()
