"""``train --backend torch``: the same run as the numpy kernels, through PyTorch, also under torchrun.

Oracle: the numpy backend (itself checked against torch autograd in float64 by test_kernels)
for the same weights, batches and dropout masks: losses, gradient norms, validation losses,
weights and snapshot norms agree to float32 rounding. torchrun: a 2-process gloo run (with a
resume in the middle) gives the 1-process run's losses within 1e-4 for 20 steps.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_dissect import cli
from rnn_dissect.train.snapshot import load_unit_norms
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights import safetensors_file as stf

REPO = Path(__file__).resolve().parents[1]
TEXT = "".join(f"def f{i % 7}(x):\n    return x * {i % 5} + {i % 3}\n\n" for i in range(90))
SMALL = [
    "--hidden",
    "16",
    "--seq-len",
    "8",
    "--batch",
    "4",
    "--log-every",
    "1",
    "--eval-every",
    "4",
    "--save-every",
    "4",
    "--sample-every",
    "0",
    "--val-frac",
    "0.1",
    "--quiet",
]


@pytest.fixture
def text(tmp_path: Path) -> Path:
    p = tmp_path / "code.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def train(capsys, *args: object) -> tuple[int, str]:
    rc = cli.main(["train", *map(str, args)])
    return rc, capsys.readouterr().err


def metrics(d: Path) -> list[dict]:
    return [json.loads(s) for s in (d / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(a: Path, b: Path, tol: float) -> None:
    """Two run directories hold the same training to float32 rounding: every metric line,
    the final weights, the trainer state (optimizer slots, carried state) and the step."""
    ma, mb = metrics(a), metrics(b)
    assert [r["step"] for r in ma] == [r["step"] for r in mb]
    for ra, rb in zip(ma, mb, strict=True):
        for key in ("train_loss", "grad_norm", "val_loss", "lr"):
            assert (key in ra) == (key in rb), (key, ra, rb)
            if key in ra:
                assert ra[key] == pytest.approx(rb[key], rel=tol, abs=tol), (key, ra, rb)
    ta, tb = (
        stf.read_tensors(a / "trainer.safetensors"),
        stf.read_tensors(b / "trainer.safetensors"),
    )
    assert sorted(ta) == sorted(tb)
    for k in ta:
        scale = max(1.0, float(np.abs(ta[k]).max()))
        assert np.abs(ta[k] - tb[k]).max() <= 20 * tol * scale, k
    ia, ib = (stf.read_header(d / "trainer.safetensors").metadata for d in (a, b))
    assert ia["step"] == ib["step"] and ia["rng"] == ib["rng"]
    best_a, best_b = (checkpoint.load(d / "best.safetensors") for d in (a, b))
    for k, v in best_a.params.items():
        assert np.abs(v - best_b.params[k]).max() <= 20 * tol


@pytest.mark.parametrize(
    "cell, extra",
    [
        ("lstm", "--layers 2 --dropout 0.2 --snapshot-every 6"),  # one-layer modules + masks
        ("gru", "--layers 2 --optimizer rmsprop"),  # nn.GRU(num_layers=2)
        ("rnn", "--layers 1 --optimizer adagrad --clip 0.05"),  # clipping active
    ],
)
def test_torch_backend_trains_the_numpy_run(tmp_path, text, capsys, cell, extra) -> None:
    runs = {}
    for backend in ("numpy", "torch"):
        d = runs[backend] = tmp_path / backend
        rc, err = train(
            capsys, text, "--out", d, "--steps", 12, "--cell", cell, *extra.split(), *SMALL,
            "--backend", backend,
        )  # fmt: skip
        assert rc == 0, err
    assert_same_run(runs["numpy"], runs["torch"], 1e-5)
    if "--snapshot-every" in extra:  # the gradient's per-unit norms, seen before clipping
        for step in ("step0000006", "step0000012"):
            (wa, ga), (wb, gb) = (load_unit_norms(runs[b] / "snapshots" / step) for b in runs)
            assert wa is not None and ga is not None and wb is not None and gb is not None
            for key in ga:
                np.testing.assert_allclose(gb[key], ga[key], rtol=1e-4, atol=1e-7)
                np.testing.assert_allclose(wb[key], wa[key], rtol=1e-5)


def test_a_run_resumes_on_the_other_backend(tmp_path, text, capsys) -> None:
    """Checkpoints are the same files: numpy → torch → numpy gives the straight numpy run."""
    flags = [*SMALL, "--layers", "2", "--dropout", "0.1", "--schedule", "constant"]
    straight, mixed = tmp_path / "straight", tmp_path / "mixed"
    assert train(capsys, text, "--out", straight, "--steps", 12, *flags)[0] == 0
    assert train(capsys, text, "--out", mixed, "--steps", 4, *flags)[0] == 0
    rc, err = train(capsys, "--resume", "--out", mixed, "--steps", 8, "--backend", "torch")
    assert rc == 0, err
    assert train(capsys, "--resume", "--out", mixed, "--steps", 12, "--quiet")[0] == 0
    assert_same_run(straight, mixed, 1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, text, capsys) -> None:
    for backend, needle in (("torch", "no CUDA GPU"), ("numpy", "needs --backend torch")):
        d = tmp_path / backend
        rc, err = train(capsys, text, "--out", d, "--steps", 2, *SMALL, "--backend", backend,
                        "--device", "cuda")  # fmt: skip
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and needle in err
        assert not d.exists()  # nothing written


HIDE_TORCH = """
import sys

