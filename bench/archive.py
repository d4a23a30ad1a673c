"""The archive: rebuilding a 1,000-edition archive, and adding one edition to it.

    python bench/archive.py [--editions 1000] [--articles 10] [--runs 3]

Fills a fresh SQLite store with N editions of a digest (each of A articles with three-sentence
summaries, one edition a day) without summarising anything, then times, as medians of --runs:
- `digest archive rebuild` into an empty folder (every page, month page and feed written);
- the same rebuild again with nothing changed (every file compared, none written);
- one more edition made and delivered by the outbox (its files, then the archive channel), on a
  fresh copy of the store and of the built archive each run: wall time, and the archive's files
  written (the rest are left alone).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from digest import config as config_module  # noqa: E402
from digest import pipeline  # noqa: E402
from digest.models import Article, Summary  # noqa: E402
from digest.store import Store, open_store  # noqa: E402

START = datetime(2024, 1, 1, 7, tzinfo=timezone.utc)
SUMMARY = Summary(
    sentences=("The council met on Monday.", "Works start in spring.", "Residents welcomed it."),
    algorithm="news",
    language="english",
)


def make_config(root: Path) -> config_module.Config:
    (root / "news").mkdir(parents=True, exist_ok=True)
    (root / "config").mkdir(exist_ok=True)
    path = root / "config" / "digest.toml"
    path.write_text(
        textwrap.dedent("""
        [store]
        path = "../state/digest.sqlite3"

        [[sources]]
        name = "bench"
        type = "files"
        path = "../news"

        [[digests]]
        name = "daily"
        output_dir = "../out"
        formats = ["html"]
        base_url = "https://news.example.org/daily/"
        """),
        encoding="utf-8",
    )
    return config_module.load(path)


def add_edition(store: Store, number: int, articles: int) -> int:
    """Store `articles` new articles and make edition `number` of them; returns its id."""
    moment = START + timedelta(days=number)
    with store.transaction():
        for index in range(articles):
            store.add_article(
                Article(
                    source="bench",
                    identity=f"e{number}-a{index}",
                    version="1",
                    published=moment - timedelta(minutes=index),
                    title=f"Edition {number}, story {index}: the harbour works reach a new stage",
                    body=f"Story {index} of edition {number}. " * 20,
                    url=f"https://example.org/{number}/{index}",
                ),
                SUMMARY,
                moment,
            )
    edition = store.create_edition("daily", ["bench"], 1000, moment, [])
    assert edition is not None and edition.id is not None
    return edition.id


def timed(action: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()  # type: ignore[operator]
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editions", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as scratch:
        root = Path(scratch)
        config = make_config(root)
        store = open_store(config.store)
        for number in range(options.editions):
            add_edition(store, number, options.articles)
        store.close()
        print(f"{options.editions} editions of {options.articles} articles stored", flush=True)

        full, again = [], []
        for _ in range(options.runs):
            shutil.rmtree(root / "out", ignore_errors=True)
            seconds, reports = timed(lambda: pipeline.rebuild_archives(config))
            full.append(seconds)
            written = len(reports[0][1].written)  # type: ignore[index]
            seconds, reports = timed(lambda: pipeline.rebuild_archives(config))
            again.append(seconds)
            unchanged = reports[0][1]  # type: ignore[index]
            assert not unchanged.written
        print(
            f"rebuild from nothing: median {statistics.median(full):.2f} s, {written} files written "
            f"(runs: {', '.join(f'{s:.2f}' for s in full)})"
        )
        print(
            f"rebuild, nothing changed: median {statistics.median(again):.2f} s, 0 written, "
            f"{unchanged.unchanged} compared (runs: {', '.join(f'{s:.2f}' for s in again)})"
        )

        built, kept = root / "built", root / "kept.sqlite3"
        shutil.copytree(root / "out", built)
        shutil.copy(config.store.path, kept)
        adds, files = [], 0
        for _ in range(options.runs):
            shutil.rmtree(root / "out")
            shutil.copytree(built, root / "out", copy_function=shutil.copy2)
            for suffix in ("-wal", "-shm"):
                Path(f"{config.store.path}{suffix}").unlink(missing_ok=True)
            shutil.copy(kept, config.store.path)
            store = open_store(config.store)
            try:
                moment = START + timedelta(days=options.editions)
                with store.transaction():
                    for index in range(options.articles):
                        store.add_article(
                            Article(
                                source="bench",
                                identity=f"new-{index}",
                                version="1",
                                title=f"New story {index}",
                                body=f"New story {index}. " * 20,
                                published=moment,
                            ),
                            SUMMARY,
                            moment,
                        )
                seconds, deliveries = timed(
                    lambda: (
                        pipeline.make_editions(config, store, config.digests, moment),
                        pipeline.deliver(config, store, moment, honour_backoff=False),
                    )[1]
                )
            finally:
                store.close()
            adds.append(seconds)
            [archived] = [d for d in deliveries if d.channel == "archive"]  # type: ignore[union-attr]
            files = int(archived.to.split("(")[1].split()[0])
        total = sum(1 for p in (root / "out").rglob("*") if p.is_file())
        print(
            f"add one edition (make it, write its page, deliver to the archive): median {statistics.median(adds):.3f} s, "
            f"{files} archive files written of {total} (runs: {', '.join(f'{s:.3f}' for s in adds)})"
        )


if __name__ == "__main__":
    main()
