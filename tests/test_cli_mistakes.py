"""Mistakes a user makes at the command line, across commands: each is one ``error:`` line
naming the problem and the fix, exit code 2 (130 for Ctrl-C), no traceback, and nothing the
user had is lost or left half-written (files compared byte for byte before and after)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnn_dissect import cli
from rnn_dissect.cli import nn_cmd
from rnn_dissect.train import loop
from rnn_dissect.weights import safetensors_file as stf

TEXT = "".join(f"def f{i % 7}(x):\n    return x * {i % 5} + {i % 3}\n\n" for i in range(40))
SMALL = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch", "2", "--steps", "4",
         "--save-every", "2", "--eval-every", "2", "--sample-every", "0", "--quiet"]  # fmt: skip


def call(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc: int, err: str, *needles: str, code: int = 2) -> None:
    """Exit ``code`` and one ``error:`` line last on stderr, holding every needle."""
    assert rc == code, err
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("error: " if code == 2 else "") and err.endswith("\n"), err
    for n in needles:
        assert n in last, (n, err)


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run (its files are only read; tests that damage one copy it)."""
    d = tmp_path_factory.mktemp("run")
    (d / "code.txt").write_text(TEXT, encoding="utf-8")
    assert cli.main(["train", str(d / "code.txt"), "--out", str(d / "run"), *SMALL]) == 0
    return d / "run"


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(trained, tmp_path / "run"))


