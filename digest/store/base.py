"""The store contract: everything the product asks of its state, as one Protocol.

Sources' memos and health, articles (each stored once), editions (each article in
exactly one edition of each digest), the outbox (deliveries claimed under leases,
tried, recorded) history (last poll, last edition, last scheduled run) and mail the
inbound listener took in for mailbox sources.
Every implementation passes tests/store_contract.py; the SQLite one is
digest/store/sqlite.py. Implementations are not shared between threads: open one
per thread with digest.store.open_store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from digest.config import StoreConfig
from digest.models import (
    Article,
    Delivery,
    Edition,
    EditionListing,
    InboundMessage,
    SearchHit,
    SourceState,
    StoredArticle,
    StoreSize,
    ReaderTime,
    Subscriber,
    Summary,
)

T = TypeVar("T")


class Store(Protocol):
    """One open connection to the product's state. Times are timezone-aware; "now" is always passed in."""

    path: Path  # where it lives (a file for SQLite); named in error messages and by the daemon's lock
    location: StoreConfig | Path  # what open_store opens again for another connection (a mailbox source's thread)
    owner: str  # who holds the leases this connection takes: one id per process, never reused

    def close(self) -> None:
        """Release the connection."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """All-or-nothing block; nests (as a savepoint) inside an outer one."""
        ...

    def batch(self, max_writes: int, max_seconds: float) -> WriteBatch:
        """Group the writes that follow into few transactions (see WriteBatch)."""
        ...

    def copy_to(self, path: Path) -> None:
        """Write a consistent copy of the state to `path`, to be changed freely (preview)."""
        ...

    def check_integrity(self) -> None:
        """A quick check of the whole store; StoreError saying how to recover when it is damaged."""
        ...

    # Sources

    def source_state(self, name: str) -> SourceState:
        """The memo and health of a source; a never-polled source has first_poll None."""
        ...

    def source_states(self) -> list[SourceState]:
        """Every source the store has seen, by name."""
        ...

    def record_poll(
        self, name: str, now: datetime, memo: dict[str, str] | None, error: str = "", not_before: datetime | None = None
    ) -> None:
        """Record a poll's outcome; the memo is kept only when it succeeded; `not_before` holds the next poll back.
        A planned source (plan_polls) is next due one interval after `now` (not before `not_before`), unclaimed."""
        ...

    def plan_polls(self, intervals: Mapping[str, timedelta]) -> None:
        """Keep each configured source's poll interval, so the store knows when each is next due: one interval
        after its last poll, not before a server's Retry-After, at once when never polled. Sources not named
        (gone from the config) are never due. `digest worker` calls it when it starts."""
        ...

    def claim_due_polls(self, now: datetime, lease: timedelta, limit: int) -> list[str]:
        """Claim up to `limit` planned sources due a poll by `now` and not claimed already (or whose claim's
        lease ended), soonest due first, and name them: one indexed query however many sources there are,
        so the worker's tick is cheap. A claim lasts until the source's record_poll or `now + lease`."""
        ...

    def change_host(self, origin: str, change: Callable[[str | None], tuple[str, T]]) -> T:
        """Read the stored manners of host `origin` (JSON text; None when none yet), let `change` make the
        new state and a result, store the state and return the result, all in one short transaction that
        every other connection's change of the same host waits for: `digest worker` processes hold one
        host's manners together this way (digest.manners.StoredManners)."""
        ...

    # Articles

    def is_known(self, article: Article) -> bool:
        """True when this version of the article (source, identity, version), or the same text, is stored."""
        ...

    def add_article(self, article: Article, summary: Summary | None, now: datetime, story_features: str = "") -> int | None:
        """Store an article with its summary and grouping features (digest.stories, JSON); its id, or
        None when it was a duplicate after all. With `summary` None it is stored waiting for its summary
        (`digest worker`'s polls: a summary task sets it), and no edition takes it until set_summary."""
        ...

    def awaiting_summary(self, ids: Sequence[int]) -> list[tuple[int, Article]]:
        """Those of the articles `ids` still waiting for their summary, by id, with what a summary is made from."""
        ...

    def overdue_summaries(self, fetched_before: datetime, limit: int) -> list[int]:
        """The ids of up to `limit` articles stored before `fetched_before` and still waiting for their
        summary, oldest first (their summary task was lost: deferred again)."""
        ...

    def set_summary(self, article_id: int, summary: Summary, story_features: str) -> bool:
        """Give an article waiting for its summary the summary and grouping features; editions take it from
        the commit on. False when it was not waiting (summarised already, by another process)."""
        ...

    def article_count(self) -> int:
        """How many articles are stored (pruned ones included: their identities stay)."""
        ...

    def prune(self, before: datetime) -> int:
        """Drop the text of articles fetched before `before` that every edition is done with (never of one
        waiting for its summary); identities
        stay, so nothing comes back as new. Also the bytes of mail received before `before` (its key
        stays: a resend is still a duplicate). Returns how many articles lost their text."""
        ...

    def size(self) -> StoreSize:
        """How big the state is: bytes on disk, articles, articles still holding their text."""
        ...

    def index_for_search(self) -> None:
        """Make every stored article searchable now. A store may index in bulk some time after a write
        (SQLite does), but never later than the next search or the next edition (of a digest or a reader)."""
        ...

    def search(self, words: Sequence[str], digest: str | None, since: datetime | None, limit: int) -> list[SearchHit]:
        """The `limit` articles, best first, whose title, summary or text (while kept) holds every one of
        `words` (plain words, matched case- and accent-blind and by stem, never read as query syntax), with
        the editions each appeared in; only those in an edition of `digest` when given, and only those
        published (else fetched) at or after `since` when given. Ranked by BM25 (SQLite FTS5; PostgreSQL's
        ts_rank_cd on a tsvector of the same three fields), a word in the title counting most. An article
        waiting for its summary need not be found until it has it."""
        ...

    # Editions

    def unsent(self, digest: str, sources: Sequence[str], limit: int) -> tuple[list[StoredArticle], int]:
        """The newest `limit` articles of `sources` no edition of `digest` held, and how many more wait;
        articles waiting for their summary are neither (the next edition after their summary takes them)."""
        ...

    def create_edition(
        self, digest: str, sources: Sequence[str], limit: int, now: datetime, outbox: Sequence[tuple[str, str]]
    ) -> Edition | None:
        """Make the next edition of `digest` and its (channel, recipient) outbox rows in one transaction;
        None when nothing waits."""
        ...

    def edition(self, edition_id: int, start: int = 0, count: int | None = None) -> Edition:
        """A stored edition with its articles in edition order (with `count`, only that many from position
        `start`: grouping reads a large edition a page at a time); StoreError if there is none."""
        ...

    def last_edition(self, digest: str) -> datetime | None:
        """When the latest edition of `digest` was made."""
        ...

    def shown_before(self, digest: str, edition_created: datetime, since: datetime) -> list[tuple[StoredArticle, datetime]]:
        """Articles of the editions of `digest` made from `since` up to (not including) `edition_created`,
        each with its edition's time: what a new edition's stories may follow up."""
        ...

    def story_features(self, article_ids: Sequence[int]) -> list[str]:
        """The story features (digest.stories' stored JSON) of these articles, in the same order; '' for one
        stored before features existed, or not stored. Editions' articles come without them: grouping asks
        for a page of ids at a time, so a large edition's features are never all held at once."""
        ...

    def edition_listing(self, digest: str, headlines: int) -> list[EditionListing]:
        """Every edition of `digest`, oldest first, with its Atom id, article count and first `headlines` titles."""
        ...

    def set_edition_stories(self, edition_id: int, count: int, headlines: Sequence[str]) -> None:
        """Keep how the edition's page grouped it: its story count and first story headlines (edition_listing's)."""
        ...

    def feed_id(self, digest: str) -> str:
        """The Atom id of `digest`'s archive feed: made the first time it is asked for, then kept."""
        ...

    def edition_count(self, digest: str) -> int:
        """How many editions of `digest` exist."""
        ...

    def record_digest_run(self, digest: str, now: datetime) -> None:
        """Remember that `digest`'s schedule ran at `now` (never moves back), edition or not."""
        ...

    def last_digest_run(self, digest: str) -> datetime | None:
        """When `digest`'s schedule last ran, or None."""
        ...

    # Outbox

    def due_deliveries(self, now: datetime | None) -> list[Delivery]:
        """Pending deliveries whose next attempt is due by `now` (all pending when None), oldest first."""
        ...

    def deliveries(self, statuses: Sequence[str]) -> list[Delivery]:
        """Deliveries in the given states, oldest first."""
        ...

    def set_message_id(self, delivery_id: int, message_id: str) -> None:
        """Keep the Message-ID made for a delivery (only the first is kept) so every retry reuses it."""
        ...

    def claim_delivery(self, delivery_id: int, now: datetime, lease: timedelta) -> bool:
        """Lease a pending delivery to this store's `owner` until now + lease; False while another owner's
        lease runs, or when it is no longer pending. The owner may renew its own lease."""
        ...

    def release_leases(self) -> int:
        """End every lease this store's owner holds, and those of the owners named `<owner>.<anything>` (the
        other connections open_store made in this process): a process stopping mid-delivery hands its work
        back; returns how many."""
        ...

    def record_attempt(
        self, delivery_id: int, now: datetime, status: str, error: str = "", next_attempt: datetime | None = None
    ) -> None:
        """Record one try: delivered, failed, or pending until `next_attempt`; ends the lease."""
        ...

    # Subscribers

    def add_subscriber(
        self,
        digest: str,
        address: str,
        name: str,
        timezone_name: str,
        at: str,
        include: Sequence[str],
        exclude: Sequence[str],
        status: str,
        now: datetime,
    ) -> tuple[Subscriber, bool]:
        """Add a reader of `digest`, or update the one with this address; (subscriber, True when new).
        A new reader's watermark is the newest stored article's arrival number: they get what arrives from now on."""
        ...

    def subscriber(self, subscriber_id: int) -> Subscriber | None:
        """One subscriber by id, whatever their status."""
        ...

    def subscribers(self, digest: str | None = None, statuses: Sequence[str] = ("active", "invited")) -> list[Subscriber]:
        """Subscribers in the given states (of `digest`, or of every digest), by digest and address."""
        ...

    def remove_subscriber(self, address: str, digest: str | None = None) -> int:
        """Delete the subscriber with this address (of one digest, or of all); how many were removed."""
        ...

    def set_subscriber_status(self, subscriber_id: int, status: str, now: datetime, expected: Sequence[str]) -> bool:
        """Move a subscriber to `status` when they are in one of the `expected` states; True when changed."""
        ...

    def subscriber_times(self, digest: str) -> list[tuple[str, str]]:
        """The distinct (time zone, local time) pairs of the digest's active subscribers."""
        ...

    def due_subscribers(self, digest: str, timezone_name: str, at: str, slot: datetime) -> list[Subscriber]:
        """Active subscribers at (`timezone_name`, `at`) with no mail made for `slot` yet, who subscribed by then."""
        ...

    def reader_times(self) -> list[ReaderTime]:
        """Per digest and (time zone, local time) of its active readers, the earliest last mail moment and the
        earliest subscription of those never sent one: enough to tell whether any is due, in one query."""
        ...

    def subscriber_by_address(self, digest: str, address: str) -> Subscriber | None:
        """The subscriber of `digest` with this (normalised) address, whatever their status."""
        ...

    def create_subscriber_edition(
        self,
        digest: str,
        sources: Sequence[str],
        subscriber_ids: Sequence[int],
        watermark: int,
        slot: datetime,
        limit: int,
        wanted: Callable[[str], bool],
        now: datetime,
    ) -> tuple[Edition | None, list[int]]:
        """One edition for readers who share a watermark, words and moment, made in one transaction with a
        `subscriber` outbox row each and their watermark and last moment moved on; (edition or None, ids served).
        The watermark stops before the first article still waiting for its summary: a later edition takes it.

        Articles are taken in arrival order: each article gets its arrival number when a reader's edition (or
        a new reader) first sees it committed, so one committed after an edition was made (even holding a
        smaller id, as PostgreSQL ids can) comes in a later one, and the watermark never passes over it."""
        ...

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """The stored secret called `name`, made by `make` and kept on first use."""
        ...

    # Inbound mail (mailbox sources)

    def add_inbound(self, sources: Sequence[str], key: str, sender: str, raw: bytes, now: datetime) -> list[bool]:
        """Keep one received message for each mailbox source, all-or-nothing and committed on return (the
        listener says 250 only then); per source True when kept, False when it held the same `key` already."""
        ...

    def count_inbound(self, source: str, outcome: str, now: datetime) -> None:
        """Count one refused or deferred message of `source` ("" for an unknown address) under `outcome`."""
        ...

    def inbound_counts(self) -> dict[str, dict[str, tuple[int, datetime]]]:
        """Per source ("" for unknown addresses): outcome -> (how many, when last)."""
        ...

    def mail_since_last_poll(self, sources: Sequence[str]) -> list[str]:
        """Those of the mailbox `sources` holding mail received after their last poll began, or never polled:
        `digest worker`'s tick hands each to a worker at once rather than at its next interval."""
        ...

    def inbound_messages(self, source: str, after: int, limit: int) -> list[InboundMessage]:
        """Up to `limit` messages kept for `source` after the one with id `after`, in the order they came."""
        ...


class WriteBatch:
    """Consecutive writes in one transaction, each in a savepoint of its own (a failed write
    undoes only itself), so that a run does not pay a commit per article.

    The batch commits on `commit()`, which a writer calls before it waits (for the network,
    or a worker), so the write lock is never held across a wait; and by itself at the write
    that reaches `max_writes` or comes `max_seconds` after the batch began.
    """

    def __init__(self, store: Store, max_writes: int, max_seconds: float) -> None:
        self._store = store
        self._max_writes = max_writes
        self._max_seconds = max_seconds
        self._open: ExitStack | None = None
        self._writes = 0
        self._began = 0.0

    @contextmanager
    def write(self) -> Iterator[None]:
        """One all-or-nothing write, inside the open batch (begun here if none is)."""
        if self._open is None:
            opened = ExitStack()
            opened.enter_context(self._store.transaction())
            self._open, self._writes, self._began = opened, 0, time.monotonic()
        with self._store.transaction():
            yield
        self._writes += 1
        if self._writes >= self._max_writes or time.monotonic() - self._began >= self._max_seconds:
            self.commit()

    def commit(self) -> None:
        """Commit the writes of the open batch, if there is one."""
        if self._open is not None:
            opened, self._open = self._open, None
            opened.close()
