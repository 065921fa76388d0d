"""``rnn-dissect tour``: write the post "Dissecting the RNN" as one page, every figure computed.

Flag parsing only; the parts, the page and ``tour.json`` are :mod:`rnn_dissect.reports.tour`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnn_dissect.cli.rnn_cmd import one_line_errors
from rnn_dissect.reports.tour import TourConfig, write_tour
from rnn_dissect.train.kernels.choice import Preference

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tour",
        help='write the post "Dissecting the RNN" as one page (every figure computed)',
        description='Dissect the 3:1:1 network, min-char-rnn\'s "hello" through an RNN and an '
        "LSTM, compare how far gradients reach, train a small LSTM for the rest of the time "
        "budget and find what its neurons learned; write it all as one self-contained page, "
        "DIR/index.html (nothing loads from the network), and its numbers as DIR/tour.json.",
        epilog="example:\n  rnn-dissect tour --out out/tour --minutes 3\n\n"
        "DIR also keeps run/ (the training run) and neurons/ (the neuron analysis); a new "
        "tour replaces a previous one in the same DIR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=Path, default=Path("out/tour"), metavar="DIR",
        help="output directory (default out/tour)",
    )  # fmt: skip
    p.add_argument(
        "--minutes", type=float, default=3.0, metavar="M",
        help="time budget of the whole tour; training gets what the other parts leave (default 3)",
    )  # fmt: skip
    p.add_argument(
        "--corpus", metavar="FILE",
        help="UTF-8 text the LSTM trains on (default: the Python standard library's source)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress display")
    one_line_errors(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = TourConfig(minutes=args.minutes, corpus=args.corpus)
    try:
        index = write_tour(args.out, cfg, quiet=args.quiet, kernels=Preference.from_env())
    except KeyboardInterrupt:  # outside training (there Ctrl-C ends training early)
        print(
            f"stopped; {args.out} holds a partial tour (run again to replace it)", file=sys.stderr
        )
        return 130
    print(f"open {index}   ({index.resolve().as_uri()})")
    return 0
