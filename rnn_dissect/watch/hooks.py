"""The torch side of ``watch``: hooks that copy a module's call and the gradients sent back to it.

A forward hook (``register_forward_hook(..., with_kwargs=True)``) copies the input (tensor or
``PackedSequence``), the initial state (zeros when the caller passed none, as torch uses) and
the weights as they are at that forward; tensor hooks (``Tensor.register_hook``) on the output
and the final states copy the gradient that arrives there in the real backward,
dL/d output (B, T, D·P), dL/dh_n (L·D, B, P) and dL/dc_n (L·D, B, H) — P = proj_size for a
projected LSTM (its weight_hr_l* copied with the others), else H. Hooks only read: they return None,
so the model's outputs and every ``.grad`` are bitwise what they are without watching. A
forward pre-hook keeps the CPU generator's state when training-mode dropout will draw masks
(:mod:`~rnn_dissect.watch.dropout` re-makes them and puts the generator back).

An ``nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` call is recorded as a one-layer module's call
with T = 1: its new state h' (c') plays h_n (c_n), and its weights are replayed under the
``_l0`` names (``Call.names`` maps them back to the cell's own).

Everything is converted at once to :class:`~rnn_dissect.watch.call.Call` (numpy, batch-major);
nothing torch is kept but the hook handles, removed on exit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from rnn_dissect.errors import UserError
from rnn_dissect.watch import dropout
from rnn_dissect.watch.call import Call

__all__ = ["CELL_OF", "STEP_OF", "check_module", "install_hooks"]

CELL_OF = {
    "RNN_TANH": ("rnn", "tanh"),
    "RNN_RELU": ("rnn", "relu"),
    "LSTM": ("lstm", "tanh"),
    "GRU": ("gru", "tanh"),
}
STEP_OF = {nn.LSTMCell: "lstm", nn.GRUCell: "gru", nn.RNNCell: "rnn"}  # cells: one step a call


def check_module(m: Any, name: str) -> None:
    """Refuse, in one line, what the replay cannot reproduce exactly."""
    kinds = (nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell, nn.RNNBase)
    base = next((c for c in kinds if isinstance(m, c)), None)
    if base is None or (isinstance(m, nn.RNNBase) and getattr(m, "mode", None) not in CELL_OF):
        inner = [
            f"{_path(n)} ({type(s).__name__})"
            for n, s in (m.named_modules() if isinstance(m, nn.Module) else [])
            if isinstance(s, (nn.RNNBase, nn.RNNCellBase)) and n
        ]
        hint = f"it contains {', '.join(inner)}" if inner else "pass the recurrent layer itself"
        raise UserError(
            f"watch takes torch.nn.RNN, LSTM or GRU modules (or their cells), not "
            f"{type(m).__name__}; {hint}, e.g. watch(model{inner[0].split()[0] if inner else '.encoder'})"
        )
    if type(m).forward is not base.forward:  # hooks see what that forward returns, not torch's
        raise UserError(
            f"{name}: {type(m).__name__} overrides nn.{base.__name__}.forward, so watch cannot "
            f"tell its outputs from torch's; keep a plain nn.{base.__name__} inside it and watch that"
        )


def _path(name: str) -> str:
    """A submodule's dotted name as Python reaches it: "layers.0.rnn" → ".layers[0].rnn"."""
    return "".join(f"[{k}]" if k.isdigit() else f".{k}" for k in name.split("."))


def _np(t: torch.Tensor) -> np.ndarray:
    """A copy on the CPU; bfloat16 (a model in it, or autocast) as float32, which holds it exactly."""
    t = t.detach().to("cpu")
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()


