"""Plain data passed between stages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Article:
    """One document as a source found it, before it is stored."""

    source: str
    identity: str  # stable per source: a path, a GUID or a canonical URL
    title: str
    body: str  # plain text, paragraphs separated by blank lines
    published: datetime | None = None  # timezone-aware
    url: str | None = None
    author: str | None = None
    language: str | None = None
    version: str = ""  # changes when the content changes (e.g. a file's text hash)
    backfilled: bool = False  # older than the source's backfill window: stored as seen, in no edition


@dataclass(frozen=True)
class InboundMessage:
    """One email the inbound listener took in for a mailbox source, as received."""

    id: int
    source: str
    key: str  # its Message-ID, else a hash of the message
    received: datetime
    sender: str
    raw: bytes


@dataclass(frozen=True)
class Summary:
    """An article's summary: sentences in document order."""

    sentences: tuple[str, ...]
    algorithm: str
    language: str
    note: str = ""  # e.g. why a fallback was used


@dataclass(frozen=True, slots=True)  # an edition holds thousands: no __dict__ each (issue 19)
class StoredArticle:
    """An article as the store holds it, with its summary."""

    id: int
    source: str
    title: str
    url: str | None
    published: datetime | None
    author: str | None
    language: str | None
    summary: tuple[str, ...]
    fetched: datetime


@dataclass(frozen=True)
class StoryFeatures:
    """What grouping by story needs of an article, made once when it is stored (digest.stories)."""

    terms: dict[str, float]  # sublinear term counts of the title and body
    names: dict[str, float]  # the same, for proper names and numbers only
    words: int  # length of the body in words: the most complete article leads its story
    text_hash: str  # equal for exact copies


@dataclass(frozen=True, slots=True)  # an edition holds thousands: no __dict__ each (issue 19)
class Story:
    """One event as an edition shows it: the article that leads it, the others reporting it
    (other sources, copies), and when an earlier edition of the digest first showed it."""

    lead: StoredArticle
    others: tuple[StoredArticle, ...] = ()
    follows_up: datetime | None = None  # the earlier edition's time when this is a follow-up

    @property
    def articles(self) -> tuple[StoredArticle, ...]:
        """The lead, then the others."""
        return (self.lead, *self.others)


@dataclass(frozen=True)
class SourceProblem:
    """A source of a digest whose polls fail, for the digest's "sources with problems" box."""

    source: str
    since: datetime | None  # the first failed poll of the current run of failures
    error: str  # the last poll's error, one line


@dataclass(frozen=True)
class Edition:
    """One issue of a digest: the articles no earlier edition held."""

    digest: str
    created: datetime
    articles: tuple[StoredArticle, ...]
    id: int | None = None  # None for a preview that was never stored
    waiting: int = 0  # articles left over by max_articles for the next edition
    atom_id: str = ""  # the edition's permanent Atom id, made when it was created ("" for a preview)


@dataclass(frozen=True)
class EditionRef:
    """An edition an article appeared in: its digest, id and when it was made."""

    digest: str
    id: int
    created: datetime


@dataclass(frozen=True)
class SearchHit:
    """One article a search found, best first: the article, a plain-text excerpt around the words
    found (no markup), the editions it appeared in (oldest first) and its rank (lower is better)."""

    article: StoredArticle
    excerpt: str
    editions: tuple[EditionRef, ...]
    rank: float


@dataclass(frozen=True)
class StoryCount:
    """How an edition's page grouped it, for the archive's lists: its stories and their first headlines."""

    count: int
    headlines: tuple[str, ...]


@dataclass(frozen=True)
class EditionListing:
    """One edition as an archive lists it: no article bodies, only what index pages and feeds need."""

    id: int
    atom_id: str
    created: datetime
    count: int  # articles in the edition
    headlines: tuple[str, ...]  # the titles of its first articles
    stories: int | None = None  # stories in the edition, as its page grouped them (None: not grouped, or not yet known)
    story_headlines: tuple[str, ...] = ()  # the headlines of its first stories, in the page's order


@dataclass(frozen=True)
class Section:
    """One source's stories within an edition (a story sits under its lead article's source), as
    compose arranges them for render."""

    source: str  # "" when the section mixes sources (top stories, importance or newest order)
    stories: tuple[Story, ...]
    heading: str = ""  # what the section is called: its source, "Top stories", "More stories", or "" for none

    @property
    def articles(self) -> tuple[StoredArticle, ...]:
        """The stories' lead articles (what templates written before stories iterate)."""
        return tuple(story.lead for story in self.stories)


@dataclass(frozen=True)
class RenderedEdition:
    """An edition rendered in each requested format, with its email subject."""

    subject: str
    bodies: Mapping[str, str]  # format -> document text (the files channel's are rendered as each is read)


@dataclass(frozen=True)
class Delivery:
    """One outbox row: one file set, or one email to one recipient."""

    id: int
    edition_id: int
    digest: str
    channel: str  # "files" or "email"
    recipient: str  # output folder or email address
    status: str  # pending | delivered | failed
    attempts: int
    last_error: str
    message_id: str
    next_attempt: datetime | None
    created: datetime | None = None  # when the edition queued it; a pending email is failed after [smtp] give_up_after


@dataclass(frozen=True)
class SourceState:
    """What the store remembers of one source between polls."""

    name: str
    memo: dict[str, str]
    first_poll: datetime | None
    last_poll: datetime | None
    last_success: datetime | None
    failures: int
    last_error: str
    not_before: datetime | None = None  # no poll before this (the server's Retry-After)
    failing_since: datetime | None = None  # the first of the current run of failed polls


