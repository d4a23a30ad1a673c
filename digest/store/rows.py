"""Stored rows turned into the models the stages use, and times to and from their stored text.

Shared by every store implementation: SQLite's rows and PostgreSQL's dict rows
are both read by column name, and both keep times as ISO 8601 text in UTC.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from digest.models import Article, Delivery, EditionListing, SourceState, StoredArticle, Subscriber


class Row(Protocol):
    """A stored row read by column name (sqlite3.Row, or a psycopg dict row)."""

    def __getitem__(self, column: str) -> Any: ...


def text(moment: datetime | None) -> str | None:
    """A time as it is stored: ISO 8601 in UTC; None stays None."""
    return moment.astimezone(timezone.utc).isoformat() if moment else None


def moment(stored: str | None) -> datetime | None:
    """A stored time back as a timezone-aware datetime; None or "" is None."""
    return datetime.fromisoformat(stored) if stored else None


NEVER_POLLED = "0000"  # the next poll of a source never polled: before any stored time, so due at once


def next_poll(last_poll: str | None, every: float | None, not_before: str | None) -> str | None:
    """When a source is next due (stored text): one interval (`every` seconds) after its last poll, not
    before a server's Retry-After, at once when never polled; None when it has no interval (not planned)."""
    if every is None:
        return None
    due = NEVER_POLLED if last_poll is None else text(_required(last_poll) + timedelta(seconds=every))
    assert due is not None
    return max(due, not_before) if not_before else due


def _required(stored: str | None) -> datetime:
    """A time stored in a NOT NULL column."""
    found = moment(stored)
    assert found is not None
    return found


def source_state(name: str, row: Row | None) -> SourceState:
    """A source's memo and health; a source with no row was never polled."""
    if row is None:
        return SourceState(name, {}, None, None, None, 0, "")
    return SourceState(
        name,
        json.loads(row["memo"]),
        moment(row["first_poll"]),
        moment(row["last_poll"]),
        moment(row["last_success"]),
        row["failures"],
        row["last_error"],
        moment(row["not_before"]),
        moment(row["failing_since"]),
    )


def _interned(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def stored_article(row: Row) -> StoredArticle:
    """An article as editions show it: its summary, no body and no story features (Store.story_features reads
    those a page at a time). Its source, author and language are the same few strings over thousands of
    articles: each is held once (interned)."""
    return StoredArticle(
        id=row["id"],
        source=sys.intern(row["source"]),
        title=row["title"],
        url=row["url"],
        published=moment(row["published"]),
        author=_interned(row["author"]),
        language=_interned(row["language"]),
        summary=tuple(json.loads(row["summary"])),
        fetched=_required(row["fetched"]),
    )


def article(row: Row) -> Article:
    """An article as its source gave it (with its body): what a summary of it is made from."""
    return Article(
        source=row["source"],
        identity=row["identity"],
        title=row["title"],
        body=row["body"],
        published=moment(row["published"]),
        url=row["url"],
        author=row["author"],
        language=row["language"],
        version=row["version"],
        backfilled=bool(row["backfilled"]),
    )


def edition_listing(row: Row, titles: Sequence[str]) -> EditionListing:
    """An edition as the archive lists it; `titles` are the titles of its first articles."""
    stories = json.loads(row["stories"]) if row["stories"] else {}
    return EditionListing(
        row["id"],
        row["atom_id"],
        _required(row["created"]),
        row["count"],
        tuple(titles),
        stories.get("count"),
        tuple(stories.get("headlines", ())),
    )


def subscriber(row: Row) -> Subscriber:
    """A stored reader with their time, words and watermark."""
    return Subscriber(
        id=row["id"],
        digest=row["digest"],
        address=row["address"],
        name=row["name"],
        timezone=row["timezone"],
        at=row["at"],
        include=tuple(json.loads(row["include"])),
        exclude=tuple(json.loads(row["exclude"])),
        status=row["status"],
        created=_required(row["created"]),
        watermark=row["watermark"],
        last_slot=moment(row["last_slot"]),
    )


def delivery(row: Row) -> Delivery:
    """One outbox row."""
    return Delivery(
        id=row["id"],
        edition_id=row["edition_id"],
        digest=row["digest"],
        channel=row["channel"],
        recipient=row["recipient"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        message_id=row["message_id"],
        next_attempt=moment(row["next_attempt"]),
        created=moment(row["created"]),
    )
