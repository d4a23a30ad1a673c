"""Sources: one module per type behind the `Source` protocol.

A source turns its config section into articles. It yields them one by one so
that the pipeline stores and summarises each as it comes (flat memory), and
raises a SourceError subclass naming what went wrong; one source's failure
never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.config import SourceConfig, StoreConfig
from digest.errors import SourceError
from digest.models import Article
from digest.registry import SOURCE_TYPES, load

if TYPE_CHECKING:
    from digest.fetch import Fetcher

_holding = threading.local()  # whether this thread holds a work slot (slots are re-entrant per thread)


@dataclass
class PollContext:
    """What a source may use while polling: the time, its memo, a fetcher and work slots.

    `memo` is a per-source dict of strings kept in the store between polls
    (ETag, Last-Modified, a page's text hash); a source may change it and the
    pipeline saves it after a successful poll. `fetcher` is the shared HTTP
    fetcher (None for sources that never touch the network). `work_slots` is
    shared by a run's sources: see `working`. `parse_budget`: see `parsing`.
    `store_at` is the store a mailbox source reads received mail from (opened again by
    digest.store.open_store in the source's thread: a SQLite file or a PostgreSQL database); `notes`
    go into the source's report (what it skipped, and why).
    """

    now: datetime
    first_poll: bool
    memo: dict[str, str] = field(default_factory=dict)
    fetcher: Fetcher | None = None
    work_slots: threading.Semaphore | None = None
    parse_budget: float | None = None  # seconds a poll may spend parsing what it fetched (the [fetch] timeout)
    parse_spent: float = 0.0
    store_at: StoreConfig | Path | None = None
    notes: list[str] = field(default_factory=list)

    @contextmanager
    def parsing(self) -> Iterator[None]:
        """Count the CPU time this thread spends inside against `parse_budget` (see `over_budget`): what the
        document costs, not how long other work on a busy machine kept the thread from running."""
        started = time.thread_time()
        try:
            yield
        finally:
            self.parse_spent += time.thread_time() - started

    @property
    def over_budget(self) -> bool:
        """True once parsing has cost more than a download may take: a source then stops reading
        (what it read is kept), so a document built to burn CPU costs no more than a slow server."""
        return self.parse_budget is not None and self.parse_spent > self.parse_budget

    @contextmanager
    def working(self) -> Iterator[None]:
        """Hold one of the run's work slots while turning a fetched document into articles.

        Hundreds of sources are fetched at once, but only a few at a time are
        parsed and hand their articles over: a parsed feed takes several times
        its size, and the articles wait for the summariser. Re-entrant within a
        thread (a feed's teaser pages are extracted in its own slot).
        """
        if self.work_slots is None or getattr(_holding, "slot", False):
            yield
            return
        with self.work_slots:
            _holding.slot = True
            try:
                yield
            finally:
                _holding.slot = False


class Source(Protocol):
    """Produces articles from one configured place."""

    name: str

    def poll(self, context: PollContext) -> Iterator[Article]:
        """Yield the articles found now; raise SourceError if the source cannot be read."""
        ...


NETWORK_SOURCES = ("feed", "page")  # the types that need the HTTP fetcher


def open_source(config: SourceConfig) -> Source:
    """The Source for one `[[sources]]` entry, chosen by its `type` in digest.registry.SOURCE_TYPES (only
    that type's module is imported: a files-only run never loads feedparser and the HTTP client, ~20 MB);
    SourceError for a type the config accepts but this version cannot poll yet."""
    if config.type not in SOURCE_TYPES:
        raise SourceError(f"source type {config.type!r} cannot be polled by this version of digest (not implemented yet)")
    source_class: Callable[[SourceConfig], Source] = load(SOURCE_TYPES[config.type])
    return source_class(config)
