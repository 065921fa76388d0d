"""Quality benchmark (issue #5, item 4): best validation loss within a time budget.

Tiny Shakespeare (``../shared/data/tinyshakespeare.txt`` relative to the repository), the
first 90% for training, the last 10% for validation. Two trainers, one after the other,
each for ``--minutes`` of wall-clock time (validation included):

- **ours**: ``rnn_dissect.train.loop`` (numpy float32 kernels) with the configuration below —
  the reference model and recipe read in chunks of 50 characters instead of 100, with a
  schedule sized to the budget (warm-up, the peak held, a cosine to ~0 over the last
  quarter, ending at the budget);
- **torch**: the issue's PyTorch CPU reference — 2-layer ``nn.LSTM`` of 512 units, one-hot
  input, seq 100, batch 64, Adam 2e-3, clip 5, no dropout, constant learning rate, the
  hidden state carried across chunks (same batches as ours: ``rnn_dissect.train.data.Streams``).

Both are scored by the same function (:func:`rnn_dissect.train.loop.evaluate`, float32, state
carried) on the whole validation split, so the numbers are the same quantity (nats/char):
the split is cut into the same 64 streams for both, and with the state carried the chunk
length used to read them does not change the loss.
The issue's reference figure: torch reached 1.541 at 12–14 minutes and then overfit;
target ≤ 1.50 within 20 minutes.

    python bench/bench_quality.py                 # 20 minutes each (40 in all)
    python bench/bench_quality.py --minutes 3     # a quick look at the curves
    python bench/bench_quality.py --only ours --json curves.json
    python bench/bench_quality.py --only ours --set seq_len=50 --set dropout=0.1   # other settings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from machine_header import print_header

from rnn_dissect.train.data import Streams, load_corpus
from rnn_dissect.train.loop import TrainConfig, evaluate, open_run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinyshakespeare.txt"
REFERENCE = dict(cell="lstm", hidden_size=512, num_layers=2, seq_len=100, batch_size=64)
# Measured here (issue notes, sessions 2–3), all Adam, clip 5, 20 minutes: seq 100 with
# dropout 0.25 and a whole-run cosine reached 1.748; lr 3e-3 without dropout, 1.550 (train
# 1.33: overfit); torch's recipe (2e-3, no dropout) with the cosine over the last quarter,
# 1.529 and 1.528 (~1100 steps; torch itself 1.517 in 1350). Halving the chunk to seq 50
# (char-rnn's default) nearly doubles the updates in the budget (~2100) on the same
# characters, with the hidden state still carried across chunks: 1.486, 1.4915, 1.4867
# (session 3: torch 1.528 beside it). So: the reference
# model and torch's recipe, seq 50, warm-up, peak held, a cosine over the last quarter.
OURS = dict(
    REFERENCE,
    seq_len=50,
    lr=2e-3,
    lr_min=2e-5,
    warmup=20,
    schedule="cosine",
    decay_frac=0.25,
    dropout=0.0,
    clip=5.0,
)
SIZING = 0.96  # the cosine is sized to this share of the budget; the clock stops it at 100%
FINAL_EVAL_S = 15.0  # room left at the end for scoring where the clock stopped it


def override(settings: dict, pairs: list[str]) -> dict:
    """``settings`` with ``KEY=VALUE`` pairs applied, each value parsed as the type of the
    ``TrainConfig`` field it replaces."""
    out = dict(settings)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in fields or not value:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY a TrainConfig field")
        kind = type(getattr(TrainConfig(), key))
        try:
            out[key] = kind(value)
        except ValueError:
            raise SystemExit(f"--set {pair!r}: {key} takes a {kind.__name__}") from None
    return out


def run_ours(
    minutes: float, eval_every: int, config: dict = OURS
) -> list[tuple[float, int, float]]:
    """(minutes, step, val loss) at every validation of our trainer."""
    curve: list[tuple[float, int, float]] = []
    t0 = time.perf_counter()

    def report(event: str, f: dict) -> None:
        if event == "log" and "val_loss" in f:
            curve.append(((time.perf_counter() - t0) / 60, f["step"], f["val_loss"]))
            print(
                f"  ours   {curve[-1][0]:6.2f} min  step {f['step']:5d}  val {f['val_loss']:.4f}"
                f"  (train {f['train_loss']:.4f}, lr {f['lr']:.2e})",
                flush=True,
            )
        elif event == "note":
            print("  ours  ", f["text"], flush=True)

    with tempfile.TemporaryDirectory() as d:
        # validate as often per character as torch does (``eval_every`` reference steps)
        chars = REFERENCE["seq_len"] * REFERENCE["batch_size"]
        every = max(1, round(eval_every * chars / (config["seq_len"] * config["batch_size"])))
        settings = dict(
            config,
            files=(str(DATA),),
            val_frac=0.1,
            val_chars=10**9,  # the whole validation split
            minutes=SIZING * minutes,
            eval_every=every,
            log_every=every,
            save_every=10**9,  # checkpoint only at the end
            sample_every=0,
        )
        trainer = open_run(Path(d) / "run", settings, report=report)
        t0 = time.perf_counter()
        trainer.fit(time_limit=minutes * 60 - FINAL_EVAL_S)
        if not curve or curve[-1][1] != trainer.state.step:  # stopped by the clock: score it too
            val = trainer.validate()
            assert val is not None
            curve.append(((time.perf_counter() - t0) / 60, trainer.state.step, val))
            print(
                f"  ours   {curve[-1][0]:6.2f} min  step {curve[-1][1]:5d}  val {val:.4f} (at stop)"
            )
    return curve


def run_torch(minutes: float, eval_every: int) -> list[tuple[float, int, float]]:
    """The issue's PyTorch reference, for ``minutes``; (minutes, step, val loss) per validation."""
    import torch

    from rnn_dissect.weights.interop import from_torch

    torch.manual_seed(0)
    torch.set_num_threads(2)
    corpus = load_corpus([DATA])
    train, val = corpus.split(0.1)
    V, H, L = len(corpus.vocab), REFERENCE["hidden_size"], REFERENCE["num_layers"]
    rnn = torch.nn.LSTM(V, H, L, batch_first=True)
    head = torch.nn.Linear(H, V)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    streams = Streams(train, REFERENCE["batch_size"], REFERENCE["seq_len"])
    eye = torch.eye(V)
    state = None
    curve: list[tuple[float, int, float]] = []
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < minutes * 60:
        x, y, reset = streams.batch_at(k)
        if reset:
            state = None
        out, state = rnn(eye[torch.from_numpy(x)], state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(
            head(out).reshape(-1, V), torch.from_numpy(y).reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        k += 1
        if k % eval_every == 0:
            m = from_torch(rnn, head, corpus.vocab)
            v = evaluate(m.params, "lstm", val, REFERENCE["batch_size"], REFERENCE["seq_len"])
            curve.append(((time.perf_counter() - t0) / 60, k, v))
            print(f"  torch  {curve[-1][0]:6.2f} min  step {k:5d}  val {v:.4f}", flush=True)
    if k % eval_every:  # score where the clock stopped it, as for ours
        m = from_torch(rnn, head, corpus.vocab)
        v = evaluate(m.params, "lstm", val, REFERENCE["batch_size"], REFERENCE["seq_len"])
        curve.append(((time.perf_counter() - t0) / 60, k, v))
        print(f"  torch  {curve[-1][0]:6.2f} min  step {k:5d}  val {v:.4f} (at stop)")
    return curve


def summary(name: str, curve: list[tuple[float, int, float]]) -> str:
    if not curve:
        return f"{name:6s} no validation inside the budget"
    t, step, best = min(curve, key=lambda c: c[2])
    return f"{name:6s} best val {best:.4f} nats/char at {t:.1f} min (step {step}); last {curve[-1][2]:.4f}"


def main() -> None:
    print_header()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=20.0, help="budget per trainer (default 20)")
    ap.add_argument(
        "--eval-every",
        type=int,
        default=100,
        help="torch's steps between validations; ours validates as often per character",
    )
    ap.add_argument("--only", choices=["ours", "torch"], help="run one trainer")
    ap.add_argument("--json", metavar="FILE", help="also write the curves here")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of ours' settings (a TrainConfig field), e.g. --set seq_len=50",
    )
    args = ap.parse_args()
    ours = override(OURS, args.set)
    if not DATA.is_file():
        raise SystemExit(f"{DATA} not found; this benchmark needs Tiny Shakespeare there")
    print(f"data: {DATA.resolve()} (90/10 split), budget {args.minutes:g} min per trainer")
    print(f"ours : {ours}, sized to the budget")
    print(f"torch: {REFERENCE}, Adam 2e-3 constant, clip 5, no dropout, 2 threads")
    curves: dict[str, list] = {}
    if args.only in (None, "ours"):
        curves["ours"] = run_ours(args.minutes, args.eval_every, ours)
    if args.only in (None, "torch"):
        curves["torch"] = run_torch(args.minutes, args.eval_every)
    print()
    for name, curve in curves.items():
        print(summary(name, curve))
    if "ours" in curves and "torch" in curves and curves["ours"] and curves["torch"]:
        b_ours, b_torch = min(c[2] for c in curves["ours"]), min(c[2] for c in curves["torch"])
        print(f"ours − torch: {b_ours - b_torch:+.4f} nats/char (target: ours ≤ 1.50 in 20 min)")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"minutes": args.minutes, "curves": curves}, indent=1)
        )


if __name__ == "__main__":
    main()
