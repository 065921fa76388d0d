"""``rnn-dissect doctor``: the CPU, BLAS libraries, threads and the training kernels' GEMM choice.

    rnn-dissect doctor             # what is installed and what was chosen on this machine
    rnn-dissect doctor --measure   # time the benchmark shapes now (≈ 1 s per cell), remember

The logic is :mod:`rnn_dissect.train.doctor`; this prints its rows.
"""

from __future__ import annotations

import argparse

from rnn_dissect.train.doctor import report
from rnn_dissect.train.kernels import Preference

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="show the CPU, BLAS libraries, threads and the training kernels' GEMM choice",
        description="What this machine gives the float32 training kernels: CPU model, vector "
        "ISA, cores, numpy's BLAS, oneMKL, numba, torch, and which GEMM library training "
        "uses (RNN_DISSECT_GEMM=auto|mkl|numpy; auto measures once per CPU and shape).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  rnn-dissect doctor\n  rnn-dissect doctor --measure",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="time RNN/LSTM/GRU at H 512, batch 64 with each GEMM library now and remember it",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = report(Preference.from_env(), measure=args.measure)  # the environment, read once
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0
