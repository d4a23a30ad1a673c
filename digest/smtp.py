"""Talk to the outgoing mail server (stdlib smtplib); every outcome becomes a DeliveryError or a success.

Mapping, as Postfix does for a relay host: a 4xx reply, a lost connection or a
problem with the session itself (cannot connect, TLS, login refused, no
password) is temporary, because fixing the server or the config and trying
again delivers the mail; a 5xx reply to the message itself (MAIL, RCPT, DATA)
is permanent. The socket timeout from `[smtp] timeout` covers the connect and
every command.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import parseaddr
from types import TracebackType

from digest.config import SmtpConfig
from digest.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError


def reply_error(code: int, reply: bytes | str, doing: str) -> DeliveryError:
    """The error for an SMTP reply: temporary for 4xx (and anything odd), permanent for 5xx."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"{doing}: server replied {code} {' '.join(text.split())}".rstrip()
    return PermanentDeliveryError(message) if 500 <= code <= 599 else TemporaryDeliveryError(message)


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs plus `ca_file` when the config names one."""
    context = ssl.create_default_context()
    if config.ca_file is not None:
        context.load_verify_locations(cafile=str(config.ca_file))
    return context


def open_session(config: SmtpConfig) -> tuple[smtplib.SMTP, list[str]]:
    """Connect, start TLS and log in as configured; returns the client and the steps done, in words."""
    where = f"{config.host}:{config.port}"
    timeout = config.timeout.total_seconds()
    steps: list[str] = []
    client: smtplib.SMTP | None = None
    try:
        if config.security == "tls":
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=tls_context(config))
            steps.append(f"connected to {where} over TLS")
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=timeout)
            steps.append(f"connected to {where}")
        _start(client, config, steps)
    except BaseException as error:
        if client is not None:
            _close(client)
        if isinstance(error, (OSError, smtplib.SMTPException)):
            raise _session_error(error, config, connected=client is not None) from None
        raise
    return client, steps


def _start(client: smtplib.SMTP, config: SmtpConfig, steps: list[str]) -> None:
    """EHLO, STARTTLS and AUTH on a fresh connection, as the config asks."""
    where = f"{config.host}:{config.port}"
    _expect(client.ehlo())
    if config.security == "starttls":
        if not client.has_extn("starttls"):
            raise TemporaryDeliveryError(f'{where} does not offer STARTTLS (security = "starttls"); nothing sent in clear')
        client.starttls(context=tls_context(config))
        _expect(client.ehlo())
        steps.append("started TLS")
    if config.username:
        password = config.password
        if not password:
            raise TemporaryDeliveryError(f"no SMTP password: environment variable {config.password_env} is not set")
        if not client.has_extn("auth"):
            raise TemporaryDeliveryError(f'{where} offers no AUTH on this connection (try security = "starttls" or "tls")')
        client.login(config.username, password)
        steps.append(f"logged in as {config.username}")


def _session_error(error: OSError | smtplib.SMTPException, config: SmtpConfig, connected: bool) -> TemporaryDeliveryError:
    """What went wrong while setting up a session, in words; always temporary (see the module docstring)."""
    where = f"{config.host}:{config.port}"
    tls = "STARTTLS" if connected and config.security == "starttls" else "TLS"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        text = f"login as {config.username!r} refused: {error.smtp_code} {_text(error.smtp_error)} (check {config.password_env})"
    elif isinstance(error, smtplib.SMTPResponseException):
        text = f"{where} refused the session: {error.smtp_code} {_text(error.smtp_error)}"
    elif isinstance(error, ssl.SSLCertVerificationError):
        text = f"{tls} with {where} failed: certificate not trusted ({error.verify_message})"
    elif isinstance(error, ssl.SSLError):
        text = f"{tls} with {where} failed: {error.reason or error}"
    elif connected:
        text = f"{where} dropped the session: {_describe(error)}"
    else:
        text = f"cannot connect to {where}: {_describe(error)}"
    return TemporaryDeliveryError(text)


def check_server(config: SmtpConfig) -> list[str]:
    """Connect, start TLS and log in without sending anything; the steps done, or a DeliveryError naming what failed."""
    client, steps = open_session(config)
    _close(client)
    return steps


class SmtpSession:
    """One connection for a batch of messages: opened on first use, reopened after any failure."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: smtplib.SMTP | None = None
        self._session_error: TemporaryDeliveryError | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT and close, ignoring a server that has gone already."""
        if self._client is not None:
            _close(self._client)
            self._client = None

    def send(self, message: EmailMessage | bytes, recipient: str, international: bool = False) -> None:
        """Hand one message for one recipient to the server; returns only after it replied 250 to DATA.

        A message given as bytes (signed: sent exactly as it is) needs `international` when an
        address in it is not ASCII, so the server is asked for SMTPUTF8.
        """
        if self._session_error is not None:
            # The server could not be reached or refused us moments ago: do not wait a timeout per message.
            raise TemporaryDeliveryError(str(self._session_error))
        if self._client is not None and not _alive(self._client):
            self.close()  # the server ended a reused connection (idle or per-connection limit): start afresh
        if self._client is None:
            try:
                self._client, _ = open_session(self.config)
            except TemporaryDeliveryError as error:
                self._session_error = error
                raise
        sender = parseaddr(self.config.from_)[1]
        try:
            if isinstance(message, bytes):
                options = ["SMTPUTF8", "BODY=8BITMIME"] if international or not recipient.isascii() else []
                self._client.sendmail(sender, [recipient], message, mail_options=options)
            else:
                self._client.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = error.recipients.get(recipient, (451, b"recipient refused"))
            self.close()
            raise reply_error(code, reply, f"RCPT TO {recipient}") from None
        except smtplib.SMTPSenderRefused as error:
            self.close()
            raise reply_error(error.smtp_code, error.smtp_error, f"MAIL FROM {sender}") from None
        except smtplib.SMTPResponseException as error:
            self.close()
            raise reply_error(error.smtp_code, error.smtp_error, "DATA") from None
        except smtplib.SMTPServerDisconnected as error:
            self._client = None
            raise TemporaryDeliveryError(
                f"server closed the connection before confirming delivery ({_describe(error)})"
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise TemporaryDeliveryError(f"sending failed: {_describe(error)}") from None


def _alive(client: smtplib.SMTP) -> bool:
    """True when a reused connection still answers NOOP."""
    try:
        return client.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def _expect(reply: tuple[int, bytes]) -> None:
    """Raise the reply as an SMTP error unless it is 2xx."""
    code, text = reply
    if not 200 <= code <= 299:
        raise smtplib.SMTPResponseException(code, text)


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, TimeoutError) or "timed out" in text:
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # "Connection refused", not "[Errno 111] Connection refused"
    return text or type(error).__name__
