"""Two helpers every tour figure uses: a ``<figure data-fig=NAME>`` around a drawing, and a
matplotlib figure as an inline PNG (a ``data:`` URI: nothing to fetch)."""

from __future__ import annotations

import base64
import html
import io

from matplotlib.figure import Figure

__all__ = ["figure", "png"]


def png(fig: Figure, alt: str) -> str:
    """A matplotlib figure as an inline PNG (``data:`` URI), 2× for sharp text."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, metadata={"Software": None})
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def figure(name: str, body: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure data-fig="{name}">{body}{cap}</figure>'
