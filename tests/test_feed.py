"""The feed source against real feeds served on loopback, parsed by the real fetcher."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from digest.config import Duration, FeedSourceConfig, FetchConfig
from digest.errors import ExtractError
from digest.fetch import Fetcher
from digest.models import Article
from digest.sources import PollContext
from digest.sources.feed import FeedSource, feed_items, is_teaser, parse_feed
from digest.sources.web import canonical_link
from conftest import Project
from tests.httpserver import LocalServer, billion_laughs, endless, gzip_bomb, hang, redirect, short_body, status, trickle
from tests.inprocess import invoke

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
LONG = " ".join(f"Sentence number {i} of the full article says something of substance." for i in range(40))


def rss(items: list[dict[str, str]], extra: str = "", language: str = "en") -> str:
    parts = []
    for item in items:
        fields = "".join(f'<guid isPermaLink="false">{v}</guid>' if k == "guid" else f"<{k}>{v}</{k}>" for k, v in item.items())
        parts.append(f"<item>{fields}</item>")
    return f'<?xml version="1.0"?>{extra}<rss version="2.0"><channel><title>T</title><link>http://example.org/</link>{f"<language>{language}</language>" if language else ""}{"".join(parts)}</channel></rss>'


def page_html(title: str, body: str, lang: str = "en", author: str = "Page Author") -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    return (
        f'<html lang="{lang}"><head><title>{title}</title><meta name="author" content="{author}">'
        f'<meta property="article:published_time" content="2026-11-26T08:00:00Z"></head>'
        f"<body><nav>Home | About</nav><article><h1>{title}</h1>{paragraphs}</article><footer>(c) site</footer></body></html>"
    )


@pytest.fixture
def fetcher() -> Fetcher:
    with Fetcher(FetchConfig(timeout=Duration(seconds=2), allow_private=True, per_host_delay=Duration(0))) as shared:
        yield shared


def poll(
    source: FeedSource, fetcher: Fetcher, memo: dict[str, str] | None = None, first: bool = False, now: datetime = NOW
) -> list[Article]:
    context = PollContext(now=now, first_poll=first, memo=memo if memo is not None else {}, fetcher=fetcher)
    return list(source.poll(context))


def feed_source(url: str, **settings: object) -> FeedSource:
    return FeedSource(FeedSourceConfig(name="news", url=url, **settings))  # type: ignore[arg-type]


def test_rss_entries_become_articles(http_server: LocalServer, fetcher: Fetcher) -> None:
    date = format_datetime(NOW - timedelta(hours=1))
    url = http_server.serve(
        "/rss",
        rss(
            [
                {
                    "title": "First &amp; best",
                    "link": "http://example.org/a?utm_source=x&amp;id=3#top",
                    "guid": "urn:1",
                    "pubDate": date,
                    "description": LONG,
                }
            ]
        ),
        "application/rss+xml",
    )
    [article] = poll(feed_source(url), fetcher)
    assert article.identity == "urn:1" and article.title == "First & best"
    assert article.url == "http://example.org/a?id=3#top" and article.language == "en"
    assert article.published == NOW - timedelta(hours=1) and article.body.startswith("Sentence number 0")
    assert not article.backfilled


def test_atom_and_json_feed(http_server: LocalServer, fetcher: Fetcher) -> None:
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr"><title>A</title>'
        '<entry><id>tag:a,2026:1</id><title type="html">Un &lt;b&gt;titre&lt;/b&gt;</title><link href="/post/1"/>'
        f'<updated>2026-11-27T08:00:00Z</updated><author><name>Ann</name></author><content type="html">&lt;p&gt;{LONG}&lt;/p&gt;</content></entry></feed>'
    )
    jsonfeed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "language": "de",
        "items": [
            {
                "id": 7,
                "url": "https://example.org/j?utm_medium=feed",
                "title": "Json item",
                "content_html": f"<p>{LONG}</p><script>x()</script>",
                "date_published": "2026-11-27T07:00:00Z",
                "authors": [{"name": "Jo"}],
            }
        ],
    }
    [entry] = poll(feed_source(http_server.serve("/atom", atom, "application/atom+xml")), fetcher)
    assert (entry.identity, entry.title, entry.url, entry.author, entry.language) == (
        "tag:a,2026:1",
        "Un titre",
        f"{http_server.url('/post/1')}",
        "Ann",
        "fr",
    )
    [item] = poll(feed_source(http_server.serve("/json", json.dumps(jsonfeed), "application/feed+json")), fetcher)
    assert (item.identity, item.url, item.author, item.language) == ("7", "https://example.org/j", "Jo", "de")
    assert "x()" not in item.body and item.published == datetime(2026, 11, 27, 7, tzinfo=timezone.utc)


def test_rss1_rdf() -> None:
    rdf = (
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
        '<channel rdf:about="http://example.org/"><title>R</title></channel>'
        '<item rdf:about="http://example.org/r1"><title>RDF item</title><link>http://example.org/r1</link><description>Text.</description></item></rdf:RDF>'
    )
    [entry] = parse_feed(rdf.encode(), "http://example.org/rdf")
    assert entry.title == "RDF item" and entry.link == "http://example.org/r1"


def test_an_entry_with_a_broken_link_keeps_the_feed_readable() -> None:
    jsonfeed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"id": "bad", "url": "http://[::1", "title": "Broken link", "content_text": "Text."},
            {"id": "good", "url": "https://example.org/g", "title": "Good", "content_text": "More text."},
        ],
    }
    bad, good = parse_feed(json.dumps(jsonfeed).encode(), "http://example.org/feed.json", "application/feed+json")
    assert (bad.title, bad.link) == ("Broken link", None)
    assert good.link == "https://example.org/g"


def test_an_entry_dated_year_0_is_undated_and_the_feed_still_reads() -> None:
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        "<entry><id>a</id><title>Year zero</title><updated>0000-01-01T00:00:00Z</updated><summary>Text.</summary></entry>"
        "<entry><id>b</id><title>Today</title><updated>2026-11-27T08:00:00Z</updated><summary>More.</summary></entry></feed>"
    )
    zero, today = parse_feed(atom.encode(), "http://example.org/atom")
    assert zero.published is None and today.published == datetime(2026, 11, 27, 8, tzinfo=timezone.utc)
    jsonfeed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"id": "late", "content_text": "Text.", "date_published": "9999-12-31T23:59:59-12:00"},
            {"id": "cet", "content_text": "More.", "date_published": "2026-11-27T09:00:00+01:00"},
        ],
    }
    late, cet = parse_feed(json.dumps(jsonfeed).encode(), "http://example.org/feed.json", "application/feed+json")
    assert late.published is None  # past the year 9999 in UTC: the store could not keep it
    assert cet.published == datetime(2026, 11, 27, 8, tzinfo=timezone.utc)


def test_identity_falls_back_to_canonical_link_then_hash() -> None:
    body = rss(
        [
            {"title": "Linked", "link": "HTTP://Example.org:80/x?b=2&amp;utm_campaign=c&amp;fbclid=z#frag"},
            {"title": "Bare", "description": "No link or guid."},
        ]
    )
    linked, bare = parse_feed(body.encode(), "http://example.org/feed")
    assert linked.identity == "http://example.org/x?b=2#frag"  # the fragment is part of the identity
    assert (
        bare.identity.startswith("sha256:")
        and bare.identity == list(parse_feed(body.encode(), "http://example.org/feed"))[1].identity
    )
    assert canonical_link("javascript:alert(1)") is None


def test_second_poll_sends_validators_and_gets_nothing_new(http_server: LocalServer, fetcher: Fetcher) -> None:
    url = http_server.serve(
        "/rss", rss([{"title": "One", "guid": "1", "description": LONG, "pubDate": format_datetime(NOW)}]), "application/rss+xml"
    )
    memo: dict[str, str] = {}
    assert len(poll(feed_source(url), fetcher, memo)) == 1
    assert poll(feed_source(url), fetcher, memo) == []
    second = http_server.requests_to("/rss")[1].headers
    assert second["if-none-match"] == memo["etag"] and second["if-modified-since"] == memo["last_modified"]


def test_changed_feed_yields_only_new_entries(http_server: LocalServer, fetcher: Fetcher) -> None:
    one = {"title": "One", "guid": "1", "description": LONG}
    two = {"title": "Two", "guid": "2", "description": LONG}
    memo: dict[str, str] = {}
    http_server.serve("/rss", rss([one]))
    assert [a.identity for a in poll(feed_source(http_server.url("/rss")), fetcher, memo)] == ["1"]
    http_server.serve("/rss", rss([two, one]))
    assert [a.identity for a in poll(feed_source(http_server.url("/rss")), fetcher, memo)] == ["2"]


def test_first_poll_backfills_old_and_undated_entries(http_server: LocalServer, fetcher: Fetcher) -> None:
    items = [
        {"title": "Fresh", "guid": "fresh", "pubDate": format_datetime(NOW - timedelta(hours=3)), "description": LONG},
        {"title": "Old", "guid": "old", "pubDate": format_datetime(NOW - timedelta(days=3)), "description": LONG},
        {"title": "Undated", "guid": "undated", "description": LONG},
    ]
    url = http_server.serve("/rss", rss(items))
    first = {a.identity: a.backfilled for a in poll(feed_source(url), fetcher, first=True)}
    assert first == {"fresh": False, "old": True, "undated": True}
    assert not any(a.backfilled for a in poll(feed_source(url, backfill=Duration(days=7)), fetcher, first=False))


def test_teaser_gets_the_linked_pages_full_text(http_server: LocalServer, fetcher: Fetcher) -> None:
    body = "The council voted on Tuesday to rebuild the old bridge.\n\n" + LONG
    http_server.serve("/story", page_html("Bridge to be rebuilt", body, lang="nl"))
    url = http_server.serve(
        "/rss",
        rss(
            [{"guid": "s1", "link": http_server.url("/story"), "description": "The council voted on Tuesday to… Read more"}],
            language="",
        ),
    )
    [article] = poll(feed_source(url), fetcher)
    assert (
        article.body.startswith("The council voted on Tuesday to rebuild the old bridge.")
        and "Sentence number 39" in article.body
    )
    assert "Home | About" not in article.body
    # the feed gave no title, author, date or language: the page's are used
    assert (article.title, article.author, article.language) == ("Bridge to be rebuilt", "Page Author", "nl")
    assert article.published == datetime(2026, 11, 26, tzinfo=timezone.utc)


def test_a_feed_extracts_its_teaser_pages_in_its_own_work_slot(http_server: LocalServer, fetcher: Fetcher) -> None:
    """A run parses only a few fetched feeds at once (flat memory); a feed holding a slot must not
    wait for a second one to extract its linked pages."""
    http_server.serve(
        "/story", page_html("Bridge to be rebuilt", "The council voted on Tuesday to rebuild the old bridge.\n\n" + LONG)
    )
    url = http_server.serve(
        "/rss", rss([{"guid": "s1", "link": http_server.url("/story"), "description": "The council voted… Read more"}])
    )
    slots = threading.BoundedSemaphore(1)
    context = PollContext(now=NOW, first_poll=False, memo={}, fetcher=fetcher, work_slots=slots)
    found: list[Article] = []
    polling = threading.Thread(target=lambda: found.extend(feed_source(url).poll(context)), daemon=True)
    polling.start()
    polling.join(timeout=20)
    assert not polling.is_alive(), "the feed waited for a second work slot"
    assert [a.title for a in found] == ["Bridge to be rebuilt"] and "Sentence number 39" in found[0].body
    assert slots.acquire(blocking=False)  # and it gave its slot back


def test_full_text_never_and_always(http_server: LocalServer, fetcher: Fetcher) -> None:
    http_server.serve("/story", page_html("Story", LONG))
    feed = rss([{"title": "Teaser", "guid": "t", "link": http_server.url("/story"), "description": "Short…"}])
    url = http_server.serve("/rss", feed)
    [never] = poll(feed_source(url, full_text="never"), fetcher)
    assert never.body == "Short…" and http_server.requests_to("/story") == []
    long_feed = http_server.serve(
        "/long",
        rss(
            [
                {
                    "title": "Long",
                    "guid": "l",
                    "link": http_server.url("/story"),
                    "description": LONG[:900] + " and more words " * 80,
                }
            ]
        ),
    )
    poll(feed_source(long_feed, full_text="auto"), fetcher)
    assert http_server.requests_to("/story") == []
    poll(feed_source(long_feed, full_text="always"), fetcher)
    assert len(http_server.requests_to("/story")) == 1


def test_full_text_failure_keeps_the_teaser(http_server: LocalServer, fetcher: Fetcher) -> None:
    http_server.route("/broken", status(500, b"no"))
    url = http_server.serve(
        "/rss",
        rss([{"title": f"T{i}", "guid": str(i), "link": http_server.url("/broken"), "description": "Teaser…"} for i in range(6)]),
    )
    articles = poll(feed_source(url), fetcher)
    assert [a.body for a in articles] == ["Teaser…"] * 6
    assert len(http_server.requests_to("/broken")) == 3  # gives up on a broken site after three failures


def test_billion_laughs_is_refused_quickly(http_server: LocalServer, fetcher: Fetcher) -> None:
    url = http_server.serve("/bomb", rss([{"title": "&lol9;", "guid": "b"}], extra=billion_laughs("rss")))
    started = time.process_time()  # CPU, which an expanding entity burns; wall time is the machine's load
    with pytest.raises(ExtractError, match="possible XML bomb"):
        poll(feed_source(url), fetcher)
    assert time.process_time() - started < 2


def test_a_deep_chain_of_entities_is_refused_in_one_line() -> None:
    chain = "".join(f'<!ENTITY e{i} "&e{i + 1};">' for i in range(3000)) + '<!ENTITY e3000 "x">'
    body = f'<?xml version="1.0"?><!DOCTYPE rss [{chain}]><rss version="2.0"><channel><title>&e0;</title></channel></rss>'
    with pytest.raises(ExtractError, match="nest more than 50 deep"):
        list(parse_feed(body.encode(), "http://example.org/f"))


def test_small_declared_entities_still_work() -> None:
    body = '<!DOCTYPE rss [\n<!ENTITY id "tag:example.com,">\n]>\n<rss version="2.0"><channel><item><guid isPermaLink="false">&id;2006</guid><title>x</title></item></channel></rss>'
    assert [e.identity for e in parse_feed(body.encode(), "http://example.org/f")] == ["tag:example.com,2006"]


def test_not_a_feed_is_one_clear_line(http_server: LocalServer, fetcher: Fetcher) -> None:
    url = http_server.serve("/html", "<html><body><p>unclosed")
    with pytest.raises(ExtractError) as caught:
        poll(feed_source(url), fetcher)
    assert str(caught.value).startswith(f"{url}: not an RSS, Atom or JSON feed") and "\n" not in str(caught.value)
    with pytest.raises(ExtractError, match="not a JSON Feed"):
        list(parse_feed(b'{"hello": 1}', "http://example.org/j"))


def test_titles_and_links_are_cleaned(http_server: LocalServer, fetcher: Fetcher) -> None:
    url = http_server.serve(
        "/rss",
        rss([{"title": "Bad\x1b[31m title\u202e\x07 here", "guid": "x", "link": "javascript:alert(1)", "description": LONG}]),
    )
    [article] = poll(feed_source(url), fetcher)
    assert article.title == "Bad [31m title here" and article.url is None


def test_teaser_detection() -> None:
    assert is_teaser("A few words only.")
    assert is_teaser(LONG + " Continue reading »")
    assert not is_teaser(LONG)


# End to end: the real CLI against well-behaved and hostile feeds on loopback.

E2E_NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)  # conftest's DIGEST_NOW
GOOD_SENTENCES = [
    "Harbour officials in Lisbon confirmed that the new ferry terminal opens to passengers next spring.",
    "The terminal will handle twelve thousand travellers a day once every berth is finished.",
    "Engineers spent three years reinforcing the quay against winter storms.",
    "City planners expect the project to cut river traffic delays by a third.",
    "Local businesses near the quay say they are preparing for the extra visitors.",
]


def hostile_routes(server: LocalServer, busy: LocalServer) -> dict[str, str]:
    """Name -> URL of each misbehaving feed the issue lists; the 429 on its own
    server, since it holds back every request to its host."""
    server.route("/loop", redirect("/loop"))
    return {
        "error500": server.route("/500", status(500, b"broken")),
        "busy429": busy.route("/429", status(429, headers={"Retry-After": "3600"})),
        "silent": server.route("/silent", hang),
        "trickle": server.route("/trickle", trickle),
        "loop": server.url("/loop"),
        "gzipbomb": server.route("/gzipbomb", gzip_bomb()),
        "endless": server.route("/endless", endless),
        "short": server.route("/short", short_body(b"<rss version='2.0'><channel>")),
        "xmlbomb": server.serve("/xmlbomb", rss([{"title": "&lol9;", "guid": "b"}], extra=billion_laughs("rss"))),
    }


def e2e_config(project: Project, sources: dict[str, str], allow_private: bool = True) -> None:
    entries = "".join(f'\n[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{url}"\n' for name, url in sources.items())
    project.write_config(
        f"""
        [store]
        path = "../state/digest.sqlite3"

        [fetch]
        timeout = "3s"
        max_bytes = 1048576
        allow_private = {str(allow_private).lower()}
        per_host_delay = "0s"
        per_host_concurrency = 16
        concurrency = 16

        [[sources]]
        name = "seeds"
        type = "files"
        path = "../seeds"
        """
        + entries.replace("\n", "\n        ")
        + """
        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["txt", "html"]
        """
    )


def digest_text(project: Project, suffix: str = ".txt") -> str:
    return "\n".join(p.read_text() for p in sorted((project.out / "daily").glob(f"*{suffix}")))


@pytest.mark.long
def test_hostile_feeds_are_reported_and_the_good_ones_reach_the_digest(project: Project, http_server: LocalServer) -> None:
    good = http_server.serve(
        "/good",
        rss(
            [
                {
                    "title": "Lisbon ferry terminal opens in spring",
                    "guid": "g1",
                    "link": "http://example.org/ferry",
                    "pubDate": format_datetime(E2E_NOW - timedelta(hours=2)),
                    "description": " ".join(GOOD_SENTENCES * 6),
                }
            ]
        ),
    )
    busy = LocalServer().start()
    hostile = hostile_routes(http_server, busy)
    e2e_config(project, {"good": good, **hostile})
    try:
        result = project.cli("run", "--json", timeout=60)  # a source that waited past its deadline would hang here
        requests_429 = len(busy.requests_to("/429"))
        again = project.cli("run", "--json", now="2026-11-27T07:30:00+00:00", timeout=60)
        asked_again = len(busy.requests_to("/429")) - requests_429
    finally:
        busy.stop()
    assert result.returncode == 1, result.stderr
    report = {s["name"]: s for s in json.loads(result.stdout)["sources"]}
    assert report["good"]["error"] == "" and report["good"]["new_articles"] == 1
    assert report["seeds"]["new_articles"] == 1
    expected = {
        "error500": "HTTP 500",
        "busy429": "retry after 3600s",
        "silent": "no complete response within 3s",
        "trickle": "no complete response within 3s",
        "loop": "more than 5 redirects",
        "gzipbomb": "larger than max_bytes",
        "endless": "larger than max_bytes",
        "short": "broken response",
        "xmlbomb": "possible XML bomb",
    }
    for name, words in expected.items():
        assert words in report[name]["error"], (name, report[name])
        assert report[name]["error"].startswith("http://127.0.0.1:") and "\n" not in report[name]["error"]
    assert report["busy429"]["waiting_until"].startswith("2026-11-27T08:00")
    # Concurrently: the two feeds that never finish were both asked before the first one's 3 s deadline could pass
    # (arrival times, not the runs' length, which the machine's load stretches).
    [silent] = [r.at for r in http_server.requests_to("/silent")[:1]]
    [trickled] = [r.at for r in http_server.requests_to("/trickle")[:1]]
    assert abs(silent - trickled) < 3
    text = digest_text(project)
    assert "Lisbon ferry terminal opens in spring" in text and "Putin lays out firm conditions" in text
    assert "Traceback" not in result.stderr

    # A second run: the unchanged feed is asked conditionally and has nothing new;
    # the 429 source is not asked again before its Retry-After.
    second = {s["name"]: s for s in json.loads(again.stdout)["sources"]}
    assert second["good"]["new_articles"] == 0 and second["good"]["error"] == ""
    assert "if-none-match" in http_server.requests_to("/good")[-1].headers
    assert requests_429 == 1 and asked_again == 0 and second["busy429"]["error"] == ""
    assert json.loads(again.stdout)["editions"][0]["made"] is False

    status = invoke(project, "status")
    assert "source silent (feed)" in status.stdout and "failing (2x)" in status.stdout
    assert "source busy429 (feed)" in status.stdout and "next poll not before 2026-11-27T08:00" in status.stdout


def test_a_feed_whose_first_poll_failed_still_does_not_flood_the_digest(project: Project, http_server: LocalServer) -> None:
    url = http_server.route("/later", status(500))
    e2e_config(project, {"later": url})
    failed = invoke(project, "run", "--json")
    assert failed.returncode == 1 and "HTTP 500" in json.loads(failed.stdout)["sources"][1]["error"]
    http_server.serve(
        "/later",
        rss(
            [
                {
                    "title": "Harbour crane collapses in a storm",
                    "guid": "old",
                    "description": "A storm toppled a crane. " + LONG,
                    "pubDate": format_datetime(E2E_NOW - timedelta(days=30)),
                },
                {
                    "title": "Night trains return to the coast line",
                    "guid": "new",
                    "description": "Night trains are back. " + LONG,
                    "pubDate": format_datetime(E2E_NOW),
                },
            ]
        ),
    )
    result = invoke(project, "run", "--json", now="2026-11-27T08:00:00+00:00")
    assert result.returncode == 0, result.stderr
    text = digest_text(project)
    assert "Night trains return to the coast line" in text
    assert "Harbour crane collapses" not in text  # older than the backfill window: stored as seen, in no edition


def test_private_address_refused_by_default_and_the_rest_still_delivered(project: Project, http_server: LocalServer) -> None:
    url = http_server.serve(
        "/good", rss([{"title": "Internal", "guid": "i", "description": LONG, "pubDate": format_datetime(E2E_NOW)}])
    )
    e2e_config(project, {"internal": url}, allow_private=False)
    result = invoke(project, "run", "--json")
    report = {s["name"]: s for s in json.loads(result.stdout)["sources"]}
    assert result.returncode == 1
    assert (
        report["internal"]["error"]
        == f"{url}: refused: 127.0.0.1 is a loopback address (set [fetch] allow_private = true to allow)"
    )
    assert http_server.requests == []
    assert "Putin lays out firm conditions" in digest_text(project)


def test_teaser_feed_gives_summaries_of_the_linked_pages(project: Project, http_server: LocalServer) -> None:
    page_sentences = [
        "The regional rail operator will replace its entire diesel fleet with battery trains by 2030.",
        "Forty new trains were ordered from a factory in Salzgitter at a cost of nine hundred million euros.",
        "Battery trains recharge under the short electrified sections near the main stations.",
        "The operator says the switch will cut the line's carbon emissions by ninety percent.",
        "Passenger groups welcomed the plan but asked for more frequent services on weekends.",
        "The first trains are expected to enter service on the coastal line in late 2027.",
    ]
    http_server.serve("/trains", page_html("Rail operator goes electric", "\n\n".join(page_sentences)))
    url = http_server.serve(
        "/teasers",
        rss(
            [
                {
                    "title": "Rail operator goes electric",
                    "guid": "t1",
                    "link": http_server.url("/trains"),
                    "pubDate": format_datetime(E2E_NOW - timedelta(hours=1)),
                    "description": "The regional rail operator has big plans… Read more",
                }
            ]
        ),
    )
    e2e_config(project, {"teasers": url})
    result = invoke(project, "run")
    assert result.returncode == 0, result.stderr
    summary = " ".join(digest_text(project).split("Rail operator goes electric", 1)[1].split())
    used = [s for s in page_sentences if s in summary]
    assert len(used) >= 2, summary  # the summary is drawn from the page's full text, not the one-line teaser
    assert "big plans" not in summary


def test_an_entry_is_known_by_the_same_identity_before_and_after_it_is_read() -> None:
    """Polls skip the entries they saw by the identity known before reading (the costly part):
    it must be the one the read entry has: GUID, else canonical link, else a hash of its text."""
    items = [
        {"title": "With a GUID", "guid": "urn:1", "description": LONG},
        {"title": "With a link", "link": "http://example.org/story?utm_source=feed", "description": LONG},
        {"title": "With neither", "description": LONG},
    ]
    body = rss(items).encode()
    before = [item.identity for item in feed_items(body, "http://example.org/rss")]
    after = [entry.identity for entry in parse_feed(body, "http://example.org/rss")]
    assert before == after and before[:2] == ["urn:1", "http://example.org/story"] and before[2].startswith("sha256:")
    json_feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {"id": 7, "content_text": LONG},
                {"url": "http://example.org/j?utm_medium=x", "content_text": LONG},
                {"content_text": LONG},
            ],
        }
    ).encode()
    before = [item.identity for item in feed_items(json_feed, "http://example.org/feed.json")]
    assert before == [entry.identity for entry in parse_feed(json_feed, "http://example.org/feed.json")]
    assert before[:2] == ["7", "http://example.org/j"] and before[2].startswith("sha256:")


def test_a_host_label_over_63_characters_costs_only_its_own_link(project: Project, http_server: LocalServer) -> None:
    """Issue 11 item 4: a 70-character host label in an entry's link, a teaser's page link and a redirect
    Location is one line each; the entries after the bad one are stored, on every poll."""
    bad_host = "a" * 70 + ".example"
    published = format_datetime(E2E_NOW - timedelta(hours=1))
    feed = http_server.serve(
        "/feed",
        rss(
            [
                {
                    "title": "Teaser with an impossible link",
                    "guid": "bad",
                    "link": f"http://{bad_host}/story",
                    "pubDate": published,
                    "description": "A short teaser… Read more",
                },
                {
                    "title": "Harbour ferry timetable doubles",
                    "guid": "good",
                    "link": "http://example.org/ferry",
                    "pubDate": published,
                    "description": " ".join(GOOD_SENTENCES * 6),
                },
            ]
        ),
    )
    moved = http_server.route("/moved", redirect(f"http://{bad_host}/feed"))
    e2e_config(project, {"news": feed, "moved": moved})
    result = invoke(project, "run", "--json")
    assert result.returncode == 1, result.stderr
    report = {s["name"]: s for s in json.loads(result.stdout)["sources"]}
    assert report["news"]["error"] == "" and report["news"]["new_articles"] == 2
    assert report["moved"]["error"] == (
        f"http://{bad_host}/feed: not a valid host name (a label is empty or longer than 63 characters)"
    )
    assert "Traceback" not in result.stderr and "IndexError" not in result.stderr
    text = digest_text(project, ".html")
    assert "Harbour ferry timetable doubles" in text and "Teaser with an impossible link" in text
    assert f"{bad_host}/story" not in text  # the link that cannot be looked up is dropped, the entry kept
    assert "moved</strong>, failing since" in text  # the redirect's error is named in the problems box


def test_entity_references_before_a_cdata_section_are_counted() -> None:
    """Issue 11 item 19: a CDATA section's closing `]]>` came after the DTD's `]>`, so references placed
    before it went uncounted; 2,000 references to a 1 kB entity (2 MB) must be refused by our guard."""
    declared = '<!DOCTYPE rss [<!ENTITY kb "' + "x" * 1000 + '">]>'
    references = "&kb;" * 2000
    body = (
        f'<?xml version="1.0"?>{declared}<rss version="2.0"><channel><title>T</title>'
        f"<item><guid>a</guid><title>{references}</title><description><![CDATA[<p>fine</p>]]></description></item>"
        "</channel></rss>"
    )
    with pytest.raises(ExtractError, match=r"refused: XML entities would expand the document past 1048576 bytes"):
        list(parse_feed(body.encode(), "http://example.org/f"))
    small = body.replace(references, "&kb;" * 20)  # 20 kB of expansion is an ordinary feed
    assert [len(e.title) for e in parse_feed(small.encode(), "http://example.org/f")] == [20000]


def markdown_as_html(markdown: str) -> str:
    """The Markdown digest as a CommonMark renderer (raw HTML allowed, as in most viewers) shows it."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


