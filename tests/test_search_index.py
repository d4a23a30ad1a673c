"""The SQLite store's search index (migrations 0011 and 0021), on a real file: stored articles are queued and
indexed in bulk, by the next search or edition at the latest; a store made before the queue upgrades; and
whatever was written, failed, changed, pruned or deleted, the index holds exactly what the articles hold.

What every store's search must do is tests/test_store_contract.py's."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.models import Article, Summary
from digest.store import MIGRATIONS, SqliteStore, open_store
from digest.store.sqlite import SEARCH_QUEUE, statements

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
SUMMARY = Summary(("One sentence.",), "lead", "english")


def article(identity: str, body: str) -> Article:
    return Article(source="news", identity=identity, title=f"Title {identity}", body=body, published=NOW, version="1")


def found(store: SqliteStore, word: str) -> list[str]:
    return sorted(hit.article.title for hit in store.search([word], None, None, 50))


def indexed(path: Path, word: str) -> list[int]:
    """Ids the FTS5 index itself holds for a word (no search made, so nothing indexed on the way)."""
    with sqlite3.connect(path) as db:
        return [
            row[0] for row in db.execute("SELECT rowid FROM article_search WHERE article_search MATCH ? ORDER BY rowid", (word,))
        ]


def assert_index_matches_the_articles(path: Path) -> None:
    """Every term, article, column and position in the index is what indexing the articles afresh gives, and
    nothing more (FTS5's own integrity-check does not compare an external-content index with its content)."""
    with sqlite3.connect(path) as db:
        db.execute(
            """CREATE VIRTUAL TABLE temp.fresh USING fts5(title, summary, body,
               tokenize='porter unicode61 remove_diacritics 2')"""
        )
        db.execute(
            """INSERT INTO temp.fresh (rowid, title, summary, body) SELECT id, title, summary, body FROM main.article_search_text
               WHERE id NOT IN (SELECT id FROM main.article_search_queue)"""
        )
        db.execute("CREATE VIRTUAL TABLE temp.kept_terms USING fts5vocab(main, article_search, instance)")
        db.execute("CREATE VIRTUAL TABLE temp.fresh_terms USING fts5vocab(temp, fresh, instance)")
        kept = set(db.execute("SELECT term, doc, col, offset FROM temp.kept_terms"))
        fresh = set(db.execute("SELECT term, doc, col, offset FROM temp.fresh_terms"))
        assert fresh, "nothing indexed"
        assert kept == fresh, (sorted(kept - fresh)[:5], sorted(fresh - kept)[:5])
        db.execute("INSERT INTO main.article_search (article_search) VALUES ('integrity-check')")


def test_stored_articles_wait_for_the_index_until_a_search_or_an_edition_or_a_full_queue(tmp_path: Path) -> None:
    path = tmp_path / "digest.sqlite3"
    store = open_store(path)
    assert isinstance(store, SqliteStore)
    try:
        with store.transaction():
            store.add_article(article("heron", "A heron stood in the river."), SUMMARY, NOW)
        assert indexed(path, "heron") == []  # queued, not yet indexed
        assert found(store, "heron") == ["Title heron"]  # a search indexes the queue first
        assert indexed(path, "heron") == [1]

        with store.transaction():
            store.add_article(article("egret", "An egret stood in the marsh."), SUMMARY, NOW)
        edition = store.create_edition("daily", ["news"], 50, NOW, [])
        assert edition is not None and indexed(path, "egret") == [2]  # searchable by the time its edition is made

        writes = store.batch(max_writes=SEARCH_QUEUE, max_seconds=3600)
        for number in range(SEARCH_QUEUE):
            with writes.write():
                store.add_article(article(f"swan-{number}", "A swan on the lake."), SUMMARY, NOW)
        assert len(indexed(path, "swan")) == SEARCH_QUEUE  # the commit that found the queue full indexed it
    finally:
        store.close()
    assert_index_matches_the_articles(path)


def test_the_index_holds_what_the_articles_hold_after_failed_changed_pruned_and_deleted_writes(tmp_path: Path) -> None:
    path = tmp_path / "digest.sqlite3"
    store = open_store(path)
    assert isinstance(store, SqliteStore)
    try:
        store.add_article(article("old", "The old ferry called at Kirkwall."), SUMMARY, NOW - timedelta(days=100))
        assert found(store, "ferry") == ["Title old"]  # indexed now, before the rest
        writes = store.batch(max_writes=100, max_seconds=3600)
        with writes.write():
            store.add_article(article("kept", "The lighthouse at Kirkwall was painted."), SUMMARY, NOW)
        with pytest.raises(RuntimeError), writes.write():
            store.add_article(article("failed", "A write that fails: the puffin."), SUMMARY, NOW)
            raise RuntimeError("one bad write")
        with writes.write():  # a queued article changed and pruned before it was ever indexed
            store.add_article(article("queued-old", "A gannet colony at Kirkwall."), SUMMARY, NOW - timedelta(days=100))
            store.prune(NOW - timedelta(days=90))  # the indexed one leaves the index at once, the queued one is queued again
            store.db.execute("UPDATE articles SET title = 'Renamed storm story' WHERE identity = 'kept'")
        with writes.write():
            store.add_article(article("deleted", "A deleted story about a cormorant."), SUMMARY, NOW)
            store.db.execute("DELETE FROM articles WHERE identity = 'deleted'")
        writes.commit()
        assert found(store, "kirkwall") == ["Renamed storm story"]  # pruned texts are not found by their words
        assert found(store, "ferry") == found(store, "gannet") == found(store, "puffin") == found(store, "cormorant") == []
        assert found(store, "old") == ["Title old", "Title queued-old"]  # identities and titles stay searchable
        assert found(store, "storm") == ["Renamed storm story"]
    finally:
        store.close()
    assert_index_matches_the_articles(path)


def test_a_store_indexed_article_by_article_upgrades_to_the_queue(tmp_path: Path) -> None:
    """A store as digest made it before 0021: its articles indexed by 0011's per-article triggers."""
    path = tmp_path / "digest.sqlite3"
    open_store(path).close()
    [search_sql] = [sql for name, sql in MIGRATIONS if name == "0011_article_search"]
    with sqlite3.connect(path) as db:  # back to 0011's triggers, then articles stored the old way
        for statement in (
            "DROP TRIGGER article_search_insert",
            "DROP TRIGGER article_search_update",
            "DROP TRIGGER article_search_delete",
            "DROP TABLE article_search_queue",
            "DELETE FROM migrations WHERE name = '0021_article_search_queue'",
        ):
            db.execute(statement)
        for statement in statements(search_sql):
            if statement.strip().startswith("CREATE TRIGGER"):
                db.execute(statement)
        for number, (word, fetched) in enumerate((("walrus", NOW - timedelta(days=100)), ("otter", NOW))):
            db.execute(
                """INSERT INTO articles (source, identity, version, content_hash, title, fetched, body, summary,
                   summary_algorithm) VALUES ('news', ?, '1', ?, ?, ?, ?, '["Old summary."]', 'lead')""",
                (word, f"hash-{number}", f"Old story {number}", fetched.isoformat(), f"An old {word} tale."),
            )
    assert indexed(path, "walrus") == [1]  # the old triggers indexed it as it was written

    store = open_store(path)
    assert isinstance(store, SqliteStore)
    try:
        assert found(store, "walrus") == ["Old story 0"] and found(store, "otter") == ["Old story 1"]
        store.add_article(article("seal", "A new seal pup."), SUMMARY, NOW)
        assert found(store, "seal") == ["Title seal"]
        store.prune(NOW - timedelta(days=90))
        assert found(store, "walrus") == []  # its pruned text left the index; its title did not
        assert found(store, "tale") == ["Old story 1"] and found(store, "story") == ["Old story 0", "Old story 1"]
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY rowid")][-1] == "0021_article_search_queue"
    assert_index_matches_the_articles(path)
