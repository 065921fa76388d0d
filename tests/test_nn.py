"""The I:H:O network: hand-derived numbers, PyTorch float64, central differences, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_dissect.autograd.gradcheck import gradcheck
from rnn_dissect.cli import main
from rnn_dissect.nets import mlp

IDS = ["x", "y", "W1", "b1", "z1", "h1", "W2", "b2", "z2", "yhat", "loss"]


def rel(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


# --------------------------------------------------------------------- by hand
def test_defaults_match_hand_derivation():
    """x = (0.5, −1.2, 2), W1 = (0.3, −0.1, 0.2), b1 = 0.1, W2 = 0.8, b2 = −0.2, y = 1."""
    g = mlp.build(mlp.DEFAULTS).graph
    # forward
    z1 = 0.3 * 0.5 + (-0.1) * (-1.2) + 0.2 * 2.0 + 0.1  # 0.15 + 0.12 + 0.4 + 0.1 = 0.77
    assert math.isclose(z1, 0.77, rel_tol=1e-15)
    h = max(0.0, z1)  # ReLU active: 0.77
    z2 = 0.8 * h + (-0.2)  # 0.616 − 0.2 = 0.416
    assert math.isclose(z2, 0.416, rel_tol=1e-15)
    yhat = 1.0 / (1.0 + math.exp(-z2))  # σ(0.416) ≈ 0.60253
    loss = -(1.0 * math.log(yhat) + 0.0 * math.log(1.0 - yhat))  # −log ŷ ≈ 0.50662
    assert abs(yhat - 0.6025256899) < 1e-10 and abs(loss - 0.5066249757) < 1e-10
    # backward, one local derivative at a time
    dL_dyhat = -1.0 / yhat  # d/dŷ of −log ŷ
    dyhat_dz2 = yhat * (1.0 - yhat)  # sigmoid'
    dL_dz2 = dL_dyhat * dyhat_dz2  # = ŷ − 1
    assert math.isclose(dL_dz2, yhat - 1.0, rel_tol=1e-14)
    dL_dW2 = dL_dz2 * h  # dz2/dW2 = h
    dL_db2 = dL_dz2 * 1.0  # dz2/db2 = 1
    dL_dh = dL_dz2 * 0.8  # dz2/dh = W2
    dL_dz1 = dL_dh * 1.0  # dh/dz1 = 1 since z1 > 0
    dL_dW1 = [dL_dz1 * 0.5, dL_dz1 * -1.2, dL_dz1 * 2.0]  # dz1/dW1 = x
    dL_db1 = dL_dz1  # dz1/db1 = 1
    dL_dx = [dL_dz1 * 0.3, dL_dz1 * -0.1, dL_dz1 * 0.2]  # dz1/dx = W1
    want_values = {"z1": z1, "h1": h, "z2": z2, "yhat": yhat, "loss": loss}
    want_grads = {
        "yhat": dL_dyhat,
        "z2": dL_dz2,
        "W2": dL_dW2,
        "b2": dL_db2,
        "h1": dL_dh,
        "z1": dL_dz1,
        "W1": dL_dW1,
        "b1": dL_db1,
        "x": dL_dx,
        "loss": 1.0,
    }
    for k, v in want_values.items():
        assert rel(g[k].value, v) <= 1e-14, k
    for k, v in want_grads.items():
        assert rel(np.ravel(g[k].grad), np.ravel(v)) <= 1e-14, k
    assert g["y"].grad is None  # the target takes no gradient


def test_relu_inactive_blocks_the_gradient():
    # x negated: z1 = −(0.15 + 0.12 + 0.4) + 0.1 = −0.57 ≤ 0, so h = 0 and dh/dz1 = 0
    g = mlp.build({**mlp.DEFAULTS, "x": [-0.5, 1.2, -2.0]}).graph
    assert rel(g["z1"].value, -0.57) <= 1e-14 and g["h1"].value[0] == 0.0
    yhat = 1.0 / (1.0 + math.exp(0.2))  # z2 = 0.8·0 − 0.2
    assert rel(g["h1"].grad, (yhat - 1.0) * 0.8) <= 1e-14  # gradient reaches h …
    for k in ("z1", "W1", "b1", "x"):  # … and stops there: exactly zero upstream
        assert np.all(g[k].grad == 0.0), k
    assert np.all(g["W2"].grad == 0.0)  # dz2/dW2 = h = 0
    step = mlp.sgd_update(mlp.build({**mlp.DEFAULTS, "x": [-0.5, 1.2, -2.0]}), 0.5)
    assert np.array_equal(step.new["W1"], step.old["W1"])  # SGD leaves W1, b1 unchanged
    assert np.array_equal(step.new["b1"], step.old["b1"])


def test_sgd_update_and_loss_after():
    net = mlp.build(mlp.DEFAULTS)
    step = mlp.sgd_update(net, lr=0.1)
    for k in mlp.PARAMS:
        assert np.array_equal(step.new[k], net.graph[k].value - 0.1 * net.graph[k].grad)
    again = mlp.build({**net.values(), **step.new})
    assert step.loss_after == again.loss < step.loss_before == net.loss
    assert np.array_equal(net.graph["W1"].value, step.old["W1"])  # net itself not modified


# --------------------------------------------------------------------- PyTorch, float64
def torch_reference(values: dict[str, np.ndarray], lr: float):
    t = {
        k: torch.tensor(
            np.asarray(v, dtype=np.float64), dtype=torch.float64, requires_grad=k != "y"
        )
        for k, v in values.items()
    }
    z1 = torch.nn.functional.linear(t["x"], t["W1"], t["b1"])
    h1 = torch.relu(z1)
    z2 = torch.nn.functional.linear(h1, t["W2"], t["b2"])
    yhat = torch.sigmoid(z2)
    loss = torch.nn.functional.binary_cross_entropy(yhat, t["y"])  # mean over the O outputs
    inner = {"z1": z1, "h1": h1, "z2": z2, "yhat": yhat, "loss": loss}
    for v in inner.values():
        v.retain_grad()
    loss.backward()
    params = [t[k] for k in mlp.PARAMS]
    opt = torch.optim.SGD(params, lr=lr)
    old = {k: t[k].detach().clone() for k in mlp.PARAMS}
    opt.step()
    return t, inner, old


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_sizes_match_torch(sizes, seed):
    values = mlp.init_values(sizes, np.random.default_rng(seed))
    net = mlp.build(values, sizes)
    step = mlp.sgd_update(net, 0.3)
    t, inner, _ = torch_reference(values, 0.3)
    g = net.graph
    for k, v in inner.items():
        assert rel(g[k].value, v.detach().numpy()) <= 1e-10, k
        assert rel(g[k].grad, v.grad.numpy()) <= 1e-10, k
    for k in ("x", *mlp.PARAMS):
        assert rel(g[k].grad, t[k].grad.numpy()) <= 1e-10, k
    for k in mlp.PARAMS:  # torch.optim.SGD took the same step
        assert rel(step.new[k], t[k].detach().numpy()) <= 1e-12, k


def test_central_differences():
    sizes = (3, 4, 2)
    net = mlp.build(mlp.init_values(sizes, np.random.default_rng(7)), sizes)
    g = net.graph
    assert np.all(np.abs(g["z1"].value) > 1e-3)  # away from the ReLU kink
    for check in gradcheck(g, g["loss"], [g[k] for k in ("x", *mlp.PARAMS)]):
        assert check.max_rel_error <= 1e-6, check.id


def test_bad_values_are_user_errors():
    with pytest.raises(mlp.UserError, match="--W1 needs 3 numbers"):
        mlp.build({**mlp.DEFAULTS, "W1": [1.0, 2.0]}, (3, 1, 1))
    with pytest.raises(mlp.UserError, match=r"--y must lie in \[0, 1\]"):
        mlp.build({**mlp.DEFAULTS, "y": [2.0]})
    with pytest.raises(mlp.UserError, match="overflowed"):
        mlp.build({**mlp.DEFAULTS, "x": [1e300, 1e300, 1e300], "W1": [1e300, 1e300, 1e300]})
    assert mlp.parse_sizes("3:4:2") == (3, 4, 2)


# --------------------------------------------------------------------- CLI, in process
def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["nn", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_table(capsys):
    rc, out, err = run_cli(capsys)
    assert rc == 0 and err == ""
    for node_id in IDS:
        assert f"│ {node_id} " in out
    assert "0.77" in out and "0.506625" in out and "-0.317979" in out
    assert "ReLU active" in out


def test_cli_json_schema_and_determinism(capsys):
    rc, out, _ = run_cli(capsys, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["format"] == "rnn-dissect/dissection" and doc["model"] == "mlp"
    assert doc["dtype"] == "float64" and doc["sizes"] == [3, 1, 1]
    assert [n["id"] for n in doc["nodes"]] == IDS
    for n in doc["nodes"]:
        assert set(n) >= {"id", "name", "kind", "op", "parents", "shape", "value", "grad"}
    by_id = {n["id"]: n for n in doc["nodes"]}
    assert by_id["z1"]["parents"] == ["x", "W1", "b1"] and by_id["z1"]["op"] == "linear"
    assert by_id["loss"]["kind"] == "loss" and by_id["y"]["grad"] is None
    net = mlp.build(mlp.DEFAULTS)
    assert doc["loss"] == net.loss  # floats survive JSON exactly
    assert set(doc["params"]) == set(mlp.PARAMS)
    assert doc["params"]["W1"]["grad"] == net.graph["W1"].grad.tolist()
    assert doc["sgd"]["lr"] == 0.1 and doc["sgd"]["loss_after"] < doc["loss"]
    _, out2, _ = run_cli(capsys, "--json")
    assert out2 == out  # byte-identical


def test_cli_sizes_and_seed(capsys):
    _, a, _ = run_cli(capsys, "--sizes", "3:4:2", "--seed", "1", "--json")
    _, b, _ = run_cli(capsys, "--sizes", "3:4:2", "--seed", "1", "--json")
    _, c, _ = run_cli(capsys, "--sizes", "3:4:2", "--seed", "2", "--json")
    assert a == b and a != c
    doc = json.loads(a)
    assert doc["sizes"] == [3, 4, 2] and doc["params"]["W1"]["shape"] == [4, 3]
    want = mlp.init_values((3, 4, 2), np.random.default_rng(1))
    assert doc["params"]["W2"]["value"] == want["W2"].tolist()
    # a flag given overrides just that leaf; the others still come from the seed
    _, d, _ = run_cli(capsys, "--sizes", "3:4:2", "--seed", "1", "--x", "1,2,3", "--json")
    doc_d = json.loads(d)
    assert doc_d["inputs"]["x"] == [1.0, 2.0, 3.0]
    assert doc_d["params"]["W2"]["value"] == want["W2"].tolist()


@pytest.mark.parametrize("form", [["--x", "-0.5,1.2,-2.0"], ["--x=-0.5,1.2,-2.0"]])
def test_cli_negative_numbers(capsys, form):
    rc, out, _ = run_cli(capsys, *form, "--json")
    assert rc == 0
    by_id = {n["id"]: n for n in json.loads(out)["nodes"]}
    assert by_id["x"]["value"] == [-0.5, 1.2, -2.0]
    assert by_id["W1"]["grad"] == [[0.0, 0.0, 0.0]]


def test_cli_out_writes_three_files(capsys, tmp_path):
    rc, out, _ = run_cli(capsys, "--out", str(tmp_path / "nn"))
    assert rc == 0
    files = {p.name for p in (tmp_path / "nn").iterdir()}
    assert files == {"graph.svg", "walkthrough.html", "dissection.json"}
    _, js, _ = run_cli(capsys, "--json")
    assert (tmp_path / "nn" / "dissection.json").read_text(encoding="utf-8") == js
    assert "wrote" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--x", "1,2"], "--x needs 3 numbers"),
        (["--W1", "1,2,3,4"], "--W1 needs 3 numbers"),
        (["--sizes", "3:4:1", "--W1", "1,2,3"], "--W1 needs 12 numbers"),
        (["--y", "1.5"], "--y must lie in [0, 1]"),
        (["--y", "-0.1"], "--y must lie in [0, 1]"),
        (["--x", "a,b,c"], "--x must be comma-separated numbers"),
        (["--x", "1,,2"], "--x must be comma-separated numbers"),
        (["--x", "nan,1,2"], "--x has a non-finite number"),
        (["--sizes", "3:0:1"], "--sizes '3:0:1' is not I:H:O"),
        (["--sizes", "3:1"], "is not I:H:O"),
        (["--sizes", "a:b:c"], "is not I:H:O"),
        (["--lr", "-1"], "--lr must be a non-negative number"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, needle):
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err and out == ""


def test_cli_out_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = run_cli(capsys, "--out", str(f))
    assert rc == 2 and "is a file" in err


def test_cli_without_graphviz(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot, no neato
    rc, out, err = run_cli(capsys)
    assert rc == 0 and "0.506625" in out  # the table needs no Graphviz
    rc, out, _ = run_cli(capsys, "--json")
    assert rc == 0 and json.loads(out)["model"] == "mlp"
    rc, _, err = run_cli(capsys, "--out", str(tmp_path / "o"))
    assert rc == 2 and err.count("\n") == 1 and "apt-get install graphviz" in err
    files = {p.name for p in (tmp_path / "o").iterdir()}
    assert files == {"walkthrough.html", "dissection.json"}
    assert "apt-get install graphviz" in (tmp_path / "o" / "walkthrough.html").read_text("utf-8")


def test_cli_help_explains_every_flag(capsys):
    rc = main(["nn", "--help"])
    out = capsys.readouterr().out
    assert rc == 0
    for flag in (
        "--x",
        "--y",
        "--W1",
        "--b1",
        "--W2",
        "--b2",
        "--sizes",
        "--lr",
        "--seed",
        "--out",
        "--json",
    ):
        assert flag in out
    assert "ReLU" in out and "sigmoid" in out and "W1 x + b1" in out


# --------------------------------------------------------------------- table and notebook views
def test_table_renders_every_node_at_a_fixed_width():
    from rnn_dissect.render.table import render_text

    g = mlp.build(mlp.DEFAULTS).graph
    text = render_text(g, width=120)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    rows = {line.split("│")[1].strip(): line for line in lines if line.startswith("│ ")}
    assert set(IDS) <= set(rows)
    for node_id, cells in {
        "z1": ("pre-activation", "linear", "0.77", "-0.317979"),
        "yhat": ("output", "sigmoid", "0.602526", "-1.65968"),
        "y": ("target", "leaf", "1", "-"),
    }.items():
        for c in cells:
            assert c in rows[node_id], (node_id, c)


def test_notebook_html_is_escaped():
    from rnn_dissect.autograd.engine import Graph

    g = Graph()
    w = g.param([1.5], id="<w>", name="<script>")
    g.backward((w * w).sum())
    page = g._repr_html_()
    assert "<script>" not in page and "&lt;w&gt;" in page
    assert page.startswith("<table") and "1.5" in page and ">3<" in page  # value and dL/dw = 2w
