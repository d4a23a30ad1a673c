"""The only module that knows the stage order: poll -> extract -> store -> summarise
-> compose -> render -> deliver.

Each stage is handed only its own config section. Sources are polled
concurrently in worker threads; this thread takes each article as it arrives,
has it summarised on worker processes (digest.workers: one per core but one,
a bounded number in flight, results in arrival order) and stores it, a batch
of articles to a transaction that is committed before this thread waits, so
memory stays flat; an edition and its outbox rows are created in one
transaction.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from digest.archive import HEADLINES as ARCHIVE_HEADLINES, TEMPLATE as ARCHIVE_TEMPLATE, Archive, ArchiveSettings, WriteReport
from digest.compose import compose
from digest.config import Config, DigestConfig, SourceConfig, duration_text
from digest.deliver import ArchiveDeliverer, Deliverer, EmailDeliverer, FileDeliverer, duration_words, retry_delay, safe_name
from digest.errors import ConfigError, DeliveryError, DigestError, FetchError, PermanentDeliveryError, RenderError
from digest.mail import MailParts, encoded_size, new_message_id
from digest.memory import fewer_malloc_arenas
from digest.models import Article, Delivery, Edition, RunReport, SourceProblem, SourceReport, StoredArticle, Summary
from digest.render import TEMPLATE_NAMES, RenderedEdition, Renderer, renderer_for
from digest.sources import NETWORK_SOURCES, PollContext, open_source
from digest.store import Store, WriteBatch
from digest.summarise import resolve_language, summarise
from digest.workers import SMALL_RUN, Outcome, Workers, worker_count

log = logging.getLogger(__name__)
# How long a process may hold a delivery it is trying before another may try it.
DELIVERY_LEASE = timedelta(minutes=10)
# An edition first polls its sources not polled within this long (`digest run` has just polled them all).
POLLED_RECENTLY = timedelta(minutes=1)
QUEUE_SIZE = 16  # articles in flight between the polling threads and the storing one
# Writes per transaction at most, and seconds a transaction may stay open; it is committed
# sooner whenever the storing thread would wait (BENCHMARKS.md, "What makes it fast").
BATCH_WRITES = 100
BATCH_SECONDS = 0.5
# Sources parsing what they fetched and handing articles over at once (PollContext.working):
# fetching runs [fetch] concurrency wide, but parsed feeds in memory stay this few.
WORK_SLOTS = 8


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


@contextmanager
def _fetcher_for(config: Config, sources: Sequence[SourceConfig]) -> Iterator[Any]:
    """The run's shared HTTP fetcher, made only when a source needs the network."""
    if not any(s.type in NETWORK_SOURCES for s in sources):
        yield None
        return
    from digest.fetch import Fetcher

    with Fetcher(config.fetch) as fetcher:
        yield fetcher


ArticleCallback = Callable[[str], None]


