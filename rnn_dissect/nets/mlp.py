"""The I:H:O network — by default the classic 3:1:1 — recorded node by node.

One example x (I,), one target y (O,) with entries in [0, 1]:

    z1   = W1 x + b1            W1 (H, I), b1 (H,)      pre-activation     (H,)
    h1   = ReLU(z1)                                     activation         (H,)
    z2   = W2 h1 + b2           W2 (O, H), b2 (O,)      pre-activation     (O,)
    yhat = σ(z2)                                        output             (O,)
    loss = mean_k −(y_k log yhat_k + (1 − y_k) log(1 − yhat_k))   binary log loss

With O > 1 every output unit is its own sigmoid (multi-label) and the loss is the mean
binary cross-entropy over the O outputs (PyTorch's ``BCELoss()``); with O = 1 the mean is
the loss itself. Node ids are stable: ``x y W1 b1 z1 h1 W2 b2 z2 yhat loss``. Everything is
float64.

The default numbers (``DEFAULTS``) are chosen so that the ReLU is active and every number
is easy to check by hand: z1 = 0.3·0.5 + (−0.1)(−1.2) + 0.2·2 + 0.1 = 0.77 > 0.
Negate x (``x = [−0.5, 1.2, −2.0]``) and z1 = −0.57: the ReLU is off and blocks the gradient.

    >>> net = build(DEFAULTS)
    >>> round(float(net.graph["z1"].value[0]), 12), round(net.loss, 4)
    (0.77, 0.5066)
    >>> step = sgd_update(net, lr=0.1)
    >>> step.loss_after < step.loss_before
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_dissect import optim
from rnn_dissect.autograd.engine import Graph, Kind
from rnn_dissect.errors import UserError

__all__ = [
    "DEFAULTS",
    "DEFAULT_SIZES",
    "MLP",
    "PARAMS",
    "SGDUpdate",
    "build",
    "check_values",
    "init_values",
    "parse_sizes",
    "sgd_update",
    "shapes",
]

PARAMS = ("W1", "b1", "W2", "b2")
DEFAULT_SIZES = (3, 1, 1)
# The documented 3:1:1 example: ReLU active (z1 = 0.77), prediction ŷ = σ(0.416) ≈ 0.6025 for y = 1, L ≈ 0.5066.
DEFAULTS: dict[str, Any] = {
    "x": [0.5, -1.2, 2.0],
    "y": [1.0],
    "W1": [[0.3, -0.1, 0.2]],
    "b1": [0.1],
    "W2": [[0.8]],
    "b2": [-0.2],
}


def parse_sizes(text: str) -> tuple[int, int, int]:
    """``"3:4:1"`` → (I, H, O); each a positive integer."""
    parts = text.split(":")
    try:
        n_in, n_hid, n_out = (int(p) for p in parts)
    except ValueError:  # not integers, or not three of them
        n_in = n_hid = n_out = 0
    if min(n_in, n_hid, n_out) < 1:
        raise UserError(f"--sizes {text!r} is not I:H:O; give three positive integers like 3:4:1")
    return n_in, n_hid, n_out


def shapes(sizes: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """The shape of every leaf, as PyTorch's ``nn.Linear`` stores them (weight = (out, in))."""
    n_in, n_hid, n_out = sizes
    return {
        "x": (n_in,),
        "y": (n_out,),
        "W1": (n_hid, n_in),
        "b1": (n_hid,),
        "W2": (n_out, n_hid),
        "b2": (n_out,),
    }


