"""Training loop for character models: truncated BPTT, clipping, schedule, checkpoints, resume.

One optimizer step k (B streams × S characters; the state carried over from step k − 1
without a gradient through it, reset to zeros when the streams wrap around):

    x, y, reset = Streams(train, B, S).batch_at(k)                          # (B, S) each
    loss, grads, carry = KERNELS[cell].forward_backward(params, x, y, carry, backend=kernels)
    grads ← grads · min(1, clip / ‖grads‖₂)                                   # global norm
    params ← optimizer(params, grads, lr_at(cfg, k))

Everything a step depends on — the batch, the learning rate, the dropout masks (drawn from
a PCG64 generator whose state is saved) — is a function of the saved state, so a run that
stops and resumes gives bit-identical weights to one that never stopped. See
:mod:`rnn_dissect.train.rundir` for the files of a run directory and how each is written.

Learning rate: :func:`rnn_dissect.train.config.lr_at` (warm-up, then constant or cosine).

Time budget: a new run without ``steps`` trains for ``minutes``; :mod:`rnn_dissect.train.budget`
sizes ``steps`` while it runs (provisional after the warm-up, re-measured while the learning
rate is at its peak, final when the decay is due: the cosine spans the last ``decay_frac`` of
the run) and each sizing is written to ``config.json`` — ``--steps N --decay-start K`` repeats
the run exactly. A run stopped before the final sizing resumes with the count it had and the
peak rate throughout. The run may overrun by 10% to finish its schedule. A ``time_limit``
(``--minutes`` with ``--steps``, or on resume) stops the invocation when it runs out, with a
checkpoint; ``--resume`` continues to the same ``steps``.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect import optim
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig, init_params
from rnn_dissect.train.backends import TrainBackend, evaluate, make_backend, rank_from_env
from rnn_dissect.train.budget import Budget, Sizing
from rnn_dissect.train.config import RESUMABLE, TrainConfig, flag, lr_at
from rnn_dissect.train.data import Corpus, Streams, load_corpus
from rnn_dissect.train.kernels import Backend, Preference
from rnn_dissect.train.rundir import RunDir, TrainState
from rnn_dissect.train.sample import default_prime, sample
from rnn_dissect.train.snapshot import Norms, unit_param_norms
from rnn_dissect.train.snapshot import write as write_snapshot

__all__ = ["Report", "TrainConfig", "Trainer", "evaluate", "lr_at", "open_run"]

Report = Callable[[str, dict[str, Any]], None]  # (event, fields): start log sample note end
_clock = time.perf_counter  # the trainer's clock (a test may replace it)


class _StopFlag:
    """First Ctrl-C (or SIGTERM): finish the current step, save, stop. Second: stop at once,
    without saving (the last checkpoint stays as it was)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, report: Report) -> None:
        self.set, self.report = False, report
        self.old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self.old = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        self.report(
            "note", {"text": "stopping after this step (Ctrl-C again: stop without saving)"}
        )

    def __exit__(self, *exc: object) -> None:
        for sig, old in self.old.items():
            signal.signal(sig, old)


