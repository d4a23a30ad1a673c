"""The order of an edition's stories ([digests] order, top): by importance, by source, or newest first,
under a "Top stories" section of the `top` most important.

A story's importance is (how many distinct sources report it in the edition, when its newest article
was published, else fetched): a story carried by five outlets comes before one carried by one, and
among equals the newer first. A story here is anything with articles: compose's grouped stories, or
one article each when grouping is off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

from digest.models import StoredArticle

ORDERS = ("importance", "source", "newest")
TOP_HEADING = "Top stories"
MORE_HEADING = "More stories"
Story = TypeVar("Story")


@dataclass(frozen=True)
class Block(Generic[Story]):
    """One section of an ordered edition: its heading and source ("" when it mixes sources), its stories."""

    heading: str
    source: str
    stories: list[Story]


def when(article: StoredArticle) -> datetime:
    """When an article was published, else fetched."""
    return article.published or article.fetched or datetime.min.replace(tzinfo=timezone.utc)


def importance(articles: Sequence[StoredArticle]) -> tuple[int, datetime, int]:
    """A story's score, higher first: distinct sources reporting it, its newest article's time, then
    its newest article id (so equal stories keep one order run after run)."""
    newest = max(articles, key=lambda article: (when(article), article.id))
    return (len({article.source for article in articles}), when(newest), newest.id)


def newness(articles: Sequence[StoredArticle]) -> tuple[datetime, int]:
    """A story's recency, newest first: its newest article's time, then id."""
    return max((when(article), article.id) for article in articles)


def arrange(
    stories: Sequence[Story],
    articles_of: Callable[[Story], Sequence[StoredArticle]],
    order: str,
    top: int,
    source_order: Sequence[str],
) -> list[Block[Story]]:
    """The edition's sections: the `top` most important stories under TOP_HEADING (when top > 0), then
    the rest in one section by importance or newest first, or in one section per source (config
    order, sources the config does not know last, by name), newest first in each."""
    by_importance = sorted(stories, key=lambda story: importance(articles_of(story)), reverse=True)
    blocks: list[Block[Story]] = []
    if top > 0 and by_importance:
        blocks.append(Block(TOP_HEADING, "", by_importance[:top]))
    headed = {id(story) for story in by_importance[:top]} if top > 0 else set()
    rest = [story for story in stories if id(story) not in headed]
    if not rest:
        return blocks
    heading = MORE_HEADING if blocks else ""
    if order == "importance":
        blocks.append(Block(heading, "", [story for story in by_importance if id(story) not in headed]))
    elif order == "newest":
        blocks.append(Block(heading, "", sorted(rest, key=lambda story: newness(articles_of(story)), reverse=True)))
    else:
        rank = {name: index for index, name in enumerate(source_order)}
        by_source: dict[str, list[Story]] = {}
        for story in rest:
            by_source.setdefault(articles_of(story)[0].source, []).append(story)
        for name in sorted(by_source, key=lambda name: (rank.get(name, len(rank)), name)):
            blocks.append(Block(name, name, sorted(by_source[name], key=lambda story: newness(articles_of(story)), reverse=True)))
    return blocks
