"""Summariser benchmark: speed per algorithm, `digest summarize --jsonl` against stock sumy
LexRank, and the tuning of the news summariser's weights, all on ../shared/data/cnndm-dev.jsonl.

    python bench/bench_summarise.py                      # speed table + CLI comparison
    python bench/bench_summarise.py --algorithms all     # speed of every algorithm
    python bench/bench_summarise.py --tune               # coordinate search of NEWS_WEIGHTS

Speed is articles per second of CPU time of this one process (one core), the median of
--runs passes after a warm-up pass; wall-clock figures are printed beside it. The stock
sumy LexRank baseline imports sumy and nltk directly (as a user of sumy would); sumy's
stock Tokenizer downloads Punkt data, so it gets NLTK's Punkt with the same bundled
English parameters, and NLTK's own word tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
DEV_FILE = REPO.parent / "shared" / "data" / "cnndm-dev.jsonl"
sys.path.insert(0, str(REPO))

from digest.config import ALGORITHMS, SummaryConfig  # noqa: E402


def machine() -> str:
    """CPU model, cores, Python and date: what a figure in BENCHMARKS.md must carry."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load:.1f} at start"
    )


def load_texts(limit: int | None) -> list[dict[str, str]]:
    if not DEV_FILE.exists():
        sys.exit(f"{DEV_FILE} is absent: it holds third-party data that only the developers' checkout has")
    rows = [json.loads(line) for line in DEV_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def rate(work: Callable[[], None], articles: int, runs: int) -> tuple[float, float]:
    """Median articles/s over `runs` passes, by CPU time and by wall clock, after a warm-up."""
    work()
    cpu, wall = [], []
    for _ in range(runs):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        work()
        cpu.append(articles / (time.process_time() - started_cpu))
        wall.append(articles / (time.perf_counter() - started_wall))
    return statistics.median(cpu), statistics.median(wall)


def stock_lexrank() -> Callable[[str], list[str]]:
    """sumy's LexRank as its README shows it, with Punkt parameters that need no download."""
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer
    from sumy.nlp.stemmers import Stemmer
    from sumy.nlp.tokenizers import Tokenizer
    from sumy.parsers.plaintext import PlaintextParser
    from sumy.summarizers.lex_rank import LexRankSummarizer
    from sumy.utils import get_stop_words

    from digest.tokenize import sentence_splitter

    class StockTokenizer(Tokenizer):
        def _get_sentence_tokenizer(self, language: str) -> Any:
            return PunktSentenceTokenizer(sentence_splitter("english")._params)

        def _get_word_tokenizer(self, language: str) -> Any:
            return NLTKWordTokenizer()

    tokenizer = StockTokenizer("english")
    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")

    def summarise(text: str) -> list[str]:
        document = PlaintextParser.from_string(text, tokenizer).document
        return [str(sentence) for sentence in summarizer(document, 3)]

    return summarise


def speed(rows: list[dict[str, str]], algorithms: list[str], runs: int) -> None:
    from digest.summarise import summarise

    print("| algorithm | articles/s (CPU, one core) | articles/s (wall) |\n| --- | --- | --- |")
    for algorithm in algorithms:
        config = SummaryConfig(algorithm=algorithm)
        cpu, wall = rate(lambda: [summarise(row["text"], config) for row in rows], len(rows), runs)
        print(f"| {algorithm} | {cpu:.0f} | {wall:.0f} |", flush=True)
    stock = stock_lexrank()
    cpu, wall = rate(lambda: [stock(row["text"]) for row in rows], len(rows), runs)
    print(f"| stock sumy LexRank | {cpu:.0f} | {wall:.0f} |", flush=True)


def tokenizers(rows: list[dict[str, str]], runs: int) -> None:
    """Our sentence and word splitting against NLTK's stock Punkt and word tokenizer: same output?"""
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    from digest.tokenize import _WORD, sentence_splitter, words

    texts = [row["text"] for row in rows]
    ours = sentence_splitter("english")
    stock = PunktSentenceTokenizer(ours._params)
    ours_split = [ours.tokenize(t) for t in texts]
    same = sum(a == stock.tokenize(t) for a, t in zip(ours_split, texts))
    sentences = [s for split in ours_split for s in split]
    nltk_words = NLTKWordTokenizer()
    same_words = sum(words(s) == tuple(w for w in nltk_words.tokenize(s) if _WORD.match(w)) for s in sentences)
    print("\n| splitting, per article | ms (CPU, median) | same output as stock |\n| --- | --- | --- |")
    for label, work, agreement in [
        ("NLTK Punkt, stock patterns", lambda: [stock.tokenize(t) for t in texts], ""),
        ("NLTK Punkt, patterns on stdlib re (ours)", lambda: [ours.tokenize(t) for t in texts], f"{same}/{len(texts)} articles"),
        ("NLTK word tokenizer (what sumy uses)", lambda: [nltk_words.tokenize(s) for s in sentences], ""),
        ("digest.tokenize.words (ours)", lambda: [words(s) for s in sentences], f"{same_words}/{len(sentences)} sentences"),
    ]:
        per_second, _ = rate(work, len(texts), runs)
        print(f"| {label} | {1000 / per_second:.2f} | {agreement} |", flush=True)


def worst_case(rows: list[dict[str, str]]) -> None:
    """Slowest single summary per algorithm on one huge input (the dev file's first 60 articles
    run together, ~200 kB), at 3 and at 50 sentences: the input caps keep each under a second."""
    from digest.summarise import summarise

    text = "\n\n".join(row["text"] for row in rows[:60])
    summarise("Warm up. Imports first.", SummaryConfig())
    print(f"\n| algorithm | seconds for one {len(text) // 1000} kB article (3 / 50 sentences) |\n| --- | --- |")
    for algorithm in ALGORITHMS:
        seconds = []
        for count in (3, 50):
            started = time.perf_counter()
            summarise(text, SummaryConfig(algorithm=algorithm, sentences=count))
            seconds.append(time.perf_counter() - started)
        print(f"| {algorithm} | {seconds[0]:.2f} / {seconds[1]:.2f} |", flush=True)


def cli_comparison(rows: list[dict[str, str]], runs: int) -> None:
    """Wall time, process start included, of `digest summarize --jsonl` vs stock LexRank on the same file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "articles.jsonl"
        path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), encoding="utf-8")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        environment["PYTHONPATH"] = str(REPO)
        commands = {
            "digest summarize --jsonl (news)": [sys.executable, "-m", "digest", "summarize", "--jsonl", str(path)],
            "stock sumy LexRank": [sys.executable, __file__, "--stock-jsonl", str(path)],
        }
        print(f"\n| {len(rows)} articles, whole process | seconds (median of {runs}) |\n| --- | --- |")
        for label, command in commands.items():
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                result = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True)
                times.append(time.perf_counter() - started)
                if result.returncode != 0 or len(result.stdout.splitlines()) != len(rows):
                    sys.exit(f"{label} failed: {result.stderr.strip()[-500:]}")
            print(f"| {label} | {statistics.median(times):.2f} |", flush=True)


def stock_jsonl(path: Path) -> None:
    """What the stock baseline process does: read lines, summarise, print lines."""
    summarise = stock_lexrank()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        print(json.dumps({"id": record["id"], "summary": summarise(record["text"])}))


# Where the search starts: hand-set weights from before any tuning (the first commit's).
START: dict[str, float] = {
    "position": 1.0,
    "decay": 0.35,
    "centrality": 0.5,
    "backward": -0.3,
    "threshold": 0.1,
    "title": 0.3,
    "short": 8,
    "short_penalty": 0.5,
    "long": 25,
    "long_penalty": 0.0,
    "quote_penalty": 0.0,
    "question_penalty": 0.0,
    "redundancy": 0.5,
}
GRID: dict[str, list[float]] = {
    "decay": [0.1, 0.15, 0.2, 0.3, 0.4, 0.6],
    "centrality": [0, 0.5, 1.0, 1.5, 2, 3, 4],
    "backward": [-1.0, -0.5, -0.3, 0, 0.5],
    "threshold": [0, 0.05, 0.1, 0.2, 0.3],
    "short": [4, 6, 8, 10, 12],
    "short_penalty": [0, 0.25, 0.5, 1.0],
    "long": [15, 20, 25, 30, 40],
    "long_penalty": [0, 0.1, 0.25, 0.5, 1.0],
    "quote_penalty": [0, 0.1, 0.2, 0.4, 0.8],
    "question_penalty": [0, 0.1, 0.2, 0.4, 0.8],
    "redundancy": [0.3, 0.4, 0.5, 0.6, 1.01],
}


def tune(rows: list[dict[str, str]], rounds: int) -> None:
    """Coordinate search of NEWS_WEIGHTS for mean ROUGE F1 (R-1, R-2, R-Lsum), with 2-fold check."""
    from digest.evaluate import make_scorer
    from digest.summarise import NEWS_WEIGHTS, news_features, pick_news, prepare

    score = make_scorer()
    prepared = [prepare(row["text"], "", "english") for row in rows]
    features = [news_features(p) for p in prepared]
    memo: dict[tuple[int, tuple[int, ...]], float] = {}

    def quality(weights: dict[str, float], indexes: range) -> float:
        total = 0.0
        for i in indexes:
            count = len(prepared[i].candidates)
            picked = tuple(sorted(pick_news(features[i], 3, weights))) if count > 3 else tuple(range(count))
            if (i, picked) not in memo:
                prediction = "\n".join(str(prepared[i].candidates[j]) for j in picked)
                memo[i, picked] = statistics.fmean(score(rows[i]["summary"], prediction).values())
            total += memo[i, picked]
        return total / len(indexes)

    def search(indexes: range) -> dict[str, float]:
        weights, best = dict(START), quality(START, indexes)
        for _ in range(rounds):
            for key, values in GRID.items():
                for value in values:
                    candidate = {**weights, key: value}
                    if (result := quality(candidate, indexes)) > best + 1e-9:
                        weights, best = candidate, result
        return weights

    lead = {**START, "position": 1e6, "redundancy": 2.0}
    half = len(rows) // 2
    first, second, everything = range(half), range(half, len(rows)), range(len(rows))
    print(
        "mean of R-1, R-2, R-Lsum F1; Lead-3 on first half "
        f"{quality(lead, first):.2f}, second half {quality(lead, second):.2f}, all {quality(lead, everything):.2f}"
    )
    on_first, on_second = search(first), search(second)
    print(f"tuned on the first half, scored on the second: {quality(on_first, second):.2f}")
    print(f"tuned on the second half, scored on the first: {quality(on_second, first):.2f}")
    tuned = search(everything)
    print(f"start weights, all: {quality(START, everything):.2f}")
    print(f"tuned on all: {quality(tuned, everything):.2f} (shipped weights: {quality(NEWS_WEIGHTS, everything):.2f})")
    print(json.dumps(tuned, indent=4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithms", default="news,lead,lexrank", help='comma-separated, or "all"')
    parser.add_argument("--runs", type=int, default=5, help="timed passes; the median is reported")
    parser.add_argument("--limit", type=int, help="only the first N articles")
    parser.add_argument("--skip-cli", action="store_true", help="skip the whole-process comparison")
    parser.add_argument("--tune", action="store_true", help="search the news weights instead")
    parser.add_argument("--rounds", type=int, default=3, help="coordinate-search rounds for --tune")
    parser.add_argument("--stock-jsonl", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.stock_jsonl:
        stock_jsonl(options.stock_jsonl)
        return
    rows = load_texts(options.limit)
    print(f"{len(rows)} articles of {DEV_FILE.name}; {machine()}\n")
    if options.tune:
        tune(rows, options.rounds)
        return
    algorithms = list(ALGORITHMS) if options.algorithms == "all" else options.algorithms.split(",")
    speed(rows, algorithms, options.runs)
    tokenizers(rows, options.runs)
    worst_case(rows)
    if not options.skip_cli:
        cli_comparison(rows, max(1, min(options.runs, 3)))


if __name__ == "__main__":
    main()
