"""``rnn-dissect train`` end to end, in-process, on a small text in tmp dirs.

Oracles: PyTorch (the checkpoint loaded with interop.to_torch gives the kernels' logits;
validation loss recomputed with nn.LSTM over whole streams), a straight run for every
resume (bit-identical bytes), the files as they were before a failure (nothing lost).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import signal
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_dissect import cli
from rnn_dissect.train import loop as train
from rnn_dissect.train.data import load_corpus
from rnn_dissect.train.kernels import KERNELS, Backend, fused
from rnn_dissect.train.loop import TrainConfig, Trainer, evaluate, lr_at
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights import safetensors_file as stf
from rnn_dissect.weights.interop import to_torch

torch.set_num_threads(1)
TEXT = "".join(f"def f{i % 7}(x):\n    return x * {i % 5} + {i % 3}\n\n" for i in range(90))


def flags(text: str) -> list[str]:
    return text.split()


SMALL = flags(
    "--hidden 16 --seq-len 8 --batch 4 --log-every 2 --eval-every 4 --save-every 4 "
    "--sample-every 0 --val-frac 0.1 --quiet"
)


@pytest.fixture
def text(tmp_path: Path) -> Path:
    p = tmp_path / "code.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def run(capsys, *args: object) -> tuple[int, str, str]:
    rc = cli.main(["train", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def metrics(d: Path) -> list[dict]:
    return [json.loads(s) for s in (d / "metrics.jsonl").read_text().splitlines()]


def files(d: Path) -> dict[str, bytes]:
    """Every file of a run directory, by relative path (the state to compare)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def one_line_error(rc: int, err: str, *needles: str) -> None:
    """Exit code 2 and one ``error:`` line, last on stderr (after any progress output)."""
    assert rc == 2, err
    *before, last = err.splitlines()
    assert last.startswith("error: ") and err.endswith("\n") and "Traceback" not in err, err
    assert not any(s.startswith("error") for s in before), err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture
def numpy_gemm(monkeypatch) -> Backend:
    """The CLI told to use numpy's GEMMs (not the measured choice), and that same backend, so
    a test can recompute a logged number bit for bit."""
    monkeypatch.setenv("RNN_DISSECT_GEMM", "numpy")
    return Backend("numpy", fused.AVAILABLE)


def test_metrics_contract_and_checkpoint_loads_alone_and_into_torch(
    tmp_path, text, capsys, numpy_gemm
):
    d = tmp_path / "run"
    rc, out, _ = run(capsys, text, "--out", d, "--steps", 12, *SMALL)
    assert rc == 0 and "step 12/12" in out
    rows = metrics(d)
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in rows if "val_loss" in r] == [4, 8, 12]
    assert all(math.isfinite(r["train_loss"]) and r["chars_per_s"] > 0 for r in rows)
    # the checkpoint on its own, moved away from the run directory
    shutil.copy(d / "model.safetensors", tmp_path / "alone.safetensors")
    m = checkpoint.load(tmp_path / "alone.safetensors")
    assert m.config.vocab == tuple(sorted(set(TEXT))) and m.config.cell == "lstm"
    state = stf.read_tensors(d / "trainer.safetensors")
    assert all(np.array_equal(m.params[k], state[f"param.{k}"]) for k in m.params)
    # PyTorch computes the same logits from it
    rnn, head = to_torch(m, batch_first=True)
    x = m.encode(TEXT[:60])[None]  # (1, 60)
    with torch.no_grad():
        h, _ = rnn(torch.nn.functional.one_hot(torch.tensor(x), m.config.vocab_size).float())
        want = head(h).numpy()
    got, _ = KERNELS["lstm"].forward(m.params, x)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # the logged validation loss is that of the saved weights on the held-out tail
    _, val = load_corpus([text]).split(0.1)
    assert rows[-1]["val_loss"] == evaluate(m.params, "lstm", val, 4, 8, None, numpy_gemm)


