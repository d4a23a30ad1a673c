"""A newsletter email read into one article's parts: title, date, web link and clean text.

The body comes from the HTML part (else the text part), made inert by
digest.sanitise (nh3) and then read block by block here: hidden blocks
(preheaders, `display:none`), tracking pixels (1x1 or hidden images, known
tracker hosts), and the blocks of the footer and header (unsubscribe, manage
preferences, view in browser, "forwarded this email?", share and social links)
are dropped. The "view in browser" link becomes the article's link, without
tracking parameters. Bad input (malformed MIME, unknown charsets, 8-bit
headers, no body) gives an empty body and a note, never an exception.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from urllib.parse import urlsplit

from digest.extract import clean_line, normalise_body
from digest.sanitise import BLOCK_TAGS, clean_title, email_html, newsletter_link

# Anchor texts of a mail's web version.
_WEB_VERSION = re.compile(
    r"\b(view|read|open|see)\b[^.]{0,25}\b(in|on)\b[^.]{0,12}\b(browser|web|website|online)\b|\bweb version\b|\bview (it |this )?online\b"
    r"|\bread online\b",
    re.IGNORECASE,
)
# Phrases of footers and headers: a block under FOOTER_WORDS words naming one is not article text;
# the weaker ones only in a block under WEAK_FOOTER_WORDS words.
_FOOTER = re.compile(
    r"unsubscribe|manage (your )?(email )?(preferences|subscriptions?|settings)|update (your )?(email )?preferences"
    r"|email preferences|subscription preferences|opt[ -]out of|\bweb version\b"
    r"|view (this )?(email|newsletter|post|issue)? ?(in|on) (your |the )?(browser|web)|view (it |this )?online"
    r"|forwarded (this|to you)|was (this|it) forwarded|you('| a)re receiving|you received this|you are subscribed"
    r"|why (did|am) I (get|getting|receiving) this|add us to your address book|our mailing address is|\bno longer want\b",
    re.IGNORECASE,
)
_WEAK_FOOTER = re.compile(
    r"all rights reserved|copyright ©|©\s*\d{4}|\(c\) \d{4}|powered by|follow us|share (this|on)|read in app|get the app"
    r"|upgrade to paid|start writing|mailing list|list info|privacy policy|sign up (here|for|to get)|subscribe (now|here|for free|to)",
    re.IGNORECASE,
)
_BUTTONS = re.compile(r"^(share|like|comment|restack|reply|tweet|forward|read in app|subscribe|donate|\W|\d)+$", re.IGNORECASE)
_SOCIAL_HOSTS = (
    "twitter.com",
    "x.com",
    "facebook.com",
    "fb.com",
    "linkedin.com",
    "instagram.com",
    "youtube.com",
    "tiktok.com",
    "mastodon.social",
    "threads.net",
    "bsky.app",
    "t.me",
    "reddit.com",
    "pinterest.com",
    "whatsapp.com",
    "wa.me",
)
_TRACKER_HOSTS = (
    "list-manage.com",
    "mcusercontent.com/track",
    "mandrillapp.com",
    "sendgrid.net",
    "mailgun.org",
    "mailgun.net",
    "convertkit-mail.com",
    "convertkit-mail2.com",
    "substackcdn.com/open",
    "eotrx.substackcdn.com",
    "substack.com/o/",
    "buttondown.email/emails",
    "mailtrack.io",
    "pstmrk.it",
    "exct.net",
    "exacttarget.com",
    "cmail19.com",
    "cmail20.com",
    "createsend",
    "hubspotlinks.com",
    "hubspotemail.net",
    "google-analytics.com",
    "doubleclick.net",
    "pixel.wp.com",
    "beehiiv.com/ss/o",
    "mail.beehiiv.com",
    "emltrk.com",
    "sparkpostmail.com",
    "klaviyo.com/open",
    "mlsend.com",
)
_TRACKER_PATHS = re.compile(
    r"(/open(\.php|\.gif)?(\b|/|\?)|/track/open|/wf/open|/o/[A-Za-z0-9_-]{12,}|pixel|beacon|/e/o/)", re.IGNORECASE
)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all|opacity\s*:\s*0(\.0+)?\s*(;|$)|max-height\s*:\s*0(px)?\s*(;|$)"
    r"|font-size\s*:\s*[01](px)?\s*(;|$)|line-height\s*:\s*0(px)?\s*(;|$)|(^|;)\s*(width|height)\s*:\s*0(px)?\s*(;|$)",
    re.IGNORECASE,
)
_HIDDEN_CLASS = re.compile(r"preheader|preview-?text|mcnPreviewText", re.IGNORECASE)
# A newsletter lays out its text in tables and landmark elements too.
_BLOCK_TAGS = BLOCK_TAGS | {"td", "th", "main", "aside", "nav", "center"}
_VOID = {"br", "hr", "img"}
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"')\]]+")
_SIGNATURE = re.compile(r"^-- $", re.MULTILINE)
_LIST_FOOTER = re.compile(r"^_{20,}\s*$", re.MULTILINE)
FOOTER_WORDS = 60  # a block this long or longer is article text even when it names a footer phrase
WEAK_FOOTER_WORDS = 25
FOOTER_FROM = 0.6  # a footer block past this share of the article's words starts the footer: all after it goes


@dataclass(frozen=True)
class Newsletter:
    """What one email gives a mailbox source: empty `body` (with notes) when it has no usable text."""

    key: str  # the Message-ID, else a hash of the message
    title: str
    body: str
    published: datetime | None
    link: str | None
    author: str | None
    language: str | None
    notes: tuple[str, ...] = ()
    removed: dict[str, int] = field(default_factory=dict)  # what cleaning dropped: tracking images, hidden and footer blocks


def message_key(raw: bytes) -> str:
    """The Message-ID of a raw message (as the sender wrote it, trimmed), else a hash of the whole message.

    Read from the raw headers so that even a message the email package chokes on has one.
    """
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = re.search(rb"^message-id:[ \t]*((?:.|\r?\n[ \t])*)", head, re.IGNORECASE | re.MULTILINE)
    if match:
        value = b" ".join(match.group(1).split()).decode("utf-8", "replace").strip()
        if value:
            return value[:500]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse(raw: bytes) -> Newsletter:
    """Read one raw email; never raises on bad input (the notes say what was wrong)."""
    notes: list[str] = []
    key = message_key(raw)
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as error:  # the email package raises many types on broken input
        return Newsletter(key, "", "", None, None, None, None, (f"unreadable message: {type(error).__name__}",))
    if message.defects:
        notes.append("malformed MIME: " + ", ".join(sorted({type(d).__name__ for d in message.defects})))
    title = clean_title(_header(message, "Subject"))
    author = clean_line(_sender_name(_header(message, "From"))) or None
    published = _date(_header(message, "Date"))
    html, text = _bodies(message, notes)
    removed: dict[str, int] = {}
    link = None
    body = ""
    if html:
        body, link = _from_html(html, title, removed)
    if not body and text:
        body, text_link = _from_text(text, removed)
        link = link or text_link
    if not body:
        notes.append("no text in the message" if not (html or text) else "no article text left once the footer was removed")
    language = _language(message)
    return Newsletter(key, title, body, published, link, author, language, tuple(notes), removed)


def _header(message: Message, name: str) -> str:
    """A header's decoded value; the raw text where the email package cannot decode it."""
    try:
        value = message.get(name)
        return str(value) if value is not None else ""
    except Exception:
        for header, raw in message.raw_items():
            if header.lower() == name.lower():
                return str(raw)
        return ""


