"""rnn-dissect: recurrent networks dissected — every value, gradient and saved tensor, exact."""

from typing import Any

from rnn_dissect.autograd.engine import Graph, Kind, Node
from rnn_dissect.render.notebook import install as _install_notebook_display

_install_notebook_display(Graph)  # a Graph draws itself in Jupyter; the engine knows no renderer

from rnn_dissect import watch  # noqa: E402  the package is callable; torch only when called
from rnn_dissect.reports.watch_page import explore_json as _explore_json  # noqa: E402

watch.EXPORTERS["explore.json"] = _explore_json  # d.save(DIR) also writes the explorer's page

__all__ = ["Graph", "Kind", "Node", "explore", "watch"]
__version__ = "0.1.0"


def explore(*args: Any, **kwargs: Any) -> Any:
    """The explorer as a Jupyter widget: ``rnn_dissect.explore(model, "hello world")``
    (see :func:`rnn_dissect.web.widget.explore`; needs ``rnn-dissect[notebook]``)."""
    from rnn_dissect.web.widget import explore as _explore

    return _explore(*args, **kwargs)
