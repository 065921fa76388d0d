"""The stacked-layer driver shared by the three kernels: layers, dropout, head, backward.

    x_idx (B, T) → layer 0 … layer L−1 (dropout between layers) → head → mean CE over B·T

Forward runs each layer's recurrence over all T steps (the cell modules), the head and the
softmax for all T·B positions at once; backward runs the cells' BPTT from the top down
and turns their per-step gate gradients into weight gradients with one GEMM per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_dissect.train.kernels import fused
from rnn_dissect.train.kernels.backend import REFERENCE, Backend
from rnn_dissect.train.kernels.workspace import XW, Blocks, CellSpec, LayerWeights, Workspace

__all__ = ["dropout_masks", "forward", "forward_backward"]

Array = np.ndarray


def num_layers(params: dict[str, Array]) -> int:
    L = 0
    while f"rnn.weight_hh_l{L}" in params:
        L += 1
    return L


def dropout_masks(
    rng: np.random.Generator, p: float, n: int, T: int, B: int, H: int, dtype: Any
) -> list[Array]:
    """Inverted-dropout masks for the outputs of layers 0..n−1, time-major (T, B, H) each:

        m = [u ≥ p] / (1 − p),   u ~ U[0, 1) drawn as ``rng.random((T, B, H), dtype)`` per layer

    in layer order, ``dtype`` float32 or float64 (the parameters'). PyTorch's
    ``nn.LSTM(dropout=p)`` semantics: every layer's output except the last is dropped.
    """
    masks = []
    for _ in range(n):
        m = (rng.random((T, B, H), dtype=np.dtype(dtype).type) >= p).astype(dtype)
        m *= 1.0 / (1.0 - p)
        masks.append(m)
    return masks


def init_state(
    spec: CellSpec, L: int, B: int, H: int, state0: tuple[Array, ...] | None, dtype: Any
) -> tuple[Array, ...]:
    """state0 as a tuple of ``n_state`` arrays (L, B, H) in ``dtype``; None means zeros."""
    if state0 is None:
        return tuple(np.zeros((L, B, H), dtype=dtype) for _ in range(spec.n_state))
    if len(state0) != spec.n_state:
        raise ValueError(f"{spec.name} state is a tuple of {spec.n_state} arrays (L, B, H)")
    return tuple(np.asarray(s, dtype=dtype).reshape(L, B, H) for s in state0)


@dataclass
class Layer:
    """What one layer's forward leaves for its backward."""

    w: LayerWeights
    hcat: Array  # (T+1, B, H+E): h_{t-1} in [:, :, :H]; layer 0 may keep onehot(x_t) in [:, :, H:]
    x: Array | None  # the layer's dense input (T, B, H), None for the one-hot layer 0
    cache: Any
    idx: Array | None = None  # layer 0: the input indices (T·B,), time-major


def run_layers(
    spec: CellSpec,
    params: dict[str, Array],
    idx: Array,
    state0: tuple[Array, ...] | None,
    ws: Workspace,
    train: bool,
    backend: Backend,
    masks: list[Array] | None = None,
) -> tuple[list[Layer], Array, tuple[Array, ...]]:
    """Forward through all layers; ``idx`` (T, B) time-major. Returns per-layer records, the
    top output (T, B, H) and the final state (tuple of (L, B, H))."""
    W0 = params["rnn.weight_hh_l0"]
    dtype, H, L = W0.dtype, W0.shape[1], num_layers(params)
    V = params["rnn.weight_ih_l0"].shape[1]
    T, B = idx.shape
    s0 = init_state(spec, L, B, H, state0, dtype)
    sT = tuple(np.empty_like(s) for s in s0)
    layers: list[Layer] = []
    x: Array | None = None
    for k in range(L):
        w = spec.prepare(params, k)
        xw = XW(w, x, idx if k == 0 else None, ws, k, backend)
        # Layer 0 keeps onehot(x_t) beside h_{t-1}, so its backward gets dW_hh and dW_ih
        # from ONE (G·H, T·B) @ (T·B, H+V) GEMM — unless the compiled passes are on: then
        # dW_ih is summed row by row (fused.onehot_grad), without the GEMM's T·B·G·H·V FLOPs.
        E = V if (k == 0 and train and not backend.passes(dtype)) else 0
        hcat = ws.get(f"h{k}", (T + 1, B, H + E), dtype)
        if E:
            hcat[:, :, H:] = 0
            flat = hcat[:T].reshape(T * B, H + E)  # a view: the buffer is contiguous
            flat[np.arange(T * B), H + idx.reshape(-1)] = 1
        Hs = hcat[:, :, :H]  # (T+1, B, H)
        Hs[0] = s0[0][k]
        s0k = tuple(s[k] for s in s0)
        state_k, cache = spec.forward(w, xw, s0k, Hs, ws, f"l{k}", train, backend)
        for dst, src in zip(sT, state_k, strict=True):
            dst[k] = src
        layers.append(Layer(w, hcat, x, cache, idx.reshape(-1) if k == 0 else None))
        if masks is not None and k < L - 1:
            x = ws.get(f"drop{k}", (T, B, H), dtype)  # (T, B, H)
            np.multiply(Hs[1:], masks[k], out=x)
        else:
            x = Hs[1:]
    assert x is not None
    return layers, x, sT


def head_loss_grad(
    top: Array, W: Array, b: Array, y: Array, ws: Workspace, backend: Backend
) -> tuple[float, Array, Array, Array]:
    """Linear head + mean softmax cross-entropy over all N = T·B positions, fused.

        z = top @ Wᵀ + b    loss = mean(logsumexp(z) − z_y)    dz = (softmax(z) − onehot(y)) / N

    ``top`` (T, B, H), ``y`` (T, B). Returns loss, d top (T, B, H), dW (V, H), db (V,).
    """
    T, B, H = top.shape
    N = T * B
    X = top.reshape(N, H)
    z = ws.get("logits", (N, W.shape[0]), W.dtype)  # (N, V)
    backend.matmul(X, W.T, out=z)
    np.add(z, b, out=z)
    rows = np.arange(N)
    yf = y.reshape(N)
    m = z.max(axis=1, keepdims=True)  # (N, 1)
    np.subtract(z, m, out=z)
    zy = z[rows, yf].astype(np.float64)  # (N,)
    np.exp(z, out=z)
    s = z.sum(axis=1, keepdims=True)  # (N, 1)
    loss = float(np.mean(np.log(s[:, 0].astype(np.float64)) - zy))
    np.multiply(z, (1.0 / (s * N)).astype(z.dtype), out=z)  # softmax / N
    z[rows, yf] -= z.dtype.type(1.0 / N)
    dW = backend.matmul(z.T, X)  # (V, H)
    db = backend.matmul(np.ones((1, N), dtype=z.dtype), z)[0]  # (V,)
    dtop = ws.get("dtop", (T, B, H), W.dtype)
    backend.matmul(z, W, out=dtop.reshape(N, H))
    return loss, dtop, dW, db


def backward_layers(
    spec: CellSpec,
    params: dict[str, Array],
    layers: list[Layer],
    dtop: Array,
    ws: Workspace,
    masks: list[Array] | None,
    backend: Backend,
) -> dict[str, Array]:
    """Backward through the layers from ``dtop`` = dL/d(top output) (T, B, H); returns
    gradients of every ``rnn.*`` parameter in PyTorch's names and row order.

    Per layer k, top down: the cell's BPTT gives dÃ (:meth:`CellSpec.backward`), then
    :func:`layer_grads` turns it into the weight gradients and dL/d(layer input), which
    (through layer k−1's dropout mask) is layer k−1's dL/d(output)."""
    grads: dict[str, Array] = {}
    dHs = dtop
    for k in reversed(range(len(layers))):
        lay = layers[k]
        blocks = spec.backward(lay.w, dHs, lay.cache, ws, f"l{k}", backend)
        n_in = params[f"rnn.weight_ih_l{k}"].shape[1]
        out, dX = layer_grads(spec.gates, k, lay, blocks, n_in, ws, backend)
        if dX is not None:
            if masks is not None:
                np.multiply(dX, masks[k - 1], out=dX)
            dHs = dX
        for name, d in out.items():
            grads[f"rnn.{name}_l{k}"] = torch_rows(d, spec.order, lay.w.g)  # never a ws view
    return grads


def layer_grads(
    G: int,
    k: int,
    lay: Layer,
    blocks: Blocks,
    n_in: int,
    ws: Workspace,
    backend: Backend,
) -> tuple[dict[str, Array], Array | None]:
    """Layer k's weight gradients (internal row order, scaled coordinates) from its gate
    gradients ``blocks`` (rows of dÃ, each (T·B, n)), all steps at once:

        dW_hh = dÃᵀ [h_{t-1}]    dW_ih = dÃᵀ [x_t]    db = Σ_n dÃ_n    dX = dÃ W_ih   (k > 0)

    For layer 0 one GEMM against ``[h_{t-1} | onehot(x_t)]`` gives dW_hh and dW_ih at once;
    with the compiled passes, dW_ih[:, v] = Σ_{n: x_n = v} dÃ_n is summed row by row instead.
    Returns the four gradients (torch's short names) and dX (T, B, H), None for layer 0."""
    T, B = lay.hcat.shape[0] - 1, lay.hcat.shape[1]
    N, H = T * B, lay.w.W_hh_bwd.shape[1]
    dtype = lay.hcat.dtype
    ones = ws.get("ones", (1, N), dtype)  # Σ over the T·B rows as a GEMV
    ones.fill(1)
    hcat = lay.hcat[:T].reshape(N, -1)  # (T·B, H+E): [h_{t-1} | onehot(x_t)]
    Hprev = hcat[:, :H]
    dW_ih = np.empty((G * H, n_in), dtype=dtype)
    dW_hh = np.empty((G * H, H), dtype=dtype)
    db_ih = np.empty(G * H, dtype=dtype)
    db_hh = np.empty(G * H, dtype=dtype)
    scatter = k == 0 and lay.idx is not None and backend.passes(dtype)
    dX: Array | None = None
    if k > 0:
        dX = ws.get(f"dx{k}", (T, B, H), dtype)
        dX.fill(0)
    for r0, blk, role in blocks:
        rows = slice(r0, r0 + blk.shape[1])
        if k == 0 and role == "both" and not scatter:  # one GEMM gives both weight gradients
            dW = ws.get(f"dW{r0}", (blk.shape[1], hcat.shape[1]), dtype)  # (rows, H+V)
            backend.matmul(blk.T, hcat, out=dW)
            if blk.shape[1] == G * H:  # all rows: use the halves in place
                dW_hh, dW_ih = dW[:, :H], dW[:, H:]
            else:
                dW_hh[rows], dW_ih[rows] = dW[:, :H], dW[:, H:]
        elif role in ("both", "hh"):
            backend.matmul(blk.T, Hprev, out=dW_hh[rows])
        if scatter and role in ("both", "ih"):
            acc = ws.get(f"onehot{r0}", (n_in, blk.shape[1]), dtype)  # (V, rows)
            acc.fill(0)
            fused.onehot_grad(blk, lay.idx, acc)
            dW_ih[rows] = acc.T
        elif role == "ih" or (role == "both" and k > 0):
            X = hcat[:, H:] if lay.x is None else lay.x.reshape(N, H)  # onehot | input
            backend.matmul(blk.T, X, out=dW_ih[rows])
        if role in ("both", "ih"):
            # one-hot rows sum to 1, so Σ_n dÃ_n = Σ_v dW_ih[:, v]
            db_ih[rows] = dW_ih[rows].sum(axis=1) if k == 0 else backend.matmul(ones, blk)[0]
            if dX is not None:
                dX.reshape(N, H)[...] += backend.matmul(blk, lay.w.W_ih_bwd[rows])
        if role == "both":
            db_hh[rows] = db_ih[rows]
        elif role == "hh":
            db_hh[rows] = backend.matmul(ones, blk)[0]
    out = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db_ih, "bias_hh": db_hh}
    return out, dX


