"""Copy every row of one store into another, empty one: `digest store copy` (SQLite to PostgreSQL) and a
preview's scratch copy of a PostgreSQL store (into SQLite).

Both implementations have the same tables and columns and keep values in the same form, so rows move
as they are, ids included: editions keep their articles, deliveries their Message-IDs and attempts,
sources their memos, and nothing comes back as new.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any, Protocol

from digest.errors import StoreError

# Parents before children (edition_articles and deliveries name editions and articles).
TABLES = (
    "sources",
    "articles",
    "editions",
    "edition_articles",
    "deliveries",
    "digest_runs",
    "subscribers",
    "secrets",
    "archive_feeds",
    "inbound_messages",
    "inbound_counts",
)

CHUNK = 1000


class Copyable(Protocol):
    """What a store implementation offers for copying: its tables' columns and rows."""

    def table_columns(self, table: str) -> list[str]: ...

    def read_rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]: ...

    def write_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None: ...

    def snapshot(self) -> AbstractContextManager[None]: ...

    def transaction(self) -> AbstractContextManager[None]: ...


def copy_store(source: Copyable, target: Copyable, where: str = "the target store") -> dict[str, int]:
    """Copy every row of `source` (read in one snapshot) into the empty `target` in one transaction:
    all of it or, on any error, nothing. Returns how many rows each table got."""
    copied: dict[str, int] = {}
    with source.snapshot(), target.transaction():
        for table in TABLES:
            columns = [c for c in source.table_columns(table) if c in set(target.table_columns(table))]
            if next(iter(target.read_rows(table, columns[:1])), None) is not None:
                raise StoreError(f"{where} is not empty (table {table} has rows); copy only into a new, empty store")
            rows = source.read_rows(table, columns)
            copied[table] = 0
            while chunk := list(islice(rows, CHUNK)):
                target.write_rows(table, columns, chunk)
                copied[table] += len(chunk)
    return copied
