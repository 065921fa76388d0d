"""Exact activation collection vs the approximate one (issue 13): what the verification costs.

    python bench/bench_collect_exact.py                          # train LSTM 512×2 for 3 min, 1 M chars
    python bench/bench_collect_exact.py --checkpoint runs/x      # a trained model of yours
    python bench/bench_collect_exact.py --chars 200000 --train-minutes 1   # quicker

In this process, in order, on the first ``--chars`` characters of Tiny Shakespeare
(``../shared/data``; the stdlib source if absent):

1. a trained model: ``--checkpoint`` (a run directory or ``.safetensors``), else
   ``rnn-dissect train`` of an LSTM ``--hidden`` × ``--layers`` for ``--train-minutes`` on the
   text *before* the measured slice (a model that learned to forget, as trained ones do);
2. ``collect(..., exact=False)``: the approximate collection (the old default) — baseline;
3. ``collect(..., exact=True)``: the default — the same speculative pass, then verified and
   repaired to equal one sequential pass; the ratio 3 / 2 is the figure (target ≤ 1.3×);
4. the worst case: a unit with perfect memory (``tests/planted.py``'s bracket counter, f = 1)
   over ``--worst-chars`` characters, exact, against torch's single float64 pass — it must
   finish and agree.

Both collections stream their float32 arrays to ``--dir`` as ``neurons`` does (1 M chars of an
LSTM 512×2 is 24.6 GB: it would not fit in memory), removed after each; times are CPU seconds
(the process's own, robust to a busy machine) and wall seconds. The trained model is kept in
``--run-dir`` and reused by the next invocation.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 2 shared cores: threads only compete

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rnn_dissect.neurons.collect import collect
from rnn_dissect.weights import checkpoint

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def corpus(n: int) -> tuple[str, str]:
    """(text to train on, text to collect over): the last n characters are measured."""
    if SHAKESPEARE.exists():
        text = SHAKESPEARE.read_text(encoding="utf-8")
    else:
        from rnn_dissect.train.data import default_corpus_files

        text = "".join(
            p.read_text(encoding="utf-8", errors="replace") for p in default_corpus_files()
        )
    while len(text) < 2 * n:
        text += text
    return text[:-n], text[-n:]


def timed(fn):  # type: ignore[no-untyped-def]
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def trained_model(args: argparse.Namespace, train_text: str, tmp: Path):  # type: ignore[no-untyped-def]
    if args.checkpoint:
        path = Path(args.checkpoint)
        best = path / "best.safetensors"
        return checkpoint.load(best if best.exists() else path)
    run = Path(args.run_dir)
    if (run / "model.safetensors").exists():
        print(f"reusing the model trained in {run}")
        best = run / "best.safetensors"
        return checkpoint.load(best if best.exists() else run)
    corpus_file = tmp / "train.txt"
    corpus_file.write_text(train_text[-2_000_000:], encoding="utf-8")
    cmd = [sys.executable, "-m", "rnn_dissect", "train", str(corpus_file), "--out", str(run),
           "--cell", "lstm", "--hidden", str(args.hidden), "--layers", str(args.layers),
           "--minutes", str(args.train_minutes), "--quiet"]  # fmt: skip
    print(f"training: {' '.join(cmd[3:])}", flush=True)
    subprocess.run(cmd, check=True)
    best = run / "best.safetensors"
    return checkpoint.load(best if best.exists() else run)


def worst_case(n_chars: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import planted  # tests/planted.py: needs torch
    import torch

    from rnn_dissect.weights.interop import from_torch

    text = planted.python_like_text(np.random.default_rng(0), n_lines=n_chars // 15)
    vocab = tuple(sorted(set(text)))
    head = torch.nn.Linear(planted.H, len(vocab), dtype=torch.float64)
    model = from_torch(planted.planted_lstm(vocab), head, vocab)
    ref, _, _ = timed(lambda: planted.run(text))
    acts, cpu, wall = timed(lambda: collect(model, text, dtype=np.float64))
    err = max(float(np.abs(acts.arrays[k] - ref.arrays[k]).max()) for k in ref.ordered_keys())
    info = acts.collection
    print(
        f"worst case (perfect-memory unit, {len(text):,} chars, float64): exact collection "
        f"{cpu:.1f} s CPU ({wall:.1f} s wall), {info['segments']} segments, {info['passes']} "
        f"passes, {info['rerun_chars']:,} chars re-read; max |Δ| vs torch's one pass {err:.1e}"
    )
    assert err < 1e-9, "the worst case is not exact"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--checkpoint", help="a run directory or .safetensors (default: train one)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--train-minutes", type=float, default=3.0)
    ap.add_argument("--run-dir", default="/tmp/rnn-dissect-bench-collect-run")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/rnn-dissect-bench-collect-exact"))
    ap.add_argument("--worst-chars", type=int, default=100_000)
    args = ap.parse_args()

    import numpy

    print(f"CPU: {cpu_model()} · {os.cpu_count()} cores · numpy {numpy.__version__}")
    train_text, text = corpus(args.chars)
    with tempfile.TemporaryDirectory() as tmp:
        model = trained_model(args, train_text, Path(tmp))
    cfg = model.config
    text = "".join(ch for ch in text if ch in set(cfg.vocab))
    print(f"model: {cfg.cell} {cfg.hidden_size}×{cfg.num_layers}, {len(text):,} chars")

    collect(model, text[:20_000], exact=False)  # warm caches and allocator before timing
    _, cpu_a, wall_a = timed(lambda: collect(model, text, exact=False, out_dir=args.dir))
    shutil.rmtree(args.dir)
    exact, cpu_e, wall_e = timed(lambda: collect(model, text, out_dir=args.dir))
    info = exact.collection
    del exact
    shutil.rmtree(args.dir)
    print(f"approximate (baseline): {cpu_a:.1f} s CPU, {wall_a:.1f} s wall")
    print(
        f"exact (default): {cpu_e:.1f} s CPU, {wall_e:.1f} s wall — {info['segments']} segments, "
        f"{info['passes']} pass(es), {info['segments_rerun']} re-run, {info['rerun_chars']:,} chars re-read"
    )
    print(
        f"exact / approximate: {cpu_e / cpu_a:.2f}× CPU, {wall_e / wall_a:.2f}× wall (target ≤ 1.3×)"
    )
    worst_case(args.worst_chars)


if __name__ == "__main__":
    main()
