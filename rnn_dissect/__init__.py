"""rnn-dissect: recurrent networks dissected — every value, gradient and saved tensor, exact."""

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.render.notebook import install as _install_notebook_display

_install_notebook_display(Graph)  # a Graph draws itself in Jupyter; the engine knows no renderer

__all__ = ["Graph", "Kind", "Node"]
__version__ = "0.1.0"