class Trainer:
    """A run in progress: configuration, data, state and the run directory it saves to."""

    def __init__(
        self,
        run: RunDir,
        cfg: TrainConfig,
        corpus: Corpus,
        state: TrainState,
        report: Report | None = None,
        backend: TrainBackend | None = None,
    ) -> None:
        self.run, self.cfg, self.state = run, cfg, state
        self.report: Report = report or (lambda event, fields: None)
        self.model_cfg = ModelConfig(cfg.cell, corpus.vocab, cfg.hidden_size, cfg.num_layers)
        self.train_data, self.val_data = corpus.split(cfg.val_frac)
        self.streams = Streams(self.train_data, cfg.batch_size, cfg.seq_len)
        if cfg.val_frac > 0 and len(self.val_data) < 2:
            raise UserError(
                "the validation split is under 2 characters; raise --val-frac or use --val-frac 0"
            )
        self.val = self.val_data[: cfg.val_chars + 1]
        probe_src = self.val_data if len(self.val_data) >= 2 else self.train_data
        self.probe = "".join(corpus.vocab[i] for i in probe_src[: cfg.probe_chars])
        # the arithmetic of a step and of a validation (numpy, or --backend torch)
        self.backend = backend or make_backend("numpy", state, cfg)
        self.lead = self.backend.rank == 0  # under torchrun, rank 0 alone writes the run
        self.val_seconds: list[float] = []
        self.saved_step = state.step if state.step > 0 else -1  # step of the checkpoint on disk
        self.grad_norms: Norms | None = None  # per-unit norms of the last step's gradient

    # ------------------------------------------------------------------ pieces
    def model(self) -> CharModel:
        """The live weights as a CharModel (from the backend's tensors)."""
        return CharModel(self.model_cfg, self.backend.params())

    def step(self) -> tuple[float, float]:
        """One optimizer step; returns (loss, gradient norm before clipping)."""
        cfg, st = self.cfg, self.state
        x, y, reset = self.streams.batch_at(st.step)
        inspect = None
        if cfg.snapshot_every and (st.step + 1) % cfg.snapshot_every == 0:  # before clipping

            def inspect(grads: dict[str, np.ndarray]) -> None:
                self.grad_norms = unit_param_norms(grads, cfg.cell, cfg.num_layers)

        out = self.backend.step(x, y, reset, lr_at(cfg, st.step), inspect)
        if not out.finite:  # the backend did not apply the update
            bad = "nan" if math.isnan(out.loss) or math.isnan(out.norm) else "inf"
            saved = f"step {self.saved_step}" if self.saved_step >= 0 else "none saved yet"
            raise UserError(
                f"the loss became {bad} at step {st.step + 1}; stopped — {self.run.path}/model."
                f"safetensors is the last good checkpoint ({saved}); lower --lr (now {cfg.lr:g}) "
                f"or clip harder (--clip, now {cfg.clip:g}) and --resume"
            )
        st.step += 1
        return out.loss, out.norm

    def validate(self) -> float | None:
        if self.cfg.val_frac == 0:
            return None
        t0 = _clock()
        val = self.backend.evaluate(self.val)
        self.val_seconds.append(_clock() - t0)  # what a validation costs, for time sizing
        return val

    def save(self) -> None:
        self.backend.pull()  # every rank takes part (the carried state is gathered)
        if self.lead:
            self.run.save_state(self.state, self.model())
        self.saved_step = self.state.step

    def _resized(self, sizing: Sizing, budget: Budget) -> None:
        """Adopt the budget's new schedule: config.json records it; the terminal hears of the
        first and the final one (the progress bar of every one)."""
        steps, k0 = sizing.steps, sizing.decay_start
        first = self.cfg.steps == 0  # a budgeted run has no step count until its first sizing
        self.cfg = replace(self.cfg, steps=steps, decay_start=k0)
        if self.lead:
            self.run.write_config(self.cfg, self.model_cfg)
        if first or sizing.final:
            text = f"{sizing.per_step * 1e3:.0f} ms/step: {steps} steps fit in "
            text += f"{budget.seconds / 60:g} min; " + (
                f"the decay starts at step {k0} (recorded in config.json; --steps {steps} "
                f"--decay-start {k0} repeats this run)"
                if sizing.final
                else f"re-measured every {budget.RESIZE_EVERY:.0%} of the budget until it is "
                f"fixed at {budget.due:.0%}"
            )
            self.report("note", {"text": text})
        self.report("sized", {"steps": steps})

    def _follow_rank0(self) -> None:
        """Under torchrun each rank sizes the budget from its own clock: every rank takes
        rank 0's (steps, decay_start), so all stop at the same step (two small broadcasts a
        step; nothing with one process)."""
        cfg, agree = self.cfg, self.backend.agree
        steps, k0 = agree(cfg.steps), agree(cfg.decay_start)
        if (steps, k0) != (cfg.steps, cfg.decay_start):
            self.cfg = replace(cfg, steps=steps, decay_start=k0)

    # ------------------------------------------------------------------ the loop
    def fit(self, time_limit: float | None = None) -> str:
        """Train until ``steps`` (or ``time_limit`` seconds, or Ctrl-C); save; return why it
        stopped: "done", "time" or "interrupted"."""
        st, cfg = self.state, self.cfg
        t_begin, base = _clock(), st.train_seconds
        budget = None
        if cfg.steps == 0:  # sized to --minutes while it runs (train/budget.py)
            budget = Budget(
                cfg.minutes * 60,
                warmup=cfg.warmup,
                decay_frac=cfg.decay_frac,
                eval_every=cfg.eval_every,
                clock=lambda: _clock(),  # late-bound: a test may replace _clock
                val_seconds=self.val_seconds,
            )
        # a sized run may overrun its estimate by 10% to finish its schedule; a limit is a limit
        limit = time_limit if time_limit is not None else (1.1 * budget.seconds if budget else None)
        self.report("start", {"step": st.step, "steps": cfg.steps, "config": cfg})
        if cfg.snapshot_every and st.step == 0 and self.lead:
            self.snapshot()
        self._losses: list[float] = []  # since the last metrics line
        self._seconds = 0.0
        how = "done"
        with _StopFlag(self.report) as stop:
            while st.step < (self.cfg.steps or (budget.calib if budget else 0)):
                t0 = _clock()
                if budget:
                    budget.step_started()
                loss, norm = self.step()
                self._losses.append(loss)
                self._seconds += _clock() - t0
                val = None
                if budget:
                    sizing, val = budget.after_step(st.step, self.validate)
                    if sizing:
                        self._resized(sizing, budget)
                    self._follow_rank0()
                self._bookkeep(norm, val, base + _clock() - t_begin)
                st.train_seconds = base + _clock() - t_begin
                last = st.step == self.cfg.steps
                # under torchrun every rank must stop at the same step: rank 0 decides
                why = 2 if stop.set else int(limit is not None and _clock() - t_begin >= limit)
                why = self.backend.agree(why)
                if why == 2 or (why == 1 and not last):
                    how = "interrupted" if why == 2 else "time"
                    break
                if st.step % self.cfg.save_every == 0 and not last:
                    self.save()
            st.train_seconds = base + _clock() - t_begin
            self.save()
        self.report(
            "end",
            {
                "how": how,
                "step": st.step,
                "steps": self.cfg.steps,
                "best_val": st.best_val,
                "best_step": st.best_step,
            },
        )
        return how

    def _bookkeep(self, norm: float, val: float | None, elapsed: float) -> None:
        """After step k: validate, log, keep the best, sample, snapshot — whatever is due."""
        cfg, st, k = self.cfg, self.state, self.state.step
        last = k == cfg.steps
        if val is None and (k % cfg.eval_every == 0 or last):
            val = self.validate()
        if k % cfg.log_every == 0 or val is not None or last:
            rec = {
                "step": k,
                "train_loss": float(np.mean(self._losses)),  # over the steps since the last line
                "chars_per_s": round(
                    len(self._losses) * cfg.batch_size * cfg.seq_len / max(self._seconds, 1e-9), 1
                ),
                "lr": lr_at(cfg, k - 1),
                "grad_norm": norm,
                "epoch": round(k / self.streams.steps_per_epoch, 4),
                "elapsed_s": round(elapsed, 3),
            }
            if val is not None:
                rec["val_loss"] = val
            if self.lead:
                self.run.log(rec)
            self.report("log", rec)
            self._losses, self._seconds = [], 0.0
        self.report("step", {"step": k})
        if val is not None and val < st.best_val:
            st.best_val, st.best_step = val, k
            if self.lead:
                self.run.save_best(self.model(), k, val)
        if cfg.sample_every and k % cfg.sample_every == 0 and self.lead:
            self.sample()
        if cfg.snapshot_every and k % cfg.snapshot_every == 0 and self.lead:
            self.snapshot()

    def sample(self) -> None:
        """A sample from the current weights, from its own generator (training draws are untouched)."""
        m = self.model()
        text = sample(
            m, default_prime(m), self.cfg.sample_chars, 0.8, 0, self.cfg.seed + self.state.step
        )
        self.run.add_sample(self.state.step, text)
        self.report("sample", {"step": self.state.step, "text": text})

    def snapshot(self) -> None:
        """The weights, the probe text and the per-unit norms of the weights and of the
        (unclipped) gradient of the step just taken, for the neurons analyses."""
        with self.run.snapshot_dir(self.state.step) as d:
            grad = self.grad_norms if self.state.step > 0 else None  # step 0: no step yet
            write_snapshot(d, self.model(), self.probe, grad)
        self.grad_norms = None


