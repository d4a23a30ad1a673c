"""Arrange an edition for reading: its articles grouped by story, the stories by source, newest first.

With grouping on, each story is one entry led by its most complete article (the
one with the most words: its summary tells the most), with every other source
that reported it; a story an earlier edition of the digest already showed, within
the grouping window, is marked as a follow-up. With grouping off, every article is
its own story.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from digest.models import Edition, Section, Story, StoredArticle, StoryFeatures

WINDOW = timedelta(hours=72)  # how far back an earlier edition's story can be followed up (stories.WINDOW)


def _when(article: StoredArticle) -> datetime:
    return article.published or article.fetched or datetime.min.replace(tzinfo=timezone.utc)


def _newest_first(article: StoredArticle) -> tuple[datetime, int]:
    return (_when(article), article.id)


def features_of(article: StoredArticle) -> StoryFeatures:
    """The stored grouping features; for an article stored before they existed, made from its title and summary."""
    from digest import stories  # numpy: loaded when an edition is grouped, not by a daemon that only polls

    return stories.loads(article.story_features) or stories.features(article.title, " ".join(article.summary))


def _lead_first(articles: Sequence[StoredArticle], words: dict[int, int]) -> list[StoredArticle]:
    """The most complete article first (most words), ties to the earliest published; the rest earliest first."""
    lead = max(articles, key=lambda a: (words[a.id], -_when(a).timestamp(), -a.id))
    return [lead, *sorted((a for a in articles if a is not lead), key=lambda a: (_when(a), a.id))]


def group_stories(articles: Sequence[StoredArticle], shown: Sequence[tuple[StoredArticle, datetime]] = (),
                  window: timedelta = WINDOW) -> list[Story]:
    """The edition's articles as stories; `shown` are earlier editions' articles with their edition's
    time: a story that includes one of them is a follow-up of the earliest such edition."""
    from digest import stories

    everything = [*articles, *(article for article, _ in shown)]
    found = [features_of(article) for article in everything]
    labels = stories.group([stories.Item(f, _when(a)) for f, a in zip(found, everything)],
                           stories.Settings(window=window))
    words = {article.id: f.words for article, f in zip(everything, found)}
    members: dict[int, list[StoredArticle]] = {}
    for article, label in zip(articles, labels):
        members.setdefault(label, []).append(article)
    earlier: dict[int, datetime] = {}
    for (_, created), label in zip(shown, labels[len(articles):]):
        earlier[label] = min(created, earlier.get(label, created))
    grouped = []
    for label, story_articles in members.items():
        lead, *others = _lead_first(story_articles, words)
        grouped.append(Story(lead, tuple(others), earlier.get(label)))
    return grouped


def compose(edition: Edition, source_order: Sequence[str], group: bool = False,
            shown: Sequence[tuple[StoredArticle, datetime]] = (), window: timedelta = WINDOW) -> list[Section]:
    """Sections by source in config order (a story under its lead's source), newest story first in each."""
    if group:
        grouped = group_stories(edition.articles, shown, window)
    else:
        grouped = [Story(article) for article in edition.articles]
    rank = {name: index for index, name in enumerate(source_order)}
    by_source: dict[str, list[Story]] = {}
    for story in grouped:
        by_source.setdefault(story.lead.source, []).append(story)
    ordered = sorted(by_source, key=lambda name: (rank.get(name, len(rank)), name))
    return [
        Section(name, tuple(sorted(by_source[name], key=lambda s: max(map(_newest_first, s.articles)), reverse=True)))
        for name in ordered
    ]
