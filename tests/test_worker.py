"""`digest worker` end to end: three worker processes on one PostgreSQL store, one SIGKILLed in the middle of a
summary task and another started; every article is summarised and reaches exactly one edition per slot, each
recipient gets each edition exactly once, and nothing is left stuck in the queue."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, Project
from tests.httpserver import LocalServer, RequestHandler
from tests.inprocess import invoke
from tests.smtpserver import smtp_server

FEED_ITEMS = 300
FILES = 20
WORDS = (
    "The harbour committee met on {n} and agreed a plan for the quay. Repairs will start next week and take a month. "
    "Boats will moor at the north pier meanwhile. The ferry keeps its timetable. Residents asked about noise at night. "
    "The council promised quiet hours after eight. Funding comes from the port authority and a regional grant."
)


def feed(items: int) -> bytes:
    """An RSS feed of `items` entries published now, each with enough text to need no page fetch (and to take
    the summariser long enough that a kill lands in the middle of storing them)."""
    now = format_datetime(datetime.now(timezone.utc))
    entries = "".join(
        f"<item><title>Feed story {n:03d}</title><link>http://example.org/{n}</link><guid>story-{n}</guid>"
        f"<pubDate>{now}</pubDate><description>{' '.join(WORDS.format(n=n + 1000 * part) for part in range(6))}</description></item>"
        for n in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Loop</title><link>http://example.org/</link>{entries}</channel></rss>'.encode()


def start_worker(project: Project) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment["PYTHONPATH"] = str(REPO)
    log = open(project.root / f"worker-{time.monotonic_ns()}.log", "wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "--config",
            str(project.config),
            "--log-level",
            "info",
            "worker",
            "--concurrency",
            "2",
            "--lease",
            "60",  # longer than rendering and sending an edition takes on a busy machine (else a second worker sends it too)
        ],
        cwd=project.root,
        env=environment,
        stdout=log,
        stderr=log,
    )


def worker_config(postgres_url: str, smtp_port: int, rest: str) -> str:
    """A worker test's config: the PostgreSQL store and the loopback SMTP server, then `rest` (TOML). Articles
    are summarised as English without detecting it: no worker process loads the language detector (about half
    a second of CPU each), and what these tests prove does not hang on the language."""
    return (
        f'[store]\nurl = "{postgres_url}"\n\n[summary]\nlanguage = "english"\n\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nfrom = "Digest <digest@example.org>"\n\n'
    ) + textwrap.dedent(rest)


def stop_workers(workers: list[subprocess.Popen[bytes]], dead: subprocess.Popen[bytes] | None = None) -> list[int]:
    """SIGTERM every worker but the `dead` one and their exit codes: each must stop within 15 s."""
    alive = [worker for worker in workers if worker is not dead]
    for worker in alive:
        worker.send_signal(signal.SIGTERM)
    return [worker.wait(timeout=15) for worker in alive]


def kill_left(workers: list[subprocess.Popen[bytes]]) -> None:
    """Kill the workers a failed test left running."""
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()


def summary_jobs_running(project: Project) -> dict[str, int]:
    """The summary jobs whose worker logged their start and not yet their end, with its process id."""
    running: dict[str, int] = {}
    for path in project.root.glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if found := re.search(r"summary job (\d+): \d+ articles started \(worker process (\d+)\)", line):
                running[found[1]] = int(found[2])
            elif found := re.search(r"summary job (\d+): \d+ summarised", line):
                running.pop(found[1], None)
    return running


def kill_mid_summary(
    project: Project, workers: list[subprocess.Popen[bytes]], url: str
) -> tuple[subprocess.Popen[bytes], set[str]]:
    """SIGKILL a worker in the middle of a summary task: it is stopped (SIGSTOP) first, so that its logs show
    the task unfinished when it dies (else it is let go on and another is tried). Not while an email is being
    sent (leased): one that the server took before the kill could not be recorded, and would go again after
    the lease, which is the outbox's test, not this one. The worker and its unfinished jobs."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for job, pid in summary_jobs_running(project).items():
            worker = next(w for w in workers if w.pid == pid)
            worker.send_signal(signal.SIGSTOP)
            unfinished = {j for j, p in summary_jobs_running(project).items() if p == pid}
            if job in unfinished and query(url, "SELECT COUNT(*) FROM deliveries WHERE lease_owner IS NOT NULL") == [(0,)]:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                return worker, unfinished
            worker.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    pytest.fail("no summary task seen running")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, project: Project) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)  # each look is a connection and a query: the server is shared with the workers under test
    logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(project.root.glob("worker-*.log")))
    pytest.fail(f"timed out waiting for {what}\n{logs}")


