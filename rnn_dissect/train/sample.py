"""Sampling text from a character model, one character at a time.

Read the prime, then repeat: p = softmax(z / T) over the vocabulary from the last logits
z (V,), draw the next character from p, feed it back in. Temperature T < 1 sharpens the
distribution (T → 0 is argmax, which ``temperature=0`` does exactly); T > 1 flattens it.
``top_k`` > 0 first keeps only the k largest logits. Draws come from an explicit
``numpy.random.Generator`` (PCG64 seeded by ``seed``) by inverse CDF on one uniform each,
so the same model, prime and seed give the same text.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> m = CharModel.init(ModelConfig("lstm", tuple("ab\\n"), hidden_size=4), seed=0)
    >>> s = sample(m, "ab", length=10, seed=1)
    >>> s == sample(m, "ab", length=10, seed=1), s[:2], len(s)
    (True, 'ab', 12)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.forward import Forward
from rnn_dissect.nets.model import CharModel

__all__ = ["default_prime", "generate", "next_index", "sample"]


def default_prime(model: CharModel) -> str:
    """A newline if the model knows one (a text's natural start), else its first character."""
    return "\n" if "\n" in model.config.vocab else model.config.vocab[0]


def next_index(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """One draw from softmax(logits / temperature) restricted to the top_k largest (0 = all).

    logits (V,). temperature 0 returns argmax (ties: the lowest index).
    """
    z = np.asarray(logits, dtype=np.float64)  # (V,)
    if temperature == 0.0:
        return int(np.argmax(z))
    if 0 < top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    z = (z - z.max()) / temperature
    p = np.exp(z)  # unnormalised; exp(−inf) = 0
    cdf = np.cumsum(p)  # (V,)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), z.size - 1))


def _check(model: CharModel, prime: str, length: int, temperature: float, top_k: int) -> None:
    if length < 0:
        raise UserError(f"--length must be ≥ 0, got {length}")
    if not (temperature >= 0.0 and np.isfinite(temperature)):
        raise UserError(
            f"--temperature must be a number ≥ 0 (0 = always the likeliest), got {temperature}"
        )
    if top_k < 0:
        raise UserError(f"--top-k must be ≥ 0 (0 = off), got {top_k}")
    if not prime:
        raise UserError("--prime is empty; give at least one character to start from")
    known = set(model.config.vocab)
    missing = sorted({ch for ch in prime if ch not in known})
    if missing:
        raise UserError(
            f"--prime has characters the model never saw: {''.join(missing)[:20]!r}; "
            f"use only characters of its vocabulary ({len(known)} characters)"
        )


def generate(
    model: CharModel,
    prime: str,
    length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
) -> Iterator[str]:
    """Yield ``length`` sampled characters that follow ``prime`` (the prime is not yielded).
    The arguments are checked before the first character is drawn."""
    _check(model, prime, length, temperature, top_k)
    return _draw(model, prime, length, temperature, top_k, seed)


def _draw(
    model: CharModel, prime: str, length: int, temperature: float, top_k: int, seed: int
) -> Iterator[str]:
    rng = np.random.default_rng(seed)
    fwd = Forward.of(model, np.float32)
    h, state = fwd.run(model.encode(prime)[:, None], fwd.zero_state(1))  # h (P, 1, H)
    for _ in range(length):
        i = next_index(fwd.logits(h[-1, 0]), temperature, top_k, rng)
        yield model.config.vocab[i]
        h, state = fwd.run(np.array([[i]]), state)  # (1, 1, H)


def sample(
    model: CharModel,
    prime: str,
    length: int = 500,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
) -> str:
    """``prime`` followed by ``length`` sampled characters."""
    return prime + "".join(generate(model, prime, length, temperature, top_k, seed))
