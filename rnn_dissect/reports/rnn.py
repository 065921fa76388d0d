"""What ``rnn-dissect rnn`` and ``rnn-dissect dissect`` write: dissect a text through time,
print a terminal summary (or the JSON), write ``graph.svg``, ``walkthrough.html`` and
``dissection.json`` into the output directory.

Above the size thresholds below the heavy parts are turned off (:func:`plan`) and the
output says so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect import document as dissection
from rnn_dissect.bptt.dissection import Dissection, dissect_text
from rnn_dissect.bptt.stepgrads import OPTIMIZERS
from rnn_dissect.errors import UserError, make_dir
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render import bptt_walkthrough
from rnn_dissect.render import graph as render_graph
from rnn_dissect.render.numbers import num
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.safetensors_file import write_atomic
from rnn_dissect.weights.state import read_state

__all__ = [
    "check_text",
    "dissect_and_write",
    "dissect_checkpoint",
    "dissect_fresh",
    "plan",
    "summary",
    "write",
]

# Size thresholds (float64 numbers or graph nodes) above which a part is left out.
KEEP_STEP_TERMS = 2_000_000  # T·|θ|: every per-step weight-gradient term in dissection.json
KEEP_JACOBIANS = 200_000  # T·L·H²: the step Jacobian matrices themselves
SVD_WORK = 300_000_000  # T·L·S³: singular values of every step Jacobian
LAG_WORK = 500_000_000  # T·min(T, max_lag)·L·S²: every layer's lag matrix (capped by --max-lag)
MAX_FRAMES_T = 300  # step-through frames (and their embedded numbers) up to this T
MAX_GRAPH_NODES = 800  # graph.svg is drawn up to this many nodes
BIG_ARRAY = (
    65_536  # a gradient or ΔW with more numbers is written as shape and norm (--full-arrays)
)


MAX_STEPS = 2000  # every node of every step stays in memory: 3,000 characters took 5.4 GB


def check_text(text: str) -> None:
    """A text to dissect needs one input and one target character at least, and at most
    ``MAX_STEPS + 1`` characters (the recording grows with T; 2,999 steps of the default
    2-layer LSTM took 5.4 GB and 2 min 42 s on a 2-core AMD EPYC, 2026-12-08)."""
    if text == "":
        raise UserError("--text is empty; give at least two characters (one input, one target)")
    if len(text) < 2:
        raise UserError(
            f"--text {text!r} has one character; give at least two (one input, one target)"
        )
    if len(text) - 1 > MAX_STEPS:
        raise UserError(
            f"--text has {len(text):,} characters; dissect keeps every node of every step in "
            f"memory, so it takes at most {MAX_STEPS + 1:,}: give a passage of it (for units "
            "over a long text, `rnn-dissect neurons RUN --text FILE`)"
        )


def dissect_fresh(
    text: str,
    *,
    cell: str | None = None,
    hidden: int | None = None,
    layers: int | None = None,
    seed: int = 0,
    weights: Path | None = None,
    **options: Any,
) -> int:
    """``rnn-dissect rnn``: a model with fresh weights from ``seed`` (vocabulary: the text's
    characters in order of first appearance; defaults rnn, H 3, L 1), or loaded from
    ``weights`` (then ``cell``/``hidden``/``layers``, when given, must agree with it);
    ``options`` as :func:`dissect_and_write`'s."""
    check_text(text)
    if weights is not None:
        model = checkpoint.load(weights)
        cfg = model.config
        for flag, want, have in (
            ("cell", cell, cfg.cell),
            ("hidden", hidden, cfg.hidden_size),
            ("layers", layers, cfg.num_layers),
        ):
            if want is not None and want != have:
                raise UserError(
                    f"--{flag} {want} disagrees with {weights} ({flag} {have}); drop --{flag}"
                )
    else:
        if seed < 0:
            raise UserError(f"--seed {seed} must be a whole number ≥ 0")
        vocab = tuple(dict.fromkeys(text))
        H = 3 if hidden is None else hidden
        L = 1 if layers is None else layers
        model = CharModel.init(ModelConfig(cell or "rnn", vocab, H, L), seed=seed)
    return dissect_and_write(model, text, **options)


