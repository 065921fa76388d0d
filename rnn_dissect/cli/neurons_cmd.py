"""``rnn-dissect neurons``: what each unit tracks, ranked, drawn, and how it tuned in.

    rnn-dissect neurons runs/py --out neurons/                 # the run's validation text
    rnn-dissect neurons runs/py/best.safetensors --text lib.py --layer 1 --top 10 --out n/
    rnn-dissect neurons runs/py --unit 1:c:42 --regex call='\\w+\\(' --out n/

Text: ``--text FILE``, else the validation split of the run's own corpus (``config.json``:
its files, or the default corpus, and ``val_frac``), else — for a bare checkpoint — the
validation tail (the last 5%) of the default corpus; at most ``--max-chars`` characters.
Characters outside the model's vocabulary stop the command unless ``--unknown drop``
removes them or ``--unknown replace`` turns each into ``?`` (or, if the model has no ``?``,
a space, else its first character).

Activations of every unit are collected (streamed to ``OUT/activations`` when they would
not fit in ``--memory-mb``, and removed afterwards, unless ``--keep-activations``), scored
against the built-in features and each ``--regex NAME=PATTERN`` (1 inside a match), and
:func:`rnn_dissect.reports.neurons.write_report` writes ``neurons.json`` (the contract),
``heatmaps.html``, ``contexts.json``, the saturation plot and — when the run directory has
``snapshots/`` — the tuning-over-training files. The terminal gets the best units per
feature and (on a colour terminal, or with FORCE_COLOR set) a heatmap of the overall best one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel
from rnn_dissect.neurons.activations import KINDS, Activations, UnitRef, load
from rnn_dissect.neurons.collect import collect
from rnn_dissect.neurons.features import BUILTIN, Feature, builtin_features, regex_feature
from rnn_dissect.neurons.ranking import Scores
from rnn_dissect.neurons.tuning import Snapshot, load_unit_norms
from rnn_dissect.reports.neurons import summary, terminal_heatmap, write_report
from rnn_dissect.train.data import load_corpus
from rnn_dissect.train.rundir import RunDir
from rnn_dissect.weights import checkpoint

__all__ = ["read_text", "register", "run"]

_EXAMPLES = """examples:
  rnn-dissect neurons run --out neurons                      # the run's validation text
  rnn-dissect neurons run/best.safetensors --text f.py --layer 1 --out n
  rnn-dissect neurons run --unit 0:c:12 --unit 1:h:3 --regex def='def \\w+' --out n"""

_UNIT = re.compile(r"^(\d+):([a-z]):(\d+)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_VAL_FRAC = 0.05  # a bare checkpoint is read on this tail of the default corpus


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
        help="characters each parallel segment reads before its own (default 500)",
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
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- text
def _fit(text: str, vocab: tuple[str, ...], unknown: str, src: str) -> str:
    """``text`` with characters outside ``vocab`` kept (error), dropped or replaced."""
    allowed = set(vocab)
    bad = sorted(set(text) - allowed)
    if not bad:
        return text
    if unknown == "error":
        raise UserError(
            f"{src} has {len(bad)} character(s) outside the model's vocabulary "
            f"({''.join(bad)[:20]!r}); pass --unknown drop or --unknown replace"
        )
    if unknown == "drop":
        return "".join(ch for ch in text if ch in allowed)
    sub = next((c for c in ("?", " ") if c in allowed), vocab[0])
    return "".join(ch if ch in allowed else sub for ch in text)


def _read_file(path: Path, vocab: tuple[str, ...], unknown: str, max_chars: int) -> str:
    """Up to ``max_chars`` characters of a UTF-8 file (after ``unknown`` is applied)."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(f"--text {path} {what}; pass a UTF-8 text file")
    parts: list[str] = []
    n = 0
    try:
        with path.open(encoding="utf-8", newline="") as f:
            while n < max_chars and (chunk := f.read(1 << 20)):
                part = _fit(chunk, vocab, unknown, f"--text {path}")
                parts.append(part)
                n += len(part)
    except UnicodeDecodeError as e:
        raise UserError(
            f"--text {path} is not valid UTF-8 (byte {e.object[e.start]:#04x}); re-encode it"
        ) from None
    text = "".join(parts)[:max_chars]
    if not text:
        raise UserError(f"--text {path} has no characters to read; pass a non-empty text")
    return text


