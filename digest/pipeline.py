"""The only module that knows the stage order: poll (fetch, extract, summarise, store) -> edition
-> compose -> render -> deliver. `digest worker` splits the first stage: its polls store new articles
waiting for their summary, summary tasks summarise them (summarise_stored), and editions take only
summarised articles.

Each stage is handed only its own config section and the store. `digest run`,
`preview` and the daemon's jobs (digest/jobs.py) call the same functions here.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest import audience, pending
from digest import deliver as outbox
from digest.archive import (
    HEADLINES as ARCHIVE_HEADLINES,
    TEMPLATE as ARCHIVE_TEMPLATE,
    Archive,
    ArchiveSettings,
    WriteReport,
    page_links,
)
from digest.compose import PAGE, StoryPlan, compose, pages_of, plan_stories
from digest.config import Config, DigestConfig, SourceConfig, SummaryConfig
from digest.deliver import safe_name
from digest.editions import make_edition
from digest.errors import ConfigError, RenderError
from digest.mail import MailParts, encoded_size
from digest.memory import release_free_memory
from digest.models import (
    Delivery,
    DeliveryReport,
    Edition,
    EditionListing,
    EditionReport,
    RenderedEdition,
    RunReport,
    StoryCount,
    Section,
    SourceProblem,
    SourceReport,
    StoredArticle,
    Summary,
)
from digest.poll import ArticleCallback, Poller, summary_workers
from digest.render import TEMPLATE_NAMES, Renderer, renderer_for
from digest.store import Store, open_store
from digest.summarise import resolve_language, summarise
from digest.workers import LINGER_SECONDS, Workers

if TYPE_CHECKING:
    from digest.fetch import Fetcher

log = logging.getLogger("digest.pipeline")


def summarise_and_describe(text: str, settings: SummaryConfig, title: str, language: str | None) -> tuple[Summary, str]:
    """On a worker: an article's summary and its story features (stored JSON), both made once, when it is stored."""
    from digest import stories  # numpy: loaded in the workers, not by a daemon that only polls

    return summarise(text, settings, title=title, language=language), stories.dumps(stories.features(title, text))


def poll(
    config: Config,
    store: Store,
    sources: Sequence[SourceConfig],
    now: datetime,
    *,
    on_article: ArticleCallback | None = None,
    fetcher: Fetcher | None = None,
    workers: Workers[Any, tuple[Summary, str]] | None = None,
    one_shot: bool = False,
    summaries_later: bool = False,
) -> list[SourceReport]:
    """Poll `sources` concurrently, summarising and storing each new article; failures are recorded, never raised.
    A long-lived caller (the daemon) shares one `fetcher` and one set of summary `workers` across its polls.
    With `summaries_later` (`digest worker`) new articles are stored waiting for their summary, listed in
    each source's report for summarise_stored."""
    poller = Poller(
        store,
        config.fetch,
        config.summary,
        summarise_and_describe,
        resolve_language,
        on_article=on_article,
        fetcher=fetcher,
        one_shot=one_shot,
        workers=workers,
        summaries_later=summaries_later,
    )
    return poller.poll_all(sources, now)


def summarise_stored(config: Config, store: Store, ids: Sequence[int]) -> pending.SummaryReport:
    """`digest worker`'s summary task: summarise those of the articles `ids` still waiting for their
    summary (stored by a poll with summaries_later), in this process; editions take them from then on."""
    return pending.summarise_stored(store, config.summary, ids, summarise_and_describe, resolve_language)


def load_summariser(config: Config) -> None:
    """Load the summariser's libraries and models (sumy, nltk, numpy, the language detector) into this
    process now, once, so that no summary task of a long-lived worker pays for them."""
    text = "The harbour reopens next week. Repairs to the quay took a month. The ferry keeps its timetable."
    summarise_and_describe(text, config.summary, "Harbour", None)


def daemon_workers(config: Config) -> Workers[Any, tuple[Summary, str]]:
    """Summary workers for a long-lived caller's polls, shared by all of them (see poll), kept a few seconds
    after the last poll so that polls following each other share one worker start-up."""
    return summary_workers(summarise_and_describe, config.summary, one_shot=False, linger=LINGER_SECONDS)