@dataclass
class Pipeline:
    """A run of the stages over one config and one open store."""

    config: Config
    store: Store
    on_article: ArticleCallback | None = None
    fetcher: Any = None  # a digest.fetch.Fetcher to share across calls; else one is made per poll_all
    # True for one run (`digest run`, `preview`): few new articles are summarised in this process
    # and the language detector is loaded here, once. False for a long-lived caller (the daemon's
    # jobs): summaries are always made in worker processes, which end with each poll, so the
    # daemon never holds the summariser's ~100 MB of libraries and models between jobs.
    one_shot: bool = False
    workers: Workers[_Event, Summary] = field(init=False)

    def __post_init__(self) -> None:
        small_run = SMALL_RUN if self.one_shot else 0
        self.workers = Workers(summarise, worker_count(self.config.summary.workers), small_run)

    def poll(self, source_config: SourceConfig, now: datetime) -> SourceReport:
        """Poll one source and store what is new; its failure is recorded, never raised."""
        return self.poll_all([source_config], now)[0]

    def poll_all(self, source_configs: Sequence[SourceConfig], now: datetime) -> list[SourceReport]:
        """Poll sources concurrently and store their articles as they come.

        Each source polls in a worker thread (at most `[fetch] concurrency` at a
        time; the shared fetcher adds per-host limits), and at most WORK_SLOTS
        of them parse what they fetched at once; this thread alone touches the
        store, summarising and storing each article as it arrives through a
        small bounded queue, so memory stays flat however many sources there are.
        A source a server asked to wait (Retry-After) is skipped until then.
        """
        reports = {s.name: SourceReport(name=s.name) for s in source_configs}
        contexts: dict[str, PollContext] = {}
        for source_config in source_configs:
            state = self.store.source_state(source_config.name)
            if state.not_before is not None and state.not_before > now:
                reports[source_config.name].waiting_until = state.not_before.isoformat()
                continue
            contexts[source_config.name] = PollContext(now=now, first_poll=state.first_poll is None, memo=dict(state.memo))
        due = [s for s in source_configs if s.name in contexts]
        work_slots = threading.BoundedSemaphore(WORK_SLOTS)
        with ExitStack() as stack:
            stack.callback(self.workers.close)
            fetcher = self.fetcher or stack.enter_context(_fetcher_for(self.config, due))
            for context in contexts.values():
                context.fetcher, context.work_slots = fetcher, work_slots
                context.parse_budget = self.config.fetch.timeout.total_seconds()
            self._poll_due(due, contexts, reports, now)
        for report in reports.values():
            log.info("source %s polled: %s%s", report.name, report.outcome(), f"; error: {report.error}" if report.error else "")
        return [reports[s.name] for s in source_configs]

    def _poll_due(self, due: list[SourceConfig], contexts: dict[str, PollContext],
                  reports: dict[str, SourceReport], now: datetime) -> None:
        """Run one worker per due source (bounded pool) and consume their articles here."""
        if not due:
            return
        events: queue.Queue[_Event] = queue.Queue(maxsize=QUEUE_SIZE)
        cancelled = threading.Event()
        workers = min(len(due), self.config.fetch.concurrency)
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

    def _consume(self, events: queue.Queue[_Event], sources: int, reports: dict[str, SourceReport],
                 contexts: dict[str, PollContext], now: datetime, writes: WriteBatch) -> None:
        """Summarise new articles on the worker processes and store them in the order they came;
        record each source's poll when it ends, after its articles."""
        arrivals = self._arrivals(events, sources, reports, writes)
        for event, outcome in self.workers.map(arrivals, self._summary_job, writes.commit):
            report = reports[event.source]
            if event.article is not None:
                if not report.error:  # a source whose article failed is retried whole next time
                    self._store_article(event.article, outcome, report, now, writes)
                continue
            report.error = report.error or event.error
            not_before = now + timedelta(seconds=event.retry_after) if event.retry_after else None
            with writes.write():
                self.store.record_poll(event.source, now, contexts[event.source].memo, report.error, not_before)
            if not_before:
                report.waiting_until = not_before.isoformat()

    def _arrivals(self, events: queue.Queue[_Event], sources: int, reports: dict[str, SourceReport],
                  writes: WriteBatch) -> Iterator[_Event]:
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
        if article is None:
            return None
        language = article.language
        if self.one_shot:
            language = resolve_language(article.body, self.config.summary.language, article.language)
        return (article.body, self.config.summary, article.title, language)

    def _store_article(self, article: Article, summary: Outcome, report: SourceReport, now: datetime,
                       writes: WriteBatch) -> None:
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
        with writes.write():
            stored = self.store.add_article(article, summary, now)
        if stored is not None and article.backfilled:
            report.backlog += 1
            if not report.backfill:
                source = next(s for s in self.config.sources if s.name == report.name)
                report.backfill = duration_text(getattr(source, "backfill", timedelta(0)))
        elif stored is not None:
            report.new_articles += 1
            if summary.note:
                report.add_note(f"{article.title or article.identity}: {summary.note}")
            if self.on_article:
                self.on_article(report.name)

    def stale_sources(self, digest: DigestConfig, now: datetime) -> list[SourceConfig]:
        """The digest's sources not polled in the last POLLED_RECENTLY (a last poll after `now` counts as none)."""
        stale = []
        for source in self.config.sources_of(digest):
            last = self.store.source_state(source.name).last_poll
            if last is None or last > now or now - last >= POLLED_RECENTLY:
                stale.append(source)
        return stale

    def fresh_edition(self, digest: DigestConfig, now: datetime) -> Edition | None:
        """Poll the digest's sources that were not polled in the last minute, then make its edition:
        a 07:00 edition holds the story published at 06:50, not only what the 06:30 poll found."""
        stale = self.stale_sources(digest, now)
        if stale:
            self.poll_all(stale, now)
        return self.make_edition(digest, now)

    def make_edition(self, digest: DigestConfig, now: datetime) -> Edition | None:
        """Create the next edition of a digest with its outbox rows, or None when nothing waits."""
        sources = [s.name for s in self.config.sources_of(digest)]
        outbox = [("files", str(digest.output_dir))] if digest.output_dir else []
        outbox += [("archive", str(digest.output_dir))] if digest.output_dir and digest.archive else []
        outbox += [("email", address) for address in digest.email_to]
        edition = self.store.create_edition(digest.name, sources, digest.max_articles, now, outbox)
        if edition:
            log.info("edition of %s made: %d articles", digest.name, len(edition.articles))
        return edition

    def render(self, digest: DigestConfig, edition: Edition, formats: tuple[str, ...]) -> RenderedEdition:
        """Compose and render an edition in the given formats."""
        renderer = renderer_for(digest.templates)
        return renderer.render_edition(formats, digest.subject, self._context(renderer, digest, edition))

    def render_page(self, digest: DigestConfig, edition: Edition) -> str:
        """The edition's HTML page for the archive: no subject line (a rebuild renders thousands), and
        no "sources with problems" box, which tells of the sources now rather than of the edition, so
        a page and its feed entry stay the same until the edition or the template changes."""
        renderer = renderer_for(digest.templates)
        sections = compose(edition, [s.name for s in self.config.sources_of(digest)])
        return renderer.render(TEMPLATE_NAMES["html"], renderer.context(digest.name, digest.timezone, edition, sections))

    def render_email(self, digest: DigestConfig, edition: Edition) -> RenderedEdition:
        """Compose and render an edition as an email: subject, text, HTML with inlined CSS, the
        encoded message within `email_max_bytes` (stories that do not fit are named, not sent)."""
        renderer = renderer_for(digest.templates)
        context = self._context(renderer, digest, edition)
        full_url = ""
        if digest.output_dir is not None and digest.archive and digest.base_url and edition.id is not None:
            archive = self.archive(digest, digest.output_dir)  # the edition's page, as the archive names it
            full_url = archive.base + archive.page_names.get(edition.id, "")
        context["edition"] = {**context["edition"], "full_edition": digest.output_dir is not None,  # type: ignore[dict-item]
                              "full_url": full_url}
        sender, unsubscribe = self.config.smtp.from_, digest.unsubscribe

        def fits(document: RenderedEdition) -> bool:
            parts = MailParts(document.subject, document.bodies["txt"], document.bodies["html"])
            return encoded_size(parts, sender, digest.name, unsubscribe) <= digest.email_max_bytes

        return renderer.render_email(digest.subject, context, fits if digest.email_max_bytes else None)

    def _context(self, renderer: Renderer, digest: DigestConfig, edition: Edition) -> dict[str, object]:
        sections = compose(edition, [s.name for s in self.config.sources_of(digest)])
        return renderer.context(digest.name, digest.timezone, edition, sections, self.problems(digest))

    def problems(self, digest: DigestConfig) -> list[SourceProblem]:
        """The digest's sources whose last poll failed: shown in a "sources with problems" box."""
        problems = []
        for source in self.config.sources_of(digest):
            state = self.store.source_state(source.name)
            if state.failures:
                problems.append(SourceProblem(source.name, state.failing_since or state.last_poll, state.last_error))
        return problems

    def archive(self, digest: DigestConfig, output_dir: Path) -> Archive:
        """The digest's archive in `<output_dir>/<digest>/`, planned from the store's editions."""
        renderer = renderer_for(digest.templates)
        with self.store.transaction():
            feed_id = self.store.feed_id(digest.name)
        settings = ArchiveSettings(digest.name, output_dir / safe_name(digest.name), digest.base_url, digest.feed_size,
                                   digest.timezone)
        return Archive(
            settings, self.store.edition_listing(digest.name, ARCHIVE_HEADLINES), feed_id,
            page=lambda listed: self.render_page(digest, self.store.edition(listed.id)),
            list_page=lambda context: renderer.render(ARCHIVE_TEMPLATE, context),
        )

    def process_outbox(self, now: datetime, honour_backoff: bool) -> list[dict[str, object]]:
        """Try every pending delivery (only those due when honouring backoff)."""
        rendered: dict[tuple[int, str], tuple[RenderedEdition, datetime]] = {}
        unsubscribe = {digest.name: digest.unsubscribe for digest in self.config.digests}
        with EmailDeliverer(self.config.smtp, unsubscribe) as email:
            archive = ArchiveDeliverer(lambda name, folder: self.archive(self.config.digest(name), folder))
            deliverers: dict[str, Deliverer] = {"files": FileDeliverer(), "email": email, "archive": archive}
            return [
                self._attempt(delivery, deliverers, rendered, now)
                for delivery in self.store.due_deliveries(now if honour_backoff else None)
                if self.store.claim_delivery(delivery.id, now, DELIVERY_LEASE)
            ]

    def _attempt(
        self,
        delivery: Delivery,
        deliverers: dict[str, Deliverer],
        rendered: dict[tuple[int, str], tuple[RenderedEdition, datetime]],
        now: datetime,
    ) -> dict[str, object]:
        """Try one delivery and record the outcome: delivered, pending with backoff, or failed."""
        result: dict[str, object] = {"digest": delivery.digest, "channel": delivery.channel, "recipient": delivery.recipient}
        deliverer = deliverers[delivery.channel]
        if delivery.channel == "email" and not delivery.message_id:
            # Made once and committed before the first try: every retry sends the same Message-ID.
            delivery = replace(delivery, message_id=new_message_id(self.config.smtp.from_))
            with self.store.transaction():
                self.store.set_message_id(delivery.id, delivery.message_id)
        try:
            digest = self.config.digest(delivery.digest)
            key = (delivery.edition_id, delivery.channel)
            if key not in rendered:
                edition = self.store.edition(delivery.edition_id)
                if delivery.channel == "email":
                    document = self.render_email(digest, edition)
                elif delivery.channel == "archive":
                    document = RenderedEdition(subject="", bodies={"html": self.render_page(digest, edition)})
                else:
                    document = self.render(digest, edition, digest.formats)
                rendered[key] = (document, edition.created)
            document, created = rendered[key]
            where = deliverer.deliver(delivery, document, created)
        except PermanentDeliveryError as error:
            status, detail, retry_at = "failed", str(error), None
        except (DeliveryError, RenderError) as error:  # a broken template is fixed in the config, then delivered
            status, detail, retry_at = "pending", str(error), now + retry_delay(delivery.attempts + 1)
            lifetime = deliverer.give_up_after
            if lifetime is not None and delivery.created is not None and now - delivery.created >= lifetime:
                status, detail, retry_at = "failed", f"gave up after {duration_words(lifetime)} of retries: {error}", None
        except DigestError as error:
            status, detail, retry_at = "failed", str(error), None
        else:
            status, detail, retry_at = "delivered", "", None
            result["to"] = where
        with self.store.transaction():
            self.store.record_attempt(delivery.id, now, status, detail, retry_at)
        result.update(status=status, error=detail)
        if delivery.channel == "email":
            result["message_id"] = delivery.message_id
        log.info("delivery of %s to %s: %s%s", delivery.digest, delivery.recipient, status, f" ({detail})" if detail else "")
        return result