class HideTorch:  # as if PyTorch were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, HideTorch())
"""


def test_without_torch_numpy_training_works_and_torch_is_one_line(tmp_path, text) -> None:
    (tmp_path / "hide_torch.py").write_text(HIDE_TORCH)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    run_cli = "import hide_torch, runpy; runpy.run_module('rnn_dissect', run_name='__main__')"

    def cli_without_torch(*args: object) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", run_cli, "train", str(text), *map(str, args), *SMALL]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    probe = "import hide_torch, sys, rnn_dissect, rnn_dissect.cli; import torch"
    r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "No module named 'torch'" in r.stderr  # the blocker works
    ok = cli_without_torch("--out", tmp_path / "np", "--steps", 2)
    assert ok.returncode == 0, ok.stderr
    assert [r["step"] for r in metrics(tmp_path / "np")] == [1, 2]
    bad = cli_without_torch("--out", tmp_path / "pt", "--steps", 2, "--backend", "torch")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert (
        bad.stderr.startswith("error: --backend torch needs PyTorch")
        and "pip install" in bad.stderr
    )
    assert not (tmp_path / "pt").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(nproc: int, *args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "rnn_dissect", "train", *map(str, args), "--backend", "torch",
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_torchrun_two_processes_give_the_one_process_run(tmp_path, text, capsys) -> None:
    """2 gloo ranks × 2 streams each = the 1-process run's 4 streams, resumed half way."""
    flags = [*SMALL, "--layers", "2", "--dropout", "0.1", "--schedule", "constant"]
    flags += ["--eval-every", "5", "--sample-every", "5", "--sample-chars", "20"]
    one, two = tmp_path / "one", tmp_path / "two"
    rc, err = train(capsys, text, "--out", one, "--steps", 20, *flags, "--backend", "torch")
    assert rc == 0, err
    first = torchrun(2, text, "--out", two, "--steps", 10, *flags)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count(f"{two}: step 10/10") == 1  # rank 0 alone reports
    second = torchrun(2, "--resume", "--out", two, "--steps", 20, "--quiet")
    assert second.returncode == 0, second.stderr[-3000:]
    assert [r["step"] for r in metrics(two)] == list(range(1, 21))
    assert_same_run(one, two, 1e-4)
    assert (one / "samples.txt").read_text() == (two / "samples.txt").read_text()
