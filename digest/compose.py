"""Arrange an edition's articles for reading: grouped by source, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from digest.models import Edition, Section, StoredArticle


def _newest_first(article: StoredArticle) -> tuple[datetime, int]:
    return (article.published or article.fetched or datetime.min.replace(tzinfo=timezone.utc), article.id)


def compose(edition: Edition, source_order: Sequence[str]) -> list[Section]:
    """Group the edition's articles by source in config order, newest first within each."""
    rank = {name: index for index, name in enumerate(source_order)}
    by_source: dict[str, list[StoredArticle]] = {}
    for article in edition.articles:
        by_source.setdefault(article.source, []).append(article)
    ordered = sorted(by_source, key=lambda name: (rank.get(name, len(rank)), name))
    return [
        Section(name, tuple(sorted(by_source[name], key=_newest_first, reverse=True)))
        for name in ordered
    ]