def make_editions(config: Config, store: Store, digests: Iterable[DigestConfig], now: datetime) -> list[EditionReport]:
    """Make the next edition of each digest (with its outbox rows), where anything waits."""
    reports = []
    for digest in digests:
        edition = make_edition(store, digest, [s.name for s in config.sources_of(digest)], now)
        reports.append(
            EditionReport(
                digest.name, edition is not None, len(edition.articles) if edition else 0, edition.waiting if edition else 0
            )
        )
    return reports


def make_subscriber_editions(config: Config, store: Store, digest: DigestConfig, now: datetime) -> list[EditionReport]:
    """Make the editions owed to the digest's subscribers at `now` (their own times), one per group of readers."""
    made = audience.make_editions(store, digest, [s.name for s in config.sources_of(digest)], now)
    return [
        EditionReport(digest.name, group.articles > 0, group.articles, subscribers=group.subscribers, due=group.slot.isoformat())
        for group in made
    ]


def subscriber_editions_and_delivery(config: Config, store: Store, digest: DigestConfig, now: datetime) -> list[EditionReport]:
    """The daemon's look for due readers: make what is owed to them and deliver what is due."""
    made = make_subscriber_editions(config, store, digest, now)
    if any(report.made for report in made):
        deliver(config, store, now, honour_backoff=True)
    return made


def deliver(
    config: Config, store: Store, now: datetime, honour_backoff: bool, lease: timedelta = outbox.DELIVERY_LEASE
) -> list[DeliveryReport]:
    """Try the outbox: every pending delivery, or only those whose backoff has passed; each claimed for `lease`."""
    rendered: dict[tuple[int, str], tuple[RenderedEdition, datetime]] = {}
    plans: dict[int, StoryPlan | None] = {}  # the latest edition's stories, for its next deliveries

    def render_for(delivery: Delivery, rendering: str) -> tuple[RenderedEdition, datetime]:
        key = (delivery.edition_id, rendering)
        if key not in rendered:
            # Deliveries come in outbox order, an edition's emails one after another: keep only the
            # latest document, so a big edition's files, page and email are never held at once.
            rendered.clear()
            release_free_memory()
            digest = config.digest(delivery.digest)
            if rendering == "page":  # nothing ahead: the archive streams the edition's page into its file and feeds
                rendered[key] = (RenderedEdition(subject="", bodies={}), delivery.created or now)  # the time is unused
                return rendered[key]
            edition, plan = _grouped_then_loaded(store, digest, delivery.edition_id, plans)
            if rendering == "email":
                document = render_email(config, store, digest, edition, plan)
            elif rendering == "files":  # written one format at a time: rendered as each is read
                document = render(config, store, digest, edition, digest.formats, lazy=True, plan=plan)
            else:
                document = render(config, store, digest, edition, (rendering,), plan=plan)
            rendered[key] = (document, edition.created)
        return rendered[key]

    def open_archive(name: str, output_dir: Path) -> Archive:
        return archive(config, store, config.digest(name), output_dir, plans)

    return outbox.process_outbox(config, store, outbox.OutboxTools(render_for, open_archive), now, honour_backoff, lease)


def archive(
    config: Config, store: Store, digest: DigestConfig, output_dir: Path, plans: dict[int, StoryPlan | None] | None = None
) -> Archive:
    """The digest's archive in `<output_dir>/<digest>/`, planned from the store's editions; `plans`: an
    outbox pass's latest edition's stories (_grouped_then_loaded)."""
    renderer = renderer_for(digest.templates)
    with store.transaction():
        feed_id = store.feed_id(digest.name)
    settings = ArchiveSettings(
        digest.name, output_dir / safe_name(digest.name), digest.base_url, digest.feed_size, digest.timezone
    )
    grouped: dict[int, StoryCount] = {}  # editions whose page this archive rendered: their stories, not grouped again
    return Archive(
        settings,
        store.edition_listing(digest.name, ARCHIVE_HEADLINES),
        feed_id,
        page=lambda listed: render_page(config, store, digest, *_grouped_then_loaded(store, digest, listed.id, plans), grouped),
        list_page=lambda context: renderer.render(ARCHIVE_TEMPLATE, context),
        stories=partial(_listed_stories, config, store, digest, grouped),
    )


