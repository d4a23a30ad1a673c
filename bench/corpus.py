"""Build the benchmark corpus: N news stories as a folder of .txt files and as RSS feeds.

Stories come from ../shared/data/cnndm-dev.jsonl (500 CNN stories) when it is
present, else from generated text. Beyond the 500 stories, copies are made
distinct by prefixing "Edition k:" to the first sentence: the store would drop
an identical text as a duplicate, and the prefix keeps each copy's work (its
sentences and words) as it was.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
CNNDM = REPO.parent / "shared" / "data" / "cnndm-dev.jsonl"
WORDS = (
    "government council minister police report market company price energy school hospital court city "
    "river election vote budget plan project worker union strike weather storm flood rail road airport "
    "bank rate inflation growth trade export border army talks peace deal investigation trial witness "
    "museum festival team season coach player match record study research data survey scientist climate"
).split()


@dataclass(frozen=True)
class Story:
    """One benchmark article."""

    number: int
    title: str
    body: str


def source_texts() -> tuple[list[str], str]:
    """The base texts and where they came from."""
    if CNNDM.is_file():
        with CNNDM.open(encoding="utf-8") as lines:
            return [json.loads(line)["text"] for line in lines if line.strip()], f"{CNNDM.name} (CNN stories)"
    return [generated_text(number) for number in range(500)], "generated text (../shared/data/cnndm-dev.jsonl is absent)"


def generated_text(seed: int) -> str:
    """A made-up story of about 30 sentences (CNN stories average about 35)."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(rng.randint(20, 40)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 30))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def stories(count: int, texts: list[str]) -> Iterator[Story]:
    """`count` distinct stories, cycling through the base texts."""
    for number in range(count):
        edition, index = divmod(number, len(texts))
        body = texts[index] if edition == 0 else f"Edition {edition}: {texts[index]}"
        yield Story(number, f"Bench story {number}", body)


def write_files(folder: Path, count: int, texts: list[str]) -> None:
    """One .txt file per story: the title line, a blank line, the body."""
    folder.mkdir(parents=True, exist_ok=True)
    for story in stories(count, texts):
        (folder / f"story-{story.number:05d}.txt").write_text(f"{story.title}\n\n{story.body}\n", encoding="utf-8")


def rss(feed_number: int, items: list[Story], published: datetime) -> bytes:
    """An RSS 2.0 document carrying each story's full text."""
    entries = []
    for offset, story in enumerate(items):
        moment = format_datetime(published - timedelta(minutes=offset))
        entries.append(
            f"<item><title>{escape(story.title)}</title>"
            f"<link>http://bench.invalid/story/{story.number}</link>"
            f"<guid>bench-story-{story.number}</guid><pubDate>{moment}</pubDate>"
            f"<description>{escape(story.body)}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench feed {feed_number}</title>'
        f"<link>http://bench.invalid/</link><description>benchmark</description>{''.join(entries)}</channel></rss>"
    ).encode()


def feeds(count: int, per_feed: int, texts: list[str], published: datetime | None = None) -> dict[str, bytes]:
    """The stories as RSS feeds of `per_feed` items each, by URL path."""
    moment = published or datetime.now(timezone.utc)
    documents: dict[str, bytes] = {}
    batch: list[Story] = []
    for story in stories(count, texts):
        batch.append(story)
        if len(batch) == per_feed:
            documents[f"/feed/{len(documents):04d}.xml"] = rss(len(documents), batch, moment)
            batch = []
    if batch:
        documents[f"/feed/{len(documents):04d}.xml"] = rss(len(documents), batch, moment)
    return documents
