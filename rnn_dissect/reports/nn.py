"""What ``rnn-dissect nn`` writes: the I:H:O network's table (or ``dissection.json`` on
stdout) and, with an output directory, ``graph.svg``, ``walkthrough.html`` and
``dissection.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnn_dissect import document as dissection
from rnn_dissect.errors import UserError, make_dir
from rnn_dissect.nets import mlp
from rnn_dissect.render import graph as render_graph
from rnn_dissect.render import nn_walkthrough
from rnn_dissect.render.numbers import num
from rnn_dissect.render.table import nodes_table
from rnn_dissect.weights.safetensors_file import write_atomic

__all__ = ["dissect_and_write", "leaves", "mlp_document", "print_table", "write"]


def leaves(
    sizes: tuple[int, int, int], seed: int | None, given: Mapping[str, list[float]]
) -> dict[str, Any]:
    """The leaves to build from: ``given`` over the documented 3:1:1 numbers (sizes 3:1:1 and
    no seed) or over values drawn from ``numpy.random.default_rng(seed or 0)``."""
    if sizes == mlp.DEFAULT_SIZES and seed is None:
        base: dict[str, Any] = dict(mlp.DEFAULTS)
    else:
        base = dict(mlp.init_values(sizes, np.random.default_rng(seed or 0)))
    return {**base, **given}


def mlp_document(net: mlp.MLP, update: mlp.SGDUpdate) -> dict[str, Any]:
    """:func:`rnn_dissect.document.document` for the I:H:O network, with its sizes, inputs
    and one SGD step."""
    g = net.graph
    return dissection.document(
        g,
        g["loss"],
        model="mlp",
        sizes=list(net.sizes),
        inputs={"x": g["x"].value.tolist(), "y": g["y"].value.tolist()},
        sgd={
            "lr": update.lr,
            "new": {k: v.tolist() for k, v in update.new.items()},
            "loss_before": update.loss_before,
            "loss_after": update.loss_after,
        },
    )


def dissect_and_write(
    sizes: tuple[int, int, int],
    given: Mapping[str, list[float]],
    *,
    seed: int | None = None,
    lr: float = 0.1,
    out: Path | None = None,
    as_json: bool = False,
) -> int:
    """Build the network from :func:`leaves`, take one SGD step of ``lr``, print the table
    (or, with ``as_json``, the document to stdout and the rest to stderr) and, with ``out``,
    write the three files; returns the exit code."""
    net = mlp.build(leaves(sizes, seed, given), sizes)
    update = mlp.sgd_update(net, lr)
    doc = mlp_document(net, update)
    if as_json:
        sys.stdout.write(dissection.dumps(doc))
    else:
        print_table(net, update)
    if out is not None:
        write(out, net, update, doc, log=sys.stderr if as_json else sys.stdout)
    return 0


def print_table(net: mlp.MLP, update: mlp.SGDUpdate) -> None:
    """Every node with its value and gradient, the loss, the ReLU's state and the SGD step."""
    from rich.console import Console

    g = net.graph
    z1 = g["z1"].value
    relu = (
        "active"
        if np.all(z1 > 0)
        else (
            "inactive: gradient blocked"
            if np.all(z1 <= 0)
            else f"{int(np.sum(z1 > 0))}/{z1.size} active"
        )
    )
    console = Console()
    table = nodes_table(g)
    table.title = f"{':'.join(map(str, net.sizes))} network, every node (float64)"
    console.print(table)
    console.print(f"loss L = {num(net.loss, 6)}   ReLU {relu}   grad = dL/d(node)")
    console.print(
        f"SGD step (lr = {num(update.lr, 6)}): loss {num(update.loss_before, 6)} -> "
        f"{num(update.loss_after, 6)}"
    )


def write(out: Path, net: mlp.MLP, update: mlp.SGDUpdate, doc: dict[str, Any], log: Any) -> None:
    """Write ``dissection.json``, ``walkthrough.html`` and ``graph.svg`` into ``out``; without
    Graphviz the first two are written, then a :class:`UserError` names the install."""
    make_dir(out)
    write_atomic(out / "dissection.json", [dissection.dumps(doc).encode("utf-8")])
    title = f"The {':'.join(map(str, net.sizes))} network"
    svg: str | None = None
    missing: render_graph.GraphvizMissing | None = None
    try:
        svg = render_graph.to_svg(net.graph, title=title)
    except render_graph.GraphvizMissing as e:
        missing = e
    page = nn_walkthrough.render(net, update, svg)
    write_atomic(out / "walkthrough.html", [page.encode("utf-8")])
    written = ["dissection.json", "walkthrough.html"]
    if svg is not None:
        write_atomic(out / "graph.svg", [svg.encode("utf-8")])
        written.insert(0, "graph.svg")
    print(f"wrote {', '.join(str(out / w) for w in written)}", file=log)
    if missing is not None:
        raise UserError(
            f"{missing}; graph.svg was not written (dissection.json and walkthrough.html were)"
        )
