"""The SQLite store: the one implementation of digest.store.base.Store so far.

WAL mode, named migrations (each recorded in the `migrations` table when applied), and transactions that make
the guarantees of DESIGN.md hold: an article is stored and summarised once; an
edition and its outbox rows are created in one transaction, so an article is in
exactly one edition of each digest; a delivery is marked done only after it
succeeded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar, cast

from digest.config import StoreConfig
from digest.errors import StoreError, StoreLockedError
from digest.models import (
    Article,
    Delivery,
    Edition,
    EditionListing,
    EditionRef,
    InboundMessage,
    SearchHit,
    SourceState,
    StoredArticle,
    StoreSize,
    ReaderTime,
    Subscriber,
    Summary,
)
from digest.store import rows as from_row
from digest.store.base import WriteBatch
from digest.store.rows import moment as _moment
from digest.store.rows import text as _text

# Who holds the leases this process takes: made once per process, never reused, so a lease
# outlives its holder only until it expires (a second machine can take over a dead one's work).
PROCESS_OWNER = uuid.uuid4().hex


def connections_of(owner: str) -> str:
    """A LIKE pattern for the owners open_store gives the connections of `owner`'s process, `<owner>.<n>`."""
    return owner.split(".", 1)[0] + ".%"


# Articles waiting for the search index (migration 0021) that a commit indexes: enough that FTS5 writes
# few, big segments (an article costs ~0.15 ms to index), few enough that the wait before a search is short.
SEARCH_QUEUE = 500

