"""The `feed` source: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed.

The only module that imports feedparser, and it only ever hands feedparser the
bytes our fetcher got (feedparser's own fetching follows redirects anywhere and
reads local files). Entries are yielded one by one. A teaser entry gets its
linked page fetched and its main text extracted (`full_text`), and the page
fills in title, author, date and language where the feed lacks them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from typing import Any

import feedparser

from digest.config import FeedSourceConfig
from digest.errors import ExtractError, SourceError
from digest.extract import MAX_TEXT_CHARS, Extracted
from digest.fetch import Response
from digest.models import Article
from digest.sanitise import clean_title, html_to_text
from digest.sources import PollContext
from digest.sources.web import canonical_link, fetch_if_changed, fetch_page, remember_validators

log = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
TEASER_WORDS = 120  # fewer words than this in auto mode: fetch the linked page
MAX_FULL_TEXT_FAILURES = 3  # per poll; after that, a broken site costs no more time
_CUT = re.compile(r"(\.\.\.|…|\[\s*(…|\.\.\.)\s*\]|read more|continue reading|more\s*»|\(more\.\.\.\))\W*$", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY\s+(%\s+)?([^\s>]+)\s+(?:\"([^\"]*)\"|'([^']*)'|(SYSTEM|PUBLIC)[^>]*)\s*>")
_ENTITY_BUDGET = 1024 * 1024  # bytes that declared entities may add to a document
_ENTITY_DEPTH = 50  # entities within entities; deeper chains are refused before Python's recursion limit
_SEEN_MEMO_LIMIT = 1000
PACK_OVER = 64 * 1024  # bytes of a fetched feed over which it waits for parsing compressed


@dataclass(frozen=True)
class FeedEntry:
    """One entry as the feed states it, before any full-text fetching."""

    identity: str
    title: str
    text: str
    link: str | None
    published: datetime | None
    author: str | None
    language: str | None


class FeedSource:
    """Polls one feed URL; see the module docstring."""

    def __init__(self, config: FeedSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def poll(self, context: PollContext) -> Iterator[Article]:
        """Yield the entries not yielded by the previous poll; a 304 yields nothing."""
        response = fetch_if_changed(context, self.config.url, FEED_ACCEPT)
        if response.not_modified:
            return
        # A big document may wait a while for a work slot (hundreds are fetched at once): it
        # waits compressed, a third of its size, for about a millisecond of work.
        packed = len(response.body) > PACK_OVER
        body = zlib.compress(response.body, 1) if packed else response.body
        response = replace(response, body=b"")
        with context.working():
            left = yield from self._articles(context, response, zlib.decompress(body) if packed else body)
        if left:  # the next poll must get the whole feed again, not a 304, to read the rest
            context.memo.pop("etag", None)
            context.memo.pop("last_modified", None)
        else:
            remember_validators(context, response)

    def _articles(self, context: PollContext, response: Response, body: bytes) -> Generator[Article, None, int]:
        """The new entries of a fetched feed as articles; notes them in the memo. Returns how many new
        entries were left unread because parsing ran out of time."""
        previously = set(context.memo.get("entries", "").split())
        current: list[str] = []
        failures = 0
        with context.parsing():
            items = list(feed_items(body, response.url, response.content_type))
        if context.over_budget:
            raise ExtractError(f"{response.url}: parsing took more than {context.parse_budget:g}s (the [fetch] timeout)")
        left = 0
        for item in items:
            key = _short_hash(item.identity)
            if key in previously:  # most entries of a daily poll: their text is never read
                current.append(key)
                continue
            if context.over_budget:  # not noted as seen: the next poll reads it, with a budget of its own
                left += 1
                continue
            current.append(key)
            with context.parsing():
                entry = item.read()
            backfilled = _is_backfill(entry, context, self.config)
            article = _article(self.name, entry, backfilled)
            if not backfilled and failures < MAX_FULL_TEXT_FAILURES and self._wants_full_text(entry):
                try:
                    article = _with_page(article, entry, fetch_page(context, entry.link or "")[1])
                except SourceError as error:
                    failures += 1
                    log.warning("%s: full text not used: %s", self.name, error)
            if article.title or article.body:
                yield article
        if left:
            log.warning(
                "%s: parsing took more than %gs (the [fetch] timeout): %d new entries left for the next poll",
                self.name,
                context.parse_budget,
                left,
            )
        context.memo["entries"] = " ".join(current[:_SEEN_MEMO_LIMIT])
        return left

    def _wants_full_text(self, entry: FeedEntry) -> bool:
        if not entry.link or self.config.full_text == "never":
            return False
        return self.config.full_text == "always" or is_teaser(entry.text)


def is_teaser(text: str) -> bool:
    """True when a feed's text looks like a teaser: short, or visibly cut off."""
    return len(text.split()) < TEASER_WORDS or bool(_CUT.search(text[-60:]))


