"""Checkpoints: a model as one ``.safetensors`` file of torch-named tensors; never a pickle.

The file holds exactly the tensors of :func:`rnn_dissect.nets.model.param_shapes`
(``rnn.weight_ih_l0`` … ``head.bias``; all float32 or all float64, saved in their own dtype)
and these metadata strings (the contract other tools read):

    format       "rnn-dissect/1"
    cell         "rnn" | "lstm" | "gru"
    hidden_size  H, decimal
    num_layers   L, decimal
    vocab        JSON list of the characters in index order
    nonlinearity "relu" for a vanilla RNN on ReLU (absent: tanh, as torch's default)

plus any extra keys the writer adds (the trainer's step, say; see ``read_info``). The same
tensors load into ``torch.nn.LSTM(V, H, L)`` + ``torch.nn.Linear(H, V)`` with
``safetensors.torch.load_file`` and ``load_state_dict`` as they are.

A *minimal* file as issue 3 describes it — the torch-named tensors and only ``vocab`` in the
metadata, no ``format`` — loads too: the cell is read off the ratio rows/columns of
``rnn.weight_hh_l0`` (1 RNN, 4 LSTM, 3 GRU), the hidden size off its columns, the layers off
the names ``rnn.weight_ih_l{k}``. :func:`save` always writes the full format.

    >>> import os, tempfile
    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> m = CharModel.init(ModelConfig("lstm", tuple("helo"), hidden_size=3), seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(m, os.path.join(d, "m.safetensors"), {"step": "0"})
    ...     m2 = load(d + "/m.safetensors")
    ...     info = read_info(d + "/m.safetensors")
    >>> m2.config == m.config, all((m2.params[k] == v).all() for k, v in m.params.items())
    (True, True)
    >>> info.metadata["cell"], info.metadata["vocab"], info.tensors["rnn.weight_hh_l0"]
    ('lstm', '["h", "e", "l", "o"]', ('F64', (12, 3)))

Every problem with a file (missing, foreign, truncated, corrupt, wrong tensors, NaN…) is a
one-line :class:`UserError`; see :mod:`rnn_dissect.weights.safetensors_file` for the container.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.cells import GATES
from rnn_dissect.nets.model import (
    CharModel,
    ModelConfig,
    check_finite,
    check_params,
    param_shapes,
)
from rnn_dissect.weights import safetensors_file as stf

__all__ = [
    "FORMAT",
    "RESERVED",
    "check_specs",
    "infer_config",
    "load",
    "model_from_arrays",
    "read_info",
    "save",
]

FORMAT = "rnn-dissect/1"
RESERVED = (
    "format",
    "cell",
    "hidden_size",
    "num_layers",
    "vocab",
    "nonlinearity",
)  # metadata save() owns
_FLOATS = ("F32", "F64")

PathLike = str | os.PathLike[str]


def _resolve(path: PathLike) -> Path:
    """A file, or a run directory's ``model.safetensors``."""
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file():
            return p / "model.safetensors"
        raise UserError(f"{p} is a directory without model.safetensors; pass a .safetensors file")
    if not p.exists():
        raise UserError(f"checkpoint {p} does not exist; pass the path of a .safetensors file")
    if not p.is_file():  # a FIFO or a device would block or never end
        raise UserError(f"{p} is not a regular file; pass the path of a .safetensors file")
    return p


def read_info(path: PathLike) -> stf.Header:
    """The checked header (metadata, tensor dtypes and shapes) without reading the weights."""
    return stf.read_header(_resolve(path))


def load(path: PathLike) -> CharModel:
    """Read a checkpoint (or a run directory's ``model.safetensors``) into a CharModel with
    arrays in their stored dtype. Names, shapes and dtypes are checked against the metadata
    before any weight is read; then the weights must be finite."""
    p = _resolve(path)
    info = stf.read_header(p)
    cfg = _config(info)
    check_specs(cfg, info.tensors, info.path)
    arrays = stf.read_tensors(p)
    check_specs(cfg, {k: (stf.dtype_code(a), a.shape) for k, a in arrays.items()}, info.path)
    check_finite(arrays, info.path)
    return CharModel(cfg, {k: arrays[k] for k in param_shapes(cfg)})


