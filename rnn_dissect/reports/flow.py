"""What ``rnn-dissect flow`` writes: how far back the gradient reaches in an RNN, an LSTM and
a GRU of the same size — a table on the terminal, ``flow.json``
(:meth:`rnn_dissect.bptt.reach.Comparison.to_dict`) and the plot ``flow.png`` / ``flow.svg``
(:func:`rnn_dissect.render.bptt_plots.reach_figure`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rnn_dissect.bptt.reach import compare, reading
from rnn_dissect.errors import UserError, make_dir
from rnn_dissect.render.bptt_plots import reach_figure
from rnn_dissect.render.neuron_plots import save_figure
from rnn_dissect.render.numbers import num
from rnn_dissect.reports.rnn import check_text
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = ["MAX_STEPS", "compare_and_write"]

MAX_STEPS = 2000  # the lag row costs O(T²·S²); beyond this, cut the text


def compare_and_write(text: str, *, hidden: int = 16, seed: int = 0, out: Path) -> int:
    """Unroll the three cells over ``text`` (weights from ``seed``), print the table and the
    reading, write the three files into ``out``; returns the exit code."""
    if len(text) - 1 > MAX_STEPS:  # before check_text, whose limit speaks of dissect
        raise UserError(f"--text has {len(text)} characters; give at most {MAX_STEPS + 1}")
    check_text(text)
    if hidden < 1:
        raise UserError(f"--hidden {hidden} must be at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed} must be a whole number ≥ 0")
    cmp = compare(text, hidden=hidden, seed=seed)
    print(
        f"how far back ‖∂L_T/∂h_t‖ reaches (T = {cmp.steps}, H = {cmp.hidden}, seed {cmp.seed}, "
        f"untrained, float64)"
    )
    print(f"  {'cell':<5} {'reach':>7} {'per step':>9} {'σ_max':>7}  verdict")
    for r in cmp.rows:
        reach = str(r.reach) if r.reach is not None else f">{r.looked_back}"
        per = "—" if r.decay_per_step is None else num(r.decay_per_step, 3)
        rho = "—" if r.spectral_geomean is None else num(r.spectral_geomean, 3)
        print(f"  {r.cell:<5} {reach:>7} {per:>9} {rho:>7}  {r.label}")
    print(reading(cmp))
    make_dir(out)
    doc = json.dumps(cmp.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    write_atomic(out / "flow.json", [doc.encode("utf-8")])
    fig = reach_figure(
        {r.cell: r.curve for r in cmp.rows},
        {r.cell: r.reach for r in cmp.rows},
        cmp.fall,
        f"gradient reach, T = {cmp.steps}, H = {cmp.hidden}",
    )
    png, svg = save_figure(fig, out / "flow")
    print(f"wrote {out / 'flow.json'}, {png}, {svg}", file=sys.stdout)
    return 0