def _listed_stories(
    config: Config, store: Store, digest: DigestConfig, grouped: dict[int, StoryCount], listed: EditionListing
) -> StoryCount | None:
    """The edition's story count and first story headlines for the archive's lists: kept when its page
    was rendered, grouped once here (and kept) for an edition older than that; None with grouping off."""
    if not digest.group_stories:
        return None
    if listed.id in grouped:
        return grouped[listed.id]
    if listed.stories is None:
        edition, plan = _grouped_then_loaded(store, digest, listed.id)
        return _keep_stories(store, edition, _sections(config, store, digest, edition, plan))
    return StoryCount(listed.stories, listed.story_headlines)


def _keep_stories(store: Store, edition: Edition, sections: Sequence[Section]) -> StoryCount:
    """Store how the edition was grouped, for its archive listing."""
    leads = [story.articles[0].title for section in sections for story in section.stories]
    found = StoryCount(len(leads), tuple(leads[:ARCHIVE_HEADLINES]))
    if edition.id is not None:
        store.set_edition_stories(edition.id, found.count, found.headlines)
    return found


def rebuild_archives(config: Config, digest_name: str | None = None) -> list[tuple[str, WriteReport | None]]:
    """Write every page and feed of each digest's archive (or NAME's) afresh from the store; a file
    whose bytes would not change is left alone. None for a digest without an archive or editions."""
    digests = selected_digests(config, digest_name)
    check_templates(config, digests)
    store = open_store(config.store)
    try:
        reports: list[tuple[str, WriteReport | None]] = []
        for digest in digests:
            if digest.output_dir is None or not digest.archive or not store.edition_count(digest.name):
                reports.append((digest.name, None))
                continue
            reports.append((digest.name, archive(config, store, digest, digest.output_dir).rebuild()))
        return reports
    finally:
        store.close()


def prune(config: Config, store: Store, now: datetime) -> int:
    """Drop article text older than [store] keep; identities stay, so nothing comes back as new."""
    pruned = store.prune(now - config.store.keep)
    if pruned:
        log.info("store: text of %d articles older than %s pruned", pruned, config.store.keep)
    return pruned


def render(
    config: Config,
    store: Store,
    digest: DigestConfig,
    edition: Edition,
    formats: tuple[str, ...],
    lazy: bool = False,
    plan: StoryPlan | None = None,
) -> RenderedEdition:
    """Compose and render an edition in the given formats, with the digest's failing sources; `plan`:
    its stories when already grouped (_grouped_then_loaded), else it is grouped here."""
    renderer = renderer_for(digest.templates)
    return renderer.render_edition(formats, digest.subject, _context(config, store, digest, edition, plan), lazy)


def render_page(
    config: Config,
    store: Store,
    digest: DigestConfig,
    edition: Edition,
    plan: StoryPlan | None = None,
    grouped: dict[int, StoryCount] | None = None,
) -> Iterator[str]:
    """The edition's HTML page for the archive, in pieces as they are rendered: no subject line (a
    rebuild renders thousands), and no "sources with problems" box, which tells of the sources now
    rather than of the edition, so a page and its feed entry stay the same until the edition or the
    template changes. `grouped` gets the edition's stories (by its id), for the archive's lists."""
    renderer = renderer_for(digest.templates)
    sections = _sections(config, store, digest, edition, plan)
    if digest.group_stories:
        found = _keep_stories(store, edition, sections)
        if grouped is not None and edition.id is not None:
            grouped[edition.id] = found
    context = renderer.context(digest.name, digest.timezone, edition, sections)
    context["archive"] = page_links(digest.base_url)  # only archive pages link to their index and feed
    return renderer.generate(TEMPLATE_NAMES["html"], context)