def dissect_checkpoint(source: Path, text: str, **options: Any) -> int:
    """``rnn-dissect dissect``: :func:`dissect_and_write` with a checkpoint file's (or a run
    directory's ``model.safetensors``) weights."""
    check_text(text)
    return dissect_and_write(checkpoint.load(source), text, **options)


def plan(model: CharModel, T: int, max_lag: int | None) -> tuple[dict[str, Any], list[str]]:
    """Which heavy parts to compute at this size (keyword arguments of
    :func:`~rnn_dissect.bptt.dissection.dissect_text`), and the notes saying what was left out."""
    cfg = model.config
    H, L = cfg.hidden_size, cfg.num_layers
    S = cfg.n_states * H
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
    kw["jacobians"] = T * L * S**3 <= SVD_WORK
    state = f"S = {S}, the state size" + (f" ([h; c]: 2·{H})" if S != H else "")
    if not kw["jacobians"]:
        notes.append(
            f"Step Jacobians are not computed at this size: their singular values cost "
            f"T·L·S³ = {T * L * S**3:,} > {SVD_WORK:,} ({state}), so Q1 has no σ table and no "
            "spectral bound; the lag matrices and the verdicts are measured in full."
        )
    elif not kw["keep_jacobians"]:
        notes.append(
            f"Step Jacobian matrices are not written (T·L·H² = {T * L * H * H:,} > "
            f"{KEEP_JACOBIANS:,}); their singular values are."
        )
    if max_lag is None and T * T * L * S * S > LAG_WORK:
        kw["max_lag"] = max(1, LAG_WORK // (T * L * S * S))
        notes.append(
            f"The lag matrices cover {kw['max_lag']} step{'s' * (kw['max_lag'] != 1)} back only (full: T²·L·S² = "
            f"{T * T * L * S * S:,} > {LAG_WORK:,}); pass --max-lag to choose."
        )
    kw["frames"] = T <= MAX_FRAMES_T
    if not kw["frames"]:
        notes.append(
            f"T = {T} > {MAX_FRAMES_T}: no step-through frames; the answers below are complete."
        )
    return kw, notes


def dissect_and_write(
    model: CharModel,
    text: str,
    *,
    out: Path | None,
    truncate: int | None = None,
    clip: float | None = None,
    lr: float = 0.1,
    optimizer: str = "sgd",
    max_lag: int | None = None,
    h0: str | None = None,
    c0: str | None = None,
    as_json: bool = False,
    full_arrays: bool = False,
    backend: str = "numpy",
    device: str = "cpu",
) -> int:
    """Dissect ``text`` (inputs ``text[:-1]``, targets ``text[1:]``) with ``model``, print the
    summary (or, with ``as_json``, the document to stdout and the rest to stderr) and write
    the three files into ``out``; returns the exit code. ``h0`` / ``c0``: the initial state,
    as :func:`rnn_dissect.weights.state.read_state` reads it (default zeros). ``backend``
    torch: the forward pass also runs in PyTorch on ``device`` and is compared
    (:mod:`rnn_dissect.reports.torch_check`); exit code 1 when it disagrees."""
    check_text(text)
    if not (np.isfinite(lr) and lr > 0):
        raise UserError(f"--lr {lr} must be a positive number")
    if clip is not None and not (np.isfinite(clip) and clip > 0):
        raise UserError(f"--clip {clip} must be a positive number (or omitted for no clipping)")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown --optimizer {optimizer!r}; choose sgd or adagrad")
    cfg = model.config
    if c0 is not None and cfg.cell != "lstm":
        raise UserError(f"--c0 is the cell state of an LSTM; this model is a {cfg.cell}: drop --c0")
    L, H = cfg.num_layers, cfg.hidden_size
    init = {k: read_state(v, f"--{k}", L, H) for k, v in (("h0", h0), ("c0", c0)) if v is not None}
    check = _torch_check(backend, device)
    kw, notes = plan(model, len(text) - 1, max_lag)
    d = dissect_text(
        model, text, truncate=truncate, lr=lr, optimizer=optimizer, clip=clip, **init, **kw
    )
    doc = d.to_dict(max_array=None if full_arrays else BIG_ARRAY)
    big = [k for k, g in d.grads.items() if g.size > BIG_ARRAY]
    if big and not full_arrays:
        notes.append(
            f"dissection.json gives {', '.join(big)} (over {BIG_ARRAY:,} numbers each) as shape "
            "and norm, for their gradients and updates ΔW; --full-arrays writes every number."
        )
    sources = {k: v for k, v in (("h0", h0), ("c0", c0)) if v is not None}
    if init:  # where the initial state came from, and its values
        doc["initial_state"] = {
            k: {"from": sources[k], "value": a.tolist()} for k, a in init.items()
        }
    doc["notes"] = notes
    torch_rec = None
    if check is not None:
        torch_rec = doc["torch_forward"] = check.compare(model, text, d, init, device)
    text_json = dissection.dumps(doc)
    log = sys.stderr if as_json else sys.stdout
    if as_json:
        sys.stdout.write(text_json)
    else:
        given = ", ".join(f"{k} from {v}" for k, v in sources.items())
        print(summary(d, text) + (f"\ninitial state: {given} (else zeros)" if given else ""),
              file=log)  # fmt: skip
    if torch_rec is not None and check is not None:
        print(check.line(torch_rec), file=log)
    if out is not None:
        write(out, d, text, text_json, notes, log)
    else:  # --json without --out: the document went to stdout, no files
        for n in notes:
            print(f"note: {n}", file=log)
    if torch_rec is not None and not torch_rec["agrees"]:
        print(
            "error: PyTorch's forward pass disagrees with the float64 engine's "
            "(torch_forward in dissection.json)",
            file=sys.stderr,
        )
        return 1
    return 0


def _torch_check(backend: str, device: str) -> Any:
    """:mod:`rnn_dissect.reports.torch_check` for ``--backend torch`` (None for numpy);
    checks the flags before the long computation (torch missing, no GPU: one line)."""
    if backend not in ("numpy", "torch"):
        raise UserError(f"unknown --backend {backend!r}; choose numpy or torch")
    if backend == "numpy":
        if device != "cpu":
            raise UserError(f"--device {device} needs --backend torch (numpy runs on the CPU)")
        return None
    from rnn_dissect.reports import torch_check  # imports torch: only now

    torch_check.device_of(device)
    return torch_check


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
        out += [f"  {lf.verdict.bound}"] if lf.verdict.bound else []
    m = d.memory
    out.append(
        f"forward cache: {m.measured_bytes} bytes measured, {m.formula_bytes} by the formula"
    )
    return "\n".join(out)


def write(out: Path, d: Dissection, text: str, text_json: str, notes: list[str], log: Any) -> None:
    """Write ``dissection.json``, ``walkthrough.html`` and (when drawable) ``graph.svg`` into
    ``out``, print the notes and what was written to ``log``."""
    make_dir(out)
    write_atomic(out / "dissection.json", [text_json.encode("utf-8")])
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
    write_atomic(out / "walkthrough.html", [page.encode("utf-8")])
    written = ["dissection.json", "walkthrough.html"]
    if svg is not None:
        write_atomic(out / "graph.svg", [svg.encode("utf-8")])
        written.insert(0, "graph.svg")
    for n in notes:
        print(f"note: {n}", file=log)
    print(f"wrote {', '.join(str(out / w) for w in written)}", file=log)
    if missing is not None:
        raise UserError(f"{missing}; graph.svg was not written (the other files were)")
