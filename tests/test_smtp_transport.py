"""SMTP sessions against real aiosmtpd servers: plain, STARTTLS, implicit TLS, AUTH, and reply mapping."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from digest.config import Duration, SmtpConfig
from digest.errors import PermanentDeliveryError, TemporaryDeliveryError
from digest.mail import MailParts, build_message, new_message_id
from digest.smtp import SmtpSession, check_server
from tests.smtpserver import Certificate, Server, free_port, make_certificate, smtp_server

SENDER = "Digest <digest@example.org>"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def config(port: int, **options: object) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, from_=SENDER, timeout=Duration(seconds=5), **options)  # type: ignore[arg-type]


def message(to: str = "ann@example.com") -> EmailMessage:
    parts = MailParts("daily", "text\n", "<p>html</p>")
    return build_message(
        parts,
        sender=SENDER,
        recipient=to,
        message_id=new_message_id(SENDER),
        date=datetime(2026, 11, 27, tzinfo=timezone.utc),
        digest_name="daily",
    )


def test_plain_server_receives_the_message_for_that_recipient_only() -> None:
    with smtp_server() as server, SmtpSession(config(server.port)) as session:
        session.send(message("ann@example.com"), "ann@example.com")
    [got] = server.accepted
    assert got.rcpt_tos == ("ann@example.com",)
    assert got.mail_from == "digest@example.org"
    assert got.message["To"] == "ann@example.com"


@contextmanager
def login_server(security: str, certificate: Certificate) -> Iterator[tuple[Server, SmtpConfig]]:
    """A TLS server (STARTTLS or implicit) that wants login ann / "correct horse", and a config for it."""
    tls = {"starttls": certificate} if security == "starttls" else {"implicit_tls": certificate}
    with smtp_server(login=("ann", "correct horse"), **tls) as server:  # type: ignore[arg-type]
        yield (
            server,
            config(
                server.port, security=security, username="ann", password_env="TEST_SMTP_PASSWORD", ca_file=certificate.ca_file
            ),
        )


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_with_the_right_password_delivers(security: str, certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "correct horse")
    with login_server(security, certificate) as (server, settings):
        steps = check_server(settings)
        with SmtpSession(settings) as session:
            session.send(message(), "ann@example.com")
    assert steps[-1] == "logged in as ann"
    assert ("started TLS" in steps) == (security == "starttls")
    assert len(server.accepted) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_wrong_password_sends_nothing_and_says_login_was_refused(
    security: str, certificate: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with login_server(security, certificate) as (server, settings):
        with pytest.raises(TemporaryDeliveryError, match=r"login as 'ann' refused: 535 .*check TEST_SMTP_PASSWORD"):
            check_server(settings)
        with SmtpSession(settings) as session, pytest.raises(TemporaryDeliveryError, match="login as 'ann' refused"):
            session.send(message(), "ann@example.com")
    assert server.offered == []


def test_an_unset_password_variable_is_named(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    with smtp_server(login=("ann", "pw"), starttls=certificate) as server:
        settings = config(
            server.port, security="starttls", username="ann", password_env="TEST_SMTP_PASSWORD", ca_file=certificate.ca_file
        )
        with pytest.raises(TemporaryDeliveryError, match="environment variable TEST_SMTP_PASSWORD is not set"):
            check_server(settings)


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(certificate: Certificate) -> None:
    with smtp_server(starttls=certificate) as server, SmtpSession(config(server.port, security="starttls")) as session:
        with pytest.raises(TemporaryDeliveryError, match="certificate not trusted"):
            session.send(message(), "ann@example.com")
    assert server.offered == []


def test_starttls_required_but_not_offered_never_falls_back_to_clear_text() -> None:
    with smtp_server() as server:
        with pytest.raises(TemporaryDeliveryError, match="does not offer STARTTLS"):
            check_server(config(server.port, security="starttls"))
    assert server.offered == []


def test_nobody_listening_is_temporary_and_names_the_address() -> None:
    port = free_port()
    with pytest.raises(TemporaryDeliveryError, match=f"cannot connect to 127.0.0.1:{port}"):
        check_server(config(port))


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        ("451 4.3.0 Mailbox busy, try later", TemporaryDeliveryError, "451 4.3.0 Mailbox busy"),
        ("550 5.1.1 No such user here", PermanentDeliveryError, "550 5.1.1 No such user here"),
        ("close", TemporaryDeliveryError, "closed the connection before confirming"),
    ],
)
def test_replies_to_data_map_to_temporary_or_permanent(reply: str, error: type[Exception], text: str) -> None:
    with smtp_server([reply]) as server, SmtpSession(config(server.port)) as session:
        with pytest.raises(error, match=text):
            session.send(message(), "ann@example.com")
        session.send(message(), "ann@example.com")  # the session recovers for the next message
    assert len(server.offered) == 2


def test_after_a_connection_failure_the_rest_of_the_batch_fails_at_once() -> None:
    with SmtpSession(config(free_port())) as session:
        for _ in range(3):
            with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
                session.send(message(), "ann@example.com")


def test_a_recipient_refused_at_rcpt_is_permanent_with_the_reply() -> None:
    with smtp_server(rcpt_replies={"gone@example.com": "550 5.1.1 <gone@example.com>: user unknown"}) as server:
        with SmtpSession(config(server.port)) as session:
            with pytest.raises(
                PermanentDeliveryError,
                match="RCPT TO gone@example.com: server replied 550 5.1.1 <gone@example.com>: user unknown",
            ):
                session.send(message("gone@example.com"), "gone@example.com")
            session.send(message(), "ann@example.com")
    assert [r.rcpt_tos for r in server.accepted] == [("ann@example.com",)]


def test_a_server_that_never_answers_data_times_out_as_temporary() -> None:
    with smtp_server(["stall"]) as server:
        settings = SmtpConfig(host="127.0.0.1", port=server.port, from_=SENDER, timeout=Duration(seconds=0.5))
        with SmtpSession(settings) as session, pytest.raises(TemporaryDeliveryError, match="timed out"):
            session.send(message(), "ann@example.com")


def test_a_server_that_never_greets_times_out_as_temporary() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (kernel backlog), never says 220
        settings = SmtpConfig(host="127.0.0.1", port=silent.getsockname()[1], from_=SENDER, timeout=Duration(seconds=0.5))
        with pytest.raises(TemporaryDeliveryError, match=r"cannot connect to 127\.0\.0\.1:\d+: timed out"):
            check_server(settings)


def test_a_reused_connection_the_server_ended_is_reopened_not_counted_as_a_failure() -> None:
    with smtp_server(["250 then close"]) as server, SmtpSession(config(server.port)) as session:
        session.send(message("ann@example.com"), "ann@example.com")
        session.send(message("bob@example.net"), "bob@example.net")
    assert [r.rcpt_tos for r in server.accepted] == [("ann@example.com",), ("bob@example.net",)]
