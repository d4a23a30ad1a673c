"""Grouping articles by story: the same event reported by several sources, copies folded.

Each article's grouping features are made once, when it is stored (`features`):
sublinear counts of the terms of its title and body (the title and the body's first words
count twice), each weighted by the term's rarity in
general English (wordfreq), the proper names and numbers among them, its length and a hash
of its text. Grouping (`group`) weighs terms again, in part, by their rarity in the articles
grouped (idf: an edition is small and skewed to its topics), finds candidate pairs through the rare
terms they share (the work grows with the articles, not with their pairs), scores a
pair by a blend of the cosine of its terms and of its names, folds copies, gathers
topics by average link, then splits each topic into stories, its terms weighted again
by their rarity inside the topic: a large topic by average link over a likeness partly
measured with the topic's mean taken away (centred), down to a share of the topic's own mean
likeness, a small one by complete link. Then fragments (a story of one or two articles, an article alone) join an
established story they are clearly most like.
Articles further apart in
time than the window are never one story. Precision comes first: a wrong merge
hides a story; a missed one only repeats it.
"""

from __future__ import annotations

import hashlib
import json
import heapq
import math
import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from digest.models import StoryFeatures
from digest.rarity import rarity
from digest.vectors import Sparse, centred_likeness, np

# The default time window: articles published further apart are never one story.
WINDOW = timedelta(hours=72)
FEATURES_VERSION = 2  # 2: terms weighted by their rarity in general English


@dataclass(frozen=True)
class Settings:
    """How grouping decides; tuned on one half of the labelled topics only (bench/bench_stories.py --tune)."""

    topic_threshold: float = 0.05  # average likeness that keeps articles in one topic (first pass)
    threshold: float = 0.03  # average likeness a story's articles must reach inside a large topic, and at least ...
    relative: float = 0.5  # ... this share of the topic's mean likeness (scale-free: a close-knit topic asks more)
    name_weight: float = 0.2  # share of likeness given to names and numbers, the rest to all terms
    edition_idf: float = 0.55  # power of the edition's own idf: its rarity counts in part, general English's in full
    small_topic: int = 6  # a topic of fewer articles tells its events' own words poorly, so it needs more likeness:
    small_threshold: float = 0.25  # what every pair of a story in a small topic must reach
    tight: float = 0.16  # a large topic whose articles are less alike on average is several topics: judged as small
    attach: float = 0.0  # a large topic's article left alone joins the story it is most like on average from this likeness
    centring: float = 0.6  # share of a large topic's likeness measured after taking away what all its articles share
    fragment: int = 2  # a large topic's story of at most this many articles (a report told from another angle, split
    # off), or an article alone, joins the story it is most like on average (0: never), when it is ...
    fragment_ratio: float = 1.5  # ... this many times as like it as any other story it could join (the other event) ...
    fragment_share: float = 0.2  # ... and this share as like it as that story's own articles are, a story of at least ...
    fragment_story: int = 7  # ... this many articles (an event told in a few reports only stays its own)
    window: timedelta = WINDOW


DEFAULT = Settings()
BODY_WORDS = 2000  # words of the body that count (a longer one adds little)
TITLE_REPEAT = 2  # the title's terms count this many times
LEAD_WORDS = 40  # the body's first words (its lead, often the real headline after a dateline) ...
LEAD_REPEAT = 2  # ... count this many times
COPY = 0.9  # likeness of copies (a wire story on two sites, a story with a line added): one unit
MAX_TOPIC = 150  # a first-pass topic larger than this is split with a higher threshold
CANDIDATE_TERMS = 40  # an article's highest-weighted terms that look for others sharing them
RARE = 50  # a term in more articles than this is not rare: it pairs none of them as candidates

_TOKEN = re.compile(r"[^\W_](?:[\w]|['’.\-](?=[^\W_]))*")
_DIGIT = re.compile(r"\d")
_SENTENCE_START = re.compile(r"(?:^|[.!?]['\"’”)]*\s+|[\n:;\"“‘(]\s*)$")
STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours yourself yourselves said says say told tell according
    one two new like get got year years day days week time monday tuesday wednesday thursday friday saturday sunday
    mr mrs ms dr may might must shall us it's i'm don't didn't won't can't isn't wasn't aren't weren't he's she's
    they're we're that's there's what's who's let's
    january february march april june july august september october november december""".split()
)


@lru_cache(maxsize=50_000)
def _term(token: str) -> str:
    """A token as a term: lower case and a light English suffix strip (plurals, possessives),
    enough to join "quake" and "quakes"; '' for a stop word or a lone letter."""
    word = token.lower().replace("’", "'")
    if word in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
        return ""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def text_hash(text: str) -> str:
    """Hash of the text with case, punctuation and spacing ignored: equal for exact copies."""
    words = re.findall(r"\w+", text.casefold())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:16]


def _weighted_by_rarity(counts: dict[str, float]) -> dict[str, float]:
    """Sublinear counts times each term's rarity in general English (about 1 to 8)."""
    return {term: round((1.0 + math.log(count)) * rarity(term), 4) for term, count in counts.items() if count > 0}


