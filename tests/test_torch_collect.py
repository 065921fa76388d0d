"""``--backend torch`` for neuron collection and for ``dissect``'s forward pass.

Oracles: the hand-stepped float64 torch reference of test_collect (every layer's h, c and
gates), the planted LSTM run by torch.nn.LSTM in float64 (a bracket counter with f = 1 that
never forgets), the numpy collector, a plain sequential loop for the scan, and the exact
float64 engine of ``dissect``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import planted
import pytest
import torch
from test_collect import text_and_model, torch_reference
from test_torch_backend import HIDE_TORCH, REPO

from rnn_dissect import cli
from rnn_dissect.nets.torch_forward import TorchForward, ieee_fp32, linear_scan
from rnn_dissect.neurons import activations
from rnn_dissect.neurons.activations import KINDS
from rnn_dissect.neurons.collect import collect, describe
from rnn_dissect.neurons.features import bracket_depth
from rnn_dissect.reports import torch_check
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.interop import from_torch

torch.set_num_threads(1)


def test_linear_scan_is_the_sequential_recurrence() -> None:
    g = torch.Generator().manual_seed(0)
    for C in (1, 2, 7, 64, 100):
        f = torch.rand(C, 3, 5, generator=g, dtype=torch.float64)
        u = torch.randn(C, 3, 5, generator=g, dtype=torch.float64)
        c0 = torch.randn(3, 5, generator=g, dtype=torch.float64)
        c, want = c0, []
        for t in range(C):
            c = f[t] * c + u[t]
            want.append(c)
        torch.testing.assert_close(linear_scan(f, u, c0), torch.stack(want), rtol=0, atol=1e-12)


def test_cuda_runs_in_ieee_float32_not_tf32(monkeypatch) -> None:
    """cuDNN's RNN kernels default to TF32 (~1e-3): a GPU run turns it off (the flags are
    only flags: this runs without a GPU)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    ieee_fp32(torch.device("cpu"))
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    ieee_fp32(torch.device("cuda", 0))
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_collection_equals_the_float64_reference_and_numpy(cell) -> None:
    """Segments that start wrong (warm-up 5) and are checked: every array of every layer is
    one sequential pass's, to float32 rounding (float64: to 1e-10, the check's tolerance carried)."""
    text, m = text_and_model(cell, n=500, hidden=6)
    ref = torch_reference(m, text)
    np32 = collect(m, text, warmup=5, batch=6)
    pt32 = collect(m, text, warmup=5, batch=6, backend="torch")
    pt64 = collect(m, text, warmup=5, batch=6, backend="torch", dtype=np.float64)
    assert pt32.ordered_keys() == [(k, kind) for k in range(2) for kind in KINDS[cell]]
    assert pt32.collection["backend"] == "torch (cpu)" and pt32.collection["passes"] >= 2
    for key in pt32.ordered_keys():
        assert pt32.arrays[key].dtype == np.float32
        np.testing.assert_allclose(pt64.arrays[key], ref[key], rtol=0, atol=1e-10, err_msg=str(key))
        np.testing.assert_allclose(pt32.arrays[key], ref[key], rtol=0, atol=3e-6, err_msg=str(key))
        np.testing.assert_allclose(pt32.arrays[key], np32.arrays[key], atol=3e-6, err_msg=str(key))


def planted_model(text: str):
    vocab = tuple(sorted(set(text)))
    head = torch.nn.Linear(planted.H, len(vocab), dtype=torch.float64)
    return from_torch(planted.planted_lstm(vocab), head, vocab)


def test_planted_long_memory_unit_streamed_to_disk(tmp_path) -> None:
    """The bracket counter (f = 1) never merges: the check walks to the text's end; the
    streamed files are the numpy collector's format and values, c₀ = 0.1 · depth."""
    text = planted.python_like_text(np.random.default_rng(5), n_lines=150)
    m = planted_model(text)
    truth = planted.run(text)  # float64, torch.nn.LSTM
    kw = {"warmup": 20, "batch": 8, "max_buffer_bytes": 20_000}  # many chunks
    np_acts = collect(m, text, out_dir=tmp_path / "np", **kw)
    pt_acts = collect(m, text, out_dir=tmp_path / "pt", backend="torch", **kw)
    assert pt_acts.collection["rerun_chars"] > len(text) // 2  # it walked
    again = activations.load(tmp_path / "pt")
    meta = [json.loads((tmp_path / d / "activations.json").read_text()) for d in ("np", "pt")]
    meta[1]["collection"].pop("backend")
    assert meta[0] == meta[1]
    assert sorted(p.name for p in (tmp_path / "pt").iterdir()) == sorted(
        p.name for p in (tmp_path / "np").iterdir()
    )
    for key in truth.ordered_keys():
        assert isinstance(again.arrays[key], np.memmap)
        np.testing.assert_allclose(
            again.arrays[key], truth.arrays[key], atol=2e-6, err_msg=str(key)
        )
        np.testing.assert_allclose(again.arrays[key], np_acts.arrays[key], atol=2e-6)
    depth = bracket_depth(text)
    np.testing.assert_allclose(again.arrays[(0, "c")][:, 0], 0.1 * depth, atol=2e-6)


