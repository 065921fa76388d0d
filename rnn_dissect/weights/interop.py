"""PyTorch interop (the optional ``torch`` extra): modules and state dicts in and out.

Our parameters *are* PyTorch's (same names, shapes, gate order), so crossing over is a copy:

    rnn.weight_ih_l{k} …  ⇄  nn.RNN / nn.LSTM / nn.GRU (V, H, num_layers=L).weight_ih_l{k} …
    head.weight, head.bias ⇄  nn.Linear(H, V).weight, .bias

Supported torch modules: ``bias=True``, ``bidirectional=False``, ``proj_size=0`` and, for
``nn.RNN``, ``nonlinearity='tanh'`` — the models the cells implement; anything else is a
one-line :class:`UserError`. ``batch_first`` and ``dropout`` do not touch the weights and are
accepted; :func:`to_torch` builds ``batch_first=False`` (PyTorch's default) unless asked,
with no dropout. Arrays keep their dtype both ways (float32 ⇄ torch.float32, float64 ⇄
torch.float64), so a model trained here continues training in PyTorch, and back, unchanged.

torch is imported inside the functions: ``import rnn_dissect`` never imports it.

    >>> from rnn_dissect.nets.model import CharModel, ModelConfig
    >>> m = CharModel.init(ModelConfig("gru", tuple("abc"), hidden_size=4))
    >>> rnn, head = to_torch(m)
    >>> rnn, head
    (GRU(3, 4), Linear(in_features=4, out_features=3, bias=True))
    >>> back = from_torch(rnn, head, "abc")
    >>> back.config == m.config and all((back.params[k] == v).all() for k, v in m.params.items())
    True
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel
from rnn_dissect.weights import safetensors_file as stf
from rnn_dissect.weights.checkpoint import model_from_arrays

__all__ = ["from_torch", "import_state_dict", "split_state_dict", "to_torch"]

_CLASSES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# torch's names for one recurrent layer's tensors, with an optional module prefix before them
_RECURRENT = re.compile(r"(.*?)((?:weight|bias)_(?:ih|hh|hr)_l[0-9]+(?:_reverse)?)")
_LINEAR = re.compile(r"(.*?)(weight|bias)")
_WRAPPERS = ("state_dict", "model_state_dict", "model")  # dicts people save a state dict under


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise UserError(
            "this needs PyTorch; install it with `pip install 'rnn-dissect[torch]'`"
        ) from None
    return torch


def _numpy(name: str, t: Any, src: str) -> np.ndarray:
    """A float32/float64 tensor → a numpy copy of the same dtype (no rounding, ever)."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise UserError(
            f"{src}: {stf.short([name])} is a {type(t).__name__}, not a tensor; pass a model's "
            "state_dict()"
        )
    if t.dtype not in (torch.float32, torch.float64):
        raise UserError(f"{src}: tensor {name} is {t.dtype}; convert it with .float() or .double()")
    return t.detach().cpu().numpy().copy()


def from_torch(rnn_module: Any, head_module: Any, vocab: Sequence[str]) -> CharModel:
    """``nn.RNN/LSTM/GRU(V, H, L)`` + ``nn.Linear(H, V)`` → a CharModel with copies of their
    weights, in their dtype. ``vocab``: the V characters in the index order the modules use."""
    torch = _torch()
    nn = torch.nn
    cell = next(
        (c for c, cls in _CLASSES.items() if isinstance(rnn_module, getattr(nn, cls))), None
    )
    if cell is None:
        raise UserError(
            f"from_torch needs nn.RNN, nn.LSTM or nn.GRU, not {type(rnn_module).__name__}"
        )
    m, kind = rnn_module, type(rnn_module).__name__
    problems = [
        *(["bidirectional=True"] if m.bidirectional else []),
        *(["bias=False"] if not m.bias else []),
        *([f"proj_size={m.proj_size}"] if m.proj_size else []),
        *(
            [f"nonlinearity={m.nonlinearity!r}"]
            if getattr(m, "nonlinearity", "tanh") != "tanh"
            else []
        ),
    ]
    if problems:
        raise UserError(
            f"{kind} with {', '.join(problems)} is not supported; the cells here are one-way, "
            "with biases, no projection, tanh"
        )
    V, H = len(vocab), m.hidden_size
    if m.input_size != V:
        raise UserError(
            f"the {kind} takes input_size={m.input_size}, but the "
            f"vocabulary has {V} characters; pass the vocabulary it was trained with"
        )
    if not isinstance(head_module, nn.Linear) or head_module.bias is None:
        raise UserError(f"the head must be an nn.Linear({H}, {V}) with a bias")
    if (head_module.in_features, head_module.out_features) != (H, V):
        raise UserError(
            f"the head is Linear({head_module.in_features}, "
            f"{head_module.out_features}); it must be Linear(hidden_size={H}, vocab={V})"
        )
    sd = {f"rnn.{k}": v for k, v in rnn_module.state_dict().items()}
    sd |= {f"head.{k}": v for k, v in head_module.state_dict().items()}
    return model_from_arrays(
        {k: _numpy(k, v, "torch modules") for k, v in sd.items()},
        tuple(vocab),
        cell,
        "torch modules",
    )


