"""``rnn-dissect rnn``: dissect a char RNN / LSTM / GRU through time (BPTT made visible).

Flag parsing only; what is computed and written is :mod:`rnn_dissect.reports.rnn`, shared
with ``rnn-dissect dissect`` (which reuses :func:`add_run_flags` and :func:`run_options`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from rnn_dissect.cli.flags import add_backend
from rnn_dissect.reports import rnn as rnn_report
from rnn_dissect.reports.rnn import BIG_ARRAY

__all__ = ["add_run_flags", "one_line_errors", "register", "run", "run_options"]

DESCRIPTION = """\
Dissect a character-level recurrent net through time. The char model is one-hot input ->
L stacked cells -> linear head; the loss is the mean cross-entropy of predicting text[1:]
from text[:-1]. Everything is float64 and exact against PyTorch autograd.

  rnn:  h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)     logits_t = W_hy h_t + b_y

The four answers, for your run: how gradients flow back (dL/dh_t direct vs recurrent, the
lag matrix, Jacobian singular values, a verdict); how the shared weights are updated
(per-step gradient terms that sum to the total, and the update dW); what forward keeps
(every cached tensor, bytes measured vs the formula); what backward carries (dh_next,
dc_next) and computes (dh_raw, gate pre-activation gradients).

Without flags: the classic "hello" example (vocabulary h,e,l,o, hidden size 3, input
"hell", targets "ello", seed 0). Fresh weights use PyTorch's initialisation from --seed;
the vocabulary is the text's characters in order of first appearance.
"""

EPILOG = """\
examples:
  rnn-dissect rnn                                    the hello example -> out/rnn/
  rnn-dissect rnn --cell lstm --layers 2 --out /tmp/lstm
  rnn-dissect rnn --text "hello world" --hidden 8 --truncate 3 --json
  rnn-dissect rnn --weights W.safetensors --text hello --out DIR
  rnn-dissect rnn --cell lstm --h0 random:1 --c0 c0.npy  start from a given state

The output directory holds regenerated output: graph.svg, walkthrough.html and
dissection.json are overwritten on every run (other files in it are left alone).
Large inputs leave out the heavy parts (per-step matrices, Jacobian matrices, the graph
drawing, the step-through frames) and say so.
"""


def one_line_errors(p: argparse.ArgumentParser) -> None:
    """Make a bad flag value one ``error:`` line (exit 2) instead of usage + message."""

    def error(message: str) -> NoReturn:
        print(f"error: {p.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)

    p.error = error  # type: ignore[method-assign]


def add_run_flags(p: argparse.ArgumentParser, default_out: str) -> None:
    """The flags ``rnn`` and ``dissect`` share: BPTT options, update, output."""
    p.add_argument(
        "--truncate", type=int, metavar="K", help="truncated BPTT: detach the state every K steps"
    )
    p.add_argument(
        "--clip",
        type=float,
        metavar="C",
        help="clip the global gradient norm to C before the update",
    )
    p.add_argument(
        "--lr", type=float, default=0.1, help="learning rate of the update (default 0.1)"
    )
    p.add_argument(
        "--optimizer", default="sgd", help="sgd or adagrad: the update rule shown (default sgd)"
    )
    p.add_argument(
        "--max-lag",
        type=int,
        metavar="N",
        help="compute the lag matrix for lags t' − t < N only (up to N − 1 steps back)",
    )
    p.add_argument(
        "--h0",
        metavar="FILE|random:SEED",
        help="initial hidden state, (L, H): a .npy or .safetensors file, or random:SEED "
        "(uniform in [-1, 1]); default zeros",
    )
    p.add_argument(
        "--c0",
        metavar="FILE|random:SEED",
        help="initial cell state of an LSTM, (L, H), as --h0; default zeros",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"output directory (default {default_out}, or none with --json; its three files "
        "are overwritten)",
    )
    p.set_defaults(default_out=Path(default_out))
    p.add_argument(
        "--json",
        action="store_true",
        help="print dissection.json to stdout instead of the summary (and write no files "
        "unless --out is given)",
    )
    p.add_argument(
        "--full-arrays",
        action="store_true",
        help=f"write every gradient and update ΔW in dissection.json (default: arrays over "
        f"{BIG_ARRAY:,} numbers are written as shape and norm)",
    )
    add_backend(
        p,
        torch="torch: also run the forward pass through PyTorch (float32) and compare its loss, "
        "states and gates with the exact float64 engine's (torch_forward in dissection.json)",
        cuda="cuda runs that forward pass on the GPU",
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rnn",
        help="dissect a char RNN/LSTM/GRU through time (BPTT made visible)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--text",
        default="hello",
        help='the text: inputs text[:-1], targets text[1:] (default "hello")',
    )
    p.add_argument("--cell", help="rnn, lstm or gru (default rnn)")
    p.add_argument("--hidden", type=int, help="hidden size H (default 3)")
    p.add_argument("--layers", type=int, help="stacked layers L (default 1)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the weight initialisation (default 0)"
    )
    p.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="torch-named .safetensors weights (vocab in metadata)",
    )
    add_run_flags(p, "out/rnn")
    one_line_errors(p)
    p.set_defaults(func=run)


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The shared flags as keyword arguments of :func:`rnn_dissect.reports.rnn.dissect_and_write`."""
    return {
        "out": args.out if args.out is not None or args.json else args.default_out,
        "full_arrays": args.full_arrays,
        "truncate": args.truncate,
        "clip": args.clip,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "max_lag": args.max_lag,
        "h0": args.h0,
        "c0": args.c0,
        "as_json": args.json,
        "backend": args.backend,
        "device": args.device,
    }


def run(args: argparse.Namespace) -> int:
    return rnn_report.dissect_fresh(
        args.text,
        cell=args.cell,
        hidden=args.hidden,
        layers=args.layers,
        seed=args.seed,
        weights=args.weights,
        **run_options(args),
    )