def features(title: str, body: str) -> StoryFeatures:
    """An article's grouping features: made once when it is stored, read at every edition. Terms
    are weighted by their rarity in general English here, once, not by the few articles of an edition."""
    terms: dict[str, float] = {}
    names: dict[str, float] = {}
    body_words = 0
    for part, repeat, limit, lead in ((title, TITLE_REPEAT, None, 0), (body, 1, BODY_WORDS, LEAD_WORDS)):
        seen = 0
        for match in _TOKEN.finditer(part):
            if limit is not None and seen >= limit:
                break
            seen += 1
            token = match.group()
            term = _term(token)
            if not term:
                continue
            weight = LEAD_REPEAT if seen <= lead else repeat
            terms[term] = terms.get(term, 0) + weight
            first = token[0]
            if first.isupper():
                start = match.start()
                if not _SENTENCE_START.search(part, max(0, start - 8), start):
                    names[term] = names.get(term, 0) + weight
            elif first.isdigit() or (not token.isalpha() and _DIGIT.search(token)):
                names[term] = names.get(term, 0) + weight
        if limit is not None:
            body_words = seen if seen < limit else len(_TOKEN.findall(part))
    return StoryFeatures(
        terms=_weighted_by_rarity(terms),
        names=_weighted_by_rarity(names),
        words=body_words,
        text_hash=text_hash(f"{title}\n{body}" if not body.strip() else body),
    )


def dumps(found: StoryFeatures) -> str:
    """Features as stored: compact JSON."""
    return json.dumps(
        {"v": FEATURES_VERSION, "t": found.terms, "n": found.names, "w": found.words, "h": found.text_hash},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def loads(text: str) -> StoryFeatures | None:
    """Stored features, or None when absent or from another version (then made again from the text)."""
    try:
        data = json.loads(text) if text else None
        if not isinstance(data, dict) or data.get("v") != FEATURES_VERSION:
            return None
        return StoryFeatures(terms=dict(data["t"]), names=dict(data["n"]), words=int(data["w"]), text_hash=str(data["h"]))
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Item:
    """One article to group: its features and, when known, when it was published."""

    features: StoryFeatures
    published: datetime | None = None


def _idf(vectors: Iterable[dict[str, float]]) -> dict[str, float]:
    """Smoothed inverse document frequency over these documents (as scikit-learn's)."""
    frequency: dict[str, int] = {}
    count = 0
    for vector in vectors:
        count += 1
        for term in vector:
            frequency[term] = frequency.get(term, 0) + 1
    return {term: math.log((1 + count) / (1 + df)) + 1.0 for term, df in frequency.items()}


def _weighted(vectors: Sequence[dict[str, float]], *idfs: dict[str, float]) -> list[dict[str, float]]:
    """tf-idf vectors of unit length; several idf tables multiply."""
    weighted = []
    for vector in vectors:
        values = dict(vector)
        for idf in idfs:
            values = {term: value * idf[term] for term, value in values.items()}
        norm = math.sqrt(sum(v * v for v in values.values())) or 1.0
        weighted.append({term: v / norm for term, v in values.items()})
    return weighted


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    return sum([a[term] * b[term] for term in a.keys() & b.keys()])


def _close_in_time(counts: _Counts, firsts: np.ndarray, seconds: np.ndarray, window: timedelta) -> np.ndarray:
    """Whether each pair of articles was published within `window` of each other (an undated one is close to any)."""
    apart = np.abs(counts.moments[firsts] - counts.moments[seconds]) > window // timedelta(microseconds=1)
    close: np.ndarray = ~(apart & counts.dated[firsts] & counts.dated[seconds])
    return close


class _Rows:
    """Sparse rows laid end to end (term ids int32, values float64), row i a pair of views made when asked for;
    `slots` maps an article to its row when the rows are some articles' only. Thousands of articles cost a few
    arrays, not two small arrays each."""

    def __init__(self, ids: np.ndarray, values: np.ndarray, starts: np.ndarray, slots: dict[int, int] | None = None) -> None:
        self.ids, self.values, self.starts, self.slots = ids, values, starts, slots

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, article: int) -> Sparse:
        row = article if self.slots is None else self.slots[article]
        start, end = self.starts[row], self.starts[row + 1]
        return self.ids[start:end], self.values[start:end]

    def row_numbers(self, articles: np.ndarray) -> np.ndarray:
        """The row of each article."""
        if self.slots is None:
            return articles
        return np.fromiter(map(self.slots.__getitem__, articles.tolist()), dtype=np.int64, count=len(articles))

    def items(self) -> Iterator[tuple[int, Sparse]]:
        """(article, its row) for every row."""
        articles: Iterable[int] = range(len(self)) if self.slots is None else self.slots
        return ((article, self[article]) for article in articles)


