"""What ``rnn-dissect tour`` writes: the post "Dissecting the RNN" as one page, every figure
and every number computed in this run.

:func:`write_tour` runs, in order (each a command's own computation,
:mod:`rnn_dissect.reports.tour_parts`):

1. open the training run (reads the corpus first, so a bad ``--corpus`` fails in a second);
2. ``nn`` (3:1:1, ReLU on and off), ``rnn`` and ``rnn --cell lstm`` on "hello" with the
   explorer's data for both, ``flow``;
3. ``train``: a small LSTM for what is left of the budget, snapshots spread over the run;
4. ``neurons`` on the trained run;
5. the page: ``DIR/index.html`` (:mod:`rnn_dissect.render.tour_page`) and ``DIR/tour.json``
   (the numbers the prose uses, :mod:`rnn_dissect.reports.tour_numbers`, the settings and
   the time each part took).

Besides those two files the directory keeps what the commands would have written:
``run/`` (the training run: checkpoints, snapshots) and ``neurons/`` (neurons.json,
tuning.json, contexts.json, figures), so every number can be checked against them.

Time: the budget is ``minutes``; training gets it minus the time the other parts took
(measured), the neuron analysis's cost (measured before training on one snapshot's worth of
it, :func:`~rnn_dissect.reports.tour_parts.neurons_cost`) and :data:`AFTER_TRAINING_S` for
the page.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from rnn_dissect.errors import UserError, make_dir, writable_dir
from rnn_dissect.render.tour_page import TourInputs, render
from rnn_dissect.reports import tour_numbers as nums
from rnn_dissect.reports import tour_parts as parts
from rnn_dissect.reports.explore import page_html
from rnn_dissect.train.kernels.choice import Preference
from rnn_dissect.train.loop import TrainConfig, Trainer, open_run
from rnn_dissect.train.sample import default_prime, sample
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = ["AFTER_TRAINING_S", "TINY", "TourConfig", "write_tour"]

AFTER_TRAINING_S = 6.0  # seconds kept for the page (and the analysis's own overheads)
MIN_TRAIN_S = 3.0  # training gets at least this, even when the budget is spent


@dataclass(frozen=True)
class TourConfig:
    minutes: float = 3.0  # the whole tour's time budget
    corpus: str | None = None  # the text the LSTM trains on (None: the stdlib default)
    cell: str = "lstm"  # the trained model of the neurons section
    hidden: int = 128
    layers: int = 1  # one layer learns most in a few minutes (and has half the units to score)
    batch: int = 32
    seq_len: int = 64
    neuron_chars: int = 10_000  # validation characters the neuron analysis reads
    probe_chars: int = 500  # the snapshots' probe text
    snapshots: int = 8  # about this many snapshots over the run (plus the first ones)
    seed: int = 0


# For tests: a model small enough that the whole tour takes seconds.
TINY = TourConfig(minutes=0.1, hidden=16, layers=1, batch=8, seq_len=32, neuron_chars=2000,
                  probe_chars=200, snapshots=4)  # fmt: skip


def check_out(out: Path) -> None:
    """``out`` must be new, empty, or a previous tour's directory (it holds ``tour.json``)."""
    writable_dir(out)
    if out.is_dir() and any(out.iterdir()) and not (out / "tour.json").is_file():
        raise UserError(
            f"--out {out} is not empty and holds no tour; choose a new directory or empty it"
        )


class _Stages:
    """The terminal's progress: one line per part, a bar for training (rich, on stderr)."""

    def __init__(self, quiet: bool) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<42}"),
            BarColumn(bar_width=16),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, key: str, description: str) -> Iterator[Any]:
        task = self.progress.add_task(description, total=1, info="")
        t0 = time.perf_counter()
        yield task
        self.seconds[key] = round(time.perf_counter() - t0, 3)
        self.progress.update(task, completed=self.progress.tasks[task].total or 1)


