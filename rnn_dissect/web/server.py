"""The explorer's local server: the standard library's ``http.server``, one page, one JSON API.

Why the standard library and not an ASGI stack: the explorer serves one page and one POST to
one local user; ``ThreadingHTTPServer`` does that with no dependency to install, audit or keep
in step (tinygrad's viz server makes the same choice), and the engine underneath is
synchronous, CPU-bound numpy that an event loop would not speed up.

    GET  /?token=T                 the explorer page (page and data inline)
    GET  /explore.json?token=T     the page's data for the starting text
    POST /api/dissect?token=T      {"text": "..."} → the page's data for that text
    POST /api/node?token=T         {"text": "...", "id": "t3.l0.a"} → that node's value and
                                   gradient (pages too big to carry the numbers inside cells)

Security, as Jupyter does it: the server binds 127.0.0.1 unless told otherwise; every request
needs the random token (403 without it), so another website open in the same browser cannot
drive it; a Host header other than the bound address is refused (DNS rebinding); pages carry a
Content-Security-Policy that allows nothing from the network; bodies are bounded. A bad
request gets a 400 and one line of JSON ``{"error": "..."}``, never a traceback, and the
server keeps serving. One recompute runs at a time (the engine uses both cores).
"""

from __future__ import annotations

import errno
import hmac
import json
import secrets
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rnn_dissect.errors import UserError
from rnn_dissect.reports.explore import dumps, page_html
from rnn_dissect.reports.explore_session import Session

__all__ = ["MAX_BODY", "Explorer", "start"]

MAX_BODY = 64 * 1024  # bytes of a POST body
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Explorer(ThreadingHTTPServer):
    """The server: ``session`` computes, ``token`` guards. ``url`` is what to open."""

    daemon_threads = True

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 0) -> None:
        self.session = session
        self.token = secrets.token_urlsafe(24)
        self.lock = threading.Lock()
        super().__init__((host, port), _Handler)
        self.host = host
        self.port = int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/?token={self.token}"
        allowed = {host, "127.0.0.1", "localhost", "[::1]"} | (
            {f"[{host}]"} if ":" in host else set()
        )
        self.hosts = {f"{h}:{self.port}" for h in allowed}


class _Handler(BaseHTTPRequestHandler):
    server: Explorer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the terminal shows the URL and errors, not every request

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, text: str) -> None:
        self._send(status, text.encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, json.dumps({"error": message}, ensure_ascii=False))

    def _route(self) -> str:
        """The path, once the Host header and the token have been checked."""
        host = self.headers.get("Host", "")
        if host not in self.server.hosts:
            raise _RefusedError(
                403, f"forbidden: unexpected Host {host[:60]!r}; open the URL the server printed"
            )
        url = urlsplit(self.path)
        token = parse_qs(url.query).get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            raise _RefusedError(
                403, "forbidden: this explorer needs the token it printed at start (…/?token=…)"
            )
        return url.path

    def _handle(self, method: str) -> None:
        try:
            path = self._route()
            if method == "GET" and path == "/":
                html = page_html(self._compute(None), api={"token": self.server.token})
                self._send(200, html.encode("utf-8"), "text/html; charset=utf-8")
            elif method == "GET" and path == "/explore.json":
                self._json(200, dumps(self._compute(None)))
            elif method == "POST" and path == "/api/dissect":
                self._json(200, dumps(self._compute(self._body()["text"])))
            elif method == "POST" and path == "/api/node":
                body = self._body(("text", "id"))
                with self.server.lock:
                    node = self.server.session.node(body["text"], body["id"])
                self._json(200, json.dumps(node, allow_nan=False))
            else:
                raise _RefusedError(
                    404 if method == "GET" else 405, f"no {method} {path[:80]} here"
                )
        except _RefusedError as e:
            self._error(e.status, str(e))
        except UserError as e:
            self._error(400, str(e))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away
        except Exception as e:  # a bug: say so in one line, log it, keep serving
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error ({type(e).__name__}); see the server's terminal")

    def _body(self, keys: tuple[str, ...] = ("text",)) -> dict[str, str]:
        """A POST body ``{"text": "...", …}`` (bounded; ``keys`` must be strings)."""
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise _RefusedError(411, "send a Content-Length header with the JSON body") from None
        if n > MAX_BODY or n < 0:
            self.close_connection = True
            raise _RefusedError(413, f"the request body is {n} bytes; at most {MAX_BODY} are read")
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UserError('the request body must be JSON like {"text": "hello"}') from None
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in keys):
            want = ", ".join(f'"{k}": "..."' for k in keys)
            raise UserError(f"the request body must be JSON like {{{want}}}")
        return {k: str(body[k]) for k in keys}

    def _compute(self, text: str | None) -> dict[str, Any]:
        with self.server.lock:
            return self.server.session.data(text)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def start(
    session: Session, host: str = "127.0.0.1", port: int = 0
) -> tuple[Explorer, threading.Thread]:
    """Serve ``session`` from a background thread; returns the server (``.url``) and the
    thread. Stop with ``server.shutdown(); server.server_close()``."""
    try:
        server = Explorer(session, host, port)
    except OSError as e:  # the port taken or reserved, else the address is not this machine's
        busy = e.errno in (errno.EADDRINUSE, errno.EACCES)
        fix = "choose another --port" if busy else "give --host an address of this machine"
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); {fix}") from None
    thread = threading.Thread(target=server.serve_forever, name="rnn-dissect-explorer", daemon=True)
    thread.start()
    return server, thread