def test_torch_forward_run_matches_forward_on_a_chunked_stream() -> None:
    """Chunks carrying the kernel's state give the one-chunk values (the Forward contract)."""
    text, m = text_and_model("lstm", n=120, hidden=5)
    fwd = TorchForward.of(m)
    idx = m.encode(text)[:, None]  # (N, 1)
    keys = [(k, kind) for k in range(2) for kind in KINDS["lstm"]]
    whole = {key: np.empty((len(text), 1, 5), np.float32) for key in keys}
    fwd.run(idx, fwd.zero_state(1), whole)
    state, parts = fwd.zero_state(1), {key: [] for key in keys}
    for t0 in range(0, len(text), 17):
        rec = {key: np.empty((min(17, len(text) - t0), 1, 5), np.float32) for key in keys}
        _, state = fwd.run(idx[t0 : t0 + 17], state, rec)
        for key in keys:
            parts[key].append(rec[key])
    for key in keys:
        np.testing.assert_allclose(np.concatenate(parts[key]), whole[key], atol=1e-6)


@pytest.fixture
def ckpt(tmp_path) -> tuple[Path, str]:
    text, m = text_and_model("gru", n=300, hidden=6)
    path = tmp_path / "m.safetensors"
    checkpoint.save(m, path)
    return path, text


def test_neurons_cli_backend_torch_writes_the_numpy_activations(ckpt, tmp_path, capsys) -> None:
    path, text = ckpt
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "n"
    rc = cli.main(["neurons", str(path), "--text", str(tmp_path / "t.txt"), "--out", str(out),
                   "--keep-activations", "--warmup", "10", "--backend", "torch"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert "read by PyTorch on cpu" in capsys.readouterr().err
    got = activations.load(out / "activations")
    want = collect(checkpoint.load(path), text, warmup=10)  # the numpy collector
    assert got.collection == {**want.collection, "backend": "torch (cpu)"}
    for key in want.ordered_keys():
        np.testing.assert_allclose(got.arrays[key], want.arrays[key], atol=3e-6)
    assert json.loads((out / "neurons.json").read_text())["n_chars"] == len(text)
    assert describe(got.collection).endswith(", read by torch (cpu)")
    rc = cli.main(["neurons", str(path), "--out", str(tmp_path / "x"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "needs --backend torch" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_one_line(ckpt, tmp_path, capsys) -> None:
    path, text = ckpt
    for cmd in (["neurons", str(path)], ["dissect", str(path), "--text", text[:20]]):
        out = tmp_path / cmd[0]
        rc = cli.main([*cmd, "--out", str(out), "--backend", "torch", "--device", "cuda"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "no CUDA GPU" in err, err
        assert not out.exists()  # nothing written


def test_dissect_backend_torch_compares_with_the_exact_engine(
    ckpt, tmp_path, capsys, monkeypatch
) -> None:
    path, text = ckpt
    out = tmp_path / "d"
    args = ["dissect", str(path), "--text", text[:30], "--out", str(out), "--h0", "random:3"]
    assert cli.main([*args, "--backend", "torch"]) == 0
    assert "PyTorch forward (cpu, float32): loss" in capsys.readouterr().out
    doc = json.loads((out / "dissection.json").read_text())
    rec = doc["torch_forward"]
    assert rec["agrees"] and rec["loss"] == pytest.approx(doc["loss"], abs=1e-6)
    assert set(rec["max_abs_diff"]) == {"loss", "step_loss", "h", "r", "z", "n"}
    assert 0 < max(rec["max_abs_diff"].values()) < 1e-5  # float32 rounding, not zero
    # the comparison is not vacuous: a torch model with another head bias disagrees
    real = TorchForward.of

    def shifted(*a, **k):
        fwd = real(*a, **k)
        fwd.head["bias"][0] += 0.05  # one class (a shift of all of them changes nothing)
        return fwd

    monkeypatch.setattr(torch_check.TorchForward, "of", shifted)
    assert cli.main([*args, "--backend", "torch"]) == 1
    out_err = capsys.readouterr()
    assert "DISAGREES" in out_err.out and out_err.err.startswith("error: PyTorch's forward")
    assert not json.loads((out / "dissection.json").read_text())["torch_forward"]["agrees"]


def test_without_torch_neurons_work_and_torch_is_one_line(ckpt, tmp_path) -> None:
    """One interpreter with torch hidden runs three commands in-process (one start-up)."""
    path, text = ckpt
    (tmp_path / "hide_torch.py").write_text(HIDE_TORCH)
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    script = (
        "import hide_torch, contextlib, io, json, sys\n"
        "from rnn_dissect import cli\n"
        "out = []\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):\n"
        "        out.append([cli.main(args), err.getvalue()])\n"
        "print(json.dumps(out))\n"
    )
    bad = ["--out", str(tmp_path / "t"), "--backend", "torch"]
    runs = [
        ["neurons", str(path), "--text", str(tmp_path / "t.txt"), "--out", str(tmp_path / "n")],
        ["neurons", str(path), *bad],
        ["dissect", str(path), "--text", text[:10], *bad],
    ]
    r = subprocess.run([sys.executable, "-c", script, json.dumps(runs)], env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (rc_ok, err_ok), *errors = json.loads(r.stdout.splitlines()[-1])
    assert rc_ok == 0, err_ok
    assert (tmp_path / "n" / "neurons.json").is_file()
    for rc, err in errors:
        assert rc == 2 and err.count("\n") == 1, err
        assert err.startswith("error: --backend torch needs PyTorch")
    assert not (tmp_path / "t").exists()
