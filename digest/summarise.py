"""Extractive summaries: sumy's algorithms and our own news summariser behind one function.

`summarise(text, config, title, language)` picks the language, splits the text
offline (digest.tokenize), builds sumy's document model and runs the configured
algorithm. Summaries keep document order, never repeat or cut a sentence and are
never longer than asked. sumy, nltk and py3langid are imported lazily (nltk
alone costs ~1 s), so importing this module stays cheap.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Protocol, Sequence

from digest.config import SummaryConfig
from digest.errors import SummariseError
from digest.models import Summary
from digest.registry import SUMMARISERS, load
from digest.tokenize import tokenizer

# Caps that keep the slowest algorithm under a second on any input (see BENCHMARKS.md).
MAX_CHARS = 40_000
MAX_SENTENCES = 150
MAX_SENTENCES_BY_ALGORITHM = {"kl": 80}  # sumy's KL grows with the cube of the sentence count
DETECT_CHARS = 400

# ISO 639-1 codes (from <html lang> or the detector) -> sumy's language names.
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "arabic",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "fi": "finnish",
    "fr": "french",
    "he": "hebrew",
    "iw": "hebrew",
    "hi": "hindi",
    "hu": "hungarian",
    "it": "italian",
    "ja": "japanese",
    "ko": "korean",
    "ml": "malayalam",
    "nb": "norwegian",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sk": "slovak",
    "sl": "slovene",
    "sv": "swedish",
    "th": "thai",
    "tr": "turkish",
    "uk": "ukrainian",
    "zh": "chinese",
    "bn": "bengali",
    "fa": "persian",
    "id": "indonesian",
    "vi": "vietnamese",
    "ta": "tamil",
    "ur": "urdu",
}
# Languages whose words sumy can stem (NLTK Snowball plus sumy's own stemmers). Chinese,
# Japanese and Korean are left out: sumy splits their words only with extra packages.
STEMMED_LANGUAGES = frozenset(
    {
        "arabic",
        "danish",
        "dutch",
        "english",
        "finnish",
        "french",
        "german",
        "hungarian",
        "italian",
        "norwegian",
        "portuguese",
        "romanian",
        "russian",
        "spanish",
        "swedish",
        "czech",
        "slovak",
        "ukrainian",
        "greek",
        "polish",
        "hebrew",
    }
)

# Sentence-final punctuation, optionally followed by closing quotes or brackets.
_COMPLETE = re.compile(r"[.!?…。！？।॥؟۔][\"'”’»)\]]*$")
_OPENING_QUOTES = frozenset("\"“„«'‘")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")


class Algorithm(Protocol):
    """Pick the indexes of the `count` best candidates of a prepared document."""

    def __call__(self, prepared: Prepared, count: int, /) -> Sequence[int]: ...


@dataclass(frozen=True)
class Prepared:
    """An article split and ready to rate: sumy's document model plus plain lists."""

    document: Any  # sumy ObjectDocumentModel; headings hold the title and non-sentences
    candidates: tuple[Any, ...]  # sumy Sentences that may be picked, in document order
    language: str
    stemmer: CachedStemmer
    stop_words: frozenset[str]
    title_words: tuple[str, ...]


def summarise(text: str, config: SummaryConfig, title: str = "", language: str | None = None) -> Summary:
    """Summarise `text` with `config.algorithm` into at most `config.sentences` sentences.

    `language` is a hint from the article's metadata, used when config.language is "auto";
    without one the language is detected. Unsupported languages are summarised by position.
    """
    algorithm = config.algorithm
    if algorithm not in SUMMARISERS:
        raise SummariseError(f"unknown summary algorithm {algorithm!r}; choose one of {', '.join(SUMMARISERS)}")
    name = resolve_language(text, config.language, language)
    notes: list[str] = []
    if name not in STEMMED_LANGUAGES:
        notes.append(f"language {name!r} has no stemmer; summarised by position")
        algorithm = "lead"
    prepared = prepare(text, title, name, MAX_SENTENCES_BY_ALGORITHM.get(algorithm, MAX_SENTENCES))
    count = config.sentences
    if not prepared.candidates:
        return Summary(sentences=(), algorithm=algorithm, language=name, note="; ".join(notes + ["no text"]))
    if len(prepared.candidates) <= count:
        picked: Sequence[int] = range(len(prepared.candidates))
    else:
        try:
            picked = load(SUMMARISERS[algorithm])(prepared, count)
        except (ArithmeticError, ValueError, LookupError) as error:
            notes.append(f"{algorithm} failed ({error}); summarised by position")
            algorithm = "lead"
            picked = range(count)
    chosen = sorted(set(picked))[:count]
    sentences = tuple(str(prepared.candidates[i]) for i in chosen)
    return Summary(sentences=sentences, algorithm=algorithm, language=name, note="; ".join(notes))


