"""rnn-dissect: recurrent networks dissected — every value, gradient and saved tensor, exact."""

from rnn_dissect.autograd.engine import Graph, Kind, Node

__all__ = ["Graph", "Kind", "Node"]
__version__ = "0.1.0"
