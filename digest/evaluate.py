"""Summary quality and speed on articles with reference summaries (`digest eval`).

For each algorithm: ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 (rouge-score, Porter
stemmer, sentences separated by newlines), articles per second, and a paired
95% bootstrap interval for the per-article difference from Lead-3. rouge-score
is the optional extra `digest[eval]`; this module is the only one importing it.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from digest.config import SummaryConfig
from digest.errors import SummariseError
from digest.summarise import summarise

METRICS = ("rouge1", "rouge2", "rougeLsum")
METRIC_LABELS = {"rouge1": "R-1", "rouge2": "R-2", "rougeLsum": "R-Lsum"}
BASELINE = "lead"
INSTALL_HINT = 'digest eval needs rouge-score: pip install "digest[eval]" (or pip install rouge-score)'


@dataclass(frozen=True)
class Example:
    """One article with its reference summary (sentences separated by newlines)."""

    id: str
    text: str
    reference: str
    title: str = ""


@dataclass(frozen=True)
class Interval:
    """Mean difference from the baseline and its 95% bootstrap interval, in ROUGE points."""

    mean: float
    low: float
    high: float


@dataclass
class AlgorithmResult:
    """One algorithm's mean F1 per metric (0-100), speed and difference from Lead-3."""

    algorithm: str
    scores: dict[str, float]
    articles_per_second: float
    versus_lead: dict[str, Interval] = field(default_factory=dict)
    fallbacks: int = 0  # articles summarised by position (unsupported language, failure)


@dataclass
class EvalReport:
    """Everything `digest eval` measured, as plain data."""

    file: str
    articles: int
    sentences: int
    results: list[AlgorithmResult]
    resamples: int

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return asdict(self)


def load_examples(path: Path, limit: int | None = None) -> list[Example]:
    """Read JSON lines `{"id", "text", "summary"[, "title"]}`; a bad line names file and line."""
    examples = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SummariseError(f"{path}: cannot read: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(Example(str(row["id"]), str(row["text"]), str(row["summary"]), str(row.get("title") or "")))
        except (ValueError, KeyError, TypeError) as error:
            raise SummariseError(f"{path}:{number}: expected a JSON object with id, text and summary ({error})") from None
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise SummariseError(f"{path}: no articles")
    return examples


def make_scorer() -> Callable[[str, str], dict[str, float]]:
    """A function (reference, prediction) -> F1 per metric, 0-100; install hint when missing."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise SummariseError(INSTALL_HINT) from None
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)

    def score(reference: str, prediction: str) -> dict[str, float]:
        result = scorer.score(reference, prediction)
        return {metric: 100.0 * result[metric].fmeasure for metric in METRICS}

    return score


def evaluate(
    examples: Sequence[Example],
    algorithms: Iterable[str],
    sentences: int = 3,
    language: str = "auto",
    resamples: int = 1000,
    seed: int = 0,
    file: str = "",
    progress: Callable[[str, int], None] | None = None,
) -> EvalReport:
    """Summarise every example with each algorithm; ROUGE, speed and bootstrap against Lead-3."""
    score = make_scorer()
    wanted = list(dict.fromkeys(algorithms))
    run_order = wanted if BASELINE in wanted else [*wanted, BASELINE]
    per_article: dict[str, list[dict[str, float]]] = {}
    results: dict[str, AlgorithmResult] = {}
    for algorithm in run_order:
        config = SummaryConfig(algorithm=algorithm, sentences=sentences, language=language)
        summarise(examples[0].text, config, examples[0].title)  # warm up: imports, caches
        started = time.perf_counter()
        summaries = [summarise(e.text, config, e.title) for e in examples]
        elapsed = time.perf_counter() - started
        per_article[algorithm] = [score(e.reference, "\n".join(s.sentences)) for e, s in zip(examples, summaries)]
        results[algorithm] = AlgorithmResult(
            algorithm=algorithm,
            scores={m: statistics.fmean(row[m] for row in per_article[algorithm]) for m in METRICS},
            articles_per_second=len(examples) / elapsed if elapsed > 0 else float("inf"),
            fallbacks=sum(1 for s in summaries if s.algorithm != algorithm),
        )
        if progress is not None:
            progress(algorithm, len(examples))
    for algorithm in wanted:
        if algorithm != BASELINE:
            results[algorithm].versus_lead = {
                m: bootstrap_difference(
                    [row[m] for row in per_article[algorithm]],
                    [row[m] for row in per_article[BASELINE]],
                    resamples,
                    seed,
                )
                for m in METRICS
            }
    return EvalReport(file, len(examples), sentences, [results[a] for a in run_order], resamples)


def bootstrap_difference(system: Sequence[float], baseline: Sequence[float], resamples: int = 1000, seed: int = 0) -> Interval:
    """Mean of the paired per-article differences and its 95% percentile bootstrap interval."""
    differences = [a - b for a, b in zip(system, baseline, strict=True)]
    count = len(differences)
    generator = random.Random(seed)
    means = sorted(sum(generator.choices(differences, k=count)) / count for _ in range(resamples))
    low = means[int(0.025 * (resamples - 1))]
    high = means[int(round(0.975 * (resamples - 1)))]
    return Interval(statistics.fmean(differences), low, high)


def format_report(report: EvalReport) -> str:
    """The report as a Markdown table, one row per algorithm."""
    header = [
        "algorithm",
        *(METRIC_LABELS[m] for m in METRICS),
        *(f"{METRIC_LABELS[m]} vs Lead-3 [95% CI]" for m in METRICS),
        "articles/s",
    ]
    lines = [
        f"{report.articles} articles from {report.file or 'input'}, {report.sentences} sentences a summary, "
        f"ROUGE F1 x 100 (rouge-score, Porter stemmer), {report.resamples} paired bootstrap resamples",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for result in report.results:
        versus = [_interval(result.versus_lead[m]) if result.versus_lead else "baseline" for m in METRICS]
        cells = [result.algorithm, *(f"{result.scores[m]:.2f}" for m in METRICS), *versus, f"{result.articles_per_second:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval(interval: Interval) -> str:
    return f"{interval.mean:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"
