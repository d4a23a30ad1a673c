"""Search across editions: `digest search` (the real CLI) finds an article by a word of its text and
names its edition; hostile queries give results or one clear line (exit 2), never a traceback; a store
made before search is indexed when opened; `digest serve` answers /DIGEST/search from the archive's form."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import urljoin

import httpx
import lxml.html
import pytest

from digest.store import open_store
from tests.conftest import Project
from tests.test_archive import serve
from tests.inprocess import invoke

NOW = "2026-11-27T07:00:00+00:00"


@pytest.fixture
def searched(project: Project) -> Project:
    """The shipped config with two seeds of its own, made into one edition by `digest run`."""
    seeds = project.root / "seeds"
    for old in seeds.iterdir():
        old.unlink()
    (seeds / "harbour.txt").write_text(
        "Harbour works reach the quay\n\nCrews finished the second stage of the harbour works on Thursday. "
        "The council said the quay reopens in spring, once the cormorant colony has nested elsewhere.\n",
        encoding="utf-8",
    )
    (seeds / "tram.txt").write_text(
        "Tram line opens to the hospital\n\nThe new tram line to the hospital opened on Friday with a ceremony. "
        "Riders praised the quieter carriages and the short wait at each stop.\n",
        encoding="utf-8",
    )
    result = invoke(project, "run", now=NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def test_search_finds_an_article_by_a_word_of_its_text_and_names_its_edition(searched: Project) -> None:
    result = invoke(searched, "search", "cormorant")  # in the text only, neither title nor (lead) summary start
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1. Harbour works reach the quay"
    assert "cormorant" in result.stdout
    assert "in daily, edition 1 of 2026-11-27 07:00 UTC" in result.stdout
    assert "editions/2026-11-27T070000Z.html" in result.stdout
    assert "Tram" not in result.stdout

    as_json = json.loads(invoke(searched, "search", "Cormorants", "--json").stdout)  # any case, another form of the word
    [hit] = as_json["results"]
    assert hit["title"] == "Harbour works reach the quay"
    assert [(e["digest"], e["edition"], e["page"]) for e in hit["editions"]] == [("daily", 1, "editions/2026-11-27T070000Z.html")]
    assert (searched.out / "daily" / hit["editions"][0]["page"]).is_file()

    assert invoke(searched, "search", "tram hospital", "--digest", "daily", "--since", "2025-01-01").stdout.startswith(
        "1. Tram line opens to the hospital"
    )
    assert invoke(searched, "search", "tram", "--since", "2026-12-01").stdout == "no article found\n"


# query -> whether it finds the harbour article: every word it carries is in it, or one ("near", "drop") is not
HOSTILE = {
    '"harbour': True,
    'harbour"*': True,
    "harbour*": True,
    "NEAR(harbour quay": False,
    "(harbour, quay)": True,
    "harbour'; DROP TABLE articles; --": False,
    "harbour' OR '1'='1": False,
    "-harbour": True,
    "title:harbour": False,
    "harbour\x01quay": True,
    "{harbour}": True,
    "harbour^": True,
    "harbour)": True,
    "quay + harbour - the": True,
}
UNUSABLE = [
    ("*", "the query has no words to look for (letters or digits)"),
    ('"', "the query has no words to look for (letters or digits)"),
    ("'; --", "the query has no words to look for (letters or digits)"),
    ("NEAR(", None),  # a word: found nowhere
    ("x" * 10_000, "the query is 10,000 characters long; at most 1,000"),
    (" ".join(f"w{n}" for n in range(40)), "the query has 40 words; at most 32"),
]


def test_hostile_queries_are_only_words_and_unusable_ones_one_line_exit_2(searched: Project) -> None:
    for query, finds in HOSTILE.items():
        result = invoke(searched, "search", "--json", "--", query)
        assert result.returncode == 0, (query, result.stderr)
        titles = [hit["title"] for hit in json.loads(result.stdout)["results"]]
        assert titles == (["Harbour works reach the quay"] if finds else []), query
    for query, message in UNUSABLE:
        result = invoke(searched, "search", "--", query)
        if message is None:
            assert (result.returncode, result.stdout, result.stderr) == (0, "no article found\n", ""), query
        else:
            assert (result.returncode, result.stderr) == (2, f"digest: search: {message}\n"), query
    store = open_store(searched.root / "state" / "digest.sqlite3")
    try:
        assert store.article_count() == 2 and store.edition_count("daily") == 1  # nothing dropped
    finally:
        store.close()


def test_a_bad_since_or_digest_is_a_usage_error(searched: Project) -> None:
    assert invoke(searched, "search", "tram", "--since", "last week").stderr.startswith("digest: search: since: not a date")
    result = invoke(searched, "search", "tram", "--digest", "weekly")
    assert result.returncode == 2 and "no digest named 'weekly'" in result.stderr


def test_a_store_made_before_search_is_indexed_when_opened(searched: Project) -> None:
    path = searched.root / "state" / "digest.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in (
            "DROP TRIGGER article_search_insert",
            "DROP TRIGGER article_search_update",
            "DROP TRIGGER article_search_delete",
            "DROP TABLE article_search",
            "DROP VIEW article_search_text",
            "DROP TABLE article_search_queue",
            "DELETE FROM migrations WHERE name IN ('0011_article_search', '0021_article_search_queue')",
        ):
            db.execute(statement)
    result = invoke(searched, "search", "cormorant")
    assert result.returncode == 0 and result.stdout.startswith("1. Harbour works reach the quay"), result.stderr


def test_serve_answers_search_from_the_archive_form_and_escapes_the_query(searched: Project) -> None:
    for address in serve(searched, NOW):
        index = httpx.get(f"http://{address}/daily/")
        page = lxml.html.fromstring(index.text)
        [form] = page.xpath("//form[@role='search']")
        assert form.get("method") == "get" and form.xpath(".//input[@name='q']")
        action = urljoin(str(index.url), form.get("action"))
        assert action == f"http://{address}/daily/search"

        found = httpx.get(action, params={"q": "cormorant"})
        assert found.status_code == 200
        results = lxml.html.fromstring(found.text)
        assert [h.text_content() for h in results.xpath("//div[@class='result']/h2")] == ["Harbour works reach the quay"]
        [edition] = results.xpath("//div[@class='result']//a[contains(@href, 'editions/')]")
        assert httpx.get(urljoin(str(found.url), edition.get("href"))).status_code == 200  # the edition's page

        hostile = "<script>alert(1)</script> harbour \"NEAR('; DROP TABLE articles; --"
        answered = httpx.get(action, params={"q": hostile})
        assert answered.status_code == 200 and "<script>alert" not in answered.text
        assert lxml.html.fromstring(answered.text).xpath("//input[@name='q']")[0].get("value") == hostile

        unusable = httpx.get(action, params={"q": "*" * 5000})
        assert unusable.status_code == 400 and "at most 1,000" in unusable.text
        assert httpx.get(action, params={"q": "a\x00b"}).status_code == 200
        assert httpx.get(f"http://{address}/nope/search", params={"q": "tram"}).status_code == 404