class _Recorder:
    """Turns one forward call into a :class:`Call` and fills its gradients as they arrive."""

    def __init__(self, module: nn.RNNBase, label: str, calls: list[Call]) -> None:
        self.module, self.label, self.calls = module, label, calls
        self.mine: list[Call] = []  # this module's calls, shared by each of them
        self.rng: torch.Tensor | None = None  # the CPU generator before a forward with dropout

    def before(self, m: nn.RNNBase, args: tuple, kwargs: dict) -> None:
        """Forward pre-hook: keep the generator's state if dropout will draw masks."""
        self.rng = torch.get_rng_state() if dropout.active(m) else None

    def __call__(self, m: nn.RNNBase, args: tuple, kwargs: dict, output: Any) -> None:
        if isinstance(m, nn.RNNCellBase):
            return self._step(m, args, kwargs, output)
        inp = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        cell, nonlin = CELL_OF[m.mode]
        L, D, H = m.num_layers, 2 if m.bidirectional else 1, m.hidden_size
        P = int(getattr(m, "proj_size", 0)) or H  # h's features (proj_size: h = W_hr m)
        packed = isinstance(inp, PackedSequence)
        if packed:
            x, lengths = pad_packed_sequence(inp, batch_first=True)  # (B, T, I), caller's order
            batched = True
        else:
            batched = inp.dim() == 3
            x = inp if batched else inp.unsqueeze(1)
            if not m.batch_first or not batched:
                x = x.transpose(0, 1)  # (B, T, I)
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
        B = x.shape[0]
        out, state = output
        h_n, c_n = state if cell == "lstm" else (state, None)
        h0, c0 = _initial(hx, cell, h_n, L * D, B, P, H)
        T = x.shape[1]
        noise, refused = dropout.remake_noise(m, out, self.rng) if dropout.active(m) else (None, "")
        self.rng = None
        call = Call(
            label=f"{self.label}#{len(self.mine)}",
            cell=cell,
            nonlinearity=nonlin,
            num_layers=L,
            directions=D,
            hidden_size=H,
            batch_first=bool(m.batch_first),
            packed=packed,
            batched=batched,
            dtype=str(h_n.dtype).replace("torch.", ""),
            weights={n: _np(getattr(m, n)) for n in m._flat_weights_names},
            x=_np(x),
            lengths=_np(lengths).astype(np.int64),
            h0=h0,
            c0=c0,
            g_out=np.zeros((B, T, D * P)),
            g_hn=np.zeros((L * D, B, P)),
            g_cn=np.zeros((L * D, B, H)) if cell == "lstm" else None,
            dropout=None if noise is None else _np(noise).astype(np.float64),
            dropout_refused=refused,
            h_n=_np(h_n).reshape(L * D, B, P),
            tracked=h_n.requires_grad,
            module_calls=self.mine,
            proj_size=int(getattr(m, "proj_size", 0)),
        )
        self._add(call)
        if isinstance(out, PackedSequence):
            meta = (out.batch_sizes, out.sorted_indices, out.unsorted_indices)
            _on_grad(out.data, call, "output", lambda g: _padded(g, meta, T))
        else:
            _on_grad(out, call, "output", lambda g: _batch_major(g, m.batch_first, batched))
        _on_grad(h_n, call, "h_n", lambda g: g.reshape(L * D, B, P))
        if c_n is not None:
            _on_grad(c_n, call, "c_n", lambda g: g.reshape(L * D, B, H))

    def _add(self, call: Call) -> None:
        self.mine.append(call)
        self.calls.append(call)

    def _step(self, m: nn.RNNCellBase, args: tuple, kwargs: dict, output: Any) -> None:
        """One call of an nn.RNNCell / LSTMCell / GRUCell: a one-layer module's call with T = 1,
        whose new state h' (c') is that call's h_n (c_n); weight_ih is replayed as weight_ih_l0."""
        inp = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        cell = next(kind for c, kind in STEP_OF.items() if isinstance(m, c))
        nonlin = getattr(m, "nonlinearity", "tanh")  # nn.RNNCell's; the others use tanh
        batched = inp.dim() == 2
        x = (inp if batched else inp.unsqueeze(0)).unsqueeze(1)  # (B, 1, I)
        B, H = x.shape[0], m.hidden_size
        h1, c1 = output if cell == "lstm" else (output, None)
        h0, c0 = _initial(hx, cell, h1, 1, B, H, H)
        names = {
            f"{n}_l0": n
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            if getattr(m, n) is not None  # bias=False: None
        }
        call = Call(
            label=f"{self.label}#{len(self.mine)}",
            cell=cell,
            nonlinearity=nonlin,
            num_layers=1,
            directions=1,
            hidden_size=H,
            batch_first=True,
            packed=False,
            batched=batched,
            dtype=str(h1.dtype).replace("torch.", ""),
            weights={k: _np(getattr(m, n)) for k, n in names.items()},
            x=_np(x),
            lengths=np.ones(B, np.int64),
            h0=h0,
            c0=c0,
            g_out=np.zeros((B, 1, H)),
            g_hn=np.zeros((1, B, H)),
            g_cn=np.zeros((1, B, H)) if cell == "lstm" else None,
            h_n=_np(h1).reshape(1, B, H),
            tracked=h1.requires_grad,
            module_calls=self.mine,
            names=names,
            c_n_total=c1 is not None and _reads(h1, c1),
        )
        self._add(call)
        _on_grad(h1, call, "h_n", lambda g: g.reshape(1, B, H))
        if c1 is not None:
            _on_grad(c1, call, "c_n", lambda g: g.reshape(1, B, H))


