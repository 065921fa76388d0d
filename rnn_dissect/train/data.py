"""Corpora: read text files (or the embedded default), build the vocabulary, encode, batch.

Text is read in chunks with an incremental UTF-8 decoder, so a corpus of hundreds of MB
never sits in memory as a Python string: pass 1 checks every file and collects the
character set, pass 2 encodes into a flat index array — in memory for small corpora,
memory-mapped on disk (``cache_dir``) for large ones.

The default corpus needs no download: the top-level modules of the running interpreter's
standard library (Python source: quotes, brackets, indentation — the setting of Karpathy,
Johnson & Fei-Fei 2015, who used the Linux kernel), with any character outside printable
ASCII replaced by ``?`` to keep the vocabulary near 100.
"""

from __future__ import annotations

import codecs
import string
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_dissect.errors import UserError

__all__ = ["Corpus", "Streams", "default_corpus_files", "load_corpus"]

_CHUNK = 1 << 20  # bytes read at a time
_MEMMAP_ABOVE = 64 << 20  # encode to a memory-mapped file above this many characters
_DEFAULT_CHARS = set(string.printable)


@dataclass
class Corpus:
    """An encoded corpus: ``data[i]`` is the vocabulary index of character i."""

    vocab: tuple[str, ...]  # characters in index order (sorted by code point)
    data: np.ndarray  # (N,) uint8 / uint16 / uint32 indices, maybe a np.memmap
    sources: tuple[str, ...]  # where the text came from

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def split(self, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
        """The first (1 − val_frac) of the text for training, the rest for validation."""
        if not 0.0 <= val_frac < 1.0:
            raise UserError(f"--val-frac must be in [0, 1), got {val_frac}")
        n_train = len(self) - round(len(self) * val_frac)
        return self.data[:n_train], self.data[n_train:]


def default_corpus_files() -> list[Path]:
    """The running interpreter's top-level standard-library modules, sorted by name."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(stdlib.glob("*.py"))


def _chunks(path: Path, errors: str) -> Iterator[str]:
    """Decoded text of one file, chunk by chunk, with a clear error for bad files."""
    if not path.exists():
        raise UserError(f"no such file: {path}; check the path")
    if path.is_dir():
        raise UserError(f"{path} is a directory; pass the text files inside it (e.g. {path}/*.txt)")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty; pass a file that contains text")
    decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
    offset = 0
    with path.open("rb") as f:
        while True:
            raw = f.read(_CHUNK)
            nul = raw.find(b"\0")
            if nul >= 0:
                raise UserError(
                    f"{path} looks binary (NUL byte at offset {offset + nul}); pass a text file"
                )
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise UserError(
                    f"{path} is not valid UTF-8 (byte {e.object[e.start]:#04x} at offset "
                    f"{offset + e.start}); re-encode it as UTF-8 or pass --errors replace"
                ) from None
            if text:
                yield text
            if not raw:
                return
            offset += len(raw)


def _texts(paths: Sequence[Path], errors: str, ascii_only: bool) -> Iterator[str]:
    for path in paths:
        for text in _chunks(path, errors):
            if ascii_only:
                text = "".join(ch if ch in _DEFAULT_CHARS else "?" for ch in text)
            yield text


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def load_corpus(
    paths: Sequence[str | Path] | None = None,
    *,
    errors: str = "strict",
    cache_dir: str | Path | None = None,
    vocab: Sequence[str] | None = None,
) -> Corpus:
    """Read ``paths`` (default: the standard-library corpus) into an encoded :class:`Corpus`.

    ``errors`` is the UTF-8 error handler (``strict`` or ``replace``). ``vocab`` fixes the
    vocabulary (e.g. on resume); a character outside it is a user error. ``cache_dir``
    receives ``corpus.bin`` when the corpus is large enough to memory-map.
    """
    if errors not in ("strict", "replace"):
        raise UserError(f"--errors must be strict or replace, not {errors!r}")
    default = not paths
    files = default_corpus_files() if default else [Path(p) for p in paths or ()]
    if default and not files:
        raise UserError(
            "found no standard-library sources to use as the default corpus; pass text files"
        )

    # Pass 1: validate, count, collect the character set.
    seen: set[int] = set()
    n = 0
    for text in _texts(files, errors, default):
        cp = _codepoints(text)
        seen.update(np.unique(cp).tolist())
        n += cp.size
    chars = sorted(seen)
    if vocab is not None:
        missing = sorted(set(map(chr, chars)) - set(vocab))
        if missing:
            raise UserError(
                f"the text has characters not in the model's vocabulary: {''.join(missing)[:40]!r}; "
                "train a new model on this text (without --resume) or remove those characters"
            )
        chars = [ord(c) for c in vocab]
    table = np.asarray(chars, dtype=np.uint32)
    order = np.argsort(table)
    dtype = np.uint8 if len(table) <= 256 else np.uint16 if len(table) <= 65536 else np.uint32

    # Pass 2: encode. Code points map to indices by binary search in the sorted table.
    if cache_dir is not None and n > _MEMMAP_ABOVE:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        data: np.ndarray = np.memmap(
            Path(cache_dir) / "corpus.bin", dtype=dtype, mode="w+", shape=(n,)
        )
    else:
        data = np.empty(n, dtype=dtype)
    pos = 0
    for text in _texts(files, errors, default):
        cp = _codepoints(text)
        data[pos : pos + cp.size] = order[np.searchsorted(table[order], cp)]
        pos += cp.size
    if isinstance(data, np.memmap):
        data.flush()
    return Corpus(tuple(chr(c) for c in chars), data, tuple(str(f) for f in files))


@dataclass(frozen=True)
class Streams:
    """Truncated-BPTT batches over B contiguous streams (char-rnn's layout).

    The text is cut into B equal streams; step k reads characters
    [pos, pos + seq_len] of every stream, pos = (k · seq_len) mod (stream length − 1 − …),
    so consecutive steps continue where the last left off and the hidden state can be
    carried across them. ``reset`` is True when the streams wrap to their start.
    Everything is a function of k: resuming at step k needs no saved cursor.
    """

    data: np.ndarray  # (N,) encoded text
    batch: int  # B
    seq_len: int  # characters per step and stream

    def __post_init__(self) -> None:
        if self.stream_len < self.seq_len + 1:
            need = self.batch * (self.seq_len + 1)
            raise UserError(
                f"the text has {len(self.data)} characters, too few for --batch {self.batch} × "
                f"(--seq-len {self.seq_len} + 1) = {need}; lower --batch or --seq-len, or give more text"
            )

    @property
    def stream_len(self) -> int:
        return len(self.data) // self.batch

    @property
    def steps_per_epoch(self) -> int:
        return (self.stream_len - 1) // self.seq_len

    def batch_at(self, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Inputs x and targets y, both (B, seq_len) int64, and whether state resets."""
        j = k % self.steps_per_epoch
        starts = np.arange(self.batch) * self.stream_len + j * self.seq_len  # (B,)
        idx = starts[:, None] + np.arange(self.seq_len + 1)  # (B, S + 1)
        window = np.asarray(self.data[idx], dtype=np.int64)
        return window[:, :-1], window[:, 1:], j == 0
