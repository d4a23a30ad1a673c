"""One-click unsubscribe (RFC 8058) and double opt-in confirmation for subscribers.

Links carry a token: the subscriber's id and an HMAC-SHA256 over the purpose
("unsubscribe" or "confirm"), the digest, the id and the address, keyed by
$DIGEST_LINK_SECRET or else a random secret kept in the store. A token is
unguessable, works for one subscriber of one digest only, and stops working if
that row is removed. A GET only ever shows a page with one button, because mail
scanners follow links; a POST changes state: `List-Unsubscribe=One-Click` (as
mail clients send it, and as the page's button does) unsubscribes at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from digest.config import Config, DigestConfig
from digest.deliver import EmailDeliverer, safe_name
from digest.errors import ConfigError
from digest.mail import MailParts, new_message_id
from digest.models import Endpoint, Subscriber, WebReply, WebRequest
from digest.store import Store, open_store

SECRET_ENV = "DIGEST_LINK_SECRET"
UNSUBSCRIBE, CONFIRM = "unsubscribe", "confirm"
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def link_secret(store: Store) -> bytes:
    """The key of every link token: $DIGEST_LINK_SECRET, else a random one made once and kept in the store."""
    from_environment = os.environ.get(SECRET_ENV, "")
    if from_environment:
        return from_environment.encode()
    return store.secret("links", lambda: secrets.token_hex(32)).encode()


def token(secret: bytes, subscriber: Subscriber, purpose: str) -> str:
    """`<id>.<mac>`: names one subscriber; the MAC (128 bits) proves the link was made here for this purpose."""
    return f"{subscriber.id}.{_mac(secret, subscriber.id, subscriber.digest, subscriber.address, purpose)}"


def _mac(secret: bytes, subscriber_id: int, digest: str, address: str, purpose: str) -> str:
    message = "\x00".join((purpose, digest, str(subscriber_id), address)).encode()
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()[:16]).decode().rstrip("=")


def check_token(store: Store, digest: str, text: str, purpose: str) -> Subscriber | None:
    """The subscriber of `digest` a token was made for, or None when it is not a valid token for them."""
    number, dot, mac = text.partition(".")
    if not dot or not number.isdigit() or len(number) > 18:
        return None
    subscriber = store.subscriber(int(number))
    if subscriber is None or subscriber.digest != digest:
        return None
    expected = _mac(link_secret(store), subscriber.id, subscriber.digest, subscriber.address, purpose)
    return subscriber if hmac.compare_digest(expected, mac) else None


MAIL_PURPOSE = "unsubscribe by mail"
MAIL_PREFIX = "unsubscribe+"


def mail_token(secret: bytes, subscriber: Subscriber) -> str:
    """`<id>.<mac>` in lower-case base32, so that it survives in an address's local part whatever an MTA does to case."""
    message = "\x00".join((MAIL_PURPOSE, subscriber.digest, str(subscriber.id), subscriber.address)).encode()
    mac = base64.b32encode(hmac.new(secret, message, hashlib.sha256).digest()[:16]).decode().rstrip("=").lower()
    return f"{subscriber.id}.{mac}"


def mail_address(config: Config, secret: bytes, subscriber: Subscriber) -> str:
    """`mailto:unsubscribe+<token>@<[inbound] hostname>` when an [inbound] listener is configured, else ""."""
    if not (config.inbound.configured and config.inbound.enabled):
        return ""
    host = config.inbound.hostname or socket.getfqdn()
    return f"mailto:{MAIL_PREFIX}{mail_token(secret, subscriber)}@{host}"


def check_mail_address(store: Store, address: str) -> Subscriber | None:
    """The subscriber whose unsubscribe address this is (any domain), or None when its token does not verify."""
    local = address.rpartition("@")[0].lower()
    if not local.startswith(MAIL_PREFIX):
        return None
    number, dot, _ = local.removeprefix(MAIL_PREFIX).partition(".")
    if not dot or not number.isdigit() or len(number) > 18:
        return None
    subscriber = store.subscriber(int(number))
    if subscriber is None:
        return None
    expected = mail_token(link_secret(store), subscriber)
    return subscriber if hmac.compare_digest(expected, local.removeprefix(MAIL_PREFIX)) else None


def unsubscribe_by_mail(store: Store, subscriber: Subscriber, now: datetime) -> None:
    """A message came to the subscriber's unsubscribe address: they get no more mail (committed on return)."""
    store.set_subscriber_status(subscriber.id, "unsubscribed", now, ("active", "invited"))


def link(digest: DigestConfig, purpose: str, made: str) -> str:
    """The page for a token under the digest's base_url: `<base_url>/unsubscribe/<token>`; "" without a base_url."""
    return f"{digest.base_url.rstrip('/')}/{purpose}/{made}" if digest.base_url else ""


def route(purpose: str) -> str:
    """Where `digest serve` answers a purpose's links (the archive of digest D is served under /D/)."""
    return f"/{{digest}}/{purpose}/{{token}}"


def endpoints(config: Config) -> list[Endpoint]:
    """The routes `digest serve` adds: `/<digest>/unsubscribe/<token>` and `/<digest>/confirm/<token>`, GET and POST."""

    def handler(purpose: str) -> Callable[[WebRequest], WebReply]:
        def handle(request: WebRequest) -> WebReply:
            page = answer(
                config, purpose, request.path_params["digest"], request.path_params["token"], request.method, request.form
            )
            return WebReply(page.status, page.body, headers=dict(page.headers))

        return handle

    return [Endpoint(route(purpose), ("GET", "POST"), handler(purpose)) for purpose in (UNSUBSCRIBE, CONFIRM)]