def test_export_never_replaces_a_file_that_is_not_a_page(trained, tmp_path, capsys):
    """`explore --export` once wrote its HTML over a checkpoint given by mistake."""
    model = tmp_path / "model.safetensors"
    model.write_bytes((trained / "model.safetensors").read_bytes())
    before = model.read_bytes()
    rc, _, err = call(capsys, "explore", trained, "--text", "def", "--export", model)
    one_line(rc, err, "is not an HTML page", "new file name")
    assert model.read_bytes() == before
    page = tmp_path / "page.html"  # a page it wrote may be written again
    for _ in range(2):
        assert call(capsys, "explore", trained, "--text", "def", "--export", page)[0] == 0
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    rc, _, err = call(capsys, "explore", "--export", tmp_path / "page.html" / "x.html")
    one_line(rc, err, "is a file", "existing directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "page.html"]


def test_a_failed_tour_rerun_keeps_the_previous_tour(tmp_path, capsys):
    """A rerun whose corpus is unusable stops before it removes anything of the last tour."""
    out = tmp_path / "tour"
    (out / "neurons").mkdir(parents=True)
    (out / "tour.json").write_text('{"format": "rnn-dissect/tour"}\n')
    (out / "neurons" / "neurons.json").write_text("{}\n")
    (out / "index.html").write_text("<!DOCTYPE html>\n")
    before = files(out)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    rc, _, err = call(capsys, "tour", "--corpus", empty, "--out", out, "--quiet")
    one_line(rc, err, "is empty")
    assert files(out) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "{text}", *SMALL],
        ["neurons", "{run}", "--max-chars", "50"],
        ["dissect", "{run}", "--text", "def"],
        ["rnn"],
        ["flow", "--hidden", "2", "--text", "hello"],
        ["nn"],
        ["tour", "--quiet"],
    ],
    ids=lambda a: a[0],
)
def test_out_below_a_file_is_one_line(trained, tmp_path, capsys, argv):
    """``--out notes.txt/x``: the OS's NotADirectoryError was a traceback."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    argv = [a.format(text=text, run=trained) for a in argv]
    rc, _, err = call(capsys, *argv, "--out", notes / "x")
    one_line(rc, err, "notes.txt is a file", "choose another place")
    assert notes.read_text() == "mine\n"


@pytest.mark.parametrize(
    "bad,needle",
    [
        (["--minutes", "inf"], "--minutes"),  # the budget's sizing overflowed
        (["--minutes", "-1"], "--minutes"),  # with --steps: stopped after one step, rc 0
        (["--minutes", "nan"], "--minutes"),  # with --steps: ignored
        (["--clip", "nan"], "--clip nan"),  # trained with clipping silently off
        (["--lr-min", "nan"], "--lr-min nan"),  # NaN loss after the warm-up, blamed on --lr
    ],
)
def test_train_refuses_nonsense_numbers(tmp_path, capsys, bad, needle):
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    out = tmp_path / "run"
    rc, _, err = call(capsys, "train", text, "--out", out, *SMALL, *bad)
    one_line(rc, err, needle)
    assert not out.exists()


def _truncate(run: Path) -> str:
    p = run / "trainer.safetensors"
    p.write_bytes(p.read_bytes()[:-100])
    return "is truncated"


def _nan_weights(run: Path) -> str:
    p = run / "trainer.safetensors"
    arrays = stf.read_tensors(p)
    arrays["param.head.bias"] = np.full_like(arrays["param.head.bias"], np.nan)
    stf.write(p, stf.read_header(p).metadata, arrays)
    return "NaN or Inf"


def _config_type(run: Path) -> str:
    p = run / "config.json"
    doc = json.loads(p.read_text())
    doc["train"]["hidden_size"] = "big"
    p.write_text(json.dumps(doc))
    return "train.hidden_size"


@pytest.mark.parametrize("damage", [_truncate, _nan_weights, _config_type])
def test_resume_from_a_damaged_run_is_one_line_and_changes_nothing(run_copy, capsys, damage):
    needle = damage(run_copy)
    before = files(run_copy)
    rc, _, err = call(capsys, "train", "--resume", "--out", run_copy, "--steps", 8, "--quiet")
    one_line(rc, err, needle, "--force")
    assert files(run_copy) == before


def test_a_trainer_state_is_not_taken_for_a_checkpoint(trained, capsys):
    """It was refused as 'a newer file? upgrade rnn-dissect'."""
    rc, _, err = call(capsys, "sample", trained / "trainer.safetensors", "--length", 5)
    one_line(rc, err, "training state, not a model checkpoint", "model.safetensors")


def test_out_of_memory_and_ctrl_c_are_one_line(capsys, monkeypatch):
    def oom(args):
        raise MemoryError("Unable to allocate 74.5 GiB")

    monkeypatch.setattr(nn_cmd, "run", oom)
    one_line(*call(capsys, "nn")[::2], "out of memory", "74.5 GiB", "--hidden")

    def ctrl_c(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn_cmd, "run", ctrl_c)
    one_line(*call(capsys, "nn")[::2], "interrupted", code=130)


def test_ctrl_c_before_the_first_checkpoint_says_so(tmp_path, capsys, monkeypatch):
    """It claimed '…/model.safetensors holds the last checkpoint' when there was none."""
    text = tmp_path / "code.txt"
    text.write_text(TEXT)

    def ctrl_c(self, time_limit=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.Trainer, "fit", ctrl_c)
    rc, _, err = call(capsys, "train", text, "--out", tmp_path / "run", *SMALL)
    one_line(rc, err, "no checkpoint yet", "--force", code=130)


def test_explore_refuses_the_neurons_of_another_model(trained, tmp_path, capsys):
    """The rankings of an LSTM H=8 were shown on a GRU H=12's units without a word."""
    n = tmp_path / "neurons"
    assert call(capsys, "neurons", trained, "--out", n, "--max-chars", 60)[0] == 0
    gru = tmp_path / "gru"
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    assert call(capsys, "train", text, "--out", gru, *SMALL, "--cell", "gru")[0] == 0
    page = tmp_path / "page.html"
    rc, _, err = call(capsys, "explore", gru, "--neurons", n, "--export", page)
    one_line(rc, err, "another model (lstm H=8)", "gru H=8 L=1")
    assert not page.exists()
    assert call(capsys, "explore", trained, "--neurons", n, "--export", page)[0] == 0


