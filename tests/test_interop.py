"""PyTorch interop: exact copies both ways, the same function on both sides, training that
crosses over and back, state-dict import, and the ``convert`` command.

Oracles: our recorded graph (cells.py) forward and backward in float64 against the torch
modules ``to_torch`` builds; a hand-written SGD and Adam step against torch.optim.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from rnn_dissect import Graph, cli
from rnn_dissect.errors import UserError
from rnn_dissect.nets.cells import CELLS, LayerParams
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.interop import from_torch, import_state_dict, to_torch

VOCAB = tuple("abcde")
V = len(VOCAB)


def model(cell: str, layers: int = 2, hidden: int = 4, dtype: type = np.float64, seed: int = 0):
    return CharModel.init(ModelConfig(cell, VOCAB, hidden, layers), seed=seed, dtype=dtype)


def same(a: CharModel, b: CharModel) -> bool:
    return (
        a.config == b.config
        and list(a.params) == list(b.params)
        and all(
            a.params[k].dtype == b.params[k].dtype
            and a.params[k].tobytes() == b.params[k].tobytes()
            for k in a.params
        )
    )


def ours(m: CharModel, idx: np.ndarray, tgt: np.ndarray):
    """Our graph: logits (T, B, V), mean cross-entropy and every parameter's gradient."""
    cfg, (T, B) = m.config, idx.shape
    g = Graph(np.float64)
    P = {k: g.param(v, name=k) for k, v in m.params.items()}
    layers = [
        LayerParams(*(P[f"rnn.{w}_l{k}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        for k in range(cfg.num_layers)
    ]
    zeros = np.zeros((B, cfg.hidden_size))
    n_state = 2 if cfg.cell == "lstm" else 1
    state = [
        tuple(g.state(zeros, id=f"t0.l{k}.{s}") for s in "hc"[:n_state])
        for k in range(cfg.num_layers)
    ]
    logits, losses = [], []
    for t in range(1, T + 1):
        x = g.input(idx[t - 1], id=f"t{t}.x")
        for k, p in enumerate(layers):
            state[k] = CELLS[cfg.cell](g, p, x, state[k], t, k)
            x = state[k][0]
        z = g.apply("linear", x, P["head.weight"], P["head.bias"], id=f"t{t}.logits")
        logits.append(z.value)
        losses.append(g.apply("softmax_ce", z, g.target(tgt[t - 1]), reduction="sum"))
    loss = g.apply("mul", g.apply("addn", *losses), 1.0 / (T * B))
    g.backward(loss)
    return np.stack(logits), float(loss.value), {k: n.grad for k, n in P.items()}


def theirs(rnn, head, idx: np.ndarray, tgt: np.ndarray):
    """The torch modules on the same one-hot input: logits (T, B, V) and mean cross-entropy."""
    dtype = head.weight.dtype
    x = torch.nn.functional.one_hot(torch.from_numpy(idx), V).to(dtype)  # (T, B, V)
    out, _ = rnn(x)  # (T, B, H)
    z = head(out)  # (T, B, V)
    loss = torch.nn.functional.cross_entropy(z.reshape(-1, V), torch.from_numpy(tgt).reshape(-1))
    return z, loss


def batch(seed: int, T: int = 6, B: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_to_torch_from_torch_is_identical(cell: str, layers: int, dtype: type) -> None:
    m = model(cell, layers, dtype=dtype, seed=layers)
    rng_before = torch.random.get_rng_state()
    rnn, head = to_torch(m)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # no hidden random init
    assert type(rnn) is getattr(torch.nn, cell.upper()) and rnn.num_layers == layers
    assert not rnn.batch_first and rnn.training
    assert same(from_torch(rnn, head, VOCAB), m)
    # and from torch's side: a torch-initialised module survives the trip bit for bit
    torch.manual_seed(layers)
    t_dtype = torch.float64 if dtype == np.float64 else torch.float32
    rnn0 = getattr(torch.nn, cell.upper())(V, 3, num_layers=layers, dtype=t_dtype)
    head0 = torch.nn.Linear(3, V, dtype=t_dtype)
    rnn1, head1 = to_torch(from_torch(rnn0, head0, VOCAB))
    for a, b in [(rnn0, rnn1), (head0, head1)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        assert all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_modules_compute_our_function(cell: str) -> None:
    """Forward and backward of to_torch's modules equal our graph in float64."""
    m = model(cell, layers=2, hidden=4, seed=3)
    idx, tgt = batch(7)
    z_ours, loss_ours, grads = ours(m, idx, tgt)
    rnn, head = to_torch(m)
    z, loss = theirs(rnn, head, idx, tgt)
    loss.backward()
    assert rel(z.detach().numpy(), z_ours) < 1e-12
    assert abs(loss.item() - loss_ours) < 1e-12 * abs(loss_ours)
    named = [*(("rnn." + n, p) for n, p in rnn.named_parameters())]
    named += [("head." + n, p) for n, p in head.named_parameters()]
    for k, p in named:
        assert rel(p.grad.numpy(), grads[k]) < 1e-10, k


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_crosses_over_and_back(cell: str) -> None:
    """One step of SGD and one of Adam in torch, back here: the update we expect by hand."""
    m = model(cell, layers=2, hidden=4, seed=5)
    idx, tgt = batch(11)
    _, _, grads = ours(m, idx, tgt)
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    expected_sgd = {k: v - lr * grads[k] for k, v in m.params.items()}
    # Adam's first step: m̂ = g, v̂ = g², so Δ = −lr · g / (|g| + eps)
    expected_adam = {k: v - lr * grads[k] / (np.abs(grads[k]) + eps) for k, v in m.params.items()}
    for opt, expected in [(torch.optim.SGD, expected_sgd), (torch.optim.Adam, expected_adam)]:
        rnn, head = to_torch(m)
        kw = {"betas": (b1, b2), "eps": eps} if opt is torch.optim.Adam else {}
        o = opt([*rnn.parameters(), *head.parameters()], lr=lr, **kw)
        theirs(rnn, head, idx, tgt)[1].backward()
        o.step()
        back = from_torch(rnn, head, VOCAB)
        for k, v in expected.items():
            assert rel(back.params[k], v) < 1e-10, (opt.__name__, k)
        # and our model continues from there in torch unchanged
        rnn2, _ = to_torch(back)
        assert all(
            torch.equal(a, b) for a, b in zip(rnn.parameters(), rnn2.parameters(), strict=True)
        )


def test_float32_stays_float32_through_checkpoint_and_torch(tmp_path: Path) -> None:
    m = model("lstm", 2, dtype=np.float32)
    checkpoint.save(m, tmp_path / "m.safetensors")
    rnn, head = to_torch(checkpoint.load(tmp_path / "m.safetensors"))
    assert rnn.weight_hh_l1.dtype == torch.float32
    back = from_torch(rnn, head, VOCAB)
    checkpoint.save(back, tmp_path / "n.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes() == (tmp_path / "n.safetensors").read_bytes()


# ----------------------------------------------------------------------------- unsupported modules
@pytest.mark.parametrize(
    "rnn,head,expected",
    [
        (
            lambda: torch.nn.LSTM(V, 4, bidirectional=True),
            lambda: torch.nn.Linear(8, V),
            "bidirectional",
        ),
        (lambda: torch.nn.LSTM(V, 4, proj_size=2), lambda: torch.nn.Linear(2, V), "proj_size=2"),
        (lambda: torch.nn.RNN(V, 4, nonlinearity="relu"), lambda: torch.nn.Linear(4, V), "relu"),
        (lambda: torch.nn.GRU(V, 4, bias=False), lambda: torch.nn.Linear(4, V), "bias=False"),
        (lambda: torch.nn.Linear(V, 4), lambda: torch.nn.Linear(4, V), "nn.RNN, nn.LSTM or nn.GRU"),
        (lambda: torch.nn.GRU(V + 1, 4), lambda: torch.nn.Linear(4, V), "input_size=6"),
        (lambda: torch.nn.GRU(V, 4), lambda: torch.nn.Linear(4, V, bias=False), "with a bias"),
        (lambda: torch.nn.GRU(V, 4), lambda: torch.nn.Linear(3, V), "Linear(3, 5)"),
        (lambda: torch.nn.GRU(V, 4).half(), lambda: torch.nn.Linear(4, V).half(), "torch.float16"),
    ],
)
def test_unsupported_modules_are_one_clear_line(rnn, head, expected: str) -> None:
    with pytest.raises(UserError) as e:
        from_torch(rnn(), head(), VOCAB)
    assert expected in str(e.value) and "\n" not in str(e.value), str(e.value)


# ----------------------------------------------------------------------------- state dict files
def _state_dict(m: CharModel, rnn_prefix: str, head_prefix: str) -> dict[str, torch.Tensor]:
    rnn, head = to_torch(m)
    sd = {rnn_prefix + k: v for k, v in rnn.state_dict().items()}
    return sd | {head_prefix + k: v for k, v in head.state_dict().items()}


@pytest.mark.parametrize(
    "rnn_prefix,head_prefix,wrap,suffix",
    [
        ("rnn.", "head.", None, ".pt"),
        ("lstm.", "fc.", "state_dict", ".pth"),
        ("module.rnn.", "decoder.", "model", ".bin"),
        ("encoder.", "out.", None, ".safetensors"),
    ],
)
def test_import_state_dict(tmp_path: Path, rnn_prefix: str, head_prefix: str, wrap, suffix: str):
    m = model("lstm", 2, dtype=np.float32)
    sd = _state_dict(m, rnn_prefix, head_prefix)
    path = tmp_path / f"sd{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(sd, str(path))
    else:
        torch.save({wrap: sd, "epoch": 3} if wrap else sd, path)
    assert same(import_state_dict(path, VOCAB), m)
    assert same(import_state_dict(path, VOCAB, cell="lstm"), m)


def test_bad_state_dicts(tmp_path: Path) -> None:
    m = model("gru", 1)
    cases = {
        "bidirectional": {"rnn.weight_ih_l0_reverse": torch.zeros(12, V)}
        | _state_dict(m, "rnn.", "fc."),
        "embedding": _state_dict(m, "rnn.", "fc.") | {"embed.weight": torch.zeros(V, 3)},
        "must hold one RNN/LSTM/GRU": {"fc.weight": torch.zeros(V, 4), "fc.bias": torch.zeros(V)},
        "not a tensor": _state_dict(m, "rnn.", "fc.") | {"optimizer": {"lr": 0.1}},
        "is torch.int64": {k: v.long() for k, v in _state_dict(m, "rnn.", "fc.").items()},
        "neither part": _state_dict(m, "rnn.", "fc.") | {"step_count": torch.zeros(())},
    }
    for expected, sd in cases.items():
        torch.save(sd, tmp_path / "sd.pt")
        with pytest.raises(UserError) as e:
            import_state_dict(tmp_path / "sd.pt", VOCAB)
        assert expected in str(e.value) and "\n" not in str(e.value), (expected, str(e.value))
    torch.save(_state_dict(m, "rnn.", "fc."), tmp_path / "sd.pt")
    with pytest.raises(UserError, match="holds gru weights, not lstm"):
        import_state_dict(tmp_path / "sd.pt", VOCAB, cell="lstm")
    with pytest.raises(UserError, match="vocab=4"):
        import_state_dict(tmp_path / "sd.pt", VOCAB[:4])
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match=r"not a file torch\.load can read"):
        import_state_dict(tmp_path / "junk.pt", VOCAB)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def test_import_never_executes_a_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    torch.save({"rnn.weight_ih_l0": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"holds the Python object .*open.*weights_only=True"):
        import_state_dict(tmp_path / "evil.pt", VOCAB)
    assert (
        cli_main(
            [
                "convert",
                str(tmp_path / "evil.pt"),
                "--vocab-file",
                _vocab_file(tmp_path),
                "--out",
                str(tmp_path / "o.safetensors"),
            ]
        )
        == 2
    )
    assert not marker.exists() and not (tmp_path / "o.safetensors").exists()


# ----------------------------------------------------------------------------- the CLI
def cli_main(argv: list[str]) -> int:
    """``rnn-dissect`` in-process with just this command registered (others may be absent)."""
    saved = cli._COMMANDS
    cli._COMMANDS = ["convert"]
    try:
        return cli.main(argv)
    finally:
        cli._COMMANDS = saved


def _vocab_file(tmp_path: Path) -> str:
    (tmp_path / "vocab.json").write_text(json.dumps(list(VOCAB)))
    return str(tmp_path / "vocab.json")


def test_convert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = model("gru", 2, dtype=np.float32)
    torch.save(_state_dict(m, "gru.", "fc."), tmp_path / "m.pt")
    out = tmp_path / "m.safetensors"
    args = [
        "convert",
        str(tmp_path / "m.pt"),
        "--vocab-file",
        _vocab_file(tmp_path),
        "--out",
        str(out),
    ]
    assert cli_main(args) == 0
    assert same(checkpoint.load(out), m)
    assert "gru, hidden 4, 2 layer(s), vocab 5, float32" in capsys.readouterr().out
    # never overwrite without --force
    before = out.read_bytes()
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and err.count("\n") == 1
    assert out.read_bytes() == before
    assert cli_main([*args, "--force"]) == 0
    # --vocab-text: sorted(set(text)) gives the same vocabulary here
    (tmp_path / "corpus.txt").write_text("edcbaabcde")
    args2 = ["convert", str(tmp_path / "m.pt"), "--vocab-text", str(tmp_path / "corpus.txt")]
    assert cli_main([*args2, "--out", str(tmp_path / "v.safetensors")]) == 0
    assert same(checkpoint.load(tmp_path / "v.safetensors"), m)
    # --info lists the contract metadata and every tensor's dtype and shape
    capsys.readouterr()
    assert cli_main(["convert", str(out), "--info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  format = rnn-dissect/1" in lines and "  num_layers = 2" in lines
    shapes = {
        ln.split()[0]: (ln.split()[1], json.loads(" ".join(ln.split()[2:])))
        for ln in lines
        if ln.startswith("  rnn.") or ln.startswith("  head.")
    }
    assert shapes == {k: ("F32", list(v.shape)) for k, v in m.params.items()}


def test_convert_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"a": torch.zeros(2)}, tmp_path / "x.pt")
    out = str(tmp_path / "o.safetensors")
    for argv in [
        ["convert", str(tmp_path / "x.pt"), "--info"],  # a pickle is not a checkpoint
        ["convert", str(tmp_path / "x.pt"), "--out", out],  # no vocabulary
        [
            "convert",
            str(tmp_path / "missing.pt"),
            "--vocab-file",
            _vocab_file(tmp_path),
            "--out",
            out,
        ],
        ["convert", str(tmp_path / "x.pt"), "--vocab-file", str(tmp_path / "x.pt"), "--out", out],
        ["convert", str(tmp_path / "x.pt"), "--out", str(tmp_path / "o.pt")],
    ]:
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err


def test_convert_upgrades_a_minimal_file(tmp_path: Path) -> None:
    m = model("rnn", 1)
    safetensors.torch.save_file(
        {k: torch.from_numpy(v) for k, v in m.params.items()},
        str(tmp_path / "w.safetensors"),
        metadata={"vocab": json.dumps(list(VOCAB))},
    )
    assert (
        cli_main(
            [
                "convert",
                str(tmp_path / "w.safetensors"),
                "--out",
                str(tmp_path / "full.safetensors"),
            ]
        )
        == 0
    )
    assert checkpoint.read_info(tmp_path / "full.safetensors").metadata["format"] == "rnn-dissect/1"
    assert same(checkpoint.load(tmp_path / "full.safetensors"), m)


def test_importing_the_package_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rnn_dissect, rnn_dissect.weights.checkpoint, rnn_dissect.weights.interop, rnn_dissect.cli; "
        "from rnn_dissect.cli import convert_cmd; assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
