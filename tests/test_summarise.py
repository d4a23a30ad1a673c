"""summarise(): every algorithm, document order, no repeats, no cut sentences, length caps."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from digest.config import ALGORITHMS as CONFIG_ALGORITHMS, SummaryConfig
from digest.errors import SummariseError
from digest.registry import SUMMARISERS as ALGORITHMS
from digest.summarise import MAX_CHARS, NEWS_WEIGHTS, CachedStemmer, news_features, news_scores, prepare, summarise

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
        " ".join(f"Report {p} line {i} covers subject {(p * i) % 11} in detail today." for i in range(30)) for p in range(400)
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


GERMAN = """Der Bundestag hat am Donnerstag ein neues Gesetz zum Klimaschutz beschlossen. Nach monatelangen Verhandlungen stimmte eine knappe Mehrheit der Abgeordneten für den Entwurf der Regierung.

Das Gesetz sieht vor, dass Deutschland seine Emissionen bis zum Jahr 2040 deutlich senken muss. Unternehmen sollen dafür höhere Abgaben auf Kohle, Öl und Gas zahlen. Die Einnahmen fließen zum Teil an die Bürger zurück.

Die Opposition kritisierte das Vorhaben scharf. Es belaste vor allem Familien auf dem Land, die auf das Auto angewiesen seien, sagte ein Sprecher. Umweltverbände hingegen nannten das Gesetz einen wichtigen ersten Schritt, der aber nicht weit genug gehe.

Der Bundesrat muss dem Gesetz noch zustimmen. Eine Entscheidung wird im Dezember erwartet."""

FRENCH = """Le gouvernement a présenté mercredi un projet de loi destiné à réformer le système de retraite. Le texte prévoit de relever progressivement l'âge légal de départ à soixante-quatre ans.

Les syndicats ont immédiatement appelé à une grève nationale pour la semaine prochaine. Selon eux, la réforme pénalise surtout les salariés qui ont commencé à travailler jeunes. Plusieurs manifestations sont prévues à Paris, Lyon et Marseille.

Le ministre du Travail a défendu une mesure nécessaire pour garantir l'équilibre financier du régime. Il a promis des aménagements pour les métiers les plus pénibles.

Le projet sera examiné par l'Assemblée nationale au début du mois de février."""

HINDI = """भारत सरकार ने बुधवार को नई शिक्षा नीति की घोषणा की। इस नीति के तहत स्कूलों में पढ़ाई का तरीका पूरी तरह बदल जाएगा। छात्रों को अपनी मातृभाषा में पढ़ने का अवसर मिलेगा।

शिक्षा मंत्री ने कहा कि यह बदलाव देश के भविष्य के लिए बहुत ज़रूरी है। उन्होंने बताया कि नई नीति अगले साल से लागू होगी। विपक्ष ने इस नीति पर कई सवाल उठाए हैं।

कई राज्यों ने नीति का स्वागत किया है। शिक्षकों को नए पाठ्यक्रम के लिए प्रशिक्षण दिया जाएगा।"""


@pytest.mark.parametrize(("text", "language"), [(GERMAN, "german"), (FRENCH, "french")])
def test_german_and_french_are_detected_and_summarised_in_their_own_language(text: str, language: str) -> None:
    summary = summarise(text, SummaryConfig(algorithm="news", sentences=3))
    assert summary.language == language
    assert summary.algorithm == "news" and summary.note == ""
    assert len(summary.sentences) == 3
    positions = [text.index(s) for s in summary.sentences]
    assert positions == sorted(positions)
    assert all(s.endswith(".") for s in summary.sentences)


def test_a_script_sumy_cannot_stem_is_summarised_by_position_with_a_note() -> None:
    summary = summarise(HINDI, SummaryConfig(algorithm="news", sentences=2))
    assert summary.language == "hindi"
    assert summary.algorithm == "lead"
    assert "position" in summary.note
    assert summary.sentences == (
        "भारत सरकार ने बुधवार को नई शिक्षा नीति की घोषणा की।",
        "इस नीति के तहत स्कूलों में पढ़ाई का तरीका पूरी तरह बदल जाएगा।",
    )


def test_metadata_language_hint_is_used_instead_of_detection() -> None:
    summary = summarise(GERMAN, SummaryConfig(sentences=2), language="de-AT")
    assert summary.language == "german"
    assert summarise(FRENCH, SummaryConfig(sentences=2), language="fr").language == "french"


def test_configured_language_overrides_hint_and_detection() -> None:
    summary = summarise(GERMAN, SummaryConfig(sentences=2, language="english"), language="de")
    assert summary.language == "english"


def test_title_raises_the_score_of_the_sentence_that_matches_it() -> None:
    title = "Opposition: Gesetz belastet Familien auf dem Land"
    plain = news_scores(news_features(prepare(GERMAN, "", "german")), NEWS_WEIGHTS)
    titled = news_scores(news_features(prepare(GERMAN, title, "german")), NEWS_WEIGHTS)
    gain = titled - plain
    matching = next(i for i, s in enumerate(prepare(GERMAN, "", "german").candidates) if "Familien" in str(s))
    assert gain[matching] == max(gain) > 0


ODD_INPUTS = [
    "",
    "....",
    "!!! ??? ...",
    "no punctuation at all just words " * 500,
    "\x00\x01 binary \ufffd junk.",
    "日本語の文章です。これは二番目の文です。三番目です。最後の文です。",
    "🙂🙂🙂. 🙂! 🙂? 🙂.",
    "word",
    "1 2 3. 4 5 6. 7 8 9. 10 11 12.",
    "The the the. The the the. A a a. An an an.",
    "Ελλάδα είναι χώρα. Η Αθήνα είναι πρωτεύουσα. Ναι. Τέλος.",
]


@pytest.mark.parametrize("algorithm", CONFIG_ALGORITHMS)
def test_odd_input_never_raises_and_never_exceeds_the_count(algorithm: str) -> None:
    for text in ODD_INPUTS:
        summary = summarise(text, SummaryConfig(algorithm=algorithm, sentences=2))
        assert len(summary.sentences) <= 2
        assert all(sentence in text for sentence in summary.sentences)


def test_a_stemmer_memo_stays_bounded_over_any_vocabulary() -> None:
    """Workers summarise for hours in a big run: their word memos must not grow with every new word."""
    stemmer = CachedStemmer("english")
    for number in range(CachedStemmer._LIMIT + 5_000):
        stemmer.terms((f"zorbing{number}s", "running"))
    assert stemmer.terms(("running", "the")) == ["run"]
    assert len(stemmer._terms) <= CachedStemmer._LIMIT + 1 and len(stemmer._stems) <= CachedStemmer._LIMIT + 1
