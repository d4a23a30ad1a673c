"""Managing a digest's subscribers: checked input in, rows in the store.

A subscriber is one address of one digest, with a local delivery time, a time
zone and words to include or exclude. `digest subscribers add` makes an active
reader; `invite` makes one waiting for confirmation (nothing is sent to them
but the confirmation mail until they confirm).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.addresses import Mailbox, parse_mailbox
from digest.config import DigestConfig
from digest.models import Subscriber
from digest.schedule import parse_schedule
from digest.store import Store

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
DEFAULT_AT = "07:00"


@dataclass(frozen=True)
class Wishes:
    """What a reader asked for, checked: when, in which time zone, and which words."""

    timezone: str
    at: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]


def check_time(text: str) -> str:
    """ "7:05" -> "07:05"; ValueError unless it is a time of day HH:MM."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"--at: expected a time of day HH:MM (24-hour), got {text!r}")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def check_timezone(name: str) -> str:
    """The name back when it is a time zone this machine knows (IANA, e.g. "Europe/London")."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--timezone: unknown time zone {name!r} (use an IANA name such as Europe/London)") from None
    return name


def check_words(texts: Iterable[str], option: str) -> tuple[str, ...]:
    """Words or phrases, comma-separated or given one per option, lower-cased and each once."""
    words: list[str] = []
    for text in texts:
        for word in text.split(","):
            cleaned = " ".join(word.split()).casefold()
            if any(ord(c) < 32 for c in word.strip("\r\n\t ")):
                raise ValueError(f"{option}: control characters in {word!r}")
            if cleaned and cleaned not in words:
                words.append(cleaned)
    return tuple(words)


def digest_time(digest: DigestConfig) -> str:
    """A new reader's default time: the digest's own when its schedule fires once a day at a fixed time."""
    fields = parse_schedule(digest.schedule).text.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit():
        return f"{int(fields[1]):02d}:{int(fields[0]):02d}"
    return DEFAULT_AT


def wishes(digest: DigestConfig, timezone: str | None, at: str | None, include: Iterable[str], exclude: Iterable[str]) -> Wishes:
    """Check a reader's options; defaults are the digest's time zone and time. ValueError names the option."""
    return Wishes(
        timezone=check_timezone(timezone or digest.timezone),
        at=check_time(at) if at else digest_time(digest),
        include=check_words(include, "--include"),
        exclude=check_words(exclude, "--exclude"),
    )


def subscribe(
    store: Store, digest: DigestConfig, address: str, chosen: Wishes, now: datetime, confirmed: bool = True
) -> tuple[Subscriber, bool]:
    """Add or update a reader; (subscriber, True when new). `confirmed=False` makes them wait for confirmation.

    Re-adding a reader who unsubscribed is the operator's deliberate act and makes them active again;
    re-inviting an active reader leaves them active.
    """
    mailbox = parse_mailbox(address)
    status = "active" if confirmed else "invited"
    known = [s for s in store.subscribers(digest.name, ("active",)) if s.address == mailbox.address]
    if known and not confirmed:
        status = "active"
    return store.add_subscriber(
        digest.name, mailbox.address, mailbox.name, chosen.timezone, chosen.at, chosen.include, chosen.exclude, status, now
    )


def mailbox_of(subscriber: Subscriber) -> Mailbox:
    """The subscriber's address as the To line shows it."""
    return Mailbox(subscriber.address, subscriber.name)


def as_json(subscriber: Subscriber) -> dict[str, object]:
    """One subscriber for `digest subscribers list --json`."""
    return {
        "digest": subscriber.digest,
        "address": subscriber.address,
        "name": subscriber.name,
        "timezone": subscriber.timezone,
        "at": subscriber.at,
        "include": list(subscriber.include),
        "exclude": list(subscriber.exclude),
        "status": subscriber.status,
        "since": subscriber.created.isoformat(),
        "last_sent": subscriber.last_slot.isoformat() if subscriber.last_slot else None,
    }
