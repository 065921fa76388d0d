"""Per-unit weight and gradient norms recorded at training snapshots, and drawn by ``neurons``.

Oracles: torch.linalg.vector_norm (float64) over the rows of the checkpoint weights saved at
the snapshot's step; the gradient of the step that led there recomputed by nn.LSTM + nn.Linear
in float64 (``torch_ref.module_run``) from the trainer state saved one step earlier; the SVG
parsed for its lines and their vertices.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_ref import module_run

from rnn_dissect import cli
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.train.data import Streams, load_corpus
from rnn_dissect.train.snapshot import load_unit_norms
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights import safetensors_file as stf

torch.set_num_threads(1)
H, L, B, S = 6, 2, 3, 8  # hidden, layers, batch, seq-len of the run
GATES = "ifgo"
TEXT = "".join(f'def f{i % 7}(x):\n    return (x * {i % 5}) + "{i % 3}"\n\n' for i in range(120))
SVG = "{http://www.w3.org/2000/svg}"


def row_norms(W_ih: np.ndarray, W_hh: np.ndarray) -> dict[tuple[str, int], float]:
    """(kind, u) -> ‖rows feeding u‖₂ in float64 torch: a gate's block, or (for h and c)
    the rows of unit u in every gate block."""
    A = torch.cat(
        [torch.tensor(W_ih, dtype=torch.float64), torch.tensor(W_hh, dtype=torch.float64)], 1
    )
    out = {}
    for u in range(H):
        for g, gate in enumerate(GATES):
            out[(gate, u)] = torch.linalg.vector_norm(A[g * H + u]).item()
        rows = A[[g * H + u for g in range(len(GATES))]]  # (4, in + H)
        out[("h", u)] = out[("c", u)] = torch.linalg.vector_norm(rows).item()
    return out


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory) -> dict:
    """5 steps (checkpoint at 5), then resumed to 6: snapshots at 0, 3, 6."""
    d = tmp_path_factory.mktemp("pn")
    f = d / "code.py"
    f.write_text(TEXT, encoding="utf-8")
    run = d / "run"
    args = (
        f"train {f} --out {run} --cell lstm --hidden {H} --layers {L} --seq-len {S} --batch {B} "
        "--steps 5 --warmup 2 --snapshot-every 3 --save-every 5 --probe-chars 200 "
        "--sample-every 0 --val-frac 0.1 --quiet"
    ).split()
    assert cli.main(args) == 0
    state5 = stf.read_tensors(run / "trainer.safetensors")
    assert stf.read_header(run / "trainer.safetensors").metadata["step"] == "5"
    assert cli.main(["train", "--resume", "--out", str(run), "--steps", "6", "--quiet"]) == 0

    # the gradient of step 5 (the one that led to step 6), by torch in float64
    corpus = load_corpus([f])
    x, y, reset = Streams(corpus.split(0.1)[0], B, S).batch_at(5)
    assert not reset  # the carried state enters the step
    params5 = {k[6:]: v for k, v in state5.items() if k.startswith("param.")}
    model5 = CharModel(ModelConfig("lstm", corpus.vocab, H, L), params5)
    _, _, grads = module_run(model5, x, y, h0=state5["carry.0"], c0=state5["carry.1"])
    return {"run": run, "grads": grads, "final": checkpoint.load(run / "model.safetensors")}


def test_snapshot_norms_equal_the_checkpoint_and_torch_gradient(lstm_run):
    run, grads, final = lstm_run["run"], lstm_run["grads"], lstm_run["final"]
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == [
        "step0000000", "step0000003", "step0000006"
    ]  # fmt: skip
    weight, grad = load_unit_norms(run / "snapshots" / "step0000006")
    assert weight is not None and grad is not None
    assert set(weight) == set(grad) == {(k, g) for k in range(L) for g in GATES}
    for k in range(L):
        want_w = row_norms(final.params[f"rnn.weight_ih_l{k}"], final.params[f"rnn.weight_hh_l{k}"])
        want_g = row_norms(grads[f"rnn.weight_ih_l{k}"], grads[f"rnn.weight_hh_l{k}"])
        for gate in GATES:
            w = [want_w[(gate, u)] for u in range(H)]
            g = [want_g[(gate, u)] for u in range(H)]
            np.testing.assert_allclose(weight[(k, gate)], w, rtol=1e-12)  # same float32 weights
            np.testing.assert_allclose(grad[(k, gate)], g, rtol=2e-4)  # float32 kernel vs f64
    # step 0: the initial weights, and no step yet, so no gradient
    weight0, grad0 = load_unit_norms(run / "snapshots" / "step0000000")
    assert weight0 is not None and grad0 is None
    assert not np.allclose(weight0[(0, "i")], weight[(0, "i")], rtol=1e-9, atol=0)  # it trained


def line_vertices(root: ET.Element, gid: str) -> int:
    """Markers drawn by the line with this id (one per finite point)."""
    (el,) = [e for e in root.iter() if e.get("id") == gid]
    return len(list(el.iter(SVG + "use")))


def test_neurons_writes_norm_trajectories_and_one_line_per_unit(lstm_run, tmp_path, capsys):
    run, grads, final = lstm_run["run"], lstm_run["grads"], lstm_run["final"]
    out = tmp_path / "n"
    assert cli.main(["neurons", str(run), "--out", str(out)]) == 0, capsys.readouterr().err
    tun = json.loads((out / "tuning.json").read_text())
    assert tun, "no feature had a best unit"
    units = {(e["layer"], e["kind"], e["unit"]) for e in tun.values()}
    for e in tun.values():
        k, kind, u = e["layer"], e["kind"], e["unit"]
        pn = e["param_norms"]
        assert e["steps"] == [0, 3, 6] and len(pn["weight"]) == 3 and pn["grad"][0] is None
        want_w = row_norms(final.params[f"rnn.weight_ih_l{k}"], final.params[f"rnn.weight_hh_l{k}"])
        want_g = row_norms(grads[f"rnn.weight_ih_l{k}"], grads[f"rnn.weight_hh_l{k}"])
        assert pn["weight"][-1] == pytest.approx(want_w[(kind, u)], rel=1e-8)
        assert pn["grad"][-1] == pytest.approx(want_g[(kind, u)], rel=2e-4)
        assert pn["grad"][1] > 0

    root = ET.parse(out / "param_norms.svg").getroot()
    ids = [e.get("id", "") for e in root.iter()]
    want_ids = {f"l{k}-{kind}{u}" for k, kind, u in units}
    assert sorted(i[6:] for i in ids if i.startswith("wnorm-")) == sorted(want_ids)
    assert sorted(i[6:] for i in ids if i.startswith("gnorm-")) == sorted(want_ids)
    for name in want_ids:  # 3 snapshots; the gradient is missing at step 0
        assert line_vertices(root, f"wnorm-{name}") == 3
        assert line_vertices(root, f"gnorm-{name}") == 2
    assert (out / "param_norms.png").stat().st_size > 0


def test_snapshots_without_norms_still_load(lstm_run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(lstm_run["run"], old)
    for p in old.glob("snapshots/*/param_norms.safetensors"):
        p.unlink()  # as written before the norms were recorded
    assert load_unit_norms(old / "snapshots" / "step0000003") == (None, None)
    out = tmp_path / "n"
    assert cli.main(["neurons", str(old), "--out", str(out)]) == 0, capsys.readouterr().err
    tun = json.loads((out / "tuning.json").read_text())
    assert tun and all("param_norms" not in e and e["steps"] == [0, 3, 6] for e in tun.values())
    assert not (out / "param_norms.svg").exists()
    assert (out / "score_curves.svg").is_file()


def test_norm_files_hold_one_float64_row_per_layer_and_gate(lstm_run):
    p: Path = lstm_run["run"] / "snapshots" / "step0000003" / "param_norms.safetensors"
    arrays = stf.read_tensors(p)
    assert len(arrays) == 2 * L * len(GATES)  # weight and grad, per layer and gate
    assert all(a.shape == (H,) and a.dtype == np.float64 for a in arrays.values())
