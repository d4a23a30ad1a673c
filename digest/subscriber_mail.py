"""The `subscriber` outbox channel: a reader's edition by email, with their own unsubscribe links.

The edition is rendered once for every reader of its group; each message then
gets the reader's To line, `List-Unsubscribe` (their https link under the
digest's base_url, and a mailto: carrying their token on the inbound listener
when `[inbound]` is configured, else the digest's `unsubscribe` mailto: when set),
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and a visible link in the
body. A reader who unsubscribed after the edition was made is sent nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from digest.addresses import Mailbox
from digest.config import Config, DigestConfig
from digest.deliver import EmailDeliverer, OutboxTools
from digest.errors import PermanentDeliveryError
from digest.mail import MailParts, with_unsubscribe_link
from digest.models import Delivery, RenderedEdition
from digest.store import Store, open_store
from digest.unsubscribe import UNSUBSCRIBE, link, link_secret, mail_address, token


class SubscriberDeliverer:
    """Sends one reader their edition; its own SMTP session and store connection for one outbox pass."""

    rendering = "email"
    repeatable = False  # a second send is a second email in the reader's inbox

    def __init__(self, config: Config, tools: OutboxTools | None = None) -> None:
        self.config = config
        self.email = EmailDeliverer(config, tools)
        self.give_up_after: timedelta | None = self.email.give_up_after
        self._store: Store | None = None
        self._secret: bytes | None = None

    @staticmethod
    def recipients(digest: DigestConfig) -> list[str]:
        """None: a digest's own editions go to email_to; readers get editions of their own (digest.audience)."""
        return []

    def new_message_id(self) -> str:
        """A fresh Message-ID in the From address's domain."""
        return self.email.new_message_id()

    def close(self) -> None:
        """End the SMTP session and the store connection, if they were opened."""
        self.email.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def deliver(self, delivery: Delivery, edition: RenderedEdition, created: datetime) -> str:
        """Send the reader's message; PermanentDeliveryError when they are no longer subscribed."""
        if self._store is None:
            self._store = open_store(self.config.store)
        subscriber = self._store.subscriber_by_address(delivery.digest, delivery.recipient)
        if subscriber is None or subscriber.status != "active":
            raise PermanentDeliveryError(f"not sent: {delivery.recipient} left {delivery.digest} before it went out")
        digest = self.config.digest(delivery.digest)
        if self._secret is None:
            self._secret = link_secret(self._store)
        url = link(digest, UNSUBSCRIBE, token(self._secret, subscriber, UNSUBSCRIBE))
        targets = [url] if url.startswith("https://") else []  # RFC 8058: one-click only over https
        if mailto := mail_address(self.config, self._secret, subscriber):
            targets.append(mailto)  # the inbound listener unsubscribes whoever writes to it
        elif digest.unsubscribe.startswith("mailto:"):
            targets.append(digest.unsubscribe)
        parts = MailParts(edition.subject, edition.bodies["txt"], edition.bodies["html"])
        if url:
            parts = with_unsubscribe_link(parts, url)
        to = str(Mailbox(subscriber.address, subscriber.name))
        self.email.send(parts, to, delivery.message_id, created, delivery.digest, targets, one_click=url.startswith("https://"))
        return f"{subscriber.address} via {self.config.smtp.host}:{self.config.smtp.port}"
