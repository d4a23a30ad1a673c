"""`digest serve`: each digest's archive (`/DIGEST/`, `/DIGEST/feed.atom`), `/healthz`, and the
endpoints other modules add. The only module that imports Starlette and uvicorn.

Starlette (an ASGI toolkit) with uvicorn (its production server) rather than http.server: both are
well kept, Starlette's StaticFiles already refuses paths outside their folder and answers conditional
requests (ETag, Last-Modified, 304), and uvicorn handles slow clients and signals properly.

Adding endpoints: a module (the subscribers' unsubscribe and confirm pages, say) writes a function
`endpoints(config) -> list[Endpoint]` (digest.models: a path, methods, and a handler taking a
WebRequest and returning a WebReply, so it never imports Starlette) and names it in ENDPOINTS below.
Those routes come before the archives, so a digest cannot hide them.
"""

from __future__ import annotations

import html
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from digest import search
from digest.config import Config
from digest.deliver import safe_name
from digest.errors import ListenError, StoreError
from digest.jobs import read_history
from digest.lock import holder
from digest.models import Endpoint, WebReply, WebRequest
from digest.scheduler import next_edition, poll_jitter
from digest.store import open_store
from digest.unsubscribe import endpoints as subscriber_endpoints

log = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:8080"
# A job counts as late (and /healthz answers 503) when it is this much past its due time.
HEALTH_GRACE = timedelta(minutes=15)

# Other modules' endpoints: name -> function(config) -> endpoints. See the module docstring.
ENDPOINTS: dict[str, Callable[[Config], list[Endpoint]]] = {
    "search": search.endpoints,
    "subscribers": subscriber_endpoints,
}
MAX_FORM_BYTES = 64 * 1024  # a form an endpoint reads; larger bodies are refused

Clock = Callable[[], datetime]


def parse_listen(text: str) -> tuple[str, int]:
    """ "HOST:PORT" (IPv6 as "[::1]:8080") -> (host, port); ValueError naming what is wrong."""
    host, colon, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT such as {DEFAULT_LISTEN}, got {text!r}")
    return host, int(port_text)


class ArchiveFiles(StaticFiles):
    """One archive folder: StaticFiles (no path outside the folder; ETag, Last-Modified, 304) that
    also hides dot files, such as a page being written."""

    async def check_config(self) -> None:
        """No check: the folder appears with the digest's first edition, and until then every path is 404."""

    def lookup_path(self, path: str) -> tuple[str, Any]:
        if any(part.startswith(".") for part in Path(path).parts):
            return "", None
        return super().lookup_path(path)

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.setdefault("cache-control", "no-cache")  # revalidate: the feed changes with each edition
        return response


def health(config: Config, now: datetime) -> dict[str, Any]:
    """Whether the store opens and every source and digest job ran when it was due (give or take
    HEALTH_GRACE); "late" names those that did not."""
    if not config.store.exists():  # a health check makes no store: the first run or daemon does
        return {"ok": False, "reason": f"no store at {config.store.where} yet: nothing has run"}
    try:
        store = open_store(config.store, timeout=2.0)
        try:
            history = read_history(config, store)
        finally:
            store.close()
    except StoreError as error:
        return {"ok": False, "reason": f"store unusable: {error}"}
    late: list[str] = []
    cutoff = now - HEALTH_GRACE
    for source in config.sources:
        last, not_before = history.last_polls.get(source.name), history.polls_not_before.get(source.name)
        if not_before is not None and not_before > cutoff:
            continue  # its server asked us to wait
        if last is None:
            late.append(f"source {source.name}: never polled")
        elif last + source.interval + poll_jitter(source) < cutoff:
            late.append(f"source {source.name}: last polled {last.isoformat()}, due every {source.interval}")
    for digest in config.digests:
        last = history.last_editions.get(digest.name)
        if next_edition(digest, last, cutoff) <= cutoff:
            late.append(
                f"digest {digest.name}: a scheduled edition ({digest.schedule!r}) did not run; last "
                f"{last.isoformat() if last else 'never'}"
            )
    daemon = holder(config.store.path)
    report: dict[str, Any] = {"ok": not late, "daemon": {"running": daemon is not None, "pid": daemon}}
    if late:
        report["reason"] = "; ".join(late)
    return report


def multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (RFC 7578), as RFC 8058's one-click POST may send them."""
    parsed = BytesParser(policy=email_policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    if not parsed.is_multipart():
        return fields
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode("utf-8", "replace").strip("\r\n") if isinstance(payload, bytes) else ""
    return fields


def _wrap(endpoint: Endpoint) -> Route:
    """A Starlette route around a framework-free endpoint."""

    async def handle(request: Request) -> Response:
        form: dict[str, str] = {}
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            body = await request.body()
            if len(body) > MAX_FORM_BYTES:
                return Response("form too large", status_code=413, media_type="text/plain")
            if content_type.startswith("multipart/form-data"):
                form = multipart_fields(content_type, body)
            else:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        web_request = WebRequest(
            method=request.method,
            path_params={k: str(v) for k, v in request.path_params.items()},
            query=dict(request.query_params),
            form=form,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        reply: WebReply = await run_in_threadpool(endpoint.handle, web_request)  # off the event loop: it may read the store
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type, headers=reply.headers)

    return Route(endpoint.path, handle, methods=list(endpoint.methods))


def create_app(config: Config, clock: Clock) -> Starlette:
    """The web application: others' endpoints, /healthz, / (the digests), then each digest's archive."""
    archives = {
        safe_name(d.name): d.output_dir / safe_name(d.name) for d in config.digests if d.output_dir is not None and d.archive
    }

    def healthz(request: Request) -> Response:  # sync: Starlette runs it on a thread, off the event loop
        report = health(config, clock())
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    def home(request: Request) -> Response:
        items = "".join(f'<li><a href="{html.escape(name)}/">{html.escape(name)}</a></li>' for name in archives)
        return HTMLResponse(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>digests</title>'
            f"</head><body><h1>Digests</h1><ul>{items}</ul></body></html>"
        )

    routes: list[BaseRoute] = [_wrap(endpoint) for make in ENDPOINTS.values() for endpoint in make(config)]
    routes += [Route("/healthz", healthz), Route("/", home)]
    routes += [
        Mount(f"/{name}", app=ArchiveFiles(directory=folder, html=True, check_dir=False), name=name)
        for name, folder in archives.items()
    ]
    return Starlette(routes=routes)


def serve(config: Config, listen: str, clock: Clock, report: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM. ValueError for a bad address, ListenError when it cannot listen."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError as error:
        listener.close()
        raise ListenError(f"serve: cannot listen on {host}:{port}: {error.strerror or error}") from None
    app = create_app(config, clock)
    settings = uvicorn.Config(
        app, log_level="warning", access_log=False, server_header=False, lifespan="off", proxy_headers=False
    )
    where = f"http://{'[' + host + ']' if family == socket.AF_INET6 else host}:{port}/"
    report(f"serving {len(config.digests)} digest archive(s) and /healthz on {where}")
    _Server(settings).run(sockets=[listener])


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM or SIGINT ends it cleanly with exit 0, as the daemon does,
    instead of being raised again once the server has shut down."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()
