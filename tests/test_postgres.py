"""The PostgreSQL store through the real CLI: `digest run`, `status`, `preview` unchanged against it, and
`digest store copy` moving a SQLite store over with nothing lost (the contract itself is
tests/test_store_contract.py, run against both implementations)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import Project
from tests.inprocess import invoke

TOMORROW = "2026-11-28T07:00:00+00:00"


def use_postgres(project: Project, url: str) -> None:
    """Point the project's config at a PostgreSQL store instead of its SQLite file."""
    text = project.config.read_text()
    assert 'path = "../state/digest.sqlite3"' in text
    project.config.write_text(text.replace('path = "../state/digest.sqlite3"', f'url = "{url}"'))


def editions(project: Project) -> list[Path]:
    return sorted((project.out / "daily").glob("[0-9]*.txt")) if (project.out / "daily").exists() else []


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(query).fetchall()


def test_run_status_and_preview_work_against_postgresql_unchanged(project: Project, postgres_url: str) -> None:
    use_postgres(project, postgres_url)
    preview = invoke(project, "preview", "--format", "md")
    assert preview.returncode == 0, preview.stderr
    assert "Putin lays out firm conditions" in preview.stdout
    assert rows(postgres_url, "SELECT COUNT(*) FROM articles") == [(0,)]  # the preview changed nothing
    run = invoke(project, "run")
    assert run.returncode == 0, run.stderr
    assert len(editions(project)) == 1
    assert rows(postgres_url, "SELECT digest, COUNT(*) FROM editions GROUP BY digest") == [("daily", 1)]
    status = json.loads(invoke(project, "status", "--json").stdout)
    assert status["articles"] == 1 and status["digests"][0]["editions"] == 1
    assert status["store"]["path"].startswith("postgresql://postgres@127.0.0.1")
    again = invoke(project, "run", now=TOMORROW)
    assert again.returncode == 0 and "nothing new" in again.stdout
    assert len(editions(project)) == 1
    after = invoke(project, "preview")
    assert "nothing new" in after.stderr


def test_store_copy_moves_a_sqlite_store_over_and_nothing_is_sent_again(project: Project, postgres_url: str) -> None:
    assert invoke(project, "run").returncode == 0  # SQLite: one edition of the seed
    copied = invoke(project, "store", "copy", "--to", postgres_url)
    assert copied.returncode == 0, copied.stderr
    assert "1 articles" in copied.stdout and "1 editions" in copied.stdout
    use_postgres(project, postgres_url)
    again = invoke(project, "run", now=TOMORROW)
    assert again.returncode == 0, again.stderr
    assert "nothing new" in again.stdout and len(editions(project)) == 1  # the copied article is known: no repeat
    (project.root / "seeds" / "late.txt").write_text(
        "Harbour reopens\n\nThe harbour reopened on Monday after repairs to the quay.\n"
    )
    later = invoke(project, "run", now="2026-11-29T07:00:00+00:00")
    assert later.returncode == 0, later.stderr
    assert len(editions(project)) == 2 and "Harbour reopens" in editions(project)[-1].read_text()
    assert "Putin" not in editions(project)[-1].read_text()
    ids = rows(postgres_url, "SELECT id FROM editions ORDER BY id")
    assert ids == [(1,), (2,)]  # the new edition's id follows the copied one's
    itself = invoke(project, "store", "copy", "--to", postgres_url)
    assert itself.returncode == 2 and "already uses" in itself.stderr
    project.config.write_text(project.config.read_text().replace(f'url = "{postgres_url}"', 'path = "../state/digest.sqlite3"'))
    refused = invoke(project, "store", "copy", "--to", postgres_url)  # into a store that is not empty
    assert refused.returncode == 3 and "not empty" in refused.stderr and "Traceback" not in refused.stderr
    assert rows(postgres_url, "SELECT COUNT(*) FROM editions") == [(2,)]  # nothing written by the refused copy


def test_an_unreachable_database_is_one_line_and_exit_3(project: Project) -> None:
    use_postgres(project, "postgresql://postgres@127.0.0.1:1/digest")
    result = invoke(project, "run")
    assert result.returncode == 3, result.stderr
    assert "postgresql://postgres@127.0.0.1:1/digest" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_password_in_the_url_is_a_config_error(project: Project) -> None:
    use_postgres(project, "postgresql://digest:secret@127.0.0.1/digest")
    result = invoke(project, "check")
    assert result.returncode == 2 and "DIGEST_STORE_PASSWORD" in result.stderr


