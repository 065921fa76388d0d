"""Train a 2-layer LSTM on the embedded default corpus, then ask what its units track.

    python bench/neurons_demo.py                        # 5 minutes of training, then analysis
    python bench/neurons_demo.py --minutes 15 --dir /tmp/demo
    python bench/neurons_demo.py --reuse                 # analyse the run already in --dir

The claim it checks (issue 6): a 2-layer LSTM trained for at most 15 minutes on this machine
has at least one unit with |score| ≥ 0.7 for some built-in feature. Equivalent to

    rnn-dissect train --minutes M --snapshot-every 100 --out DIR/run
    rnn-dissect neurons DIR/run --out DIR/neurons

(the default model: LSTM 256 × 2; the text scored is the run's validation split, never
trained on). Features split in two: *character classes* (whitespace, letter, digit, punct,
upper, line_start) can be read off the current input character, so any unit fed by it
scores high; *context* features (in_quote, bracket_depth, line_position, indent,
in_comment, word_position) need memory of earlier characters — a high score there is the
interesting finding. Both are printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path

from machine_header import print_header

from rnn_dissect import cli

CONTEXT = ("in_quote", "bracket_depth", "line_position", "indent", "in_comment", "word_position")


def main() -> int:
    print_header()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="training budget (≤ 15)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/rnn-dissect-neurons-demo"))
    ap.add_argument("--reuse", action="store_true", help="skip training; use DIR/run")
    ap.add_argument("--max-chars", type=int, default=100_000, help="characters scored")
    ap.add_argument("--threshold", type=float, default=0.7)
    args = ap.parse_args()
    run, out = args.dir / "run", args.dir / "neurons"

    t0 = time.perf_counter()
    if not args.reuse:
        train = [
            "train",
            "--minutes",
            str(args.minutes),
            "--snapshot-every",
            "100",
            "--out",
            str(run),
            "--force",
            "--quiet",
        ]
        print("$ rnn-dissect " + " ".join(train), flush=True)
        if cli.main(train) != 0:
            return 1
    t1 = time.perf_counter()
    analyse = ["neurons", str(run), "--max-chars", str(args.max_chars), "--out", str(out)]
    print("$ rnn-dissect " + " ".join(analyse), flush=True)
    if cli.main(analyse) != 0:
        return 1
    t2 = time.perf_counter()

    cfg = json.loads((run / "config.json").read_text())
    metrics = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    val = [m["val_loss"] for m in metrics if "val_loss" in m]
    doc = json.loads((out / "neurons.json").read_text())
    tr = cfg["train"]
    loss = f", final val loss {val[-1]:.3f} nats/char" if val else ""
    print(
        f"\nmodel: {tr['cell']} H={tr['hidden_size']} L={tr['num_layers']}, {tr['steps']} steps "
        f"({tr['minutes']:g}-minute budget){loss}"
    )
    print(
        f"scored on {doc['n_chars']:,} characters of the validation split; "
        f"analysis {t2 - t1:.0f} s, training {t1 - t0:.0f} s (0 with --reuse)"
    )
    best = {name: r[0] for name, r in doc["features"].items() if r}
    for title, names in (
        ("context features (need memory)", CONTEXT),
        ("character classes (read off the input)", [n for n in best if n not in CONTEXT]),
    ):
        print(f"\n{title}:")
        for name in names:
            if name in best:
                r = best[name]
                mark = f"  ≥ {args.threshold:g}" if abs(r["score"]) >= args.threshold else ""
                print(
                    f"  {name:14s} layer {r['layer']} {r['kind']:>1s} unit {r['unit']:<4d} "
                    f"{r['score']:+.3f}{mark}"
                )
    hits = [n for n, r in best.items() if abs(r["score"]) >= args.threshold]
    ctx_hits = [n for n in hits if n in CONTEXT]
    print(
        f"\n|score| ≥ {args.threshold}: {len(hits)} of {len(best)} features "
        f"({len(ctx_hits)} context: {', '.join(ctx_hits) or 'none'})"
    )
    tuning = out / "tuning.json"
    if tuning.is_file():
        print("\nfirst step each best unit reached |score| ≥ 0.5 (tuning.json):")
        for name, c in json.loads(tuning.read_text()).items():
            print(f"  {name:14s} {c['crossed_at'] if c['crossed_at'] is not None else 'never'}")
    print(f"\nreport: {out}/heatmaps.html, {out}/neurons.json")
    return 0 if hits else 1


if __name__ == "__main__":
    sys.exit(main())
