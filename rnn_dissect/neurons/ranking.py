"""What each unit tracks: score every unit against every feature, rank, and explain.

    score(unit, feature) = Pearson r                 for a numeric feature
                         = 2·AUC − 1 (Somers' D)     for a boolean one

both in [−1, 1], 0 for no relation, signed (−1: the unit is *low* wherever the feature is
high), so one ranking by |score| serves both; see :mod:`rnn_dissect.neurons.scoring` for the sums.
Everything streams over row blocks of the activation arrays (O(H·block) extra memory).
AUC is exact (ranks) when N ≤ ``exact_max_n``; above, one pass gathers the correlation
sums and per-unit histograms (``bins`` bins after a logit/atanh transform by kind; see
:mod:`rnn_dissect.neurons.scoring`) and reports a bound on the error (``Scores.score_error``,
for every 2·AUC − 1). Where units are extreme (contexts, gate saturation):
:mod:`rnn_dissect.neurons.extremes`.

``rnn-dissect neurons`` is :func:`score_units` on collected activations plus
``builtin_features``, written with :meth:`Scores.to_json`. ``rows`` (N,) bool scores on the
characters where it is True only (``neurons --where``): every sum, rank, histogram and
"constant" test runs over those rows as if the others — where the question is not asked,
NaN in ``d.neurons`` — were not there; blocks are masked as they stream, nothing is copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnn_dissect.errors import UserError
from rnn_dissect.neurons.activations import Activations, Key, UnitRef
from rnn_dissect.neurons.features import Feature
from rnn_dissect.neurons.scoring import HistogramAUC, OutOfDomainError, PearsonSums, auc_exact

__all__ = ["KIND_TRANSFORM", "Scores", "block_rows", "score_units"]

EXACT_MAX_N = 20_000  # above this many characters AUC comes from histograms
BLOCK_BYTES = 16 << 20  # float64 bytes of one (C, H) block
SAMPLE_ROWS = 4096  # rows read up front to set each unit's histogram range
SIGMOID_GATES = ("i", "f", "o", "r", "z")  # in (0, 1)
TANH_GATES = ("g", "n")  # in (−1, 1)
# monotone map before binning, by kind: log-odds for σ gates, atanh for tanh-range values
KIND_TRANSFORM = {
    **dict.fromkeys(SIGMOID_GATES, "logit"),
    **dict.fromkeys(("h", *TANH_GATES), "atanh"),
}


def block_rows(H: int) -> int:
    """Rows per streamed block: C·H float64 ≈ BLOCK_BYTES."""
    return max(256, BLOCK_BYTES // (8 * max(H, 1)))


@dataclass
class Scores:
    """score[f, j] of unit ``units[j]`` for feature ``features[f]``."""

    features: list[str]
    boolean: list[bool]  # per feature: scored by 2·AUC − 1 (else Pearson r)
    constant: list[bool]  # per feature: the same value everywhere, so nothing to rank
    units: list[UnitRef]
    score: np.ndarray  # (F, U)
    pearson: np.ndarray  # (F, U) Pearson r for every feature (point-biserial for booleans)
    auc_method: str  # "exact" or "histogram"
    score_error: float  # bound on |2·AUC − 1 error| over all units and boolean features
    meta: dict[str, object] = field(default_factory=dict)  # cell, n_chars, …

    def ranking(self, feature: str, top: int | None = None) -> list[dict[str, int | str | float]]:
        """Units by |score|, best first (ties: layer, kind, unit order), as
        ``{layer, unit, kind, score}`` with the score rounded to 6 decimals."""
        f = self.features.index(feature)
        if self.constant[f]:
            return []
        s = np.round(self.score[f], 6)  # (U,) rounding first makes the order reproducible
        order = np.lexsort((np.arange(len(s)), -np.abs(s)))[:top]
        return [{**self.units[j].to_dict(), "score": float(s[j])} for j in order]

    def __repr__(self) -> str:
        """One line per feature: its metric and its three best units, as the CLI prints them
        (``l0 c22 +0.931`` = layer 0, kind c, unit 22); the arrays stay in the fields."""
        lines = [f"Scores: {len(self.features)} features × {len(self.units)} units"]
        for f, name in enumerate(self.features):
            metric = "2AUC-1" if self.boolean[f] else "r"
            best = ", ".join(
                f"l{r['layer']} {r['kind']}{r['unit']} {r['score']:+.3f}"
                for r in self.ranking(name, top=3)
            )
            lines.append(f"  {name}  {metric}  {best or '(constant: nothing to rank)'}")
        return "\n".join(lines)

    def best(self, feature: str) -> UnitRef | None:
        r = self.ranking(feature, top=1)
        return UnitRef.from_dict(r[0]) if r else None

    def to_json(self, top: int | None = None) -> str:
        """``neurons.json``: ``features`` maps name → ranked list (best first)."""
        info = {
            name: {
                "boolean": b,
                "metric": "2*AUC-1" if b else "pearson",
                "constant": c,
            }
            for name, b, c in zip(self.features, self.boolean, self.constant, strict=True)
        }
        doc = {
            "format": "rnn-dissect/neurons v1",
            **self.meta,
            "metrics": {"numeric": "Pearson r", "boolean": "2*AUC-1 (ties count 1/2)"},
            "auc": {"method": self.auc_method, "max_score_error": round(self.score_error, 9)},
            "feature_info": info,
            "features": {name: self.ranking(name, top) for name in self.features},
        }
        return json.dumps(doc, indent=1) + "\n"


def _check_finite(key: Key, sums: PearsonSums) -> None:
    if not (np.all(np.isfinite(sums.sa)) and np.all(np.isfinite(sums.saa))):
        raise UserError(
            f"activations of layer {key[0]} kind {key[1]} contain NaN or infinity; the "
            "model diverged — use an earlier checkpoint"
        )


def _blocks(
    acts: Activations, key: Key, rows: np.ndarray | None
) -> Iterator[tuple[slice | np.ndarray, np.ndarray]]:
    """The array's row blocks as (rows of X and Y, activations): only the rows where
    ``rows`` is True when given; blocks left empty are skipped."""
    for s, blk in acts.chunks(key, block_rows(acts.arrays[key].shape[1])):
        if rows is None:
            yield slice(s, s + len(blk)), blk  # (C, H)
            continue
        m = np.flatnonzero(rows[s : s + len(blk)])  # (C',) kept rows of this block
        if len(m):
            yield m + s, blk[m]  # (C', H)


def _pass(
    acts: Activations,
    key: Key,
    X: np.ndarray,
    Y: np.ndarray,
    x_mean: np.ndarray,
    hist: HistogramAUC | None,
    rows: np.ndarray | None,
) -> PearsonSums:
    """One streaming pass over an array: correlation sums, and histograms if ``hist``."""
    sums = PearsonSums(x_mean, acts.arrays[key].shape[1])
    for at, blk in _blocks(acts, key, rows):
        sums.add(X[at], np.asarray(blk, dtype=np.float64))  # (C, H)
        _check_finite(key, sums)  # before binning: NaN cannot be binned
        if hist is not None:
            hist.add(blk, Y[at])
    return sums


def _exact_auc(acts: Activations, key: Key, Y: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """(Fb, H) exact AUC over the kept rows, reading whole columns a block of units at a time."""
    H = acts.arrays[key].shape[1]
    n = acts.n_chars if rows is None else int(rows.sum())
    Yk = Y if rows is None else Y[rows]  # (n, Fb)
    out = np.empty((Y.shape[1], H))
    width = max(1, BLOCK_BYTES // (24 * n))  # units per block: column, ranks, order
    for u0 in range(0, H, width):
        cols = np.empty((n, min(width, H - u0)))  # (n, width)
        i = 0
        for _, blk in _blocks(acts, key, rows):
            cols[i : i + len(blk)] = blk[:, u0 : u0 + width]
            i += len(blk)
        out[:, u0 : u0 + width] = auc_exact(cols, Yk)
    return out


def _score_array(
    acts: Activations,
    key: Key,
    X: np.ndarray,
    Y: np.ndarray,
    x_mean: np.ndarray,
    is_bool: np.ndarray,
    sample: np.ndarray | None,
    bins: int,
    rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One array's units against every feature, in one streaming pass: Pearson r (F, H), the
    score (F, H) — r for numeric features, 2·AUC − 1 for boolean ones, histogram AUC when
    ``sample`` (rows giving the bins' range) is given, else exact — and the score's error
    bound (0 when exact)."""
    hist = None
    for transform in (KIND_TRANSFORM.get(key[1], "identity"), "identity"):
        try:
            if sample is not None:
                hist = HistogramAUC(sample, Y.shape[1], bins, transform)
            sums = _pass(acts, key, X, Y, x_mean, hist, rows)
            break
        except OutOfDomainError:  # e.g. an "h" that is not tanh-bounded: bin raw values
            continue
    r = sums.result()  # (F, H)
    score, err = r.copy(), 0.0
    if is_bool.any():
        if hist is None:
            auc_fh = _exact_auc(acts, key, Y, rows)
        else:
            auc_fh, bound = hist.result()
            if np.isfinite(bound).any():
                err = 2 * float(np.nanmax(bound))
        score[is_bool] = np.nan_to_num(2 * auc_fh - 1)  # constant label -> 0
    return r, score, err


