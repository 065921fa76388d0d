"""How far back the gradient reaches: RNN, LSTM and GRU of the same size on the same text.

For each cell the char model (fresh PyTorch-style initialisation from one seed) is unrolled
over the text (inputs text[:-1], targets text[1:]) and the last step's loss term L_T is
carried back alone (the last row of the lag matrix, :func:`gradflow.lag_matrix`):

    g_ℓ = ‖∂L_T/∂h_{T−ℓ}‖,   ℓ = 0 … T − 1              (last layer)
    reach = the first lag ℓ past the peak with g_ℓ < 1e-3 · max g   (None: never, in T − 1 lags)

``reach`` is :attr:`gradflow.Verdict.reach`; the curve g_ℓ / max g is what the plot draws.

    >>> cmp = compare("hello world, hello rnn", hidden=4, seed=0)
    >>> [r.cell for r in cmp.rows], cmp.steps
    (['rnn', 'lstm', 'gru'], 21)
    >>> bool(cmp.rows[0].curve[0] > 0), len(cmp.rows[0].curve)
    (True, 21)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rnn_dissect.bptt.dissection import dissect_text
from rnn_dissect.bptt.verdict import FALL
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig

__all__ = ["CELLS", "DEFAULT_TEXT", "Comparison", "Reach", "compare", "reading"]

CELLS = ("rnn", "lstm", "gru")

# Long enough (120 characters) that a vanishing gradient has room to fall below 1e-3.
DEFAULT_TEXT = (
    "the quick brown fox jumps over the lazy dog while the cat naps in the warm sun; "
    "a recurrent net must carry that fox to the end."
)


@dataclass
class Reach:
    """One cell's answer."""

    cell: str
    reach: int | None  # lag where ‖∂L_T/∂h_{T−ℓ}‖ first falls below FALL × its largest value
    looked_back: int  # lags measured (T − 1 without truncation)
    decay_per_step: float | None  # geometric-mean factor per step back (gradflow.Verdict)
    spectral_geomean: float | None  # geometric mean of σ_max(∂h_t/∂h_{t-1})
    label: str  # vanishing | stable | exploding | too short
    curve: list[float]  # ℓ = 0..T−1: ‖∂L_T/∂h_{T−ℓ}‖ / max (0 where nothing arrives)
    loss: float


@dataclass
class Comparison:
    text: str
    hidden: int
    layers: int
    seed: int
    steps: int  # T = len(text) − 1
    fall: float  # the 1e-3 threshold
    rows: list[Reach]

    def to_dict(self) -> dict[str, object]:
        return {
            "format": "rnn-dissect/flow",
            "version": 1,
            "dtype": "float64",
            **asdict(self),
            "reading": reading(self),
        }


def compare(
    text: str = DEFAULT_TEXT,
    hidden: int = 16,
    seed: int = 0,
    layers: int = 1,
    cells: tuple[str, ...] = CELLS,
) -> Comparison:
    """Dissect ``text`` with each cell (vocab = the text's characters in order of first
    appearance, hidden size ``hidden``, weights from ``seed``) and measure the reach."""
    if len(text) < 2:
        raise UserError("the text needs at least two characters (one input, one target)")
    vocab = tuple(dict.fromkeys(text))
    rows = []
    for cell in cells:
        model = CharModel.init(ModelConfig(cell, vocab, hidden, layers), seed=seed)
        d = dissect_text(model, text, step_grads=False, frames=False, keep_jacobians=False)
        assert d.flow.lag is not None
        g = d.flow.lag[-1][::-1]  # (T,) by lag ℓ = T − t
        top = float(np.max(g))
        curve = (g / top if top > 0 else g).tolist()
        v = d.flow.layers[-1].verdict
        rows.append(
            Reach(
                cell,
                v.reach,
                v.looked_back,
                v.decay_per_step,
                v.spectral_geomean,
                v.label,
                curve,
                d.loss,
            )
        )
    return Comparison(text, hidden, layers, seed, len(text) - 1, FALL, rows)


def reading(cmp: Comparison) -> str:
    """The comparison in plain words."""
    parts = []
    for r in cmp.rows:
        if r.reach is None:
            far = f"still above {cmp.fall:g} of its peak all {r.looked_back} steps back"
        else:
            far = f"falls below {cmp.fall:g} of its peak {r.reach} steps back"
        per = "" if r.decay_per_step is None else f" (×{r.decay_per_step:.3g} per step)"
        parts.append(f"{r.cell.upper()}: the last step's gradient {far}{per}")
    reached = [r for r in cmp.rows if r.reach is not None]
    if reached:
        far_key = [(r.reach is None, r.reach or 0) for r in cmp.rows]
        best = [r.cell.upper() for r, k in zip(cmp.rows, far_key, strict=True) if k == max(far_key)]
        worst = [
            r.cell.upper() for r, k in zip(cmp.rows, far_key, strict=True) if k == min(far_key)
        ]
        if best == worst:
            tail = "All of them carry the gradient equally far back."
        else:
            tail = (
                f"{' and '.join(best)} carr{'y' if len(best) > 1 else 'ies'} the gradient "
                f"furthest back, {' and '.join(worst)} the shortest."
            )
    else:
        tail = "None of them loses the gradient within this text; try a longer --text."
    note = (
        " These are untrained weights from one seed (PyTorch's initialisation): the reach "
        "says how each cell's wiring passes gradient before any training shapes it."
    )
    return "; ".join(parts) + ". " + tail + note
