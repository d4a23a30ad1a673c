"""The summarising process pool: every article stored once, in one edition, with the serial path's summaries."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Project
from digest import poll
from digest.workers import Workers
from tests.inprocess import invoke

TOPICS = ["harbour", "council", "railway", "election", "river", "school", "budget", "hospital", "festival", "bridge"]
VERBS = ["approved", "delayed", "questioned", "funded", "opened", "inspected", "rejected", "praised"]


def article_text(number: int) -> str:
    """A made-up news story: a headline line, then six distinct sentences."""
    rng = random.Random(number)
    place = rng.choice(["Leeds", "Bristol", "Cardiff", "Dundee", "Exeter"])
    topic = rng.choice(TOPICS)
    sentences = [
        f"The {rng.choice(TOPICS)} board in {place} {rng.choice(VERBS)} a plan on {rng.choice(TOPICS)} number {number}."
        for _ in range(6)
    ]
    return f"{place} {topic} story {number}\n\n" + " ".join(sentences) + "\n"


def project_with_articles(root: Path, count: int, workers: str, duplicate_of: int | None = None) -> Project:
    project = Project(root)
    (root / "news").mkdir(parents=True)
    for number in range(count):
        (root / "news" / f"story-{number:04d}.txt").write_text(article_text(number), encoding="utf-8")
    if duplicate_of is not None:
        (root / "news" / "story-copy.txt").write_text(article_text(duplicate_of), encoding="utf-8")
    project.write_config(f"""
        [store]
        path = "../state/digest.sqlite3"

        [summary]
        workers = {workers}

        [[sources]]
        name = "news"
        type = "files"
        path = "../news"

        [[digests]]
        name = "daily"
        max_articles = 500
        group_stories = false  # every article an entry of its own: the made-up stories share their words
        output_dir = "../out"
        formats = ["md"]
    """)
    return project


def edition_summaries(project: Project) -> str:
    (document,) = (project.out / "daily").glob("*.md")
    return document.read_text(encoding="utf-8")


@pytest.fixture
def small_run(monkeypatch: pytest.MonkeyPatch) -> int:
    """A run takes the pool past 20 summaries instead of 300 (the CLI runs in process, so this reaches it):
    what is tested is the pool's work, not where the threshold lies."""
    monkeypatch.setattr(poll, "SMALL_RUN", 20)
    return 20


def test_a_run_over_the_pool_stores_each_article_once_with_the_serial_summaries_and_a_copy_once(
    tmp_path: Path, small_run: int
) -> None:
    """A run whose summaries are made by two worker processes stores what a run without them stores, in the same
    edition with the same summaries; a true copy of an article, summarised alongside its original (both in flight
    at once), is stored once."""
    count = small_run + 20  # so the pool is used
    pooled = project_with_articles(tmp_path / "pooled", count, workers="2", duplicate_of=count - 1)
    serial = project_with_articles(tmp_path / "serial", count, workers="0", duplicate_of=count - 1)
    for project in (pooled, serial):
        result = invoke(project, "--log-level", "info", "run", "--json")
        assert result.returncode == 0, result.stderr
        assert ("starting up to 2 worker processes" in result.stderr) == (project is pooled)
        report = json.loads(result.stdout)
        assert (report["sources"][0]["new_articles"], report["sources"][0]["seen"]) == (count, 1)
        assert report["editions"] == [{"digest": "daily", "made": True, "articles": count, "waiting": 0}]
    assert edition_summaries(pooled) == edition_summaries(serial)
    for number in range(count):
        assert edition_summaries(pooled).count(f" story {number}\n") == 1
    again = invoke(pooled, "run", "--json", now="2026-11-28T07:00:00+00:00")
    assert json.loads(again.stdout)["editions"][0]["made"] is False


def failing_after(count: int) -> Iterator[str]:
    yield from (f"item {number}" for number in range(count))
    raise ValueError("the source broke")


def length_unless_marker(item: str) -> tuple[str] | None:
    return None if item.startswith("marker") else (item,)