def selected_digests(config: Config, name: str | None) -> tuple[DigestConfig, ...]:
    """The digest named `name`, or every digest."""
    return (config.digest(name),) if name else config.digests


def sources_for(config: Config, digests: Iterable[DigestConfig]) -> list[SourceConfig]:
    """The sources the given digests draw from, each once, in config order."""
    wanted = {s.name for digest in digests for s in config.sources_of(digest)}
    return [s for s in config.sources if s.name in wanted]


def sample_edition(config: Config, digest: DigestConfig) -> tuple[Edition, list[SourceProblem]]:
    """An edition of one article of every kind of field, a waiting article and a failing source:
    what check_templates renders each template with, so every variable a template uses is tried."""
    moment = datetime(2026, 1, 2, 7, 0, tzinfo=timezone.utc)
    source = next((s.name for s in config.sources_of(digest)), "example")
    article = StoredArticle(id=1, source=source, title="A sample article", url="https://example.org/sample",
                            published=moment, author="A. Writer", language="english",
                            summary=("The first sentence of a sample summary.", "Its second sentence."), fetched=moment)
    edition = Edition(digest=digest.name, created=moment, articles=(article,), id=None, waiting=1)
    return edition, [SourceProblem(source, moment, "http://example.org/feed: HTTP 500")]


