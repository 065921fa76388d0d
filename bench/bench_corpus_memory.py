"""Training memory stays bounded as the corpus grows (issue #5: corpora of hundreds of MB).

    python bench/bench_corpus_memory.py              # 1 MB and 300 MB corpora (~3 min)
    python bench/bench_corpus_memory.py --mb 1 50    # other sizes

For each size, a UTF-8 text file of that many MB is written to a temporary directory
(Tiny Shakespeare from ``../shared/data`` repeated, or the built-in standard-library corpus
when that is absent), and ``rnn-dissect train FILE --steps 20`` runs on it in a child
process with a small model. Reported: the child's peak RSS (``ru_maxrss``), wall time, and
the size of the encoded corpus memory-mapped in the run directory (``.cache/corpus.bin``).
The baseline is the same command on the smallest size, measured in the same run: bounded
means the peak RSS grows by much less than the corpus (the encoded text lives in the OS
page cache, not in the process).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
TRAIN_ARGS = [
    "--steps", "20", "--hidden", "64", "--layers", "1", "--seq-len", "64", "--batch", "32",
    "--eval-every", "10", "--val-chars", "20000", "--sample-every", "0", "--quiet",
]  # fmt: skip


def source_text() -> str:
    if SHAKESPEARE.is_file():
        return SHAKESPEARE.read_text(encoding="utf-8")
    from rnn_dissect.data import load_corpus

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


def child_peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` in a fresh child; its peak RSS (MiB) and wall seconds."""
    t0 = time.perf_counter()
    # A forked helper process measures the child alone: RUSAGE_CHILDREN of a process that
    # has waited for exactly one child is that child's peak.
    code = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"train failed ({out.returncode}):\n{out.stderr[-2000:]}")
    kib = int(out.stdout.strip().splitlines()[-1])
    return kib / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[1.0, 300.0], help="corpus sizes")
    args = ap.parse_args()
    text = source_text()
    print(
        f"corpus source: {SHAKESPEARE if SHAKESPEARE.is_file() else 'stdlib'}; "
        f"train args: {' '.join(TRAIN_ARGS)}"
    )
    print(
        f"{'corpus MB':>10s} {'peak RSS MiB':>13s} {'wall s':>7s} {'corpus.bin MB':>14s} "
        f"{'RSS growth / corpus growth':>27s}"
    )
    base: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as d:
        for mb in sorted(args.mb):
            f = Path(d) / f"text_{mb:g}MB.txt"
            size = write_corpus(f, mb, text)
            run = Path(d) / f"run_{mb:g}"
            cmd = [
                sys.executable,
                "-c",
                "from rnn_dissect.cli import entry; entry()",
                "train",
                str(f),
                "--out",
                str(run),
                *TRAIN_ARGS,
            ]
            rss, wall = child_peak_rss_mib(cmd)
            binf = run / ".cache" / "corpus.bin"
            bin_mb = binf.stat().st_size / 1e6 if binf.exists() else 0.0
            growth = ""
            if base is None:
                base = (size / 2**20, rss)
            elif size / 2**20 > base[0]:
                growth = f"{(rss - base[1]) / (size / 2**20 - base[0]):.3f}"
            print(f"{size / 1e6:10.1f} {rss:13.0f} {wall:7.1f} {bin_mb:14.1f} {growth:>27s}")
            f.unlink()
    print(
        "bounded: peak RSS should grow far slower than the corpus (ratio ≪ 1); the encoded text "
        "is memory-mapped in RUN_DIR/.cache/corpus.bin"
    )


if __name__ == "__main__":
    main()
