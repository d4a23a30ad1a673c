"""A threaded HTTP server on a loopback address that serves fixed documents, optionally after a delay."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FeedServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.server.documents.get(self.path.split("?")[0])
        if self.server.delay:
            time.sleep(self.server.delay)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/rss+xml" if body is not None else "text/plain")
        payload = body if body is not None else b"not found"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


class FeedServer(ThreadingHTTPServer):
    """Serves `documents` (path -> bytes) on 127.0.0.1 in a background thread; use as a context manager."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, documents: dict[str, bytes], delay: float = 0.0, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.documents = documents
        self.delay = delay
        # A short poll interval: shutdown() waits for it, and the concurrency test stops 500 servers.
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        """The full URL of a served path."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