class _RowBuilder:
    """Rows appended one at a time into growing buffers of plain numbers (no object per row)."""

    def __init__(self) -> None:
        self.ids = array("i")
        self.values = array("d")
        self.lengths = array("q")

    def add(self, ids: Iterable[int], values: Iterable[float]) -> None:
        before = len(self.ids)
        self.ids.fromlist(list(ids))  # faster than extend from an iterator
        self.values.fromlist(list(values))
        self.lengths.append(len(self.ids) - before)

    def rows(self) -> _Rows:
        starts = np.concatenate(([0], np.cumsum(np.frombuffer(self.lengths, dtype=np.int64)))).astype(np.int64)
        return _Rows(np.frombuffer(self.ids, dtype=np.int32), np.frombuffer(self.values, dtype=np.float64), starts)


@dataclass
class _Counts:
    """The items' term and name counts as rows over one vocabulary of `size` terms, and what else
    grouping needs of each item: its text (a number, the same for the same text hash) and when it was
    published (microseconds after the first dated item; `dated` False when unknown). The items themselves are not kept."""

    terms: _Rows
    names: _Rows
    size: int
    texts: np.ndarray
    moments: np.ndarray
    dated: np.ndarray


def _counts(items: Iterable[Item]) -> _Counts:
    """Read the items once, one at a time, keeping only their counts as arrays: the caller may make
    each item's features as it is asked for, so no more than one article's dictionaries live at once."""
    vocabulary: defaultdict[str, int] = defaultdict()
    vocabulary.default_factory = vocabulary.__len__  # a new term's id is the count of terms before it
    terms, names = _RowBuilder(), _RowBuilder()
    text_numbers: dict[str, int] = {}
    texts = array("q")
    published: list[datetime | None] = []
    for item in items:
        for builder, vector in ((terms, item.features.terms), (names, item.features.names)):
            builder.add(map(vocabulary.__getitem__, vector), vector.values())
        texts.append(text_numbers.setdefault(item.features.text_hash, len(text_numbers)))
        published.append(item.published)
    first = next((moment for moment in published if moment is not None), None)
    microsecond = timedelta(microseconds=1)
    moments = [0 if first is None or moment is None else (moment - first) // microsecond for moment in published]
    return _Counts(
        terms.rows(),
        names.rows(),
        len(vocabulary),
        np.frombuffer(texts, dtype=np.int64),
        np.array(moments, dtype=np.int64),
        np.array([moment is not None for moment in published], dtype=bool),
    )


def _idf_of(rows: _Rows, size: int) -> np.ndarray:
    """Smoothed inverse document frequency of each of `size` terms over the rows (as scikit-learn's)."""
    frequency = np.bincount(rows.ids, minlength=size)
    return np.log((1 + len(rows)) / (1 + frequency)) + 1.0


def _subset(rows: _Rows, members: Sequence[int]) -> _Rows:
    """The members' rows alone, gathered into arrays of their own (member after member)."""
    chosen = np.asarray(members, dtype=np.int64)
    starts, lengths = rows.starts[chosen], rows.starts[chosen + 1] - rows.starts[chosen]
    ends = np.cumsum(lengths)
    positions = np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]) if len(ends) else 0)
    slots = {member: slot for slot, member in enumerate(members)}
    return _Rows(rows.ids[positions], rows.values[positions], np.concatenate(([0], ends)).astype(np.int64), slots)


def _own_vocabulary(terms: _Rows, names: _Rows) -> tuple[np.ndarray, _Rows, _Rows]:
    """The terms these rows use, ascending, and the rows with each term numbered by its place among them: a topic's
    arrays then span its own terms, not every article's (which would make grouping grow with topics x articles)."""
    vocabulary, local = np.unique(np.concatenate((terms.ids, names.ids)), return_inverse=True)
    local = local.astype(np.int32)
    return (
        vocabulary,
        _Rows(local[: len(terms.ids)], terms.values, terms.starts, terms.slots),
        _Rows(local[len(terms.ids) :], names.values, names.starts, names.slots),
    )


