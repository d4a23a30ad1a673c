"""The newsletter listener: SMTP on `[inbound] listen`, LMTP on `[inbound] lmtp`, for mailbox sources.

Each `[[sources]] type = "mailbox"` has its own address; mail to any other is
refused at RCPT (550 5.1.1), mail from a sender outside the source's `senders`
patterns too (550 5.7.1), and a message over `max_bytes` gets 552 (SIZE is
advertised). A message is answered 250 only once it is committed to the store,
so a crash before that makes the sender retry; if the store cannot take it the
answer is 451 and the sender retries later. The same Message-ID twice in one
source is stored once. A subscriber's unsubscribe address
(`unsubscribe+<token>@...`, in their mail's List-Unsubscribe) is accepted only when
its token verifies, and a message to it unsubscribes them before the 250. The server is digest.smtpd's (aiosmtpd); `digest
inbound` runs it alone and `digest daemon` runs it in a child process beside
its jobs (a large message never holds the scheduler up: aiosmtpd#293).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from digest import config as config_module
from digest.config import Config, InboundConfig, MailboxSourceConfig, parse_listen
from digest.errors import ConfigError, ListenError, StoreError
from digest.newsletter import message_key
from digest.models import Subscriber
from digest.store import Store, open_store
from digest.unsubscribe import MAIL_PREFIX, check_mail_address, unsubscribe_by_mail

if TYPE_CHECKING:
    from digest.smtpd import MailServer

log = logging.getLogger("digest.inbound")

# Test hook, documented in the README: seconds to wait after a message is committed and before
# its 250 is sent, so that a test can kill the real process while the reply is pending.
REPLY_DELAY_ENV = "DIGEST_INBOUND_TEST_REPLY_DELAY"
OUTCOMES = ("accepted", "duplicate", "sender not allowed", "too large", "store unavailable", "unknown recipient")


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def mailboxes(config: Config) -> dict[str, MailboxSourceConfig]:
    """Lower-cased address -> its mailbox source."""
    return {s.address.lower(): s for s in config.sources if isinstance(s, MailboxSourceConfig)}


def sender_allowed(sender: str, patterns: tuple[str, ...]) -> bool:
    """True when `patterns` is empty or the sender matches one (glob, case-insensitive)."""
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(sender.lower(), pattern.lower()) for pattern in patterns)


class InboundHandler:
    """Decides what the listener accepts and commits what it accepts; runs on the server's handler thread."""

    def __init__(self, config: Config, clock: Callable[[], datetime] = utc_now) -> None:
        self.store_config = config.store  # a SQLite file or a PostgreSQL database
        self.boxes = mailboxes(config)
        self.clock = clock
        self._store: Store | None = None
        self._deferred: dict[str, int] = {}  # 451s while the store was unavailable, counted once it is back
        delay = os.environ.get(REPLY_DELAY_ENV, "")
        self.reply_delay = float(delay) if delay.replace(".", "", 1).isdigit() else 0.0

    def reload(self, config: Config) -> None:
        """Take the addresses of a reloaded config (the next message sees them)."""
        self.boxes = mailboxes(config)

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self.store_config)
        return self._store

    def _count(self, source: str, outcome: str) -> None:
        try:
            self._open().count_inbound(source, outcome, self.clock())
        except StoreError as error:
            self.close()
            log.warning("could not count a %s message for %s: %s", outcome, source or "an unknown address", error)

    def _reader_leaving(self, address: str) -> Subscriber | None:
        """The subscriber whose unsubscribe address (`unsubscribe+<token>@...`) this is, when its token verifies."""
        if not address.lower().startswith(MAIL_PREFIX):
            return None
        return check_mail_address(self._open(), address)

    def recipient(self, sender: str, address: str) -> str | None:
        """Accept the address of a mailbox source whose senders include `sender`, or a subscriber's unsubscribe address."""
        box = self.boxes.get(address.lower())
        if box is None:
            try:
                if self._reader_leaving(address) is not None:
                    return None
            except StoreError as error:
                self.close()
                log.error("could not check the unsubscribe address <%s> (451): %s", address, error)
                return "451 4.3.0 Cannot check this address now; try again later"
            self._count("", "unknown recipient")
            log.info("refused mail from <%s> to <%s>: no mailbox source has this address", sender, address)
            return "550 5.1.1 No such mailbox here"
        if not sender_allowed(sender, box.senders):
            self._count(box.name, "sender not allowed")
            log.info("refused mail from <%s> to %s: sender not in its senders", sender, box.name)
            return "550 5.7.1 Sender not allowed to send to this address"
        return None

    def message(self, sender: str, recipients: list[str], content: bytes) -> list[str]:
        """Commit the message for every recipient's source, then say 250; 451 when the store cannot take it."""
        sources = [self.boxes[r.lower()].name if r.lower() in self.boxes else "" for r in recipients]
        leaving = {r: "" for r, source in zip(recipients, sources) if not source and r.lower().startswith(MAIL_PREFIX)}
        if leaving:
            try:
                leaving = self._unsubscribe(sender, list(leaving))
            except StoreError as error:
                self.close()
                log.error("unsubscribe mail from <%s> deferred (451): %s", sender, error)
                return ["451 4.3.0 Cannot unsubscribe now; try again later"] * len(recipients)
        wanted = [s for s in dict.fromkeys(sources) if s]
        if not wanted:  # only readers leaving, or the config was reloaded between RCPT and DATA and lost the address
            return [leaving.get(r) or "450 4.1.1 Mailbox no longer here; try again later" for r in recipients]
        key = message_key(content)
        try:
            stored = dict(zip(wanted, self._open().add_inbound(wanted, key, sender, content, self.clock())))
        except StoreError as error:
            self.close()
            for source in wanted:
                self._deferred[source] = self._deferred.get(source, 0) + 1
            log.error("message from <%s> to %s deferred (451): %s", sender, ", ".join(wanted), error)
            return ["451 4.3.0 Cannot store the message now; try again later"] * len(recipients)
        while self._deferred:
            source, times = self._deferred.popitem()
            for _ in range(times):
                self._count(source, "store unavailable")
        for source, new in stored.items():
            log.info(
                "message %s from <%s> for %s: %s (%d bytes)",
                key,
                sender,
                source,
                "stored" if new else "duplicate, kept once",
                len(content),
            )
        if self.reply_delay:
            time.sleep(self.reply_delay)
        return [
            ("250 2.0.0 Stored" if stored.get(source, False) else "250 2.0.0 Already stored")
            if source
            else leaving.get(r) or "450 4.1.1 Mailbox no longer here"
            for r, source in zip(recipients, sources)
        ]

    def _unsubscribe(self, sender: str, addresses: list[str]) -> dict[str, str]:
        """Unsubscribe the reader of each address whose token verifies (committed before the reply); address -> reply."""
        replies: dict[str, str] = {}
        for address in addresses:
            reader = self._reader_leaving(address)
            if reader is None:  # removed from the store between RCPT and DATA
                replies[address] = "550 5.1.1 No such mailbox here"
                continue
            unsubscribe_by_mail(self._open(), reader, self.clock())
            log.info("mail from <%s> unsubscribed %s from %s", sender, reader.address, reader.digest)
            replies[address] = "250 2.0.0 Unsubscribed"
        return replies

    def too_large(self, recipients: list[str]) -> None:
        """Count a message refused with 552 against each recipient's source."""
        for name in dict.fromkeys(self.boxes[r.lower()].name for r in recipients if r.lower() in self.boxes):
            self._count(name, "too large")

    def close(self) -> None:
        """Close the store connection (it is opened again when needed)."""
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None


