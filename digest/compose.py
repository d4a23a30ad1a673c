"""Arrange an edition for reading: its articles grouped by story, the stories in the digest's `order`
(digest.order: importance, newest, or by source) under a "Top stories" section of its `top` most important.

With grouping on, each story is one entry led by its most complete article (the
one with the most words: its summary tells the most), with every other source
that reported it; a story an earlier edition of the digest already showed, within
the grouping window, is marked as a follow-up. With grouping off, every article is
its own story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone

from digest.models import Edition, Section, Story, StoredArticle, StoryFeatures
from digest.order import arrange

WINDOW = timedelta(hours=72)  # how far back an earlier edition's story can be followed up (stories.WINDOW)


def _when(article: StoredArticle) -> datetime:
    return article.published or article.fetched or datetime.min.replace(tzinfo=timezone.utc)


# Reads the stored story features of some articles, in their order ('' for none): Store.story_features.
StoredFeatures = Callable[[Sequence[int]], Sequence[str]]
PAGE = 500  # articles whose stored features are read at once: an edition's are never all held (issue 19)


def no_stored_features(article_ids: Sequence[int]) -> list[str]:
    """None stored (a sample edition with no store behind it): every article's are made from its title and summary."""
    return [""] * len(article_ids)


def features_of(article: StoredArticle, stored: str) -> StoryFeatures:
    """The article's stored grouping features; for one stored before they existed, made from its title and summary."""
    from digest import stories  # numpy: loaded when an edition is grouped, not by a daemon that only polls

    return stories.loads(stored) or stories.features(article.title, " ".join(article.summary))


def _lead_first(articles: Sequence[StoredArticle], words: dict[int, int]) -> list[StoredArticle]:
    """The most complete article first (most words), ties to the earliest published; the rest earliest first."""
    lead = max(articles, key=lambda a: (words[a.id], -_when(a).timestamp(), -a.id))
    return [lead, *sorted((a for a in articles if a is not lead), key=lambda a: (_when(a), a.id))]


def group_stories(
    articles: Sequence[StoredArticle],
    shown: Sequence[tuple[StoredArticle, datetime]] = (),
    window: timedelta = WINDOW,
    stored_features: StoredFeatures = no_stored_features,
) -> list[Story]:
    """The edition's articles as stories; `shown` are earlier editions' articles with their edition's
    time: a story that includes one of them is a follow-up of the earliest such edition. A lone article is
    its own story: nothing is grouped (nor numpy and the word list loaded, as `digest check` would for its sample)."""
    if len(articles) + len(shown) <= 1:
        return [Story(article) for article in articles]
    from digest import stories

    words: dict[int, int] = {}
    everyone = (*articles, *(article for article, _ in shown))

    def items() -> Iterator[stories.Item]:
        # A page of stored features at a time, one article's parsed at a time: grouping keeps only
        # their counts as arrays (issue 19).
        for start in range(0, len(everyone), PAGE):
            page = everyone[start : start + PAGE]
            for article, stored in zip(page, stored_features([article.id for article in page]), strict=True):
                found = features_of(article, stored)
                words[article.id] = found.words
                yield stories.Item(found, _when(article))

    labels = stories.group(items(), stories.Settings(window=window))
    members: dict[int, list[StoredArticle]] = {}
    for article, label in zip(articles, labels):
        members.setdefault(label, []).append(article)
    earlier: dict[int, datetime] = {}
    for (_, created), label in zip(shown, labels[len(articles) :]):
        earlier[label] = min(created, earlier.get(label, created))
    grouped = []
    for label, story_articles in members.items():
        lead, *others = _lead_first(story_articles, words)
        grouped.append(Story(lead, tuple(others), earlier.get(label)))
    return grouped


def compose(
    edition: Edition,
    source_order: Sequence[str],
    group: bool = False,
    shown: Sequence[tuple[StoredArticle, datetime]] = (),
    window: timedelta = WINDOW,
    order: str = "source",
    top: int = 0,
    stored_features: StoredFeatures = no_stored_features,
) -> list[Section]:
    """The edition's sections: the `top` most important stories, then the rest by importance, newest
    first, or by source in config order (a story under its lead's source; newest first in each).
    Grouping reads the articles' features through `stored_features` (the store's)."""
    if group:
        grouped = group_stories(edition.articles, shown, window, stored_features)
    else:
        grouped = [Story(article) for article in edition.articles]
    return [
        Section(block.source, tuple(block.stories), block.heading)
        for block in arrange(grouped, _articles, order, top, source_order)
    ]


def _articles(story: Story) -> tuple[StoredArticle, ...]:
    return story.articles
