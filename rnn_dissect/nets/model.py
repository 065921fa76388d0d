"""The character model: one-hot input → L stacked recurrent layers → linear head.

Parameters are a flat dict of numpy arrays under PyTorch's names, so a state dict loads
into ``torch.nn.RNN/LSTM/GRU(V, H, num_layers=L)`` + ``torch.nn.Linear(H, V)`` unchanged:

    rnn.weight_ih_l{k}  (G·H, V if k == 0 else H)      rnn.bias_ih_l{k}  (G·H,)
    rnn.weight_hh_l{k}  (G·H, H)                        rnn.bias_hh_l{k}  (G·H,)
    head.weight         (V, H)                          head.bias         (V,)

with G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rnn_dissect.errors import UserError, short
from rnn_dissect.nets.cells import GATES, STATES

__all__ = [
    "CharModel",
    "ModelConfig",
    "check_finite",
    "check_params",
    "init_params",
    "param_shapes",
]


@dataclass(frozen=True)
class ModelConfig:
    cell: str  # "rnn" | "lstm" | "gru"
    vocab: tuple[str, ...]  # characters in index order
    hidden_size: int  # H, units per layer
    num_layers: int = 1  # L, stacked layers
    nonlinearity: str = "tanh"  # vanilla RNN only: tanh | relu (nn.RNN's nonlinearity)

    def __post_init__(self) -> None:
        if self.cell not in GATES:
            raise UserError(f"unknown cell {self.cell!r}; choose one of rnn, lstm, gru")
        if self.nonlinearity not in ("tanh", "relu") or (
            self.nonlinearity == "relu" and self.cell != "rnn"
        ):
            raise UserError("nonlinearity must be tanh, or relu for the vanilla rnn cell only")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise UserError("hidden size and number of layers must be at least 1")
        if len(self.vocab) < 1 or len(set(self.vocab)) != len(self.vocab):
            raise UserError("the vocabulary must be a non-empty list of distinct characters")

    @property
    def gates(self) -> int:
        """G: how many H-row blocks the weights stack (RNN 1, LSTM 4, GRU 3)."""
        return len(GATES[self.cell])

    @property
    def states(self) -> tuple[str, ...]:
        """The state tensors a layer carries from step to step: ("h", "c") for LSTM, else ("h",)."""
        return STATES[self.cell]

    @property
    def n_states(self) -> int:
        """How many state tensors a layer carries (LSTM 2: h and c; RNN, GRU 1: h)."""
        return len(self.states)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in PyTorch's state-dict order."""
    G, H, V = cfg.gates, cfg.hidden_size, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(cfg.num_layers):
        shapes[f"rnn.weight_ih_l{k}"] = (G * H, V if k == 0 else H)
        shapes[f"rnn.weight_hh_l{k}"] = (G * H, H)
        shapes[f"rnn.bias_ih_l{k}"] = (G * H,)
        shapes[f"rnn.bias_hh_l{k}"] = (G * H,)
    shapes["head.weight"] = (V, H)
    shapes["head.bias"] = (V,)
    return shapes


def check_params(
    cfg: ModelConfig,
    shapes: Mapping[str, tuple[int, ...]],
    src: str,
    *,
    any_input: bool = False,
    any_outputs: bool = False,
) -> None:
    """The one rule for parameters against a config (checkpoints, run directories, unrolls):
    exactly the names of :func:`param_shapes`, each with its shape. ``any_input``: the first
    layer's ``weight_ih_l0`` (G·H, I) may read any I ≥ 1 features (float inputs);
    ``any_outputs``: the head may have any O ≥ 1 rows (a many-to-one head, O sigmoids).
    ``shapes``: name → shape; ``src`` names them in the one-line error."""
    want = param_shapes(cfg)
    missing, extra = [k for k in want if k not in shapes], [k for k in shapes if k not in want]
    if missing or extra:
        have = sum(1 for k in shapes if re.fullmatch(r"rnn\.weight_ih_l[0-9]+", k))
        if have != cfg.num_layers:
            raise UserError(
                f"{src}: num_layers is {cfg.num_layers} but the tensors hold {have} layers"
            )
        what = f"missing {short(missing)}" if missing else f"unexpected {short(extra)}"
        raise UserError(f"{src}: {what}; a {cfg.cell} model holds exactly {short(want, 2)}")
    for name, shape in want.items():
        got = tuple(shapes[name])
        free_axis = 1 if any_input and name == "rnn.weight_ih_l0" else None
        if any_outputs and name.startswith("head."):
            free_axis = 0
        ok = got == shape or (
            free_axis is not None
            and len(got) == len(shape)
            and got[free_axis] >= 1
            and all(
                g == w for i, (g, w) in enumerate(zip(got, shape, strict=True)) if i != free_axis
            )
        )
        if not ok:
            raise UserError(
                f"{src}: tensor {name} has shape {got}, expected {shape} for {cfg.cell} "
                f"hidden_size={cfg.hidden_size} vocab={cfg.vocab_size}"[:300]
            )


def check_finite(arrays: Mapping[str, np.ndarray], src: str) -> None:
    """Every weight finite: NaN or Inf is a one-line error naming the tensors."""
    bad = [k for k, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise UserError(f"{src}: {short(bad)} hold NaN or Inf; use an earlier checkpoint")


def init_params(
    cfg: ModelConfig, rng: np.random.Generator, dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation: every tensor ~ U(−1/√H, 1/√H) (the head too,
    since its fan-in is H)."""
    k = 1.0 / np.sqrt(cfg.hidden_size)
    return {
        name: rng.uniform(-k, k, size=shape).astype(dtype)
        for name, shape in param_shapes(cfg).items()
    }


@dataclass
class CharModel:
    """A configuration plus its parameters (torch-named numpy arrays)."""

    config: ModelConfig
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def init(cls, config: ModelConfig, seed: int = 0, dtype: type = np.float64) -> CharModel:
        return cls(config, init_params(config, np.random.default_rng(seed), dtype))

    def encode(self, text: str) -> np.ndarray:
        """Characters → indices (T,); an unknown character is a user error."""
        index = {ch: i for i, ch in enumerate(self.config.vocab)}
        missing = sorted({ch for ch in text if ch not in index})
        if missing:
            raise UserError(
                f"text has characters not in the model's vocabulary: {''.join(missing)!r}; "
                "use only characters the model was built with"
            )
        return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))

    def decode(self, idx: np.ndarray) -> str:
        return "".join(self.config.vocab[i] for i in np.asarray(idx).ravel())
