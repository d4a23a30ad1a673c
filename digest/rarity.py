"""The one module that imports wordfreq: how rare a word is in general English, for story grouping's
term weights. An edition's own idf comes from a few dozen articles skewed to their topics; a word's
frequency across a large English corpus tells what is specific (a place, a name) more steadily."""

from __future__ import annotations

from functools import lru_cache

TOP = 7.0  # Zipf frequency (log10 per billion words) at or above which a word counts as common: rarity 1


@lru_cache(maxsize=100_000)
def rarity(term: str) -> float:
    """1 for a common English word, up to 1 + TOP for one wordfreq has never seen (a rare name, a
    number): 1 + (TOP - its Zipf frequency), like an idf over a very large corpus. wordfreq is loaded
    on first use (its English list takes a tenth of a second), so commands that never group skip it."""
    import wordfreq

    return 1.0 + max(0.0, TOP - wordfreq.zipf_frequency(term, "en"))
