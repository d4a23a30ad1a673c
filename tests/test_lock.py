"""One daemon per store: the flock next to the store names its holder."""

import os
from pathlib import Path

import pytest

from digest.errors import StoreLockedError
from digest.lock import DaemonLock, holder


def test_a_second_lock_on_the_same_store_is_refused_naming_the_holder(tmp_path: Path) -> None:
    store = tmp_path / "state" / "digest.sqlite3"
    with DaemonLock(store):
        assert holder(store) == os.getpid()
        with pytest.raises(StoreLockedError, match=rf"in use by another digest daemon \(PID {os.getpid()}\)"):
            DaemonLock(store).acquire()
    assert holder(store) is None  # released: the lock file may stay, it no longer blocks
    with DaemonLock(store):
        assert holder(store) == os.getpid()


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path: Path) -> None:
    store = tmp_path / "digest.sqlite3"
    (tmp_path / "digest.sqlite3.lock").write_text("4194305\n")  # a PID from a process long gone
    assert holder(store) is None
    with DaemonLock(store):
        assert (tmp_path / "digest.sqlite3.lock").read_text() == f"{os.getpid()}\n"
