"""What ``rnn-dissect neurons`` reads besides the model: the text, the ``--unit`` and
``--regex`` specs checked against the model, the characters ``--where`` selects for
scoring (:class:`Where`), and a run directory's training snapshots.

Text: ``--text FILE``, else the validation split of the run's own corpus (``config.json``:
its files, or the default corpus, and ``val_frac``), else — for a bare checkpoint — the
validation tail (the last 5%) of the default corpus; at most ``--max-chars`` characters.
Characters outside the model's vocabulary stop the command unless ``--unknown drop``
removes them or ``--unknown replace`` turns each into ``?`` (or, if the model has no ``?``,
a space, else its first character).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel
from rnn_dissect.neurons.activations import KINDS, UnitRef
from rnn_dissect.neurons.features import BUILTIN, where_pattern, where_rows
from rnn_dissect.neurons.tuning import Snapshot, read_snapshots
from rnn_dissect.train.data import load_corpus
from rnn_dissect.train.rundir import RunDir

__all__ = [
    "DEFAULT_VAL_FRAC",
    "Where",
    "parse_regex",
    "parse_unit",
    "read_text",
    "select_rows",
    "snapshots",
]

_UNIT = re.compile(r"^(\d+):([a-z]):(\d+)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_VAL_FRAC = 0.05  # a bare checkpoint is read on this tail of the default corpus


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


@dataclass(frozen=True)
class Where:
    """``--where PATTERN``: the characters scored (:func:`where_rows`), in the text and in
    the snapshots' probe text (None: no snapshots, or no match in their text)."""

    pattern: str
    rows: np.ndarray  # (N,) bool
    probe_rows: np.ndarray | None = None  # (N_probe,) bool

    def statement(self) -> str:
        """The sentence the terminal, heatmaps.html and neurons.json say."""
        return (
            f"scores computed on {int(self.rows.sum()):,} of {len(self.rows):,} characters: "
            f"those covered by a match of --where {shlex.quote(self.pattern)}"  # as typed in a shell
            + (" (its first group's span)" if where_pattern(self.pattern).groups else "")
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "pattern": self.pattern,
            "span": "group 1" if where_pattern(self.pattern).groups else "match",
            "scored_chars": int(self.rows.sum()),
            "n_chars": len(self.rows),
            "statement": self.statement(),
        }


def select_rows(pattern: str, text: str, probe_text: str | None) -> Where:
    """``--where PATTERN`` over the text (matching nothing there is the user's error) and
    over the snapshots' probe text (``probe_rows`` None when it has no match, or no probe)."""
    rows = where_rows(pattern, text)
    probe = None
    if probe_text is not None:
        try:
            probe = where_rows(pattern, probe_text, "the snapshots' probe text")
        except UserError:
            probe = None
    return Where(pattern, rows, probe)


def snapshots(source: Path, layer: int | None) -> list[Snapshot]:
    """The snapshots in ``source/snapshots/step*`` in step order (none for a checkpoint file),
    each with its activations (``layer``'s only, when given) and per-unit norms
    (:func:`rnn_dissect.neurons.tuning.read_snapshots`)."""
    snaps = read_snapshots(source) if source.is_dir() else []
    return [replace(s, acts=s.acts.layer_only(layer)) for s in snaps]
