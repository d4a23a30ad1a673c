"""A digest's archive in `<output_dir>/<digest>/`: each edition's page (in `editions/`, apart from
the files channel's, which are never overwritten), index pages (the newest editions, then one page per month), an Atom feed (RFC 4287) of the latest editions, and RFC 5005
archive documents holding every edition in fixed pages, oldest first.

Planned from the store's edition listing alone, so a rebuild gives the same bytes. Ids come from the
store (made once per edition), never from URLs or file names. Each file is written atomically (a temp
file, then a rename) and only when its text changed; adding an edition writes only the files that show
it. The only module that imports lxml (for the feeds; an entry's content is streamed through the
standard library's HTML parser instead, never held as a tree).
"""

from __future__ import annotations

import filecmp
import html.parser
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from html import escape
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import lxml.etree

from digest import PROJECT_URL, __version__
from digest.lock import process_alive
from digest.models import EditionListing, StoryCount

ATOM = "http://www.w3.org/2005/Atom"
HISTORY = "http://purl.org/syndication/history/1.0"  # RFC 5005
INDEX = "index.html"
FEED = "feed.atom"
MONTHS = "months"
ARCHIVES = "archive"
EDITIONS = "editions"
SEARCH = "search"  # answered by `digest serve` (digest.search), not a file
TEMPLATE = "archive.html"  # index and month pages, overridable from the digest's `templates`
HEADLINES = 3  # titles shown for each edition on the index pages
INDEX_EDITIONS = 30  # editions on index.html; the month pages hold every one
PARTIAL_PREFIX = ".partial-"
# Left out of an edition's page when it goes into a feed entry: readers style entries themselves.
DROPPED_WITH_CONTENT = frozenset({"style", "script", "title", "noscript", "template"})
DROPPED = frozenset({"link", "meta", "base"})
VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
LINK_ATTRIBUTES = frozenset(
    {
        "action",
        "archive",
        "background",
        "cite",
        "classid",
        "codebase",
        "data",
        "href",
        "longdesc",
        "poster",
        "profile",
        "src",
        "usemap",
        "dynsrc",
        "lowsrc",
    }
)  # lxml.html.defs.link_attrs, and poster
FEED_CHUNK = 1 << 16  # characters of a page fed to the transform at a time

PageRenderer = Callable[[EditionListing], Iterable[str]]  # an edition's HTML page, in pieces as they are rendered
StoryCounter = Callable[[EditionListing], "StoryCount | None"]  # how its page grouped it; None: not grouped
ListRenderer = Callable[[dict[str, Any]], str]  # TEMPLATE with the given context


@dataclass(frozen=True)
class ArchiveSettings:
    """What the archive takes from its digest's config."""

    digest: str
    folder: Path  # <output_dir>/<digest>
    base_url: str  # where `folder` is served; "" for relative links
    feed_size: int  # entries in feed.atom, and in each archive document
    timezone: str


@dataclass
class WriteReport:
    """Which files a write changed (relative to the archive's folder) and how many it left alone."""

    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)


