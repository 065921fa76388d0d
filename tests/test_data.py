"""Corpus reading, encoding and truncated-BPTT batching."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_dissect.errors import UserError
from rnn_dissect.train import data
from rnn_dissect.train.data import Streams, load_corpus


def decode(c: data.Corpus, idx: np.ndarray) -> str:
    return "".join(c.vocab[i] for i in np.asarray(idx).ravel())


def test_encoding_round_trips_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_CHUNK", 7)  # split multi-byte characters between reads
    text = "héllo wörld — ünïcode ✓\n" * 5
    p = tmp_path / "a.txt"
    p.write_text(text, encoding="utf-8")
    q = tmp_path / "b.txt"
    q.write_text("zz", encoding="utf-8")
    c = load_corpus([p, q])
    assert decode(c, c.data) == text + "zz"
    assert list(c.vocab) == sorted(set(text + "z"))


def test_large_corpus_is_memory_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_MEMMAP_ABOVE", 10)
    p = tmp_path / "a.txt"
    p.write_text("abcabcabcabc-" * 10)
    c = load_corpus([p], cache_dir=tmp_path / "cache")
    assert isinstance(c.data, np.memmap)
    assert (tmp_path / "cache" / "corpus.bin").stat().st_size == len(c) * c.data.itemsize
    assert decode(c, c.data) == "abcabcabcabc-" * 10


def test_default_corpus_is_python_source_in_printable_ascii():
    c = load_corpus()
    assert len(c) > 100_000 and len(c.vocab) <= 100
    head = decode(c, c.data[:200_000])
    assert "def " in head and "import " in head and "(" in head and '"' in head


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda d: d / "missing.txt", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "e.txt", b""), "is empty"),
        (lambda d: _write(d / "b.bin", b"abc\x00def"), "NUL byte at offset 3"),
        (lambda d: _write(d / "u.txt", b"ok \xff\xfe"), "not valid UTF-8 (byte 0xff at offset 3)"),
    ],
)
def test_bad_files_give_one_clear_line(tmp_path, make, needle):
    with pytest.raises(UserError) as e:
        load_corpus([make(tmp_path)])
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_invalid_utf8_can_be_replaced(tmp_path):
    c = load_corpus([_write(tmp_path / "u.txt", b"ok \xff!")], errors="replace")
    assert decode(c, c.data) == "ok \ufffd!"


def test_fixed_vocab_rejects_new_characters(tmp_path):
    p = _write(tmp_path / "a.txt", b"abcd")
    assert load_corpus([p], vocab=list("dcba")).data.tolist() == [3, 2, 1, 0]
    with pytest.raises(UserError, match="not in the model's vocabulary"):
        load_corpus([p], vocab=list("abc"))


def test_streams_continue_where_the_last_step_ended():
    text = np.arange(1000) % 250
    s = Streams(text.astype(np.uint8), batch=4, seq_len=10)
    assert s.stream_len == 250 and s.steps_per_epoch == 24
    x0, y0, reset0 = s.batch_at(0)
    x1, _, reset1 = s.batch_at(1)
    assert reset0 and not reset1
    assert (y0[:, :-1] == x0[:, 1:]).all()  # targets are the next characters
    assert (x1[:, 0] == y0[:, -1]).all()  # step 1 starts where step 0's targets ended
    assert (x0[:, 0] == np.arange(4) * 250 % 250).all()
    assert s.batch_at(24)[2] and (s.batch_at(24)[0] == x0).all()  # wraps after an epoch


def test_streams_reject_text_that_is_too_short():
    with pytest.raises(UserError, match="too few for --batch 2"):
        Streams(np.zeros(20, dtype=np.uint8), batch=2, seq_len=10)


def test_split_keeps_the_tail_for_validation(tmp_path):
    c = load_corpus([_write(tmp_path / "a.txt", b"abcdefghij")])
    train, val = c.split(0.2)
    assert decode(c, train) == "abcdefgh" and decode(c, val) == "ij"
    with pytest.raises(UserError, match="val-frac"):
        c.split(1.0)


def _write(path, raw: bytes):
    path.write_bytes(raw)
    return path
