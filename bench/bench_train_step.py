"""Training throughput of the fast kernels, against baselines measured in the same run.

    python bench/bench_train_step.py            # all four parts (~3 min on 2 cores)
    python bench/bench_train_step.py --part 2 --cells lstm --rounds 5

1. min-char-rnn's configuration (vanilla RNN, hidden 100, seq 25, batch 1, Adagrad lr 0.1,
   clip 5) against a per-step numpy loop written in min-char-rnn's style, same math: both
   sum the loss over the 25 characters (as min-char-rnn does), clip every gradient entry to
   [−5, 5] (min-char-rnn's ``np.clip``; the training loop uses global-norm clipping
   instead) and use torch's Adagrad (ε = 1e-10 outside the root; min-char-rnn has
   √(s + 1e-8)). float64 on both sides, like min-char-rnn; the loss curves must agree.
2. hidden 512, seq 100, batch 64, one layer, Tiny Shakespeare's vocabulary, float32, Adam
   2e-3, global-norm clip 5, hidden state carried: our kernels against PyTorch CPU
   ``nn.RNN/LSTM/GRU`` + ``nn.Linear`` on one-hot input (torch's default threads).
   Our float32 GEMMs go through the library ``train`` would use here (``--gemm chosen``: the
   measured choice of :mod:`rnn_dissect.train.kernels.choice`, or ``RNN_DISSECT_GEMM``);
   ``--gemm both`` times oneMKL's (weight packed once per step) and numpy's against torch in
   the same rounds, one row each. The ceiling
   printed beside it is torch's step time over our step's GEMMs alone (that same backend,
   replayed at the kernels' shapes, best of a few in-cache repeats): the speed-up ours
   would have if everything but the GEMMs cost nothing.
3. achieved GFLOP/s of our training step as a fraction of the numpy matmul peak measured
   now at the dominant GEMM shape (the per-step (B, H) @ (H, G·H)), and of our own GEMM's
   peak at that shape (oneMKL, weight packed, when installed: the stricter measure).
4. profile: where one step's time goes (GEMMs replayed alone, optimizer, the rest).

Timing: the sides alternate in rounds (which goes first rotates too); the speed-up is
the median over rounds of torch's time / ours in that round, so a slow drift of the
machine's speed (other tenants) cancels; ratios of the medians and of the best rounds are
printed beside it (``BENCH_RAW=1`` also prints every round's milliseconds). The machine
is shared: run it when it is otherwise idle (the load average is printed first). ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are
reported; to compare with them unset, run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from machine_header import print_header

from rnn_dissect import optim
from rnn_dissect.nets.model import ModelConfig, init_params
from rnn_dissect.train.kernels import (
    KERNELS,
    Backend,
    Preference,
    StepShape,
    Workspace,
    adam,
    blas,
    fused,
)
from rnn_dissect.train.kernels.backend import GEMMS

# ../shared/data beside the checkout (a git worktree sits one level deeper: look upwards)
CORPUS = next(
    (
        p / "shared" / "data" / "tinyshakespeare.txt"
        for p in Path(__file__).resolve().parents[1:]
        if (p / "shared" / "data" / "tinyshakespeare.txt").is_file()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt",
)


def corpus() -> tuple[np.ndarray, tuple[str, ...]]:
    text = CORPUS.read_text(encoding="utf-8") if CORPUS.is_file() else "hello world, " * 20000
    vocab = tuple(sorted(set(text)))
    lut = {c: i for i, c in enumerate(vocab)}
    return np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text)), vocab


def environment(kernels: Backend) -> None:
    print_header()
    print(f"  our float32 kernels: {kernels.describe()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        print(f"  {var}={os.environ.get(var, '(unset)')}")


# ------------------------------------------------------------------ part 1: min-char-rnn
def minchar_loss_fun(
    P: dict[str, np.ndarray], inputs: list[int], targets: list[int], hprev: np.ndarray
):
    """min-char-rnn's lossFun (column vectors, one step at a time), with torch's two biases."""
    Wxh, Whh, bih, bhh, Why, by = P["Wxh"], P["Whh"], P["bih"], P["bhh"], P["Why"], P["by"]
    V = Why.shape[0]
    xs, hs, ps = {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0.0
    for t in range(len(inputs)):
        xs[t] = np.zeros((V, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bih + bhh)
        ys = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys - np.max(ys)) / np.sum(np.exp(ys - np.max(ys)))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bih), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    grads = {"Wxh": dWxh, "Whh": dWhh, "bih": dbh, "bhh": dbh.copy(), "Why": dWhy, "by": dby}
    return loss, grads, hs[len(inputs) - 1]


def part1(
    data: np.ndarray, vocab: tuple[str, ...], steps: int, rounds: int, kernels: Backend
) -> None:
    H, S, lr, clip = 100, 25, 0.1, 5.0
    cfg = ModelConfig("rnn", vocab, H, 1)
    params = init_params(cfg, np.random.default_rng(0), np.float64)
    names = {
        "Wxh": "rnn.weight_ih_l0",
        "Whh": "rnn.weight_hh_l0",
        "bih": "rnn.bias_ih_l0",
        "bhh": "rnn.bias_hh_l0",
        "Why": "head.weight",
        "by": "head.bias",
    }
    P = {k: params[v].reshape(params[v].shape[0], -1).copy() for k, v in names.items()}
    mem = {k: np.zeros_like(v) for k, v in P.items()}

    def baseline_steps(state, n, losses):
        p, h = state
        for _ in range(n):
            if p + S + 1 > len(data):
                p, h = 0, np.zeros((H, 1))
            loss, grads, h = minchar_loss_fun(
                P, list(data[p : p + S]), list(data[p + 1 : p + S + 1]), h
            )
            for k, d in grads.items():  # clip, then torch's Adagrad
                np.clip(d, -clip, clip, out=d)
                mem[k] += d * d
                P[k] -= lr * d / (np.sqrt(mem[k]) + 1e-10)
            losses.append(loss)
            p += S
        return p, h

    ws, opt = Workspace(), optim.Adagrad(params, lr=lr)

    def our_steps(state, n, losses):
        p, carry = state
        for _ in range(n):
            if p + S + 1 > len(data):
                p, carry = 0, None
            x, y = data[None, p : p + S], data[None, p + 1 : p + S + 1]
            loss, grads, carry = KERNELS["rnn"].forward_backward(
                params, x, y, carry, ws=ws, backend=kernels
            )
            for g in grads.values():
                g *= S  # min-char-rnn's loss is the sum over the sequence, not the mean
            optim.clip_grad_value(grads, clip)
            opt.step(params, grads)
            losses.append(loss * S)
            p += S
        return p, carry

    base_l: list[float] = []
    ours_l: list[float] = []
    sb, so = (0, np.zeros((H, 1))), (0, None)
    tb, to = [], []
    per = max(1, steps // rounds)
    for _ in range(rounds):
        t0 = time.perf_counter()
        sb = baseline_steps(sb, per, base_l)
        t1 = time.perf_counter()
        so = our_steps(so, per, ours_l)
        t2 = time.perf_counter()
        tb.append(t1 - t0)
        to.append(t2 - t1)
    cb, co = S * per / np.median(tb), S * per / np.median(to)
    bl, ol = np.array(base_l), np.array(ours_l)
    diff = np.abs(bl - ol) / np.abs(bl)
    agree = int(np.argmax(diff > 1e-6)) if (diff > 1e-6).any() else len(diff)
    tail = slice(len(bl) - len(bl) // 4, len(bl))
    print(
        f"\n1. min-char-rnn configuration (rnn H={H}, seq {S}, batch 1, Adagrad {lr}, clip ±{clip} "
        f"elementwise, float64), {per * rounds} steps each"
    )
    print(f"   {'':28s} {'chars/s':>10s}")
    print(f"   {'min-char-rnn loop (numpy)':28s} {cb:10.0f}")
    print(f"   {'rnn_dissect.train.kernels':28s} {co:10.0f}   {co / cb:.2f}x   (target >= 2x)")
    marks = [0, 9, 49, 99]
    print(
        "   loss (sum over 25 chars), min-char-rnn vs ours, at steps "
        + ", ".join(f"{i + 1}: {bl[i]:.8f} vs {ol[i]:.8f}" for i in marks if i < len(bl))
    )
    # Same math, step by step: start both sides from the same weights, Adagrad sums and state.
    worst_l = worst_p = 0.0
    h = np.zeros((H, 1))
    for step in range(50):
        q = step * S
        for k, v in names.items():
            params[v][...] = P[k].reshape(params[v].shape)
            opt.state[f"sum.{v}"][...] = mem[k].reshape(params[v].shape)
        carry = (h.reshape(1, 1, H).copy(),)
        sb = baseline_steps((q, h), 1, lb := [])
        so = our_steps((q, carry), 1, lo := [])
        h = sb[1]
        worst_l = max(worst_l, abs(lb[0] - lo[0]) / abs(lb[0]))
        worst_p = max(
            worst_p,
            max(float(np.abs(P[k].ravel() - params[v].ravel()).max()) for k, v in names.items()),
        )
    print(
        f"   same math: 50 steps from identical weights/state: loss rel. diff ≤ {worst_l:.1e}, "
        f"updated weights abs. diff ≤ {worst_p:.1e}"
    )
    print(
        f"   per-step losses agree to 1e-6 (relative) for the first {agree} steps (max difference there "
        f"{diff[:agree].max():.1e}); after that the 1e-16 "
        f"differences of two summation orders, which Adagrad's g/√Σg² blows up where gradient entries "
        f"nearly cancel, grow until the curves are two samples of the same process: mean loss over the last {len(bl) // 4} steps {bl[tail].mean():.2f} vs {ol[tail].mean():.2f}"
    )


# ------------------------------------------------------------------ part 2: vs PyTorch
def batches(data: np.ndarray, B: int, T: int):
    """B parallel streams over the corpus; consecutive calls continue each stream."""
    span = (len(data) - 1) // B
    starts = np.arange(B) * span
    k = 0
    while True:
        if (k + 1) * T > span:
            k = 0
        idx = starts[:, None] + k * T + np.arange(T)  # (B, T)
        yield data[idx], data[idx + 1]
        k += 1


# Each side's timed steps follow one untimed step of its own: after a multi-threaded GEMM,
# BLAS worker threads (OpenBLAS's, torch's OpenMP pool) busy-wait ~0.1 s for more work, and
# a step timed right after the other side's ran up to 25% slower here (torch after ours);
# a pause instead (sleep) slowed the next steps of both sides as much. So each side is timed
# in its own steady state, as in a training loop that runs one of them only.


TARGETS = {"rnn": 1.5, "lstm": 1.2, "gru": 1.3}  # issue 17: speed-up over torch CPU


def our_trainer(cell, params0, data, B, T, lr, clip, kernels):
    """n -> loss of n training steps of our kernels with ``kernels``, on its own copy of
    the weights, Adam state, carried state and batch stream."""
    params = {k: v.copy() for k, v in params0.items()}
    ws, opt, src = Workspace(), optim.Adam(params, lr=lr), batches(data, B, T)
    carry = None

    def steps(n):
        nonlocal carry
        for _ in range(n):
            x, y = next(src)
            loss, grads, carry = KERNELS[cell].forward_backward(
                params, x, y, carry, ws=ws, backend=kernels
            )
            optim.clip_grad_norm(grads, clip)
            adam.step(opt, params, grads, compiled=kernels.fused)  # as `train` does
        return loss

    return steps


def torch_trainer(cell, params, data, B, T, V, H, lr, clip):
    """n -> loss of n steps of nn.RNN/LSTM/GRU + nn.Linear from the same initial weights."""
    import torch

    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        V, H, batch_first=True
    )
    head = torch.nn.Linear(H, V)
    with torch.no_grad():
        for name, p in mod.named_parameters():
            p.copy_(torch.from_numpy(params[f"rnn.{name}"]))
        head.weight.copy_(torch.from_numpy(params["head.weight"]))
        head.bias.copy_(torch.from_numpy(params["head.bias"]))
    tparams = [*mod.parameters(), *head.parameters()]
    topt = torch.optim.Adam(tparams, lr=lr)
    state = None
    src = batches(data, B, T)

    def steps(n):
        nonlocal state
        for _ in range(n):
            x, y = next(src)
            xo = torch.nn.functional.one_hot(torch.from_numpy(x), V).float()
            out, state = mod(xo, state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            loss = torch.nn.functional.cross_entropy(
                head(out).reshape(-1, V), torch.from_numpy(y).reshape(-1)
            )
            topt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tparams, clip)
            topt.step()
        return float(loss.detach())

    return steps


def part2(data, vocab, cells, rounds, per_round, variants, B=64, T=100, H=512, lr=2e-3, clip=5.0):
    """``variants(cell, shape)`` -> [(label, Backend)]: our kernels' configurations, each
    timed against torch in the same rounds."""
    import torch

    V = len(vocab)
    print(
        f"\n2. H={H}, seq {T}, batch {B}, 1 layer, V={V}, float32, Adam {lr}, clip {clip} (global norm); "
        f"torch {torch.__version__} threads={torch.get_num_threads()}"
    )
    print(
        f"   {'cell':5s} {'ours':24s} {'torch chars/s':>14s} {'ours chars/s':>13s} {'speed-up':>9s} "
        f"{'target':>7s}   {'loss torch':>10s} {'loss ours':>10s}"
    )
    results = {}
    for cell in cells:
        params = init_params(ModelConfig(cell, vocab, H, 1), np.random.default_rng(0), np.float32)
        shape = StepShape(cell, H, 1, B, V, T)
        ours = {
            label: (bk, our_trainer(cell, params, data, B, T, lr, clip, bk))
            for label, bk in variants(cell, shape)
        }
        sides = {"torch": torch_trainer(cell, params, data, B, T, V, H, lr, clip)}
        sides.update({label: run for label, (_, run) in ours.items()})
        for run in sides.values():
            run(1)  # warm-up (allocations, thread pools, numba)
        times = {name: [] for name in sides}
        losses = dict.fromkeys(sides, 0.0)
        names = list(sides)
        for r in range(rounds):  # the order rotates, so no side always goes first
            for name in names[r % len(names) :] + names[: r % len(names)]:
                sides[name](1)  # untimed: the switch from the other side's threads
                t0 = time.perf_counter()
                losses[name] = sides[name](per_round)
                times[name].append(time.perf_counter() - t0)
        tt = np.array(times["torch"])
        ct = B * T * per_round / np.median(tt)
        for label, (bk, _) in ours.items():
            to = np.array(times[label])
            co = B * T * per_round / np.median(to)
            paired = np.median(tt / to)  # each round's ratio: drifts cancel
            if os.environ.get("BENCH_RAW"):
                print(
                    "   raw ms torch",
                    np.round(tt * 1e3).tolist(),
                    label,
                    np.round(to * 1e3).tolist(),
                )
            ceiling = np.median(tt) / per_round / sum(gemm_replay(bk, cell, B, T, H, V))
            print(
                f"   {cell:5s} {label:24s} {ct:14.0f} {co:13.0f} {paired:8.2f}x {TARGETS[cell]:6.1f}x   "
                f"{losses['torch']:10.4f} {losses[label]:10.4f}"
                f"   (ratio of medians {co / ct:.2f}x, of bests {tt.min() / to.min():.2f}x;"
                f" ceiling {ceiling:.2f}x)"
            )
            results.setdefault(cell, (bk, np.median(to) / per_round))  # the first variant's
    return results


# ------------------------------------------------------------------ part 3: GFLOP/s
def step_flops(cell: str, B: int, T: int, H: int, V: int) -> float:
    """Multiply-adds ×2 of one training step's GEMMs: recurrence forward and backward, the
    merged [h_{t-1} | onehot] weight-gradient GEMM, and the head (three GEMMs)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    rec = 2 * B * H * G * H * T  # forward h_{t-1} @ W_hhᵀ, per step
    rec_b = 2 * B * H * G * H * (T - 1)  # backward dÃ @ W_hh
    dw = 2 * T * B * G * H * (H + V)  # dW_hh and dW_ih in one GEMM
    head = 3 * 2 * T * B * H * V
    return float(rec + rec_b + dw + head)