def resolve_language(text: str, configured: str, hint: str | None) -> str:
    """sumy's name for the language to use: the config's, else the hint, else detected."""
    if configured and configured != "auto":
        return _language_name(configured)
    if hint and hint.strip():
        return _language_name(hint)
    return _language_name(detect_language(text))


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, by py3langid on its first characters."""
    sample = text[:DETECT_CHARS]
    if not sample.strip():
        return "en"
    import py3langid

    code, _score = py3langid.classify(sample)
    return str(code)


def _language_name(value: str) -> str:
    """ "de-DE", "de", "German" -> "german"; unknown codes pass through lower-cased."""
    value = value.strip().lower().replace("_", "-")
    if value in LANGUAGE_NAMES.values() or value in STEMMED_LANGUAGES:
        return value
    return LANGUAGE_NAMES.get(value.split("-")[0], value)


def prepare(text: str, title: str, language: str, max_sentences: int = MAX_SENTENCES) -> Prepared:
    """Split text into sumy's document model; keep complete, distinct sentences as candidates."""
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence

    tok = tokenizer(language)
    truncated = len(text) > MAX_CHARS
    body = text[:MAX_CHARS]
    seen: set[str] = set()
    paragraphs = []
    if title.strip():
        paragraphs.append(Paragraph([Sentence(_SPACE.sub(" ", title.strip()), tok, is_heading=True)]))
    split = [tok.to_sentences(_SPACE.sub(" ", p).strip()) for p in _PARAGRAPH_BREAK.split(body)]
    if truncated:
        split[-1] = split[-1][:-1]  # the last sentence may be cut in two
    complete = any(_COMPLETE.search(s) for para in split for s in para)
    candidates: list[Any] = []  # sumy's Sentence objects
    for para in split:
        sentences = []
        for text_of in para:
            key = _SPACE.sub(" ", text_of).casefold()
            if key in seen or len(candidates) == max_sentences:
                continue
            seen.add(key)
            selectable = not complete or bool(_COMPLETE.search(text_of))
            sentence = Sentence(text_of, tok, is_heading=not selectable)
            if selectable:
                candidates.append(sentence)
            sentences.append(sentence)
        if sentences:
            paragraphs.append(Paragraph(sentences))
    stemmer = stemmer_for(language)
    stop_words = stop_words_for(language)
    title_words = tok.to_words(title) if title else ()
    return Prepared(ObjectDocumentModel(paragraphs), tuple(candidates), language, stemmer, stop_words, title_words)


class CachedStemmer:
    """sumy's stemmer for a language with memos: stemming repeats words constantly.

    Called with a word, it returns sumy's stem (what sumy's summarisers use). `term(word)`
    also lower-cases and drops stop words in the same lookup: "" for a stop word.
    """

    # Words remembered per language before the memos start afresh: about 12 MB a memo at most
    # (500 CNN stories use 24,000 word forms), so a worker stays flat over any number of articles.
    _LIMIT = 50_000

    def __init__(self, language: str) -> None:
        self.language = language
        self._stem: Callable[[str], str] | None = None
        self._stems: dict[str, str] = {}
        self._terms: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            if self._stem is None:
                from sumy.nlp.stemmers import Stemmer

                self._stem = Stemmer(self.language)
            if len(self._stems) > self._LIMIT:
                self._stems.clear()
            stem = self._stems[word] = self._stem(word)
        return stem

    def term(self, word: str) -> str:
        """The stem of a word as written, lower-cased; "" for a stop word."""
        term = self._terms.get(word)
        if term is None:
            lower = word.lower()
            term = "" if lower in stop_words_for(self.language) else self(lower)
            if len(self._terms) > self._LIMIT:
                self._terms.clear()
            self._terms[word] = term
        return term

    def terms(self, words: Sequence[str]) -> list[str]:
        """`term` of each word, stop words left out; one C-level pass when all are known."""
        found = list(map(self._terms.get, words))
        if None in found:
            found = [self.term(word) for word in words]
        return [term for term in found if term]

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (CachedStemmer, (self.language,))