def check_templates(config: Config, digests: Sequence[DigestConfig] | None = None) -> None:
    """Compile each digest's templates and subject line and render them with a sample edition;
    ConfigError (file, digest, problem) on a mistake such as an undefined variable."""
    for index, digest in enumerate(config.digests):
        if digests is not None and digest not in digests:
            continue
        try:
            renderer = renderer_for(digest.templates)
            edition, problems = sample_edition(config, digest)
            sections = compose(edition, [s.name for s in config.sources_of(digest)])
            renderer.check(digest.subject, renderer.context(digest.name, digest.timezone, edition, sections, problems))
        except RenderError as error:
            raise ConfigError(str(config.path), f"digests[{index}] ({digest.name})", str(error)) from None


def run(config: Config, now: datetime, digest_name: str | None = None, on_article: ArticleCallback | None = None) -> RunReport:
    """Poll every source once, make one edition of each digest, deliver it, retry the outbox."""
    digests = selected_digests(config, digest_name)
    check_templates(config, digests)
    store = Store(config.store.path)
    try:
        report = RunReport(started=now)
        pipeline = Pipeline(config, store, on_article, one_shot=True)
        report.sources = pipeline.poll_all(sources_for(config, digests), now)
        for digest in digests:
            edition = pipeline.make_edition(digest, now)
            report.editions.append(
                {"digest": digest.name, "made": edition is not None,
                 "articles": len(edition.articles) if edition else 0, "waiting": edition.waiting if edition else 0}
            )
            edition = None  # delivering reads it again from the store: hold no second copy meanwhile
        report.deliveries = pipeline.process_outbox(now, honour_backoff=False)
        return report
    finally:
        store.close()


