"""Story grouping: speed against summarising the same articles, and the tuning that set the defaults.

    python bench/bench_stories.py                 # 2,000 articles: features, grouping, summaries (one core)
    python bench/bench_stories.py --sizes 1000,2000,4000,8000   # grouping time as the articles grow
    python bench/bench_stories.py --tune          # the grid searched on the tune fold of ecb-dev.jsonl

The 2,000 articles: the 772 of ../shared/data/ecb-dev.jsonl (topics of 10-30 articles
each: many candidate pairs) and 1,228 CNN stories of cnndm-dev.jsonl, of which 728
are the same stories again with "Edition k:" before them (near copies, as syndication
makes). Quality figures come from `digest eval --stories ../shared/data/ecb-dev.jsonl`.

--sizes groups two corpora at each size: the same articles (ECB, then CNN stories with ever more
near copies of the 500, so the stories found stop growing past 2,000), and the first 1,000 articles
repeated, each repetition's rare terms and text hash marked with its number (other events in the same
words: the stories found, pairs and topics grow with the articles, as in a larger edition).
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
from digest.models import StoryFeatures  # noqa: E402
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
    summarise the same articles, on one core; each run does all three, so grouping and summarising
    meet the same load, and the ratio is taken run by run."""
    corpus = articles(count)
    timings: dict[str, list[float]] = {"features": [], "group": [], "summarise": []}
    settings = SummaryConfig(language="english")
    for _ in range(runs):
        started = time.process_time()
        items = [stories.Item(stories.features(title, text)) for title, text in corpus]
        timings["features"].append(time.process_time() - started)
        started = time.process_time()
        labels = stories.group(items)
        timings["group"].append(time.process_time() - started)
        started = time.process_time()
        for title, text in corpus:
            summarise(text, settings, title=title, language="english")
        timings["summarise"].append(time.process_time() - started)
    ratios = [group / summarising for group, summarising in zip(timings["group"], timings["summarise"])]
    print(
        json.dumps(
            {
                "articles": len(corpus),
                "stories_found": len(set(labels)),
                "runs": runs,
                "features_seconds_median": round(statistics.median(timings["features"]), 3),
                "group_seconds_median": round(statistics.median(timings["group"]), 3),
                "group_seconds_all": [round(t, 3) for t in timings["group"]],
                "summarise_seconds_median": round(statistics.median(timings["summarise"]), 3),
                "summarise_seconds_all": [round(t, 3) for t in timings["summarise"]],
                "group_to_summarise_median": round(statistics.median(ratios), 3),
                "sources": f"{ECB.name if ECB.is_file() else 'no ECB'} + {source_texts()[1]}",
            },
            indent=2,
        )
    )


