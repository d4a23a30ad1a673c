"""Subscribers' editions under `digest worker`: two worker processes on one PostgreSQL store make each
reader's mail at their own local time; one worker is SIGKILLed while it makes them and another started
(one job makes a digest's readers' editions at a time, so a third worker would only wait beside them).
Each reader gets their mail exactly once, with every article they want once, and the deliveries go through
the leased outbox."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from conftest import Project
from digest.config import StoreConfig
from digest.store import open_store
from tests.inprocess import invoke
from tests.smtpserver import smtp_server
from tests.test_worker import WORDS, kill_left, query, start_worker, stop_workers, wait_until, worker_config

NOTES = 60
ZONES = ("UTC", "Asia/Tokyo", "America/New_York")
READERS = 24  # each with a word of their own to leave out, so each is a group of their own: 24 editions to make


@pytest.mark.long
def test_readers_editions_at_their_local_time_once_each_with_a_worker_killed_while_making_them(
    tmp_path: Path, postgres_url: str
) -> None:
    project = Project(tmp_path)
    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(NOTES):
        topic = "railway" if n % 2 else "harbour"
        (notes / f"note-{n:03d}.txt").write_text(f"Note {n:03d} on the {topic}\n\nThe {topic} story. {WORDS.format(n=n)}\n")
    slot = datetime.now(timezone.utc).replace(second=0, microsecond=0)  # every due reader's local time is this minute
    owed: dict[str, str] = {}
    with smtp_server() as smtp:
        project.write_config(
            worker_config(
                postgres_url,
                smtp.port,
                """
            [[sources]]
            name = "notes"
            type = "files"
            path = "../notes"
            interval = "1h"

            [[digests]]
            name = "quay"
            schedule = "0 0 1 1 *"
            max_articles = 1000
            output_dir = "../out"
            base_url = "https://example.org/quay"
            """,
            )
        )
        store = open_store(StoreConfig(url=postgres_url))
        try:
            subscribed = slot - timedelta(days=1) + timedelta(seconds=10)  # after yesterday's moment: today's is their first
            for n in range(READERS):
                zone = ZONES[n % len(ZONES)]
                at = slot.astimezone(ZoneInfo(zone)).strftime("%H:%M")
                leave_out = "railway" if n == 0 else f"nothing{n}"
                address = f"reader{n:02d}@example.org"
                store.add_subscriber("quay", address, "", zone, at, [], [leave_out], "active", subscribed)
                owed[address] = leave_out
            later = (slot + timedelta(hours=2)).strftime("%H:%M")
            store.add_subscriber("quay", "later@example.org", "", "UTC", later, [], [], "active", slot - timedelta(hours=1))
        finally:
            store.close()
        # the articles arrive half a minute before the readers' moment (the digest's own schedule is yearly)
        ran = invoke(project, "run", now=(slot - timedelta(seconds=30)).isoformat())  # the workers are under test
        assert ran.returncode == 0, ran.stderr
        assert query(postgres_url, "SELECT COUNT(*) FROM articles")[0][0] == NOTES
        assert query(postgres_url, "SELECT COUNT(*) FROM deliveries WHERE channel = 'subscriber'") == [(0,)]  # no moment had come

        # The last reader's row is held locked, so the maker stops there with the others' editions made: the kill
        # below lands while the readers' editions are being made however fast this machine makes them.
        blocker = psycopg.connect(postgres_url)
        blocker.execute("SELECT id FROM subscribers WHERE address = %s FOR UPDATE", (f"reader{READERS - 1:02d}@example.org",))
        workers = [start_worker(project) for _ in range(2)]
        try:

            def makers() -> list[int]:
                """The process ids of the workers that began making the readers' editions, first first."""
                started = sorted(
                    (line.split(" INFO ")[0], int(line.rsplit("process ", 1)[1].rstrip(")")))
                    for path in project.root.glob("worker-*.log")
                    for line in path.read_text(errors="replace").splitlines()
                    if "readers of quay: editions started" in line
                )
                return [pid for _, pid in started]

            def first_made() -> bool:
                return bool(makers()) and query(postgres_url, "SELECT COUNT(*) FROM reader_slots")[0][0] > 0

            wait_until(
                first_made, 120, "the first reader's edition", project
            )  # as long as it takes: workers start slowly on a busy machine
            maker = next(worker for worker in workers if worker.pid == makers()[0])
            maker.send_signal(signal.SIGKILL)
            maker.wait()
            [(claimed_at_kill,)] = query(postgres_url, "SELECT COUNT(*) FROM reader_slots")
            blocker.close()  # the last reader is free for the worker that takes the job over
            workers.append(start_worker(project))

            def settled() -> bool:
                [(made, undelivered, queued)] = query(
                    postgres_url,
                    "SELECT (SELECT COUNT(*) FROM reader_slots), (SELECT COUNT(*) FROM deliveries WHERE status != 'delivered'), "
                    "(SELECT COUNT(*) FROM procrastinate_jobs WHERE task_name = 'digest.readers')",
                )
                return made == READERS and undelivered == 0 and queued == 0 and len(smtp.accepted) >= READERS

            wait_until(settled, 180, "every reader's edition made and delivered", project)
            codes = stop_workers(workers, maker)
        finally:
            blocker.close()
            kill_left(workers)
        accepted = list(smtp.accepted)
    assert codes == [0, 0]
    assert 0 < claimed_at_kill < READERS  # the kill came while the readers' editions were being made
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert "digest.readers" in logs and "of a worker that stopped:" in logs  # its job was taken over

    per_reader = Counter(r.rcpt_tos for r in accepted)
    assert per_reader == Counter({(address,): 1 for address in owed})  # each once; "later" not yet
    links = {str(r.message["List-Unsubscribe"]).strip() for r in accepted}
    assert len(links) == READERS and all(link.startswith("<https://example.org/quay/unsubscribe/") for link in links)
    held = query(
        postgres_url,
        "SELECT d.recipient, COUNT(*), SUM(CASE WHEN a.title LIKE '%%railway%%' THEN 1 ELSE 0 END), COUNT(DISTINCT a.id) "
        "FROM deliveries d JOIN edition_articles e ON e.edition_id = d.edition_id JOIN articles a ON a.id = e.article_id "
        "WHERE d.channel = 'subscriber' GROUP BY d.recipient",
    )
    for recipient, articles, railway, distinct in held:
        wanted = NOTES // 2 if owed[str(recipient)] == "railway" else NOTES
        assert (articles, distinct) == (wanted, wanted), recipient  # every article they want, once
        assert railway == (0 if owed[str(recipient)] == "railway" else NOTES // 2), recipient
    assert len(held) == READERS
    made_for = query(postgres_url, "SELECT last_slot FROM subscribers WHERE last_slot IS NOT NULL")
    assert Counter(datetime.fromisoformat(str(last)) for (last,) in made_for) == {slot: READERS}  # their own moment
