"""Primitive ops: each forward sits beside its vector-Jacobian product (one table, ``OPS``).

A forward takes the parents' values (numpy arrays) plus keyword attributes and returns
``(out, saved)``: the output and a dict of the tensors its backward will read. Keeping
``saved`` explicit is what lets rnn-dissect answer "what must be kept for the backward
pass": a saved array that *is* a parent's or the output's value costs nothing extra;
any other array is memory the op holds on to.

A backward takes ``(g, saved, **attrs)`` where ``g = dL/d(out)`` and returns one gradient
per parent (None for non-differentiable parents such as integer targets). Gradients may
have the broadcast shape; the engine sums them back to each parent's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OPS", "Op", "unbroadcast"]

Array = np.ndarray
Saved = dict[str, Any]  # arrays, plus shapes/counts (metadata, not memory)


@dataclass(frozen=True)
class Op:
    name: str
    forward: Callable[..., tuple[Array, Saved]]
    backward: Callable[..., tuple[Array | None, ...]]
    kind: str  # default node kind for results of this op
    formula: str  # human-readable forward, for walkthroughs and legends


def unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``g`` over the axes numpy broadcasting added or stretched to reach ``shape``."""
    if g.shape == shape:
        return g
    while g.ndim > len(shape):
        g = np.add.reduce(g, axis=0)  # = g.sum(axis=0), the same ufunc, without its wrapper
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g.reshape(shape)


# --------------------------------------------------------------------- elementwise
def _add_f(a: Array, b: Array) -> tuple[Array, Saved]:
    return a + b, {}


def _add_b(g: Array, s: Saved) -> tuple[Array, Array]:
    return g, g


def _sub_f(a: Array, b: Array) -> tuple[Array, Saved]:
    return a - b, {}


def _sub_b(g: Array, s: Saved) -> tuple[Array, Array]:
    return g, -g


def _mul_f(a: Array, b: Array) -> tuple[Array, Saved]:
    return a * b, {"a": a, "b": b}


def _mul_b(g: Array, s: Saved) -> tuple[Array, Array]:
    return g * s["b"], g * s["a"]


def _addn_f(*xs: Array) -> tuple[Array, Saved]:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out, {"n": len(xs)}


def _addn_b(g: Array, s: Saved) -> tuple[Array, ...]:
    return (g,) * s["n"]


def _tanh_f(x: Array) -> tuple[Array, Saved]:
    y = np.tanh(x)
    return y, {"y": y}


def _tanh_b(g: Array, s: Saved) -> tuple[Array]:
    return (g * (1.0 - s["y"] ** 2),)


def _sigmoid(x: Array) -> Array:
    # exp of a non-positive number only: no overflow for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_f(x: Array) -> tuple[Array, Saved]:
    y = _sigmoid(x)
    return y, {"y": y}


def _sigmoid_b(g: Array, s: Saved) -> tuple[Array]:
    y = s["y"]
    return (g * y * (1.0 - y),)


def _relu_f(x: Array) -> tuple[Array, Saved]:
    y = np.maximum(x, 0.0)
    return y, {"y": y}


def _relu_b(g: Array, s: Saved) -> tuple[Array]:
    # PyTorch's convention: the derivative at exactly 0 is 0 (the unit is "off")
    return (g * (s["y"] > 0),)


def _exp_f(x: Array) -> tuple[Array, Saved]:
    y = np.exp(x)
    return y, {"y": y}


def _exp_b(g: Array, s: Saved) -> tuple[Array]:
    return (g * s["y"],)


def _log_f(x: Array) -> tuple[Array, Saved]:
    return np.log(x), {"x": x}


def _log_b(g: Array, s: Saved) -> tuple[Array]:
    return (g / s["x"],)


# --------------------------------------------------------------------- linear algebra
def _matmul_f(a: Array, b: Array) -> tuple[Array, Saved]:
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError("matmul takes vectors and matrices (ndim <= 2)")
    return a @ b, {"a": a, "b": b}


def _matmul_b(g: Array, s: Saved) -> tuple[Array, Array]:
    a, b = s["a"], s["b"]
    # Promote vectors to matrices, use the matrix rule, then drop the added axes.
    a2 = a[None, :] if a.ndim == 1 else a  # (M, K)
    b2 = b[:, None] if b.ndim == 1 else b  # (K, N)
    g2 = g.reshape(a2.shape[0], b2.shape[1])  # (M, N)
    ga = g2 @ b2.T  # (M, K)
    gb = a2.T @ g2  # (K, N)
    return ga.reshape(a.shape), gb.reshape(b.shape)


def _linear_f(x: Array, w: Array, b: Array | None = None) -> tuple[Array, Saved]:
    # PyTorch's F.linear: x Wᵀ (+ b). x: (B, in) or (in,); W: (out, in); b: (out,)
    out = x @ w.T
    return (out if b is None else out + b), {"x": x, "W": w}


