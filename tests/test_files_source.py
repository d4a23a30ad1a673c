"""The files source: titles, dates and versions of .txt, .md and .html files."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from digest.config import FilesSourceConfig
from digest.sources import PollContext
from digest.sources.files import FilesSource

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)


def poll(folder: Path) -> dict[str, object]:
    source = FilesSource(FilesSourceConfig(name="local", path=folder))
    return {a.identity: a for a in source.poll(PollContext(now=NOW, first_poll=True))}


def test_titles_dates_and_bodies_from_each_kind_of_file(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("A plain headline\n\nThe body says something. It goes on.\n")
    (tmp_path / "note.md").write_text("---\ntitle: Front matter title\ndate: 2025-03-04\n---\n# Ignored heading\n\nMarkdown body text here.\n")
    (tmp_path / "heading.md").write_text("# A Markdown heading\n\nThe story under the heading.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>An HTML page</title></head><body><article><h1>An HTML page</h1>"
        + "<p>The first paragraph of a page about local elections and what the results mean for the town.</p>" * 3
        + "</article></body></html>")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    articles = poll(tmp_path)
    assert set(articles) == {"plain.txt", "note.md", "heading.md", "page.html"}
    assert articles["plain.txt"].title == "A plain headline"
    assert articles["plain.txt"].body.startswith("The body says")
    assert articles["note.md"].title == "Front matter title"
    assert articles["note.md"].published == datetime(2025, 3, 4, tzinfo=timezone.utc)
    assert articles["heading.md"].title == "A Markdown heading"
    assert articles["page.html"].title == "An HTML page"
    assert "local elections" in articles["page.html"].body


def test_the_date_marker_gives_the_date_and_never_shows_in_the_title(tmp_path: Path) -> None:
    (tmp_path / "story.txt").write_text(
        "date 2025-11-27 Storm cuts power to thousands The storm made landfall on Tuesday night.\n\nCrews are out.\n")
    story = poll(tmp_path)["story.txt"]
    assert story.title == "Storm cuts power to thousands"
    assert story.published == datetime(2025, 11, 27, tzinfo=timezone.utc)
    assert story.body.startswith("The storm made landfall")


def test_without_a_date_the_modification_time_is_used(tmp_path: Path) -> None:
    path = tmp_path / "undated.txt"
    path.write_text("Undated\n\nSome text.\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    assert poll(tmp_path)["undated.txt"].published == datetime.fromtimestamp(1_700_000_000, timezone.utc)


def test_a_changed_file_is_a_new_version_and_an_empty_one_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("Headline\n\nFirst version.\n")
    first = poll(tmp_path)["story.txt"]
    path.write_text("Headline\n\nSecond version with news.\n")
    second = poll(tmp_path)["story.txt"]
    assert first.version != second.version
    (tmp_path / "empty.txt").write_text("")
    assert "empty.txt" not in poll(tmp_path)


def test_a_link_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("Secret\n\nDo not read me.\n")
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "link.txt").symlink_to(outside)
    assert poll(folder) == {}
