"""Email delivery through the outbox, against real aiosmtpd servers and a real SQLite store.

Time is injected: backoff is tested by moving `now`, never by sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest import pipeline
from digest.config import Config
from digest.config import load as load_config
from digest.models import Delivery, RenderedEdition
from digest.deliver import OutboxTools, RenderFor
from digest.store import Store, open_store
from tests.emailproject import TITLES, make_config
from tests.smtpserver import Received, free_port, hang_up_server, make_certificate, smtp_server
from tests.inprocess import run_in_process

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)


def outbox(config: Config) -> dict[str, tuple[str, int, str, datetime | None]]:
    """recipient -> (status, attempts, last error, next attempt) of every email delivery."""
    store = open_store(config.store)
    try:
        rows = store.deliveries(["pending", "delivered", "failed"])
    finally:
        store.close()
    return {d.recipient: (d.status, d.attempts, d.last_error, d.next_attempt) for d in rows if d.channel == "email"}


def outbox_tools(config: Config, store: Store, render: RenderFor) -> OutboxTools:
    """What an outbox pass lends its channels, with `render` standing in for the pipeline's rendering."""
    return OutboxTools(render, lambda name, folder: pipeline.archive(config, store, config.digest(name), folder))


def message_ids(received: list[Received]) -> list[str]:
    return [r.message["Message-ID"] for r in received]


def test_each_of_two_recipients_gets_exactly_one_message_naming_only_them(tmp_path: Path) -> None:
    with smtp_server() as server:
        config = make_config(tmp_path, server.port)
        report = pipeline.run(config, T0)
    assert not report.failed
    by_recipient = {r.rcpt_tos: r.message for r in server.accepted}
    assert set(by_recipient) == {("ann@example.com",), ("bob@example.net",)}
    for (recipient,), message in by_recipient.items():
        assert message.get_all("To") == [recipient]
        assert message.get_all("Cc") is None and message.get_all("Bcc") is None
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for title in TITLES[:2]:
            assert title in text and title in html
        assert "Markets calm" in text and "Markets calm" in html
        assert 'style="' in html and "<style" not in html and "<script" not in html.lower()
        assert message["List-Unsubscribe"] == "<https://example.org/leave>"
    assert len(set(message_ids(server.accepted))) == 2
    assert {s for s, *_ in outbox(config).values()} == {"delivered"}


def test_a_hostile_title_in_the_subject_template_cannot_add_a_header(tmp_path: Path) -> None:
    subject = "{{ digest.name }}: {% for s in sections %}{% for a in s.articles %}{{ a.title }} | {% endfor %}{% endfor %}"
    with smtp_server() as server:
        config = make_config(tmp_path, server.port, recipients=("ann@example.com",), subject=subject)
        pipeline.run(config, T0)
    [got] = server.accepted
    names = {name.lower() for name in got.message.keys()}
    assert names == {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "auto-submitted",
        "list-unsubscribe",
        "mime-version",
        "content-type",
    }
    assert b"\nBcc:" not in got.content and b"\nX-Injected:" not in got.content
    assert "Markets calm" in got.message["Subject"]


def test_451_then_250_delivers_exactly_once_with_the_same_message_id(tmp_path: Path) -> None:
    with smtp_server(["451 4.7.1 Greylisted, try again later"]) as server:
        config = make_config(tmp_path, server.port, recipients=("ann@example.com",))
        pipeline.run(config, T0)
        status, attempts, error, next_attempt = outbox(config)["ann@example.com"]
        assert (status, attempts, next_attempt) == ("pending", 1, T0 + timedelta(minutes=1))
        assert "451 4.7.1 Greylisted" in error
        assert pipeline.process_outbox(config, T0 + timedelta(seconds=59), honour_backoff=True) == []
        [retry] = pipeline.process_outbox(config, T0 + timedelta(minutes=1), honour_backoff=True)
        assert retry.status == "delivered"
        assert pipeline.process_outbox(config, T0 + timedelta(hours=5), honour_backoff=False) == []
    assert len(server.accepted) == 1
    assert len(server.offered) == 2
    assert len(set(message_ids(server.offered))) == 1
    assert outbox(config)["ann@example.com"][:3] == ("delivered", 2, "")


def test_550_fails_with_the_reply_and_is_never_retried(tmp_path: Path) -> None:
    with smtp_server(["550 5.1.1 <ann@example.com>: no such user"]) as server:
        config = make_config(tmp_path, server.port, recipients=("ann@example.com",))
        report = pipeline.run(config, T0)
        assert report.failed
        assert pipeline.process_outbox(config, T0 + timedelta(days=1), honour_backoff=False) == []
        pipeline.run(config, T0 + timedelta(days=1))
    assert len(server.offered) == 1 and server.accepted == []
    status, attempts, error, _ = outbox(config)["ann@example.com"]
    assert (status, attempts) == ("failed", 1)
    assert "550 5.1.1 <ann@example.com>: no such user" in error


