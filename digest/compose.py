"""Arrange an edition for reading: its articles grouped by story, the stories in the digest's `order`
(digest.order: importance, newest, or by source) under a "Top stories" section of its `top` most important.

With grouping on, each story is one entry led by its most complete article (the
one with the most words: its summary tells the most), with every other source
that reported it; a story an earlier edition of the digest already showed, within
the grouping window, is marked as a follow-up. With grouping off, every article is
its own story.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import chain, islice

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


@dataclass(frozen=True)
class StoryPlan:
    """An edition's stories as its articles' positions in the edition, story after story, each lead first
    (`starts`: where each story begins, then the count), and the earlier edition's time of each story that
    follows one up, by story number. Made while the edition's articles are read a page at a time, so a
    large edition's grouping and its articles loaded whole to be shown need not be in memory together;
    a few arrays, no object per article (issue 19)."""

    positions: array[int]
    starts: array[int]
    follows_up: dict[int, datetime]


def pages_of(articles: Sequence[StoredArticle]) -> Iterator[Sequence[StoredArticle]]:
    """Articles already loaded, a page at a time (plan_stories' input)."""
    return (articles[start : start + PAGE] for start in range(0, len(articles), PAGE))


def plan_stories(
    pages: Iterable[Sequence[StoredArticle]],
    shown: Sequence[tuple[StoredArticle, datetime]] = (),
    window: timedelta = WINDOW,
    stored_features: StoredFeatures = no_stored_features,
) -> StoryPlan:
    """The stories of the edition's articles, given a page at a time in edition order; `shown` are earlier
    editions' articles with their edition's time: a story that includes one of them is a follow-up of the
    earliest such edition. Each story is led by its most complete article (most words), ties to the
    earliest published; the rest follow earliest first. A lone article is its own story: nothing is
    grouped (nor numpy and the word list loaded, as `digest check` would for its sample)."""
    pages = iter(pages)
    head = list(islice(pages, 2))  # a page smaller than PAGE is the last
    if sum(len(page) for page in head) + len(shown) <= 1:
        alone = sum(len(page) for page in head)
        return StoryPlan(array("i", range(alone)), array("i", range(alone + 1)), {})
    from digest import stories

    # Of each article, in reading order (its position in the edition): what choosing its story's lead
    # needs (no article is kept).
    ids, words, when = array("q"), array("q"), array("d")

    def items() -> Iterator[stories.Item]:
        # A page of stored features at a time, one article's parsed at a time: grouping keeps only
        # their counts as arrays (issue 19).
        for page in chain(head, pages, pages_of([article for article, _ in shown])):
            for article, stored in zip(page, stored_features([article.id for article in page]), strict=True):
                found = features_of(article, stored)
                ids.append(article.id)
                words.append(found.words)
                when.append(_when(article).timestamp())
                yield stories.Item(found, _when(article))

    labels = stories.group(items(), stories.Settings(window=window))
    count = len(labels) - len(shown)  # the edition's articles come first
    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels[:count]):
        members.setdefault(label, []).append(index)
    earlier: dict[int, datetime] = {}
    for (_, created), label in zip(shown, labels[count:]):
        earlier[label] = min(created, earlier.get(label, created))
    plan = StoryPlan(array("i"), array("i", [0]), {})
    for number, (label, indexes) in enumerate(members.items()):
        lead = max(indexes, key=lambda i: (words[i], -when[i], -ids[i]))
        plan.positions.extend((lead, *sorted((i for i in indexes if i != lead), key=lambda i: (when[i], ids[i]))))
        plan.starts.append(len(plan.positions))
        if label in earlier:
            plan.follows_up[number] = earlier[label]
    return plan


def stories_of(articles: Sequence[StoredArticle], plan: StoryPlan) -> list[Story]:
    """The planned stories, made of the edition's articles."""
    positions = plan.positions
    return [
        Story(articles[positions[start]], tuple(articles[p] for p in positions[start + 1 : end]), plan.follows_up.get(number))
        for number, (start, end) in enumerate(zip(plan.starts, plan.starts[1:]))
    ]


def compose(
    edition: Edition,
    source_order: Sequence[str],
    plan: StoryPlan | None = None,
    order: str = "source",
    top: int = 0,
) -> list[Section]:
    """The edition's sections: the `top` most important stories, then the rest by importance, newest
    first, or by source in config order (a story under its lead's source; newest first in each).
    Its stories are as `plan` groups them; without one, every article is its own story."""
    if plan is not None:
        grouped = stories_of(edition.articles, plan)
    else:
        grouped = [Story(article) for article in edition.articles]
    return [
        Section(block.source, tuple(block.stories), block.heading)
        for block in arrange(grouped, _articles, order, top, source_order)
    ]


def _articles(story: Story) -> tuple[StoredArticle, ...]:
    return story.articles