@dataclass(frozen=True)
class Page:
    """What a link's page answers: an HTTP status and an HTML page."""

    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = (
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Robots-Tag", "noindex"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
    )


def answer(
    config: Config, purpose: str, digest_slug: str, made: str, method: str, form: dict[str, str], now: datetime | None = None
) -> Page:
    """Answer GET (a page with one button, changing nothing) or POST (unsubscribe, or confirm) on a link."""
    digest = next((d for d in config.digests if safe_name(d.name) == digest_slug), None)
    if digest is None:
        return _page(404, "Link not found", "<p>This link is not valid.</p>")
    store = open_store(config.store)
    try:
        subscriber = check_token(store, digest.name, made, purpose)
        if subscriber is None:
            return _page(404, "Link not found", "<p>This link is not valid (it may have been removed).</p>")
        who = f"<strong>{html.escape(subscriber.address)}</strong>"
        name = f"<strong>{html.escape(digest.name)}</strong>"
        moment = now or datetime.now(timezone.utc)
        if purpose == UNSUBSCRIBE:
            return _unsubscribe(store, subscriber, method, form, who, name, moment)
        return _confirm(store, subscriber, method, form, who, name, moment)
    finally:
        store.close()


def _unsubscribe(
    store: Store, subscriber: Subscriber, method: str, form: dict[str, str], who: str, name: str, now: datetime
) -> Page:
    if method == "POST":
        if form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            return _page(
                400,
                "Not unsubscribed",
                "<p>Nothing changed: the request did not say <code>List-Unsubscribe=One-Click</code>.</p>",
            )
        store.set_subscriber_status(subscriber.id, "unsubscribed", now, ("active", "invited"))
        return _page(200, "Unsubscribed", f"<p>{who} will get no more mail from {name}.</p>")
    if subscriber.status == "unsubscribed":
        return _page(200, "Unsubscribed", f"<p>{who} is not subscribed to {name}.</p>")
    return _page(200, "Unsubscribe?", f"<p>Stop sending {name} to {who}?</p>", button=("Unsubscribe", ONE_CLICK))


def _confirm(store: Store, subscriber: Subscriber, method: str, form: dict[str, str], who: str, name: str, now: datetime) -> Page:
    if method == "POST":
        if form.get("confirm") != "yes":
            return _page(400, "Not confirmed", "<p>Nothing changed: the request did not say <code>confirm=yes</code>.</p>")
        if store.set_subscriber_status(subscriber.id, "active", now, ("invited",)) or subscriber.status == "active":
            return _page(200, "Subscribed", f"<p>{who} will get {name}.</p>")
        return _page(409, "Not subscribed", f"<p>{who} unsubscribed from {name}; ask its sender to invite you again.</p>")
    if subscriber.status == "active":
        return _page(200, "Subscribed", f"<p>{who} already gets {name}.</p>")
    if subscriber.status == "unsubscribed":
        return _page(409, "Not subscribed", f"<p>{who} unsubscribed from {name}; ask its sender to invite you again.</p>")
    return _page(200, "Confirm?", f"<p>Send {name} to {who}?</p>", button=("Yes, subscribe me", ("confirm", "yes")))


def _page(status: int, title: str, content: str, button: tuple[str, tuple[str, str]] | None = None) -> Page:
    form = ""
    if button is not None:
        label, (field_name, value) = button
        form = (
            f'<form method="post"><input type="hidden" name="{html.escape(field_name)}" value="{html.escape(value)}">'
            f'<button type="submit" style="font-size:1.1em;padding:.5em 1.2em">{html.escape(label)}</button></form>'
        )
    return Page(
        status,
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title></head><body style="font-family:sans-serif;max-width:36em;'
        f'margin:3em auto;padding:0 1em"><h1>{html.escape(title)}</h1>{content}{form}</body></html>',
    )


def send_invitation(config: Config, store: Store, subscriber: Subscriber, now: datetime) -> str:
    """Mail an invited subscriber the link to confirm; what was done, in words. DeliveryError when it was not sent."""
    digest = config.digest(subscriber.digest)
    if not digest.base_url:
        raise ConfigError(
            str(config.path),
            f"digests ({digest.name}).base_url",
            "an invitation needs base_url: its confirmation link points there",
        )
    url = link(digest, CONFIRM, token(link_secret(store), subscriber, CONFIRM))
    text = (
        f'Someone asked to send the digest "{digest.name}" to this address.\n\n'
        f"To confirm, open this link and press the button:\n{url}\n\n"
        "If it was not you, ignore this mail: nothing will be sent.\n"
    )
    page = (
        f"<!DOCTYPE html><html><body><p>Someone asked to send the digest <strong>{html.escape(digest.name)}"
        '</strong> to this address.</p><p><a href="' + html.escape(url, quote=True) + '">Confirm the subscription'
        "</a> (opens a page with one button).</p><p>If it was not you, ignore this mail: nothing will be sent.</p>"
        "</body></html>"
    )
    parts = MailParts(f"Confirm your subscription to {digest.name}", text, page)
    with EmailDeliverer(config) as email:
        recipient = f"{subscriber.name} <{subscriber.address}>" if subscriber.name else subscriber.address
        email.send(parts, recipient, new_message_id(config.smtp.from_), now, digest.name)
    return f"confirmation mail sent to {subscriber.address}; nothing else is sent until they confirm"