@lru_cache(maxsize=None)
def stemmer_for(language: str) -> CachedStemmer:
    """One cached stemmer per language, shared by every summary in this process."""
    return CachedStemmer(language)


@lru_cache(maxsize=None)
def stop_words_for(language: str) -> frozenset[str]:
    """sumy's stop words for a language; empty where sumy has none."""
    from sumy.utils import get_stop_words

    try:
        return frozenset(get_stop_words(language))
    except LookupError:
        return frozenset()


# --- algorithms ---------------------------------------------------------------------------

_SUMY_CLASSES = {
    "lexrank": ("sumy.summarizers.lex_rank", "LexRankSummarizer"),
    "textrank": ("sumy.summarizers.text_rank", "TextRankSummarizer"),
    "lsa": ("sumy.summarizers.lsa", "LsaSummarizer"),
    "luhn": ("sumy.summarizers.luhn", "LuhnSummarizer"),
    "kl": ("sumy.summarizers.kl", "KLSummarizer"),
    "sumbasic": ("sumy.summarizers.sum_basic", "SumBasicSummarizer"),
    "reduction": ("sumy.summarizers.reduction", "ReductionSummarizer"),
}


def _sumy(name: str) -> Algorithm:
    """A stock sumy summariser, run on our document and mapped back to candidate indexes."""
    module_name, class_name = _SUMY_CLASSES[name]

    def run(prepared: Prepared, count: int) -> Sequence[int]:
        summarizer = getattr(importlib.import_module(module_name), class_name)(prepared.stemmer)
        summarizer.stop_words = prepared.stop_words
        with warnings.catch_warnings():  # LSA warns on short texts; the summary is still fine
            warnings.simplefilter("ignore")
            return _indexes(prepared, summarizer(prepared.document, count))

    return run


def _edmundson(prepared: Prepared, count: int) -> Sequence[int]:
    """sumy's Edmundson with the title and location methods only (no cue word lists needed)."""
    from sumy.summarizers.edmundson import EdmundsonSummarizer

    summarizer = EdmundsonSummarizer(prepared.stemmer, cue_weight=0.0, key_weight=0.0, title_weight=1.0, location_weight=1.0)
    summarizer.null_words = prepared.stop_words
    return _indexes(prepared, summarizer(prepared.document, count))


def _lead(prepared: Prepared, count: int) -> Sequence[int]:
    """The first `count` sentences: the lede."""
    return range(min(count, len(prepared.candidates)))


def _indexes(prepared: Prepared, picked: Sequence[Any]) -> list[int]:
    position = {id(sentence): index for index, sentence in enumerate(prepared.candidates)}
    return [position[id(sentence)] for sentence in picked if id(sentence) in position]


def _news(prepared: Prepared, count: int) -> Sequence[int]:
    """Our news summariser: position prior, directed centrality, title, length, redundancy."""
    return pick_news(news_features(prepared), count, NEWS_WEIGHTS)


# Tuned by coordinate search on ../shared/data/cnndm-dev.jsonl only (bench/bench_summarise.py
# --tune; BENCHMARKS.md, "Summariser"). The dev file has no titles: "title" is set by hand.
NEWS_WEIGHTS: dict[str, float] = {
    "position": 1.0,  # weight of the position prior exp(-decay * index)
    "decay": 0.15,
    "centrality": 2.0,  # weight of directed (PacSum) centrality, scaled to 0..1
    "backward": -0.3,  # PacSum's lambda for edges to earlier sentences (later ones weigh 1)
    "threshold": 0.0,  # similarity under min + threshold * (max - min) is no edge
    "title": 0.3,  # weight of tf-idf cosine with the title
    "short": 4,  # sentences with fewer content words than this are penalised...
    "short_penalty": 0.5,  # ...by up to this much
    "long": 15,  # sentences with more content words than this are penalised...
    "long_penalty": 1.0,  # ...by up to this much at twice that length
    "quote_penalty": 0.2,  # for a sentence that opens with a quotation mark
    "question_penalty": 0.8,  # for a question
    "redundancy": 0.5,  # a candidate this similar to a picked sentence is skipped
}


