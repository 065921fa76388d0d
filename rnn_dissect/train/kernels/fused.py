"""Compiled per-step elementwise passes for the float32 training kernels (numba).

A numpy step of a cell is a dozen or more ufunc calls on (B, H)-sized slices, each a pass
over its operands with its own call overhead; for a GRU at H 512 they cost as much as the
step's GEMM. Here each cell's step is one compiled loop over the batch rows that reads
every operand once and writes exactly the arrays the numpy code writes (same layout, same
meaning), so the two paths mix freely and are tested against each other. Measured at
H 512, batch 64, alternating the two paths in one process (Intel Xeon, 2 cores, 2026-12-01):
GRU and LSTM training steps 7–25% faster, RNN ~12% (the GEMMs are untouched); against torch, run
``bench/bench_train_step.py --part 2`` with and without ``RNN_DISSECT_FUSED=0``.
Whether the kernels use them is the caller's choice
(:class:`~rnn_dissect.train.kernels.backend.Backend` ``fused``).

Used for float32 only; float64 (dissection, the exactness tests) always runs numpy. tanh
is the [13/12] Padé approximant of Lambert's continued fraction, evaluated in float32 with
the input clamped to ±9 (tanh(9) rounds to 1) — max error ~6 ulp over the float32 line
against numpy's ~1.4 (tested) — because libm's scalar ``tanhf`` does not vectorize. NaN
passes through (the fast-math flags keep NaN semantics: training's NaN-loss stop sees it).

``AVAILABLE`` says whether numba imported; without it only the numpy passes exist.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

try:  # numba is a dependency; a broken or missing install falls back to numpy
    import numba

    AVAILABLE = True
except Exception:  # pragma: no cover - depends on the install
    AVAILABLE = False

__all__ = ["AVAILABLE", "tanh", "whole"]

CLAMP = 9.0


def pade_tanh(n: int) -> tuple[list[float], list[float]]:
    """Coefficients (ascending powers of s = x²) of tanh x ≈ x·P(s)/Q(s), the n-th
    convergent of Lambert's continued fraction x/(1 + s/(3 + s/(5 + …))), Q(0) = 1."""
    num, den = [Fraction(1)], [Fraction(2 * n + 1)]  # t_n = 2n + 1 = den/num
    for k in range(n - 1, -1, -1):  # t_k = (2k+1) + s/t_{k+1}
        nxt = [Fraction(0)] * max(len(den), len(num) + 1)
        for i, c in enumerate(den):
            nxt[i] += (2 * k + 1) * c
        for i, c in enumerate(num):
            nxt[i + 1] += c
        num, den = den, nxt
    q0 = den[0]
    return [float(c / q0) for c in num], [float(c / q0) for c in den]


def whole(Hs: np.ndarray) -> np.ndarray:
    """The C-contiguous (T+1, B, W ≥ H) buffer that the hidden states ``Hs`` (T+1, B, H)
    are the first H columns of (layer 0 keeps onehot(x_t) beside h_{t-1}). Compiled loops
    vectorize only over C-contiguous rows, so they get this and touch columns < H only."""
    if Hs.flags.c_contiguous:
        return Hs
    base = Hs.base
    if (
        isinstance(base, np.ndarray)
        and base.flags.c_contiguous
        and base.shape[:2] == Hs.shape[:2]
        and base.strides[:2] == Hs.strides[:2]
        and base.ctypes.data == Hs.ctypes.data
    ):
        return base
    raise ValueError("hidden states must be C-contiguous or the leading columns of a buffer")


P, Q = pade_tanh(12)  # 7 and 7 coefficients