def rebuild_archives(config: Config, digest_name: str | None = None) -> list[tuple[str, WriteReport | None]]:
    """Write every page and feed of each digest's archive (or NAME's) afresh from the store; a file
    whose bytes would not change is left alone. None for a digest without an archive or editions."""
    digests = selected_digests(config, digest_name)
    check_templates(config, digests)
    store = Store(config.store.path)
    try:
        pipeline = Pipeline(config, store)
        reports: list[tuple[str, WriteReport | None]] = []
        for digest in digests:
            if digest.output_dir is None or not digest.archive or not store.edition_count(digest.name):
                reports.append((digest.name, None))
                continue
            reports.append((digest.name, pipeline.archive(digest, digest.output_dir).rebuild()))
        return reports
    finally:
        store.close()


def process_outbox(config: Config, now: datetime, honour_backoff: bool) -> list[dict[str, object]]:
    """Retry the outbox on its own: the daemon calls this with honour_backoff=True, `digest run` retries all."""
    store = Store(config.store.path)
    try:
        return Pipeline(config, store).process_outbox(now, honour_backoff)
    finally:
        store.close()


def preview(config: Config, now: datetime, digest_name: str | None, fmt: str) -> list[tuple[str, str | None]]:
    """Render what the next edition of each digest would hold, changing no state.

    Returns (digest name, document or None when nothing waits) pairs. Sources
    are polled and editions made in a scratch copy of the store, thrown away
    after: the real store is only read, so a daemon writing to it meanwhile
    never waits on a preview's slow feeds.
    """
    digests = selected_digests(config, digest_name)
    with tempfile.TemporaryDirectory(prefix="digest-preview-") as scratch:
        if config.store.path.exists():  # else the preview starts from an empty store and makes none
            original = Store(config.store.path)
            try:
                original.check_integrity()  # the copy would fail later, naming itself rather than the store
                original.copy_to(Path(scratch) / "store.sqlite3")
            finally:
                original.close()
        store = Store(Path(scratch) / "store.sqlite3")
        try:
            documents: list[tuple[str, str | None]] = []
            pipeline = Pipeline(config, store, one_shot=True)
            pipeline.poll_all(sources_for(config, digests), now)
            for digest in digests:
                edition = pipeline.make_edition(digest, now)
                documents.append((digest.name, pipeline.render(digest, edition, (fmt,)).bodies[fmt] if edition else None))
            return documents
        finally:
            store.close()
