"""The daemon's jobs: poll one source, make one digest's edition, retry the outbox, prune.

Each job opens the store, calls the same pipeline functions as `digest run` and
closes it, so a job never shares a connection with another thread. Also what the
store says already happened (History), which the scheduler plans from. No APScheduler here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from digest.config import Config, SourceConfig
from digest.sources import NETWORK_SOURCES
from digest.store import Store, open_store

if TYPE_CHECKING:
    from digest.fetch import Fetcher

log = logging.getLogger("digest.daemon")


@dataclass(frozen=True)
class History:
    """What the store says already happened: last poll per source, last edition per digest."""

    last_polls: dict[str, datetime | None]
    last_editions: dict[str, datetime | None]  # or the last scheduled run that found nothing new
    polls_not_before: dict[str, datetime | None] = field(default_factory=dict)  # a server's Retry-After

    def as_of(self, now: datetime) -> History:
        """This history without the polls and editions recorded after `now`, each ignored with a warning.

        A clock that was once ahead (a run with $DIGEST_NOW in the future, a host clock set back)
        leaves times the daemon would otherwise wait for; a server's Retry-After is meant to be ahead.
        """
        def past(kind: str, moments: dict[str, datetime | None]) -> dict[str, datetime | None]:
            kept: dict[str, datetime | None] = {}
            for name, moment in moments.items():
                if moment is not None and moment > now:
                    log.warning("%s %s: its last %s is recorded at %s, after now (%s): ignored, as if none had been "
                                "(was the clock ahead?)", kind, name, "poll" if kind == "source" else "edition",
                                moment.isoformat(), now.isoformat(), extra={"job": "plan", "target": name})
                    moment = None
                kept[name] = moment
            return kept

        return History(past("source", self.last_polls), past("digest", self.last_editions), self.polls_not_before)


def read_history(config: Config, store: Store) -> History:
    """The last poll of each configured source and the last edition of each digest."""
    states = {s.name: store.source_state(s.name) for s in config.sources}
    return History(
        last_polls={name: state.last_poll for name, state in states.items()},
        polls_not_before={name: state.not_before for name, state in states.items()},
        last_editions={d.name: _latest(store.last_edition(d.name), store.last_digest_run(d.name)) for d in config.digests},
    )


def check_store(config: Config) -> None:
    """Open the store (made if none exists) and check every page: StoreError, with how to
    recover, when it is damaged, so the daemon stops at start (exit 3) instead of failing each job."""
    with opened_store(config) as store:
        store.check_integrity()


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


class Work(Protocol):
    """What the daemon's jobs do; each method runs one job and logs one line about it."""

    def history(self, config: Config) -> History:
        """Last poll of each source and last edition of each digest, from the store."""
        ...

    def poll(self, config: Config, source: str, now: datetime) -> None:
        """Poll one source and store what is new."""
        ...

    def edition(self, config: Config, digest: str, now: datetime) -> None:
        """Make one edition of a digest and deliver it."""
        ...

    def outbox(self, config: Config, now: datetime) -> None:
        """Retry deliveries whose backoff has passed."""
        ...

    def prune(self, config: Config, now: datetime) -> None:
        """Drop article text older than [store] keep."""
        ...

    def hand_back(self, config: Config) -> None:
        """End this process's delivery leases: it is leaving with a delivery unfinished."""
        ...

    def close(self) -> None:
        """Release what outlives a single job."""
        ...


class StopRequested(BaseException):
    """Raised between two stored articles when the daemon is stopping, to end a long poll early.

    Each article is committed on its own, so nothing stored is lost. A
    BaseException so that the pipeline's `except Exception` and `except
    DigestError` do not record it as the source's failure.
    """


@contextmanager
def opened_store(config: Config) -> Iterator[Store]:
    """The config's store, open for one job and closed after it."""
    store = open_store(config.store)
    try:
        yield store
    finally:
        store.close()


class PipelineWork:
    """The daemon's jobs, done by the pipeline on a store opened for each job."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._fetcher: Fetcher | None = None

    def _check_stop(self, source: str) -> None:
        if self.stopping.is_set():
            raise StopRequested()

    def _shared_fetcher(self, config: Config, sources: Sequence[SourceConfig]) -> Fetcher | None:
        """One HTTP client kept across polls (pooled connections, per-host spacing); remade when [fetch] changes."""
        if not any(source.type in NETWORK_SOURCES for source in sources):
            return None
        if self._fetcher is not None and self._fetcher.config != config.fetch:
            self.close()
        if self._fetcher is None:
            from digest.fetch import Fetcher  # httpx only when a network source is polled

            self._fetcher = Fetcher(config.fetch)
        return self._fetcher

    def close(self) -> None:
        """Release what outlives a job: the shared HTTP client."""
        if self._fetcher is not None:
            self._fetcher.close()
            self._fetcher = None

    def hand_back(self, config: Config) -> None:
        """End this process's delivery leases, so the next start (or another process) retries them at once."""
        store = open_store(config.store, timeout=1.0)
        try:
            store.release_leases()
        finally:
            store.close()

    def history(self, config: Config) -> History:
        """Last poll of each source and last edition of each digest, from the store."""
        with opened_store(config) as store:
            return read_history(config, store)

    def poll(self, config: Config, source: str, now: datetime) -> None:
        """Poll one source; the pipeline logs "source X polled: n new"."""
        from digest import pipeline  # not at import: `digest status` reads History without the stages

        source_config = next((s for s in config.sources if s.name == source), None)
        if source_config is None:  # removed by a reload while this job waited
            return
        with opened_store(config) as store:
            pipeline.poll(config, store, [source_config], now, on_article=self._check_stop,
                          fetcher=self._shared_fetcher(config, [source_config]))

    def edition(self, config: Config, digest: str, now: datetime) -> None:
        """Poll the digest's sources not polled in the last minute, make one edition and deliver it
        at once; the pipeline logs each poll and delivery."""
        from digest import pipeline

        digest_config = config.digest(digest)
        with opened_store(config) as store:
            made = pipeline.edition_and_delivery(config, store, digest_config, now, on_article=self._check_stop,
                                                 fetcher=self._shared_fetcher(config, config.sources_of(digest_config)))
        if not made.made:
            log.info("edition of %s: nothing new, none made", digest, extra={"job": "edition", "target": digest, "articles": 0})

    def outbox(self, config: Config, now: datetime) -> None:
        """Retry the deliveries whose backoff has passed."""
        from digest import pipeline

        with opened_store(config) as store:
            pipeline.deliver(config, store, now, honour_backoff=True)

    def prune(self, config: Config, now: datetime) -> None:
        """Drop article text older than [store] keep; the pipeline logs how much."""
        from digest import pipeline

        with opened_store(config) as store:
            pipeline.prune(config, store, now)
