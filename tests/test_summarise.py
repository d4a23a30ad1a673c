"""summarise(): every algorithm, document order, no repeats, no cut sentences, length caps."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from digest.config import ALGORITHMS as CONFIG_ALGORITHMS, SummaryConfig
from digest.errors import SummariseError
from digest.summarise import ALGORITHMS, MAX_CHARS, summarise

REPO = Path(__file__).resolve().parents[1]
SEED = next((REPO / "seeds").glob("000_*.txt"))

ARTICLE = """The city council approved a new budget on Tuesday after months of debate.

The budget adds money for schools, roads and public transport across the city. Council members said the vote was close.

Mayor Jane Doe said the budget would help families. "This is a good day for the city," she said.

Critics said the plan raised taxes too much. They promised to challenge the budget in court next year.

The city council approved a new budget on Tuesday after months of debate.

Opponents of the plan held a protest outside City Hall on Wednesday morning. Police said about 200 people attended.
"""


@pytest.mark.parametrize("algorithm", CONFIG_ALGORITHMS)
def test_every_algorithm_gives_distinct_whole_sentences_in_document_order(algorithm: str) -> None:
    summary = summarise(ARTICLE, SummaryConfig(algorithm=algorithm, sentences=3), title="City approves budget")
    assert 1 <= len(summary.sentences) <= 3
    assert len(set(summary.sentences)) == len(summary.sentences)
    positions = [ARTICLE.index(s) for s in summary.sentences]
    assert positions == sorted(positions)
    assert all(s.endswith((".", '"')) for s in summary.sentences)
    assert summary.language == "english"


def test_registry_matches_the_algorithms_the_config_accepts() -> None:
    assert set(ALGORITHMS) == set(CONFIG_ALGORITHMS)


def test_short_text_is_returned_whole_and_never_padded() -> None:
    summary = summarise("Only one sentence here.", SummaryConfig(sentences=3))
    assert summary.sentences == ("Only one sentence here.",)


def test_empty_text_gives_an_empty_summary_with_a_note() -> None:
    summary = summarise("  \n ", SummaryConfig())
    assert summary.sentences == ()
    assert "no text" in summary.note


def test_unknown_algorithm_is_a_summarise_error() -> None:
    with pytest.raises(SummariseError, match="bogus"):
        summarise(ARTICLE, SummaryConfig(algorithm="bogus"))


def test_headings_and_datelines_are_not_picked_as_sentences() -> None:
    text = SEED.read_text(encoding="utf-8").split("\n", 1)[1]
    for algorithm in CONFIG_ALGORITHMS:
        summary = summarise(text, SummaryConfig(algorithm=algorithm, sentences=5), title="Putin lays out conditions")
        assert "Bishkek (Kyrgyzstan):" not in summary.sentences
        assert "Putin demands US recognition of occupied territories" not in summary.sentences
        assert all(s in text for s in summary.sentences)


@pytest.mark.parametrize("algorithm", ["news", "kl", "lsa", "lexrank"])
def test_very_long_input_is_capped_and_never_cut_mid_sentence(algorithm: str) -> None:
    long_text = "\n\n".join(
        " ".join(f"Report {p} line {i} covers subject {(p * i) % 11} in detail today." for i in range(30))
        for p in range(400)
    )
    assert len(long_text) > MAX_CHARS
    summary = summarise(long_text, SummaryConfig(algorithm=algorithm, sentences=5))
    assert len(summary.sentences) == 5
    assert all(s.endswith("today.") and s in long_text for s in summary.sentences)


def test_summarise_is_picklable_and_runs_in_a_worker_process() -> None:
    assert pickle.loads(pickle.dumps(summarise)) is summarise
    with ProcessPoolExecutor(max_workers=1) as pool:
        summary = pool.submit(summarise, ARTICLE, SummaryConfig(algorithm="news", sentences=2)).result()
    assert len(summary.sentences) == 2
