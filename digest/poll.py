"""Polling: sources polled concurrently in threads, each new article summarised and stored as it arrives.

Sources poll in worker threads (at most `[fetch] concurrency` at a time; the
shared fetcher adds per-host manners), and at most WORK_SLOTS of them parse
what they fetched at once. The calling thread alone touches the store: it
takes each article from a small bounded queue, has it summarised on worker
processes (digest.workers: a bounded number in flight, results in arrival
order) and stores it, a batch of articles to a transaction that is committed
before this thread waits, so memory stays flat however many sources there are.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from digest.config import FetchConfig, SourceConfig, SummaryConfig, duration_text
from digest.errors import DigestError, FetchError
from digest.memory import fewer_malloc_arenas
from digest.models import Article, SourceReport, Summary
from digest.sources import NETWORK_SOURCES, PollContext, open_source
from digest.store import Store, WriteBatch
from digest.workers import SMALL_RUN, Outcome, Workers, worker_count

if TYPE_CHECKING:
    from digest.fetch import Fetcher

log = logging.getLogger("digest.poll")
QUEUE_SIZE = 16  # articles in flight between the polling threads and the storing one
# Writes per transaction at most, and seconds a transaction may stay open; it is committed
# sooner whenever the storing thread would wait (BENCHMARKS.md, "What makes it fast").
BATCH_WRITES = 100
BATCH_SECONDS = 0.5
# Sources parsing what they fetched and handing articles over at once (PollContext.working):
# fetching runs [fetch] concurrency wide, but parsed feeds in memory stay this few.
WORK_SLOTS = 8

# An edition first polls its sources not polled within this long (`digest run` has just polled them all).
POLLED_RECENTLY = timedelta(minutes=1)

# digest.summarise.summarise (with the article's story features, JSON: digest.stories) and resolve_language,
# handed in by the pipeline (a stage imports no other stage)
Summarise = Callable[[str, SummaryConfig, str, "str | None"], tuple[Summary, str]]
ResolveLanguage = Callable[[str, str, "str | None"], str]
ArticleCallback = Callable[[str], None]  # called with the source's name after each stored article


@dataclass(frozen=True)
class _Event:
    """From a polling thread: one article, or (article None) the end of its source's poll."""

    source: str
    article: Article | None = None
    error: str = ""
    retry_after: float | None = None


