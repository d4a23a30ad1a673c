"""One daemon per store: an exclusive flock on a file next to the store.

The kernel drops the lock when its process dies, however it dies, so a stale
lock file from a killed daemon never blocks a restart. The holder writes its
PID into the file so that a refused second daemon can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from digest.errors import StoreError, StoreLockedError


def process_alive(pid: int) -> bool:
    """True while a process with this PID exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(store_path: Path) -> Path:
    """The lock file that belongs to a store: `<store>.lock` beside it."""
    return store_path.with_name(store_path.name + ".lock")


class DaemonLock:
    """Held while a daemon runs on a store; `acquire` fails at once if another holds it."""

    def __init__(self, store_path: Path) -> None:
        self.path = lock_path(Path(store_path))
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise StoreLockedError naming the holder's PID."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="ascii")
        except OSError as error:
            raise StoreError(f"cannot open lock file {self.path}: {error}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreLockedError(
                f"store {self.path.with_suffix('')} is in use by another digest daemon (PID {holder}); lock file {self.path}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Drop the lock (also dropped by the kernel when the process ends)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def holder(store_path: Path) -> int | None:
    """The PID of the daemon holding the store's lock, or None when no daemon runs."""
    path = lock_path(Path(store_path))
    try:
        handle = open(path, "r", encoding="ascii")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else None
        return None
