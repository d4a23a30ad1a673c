"""`digest sources import/export`: OPML in and out through the real CLI."""

from __future__ import annotations

import time
import tomllib

from conftest import Project
from tests.httpserver import billion_laughs
from tests.inprocess import invoke

SUBSCRIPTIONS = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="News">
      <outline type="rss" text="The &quot;Daily&quot; Planet" xmlUrl="https://planet.example/feed.xml" htmlUrl="https://planet.example/"/>
      <outline type="rss" text="Zürich Zeitung" xmlurl="https://zz.example/rss"/>
    </outline>
    <outline text="Tech">
      <outline type="rss" title="The Daily Planet" xmlUrl="https://planet.example/tech.xml"/>
      <outline type="rss" text="Evil" xmlUrl="javascript:alert(1)"/>
      <outline type="link" text="Just a link" url="https://example.org/"/>
    </outline>
    <outline type="rss" text="Already here" xmlUrl="https://known.example/feed"/>
  </body>
</opml>
"""


def with_known_feed(project: Project) -> None:
    config = project.config.read_text()
    project.config.write_text(config + '\n[[sources]]\nname = "known"\ntype = "feed"\nurl = "https://known.example/feed"\n')


def test_import_prints_sources_a_user_can_keep(project: Project) -> None:
    with_known_feed(project)
    (project.root / "subs.opml").write_text(SUBSCRIPTIONS)
    result = invoke(project, "sources", "import", "subs.opml")
    assert result.returncode == 0, result.stderr
    imported = tomllib.loads(result.stdout)["sources"]
    assert [(s["name"], s["type"], s["url"]) for s in imported] == [
        ("the-daily-planet", "feed", "https://planet.example/feed.xml"),
        ("zurich-zeitung", "feed", "https://zz.example/rss"),
        ("the-daily-planet-2", "feed", "https://planet.example/tech.xml"),
    ]
    assert "3 feeds imported from subs.opml; 1 already configured; 1 without an http(s) feed URL skipped" in result.stderr


def test_import_append_then_export_round_trips(project: Project) -> None:
    (project.root / "subs.opml").write_text(SUBSCRIPTIONS)
    appended = invoke(project, "sources", "import", "subs.opml", "--append")
    assert appended.returncode == 0, appended.stderr
    check = invoke(project, "check")
    assert check.returncode == 0 and "source the-daily-planet: feed https://planet.example/feed.xml" in check.stdout
    exported = invoke(project, "sources", "export")
    assert exported.returncode == 0 and exported.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    (project.root / "again.opml").write_text(exported.stdout)
    again = invoke(project, "sources", "import", "again.opml")
    assert (
        again.returncode == 0
        and again.stdout == ""
        and "0 feeds imported" in again.stderr
        and "4 already configured" in again.stderr
    )


def test_xml_bomb_opml_is_refused_quickly_and_changes_nothing(project: Project) -> None:
    (project.root / "bomb.opml").write_text(
        f'<?xml version="1.0"?>{billion_laughs("opml")}<opml><body><outline text="&lol9;" xmlUrl="https://x.example/"/></body></opml>'
    )
    before = project.config.read_text()
    started = time.monotonic()
    result = invoke(project, "sources", "import", "bomb.opml", "--append")
    assert time.monotonic() - started < 10
    assert (
        result.returncode == 1
        and result.stderr.strip() == "digest: bomb.opml: refused: DTDForbidden (DTDs and entities are not allowed in OPML)"
    )
    assert project.config.read_text() == before


def test_not_opml_is_one_line(project: Project) -> None:
    (project.root / "feed.xml").write_text("<rss><channel/></rss>")
    result = invoke(project, "sources", "import", "feed.xml")
    assert result.returncode == 1 and result.stderr.strip() == "digest: feed.xml: not an OPML file (no <opml><body>)"


def test_the_shipped_digest_takes_imported_feeds_and_the_import_says_so(project: Project) -> None:
    """Issue 11 item 5: the shipped digest listed only "seeds", so appended feeds went nowhere, silently."""
    (project.root / "subs.opml").write_text(SUBSCRIPTIONS)
    appended = invoke(project, "sources", "import", "subs.opml", "--append")
    assert appended.returncode == 0, appended.stderr
    assert "the new feeds go into digest daily" in appended.stdout, appended.stdout
    check = invoke(project, "check")
    assert check.returncode == 0 and "warning" not in check.stderr, check.stderr


def test_check_warns_once_per_source_no_digest_uses_and_import_warns_too(project: Project) -> None:
    shipped = project.config.read_text()
    project.write_config(shipped.replace('name = "daily"\n', 'name = "daily"\nsources = ["seeds"]\n'))
    (project.root / "subs.opml").write_text(SUBSCRIPTIONS)
    appended = invoke(project, "sources", "import", "subs.opml", "--append")
    assert appended.returncode == 0 and "warning: no digest includes the new feeds" in appended.stdout, appended.stdout
    check = invoke(project, "check")
    assert check.returncode == 0, check.stderr
    warnings = [line for line in check.stderr.splitlines() if "warning" in line]
    assert [line.split()[3] for line in warnings] == [
        "the-daily-planet",
        "zurich-zeitung",
        "the-daily-planet-2",
        "already-here",
    ], warnings
    assert all("is in no digest's sources" in line for line in warnings)
