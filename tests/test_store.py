"""What is particular to the SQLite store, on a real file in a temp folder: opening, migrating, damage.

What every store must do is tests/test_store_contract.py's."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.models import Article, Summary
from digest.store import Store, open_store

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
SUMMARY = Summary(("One sentence.",), "lead", "english")


def article(
    identity: str,
    body: str | None = None,
    *,
    source: str = "news",
    version: str = "1",
    published: datetime | None = None,
    backfilled: bool = False,
) -> Article:
    return Article(
        source=source,
        identity=identity,
        title=f"Title {identity}",
        body=body or f"Body of {identity}.",
        published=published or NOW,
        version=version,
        backfilled=backfilled,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "state" / "digest.sqlite3")


def test_a_failed_transaction_keeps_nothing_and_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "digest.sqlite3"
    store = open_store(path)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_article(article("lost"), SUMMARY, NOW)
            raise RuntimeError("crash")
    with store.transaction():
        store.add_article(article("kept"), SUMMARY, NOW)
    store.close()
    reopened = open_store(path)
    assert reopened.article_count() == 1
    assert reopened.is_known(article("kept"))


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    from digest.errors import StoreError

    path = tmp_path / "digest.sqlite3"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(StoreError, match="digest.sqlite3"):
        open_store(path)


def _open_store_at(path: str, start: float) -> str:
    """Open (and so migrate) the store at wall-clock time `start`; the error, if any, as text."""
    time.sleep(max(0.0, start - time.time()))  # line the processes up, so they race
    try:
        open_store(Path(path)).close()
    except StoreError as error:
        return str(error)
    return ""


def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    """A daemon starting while `digest status` runs: both open a store that does not exist yet."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:  # six processes, each opening one store of each attempt (each sleeps until then)
        for attempt in range(3):
            path = tmp_path / f"race-{attempt}" / "digest.sqlite3"
            start = time.time() + (1.5 if attempt == 0 else 0.5)  # after every process has started
            errors = pool.starmap(_open_store_at, [(str(path), start)] * 6, chunksize=1)
            assert errors == [""] * 6


def test_migrations_are_named_and_recorded_and_a_store_from_before_names_gets_only_the_rest(tmp_path: Path) -> None:
    import sqlite3

    from digest.store import MIGRATIONS

    path = tmp_path / "digest.sqlite3"
    store = open_store(path)
    store.add_article(article("kept"), SUMMARY, NOW)
    store.close()
    names = [name for name, _ in MIGRATIONS]
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY rowid")] == names
        # back to a store of numbered migrations 1-4, as digest made them before names
        for statement in (
            "DROP TABLE migrations",
            "DROP TABLE subscribers",
            "DROP TABLE secrets",
            "DROP TABLE archive_feeds",
            "DROP INDEX editions_atom_id",
            "ALTER TABLE editions DROP COLUMN atom_id",
            "DROP INDEX articles_unpruned",
            "ALTER TABLE deliveries DROP COLUMN lease_owner",
            "ALTER TABLE sources DROP COLUMN failing_since",
            "DROP TABLE inbound_messages",
            "DROP TABLE inbound_counts",
            "DROP TRIGGER article_search_insert",
            "DROP TRIGGER article_search_update",
            "DROP TRIGGER article_search_delete",
            "DROP TABLE article_search",
            "DROP VIEW article_search_text",
            "DROP TABLE article_search_queue",
            "ALTER TABLE articles DROP COLUMN story_features",
            "ALTER TABLE editions DROP COLUMN stories",
            "DROP INDEX articles_summary_pending",
            "ALTER TABLE articles DROP COLUMN summary_pending",
            "DROP INDEX articles_arrival",
            "DROP INDEX articles_unstamped",
            "ALTER TABLE articles DROP COLUMN arrival",
            "DROP INDEX sources_next_poll",
            "ALTER TABLE sources DROP COLUMN poll_every",
            "ALTER TABLE sources DROP COLUMN next_poll",
            "ALTER TABLE sources DROP COLUMN poll_claimed_until",
            "DROP TABLE host_manners",
            "PRAGMA user_version = 4",
        ):
            db.execute(statement)
    reopened = open_store(path)
    try:
        assert reopened.is_known(article("kept"))
        assert reopened.subscribers() == []  # a later migration's table is there
    finally:
        reopened.close()
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY rowid")] == names


def test_a_store_made_by_a_newer_digest_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "digest.sqlite3"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO migrations (name, applied) VALUES ('9999_from_the_future', '')")
    with pytest.raises(StoreError, match="newer digest .*9999_from_the_future"):
        open_store(path)
