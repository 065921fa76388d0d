"""PyTorch (float64) references for the BPTT tests: the fused modules and an explicit loop.

Two independent oracles for the char model of :mod:`rnn_dissect.bptt.unroll`:

- :func:`module_run` — ``nn.RNN/LSTM/GRU`` + ``nn.Linear`` loaded with the same torch-named
  weights; truncated BPTT the way a PyTorch user writes it (chunks of K steps,
  ``h = h.detach()`` between them, one loss summed over the chunks).
- :func:`loop_run` — the cell equations written out step by step in torch (``nn.LSTMCell``
  style), every h_t, c_t and gate kept with ``retain_grad`` so dL/dh_t can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 — torch's own idiom

from rnn_dissect.nets.model import CharModel

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}

# These are tiny problems: torch's intra-op threads only spin against each other on 2 cores
# (an LSTM reference took 7 s instead of 0.1 s under load). Results do not depend on it.
torch.set_num_threads(1)


def tt(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def rel(a, b) -> float:
    """max |a − b| / max(|a|, |b|): relative to the tensor's largest entry."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b.detach().numpy() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def _inputs(model: CharModel, x: np.ndarray) -> torch.Tensor:
    """(T, B, I) float inputs: one-hot for indices (B, T), else the floats (B, T, I)."""
    if np.issubdtype(x.dtype, np.integer):
        return F.one_hot(torch.tensor(x.T), model.config.vocab_size).double()
    return tt(np.moveaxis(x, 0, 1))


def _loss(logits: torch.Tensor, y: torch.Tensor, mode: str, T: int) -> torch.Tensor:
    if mode == "many_to_many":  # logits (T_chunk, B, V), y (T_chunk, B): Σ CE / (B·T)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
        ) / (y.shape[1] * T)
    return F.binary_cross_entropy(torch.sigmoid(logits), y)


def module_run(
    model: CharModel,
    x,
    y,
    h0=None,
    c0=None,
    truncate=None,
    mode="many_to_many",
    nonlinearity="tanh",
):
    """Loss, output sequence (T, B, H) and grads (torch names, h0, c0) from the fused modules.
    ``x`` (B, T) indices or (B, T, I) floats; states (L, B, H); y (B, T) or (B, O)."""
    cfg = model.config
    kw = {"nonlinearity": nonlinearity} if cfg.cell == "rnn" else {}
    n_in = model.params["rnn.weight_ih_l0"].shape[1]
    rnn = MODULES[cfg.cell](n_in, cfg.hidden_size, cfg.num_layers, **kw).double()
    n_out = model.params["head.weight"].shape[0]
    head = torch.nn.Linear(cfg.hidden_size, n_out).double()
    with torch.no_grad():
        for name, p in [*rnn.named_parameters(prefix="rnn"), *head.named_parameters(prefix="head")]:
            p.copy_(tt(model.params[name]))
    X = _inputs(model, x)  # (T, B, I)
    T, B = X.shape[0], X.shape[1]
    L, H = cfg.num_layers, cfg.hidden_size
    h = tt(np.zeros((L, B, H)) if h0 is None else h0, grad=True)
    c = tt(np.zeros((L, B, H)) if c0 is None else c0, grad=True)
    start = (h, c)
    state = (h, c) if cfg.cell == "lstm" else h
    K = truncate or T
    loss = torch.zeros((), dtype=torch.float64)
    outs = []
    Y = torch.tensor(np.asarray(y).T) if mode == "many_to_many" else tt(y)
    for s in range(0, T, K):
        out, state = rnn(X[s : s + K], state)
        outs.append(out)
        if mode == "many_to_many":
            loss = loss + _loss(head(out), Y[s : s + K], mode, T)
        state = tuple(z.detach() for z in state) if cfg.cell == "lstm" else state.detach()
    if mode == "many_to_one":
        loss = _loss(head(outs[-1][-1]), Y, mode, T)
    loss.backward()
    grads = {
        n: p.grad.numpy()
        for n, p in [*rnn.named_parameters(prefix="rnn"), *head.named_parameters(prefix="head")]
    }
    for name, s0 in zip(("h0", "c0"), start, strict=True):
        if name == "h0" or cfg.cell == "lstm":  # no gradient reached it: zeros, as ours
            grads[name] = np.zeros(s0.shape) if s0.grad is None else s0.grad.numpy()
    return float(loss.detach()), torch.cat(outs).detach().numpy(), grads


@dataclass
class Loop:
    loss: torch.Tensor
    step_losses: dict[int, torch.Tensor]  # t → L_t, the term of the loss read at t
    h: list[list[torch.Tensor]] = field(default_factory=list)  # [layer][t], t = 0..T
    c: list[list[torch.Tensor]] = field(default_factory=list)
    gates: list[list[dict[str, torch.Tensor]]] = field(default_factory=list)  # [layer][t-1]
    logits: dict[int, torch.Tensor] = field(default_factory=dict)


def torch_step(cell: str, p: dict[str, torch.Tensor], x, h, c, nonlinearity: str = "tanh"):
    """One explicit step with torch's equations; returns (h, c, gates)."""
    W_ih, W_hh, b_ih, b_hh = p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"]
    if cell == "rnn":
        a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        h = torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)
        return h, None, {"h": h}
    if cell == "lstm":
        a_i, a_f, a_g, a_o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
        c = f * c + i * g
        return o * torch.tanh(c), c, {"i": i, "f": f, "g": g, "o": o}
    gi_r, gi_z, gi_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    gh_r, gh_z, gh_n = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    return (1 - z) * n + z * h, None, {"r": r, "z": z, "n": n}


