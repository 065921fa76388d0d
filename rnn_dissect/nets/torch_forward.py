"""The char model's forward pass in PyTorch, every layer and gate at every step, without a
per-step loop: :class:`TorchForward` is a :class:`~rnn_dissect.nets.forward.Forward` whose
:meth:`~TorchForward.run` goes through ``nn.RNN/LSTM/GRU`` (cuDNN on ``cuda``).

For a chunk of C steps of B sequences (indices (C, B), state (L, B, H) each), layer k:

1. h_1..h_C = the fused recurrent kernel (one-layer ``nn.LSTM`` …) from the carried state;
   it returns every step's h but only the last c;
2. the gates of all C steps at once, from the stored h_{t−1} = [h_0, h_1 … h_{C−1}]:
   u = h_{t−1} W_hhᵀ + b_hh, one (C·B, H) @ (H, G·H) product; the input side
   a = W_ih x_t + b_ih is a row gather for the one-hot layer 0 and one product above:

       LSTM  i, f, o = σ(a_· + u_·)    g = tanh(a_g + u_g)
       GRU   r = σ(a_r + u_r)    z = σ(a_z + u_z)    n = tanh(a_n + r ⊙ u_n)

3. LSTM c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t by :func:`linear_scan` (log₂ C vector steps).

The state carried to the next chunk is the kernel's own (h_C, c_C). Values are float32 (or
float64) rounding away from the numpy :class:`Forward`'s: the kernel sums in its own order.
torch is imported when this module is, so import it only when ``--backend torch`` asks.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> m = CharModel.init(ModelConfig("lstm", tuple("ab"), hidden_size=3))
    >>> fwd, rec = TorchForward.of(m), {(0, "c"): np.empty((2, 1, 3), np.float32)}
    >>> h, state = fwd.run(np.array([[0], [1]]), fwd.zero_state(1), rec)   # read "ab"
    >>> h.shape, [s.shape for s in state], np.allclose(rec[(0, "c")][-1], state[1][0], atol=1e-6)
    ((2, 1, 3), [(1, 1, 3), (1, 1, 3)], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.forward import Forward, Key, State
from rnn_dissect.nets.model import CharModel

try:
    import torch
    import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
    from torch import nn
except ImportError:  # pragma: no cover - exercised by the torch-less subprocess tests
    raise UserError(
        "--backend torch needs PyTorch, which is not installed; install it with "
        "`pip install 'rnn-dissect[torch]'`, or use --backend numpy"
    ) from None

__all__ = ["TorchForward", "device_of", "ieee_fp32", "linear_scan"]

Tensor = torch.Tensor
_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def device_of(name: str, local_rank: int = 0) -> torch.device:
    """``cpu`` or ``cuda`` (this process's GPU under torchrun); no GPU is a user error."""
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise UserError(f"unknown --device {name!r}; choose cpu or cuda")
    if not torch.cuda.is_available():
        raise UserError(
            "--device cuda: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False); "
            "use --device cpu"
        )
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def ieee_fp32(device: torch.device) -> None:
    """On a GPU, float32 means IEEE float32 here: cuDNN's RNN kernels default to TF32 on
    Ampere and later (a 10-bit mantissa, ~1e-3 relative), which would put the values far
    outside float32 rounding of the numpy engine's. Process-wide (torch's flag); nothing on
    the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False  # the legacy switch sets conv and rnn alike
        torch.backends.cuda.matmul.allow_tf32 = False


def linear_scan(f: Tensor, u: Tensor, c0: Tensor) -> Tensor:
    """c_t = f_t ⊙ c_{t−1} + u_t for t = 0..C−1 from c_{−1} = c0, all at once.

    f, u (C, ...), c0 (...) → c (C, ...). Hillis–Steele scan of the affine maps
    c ↦ f c + u, composed (f₂, u₂)∘(f₁, u₁) = (f₂ f₁, f₂ u₁ + u₂): after the passes
    d = 1, 2, 4 … < C, entry t holds the composition of steps 0..t, so c_t = F_t c0 + U_t.
    Only products and sums (no division, no logarithm): stable for |f| ≤ 1, about log₂ C
    roundings per value instead of C."""
    Fc, U = f.clone(), u.clone()
    C, d = f.shape[0], 1
    while d < C:
        U[d:] = Fc[d:] * U[:-d] + U[d:]  # the right side is evaluated first: old values
        Fc[d:] = Fc[d:] * Fc[:-d]
        d *= 2
    return Fc * c0 + U


@dataclass
class TorchForward(Forward):
    """The model's weights as one-layer torch modules on ``device`` (see the module docstring);
    the numpy fields of :class:`Forward` stay for its small helpers (zero_state, logits)."""

    device: Any = None  # torch.device
    modules: list[Any] = field(default_factory=list)  # one nn.RNN/LSTM/GRU per layer
    weights: list[dict[str, Any]] = field(default_factory=list)  # per layer: W_ih … as tensors
    head: dict[str, Any] = field(default_factory=dict)  # weight (V, H), bias (V,)

    @classmethod
    def of(cls, model: CharModel, dtype: Any = np.float32, device: str = "cpu") -> TorchForward:
        base = Forward.of(model, dtype)
        dev = device_of(device)
        ieee_fp32(dev)
        tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        cfg = model.config
        V, H = len(cfg.vocab), cfg.hidden_size

        def tensor(name: str) -> Tensor:
            return torch.as_tensor(np.asarray(model.params[name]), dtype=tdt, device=dev)

        mods, weights = [], []
        for k in range(cfg.num_layers):
            w = {
                n: tensor(f"rnn.{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            mod = _MODULES[cfg.cell](V if k == 0 else H, H, device=dev, dtype=tdt)
            with torch.no_grad():
                for n, t in w.items():
                    getattr(mod, f"{n}_l0").copy_(t)
            mod.flatten_parameters()  # cuDNN's one weight buffer (a no-op on the CPU)
            mods.append(mod.eval())
            weights.append(w)
        head = {"weight": tensor("head.weight"), "bias": tensor("head.bias")}
        return cls(base.cell, base.layers, base.W_head, base.b_head, dev, mods, weights, head)

    # ---------------------------------------------------------------- numpy in and out
    def run(
        self, idx: np.ndarray, state: State, rec: dict[Key, np.ndarray] | None = None
    ) -> tuple[np.ndarray, State]:
        """:meth:`Forward.run`'s contract: indices (C, B), state (L, B, H) each, ``rec``
        (layer, kind) → (C, B, H) arrays to fill; returns the top h (C, B, H), the new state."""
        x = torch.as_tensor(np.ascontiguousarray(idx), dtype=torch.int64, device=self.device)
        st = tuple(torch.as_tensor(np.ascontiguousarray(s), device=self.device) for s in state)
        out, new = self.run_tensors(x, st)
        for key, a in (rec or {}).items():
            a[...] = out[key].cpu().numpy()
        top = out[(self.num_layers - 1, "h")].cpu().numpy()
        return top, tuple(s.cpu().numpy() for s in new)

    # ---------------------------------------------------------------- tensors
    @torch.no_grad()
    def run_tensors(
        self, x: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[dict[Key, Tensor], tuple[Tensor, ...]]:
        """x (C, B) int64 on the device, state (L, B, H) each → every (layer, kind) as a
        (C, B, H) tensor, and the kernel's final state."""
        cell, H = self.cell, self.hidden_size
        out: dict[Key, Tensor] = {}
        finals: list[tuple[Tensor, ...]] = []
        inp = F.one_hot(x, self.W_head.shape[0]).to(state[0].dtype)  # (C, B, V)
        below: Tensor | None = None  # the layer below's h (C, B, H)
        for k, (mod, w) in enumerate(zip(self.modules, self.weights, strict=True)):
            s_k = tuple(s[k : k + 1].contiguous() for s in state)  # (1, B, H) each
            h, last = mod(inp, s_k if cell == "lstm" else s_k[0])  # h (C, B, H)
            finals.append(last if isinstance(last, tuple) else (last,))
            out[(k, "h")] = h
            if cell != "rnn":
                if below is None:  # one-hot input: W_ih x_t + b_ih is a row of (W_ihᵀ + b_ih)
                    a = (w["weight_ih"].T + w["bias_ih"])[x]  # (C, B, G·H)
                else:
                    a = below @ w["weight_ih"].T + w["bias_ih"]
                h_prev = torch.cat([s_k[0], h[:-1]])  # (C, B, H): h_{t−1}
                u = h_prev @ w["weight_hh"].T + w["bias_hh"]  # (C, B, G·H): the one product
                out.update(_gates(cell, a, u, H, s_k[1][0] if cell == "lstm" else None, k))
            below = inp = h
        new = tuple(torch.cat(parts) for parts in zip(*finals, strict=True))  # (L, B, H) each
        return out, new

    def logits_tensor(self, h: Tensor) -> Tensor:
        """h (..., H) → logits (..., V) = h W_headᵀ + b_head."""
        return h @ self.head["weight"].T + self.head["bias"]


def _gates(cell: str, a: Tensor, u: Tensor, H: int, c0: Tensor | None, k: int) -> dict[Key, Tensor]:
    """The gates (and LSTM c) of layer k from a = W_ih x + b_ih and u = W_hh h_{t−1} + b_hh."""
    if cell == "lstm":
        s = a + u
        i, f = torch.sigmoid(s[..., :H]), torch.sigmoid(s[..., H : 2 * H])
        g, o = torch.tanh(s[..., 2 * H : 3 * H]), torch.sigmoid(s[..., 3 * H :])
        assert c0 is not None
        c = linear_scan(f, i * g, c0)  # (C, B, H)
        return {(k, "c"): c, (k, "i"): i, (k, "f"): f, (k, "g"): g, (k, "o"): o}
    r = torch.sigmoid(a[..., :H] + u[..., :H])
    z = torch.sigmoid(a[..., H : 2 * H] + u[..., H : 2 * H])
    n = torch.tanh(a[..., 2 * H :] + r * u[..., 2 * H :])
    return {(k, "r"): r, (k, "z"): z, (k, "n"): n}
