"""The outbox: deliveries claimed under a lease, tried, and recorded with the retry and give-up policy;
and the channels that deliver (files, email), one outbox row at a time.

Each channel implements `Deliverer` and is named in digest.registry.CHANNELS. A delivery
raises TemporaryDeliveryError for failures worth retrying with backoff and
PermanentDeliveryError for the rest. Email goes through digest/smtp.py (the SMTP
session and its error mapping), digest/mail.py (the message) and digest/signing.py (DKIM).
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.policy import SMTP, SMTPUTF8
from pathlib import Path
from types import TracebackType
from typing import Protocol

from digest.archive import Archive
from digest.config import Config, DigestConfig, SmtpConfig
from digest.errors import DeliveryError, DigestError, PermanentDeliveryError, RenderError, TemporaryDeliveryError
from digest.lock import process_alive
from digest.mail import MailParts, build_message, new_message_id
from digest.models import Delivery, DeliveryReport, RenderedEdition
from digest.registry import CHANNELS, load
from digest.signing import Signer
from digest.smtp import SmtpSession
from digest.store import Store

log = logging.getLogger("digest.deliver")

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
# How long an owner may hold a delivery it is trying before another may try it: longer than
# one attempt can take (an SMTP session's few timeouts), so a live owner never loses it.
DELIVERY_LEASE = timedelta(minutes=10)
# A channel whose delivery done twice gives the same result (files and archive pages written whole under
# the same names) is leased this long at most, so the work of an owner that was killed is taken over soon.
REPEATABLE_LEASE = timedelta(minutes=1)


class Deliverer(Protocol):
    """Delivers one rendered edition to one outbox recipient.

    `give_up_after`: how long a delivery may stay pending before it is failed
    (None: retried for as long as it takes). `rendering`: what it needs made of the
    edition: "email" (subject, text, HTML with inlined CSS) or "files" (the digest's formats).
    `repeatable`: True when delivering twice does no harm (files rewritten whole), so its lease is short.
    """

    give_up_after: timedelta | None
    rendering: str
    repeatable: bool

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        """Deliver and return a short description of where it went; raise DeliveryError on failure."""
        ...

    def new_message_id(self) -> str:
        """A Message-ID kept with the delivery before its first try (same on every retry); "" when unused."""
        ...

    def close(self) -> None:
        """Release what the channel holds (an SMTP connection)."""
        ...


# Renders the edition of a delivery as its channel needs it (Deliverer.rendering); (document, edition created)
RenderFor = Callable[[Delivery, str], tuple[RenderedEdition, datetime]]


@dataclass(frozen=True)
class OutboxTools:
    """What the pipeline lends the channels of one outbox pass (a stage imports no other stage):
    an edition rendered as a channel needs it, and a digest's archive planned from the store."""

    render: RenderFor
    open_archive: Callable[[str, Path], Archive]  # (digest name, output_dir) -> its archive


def process_outbox(
    config: Config, store: Store, tools: OutboxTools, now: datetime, honour_backoff: bool, lease: timedelta = DELIVERY_LEASE
) -> list[DeliveryReport]:
    """Try every pending delivery (only those due when honouring backoff) that this store's owner
    can lease for `lease`, each recorded as delivered, pending with backoff, or failed."""
    deliverers: dict[str, Deliverer] = {}
    clock = _PassClock(now)
    try:
        reports = []
        for delivery in store.due_deliveries(now if honour_backoff else None):
            if delivery.channel not in CHANNELS:
                continue  # a channel this version does not know (a newer digest's row): leave it to that version
            if delivery.channel not in deliverers:
                deliverers[delivery.channel] = load(CHANNELS[delivery.channel])(config, tools)
            deliverer = deliverers[delivery.channel]
            held_for = min(lease, REPEATABLE_LEASE) if deliverer.repeatable else lease
            if not store.claim_delivery(delivery.id, clock.now(), held_for):
                continue
            report = _attempt(store, delivery, deliverer, tools.render, clock, held_for)
            if report is not None:
                reports.append(report)
        return reports
    finally:
        for deliverer in deliverers.values():
            deliverer.close()


class _PassClock:
    """The moment of an outbox pass: its injected start plus the real time the pass has taken, so that a
    delivery claimed late in a long pass is leased from when it was claimed, not from the pass's start."""

    def __init__(self, start: datetime) -> None:
        self.start, self.started = start, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


def _attempt(
    store: Store, delivery: Delivery, deliverer: Deliverer, render: RenderFor, clock: _PassClock, lease: timedelta
) -> DeliveryReport | None:
    """Try one delivery and record the outcome: delivered, pending with backoff, or failed; None when its
    lease ran out while it was rendered and another owner took it (that owner sends it, this one does not)."""
    now = clock.start  # the pass's moment: its attempts are recorded, and backed off, from there
    report = DeliveryReport(digest=delivery.digest, channel=delivery.channel, recipient=delivery.recipient)
    if not delivery.message_id:
        fresh = deliverer.new_message_id()
        if fresh:  # made once and committed before the first try: every retry sends the same Message-ID
            delivery = replace(delivery, message_id=fresh)
            with store.transaction():
                store.set_message_id(delivery.id, delivery.message_id)
    try:
        document, created = render(delivery, deliverer.rendering)
        if not store.claim_delivery(delivery.id, clock.now(), lease):  # renewed for the send itself
            log.warning(
                "delivery of %s to %s: its lease ran out while rendering; left to its new holder",
                delivery.digest,
                delivery.recipient,
            )
            return None
        where = deliverer.deliver(delivery, document, created)
    except PermanentDeliveryError as error:
        status, detail, retry_at = "failed", str(error), None
    except (DeliveryError, RenderError) as error:  # a broken template is fixed in the config, then delivered
        status, detail, retry_at = "pending", str(error), now + retry_delay(delivery.attempts + 1)
        lifetime = deliverer.give_up_after
        if lifetime is not None and delivery.created is not None and now - delivery.created >= lifetime:
            status, detail, retry_at = "failed", f"gave up after {duration_words(lifetime)} of retries: {error}", None
    except DigestError as error:
        status, detail, retry_at = "failed", str(error), None
    else:
        status, detail, retry_at = "delivered", "", None
        report.to = where
    with store.transaction():
        store.record_attempt(delivery.id, now, status, detail, retry_at)
    report.status, report.error = status, detail
    report.message_id = delivery.message_id
    log.info("delivery of %s to %s: %s%s", delivery.digest, delivery.recipient, status, f" ({detail})" if detail else "")
    return report


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: one minute after the first failure, doubling, capped at an hour."""
    return min(FIRST_RETRY * (1 << max(0, attempts - 1)), LONGEST_RETRY)


def duration_words(span: timedelta) -> str:
    """A duration as a person writes it: "2 days", "36 hours", "90 minutes"."""
    seconds = int(span.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def safe_name(name: str) -> str:
    """A file or folder name that stays inside its folder: no separators, no dots first."""
    cleaned = re.sub(r"[^\w.\-]+", "_", name).lstrip(".")
    return cleaned or "digest"


class FileDeliverer:
    """Writes `<output_dir>/<digest>/<date>T<time>.<ext>` for each format, atomically."""

    give_up_after: timedelta | None = None
    rendering = "files"
    repeatable = True

    def __init__(self, config: Config | None = None, tools: OutboxTools | None = None) -> None:
        """Files need nothing from the config beyond each digest's output_dir (the recipient)."""

    @staticmethod
    def recipients(digest: DigestConfig) -> list[str]:
        """The digest's output_dir, when it has one."""
        return [str(digest.output_dir)] if digest.output_dir else []

    def new_message_id(self) -> str:
        """Files carry no Message-ID."""
        return ""

    def close(self) -> None:
        """Nothing is held between files."""

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        folder = Path(delivery.recipient) / safe_name(delivery.digest)
        stamp = created.strftime("%Y-%m-%dT%H%M%SZ")
        # A document that can be streamed (the pipeline's files rendering) is written piece by piece.
        pieces: Callable[[str], Iterable[str]] = getattr(edition.bodies, "pieces", lambda fmt: (edition.bodies[fmt],))
        written: list[tuple[str, str]] = []  # (format, temp file): all are written before any is put in place
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_orphaned_partials(folder)
            for fmt in edition.bodies:
                written.append((fmt, self._write_temporary(folder, fmt, pieces(fmt))))
            placed = [self._place(folder, stamp, fmt, temporary) for fmt, temporary in written]
        except OSError as error:
            raise TemporaryDeliveryError(f"cannot write to {folder}: {error.strerror or error}") from None
        finally:
            for _, temporary in written:
                os.unlink(temporary)
        return ", ".join(str(path) for path in placed)

    @staticmethod
    def _write_temporary(folder: Path, extension: str, pieces: Iterable[str]) -> str:
        """A temp file in `folder` holding the pieces, synced; removed again if writing fails."""
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", suffix=f".{extension}")
        try:
            os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide editions from a web server or other users
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                for piece in pieces:
                    stream.write(piece)
                stream.flush()
                os.fsync(stream.fileno())
        except BaseException:
            os.unlink(temporary)
            raise
        return temporary

    @staticmethod
    def _place(folder: Path, stamp: str, extension: str, temporary: str) -> Path:
        """Hard-link the temp file to its name, so no reader sees half a file and nothing is overwritten.

        Idempotent: a retry after a crash between writing and recording the
        delivery finds its identical file and writes no second copy.
        """
        for counter in range(1, 1000):
            target = folder / (f"{stamp}.{extension}" if counter == 1 else f"{stamp}-{counter}.{extension}")
            try:
                os.link(temporary, target)
                return target
            except FileExistsError:
                if filecmp.cmp(temporary, target, shallow=False):
                    return target
        raise OSError(f"too many editions named {stamp}")


PARTIAL_PREFIX = ".partial-"


def _remove_orphaned_partials(folder: Path) -> None:
    """Delete temp files left by a process that was killed while writing (its PID is gone)."""
    for partial in folder.glob(f"{PARTIAL_PREFIX}*"):
        pid = partial.name[len(PARTIAL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            partial.unlink(missing_ok=True)


class ArchiveDeliverer:
    """Adds an edition to its digest's archive (digest/archive.py): its page, and the index pages and
    feeds that show it. The archive is planned from the store by the pipeline's `open_archive`."""

    give_up_after: timedelta | None = None
    repeatable = True
    rendering = "page"  # nothing is rendered ahead: the archive streams the edition's page (without the live problems box)

    def __init__(self, config: Config, tools: OutboxTools) -> None:
        self.open_archive = tools.open_archive

    @staticmethod
    def recipients(digest: DigestConfig) -> list[str]:
        """The digest's output_dir, when it keeps an archive there."""
        return [str(digest.output_dir)] if digest.output_dir and digest.archive else []

    def new_message_id(self) -> str:
        """Archive pages carry no Message-ID."""
        return ""

    def close(self) -> None:
        """Nothing is held between editions."""

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        archive = self.open_archive(delivery.digest, Path(delivery.recipient))
        try:
            report = archive.add_edition(delivery.edition_id)
        except OSError as error:
            raise TemporaryDeliveryError(
                f"cannot write the archive in {archive.settings.folder}: {error.strerror or error}"
            ) from None
        return f"archive {archive.settings.folder} ({len(report.written)} files written)"


class EmailDeliverer:
    """Sends one message to one recipient per outbox row, over one SMTP session per outbox pass.

    Needs the edition rendered by `Renderer.render_email` ("txt" and "html"
    bodies) and the delivery's stored Message-ID, so a retry sends the same
    message. Returns only after the server answered 250 to DATA.
    """

    rendering = "email"
    repeatable = False  # a second send is a second email in the reader's inbox

    def __init__(self, config: Config, tools: OutboxTools | None = None) -> None:
        self.smtp: SmtpConfig = config.smtp
        self.unsubscribe = {digest.name: digest.unsubscribe for digest in config.digests}  # mailto: or https:
        self.give_up_after: timedelta | None = self.smtp.give_up_after
        self.session = SmtpSession(self.smtp)
        self._signing: Signer | None = None

    @staticmethod
    def recipients(digest: DigestConfig) -> list[str]:
        """One delivery per address in the digest's email_to."""
        return list(digest.email_to)

    def new_message_id(self) -> str:
        """A fresh Message-ID in the From address's domain."""
        return new_message_id(self.smtp.from_)

    def send(
        self,
        parts: MailParts,
        recipient: str,
        message_id: str,
        date: datetime,
        digest_name: str,
        unsubscribe: str | Sequence[str] = "",
        one_click: bool = False,
    ) -> None:
        """Build, sign when [smtp] says so, and send one message; returns after the server's 250."""
        try:
            message = build_message(
                parts,
                sender=self.smtp.from_,
                recipient=recipient,
                message_id=message_id,
                date=date,
                digest_name=digest_name,
                unsubscribe=unsubscribe,
                one_click=one_click,
            )
        except ValueError as error:  # an address the config check let through but email cannot use
            raise PermanentDeliveryError(f"cannot build the email to {recipient}: {error}") from None
        if self.smtp.dkim_key_file is None:
            self.session.send(message, recipient)
            return
        international = not (str(message["To"]) + str(message["From"])).isascii()
        data = message.as_bytes(policy=SMTPUTF8 if international else SMTP)
        self.session.send(self._signer().sign(data), recipient, international)

    def _signer(self) -> Signer:
        """The DKIM signer, its key read on first use (an unusable key keeps mail pending, naming the file)."""
        if self._signing is None:
            assert self.smtp.dkim_key_file is not None
            self._signing = Signer.load(self.smtp.dkim_key_file, self.smtp.dkim_selector, self.smtp.signing_domain)
        return self._signing

    def __enter__(self) -> EmailDeliverer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """End the SMTP session, if one was opened."""
        self.session.close()

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        """Send the edition to the delivery's recipient; returns after the server's 250."""
        if not delivery.message_id:
            raise ValueError(f"delivery {delivery.id} has no Message-ID; the outbox makes one before the first try")
        parts = MailParts(edition.subject, edition.bodies["txt"], edition.bodies["html"])
        self.send(
            parts, delivery.recipient, delivery.message_id, created, delivery.digest, self.unsubscribe.get(delivery.digest, "")
        )
        return f"{delivery.recipient} via {self.smtp.host}:{self.smtp.port}"
