"""Issue 11, "articles lost": what a source holds reaches every digest that draws on it,
through the CLI (in this process: tests/inprocess.py), a loopback HTTP server and a SQLite file in a temp folder."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path


from conftest import REPO, Project
from tests.httpserver import LocalServer
from tests.inprocess import invoke, run_in_process

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)  # conftest's DIGEST_NOW


def rss(items: list[dict[str, str]]) -> str:
    parts = []
    for item in items:
        fields = "".join(f'<guid isPermaLink="false">{v}</guid>' if k == "guid" else f"<{k}>{v}</{k}>" for k, v in item.items())
        parts.append(f"<item>{fields}</item>")
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://example.org/</link>{"".join(parts)}</channel></rss>'


def feeds_config(project: Project, feeds: dict[str, str]) -> None:
    entries = "".join(
        f'\n[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{url}"\nfull_text = "never"\n' for name, url in feeds.items()
    )
    project.write_config(
        """
        [store]
        path = "../state/digest.sqlite3"

        [fetch]
        allow_private = true
        per_host_delay = "0s"
        """
        + entries.replace("\n", "\n        ")
        + """
        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["txt"]
        """
    )


def stored_by_source(project: Project) -> dict[str, int]:
    report = json.loads(invoke(project, "run", "--json").stdout)
    return {s["name"]: s["new_articles"] for s in report["sources"]}


def test_entries_that_share_their_text_are_all_kept(project: Project, http_server: LocalServer) -> None:
    """A photo blog whose posts all say "Photo" and a status page whose incidents all end
    "Service restored." are distinct entries (their own GUIDs): none is dropped as a duplicate."""
    when = format_datetime(NOW - timedelta(hours=1))
    photos = [
        {"title": f"Harbour at dusk, frame {n}", "guid": f"photo-{n}", "pubDate": when, "description": "Photo"} for n in range(20)
    ]
    incidents = [
        {"title": f"Incident {n}: API latency", "guid": f"incident-{n}", "pubDate": when, "description": "Service restored."}
        for n in range(10)
    ]
    feeds_config(
        project, {"photos": http_server.serve("/photos", rss(photos)), "status": http_server.serve("/status", rss(incidents))}
    )
    assert stored_by_source(project) == {"photos": 20, "status": 10}
    digest = "".join(p.read_text() for p in (project.out / "daily").glob("*.txt"))
    assert all(f"frame {n}\n" in digest for n in range(20)) and all(f"Incident {n}:" in digest for n in range(10))


def test_entries_that_differ_only_by_their_link_fragment_are_distinct(project: Project, http_server: LocalServer) -> None:
    """A comments feed without GUIDs: each entry is known by its full link, #comment-N included."""
    when = format_datetime(NOW - timedelta(hours=1))
    comments = [
        {
            "title": f"Comment by reader {n}",
            "link": f"http://example.org/post/7?utm_source=rss#comment-{n}",
            "pubDate": when,
            "description": f"I think point {n} deserves more attention than it got.",
        }
        for n in (1, 2)
    ]
    feeds_config(project, {"comments": http_server.serve("/comments", rss(comments))})
    assert stored_by_source(project) == {"comments": 2}
    digest = "".join(p.read_text() for p in (project.out / "daily").glob("*.txt"))
    assert "http://example.org/post/7#comment-1" in digest and "http://example.org/post/7#comment-2" in digest


def test_a_feed_that_republishes_an_entry_under_a_new_guid_still_gives_it_once(
    project: Project, http_server: LocalServer
) -> None:
    """A true copy (same source, title, link and text, only the GUID changed) is folded."""
    when = format_datetime(NOW - timedelta(hours=1))
    entry = {
        "title": "Ferry timetable changes",
        "link": "http://example.org/ferry",
        "pubDate": when,
        "description": "The winter timetable starts on Monday with fewer crossings at night.",
    }
    feeds_config(project, {"news": http_server.serve("/news", rss([{**entry, "guid": "build-1"}, {**entry, "guid": "build-2"}]))})
    assert stored_by_source(project) == {"news": 1}


def test_the_same_file_in_two_folders_reaches_both_digests(project: Project) -> None:
    """Each folder is the only source of its own digest: both digests get the article."""
    for folder in ("desk-a", "desk-b"):
        (project.root / folder).mkdir()
        shutil.copy(next((REPO / "seeds").glob("*.txt")), project.root / folder / "story.txt")
    project.write_config("""
        [store]
        path = "../state/digest.sqlite3"

        [[sources]]
        name = "a"
        path = "../desk-a"

        [[sources]]
        name = "b"
        path = "../desk-b"

        [[digests]]
        name = "first"
        sources = ["a"]
        output_dir = "../out"
        formats = ["txt"]

        [[digests]]
        name = "second"
        sources = ["b"]
        output_dir = "../out"
        formats = ["txt"]
        """)
    result = invoke(project, "run", "--json")
    assert result.returncode == 0, result.stderr
    editions = {e["digest"]: e["articles"] for e in json.loads(result.stdout)["editions"]}
    assert editions == {"first": 1, "second": 1}
    for name in ("first", "second"):
        [text] = [p.read_text() for p in (project.out / name).glob("*.txt")]
        assert "Putin lays out firm conditions" in text


def test_the_default_store_lives_beside_the_config_whatever_the_current_folder(tmp_path: Path) -> None:
    """[store] omitted: the store is state/digest.sqlite3 in the config's folder, so a run from
    another folder finds what the first one stored and sends nothing again."""
    project = Project(tmp_path / "project")
    shutil.copytree(REPO / "seeds", project.root / "seeds")
    project.write_config(
        '[[sources]]\nname = "seeds"\npath = "../seeds"\n\n'
        '[[digests]]\nname = "daily"\noutput_dir = "../out"\nformats = ["txt"]\n'
    )
    status = run_in_process("--config", str(project.config), "status", cwd=tmp_path, now="2026-11-27T07:00:00+00:00")
    assert status.returncode == 0, status.stderr
    assert "store: none yet at " + str(project.root / "config" / "state" / "digest.sqlite3") in status.stdout
    assert not any(tmp_path.rglob("*.sqlite3"))  # status made no store
    for index, folder in enumerate((tmp_path, project.root / "seeds", tmp_path)):
        result = run_in_process(
            "--config", str(project.config), "run", "--json", cwd=folder, now=f"2026-11-2{7 + index}T07:00:00+00:00"
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["editions"][0]["made"] is (index == 0)
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*.sqlite3")] == [Path("project/config/state/digest.sqlite3")]
    assert len(list((project.out / "daily").glob("*.txt"))) == 1