@dataclass(frozen=True)
class NewsFeatures:
    """What the news summariser knows of each candidate, independent of its weights."""

    similarity: Any  # numpy (n, n) tf-idf cosine between candidates, zero diagonal
    title_similarity: Any  # numpy (n,) cosine with the title; zeros without a title
    lengths: Any  # numpy (n,) content words per candidate
    quoted: Any  # numpy (n,) 1.0 where the sentence opens with a quotation mark
    questions: Any  # numpy (n,) 1.0 where the sentence asks a question


def news_features(prepared: Prepared) -> NewsFeatures:
    """tf-idf vectors of stemmed content words (idf over the article's sentences) and their cosines."""
    from digest.vectors import np as numpy  # loaded in the workers only

    terms_of = prepared.stemmer.terms
    vocabulary: dict[str, int] = {}
    sentence_columns = [
        [vocabulary.setdefault(term, len(vocabulary)) for term in terms_of(sentence.words)] for sentence in prepared.candidates
    ]
    n, size = len(sentence_columns), max(1, len(vocabulary))
    cells = numpy.fromiter(
        (row * size + column for row, columns in enumerate(sentence_columns) for column in columns), dtype=numpy.intp
    )
    counts = numpy.bincount(cells, minlength=n * size).reshape(n, size)
    idf = numpy.log((n + 1) / (numpy.count_nonzero(counts, axis=0) + 1.0)) + 1.0
    vectors = counts * idf
    norms = numpy.sqrt(numpy.einsum("ij,ij->i", vectors, vectors))
    norms[norms == 0] = 1.0
    vectors /= norms[:, None]
    similarity = vectors @ vectors.T
    numpy.fill_diagonal(similarity, 0.0)
    title_similarity = numpy.zeros(n)
    title_columns = [vocabulary[term] for term in terms_of(prepared.title_words) if term in vocabulary]
    if title_columns:
        title = numpy.bincount(title_columns, minlength=size) * idf
        title_similarity = vectors @ (title / numpy.linalg.norm(title))
    texts = [str(sentence) for sentence in prepared.candidates]
    return NewsFeatures(
        similarity=similarity,
        title_similarity=title_similarity,
        lengths=numpy.fromiter(map(len, sentence_columns), dtype=float, count=n),
        quoted=numpy.fromiter((text[:1] in _OPENING_QUOTES for text in texts), dtype=float, count=n),
        questions=numpy.fromiter(("?" in text[-3:] for text in texts), dtype=float, count=n),
    )


def news_scores(features: NewsFeatures, w: dict[str, float]) -> Any:
    """Score each candidate: position prior + directed centrality + title - shortness."""
    from digest.vectors import np as numpy  # loaded in the workers only

    similarity = features.similarity
    n = similarity.shape[0]
    low, high = similarity.min(), similarity.max()
    edges = numpy.clip(similarity - (low + w["threshold"] * (high - low)), 0.0, None)
    centrality = numpy.triu(edges, 1).sum(axis=1) + w["backward"] * numpy.tril(edges, -1).sum(axis=1)
    spread = centrality.max() - centrality.min()
    centrality = (centrality - centrality.min()) / spread if spread > 0 else numpy.zeros(n)
    position = numpy.exp(-w["decay"] * numpy.arange(n))
    shortness = numpy.clip((w["short"] - features.lengths) / w["short"], 0.0, 1.0)
    longness = numpy.clip((features.lengths - w["long"]) / w["long"], 0.0, 1.0)
    return (
        w["position"] * position
        + w["centrality"] * centrality
        + w["title"] * features.title_similarity
        - w["short_penalty"] * shortness
        - w["long_penalty"] * longness
        - w["quote_penalty"] * features.quoted
        - w["question_penalty"] * features.questions
    )


def pick_news(features: NewsFeatures, count: int, w: dict[str, float]) -> list[int]:
    """Greedy pick by score, skipping sentences too similar to one already picked."""
    scores = news_scores(features, w)
    order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
    similarity = features.similarity
    picked: list[int] = []
    for index in order:
        if all(similarity[index, other] < w["redundancy"] for other in picked):
            picked.append(index)
            if len(picked) == count:
                return picked
    # Too few distinct sentences: fill up by score.
    return picked + [i for i in order if i not in picked][: count - len(picked)]


# The algorithms digest.registry.SUMMARISERS names.
news: Algorithm = _news
lexrank, textrank, lsa, luhn, kl, sumbasic, reduction = (_sumy(name) for name in _SUMY_CLASSES)
edmundson: Algorithm = _edmundson
lead: Algorithm = _lead