def read_text(
    source: Path, model: CharModel, text_file: str | None, unknown: str, max_chars: int
) -> tuple[str, str]:
    """(text, where it came from): ``text_file``, the run's validation split, or the
    default corpus's tail (see the module docstring)."""
    vocab = model.config.vocab
    if text_file is not None:
        return _read_file(Path(text_file), vocab, unknown, max_chars), text_file
    from rnn_dissect.train.loop import TrainConfig  # the run's config (its corpus and split)

    if source.is_dir() and (source / "config.json").is_file():
        cfg = RunDir(source).read_config(TrainConfig)
        files, errors, frac, what = cfg.files, cfg.errors, cfg.val_frac, "the run's"
    else:
        files, errors, frac, what = None, "strict", DEFAULT_VAL_FRAC, "the default corpus's"
    try:
        corpus = load_corpus(files, errors=errors)
    except UserError as e:
        raise UserError(f"cannot read {what} corpus ({e}); pass --text FILE") from None
    train, val = corpus.split(frac)
    part, name = (val, "validation text") if len(val) >= 2 else (train, "training text")
    chars = np.array(corpus.vocab)[np.asarray(part[: 2 * max_chars], dtype=np.int64)]
    text = _fit("".join(chars.tolist()), vocab, unknown, f"{what} {name}")[:max_chars]
    return text, f"{what} {name}"


# ----------------------------------------------------------------------------- units
def _layer_only(acts: Activations, layer: int | None) -> Activations:
    if layer is None:
        return acts
    keep = {key: a for key, a in acts.arrays.items() if key[0] == layer}
    files = {key: f for key, f in acts._files.items() if key[0] == layer}
    return replace(acts, arrays=keep, _files=files)


def parse_unit(spec: str, model: CharModel, layer: int | None) -> UnitRef:
    """``L:KIND:U`` → UnitRef, checked against the model (and ``--layer``)."""
    m = _UNIT.match(spec)
    if not m:
        raise UserError(f"--unit {spec!r} is not LAYER:KIND:UNIT; write e.g. 0:h:12")
    cfg = model.config
    k, kind, u = int(m[1]), m[2], int(m[3])
    if k >= cfg.num_layers:
        raise UserError(
            f"--unit {spec}: layer {k} does not exist; the model has layers 0..{cfg.num_layers - 1}"
        )
    if kind not in KINDS[cfg.cell]:
        raise UserError(
            f"--unit {spec}: a {cfg.cell} has no kind {kind!r}; choose from "
            f"{', '.join(KINDS[cfg.cell])}"
        )
    if u >= cfg.hidden_size:
        raise UserError(
            f"--unit {spec}: unit {u} does not exist; units are 0..{cfg.hidden_size - 1}"
        )
    if layer is not None and k != layer:
        raise UserError(
            f"--unit {spec} is in layer {k}, but --layer {layer} keeps only layer {layer}"
        )
    return UnitRef(k, kind, u)


def parse_regex(spec: str) -> tuple[str, str]:
    """``NAME=PATTERN`` → (name, pattern); the name must not shadow a built-in feature."""
    name, eq, pattern = spec.partition("=")
    if not eq or not _NAME.match(name) or not pattern:
        raise UserError(f"--regex {spec!r} is not NAME=PATTERN; write e.g. call='\\w+\\('")
    if name in BUILTIN:
        raise UserError(f"--regex {name}: that is a built-in feature's name; choose another")
    return name, pattern


def _features(text: str, regexes: list[tuple[str, str]]) -> list[Feature]:
    return builtin_features(text) + [regex_feature(n, p, text) for n, p in regexes]


