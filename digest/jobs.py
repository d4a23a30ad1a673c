"""The daemon's jobs: poll one source, make one digest's edition, its subscribers' editions, retry the outbox, prune.

Each job opens the store, calls the same pipeline functions as `digest run` and
closes it, so a job never shares a connection with another thread. Also what the
store says already happened (History), which the scheduler plans from. No APScheduler here.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from digest.config import Config, DigestConfig, SourceConfig
from digest.errors import DigestError
from digest.schedule import parse_schedule
from digest.sources import NETWORK_SOURCES
from digest.store import Store, open_store

if TYPE_CHECKING:
    from digest.fetch import Fetcher
    from digest.models import Summary
    from digest.workers import Workers

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
                    log.warning(
                        "%s %s: its last %s is recorded at %s, after now (%s): ignored, as if none had been "
                        "(was the clock ahead?)",
                        kind,
                        name,
                        "poll" if kind == "source" else "edition",
                        moment.isoformat(),
                        now.isoformat(),
                        extra={"job": "plan", "target": name},
                    )
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

    def subscribers(self, config: Config, digest: str, now: datetime) -> None:
        """Make the editions owed to a digest's subscribers at their own times, and deliver them."""
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

    def wait_idle(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until no poll the work started itself runs; True when none does."""
        ...

    def close(self) -> None:
        """Release what outlives a single job."""
        ...


# An edition polls first its sources not polled lately, and waits for those polls at most this long
# (a quarter of an interval schedule's period, if that is less), so a hanging source never holds it back.
FRESH_POLL_WAIT = 10.0


def fresh_poll_wait(digest: DigestConfig) -> float:
    """Seconds an edition of `digest` waits for its sources' fresh polls."""
    every = parse_schedule(digest.schedule).every
    return min(FRESH_POLL_WAIT, every.total_seconds() / 4) if every is not None else FRESH_POLL_WAIT


class StopRequested(BaseException):
    """Raised between two stored articles when the daemon is stopping, to end a long poll early.

    Each article is committed on its own, so nothing stored is lost. A
    BaseException so that the pipeline's `except Exception` and `except
    DigestError` do not record it as the source's failure.
    """


# Seconds a job waits for the store's write lock: the daemon's concurrent polls take turns writing
# (each holds it for a batch, at most BATCH_SECONDS), and a job must not fail for waiting a little.
JOB_STORE_TIMEOUT = 60.0


@contextmanager
def opened_store(config: Config) -> Iterator[Store]:
    """The config's store, open for one job and closed after it."""
    store = open_store(config.store, timeout=JOB_STORE_TIMEOUT)
    try:
        yield store
    finally:
        store.close()


class PipelineWork:
    """The daemon's jobs, done by the pipeline on a store opened for each job. Jobs run concurrently:
    they share one HTTP client (its per-host manners) and one set of summary workers."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._fetcher: Fetcher | None = None
        self._retired: list[Fetcher] = []  # clients replaced by a reload, closed when the daemon stops
        self._workers: Workers[Any, tuple[Summary, str]] | None = None
        self._shared = threading.Lock()
        self._in_flight: dict[str, threading.Event] = {}  # source -> set when its running poll ends
        self._fresh: ThreadPoolExecutor | None = None  # polls an edition asks for

    def _check_stop(self, source: str) -> None:
        if self.stopping.is_set():
            raise StopRequested()

    def _shared_fetcher(self, config: Config, sources: Sequence[SourceConfig]) -> Fetcher | None:
        """One HTTP client kept across polls (pooled connections, per-host spacing); remade when [fetch] changes."""
        if not any(source.type in NETWORK_SOURCES for source in sources):
            return None
        with self._shared:
            if self._fetcher is not None and self._fetcher.config != config.fetch:
                self._retired.append(self._fetcher)  # polls still running keep using it
                self._fetcher = None
            if self._fetcher is None:
                from digest.fetch import Fetcher  # httpx only when a network source is polled

                self._fetcher = Fetcher(config.fetch)
            return self._fetcher

    def _fresh_polls(self, config: Config, sources: Sequence[SourceConfig], now: datetime, wait: float) -> None:
        """Poll `sources` now (those being polled already are not asked twice) and wait for them, at most
        `wait` seconds: a source that hangs delays the edition that long at most, and what it brings
        later goes into the next edition."""
        waiting = []
        for source in sources:
            done = self._begin(source.name)
            if done is None:
                with self._shared:
                    running = self._in_flight.get(source.name)
                if running is not None:
                    waiting.append(running)
                continue
            waiting.append(done)
            with self._shared:
                if self._fresh is None:
                    self._fresh = ThreadPoolExecutor(config.fetch.concurrency, thread_name_prefix="fresh-poll")
                fresh = self._fresh
            fresh.submit(self._fresh_poll, config, source.name, now, done)
        deadline = time.monotonic() + wait
        for event in waiting:
            event.wait(max(0.0, deadline - time.monotonic()))

    def _fresh_poll(self, config: Config, source: str, now: datetime, done: threading.Event) -> None:
        """One poll an edition asked for, on its own thread; its failure is logged, never raised."""
        try:
            self._poll(config, source, now)
        except StopRequested:
            log.info("poll %s stopped early: what it stored is kept", source, extra={"job": "poll", "target": source})
        except DigestError as error:
            log.error("poll %s failed: %s", source, error, extra={"job": "poll", "target": source, "error": str(error)})
        except Exception as error:  # a bug in one poll must not kill the daemon
            log.exception("poll %s crashed: %s", source, error, extra={"job": "poll", "target": source})
        finally:
            self._end(source, done)

    def wait_idle(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until no poll runs; True when none does."""
        deadline = time.monotonic() + timeout
        while True:
            with self._shared:
                running = list(self._in_flight.values())
            if not running:
                return True
            if not running[0].wait(max(0.0, deadline - time.monotonic())) and time.monotonic() >= deadline:
                return False

    def _summary_workers(self, config: Config) -> Workers[Any, tuple[Summary, str]]:
        """One set of summary workers for every concurrent poll (processes only while one runs)."""
        from digest import pipeline

        with self._shared:
            if self._workers is None:
                self._workers = pipeline.daemon_workers(config)
            return self._workers

    def close(self) -> None:
        """Release what outlives a job: the shared HTTP clients and summary workers."""
        with self._shared:
            for fetcher in [*self._retired, *([self._fetcher] if self._fetcher else [])]:
                fetcher.close()
            self._fetcher, self._retired = None, []
            if self._workers is not None:
                self._workers.close()
            if self._fresh is not None:
                self._fresh.shutdown(wait=False, cancel_futures=True)

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
        """Poll one source, unless it is being polled already (by an edition's fresh poll): one poll of a
        source at a time. The pipeline logs "source X polled: n new"."""
        done = self._begin(source)
        if done is None:
            log.info(
                "poll %s skipped: the previous one still runs", source, extra={"job": "poll", "target": source, "skipped": True}
            )
            return
        try:
            self._poll(config, source, now)
        finally:
            self._end(source, done)

    def _begin(self, source: str) -> threading.Event | None:
        """Mark `source` as being polled; None when it is already."""
        with self._shared:
            if source in self._in_flight:
                return None
            done = self._in_flight[source] = threading.Event()
            return done

    def _end(self, source: str, done: threading.Event) -> None:
        with self._shared:
            del self._in_flight[source]
        done.set()

    def _poll(self, config: Config, source: str, now: datetime) -> None:
        from digest import pipeline  # not at import: `digest status` reads History without the stages

        source_config = next((s for s in config.sources if s.name == source), None)
        if source_config is None:  # removed by a reload while this job waited
            return
        with opened_store(config) as store:
            pipeline.poll(
                config,
                store,
                [source_config],
                now,
                on_article=self._check_stop,
                fetcher=self._shared_fetcher(config, [source_config]),
                workers=self._summary_workers(config),
            )

    def edition(self, config: Config, digest: str, now: datetime) -> None:
        """Poll the digest's sources not polled in the last minute, make one edition and deliver it
        at once; the pipeline logs each poll and delivery."""
        from digest import pipeline

        from digest.poll import stale_sources

        digest_config = config.digest(digest)
        with opened_store(config) as store:
            stale = stale_sources(store, config.sources_of(digest_config), now)
        self._fresh_polls(config, stale, now, fresh_poll_wait(digest_config))
        with opened_store(config) as store:
            made = pipeline.edition_and_delivery(config, store, digest_config, now)
        if not made.made:
            log.info("edition of %s: nothing new, none made", digest, extra={"job": "edition", "target": digest, "articles": 0})

    def subscribers(self, config: Config, digest: str, now: datetime) -> None:
        """Make the editions owed to the digest's subscribers now (one per group) and deliver them at once."""
        from digest import pipeline

        digest_config = next((d for d in config.digests if d.name == digest), None)
        if digest_config is None:  # removed by a reload while this job waited
            return
        with opened_store(config) as store:
            pipeline.subscriber_editions_and_delivery(config, store, digest_config, now)

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