def _unit(rows: _Rows, *idfs: np.ndarray) -> _Rows:
    """Unit-length vectors of the rows, their counts weighted by every idf given: new values, the same ids."""
    values = rows.values.copy()
    for idf in idfs:
        values *= idf[rows.ids]
    lengths = np.diff(rows.starts)
    row_of = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    norms = np.sqrt(np.bincount(row_of, weights=np.square(values), minlength=len(lengths)))
    norms[norms == 0] = 1.0
    values /= norms[row_of]
    return _Rows(rows.ids, values, rows.starts, rows.slots)


@dataclass
class _Vectors:
    """Unit tf-idf vectors of some articles' terms and names, over a vocabulary of `size` terms."""

    terms: _Rows
    names: _Rows
    size: int


def _overall_vectors(counts: _Counts, power: float) -> tuple[_Vectors, tuple[np.ndarray, np.ndarray]]:
    """Vectors of all the articles, weighted by the rarity of their terms and names among them (idf) to `power`, and
    that weight: a tiny edition's rarity is skewed to its few topics, so it counts in part beside the general rarity
    already in the features."""
    idf = (_idf_of(counts.terms, counts.size) ** power, _idf_of(counts.names, counts.size) ** power)
    return _Vectors(_unit(counts.terms, idf[0]), _unit(counts.names, idf[1]), counts.size), idf


def _topic_vectors(counts: _Counts, topic: list[int], overall_idf: tuple[np.ndarray, np.ndarray]) -> _Vectors:
    """Vectors of a topic's articles over the topic's own terms, weighted by their rarity inside the topic, then
    among all the articles."""
    vocabulary, terms, names = _own_vocabulary(_subset(counts.terms, topic), _subset(counts.names, topic))
    size = len(vocabulary)
    return _Vectors(
        _unit(terms, _idf_of(terms, size), overall_idf[0][vocabulary]),
        _unit(names, _idf_of(names, size), overall_idf[1][vocabulary]),
        size,
    )


def _candidate_pairs(counts: _Counts, vectors: _Vectors) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) sharing a rare term among each one's CANDIDATE_TERMS weightiest, or the same text, as two arrays
    (sorted, each pair once). A term in more than RARE articles pairs none, so the pairs grow with the articles, not their
    square; the pairs of each group sharing a term are made at once for all the groups of its size (no Python per pair)."""
    # The postings as two arrays of (term, article), sorted by term: no list per term (issue 19).
    taken = np.minimum(np.diff(vectors.terms.starts), CANDIDATE_TERMS)
    term_of = np.empty(int(taken.sum()), dtype=np.int32)
    article_of = np.empty(len(term_of), dtype=np.int32)
    at = 0
    for (index, (ids, values)), count in zip(vectors.terms.items(), taken.tolist()):
        term_of[at : at + count] = ids[np.argsort(-values, kind="stable")[:count]]
        article_of[at : at + count] = index
        at += count
    order = np.argsort(term_of, kind="stable")
    postings = (term_of[order], article_of[order])
    by_text = np.argsort(counts.texts, kind="stable")
    copies = (counts.texts[by_text], by_text.astype(np.int32))
    firsts, seconds = [], []
    for keys, articles in (postings, copies):  # articles ascending within a key
        bounds = np.flatnonzero(np.diff(keys)) + 1
        starts, ends = np.concatenate(([0], bounds)), np.concatenate((bounds, [len(keys)]))
        sizes = ends - starts
        for size in np.unique(sizes[(sizes > 1) & (sizes <= RARE)]).tolist():
            block = articles[starts[sizes == size][:, None] + np.arange(size)]
            above, below = np.triu_indices(size, 1)
            firsts.append(block[:, above].ravel())
            seconds.append(block[:, below].ravel())
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    count = len(counts.texts)
    codes = np.sort(np.concatenate(firsts).astype(np.int64) * count + np.concatenate(seconds))
    codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]  # np.unique hashes: several times slower
    return codes // count, codes % count


def _dots(rows: _Rows, size: int, firsts: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Dot products of many pairs of rows at once (numpy): of each pair the longer row is spread into a dense array
    and the shorter one's terms gathered from it, all the pairs of one longer row in one go."""
    result = np.zeros(len(firsts))
    starts, lengths = rows.starts[:-1], np.diff(rows.starts)
    swap = lengths[firsts] < lengths[seconds]
    spread, gathered = np.where(swap, seconds, firsts), np.where(swap, firsts, seconds)
    wanted = lengths[gathered] > 0
    pair_of = np.flatnonzero(wanted)
    pair_of = pair_of[np.argsort(spread[pair_of], kind="stable")]
    spread, gathered = spread[pair_of], gathered[pair_of]
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(spread)) + 1, [len(spread)])).tolist() if len(spread) else [0]
    dense = np.zeros(size + 1)
    for begin, end in zip(bounds[:-1], bounds[1:]):
        own = slice(rows.starts[spread[begin]], rows.starts[spread[begin] + 1])
        dense[rows.ids[own]] = rows.values[own]
        partners = gathered[begin:end]
        partner_lengths = lengths[partners]
        ends = np.cumsum(partner_lengths)
        heads = ends - partner_lengths
        offsets = np.repeat(starts[partners] - heads, partner_lengths) + np.arange(ends[-1])
        products = dense.take(rows.ids.take(offsets))  # take: a quarter faster than indexing
        products *= rows.values.take(offsets)
        result[pair_of[begin:end]] = np.add.reduceat(products, heads)
        dense[rows.ids[own]] = 0.0
    return result