def _snapshots(source: Path, layer: int | None) -> list[Snapshot]:
    d = source / "snapshots"
    if not source.is_dir() or not d.is_dir():
        return []
    out = []
    for sd in sorted(d.glob("step*")):
        if sd.name[4:].isdigit() and (sd / "activations.json").is_file():
            weight, grad = load_unit_norms(sd)  # (None, None) for an older snapshot
            out.append(Snapshot(int(sd.name[4:]), _layer_only(load(sd), layer), weight, grad))
    return out


# ----------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    source = Path(args.model)
    if not source.exists():
        raise UserError(f"{source} does not exist; pass a run directory or a .safetensors file")
    if args.best and not source.is_dir():
        raise UserError(f"--best needs a run directory, and {source} is not one")
    if args.top < 1 or args.max_chars < 1 or args.warmup < 0 or args.memory_mb < 1:
        raise UserError("--top, --max-chars and --memory-mb must be ≥ 1, --warmup ≥ 0")
    model = checkpoint.load(source / "best.safetensors" if args.best else source)
    cfg = model.config
    if args.layer is not None and not 0 <= args.layer < cfg.num_layers:
        raise UserError(
            f"--layer {args.layer} does not exist; the model has layers 0..{cfg.num_layers - 1}"
        )
    units = [parse_unit(s, model, args.layer) for s in args.unit]
    regexes = [parse_regex(s) for s in args.regex]
    for name, pattern in regexes:  # bad patterns fail before the long collection
        regex_feature(name, pattern, "")
    text, origin = read_text(source, model, args.text, args.unknown, args.max_chars)

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; choose a directory")
    out.mkdir(parents=True, exist_ok=True)
    kinds = len(KINDS[cfg.cell]) * cfg.num_layers
    size = len(text) * kinds * cfg.hidden_size * 4  # float32 bytes of every array
    stream = size > args.memory_mb << 20 or args.keep_activations
    act_dir = out / "activations"
    print(
        f"{cfg.cell} H={cfg.hidden_size} L={cfg.num_layers}: {len(text):,} characters of "
        f"{origin}, {size / 2**20:,.0f} MB of float32 activations"
        f"{' streamed to ' + str(act_dir) if stream else ''}",
        file=sys.stderr,
    )
    acts = collect(model, text, warmup=args.warmup, out_dir=act_dir if stream else None)
    acts = _layer_only(acts, args.layer)
    feats = _features(text, regexes)
    snaps = _snapshots(source, args.layer)
    snap_feats = _features(snaps[0].acts.text, regexes) if snaps else None
    try:
        rep = write_report(
            acts,
            out,
            feats,
            top=args.top,
            extra_units=units,
            snapshots=snaps,
            snapshot_features=snap_feats,
        )
        print(summary(rep.scores))
        best = _overall_best(rep.scores)
        if best is not None:
            f, r = best
            u = UnitRef(int(r["layer"]), str(r["kind"]), int(r["unit"]))
            print(f"\nbest overall: layer {u.layer} {u.kind} unit {u.unit}, {f} {r['score']:+.3f}")
            if sys.stdout.isatty() or os.environ.get("FORCE_COLOR"):
                width = min(120, shutil.get_terminal_size((100, 24)).columns)
                print(terminal_heatmap(acts, u, width, excerpt=400))
    finally:
        if stream and not args.keep_activations:
            del acts
            shutil.rmtree(act_dir, ignore_errors=True)
    tuned = " and tuning over training" if snaps else ""
    print(
        f"\nwrote {out}/neurons.json, heatmaps.html, contexts.json{tuned} ({len(rep.files)} files)"
    )
    return 0


def _overall_best(scores: Scores) -> tuple[str, dict[str, int | str | float]] | None:
    """(feature, ranking entry) with the largest |score| over every feature."""
    tops = [(name, r[0]) for name in scores.features if (r := scores.ranking(name, 1))]
    return max(tops, key=lambda fr: abs(float(fr[1]["score"])), default=None)
