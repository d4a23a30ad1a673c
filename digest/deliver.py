"""Deliveries: write an edition's files, or email it, one outbox row at a time.

Each channel implements `Deliverer`. A delivery raises TemporaryDeliveryError for
failures worth retrying with backoff and PermanentDeliveryError for the rest.
Email goes through digest/smtp.py (the SMTP session and its error mapping),
digest/mail.py (the message) and digest/signing.py (DKIM); this module only ties
them to the outbox.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime, timedelta
from email.policy import SMTP, SMTPUTF8
from pathlib import Path
from types import TracebackType
from typing import Callable, Protocol

from digest.archive import Archive
from digest.config import SmtpConfig
from digest.errors import PermanentDeliveryError, TemporaryDeliveryError
from digest.lock import process_alive
from digest.mail import MailParts, build_message
from digest.models import Delivery
from digest.render import RenderedEdition
from digest.signing import Signer
from digest.smtp import SmtpSession

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


class Deliverer(Protocol):
    """Delivers one rendered edition to one outbox recipient.

    `give_up_after`: how long a delivery may stay pending before it is failed
    (None: retried for as long as it takes).
    """

    give_up_after: timedelta | None

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        """Deliver and return a short description of where it went; raise DeliveryError on failure."""
        ...


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: one minute after the first failure, doubling, capped at an hour."""
    return min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_RETRY)


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

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        folder = Path(delivery.recipient) / safe_name(delivery.digest)
        stamp = created.strftime("%Y-%m-%dT%H%M%SZ")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written = [self._write_new(folder, stamp, fmt, text) for fmt, text in edition.bodies.items()]
        except OSError as error:
            raise TemporaryDeliveryError(f"cannot write to {folder}: {error.strerror or error}") from None
        return ", ".join(str(path) for path in written)

    @staticmethod
    def _write_new(folder: Path, stamp: str, extension: str, text: str) -> Path:
        """Write via a temp file and a hard link, so no reader sees half a file and nothing is overwritten.

        Idempotent: a retry after a crash between writing and recording the
        delivery finds its identical file and writes no second copy.
        """
        _remove_orphaned_partials(folder)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", suffix=f".{extension}")
        try:
            os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide editions from a web server or other users
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            for counter in range(1, 1000):
                target = folder / (f"{stamp}.{extension}" if counter == 1 else f"{stamp}-{counter}.{extension}")
                try:
                    os.link(temporary, target)
                    return target
                except FileExistsError:
                    if _same_text(target, text):
                        return target
            raise OSError(f"too many editions named {stamp}")
        finally:
            os.unlink(temporary)


PARTIAL_PREFIX = ".partial-"


def _same_text(path: Path, text: str) -> bool:
    """True when `path` already holds exactly `text`."""
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _remove_orphaned_partials(folder: Path) -> None:
    """Delete temp files left by a process that was killed while writing (its PID is gone)."""
    for partial in folder.glob(f"{PARTIAL_PREFIX}*"):
        pid = partial.name[len(PARTIAL_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            partial.unlink(missing_ok=True)


class ArchiveDeliverer:
    """Adds an edition to its digest's archive (digest/archive.py): its page, and the index pages and
    feeds that show it. `open_archive(digest, output_dir)` plans the archive from the store."""

    give_up_after: timedelta | None = None

    def __init__(self, open_archive: Callable[[str, Path], Archive]) -> None:
        self.open_archive = open_archive

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        archive = self.open_archive(delivery.digest, Path(delivery.recipient))
        try:
            report = archive.add_edition(delivery.edition_id, edition.bodies.get("html"))
        except OSError as error:
            raise TemporaryDeliveryError(f"cannot write the archive in {archive.settings.folder}: {error.strerror or error}") from None
        return f"archive {archive.settings.folder} ({len(report.written)} files written)"


class EmailDeliverer:
    """Sends one message to one recipient per outbox row, over one SMTP session per outbox pass.

    Needs the edition rendered by `Renderer.render_email` ("txt" and "html"
    bodies) and the delivery's stored Message-ID, so a retry sends the same
    message. Returns only after the server answered 250 to DATA.
    """

    def __init__(self, smtp: SmtpConfig, unsubscribe: dict[str, str] | None = None) -> None:
        self.smtp = smtp
        self.unsubscribe = unsubscribe or {}  # digest name -> mailto: or https: address
        self.give_up_after: timedelta | None = smtp.give_up_after
        self.session = SmtpSession(smtp)
        self._signing: Signer | None = None

    def _signer(self) -> Signer:
        """The DKIM signer, its key read on first use (an unusable key keeps mail pending, naming the file)."""
        if self._signing is None:
            assert self.smtp.dkim_key_file is not None
            self._signing = Signer.load(self.smtp.dkim_key_file, self.smtp.dkim_selector, self.smtp.signing_domain)
        return self._signing

    def __enter__(self) -> EmailDeliverer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.session.close()

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        """Send the edition to the delivery's recipient; returns after the server's 250."""
        if not delivery.message_id:
            raise ValueError(f"delivery {delivery.id} has no Message-ID; the outbox makes one before the first try")
        parts = MailParts(edition.subject, edition.bodies["txt"], edition.bodies["html"])
        try:
            message = build_message(
                parts,
                sender=self.smtp.from_,
                recipient=delivery.recipient,
                message_id=delivery.message_id,
                date=created,
                digest_name=delivery.digest,
                unsubscribe=self.unsubscribe.get(delivery.digest, ""),
            )
        except ValueError as error:  # an address the config check let through but email cannot use
            raise PermanentDeliveryError(f"cannot build the email to {delivery.recipient}: {error}") from None
        if self.smtp.dkim_key_file is None:
            self.session.send(message, delivery.recipient)
        else:
            international = not (str(message["To"]) + str(message["From"])).isascii()
            data = message.as_bytes(policy=SMTPUTF8 if international else SMTP)
            self.session.send(self._signer().sign(data), delivery.recipient, international)
        return f"{delivery.recipient} via {self.smtp.host}:{self.smtp.port}"

