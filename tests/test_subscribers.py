"""Subscribers in the store, managed with the real CLI: add, list, remove; addresses checked."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from digest import pipeline
from digest.errors import ConfigError
from digest.store import MIGRATIONS
from tests.conftest import Project
from tests.emailproject import make_config
from tests.smtpserver import smtp_server
from tests.inprocess import invoke


def subscribers(project: Project) -> list[dict[str, object]]:
    listed = invoke(project, "subscribers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_add_list_and_remove_readers_with_their_own_time_zone_time_and_words(project: Project) -> None:
    added = invoke(
        project,
        "subscribers",
        "add",
        "Ann Example <ann@Example.COM>",
        "--digest",
        "daily",
        "--timezone",
        "Asia/Tokyo",
        "--at",
        "7:30",
        "--exclude",
        "Football, cricket",
    )
    assert added.returncode == 0, added.stderr
    assert "added ann@example.com to daily" in added.stdout
    assert invoke(project, "subscribers", "add", "bob@example.net").returncode == 0  # the only digest is the default

    listed = {s["address"]: s for s in subscribers(project)}
    assert listed["ann@example.com"] == {
        "digest": "daily",
        "address": "ann@example.com",
        "name": "Ann Example",
        "timezone": "Asia/Tokyo",
        "at": "07:30",
        "include": [],
        "exclude": ["football", "cricket"],
        "status": "active",
        "since": "2026-11-27T07:00:00+00:00",
        "last_sent": None,
    }
    # Defaults: the digest's time zone and its cron time ("0 7 * * *" in UTC).
    assert (listed["bob@example.net"]["timezone"], listed["bob@example.net"]["at"]) == ("UTC", "07:00")

    # Adding the same address again (however it is written) updates it: one reader, one row.
    again = invoke(project, "subscribers", "add", "ANN@example.com", "--at", "08:00", "--timezone", "Asia/Tokyo")
    assert again.returncode == 0 and "updated ann@example.com" in again.stdout
    assert [s["at"] for s in subscribers(project) if s["address"] == "ann@example.com"] == ["08:00"]

    text = invoke(project, "subscribers", "list")
    assert "bob@example.net daily 07:00 UTC active" in text.stdout

    removed = invoke(project, "subscribers", "remove", "ann@example.com")
    assert removed.returncode == 0, removed.stderr
    assert [s["address"] for s in subscribers(project)] == ["bob@example.net"]
    gone = invoke(project, "subscribers", "remove", "ann@example.com")
    assert gone.returncode == 2 and gone.stderr.strip() == "digest: ann@example.com is not a subscriber"


def test_internationalised_addresses_are_kept_in_unicode(project: Project) -> None:
    added = invoke(project, "subscribers", "add", "José Ñandú <josé@exämple.org>", "--timezone", "Europe/Madrid")
    assert added.returncode == 0, added.stderr
    assert invoke(project, "subscribers", "add", "用户@例子.广告").returncode == 0
    listed = {s["address"]: s["name"] for s in subscribers(project)}
    assert listed == {"josé@exämple.org": "José Ñandú", "用户@例子.广告": ""}


def test_bad_input_is_one_line_with_exit_2_and_stores_nothing(project: Project) -> None:
    cases = {
        ("not-an-address",): "not an email address: 'not-an-address'",
        ("ann@example",): "not an email address: 'ann@example'",
        ("ann@example.com\r\nBcc: x@evil.test",): "line break",
        ("ann@example.com", "--timezone", "Mars/Olympus"): "--timezone: unknown time zone 'Mars/Olympus'",
        ("ann@example.com", "--at", "25:00"): "--at: expected a time of day HH:MM",
        ("ann@example.com", "--digest", "weekly"): "no digest",
    }
    for arguments, message in cases.items():
        result = invoke(project, "subscribers", "add", *arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, (arguments, result.stderr)
        assert "Traceback" not in result.stderr
    assert subscribers(project) == []


def test_a_store_of_the_previous_schema_gains_the_subscribers_table_and_keeps_its_articles(project: Project) -> None:
    # A store as schema 4 left it (numbered, before subscribers and before named migrations), made from the
    # first four migrations themselves, so later migrations need no undoing here.
    store = project.root / "state" / "digest.sqlite3"
    store.parent.mkdir()
    with sqlite3.connect(store) as db:
        for _, sql in MIGRATIONS[:4]:
            db.executescript(sql)
        db.execute(
            "INSERT INTO articles (source, identity, version, content_hash, title, body, summary, summary_algorithm, "
            "fetched) VALUES ('seeds', 'a', '', 'h', 'Kept', 'Kept body.', '[]', 'lead', '2026-11-26T07:00:00+00:00')"
        )
        db.execute("INSERT INTO editions (digest, created) VALUES ('daily', '2026-11-26T07:00:00+00:00')")
        db.execute("PRAGMA user_version = 4")
    assert invoke(project, "subscribers", "add", "ann@example.com").returncode == 0
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT title FROM articles").fetchall() == [("Kept",)]
        assert db.execute("SELECT address FROM subscribers").fetchall() == [("ann@example.com",)]
        [(atom_id,)] = db.execute("SELECT atom_id FROM editions").fetchall()  # an earlier edition gets its feed id
        assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", atom_id)


def test_fixed_recipients_in_email_to_may_be_written_name_and_address(tmp_path: Path) -> None:
    with smtp_server() as server:
        config = make_config(tmp_path, server.port, recipients=("Ann Example <ann@example.com>", "bob@example.net"))
        report = pipeline.run(config, datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc))
    assert not report.failed, report.deliveries
    assert sorted(r.rcpt_tos for r in server.accepted) == [("ann@example.com",), ("bob@example.net",)]
    assert sorted(str(r.message["To"]) for r in server.accepted) == ["Ann Example <ann@example.com>", "bob@example.net"]


def test_an_email_to_entry_that_is_not_an_address_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"digests\[0\].*email_to: not an email address: 'ann@'"):
        make_config(tmp_path, 25, recipients=("ann@",))
