"""The digest email as a message: structure, headers, and no header injection."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timezone

import pytest

from digest.mail import MailParts, build_message, header_text, list_id, new_message_id

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
SENDER = "Digest <digest@example.org>"
EXPECTED_HEADERS = {"from", "to", "subject", "date", "message-id", "list-id", "auto-submitted", "mime-version", "content-type"}


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def make(subject: str = "daily: 2026-11-27", digest_name: str = "daily", unsubscribe: str = "") -> bytes:
    parts = MailParts(subject, "Zürich café opens\n", '<p style="color: #222">Zürich café opens</p>')
    message = build_message(
        parts,
        sender=SENDER,
        recipient="ann@example.com",
        message_id="<fixed.1@example.org>",
        date=NOW,
        digest_name=digest_name,
        unsubscribe=unsubscribe,
    )
    return message.as_bytes(policy=email.policy.SMTP)


def test_message_is_multipart_alternative_text_then_html_in_utf8() -> None:
    message = parse(make())
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_payload()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert "Zürich café" in text.get_content() and "Zürich café" in html.get_content()


def test_headers_name_sender_one_recipient_and_the_list() -> None:
    message = parse(make(unsubscribe="mailto:leave@example.org?subject=unsubscribe"))
    assert str(message["From"]) == SENDER
    assert str(message["To"]) == "ann@example.com"
    assert message["Message-ID"] == "<fixed.1@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == "daily <daily.digest.example.org>"
    assert message["List-Unsubscribe"] == "<mailto:leave@example.org?subject=unsubscribe>"
    assert email.utils.parsedate_to_datetime(message["Date"]) == NOW


def test_no_list_unsubscribe_without_an_address_and_https_is_taken() -> None:
    assert parse(make())["List-Unsubscribe"] is None
    assert (
        parse(make(unsubscribe="https://example.org/leave?list=daily"))["List-Unsubscribe"]
        == "<https://example.org/leave?list=daily>"
    )
    with pytest.raises(ValueError, match="mailto: address or an https:// URL"):
        make(unsubscribe="javascript:alert(1)")


@pytest.mark.parametrize(
    "hostile",
    [
        "Big news\r\nBcc: victim@example.net",
        "Big news\nBcc: victim@example.net",
        "Big news\rBcc: victim@example.net",
        "Big news=0D=0ABcc: victim@example.net",
        "Big news%0d%0aBcc: victim@example.net",
        "Big news =?utf-8?q?x=0D=0ABcc:_victim@example.net?=",
        "Big news\u2028Bcc: victim@example.net",
        "Big news\x00\x1b[31m\x85Bcc: victim@example.net",
    ],
)
def test_a_hostile_title_or_source_name_cannot_add_a_header(hostile: str) -> None:
    data = make(subject=f"daily: {hostile}", digest_name=hostile)
    message = parse(data)
    assert {name.lower() for name in message.keys()} == EXPECTED_HEADERS
    assert b"\nBcc:" not in data and b"\rBcc:" not in data
    assert "Big news" in message["Subject"] and "victim@example.net" in message["Subject"]
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]


def test_header_text_keeps_ordinary_titles_and_caps_length() -> None:
    assert header_text("  Markets rally as “Fed” holds   rates ") == "Markets rally as “Fed” holds rates"
    assert len(header_text("word " * 200)) == 200


def test_message_ids_are_unique_and_in_the_senders_domain() -> None:
    first, second = new_message_id(SENDER), new_message_id(SENDER)
    assert first != second
    assert first.startswith("<") and first.endswith("@example.org>")


def test_list_id_label_is_safe_for_any_digest_name() -> None:
    assert list_id("Morning Brief (EU)", SENDER) == "Morning Brief (EU) <morning-brief-eu.digest.example.org>"


def test_email_html_inlines_css_drops_style_and_link_tags_fetches_nothing_and_caps_images() -> None:
    from digest.render import email_html

    page = """<html><head><style>p.lead { color: #b00; } @media (max-width: 400px) { p { margin: 0 } }</style>
    <link rel="stylesheet" href="http://192.0.2.1/remote.css"></head>
    <body><p class="lead">Hello</p><img src="https://example.org/chart.png" alt="chart"></body></html>"""
    inlined = email_html(page)
    assert "<style" not in inlined and "<link" not in inlined
    assert re.search(r'<p class="lead" style="color: #b00;?">Hello</p>', inlined)
    assert re.search(r'<img [^>]*style="[^"]*max-width: 100%;[^"]*height: auto', inlined)
