"""``rnn-dissect dissect CHECKPOINT --text STR``: the ``rnn`` dissection of a trained model.

Same outputs as ``rnn-dissect rnn`` (graph.svg, walkthrough.html, dissection.json; written by
:func:`rnn_dissect.reports.rnn.dissect_checkpoint`), from a checkpoint file or a run
directory (its ``model.safetensors``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rnn_dissect.cli.rnn_cmd import add_run_flags, one_line_errors, run_options
from rnn_dissect.reports import rnn as rnn_report

__all__ = ["register", "run"]

EPILOG = """\
examples:
  rnn-dissect dissect runs/lstm --text "the cat" --out /tmp/cat
  rnn-dissect dissect model.safetensors --text hello --truncate 2 --json

The text may only use characters of the checkpoint's vocabulary. The output directory's
three files are regenerated (overwritten) on every run.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dissect",
        help="dissect a trained checkpoint (or run directory) on a text, through time",
        description="Dissect a trained char model on a text: the walkthrough, the graph and "
        "dissection.json of `rnn-dissect rnn`, with the checkpoint's weights (float64).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT|RUN_DIR")
    p.add_argument("--text", required=True, help="the text: inputs text[:-1], targets text[1:]")
    add_run_flags(p, "out/dissect")
    one_line_errors(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return rnn_report.dissect_checkpoint(args.checkpoint, args.text, **run_options(args))
