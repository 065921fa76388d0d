"""``rnn-dissect rnn``: dissect a char RNN / LSTM / GRU through time (BPTT made visible).

Also the shared pipeline of ``rnn-dissect dissect`` (:func:`dissect_and_write`): dissect,
print a terminal summary (or the JSON), write ``graph.svg``, ``walkthrough.html`` and
``dissection.json`` into the output directory. Above the size thresholds below the heavy
parts are turned off and the output says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rnn_dissect import document as dissection
from rnn_dissect.bptt.dissection import Dissection, dissect_text
from rnn_dissect.bptt.stepgrads import OPTIMIZERS
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render import bptt_walkthrough
from rnn_dissect.render import graph as render_graph
from rnn_dissect.render.numbers import num
from rnn_dissect.weights import checkpoint

__all__ = ["add_run_flags", "dissect_and_write", "one_line_errors", "register", "run"]

# Size thresholds (float64 numbers or graph nodes) above which a part is left out.
KEEP_STEP_TERMS = 2_000_000  # T·|θ|: every per-step weight-gradient term in dissection.json
KEEP_JACOBIANS = 200_000  # T·L·H²: the step Jacobian matrices themselves
SVD_WORK = 300_000_000  # T·L·S³: singular values of every step Jacobian
LAG_WORK = 500_000_000  # T·min(T, max_lag)·S²: the lag matrix (capped by --max-lag beyond)
MAX_FRAMES_T = 300  # step-through frames (and their embedded numbers) up to this T
MAX_GRAPH_NODES = 800  # graph.svg is drawn up to this many nodes

DESCRIPTION = """\
Dissect a character-level recurrent net through time. The char model is one-hot input ->
L stacked cells -> linear head; the loss is the mean cross-entropy of predicting text[1:]
from text[:-1]. Everything is float64 and exact against PyTorch autograd.

  rnn:  h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)     logits_t = W_hy h_t + b_y

The four answers, for your run: how gradients flow back (dL/dh_t direct vs recurrent, the
lag matrix, Jacobian singular values, a verdict); how the shared weights are updated
(per-step gradient terms that sum to the total, and the update dW); what forward keeps
(every cached tensor, bytes measured vs the formula); what backward carries (dh_next,
dc_next) and computes (dh_raw, gate pre-activation gradients).

Without flags: the classic "hello" example (vocabulary h,e,l,o, hidden size 3, input
"hell", targets "ello", seed 0). Fresh weights use PyTorch's initialisation from --seed;
the vocabulary is the text's characters in order of first appearance.
"""

EPILOG = """\
examples:
  rnn-dissect rnn                                    the hello example -> out/rnn/
  rnn-dissect rnn --cell lstm --layers 2 --out /tmp/lstm
  rnn-dissect rnn --text "hello world" --hidden 8 --truncate 3 --json
  rnn-dissect rnn --weights W.safetensors --text hello --out DIR

