"""Turn raw documents (plain text, Markdown, HTML) into title, body, date, language.

The only module that imports trafilatura (and lxml through it). It is imported
lazily: it takes a quarter of a second and most commands never need it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone

from digest.errors import ExtractError

# An article's text is cut here, as soon as it is read, before it is copied around (split, normalised,
# stored): the summariser reads only its first 40,000 characters, and a 50 MB file must not cost 1 GB.
MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 2_000_000  # markup handed to the HTML extractor: a long article page is well under

# A scraped text file may open with "date YYYY-MM-DD " before its headline.
_DATE_MARKER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s+[\"'“‘(]?[A-Z0-9])")
# Words after which a headline does not end (the next capitalised word is a name in it).
_NO_BREAK_AFTER = frozenset(
    "a an the of in on at to for with by from and or but as into over under about after before "
    "says said tells told warns urges claims vs via amid than that".split()
)
# Capitalised words that usually open a sentence rather than continue a name.
_OPENERS = frozenset(
    "The A An In On At As After Before When While If This That These Those It He She They We I "
    "President Prime Minister Chancellor Secretary Senator Governor Mayor King Queen Pope "
    "Mr Mrs Ms Dr Police Officials Authorities Government Scientists Researchers".split()
)
_DEMONYM = re.compile(r"^[A-Z][a-z]+(?:ian|ean|ese|ish|ch|an|i)$")


@dataclass(frozen=True)
class Extracted:
    """What extraction found in one document."""

    title: str
    body: str
    published: datetime | None = None
    author: str | None = None
    language: str | None = None


def clean_line(text: str) -> str:
    """One line of display text: control characters dropped, white space folded."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def normalise_body(text: str) -> str:
    """Plain text with paragraphs separated by one blank line and no stray white space."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    folded = (re.sub(r"[ \t\f\v]+", " ", p).strip() for p in paragraphs)
    return "\n\n".join(p for p in folded if p)


def _parse_date(text: str) -> datetime | None:
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def split_headline(line: str) -> tuple[str, str]:
    """Split a line that runs a headline and the story's first sentence together.

    Returns (headline, rest). The break is put before a capitalised word that
    opens a sentence and does not continue a name; with no such place the whole
    first sentence is the headline.
    """
    words = line.split()
    first_end = _SENTENCE_END.search(line)
    limit = len(line[: first_end.end()].split()) if first_end else len(words)
    for index in range(3, min(limit, 40)):
        word, previous = words[index], words[index - 1]
        if not word[:1].isupper() or previous[-1:] in ",:;-–—" or previous.lower() in _NO_BREAK_AFTER:
            continue
        bare = word.strip("\"'“‘(")
        next_is_capital = index + 1 < len(words) and words[index + 1][:1].isupper()
        if bare in _OPENERS or (_DEMONYM.match(bare) and next_is_capital):
            return " ".join(words[:index]), " ".join(words[index:])
    return line.strip(), ""


def from_text(text: str, fallback_title: str) -> Extracted:
    """Plain text or Markdown: title from front matter, a heading or the first line."""
    text = text[:MAX_TEXT_CHARS]
    published = None
    title = ""
    front = _FRONT_MATTER.match(text)
    if front:
        text = text[front.end() :]
        for line in front.group(1).splitlines():
            key, _, value = line.partition(":")
            value = value.strip().strip("\"'")
            if key.strip().lower() == "title":
                title = value
            elif key.strip().lower() == "date":
                published = _parse_date(value)
    lines = text.lstrip("\ufeff").strip().splitlines()
    if not lines:
        raise ExtractError("no text")
    first, rest = lines[0], "\n".join(lines[1:])
    marker = _DATE_MARKER.match(first)
    if marker:
        published = published or _parse_date(marker.group(1))
        headline, lede = split_headline(first[marker.end() :])
        title = title or headline
        body = f"{lede}\n\n{rest}"
    elif heading := _MARKDOWN_HEADING.match(first):
        title = title or heading.group(1)
        body = rest
    elif not title and len(first.split()) <= 30:
        title, body = first, rest
    else:
        body = text
    body = normalise_body(body)
    if not body:
        raise ExtractError("no body text after the title")
    return Extracted(title=clean_line(title) or fallback_title, body=body, published=published)


def from_html(html: str | bytes, url: str | None, fallback_title: str) -> Extracted:
    """An HTML document: main text by trafilatura, title and metadata from the page.

    Bytes (as fetched) are decoded by trafilatura, which reads the page's charset.
    """
    import trafilatura

    html = html[:MAX_HTML_CHARS]
    try:
        body = trafilatura.extract(html, url=url, include_comments=False, include_tables=False, favor_precision=True)
        # Dates from the page's own metadata only (meta tags, JSON-LD, <time>, the URL): the extensive
        # search also reads the text, where a footer's "© 2019" dates a page written today.
        metadata = trafilatura.extract_metadata(html, default_url=url, extensive=False)
    except Exception as error:  # trafilatura raises many lxml and parser types
        raise ExtractError(f"cannot parse HTML: {error}") from None
    if not body or not body.strip():
        raise ExtractError("no main text found in the page")
    title = clean_line((metadata.title if metadata else None) or "") or fallback_title
    published = _parse_date(metadata.date) if metadata and metadata.date else None
    author = clean_line(metadata.author) if metadata and metadata.author else None
    language = (metadata.language if metadata and metadata.language else None) or _declared_language(html)
    # trafilatura puts one paragraph per line, and often the headline first.
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) > 1 and clean_line(lines[0]) == title:
        lines = lines[1:]
    return Extracted(
        title=title,
        body=normalise_body("\n\n".join(lines))[:MAX_TEXT_CHARS],
        published=published,
        author=author,
        language=language,
    )


def _declared_language(html: str | bytes) -> str | None:
    """The language code the page's <html lang="..."> declares, e.g. "de" for "de-AT"."""
    head = html[:4096] if isinstance(html, str) else html[:4096].decode("utf-8", "replace")
    match = re.search(r"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})\b", head, re.IGNORECASE)
    return match.group(1).lower() if match else None


HTML_SUFFIXES = frozenset({".html", ".htm"})


def from_document(text: str, suffix: str, fallback_title: str) -> Extracted:
    """A file's text, read as HTML or as plain text/Markdown by its suffix."""
    if suffix.lower() in HTML_SUFFIXES:
        return from_html(text, None, fallback_title)
    return from_text(text, fallback_title)
