"""Editions: the next edition of a digest and its outbox rows, made in one transaction by the store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from digest.config import DigestConfig
from digest.models import Edition
from digest.registry import CHANNELS, load
from digest.store import Store

log = logging.getLogger("digest.editions")


class Recipients(Protocol):
    """What a channel of digest.registry.CHANNELS says about a digest: who gets its editions."""

    def recipients(self, digest: DigestConfig) -> list[str]:
        """The outbox recipients of one edition of `digest` (folders, addresses); none when unused."""
        ...


def outbox_rows(digest: DigestConfig) -> list[tuple[str, str]]:
    """(channel, recipient) of every delivery an edition of `digest` gets, channel by channel."""
    channels: dict[str, Recipients] = {name: load(entry) for name, entry in CHANNELS.items()}
    return [(name, recipient) for name, channel in channels.items() for recipient in channel.recipients(digest)]


def make_edition(store: Store, digest: DigestConfig, sources: Sequence[str], now: datetime) -> Edition | None:
    """Create the next edition of `digest` from `sources` with an outbox row per channel recipient,
    or None when nothing waits. Every article lands in exactly one edition of each digest."""
    edition = store.create_edition(digest.name, sources, digest.max_articles, now, outbox_rows(digest))
    if edition:
        log.info("edition of %s made: %d articles", digest.name, len(edition.articles))
    return edition
