"""`digest mailsink`: a catch-all SMTP server that keeps every message in a Maildir."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.errors import ListenError
from digest.mailsink import MailSink, is_loopback, parse_listen
from tests.conftest import REPO, run_cli
from tests.smtpserver import free_port


def note(subject: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "digest@example.org"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("hello\n")
    return message


def test_every_message_to_any_address_lands_in_the_maildir_with_one_line_each(tmp_path: Path) -> None:
    lines: list[str] = []
    port = free_port()
    sink = MailSink(f"127.0.0.1:{port}", tmp_path / "mail", lines.append)
    sink.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(note("first – ünïcode", "ann@example.com"))
            client.send_message(note("second", "bob@elsewhere.test"), to_addrs=["bob@elsewhere.test", "cy@x.test"])
    finally:
        sink.stop()
    box = mailbox.Maildir(str(tmp_path / "mail"), create=False)
    parsed = [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.keys()]
    stored = sorted((m["Subject"], m.get_all("Delivered-To")) for m in parsed)
    assert stored == [("first – ünïcode", ["ann@example.com"]), ("second", ["bob@elsewhere.test", "cy@x.test"])]
    received = [line for line in lines if " from <digest@example.org> " in line]
    assert len(received) == 2
    assert "to ann@example.com" in received[0] and "first" in received[0]
    assert lines[0].startswith(f"mailsink listening on 127.0.0.1:{port}")


def test_an_address_in_use_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    first = MailSink(f"127.0.0.1:{port}", tmp_path / "a", lambda line: None)
    first.start()
    try:
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            MailSink(f"127.0.0.1:{port}", tmp_path / "b", lambda line: None).start()
    finally:
        first.stop()


def test_listen_addresses_parse_and_loopback_is_recognised() -> None:
    assert parse_listen("127.0.0.1:1025") == ("127.0.0.1", 1025)
    assert parse_listen("[::1]:2525") == ("::1", 2525)
    for bad in ("1025", "host:", "host:99999", "host:x"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_cli_mailsink_prints_a_line_per_message_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "digest", "mailsink", "--listen", f"127.0.0.1:{port}", "--maildir", "inbox"]
    sink = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        assert sink.stdout.readline().startswith(f"mailsink listening on 127.0.0.1:{port}")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(note("hello sink", "anyone@anywhere.test"))
        line = sink.stdout.readline()
        sink.send_signal(signal.SIGTERM)
        out, err = sink.communicate(timeout=20)
    finally:
        sink.kill()
    assert "from <digest@example.org> to anyone@anywhere.test: 'hello sink'" in line
    assert sink.returncode == 0, err
    assert "mailsink stopped" in out
    assert len(list((tmp_path / "inbox" / "new").iterdir())) == 1


def test_cli_mailsink_refuses_a_bad_listen_address_in_one_line(tmp_path: Path) -> None:
    result = run_cli("mailsink", "--listen", "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr and "Traceback" not in result.stderr