def repeated(items: list[stories.Item], count: int) -> list[stories.Item]:
    """`count` items: `items` again and again, each repetition's rare terms (in at most stories.RARE of `items`, those
    that pair articles) and text hash marked with its number: other events told in the same words, so as many stories
    per article at every size, common words as common, rare ones as rare."""
    frequency = Counter(term for item in items for term in item.features.terms)
    common = {term for term, count in frequency.items() if count > stories.RARE}

    def marked(vector: dict[str, float], number: int) -> dict[str, float]:
        return {term if term in common else f"{term}#{number}": value for term, value in vector.items()}

    found = list(items[:count])
    for number in range(1, -(-count // len(items))):
        for item in items[: count - len(found)]:
            found.append(
                stories.Item(
                    StoryFeatures(
                        terms=marked(item.features.terms, number),
                        names=marked(item.features.names, number),
                        words=item.features.words,
                        text_hash=f"{item.features.text_hash}#{number}",
                    ),
                    item.published,
                )
            )
    return found


def sizes(counts: list[int], runs: int) -> None:
    """Median CPU seconds to group each count of articles, of both corpora (module docstring): grouping should grow
    with the articles, about twice the time for twice as many."""
    largest = articles(max(counts))
    items = [stories.Item(stories.features(title, text)) for title, text in largest]
    corpora = {"same articles": items, "1,000 repeated": repeated(items[:1000], max(counts))}
    print("corpus | articles | stories found | group CPU s (median) | ms per article | runs")
    for name, corpus in corpora.items():
        for count in counts:
            timings = []
            for _ in range(runs):
                started = time.process_time()
                labels = stories.group(corpus[:count])
                timings.append(time.process_time() - started)
            median = statistics.median(timings)
            print(
                name,
                count,
                len(set(labels)),
                round(median, 3),
                round(1000 * median / count, 3),
                [round(t, 3) for t in timings],
                sep=" | ",
                flush=True,
            )


def tune() -> None:
    """The last grid searched (the second pass that joins fragments, and the method without it), on the tune fold
    (odd topics) only; the even topics are never read here. Two cross-validations inside it: two halves (A: topics
    1, 5, 9, ..., number % 4 == 1; B: 3, 7, 11, ...), the settings best on one (B-cubed F1 among those with pairwise
    precision at least 0.93) scored on the other, both with the first listed of equals and averaged over equals;
    and leaving one topic out (all odd topics grouped together, each topic scored with the settings best on the other
    fifteen, equals averaged: B-cubed over the documents). README, "Stories", tells how the defaults were chosen."""
    documents = [d for d in story_eval.load(ECB) if d.fold == "tune"]
    made = {d.id: stories.features(d.title, d.text) for d in documents}
    halves = {
        name: [d for d in documents if int(d.id.split("_", 1)[0]) % 4 == remainder] for name, remainder in (("A", 1), ("B", 3))
    }
    grid = {"fragment": (1, 2, 3), "fragment_ratio": (1.0, 1.1, 1.25, 1.5, 2.0, 3.0), "fragment_share": (0.1, 0.2, 0.3, 0.5)}
    combos: list[dict[str, float]] = [{}]
    for key, values in grid.items():
        combos = [{**combo, key: value} for combo in combos for value in values]
    combos.insert(0, {"fragment": 0})  # the second pass off: the method before it

    def grouped(part: list[story_eval.Labelled], settings: stories.Settings) -> list[int]:
        return stories.group([stories.Item(made[d.id]) for d in part], settings)

    print("settings | A: B3 F1, pair P | B: B3 F1, pair P")
    results = []
    per_document = []  # for each combo: B-cubed precision and recall of each odd document, all odd topics grouped at once
    gold = [d.story for d in documents]
    for combo in combos:
        settings = replace(stories.DEFAULT, **combo)
        scores = {name: story_eval.score([d.story for d in part], grouped(part, settings)) for name, part in halves.items()}
        results.append((combo, scores))
        print(
            *(f"{key}={value}" for key, value in combo.items()),
            "|",
            *(f"{s.bcubed_f1} {s.pairwise_precision} |" for s in scores.values()),
            flush=True,
        )
        found = grouped(documents, settings)
        both, gold_sizes, found_sizes = Counter(zip(gold, found)), Counter(gold), Counter(found)
        per_document.append([(both[g, f] / found_sizes[f], both[g, f] / gold_sizes[g]) for g, f in zip(gold, found)])

    def equals_on(name: str) -> list[int]:
        eligible = [n for n, (_, scores) in enumerate(results) if scores[name].pairwise_precision >= 0.93]
        top = max(results[n][1][name].bcubed_f1 for n in eligible)
        return [n for n in eligible if results[n][1][name].bcubed_f1 == top]

    for chosen_on, scored_on in (("A", "B"), ("B", "A")):
        equals = equals_on(chosen_on)
        first = results[equals[0]]
        mean_f1 = statistics.mean(results[n][1][scored_on].bcubed_f1 for n in equals)
        mean_precision = statistics.mean(results[n][1][scored_on].pairwise_precision for n in equals)
        print(
            f"chosen on {chosen_on}: first of {len(equals)} equals {first[0]} -> {scored_on}: "
            f"{first[1][scored_on].bcubed_f1} {first[1][scored_on].pairwise_precision}; "
            f"averaged over the equals -> {mean_f1:.4f} {mean_precision:.4f}"
        )

    def f1(precision: float, recall: float) -> float:
        return 2 * precision * recall / (precision + recall)

    topics = [d.id.split("_", 1)[0] for d in documents]
    for label, chosen in (("off", lambda topic: [0]), ("left-out topic", None)):
        precision = recall = 0.0
        for topic in sorted(set(topics), key=int):
            inside = [i for i, t in enumerate(topics) if t != topic]
            outside = [i for i, t in enumerate(topics) if t == topic]
            if chosen is None:
                figures = [
                    f1(
                        statistics.mean(per_document[n][i][0] for i in inside),
                        statistics.mean(per_document[n][i][1] for i in inside),
                    )
                    for n in range(len(combos))
                ]
                equals = [n for n, figure in enumerate(figures) if figure == max(figures)]
            else:
                equals = chosen(topic)
            precision += sum(statistics.mean(per_document[n][i][0] for n in equals) for i in outside)
            recall += sum(statistics.mean(per_document[n][i][1] for n in equals) for i in outside)
        precision, recall = precision / len(documents), recall / len(documents)
        print(f"leave one topic out, {label}: B3 P {precision:.4f} R {recall:.4f} F1 {f1(precision, recall):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="search the settings' grid on the tune fold")
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", help="comma-separated article counts: grouping time at each (e.g. 1000,2000,4000,8000)")
    parser.add_argument("--data", type=Path, help="the folder holding ecb-dev.jsonl and cnndm-dev.jsonl")
    arguments = parser.parse_args()
    if arguments.data:
        global ECB
        ECB = arguments.data / "ecb-dev.jsonl"
        import corpus

        corpus.CNNDM = arguments.data / "cnndm-dev.jsonl"
    if arguments.tune:
        tune()
    elif arguments.sizes:
        sizes([int(count) for count in arguments.sizes.split(",")], arguments.runs)
    else:
        speed(arguments.articles, arguments.runs)


if __name__ == "__main__":
    main()
