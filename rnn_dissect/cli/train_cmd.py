"""``rnn-dissect train``: train a character model on text files (or the default corpus).

    rnn-dissect train                                  # 5 minutes on the stdlib's source
    rnn-dissect train input.txt --minutes 20 --out runs/shakespeare
    rnn-dissect train input.txt --steps 3000 --cell gru --hidden 512 --layers 1
    rnn-dissect train --resume --out runs/shakespeare  # continue (after Ctrl-C, or to more --steps)

A live progress bar (step, train and validation loss, chars/s, ETA) and periodic samples go to
stderr; the run directory (see :mod:`rnn_dissect.train.rundir`) gets everything else. Ctrl-C
finishes the current step, saves and exits (code 130); ``--resume`` continues bit-identically.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rnn_dissect.cli.flags import add_backend
from rnn_dissect.errors import UserError
from rnn_dissect.reports import run_report
from rnn_dissect.train.backends import rank_from_env, world_from_env
from rnn_dissect.train.kernels import Preference
from rnn_dissect.train.loop import TrainConfig, open_run
from rnn_dissect.train.rundir import RunDir

__all__ = ["register", "run"]

_EXAMPLES = """examples:
  rnn-dissect train                                   # ~5 min on the Python stdlib's source
  rnn-dissect train input.txt --minutes 20 --out runs/shakespeare --dropout 0.1
  rnn-dissect train input.txt --steps 2000 --cell gru --hidden 512 --layers 1
  rnn-dissect train --resume --out runs/shakespeare    # continue; add --steps N to extend
  rnn-dissect sample runs/shakespeare --prime "ROMEO:" --temperature 0.8"""

D = TrainConfig()
# TrainConfig field → (flag, metavar or choices, help; the default comes from TrainConfig).
# Every argparse default is None, so a resumed run can tell which flags were given.
_FLAGS: dict[str, tuple[str, str | tuple[str, ...], str]] = {
    "cell": ("--cell", ("rnn", "lstm", "gru"), "recurrent cell"),
    "hidden_size": ("--hidden", "H", "units per layer"),
    "num_layers": ("--layers", "L", "stacked layers"),
    "seq_len": ("--seq-len", "S", "characters per truncated-BPTT chunk"),
    "batch_size": ("--batch", "B", "parallel streams"),
    "steps": ("--steps", "N", "optimizer steps in the whole run; 0 = as many as fit in --minutes"),
    "lr": ("--lr", "LR", "peak learning rate"),
    "lr_min": ("--lr-min", "LR", "cosine floor"),
    "warmup": ("--warmup", "N", "linear warm-up steps"),
    "decay_start": ("--decay-start", "K", "the cosine starts at step K (0: after the warm-up)"),
    "decay_frac": (
        "--decay-frac",
        "F",
        "with --minutes: the cosine spans the last F of the run (steps re-measured until then)",
    ),
    "schedule": ("--schedule", ("constant", "cosine"), "learning-rate schedule after warm-up"),
    "optimizer": ("--optimizer", ("adam", "adagrad", "rmsprop", "sgd"), "torch.optim rules"),
    "clip": ("--clip", "C", "global gradient-norm clip, 0 = off"),
    "dropout": ("--dropout", "P", "dropout between layers"),
    "val_frac": ("--val-frac", "F", "tail of the text held out for validation"),
    "val_chars": ("--val-chars", "N", "validation characters per evaluation, at most"),
    "seed": ("--seed", "N", "seed of the weights and dropout"),
    "errors": ("--errors", ("strict", "replace"), "invalid UTF-8: stop, or replace with U+FFFD"),
    "log_every": ("--log-every", "N", "steps per metrics.jsonl line"),
    "eval_every": ("--eval-every", "N", "steps between validations"),
    "save_every": ("--save-every", "N", "steps between checkpoints"),
    "sample_every": ("--sample-every", "N", "steps between samples, 0 = off"),
    "sample_chars": ("--sample-chars", "N", "characters per sample"),
    "snapshot_every": ("--snapshot-every", "N", "steps between activation snapshots, 0 = off"),
    "probe_chars": ("--probe-chars", "N", "length of the snapshots' probe text"),
}
assert set(_FLAGS) <= {f.name for f in fields(TrainConfig)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a character-level RNN/LSTM/GRU on text (resumable, checkpointed)",
        description="Train a character model with truncated BPTT (state carried across chunks),\n"
        "gradient clipping, dropout and a warm-up + cosine schedule; float32 numpy kernels.\n"
        "With no FILE it trains on the running Python's standard-library source.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="UTF-8 text files (default: stdlib source)"
    )
    p.add_argument("--out", default="run", metavar="RUN_DIR", help="run directory (default ./run)")
    p.add_argument(
        "--minutes",
        metavar="M",
        type=float,
        help=f"time budget: sizes --steps on a new run (default {D.minutes:g}); "
        "stops this invocation (with a checkpoint) when it runs out",
    )
    for dest, (flag, meta, text) in _FLAGS.items():
        default = getattr(D, dest)
        shown = f"{default:g}" if isinstance(default, float) else default
        kind = {"metavar": meta} if isinstance(meta, str) else {"choices": meta}
        p.add_argument(
            flag, dest=dest, type=type(default), help=f"{text} (default {shown})", **kind
        )
    add_backend(
        p,
        torch="numpy: the fused float32 kernels (default); torch: PyTorch's nn.LSTM/GRU/RNN, "
        "the same model and files (needs the torch extra; under torchrun: DistributedDataParallel)",
        cuda="cuda runs on the GPU (cuDNN)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--force", action="store_true", help="replace the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar or samples")
    p.set_defaults(func=run)


class _Live:
    """Progress bar and messages on stderr, fed by the trainer's events."""

    def __init__(self, quiet: bool, engine: str = "numpy kernels") -> None:
        self.console = Console(stderr=True, highlight=False)
        self.quiet, self.engine = quiet, engine
        self.progress: Progress | None = None
        self.task: Any = None

    def __call__(self, event: str, f: dict[str, Any]) -> None:
        if event == "start":
            cfg = f["config"]
            if self.quiet:
                return
            if f["step"]:  # --resume
                self.console.print(f"resuming from step {f['step']:,} of {f['steps'] or '?'}")
            self.console.print(
                f"training {cfg.cell} H={cfg.hidden_size} L={cfg.num_layers}, seq {cfg.seq_len} × batch "
                f"{cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g} ({cfg.schedule}), float32, {self.engine}"
            )
            self.progress = Progress(
                TextColumn("step {task.completed}/{task.fields[total_txt]}"),
                BarColumn(bar_width=24),
                TextColumn(
                    "loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[cps]} chars/s"
                ),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            total = f["steps"] or None
            self.task = self.progress.add_task(
                "train",
                total=total,
                completed=f["step"],
                loss="-",
                val="-",
                cps="-",
                total_txt=str(total or "?"),
            )
            self.progress.start()
        elif self.progress is not None and event == "step":
            self.progress.update(self.task, completed=f["step"])
        elif self.progress is not None and event == "sized":
            self.progress.update(self.task, total=f["steps"], total_txt=str(f["steps"]))
        elif self.progress is not None and event == "log":
            upd: dict[str, Any] = {
                "loss": f"{f['train_loss']:.3f}",
                "cps": f"{f['chars_per_s']:,.0f}",
            }
            if "val_loss" in f:
                upd["val"] = f"{f['val_loss']:.3f}"
            self.progress.update(self.task, **upd)
        elif event == "sample" and not self.quiet:
            self.console.print(f"[dim]--- sample at step {f['step']} ---[/dim]")
            self.console.print(f["text"], markup=False, soft_wrap=True)
        elif event == "note":
            self.console.print(f["text"], markup=False, soft_wrap=True)
        elif event == "end" and self.progress is not None:
            self.progress.stop()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run(args: argparse.Namespace) -> int:
    if args.resume and args.force:
        raise UserError("--resume continues the run in --out, --force replaces it; choose one")
    if args.minutes is not None and not 0 < args.minutes < math.inf:
        raise UserError(f"--minutes must be a positive number of minutes, got {args.minutes:g}")
    settings = {dest: getattr(args, dest) for dest in _FLAGS}
    if args.files:
        settings["files"] = tuple(str(Path(f).resolve()) for f in args.files)
    time_limit = None
    if args.resume:
        time_limit = args.minutes * 60 if args.minutes else None
    elif args.minutes is not None:
        settings["minutes"] = args.minutes
        time_limit = args.minutes * 60 if settings["steps"] else None
    lead = rank_from_env() == 0  # under torchrun the other ranks train silently
    world = world_from_env()
    # the numpy kernels' settings: the environment is read here, once (RNN_DISSECT_GEMM, …)
    kernels = Preference.from_env() if args.backend == "numpy" else None
    engine = "numpy kernels" if args.backend == "numpy" else f"PyTorch on {args.device}"
    if world > 1:
        engine += f" × {world} processes (DistributedDataParallel)"
    live = _Live(args.quiet, engine)
    out = Path(args.out)
    had_cache = RunDir(out).cache_dir().exists()  # OUT/.cache before this command
    try:
        trainer = open_run(
            out,
            settings,
            resume=args.resume,
            force=args.force,
            report=live if lead else None,
            backend=args.backend,
            device=args.device,
            kernels=kernels,
        )
        chosen = getattr(trainer.backend, "kernels", None)  # the numpy backend's, resolved
        if chosen is not None:
            live.engine = f"numpy kernels ({chosen.describe()})"
        how = trainer.fit(time_limit)
    except KeyboardInterrupt:
        live.stop()
        if (out / "trainer.safetensors").is_file():
            where = f"{out}/model.safetensors holds the last checkpoint"
        elif (out / "config.json").is_file():  # claimed, nothing saved: --resume cannot go on
            where = f"{out} has no checkpoint yet; start again with --force"
        else:
            where = "nothing was written"
        print(f"stopped without saving; {where}", file=sys.stderr)
        return 130
    finally:
        live.stop()
        if lead and (not had_cache or RunDir(out).holds_run()):  # never `--out ~`'s .cache
            RunDir(out).remove_cache()
    st, cfg = trainer.state, trainer.cfg
    if not lead:
        return 130 if how == "interrupted" else 0
    best = (
        f"best val {st.best_val:.4f} at step {st.best_step}"
        if st.best_step >= 0
        else "no validation"
    )
    print(f"{out}: step {st.step}/{cfg.steps}, {best}; sample it with `rnn-dissect sample {out}`")
    print(f"loss curves and samples: {run_report.write(out)}")
    if how != "done":
        why = "interrupted" if how == "interrupted" else "time budget used"
        print(f"{why}: saved; continue with `rnn-dissect train --resume --out {out}`")
    return 130 if how == "interrupted" else 0
