"""The files source: titles, dates and versions of .txt, .md and .html files."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from digest.config import FilesSourceConfig
from digest.sources import PollContext
from digest.sources.files import FilesSource
from tests.inprocess import invoke

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)


def poll(folder: Path) -> dict[str, object]:
    source = FilesSource(FilesSourceConfig(name="local", path=folder))
    return {a.identity: a for a in source.poll(PollContext(now=NOW, first_poll=True))}


def test_titles_dates_and_bodies_from_each_kind_of_file(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("A plain headline\n\nThe body says something. It goes on.\n")
    (tmp_path / "note.md").write_text(
        "---\ntitle: Front matter title\ndate: 2025-03-04\n---\n# Ignored heading\n\nMarkdown body text here.\n"
    )
    (tmp_path / "heading.md").write_text("# A Markdown heading\n\nThe story under the heading.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>An HTML page</title></head><body><article><h1>An HTML page</h1>"
        + "<p>The first paragraph of a page about local elections and what the results mean for the town.</p>" * 3
        + "</article></body></html>"
    )
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
        "date 2025-11-27 Storm cuts power to thousands The storm made landfall on Tuesday night.\n\nCrews are out.\n"
    )
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


def test_encodings_are_detected_binary_and_oversized_files_are_skipped_with_one_line(tmp_path: Path) -> None:
    """Issue 11 item 8, through the real CLI: a Latin-1 file showed `Caf\ufffd`, a UTF-16 file with a BOM was
    noise, a binary file became an article with a binary title printed to the terminal."""
    import codecs

    from conftest import Project

    project = Project(tmp_path)
    news = tmp_path / "news"
    news.mkdir()
    (news / "latin1.txt").write_bytes(
        "Café crème brûlée returns to the menu\n\nThe café on the corner will serve crème "
        "brûlée again from Monday. Customers had asked for it for years.\n".encode("latin-1")
    )
    (news / "utf16.txt").write_bytes(
        codecs.BOM_UTF16_LE
        + "Über den Dächern entstehen Gärten\n\nDie Stadt plant neue "
        "Gärten auf den Dächern der Altstadt. Bürger können sich bewerben.\n".encode("utf-16-le")
    )
    (news / "sjis.md").write_bytes(
        "# 東京の新しい駅が開業\n\n東京都は新しい駅が来月開業すると発表した。多くの利用者が見込まれている。\n".encode("shift_jis")
    )
    (news / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20)
    (news / "noise.md").write_bytes(bytes(b for b in os.urandom(4000) if b))  # no NUL, no encoding fits
    (news / "huge.txt").write_text("A headline\n\n" + "Words in a very long file. " * 2000)  # 54 kB
    project.write_config(f"""
        [[sources]]
        name = "news"
        path = "{news}"
        max_bytes = 20000

        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["txt"]
        """)
    result = invoke(project, "run")
    assert result.returncode == 0, result.stderr
    assert "source news: 3 new" in result.stdout
    text = "".join(p.read_text(encoding="utf-8") for p in (project.out / "daily").glob("*.txt"))
    assert "Café crème brûlée returns to the menu" in text and "\ufffd" not in text
    assert "Über den Dächern entstehen Gärten" in text and "東京の新しい駅が開業" in text
    warnings = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(warnings) == 3 and len(result.stderr.splitlines()) == 3, result.stderr
    assert any("skipped photo.txt: binary file" in line for line in warnings)
    assert any("skipped noise.md: binary file" in line for line in warnings)
    assert any("skipped huge.txt: larger than max_bytes (20000 bytes)" in line for line in warnings)
    assert "PNG" not in result.stdout + text and "IHDR" not in result.stdout + text


PEAK_PROBE = """
import atexit, sys
from pathlib import Path
atexit.register(lambda: sys.stderr.write("peak_rss_mb " + str(int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) // 1024) + "\\n"))
from digest.cli import main
main(sys.argv[1:])
"""


def test_a_50_mb_text_file_stays_under_300_mb_of_memory(tmp_path: Path) -> None:
    """Issue 11 item 12: a 50 MB text file peaked at 1.07 GB (about 20 copies of its text). The article's text is
    cut when it is read, so the whole `digest run` (one process: workers = 0) stays under 300 MB; it took 160 MB
    here, as much as a run over a 20 kB file."""
    import subprocess
    import sys

    from conftest import REPO, Project

    project = Project(tmp_path)
    news = tmp_path / "news"
    news.mkdir()
    paragraph = "The harbour council said the new ferry terminal opens in spring after three years of work. " * 10 + "\n\n"
    with (news / "report.txt").open("w", encoding="utf-8") as file:
        file.write("A very long report on the harbour\n\n")
        for _ in range(50 * 1024 * 1024 // len(paragraph) + 1):
            file.write(paragraph)
    assert (news / "report.txt").stat().st_size > 50 * 1024 * 1024
    project.write_config(f"""
        [summary]
        workers = 0

        [[sources]]
        name = "news"
        path = "{news}"
        max_bytes = 100000000

        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["txt"]
        """)
    env = {"PYTHONPATH": str(REPO), "DIGEST_NOW": "2026-11-27T07:00:00+00:00", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, "--config", str(project.config), "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "source news: 1 new" in result.stdout
    peak = int(result.stderr.split("peak_rss_mb ")[1].split()[0])
    assert peak < 300, f"peak RSS {peak} MB"
    text = "".join(p.read_text(encoding="utf-8") for p in (project.out / "daily").glob("*.txt"))
    assert "A very long report on the harbour" in text and "ferry terminal opens in spring" in text


def test_an_html_file_is_dated_by_its_metadata_else_its_time_never_by_its_copyright_footer(tmp_path: Path) -> None:
    """Issue 11 item 9: a page written today with "© 2019" in its footer was dated 2019-01-01."""
    paragraph = (
        "<p>" + "The town council met on Tuesday to discuss the new bridge over the river and what it costs. " * 4 + "</p>"
    )
    footer = "<footer>© 2019 Town Gazette. All rights reserved. Copyright 2019-2021.</footer>"
    (tmp_path / "footer.html").write_text(
        f"<html><head><title>Bridge plans</title></head><body><article><h1>Bridge plans</h1>{paragraph}</article>{footer}</body></html>"
    )
    (tmp_path / "meta.html").write_text(
        '<html><head><title>Bridge vote</title><meta property="article:published_time" content="2026-11-20T08:00:00Z"></head>'
        f"<body><article><h1>Bridge vote</h1>{paragraph}</article>{footer}</body></html>"
    )
    written = datetime(2026, 11, 26, 18, 30, tzinfo=timezone.utc)
    for name in ("footer.html", "meta.html"):
        os.utime(tmp_path / name, (written.timestamp(), written.timestamp()))
    articles = poll(tmp_path)
    assert articles["footer.html"].published == written  # the file's time, not 2019 from the footer
    assert articles["meta.html"].published == datetime(2026, 11, 20, tzinfo=timezone.utc)  # its own metadata first