def _sender_name(value: str) -> str:
    name, address = email.utils.parseaddr(value)
    return name or address


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _language(message: Message) -> str | None:
    value = _header(message, "Content-Language").split(",")[0].strip()
    return value[:2].lower() if re.match(r"^[A-Za-z]{2}\b", value) else None


def _bodies(message: EmailMessage, notes: list[str]) -> tuple[str, str]:
    """The HTML and the plain text of the message's body (each "" when absent)."""
    html = text = ""
    for part in _text_parts(message, notes):
        kind = part.get_content_subtype()
        if kind == "html" and not html:
            html = _content(part, notes)
        elif kind == "plain" and not text:
            text = _content(part, notes)
    if not (html or text) and message.get_content_maintype() == "multipart" and isinstance(message.get_payload(), str):
        text = str(message.get_payload())  # a multipart without its boundary: read what is there as text
    return html, text


def _text_parts(message: EmailMessage, notes: list[str]) -> list[Message]:
    """text/html and text/plain parts that are not attachments, body first."""
    try:
        parts = [part for part in message.walk() if part.get_content_maintype() == "text"]
    except Exception as error:
        notes.append(f"unreadable MIME structure: {type(error).__name__}")
        return []
    chosen: list[Message] = []
    for part in parts:
        try:
            attachment = part.get_content_disposition() == "attachment"
        except Exception:
            attachment = False
        if part.get_content_subtype() in ("html", "plain") and not attachment:
            chosen.append(part)
    if not chosen and any(not part.is_multipart() for part in message.walk()) and message.is_multipart():
        notes.append("attachments only")
    return chosen


