"""The safetensors container, read defensively and written deterministically and atomically.

Layout (https://github.com/huggingface/safetensors), all little-endian:

    [8 bytes: N as u64] [N bytes: JSON header, space-padded] [tensor data, back to back]

    header = {"__metadata__": {str: str},
              name: {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}, ...}

with offsets relative to the start of the data. :func:`read_header` checks all of it —
length (capped at 16 MiB), UTF-8, JSON, duplicate keys, dtypes, shapes against byte spans,
spans tiling the data exactly — before the safetensors library sees a byte, so a damaged or
foreign file becomes one :class:`UserError` line. A PyTorch zip or pickle is recognised by
its magic bytes and named; nothing is ever unpickled. Nothing here knows about models.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rnn_dissect.errors import UserError, short

__all__ = [
    "MAX_HEADER_BYTES",
    "Header",
    "dtype_code",
    "read_header",
    "read_tensors",
    "short",
    "write",
]

MAX_HEADER_BYTES = 16 << 20  # a header with a 100,000-character vocabulary is ~1 MB
_ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
_CODES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64"}  # the dtypes we write
_TORCH_ZIP, _PICKLE = b"PK\x03\x04", re.compile(rb"\x80[\x02-\x05]")


@dataclass(frozen=True)
class Header:
    """A checked header: metadata and each tensor's (dtype code, shape), in file order."""

    path: str
    metadata: dict[str, str]
    tensors: dict[str, tuple[str, tuple[int, ...]]]  # name → ("F32", (rows, cols))


def dtype_code(a: np.ndarray) -> str:
    """safetensors' name for a float32/float64 array's dtype (else numpy's name)."""
    return _CODES.get(a.dtype.newbyteorder("<"), str(a.dtype))


# --------------------------------------------------------------------------- reading
def read_header(path: Path) -> Header:
    """Parse and check the header of the safetensors file ``path``; read no tensor data."""
    try:
        with path.open("rb") as f:
            return _parse(path, f, os.fstat(f.fileno()).st_size)
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror or e}); check the path") from None


def _parse(p: Path, f: BinaryIO, size: int) -> Header:
    head = f.read(8)
    n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
    text = f.read(n) if 0 <= n <= min(MAX_HEADER_BYTES, size - 8) else b""
    if not text.lstrip().startswith(b"{"):  # not safetensors: say what it is, if we can tell
        _foreign(p, head)
    not_st = f"{p} is not a safetensors file"
    fix = "pass a .safetensors file (a checkpoint: a run directory or its model.safetensors)"
    if n < 0:
        raise UserError(f"{not_st} (only {size} bytes, shorter than the 8-byte header); {fix}")
    if n > MAX_HEADER_BYTES:
        raise UserError(f"{not_st} (its header length field says {n} bytes); {fix}")
    if n > size - 8:
        raise UserError(
            f"{p} is truncated: header of {n} bytes, only {size - 8} follow; re-save it"
        )
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:  # bad UTF-8, bad JSON, duplicate keys, deep nesting
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UserError(f"{p} has a corrupt safetensors header ({msg}); re-save the file") from None
    if not isinstance(header, dict):
        raise UserError(f"{p} has a corrupt safetensors header (not a JSON object); re-save it")
    return _check_entries(p, header, size - 8 - n)


