"""Deliveries: write an edition's files, or (later) email it, one outbox row at a time.

Each channel implements `Deliverer`. A delivery raises TemporaryDeliveryError for
failures worth retrying with backoff and PermanentDeliveryError for the rest.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from digest.errors import TemporaryDeliveryError
from digest.models import Delivery
from digest.render import RenderedEdition

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


class Deliverer(Protocol):
    """Delivers one rendered edition to one outbox recipient."""

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        """Deliver and return a short description of where it went; raise DeliveryError on failure."""
        ...


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: one minute after the first failure, doubling, capped at an hour."""
    return min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_RETRY)


def safe_name(name: str) -> str:
    """A file or folder name that stays inside its folder: no separators, no dots first."""
    cleaned = re.sub(r"[^\w.\-]+", "_", name).lstrip(".")
    return cleaned or "digest"


class FileDeliverer:
    """Writes `<output_dir>/<digest>/<date>T<time>.<ext>` for each format, atomically."""

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
        """Write via a temp file and a hard link, so no reader sees half a file and nothing is overwritten."""
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=f".{extension}")
        try:
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
                    continue
            raise OSError(f"too many editions named {stamp}")
        finally:
            os.unlink(temporary)


DELIVERERS: dict[str, type] = {"files": FileDeliverer}
