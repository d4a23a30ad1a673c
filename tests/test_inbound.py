"""Newsletters in by email: the real `digest inbound` (and `digest daemon`) in a subprocess, spoken to with
smtplib over loopback SMTP and a Unix-socket LMTP, and `digest run` (in process, CliRunner) making articles of what it took."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import REPO, Project
from tests.newsletters import ARTICLE, BOILERPLATE, SHAPES, TRACKER_HOSTS, kept_share
from tests.smtpserver import free_port, make_certificate
from tests.inprocess import invoke

ADDRESS = "letters.k7q2m9x4wd3p@news.example.org"
OTHER = "tech.m3x8r2q9vz4k@news.example.org"


def write_config(project: Project, port: int, *, senders: str = "", extra_inbound: str = "", interval: str = "5m") -> None:
    project.write_config(f"""
        [store]
        path = "../state/digest.sqlite3"

        [[sources]]
        name = "letters"
        type = "mailbox"
        address = "{ADDRESS}"
        interval = "{interval}"
        {senders}

        [[sources]]
        name = "tech"
        type = "mailbox"
        address = "{OTHER}"

        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["txt", "html"]

        [inbound]
        listen = "127.0.0.1:{port}"
        lmtp = "{project.root / "run" / "lmtp.sock"}"
        max_bytes = 200000
        hostname = "digest.test"
        {extra_inbound}
    """)


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment["PYTHONPATH"] = str(REPO)
    environment.update(extra or {})
    return environment


@contextmanager
def running(
    project: Project, *command: str, env: dict[str, str] | None = None, ready: str = "inbound listening"
) -> Iterator[subprocess.Popen[str]]:
    """`python -m digest --config ... COMMAND` in a subprocess, once it says `ready` on stderr; stopped after.

    It runs in a session of its own so that, when it has to be killed, its children (the daemon's listener) die with
    it: an orphan would hold the stderr pipe open and the test would wait on it for ever."""
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(project.config), *command],
        cwd=project.root,
        env=cli_env(env),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    stderr = process.stderr
    lines: list[str] = []
    settled = threading.Event()  # it said `ready`, or closed stderr without saying it

    def collect() -> None:  # reads to the end: a full pipe never blocks it
        for line in stderr:
            lines.append(line)
            if ready in line:
                settled.set()
        settled.set()

    threading.Thread(target=collect, daemon=True).start()
    if not settled.wait(60) or not any(ready in line for line in lines):
        kill_session(process)
        pytest.fail(f"{command} did not start: {''.join(lines)}")
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_session(process)


def kill_session(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process and every process of its session (it was started with start_new_session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def newsletter(
    subject: str = "Weekly notes",
    message_id: str = "<n1@substack.com>",
    to: str = ADDRESS,
    sender: str = "City Notes <citynotes@substack.com>",
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = "Thu, 26 Nov 2026 08:30:00 +0000"
    message.set_content(" ".join(ARTICLE) + "\n\n-- \nUnsubscribe: https://example.invalid/u\n")
    return message


def digest_run(project: Project) -> tuple[dict, str]:
    result = invoke(project, "run", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    texts = sorted((project.out / "daily").glob("*.txt"))
    if not texts:
        return report, ""
    # The entries, unwrapped, without the HEADLINES list that repeats each title above them.
    entries = re.sub(r"\nHEADLINES\n(?:.+\n)+", "\n", texts[-1].read_text(encoding="utf-8"), count=1)
    return report, " ".join(entries.split())


def articles(project: Project) -> list[tuple[str, str]]:
    with sqlite3.connect(project.root / "state" / "digest.sqlite3") as db:
        return db.execute("SELECT source, title FROM articles ORDER BY id").fetchall()


def stored_messages(project: Project) -> int:
    with sqlite3.connect(project.root / "state" / "digest.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM inbound_messages").fetchone()[0])


def test_a_newsletter_sent_by_smtp_and_by_lmtp_is_in_the_next_run(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            code, features = client.ehlo()
            assert code == 250 and b"SIZE 200000" in features and features.startswith(b"digest.test")
            assert client.send_message(newsletter("Sent over SMTP", "<smtp-1@substack.com>")) == {}
        with smtplib.LMTP(str(project.root / "run" / "lmtp.sock"), timeout=10) as client:
            assert client.send_message(newsletter("Sent over LMTP", "<lmtp-1@substack.com>", to=OTHER)) == {}
    report, text = digest_run(project)
    assert {s["name"]: s["new_articles"] for s in report["sources"]} == {"letters": 1, "tech": 1}
    assert "Sent over SMTP" in text and "Sent over LMTP" in text
    assert ARTICLE[0] in text
    assert "Unsubscribe" not in text and "example.invalid" not in text


def test_lmtp_answers_each_recipient_after_data(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    with running(project, "inbound"):
        with smtplib.LMTP(str(project.root / "run" / "lmtp.sock"), timeout=10) as client:
            assert client.ehlo("mta.test")[0] == 250  # smtplib.LMTP sends LHLO
            client.mail("citynotes@substack.com")
            assert client.rcpt(ADDRESS)[0] == 250
            assert client.rcpt(OTHER)[0] == 250
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(newsletter(message_id="<both@substack.com>").as_bytes().replace(b"\n", b"\r\n") + b"\r\n.\r\n")
            replies = [client.getreply(), client.getreply()]
    assert [code for code, _ in replies] == [250, 250]
    assert stored_messages(project) == 2  # once for each source


def test_refusals_unknown_address_wrong_sender_too_large(project: Project) -> None:
    port = free_port()
    write_config(project, port, senders='senders = ["*@substack.com", "news@example.org"]')
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            client.mail("citynotes@substack.com")
            code, reply = client.rcpt("nobody@news.example.org")
            assert (code, reply[:5]) == (550, b"5.1.1")
            client.rset()
            client.mail("spam@example.com")
            code, reply = client.rcpt(ADDRESS)
            assert (code, reply[:5]) == (550, b"5.7.1")
            client.rset()
            client.mail("NEWS@example.org")  # senders match case-insensitively
            assert client.rcpt(ADDRESS)[0] == 250
            big = b"Subject: big\r\nMessage-ID: <big@example.org>\r\n\r\n" + (b"word " * 15 + b"\r\n") * 4000
            code, _ = client.data(big)  # ~300 kB, over max_bytes = 200000, sent without SIZE=
            assert code == 552
            client.rset()
            # with SIZE= the sender learns before sending the body
            code, _ = client.mail("citynotes@substack.com", ["SIZE=300000"])
            assert code == 552
    assert stored_messages(project) == 0
    status = invoke(project, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    letters = next(s for s in report["sources"] if s["name"] == "letters")
    assert letters["inbound"]["refused"] == {"sender not allowed": 1, "too large": 1}
    assert letters["inbound"]["accepted"] == 0
    assert report["inbound"]["unknown_recipient"] == 1
    text = invoke(project, "status").stdout
    assert "refused: 1 sender not allowed, 1 too large" in text


def test_the_same_message_id_twice_is_stored_once_and_counted(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            for _ in range(3):
                assert client.send_message(newsletter(message_id="<same@substack.com>")) == {}
    assert stored_messages(project) == 1
    report, text = digest_run(project)
    assert [s["new_articles"] for s in report["sources"] if s["name"] == "letters"] == [1]
    assert text.count("Weekly notes") == 1
    status = json.loads(invoke(project, "status", "--json").stdout)
    letters = next(s for s in status["sources"] if s["name"] == "letters")["inbound"]
    assert (letters["accepted"], letters["duplicates"]) == (3, 2)
    assert letters["last_received"] is not None


@contextmanager
def store_locked(project: Project) -> Iterator[None]:
    """Hold the store's write lock from another connection, as a long writer would."""
    db = sqlite3.connect(project.root / "state" / "digest.sqlite3", isolation_level=None, timeout=10)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


@pytest.mark.long
def test_a_store_that_cannot_take_the_message_gets_451_never_250(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    with running(project, "inbound"):
        with store_locked(project):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    client.send_message(newsletter(message_id="<later@substack.com>"))
        assert refused.value.smtp_code == 451
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:  # the sender's retry
            assert client.send_message(newsletter(message_id="<later@substack.com>")) == {}
    assert stored_messages(project) == 1
    letters = next(s for s in json.loads(invoke(project, "status", "--json").stdout)["sources"] if s["name"] == "letters")
    assert letters["inbound"]["deferred"] == 1


def _send_until_killed(port: int, message: EmailMessage, process: subprocess.Popen[str], when_pending: callable) -> None:  # type: ignore[valid-type]
    """Send `message`, and SIGKILL the listener once DATA is sent and its reply is pending."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo()
    client.mail("citynotes@substack.com")
    assert client.rcpt(ADDRESS)[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354
    client.send(message.as_bytes().replace(b"\n", b"\r\n") + b"\r\n.\r\n")
    when_pending()
    process.kill()
    process.wait()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.getreply()  # no reply: a real sender keeps the message and retries
    client.close()


@pytest.mark.parametrize("moment", ["before the commit", "after the commit"])
def test_killed_between_data_and_reply_then_resent_makes_one_article(project: Project, moment: str) -> None:
    """SIGKILL while the 250 is pending: before the commit (the store is busy) nothing was stored; after it (the
    documented test hook DIGEST_INBOUND_TEST_REPLY_DELAY holds the reply back) the message is stored. Either way
    the sender, having no reply, sends again, and exactly one article comes of it."""
    port = free_port()
    write_config(project, port)
    message = newsletter("Exactly once", "<once@substack.com>")
    env = {"DIGEST_INBOUND_TEST_REPLY_DELAY": "30"} if moment == "after the commit" else {}
    with running(project, "inbound", env=env) as process:
        if moment == "before the commit":
            with store_locked(project):
                _send_until_killed(port, message, process, lambda: time.sleep(1.0))
        else:

            def committed() -> None:
                deadline = time.monotonic() + 20
                while stored_messages(project) == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)

            _send_until_killed(port, message, process, committed)
    assert stored_messages(project) == (0 if moment == "before the commit" else 1)
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.send_message(message) == {}
    assert stored_messages(project) == 1
    _, text = digest_run(project)
    assert text.count("Exactly once") == 1
    assert articles(project) == [("letters", "Exactly once")]


def test_starttls_is_offered_with_a_certificate(project: Project, tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path / "tls")
    port = free_port()
    write_config(project, port, extra_inbound=f'tls_cert = "{certificate.cert_file}"\ntls_key = "{certificate.key_file}"')
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=ssl.create_default_context(cafile=str(certificate.ca_file)))
            assert client.send_message(newsletter(message_id="<tls@substack.com>")) == {}
    assert stored_messages(project) == 1


def test_newsletter_shapes_reach_the_digest_clean(project: Project) -> None:
    """Substack, Mailchimp, Buttondown and a plain-text list post, through the listener and a real run:
    every known article sentence stays in the stored text, no tracker or footer reaches the digest."""
    port = free_port()
    write_config(project, port)
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            for shape in SHAPES:
                fixture = shape(ADDRESS, f"{shape.__name__} issue")
                assert client.send_message(fixture.message) == {}
    report, text = digest_run(project)
    assert [s["new_articles"] for s in report["sources"] if s["name"] == "letters"] == [4]
    html = sorted((project.out / "daily").glob("2*.html"))[-1].read_text(encoding="utf-8")  # the edition, not the archive index
    for document in (text, html):
        lowered = document.lower()
        assert "<img" not in lowered
        assert not [host for host in TRACKER_HOSTS if host in lowered]
        assert not [phrase for phrase in BOILERPLATE if phrase in lowered]
        assert "utm_" not in lowered and "token=" not in lowered
    for shape in SHAPES:
        assert f"{shape.__name__} issue" in text
    assert 'href="https://citynotes.substack.com/p/housing-plan"' in html
    assert 'href="https://buttondown.com/citynotes/archive/city-approves-housing-plan/"' in html
    with sqlite3.connect(project.root / "state" / "digest.sqlite3") as db:
        bodies = [row[0] for row in db.execute("SELECT body FROM articles")]
    assert len(bodies) == 4
    assert [kept_share(body) for body in bodies] == [1.0] * 4
    for body in bodies:
        assert not [phrase for phrase in BOILERPLATE if phrase in body.lower()]


def test_check_warns_about_a_guessable_address_and_add_mailbox_makes_a_fresh_one(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    text = project.config.read_text(encoding="utf-8").replace(OTHER, "news@news.example.org")
    project.config.write_text(text, encoding="utf-8")
    result = invoke(project, "check")
    assert result.returncode == 0, result.stderr
    assert "warning: source tech: address news@news.example.org has no random part" in result.stderr
    assert "letters" not in result.stderr
    assert f"SMTP on 127.0.0.1:{port} and LMTP on" in result.stdout
    added = invoke(project, "sources", "add-mailbox", "science")
    assert added.returncode == 0, added.stderr
    address = added.stderr.strip()
    assert address.startswith("science.") and address.endswith("@news.example.org")
    assert f'address = "{address}"' in added.stdout
    again = invoke(project, "sources", "add-mailbox", "science").stderr.strip()
    assert again != address
    project.config.write_text(text + "\n" + added.stdout, encoding="utf-8")
    checked = invoke(project, "check")
    assert checked.returncode == 0, checked.stderr
    assert "source science" not in checked.stderr
    assert invoke(project, "sources", "add-mailbox", "letters").returncode == 2  # the name is taken


def test_the_removed_accept_key_and_a_shared_address_are_config_errors(project: Project) -> None:
    write_config(project, free_port(), extra_inbound='accept = ["a@b.c"]')
    result = invoke(project, "check")
    assert result.returncode == 2
    assert 'inbound.accept: removed: give each [[sources]] type = "mailbox" its own address' in result.stderr
    write_config(project, free_port())
    project.config.write_text(project.config.read_text(encoding="utf-8").replace(OTHER, ADDRESS.upper()), encoding="utf-8")
    result = invoke(project, "check")
    assert result.returncode == 2 and "is the address of source 'letters' too" in result.stderr


def test_an_address_in_use_is_one_line_and_exit_3(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    with running(project, "inbound"):
        result = project.cli("inbound", timeout=30)
    assert result.returncode == 3
    assert result.stderr.strip() == f"digest: cannot listen on 127.0.0.1:{port}: address already in use"


def _connect_refused(port: int) -> bool:
    try:
        smtplib.SMTP("127.0.0.1", port, timeout=2).close()
    except OSError:
        return True
    return False


@pytest.mark.long
def test_the_daemon_runs_the_listener_in_its_own_process_and_polls_what_it_took(project: Project) -> None:
    """`digest daemon` starts the listener as a child process beside its jobs, restarts it when it dies, makes an
    article of a received message at the mailbox source's next poll, and stops the listener when it stops."""
    port = free_port()
    write_config(project, port, interval="1s")
    with running(project, "--log-level", "info", "daemon") as daemon:
        children = subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 1  # the listener, a process of its own
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.send_message(newsletter("Through the daemon", "<daemon-1@substack.com>")) == {}
        deadline = time.monotonic() + 30
        while articles(project) != [("letters", "Through the daemon")] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert articles(project) == [("letters", "Through the daemon")]
        os.kill(int(children[0]), signal.SIGKILL)  # the listener dies: the daemon starts another
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=2) as client:
                    assert client.send_message(newsletter("After a restart", "<daemon-2@substack.com>")) == {}
                break
            except OSError:
                time.sleep(0.3)
        while len(articles(project)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [title for _, title in articles(project)] == ["Through the daemon", "After a restart"]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    assert _connect_refused(port)
    assert not (project.root / "run" / "lmtp.sock").exists()


def test_sighup_reloads_the_addresses_and_no_mailbox_source_is_a_config_error(project: Project) -> None:
    port = free_port()
    write_config(project, port)
    fresh = "science.q4z7k2m8x3vw@news.example.org"
    with running(project, "inbound") as listener:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            client.mail("citynotes@substack.com")
            assert client.rcpt(fresh)[0] == 550
        project.config.write_text(project.config.read_text(encoding="utf-8").replace(OTHER, fresh), encoding="utf-8")
        listener.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        code = 0
        while code != 250 and time.monotonic() < deadline:
            time.sleep(0.2)
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo()
                client.mail("citynotes@substack.com")
                code = client.rcpt(fresh)[0]
        assert code == 250
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            client.mail("citynotes@substack.com")
            assert client.rcpt(OTHER)[0] == 550  # the address taken out of the config
    project.write_config("""
        [[sources]]
        name = "seeds"
        path = "../seeds"

        [[digests]]
        name = "daily"
        output_dir = "../out"
    """)
    result = project.cli("inbound", timeout=30)
    assert result.returncode == 2
    assert 'no [[sources]] of type = "mailbox"' in result.stderr