# (name, SQL), applied in this order, each once; a new one goes at the END, and a landed one is never
# renamed or changed. Numbers 0012, 0013 and 0020 are the PostgreSQL store's own (digest worker's tables,
# in store/postgres.py), and 0021 is SQLite's own (its search index's queue: PostgreSQL keeps its tsvector
# itself); every other one goes into postgres.py's list too, under the same name. A store made before
# names (PRAGMA user_version N) has the first N recorded as applied.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
    CREATE TABLE sources (
        name TEXT PRIMARY KEY,
        memo TEXT NOT NULL DEFAULT '{}',
        first_poll TEXT,
        last_poll TEXT,
        last_success TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE articles (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        identity TEXT NOT NULL,
        version TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT,
        author TEXT,
        language TEXT,
        published TEXT,
        fetched TEXT NOT NULL,
        body TEXT NOT NULL,
        summary TEXT NOT NULL,
        summary_algorithm TEXT NOT NULL,
        summary_note TEXT NOT NULL DEFAULT '',
        backfilled INTEGER NOT NULL DEFAULT 0,
        UNIQUE (source, identity, version)
    );
    CREATE INDEX articles_content_hash ON articles (content_hash);
    CREATE INDEX articles_source_order ON articles (source, backfilled, published);
    CREATE TABLE editions (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE INDEX editions_digest ON editions (digest, created);
    CREATE TABLE edition_articles (
        edition_id INTEGER NOT NULL REFERENCES editions (id),
        digest TEXT NOT NULL,
        article_id INTEGER NOT NULL REFERENCES articles (id),
        position INTEGER NOT NULL,
        PRIMARY KEY (digest, article_id)
    );
    CREATE INDEX edition_articles_edition ON edition_articles (edition_id, position);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        edition_id INTEGER NOT NULL REFERENCES editions (id),
        digest TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        next_attempt TEXT,
        done TEXT,
        UNIQUE (edition_id, channel, recipient)
    );
    CREATE INDEX deliveries_status ON deliveries (status, next_attempt);
    """,
    ),
    # a server's Retry-After holds a source's next poll back
    (
        "0002_source_not_before",
        """
    ALTER TABLE sources ADD COLUMN not_before TEXT;
    """,
    ),
    # when each digest's schedule last ran, edition or not, so a restart
    # does not take a run that found nothing new for a missed one
    (
        "0003_digest_runs",
        """
    CREATE TABLE digest_runs (
        digest TEXT PRIMARY KEY,
        last_run TEXT NOT NULL
    );
    """,
    ),
    # a delivery is claimed before it is tried, so a `digest run` and the daemon
    # never send the same pending email at once
    (
        "0004_delivery_claims",
        """
    ALTER TABLE deliveries ADD COLUMN claimed_until TEXT;
    ALTER TABLE deliveries ADD COLUMN claimed_by INTEGER;
    """,
    ),
    # subscribers: readers with their own time, time zone and words; `watermark` is the highest
    # article arrival (its id before 0017) already considered for them (sent, or filtered out), so nothing repeats or is lost;
    # `secrets` holds the random key that signs unsubscribe links when no environment variable does
    (
        "0005_subscribers",
        """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL,
        address TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        timezone TEXT NOT NULL,
        at TEXT NOT NULL,
        include TEXT NOT NULL DEFAULT '[]',
        exclude TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        changed TEXT NOT NULL,
        watermark INTEGER NOT NULL DEFAULT 0,
        last_slot TEXT,
        UNIQUE (digest, address)
    );
    CREATE INDEX subscribers_due ON subscribers (digest, status, timezone, at);
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    ),
    # (archive) each edition's Atom id, made once (a random urn:uuid, never derived from a
    # URL or file name, so a changed base_url or a rebuilt archive changes no id); earlier
    # editions get theirs here. And each digest's feed id, made when its archive is first written.
    (
        "0006_archive_atom_ids",
        """
    ALTER TABLE editions ADD COLUMN atom_id TEXT;
    UPDATE editions SET atom_id = 'urn:uuid:' || lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
        || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1)
        || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
    CREATE UNIQUE INDEX editions_atom_id ON editions (atom_id);
    CREATE TABLE archive_feeds (
        digest TEXT PRIMARY KEY,
        atom_id TEXT NOT NULL
    );
    """,
    ),
    # when a failing source's current run of failures began, for the digest's "sources with problems"
    (
        "0007_source_failing_since",
        """
    ALTER TABLE sources ADD COLUMN failing_since TEXT;
    UPDATE sources SET failing_since = last_poll WHERE failures > 0;
    """,
    ),
    # claims are leases held by an owner id (one per process), not by a process id:
    # claimed_until is the lease's end, lease_owner its holder; claimed_by is no longer used
    (
        "0008_delivery_lease_owner",
        """
    ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
    """,
    ),
    # retention finds the articles that still hold text by when they were fetched
    (
        "0009_articles_unpruned",
        """
    CREATE INDEX articles_unpruned ON articles (fetched) WHERE body != '';
    """,
    ),
    # newsletters: mail taken in by the inbound listener, committed before it answers 250;
    # one row per mailbox source and Message-ID (else a hash of the message), and what it refused
    (
        "0010_inbound_mail",
        """
    CREATE TABLE inbound_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        message_key TEXT NOT NULL,
        received TEXT NOT NULL,
        sender TEXT NOT NULL,
        raw BLOB NOT NULL,
        UNIQUE (source, message_key)
    );
    CREATE TABLE inbound_counts (
        source TEXT NOT NULL,
        outcome TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 0,
        last TEXT NOT NULL,
        PRIMARY KEY (source, outcome)
    );
    """,
    ),
    # search (digest search, serve's /DIGEST/search): an FTS5 index of each article's title, summary (its
    # sentences, out of their JSON list) and text, whose content is read through a view of `articles`
    # (nothing stored twice); triggers keep it in step with every insert, change and prune (a pruned
    # text leaves the index). Ranked by BM25 with a title word worth 10 of the text's, a summary's 4.
    # Filled by INSERT ... SELECT: FTS5's 'rebuild' cannot read a view whose column runs json_each.
    (
        "0011_article_search",
        """
    CREATE VIEW article_search_text AS
        SELECT id, title, (SELECT group_concat(value, ' ') FROM json_each(articles.summary)) AS summary, body
        FROM articles;
    CREATE VIRTUAL TABLE article_search USING fts5(
        title, summary, body, content='article_search_text', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2');
    INSERT INTO article_search (article_search, rank) VALUES ('rank', 'bm25(10.0, 4.0, 1.0)');
    INSERT INTO article_search (rowid, title, summary, body) SELECT id, title, summary, body FROM article_search_text;
    CREATE TRIGGER article_search_insert AFTER INSERT ON articles BEGIN
        INSERT INTO article_search (rowid, title, summary, body)
        VALUES (new.id, new.title, (SELECT group_concat(value, ' ') FROM json_each(new.summary)), new.body);
    END;
    CREATE TRIGGER article_search_delete AFTER DELETE ON articles BEGIN
        INSERT INTO article_search (article_search, rowid, title, summary, body)
        VALUES ('delete', old.id, old.title, (SELECT group_concat(value, ' ') FROM json_each(old.summary)), old.body);
    END;
    CREATE TRIGGER article_search_update AFTER UPDATE OF title, summary, body ON articles BEGIN
        INSERT INTO article_search (article_search, rowid, title, summary, body)
        VALUES ('delete', old.id, old.title, (SELECT group_concat(value, ' ') FROM json_each(old.summary)), old.body);
        INSERT INTO article_search (rowid, title, summary, body)
        VALUES (new.id, new.title, (SELECT group_concat(value, ' ') FROM json_each(new.summary)), new.body);
    END;
    """,
    ),
    # each article's grouping features (digest.stories), made once when it is stored, beside its
    # summary; '' for articles stored before (they are grouped by their title and summary)
    (
        "0014_story_features",
        """
    ALTER TABLE articles ADD COLUMN story_features TEXT NOT NULL DEFAULT '';
    """,
    ),
    # how an edition's page grouped it (JSON: story count and first headlines), kept when the page is
    # rendered so the archive's index lists stories without grouping every edition again; NULL until then
    (
        "0015_edition_stories",
        """
    ALTER TABLE editions ADD COLUMN stories TEXT;
    """,
    ),
    # (made by `digest worker`, whose polls leave summarising to summary tasks) an article stored before
    # its summary: 1 until the summary is set; no edition takes it meanwhile
    (
        "0016_summary_pending",
        """
    ALTER TABLE articles ADD COLUMN summary_pending INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX articles_summary_pending ON articles (fetched) WHERE summary_pending = 1;
    """,
    ),
    # each article's arrival number, the order readers' editions take articles in (and their watermark's
    # unit): given when a reader's edition (or a new reader) first looks, under the write lock, so it
    # follows commit order on any store (a PostgreSQL id does not). NULL until then; earlier ones keep their id
    (
        "0017_article_arrival",
        """
    ALTER TABLE articles ADD COLUMN arrival INTEGER;
    UPDATE articles SET arrival = id;
    CREATE INDEX articles_arrival ON articles (arrival);
    CREATE INDEX articles_unstamped ON articles (id) WHERE arrival IS NULL;
    """,
    ),
    # (`digest worker`) when each source is next due, kept at each poll so the tick finds the due sources
    # with one indexed query instead of reading every source's history; a poll deferred is claimed until
    # its poll is recorded or its lease ends, so it is not deferred twice
    (
        "0018_poll_plan",
        """
    ALTER TABLE sources ADD COLUMN poll_every REAL;
    ALTER TABLE sources ADD COLUMN next_poll TEXT;
    ALTER TABLE sources ADD COLUMN poll_claimed_until TEXT;
    CREATE INDEX sources_next_poll ON sources (next_poll);
    """,
    ),
    # (`digest worker`) each host's manners as every worker sees them (digest.manners.SharedPace as JSON):
    # requests in flight, the gap between starts, a Retry-After hold, changed in short transactions
    (
        "0019_host_manners",
        """
    CREATE TABLE host_manners (origin TEXT PRIMARY KEY, state TEXT NOT NULL);
    """,
    ),
    # (SQLite only) search is indexed in bulk instead of once per article: FTS5 writes its pending terms out
    # at every savepoint and commit, so indexing each article in the pipeline's per-article savepoint made
    # one index segment per article and kept merging them (+139% on the store's write time). Now a stored
    # or changed article only queues its id; the queue is indexed in one statement (SqliteStore.
    # index_for_search) when SEARCH_QUEUE articles wait at a commit, when an edition is made and before
    # a search, so a search finds every stored article. A changed or deleted article still leaves the
    # index at once (a pruned text leaves it), unless it was queued and so not in the index yet.
    (
        "0021_article_search_queue",
        """
    DROP TRIGGER article_search_insert;
    DROP TRIGGER article_search_update;
    DROP TRIGGER article_search_delete;
    CREATE TABLE article_search_queue (id INTEGER PRIMARY KEY);
    CREATE TRIGGER article_search_insert AFTER INSERT ON articles BEGIN
        INSERT OR IGNORE INTO article_search_queue (id) VALUES (new.id);
    END;
    CREATE TRIGGER article_search_delete AFTER DELETE ON articles BEGIN
        INSERT INTO article_search (article_search, rowid, title, summary, body)
        SELECT 'delete', old.id, old.title, (SELECT group_concat(value, ' ') FROM json_each(old.summary)), old.body
        WHERE NOT EXISTS (SELECT 1 FROM article_search_queue WHERE id = old.id);
        DELETE FROM article_search_queue WHERE id = old.id;
    END;
    CREATE TRIGGER article_search_update AFTER UPDATE OF title, summary, body ON articles BEGIN
        INSERT INTO article_search (article_search, rowid, title, summary, body)
        SELECT 'delete', old.id, old.title, (SELECT group_concat(value, ' ') FROM json_each(old.summary)), old.body
        WHERE NOT EXISTS (SELECT 1 FROM article_search_queue WHERE id = old.id);
        INSERT OR IGNORE INTO article_search_queue (id) VALUES (new.id);
    END;
    """,
    ),
    # (`digest worker`) mail received since a mailbox source's last poll is found by one index probe per
    # source, so the tick hands it to a worker within a second instead of waiting for the poll interval
    (
        "0022_inbound_received",
        """
    CREATE INDEX inbound_messages_received ON inbound_messages (source, received);
    """,
    ),
)


def statements(sql: str) -> Iterator[str]:
    """The SQL statements of a migration, one at a time: split at each `;` that ends a whole statement
    (sqlite3.complete_statement), so a trigger's body stays in one piece."""
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if pending.strip(" \n;") and sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip(" \n;"):
        yield pending


