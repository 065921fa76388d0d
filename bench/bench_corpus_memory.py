"""Training memory stays bounded as the corpus grows (issue #5: corpora of hundreds of MB).

    python bench/bench_corpus_memory.py              # 1 MB and 300 MB corpora (~3 min)
    python bench/bench_corpus_memory.py --mb 1 50    # other sizes

For each size, a UTF-8 text file of that many MB is written to a temporary directory
(Tiny Shakespeare from ``../shared/data`` repeated, or the built-in standard-library corpus
when that is absent), and ``rnn-dissect train FILE --steps 20`` runs on it in a child
process with a small model. Reported: the child's peak anonymous memory (its own arrays),
peak file-backed resident pages (the encoded corpus, memory-mapped from the run directory's
``.cache/corpus.bin``) and peak VmRSS, sampled from /proc/self/status every 20 ms; and wall
time. The baseline is the same command on the smallest size, measured in the same run:
bounded means the anonymous peak grows by much less than the corpus.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_header import print_header

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
TRAIN_ARGS = [
    "--steps", "20", "--hidden", "64", "--layers", "1", "--seq-len", "64", "--batch", "32",
    "--eval-every", "10", "--val-chars", "20000", "--sample-every", "0", "--quiet",
]  # fmt: skip


def source_text() -> str:
    if SHAKESPEARE.is_file():
        return SHAKESPEARE.read_text(encoding="utf-8")
    from rnn_dissect.train.data import load_corpus

    c = load_corpus()
    return "".join(c.vocab[i] for i in c.data[:2_000_000])


def write_corpus(path: Path, mb: float, text: str) -> int:
    """``mb`` MB of ``text`` repeated, written piece by piece; returns the byte count."""
    piece = text.encode("utf-8")
    target, n = int(mb * 1e6), 0
    with path.open("wb") as f:
        while n < target:
            chunk = piece[: target - n]
            f.write(chunk)
            n += len(chunk)
    return n


CHILD = """
import json, sys, threading, time
peak = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
done = threading.Event()
def watch():
    while True:
        for line in open("/proc/self/status"):
            key = line.split(":")[0]
            if key in peak:
                peak[key] = max(peak[key], int(line.split()[1]))
        if done.wait(0.02):
            return
t = threading.Thread(target=watch)
t.start()
from rnn_dissect.cli import main
rc = main(sys.argv[1:])
done.set()
t.join()
print(json.dumps(peak))
sys.exit(rc)
"""


def child_peaks_mib(args: list[str]) -> tuple[dict[str, float], float]:
    """Run ``rnn-dissect ARGS`` in a fresh child that samples its own /proc/self/status every
    20 ms: peak anonymous memory (the process's own arrays), peak file-backed resident
    pages (the memory-mapped corpus: page cache, reclaimable) and peak VmRSS, in MiB."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"train failed ({out.returncode}):\n{out.stderr[-2000:]}")
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v / 1024 for k, v in peaks.items()}, time.perf_counter() - t0


def main() -> None:
    print_header()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[1.0, 300.0], help="corpus sizes")
    args = ap.parse_args()
    text = source_text()
    print(
        f"corpus source: {SHAKESPEARE if SHAKESPEARE.is_file() else 'stdlib'}; "
        f"train args: {' '.join(TRAIN_ARGS)}"
    )
    print(
        f"{'corpus MB':>10s} {'anon MiB':>9s} {'file-backed MiB':>16s} {'VmRSS MiB':>10s} "
        f"{'wall s':>7s} {'anon growth / corpus growth':>28s}"
    )
    base: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as d:
        for mb in sorted(args.mb):
            f = Path(d) / f"text_{mb:g}MB.txt"
            size = write_corpus(f, mb, text) / 2**20
            run = Path(d) / f"run_{mb:g}"
            peaks, wall = child_peaks_mib(["train", str(f), "--out", str(run), *TRAIN_ARGS])
            anon = peaks["RssAnon"]
            growth = ""
            if base is None:
                base = (size, anon)
            elif size > base[0]:
                growth = f"{(anon - base[1]) / (size - base[0]):.3f}"
            print(
                f"{size * 2**20 / 1e6:10.1f} {anon:9.0f} {peaks['RssFile']:16.0f} "
                f"{peaks['VmRSS']:10.0f} {wall:7.1f} {growth:>28s}"
            )
            f.unlink()
    print(
        "bounded: the process's own (anonymous) memory must grow far slower than the corpus "
        "(ratio ≪ 1). The encoded text is memory-mapped (RUN_DIR/.cache/corpus.bin, removed "
        "when the command ends): its pages are file-backed page cache, counted in VmRSS and "
        "ru_maxrss while mapped but reclaimable by the OS."
    )


if __name__ == "__main__":
    main()