def save(model: CharModel, path: PathLike, extra_metadata: Mapping[str, str] | None = None) -> None:
    """Write ``model`` to ``path`` atomically (temp file, fsync, rename: a crash or a full
    disk leaves the previous file intact). Tensors in torch order and their own dtype,
    metadata sorted: the same model gives the same bytes. ``extra_metadata``: str → str,
    any keys but :data:`RESERVED`."""
    cfg, p = model.config, Path(path)
    check_specs(cfg, {k: (stf.dtype_code(a), a.shape) for k, a in model.params.items()}, "model")
    arrays = {k: np.asarray(model.params[k]) for k in param_shapes(cfg)}  # torch order
    bad = [k for k, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise UserError(f"not saving {p}: {stf.short(bad)} hold NaN or Inf; keep the last good one")
    extra = dict(extra_metadata or {})
    if any(
        k in RESERVED or not isinstance(k, str) or not isinstance(v, str) for k, v in extra.items()
    ):
        raise ValueError(f"extra metadata must map str to str and avoid the keys {RESERVED}")
    meta = {
        **extra,
        "format": FORMAT,
        "cell": cfg.cell,
        "hidden_size": str(cfg.hidden_size),
        "num_layers": str(cfg.num_layers),
        "vocab": json.dumps(list(cfg.vocab)),
        **({"nonlinearity": cfg.nonlinearity} if cfg.nonlinearity != "tanh" else {}),
    }
    stf.write(p, meta, arrays)


# --------------------------------------------------------------------------- checks
def _config(info: stf.Header) -> ModelConfig:
    """The config the metadata states; for a minimal file (no ``format``) what shapes say."""
    meta, src = dict(info.metadata), info.path
    kind = meta.get("format", "")
    if kind.startswith("rnn-dissect/") and not kind[12:].isdigit():  # a run's other files
        what = "a run's training state" if "trainer" in kind else f"a {kind!r} file"
        raise UserError(
            f"{src} is {what}, not a model checkpoint; pass the run directory or its "
            "model.safetensors"
        )
    if "format" in meta and meta["format"] != FORMAT:
        raise UserError(
            f"{src} has format {stf.short([meta['format']])}; this rnn-dissect reads {FORMAT} "
            "(a newer file? upgrade rnn-dissect)"
        )
    vocab = _vocab(src, meta.get("vocab"))
    if "format" not in meta:  # issue-3 minimal file: shapes tell the rest
        guess = infer_config({k: s for k, (_, s) in info.tensors.items()}, vocab, src)
        meta.setdefault("cell", guess.cell)
        meta.setdefault("hidden_size", str(guess.hidden_size))
        meta.setdefault("num_layers", str(guess.num_layers))
    cell = meta.get("cell")
    if cell not in GATES:
        raise UserError(
            f"{src}: metadata `cell` is {stf.short([cell])}; it must be rnn, lstm or gru"
        )
    H = _count(src, "hidden_size", meta.get("hidden_size"))
    L = _count(src, "num_layers", meta.get("num_layers"))
    return ModelConfig(cell, vocab, H, L, meta.get("nonlinearity", "tanh"))


def _vocab(src: str, text: str | None) -> tuple[str, ...]:
    """The ``vocab`` metadata: a JSON list of distinct single characters, index order."""
    fix = "it must be a JSON list of distinct single characters in index order"
    if text is None:
        raise UserError(
            f"{src} has no `vocab` metadata ({fix}); import a plain state dict with "
            "`rnn-dissect convert IN --vocab-file V --out OUT.safetensors`"
        )
    try:
        v = json.loads(text)
    except (ValueError, RecursionError):
        raise UserError(f"{src}: `vocab` metadata is not valid JSON; {fix}") from None
    if not (isinstance(v, list) and v and all(isinstance(c, str) and len(c) == 1 for c in v)):
        raise UserError(f"{src}: `vocab` metadata is not a non-empty list of characters; {fix}")
    if len(set(v)) != len(v):
        raise UserError(f"{src}: `vocab` lists a character twice; {fix}")
    if any("\ud800" <= c <= "\udfff" for c in v):
        raise UserError(f"{src}: `vocab` holds a lone UTF-16 surrogate; {fix}")
    return tuple(v)


def _count(src: str, key: str, text: str | None) -> int:
    """``hidden_size`` / ``num_layers``: a decimal 1 … 9,999,999 (file size bounds the rest)."""
    if text is None or not re.fullmatch(r"[1-9][0-9]{0,6}", text):
        raise UserError(
            f"{src}: metadata `{key}` is {stf.short([text])}; it must be a whole number ≥ 1"
        )
    return int(text)


def infer_config(
    shapes: Mapping[str, tuple[int, ...]], vocab: tuple[str, ...], src: str = "weights"
) -> ModelConfig:
    """A config from torch-named shapes alone: G = rows / cols of ``rnn.weight_hh_l0``
    (1 rnn, 4 lstm, 3 gru), H = its columns, L = the number of ``rnn.weight_ih_l{k}``."""
    hh = tuple(shapes.get("rnn.weight_hh_l0", ()))
    if len(hh) != 2 or hh[1] == 0 or hh[0] % hh[1]:
        raise UserError(f"{src} has no rnn.weight_hh_l0 of shape (G·H, H); not an RNN state dict")
    cells = {len(gates): cell for cell, gates in GATES.items()}
    if hh[0] // hh[1] not in cells:
        raise UserError(
            f"{src}: rnn.weight_hh_l0 is {hh}; rows/cols must be 1, 3 or 4 (rnn/gru/lstm)"
        )
    layers = 1
    while f"rnn.weight_ih_l{layers}" in shapes:
        layers += 1
    return ModelConfig(cells[hh[0] // hh[1]], vocab, hidden_size=hh[1], num_layers=layers)


def check_specs(
    cfg: ModelConfig, specs: Mapping[str, tuple[str, tuple[int, ...]]], src: str
) -> None:
    """The tensors fit ``cfg`` (:func:`~rnn_dissect.nets.model.check_params`), all F32 or all
    F64. ``specs``: name → (safetensors dtype code, shape)."""
    check_params(cfg, {k: s for k, (_, s) in specs.items()}, src)
    for name, (dtype, _) in specs.items():
        if dtype not in _FLOATS:
            raise UserError(f"{src}: tensor {name} is {dtype}; weights must be F32 or F64 (floats)")
    if len({d for d, _ in specs.values()}) > 1:
        raise UserError(f"{src} mixes float32 and float64 tensors; store them in one dtype")


def model_from_arrays(
    arrays: Mapping[str, np.ndarray],
    vocab: tuple[str, ...],
    cell: str | None = None,
    src: str = "weights",
) -> CharModel:
    """Torch-named arrays → a checked :class:`CharModel` (copies). The config is read off
    the shapes (:func:`infer_config`); ``cell``, if given, must agree with it."""
    arrays = {k: np.asarray(a) for k, a in arrays.items()}
    specs = {k: (stf.dtype_code(a), a.shape) for k, a in arrays.items()}
    cfg = infer_config({k: s for k, (_, s) in specs.items()}, tuple(vocab), src)
    if cell is not None and cell != cfg.cell:
        raise UserError(f"{src} holds {cfg.cell} weights, not {cell}; pass --cell {cfg.cell}")
    check_specs(cfg, specs, src)
    check_finite(arrays, src)
    return CharModel(cfg, {k: np.array(arrays[k]) for k in param_shapes(cfg)})
