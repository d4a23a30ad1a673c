"""Story grouping: speed against summarising the same articles, and the tuning that set the defaults.

    python bench/bench_stories.py                 # 2,000 articles: features, grouping, summaries (one core)
    python bench/bench_stories.py --tune          # the grid searched on the tune fold of ecb-dev.jsonl

The 2,000 articles: the 772 of ../shared/data/ecb-dev.jsonl (topics of 10-30 articles
each: many candidate pairs) and 1,228 CNN stories of cnndm-dev.jsonl, of which 728
are the same stories again with "Edition k:" before them (near copies, as syndication
makes). Quality figures come from `digest eval --stories ../shared/data/ecb-dev.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from corpus import source_texts, stories as bench_stories  # noqa: E402

from digest import stories, story_eval  # noqa: E402
from digest.config import SummaryConfig  # noqa: E402
from digest.summarise import summarise  # noqa: E402

ECB = REPO.parent / "shared" / "data" / "ecb-dev.jsonl"  # --data DIR points elsewhere (a worktree)


def articles(count: int) -> list[tuple[str, str]]:
    """(title, text) of `count` articles: ECB first, then CNN stories and their near copies."""
    found = [(d.title, d.text) for d in story_eval.load(ECB)] if ECB.is_file() else []
    texts, _ = source_texts()
    found += [(s.title, s.body) for s in bench_stories(max(0, count - len(found)), texts)]
    return found[:count]


def speed(count: int, runs: int) -> None:
    """Median CPU seconds (this process: the machine is shared) to make features, to group, and to
    summarise the same articles, on one core."""
    corpus = articles(count)
    timings: dict[str, list[float]] = {"features": [], "group": []}
    for _ in range(runs):
        started = time.process_time()
        items = [stories.Item(stories.features(title, text)) for title, text in corpus]
        timings["features"].append(time.process_time() - started)
        started = time.process_time()
        labels = stories.group(items)
        timings["group"].append(time.process_time() - started)
    settings = SummaryConfig(language="english")
    started = time.process_time()
    for title, text in corpus:
        summarise(text, settings, title=title, language="english")
    summarising = time.process_time() - started
    print(
        json.dumps(
            {
                "articles": len(corpus),
                "stories_found": len(set(labels)),
                "runs": runs,
                "features_seconds_median": round(statistics.median(timings["features"]), 3),
                "group_seconds_median": round(statistics.median(timings["group"]), 3),
                "group_seconds_all": [round(t, 3) for t in timings["group"]],
                "summarise_seconds_one_run": round(summarising, 2),
                "sources": f"{ECB.name if ECB.is_file() else 'no ECB'} + {source_texts()[1]}",
            },
            indent=2,
        )
    )


def tune() -> None:
    """The last grid searched, on the tune fold (odd topics) only, and on the 500 CNN stories (no
    labels: how many groups of several stories form, each read by eye). README, "Stories", tells
    how the defaults were chosen from it."""
    documents = [d for d in story_eval.load(ECB) if d.fold == "tune"]
    texts, _ = source_texts()
    cnn = [stories.Item(stories.features("", text)) for text in texts]
    print(
        "centring threshold small_topic | tune fold: B3 F1, pair P | tune editions: pair P, pair R | CNN: groups of 2+, articles in them"
    )
    for centring in (0.6, 1.0):
        for threshold in (0.025, 0.03, 0.035):
            for small_topic in (6, 12):
                settings = replace(stories.DEFAULT, centring=centring, threshold=threshold, small_topic=small_topic)
                method = lambda docs, s=settings: story_eval.group_stories(docs, s)  # noqa: E731
                whole = story_eval.measure(documents, method)
                small = story_eval.editions(documents, method, count=30)
                sizes = Counter(stories.group(cnn, settings)).values()
                print(
                    centring,
                    threshold,
                    small_topic,
                    "|",
                    whole.bcubed_f1,
                    whole.pairwise_precision,
                    "|",
                    small["pairwise_precision"],
                    small["pairwise_recall"],
                    "|",
                    sum(1 for n in sizes if n > 1),
                    sum(n for n in sizes if n > 1),
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="search the settings' grid on the tune fold")
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="the folder holding ecb-dev.jsonl and cnndm-dev.jsonl")
    arguments = parser.parse_args()
    if arguments.data:
        global ECB
        ECB = arguments.data / "ecb-dev.jsonl"
        import corpus

        corpus.CNNDM = arguments.data / "cnndm-dev.jsonl"
    if arguments.tune:
        tune()
    else:
        speed(arguments.articles, arguments.runs)


if __name__ == "__main__":
    main()
