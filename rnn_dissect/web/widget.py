"""The explorer in Jupyter: the same front-end as the page and the server, as an anywidget.

    >>> import rnn_dissect
    >>> rnn_dissect.explore(model, "hello world")        # doctest: +SKIP

The widget holds the page's data as one synced trait (``data``, explore.json text). Typing
new text in it sends ``{"type": "dissect", "text": ...}``; Python recomputes with the same
:class:`~rnn_dissect.reports.explore_session.Session` the server uses, sets ``data``, then
answers ``{"type": "done"}`` — or ``{"type": "error", "error": "<one line>"}`` for text the
model cannot take. anywidget is an optional dependency (``pip install 'rnn-dissect[notebook]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnn_dissect.bptt.dissection import Dissection
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel
from rnn_dissect.render.explore_page import bundle, css
from rnn_dissect.reports.explore import dumps, explore_data
from rnn_dissect.reports.explore_session import Session, open_source

__all__ = ["ESM_RENDER", "esm", "explore", "widget_class"]

# anywidget's entry point around the bundle's mount(): render({model, el}).
ESM_RENDER = """
export default {
  render({ model, el }) {
    let pending = null;
    const read = () => JSON.parse(model.get("data"));
    const host = {
      keyTarget: "root",
      embedded: true,
      recompute: (text) => new Promise((resolve, reject) => {
        pending = { resolve, reject };
        model.send({ type: "dissect", text });
      }),
    };
    const app = mount(el, read(), host);
    const onMsg = (msg) => {
      if (!pending || !msg) return;
      const p = pending;
      pending = null;
      if (msg.type === "done") p.resolve(read());
      else if (msg.type === "error") p.reject(new Error(msg.error));
    };
    const onData = () => { if (!pending) app.update(read()); };
    model.on("msg:custom", onMsg);
    model.on("change:data", onData);
    return () => { model.off("msg:custom", onMsg); model.off("change:data", onData); };
  },
};
"""


def esm() -> str:
    """The widget's ES module: the explorer bundle plus anywidget's ``render``."""
    return bundle() + ESM_RENDER


_CLASS: Any = None


def widget_class() -> Any:
    """The anywidget class (built on first use, so importing this module needs no anywidget)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:
        import anywidget
        import traitlets
    except ImportError:
        raise UserError(
            "the notebook widget needs anywidget: pip install 'rnn-dissect[notebook]' "
            "(or run rnn-dissect explore for the same page in a browser)"
        ) from None

    class ExplorerWidget(anywidget.AnyWidget):
        """The explorer for one session; ``data`` is the page's document as JSON text."""

        _esm = esm()
        _css = css()
        data = traitlets.Unicode("{}").tag(sync=True)

        def __init__(self, session: Session, first: dict[str, Any] | None = None) -> None:
            super().__init__()
            self._session = session
            self.data = dumps(first if first is not None else session.data())
            self.on_msg(self._on_msg)

        def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
            if not isinstance(content, dict) or content.get("type") != "dissect":
                return
            try:
                self.data = dumps(self._session.data(content.get("text")))
            except UserError as e:
                self.send({"type": "error", "error": str(e)})
                return
            self.send({"type": "done"})

    _CLASS = ExplorerWidget
    return _CLASS


def explore(
    model: CharModel | Dissection | str | Path | None = None,
    text: str | None = None,
    *,
    cell: str | None = None,
    hidden: int | None = None,
    layers: int | None = None,
    seed: int = 0,
    neurons: str | None = None,
) -> Any:
    """The explorer as a notebook widget.

    ``model``: a :class:`CharModel` (its weights; type new text in the widget), a checkpoint
    or run directory path, a saved dissection directory, a :class:`Dissection` (shown as
    it is; ``text`` must be the text it dissected), or None for fresh weights (``cell``,
    ``hidden``, ``layers``, ``seed``, like ``rnn-dissect rnn``). ``neurons``: a
    ``rnn-dissect neurons`` output directory for the neurons view's rankings."""
    cls = widget_class()
    if isinstance(model, Dissection):
        if text is None:
            raise UserError("explore(dissection, text): pass the text it dissected")
        data = explore_data(model, text)
        return cls(Session(text, page=data, label="a Dissection"), data)
    if isinstance(model, CharModel):
        from rnn_dissect.reports.explore import check_text
        from rnn_dissect.reports.explore_session import default_text

        t = check_text(
            default_text(model.config.vocab) if text is None else text, model.config.vocab
        )
        return cls(Session(t, model=model, label="a model", neurons={}))
    source = None if model is None else str(model)
    return cls(
        open_source(
            source,
            text=text,
            cell=cell,
            hidden=hidden,
            layers=layers,
            seed=seed,
            neurons_dir=neurons,
        )
    )