def make_optimizer(cfg: TrainConfig, params: dict[str, np.ndarray]) -> optim.Optimizer:
    """``cfg.optimizer`` with torch's defaults (the learning rate comes from the schedule)."""
    return optim.OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr)


def new_state(cfg: TrainConfig, model_cfg: ModelConfig) -> TrainState:
    """Initial weights (PyTorch's init, from ``seed``), fresh optimizer, zero carried state."""
    params = init_params(model_cfg, np.random.default_rng(cfg.seed), np.float32)
    L, B, H = cfg.num_layers, cfg.batch_size, cfg.hidden_size
    carry = tuple(np.zeros((L, B, H), np.float32) for _ in model_cfg.states)
    return TrainState(
        step=0,
        params=params,
        opt=make_optimizer(cfg, params),
        carry=carry,
        rng=np.random.default_rng([cfg.seed, 1]),  # dropout masks
    )


def open_run(
    out: str | Path,
    settings: dict[str, Any],
    *,
    resume: bool = False,
    force: bool = False,
    report: Report | None = None,
    backend: str = "numpy",
    device: str = "cpu",
    kernels: Backend | Preference | None = None,
) -> Trainer:
    """A new run in ``out`` from ``settings`` (TrainConfig fields), or the run there resumed
    with the changes ``settings`` makes (only :data:`RESUMABLE` fields may differ), computed
    by ``backend`` (numpy | torch) on ``device`` (cpu | cuda, torch only); the numpy backend
    computes with ``kernels`` (a Backend, or a Preference resolved at the run's shapes;
    default ``Preference()``, see :mod:`rnn_dissect.train.kernels.choice`). Under torchrun every rank
    calls this; rank 0 alone writes the directory."""
    run = RunDir(Path(out))
    lead = rank_from_env() == 0
    if resume:
        cfg = run.read_config(TrainConfig)
        changed = {k: v for k, v in settings.items() if v is not None and getattr(cfg, k) != v}
        fixed = sorted(set(changed) - RESUMABLE - {"files"})
        if fixed:
            k = fixed[0]
            raise UserError(
                f"{flag(k)} {changed[k]} differs from the run's {getattr(cfg, k)}; "
                "a resumed run keeps its model, data split and optimizer (drop the flag, or start "
                "a new run with another --out)"
            )
        cfg = replace(cfg, **changed)
        cfg.check()
        vocab = run.read_vocab()
        cache = run.cache_dir() if lead else None  # other ranks encode in memory
        corpus = load_corpus(cfg.files, errors=cfg.errors, vocab=vocab, cache_dir=cache)
        chars = run.corpus_chars()
        if "files" in changed and chars is not None and chars != len(corpus):  # moved: same size
            raise UserError(
                f"the files given hold {len(corpus):,} characters, the run's text "
                f"{chars:,}; a resumed run keeps its text and data split (drop the file "
                "arguments, or start a new run with another --out)"
            )
        model_cfg = ModelConfig(cfg.cell, corpus.vocab, cfg.hidden_size, cfg.num_layers)
        state = run.load_state(model_cfg, cfg.batch_size, lambda p: make_optimizer(cfg, p))
        if cfg.steps and state.step >= cfg.steps:
            raise UserError(
                f"{run.path} has trained all its {cfg.steps} steps; pass --steps N with N > "
                f"{state.step} to train further"
            )
        engine = make_backend(backend, state, cfg, device, resumed_kernels(run, kernels))
        trainer = Trainer(run, cfg, corpus, state, report, engine)  # checks the text first
        if lead:
            run.truncate_logs(state.step)
            run.write_config(cfg, model_cfg, kernels=kernels_record(engine))
        return trainer
    cfg = TrainConfig(**{k: v for k, v in settings.items() if v is not None})
    cfg.check()
    if lead:
        run.check_new(force)  # refuse early; remove nothing until the text has proved usable
    corpus = load_corpus(cfg.files, errors=cfg.errors, cache_dir=run.cache_dir() if lead else None)
    model_cfg = ModelConfig(cfg.cell, corpus.vocab, cfg.hidden_size, cfg.num_layers)
    state = new_state(cfg, model_cfg)
    engine = make_backend(backend, state, cfg, device, kernels)
    trainer = Trainer(run, cfg, corpus, state, report, engine)
    if lead:
        run.claim(force)
        run.write_config(cfg, model_cfg, corpus, kernels_record(engine))
    return trainer


def kernels_record(engine: TrainBackend) -> dict[str, Any] | None:
    """What config.json records of the numpy kernels' Backend (None for --backend torch)."""
    bk = getattr(engine, "kernels", None)
    return {"gemm": bk.gemm, "fused": bk.fused} if isinstance(bk, Backend) else None


def resumed_kernels(
    run: RunDir, kernels: Backend | Preference | None
) -> Backend | Preference | None:
    """A resumed run computes with the GEMM library it trained with, so it continues bit for
    bit whatever the choice cache says now (a busy machine measures again, and
    ``doctor --measure`` may have changed it); a library asked for by name
    (``RNN_DISSECT_GEMM``) or one no longer installed goes back to the usual choice."""
    pref = kernels or Preference()
    gemm = run.read_gemm()
    if not isinstance(pref, Preference) or pref.gemm != "auto" or gemm is None:
        return kernels
    try:
        return Backend(gemm, pref.use_fused)
    except ValueError:  # e.g. oneMKL uninstalled since
        return kernels