@dataclass(frozen=True)
class FeedItem:
    """An entry before its text is read: what identifies it, and how to read it whole."""

    identity: str
    read: Callable[[], FeedEntry]


def parse_feed(body: bytes, url: str, content_type: str = "") -> Iterator[FeedEntry]:
    """Entries of an RSS, Atom or JSON feed given as bytes; ExtractError if it is none."""
    return (item.read() for item in feed_items(body, url, content_type))


def feed_items(body: bytes, url: str, content_type: str = "") -> Iterator[FeedItem]:
    """The entries of a feed, each known by its identity before its HTML is turned into text
    (the costly part, skipped for the entries a poll has seen before); ExtractError if none."""
    if _looks_like_json(body, content_type):
        return _json_entries(body, url)
    _check_entities(body, url)
    # No HTML of the feed's reaches a digest (html_to_text keeps only text), so feedparser's own
    # sanitising and link resolving inside content would be work thrown away.
    parsed = feedparser.parse(
        body,
        response_headers={"content-location": url, "content-type": content_type or "application/xml"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if parsed.get("bozo") and not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        detail = f" ({' '.join(str(problem).split())})" if problem else ""
        raise ExtractError(f"{url}: not an RSS, Atom or JSON feed{detail}")
    feed_language = parsed.feed.get("language") or None
    return (
        _item(entry.get("id"), partial(canonical_link, entry.get("link"), url), partial(_xml_entry, entry, url, feed_language))
        for entry in parsed.entries
    )


def _identity(given: str | None, link: str | None, title: str, text: str) -> str:
    """GUID/id, else canonical link, else a hash of title and text (as `_item` finds it too)."""
    if given and given.strip():
        return given.strip()
    if link:
        return link
    return "sha256:" + hashlib.sha256(f"{title}\n{text}".encode("utf-8", "replace")).hexdigest()


def _item(given: str | None, link: Callable[[], str | None], read: Callable[[], FeedEntry]) -> FeedItem:
    """A FeedItem whose identity is that of `_identity`: the GUID/id, else the link; only an entry
    with neither is read at once, for the hash of its title and text."""
    identity = given.strip() if given and given.strip() else link()
    if identity:
        return FeedItem(identity, read)
    entry = read()
    return FeedItem(entry.identity, lambda: entry)


def _xml_entry(entry: Any, base: str, feed_language: str | None) -> FeedEntry:
    link = canonical_link(entry.get("link"), base)
    contents = [c for c in entry.get("content", []) if c.get("value")]
    best = max(contents, key=lambda c: len(c["value"]), default=None)
    html = best["value"] if best else entry.get("summary", "") or ""
    plain = best is not None and best.get("type") == "text/plain"
    text = html.strip() if plain else html_to_text(html)
    title = clean_title(entry.get("title"))
    published = _struct_date(entry.get("published_parsed") or entry.get("updated_parsed"))
    language = (best or {}).get("language") or feed_language
    return FeedEntry(
        identity=_identity(entry.get("id"), link, title, text),
        title=title,
        text=text,
        link=link,
        published=published,
        author=clean_title(entry.get("author")) or None,
        language=language,
    )


def _looks_like_json(body: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _json_entries(body: bytes, url: str) -> Iterator[FeedItem]:
    """JSON Feed 1.0/1.1 items (feedparser does not read JSON Feed)."""
    try:
        feed = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ExtractError(f"{url}: not valid JSON ({' '.join(str(error).split())[:120]})") from None
    if (
        not isinstance(feed, dict)
        or not str(feed.get("version", "")).startswith("https://jsonfeed.org/version/")
        or not isinstance(feed.get("items"), list)
    ):
        raise ExtractError(f"{url}: JSON, but not a JSON Feed (no jsonfeed.org version and items)")
    language = feed.get("language") if isinstance(feed.get("language"), str) else None
    return (
        _item(_json_id(item), partial(_json_link, item, url), partial(_json_item, item, url, language))
        for item in feed["items"]
        if isinstance(item, dict)
    )


def _json_id(item: dict[str, Any]) -> str | None:
    item_id = item.get("id")
    return str(item_id) if item_id not in (None, "") else None


def _json_link(item: dict[str, Any], base: str) -> str | None:
    url, external = item.get("url"), item.get("external_url")
    return canonical_link((url if isinstance(url, str) else "") or (external if isinstance(external, str) else ""), base)


def _json_item(item: dict[str, Any], base: str, feed_language: str | None) -> FeedEntry:
    def text_of(key: str) -> str:
        value = item.get(key)
        return value if isinstance(value, str) else ""

    link = _json_link(item, base)
    text = html_to_text(text_of("content_html")) if text_of("content_html") else text_of("content_text").strip()
    text = text or html_to_text(text_of("summary"))
    title = clean_title(text_of("title"))
    listed = item.get("authors")
    authors: list[Any] = listed if isinstance(listed, list) else [item.get("author")]
    names = [a["name"] for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str)]
    return FeedEntry(
        identity=_identity(_json_id(item), link, title, text),
        title=title,
        text=text,
        link=link,
        published=_iso_date(text_of("date_published") or text_of("date_modified")),
        author=clean_title(", ".join(names)) or None,
        language=text_of("language") or feed_language,
    )


def _struct_date(parsed_time: Any) -> datetime | None:
    """feedparser's UTC time tuple as a datetime; None when absent or out of range (year 0)."""
    if not parsed_time:
        return None
    try:
        year, month, day, hour, minute, second = parsed_time[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None


def _iso_date(value: str) -> datetime | None:
    """An ISO 8601 date in UTC; None when it is not one or falls outside datetime's range in UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):  # e.g. 9999-12-31T23:59:59-12:00 is past the year 9999 in UTC
        return None


def _check_entities(body: bytes, url: str) -> None:
    """Refuse documents whose declared XML entities would expand too far (XML bombs).

    Small internal entities (some real feeds use them) are allowed; external ones
    are never fetched by the parser, so they are left alone.
    """
    if b"<!ENTITY" not in body:
        return
    values: dict[bytes, bytes] = {}
    for match in _ENTITY_DECL.finditer(body):
        parameter, name, value = match.group(1), match.group(2), match.group(3) or match.group(4)
        if value is None:
            continue
        if parameter:
            raise ExtractError(f"{url}: refused: the document declares internal XML parameter entities (a possible XML bomb)")
        values[name] = value
    sizes: dict[bytes, int] = {}

    def size(name: bytes, path: tuple[bytes, ...]) -> int:
        if name in path:
            raise ExtractError(f"{url}: refused: XML entity {name.decode(errors='replace')!r} refers to itself")
        if len(path) > _ENTITY_DEPTH:
            raise ExtractError(f"{url}: refused: XML entities nest more than {_ENTITY_DEPTH} deep (a possible XML bomb)")
        if name not in sizes:
            value = values[name]
            total = len(value)
            for ref in re.findall(rb"&([^\s;&#]+);", value):
                if ref in values:
                    total += size(ref, path + (name,))
                if total > _ENTITY_BUDGET:
                    break
            sizes[name] = total
        return sizes[name]

    added = 0
    declarations = b"".join(match.group(0) for match in _ENTITY_DECL.finditer(body))
    for name in values:
        # Everywhere but the declarations: in elements, attributes and CDATA sections alike (one
        # in CDATA is not expanded; counting it errs on the side of refusing), wherever the DTD ends.
        reference = b"&" + name + b";"
        added += size(name, ()) * (body.count(reference) - declarations.count(reference))
        if added > _ENTITY_BUDGET:
            raise ExtractError(
                f"{url}: refused: XML entities would expand the document past {_ENTITY_BUDGET} bytes (a possible XML bomb)"
            )


def _is_backfill(entry: FeedEntry, context: PollContext, config: FeedSourceConfig) -> bool:
    """On a first poll, entries older than the backfill window (or undated) are only marked seen."""
    if not context.first_poll:
        return False
    return entry.published is None or entry.published < context.now - config.backfill


def _article(source: str, entry: FeedEntry, backfilled: bool) -> Article:
    return Article(
        source=source,
        identity=entry.identity,
        title=entry.title or _first_words(entry.text) or (entry.link or ""),
        body=(entry.text or entry.title)[:MAX_TEXT_CHARS],
        published=entry.published,
        url=entry.link,
        author=entry.author,
        language=entry.language,
        version="",  # an entry is known by its identity alone: a re-fetched page that changed is no new article
        backfilled=backfilled,
    )


def _with_page(article: Article, entry: FeedEntry, page: Extracted | None) -> Article:
    """The article with the page's main text (if longer), and its metadata where the feed had none."""
    if page is None:
        return article
    body = page.body if len(page.body) > len(entry.text) else article.body
    return replace(
        article,
        title=entry.title or clean_title(page.title) or article.title,
        body=body,
        author=article.author or page.author,
        published=article.published or page.published,
        language=article.language or page.language,
    )


def _first_words(text: str, count: int = 12) -> str:
    words = text.split()
    return " ".join(words[:count]) + (" …" if len(words) > count else "")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
