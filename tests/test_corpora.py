"""Third-party corpora under ../shared: feedparser's test feeds, defusedxml's hostile XML.

These files are not part of the repository; each test skips with a reason when
../shared is absent (a user's clone).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser

from conftest import REPO, shared_path
from digest.compose import compose
from digest.config import SummaryConfig
from digest.errors import ExtractError
from digest.models import Edition, StoredArticle
from digest.render import Renderer
from digest.sources.feed import feed_items, parse_feed
from digest.summarise import summarise

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)


def test_every_feedparser_test_feed_parses_without_an_exception() -> None:
    root = shared_path("corpora", "feedparser", "tests")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) > 2000
    entries, refused = 0, []
    for path in files:
        try:
            for item in feed_items(path.read_bytes(), f"http://example.org/{path.name}"):
                # A poll skips seen entries by the identity known before reading: it must be the entry's own.
                assert item.identity == item.read().identity, path
                entries += 1
        except ExtractError as error:  # the only exception allowed: "this is not a feed", for broken input
            refused.append(path.relative_to(root).as_posix())
            assert "\n" not in str(error)
    assert entries > 1000
    assert all(name.startswith("illformed/") for name in refused), refused


class _Inspector(HTMLParser):
    """Collects what would make rendered HTML unsafe."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "style", "form", "meta", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}=")
            if name in ("href", "src", "action", "formaction", "srcset", "background", "poster") and value is not None:
                if not value.strip().lower().startswith(("http://", "https://", "#")):
                    self.problems.append(f"{tag} {name}={value[:40]!r}")


def test_a_digest_of_the_sanitize_cases_has_no_script_handler_or_javascript_link() -> None:
    root = shared_path("corpora", "feedparser", "tests", "wellformed", "sanitize")
    articles: list[StoredArticle] = []
    for path in sorted(root.glob("*")):
        for entry in parse_feed(path.read_bytes(), f"http://example.org/{path.name}"):
            summary = summarise(entry.text or entry.title or "-", SummaryConfig(), title=entry.title)
            articles.append(
                StoredArticle(
                    id=len(articles) + 1,
                    source="sanitize",
                    title=entry.title or path.name,
                    url=entry.link,
                    published=entry.published,
                    author=entry.author,
                    language=entry.language,
                    summary=summary.sentences or (entry.text,),
                    fetched=NOW,
                )
            )
    assert len(articles) > 500
    edition = Edition(digest="daily", created=NOW, articles=tuple(articles))
    renderer = Renderer()
    context = renderer.context("daily", "UTC", edition, compose(edition, ["sanitize"]))
    rendered = renderer.render_edition(("html", "md", "txt"), "{{ digest.name }}", context).bodies
    html = rendered["html"]
    inspector = _Inspector()
    inspector.feed(html.split("<body", 1)[1])  # the theme's own <head> (meta, style) is not feed content
    assert inspector.problems == []
    assert "<script" not in html.lower()  # not even escaped-back-to-live: entries' text is autoescaped
    for fmt in ("md", "txt"):
        assert "<script" not in rendered[fmt].lower() and "](javascript:" not in rendered[fmt].lower()


PROBE = r"""
import json, sys, time
from pathlib import Path
from digest.errors import ExtractError
from digest.opml import read_opml
from digest.sources.feed import feed_items, parse_feed
results = {}
for name in sys.argv[1:]:
    data = Path(name).read_bytes()
    started = time.monotonic()
    outcome = []
    for reader in (lambda: list(parse_feed(data, "http://example.org/x")), lambda: read_opml(data, name)):
        try:
            reader()
            outcome.append("parsed")
        except ExtractError as error:
            outcome.append(str(error))
    results[Path(name).name] = {"seconds": time.monotonic() - started, "outcome": outcome}
# VmHWM: this process's peak resident memory (ru_maxrss would include the forking parent's)
status = Path("/proc/self/status").read_text()
results["peak_rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(results))
"""


def test_every_defusedxml_test_file_ends_quickly_in_little_memory() -> None:
    root = shared_path("corpora", "defusedxml", "xmltestdata")
    files = sorted(str(p) for p in root.iterdir() if p.is_file())
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert probe.returncode == 0, probe.stderr
    results = json.loads(probe.stdout)
    assert results.pop("peak_rss_mb") < 200
    assert len(results) == len(files)
    for name, result in results.items():
        assert result["seconds"] < 2, (name, result)
    assert "possible XML bomb" in results["quadratic.xml"]["outcome"][0]
    assert all(
        "refused" in results[name]["outcome"][1] for name in ("xmlbomb.xml", "quadratic.xml", "external.xml", "cyclic.xml")
    )


def test_the_sanitize_cases_stay_inert_in_the_markdown_digest_as_a_viewer_shows_it() -> None:
    """Issue 11 item 10: feedparser's html5lib-style sanitising payloads as titles, summaries and links, plus a
    handmade link that closes Markdown's `(<url>)`, rendered in all three formats; the .md is shown as a CommonMark
    viewer shows it (raw HTML allowed) and must hold no live tag, handler, image or non-http link either."""
    from markdown_it import MarkdownIt

    root = shared_path("corpora", "feedparser", "tests", "wellformed", "sanitize")
    articles: list[StoredArticle] = []
    for path in sorted(root.glob("*")):
        for entry in parse_feed(path.read_bytes(), f"http://example.org/{path.name}"):
            # The payload as title, as summary, and inside the link, each where a template writes it.
            payload = entry.text or entry.title or path.name
            articles.append(
                StoredArticle(
                    id=len(articles) + 1,
                    source="sanitize",
                    title=payload[:300],
                    url=f"http://example.org/{path.stem}>){payload[:200]}",
                    published=NOW,
                    author=entry.author,
                    language=entry.language,
                    summary=(payload,),
                    fetched=NOW,
                )
            )
    handmade = "http://a.example/x>)<img src=http://evil.example/t.gif>"
    articles.append(
        StoredArticle(
            id=len(articles) + 1,
            source="sanitize",
            title="handmade",
            url=handmade,
            published=NOW,
            author=None,
            language="en",
            summary=("A link that closes the Markdown link.",),
            fetched=NOW,
        )
    )
    assert len(articles) > 500
    edition = Edition(digest="daily", created=NOW, articles=tuple(articles))
    renderer = Renderer()
    context = renderer.context("daily", "UTC", edition, compose(edition, ["sanitize"]))
    rendered = renderer.render_edition(("html", "md", "txt"), "{{ digest.name }}", context).bodies
    for fmt, html in (("html", rendered["html"].split("<body", 1)[1]), ("md", MarkdownIt("commonmark").render(rendered["md"]))):
        inspector = _Inspector()
        inspector.feed(html)
        assert inspector.problems == [], fmt
        assert "<img" not in html.lower() and "evil.example/t.gif>" not in html, fmt
    links = [line for line in rendered["txt"].splitlines() if line.startswith("http")]
    assert len(links) > 500  # a payload with a line break makes no link at all
    assert all(not any(c in link for c in " <>\"'`\\") for link in links)
