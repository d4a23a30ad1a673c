"""Untrusted HTML and text made safe: the only module that imports nh3.

- `html_to_text`: feed HTML reduced to plain text for the summariser (nh3 first
  drops scripts, styles and every attribute; then the text is collected with
  paragraph breaks). No feed HTML reaches a digest: templates show this text,
  autoescaped.
- `clean_title` / `clean_url`: one-line titles without control characters, and
  http(s) links only, to host names that can be looked up.
- `output_url`: a clean link percent-encoded so that it is one inert token in
  HTML, Markdown and plain text alike (no `<`, `>`, quotes, spaces or backslashes).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import nh3

from digest.extract import clean_line

_SAFE_SCHEMES = {"http", "https"}
# RFC 3986 reserved and unreserved characters, and "%" (escapes already made): kept as they are.
# Everything else (< > " ' ` \ { } | ^ space, non-ASCII) is percent-encoded as UTF-8.
_URL_KEEP = "!#$%&()*+,-./:;=?@[]_~"
_BLOCKS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "pre", "tr", "table", "section", "article", "header", "footer", "dd", "dt", "figure", "figcaption", "hr",
}
_TEXT_TAGS = _BLOCKS | {"span", "a", "em", "strong", "b", "i", "u", "code", "td", "th", "small", "sub", "sup", "abbr", "q", "cite", "dl", "tbody", "thead"}


def clean_url(url: str | None, base: str | None = None) -> str | None:
    """`url` made absolute against `base`, or None unless it is http(s)."""
    if not url:
        return None
    url = url.strip()
    if any(ord(c) < 32 for c in url):
        return None
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc or not parts.hostname:
        return None
    if host_name_problem(parts.hostname):
        return None
    return url


def output_url(url: str | None) -> str:
    """A link as every output format writes it: http(s) only (else ""), its host in IDNA
    (punycode) and every character that could end a Markdown link, an HTML attribute or a
    plain-text URL percent-encoded, so a feed's link cannot carry markup into a digest."""
    cleaned = clean_url(url)
    if cleaned is None:
        return ""
    parts = urlsplit(cleaned)
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            netloc = netloc.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    scheme = parts.scheme.lower()
    path, query, fragment = (quote(piece, safe=_URL_KEEP) for piece in (parts.path, parts.query, parts.fragment))
    return urlunsplit((scheme, quote(netloc, safe=_URL_KEEP), path, query, fragment))


def host_name_problem(host: str) -> str | None:
    """Why `host` cannot be looked up (a label over 63 characters or empty, a name over 253), or None.

    Name lookup's IDNA codec raises UnicodeError on these; naming the problem first keeps one
    bad link to one line."""
    name = host.rstrip(".")
    if any(not 1 <= len(label) <= 63 for label in name.split(".")):
        return "a label is empty or longer than 63 characters"
    try:
        ascii_name = name.encode("idna")
    except UnicodeError:
        return "not a valid internationalised name"
    if len(ascii_name) > 253:
        return "longer than 253 characters"
    return None


class _TextCollector(HTMLParser):
    """Collects text, with a paragraph break at each block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """HTML -> plain text for the summariser: paragraphs separated by blank lines."""
    if "<" not in fragment and "&" not in fragment:
        return _tidy(fragment)
    reduced = nh3.clean(fragment, tags=_TEXT_TAGS, attributes={}, strip_comments=True)
    collector = _TextCollector()
    collector.feed(reduced)
    collector.close()
    return _tidy("".join(collector.parts))


def _tidy(text: str) -> str:
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text.replace("\r", "")))
    return "\n\n".join(p for p in paragraphs if p)


def clean_title(title: str | None) -> str:
    """A one-line title: markup and entities resolved, control and format (bidi) characters gone."""
    if not title:
        return ""
    text = html.unescape(title) if "&" in title else title
    if "<" in text:
        text = html_to_text(text).replace("\n", " ")
    return clean_line(text)