def _foreign(p: Path, head: bytes) -> None:
    """Name a PyTorch zip or a pickle for what it is, by its magic bytes (never loading it)."""
    if head.startswith(_TORCH_ZIP) or _PICKLE.match(head):
        kind = "zip archive (a PyTorch .pt/.pth?)" if head.startswith(_TORCH_ZIP) else "pickle"
        raise UserError(
            f"{p} is a {kind}, not safetensors, and is never unpickled here; import a state "
            f"dict with `rnn-dissect convert {p} --vocab-file VOCAB.json --out OUT.safetensors`"
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {short(sorted(k for k in keys if keys.count(k) > 1), 1)}")
    return dict(pairs)


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_entries(p: Path, header: dict[str, Any], data_len: int) -> Header:
    """Every tensor's dtype, shape and data_offsets; the spans must tile the data exactly."""
    bad = f"{p} has a corrupt safetensors header:"
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise UserError(f"{bad} __metadata__ must map strings to strings; re-save the file")
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans = []
    for name, e in header.items():
        what = f"{bad} tensor {short([name])}"
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise UserError(f"{what} needs exactly dtype, shape and data_offsets")
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in _ITEMSIZE:
            raise UserError(f"{what} has unknown dtype {short([dtype])}")
        if not (isinstance(shape, list) and all(_is_uint(d) for d in shape)):
            raise UserError(f"{what} has shape {str(shape)[:60]}, not a list of sizes ≥ 0")
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_uint(o) for o in offs)):
            raise UserError(f"{what} has data_offsets {str(offs)[:60]}, not [begin, end]")
        need = _ITEMSIZE[dtype] * math.prod(shape)  # exact: Python ints never overflow
        if offs[1] - offs[0] != need:
            span = f"{what} of shape {str(shape)[:60]} needs {need} bytes"[:200]
            raise UserError(f"{span} but its data_offsets span {offs[1] - offs[0]}"[:300])
        tensors[name] = (dtype, tuple(shape))
        spans.append((offs[0], offs[1], name))
    end = 0
    for begin, stop, name in sorted(spans):  # tile [0, data_len): no gap, no overlap
        if begin != end:
            raise UserError(f"{bad} tensor {short([name])} starts at byte {begin}, expected {end}")
        end = stop
    if end > data_len:
        raise UserError(
            f"{p} is truncated (tensors need {end} data bytes, {data_len} present); it was cut "
            "short: copy or save it again"
        )
    if end < data_len:
        raise UserError(
            f"{p} is corrupt: {data_len - end} stray bytes after the last tensor; save it again"
        )
    return Header(str(p), dict(meta), tensors)


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a file whose header :func:`read_header` accepted, decoded by the
    safetensors library into owned, writable, native-byte-order numpy arrays."""
    import safetensors
    import safetensors.numpy

    try:
        arrays = safetensors.numpy.load(path.read_bytes())
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror or e}); check the path") from None
    except safetensors.SafetensorError as e:  # the file changed since its header was checked
        raise UserError(f"{path} could not be decoded ({str(e).splitlines()[0][:120]})") from None
    return {k: np.array(a, dtype=a.dtype.newbyteorder("=")) for k, a in arrays.items()}


# --------------------------------------------------------------------------- writing
def write(path: Path, metadata: Mapping[str, str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write a safetensors file: metadata keys sorted, tensors in the given order, data
    8-byte aligned, so equal inputs give identical bytes (the safetensors library orders
    metadata by hash, differently in each process). Atomic: see :func:`write_atomic`."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for k, a in arrays.items():
        header[k] = {
            "dtype": dtype_code(a),
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("ascii")  # \u-escapes non-ASCII
    text += b" " * (-len(text) % 8)
    chunks = [struct.pack("<Q", len(text)), text]
    chunks += [
        np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes() for a in arrays.values()
    ]
    write_atomic(path, chunks)


def write_atomic(p: Path, chunks: Iterable[bytes]) -> None:
    """Temp file beside ``p`` → write → fsync → rename over ``p`` → fsync the directory.
    A crash or a full disk leaves the previous ``p`` as it was and no temp file behind."""
    parent = p.parent
    if not parent.is_dir():
        what = "is a file, not a directory" if parent.exists() else "does not exist"
        raise UserError(f"cannot write {p}: {parent} {what}; give a path in an existing directory")
    tmp = parent / f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    except OSError as e:
        raise UserError(f"cannot write {p} ({e.strerror or e}); check the directory") from None
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"cannot write {p} ({e.strerror or e}); the previous file is intact"
        ) from None
    except BaseException:  # Ctrl-C mid-write: no temp file left behind
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dfd = os.open(parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