# How to get going again when the store cannot be read: said in every such error.
RECOVER = "move it aside and restore it from a backup, or let the next run start a new, empty store there"


def new_atom_id() -> str:
    """A new, random, permanent Atom id (RFC 4122 UUID URN): it names an edition or feed forever."""
    return f"urn:uuid:{uuid.uuid4()}"


def content_hash(text: str) -> str:
    """Hash of the normalised text: case, punctuation and white space ignored."""
    words = re.findall(r"\w+", text.casefold())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:32]


Method = TypeVar("Method", bound=Callable[..., Any])
T = TypeVar("T")


def _translating(method: Method) -> Method:
    """Turn SQLite's errors in a store method into StoreError (unusable, with how to recover)."""

    @functools.wraps(method)
    def call(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            raise self._translate(error) from None

    return cast(Method, call)


def _translates_errors(cls: type[SqliteStore]) -> type[SqliteStore]:
    """Wrap every public method of the store (a context manager translates its own), so a damaged
    file (a page of garbage, a dropped table) is one StoreError at the boundary, never a traceback."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_") and name not in ("transaction", "batch", "snapshot", "read_rows"):
            setattr(cls, name, _translating(member))
    return cls


# What an edition shows of an article: never its body (a 5,000-article edition's bodies are ~50 MB), nor its
# story features (grouping reads them a page at a time: story_features).
_STORED_COLUMNS = "a.id, a.source, a.title, a.url, a.published, a.author, a.language, a.summary, a.fetched"


@_translates_errors
class SqliteStore:
    """One open SQLite store (digest.store.base.Store). Not shared between threads."""

    def __init__(self, path: Path, *, timeout: float = 5.0, owner: str = PROCESS_OWNER) -> None:
        self.path = Path(path)
        self.location: StoreConfig | Path = self.path
        self.owner = owner
        self._depth = 0
        try:
            if not self.path.exists():
                self._create(timeout)
            elif self.path.is_file() and self.path.stat().st_size == 0:
                # SQLite would take an empty file for a new database: everything would be sent again.
                raise StoreError(
                    f"store {self.path} is an empty file (0 bytes), not a digest store; "
                    f"{RECOVER} (a new store is made only where no file is)"
                )
            self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._use_wal(timeout)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise self._translate(error) from None
        except OSError as error:
            raise StoreError(f"store {self.path} is unusable: {error.strerror or error}") from None

    def _create(self, timeout: float) -> None:
        """Make a new store whole beside its path, then link it into place, so that the path
        never names a half-made (empty) store, and two processes making it at once agree."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        fresh.unlink(missing_ok=True)
        try:
            db = sqlite3.connect(fresh, timeout=timeout, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
            finally:
                db.close()
            try:
                os.link(fresh, self.path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            for leftover in (fresh, fresh.with_name(fresh.name + "-wal"), fresh.with_name(fresh.name + "-shm")):
                leftover.unlink(missing_ok=True)

    def check_integrity(self) -> None:
        """SQLite's quick check of every page; StoreError saying how to recover when it fails.
        The daemon runs it once at start, so a corrupt store stops it (exit 3) instead of failing each job."""
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StoreError(f"store {self.path} is unusable (damaged: {' '.join('; '.join(problems).split())[:200]}); {RECOVER}")

    def _use_wal(self, timeout: float) -> None:
        """Switch to WAL mode, waiting out other processes opening the same new store.

        SQLite answers "locked" at once, without its busy timeout, when the
        journal mode cannot change because another connection is opening it.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _translate(self, error: sqlite3.Error) -> StoreError:
        if "locked" in str(error) or "busy" in str(error):
            return StoreLockedError(f"store {self.path} is locked by another process")
        if not isinstance(error, sqlite3.OperationalError) or str(error).startswith(("no such table", "no such column")):
            return StoreError(f"store {self.path} is unusable ({error}); {RECOVER}")
        return StoreError(f"store {self.path}: {error}")

    def _migrate(self) -> None:
        """Apply the named migrations this store lacks, each in its own write transaction with its record.

        What was applied is read again under the write lock, so two processes opening
        a new store at once (a daemon starting while `digest status` runs) do
        not both apply the same migration.
        """
        names = [name for name, _ in MIGRATIONS]
        if self._applied() == names:
            return
        while True:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                applied = self._applied()
                unknown = [name for name in applied if name not in names]
                if unknown:
                    raise StoreError(f"store {self.path} was made by a newer digest (migration {unknown[0]})")
                missing = [(name, sql) for name, sql in MIGRATIONS if name not in applied]
                if not missing:
                    self.db.execute("COMMIT")
                    return
                name, sql = missing[0]
                for statement in statements(sql):
                    self.db.execute(statement)
                self.db.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)", (name, _text(datetime.now(timezone.utc))))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _applied(self) -> list[str]:
        """Names of the migrations applied, in order; a store from before names gets its record made."""
        exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'").fetchone()
        if exists is None:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'migrations'").fetchone() is None:
                    self.db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
                    version = self.db.execute("PRAGMA user_version").fetchone()[0]
                    self.db.executemany(
                        "INSERT INTO migrations (name, applied) VALUES (?, '')", [(name,) for name, _ in MIGRATIONS[:version]]
                    )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return [row[0] for row in self.db.execute("SELECT name FROM migrations ORDER BY rowid")]

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block; nests (as a savepoint) inside an outer one."""
        self._depth += 1
        savepoint = f"level{self._depth}"
        undo = ["ROLLBACK"] if self._depth == 1 else [f"ROLLBACK TO {savepoint}", f"RELEASE {savepoint}"]
        try:
            self.db.execute("BEGIN IMMEDIATE" if self._depth == 1 else f"SAVEPOINT {savepoint}")
            try:
                yield
                if self._depth == 1:
                    self._index_queued(at_least=SEARCH_QUEUE)
            except BaseException:
                for statement in undo:
                    self.db.execute(statement)
                raise
            self.db.execute("COMMIT" if self._depth == 1 else f"RELEASE {savepoint}")
        except sqlite3.DatabaseError as error:
            raise self._translate(error) from None
        finally:
            self._depth -= 1

    def index_for_search(self) -> None:
        """Make every stored article searchable now: index the queue (migration 0021) in one statement."""
        if self._depth:
            self._index_queued()
        else:
            with self.transaction():
                self._index_queued()

    def _index_queued(self, at_least: int = 1) -> None:
        """Index the queued articles in one statement, when at least `at_least` are queued."""
        if self.db.execute("SELECT 1 FROM article_search_queue LIMIT 1 OFFSET ?", (at_least - 1,)).fetchone() is None:
            return
        self.db.execute(
            """INSERT INTO article_search (rowid, title, summary, body) SELECT id, title, summary, body
               FROM article_search_text WHERE id IN (SELECT id FROM article_search_queue)"""
        )
        self.db.execute("DELETE FROM article_search_queue")

    def batch(self, max_writes: int, max_seconds: float) -> WriteBatch:
        """Group the writes that follow into few transactions; see WriteBatch."""
        return WriteBatch(self, max_writes, max_seconds)

    def copy_to(self, path: Path) -> None:
        """Write a consistent copy of the store to `path` (SQLite's online backup): other
        processes go on reading and writing meanwhile, and the copy can be changed freely."""
        try:
            target = sqlite3.connect(path)
            try:
                self.db.backup(target)
            finally:
                target.close()
        except sqlite3.DatabaseError as error:
            raise self._translate(error) from None

    # Table rows, for digest/store/copy.py

    def table_columns(self, table: str) -> list[str]:
        """The columns of `table`, in order."""
        return [row["name"] for row in self.db.execute("SELECT name FROM pragma_table_info(?)", (table,))]

    def read_rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every row of `table` (these columns), in primary key order."""
        for row in self.db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1"):
            yield tuple(row)

    def write_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows as they are, ids included."""
        self.db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})", rows)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view of the whole store for the reads inside (a read transaction)."""
        self.db.execute("BEGIN")
        try:
            self.db.execute("SELECT COUNT(*) FROM migrations").fetchone()  # the read snapshot starts here
            yield
        finally:
            self.db.execute("ROLLBACK")

    # Sources

    def source_state(self, name: str) -> SourceState:
        """The memo and health of a source; a never-polled source has first_poll None."""
        row = self.db.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        return from_row.source_state(name, row)

    def record_poll(
        self, name: str, now: datetime, memo: dict[str, str] | None, error: str = "", not_before: datetime | None = None
    ) -> None:
        """Record a poll's outcome; the memo is kept only when the poll succeeded.

        `first_poll` is set by the first successful poll: until a feed was read once,
        its next poll is still a first poll, whose old entries go into no edition.

        `not_before` (a server's Retry-After) holds the source's next poll back.
        """
        self.db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))
        if error:
            self.db.execute(
                "UPDATE sources SET last_poll = ?, failures = failures + 1, last_error = ?, not_before = ?, "
                "failing_since = COALESCE(failing_since, ?) WHERE name = ?",
                (_text(now), error, _text(not_before), _text(now), name),
            )
        else:
            self.db.execute(
                "UPDATE sources SET first_poll = COALESCE(first_poll, ?), last_poll = ?, last_success = ?, failures = 0, "
                "last_error = '', memo = ?, not_before = NULL, failing_since = NULL WHERE name = ?",
                (_text(now), _text(now), _text(now), json.dumps(memo or {}), name),
            )
        row = self.db.execute("SELECT last_poll, poll_every, not_before FROM sources WHERE name = ?", (name,)).fetchone()
        self.db.execute(
            "UPDATE sources SET next_poll = ?, poll_claimed_until = NULL WHERE name = ?",
            (from_row.next_poll(row["last_poll"], row["poll_every"], row["not_before"]), name),
        )

    def plan_polls(self, intervals: Mapping[str, timedelta]) -> None:
        """Keep each source's poll interval and when it is next due; sources not named are never due."""
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO sources (name) VALUES (?)", [(name,) for name in intervals])
            plans = []
            for row in self.db.execute("SELECT name, last_poll, not_before FROM sources").fetchall():
                every = intervals[row["name"]].total_seconds() if row["name"] in intervals else None
                plans.append((every, from_row.next_poll(row["last_poll"], every, row["not_before"]), row["name"]))
            self.db.executemany("UPDATE sources SET poll_every = ?, next_poll = ? WHERE name = ?", plans)

    def claim_due_polls(self, now: datetime, lease: timedelta, limit: int) -> list[str]:
        """Claim the sources due a poll by `now` and not claimed (or whose claim ended), soonest due first."""
        with self.transaction():
            rows = self.db.execute(
                "UPDATE sources SET poll_claimed_until = ? WHERE name IN (SELECT name FROM sources WHERE next_poll <= ? "
                "AND (poll_claimed_until IS NULL OR poll_claimed_until <= ?) ORDER BY next_poll LIMIT ?) RETURNING name, next_poll",
                (_text(now + lease), _text(now), _text(now), limit),
            ).fetchall()
        return [row["name"] for row in sorted(rows, key=lambda row: (row["next_poll"], row["name"]))]

    def change_host(self, origin: str, change: Callable[[str | None], tuple[str, T]]) -> T:
        """Change the stored manners of host `origin` in one write transaction; what `change` returns."""
        with self.transaction():
            row = self.db.execute("SELECT state FROM host_manners WHERE origin = ?", (origin,)).fetchone()
            state, result = change(row["state"] if row else None)
            self.db.execute("INSERT OR REPLACE INTO host_manners (origin, state) VALUES (?, ?)", (origin, state))
        return result

    def source_states(self) -> list[SourceState]:
        """Every source the store has seen, by name."""
        names = [row[0] for row in self.db.execute("SELECT name FROM sources ORDER BY name")]
        return [self.source_state(name) for name in names]

    # Articles

    def is_known(self, article: Article) -> bool:
        """True when this version of the article, or a true copy of it, is stored already.

        A true copy is in the same source with the same title, link and text (a feed that
        republished an entry under a new GUID, a file copied under another name). Entries
        that merely share their text (twenty posts saying "Photo") are distinct, and an
        article of another source never hides this one: folding copies across sources is
        grouping's job, so every digest drawing on this source still gets it.
        """
        row = self.db.execute(
            "SELECT 1 FROM articles WHERE (source = ? AND identity = ? AND version = ?) "
            "OR (content_hash = ? AND source = ? AND title = ? AND url IS ?) LIMIT 1",
            (
                article.source,
                article.identity,
                article.version,
                content_hash(article.body),
                article.source,
                article.title,
                article.url,
            ),
        ).fetchone()
        return row is not None

    def add_article(self, article: Article, summary: Summary | None, now: datetime, story_features: str = "") -> int | None:
        """Store an article with its summary and grouping features; None when it was a duplicate after all.
        Without a summary it waits for one (set_summary), in no edition meanwhile."""
        cursor = self.db.execute(
            """INSERT OR IGNORE INTO articles (source, identity, version, content_hash, title, url, author,
               language, published, fetched, body, summary, summary_algorithm, summary_note, backfilled,
               story_features, summary_pending)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                article.source,
                article.identity,
                article.version,
                content_hash(article.body),
                article.title,
                article.url,
                article.author,
                article.language or (summary.language if summary else None),
                _text(article.published),
                _text(now),
                article.body,
                json.dumps(list(summary.sentences) if summary else []),
                summary.algorithm if summary else "",
                summary.note if summary else "",
                int(article.backfilled),
                story_features,
                int(summary is None),
            ),
        )
        return cursor.lastrowid if cursor.rowcount else None

    def awaiting_summary(self, ids: Sequence[int]) -> list[tuple[int, Article]]:
        """Those of the articles `ids` still waiting for their summary, by id, with their text."""
        marks = ",".join("?" for _ in ids)
        rows = self.db.execute(
            f"SELECT * FROM articles WHERE id IN ({marks}) AND summary_pending = 1 ORDER BY id", list(ids)
        ).fetchall()
        return [(row["id"], from_row.article(row)) for row in rows]

    def overdue_summaries(self, fetched_before: datetime, limit: int) -> list[int]:
        """Ids of up to `limit` articles stored before `fetched_before` still waiting for their summary, oldest first."""
        rows = self.db.execute(
            "SELECT id FROM articles WHERE summary_pending = 1 AND fetched < ? ORDER BY fetched, id LIMIT ?",
            (_text(fetched_before), limit),
        )
        return [row[0] for row in rows]

    def set_summary(self, article_id: int, summary: Summary, story_features: str) -> bool:
        """Give a waiting article its summary and features; False when it was not waiting."""
        cursor = self.db.execute(
            "UPDATE articles SET summary = ?, summary_algorithm = ?, summary_note = ?, story_features = ?, "
            "language = COALESCE(language, ?), summary_pending = 0 WHERE id = ? AND summary_pending = 1",
            (json.dumps(list(summary.sentences)), summary.algorithm, summary.note, story_features, summary.language, article_id),
        )
        return cursor.rowcount > 0

    def article_count(self) -> int:
        """How many articles are stored."""
        count: int = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        return count

    def prune(self, before: datetime) -> int:
        """Drop the text of articles fetched before `before` (their identity, content hash, title and
        summary stay, so nothing comes back as new and old editions still render), and the bytes of
        mail received before it (its Message-ID stays, so a resend is still a duplicate)."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE articles SET body = '' WHERE fetched < ? AND body != '' AND summary_pending = 0", (_text(before),)
            )
            self.db.execute("UPDATE inbound_messages SET raw = x'' WHERE received < ? AND length(raw) > 0", (_text(before),))
        return cursor.rowcount

    def size(self) -> StoreSize:
        """Bytes on disk (the database and its write-ahead log), articles, and those still holding text."""
        on_disk = sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists())
        articles, with_text = self.db.execute("SELECT COUNT(*), COALESCE(SUM(body != ''), 0) FROM articles").fetchone()
        return StoreSize(bytes=on_disk, articles=articles, articles_with_text=with_text)

    def search(self, words: Sequence[str], digest: str | None, since: datetime | None, limit: int) -> list[SearchHit]:
        """The best `limit` articles holding every one of `words` (FTS5, BM25), with their editions.

        Each word goes to FTS5 as a quoted string (a `"` doubled), so nothing in it is read as
        query syntax: `*`, `NEAR(`, `OR`, `-` and column filters are only text.
        """
        quoted = [
            f'"{word.replace(chr(0), " ").replace(chr(34), chr(34) * 2)}"' for word in words if word.replace(chr(0), "").strip()
        ]
        if not quoted or limit < 1:
            return []
        if self.db.execute("SELECT 1 FROM article_search_queue LIMIT 1").fetchone() is not None:
            self.index_for_search()
        match = " ".join(quoted)
        # Without filters, ranked in the FTS table alone (FTS5 sorts by rank under a LIMIT without a join:
        # 2-3 times faster on a word most articles hold); with them, joined to the articles they filter.
        where: list[str] = ["article_search MATCH ?"]
        parameters: list[object] = [match]
        if since is not None:
            where.append("COALESCE(a.published, a.fetched) >= ?")
            parameters.append(_text(since))
        if digest is not None:
            where.append("EXISTS (SELECT 1 FROM edition_articles e WHERE e.digest = ? AND e.article_id = a.id)")
            parameters.append(digest)
        if len(where) == 1:
            query = "SELECT rowid, rank FROM article_search WHERE article_search MATCH ? ORDER BY rank LIMIT ?"
        else:
            query = f"""SELECT s.rowid, s.rank FROM article_search s JOIN articles a ON a.id = s.rowid
                        WHERE {" AND ".join(where)} ORDER BY s.rank LIMIT ?"""
        ranked = self.db.execute(query, [*parameters, limit]).fetchall()
        ranks = {row[0]: float(row[1]) for row in ranked}
        marks = ",".join("?" for _ in ranks)
        found = {
            row["id"]: row
            for row in self.db.execute(f"SELECT {_STORED_COLUMNS} FROM articles a WHERE a.id IN ({marks})", list(ranks))
        }
        rows = [found[article_id] for article_id in ranks if article_id in found]
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        marks = ",".join("?" for _ in ids)
        excerpts = dict(
            self.db.execute(
                f"""SELECT rowid, CASE WHEN body != '' THEN snippet(article_search, 2, '', '', '…', 24)
                       ELSE snippet(article_search, 1, '', '', '…', 24) END FROM article_search
                WHERE article_search MATCH ? AND rowid IN ({marks})""",
                [match, *ids],
            ).fetchall()
        )
        editions: dict[int, list[EditionRef]] = {}
        for row in self.db.execute(
            f"""SELECT ea.article_id, e.digest, e.id, e.created FROM edition_articles ea JOIN editions e ON e.id = ea.edition_id
                WHERE ea.article_id IN ({marks}) ORDER BY e.created, e.id""",
            ids,
        ):
            created = _moment(row[3])
            assert created is not None
            editions.setdefault(row[0], []).append(EditionRef(row[1], row[2], created))
        return [
            SearchHit(
                from_row.stored_article(row),
                " ".join(str(excerpts.get(row["id"], "")).split()),
                tuple(editions.get(row["id"], ())),
                ranks[row["id"]],
            )
            for row in rows
        ]

    # Editions

    def _unsent_query(self, sources: Sequence[str]) -> tuple[str, list[object]]:
        marks = ",".join("?" for _ in sources)
        query = f"""FROM articles a WHERE a.source IN ({marks}) AND a.backfilled = 0 AND a.summary_pending = 0
                    AND NOT EXISTS (SELECT 1 FROM edition_articles e WHERE e.digest = ? AND e.article_id = a.id)"""
        return query, list(sources)

    def unsent(self, digest: str, sources: Sequence[str], limit: int) -> tuple[list[StoredArticle], int]:
        """The newest `limit` articles no edition of `digest` held, and how many more wait."""
        where, parameters = self._unsent_query(sources)
        parameters.append(digest)
        total = self.db.execute(f"SELECT COUNT(*) {where}", parameters).fetchone()[0]
        rows = self.db.execute(
            f"SELECT {_STORED_COLUMNS} {where} ORDER BY COALESCE(a.published, a.fetched) DESC, a.id DESC LIMIT ?",
            [*parameters, limit],
        )
        articles = [from_row.stored_article(row) for row in rows]
        return articles, max(0, total - len(articles))

    def create_edition(
        self, digest: str, sources: Sequence[str], limit: int, now: datetime, outbox: Sequence[tuple[str, str]]
    ) -> Edition | None:
        """Make the next edition of `digest` and its outbox rows in one transaction.

        `outbox` lists (channel, recipient) pairs. None when nothing is waiting.
        """
        with self.transaction():
            self._index_queued()  # its articles are searchable once it is made
            # Ids alone are sorted and copied (a 5,000-article edition's rows would be held twice,
            # once by SQLite's sorter); the articles are read once, in edition order, at the end.
            where, parameters = self._unsent_query(sources)
            parameters.append(digest)
            total = self.db.execute(f"SELECT COUNT(*) {where}", parameters).fetchone()[0]
            ids = [
                row[0]
                for row in self.db.execute(
                    f"SELECT a.id {where} ORDER BY COALESCE(a.published, a.fetched) DESC, a.id DESC LIMIT ?", [*parameters, limit]
                )
            ]
            if not ids:
                return None
            waiting = max(0, total - len(ids))
            atom_id = new_atom_id()
            edition_id = self.db.execute(
                "INSERT INTO editions (digest, created, atom_id) VALUES (?, ?, ?)", (digest, _text(now), atom_id)
            ).lastrowid
            self.db.executemany(
                "INSERT INTO edition_articles (edition_id, digest, article_id, position) VALUES (?, ?, ?, ?)",
                ((edition_id, digest, article_id, position) for position, article_id in enumerate(ids)),
            )
            self.db.executemany(
                "INSERT INTO deliveries (edition_id, digest, channel, recipient, created, next_attempt) VALUES (?, ?, ?, ?, ?, ?)",
                [(edition_id, digest, channel, recipient, _text(now), _text(now)) for channel, recipient in outbox],
            )
        assert edition_id is not None
        del ids
        return Edition(
            digest=digest,
            created=now,
            articles=self._edition_articles(edition_id),
            id=edition_id,
            waiting=waiting,
            atom_id=atom_id,
        )

    def edition(self, edition_id: int, start: int = 0, count: int | None = None) -> Edition:
        """A stored edition with its articles in edition order (`count` of them from position `start`, or all)."""
        row = self.db.execute("SELECT * FROM editions WHERE id = ?", (edition_id,)).fetchone()
        if row is None:
            raise StoreError(f"store {self.path}: no edition {edition_id}")
        created = _moment(row["created"])
        assert created is not None
        articles = self._edition_articles(edition_id, start, count)
        return Edition(row["digest"], created, articles, id=edition_id, atom_id=row["atom_id"])

    def _edition_articles(self, edition_id: int, start: int = 0, count: int | None = None) -> tuple[StoredArticle, ...]:
        """An edition's articles in edition order (`count` from `start`, or all), made row by row (no list of rows beside them)."""
        rows = self.db.execute(
            f"""SELECT {_STORED_COLUMNS} FROM edition_articles e JOIN articles a ON a.id = e.article_id
               WHERE e.edition_id = ? ORDER BY e.position LIMIT ? OFFSET ?""",
            (edition_id, -1 if count is None else count, start),
        )
        return tuple(from_row.stored_article(row) for row in rows)

    def shown_before(self, digest: str, edition_created: datetime, since: datetime) -> list[tuple[StoredArticle, datetime]]:
        """Articles that editions of `digest` made from `since` up to (not including) `edition_created`
        held, each with its edition's time: the stories a new edition's articles may follow up."""
        rows = self.db.execute(
            f"""SELECT {_STORED_COLUMNS}, d.created AS edition_created FROM editions d
               JOIN edition_articles e ON e.edition_id = d.id JOIN articles a ON a.id = e.article_id
               WHERE d.digest = ? AND d.created >= ? AND d.created < ? ORDER BY d.created, e.position""",
            (digest, _text(since), _text(edition_created)),
        ).fetchall()
        shown = []
        for row in rows:
            created = _moment(row["edition_created"])
            assert created is not None
            shown.append((from_row.stored_article(row), created))
        return shown

    def story_features(self, article_ids: Sequence[int]) -> list[str]:
        """The story features of these articles, in their order ('' for none): a page of an edition's, for grouping."""
        marks = ",".join("?" for _ in article_ids)
        found = dict(self.db.execute(f"SELECT id, story_features FROM articles WHERE id IN ({marks})", list(article_ids)))
        return [found.get(article_id, "") for article_id in article_ids]

    def edition_listing(self, digest: str, headlines: int) -> list[EditionListing]:
        """Every edition of `digest`, oldest first, with its Atom id, article count and first
        `headlines` titles: what an archive's index pages and feeds are planned from."""
        rows = self.db.execute(
            """SELECT e.id, e.created, e.atom_id, e.stories,
                      (SELECT COUNT(*) FROM edition_articles c WHERE c.edition_id = e.id) AS count
               FROM editions e WHERE e.digest = ? ORDER BY e.created, e.id""",
            (digest,),
        ).fetchall()
        titles: dict[int, list[str]] = {}
        for row in self.db.execute(
            """SELECT ea.edition_id, a.title FROM edition_articles ea JOIN articles a ON a.id = ea.article_id
               WHERE ea.digest = ? AND ea.position < ? ORDER BY ea.edition_id, ea.position""",
            (digest, headlines),
        ):
            titles.setdefault(row[0], []).append(row[1])
        return [from_row.edition_listing(row, titles.get(row["id"], ())) for row in rows]

    def set_edition_stories(self, edition_id: int, count: int, headlines: Sequence[str]) -> None:
        """Keep how the edition's page grouped it: its story count and first story headlines."""
        with self.transaction():
            self.db.execute(
                "UPDATE editions SET stories = ? WHERE id = ?",
                (json.dumps({"count": count, "headlines": list(headlines)}), edition_id),
            )

    def feed_id(self, digest: str) -> str:
        """The Atom id of `digest`'s feed: made the first time it is asked for, then kept."""
        self.db.execute("INSERT OR IGNORE INTO archive_feeds (digest, atom_id) VALUES (?, ?)", (digest, new_atom_id()))
        return str(self.db.execute("SELECT atom_id FROM archive_feeds WHERE digest = ?", (digest,)).fetchone()[0])

    def last_edition(self, digest: str) -> datetime | None:
        """When the latest edition of `digest` was made."""
        row = self.db.execute("SELECT MAX(created) FROM editions WHERE digest = ?", (digest,)).fetchone()
        return _moment(row[0])

    def record_digest_run(self, digest: str, now: datetime) -> None:
        """Remember that `digest`'s schedule ran at `now`, whether or not it made an edition."""
        self.db.execute(
            "INSERT INTO digest_runs (digest, last_run) VALUES (?, ?) "
            "ON CONFLICT (digest) DO UPDATE SET last_run = MAX(last_run, excluded.last_run)",
            (digest, _text(now)),
        )

    def last_digest_run(self, digest: str) -> datetime | None:
        """When `digest`'s schedule last ran (recorded by the daemon), or None."""
        row = self.db.execute("SELECT last_run FROM digest_runs WHERE digest = ?", (digest,)).fetchone()
        return _moment(row[0]) if row else None

    def edition_count(self, digest: str) -> int:
        """How many editions of `digest` exist."""
        count: int = self.db.execute("SELECT COUNT(*) FROM editions WHERE digest = ?", (digest,)).fetchone()[0]
        return count

    # Inbound mail (mailbox sources)

    def add_inbound(self, sources: Sequence[str], key: str, sender: str, raw: bytes, now: datetime) -> list[bool]:
        """Store one received message for each mailbox source in one transaction, committed on return.

        Returns, per source, True when stored and False when that source held the
        same `key` (Message-ID) already; both count as taken in.
        """
        stored = []
        with self.transaction():
            for source in sources:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO inbound_messages (source, message_key, received, sender, raw) VALUES (?, ?, ?, ?, ?)",
                    (source, key, _text(now), sender, raw),
                )
                stored.append(bool(cursor.rowcount))
                self._count_inbound(source, "accepted" if cursor.rowcount else "duplicate", now)
        return stored

    def count_inbound(self, source: str, outcome: str, now: datetime) -> None:
        """Count one refused or deferred message of `source` ("" for no configured address) by reason."""
        with self.transaction():
            self._count_inbound(source, outcome, now)

    def _count_inbound(self, source: str, outcome: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO inbound_counts (source, outcome, count, last) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (source, outcome) DO UPDATE SET count = count + 1, last = MAX(last, excluded.last)",
            (source, outcome, _text(now)),
        )

    def inbound_counts(self) -> dict[str, dict[str, tuple[int, datetime]]]:
        """Per source ("" for unknown recipients): outcome -> (how many, when last)."""
        counts: dict[str, dict[str, tuple[int, datetime]]] = {}
        for row in self.db.execute("SELECT source, outcome, count, last FROM inbound_counts ORDER BY source, outcome"):
            last = _moment(row["last"])
            assert last is not None
            counts.setdefault(row["source"], {})[row["outcome"]] = (row["count"], last)
        return counts

    def mail_since_last_poll(self, sources: Sequence[str]) -> list[str]:
        """Those of the mailbox `sources` holding mail received after their last poll began (or never polled)."""
        if not sources:
            return []
        rows = self.db.execute(
            "SELECT DISTINCT m.source FROM inbound_messages m LEFT JOIN sources s ON s.name = m.source "
            f"WHERE m.source IN ({','.join('?' for _ in sources)}) AND (s.last_poll IS NULL OR m.received > s.last_poll) "
            "ORDER BY m.source",
            tuple(sources),
        ).fetchall()
        return [row["source"] for row in rows]

    def inbound_messages(self, source: str, after: int, limit: int) -> list[InboundMessage]:
        """Up to `limit` messages of `source` stored after id `after`, oldest first."""
        rows = self.db.execute(
            "SELECT id, source, message_key, received, sender, raw FROM inbound_messages "
            "WHERE source = ? AND id > ? ORDER BY id LIMIT ?",
            (source, after, limit),
        ).fetchall()
        return [
            InboundMessage(
                id=row["id"],
                source=row["source"],
                key=row["message_key"],
                received=_moment(row["received"]) or datetime.min,
                sender=row["sender"],
                raw=bytes(row["raw"]),
            )
            for row in rows
        ]

    # Outbox

    def due_deliveries(self, now: datetime | None) -> list[Delivery]:
        """Pending deliveries whose next attempt is due by `now` (all pending when None)."""
        if now is None:
            rows = self.db.execute("SELECT * FROM deliveries WHERE status = 'pending' ORDER BY id").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt <= ? ORDER BY id", (_text(now),)
            ).fetchall()
        return [from_row.delivery(row) for row in rows]

    def deliveries(self, statuses: Sequence[str]) -> list[Delivery]:
        """Deliveries in the given states, oldest first."""
        marks = ",".join("?" for _ in statuses)
        rows = self.db.execute(f"SELECT * FROM deliveries WHERE status IN ({marks}) ORDER BY id", list(statuses))
        return [from_row.delivery(row) for row in rows]

    def set_message_id(self, delivery_id: int, message_id: str) -> None:
        """Keep the Message-ID made for a delivery so every retry reuses it."""
        self.db.execute("UPDATE deliveries SET message_id = ? WHERE id = ? AND message_id = ''", (message_id, delivery_id))

    def claim_delivery(self, delivery_id: int, now: datetime, lease: timedelta) -> bool:
        """Lease a pending delivery to this store's owner until now + lease; False while another
        owner's lease runs. A lease ends when its attempt is recorded or when it expires."""
        with self.transaction():
            row = self.db.execute(
                "SELECT status, claimed_until, lease_owner FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None or row["status"] != "pending":
                return False
            holder, until = row["lease_owner"], _moment(row["claimed_until"])
            if until and until > now and holder not in (None, self.owner):
                return False
            self.db.execute(
                "UPDATE deliveries SET claimed_until = ?, lease_owner = ? WHERE id = ?",
                (_text(now + lease), self.owner, delivery_id),
            )
        return True

    def release_leases(self) -> int:
        """End every lease this store's owner (and its connections, `<owner>.<n>`) holds, so that another may
        take the deliveries at once."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE deliveries SET claimed_until = NULL, lease_owner = NULL WHERE lease_owner = ? OR lease_owner LIKE ?",
                (self.owner, connections_of(self.owner)),
            )
        return cursor.rowcount

    def record_attempt(
        self, delivery_id: int, now: datetime, status: str, error: str = "", next_attempt: datetime | None = None
    ) -> None:
        """Record one try of a delivery: delivered, failed, or pending until `next_attempt`."""
        self.db.execute(
            """UPDATE deliveries SET attempts = attempts + 1, status = ?, last_error = ?, next_attempt = ?,
               claimed_until = NULL, lease_owner = NULL, done = CASE WHEN ? = 'delivered' THEN ? ELSE done END WHERE id = ?""",
            (status, error, _text(next_attempt), status, _text(now), delivery_id),
        )

    # Subscribers

    def add_subscriber(
        self,
        digest: str,
        address: str,
        name: str,
        timezone_name: str,
        at: str,
        include: Sequence[str],
        exclude: Sequence[str],
        status: str,
        now: datetime,
    ) -> tuple[Subscriber, bool]:
        """Add a reader of `digest`, or update the one with this address; (subscriber, True when new).

        A new reader's watermark is the newest stored article's arrival: they get what arrives from now on.
        """
        with self.transaction():
            known = self.db.execute("SELECT id FROM subscribers WHERE digest = ? AND address = ?", (digest, address)).fetchone()
            values = (name, timezone_name, at, json.dumps(list(include)), json.dumps(list(exclude)), status, _text(now))
            if known:
                self.db.execute(
                    "UPDATE subscribers SET name = ?, timezone = ?, at = ?, include = ?, exclude = ?, status = ?, changed = ? "
                    "WHERE id = ?",
                    (*values, known["id"]),
                )
                subscriber_id = known["id"]
            else:
                newest = self._stamp_arrivals()
                subscriber_id = self.db.execute(
                    "INSERT INTO subscribers (name, timezone, at, include, exclude, status, changed, digest, address, created, "
                    "watermark) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, digest, address, _text(now), newest),
                ).lastrowid
        subscriber = self.subscriber(subscriber_id)
        assert subscriber is not None
        return subscriber, not known

    def subscriber(self, subscriber_id: int) -> Subscriber | None:
        """One subscriber by id, whatever their status."""
        row = self.db.execute("SELECT * FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        return from_row.subscriber(row) if row else None

    def subscriber_times(self, digest: str) -> list[tuple[str, str]]:
        """The distinct (time zone, local time) pairs of the digest's active subscribers."""
        return [
            (row[0], row[1])
            for row in self.db.execute(
                "SELECT DISTINCT timezone, at FROM subscribers WHERE digest = ? AND status = 'active'", (digest,)
            )
        ]

    def due_subscribers(self, digest: str, timezone_name: str, at: str, slot: datetime) -> list[Subscriber]:
        """Active subscribers at (`timezone_name`, `at`) with no mail made for `slot` yet, who subscribed by then."""
        rows = self.db.execute(
            "SELECT * FROM subscribers WHERE digest = ? AND status = 'active' AND timezone = ? AND at = ? "
            "AND ((last_slot IS NOT NULL AND last_slot < ?) OR (last_slot IS NULL AND created <= ?)) ORDER BY id",
            (digest, timezone_name, at, _text(slot), _text(slot)),
        ).fetchall()
        return [from_row.subscriber(row) for row in rows]

    def reader_times(self) -> list[ReaderTime]:
        """Per digest and (time zone, local time) of active readers: the earliest last mail moment, and the
        earliest subscription of those never sent one (times as UTC ISO text sort as times do)."""
        rows = self.db.execute(
            "SELECT digest, timezone, at, MIN(last_slot) AS sent, MIN(CASE WHEN last_slot IS NULL THEN created END) AS new "
            "FROM subscribers WHERE status = 'active' GROUP BY digest, timezone, at ORDER BY digest, timezone, at"
        ).fetchall()
        return [ReaderTime(row["digest"], row["timezone"], row["at"], _moment(row["sent"]), _moment(row["new"])) for row in rows]

    def subscriber_by_address(self, digest: str, address: str) -> Subscriber | None:
        """The subscriber of `digest` with this (normalised) address, whatever their status."""
        row = self.db.execute("SELECT * FROM subscribers WHERE digest = ? AND address = ?", (digest, address)).fetchone()
        return from_row.subscriber(row) if row else None

    def subscribers(self, digest: str | None = None, statuses: Sequence[str] = ("active", "invited")) -> list[Subscriber]:
        """Subscribers in the given states (of `digest`, or of every digest), by digest and address."""
        marks = ",".join("?" for _ in statuses)
        query = f"SELECT * FROM subscribers WHERE status IN ({marks})"
        parameters: list[object] = list(statuses)
        if digest is not None:
            query += " AND digest = ?"
            parameters.append(digest)
        rows = self.db.execute(query + " ORDER BY digest, address", parameters).fetchall()
        return [from_row.subscriber(row) for row in rows]

    def remove_subscriber(self, address: str, digest: str | None = None) -> int:
        """Delete the subscriber with this address (of one digest, or of all); how many were removed."""
        with self.transaction():
            if digest is None:
                cursor = self.db.execute("DELETE FROM subscribers WHERE address = ?", (address,))
            else:
                cursor = self.db.execute("DELETE FROM subscribers WHERE address = ? AND digest = ?", (address, digest))
        return cursor.rowcount

    def set_subscriber_status(self, subscriber_id: int, status: str, now: datetime, expected: Sequence[str]) -> bool:
        """Move a subscriber to `status` when they are in one of the `expected` states; True when changed."""
        marks = ",".join("?" for _ in expected)
        with self.transaction():
            cursor = self.db.execute(
                f"UPDATE subscribers SET status = ?, changed = ? WHERE id = ? AND status IN ({marks})",
                (status, _text(now), subscriber_id, *expected),
            )
        return cursor.rowcount > 0

    def _stamp_arrivals(self) -> int:
        """Give each article that has no arrival number yet the next ones, in id order (here, inside a write
        transaction, ids are in commit order already); returns the highest arrival number."""
        self.db.execute(
            "UPDATE articles SET arrival = stamped.n FROM (SELECT id, (SELECT COALESCE(MAX(arrival), 0) FROM articles) "
            "+ row_number() OVER (ORDER BY id) AS n FROM articles WHERE arrival IS NULL) AS stamped WHERE articles.id = stamped.id"
        )
        newest: int = self.db.execute("SELECT COALESCE(MAX(arrival), 0) FROM articles").fetchone()[0]
        return newest

    def create_subscriber_edition(
        self,
        digest: str,
        sources: Sequence[str],
        subscriber_ids: Sequence[int],
        watermark: int,
        slot: datetime,
        limit: int,
        wanted: Callable[[str], bool],
        now: datetime,
    ) -> tuple[Edition | None, list[int]]:
        """Make one edition for readers of `digest` who share a watermark, words (`wanted`) and moment, in one
        transaction: the articles arrived after the watermark that they want (in arrival order, up to `limit`;
        the rest wait; see _stamp_arrivals),
        a `subscriber` outbox row for each, and their watermark and last moment moved on.

        Readers whose watermark or last moment changed meanwhile (another process served them) are left out.
        Returns the edition (None when they want nothing new) and the ids of the readers it served.
        """
        with self.transaction():
            self._index_queued()  # its articles are searchable once it is made
            marks = ",".join("?" for _ in subscriber_ids)
            rows = self.db.execute(
                f"SELECT id, address FROM subscribers WHERE id IN ({marks}) AND status = 'active' AND watermark = ? "
                "AND (last_slot IS NULL OR last_slot < ?) ORDER BY id",
                (*subscriber_ids, watermark, _text(slot)),
            ).fetchall()
            if not rows:
                return None, []
            self._stamp_arrivals()
            source_marks = ",".join("?" for _ in sources)
            candidates = self.db.execute(
                f"SELECT id, arrival, title, body, summary_pending FROM articles WHERE source IN ({source_marks}) "
                "AND backfilled = 0 AND arrival > ? ORDER BY arrival",
                (*sources, watermark),
            )
            chosen: list[int] = []
            considered = watermark
            for article_id, arrival, title, body, pending in candidates:
                if len(chosen) >= limit or pending:  # the watermark never passes an article waiting for its summary
                    break
                considered = arrival
                if wanted(f"{title}\n{body}"):
                    chosen.append(article_id)
            edition_id = None
            if chosen:
                scope = f"{digest}/subscribers/{secrets.token_hex(8)}"  # editions of readers never count as the digest's
                edition_id = self.db.execute(
                    "INSERT INTO editions (digest, created) VALUES (?, ?)", (scope, _text(now))
                ).lastrowid
                self.db.executemany(
                    "INSERT INTO edition_articles (edition_id, digest, article_id, position) VALUES (?, ?, ?, ?)",
                    [(edition_id, scope, article_id, position) for position, article_id in enumerate(chosen)],
                )
                self.db.executemany(
                    "INSERT INTO deliveries (edition_id, digest, channel, recipient, created, next_attempt) "
                    "VALUES (?, ?, 'subscriber', ?, ?, ?)",
                    [(edition_id, digest, row["address"], _text(now), _text(now)) for row in rows],
                )
            served = [row["id"] for row in rows]
            self.db.executemany(
                "UPDATE subscribers SET watermark = ?, last_slot = ? WHERE id = ?",
                [(considered, _text(slot), subscriber_id) for subscriber_id in served],
            )
        return (self.edition(edition_id) if edition_id is not None else None), served

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """The stored secret called `name`, made by `make` and kept on first use."""
        row = self.db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        if row:
            return str(row[0])
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, make()))
            return str(self.db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])