def to_torch(model: CharModel, batch_first: bool = False) -> tuple[Any, Any]:
    """A CharModel → ``(nn.RNN|LSTM|GRU(V, H, num_layers=L), nn.Linear(H, V))`` holding exact
    copies of its weights, in its dtype, on the CPU, in training mode. Built on the meta
    device, so torch's global random state is left untouched."""
    torch = _torch()
    nn = torch.nn
    cfg = model.config
    dtype = {"float32": torch.float32, "float64": torch.float64}[
        str(model.params["head.bias"].dtype)
    ]
    # built on the meta device, then given uninitialised CPU memory: no random init drawn
    rnn = getattr(nn, _CLASSES[cfg.cell])(
        cfg.vocab_size,
        cfg.hidden_size,
        num_layers=cfg.num_layers,
        batch_first=batch_first,
        dtype=dtype,
        device="meta",
        **({"nonlinearity": cfg.nonlinearity} if cfg.cell == "rnn" else {}),
    ).to_empty(device="cpu")
    head = nn.Linear(cfg.hidden_size, cfg.vocab_size, dtype=dtype, device="meta").to_empty(
        device="cpu"
    )
    for module, prefix in ((rnn, "rnn."), (head, "head.")):
        sd = {
            k[len(prefix) :]: torch.from_numpy(np.array(v))
            for k, v in model.params.items()
            if k.startswith(prefix)
        }
        module.load_state_dict(sd, strict=True)
    return rnn, head


# --------------------------------------------------------------------------- state dicts
def split_state_dict(sd: Mapping[str, Any], src: str = "state dict") -> dict[str, Any]:
    """Rename a state dict's keys to ours. It must hold one recurrent module's tensors
    (``P weight_ih_l0`` … under any one prefix P: ``rnn.``, ``lstm.``, ``module.rnn.`` …) and
    one Linear head (``Q weight``, ``Q bias`` under one other prefix: ``head.``, ``fc.``,
    ``decoder.`` …), nothing else. Values pass through unchanged."""
    recurrent: dict[str, dict[str, Any]] = {}
    linear: dict[str, dict[str, Any]] = {}
    for k, v in sd.items():
        if not isinstance(k, str):
            raise UserError(f"{src} has a non-string key {stf.short([k])}; pass a state_dict()")
        if m := _RECURRENT.fullmatch(k):
            recurrent.setdefault(m[1], {})[m[2]] = v
        elif m := _LINEAR.fullmatch(k):
            linear.setdefault(m[1], {})[m[2]] = v
        else:
            raise UserError(
                f"{src} has tensor {stf.short([k])}, which is neither part of an "
                "RNN/LSTM/GRU nor of a Linear head; pass just those"
            )
    if len(recurrent) != 1:
        found = f"prefixes {stf.short(recurrent)}" if recurrent else "none"
        raise UserError(f"{src} must hold one RNN/LSTM/GRU (weight_ih_l0 …); found {found}")
    (rtensors,) = recurrent.values()
    if any(n.endswith("_reverse") for n in rtensors):
        raise UserError(f"{src} is a bidirectional RNN, which is not supported; use a one-way one")
    if any("_hr_" in n for n in rtensors):
        raise UserError(f"{src} is an LSTM with proj_size, which is not supported")
    heads = [q for q, t in linear.items() if set(t) == {"weight", "bias"}]
    if len(heads) != 1 or len(linear) != 1:
        found = stf.short(q + n for q, t in linear.items() for n in t) or "none"
        why = (
            " (an embedding is not supported: the input here is one-hot)" if len(linear) > 1 else ""
        )
        raise UserError(f"{src} must hold one Linear head (weight, bias); found {found}{why}")
    out = {f"rnn.{n}": t for n, t in rtensors.items()}
    return out | {f"head.{n}": t for n, t in linear[heads[0]].items()}


def import_state_dict(
    path: str | os.PathLike[str], vocab: Sequence[str], cell: str | None = None
) -> CharModel:
    """A PyTorch state dict file → a CharModel. ``.safetensors`` files are read with our
    checked reader; anything else with ``torch.load(weights_only=True)``, which refuses every
    Python object but tensors and plain containers (nothing is ever executed). The tensors may
    sit at the top level or under one of the keys ``state_dict``, ``model_state_dict`` or
    ``model``; names are mapped by :func:`split_state_dict`. ``vocab``: the V characters in
    the model's index order (a state dict does not record them); ``cell`` is checked if given."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p} does not exist (or is not a file); pass a state dict file")
    if p.suffix == ".safetensors":
        bad = [k for k, (d, _) in stf.read_header(p).tensors.items() if d not in ("F32", "F64")]
        if bad:
            raise UserError(f"{p}: tensors {stf.short(bad)} are not float32/float64; convert them")
        arrays = stf.read_tensors(p)
    else:
        arrays = {k: _numpy(k, t, str(p)) for k, t in _torch_load(p).items()}
    return model_from_arrays(split_state_dict(arrays, str(p)), tuple(vocab), cell, str(p))


def _torch_load(p: Path) -> Mapping[str, Any]:
    """``torch.load(weights_only=True)``; a refusal or a parse failure is a UserError."""
    torch = _torch()
    try:
        with warnings.catch_warnings():  # its pickle-protocol warning: the error says enough
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load has many ways to reject a file; none runs its code
        refused = re.search(r"(?:Unsupported global: GLOBAL|load unsupported GLOBAL) (\S+)", str(e))
        if refused:
            raise UserError(
                f"{p} holds the Python object {refused[1][:80]}, which weights_only=True refuses "
                "to load; save just model.state_dict() with torch.save"
            ) from None
        raise UserError(
            f"{p} is not a file torch.load can read ({type(e).__name__}); pass one "
            "written by torch.save(model.state_dict())"
        ) from None
    if isinstance(obj, Mapping):
        for key in _WRAPPERS:
            if isinstance(obj.get(key), Mapping):
                return obj[key]
        return obj
    raise UserError(f"{p} holds a {type(obj).__name__}, not a state dict; save model.state_dict()")
