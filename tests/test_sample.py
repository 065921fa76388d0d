"""Sampling: determinism, temperature → 0 is greedy decoding (oracle: torch float64), the
draws follow softmax(z / T), top-k, and the ``sample`` command's one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_dissect import cli
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.train.sample import generate, next_index, sample
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.interop import to_torch

torch.set_num_threads(1)
VOCAB = tuple("\n abcdefghij")


def model(cell: str = "lstm", seed: int = 0) -> CharModel:
    m = CharModel.init(ModelConfig(cell, VOCAB, hidden_size=16, num_layers=2), seed=seed)
    # larger weights than the default init make sharper, more interesting distributions
    return CharModel(m.config, {k: (3 * v).astype(np.float32) for k, v in m.params.items()})


def greedy_torch(m: CharModel, prime: str, length: int) -> str:
    """Argmax decoding with torch float64: feed the prime, then always the likeliest."""
    rnn, head = to_torch(m)
    rnn, head = rnn.double(), head.double()
    idx = list(m.encode(prime))
    out, state = "", None
    x = torch.nn.functional.one_hot(torch.tensor(idx), len(VOCAB)).double()[:, None]
    with torch.no_grad():
        for _ in range(length):
            h, state = rnn(x, state)
            i = int(head(h[-1, 0]).argmax())
            out += VOCAB[i]
            x = torch.nn.functional.one_hot(torch.tensor([i]), len(VOCAB)).double()[:, None]
    return out


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_temperature_zero_is_greedy_decoding(cell):
    m = model(cell)
    want = greedy_torch(m, "abc", 40)
    assert sample(m, "abc", 40, temperature=0.0) == "abc" + want
    # a tiny temperature is the same in practice (and consumes random draws)
    assert sample(m, "abc", 40, temperature=1e-4, seed=5) == "abc" + want


def test_same_seed_same_text_and_seeds_differ():
    m = model()
    a = sample(m, "a", 200, temperature=1.0, seed=1)
    assert a == sample(m, "a", 200, temperature=1.0, seed=1)
    assert a != sample(m, "a", 200, temperature=1.0, seed=2)
    assert len(a) == 201 and set(a) <= set(VOCAB)


def test_draws_follow_softmax_over_temperature():
    """20,000 draws from fixed logits: frequencies within 4 standard errors of softmax(z/T)."""
    z = np.array([2.0, 1.0, 0.0, -1.0, 0.5])
    for T in (0.5, 1.0, 2.0):
        rng = np.random.default_rng(0)
        n = 20_000
        counts = np.bincount([next_index(z, T, 0, rng) for _ in range(n)], minlength=5)
        p = np.exp(z / T) / np.exp(z / T).sum()
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(counts / n - p) < 4 * se + 1e-12), (T, counts / n, p)


def test_top_k_keeps_only_the_k_likeliest():
    z = np.array([0.1, 3.0, -2.0, 2.5, 0.0])
    rng = np.random.default_rng(0)
    drawn = {next_index(z, 5.0, 2, rng) for _ in range(500)}
    assert drawn == {1, 3}


def test_bad_arguments_are_user_errors_before_any_output(tmp_path, capsys):
    m = model()
    checkpoint.save(m, tmp_path / "m.safetensors")
    for args, needle in [
        (["--prime", "xyz"], "never saw: 'xyz'"),
        (["--temperature", "-1"], "--temperature"),
        (["--length", "-3"], "--length"),
        (["--prime", ""], "--prime is empty"),
    ]:
        assert cli.main(["sample", str(tmp_path / "m.safetensors"), *args]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("error: ") and needle in err and err.count("\n") == 1
    assert cli.main(["sample", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_sample_command_prints_prime_and_continuation(tmp_path, capsys):
    m = model()
    (tmp_path / "run").mkdir()
    checkpoint.save(m, tmp_path / "run" / "model.safetensors")
    args = ["sample", str(tmp_path / "run"), "--prime", "ab", "--length", "50", "--seed", "3"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out == sample(m, "ab", 50, temperature=0.8, seed=3) + "\n"
    assert "".join(generate(m, "ab", 50, 0.8, 0, 3)) == out[2:-1]
