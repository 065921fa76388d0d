"""Activation collection: speed (characters per second) and peak memory, streaming to disk.

    python bench/bench_collect.py                      # 1 M chars, LSTM 512 × 2 (25 GB of .npy)
    python bench/bench_collect.py --chars 100000        # a smaller run; figures scale linearly

A 2-layer LSTM with random weights (PyTorch's init, float32) reads the first ``--chars``
characters of the default corpus; :func:`rnn_dissect.neurons.collect.collect` records all 12 arrays
(h c i f g o per layer, float32) and streams them to ``--dir`` (removed afterwards unless
``--keep``). In this process, in order:

1. ``collect(..., out_dir=...)``: the command's path; its peak RSS (ru_maxrss, read right
   after — the process's peak so far) is the figure that must stay under 1 GB;
2. baseline: the same lock-step forward pass (``Forward.run``, same segments and chunk
   size) recording nothing and writing nothing — the arithmetic any collector pays;
3. the forward pass over the text as one sequence (B = 1), on a 1/20 slice: what the
   segments buy.

Times are wall and CPU seconds; on a busy machine compare CPU. Written pages sit in the
OS page cache, not in the process, so RSS does not grow with the text.
"""

from __future__ import annotations

import os

# One BLAS thread: 2 shared cores here; threads would only compete with each other.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from machine_header import print_header

from rnn_dissect.nets.forward import Forward
from rnn_dissect.nets.model import CharModel, ModelConfig, init_params
from rnn_dissect.neurons.collect import collect
from rnn_dissect.train.data import load_corpus


def corpus_text(n: int) -> str:
    c = load_corpus()
    if len(c) < n:
        sys.exit(f"the default corpus has {len(c):,} characters, fewer than --chars {n:,}")
    return "".join(np.array(c.vocab)[np.asarray(c.data[:n], dtype=np.int64)].tolist())


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn):  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def forward_only(model: CharModel, idx: np.ndarray, B: int, warmup: int, chunk_bytes: int) -> None:
    """collect's segments and chunks, without recording or writing (see the docstring)."""
    fwd = Forward.of(model)
    N, H = len(idx), fwd.hidden_size
    seg = -(-N // B)
    T = seg + warmup
    steps = np.zeros((T, B), dtype=np.int64)  # (T, B)
    for b in range(B):
        r = max(0, b * seg - warmup)
        part = idx[r : (b + 1) * seg]
        steps[: len(part), b] = part
    C = max(1, min(T, chunk_bytes // (B * H * 4 * 12)))
    state = fwd.zero_state(B)
    for t0 in range(0, T, C):
        _, state = fwd.run(steps[t0 : t0 + C], state)


def main() -> None:
    print_header()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/rnn-dissect-bench-collect"))
    ap.add_argument("--keep", action="store_true", help="keep the written activations")
    args = ap.parse_args()

    text = corpus_text(args.chars)
    vocab = tuple(sorted(set(text)))
    cfg = ModelConfig("lstm", vocab, args.hidden, args.layers)
    model = CharModel(cfg, init_params(cfg, np.random.default_rng(0), np.float32))
    arrays = 6 * args.layers
    gb = args.chars * arrays * args.hidden * 4 / 1e9
    print(f"LSTM H={args.hidden} L={args.layers}, {args.chars:,} characters, {arrays} arrays: "
          f"{gb:.2f} GB of float32 to {args.dir}")  # fmt: skip
    rss0 = rss_mib()
    shutil.rmtree(args.dir, ignore_errors=True)
    acts, wall, cpu = timed(lambda: collect(model, text, warmup=args.warmup, out_dir=args.dir))
    rss = rss_mib()
    assert acts.n_chars == args.chars and np.isfinite(acts.rows((0, "h"), 0, 100)).all()
    B = min(64, args.chars // (4 * args.warmup))
    idx = model.encode(text)
    _, b_wall, b_cpu = timed(lambda: forward_only(model, idx, B, args.warmup, 64 << 20))
    n1 = max(1000, args.chars // 20)
    _, s_wall, s_cpu = timed(lambda: forward_only(model, idx[:n1], 1, 0, 64 << 20))
    s_cpu_scaled, s_wall_scaled = s_cpu * args.chars / n1, s_wall * args.chars / n1
    del acts
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)

    print(f"{'phase':44s} {'wall s':>8s} {'CPU s':>8s} {'chars/s (CPU)':>14s} {'× baseline':>11s}")
    rows = [
        (f"collect, streaming to disk (B={B})", wall, cpu),
        ("baseline: forward only, same segments", b_wall, b_cpu),
        ("forward only, B=1 (a 1/20 slice, ×20)", s_wall_scaled, s_cpu_scaled),
    ]  # fmt: skip
    for label, w, c in rows:
        print(f"{label:44s} {w:8.1f} {c:8.1f} {args.chars / c:14,.0f} {c / b_cpu:11.2f}")
    print(f"collect: {args.chars / wall:,.0f} chars/s wall, {gb / wall:.2f} GB/s written")
    print(f"peak RSS: {rss:.0f} MiB (before collecting: {rss0:.0f} MiB) — "
          f"{'under' if rss < 1024 else 'OVER'} 1 GiB")  # fmt: skip
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.chars < 1_000_000:
        f = 1_000_000 / args.chars
        print(f"extrapolated to 1,000,000 characters (linear, not measured): collect "
              f"≈ {wall * f / 60:.1f} min wall, {gb * f:.1f} GB on disk; RSS does not grow "
              f"with the text (chunks of at most 64 MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