def test_resume_on_another_text_is_refused(run_copy, tmp_path, capsys):
    """FILE arguments on --resume replaced the run's text silently (its split too); the same
    text moved elsewhere still resumes."""
    other = tmp_path / "other.txt"
    other.write_text(TEXT[: len(TEXT) // 2])
    before = files(run_copy)
    rc, _, err = call(capsys, "train", other, "--resume", "--out", run_copy, "--steps", 6)
    one_line(rc, err, "a resumed run keeps its text", "another --out")
    assert files(run_copy) == before
    moved = tmp_path / "moved.txt"
    moved.write_text(TEXT)
    rc, _, err = call(capsys, "train", moved, "--resume", "--out", run_copy, "--steps", 6)
    assert rc == 0, err


def test_a_full_disk_keeps_the_previous_output(tmp_path, capsys, monkeypatch):
    """`rnn`, `nn`, `flow` and `neurons` wrote their files in place: a full disk left a torn
    dissection.json and a traceback."""
    import errno
    import os

    out = tmp_path / "out"
    assert call(capsys, "rnn", "--out", out)[0] == 0
    before = files(out)

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    rc, _, err = call(capsys, "rnn", "--text", "hello world", "--out", out)
    one_line(rc, err, "No space left on device", "previous file is intact")
    assert files(out) == before


def test_files_of_the_wrong_kind_say_what_to_pass(trained, tmp_path, capsys):
    """A snapshot's norms file was 'a newer file? upgrade rnn-dissect'; a text file named only
    its header length."""
    norms = tmp_path / "param_norms.safetensors"
    stf.write(norms, {"format": "rnn-dissect/unit-norms-1"}, {"x": np.zeros(2, np.float32)})
    rc, _, err = call(capsys, "sample", norms)
    one_line(rc, err, "'rnn-dissect/unit-norms-1' file, not a model checkpoint")
    text = tmp_path / "notes.txt"
    text.write_text(TEXT)
    for argv in (["sample", text], ["dissect", text, "--text", "de"]):
        one_line(*call(capsys, *argv)[::2], "not a safetensors file", "pass a .safetensors")


def test_a_tour_corpus_too_short_names_the_length_it_needs(tmp_path, capsys):
    """It said 'lower --batch or --seq-len', flags the tour does not have."""
    short = tmp_path / "short.txt"
    short.write_text("def f(x): return x\n")
    rc, _, err = call(capsys, "tour", "--corpus", short, "--out", tmp_path / "t", "--quiet")
    one_line(rc, err, "too short for the tour", "at least 2,190 characters")
    assert "--seq-len" not in err


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_force_never_removes_files_that_are_not_a_run(tmp_path, capsys, force):
    """`--force` (which the refusal itself suggested) deleted a project's own config.json and
    snapshots/ folder: the names a run uses."""
    proj = tmp_path / "proj"
    (proj / "snapshots").mkdir(parents=True)
    (proj / "config.json").write_text('{"my": "settings"}\n')
    (proj / "snapshots" / "a.png").write_bytes(b"mine")
    before = files(proj)
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    rc, _, err = call(capsys, "train", text, "--out", proj, *SMALL, *force)
    one_line(rc, err, "not empty and holds no run", "--force replaces only a run")
    assert files(proj) == before


def test_neurons_never_removes_a_folder_named_activations_it_did_not_write(
    trained, tmp_path, capsys
):
    """Streamed activations go to OUT/activations, removed at the end: a user's own folder of
    that name went with them."""
    out = tmp_path / "out"
    (out / "activations").mkdir(parents=True)
    (out / "activations" / "mine.txt").write_text("mine")
    text = tmp_path / "long.txt"
    text.write_text(TEXT * 6)  # > 1 MB of activations: streamed
    argv = ["neurons", trained, "--out", out, "--text", text, "--memory-mb", 1]
    one_line(*call(capsys, *argv)[::2], "is not a folder of activations", "another --out")
    assert (out / "activations" / "mine.txt").read_text() == "mine"
    (out / "activations" / "mine.txt").unlink()
    assert call(capsys, *argv)[0] == 0  # an empty one is used, then removed
    assert not (out / "activations").exists()


def test_a_refused_out_keeps_its_own_cache_folder(tmp_path, capsys):
    """`train --out ~` was refused ('not empty') and then removed ~/.cache: the command
    cleared OUT/.cache (its scratch encoding of a large corpus) whatever happened."""
    home = tmp_path / "home"
    (home / ".cache" / "pip").mkdir(parents=True)
    (home / ".cache" / "pip" / "wheel").write_bytes(b"mine")
    (home / ".cache" / "corpus.bin").write_bytes(b"mine too")  # the name of its own scratch
    (home / "notes.txt").write_text("mine")
    before = files(home)
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    for force in ([], ["--force"]):
        rc, _, err = call(capsys, "train", text, "--out", home, *SMALL, *force)
        one_line(rc, err, "not empty")
        assert files(home) == before


def test_a_leftover_corpus_cache_does_not_block_a_new_run(tmp_path, capsys):
    """A run killed while encoding a large corpus leaves OUT/.cache/corpus.bin only; now that
    --force replaces only runs, that folder must not make OUT 'not empty'."""
    out = tmp_path / "run"
    (out / ".cache").mkdir(parents=True)
    (out / ".cache" / "corpus.bin").write_bytes(b"\0" * 64)
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    rc, _, err = call(capsys, "train", text, "--out", out, *SMALL)
    assert rc == 0, err
    assert not (out / ".cache").exists()


def test_explore_port_in_use_and_a_foreign_host_are_one_line(capsys):
    """A port in use names --port; an address not of this machine named --port too."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, _, err = call(capsys, "explore", "--port", port, "--no-browser")
        one_line(rc, err, "Address already in use", "choose another --port")
    rc, _, err = call(capsys, "explore", "--host", "192.0.2.1", "--no-browser")  # TEST-NET-1
    one_line(rc, err, "give --host an address of this machine")


@pytest.mark.parametrize(
    "argv", [["nn", "--out", ""], ["rnn", "--out="], ["explore", "--export", ""]]
)
def test_an_empty_output_path_is_refused(tmp_path, capsys, monkeypatch, argv):
    """`--out ""` (an unset $OUT) meant the current directory: its files were overwritten."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dissection.json").write_text("mine")
    one_line(*call(capsys, *argv)[::2], "is empty (an unset variable?)")
    assert [p.name for p in tmp_path.iterdir()] == ["dissection.json"]
    assert (tmp_path / "dissection.json").read_text() == "mine"


@pytest.mark.parametrize(
    "bad,needle",
    [(["--seed", "-1"], "--seed"), (["--resume", "--force"], "choose one")],
    ids=["seed", "resume-force"],
)
def test_train_contradictions_are_one_line(run_copy, tmp_path, capsys, bad, needle):
    """--seed -1 was a numpy traceback; --resume --force resumed and ignored --force."""
    text = tmp_path / "code.txt"
    text.write_text(TEXT)
    before = files(run_copy)
    rc, _, err = call(capsys, "train", text, "--out", run_copy, *SMALL, "--steps", 6, *bad)
    one_line(rc, err, needle)
    assert files(run_copy) == before


def test_a_text_too_long_to_dissect_is_refused_before_any_work(trained, tmp_path, capsys):
    """3,000 characters once took 5.4 GB and minutes; the limit is a line, not a swap storm."""
    long = (TEXT * 3)[:2002]  # 2,001 steps: one over
    out = tmp_path / "d"
    rc, _, err = call(capsys, "dissect", trained, "--text", long, "--out", out)
    one_line(rc, err, "2,002 characters", "at most 2,001", "rnn-dissect neurons")
    assert not out.exists()
    rc, _, err = call(capsys, "rnn", "--text", long, "--out", out)
    one_line(rc, err, "at most 2,001")
    rc, _, err = call(capsys, "flow", "--text", long, "--out", out)
    one_line(rc, err, "give at most 2001")
    assert not out.exists()


def test_an_unknown_flag_shows_that_commands_usage(capsys):
    """`sample RUN --chars 200` (the flag is --length): the error comes with `sample`'s usage,
    which lists its flags, not the top level's "rnn-dissect [-h] [--version] COMMAND ..."."""
    rc, out, err = call(capsys, "sample", "no-such-run", "--chars", "200")
    assert rc == 2 and out == ""
    assert err.startswith("usage: rnn-dissect sample ") and "[--length LENGTH]" in err
    assert err.splitlines()[-1] == "rnn-dissect sample: error: unrecognized arguments: --chars 200"
    rc, _, err = call(capsys, "--bogus")  # no command: the top level's usage, as before
    assert rc == 2 and err.splitlines()[-1] == "rnn-dissect: error: unrecognized arguments: --bogus"


def test_flow_given_a_trained_model_points_to_dissect(trained, tmp_path, capsys):
    """`flow RUN_DIR` said 'unrecognized arguments'; flow compares untrained cells only."""
    rc, _, err = call(capsys, "flow", trained, "--out", tmp_path / "f")
    one_line(rc, err, "flow compares untrained cells", f"rnn-dissect dissect {trained}")
    assert not (tmp_path / "f").exists()