def test_evaluate_is_cross_entropy_over_whole_streams_in_torch():
    """Chunks of seq_len with the state carried = one pass over each stream (torch float64)."""
    from rnn_dissect.nets.model import CharModel, ModelConfig

    m = CharModel.init(ModelConfig("gru", tuple("abcd"), 5, 2), seed=3, dtype=np.float64)
    data = np.random.default_rng(0).integers(0, 4, 103).astype(np.uint8)
    got = evaluate(m.params, "gru", data, batch=3, seq_len=7)
    rnn, head = to_torch(m, batch_first=True)
    n = len(data) - 1
    b, mm = 3, (len(data) - 1) // 3
    assert b == min(3, n // 7)
    streams = np.stack([data[j * mm : j * mm + mm + 1] for j in range(b)]).astype(np.int64)
    with torch.no_grad():
        h, _ = rnn(torch.nn.functional.one_hot(torch.tensor(streams[:, :-1]), 4).double())
        ce = torch.nn.functional.cross_entropy(
            head(h).reshape(-1, 4), torch.tensor(streams[:, 1:]).reshape(-1)
        )
    assert abs(got - float(ce)) < 1e-12


def test_best_checkpoint_holds_the_lowest_validation_loss(tmp_path, text, capsys, numpy_gemm):
    d = tmp_path / "run"
    # a high constant learning rate makes the validation loss go up and down
    rc, _, _ = run(
        capsys, text, "--out", d, "--steps", 24, *SMALL, "--lr", "0.03", "--schedule", "constant"
    )
    assert rc == 0
    vals = [(r["val_loss"], r["step"]) for r in metrics(d) if "val_loss" in r]
    best_val, best_step = min(vals)
    info = checkpoint.read_info(d / "best.safetensors")
    assert int(info.metadata["step"]) == best_step and float(info.metadata["val_loss"]) == best_val
    _, val = load_corpus([text]).split(0.1)
    best = checkpoint.load(d / "best.safetensors").params
    assert evaluate(best, "lstm", val, 4, 8, None, numpy_gemm) == best_val


def test_resume_is_bit_identical_to_a_straight_run(tmp_path, text, capsys):
    """10 steps + resume + 10 steps == 20 steps: weights, optimizer, carried state, dropout
    RNG, metrics, samples and snapshots (constant schedule: its length does not matter)."""
    # (a run validates at its last step: --eval-every 5 makes step 10 due in the straight run too)
    extra = flags(
        "--schedule constant --dropout 0.3 --sample-every 3 --snapshot-every 5 --eval-every 5"
    )
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(capsys, text, "--out", a, "--steps", 20, *SMALL, *extra)[0] == 0
    assert run(capsys, text, "--out", b, "--steps", 10, *SMALL, *extra)[0] == 0
    assert run(capsys, "--resume", "--out", b, "--steps", 20, "--quiet")[0] == 0
    fa, fb = files(a), files(b)
    assert fa.keys() == fb.keys()
    for name in fa:
        if name not in ("trainer.safetensors", "metrics.jsonl", "config.json"):
            assert fa[name] == fb[name], name  # model, best, samples, snapshots
    ta, tb = (
        stf.read_tensors(a / "trainer.safetensors"),
        stf.read_tensors(b / "trainer.safetensors"),
    )
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    ma, mb = (
        stf.read_header(a / "trainer.safetensors").metadata,
        stf.read_header(b / "trainer.safetensors").metadata,
    )
    assert ma["rng"] == mb["rng"] and ma["step"] == mb["step"] == "20"
    timing = ("chars_per_s", "elapsed_s")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(metrics(a)) == strip(metrics(b))


def test_ctrl_c_saves_and_resume_continues_the_cosine_exactly(tmp_path, text, capsys, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    assert run(capsys, text, "--out", a, "--steps", 15, *SMALL, "--warmup", "3")[0] == 0
    step = Trainer.step

    def step_then_ctrl_c(self):
        r = step(self)
        if self.state.step == 7:
            signal.raise_signal(signal.SIGINT)
        return r

    monkeypatch.setattr(Trainer, "step", step_then_ctrl_c)
    rc, out, err = run(capsys, text, "--out", b, "--steps", 15, *SMALL, "--warmup", "3")
    assert rc == 130 and "interrupted" in out and "--resume" in out and "Traceback" not in err
    assert checkpoint.read_info(b / "model.safetensors").metadata["step"] == "7"
    monkeypatch.undo()
    assert handlers == {sig: signal.getsignal(sig) for sig in handlers}  # handlers restored
    assert run(capsys, "--resume", "--out", b, "--quiet")[0] == 0
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_an_existing_run_is_never_overwritten(tmp_path, text, capsys):
    d = tmp_path / "run"
    assert run(capsys, text, "--out", d, "--steps", 4, *SMALL)[0] == 0
    before = files(d)
    rc, _, err = run(capsys, text, "--out", d, "--steps", 4, *SMALL)
    one_line_error(rc, err, "holds a run", "--resume", "--force")
    assert files(d) == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    one_line_error(*run(capsys, text, "--out", tmp_path / "other", *SMALL)[::2], "not empty")
    assert run(capsys, text, "--out", d, "--steps", 4, *SMALL, "--force", "--seed", "1")[0] == 0
    assert files(d)["model.safetensors"] != before["model.safetensors"]


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "make,needles",
    [
        (lambda d: d / "missing.txt", ["no such file"]),
        (lambda d: d, ["is a directory"]),
        (lambda d: _write(d / "empty.txt", b""), ["is empty"]),
        (lambda d: _write(d / "bin.dat", b"ab\x00cd" * 50), ["NUL byte"]),
        (
            lambda d: _write(d / "latin1.txt", "café ".encode("latin-1") * 50),
            ["not valid UTF-8", "--errors replace"],
        ),
        (lambda d: _write(d / "short.txt", b"def f(x): pass"), ["too few", "--seq-len"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_loses_nothing(tmp_path, text, capsys, make, needles):
    d = tmp_path / "run"
    assert run(capsys, text, "--out", d, "--steps", 4, *SMALL)[0] == 0
    before = files(d)
    bad = tmp_path / "bad"
    bad.mkdir()
    rc, _, err = run(capsys, make(bad), "--out", d, "--steps", 4, *SMALL, "--force")
    one_line_error(rc, err, *needles)
    assert files(d) == before


def test_errors_replace_trains_on_invalid_utf8(tmp_path, capsys):
    p = _write(tmp_path / "latin1.txt", "café au lait; ".encode("latin-1") * 40)
    assert (
        run(capsys, p, "--out", tmp_path / "run", "--steps", 2, *SMALL, "--errors", "replace")[0]
        == 0
    )
    assert "\ufffd" in checkpoint.load(tmp_path / "run").config.vocab


def test_resume_refuses_new_characters_and_changed_shape(tmp_path, text, capsys):
    d = tmp_path / "run"
    assert run(capsys, text, "--out", d, "--steps", 4, *SMALL)[0] == 0
    before = files(d)
    other = _write(tmp_path / "other.txt", ("QZ! " + TEXT).encode())
    one_line_error(
        *run(capsys, other, "--resume", "--out", d, "--steps", 8)[::2],
        "not in the model's vocabulary",
    )
    one_line_error(
        *run(capsys, "--resume", "--out", d, "--steps", 8, "--hidden", 32)[::2],
        "--hidden 32 differs",
    )
    one_line_error(*run(capsys, "--resume", "--out", d)[::2], "trained all its 4 steps", "--steps")
    one_line_error(
        *run(capsys, "--resume", "--out", tmp_path / "nothing")[::2], "not a run directory"
    )
    assert files(d) == before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, text, capsys, monkeypatch):
    ref, d = tmp_path / "ref", tmp_path / "run"
    const = ["--schedule", "constant"]
    assert run(capsys, text, "--out", ref, "--steps", 4, *SMALL, *const)[0] == 0
    lstm, calls = KERNELS["lstm"], []

    def forward_backward(params, x, y, *args, **kw):
        loss, grads, state = lstm.forward_backward(params, x, y, *args, **kw)
        calls.append(1)
        return (float("nan") if len(calls) == 6 else loss), grads, state

    monkeypatch.setitem(
        KERNELS,
        "lstm",
        types.SimpleNamespace(forward_backward=forward_backward, forward=lstm.forward),
    )
    rc, _, err = run(capsys, text, "--out", d, "--steps", 10, *SMALL, *const)
    one_line_error(rc, err, "loss became nan at step 6", "step 4", "lower --lr")
    assert (d / "model.safetensors").read_bytes() == (ref / "model.safetensors").read_bytes()


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path, text, capsys, monkeypatch
):
    d = tmp_path / "run"
    assert run(capsys, text, "--out", d, "--steps", 4, *SMALL, "--schedule", "constant")[0] == 0
    before = files(d)
    replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith(".safetensors"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    rc, _, err = run(capsys, "--resume", "--out", d, "--steps", 8)
    one_line_error(rc, err, "No space left on device", "previous file is intact", "--resume")
    for name in ("model.safetensors", "trainer.safetensors", "best.safetensors"):
        assert (d / name).read_bytes() == before[name], name
    assert not list(d.glob(".*tmp"))  # no temporary file left behind
    monkeypatch.undo()
    assert run(capsys, "--resume", "--out", d, "--steps", 8)[0] == 0  # and it continues


def test_a_short_run_learns(tmp_path, text, capsys):
    d = tmp_path / "run"
    args = [
        *SMALL,
        *flags("--hidden 32 --seq-len 16 --batch 8 --eval-every 50 --lr 0.01 --sample-every 200"),
    ]
    assert run(capsys, text, "--out", d, "--steps", 200, *args)[0] == 0
    rows = metrics(d)
    uniform = math.log(len(set(TEXT)))  # a model that knows nothing: 3.3 nats/char
    assert rows[0]["train_loss"] > 0.9 * uniform
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert vals == sorted(vals, reverse=True) and vals[-1] < 0.2 * uniform
    assert "\n    return x * " in (d / "samples.txt").read_text()  # it writes the text's lines


def test_time_budget_sizes_the_run_and_records_it(tmp_path, text, capsys, monkeypatch):
    """With a clock that advances 10 ms per reading the run is deterministic: the warm-up
    measures the speed, steps are fixed in config.json, and the run ends inside the budget."""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    monkeypatch.setattr(train, "_clock", clock)
    d = tmp_path / "run"
    rc, out, err = run(capsys, text, "--out", d, "--minutes", 0.05, *SMALL, "--warmup", "5")
    assert rc == 0
    steps = json.loads((d / "config.json").read_text())["train"]["steps"]
    assert steps > 5 and metrics(d)[-1]["step"] == steps and f"step {steps}/{steps}" in out
    # the terminal hears of the first sizing and the final one, no other
    notes = [line for line in (out + err).splitlines() if "ms/step:" in line]
    assert len(notes) == 2, notes
    assert "until it is fixed at 70%" in notes[0] and f"--steps {steps} --decay-start" in notes[1]
    # about the 3 s budget; the final sizing averages only the 6 steps after the warm-up here
    # (a long window in real runs), which cost a validation and a checkpoint each 4 steps
    assert 0.8 * 3.0 <= metrics(d)[-1]["elapsed_s"] <= 1.1 * 3.0


@pytest.mark.parametrize(("decay_frac", "slow"), [(1.0, (0.3, 0.9)), (0.25, (0.5, 3.0))])
def test_time_budget_follows_a_machine_that_slows_then_speeds_up(
    tmp_path, text, capsys, monkeypatch, decay_frac, slow
):
    """Each clock reading costs 10 ms, but 20 ms during ``slow`` (seconds) of the 6 s budget
    (a burst of load on shared cores) — before the sizing is final (at a fifth of the budget
    for --decay-frac 1, at 70% for 0.25). The budget re-measures the speed while the learning
    rate is at its peak, so the run still ends near its budget with its decay complete (lr
    ends at lr_min), and ``--steps N --decay-start K`` (what config.json records) repeats the
    run bit for bit. (tests/test_budget.py checks the sizing alone, to within 3%.)"""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.02 if slow[0] <= now[0] < slow[1] else 0.01
        return now[0]

    monkeypatch.setattr(train, "_clock", clock)
    d = tmp_path / "run"
    common = (*SMALL, "--warmup", "5", "--lr-min", "0.0005", "--save-every", "1000")
    frac = ("--decay-frac", decay_frac)
    rc, _, _ = run(capsys, text, "--out", d, "--minutes", 0.1, *common, *frac)
    assert rc == 0
    cfg = json.loads((d / "config.json").read_text())["train"]
    steps, k0 = cfg["steps"], cfg["decay_start"]
    rows = metrics(d)
    assert 5 < k0 < steps and rows[-1]["step"] == steps
    assert steps - k0 == (round(0.25 * steps) if decay_frac < 1 else steps - k0)
    assert 0.9 * 6.0 <= rows[-1]["elapsed_s"] <= 1.05 * 6.0
    lrs = {r["step"]: r["lr"] for r in rows}
    assert all(lr == 0.003 for k, lr in lrs.items() if 5 <= k <= k0)  # held at the peak
    assert 0.0005 < lrs[steps] < 0.0005 + 0.02 * (0.003 - 0.0005)  # the decay completed
    again = tmp_path / "again"
    rc, _, _ = run(capsys, text, "--out", again, "--steps", steps, "--decay-start", k0, *common)
    assert rc == 0
    assert (again / "model.safetensors").read_bytes() == (d / "model.safetensors").read_bytes()


def test_bad_schedule_values_are_one_line_errors(tmp_path, text, capsys):
    for bad in (
        ("--decay-frac", "0"),
        ("--decay-frac", "1.5"),
        ("--steps", "10", "--decay-start", "11"),
    ):
        rc, _, err = run(capsys, text, "--out", tmp_path / "r", *SMALL, *bad)
        one_line_error(rc, err, bad[-2])
        assert not (tmp_path / "r").exists()


def test_a_corpus_big_enough_to_memory_map_trains_and_resumes(tmp_path, text, capsys, monkeypatch):
    """Above the memory-map threshold the encoded text goes to RUN_DIR/.cache/corpus.bin
    while the run is being set up; that must not make the new run directory look taken."""
    from rnn_dissect.train import data

    monkeypatch.setattr(data, "_MEMMAP_ABOVE", 100)
    kinds = []

    def load_corpus(*a, **k):
        c = data.load_corpus(*a, **k)
        f = Path(k["cache_dir"]) / "corpus.bin"
        kinds.append((type(c.data), f.stat().st_size if f.exists() else None))
        return c

    monkeypatch.setattr(train, "load_corpus", load_corpus)
    d = tmp_path / "run"
    rc, _, err = run(capsys, text, "--out", d, "--steps", 4, *SMALL)
    assert rc == 0, err
    rc, _, err = run(capsys, "--resume", "--out", d, "--steps", 6)
    assert rc == 0 and metrics(d)[-1]["step"] == 6, err
    assert kinds == [(np.memmap, len(TEXT))] * 2  # one byte per char, mapped both times
    assert not (d / ".cache").exists()  # a scratch encoding: removed when the command ends
    straight = tmp_path / "straight"
    monkeypatch.setattr(data, "_MEMMAP_ABOVE", 1 << 30)  # in memory: the same training
    assert run(capsys, text, "--out", straight, "--steps", 6, *SMALL)[0] == 0
    assert kinds[2] == (np.ndarray, None)  # this one in memory
    assert (d / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()


def test_learning_rate_schedule():
    cfg = TrainConfig(steps=110, warmup=10, lr=1.0, lr_min=0.1)
    assert [lr_at(cfg, k) for k in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert (
        lr_at(cfg, 10) == 1.0
        and abs(lr_at(cfg, 60) - 0.55) < 1e-12
        and lr_at(cfg, 110) == pytest.approx(0.1)
    )
    assert lr_at(TrainConfig(steps=110, warmup=0, schedule="constant", lr=0.5), 77) == 0.5
    held = TrainConfig(steps=110, warmup=10, decay_start=60, lr=1.0, lr_min=0.1)
    assert lr_at(held, 30) == lr_at(held, 60) == 1.0  # the peak until decay_start
    assert abs(lr_at(held, 85) - 0.55) < 1e-12 and lr_at(held, 110) == pytest.approx(0.1)
