"""Neuron scoring on long texts: speed and peak memory over memory-mapped activations.

    python bench/bench_neurons.py                       # 1 M chars × 512 units × 2 layers (h)
    python bench/bench_neurons.py --chars 200000 --kinds h c

Writes random float32 activations for the first N characters of the default corpus to
``--dir`` (once; reused while the shape matches), then times, in this process:

- baseline: one streaming pass that only sums every array (the floor any scorer pays);
- the 12 built-in features over the text;
- ``score_units`` (pass 1: correlation sums; pass 2: AUC histograms);
- ``top_contexts`` of 8 units.

Times are wall-clock and CPU (process) seconds; on a busy machine the CPU figure is the
one to compare. Memory: the tracemalloc peak of each phase (numpy reports its buffers to tracemalloc) and
the process's peak RSS (ru_maxrss), which must stay under 1 GB. Rows are read with plain
file reads, so the file's pages sit in the OS page cache, not in this process. The file is
in the page cache after writing it (this machine has RAM to spare), so the figures are
compute, not disk, speed.
"""

from __future__ import annotations

import os

# One BLAS thread: the scorer's GEMMs are (F × C)·(C × H) with F ≈ 12, too thin to gain from
# threads, and on a shared 2-core machine OpenBLAS's spinning threads made them 50× slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from machine_header import print_header

from rnn_dissect.neurons.activations import Activations, ActivationsWriter, UnitRef, load
from rnn_dissect.neurons.extremes import top_contexts
from rnn_dissect.neurons.features import builtin_features
from rnn_dissect.neurons.ranking import block_rows, score_units
from rnn_dissect.train.data import load_corpus


def corpus_text(n: int) -> str:
    c = load_corpus()
    if len(c) < n:
        sys.exit(f"the default corpus has {len(c)} characters, fewer than --chars {n}")
    vocab = np.array(c.vocab)
    return "".join(vocab[np.asarray(c.data[:n])].tolist())


def prepare(d: Path, n: int, hidden: int, layers: int, kinds: list[str]) -> Activations:
    spec = {(k, kind): (hidden, np.float32) for k in range(layers) for kind in kinds}
    meta = d / "activations.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        have = {(a["layer"], a["kind"]): a["hidden_size"] for a in m["arrays"]}
        if m["n_chars"] == n and have == {key: hidden for key in spec}:
            print(f"reusing {d}")
            return load(d)
    text = corpus_text(n)
    t0 = time.perf_counter()
    w = ActivationsWriter(d, "lstm", tuple(sorted(set(text))), text, spec)
    rng = np.random.default_rng(0)
    for key in spec:
        for s in range(0, n, 65536):
            rows = rng.random((min(65536, n - s), hidden), dtype=np.float32) * 2 - 1
            w.append(key, rows)
    acts = w.close()
    gb = n * hidden * 4 * len(spec) / 1e9
    print(f"wrote {gb:.2f} GB of activations to {d} in {time.perf_counter() - t0:.1f} s")
    return acts


def timed(label: str, fn, rows: list) -> object:
    tracemalloc.reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    rows.append((label, dt, cpu, peak))
    return out


def main() -> None:
    print_header()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--kinds", nargs="+", default=["h"])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/rnn-dissect-bench-neurons"))
    args = ap.parse_args()

    acts = prepare(args.dir, args.chars, args.hidden, args.layers, args.kinds)
    keys = acts.ordered_keys()
    tracemalloc.start()
    rows: list = []

    def baseline() -> float:
        total = 0.0
        for key in keys:
            for _, blk in acts.chunks(key, block_rows(args.hidden)):
                total += float(blk.sum(dtype=np.float64))
        return total

    timed("baseline: one read pass (sum)", baseline, rows)
    feats = timed("built-in features (12)", lambda: builtin_features(acts.text), rows)
    scores = timed("score_units (r + AUC hist)", lambda: score_units(acts, feats), rows)
    units = [UnitRef(k, "h", u) for k in range(args.layers) for u in (0, 1, 2, 3)]
    timed("top_contexts, 8 units", lambda: top_contexts(acts, units, k=5, window=20), rows)
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux

    n_units = acts.unit_count()
    print(f"\n{args.chars:,} chars × {n_units} units ({len(keys)} arrays × {args.hidden}), "
          f"float32 on disk; AUC {scores.auc_method}, max |score error| {scores.score_error:.2e}")  # fmt: skip
    base = rows[0][2]
    print(
        f"{'phase':32s} {'wall s':>7s} {'CPU s':>7s} {'CPU × baseline':>15s} {'peak traced MiB':>16s}"
    )
    for label, dt, cpu, peak in rows:
        print(f"{label:32s} {dt:7.2f} {cpu:7.2f} {cpu / base:15.1f} {peak:16.1f}")
    rate = args.chars * n_units / rows[2][2] / 1e6
    print(f"scoring rate: {rate:.0f} M unit-characters per CPU second")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"peak RSS of the process: {rss:.0f} MiB  ({'under' if rss < 1024 else 'OVER'} 1 GiB)")
    best = scores.ranking("letter", top=1)[0]
    print(f"sanity (random data): best |score| for letter = {abs(best['score']):.4f}")


if __name__ == "__main__":
    main()
