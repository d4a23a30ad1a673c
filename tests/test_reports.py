"""What a user is told: templates tried before anything is sent, a backlog called a backlog,
failing sources named in the digest itself. Real CLI, loopback HTTP, SQLite in a temp folder."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from conftest import Project
from tests.httpserver import LocalServer, status
from tests.inprocess import invoke

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)  # conftest's DIGEST_NOW


def rss(items: list[tuple[str, datetime]]) -> str:
    parts = "".join(
        f"<item><guid>{title}</guid><title>{title}</title><pubDate>{format_datetime(when)}</pubDate>"
        f"<description>{title}: the council confirmed it in a statement on Tuesday.</description></item>"
        for title, when in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{parts}</channel></rss>'


def with_feed(project: Project, name: str, url: str) -> None:
    project.write_config(
        project.config.read_text(encoding="utf-8").replace('sources = ["seeds"]\n', "")
        + f'\n[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{url}"\nfull_text = "never"\n'
        + '\n[fetch]\nallow_private = true\nper_host_delay = "0s"\n'
    )


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("subject", "{{ digest.nme }}: {{ edition.date }}"),
        (
            "digest.txt",
            "{% for section in sections %}{% for article in section.articles %}{{ article.sumary }}{% endfor %}{% endfor %}\n",
        ),
        ("digest.html", "{% if problems %}{% for p in problems %}{{ p.reason }}{% endfor %}{% endif %}\n"),
    ],
)
def test_an_undefined_variable_in_a_subject_or_template_is_a_config_error_naming_the_digest(
    project: Project, where: str, text: str
) -> None:
    """Issue 11 item 16: it passed `check`, then every delivery stayed pending for ever."""
    shipped = project.config.read_text(encoding="utf-8")
    if where == "subject":
        project.write_config(shipped.replace('name = "daily"', f'name = "daily"\nsubject = "{text}"'))
    else:
        (project.root / "mine").mkdir()
        (project.root / "mine" / where).write_text(text, encoding="utf-8")
        project.write_config(shipped.replace('name = "daily"', 'name = "daily"\ntemplates = "../mine"'))
    for command in ("check", "run"):
        result = invoke(project, command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "digests[0] (daily)" in line and "undefined" in line, line
    assert not project.out.exists()  # nothing made, nothing consumed


def test_old_entries_of_a_first_poll_are_reported_as_backlog(project: Project, http_server: LocalServer) -> None:
    """Issue 11 item 20: not "3 new" followed by "nothing new"."""
    old = [(f"Old story {n}", NOW - timedelta(days=10 + n)) for n in range(3)]
    with_feed(project, "archive", http_server.serve("/old", rss(old)))
    result = invoke(project, "run")
    assert result.returncode == 0, result.stderr
    assert "source archive: 3 stored as backlog (older than backfill 2d)\n" in result.stdout, result.stdout
    http_server.serve("/old", rss([("Fresh story", NOW + timedelta(minutes=50)), *old]))
    again = invoke(project, "run", "--json", now="2026-11-27T08:00:00+00:00")
    [archive] = [s for s in json.loads(again.stdout)["sources"] if s["name"] == "archive"]
    assert archive["new_articles"] == 1 and archive["backlog"] == 0


def test_the_digest_names_its_failing_sources_in_every_format(project: Project, http_server: LocalServer) -> None:
    """Issue 11 item 20: a short "sources with problems" box: name, since when, last error."""
    url = http_server.route("/broken", status(500, b"oops"))
    with_feed(project, "city-hall", url)
    first = invoke(project, "run", now="2026-11-26T07:00:00+00:00")
    assert first.returncode == 1
    (project.root / "seeds" / "new.txt").write_text("Tram line extended\n\nThe tram line reaches the harbour from May.\n")
    second = invoke(project, "run", now="2026-11-27T07:00:00+00:00")
    assert second.returncode == 1 and "digest daily: new edition with 1 article\n" in second.stdout, second.stdout
    latest = {p.suffix: p.read_text() for p in (project.out / "daily").glob("2026-11-27*")}
    assert set(latest) == {".html", ".md", ".txt"}
    for suffix, text in latest.items():
        assert "Sources with problems" in text, suffix
        assert "city-hall" in text and "failing since 2026-11-26 07:00" in text and "HTTP 500" in text, (suffix, text)
    earliest = {p.suffix: p.read_text() for p in (project.out / "daily").glob("2026-11-26*")}
    assert "failing since 2026-11-26 07:00" in earliest[".txt"]
    http_server.serve("/broken", rss([("Council meets", NOW + timedelta(hours=1))]))
    (project.root / "seeds" / "later.txt").write_text("Ferry fares\n\nFerry fares rise by five percent in spring.\n")
    healed = invoke(project, "run", now="2026-11-27T09:00:00+00:00")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    [text] = [p.read_text() for p in (project.out / "daily").glob("2026-11-27T09*.txt")]
    assert "Sources with problems" not in text
