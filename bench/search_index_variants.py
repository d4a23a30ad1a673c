"""What each way of building the SQLite search index adds to the store's write time (issue 18's "indexing
adds under 10%"), all measured in one process, interleaved, so that the machine's load falls on each alike.

    python bench/search_index_variants.py [--articles 2000] [--runs 7] [--sqlite sqlean]

Each run stores N articles in the pipeline's write batches (as bench/store_writes.py does) into a fresh
store once per variant: the store without the index (its triggers dropped), the index as it is
(migration 0021), and the index remade with one FTS5 option or setting changed, or kept in a file of its
own. Every variant's clock stops only once every article is indexed (Store.index_for_search) and the
script checks that each variant's index finds all N; "queue only" never indexes (what the queue costs).
Then the floor of each tokenizer: FTS5 tokenising and hashing the articles in memory, nothing written;
and what FTS5's `detail` costs a search: the 20 best by BM25 among the N articles (in memory).

`--sqlite MODULE` runs the whole store on another DB-API build of SQLite (sqlean.py's `sqlean`,
pysqlite3-binary's `pysqlite3.dbapi2`), when it is installed; its own figures, not the product's.

Figures are medians of CPU time (user and system, this process) and wall time per article. Instructions,
which the load does not change, per variant: run it under `valgrind --tool=cachegrind --cache-sim=no` with
`--runs 1 --only NAME --no-floor` (or `--only "floor ascii"`, a floor alone), at --articles 2200 and 200, and
divide the difference of "I refs" by 2000.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENIZERS = ("porter unicode61 remove_diacritics 2", "unicode61 remove_diacritics 2", "ascii")


@dataclass(frozen=True)
class Variant:
    """One way to build the index: SQL run on the new store, the queue's size, whether indexing is counted."""

    name: str
    setup: Callable[[Any, Path], None] | None = None
    queue: int | None = None
    indexed: bool = True


def without_index(db: Any, folder: Path) -> None:
    """The store before migration 0011: nothing queued or indexed (the empty queue's check still counted)."""
    for trigger in ("article_search_insert", "article_search_update", "article_search_delete"):
        db.execute(f"DROP TRIGGER {trigger}")


def remade(options: str, settings: tuple[tuple[str, int], ...] = ()) -> Callable[[Any, Path], None]:
    """The index remade (same name, columns and content) with other FTS5 options, then `settings` applied."""

    def setup(db: Any, folder: Path) -> None:
        db.execute("DROP TABLE article_search")
        db.execute(
            "CREATE VIRTUAL TABLE article_search USING fts5(title, summary, body, "
            f"content='article_search_text', content_rowid='id', {options})"
        )
        db.execute("INSERT INTO article_search (article_search, rank) VALUES ('rank', 'bm25(10.0, 4.0, 1.0)')")
        for key, value in settings:
            db.execute("INSERT INTO article_search (article_search, rank) VALUES (?, ?)", (key, value))

    return setup


def own_file(journal: str, options: str = "", settings: tuple[tuple[str, int], ...] = ()) -> Callable[[Any, Path], None]:
    """The index in an attached file of its own, contentless, unsynced (rebuildable from the articles), with
    `options` and `settings`. Writing only: the store's prune and update triggers cannot reach another file."""

    def setup(db: Any, folder: Path) -> None:
        db.execute("DROP TABLE article_search")
        db.execute("ATTACH ? AS search", (str(folder / f"index-{time.perf_counter_ns()}.sqlite3"),))
        db.execute(f"PRAGMA search.journal_mode={journal}")
        db.execute("PRAGMA search.synchronous=OFF")
        db.execute(
            "CREATE VIRTUAL TABLE search.article_search USING fts5(title, summary, body, content='', "
            f"tokenize='{TOKENIZERS[0]}'{options})"
        )
        for key, value in settings:
            db.execute("INSERT INTO article_search (article_search, rank) VALUES (?, ?)", (key, value))

    return setup


NOW = f"tokenize='{TOKENIZERS[0]}'"
VARIANTS = (
    Variant("without index", without_index),
    Variant("the index now (migration 0021, queue of 500)"),
    Variant("queue only, never indexed", queue=10**9, indexed=False),
    Variant("detail=column", remade(f"{NOW}, detail=column")),
    Variant("detail=none", remade(f"{NOW}, detail=none")),
    Variant("columnsize=0", remade(f"{NOW}, columnsize=0")),
    Variant("pgsz=16000", remade(NOW, (("pgsz", 16000),))),
    Variant("automerge=0, crisismerge=64", remade(NOW, (("automerge", 0), ("crisismerge", 64)))),
    Variant("tokenize='unicode61 remove_diacritics 2' (no stemming)", remade(f"tokenize='{TOKENIZERS[1]}'")),
    Variant("tokenize='ascii' (no stemming)", remade(f"tokenize='{TOKENIZERS[2]}'")),
    Variant("queue of 100", queue=100),
    Variant("queue of 2000", queue=2000),
    Variant("own file, journal_mode=OFF, synchronous=OFF", own_file("OFF")),
    Variant("own file, journal_mode=WAL, synchronous=OFF", own_file("WAL")),
    Variant(
        "all that helped: own file (journal OFF), detail=none, automerge=0",
        own_file("OFF", ", detail=none", (("automerge", 0), ("crisismerge", 64))),
    ),
)


