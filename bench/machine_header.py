"""The header every benchmark prints first: CPU model, cores, vector ISA, BLAS libraries, load.

    from machine_header import print_header   # bench/ is the script's directory, so on sys.path
    print_header()

Figures are only comparable on the same CPU with the same libraries, and the machine may be
shared: the header says which CPU, which BLAS (numpy's, oneMKL's if installed) and how busy.
The facts come from :mod:`rnn_dissect.train.kernels.machine` (the same as ``rnn-dissect doctor``).
"""

from __future__ import annotations

import os

from rnn_dissect.train.kernels import machine


def header_lines() -> list[str]:
    d = machine.describe()
    mkl = d["mkl"] or "not installed"
    if d["mkl"]:
        mkl = mkl.split(" Product")[0].split("-Product")[0] + f", {d['mkl_threads']} threads"
    threads = [
        f"{v}={os.environ[v]}"
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        if v in os.environ
    ]
    return [
        f"CPU: {d['cpu']}; {d['cores']} cores; ISA {' '.join(d['isa']) or '-'}",
        f"BLAS: numpy {d['numpy']} with {d['numpy_blas']}; oneMKL: {mkl}"
        + (f"; {' '.join(threads)}" if threads else ""),
        f"load average: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores",
    ]


def print_header() -> None:
    for line in header_lines():
        print(line)
