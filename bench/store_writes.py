"""Storing articles, with and without the search index: what indexing adds to the store's write time,
and to retention's pruning of the text later.

    python bench/store_writes.py [--articles 2000] [--runs 5]

Each run stores N new articles (cnndm story texts, or generated text) into a fresh SQLite store (WAL,
synchronous=NORMAL), checking each for duplicates first as the pipeline does, in three ways: one
transaction per article, and the pipeline's write batches (each article in a savepoint) of up to 10
and of up to BATCH_WRITES articles. Then it prunes every article's text, as `[store] keep` does.

What is counted for "with search index": all the index's work. Storing an article queues its id
(migration 0021's trigger); a commit indexes the queue in one statement once SEARCH_QUEUE articles
wait; and the timed part of each run ends with Store.index_for_search(), which indexes the rest (the
product does that before each search and each edition), so every article is searchable when the clock
stops. Pruning with the index also takes each pruned text out of the index.
"Without search index" drops the triggers that queue articles and take them out of the index, as a
store before migration 0011_article_search was; the empty queue's check at each commit stays counted.

Also printed: the floor of any FTS5 index of these texts, what FTS5 spends tokenising them and
hashing their terms in memory (an in-memory table, the transaction rolled back: nothing written).

Figures are medians of CPU time (this process) and wall time per article.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import REPO, source_texts  # noqa: E402

sys.path.insert(0, str(REPO))
from digest.models import Article, Summary  # noqa: E402
from digest.poll import BATCH_SECONDS, BATCH_WRITES  # noqa: E402
from digest.store import Store, open_store  # noqa: E402
from digest.store.sqlite import SEARCH_QUEUE  # noqa: E402

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
SUMMARY = Summary(sentences=("One.", "Two.", "Three."), algorithm="news", language="english")
SEARCH_TRIGGERS = ("article_search_insert", "article_search_update", "article_search_delete")
TOKENIZER = "porter unicode61 remove_diacritics 2"  # migration 0011's


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


def batches_of(size: int) -> Callable[[Store, Iterator[Article]], None]:
    def batched(store: Store, stream: Iterator[Article]) -> None:
        """What the pipeline does: a WriteBatch, each article in a savepoint, `size` to a commit."""
        writes = store.batch(size, BATCH_SECONDS)
        for article in stream:
            if not store.is_known(article):
                with writes.write():
                    store.add_article(article, SUMMARY, NOW)
        writes.commit()

    return batched


def timed(work: Callable[[], object]) -> tuple[float, float]:
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - started_cpu, time.perf_counter() - started_wall


def tokenising_floor(count: int, texts: list[str], runs: int, tokenizer: str = TOKENIZER) -> float:
    """CPU seconds FTS5 spends tokenising and hashing `count` articles' title and text, nothing written."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute(f"CREATE VIRTUAL TABLE floor USING fts5(title, body, content='', tokenize='{tokenizer}')")
    rows = [(article.title, article.body) for article in articles(count, texts)]
    spent = []
    for _ in range(runs):
        cpu = 0.0
        for first in range(0, count, 50):  # 50 at a time stays inside FTS5's in-memory limit (1 MB)
            db.execute("BEGIN")
            cpu += timed(lambda: db.executemany("INSERT INTO floor (title, body) VALUES (?, ?)", rows[first : first + 50]))[0]
            db.execute("ROLLBACK")
        spent.append(cpu)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    texts, origin = source_texts()
    print(f"{options.articles} articles from {origin}; medians of {options.runs} runs; search queue {SEARCH_QUEUE}")
    writers = (
        ("per article", per_article),
        ("batches of up to 10", batches_of(10)),
        (f"batches of up to {BATCH_WRITES}", batches_of(BATCH_WRITES)),
    )
    ways = [(name, write, indexed) for name, write in writers for indexed in (True, False)]
    writing: dict[tuple[str, bool], list[tuple[float, float]]] = {(name, indexed): [] for name, _, indexed in ways}
    pruning: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(options.runs):
            for name, write, indexed in ways:  # interleaved, so that the machine's load falls on both alike
                store = open_store(Path(folder) / f"{run}-{len(writing[name, indexed])}-{name}-{indexed}.sqlite3")
                if not indexed:
                    for trigger in SEARCH_TRIGGERS:
                        store.db.execute(f"DROP TRIGGER {trigger}")  # type: ignore[attr-defined]

                def stored(store: Store = store, write: Callable[[Store, Iterator[Article]], None] = write) -> None:
                    write(store, articles(options.articles, texts))
                    store.index_for_search()

                writing[name, indexed].append(timed(stored))
                if write is per_article:
                    pruning[indexed].append(timed(lambda store=store: store.prune(NOW + timedelta(days=1))))  # type: ignore[misc]
                store.close()
    count = options.articles

    def ms(samples: list[tuple[float, float]], which: int) -> float:
        return 1000 * statistics.median(sample[which] for sample in samples) / count

    print("| transactions | CPU ms/article without index | with index | indexing adds (CPU) | wall ms without | wall with |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [(name, writing[name, False], writing[name, True]) for name, _ in writers]
    rows.append(("pruning every text (one transaction)", pruning[False], pruning[True]))
    for name, without, with_index in rows:
        added = 100 * (ms(with_index, 0) / ms(without, 0) - 1)
        print(
            f"| {name} | {ms(without, 0):.3f} | {ms(with_index, 0):.3f} | {added:+.0f}% | {ms(without, 1):.3f} | {ms(with_index, 1):.3f} |"
        )
    floor = 1000 * tokenising_floor(count, texts, options.runs) / count
    print(f"FTS5 tokenising and hashing alone (nothing written): {floor:.3f} ms/article CPU")


if __name__ == "__main__":
    main()
