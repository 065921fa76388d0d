"""The Jacobians of one recorded step of one layer: through time (∂s_t/∂s_{t-1}) and up the
stack (∂s_t/∂x_t, x_t = the layer below's h_t), from the values the forward pass recorded.

State s_t = h_t (RNN, GRU) or [h_t; c_t] (LSTM, 2H). With W the recurrent weight W_hh (the
step Jacobian) or the input weight W_ih (the input Jacobian), split into gate blocks W_*:

    RNN   ∂h_t = diag(1 − h_t²) W                      (relu: diag(1[h_t > 0]) W)
    GRU   ∂r = diag(r(1 − r)) W_r   ∂z = diag(z(1 − z)) W_z
          through time  ∂n = diag(1 − n²) (diag(W_hn h_{t-1} + b_hn) ∂r + diag(r) W_hn)
          up the stack  ∂n = diag(1 − n²) (W_in + diag(W_hn h_{t-1} + b_hn) ∂r)
          ∂h_t = diag(1 − z) ∂n + diag(h_{t-1} − n) ∂z  (+ diag(z) through time)
    LSTM  ∂i = diag(i(1 − i)) W_i, ∂f = diag(f(1 − f)) W_f, ∂g = diag(1 − g²) W_g, ∂o = diag(o(1 − o)) W_o
          ∂c_t = diag(c_{t-1}) ∂f + diag(g) ∂i + diag(i) ∂g
          ∂h_t = diag(tanh c_t) ∂o + diag(o (1 − tanh² c_t)) ∂c_t
          through time the state Jacobian is [[∂h/∂h, ∂h/∂c], [∂c/∂h, diag(f)]] with
          ∂h/∂c_{t-1} = diag(o (1 − tanh² c_t) f)
    LSTMP (proj_size P, h_t = W_hr m_t, m_t = o ⊙ tanh c_t): the h rows are W_hr times the
          unprojected ones — ∂h_t = W_hr ∂m_t, ∂h/∂c_{t-1} = W_hr diag(o (1 − tanh² c_t) f)
          (P × H) — and the state [h_t; c_t] has P + H entries

Every function returns one matrix per batch element; :func:`block_norms` reads one step
Jacobian as its paths (:data:`PATHS`: the LSTM's h and c blocks, the GRU's diag(z) carry).
"""

from __future__ import annotations

import numpy as np

from rnn_dissect.bptt.recording import Recording

__all__ = ["PATHS", "STATE_PATH", "block_norms", "input_jacobian", "step_jacobian"]

# The paths through one step Jacobian, by cell, in the order :func:`block_norms` returns them:
# "a_b" is the block ∂a_t/∂b_(t−1); s = the whole state ([h; c] for an LSTM).
PATHS = {
    "rnn": ("h_h",),
    "gru": ("h_h_copy", "h_h_rest", "h_h"),  # diag(z_t) + the rest = ∂h_t/∂h_(t−1)
    "lstm": ("h_h", "h_c", "c_h", "c_c", "s_s"),
}
STATE_PATH = {"rnn": "h_h", "gru": "h_h", "lstm": "s_s"}  # the whole ∂s_t/∂s_(t−1): its σ1
# is what the verdict's spectral bound averages


def step_jacobian(run: Recording, layer: int, t: int) -> np.ndarray:
    """(B, S, S): ∂s_t/∂s_{t-1} for every batch element (S = H; 2H for LSTM, [h; c]; P + H
    for a projected LSTM: ``run.state_size``)."""
    return _jacobian(run, layer, t, through_time=True)


def input_jacobian(run: Recording, layer: int, t: int) -> np.ndarray:
    """(B, S, in): ∂s_t/∂x_t for a layer ≥ 1, whose input x_t is h_t of the layer below."""
    if layer == 0:
        raise ValueError("layer 0 reads the input characters, not a layer below")
    return _jacobian(run, layer, t, through_time=False)


