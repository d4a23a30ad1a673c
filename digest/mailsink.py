"""`digest mailsink`: a local catch-all SMTP server that keeps every message in a Maildir.

For trying email delivery without a mail account. It accepts any sender and
any recipient, stores each message atomically (stdlib mailbox.Maildir) and
reports one line per message. The server itself is digest.smtpd's (aiosmtpd).
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import mailbox
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from digest import config
from digest.errors import ListenError
from digest.smtpd import MailServer


def parse_listen(text: str) -> tuple[str, int]:
    """ "HOST:PORT" -> (host, port); ValueError naming what is wrong."""
    return config.parse_listen(text)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MaildirHandler:
    """Every sender and recipient is accepted; every message goes into the Maildir, then one line is reported."""

    def __init__(self, maildir: Path, report: Callable[[str], None]) -> None:
        self.maildir = maildir
        try:
            self.box = mailbox.Maildir(str(maildir), create=True)
        except OSError as error:
            raise ListenError(f"mailsink: cannot use {maildir} as a Maildir: {error.strerror or error}") from None
        self.report = report

    def recipient(self, sender: str, address: str) -> str | None:
        """Any recipient is taken."""
        return None

    def message(self, sender: str, recipients: list[str], content: bytes) -> list[str]:
        """Store the message with its envelope as Return-Path and Delivered-To headers."""
        trace = f"Return-Path: <{sender}>\r\n" + "".join(f"Delivered-To: {r}\r\n" for r in recipients)
        key = self.box.add(trace.encode("utf-8", "replace") + content)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        subject = " ".join(str(parsed.get("Subject", "")).split())
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.report(f"{stamp} from <{sender}> to {', '.join(recipients)}: {subject!r} ({len(content)} bytes) -> new/{key}")
        return ["250 OK stored"] * len(recipients)

    def too_large(self, recipients: list[str]) -> None:
        """Nothing to count."""


class MailSink:
    """The sink's server; start() listens, stop() closes."""

    def __init__(self, listen: str, maildir: Path, report: Callable[[str], None]) -> None:
        self.host, self.port = parse_listen(listen)
        self.maildir = maildir
        self.report = report
        self._server: MailServer | None = None

    def start(self) -> None:
        """Listen; ListenError when the address cannot be used."""
        server = MailServer(MaildirHandler(self.maildir, self.report), listen=(self.host, self.port), hostname=self.host)
        try:
            server.start()
        except ListenError as error:
            raise ListenError(f"mailsink: {error}") from None
        self._server = server
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.report(f"mailsink listening on {where}, storing every message in {self.maildir}")
        if not is_loopback(self.host):
            self.report(f"warning: {self.host} is not loopback; anyone who can reach it can drop mail here")

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.stop()
            self._server = None

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