@pytest.mark.parametrize("workers, small_run", [(2, 1), (1, 1), (2, 100), (0, 1)])
def test_outcomes_come_in_input_order_and_a_source_error_comes_after_what_it_gave(workers: int, small_run: int) -> None:
    pool: Workers[str, int] = Workers(len, workers, small_run=small_run)
    try:
        items = [f"marker {n}" if n % 7 == 0 else "x" * n for n in range(40)]
        expected = [(item, None if item.startswith("marker") else len(item)) for item in items]
        assert list(pool.map(items, length_unless_marker)) == expected
        done = []
        with pytest.raises(ValueError, match="the source broke"):
            for item, length in pool.map(failing_after(13), length_unless_marker):
                done.append((item, length))
        assert done == [(f"item {number}", len(f"item {number}")) for number in range(13)]
        assert pool.started == (workers > 0 and small_run <= 34)
    finally:
        pool.close()


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_a_failed_call_is_its_items_outcome_and_the_others_go_on(workers: int) -> None:
    pool: Workers[str, int] = Workers(int, workers, small_run=1)
    try:
        outcomes = list(pool.map(["1", "2", "3", "x", "5", "6"], lambda item: (item,)))
        assert [outcome for _, outcome in outcomes if not isinstance(outcome, Exception)] == [1, 2, 3, 5, 6]
        assert isinstance(outcomes[3][1], ValueError) and "'x'" in str(outcomes[3][1])
    finally:
        pool.close()


def worker_pid(pool: Workers[str, int]) -> int:
    """The process that ran one call in a session of `pool`."""
    with pool.session():
        [(_, pid)] = pool.map(["one article"], lambda _: ())
    return int(pid)


def test_polls_following_each_other_share_one_worker_which_stops_once_idle_for_its_linger() -> None:
    """The daemon's workers: a poll soon after another reuses its worker (no second start-up, about 0.8 CPU s);
    once no poll used it for `linger` seconds it stops; closing the pool stops it at once."""
    import os

    lasting: Workers[str, int] = Workers(os.getpid, 1, small_run=0, linger=600.0)  # no machine is that slow
    try:
        first = worker_pid(lasting)
        assert first != os.getpid() and worker_pid(lasting) == first  # the same worker
        assert lasting.started
    finally:
        lasting.close()
    assert not lasting.started
    brief: Workers[str, int] = Workers(os.getpid, 1, small_run=0, linger=0.2)
    try:
        first = worker_pid(brief)
        assert wait_for(lambda: not brief.started, timeout=30)  # idle for the linger: stopped
        assert worker_pid(brief) != first  # the next poll starts a new one
    finally:
        brief.close()
    shared: Workers[str, int] = Workers(os.getpid, 1, small_run=0)  # no linger: stopped with the last session
    try:
        worker_pid(shared)
        assert not shared.started
    finally:
        shared.close()


POLL_LIKE_THE_DAEMON = """
import multiprocessing, sys
from datetime import datetime, timezone
from digest import config
from digest import pipeline
from digest.store import open_store

if __name__ == "__main__":
    loaded = config.load(sys.argv[1])
    store = open_store(loaded.store)
    now = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
    [report] = pipeline.poll(loaded, store, [loaded.sources[0]], now)
    [edition] = pipeline.make_editions(loaded, store, [loaded.digests[0]], now)
    print(report.new_articles, report.error or "ok", edition.articles)
    print(len(multiprocessing.active_children()), sorted(m for m in ("nltk", "sumy", "py3langid", "numpy") if m in sys.modules))
"""


@pytest.mark.long
def test_a_pipeline_polled_now_and_then_keeps_no_workers_and_no_summariser(tmp_path: Path) -> None:
    """The daemon polls through the pipeline again and again: between jobs it must hold no worker
    processes and none of the summariser's libraries and models (about 100 MB)."""
    import subprocess

    from conftest import REPO

    project = project_with_articles(tmp_path, 30, workers="1")  # one worker process shows it as well as two
    script = tmp_path / "poll.py"
    script.write_text(POLL_LIKE_THE_DAEMON, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script), str(project.config)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["30 ok 30", "0 []"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads processes from Linux's /proc")
def test_a_killed_run_leaves_no_worker_processes_behind(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess

    from conftest import REPO

    project = project_with_articles(tmp_path, 1500, workers="2")
    environment = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DIGEST_NOW": "2026-11-27T07:00:00+00:00",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(project.config), "run"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers = wait_for(lambda: [p for p in children(run.pid) if "spawn_main" in command_line(p)], timeout=60)
        assert workers, "the run never started its workers"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert wait_for(lambda: not any("spawn_main" in command_line(p) for p in workers), timeout=30)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def wait_for(condition: Callable[[], Any], timeout: float) -> Any:
    """Poll `condition` until it gives something truthy or `timeout` seconds pass; its last value."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
