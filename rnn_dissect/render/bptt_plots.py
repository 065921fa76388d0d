"""Small plots for the BPTT pages: inline SVG written by hand (no script, no CDN), and the
``flow`` figure with matplotlib.

- :func:`heatmap_svg`: a matrix as coloured cells on a log scale (white = the smallest
  non-zero magnitude shown, dark = the largest; blank = 0 or not computed); every cell has
  a ``<title>`` with its exact value, so a reader (or a test) can hover it.
- :func:`bars_svg`: grouped bars per step, one colour per series, log or linear height; the
  y axis names its scale, a log axis has a grid line per decade.
- :func:`reach_figure`: ‖∂L_T/∂h_{T−ℓ}‖ / max against the lag ℓ, one line per cell, the
  1e-3 threshold and each cell's reach marked.

    >>> '<rect' in heatmap_svg(np.array([[1.0, 0.1]]), ["W"], ["1", "2"])
    True
"""

from __future__ import annotations

import html
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from rnn_dissect.autograd.engine import Kind
from rnn_dissect.render.cards import PALETTE

__all__ = ["CELL_STYLES", "GATE_SHADES", "GRADIENT_COLOURS", "PARAMETER_SHADES", "SERIES_COLOURS"]
__all__ += ["CellStyle", "bars_svg", "heatmap_svg", "reach_figure"]

SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00")  # Okabe–Ito


@dataclass(frozen=True)
class CellStyle:
    """How one cell type is drawn where RNN, LSTM and GRU are compared: every hue already
    names a node kind or a gradient (vermilion = the cell state c, blue = h, green = an
    activation), so the cells take neutral greys told apart by line style and marker (lines)
    or hatching (bars), and are labelled directly."""

    colour: str  # a neutral grey (r = g = b)
    linestyle: str  # matplotlib's
    marker: str  # matplotlib's
    hatch: bool  # bars: diagonal lines in ``colour`` on white instead of a solid fill


CELL_STYLES = {
    "rnn": CellStyle("#222222", "-", "o", False),
    "lstm": CellStyle("#555555", "--", "s", True),
    "gru": CellStyle("#7a7a7a", "-.", "^", False),
}
# The gradient a step receives, coloured as the explorer colours it (explorer.css) and as the
# graph colours the node it is the gradient of: from the head at t (grey, as the output), carried
# along h (the state's blue) or along c (the cell's vermilion), and at the pre-activation (yellow).
GRADIENT_COLOURS = {
    "dh_direct": "#999999",
    "dh_next": PALETTE[Kind.STATE],
    "dc_next": PALETTE[Kind.CELL],
    "dh_raw": PALETTE[Kind.PREACT],
}
# Several parameters (or gates) side by side: shades of the graph's parameter orange (gate
# pink), so a bar's hue still says what kind of thing it is — dark, the colour, light.
PARAMETER_SHADES = ("#9C6B00", PALETTE[Kind.PARAMETER], "#F5CC73")
GATE_SHADES = ("#8A3E6C", PALETTE[Kind.GATE], "#EBC2DA")


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _shade(frac: float) -> str:
    """0 → near white, 1 → dark blue (linear in the log magnitude)."""
    lo, hi = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(a + (b - a) * frac):02x}" for a, b in zip(lo, hi, strict=True))