def ranked_search(count: int, texts: list[str], runs: int, detail: str) -> dict[str, float]:
    """CPU seconds (median of `runs`) of the 20 best by BM25 for a word most articles hold and a rarer one, in
    an in-memory index of `count` articles with FTS5's `detail`: without positions, BM25 re-reads each hit."""
    import sqlite3  # the module main() chose

    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE ranked USING fts5(title, summary, body, tokenize='{TOKENIZERS[0]}', detail={detail})")
    db.executemany(
        "INSERT INTO ranked (title, summary, body) VALUES (?, 'One. Two. Three.', ?)",
        [(f"Bench story {number}", f"Edition {number}: {texts[number % len(texts)]}") for number in range(count)],
    )
    spent: dict[str, float] = {}
    for word in ("said", "police"):
        samples = []
        for _ in range(runs):
            started = time.process_time()
            db.execute("SELECT rowid FROM ranked WHERE ranked MATCH ? ORDER BY rank LIMIT 20", (f'"{word}"',)).fetchall()
            samples.append(time.process_time() - started)
        spent[word] = statistics.median(samples)
    db.close()
    return spent


def cpu_and_wall(work: Callable[[], object]) -> tuple[float, float, float]:
    """User CPU, system CPU and wall seconds that `work` took."""
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sqlite", default="sqlite3", help="the DB-API module of SQLite the store runs on")
    parser.add_argument("--only", action="append", help="only the variants whose name starts so (repeatable)")
    parser.add_argument("--no-floor", action="store_true", help="skip the tokenizers' floors")
    options = parser.parse_args()
    variants = [variant for variant in VARIANTS if not options.only or variant.name.startswith(tuple(options.only))]
    try:
        sys.modules["sqlite3"] = importlib.import_module(options.sqlite)  # before the store is imported
    except ImportError:
        sys.exit(f"search_index_variants: no module {options.sqlite!r} (pip install it first)")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import store_writes
    from digest.poll import BATCH_WRITES
    from digest.store import open_store
    from digest.store import sqlite as sqlite_store

    texts, origin = store_writes.source_texts()
    count, write = options.articles, store_writes.batches_of(BATCH_WRITES)
    samples: dict[str, list[tuple[float, float, float]]] = {variant.name: [] for variant in variants}
    queue = sqlite_store.SEARCH_QUEUE
    with tempfile.TemporaryDirectory() as folder:
        for run in range(options.runs):
            for number, variant in enumerate(variants):
                store = open_store(Path(folder) / f"{run}-{number}.sqlite3")
                if variant.setup is not None:
                    variant.setup(store.db, Path(folder))  # type: ignore[attr-defined]
                sqlite_store.SEARCH_QUEUE = variant.queue or queue

                def stored(store: Any = store, indexed: bool = variant.indexed) -> None:
                    write(store, store_writes.articles(count, texts))
                    if indexed:
                        store.index_for_search()

                samples[variant.name].append(cpu_and_wall(stored))
                sqlite_store.SEARCH_QUEUE = queue
                if variant.indexed and variant.setup is not without_index:
                    found = store.db.execute("SELECT count(*) FROM article_search WHERE article_search MATCH 'edition'")  # type: ignore[attr-defined]
                    assert found.fetchone()[0] == count, f"{variant.name}: not every article indexed"
                store.close()

    def ms(name: str, which: Callable[[tuple[float, float, float]], float]) -> float:
        return 1000 * statistics.median(which(sample) for sample in samples[name]) / count

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"{count} articles from {origin}, batches of up to {BATCH_WRITES}; SQLite {sys.modules['sqlite3'].sqlite_version}")
    print(f"medians of {options.runs} interleaved runs; load average at the end {load}")
    print("| variant | CPU ms/article | adds (CPU) | user | system | wall ms/article |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    base = ms(VARIANTS[0].name, lambda sample: sample[0] + sample[1]) if VARIANTS[0] in variants else None
    for variant in variants:
        cpu = ms(variant.name, lambda sample: sample[0] + sample[1])
        user, system = ms(variant.name, lambda sample: sample[0]), ms(variant.name, lambda sample: sample[1])
        wall = ms(variant.name, lambda sample: sample[2])
        added = f"{100 * (cpu / base - 1):+.0f}%" if base else "-"
        print(f"| {variant.name} | {cpu:.3f} | {added} | {user:.3f} | {system:.3f} | {wall:.3f} |")
    floors = (
        []
        if options.no_floor
        else [name for name in TOKENIZERS if not options.only or f"floor {name}".startswith(tuple(options.only))]
    )
    for tokenizer in floors:
        floor = 1000 * store_writes.tokenising_floor(count, texts, options.runs, tokenizer) / count
        share = f" ({100 * floor / base:.0f}%)" if base else ""
        print(f"floor, {tokenizer!r} tokenising and hashing alone: {floor:.3f} ms/article CPU{share}")
    for detail in ("full", "column", "none"):
        if not options.only or f"search detail={detail}".startswith(tuple(options.only)):
            spent = ranked_search(count, texts, options.runs, detail)
            costs = ", ".join(f"{word!r} {1000 * seconds:.1f} ms" for word, seconds in spent.items())
            print(f"search, detail={detail}, 20 best of {count} articles by BM25: {costs} CPU")


if __name__ == "__main__":
    main()
