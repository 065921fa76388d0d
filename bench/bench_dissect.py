"""Dissection cost against one plain numpy forward + backward of the same vanilla RNN.

    python bench/bench_dissect.py            # T = 1000, H = 256, V = 65, B = 1
    python bench/bench_dissect.py --quick    # smaller, for a smoke run

Both sides run in this process on the same weights and characters, single-threaded BLAS
(threads set before numpy loads: on a shared 2-core machine a multi-threaded matvec is
noise, not speed). Time is the minimum over repeats of process CPU time (wall time is
printed too), the plain and the dissection runs alternating so both see the same load. The plain baseline is min-char-rnn's loop written out by hand; its loss
and gradients are checked against the dissection's before anything is timed.

Printed: the time ratio (target ≤ 3× for the dissection without the optional O(T²) lag
matrix and per-step SVDs, which are timed separately), and the peak traced memory
(tracemalloc) at several T, per step, to show it grows linearly.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from machine_header import print_header  # noqa: E402

from rnn_dissect.bptt.dissection import dissect  # noqa: E402
from rnn_dissect.nets.model import CharModel, ModelConfig  # noqa: E402


def plain_forward_backward(P: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    """min-char-rnn: forward over T characters keeping xs, hs, ps; backward T..1.

    Loss is the mean cross-entropy over the T predictions (so gradients carry 1/T)."""
    W_ih, W_hh = P["rnn.weight_ih_l0"], P["rnn.weight_hh_l0"]
    b = P["rnn.bias_ih_l0"] + P["rnn.bias_hh_l0"]
    W_hy, b_y = P["head.weight"], P["head.bias"]
    H, T = W_hh.shape[0], len(x)
    hs, ps, loss = {-1: np.zeros(H)}, {}, 0.0
    for t in range(T):
        hs[t] = np.tanh(W_ih[:, x[t]] + W_hh @ hs[t - 1] + b)  # (H,)
        z = W_hy @ hs[t] + b_y  # (V,)
        e = np.exp(z - z.max())
        ps[t] = e / e.sum()
        loss -= np.log(ps[t][y[t]])
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(H)
    dW_hy, db_y, dh_next = np.zeros_like(W_hy), np.zeros_like(b_y), np.zeros(H)
    for t in reversed(range(T)):
        dz = ps[t].copy()
        dz[y[t]] -= 1.0
        dz /= T
        dW_hy += np.outer(dz, hs[t])
        db_y += dz
        dh = W_hy.T @ dz + dh_next
        dh_raw = (1.0 - hs[t] ** 2) * dh
        db += dh_raw
        dW_ih[:, x[t]] += dh_raw
        dW_hh += np.outer(dh_raw, hs[t - 1])
        dh_next = W_hh.T @ dh_raw
    grads = {
        "rnn.weight_ih_l0": dW_ih,
        "rnn.weight_hh_l0": dW_hh,
        "rnn.bias_ih_l0": db,
        "head.weight": dW_hy,
        "head.bias": db_y,
    }
    return loss / T, grads


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(min CPU seconds, min wall seconds) over ``repeats`` calls."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak


def main() -> None:
    print_header()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="T=200, H=64, 2 repeats")
    a = ap.parse_args()
    if a.quick:
        a.steps, a.hidden, a.repeats = 200, 64, 2
    T, H, V = a.steps, a.hidden, a.vocab
    cfg = ModelConfig("rnn", tuple(chr(33 + i) for i in range(V)), H)
    model = CharModel.init(cfg, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, V, T), rng.integers(0, V, T)
    core = dict(step_grads=False, lag=False, jacobians=False)

    loss, g = plain_forward_backward(model.params, x, y)
    d = dissect(model, x, y, **core)
    err = max(float(np.abs(g[k] - d.grads[k]).max()) for k in g)
    print(
        f"T={T} H={H} V={V} B=1 float64, 1 BLAS thread; |Δloss|={abs(loss - d.loss):.1e}, "
        f"max |Δgrad|={err:.1e} (plain vs dissection)"
    )

    # plain and dissection alternate, so both see the same machine load; minimum of each
    plain_cpu = plain_wall = core_cpu = core_wall = float("inf")
    for _ in range(a.repeats):
        c, w = best_time(lambda: plain_forward_backward(model.params, x, y), 1)
        plain_cpu, plain_wall = min(plain_cpu, c), min(plain_wall, w)
        c, w = best_time(lambda: dissect(model, x, y, **core), 1)
        core_cpu, core_wall = min(core_cpu, c), min(core_wall, w)
    row = "{:<50} {:7.3f} s CPU {:7.3f} s wall {:6.2f}×{}"
    print(row.format("plain numpy forward+backward", plain_cpu, plain_wall, 1.0, ""))
    label = "dissection (grads, per-step norms, Q3/Q4, frames)"
    print(row.format(label, core_cpu, core_wall, core_cpu / plain_cpu, "  (target ≤ 3×)"))
    extras = [
        ("  + keep every per-step gradient term", {**core, "step_grads": True}),
        ("  + step Jacobian SVDs", {**core, "jacobians": True}),
        ("  + lag matrix, max_lag=100", {**core, "lag": True, "max_lag": 100}),
    ]
    for label, kw in extras:
        cpu, wall = best_time(lambda kw=kw: dissect(model, x, y, **kw), 1)
        print(row.format(label, cpu, wall, cpu / plain_cpu, ""))

    print("\npeak traced memory (tracemalloc), dissection as above vs plain:")
    print(
        f"{'T':>6} {'dissection':>12} {'per step':>10} {'plain':>12} {'per step':>10} {'cache (formula)':>16}"
    )
    for t in (T // 8, T // 4, T // 2, T):
        xs, ys = x[:t], y[:t]
        dis = peak_bytes(lambda xs=xs, ys=ys: dissect(model, xs, ys, **core))
        pl = peak_bytes(lambda xs=xs, ys=ys: plain_forward_backward(model.params, xs, ys))
        mem = dissect(model, xs, ys, **core).memory
        print(
            f"{t:>6} {dis / 2**20:10.2f}MB {dis / t / 1024:8.1f}KB {pl / 2**20:10.2f}MB "
            f"{pl / t / 1024:8.1f}KB {mem.measured_bytes:>9} = {mem.formula_bytes}"
        )


if __name__ == "__main__":
    main()