def _content(part: Message, notes: list[str]) -> str:
    """A text part decoded by its charset; UTF-8 (bad bytes replaced) where the charset is unknown."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError, KeyError, AttributeError) as error:
        if isinstance(error, LookupError):
            notes.append(f"unknown charset {part.get_content_charset()!r}, read as UTF-8")
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


@dataclass
class _Block:
    text: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, anchor text)

    def words(self) -> str:
        return " ".join("".join(self.text).split())


class _Reader(HTMLParser):
    """Splits well-formed (nh3-made) HTML into blocks of visible text with their links."""

    def __init__(self, removed: dict[str, int]) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = [_Block()]
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden)
        self.anchor: tuple[str, list[str]] | None = None
        self.removed = removed

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def _break(self) -> None:
        if self.blocks[-1].text or self.blocks[-1].links:
            self.blocks.append(_Block())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        hidden = self._hidden() or _is_hidden(attributes)
        if tag == "img":
            if _is_tracking_image(attributes) or hidden:
                self.removed["tracking images"] = self.removed.get("tracking images", 0) + 1
            return
        if tag in _BLOCK_TAGS and not (tag == "td" and self.anchor):
            self._break()
        if tag in _VOID:
            return
        if hidden and not self._hidden():
            self.removed["hidden blocks"] = self.removed.get("hidden blocks", 0) + 1
        self.stack.append((tag, hidden))
        if tag == "a" and not hidden:
            self.anchor = (attributes.get("href", ""), [])

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break
        if tag == "a" and self.anchor is not None:
            href, words = self.anchor
            self.blocks[-1].links.append((href, " ".join("".join(words).split())))
            self.anchor = None
        if tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self._hidden():
            return
        self.blocks[-1].text.append(data)
        if self.anchor is not None:
            self.anchor[1].append(data)


def _is_hidden(attributes: dict[str, str]) -> bool:
    return (
        "hidden" in attributes
        or bool(_HIDDEN_STYLE.search(attributes.get("style", "")))
        or bool(_HIDDEN_CLASS.search(attributes.get("class", "") + " " + attributes.get("id", "")))
    )


def _pixels(value: str) -> int | None:
    match = re.match(r"^\s*(\d+)(px)?\s*$", value)
    return int(match.group(1)) if match else None


def _is_tracking_image(attributes: dict[str, str]) -> bool:
    """A 1x1 (or 0x0) image, one styled that small, or one from a known tracker host or open-tracking path."""
    sizes = [_pixels(attributes.get("width", "")), _pixels(attributes.get("height", ""))]
    style = attributes.get("style", "")
    for name in ("width", "height"):
        found = re.search(rf"(^|;)\s*{name}\s*:\s*(\d+)px", style, re.IGNORECASE)
        if found:
            sizes.append(int(found.group(2)))
    if any(size is not None and size <= 2 for size in sizes):
        return True
    source = attributes.get("src", "").lower()
    address = source.split("://", 1)[-1]
    return any(host in address for host in _TRACKER_HOSTS) or bool(_TRACKER_PATHS.search(urlsplit(source).path or ""))


def _is_social(href: str) -> bool:
    host = urlsplit(href).netloc.lower().removeprefix("www.")
    return any(host == social or host.endswith("." + social) for social in _SOCIAL_HOSTS)


def _from_html(document: str, title: str, removed: dict[str, int]) -> tuple[str, str | None]:
    """The article text of a newsletter's HTML, and its web version link (else the link on its title)."""
    reader = _Reader(removed)
    reader.feed(email_html(document))
    reader.close()
    link = title_link = None
    blocks = []
    for block in reader.blocks:
        words = block.words()
        for href, anchor in block.links:
            if link is None and _WEB_VERSION.search(anchor):
                link = newsletter_link(href)
            elif title_link is None and title and anchor and clean_line(anchor).casefold() == title.casefold():
                title_link = newsletter_link(href)
        if words:
            blocks.append((words, _is_boilerplate(words, block.links)))
    article_words = sum(len(words.split()) for words, boilerplate in blocks if not boilerplate)
    kept: list[str] = []
    seen_words = 0
    for index, (words, boilerplate) in enumerate(blocks):
        if boilerplate:
            removed["footer blocks"] = removed.get("footer blocks", 0) + 1
            if seen_words > article_words * FOOTER_FROM and (_FOOTER.search(words) or _WEAK_FOOTER.search(words)):
                removed["footer blocks"] += len(blocks) - index - 1  # the footer: addresses, legal lines, the rest
                break
            continue
        seen_words += len(words.split())
        if kept and kept[-1] == words:
            continue
        kept.append(words)
    if kept and title and kept[0].casefold() == title.casefold():
        kept = kept[1:]  # the headline again, at the top of the mail
    return normalise_body("\n\n".join(kept)), link or title_link


