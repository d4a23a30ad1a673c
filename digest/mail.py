"""Build one digest email for one recipient (stdlib `email`).

Every header value passes through `header_text`, so nothing taken from an
article, a source or a template can add a header: control characters, CR/LF,
encoded newlines (%0d%0a, =0D=0A) and RFC 2047 encoded words are neutralised,
and the finished message is checked once more before it is returned.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.policy import SMTP
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

# C0 and C1 control characters plus the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Newlines written as percent-encoding or quoted-printable.
_ENCODED_NEWLINE = re.compile(r"%0[ad]|=0[ad]", re.IGNORECASE)
_LABEL = re.compile(r"[^a-z0-9-]+")
SUBJECT_LIMIT = 200


@dataclass(frozen=True)
class MailParts:
    """A rendered digest: subject line, plain text and HTML with inlined CSS."""

    subject: str
    text: str
    html: str


def header_text(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """One safe header line: no control characters, no newlines in any encoding, no encoded words."""
    text = _ENCODED_NEWLINE.sub(" ", value)
    text = _CONTROL.sub(" ", text)
    # email.headerregistry decodes "=?utf-8?q?...?=" on assignment, newlines included.
    text = text.replace("=?", "= ?")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def domain_of(address: str) -> str:
    """The domain of an address such as "Digest <digest@example.org>"; "localhost" when it has none."""
    _, bare = parseaddr(address)
    domain = bare.rpartition("@")[2]
    return domain if bare and domain else "localhost"


def new_message_id(sender: str) -> str:
    """A fresh Message-ID in the sender's domain; made once per delivery and kept on every retry."""
    return make_msgid(idstring="digest", domain=domain_of(sender))


def list_id(digest_name: str, sender: str) -> str:
    """The List-Id header value for a digest, e.g. "daily <daily.digest.example.org>"."""
    label = _LABEL.sub("-", digest_name.lower()).strip("-") or "digest"
    return f"{header_text(digest_name, 80)} <{label}.digest.{domain_of(sender)}>"


def unsubscribe_header(unsubscribe: str | Sequence[str]) -> str:
    """The List-Unsubscribe value for mailto: addresses and https: URLs (RFC 2369); "" for none."""
    targets = [unsubscribe] if isinstance(unsubscribe, str) else list(unsubscribe)
    cleaned = []
    for written in targets:
        target = header_text(written, 500).replace(" ", "")
        if not target:
            continue
        if not target.lower().startswith(("mailto:", "https://")) or any(c in target for c in "<>,"):
            raise ValueError(f"unsubscribe must be a mailto: address or an https:// URL, got {written!r}")
        cleaned.append(f"<{target}>")
    return ", ".join(cleaned)


def with_unsubscribe_link(parts: MailParts, url: str) -> MailParts:
    """The message with a visible unsubscribe link at the end of both its text and its HTML."""
    link = html.escape(url, quote=True)
    footer = (
        '<p style="margin:24px 0 0;font-size:13px;color:#555">You get this because you subscribed. '
        f'<a href="{link}" style="color:#555">Unsubscribe</a></p>'
    )
    body_end = parts.html.lower().rfind("</body>")
    page = parts.html[:body_end] + footer + parts.html[body_end:] if body_end >= 0 else parts.html + footer
    return replace(parts, text=f"{parts.text.rstrip()}\n\n--\nUnsubscribe: {url}\n", html=page)


def build_message(
    parts: MailParts,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    date: datetime,
    digest_name: str,
    unsubscribe: str | Sequence[str] = "",
    one_click: bool = False,
) -> EmailMessage:
    """One multipart/alternative message (text, then HTML) to one recipient, all UTF-8.

    `one_click` (for an https unsubscribe URL that honours it) adds `List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`: a POST to the URL unsubscribes at once (RFC 8058).
    """
    message = EmailMessage()
    message["From"] = _address(sender)
    message["To"] = _address(recipient)
    message["Subject"] = header_text(parts.subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["List-Id"] = list_id(digest_name, sender)
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_value := unsubscribe_header(unsubscribe):
        message["List-Unsubscribe"] = unsubscribe_value
        if one_click and "<https://" in unsubscribe_value.lower():
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(parts.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(parts.html, subtype="html", charset="utf-8", cte="quoted-printable")
    _check_headers(message)
    return message


# Room kept for what differs between recipients or is added after measuring: the longest
# address (254 characters) and a DKIM-Signature header (about 600 bytes for a 2048-bit key).
HEADROOM = 1024


def encoded_size(parts: MailParts, sender: str, digest_name: str, unsubscribe: str = "") -> int:
    """Bytes of the message as it goes over SMTP (quoted-printable, CRLF), plus HEADROOM."""
    message = build_message(
        parts,
        sender=sender,
        recipient="reader@example.org",
        message_id=new_message_id(sender),
        date=datetime(2000, 1, 1, tzinfo=timezone.utc),
        digest_name=digest_name,
        unsubscribe=unsubscribe,
    )
    return len(message.as_bytes(policy=SMTP)) + HEADROOM


def _address(value: str) -> Address:
    """A parsed address with a cleaned display name; ValueError when it is not one."""
    name, bare = parseaddr(header_text(value, 500))
    username, at, domain = bare.rpartition("@")
    if not at or not username or not domain:
        raise ValueError(f"not an email address: {value!r}")
    return Address(display_name=name, username=username, domain=domain)


def _check_headers(message: EmailMessage) -> None:
    """Refuse a message whose parsed headers hold a line break (defence in depth)."""
    for name, value in message.items():
        if "\r" in str(value) or "\n" in str(value):
            raise ValueError(f"header {name} would contain a line break")
