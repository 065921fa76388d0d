"""Adam's update for float32 training in one compiled pass per parameter.

:class:`rnn_dissect.optim.Adam` is the reference: it gathers the gradients into one flat
buffer and updates the flat state with a dozen numpy passes, each reading and writing
millions of floats (3.2 ms of an LSTM 512 training step on the AMD EPYC Zen 4 measured; this
pass: 0.8 ms, ``bench/bench_train_step.py --part 4``). :func:`step` does the same
arithmetic (see :func:`~rnn_dissect.train.kernels.fused.adam_update`) on the optimizer's own
state arrays, so checkpoints, resume and ``state_dict`` do not change; anything it does not
cover (other optimizers, amsgrad, float64, no numba) goes to ``opt.step``.

    >>> import numpy as np
    >>> from rnn_dissect import optim
    >>> p = {"w": np.array([1.0, -2.0], np.float32)}
    >>> opt = optim.Adam(p, lr=0.1)
    >>> step(opt, p, {"w": np.array([0.5, 0.5], np.float32)}, compiled=True)
    >>> [round(float(w), 4) for w in p["w"]]
    [0.9, -2.1]
"""

from __future__ import annotations

import math

import numpy as np

from rnn_dissect import optim
from rnn_dissect.train.kernels import fused

__all__ = ["covers", "step"]

Array = np.ndarray
_F32 = np.float32


def covers(opt: optim.Optimizer) -> bool:
    """Whether :func:`step` runs the compiled pass for ``opt`` (else it calls ``opt.step``)."""
    return (
        fused.AVAILABLE
        and type(opt) is optim.Adam
        and not opt.amsgrad
        and np.dtype(opt.dtype) == np.dtype(_F32)
    )


def step(
    opt: optim.Optimizer,
    params: dict[str, Array],
    grads: dict[str, Array],
    lr: float | None = None,
    compiled: bool = True,
) -> None:
    """``opt.step(params, grads, lr)``; through the compiled pass when ``compiled`` and
    :func:`covers` ``opt``. ``grads`` are left as they are."""
    if not (compiled and covers(opt)):
        opt.step(params, grads, lr)
        return
    assert isinstance(opt, optim.Adam)
    k = int(opt.state["step"]) + 1
    opt.state["step"] = np.asarray(k, dtype=np.int64)
    b1, b2 = opt.betas
    step_size = (opt.lr if lr is None else lr) / (1.0 - b1**k)
    bc2_sqrt = math.sqrt(1.0 - b2**k)
    for name, p in params.items():
        m, v = opt.state[f"exp_avg.{name}"], opt.state[f"exp_avg_sq.{name}"]
        if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
            raise ValueError(f"{name}: parameters and optimizer state must be contiguous")
        pf, mf, vf = p.reshape(-1), m.reshape(-1), v.reshape(-1)  # views: updated in place
        g = np.ascontiguousarray(grads[name]).reshape(-1)  # read only
        fused.adam_update(
            pf,
            g,
            mf,
            vf,
            _F32(1.0 - b1),
            _F32(b2),
            _F32(1.0 - b2),
            _F32(opt.eps),
            _F32(opt.weight_decay),
            _F32(step_size),
            _F32(bc2_sqrt),
        )