def render_email(
    config: Config, store: Store, digest: DigestConfig, edition: Edition, plan: StoryPlan | None = None
) -> RenderedEdition:
    """Compose and render an edition as an email: subject, text, HTML with inlined CSS, the
    encoded message within `email_max_bytes` (stories that do not fit are named, not sent)."""
    renderer = renderer_for(digest.templates)
    context = _context(config, store, digest, edition, plan)
    full_url = ""
    if digest.output_dir is not None and digest.archive and digest.base_url and edition.id is not None:
        pages = archive(config, store, digest, digest.output_dir)  # the edition's page, as the archive names it
        full_url = pages.base + pages.page_names.get(edition.id, "")
    context["edition"] = {**context["edition"], "full_edition": digest.output_dir is not None, "full_url": full_url}
    sender, unsubscribe = config.smtp.from_, digest.unsubscribe

    def fits(document: RenderedEdition) -> bool:
        parts = MailParts(document.subject, document.bodies["txt"], document.bodies["html"])
        return encoded_size(parts, sender, digest.name, unsubscribe) <= digest.email_max_bytes

    return renderer.render_email(digest.subject, context, fits if digest.email_max_bytes else None)


def _grouped_then_loaded(
    store: Store, digest: DigestConfig, edition_id: int, plans: dict[int, StoryPlan | None] | None = None
) -> tuple[Edition, StoryPlan | None]:
    """The stored edition and, with group_stories, its stories: grouped first, its articles read a page at a
    time, then loaded whole to be shown, so a large edition's grouping and its articles are never in memory
    together (issue 19). `plans` keeps the latest edition's stories: an outbox pass groups an edition once,
    at its first delivery, before later renderings have grown the heap."""
    if plans is not None and edition_id in plans:
        return store.edition(edition_id), plans[edition_id]
    plan = None
    if digest.group_stories:
        edition = store.edition(edition_id, count=0)
        starts = itertools.count(0, PAGE)
        pages = itertools.takewhile(len, (store.edition(edition_id, start, PAGE).articles for start in starts))
        plan = _story_plan(store, digest, edition, pages)
        release_free_memory()  # grouping's arrays go back to the system before the articles fill the heap
    if plans is not None:
        plans.clear()
        plans[edition_id] = plan
    return store.edition(edition_id), plan


def _story_plan(store: Store, digest: DigestConfig, edition: Edition, pages: Iterable[Sequence[StoredArticle]]) -> StoryPlan:
    """The stories of the edition's articles (given a page at a time); one that an edition of the last
    story_window showed is marked as its follow-up."""
    shown = store.shown_before(digest.name, edition.created, edition.created - digest.story_window)
    return plan_stories(pages, shown, digest.story_window, store.story_features)


def _sections(
    config: Config, store: Store, digest: DigestConfig, edition: Edition, plan: StoryPlan | None = None
) -> list[Section]:
    """The edition by source and story (with group_stories: as `plan` groups it, else grouped here)."""
    if digest.group_stories and plan is None:
        plan = _story_plan(store, digest, edition, pages_of(edition.articles))
    return compose(
        edition,
        [s.name for s in config.sources_of(digest)],
        plan if digest.group_stories else None,
        digest.order,
        digest.top,
    )


def _context(
    config: Config, store: Store, digest: DigestConfig, edition: Edition, plan: StoryPlan | None = None
) -> dict[str, Any]:
    renderer = renderer_for(digest.templates)
    sections = _sections(config, store, digest, edition, plan)
    return renderer.context(digest.name, digest.timezone, edition, sections, problems(config, store, digest))


def problems(config: Config, store: Store, digest: DigestConfig) -> list[SourceProblem]:
    """The digest's sources whose last poll failed: shown in a "sources with problems" box."""
    found = []
    for source in config.sources_of(digest):
        state = store.source_state(source.name)
        if state.failures:
            found.append(SourceProblem(source.name, state.failing_since or state.last_poll, state.last_error))
    return found


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
    article = StoredArticle(
        id=1,
        source=source,
        title="A sample article",
        url="https://example.org/sample",
        published=moment,
        author="A. Writer",
        language="english",
        summary=("The first sentence of a sample summary.", "Its second sentence."),
        fetched=moment,
    )
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
            plan = plan_stories(pages_of(edition.articles)) if digest.group_stories else None
            sections = compose(edition, [s.name for s in config.sources_of(digest)], plan, digest.order, digest.top)
            renderer.check(digest.subject, renderer.context(digest.name, digest.timezone, edition, sections, problems))
            if digest.output_dir is not None and digest.archive:
                _check_archive_template(renderer, digest, digest.output_dir, edition)
        except RenderError as error:
            raise ConfigError(str(config.path), f"digests[{index}] ({digest.name})", str(error)) from None