def tls_context(settings: InboundConfig) -> ssl.SSLContext | None:
    """A server TLS context for STARTTLS from tls_cert and tls_key; ListenError when they cannot be used."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    except (OSError, ssl.SSLError) as error:
        raise ListenError(f"inbound: cannot use tls_cert {settings.tls_cert} with tls_key {settings.tls_key}: {error}") from None
    return context


class Listener:
    """The listener of one config; start() binds, stop() closes."""

    def __init__(self, config: Config, clock: Callable[[], datetime] = utc_now) -> None:
        settings = config.inbound
        if not settings.enabled:
            raise ConfigError(str(config.path), "inbound", 'nowhere to listen: set listen = "HOST:PORT" or lmtp = "PATH"')
        if not mailboxes(config) and not config.inbound.configured:
            raise ConfigError(str(config.path), "sources", 'no [[sources]] of type = "mailbox": nothing to receive mail for')
        from digest.smtpd import MailServer  # aiosmtpd: loaded only where mail is received, not by the daemon

        self.handler = InboundHandler(config, clock)
        self.server: MailServer = MailServer(
            self.handler,
            listen=parse_listen(settings.listen) if settings.listen else None,
            lmtp=settings.lmtp,
            hostname=settings.hostname,
            max_bytes=settings.max_bytes,
            tls=tls_context(settings),
        )

    def start(self) -> str:
        """Listen; returns where. ListenError when an address cannot be used."""
        self.server.start()
        return self.server.where()

    def stop(self) -> None:
        """Stop listening; a message being committed is finished first."""
        self.server.stop()
        self.handler.close()


def serve_forever(config: Config, report: Callable[[str], None]) -> int:
    """`digest inbound`: listen until SIGTERM or SIGINT; SIGHUP reloads the addresses. Returns 0."""
    open_store(config.store).close()  # an unusable store stops here (exit 3), not at the first message
    listener = Listener(config)
    stopping = threading.Event()
    reload_asked = threading.Event()

    def on_stop(number: int, frame: FrameType | None) -> None:
        stopping.set()

    def on_reload(number: int, frame: FrameType | None) -> None:
        reload_asked.set()
        stopping.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    where = listener.start()
    boxes = mailboxes(config)
    report(f"inbound listening: {where}; {len(boxes)} mailbox source(s), up to {config.inbound.max_bytes} bytes a message")
    try:
        while True:
            stopping.wait()
            if not reload_asked.is_set():
                break
            stopping.clear()
            reload_asked.clear()
            _reload(listener, config.path, report)
    finally:
        listener.stop()
    report("inbound stopped")
    return 0


def _reload(listener: Listener, path: Path, report: Callable[[str], None]) -> None:
    try:
        new = config_module.load(path)
    except ConfigError as error:
        report(f"config not reloaded, keeping the running addresses: {error}")
        return
    listener.server.submit(listener.handler.reload, new)
    report(f"config reloaded: {len(mailboxes(new))} mailbox source(s)")


class ListenerProcess:
    """`digest inbound` as a child process of the daemon, so that receiving mail never takes the
    scheduler's time (aiosmtpd#293: a busy server can stall every thread of its process).

    Started when the config has mailbox sources, restarted (at most every RESTART_EVERY seconds)
    when it dies, sent SIGHUP on a reload that keeps the `[inbound]` section, restarted on one that
    changes it, and stopped with the daemon.
    """

    RESTART_EVERY = 5.0

    def __init__(self, config: Config, log_arguments: list[str]) -> None:
        self.config = config
        self.log_arguments = log_arguments
        self.process: subprocess.Popen[bytes] | None = None
        self._started = 0.0

    @staticmethod
    def wanted(config: Config) -> bool:
        """True when there is somewhere to listen and mailbox sources or an [inbound] section (subscribers' mailto:)."""
        return config.inbound.enabled and (bool(mailboxes(config)) or config.inbound.configured)

    def start(self) -> None:
        """Start the child (logging to the daemon's stderr)."""
        command = [sys.executable, "-m", "digest", "--config", str(self.config.path), *self.log_arguments, "inbound"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self._started = time.monotonic()
        log.info("inbound listener started, PID %d", self.process.pid, extra={"job": "inbound", "pid": self.process.pid})

    def keep_running(self) -> None:
        """Start the child again if it ended (not more often than every RESTART_EVERY seconds)."""
        if self.process is None or self.process.poll() is None:
            return
        if time.monotonic() - self._started < self.RESTART_EVERY:
            return
        log.error(
            "inbound listener ended with exit code %s; starting it again",
            self.process.returncode,
            extra={"job": "inbound", "exit_code": self.process.returncode},
        )
        self.start()

    def reload(self, config: Config) -> None:
        """Pass a reloaded config on: SIGHUP when `[inbound]` is unchanged, else a restart."""
        previous, self.config = self.config, config
        if self.process is None or self.process.poll() is not None:
            self.start()
        elif previous.inbound != config.inbound:
            self.stop()
            self.start()
        else:
            self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds (a message not yet answered is retried by its sender)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