@pytest.mark.long
def test_three_workers_one_killed_every_article_once_every_email_once(tmp_path: Path, new_postgres_url: str) -> None:
    postgres_url = new_postgres_url  # a store no process opened yet: the three workers starting at once make it once
    project = Project(tmp_path)
    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(FILES):
        (notes / f"note-{n:02d}.txt").write_text(f"Note {n:02d} on the quay\n\n{WORDS.format(n=n)}\n")
    requests = Counter[str]()
    stories: list[bytes] = []

    def serve_feed(request: RequestHandler) -> None:
        requests["feed"] += 1  # the first poll finds an empty feed: the 300 stories come after it, as news
        if requests["feed"] == 1:
            request.respond(200, feed(0), "application/rss+xml")
        elif request.headers.get("If-None-Match") == '"stories"':
            request.respond(304, b"")  # as a feed server does: the later polls (every second) parse nothing again
        else:
            stories[:] = stories or [feed(FEED_ITEMS)]
            request.respond(200, stories[0], "application/rss+xml", {"ETag": '"stories"'})

    with LocalServer() as http, smtp_server() as smtp:
        project.write_config(
            worker_config(
                postgres_url,
                smtp.port,
                f"""
            [fetch]
            allow_private = true

            [[sources]]
            name = "notes"
            type = "files"
            path = "../notes"
            interval = "1s"

            [[sources]]
            name = "loop"
            type = "feed"
            url = "{http.route("/feed.xml", serve_feed)}"
            interval = "1s"

            [[digests]]
            name = "quay"
            schedule = "every 5s"
            max_articles = 1000
            email_to = ["ann@example.org", "bob@example.org"]
            """,
            )
        )
        workers = [start_worker(project) for _ in range(3)]
        try:
            # waits only as long as it takes: three workers starting on a busy machine can take a minute
            wait_until(lambda: requests["feed"] >= 2, 120, "the feed's stories being polled", project)
            killed, unfinished = kill_mid_summary(project, workers, postgres_url)  # polls store; summary tasks summarise
            [(waiting_at_kill,)] = query(postgres_url, "SELECT COUNT(*) FROM articles WHERE summary_pending = 1")
            workers.append(start_worker(project))

            def settled() -> bool:
                [(stored, in_editions, undelivered, stuck, registered, counted)] = query(
                    postgres_url,
                    "SELECT (SELECT COUNT(*) FROM articles WHERE backfilled = 0), "
                    "(SELECT COUNT(DISTINCT article_id) FROM edition_articles), "
                    "(SELECT COUNT(*) FROM deliveries WHERE status != 'delivered'), "
                    "(SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'doing' AND (worker_id IS NULL "
                    "OR worker_id NOT IN (SELECT id FROM procrastinate_workers))), "
                    "(SELECT COUNT(*) FROM procrastinate_workers), (SELECT COUNT(*) FROM procrastinate_workers w "
                    "JOIN worker_counts c ON c.worker_id = w.id)",
                )
                # the killed worker is forgotten (its heartbeats stopped) once its jobs were put back; the one
                # started after it has done a task (digest status lists a worker from its first task on)
                return (
                    stored == FEED_ITEMS + FILES == in_editions and undelivered == 0 and stuck == 0 and registered == counted == 3
                )

            wait_until(settled, 180, "every article in an edition, every email delivered, no job of a dead worker", project)
            status = invoke(project, "status", "--json", now=None)  # the workers are the processes this test is about
            assert status.returncode == 0, status.stderr
            seen = json.loads(status.stdout)["workers"]
            assert sorted(w["alive"] for w in seen["workers"])[-3:] == [True, True, True]
            assert sum(w["done"] for w in seen["workers"]) > FEED_ITEMS // 100 and seen["stalled"] == []
            shown = invoke(project, "status", now=None).stdout
            assert shown.count(": alive, last heartbeat ") == 3 and "queue: " in shown
            codes = stop_workers(workers, killed)
        finally:
            kill_left(workers)
        accepted = list(smtp.accepted)
    assert codes == [0, 0, 0]
    assert waiting_at_kill > 0  # the kill came in the middle of the summarising
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    for job in unfinished:  # the summary task it was running was put back and done by another worker
        assert f"job {job} (digest.summarise " in logs and re.search(rf"summary job {job}: \d+ summarised", logs)
    assert query(postgres_url, "SELECT COUNT(*) FROM articles WHERE summary_pending = 1 OR summary = '[]'") == [(0,)]
    if "'notes'}) of a worker that stopped: put back" not in logs:  # else its cut-short poll is rightly run again
        starts = sorted(
            datetime.strptime(line.split(" INFO ")[0], "%Y-%m-%d %H:%M:%S,%f")
            for line in logs.splitlines()
            if "source notes: poll started" in line
        )
        assert len(starts) > 5 and min((b - a).total_seconds() for a, b in zip(starts, starts[1:])) > 0.5  # never two at once
    assert query(postgres_url, "SELECT COUNT(*) FROM edition_articles GROUP BY article_id HAVING COUNT(*) > 1") == []
    editions = query(postgres_url, "SELECT id FROM editions ORDER BY id")
    slots = query(postgres_url, "SELECT slot FROM edition_slots")
    assert len(editions) >= 1 and len(slots) >= len(editions)  # each edition from its own slot, no slot made twice
    per_recipient = Counter((r.rcpt_tos, r.message["Message-ID"]) for r in accepted)
    assert set(per_recipient.values()) == {1}  # each recipient has each edition exactly once
    assert Counter(rcpt for rcpt, _ in per_recipient) == {
        ("ann@example.org",): len(editions),
        ("bob@example.org",): len(editions),
    }
    delivered_ids = query(postgres_url, "SELECT recipient, message_id FROM deliveries ORDER BY id")
    assert {(rcpt, mid) for rcpt, mid in delivered_ids} == {(rcpts[0], mid) for rcpts, mid in per_recipient}
