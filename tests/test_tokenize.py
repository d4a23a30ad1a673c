"""The offline tokenizer splits news text as sumy's default would, with no downloads."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from digest.tokenize import Tokenizer, punkt_languages, sentence_splitter, tokenizer


def test_english_abbreviations_times_and_decimals_do_not_split() -> None:
    text = (
        "Mr. Smith flew to Washington on Saturday at 2 a.m. and met officials. "
        "The U.S. economy grew 2.5 percent. He said it was fine, e.g. for now."
    )
    assert tokenizer("english").to_sentences(text) == (
        "Mr. Smith flew to Washington on Saturday at 2 a.m. and met officials.",
        "The U.S. economy grew 2.5 percent.",
        "He said it was fine, e.g. for now.",
    )


def test_german_abbreviation_from_sumy_list_keeps_the_sentence_whole() -> None:
    text = "Das ist z.B. ein Satz über die Regierung. Und hier folgt noch einer."
    assert tokenizer("german").to_sentences(text) == (
        "Das ist z.B. ein Satz über die Regierung.",
        "Und hier folgt noch einer.",
    )


def test_words_drop_numbers_and_punctuation_like_sumy() -> None:
    assert tokenizer("english").to_words("In 2024, 3 well-known dogs barked!") == (
        "In",
        "well-known",
        "dogs",
        "barked",
    )


def test_language_without_punkt_model_splits_on_its_own_punctuation() -> None:
    text = "भारत एक विशाल देश है। यहाँ कई भाषाएँ बोली जाती हैं। क्या आप जानते हैं?"
    assert tokenizer("hindi").to_sentences(text) == (
        "भारत एक विशाल देश है।",
        "यहाँ कई भाषाएँ बोली जाती हैं।",
        "क्या आप जानते हैं?",
    )


def test_bundled_models_cover_the_main_european_languages() -> None:
    assert {"english", "german", "french", "spanish", "greek", "russian"} <= set(punkt_languages())


def test_tokenizer_survives_pickling_for_worker_processes() -> None:
    copy = pickle.loads(pickle.dumps(Tokenizer("french")))
    assert copy.language == "french"
    assert copy.to_sentences("Bonjour. Au revoir.") == ("Bonjour.", "Au revoir.")


HARD_SNIPPETS = [
    'The U.S. Senate voted 52-48 on Friday. Mr. Jones said it was "a win." Others disagreed.',
    "Prices rose 3.5% in Jan. and Feb., the report said. Analysts at J.P. Morgan expected less.",
    "He arrived at 2 a.m. Saturday. Police said... nothing more. Was it over? Nobody knew!",
    "Sie kam am 3. Oktober an. Das war z.B. ein Montag. Danach ging sie.",
    "Le président a parlé à 20 h. M. Dupont n'était pas là. « C'est fini », a-t-il dit.",
]


@pytest.mark.parametrize("language", ["english", "german", "french"])
def test_splits_exactly_as_nltk_punkt_with_the_same_parameters(language: str) -> None:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    ours = sentence_splitter(language)
    stock = PunktSentenceTokenizer(ours._params)
    seed = next((Path(__file__).resolve().parents[1] / "seeds").glob("000_*.txt")).read_text(encoding="utf-8")
    for text in [*HARD_SNIPPETS, seed]:
        assert ours.tokenize(text) == stock.tokenize(text)
