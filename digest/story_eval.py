"""Story grouping quality on labelled news (`digest eval --stories`): B-cubed and pairwise figures.

The file's topics are split in two folds (odd and even topic numbers, the part of an id
before "_"); the shipped settings were tuned on the odd fold only (bench/bench_stories.py
--tune), so the even fold is unseen news. Beside them, the usual baseline: tf-idf
(sublinear tf, stop words) over title and whole text, complete link, its cosine threshold
tuned on the same fold.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
from collections import Counter
from functools import partial
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from digest import stories
from digest.errors import DigestError

# The baseline's cosine threshold, tuned on the odd fold like the shipped settings.
BASELINE_THRESHOLD = 0.10


class StoryEvalError(DigestError):
    """A labelled file that cannot be read."""


@dataclass(frozen=True)
class Labelled:
    """One document with its gold story."""

    id: str
    title: str
    text: str
    story: str

    @property
    def fold(self) -> str:
        """ "tune" for odd topic numbers, "test" for even ones (and ids without a number)."""
        topic = self.id.split("_", 1)[0]
        return "tune" if topic.isdigit() and int(topic) % 2 == 1 else "test"


@dataclass(frozen=True)
class Scores:
    """Clustering figures against the gold stories."""

    documents: int
    stories: int  # gold
    groups: int  # found
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    pairwise_precision: float
    pairwise_recall: float
    seconds: float


def load(path: Path) -> list[Labelled]:
    """Lines {"id", "title", "text", "story"}; a bad line names the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise StoryEvalError(f"{path}: cannot read: {error}") from None
    documents = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            documents.append(
                Labelled(str(record["id"]), str(record.get("title") or ""), str(record["text"]), str(record["story"]))
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StoryEvalError(f'{path}:{number}: expected a JSON object with "id", "text" and "story"') from None
    if not documents:
        raise StoryEvalError(f"{path}: no documents")
    return documents


def _pairs(sizes: Iterable[int]) -> float:
    return sum(n * (n - 1) / 2 for n in sizes)


def score(gold: Sequence[str], found: Sequence[int], seconds: float = 0.0) -> Scores:
    """B-cubed precision/recall/F1 over documents, and pairwise precision/recall."""
    both = Counter(zip(gold, found))
    gold_sizes, found_sizes = Counter(gold), Counter(found)
    precision = sum(count * count / found_sizes[f] for (g, f), count in both.items()) / len(gold)
    recall = sum(count * count / gold_sizes[g] for (g, f), count in both.items()) / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    right = _pairs(both.values())
    found_pairs, gold_pairs = _pairs(found_sizes.values()), _pairs(gold_sizes.values())
    return Scores(
        len(gold),
        len(gold_sizes),
        len(found_sizes),
        round(precision, 4),
        round(recall, 4),
        round(f1, 4),
        round(right / found_pairs, 4) if found_pairs else 1.0,
        round(right / gold_pairs, 4) if gold_pairs else 1.0,
        round(seconds, 3),
    )


def group_stories(documents: Sequence[Labelled], settings: stories.Settings = stories.DEFAULT) -> list[int]:
    """Our grouping, features made as the store makes them."""
    items = [stories.Item(stories.features(d.title, d.text)) for d in documents]
    return stories.group(items, settings)


_WORD = re.compile(r"[^\W\d_]{2,}")


def group_baseline(documents: Sequence[Labelled], threshold: float = BASELINE_THRESHOLD) -> list[int]:
    """tf-idf (sublinear tf, stop words) over title and whole text, cosine, complete link, all pairs."""
    vectors = []
    for document in documents:
        counts = Counter(w for w in _WORD.findall(f"{document.title}\n{document.text}".lower()) if w not in stories.STOP_WORDS)
        vectors.append({term: 1.0 + math.log(n) for term, n in counts.items()})
    weighted = stories._weighted(vectors, stories._idf(vectors))
    scored = {}
    for a in range(len(weighted)):
        for b in range(a + 1, len(weighted)):
            value = stories._cosine(weighted[a], weighted[b])
            if value >= threshold:
                scored[a, b] = value
    label = [0] * len(documents)
    for number, cluster in enumerate(
        sorted(stories._clusters(list(range(len(documents))), scored, threshold, "complete"), key=min)
    ):
        for index in cluster:
            label[index] = number
    return label


def measure(documents: Sequence[Labelled], method: Callable[[Sequence[Labelled]], list[int]]) -> Scores:
    """Run a grouping method and score it."""
    started = time.perf_counter()
    found = method(documents)
    return score([d.story for d in documents], found, time.perf_counter() - started)


def editions(
    documents: Sequence[Labelled],
    method: Callable[[Sequence[Labelled]], list[int]],
    count: int = 60,
    topics: int = 10,
    seed: int = 1,
) -> dict[str, float]:
    """Digest-sized editions drawn from the file: each takes `topics` topics and one to three documents of
    each of their two events, so every story has a look-alike beside it (the hard case for precision).
    Pairwise precision and recall over all editions' pairs, and the mean B-cubed F1."""
    rng = random.Random(seed)
    by_topic: dict[str, dict[str, list[Labelled]]] = {}
    for document in documents:
        by_topic.setdefault(document.id.split("_", 1)[0], {}).setdefault(document.story, []).append(document)
    right = joined = same = 0
    f1 = 0.0
    for _ in range(count):
        chosen = [
            d
            for topic in rng.sample(sorted(by_topic), min(topics, len(by_topic)))
            for event in by_topic[topic].values()
            for d in rng.sample(event, min(len(event), rng.randint(1, 3)))
        ]
        found = method(chosen)
        f1 += score([d.story for d in chosen], found).bcubed_f1
        for a, b in itertools.combinations(range(len(chosen)), 2):
            gold, got = chosen[a].story == chosen[b].story, found[a] == found[b]
            right += gold and got
            joined += got
            same += gold
    return {
        "editions": count,
        "pairwise_precision": round(right / joined, 4) if joined else 1.0,
        "pairwise_recall": round(right / same, 4) if same else 1.0,
        "bcubed_f1": round(f1 / count, 4),
    }


def evaluate(path: Path, settings: stories.Settings = stories.DEFAULT) -> dict[str, Any]:
    """Both methods on the tuning fold, the unseen fold and the whole file; and on digest-sized editions."""
    documents = load(path)
    parts = {
        "test (unseen)": [d for d in documents if d.fold == "test"],
        "tune": [d for d in documents if d.fold == "tune"],
        "all": list(documents),
    }
    report: dict[str, Any] = {
        "file": str(path),
        "settings": {**asdict(settings), "window": str(settings.window)},
        "baseline_threshold": BASELINE_THRESHOLD,
        "folds": {},
        "editions": {},
    }
    ours = lambda docs: group_stories(docs, settings)  # noqa: E731
    for name, part in parts.items():
        if not part:
            continue
        report["folds"][name] = {"stories": asdict(measure(part, ours)), "baseline": asdict(measure(part, group_baseline))}
        if name != "all":
            report["editions"][name] = {"stories": editions(part, ours), "baseline": editions(part, group_baseline)}
    return report


def format_report(report: dict[str, Any]) -> str:
    """A plain table of the report."""
    lines = [
        f"{report['file']}: story grouping (B-cubed and pairwise, over documents)",
        f"{'fold':<15} {'method':<9} {'docs':>5} {'gold':>5} {'found':>5} {'B3 P':>6} {'B3 R':>6} {'B3 F1':>6} "
        f"{'pair P':>6} {'pair R':>6} {'secs':>6}",
    ]
    for fold, methods in report["folds"].items():
        for method, s in methods.items():
            lines.append(
                f"{fold:<15} {method:<9} {s['documents']:>5} {s['stories']:>5} {s['groups']:>5} "
                f"{s['bcubed_precision']:>6.3f} {s['bcubed_recall']:>6.3f} {s['bcubed_f1']:>6.3f} "
                f"{s['pairwise_precision']:>6.3f} {s['pairwise_recall']:>6.3f} {s['seconds']:>6.2f}"
            )
    lines.append("")
    lines.append("Digest-sized editions (10 topics, 1-3 documents of each of a topic's two events; 60 per fold):")
    lines.append(f"{'fold':<15} {'method':<9} {'pair P':>6} {'pair R':>6} {'B3 F1':>6}")
    for fold, methods in report["editions"].items():
        for method, e in methods.items():
            lines.append(
                f"{fold:<15} {method:<9} {e['pairwise_precision']:>6.3f} {e['pairwise_recall']:>6.3f} {e['bcubed_f1']:>6.3f}"
            )
    lines.append("Settings were tuned on the tune fold (odd topics) only; the test fold is unseen.")
    return "\n".join(lines)


def tune(
    documents: Sequence[Labelled], grid: dict[str, Sequence[Any]], min_precision: float = 0.9
) -> list[tuple[Scores, stories.Settings]]:
    """Every combination of `grid` on `documents`, best B-cubed F1 first among those keeping pairwise precision."""
    results = []
    combos: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        combos = [{**c, key: v} for c in combos for v in values]
    for combo in combos:
        settings = replace(stories.DEFAULT, **combo)
        results.append((measure(documents, partial(group_stories, settings=settings)), settings))
    results.sort(key=lambda r: (r[0].pairwise_precision >= min_precision, r[0].bcubed_f1), reverse=True)
    return results