def _scored(
    counts: _Counts, pairs: tuple[np.ndarray, np.ndarray], vectors: _Vectors, threshold: float, settings: Settings
) -> dict[tuple[int, int], float]:
    """Likeness of the pairs (two arrays of articles) within the window that reach `threshold`; exact copies score 1.0."""
    firsts, seconds = pairs
    near = _close_in_time(counts, firsts, seconds, settings.window)
    firsts, seconds = firsts[near], seconds[near]
    first_rows, second_rows = vectors.terms.row_numbers(firsts), vectors.terms.row_numbers(seconds)
    likeness = _dots(vectors.terms, vectors.size, first_rows, second_rows)
    names = _dots(vectors.names, vectors.size, first_rows, second_rows)
    name_counts = np.diff(vectors.names.starts)
    named = (name_counts[first_rows] > 0) & (name_counts[second_rows] > 0)
    likeness = np.where(named, (1 - settings.name_weight) * likeness + settings.name_weight * names, likeness)
    copies = counts.texts[firsts] == counts.texts[seconds]
    likeness[copies] = 1.0
    kept = copies | (likeness >= threshold)
    return dict(zip(zip(firsts[kept].tolist(), seconds[kept].tolist()), likeness[kept].tolist()))


def _centred(counts: _Counts, topic: list[int], vectors: _Vectors, settings: Settings) -> dict[tuple[int, int], float]:
    """Likeness of every pair of a large topic within the window, part of it measured on the
    articles with the topic's mean taken away: what the whole topic shares (an earthquake's words) then
    counts for nothing, and two events of one kind move apart while each event's articles stay close."""
    blended = [
        vectors.terms[member] if vectors.names[member][0].size == 0 else _blend(vectors, member, settings.name_weight)
        for member in topic
    ]
    likeness = centred_likeness(blended, settings.centring)
    firsts, seconds = _every_pair(topic)
    rows, columns = np.triu_indices(len(topic), 1)
    values = np.where(counts.texts[firsts] == counts.texts[seconds], 1.0, likeness[rows, columns])
    near = _close_in_time(counts, firsts, seconds, settings.window)
    return dict(zip(zip(firsts[near].tolist(), seconds[near].tolist()), values[near].tolist()))


