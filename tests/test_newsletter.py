"""Newsletter emails read into articles (digest.newsletter), and bad mail through the real listener:
CPython's 48 test messages and broken MIME give zero or one article and a note, never a crash or a 5xx."""

from __future__ import annotations

import json
import smtplib
import sqlite3

import pytest

from digest.newsletter import message_key, parse
from tests.conftest import Project, shared_path
from tests.newsletters import ARTICLE, BOILERPLATE, SHAPES, kept_share
from tests.smtpserver import free_port
from tests.test_inbound import ADDRESS, running, write_config
from tests.inprocess import invoke


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_each_shape_keeps_the_article_and_drops_the_rest(shape) -> None:  # type: ignore[no-untyped-def]
    fixture = shape("reader@example.org")
    letter = parse(fixture.message.as_bytes())
    assert kept_share(letter.body) == 1.0
    assert not [phrase for phrase in BOILERPLATE if phrase in letter.body.lower()]
    assert letter.link == fixture.web_link
    assert letter.title.endswith("City approves housing plan")
    assert letter.published is not None and letter.published.isoformat() == "2026-11-26T08:30:00+00:00"
    if fixture.shape != "plain list":
        assert letter.removed["tracking images"] == 1 and letter.removed["hidden blocks"] >= 1


def test_subject_is_decoded_to_one_line_and_the_date_read() -> None:
    raw = (
        b"From: =?utf-8?q?Caf=C3=A9?= <a@b.example>\r\nSubject: =?utf-8?q?Caf=C3=A9_news:?=\r\n\tpart two\r\n"
        b"Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <x1@b.example>\r\n\r\n" + " ".join(ARTICLE).encode()
    )
    letter = parse(raw)
    assert letter.title == "Café news: part two"
    assert letter.author == "Café"
    assert letter.published is not None and letter.published.isoformat() == "2026-11-24T10:00:00+01:00"
    assert letter.key == "<x1@b.example>"


BAD = {
    "unknown charset": b"Subject: odd\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nSome words here that stay.\r\n",
    "8-bit headers": b"Subject: caf\xe9 \xff news\r\nFrom: J\xf6rg <j@x.example>\r\n\r\nBody text in the message.\r\n",
    "no body": b"Subject: empty\r\nMessage-ID: <e@x>\r\n\r\n",
    "attachments only": (
        b"Subject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n"
    ),
    "malformed MIME": b"Subject: broken\r\nContent-Type: multipart/alternative\r\n\r\nNo boundary at all, yet text.\r\n",
    "bad base64": b"Subject: b64\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all===\r\n",
    "nothing": b"",
    "garbage": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_gives_at_most_a_body_and_notes_never_an_exception(name: str) -> None:
    letter = parse(BAD[name])
    assert isinstance(letter.body, str) and isinstance(letter.title, str)
    assert letter.key
    assert "\n" not in letter.title
    if name in ("no body", "attachments only", "nothing"):
        assert letter.body == "" and letter.notes
    if name == "unknown charset":
        assert "Some words here that stay." in letter.body and "unknown charset" in letter.notes[0]
    if name == "malformed MIME":
        assert "yet text" in letter.body and letter.notes


def test_message_key_is_the_message_id_else_a_hash() -> None:
    assert message_key(b"Message-ID:\r\n  <folded@x.example>\r\nSubject: a\r\n\r\nbody") == "<folded@x.example>"
    assert message_key(b"Subject: a\r\n\r\nbody").startswith("sha256:")
    assert message_key(b"Subject: a\r\n\r\nbody") != message_key(b"Subject: b\r\n\r\nbody")


def test_the_cpython_email_corpus_through_the_listener(project: Project) -> None:
    """Every one of the 48 messages is a well-formed SMTP exchange: each gets 250 (never a 5xx); the run then
    makes at most one article of each, with a note for those that have no text, and exits 0."""
    folder = shared_path("corpora", "cpython-email")
    files = sorted(folder.glob("msg_*.txt"))
    assert len(files) == 48
    port = free_port()
    write_config(project, port)
    replies = {}
    with running(project, "inbound"):
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            client.ehlo()
            for path in files:
                raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as an MTA sends it: CRLF
                client.mail("corpus@example.org")
                assert client.rcpt(ADDRESS)[0] == 250
                replies[path.name] = client.data(raw)[0]
    assert set(replies.values()) == {250}, replies
    keys = {message_key(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) for path in files}
    result = invoke(project, "run", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    letters = next(s for s in report["sources"] if s["name"] == "letters")
    assert letters["error"] == ""
    with sqlite3.connect(project.root / "state" / "digest.sqlite3") as db:
        stored = db.execute("SELECT COUNT(*) FROM inbound_messages").fetchone()[0]
        made = db.execute("SELECT identity, COUNT(*) FROM articles GROUP BY identity").fetchall()
    assert stored == len(keys)
    assert all(count == 1 for _, count in made)
    assert 25 <= len(made) <= stored  # most have text; none gives two articles
    assert any("no text in the message" in note for note in letters["notes"])
    assert "Traceback" not in result.stderr and "internal error" not in result.stdout
