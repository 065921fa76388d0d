"""A training run's directory: what is in it, and writing each file so nothing is ever lost.

    config.json          the TrainConfig, the model's shape and vocabulary, the corpus, and
                         the GEMM library the numpy kernels trained with (a resume keeps it)
    model.safetensors    latest weights — a checkpoint that loads on its own (rnn_dissect.weights.checkpoint)
    best.safetensors     the weights with the lowest validation loss so far
    trainer.safetensors  everything to continue bit-identically: weights, optimizer slots,
                         carried hidden state, step, dropout RNG state (PCG64, JSON), best loss
    metrics.jsonl        one JSON object per logged step: step, train_loss, val_loss (when
                         measured), chars_per_s, lr, grad_norm, epoch, elapsed_s
    samples.txt          periodic samples, each under a ``--- step N ---`` line
    snapshots/stepNNNNNNN/  the weights at that step, the probe text and per-unit weight and
                         gradient norms (rnn_dissect.train.snapshot)

Every file is written whole to a temporary name, flushed, and renamed over the old one (a
snapshot directory is renamed into place), so a crash, Ctrl-C or full disk mid-write leaves
the previous version intact. ``trainer.safetensors`` is written before ``model.safetensors``:
resuming reads only the former, which holds its own copy of the weights, so the two never
have to agree. On resume, metric lines, samples and snapshots past the resumed step (left by
a run killed between checkpoints) are dropped, so the files read as one uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError, make_dir, writable_dir
from rnn_dissect.nets.model import CharModel, ModelConfig, check_params, param_shapes
from rnn_dissect.train.data import Corpus
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights import safetensors_file as stf

__all__ = ["RunDir", "TrainState"]

FORMAT = "rnn-dissect/run-1"
OWNED = (
    "config.json",
    "model.safetensors",
    "best.safetensors",
    "trainer.safetensors",
    "metrics.jsonl",
    "samples.txt",
    "snapshots",
)  # what --force removes


@dataclass
class TrainState:
    """What evolves during training (all of it saved in ``trainer.safetensors``)."""

    step: int  # optimizer steps done
    params: dict[str, np.ndarray]  # float32, torch names
    opt: Any  # an rnn_dissect.optim optimizer (state_dict / load_state_dict)
    carry: tuple[np.ndarray, ...]  # hidden state carried into the next step, (L, B, H) each
    rng: np.random.Generator  # dropout masks
    best_val: float = math.inf  # lowest validation loss so far
    best_step: int = -1
    train_seconds: float = 0.0  # wall-clock time spent training, across resumes


@contextmanager
def _resumable(what: str) -> Iterator[None]:
    """A failed write (a full disk) as one line that says what is intact and how to go on."""
    try:
        yield
    except UserError as e:
        raise UserError(
            f"{what} failed: {e}; free disk space, then continue with --resume"
        ) from None


def _write_text(path: Path, text: str) -> None:
    with _resumable(f"writing {path.name}"):
        stf.write_atomic(path, [text.encode("utf-8")])


def _of_type(value: Any, default: Any) -> bool:
    """``value`` (from config.json) fits the field whose default is ``default``: a number for
    a float, a whole number for an int, a string, or (``files``) None or strings."""
    if isinstance(value, bool):
        return False
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (int, str)):
        return isinstance(value, type(default))
    return value is None or (isinstance(value, tuple) and all(isinstance(x, str) for x in value))


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._metrics: list[str] | None = None
        self._samples: str | None = None

    def file(self, name: str) -> Path:
        return self.path / name

    # ------------------------------------------------------------- creating
    def check_new(self, force: bool) -> None:
        """Refuse to reuse a directory holding a run unless ``force``, or holding anything
        else at all; the corpus cache (this run's, or one a killed run left) does not count."""
        if not writable_dir(self.path).exists():  # refuses a file, or one in its parents' place
            return
        if not any(p.name != self.cache_dir().name for p in self.path.iterdir()):
            return
        if not self.holds_run():  # --force replaces a run's files, never someone else's
            raise UserError(
                f"{self.path} is not empty and holds no run; choose a new or empty --out "
                "(--force replaces only a run)"
            )
        if not force:
            raise UserError(
                f"{self.path} holds a run; continue it with --resume, start over with --force, "
                "or choose another --out"
            )

    def holds_run(self) -> bool:
        """A run is here, perhaps a damaged one: a run's config.json, or a trainer state."""
        if self.file("trainer.safetensors").is_file():
            return True
        try:
            doc = json.loads(self.file("config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(doc, dict) and doc.get("format") == FORMAT

    def claim(self, force: bool) -> None:
        """Create the directory; with ``force`` remove a previous run's files (only those).
        Called after the corpus is loaded: the cache it may have written is this run's."""
        self.check_new(force)
        make_dir(self.path)
        for name in OWNED:
            p = self.file(name)
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def cache_dir(self) -> Path:
        return self.file(".cache")  # a memory-mapped encoding of a large corpus

    def remove_cache(self) -> None:
        """Remove the corpus encoding and its folder, if it holds nothing else: ``--out ~``
        names a directory whose ``.cache`` is not ours."""
        cache = self.cache_dir()
        with contextlib.suppress(OSError):  # absent (--out a file, too), or not empty
            (cache / "corpus.bin").unlink(missing_ok=True)
            cache.rmdir()

    # ------------------------------------------------------------- config
    def write_config(
        self,
        cfg: Any,
        model_cfg: ModelConfig,
        corpus: Corpus | None = None,
        kernels: dict[str, Any] | None = None,
    ) -> None:
        """config.json; on resume (``corpus`` None) the corpus and kernels entries are kept
        unless given. ``kernels``: ``{"gemm": "mkl" | "numpy", "fused": bool}``."""
        old = self._read_json() if corpus is None else {}
        doc = {
            "format": FORMAT,
            "train": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
            "model": {
                "cell": model_cfg.cell,
                "hidden_size": model_cfg.hidden_size,
                "num_layers": model_cfg.num_layers,
                "vocab": list(model_cfg.vocab),
            },
            "corpus": old.get("corpus")
            if corpus is None
            else {
                "sources": len(corpus.sources),
                "chars": len(corpus),
                "first": corpus.sources[:3],
            },
        }
        if kernels or old.get("kernels"):
            doc["kernels"] = kernels or old.get("kernels")
        self.path.mkdir(parents=True, exist_ok=True)
        _write_text(self.file("config.json"), json.dumps(doc, indent=1, ensure_ascii=False) + "\n")

    def _read_json(self) -> dict[str, Any]:
        p = self.file("config.json")
        if not p.is_file():
            raise UserError(
                f"{self.path} has no config.json; it is not a run directory (start one without --resume)"
            )
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise UserError(
                f"{p} is unreadable ({str(e)[:80]}); the run directory is damaged"
            ) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise UserError(f"{p} is not an rnn-dissect run config ({FORMAT})")
        return doc

    def read_gemm(self) -> str | None:
        """The GEMM library the run's numpy kernels trained with, if it says (older runs and
        torch-backend runs do not)."""
        kernels = self._read_json().get("kernels")
        gemm = kernels.get("gemm") if isinstance(kernels, dict) else None
        return gemm if isinstance(gemm, str) else None

    def read_config(self, cls: type) -> Any:
        train = self._read_json().get("train", {})
        known = {f.name: f for f in fields(cls)}
        if not isinstance(train, dict):
            train = {"train": train}  # reported below as an unexpected value
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in train.items() if k in known}
        damaged = f"{self.file('config.json')} is damaged"
        fix = "restore it, or start a new run with --force"
        for k, v in args.items():  # each value of its field's type: a hand edit fails here
            if not _of_type(v, known[k].default):
                raise UserError(f"{damaged}: train.{k} is {str(v)[:40]!r}; {fix}")
        try:
            return cls(**args)
        except (TypeError, ValueError) as e:
            raise UserError(f"{damaged} ({str(e)[:80]}); {fix}") from None

    def corpus_chars(self) -> int | None:
        """How many characters the run's text had when it started (None if not recorded)."""
        corpus = self._read_json().get("corpus")
        chars = corpus.get("chars") if isinstance(corpus, dict) else None
        return chars if isinstance(chars, int) else None

    def read_vocab(self) -> tuple[str, ...]:
        return tuple(self._read_json()["model"]["vocab"])

    # ------------------------------------------------------------- state
    def save_state(self, st: TrainState, model: CharModel) -> None:
        """trainer.safetensors, then model.safetensors (see the module docstring)."""
        arrays = {f"param.{k}": v for k, v in st.params.items()}
        other: dict[str, Any] = {}  # non-float optimizer entries (a step count) go in metadata
        for k, v in st.opt.state_dict().items():
            a = np.asarray(v)
            if a.dtype in (np.float32, np.float64):
                arrays[f"opt.{k}"] = a
            else:
                other[k] = [a.dtype.str, a.tolist()]
        arrays.update({f"carry.{i}": s for i, s in enumerate(st.carry)})
        meta = {
            "format": "rnn-dissect/trainer-1",
            "step": str(st.step),
            "rng": json.dumps(st.rng.bit_generator.state, sort_keys=True),
            "best_val": repr(st.best_val),
            "best_step": str(st.best_step),
            "train_seconds": repr(st.train_seconds),
            "vocab": json.dumps(list(model.config.vocab)),
            "opt_other": json.dumps(other, sort_keys=True),
        }
        with _resumable(f"the checkpoint at step {st.step}"):
            stf.write(self.file("trainer.safetensors"), meta, arrays)
            checkpoint.save(model, self.file("model.safetensors"), {"step": str(st.step)})

    def load_state(
        self, model_cfg: ModelConfig, batch: int, make_opt: Callable[..., Any]
    ) -> TrainState:
        p = self.file("trainer.safetensors")
        if not p.is_file():
            raise UserError(
                f"{self.path} has no trainer.safetensors (no checkpoint yet); start over with --force"
            )
        damaged = (
            "the run cannot resume from it: restore it from a copy, or start over with --force"
        )
        try:
            info = stf.read_header(p)
            arrays = stf.read_tensors(p)
        except UserError as e:  # its reason, with the fix for a run
            raise UserError(f"{str(e).split('; ')[0]}; {damaged}") from None
        meta = info.metadata
        if meta.get("format") != "rnn-dissect/trainer-1":
            raise UserError(f"{p} is not an rnn-dissect trainer state; start over with --force")
        if json.loads(meta.get("vocab", "[]")) != list(model_cfg.vocab):
            raise UserError(
                f"{p} was trained with another vocabulary; start a new run (without --resume)"
            )
        saved = {k[6:]: v for k, v in arrays.items() if k.startswith("param.")}
        check_params(model_cfg, {k: v.shape for k, v in saved.items()}, f"{p} (damaged run)")
        bad = [k for k, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
        if bad:
            raise UserError(f"{p}: {stf.short(bad)} hold NaN or Inf; {damaged}")
        params_ok = {k: saved[k] for k in param_shapes(model_cfg)}  # torch order
        opt = make_opt(params_ok)
        slots = {k[4:]: v for k, v in arrays.items() if k.startswith("opt.")}
        for k, (dtype, value) in json.loads(meta.get("opt_other", "{}")).items():
            slots[k] = np.asarray(value, dtype=np.dtype(dtype))
        opt.load_state_dict(slots)
        carry = tuple(arrays[f"carry.{i}"] for i in range(model_cfg.n_states))
        if carry[0].shape[1] != batch:
            raise UserError(f"{p} carries state for --batch {carry[0].shape[1]}, not {batch}")
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(meta["rng"])
        return TrainState(
            int(meta["step"]),
            params_ok,
            opt,
            carry,
            rng,
            float(meta["best_val"]),
            int(meta["best_step"]),
            float(meta["train_seconds"]),
        )

    def save_best(self, model: CharModel, step: int, val: float) -> None:
        with _resumable(f"saving the best weights (step {step})"):
            checkpoint.save(
                model, self.file("best.safetensors"), {"step": str(step), "val_loss": repr(val)}
            )

    # ------------------------------------------------------------- logs
    def log(self, record: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl (rewritten whole, atomically)."""
        lines = self._metric_lines()
        lines.append(json.dumps(record, sort_keys=True, allow_nan=False))
        _write_text(self.file("metrics.jsonl"), "".join(s + "\n" for s in lines))

    def _metric_lines(self) -> list[str]:
        if self._metrics is None:
            p = self.file("metrics.jsonl")
            text = p.read_text(encoding="utf-8") if p.is_file() else ""
            self._metrics = [s for s in text.splitlines() if s.strip()]
        return self._metrics

    def add_sample(self, step: int, text: str) -> None:
        if self._samples is None:
            p = self.file("samples.txt")
            self._samples = p.read_text(encoding="utf-8") if p.is_file() else ""
        self._samples += f"--- step {step} ---\n{text}\n\n"
        _write_text(self.file("samples.txt"), self._samples)

    def truncate_logs(self, step: int) -> None:
        """Forget what a killed run logged after its last checkpoint (``step``)."""
        kept = []
        for s in self._metric_lines():
            try:
                if int(json.loads(s)["step"]) <= step:
                    kept.append(s)
            except (ValueError, KeyError, TypeError):
                pass  # a torn or foreign line
        self._metrics = kept
        _write_text(self.file("metrics.jsonl"), "".join(s + "\n" for s in kept))
        p = self.file("samples.txt")
        if p.is_file():
            parts = re.split(r"(?m)^(?=--- step \d+ ---$)", p.read_text(encoding="utf-8"))
            self._samples = "".join(
                s for s in parts if not (m := re.match(r"--- step (\d+)", s)) or int(m[1]) <= step
            )
            _write_text(p, self._samples)
        for d in sorted(self.file("snapshots").glob("step*")):
            if not d.name[4:].isdigit() or int(d.name[4:]) > step:
                shutil.rmtree(d)

    @contextmanager
    def snapshot_dir(self, step: int) -> Iterator[Path]:
        """A temporary directory to fill, renamed to snapshots/stepNNNNNNN when done."""
        final = self.file("snapshots") / f"step{step:07d}"
        tmp = final.with_name(f".{final.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        except OSError as e:
            raise UserError(
                f"cannot write the snapshot {final} ({e.strerror or e}); free disk space and --resume"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
