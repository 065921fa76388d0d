"""``rnn-dissect sample``: text from a trained model, to stdout.

    rnn-dissect sample runs/shakespeare --prime "ROMEO:" --temperature 0.8 --length 500
    rnn-dissect sample runs/py/best.safetensors --prime "def " --seed 3 --top-k 5

A run directory means its ``model.safetensors`` (the latest weights; ``--best`` picks
``best.safetensors``). Same model, prime, temperature and seed: same text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnn_dissect.errors import UserError
from rnn_dissect.train.sample import default_prime, generate
from rnn_dissect.weights import checkpoint

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="sample text from a trained model",
        description="Sample text character by character: p = softmax(logits / temperature).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n  rnn-dissect sample run --prime "def " --temperature 0.8 --length 500',
    )
    p.add_argument(
        "model", metavar="RUN_DIR|CHECKPOINT", help="a run directory or a .safetensors file"
    )
    p.add_argument("--prime", help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="< 1 safer, > 1 wilder, 0 = always the likeliest (default 0.8)",
    )
    p.add_argument(
        "--top-k", type=int, default=0, help="sample among the k likeliest only (0 = all)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--best", action="store_true", help="use RUN_DIR/best.safetensors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.model)
    if args.best:
        if not path.is_dir():
            raise UserError(f"--best needs a run directory, and {path} is not one")
        path = path / "best.safetensors"
    model = checkpoint.load(path)
    prime = default_prime(model) if args.prime is None else args.prime
    chars = generate(model, prime, args.length, args.temperature, args.top_k, args.seed)  # checks
    out = sys.stdout
    out.write(prime)
    for ch in chars:
        out.write(ch)
    out.write("\n")
    out.flush()
    return 0