def layer_params(model: CharModel, k: int) -> dict[str, torch.Tensor]:
    P = model.params
    return {
        "W_ih": tt(P[f"rnn.weight_ih_l{k}"], grad=True),
        "W_hh": tt(P[f"rnn.weight_hh_l{k}"], grad=True),
        "b_ih": tt(P[f"rnn.bias_ih_l{k}"], grad=True),
        "b_hh": tt(P[f"rnn.bias_hh_l{k}"], grad=True),
    }


def loop_run(
    model: CharModel,
    x,
    y,
    h0=None,
    c0=None,
    truncate=None,
    mode="many_to_many",
    nonlinearity="tanh",
) -> Loop:
    """The explicitly unrolled loop; after it, ``loss.backward()`` has run and every h_t,
    c_t has ``.grad`` (retain_grad). Truncation: the state is detached after every K steps."""
    cfg = model.config
    L, H = cfg.num_layers, cfg.hidden_size
    X = _inputs(model, x)  # (T, B, I)
    T, B = X.shape[0], X.shape[1]
    params = [layer_params(model, k) for k in range(L)]
    W_hy, b_y = tt(model.params["head.weight"], grad=True), tt(model.params["head.bias"], grad=True)
    h0 = np.zeros((L, B, H)) if h0 is None else h0
    c0 = np.zeros((L, B, H)) if c0 is None else c0
    run = Loop(torch.zeros(()), {})
    run.h = [[tt(h0[k], grad=True)] for k in range(L)]
    run.c = [[tt(c0[k], grad=True)] for k in range(L)]
    run.gates = [[] for _ in range(L)]
    Y = torch.tensor(np.asarray(y)) if mode == "many_to_many" else tt(y)
    for t in range(1, T + 1):
        inp = X[t - 1]
        for k in range(L):
            h_prev, c_prev = run.h[k][t - 1], run.c[k][t - 1]
            if truncate and (t - 1) % truncate == 0 and t > 1:
                h_prev, c_prev = h_prev.detach(), c_prev.detach()
            h, c, gates = torch_step(cfg.cell, params[k], inp, h_prev, c_prev, nonlinearity)
            h.retain_grad()
            if c is None:
                c = c_prev  # no cell state: keep the list aligned
            else:
                c.retain_grad()
            run.h[k].append(h)
            run.c[k].append(c)
            run.gates[k].append(gates)
            inp = h
        if mode == "many_to_many":
            run.logits[t] = inp @ W_hy.T + b_y
            run.step_losses[t] = F.cross_entropy(run.logits[t], Y[:, t - 1]) / T
        elif t == T:
            run.logits[t] = inp @ W_hy.T + b_y
            run.step_losses[t] = F.binary_cross_entropy(torch.sigmoid(run.logits[t]), Y)
    run.loss = sum(run.step_losses.values(), torch.zeros((), dtype=torch.float64))
    run.loss.backward(retain_graph=True)
    return run


CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


@dataclass
class CellSteps:
    """Batch element 0 run through torch's own nn.RNNCell/LSTMCell/GRUCell (float64)."""

    jacobians: list[list[np.ndarray]]  # [layer][t − 1] (S, S): ∂s_t/∂s_(t−1), s = h or [h; c]
    z: list[list[np.ndarray]]  # GRU: [layer][t − 1] (H,) update gate z_t (else empty lists)


def cell_steps(model: CharModel, x: np.ndarray) -> CellSteps:
    """``x`` (T,) character indices from h0 = c0 = 0; each step's state Jacobian by
    ``torch.autograd.functional.jacobian`` of the torch cell at the state it ran from, the
    input x_t (one-hot, or the layer below's h_t) held fixed."""
    cfg = model.config
    H, L, cell = cfg.hidden_size, cfg.num_layers, cfg.cell
    P = model.params
    X = F.one_hot(torch.tensor(np.asarray(x)), cfg.vocab_size).double()  # (T, V)
    cells = []
    for k in range(L):
        kw = {"nonlinearity": cfg.nonlinearity} if cell == "rnn" else {}
        m = CELLS[cell](P[f"rnn.weight_ih_l{k}"].shape[1], H, **kw).double()
        with torch.no_grad():
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(m, n).copy_(tt(P[f"rnn.{n}_l{k}"]))
        cells.append(m)
    S = 2 * H if cell == "lstm" else H
    state = [torch.zeros(S, dtype=torch.float64) for _ in range(L)]
    out = CellSteps([[] for _ in range(L)], [[] for _ in range(L)])

    def step(k: int, inp: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if cell == "lstm":
            h, c = cells[k](inp[None], (s[None, :H], s[None, H:]))
            return torch.cat([h[0], c[0]])
        return cells[k](inp[None], s[None])[0]

    with torch.no_grad():
        for t in range(X.shape[0]):
            inp = X[t]
            for k in range(L):
                J = torch.autograd.functional.jacobian(
                    lambda s, k=k, i=inp: step(k, i, s), state[k]
                )
                out.jacobians[k].append(J.numpy())
                if cell == "gru":  # z_t = σ(W_iz x_t + b_iz + W_hz h_(t−1) + b_hz), rows H..2H
                    m = cells[k]
                    a = inp @ m.weight_ih[H : 2 * H].T + m.bias_ih[H : 2 * H]
                    a = a + state[k] @ m.weight_hh[H : 2 * H].T + m.bias_hh[H : 2 * H]
                    out.z[k].append(torch.sigmoid(a).numpy())
                state[k] = step(k, inp, state[k])
                inp = state[k][:H]
    return out