def _jacobian(run: Recording, layer: int, t: int, through_time: bool) -> np.ndarray:
    H = run.hidden_size
    p = run.layers[layer]
    W = (p.W_hh if through_time else p.W_ih).value  # (G·H, in): in = h's size through time
    blk = [W[k * H : (k + 1) * H][None] for k in range(W.shape[0] // H)]  # (1, H, in) each

    def v(name: str) -> np.ndarray:
        return run.node(t, layer, name).value[:, :, None]  # (B, H, 1): diag(·) @

    eye = np.eye(H)[None]  # (1, H, H)
    if run.cell == "rnn":
        h = v("h")
        d = (h > 0).astype(h.dtype) if run.node(t, layer, "h").op == "relu" else 1 - h**2
        return d * blk[0]  # (B, H, in)
    if run.cell == "gru":
        r, z, n, gh_n = v("r"), v("z"), v("n"), v("gh_n")
        h_prev = run.h(layer, t - 1).value[:, :, None]  # (B, H, 1)
        dr, dz = r * (1 - r) * blk[0], z * (1 - z) * blk[1]  # (B, H, in) each
        if through_time:
            dn = (1 - n**2) * (gh_n * dr + r * blk[2])
            return (1 - z) * dn + (h_prev - n) * dz + z * eye  # (B, H, H)
        dn = (1 - n**2) * (blk[2] + gh_n * dr)
        return (1 - z) * dn + (h_prev - n) * dz  # (B, H, in)
    i, f, g, o, tc = v("i"), v("f"), v("g"), v("o"), v("tanh_c")
    c_prev = run.c(layer, t - 1).value[:, :, None]  # (B, H, 1)
    di, df = i * (1 - i) * blk[0], f * (1 - f) * blk[1]  # (B, H, in) each
    dg, do = (1 - g**2) * blk[2], o * (1 - o) * blk[3]
    dc = c_prev * df + g * di + i * dg  # ∂c_t/∂(h_{t-1} or x_t)
    dm = tc * do + o * (1 - tc**2) * dc  # ∂(o ⊙ tanh c_t)/∂(h_{t-1} or x_t)
    W_hr = None if p.W_hr is None else p.W_hr.value  # (P, H): h_t = W_hr m_t
    dh = dm if W_hr is None else np.matmul(W_hr, dm)  # (B, P, in)
    if not through_time:
        return np.concatenate([dh, dc], axis=1)  # (B, P + H, in)
    dm_dc = o * (1 - tc**2) * f  # (B, H, 1): ∂m_t/∂c_{t-1} = diag(·)
    dh_dc = dm_dc * eye if W_hr is None else W_hr[None] * dm_dc.transpose(0, 2, 1)  # (B, P, H)
    top = np.concatenate([dh, dh_dc], axis=2)  # (B, P, P + H)
    bottom = np.concatenate([dc, f * eye], axis=2)  # (B, H, P + H)
    return np.concatenate([top, bottom], axis=1)  # (B, P + H, P + H)


def block_norms(
    J: np.ndarray,
    cell: str,
    H: int,
    *,
    z: np.ndarray | None = None,
    sigma_hh: float | None = None,
    sigma_state: float | None = None,
    proj: bool = False,
) -> dict[str, float]:
    """Path id (:data:`PATHS`) → the spectral norm ‖·‖₂ of that block of one step Jacobian
    J (S, S); the ids are data, a renderer gives them their labels:

    LSTM  h_h ∂h_t/∂h_(t−1), h_c ∂h_t/∂c_(t−1), c_h ∂c_t/∂h_(t−1), c_c ∂c_t/∂c_(t−1) = diag(f_t),
          s_s ∂s_t/∂s_(t−1) with s = [h; c] (2H × 2H)
    GRU   h_h_copy diag(z_t) (h_(t−1) copied through), h_h_rest = h_h − diag(z_t) (through r,
          z, n and W_hh), h_h their sum
    RNN   h_h

    ``H``: the size of h (the first block's rows; P for a projected LSTM, whose h_c block
    W_hr diag(·) is not diagonal: ``proj=True`` takes its σ1). ``z`` (H,): the GRU's update gate at t. ``sigma_hh`` = ‖J[:H, :H]‖₂ and ``sigma_state``
    = ‖J‖₂ (LSTM): σ1 of the spectra the caller already has (:func:`rnn_dissect.bptt.gradflow.flow`
    computes them for the verdict); given, they are not recomputed. A diagonal block's norm is
    its largest |entry| (O(H)).

    Cost with both given: one H × H singular-value computation (LSTM c_h, GRU h_h_rest), none
    for an RNN; each one missing adds its SVD (H × H, or 2H × 2H for ``sigma_state``).
    """
    hh = _sigma1(J[:H, :H]) if sigma_hh is None else float(sigma_hh)
    if cell == "lstm":
        return {
            "h_h": hh,
            "h_c": _sigma1(J[:H, H:]) if proj else float(np.abs(np.diag(J[:H, H:])).max()),
            "c_h": _sigma1(J[H:, :H]),
            "c_c": float(np.abs(np.diag(J[H:, H:])).max()),
            "s_s": _sigma1(J) if sigma_state is None else float(sigma_state),
        }
    if cell == "gru":
        if z is None:
            raise ValueError("the GRU's block norms need z_t")
        return {
            "h_h_copy": float(np.abs(z).max()),
            "h_h_rest": _sigma1(J - np.diag(z)),
            "h_h": hh,
        }
    return {"h_h": hh}


def _sigma1(m: np.ndarray) -> float:
    """The largest singular value (singular values only, no vectors)."""
    return float(np.linalg.svd(m, compute_uv=False)[0])
