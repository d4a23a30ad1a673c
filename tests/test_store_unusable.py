"""A damaged or empty store file: exit 3 and one line saying how to recover, never a traceback
and never a silently new store (which would send everything again). Real CLI, real SQLite file."""

from __future__ import annotations

import random
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import Project
from tests.inprocess import invoke

STORE = Path("state/digest.sqlite3")


def one_line_exit_3(result: subprocess.CompletedProcess[str], store: Path) -> str:
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert str(store) in lines[0]
    return lines[0]


@pytest.fixture
def stored(project: Project) -> Path:
    """A project whose store holds a run's work."""
    result = invoke(project, "run")
    assert result.returncode == 0, result.stderr
    return project.root / STORE


def test_a_page_of_random_bytes_is_exit_3_with_how_to_recover(project: Project, stored: Path) -> None:
    data = bytearray(stored.read_bytes())
    page = 4096
    assert len(data) >= 3 * page
    data[page : 2 * page] = random.Random(11).randbytes(page)  # the second page: a table's root
    stored.write_bytes(bytes(data))
    for command in (["run"], ["status"], ["preview"]):
        line = one_line_exit_3(invoke(project, *command), stored)
        assert "unusable" in line and "backup" in line, line


def test_the_daemon_refuses_a_damaged_store_at_start(project: Project, stored: Path) -> None:
    """systemd does not restart on exit 3: a damaged store must not make the daemon loop."""
    data = bytearray(stored.read_bytes())
    data[-4096:] = random.Random(3).randbytes(4096)  # the last page: the status query may never read it
    stored.write_bytes(bytes(data))
    line = one_line_exit_3(project.cli("daemon", timeout=30), stored)
    assert "unusable" in line and "backup" in line, line


def test_a_dropped_table_is_exit_3(project: Project, stored: Path) -> None:
    with sqlite3.connect(stored) as db:
        db.execute("DROP TABLE edition_articles")
    db.close()
    line = one_line_exit_3(invoke(project, "run"), stored)
    assert "unusable" in line and "edition_articles" in line and "backup" in line, line


def test_a_zero_length_store_file_is_not_taken_for_a_new_store(project: Project) -> None:
    store = project.root / STORE
    store.parent.mkdir()
    store.touch()
    for command in (["run"], ["status"], ["daemon"]):
        # the daemon in a process of its own, as systemd starts it; the others in the test process
        result = project.cli(*command, timeout=30) if command == ["daemon"] else invoke(project, *command)
        line = one_line_exit_3(result, store)
        assert "empty file (0 bytes)" in line and "backup" in line, line
    assert store.stat().st_size == 0 and not list(project.out.glob("*/*"))  # nothing made, nothing sent


def test_a_new_store_is_made_whole_and_two_first_runs_share_it(project: Project) -> None:
    """The store appears at its path only once it is a store, so an empty file there is never ours."""
    first = invoke(project, "status")
    assert first.returncode == 0 and not (project.root / STORE).exists()
    assert invoke(project, "run").returncode == 0
    assert sorted(p.name for p in (project.root / "state").iterdir() if not p.name.startswith("digest.sqlite3")) == []
    assert "articles stored: 1" in invoke(project, "status").stdout