def test_a_feed_link_cannot_inject_markup_into_any_digest_format(project: Project, http_server: LocalServer) -> None:
    """Issue 11 item 10: `x>)<img src=...>` closed the Markdown link `[title](<url>)` and put a live tracking
    image into the .md digest. Links are percent-encoded for every format; Markdown is escaped in text."""
    hostile_link = "http://a.example/x>)<img src=http://evil.example/t.gif>"
    published = format_datetime(E2E_NOW - timedelta(hours=1))
    feed = http_server.serve(
        "/feed",
        rss(
            [
                {
                    "title": "Tracking pixel in a link",
                    "guid": "pixel",
                    "link": hostile_link.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
                    "pubDate": published,
                    "description": " ".join(GOOD_SENTENCES * 6),
                },
                {
                    "title": "x](javascript:alert(1)) ![t](http://evil.example/title.gif) &lt;img src=http://evil.example/u.gif&gt;",
                    "guid": "text",
                    "link": 'http://a.example/fine path"onclick="x',
                    "pubDate": published,
                    "description": "1. ![pixel](http://evil.example/s.gif) &lt;script&gt;alert(1)&lt;/script&gt; [click](javascript:alert(1)) "
                    + " ".join(GOOD_SENTENCES * 6),
                },
            ]
        ),
        "application/rss+xml",
    )
    e2e_config(project, {"news": feed}, allow_private=True)
    # both entries carry the same text: with stories grouped, the second would only be named under the first
    project.write_config(
        project.config.read_text().replace('formats = ["txt", "html"]', 'formats = ["txt", "html", "md"]\ngroup_stories = false')
    )
    result = invoke(project, "run")
    assert result.returncode == 0, result.stderr
    markdown, html, text = (digest_text(project, suffix) for suffix in (".md", ".html", ".txt"))
    shown = markdown_as_html(markdown)
    for document in (shown, html.split("<body", 1)[1]):
        assert "<img" not in document and "<script" not in document and 'href="javascript' not in document
        assert 'href="http://a.example/x%3E)%3Cimg%20src=http://evil.example/t.gif%3E"' in document
        assert 'href="http://a.example/fine%20path%22onclick=%22x"' in document
    assert "http://a.example/x%3E)%3Cimg%20src=http://evil.example/t.gif%3E" in text.splitlines()
    assert "http://a.example/fine%20path%22onclick=%22x" in text.splitlines()
    title = "x](javascript:alert(1)) ![t](http://evil.example/title.gif)"  # its <img> is gone with the title's markup
    assert title in text and title in shown  # Markdown's escapes show the text as it was, inert
    assert "[pixel](http://evil.example/s.gif) [click](javascript:alert(1))" in shown