if AVAILABLE:
    FLAGS = {"contract", "afn", "arcp", "nsz"}  # no nnan/ninf: NaN must survive
    jit = numba.njit(cache=True, fastmath=FLAGS, error_model="numpy", nogil=True)
    f32 = np.float32
    P0, P1, P2, P3, P4, P5, P6 = (f32(c) for c in P)
    Q0, Q1, Q2, Q3, Q4, Q5, Q6 = (f32(c) for c in Q)
    LO, HI, HALF, ONE = f32(-CLAMP), f32(CLAMP), f32(0.5), f32(1.0)

    @numba.njit(inline="always", fastmath=FLAGS, error_model="numpy")
    def _tanh(x):
        y = min(max(x, LO), HI)
        s = y * y
        p = (((((P6 * s + P5) * s + P4) * s + P3) * s + P2) * s + P1) * s + P0
        q = (((((Q6 * s + Q5) * s + Q4) * s + Q3) * s + Q2) * s + Q1) * s + Q0
        t = min(max(y * p / q, -ONE), ONE)
        return t if x == x else x  # NaN in, NaN out

    @jit
    def _tanh_array(x, out):
        xf, of = x.ravel(), out.ravel()
        for k in range(xf.size):
            of[k] = _tanh(xf[k])

    @jit
    def rnn_forward_step(a, xt, xi, h):
        """h = tanh(a + x); a = h_{t-1} @ W_hhᵀ, x = the input projection: row ``xi[b]`` of
        ``xt`` for batch row b (see :meth:`~rnn_dissect.train.kernels.workspace.XW.rows`)."""
        B, H = a.shape
        for b in range(B):
            ab, xb, hb = a[b], xt[xi[b]], h[b]
            for j in range(H):
                hb[j] = _tanh(ab[j] + xb[j])

    @jit
    def rnn_backward_step(da, g, h, has_next):
        """da ← (da + g) ⊙ (1 − h²) in place (g = dÃ_{t+1} @ W_hh, unless the last step).
        Hidden-state arguments (``h``, ``h_prev``) here and below may be wider than H."""
        B, H = da.shape
        for b in range(B):
            for j in range(H):
                d = da[b, j] + g[b, j] if has_next else da[b, j]
                da[b, j] = d * (ONE - h[b, j] * h[b, j])

    @jit
    def lstm_forward_step(a, u, xt, xi, c_prev, tc, c, h):
        """a holds h_{t-1} @ W_hhᵀ (rows i, f, o scaled by ½, g); u = tanh(a + x) (x: row
        ``xi[b]`` of ``xt``; ``a`` may be ``u``); σ = ½u + ½ in registers (never stored: the backward
        step derives it from u again), c = f c_prev + i g, tanh c, h = o tanh c (see
        ``kernels.lstm``). Compiled serially, ``prange`` is ``range``; the rows are
        independent, so ``bench/bench_pass_threads.py`` compiles this same loop parallel."""
        B, H = c.shape
        for b in numba.prange(B):
            ab, ub, xb, cb, tcb, hb, cpb = a[b], u[b], xt[xi[b]], c[b], tc[b], h[b], c_prev[b]
            for j in range(4 * H):
                ub[j] = _tanh(ab[j] + xb[j])
            for j in range(H):
                i = HALF * ub[j] + HALF
                f = HALF * ub[H + j] + HALF
                cb[j] = f * cpb[j] + i * ub[3 * H + j]
            for j in range(H):
                tcb[j] = _tanh(cb[j])
            for j in range(H):
                hb[j] = (HALF * ub[2 * H + j] + HALF) * tcb[j]

    @jit
    def lstm_backward_step(dh, g, has_next, dc, u, tc, c_prev, d):
        """One step of LSTM BPTT: dh += g; dc += dh o (1 − tanh²c); d = dÃ (rows i, f, o, g);
        dc ← dc ⊙ f for the step before (see ``kernels.lstm``); σ gates from u (σ = ½u + ½).
        Short loops over row views, so each vectorizes (one loop writing many arrays does not)."""
        B, H = dh.shape
        for b in range(B):
            dhb, dcb, ub, tcb, db, cpb = dh[b], dc[b], u[b], tc[b], d[b], c_prev[b]
            if has_next:
                gb = g[b]
                for j in range(H):
                    dhb[j] += gb[j]
            for j in range(H):
                o = HALF * ub[2 * H + j] + HALF
                dcb[j] += dhb[j] * o * (ONE - tcb[j] * tcb[j])
            for j in range(H):
                db[j] = dcb[j] * ub[3 * H + j] * (ONE - ub[j] * ub[j])
            for j in range(H):
                db[H + j] = dcb[j] * cpb[j] * (ONE - ub[H + j] * ub[H + j])
            for j in range(H):
                db[2 * H + j] = dhb[j] * tcb[j] * (ONE - ub[2 * H + j] * ub[2 * H + j])
            for j in range(H):
                i = HALF * ub[j] + HALF
                db[3 * H + j] = dcb[j] * i * (ONE - ub[3 * H + j] * ub[3 * H + j])
            for j in range(H):
                dcb[j] *= HALF * ub[H + j] + HALF

    @jit
    def gru_forward_step(hw, xt, xi, b_hn, h_prev, u, sg, hn, h):
        """hw = h_{t-1} @ W_hhᵀ (r, z scaled), gi = row ``xi[b]`` of ``xt``; writes u, σ
        gates, gh_n, h (see ``kernels.gru``)."""
        B, H = hn.shape
        for b in range(B):
            x = xt[xi[b]]
            for j in range(2 * H):
                uv = _tanh(x[j] + hw[b, j])
                u[b, j] = uv
                sg[b, j] = HALF * uv + HALF
            for j in range(H):
                hnv = hw[b, 2 * H + j] + b_hn[j]
                hn[b, j] = hnv
                n = _tanh(x[2 * H + j] + sg[b, j] * hnv)
                u[b, 2 * H + j] = n
                h[b, j] = n + sg[b, H + j] * (h_prev[b, j] - n)

    @jit
    def gru_backward_step(dh, u, sg, hn, h_prev, d, an, dhz):
        """dh complete → d = [dÃ_r, dÃ_z, dgh_n], an = dgi_n, dhz = dh ⊙ z. Short loops
        over row views, so each vectorizes."""
        B, H = dh.shape
        for b in range(B):
            dhb, ub, sgb, hnb, hpb = dh[b], u[b], sg[b], hn[b], h_prev[b]
            db, anb, dhzb = d[b], an[b], dhz[b]
            for j in range(H):
                n = ub[2 * H + j]
                anb[j] = (ONE - n * n) * (dhb[j] - dhb[j] * sgb[H + j])
            for j in range(H):
                db[2 * H + j] = anb[j] * sgb[j]
            for j in range(H):
                db[j] = anb[j] * hnb[j] * (ONE - ub[j] * ub[j])
            for j in range(H):
                db[H + j] = (hpb[j] - ub[2 * H + j]) * dhb[j] * (ONE - ub[H + j] * ub[H + j])
            for j in range(H):
                dhzb[j] = dhb[j] * sgb[H + j]

    @jit
    def onehot_grad(d, idx, out):
        """out[v] += Σ_{r: idx[r] = v} d[r] for d (N, n), idx (N,), out (V, n): outᵀ is
        dᵀ @ onehot(idx), the one-hot layer's weight gradient, without its N·V·n FLOPs."""
        N, n = d.shape
        for r in range(N):
            o, dr = out[idx[r]], d[r]
            for j in range(n):
                o[j] += dr[j]

    @jit
    def adam_update(p, g, m, v, one_b1, b2, one_b2, eps, wd, step_size, bc2_sqrt):
        """``torch.optim.Adam`` on one flat float32 parameter, one pass (all 1-D, in place):

            g' = g + wd·p    m ← m + (1 − β₁)(g' − m)    v ← β₂ v + (1 − β₂) g'²
            p ← p − step_size · m / (√v / √(1 − β₂ᵏ) + ε)        step_size = lr / (1 − β₁ᵏ)

        the same operations, in the same order, as :class:`rnn_dissect.optim.Adam`'s numpy
        passes (which read and write the whole state a dozen times per step). ``one_b1`` =
        1 − β₁ and ``one_b2`` = 1 − β₂ are rounded to float32 from float64, as torch does."""
        for i in range(p.size):
            gi = g[i] + wd * p[i]
            mi = m[i] + (gi - m[i]) * one_b1
            vi = v[i] * b2 + gi * gi * one_b2
            m[i] = mi
            v[i] = vi
            p[i] -= mi / (np.sqrt(vi) / bc2_sqrt + eps) * step_size

    @jit
    def add3(a, b, c):
        """a += b + c (2-D, same shape)."""
        R, C = a.shape
        for i in range(R):
            for j in range(C):
                a[i, j] += b[i, j] + c[i, j]


def tanh(x: np.ndarray) -> np.ndarray:
    """The compiled float32 tanh over an array (for tests and benchmarks)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    _tanh_array(x, out)
    return out