def _check_archive_template(renderer: Renderer, digest: DigestConfig, output_dir: Path, edition: Edition) -> None:
    """Render the archive's index and month pages of a one-edition sample archive (nothing written)."""
    listing = [
        EditionListing(
            0,
            "urn:uuid:00000000-0000-4000-8000-000000000000",
            edition.created,
            len(edition.articles),
            tuple(a.title for a in edition.articles[:ARCHIVE_HEADLINES]),
        )
    ]
    settings = ArchiveSettings(
        digest.name, output_dir / safe_name(digest.name), digest.base_url, digest.feed_size, digest.timezone
    )
    Archive(
        settings,
        listing,
        "urn:uuid:00000000-0000-4000-8000-000000000001",
        page=lambda listed: (),
        list_page=lambda context: renderer.render(ARCHIVE_TEMPLATE, context),
    ).render_lists()


def run(config: Config, now: datetime, digest_name: str | None = None, on_article: ArticleCallback | None = None) -> RunReport:
    """Poll every source once, make one edition of each digest, deliver it, retry the whole outbox."""
    digests = selected_digests(config, digest_name)
    check_templates(config, digests)
    store = open_store(config.store)
    try:
        report = RunReport(started=now)
        report.sources = poll(config, store, sources_for(config, digests), now, on_article=on_article, one_shot=True)
        report.editions = make_editions(config, store, digests, now)
        for digest in digests:
            report.editions += make_subscriber_editions(config, store, digest, now)
        report.deliveries = deliver(config, store, now, honour_backoff=False)
        prune(config, store, now)
        return report
    finally:
        store.close()


def edition_and_delivery(config: Config, store: Store, digest: DigestConfig, now: datetime) -> EditionReport:
    """A scheduled edition (the daemon polls its stale sources first): make it, remember the schedule ran,
    deliver what is due."""
    [made] = make_editions(config, store, [digest], now)
    with store.transaction():
        store.record_digest_run(digest.name, now)
    if made.made:
        deliver(config, store, now, honour_backoff=True)
    return made


def process_outbox(config: Config, now: datetime, honour_backoff: bool) -> list[DeliveryReport]:
    """Retry the outbox on its own: the daemon calls this with honour_backoff=True, `digest run` retries all."""
    store = open_store(config.store)
    try:
        return deliver(config, store, now, honour_backoff)
    finally:
        store.close()


def preview(config: Config, now: datetime, digest_name: str | None, fmt: str) -> list[tuple[str, str | None]]:
    """Render what the next edition of each digest would hold, changing no state.

    Returns (digest name, document or None when nothing waits) pairs. Sources
    are polled and editions made in a scratch copy of the store, thrown away
    after: the real store is only read, so a daemon writing to it meanwhile
    never waits on a preview's slow feeds. (A PostgreSQL store is copied into a
    scratch SQLite file too, rather than previewed in a transaction rolled back:
    that transaction would hold row locks on the shared database while feeds load.)
    """
    digests = selected_digests(config, digest_name)
    with tempfile.TemporaryDirectory(prefix="digest-preview-") as scratch:
        if config.store.exists():  # else the preview starts from an empty store and makes none
            original = open_store(config.store)
            try:
                original.check_integrity()  # the copy would fail later, naming itself rather than the store
                original.copy_to(Path(scratch) / "store.sqlite3")
            finally:
                original.close()
        store = open_store(Path(scratch) / "store.sqlite3")
        try:
            documents: list[tuple[str, str | None]] = []
            poll(config, store, sources_for(config, digests), now, one_shot=True)
            for digest in digests:
                edition = make_edition(store, digest, [s.name for s in config.sources_of(digest)], now)
                documents.append((digest.name, render(config, store, digest, edition, (fmt,)).bodies[fmt] if edition else None))
            return documents
        finally:
            store.close()
