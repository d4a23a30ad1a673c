"""Shared test helpers: the repository's paths, a temp project, and the real CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import LocalServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/, or skip the test: a user's clone does not have it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared/ holds third-party data that only the developers' checkout has")
    return path


@dataclass
class Project:
    """A throwaway digest project: config, seeds folder, store and output under one temp folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config" / "digest.toml"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def write_config(self, text: str) -> Path:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(textwrap.dedent(text), encoding="utf-8")
        return self.config

    def cli(
        self,
        *args: str,
        now: str | None = "2026-11-27T07:00:00+00:00",
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m digest --config <project config> ARGS` in the project folder."""
        return run_cli("--config", str(self.config), *args, cwd=self.root, now=now, stdin=stdin, env=env, timeout=timeout)


def run_cli(
    *args: str,
    cwd: Path,
    now: str | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, importing this checkout."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment["PYTHONPATH"] = str(REPO)
    if now:
        environment["DIGEST_NOW"] = now
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


WORKERS_PER_CORE = 2  # many slow tests wait on subprocesses, servers and schedules, not on a core


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """How many xdist workers `-n auto` (the default in pyproject.toml) starts: WORKERS_PER_CORE per usable core,
    unless PYTEST_XDIST_AUTO_NUM_WORKERS says (then xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)  # macOS has no affinity
    return WORKERS_PER_CORE * cores


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` run first (in their collected order): started last, one of them would keep a parallel run
    going on one worker after the others are done."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A copy of the shipped config and seeds in a temp folder."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    return Project(tmp_path)


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A threaded HTTP server on 127.0.0.1 (see tests/httpserver.py), stopped after the test."""
    with LocalServer("127.0.0.1") as server:
        yield server


# PostgreSQL: one database per test run and xdist worker (made and dropped here), one schema per store a test opens.
POSTGRES_SERVER = os.environ.get("DIGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The url of a new database for this test run (for this xdist worker), dropped after it. Without a reachable PostgreSQL the
    test skips, saying why; under CI (CI=true) it fails instead: there the PostgreSQL tests must run."""
    try:
        import psycopg
    except ImportError:
        reason = "psycopg is not installed (pip install -e '.[test]')"
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None:
        try:
            admin = psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as error:
            reason = f"no PostgreSQL at {POSTGRES_SERVER} (set DIGEST_TEST_POSTGRES): {' '.join(str(error).split())[:200]}"
        else:
            # one database per pytest process: each xdist worker (gw0, gw1, ...) has its own
            name = f"digest_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
            try:
                yield POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
            finally:
                from digest.store.postgres import close_pools

                close_pools()
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.close()
            return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_database: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A url for a store of this test's own: a fresh schema in the run's database."""
    import psycopg

    schema = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50] + f"_{os.urandom(3).hex()}"
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_database}?options=-csearch_path%3D{schema}"
    from digest.store.postgres import close_pools

    close_pools()  # each schema's pool holds connections: give them back to the server
