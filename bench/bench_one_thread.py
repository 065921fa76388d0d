"""One training step on ONE thread, timed by CPU time: ours (each GEMM library) vs PyTorch.

    python bench/bench_one_thread.py                 # rnn lstm gru, H 512, seq 100, batch 64
    python bench/bench_one_thread.py --cells lstm --repeats 6

The shapes of ``bench_train_step.py --part 2`` (one layer, V 65, float32, clip 5 + Adam
included), but every library pinned to one thread and each step timed by
``time.thread_time()`` — the CPU time of the calling thread — best of ``--repeats``. Other
tenants of a shared machine do not inflate CPU time the way they inflate wall time, so these
ratios hold still under load; they say how fast each side is per core, not how well it uses
several cores (``bench_train_step.py`` measures that, on a quiet machine). PyTorch's CPU
autograd runs in the calling thread, so its backward is counted too.
"""

from __future__ import annotations

import argparse
import ctypes
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import time

import numpy as np
import torch
from machine_header import print_header

from rnn_dissect import optim
from rnn_dissect.nets.model import ModelConfig, init_params
from rnn_dissect.train.kernels import KERNELS, Backend, Workspace, blas, fused

V, H, B, T = 65, 512, 64, 100
TARGETS = {"rnn": 1.5, "lstm": 1.2, "gru": 1.3}


def cpu_best(step, repeats: int) -> float:
    step()  # warm-up: buffers, numba, thread pools
    best = np.inf
    for _ in range(repeats):
        t0 = time.thread_time()
        step()
        best = min(best, time.thread_time() - t0)
    return best


def ours(cell: str, gemm: str, x, y):
    params = init_params(
        ModelConfig(cell, tuple(map(chr, range(32, 32 + V))), H, 1),
        np.random.default_rng(0),
        np.float32,
    )
    ws, opt, bk = Workspace(), optim.Adam(params, lr=2e-3), Backend(gemm, fused.AVAILABLE)

    def step():
        _, grads, _ = KERNELS[cell].forward_backward(params, x, y, ws=ws, backend=bk)
        optim.clip_grad_norm(grads, 5.0)
        opt.step(params, grads)

    return step


def theirs(cell: str, x, y):
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        V, H, batch_first=True
    )
    head = torch.nn.Linear(H, V)
    ps = [*mod.parameters(), *head.parameters()]
    opt = torch.optim.Adam(ps, lr=2e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        out, _ = mod(torch.nn.functional.one_hot(tx, V).float())
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), ty.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ps, 5.0)
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args()
    print_header()
    torch.set_num_threads(1)
    gemms = ["numpy"] + (["mkl"] if blas.available() else [])
    if blas.available():
        blas._lib.MKL_Set_Num_Threads(ctypes.c_int(1))
    print(f"one thread each (OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, oneMKL 1, "
          f"torch {torch.__version__} 1); H {H}, seq {T}, batch {B}, V {V}; CPU ms per step, best of {args.repeats}")  # fmt: skip
    print(
        f"   {'cell':5s} {'torch':>7s} "
        + " ".join(f"{'ours ' + g:>11s} {'ratio':>6s}" for g in gemms)
        + "  target"
    )
    r = np.random.default_rng(1)
    x, y = r.integers(0, V, (B, T)), r.integers(0, V, (B, T))
    for cell in args.cells:
        t = cpu_best(theirs(cell, x, y), args.repeats)
        row = f"   {cell:5s} {1e3 * t:7.0f} "
        for g in gemms:
            o = cpu_best(ours(cell, g, x, y), args.repeats)
            row += f"{1e3 * o:11.0f} {t / o:5.2f}x "
        print(row + f" {TARGETS[cell]:.1f}x")


if __name__ == "__main__":
    main()
