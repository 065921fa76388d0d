"""Malformed checkpoint files: always a one-line UserError, never another exception, never
code execution. Random bytes, every truncation, mutated bytes, hostile headers, pickles."""

from __future__ import annotations

import builtins
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.weights import checkpoint

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small valid checkpoint (GRU, 2 layers, H=2, V=3, float32): 400-odd bytes."""
    m = CharModel.init(ModelConfig("gru", tuple("ab\n"), 2, 2), seed=0, dtype=np.float32)
    path = tmp_path_factory.mktemp("valid") / "m.safetensors"
    checkpoint.save(m, path)
    return path.read_bytes()


def load_bytes(tmp_path: Path, data: bytes) -> CharModel:
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    return checkpoint.load(path)


def assert_user_error(tmp_path: Path, data: bytes) -> str:
    with pytest.raises(UserError) as e:
        load_bytes(tmp_path, data)
    msg = str(e.value)
    assert msg and "\n" not in msg and "\r" not in msg and len(msg) < 500, msg
    return msg


def load_or_user_error(tmp_path: Path, data: bytes) -> None:
    """Either a model (a harmless mutation) or one clear line; anything else fails the test."""
    try:
        m = load_bytes(tmp_path, data)
    except UserError as e:
        assert "\n" not in str(e) and len(str(e)) < 500, str(e)
    else:
        assert all(np.isfinite(a).all() for a in m.params.values())


def with_header(header: object, data: bytes = b"", raw_len: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if raw_len is None else raw_len) + text + data


# ----------------------------------------------------------------------------- random input
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    assert_user_error(tmp_path, data)


@FUZZ
@given(text=st.binary(max_size=200), tail=st.binary(max_size=64))
def test_random_header_behind_a_plausible_length(tmp_path: Path, text: bytes, tail: bytes) -> None:
    assert_user_error(tmp_path, with_header(text, tail))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_entry = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F64", "I32", "BOOL", "F16", "BF16", "X", 3]),
        "shape": st.lists(st.integers(-2, 2**40), max_size=3) | _json,
        "data_offsets": st.lists(st.integers(-2, 2**66), min_size=0, max_size=3) | _json,
    }
)
_names = st.sampled_from(["rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.bias", "x", "__metadata__"])


@FUZZ
@given(header=st.dictionaries(_names, _entry | _json, max_size=4), tail=st.binary(max_size=64))
def test_structured_hostile_headers(tmp_path: Path, header: dict, tail: bytes) -> None:
    assert_user_error(tmp_path, with_header(header, tail))


@FUZZ
@given(pos=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_one_mutated_byte(tmp_path: Path, valid: bytes, pos: int, byte: int) -> None:
    data = bytearray(valid)
    data[pos % len(data)] = byte
    load_or_user_error(tmp_path, bytes(data))


def test_every_truncation(tmp_path: Path, valid: bytes) -> None:
    assert load_bytes(tmp_path, valid).config.cell == "gru"
    for n in range(len(valid)):
        msg = assert_user_error(tmp_path, valid[:n])
        assert "truncated" in msg or "not a safetensors file" in msg or "corrupt" in msg, (n, msg)


def test_trailing_garbage(tmp_path: Path, valid: bytes) -> None:
    assert "stray bytes" in assert_user_error(tmp_path, valid + b"\0" * 8)


# ----------------------------------------------------------------------------- hostile headers
def test_absurd_header_lengths(tmp_path: Path) -> None:
    for n in (2**64 - 1, 2**63, 2**40, checkpoint.stf.MAX_HEADER_BYTES + 1):
        msg = assert_user_error(tmp_path, with_header(b"{}", raw_len=n))
        assert "header length" in msg or "truncated" in msg, msg
    assert "truncated" in assert_user_error(tmp_path, with_header(b"{}", raw_len=1000))


@pytest.mark.parametrize(
    "entry,expected",
    [
        ({"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 16]}, "needs"),
        ({"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}, "truncated"),
        ({"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}, "shape"),
        ({"dtype": "F32", "shape": [True, 4], "data_offsets": [0, 16]}, "shape"),
        ({"dtype": "F32", "shape": [2.0, 2], "data_offsets": [0, 16]}, "shape"),
        ({"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}, "shape"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [0, 2**64 + 16]}, "needs"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}, "needs"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}, "starts at byte 8"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [0]}, "data_offsets"),
        ({"dtype": "F32", "shape": [4]}, "needs exactly"),
        ({"dtype": "complex", "shape": [4], "data_offsets": [0, 16]}, "unknown dtype"),
    ],
)
def test_absurd_shapes_and_offsets(tmp_path: Path, entry: dict, expected: str) -> None:
    msg = assert_user_error(tmp_path, with_header({"head.bias": entry}, b"\0" * 16))
    assert expected in msg, msg


def test_overlapping_regions_and_duplicate_keys(tmp_path: Path) -> None:
    e = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    msg = assert_user_error(tmp_path, with_header({"a": e, "b": e}, b"\0" * 16))
    assert "starts at byte 0, expected 16" in msg
    dup = b'{"a":' + json.dumps(e).encode() + b',"a":' + json.dumps(e).encode() + b"}"
    assert "duplicate key" in assert_user_error(tmp_path, with_header(dup, b"\0" * 16))


@pytest.mark.parametrize(
    "text",
    [b"[" * 100_000, b"\xff\xfe{}", b"{} trailing", b"[]", b'{"__metadata__": {"vocab": 3}}', b"{"],
)
def test_corrupt_header_json(tmp_path: Path, text: bytes) -> None:
    assert "corrupt" in assert_user_error(tmp_path, with_header(text))


def test_empty_header_has_no_model(tmp_path: Path) -> None:
    assert "vocab" in assert_user_error(tmp_path, with_header({}))


# ----------------------------------------------------------------------------- pickles
class _Payload:
    """Unpickling this creates the marker file: the proof that something was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def test_torch_save_renamed(tmp_path: Path) -> None:
    sd = {"rnn.weight_ih_l0": torch.zeros(2, 3)}
    torch.save(sd, tmp_path / "zip.safetensors")
    torch.save(sd, tmp_path / "legacy.safetensors", _use_new_zipfile_serialization=False)
    for name, kind in [("zip", "zip archive"), ("legacy", "pickle")]:
        with pytest.raises(UserError) as e:
            checkpoint.load(tmp_path / f"{name}.safetensors")
        assert kind in str(e.value) and "rnn-dissect convert" in str(e.value)
        assert "never unpickled" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickle_payload_is_never_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int
) -> None:
    marker = tmp_path / "EXECUTED"
    blob = pickle.dumps({"head.bias": _Payload(marker)}, protocol=protocol)
    assert not marker.exists()

    def refuse(*a, **k):
        raise AssertionError("something tried to unpickle the checkpoint")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    for path in (tmp_path / "evil.safetensors", tmp_path / "model.safetensors"):
        path.write_bytes(blob)
        with pytest.raises(UserError) as e:
            checkpoint.load(path if path.name.startswith("evil") else tmp_path)
        assert "\n" not in str(e.value)
    torch.save({"head.bias": _Payload(marker)}, tmp_path / "evil_zip.safetensors")
    with pytest.raises(UserError, match="zip archive"):
        checkpoint.load(tmp_path / "evil_zip.safetensors")
    assert not marker.exists()