def _every_pair(members: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of the members, as two arrays: (members[i], members[j]) for i < j, row by row."""
    rows, columns = np.triu_indices(len(members), 1)
    chosen = np.array(members, dtype=np.int64)
    return chosen[rows], chosen[columns]


def _attached(clusters: list[list[int]], every: dict[tuple[int, int], float], attach: float) -> list[list[int]]:
    """Each article left alone in a topic joins the story of it that it is most like on average, when that
    likeness (`every`, the centred pairs) reaches `attach`: 0 means more like that story than like the topic
    as a whole. A short report shares too few words with each other report to pass the pairs' threshold."""
    alone = [cluster[0] for cluster in clusters if len(cluster) == 1]
    groups = [cluster for cluster in clusters if len(cluster) > 1]
    result = [list(cluster) for cluster in groups]
    for article in alone:
        best, best_value = None, attach
        for number, members in enumerate(groups):
            value = sum(every.get((min(article, other), max(article, other)), -1.0) for other in members) / len(members)
            if value >= best_value:
                best, best_value = number, value
        if best is None:
            result.append([article])
        else:
            result[best].append(article)
    return result


class _Sums:
    """Each story's sum of its articles' vectors (terms and names blended as in `_centred`) and when its dated
    articles were published, made when first asked for: the mean likeness of two stories is the dot product of their
    sums over the product of their sizes, one sparse dot instead of a dot per pair of articles."""

    def __init__(self, counts: _Counts, vectors: _Vectors, name_weight: float) -> None:
        self.counts, self.vectors, self.name_weight = counts, vectors, name_weight
        self.made: dict[tuple[int, ...], tuple[Sparse, float, int, int]] = {}

    def __call__(self, story: list[int]) -> tuple[Sparse, float, int, int]:
        """The story's summed vector, the sum of its articles' own squared lengths, its first and last moment."""
        key = tuple(story)
        found = self.made.get(key)
        if found is None:
            rows = [
                self.vectors.terms[member]
                if self.vectors.names[member][0].size == 0
                else _blend(self.vectors, member, self.name_weight)
                for member in story
            ]
            ids, inverse = np.unique(np.concatenate([row[0] for row in rows]), return_inverse=True)
            squares = sum(float(row[1] @ row[1]) for row in rows)
            chosen = np.asarray(story, dtype=np.int64)
            moments = self.counts.moments[chosen][self.counts.dated[chosen]]
            first, last = (int(moments.min()), int(moments.max())) if moments.size else (2**62, -(2**62))
            found = self.made[key] = (
                (ids, np.bincount(inverse, weights=np.concatenate([row[1] for row in rows]))),
                squares,
                first,
                last,
            )
        return found


def _dot(a: Sparse, b: Sparse) -> float:
    _, at, bt = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return float(a[1][at] @ b[1][bt])


def _joined(
    fragments: list[list[int]],
    choices: list[list[list[int]]],
    sums: _Sums,
    settings: Settings,
    contrast: dict[tuple[int, int], float] | None = None,
) -> list[int]:
    """For each fragment (a story of at most `fragment` articles: a report told from another angle, split off, or a
    one-line report), the number among its choices of the story it joins, or -1. It joins the choice it is most like
    on average (by `contrast`, the pairs' centred likeness inside a large topic, else plain likeness) when that is
    `fragment_ratio` times its likeness to any other choice (the topic's other event stays apart), when its plain
    likeness to that story is `fragment_share` of what the story's own articles share, the story has `fragment_story`
    articles or more, and every pair of articles stays within the window."""
    window = settings.window // timedelta(microseconds=1)
    result = []
    for fragment, stories in zip(fragments, choices):
        own_sum, _, own_first, own_last = sums(fragment)
        plain = [_dot(own_sum, sums(story)[0]) / (len(fragment) * len(story)) for story in stories]
        means = plain if contrast is None else [_mean_of(contrast, fragment, story) for story in stories]
        best = max(range(len(stories)), key=means.__getitem__, default=-1)
        if best < 0 or len(stories[best]) < settings.fragment_story:
            result.append(-1)
            continue
        others = max((mean for number, mean in enumerate(means) if number != best), default=0.0)
        total, squares, first, last = sums(stories[best])
        size = len(stories[best])
        own_mean = (_dot(total, total) - squares) / (size * (size - 1))
        clear = means[best] > 0 and means[best] >= settings.fragment_ratio * max(others, 0.0)
        close = plain[best] >= settings.fragment_share * own_mean and max(own_last - first, last - own_first) <= window
        result.append(best if clear and close else -1)
    return result


def _mean_of(likeness: dict[tuple[int, int], float], fragment: list[int], story: list[int]) -> float:
    """Mean likeness of a fragment's articles to a story's, a pair not in `likeness` counting as 0."""
    return sum(likeness.get((min(a, b), max(a, b)), 0.0) for a in fragment for b in story) / (len(fragment) * len(story))


def _fragments_joined(
    counts: _Counts,
    clusters: list[list[int]],
    vectors: _Vectors,
    settings: Settings,
    every: dict[tuple[int, int], float],
) -> list[list[int]]:
    """A large topic's fragments (`_joined`), each judged against every other story of the topic over the topic's
    vectors."""
    fragments = [cluster for cluster in clusters if len(cluster) <= settings.fragment]
    stories = [list(cluster) for cluster in clusters if len(cluster) > settings.fragment]
    if not fragments or not any(len(story) >= settings.fragment_story for story in stories):
        return clusters
    for fragment, number in zip(
        fragments, _joined(fragments, [stories] * len(fragments), _Sums(counts, vectors, settings.name_weight), settings, every)
    ):
        if number < 0:
            stories.append(list(fragment))
        else:
            stories[number].extend(fragment)
    return stories


def _lone_joined(
    counts: _Counts, stories: list[list[int]], scored: dict[tuple[int, int], float], vectors: _Vectors, settings: Settings
) -> list[list[int]]:
    """An article alone (its average likeness to a topic fell short) judged by `_joined` against the stories of
    `fragment_story` articles or more that it has a candidate pair with, over all the articles' vectors."""
    story_of = {article: number for number, story in enumerate(stories) for article in story}
    sizes = [len(story) for story in stories]
    partners: defaultdict[int, set[int]] = defaultdict(set)
    for a, b in scored:
        for alone, other in ((a, b), (b, a)):
            if sizes[story_of[alone]] == 1 and sizes[story_of[other]] >= settings.fragment_story:
                partners[alone].add(story_of[other])
    if not partners:
        return stories
    lone = sorted(partners)
    numbers = [sorted(partners[article]) for article in lone]
    found = _joined(
        [[article] for article in lone],
        [[stories[n] for n in chosen] for chosen in numbers],
        _Sums(counts, vectors, settings.name_weight),
        settings,
    )
    joined: defaultdict[int, list[int]] = defaultdict(list)
    for article, chosen, best in zip(lone, numbers, found):
        if best >= 0:
            joined[chosen[best]].append(article)
    taken = {article for articles in joined.values() for article in articles}
    return [story + joined.get(number, []) for number, story in enumerate(stories) if not (len(story) == 1 and story[0] in taken)]


def _blend(vectors: _Vectors, member: int, name_weight: float) -> Sparse:
    """One vector whose dot products are the blend of term and name cosines: names after the terms' ids."""
    term_ids, term_values = vectors.terms[member]
    name_ids, name_values = vectors.names[member]
    return (
        np.concatenate((term_ids, name_ids + vectors.size)),
        np.concatenate((term_values * math.sqrt(1 - name_weight), name_values * math.sqrt(name_weight))),
    )


def _mean_likeness(vectors: _Vectors, members: list[int]) -> float:
    """Mean cosine of the members' terms over their pairs: how closely a topic holds together."""
    rows = [vectors.terms[i] for i in members]
    _, columns = np.unique(np.concatenate([row[0] for row in rows]), return_inverse=True)  # the members' terms only
    total = np.bincount(columns, weights=np.concatenate([row[1] for row in rows]))
    return (float(total @ total) - sum(1 for row in rows if row[0].size)) / (len(members) * (len(members) - 1))


def _components(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(count))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in pairs:
        parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for node in range(count):
        members.setdefault(root(node), []).append(node)
    return list(members.values())


def _agglomerate(members: list[int], scored: dict[tuple[int, int], float], threshold: float, linkage: str) -> list[list[int]]:
    """Average- or complete-link clustering of `members` down to `threshold`, over the scored pairs
    only (a pair not scored counts as 0): a heap of cluster pairs, so sparse likeness stays cheap. A pair
    below the threshold never enters the heap: it could only be popped after the last merge."""
    size = {member: 1 for member in members}
    clusters = {member: [member] for member in members}
    version = {member: 0 for member in members}  # -1 once merged into another: its heap entries are stale
    # links[a][c] is one shared [sum of likeness (average) or least likeness (complete), pairs scored]
    links: dict[int, dict[int, list[float]]] = {member: {} for member in members}
    for (a, b), value in scored.items():
        links[a][b] = links[b][a] = [value, 1]
    complete = linkage == "complete"
    # At first every cluster is one article: a pair's link is its likeness, for either linkage.
    heap = [(-value, *((a, b) if a < b else (b, a)), 0, 0) for (a, b), value in scored.items() if value >= threshold]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, a, b, version_a, version_b = pop(heap)
        if version[a] != version_a or version[b] != version_b:
            continue
        for c, link in links.pop(b).items():
            if c == a:
                continue
            del links[c][b]
            mine = links[a].get(c)
            if mine is None:
                links[a][c] = links[c][a] = link
            else:
                mine[0] = min(mine[0], link[0]) if complete else mine[0] + link[0]
                mine[1] += link[1]
        del links[a][b]
        size[a] += size.pop(b)
        clusters[a].extend(clusters.pop(b))
        version[a] += 1
        version[b] = -1
        size_a = size[a]
        for c, link in links[a].items():  # the link of a and c: their mean likeness, or the least if every pair scored
            pairs = size_a * size[c]
            value = (link[0] if link[1] == pairs else -1.0) if complete else link[0] / pairs
            if value >= threshold:
                push(heap, (-value, a, c, version[a], version[c]) if a < c else (-value, c, a, version[c], version[a]))
    return [sorted(cluster) for cluster in clusters.values()]


def _clusters(members: list[int], scored: dict[tuple[int, int], float], threshold: float, linkage: str) -> list[list[int]]:
    """Clusters of `members`: agglomerated inside each connected part of the scored pairs."""
    position = {article: index for index, article in enumerate(members)}
    parts = _components(len(members), [(position[a], position[b]) for a, b in scored])
    part_of = {members[i]: number for number, part in enumerate(parts) for i in part}
    scored_in: list[dict[tuple[int, int], float]] = [{} for _ in parts]
    for pair, value in scored.items():
        scored_in[part_of[pair[0]]][pair] = value
    return [
        cluster
        for number, part in enumerate(parts)
        for cluster in _agglomerate([members[i] for i in part], scored_in[number], threshold, linkage)
    ]


def _split(topic: list[int], scored: dict[tuple[int, int], float], threshold: float) -> list[list[int]]:
    """A topic by average link at `threshold` over its own pairs among `scored`."""
    inside = set(topic)
    return _clusters(topic, {pair: value for pair, value in scored.items() if pair[0] in inside}, threshold, "average")


def group(items: Iterable[Item], settings: Settings = DEFAULT) -> list[int]:
    """A story number for each item, in input order; equal numbers mean the same story.

    Copies first: articles with the same text, or nearly (likeness COPY), are one unit.
    Then topics: average link over the candidate pairs of units, idf from all the items.
    Then, inside each topic, stories. A topic with many units has its terms weighted
    again by their rarity within the topic and part of its likeness measured with the
    topic's mean taken away (so "earthquake" and "magnitude" count for nothing between
    two earthquakes, and their places and dates for much), then average link to a low
    threshold; a small topic cannot tell its events' own words that way, so it needs
    a high likeness, every pair (complete link). Last, fragments join an established story
    (`_joined`). Stories are numbered in order of their first item, so the same input gives
    the same labels.
    """
    counts = _counts(items)
    everyone = range(len(counts.texts))
    overall, overall_idf = _overall_vectors(counts, settings.edition_idf)
    scored = _scored(counts, _candidate_pairs(counts, overall), overall, settings.topic_threshold, settings)
    copies = _components(len(everyone), [pair for pair, value in scored.items() if value >= COPY])
    unit_of = list(range(len(everyone)))  # each article's unit: the first of its copies
    for unit in copies:
        first = min(unit)
        for member in unit:
            unit_of[member] = first
    units = sorted(unit_of[member] for member in everyone if unit_of[member] == member)
    units_set = set(units)
    scored = {pair: value for pair, value in scored.items() if pair[0] in units_set and pair[1] in units_set}
    first_scored = scored
    topics, threshold = _clusters(units, scored, settings.topic_threshold, "average"), settings.topic_threshold
    while any(len(topic) > MAX_TOPIC for topic in topics):  # not one topic but a chain of them: split it
        threshold *= 1.5
        scored = {pair: value for pair, value in scored.items() if value >= threshold}
        topics = [part for topic in topics for part in ([topic] if len(topic) <= MAX_TOPIC else _split(topic, scored, threshold))]
    stories: list[list[int]] = []
    for topic in topics:
        if len(topic) == 1:
            stories.append(topic)
            continue
        large = len(topic) >= settings.small_topic and _mean_likeness(overall, topic) >= settings.tight
        topic_vectors = _topic_vectors(counts, topic, overall_idf)
        if large:
            every = _centred(counts, topic, topic_vectors, settings)
            bar = max(settings.threshold, settings.relative * sum(every.values()) / len(every)) if every else settings.threshold
            found = _clusters(topic, {pair: v for pair, v in every.items() if v >= bar}, bar, "average")
            found = _attached(found, every, settings.attach)
            if settings.fragment:
                found = _fragments_joined(counts, found, topic_vectors, settings, every)
            stories.extend(found)
            continue
        scored = _scored(counts, _every_pair(topic), topic_vectors, settings.small_threshold, settings)
        stories.extend(_clusters(topic, scored, settings.small_threshold, "complete"))
    if settings.fragment:
        stories = _lone_joined(counts, stories, first_scored, overall, settings)
    members: dict[int, list[int]] = {}
    for member in everyone:
        members.setdefault(unit_of[member], []).append(member)
    label = [0] * len(everyone)
    for number, story in enumerate(sorted(([m for unit in story for m in members[unit]] for story in stories), key=min)):
        for index in story:
            label[index] = number
    return label
