"""The product's state: the contract (base.Store), its implementations, and the one place a store is opened.

`open_store(config.store)` everywhere; nothing else constructs an implementation.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from digest.config import StoreConfig
from digest.errors import StoreError
from digest.models import SourceState
from digest.store.base import Store, WriteBatch
from digest.store.sqlite import MIGRATIONS, PROCESS_OWNER, SqliteStore, content_hash

__all__ = ["MIGRATIONS", "SourceState", "SqliteStore", "Store", "WriteBatch", "content_hash", "copy_store_to", "open_store"]


def open_store(where: StoreConfig | Path, *, timeout: float = 5.0, owner: str | None = None) -> Store:
    """Open (creating and migrating if need be) the store a config's [store] names (a PostgreSQL database when
    it has a url, else a SQLite file), or a SQLite store file. Delivery leases are taken as `owner`; by
    default each connection is an owner of its own (`<process>.<n>`), so two jobs of one process delivering
    at once (the daemon's edition, subscribers and outbox jobs) never both claim, and send, one delivery;
    release_leases on any of them hands back the whole process's."""
    if isinstance(where, StoreConfig) and where.url:
        from digest.store.postgres import PostgresStore  # psycopg is loaded only by those who use PostgreSQL

        return PostgresStore(
            where.url, password=where.password, path=where.path, timeout=timeout, location=where, owner=owner or _connection()
        )
    path = where.path if isinstance(where, StoreConfig) else Path(where)
    return SqliteStore(path, timeout=timeout, owner=owner or _connection())


_connections = itertools.count(1)


def _connection() -> str:
    """A lease owner of its own for one connection of this process."""
    return f"{PROCESS_OWNER}.{next(_connections)}"


def copy_store_to(where: StoreConfig, to: str) -> dict[str, int]:
    """Copy the whole store [store] names into a new, empty one at `to` (a postgresql:// url, the password
    from [store] password_env, or a SQLite file that does not exist yet); rows per table."""
    from digest.store.copy import copy_store

    if to.startswith(("postgresql://", "postgres://")):
        from digest.store.postgres import PostgresStore, shown

        target: Any = PostgresStore(to, password=where.password)
        named = shown(to)
    else:
        if Path(to).exists():
            raise StoreError(f"{to} exists already; copy only into a new store")
        target, named = SqliteStore(Path(to)), to
    try:
        source: Any = open_store(where)
        try:
            return copy_store(source, target, named)
        finally:
            source.close()
    finally:
        target.close()