def heatmap_svg(
    m: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    *,
    cell: int = 18,
    label_width: int = 150,
    title: str = "",
) -> str:
    """``m`` (R, C) of magnitudes ≥ 0 (NaN = not computed) as a log-colour grid."""
    m = np.asarray(m, dtype=np.float64)
    pos = m[np.isfinite(m) & (m > 0)]
    lo, hi = (float(np.log10(pos.min())), float(np.log10(pos.max()))) if pos.size else (0.0, 0.0)
    R, C = m.shape
    step = max(1, math.ceil(C / 25))  # column labels: at most ~25
    w, h = max(label_width + C * cell + 10, 420), 22 + R * cell + 24
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{html.escape(title)}">'
    ]
    for j in range(0, C, step):
        x = label_width + j * cell + cell / 2
        out.append(
            f'<text x="{x}" y="14" font-size="10" text-anchor="middle">{html.escape(cols[j])}</text>'
        )
    for i in range(R):
        y = 20 + i * cell
        out.append(
            f'<text x="{label_width - 4}" y="{y + cell * 0.7}" font-size="11" '
            f'text-anchor="end">{html.escape(rows[i])}</text>'
        )
        for j in range(C):
            v = m[i, j]
            if not np.isfinite(v) or v <= 0:
                fill = "#ffffff"
            else:
                fill = _shade(0.15 + 0.85 * ((math.log10(v) - lo) / (hi - lo) if hi > lo else 1.0))
            tip = "not computed" if not np.isfinite(v) else _fmt(float(v))
            out.append(
                f'<rect x="{label_width + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{fill}" stroke="#e3e6ea" data-v="{tip}"><title>'
                f"{html.escape(rows[i])}, {html.escape(cols[j])}: {tip}</title></rect>"
            )
    scale = f"log colour scale: {10**lo:.3g} (light) … {10**hi:.3g} (dark)" if pos.size else "all 0"
    out.append(f'<text x="{label_width}" y="{h - 6}" font-size="10">{html.escape(scale)}</text>')
    out.append("</svg>")
    return "".join(out)


def _tick(v: float) -> str:
    """An axis label: 3 significant digits, plain ASCII (``0.0339``, ``1e-05``)."""
    return f"{v:.3g}"


