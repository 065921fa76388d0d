"""The package's layers: imports flow one way, from a layer to its own or lower ones.

The order (README "How the code is cut"; rnn_dissect/__init__ of each sub-package says what it
holds). Parsed with ``ast`` from the source, so a lazy import inside a function and an
import under ``TYPE_CHECKING`` count as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rnn_dissect"

# Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "document", "optim"),  # base: user errors, the JSON format, optimizer rules
    ("autograd",),  # the recorded graph, ops, gradcheck
    ("nets",),  # cells, the char model, the I:H:O network
    ("bptt", "weights"),  # unrolling and its analyses; safetensors, checkpoints, torch interop
    ("train",),  # training loop, run dir, data, sampling, kernels
    ("neurons",),  # activations and their analyses
    ("watch",),  # hooks on torch modules
    ("render",),  # drawings and pages
    ("reports",),  # what a command writes
    ("web",),  # the explorer's server
    ("cli",),  # flag parsing
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}

# Back edges being removed on another branch, as (importer file, imported module). Each entry
# must still exist (a stale one fails), so the set only shrinks. Keep it empty.
PENDING: set[tuple[str, str]] = set()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package in ``path``."""
    return _imports_in(path.read_text(encoding="utf-8"), path.relative_to(PKG.parent))


def _imports_in(source: str, where: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package in ``source`` (the file at
    ``where``, relative to the package's parent); ``from rnn_dissect import x`` yields
    ``rnn_dissect.x`` when x is a submodule, else ``rnn_dissect`` (the facade)."""
    tree = ast.parse(source, str(where))
    here = where.with_suffix("").parts
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = here[: len(here) - node.level]
                mod = ".".join(base + ((node.module,) if node.module else ()))
            else:
                mod = node.module or ""
            if mod == "rnn_dissect":
                for a in node.names:
                    sub = PKG / a.name
                    is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                    out.append((node.lineno, f"rnn_dissect.{a.name}" if is_module else mod))
            else:
                out.append((node.lineno, mod))
    return [(line, m) for line, m in out if m == "rnn_dissect" or m.startswith("rnn_dissect.")]


def _layer_of(module: str) -> int:
    """The layer of a package module; the facade ``rnn_dissect`` sits as high as what its
    ``__init__`` imports."""
    parts = module.split(".")
    if len(parts) == 1:
        return max(_layer_of(m) for _, m in _imports(PKG / "__init__.py"))
    if parts[1] in ("__init__", "__main__"):
        return len(LAYERS)
    assert parts[1] in LAYER, f"{module}: add rnn_dissect/{parts[1]} to LAYERS in {__file__}"
    return LAYER[parts[1]]


def _package_files() -> list[Path]:
    return sorted(
        p for p in PKG.rglob("*.py") if p.parent != PKG or p.stem not in ("__init__", "__main__")
    )


def back_edges() -> set[tuple[str, int, str]]:
    """(importer file, line, imported module) of every import that goes up a layer."""
    found = set()
    for path in _package_files():
        rel = path.relative_to(PKG)
        me = _layer_of("rnn_dissect." + rel.with_suffix("").parts[0])
        for line, mod in _imports(path):
            if _layer_of(mod) > me:
                found.add((rel.as_posix(), line, mod))
    return found


def test_every_module_has_a_layer():
    for path in _package_files():
        _layer_of("rnn_dissect." + path.relative_to(PKG).with_suffix("").parts[0])


def test_imports_flow_one_way():
    edges = back_edges()
    new = sorted(e for e in edges if (e[0], e[2]) not in PENDING)
    assert not new, "imports that go up a layer (file, line, module):\n" + "\n".join(map(str, new))
    stale = PENDING - {(f, m) for f, _, m in edges}
    assert not stale, f"fixed back edges still listed in PENDING: remove {sorted(stale)}"


def test_the_check_sees_a_back_edge():
    """The parser finds lazy, TYPE_CHECKING and relative imports (so the test above can fail)."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rnn_dissect.render import graph\n"
        "def f():\n    from ..reports import rnn\n    import rnn_dissect.cli\n"
        "from rnn_dissect import document, Graph\n"
    )
    mods = sorted(m for _, m in _imports_in(src, Path("rnn_dissect/autograd/probe.py")))
    assert mods == [
        "rnn_dissect",
        "rnn_dissect.cli",
        "rnn_dissect.document",
        "rnn_dissect.render",
        "rnn_dissect.reports",
    ]
    up = [m for m in mods if _layer_of(m) > LAYER["autograd"]]
    assert up == ["rnn_dissect", "rnn_dissect.cli", "rnn_dissect.render", "rnn_dissect.reports"]


def test_the_engine_imports_no_renderer():
    """Importing the engine loads no drawing code: the notebook display is attached by the
    package's __init__ from render/notebook.py, whose drawing imports are lazy."""
    code = (
        "import sys; import rnn_dissect.autograd.engine as e; "
        "drawn = [m for m in sys.modules if m in ('rnn_dissect.render.graph', 'rnn_dissect.render.table', 'rich', 'matplotlib')]; "
        "assert not drawn, drawn; assert hasattr(e.Graph, '_repr_svg_') and hasattr(e.Graph, '_repr_html_')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def graph():
    from rnn_dissect import Graph

    g = Graph()
    w = g.param([1.5, -2.0], id="w", name="w")
    g.backward((w * w).sum())
    return g


def test_jupyter_displays_a_graph(graph):
    """IPython's own formatter finds the SVG drawing and the HTML table on a Graph."""
    formatters = pytest.importorskip("IPython.core.formatters", reason="IPython not installed")
    data, _ = formatters.DisplayFormatter().format(graph)
    from rnn_dissect.render import graph as render_graph
    from rnn_dissect.render import table

    if render_graph.to_svg(graph) is not None:
        assert data["image/svg+xml"] == render_graph.to_svg(graph)
        assert 'id="w"' in data["image/svg+xml"]
    assert data["text/html"] == table.nodes_html(graph)
    assert "-4" in data["text/html"]  # dL/dw = 2w