@dataclass(frozen=True)
class StoreSize:
    """How big the store is, for `digest status`."""

    bytes: int  # on disk
    articles: int  # every identity ever stored
    articles_with_text: int  # not yet pruned by [store] keep


@dataclass
class SourceReport:
    """What one source did in a run."""

    name: str
    new_articles: int = 0
    backlog: int = 0  # stored as seen on a first poll, older than the backfill window: in no edition
    seen: int = 0
    error: str = ""
    waiting_until: str = ""  # ISO time before which the source is not polled (its server asked to wait)
    notes: list[str] = field(default_factory=list)  # e.g. articles summarised by position, and why
    waiting_for_summary: list[int] = field(default_factory=list)  # ids stored before their summary (digest worker)

    backfill: str = ""  # the source's backfill window as written ("2d"), when it stored a backlog

    def outcome(self) -> str:
        """What the poll stored, in words: "3 new", "3 stored as backlog (older than backfill 2d)", or both."""
        if not self.backlog:
            return f"{self.new_articles} new"
        backlog = f"{self.backlog} stored as backlog (older than backfill {self.backfill})"
        return f"{self.new_articles} new, {backlog}" if self.new_articles else backlog

    def add_note(self, note: str, limit: int = 20) -> None:
        """Keep a note for the report; past `limit`, only count them."""
        if len(self.notes) < limit:
            self.notes.append(note)
        elif len(self.notes) == limit:
            self.notes.append("more notes left out")


@dataclass
class EditionReport:
    """Whether a run made an edition of one digest."""

    digest: str
    made: bool
    articles: int = 0
    waiting: int = 0  # left over by max_articles for the next edition
    subscribers: int = 0  # for subscribers' editions: how many readers this one serves (0: the digest's own)
    due: str = ""  # for subscribers' editions: the moment (ISO) it was owed

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict; `subscribers` and `due` only for an edition of subscribers."""
        entry = {k: v for k, v in vars(self).items() if k not in ("subscribers", "due", "waiting")}
        if self.subscribers:
            entry.update(subscribers=self.subscribers, due=self.due)
        else:
            entry["waiting"] = self.waiting
        return entry


@dataclass
class DeliveryReport:
    """One try of one outbox row."""

    digest: str
    channel: str
    recipient: str
    status: str = "pending"  # delivered | pending (retried later) | failed
    error: str = ""
    to: str = ""  # where it went, once delivered
    message_id: str = ""  # email only

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict; `to` only once delivered, `message_id` only for email."""
        entry: dict[str, object] = {"digest": self.digest, "channel": self.channel, "recipient": self.recipient}
        if self.to:
            entry["to"] = self.to
        entry.update(status=self.status, error=self.error)
        if self.message_id:
            entry["message_id"] = self.message_id
        return entry


@dataclass
class RunReport:
    """What a run did; printed as JSON by `digest run --json`."""

    started: datetime
    sources: list[SourceReport] = field(default_factory=list)
    editions: list[EditionReport] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when a source or a delivery failed."""
        return any(s.error for s in self.sources) or any(d.status == "failed" or d.error for d in self.deliveries)

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict of the report."""
        return {
            "started": self.started.isoformat(),
            "ok": not self.failed,
            "sources": [{k: v for k, v in vars(s).items() if k not in ("backfill", "waiting_for_summary")} for s in self.sources],
            "editions": [e.as_json() for e in self.editions],
            "deliveries": [d.as_json() for d in self.deliveries],
        }


@dataclass(frozen=True)
class Subscriber:
    """A reader of one digest with their own time, time zone and words to include or exclude."""

    id: int
    digest: str
    address: str  # normalised addr-spec: one row per (digest, address)
    name: str  # display name, or ""
    timezone: str
    at: str  # local delivery time, "HH:MM"
    include: tuple[str, ...]  # an article must mention one of these (none: every article)
    exclude: tuple[str, ...]  # an article that mentions one of these is skipped for this reader
    status: str  # active | invited (waiting for confirmation) | unsubscribed
    created: datetime
    watermark: int  # articles with a higher arrival number (see the stores) have not been considered for this reader yet
    last_slot: datetime | None = None  # the last local delivery time whose mail was made


@dataclass(frozen=True)
class ReaderTime:
    """The active readers of one digest at one (time zone, local time), summed up so that a scheduler can
    tell with one query whether any of them is owed a mail: see digest.audience.due_digests."""

    digest: str
    timezone: str
    at: str  # "HH:MM"
    earliest_sent: datetime | None  # the earliest last_slot among those sent a mail before (None: no such reader)
    earliest_new: datetime | None  # the earliest `created` among those never sent one (None: no such reader)


@dataclass(frozen=True)
class WebRequest:
    """An HTTP request as an endpoint of `digest serve` sees it, free of the web framework."""

    method: str
    path_params: dict[str, str]
    query: dict[str, str]
    form: dict[str, str]  # a POSTed form (application/x-www-form-urlencoded); empty otherwise
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True)
class WebReply:
    """What an endpoint answers."""

    status: int
    body: str
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """One route a module adds to `digest serve` (digest/web.py, ENDPOINTS)."""

    path: str  # Starlette path syntax, e.g. "/unsubscribe/{token}"
    methods: tuple[str, ...]
    handle: Callable[[WebRequest], WebReply]
