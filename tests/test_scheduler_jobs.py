"""The daemon's APScheduler jobs, planned from a real store with an injected clock (nothing runs)."""

import dataclasses
import threading

import pytest
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import Project
from tests.inprocess import invoke
from httpserver import LocalServer, RequestHandler
from emailproject import make_config
from smtpserver import free_port, smtp_server
from digest import config as config_module
from digest import fetch, jobs
from digest import pipeline
from digest.jobs import PipelineWork
from digest.scheduler import Daemon

T = datetime(2026, 11, 27, 10, 30, tzinfo=timezone.utc)


def london(project: Project) -> str:
    """The shipped config (files source polled every 5m, daily at 07:00), in Europe/London."""
    return project.config.read_text(encoding="utf-8").replace('timezone = "UTC"', 'timezone = "Europe/London"')


def summarised_here(config: config_module.Config) -> config_module.Config:
    """`config` with [summary] workers = 0: these tests are about what the jobs do, not where summaries are made
    (a worker process costs about 0.8 CPU s to start; the daemon tests run it)."""
    return dataclasses.replace(config, summary=dataclasses.replace(config.summary, workers=0))


def scheduled(daemon: Daemon) -> dict[str, datetime]:
    return {job.id: job.next_run_time for job in daemon.scheduler.get_jobs()}


def test_jobs_come_from_the_config_and_the_store_history(project: Project) -> None:
    project.write_config(london(project))
    config = config_module.load(project.config)
    pipeline.run(config, T - timedelta(days=2))  # last poll and last edition: two days ago
    daemon = Daemon(config, clock=lambda: T)
    daemon.schedule(T)
    jobs = scheduled(daemon)
    assert jobs["poll:seeds"] == T  # overdue
    assert jobs["edition:daily"] == T + timedelta(milliseconds=1)  # one catch-up, right after the poll
    edition = daemon.scheduler.get_job("edition:daily")
    after_catch_up = edition.trigger.get_next_fire_time(jobs["edition:daily"], T)
    assert after_catch_up == datetime(2026, 11, 28, 7, tzinfo=timezone.utc)  # then 07:00 London (GMT in November)

    daemon.work.poll(config, "seeds", T)
    daemon.work.edition(config, "daily", T)  # the catch-up job runs and finds nothing new: no edition
    (project.root / "seeds" / "late.txt").write_text("Late news\n\nA story that came after the catch-up run.\n")
    daemon.schedule(T + timedelta(minutes=2))  # a restart: the run counts, though it made no edition
    jobs = scheduled(daemon)
    assert jobs["poll:seeds"] == T + timedelta(minutes=5)
    assert jobs["edition:daily"] == datetime(2026, 11, 28, 7, tzinfo=timezone.utc)


def test_a_bad_reload_keeps_the_running_jobs_and_a_good_one_replaces_them(project: Project, tmp_path: Path) -> None:
    shipped = london(project)
    project.write_config(shipped)
    daemon = Daemon(config_module.load(project.config), clock=lambda: T)
    daemon.schedule(T)
    before = scheduled(daemon)
    project.write_config(shipped.replace('"0 7 * * *"', '"0 7 * *"'))
    assert daemon.reload(project.config) is False
    assert scheduled(daemon) == before
    project.write_config(shipped.replace('name = "daily"', 'name = "daily"\nsubject = "{{ digest.name"'))
    assert daemon.reload(project.config) is False  # a subject line that does not compile
    assert scheduled(daemon) == before
    project.write_config(shipped.replace('"0 7 * * *"', '"every 6h"').replace('"daily"', '"often"'))
    assert daemon.reload(project.config) is True
    jobs = scheduled(daemon)
    assert "edition:daily" not in jobs
    assert jobs["edition:often"] == T + timedelta(hours=6)


def test_the_outbox_job_retries_a_refused_email_once_its_backoff_has_passed(tmp_path: Path) -> None:
    port = free_port()
    config = summarised_here(make_config(tmp_path, port, recipients=("ann@example.com",)))
    work = PipelineWork(threading.Event())
    try:
        work.poll(config, "local news", T)
        work.edition(config, "daily", T)  # nothing listens yet: connection refused, retried later
        with smtp_server(port=port) as server:
            work.outbox(config, T + timedelta(seconds=30))  # the next outbox pass: still inside the backoff
            assert server.accepted == []
            work.outbox(config, T + timedelta(minutes=2))
            assert [message.rcpt_tos for message in server.accepted] == [("ann@example.com",)]
            work.outbox(config, T + timedelta(hours=3))  # delivered means done: never sent again
            assert len(server.offered) == 1
    finally:
        work.close()


