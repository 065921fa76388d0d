"""How gradients flow backwards through time (question 1): lag matrices, spectra, verdicts.

The lag matrix of layer k: with L = Σ_{t'} L_{t'}, L_{t'} the term of the loss read at t'
(L̄_{t'}/T for many-to-many), lag^k[t'][t] = ‖∂L_{t'}/∂h^k_t‖ for t ≤ t'. Every t' is
carried back at once as a batch of row vectors v^k = ∂L_{t'}/∂s^k (s = h, or [h; c] for
LSTM), top layer first at each step (:mod:`rnn_dissect.bptt.jacobians`):

    v^{L-1}_t = v^{L-1}_{t+1} J^{L-1}_{t+1} + [∂L_t/∂h^{L-1}_t from the head]
    v^k_t     = v^k_{t+1} J^k_{t+1} + v^{k+1}_t ∂s^{k+1}_t/∂h^k_t              (k < L − 1)

with J^k_t = ∂s^k_t/∂s^k_{t-1}. O(T²·L·B·S²) in all (``max_lag`` caps it at
O(T·max_lag·L·B·S²)). With truncation no gradient crosses a cut, and neither does the lag.
Σ_{t'} ∂L_{t'}/∂h^k_t = dL/dh^k_t; for the top layer lag[t][t] = ‖dh_direct_t‖. What reaches
the last state from outside the heads (:meth:`Recording.end_seed`: a watched module's dL/dh_n,
dL/dc_n) is counted in row T, so a classifier that reads h_n has its gradient there too.

Each layer's verdict (:mod:`rnn_dissect.bptt.verdict`) reads its own lag matrix — every loss
term and every truncation chunk — and states its evidence; the spectral bound from the
step Jacobians' singular values is a separate line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_dissect.bptt.jacobians import PATHS, block_norms, input_jacobian, step_jacobian
from rnn_dissect.bptt.recording import Recording
from rnn_dissect.bptt.verdict import Verdict, verdict

__all__ = [
    "Flow",
    "LayerFlow",
    "chunks",
    "flow",
    "lag_matrices",
    "lag_matrix",
    "reachable",
    "step_jacobian",
]


def lag_matrices(
    run: Recording,
    max_lag: int | None = None,
    direct: dict[int, np.ndarray] | None = None,
    lowest: int = 0,
) -> list[np.ndarray]:
    """[k − lowest] (T, T): [t' − 1][t − 1] = ‖∂L_{t'}/∂h^k_t‖ for the layers k ≥ ``lowest``;
    0 for t > t', NaN beyond ``max_lag`` (t' − t ≥ max_lag). Starts from ∂L_{t'}/∂h_{t'},
    the head's part of dL/dh_{t'} (top layer): ``direct[t']`` (B, H) if given, else
    ``edge_grad`` after backward."""
    T, L, H, B = run.T, run.num_layers, run.h_size, run.B  # H: h's size (P if projected)
    S = run.state_size
    ks = range(lowest, L)
    lags = {k: np.zeros((T, T)) for k in ks}
    if max_lag is not None:
        far = np.subtract.outer(np.arange(T), np.arange(T)) >= max_lag
        for a in lags.values():
            a[far] = np.nan
    rows: list[int] = []  # t' of each carried vector
    vec = {k: np.zeros((0, B, S)) for k in ks}  # (N, B, S): ∂L_{t'}/∂s^k_s per carried t'
    for s in range(T, 0, -1):
        if s in run.step_losses or (s == T and run.end_seed(L - 1) is not None):
            for k in ks:
                new = np.zeros((1, B, S))
                if k == L - 1:
                    if s in run.step_losses:
                        new[0, :, :H] = _direct(run, s, direct)  # (B, H): ∂L_s/∂h_s
                    if s == T and (end := run.end_seed(k)) is not None:
                        new[0] += end  # (B, S): dL/dh_n (, dL/dc_n) belongs to the last row
                vec[k] = np.concatenate([vec[k], new])
            rows.append(s)
        if not rows:
            continue
        for k in range(L - 2, lowest - 1, -1):  # up the stack at step s: x^{k+1}_s = h^k_s
            J_in = input_jacobian(run, k + 1, s)  # (B, S, H)
            up = np.matmul(vec[k + 1].transpose(1, 0, 2), J_in).transpose(1, 0, 2)  # (N, B, H)
            vec[k][:, :, :H] += up
        at = np.array(rows) - 1
        for k in ks:
            v = vec[k][:, :, :H]  # (N, B, H)
            lags[k][at, s - 1] = np.sqrt(np.einsum("nbi,nbi->n", v, v))  # (N,)
        if max_lag is not None:  # the next step is one lag further back
            keep = [i for i, tp in enumerate(rows) if tp - (s - 1) < max_lag]
            rows = [rows[i] for i in keep]
            vec = {k: v[keep] for k, v in vec.items()}
        if s == 1 or all((s - 1, k) in run.cuts for k in range(L)):
            rows, vec = [], {k: np.zeros((0, B, S)) for k in ks}  # nothing flows further
            continue
        for k in ks:
            if (s - 1, k) in run.cuts:  # a truncation cut: no gradient back through it
                vec[k] = np.zeros_like(vec[k])
            else:  # v_{s-1} = v_s J_s
                J = step_jacobian(run, k, s)  # (B, S, S)
                vec[k] = np.matmul(vec[k].transpose(1, 0, 2), J).transpose(1, 0, 2)
    return [lags[k] for k in ks]


def lag_matrix(
    run: Recording, max_lag: int | None = None, direct: dict[int, np.ndarray] | None = None
) -> np.ndarray:
    """(T, T): the top layer's lag matrix (:func:`lag_matrices`)."""
    return lag_matrices(run, max_lag, direct, lowest=run.num_layers - 1)[0]


def _direct(run: Recording, s: int, direct: dict[int, np.ndarray] | None) -> np.ndarray:
    """(B, H): ∂L_s/∂h^{L-1}_s, the head's part."""
    if direct is not None:
        return direct[s]
    k = run.num_layers - 1
    reader = run.direct_reader(k, s)
    if reader is None:
        return np.zeros((run.B, run.h_size))
    return run.graph.edge_grad(reader, run.h(k, s))


def chunks(run: Recording, layer: int) -> np.ndarray:
    """(T,) int: the truncation chunk of each step t (index t − 1), 0 without truncation."""
    T = run.T
    cut = np.zeros(T, dtype=np.int64)
    for u, k in run.cuts:
        if k == layer and 1 <= u < T:
            cut[u] = 1  # the edge u → u + 1 is cut: step u + 1 (index u) starts a new chunk
    return np.cumsum(cut)


def reachable(run: Recording, layer: int, max_lag: int | None) -> tuple[np.ndarray, np.ndarray]:
    """((T, T) bool, (T,) int): which lag-matrix entries [t' − 1][t − 1] a gradient reaches
    from a loss term — t ≤ t', the same truncation chunk, t' − t < max_lag — and the chunk
    of each step."""
    T = run.T
    chunk = chunks(run, layer)
    tp, t = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    ok = (t <= tp) & (chunk[tp] == chunk[t])
    if max_lag is not None:
        ok &= tp - t < max_lag
    losses = np.zeros(T, dtype=bool)
    losses[[s - 1 for s in run.step_losses]] = True
    if run.end_seed(run.num_layers - 1) is not None:
        losses[T - 1] = True  # the final state's own gradient (watch: h_n, c_n) is row T's
    return ok & losses[:, None], chunk


@dataclass
class LayerFlow:
    layer: int
    lag: np.ndarray | None  # (T, T): ‖∂L_{t'}/∂h^layer_t‖ (None: not computed)
    jacobians: list[np.ndarray] | None  # t = 1..T: ∂h_t/∂h_{t-1} (H, H), batch element 0
    singular_values: np.ndarray | None  # (T, H) of those
    state_singular_values: np.ndarray | None  # LSTM: (T, 2H) of ∂[h;c]_t/∂[h;c]_{t-1} (P + H)
    verdict: Verdict
    # path id (jacobians.PATHS: "h_h", "c_c", …) → (T,) spectral norm of that block of each
    # step's Jacobian (block_norms); display labels belong to the renderer
    blocks: dict[str, np.ndarray] | None = None
    last_jacobian: np.ndarray | None = None  # (S, S): the state Jacobian at t = T, element 0


@dataclass
class Flow:
    lag: np.ndarray | None  # (T, T) for the last layer (= layers[-1].lag)
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
    """Per layer: its lag matrix, Jacobian spectra and a verdict.

    Costs: lag O(T·min(T, max_lag)·L·B·S²); jacobians, per step and layer, singular values
    (no vectors) of ∂h_t/∂h_(t−1) (H × H) and, LSTM, of the whole 2H × 2H state Jacobian,
    plus one H × H for the path norms (:func:`block_norms`: LSTM ∂c/∂h, GRU the rest; it
    reuses both σ1): RNN S³, GRU 2·S³, LSTM (1/8 + 1 + 1/8)·S³ — at most 2·T·L·S³ in all,
    what the reports' budgets (T·L·S³) scale with.
    """
    L, T, H = run.num_layers, run.T, run.h_size  # H: h's size (P for a projected LSTM)
    lags = lag_matrices(run, max_lag, direct) if lag else [None] * L
    why = "".join(
        [
            f" (truncated BPTT: no gradient crosses the cut every {run.truncate} steps)"
            if run.truncate
            else "",
            f" (max lag {max_lag}: only lags t' − t < {max_lag} measured)"
            if max_lag is not None
            else "",
        ]
    )
    layers = []
    for k in range(L):
        jac, sv, ssv, blocks, last = None, None, None, None, None
        if jacobians:
            mats = [step_jacobian(run, k, t)[0] for t in range(1, T + 1)]  # (S, S) each
            sv = np.stack([np.linalg.svd(m[:H, :H], compute_uv=False) for m in mats])  # (T, H)
            if run.cell == "lstm":
                ssv = np.stack([np.linalg.svd(m, compute_uv=False) for m in mats])  # (T, 2H)
            jac = [m[:H, :H].copy() for m in mats] if keep_jacobians else None
            zs = [run.node(t, k, "z").value[0] if run.cell == "gru" else None
                  for t in range(1, T + 1)]  # fmt: skip
            full = ssv if ssv is not None else sv  # σ1 of the whole state Jacobian
            per = [
                block_norms(
                    m,
                    run.cell,
                    H,
                    z=z,
                    sigma_hh=sv[i, 0],
                    sigma_state=full[i, 0],
                    proj=run.proj_size > 0,
                )
                for i, (m, z) in enumerate(zip(mats, zs, strict=True))
            ]
            blocks = {name: np.array([p[name] for p in per]) for name in PATHS[run.cell]}
            last = mats[-1].copy()
        # the (T, T) reach mask only matters to a measured lag matrix (T² work otherwise)
        ok, chunk = reachable(run, k, max_lag) if lag else (None, chunks(run, k))
        v = verdict(lags[k], ok, chunk, ssv if ssv is not None else sv, why, run.last_row())
        layers.append(LayerFlow(k, lags[k], jac, sv, ssv, v, blocks, last))
    return Flow(lags[-1], max_lag, layers)
