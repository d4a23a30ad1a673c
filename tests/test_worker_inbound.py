"""Newsletters beside `digest worker`: the listener (`digest inbound`, on any machine) only stores what it
takes in the shared PostgreSQL store; a worker turns it into articles within a second or two (a
`digest.inbound` task), not at the mailbox source's next interval, and the next edition mails it."""

from __future__ import annotations

import smtplib
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import Project
from digest.config import StoreConfig
from digest.store import open_store
from tests.newsletters import ARTICLE
from tests.smtpserver import free_port, smtp_server
from tests.test_inbound import ADDRESS, newsletter, running
from tests.test_worker import kill_left, query, start_worker, stop_workers, wait_until, worker_config


@pytest.mark.long
def test_mail_the_listener_stores_becomes_articles_on_a_worker_at_once_and_reaches_the_next_edition(
    tmp_path: Path, postgres_url: str
) -> None:
    project = Project(tmp_path)
    port = free_port()
    with smtp_server() as smtp:
        project.write_config(
            worker_config(
                postgres_url,
                smtp.port,
                f"""
            [[sources]]
            name = "letters"
            type = "mailbox"
            address = "{ADDRESS}"
            interval = "1h"

            [[digests]]
            name = "letters"
            schedule = "every 2s"
            email_to = ["ann@example.org"]

            [inbound]
            listen = "127.0.0.1:{port}"
            hostname = "digest.test"
            """,
            )
        )
        open_store(StoreConfig(url=postgres_url)).close()  # the tables, before anything looks at them
        worker = start_worker(project)
        try:
            polled = "SELECT COUNT(*) FROM sources WHERE name = 'letters' AND last_poll IS NOT NULL"
            wait_until(lambda: query(postgres_url, polled) == [(1,)], 30, "the mailbox's first poll", project)
            with running(project, "inbound"):
                for number, subject in enumerate(("Harbour letter", "Tram letter")):
                    letter = newsletter(subject, f"<n{number}@substack.com>")
                    letter.replace_header("Date", format_datetime(datetime.now(timezone.utc)))
                    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                        assert client.send_message(letter) == {}

                    def mailed(subject: str = subject) -> bool:
                        return any(subject in r.message.get_body(("plain",)).get_content() for r in smtp.accepted)

                    # the next poll by interval is an hour away: only the task the tick defers explains this
                    wait_until(mailed, 60, f"{subject!r} as an article, in an edition, mailed", project)
            assert stop_workers([worker]) == [0]
        finally:
            kill_left([worker])
    stored = query(postgres_url, "SELECT title, body FROM articles WHERE source = 'letters' ORDER BY id")
    assert [title for title, _ in stored] == ["Harbour letter", "Tram letter"]  # each once
    assert all(ARTICLE[0] in str(body) for _, body in stored)  # parsed and extracted: the article's text
    log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert log.count("source letters: received mail taken in") >= 2
    assert "digest.inbound" in log