def init_values(sizes: tuple[int, int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random leaves: x ~ N(0, 1), y ∈ {0, 1}, and weights and biases ~ U(−1/√fan_in,
    1/√fan_in) like ``nn.Linear``. Drawn in a fixed order (x, y, W1, b1, W2, b2), all of them
    every time, so overriding one leaf never changes the others."""
    n_in, n_hid, n_out = sizes
    return {
        "x": rng.standard_normal(n_in),
        "y": rng.integers(0, 2, size=n_out).astype(np.float64),
        "W1": rng.uniform(-1, 1, size=(n_hid, n_in)) / np.sqrt(n_in),
        "b1": rng.uniform(-1, 1, size=n_hid) / np.sqrt(n_in),
        "W2": rng.uniform(-1, 1, size=(n_out, n_hid)) / np.sqrt(n_hid),
        "b2": rng.uniform(-1, 1, size=n_out) / np.sqrt(n_hid),
    }


def check_values(values: Mapping[str, Any], sizes: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Reshape each leaf (flat lists allowed, matrices row by row) to its shape; a wrong
    count, a non-finite number or a target outside [0, 1] is a :class:`UserError`."""
    out = {}
    for name, shape in shapes(sizes).items():
        arr = np.asarray(values[name], dtype=np.float64)
        need = int(np.prod(shape))
        if arr.size != need:
            layout = "×".join(map(str, shape))
            how = f" ({layout}, row by row)" if len(shape) == 2 else ""
            sz = ":".join(map(str, sizes))
            raise UserError(
                f"--{name} needs {need} number{'s' * (need != 1)}{how} for sizes {sz}, "
                f"got {arr.size}; fix --{name} or --sizes"
            )
        if not np.all(np.isfinite(arr)):
            raise UserError(f"--{name} has a non-finite number; give ordinary decimal numbers")
        out[name] = arr.reshape(shape)
    if np.any((out["y"] < 0) | (out["y"] > 1)):
        raise UserError("--y must lie in [0, 1] (a probability target for the sigmoid output)")
    return out


@dataclass
class MLP:
    """The recorded network after one forward and one backward pass."""

    graph: Graph
    sizes: tuple[int, int, int]  # (I, H, O)

    @property
    def loss(self) -> float:
        return float(self.graph["loss"].value)

    def values(self) -> dict[str, np.ndarray]:
        """The leaves (x, y, W1, b1, W2, b2) this network was built from."""
        return {k: self.graph[k].value for k in shapes(self.sizes)}


def build(values: Mapping[str, Any], sizes: tuple[int, int, int] | None = None) -> MLP:
    """Record forward and backward for one example. ``values`` maps x, y, W1, b1, W2, b2 to
    numbers (nested lists or arrays); ``sizes`` (I, H, O) defaults to what W1, W2 imply."""
    if sizes is None:
        w1, w2 = np.atleast_2d(values["W1"]), np.atleast_2d(values["W2"])
        sizes = (w1.shape[1], w1.shape[0], w2.shape[0])
    v = check_values(values, sizes)
    g = Graph()
    with np.errstate(all="ignore"):  # overflow is reported below, as a user error
        _record(g, v)
    if not all(np.all(np.isfinite(n.value)) for n in g):
        raise UserError("the forward pass overflowed float64; use smaller numbers")
    g.backward(g["loss"])
    return MLP(g, sizes)


def _record(g: Graph, v: dict[str, np.ndarray]) -> None:
    """The forward pass, node by node, with the stable ids."""
    x = g.input(v["x"], id="x", name="x")  # (I,)
    y = g.target(v["y"], id="y", name="y")  # (O,)
    W1 = g.param(v["W1"], id="W1", name="W₁")  # (H, I)
    b1 = g.param(v["b1"], id="b1", name="b₁")  # (H,)
    z1 = g.apply("linear", x, W1, b1, id="z1", name="z₁", kind=Kind.PREACT)  # (H,)
    h1 = g.apply("relu", z1, id="h1", name="h", kind=Kind.ACTIVATION)  # (H,)
    W2 = g.param(v["W2"], id="W2", name="W₂")  # (O, H)
    b2 = g.param(v["b2"], id="b2", name="b₂")  # (O,)
    z2 = g.apply("linear", h1, W2, b2, id="z2", name="z₂", kind=Kind.PREACT)  # (O,)
    yhat = g.apply("sigmoid", z2, id="yhat", name="ŷ", kind=Kind.OUTPUT)  # (O,)
    g.apply("bce", yhat, y, id="loss", name="L", kind=Kind.LOSS)  # ()


@dataclass(frozen=True)
class SGDUpdate:
    """One plain gradient step, w ← w − lr · dL/dw, and the loss before and after it."""

    lr: float
    old: dict[str, np.ndarray]
    grad: dict[str, np.ndarray]
    new: dict[str, np.ndarray]
    loss_before: float
    loss_after: float  # same example, updated weights


def sgd_update(net: MLP, lr: float) -> SGDUpdate:
    """One SGD step on W1, b1, W2, b2 (x and y unchanged); ``net`` itself is not modified."""
    g = net.graph
    old = {k: g[k].value.copy() for k in PARAMS}
    grad = {k: np.zeros_like(old[k]) if (d := g[k].grad) is None else d.copy() for k in PARAMS}
    new = {k: v.copy() for k, v in old.items()}
    optim.SGD(new, lr=lr).step(new, grad)  # w ← w − lr · g, in place on the copies
    after = build({**net.values(), **new}, net.sizes)
    return SGDUpdate(float(lr), old, grad, new, net.loss, after.loss)
