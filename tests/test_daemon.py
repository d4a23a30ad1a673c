"""`digest daemon` end to end: the real CLI in a subprocess, real schedules, real signals (the `run` and
`status` beside it run in process with CliRunner).

These tests wait for the daemon's real `every 2s` schedule to fire (they poll
the output folder and the log with a deadline); they never sleep to fake time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import REPO, Project
from tests.inprocess import invoke
from smtpserver import free_port, smtp_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock")

CONFIG = """
[store]
path = "../state/digest.sqlite3"

[[sources]]
name = "news"
type = "files"
path = "../news"
interval = "{interval}"

[[digests]]
name = "daily"
schedule = "{schedule}"
timezone = "Europe/London"
max_articles = {max_articles}
output_dir = "../out"
formats = ["md"]
"""


class Daemon:
    """A `digest daemon` subprocess whose JSON log lines are collected from a file."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.log_path = project.root / f"daemon-{time.monotonic_ns()}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        environment["PYTHONPATH"] = str(REPO)
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digest", "--config", str(project.config), "--log-format", "json", "daemon"],
                cwd=project.root,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def lines(self) -> list[dict[str, object]]:
        """The log so far, one dict per JSON line (a line being written is left out)."""
        entries = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
        return entries

    def messages(self) -> list[str]:
        return [str(entry["message"]) for entry in self.lines()]

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 60) -> None:
        wait_until(
            lambda: sum(bool(re.search(pattern, m)) for m in self.messages()) >= count,
            timeout,
            f"{count} log line(s) matching {pattern!r}",
            self,
        )

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, float]:
        """Send `signum`; return the exit code and the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop_cleanly(self) -> list[str]:
        """SIGTERM; assert it exits 0 within the promised 10 s; return its log messages."""
        code, seconds = self.stop(signal.SIGTERM)
        assert code == 0
        assert seconds < 10
        return self.messages()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, daemon: Daemon | None = None) -> None:
    """Poll `condition` until it holds; fail naming `what` (and the daemon's log) after `timeout` s. The timeout only
    says when to give up (a busy machine, or pytest-xdist's other workers, can slow the daemon several times over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon is not None and daemon.process.poll() is not None:
            break
        time.sleep(0.1)
    log = daemon.log_path.read_text(encoding="utf-8")[-3000:] if daemon else ""
    pytest.fail(f"timed out waiting for {what}\n{log}")


def write_article(folder: Path, number: int, topic: str = "harbour repairs") -> str:
    """A news file whose title names it uniquely; returns the title."""
    title = f"Report {number:03d} on {topic}"
    body = (
        f"The council said on Monday that work on {topic} in district {number} would start next spring. "
        f"Officials expect the project to take about {number % 7 + 2} months and to cost less than planned. "
        f"Residents welcomed the news at a meeting in the town hall on Tuesday evening."
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"report-{number:03d}.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    return title


def titles_in_editions(project: Project) -> Counter[str]:
    """How many edition files (Markdown) show each article title."""
    seen: Counter[str] = Counter()
    for path in edition_files(project):
        seen.update(set(re.findall(r"Report \d{3} on [a-z ]+", path.read_text(encoding="utf-8"))))  # headline and entry: once
    return seen


def edition_files(project: Project, digest: str = "daily") -> list[Path]:
    """Every file in the digest's output folder, hidden ones too (a temp file left behind would count)."""
    folder = project.out / digest
    archive = {"index.html", "feed.atom", "months", "archive", "editions"}  # the archive beside the editions
    return sorted(p for p in folder.iterdir() if p.name not in archive) if folder.exists() else []


def edition_count(project: Project) -> int:
    return len(edition_files(project))


@pytest.fixture
def news_project(tmp_path: Path) -> Project:
    project = Project(tmp_path)
    project.write_config(CONFIG.format(interval="2s", schedule="every 2s", max_articles=50))
    (tmp_path / "news").mkdir()
    return project


def test_a_second_daemon_on_the_same_store_is_refused_at_once(news_project: Project) -> None:
    daemon = Daemon(news_project)
    try:
        daemon.wait_for_log("daemon started")
        # Refused, not queued behind the first: the first daemon runs on, so a second that waited for its lock would
        # run into the timeout. (No bound in seconds: on a loaded machine the CLI's start alone can take several.)
        second = news_project.cli("daemon", now=None, timeout=60)
        assert second.returncode == 3
        assert f"PID {daemon.process.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert daemon.process.poll() is None  # the first one is untouched
        daemon.wait_for_log(r"^source news polled")  # its first poll ends when it ends, on a busy machine later
        status = invoke(news_project, "status", now=None)
        assert f"daemon: running, PID {daemon.process.pid}" in status.stdout
        assert re.search(r"source news \(files\): last poll .*, next poll \d{4}-", status.stdout)
        assert daemon.stop(signal.SIGINT)[0] == 0
    finally:
        daemon.kill()


@pytest.mark.long
def test_sigkill_mid_work_then_restart_puts_every_article_in_exactly_one_edition(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.write_config(CONFIG.format(interval="1s", schedule="every 2s", max_articles=7))
    titles = [write_article(tmp_path / "news", number) for number in range(40)]
    for kill_after in (2.5, 4.0, 3.0):  # seconds: lands in polls, editions or deliveries
        daemon = Daemon(project)
        try:
            daemon.wait_for_log("daemon started")
            time.sleep(kill_after)  # how long it works before the kill, not a stand-in for time logic
        finally:
            daemon.kill()  # SIGKILL: no clean-up runs, the flock dies with the process
        titles.append(write_article(tmp_path / "news", 100 + len(titles), topic="late news"))
    daemon = Daemon(project)  # the stale lock of the killed one does not block
    try:
        wait_until(lambda: set(titles_in_editions(project)) >= set(titles), 120, "every article in an edition", daemon)
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
    counts = titles_in_editions(project)
    assert {title: n for title, n in counts.items() if n != 1} == {}
    assert set(counts) == set(titles)


@pytest.mark.long
def test_sigterm_during_a_long_poll_exits_0_within_10_seconds(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.write_config(CONFIG.format(interval="1h", schedule="every 1h", max_articles=50))
    for number in range(3000):
        write_article(tmp_path / "news", number)

    def stored() -> int:
        return int(json.loads(invoke(project, "status", "--json", now=None).stdout)["articles"])

    def committed() -> bool:
        """Any article committed: one read-only query, cheaper than `status` ten times a second."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{tmp_path / 'state' / 'digest.sqlite3'}?mode=ro", uri=True)) as db:
                return db.execute("SELECT EXISTS (SELECT 1 FROM articles)").fetchone()[0] == 1
        except sqlite3.OperationalError:  # the daemon has not made the store yet
            return False

    daemon = Daemon(project)
    try:
        wait_until(committed, 60, "the first batch of the poll committed", daemon)
        messages = daemon.stop_cleanly()
    finally:
        daemon.kill()
    assert "poll news stopped early: what it stored is kept, the rest comes next time" in messages  # it was mid-poll
    assert messages[-1] == "daemon stopped"
    assert 0 < stored() < 3000  # committed batches are kept; the rest comes with the next poll


@pytest.mark.long
def test_missed_daily_editions_make_exactly_one_edition_at_start(tmp_path: Path) -> None:
    """Two 07:00s missed while stopped: one catch-up edition at start, holding what came meanwhile. The late article
    is stored before the daemon starts (by a run of another digest of the same source, which leaves daily's editions
    alone), so the catch-up does not race the start-up poll's summary worker on a loaded machine."""
    project = Project(tmp_path)
    project.write_config(
        CONFIG.format(interval="5m", schedule="0 7 * * *", max_articles=50)
        + '\n[[digests]]\nname = "other"\nschedule = "every 1h"\noutput_dir = "../out"\nformats = ["md"]\n'
    )
    write_article(tmp_path / "news", 1)
    two_days_ago = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    assert invoke(project, "run", now=two_days_ago).returncode == 0  # the last edition is two days old
    assert edition_count(project) == 1
    late = write_article(tmp_path / "news", 2, topic="bridge works")
    assert invoke(project, "run", "--digest", "other", now=None).returncode == 0  # stored, in no edition of daily
    assert edition_count(project) == 1
    daemon = Daemon(project)
    try:
        daemon.wait_for_log(r"^edition of daily made")
        time.sleep(3)  # a second, wrong catch-up would come right after the first
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
    assert edition_count(project) == 2  # two missed 07:00s, one catch-up edition
    assert titles_in_editions(project)[late] == 1
    assert sum(m.startswith("edition of daily made") for m in daemon.messages()) == 1
    assert "edition of daily next: now, catching up on a scheduled time missed while stopped" in daemon.messages()
    status = json.loads(invoke(project, "status", "--json", now=None).stdout)
    [digest] = [d for d in status["digests"] if d["name"] == "daily"]
    assert digest["editions"] == 2
    next_edition = datetime.fromisoformat(digest["next_edition"])
    assert next_edition.astimezone(ZoneInfo("Europe/London")).hour == 7
    assert next_edition > datetime.now(timezone.utc)


@pytest.mark.long
def test_editions_take_new_files_once_sighup_reloads_the_config_or_keeps_a_bad_one_and_sigterm_exits_cleanly(
    news_project: Project,
) -> None:
    """One daemon through its life: the first edition, a new file in the next edition only, a bad config kept out
    by SIGHUP (the old schedule goes on), a good one taken in (a renamed digest), SIGTERM exiting 0 within 10 s."""
    first = write_article(news_project.root / "news", 1)
    daemon = Daemon(news_project)
    try:
        wait_until(lambda: titles_in_editions(news_project)[first] == 1, 60, "the first edition", daemon)
        good = news_project.config.read_text(encoding="utf-8")
        news_project.config.write_text(good.replace('"every 2s"', '"every 2 fortnights"'), encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for_log(r"^config not reloaded, keeping the running one: .*digests\[0\]\.schedule")
        second = write_article(news_project.root / "news", 2, topic="bridge works")
        wait_until(lambda: titles_in_editions(news_project)[second] == 1, 120, "an edition on the old schedule", daemon)
        assert titles_in_editions(news_project)[first] == 1  # not repeated in the second edition
        news_project.config.write_text(good.replace('name = "daily"', 'name = "evening"'), encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for_log(r"^config reloaded from ")
        third = write_article(news_project.root / "news", 3, topic="school meals")
        wait_until(
            lambda: any(third in p.read_text() for p in edition_files(news_project, "evening")), 30, "the renamed digest", daemon
        )
        messages = daemon.stop_cleanly()
    finally:
        daemon.kill()
    assert any(re.fullmatch(r"source news polled: 1 new", m) for m in messages)
    assert any(re.fullmatch(r"edition of daily made: 1 articles", m) for m in messages)
    assert any(m.startswith("delivery of daily to ") and m.endswith("delivered") for m in messages)
    assert messages[-1] == "daemon stopped"


@pytest.mark.long
def test_sigterm_during_a_stalled_email_exits_in_time_and_the_unconfirmed_email_goes_after_restart(tmp_path: Path) -> None:
    port = free_port()
    project = Project(tmp_path)
    project.write_config(
        CONFIG.format(interval="2s", schedule="every 2s", max_articles=50)
        + f"""
email_to = ["ann@example.com"]

[smtp]
host = "127.0.0.1"
port = {port}
timeout = "60s"
"""
    )
    write_article(tmp_path / "news", 1)
    with smtp_server(["stall"], port=port) as stalling:
        daemon = Daemon(project)
        try:
            wait_until(lambda: len(stalling.offered) == 1, 60, "the email handed to the server", daemon)
            messages = daemon.stop_cleanly()  # the server never answers DATA: the job cannot finish
        finally:
            daemon.kill()
        assert any(m.startswith("a job still ran after") and "exiting anyway" in m for m in messages)
    with smtp_server(port=port) as server:
        daemon = Daemon(project)
        try:
            wait_until(lambda: len(server.accepted) == 1, 60, "the email sent again after the restart", daemon)
            daemon.stop_cleanly()
        finally:
            daemon.kill()
    first, again = stalling.offered[0].message, server.accepted[0].message
    assert again["Message-ID"] == first["Message-ID"]  # the same message, so a receiver can drop a duplicate
    assert len(server.offered) == 1
