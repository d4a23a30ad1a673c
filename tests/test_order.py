"""The order of an edition's stories: [digests] order = "importance" | "source" | "newest", and a
"Top stories" section of the `top` most important heading the edition."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lxml.html

from digest.models import StoredArticle
from digest.order import arrange, importance
from tests.test_headlines import NOW, STORIES, run, three_sources
from tests.inprocess import run_in_process

T0 = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)


def article(number: int, source: str, hours: int) -> StoredArticle:
    return StoredArticle(
        id=number,
        source=source,
        title=f"Story {number}",
        url=None,
        published=T0 + timedelta(hours=hours),
        author=None,
        language="en",
        summary=(),
        fetched=T0,
    )


def test_importance_is_distinct_sources_then_recency() -> None:
    five_outlets = [article(1, name, 0) for name in "abcde"]
    one_outlet_newer = [article(6, "a", 9)]
    two_copies_one_outlet = [article(7, "b", 1), article(8, "b", 2)]  # copies in one source count once
    two_outlets = [article(9, "a", 1), article(10, "c", 3)]
    stories = [one_outlet_newer, two_copies_one_outlet, five_outlets, two_outlets]
    assert importance(five_outlets)[0] == 5 and importance(two_copies_one_outlet)[0] == 1
    [block] = arrange(stories, list, "importance", 0, ["a", "b", "c"])
    assert (block.heading, block.source) == ("", "")
    assert block.stories == [five_outlets, two_outlets, one_outlet_newer, two_copies_one_outlet]

    top, more = arrange(stories, list, "newest", 1, [])
    assert (top.heading, top.stories) == ("Top stories", [five_outlets])
    assert (more.heading, more.stories) == ("More stories", [one_outlet_newer, two_outlets, two_copies_one_outlet])

    by_source = arrange(stories, list, "source", 0, ["b", "a"])
    assert [(b.heading, b.source) for b in by_source] == [("b", "b"), ("a", "a")]  # config order; a story under its lead's source
    assert by_source[0].stories == [two_copies_one_outlet]
    assert by_source[1].stories == [one_outlet_newer, two_outlets, five_outlets]  # newest first
    assert arrange(stories, list, "importance", 10, [])[0].stories == arrange(stories, list, "importance", 0, [])[0].stories
    assert len(arrange(stories, list, "importance", 10, [])) == 1  # all in the top section: no empty "More stories"


def dated(root: Path) -> None:
    """Give every file an hour of its own (its mtime is its published time): later names are newer."""
    names = sorted((root / source / name) for source, stories in STORIES.items() for name in stories)
    for hour, path in enumerate(names):
        moment = (T0 + timedelta(hours=hour)).timestamp()
        os.utime(path, (moment, moment))


def headings(page: lxml.html.HtmlElement) -> list[str]:
    return [h.text_content() for h in page.xpath("//h2[@class='source']")]


def test_source_order_and_newest_with_top_stories_in_the_real_edition(tmp_path: Path) -> None:
    config = three_sources(tmp_path / "a", 'order = "source"\ntop = 0\ngroup_stories = false\n')
    dated(tmp_path / "a")
    page = lxml.html.fromstring(run(tmp_path / "a", config)[".html"])
    assert headings(page) == ["Headlines", "herald", "wire", "post"]  # config order
    assert "herald ·" not in page.text_content()  # a source's section does not repeat its name

    config = three_sources(tmp_path / "b", 'order = "newest"\ntop = 2\ngroup_stories = false\n')
    dated(tmp_path / "b")
    page = lxml.html.fromstring(run(tmp_path / "b", config)[".html"])
    assert headings(page) == ["Headlines", "Top stories", "More stories"]
    titles = [h.text_content() for h in page.xpath("//div[@class='article']/h3")]
    assert len(titles) == 8
    newest_first = [
        STORIES[p.parent.name][p.name][0]
        for p in sorted(
            ((tmp_path / "b" / s / n) for s, stories in STORIES.items() for n in stories),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    ]
    assert titles[2:] == [t for t in newest_first if t not in titles[:2]]  # the rest newest first
    metas = page.xpath("//div[@class='article']/p[@class='meta']")
    assert all(m.text_content().split(" · ")[0] in STORIES for m in metas)  # mixed sections name each story's source
    assert [link.text_content() for link in page.xpath("//*[@class='headlines']//a")] == titles  # headlines in that order


def test_an_unknown_order_or_a_bad_top_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    for extra, message in (
        ('order = "random"\n', "order: unknown order 'random'; choose from importance, source, newest"),
        ("top = -1\n", "top: must be between 0 (no top stories section) and 1000, got -1"),
    ):
        folder = tmp_path / str(len(message))
        config = three_sources(folder, extra)
        result = run_in_process("--config", str(config), "check", cwd=folder, now=NOW)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


AGE = {  # hours after T0: the widely reported stories are the oldest, so recency alone would put them last
    "herald/quake.txt": 0,
    "wire/elazig.txt": 1,
    "post/turkey.txt": 2,
    "wire/strike.txt": 3,
    "post/vestby.txt": 4,
    "herald/budget.txt": 5,
    "herald/choir.txt": 6,
    "post/bakery.txt": 7,
}


def test_an_edition_over_three_sources_lists_stories_by_how_widely_they_are_reported(tmp_path: Path) -> None:
    import json

    config = three_sources(tmp_path, formats='["html", "json", "txt"]')
    for name, hours in AGE.items():
        moment = (T0 + timedelta(hours=hours)).timestamp()
        os.utime(tmp_path / name, (moment, moment))
    files = run(tmp_path, config)
    edition = json.loads(files[".json"])
    titles = {name: STORIES[name.split("/")[0]][name.split("/")[1]][0] for name in AGE}
    stories = edition["stories"]
    assert [len(story["articles"]) for story in stories] == [3, 2, 1, 1, 1]  # one event by all three, one by two
    assert [story["sources"] for story in stories] == [3, 2, 1, 1, 1]
    assert {a["title"] for a in stories[0]["articles"]} == {
        titles["herald/quake.txt"],
        titles["wire/elazig.txt"],
        titles["post/turkey.txt"],
    }
    assert {a["title"] for a in stories[1]["articles"]} == {titles["wire/strike.txt"], titles["post/vestby.txt"]}
    assert [story["title"] for story in stories[2:]] == [
        titles["post/bakery.txt"],
        titles["herald/choir.txt"],
        titles["herald/budget.txt"],
    ]
    assert {story["section"] for story in stories} == {"Top stories"}  # top = 5 by default: all five head the edition

    page = lxml.html.fromstring(files[".html"])
    links = page.xpath("//*[@class='headlines']//a")
    assert len(links) == 5  # one headline link per story
    for link, story in zip(links, stories):
        [target] = page.xpath(f"//*[@id='{link.get('href')[1:]}']")  # resolves to an element of the page
        assert target.xpath(".//h3")[0].text_content() == link.text_content() == story["title"]
    assert "3 sources" in page.xpath("//*[@class='headlines']//li")[0].text_content()
    assert " 1. " + stories[0]["title"] + " (3 sources)" in files[".txt"]