def _linear_b(g: Array, s: Saved) -> tuple[Array, ...]:
    x, w = s["x"], s["W"]
    gx = g @ w  # (B, in)
    # (out, in): Σ_b g_b x_bᵀ — for one example the outer product, faster than a matmul
    gw = np.outer(g, x) if x.ndim == 1 or x.shape[0] == 1 else g.T @ x
    gb = g if g.ndim == 1 else np.add.reduce(g, axis=0)  # (out,) = g.sum(axis=0)
    return gx, gw, gb  # the engine drops gb when there is no bias parent


def _detach_f(x: Array) -> tuple[Array, Saved]:
    return x, {}


def _detach_b(g: Array, s: Saved) -> tuple[None]:
    # truncated BPTT: the value passes forward, no gradient flows back
    return (None,)


def _transpose_f(x: Array) -> tuple[Array, Saved]:
    return x.T, {}


def _transpose_b(g: Array, s: Saved) -> tuple[Array]:
    return (g.T,)


def _lookup_f(w: Array, idx: Array, axis: int = 0) -> tuple[Array, Saved]:
    # axis=0: rows w[idx] (an embedding); axis=1: columns, i.e. onehot(idx) @ w.T —
    # how a one-hot input meets PyTorch's weight_ih (H, V) without building the one-hot.
    # moveaxis(w[:, idx], 0, -1) is this transpose (the same view), without its checks
    out = w[idx] if axis == 0 else w[:, idx].transpose((*range(1, idx.ndim + 1), 0))
    return out, {"idx": idx, "w_shape": w.shape}


def _lookup_b(g: Array, s: Saved, axis: int = 0) -> tuple[Array, None]:
    gw = np.zeros(s["w_shape"], dtype=g.dtype)
    idx = s["idx"]
    if axis == 0:
        np.add.at(gw, idx, g)
    elif idx.size == 1:  # one index (B = 1): add.at's 0 + g into one column, without add.at
        gw[:, idx.reshape(-1)[0]] += g.reshape(-1)
    else:
        np.add.at(gw.T, idx, g)  # gw.T is a view: scatter rows of the transpose
    return gw, None


# --------------------------------------------------------------------- reductions, shapes
def _sum_f(x: Array, axis: int | None = None) -> tuple[Array, Saved]:
    return np.asarray(x.sum(axis=axis)), {"x_shape": x.shape}


def _sum_b(g: Array, s: Saved, axis: int | None = None) -> tuple[Array]:
    shape = s["x_shape"]
    if axis is not None:
        g = np.expand_dims(g, axis)
    return (np.broadcast_to(g, shape).copy(),)


def _mean_f(x: Array, axis: int | None = None) -> tuple[Array, Saved]:
    return np.asarray(x.mean(axis=axis)), {"x_shape": x.shape}


def _mean_b(g: Array, s: Saved, axis: int | None = None) -> tuple[Array]:
    shape = s["x_shape"]
    n = int(np.prod(shape)) if axis is None else shape[axis]
    (gx,) = _sum_b(g, s, axis=axis)
    return (gx / n,)


def _slice_f(x: Array, index: Any) -> tuple[Array, Saved]:
    return np.array(x[index]), {"x_shape": x.shape}


def _slice_b(g: Array, s: Saved, index: Any) -> tuple[Array]:
    gx = np.zeros(s["x_shape"], dtype=g.dtype)
    np.add.at(gx, index, g)  # add.at: repeated indices accumulate
    return (gx,)


def _concat_f(*xs: Array, axis: int = -1) -> tuple[Array, Saved]:
    sizes = [x.shape[axis] for x in xs]
    return np.concatenate(xs, axis=axis), {"sizes": sizes}


def _concat_b(g: Array, s: Saved, axis: int = -1) -> tuple[Array, ...]:
    cuts = np.cumsum(s["sizes"])[:-1]
    return tuple(np.split(g, cuts, axis=axis))


# --------------------------------------------------------------------- losses
def _reduce(each: Array, reduction: str) -> Array:
    if reduction == "mean":
        return np.asarray(each.mean())
    if reduction == "sum":
        return np.asarray(each.sum())
    if reduction == "none":
        return each
    raise ValueError(f"reduction must be mean, sum or none, not {reduction!r}")


def _target_cells(target: Array) -> tuple[Array, Array]:
    """(row, class) indices of each target in the logits viewed as (rows, V)."""
    cls = target.reshape(-1).astype(np.intp)
    return np.arange(cls.size), cls