def torch_rows(d: Array, order: tuple[int, ...], g: Array) -> Array:
    """True gradients (× g, constant within a gate block) in PyTorch's row order, as a new
    C-contiguous array: one pass over ``d`` (G·H, …) in the cell's internal row order."""
    H = d.shape[0] // len(order)
    out = np.empty(d.shape, dtype=d.dtype)
    for j, k in enumerate(order):
        np.multiply(d[j * H : (j + 1) * H], g[j * H], out=out[k * H : (k + 1) * H])
    return out


def check_inputs(params: dict[str, Array], x_idx: Array, y_idx: Array | None = None) -> Array:
    """Validate shapes; return the (T, B) time-major copy of ``x_idx`` (B, T)."""
    x = np.asarray(x_idx)
    if x.ndim != 2 or x.dtype.kind not in "iu":
        raise ValueError("x_idx must be an integer array (B, T)")
    V = params["rnn.weight_ih_l0"].shape[1]
    if x.size and (x.min() < 0 or x.max() >= V):
        raise ValueError(f"x_idx holds indices outside the vocabulary [0, {V})")
    if y_idx is not None and np.shape(y_idx) != x.shape:
        raise ValueError("y_idx must have the shape of x_idx (B, T)")
    return np.ascontiguousarray(x.T)


