"""The recurrence's two memory layouts, measured on this CPU (issue 17, docs/notes/issue-17-speed-3.md).

    python bench/bench_layout.py [--rounds 15]

The training kernels keep states batch-major, ``Hs (T+1, B, H)``: step t's slice is one
contiguous (B, H) block. The alternative is feature-major, ``Hs (H, T+1, B)``: the per-step
product becomes ``W (G·H, H) @ h (H, B)`` and a step's slice is H rows of B floats, far apart.
Two measurements, each layout alternating with the other in the same rounds (paired ratios,
so a host that drifts in speed cancels out):

1. the T per-step GEMMs of a forward pass (G = 1 RNN, G = 4 LSTM): feature-major's gain;
2. the same elementwise pass over each step's slice (the RNN backward's
   ``da = (da + g) ⊙ (1 − h²)``, numpy) read from memory: what feature-major's strided slices cost;
3. the hybrid that keeps batch-major storage and runs only the GEMM feature-major (LSTM shape):
   h_{t-1} transposed into a (H, B) scratch, ``W @ hᵀ``, the (G·H, B) result transposed back —
   the GEMM's gain against the two in-cache transposes it needs per step;
4. the layout with every step's slice contiguous and transposed, ``(T, F, B)`` (no strided
   slices, feature-major GEMMs): its weight gradient ``dW_hh = Σ_t dÃ_t h_{t-1}ᵀ`` is no longer
   one GEMM over T·B rows — T GEMMs of inner size B, or chunks transposed back first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_header import print_header

H, B, T = 512, 64, 100


def paired(a, b, rounds: int) -> tuple[float, float, float, float, float]:
    """Alternate a() and b(); (median ms of a, of b, median / min / max of a/b per round)."""
    a(), b()
    ta, tb = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    r = np.array(ta) / np.array(tb)
    return 1e3 * np.median(ta), 1e3 * np.median(tb), np.median(r), r.min(), r.max()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    print_header()
    rng = np.random.default_rng(0)
    print(f"\nH {H}, batch {B}, {T} steps, float32; ratio = batch-major time / feature-major time")
    for G, cell in ((1, "RNN"), (4, "LSTM")):
        W = (rng.standard_normal((G * H, H)) / np.sqrt(H)).astype(np.float32)
        WT = np.ascontiguousarray(W.T)
        hb = rng.standard_normal((T + 1, B, H)).astype(np.float32)
        hf = np.ascontiguousarray(hb.transpose(2, 0, 1))  # (H, T+1, B)
        ab, af = np.empty((B, G * H), np.float32), np.empty((G * H, B), np.float32)

        def bm(hb=hb, WT=WT, ab=ab):
            for t in range(T):
                np.matmul(hb[t], WT, out=ab)

        def fm(hf=hf, W=W, af=af):
            for t in range(T):
                np.matmul(W, hf[:, t], out=af)

        mb, mf, r, lo, hi = paired(bm, fm, args.rounds)
        print(
            f"1. {cell:4s} per-step GEMMs: batch-major {mb:7.1f} ms, feature-major {mf:7.1f} ms; "
            f"ratio {r:.3f} (rounds {lo:.3f}–{hi:.3f})"
        )
    dab = rng.standard_normal((T, B, H)).astype(np.float32)
    hsb = rng.uniform(-1, 1, (T + 1, B, H)).astype(np.float32)
    daf, hsf = (
        np.ascontiguousarray(dab.transpose(2, 0, 1)),
        np.ascontiguousarray(hsb.transpose(2, 0, 1)),
    )
    gb, gf = np.ones((B, H), np.float32), np.ones((H, B), np.float32)
    tmp_b, tmp_f = np.empty((B, H), np.float32), np.empty((H, B), np.float32)
    junk = np.empty(64 << 20, np.uint8)  # evicts the caches between rounds: slices come from memory

    def step(da, g, h, tmp):
        np.add(da, g, out=da)
        np.multiply(h, h, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        np.multiply(da, tmp, out=da)

    def pb():
        junk.fill(1)
        for t in reversed(range(T)):
            step(dab[t], gb, hsb[t + 1], tmp_b)

    def pf():
        junk.fill(1)
        for t in reversed(range(T)):
            step(daf[:, t], gf, hsf[:, t + 1], tmp_f)

    mb, mf, r, lo, hi = paired(pb, pf, args.rounds)
    print(
        f"2. RNN backward pass over {T} step slices (with a 64 MB cache flush each): batch-major "
        f"{mb:6.1f} ms, feature-major {mf:6.1f} ms; ratio {r:.3f} (rounds {lo:.3f}–{hi:.3f})"
    )

    G = 4  # the LSTM, whose per-step GEMMs gain most
    W = (rng.standard_normal((G * H, H)) / np.sqrt(H)).astype(np.float32)
    WT = np.ascontiguousarray(W.T)
    hb = rng.standard_normal((T + 1, B, H)).astype(np.float32)
    a, aT, hT = (np.empty(s, np.float32) for s in ((B, G * H), (G * H, B), (H, B)))

    def bm3():
        for t in range(T):
            np.matmul(hb[t], WT, out=a)

    def hybrid():
        for t in range(T):
            np.copyto(hT, hb[t].T)
            np.matmul(W, hT, out=aT)
            np.copyto(a, aT.T)

    mb, mh, r, lo, hi = paired(bm3, hybrid, args.rounds)
    print(
        f"3. LSTM per-step GEMMs, batch-major {mb:6.1f} ms; feature-major GEMM with the step's two "
        f"transposes {mh:6.1f} ms; ratio {r:.3f} (rounds {lo:.3f}–{hi:.3f})"
    )
    du = rng.standard_normal((T, B, G * H)).astype(np.float32)
    duF = np.ascontiguousarray(du.transpose(0, 2, 1))  # (T, G·H, B)
    hF = np.ascontiguousarray(hb.transpose(0, 2, 1))  # (T+1, H, B)
    dW, part = np.empty((G * H, H), np.float32), np.empty((G * H, H), np.float32)
    D, X = du.reshape(T * B, G * H), hb[:T].reshape(T * B, H)
    C = 10  # steps per chunk
    buf = np.empty((C, B, G * H), np.float32)

    def one():
        np.matmul(D.T, X, out=dW)

    def per_step():
        np.matmul(duF[0], hF[0].T, out=dW)
        for t in range(1, T):
            np.matmul(duF[t], hF[t].T, out=part)
            dW.__iadd__(part)

    def chunks():
        for c in range(0, T, C):
            np.copyto(buf, duF[c : c + C].transpose(0, 2, 1))
            np.matmul(buf.reshape(C * B, G * H).T, X[c * B : (c + C) * B], out=part if c else dW)
            if c:
                dW.__iadd__(part)

    m1, mp, r, lo, hi = paired(one, per_step, args.rounds)
    _, mc, rc, loc, hic = paired(one, chunks, args.rounds)
    print(
        f"4. LSTM dW_hh: one GEMM over T·B rows {m1:6.1f} ms; (T, F, B) layout: T GEMMs of inner "
        f"size B {mp:6.1f} ms, ratio {r:.3f} ({lo:.3f}–{hi:.3f}); {C}-step chunks transposed back "
        f"{mc:6.1f} ms, ratio {rc:.3f} ({loc:.3f}–{hic:.3f})"
    )


if __name__ == "__main__":
    main()