def _utc(moment: datetime) -> str:
    """RFC 3339 in UTC, as Atom dates are written."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_names(listing: Sequence[EditionListing]) -> dict[int, str]:
    """Each edition's page (listing oldest first): `editions/<UTC stamp>.html`, named as the files channel
    names its HTML, with `-2`, `-3` ... for later editions made in the same second."""
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for edition in listing:
        stamp = edition.created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
        seen[stamp] = seen.get(stamp, 0) + 1
        names[edition.id] = f"{EDITIONS}/{stamp}.html" if seen[stamp] == 1 else f"{EDITIONS}/{stamp}-{seen[stamp]}.html"
    return names


class Archive:
    """One digest's archive, planned from its edition listing (oldest first)."""

    def __init__(
        self,
        settings: ArchiveSettings,
        listing: Sequence[EditionListing],
        feed_id: str,
        page: PageRenderer,
        list_page: ListRenderer,
        stories: StoryCounter | None = None,
    ) -> None:
        self.settings = settings
        self._count_stories = stories
        self._story_counts: dict[int, StoryCount | None] = {}
        self.listing = list(listing)
        self.feed_id = feed_id
        self._render_page = page
        self._render_list = list_page
        self._zone = ZoneInfo(settings.timezone)
        base = settings.base_url
        self.base = base if not base or base.endswith("/") else base + "/"
        self.page_names = page_names(self.listing)
        self.months: dict[str, list[EditionListing]] = {}
        for edition in self.listing:
            self.months.setdefault(self._month(edition), []).append(edition)

    # Planning

    def _month(self, edition: EditionListing) -> str:
        return edition.created.astimezone(self._zone).strftime("%Y-%m")

    def _archive_count(self) -> int:
        """Complete archive documents: `feed_size` editions each, counted from the oldest."""
        return len(self.listing) // self.settings.feed_size

    def files(self) -> dict[str, Callable[[], Iterable[str]]]:
        """Every file of the archive (path relative to its folder) with what makes its text, in pieces,
        in the order they are written: pages before the lists and feeds that link to them (and copy them)."""
        plan: dict[str, Callable[[], Iterable[str]]] = {}
        for edition in self.listing:
            plan[self.page_names[edition.id]] = partial(_chunked_page, self._render_page, edition)
        for month in self.months:
            plan[f"{MONTHS}/{month}.html"] = partial(self._month_page, month)
        plan[INDEX] = self._index_page
        for number in range(1, self._archive_count() + 1):
            plan[f"{ARCHIVES}/{number}.atom"] = partial(self._archive_document, number)
        plan[FEED] = self._subscription_feed
        return plan

    def touched_by(self, edition_id: int) -> list[str]:
        """The files that adding (or re-adding) this edition can change: its page, the index, its
        month and the neighbouring months (their newer/older links), the archive document that
        holds it and the newest one, and the feed. Pages missing on disk are written too."""
        position = next(i for i, e in enumerate(self.listing) if e.id == edition_id)
        month = self._month(self.listing[position])
        months = list(self.months)
        at = months.index(month)
        names = {self.page_names[edition_id], INDEX, FEED}
        names.update(f"{MONTHS}/{m}.html" for m in months[max(0, at - 1) : at + 2])
        complete = self._archive_count()
        for number in {position // self.settings.feed_size + 1, complete}:
            if 1 <= number <= complete:
                names.add(f"{ARCHIVES}/{number}.atom")
        names.update(name for name in self.page_names.values() if not (self.settings.folder / name).exists())
        return [name for name in self.files() if name in names]

    # Writing

    def add_edition(self, edition_id: int) -> WriteReport:
        """Bring the archive up to date after `edition_id` was made; writes only the files that edition changes."""
        return self._write(self.touched_by(edition_id), durable_each=True)

    def rebuild(self) -> WriteReport:
        """Write every file whose bytes differ from what the store says, and remove month pages and
        archive documents that no longer belong (after a change of `feed_size` or time zone); edition
        pages stay (an edition is never deleted from the store)."""
        plan = self.files()
        report = self._write(list(plan), durable_each=False)
        for folder in (MONTHS, ARCHIVES):
            for path in sorted((self.settings.folder / folder).glob("*")):
                name = f"{folder}/{path.name}"
                if path.is_file() and name not in plan and not path.name.startswith(PARTIAL_PREFIX):
                    path.unlink()
                    report.removed.append(name)
        return report

    def render_lists(self) -> None:
        """Render the index and month pages without writing them: checks the list template
        (RenderError names it) before any edition needs it."""
        self._index_page()
        for month in self.months:
            self._month_page(month)

    def _write(self, names: list[str], durable_each: bool) -> WriteReport:
        """Write the named files that changed. `durable_each`: fsync each before its rename (a few
        files); else one sync of everything at the end (a rebuild: one flush instead of thousands)."""
        report = WriteReport()
        plan = self.files()
        for folder in {self.settings.folder / posixpath.dirname(name) for name in names}:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_orphaned_partials(folder)
        for name in names:
            if _write_if_changed(self.settings.folder / name, plan[name](), durable_each):
                report.written.append(name)
            else:
                report.unchanged += 1
        if report.written and not durable_each:
            os.sync()
        return report

    # Pages

    def page(self, edition: EditionListing) -> Iterator[str]:
        """The edition's HTML page in pieces: read back from its file when it has one (written by this archive,
        now or when its edition was added; a rebuild writes every page first), so a feed entry shows what its
        page shows and costs no second rendering; else rendered. Never held whole."""
        path = self.settings.folder / self.page_names[edition.id]
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as stream:
                while piece := stream.read(FEED_CHUNK):
                    yield piece
        else:
            yield from _chunked(self._render_page(edition))

    def _href(self, target: str, document: str) -> str:
        """A link from `document` to `target` (both relative to the folder): absolute under
        base_url, else relative. The index is its folder's URL when served."""
        if self.base:
            return self.base if target == INDEX else self.base + target
        return posixpath.relpath(target, posixpath.dirname(document) or ".")

    def _shown(self, edition: EditionListing) -> tuple[int, str, tuple[str, ...]]:
        """What the lists and the feed entry say of an edition: (count, "stories" or "articles" with
        the count's number, headlines): its stories when its digest groups them, else its articles."""
        if edition.id not in self._story_counts:
            self._story_counts[edition.id] = self._count_stories(edition) if self._count_stories else None
        found = self._story_counts[edition.id]
        if found is None:
            return edition.count, "article" if edition.count == 1 else "articles", edition.headlines
        return found.count, "story" if found.count == 1 else "stories", found.headlines

    def _listed(self, edition: EditionListing, document: str) -> dict[str, Any]:
        local = edition.created.astimezone(self._zone)
        count, unit, headlines = self._shown(edition)
        return {
            "href": self._href(self.page_names[edition.id], document),
            "date": local.strftime("%Y-%m-%d"),
            "time": local.strftime("%H:%M"),
            "count": count,
            "unit": unit,
            "headlines": list(headlines),
            "more": max(0, count - len(headlines)),
        }

    def _month_link(self, month: str, document: str) -> dict[str, Any]:
        label = datetime.strptime(month, "%Y-%m").strftime("%B %Y")
        return {
            "href": self._href(f"{MONTHS}/{month}.html", document),
            "label": label,
            "count": len(self.months[month]),
            "month": month,
        }

    def _list_context(self, document: str, title: str, editions: Sequence[EditionListing]) -> dict[str, Any]:
        return {
            "digest": {"name": self.settings.digest, "timezone": self.settings.timezone},
            "title": title,
            "editions": [self._listed(e, document) for e in reversed(editions)],
            "months": [self._month_link(m, document) for m in reversed(list(self.months))],
            "feed_href": self._href(FEED, document),
            "index_href": self._href(INDEX, document),
            "search_href": self._href(SEARCH, document),
            "total": len(self.listing),
            "newer": None,
            "older": None,
            "current_month": None,
            "version": __version__,
        }

    def _index_page(self) -> list[str]:
        newest = self.listing[-INDEX_EDITIONS:]
        context = self._list_context(INDEX, self.settings.digest, newest)
        context["more"] = len(self.listing) - len(newest)
        return [self._render_list(context)]

    def _month_page(self, month: str) -> list[str]:
        document = f"{MONTHS}/{month}.html"
        label = datetime.strptime(month, "%Y-%m").strftime("%B %Y")
        context = self._list_context(document, f"{self.settings.digest}: {label}", self.months[month])
        months = list(self.months)
        at = months.index(month)
        context["older"] = self._month_link(months[at - 1], document) if at > 0 else None
        context["newer"] = self._month_link(months[at + 1], document) if at + 1 < len(months) else None
        context["current_month"] = month
        context["total"] = len(self.months[month])  # not the archive's: an edition next month changes no count here
        context["more"] = 0
        # A month page lists its neighbours only, so a new month rewrites one older page, not all.
        context["months"] = []
        return [self._render_list(context)]

    # Feeds

    def _subscription_feed(self) -> Iterator[str]:
        entries = self.listing[-self.settings.feed_size :]
        complete = self._archive_count()
        prev = f"{ARCHIVES}/{complete}.atom" if complete else None
        return self._feed(FEED, entries, prev=prev, archive=False)

    def _archive_document(self, number: int) -> Iterator[str]:
        size = self.settings.feed_size
        entries = self.listing[(number - 1) * size : number * size]
        prev = f"{ARCHIVES}/{number - 1}.atom" if number > 1 else None
        return self._feed(f"{ARCHIVES}/{number}.atom", entries, prev=prev, archive=True)

    def _feed(self, document: str, entries: Sequence[EditionListing], prev: str | None, archive: bool) -> Iterator[str]:
        """An Atom feed document of `entries` (newest first), at `document` within the folder, in pieces.

        lxml makes the document with a marker for each entry's content, which is then streamed in
        its place out of the edition's page (escaped as lxml escapes text), so no page is held whole."""
        nsmap: dict[str | None, str] = {None: ATOM, "fh": HISTORY} if archive else {None: ATOM}
        feed = lxml.etree.Element(f"{{{ATOM}}}feed", nsmap=nsmap)

        def add(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
            element = lxml.etree.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
            if text is not None:
                element.text = text
            return element

        add(feed, "id", self.feed_id)
        add(feed, "title", self.settings.digest)
        add(feed, "subtitle", f"Every edition of the {self.settings.digest} digest")
        add(feed, "updated", _utc(max(e.created for e in entries)))
        author = add(feed, "author")
        add(author, "name", self.settings.digest)
        add(feed, "link", rel="self", type="application/atom+xml", href=self._href(document, document))
        add(feed, "link", rel="alternate", type="text/html", href=self._href(INDEX, document))
        if archive:
            add(feed, "link", rel="current", type="application/atom+xml", href=self._href(FEED, document))
            lxml.etree.SubElement(feed, f"{{{HISTORY}}}archive")
        if prev:
            add(feed, "link", rel="prev-archive", type="application/atom+xml", href=self._href(prev, document))
        add(feed, "generator", "digest", uri=PROJECT_URL, version=__version__)
        marker = f"content-{uuid.uuid4().hex}-"
        for number, edition in enumerate(reversed(entries)):
            self._entry(add(feed, "entry"), edition, document, add, f"{marker}{number}.")
        skeleton = lxml.etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True).decode()
        parts = re.split(f"{re.escape(marker)}(\\d+)\\.", skeleton)
        yield parts[0]
        newest_first = list(reversed(entries))
        for at in range(1, len(parts), 2):
            edition = newest_first[int(parts[at])]
            page_url = self.base + self.page_names[edition.id] if self.base else ""
            yield from (_xml_text(piece) for piece in feed_content(self.page(edition), page_url))
            yield parts[at + 1]

    def _entry(self, entry: Any, edition: EditionListing, document: str, add: Callable[..., Any], content: str) -> None:
        local = edition.created.astimezone(self._zone)
        page_href = self._href(self.page_names[edition.id], document)
        add(entry, "id", edition.atom_id)
        add(entry, "title", f"{self.settings.digest}: {local.strftime('%Y-%m-%d %H:%M')}")
        add(entry, "updated", _utc(edition.created))
        add(entry, "published", _utc(edition.created))
        add(entry, "link", rel="alternate", type="text/html", href=page_href)
        count, unit, headlines = self._shown(edition)
        add(entry, "summary", "; ".join([f"{count} {unit}", *headlines]), type="text")
        add(entry, "content", content, type="html")  # a marker: _feed streams the page's content in its place


def page_links(base_url: str) -> dict[str, str]:
    """Links from an edition's page (in `editions/`) to the archive's index and feed, for its template."""
    if base_url:
        base = base_url if base_url.endswith("/") else base_url + "/"
        return {"index": base, "feed": base + FEED}
    return {"index": f"../{INDEX}", "feed": f"../{FEED}"}


def feed_content(page: Iterable[str], page_url: str) -> Iterator[str]:
    """An edition's page (in pieces) as a feed entry's HTML, in pieces: the body alone, without <style>
    or scripts, its links made absolute against `page_url` (left as they are when it is empty), without
    leading or trailing space and ending in one newline. Streamed through a tag-by-tag transform, so
    neither the page nor a tree of it is ever held whole (issue 19)."""
    transform = _FeedContent(page_url)
    started = False
    space = ""  # trailing white space seen so far: written only if more text follows
    for chunk in (*page, None):
        if chunk is None:
            transform.close()
        else:
            transform.feed(chunk)
        for piece in transform.pieces:
            if not started:
                piece = piece.lstrip()
                started = bool(piece)
            body = piece.rstrip()
            if body:
                yield space + body
                space = piece[len(body) :]
            else:
                space += piece
        transform.pieces.clear()
    yield "\n"


_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _chunked(pieces: Iterable[str], size: int = FEED_CHUNK) -> Iterator[str]:
    """Small pieces (a template's, as Jinja2 makes them) joined into chunks of about `size` characters."""
    held: list[str] = []
    length = 0
    for piece in pieces:
        held.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(held)
            held.clear()
            length = 0
    if held:
        yield "".join(held)


def _xml_text(text: str) -> str:
    """Text escaped as lxml writes an element's text (characters XML cannot hold are left out)."""
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


class _FeedContent(html.parser.HTMLParser):
    """Copies what lies inside <body>, leaving out DROPPED elements, DROPPED_WITH_CONTENT ones with what they hold, and
    comments, re-escaping text and attribute values, and joining link attributes to the page's URL."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.pieces: list[str] = []
        self._in_body = False
        self._skipping = 0  # depth inside left-out elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._in_body = True
        elif self._in_body and tag in DROPPED_WITH_CONTENT:
            self._skipping += 1
        elif self._in_body and not self._skipping and tag not in DROPPED:
            self.pieces.append(f"<{tag}{''.join(self._attribute(name, value) for name, value in attrs)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self._in_body = False
        elif self._in_body and tag in DROPPED_WITH_CONTENT:
            self._skipping = max(0, self._skipping - 1)
        elif self._in_body and not self._skipping and tag not in DROPPED and tag not in VOID_ELEMENTS:
            self.pieces.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._in_body and not self._skipping:
            self.pieces.append(escape(data, quote=False))

    def _attribute(self, name: str, value: str | None) -> str:
        if value is None:
            return f" {name}"
        if self.page_url and name in LINK_ATTRIBUTES:
            value = urljoin(self.page_url, value.strip())
        return f' {name}="{escape(value)}"'


def _chunked_page(render: PageRenderer, edition: EditionListing) -> Iterator[str]:
    return _chunked(render(edition))


def _write_if_changed(path: Path, pieces: Iterable[str], durable: bool) -> bool:
    """Write the pieces (UTF-8) to a temp file and rename it to `path`, so no reader sees half a file
    (fsynced first when `durable`); False, and the file left alone, when it already holds these bytes.
    Written piece by piece and compared on disk, so a big page is never whole in memory."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", suffix=path.suffix)
    try:
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the archive from a web server
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            for piece in pieces:
                stream.write(piece)
            stream.flush()
            if path.is_file() and filecmp.cmp(temporary, path, shallow=False):
                os.unlink(temporary)
                return False
            if durable:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _remove_orphaned_partials(folder: Path) -> None:
    """Delete temp files left by a process killed while writing (its PID is gone)."""
    for leftover in folder.glob(f"{PARTIAL_PREFIX}*"):
        pid = leftover.name[len(PARTIAL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            leftover.unlink(missing_ok=True)
