"""OPML in and out, as feed readers exchange subscription lists.

Reading uses defusedxml with DTDs forbidden, so an XML bomb or an external
entity in an imported file is refused before anything expands. Import writes
`[[sources]]` TOML a user can keep in their config; export writes OPML 2.0.
"""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime

import defusedxml
import defusedxml.ElementTree as SafeElementTree

from digest.config import FeedSourceConfig
from digest.errors import ExtractError
from digest.sanitise import clean_title, clean_url


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription found in an OPML file."""

    title: str
    url: str


def read_opml(data: bytes, where: str) -> tuple[list[OpmlFeed], int]:
    """The feeds an OPML document lists (nested outlines included), and how many
    outlines were skipped for lacking an http(s) feed URL."""
    try:
        root = SafeElementTree.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as error:
        raise ExtractError(f"{where}: refused: {type(error).__name__} (DTDs and entities are not allowed in OPML)") from None
    except ElementTree.ParseError as error:
        raise ExtractError(f"{where}: not valid XML: {error}") from None
    if root.tag.lower() != "opml" or root.find("body") is None:
        raise ExtractError(f"{where}: not an OPML file (no <opml><body>)")
    feeds: list[OpmlFeed] = []
    skipped = 0
    for outline in root.iter("outline"):
        attributes = {key.lower(): value for key, value in outline.attrib.items()}
        if "xmlurl" not in attributes:
            continue  # a folder or a plain link
        url = clean_url(attributes["xmlurl"])
        if url is None:
            skipped += 1
            continue
        feeds.append(OpmlFeed(clean_title(attributes.get("title") or attributes.get("text")), url))
    return feeds, skipped


def source_name(title: str, url: str, taken: set[str]) -> str:
    """A short, unique source name from a feed's title (or its host)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:40].strip("-")
    if not base:
        base = re.sub(r"[^a-z0-9]+", "-", (url.split("//", 1)[-1].split("/", 1)[0]).lower()).strip("-") or "feed"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def sources_toml(feeds: Iterable[OpmlFeed], taken_names: set[str], known_urls: set[str]) -> tuple[str, int, int]:
    """`[[sources]]` entries for feeds not configured yet: (TOML, added, already configured)."""
    blocks: list[str] = []
    duplicates = 0
    for feed in feeds:
        if feed.url in known_urls:
            duplicates += 1
            continue
        known_urls.add(feed.url)
        name = source_name(feed.title, feed.url, taken_names)
        comment = f"# {feed.title}\n" if feed.title and feed.title != name else ""
        # JSON strings are valid TOML basic strings (the same escapes).
        blocks.append(
            f'{comment}[[sources]]\nname = {json.dumps(name)}\ntype = "feed"\nurl = {json.dumps(feed.url, ensure_ascii=False)}\n'
        )
    return "\n".join(blocks), len(blocks), duplicates


def export_opml(sources: Iterable[FeedSourceConfig], now: datetime) -> str:
    """OPML 2.0 listing the given feed sources."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = "digest sources"
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ElementTree.SubElement(root, "body")
    for source in sources:
        ElementTree.SubElement(body, "outline", type="rss", text=source.name, title=source.name, xmlUrl=source.url)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
