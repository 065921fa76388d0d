"""The PyTorch backend's throughput, against baselines measured in the same run.

    python bench/bench_torch.py                          # both parts, CPU (~1.5 min on 2 idle cores)
    python bench/bench_torch.py --part train --device cuda --hidden 1024
    python bench/bench_torch.py --part collect --chars 50000

1. train: ``train --backend torch``'s step (:class:`TorchBackend.step`: numpy batch → device,
   forward, backward, global-norm clip, Adam, the loss and norm read back) against a plain
   PyTorch loop with the same shapes: ``nn.LSTM`` + ``nn.Linear`` on one-hot input, CE,
   ``clip_grad_norm_``, ``torch.optim.Adam``, state carried (detached), the batch taken from
   numpy each step, no ``.item()`` (so no per-step device sync: the plain loop's best case).
   H 512, seq 100, batch 64, one layer, V 65 by default. Sides alternate in rounds; the figure
   is the median over rounds of plain time / backend time (≥ 0.9 is the goal on a GPU).
2. collect: ``neurons``' exact collection (:func:`~rnn_dissect.neurons.collect.collect`,
   streaming to ``--dir``) of a 2-layer LSTM over random text, numpy vs ``backend="torch"``
   (fused kernel for h, every gate at once, LSTM c by a scan), chars/s; and the largest
   difference between the two collections' arrays (rows compared in blocks).

The header prints the CPU model, torch's version and threads, the GPU (or that there is
none) and the load average: the machine may be shared, so compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine_header import print_header

from rnn_dissect.nets.model import CharModel, ModelConfig, init_params
from rnn_dissect.neurons.collect import collect
from rnn_dissect.train.loop import TrainConfig, new_state
from rnn_dissect.train.torch_backend import TorchBackend


def header(device: str) -> None:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (no CUDA GPU)"
    print_header()  # CPU model, cores, ISA, BLAS libraries, load
    print(f"GPU: {gpu}; device used: {device}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f} (1 min)")  # fmt: skip


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class PlainLoop:
    """The hand-written PyTorch training loop the backend is held against."""

    def __init__(self, cell: str, V: int, H: int, L: int, device: str) -> None:
        mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.rnn = mod(V, H, L).to(device)
        self.head = torch.nn.Linear(H, V).to(device)
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=2e-3)
        self.V, self.device, self.state = V, device, None

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        xb = torch.from_numpy(x.T.copy()).to(self.device)  # (S, B)
        yb = torch.from_numpy(y.T.copy()).to(self.device)
        self.opt.zero_grad(set_to_none=True)
        z, last = self.rnn(torch.nn.functional.one_hot(xb, self.V).float(), self.state)
        loss = torch.nn.functional.cross_entropy(self.head(z).reshape(-1, self.V), yb.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 5.0)
        self.opt.step()
        self.state = tuple(s.detach() for s in last) if isinstance(last, tuple) else last.detach()


def bench_train(args: argparse.Namespace) -> None:
    V, H, S, B, L = args.vocab, args.hidden, args.seq_len, args.batch, 1
    cfg = TrainConfig(cell=args.cell, hidden_size=H, num_layers=L, seq_len=S, batch_size=B,
                      steps=10**6, lr=2e-3, clip=5.0)  # fmt: skip
    state = new_state(cfg, ModelConfig(args.cell, tuple(chr(33 + i) for i in range(V)), H, L))
    ours = TorchBackend(state, cfg, args.device)
    plain = PlainLoop(args.cell, V, H, L, args.device)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, V, (2, B, S)) for _ in range(4)]

    cpu_s = {"ours": 0.0, "plain": 0.0}

    def run_ours(n: int) -> float:
        sync(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            x, y = batches[i % 4]
            ours.step(x, y, False, 2e-3, None)  # reads loss and ‖g‖ back: one sync per step
        sync(args.device)
        cpu_s["ours"] += time.process_time() - c0
        return time.perf_counter() - t0

    def run_plain(n: int) -> float:
        sync(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            x, y = batches[i % 4]
            plain.step(x, y)
        sync(args.device)
        cpu_s["plain"] += time.process_time() - c0
        return time.perf_counter() - t0

    run_ours(2), run_plain(2)  # warm-up: allocations, cuDNN plans
    cpu_s.update(ours=0.0, plain=0.0)
    ratios, t_ours, t_plain = [], [], []
    for r in range(args.rounds):
        first, second = (run_ours, run_plain) if r % 2 == 0 else (run_plain, run_ours)
        a, b = first(args.steps), second(args.steps)
        o, p = (a, b) if first is run_ours else (b, a)
        t_ours.append(o), t_plain.append(p), ratios.append(p / o)
    chars = B * S * args.steps
    print(f"\n1. train, {args.cell} H={H} seq {S} batch {B} L={L} V={V}, float32, Adam, clip 5, "
          f"{args.rounds} rounds × {args.steps} steps")  # fmt: skip
    print(f"   --backend torch : {chars / statistics.median(t_ours):10,.0f} chars/s (median)")
    print(
        f"   plain nn.{args.cell.upper():4s} loop: {chars / statistics.median(t_plain):10,.0f} chars/s"
    )
    print(f"   backend / plain : {statistics.median(ratios):.3f} (median of rounds; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"CPU seconds plain / backend {cpu_s['plain'] / cpu_s['ours']:.3f}")  # fmt: skip


def bench_collect(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    vocab = tuple(chr(33 + i) for i in range(args.vocab))
    text = "".join(rng.choice(list(vocab), args.chars))
    cfg = ModelConfig("lstm", vocab, args.hidden, 2)
    model = CharModel(cfg, init_params(cfg, np.random.default_rng(0), np.float32))
    gb = args.chars * 12 * args.hidden * 4 / 1e9
    print(f"\n2. collect, exact, LSTM H={args.hidden} L=2, {args.chars:,} characters, "
          f"warm-up {args.warmup}, 12 arrays ({gb:.2f} GB float32) streamed to {args.dir}")  # fmt: skip
    acts, secs = {}, {}
    for backend in ("numpy", "torch"):
        d = args.dir / backend
        shutil.rmtree(d, ignore_errors=True)
        t0, c0 = time.perf_counter(), time.process_time()
        acts[backend] = collect(model, text, warmup=args.warmup, out_dir=d, backend=backend,
                                device=args.device if backend == "torch" else "cpu")  # fmt: skip
        secs[backend] = (time.perf_counter() - t0, time.process_time() - c0)
        info = acts[backend].collection
        print(f"   {backend:6s}: {args.chars / secs[backend][0]:9,.0f} chars/s wall "
              f"({secs[backend][0]:.1f} s wall, {secs[backend][1]:.1f} s CPU; "
              f"{info['segments']} segments, {info['passes']} passes, "
              f"{info['rerun_chars']:,} chars re-read)")  # fmt: skip
    worst = 0.0
    for key in acts["numpy"].ordered_keys():
        for s, blk in acts["numpy"].chunks(key, rows=4096):
            other = acts["torch"].rows(key, s, s + len(blk))
            worst = max(worst, float(np.abs(blk - other).max()))
    print(f"   torch / numpy: {secs['numpy'][0] / secs['torch'][0]:.2f}× (wall); "
          f"largest |Δ| over every array: {worst:.1e}")  # fmt: skip
    del acts
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("train", "collect", "both"), default="both")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--steps", type=int, default=3, help="training steps per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--chars", type=int, default=10_000, help="characters collected")
    ap.add_argument("--warmup", type=int, default=100, help="collection warm-up")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/rnn-dissect-bench-torch"))
    ap.add_argument("--keep", action="store_true", help="keep the collected activations")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a shared machine 1 spins least
    header(args.device)
    if args.part in ("train", "both"):
        bench_train(args)
    if args.part in ("collect", "both"):
        bench_collect(args)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