def matmul_peak(m: int, k: int, n: int, seconds: float = 3.0, ours: Backend | None = None) -> float:
    """Best GFLOP/s of ``np.matmul`` at this shape (float32) — or, with ``ours``, of the
    kernels' per-step product by that backend (oneMKL with the weight packed, or numpy)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    mm = ours.fixed(b) if ours else (lambda x, o: np.matmul(x, b, out=o))
    best = np.inf
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(20):
            mm(a, out)
        best = min(best, (time.perf_counter() - t0) / 20)
    return 2 * m * k * n / best / 1e9


def part3(step_seconds: dict, V: int, B=64, T=100, H=512) -> None:
    """``step_seconds``: cell -> (the Backend it was timed with, seconds per step)."""
    print("\n3. achieved GFLOP/s (GEMM FLOPs of one step / measured step time, optimizer included)")
    print(
        f"   {'cell':5s} {'GFLOP/step':>10s} {'GFLOP/s':>8s} {'numpy peak, per-step shape':>27s} "
        f"{'fraction':>8s} {'our GEMM peak':>14s} {'fraction':>8s}"
    )
    for cell, (kernels, sec) in step_seconds.items():
        G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        fl = step_flops(cell, B, T, H, V)
        peak = matmul_peak(B, H, G * H)
        own = matmul_peak(B, H, G * H, ours=kernels)
        ach = fl / sec / 1e9
        print(
            f"   {cell:5s} {fl / 1e9:10.2f} {ach:8.1f} {peak:21.1f} GF/s {ach / peak:7.0%} "
            f"{own:9.1f} GF/s {ach / own:7.0%}   (target >= 60% of numpy's)"
        )


def gemm_seconds(
    kernels: Backend,
    m: int,
    k: int,
    n: int,
    trans_a: bool = False,
    reps: int = 5,
    packed: bool = False,
) -> float:
    """Best time of one product of this shape (float32), operands laid out as the kernels
    do, through the kernels' GEMM (oneMKL or numpy, as ``kernels`` says); ``packed``: the
    per-step product against a weight packed once."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    aa = a.T if trans_a else a
    mm = kernels.fixed(b) if packed else (lambda x, o: kernels.matmul(x, b, o))
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        mm(aa, out)
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_replay(kernels: Backend, cell: str, B: int, T: int, H: int, V: int) -> tuple[float, float]:
    """Seconds of one step's GEMMs replayed alone at the kernels' shapes (each the best of a
    few in-cache repeats, so a floor): the per-step ones — T forward (B,H)@(H,GH), T−1
    backward (B,GH)@(GH,H) — and the big ones (weight gradients, the head's three)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    k = kernels
    # untimed first, ~0.3 s: the other library's threads (oneMKL's OpenMP pool spins up to
    # 200 ms after its last call) would otherwise share the cores with these GEMMs — a
    # replay run right after the other library's once came out 5x slow
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        gemm_seconds(k, B, H, G * H, reps=20, packed=True)
    rec = T * gemm_seconds(k, B, H, G * H, packed=True) + (T - 1) * gemm_seconds(
        k, B, G * H, H, packed=True
    )
    big = (
        gemm_seconds(k, G * H, T * B, H + V, trans_a=True)  # dW_hh | dW_ih
        + gemm_seconds(k, T * B, H, V)
        + gemm_seconds(k, T * B, V, H)
        + gemm_seconds(k, V, T * B, H, trans_a=True)
    )
    return rec, big


def part4(data, vocab, cells, kernels, B=64, T=100, H=512, clip=5.0) -> None:
    """Where one training step's time goes: GEMMs replayed alone at the kernels' shapes, the
    optimizer, and the rest (elementwise numpy + Python)."""
    V = len(vocab)
    print(f"\n4. profile of one step (H={H}, seq {T}, batch {B}, float32), milliseconds")
    print(
        f"   {'cell':5s} {'total':>7s} {'per-step GEMMs':>15s} {'big GEMMs':>10s} {'clip+Adam':>10s} "
        f"{'elementwise+Python':>19s}"
    )
    for cell in cells:
        params = init_params(ModelConfig(cell, vocab, H, 1), np.random.default_rng(0), np.float32)
        ws, opt = Workspace(), optim.Adam(params, lr=1e-3)
        x, y = next(batches(data, B, T))
        KERNELS[cell].forward_backward(params, x, y, ws=ws, backend=kernels)
        kern = step = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            _, grads, _ = KERNELS[cell].forward_backward(params, x, y, ws=ws, backend=kernels)
            t1 = time.perf_counter()
            optim.clip_grad_norm(grads, clip)
            adam.step(opt, params, grads, compiled=kernels.fused)
            t2 = time.perf_counter()
            kern, step = min(kern, t1 - t0), min(step, t2 - t1)
        rec, big = gemm_replay(kernels, cell, B, T, H, V)
        rest = kern - rec - big
        print(
            f"   {cell:5s} {1e3 * (kern + step):7.1f} {1e3 * rec:15.1f} {1e3 * big:10.1f} {1e3 * step:10.1f} "
            f"{1e3 * rest:19.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", type=int, action="append", choices=[1, 2, 3, 4])
    ap.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    ap.add_argument("--rounds", type=int, default=5, help="alternating timing rounds per side")
    ap.add_argument(
        "--steps-per-round", type=int, default=3, help="part 2 training steps per round"
    )
    ap.add_argument("--minchar-steps", type=int, default=1000)
    ap.add_argument(
        "--gemm",
        choices=("chosen", "both", "mkl", "numpy"),
        default="chosen",
        help="our GEMM library: what train would use here (default), each of the two, or one",
    )
    args = ap.parse_args()
    parts = args.part or [1, 2, 3]
    pref = Preference.from_env()  # RNN_DISSECT_GEMM / _MKL / _FUSED read here, once
    use_fused = pref.fused and fused.AVAILABLE

    def variants(cell: str, shape: StepShape) -> list[tuple[str, Backend]]:
        if args.gemm in ("mkl", "numpy"):
            return [(args.gemm, Backend(args.gemm, use_fused))]
        if args.gemm == "both":
            return [(g, Backend(g, use_fused)) for g in GEMMS if g != "mkl" or blas.available()]
        bk = pref.resolve(shape)
        return [(f"{bk.gemm} ({pref.gemm})", bk)]

    data, vocab = corpus()
    default = pref.resolve(StepShape("lstm", 512, 1, 64, len(vocab), 100))
    environment(default)
    print(f"corpus: {CORPUS} ({len(data):,} chars, vocabulary {len(vocab)})")
    if 1 in parts:
        part1(data, vocab, args.minchar_steps, args.rounds * 2, default)
    secs = None
    if 2 in parts:
        secs = part2(data, vocab, args.cells, args.rounds, args.steps_per_round, variants)
    if 3 in parts:
        if secs is None:
            secs = part2(data, vocab, args.cells, 2, 1, variants)
        part3(secs, len(vocab))
    if 4 in parts:
        part4(data, vocab, args.cells, default)


if __name__ == "__main__":
    main()
