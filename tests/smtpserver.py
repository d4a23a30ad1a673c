"""Real aiosmtpd servers on 127.0.0.1 for the email tests, and a test-made TLS certificate.

Tests may import aiosmtpd directly (they are not the package). A server replies
to DATA from a script ("451 ...", "550 ...", "close" = drop the connection
without replying, "stall" = never reply, "250 then close" = accept and hang up;
default "250 OK"), can refuse chosen
recipients at RCPT TO, and records what it was given.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session, SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.ports import free_port as free_port  # re-exported: tests import it from here


@dataclass(frozen=True)
class Received:
    """One message as the server got it over DATA."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        """The message parsed with Python's email package."""
        return email.message_from_bytes(self.content, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class ScriptedHandler:
    """Replies to each DATA with the next scripted reply; records every message it was handed."""

    replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply to its RCPT TO
    offered: list[Received] = field(default_factory=list)  # every DATA, whatever the reply
    accepted: list[Received] = field(default_factory=list)  # DATA answered 250, or dropped after reading it

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(envelope.original_content or b""))
        self.offered.append(received)
        reply = self.replies.pop(0) if self.replies else "250 OK"
        if reply == "stall":
            await asyncio.sleep(3600)  # never answers; the client's timeout must give up
        if reply == "250 slowly":  # a busy server: each message takes it a moment
            await asyncio.sleep(0.3)
            reply = "250 OK"
        if reply == "250 then close":  # accepted, then the server ends the connection (a per-connection limit)
            self.accepted.append(received)
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "250 OK"
        if reply == "close":
            # The server took the message and died before saying so: it may well have been delivered.
            self.accepted.append(received)
            server.transport.abort()
            return "250 never sent"
        if reply.startswith("250"):
            self.accepted.append(received)
        return reply


@dataclass(frozen=True)
class Certificate:
    """A test CA and a server certificate for 127.0.0.1 and localhost that it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting the certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def make_certificate(folder: Path) -> Certificate:
    """Write a fresh CA and a server certificate (valid for 127.0.0.1 and localhost) into `folder`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "digest test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    made = Certificate(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    made.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    made.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    made.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return made


@dataclass
class Server:
    """A running test server: where it listens and what it received."""

    host: str
    port: int
    handler: ScriptedHandler

    @property
    def accepted(self) -> list[Received]:
        return self.handler.accepted

    @property
    def offered(self) -> list[Received]:
        return self.handler.offered


def _authenticator(login: str, password: str) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        good = (
            isinstance(auth_data, LoginPassword) and auth_data.login == login.encode() and auth_data.password == password.encode()
        )
        return AuthResult(success=good, handled=False)

    return check


@contextmanager
def smtp_server(
    replies: list[str] | None = None,
    *,
    rcpt_replies: dict[str, str] | None = None,
    implicit_tls: Certificate | None = None,
    starttls: Certificate | None = None,
    login: tuple[str, str] | None = None,
    port: int | None = None,
    smtputf8: bool = False,
) -> Iterator[Server]:
    """Run an aiosmtpd server on 127.0.0.1 for the `with` block: plain, STARTTLS or implicit TLS, AUTH and SMTPUTF8 optional."""
    handler = ScriptedHandler(list(replies or []), dict(rcpt_replies or {}))
    port = port or free_port()
    options: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    if starttls is not None:
        options.update(tls_context=starttls.server_context(), require_starttls=True)
    if login is not None:
        options.update(authenticator=_authenticator(*login), auth_required=True, auth_require_tls=starttls is not None)
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        ssl_context=implicit_tls.server_context() if implicit_tls is not None else None,
        **options,
    )
    controller.start()
    try:
        yield Server("127.0.0.1", port, handler)
    finally:
        controller.stop()


@contextmanager
def hang_up_server() -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """A broken mail server: accepts each connection and closes it before any greeting; counts them."""
    connections: list[tuple[str, int]] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                client, address = listener.accept()
            except (TimeoutError, OSError):
                continue
            connections.append(address)
            client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), connections
    finally:
        stopping.set()
        thread.join()
        listener.close()
