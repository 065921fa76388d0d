"""The GEMM library chosen by measurement (kernels/choice.py), the environment read once, and
``rnn-dissect doctor``. Oracles: the timings a fake measurement returns (the faster must win),
the cache file parsed as JSON, /proc/cpuinfo read here independently."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rnn_dissect import cli
from rnn_dissect.errors import UserError
from rnn_dissect.train.kernels import Backend, Preference, StepShape, blas, choice, fused, machine

SHAPE = StepShape("lstm", 8, 1, 2, 5, 6)
FUSED = fused.AVAILABLE


@pytest.fixture
def fake_times(monkeypatch):
    """measure() replaced by fixed timings; returns the list of shapes it was asked about."""
    asked: list[str] = []
    times = {"mkl": 2.0e-3, "numpy": 1.0e-3}

    def fake(shape, use_fused, budget=0.6):
        asked.append(shape.key)
        return dict(times)

    monkeypatch.setattr(choice, "measure", fake)
    monkeypatch.setattr(blas, "available", lambda: True)
    monkeypatch.setattr(choice, "load_average", lambda: 0.25)  # a quiet machine, whatever runs
    return asked, times


def test_env_is_read_once_into_a_preference(tmp_path):
    p = Preference.from_env({"XDG_CACHE_HOME": str(tmp_path)})
    assert p == Preference("auto", True, tmp_path / "rnn-dissect")
    assert Preference.from_env({"HOME": str(tmp_path)}).cache_dir == tmp_path / ".cache/rnn-dissect"
    assert Preference.from_env({"RNN_DISSECT_MKL": "0", "HOME": "/h"}).gemm == "numpy"
    assert Preference.from_env({"RNN_DISSECT_GEMM": "NumPy", "HOME": "/h"}).gemm == "numpy"
    assert not Preference.from_env({"RNN_DISSECT_FUSED": "0", "HOME": "/h"}).fused
    assert not Preference.from_env({"RNN_DISSECT_FUSED": "Off", "HOME": "/h"}).fused
    assert Preference.from_env({"RNN_DISSECT_FUSED": "yes", "HOME": "/h"}).fused
    assert Preference.from_env({"RNN_DISSECT_MKL": "false", "HOME": "/h"}).gemm == "numpy"
    with pytest.raises(UserError, match="RNN_DISSECT_FUSED='maybe' is not one of 1/on"):
        Preference.from_env({"RNN_DISSECT_FUSED": "maybe", "HOME": "/h"})
    with pytest.raises(UserError, match="RNN_DISSECT_GEMM='openblas' is not one of auto"):
        Preference.from_env({"RNN_DISSECT_GEMM": "openblas", "HOME": "/h"})


def test_mkl_asked_for_but_missing_is_one_clear_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(blas, "available", lambda: False)
    with pytest.raises(UserError, match="oneMKL is not installed"):
        Preference.from_env({"RNN_DISSECT_GEMM": "mkl", "HOME": "/h"})
    monkeypatch.setenv("RNN_DISSECT_GEMM", "mkl")
    rc = cli.main(["train", "--out", str(tmp_path / "r"), "--steps", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: RNN_DISSECT_GEMM=mkl")
    assert not (tmp_path / "r").exists()


def test_the_faster_library_is_chosen_and_remembered(tmp_path, fake_times):
    asked, times = fake_times
    m = choice.choose(SHAPE, FUSED, tmp_path)
    assert (m.gemm, m.seconds, m.cached) == ("numpy", times, False)
    doc = json.loads((tmp_path / choice.CACHE_NAME).read_text())
    assert doc["format"] == "rnn-dissect/gemm-choice"
    [entry] = doc["entries"]
    assert entry["machine"] == machine.fingerprint() and entry["shape"] == "lstm H8 L1 B2 V5"
    assert entry["gemm"] == "numpy" and entry["seconds"] == times
    again = choice.choose(SHAPE, FUSED, tmp_path)  # read back, not measured again
    assert (again.gemm, again.seconds, again.cached) == ("numpy", times, True)
    assert asked == [SHAPE.key]
    times["mkl"] = 0.5e-3  # the machine changed its mind: only a re-measurement sees it
    assert choice.choose(SHAPE, FUSED, tmp_path, remeasure=True).gemm == "mkl"
    assert choice.choose(SHAPE, FUSED, tmp_path).gemm == "mkl"
    assert len(json.loads((tmp_path / choice.CACHE_NAME).read_text())["entries"]) == 1
    other = StepShape("gru", 8, 1, 2, 5)
    choice.choose(other, FUSED, tmp_path)
    assert asked == [SHAPE.key, SHAPE.key, other.key]


def test_another_machines_entries_and_a_broken_cache_are_ignored(tmp_path, fake_times):
    asked, _ = fake_times
    path = tmp_path / choice.CACHE_NAME
    foreign = {**machine.fingerprint(), "cpu": "Some Other CPU"}
    entry = {"machine": foreign, "shape": SHAPE.key, "fused": FUSED, "gemm": "mkl", "seconds": {}}
    path.write_text(json.dumps({"format": choice.FORMAT, "version": 1, "entries": [entry]}))
    assert choice.choose(SHAPE, FUSED, tmp_path).gemm == "numpy" and len(asked) == 1
    assert len(json.loads(path.read_text())["entries"]) == 2  # the other machine's kept
    path.write_text("{not json")
    assert choice.choose(SHAPE, FUSED, tmp_path).gemm == "numpy" and len(asked) == 2
    doc = json.loads(path.read_text())
    doc["entries"][0]["seconds"] = "fast"  # damaged by hand: skipped, measured again
    path.write_text(json.dumps(doc))
    assert choice.choose(SHAPE, FUSED, tmp_path).gemm == "numpy" and len(asked) == 3


def test_a_busy_machines_measurement_serves_its_run_only(tmp_path, fake_times, monkeypatch):
    asked, _ = fake_times
    cores = machine.cores()
    assert choice.busy(cores) and not choice.busy(cores - 0.5) and not choice.busy(math.nan)
    monkeypatch.setattr(choice, "load_average", lambda: float(cores))
    m = choice.choose(SHAPE, FUSED, tmp_path)
    assert (m.gemm, m.cached, m.load) == ("numpy", False, float(cores))
    assert not (tmp_path / choice.CACHE_NAME).exists()  # nothing remembered
    choice.choose(SHAPE, FUSED, tmp_path)
    assert asked == [SHAPE.key, SHAPE.key]  # measured again
    # an entry an older version remembered under load is not trusted either
    path = tmp_path / choice.CACHE_NAME
    entry = {
        "machine": machine.fingerprint(),
        "shape": SHAPE.key,
        "fused": FUSED,
        "gemm": "mkl",
        "seconds": {"mkl": 0.001, "numpy": 1.2},
        "load": cores + 4.0,
    }
    path.write_text(json.dumps({"format": choice.FORMAT, "version": 1, "entries": [entry]}))
    monkeypatch.setattr(choice, "load_average", lambda: 0.25)
    m = choice.choose(SHAPE, FUSED, tmp_path)
    assert (m.gemm, m.cached) == ("numpy", False) and len(asked) == 3
    [kept] = json.loads(path.read_text())["entries"]  # replaced by the quiet measurement
    assert kept["gemm"] == "numpy" and kept["load"] == 0.25
    assert choice.choose(SHAPE, FUSED, tmp_path).cached and len(asked) == 3


def test_fixed_preferences_do_not_measure(tmp_path, fake_times):
    asked, _ = fake_times
    assert Preference("numpy", False, tmp_path).resolve(SHAPE) == Backend("numpy", False)
    assert Preference("auto", False, tmp_path).resolve(SHAPE) == Backend("numpy", False)
    assert asked == [SHAPE.key]


@pytest.mark.skipif(not blas.available(), reason="oneMKL is not installed: nothing to compare")
def test_real_measurement_times_both_libraries_quickly(tmp_path):
    secs = choice.measure(StepShape("gru", 16, 1, 4, 7, 5), FUSED, budget=0.05)
    assert set(secs) == {"mkl", "numpy"}
    assert all(math.isfinite(s) and 0 < s < 1 for s in secs.values())


def test_cpu_model_is_cpuinfos(tmp_path):
    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo on this platform")
    names = [
        ln.split(":", 1)[1].strip()
        for ln in info.read_text().splitlines()
        if ln.startswith("model name")
    ]
    if names:
        assert machine.cpu_model().startswith(names[0])
    flags = next((ln for ln in info.read_text().splitlines() if ln.startswith("flags")), "")
    assert ("avx2" in machine.isa()) == (" avx2" in flags)


def test_doctor_prints_the_machine_and_the_remembered_choice(
    tmp_path, capsys, monkeypatch, fake_times
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("RNN_DISSECT_GEMM")  # the default: auto
    choice.choose(SHAPE, FUSED, tmp_path / "rnn-dissect")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    rows = {
        ln.split("  ", 1)[0]: ln.split("  ", 1)[1].strip() for ln in out.splitlines() if ln.strip()
    }
    assert rows["CPU"] == machine.cpu_model()
    assert rows["numpy"].startswith(np.__version__)
    assert rows["GEMM"].startswith("auto")
    assert "1 remembered for this machine" in rows["choices"]
    line = next(ln for ln in out.splitlines() if SHAPE.key in ln)
    assert (
        "mkl 2.0 ms" in line
        and "numpy 1.0 ms" in line
        and line.rstrip().split("→ ")[1].startswith("numpy")
    )


def test_doctor_measure_on_a_busy_machine_says_so(tmp_path, capsys, monkeypatch, fake_times):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("RNN_DISSECT_GEMM")
    monkeypatch.setattr(choice, "load_average", lambda: float(machine.cores() + 3))
    assert cli.main(["doctor", "--measure"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("measured now"))
    assert "busy" in line and "not remembered" in line
    assert "0 remembered for this machine" in out
    assert out.count("not trusted") >= 1


def test_a_run_records_its_gemm_library_and_a_resume_keeps_it(
    tmp_path, capsys, monkeypatch, fake_times
):
    """config.json says which library trained the run; a resume uses it even when the
    choice cache now says otherwise (so it continues bit for bit)."""
    asked, _ = fake_times  # numpy measured faster
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RNN_DISSECT_GEMM")
    text = tmp_path / "t.txt"
    text.write_text("hello world, hello dissected world\n" * 40)
    d = tmp_path / "run"
    common = [str(text), "--hidden", "8", "--seq-len", "8", "--batch", "2", "--quiet"]
    common += ["--log-every", "1", "--sample-every", "0"]
    assert cli.main(["train", "--out", str(d), "--steps", "2", *common]) == 0
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["kernels"] == {"gemm": "numpy", "fused": FUSED} and len(asked) == 1
    seen = []
    real = choice.Preference.resolve
    monkeypatch.setattr(
        choice.Preference, "resolve", lambda self, sh: seen.append(sh) or real(self, sh)
    )
    assert cli.main(["train", "--out", str(d), "--steps", "4", "--resume", *common]) == 0
    assert seen == []  # the run's own record was used, no choice made
    assert json.loads((d / "config.json").read_text())["kernels"]["gemm"] == "numpy"
    capsys.readouterr()
