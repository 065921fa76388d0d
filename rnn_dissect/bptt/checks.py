"""What an unroll accepts, checked up front: one clear line naming the problem and the fix.

Shapes (B batch, T steps, I input features, V vocabulary, O outputs, L layers, H hidden):
inputs (T,) / (B, T) indices or (T, I) / (B, T, I) floats; many-to-many targets shaped like
the indices; many-to-one targets (O,) / (B, O) in [0, 1]; initial states (L, B, H), or
(L, H) for unbatched input; weights under torch's names with the model's shapes, finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, check_finite, check_params

__all__ = ["MODES", "initial_state", "inputs", "options", "params", "targets"]

MODES = ("many_to_many", "many_to_one")


def options(truncate: int | None, mode: str) -> None:
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose many_to_many or many_to_one")
    if truncate is not None and truncate < 1:
        raise UserError(f"--truncate {truncate} must be at least 1 (or omitted for full BPTT)")


def inputs(x: np.ndarray, model: CharModel) -> tuple[np.ndarray, bool]:
    """Return inputs as (B, T) indices or (B, T, I) floats, and whether they were batched."""
    if x.size == 0:
        raise UserError("the input sequence is empty; give at least one step")
    if np.issubdtype(x.dtype, np.integer):
        if x.ndim not in (1, 2):
            raise UserError(f"index inputs must be (T,) or (B, T), got shape {x.shape}")
        V = model.config.vocab_size
        if x.min() < 0 or x.max() >= V:
            raise UserError(f"input indices must lie in [0, {V}) for a vocabulary of {V}")
        return (x[None] if x.ndim == 1 else x).astype(np.int64), x.ndim == 2
    if not np.issubdtype(x.dtype, np.floating) or x.ndim not in (2, 3):
        raise UserError(f"float inputs must be (T, I) or (B, T, I), got {x.dtype} {x.shape}")
    n_in = model.params["rnn.weight_ih_l0"].shape[1]
    if x.shape[-1] != n_in:
        raise UserError(f"float inputs have {x.shape[-1]} features but weight_ih_l0 expects {n_in}")
    if not np.all(np.isfinite(x)):
        raise UserError("the inputs contain NaN or infinity; give finite numbers")
    return (x[None] if x.ndim == 2 else x).astype(np.float64), x.ndim == 3


def params(model: CharModel, mode: str) -> None:
    """The weights fit the config (any input size for float inputs, any O ≥ 1 outputs for
    many-to-one: see :func:`~rnn_dissect.nets.model.check_params`) and are finite."""
    shapes = {k: tuple(np.shape(v)) for k, v in model.params.items()}
    any_outputs = mode == "many_to_one"
    check_params(model.config, shapes, "the weights", any_input=True, any_outputs=any_outputs)
    check_finite(model.params, "the weights")


def targets(
    y: np.ndarray, model: CharModel, mode: str, batched: bool, B: int, T: int
) -> np.ndarray:
    if mode == "many_to_many":
        if not np.issubdtype(y.dtype, np.integer) or y.shape != ((B, T) if batched else (T,)):
            want = (B, T) if batched else (T,)
            raise UserError(
                f"targets must be indices shaped like the inputs {want}, got {y.dtype} {y.shape}"
            )
        V = model.params["head.weight"].shape[0]
        if y.min() < 0 or y.max() >= V:
            raise UserError(f"target indices must lie in [0, {V}) for a vocabulary of {V}")
        return (y if batched else y[None]).astype(np.int64)
    n_out = model.params["head.weight"].shape[0]
    y = y.astype(np.float64)
    if y.ndim == 0 or (not batched and y.shape == (n_out,)):
        y = np.broadcast_to(y, (1, n_out)) if y.ndim == 0 else y[None]
    if y.shape != (B, n_out):
        raise UserError(
            f"many-to-one targets must be (B, O) = {(B, n_out)} (or (O,) unbatched), got {y.shape}"
        )
    if not np.all((y >= 0) & (y <= 1)):
        raise UserError("many-to-one targets must lie in [0, 1] (probabilities for the sigmoid)")
    return np.ascontiguousarray(y)


def initial_state(value: Any, name: str, L: int, B: int, H: int, batched: bool) -> np.ndarray:
    """An initial state as (L, B, H) float64 (zeros by default)."""
    if value is None:
        return np.zeros((L, B, H))
    a = np.asarray(value, dtype=np.float64)
    want = (L, B, H) if batched else (L, H)
    if a.shape != want:
        raise UserError(f"{name} must have shape (L, B, H) = {want}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise UserError(f"{name} contains NaN or infinity; give finite numbers")
    return a if batched else a[:, None, :]
