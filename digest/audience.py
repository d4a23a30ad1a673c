"""Each subscriber's own edition: when it is due, and which articles it holds.

Times are local to each reader and DST-safe: a time that does not exist on a
spring-forward day comes at the same distance after the change (02:30 becomes
03:30), a repeated one on a fall-back day comes once (its first occurrence).
A reader is due once their latest local time has passed and no mail was made
for it; after downtime, the missed days coalesce into one mail, as digests do.

Readers who are due at the same moment with the same words and the same
watermark get the same articles, so they share one edition and one rendering:
the work grows with the number of such groups, not with the number of readers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache, partial
from zoneinfo import ZoneInfo

from digest.config import DigestConfig
from digest.models import ReaderTime, Subscriber
from digest.store import Store

log = logging.getLogger("digest.audience")


def slot_on(day: date, at: str, zone: ZoneInfo) -> datetime:
    """The moment (UTC) of local time `at` on `day` in `zone`; a time skipped by a clock change moves forward."""
    hour, minute = (int(part) for part in at.split(":"))
    local = datetime.combine(day, time(hour, minute), tzinfo=zone)  # fold=0: the first of a repeated hour
    return local.astimezone(timezone.utc)


def latest_slot(at: str, zone_name: str, now: datetime) -> datetime:
    """The latest moment at or before `now` when it was `at` o'clock in `zone_name`."""
    zone = _zone(zone_name)
    today = now.astimezone(zone).date()
    for day in (today, today - timedelta(days=1), today - timedelta(days=2)):
        slot = slot_on(day, at, zone)
        if slot <= now:
            return slot
    raise AssertionError("a local time of day comes at least once in any two days")


def next_slot(at: str, zone_name: str, now: datetime) -> datetime:
    """The first moment after `now` when it is `at` o'clock in `zone_name`."""
    zone = _zone(zone_name)
    today = now.astimezone(zone).date()
    for day in (today - timedelta(days=1), today, today + timedelta(days=1), today + timedelta(days=2)):
        slot = slot_on(day, at, zone)
        if slot > now:
            return slot
    raise AssertionError("a local time of day comes at least once in any two days")


def due_slot(subscriber: Subscriber, now: datetime) -> datetime | None:
    """The scheduled moment whose mail this active reader is owed at `now`, or None.

    A new reader's first mail is at their first local time after they subscribed.
    """
    slot = latest_slot(subscriber.at, subscriber.timezone, now)
    if subscriber.last_slot is not None and subscriber.last_slot >= slot:
        return None
    if subscriber.last_slot is None and slot < subscriber.created:
        return None
    return slot


def due_digests(times: Iterable[ReaderTime], now: datetime) -> list[str]:
    """The digests with a reader owed a mail at `now` (due_slot's rule over store.reader_times()): at one of
    their (time zone, time) the latest local moment came after a reader's last mail, or once a new reader
    had subscribed. What `digest worker`'s tick asks every second, in one query."""
    due: list[str] = []
    for reader_time in times:
        slot = latest_slot(reader_time.at, reader_time.timezone, now)
        sent_before = reader_time.earliest_sent is not None and reader_time.earliest_sent < slot
        new_since = reader_time.earliest_new is not None and reader_time.earliest_new <= slot
        if (sent_before or new_since) and reader_time.digest not in due:
            due.append(reader_time.digest)
    return due


@dataclass(frozen=True)
class Group:
    """Readers owed the same articles: the same moment, words and watermark."""

    slot: datetime
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    watermark: int
    subscribers: tuple[Subscriber, ...]


def due_groups(subscribers: Iterable[Subscriber], now: datetime) -> list[Group]:
    """The active readers owed a mail at `now`, grouped by what they get, earliest moment first."""
    groups: dict[tuple[datetime, tuple[str, ...], tuple[str, ...], int], list[Subscriber]] = {}
    for subscriber in subscribers:
        if subscriber.status != "active":
            continue
        slot = due_slot(subscriber, now)
        if slot is not None:
            key = (slot, tuple(sorted(subscriber.include)), tuple(sorted(subscriber.exclude)), subscriber.watermark)
            groups.setdefault(key, []).append(subscriber)
    return [Group(*key, subscribers=tuple(members)) for key, members in sorted(groups.items(), key=lambda item: item[0][0])]


@lru_cache(maxsize=256)
def _words(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of `words` as whole words; None for no words."""
    if not words:
        return None
    return re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")(?!\w)", re.IGNORECASE
    )


def wanted(text: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """True when `text` (an article's title and body) mentions an included word (if any are given) and no excluded one."""
    including, excluding = _words(tuple(include)), _words(tuple(exclude))
    if excluding is not None and excluding.search(text):
        return False
    return including is None or including.search(text) is not None


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def make_editions(store: Store, digest: DigestConfig, sources: Sequence[str], now: datetime) -> list[Made]:
    """Make the editions owed to `digest`'s readers at `now`: one per group, with an outbox row per reader.

    Each edition is made in one transaction that also moves its readers' watermark, so an article
    reaches each reader once; one a reader's words exclude is passed over for them alone. Only the
    readers of a (time zone, time) whose moment has come are read, so the daemon's look every
    minute costs one small query.
    """
    made = []
    owed = [
        subscriber
        for zone, at in store.subscriber_times(digest.name)
        for subscriber in store.due_subscribers(digest.name, zone, at, latest_slot(at, zone, now))
    ]
    for group in due_groups(owed, now):
        edition, served = store.create_subscriber_edition(
            digest.name,
            sources,
            [s.id for s in group.subscribers],
            group.watermark,
            group.slot,
            digest.max_articles,
            partial(wanted, include=group.include, exclude=group.exclude),
            now,
        )
        if served:
            made.append(Made(group.slot, len(served), len(edition.articles) if edition else 0))
            log.info(
                "edition of %s for %d subscriber(s) due %s made: %d articles",
                digest.name,
                len(served),
                group.slot.isoformat(),
                len(edition.articles) if edition else 0,
            )
    return made


@dataclass(frozen=True)
class Made:
    """One group's edition: when it was due, how many readers it serves, how many articles it holds (0: none sent)."""

    slot: datetime
    subscribers: int
    articles: int
