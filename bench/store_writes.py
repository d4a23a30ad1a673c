"""Storing articles: one transaction per article against the pipeline's write batches, each with and
without the search index (FTS5, kept in step by triggers) being written.

    python bench/store_writes.py [--articles 2000] [--runs 5]

Each run stores N new articles (cnndm story texts, or generated text) into a fresh
SQLite store (WAL, synchronous=NORMAL), checking each for duplicates first as the
pipeline does, and prints the median CPU and wall time per article of each way.
"Without search index" drops the triggers that feed the index, as a store before
migration 0011_article_search was.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import REPO, source_texts  # noqa: E402

sys.path.insert(0, str(REPO))
from digest.models import Article, Summary  # noqa: E402
from digest.poll import BATCH_SECONDS, BATCH_WRITES  # noqa: E402
from digest.store import Store, open_store  # noqa: E402

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
SUMMARY = Summary(sentences=("One.", "Two.", "Three."), algorithm="news", language="english")


def articles(count: int, texts: list[str]) -> Iterator[Article]:
    for number in range(count):
        yield Article(
            source="bench",
            identity=f"story-{number}",
            title=f"Bench story {number}",
            body=f"Edition {number}: {texts[number % len(texts)]}",
            version="1",
        )


def per_article(store: Store, stream: Iterator[Article]) -> None:
    for article in stream:
        if not store.is_known(article):
            with store.transaction():
                store.add_article(article, SUMMARY, NOW)


def batched(store: Store, stream: Iterator[Article]) -> None:
    """What the pipeline does: a WriteBatch, each article in a savepoint, BATCH_WRITES to a commit."""
    writes = store.batch(BATCH_WRITES, BATCH_SECONDS)
    for article in stream:
        if not store.is_known(article):
            with writes.write():
                store.add_article(article, SUMMARY, NOW)
    writes.commit()


SEARCH_TRIGGERS = ("article_search_insert", "article_search_update", "article_search_delete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    texts, origin = source_texts()
    print(f"{options.articles} articles from {origin}; medians of {options.runs} runs")
    ways = [
        (f"{name}, {index}", write, index == "with search index")
        for index in ("with search index", "without search index")
        for name, write in (("per article", per_article), (f"batches of up to {BATCH_WRITES}", batched))
    ]
    timings: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _, _ in ways}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(options.runs):
            for name, write, indexed in ways:
                cpu, wall = timings[name]
                store = open_store(Path(folder) / f"{run}-{len(timings)}-{len(cpu)}-{write.__name__}-{indexed}.sqlite3")
                if not indexed:
                    for trigger in SEARCH_TRIGGERS:
                        store.db.execute(f"DROP TRIGGER {trigger}")  # type: ignore[attr-defined]
                started_cpu, started_wall = time.process_time(), time.perf_counter()
                write(store, articles(options.articles, texts))
                cpu.append(time.process_time() - started_cpu)
                wall.append(time.perf_counter() - started_wall)
                store.close()
    print("| transactions | CPU ms/article | wall ms/article |\n| --- | ---: | ---: |")
    for name, (cpu, wall) in timings.items():
        print(
            f"| {name} | {1000 * statistics.median(cpu) / options.articles:.3f} | {1000 * statistics.median(wall) / options.articles:.3f} |"
        )


if __name__ == "__main__":
    main()
