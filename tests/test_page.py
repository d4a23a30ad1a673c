"""The page source: one URL watched; a changed main text is a new article version."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from conftest import REPO, Project
from digest.config import Duration, FetchConfig, PageSourceConfig
from digest.errors import ExtractError
from digest.fetch import Fetcher
from digest.models import Article
from digest.sources import PollContext
from digest.sources.page import PageSource
from tests.httpserver import LocalServer, RequestHandler
from tests.test_feed import page_html
from tests.inprocess import invoke

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
NOTICE = "\n\n".join(
    f"Notice {i}: the library on Elm Street extends its opening hours on Thursdays until nine in the evening." for i in range(8)
)


@pytest.fixture
def fetcher() -> Fetcher:
    with Fetcher(FetchConfig(timeout=Duration(seconds=2), allow_private=True, per_host_delay=Duration(0))) as shared:
        yield shared


def poll(url: str, fetcher: Fetcher, memo: dict[str, str]) -> list[Article]:
    source = PageSource(PageSourceConfig(name="library", url=url))
    return list(source.poll(PollContext(now=NOW, first_poll=not memo, memo=memo, fetcher=fetcher)))


def test_unchanged_page_yields_once_then_a_changed_text_is_a_new_version(http_server: LocalServer, fetcher: Fetcher) -> None:
    url = http_server.serve("/notices", page_html("Library notices", NOTICE))
    memo: dict[str, str] = {}
    [first] = poll(url, fetcher, memo)
    assert first.title == "Library notices" and first.body.startswith("Notice 0:") and first.identity == url
    assert poll(url, fetcher, memo) == []
    assert http_server.requests_to("/notices")[1].headers["if-none-match"] == memo["etag"]
    http_server.serve(
        "/notices", page_html("Library notices", NOTICE + "\n\nNew: the reading room closes for repairs in January.")
    )
    [second] = poll(url, fetcher, memo)
    assert second.identity == first.identity and second.version != first.version
    assert "reading room closes" in second.body


def test_changed_boilerplate_alone_is_not_a_new_version(http_server: LocalServer, fetcher: Fetcher) -> None:
    def page(request: RequestHandler) -> None:  # no validators, and a footer that changes on every request
        footer = f"<footer>Served {len(http_server.requests)} times</footer>"
        request.respond(200, page_html("Library notices", NOTICE).replace("</body>", footer + "</body>").encode(), "text/html")

    url = http_server.route("/dynamic", page)
    memo: dict[str, str] = {}
    assert len(poll(url, fetcher, memo)) == 1
    assert poll(url, fetcher, memo) == []


def test_page_without_text_is_one_clear_line(http_server: LocalServer, fetcher: Fetcher) -> None:
    url = http_server.serve("/empty", "<html><body><script>app()</script></body></html>")
    with pytest.raises(ExtractError) as caught:
        poll(url, fetcher, {})
    assert str(caught.value).startswith(f"{url}: ") and "\n" not in str(caught.value)


def test_a_changed_page_reaches_the_next_edition(project: Project, http_server: LocalServer) -> None:
    url = http_server.serve("/notices", page_html("Library notices", NOTICE))
    project.write_config(f"""
        [store]
        path = "../state/digest.sqlite3"
        [fetch]
        allow_private = true
        [[sources]]
        name = "library"
        type = "page"
        url = "{url}"
        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["txt"]
        """)
    assert invoke(project, "run").returncode == 0
    again = json.loads(invoke(project, "run", "--json", now="2026-11-27T08:00:00+00:00").stdout)
    assert again["sources"][0]["new_articles"] == 0 and again["editions"][0]["made"] is False
    http_server.serve(
        "/notices", page_html("Library notices", "The library reopens on Monday after the flood repairs.\n\n" + NOTICE)
    )
    third = json.loads(invoke(project, "run", "--json", now="2026-11-27T09:00:00+00:00").stdout)
    assert third["sources"][0]["new_articles"] == 1 and third["editions"][0]["articles"] == 1
    editions = sorted((project.out / "daily").glob("*.txt"))
    assert len(editions) == 2 and "Library notices" in editions[1].read_text()


def test_summarize_a_url_fetches_it_through_the_guarded_fetcher(project: Project, http_server: LocalServer) -> None:
    url = http_server.serve("/notices", page_html("Library notices", NOTICE))
    refused = invoke(project, "summarize", url)  # the shipped config does not allow private addresses
    assert refused.returncode == 1 and refused.stderr.strip().endswith(
        "is a loopback address (set [fetch] allow_private = true to allow)"
    )
    project.write_config(project.config.read_text() + "\n[fetch]\nallow_private = true\n")
    allowed = invoke(project, "summarize", url)
    assert allowed.returncode == 0, allowed.stderr
    assert "Notice" in allowed.stdout and "opening hours" in allowed.stdout


def test_a_config_of_pages_only_never_loads_the_feed_parser() -> None:
    script = (
        "import sys\nfrom digest.config import PageSourceConfig\nfrom digest.sources import open_source\n"
        "open_source(PageSourceConfig(name='p', url='http://example.org/'))\nprint('feedparser' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
