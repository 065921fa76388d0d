"""``report.html`` of a training run: the loss curves (train and validation) and the samples
drawn along the way, from the run directory's ``metrics.jsonl`` and ``samples.txt``.

Self-contained (:mod:`.page`'s shell); the curve is inline SVG: x the optimizer step, y the
loss in nats per character on a linear axis; training loss as a line, validation loss as a
line with a dot per evaluation. Every point carries ``data-step`` and ``data-loss`` (the
value as logged), so the picture can be checked against the log.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from rnn_dissect.render.page import page

__all__ = ["loss_svg", "render"]

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 820, 320, 56, 16, 16, 40
TRAIN, VAL = "#0072B2", "#D55E00"  # Okabe–Ito blue and vermillion


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def loss_svg(train: Sequence[tuple[int, float]], val: Sequence[tuple[int, float]]) -> str:
    """(step, loss) pairs → an SVG line chart; an empty chart says so."""
    pts = [*train, *val]
    if not pts:
        return "<p>No loss logged yet.</p>"
    x0, x1 = min(s for s, _ in pts), max(s for s, _ in pts)
    y0, y1 = min(v for _, v in pts), max(v for _, v in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9)

    def X(s: float) -> float:
        return PAD_L + (s - x0) / (x1 - x0) * (W - PAD_L - PAD_R)

    def Y(v: float) -> float:
        return PAD_T + (y1 - v) / (y1 - y0) * (H - PAD_T - PAD_B)

    out = [f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           'aria-label="training and validation loss against step" '
           'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">']  # fmt: skip
    out.append(f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
               f'height="{H - PAD_T - PAD_B}" fill="#fafafa" stroke="#ccc"/>')  # fmt: skip
    for v in _ticks(y0, y1):
        out.append(f'<text x="{PAD_L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
        out.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#e4e4e4"/>'
        )
    for s in _ticks(x0, x1):
        out.append(f'<text x="{X(s):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{s:.0f}</text>')
    out.append(
        f'<text x="{(W + PAD_L) / 2}" y="{H - 6}" text-anchor="middle">optimizer step</text>'
    )
    out.append(f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">'
               "loss (nats/char)</text>")  # fmt: skip
    for name, series, colour in (("train", train, TRAIN), ("val", val, VAL)):
        if not series:
            continue
        line = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in series)
        out.append(f'<polyline class="{name}" points="{line}" fill="none" stroke="{colour}" '
                   'stroke-width="2"/>')  # fmt: skip
        r = 3.5 if name == "val" else 0
        out += [f'<circle class="{name}" cx="{X(s):.1f}" cy="{Y(v):.1f}" r="{r}" fill="{colour}" '
                f'data-step="{s}" data-loss="{v!r}"/>' for s, v in series]  # fmt: skip
    out.append(
        f'<rect x="{W - 170}" y="{PAD_T + 8}" width="150" height="44" fill="#fff" stroke="#ccc"/>'
    )
    out.append(
        f'<line x1="{W - 160}" x2="{W - 130}" y1="{PAD_T + 22}" y2="{PAD_T + 22}" stroke="{TRAIN}" stroke-width="2"/>'
    )
    out.append(f'<text x="{W - 124}" y="{PAD_T + 26}">training loss</text>')
    out.append(
        f'<line x1="{W - 160}" x2="{W - 130}" y1="{PAD_T + 40}" y2="{PAD_T + 40}" stroke="{VAL}" stroke-width="2"/>'
    )
    out.append(f'<circle cx="{W - 145}" cy="{PAD_T + 40}" r="3.5" fill="{VAL}"/>')
    out.append(f'<text x="{W - 124}" y="{PAD_T + 44}">validation loss</text>')
    out.append("</svg>")
    return "".join(out)


def render(
    title: str,
    summary: str,
    metrics: Sequence[dict[str, Any]],
    samples: Sequence[tuple[int, str]],
) -> str:
    """The page: ``summary`` (plain text), the loss curves from the ``metrics`` lines, then
    every (step, text) sample, latest first."""
    train = [(int(m["step"]), float(m["train_loss"])) for m in metrics if "train_loss" in m]
    val = [(int(m["step"]), float(m["val_loss"])) for m in metrics if "val_loss" in m]
    body = [
        f'<p class="why">{html.escape(summary)}</p>',
        "<h2>Loss</h2>",
        '<p class="why">Training loss: the mean over the logged steps\' batches; validation '
        "loss: the held-out text, at every evaluation (dots). Nats per character; lower is "
        "better (ln(vocabulary) is a uniform guess).</p>",
        f'<div class="scroll">{loss_svg(train, val)}</div>',
        '<h2 id="samples">Samples across training</h2>',
        '<p class="why">What the model wrote at each sampling step, latest first: watch it '
        "learn spaces, then words, then syntax.</p>",
    ]
    for step, text in sorted(samples, key=lambda s: -s[0]):
        body.append(f'<h3 data-step="{step}">step {step:,}</h3>')
        body.append(f'<pre class="sample">{html.escape(text)}</pre>')
    if not samples:
        body.append("<p>No samples yet (--sample-every).</p>")
    style = "<style>pre.sample{white-space:pre-wrap;background:var(--soft);padding:.5rem;border-radius:.4rem;font-size:.85rem}</style>"
    return page(title, style, *body)
