"""``rnn-dissect rnn`` / ``dissect``, in-process: dissection.json checked against PyTorch
autograd in float64 (fused modules and an explicitly unrolled loop), weights round trips,
size thresholds, and every bad input as one ``error:`` line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from torch_ref import loop_run, module_run, rel

from rnn_dissect.cli import main
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.reports import rnn as rnn_report
from rnn_dissect.weights import checkpoint

HELLO = CharModel.init(ModelConfig("rnn", tuple("helo"), hidden_size=3), seed=0)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def doc_of(out: Path) -> dict:
    return json.loads((out / "dissection.json").read_text(encoding="utf-8"))


def check_against_torch(
    doc: dict,
    model: CharModel,
    text: str,
    truncate: int | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> None:
    """The document's loss, gradients (h0, c0 too) and dL/dh_t, dL/dc_t equal torch's;
    ``h0``, ``c0`` (L, H) the initial state (default zeros)."""
    idx = model.encode(text)
    x, y = idx[None, :-1], idx[None, 1:]
    s0 = None if h0 is None else h0[:, None]  # (L, 1, H)
    c0_ = None if c0 is None else c0[:, None]
    loss, _, grads = module_run(model, x, y, h0=s0, c0=c0_, truncate=truncate)
    assert abs(doc["loss"] - loss) <= 1e-12 * abs(loss)
    for name, g in grads.items():
        got = np.asarray(doc["grads"][name])
        assert rel(got, g[:, 0] if name in ("h0", "c0") else g) <= 1e-10, name
    loop = loop_run(model, x, y, s0, c0_, truncate=truncate)  # dL/dh_t, every layer and step
    for k, row in enumerate(doc["dh"]):
        for t, dh in enumerate(row, start=1):
            assert rel(np.asarray(dh), loop.h[k][t].grad[0]) <= 1e-10, (k, t)
    if model.config.cell == "lstm":
        for k, row in enumerate(doc["dc"]):
            for t, dc in enumerate(row, start=1):
                assert rel(np.asarray(dc), loop.c[k][t].grad[0]) <= 1e-10, (k, t)


def test_hello_default_matches_torch(tmp_path, capsys):
    code, out, _ = run_cli(["rnn", "--out", str(tmp_path)], capsys)
    assert code == 0
    doc = doc_of(tmp_path)
    assert doc["config"]["vocab"] == ["h", "e", "l", "o"] and doc["config"]["hidden_size"] == 3
    assert doc["config"]["steps"] == 4
    check_against_torch(doc, HELLO, "hello")
    # the terminal summary shows the same loss and gradient norms
    assert f"loss {doc['loss']:.8g}" in out
    gnorm = float(np.linalg.norm(doc["grads"]["rnn.weight_hh_l0"]))
    assert f"{gnorm:.6g}" in out
    # 4 steps are too few for a label; the evidence and the bound are said instead
    v = doc["flow"]["layers"][0]["verdict"]
    assert v["label"] == "not enough steps to judge" and v["looked_back"] == 3 and v["pairs"] == 6
    assert f"gradient flow, layer 0: {v['reason']}" in out and f"  {v['bound']}\n" in out
    # the path norms are keyed by path id (jacobians.PATHS), not by a display label
    lf0 = doc["flow"]["layers"][0]
    assert list(lf0["blocks"]) == ["h_h"]
    assert lf0["blocks"]["h_h"] == [row[0] for row in lf0["singular_values"]]
    for w in ("graph.svg", "walkthrough.html", "dissection.json"):
        assert (tmp_path / w).is_file()
    # per-step contributions sum to the totals; the update is -lr * grad
    for name, terms in doc["step_grads"].items():
        total = np.sum(np.asarray(terms), axis=0)
        assert np.max(np.abs(total - np.asarray(doc["grads"][name]))) <= 1e-12, name
        delta = np.asarray(doc["weights"]["update"]["delta"][name])
        assert np.allclose(delta, -0.1 * np.asarray(doc["grads"][name]), rtol=0, atol=1e-15)
    # Q3: every cache entry's bytes = 8 × its size, and the total matches the formula
    assert sum(e["bytes"] for e in doc["cache"]) == doc["memory"]["measured_bytes"]
    assert doc["memory"]["measured_bytes"] == doc["memory"]["formula_bytes"]
    for e in doc["cache"]:
        assert e["bytes"] == 8 * int(np.prod(e["shape"]))


def test_lstm_layers_truncate_clip_json(tmp_path, capsys):
    argv = ["rnn", "--cell", "lstm", "--layers", "2", "--hidden", "4", "--text", "hello world"]
    argv += ["--truncate", "3", "--clip", "0.1", "--optimizer", "adagrad", "--json"]
    code, out, err = run_cli([*argv, "--out", str(tmp_path)], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc == doc_of(tmp_path)  # --json prints the very file
    assert "wrote" in err  # the log goes to stderr with --json
    model = CharModel.init(ModelConfig("lstm", tuple(dict.fromkeys("hello world")), 4, 2), seed=0)
    check_against_torch(doc, model, "hello world", truncate=3)
    up = doc["weights"]["update"]
    g = {k: np.asarray(v) for k, v in doc["grads"].items() if k.startswith(("rnn.", "head."))}
    norm = np.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    assert up["clip_coef"] == pytest.approx(min(1.0, 0.1 / (norm + 1e-6)), rel=1e-12)
    for k, v in g.items():  # Adagrad's first step: -lr · sign(g) for every non-zero g
        gc = v * up["clip_coef"]
        assert np.allclose(up["delta"][k], -0.1 * gc / (np.abs(gc) + 1e-10), rtol=1e-12, atol=0)


def test_weights_round_trip_checkpoint_and_minimal(tmp_path, capsys):
    assert main(["rnn", "--out", str(tmp_path / "ref")]) == 0
    ref = doc_of(tmp_path / "ref")
    ck = tmp_path / "m.safetensors"
    checkpoint.save(HELLO, ck)
    minimal = tmp_path / "min.safetensors"
    save_file(dict(HELLO.params), str(minimal), metadata={"vocab": json.dumps(list("helo"))})
    for i, w in enumerate((ck, minimal)):
        out = tmp_path / f"w{i}"
        code, _, err = run_cli(
            ["rnn", "--weights", str(w), "--text", "hello", "--out", str(out)], capsys
        )
        assert code == 0, err
        doc = doc_of(out)
        assert doc["loss"] == ref["loss"] and doc["grads"] == ref["grads"]
    # dissect: a run directory (model.safetensors inside), GRU weights, against torch
    gru = CharModel.init(ModelConfig("gru", tuple("abc "), 5), seed=3)
    rundir = tmp_path / "run"
    rundir.mkdir()
    checkpoint.save(gru, rundir / "model.safetensors")
    code, _, err = run_cli(
        ["dissect", str(rundir), "--text", "abc cab", "--out", str(tmp_path / "d")], capsys
    )
    assert code == 0, err
    check_against_torch(doc_of(tmp_path / "d"), gru, "abc cab")


def test_large_input_turns_heavy_parts_off(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rnn_report, "MAX_GRAPH_NODES", 10)
    monkeypatch.setattr(rnn_report, "KEEP_STEP_TERMS", 10)
    monkeypatch.setattr(rnn_report, "MAX_FRAMES_T", 3)
    (tmp_path / "graph.svg").write_text("stale")
    code, out, _ = run_cli(["rnn", "--out", str(tmp_path)], capsys)
    assert code == 0
    doc = doc_of(tmp_path)
    assert not (tmp_path / "graph.svg").exists()  # no stale drawing of another run is left
    assert doc["step_grads"] is None and doc["frames"] is None
    assert len(doc["notes"]) == 2 and "graph.svg is not drawn" in out
    html = (tmp_path / "walkthrough.html").read_text()
    assert "graph.svg is not drawn" in html and "walkthrough-data" not in html
    # the numbers that are kept are still exact
    ref = CharModel.init(ModelConfig("rnn", tuple("helo"), 3), seed=0)
    check_against_torch(doc, ref, "hello")


def test_initial_state_from_a_file_or_a_seed(tmp_path, capsys):
    """--h0 / --c0 from .npy, .safetensors or random:SEED, on rnn and dissect: the document's
    loss and every gradient equal torch's with that initial state."""
    model = CharModel.init(ModelConfig("lstm", tuple("helo"), 3, 2), seed=4)
    ckpt = tmp_path / "m.safetensors"
    checkpoint.save(model, ckpt)
    rng = np.random.default_rng(9)
    h0, c0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 1, 3))  # c0 in torch's batch-1 shape
    np.save(tmp_path / "h0.npy", h0)
    save_file({"c0": c0, "other": np.zeros(2)}, str(tmp_path / "state.safetensors"))
    out = tmp_path / "a"
    argv = ["dissect", str(ckpt), "--text", "hello", "--h0", str(tmp_path / "h0.npy"),
            "--c0", str(tmp_path / "state.safetensors"), "--out", str(out)]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    doc = doc_of(out)
    check_against_torch(doc, model, "hello", h0=h0, c0=c0[:, 0])
    assert doc["initial_state"]["h0"] == {"from": str(tmp_path / "h0.npy"), "value": h0.tolist()}
    assert doc["initial_state"]["c0"]["value"] == c0[:, 0].tolist()
    assert "initial state: h0 from " in stdout

    seeded = []
    for d in ("b", "c"):  # random:SEED: the same state every time, h0 and c0 different
        argv = ["rnn", "--cell", "lstm", "--layers", "2", "--text", "hello", "--h0", "random:5",
                "--c0", "random:5", "--out", str(tmp_path / d)]  # fmt: skip
        assert run_cli(argv, capsys)[0] == 0
        seeded.append(doc_of(tmp_path / d))
    assert seeded[0] == seeded[1]
    s = seeded[0]["initial_state"]
    h, c = np.array(s["h0"]["value"]), np.array(s["c0"]["value"])
    assert h.shape == c.shape == (2, 3) and np.abs(h).max() <= 1 and not np.allclose(h, c)
    fresh = CharModel.init(ModelConfig("lstm", tuple("helo"), 3, 2), seed=0)
    check_against_torch(seeded[0], fresh, "hello", h0=h, c0=c)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    shapes = dict(HELLO.params)
    wrong = {**shapes, "head.weight": np.zeros((4, 5))}
    nan = {**shapes, "rnn.weight_hh_l0": np.full((3, 3), np.nan)}
    meta = {"vocab": json.dumps(list("helo"))}
    out = {}
    for name, arrays in (("wrong", wrong), ("nan", nan)):
        out[name] = tmp_path / f"{name}.safetensors"
        save_file(arrays, str(out[name]), metadata=meta)
    out["good"] = tmp_path / "good.safetensors"
    checkpoint.save(HELLO, out["good"])
    for name, a in (("h0bad", np.zeros(3)), ("h0nan", np.full((1, 3), np.nan)),
                    ("h0obj", np.array([{"a": 1}], dtype=object))):  # fmt: skip
        out[name] = tmp_path / f"{name}.npy"
        np.save(out[name], a, allow_pickle=True)
    out["txt"] = tmp_path / "h0.txt"
    out["txt"].write_text("0 0 0")
    return out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["rnn", "--weights", "{good}", "--text", "hex"], "not in the model's vocabulary"),
        (["rnn", "--text", ""], "empty"),
        (["rnn", "--text", "h"], "one character"),
        (["rnn", "--weights", "{wrong}"], "shape"),
        (["rnn", "--weights", "{nan}"], "NaN"),
        (["rnn", "--weights", "{good}", "--hidden", "4"], "disagrees"),
        (["rnn", "--hidden", "x"], "invalid int"),
        (["rnn", "--hidden", "0"], "at least 1"),
        (["rnn", "--cell", "tcn"], "unknown cell"),
        (["rnn", "--optimizer", "adam"], "optimizer"),
        (["rnn", "--lr", "nan"], "--lr"),
        (["rnn", "--clip", "-1"], "--clip"),
        (["rnn", "--truncate", "0"], "--truncate"),
        (["rnn", "--seed", "-2"], "--seed"),
        (["rnn", "--h0", "{h0bad}"], "shape (3,); this model needs (L, H) = (1, 3)"),
        (["rnn", "--h0", "{h0nan}"], "NaN"),
        (["rnn", "--h0", "{h0obj}"], "not a plain numeric .npy"),
        (["rnn", "--h0", "{txt}"], "not a .npy or .safetensors file"),
        (["rnn", "--h0", "{missing}"], "--h0"),
        (["rnn", "--h0", "{good}"], "none named 'h0'"),
        (["rnn", "--h0", "random:x"], "whole number"),
        (["rnn", "--c0", "random:1"], "--c0 is the cell state of an LSTM"),
        (["dissect", "{good}", "--text", "hello", "--h0", "{h0bad}"], "shape (3,)"),
        (["dissect", "{missing}", "--text", "hello"], "does not exist"),
        (["dissect", "{good}"], "--text"),
        (["flow", "--hidden", "0"], "--hidden"),
        (["flow", "--text", "a"], "one character"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, words):
    files = {**_bad_files(tmp_path), "missing": tmp_path / "nope.safetensors"}
    argv = [a.format(**files) for a in argv] + ["--out", str(tmp_path / "o")]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert "Traceback" not in err and out == ""


def test_reruns_are_byte_identical(tmp_path):
    argv = ["rnn", "--cell", "gru", "--text", "abcab", "--hidden", "2"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0  # a second, fresh directory
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0  # overwriting the first
    for f in ("dissection.json", "walkthrough.html", "graph.svg"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
