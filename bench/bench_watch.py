"""watch's replay cost against the model's own forward + backward, in the same process.

    python bench/bench_watch.py            # B = 32, T = 100, H = 256, LSTM tagger, float32
    python bench/bench_watch.py --quick    # smaller, for a smoke run

The model: input features (I = 64) → nn.LSTM(64, H, batch_first) → Linear(H, 10) with a
cross-entropy at every step. Baseline: one torch forward + backward of the whole model
(minimum CPU time over repeats, after a warm-up). Watched: the same step under ``watch``
(hooks only), then ``w.dissection()`` three ways — the engine replay with grads, per-step
terms, carry and forward cache (``lag=False, jacobians=False``); plus the lag matrices; plus
the step-Jacobian spectra (everything, the default). Single-threaded BLAS on both sides
(torch.set_num_threads(1); OMP/OPENBLAS/MKL threads 1), so a shared machine's noise is
not mistaken for speed. The replay's grads are checked against ``.grad`` before timing.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402
from machine_header import print_header  # noqa: E402
from torch import nn  # noqa: E402

from rnn_dissect import watch  # noqa: E402


class Tagger(nn.Module):
    def __init__(self, inp: int, hidden: int, tags: int = 10) -> None:
        super().__init__()
        self.rnn = nn.LSTM(inp, hidden, batch_first=True)
        self.out = nn.Linear(hidden, tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0])  # (B, T, tags)


def cpu_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(min process CPU seconds, min wall seconds) over ``repeats`` runs."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    return best_cpu, best_wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B=8, T=30, H=64")
    args = ap.parse_args()
    B, T, H, n_in = (8, 30, 64, 16) if args.quick else (32, 100, 256, 64)
    torch.set_num_threads(1)
    print_header()
    print(
        f"LSTM tagger: B={B}, T={T}, H={H}, I={n_in}, float32; torch {torch.__version__}, 1 thread"
    )
    torch.manual_seed(0)
    model = Tagger(n_in, H)
    x, y = torch.randn(B, T, n_in), torch.randint(0, 10, (B, T))

    def step() -> None:
        model.zero_grad()
        nn.functional.cross_entropy(model(x).reshape(-1, 10), y.reshape(-1)).backward()

    step()  # warm-up
    base, base_wall = cpu_time(step, 5)
    print(
        f"baseline torch forward+backward: {base * 1e3:.1f} ms CPU ({base_wall * 1e3:.1f} ms wall)"
    )

    def watched() -> object:
        with watch(model.rnn, max_bytes=8 << 30) as w:
            step()
        return w

    hooks, _ = cpu_time(watched, 5)
    print(f"the same step under watch (hooks only): {hooks * 1e3:.1f} ms CPU = {hooks / base:.2f}×")
    w = watched()
    err = w.dissection(lag=False, jacobians=False).check(model.rnn)
    print(f"replay grads vs .grad: max relative difference {err:.1e} (float32 model)")
    variants = {
        "engine replay (grads, per-step terms, carry, cache)": dict(lag=False, jacobians=False),
        "+ lag matrices": dict(jacobians=False),
        "+ step-Jacobian spectra (the default: everything)": {},
    }
    for label, kw in variants.items():
        cpu, wall = cpu_time(lambda kw=kw: w.dissection(**kw), 1)
        print(f"{label}: {cpu:.2f} s CPU ({wall:.2f} s wall) = {cpu / base:.0f}× the baseline")


if __name__ == "__main__":
    main()
