"""Activations of every unit over a text: the plain data the neuron analyses read.

For each layer k and kind — ``h``; for an LSTM also ``c`` and the gates ``i f g o``; for a
GRU the gates ``r z n`` — one (N, H) array aligned with the N characters of the text:
row j is the value *after reading character j* (the state the model predicts j+1 from).

On disk a directory holds ``activations.json`` (cell, vocab, shapes), ``text.txt`` and one
``l{k}.{kind}.npy`` per array. :func:`load` memory-maps the arrays; :meth:`Activations.rows`
reads a block of rows with an ordinary file read, so a streaming pass over a 4 GB file keeps
only one block in the process's memory (mapped pages would count towards its RSS).

    >>> import numpy as np
    >>> a = Activations("rnn", ("a", "b"), "ab", {(0, "h"): np.array([[0.5], [-0.5]])})
    >>> a.n_chars, a.ordered_keys(), a.unit_count()
    (2, [(0, 'h')], 1)
    >>> [(s, blk.tolist()) for s, blk in a.chunks((0, "h"), rows=1)]
    [(0, [[0.5]]), (1, [[-0.5]])]
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.forward import KINDS  # what each cell records per layer, in order

__all__ = ["KINDS", "KIND_WORDS", "Activations", "ActivationsWriter", "Key", "UnitRef", "load"]

# What each kind code means: "l1 c87" is layer 1's c array, unit 87.
KIND_WORDS: dict[str, str] = {
    "h": "hidden state h_t",
    "c": "cell state c_t (LSTM)",
    "i": "input gate i (LSTM: share of g written into c)",
    "f": "forget gate f (LSTM: share of c_(t−1) kept)",
    "g": "candidate g (LSTM, −1…1)",
    "o": "output gate o (LSTM: share of tanh(c_t) shown)",
    "r": "reset gate r (GRU)",
    "z": "update gate z (GRU: share of h_(t−1) kept)",
    "n": "candidate n (GRU, −1…1)",
}

Key = tuple[int, str]  # (layer, kind)
_META = "activations.json"
_FORMAT = "rnn-dissect/activations v1"


class UnitRef(NamedTuple):
    """One unit: ``kind`` array of ``layer``, column ``unit``."""

    layer: int
    kind: str
    unit: int

    def to_dict(self) -> dict[str, int | str]:
        """``{layer, unit, kind}``: how the JSON files (neurons.json, tuning.json, …) name it."""
        return {"layer": self.layer, "unit": self.unit, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitRef:
        """The unit a ``{layer, kind, unit}`` record names (:meth:`to_dict`'s, or a ranking
        entry with its ``score``: other keys are ignored)."""
        return cls(int(d["layer"]), str(d["kind"]), int(d["unit"]))


def _file_name(key: Key) -> str:
    return f"l{key[0]}.{key[1]}.npy"


@dataclass
class Activations:
    """Per-(layer, kind) (N, H) arrays over ``text``; the arrays may be np.memmap."""

    cell: str  # "rnn" | "lstm" | "gru"
    vocab: tuple[str, ...]  # the model's characters in index order
    text: str  # the N characters the rows are aligned with
    arrays: dict[Key, np.ndarray]  # (layer, kind) -> (N, H)
    collection: dict[str, Any] = field(default_factory=dict)  # how: neurons.collect's record
    _files: dict[Key, tuple[Path, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for key, a in self.arrays.items():
            if a.ndim != 2 or a.shape[0] != len(self.text):
                raise ValueError(f"array {key} has shape {a.shape}; expected ({len(self.text)}, H)")

    @property
    def n_chars(self) -> int:
        return len(self.text)

    def ordered_keys(self) -> list[Key]:
        """(layer, kind) pairs in layer order, then the cell's kind order."""
        order = {k: i for i, k in enumerate(KINDS.get(self.cell, ()))}
        return sorted(self.arrays, key=lambda key: (key[0], order.get(key[1], 99), key[1]))

    def layer_only(self, layer: int | None) -> Activations:
        """The arrays of ``layer`` only (all of them for ``None``); shares the data."""
        if layer is None:
            return self
        keep = {key: a for key, a in self.arrays.items() if key[0] == layer}
        files = {key: f for key, f in self._files.items() if key[0] == layer}
        return replace(self, arrays=keep, _files=files)

    def units(self, key: Key) -> list[UnitRef]:
        return [UnitRef(key[0], key[1], u) for u in range(self.arrays[key].shape[1])]

    def unit_count(self) -> int:
        return sum(a.shape[1] for a in self.arrays.values())

    def rows(self, key: Key, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of one array as a fresh in-memory (stop − start, H) array."""
        a = self.arrays[key]
        if key not in self._files:
            return np.array(a[start:stop])
        path, offset = self._files[key]
        H = a.shape[1]
        with path.open("rb") as f:
            out = np.fromfile(
                f, dtype=a.dtype, count=(stop - start) * H, offset=offset + start * H * a.itemsize
            )
        return out.reshape(stop - start, H)

    def rows_at(self, key: Key, idx: np.ndarray) -> np.ndarray:
        """The rows at indices ``idx`` (K,), as a fresh (K, H) array."""
        a = self.arrays[key]
        if key not in self._files:
            return np.array(a[idx])
        path, offset = self._files[key]
        out = np.empty((len(idx), a.shape[1]), dtype=a.dtype)
        with path.open("rb") as f:
            for j, i in enumerate(np.asarray(idx).tolist()):
                f.seek(offset + i * a.shape[1] * a.itemsize)
                out[j] = np.fromfile(f, dtype=a.dtype, count=a.shape[1])
        return out

    def chunks(self, key: Key, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start, (C, H) block) over the whole array, C ≤ ``rows``."""
        for start in range(0, self.n_chars, rows):
            yield start, self.rows(key, start, min(start + rows, self.n_chars))

    def column(self, unit: UnitRef) -> np.ndarray:
        """(N,) values of one unit (streams through the rows of its array)."""
        out = np.empty(self.n_chars, dtype=self.arrays[(unit.layer, unit.kind)].dtype)
        for s, blk in self.chunks((unit.layer, unit.kind), rows=1 << 16):
            out[s : s + len(blk)] = blk[:, unit.unit]
        return out

    def save(self, directory: str | Path) -> Activations:
        """Write to ``directory`` (see the module docstring); returns the memory-mapped copy."""
        w = ActivationsWriter(
            directory,
            self.cell,
            self.vocab,
            self.text,
            {key: (a.shape[1], a.dtype) for key, a in self.arrays.items()},
        )
        for key in self.ordered_keys():
            for _, blk in self.chunks(key, rows=1 << 16):
                w.append(key, blk)
        return w.close(self.collection)


class ActivationsWriter:
    """Streams rows to ``l{k}.{kind}.npy`` files with plain writes (no mapping), so a
    collector's memory stays at one block however long the text."""

    def __init__(
        self,
        directory: str | Path,
        cell: str,
        vocab: tuple[str, ...],
        text: str,
        spec: dict[Key, tuple[int, np.dtype | type]],  # (layer, kind) -> (H, dtype)
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cell, self.vocab, self.text = cell, tuple(vocab), text
        self.spec = {key: (H, np.dtype(dt)) for key, (H, dt) in spec.items()}
        self.written = dict.fromkeys(self.spec, 0)  # rows appended
        self._covered = {key: np.zeros(len(text), dtype=bool) for key in self.spec}  # write_at
        self._files: dict[Key, BinaryIO] = {}
        self._data_at: dict[Key, int] = {}
        for key, (H, dt) in self.spec.items():
            f = (self.dir / _file_name(key)).open("w+b")  # read back by read_at
            header = {
                "descr": np.lib.format.dtype_to_descr(dt),
                "fortran_order": False,
                "shape": (len(text), H),
            }
            np.lib.format.write_array_header_2_0(f, header)
            self._files[key] = f
            self._data_at[key] = f.tell()  # where row 0 starts (for write_at)

    def append(self, key: Key, rows: np.ndarray) -> None:
        """Append (C, H) rows to one array, in text order."""
        H, dt = self.spec[key]
        if rows.ndim != 2 or rows.shape[1] != H:
            raise ValueError(f"rows for {key} have shape {rows.shape}; expected (C, {H})")
        if self.written[key] + len(rows) > len(self.text):
            raise ValueError(f"more rows for {key} than the text has characters")
        np.ascontiguousarray(rows, dtype=dt).tofile(self._files[key])
        self.written[key] += len(rows)

    def write_at(self, key: Key, start: int, rows: np.ndarray) -> None:
        """Write (C, H) rows as rows [start, start + C) of one array, for collectors that
        produce rows out of text order (:func:`rnn_dissect.neurons.collect.collect`). Every row
        must be written at least once (a later write replaces it); do not mix with
        :meth:`append` on the same key."""
        H, dt = self.spec[key]
        if rows.ndim != 2 or rows.shape[1] != H or not 0 <= start <= len(self.text) - len(rows):
            raise ValueError(
                f"rows for {key} at {start} have shape {rows.shape}; expected (C, {H})"
            )
        f = self._files[key]
        f.seek(self._data_at[key] + start * H * dt.itemsize)
        np.ascontiguousarray(rows, dtype=dt).tofile(f)
        self._covered[key][start : start + len(rows)] = True

    def read_at(self, key: Key, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of one array as written so far, a fresh (stop − start, H) array."""
        H, dt = self.spec[key]
        f = self._files[key]
        f.seek(self._data_at[key] + start * H * dt.itemsize)
        return np.fromfile(f, dtype=dt, count=(stop - start) * H).reshape(stop - start, H)

    def close(self, collection: dict[str, Any] | None = None) -> Activations:
        """Finish the files (every row must have been written); ``collection`` (how the
        rows were collected) is kept in ``activations.json``."""
        for f in self._files.values():
            f.close()
        for key, covered in self._covered.items():
            n = max(self.written[key], int(covered.sum()))
            if n != len(self.text):
                raise ValueError(f"{key}: wrote {n} rows of {len(self.text)}")
        (self.dir / "text.txt").write_text(self.text, encoding="utf-8", newline="")
        meta = {
            "format": _FORMAT,
            "cell": self.cell,
            "vocab": list(self.vocab),
            "n_chars": len(self.text),
            "arrays": [
                {
                    "layer": k,
                    "kind": kind,
                    "file": _file_name((k, kind)),
                    "hidden_size": H,
                    "dtype": dt.name,
                }
                for (k, kind), (H, dt) in sorted(self.spec.items())
            ],
            **({"collection": collection} if collection else {}),
        }
        (self.dir / _META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return load(self.dir)


def load(directory: str | Path) -> Activations:
    """Memory-map a directory written by :class:`ActivationsWriter` / :meth:`Activations.save`."""
    d = Path(directory)
    if not (d / _META).is_file():
        raise UserError(f"{d} has no {_META}; pass a directory of collected activations")
    meta = json.loads((d / _META).read_text(encoding="utf-8"))
    if meta.get("format") != _FORMAT:
        raise UserError(f"{d / _META} is not in the {_FORMAT!r} format; collect activations again")
    with (d / "text.txt").open(encoding="utf-8", newline="") as f:
        text = f.read()
    arrays: dict[Key, np.ndarray] = {}
    files: dict[Key, tuple[Path, int]] = {}
    for spec in meta["arrays"]:
        key = (int(spec["layer"]), str(spec["kind"]))
        path = d / spec["file"]
        a = np.load(path, mmap_mode="r")
        arrays[key] = a
        files[key] = (path, int(a.offset))
    cell, vocab = meta["cell"], tuple(meta["vocab"])
    return Activations(cell, vocab, text, arrays, meta.get("collection", {}), files)
