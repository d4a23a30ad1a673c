"""The daemon's APScheduler jobs, planned from a real store with an injected clock (nothing runs)."""

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import Project
from httpserver import LocalServer, RequestHandler
from emailproject import make_config
from smtpserver import free_port, smtp_server
from digest import config as config_module
from digest import pipeline
from digest.jobs import PipelineWork
from digest.scheduler import Daemon

T = datetime(2026, 11, 27, 10, 30, tzinfo=timezone.utc)

def london(project: Project) -> str:
    """The shipped config (files source polled every 5m, daily at 07:00), in Europe/London."""
    return project.config.read_text(encoding="utf-8").replace('timezone = "UTC"', 'timezone = "Europe/London"')


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
    config = make_config(tmp_path, port, recipients=("ann@example.com",))
    work = PipelineWork(threading.Event())
    work.poll(config, "local news", T)
    work.edition(config, "daily", T)  # nothing listens yet: connection refused, retried later
    with smtp_server(port=port) as server:
        work.outbox(config, T + timedelta(seconds=30))  # the next outbox pass: still inside the backoff
        assert server.accepted == []
        work.outbox(config, T + timedelta(minutes=2))
        assert [message.rcpt_tos for message in server.accepted] == [("ann@example.com",)]
        work.outbox(config, T + timedelta(hours=3))  # delivered means done: never sent again
        assert len(server.offered) == 1


def test_polls_share_one_http_client_so_a_feed_is_fetched_over_one_kept_alive_connection(
        tmp_path: Path, http_server: LocalServer) -> None:
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
    (tmp_path / "digest.toml").write_text(f"""
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
""", encoding="utf-8")
    config = config_module.load(tmp_path / "digest.toml")
    work = PipelineWork(threading.Event())
    try:
        work.poll(config, "harbour", T)
        work.poll(config, "harbour", T + timedelta(minutes=30))
    finally:
        work.close()
    assert len(client_ports) == 2
    assert client_ports[0] == client_ports[1]  # the second poll reused the first poll's connection
