"""The product's state: the contract (base.Store), its implementations, and the one place a store is opened.

`open_store(config.store)` everywhere; nothing else constructs an implementation.
"""

from __future__ import annotations

from pathlib import Path

from digest.config import StoreConfig
from digest.models import SourceState
from digest.store.base import Store, WriteBatch
from digest.store.sqlite import MIGRATIONS, SqliteStore, content_hash

__all__ = ["MIGRATIONS", "SourceState", "SqliteStore", "Store", "WriteBatch", "content_hash", "open_store"]


def open_store(where: StoreConfig | Path, *, timeout: float = 5.0) -> Store:
    """Open (creating and migrating if need be) the store a config's [store] names, or a store file."""
    path = where.path if isinstance(where, StoreConfig) else Path(where)
    return SqliteStore(path, timeout=timeout)