def test_a_server_that_closes_after_data_gets_the_message_at_most_twice_with_one_message_id(tmp_path: Path) -> None:
    with smtp_server(["close"]) as server:
        config = make_config(tmp_path, server.port, recipients=("ann@example.com",))
        pipeline.run(config, T0)
        assert outbox(config)["ann@example.com"][0] == "pending"
        assert "closed the connection before confirming" in outbox(config)["ann@example.com"][2]
        pipeline.process_outbox(config, T0 + timedelta(minutes=1), honour_backoff=True)
        pipeline.process_outbox(config, T0 + timedelta(hours=1), honour_backoff=True)
    assert 1 <= len(server.accepted) <= 2
    assert len(set(message_ids(server.offered))) == 1
    assert outbox(config)["ann@example.com"][0] == "delivered"


def test_backoff_doubles_from_a_minute_caps_at_an_hour_then_gives_up(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port(), recipients=("ann@example.com",), smtp_extra='give_up_after = "6h"\n')
    pipeline.run(config, T0)
    now, waits = T0, []
    while True:
        status, _, error, next_attempt = outbox(config)["ann@example.com"]
        if status != "pending":
            break
        assert next_attempt is not None
        waits.append(next_attempt - now)
        assert pipeline.process_outbox(config, next_attempt - timedelta(seconds=1), honour_backoff=True) == []
        now = next_attempt
        pipeline.process_outbox(config, now, honour_backoff=True)
    assert [w.total_seconds() / 60 for w in waits[:8]] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert status == "failed"
    assert error.startswith("gave up after 6 hours of retries: cannot connect to 127.0.0.1:")
    assert now - T0 >= timedelta(hours=6)


def test_digest_run_retries_every_pending_delivery_at_once(tmp_path: Path) -> None:
    port = free_port()
    config = make_config(tmp_path, port, recipients=("ann@example.com", "bob@example.net"))
    pipeline.run(config, T0)
    for _ in range(3):  # build up backoff: the next try is minutes away
        pipeline.process_outbox(config, T0 + timedelta(hours=1), honour_backoff=False)
    assert all(row[0] == "pending" and row[3] > T0 + timedelta(hours=1) for row in outbox(config).values())
    with smtp_server(port=port) as server:
        report = pipeline.run(config, T0 + timedelta(hours=1))
    assert [d.status for d in report.deliveries] == ["delivered", "delivered"]
    assert sorted(r.rcpt_tos for r in server.accepted) == [("ann@example.com",), ("bob@example.net",)]


def test_a_broken_server_costs_one_connection_per_pass_not_one_per_recipient(tmp_path: Path) -> None:
    recipients = tuple(f"reader{n}@example.com" for n in range(5))
    with hang_up_server() as (port, connections):
        config = make_config(tmp_path, port, recipients=recipients)
        report = pipeline.run(config, T0)
    assert [d.status for d in report.deliveries] == ["pending"] * 5
    assert all("cannot connect" in d.error for d in report.deliveries)
    assert len(connections) == 1


# The CLI (run, status, check --smtp) in process with CliRunner; test_subscriber_week mails through it in a subprocess.