def bars_svg(
    series: Mapping[str, Sequence[float]],
    labels: Sequence[str],
    *,
    log: bool = True,
    height: int = 140,
    title: str = "",
    colours: Sequence[str] | None = None,
    hatches: Sequence[bool] | None = None,
    ylabel: str = "",
    xlabel: str = "step t",
) -> str:
    """Grouped bars: for each label (a step), one bar per series (``colours[s]``, else the
    Okabe–Ito series colours; ``hatches[s]``: diagonal lines of that colour on white, an
    ``<pattern>`` in the SVG's ``<defs>``). Linear height starts at 0. Log height starts at a whole
    decade below the smallest non-zero value (so the smallest bar is still a bar, not a
    stub; at most 4 decades below the largest) with a grid line per decade; a value of 0
    has no bar and is written as "0" on the baseline. The y axis says which scale it is.
    """
    names = list(series)
    vals = np.array([list(series[n]) for n in names], dtype=np.float64)  # (S, N)
    S, N = vals.shape
    pal = list(colours) if colours else list(SERIES_COLOURS)
    pos = vals[np.isfinite(vals) & (vals > 0)]
    top = float(pos.max()) if pos.size else 1.0
    lo_dec = math.floor(math.log10(float(pos.min())) - 0.3) if pos.size else 0
    lo_dec = max(lo_dec, math.floor(math.log10(top)) - 4)
    floor = min(10.0**lo_dec, top / 10)  # the log baseline: a whole decade

    def frac(v: float) -> float:
        if not np.isfinite(v) or v <= 0:
            return 0.0
        if not log:
            return v / top
        return max(0.02, math.log10(v / floor) / math.log10(top / floor))

    bw, gap = max(6, min(24, 360 // max(N * S, 1))), 6
    scale = "log scale" if log else "linear, from 0"
    yname = f"{ylabel} ({scale})" if ylabel else scale
    w = max(  # the bars, the legend, the y axis's name (~6 px a character), and a minimum
        50 + N * (S * bw + gap) + 10,
        60 + sum(24 + 7 * len(n) for n in names),
        12 + 6 * len(yname),
        240,
    )
    # few steps: the groups spread over the whole axis (bars up to 40 wide), no empty stretch
    gw = (w - 60) / max(N, 1)
    bw = max(bw, min(40, int((gw - gap) / S)))
    pad = (gw - S * bw) / 2  # the group's bars centred in its slot
    mt = 24  # top margin: the y axis's name above the top tick label
    base = mt + height  # the baseline's y
    h = base + 50
    step = max(1, math.ceil(N / 25))
    fills, defs = [], []
    for k, n in enumerate(names):
        colour = pal[k % len(pal)]
        if hatches and hatches[k % len(hatches)]:  # an id unique to this chart and series
            pid = f"hatch-{zlib.crc32(f'{title}|{n}|{colour}'.encode()):08x}"
            defs.append(
                f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="5" height="5" '
                f'patternTransform="rotate(45)"><rect width="5" height="5" fill="#ffffff"/>'
                f'<line x1="0" y1="0" x2="0" y2="5" stroke="{colour}" stroke-width="2.4"/>'
                "</pattern>"
            )
            fills.append((f"url(#{pid})", f'stroke="{colour}" stroke-width="1"'))
        else:
            fills.append((colour, 'stroke="#00000055" stroke-width="0.5"'))
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{html.escape(title)}">',
        f"<defs>{''.join(defs)}</defs>" if defs else "",
        f'<text class="ylabel" x="2" y="11" font-size="10">{html.escape(yname)}</text>',
        f'<line x1="48" y1="{base}" x2="{w - 5}" y2="{base}" stroke="#999"/>',
    ]
    ticks = (
        [(10.0**d, frac(10.0**d)) for d in range(lo_dec, math.floor(math.log10(top)) + 1)]
        if log
        else [(0.0, 0.0), (top, 1.0)]
    )
    if log:  # the baseline, the decades above it, and the largest value unless a decade is near
        ticks = [(floor, 0.0)] + [t for t in ticks if t[1] > 0.05]
        if all(abs(1.0 - f) * height > 16 for _, f in ticks):
            ticks.append((top, 1.0))
    for v, f in ticks:
        y = base - f * height
        if f > 0:
            out.append(f'<line x1="48" y1="{y:.2f}" x2="{w - 5}" y2="{y:.2f}" stroke="#eee"/>')
        out.append(
            f'<text class="tick" x="44" y="{y + 3:.2f}" font-size="10" text-anchor="end">'
            f"{_tick(v)}</text>"
        )
    for j in range(N):
        x0 = 50 + j * gw + pad
        for s in range(S):
            v = float(vals[s, j])
            bh = frac(v) * height
            tip = f"<title>{html.escape(names[s])} at {html.escape(labels[j])}: {_fmt(v)}</title>"
            out.append(
                f'<rect x="{x0 + s * bw:.2f}" y="{base - bh:.2f}" width="{bw - 1}" '
                f'height="{bh:.2f}" fill="{fills[s][0]}" {fills[s][1]}>{tip}</rect>'
            )
            if v == 0:
                out.append(
                    f'<text class="zero" x="{x0 + s * bw + (bw - 1) / 2:.2f}" y="{base - 2}" '
                    f'font-size="9" text-anchor="middle" fill="#555">0</text>'
                )
        if j % step == 0:
            out.append(
                f'<text x="{x0 + S * bw / 2:.2f}" y="{base + 14}" font-size="10" '
                f'text-anchor="middle">{html.escape(labels[j])}</text>'
            )
    out.append(
        f'<text class="xlabel" x="44" y="{base + 14}" font-size="10" text-anchor="end">'
        f"{html.escape(xlabel)}</text>"
    )
    x = 50
    for s, n in enumerate(names):
        out.append(
            f'<rect x="{x}" y="{base + 24}" width="10" height="10" fill="{fills[s][0]}" '
            f"{fills[s][1]}/>"
        )
        out.append(f'<text x="{x + 14}" y="{base + 33}" font-size="11">{html.escape(n)}</text>')
        x += 24 + 7 * len(n)
    out.append("</svg>")
    return "".join(out)


def reach_figure(
    curves: dict[str, Sequence[float]], reach: dict[str, int | None], fall: float, title: str
) -> Figure:
    """One line per cell: normalised ‖∂L_T/∂h_{T−ℓ}‖ against ℓ (log y), threshold dashed.

    Two panels: on the right every lag (how fast each cell's gradient decays over the whole
    text); on the left the first lags only, down to a little below the threshold, where the
    lines cross it — the reaches, which are a few steps apart on a long text's axis. Each cell
    is drawn in its :data:`CELL_STYLES` (a neutral grey, a line style and a marker), named at
    the end of its line on the right; its reach is a larger open marker on the line in both.
    """
    found = [r for r in reach.values() if r is not None]
    n_lags = max((len(c) for c in curves.values()), default=1)
    x_zoom = min(n_lags - 1, max(10, math.ceil(1.6 * max(found, default=n_lags))))
    if x_zoom < (n_lags - 1) / 2:  # the crossings sit in a corner of the whole: zoom on them
        fig = Figure(figsize=(9.6, 3.9))
        zoom_ax, ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
        panels: tuple[tuple[Any, str, int], ...] = ((ax, "", 12), (zoom_ax, "zoom-", 8))
    else:  # a short text: the whole is already readable
        fig = Figure(figsize=(6.4, 3.8))
        ax = zoom_ax = fig.subplots()
        panels = ((ax, "", 12),)
    ends: list[tuple[float, float, str, str]] = []  # (x, y, cell, colour) of each line's end
    y_zoom = fall
    for cell, curve in curves.items():
        c = np.asarray(curve, dtype=np.float64)
        lags = np.arange(c.size)
        ok = c > 0
        st = CELL_STYLES.get(cell, CellStyle("#222222", "-", "o", False))
        r = reach.get(cell)
        label = f"{cell.upper()} (reach {r if r is not None else '> ' + str(c.size - 1)})"
        for a, prefix, marks in panels:
            span = int(ok.sum()) if a is ax else x_zoom
            a.plot(lags[ok], c[ok], color=st.colour, linestyle=st.linestyle, marker=st.marker,
                   markersize=3.5, markevery=max(1, span // marks), label=label,
                   gid=f"{prefix}reach-{cell}")  # fmt: skip
            if r is not None and 0 <= r < c.size and c[r] > 0:
                a.plot([r], [c[r]], linestyle="none", marker=st.marker, markersize=9,
                       markerfacecolor="none", markeredgecolor=st.colour, markeredgewidth=1.2,
                       gid=f"{prefix}reach-mark-{cell}")  # fmt: skip
        if ok.any():
            ends.append((float(lags[ok][-1]), float(c[ok][-1]), cell, st.colour))
        shown = c[: x_zoom + 1]
        if (shown > 0).any():
            y_zoom = min(y_zoom, float(shown[shown > 0].min()))
    for a, _, _ in panels:
        a.axhline(fall, color="#bbbbbb", linestyle=(0, (4, 3)), linewidth=1, zorder=0)
        a.set_yscale("log")
        a.set_xlabel("lag ℓ (steps back from the last step T)")
        a.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    zoom_ax.set_ylabel("‖∂L_T/∂h_(T−ℓ)‖ / max")
    if zoom_ax is not ax:
        zoom_ax.set_xlim(-0.5, x_zoom + 0.5)
        zoom_ax.set_ylim(max(y_zoom, fall / 100) / 2, 2.0)
        zoom_ax.set_title(f"the first {x_zoom} lags: where each line crosses", fontsize=9)
        ax.set_title("every lag", fontsize=9)
    # under the threshold at the left, where every line is still far above it
    zoom_ax.text(0.02, fall / 1.3, f"{fall:g} of the peak", transform=zoom_ax.get_yaxis_transform(),
                 va="top", ha="left", fontsize=8, color="#555555")  # fmt: skip
    zoom_ax.legend(fontsize=8, title="open marker: the reach", title_fontsize=7, loc="lower left")
    lo, hi = ax.get_ylim()
    gap = (math.log10(hi) - math.log10(lo)) / 14  # direct labels at least this far apart
    placed: list[float] = []
    right = offset_copy(ax.transData, fig=fig, x=5, units="points")  # just past the line's end
    for x, y, cell, colour in sorted(ends, key=lambda e: e[1]):
        ly = math.log10(y)
        if placed and ly - placed[-1] < gap:
            ly = placed[-1] + gap
        placed.append(ly)
        ax.text(x, 10.0**ly, cell.upper(), transform=right, fontsize=9, color=colour,
                fontweight="bold", va="center", ha="left", gid=f"reach-label-{cell}")  # fmt: skip
    ax.margins(x=0.1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
