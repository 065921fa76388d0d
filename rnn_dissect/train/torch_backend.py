"""The PyTorch training backend (``--backend torch``): the same model, step and files through
``nn.RNN/LSTM/GRU`` (cuDNN with ``--device cuda``), and DistributedDataParallel under torchrun.

One step on this process's shard of the global batch (rows [r·b, (r+1)·b), b = B / world):

    z, state = head(rnn(onehot(x), state))         # (S, b, V); masks between layers if dropout
    loss = CE(z, y) averaged over the S·b positions; DDP averages the gradient over ranks
    ‖g‖₂ = clip_grad_norm_(θ, clip)                 # the global norm, the same on every rank
    θ ← torch.optim.<optimizer>(θ, g, lr)           # only when loss and ‖g‖₂ are finite

which is the numpy backend's step (:class:`~rnn_dissect.train.backends.NumpyBackend`) to float32
rounding: the same torch-named weights, the same dropout masks (drawn from the run's numpy
generator for the whole batch, each rank keeping its rows), the same optimizer rules (ours are
torch's), the same carried state. ``pull`` writes the weights, the optimizer slots (converted
to :mod:`rnn_dissect.optim`'s flat names) and the carried state (gathered from every rank) back
into the TrainState, so checkpoints are the numpy backend's files and resume on either backend.

Distributed: when torchrun sets ``WORLD_SIZE`` > 1 the process group is joined here (gloo on
the CPU, nccl with CUDA). Rank 0 evaluates and decides when to stop; the others follow
(:meth:`TorchBackend.agree`). torch is imported when this module is: only for ``--backend torch``.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.torch_forward import device_of, ieee_fp32
from rnn_dissect.train.backends import Inspect, StepResult, eval_windows, world_from_env
from rnn_dissect.train.kernels import dropout_masks
from rnn_dissect.train.rundir import TrainState

try:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
    from torch import nn
except ImportError:  # pragma: no cover - exercised by the torch-less subprocess test
    raise UserError(
        "--backend torch needs PyTorch, which is not installed; install it with "
        "`pip install 'rnn-dissect[torch]'`, or use --backend numpy"
    ) from None

__all__ = ["CharNet", "TorchBackend", "device_of"]

_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
Tensor = torch.Tensor
State = tuple[Tensor, ...]  # (h,) or (h, c), each (L, b, H)


class CharNet(nn.Module):
    """onehot(x) (S, b, V) → L recurrent layers → Linear head → logits (S, b, V).

    One ``nn.LSTM(V, H, num_layers=L)`` (cuDNN's multi-layer kernel) when no dropout masks
    are applied; L one-layer modules when they are (the masks go between them)."""

    def __init__(self, cell: str, V: int, H: int, L: int, split: bool, device: Any) -> None:
        super().__init__()
        make = _MODULES[cell]
        self.cell, self.V, self.L = cell, V, L
        kw: dict[str, Any] = {"device": "meta", "dtype": torch.float32}
        self.layers = nn.ModuleList(
            [make(V if k == 0 else H, H, **kw) for k in range(L)]
            if split
            else [make(V, H, L, **kw)]
        )
        self.head = nn.Linear(H, V, **kw)
        self.to_empty(device=device)  # filled by load(): no random init is drawn

    def named(self) -> dict[str, nn.Parameter]:
        """Our torch names (``rnn.weight_ih_l{k}`` …, ``head.*``) → this module's parameters."""
        out: dict[str, nn.Parameter] = {}
        for j, mod in enumerate(self.layers):
            for n, p in mod.named_parameters():  # weight_ih_l0 … of layer j when split
                k = int(n.rsplit("_l", 1)[1]) + (j if len(self.layers) > 1 else 0)
                out[f"rnn.{n.rsplit('_l', 1)[0]}_l{k}"] = p
        out.update({f"head.{n}": p for n, p in self.head.named_parameters()})
        return out

    def forward(
        self, x: Tensor, state: State | None, masks: list[Tensor] | None = None
    ) -> tuple[Tensor, State]:
        """x (S, b) int64 → logits (S, b, V) and the final state (tuple of (L, b, H))."""
        h = F.one_hot(x, self.V).to(torch.float32)  # (S, b, V)
        if len(self.layers) == 1:
            h, last = self.layers[0](h, _pack(self.cell, state))
            return self.head(h), _unpack(last)
        finals = []
        for k, mod in enumerate(self.layers):
            s_k = None if state is None else tuple(s[k : k + 1] for s in state)
            h, last = mod(h, _pack(self.cell, s_k))  # (S, b, H)
            if masks is not None and k < self.L - 1:
                h = h * masks[k]  # inverted dropout, masks (S, b, H) from the numpy generator
            finals.append(_unpack(last))
        return self.head(h), tuple(torch.cat(parts) for parts in zip(*finals, strict=True))


def _pack(cell: str, state: State | None) -> Any:
    if state is None:
        return None
    return (state[0], state[1]) if cell == "lstm" else state[0]


def _unpack(last: Any) -> State:
    return tuple(s.detach() for s in last) if isinstance(last, tuple) else (last.detach(),)


class TorchBackend:
    """A run's step and validation in PyTorch, on ``device``, one shard per torchrun rank."""

    name = "torch"

    def __init__(self, state: TrainState, cfg: Any, device: str = "cpu") -> None:
        self.state, self.cfg = state, cfg
        self.world = world_from_env()
        self.rank = 0
        if self.world > 1:
            self._join(cfg, device)
        self.device = device_of(device, int(os.environ.get("LOCAL_RANK", "0")))
        ieee_fp32(self.device)  # IEEE float32 on a GPU: the numpy run to float32 rounding
        B = cfg.batch_size
        self.b = B // self.world  # this rank's streams
        self.rows = slice(self.rank * self.b, (self.rank + 1) * self.b)
        V = state.params["head.weight"].shape[0]
        self.split = cfg.dropout > 0 and cfg.num_layers > 1
        self.net = CharNet(cfg.cell, V, cfg.hidden_size, cfg.num_layers, self.split, self.device)
        self.names = list(state.params)  # PyTorch's state-dict order
        named = self.net.named()
        self.plist = [named[k] for k in self.names]
        with torch.no_grad():
            for k, p in zip(self.names, self.plist, strict=True):
                p.copy_(torch.from_numpy(np.ascontiguousarray(state.params[k])))
        for mod in self.net.layers:
            if isinstance(mod, nn.RNNBase):
                mod.flatten_parameters()  # cuDNN's one weight buffer (a no-op on the CPU)
        self.model: nn.Module = self.net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)
        self.opt = _OPTIMIZERS[cfg.optimizer](self.plist, lr=cfg.lr)
        self.k = int(state.opt.state_dict()["step"])  # optimizer steps taken
        self._load_opt(state.opt.state_dict())
        self.carry: State = tuple(self._dev(s[:, self.rows]) for s in state.carry)

    # ---------------------------------------------------------------- distributed
    def _join(self, cfg: Any, device: str) -> None:
        if cfg.batch_size % self.world:
            raise UserError(
                f"--batch {cfg.batch_size} does not split over {self.world} processes; "
                f"use a multiple of {self.world}"
            )
        if cfg.steps == 0:
            raise UserError(
                "under torchrun give --steps N: the --minutes sizing times one process's clock"
            )
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
            atexit.register(_leave)
        self.rank = dist.get_rank()

    def agree(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (one small broadcast)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.broadcast(t, 0)
        return int(t.item())

    # ---------------------------------------------------------------- the step
    def _dev(self, a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def step(
        self, x: np.ndarray, y: np.ndarray, reset: bool, lr: float, inspect: Inspect | None
    ) -> StepResult:
        cfg = self.cfg
        S, B, H = x.shape[1], x.shape[0], cfg.hidden_size
        masks = None
        if self.split:  # the numpy backend's draw for the whole batch; this rank's rows
            full = dropout_masks(
                self.state.rng, cfg.dropout, cfg.num_layers - 1, S, B, H, np.float32
            )
            masks = [self._dev(m[:, self.rows]) for m in full]  # (S, b, H) each
        xb, yb = self._dev(x[self.rows].T), self._dev(y[self.rows].T)  # (S, b)
        state = None if reset else self.carry
        self.opt.zero_grad(set_to_none=True)
        logits, last = self.model(xb, state, masks)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
        loss.backward()  # under DDP: the gradient averaged over ranks
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.plist]
        if inspect is not None:
            inspect({k: g.cpu().numpy() for k, g in zip(self.names, grads, strict=True)})
        if cfg.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.plist, cfg.clip)
        else:
            norm = torch.nn.utils.get_total_norm(grads)
        total = loss.detach()
        if self.world > 1:
            total = total.clone()
            dist.all_reduce(total)
            total /= self.world
        out = StepResult(float(total), float(norm))
        if out.finite:
            for group in self.opt.param_groups:
                group["lr"] = lr
            self.opt.step()
            self.k += 1
            self.carry = last
        return out

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def evaluate(self, text: np.ndarray) -> float:
        """:func:`rnn_dissect.train.backends.evaluate` in torch, on rank 0, sent to all."""
        val = torch.zeros((), dtype=torch.float64, device=self.device)
        if self.rank == 0:
            S = self.cfg.seq_len
            win = self._dev(eval_windows(text, self.cfg.batch_size, S).T)  # (m + 1, b)
            m, b = win.shape[0] - 1, win.shape[1]
            state = None
            for t0 in range(0, m, S):
                t1 = min(t0 + S, m)
                z, state = self.net(win[t0:t1], state)  # (T, b, V)
                ce = F.cross_entropy(
                    z.reshape(-1, z.shape[-1]), win[t0 + 1 : t1 + 1].reshape(-1), reduction="sum"
                )
                val += ce.double()
            val /= b * m
        if self.world > 1:
            dist.broadcast(val, 0)
        return float(val)

    # ---------------------------------------------------------------- state out
    def params(self) -> dict[str, np.ndarray]:
        """The live weights copied into the TrainState's arrays (and returned)."""
        for k, p in zip(self.names, self.plist, strict=True):
            np.copyto(self.state.params[k], p.detach().cpu().numpy())
        return self.state.params

    def pull(self) -> None:
        """Weights, optimizer slots and the whole batch's carried state → the TrainState."""
        self.params()
        if self.k > 0:
            self.state.opt.load_state_dict(self._flat_opt())
        parts = []
        for s in self.carry:  # (L, b, H) on each rank → (L, B, H)
            if self.world > 1:
                shards = [torch.empty_like(s) for _ in range(self.world)]
                dist.all_gather(shards, s.contiguous())
                s = torch.cat(shards, dim=1)
            parts.append(s.cpu().numpy().copy())
        self.state.carry = tuple(parts)

    def _flat_opt(self) -> dict[str, np.ndarray]:
        """torch.optim's per-parameter state in :mod:`rnn_dissect.optim`'s flat names."""
        flat = {"step": np.asarray(self.k, dtype=np.int64)}
        for k, p in zip(self.names, self.plist, strict=True):
            for slot, v in self.opt.state[p].items():
                if slot != "step" and isinstance(v, Tensor):
                    flat[f"{slot}.{k}"] = v.detach().cpu().numpy().copy()
        return flat

    def _load_opt(self, flat: dict[str, np.ndarray]) -> None:
        """Our flat optimizer state → torch.optim's per-parameter state (nothing at step 0)."""
        if self.k == 0:
            return
        for k, p in zip(self.names, self.plist, strict=True):
            slots = {n[: -len(k) - 1] for n in flat if n.endswith("." + k)}
            st = self.opt.state[p]
            st["step"] = torch.tensor(float(self.k), dtype=torch.float32)
            for slot in slots:
                st[slot] = self._dev(flat[f"{slot}.{k}"].astype(np.float32))


def _leave() -> None:
    # every rank reaches the barrier before any tears its connections down: a rank that
    # destroys the group while a peer still talks to it can abort the peer's gloo threads
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