def _softmax_ce_f(logits: Array, target: Array, reduction: str = "mean") -> tuple[Array, Saved]:
    # log-softmax with the max subtracted: no overflow for any logits
    # ndarray.max / .sum are these ufunc reductions behind a Python wrapper: same numbers
    z = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)
    logp = z - np.log(np.add.reduce(np.exp(z), axis=-1, keepdims=True))
    nll = -logp.reshape(-1, logp.shape[-1])[_target_cells(target)].reshape(target.shape)
    loss = _reduce(nll, reduction)
    return np.asarray(loss), {"p": np.exp(logp), "target": target}


def _softmax_ce_b(g: Array, s: Saved, reduction: str = "mean") -> tuple[Array, None]:
    p, target = s["p"], s["target"]
    d = p.copy()  # dL/dlogits = p - onehot(target), per row
    d.reshape(-1, d.shape[-1])[_target_cells(target)] -= 1.0  # a view: d itself changes
    if reduction == "mean":
        d = d * (g / max(target.size, 1))
    elif reduction == "sum":
        d = d * g
    else:
        d = d * g[..., None]
    return d, None


def _bce_f(p: Array, y: Array, reduction: str = "mean") -> tuple[Array, Saved]:
    # PyTorch's BCELoss clamps each log at -100 so p = 0 or 1 gives a finite loss
    logp = np.maximum(np.log(p), -100.0)
    log1mp = np.maximum(np.log1p(-p), -100.0)
    each = -(y * logp + (1.0 - y) * log1mp)
    loss = _reduce(each, reduction)
    return np.asarray(loss), {"p": p, "y": y}


def _bce_b(g: Array, s: Saved, reduction: str = "mean") -> tuple[Array, None]:
    p, y = s["p"], s["y"]
    # dL/dp = (p - y) / (p (1 - p)); PyTorch bounds the denominator below by 1e-12
    d = (p - y) / np.maximum(p * (1.0 - p), 1e-12)
    scale = g / p.size if reduction == "mean" else g
    return d * scale, None  # like PyTorch's BCELoss: no gradient for the target


def _bce_logits_f(z: Array, y: Array, reduction: str = "mean") -> tuple[Array, Saved]:
    # max(z, 0) - z y + log(1 + e^{-|z|}): the stable form of -y log σ(z) - (1-y) log(1-σ(z))
    each = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    loss = _reduce(each, reduction)
    return np.asarray(loss), {"z": z, "y": y}


def _bce_logits_b(g: Array, s: Saved, reduction: str = "mean") -> tuple[Array, Array]:
    z, y = s["z"], s["y"]
    scale = g / z.size if reduction == "mean" else g
    return (_sigmoid(z) - y) * scale, -z * scale


OPS: dict[str, Op] = {
    op.name: op
    for op in [
        Op("add", _add_f, _add_b, "pre-activation", "a + b"),
        Op("sub", _sub_f, _sub_b, "pre-activation", "a − b"),
        Op("mul", _mul_f, _mul_b, "pre-activation", "a ⊙ b"),
        Op("addn", _addn_f, _addn_b, "pre-activation", "Σ xᵢ"),
        Op("matmul", _matmul_f, _matmul_b, "pre-activation", "a @ b"),
        Op("linear", _linear_f, _linear_b, "pre-activation", "x Wᵀ + b"),
        Op("detach", _detach_f, _detach_b, "state", "x (no gradient back)"),
        Op("transpose", _transpose_f, _transpose_b, "pre-activation", "xᵀ"),
        Op("lookup", _lookup_f, _lookup_b, "pre-activation", "W[idx] (one-hot product)"),
        Op("tanh", _tanh_f, _tanh_b, "activation", "tanh(x)"),
        Op("sigmoid", _sigmoid_f, _sigmoid_b, "activation", "σ(x) = 1 / (1 + e^{−x})"),
        Op("relu", _relu_f, _relu_b, "activation", "max(x, 0)"),
        Op("exp", _exp_f, _exp_b, "activation", "eˣ"),
        Op("log", _log_f, _log_b, "activation", "log x"),
        Op("sum", _sum_f, _sum_b, "pre-activation", "Σ x"),
        Op("mean", _mean_f, _mean_b, "pre-activation", "mean(x)"),
        Op("slice", _slice_f, _slice_b, "pre-activation", "x[index]"),
        Op("concat", _concat_f, _concat_b, "pre-activation", "[x₁, x₂, …]"),
        Op("softmax_ce", _softmax_ce_f, _softmax_ce_b, "loss", "−log softmax(z)[target]"),
        Op("bce", _bce_f, _bce_b, "loss", "−(y log p + (1 − y) log(1 − p))"),
        Op(
            "bce_logits",
            _bce_logits_f,
            _bce_logits_b,
            "loss",
            "−(y log σ(z) + (1 − y) log(1 − σ(z)))",
        ),
    ]
}
