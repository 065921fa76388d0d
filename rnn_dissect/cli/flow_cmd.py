"""``rnn-dissect flow``: how far back the gradient reaches in an RNN, an LSTM and a GRU.

Prints a table, writes ``flow.json`` (:meth:`rnn_dissect.bptt.reach.Comparison.to_dict`) and the
plot ``flow.png`` / ``flow.svg`` (:func:`rnn_dissect.render.bptt_plots.reach_figure`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rnn_dissect.bptt.reach import DEFAULT_TEXT, compare, reading
from rnn_dissect.cli.rnn_cmd import check_text, one_line_errors
from rnn_dissect.errors import UserError
from rnn_dissect.render.bptt_plots import reach_figure
from rnn_dissect.render.neuron_plots import save_figure
from rnn_dissect.render.numbers import num

__all__ = ["register", "run"]

MAX_STEPS = 2000  # the lag row costs O(T²·S²); beyond this, cut the text


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "flow",
        help="compare how far back the gradient reaches in RNN, LSTM and GRU",
        description="Unroll an RNN, an LSTM and a GRU of the same size (weights from one seed) "
        "over the same text and measure how far back the last step's gradient reaches: the "
        "lag at which ‖∂L_T/∂h_t‖ falls below 1e-3 of its largest value. float64.",
        epilog="example:\n  rnn-dissect flow --hidden 32 --out /tmp/flow\n\n"
        "flow.json, flow.png and flow.svg in --out are overwritten on every run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--text",
        default=DEFAULT_TEXT,
        help=f"the text (default: a built-in sentence of {len(DEFAULT_TEXT)} characters)",
    )
    p.add_argument(
        "--hidden", type=int, default=16, help="hidden size H of every cell (default 16)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/flow"),
        metavar="DIR",
        help="output directory (default out/flow)",
    )
    one_line_errors(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_text(args.text)
    if args.hidden < 1:
        raise UserError(f"--hidden {args.hidden} must be at least 1")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be a whole number ≥ 0")
    if len(args.text) - 1 > MAX_STEPS:
        raise UserError(f"--text has {len(args.text)} characters; give at most {MAX_STEPS + 1}")
    cmp = compare(args.text, hidden=args.hidden, seed=args.seed)
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
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    (out / "flow.json").write_text(
        json.dumps(cmp.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    fig = reach_figure(
        {r.cell: r.curve for r in cmp.rows},
        {r.cell: r.reach for r in cmp.rows},
        cmp.fall,
        f"gradient reach, T = {cmp.steps}, H = {cmp.hidden}",
    )
    png, svg = save_figure(fig, out / "flow")
    print(f"wrote {out / 'flow.json'}, {png}, {svg}", file=sys.stdout)
    return 0