def test_an_entry_nested_100000_levels_deep_costs_well_under_a_second_of_sanitising(
    project: Project, http_server: LocalServer
) -> None:
    """Issue 11 item 11: nh3's cost grows with the square of the nesting depth (100,000 levels took 35 s, outside
    any deadline); elements deeper than 256 levels are flattened first, and the entries are all stored."""
    published = format_datetime(E2E_NOW - timedelta(hours=1))
    deep = "<div>" * 100_000 + "The innermost sentence survives the flattening." + "</div>" * 100_000
    feed = http_server.serve(
        "/deep",
        rss(
            [
                {"title": "Deeply nested entry", "guid": "deep", "pubDate": published, "description": f"<![CDATA[{deep}]]>"},
                {
                    "title": "Harbour ferry timetable doubles",
                    "guid": "good",
                    "pubDate": published,
                    "description": " ".join(GOOD_SENTENCES * 6),
                },
            ]
        ),
        "application/rss+xml",
    )
    e2e_config(project, {"news": feed})
    project.write_config(project.config.read_text().replace("max_bytes = 1048576", "max_bytes = 10000000"))
    started = time.process_time()
    result = invoke(project, "run", "--json")  # in this process: no interpreter start-up and imports to pay again
    cpu = time.process_time() - started  # the run's CPU (and the loopback server's), whatever the load
    assert result.returncode == 0, result.stderr
    news = next(s for s in json.loads(result.stdout)["sources"] if s["name"] == "news")
    assert news["new_articles"] == 2 and news["error"] == ""
    assert cpu < 15, f"the run took {cpu:.1f}s of CPU"  # ~1 s here, of which sanitising the deep entry ~0.5 s
    assert "The innermost sentence survives the flattening." in digest_text(project)


