"""TCP ports for test servers whose port must be known before they bind (a daemon's config, a port nothing listens on).

Asking the kernel for port 0 and closing the probe races under pytest-xdist: another worker's probe, or any
outgoing connection's source port, can take the port before the server binds it. So each xdist worker hands out
ports from its own slice of the range below the kernel's ephemeral ports, one after another, skipping any that
something already holds. The start inside the slice is random so that test runs side by side on one machine
rarely meet. Import it as `tests.ports` only, so a process has one counter.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

FIRST_PORT = 10_000  # below this: well-known and registered services
SLICE = 1_000  # ports per xdist worker


def _ephemeral_start() -> int:
    """The lowest port the kernel picks for port 0 and outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _worker_index() -> int:
    """0 outside xdist, N for xdist's worker `gwN`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


_slices = max(1, (_ephemeral_start() - FIRST_PORT) // SLICE)
_base = FIRST_PORT + (_worker_index() % _slices) * SLICE
_counter = itertools.count(random.randrange(SLICE))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and that no other worker of this run hands out."""
    for _ in range(SLICE):
        port = _base + next(_counter) % SLICE
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_base}..{_base + SLICE - 1}")
