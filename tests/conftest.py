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
from typing import Any

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


# PostgreSQL: one database per test run and xdist worker (made and dropped here); each test that asks for a store
# gets a schema of its own, already migrated. Migrating a schema costs the server about half a second of CPU and
# each schema left behind makes the final DROP DATABASE slower (50 schemas: about 14 s), so a test's schema is
# emptied after it and handed to the next test, when the test left its tables, columns, indexes, functions and
# migrations as migrating made them; any other schema (a worker's, with procrastinate's tables) is left for the drop.
POSTGRES_SERVER = os.environ.get("DIGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

# What a schema is made of: every relation with its columns, every index, constraint, trigger, function and type. Two schemas with the same shape (and no rows) are as good as each other for a test.
SCHEMA_SHAPE = """
SELECT concat_ws('|',
  (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT c.relname::text || ':' || c.relkind::text || ':' || coalesce(
      (SELECT string_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
       || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ',' ORDER BY a.attnum) FROM pg_attribute a LEFT JOIN pg_attrdef d
       ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
    FROM pg_class c WHERE c.relnamespace = n.oid) AS relations(x)),
  (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c
    ON c.oid = i.indexrelid WHERE c.relnamespace = n.oid) AS indexes(x)),
  (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT conname::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = n.oid) AS constraints(x)),
  (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c
    ON c.oid = t.tgrelid WHERE c.relnamespace = n.oid AND NOT t.tgisinternal) AS triggers(x)),
  (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT p.proname::text || '(' || pg_get_function_arguments(p.oid) || ') '
    || md5(p.prosrc) FROM pg_proc p WHERE p.pronamespace = n.oid) AS functions(x)),
  (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT typname::text FROM pg_type WHERE typnamespace = n.oid) AS types(x))
) FROM pg_namespace n WHERE n.nspname = %s
"""


class PostgresSchemas:
    """Migrated schemas of one test database: a new one when none waits, an emptied one given back when its shape
    is still the freshly migrated one."""

    def __init__(self, database: str, admin: Any) -> None:
        self.database = database
        self.admin = admin  # a psycopg connection to `database`, autocommit
        self.waiting: list[str] = []
        self.made = 0
        self.migrated_shape: str | None = None

    def url(self, schema: str) -> str:
        return f"{self.database}?options=-csearch_path%3D{schema}"

    def new(self) -> str:
        """A new, empty schema: no table yet."""
        self.made += 1
        schema = f"store_{self.made}"
        self.admin.execute(f"CREATE SCHEMA {schema}")
        return schema

    def take(self) -> str:
        """A migrated schema with no rows."""
        if self.waiting:
            return self.waiting.pop()
        from digest.store.postgres import PostgresStore

        schema = self.new()
        PostgresStore(self.url(schema)).close()
        if self.migrated_shape is None:
            self.migrated_shape = self.shape(schema)
        return schema

    def shape(self, schema: str) -> str:
        """A digest of `schema`'s relations, columns, indexes, constraints, triggers, functions, types and migrations."""
        [(catalog,)] = self.admin.execute(SCHEMA_SHAPE, (schema,)).fetchall()
        [(migrations,)] = self.admin.execute(
            f"SELECT string_agg(name, ';' ORDER BY position) FROM {schema}.migrations"
        ).fetchall()
        return f"{catalog} {migrations}".replace(f"{schema}.", "")  # each schema's objects are named with it

    def give_back(self, schema: str) -> None:
        """Empty `schema` for the next test if it kept the migrated shape and nothing holds its tables; else leave it."""
        import psycopg

        try:
            with self.admin.transaction():
                self.admin.execute("SET LOCAL lock_timeout = '2s'")  # a connection the test left in a transaction
                if self.shape(schema) != self.migrated_shape:
                    return
                tables = self.admin.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename != 'migrations'", (schema,)
                ).fetchall()
                used = self.admin.execute(
                    " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT FROM {schema}.{t})" for (t,) in tables)
                ).fetchall()
                if used:
                    self.admin.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for (t,) in used)} CASCADE")
                self.admin.execute(
                    "SELECT setval(format('%%I.%%I', schemaname, sequencename), start_value, false) FROM pg_sequences "
                    "WHERE schemaname = %s AND last_value IS NOT NULL AND sequencename NOT LIKE 'migrations%%'",
                    (schema,),
                )
        except psycopg.Error:  # a lock not granted in time, or a table the test dropped
            return
        self.waiting.append(schema)


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas]:
    """A new database for this test run (for this xdist worker), dropped after it, and its migrated schemas.
    Without a reachable PostgreSQL the test skips, saying why; under CI (CI=true) it fails instead: there the
    PostgreSQL tests must run."""
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
            # no test crashes the server: a commit need not wait for its WAL to reach the disk (each commit did,
            # on a busy disk, which made a test of hundreds of small transactions take seconds longer)
            admin.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
            database = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
            try:
                with psycopg.connect(database, autocommit=True) as inside:
                    yield PostgresSchemas(database, inside)
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
def postgres_url(postgres_schemas: PostgresSchemas) -> Iterator[str]:
    """A url for a store of this test's own: a migrated, empty schema in the run's database."""
    schema = postgres_schemas.take()
    yield postgres_schemas.url(schema)
    from digest.store.postgres import close_pools

    close_pools()  # each schema's pool holds connections: give them back to the server
    postgres_schemas.give_back(schema)


@pytest.fixture
def new_postgres_url(postgres_schemas: PostgresSchemas) -> Iterator[str]:
    """A url for a store of this test's own that no process opened yet: the first to open it migrates it."""
    yield postgres_schemas.url(postgres_schemas.new())
    from digest.store.postgres import close_pools

    close_pools()