The output directory holds regenerated output: graph.svg, walkthrough.html and
dissection.json are overwritten on every run (other files in it are left alone).
Large inputs leave out the heavy parts (per-step matrices, Jacobian matrices, the graph
drawing, the step-through frames) and say so.
"""


def one_line_errors(p: argparse.ArgumentParser) -> None:
    """Make a bad flag value one ``error:`` line (exit 2) instead of usage + message."""

    def error(message: str) -> NoReturn:
        print(f"error: {p.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)

    p.error = error  # type: ignore[method-assign]


def add_run_flags(p: argparse.ArgumentParser, default_out: str) -> None:
    """The flags ``rnn`` and ``dissect`` share: BPTT options, update, output."""
    p.add_argument(
        "--truncate", type=int, metavar="K", help="truncated BPTT: detach the state every K steps"
    )
    p.add_argument(
        "--clip",
        type=float,
        metavar="C",
        help="clip the global gradient norm to C before the update",
    )
    p.add_argument(
        "--lr", type=float, default=0.1, help="learning rate of the update (default 0.1)"
    )
    p.add_argument(
        "--optimizer", default="sgd", help="sgd or adagrad: the update rule shown (default sgd)"
    )
    p.add_argument(
        "--max-lag", type=int, metavar="N", help="compute the lag matrix up to N steps back only"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(default_out),
        metavar="DIR",
        help=f"output directory (default {default_out}; its three files are overwritten)",
    )
    p.add_argument(
        "--json", action="store_true", help="print dissection.json to stdout instead of the summary"
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rnn",
        help="dissect a char RNN/LSTM/GRU through time (BPTT made visible)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--text",
        default="hello",
        help='the text: inputs text[:-1], targets text[1:] (default "hello")',
    )
    p.add_argument("--cell", help="rnn, lstm or gru (default rnn)")
    p.add_argument("--hidden", type=int, help="hidden size H (default 3)")
    p.add_argument("--layers", type=int, help="stacked layers L (default 1)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the weight initialisation (default 0)"
    )
    p.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="torch-named .safetensors weights (vocab in metadata)",
    )
    add_run_flags(p, "out/rnn")
    one_line_errors(p)
    p.set_defaults(func=run)


def check_text(text: str) -> None:
    if text == "":
        raise UserError("--text is empty; give at least two characters (one input, one target)")
    if len(text) < 2:
        raise UserError(
            f"--text {text!r} has one character; give at least two (one input, one target)"
        )


def run(args: argparse.Namespace) -> int:
    check_text(args.text)
    if args.weights is not None:
        model = checkpoint.load(args.weights)
        cfg = model.config
        for flag, want, have in (
            ("cell", args.cell, cfg.cell),
            ("hidden", args.hidden, cfg.hidden_size),
            ("layers", args.layers, cfg.num_layers),
        ):
            if want is not None and want != have:
                raise UserError(
                    f"--{flag} {want} disagrees with {args.weights} ({flag} {have}); drop --{flag}"
                )
    else:
        if args.seed < 0:
            raise UserError(f"--seed {args.seed} must be a whole number ≥ 0")
        cell = args.cell or "rnn"
        vocab = tuple(dict.fromkeys(args.text))
        H = 3 if args.hidden is None else args.hidden
        L = 1 if args.layers is None else args.layers
        model = CharModel.init(ModelConfig(cell, vocab, H, L), seed=args.seed)
    return dissect_and_write(model, args.text, args)


def _plan(model: CharModel, T: int, max_lag: int | None) -> tuple[dict[str, Any], list[str]]:
    """Which heavy parts to compute at this size, and the notes saying what was left out."""
    cfg = model.config
    H, L = cfg.hidden_size, cfg.num_layers
    S = 2 * H if cfg.cell == "lstm" else H
    n_params = sum(int(np.size(v)) for v in model.params.values())
    kw: dict[str, Any] = {"max_lag": max_lag}
    notes = []
    kw["step_grads"] = T * n_params <= KEEP_STEP_TERMS
    if not kw["step_grads"]:
        notes.append(
            f"Per-step weight-gradient terms are not written (T·|θ| = {T * n_params:,} > "
            f"{KEEP_STEP_TERMS:,}); their norms are."
        )
    kw["keep_jacobians"] = T * L * H * H <= KEEP_JACOBIANS
    if not kw["keep_jacobians"]:
        notes.append(
            f"Step Jacobian matrices are not written (T·L·H² = {T * L * H * H:,} > {KEEP_JACOBIANS:,}); "
            "their singular values are."
        )
    kw["jacobians"] = T * L * S**3 <= SVD_WORK
    if not kw["jacobians"]:
        notes.append(
            f"Jacobian singular values are skipped (T·L·S³ = {T * L * S**3:,} > {SVD_WORK:,})."
        )
    if max_lag is None and T * T * S * S > LAG_WORK:
        kw["max_lag"] = max(1, LAG_WORK // (T * S * S))
        notes.append(
            f"The lag matrix covers {kw['max_lag']} steps back only (full: T²·S² = "
            f"{T * T * S * S:,} > {LAG_WORK:,}); pass --max-lag to choose."
        )
    kw["frames"] = T <= MAX_FRAMES_T
    if not kw["frames"]:
        notes.append(
            f"T = {T} > {MAX_FRAMES_T}: no step-through frames; the answers below are complete."
        )
    return kw, notes


def dissect_and_write(model: CharModel, text: str, args: argparse.Namespace) -> int:
    """Dissect ``text`` with ``model`` and write the outputs; returns the exit code."""
    check_text(text)
    if not (np.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr {args.lr} must be a positive number")
    if args.clip is not None and not (np.isfinite(args.clip) and args.clip > 0):
        raise UserError(
            f"--clip {args.clip} must be a positive number (or omitted for no clipping)"
        )
    if args.optimizer not in OPTIMIZERS:
        raise UserError(f"unknown --optimizer {args.optimizer!r}; choose sgd or adagrad")
    kw, notes = _plan(model, len(text) - 1, args.max_lag)
    d = dissect_text(
        model,
        text,
        truncate=args.truncate,
        lr=args.lr,
        optimizer=args.optimizer,
        clip=args.clip,
        **kw,
    )
    doc = d.to_dict()
    doc["notes"] = notes
    text_json = dissection.dumps(doc)
    log = sys.stderr if args.json else sys.stdout
    if args.json:
        sys.stdout.write(text_json)
    else:
        print(summary(d, text), file=log)
    write(args.out, d, text, text_json, notes, log)
    return 0


def summary(d: Dissection, text: str) -> str:
    """The terminal summary: loss, gradient norms per parameter, update, verdict, memory."""
    cfg, run = d.run.model.config, d.run
    out = [
        f"{cfg.cell} H={cfg.hidden_size} L={cfg.num_layers} vocab={len(cfg.vocab)} T={run.T}"
        f"{f' truncate={run.truncate}' if run.truncate else ''}   inputs {text[:-1][:40]!r} "
        f"-> targets {text[1:][:40]!r}   (float64)",
        f"loss {num(d.loss, 8)}  (mean cross-entropy over {run.T} predictions)",
        "gradient norms ‖dL/dθ‖:",
    ]
    width = max(len(k) for k in d.grads)
    for name, g in d.grads.items():
        shape = "×".join(map(str, g.shape))
        out.append(f"  {name:<{width}}  {shape:<9} {num(float(np.linalg.norm(g)), 6)}")
    up = d.update
    clip = f", clipped ×{num(up.clip_coef, 6)}" if up.clip is not None else ""
    out.append(
        f"update: {up.optimizer} lr={num(up.lr, 6)}  global ‖g‖={num(up.grad_norm, 6)}{clip}"
    )
    for lf in d.flow.layers:
        out.append(f"gradient flow, layer {lf.layer}: {lf.verdict.reason}")
    m = d.memory
    out.append(
        f"forward cache: {m.measured_bytes} bytes measured, {m.formula_bytes} by the formula"
    )
    return "\n".join(out)


def write(out: Path, d: Dissection, text: str, text_json: str, notes: list[str], log: Any) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    (out / "dissection.json").write_text(text_json, encoding="utf-8")
    n_nodes = len(d.run.graph.nodes)
    svg: str | None = None
    missing = None
    if n_nodes <= MAX_GRAPH_NODES:
        cfg = d.run.model.config
        title = f"{cfg.cell.upper()} unrolled over {d.run.T} steps: {text[:-1][:30]!r} -> {text[1:][:30]!r}"
        try:
            svg = render_graph.to_svg(d.run.graph, title=title)
        except render_graph.GraphvizMissing as e:
            missing = e
            notes = [*notes, f"{e}; graph.svg was not drawn."]
    else:
        notes = [
            *notes,
            f"The graph has {n_nodes} nodes (> {MAX_GRAPH_NODES}): graph.svg is not drawn.",
        ]
    stale = out / "graph.svg"
    if svg is None and stale.exists():
        stale.unlink()  # regenerated output: never leave a drawing of another run
    page = bptt_walkthrough.render(d, svg, notes, text)
    (out / "walkthrough.html").write_text(page, encoding="utf-8")
    written = ["dissection.json", "walkthrough.html"]
    if svg is not None:
        (out / "graph.svg").write_text(svg, encoding="utf-8")
        written.insert(0, "graph.svg")
    for n in notes:
        print(f"note: {n}", file=log)
    print(f"wrote {', '.join(str(out / w) for w in written)}", file=log)
    if missing is not None:
        raise UserError(f"{missing}; graph.svg was not written (the other files were)")
