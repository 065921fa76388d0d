"""Optimizers with ``torch.optim``'s exact update rules and defaults, on numpy arrays.

Parameters and gradients are dicts of arrays under the same names (torch names, see
:mod:`rnn_dissect.nets.model`); ``step`` updates the parameters in place. Optimizer state is
a flat dict of arrays — ``"step"`` plus ``"{slot}.{param name}"`` — that
``state_dict`` / ``load_state_dict`` hand over unchanged (ready for safetensors), so a
run resumed from it continues bit-identically. Per-step learning rates (schedules) are
passed to ``step``; the constructor's ``lr`` is used otherwise.

    >>> import numpy as np
    >>> p = {"w": np.array([1.0, -2.0])}
    >>> opt = Adam(p, lr=0.1)
    >>> opt.step(p, {"w": np.array([0.5, 0.5])})
    >>> p["w"]  # the first Adam step moves every weight by lr, against the gradient's sign
    array([ 0.9, -2.1])
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "Optimizer",
    "RMSprop",
    "clip_grad_norm",
    "clip_grad_value",
    "grad_norm",
]

Array = np.ndarray


def grad_norm(grads: dict[str, Array]) -> float:
    """‖g‖₂ over all gradients as one vector: √(Σ_i ‖g_i‖²)."""
    return math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))


def clip_grad_norm(grads: dict[str, Array], max_norm: float) -> float:
    """``torch.nn.utils.clip_grad_norm_``: in place, g ← g · min(1, max_norm / (‖g‖₂ + 1e-6)).

    Returns the norm before clipping (inf/nan pass through, as in torch)."""
    total = grad_norm(grads)
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef < 1.0:  # torch multiplies by the clamped 1.0 too; the result is the same
        for g in grads.values():
            g *= g.dtype.type(coef)
    return total


def clip_grad_value(grads: dict[str, Array], clip: float) -> None:
    """``torch.nn.utils.clip_grad_value_`` (min-char-rnn's ``np.clip``): g ← clamp(g, −clip, clip)."""
    for g in grads.values():
        np.minimum(g, clip, out=g)
        np.maximum(g, -clip, out=g)


class Optimizer:
    """Base: hyperparameters as attributes, state as a flat dict of arrays.

    All parameters must share one dtype. Internally every slot is ONE flat array (the
    per-parameter entries of ``state`` are views into it), and a step gathers the gradients
    into one flat buffer: an update is a handful of numpy calls whatever the number of
    tensors, which matters for small models where per-call overhead dominates."""

    slots: tuple[str, ...] = ()  # per-parameter state arrays
    weight_decay: float = 0.0  # L2: g ← g + λ p before the update

    def __init__(self, params: dict[str, Array], lr: float) -> None:
        self.lr = lr
        dtypes = {p.dtype for p in params.values()}
        if len(dtypes) != 1:
            raise ValueError(f"all parameters must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop()
        self._shapes = {name: p.shape for name, p in params.items()}
        self._slices: dict[str, slice] = {}
        n = 0
        for name, p in params.items():
            self._slices[name] = slice(n, n + p.size)
            n += p.size
        self._g = np.empty(n, dtype=self.dtype)  # flat gradient
        self.state: dict[str, Array] = {"step": np.zeros((), dtype=np.int64)}
        self._flat: dict[str, Array] = {}
        for slot in self.slots:
            flat = self._flat[slot] = self._init_slot(slot, n)
            for name, sl in self._slices.items():
                self.state[f"{slot}.{name}"] = flat[sl].reshape(self._shapes[name])

    def _init_slot(self, slot: str, n: int) -> Array:
        return np.zeros(n, dtype=self.dtype)

    def step(
        self, params: dict[str, Array], grads: dict[str, Array], lr: float | None = None
    ) -> None:
        """One update of every parameter, in place: p ← p − Δ(g)."""
        k = int(self.state["step"]) + 1
        self.state["step"] = np.asarray(k, dtype=np.int64)
        g = self._g
        np.concatenate([grads[name].ravel() for name in self._slices], out=g)
        if self.weight_decay:
            g += self.weight_decay * np.concatenate([params[name].ravel() for name in self._slices])
        delta = self._delta(g, self.lr if lr is None else lr, k)
        for name, sl in self._slices.items():
            p = params[name]
            np.subtract(p, delta[sl].reshape(p.shape), out=p)

    def _delta(self, g: Array, lr: float, step: int) -> Array:
        """The flat update Δ for flat gradient g (g may be overwritten)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Array]) -> None:
        missing = set(self.state) - set(state)
        if missing:
            raise ValueError(f"optimizer state lacks {sorted(missing)[:3]}")
        self.state["step"] = np.asarray(state["step"], dtype=np.int64)
        for k, v in self.state.items():
            if k != "step":
                np.copyto(v, np.asarray(state[k]).reshape(v.shape))  # into the flat slot


class SGD(Optimizer):
    """``torch.optim.SGD``:  b ← μ b + (1 − τ) g  (b = g at step 1);  g ← g + μ b if nesterov
    else b;  p ← p − lr g.  With weight decay λ, g ← g + λ p first."""

    def __init__(
        self,
        params: dict[str, Array],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.slots = ("momentum_buffer",) if momentum else ()
        super().__init__(params, lr)
        self.momentum, self.dampening, self.weight_decay, self.nesterov = (
            momentum,
            dampening,
            weight_decay,
            nesterov,
        )

    def _delta(self, g: Array, lr: float, step: int) -> Array:
        if self.momentum:
            b = self._flat["momentum_buffer"]
            if step == 1:
                b[...] = g
            else:
                b *= self.momentum
                b += (1.0 - self.dampening) * g
            g = g + self.momentum * b if self.nesterov else b.copy()
        g *= lr
        return g


class Adam(Optimizer):
    """``torch.optim.Adam`` (L2 weight decay, optional amsgrad):

    m ← β₁ m + (1 − β₁) g        v ← β₂ v + (1 − β₂) g²        (v̂ ← max(v̂, v) if amsgrad)
    p ← p − lr/(1 − β₁ᵏ) · m / (√v / √(1 − β₂ᵏ) + ε)
    """

    slots: tuple[str, ...] = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: dict[str, Array],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        if amsgrad:
            self.slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay, self.amsgrad = betas, eps, weight_decay, amsgrad

    def _delta(self, g: Array, lr: float, step: int) -> Array:
        b1, b2 = self.betas
        m, v = self._flat["exp_avg"], self._flat["exp_avg_sq"]
        d = np.subtract(g, m)
        d *= 1.0 - b1
        m += d  # torch: exp_avg.lerp_(grad, 1 − β₁)
        v *= b2
        np.multiply(g, g, out=g)
        g *= 1.0 - b2
        v += g
        if self.amsgrad:
            vmax = self._flat["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            v = vmax
        np.sqrt(v, out=d)
        d /= math.sqrt(1.0 - b2**step)
        d += self.eps  # denominator
        np.divide(m, d, out=d)
        d *= lr / (1.0 - b1**step)
        return d


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``:  s ← s + g²;  p ← p − lr/(1 + (k−1)·decay) · g / (√s + ε).

    (min-char-rnn writes ``p −= lr · g / √(s + 1e-8)``: ε inside the root; this is torch's.)"""

    slots = ("sum",)

    def __init__(
        self,
        params: dict[str, Array],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        self.initial_accumulator_value = initial_accumulator_value
        super().__init__(params, lr)
        self.lr_decay, self.weight_decay, self.eps = lr_decay, weight_decay, eps

    def _init_slot(self, slot: str, n: int) -> Array:
        return np.full(n, self.initial_accumulator_value, dtype=self.dtype)

    def _delta(self, g: Array, lr: float, step: int) -> Array:
        s = self._flat["sum"]
        std = np.multiply(g, g)
        s += std
        np.sqrt(s, out=std)
        std += self.eps
        np.divide(g, std, out=g)
        g *= lr / (1.0 + (step - 1) * self.lr_decay)
        return g


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``:  s ← α s + (1 − α) g²;  (centered: ḡ ← α ḡ + (1 − α) g, s̃ = s − ḡ²)
    d = √s̃ + ε;  p ← p − lr · g / d  (momentum μ: b ← μ b + g / d;  p ← p − lr b)."""

    def __init__(
        self,
        params: dict[str, Array],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        self.slots = (
            ("square_avg",)
            + (("momentum_buffer",) if momentum else ())
            + (("grad_avg",) if centered else ())
        )
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay, self.momentum, self.centered = (
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
        )

    def _delta(self, g: Array, lr: float, step: int) -> Array:
        a = self.alpha
        s = self._flat["square_avg"]
        s *= a
        s += (1.0 - a) * (g * g)
        if self.centered:
            ga = self._flat["grad_avg"]
            ga += (1.0 - a) * (g - ga)  # torch: grad_avg.lerp_(grad, 1 − α)
            avg = np.sqrt(s - ga * ga)
        else:
            avg = np.sqrt(s)
        avg += self.eps
        np.divide(g, avg, out=g)
        if self.momentum:
            b = self._flat["momentum_buffer"]
            b *= self.momentum
            b += g
            return lr * b
        g *= lr
        return g


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": Adam,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "sgd": SGD,
}
