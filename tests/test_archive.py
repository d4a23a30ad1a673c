"""The archive of editions: index pages, an Atom feed readers trust (RFC 4287), RFC 5005 archive
documents, stable ids across rebuilds and base_url changes, and `digest serve`.

Editions are made by the CLI (`digest run` in process with CliRunner, DIGEST_NOW advanced a day at a time) or by
pipeline.run in-process where only the files matter; feeds are read by feedparser and checked
element by element with lxml.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import feedparser
import httpx
import lxml.etree
import lxml.html
import pytest

from digest import config as config_module
from digest import pipeline
from tests.conftest import REPO, Project
from tests.smtpserver import free_port
from tests.inprocess import invoke

ATOM = "{http://www.w3.org/2005/Atom}"
HISTORY = "{http://purl.org/syndication/history/1.0}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
DAYS = ("2026-11-27", "2026-11-28", "2026-11-29")
BASE = "https://news.example.org/digests/daily/"


def add_seed(project: Project, day: str) -> None:
    """One new article in the seeds folder, so the next run makes an edition."""
    (project.root / "seeds" / f"harbour-{day}.txt").write_text(
        f"Harbour works reach stage {day[-2:]}\n\nCrews finished stage {day[-2:]} of the harbour works on {day}. "
        "The council said the quay reopens in spring. Residents welcomed the quieter nights.\n",
        encoding="utf-8",
    )


def set_digest_keys(project: Project, keys: str) -> None:
    text = project.config.read_text(encoding="utf-8")
    text = re.sub(r'\n(base_url|templates) = "[^"]*"|\nfeed_size = \d+', "", text)
    project.config.write_text(text.replace('name = "daily"', f'name = "daily"\n{keys}'), encoding="utf-8")


@pytest.fixture
def three_editions(project: Project) -> Project:
    """Three editions of `daily`, one a day, each made by `digest run`."""
    for day in DAYS:
        add_seed(project, day)
        result = invoke(project, "run", now=f"{day}T07:00:00+00:00")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "delivery daily (archive)" in result.stdout and "delivered" in result.stdout
    return project


def archive_files(project: Project) -> dict[str, bytes]:
    folder = project.out / "daily"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def parsed_feed(path: Path) -> feedparser.FeedParserDict:
    feed = feedparser.parse(path.read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


def assert_rfc4287(path: Path) -> lxml.etree._Element:
    """The elements RFC 4287 requires (4.1.1, 4.1.2), one each where it says exactly one."""
    root = lxml.etree.parse(str(path)).getroot()
    assert root.tag == f"{ATOM}feed"

    def one(parent: lxml.etree._Element, name: str) -> lxml.etree._Element:
        found = parent.findall(f"{ATOM}{name}")
        assert len(found) == 1, f"{parent.tag} has {len(found)} {name} elements"
        return found[0]

    assert one(root, "id").text.startswith("urn:uuid:")
    assert one(root, "title").text
    assert RFC3339.match(one(root, "updated").text)
    assert root.find(f"{ATOM}author/{ATOM}name").text  # so no entry needs its own
    rels = {link.get("rel"): link for link in root.findall(f"{ATOM}link")}
    assert rels["self"].get("type") == "application/atom+xml" and rels["self"].get("href")
    assert rels["alternate"].get("type") == "text/html" and rels["alternate"].get("href")
    entries = root.findall(f"{ATOM}entry")
    assert entries
    for entry in entries:
        assert one(entry, "id").text.startswith("urn:uuid:")
        assert one(entry, "title").text
        assert RFC3339.match(one(entry, "updated").text) and RFC3339.match(one(entry, "published").text)
        [alternate] = [link for link in entry.findall(f"{ATOM}link") if link.get("rel") == "alternate"]
        assert alternate.get("href", "").endswith(".html")
        content = one(entry, "content")
        assert content.get("type") == "html" and "<h3>" in content.text
        assert "<style" not in content.text and "<script" not in content.text
    updated = [e.find(f"{ATOM}updated").text for e in entries]
    assert updated == sorted(updated, reverse=True)  # newest first
    assert root.find(f"{ATOM}updated").text == updated[0]
    return root


def test_three_runs_give_an_index_of_three_and_a_feed_readers_trust(three_editions: Project) -> None:
    folder = three_editions.out / "daily"
    index = lxml.html.parse(str(folder / "index.html")).getroot()
    editions = index.find_class("edition")
    assert len(editions) == 3
    dates = [edition.find(".//h2/a").text_content() for edition in editions]
    assert dates == [f"{day} 07:00" for day in reversed(DAYS)]  # newest first
    for edition, day in zip(editions, reversed(DAYS)):
        href = edition.find(".//h2/a").get("href")
        assert (folder / href).is_file() and href.startswith(f"editions/{day}")
        assert f"Harbour works reach stage {day[-2:]}" in edition.text_content()
        assert re.fullmatch(r"\d+ stor(y|ies)", edition.find_class("meta")[0].text_content())  # grouping is on by default

    feed = parsed_feed(folder / "feed.atom")
    ids = [entry.id for entry in feed.entries]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert [entry.published[:10] for entry in feed.entries] == list(reversed(DAYS))
    assert all((folder / entry.link).is_file() for entry in feed.entries)  # relative without base_url
    assert_rfc4287(folder / "feed.atom")
    page = lxml.html.parse(str(folder / feed.entries[0].link)).getroot()  # an edition's page leads back
    links = {a.text_content(): (folder / feed.entries[0].link).parent / a.get("href") for a in page.iter("a")}
    assert links["All editions"].resolve() == (folder / "index.html").resolve()
    assert links["Atom feed"].resolve() == (folder / "feed.atom").resolve()
    assert "All editions" not in (folder / "2026-11-29T070000Z.html").read_text(encoding="utf-8")  # not the files'


def test_ids_survive_a_rebuild_and_a_new_base_url_and_a_rebuild_changes_no_byte(three_editions: Project) -> None:
    folder = three_editions.out / "daily"
    before = archive_files(three_editions)
    ids = [entry.id for entry in parsed_feed(folder / "feed.atom").entries]
    feed_id = parsed_feed(folder / "feed.atom").feed.id

    rebuilt = invoke(three_editions, "archive", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "digest daily: 0 files written" in rebuilt.stdout
    assert archive_files(three_editions) == before

    # A source failing since shows in new editions' "sources with problems" box, not in archived pages.
    text = three_editions.config.read_text(encoding="utf-8").replace('sources = ["seeds"]', 'sources = ["seeds", "down"]')
    three_editions.config.write_text(
        text + '\n[fetch]\nallow_private = true\n\n[[sources]]\nname = "down"\n'
        'type = "feed"\nurl = "http://127.0.0.1:9/feed.xml"\n',
        encoding="utf-8",
    )
    failing = invoke(three_editions, "run", now="2026-11-29T08:00:00+00:00")
    assert failing.returncode == 1 and "source down: 0 new; failed" in failing.stdout
    assert "digest daily: 0 files written" in invoke(three_editions, "archive", "rebuild").stdout
    assert archive_files(three_editions) == before

    (folder / "index.html").unlink()
    (folder / "feed.atom").write_text("half a fe")
    again = invoke(three_editions, "archive", "rebuild", "--digest", "daily")
    assert "digest daily: 2 files written" in again.stdout, again.stdout + again.stderr
    assert archive_files(three_editions) == before

    theme = three_editions.root / "theme"  # a user's page with a relative link, which feeds must not keep
    theme.mkdir()
    page = (REPO / "templates" / "digest.html").read_text(encoding="utf-8")
    (theme / "digest.html").write_text(page.replace('<div class="page">', '<div class="page"><a href="../index.html">All</a>'))
    set_digest_keys(three_editions, f'base_url = "{BASE}"\ntemplates = "../theme"')
    moved = invoke(three_editions, "archive", "rebuild")
    assert moved.returncode == 0, moved.stderr
    feed = parsed_feed(folder / "feed.atom")
    assert [entry.id for entry in feed.entries] == ids and feed.feed.id == feed_id
    assert all(entry.link.startswith(BASE) for entry in feed.entries)
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": BASE + "feed.atom", "alternate": BASE}
    root = assert_rfc4287(folder / "feed.atom")
    content = root.find(f"{ATOM}entry/{ATOM}content").text
    assert f'<a href="{BASE}index.html">All</a>' in content
    assert re.search(f'<a href="{re.escape(BASE)}"[^>]*>All editions</a>', content)
    assert re.findall(r'href="([^"]*)"', content) and all(
        h.startswith("https://") for h in re.findall(r'href="([^"]*)"', content)
    )
    editions_own = {name: data for name, data in before.items() if name[0].isdigit()}
    assert len(editions_own) == 9  # three editions' html, md, txt: the files channel's, never rewritten
    assert {name: data for name, data in archive_files(three_editions).items() if name[0].isdigit()} == editions_own
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert f'href="{BASE}editions/2026-11-29T070000Z.html"' in index


def test_an_edition_where_two_sources_report_one_event_is_listed_by_its_story_count(tmp_path: Path) -> None:
    """Wire and herald both report the Elazig quake (4 articles, 3 stories): the index, month page and
    feed entry count stories and show the stories' lead headlines, and a rebuild changes no byte, even
    for an edition whose grouping was not kept (stored before it was)."""
    stories_data = REPO / "tests" / "data" / "stories"
    for folder in ("wire", "herald"):
        shutil.copytree(stories_data / folder, tmp_path / folder)
        for offset, path in enumerate(sorted((tmp_path / folder).iterdir())):  # published within hours of each other
            moment = datetime(2026, 11, 26, 20 + offset, tzinfo=timezone.utc).timestamp()
            os.utime(path, (moment, moment))
    project = Project(tmp_path)
    project.write_config("""
        [store]
        path = "../state/digest.sqlite3"
        [summary]
        workers = 0
        [[sources]]
        name = "wire"
        type = "files"
        path = "../wire"
        [[sources]]
        name = "herald"
        type = "files"
        path = "../herald"
        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["json"]
    """)
    result = invoke(project, "run", now="2026-11-27T07:00:00+00:00")
    assert result.returncode == 0, result.stdout + result.stderr
    folder = project.out / "daily"
    stories = json.loads((folder / "2026-11-27T070000Z.json").read_text(encoding="utf-8"))["stories"]
    leads = {story["title"] for story in stories}
    also = {a["title"] for story in stories for a in story["articles"]} - leads
    assert len(stories) == 3 and len(also) == 1  # one event from two sources: one story
    for page in ("index.html", "months/2026-11.html"):
        edition = lxml.html.parse(str(folder / page)).getroot().find_class("edition")[0]
        assert edition.find_class("meta")[0].text_content() == "3 stories", page
        assert {li.text_content() for li in edition.iter("li")} == leads, page
    summary = parsed_feed(folder / "feed.atom").entries[0].summary
    assert summary.startswith("3 stories; ") and set(summary.split("; ")[1:]) == leads

    before = archive_files(project)
    assert "digest daily: 0 files written" in invoke(project, "archive", "rebuild").stdout
    with sqlite3.connect(project.root / "state" / "digest.sqlite3") as db:
        db.execute("UPDATE editions SET stories = NULL")  # as if made before the grouping was kept
    assert "digest daily: 0 files written" in invoke(project, "archive", "rebuild").stdout
    assert archive_files(project) == before


def test_older_editions_live_in_rfc5005_archive_documents_and_an_edition_rewrites_few_files(project: Project) -> None:
    set_digest_keys(project, "feed_size = 2")
    config = config_module.load(project.config)
    start = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
    for day in range(5):
        add_seed(project, f"2026-11-{27 + day:02d}" if day < 4 else "2026-12-01")
        pipeline.run(config, start + timedelta(days=day))
    folder = project.out / "daily"
    feed = parsed_feed(folder / "feed.atom")
    assert len(feed.entries) == 2
    seen = {entry.id for entry in feed.entries}
    document, archives = folder / "feed.atom", 0
    while True:
        root = lxml.etree.parse(str(document)).getroot()
        prev = [link.get("href") for link in root.findall(f"{ATOM}link") if link.get("rel") == "prev-archive"]
        if not prev:
            break
        document = (document.parent / prev[0]).resolve()
        archives += 1
        archived = lxml.etree.parse(str(document)).getroot()
        assert archived.find(f"{HISTORY}archive") is not None  # RFC 5005 section 4
        current = [link.get("href") for link in archived.findall(f"{ATOM}link") if link.get("rel") == "current"]
        assert (document.parent / current[0]).resolve() == (folder / "feed.atom").resolve()
        assert archived.find(f"{ATOM}id").text == root.find(f"{ATOM}id").text
        seen.update(entry.id for entry in parsed_feed(document).entries)
    assert archives == 2 and len(seen) == 5  # every edition reachable by walking prev-archive
    assert (folder / "months" / "2026-12.html").is_file() and (folder / "months" / "2026-11.html").is_file()

    stats = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    add_seed(project, "2026-12-02")
    pipeline.run(config, start + timedelta(days=5))
    changed = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and stats.get(p) != (p.stat().st_ino, p.stat().st_mtime_ns)
    )
    new = [name for name in changed if name.startswith(("2026-12-02", "editions/2026-12-02"))]
    assert sorted(set(changed) - set(new)) == ["archive/3.atom", "feed.atom", "index.html", "months/2026-12.html"]
    assert sorted(new) == [
        "2026-12-02T070000Z.html",
        "2026-12-02T070000Z.md",
        "2026-12-02T070000Z.txt",
        "editions/2026-12-02T070000Z.html",
    ]
    assert not [p for p in folder.rglob(".partial-*")]


def _wait_for(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"serve exited {server.returncode}: {server.stderr.read() if server.stderr else ''}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("serve never answered")


def serve(project: Project, now: str) -> Iterator[str]:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment.update(PYTHONPATH=str(REPO), DIGEST_NOW=now)
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(project.config), "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=project.root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        assert server.wait(10) == 0


def served(project: Project, now: str, *paths: str) -> list[httpx.Response]:
    """GET each of `paths` from digest serve's application in this process (no listening socket): its answers are
    proved here, the real `digest serve` process by the feed test above."""
    from digest.web import create_app

    app = create_app(config_module.load(project.config), lambda: datetime.fromisoformat(now))

    async def get_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(get_all())


def raw_get(address: str, path: str) -> tuple[int, bytes]:
    """GET `path` byte for byte (http.client keeps `..`, as an attacker's client would)."""
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.long
def test_serve_answers_the_feed_then_304_refuses_traversal_and_reports_health(three_editions: Project) -> None:
    for address in serve(three_editions, "2026-11-29T07:05:00+00:00"):
        base = f"http://{address}"
        feed = httpx.get(f"{base}/daily/feed.atom")
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        assert feed.content == (three_editions.out / "daily" / "feed.atom").read_bytes()
        again = httpx.get(f"{base}/daily/feed.atom", headers={"If-None-Match": feed.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        since = httpx.get(f"{base}/daily/feed.atom", headers={"If-Modified-Since": feed.headers["last-modified"]})
        assert since.status_code == 304
        index = httpx.get(f"{base}/daily/")
        assert index.status_code == 200 and "2026-11-29 07:00" in index.text
        assert httpx.get(f"{base}/daily/editions/2026-11-27T070000Z.html").status_code == 200
        for path in (
            "/../",
            "/daily/../../config/digest.toml",
            "/daily/%2e%2e/%2e%2e/config/digest.toml",
            "/daily/..%2f..%2fconfig/digest.toml",
            "/daily/../../../../etc/passwd",
        ):
            status, body = raw_get(address, path)
            assert status == 404, path
            assert b"[store]" not in body and b"root:" not in body
        healthy = httpx.get(f"{base}/healthz")
        assert healthy.status_code == 200 and healthy.json()["ok"] is True
    for address in serve(three_editions, "2026-12-04T07:05:00+00:00"):  # nothing ran for five days
        late = httpx.get(f"http://{address}/healthz")
        assert late.status_code == 503
        reason = late.json()["reason"]
        assert "source seeds: last polled 2026-11-29T07:00:00+00:00" in reason and "digest daily" in reason


def test_a_broken_store_makes_healthz_503_with_the_reason(three_editions: Project) -> None:
    store = three_editions.root / "state" / "digest.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    store.write_bytes(b"this is not a database" * 100)
    broken, feed = served(three_editions, "2026-11-29T07:05:00+00:00", "/healthz", "/daily/feed.atom")
    assert broken.status_code == 503
    assert broken.json()["reason"].startswith("store unusable")
    assert feed.status_code == 200  # the archive is still served


def test_healthz_before_anything_ran_is_503_and_makes_no_store(project: Project) -> None:
    answer, archive = served(project, "2026-11-29T07:05:00+00:00", "/healthz", "/daily/")
    assert answer.status_code == 503 and "nothing has run" in answer.json()["reason"]
    assert archive.status_code == 404  # no archive yet
    assert not (project.root / "state" / "digest.sqlite3").exists()


def test_serve_with_a_bad_address_is_a_usage_error(project: Project) -> None:
    result = project.cli("serve", "--listen", "nowhere")  # a subprocess: a regression would serve forever
    assert result.returncode == 2 and "HOST:PORT" in result.stderr and "Traceback" not in result.stderr


def test_check_says_where_the_archive_goes(project: Project) -> None:
    set_digest_keys(project, f'base_url = "{BASE}"\nfeed_size = 50')
    result = invoke(project, "check")
    assert result.returncode == 0, result.stderr
    assert f"archive and Atom feed of the last 50 editions at {BASE}" in result.stdout


def test_bad_archive_keys_name_the_key(project: Project) -> None:
    set_digest_keys(project, 'base_url = "ftp://example.org/x"')
    result = invoke(project, "check")
    assert result.returncode == 2 and "digests[0].base_url" in result.stderr
    set_digest_keys(project, "feed_size = 0")
    result = invoke(project, "check")
    assert result.returncode == 2 and "digests[0].feed_size" in result.stderr


def test_rebuild_of_an_unknown_digest_is_a_usage_error(project: Project) -> None:
    result = invoke(project, "archive", "rebuild", "--digest", "weekly")
    assert result.returncode == 2 and "no digest named 'weekly'" in result.stderr


def test_a_broken_archive_template_is_a_config_error_before_any_edition(project: Project) -> None:
    theme = project.root / "theme"
    theme.mkdir()
    (theme / "archive.html").write_text("<h1>{{ digest.name }}</h1>{{ no_such_thing.count }}\n", encoding="utf-8")
    set_digest_keys(project, 'templates = "../theme"')
    for command in (["check"], ["run"]):
        result = invoke(project, *command)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "digests[0] (daily)" in result.stderr and "archive.html" in result.stderr and "no_such_thing" in result.stderr
    assert not (project.out / "daily").exists()  # no edition was made


def test_feed_content_keeps_the_body_escaped_drops_styles_and_scripts_and_makes_links_absolute() -> None:
    """The streamed entry content: what a reader shows, never the page's head, scripts or comments."""
    from digest.archive import feed_content

    page = (
        '<!DOCTYPE html><html><head><title>T</title><style>a{}</style><link rel="stylesheet" href="a.css"></head>'
        '<body><!-- note --><div class="page"><script>var x = "<b>";</script><h1>Tom &amp; Jerry &lt;3</h1>'
        '<a href="../index.html" title=\'say "hi"\'>All</a><img src="x.png" alt=""><br/><noscript>no</noscript>'
        "<p>text</p></div></body></html>"
    )
    content = "".join(feed_content([page], "https://e.org/d/editions/x.html"))
    assert content == (
        '<div class="page"><h1>Tom &amp; Jerry &lt;3</h1><a href="https://e.org/d/index.html" '
        'title="say &quot;hi&quot;">All</a><img src="https://e.org/d/editions/x.png" alt=""><br><p>text</p></div>\n'
    )
    assert lxml.html.fragment_fromstring(content).text_content() == "Tom & Jerry <3Alltext"
    assert 'href="../index.html"' in "".join(feed_content([page], ""))  # relative without base_url
    # The page streamed in small pieces, cut anywhere (inside tags, entities, the script), gives the same content.
    for size in (1, 7, 64):
        pieces = [page[start : start + size] for start in range(0, len(page), size)]
        assert "".join(feed_content(pieces, "https://e.org/d/editions/x.html")) == content
    assert (
        "".join(feed_content(["  <body>\n <p>a</p>\n", "  \n", " <p>b</p>  ", "\n </body>"], "")) == "<p>a</p>\n  \n <p>b</p>\n"
    )
