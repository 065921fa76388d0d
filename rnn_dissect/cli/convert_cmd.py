"""``rnn-dissect convert``: PyTorch state dicts into checkpoints, and a checkpoint's header.

    rnn-dissect convert model.pt --vocab-file vocab.json --out model.safetensors
    rnn-dissect convert model.pt --vocab-text input.txt --out model.safetensors
    rnn-dissect convert old.safetensors --out new.safetensors     # minimal file → full format
    rnn-dissect convert model.safetensors --info

``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``; the tensor names are
mapped as :func:`rnn_dissect.weights.interop.split_state_dict` says. The vocabulary is either a JSON
list of characters in index order (``--vocab-file``) or the sorted distinct characters of a
text (``--vocab-text``, the nanoGPT / char-rnn convention ``sorted(set(text))``). An
existing output is never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel
from rnn_dissect.weights import checkpoint

__all__ = ["register", "run"]

_EXAMPLES = """examples:
  rnn-dissect convert model.pt --vocab-file vocab.json --out model.safetensors
  rnn-dissect convert model.pt --vocab-text input.txt --out model.safetensors
  rnn-dissect convert model.safetensors --info"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="import a PyTorch state dict as a checkpoint, or show a checkpoint's header",
        description="Import a PyTorch state dict as an rnn-dissect .safetensors checkpoint\n"
        "(read with torch.load(weights_only=True): tensors only, no code runs),\n"
        "or print a checkpoint's metadata and tensor shapes.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help=".pt/.pth state dict, or a .safetensors file")
    p.add_argument("--out", metavar="OUT.safetensors", help="checkpoint to write")
    p.add_argument("--info", action="store_true", help="print IN's metadata and tensor shapes")
    v = p.add_mutually_exclusive_group()
    v.add_argument("--vocab-file", metavar="V", help="JSON list of the characters, index order")
    v.add_argument("--vocab-text", metavar="TEXT", help="use sorted(set(text)) of this file")
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], help="check the cell type")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if args.info:
        return _info(src)
    if not args.out:
        raise UserError("convert needs --out OUT.safetensors (or --info to inspect IN)")
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise UserError(f"--out {out} must end in .safetensors")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists; pass --force to overwrite it")
    vocab = _vocab(args)
    if vocab is None and src.suffix != ".safetensors":
        raise UserError(
            "a state dict does not record the vocabulary; pass --vocab-file or --vocab-text"
        )
    if vocab is None:
        model = checkpoint.load(src)
        if args.cell and args.cell != model.config.cell:
            raise UserError(f"{src} holds a {model.config.cell} model, not {args.cell}")
    else:
        from rnn_dissect.weights.interop import import_state_dict

        model = import_state_dict(src, vocab, args.cell)
    checkpoint.save(model, out)
    print(f"wrote {out}: {_summary(model)}")
    return 0


def _vocab(args: argparse.Namespace) -> tuple[str, ...] | None:
    if args.vocab_text:
        return tuple(sorted(set(_read(Path(args.vocab_text)))))
    if not args.vocab_file:
        return None
    try:
        v = json.loads(_read(Path(args.vocab_file)))
    except ValueError:
        raise UserError(
            f"{args.vocab_file} is not JSON; write the characters as a JSON list"
        ) from None
    if not (isinstance(v, list) and all(isinstance(c, str) and len(c) == 1 for c in v)):
        raise UserError(f"{args.vocab_file} must be a JSON list of single characters")
    return tuple(v)


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(
            f"cannot read {p} as UTF-8 text ({getattr(e, 'strerror', None) or e})"
        ) from None


def _summary(m: CharModel) -> str:
    c = m.config
    n = sum(a.size for a in m.params.values())
    dtype = next(iter(m.params.values())).dtype
    return (
        f"{c.cell}, hidden {c.hidden_size}, {c.num_layers} layer(s), vocab {c.vocab_size}, "
        f"{dtype}, {n:,} parameters"
    )


def _info(src: Path) -> int:
    """The header as it is, then whether it loads as a model (exit 2 with the reason if not)."""
    info = checkpoint.read_info(src)
    print(f"{info.path}")
    for k, val in sorted(info.metadata.items()):
        print(f"  {_shown(k)} = {_shown(val[:200])}{'…' if len(val) > 200 else ''}")
    width = max((len(k) for k in info.tensors), default=0)
    for k, (dtype, shape) in info.tensors.items():
        print(f"  {_shown(k):<{width}}  {dtype:<4} {list(shape)}")
    print(f"model: {_summary(checkpoint.load(src))}")
    return 0


def _shown(s: str) -> str:
    """Text from a file, with control characters escaped so one entry stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
