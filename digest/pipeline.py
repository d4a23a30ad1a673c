"""The only module that knows the stage order: poll -> extract -> store -> summarise
-> compose -> render -> deliver.

Each stage is handed only its own config section. Articles are stored and
summarised one by one as sources yield them (flat memory), in batched
transactions; an edition and its outbox rows are created in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from digest.compose import compose
from digest.config import Config, DigestConfig, SourceConfig
from digest.deliver import Deliverer, EmailDeliverer, FileDeliverer, duration_words, retry_delay
from digest.errors import DeliveryError, DigestError, PermanentDeliveryError, StoreError
from digest.mail import new_message_id
from digest.models import Article, Delivery, Edition, RunReport, SourceReport, Summary
from digest.render import RenderedEdition, Renderer, renderer_for
from digest.sources import PollContext, open_source
from digest.store import Store
from digest.summarise import resolve_language, summarise
from digest.workers import SMALL_RUN, Workers, worker_count

log = logging.getLogger(__name__)
BATCH = 50  # articles per write transaction

ArticleCallback = Callable[[str], None]


@dataclass
class Pipeline:
    """A run of the stages over one config and one open store."""

    config: Config
    store: Store
    on_article: ArticleCallback | None = None
    # True for one run (`digest run`, `preview`): a small run is summarised in this process, the
    # language detector is loaded here once, and the workers live until close(). False for a
    # long-lived caller (the daemon's jobs): summaries are always made in worker processes that
    # end with each poll, so the daemon never holds the summariser's ~100 MB between jobs.
    one_shot: bool = False
    workers: Workers[Article, Summary] = field(init=False)

    def __post_init__(self) -> None:
        small_run = SMALL_RUN if self.one_shot else 0
        self.workers = Workers(summarise, worker_count(self.config.summary.workers), small_run)

    def close(self) -> None:
        """Stop the summarising worker processes, if any were started."""
        self.workers.close()

    def poll(self, source_config: SourceConfig, now: datetime) -> SourceReport:
        """Poll one source and store what is new; its failure is recorded, never raised."""
        try:
            return self._poll(source_config, now)
        finally:
            if not self.one_shot:
                self.close()

    def _poll(self, source_config: SourceConfig, now: datetime) -> SourceReport:
        report = SourceReport(name=source_config.name)
        state = self.store.source_state(source_config.name)
        context = PollContext(now=now, first_poll=state.first_poll is None, memo=dict(state.memo))
        with self.store.transaction():  # what was stored before a failure is kept
            try:
                new = self._unknown(open_source(source_config).poll(context), report)
                for article, summary in self.workers.map(new, self._summary_job):
                    if self.store.is_known(article):  # a copy was stored while this one was summarised
                        report.seen += 1
                        continue
                    if self.store.add_article(article, summary, now) is not None:
                        report.new_articles += 1
                        if self.on_article:
                            self.on_article(source_config.name)
                        if report.new_articles % BATCH == 0:
                            self.store.commit_so_far()
            except StoreError:
                raise
            except DigestError as error:
                report.error = str(error)
            except Exception as error:  # a bug in one source must not stop the others
                log.exception("source %s: unexpected error", source_config.name)
                report.error = f"internal error: {type(error).__name__}: {error}"
        with self.store.transaction():
            self.store.record_poll(source_config.name, now, context.memo, report.error)
        log.info("source %s polled: %d new%s", report.name, report.new_articles, f"; error: {report.error}" if report.error else "")
        return report

    def _unknown(self, articles: Iterable[Article], report: SourceReport) -> Iterator[Article]:
        """The articles the store does not hold yet; the others are counted as seen."""
        for article in articles:
            if self.store.is_known(article):
                report.seen += 1
            else:
                yield article

    def _summary_job(self, article: Article) -> tuple[object, ...]:
        """Arguments of summarise() for one article. In one run the language is settled here, so
        that worker processes never load the language detector's model (~75 MB each)."""
        language = article.language
        if self.one_shot:
            language = resolve_language(article.body, self.config.summary.language, article.language)
        return (article.body, self.config.summary, article.title, language)

    def make_edition(self, digest: DigestConfig, now: datetime) -> Edition | None:
        """Create the next edition of a digest with its outbox rows, or None when nothing waits."""
        sources = [s.name for s in self.config.sources_of(digest)]
        outbox = [("files", str(digest.output_dir))] if digest.output_dir else []
        outbox += [("email", address) for address in digest.email_to]
        edition = self.store.create_edition(digest.name, sources, digest.max_articles, now, outbox)
        if edition:
            log.info("edition of %s made: %d articles", digest.name, len(edition.articles))
        return edition

    def render(self, digest: DigestConfig, edition: Edition, formats: tuple[str, ...]) -> RenderedEdition:
        """Compose and render an edition in the given formats."""
        renderer = renderer_for(digest.templates)
        return renderer.render_edition(formats, digest.subject, self._context(renderer, digest, edition))

    def render_email(self, digest: DigestConfig, edition: Edition) -> RenderedEdition:
        """Compose and render an edition as an email: subject, text, HTML with inlined CSS."""
        renderer = renderer_for(digest.templates)
        return renderer.render_email(digest.subject, self._context(renderer, digest, edition))

    def _context(self, renderer: Renderer, digest: DigestConfig, edition: Edition) -> dict[str, object]:
        sections = compose(edition, [s.name for s in self.config.sources_of(digest)])
        return renderer.context(digest.name, digest.timezone, edition, sections)

    def process_outbox(self, now: datetime, honour_backoff: bool) -> list[dict[str, object]]:
        """Try every pending delivery (only those due when honouring backoff)."""
        rendered: dict[tuple[int, str], tuple[RenderedEdition, datetime]] = {}
        unsubscribe = {digest.name: digest.unsubscribe for digest in self.config.digests}
        with EmailDeliverer(self.config.smtp, unsubscribe) as email:
            deliverers: dict[str, Deliverer] = {"files": FileDeliverer(), "email": email}
            return [
                self._attempt(delivery, deliverers, rendered, now)
                for delivery in self.store.due_deliveries(now if honour_backoff else None)
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
                else:
                    document = self.render(digest, edition, digest.formats)
                rendered[key] = (document, edition.created)
            document, created = rendered[key]
            where = deliverer.deliver(delivery, document, created)
        except PermanentDeliveryError as error:
            status, detail, retry_at = "failed", str(error), None
        except DeliveryError as error:
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


def run(config: Config, now: datetime, digest_name: str | None = None, on_article: ArticleCallback | None = None) -> RunReport:
    """Poll every source once, make one edition of each digest, deliver it, retry the outbox."""
    digests = selected_digests(config, digest_name)
    store = Store(config.store.path)
    pipeline = Pipeline(config, store, on_article, one_shot=True)
    try:
        report = RunReport(started=now)
        for source_config in sources_for(config, digests):
            report.sources.append(pipeline.poll(source_config, now))
        pipeline.close()  # the workers' memory is not needed for the rest of the run
        for digest in digests:
            edition = pipeline.make_edition(digest, now)
            report.editions.append(
                {"digest": digest.name, "made": edition is not None,
                 "articles": len(edition.articles) if edition else 0, "waiting": edition.waiting if edition else 0}
            )
        report.deliveries = pipeline.process_outbox(now, honour_backoff=False)
        return report
    finally:
        pipeline.close()
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
    are polled and editions made inside one transaction that is rolled back.
    """
    digests = selected_digests(config, digest_name)
    store = Store(config.store.path)
    pipeline = Pipeline(config, store, one_shot=True)
    try:
        documents: list[tuple[str, str | None]] = []
        with store.dry_run():
            for source_config in sources_for(config, digests):
                pipeline.poll(source_config, now)
            for digest in digests:
                edition = pipeline.make_edition(digest, now)
                documents.append((digest.name, pipeline.render(digest, edition, (fmt,)).bodies[fmt] if edition else None))
        return documents
    finally:
        pipeline.close()
        store.close()
