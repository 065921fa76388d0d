"""A hand-wired LSTM whose units track known features; torch.nn.LSTM (float64) runs it.

Units of layer 0 (H = 8), weights set by hand, K = 20 saturates a gate to 0 or 1:

- unit 0, bracket counter: f = 1, i = 1 only on brackets, g = +0.1 on ( [ { and −0.1 on
  ) ] }, so c₀ = 0.1 · bracket depth exactly;
- unit 1, quote toggle: on ``"`` f = 0, i = 1, g = tanh(5 − K·h₁_prev), which flips the sign
  of h₁; elsewhere f = 1, i = 0 (c₁ kept): c₁ > 0 inside a string, ≤ 0 outside;
- unit 3, newline detector: f = 0, i = 1, g = ±1, so h₃ = +tanh 1 right after a newline;
- unit 2, position in line: i = 1, g = 0.02, f = σ(−30·h₃_prev) = 0 right after a newline,
  else 1: c₂ = 0.02·(column + 1);
- units 4..7: random input and recurrent weights among themselves only.

Gates are recomputed from torch's own h sequence, and c from the gates; the module checks
o ⊙ tanh(c) against torch's h, so the arrays are torch's numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from rnn_dissect.neurons.activations import Activations

H = 8
K = 20.0


def python_like_text(rng: np.random.Generator, n_lines: int = 140) -> str:
    """Indented lines of words, ``"strings"`` and balanced brackets (only ``"`` quotes,
    no ``#``, no backslashes, so the quote toggle sees exactly what in_quote describes)."""
    words = ["foo", "bar", "x", "y1", "baz_2", "Qux", "n", "value"]
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    lines = []
    for _ in range(n_lines):
        toks = []
        for _ in range(int(rng.integers(1, 7))):
            r = rng.random()
            if r < 0.22 and len(stack) < 5:
                stack.append(str(rng.choice(list(pairs))))
                toks.append(stack[-1])
            elif r < 0.42 and stack:
                toks.append(pairs[stack.pop()])
            elif r < 0.58:
                toks.append('"' + str(rng.choice(words)) + '"')
            else:
                toks.append(str(rng.choice(words)))
        lines.append("    " * int(rng.integers(0, 3)) + " ".join(toks))
    return "\n".join(lines) + "".join(pairs[b] for b in reversed(stack)) + "\n"


def planted_lstm(vocab: tuple[str, ...], seed: int = 0) -> torch.nn.LSTM:
    V = len(vocab)
    lstm = torch.nn.LSTM(V, H, dtype=torch.float64)
    W_ih = np.zeros((4 * H, V))
    W_hh = np.zeros((4 * H, H))
    b = np.zeros(4 * H)
    Ri, Rf, Rg, Ro = (k * H for k in range(4))  # row offsets of the gate blocks
    onehot = {ch: np.eye(V)[i] for i, ch in enumerate(vocab)}

    def per_char(fn) -> np.ndarray:
        return np.array([fn(ch) for ch in vocab], dtype=np.float64)

    # unit 0: bracket counter
    W_ih[Ri + 0] = per_char(lambda ch: K if ch in "()[]{}" else -K)
    b[Rf + 0] = K
    W_ih[Rg + 0] = per_char(lambda ch: np.arctanh(0.1) * ((ch in "([{") - (ch in ")]}")))
    # unit 1: quote toggle
    W_ih[Ri + 1] = per_char(lambda ch: K if ch == '"' else -K)
    W_ih[Rf + 1] = per_char(lambda ch: -K if ch == '"' else K)
    W_ih[Rg + 1] = 5.0 * onehot['"']
    W_hh[Rg + 1, 1] = -K
    # unit 3: newline detector
    b[Rf + 3], b[Ri + 3] = -K, K
    W_ih[Rg + 3] = per_char(lambda ch: K if ch == "\n" else -K)
    # unit 2: position in line, reset by unit 3
    b[Ri + 2], b[Rg + 2] = K, np.arctanh(0.02)
    W_hh[Rf + 2, 3] = -30.0
    b[Ro : Ro + 4] = K  # output gates of the planted units open
    # units 4..7: random, reading the input and each other only
    rng = np.random.default_rng(seed)
    for g0 in (Ri, Rf, Rg, Ro):
        rows = slice(g0 + 4, g0 + H)
        W_ih[rows] = rng.normal(0, 1.0, (4, V))
        W_hh[rows, 4:] = rng.normal(0, 0.5, (4, 4))
        b[rows] = rng.normal(0, 0.5, 4)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(W_ih))
        lstm.weight_hh_l0.copy_(torch.from_numpy(W_hh))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b))
        lstm.bias_hh_l0.zero_()
    return lstm


def run(text: str, seed: int = 0) -> Activations:
    """Every unit's h, c and gates over ``text`` (float64), from torch.nn.LSTM."""
    vocab = tuple(sorted(set(text)))
    lstm = planted_lstm(vocab, seed)
    idx = torch.tensor([vocab.index(ch) for ch in text])
    x = torch.nn.functional.one_hot(idx, len(vocab)).to(torch.float64)  # (T, V)
    with torch.no_grad():
        h = lstm(x[:, None, :])[0][:, 0, :]  # (T, H)
        h_prev = torch.cat([torch.zeros(1, H, dtype=torch.float64), h[:-1]])
        a = (
            x @ lstm.weight_ih_l0.T
            + lstm.bias_ih_l0
            + h_prev @ lstm.weight_hh_l0.T
            + lstm.bias_hh_l0
        )
    a_np = a.numpy()  # (T, 4H), torch's gate order i, f, g, o
    sig = 1 / (1 + np.exp(-a_np))
    i, f, g, o = sig[:, :H], sig[:, H : 2 * H], np.tanh(a_np[:, 2 * H : 3 * H]), sig[:, 3 * H :]
    c = np.empty_like(i)
    c_prev = np.zeros(H)
    for t in range(len(text)):
        c_prev = c[t] = f[t] * c_prev + i[t] * g[t]
    assert np.allclose(o * np.tanh(c), h.numpy(), rtol=0, atol=1e-12)
    arrays = {(0, "h"): h.numpy(), (0, "c"): c, (0, "i"): i, (0, "f"): f, (0, "g"): g, (0, "o"): o}
    return Activations("lstm", vocab, text, arrays)
