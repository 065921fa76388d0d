"""``rnn-dissect flow``: how far back the gradient reaches in an RNN, an LSTM and a GRU.

Flag parsing only; the table, ``flow.json`` and the plot are :mod:`rnn_dissect.reports.flow`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rnn_dissect.bptt.reach import DEFAULT_TEXT
from rnn_dissect.cli.rnn_cmd import one_line_errors
from rnn_dissect.errors import UserError
from rnn_dissect.reports import flow as flow_report

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "flow",
        help="compare how far back the gradient reaches in RNN, LSTM and GRU",
        description="Unroll an RNN, an LSTM and a GRU of the same size (weights from one seed) "
        "over the same text and measure how far back the last step's gradient reaches: the "
        "lag at which ‖∂L_T/∂h_t‖ falls below 1e-3 of its largest value. float64.",
        epilog="example:\n  rnn-dissect flow --hidden 32 --out /tmp/flow\n\n"
        "flow.json, flow.png and flow.svg in --out are overwritten on every run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--text",
        default=DEFAULT_TEXT,
        help=f"the text (default: a built-in sentence of {len(DEFAULT_TEXT)} characters)",
    )
    p.add_argument(
        "--hidden", type=int, default=16, help="hidden size H of every cell (default 16)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/flow"),
        metavar="DIR",
        help="output directory (default out/flow)",
    )
    p.add_argument(  # a trained model is dissect's: say so, rather than "unrecognized arguments"
        "model", nargs="?", default=None, metavar="RUN_DIR", help=argparse.SUPPRESS
    )
    one_line_errors(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        raise UserError(
            f"flow compares untrained cells and takes no model ({args.model}); for a trained "
            f'one, `rnn-dissect dissect {args.model} --text "..."` states how far its '
            "gradient reaches (its gradient-flow verdict)"
        )
    return flow_report.compare_and_write(
        args.text, hidden=args.hidden, seed=args.seed, out=args.out
    )