def test_parsing_time_counts_against_the_fetch_timeout_and_the_rest_waits_for_the_next_poll(
    project: Project, http_server: LocalServer
) -> None:
    """Issue 11 item 11: turning a feed's HTML into text is given as long as a download ([fetch] timeout, 0.25 s
    of CPU here); past it, the entries not read yet are left for the next poll (one warning line), not marked seen."""
    published = format_datetime(E2E_NOW - timedelta(hours=1))
    heavy = "<p>a</p>" * 125_000  # 1 MB of flat markup: about 0.4 s of CPU to sanitise here (2 MB and 0.5 s before: same ratio)
    feed = http_server.serve(
        "/heavy",
        rss(
            [
                {"title": f"Heavy entry {n}", "guid": f"heavy-{n}", "pubDate": published, "description": f"<![CDATA[{heavy}]]>"}
                for n in range(3)
            ]
        ),
        "application/rss+xml",
    )
    e2e_config(project, {"news": feed})
    project.write_config(
        project.config.read_text()
        .replace('timeout = "3s"', 'timeout = "0.25s"')
        .replace("max_bytes = 1048576", "max_bytes = 10000000")
    )
    counts = []
    for hour in ("07:00", "07:30", "08:00"):
        result = invoke(project, "run", "--json", now=f"2026-11-27T{hour}:00+00:00")
        news = next(s for s in json.loads(result.stdout)["sources"] if s["name"] == "news")
        counts.append(news["new_articles"])
        assert news["error"] == ""
        if hour != "08:00":
            assert "parsing took more than 0.25s (the [fetch] timeout)" in result.stderr
            assert "new entries left for the next poll" in result.stderr
    assert counts == [1, 1, 1]  # one entry read per poll, none lost


def test_a_huge_entry_is_cut_to_the_article_text_cap(http_server: LocalServer, fetcher: Fetcher) -> None:
    """Issue 11 item 12, for feeds: an entry's text is cut at 200,000 characters before it becomes an article."""
    huge = "The harbour council met again. " * 20_000  # 620,000 characters
    url = http_server.serve(
        "/huge",
        rss([{"title": "Long minutes", "guid": "m", "description": huge, "pubDate": format_datetime(NOW - timedelta(hours=1))}]),
        "application/rss+xml",
    )
    [article] = poll(feed_source(url, full_text="never"), fetcher)
    assert len(article.body) == 200_000 and article.body.startswith("The harbour council met again.")
