"""The store's guarantees, on a real SQLite file in a temp folder."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.models import Article, Summary
from digest.store import Store, open_store

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
SUMMARY = Summary(("One sentence.",), "lead", "english")


def article(identity: str, body: str | None = None, *, source: str = "news", version: str = "1",
            published: datetime | None = None, backfilled: bool = False) -> Article:
    return Article(source=source, identity=identity, title=f"Title {identity}", body=body or f"Body of {identity}.",
                   published=published or NOW, version=version, backfilled=backfilled)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "state" / "digest.sqlite3")


def test_an_article_is_stored_once_by_identity_and_once_by_text(store: Store) -> None:
    first = article("a", "The same story, told once.")
    assert store.add_article(first, SUMMARY, NOW) is not None
    assert store.is_known(first)
    copy = Article(source="news", identity="new-guid", title="Title a", body="the same  STORY told once", version="1")
    assert store.is_known(copy)  # a true copy: same source, title and link, same normalised text
    assert not store.is_known(article("other-guid", "The same story, told once."))  # another entry that says the same
    assert not store.is_known(Article(**{**vars(copy), "source": "elsewhere"}))  # another source's copy: grouping's job
    assert not store.is_known(article("a", "An updated story with new facts.", version="2"))
    assert store.add_article(first, SUMMARY, NOW) is None
    assert store.article_count() == 1


def test_every_article_is_in_exactly_one_edition_and_the_cap_leaves_the_rest_waiting(store: Store) -> None:
    for number in range(5):
        store.add_article(article(f"a{number}", published=NOW - timedelta(hours=number)), SUMMARY, NOW)
    first = store.create_edition("daily", ["news"], 3, NOW, [])
    assert first is not None
    assert [a.title for a in first.articles] == ["Title a0", "Title a1", "Title a2"]  # newest first
    assert first.waiting == 2
    second = store.create_edition("daily", ["news"], 3, NOW + timedelta(days=1), [])
    assert second is not None and [a.title for a in second.articles] == ["Title a3", "Title a4"]
    assert store.create_edition("daily", ["news"], 3, NOW + timedelta(days=2), []) is None
    other = store.create_edition("weekly", ["news"], 50, NOW, [])  # another digest gets all of them
    assert other is not None and len(other.articles) == 5


def test_backfilled_articles_and_other_sources_go_into_no_edition(store: Store) -> None:
    store.add_article(article("old", backfilled=True), SUMMARY, NOW)
    store.add_article(article("elsewhere", source="other"), SUMMARY, NOW)
    assert store.create_edition("daily", ["news"], 50, NOW, []) is None


def test_an_edition_and_its_outbox_rows_are_made_together(store: Store) -> None:
    store.add_article(article("a"), SUMMARY, NOW)
    edition = store.create_edition("daily", ["news"], 50, NOW, [("files", "/out"), ("email", "a@example.org")])
    assert edition is not None
    pending = store.due_deliveries(NOW)
    assert [(d.channel, d.recipient) for d in pending] == [("files", "/out"), ("email", "a@example.org")]
    store.record_attempt(pending[0].id, NOW, "delivered")
    store.record_attempt(pending[1].id, NOW, "pending", "451 try later", NOW + timedelta(minutes=1))
    assert [d.channel for d in store.due_deliveries(NOW)] == []
    assert [d.channel for d in store.due_deliveries(None)] == ["email"]
    assert store.edition(edition.id or 0).articles[0].title == "Title a"


def test_a_copy_holds_the_store_and_changing_it_changes_nothing(store: Store, tmp_path: Path) -> None:
    store.add_article(article("a"), SUMMARY, NOW)
    store.copy_to(tmp_path / "copy.sqlite3")
    copy = open_store(tmp_path / "copy.sqlite3")
    try:
        assert copy.article_count() == 1
        copy.add_article(article("b"), SUMMARY, NOW)
        with copy.transaction():
            assert copy.create_edition("daily", ["news"], 50, NOW, []) is not None
    finally:
        copy.close()
    assert store.article_count() == 1
    assert store.edition_count("daily") == 0


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
    for attempt in range(3):
        path = tmp_path / f"race-{attempt}" / "digest.sqlite3"
        start = time.time() + 1.5  # after every process has started
        with context.Pool(6) as pool:
            errors = pool.starmap(_open_store_at, [(str(path), start)] * 6)
        assert errors == [""] * 6


def test_a_delivery_is_leased_to_one_owner_until_its_lease_ends(tmp_path: Path) -> None:
    """Two processes (or machines) on one store: the second may take the delivery only once the first's lease expired."""
    from digest.store import SqliteStore

    path = tmp_path / "digest.sqlite3"
    first, second = SqliteStore(path, owner="first"), SqliteStore(path, owner="second")
    first.add_article(article("a"), SUMMARY, NOW)
    first.create_edition("daily", ["news"], 50, NOW, [("email", "a@example.org")])
    (delivery,) = first.due_deliveries(NOW)
    lease = timedelta(minutes=10)
    assert first.claim_delivery(delivery.id, NOW, lease)
    assert not second.claim_delivery(delivery.id, NOW + timedelta(minutes=9), lease)  # the first's lease runs
    assert first.claim_delivery(delivery.id, NOW + timedelta(minutes=9), lease)  # its owner renews it
    assert not second.claim_delivery(delivery.id, NOW + timedelta(minutes=18), lease)
    assert second.claim_delivery(delivery.id, NOW + timedelta(minutes=19), lease)  # expired: the first is presumed dead
    assert not first.claim_delivery(delivery.id, NOW + timedelta(minutes=20), lease)
    second.record_attempt(delivery.id, NOW + timedelta(minutes=20), "delivered")
    assert not first.claim_delivery(delivery.id, NOW + timedelta(hours=1), lease)  # delivered: nothing to claim


def test_a_write_batch_commits_when_told_or_full_and_a_failed_write_undoes_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "digest.sqlite3"
    writer, reader = open_store(path), open_store(path)
    try:
        writes = writer.batch(max_writes=3, max_seconds=3600)
        with writes.write():
            writer.add_article(article("a"), SUMMARY, NOW)
        with pytest.raises(RuntimeError):
            with writes.write():
                writer.add_article(article("lost"), SUMMARY, NOW)
                raise RuntimeError("the summary was bad")
        assert reader.article_count() == 0  # not committed yet: another process sees nothing
        writes.commit()
        assert reader.article_count() == 1
        for name in ("b", "c", "d"):
            with writes.write():
                writer.add_article(article(name), SUMMARY, NOW)
        assert reader.article_count() == 4  # the third write filled the batch and committed it
    finally:
        writer.close()
        reader.close()
