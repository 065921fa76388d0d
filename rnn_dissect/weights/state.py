"""An initial state (h0, or an LSTM's c0) named on the command line: a file or a seed.

    --h0 h0.npy               an (L, H) array: torch's h0 for one unbatched sequence
                              ((L, 1, H), torch's shape for a batch of one, is accepted too)
    --h0 state.safetensors    its tensor named ``h0`` (``c0`` for --c0), or its only tensor
    --h0 random:7             U(−1, 1) draws from numpy's PCG64 seeded [7, 0] ([7, 1] for c0)

A ``.npy`` file is read with ``allow_pickle=False`` and a ``.safetensors`` file through the
checked reader (:mod:`rnn_dissect.weights.safetensors_file`): nothing is ever unpickled.
Any mistake — a missing file, another format, a wrong shape, NaN — is one
:class:`~rnn_dissect.errors.UserError` line naming the flag and the fix.

    >>> read_state("random:7", "--h0", L=2, H=3).shape
    (2, 3)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.weights import safetensors_file as stf

__all__ = ["read_state"]


def read_state(spec: str, flag: str, L: int, H: int) -> np.ndarray:
    """(L, H) float64: the state ``spec`` names (see the module docstring) for ``flag``
    (``--h0`` or ``--c0``) of a model with L layers of H units."""
    name = flag.lstrip("-")  # "h0" | "c0"
    want = f"(L, H) = ({L}, {H}): one row of {H} numbers per layer"
    if spec.startswith("random:"):
        seed = spec[len("random:") :]
        if not seed.isdigit():
            raise UserError(f"{flag} {spec}: the seed must be a whole number ≥ 0, e.g. random:7")
        rng = np.random.default_rng([int(seed), 0 if name == "h0" else 1])
        return rng.uniform(-1.0, 1.0, size=(L, H))
    path = Path(spec)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(f"{flag} {spec} {what}; give a .npy or .safetensors file, or random:SEED")
    if path.suffix == ".npy":
        a = _read_npy(path, flag)
    elif path.suffix == ".safetensors":
        a = _read_safetensors(path, flag, name)
    else:
        raise UserError(f"{flag} {spec}: not a .npy or .safetensors file; save the state as one")
    if a.shape == (L, 1, H):
        a = a[:, 0]
    if a.shape != (L, H):
        raise UserError(f"{flag} {spec} holds an array of shape {a.shape}; this model needs {want}")
    if a.dtype.kind not in "fiu":
        raise UserError(f"{flag} {spec} holds {a.dtype} values; give floating-point numbers")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise UserError(f"{flag} {spec} contains NaN or infinity; give finite numbers")
    return a


def _read_npy(path: Path, flag: str) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except ValueError as e:  # an object array (would need pickle), or a damaged header
        raise UserError(f"{flag} {path} is not a plain numeric .npy array ({e})") from None
    except (OSError, EOFError) as e:
        raise UserError(
            f"{flag} {path} cannot be read as .npy ({e}); save it with numpy.save"
        ) from None


def _read_safetensors(path: Path, flag: str, name: str) -> np.ndarray:
    stf.read_header(path)  # a damaged or foreign file: one UserError line
    tensors = stf.read_tensors(path)
    if name in tensors:
        return tensors[name]
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    raise UserError(
        f"{flag} {path} holds {len(tensors)} tensors ({stf.short(sorted(tensors))}) and none "
        f"named {name!r}; name the state {name!r} or save it alone"
    )
