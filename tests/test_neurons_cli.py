"""``rnn-dissect neurons`` end to end, in-process.

Oracles: the hand-wired LSTM of ``planted.py`` run by torch.nn.LSTM in float64 (its units
track bracket depth, quotes and line position by construction), np.corrcoef over the
activations, the features' own definitions, and the run's corpus split recomputed here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from planted import H, python_like_text
from planted import planted_lstm as make_planted
from planted import run as planted_run
from test_heatmap import Spans

from rnn_dissect import cli
from rnn_dissect.neurons.activations import load
from rnn_dissect.neurons.collect import collect
from rnn_dissect.neurons.features import builtin_features
from rnn_dissect.neurons.tuning import read_snapshots
from rnn_dissect.reports.neurons import PAGE_EXCERPT
from rnn_dissect.train.data import load_corpus
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.interop import from_torch

torch.set_num_threads(1)


def neurons(capsys, *args: object) -> tuple[int, str, str]:
    rc = cli.main(["neurons", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path, str]:
    """(checkpoint, text file, text) of the planted LSTM; the text holds markup to escape."""
    d = tmp_path_factory.mktemp("planted")
    text = python_like_text(np.random.default_rng(3), n_lines=120)
    text = 'x = "<b>&amp;"\n' + text  # markup, inside a string the quote unit toggles on
    vocab = tuple(sorted(set(text)))
    head = torch.nn.Linear(H, len(vocab), dtype=torch.float64)
    model = from_torch(make_planted(vocab), head, vocab)
    ckpt = d / "planted.safetensors"
    checkpoint.save(model, ckpt)
    f = d / "text.py"
    f.write_text(text, encoding="utf-8")
    return ckpt, f, text


def test_planted_units_rank_first_and_heatmaps_show_their_values(
    planted, tmp_path, capsys, monkeypatch
):
    ckpt, f, text = planted
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = tmp_path / "n"
    rc, stdout, err = neurons(
        capsys, ckpt, "--text", f, "--out", out, "--top", 5,
        "--unit", "0:f:0", "--regex", "br=[][(){}]",  # brackets: unit 0's input gate
    )  # fmt: skip
    assert rc == 0, err
    doc = json.loads((out / "neurons.json").read_text())
    assert doc["n_chars"] == len(text) and doc["cell"] == "lstm"
    feats = doc["features"]
    assert all(len(r) == 5 for name, r in feats.items() if name != "in_comment")  # no '#'
    assert feats["in_comment"] == []  # constant over this text: nothing to rank

    bd = feats["bracket_depth"][0]
    assert (bd["layer"], bd["kind"], bd["unit"]) == (0, "c", 0) and bd["score"] > 0.95
    assert feats["in_quote"][0]["unit"] == 1 and feats["in_quote"][0]["score"] > 0.95
    assert feats["br"][0] == {"layer": 0, "unit": 0, "kind": "i", "score": 1.0}
    lp = feats["line_position"][0]
    assert (lp["kind"], lp["unit"], lp["score"]) == ("c", 2, 1.0)

    # the scores are the correlations of torch's activations with the features
    ref = planted_run(text)  # torch.nn.LSTM, float64
    depth = builtin_features(text, ["bracket_depth"])[0].values
    r = np.corrcoef(depth, ref.arrays[(0, "c")][:, 0])[0, 1]
    assert abs(bd["score"] - r) < 1e-5
    # a random unit (4..7) does not track bracket depth
    for u in range(4, H):
        for kind in ("h", "c"):
            assert abs(np.corrcoef(depth, ref.arrays[(0, kind)][:, u])[0, 1]) < 0.5
    assert all(abs(e["score"]) < 0.5 for e in feats["bracket_depth"] if e["unit"] >= 4)

    # heatmaps.html: one span per character, values = collect's float32 = torch's (1e-6)
    p = Spans()
    p.feed((out / "heatmaps.html").read_text(encoding="utf-8"))
    n = min(PAGE_EXCERPT, len(text))
    assert "".join(p.text[:n]) == text[:n] and all(len(t) == 1 for t in p.text[:n])
    page = (out / "heatmaps.html").read_text(encoding="utf-8")
    assert ">&lt;</span>" in page and ">&amp;</span>" in page and "<b>" not in page
    ctx = json.loads((out / "contexts.json").read_text())  # the drawn units, in order
    key, u = (ctx[0]["layer"], ctx[0]["kind"]), ctx[0]["unit"]
    assert (key, u) == ((0, feats["in_quote"][0]["kind"]), 1)  # in_quote's best comes first
    acts = collect(checkpoint.load(ckpt), text)
    first = np.array([s["data-v"] for s in p.spans[:n]], dtype=np.float32)
    assert np.array_equal(first, acts.arrays[key][:n, u])  # float32, shortest round-trip
    assert np.allclose(first, ref.arrays[key][:n, u], atol=1e-6)
    assert ctx[-1]["kind"] == "f" and ctx[-1]["unit"] == 0  # the --unit asked for, drawn last

    # the terminal summary: best unit per feature with its score
    line = next(s for s in stdout.splitlines() if s.split()[:1] == ["bracket_depth"])
    assert line.split()[1:4] == ["r", "l0", "c0"] and float(line.split()[4].strip(",")) > 0.95
    _, heat = stdout.split("best overall: layer 0 h unit 1, in_quote +1.000\n")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", heat)  # FORCE_COLOR: the heatmap, ANSI colours
    assert "\x1b[" in heat and plain.startswith(text[:40]) and text.splitlines()[1] in plain


def test_exact_by_default_approximate_on_request_and_said_everywhere(planted, tmp_path, capsys):
    """A short warm-up makes many segments: by default the check repairs them (the planted
    counter scores what torch's one pass gives); --approximate skips it, and neurons.json,
    heatmaps.html and the terminal say so."""
    ckpt, f, text = planted
    ref = planted_run(text)  # torch.nn.LSTM, float64
    depth = builtin_features(text, ["bracket_depth"])[0].values
    r = np.corrcoef(depth, ref.arrays[(0, "c")][:, 0])[0, 1]
    runs = {}
    for name, flags in (("exact", []), ("approx", ["--approximate"])):
        out = tmp_path / name
        rc, stdout, err = neurons(capsys, ckpt, "--text", f, "--warmup", 20, *flags, "--out", out)
        assert rc == 0, err
        page = (out / "heatmaps.html").read_text(encoding="utf-8")
        notes = re.findall(r'<p class="note">(.*?)</p>', page)
        runs[name] = json.loads((out / "neurons.json").read_text()), notes, stdout
    doc, notes, stdout = runs["exact"]
    c = doc["collection"]
    assert c["mode"] == "exact" and c["segments"] > 10 and c["passes"] >= 2
    assert c["segments_rerun"] > 0 and c["rerun_chars"] > 0 and c["dtype"] == "float32"
    bd = doc["features"]["bracket_depth"][0]
    assert (bd["layer"], bd["kind"], bd["unit"]) == (0, "c", 0) and abs(bd["score"] - r) < 1e-5
    assert notes == [] and "exact activations: equal to one sequential pass" in stdout

    doc, notes, stdout = runs["approx"]
    assert doc["collection"] == {
        "mode": "approximate", "segments": c["segments"], "warmup": 20, "dtype": "float32",
        "passes": 1,
    }  # fmt: skip
    score = next(e["score"] for e in doc["features"]["bracket_depth"] if e["unit"] == 0)
    assert score < r - 0.05  # the counter's segments started from zero: wrong
    assert len(notes) == 1 and notes[0].startswith("APPROXIMATE activations: ")
    assert "--approximate" in notes[0] and "APPROXIMATE activations" in stdout


def test_layer_unknown_characters_and_streaming(planted, tmp_path, capsys):
    ckpt, _, text = planted
    g = tmp_path / "accents.py"
    g.write_text("é" + text + "ü", encoding="utf-8")
    rc, _, err = neurons(capsys, ckpt, "--text", g, "--out", tmp_path / "x")
    assert rc == 2 and err.count("\n") == 1 and "--unknown drop" in err and "'éü'" in err

    out = tmp_path / "d"  # dropped: the text is the planted one again, streamed to disk
    rc, _, err = neurons(capsys, ckpt, "--text", g, "--unknown", "drop", "--layer", 0,
                         "--max-chars", 700, "--memory-mb", 1, "--keep-activations",
                         "--out", out)  # fmt: skip
    assert rc == 0, err
    streamed = load(out / "activations")
    assert streamed.text == text[:700]
    direct = collect(checkpoint.load(ckpt), text[:700])
    for key, a in direct.arrays.items():
        assert np.array_equal(streamed.arrays[key], a)
    assert json.loads((out / "neurons.json").read_text())["n_chars"] == 700

    rc, _, err = neurons(capsys, ckpt, "--text", g, "--unknown", "replace", "--out", out)
    assert rc == 0, err
    assert json.loads((out / "neurons.json").read_text())["n_chars"] == len(text) + 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("run")
    text = python_like_text(np.random.default_rng(7), n_lines=400)
    f = d / "corpus.py"
    f.write_text(text, encoding="utf-8")
    args = (
        f"train {f} --out {d / 'run'} --cell gru --hidden 8 --layers 2 --seq-len 16 --batch 4 "
        "--steps 20 --warmup 2 --snapshot-every 10 --probe-chars 300 --eval-every 10 "
        "--sample-every 0 --val-frac 0.2 --quiet"
    ).split()
    assert cli.main(args) == 0
    return d / "run", text


def test_a_training_run_gives_tuning_over_training(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    out = tmp_path / "n"
    rc, stdout, err = neurons(capsys, run, "--out", out)
    assert rc == 0, err
    assert "of the run's validation text" in err and "tuning over training" in stdout
    corpus = load_corpus([run.parent / "corpus.py"])
    val = "".join(corpus.vocab[i] for i in corpus.split(0.2)[1])  # --val-frac 0.2: the tail
    doc = json.loads((out / "neurons.json").read_text())
    assert doc["n_chars"] == len(val) and doc["cell"] == "gru"

    tun = json.loads((out / "tuning.json").read_text())
    assert set(tun) == {k for k, v in doc["features"].items() if v}
    snaps = {s.step: s.acts for s in read_snapshots(run)}
    assert sorted(snaps) == [0, 10, 20]
    probe = snaps[0].text
    assert probe == val[:300]
    # the last snapshot is the final model on the probe text, read in one pass
    final = collect(checkpoint.load(run), probe, warmup=len(probe))
    for key, a in final.arrays.items():
        assert np.array_equal(snaps[20].arrays[key], a)
    assert snaps[20].collection["segments"] == 1
    # line_position: best unit at the last step, and its correlation at every step
    lp = tun["line_position"]
    assert lp["steps"] == [0, 10, 20]
    pos = builtin_features(probe, ["line_position"])[0].values
    key = (lp["layer"], lp["kind"])
    r_last = [np.corrcoef(pos, col)[0, 1] for col in snaps[20].arrays[key].T.astype(np.float64)]
    assert lp["unit"] == int(np.nanargmax(np.abs(r_last)))
    want = [np.corrcoef(pos, snaps[s].arrays[key][:, lp["unit"]])[0, 1] for s in (0, 10, 20)]
    assert np.allclose(lp["scores"], want, atol=1e-5)
    for name in ("score_curves.png", "score_curves.svg", "saturation.svg", "heatmaps.html"):
        assert (out / name).stat().st_size > 0
    assert (out / f"unit_l{lp['layer']}_{lp['kind']}{lp['unit']}.png").is_file()

    # a run of the older layout (activations in the snapshots, no weights) gives the same
    old = tmp_path / "old"
    shutil.copytree(run, old)
    for sd in (old / "snapshots").iterdir():
        snaps[int(sd.name[4:])].save(sd)
        (sd / "model.safetensors").unlink()
        (sd / "probe.txt").unlink()
    rc, _, err = neurons(capsys, old, "--out", tmp_path / "o")
    assert rc == 0, err
    for name in ("tuning.json", "neurons.json", "contexts.json"):
        assert (tmp_path / "o" / name).read_text() == (out / name).read_text(), name

    rc, _, err = neurons(capsys, run, "--layer", 1, "--out", tmp_path / "l1")
    assert rc == 0, err
    doc1 = json.loads((tmp_path / "l1" / "neurons.json").read_text())
    assert {e["layer"] for r in doc1["features"].values() for e in r} == {1}
    tun1 = json.loads((tmp_path / "l1" / "tuning.json").read_text())
    assert {c["layer"] for c in tun1.values()} == {1}

    moved = tmp_path / "moved"  # a run whose corpus is gone: say so, suggest --text
    moved.mkdir()
    (moved / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    cfg = json.loads((run / "config.json").read_text())
    cfg["train"]["files"] = [str(tmp_path / "gone.py")]
    (moved / "config.json").write_text(json.dumps(cfg))
    rc, _, err = neurons(capsys, moved, "--out", tmp_path / "m")
    assert rc == 2 and err.count("\n") == 1 and "gone.py" in err and "--text FILE" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["{tmp}/nope"], "does not exist"),
        (["{text}"], "not a safetensors file"),
        (["{tmp}"], "model.safetensors"),  # a directory that is not a run
        (["{ckpt}", "--unit", "0-c-1"], "LAYER:KIND:UNIT"),
        (["{ckpt}", "--unit", "0:z:1"], "no kind 'z'"),
        (["{ckpt}", "--unit", "0:h:99"], "unit 99 does not exist"),
        (["{ckpt}", "--unit", "3:h:1"], "layer 3 does not exist"),
        (["{ckpt}", "--regex", "nopattern"], "NAME=PATTERN"),
        (["{ckpt}", "--regex", "x=("], "bad regular expression"),
        (["{ckpt}", "--regex", "digit=[0-9]"], "built-in"),
        (["{ckpt}", "--layer", "1"], "--layer 1 does not exist"),
        (["{ckpt}", "--text", "{tmp}/missing.txt"], "does not exist"),
        (["{ckpt}", "--best"], "--best needs a run directory"),
        (["{ckpt}", "--top", "0"], "≥ 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(planted, tmp_path, capsys, args, needle):
    ckpt, f, _ = planted
    argv = [a.format(tmp=tmp_path, text=f, ckpt=ckpt) for a in args]
    if "--text" not in argv:
        argv += ["--text", str(f)]
    rc, out, err = neurons(capsys, *argv, "--out", tmp_path / "o")
    assert rc == 2, err
    assert re.fullmatch(r"error: [^\n]+\n", err), err
    assert needle in err and out == ""