def score_units(
    acts: Activations,
    features: Sequence[Feature],
    *,
    keys: Sequence[Key] | None = None,
    auc: str = "auto",  # "auto" | "exact" | "histogram"
    bins: int = 2048,
    exact_max_n: int = EXACT_MAX_N,
    rows: np.ndarray | None = None,
) -> Scores:
    """Score every unit of ``keys`` (default all arrays) against every feature, over the
    characters where ``rows`` (N,) bool is True (default: all; see the module docstring)."""
    N = acts.n_chars
    if N == 0:
        raise UserError("the text is empty; pass a text with at least one character")
    if rows is not None:
        rows = np.asarray(rows, dtype=bool)
        if rows.shape != (N,):
            raise ValueError(f"rows has shape {rows.shape}, text has {N} chars")
        if not rows.any():
            raise UserError("no character is selected for scoring; select at least one")
    kept = np.arange(N) if rows is None else np.flatnonzero(rows)  # (n,) scored rows
    n = len(kept)
    if not features:
        raise UserError("no features to score; keep the built-in ones or add --feature")
    for f in features:
        if f.values.shape != (N,):
            raise ValueError(f"feature {f.name} has shape {f.values.shape}, text has {N} chars")
    if auc not in ("auto", "exact", "histogram"):
        raise ValueError(f"auc must be auto, exact or histogram, not {auc!r}")
    method = auc if auc != "auto" else ("exact" if n <= exact_max_n else "histogram")
    keys = acts.ordered_keys() if keys is None else list(keys)
    X = np.stack([f.values for f in features], axis=1)  # (N, F) float32
    x_mean = X[kept].mean(axis=0, dtype=np.float64)  # (F,) over the scored rows
    is_bool = np.array([f.boolean for f in features])
    Y = X[:, is_bool] > 0.5  # (N, Fb) labels
    constant = [bool(np.all(f.values[kept] == f.values[kept[0]])) for f in features]
    sample_idx = kept[
        np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).round().astype(np.int64))
    ]

    units: list[UnitRef] = []
    pearson_cols, score_cols = [], []
    score_error = 0.0
    for key in keys:
        sample = None
        if method == "histogram" and is_bool.any():
            sample = acts.rows_at(key, sample_idx)  # (S, H): the bins' range
        r, score, err = _score_array(acts, key, X, Y, x_mean, is_bool, sample, bins, rows)
        score_error = max(score_error, err)
        units += acts.units(key)
        pearson_cols.append(r)
        score_cols.append(score)
    meta = {
        "cell": acts.cell,
        "n_chars": N,
        **({"scored_chars": n} if rows is not None else {}),
        "dtype": "/".join(sorted({acts.arrays[key].dtype.name for key in keys})),
        "arrays": [
            {"layer": k, "kind": kind, "hidden_size": int(acts.arrays[(k, kind)].shape[1])}
            for k, kind in keys
        ],
        **({"collection": acts.collection} if acts.collection else {}),
    }
    return Scores(
        features=[f.name for f in features],
        boolean=[bool(b) for b in is_bool],
        constant=constant,
        units=units,
        score=np.concatenate(score_cols, axis=1),
        pearson=np.concatenate(pearson_cols, axis=1),
        auc_method=method,
        score_error=score_error,
        meta=meta,
    )
