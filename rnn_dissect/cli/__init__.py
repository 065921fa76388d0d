"""The command line: ``rnn-dissect <command> [flags]``. Thin: parse, call the API, render.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its
parser and sets ``func`` to a ``run(args) -> int``. ``main(argv)`` is testable in-process.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence

from rnn_dissect import __version__
from rnn_dissect.errors import UserError

__all__ = ["build_parser", "entry", "main"]

# Subcommand modules, in the order ``--help`` lists them.
_COMMANDS = [
    "tour",
    "nn",
    "convert",
    "train",
    "sample",
    "neurons",
    "rnn",
    "dissect",
    "flow",
    "explore",
    "doctor",
]


_OUTPUTS = ("--out", "--export")  # flags that name where files are written


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="rnn-dissect",
        description="Dissect recurrent neural networks: every value, gradient and saved "
        "tensor of the forward and backward pass, exact (float64).",
    )
    parser.add_argument("--version", action="version", version=f"rnn-dissect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"rnn_dissect.cli.{name}_cmd").register(sub)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """name → the command's parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 2 user error, 130 Ctrl-C)."""
    try:
        return _run(argv)
    except KeyboardInterrupt:  # `train` saves on its own first Ctrl-C; elsewhere: stop quietly
        print("interrupted", file=sys.stderr)
        return 130


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # the command's own usage (which lists its flags), not the top level's
            command = _subcommands(parser).get(getattr(args, "command", None) or "", parser)
            command.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as e:  # argparse: --help (0) or a bad flag (2, message already shown)
        return int(e.code or 0)
    given = list(sys.argv[1:] if argv is None else argv)
    for flag in _OUTPUTS:  # "" is the current directory to pathlib: an unset $OUT, not a choice
        if f"{flag}=" in given or any(a == flag and b == "" for a, b in itertools.pairwise(given)):
            print(f"error: {flag} is empty (an unset variable?); give a path", file=sys.stderr)
            return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:  # sizes the user chose (--hidden 100000), not a bug
        print(
            f"error: out of memory ({str(e)[:100] or 'MemoryError'}); choose smaller sizes "
            "(--hidden, --layers, --batch, a shorter text)",
            file=sys.stderr,
        )
        return 2


def entry() -> None:
    sys.exit(main())
