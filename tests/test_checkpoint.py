"""Checkpoints: byte-exact round trips, the metadata contract, atomic writes, clear errors.

Oracles: the safetensors library and PyTorch read our files independently; a second save
of a loaded model must reproduce the first file byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy as stn
import safetensors.torch
import torch

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig, param_shapes
from rnn_dissect.weights import checkpoint

VOCAB = tuple("helo wrd\n")
CELLS = ("rnn", "lstm", "gru")


def model(
    cell: str = "lstm", layers: int = 2, hidden: int = 5, dtype: type = np.float64, seed: int = 0
):
    return CharModel.init(ModelConfig(cell, VOCAB, hidden, layers), seed=seed, dtype=dtype)


def raw(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> Path:
    """Write with the safetensors library itself (it accepts any dtype and any names)."""
    stn.save_file(tensors, str(path), metadata=metadata)
    return path


def meta_of(m: CharModel) -> dict[str, str]:
    c = m.config
    return {
        "format": "rnn-dissect/1",
        "cell": c.cell,
        "hidden_size": str(c.hidden_size),
        "num_layers": str(c.num_layers),
        "vocab": json.dumps(list(c.vocab)),
    }


def user_error(path: Path) -> str:
    with pytest.raises(UserError) as e:
        checkpoint.load(path)
    msg = str(e.value)
    assert msg and "\n" not in msg and len(msg) < 400, msg
    return msg


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_round_trip_is_byte_identical(tmp_path: Path, cell: str, layers: int, dtype: type) -> None:
    m = model(cell, layers, hidden=4, dtype=dtype, seed=layers)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    checkpoint.save(m, a)
    m2 = checkpoint.load(a)
    assert m2.config == m.config
    assert list(m2.params) == list(param_shapes(m.config))
    for k, v in m.params.items():
        assert m2.params[k].dtype == dtype and m2.params[k].tobytes() == v.tobytes(), k
        assert m2.params[k].flags.writeable  # a trainer updates them in place
    checkpoint.save(m2, b)
    assert a.read_bytes() == b.read_bytes()  # safetensors → model → safetensors: same bytes
    # the reference reader sees exactly our tensors and the metadata contract
    theirs = stn.load_file(str(a))
    assert {k: v.tobytes() for k, v in theirs.items()} == {
        k: v.tobytes() for k, v in m.params.items()
    }
    with safetensors.safe_open(str(a), "np") as f:
        assert f.metadata() == meta_of(m)


@pytest.mark.parametrize("cell", CELLS)
def test_loads_into_torch_modules_unchanged(tmp_path: Path, cell: str) -> None:
    """The contract of issue 3/4: the state dict loads into nn.RNN/LSTM/GRU + nn.Linear."""
    m = model(cell, layers=2, hidden=6, dtype=np.float32)
    checkpoint.save(m, tmp_path / "m.safetensors")
    sd = safetensors.torch.load_file(str(tmp_path / "m.safetensors"))
    rnn = getattr(torch.nn, cell.upper())(len(VOCAB), 6, num_layers=2)
    head = torch.nn.Linear(6, len(VOCAB))
    rnn.load_state_dict({k[4:]: v for k, v in sd.items() if k.startswith("rnn.")}, strict=True)
    head.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("head.")}, strict=True)
    for k, p in [
        *(("rnn." + n, p) for n, p in rnn.named_parameters()),
        *(("head." + n, p) for n, p in head.named_parameters()),
    ]:
        assert np.array_equal(p.detach().numpy(), m.params[k]), k


def test_same_model_same_bytes_whatever_the_metadata_order(tmp_path: Path) -> None:
    m = model()
    checkpoint.save(m, tmp_path / "a.safetensors", {"step": "7", "note": "x"})
    checkpoint.save(m, tmp_path / "b.safetensors", {"note": "x", "step": "7"})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert checkpoint.read_info(tmp_path / "a.safetensors").metadata["step"] == "7"
    header_len = int.from_bytes((tmp_path / "a.safetensors").read_bytes()[:8], "little")
    assert header_len % 8 == 0  # tensor data starts aligned


@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("lstm", 3), ("gru", 2)])
def test_minimal_issue3_file_is_inferred(tmp_path: Path, cell: str, layers: int) -> None:
    """Only torch-named tensors plus `vocab`: cell from rows/cols of weight_hh, layers from names."""
    m = model(cell, layers, hidden=3)
    path = raw(tmp_path / "w.safetensors", m.params, {"vocab": json.dumps(list(VOCAB))})
    m2 = checkpoint.load(path)
    assert m2.config == m.config
    assert all(np.array_equal(m2.params[k], v) for k, v in m.params.items())


def test_run_directory_loads_its_model(tmp_path: Path) -> None:
    m = model("gru", 1)
    checkpoint.save(m, tmp_path / "model.safetensors")
    assert checkpoint.load(tmp_path).config == m.config


# ----------------------------------------------------------------------------- atomic writes
def test_disk_full_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    checkpoint.save(model(seed=1), path)
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match=r"No space left on device.*previous file is intact"):
        checkpoint.save(model(seed=2), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temp file left behind


def test_interrupt_mid_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    checkpoint.save(model(seed=1), path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(model(seed=2), path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.safetensors"]


def test_save_refuses_nan_and_reserved_metadata(tmp_path: Path) -> None:
    m = model()
    m.params["head.bias"][0] = np.nan
    with pytest.raises(UserError, match=r"head\.bias"):
        checkpoint.save(m, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(ValueError, match="vocab"):
        checkpoint.save(model(), tmp_path / "m.safetensors", {"vocab": "[]"})
    with pytest.raises(UserError, match="does not exist"):
        checkpoint.save(model(), tmp_path / "no" / "m.safetensors")


# ----------------------------------------------------------------------------- clear errors
def _variant(tmp_path: Path, edit) -> Path:
    """A valid float64 LSTM file with ``edit(tensors, metadata)`` applied."""
    m = model("lstm", 2, hidden=4)
    tensors, meta = dict(m.params), meta_of(m)
    edit(tensors, meta)
    return raw(tmp_path / "v.safetensors", tensors, meta)


def _set(d: dict, k: str, v) -> None:
    d[k] = v


CASES = {
    "unknown format": (lambda t, m: _set(m, "format", "rnn-dissect/2"), "rnn-dissect/2"),
    "missing tensor": (lambda t, m: t.pop("head.bias"), "missing 'head.bias'"),
    "extra tensor": (
        lambda t, m: _set(t, "embed.weight", np.zeros(3)),
        "unexpected 'embed.weight'",
    ),
    "wrong shape": (
        lambda t, m: _set(t, "rnn.weight_hh_l1", np.zeros((16, 5))),
        "rnn.weight_hh_l1 has shape (16, 5), expected (16, 4)",
    ),
    "int32": (
        lambda t, m: _set(t, "head.weight", np.zeros((9, 4), np.int32)),
        "head.weight is I32",
    ),
    "bool": (lambda t, m: _set(t, "head.bias", np.zeros(9, bool)), "head.bias is BOOL"),
    "float16": (lambda t, m: _set(t, "head.bias", np.zeros(9, np.float16)), "head.bias is F16"),
    "mixed dtypes": (lambda t, m: _set(t, "head.bias", np.zeros(9, np.float32)), "mixes float32"),
    "nan": (lambda t, m: t["rnn.bias_ih_l0"].__setitem__(3, np.nan), "'rnn.bias_ih_l0' hold NaN"),
    "inf": (
        lambda t, m: t["head.weight"].__setitem__((0, 0), -np.inf),
        "'head.weight' hold NaN or Inf",
    ),
    "vocab not json": (lambda t, m: _set(m, "vocab", "[h, e]"), "not valid JSON"),
    "vocab not chars": (
        lambda t, m: _set(m, "vocab", json.dumps(["he", *VOCAB[2:]])),
        "characters",
    ),
    "vocab not a list": (lambda t, m: _set(m, "vocab", '"helo wrd"'), "characters"),
    "vocab repeated": (lambda t, m: _set(m, "vocab", json.dumps([*VOCAB[:-1], "h"])), "twice"),
    "vocab missing": (lambda t, m: m.pop("vocab"), "no `vocab`"),
    "vocab size": (lambda t, m: _set(m, "vocab", json.dumps(list(VOCAB[:-1]))), "rnn.weight_ih_l0"),
    "hidden inconsistent": (lambda t, m: _set(m, "hidden_size", "5"), "expected (20, 9)"),
    "layers inconsistent": (lambda t, m: _set(m, "num_layers", "3"), "num_layers is 3 but"),
    "hidden not a number": (lambda t, m: _set(m, "hidden_size", "4.0"), "whole number"),
    "unknown cell": (lambda t, m: _set(m, "cell", "transformer"), "rnn, lstm or gru"),
    "wrong cell": (lambda t, m: _set(m, "cell", "gru"), "expected (12, 9)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoint_is_one_clear_line(tmp_path: Path, case: str) -> None:
    edit, expected = CASES[case]
    msg = user_error(_variant(tmp_path, edit))
    assert expected in msg and str(tmp_path) in msg, msg


def test_missing_and_directory(tmp_path: Path) -> None:
    assert "does not exist" in user_error(tmp_path / "nope.safetensors")
    assert "without model.safetensors" in user_error(tmp_path)
    os.mkfifo(tmp_path / "pipe.safetensors")  # reading it would block forever
    assert "not a regular file" in user_error(tmp_path / "pipe.safetensors")


def test_minimal_file_with_unusable_shapes(tmp_path: Path) -> None:
    vocab = {"vocab": json.dumps(list(VOCAB))}
    p = raw(tmp_path / "a.safetensors", {"rnn.weight_hh_l0": np.zeros((10, 5))}, vocab)
    assert "rows/cols must be 1, 3 or 4" in user_error(p)
    p = raw(tmp_path / "b.safetensors", {"w": np.zeros((3, 3))}, vocab)
    assert "not an RNN state dict" in user_error(p)


def test_a_relu_rnn_keeps_its_nonlinearity(tmp_path):
    """The config carries the nonlinearity: a relu RNN saved and loaded is still relu (the
    metadata says so; tanh files have no such key), its unroll equals torch's
    nn.RNN(nonlinearity="relu") in float64, and the tanh-only paths refuse it in one line."""
    from rnn_dissect.bptt.unroll import bptt
    from rnn_dissect.nets.forward import Forward
    from rnn_dissect.weights.interop import to_torch

    m = CharModel.init(ModelConfig("rnn", tuple("abc"), 4, 2, nonlinearity="relu"), seed=3)
    checkpoint.save(m, tmp_path / "relu.safetensors")
    checkpoint.save(CharModel.init(ModelConfig("rnn", tuple("abc"), 4)), tmp_path / "t.safetensors")
    assert checkpoint.read_info(tmp_path / "relu.safetensors").metadata["nonlinearity"] == "relu"
    assert "nonlinearity" not in checkpoint.read_info(tmp_path / "t.safetensors").metadata
    back = checkpoint.load(tmp_path / "relu.safetensors")
    assert back.config == m.config
    x, y = np.array([0, 1, 2, 1, 0]), np.array([1, 2, 1, 0, 2])
    run = bptt(back, x, y)
    rnn, head = to_torch(back)
    assert rnn.nonlinearity == "relu"
    out, _ = rnn(torch.nn.functional.one_hot(torch.tensor(x), 3).double())
    loss = torch.nn.functional.cross_entropy(head(out), torch.tensor(y))
    assert abs(float(run.loss.value) - loss.item()) <= 1e-12
    with pytest.raises(UserError, match="relu RNN") as e:
        Forward.of(back)
    assert "\n" not in str(e.value)