class _TrainReport:
    """The trainer's events → the progress bar; once the run is sized, snapshots spread
    evenly (about ``cfg.snapshots`` of them)."""

    def __init__(self, stages: _Stages, task: Any, want: int) -> None:
        self.stages, self.task, self.want = stages, task, want
        self.trainer: Trainer | None = None

    def __call__(self, event: str, f: dict[str, Any]) -> None:
        p = self.stages.progress
        if event == "sized" and self.trainer is not None:
            every = max(1, f["steps"] // self.want)
            self.trainer.cfg = replace(self.trainer.cfg, snapshot_every=every)
            p.update(self.task, total=f["steps"])
        elif event == "step":
            p.update(self.task, completed=f["step"])
        elif event == "log" and "val_loss" in f:
            p.update(self.task, info=f"val loss {f['val_loss']:.3f}")


def _open_training(
    out: Path, cfg: TourConfig, report: _TrainReport, kernels: Preference | None
) -> Trainer:
    settings: dict[str, Any] = {
        "cell": cfg.cell,
        "hidden_size": cfg.hidden,
        "num_layers": cfg.layers,
        "batch_size": cfg.batch,
        "seq_len": cfg.seq_len,
        "minutes": cfg.minutes,  # replaced by what is left once the other parts are done
        "snapshot_every": 10,  # replaced once the run is sized
        "probe_chars": cfg.probe_chars,
        "sample_every": 0,
        "eval_every": 50,
        "val_chars": 20_000,
        "save_every": 10**9,  # the run saves at its end; nothing resumes a tour
        "seed": cfg.seed,
    }
    if cfg.corpus is not None:
        settings["files"] = (str(Path(cfg.corpus).resolve()),)
    try:
        trainer = open_run(out / "run", settings, force=True, report=report, kernels=kernels)
    except UserError as e:  # too short: the tour has no --batch or --seq-len to lower
        if "--seq-len" not in str(e):
            raise
        need = math.ceil(cfg.batch * (cfg.seq_len + 1) / (1 - TrainConfig.val_frac))
        raise UserError(
            f"--corpus {cfg.corpus} is too short for the tour's training ({str(e).split(',')[0]}"
            f"); give a text of at least {need:,} characters"
        ) from None
    report.trainer = trainer
    return trainer


def write_tour(
    out: str | Path,
    cfg: TourConfig = TourConfig(),
    *,
    quiet: bool = False,
    kernels: Preference | None = None,
) -> Path:
    """Compute every part, write ``out/index.html`` and ``out/tour.json``; return the page.
    ``kernels``: the training's GEMM preference (:mod:`rnn_dissect.train.kernels.choice`;
    default ``Preference()``)."""
    if not (math.isfinite(cfg.minutes) and cfg.minutes > 0):
        raise UserError(f"--minutes {cfg.minutes} must be a positive number")
    if cfg.corpus is not None and not Path(cfg.corpus).is_file():
        what = "is a directory" if Path(cfg.corpus).is_dir() else "does not exist"
        raise UserError(f"--corpus {cfg.corpus} {what}; pass a UTF-8 text file")
    out = Path(out)
    check_out(out)
    t_begin = time.perf_counter()
    st = _Stages(quiet)
    with st.progress:
        with st.stage("corpus", "reading the corpus") as task:
            report = _TrainReport(st, None, cfg.snapshots)
            make_dir(out)
            if not (out / "tour.json").is_file():  # claims the directory: a rerun may replace it
                (out / "tour.json").write_text('{"format": "rnn-dissect/tour", "numbers": null}\n')
            trainer = _open_training(out, cfg, report, kernels)  # the corpus proved usable:
            shutil.rmtree(out / "neurons", ignore_errors=True)  # a previous tour's, replaced
            st.progress.update(task, info=f"{len(trainer.train_data):,} characters")
        with st.stage("nn", "the 3:1:1 network (nn)"):
            nn = parts.nn_part()
        with st.stage("rnn", 'min-char-rnn\'s "hello", unrolled (rnn)'):
            rnn = parts.unrolled_part("rnn")
        with st.stage("lstm", "the same with an LSTM (rnn --cell lstm)"):
            lstm = parts.unrolled_part("lstm")
        with st.stage("flow", "how far back gradients reach (flow)"):
            flow = parts.flow_part()

        with st.stage("measure", "measuring what the analysis will cost"):
            # snapshots: about cfg.snapshots spread over the run, the early ones, the last
            n_val = min(cfg.neuron_chars, len(trainer.val_data))
            cost = parts.neurons_cost(trainer.model(), trainer.probe, cfg.snapshots + 4, n_val)
        budget = cfg.minutes * 60
        spent = time.perf_counter() - t_begin
        allowance = AFTER_TRAINING_S + cost
        train_s = max(MIN_TRAIN_S, budget - spent - allowance)
        trainer.cfg = replace(trainer.cfg, minutes=train_s / 60)
        what = f"training a small {cfg.cell.upper()} ({train_s:.0f} s)"
        train_task = report.task = st.progress.add_task(what, total=None, info="")
        t0 = time.perf_counter()
        if trainer.fit(time_limit=train_s) == "interrupted":  # Ctrl-C: the step ends, saved
            st.progress.update(train_task, info="stopped (Ctrl-C): the page uses what it learned")
        if trainer.cfg.snapshot_every and trainer.state.step % trainer.cfg.snapshot_every:
            trainer.snapshot()  # the trained weights are always the last snapshot
        st.seconds["train"] = round(time.perf_counter() - t0, 3)
        st.progress.update(train_task, total=trainer.state.step, completed=trainer.state.step)

        with st.stage("neurons", "what the neurons learned (neurons)"):
            vocab = trainer.model_cfg.vocab  # the head of the validation split, as `neurons`
            val = trainer.val_data[: cfg.neuron_chars]
            neu = parts.neurons_part(out / "run", out / "neurons", "".join(vocab[i] for i in val))
        with st.stage("page", "writing the page"):
            numbers: dict[str, Any] = {}
            numbers |= nums.nn_numbers(nn)
            numbers |= nums.unrolled_numbers(rnn, parts.TEXT)
            numbers |= nums.unrolled_numbers(lstm, parts.TEXT)
            numbers |= nums.flow_numbers(flow)
            numbers |= nums.neuron_numbers(neu)
            numbers |= _train_numbers(trainer, train_s)
            model = trainer.model()
            text = sample(model, default_prime(model), 240, 0.8, 0, cfg.seed)
            total = time.perf_counter() - t_begin
            numbers["run.seconds"] = round(total, 1)
            numbers["run.minutes"] = cfg.minutes
            doc = {
                "format": "rnn-dissect/tour",
                "version": 1,
                "config": asdict(cfg),
                "seconds": st.seconds,
                "numbers": numbers,
            }
            page = render(
                TourInputs(
                    numbers, nn.svg, nn.off_svg, rnn.d, lstm.d,
                    page_html(rnn.explorer), page_html(lstm.explorer), flow,
                    neu.scores, neu.snapshots, neu.curves, neu.contexts, text,
                )
            )  # fmt: skip
            index = out / "index.html"
            write_atomic(index, [page.encode("utf-8")])
    doc["seconds"] = st.seconds  # now with the page's own
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    write_atomic(out / "tour.json", [text.encode("utf-8")])
    trainer.run.remove_cache()
    return index


def _train_numbers(trainer: Trainer, train_s: float) -> dict[str, Any]:
    c, s = trainer.cfg, trainer.state
    return {
        "train.cell": c.cell.upper(),
        "train.H": c.hidden_size,
        "train.L": c.num_layers,
        "train.steps": s.step,
        "train.seconds": round(s.train_seconds, 1),
        "train.budget_s": round(train_s, 1),
        "train.chars": s.step * c.batch_size * c.seq_len,
        "train.best_val": s.best_val if s.best_step >= 0 else None,
        "train.best_step": s.best_step if s.best_step >= 0 else None,
        "train.vocab": len(trainer.model_cfg.vocab),
    }
