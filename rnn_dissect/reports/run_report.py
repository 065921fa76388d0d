"""``report.html`` in a run directory: read ``config.json``, ``metrics.jsonl`` and
``samples.txt`` and draw them (:mod:`rnn_dissect.render.run_page`). ``rnn-dissect train``
writes it when it stops; call :func:`write` again at any time (during training too) to
bring it up to date::

    python -c "from rnn_dissect.reports.run_report import write; write('runs/py')"
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rnn_dissect.render.run_page import render
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = ["read_samples", "write"]

_HEAD = re.compile(r"^--- step (\d+) ---$", re.M)


def read_samples(text: str) -> list[tuple[int, str]]:
    """``samples.txt`` → [(step, sample)], each sample without the blank lines around it."""
    parts = _HEAD.split(text)
    return [(int(parts[i]), parts[i + 1].strip("\n")) for i in range(1, len(parts) - 1, 2)]


def write(run_dir: str | Path) -> Path:
    """Write (or overwrite) ``run_dir/report.html``; returns its path."""
    run = Path(run_dir)
    metrics: list[dict[str, Any]] = []
    path = run / "metrics.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            metrics.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by Ctrl-C
    s = run / "samples.txt"
    samples = read_samples(s.read_text(encoding="utf-8", errors="replace")) if s.exists() else []
    try:
        cfg = json.loads((run / "config.json").read_text(encoding="utf-8")).get("train", {})
    except (OSError, json.JSONDecodeError):
        cfg = {}
    vals = [m["val_loss"] for m in metrics if "val_loss" in m]
    summary = (
        f"{cfg.get('cell', '?')} H={cfg.get('hidden_size', '?')} L={cfg.get('num_layers', '?')}, "
        f"seq {cfg.get('seq_len', '?')} × batch {cfg.get('batch_size', '?')}, "
        f"{cfg.get('optimizer', '?')} lr {cfg.get('lr', '?')}; "
        f"{metrics[-1]['step'] if metrics else 0} of {cfg.get('steps', '?')} steps logged"
        + (f"; best validation loss {min(vals):.4f}" if vals else "")
        + ". Regenerated from metrics.jsonl and samples.txt."
    )
    out = run / "report.html"
    title = "Training run: loss and samples"  # no path in it: a resumed run's page is the same
    page = render(title, summary, metrics, samples)
    write_atomic(out, [page.encode("utf-8")])  # a reader never sees half a page
    return out
