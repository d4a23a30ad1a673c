"""An SMTP or LMTP server on its own thread and event loop: the only module that imports aiosmtpd.

`digest inbound` (newsletters) and `digest mailsink` (a catch-all for trying
delivery) both run one. The server speaks the protocol; what to accept is
decided by a plain `MailHandler`, whose methods may block (they write to the
store): they run on one thread of their own, in order, so the event loop keeps
reading other connections meanwhile, and a handler's store connection stays on
one thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.errors import ListenError

log = logging.getLogger(__name__)
# aiosmtpd logs every command at INFO; its lines show only with --log-level debug.
if not logging.getLogger().isEnabledFor(logging.DEBUG):
    logging.getLogger("mail.log").setLevel(logging.WARNING)
Result = TypeVar("Result")
SESSION_TIMEOUT = 300.0  # seconds a client may stay silent (RFC 5321 suggests 5 minutes)


class MailHandler(Protocol):
    """What the server asks while a client talks to it; a reply string refuses, None accepts."""

    def recipient(self, sender: str, address: str) -> str | None:
        """RCPT TO: None to accept `address` for this message, else the reply ("550 5.1.1 ...")."""
        ...

    def message(self, sender: str, recipients: list[str], content: bytes) -> list[str]:
        """DATA ended: take the message in; one reply per recipient, in order (LMTP sends them all)."""
        ...

    def too_large(self, recipients: list[str]) -> None:
        """A message for `recipients` was refused with 552 because it is over the size limit."""
        ...


class _Hooks:
    """aiosmtpd's handler hooks, forwarding to a MailHandler on the handler thread."""

    def __init__(self, handler: MailHandler, run: Callable[..., Any], lmtp: bool) -> None:
        self.handler = handler
        self.run = run
        self.lmtp = lmtp

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        refusal = await self.run(self.handler.recipient, str(envelope.mail_from or ""), address)
        if refusal:
            return str(refusal)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = bytes(envelope.original_content or b"")
        recipients = [str(r) for r in envelope.rcpt_tos]
        replies = await self.run(self.handler.message, str(envelope.mail_from or ""), recipients, content)
        if self.lmtp:  # RFC 2033: one reply for each recipient that RCPT accepted
            return "\r\n".join(replies)
        for reply in replies:  # SMTP has one reply for all: a temporary failure makes the sender retry all
            if not reply.startswith("2"):
                return str(reply)
        return str(replies[0]) if replies else "250 OK"


class _SizeAware:
    """Tells the handler when aiosmtpd refused a message as too large (it does so before any hook)."""

    on_too_large: Callable[[list[str]], object]
    envelope: Envelope | None

    async def push(self, status: Any) -> None:
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("552") and self.envelope is not None and self.envelope.rcpt_tos:
            self.on_too_large([str(r) for r in self.envelope.rcpt_tos])
        await super().push(status)  # type: ignore[misc]


# RFC 5321 caps a line at 1,000 octets, aiosmtpd too (500 "Line too long"); some bulk senders write
# longer lines of HTML, so lines up to this are taken (the message as a whole stays under max_bytes).
LONGEST_LINE = 64 * 1024


class _Smtp(_SizeAware, SMTP):
    line_length_limit = LONGEST_LINE


class _Lmtp(_SizeAware, LMTP):
    line_length_limit = LONGEST_LINE


class MailServer:
    """SMTP on a TCP address and/or LMTP on a Unix socket, served from a thread of its own."""

    def __init__(
        self,
        handler: MailHandler,
        *,
        listen: tuple[str, int] | None = None,
        lmtp: Path | None = None,
        hostname: str = "",
        max_bytes: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.listen = listen
        self.lmtp = lmtp
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.tls = tls
        self.bound: tuple[str, int] | None = None  # the TCP address actually bound (port 0 picks one)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._calls = ThreadPoolExecutor(1, thread_name_prefix="mail-handler")

    def _protocol(self, lmtp: bool) -> SMTP:
        kind = _Lmtp if lmtp else _Smtp
        hooks = _Hooks(self.handler, self._call, lmtp)
        server = kind(
            hooks,
            data_size_limit=self.max_bytes,
            hostname=self.hostname,
            tls_context=None if lmtp else self.tls,
            enable_SMTPUTF8=True,
            timeout=SESSION_TIMEOUT,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
        )  # no AUTH offered
        server.on_too_large = lambda recipients: self._calls.submit(self._too_large, recipients)
        return server

    def _too_large(self, recipients: list[str]) -> None:
        try:
            self.handler.too_large(recipients)
        except Exception:  # counting must never break the session
            log.exception("counting a message refused as too large failed")

    async def _call(self, function: Callable[..., Result], *args: Any) -> Result:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._calls, function, *args)

    def start(self) -> None:
        """Bind and serve; ListenError naming the address when it cannot be used."""
        # aiosmtpd would look this machine's name up (DNS) again for every connection
        self.hostname = self.hostname or socket.getfqdn()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._bind(loop))
            except BaseException as error:
                failure.append(error)
                for server in self._servers:
                    server.close()
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                for server in self._servers:
                    server.close()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=serve, name="mail-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            if isinstance(failure[0], ListenError):
                raise failure[0]
            raise ListenError(f"cannot listen on {self.where()}: {failure[0]}") from None

    async def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.listen is not None:
            host, port = self.listen
            place = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            try:
                server = await loop.create_server(lambda: self._protocol(False), host=host, port=port, reuse_address=True)
            except OSError as error:
                raise ListenError(f"cannot listen on {place}: {_reason(error)}") from None
            self._servers.append(server)
            sockname = server.sockets[0].getsockname()
            self.bound = (sockname[0], sockname[1])
        if self.lmtp is not None:
            try:
                self.lmtp.parent.mkdir(parents=True, exist_ok=True)
                if self.lmtp.exists() or self.lmtp.is_symlink():
                    if not stat.S_ISSOCK(self.lmtp.lstat().st_mode):
                        raise ListenError(f"cannot listen on {self.lmtp}: a file that is not a socket is in the way")
                    self.lmtp.unlink()  # left by a process that was killed
                server = await loop.create_unix_server(lambda: self._protocol(True), path=str(self.lmtp))
                os.chmod(self.lmtp, 0o666)  # who may connect is decided by the folder's permissions
            except OSError as error:
                raise ListenError(f"cannot listen on {self.lmtp}: {_reason(error)}") from None
            self._servers.append(server)

    def submit(self, function: Callable[..., Result], *args: Any) -> Result:
        """Run `function` on the handler thread, between two messages, and return its result."""
        return self._calls.submit(function, *args).result()

    def where(self) -> str:
        """The addresses served, for messages."""
        places = []
        if self.listen is not None:
            host, port = self.bound or self.listen
            places.append(f"SMTP on [{host}]:{port}" if ":" in host else f"SMTP on {host}:{port}")
        if self.lmtp is not None:
            places.append(f"LMTP on {self.lmtp}")
        return " and ".join(places) or "nothing"

    def stop(self) -> None:
        """Close the listeners and end the thread; a message being stored is finished first."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._calls.shutdown(wait=True)
        if self.lmtp is not None and self.lmtp.exists():
            try:
                self.lmtp.unlink()
            except OSError:
                pass
        self._thread = None
        self._loop = None


def _reason(error: OSError) -> str:
    """ "address already in use" rather than asyncio's sentence around it."""
    text = str(error)
    return text.rpartition("): ")[2] if "): " in text else (error.strerror or text)
