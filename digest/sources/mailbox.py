"""The `mailbox` source: newsletters the inbound listener stored, one article per message.

The listener (digest.inbound) commits each message to the store before it
answers 250; a poll reads the messages stored since the last one (the memo
keeps the last message's id) and turns each into an article with
digest.newsletter. A message with no usable text gives no article and a note.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from digest.config import MailboxSourceConfig
from digest.errors import SourceError
from digest.models import Article, InboundMessage
from digest.newsletter import Newsletter, parse
from digest.sources import PollContext
from digest.store import open_store

BATCH = 50  # messages read from the store at a time (up to max_bytes each)
FUTURE_DATE = timedelta(days=1)  # a Date header further ahead of the receipt than this is not believed


class MailboxSource:
    """Reads one mailbox source's received messages; see the module docstring."""

    def __init__(self, config: MailboxSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def poll(self, context: PollContext) -> Iterator[Article]:
        """Yield an article for each message received since the last poll."""
        if context.store_at is None:
            raise SourceError(f"mailbox {self.name}: no store to read received mail from")
        after = int(context.memo.get("after", "0") or 0)
        store = open_store(context.store_at)
        try:
            while batch := store.inbound_messages(self.name, after, BATCH):
                for message in batch:
                    with context.working():
                        letter = parse(message.raw)
                    after = message.id
                    context.memo["after"] = str(after)
                    article = self._article(message, letter, context)
                    if article is not None:
                        yield article
        finally:
            store.close()

    def _article(self, message: InboundMessage, letter: Newsletter, context: PollContext) -> Article | None:
        subject = letter.title or f"(no subject) from {message.sender or 'an unknown sender'}"
        for note in letter.notes:
            context.notes.append(f"message {letter.key} ({subject}): {note}")
        if not letter.body:
            return None
        published = letter.published
        if published is None or published > message.received + FUTURE_DATE:
            published = message.received
        return Article(
            source=self.name,
            identity=letter.key,
            title=subject,
            body=letter.body,
            published=published,
            url=letter.link,
            author=letter.author,
            language=letter.language,
        )