def forward_backward(
    spec: CellSpec,
    params: dict[str, Array],
    x_idx: Array,
    y_idx: Array,
    state0: tuple[Array, ...] | None = None,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    ws: Workspace | None = None,
    backend: Backend | None = None,
) -> tuple[float, dict[str, Array], tuple[Array, ...]]:
    """Mean cross-entropy over all B·T positions, its gradient for every parameter (torch
    names) and the final state; see the cell modules for the equations. ``backend`` None
    is :data:`~rnn_dissect.train.kernels.backend.REFERENCE` (plain numpy)."""
    ws = ws or Workspace()
    backend = backend or REFERENCE
    idx = check_inputs(params, x_idx, y_idx)  # (T, B)
    y = np.ascontiguousarray(np.asarray(y_idx).T)  # (T, B)
    T, B = idx.shape
    L = num_layers(params)
    H = params["rnn.weight_hh_l0"].shape[1]
    dtype = params["rnn.weight_hh_l0"].dtype
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    masks = None
    if dropout > 0.0 and L > 1:
        if rng is None:
            raise ValueError("dropout > 0 needs rng (a numpy Generator)")
        masks = dropout_masks(rng, dropout, L - 1, T, B, H, dtype)
    layers, top, sT = run_layers(spec, params, idx, state0, ws, True, backend, masks)
    loss, dtop, dW_head, db_head = head_loss_grad(
        top, params["head.weight"], params["head.bias"], y, ws, backend
    )
    grads = backward_layers(spec, params, layers, dtop, ws, masks, backend)
    grads["head.weight"] = dW_head
    grads["head.bias"] = db_head
    return loss, {name: grads[name] for name in params}, sT


def forward(
    spec: CellSpec,
    params: dict[str, Array],
    x_idx: Array,
    state0: tuple[Array, ...] | None = None,
    ws: Workspace | None = None,
    backend: Backend | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """Logits (B, T, V) and the final state; no dropout, nothing kept for backward."""
    ws = ws or Workspace()
    backend = backend or REFERENCE
    idx = check_inputs(params, x_idx)
    T, B = idx.shape
    _, top, sT = run_layers(spec, params, idx, state0, ws, False, backend)
    W, b = params["head.weight"], params["head.bias"]
    logits = backend.matmul(top.reshape(T * B, -1), W.T) + b  # (T·B, V)
    return np.ascontiguousarray(logits.reshape(T, B, -1).transpose(1, 0, 2)), sT
