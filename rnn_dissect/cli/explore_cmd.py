"""``rnn-dissect explore``: the explorer — a local page, or one self-contained file.

    rnn-dissect explore                                   fresh RNN weights, the "hello" example
    rnn-dissect explore runs/lstm --text "the cat"        a trained model (run dir or checkpoint)
    rnn-dissect explore --cell lstm --hidden 8 --export lstm.html

Serving prints one line, ``rnn-dissect explorer: http://127.0.0.1:PORT/?token=TOKEN``, and
runs until Ctrl-C; ``--export FILE.html`` writes the page instead (nothing is served).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import sys
import webbrowser
from pathlib import Path
from typing import Any

from rnn_dissect.cli.rnn_cmd import one_line_errors
from rnn_dissect.errors import UserError
from rnn_dissect.reports.explore import MAX_T, check_export, export_html
from rnn_dissect.reports.explore_session import open_source

__all__ = ["register", "run"]

EPILOG = f"""\
examples:
  rnn-dissect explore                                 the hello example, fresh RNN weights
  rnn-dissect explore --cell lstm --hidden 8 --text "hello world"
  rnn-dissect explore runs/py --neurons out/neurons   a trained model and its neuron rankings
  rnn-dissect explore runs/py --text-file snippet.py --export page.html

Fresh weights are those of `rnn-dissect rnn` for the same text, cell, sizes and seed (the
vocabulary is the text's characters), so the loss matches it. Texts are at most {MAX_T + 1}
characters (T = {MAX_T} steps). The page needs no network; the server binds 127.0.0.1 and
answers only requests that carry its token.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explore",
        help="the explorer: watch forward and backward move through time, in a browser",
        description="Open the explorer: the unrolled graph (pan, zoom, open a cell into its "
        "gates), step through forward t = 1..T and backward T..1, click any node for its value, "
        "gradient, saved tensors and equations, the four answers linked to the graph, and for a "
        "trained model the neurons view. Served locally, or exported as one HTML file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="RUN_DIR|CHECKPOINT|DISSECTION_DIR",
        help="a trained model, or a directory with a saved dissection (default: fresh weights)",
    )
    text = p.add_mutually_exclusive_group()
    text.add_argument(
        "--text", help='the text: inputs text[:-1], targets text[1:] (default "hello")'
    )
    text.add_argument(
        "--text-file", type=Path, metavar="FILE", help="read the text from a UTF-8 file"
    )
    p.add_argument("--cell", help="fresh weights: rnn, lstm or gru (default rnn)")
    p.add_argument("--hidden", type=int, help="fresh weights: hidden size H (default 3)")
    p.add_argument("--layers", type=int, help="fresh weights: stacked layers L (default 1)")
    p.add_argument(
        "--seed", type=int, default=0, help="fresh weights: initialisation seed (default 0)"
    )
    p.add_argument(
        "--neurons", metavar="DIR", help="a `rnn-dissect neurons` output directory: its rankings"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument(
        "--export", type=Path, metavar="FILE.html", help="write one self-contained page and exit"
    )
    one_line_errors(p)
    p.set_defaults(func=run)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(
            f"--text-file {path} {'is a directory' if path.is_dir() else 'does not exist'}; pass a UTF-8 text file"
        )
    try:
        with path.open(encoding="utf-8", newline="") as f:
            text = f.read(MAX_T + 2)
    except UnicodeDecodeError:
        raise UserError(f"--text-file {path} is not valid UTF-8; re-encode it") from None
    if len(text) > MAX_T + 1:
        raise UserError(
            f"--text-file {path} has more than {MAX_T + 1} characters, the explorer's limit; pass a shorter excerpt"
        )
    return text


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be a whole number ≥ 0")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} must be 0..65535 (0: any free port)")
    if args.export is not None:
        check_export(args.export)  # before any work: never replace a file that is no page
    text = _read_text(args.text_file) if args.text_file is not None else args.text
    session = open_source(
        args.source,
        text=text,
        cell=args.cell,
        hidden=args.hidden,
        layers=args.layers,
        seed=args.seed,
        neurons_dir=args.neurons,
    )
    if args.export is not None:
        path = export_html(session.data(), args.export)
        print(f"wrote {path} (open it in a browser; it needs no network)")
        return 0
    from rnn_dissect.web.server import start  # layer 9, only when serving

    session.data()  # the first page's data, computed before the URL is shown
    server, thread = start(session, args.host, args.port)
    with contextlib.suppress(ValueError):
        if not ipaddress.ip_address(str(server.server_address[0])).is_loopback:
            print(
                f"note: listening on {args.host}: other machines can reach it (they still need the token)",
                file=sys.stderr,
            )
    print(f"rnn-dissect explorer: {server.url}", flush=True)
    if not args.no_browser:
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(server.url)
    try:
        thread.join()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.shutdown()
        server.server_close()
    return 0
