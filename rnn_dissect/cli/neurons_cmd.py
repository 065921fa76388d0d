"""``rnn-dissect neurons``: what each unit tracks, ranked, drawn, and how it tuned in.

    rnn-dissect neurons runs/py --out neurons/                 # the run's validation text
    rnn-dissect neurons runs/py/best.safetensors --text lib.py --layer 1 --top 10 --out n/
    rnn-dissect neurons runs/py --unit 1:c:42 --regex call='\\w+\\(' --out n/

Flag parsing only. The text read (``--text FILE``, else the run's validation split, else the
default corpus's tail) is :mod:`rnn_dissect.reports.neuron_inputs`; the collection, scoring
and files written (``neurons.json``, ``heatmaps.html``, ``contexts.json``, the saturation plot,
the tuning-over-training files when the run has ``snapshots/``) are
:func:`rnn_dissect.reports.neurons.analyse_and_write`. The terminal gets the best units per
feature and (on a colour terminal, or with FORCE_COLOR set) a heatmap of the overall best one.
"""

from __future__ import annotations

import argparse

from rnn_dissect.cli.flags import add_backend
from rnn_dissect.reports import neurons as neuron_report

__all__ = ["register", "run"]

_EXAMPLES = """examples:
  rnn-dissect neurons run --out neurons                      # the run's validation text
  rnn-dissect neurons run/best.safetensors --text f.py --layer 1 --out n
  rnn-dissect neurons run --unit 0:c:12 --unit 1:h:3 --regex def='def \\w+' --out n
  rnn-dissect neurons run --text keys.txt --regex keyA='\\|(?=A)' --where '\\|' --out n
                                       # at each | only: which unit knows the key is A"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "neurons",
        help="find what each unit tracks: scores, heatmaps, contexts, tuning over training",
        description="Score every unit (h; LSTM c and gates i f g o; GRU r z n) against\n"
        "hypothesis features — Pearson r for numeric ones, 2·AUC − 1 for boolean ones —\n"
        "and draw the best units as text heatmaps.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="RUN_DIR|CHECKPOINT", help="a run directory or .safetensors")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the report")
    p.add_argument("--text", metavar="FILE", help="UTF-8 text to read (default: validation text)")
    p.add_argument("--layer", type=int, metavar="K", help="analyse layer K only (0-based)")
    p.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="units per feature in neurons.json (default 20)",
    )
    p.add_argument(
        "--unit",
        action="append",
        default=[],
        metavar="L:KIND:U",
        help="also draw this unit, e.g. 0:c:12 (repeatable)",
    )
    p.add_argument(
        "--regex",
        action="append",
        default=[],
        metavar="NAME=PATTERN",
        help="a boolean feature: 1 inside each match of PATTERN (repeatable)",
    )
    p.add_argument(
        "--where",
        metavar="PATTERN",
        help="score every feature only at the characters covered by a match of PATTERN "
        "(a Python regex; re.finditer, non-overlapping; with a capturing group, only group "
        "1's span: '\\|(.)' = the character after each |); neurons.json and heatmaps.html "
        "say how many characters were scored",
    )
    p.add_argument(
        "--max-chars",
        type=int,
        default=200_000,
        metavar="N",
        help="read at most N characters of the text (default 200000)",
    )
    p.add_argument(
        "--unknown",
        choices=("error", "drop", "replace"),
        default="error",
        help="characters outside the vocabulary: stop (default), drop, or replace with '?'",
    )
    p.add_argument("--best", action="store_true", help="use RUN_DIR/best.safetensors")
    p.add_argument(
        "--warmup",
        type=int,
        default=500,
        metavar="N",
        help="characters each parallel segment reads before its own (default 500); "
        "a longer warm-up leaves less for the exactness check to re-read",
    )
    p.add_argument(
        "--approximate",
        action="store_true",
        help="skip the check that makes the activations equal one sequential pass: faster, "
        "but units with memory longer than --warmup are wrong (marked in neurons.json and "
        "heatmaps.html)",
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=512,
        metavar="MB",
        help="activations above this size stream to OUT/activations (default 512)",
    )
    p.add_argument(
        "--keep-activations",
        action="store_true",
        help="write the activations to OUT/activations and keep them (activations.load reads them)",
    )
    add_backend(
        p,
        torch="numpy steps the model (default); torch runs PyTorch's fused recurrent kernels "
        "and computes every gate at once (needs PyTorch); the arrays are the same",
        cuda="cuda reads on the GPU (cuDNN)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return neuron_report.analyse_and_write(
        args.model,
        args.out,
        text=args.text,
        layer=args.layer,
        top=args.top,
        units=args.unit,
        regexes=args.regex,
        max_chars=args.max_chars,
        unknown=args.unknown,
        best=args.best,
        warmup=args.warmup,
        approximate=args.approximate,
        memory_mb=args.memory_mb,
        keep_activations=args.keep_activations,
        backend=args.backend,
        device=args.device,
        where=args.where,
    )