def test_polls_share_one_http_client_so_a_feed_is_fetched_over_one_kept_alive_connection(
    tmp_path: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An idle connection expires after fetch.KEEPALIVE_EXPIRY (5 s) of wall time; on a loaded machine the first
    # poll's summarising alone can take that long. What is tested is that polls share the client, not the expiry.
    monkeypatch.setattr(fetch, "KEEPALIVE_EXPIRY", 3600.0)
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://example.org/</link>'
        "<item><guid>a1</guid><title>Harbour bridge reopens</title><description>The city said the work finished "
        "early. Officials thanked residents for their patience.</description></item></channel></rss>"
    )
    client_ports: list[int] = []

    def serve(request: RequestHandler) -> None:
        client_ports.append(request.client_address[1])
        request.respond(200, feed.encode(), "application/rss+xml")

    url = http_server.route("/feed.xml", serve)
    (tmp_path / "digest.toml").write_text(
        f"""
[store]
path = "state/digest.sqlite3"

[fetch]
allow_private = true
per_host_delay = "0s"

[[sources]]
name = "harbour"
type = "feed"
url = "{url}"
full_text = "never"
""",
        encoding="utf-8",
    )
    config = summarised_here(config_module.load(tmp_path / "digest.toml"))
    work = PipelineWork(threading.Event())
    try:
        work.poll(config, "harbour", T)
        work.poll(config, "harbour", T + timedelta(minutes=30))
    finally:
        work.close()
    assert len(client_ports) == 2
    assert client_ports[0] == client_ports[1]  # the second poll reused the first poll's connection


def feed_xml(stories: list[tuple[str, datetime]]) -> str:
    items = "".join(
        f"<item><guid>{title}</guid><title>{title}</title><pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<description>{title}. The harbour authority confirmed the news this morning.</description></item>"
        for title, when in stories
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>N</title>{items}</channel></rss>'


@pytest.mark.long
def test_an_edition_polls_its_sources_first_unless_they_were_polled_in_the_last_minute(
    project: Project, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 6: with a 30-minute interval, the 06:50 story reaches the 07:00 edition."""
    # An edition waits for its sources' fresh polls at most jobs.FRESH_POLL_WAIT (10 s) of wall time, which a loaded
    # machine can spend starting the summariser; that bound has tests of its own (test_daemon_concurrency.py).
    monkeypatch.setattr(jobs, "FRESH_POLL_WAIT", 600.0)
    seven = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
    url = http_server.serve("/feed", feed_xml([("Early ferry news", seven - timedelta(minutes=40))]), "application/rss+xml")
    project.write_config(
        project.config.read_text(encoding="utf-8").replace('sources = ["seeds"]\n', "")
        + f'\n[[sources]]\nname = "harbour"\ntype = "feed"\nurl = "{url}"\ninterval = "30m"\nfull_text = "never"\n'
        + '\n[fetch]\nallow_private = true\nper_host_delay = "0s"\n'
    )
    config = summarised_here(config_module.load(project.config))
    work = PipelineWork(threading.Event())
    try:
        work.poll(config, "harbour", seven - timedelta(minutes=30))  # the 06:30 poll
        work.poll(config, "seeds", seven - timedelta(minutes=30))
        http_server.serve(
            "/feed",
            feed_xml(
                [("Early ferry news", seven - timedelta(minutes=40)), ("Late crane collapse", seven - timedelta(minutes=10))]
            ),
            "application/rss+xml",
        )
        asked = len(http_server.requests_to("/feed"))
        work.edition(config, "daily", seven)
        assert len(http_server.requests_to("/feed")) == asked + 1
        [text] = [p.read_text() for p in (project.out / "daily").glob("*.txt")]
        assert "Late crane collapse" in text and "Early ferry news" in text

        work.poll(config, "harbour", seven + timedelta(hours=1))
        work.edition(config, "daily", seven + timedelta(hours=1, seconds=30))  # polled 30 s ago: not asked again
        assert len(http_server.requests_to("/feed")) == asked + 2
    finally:
        work.close()


def test_history_in_the_future_is_ignored_with_a_warning(project: Project, caplog: "pytest.LogCaptureFixture") -> None:
    """Issue 11 item 7: a run with DIGEST_NOW a year ahead must not stall the daemon's polls and editions for a year."""
    project.write_config(project.config.read_text(encoding="utf-8").replace('"0 7 * * *"', '"every 1h"'))
    config = config_module.load(project.config)
    pipeline.run(config, T + timedelta(days=365))
    daemon = Daemon(config, clock=lambda: T)
    with caplog.at_level("WARNING", logger="digest.daemon"):
        daemon.schedule(T)
    jobs = scheduled(daemon)
    assert jobs["poll:seeds"] == T  # due now, not in a year
    assert jobs["edition:daily"] == T + timedelta(hours=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("source seeds: its last poll is recorded at 2027-11-27" in w and "ignored" in w for w in warnings), warnings
    assert any("digest daily: its last edition is recorded at 2027-11-27" in w for w in warnings), warnings
    status = invoke(project, "status", now=T.isoformat())
    assert "next poll due now" in status.stdout and "after now" in status.stderr, status.stdout + status.stderr
