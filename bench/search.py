"""Search over a big store: the time `digest search` spends finding the best 20 articles among 100,000.

    python bench/search.py [--articles 100000] [--queries 300] [--store PATH]

Fills a fresh SQLite store (or reuses --store when it already holds the articles) with N articles
(cnndm story texts, or generated text, each copy made distinct by "Edition k:"), in editions of 50,
then times digest.search.search (query to words, FTS5 match, BM25 ranking, the editions of each hit)
for queries of one to three words drawn from the corpus's own vocabulary: rare and common words alike
(a word in every article makes the index rank all 100,000). Prints the median, 90th and 99th percentile of wall time, and the median CPU time.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import REPO, source_texts  # noqa: E402

sys.path.insert(0, str(REPO))
from digest.models import Article, Summary  # noqa: E402
from digest.search import search  # noqa: E402
from digest.store import open_store  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
EDITION = 50  # articles in an edition


def fill(path: Path, count: int, texts: list[str]) -> None:
    """Store `count` articles in batches of 1,000, then editions of EDITION articles each."""
    store = open_store(path)
    try:
        for first in range(0, count, 1000):
            with store.transaction():
                for number in range(first, min(count, first + 1000)):
                    text = texts[number % len(texts)]
                    sentences = tuple(re.split(r"(?<=[.!?])\s+", text)[:3])
                    when = START + timedelta(minutes=number)
                    store.add_article(
                        Article(
                            source=f"source-{number % 20}",
                            identity=f"story-{number}",
                            title=f"Edition {number}: {sentences[0][:80]}",
                            body=f"Edition {number}: {text}",
                            version="1",
                            published=when,
                        ),
                        Summary(sentences, "news", "english"),
                        when,
                    )
        db = store.db  # type: ignore[attr-defined]
        with store.transaction():
            for edition in range(count // EDITION):
                created = START + timedelta(minutes=(edition + 1) * EDITION)
                edition_id = db.execute(
                    "INSERT INTO editions (digest, created, atom_id) VALUES ('daily', ?, ?)",
                    (created.isoformat(), f"urn:uuid:bench-{edition}"),
                ).lastrowid
                db.execute(
                    """INSERT INTO edition_articles (edition_id, digest, article_id, position)
                              SELECT ?, 'daily', id, id - ? FROM articles WHERE id > ? AND id <= ?""",
                    (edition_id, edition * EDITION + 1, edition * EDITION, (edition + 1) * EDITION),
                )
    finally:
        store.close()


def queries(texts: list[str], count: int) -> list[str]:
    """`count` queries of 1-3 words, half from the 2,000 most common words of the corpus, half from the rest."""
    words = Counter(word.casefold() for text in texts for word in re.findall(r"[^\W\d_]{3,}", text))
    ranked = [word for word, _ in words.most_common()]
    common, rare = ranked[:2000], ranked[2000:]
    rng = random.Random(18)
    return [" ".join(rng.choice(common if n % 2 else rare) for _ in range(rng.randint(1, 3))) for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--store", type=Path, help="Keep the filled store here (reused when it has the articles).")
    options = parser.parse_args()
    texts, origin = source_texts()
    with tempfile.TemporaryDirectory() as folder:
        path = options.store or Path(folder) / "search.sqlite3"
        store = open_store(path)
        have = store.article_count()
        store.close()
        if have != options.articles:
            if have:
                sys.exit(f"{path} holds {have} articles, not {options.articles}")
            started = time.perf_counter()
            fill(path, options.articles, texts)
            print(
                f"filled {path.name} with {options.articles} articles from {origin} in {time.perf_counter() - started:.0f} s "
                f"({path.stat().st_size / 1e6:.0f} MB)"
            )
        store = open_store(path)
        try:
            asked = queries(texts, options.queries)
            for query in asked[:20]:
                search(store, query)  # warm the page cache, as a store in use is
            timings, cpu, found = [], [], 0
            for query in asked:
                started, started_cpu = time.perf_counter(), time.process_time()
                hits = search(store, query)
                timings.append(1000 * (time.perf_counter() - started))
                cpu.append(1000 * (time.process_time() - started_cpu))
                found += bool(hits)
        finally:
            store.close()
    cuts = statistics.quantiles(timings, n=100)
    print(
        f"{len(asked)} queries over {options.articles} articles ({found} with results): "
        f"median {statistics.median(timings):.1f} ms, p90 {cuts[89]:.1f} ms, p99 {cuts[98]:.1f} ms, max {max(timings):.1f} ms; "
        f"CPU median {statistics.median(cpu):.1f} ms (a loaded machine stretches wall times, less so CPU time)"
    )


if __name__ == "__main__":
    main()
