"""Unsubscribe by mail: the `mailto:` in a subscriber's List-Unsubscribe reaches the real `digest inbound`
listener, which refuses a forged token at RCPT and unsubscribes the reader before it answers 250."""

from __future__ import annotations

import smtplib
from pathlib import Path

from tests.conftest import Project
from tests.smtpserver import Received, free_port, smtp_server
from tests.test_inbound import running
from tests.test_unsubscribe_serve import DAY_ONE, DAY_TWO, add_story, statuses, write_project
from tests.inprocess import run_in_process

INBOUND_HOST = "mail.news.example.org"


def with_inbound(config: Path, port: int) -> None:
    """The project's config plus an [inbound] listener (no mailbox sources: it is there for unsubscribe mail)."""
    config.write_text(
        config.read_text(encoding="utf-8") + f'\n[inbound]\nlisten = "127.0.0.1:{port}"\nhostname = "{INBOUND_HOST}"\n',
        encoding="utf-8",
    )


def targets(received: Received) -> list[str]:
    return [t.strip(" <>") for t in str(received.message["List-Unsubscribe"]).split(",")]


def test_mail_to_the_list_unsubscribe_mailto_unsubscribes_at_the_listener_and_a_forged_token_gets_550(tmp_path: Path) -> None:
    inbound_port = free_port()
    root = tmp_path / "config"  # where Project(tmp_path) keeps its config
    root.mkdir()
    with smtp_server() as mail:
        config = write_project(root, mail.port)
        with_inbound(config, inbound_port)
        for address in ("ann@example.com", "bob@example.net"):
            assert run(config, "subscribers", "add", address, "--at", "07:00", now="2026-11-26T12:00:00+00:00") == 0
        add_story(root, 1)
        assert run(config, "run", now=DAY_ONE) == 0
        ann = next(r for r in mail.accepted if r.rcpt_tos == ("ann@example.com",))
        bob = next(r for r in mail.accepted if r.rcpt_tos == ("bob@example.net",))
        https, mailto = targets(ann)
        assert https.startswith("https://news.example.org/daily/unsubscribe/")
        assert mailto.startswith("mailto:unsubscribe+") and mailto.endswith("@" + INBOUND_HOST)
        assert "leave@example.org" not in str(ann.message["List-Unsubscribe"])  # the listener's address replaces it
        assert targets(bob)[1] != mailto  # each reader their own token
        address = mailto.removeprefix("mailto:")
        local, _, domain = address.partition("@")

        with running(Project(tmp_path), "inbound", ready="inbound listening") as listener:
            with smtplib.SMTP("127.0.0.1", inbound_port, timeout=10) as client:
                client.ehlo()
                client.mail("ann@example.com")
                forged = local[:-2] + ("aa" if not local.endswith("aa") else "bb")
                assert client.rcpt(f"{forged}@{domain}")[0] == 550
                assert client.rcpt(f"unsubscribe+{local.split('+')[1].split('.')[0]}.x@{domain}")[0] == 550
                other_id = targets(bob)[1].removeprefix("mailto:unsubscribe+").split(".")[0]
                assert client.rcpt(f"unsubscribe+{other_id}.{local.split('.', 1)[1]}@{domain}")[0] == 550  # ann's mac, bob's id
                client.rset()
            assert statuses(config) == {"ann@example.com": "active", "bob@example.net": "active"}

            with smtplib.SMTP("127.0.0.1", inbound_port, timeout=10) as client:
                refused = client.sendmail("ann@example.com", [address], b"Subject: unsubscribe\r\n\r\nplease\r\n")
                assert refused == {}
            # the 250 came only after the change was committed: the store says so at once
            assert statuses(config) == {"ann@example.com": "unsubscribed", "bob@example.net": "active"}
            assert listener.poll() is None

        add_story(root, 2)
        before = len(mail.accepted)
        assert run(config, "run", now=DAY_TWO) == 0
        later = mail.accepted[before:]
    assert [r.rcpt_tos[0] for r in later] == ["bob@example.net"]
    assert "Story 2:" in later[0].message.get_body(("plain",)).get_content()


def test_without_an_inbound_section_the_digests_own_mailto_stays(tmp_path: Path) -> None:
    with smtp_server() as mail:
        config = write_project(tmp_path, mail.port)
        assert run(config, "subscribers", "add", "ann@example.com", "--at", "07:00", now="2026-11-26T12:00:00+00:00") == 0
        add_story(tmp_path, 1)
        assert run(config, "run", now=DAY_ONE) == 0
    assert targets(mail.accepted[0])[1] == "mailto:leave@example.org"


def run(config: Path, *args: str, now: str) -> int:

    result = run_in_process("--config", str(config), *args, cwd=config.parent, now=now)
    assert result.returncode == 0, result.stderr
    return result.returncode