def test_cli_run_delivers_status_shows_a_failure_and_check_smtp_logs_in(tmp_path: Path) -> None:
    with smtp_server(["250 OK", "550 5.7.1 Relaying denied for bob@example.net"]) as server:
        config = make_config(tmp_path, server.port)
        result = run_in_process("--config", str(config.path), "run", cwd=tmp_path, now=T0.isoformat())
        status = run_in_process("--config", str(config.path), "status", cwd=tmp_path)
        check = run_in_process("--config", str(config.path), "check", "--smtp", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "delivery daily (email) to ann@example.com via 127.0.0.1:" in result.stdout and ": delivered" in result.stdout
    assert "to bob@example.net: failed: DATA: server replied 550 5.7.1 Relaying denied" in result.stdout
    assert "outbox failed: daily email to bob@example.net after 1 attempt(s): DATA: server replied 550 5.7.1" in status.stdout
    assert check.returncode == 0 and "smtp: ok (nothing sent)" in check.stdout
    assert len(server.offered) == 2 and [r.rcpt_tos for r in server.accepted] == [("ann@example.com",)]


def test_cli_check_smtp_says_plainly_that_the_login_failed(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path / "tls")
    with smtp_server(starttls=certificate, login=("ann", "right")) as server:
        extra = (
            f'security = "starttls"\nusername = "ann"\npassword_env = "TEST_SMTP_PASSWORD"\nca_file = "{certificate.ca_file}"\n'
        )
        config = make_config(tmp_path, server.port, smtp_extra=extra)
        wrong = run_in_process("--config", str(config.path), "check", "--smtp", cwd=tmp_path, env={"TEST_SMTP_PASSWORD": "wrong"})
        right = run_in_process("--config", str(config.path), "check", "--smtp", cwd=tmp_path, env={"TEST_SMTP_PASSWORD": "right"})
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines() == [
        "digest: smtp check failed: login as 'ann' refused: 535 5.7.8 Authentication credentials invalid (check TEST_SMTP_PASSWORD)"
    ]
    assert right.returncode == 0, right.stderr
    assert "smtp: started TLS" in right.stdout and "smtp: logged in as ann" in right.stdout
    assert server.offered == []


def test_two_delivery_passes_of_one_process_at_once_send_each_email_once(tmp_path: Path) -> None:
    """The daemon's edition, subscribers and outbox jobs run at once on its threads, each delivering what is
    due through its own store connection. Each connection leases as an owner of its own: before, they
    shared the process's, an owner may renew its own lease, and every email of a slow server went twice."""
    import threading

    recipients = tuple(f"reader{n}@example.org" for n in range(6))
    with smtp_server(["250 slowly"] * 12) as server:
        config = make_config(tmp_path, server.port, recipients=recipients)
        now = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
        store = open_store(config.store)
        try:
            pipeline.poll(config, store, config.sources, now, one_shot=True)  # as `digest run`: a few summaries, made here
            pipeline.make_editions(config, store, config.digests, now)
        finally:
            store.close()

        def job() -> None:
            connection = open_store(config.store)
            try:
                pipeline.deliver(config, connection, now, honour_backoff=True)
            finally:
                connection.close()

        jobs = [threading.Thread(target=job) for _ in range(2)]
        for thread in jobs:
            thread.start()
        for thread in jobs:
            thread.join(60)
    assert sorted(r.rcpt_tos for r in server.accepted) == [(address,) for address in recipients]


def test_a_delivery_whose_lease_was_taken_while_rendering_is_left_to_its_new_holder(tmp_path: Path) -> None:
    """A slow rendering can outlast a delivery's lease; another worker then takes it over. The first
    renews its lease before sending and, finding it taken, does not send: each email goes once."""
    from digest import deliver as outbox_stage

    with smtp_server() as server:
        config = make_config(tmp_path, server.port, recipients=("ann@example.com",))
        store = open_store(config.store)
        other = open_store(config.store)
        try:
            pipeline.poll(config, store, config.sources, T0, one_shot=True)
            pipeline.make_editions(config, store, config.digests, T0)
            taken: list[bool] = []

            def slow_render(delivery: Delivery, rendering: str) -> tuple[RenderedEdition, datetime]:
                # the 30 s lease has run out by T0 + 1 min: the other owner takes the delivery over
                taken.append(other.claim_delivery(delivery.id, T0 + timedelta(minutes=1), timedelta(minutes=10)))
                edition = store.edition(delivery.edition_id)
                return pipeline.render_email(config, store, config.digest(delivery.digest), edition), edition.created

            tools = outbox_tools(config, store, slow_render)
            reports = outbox_stage.process_outbox(config, store, tools, T0, honour_backoff=True, lease=timedelta(seconds=30))
            assert taken == [True] and reports == []
            assert server.accepted == []
            assert outbox(config)["ann@example.com"][0] == "pending"  # the new holder's to send
            late = pipeline.deliver(config, other, T0 + timedelta(minutes=2), honour_backoff=True)
        finally:
            other.close()
            store.close()
    assert [r.status for r in late] == ["delivered"]
    assert [r.rcpt_tos for r in server.accepted] == [("ann@example.com",)]


def test_files_a_killed_owner_held_are_written_a_minute_later_and_its_email_waits_for_its_lease(tmp_path: Path) -> None:
    """A daemon SIGKILLed while it delivers leaves its claims behind. Files are rewritten whole under the same
    names, so theirs is taken over after a minute; an email sent twice is two emails, so it waits out its lease."""
    from digest import deliver as outbox_stage

    with smtp_server() as server:
        make_config(tmp_path, server.port, recipients=("ann@example.com",))
        path = tmp_path / "digest.toml"
        path.write_text(path.read_text().replace('name = "daily"\n', 'name = "daily"\noutput_dir = "out"\n'))
        config = load_config(path)  # email and files, and the archive beside the files
        store = open_store(config.store)
        try:
            pipeline.poll(config, store, config.sources, T0, one_shot=True)
            pipeline.make_editions(config, store, config.digests, T0)
            held = store.deliveries(["pending"])
            assert {d.channel for d in held} == {"files", "archive", "email"}

            def killed_while_rendering(delivery: Delivery, rendering: str) -> tuple[RenderedEdition, datetime]:
                raise KeyboardInterrupt  # the process dies here, its claim left behind

            tools = outbox_tools(config, store, killed_while_rendering)
            for _ in held:  # one daemon after another, each killed while it renders the next delivery it claimed
                killed = open_store(config.store)
                try:
                    with pytest.raises(KeyboardInterrupt):
                        outbox_stage.process_outbox(config, killed, tools, T0, honour_backoff=True)
                finally:
                    killed.close()
            soon = pipeline.deliver(config, store, T0 + timedelta(seconds=61), honour_backoff=True)
            assert server.accepted == []
            later = pipeline.deliver(config, store, T0 + timedelta(minutes=10, seconds=1), honour_backoff=True)
        finally:
            store.close()
    assert {r.channel for r in soon if r.status == "delivered"} == {d.channel for d in held} - {"email"}
    assert list((tmp_path / "out" / "daily").glob("*.html"))
    assert [(r.channel, r.status) for r in later] == [("email", "delivered")]
    assert [r.rcpt_tos for r in server.accepted] == [("ann@example.com",)]