def _produce(source_config: SourceConfig, context: PollContext, events: queue.Queue[_Event], cancelled: threading.Event) -> None:
    """Worker thread: poll one source, hand each article to the storing thread."""

    def hand_over(event: _Event) -> bool:
        while not cancelled.is_set():
            try:
                events.put(event, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    error, retry_after = "", None
    try:
        for article in open_source(source_config).poll(context):
            if not hand_over(_Event(source_config.name, article)):
                return
    except FetchError as failure:
        error, retry_after = str(failure), failure.retry_after
    except DigestError as failure:
        error = str(failure)
    except Exception as failure:  # a bug in one source must not stop the others
        log.exception("source %s: unexpected error", source_config.name)
        error = f"internal error: {type(failure).__name__}: {failure}"
    hand_over(_Event(source_config.name, error=error or "", retry_after=retry_after))


def stale_sources(store: Store, sources: Sequence[SourceConfig], now: datetime) -> list[SourceConfig]:
    """The sources not polled in the last POLLED_RECENTLY (a last poll after `now` counts as none)."""
    stale = []
    for source in sources:
        last = store.source_state(source.name).last_poll
        if last is None or last > now or now - last >= POLLED_RECENTLY:
            stale.append(source)
    return stale


@contextmanager
def fetcher_for(config: FetchConfig, sources: Sequence[SourceConfig]) -> Iterator[Fetcher | None]:
    """A shared HTTP fetcher, made only when a source needs the network."""
    if not any(s.type in NETWORK_SOURCES for s in sources):
        yield None
        return
    from digest.fetch import Fetcher

    with Fetcher(config) as fetcher:
        yield fetcher


def summary_workers(
    summarise: Summarise, summary: SummaryConfig, one_shot: bool, linger: float = 0.0
) -> Workers[Any, tuple[Summary, str]]:
    """The processes that summarise: one run's (a small run summarises here), or a long-lived
    caller's (always on worker processes, stopped when no poll used them for `linger` seconds)."""
    return Workers(summarise, worker_count(summary.workers), SMALL_RUN if one_shot else 0, linger)


@dataclass
class Poller:
    """Polls sources into one open store, summarising each new article with `summarise`."""

    store: Store
    fetch: FetchConfig
    summary: SummaryConfig
    summarise: Summarise
    resolve_language: ResolveLanguage
    on_article: ArticleCallback | None = None
    fetcher: Fetcher | None = None  # shared across calls (the daemon); else one is made per poll_all
    # True for one run (`digest run`, `preview`): few new articles are summarised in this process
    # and the language detector is loaded here, once. False for a long-lived caller (the daemon's
    # jobs): summaries are always made in worker processes, which end with each poll, so the
    # daemon never holds the summariser's ~100 MB of libraries and models between jobs.
    one_shot: bool = False
    workers: Workers[Any, tuple[Summary, str]] | None = None  # shared across calls (the daemon's polls); else one per Poller
    # True for `digest worker`'s polls: new articles are stored waiting for their summary (each source's
    # report lists their ids), and summary tasks on any worker make them (digest.pending)
    summaries_later: bool = False

    def __post_init__(self) -> None:
        if self.summaries_later:
            self.workers = Workers(self.summarise, 0)  # never called: no article is summarised here
        if self.workers is None:
            self.workers = summary_workers(self.summarise, self.summary, self.one_shot)

    def poll_all(self, source_configs: Sequence[SourceConfig], now: datetime) -> list[SourceReport]:
        """Poll sources concurrently and store their articles as they come; a source's failure is
        recorded on it, never raised. A source a server asked to wait (Retry-After) is skipped until then."""
        reports = {
            s.name: SourceReport(name=s.name, backfill=duration_text(getattr(s, "backfill", timedelta(0))))
            for s in source_configs
        }
        contexts: dict[str, PollContext] = {}
        for source_config in source_configs:
            state = self.store.source_state(source_config.name)
            if state.not_before is not None and state.not_before > now:
                reports[source_config.name].waiting_until = state.not_before.isoformat()
                continue
            contexts[source_config.name] = PollContext(now=now, first_poll=state.first_poll is None, memo=dict(state.memo))
        due = [s for s in source_configs if s.name in contexts]
        work_slots = threading.BoundedSemaphore(WORK_SLOTS)
        assert self.workers is not None
        with ExitStack() as stack:
            stack.enter_context(self.workers.session())
            fetcher = self.fetcher or stack.enter_context(fetcher_for(self.fetch, due))
            for context in contexts.values():
                context.fetcher, context.work_slots, context.store_at = fetcher, work_slots, self.store.location
                context.parse_budget = self.fetch.timeout.total_seconds()
            self._poll_due(due, contexts, reports, now)
        for report in reports.values():
            log.info("source %s polled: %s%s", report.name, report.outcome(), f"; error: {report.error}" if report.error else "")
        return [reports[s.name] for s in source_configs]

    def _poll_due(
        self, due: list[SourceConfig], contexts: dict[str, PollContext], reports: dict[str, SourceReport], now: datetime
    ) -> None:
        """Run one worker per due source (bounded pool) and consume their articles here."""
        if not due:
            return
        events: queue.Queue[_Event] = queue.Queue(maxsize=QUEUE_SIZE)
        cancelled = threading.Event()
        workers = min(len(due), self.fetch.concurrency)
        fewer_malloc_arenas()
        with ThreadPoolExecutor(workers, thread_name_prefix="poll") as pool:
            for source_config in due:
                pool.submit(_produce, source_config, contexts[source_config.name], events, cancelled)
            writes = self.store.batch(BATCH_WRITES, BATCH_SECONDS)
            try:
                self._consume(events, len(due), reports, contexts, now, writes)
            finally:
                cancelled.set()  # a worker still producing (after a store error) stops
                writes.commit()  # what was stored stays stored, even when stopped midway

    def _consume(
        self,
        events: queue.Queue[_Event],
        sources: int,
        reports: dict[str, SourceReport],
        contexts: dict[str, PollContext],
        now: datetime,
        writes: WriteBatch,
    ) -> None:
        """Summarise new articles on the worker processes and store them in the order they came;
        record each source's poll when it ends, after its articles."""
        arrivals = self._arrivals(events, sources, reports, writes)
        assert self.workers is not None
        for event, outcome in self.workers.map(arrivals, self._summary_job, writes.commit):
            report = reports[event.source]
            if event.article is not None:
                if not report.error:  # a source whose article failed is retried whole next time
                    self._store_article(event.article, outcome, report, now, writes)
                continue
            report.error = report.error or event.error
            for note in contexts[event.source].notes:
                report.add_note(note)
            not_before = now + timedelta(seconds=event.retry_after) if event.retry_after else None
            with writes.write():
                self.store.record_poll(event.source, now, contexts[event.source].memo, report.error, not_before)
            if not_before:
                report.waiting_until = not_before.isoformat()

    def _arrivals(
        self, events: queue.Queue[_Event], sources: int, reports: dict[str, SourceReport], writes: WriteBatch
    ) -> Iterator[_Event]:
        """The polling threads' events until every source ended, less the articles already stored."""
        while sources:
            if events.empty():
                writes.commit()  # about to wait for the sources: hold no lock meanwhile
            event = events.get()
            if event.article is None:
                sources -= 1
            elif reports[event.source].error:
                continue
            elif self.store.is_known(event.article):
                reports[event.source].seen += 1
                continue
            yield event

    def _summary_job(self, event: _Event) -> tuple[object, ...] | None:
        """Arguments of summarise() for an article event; None for the end of a source. In one
        run the language is settled here, so workers never load the detector (~75 MB each)."""
        article = event.article
        if article is None or self.summaries_later:
            return None
        language = article.language
        if self.one_shot:
            language = self.resolve_language(article.body, self.summary.language, article.language)
        return (article.body, self.summary, article.title, language)

    def _store_article(self, article: Article, summary: Outcome, report: SourceReport, now: datetime, writes: WriteBatch) -> None:
        if self.summaries_later:
            with writes.write():
                waiting = self.store.add_article(article, None, now)
            if waiting is not None:
                report.waiting_for_summary.append(waiting)
                self._count_stored(article, report)
            return
        if isinstance(summary, DigestError):
            report.error = str(summary)
            return
        if isinstance(summary, Exception):  # a bug in the summariser must not stop the other sources
            log.error("source %s: unexpected error summarising %s: %r", report.name, article.identity, summary)
            report.error = f"internal error: {type(summary).__name__}: {summary}"
            return
        if self.store.is_known(article):  # a copy was stored while this one was being summarised
            report.seen += 1
            return
        summary, story_features = summary
        with writes.write():
            stored = self.store.add_article(article, summary, now, story_features)
        if stored is not None:
            self._count_stored(article, report)
            if summary.note and not article.backfilled:
                report.add_note(f"{article.title or article.identity}: {summary.note}")

    def _count_stored(self, article: Article, report: SourceReport) -> None:
        if article.backfilled:
            report.backlog += 1
            return
        report.new_articles += 1
        if self.on_article:
            self.on_article(report.name)
