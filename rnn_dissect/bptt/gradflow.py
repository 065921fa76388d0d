"""How gradients flow backwards through time (question 1): step Jacobians, lag matrix, verdict.

The state Jacobian of one step, from the values the forward pass recorded (batch element b):

    RNN   ∂h_t/∂h_{t-1} = diag(1 − h_t²) W_hh                (relu: diag(1[h_t > 0]) W_hh)
    GRU   ∂h_t/∂h_{t-1} = diag(1 − z) ∂n + diag(h_{t-1} − n) ∂z + diag(z)
          ∂r = diag(r(1 − r)) W_hr   ∂z = diag(z(1 − z)) W_hz
          ∂n = diag(1 − n²) (diag(W_hn h_{t-1} + b_hn) ∂r + diag(r) W_hn)
    LSTM  state s_t = [h_t; c_t] (2H), J = [[∂h/∂h, ∂h/∂c], [∂c/∂h, diag(f)]]
          ∂c/∂h_{t-1} = diag(c_{t-1}) ∂f + diag(g) ∂i + diag(i) ∂g
          ∂h/∂h_{t-1} = diag(tanh c_t) ∂o + diag(o (1 − tanh² c_t)) ∂c/∂h_{t-1}
          ∂h/∂c_{t-1} = diag(o (1 − tanh² c_t) f)
          ∂i = diag(i(1 − i)) W_hi, ∂f = diag(f(1 − f)) W_hf, ∂g = diag(1 − g²) W_hg, ∂o = diag(o(1 − o)) W_ho

The lag matrix (last layer): with L = Σ_{t'} L_{t'}, L_{t'} the term of the loss read at t'
(L̄_{t'}/T for many-to-many), lag[t'][t] = ‖∂L_{t'}/∂h_t‖ for t ≤ t'. Every t' is carried
back at once as a batch of row vectors, v_{t-1} = v_t J_t, O(T²·B·S²) in all (``max_lag``
caps it at O(T·max_lag·B·S²)). With truncation no gradient crosses a cut, and neither does
the lag. Σ_{t'} ∂L_{t'}/∂h_t = dL/dh_t, and lag[t][t] = ‖dh_direct_t‖.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnn_dissect.bptt.unroll import Recording

__all__ = ["Flow", "LayerFlow", "Verdict", "flow", "lag_matrix", "step_jacobian", "verdict"]

FALL = 1e-3  # "reach": the lag at which ‖∂L_T/∂h_t‖, going back past its largest value,
# first falls below FALL × that value
BAND = 0.05  # per-step factor within 1 ± BAND counts as stable


def step_jacobian(run: Recording, layer: int, t: int) -> np.ndarray:
    """(B, S, S): ∂s_t/∂s_{t-1} for every batch element (S = H; 2H for LSTM, [h; c])."""
    H = run.hidden_size
    W = run.layers[layer].W_hh.value  # (G·H, H)
    blk = [W[k * H : (k + 1) * H][None] for k in range(W.shape[0] // H)]  # (1, H, H) each

    def v(name: str) -> np.ndarray:
        return run.graph[f"t{t}.l{layer}.{name}"].value[:, :, None]  # (B, H, 1): diag(·) @

    eye = np.eye(H)[None]
    if run.cell == "rnn":
        h_node = run.graph[f"t{t}.l{layer}.h"]
        h = v("h")
        d = (h > 0).astype(h.dtype) if h_node.op == "relu" else 1.0 - h**2
        return d * blk[0]
    if run.cell == "gru":
        r, z, n, gh_n = v("r"), v("z"), v("n"), v("gh_n")
        h_prev = run.h(layer, t - 1).value[:, :, None]
        dr, dz = r * (1 - r) * blk[0], z * (1 - z) * blk[1]
        dn = (1 - n**2) * (gh_n * dr + r * blk[2])
        return (1 - z) * dn + (h_prev - n) * dz + z * eye
    i, f, g, o, tc = v("i"), v("f"), v("g"), v("o"), v("tanh_c")
    c_prev = run.c(layer, t - 1).value[:, :, None]
    di, df = i * (1 - i) * blk[0], f * (1 - f) * blk[1]
    dg, do = (1 - g**2) * blk[2], o * (1 - o) * blk[3]
    dc_dh = c_prev * df + g * di + i * dg
    dh_dh = tc * do + o * (1 - tc**2) * dc_dh
    dh_dc = o * (1 - tc**2) * f * eye
    top = np.concatenate([dh_dh, dh_dc], axis=2)  # (B, H, 2H)
    bottom = np.concatenate([dc_dh, f * eye], axis=2)
    return np.concatenate([top, bottom], axis=1)  # (B, 2H, 2H)


def lag_matrix(
    run: Recording, max_lag: int | None = None, direct: dict[int, np.ndarray] | None = None
) -> np.ndarray:
    """(T, T): [t' − 1][t − 1] = ‖∂L_{t'}/∂h_t‖ (last layer), 0 for t > t', NaN beyond
    ``max_lag`` (t' − t ≥ max_lag). Starts from ∂L_{t'}/∂h_{t'}, the head's part of
    dL/dh_{t'}: ``direct[t']`` (B, H) if given, else ``edge_grad`` after backward."""
    T, k = run.T, run.num_layers - 1
    H = run.hidden_size
    lag = np.zeros((T, T))
    if max_lag is not None:
        lag[np.subtract.outer(np.arange(T), np.arange(T)) >= max_lag] = np.nan
    rows: list[int] = []  # t' of each carried vector
    vec = np.zeros((0, 0, 0))  # (N, B, S)
    for s in range(T, 0, -1):
        if s in run.step_losses:
            if direct is not None:
                d_s = direct[s]  # (B, H): ∂L_s/∂h_s
            else:
                reader = run.direct_reader(k, s)
                d_s = (
                    np.zeros((run.B, H))
                    if reader is None
                    else run.graph.edge_grad(reader, run.h(k, s))
                )
            new = np.zeros((1, run.B, H * (2 if run.cell == "lstm" else 1)))
            new[0, :, :H] = d_s
            vec = new if not rows else np.concatenate([vec, new])
            rows.append(s)
        if not rows:
            continue
        norms = np.sqrt(np.einsum("nbi,nbi->n", vec[:, :, :H], vec[:, :, :H]))  # (N,)
        lag[np.array(rows) - 1, s - 1] = norms
        if max_lag is not None:  # the next step is one lag further back
            keep = [i for i, tp in enumerate(rows) if tp - (s - 1) < max_lag]
            rows, vec = [rows[i] for i in keep], vec[keep]
        if (s - 1, k) in run.cuts or s == 1 or not rows:
            rows, vec = [], np.zeros((0, 0, 0))  # a truncation cut: nothing flows further
            continue
        J = step_jacobian(run, k, s)  # (B, S, S)
        vec = np.matmul(vec.transpose(1, 0, 2), J).transpose(1, 0, 2)  # v_{s-1} = v_s J_s
    return lag


@dataclass
class Verdict:
    """Vanishing, stable or exploding, with the evidence in numbers and in words."""

    label: str  # "vanishing" | "stable" | "exploding" | "too short"
    reason: str
    spectral_geomean: float | None  # geometric mean over t of σ_max(∂s_t/∂s_{t-1})
    decay_per_step: float | None  # (‖∂L_T/∂h_t0‖ / ‖∂L_T/∂h_T‖)^(1/(T − t0)), measured
    reach: int | None  # lag at which ‖∂L_T/∂h_t‖ < FALL·max (None: never, as far as looked)
    looked_back: int  # how many lags the measurement covers


@dataclass
class LayerFlow:
    layer: int
    jacobians: list[np.ndarray] | None  # t = 1..T: ∂h_t/∂h_{t-1} (H, H), batch element 0
    singular_values: np.ndarray | None  # (T, H) of those
    state_singular_values: np.ndarray | None  # LSTM: (T, 2H) of ∂[h;c]_t/∂[h;c]_{t-1}
    verdict: Verdict


@dataclass
class Flow:
    lag: np.ndarray | None  # (T, T) for the last layer
    max_lag: int | None
    layers: list[LayerFlow]


def flow(
    run: Recording,
    *,
    lag: bool = True,
    max_lag: int | None = None,
    jacobians: bool = True,
    keep_jacobians: bool = False,
    direct: dict[int, np.ndarray] | None = None,
) -> Flow:
    """Jacobian spectra and a verdict per layer; the lag matrix for the last layer.

    Costs: lag O(T·min(T, max_lag)·B·S²); jacobians one S×S SVD per step and layer.
    """
    L, T = run.num_layers, run.T
    lag_m = lag_matrix(run, max_lag, direct) if lag else None
    layers = []
    for k in range(L):
        jac, sv, ssv = None, None, None
        if jacobians:
            mats = [step_jacobian(run, k, t)[0] for t in range(1, T + 1)]  # (S, S) each
            H = run.hidden_size
            sv = np.stack([np.linalg.svd(m[:H, :H], compute_uv=False) for m in mats])  # (T, H)
            if run.cell == "lstm":
                ssv = np.stack([np.linalg.svd(m, compute_uv=False) for m in mats])  # (T, 2H)
            jac = [m[:H, :H].copy() for m in mats] if keep_jacobians else None
        carrier = ssv if ssv is not None else sv
        row = lag_m[T - 1] if (lag_m is not None and k == L - 1) else None
        layers.append(LayerFlow(k, jac, sv, ssv, verdict(run, carrier, row)))
    return Flow(lag_m, max_lag, layers)


def verdict(run: Recording, sv: np.ndarray | None, row: np.ndarray | None) -> Verdict:
    """Read the evidence: the measured decay of ‖∂L_T/∂h_t‖ (``row``, last layer) when
    available, else the spectral bound ‖∂s_t/∂s_{t-ℓ}‖ ≤ Π σ_max ≈ ρ^ℓ."""
    T = run.T
    rho = None
    if sv is not None:
        with np.errstate(divide="ignore"):
            rho = float(np.exp(np.mean(np.log(sv[:, 0]))))
    cut = (
        f" (truncated BPTT: no gradient crosses the cut every {run.truncate} steps)"
        if run.truncate
        else ""
    )
    if T < 2:
        return Verdict(
            "too short", "one step: there is no earlier step to flow back to", rho, None, None, 0
        )
    rho_txt = (
        ""
        if rho is None
        else f"the step Jacobians' largest singular values average ×{rho:.3g} (geometric mean)"
    )
    if row is not None:
        ok = np.isfinite(row) & (row > 0)
        t0 = int(np.argmax(ok)) + 1  # earliest t with a measured, non-zero gradient
        r = row[t0 - 1 :]  # t = t0..T
        if t0 >= T or not ok[T - 1]:
            return Verdict(
                "too short", f"L_T's gradient reaches no earlier step{cut}", rho, None, None, 0
            )
        span = T - t0
        gamma = float((r[0] / r[-1]) ** (1.0 / span))
        back = r[::-1]  # by lag ℓ = T − t, t ≥ t0
        top = int(np.argmax(back))  # falling below means: further back than the peak
        below = np.nonzero(back[top:] < FALL * back[top])[0]
        reach = top + int(below[0]) if below.size else None
        label = _label(gamma)
        how = {"vanishing": "shrinks", "exploding": "grows", "stable": "changes"}[label]
        where = (
            f"falls below {FALL:g} of its largest value {reach} steps back"
            if reach is not None
            else f"never falls below {FALL:g} of its largest value in the {span} steps back to t={t0}"
        )
        reason = (
            f"{label}: going back from the last step, ‖∂L_T/∂h_t‖ {how} ×{gamma:.3g} per step "
            f"(geometric mean over {span} steps) and {where}"
            + (f"; {rho_txt}" if rho_txt else "")
            + cut
        )
        return Verdict(label, reason, rho, gamma, reach, span)
    if rho is None:
        return Verdict(
            "too short",
            "neither the lag matrix nor the Jacobians were computed",
            None,
            None,
            None,
            0,
        )
    label = _label(rho)
    reason = (
        f"{label} (bound only): {rho_txt}, so ‖∂h_t/∂h_(t−ℓ)‖ ≤ about {rho:.3g}^ℓ"
        + ("; a bound above 1 allows growth but does not prove it" if rho > 1 else "")
        + cut
    )
    return Verdict(label, reason, rho, None, None, T - 1)


def _label(factor: float) -> str:
    if not math.isfinite(factor) or factor > 1 + BAND:
        return "exploding"
    return "vanishing" if factor < 1 - BAND else "stable"
