"""Does the gradient vanish, stay or explode going back in time? A verdict that shows its evidence.

The evidence is one layer's measured lag matrix, lag[t'][t] = ‖∂L_{t'}/∂h_t‖
(:func:`rnn_dissect.bptt.gradflow.lag_matrices`), read as g(t', ℓ) with lag ℓ = t' − t.
Every loss term t' and every step it reaches is used — with truncated BPTT, every chunk;
entries no gradient can reach (past a cut, beyond ``max_lag``, rows without a loss term)
are left out. The per-step factor γ is one log-linear fit pooled over all of them, each
loss term with its own scale:

    log g(t', ℓ) ≈ a_{t'} + ℓ · log γ        (least squares, ℓ ≥ 0)

A loss term whose whole row is 0 sends no gradient (a many-to-one model's steps before T,
a watched output slice the loss never reads): it is left out, and the count said, since
log-values of a constant row would pull γ towards 1.

γ < 1 − BAND vanishing, γ > 1 + BAND exploding, else stable. No label is given on less than
MIN_STEPS steps back or MIN_PAIRS (t', t) pairs with t < t': "not enough steps to judge".
``reach``: how many steps back L_T's own gradient first falls below FALL × its largest value;
the reason also gives that gradient at the farthest step it reaches, as a fraction of it.

The spectral bound is a separate line: with ρ the geometric mean of the step Jacobians'
largest singular values, ‖∂s_t/∂s_{t−ℓ}‖ ≤ Π σ_max ≈ ρ^ℓ — an upper bound, not a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BAND", "FALL", "MIN_PAIRS", "MIN_STEPS", "NOT_ENOUGH", "Verdict", "bound", "verdict"]

FALL = 1e-3  # reach: where ‖∂L_T/∂h_t‖, going back past its largest value, falls below FALL × it
BAND = 0.05  # a per-step factor within 1 ± BAND counts as stable
MIN_STEPS = 5  # a label needs the gradient measured at least this many steps back ...
MIN_PAIRS = 10  # ... in at least this many (t', t) pairs with t < t'
NOT_ENOUGH = "not enough steps to judge"


@dataclass
class Verdict:
    """Vanishing, stable or exploding — or why there is no label — with its evidence."""

    label: str  # "vanishing" | "stable" | "exploding" | NOT_ENOUGH | "not measured"
    reason: str  # the measurement in words
    bound: str  # the spectral bound in words ("" without Jacobians)
    decay_per_step: float | None  # γ, the pooled fit (None: no fit)
    pairs: int  # (t', t) pairs with t < t' in the fit
    loss_terms: int  # rows t' that contributed
    chunks: int  # truncation chunks they came from (1 without truncation)
    looked_back: int  # the largest lag ℓ measured
    reach: int | None  # lag at which ‖∂L_T/∂h_t‖ < FALL·max (None: never, as far as looked)
    spectral_geomean: float | None  # ρ
    last_row: str = "L_T's own gradient"  # what row T holds, in words (the reach's subject)


def steps(n: int) -> str:
    """'1 step', '4 steps'."""
    return f"{n} step" if n == 1 else f"{n} steps"


def _label(factor: float) -> str:
    if not math.isfinite(factor) or factor > 1 + BAND:
        return "exploding"
    return "vanishing" if factor < 1 - BAND else "stable"


def bound(sv: np.ndarray | None) -> tuple[float | None, str]:
    """(ρ, the bound line) from (T, S) singular values of the step Jacobians."""
    if sv is None or len(sv) == 0:
        return None, ""
    with np.errstate(divide="ignore"):
        rho = float(np.exp(np.mean(np.log(sv[:, 0]))))
    line = (
        f"bound: the step Jacobians' largest singular values average ×{rho:.3g} (geometric "
        f"mean over {steps(len(sv))}), so ‖∂s_t/∂s_(t−ℓ)‖ ≤ about {rho:.3g}^ℓ"
        + ("; a bound above 1 allows growth but does not prove it" if rho > 1 else "")
    )
    return rho, line


def verdict(
    lag: np.ndarray | None,
    reachable: np.ndarray | None,
    chunk: np.ndarray,
    sv: np.ndarray | None,
    why_short: str = "",
    last_row: str = "L_T's own gradient",
) -> Verdict:
    """Read one layer's lag matrix (T, T) where ``reachable`` (T, T) bool marks the entries a
    gradient can reach from a loss term; ``chunk`` (T,) the truncation chunk of each step;
    ``sv`` (T, S) for the bound line; ``why_short`` names what limits the reach
    (truncation, ``max_lag``), said when it is too short; ``last_row`` names what row T
    holds (:meth:`Recording.last_row`: a window's last row is not L_T's own gradient)."""
    rho, bound_line = bound(sv)
    if lag is None or reachable is None:
        return Verdict("not measured", "the lag matrix was not computed", bound_line,
                       None, 0, 0, 0, 0, None, rho, last_row)  # fmt: skip
    T = lag.shape[0]
    # a loss term whose whole row is 0 sends no gradient (a many-to-one model's steps before
    # T, a watched output slice the loss never read): it is no evidence of a per-step factor
    live = np.any(np.where(reachable, np.nan_to_num(lag), 0.0) > 0, axis=1)  # (T,)
    silent = int((reachable.any(axis=1) & ~live).sum())
    reachable = reachable & np.asarray(live)[:, None]
    tp, t = np.nonzero(reachable)  # 0-based t' − 1, t − 1
    ell = tp - t  # (P,) lag of each entry
    # an exact 0: the gradient stops (a ReLU that is off): it has no log to fit and is said in
    # words (a floor such as log(tiny) made the factor an artefact: ×4e-05 per step)
    stopped = lag[tp, t] == 0  # (P,)
    rows = np.unique(tp)
    pairs, span = int((ell >= 1).sum()), int(ell.max(initial=0))
    chunks = len(np.unique(chunk[rows]))
    reach = _reach(lag[T - 1], reachable[T - 1])
    evidence = (
        f"{pairs} (t', t) pairs from {rows.size} loss term{'s' if rows.size != 1 else ''}"
        + (f" in {chunks} truncation chunks" if chunks > 1 else "")
        + f", up to {steps(span)} back"
        + (f" ({silent} loss terms that send no gradient left out)" if silent else "")
    )
    if span < MIN_STEPS or pairs < MIN_PAIRS:
        reason = (
            f"{NOT_ENOUGH}: the gradient was measured over {evidence}{why_short}; a label "
            f"needs at least {steps(MIN_STEPS)} back and {MIN_PAIRS} pairs"
        )
        return Verdict(NOT_ENOUGH, reason, bound_line, None, pairs, int(rows.size), chunks,
                       span, reach, rho, last_row)  # fmt: skip
    where = _where(lag[T - 1], reachable[T - 1], reach, why_short, last_row)
    zeros = int((stopped & (ell >= 1)).sum())
    stops = (
        f"exactly 0 in {zeros} of the pairs (the nearest "
        f"{steps(int(ell[stopped & (ell >= 1)].min()))} back): the gradient stops there"
        if zeros else ""
    )  # fmt: skip
    fit = ~stopped
    slope = _pooled_slope(rows, tp[fit], ell[fit], np.log(lag[tp[fit], t[fit]]))
    if slope is None or int((ell[fit] >= 1).sum()) < MIN_PAIRS:  # too little left to fit
        label, gamma = ("vanishing", 0.0) if zeros else (NOT_ENOUGH, None)
        what = f"is {stops}" if zeros else "is 0 or too rarely non-zero to fit"
        reason = f"{label}: going back in time, ‖∂L_t'/∂h_t‖ {what} — over {evidence}; {where}"
        return Verdict(label, reason, bound_line, gamma, pairs, int(rows.size), chunks,
                       span, reach, rho, last_row)  # fmt: skip
    gamma = float(np.exp(slope))
    label = _label(gamma)
    how = {"vanishing": "shrinks", "exploding": "grows", "stable": "changes"}[label]
    reason = (
        f"{label}: going back in time, ‖∂L_t'/∂h_t‖ {how} ×{gamma:.3g} per step — a log-linear "
        f"fit over {evidence}" + (f"; it is {stops} (left out of the fit)" if zeros else "")
        + f"; {where}"
    )  # fmt: skip
    return Verdict(label, reason, bound_line, gamma, pairs, int(rows.size), chunks, span,
                   reach, rho, last_row)  # fmt: skip


def _where(row: np.ndarray, ok: np.ndarray, reach: int | None, why_short: str, who: str) -> str:
    """How far ``who`` — row T, L_T's own gradient (``row`` (T,), reachable where ``ok``)
    — reaches, in words."""
    T = len(row)
    cut = bool(why_short) and ok.any() and int(np.argmax(ok)) > 0  # row T stops short
    if reach is not None:
        where = f"{who} falls below {FALL:g} of its largest value {steps(reach)} back"
    elif cut:
        where = (
            f"{who} reaches only {steps(T - 1 - int(np.argmax(ok)))} "
            f"back{why_short}, and stays above {FALL:g} of its largest value there"
        )
    else:
        where = f"{who} stays above {FALL:g} of its largest value as far as measured"
    return where + _farthest(row, ok)


def _pooled_slope(rows: np.ndarray, tp: np.ndarray, ell: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of y on ℓ with one intercept per row (the within-row fit); None
    when no row has two lags."""
    sxy = sxx = 0.0
    for r in rows:
        m = tp == r
        dl = ell[m] - ell[m].mean()
        sxy += float(dl @ (y[m] - y[m].mean()))
        sxx += float(dl @ dl)
    return sxy / sxx if sxx > 0 else None


def _farthest(row: np.ndarray, ok: np.ndarray) -> str:
    """'; 25 steps back it is 3.1e-09 of it': L_T's gradient at the farthest step it reaches,
    relative to its largest value (the answer to "does step T's gradient reach step T − k?")."""
    if not ok.any() or not np.nanmax(np.where(ok, row, 0.0)) > 0:
        return ""
    first = int(np.argmax(ok))  # the farthest step back with an entry
    ell = len(row) - 1 - first
    if ell < 1:
        return ""
    ratio = row[first] / np.nanmax(np.where(ok, row, 0.0))
    return f"; {steps(ell)} back it is " + (f"{ratio:.2g} of it" if ratio > 0 else "exactly 0")


def _reach(row: np.ndarray, ok: np.ndarray) -> int | None:
    """Lag at which L_T's gradient, going back past its peak, falls below FALL × the peak;
    ``ok`` (T,) marks the steps it reaches (one stretch ending at T)."""
    if not ok.any():
        return None
    back = row[int(np.argmax(ok)) :][::-1]  # by lag ℓ = T − t
    top = int(np.argmax(back))
    below = np.nonzero(back[top:] < FALL * back[top])[0]
    return top + int(below[0]) if below.size else None
