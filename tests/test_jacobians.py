"""jacobians.block_norms: every path's spectral norm against the step Jacobian of torch's own
nn.RNNCell / LSTMCell / GRUCell (float64 autograd), block by block."""

from __future__ import annotations

import numpy as np
import pytest
from torch_ref import cell_steps

from rnn_dissect.bptt.dissection import dissect
from rnn_dissect.bptt.jacobians import PATHS, STATE_PATH, block_norms
from rnn_dissect.nets.model import CharModel, ModelConfig

TOL = 1e-10


def _sigma1(m: np.ndarray) -> float:
    return float(np.linalg.norm(m, 2))


def _torch_paths(cell: str, J: np.ndarray, H: int, z: np.ndarray | None) -> dict[str, float]:
    """The norm of each block of torch's Jacobian J, taken as a general matrix (a diagonal
    block is not assumed diagonal)."""
    if cell == "lstm":
        return {
            "h_h": _sigma1(J[:H, :H]),
            "h_c": _sigma1(J[:H, H:]),
            "c_h": _sigma1(J[H:, :H]),
            "c_c": _sigma1(J[H:, H:]),
            "s_s": _sigma1(J),
        }
    if cell == "gru":
        assert z is not None
        return {"h_h_copy": _sigma1(np.diag(z)), "h_h_rest": _sigma1(J - np.diag(z)),
                "h_h": _sigma1(J)}  # fmt: skip
    return {"h_h": _sigma1(J)}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_block_norms_equal_torch_cells(cell):
    H, L, T = 4, 2, 7
    model = CharModel.init(ModelConfig(cell, tuple("abcde"), H, L), seed=3)
    for k in range(L):  # larger recurrent weights: no path is negligible
        model.params[f"rnn.weight_hh_l{k}"] *= 3.0
    x = np.random.default_rng(5).integers(0, 5, T + 1)
    d = dissect(model, x[:-1], x[1:], lag=False)
    ref = cell_steps(model, x[:-1])
    for k, lf in enumerate(d.flow.layers):
        assert lf.blocks is not None and list(lf.blocks) == list(PATHS[cell])
        for t in range(T):
            J = ref.jacobians[k][t]
            z = ref.z[k][t] if cell == "gru" else None
            want = _torch_paths(cell, J, H, z)
            got = {n: float(lf.blocks[n][t]) for n in PATHS[cell]}  # what flow() computed
            assert got == pytest.approx(want, rel=TOL, abs=0), (k, t)
            alone = block_norms(J, cell, H, z=z)  # no σ1 handed in: computed here
            assert alone == pytest.approx(want, rel=TOL, abs=0), (k, t)
            # the full-state σ1 the verdict reads is torch's too
            sv = lf.state_singular_values if cell == "lstm" else lf.singular_values
            assert sv is not None
            assert sv[t, 0] == pytest.approx(_sigma1(J), rel=TOL)
            assert got[STATE_PATH[cell]] == pytest.approx(_sigma1(J), rel=TOL)
        if cell != "rnn":  # the carry path is a different number from the rest
            carry = "c_c" if cell == "lstm" else "h_h_copy"
            assert not np.allclose(lf.blocks[carry], lf.blocks["h_h"])


def test_gru_block_norms_need_z():
    with pytest.raises(ValueError, match="z_t"):
        block_norms(np.eye(3), "gru", 3)
