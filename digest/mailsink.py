"""`digest mailsink`: a local catch-all SMTP server that keeps every message in a Maildir.

For trying email delivery without a mail account. It accepts any sender and
any recipient, stores each message atomically (stdlib mailbox.Maildir) and
reports one line per message. The only module that imports aiosmtpd for it.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import mailbox
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.errors import ListenError

DEFAULT_LISTEN = "127.0.0.1:1025"


def parse_listen(text: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 as "[::1]:1025") -> (host, port); ValueError naming what is wrong."""
    host, colon, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT such as {DEFAULT_LISTEN}, got {text!r}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MaildirHandler:
    """aiosmtpd handler: every accepted message goes into the Maildir, then one line is reported."""

    def __init__(self, maildir: Path, report: Callable[[str], None]) -> None:
        self.maildir = maildir
        try:
            self.box = mailbox.Maildir(str(maildir), create=True)
        except OSError as error:
            raise ListenError(f"mailsink: cannot use {maildir} as a Maildir: {error.strerror or error}") from None
        self.report = report

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message with its envelope as Return-Path and Delivered-To headers."""
        content = bytes(envelope.original_content or b"")
        sender = str(envelope.mail_from or "")
        recipients = [str(r) for r in envelope.rcpt_tos]
        trace = f"Return-Path: <{sender}>\r\n" + "".join(f"Delivered-To: {r}\r\n" for r in recipients)
        key = self.box.add(trace.encode("utf-8", "replace") + content)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        subject = " ".join(str(parsed.get("Subject", "")).split())
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.report(f"{stamp} from <{sender}> to {', '.join(recipients)}: {subject!r} ({len(content)} bytes) -> new/{key}")
        return "250 OK stored"


class MailSink:
    """The sink's server; start() listens, stop() closes."""

    def __init__(self, listen: str, maildir: Path, report: Callable[[str], None]) -> None:
        self.host, self.port = parse_listen(listen)
        self.maildir = maildir
        self.report = report
        self._handler: MaildirHandler | None = None
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen; ListenError when the address cannot be used."""
        self._handler = MaildirHandler(self.maildir, self.report)
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        try:
            _probe(self.host, self.port)  # aiosmtpd only reports a busy port after its 5 s ready timeout
            self._controller.start()
        except (OSError, RuntimeError, TimeoutError) as error:
            raise ListenError(f"mailsink: cannot listen on {self.host}:{self.port}: {error}") from None
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.report(f"mailsink listening on {where}, storing every message in {self.maildir}")
        if not is_loopback(self.host):
            self.report(f"warning: {self.host} is not loopback; anyone who can reach it can drop mail here")

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def serve_forever(self) -> None:
        """Start, then run until SIGINT or SIGTERM."""
        stopping = threading.Event()

        def on_signal(number: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            stopping.wait()
            self.stop()
            self.report("mailsink stopped")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _probe(host: str, port: int) -> None:
    """Bind and release the address, so that "address in use" is reported at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
