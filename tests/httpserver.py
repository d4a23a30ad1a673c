"""A real threaded HTTP server on a loopback address, for tests and benchmarks.

Routes map a path to a handler `(request) -> None` that writes the whole
response itself, so a test can misbehave on purpose (hang, trickle, lie about
Content-Length). `serve()` covers the usual case: a fixed body with an ETag and
Last-Modified, answering 304 to a matching conditional GET. Every request is
recorded (method, path, headers) for assertions.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[["RequestHandler"], None]


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    client_port: int = 0  # the connection it came on
    at: float = field(default_factory=time.time)  # when it arrived (the wall clock, as log lines' times)


class RequestHandler(BaseHTTPRequestHandler):
    """Dispatches to the route of the request's path (query ignored)."""

    protocol_version = "HTTP/1.1"
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        path = self.path.split("?")[0]
        owner.record(Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, self.client_address[1]))
        handler = owner.routes.get(path)
        if handler is None:
            self.respond(404, b"not found", "text/plain")
            return
        try:
            handler(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as the fetcher should on a misbehaving server

    def respond(self, status: int, body: bytes, content_type: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        """Send a complete response with a correct Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    @property
    def stopping(self) -> threading.Event:
        """Set when the server shuts down: hanging handlers wait on it."""
        return self.server.owner.stopping

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: "LocalServer"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up on a misbehaving handler are expected here


class LocalServer:
    """An HTTP server in a background thread on `host` (any loopback address)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server((host, 0), RequestHandler)
        self._server.owner = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=f"http-{host}", daemon=True)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def route(self, path: str, handler: Handler) -> str:
        """Serve `path` with `handler`; returns its URL."""
        self.routes[path] = handler
        return self.url(path)

    def serve(
        self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8", headers: dict[str, str] | None = None
    ) -> str:
        """Serve a fixed body with ETag and Last-Modified, honouring conditional GETs."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        modified = formatdate(1_700_000_000, usegmt=True)

        def handler(request: RequestHandler) -> None:
            if request.headers.get("If-None-Match") == etag or (
                "If-None-Match" not in request.headers and request.headers.get("If-Modified-Since") == modified
            ):
                request.send_response(304)
                request.send_header("ETag", etag)
                request.send_header("Content-Length", "0")
                request.end_headers()
                return
            request.respond(200, data, content_type, {"ETag": etag, "Last-Modified": modified, **(headers or {})})

        return self.route(path, handler)


# Misbehaving handlers, for tests of limits and error reporting.


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    """Always answer `code` (e.g. 500, or 429 with a Retry-After header)."""
    return lambda request: request.respond(code, body, headers=headers)


def redirect(location: str, code: int = 302) -> Handler:
    """Redirect to `location`."""
    return status(code, b"", {"Location": location})


def hang(request: RequestHandler) -> None:
    """Never answer (until the server stops)."""
    request.stopping.wait(60)


def _drip(request: RequestHandler, piece: bytes, times: int = 1000) -> None:
    """Write `piece` every 0.1 s, `times` times, until the server stops."""
    for _ in range(times):
        if request.stopping.wait(0.1):
            return
        request.wfile.write(piece)
        request.wfile.flush()


def trickle(request: RequestHandler) -> None:
    """Headers at once, then a 1000-byte body one byte every 0.1 s."""
    request.send_response(200)
    request.send_header("Content-Length", "1000")
    request.end_headers()
    _drip(request, b"x")


def trickle_headers(request: RequestHandler) -> None:
    """A status line, then one more header line every 0.1 s, never ending the headers."""
    request.wfile.write(b"HTTP/1.1 200 OK\r\n")
    _drip(request, b"X-Slow: 1\r\n")


def endless(request: RequestHandler) -> None:
    """A chunked body that never ends."""
    request.send_response(200)
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()
    chunk = b"x" * 65536
    while not request.stopping.is_set():
        request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def short_body(start: bytes) -> Handler:
    """Promise 5000 bytes, send only `start`, then close the connection."""

    def handler(request: RequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", "5000")
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(start)
        request.close_connection = True

    return handler


def gzip_bomb(inflated_bytes: int = 64 * 1024 * 1024) -> Handler:
    """A gzip body of about a thousandth of `inflated_bytes` that inflates to all of it."""
    bomb = gzip.compress(b" " * inflated_bytes)
    return status(200, bomb, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"})


def billion_laughs(root: str) -> str:
    """A DOCTYPE for element `root` whose entity lol9 expands to 10^9 "lol"s."""
    levels = "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    return f'<!DOCTYPE {root} [<!ENTITY lol "lol">{levels}]>'
