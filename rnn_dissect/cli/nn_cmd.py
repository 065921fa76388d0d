"""``rnn-dissect nn``: dissect the classic 3:1:1 network (or any I:H:O) node by node.

Flag parsing only; what is computed and written is :mod:`rnn_dissect.reports.nn`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets import mlp
from rnn_dissect.reports import nn as nn_report

__all__ = ["register", "run"]

LEAVES = ("x", "y", "W1", "b1", "W2", "b2")

DESCRIPTION = """\
Dissect a tiny feed-forward network: every node of its computation graph with its value and
its gradient, the chain rule written out with numbers, and one SGD step.

  z1   = W1 x + b1          W1: H×I   b1: H      (pre-activation)
  h    = ReLU(z1) = max(0, z1)                   (hidden activation)
  z2   = W2 h + b2          W2: O×H   b2: O      (output pre-activation)
  yhat = sigmoid(z2) = 1 / (1 + exp(-z2))        (one sigmoid per output)
  L    = mean_k -(y_k log yhat_k + (1 - y_k) log(1 - yhat_k))   (binary log loss)

By default the classic 3:1:1 network (3 inputs, 1 hidden ReLU unit, 1 sigmoid output) with
numbers chosen so the ReLU is active: x = 0.5,-1.2,2.0  y = 1  W1 = 0.3,-0.1,0.2  b1 = 0.1
W2 = 0.8  b2 = -0.2 (z1 = 0.77). Try --x -0.5,1.2,-2.0 to switch the ReLU off and see the
gradient blocked. With other --sizes, or with --seed, values you do not give are drawn from
a numpy Generator seeded with --seed (x ~ N(0,1), y in {0,1}, weights ~ U(±1/sqrt(fan_in))).
With O > 1 the loss is the mean binary cross-entropy over the O outputs. All float64.
"""

EPILOG = """\
examples:
  rnn-dissect nn                                  the 3:1:1 defaults, table only
  rnn-dissect nn --out out/nn                     + graph.svg, walkthrough.html, dissection.json
  rnn-dissect nn --x -0.5,1.2,-2.0 --out out/off  the ReLU inactive: gradient blocked
  rnn-dissect nn --sizes 3:4:2 --seed 4 --json    a wider net (2 of 4 ReLUs active), JSON

Without Graphviz's dot the table and --json still work; --out writes dissection.json and
walkthrough.html, then exits with code 2 naming the install command for graph.svg.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "nn",
        help="dissect the classic 3:1:1 network (or any I:H:O), node by node",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Values such as "-0.5,1.2" start with '-'; let argparse read them as values, not flags.
    p._negative_number_matcher = re.compile(r"^-\.?\d")
    nums = "comma-separated numbers"
    p.add_argument("--x", metavar="NUMS", help=f"input x: I {nums} (default 0.5,-1.2,2.0)")
    p.add_argument("--y", metavar="NUMS", help="target y: O numbers in [0, 1] (default 1)")
    p.add_argument(
        "--W1",
        metavar="NUMS",
        help=f"hidden weights W1: H×I {nums}, row by row (default 0.3,-0.1,0.2)",
    )
    p.add_argument("--b1", metavar="NUMS", help=f"hidden biases b1: H {nums} (default 0.1)")
    p.add_argument(
        "--W2", metavar="NUMS", help=f"output weights W2: O×H {nums}, row by row (default 0.8)"
    )
    p.add_argument("--b2", metavar="NUMS", help=f"output biases b2: O {nums} (default -0.2)")
    p.add_argument(
        "--sizes",
        default="3:1:1",
        metavar="I:H:O",
        help="inputs, hidden ReLU units, sigmoid outputs (default 3:1:1)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=0.1,
        help="learning rate of the SGD step w <- w - lr·dL/dw (default 0.1)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for values not given (default 0; used when --sizes is not "
        "3:1:1 or when --seed is given)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="write graph.svg, walkthrough.html and dissection.json into DIR",
    )
    p.add_argument(
        "--json", action="store_true", help="print dissection.json to stdout instead of the table"
    )
    p.set_defaults(func=run)


def _numbers(flag: str, text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(
            f"--{flag} must be comma-separated numbers like 0.5,-1.2,2.0; got {text!r}"
        ) from None


def run(args: argparse.Namespace) -> int:
    if not np.isfinite(args.lr) or args.lr < 0:
        raise UserError(f"--lr must be a non-negative number, got {args.lr}")
    sizes = mlp.parse_sizes(args.sizes)
    given = {k: _numbers(k, v) for k in LEAVES if (v := getattr(args, k)) is not None}
    return nn_report.dissect_and_write(
        sizes, given, seed=args.seed, lr=args.lr, out=args.out, as_json=args.json
    )
