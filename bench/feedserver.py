"""Loopback HTTP servers that serve fixed documents, optionally after a delay.

Every server runs on one asyncio event loop in one background thread: a
waiting response costs a timer, not a thread, and an idle server no CPU, so
500 slow feeds do not take processor time from the run being measured.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """The shared event loop, started in a daemon thread on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="feedserver", daemon=True).start()
        return _loop


class FeedServer:
    """Serves `documents` (path -> bytes) over HTTP/1.1 on `host`, a free port; use as a context manager."""

    def __init__(
        self,
        documents: dict[str, bytes],
        delay: float = 0.0,
        host: str = "127.0.0.1",
        etags: bool = False,
        access_log: list[tuple[float, str]] | None = None,
    ) -> None:
        self.documents = documents
        self.access_log = access_log  # when given, (wall-clock time, URL) of every request is appended
        self.delay = delay
        self.host = host
        # With etags, each document has an ETag and a matching If-None-Match gets a 304, as real feeds do.
        self.etags = {path: '"%s"' % hashlib.sha256(body).hexdigest()[:16] for path, body in documents.items()} if etags else {}
        self._server: asyncio.base_events.Server | None = None
        self.server_address: tuple[str, int] = (host, 0)

    def url(self, path: str) -> str:
        """The full URL of a served path."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> FeedServer:
        started = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, self.host, 0, backlog=1024), _event_loop())
        self._server = started.result(timeout=10)
        self.server_address = self._server.sockets[0].getsockname()[:2]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(self._server), _event_loop()).result(timeout=10)
            self._server = None

    @staticmethod
    async def _close(server: asyncio.base_events.Server) -> None:
        server.close()
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer GET requests on one connection until the client closes it."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                parts = head.split(b" ", 2)
                path = parts[1].decode("latin-1").split("?")[0] if len(parts) > 1 else "/"
                if self.access_log is not None:
                    self.access_log.append((time.time(), self.url(path)))
                if self.delay:
                    await asyncio.sleep(self.delay)
                body = self.documents.get(path)
                status, kind = ("200 OK", "application/rss+xml") if body is not None else ("404 Not Found", "text/plain")
                payload = body if body is not None else b"not found"
                etag = self.etags.get(path)
                extra = f"ETag: {etag}\r\n" if etag else ""
                if etag and f"if-none-match: {etag}".encode() in head.lower():
                    status, payload = "304 Not Modified", b""
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n{extra}Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