def test_an_edition_slot_is_claimed_once_and_freed_by_a_rollback(postgres_url: str) -> None:
    from datetime import datetime, timezone

    import pytest

    from digest.store.postgres import PostgresStore

    slot, other = datetime(2026, 11, 27, 7, tzinfo=timezone.utc), datetime(2026, 11, 27, 8, tzinfo=timezone.utc)
    first, second = PostgresStore(postgres_url, owner="first"), PostgresStore(postgres_url, owner="second")
    try:
        with first.transaction():
            assert first.claim_slot("daily", slot, slot)
        with second.transaction():
            assert not second.claim_slot("daily", slot, slot)  # made once, whichever worker asks
        with pytest.raises(RuntimeError):
            with first.transaction():
                assert first.claim_slot("daily", other, other)
                raise RuntimeError("the worker died before its edition committed")
        with second.transaction():
            assert second.claim_slot("daily", other, other)  # the rolled-back claim freed the slot
    finally:
        first.close()
        second.close()


def test_a_newsletter_taken_in_on_postgresql_reaches_the_next_run_and_no_sqlite_file_is_made(
    project: Project, postgres_url: str
) -> None:
    import smtplib

    from tests.smtpserver import free_port
    from tests.test_inbound import newsletter, running, write_config

    port = free_port()
    write_config(project, port)
    use_postgres(project, postgres_url)
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.send_message(newsletter("Sent to PostgreSQL", "<pg-1@substack.com>")) == {}
    assert rows(postgres_url, "SELECT source, message_key FROM inbound_messages") == [("letters", "<pg-1@substack.com>")]
    run = invoke(project, "run", "--json")
    assert run.returncode == 0, run.stderr
    assert {s["name"]: s["new_articles"] for s in json.loads(run.stdout)["sources"]} == {"letters": 1, "tech": 0}
    assert rows(postgres_url, "SELECT title FROM articles") == [("Sent to PostgreSQL",)]
    assert not (project.root / "state" / "digest.sqlite3").exists()  # the listener and the source used the database


def test_a_store_copied_from_sqlite_keeps_each_readers_place_in_arrival_order(tmp_path: Path, postgres_url: str) -> None:
    """Readers' watermarks count arrival numbers: after `store copy`, PostgreSQL numbers what comes next
    (an article the SQLite store had not numbered yet, and one stored after the copy) past the copied ones."""
    from datetime import datetime, timedelta, timezone

    from digest.config import StoreConfig
    from digest.models import Article, Summary
    from digest.store import Store, copy_store_to, open_store

    now = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
    summary = Summary(("One sentence.",), "lead", "english")

    def article(name: str) -> Article:
        return Article(
            source="news", identity=name, title=name, body=f"Body of {name}.", published=now, url=f"https://e.org/{name}"
        )

    def readers_edition(store: Store, day: int) -> list[str]:
        reader = store.subscriber_by_address("daily", "ann@example.org")
        assert reader is not None
        slot = now + timedelta(days=day)
        edition, _ = store.create_subscriber_edition(
            "daily", ["news"], [reader.id], reader.watermark, slot, 50, lambda text: True, slot
        )
        return sorted(a.title for a in edition.articles) if edition else []

    path = tmp_path / "digest.sqlite3"
    embedded = open_store(path)
    try:
        embedded.add_subscriber("daily", "ann@example.org", "", "UTC", "07:00", [], [], "active", now)
        with embedded.transaction():
            for name in ("a", "b"):
                embedded.add_article(article(name), summary, now)
        assert readers_edition(embedded, 1) == ["a", "b"]
        with embedded.transaction():
            embedded.add_article(article("c"), summary, now)  # not numbered yet: no reader's edition saw it
    finally:
        embedded.close()
    copy_store_to(StoreConfig(path=path), postgres_url)
    shared = open_store(StoreConfig(url=postgres_url))
    try:
        with shared.transaction():
            shared.add_article(article("d"), summary, now)
        assert readers_edition(shared, 2) == ["c", "d"]  # nothing sent twice, nothing passed over
    finally:
        shared.close()