def _reads(out: torch.Tensor, inner: torch.Tensor, depth: int = 6) -> bool:
    """Does ``out``'s autograd graph read ``inner`` within ``depth`` steps? On the CPU torch's
    LSTMCell is composite, h' = o ⊙ tanh(c'), so the gradient reaching c' includes h''s; a fused
    cell (one node for both outputs) does not read it."""
    target = inner.grad_fn
    if target is None or out.grad_fn is None or out.grad_fn is target:
        return False
    frontier = [out.grad_fn]
    for _ in range(depth):
        frontier = [f for node in frontier for f, _ in node.next_functions if f is not None]
        if any(f is target for f in frontier):
            return True
    return False


def _initial(
    hx: Any, cell: str, like: torch.Tensor, rows: int, B: int, P: int, H: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """h0 (rows, B, P) and c0 (rows, B, H; LSTM) as torch used them: zeros when the caller
    passed none. P = H but for a projected LSTM (proj_size P)."""
    if hx is None:
        dtype = _np(like).dtype
        return np.zeros((rows, B, P), dtype), (
            np.zeros((rows, B, H), dtype) if cell == "lstm" else None
        )
    h0_t, c0_t = hx if cell == "lstm" else (hx, None)
    return _np(h0_t).reshape(rows, B, P), (None if c0_t is None else _np(c0_t).reshape(rows, B, H))


def _padded(g: torch.Tensor, meta: tuple, T: int) -> torch.Tensor:
    """A packed output's gradient (ΣT_b, D·H) → (B, T, D·H), zeros past each length."""
    padded, _ = pad_packed_sequence(PackedSequence(g, *meta), batch_first=True, total_length=T)
    return padded


def _batch_major(g: torch.Tensor, batch_first: bool, batched: bool) -> torch.Tensor:
    if not batched:
        return g.unsqueeze(0)  # (T, D·H) → (1, T, D·H)
    return g if batch_first else g.transpose(0, 1)


def _on_grad(t: torch.Tensor, call: Call, key: str, to_layout: Any) -> None:
    """Add the gradient that reaches ``t`` in backward into ``call`` (several backward passes
    accumulate, as ``.grad`` does). The hook returns None: the gradient flows on unchanged."""
    if not t.requires_grad:
        return
    target = {"output": call.g_out, "h_n": call.g_hn, "c_n": call.g_cn}[key]
    assert target is not None

    def hook(g: torch.Tensor) -> None:
        with torch.no_grad():
            target[...] += to_layout(g).detach().to("cpu", torch.float64).numpy()
        call.arrived.add(key)

    t.register_hook(hook)


def install_hooks(modules: Iterable[tuple[str, nn.RNNBase]], calls: list[Call]) -> list[Any]:
    """Register the forward hooks; returns their handles (``.remove()`` each on exit)."""
    handles = []
    for label, m in modules:
        check_module(m, label)
        rec = _Recorder(m, label, calls)
        handles.append(m.register_forward_pre_hook(rec.before, with_kwargs=True))
        handles.append(m.register_forward_hook(rec, with_kwargs=True))
    return handles