def _is_boilerplate(words: str, links: list[tuple[str, str]]) -> bool:
    """A footer or header block: a short one naming unsubscribing and the like, share buttons, social links."""
    count = len(words.split())
    if count < FOOTER_WORDS and _FOOTER.search(words):
        return True
    if count < WEAK_FOOTER_WORDS and _WEAK_FOOTER.search(words):
        return True
    if _BUTTONS.match(words):
        return True
    if links:
        linked = " ".join(anchor for _, anchor in links)
        if all(_is_social(href) for href, _ in links) and len(linked.split()) >= count - 3:
            return True
    return False


def _from_text(text: str, removed: dict[str, int]) -> tuple[str, str | None]:
    """The article text of a plain-text newsletter (signature and list footer cut) and its web link."""
    for marker in (_SIGNATURE, _LIST_FOOTER):
        found = marker.search(text)
        if found and found.start() > len(text) // 3:
            text = text[: found.start()]
            removed["footer blocks"] = removed.get("footer blocks", 0) + 1
    link = None
    kept = []
    for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        words = " ".join(paragraph.split())
        if not words:
            continue
        if link is None and _WEB_VERSION.search(words) and (found_url := _URL_IN_TEXT.search(words)):
            link = newsletter_link(found_url.group(0))
        if _is_boilerplate(words, []):
            removed["footer blocks"] = removed.get("footer blocks", 0) + 1
            continue
        kept.append(_URL_IN_TEXT.sub(lambda m: newsletter_link(m.group(0)) or m.group(0), paragraph))
    return normalise_body("\n\n".join(kept)), link
