"""The `page` source: one web page watched for changes to its main text.

The memo keeps the hash of the page's last main text (plus ETag/Last-Modified
for a cheap 304). When the text changes, the page is yielded as a new version
of the same article: same identity (its canonical URL), new `version`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from digest.config import PageSourceConfig
from digest.models import Article
from digest.sanitise import clean_title
from digest.sources import PollContext
from digest.sources.web import canonical_link, fetch_page, remember_validators


class PageSource:
    """Polls one page URL; see the module docstring."""

    def __init__(self, config: PageSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def poll(self, context: PollContext) -> Iterator[Article]:
        """Yield the page when its main text differs from the last poll's."""
        response, page = fetch_page(context, self.config.url, conditional=True)
        if page is None:
            return
        digest = hashlib.sha256(" ".join(page.body.split()).encode("utf-8")).hexdigest()
        changed = context.memo.get("text_hash") != digest
        if changed:
            yield Article(
                source=self.name,
                identity=canonical_link(self.config.url) or self.config.url,
                title=clean_title(page.title) or self.config.url,
                body=page.body,
                published=context.now,  # when the change was seen; the page's own date may be years old
                url=response.url,
                author=page.author,
                language=page.language,
                version=digest[:16],
            )
        context.memo["text_hash"] = digest
        remember_validators(context, response)
