"""ROUGE evaluation: scores, the Lead-3 comparison, bad input, the missing extra, `digest eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, shared_path
from tests.inprocess import run_in_process
from digest.errors import SummariseError
from digest.evaluate import Example, bootstrap_difference, evaluate, format_report, load_examples

ARTICLES = [
    Example(
        "a",
        "The mayor opened a new bridge on Monday. Thousands of people walked across it. "
        "The bridge cost ten million dollars. It links the old town with the harbour. "
        "Traffic is expected to fall by a third.",
        "The mayor opened a new bridge on Monday.\nThousands of people walked across it.\nThe bridge cost ten million dollars.",
    ),
    Example(
        "b",
        "Heavy rain flooded the valley overnight. Rescue teams saved forty people from their roofs. "
        "Two bridges collapsed under the water. Schools will stay closed until Friday. "
        "The weather service expects more rain this weekend.",
        "Rescue teams saved forty people.\nSchools stay closed until Friday.",
    ),
]


def test_lead_on_references_that_are_the_lede_scores_full_marks() -> None:
    report = evaluate(ARTICLES[:1], ["lead"], sentences=3, language="english", resamples=50)
    (lead,) = report.results
    assert lead.algorithm == "lead"
    assert lead.scores == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeLsum": 100.0})
    assert lead.articles_per_second > 0
    assert lead.versus_lead == {}


def test_every_algorithm_is_compared_with_lead_three() -> None:
    report = evaluate(ARTICLES, ["news", "lexrank"], sentences=2, language="english", resamples=100)
    assert [r.algorithm for r in report.results] == ["news", "lexrank", "lead"]
    for result in report.results[:2]:
        assert set(result.versus_lead) == {"rouge1", "rouge2", "rougeLsum"}
        interval = result.versus_lead["rouge1"]
        assert interval.low <= interval.mean <= interval.high
        assert all(0 <= score <= 100 for score in result.scores.values())
    table = format_report(report)
    assert "| news |" in table and "| lead |" in table and "baseline" in table


def test_bootstrap_interval_of_a_constant_difference_is_that_difference() -> None:
    interval = bootstrap_difference([3.0, 4.0, 5.0], [1.0, 2.0, 3.0], resamples=200)
    assert (interval.mean, interval.low, interval.high) == (2.0, 2.0, 2.0)


def test_bootstrap_interval_narrows_with_more_articles() -> None:
    few = bootstrap_difference([1.0, -1.0] * 5, [0.0] * 10, resamples=500)
    many = bootstrap_difference([1.0, -1.0] * 500, [0.0] * 1000, resamples=500)
    assert few.low < many.low <= 0 <= many.high < few.high


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "text": "x", "summary": "y"}\n{"id": 2, "text": "no summary"}\n', encoding="utf-8")
    with pytest.raises(SummariseError, match=r"bad\.jsonl:2: expected a JSON object"):
        load_examples(path)


def test_missing_rouge_score_says_how_to_install_it() -> None:
    script = (
        "import sys; sys.modules['rouge_score'] = None\n"
        "from digest.evaluate import make_scorer\n"
        "try:\n    make_scorer()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("SummariseError")
    assert 'pip install "digest[eval]"' in result.stdout


def test_news_beats_lead_three_on_a_slice_of_the_dev_file() -> None:
    examples = load_examples(shared_path("data", "cnndm-dev.jsonl"), limit=60)
    report = evaluate(examples, ["news"], sentences=3, resamples=200)
    news, lead = report.results
    assert news.scores["rouge1"] > lead.scores["rouge1"]


def test_eval_command_prints_json_for_each_algorithm(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_text(
        "".join(json.dumps({"id": e.id, "text": e.text, "summary": e.reference}) + "\n" for e in ARTICLES), encoding="utf-8"
    )
    result = run_in_process("eval", str(path), "--algorithms", "news,textrank", "--sentences", "2", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["algorithm"] for r in report["results"]] == ["news", "textrank", "lead"]
    assert report["articles"] == 2 and report["sentences"] == 2


def test_eval_command_rejects_an_unknown_algorithm_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_text(json.dumps({"id": "a", "text": ARTICLES[0].text, "summary": ARTICLES[0].reference}) + "\n", encoding="utf-8")
    result = run_in_process("eval", str(path), "--algorithms", "news,bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "bogus" in result.stderr and "Traceback" not in result.stderr
